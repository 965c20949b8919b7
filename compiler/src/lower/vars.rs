//! Variables: the names Proton knows, and compiling argument strings into IR templates.

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use proton_ir::{Builtin, Part, Template, Var};
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

/// nginx's built-in variables that Proton does not implement yet, with what to do instead.
/// Using one is an error (E0003), never a silently empty value.
pub static UNSUPPORTED: &[(&str, &str)] = &[
    ("upstream_cache_last_modified", CACHE),
    ("upstream_cache_etag", CACHE),
    ("msie", BROWSER),
    ("modern_browser", BROWSER),
    ("ancient_browser", BROWSER),
    ("pipe", "nginx's pipelining flag is not supported yet"),
    ("request_completion", "$request_completion is not supported yet; $status and $request_time are in the access log"),
    ("tcpinfo_rtt", TCPINFO),
    ("tcpinfo_rttvar", TCPINFO),
    ("tcpinfo_snd_cwnd", TCPINFO),
    ("tcpinfo_rcv_space", TCPINFO),
    ("http3", "HTTP/3 is not supported; $http2 says whether a request came over HTTP/2"),
    ("request_port", "nginx 1.29's $request_port is not supported yet; $server_port is the port the request came to"),
    ("is_request_port", "nginx 1.29's $is_request_port is not supported yet"),
    ("proxy_add_via", "nginx 1.29's $proxy_add_via is not supported yet"),
    ("ssl_sigalg", SSL_NEW),
    ("ssl_sigalgs", SSL_NEW),
    ("ssl_client_sigalg", SSL_NEW),
    ("ssl_ech_status", SSL_NEW),
    ("ssl_ech_outer_server_name", SSL_NEW),
    ("proxy_internal_body_length", INTERNAL),
    ("proxy_internal_chunked", INTERNAL),
    ("grpc_internal_trailers", INTERNAL),
];

const CACHE: &str = "the cached entry's Last-Modified and ETag are for revalidation (proxy_cache_revalidate), which is not supported yet";
const BROWSER: &str = "the browser module (modern_browser, ancient_browser) is not supported yet; a map of $http_user_agent does the same";
const TCPINFO: &str = "the TCP_INFO variables are not supported yet";
const SSL_NEW: &str = "this TLS variable of recent nginx is not supported yet; see $ssl_protocol, $ssl_cipher, $ssl_curve";
const INTERNAL: &str =
    "an internal variable of nginx's proxy and gRPC modules, not meant for configs";

/// nginx's families of variables that Proton does not implement yet, with what to do instead.
pub static UNSUPPORTED_FAMILIES: &[(&str, &str)] = &[(
    "geoip_",
    "the GeoIP modules (geoip_country, geoip_city) are not supported; geo with address ranges covers fixed tables",
)];

/// Why nginx's variable `name` is not supported (a hint), or `None` when it is not one of
/// those.
pub fn unsupported(name: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| {
            UNSUPPORTED_FAMILIES
                .iter()
                .find(|(f, _)| name.starts_with(f) && name.len() > f.len())
        })
        .map(|(_, help)| *help)
}

/// Whether `name` (lowercase, without `$`) is a built-in variable of nginx, implemented or not.
pub fn is_builtin_name(name: &str) -> bool {
    Builtin::from_name(name).is_some() || UNSUPPORTED.iter().any(|(n, _)| *n == name)
}

