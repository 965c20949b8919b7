//! A loaded configuration: the verified IR plus what the runtime derives from it once
//! (compiled regexes, resolved paths). Built by the master before forking, so workers share
//! it copy-on-write.

use crate::upstream::PeerAddr;
use proton_ir::{Header, Ir, RegexId};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a configuration could not be loaded; one line for the error log.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The IR and everything derived from it.
pub struct Loaded {
    pub ir: Ir,
    /// The key set of each settings entry with `auth_jwt` (by settings index; `None`
    /// elsewhere), read from its `auth_jwt_key_file`s here, once.
    pub jwt_keys: Vec<Option<std::sync::Arc<proton_jwt::KeySet>>>,
    pub header: Header,
    /// `ir.regexes` compiled, by [`RegexId`].
    pub regexes: Vec<proton_ir::pattern::Regex>,
    /// For each location, the regex that selects it (regex locations only), so the
    /// runtime can take that match's captures.
    pub loc_regex: Vec<Option<RegexId>>,
    /// The directory relative paths in the IR are resolved against.
    pub prefix: PathBuf,
    pub path: PathBuf,
    /// Time to read, decode and verify the file, and to compile its regexes.
    pub load_time: Duration,
    pub regex_time: Duration,
    /// The address of every upstream server, by upstream then server index, resolved once
    /// at load (and so again at every reload). `None` for the servers of a `proxy_pass`
    /// given by variables (resolved per request).
    pub upstream_addrs: Vec<Vec<Option<PeerAddr>>>,
    /// The servers of each `resolver` (a name resolved at load, each address a server).
    pub resolver_addrs: Vec<Vec<SocketAddr>>,
    /// The `server … resolve` lines of every upstream: their peers are resolved at run
    /// time (`upstream_addrs` has `None` for them).
    pub resolve_servers: Vec<ResolveServer>,
    /// Per-peer state every worker of this generation shares (active connections,
    /// failures, health), mapped here, before the workers are forked.
    pub upstream_shared: std::sync::Arc<crate::upstream::SharedUpstreams>,
    /// The rustls config of every server with TLS settings, by server index (built here,
    /// in the master, so a certificate that cannot be read fails the load or reload).
    pub tls: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// The client-certificate verifier of every server with `ssl_verify_client`, by server
    /// index.
    pub client_auth: Vec<Option<std::sync::Arc<proton_tls::ClientAuth>>>,
    /// The `ssl_password_file` passphrases of servers whose certificates have variables,
    /// by server index (empty for the others).
    pub tls_passwords: Vec<std::sync::Arc<[String]>>,
    /// Each server's TLS config twin with the ChaCha20 suites first, for clients that
    /// prefer them (servers that choose suites by their own order), by server index.
    pub tls_chacha: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// The twins of `tls` and `tls_chacha` that offer HTTP/2 by ALPN (servers that may
    /// speak it), by server index.
    pub tls_h2: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    pub tls_h2_chacha: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// Where `ssl_stapling` fetches OCSP responses (each worker starts its thread), when
    /// some certificate needs it.
    pub ocsp: Option<std::sync::Arc<crate::ocsp::Fetcher>>,
    /// Warnings found while loading (nginx's, such as `"ssl_stapling" ignored`), for the
    /// error log.
    pub warnings: Vec<String>,
    /// The rustls client config for `https://` upstreams, by settings index (built here,
    /// from `proxy_ssl_*`).
    pub upstream_tls: Vec<Option<std::sync::Arc<rustls::ClientConfig>>>,
    /// The prepared answer of each location that only returns a constant text, by location
    /// id (see `worker::respond::ConstReturn`).
    pub(crate) returns: Vec<Option<Box<crate::worker::respond::ConstReturn>>>,
    /// The zone of every `limit_req_zone` and `limit_conn_zone`, by index into
    /// `ir.limit_zones`: mapped here, before the workers are forked; a reload that keeps a
    /// zone's name and size gets the same mapping (see `limits::Zone::get`).
    pub limit_zones: Vec<std::sync::Arc<crate::limits::Zone>>,
    /// The index of every `proxy_cache_path`, by index into `ir.cache_zones`: mapped here,
    /// before the workers are forked (kept by a reload as the limit zones are).
    pub cache_zones: Vec<crate::cache::index::Index>,
    /// The counters of `proton_metrics` for this generation's workers (one row per worker
    /// slot), mapped here, before the workers are forked; `None` when no location has
    /// `proton_metrics`.
    pub metrics: Option<crate::metrics::Table>,
}

