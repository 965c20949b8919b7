//! Variables: the names Proton knows, and compiling argument strings into IR templates.

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use proton_ir::{Part, Template, Var};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The names a template may use besides the built-ins and the `$http_*`-style families.
/// Every name is lowercase: nginx compares variable names case-insensitively.
#[derive(Default, Clone, Copy)]
pub struct Scope<'a> {
    /// `set` variables → index into `Ir::user_vars`.
    pub user: Option<&'a HashMap<String, u32>>,
    /// `map` variables → index into `Ir::maps`.
    pub maps: Option<&'a HashMap<String, u32>>,
    /// Named captures of the regexes that can have matched where the template is used.
    pub captures: Option<&'a HashSet<String>>,
    /// Named captures defined anywhere in the config (for a precise error).
    pub all_captures: Option<&'a HashSet<String>>,
}

impl Scope<'_> {
    fn user(&self, name: &str) -> Option<u32> {
        self.user.and_then(|u| u.get(name).copied())
    }
    fn map(&self, name: &str) -> Option<u32> {
        self.maps.and_then(|m| m.get(name).copied())
    }
    fn capture(&self, name: &str) -> bool {
        self.captures.is_some_and(|c| c.contains(name))
    }
}

/// Built-in variables, nginx names.
pub static BUILTIN: &[&str] = &[
    "args",
    "binary_remote_addr",
    "body_bytes_sent",
    "bytes_sent",
    "connection",
    "connection_requests",
    "content_length",
    "content_type",
    "cookie",
    "date_gmt",
    "date_local",
    "document_root",
    "document_uri",
    "host",
    "hostname",
    "https",
    "is_args",
    "msec",
    "nginx_version",
    "pid",
    "proxy_add_x_forwarded_for",
    "proxy_host",
    "proxy_port",
    "query_string",
    "realpath_root",
    "remote_addr",
    "remote_port",
    "remote_user",
    "request",
    "request_body",
    "request_filename",
    "request_id",
    "request_length",
    "request_method",
    "request_time",
    "request_uri",
    "scheme",
    "server_addr",
    "server_name",
    "server_port",
    "server_protocol",
    "status",
    "time_iso8601",
    "time_local",
    "uri",
    "upstream_addr",
    "upstream_bytes_received",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_response_length",
    "upstream_response_time",
    "upstream_status",
    "proton_version",
];

/// The prefixes of nginx's variable families (`$http_NAME`, …).
pub static FAMILIES: &[&str] = &["http_", "sent_http_", "arg_", "cookie_", "upstream_http_"];

/// Why `name` (lowercase, without `$`) cannot be the name of a new variable: a built-in, a
/// member of a family such as `$http_*`, a capture number, or not a variable name at all.
/// `None` when it can.
pub fn reserved(name: &str) -> Option<String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Some("a variable name is letters, digits and \"_\"".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("${name} is a regex capture"));
    }
    if BUILTIN.contains(&name) {
        return Some(format!("${name} is a built-in variable"));
    }
    FAMILIES
        .iter()
        .find(|f| name.starts_with(*f))
        .map(|f| format!("${f}* names are built-in variables"))
}

/// Compiles `s` into a template. Variable names are resolved case-insensitively (as nginx
/// does) against the built-ins, the `$http_*`/`$arg_*`/… families, `$1`…`$9` and `scope`.
/// Unknown variables are errors with a did-you-mean hint.
pub fn template(s: &str, span: Span, scope: Scope<'_>) -> Result<Template, Vec<Diagnostic>> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
            lit.push_str(&s[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        // `$1`…`$9`: a capture; a digit after it is literal text (`$10` is `$1` and "0").
        if let Some(&d @ b'1'..=b'9') = b.get(i + 1) {
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            parts.push(Part::Capture(d - b'0'));
            i += 2;
            continue;
        }
        let (name, next) = if b.get(i + 1) == Some(&b'{') {
            let Some(close) = s[i + 2..].find('}') else {
                errors.push(err_at(
                    span,
                    s,
                    i..s.len(),
                    "the variable name is not terminated with \"}\"",
                    "write ${name}",
                ));
                break;
            };
            (&s[i + 2..i + 2 + close], i + 3 + close)
        } else {
            let end = b[i + 1..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .map_or(b.len(), |p| i + 1 + p);
            (&s[i + 1..end], end)
        };
        if name.is_empty() {
            errors.push(err_at(span, s, i..i + 1, "invalid variable name", "a \"$\" must be followed by a variable name; there is no escape for a literal \"$\" in nginx syntax"));
            i += 1;
            continue;
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut lit)));
        }
        match resolve(name, scope) {
            Ok(p) => parts.push(p),
            Err(help) => {
                let mut d = err_at(
                    span,
                    s,
                    i..next,
                    &format!("unknown variable \"${name}\""),
                    "",
                );
                d.help = help;
                errors.push(d);
            }
        }
        i = next;
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(lit));
    }
    if errors.is_empty() {
        Ok(Template { parts })
    } else {
        Err(errors)
    }
}

