//! Structural verification of a decoded IR: every id in range, every trie well formed.
//! After [`Ir::verify`] succeeds the runtime can index the IR's vectors directly.

use crate::types::*;
use std::fmt;

/// What is inconsistent in an IR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError(pub String);

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VerifyError {}

struct Checker<'a> {
    ir: &'a Ir,
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), VerifyError> {
    if ok {
        Ok(())
    } else {
        Err(VerifyError(what()))
    }
}

impl Checker<'_> {
    fn server(&self, id: ServerId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.servers.len(), || {
            format!("server id {} out of range", id.0)
        })
    }
    fn location(&self, id: LocationId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.locations.len(), || {
            format!("location id {} out of range", id.0)
        })
    }
    fn regex(&self, id: RegexId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.regexes.len(), || {
            format!("regex id {} out of range", id.0)
        })
    }
    fn template(&self, t: &Template) -> Result<(), VerifyError> {
        for p in &t.parts {
            match p {
                Part::Var(Var::User(i)) => check((*i as usize) < self.ir.user_vars.len(), || {
                    format!("user variable {i} out of range")
                })?,
                Part::Capture(n) => check(*n <= 9, || format!("capture ${n} out of range"))?,
                _ => {}
            }
        }
        Ok(())
    }
    fn tree(&self, t: &LocationTree) -> Result<(), VerifyError> {
        if t.nodes.is_empty() {
            return self.regexes(t);
        }
        for (i, n) in t.nodes.iter().enumerate() {
            check(i == 0 || !n.label.is_empty(), || {
                format!("trie node {i} has an empty label")
            })?;
            for &c in &n.children {
                check((c as usize) < t.nodes.len() && c != 0, || {
                    format!("trie child {c} out of range")
                })?;
            }
            if let Some(e) = n.exact {
                self.location(e)?;
            }
            if let Some(p) = n.prefix {
                self.location(p.location)?;
            }
        }
        self.regexes(t)
    }
    fn regexes(&self, t: &LocationTree) -> Result<(), VerifyError> {
        for r in &t.regex {
            self.regex(r.regex)?;
            self.location(r.location)?;
        }
        Ok(())
    }
    fn script(&self, s: &[ScriptOp]) -> Result<(), VerifyError> {
        for op in s {
            match op {
                ScriptOp::Rewrite {
                    regex, replacement, ..
                } => {
                    self.regex(*regex)?;
                    self.template(replacement)?;
                }
                ScriptOp::Return { text, .. } => {
                    if let Some(t) = text {
                        self.template(t)?;
                    }
                }
                ScriptOp::Set { var, value } => {
                    check((*var as usize) < self.ir.user_vars.len(), || {
                        format!("set variable {var} out of range")
                    })?;
                    self.template(value)?;
                }
            }
        }
        Ok(())
    }
    fn conf(&self, c: &LocationConf) -> Result<(), VerifyError> {
        self.script(&c.script)?;
        check((c.settings.0 as usize) < self.ir.settings.len(), || {
            format!("settings {} out of range", c.settings.0)
        })?;
        for t in c
            .root
            .iter()
            .chain(c.alias.iter().map(|a| &a.path))
            .chain(&c.try_files)
        {
            self.template(t)?;
        }
        if let Some(p) = &c.proxy {
            check((p.upstream.0 as usize) < self.ir.upstreams.len(), || {
                format!("upstream {} out of range", p.upstream.0)
            })?;
        }
        Ok(())
    }

    fn settings(&self, s: &Settings) -> Result<(), VerifyError> {
        check((s.types.0 as usize) < self.ir.mime_types.len(), || {
            format!("mime table {} out of range", s.types.0)
        })?;
        for t in &s.index {
            self.template(t)?;
        }
        for l in &s.access_log {
            if let AccessLog::File { path, format, .. } = l {
                self.template(path)?;
                check((format.0 as usize) < self.ir.log_formats.len(), || {
                    format!("log format {} out of range", format.0)
                })?;
            }
        }
        for (_, t) in &s.proxy.set_headers {
            self.template(t)?;
        }
        Ok(())
    }
}

impl Ir {
    /// Checks internal consistency; see the module docs.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let c = Checker { ir: self };
        check(!self.servers.is_empty(), || "no servers".into())?;
        for l in &self.listeners {
            let n = &l.names;
            c.server(n.default)?;
            for (_, s) in n.exact.iter().chain(n.trailing.iter()) {
                c.server(*s)?;
            }
            for w in &n.leading {
                c.server(w.server)?;
                check(w.suffix.starts_with('.'), || {
                    format!("wildcard suffix {:?} must start with a dot", w.suffix)
                })?;
            }
            for (r, s) in &n.regex {
                c.regex(*r)?;
                c.server(*s)?;
            }
            check(n.exact.windows(2).all(|w| w[0].0 < w[1].0), || {
                format!("exact names of {} are not sorted", l.addr)
            })?;
        }
        for s in &self.servers {
            c.location(s.default_location)?;
            c.tree(&s.tree)?;
            c.script(&s.script)?;
            for (_, l) in &s.named {
                c.location(*l)?;
            }
        }
        for l in &self.locations {
            c.server(l.server)?;
            c.tree(&l.tree)?;
            c.conf(&l.conf)?;
        }
        for f in &self.log_formats {
            c.template(&f.template)?;
        }
        for s in &self.settings {
            c.settings(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::types::*;

    pub(crate) fn conf() -> LocationConf {
        LocationConf {
            script: vec![],
            internal: false,
            root: Some(Template::literal("html")),
            alias: None,
            try_files: vec![],
            proxy: None,
            settings: SettingsId(0),
        }
    }

    pub(crate) fn settings() -> Settings {
        Settings {
            index: vec![Template::literal("index.html")],
            autoindex: false,
            default_type: "text/plain".into(),
            types: MimeTableId(0),
            error_pages: vec![],
            add_headers: vec![],
            expires: Expires::Off,
            etag: true,
            if_modified_since: IfModifiedSince::Exact,
            sendfile: false,
            tcp_nopush: false,
            tcp_nodelay: true,
            server_tokens: ServerTokens::On,
            keepalive_timeout_ms: 75_000,
            keepalive_header_secs: None,
            keepalive_requests: 1000,
            client_max_body_size: 1 << 20,
            client_header_timeout_ms: 60_000,
            client_header_buffer_size: 1024,
            large_client_header_buffers: (4, 8192),
            client_body_timeout_ms: 60_000,
            send_timeout_ms: 60_000,
            access_log: vec![],
            proxy: ProxySettings {
                set_headers: vec![],
                http_version: ProxyHttpVersion::Http10,
                connect_timeout_ms: 60_000,
                read_timeout_ms: 60_000,
                send_timeout_ms: 60_000,
                next_upstream: NextUpstream::default(),
                next_upstream_tries: 0,
                next_upstream_timeout_ms: 0,
                buffering: true,
                buffer_size: 4096,
                buffers: (8, 4096),
                hide_headers: vec![],
                pass_headers: vec![],
                redirect: ProxyRedirect::Default,
                intercept_errors: false,
            },
        }
    }

    #[test]
    fn catches_bad_ids() {
        let mut ir = crate::codec::tests::tiny();
        assert!(ir.verify().is_ok());
        ir.servers[0].default_location = LocationId(9);
        assert!(ir.verify().is_err());
        let mut ir = crate::codec::tests::tiny();
        ir.listeners[0].names.default = ServerId(3);
        assert!(ir.verify().is_err());
    }
}