/// An IP literal `host[:port]` (port 80 when absent), without any name lookup.
pub fn resolve_literal(address: &str) -> Option<SocketAddr> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip = address.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 80))
}

/// Resolves an upstream server address as written (`host:port`, `host` meaning port 80,
/// `[v6]:port`, `unix:PATH`), to its first address ([`resolve_upstream_all`] gives them all,
/// one peer each, as nginx). A unix socket path is used as written: nothing checks
/// here that it exists (nginx neither; a connect to it fails until it does).
pub fn resolve_upstream(address: &str) -> Result<PeerAddr, String> {
    if let Some(path) = PeerAddr::unix_path(address) {
        if path.is_empty() {
            return Err(format!("no path in the unix domain socket \"{address}\""));
        }
        return Ok(PeerAddr::unix(path));
    }
    resolve_inet(address).map(PeerAddr::Inet)
}

impl Loaded {
    /// A reload: each upstream server of this configuration that the previous one (`old`)
    /// had too — the same group name and address (the n-th server of that address in the
    /// group, for a group listing one twice) — keeps the state the old generation's workers
    /// gathered (see `SharedUpstreams::carry_peer`). Returns how many servers kept theirs.
    pub fn carry_upstream_state(&self, old: &Loaded) -> usize {
        use std::collections::HashMap;
        let mut was: HashMap<(&str, &PeerAddr, usize), (usize, usize)> = HashMap::new();
        for (u, group) in old.ir.upstreams.iter().enumerate() {
            let Some(addrs) = old.upstream_addrs.get(u) else {
                continue;
            };
            let mut seen: HashMap<&PeerAddr, usize> = HashMap::new();
            for (p, a) in addrs.iter().enumerate() {
                if let Some(a) = a {
                    let n = seen.entry(a).or_insert(0);
                    was.insert((group.name.as_str(), a, *n), (u, p));
                    *n += 1;
                }
            }
        }
        let mut carried = 0;
        // Health verdicts go over only to a group checked as before.
        let same_checks = |from: usize, to: usize| {
            let a = old
                .ir
                .upstreams
                .get(from)
                .and_then(|g| g.health_check.as_ref());
            let b = self
                .ir
                .upstreams
                .get(to)
                .and_then(|g| g.health_check.as_ref());
            a.is_some() && a == b
        };
        // `server … resolve` lines: the addresses known for the same name in the same group
        // (with this line's port), and the state too when the port is the same.
        for rs in &self.resolve_servers {
            let Some(group) = self.ir.upstreams.get(rs.upstream) else {
                continue;
            };
            let old_rs = old.resolve_servers.iter().find(|o| {
                o.host == rs.host
                    && o.nth == rs.nth
                    && old
                        .ir
                        .upstreams
                        .get(o.upstream)
                        .is_some_and(|g| g.name == group.name)
            });
            let Some(o) = old_rs else {
                continue;
            };
            for (to, from) in rs.slots.clone().zip(o.slots.clone()) {
                let Some(addr) = old.upstream_shared.peer_addr(o.upstream, from) else {
                    continue;
                };
                self.upstream_shared.set_peer_addr(
                    rs.upstream,
                    to,
                    addr.map(|a| SocketAddr::new(a.ip(), rs.port)),
                );
                if o.port == rs.port
                    && self.upstream_shared.carry_peer(
                        (rs.upstream, to),
                        &old.upstream_shared,
                        (o.upstream, from),
                        same_checks(o.upstream, rs.upstream),
                    )
                {
                    carried += 1;
                }
            }
        }
        for (u, group) in self.ir.upstreams.iter().enumerate() {
            let Some(addrs) = self.upstream_addrs.get(u) else {
                continue;
            };
            let mut seen: HashMap<&PeerAddr, usize> = HashMap::new();
            for (p, a) in addrs.iter().enumerate() {
                let Some(a) = a else {
                    continue;
                };
                let n = seen.entry(a).or_insert(0);
                let key = (group.name.as_str(), a, *n);
                *n += 1;
                if let Some(&from) = was.get(&key) {
                    if self.upstream_shared.carry_peer(
                        (u, p),
                        &old.upstream_shared,
                        from,
                        same_checks(from.0, u),
                    ) {
                        carried += 1;
                    }
                }
            }
        }
        carried
    }
}

