//! The live figures of a running server, as `protonctl status` and `protonctl top` show
//! them: read from the server's own `proton_metrics` page over HTTP (protonctl links no
//! runtime code and maps no shared memory; the page is the one interface, the same a
//! Prometheus scrape uses).
//!
//! The page is found in the IR (`protonc inspect`): the first location with
//! `proton_metrics` that a plain GET can reach (an exact or prefix location of a server
//! with a listen address without `ssl`), asked for with the server's first name as Host;
//! `--metrics URL` names it instead (`http://host:port/path`).

use serde_json::Value;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::time::Duration;

/// How long a request for the page may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest page read (a config with tens of thousands of locations makes a big one).
const PAGE_MAX: u64 = 64 << 20;

/// Where the page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: Addr,
    /// The Host header.
    pub host: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `host:port` to connect to.
    Tcp(String),
    /// A unix-domain socket path.
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.addr {
            Addr::Tcp(a) => write!(f, "http://{a}{} (Host: {})", self.path, self.host),
            Addr::Unix(p) => write!(
                f,
                "unix:{}:{} (Host: {})",
                p.display(),
                self.path,
                self.host
            ),
        }
    }
}

/// `http://host:port/path` (port 80 when absent, path `/metrics` when absent).
pub fn parse_url(url: &str) -> Result<Endpoint, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are read"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    if hostport.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let has_port = match hostport.rfind(':') {
        Some(i) => !hostport[i..].contains(']'),
        None => false,
    };
    let addr = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok(Endpoint {
        addr: Addr::Tcp(addr),
        host: hostport.to_string(),
        path: path.to_string(),
    })
}

/// The first `proton_metrics` location of the IR that a plain GET reaches (see the module
/// documentation), `None` when there is none.
pub fn discover(v: &Value) -> Option<Endpoint> {
    let ir = v.get("ir")?;
    let text = ir.get("text")?.as_str()?;
    let text_of = |r: &Value| -> Option<&str> {
        let start = usize::try_from(r.get("start")?.as_u64()?).ok()?;
        let len = usize::try_from(r.get("len")?.as_u64()?).ok()?;
        text.get(start..start.checked_add(len)?)
    };
    let servers = ir.get("servers")?.as_array()?;
    let listeners = ir.get("listeners")?.as_array()?;
    for loc in ir.get("locations")?.as_array()? {
        let on = loc
            .pointer("/conf/proton_metrics")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let kind = loc.get("kind").and_then(Value::as_str).unwrap_or("");
        if !on || !matches!(kind, "Exact" | "Prefix" | "PrefixNoRegex") {
            continue;
        }
        let Some(path) = loc.get("name").and_then(text_of) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let Some(sid) = loc.get("server").and_then(Value::as_u64) else {
            continue;
        };
        let first_name = servers
            .get(usize::try_from(sid).ok()?)
            .and_then(|s| s.get("names")?.as_array()?.first()?.as_str())
            .filter(|n| !n.is_empty() && !n.contains('*') && !n.starts_with('~'))
            .map(|n| n.trim_start_matches('.').to_string());
        // A listener of the server without TLS: its default server, or one of its names.
        for l in listeners {
            if l.get("ssl").and_then(Value::as_bool).unwrap_or(true) {
                continue;
            }
            let names = l.get("names");
            let is_default =
                names.and_then(|n| n.get("default")).and_then(Value::as_u64) == Some(sid);
            let named = names
                .and_then(|n| n.get("exact"))
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|e| e.get(1).and_then(Value::as_u64) == Some(sid))
                });
            if !is_default && !named {
                continue;
            }
            let Some(addr) = l.get("addr").and_then(Value::as_str) else {
                continue;
            };
            let host = match (&first_name, is_default) {
                (Some(n), _) => n.clone(),
                (None, true) => "localhost".to_string(),
                (None, false) => continue,
            };
            return Some(Endpoint {
                addr: connect_addr(addr),
                host,
                path: path.to_string(),
            });
        }
    }
    None
}

/// Where to connect for a listen address: a wildcard becomes the loopback address.
fn connect_addr(listen: &str) -> Addr {
    if let Some(p) = listen.strip_prefix("unix:") {
        return Addr::Unix(p.into());
    }
    if let Some(port) = listen.strip_prefix("0.0.0.0:") {
        return Addr::Tcp(format!("127.0.0.1:{port}"));
    }
    if let Some(port) = listen.strip_prefix("[::]:") {
        return Addr::Tcp(format!("[::1]:{port}"));
    }
    if let Some(port) = listen.strip_prefix("*:") {
        return Addr::Tcp(format!("127.0.0.1:{port}"));
    }
    Addr::Tcp(listen.to_string())
}

