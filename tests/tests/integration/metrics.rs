//! `proton_metrics` over real sockets with two workers: the figures follow the requests
//! (by server, location and status class, upstream peers, limit zones), label values come
//! only from the config (requests to random URIs and hosts add no series), a reload starts
//! the per-config figures again while the totals go on, and the page passes
//! `promtool check metrics` (when promtool is installed) and a strict reading here.

use proton_tests::{dead_port, get, wait_until, Backend, Proton, TempDir};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

const CONF: &str = r#"
events {}
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;
    upstream backend { server 127.0.0.1:{live}; server 127.0.0.1:{dead}; }
    server {
        listen 127.0.0.1:{port};
        server_name example.com www.example.com;
        location = /metrics { proton_metrics; }
        location /a/ { return 200 "A\n"; }
        location ~ \.php$ { return 404; }
        location /up/ { proxy_pass http://backend/; proxy_next_upstream off; }
        location = /limited.txt { limit_req zone=perip; root {dir}; }
        location /if/ { if ($arg_x) { return 201; } return 202; }
    }
}
"#;

/// The page: each sample line's series (name and labels as written) and value. Checks the
/// format as it goes: every family has its HELP and TYPE before its samples, every sample
/// belongs to a declared family, and no series appears twice.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (head, body) = raw_get(port, "example.com", "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    parse(&body)
}

fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    assert!(body.ends_with('\n'), "the page ends with a line feed");
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let (name, kind) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
            assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample of no family: {line}");
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "series twice: {line}"
        );
    }
    out
}

/// A GET with a Host, read to the end (HTTP/1.0): the head and the body.
fn raw_get(port: u16, host: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    }
}

fn requests(loc: &str, class: &str) -> String {
    format!(
        "proton_http_requests_total{{server=\"example.com\",location=\"{loc}\",status=\"{class}\"}}"
    )
}

fn peer(kind: &str, port: u16) -> String {
    format!("proton_upstream_peer_{kind}_total{{upstream=\"backend\",peer=\"127.0.0.1:{port}\"}}")
}

/// Runs promtool's checker on the page when promtool is installed (Debian: `prometheus`).
fn promtool_check(port: u16) {
    let (_, body) = raw_get(port, "example.com", "/metrics");
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool is not installed: the page is checked by this test's reader only");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body.as_bytes()).expect("promtool stdin");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

#[test]
fn metrics_follow_requests_with_labels_from_the_config_only() {
    let t = TempDir::new("metrics");
    t.write("limited.txt", "L\n");
    let live = Backend::start("live");
    let dead = dead_port();
    let conf = CONF
        .replace("{live}", &live.port.to_string())
        .replace("{dead}", &dead.port.to_string());
    let p = Proton::start(t.path(), &conf, 2);
    let port = p.port;
    let first = scrape(port);
    let series: Vec<&String> = first.keys().collect();
    // Every location of the config has its five classes, the server level too (empty).
    for loc in [
        "= /metrics",
        "/a/",
        "~ \\\\.php$",
        "/up/",
        "= /limited.txt",
        "/if/",
        "",
    ] {
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            assert_eq!(
                first.get(&requests(loc, class)),
                Some(&0.0),
                "{loc} {class}"
            );
        }
    }
    assert_eq!(first.get("proton_config_generation"), Some(&1.0));
    assert_eq!(first.get("proton_config_reloads_total"), Some(&0.0));

    for _ in 0..3 {
        assert_eq!(get(port, Some("example.com"), "/a/x").0, 200);
    }
    assert_eq!(get(port, Some("example.com"), "/x/y.php").0, 404);
    assert_eq!(get(port, Some("example.com"), "/if/?x=1").0, 201);
    assert_eq!(get(port, Some("example.com"), "/if/").0, 202);
    // Requests to URIs and hosts no one configured: the server level, or the default
    // server (the same one here), never a series of their own.
    for i in 0..20 {
        let uri = format!("/random-{i}-{}", std::process::id());
        assert_eq!(get(port, Some(&format!("h{i}.invalid")), &uri).0, 404);
    }
    let mut now = BTreeMap::new();
    let counted = wait_until(Duration::from_secs(10), || {
        now = scrape(port);
        now.get(&requests("/a/", "2xx")) == Some(&3.0)
            && now.get(&requests("", "4xx")) == Some(&20.0)
    });
    assert!(counted, "{now:#?}");
    assert_eq!(now.get(&requests("~ \\\\.php$", "4xx")), Some(&1.0));
    // The `if` block counts as its location.
    assert_eq!(now.get(&requests("/if/", "2xx")), Some(&2.0));
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        series,
        "the series are those of the config, whatever the requests"
    );
    // Bytes and latency per server.
    let server = "{server=\"example.com\"}";
    assert!(now[&format!("proton_http_received_bytes_total{server}")] > 0.0);
    assert!(now[&format!("proton_http_sent_bytes_total{server}")] > 0.0);
    let count = now[&format!("proton_http_request_duration_seconds_count{server}")];
    assert!(count >= 26.0, "{count}");
    assert_eq!(
        now[&"proton_http_request_duration_seconds_bucket{server=\"example.com\",le=\"+Inf\"}"
            .to_string()],
        count
    );

    // Upstream peers: a live one and one that refuses; every attempt is counted.
    for _ in 0..4 {
        get(port, Some("example.com"), "/up/id");
    }
    let counted = wait_until(Duration::from_secs(10), || {
        now = scrape(port);
        now[&peer("requests", live.port)] + now[&peer("requests", dead.port)] >= 4.0
    });
    assert!(counted, "{now:#?}");
    assert_eq!(now[&peer("failures", live.port)], 0.0, "{now:#?}");
    assert!(now[&peer("failures", dead.port)] >= 1.0, "{now:#?}");
    assert_eq!(
        now[&peer("failures", dead.port)],
        now[&peer("requests", dead.port)]
    );
    assert!(now["proton_upstream_response_duration_seconds_count{upstream=\"backend\"}"] >= 4.0);
    // Their state now: no health check (healthy, unchecked); the refusing one has failed
    // attempts in its fail_timeout window, the live one none.
    let state = |g: &str, port: u16| {
        now[&format!("proton_upstream_peer_{g}{{upstream=\"backend\",peer=\"127.0.0.1:{port}\"}}")]
    };
    for p in [live.port, dead.port] {
        assert_eq!(state("healthy", p), 1.0, "{now:#?}");
        assert_eq!(state("checked", p), 0.0, "{now:#?}");
    }
    assert_eq!(state("fails", live.port), 0.0, "{now:#?}");
    assert!(state("fails", dead.port) >= 1.0, "{now:#?}");
    assert_eq!(state("active_connections", dead.port), 0.0, "{now:#?}");

    // limit_req at 1r/m: one passes, the next is refused.
    assert_eq!(get(port, Some("example.com"), "/limited.txt").0, 200);
    assert_eq!(get(port, Some("example.com"), "/limited.txt").0, 503);
    let zone =
        |r: &str| format!("proton_limit_req_requests_total{{zone=\"perip\",result=\"{r}\"}}");
    let counted = wait_until(Duration::from_secs(10), || {
        now = scrape(port);
        now[&zone("passed")] == 1.0 && now[&zone("rejected")] == 1.0
    });
    assert!(counted, "{now:#?}");

    // Connections as stub_status counts them: the page's own.
    assert_eq!(now["proton_connections_active"], 1.0);
    assert!(now["proton_requests_total"] >= 30.0);
    promtool_check(port);

    // Only GET and HEAD.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.write_all(b"POST /metrics HTTP/1.0\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.read_to_end(&mut raw);
    assert!(raw.starts_with(b"HTTP/1.1 405"), "{raw:?}");
}

