//! The HTTP/1.1 codec on byte slices: every request rule in a table, every valid request split
//! at every byte offset, pipelining, chunked bodies fed in every way, and the AWS
//! http-desync-guardian corpus compared with what nginx 1.22 answers to the same bytes.

use proton_runtime::http::chunked::ChunkedDecoder;
use proton_runtime::http::request::{
    bytes_at, normalize_target, parse_head, Limits, Method, Parsed, RequestHead, MAX_HEADERS,
};
use proton_runtime::http::HttpError;

fn parse(buf: &[u8]) -> Result<(Parsed, RequestHead), HttpError> {
    parse_with(buf, &Limits::default())
}

fn parse_with(buf: &[u8], limits: &Limits) -> Result<(Parsed, RequestHead), HttpError> {
    let mut head = RequestHead::new();
    parse_head(buf, limits, &mut head).map(|p| (p, head))
}

fn show(buf: &[u8]) -> String {
    buf.escape_ascii().to_string()
}

/// What a valid request must parse to.
#[derive(Clone, Copy)]
struct Want {
    method: Method,
    target: &'static [u8],
    minor: u8,
    host: Option<&'static [u8]>,
    absolute_host: Option<&'static [u8]>,
    content_length: Option<u64>,
    chunked: bool,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: Option<&'static [u8]>,
    headers: usize,
}

const GET: Want = Want {
    method: Method::Get,
    target: b"/",
    minor: 1,
    host: Some(b"h"),
    absolute_host: None,
    content_length: None,
    chunked: false,
    keep_alive: true,
    expect_continue: false,
    upgrade: None,
    headers: 1,
};

