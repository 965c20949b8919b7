//! Self-tests of `proton-testbackend`, the origin server behind the proxy in the proxy tests,
//! over real sockets: echo, keep-alive, chunked and large bodies, WebSocket echo.

use proton_tests::{
    keep_alive_exchange, parse_response, raw_exchange, request, ws_close_cleanly, Backend,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn echo_dumps_request_line_headers_and_body() {
    let backend = Backend::start("echo-1");
    let req = b"POST /echo?a=1 HTTP/1.1\r\nHost: example.test\r\nX-Mixed-Case: Some Value\r\n\
                Content-Length: 11\r\nConnection: close\r\n\r\nhello\r\nbody";
    let (raw, closed) = raw_exchange(backend.port, req, Duration::from_secs(10));
    assert!(closed, "Connection: close was not honoured");
    let resp = parse_response(&raw).expect("a response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-backend"), Some("echo-1"));
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(
        resp.body_text(),
        "POST /echo?a=1 HTTP/1.1\nHost: example.test\nX-Mixed-Case: Some Value\n\
         Content-Length: 11\nConnection: close\n\nhello\r\nbody"
    );
}

#[test]
fn echo_reads_a_chunked_request_body() {
    let backend = Backend::start("echo-2");
    let req = b"PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n";
    let (raw, _) = raw_exchange(backend.port, req, Duration::from_secs(10));
    let resp = parse_response(&raw).expect("a response");
    assert_eq!(resp.status, 200);
    assert!(
        resp.body_text().ends_with("\n\nabcdefg"),
        "{}",
        resp.body_text()
    );
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let backend = Backend::start("ka");
    let resps = keep_alive_exchange(
        backend.port,
        &[
            b"GET /id HTTP/1.1\r\nHost: h\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz",
            b"GET /stats HTTP/1.1\r\nHost: h\r\n\r\n",
        ],
    )
    .expect("keep-alive exchange");
    assert_eq!(resps.len(), 3, "the connection was closed early");
    assert_eq!(resps[0].body_text(), "ka");
    assert!(resps[1].body_text().ends_with("\n\nxyz"));
    assert_eq!(resps[2].body_text(), "connections=1 requests=3");
    assert_eq!(backend.stats(), (2, 4));
}

#[test]
fn bad_requests_get_400_and_close() {
    let backend = Backend::start("bad");
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /status?code=x HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let (raw, closed) = raw_exchange(backend.port, req, Duration::from_secs(10));
        let resp = parse_response(&raw).expect("a response");
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(req));
        assert!(closed);
    }
}

#[test]
fn chunked_response_framing() {
    let backend = Backend::start("chunks");
    let req = b"GET /chunked?n=3&size=4&trailer=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let (raw, _) = raw_exchange(backend.port, req, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.ends_with(
            "\r\n\r\n4\r\naaaa\r\n4\r\nbbbb\r\n4\r\ncccc\r\n0\r\nX-Trailer: yes\r\n\r\n"
        ),
        "{text}"
    );
    let resp = parse_response(&raw).expect("a response");
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.body, b"aaaabbbbcccc");
}

#[test]
fn big_body_has_the_documented_content() {
    let backend = Backend::start("big");
    let resp = request(backend.port, Some("h"), "/big?bytes=1000000").expect("GET /big");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("1000000"));
    assert_eq!(resp.body.len(), 1_000_000);
    let wrong = resp
        .body
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8);
    assert_eq!(wrong, None, "first wrong byte");
}

#[test]
fn framing_edge_cases() {
    let backend = Backend::start("edges");
    let (raw, closed) = raw_exchange(
        backend.port,
        b"GET /until-close?bytes=300 HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(closed);
    let resp = parse_response(&raw).expect("a response");
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.body.len(), 300);

    let (raw, closed) = raw_exchange(
        backend.port,
        b"GET /close-mid HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(closed);
    assert!(raw.ends_with(b"Content-Length: 1000\r\n\r\n0123456789"));

    let (raw, closed) = raw_exchange(
        backend.port,
        b"GET /close-now HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(closed && raw.is_empty());

    let mut s = TcpStream::connect(backend.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /reset HTTP/1.1\r\nHost: h\r\n\r\n")
        .expect("send");
    let err = s
        .read(&mut [0u8; 64])
        .expect_err("an RST, not data or a FIN");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);

    let (raw, _) = raw_exchange(
        backend.port,
        b"GET /bad-status HTTP/1.1\r\nHost: h\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(raw, b"HTTP/1.1 2000 OK\r\n\r\n");

    let resp = request(backend.port, Some("h"), "/headers?X-One=1&X-Two=a%20b").expect("headers");
    assert_eq!(
        (resp.header("x-one"), resp.header("x-two")),
        (Some("1"), Some("a b"))
    );
    let resp = request(backend.port, Some("h"), "/status?code=503").expect("status");
    assert_eq!(
        (resp.status, resp.body_text().as_str()),
        (503, "status 503")
    );
}

#[test]
fn websocket_echoes_text_and_binary() {
    let backend = Backend::start("ws");
    let stream = TcpStream::connect(backend.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let url = format!("ws://{}/ws", backend.addr);
    let (mut ws, resp) = tungstenite::client(url.as_str(), stream).expect("handshake");
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(
        resp.headers().get("x-backend").map(|v| v.as_bytes()),
        Some(&b"ws"[..])
    );

    ws.send(Message::text("hello, proxy")).expect("send text");
    assert_eq!(ws.read().expect("read"), Message::text("hello, proxy"));

    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    ws.send(Message::binary(big.clone())).expect("send binary");
    match ws.read().expect("read") {
        Message::Binary(b) => assert!(b[..] == big[..], "binary echo differs"),
        other => panic!("expected a binary message, got {other:?}"),
    }

    ws_close_cleanly(&mut ws);
}