/// The address of every upstream peer, by upstream then peer (`None`: none known at load).
pub type PeerAddrs = Vec<Vec<Option<PeerAddr>>>;

/// Peers a `server … resolve` line has room for (addresses beyond are not used).
pub const RESOLVE_SLOTS: usize = 32;

/// A `server name … resolve` line: peers `slots` of upstream `upstream` are its addresses,
/// found at run time (see `worker::upstream_resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveServer {
    pub upstream: usize,
    pub slots: std::ops::Range<usize>,
    /// The name as written, lowercased, without a trailing dot.
    pub host: String,
    pub port: u16,
    /// How many `resolve` lines of the group name the same host before this one (to match
    /// the line across a reload).
    pub nth: usize,
}

/// `p` resolved against `prefix` when relative.
fn resolve_in(prefix: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        prefix.join(path)
    }
}

/// Reads the key sets of `auth_jwt` (every `auth_jwt_key_file` of a settings entry in
/// one set), each file once however many entries name it; a file that cannot be read or
/// has a broken key fails the load.
fn jwt_key_sets(
    ir: &Ir,
    prefix: &Path,
) -> Result<Vec<Option<std::sync::Arc<proton_jwt::KeySet>>>, String> {
    let mut done: Vec<(&[String], std::sync::Arc<proton_jwt::KeySet>)> = Vec::new();
    let mut out = Vec::with_capacity(ir.settings.len());
    for s in &ir.settings {
        let Some(j) = s.auth.jwt.as_deref() else {
            out.push(None);
            continue;
        };
        if let Some((_, set)) = done.iter().find(|(f, _)| *f == &j.key_files[..]) {
            out.push(Some(set.clone()));
            continue;
        }
        let mut set: Option<proton_jwt::KeySet> = None;
        for f in &j.key_files {
            let path = resolve_in(prefix, f);
            let one = proton_jwt::KeySet::load(&path)
                .map_err(|e| format!("auth_jwt_key_file \"{}\": {e}", path.display()))?;
            match set.as_mut() {
                Some(s) => s.extend(one),
                None => set = Some(one),
            }
        }
        // (Keys fetched by auth_jwt_key_request only: an empty set to start from.)
        let set = set.unwrap_or_default();
        let set = std::sync::Arc::new(set);
        done.push((&j.key_files[..], set.clone()));
        out.push(Some(set));
    }
    Ok(out)
}

