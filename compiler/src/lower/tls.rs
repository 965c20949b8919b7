//! Lowering of the `ssl_*` directives into each server's [`ServerTls`], and the checks nginx
//! makes when it loads them: every certificate has its key, the files exist and hold what
//! they should, the key is the certificate's, and an address with `listen … ssl` has a
//! certificate in its default server. The files are read here, at compile time, with the same
//! code proton-run loads them with (`proton_tls`), so a bad file is a protonc error with its
//! name, never a surprise at reload.

use super::{arg, nearest, Level, Lower};
use crate::ast::Directive;
use crate::diagnostics::{Code, Diagnostic};
use crate::directives::{parse_size, parse_time_secs};
use crate::source::Span;
use proton_ir::*;

impl Lower<'_> {
    /// A file path from an `ssl_*` directive, kept as written: like `root` and the logs, a
    /// relative path is relative to proton-run's prefix (the IR file's directory unless
    /// `-p` says otherwise), which is the config file's directory when the IR is written
    /// beside it. protonc checks the files there ([`Lower::config_dir`]).
    fn conf_path(&self, p: &str) -> String {
        p.to_string()
    }

    /// The main config file's directory, where protonc looks for relative TLS files.
    pub(crate) fn config_dir(&self) -> std::path::PathBuf {
        self.map
            .path(crate::source::FileId(0))
            .and_then(|f| f.parent())
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The TLS settings of a server whose level chain is `chain` (server, http), or `None`
    /// when it has no certificate, does not reject handshakes and does not verify client
    /// certificates.
    pub(crate) fn server_tls(&mut self, chain: &[&Level<'_>]) -> Option<Box<ServerTls>> {
        let flag = |name: &str, default: bool| {
            nearest(chain, name)
                .first()
                .map_or(default, |d| arg(d, 0) == "on")
        };
        let certs = nearest(chain, "ssl_certificate");
        let keys = nearest(chain, "ssl_certificate_key");
        let reject_handshake = flag("ssl_reject_handshake", false);
        if certs.is_empty() && !reject_handshake {
            if let Some(k) = keys.first() {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        k.name_span,
                        "\"ssl_certificate_key\" without \"ssl_certificate\"",
                    )
                    .label("no certificate for this key")
                    .help("add ssl_certificate with the key's certificate beside it"),
                );
            }
            // nginx keeps the verification mode of a server without a certificate (its
            // requests are checked after a handshake another server answered), without
            // reading any file.
            let verify_client = match nearest(chain, "ssl_verify_client")
                .first()
                .map(|d| arg(d, 0))
            {
                Some("on") => VerifyClient::On,
                Some("optional") => VerifyClient::Optional,
                Some("optional_no_ca") => VerifyClient::OptionalNoCa,
                _ => return None,
            };
            return Some(Box::new(ServerTls {
                certificates: Vec::new(),
                certificate_vars: Vec::new(),
                tls12: true,
                tls13: true,
                ciphers: Vec::new(),
                prefer_server_ciphers: true,
                curves: Vec::new(),
                session_cache: SessionCache::None,
                session_timeout_secs: 300,
                session_tickets: true,
                ticket_key_files: Vec::new(),
                reject_handshake: false,
                verify_client,
                verify_depth: 1,
                client_certificate: None,
                trusted_certificate: None,
                crl: None,
                buffer_size: 16384,
                stapling: None,
                password_file: None,
            }));
        }
        let mut certificates = Vec::new();
        let mut pairs = Vec::new();
        let mut with_vars = false;
        for (i, c) in certs.iter().enumerate() {
            let Some(k) = keys.get(i) else {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        c.arg_span(0),
                        format!(
                            "no \"ssl_certificate_key\" is defined for certificate \"{}\"",
                            arg(c, 0)
                        ),
                    )
                    .label("this certificate has no key")
                    .help("give one ssl_certificate_key per ssl_certificate, in the same order"),
                );
                continue;
            };
            if arg(c, 0).contains('$') || arg(k, 0).contains('$') {
                with_vars = true;
            }
            pairs.push((*c, *k));
            certificates.push(CertificatePair {
                certificate: self.conf_path(arg(c, 0)),
                key: self.conf_path(arg(k, 0)),
            });
        }
        if let Some(k) = keys.get(certs.len()) {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    k.name_span,
                    "more \"ssl_certificate_key\" than \"ssl_certificate\" lines",
                )
                .label("no certificate for this key")
                .help("give one ssl_certificate_key per ssl_certificate, in the same order"),
            );
        }
        let (tls12, tls13) = self.ssl_protocols(nearest(chain, "ssl_protocols").first().copied());
        let ciphers = self.ssl_ciphers(nearest(chain, "ssl_ciphers").first().copied());
        let curves = self.ssl_ecdh_curve(nearest(chain, "ssl_ecdh_curve").first().copied());
        // ssl_dhparam enables DHE suites in nginx; rustls has none, so it changes nothing:
        // said once where it is written, not silently dropped.
        if let Some(d) = nearest(chain, "ssl_dhparam").first().copied() {
            if self.ssl_warned.insert(d.name_span) {
                self.err(
                    Diagnostic::warning(
                        Code::NginxWarning,
                        d.name_span,
                        "\"ssl_dhparam\" has no effect: Proton (rustls) has no DHE cipher suites",
                    )
                    .label("the parameters are never used")
                    .help("clients get the ECDHE suites instead; remove the line to silence this"),
                );
            }
        }
        let session_cache =
            self.ssl_session_cache(nearest(chain, "ssl_session_cache").first().copied());
        let session_timeout_secs = nearest(chain, "ssl_session_timeout")
            .first()
            .and_then(|d| parse_time_secs(arg(d, 0)))
            .unwrap_or(300);
        let ticket_key_files = nearest(chain, "ssl_session_ticket_key")
            .iter()
            .map(|d| self.conf_path(arg(d, 0)))
            .collect::<Vec<_>>();
        for (d, path) in nearest(chain, "ssl_session_ticket_key")
            .iter()
            .zip(&ticket_key_files)
        {
            let full = self.config_dir().join(path);
            if let Err(e) = std::fs::read(&full)
                .map_err(|e| e.to_string())
                .and_then(|b| proton_ir::tls::ticket_key_file(&b).map(|_| ()))
            {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("cannot use ssl_session_ticket_key \"{path}\": {e}"),
                    )
                    .label("this file")
                    .help("make one with: openssl rand 80 > ticket.key"),
                );
            }
        }
        let buffer_size = nearest(chain, "ssl_buffer_size")
            .first()
            .and_then(|d| parse_size(arg(d, 0)))
            .map_or(16384, |n| n.clamp(1, 16384) as u32);
        let stapling = self.ssl_stapling(chain);
        let (verify_client, verify_depth, client_certificate, trusted_certificate, crl) =
            self.client_verification(chain);
        // As nginx: when any pair has variables, every pair is named per handshake.
        let certificate_vars = if with_vars {
            certificates.clear();
            pairs
                .iter()
                .map(|(c, k)| CertificateTemplates {
                    certificate: self.template(c, 0),
                    key: self.template(k, 0),
                })
                .collect()
        } else {
            Vec::new()
        };
        let tls = ServerTls {
            certificates,
            certificate_vars,
            tls12,
            tls13,
            ciphers,
            prefer_server_ciphers: flag("ssl_prefer_server_ciphers", true),
            curves,
            session_cache,
            session_timeout_secs,
            session_tickets: flag("ssl_session_tickets", true),
            ticket_key_files,
            reject_handshake,
            verify_client,
            verify_depth,
            client_certificate,
            trusted_certificate,
            crl,
            buffer_size,
            stapling,
            password_file: nearest(chain, "ssl_password_file")
                .first()
                .map(|d| self.conf_path(arg(d, 0))),
        };
        if !tls.certificates.is_empty() && !self.diags.has_errors() {
            let span = certs.first().map_or(Span::default(), |d| d.arg_span(0));
            self.check_tls(&tls, span);
        }
        Some(Box::new(tls))
    }

    /// `ssl_verify_client`, `ssl_verify_depth`, `ssl_client_certificate`,
    /// `ssl_trusted_certificate` and `ssl_crl`, with nginx's checks: verification needs CAs
    /// (but `optional_no_ca`), and the files are read (a missing or empty file is an error
    /// naming it).
    #[allow(clippy::type_complexity)]
    fn client_verification(
        &mut self,
        chain: &[&Level<'_>],
    ) -> (
        VerifyClient,
        u32,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let verify_d = nearest(chain, "ssl_verify_client").first().copied();
        let verify = match verify_d.map(|d| arg(d, 0)) {
            Some("on") => VerifyClient::On,
            Some("optional") => VerifyClient::Optional,
            Some("optional_no_ca") => VerifyClient::OptionalNoCa,
            _ => VerifyClient::Off,
        };
        let depth = nearest(chain, "ssl_verify_depth")
            .first()
            .and_then(|d| arg(d, 0).parse::<u32>().ok())
            .unwrap_or(1);
        let mut file = |name: &str, crl: bool, read: bool| -> Option<String> {
            let d = nearest(chain, name).first().copied()?;
            let path = self.conf_path(arg(d, 0));
            if read {
                // Where protonc finds the file (see `conf_path`); the message names it
                // as written.
                let here = self.config_dir().join(&path);
                let checked = if crl {
                    proton_tls::client::crls(&here).map(|_| ())
                } else {
                    proton_tls::client::ca_file(&here.display().to_string()).map(|_| ())
                }
                .map_err(|e| e.replace(&here.display().to_string(), &path));
                if let Err(e) = checked {
                    self.err(
                        Diagnostic::error(Code::BadValue, d.arg_span(0), e)
                            .label("this file")
                            .help(if crl {
                                "a PEM file of CRLs (-----BEGIN X509 CRL-----), e.g. from openssl ca -gencrl"
                            } else {
                                "a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"
                            }),
                    );
                }
            }
            Some(path)
        };
        // nginx reads ssl_client_certificate only when verification is on.
        let client = file("ssl_client_certificate", false, verify != VerifyClient::Off);
        let trusted = file("ssl_trusted_certificate", false, true);
        let crl = file("ssl_crl", true, true);
        if matches!(verify, VerifyClient::On | VerifyClient::Optional)
            && client.is_none()
            && trusted.is_none()
        {
            if let Some(d) = verify_d {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        d.arg_span(0),
                        "no ssl_client_certificate for ssl_verify_client",
                    )
                    .label("client certificates are verified against no CA")
                    .help("add ssl_client_certificate with the CAs that sign your clients' certificates (or use optional_no_ca)"),
                );
            }
        }
        (verify, depth, client, trusted, crl)
    }

    /// Builds the server's rustls config as proton-run will, so that a certificate or key
    /// that cannot be used is reported here (each distinct settings record once).
    fn check_tls(&mut self, tls: &ServerTls, span: Span) {
        if !self.tls_checked.insert(tls.clone()) {
            return;
        }
        let here = proton_tls::resolve_paths(tls, &self.config_dir());
        // A password "file" that is a pipe (nginx reads it once, at start) is read by
        // proton-run only: protonc must not take the passwords out of it.
        let pipe = here
            .password_file
            .as_ref()
            .is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_file()));
        if pipe {
            return;
        }
        match proton_tls::server_config(&here, proton_tls::Resumption::none()) {
            Err(e) => self.err(
                Diagnostic::error(Code::BadValue, span, e)
                    .label("the certificate named here")
                    .help("check the file names and that the key belongs to the certificate (openssl x509 -noout -pubkey -in cert.pem; openssl pkey -pubout -in key.pem)"),
            ),
            Ok(built) => {
                for w in built.warnings {
                    self.err(
                        Diagnostic::warning(Code::StaplingIgnored, span, w)
                            .label("no OCSP response is stapled for this certificate")
                            .help("put the issuer's certificate after the certificate in its file (or in ssl_trusted_certificate), and name the responder with ssl_stapling_responder http://… when the certificate has none"),
                    );
                }
            }
        }
    }

    /// `ssl on|off` in effect for a server (nginx's deprecated form of `listen … ssl`),
    /// with warning W0011 where it is written (once per line).
    pub(crate) fn ssl_directive(&mut self, chain: &[&Level<'_>]) -> bool {
        let Some(d) = nearest(chain, "ssl").first().copied() else {
            return false;
        };
        if self.ssl_warned.insert(d.name_span) {
            self.err(
                Diagnostic::warning(
                    Code::SslDirectiveDeprecated,
                    d.name_span,
                    "the \"ssl\" directive is deprecated",
                )
                .label("nginx's old form")
                .help("use the \"listen ... ssl\" directive instead (listen 443 ssl;)"),
            );
        }
        arg(d, 0) == "on"
    }

    /// `ssl_stapling` and its settings: a response file, or a responder (the given one or
    /// each certificate's) asked for responses, verified or not.
    fn ssl_stapling(&mut self, chain: &[&Level<'_>]) -> Option<Stapling> {
        let on = nearest(chain, "ssl_stapling").first().copied();
        on.filter(|d| arg(d, 0) == "on")?;
        let file = nearest(chain, "ssl_stapling_file")
            .first()
            .map(|d| self.conf_path(arg(d, 0)));
        let responder = nearest(chain, "ssl_stapling_responder")
            .first()
            .map(|d| arg(d, 0).to_string());
        let verify = nearest(chain, "ssl_stapling_verify")
            .first()
            .is_some_and(|d| arg(d, 0) == "on");
        Some(Stapling {
            file,
            responder,
            verify,
        })
    }

    /// `ssl_protocols`: (TLS 1.2, TLS 1.3) allowed.
    fn ssl_protocols(&mut self, d: Option<&Directive>) -> (bool, bool) {
        let Some(d) = d else {
            return (true, true);
        };
        let (mut v12, mut v13) = (false, false);
        for a in &d.args {
            match proton_ir::tls::protocol(&a.value) {
                proton_ir::tls::Protocol::Supported(proton_ir::tls::TlsVersion::Tls12) => {
                    v12 = true
                }
                proton_ir::tls::Protocol::Supported(proton_ir::tls::TlsVersion::Tls13) => {
                    v13 = true
                }
                proton_ir::tls::Protocol::Unsupported(_) => self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        a.span,
                        format!("protocol \"{}\" is not supported", a.value),
                    )
                    .label("Proton's TLS (rustls) has only TLSv1.2 and TLSv1.3")
                    .help(format!("{} TLSv1.2 TLSv1.3;", d.name)),
                ),
                proton_ir::tls::Protocol::Unknown => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid value \"{}\" in {}", a.value, d.name),
                    )
                    .label("not a protocol name")
                    .help(format!("{} TLSv1.2 TLSv1.3;", d.name)),
                ),
            }
        }
        (v12, v13)
    }

    /// `ssl_ciphers`: the rustls names of the TLS 1.2 suites, in order.
    fn ssl_ciphers(&mut self, d: Option<&Directive>) -> Vec<String> {
        self.cipher_list(d, "HIGH:!aNULL:!MD5")
    }

    /// A cipher-list directive (`ssl_ciphers`, `proxy_ssl_ciphers`; `default` when absent):
    /// the rustls names of the TLS 1.2 suites, in order.
    fn cipher_list(&mut self, d: Option<&Directive>, default: &str) -> Vec<String> {
        let spec = d.map_or(default, |d| arg(d, 0));
        match proton_ir::tls::cipher_list(spec) {
            Ok(list) => list
                .iter()
                .filter_map(|n| {
                    proton_ir::tls::TLS12_SUITES
                        .iter()
                        .find(|s| s.openssl == *n)
                        .map(|s| s.rustls.to_string())
                })
                .collect(),
            Err(e) => {
                if let Some(d) = d {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            format!("invalid {} \"{spec}\": {e}", d.name),
                        )
                        .label("this cipher list")
                        .help("OpenSSL cipher-list syntax, e.g. ssl_ciphers HIGH:!aNULL:!MD5; or ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
                    );
                }
                Vec::new()
            }
        }
    }

    /// `ssl_ecdh_curve`: rustls group names (empty: `auto`).
    fn ssl_ecdh_curve(&mut self, d: Option<&Directive>) -> Vec<String> {
        let Some(d) = d else {
            return Vec::new();
        };
        match proton_ir::tls::curve_list(arg(d, 0)) {
            Ok(None) => Vec::new(),
            Ok(Some(v)) => v.iter().map(|s| s.to_string()).collect(),
            Err(e) => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid ssl_ecdh_curve \"{}\": {e}", arg(d, 0)),
                    )
                    .label("this curve list")
                    .help("ssl_ecdh_curve auto; or ssl_ecdh_curve X25519:prime256v1:secp384r1;"),
                );
                Vec::new()
            }
        }
    }

    /// `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`.
    fn ssl_session_cache(&mut self, d: Option<&Directive>) -> SessionCache {
        let Some(d) = d else {
            return SessionCache::None;
        };
        let mut builtin = None;
        let mut shared = None;
        for a in &d.args {
            let v = a.value.as_str();
            let bad = |msg: String| {
                Diagnostic::error(Code::BadValue, a.span, msg)
                    .label("here")
                    .help("ssl_session_cache shared:SSL:10m; | builtin:1000 | none | off")
            };
            match v {
                "off" | "none" if d.args.len() == 1 => {
                    return if v == "off" {
                        SessionCache::Off
                    } else {
                        SessionCache::None
                    };
                }
                "builtin" => builtin = Some(20480),
                _ if v.starts_with("builtin:") => match v[8..].parse::<u64>() {
                    Ok(n) if n > 0 => builtin = Some(n),
                    _ => self.err(bad(format!("invalid session cache size \"{}\"", &v[8..]))),
                },
                _ if v.starts_with("shared:") => {
                    // As nginx: the name runs to the first `:`, and a zone is at least
                    // eight pages.
                    let rest = &v[7..];
                    match rest.split_once(':') {
                        Some((name, size)) if !name.is_empty() => match parse_size(size) {
                            Some(n) if n >= 32768 => {
                                match self.ssl_zones.get(name) {
                                    Some(&(had, first)) if had != n => self.err(
                                        bad(format!(
                                            "the size {n} of shared memory zone \"{name}\" conflicts with already declared size {had}"
                                        ))
                                        .also(first, "declared here"),
                                    ),
                                    Some(_) => {}
                                    None => {
                                        self.ssl_zones.insert(name.to_string(), (n, a.span));
                                    }
                                }
                                shared = Some((name.to_string(), n));
                            }
                            _ => self.err(bad(format!(
                                "invalid session cache size \"{size}\" (at least 32k)"
                            ))),
                        },
                        _ => self.err(bad(format!("invalid session cache \"{v}\""))),
                    }
                }
                _ => self.err(bad(format!("invalid session cache \"{v}\""))),
            }
        }
        SessionCache::Cache {
            builtin: builtin.unwrap_or(0),
            shared,
        }
    }

    /// The `proxy_ssl_*` settings of a level chain (location, server, http); `m`: the
    /// module (`proxy`, or `uwsgi` for `uwsgi_ssl_*`).
    pub(crate) fn upstream_tls(&mut self, chain: &[&Level<'_>], m: &str) -> UpstreamTls {
        let one = |name: &str| {
            let name = name.replacen("proxy_", &format!("{m}_"), 1);
            nearest(chain, &name).first().copied()
        };
        let flag = |name: &str, default: bool| one(name).map_or(default, |d| arg(d, 0) == "on");
        let (tls12, tls13) = self.ssl_protocols(one("proxy_ssl_protocols"));
        let ciphers = self.cipher_list(one("proxy_ssl_ciphers"), "DEFAULT");
        let file = |this: &Self, name: &str| one(name).map(|d| this.conf_path(arg(d, 0)));
        let mut certificate_vars = None;
        let certificate = match (
            one("proxy_ssl_certificate"),
            one("proxy_ssl_certificate_key"),
        ) {
            // nginx ≥ 1.21.0: files named per request, read when the connection is made.
            (Some(c), Some(k)) if arg(c, 0).contains('$') || arg(k, 0).contains('$') => {
                certificate_vars = Some(Box::new(CertificateTemplates {
                    certificate: self.template(c, 0),
                    key: self.template(k, 0),
                }));
                None
            }
            (Some(c), Some(k)) => Some(CertificatePair {
                certificate: self.conf_path(arg(c, 0)),
                key: self.conf_path(arg(k, 0)),
            }),
            (Some(c), None) => {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        c.arg_span(0),
                        format!(
                            "no \"{m}_ssl_certificate_key\" is defined for certificate \"{}\"",
                            arg(c, 0)
                        ),
                    )
                    .label("this certificate has no key")
                    .help("add proxy_ssl_certificate_key with the certificate's key"),
                );
                None
            }
            _ => None,
        };
        UpstreamTls {
            server_name: flag("proxy_ssl_server_name", false),
            name: one("proxy_ssl_name").map(|d| self.template(d, 0)),
            verify: flag("proxy_ssl_verify", false),
            trusted_certificate: file(self, "proxy_ssl_trusted_certificate"),
            verify_depth: one("proxy_ssl_verify_depth")
                .and_then(|d| crate::directives::parse_number(arg(d, 0)))
                .unwrap_or(1),
            certificate,
            certificate_vars,
            tls12,
            tls13,
            ciphers,
            session_reuse: flag("proxy_ssl_session_reuse", true),
            crl: file(self, "proxy_ssl_crl"),
            password_file: file(self, "proxy_ssl_password_file"),
        }
    }

    /// Builds the rustls client config of a location that proxies to `https://` as
    /// proton-run will, so that a file that cannot be used (or `proxy_ssl_verify` without
    /// trusted certificates) is reported here, once per distinct settings.
    pub(crate) fn check_upstream_tls(&mut self, tls: &UpstreamTls, span: Span) {
        if self.diags.has_errors() || !self.upstream_tls_checked.insert(tls.clone()) {
            return;
        }
        let here = proton_tls::resolve_upstream_paths(tls, &self.config_dir());
        if let Err(e) = proton_tls::client_config(&here) {
            self.err(
                Diagnostic::error(Code::BadValue, span, e)
                    .label("this pass uses the location's proxy_ssl_* (uwsgi_ssl_*) settings")
                    .help("check the *_ssl_* file names (and that the certificate key belongs to the certificate)"),
            );
        }
    }

    /// nginx's check for every address with `listen … ssl`: its default server must have a
    /// certificate (or reject handshakes). `listen_spans` has the span of a listen line of
    /// each (address, server).
    pub(crate) fn check_tls_listeners(&mut self, listen_spans: &[(String, ServerId, Span)]) {
        let state = |sid: ServerId| {
            let t = self
                .ir
                .servers
                .get(sid.0 as usize)
                .and_then(|s| s.tls.as_ref());
            (
                t.is_some_and(|t| !t.certificates.is_empty() || !t.certificate_vars.is_empty()),
                t.is_some_and(|t| t.reject_handshake),
            )
        };
        let mut missing = Vec::new();
        for l in &self.ir.listeners {
            if !l.ssl {
                continue;
            }
            let span_of = |sid: ServerId| {
                listen_spans
                    .iter()
                    .find(|(a, s, _)| *a == l.addr && *s == sid)
                    .map_or(Span::default(), |x| x.2)
            };
            match state(l.names.default) {
                (true, _) => {}
                (false, false) => missing.push((l.addr.clone(), span_of(l.names.default), true)),
                // As nginx: a default server that rejects handshakes leaves every other
                // server of the address to answer its own, so each needs a certificate (or
                // rejects too).
                (false, true) => {
                    for (a, sid, span) in listen_spans {
                        if *a == l.addr && state(*sid) == (false, false) {
                            missing.push((l.addr.clone(), *span, false));
                        }
                    }
                }
            }
        }
        for (addr, span, default) in missing {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    span,
                    format!("no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive ({addr})"),
                )
                .label(if default {
                    "this address speaks TLS; its default server has no certificate"
                } else {
                    "its default server rejects handshakes, so this server answers its own: it needs a certificate"
                })
                .help("add ssl_certificate and ssl_certificate_key to the server (or to http), or ssl_reject_handshake on"),
            );
        }
    }
}