fn valid_cases() -> Vec<(&'static [u8], Want)> {
    vec![
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", GET),
        (
            b"GET /index.html?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
            Want { target: b"/index.html?a=1&b=%20", host: Some(b"example.com"), headers: 2, ..GET },
        ),
        (
            b"GET /a HTTP/1.0\r\n\r\n",
            Want { target: b"/a", minor: 0, host: None, keep_alive: false, headers: 0, ..GET },
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            Want { minor: 0, host: None, headers: 1, ..GET },
        ),
        (
            b"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n",
            Want { minor: 0, keep_alive: false, headers: 2, ..GET },
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            Want { keep_alive: false, headers: 2, ..GET },
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: CLOSE\r\n\r\n",
            Want { keep_alive: false, headers: 3, ..GET },
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            Want { target: b"/ws", upgrade: Some(b"websocket"), headers: 3, ..GET },
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
            Want { method: Method::Post, target: b"/p", content_length: Some(5), headers: 2, ..GET },
        ),
        (
            b"PUT /p HTTP/1.1\r\nHost: h\r\ncontent-length:   007  \r\n\r\n",
            Want { method: Method::Put, target: b"/p", content_length: Some(7), headers: 2, ..GET },
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            Want { content_length: Some(0), headers: 2, ..GET },
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n",
            Want { method: Method::Post, content_length: Some(i64::MAX as u64), headers: 2, ..GET },
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            Want { method: Method::Post, chunked: true, headers: 2, ..GET },
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding:  ChUnKeD \t\r\nHost: h\r\n\r\n",
            Want { method: Method::Post, chunked: true, headers: 2, ..GET },
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            Want { method: Method::Post, expect_continue: true, content_length: Some(3), headers: 3, ..GET },
        ),
        (
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            Want { method: Method::Post, minor: 0, host: None, keep_alive: false, content_length: Some(3), headers: 2, ..GET },
        ),
        (
            b"GET http://Example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
            Want { target: b"/p?q", absolute_host: Some(b"Example.com"), host: Some(b"other"), ..GET },
        ),
        (
            b"GET http://x.com HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { target: b"/", absolute_host: Some(b"x.com"), ..GET },
        ),
        (
            b"GET https://x.com.:/ HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { target: b"/", absolute_host: Some(b"x.com"), ..GET },
        ),
        (
            b"GET h2c://[::1]:80/a HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { target: b"/a", absolute_host: Some(b"[::1]"), ..GET },
        ),
        (
            // nginx's IP-literal grammar: unreserved characters and sub-delims (IPvFuture).
            b"GET http://[v1.a!$&'()*+,;=-._~:]/a HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { target: b"/a", absolute_host: Some(b"[v1.a!$&'()*+,;=-._~:]"), ..GET },
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { method: Method::Options, target: b"*", ..GET },
        ),
        (b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", GET),
        (b"\nGET / HTTP/1.1\nHost: h\n\n", GET),
        (b"GET  /   HTTP/1.1\r\nHost: h\r\n\r\n", GET),
        (
            b"PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n",
            Want { method: Method::Other, target: b"/d", ..GET },
        ),
        (b"FOO_BAR-BAZ / HTTP/1.1\r\nHost: h\r\n\r\n", Want { method: Method::Other, ..GET }),
        (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", Want { method: Method::Head, ..GET }),
        (b"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", Want { method: Method::Delete, ..GET }),
        (b"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", Want { method: Method::Patch, ..GET }),
        (b"GET / HTTP/1.1\r\nHost: h.:8080\r\n\r\n", GET),
        (
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            Want { host: Some(b"[::1]"), ..GET },
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Obs: a\tb \x80\xff\r\nX-Empty:\r\nX-!#$%&'*+.^_`|~: v\r\n\r\n",
            Want { headers: 4, ..GET },
        ),
        (
            "GET /странные-символы/\"<>{}|\\^`#frag HTTP/1.1\r\nHost: h\r\n\r\n".as_bytes(),
            Want { target: "/странные-символы/\"<>{}|\\^`#frag".as_bytes(), ..GET },
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\n\r\n",
            Want { headers: 3, ..GET },
        ),
    ]
}

fn check(buf: &[u8], head: &RequestHead, want: &Want) {
    let name = show(buf);
    assert_eq!(head.method, want.method, "{name}");
    assert_eq!(bytes_at(buf, &head.target), want.target, "{name}");
    assert_eq!(head.minor_version, want.minor, "{name}");
    assert_eq!(
        head.host.as_ref().map(|r| bytes_at(buf, r)),
        want.host,
        "{name}"
    );
    assert_eq!(
        head.absolute_host.as_ref().map(|r| bytes_at(buf, r)),
        want.absolute_host,
        "{name}"
    );
    assert_eq!(head.content_length, want.content_length, "{name}");
    assert_eq!(head.chunked, want.chunked, "{name}");
    assert_eq!(head.keep_alive, want.keep_alive, "{name}");
    assert_eq!(head.expect_continue, want.expect_continue, "{name}");
    assert_eq!(
        head.upgrade.as_ref().map(|r| bytes_at(buf, r)),
        want.upgrade,
        "{name}"
    );
    assert_eq!(head.header_count(), want.headers, "{name}");
    assert_eq!(head.head_len, buf.len(), "{name}");
    assert_eq!(head.headers().count(), want.headers, "{name}");
    let method = bytes_at(buf, &head.method_range);
    assert!(!method.is_empty(), "{name}");
    if let Some(m) = head.method.as_str() {
        assert_eq!(method, m.as_bytes(), "{name}");
    }
}

#[test]
fn valid_requests_parse_to_what_they_say() {
    let cases = valid_cases();
    for (buf, want) in &cases {
        match parse(buf) {
            Ok((Parsed::Complete, head)) => check(buf, &head, want),
            other => panic!("{}: {:?}", show(buf), other.map(|(p, _)| p)),
        }
    }
    println!("{} valid requests", cases.len());
}

#[test]
fn every_split_of_a_valid_request_is_partial_until_complete() {
    let mut prefixes = 0;
    for (buf, want) in valid_cases() {
        let (_, full) = parse(buf).unwrap();
        // The body (or a next request) after the head must not change anything.
        let mut longer = buf.to_vec();
        longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (p, again) = parse(&longer).unwrap();
        assert_eq!(p, Parsed::Complete);
        assert_eq!(format!("{again:?}"), format!("{full:?}"), "{}", show(buf));
        for cut in 0..buf.len() {
            match parse(&buf[..cut]) {
                Ok((Parsed::Partial, _)) => prefixes += 1,
                other => panic!("{} cut at {cut}: {:?}", show(buf), other.map(|(p, _)| p)),
            }
        }
        // The same bytes arriving one at a time into a reused head.
        let mut head = RequestHead::new();
        for end in 1..=buf.len() {
            let p = parse_head(&buf[..end], &Limits::default(), &mut head).unwrap();
            assert_eq!(p == Parsed::Complete, end == buf.len(), "{}", show(buf));
        }
        check(buf, &head, &want);
    }
    println!("{prefixes} partial prefixes checked");
}

fn invalid_cases() -> Vec<(Vec<u8>, HttpError)> {
    use HttpError::*;
    let mut cases: Vec<(Vec<u8>, HttpError)> = Vec::new();
    let mut add = |raw: &[u8], e: HttpError| cases.push((raw.to_vec(), e));
    // Host.
    add(b"GET / HTTP/1.1\r\n\r\n", MissingHost);
    add(b"GET http://x.com/ HTTP/1.1\r\n\r\n", MissingHost);
    add(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        DuplicateHost,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        DuplicateHost,
    );
    add(b"GET / HTTP/1.1\r\nHost: \r\n\r\n", InvalidHost);
    add(b"GET / HTTP/1.0\r\nHost:\r\n\r\n", InvalidHost);
    add(b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", InvalidHost);
    add(b"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", InvalidHost);
    add(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", InvalidHost);
    add(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost);
    add(
        b"GET http://x..com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidHost,
    );
    // Content-Length.
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        DuplicateContentLength,
    );
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        DuplicateContentLength,
    );
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42, 42\r\n\r\n",
        DuplicateContentLength,
    );
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42,42\r\n\r\n",
        DuplicateContentLength,
    );
    for bad in [
        &b"+5"[..],
        b"-5",
        b"5.0",
        b"0x5",
        b"",
        b"1 000",
        b"5a",
        b"\xd9\xa5",
        b"9223372036854775808",
        b"18446744073709551616",
        b"99999999999999999999999999",
    ] {
        let mut raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ".to_vec();
        raw.extend_from_slice(bad);
        raw.extend_from_slice(b"\r\n\r\n");
        add(&raw, InvalidContentLength);
    }
    // Transfer-Encoding.
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ContentLengthWithTransferEncoding,
    );
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        ContentLengthWithTransferEncoding,
    );
    for te in [
        &b"gzip"[..],
        b"chunked, chunked",
        b"chunked,chunked",
        b"gzip, chunked",
        b"chunked;x=1",
        b"xchunked",
        b"chunke",
        b"identity",
        b"",
        b"\xa0chunked",
    ] {
        let mut raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ".to_vec();
        raw.extend_from_slice(te);
        raw.extend_from_slice(b"\r\n\r\n");
        add(&raw, UnsupportedTransferEncoding);
    }
    // nginx's order: a Transfer-Encoding it does not know wins over Content-Length.
    add(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
        UnsupportedTransferEncoding,
    );
    add(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", DuplicateTransferEncoding);
    add(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", DuplicateTransferEncoding);
    add(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        TransferEncodingHttp10,
    );
    add(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n",
        TransferEncodingHttp10,
    );
    // Folding, whitespace, control bytes.
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
        ObsFold,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n",
        ObsFold,
    );
    add(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", ObsFold);
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\n Transfer-Encoding: chunked\r\n\r\n",
        ObsFold,
    );
    add(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", WhitespaceBeforeColon);
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n",
        WhitespaceBeforeColon,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
        InvalidHeaderValue,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n",
        InvalidHeaderValue,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b[31m\r\n\r\n",
        InvalidHeaderValue,
    );
    add(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", NulByte);
    add(b"GET / HTTP/1.1\r\nHost: h\r\nX\x00: a\r\n\r\n", NulByte);
    add(b"GET / HTTP/1.1\r\nHost: h\r\n\x00X: a\r\n\r\n", NulByte);
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
        InvalidLineEnding,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX\r: a\r\n\r\n",
        InvalidLineEnding,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\n\rX: a\r\n\r\n",
        InvalidLineEnding,
    );
    add(b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", InvalidLineEnding);
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX\x01Y: a\r\n\r\n",
        InvalidHeaderName,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n",
        InvalidHeaderName,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        InvalidHeaderName,
    );
    add(
        b"GET / HTTP/1.1\r\nHost: h\r\nX(Y): a\r\n\r\n",
        InvalidHeaderName,
    );
    add(
        "GET / HTTP/1.1\r\nHost: h\r\nTranſfer-Encoding: chunked\r\n\r\n".as_bytes(),
        InvalidHeaderName,
    );
    // Request line.
    add(b"get / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod);
    add(b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod);
    add(b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod);
    add(
        b"bad_method\x01 / HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidMethod,
    );
    add(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod);
    add(b"G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n", NulByte);
    add(b"GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n", NulByte);
    add(b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(
        b"GET http://[::1%eth0]/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(b"CONNECT a:443 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    // Well-formed TRACE and CONNECT: 405 once the head is complete (nginx), after the
    // checks every request passes (so a bad one is still 400).
    add(b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", TraceMethod);
    add(b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", ConnectMethod);
    add(b"TRACE / HTTP/1.1\r\n\r\n", MissingHost);
    add(b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(
        b"GET /a\rHTTP/1.1 HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(
        b"GET http://u@x.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(
        b"GET http://a_b.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(b"GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget);
    add(
        b"GET http:/x.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(
        b"GET 1http://x.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidTarget,
    );
    add(b"GET \r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET\r\nHost: h\r\n\r\n", InvalidTarget);
    add(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/3.1\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/1.10\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/0.9\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/100.1\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/2\r\nHost: h\r\n\r\n", VersionNotSupported);
    add(b"GET / HTTP/01.1\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/1.1000\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/1.\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / http/1.1\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", InvalidVersion);
    add(
        b"GET / HTTP/1.1 HTTP/1.1\r\nHost: h\r\n\r\n",
        InvalidVersion,
    );
    add(b"GET /\r\n\r\n", InvalidVersion);
    add(b"GET  HTTP/1.1\r\nHost: h\r\n\r\n", InvalidVersion);
    add(b"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", InvalidLineEnding);
    add(b"GET / HTTP/1.1\rHost: h\r\n\r\n", InvalidLineEnding);
    add(b"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod);
    cases
}

#[test]
fn every_rule_rejects_with_its_status() {
    let cases = invalid_cases();
    for (raw, want) in &cases {
        let got = parse(raw).map(|(p, _)| p);
        assert_eq!(got, Err(*want), "{}", show(raw));
        assert!(want.close_connection());
        assert!(!want.reason().is_empty());
        // No prefix is taken for a complete request, and nothing panics.
        for cut in 0..raw.len() {
            match parse(&raw[..cut]) {
                Ok((Parsed::Complete, _)) => panic!("{} complete at {cut}", show(raw)),
                Ok((Parsed::Partial, _)) | Err(_) => {}
            }
        }
    }
    let statuses: Vec<u16> = cases.iter().map(|(_, e)| e.status()).collect();
    for s in [400, 501, 505] {
        println!(
            "{} invalid requests answer {s}",
            statuses.iter().filter(|&&x| x == s).count()
        );
    }
}

#[test]
fn statuses_are_nginx_statuses() {
    use HttpError::*;
    assert_eq!(MissingHost.status(), 400);
    assert_eq!(UnsupportedTransferEncoding.status(), 501);
    assert_eq!(VersionNotSupported.status(), 505);
    assert_eq!(RequestLineTooLong.status(), 414);
    assert_eq!(HeaderTooLarge.status(), 400);
    assert_eq!(HeaderTooLarge.page_code(), 494);
    assert_eq!(BodyTooLarge.status(), 413);
}

#[test]
fn request_line_limit_is_414_at_max_uri() {
    let limits = Limits::default();
    // A request line of exactly max_uri bytes (CRLF included) is fine.
    let fixed = "GET / HTTP/1.1\r\n".len();
    let target = format!("/{}", "a".repeat(limits.max_uri - fixed));
    let ok = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(parse(ok.as_bytes()).unwrap().0, Parsed::Complete);
    let long = format!("GET {target}a HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        parse(long.as_bytes()).err(),
        Some(HttpError::RequestLineTooLong)
    );
    // Without its line end yet: 414 as soon as max_uri bytes are there.
    assert_eq!(
        parse(&long.as_bytes()[..limits.max_uri - 1]).unwrap().0,
        Parsed::Partial
    );
    assert_eq!(
        parse(&long.as_bytes()[..limits.max_uri]).err(),
        Some(HttpError::RequestLineTooLong)
    );
    // Garbage without a newline is bounded too.
    assert_eq!(
        parse(&vec![b'A'; limits.max_uri + 10]).err(),
        Some(HttpError::RequestLineTooLong)
    );
    let small = Limits {
        max_uri: 32,
        ..Limits::default()
    };
    assert_eq!(
        parse_with(
            b"GET /0123456789012345678 HTTP/1.1\r\nHost: h\r\n\r\n",
            &small
        )
        .err(),
        Some(HttpError::RequestLineTooLong)
    );
}

#[test]
fn head_limit_is_400_header_too_large() {
    let limits = Limits::default();
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    while raw.len() < limits.max_head + 100 {
        raw.extend_from_slice(b"X-Filler: ");
        raw.extend_from_slice(&[b'x'; 1000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let e = parse(&raw).err().unwrap();
    assert_eq!(e, HttpError::HeaderTooLarge);
    assert_eq!((e.status(), e.page_code()), (400, 494));
    // Partial: an error once max_head bytes have arrived without the end of the head.
    assert_eq!(
        parse(&raw[..limits.max_head - 1]).unwrap().0,
        Parsed::Partial
    );
    assert_eq!(
        parse(&raw[..limits.max_head]).err(),
        Some(HttpError::HeaderTooLarge)
    );
    // A head of exactly max_head bytes is fine.
    let small = Limits {
        max_head: 64,
        ..Limits::default()
    };
    let exact = b"GET / HTTP/1.1\r\nHost: h\r\nX: 01234567890123456789012345678901\r\n\r\n";
    assert_eq!(exact.len(), 64);
    assert_eq!(parse_with(exact, &small).unwrap().0, Parsed::Complete);
    let over = b"GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012\r\n\r\n";
    assert_eq!(
        parse_with(over, &small).err(),
        Some(HttpError::HeaderTooLarge)
    );
}

#[test]
fn header_line_limit_is_max_uri_as_nginx() {
    let limits = Limits::default();
    let line = |len: usize| {
        // "X: " + value + CRLF = len bytes
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        raw.extend(vec![b'v'; len - 5]);
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    };
    assert_eq!(parse(&line(limits.max_uri)).unwrap().0, Parsed::Complete);
    let long = line(limits.max_uri + 1);
    let e = parse(&long).err().unwrap();
    assert_eq!(
        (e, e.status(), e.page_code()),
        (HttpError::HeaderTooLarge, 400, 494)
    );
    // Arriving: an error as soon as the unfinished line reaches max_uri bytes.
    let start = b"GET / HTTP/1.1\r\nHost: h\r\n".len();
    assert_eq!(
        parse(&long[..start + limits.max_uri - 1]).unwrap().0,
        Parsed::Partial
    );
    assert_eq!(
        parse(&long[..start + limits.max_uri]).err(),
        Some(HttpError::HeaderTooLarge)
    );
}

#[test]
fn request_line_for_logs() {
    use proton_runtime::http::request::request_line;
    assert_eq!(
        request_line(b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 100),
        b"GET / HTTP/1.1"
    );
    assert_eq!(request_line(b"GET / HTTP/9\n", 100), b"GET / HTTP/9");
    assert_eq!(request_line(b"GET /abc", 5), b"GET /");
    assert_eq!(request_line(b"", 5), b"");
    assert_eq!(request_line(b"\x00\x01\rX", 5), b"\x00\x01");
}

#[test]
fn header_count_limit() {
    let build = |n: usize| {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 1..n {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw
    };
    let (p, head) = parse(&build(MAX_HEADERS)).unwrap();
    assert_eq!((p, head.header_count()), (Parsed::Complete, MAX_HEADERS));
    let e = parse(&build(MAX_HEADERS + 1)).err().unwrap();
    assert_eq!(
        (e, e.status(), e.page_code()),
        (HttpError::TooManyHeaders, 400, 494)
    );
    let few = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    assert_eq!(parse_with(&build(3), &few).unwrap().0, Parsed::Complete);
    assert_eq!(
        parse_with(&build(4), &few).err(),
        Some(HttpError::TooManyHeaders)
    );
    let none = Limits {
        max_headers: 0,
        ..Limits::default()
    };
    assert_eq!(
        parse_with(b"GET / HTTP/1.0\r\n\r\n", &none).unwrap().0,
        Parsed::Complete
    );
    // More configured is capped at MAX_HEADERS and the three lines an HTTP/2 stream's
    // head adds (protonc refuses a larger max_headers).
    let many = Limits {
        max_headers: 10_000,
        ..Limits::default()
    };
    assert_eq!(
        parse_with(&build(MAX_HEADERS + 3), &many).unwrap().0,
        Parsed::Complete
    );
    assert_eq!(
        parse_with(&build(MAX_HEADERS + 4), &many).err(),
        Some(HttpError::TooManyHeaders)
    );
}

#[test]
fn absolute_form_without_a_path_but_with_a_query() {
    let buf = b"GET http://x.com?a=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, head) = parse(buf).unwrap();
    assert!(head.empty_path);
    assert_eq!(bytes_at(buf, &head.target), b"?a=1");
    assert_eq!(bytes_at(buf, &head.server_name().unwrap()), b"x.com");
    // The path routed is `/` (nginx answers `GET http://localhost?x=1` for `/`, args x=1).
    let mut uri = Vec::new();
    assert!(normalize_target(&head, buf, true, &mut uri));
    assert_eq!(uri, b"/");
    let buf = b"GET /?a=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, head) = parse(buf).unwrap();
    assert!(!head.empty_path);
    assert_eq!(head.server_name(), head.host);
    assert!(normalize_target(&head, buf, true, &mut uri));
    assert_eq!(uri, b"/");
    let buf = b"GET http://x.com/a/../b%41?q HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, head) = parse(buf).unwrap();
    assert!(normalize_target(&head, buf, true, &mut uri));
    assert_eq!(uri, b"/bA");
    let buf = b"GET /../x HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, head) = parse(buf).unwrap();
    assert!(!normalize_target(&head, buf, true, &mut uri));
}

#[test]
fn header_accessors() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX-A:  one \r\nx-a: two\r\n\r\n";
    let (_, head) = parse(buf).unwrap();
    assert_eq!(head.get(buf, b"X-A"), Some(&b"one"[..]));
    assert_eq!(head.get(buf, b"missing"), None);
    let fields: Vec<(&[u8], &[u8])> = head.fields(buf).collect();
    assert_eq!(
        fields,
        vec![
            (&b"Host"[..], &b"h"[..]),
            (b"X-A", b"one"),
            (b"x-a", b"two")
        ]
    );
    let (name, value) = head.header(2).unwrap();
    assert_eq!((&buf[name], &buf[value]), (&b"x-a"[..], &b"two"[..]));
    assert_eq!(head.header(3), None);
    assert!(!head.has_body());
    assert!(!head.is_head());
}

/// A connection's read loop in miniature: bytes arrive in pieces of the given sizes; after
/// each piece, parse as many requests (heads and bodies) as are complete. Returns each
/// request's target, body and keep-alive.
fn serve(input: &[u8], pieces: &mut dyn Iterator<Item = usize>) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    enum Body {
        None,
        Length(u64),
        Chunked(ChunkedDecoder),
    }
    let mut out = Vec::new();
    let mut arrived = 0;
    let mut pos = 0; // start of the unprocessed bytes
    let mut head = RequestHead::new();
    let mut current: Option<(Vec<u8>, Vec<u8>, bool, Body)> = None;
    while arrived < input.len() {
        arrived = (arrived + pieces.next().unwrap_or(input.len()).max(1)).min(input.len());
        loop {
            let buf = &input[pos..arrived];
            match current.take() {
                None => match parse_head(buf, &Limits::default(), &mut head).unwrap() {
                    Parsed::Partial => break,
                    Parsed::Complete => {
                        let target = bytes_at(buf, &head.target).to_vec();
                        let body = if head.chunked {
                            Body::Chunked(ChunkedDecoder::new())
                        } else {
                            Body::Length(head.content_length.unwrap_or(0))
                        };
                        pos += head.head_len;
                        current = Some((target, Vec::new(), head.keep_alive, body));
                    }
                },
                Some((target, mut body, ka, Body::Length(left))) => {
                    let n = (left as usize).min(buf.len());
                    body.extend_from_slice(&buf[..n]);
                    pos += n;
                    if left as usize == n {
                        current = Some((target, body, ka, Body::None));
                    } else {
                        current = Some((target, body, ka, Body::Length(left - n as u64)));
                        break;
                    }
                }
                Some((target, mut body, ka, Body::Chunked(mut dec))) => {
                    let step = dec.decode(buf).unwrap();
                    body.extend_from_slice(&buf[step.data.clone()]);
                    pos += step.consumed;
                    if step.done {
                        current = Some((target, body, ka, Body::None));
                    } else {
                        let stalled = step.consumed == buf.len();
                        current = Some((target, body, ka, Body::Chunked(dec)));
                        if stalled {
                            break;
                        }
                    }
                }
                Some((target, body, ka, Body::None)) => out.push((target, body, ka)),
            }
        }
    }
    if let Some((target, body, ka, Body::None)) = current {
        out.push((target, body, ka));
    }
    out
}

const PIPELINE: &[u8] = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n\
GET /4 HTTP/1.0\r\n\r\n\
PUT /5 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\
GET /6 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

fn pipeline_want() -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    vec![
        (b"/1".to_vec(), b"".to_vec(), true),
        (b"/2".to_vec(), b"hello".to_vec(), true),
        (b"/3".to_vec(), b"abc0123456789abcdef".to_vec(), true),
        (b"/4".to_vec(), b"".to_vec(), false),
        (b"/5".to_vec(), b"".to_vec(), true),
        (b"/6".to_vec(), b"".to_vec(), false),
    ]
}

#[test]
fn pipelined_requests_in_one_buffer() {
    assert_eq!(
        serve(PIPELINE, &mut std::iter::once(PIPELINE.len())),
        pipeline_want()
    );
}

#[test]
fn pipelined_requests_split_at_every_offset_and_byte_by_byte() {
    for cut in 1..PIPELINE.len() {
        let mut pieces = [cut, PIPELINE.len()].into_iter();
        assert_eq!(
            serve(PIPELINE, &mut pieces),
            pipeline_want(),
            "cut at {cut}"
        );
    }
    assert_eq!(serve(PIPELINE, &mut std::iter::repeat(1)), pipeline_want());
    assert_eq!(
        serve(PIPELINE, &mut [7, 3, 11].into_iter().cycle()),
        pipeline_want()
    );
}

/// Decodes `input` arriving in the given pieces; returns the payload and where the body ended.
fn decode_in_pieces(input: &[u8], pieces: &[usize]) -> Result<(Vec<u8>, Option<usize>), HttpError> {
    let mut dec = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pos = 0;
    let mut arrived = 0;
    let mut sizes = pieces.iter().copied().chain(std::iter::repeat(usize::MAX));
    while arrived < input.len() {
        arrived = arrived
            .saturating_add(sizes.next().unwrap_or(usize::MAX).max(1))
            .min(input.len());
        loop {
            let step = dec.decode(&input[pos..arrived])?;
            body.extend_from_slice(&input[pos..arrived][step.data.clone()]);
            pos += step.consumed;
            if step.done {
                assert_eq!(dec.total(), body.len() as u64);
                return Ok((body, Some(pos)));
            }
            if pos == arrived {
                break;
            }
        }
    }
    Ok((body, None))
}

const CHUNKED_BODIES: &[(&[u8], &[u8])] = &[
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (
        b"5;ext\r\nhello\r\n1 ; a=b ; c=\"d\"\r\n!\r\n0\r\n\r\n",
        b"hello!",
    ),
    (
        b"A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\nX-T: 1\r\nY: 2\r\n\r\n",
        b"0123456789abcdefghij",
    ),
    (b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),
    (b"1\r\n\r\r\n2\r\n\r\n\r\n0\r\n\r\n", b"\r\r\n"),
];

#[test]
fn chunked_bodies_split_at_every_offset() {
    let mut splits = 0;
    for &(input, want) in CHUNKED_BODIES {
        let mut with_next = input.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
        for cut in 0..=with_next.len() {
            let (body, end) = decode_in_pieces(&with_next, &[cut]).unwrap();
            assert_eq!(body, want, "{} cut at {cut}", show(input));
            assert_eq!(end, Some(input.len()), "{}", show(input));
            splits += 1;
        }
        let (body, end) = decode_in_pieces(&with_next, &[1]).unwrap();
        assert_eq!((body.as_slice(), end), (want, Some(input.len())));
        let ones = vec![1; with_next.len()];
        let (body, _) = decode_in_pieces(&with_next, &ones).unwrap();
        assert_eq!(body, want, "byte by byte {}", show(input));
    }
    println!("{splits} chunked splits checked");
}

#[test]
fn bad_chunked_bodies_fail_however_they_arrive() {
    use HttpError::*;
    let cases: &[(&[u8], HttpError)] = &[
        (b"\r\n", InvalidChunkSize),
        (b"g\r\n", InvalidChunkSize),
        (b"-1\r\n", InvalidChunkSize),
        (b"+1\r\n", InvalidChunkSize),
        (b" 1\r\n", InvalidChunkSize),
        (b"1\n\n", InvalidChunkSize),
        (b"1 2\r\n", InvalidChunkSize),
        (b"0x1\r\n", InvalidChunkSize),
        (b"11111111111111111\r\n", ChunkSizeOverflow),
        (b"ffffffffffffffff\r\n", ChunkSizeOverflow),
        (b"1;\x01\r\n", InvalidChunkExtension),
        (b"1;a\rb\r\n", InvalidChunkSize),
        (b"5\r\nhelloX\r\n0\r\n\r\n", InvalidChunkTerminator),
        (b"5\r\nhello\n0\r\n\r\n", InvalidChunkTerminator),
        (b"5\r\nhello0\r\n\r\n", InvalidChunkTerminator),
        (b"5\r\nhello\r\n\r\n", InvalidChunkSize),
        (b"0\r\n\n", InvalidTrailer),
        (b"0\r\nX: 1\n\r\n", InvalidTrailer),
        (b"0\r\nX: 1\r\n\rX", InvalidTrailer),
    ];
    for &(input, want) in cases {
        for cut in 0..=input.len() {
            assert_eq!(
                decode_in_pieces(input, &[cut]).err(),
                Some(want),
                "{} cut {cut}",
                show(input)
            );
        }
        assert_eq!(
            decode_in_pieces(input, &vec![1; input.len()]).err(),
            Some(want)
        );
        assert!(want.close_connection() && want.status() == 400);
    }
}

#[test]
fn chunked_limit_is_413_before_the_data() {
    let mut dec = ChunkedDecoder::with_limit(8);
    assert_eq!(dec.decode(b"8\r\n").unwrap().consumed, 3);
    let mut dec = ChunkedDecoder::with_limit(8);
    let e = dec.decode(b"9\r\n").err().unwrap();
    assert_eq!((e, e.status()), (HttpError::BodyTooLarge, 413));
}

// ---------------------------------------------------------------------------------------
// The AWS http-desync-guardian corpus (Apache-2.0; a copy with its LICENSE and NOTICE is in
// runtime/tests/data/http-desync-guardian).
//
// Each case gives method, uri, version and headers; the request is built as
// `METHOD SP URI [SP VERSION] CRLF (NAME ": " VALUE CRLF)* CRLF` plus a small body: 16 bytes at
// most for a numeric Content-Length, a complete chunked body when a Transfer-Encoding names
// chunked. In the YAML, `\xNN`, `\0`, `\r`, `\n`, `\t` escapes in double-quoted strings are
// bytes: characters up to U+00FF become that single byte (so `\xa0` is the byte 0xA0, as the
// corpus README's `"some value\xff"` means), others are UTF-8 (`Tranſfer-Encoding`, Cyrillic
// URIs). Plain scalars keep backslashes literally. Most cases send no Host; `Host: localhost`
// is added to those, since a missing Host is its own (400) rule and not what they test.
// ---------------------------------------------------------------------------------------

mod common;
use common::load_corpus;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Head parsed and any chunked body decoded to its end.
    Accepted,
    Rejected(HttpError),
    /// Still waiting for bytes (never expected: every case is complete).
    Waiting,
}

fn run_case(raw: &[u8]) -> Outcome {
    let mut head = RequestHead::new();
    match parse_head(raw, &Limits::default(), &mut head) {
        Err(e) => Outcome::Rejected(e),
        Ok(Parsed::Partial) => Outcome::Waiting,
        Ok(Parsed::Complete) if head.chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut at = head.head_len;
            loop {
                match dec.decode(&raw[at..]) {
                    Err(e) => return Outcome::Rejected(e),
                    Ok(step) if step.done => return Outcome::Accepted,
                    Ok(step) if step.consumed == 0 => return Outcome::Waiting,
                    Ok(step) => at += step.consumed,
                }
            }
        }
        Ok(Parsed::Complete) => Outcome::Accepted,
    }
}

/// What nginx 1.22.1 (Debian bookworm) answered to each case, built the same way (plus
/// `Connection: close`), on a server whose location answers `return 200`: the status code;
/// 9 for an HTTP/0.9 answer from the location, 1 for an HTTP/0.9 error page. 413 is
/// client_max_body_size (1m) — the head itself was accepted.
const NGINX: &[(&str, usize, u16)] = &[
    ("acceptable.yaml", 0, 400), // No TE/CL headers, some others are non-compliant
    ("acceptable.yaml", 1, 400), // TE and some others are non-compliant
    ("acceptable.yaml", 2, 400), // A non-essential header with a non-printable character (x01)
    ("acceptable.yaml", 3, 400), // CL and some others are non-compliant
    ("acceptable.yaml", 4, 200), // Get with a body and Content-Length:0
    ("acceptable.yaml", 5, 200), // Get with a body and Content-Length:0
    ("acceptable.yaml", 6, 400), // Non-RFC, but OK HTTP/0.9
    ("acceptable.yaml", 7, 9),   // Empty version, which means HTTP/0.9
    ("acceptable.yaml", 8, 200), // Unknown but OK HTTP/1.2
    ("ambiguous.yaml", 0, 400),  // Transfer-Encoding with a trailing space in name
    ("ambiguous.yaml", 1, 400),  // Transfer-Encoding with a trailing tab in name
    ("ambiguous.yaml", 2, 400),  // \x01Transfer-Encoding with a non-printable character
    ("ambiguous.yaml", 3, 400),  // \x01\x01Transfer-Encoding with a non-printable character
    ("ambiguous.yaml", 4, 400),  // \x01\x01Content-Length with a non-printable character
    ("ambiguous.yaml", 5, 400),  // \x01Content-Length with a non-printable character
    ("ambiguous.yaml", 6, 400),  // Transfer-Encoding with a space in the middle
    ("ambiguous.yaml", 7, 200),  // Transfer_Encoding with underscore.
    ("ambiguous.yaml", 8, 200),  // Content_Length with underscore.
    ("ambiguous.yaml", 9, 400),  // Duplicate Content-Length
    ("ambiguous.yaml", 10, 400), // Both Transfer-Encoding:chunked and Content-Length
    ("ambiguous.yaml", 11, 501), // Both Transfer-Encoding and Content-Length
    ("ambiguous.yaml", 12, 200), // Get with a body and Content-Length
    ("ambiguous.yaml", 13, 200), // Get with a body and Transfer-Encoding
    ("ambiguous.yaml", 14, 200), // Head with a body and Content-Length
    ("ambiguous.yaml", 15, 200), // Head with a body and Transfer-Encoding
    ("ambiguous.yaml", 16, 400), // Transfer-Encoding[white-space] and Content-Length
    ("ambiguous.yaml", 17, 400), // [white-space]Transfer-Encoding and Content-Length
    ("ambiguous.yaml", 18, 400), // [white-space]Transfer-Encoding and [white-space]Content-Length
    ("ambiguous.yaml", 19, 400), // Transfer-Encoding[white-space] and Content-Length[white-space]
    ("ambiguous.yaml", 20, 400), // Empty header name
    ("ambiguous.yaml", 21, 400), // Header name starts with :
    ("ambiguous.yaml", 22, 400), // Only white-spaces header name
    ("ambiguous.yaml", 23, 400), // Transfer-Encoding for HTTP/1.0
    ("ambiguous.yaml", 24, 400), // Transfer-Encoding for HTTP/0.9
    ("ambiguous.yaml", 25, 400), // Content-Length for HTTP/0.9
    ("ambiguous.yaml", 26, 1),   // Transfer-Encoding for empty protocol, which is HTTP/0.9
    ("ambiguous.yaml", 27, 1),   // Content-Length for empty protocol, which is HTTP/0.9
    ("ambiguous.yaml", 28, 200), // Transfer-Encoding Latin Small Letter Long S
    ("ambiguous.yaml", 29, 200), // Transfer-Encoding Latin Small Letter Dotless I
    ("ambiguous.yaml", 30, 200), // Transfer-Encoding with multiple hyphens
    ("ambiguous.yaml", 31, 200), // Transfer-Encoding with multiple delimiters
    ("ambiguous.yaml", 32, 400), // Transfer-Encoding with UTF8 spaces
    ("ambiguous.yaml", 33, 400), // Content-Length with UTF8 spaces
    ("ambiguous.yaml", 34, 200), // Transfer-Encoding with a UTF8 delimiter
    ("ambiguous.yaml", 35, 200), // Transfer-Encoding with arbitrary non-ASCII chars
    ("ambiguous.yaml", 36, 200), // Content-Length with arbitrary non-ASCII chars
    ("bad-header-characters.yaml", 0, 400), // \x01Transfer-Encoding
    ("bad-header-characters.yaml", 1, 501), // Transfer-Encoding: \x01chunked
    ("bad-header-characters.yaml", 2, 501), // Transfer-Encoding: chunked\x01
    ("bad-header-characters.yaml", 3, 501), // Transfer-Encoding: \xa0chunked
    ("bad-header-characters.yaml", 4, 501), // Transfer-Encoding: chunked\xa0
    ("bad-header-characters.yaml", 5, 400), // Transfer-Encoding\x01
    ("bad-header-characters.yaml", 6, 400), // \x01Content-Length
    ("bad-header-characters.yaml", 7, 400), // Content-Length\x01
    ("bad-header-characters.yaml", 8, 400), // Content-Length: \x01 1000
    ("bad-header-characters.yaml", 9, 400), // Content-Length: 1000\x01
    ("bad-header-characters.yaml", 10, 400), // Content-Length: 1000\xa0
    ("bad-header-characters.yaml", 11, 400), // Some-Header\x01
    ("bad-header-characters.yaml", 12, 400), // \x01Some-Header
    ("bad-header-characters.yaml", 13, 200), // Some-Header: \x01value
    ("bad-header-characters.yaml", 14, 200), // Some-Header: value\x01
    ("edge-cases.yaml", 0, 400), // Bad non-essential header does not shadow bad Content-Length
    ("edge-cases.yaml", 1, 501), // Bad non-essential header does not shadow bad Transfer-Encoding
    ("edge-cases.yaml", 2, 400), // Non-compliant character does not shadow bad character
    ("edge-cases.yaml", 3, 200), // Non-compliant customer header does not shadow ambiguous Transfer-Encoding for GET
    ("edge-cases.yaml", 4, 200), // Non-compliant customer header does not shadow ambiguous Content-Length for HEAD
    ("edge-cases.yaml", 5, 400), // Bad header does not shadow other bad headers
    ("edge-cases.yaml", 6, 400), // Bad URI does not shadow essential bad headers
    ("edge-cases.yaml", 7, 200), // Bad URI does not shadow essential ambiguous headers
    ("more-compliant-tests.yaml", 0, 200), // Has a CL in PUT OK
    ("more-compliant-tests.yaml", 1, 200), // Very many headers
    ("more-compliant-tests.yaml", 2, 200), // Has a TE in PUT OK
    ("more-compliant-tests.yaml", 3, 200), // HTTP Version.1.1 OK
    ("more-compliant-tests.yaml", 4, 200), // Correct CL OK
    ("more-compliant-tests.yaml", 5, 501), // Correct TE OK
    ("more-compliant-tests.yaml", 6, 413), // Large Size OK
    ("more-compliant-tests.yaml", 7, 501), // Transfer-Encoding: identity and chunked OK
    ("more-compliant-tests.yaml", 8, 400), // Multiple transfer encoding headers in a single request OK
    ("more-compliant-tests.yaml", 9, 501), // TE with custom parameters OK
    ("real-life-test-cases.yaml", 0, 200), // Has a CL in GET
    ("real-life-test-cases.yaml", 1, 200), // Has a TE in GET
    ("real-life-test-cases.yaml", 2, 400), // HTTP Version.1.0 and TE
    ("real-life-test-cases.yaml", 3, 400), // Two Identical Fields - CL
    ("real-life-test-cases.yaml", 4, 400), // Two Identical Fields - TE
    ("real-life-test-cases.yaml", 5, 400), // Chunks Priority on Content-Length
    ("real-life-test-cases.yaml", 6, 400), // Null in Headers
    ("real-life-test-cases.yaml", 7, 400), // CRLF
    ("real-life-test-cases.yaml", 8, 400), // Size Issue
    ("real-life-test-cases.yaml", 9, 400), // Transfer-Encoding[tab]: chunked
    ("real-life-test-cases.yaml", 10, 400), // \rTransfer-Encoding: chunked
    ("real-life-test-cases.yaml", 11, 400), // \rTransfer-Encoding: chunked without CL
    ("real-life-test-cases.yaml", 12, 400), // \rContent-Length without TE
    ("real-life-test-cases.yaml", 13, 501), // Transfer-Encoding: chunk
    ("real-life-test-cases.yaml", 14, 501), // Transfer-Encoding: identity and Content-Length
    ("real-life-test-cases.yaml", 15, 501), // Transfer-Encoding: xchunked
    ("real-life-test-cases.yaml", 16, 400), // Multiple transfer encoding headers in a single request
    ("real-life-test-cases.yaml", 17, 501), // Mixed case
    ("real-life-test-cases.yaml", 18, 501), // Invalid Transfer-Encoding
    ("real-life-test-cases.yaml", 19, 400), // Chunks Priority on Content-Length.1
    ("real-life-test-cases.yaml", 20, 400), // Chunks Priority on Content-Length.2
    ("real-life-test-cases.yaml", 21, 400), // \x00Transfer-Encoding: chunked
    ("real-life-test-cases.yaml", 22, 400), // Transfer-Encoding: \x00chunked
    ("real-life-test-cases.yaml", 23, 400), // Send small (1614 bytes) request, transfer encoded request
    ("rfc-compliant.yaml", 0, 200),         // No headers
    ("rfc-compliant.yaml", 1, 200),         // Valid Transfer-Encoding (chunked)
    ("rfc-compliant.yaml", 2, 200),         // Valid Content-Length
    ("rfc-compliant.yaml", 3, 200), // Valid Transfer-Encoding (chunked) + custom header (non-ascii)
    ("rfc-compliant.yaml", 4, 200), // Valid custom header with tchar in name and obs-text
    ("rfc-compliant.yaml", 5, 200), // Valid custom header with underscore in name
    ("rfc-compliant.yaml", 6, 200), // Valid custom header with dot in name
    ("rfc-compliant.yaml", 7, 200), // Valid custom header with digits in name
    ("rfc-compliant.yaml", 8, 400), // Different Transfer-Encoding headers
    ("rfc-compliant.yaml", 9, 501), // Different Transfer-Encoding headers combined
    ("rfc-compliant.yaml", 10, 400), // Transfer-Encoding with a param: chunked;custom_param
    ("rfc-compliant.yaml", 11, 200), // Compliant URL
    ("rfc-compliant.yaml", 12, 200), // International in URI
    ("rfc-compliant.yaml", 13, 400), // Empty URI
    ("severe.yaml", 0, 400),        // Multiple Content-Length
    ("severe.yaml", 1, 400),        // Bad Content-Length: 1000,1000
    ("severe.yaml", 2, 400),        // Bad Content-Length: 1000 1000
    ("severe.yaml", 3, 400),        // Bad Content-Length: 1000.1000
    ("severe.yaml", 4, 400),        // Bad Content-Length (64-bits overflow)
    ("severe.yaml", 5, 501),        // Unknown Transfer-Encoding: xchunked
    ("severe.yaml", 6, 501),        // Bad character in Transfer-Encoding value: chunked\x11
    ("severe.yaml", 7, 400),        // Bad character in Content-Length value: 1000\x11
    ("severe.yaml", 8, 400),        // Multiple Transfer-Encoding: chunked
    ("severe.yaml", 9, 501),        // Multiple Transfer-Encoding: chunked,chunked
    ("severe.yaml", 10, 400),       // Multiline headers are deprecated
    ("severe.yaml", 11, 400),       // Multiline headers are deprecated (with \n only)
    ("severe.yaml", 12, 400),       // Http Engine missed CR
    ("severe.yaml", 13, 400),       // Http Engine missed LF
    ("severe.yaml", 14, 400),       // \r in name is bad
    ("severe.yaml", 15, 400),       // \n in name is bad
    ("severe.yaml", 16, 400),       // \0 in name is bad
    ("severe.yaml", 17, 400),       // \r in value is bad
    ("severe.yaml", 18, 400),       // \n in value is bad
    ("severe.yaml", 19, 400),       // \0 in value is bad
    ("severe.yaml", 20, 400),       // \0 at the start of a line
    ("severe.yaml", 21, 400),       // \0 at the start of a value
    ("severe.yaml", 22, 400),       // \0 at the end of a value
    ("severe.yaml", 23, 400),       // Content-Length[white-space] and Content-Length
    ("severe.yaml", 24, 400),       // [white-space]Content-Length and Content-Length
    ("severe.yaml", 25, 400),       // Transfer-Encoding[white-space] and Transfer-Encoding
    ("severe.yaml", 26, 400),       // Bad method
    ("single-case.yaml", 0, 400),   // Both Transfer-Encoding:chunked and Content-Length
    ("uri-specific-test-cases.yaml", 0, 400), // \t in URI
    ("uri-specific-test-cases.yaml", 1, 200), // Extra spaces in version
    ("uri-specific-test-cases.yaml", 2, 400), // \x01 in URI
    ("uri-specific-test-cases.yaml", 3, 400), // [space] in URI
    ("uri-specific-test-cases.yaml", 4, 400), // [space] in URI resulted in a bad version
    ("uri-specific-test-cases.yaml", 5, 400), // \r in URI
    ("uri-specific-test-cases.yaml", 6, 9), // \n in URI
    ("uri-specific-test-cases.yaml", 7, 400), // Request Smuggling in URI
    ("uri-specific-test-cases.yaml", 8, 400), // \0 in URI
    ("uri-specific-test-cases.yaml", 9, 400), // \0 at the start of URI
    ("uri-specific-test-cases.yaml", 10, 200), // %09 in URI is OK
    ("uri-specific-test-cases.yaml", 11, 200), // %20 in URI is OK
    ("uri-specific-test-cases.yaml", 12, 200), // %0D in URI is OK
    ("uri-specific-test-cases.yaml", 13, 200), // %0A in URI is OK
];

fn nginx_accepts(code: u16) -> bool {
    matches!(code, 200 | 413 | 9)
}

/// Compliant cases that nginx rejects too: they must be rejected here, with these statuses.
const COMPLIANT_BUT_REJECTED: &[(&str, u16, &str)] = &[
    (
        "Different Transfer-Encoding headers",
        400,
        "several Transfer-Encoding headers: nginx 400",
    ),
    (
        "Different Transfer-Encoding headers combined",
        501,
        "gzip, deflate, …, chunked: nginx 501",
    ),
    (
        "Transfer-Encoding with a param: chunked;custom_param",
        400,
        "several Transfer-Encoding headers: nginx 400",
    ),
    ("Empty URI", 400, "`GET  HTTP/1.1` has no target: nginx 400"),
    ("Correct TE OK", 501, "`gzip, chunked`: nginx 501"),
    (
        "Transfer-Encoding: identity and chunked OK",
        501,
        "`deflate, identity, chunked`: nginx 501",
    ),
    (
        "Multiple transfer encoding headers in a single request OK",
        400,
        "several Transfer-Encoding headers: nginx 400",
    ),
    (
        "TE with custom parameters OK",
        501,
        "`chunked;custom_param;`: nginx 501",
    ),
];

/// Cases where this codec and nginx disagree on accept/reject, and why.
const NGINX_DEVIATIONS: &[(&str, usize, &str)] = &[
    (
        "acceptable.yaml",
        7,
        "HTTP/0.9 simple request: nginx serves it, we answer 400",
    ),
    (
        "acceptable.yaml",
        8,
        "HTTP/1.2: nginx serves it as 1.1, we answer 505",
    ),
    (
        "ambiguous.yaml",
        28,
        "non-token header name (ſ): nginx ignores the line, we answer 400",
    ),
    (
        "ambiguous.yaml",
        29,
        "non-token header name (ı): nginx ignores the line, we answer 400",
    ),
    (
        "ambiguous.yaml",
        34,
        "non-token header name (―): nginx ignores the line, we answer 400",
    ),
    (
        "ambiguous.yaml",
        35,
        "non-token header name (0x88): nginx ignores the line, we answer 400",
    ),
    (
        "ambiguous.yaml",
        36,
        "non-token header name (0xA0): nginx ignores the line, we answer 400",
    ),
    (
        "bad-header-characters.yaml",
        13,
        "control byte in a header value: nginx passes it, we answer 400",
    ),
    (
        "bad-header-characters.yaml",
        14,
        "control byte in a header value: nginx passes it, we answer 400",
    ),
    (
        "edge-cases.yaml",
        3,
        "control byte in a header value: nginx passes it, we answer 400",
    ),
    (
        "edge-cases.yaml",
        4,
        "control byte in a header value: nginx passes it, we answer 400",
    ),
    (
        "edge-cases.yaml",
        7,
        "control byte in a header value: nginx passes it, we answer 400",
    ),
    (
        "uri-specific-test-cases.yaml",
        1,
        "space after the version: nginx accepts it, we answer 400",
    ),
    (
        "uri-specific-test-cases.yaml",
        6,
        "LF inside the target: nginx serves `GET /endpoint_a` as HTTP/0.9, we answer 400",
    ),
];

#[test]
fn desync_guardian_corpus() {
    let cases = load_corpus();
    assert!(
        cases.len() >= 150,
        "only {} corpus cases found",
        cases.len()
    );
    let mut tiers: std::collections::BTreeMap<
        String,
        (usize, usize, std::collections::BTreeMap<u16, usize>),
    > = Default::default();
    let mut failures = Vec::new();
    let mut deviations = Vec::new();
    for case in &cases {
        let outcome = run_case(&case.raw);
        let entry = tiers.entry(case.tier.clone()).or_default();
        match outcome {
            Outcome::Accepted => entry.0 += 1,
            Outcome::Rejected(e) => {
                entry.1 += 1;
                *entry.2.entry(e.status()).or_default() += 1;
            }
            Outcome::Waiting => failures.push(format!(
                "{} #{} {:?}: still waiting",
                case.file, case.index, case.name
            )),
        }
        let label = format!(
            "{} #{} {:?} [{}] {}",
            case.file,
            case.index,
            case.name,
            case.tier,
            show(&case.raw)
        );
        match case.tier.as_str() {
            "Severe" => match outcome {
                Outcome::Rejected(e)
                    if (400..600).contains(&e.status()) && e.close_connection() => {}
                other => failures.push(format!("Severe not rejected: {label} -> {other:?}")),
            },
            "Compliant" => match COMPLIANT_BUT_REJECTED
                .iter()
                .find(|(n, _, _)| *n == case.name)
            {
                None if outcome != Outcome::Accepted => {
                    failures.push(format!("Compliant rejected: {label} -> {outcome:?}"))
                }
                Some((_, status, why)) if !matches!(outcome, Outcome::Rejected(e) if e.status() == *status) => {
                    failures.push(format!(
                        "Compliant case nginx rejects ({why}): {label} -> {outcome:?}"
                    ))
                }
                _ => {}
            },
            _ => {}
        }
        let Some(&(_, _, nginx)) = NGINX
            .iter()
            .find(|(f, i, _)| *f == case.file && *i == case.index)
        else {
            failures.push(format!("no nginx answer recorded for {label}"));
            continue;
        };
        if nginx_accepts(nginx) != (outcome == Outcome::Accepted) {
            deviations.push((case.file.clone(), case.index));
            if !NGINX_DEVIATIONS
                .iter()
                .any(|(f, i, _)| *f == case.file && *i == case.index)
            {
                failures.push(format!(
                    "differs from nginx ({nginx}): {label} -> {outcome:?}"
                ));
            }
        }
    }
    for (f, i, why) in NGINX_DEVIATIONS {
        if !deviations.iter().any(|(df, di)| df == f && di == i) {
            failures.push(format!(
                "listed deviation {f} #{i} ({why}) no longer differs from nginx"
            ));
        }
    }
    println!("desync-guardian corpus: {} cases", cases.len());
    for (tier, (accepted, rejected, by_status)) in &tiers {
        println!("  {tier:<10} accepted {accepted:>3}, rejected {rejected:>3} {by_status:?}");
    }
    println!(
        "  same accept/reject as nginx 1.22.1 on {} of {} ({} documented deviations)",
        cases.len() - deviations.len(),
        cases.len(),
        deviations.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Nothing a client sends makes the codec panic, loop, or describe bytes outside the buffer.
// ---------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"OPTIONS",
    b" ",
    b"  ",
    b"/",
    b"/a?b",
    b"*",
    b"http://",
    b"h.com",
    b":80",
    b"[::1]",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"\r\n",
    b"\n",
    b"\r",
    b"\t",
    b"\0",
    b":",
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Expect",
    b"chunked",
    b"close",
    b"keep-alive",
    b"100-continue",
    b"5",
    b"-1",
    b",",
    b"0",
    b"\xff",
    b"\x80",
    b"\x01",
    b"\x7f",
    b"a",
];

fn check_invariants(buf: &[u8], head: &RequestHead) {
    let within = |r: &std::ops::Range<usize>| r.start <= r.end && r.end <= head.head_len;
    assert!(head.head_len <= buf.len());
    assert!(within(&head.method_range) && within(&head.target));
    for r in [&head.host, &head.absolute_host, &head.upgrade]
        .into_iter()
        .flatten()
    {
        assert!(within(r));
    }
    assert!(head.header_count() <= MAX_HEADERS);
    for (n, v) in head.headers() {
        assert!(within(&n) && within(&v));
    }
    assert!(head.minor_version <= 1);
    assert!(!(head.chunked && head.content_length.is_some()));
    assert!(!head.chunked || head.minor_version == 1);
    assert!(head.host.is_some() || head.minor_version == 0);
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid: Vec<&[u8]> = valid_cases().into_iter().map(|(b, _)| b).collect();
    let tiny = Limits {
        max_head: 96,
        max_uri: 40,
        max_headers: 4,
    };
    let mut complete = 0;
    let mut buf = Vec::new();
    for round in 0..60_000 {
        buf.clear();
        if round % 2 == 0 {
            for _ in 0..rng.below(24) {
                buf.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        } else {
            buf.extend_from_slice(valid[rng.below(valid.len())]);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(buf.len() + 1);
                match rng.below(3) {
                    0 if at < buf.len() => buf[at] = rng.next() as u8,
                    1 => buf
                        .splice(at..at, PIECES[rng.below(PIECES.len())].iter().copied())
                        .for_each(drop),
                    _ if at < buf.len() => {
                        buf.remove(at);
                    }
                    _ => {}
                }
            }
        }
        for limits in [Limits::default(), tiny] {
            let mut head = RequestHead::new();
            if let Ok(Parsed::Complete) = parse_head(&buf, &limits, &mut head) {
                complete += 1;
                check_invariants(&buf, &head);
                assert!(head.head_len <= limits.max_head);
            }
        }
        // The same bytes as a chunked body, in two pieces.
        let cut = rng.below(buf.len() + 1);
        let _ = decode_in_pieces(&buf, &[cut]);
    }
    println!("{complete} random or mutated heads parsed as complete");
}

#[test]
fn random_chunked_framing_never_panics_or_stalls() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    const BITS: &[&[u8]] = &[
        b"0",
        b"5",
        b"a",
        b"F",
        b"ffffffff",
        b";",
        b"x=y",
        b" ",
        b"\t",
        b"\r\n",
        b"\r",
        b"\n",
        b"hello",
        b"\0",
        b"T: v",
        b"\r\n\r\n",
        b"0\r\n\r\n",
        b"5\r\nhello\r\n",
    ];
    let mut done = 0;
    for _ in 0..50_000 {
        let mut input = Vec::new();
        for _ in 0..rng.below(12) {
            input.extend_from_slice(BITS[rng.below(BITS.len())]);
        }
        let mut dec = ChunkedDecoder::with_limit(1 << 20);
        let mut pos = 0;
        let mut calls = 0;
        while pos < input.len() {
            calls += 1;
            assert!(calls <= 2 * input.len() + 2, "no progress");
            match dec.decode(&input[pos..]) {
                Ok(step) => {
                    assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
                    assert!(step.consumed <= input.len() - pos);
                    pos += step.consumed;
                    if step.done {
                        done += 1;
                        break;
                    }
                    if step.consumed == 0 {
                        break;
                    }
                }
                Err(e) => {
                    assert!(e.close_connection());
                    break;
                }
            }
        }
    }
    println!("{done} random chunked bodies complete");
}

#[test]
fn random_header_values_for_range_date_etag_never_panic() {
    use proton_runtime::http::etag::{if_match, if_none_match};
    use proton_runtime::http::range::{parse_range, ByteRange, RangeResult, MAX_RANGES};
    use proton_runtime::http::response::parse_http_date;
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    const BITS: &[&[u8]] = &[
        b"bytes=",
        b"BYTES=",
        b"0",
        b"9",
        b"-",
        b",",
        b" ",
        b"\t",
        b"18446744073709551616",
        b"W/",
        b"\"",
        b"*",
        b"Sun",
        b", ",
        b"06",
        b" Nov ",
        b"1994",
        b"08:49:37",
        b" GMT",
        b"\xff",
        b":",
    ];
    for _ in 0..50_000 {
        let mut v = Vec::new();
        for _ in 0..rng.below(10) {
            v.extend_from_slice(BITS[rng.below(BITS.len())]);
        }
        let len = [0, 1, 100, u64::MAX, i64::MAX as u64][rng.below(5)];
        let mut out = [ByteRange::default(); MAX_RANGES];
        if let RangeResult::Satisfiable(n) = parse_range(&v, len, &mut out) {
            assert!((1..=MAX_RANGES).contains(&n));
            for r in &out[..n] {
                assert!(r.start < r.end && r.end <= len);
            }
        }
        let _ = parse_http_date(&v);
        let _ = if_none_match(&v, b"\"5f-1a\"");
        let _ = if_match(&v, b"W/\"x\"");
    }
}