fn resolve(name: &str, scope: Scope<'_>) -> Result<Part, Option<String>> {
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    if let Some(d) = name.strip_prefix("http_") {
        return Ok(Part::Var(Var::Http(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("sent_http_") {
        return Ok(Part::Var(Var::SentHttp(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("arg_") {
        return Ok(Part::Var(Var::Arg(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("cookie_") {
        return Ok(Part::Var(Var::Cookie(d.to_string())));
    }
    if name.starts_with("upstream_http_") {
        return Ok(Part::Var(Var::Builtin(name.to_string())));
    }
    if name.len() == 1 && name.as_bytes()[0].is_ascii_digit() && name != "0" {
        return Ok(Part::Capture(name.as_bytes()[0] - b'0'));
    }
    if BUILTIN.contains(&name) {
        return Ok(Part::Var(Var::Builtin(name.to_string())));
    }
    if let Some(i) = scope.map(name) {
        return Ok(Part::Var(Var::Map(i)));
    }
    if let Some(i) = scope.user(name) {
        return Ok(Part::Var(Var::User(i)));
    }
    if scope.capture(name) {
        return Ok(Part::Var(Var::NamedCapture(name.to_string())));
    }
    if scope.all_captures.is_some_and(|c| c.contains(name)) {
        return Err(Some(format!(
            "\"{name}\" is a named capture of a regex in another server: no regex of this server sets it"
        )));
    }
    let mut cands: Vec<&str> = BUILTIN.to_vec();
    if let Some(u) = scope.user {
        cands.extend(u.keys().map(String::as_str));
    }
    if let Some(m) = scope.maps {
        cands.extend(m.keys().map(String::as_str));
    }
    if let Some(c) = scope.captures {
        cands.extend(c.iter().map(String::as_str));
    }
    cands.sort_unstable();
    Err(did_you_mean(name, cands)
        .map(|c| format!("did you mean \"${c}\"?"))
        .or_else(|| {
            Some("define it with `set $name value;`, a `map`, or a named regex capture `(?<name>…)`, or use $http_*, $arg_*, $cookie_*".to_string())
        }))
}

fn err_at(span: Span, s: &str, at: std::ops::Range<usize>, msg: &str, help: &str) -> Diagnostic {
    // Point inside the argument when the argument text maps 1:1 onto the source (bare or
    // quoted without escapes); otherwise at the whole argument.
    let width = (span.end - span.start) as usize;
    let quoted = width == s.len() + 2;
    let sp = if width == s.len() || quoted {
        let off = span.start + u32::from(quoted);
        Span {
            file: span.file,
            start: off + at.start as u32,
            end: (off + at.end as u32).min(span.end),
        }
    } else {
        span
    };
    let d = Diagnostic::error(Code::UnknownVariable, sp, msg).label("here");
    if help.is_empty() {
        d
    } else {
        d.help(help)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let none = Scope::default();
        let t = template("a${host}b$uri/$1-$http_X_Y", Span::default(), none).unwrap();
        assert_eq!(t.parts.len(), 8);
        assert_eq!(t.to_source(&[]), "a${host}b$uri/$1-$http_x_y");
        let errs = template("$hots/$reqest_uri", Span::default(), none).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].help.as_deref().unwrap_or("").contains("$host"));
        assert!(errs[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("$request_uri"));
        assert!(template("x$", Span::default(), none).is_err());
        assert!(template("${host", Span::default(), none).is_err());
        let mut u = HashMap::default();
        u.insert("foo".to_string(), 0);
        let mut c = HashSet::default();
        c.insert("user".to_string());
        let mut m = HashMap::default();
        m.insert("mapped".to_string(), 0);
        let scope = Scope {
            user: Some(&u),
            maps: Some(&m),
            captures: Some(&c),
            all_captures: Some(&c),
        };
        assert_eq!(
            template("$foo$User", Span::default(), scope).unwrap().parts,
            vec![
                Part::Var(Var::User(0)),
                Part::Var(Var::NamedCapture("user".into()))
            ]
        );
        // nginx: variable names are case-insensitive; `$10` is `$1` then "0".
        assert_eq!(
            template("$Host$10", Span::default(), none)
                .unwrap()
                .to_source(&[]),
            "$host${1}0"
        );
        assert!(template("$user", Span::default(), none).is_err());
        assert_eq!(
            template("$Mapped", Span::default(), scope).unwrap().parts,
            vec![Part::Var(Var::Map(0))]
        );
        let errs = template("$maped", Span::default(), scope).unwrap_err();
        assert!(errs[0].help.as_deref().unwrap_or("").contains("$mapped"));
        assert!(reserved("host").is_some());
        assert!(reserved("http_upgrade").is_some());
        assert!(reserved("cookie_x").is_some());
        assert!(reserved("1").is_some());
        assert!(reserved("a-b").is_some());
        assert!(reserved("connection_upgrade").is_none());
        assert!(template("$0", Span::default(), none).is_err());
    }
}
