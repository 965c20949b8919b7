//! What the proxy sends instead of the client's request parts: `proxy_method`,
//! `proxy_set_body`, `proxy_pass_request_body`, `proxy_pass_request_headers` — read back
//! from the test backend's `/echo` dump.

use proton_tests::{raw_exchange, Backend, Proton, TempDir};
use std::time::Duration;

/// The backend's dump of what reached it through `path` (`request` is the client's whole
/// request, `{path}` in it replaced), and whether the connection still answers a second
/// request after it (the client's body was taken off the connection).
fn through(p: &Proton, request: &str) -> (String, bool) {
    let follow = "GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let bytes = format!("{request}{follow}");
    let (raw, _) = raw_exchange(p.port, bytes.as_bytes(), Duration::from_secs(10));
    let text = String::from_utf8_lossy(&raw).to_string();
    let second = text.matches("HTTP/1.1 200").count() == 2;
    (text, second)
}

#[test]
fn method_body_and_headers_can_be_replaced() {
    let t = TempDir::new("proxy-request-parts");
    let dir = t.path().to_path_buf();
    let b = Backend::start("b");
    let dead = proton_tests::dead_port();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}};\n\
         location /echo {{ proxy_pass http://127.0.0.1:{bp}; }}\n\
         location /const {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_method POST; }}\n\
         location /var {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_method $arg_m; }}\n\
         location /parent {{ proxy_method PUT; location /parent/child {{ proxy_pass http://127.0.0.1:{bp}/echo; }} }}\n\
         location /body {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_set_body \"b=$arg_v\"; }}\n\
         location /nobody {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; }}\n\
         location /nobody-cl {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_pass_request_body off; }}\n\
         location /noheaders {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_pass_request_headers off; proxy_set_header X-Own yes; }}\n\
         location /hdrmethod {{ proxy_pass http://127.0.0.1:{bp}/echo; proxy_method $http_x_m; }}\n\
         location /deadbody {{ proxy_pass http://127.0.0.1:{dp}; proxy_set_body \"x\"; }}\n\
         }}\n}}\n",
        bp = b.port,
        dp = dead.port
    );
    let p = Proton::start(&dir, &conf, 1);
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Client: c\r\n\r\n");
    let post = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nX-Client: c\r\nContent-Length: 11\r\n\r\nclient-body")
    };

    let (r, _) = through(&p, &get("/const"));
    assert!(r.contains("\r\n\r\nPOST /echo HTTP/1.0"), "{r}");
    let (r, _) = through(&p, &get("/var?m=PATCH"));
    assert!(r.contains("\r\n\r\nPATCH /echo?m=PATCH HTTP/1.0"), "{r}");
    let (r, _) = through(&p, &get("/parent/child"));
    assert!(r.contains("\r\n\r\nPUT /echo HTTP/1.0"), "{r}");

    // proxy_set_body: the body and its length are the directive's; the client's body is
    // dropped from the connection, which goes on to the next request.
    let (r, second) = through(&p, &post("/body?v=1"));
    assert!(
        r.contains("content-length: 3\n") || r.contains("Content-Length: 3\n"),
        "{r}"
    );
    assert!(r.contains("\n\nb=1"), "{r}");
    assert!(!r.contains("client-body\nHTTP") && second, "{r}");

    // proxy_pass_request_body off (with nginx's companion line): no body, no length.
    let (r, second) = through(&p, &post("/nobody"));
    assert!(
        !r.to_ascii_lowercase().contains("content-length: 11"),
        "{r}"
    );
    assert!(second, "{r}");
    // Without it, nginx announces the client's length all the same.
    let (r, _) = through(&p, &get("/nobody-cl"));
    assert!(r.contains("\r\n\r\nGET /echo HTTP/1.0"), "{r}");

    // proxy_pass_request_headers off: the client's X-Client is not sent, X-Own is.
    let (r, _) = through(&p, &get("/noheaders"));
    let lower = r.to_ascii_lowercase();
    assert!(
        lower.contains("x-own: yes") && !lower.contains("x-client"),
        "{r}"
    );
    let (r, _) = through(&p, &get("/echo"));
    assert!(r.to_ascii_lowercase().contains("x-client: c"), "{r}");

    // A method from variables that is not a token never reaches the request line.
    let (r, _) = through(
        &p,
        "GET /hdrmethod HTTP/1.1\r\nHost: localhost\r\nX-M: GET /x HTTP/1.1\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 500"), "{r}");

    // The upstream fails: the client's body (here shaped as a request) is still dropped
    // from the connection, never read as the next request.
    let smuggled = "GET /smuggled HTTP/1.1\r\nX: y\r\n\r\n";
    let (r, _) = through(
        &p,
        &format!(
            "POST /deadbody HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        ),
    );
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
    // The next request answered is the pipelined GET /echo, nothing in between.
    assert_eq!(r.matches("HTTP/1.1 ").count(), 2, "{r}");
    assert!(
        r.contains("\r\n\r\nGET /echo HTTP/1.0") && !r.contains("/smuggled"),
        "{r}"
    );
}

#[test]
fn upstream_variables_list_every_attempt_as_nginx() {
    let t = TempDir::new("proxy-upstream-lists");
    let dir = t.path().to_path_buf();
    let b = Backend::start("live");
    let dead = proton_tests::dead_port();
    let conf = format!(
        "events {{}}\nhttp {{\n\
         upstream u {{ server 127.0.0.1:{dp}; server 127.0.0.1:{bp}; }}\n\
         upstream down {{ server 127.0.0.1:{bp} down; }}\n\
         server {{\n  listen 127.0.0.1:{{port}};\n\
         add_header X-A $upstream_addr always;\n\
         add_header X-S $upstream_status always;\n\
         add_header X-C $upstream_connect_time always;\n\
         add_header X-H $upstream_header_time always;\n\
         add_header X-R $upstream_response_time always;\n\
         add_header X-L $upstream_response_length always;\n\
         add_header X-Sent $upstream_bytes_sent always;\n\
         add_header X-Recv $upstream_bytes_received always;\n\
         location / {{ proxy_pass http://u; }}\n\
         location /down {{ proxy_pass http://down; }}\n\
         }}\n}}\n",
        dp = dead.port,
        bp = b.port
    );
    let p = Proton::start(&dir, &conf, 1);
    let r = proton_tests::request(p.port, Some("localhost"), "/id").expect("request");
    assert_eq!(r.status, 200);
    let h = |n: &str| r.header(n).unwrap_or_default().to_string();
    // The refused server, then the live one; the header is made before the live attempt's
    // response time is known ("-"), as nginx.
    assert_eq!(
        h("x-a"),
        format!("127.0.0.1:{}, 127.0.0.1:{}", dead.port, b.port)
    );
    assert_eq!(h("x-s"), "502, 200");
    let times = |v: &str| v.split(", ").map(str::to_string).collect::<Vec<_>>();
    let c = times(&h("x-c"));
    let hd = times(&h("x-h"));
    let rt = times(&h("x-r"));
    let ms = |v: &str| v.len() == 5 && v.as_bytes()[1] == b'.';
    assert!(c.len() == 2 && c[0] == "-" && ms(&c[1]), "{c:?}");
    assert!(hd.len() == 2 && hd[0] == "-" && ms(&hd[1]), "{hd:?}");
    assert!(rt.len() == 2 && ms(&rt[0]) && rt[1] == "-", "{rt:?}");
    let sent = times(&h("x-sent"));
    let recv = times(&h("x-recv"));
    assert!(
        sent[0] == "0" && sent[1].parse::<u64>().unwrap_or(0) > 0,
        "{sent:?}"
    );
    assert!(
        recv[0] == "0" && recv[1].parse::<u64>().unwrap_or(0) > 0,
        "{recv:?}"
    );
    // No live server: the 502 names the group.
    let r = proton_tests::request(p.port, Some("localhost"), "/down").expect("request");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-a"), Some("down"));
    assert_eq!(r.header("x-s"), Some("502"));
}

/// The timer field of the established TCP sockets connected to `port` (from /proc/net/tcp):
/// 2 is the keep-alive timer.
fn timers_to(port: u16) -> Vec<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let remote_port = f.get(2)?.rsplit(':').next()?;
            let established = *f.get(3)? == "01";
            let timer = f.get(5)?.split(':').next()?;
            (established && u16::from_str_radix(remote_port, 16).ok()? == port)
                .then(|| u8::from_str_radix(timer, 16).ok())
                .flatten()
        })
        .collect()
}

#[test]
fn proxy_socket_keepalive_turns_on_tcp_keepalive() {
    let t = TempDir::new("proxy-socket-keepalive");
    let dir = t.path().to_path_buf();
    for (on, name) in [(true, "on"), (false, "off")] {
        let b = Backend::start("ka");
        let conf = format!(
            "events {{}}\nhttp {{\n upstream u {{ server 127.0.0.1:{bp}; keepalive 2; }}\n server {{\n  listen 127.0.0.1:{{port}};\n  location / {{ proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_socket_keepalive {name}; }}\n }}\n}}\n",
            bp = b.port
        );
        let p = Proton::start(&dir, &conf, 1);
        let r = proton_tests::request(p.port, Some("localhost"), "/id").expect("request");
        assert_eq!(r.status, 200);
        // The kept-alive connection to the backend: its keep-alive timer runs only when on.
        let timers = timers_to(b.port);
        assert_eq!(timers.len(), 1, "{name}: {timers:?}");
        assert_eq!(timers[0] == 2, on, "{name}: timer {}", timers[0]);
    }
}