/// GETs the page; its body, or why not.
pub fn fetch(ep: &Endpoint) -> Result<String, String> {
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: protonctl\r\n\r\n",
        ep.path, ep.host
    );
    let raw = match &ep.addr {
        Addr::Tcp(a) => {
            use std::net::ToSocketAddrs;
            let sa = a
                .to_socket_addrs()
                .map_err(|e| format!("{a}: {e}"))?
                .next()
                .ok_or_else(|| format!("{a}: no address"))?;
            let s = std::net::TcpStream::connect_timeout(&sa, TIMEOUT)
                .map_err(|e| format!("{ep}: {e}"))?;
            exchange(s, &request).map_err(|e| format!("{ep}: {e}"))?
        }
        Addr::Unix(p) => {
            let s = std::os::unix::net::UnixStream::connect(p).map_err(|e| format!("{ep}: {e}"))?;
            exchange(s, &request).map_err(|e| format!("{ep}: {e}"))?
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{ep}: no complete response"))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        let line = head.lines().next().unwrap_or("");
        return Err(format!("{ep}: {line}"));
    }
    Ok(body.to_string())
}

/// Something both a TCP and a unix stream are.
trait Stream: Read + Write {
    fn timeouts(&self, t: Duration) -> std::io::Result<()>;
}

impl Stream for std::net::TcpStream {
    fn timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Stream for std::os::unix::net::UnixStream {
    fn timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

fn exchange(mut s: impl Stream, request: &str) -> std::io::Result<Vec<u8>> {
    s.timeouts(TIMEOUT)?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    s.take(PAGE_MAX).read_to_end(&mut out)?;
    Ok(out)
}

/// One sample of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The samples of a page in Prometheus' text format (lines it cannot read are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, mut rest) = match series.find('{') {
        Some(i) => (&series[..i], series.get(i + 1..)?.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"")?;
        let mut v = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => v.push('\n'),
                    Some((_, c)) => v.push(c),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => v.push(c),
            }
        }
        let end = end?;
        labels.push((k.trim_start_matches(',').to_string(), v));
        rest = after.get(end + 1..)?.trim_start_matches(',');
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The figures protonctl shows, taken from one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub requests: f64,
    pub accepted: f64,
    pub active: f64,
    pub reading: f64,
    pub writing: f64,
    pub idle: f64,
    pub generation: f64,
    pub reloads: f64,
    pub reload_failures: f64,
    pub tls: f64,
    pub tls_resumed: f64,
    /// Requests by status class 1xx..5xx, all locations together.
    pub classes: [f64; 5],
    pub bytes_in: f64,
    pub bytes_out: f64,
    /// Request latency histogram of all servers: (upper bound in seconds, cumulative).
    pub latency: Vec<(f64, f64)>,
    /// (server, location) → requests, 5xx.
    pub locations: Vec<((String, String), f64, f64)>,
    /// (upstream, peer) → attempts, failures.
    pub peers: Vec<((String, String), f64, f64)>,
    /// (zone, result) → count, for the refusals and delays of both limit kinds.
    pub limits: Vec<((String, String), f64)>,
}

impl Figures {
    pub fn from_samples(samples: &[Sample]) -> Figures {
        let mut f = Figures::default();
        for s in samples {
            let v = s.value;
            match s.name.as_str() {
                "proton_requests_total" => f.requests = v,
                "proton_connections_accepted_total" => f.accepted = v,
                "proton_connections_active" => f.active = v,
                "proton_connections_reading" => f.reading = v,
                "proton_connections_writing" => f.writing = v,
                "proton_connections_idle" => f.idle = v,
                "proton_config_generation" => f.generation = v,
                "proton_config_reloads_total" => f.reloads = v,
                "proton_config_reload_failures_total" => f.reload_failures = v,
                "proton_tls_handshakes_total" => f.tls = v,
                "proton_tls_handshakes_resumed_total" => f.tls_resumed = v,
                "proton_http_received_bytes_total" => f.bytes_in += v,
                "proton_http_sent_bytes_total" => f.bytes_out += v,
                "proton_http_requests_total" => {
                    let class = s
                        .label("status")
                        .as_bytes()
                        .first()
                        .copied()
                        .unwrap_or(b'5');
                    let i = usize::from(class.saturating_sub(b'1')).min(4);
                    f.classes[i] += v;
                    let key = (
                        s.label("server").to_string(),
                        s.label("location").to_string(),
                    );
                    let five = if i == 4 { v } else { 0.0 };
                    match f.locations.iter_mut().find(|(k, ..)| *k == key) {
                        Some((_, n, e)) => {
                            *n += v;
                            *e += five;
                        }
                        None => f.locations.push((key, v, five)),
                    }
                }
                "proton_http_request_duration_seconds_bucket" => {
                    let le = match s.label("le") {
                        "+Inf" => f64::INFINITY,
                        x => x.parse().unwrap_or(f64::INFINITY),
                    };
                    match f.latency.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, n)) => *n += v,
                        None => f.latency.push((le, v)),
                    }
                }
                "proton_upstream_peer_requests_total" | "proton_upstream_peer_failures_total" => {
                    let key = (s.label("upstream").to_string(), s.label("peer").to_string());
                    let fail = s.name.ends_with("failures_total");
                    let e = match f.peers.iter_mut().position(|(k, ..)| *k == key) {
                        Some(i) => &mut f.peers[i],
                        None => {
                            f.peers.push((key, 0.0, 0.0));
                            let last = f.peers.len() - 1;
                            &mut f.peers[last]
                        }
                    };
                    if fail {
                        e.2 += v;
                    } else {
                        e.1 += v;
                    }
                }
                "proton_limit_req_requests_total" | "proton_limit_conn_requests_total" => {
                    let result = s.label("result");
                    if result != "passed" {
                        let kind = if s.name.contains("limit_req") {
                            "limit_req"
                        } else {
                            "limit_conn"
                        };
                        let key = (format!("{kind} {}", s.label("zone")), result.to_string());
                        f.limits.push((key, v));
                    }
                }
                _ => {}
            }
        }
        f.latency
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        f
    }

    /// The upper bound of the bucket that holds quantile `q` of the request latencies.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.latency.last()?.1;
        if total <= 0.0 {
            return None;
        }
        self.latency
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map(|(le, _)| *le)
    }
}