/// Resolves the servers of every upstream group with `resolve`: every address of a
/// server's name becomes a server of its own with the line's parameters (nginx's
/// round-robin init makes one peer per address). Returns the addresses, by group and
/// server; `Err((group, error))` for a name that does not resolve. A `server … resolve`
/// line with a host name is not resolved here: it becomes [`RESOLVE_SLOTS`] peers without
/// an address yet, listed in the second result.
pub fn expand_upstreams(
    upstreams: &mut [proton_ir::Upstream],
    resolve: impl Fn(&str) -> Result<Vec<PeerAddr>, String>,
) -> Result<(PeerAddrs, Vec<ResolveServer>), (String, String)> {
    let mut upstream_addrs = Vec::with_capacity(upstreams.len());
    let mut dynamic = Vec::new();
    for (ui, u) in upstreams.iter_mut().enumerate() {
        let mut addrs = Vec::with_capacity(u.servers.len());
        let mut servers = Vec::with_capacity(u.servers.len());
        for s in std::mem::take(&mut u.servers) {
            let literal = PeerAddr::unix_path(&s.address).is_some()
                || s.address.parse::<SocketAddr>().is_ok();
            if s.resolve && !literal {
                let host = host_part(&s.address);
                let port = s.address[host.len()..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(80);
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                let nth = dynamic
                    .iter()
                    .filter(|d: &&ResolveServer| d.upstream == ui && d.host == host)
                    .count();
                let start = servers.len();
                // No address yet: each worker's balancer holds these peers absent until
                // an address is found.
                for _ in 0..RESOLVE_SLOTS {
                    servers.push(s.clone());
                    addrs.push(None);
                }
                dynamic.push(ResolveServer {
                    upstream: ui,
                    slots: start..servers.len(),
                    host,
                    port,
                    nth,
                });
                continue;
            }
            let all = resolve(&s.address).map_err(|e| (u.name.clone(), e))?;
            for a in all {
                servers.push(s.clone());
                addrs.push(Some(a));
            }
        }
        u.servers = servers;
        upstream_addrs.push(addrs);
    }
    Ok((upstream_addrs, dynamic))
}

/// The servers of each `resolver`: an address as written, a name resolved now (as nginx,
/// which refuses the configuration when one does not resolve), each address a server.
pub fn resolve_resolvers(
    resolvers: &[proton_ir::Resolver],
) -> Result<Vec<Vec<SocketAddr>>, String> {
    resolvers
        .iter()
        .map(|r| {
            let mut all = Vec::new();
            for s in &r.servers {
                match s.parse::<SocketAddr>() {
                    Ok(a) => all.push(a),
                    Err(_) => match s.to_socket_addrs() {
                        Ok(it) => all.extend(it.filter(|a| !all.contains(a)).collect::<Vec<_>>()),
                        Err(e) => return Err(format!("host not found in resolver \"{s}\" ({e})")),
                    },
                }
            }
            Ok(all)
        })
        .collect()
}

/// [`resolve_upstream`] with every address of a name (in the resolver's order, without
/// repeats), as nginx makes one peer of each.
pub fn resolve_upstream_all(address: &str) -> Result<Vec<PeerAddr>, String> {
    if PeerAddr::unix_path(address).is_some() || address.parse::<SocketAddr>().is_ok() {
        return resolve_upstream(address).map(|a| vec![a]);
    }
    let first = resolve_inet(address)?;
    let mut all = vec![PeerAddr::Inet(first)];
    let with_port = format!("{}:{}", host_part(address), first.port());
    if let Ok(it) = with_port.to_socket_addrs() {
        for a in it {
            if !all.contains(&PeerAddr::Inet(a)) {
                all.push(PeerAddr::Inet(a));
            }
        }
    }
    Ok(all)
}

/// The host of `host[:port]` (brackets of an IPv6 literal kept).
fn host_part(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((h, p))
            if !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h
        }
        _ => address,
    }
}

fn resolve_inet(address: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return Ok(a);
    }
    let has_port = host_part(address).len() < address.len();
    let with_port = if has_port {
        address.to_string()
    } else {
        format!("{address}:80")
    };
    if let Ok(a) = with_port.parse::<SocketAddr>() {
        return Ok(a);
    }
    match with_port.to_socket_addrs() {
        Ok(mut it) => it
            .next()
            .ok_or_else(|| format!("host not found in upstream \"{address}\"")),
        Err(e) => Err(format!("host not found in upstream \"{address}\" ({e})")),
    }
}

/// Resolves the listeners given by host name (`listen example.com:80`), as nginx does when
/// it reads its configuration: each address of the name becomes a listener with the name's
/// servers. An address that another listener also has is refused (nginx would merge the
/// two server lists; documented).
pub fn resolve_listeners(ir: &mut Ir) -> Result<(), String> {
    let mut i = 0;
    while i < ir.listeners.len() {
        let addr = &ir.listeners[i].addr;
        if addr.parse::<SocketAddr>().is_ok() || addr.starts_with("unix:") {
            i += 1;
            continue;
        }
        let mut found: Vec<SocketAddr> = match addr.to_socket_addrs() {
            Ok(it) => it.collect(),
            Err(e) => {
                return Err(format!(
                    "host not found in \"{addr}\" of the \"listen\" directive ({e})"
                ))
            }
        };
        found.dedup();
        if found.is_empty() {
            return Err(format!(
                "host not found in \"{addr}\" of the \"listen\" directive"
            ));
        }
        let name = addr.clone();
        for a in &found {
            let s = a.to_string();
            if ir.listeners.iter().any(|l| l.addr == s) {
                return Err(format!(
                    "a duplicate listen {s} (\"{name}\" resolves to an address another listen names)"
                ));
            }
        }
        let template = ir.listeners[i].clone();
        ir.listeners[i].addr = found[0].to_string();
        for (k, a) in found.iter().enumerate().skip(1) {
            let mut l = template.clone();
            l.addr = a.to_string();
            ir.listeners.insert(i + k, l);
        }
        i += found.len();
    }
    Ok(())
}