#[test]
fn a_reload_starts_the_config_figures_again_and_keeps_the_totals() {
    let t = TempDir::new("metrics-reload");
    t.write("limited.txt", "L\n");
    let dead = dead_port();
    let conf = CONF
        .replace("{live}", &dead.port.to_string())
        .replace("{dead}", &dead.port.to_string());
    let p = Proton::start(t.path(), &conf, 2);
    let port = p.port;
    for _ in 0..5 {
        assert_eq!(get(port, Some("example.com"), "/a/").0, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(port, Some("example.com"), "/x.php").0, 404);
    }
    let mut before = BTreeMap::new();
    assert!(wait_until(Duration::from_secs(10), || {
        before = scrape(port);
        before.get(&requests("/a/", "2xx")) == Some(&5.0)
            && before.get(&requests("~ \\\\.php$", "4xx")) == Some(&3.0)
    }));
    // The new config renames a location: its series go, the new one's come.
    p.compile(&conf.replace("location /a/ {", "location /b/ {"));
    p.signal("HUP");
    let mut after = BTreeMap::new();
    let reloaded = wait_until(Duration::from_secs(20), || {
        after = scrape(port);
        after.get("proton_config_generation") == Some(&2.0)
            && after.contains_key(&requests("/b/", "2xx"))
    });
    assert!(reloaded, "{after:#?}");
    assert_eq!(after.get("proton_config_reloads_total"), Some(&1.0));
    assert_eq!(after.get("proton_config_reload_failures_total"), Some(&0.0));
    assert!(!after.contains_key(&requests("/a/", "2xx")), "{after:#?}");
    assert_eq!(after.get(&requests("/b/", "2xx")), Some(&0.0));
    // Per-config figures start again; the totals since the start go on.
    assert_eq!(after.get(&requests("~ \\\\.php$", "4xx")), Some(&0.0));
    assert!(after["proton_requests_total"] > before["proton_requests_total"]);
    assert!(
        after["proton_connections_accepted_total"] > before["proton_connections_accepted_total"]
    );
    // A reload that fails (the IR is not readable) is counted as one.
    std::fs::write(t.path().join("proton.ir"), b"not an IR").expect("write");
    p.signal("HUP");
    let failed = wait_until(Duration::from_secs(20), || {
        after = scrape(port);
        after.get("proton_config_reload_failures_total") == Some(&1.0)
    });
    assert!(failed, "{after:#?}");
    assert_eq!(after.get("proton_config_generation"), Some(&2.0));
}