/// The prefixes of nginx's variable families (`$http_NAME`, …).
pub static FAMILIES: &[&str] = &[
    "proxy_protocol_tlv_",
    "http_",
    "sent_http_",
    "sent_trailer_",
    "arg_",
    "cookie_",
    "upstream_http_",
    "upstream_cookie_",
    "upstream_trailer_",
    "jwt_header_",
    "jwt_claim_",
];

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
    if is_builtin_name(name) {
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
            Err(Unresolved::Unknown(help)) => {
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
            Err(Unresolved::Unsupported(help)) => {
                let mut d = err_at(
                    span,
                    s,
                    i..next,
                    &format!("variable ${name} is not supported yet"),
                    help,
                );
                d.code = Code::Unsupported;
                d.label = "an nginx variable Proton does not implement".into();
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

/// Why a `$name` has no value.
enum Unresolved {
    /// Not a variable anywhere in scope; the help line, if any.
    Unknown(Option<String>),
    /// An nginx variable Proton does not implement yet; the help line.
    Unsupported(&'static str),
}

/// The prefixes of nginx's variable families (`$http_*` …): a `set` variable named with one
/// falls back to the family's value where it is not set.
pub const PREFIX_FAMILIES: &[&str] = &[
    "http_",
    "sent_http_",
    "sent_trailer_",
    "upstream_http_",
    "upstream_trailer_",
    "upstream_cookie_",
    "cookie_",
    "arg_",
];

fn resolve(name: &str, scope: Scope<'_>) -> Result<Part, Unresolved> {
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    if let Some(help) = unsupported(name) {
        return Err(Unresolved::Unsupported(help));
    }
    // `set $http_x …` makes a variable of that name: it has the value set where one was
    // set, else the header's (nginx gives such a variable the prefix family's handler).
    if PREFIX_FAMILIES.iter().any(|p| name.starts_with(p)) {
        if let Some(i) = scope.user(name) {
            return Ok(Part::Var(Var::User(i)));
        }
    }
    if let Some(d) = name.strip_prefix("sent_trailer_").filter(|d| !d.is_empty()) {
        return Ok(Part::Var(Var::SentTrailer(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("sent_http_").filter(|d| !d.is_empty()) {
        return Ok(Part::Var(Var::SentHttp(d.to_string())));
    }
    if let Some(d) = name
        .strip_prefix("upstream_http_")
        .filter(|d| !d.is_empty())
    {
        return Ok(Part::Var(Var::UpstreamHttp(d.to_string())));
    }
    if let Some(d) = name
        .strip_prefix("upstream_trailer_")
        .filter(|d| !d.is_empty())
    {
        return Ok(Part::Var(Var::UpstreamTrailer(d.to_string())));
    }
    if let Some(d) = name
        .strip_prefix("upstream_cookie_")
        .filter(|d| !d.is_empty())
    {
        return Ok(Part::Var(Var::UpstreamCookie(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("proxy_protocol_tlv_") {
        return match proton_ir::ProxyTlv::from_name(d) {
            Some(t) => Ok(Part::Var(Var::ProxyProtocolTlv(t))),
            None => Err(Unresolved::Unknown(Some(format!(
                "unknown PROXY protocol TLV \"{d}\": use alpn, authority, unique_id, ssl, netns, ssl_version, ssl_cn, ssl_cipher, ssl_sig_alg, ssl_key_alg, ssl_verify, or a type as 0xNN (ssl_0xNN)"
            )))),
        };
    }
    if let Some(d) = name.strip_prefix("http_") {
        return Ok(Part::Var(Var::Http(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("arg_") {
        return Ok(Part::Var(Var::Arg(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("cookie_") {
        return Ok(Part::Var(Var::Cookie(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("jwt_header_") {
        return Ok(Part::Var(Var::JwtHeader(d.to_string())));
    }
    if let Some(d) = name.strip_prefix("jwt_claim_") {
        return Ok(Part::Var(Var::JwtClaim(d.to_string())));
    }
    if name.len() == 1 && name.as_bytes()[0].is_ascii_digit() && name != "0" {
        return Ok(Part::Capture(name.as_bytes()[0] - b'0'));
    }
    if let Some(b) = Builtin::from_name(name) {
        return Ok(Part::Var(Var::Builtin(b)));
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
        return Err(Unresolved::Unknown(Some(format!(
            "\"{name}\" is a named capture of a regex in another server: no regex of this server sets it"
        ))));
    }
    let mut cands: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
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
    Err(Unresolved::Unknown(did_you_mean(name, cands)
        .map(|c| format!("did you mean \"${c}\"?"))
        .or_else(|| {
            Some("define it with `set $name value;`, a `map`, or a named regex capture `(?<name>…)`, or use $http_*, $arg_*, $cookie_*".to_string())
        })))
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
    /// Every variable of nginx's http modules is known: implemented, a member of a family
    /// (`$http_host`, `$sent_http_location`…), or refused as "not supported yet" with a
    /// hint (never "unknown variable").
    #[test]
    fn every_nginx_variable_is_known() {
        let list = include_str!("../../tests/nginx/variables.txt");
        let unknown: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter(|n| {
                !super::is_builtin_name(n)
                    && super::unsupported(n).is_none()
                    && !super::FAMILIES.iter().any(|f| n.starts_with(f))
            })
            .collect();
        assert!(unknown.is_empty(), "unknown to protonc: {unknown:?}");
    }

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

    #[test]
    fn every_builtin_resolves_and_serialises_by_its_name() {
        for &b in Builtin::ALL {
            let t = template(
                &format!("${}", b.name().to_ascii_uppercase()),
                Span::default(),
                Scope::default(),
            )
            .unwrap_or_else(|_| panic!("${} does not compile", b.name()));
            assert_eq!(t.parts, vec![Part::Var(Var::Builtin(b))]);
            assert_eq!(
                serde_json::to_value(Var::Builtin(b)).ok(),
                Some(serde_json::json!({ "Builtin": b.name() }))
            );
            assert!(reserved(b.name()).is_some(), "${} can be set", b.name());
            assert!(unsupported(b.name()).is_none());
        }
    }

    #[test]
    fn sent_http_names_a_response_header() {
        let t = template("$sent_http_Content_Type", Span::default(), Scope::default());
        assert_eq!(
            t.ok().map(|t| t.parts),
            Some(vec![Part::Var(Var::SentHttp("content_type".into()))])
        );
        assert!(reserved("sent_http_x").is_some());
    }

    #[test]
    fn upstream_families_name_a_header_and_a_cookie() {
        let t = template(
            "$upstream_http_Set_Cookie $upstream_cookie_SID",
            Span::default(),
            Scope::default(),
        );
        assert_eq!(
            t.ok().map(|t| t.parts),
            Some(vec![
                Part::Var(Var::UpstreamHttp("set_cookie".into())),
                Part::Literal(" ".into()),
                Part::Var(Var::UpstreamCookie("sid".into())),
            ])
        );
        assert!(reserved("upstream_cookie_x").is_some());
        assert!(reserved("upstream_http_x").is_some());
    }

    #[test]
    fn unsupported_variables_are_errors_that_name_them() {
        for (name, _) in UNSUPPORTED {
            let errs =
                template(&format!("a ${name}"), Span::default(), Scope::default()).expect_err(name);
            assert_eq!(errs.len(), 1);
            assert_eq!(errs[0].code, Code::Unsupported);
            assert_eq!(
                errs[0].message,
                format!("variable ${name} is not supported yet")
            );
            assert!(errs[0].help.as_deref().is_some_and(|h| !h.is_empty()));
            assert!(reserved(name).is_some(), "${name} can be set");
            assert!(Builtin::from_name(name).is_none());
        }
    }
}