impl Loaded {
    /// Reads, verifies and prepares an IR file. `prefix` defaults to the file's directory.
    pub fn load(path: &Path, prefix: Option<&Path>) -> Result<Loaded, LoadError> {
        let started = Instant::now();
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError(format!("cannot read {}: {e}", path.display())))?;
        let (header, mut ir) =
            proton_ir::decode(&bytes).map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        resolve_listeners(&mut ir).map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let load_time = started.elapsed();
        let started = Instant::now();
        let mut regexes = Vec::with_capacity(ir.regexes.len());
        for (i, r) in ir.regexes.iter().enumerate() {
            let re =
                proton_ir::pattern::compile_jit(&r.pattern, r.case_insensitive, ir.main.pcre_jit)
                    .map_err(|e| {
                    LoadError(format!(
                        "{}: regex #{i} does not compile: {e}",
                        path.display()
                    ))
                })?;
            regexes.push(re);
        }
        let regex_time = started.elapsed();
        let mut loc_regex = vec![None; ir.locations.len()];
        let trees = ir
            .servers
            .iter()
            .map(|s| &s.tree)
            .chain(ir.locations.iter().map(|l| l.tree()));
        for t in trees {
            for r in &t.regex {
                if let Some(slot) = loc_regex.get_mut(r.location.0 as usize) {
                    *slot = Some(r.regex);
                }
            }
        }
        let prefix = match prefix {
            Some(p) => p.to_path_buf(),
            None => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        let prefix = std::fs::canonicalize(&prefix).unwrap_or(prefix);
        let (upstream_addrs, resolve_servers) =
            expand_upstreams(&mut ir.upstreams, resolve_upstream_all).map_err(|(group, e)| {
                LoadError(format!("{}: {e} in upstream \"{group}\"", path.display()))
            })?;
        let resolver_addrs = resolve_resolvers(&ir.resolvers)
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let upstream_shared = crate::upstream::SharedUpstreams::new(&ir)
            .map(std::sync::Arc::new)
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let tls = crate::tls::server_configs(&ir, &prefix)
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let upstream_tls = crate::tls::upstream_configs(&ir, &prefix)
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let returns = crate::worker::respond::const_returns(&ir);
        let limit_zones = ir
            .limit_zones
            .iter()
            .map(|z| {
                let kind = match z.kind {
                    proton_ir::LimitZoneKind::Req { .. } => crate::limits::Kind::Req,
                    proton_ir::LimitZoneKind::Conn => crate::limits::Kind::Conn,
                };
                crate::limits::Zone::get(&z.name, z.size, kind)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let cache_zones = ir
            .cache_zones
            .iter()
            .map(|z| crate::cache::index::Index::get(&z.name, z.size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let jwt_keys = jwt_key_sets(&ir, &prefix)
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        let mut loaded = Loaded {
            jwt_keys,
            metrics: None,
            limit_zones,
            cache_zones,
            returns,
            ocsp: tls.ocsp,
            warnings: tls.warnings,
            tls: tls.configs,
            tls_chacha: tls.chacha,
            tls_h2: tls.h2,
            tls_h2_chacha: tls.h2_chacha,
            client_auth: tls.client_auth,
            tls_passwords: tls.passwords,
            upstream_tls,
            ir,
            header,
            regexes,
            loc_regex,
            prefix,
            path: path.to_path_buf(),
            load_time,
            regex_time,
            upstream_addrs,
            resolver_addrs,
            resolve_servers,
            upstream_shared,
        };
        // After the upstream groups are expanded (one server per peer) and with the
        // worker count the generation will have.
        loaded.metrics = crate::metrics::Table::new(&loaded.ir, loaded.worker_count())
            .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
        Ok(loaded)
    }

    /// A path from the config, resolved against the prefix when relative.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve_in(&self.prefix, p)
    }

    /// Matches regex `id` against `subject` (false for an id out of range).
    pub fn is_match(&self, id: RegexId, subject: &[u8]) -> bool {
        self.regexes
            .get(id.0 as usize)
            .is_some_and(|r| r.is_match(subject))
    }

    /// The number of workers to run: `PROTON_WORKERS`, else worker_processes (auto = CPUs).
    pub fn worker_count(&self) -> usize {
        // master_process off: this one process serves (nginx ignores worker_processes).
        if !self.ir.main.master_process {
            return 1;
        }
        if let Some(n) = std::env::var("PROTON_WORKERS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
        {
            return n.min(256);
        }
        match self.ir.main.worker_processes {
            proton_ir::WorkerProcesses::Count(n) => (n as usize).clamp(1, 256),
            proton_ir::WorkerProcesses::Auto => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proton_ir::{Balance, Upstream, UpstreamServer};

    #[test]
    fn every_address_of_a_name_is_a_server() {
        let mut two = UpstreamServer::new("two.test:8080");
        two.weight = 3;
        two.backup = false;
        let mut ups = vec![Upstream {
            name: "app".into(),
            explicit: true,
            servers: vec![UpstreamServer::new("127.0.0.9:80"), two],
            balance: Balance::RoundRobin,
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
        }];
        let fake = |a: &str| -> Result<Vec<PeerAddr>, String> {
            match a {
                "two.test:8080" => Ok(vec![
                    PeerAddr::Inet("10.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!())),
                    PeerAddr::Inet("[::1]:8080".parse().unwrap_or_else(|_| unreachable!())),
                ]),
                "nx.test:80" => Err("host not found".into()),
                other => resolve_upstream_all(other),
            }
        };
        let (addrs, dynamic) = expand_upstreams(&mut ups, fake).expect("resolves");
        assert!(dynamic.is_empty());
        let names: Vec<String> = addrs[0]
            .iter()
            .map(|a| a.as_ref().map_or_else(String::new, PeerAddr::to_string))
            .collect();
        assert_eq!(names, ["127.0.0.9:80", "10.0.0.1:8080", "[::1]:8080"]);
        let weights: Vec<u32> = ups[0].servers.iter().map(|s| s.weight).collect();
        assert_eq!(weights, [1, 3, 3]);
        assert_eq!(ups[0].servers[2].address, "two.test:8080");

        // `resolve`: a name is not looked up now; its line becomes RESOLVE_SLOTS peers
        // without an address (a literal address stays one peer).
        let mut r = UpstreamServer::new("Dyn.Test.:8081");
        r.resolve = true;
        let mut lit = UpstreamServer::new("127.0.0.2:80");
        lit.resolve = true;
        ups[0].servers = vec![lit, r.clone(), r];
        let (addrs, dynamic) = expand_upstreams(&mut ups, fake).expect("resolves");
        assert_eq!(addrs[0].len(), 1 + 2 * RESOLVE_SLOTS);
        assert!(addrs[0][1..].iter().all(Option::is_none));
        assert!(ups[0].servers[1..].iter().all(|s| s.resolve && !s.down));
        let want = |slots: std::ops::Range<usize>, nth| ResolveServer {
            upstream: 0,
            slots,
            host: "dyn.test".into(),
            port: 8081,
            nth,
        };
        assert_eq!(
            dynamic,
            [
                want(1..1 + RESOLVE_SLOTS, 0),
                want(1 + RESOLVE_SLOTS..1 + 2 * RESOLVE_SLOTS, 1)
            ]
        );

        ups[0].servers = vec![UpstreamServer::new("nx.test:80")];
        assert_eq!(
            expand_upstreams(&mut ups, fake).err(),
            Some(("app".to_string(), "host not found".to_string()))
        );
    }
}