/// The growth of a counter over `secs`, per second (a counter that went down was reset by
/// a reload: what it has now is counted).
fn rate(now: f64, before: f64, secs: f64) -> f64 {
    let d = if now >= before { now - before } else { now };
    if secs > 0.0 {
        d / secs
    } else {
        0.0
    }
}

fn secs_text(s: Option<f64>) -> String {
    match s {
        None => "-".to_string(),
        Some(s) if s.is_infinite() => "> 10 s".to_string(),
        Some(s) if s < 1.0 => format!("≤ {} ms", (s * 1000.0).round()),
        Some(s) => format!("≤ {s} s"),
    }
}

fn bytes_text(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The figures block of `protonctl status` (`prev`: the figures `secs` earlier, for rates).
pub fn render_status(f: &Figures, prev: Option<(&Figures, f64)>) -> String {
    let mut s = String::new();
    let per_sec = |now: f64, get: fn(&Figures) -> f64| -> String {
        match prev {
            Some((p, secs)) => format!(", {:.1}/s", rate(now, get(p), secs)),
            None => String::new(),
        }
    };
    let _ = writeln!(
        s,
        "requests     {}{}",
        f.requests,
        per_sec(f.requests, |x| x.requests)
    );
    let _ = writeln!(
        s,
        "conns        active {}  reading {}  writing {}  idle {}  (accepted {}{})",
        f.active,
        f.reading,
        f.writing,
        f.idle,
        f.accepted,
        per_sec(f.accepted, |x| x.accepted)
    );
    let c = &f.classes;
    let _ = writeln!(
        s,
        "status       1xx {}  2xx {}  3xx {}  4xx {}  5xx {}  (since the last reload)",
        c[0], c[1], c[2], c[3], c[4]
    );
    let _ = writeln!(
        s,
        "latency      p50 {}  p99 {}",
        secs_text(f.quantile(0.5)),
        secs_text(f.quantile(0.99))
    );
    let _ = writeln!(
        s,
        "bytes        in {}  out {}",
        bytes_text(f.bytes_in),
        bytes_text(f.bytes_out)
    );
    for ((up, peer), n, fails) in &f.peers {
        let _ = writeln!(s, "upstream     {up} {peer}: {n} attempts, {fails} failed");
    }
    for ((zone, result), n) in &f.limits {
        if *n > 0.0 {
            let _ = writeln!(s, "limits       {zone}: {result} {n}");
        }
    }
    let _ = writeln!(
        s,
        "tls          {} handshakes ({} resumed)",
        f.tls, f.tls_resumed
    );
    let _ = write!(
        s,
        "reloads      {} ({} failed), generation {}",
        f.reloads, f.reload_failures, f.generation
    );
    s
}

/// `protonctl top`: the busiest locations and upstream servers, by requests per second
/// over the last `secs` (by total when there is no earlier page), at most `rows` each.
pub fn render_top(f: &Figures, prev: Option<(&Figures, f64)>, rows: usize) -> String {
    let mut s = String::new();
    let over = match prev {
        Some((_, secs)) => format!("over the last {secs:.1} s"),
        None => "since the last reload".to_string(),
    };
    let _ = writeln!(
        s,
        "{:>10} {:>10} {:>8}  LOCATION ({over})",
        "REQ/S", "TOTAL", "5XX"
    );
    let mut locs: Vec<(f64, &(String, String), f64, f64)> = f
        .locations
        .iter()
        .map(|(k, n, e)| {
            let r = prev.map_or(*n, |(p, secs)| {
                let before = p
                    .locations
                    .iter()
                    .find(|(pk, ..)| pk == k)
                    .map_or(0.0, |x| x.1);
                rate(*n, before, secs)
            });
            (r, k, *n, *e)
        })
        .collect();
    locs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    for (r, (server, loc), n, e) in locs.iter().take(rows) {
        let loc = if loc.is_empty() {
            "(server level)"
        } else {
            loc
        };
        let r = if prev.is_some() {
            format!("{r:.1}")
        } else {
            "-".into()
        };
        let _ = writeln!(s, "{r:>10} {n:>10} {e:>8}  {server} {loc}");
    }
    let _ = writeln!(
        s,
        "\n{:>10} {:>10} {:>8}  UPSTREAM SERVER",
        "REQ/S", "TOTAL", "FAILED"
    );
    let mut peers: Vec<(f64, &(String, String), f64, f64)> = f
        .peers
        .iter()
        .map(|(k, n, e)| {
            let r = prev.map_or(*n, |(p, secs)| {
                let before = p.peers.iter().find(|(pk, ..)| pk == k).map_or(0.0, |x| x.1);
                rate(*n, before, secs)
            });
            (r, k, *n, *e)
        })
        .collect();
    peers.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    if peers.is_empty() {
        let _ = writeln!(s, "{:>32}(none)", "");
    }
    for (r, (up, peer), n, e) in peers.iter().take(rows) {
        let r = if prev.is_some() {
            format!("{r:.1}")
        } else {
            "-".into()
        };
        let _ = writeln!(s, "{r:>10} {n:>10} {e:>8}  {up} {peer}");
    }
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP proton_requests_total x\n# TYPE proton_requests_total counter\n\
proton_requests_total 10\n\
proton_http_requests_total{server=\"a\",location=\"~ \\\\.php$\",status=\"2xx\"} 4\n\
proton_http_requests_total{server=\"a\",location=\"~ \\\\.php$\",status=\"5xx\"} 1\n\
proton_http_requests_total{server=\"a\",location=\"/b\",status=\"2xx\"} 6\n\
proton_http_request_duration_seconds_bucket{server=\"a\",le=\"0.005\"} 8\n\
proton_http_request_duration_seconds_bucket{server=\"a\",le=\"+Inf\"} 10\n\
proton_upstream_peer_requests_total{upstream=\"u\",peer=\"127.0.0.1:1\"} 7\n\
proton_upstream_peer_failures_total{upstream=\"u\",peer=\"127.0.0.1:1\"} 2\n";

    #[test]
    fn reads_a_page() {
        let samples = parse(PAGE);
        assert_eq!(samples.len(), 8);
        assert_eq!(samples[1].label("location"), "~ \\.php$");
        let f = Figures::from_samples(&samples);
        assert_eq!(f.requests, 10.0);
        assert_eq!(f.classes, [0.0, 10.0, 0.0, 0.0, 1.0]);
        assert_eq!(f.quantile(0.5), Some(0.005));
        assert_eq!(f.quantile(0.99), Some(f64::INFINITY));
        assert_eq!(
            f.peers,
            vec![(("u".into(), "127.0.0.1:1".into()), 7.0, 2.0)]
        );
        let top = render_top(&f, None, 10);
        let first = top.lines().nth(1).unwrap_or_default();
        assert!(first.contains("/b"), "{top}");
        let mut later = f.clone();
        later.locations[0].1 += 20.0;
        let top = render_top(&later, Some((&f, 2.0)), 1);
        assert!(
            top.lines().nth(1).unwrap_or_default().contains("10.0"),
            "{top}"
        );
        assert!(top.contains("~ \\.php$"), "{top}");
        assert!(render_status(&f, Some((&f, 1.0))).contains("requests     10, 0.0/s"));
    }

    #[test]
    fn urls() {
        let e = parse_url("http://127.0.0.1:8080/m").expect("url");
        assert_eq!(e.addr, Addr::Tcp("127.0.0.1:8080".into()));
        assert_eq!((e.host.as_str(), e.path.as_str()), ("127.0.0.1:8080", "/m"));
        let e = parse_url("http://localhost").expect("url");
        assert_eq!(e.addr, Addr::Tcp("localhost:80".into()));
        assert_eq!(e.path, "/metrics");
        assert!(parse_url("https://x/").is_err());
        assert_eq!(connect_addr("0.0.0.0:80"), Addr::Tcp("127.0.0.1:80".into()));
        assert_eq!(connect_addr("[::]:80"), Addr::Tcp("[::1]:80".into()));
    }
}
