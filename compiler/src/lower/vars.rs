//! Variables: the names Proton knows, and compiling argument strings into IR templates.

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use proton_ir::{Part, Template, Var};

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

/// Compiles `s` into a template. `user` maps `set` variable names to indices.
/// Unknown variables are errors with a did-you-mean hint.
pub fn template(s: &str, span: Span, user: &[String]) -> Result<Template, Vec<Diagnostic>> {
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
        match resolve(name, user) {
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

fn resolve(name: &str, user: &[String]) -> Result<Part, Option<String>> {
    if let Some(d) = name.strip_prefix("http_") {
        return Ok(Part::Var(Var::Http(d.to_ascii_lowercase())));
    }
    if let Some(d) = name.strip_prefix("sent_http_") {
        return Ok(Part::Var(Var::SentHttp(d.to_ascii_lowercase())));
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
    if name.len() == 1 && name.as_bytes()[0].is_ascii_digit() {
        return Ok(Part::Capture(name.as_bytes()[0] - b'0'));
    }
    if BUILTIN.contains(&name) {
        return Ok(Part::Var(Var::Builtin(name.to_string())));
    }
    if let Some(i) = user.iter().position(|u| u == name) {
        return Ok(Part::Var(Var::User(i as u32)));
    }
    let cands = BUILTIN
        .iter()
        .copied()
        .chain(user.iter().map(String::as_str));
    Err(did_you_mean(name, cands)
        .map(|c| format!("did you mean \"${c}\"?"))
        .or_else(|| {
            Some("define it with `set $name value;`, or use $http_*, $arg_*, $cookie_*".to_string())
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
        let t = template("a${host}b$uri/$1-$http_X_Y", Span::default(), &[]).unwrap();
        assert_eq!(t.parts.len(), 8);
        assert_eq!(t.to_source(&[]), "a${host}b$uri/$1-$http_x_y");
        let errs = template("$hots/$reqest_uri", Span::default(), &[]).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].help.as_deref().unwrap_or("").contains("$host"));
        assert!(errs[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("$request_uri"));
        assert!(template("x$", Span::default(), &[]).is_err());
        assert!(template("${host", Span::default(), &[]).is_err());
        let u = vec!["foo".to_string()];
        assert_eq!(
            template("$foo", Span::default(), &u).unwrap().parts,
            vec![Part::Var(Var::User(0))]
        );
    }
}
