//! The answer to one health-check request, read without I/O: [`Answer`] is fed the bytes a
//! server sent, as they arrive, and says as soon as it can whether the check passed
//! ([`Verdict`]). The head is read by the proxy's own parser
//! ([`crate::http::upstream::parse_response_head`]), so a head the proxy would refuse with a
//! 502 fails the check; a chunked body goes through the same [`ChunkedDecoder`].
//!
//! Without a `match` block a 2xx or 3xx status passes, decided on the status line and headers
//! alone (the body is not read). With one, its tests are tried in order: `status` and
//! `header` tests when the head is complete, and only if they all pass and the block has a
//! `body` test, the body is read — up to [`BODY_LIMIT`] bytes, its end, or the connection's
//! end, whichever comes first — and the `body` tests run on it.
//!
//! Nothing here reads a clock or a socket; the caller owns the timeout and the connection.

use proton_ir::{HeaderTest, HealthMatch, MatchTest};

use crate::http::chunked::ChunkedDecoder;
use crate::http::request::bytes_at;
use crate::http::upstream::{parse_response_head, BodyKind, Parsed, ResponseHead};

/// Longest head read (status line and header fields).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in a head.
pub const MAX_HEADERS: usize = 100;
/// Most body bytes the `body` tests look at (nginx Plus looks at 256k).
pub const BODY_LIMIT: usize = 16 * 1024;

/// What an answer must pass: the `match` block of the check (`None`: a 2xx or 3xx status),
/// with the worker's compiled regexes (by [`proton_ir::RegexId`]).
#[derive(Clone, Copy)]
pub struct Expect<'a> {
    pub tests: Option<&'a HealthMatch>,
    pub regexes: &'a [proton_ir::pattern::Regex],
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The answer passed; its status.
    Pass(u16),
    Fail(Failure),
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Without `match`: the status was not 2xx or 3xx.
    Status(u16),
    /// `match`: test number `test` of the block (in config order) did not hold for an
    /// answer with this status.
    Test { status: u16, test: usize },
    /// The head broke a rule of the HTTP parser (the proxy's error text).
    Invalid(&'static str),
    /// The connection ended before the head did, after `got` bytes.
    Closed { got: usize },
    /// The connection ended before the body its head announced.
    BodyCut,
    /// Connecting, sending or reading failed (the caller's text).
    Io(String),
    /// The check's timeout passed in this phase (`connect`, `send`, `read`).
    TimedOut(&'static str),
}

/// Where the reading is.
#[derive(Debug)]
enum Stage {
    /// Collecting the head.
    Head,
    /// Collecting the body for the `body` tests; `status` of the head that came first.
    Body {
        status: u16,
        kind: BodyKind,
        /// Bytes of a `Length` body taken so far.
        got: u64,
        chunked: ChunkedDecoder,
    },
    /// A verdict was given; further bytes are ignored.
    Done,
}

/// The answer being read. Reusable: [`Answer::reset`] keeps the buffers' capacity.
#[derive(Debug)]
pub struct Answer {
    /// The head so far, then (once the head was handled) the body so far.
    buf: Vec<u8>,
    head: ResponseHead,
    stage: Stage,
}

impl Default for Answer {
    fn default() -> Answer {
        Answer {
            buf: Vec::new(),
            head: ResponseHead::default(),
            stage: Stage::Head,
        }
    }
}

impl Answer {
    /// Ready for another answer.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.stage = Stage::Head;
    }

    /// Whether nothing has been received yet.
    pub fn is_empty(&self) -> bool {
        matches!(self.stage, Stage::Head) && self.buf.is_empty()
    }

    /// Takes the next bytes from the server. `Some` is the verdict (given once; later bytes
    /// are ignored); `None`: more bytes are needed.
    pub fn feed(&mut self, data: &[u8], expect: &Expect<'_>) -> Option<Verdict> {
        match self.stage {
            Stage::Done => None,
            Stage::Head => {
                let room = MAX_HEAD.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(data.get(..room).unwrap_or(data));
                let v = self.head(expect);
                if v.is_some() {
                    self.stage = Stage::Done;
                }
                v
            }
            Stage::Body { .. } => {
                let v = self.body(data, expect);
                if v.is_some() {
                    self.stage = Stage::Done;
                }
                v
            }
        }
    }

    /// The server closed the connection: the verdict on what came (`None` only when a
    /// verdict was given already).
    pub fn eof(&mut self, expect: &Expect<'_>) -> Option<Verdict> {
        let v = match &self.stage {
            Stage::Done => return None,
            Stage::Head => Verdict::Fail(Failure::Closed {
                got: self.buf.len(),
            }),
            Stage::Body {
                status,
                kind: BodyKind::UntilClose,
                ..
            } => body_verdict(*status, &self.buf, expect),
            Stage::Body { .. } => Verdict::Fail(Failure::BodyCut),
        };
        self.stage = Stage::Done;
        Some(v)
    }

    /// Parses the head; when it is complete, runs the status and header tests and starts
    /// on the body if a `body` test needs it.
    fn head(&mut self, expect: &Expect<'_>) -> Option<Verdict> {
        match parse_response_head(&self.buf, MAX_HEAD, MAX_HEADERS, &mut self.head) {
            Ok(Parsed::Partial) => return None,
            Ok(Parsed::Complete) => {}
            Err(e) => return Some(Verdict::Fail(Failure::Invalid(e.reason()))),
        }
        let status = self.head.status;
        let Some(m) = expect.tests else {
            return Some(if (200..400).contains(&status) {
                Verdict::Pass(status)
            } else {
                Verdict::Fail(Failure::Status(status))
            });
        };
        for (i, t) in m.tests.iter().enumerate() {
            let ok = match t {
                MatchTest::Status { negate, ranges } => {
                    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) != *negate
                }
                MatchTest::Header { name, test } => self.header_test(name, test, expect),
                MatchTest::Body { .. } => true,
            };
            if !ok {
                return Some(Verdict::Fail(Failure::Test { status, test: i }));
            }
        }
        if !m.tests.iter().any(|t| matches!(t, MatchTest::Body { .. })) {
            return Some(Verdict::Pass(status));
        }
        // Keep only the body bytes that came with the head.
        let kind = self.head.body_kind(false);
        let rest = self.buf.split_off(self.head.head_len.min(self.buf.len()));
        self.buf.clear();
        self.stage = Stage::Body {
            status,
            kind,
            got: 0,
            chunked: ChunkedDecoder::new(),
        };
        if kind == BodyKind::None {
            return Some(body_verdict(status, &self.buf, expect));
        }
        self.body(&rest, expect)
    }

    /// Whether the header fields pass one `header` test.
    fn header_test(&self, name: &str, test: &HeaderTest, expect: &Expect<'_>) -> bool {
        let mut values = self
            .head
            .headers
            .iter()
            .filter(|(n, _)| bytes_at(&self.buf, n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| bytes_at(&self.buf, v));
        let is_match = |id: &proton_ir::RegexId, v: &[u8]| {
            expect
                .regexes
                .get(id.0 as usize)
                .is_some_and(|re| re.is_match(v))
        };
        match test {
            HeaderTest::Present => values.next().is_some(),
            HeaderTest::Absent => values.next().is_none(),
            HeaderTest::Equal(want) => values.any(|v| v == want.as_bytes()),
            HeaderTest::NotEqual(want) => values.any(|v| v != want.as_bytes()),
            HeaderTest::Matches(id) => values.any(|v| is_match(id, v)),
            HeaderTest::NotMatches(id) => values.any(|v| !is_match(id, v)),
        }
    }

    /// Takes body bytes (up to [`BODY_LIMIT`]); the verdict once the body ended or the limit
    /// is reached.
    fn body(&mut self, data: &[u8], expect: &Expect<'_>) -> Option<Verdict> {
        let Stage::Body {
            status,
            kind,
            got,
            chunked,
        } = &mut self.stage
        else {
            return None;
        };
        let status = *status;
        let room = |buf: &Vec<u8>| BODY_LIMIT.saturating_sub(buf.len());
        let complete = match kind {
            BodyKind::None => true,
            BodyKind::Length(n) => {
                let want = usize::try_from(*n - *got).unwrap_or(usize::MAX);
                let take = data.len().min(want);
                *got += take as u64;
                let keep = take.min(room(&self.buf));
                self.buf.extend_from_slice(&data[..keep]);
                *got == *n
            }
            BodyKind::UntilClose => {
                let keep = data.len().min(room(&self.buf));
                self.buf.extend_from_slice(&data[..keep]);
                false
            }
            BodyKind::Chunked => {
                let mut at = 0;
                loop {
                    let step = match chunked.decode(&data[at..]) {
                        Ok(s) => s,
                        Err(_) => {
                            return Some(Verdict::Fail(Failure::Invalid(
                                "upstream sent invalid chunked response",
                            )))
                        }
                    };
                    let piece = bytes_at(&data[at..], &step.data);
                    let keep = piece.len().min(room(&self.buf));
                    self.buf.extend_from_slice(&piece[..keep]);
                    at += step.consumed;
                    if step.done {
                        break true;
                    }
                    if at >= data.len() || step.consumed == 0 || self.buf.len() >= BODY_LIMIT {
                        break false;
                    }
                }
            }
        };
        (complete || self.buf.len() >= BODY_LIMIT).then(|| body_verdict(status, &self.buf, expect))
    }
}

/// The verdict of the `body` tests (the others passed already) on `body`.
fn body_verdict(status: u16, body: &[u8], expect: &Expect<'_>) -> Verdict {
    let tests = expect.tests.map_or(&[][..], |m| m.tests.as_slice());
    for (i, t) in tests.iter().enumerate() {
        if let MatchTest::Body { negate, regex } = t {
            let matched = expect
                .regexes
                .get(regex.0 as usize)
                .is_some_and(|re| re.is_match(body));
            if matched == *negate {
                return Verdict::Fail(Failure::Test { status, test: i });
            }
        }
    }
    Verdict::Pass(status)
}

/// A test as it is written in the `match` block, for log lines (`patterns` are the IR's
/// regexes, by id).
pub fn describe_test(t: &MatchTest, patterns: &[proton_ir::pattern::Regex]) -> String {
    let re = |id: &proton_ir::RegexId| {
        patterns
            .get(id.0 as usize)
            .map_or("?", |r| r.as_str())
            .to_string()
    };
    match t {
        MatchTest::Status { negate, ranges } => {
            let mut s = String::from(if *negate { "status !" } else { "status" });
            for &(lo, hi) in ranges {
                if lo == hi {
                    s.push_str(&format!(" {lo}"));
                } else {
                    s.push_str(&format!(" {lo}-{hi}"));
                }
            }
            s
        }
        MatchTest::Header { name, test } => match test {
            HeaderTest::Present => format!("header {name}"),
            HeaderTest::Absent => format!("header ! {name}"),
            HeaderTest::Equal(v) => format!("header {name} = {v:?}"),
            HeaderTest::NotEqual(v) => format!("header {name} != {v:?}"),
            HeaderTest::Matches(id) => format!("header {name} ~ {:?}", re(id)),
            HeaderTest::NotMatches(id) => format!("header {name} !~ {:?}", re(id)),
        },
        MatchTest::Body { negate, regex } => {
            format!("body {} {:?}", if *negate { "!~" } else { "~" }, re(regex))
        }
    }
}

impl Failure {
    /// The reason, for the error log (`expect` names the `match` block's tests).
    pub fn describe(&self, expect: &Expect<'_>) -> String {
        match self {
            Failure::Status(s) => format!("status {s}"),
            Failure::Test { status, test } => {
                let (name, what) = expect.tests.map_or(("", String::new()), |m| {
                    let what = m
                        .tests
                        .get(*test)
                        .map(|t| describe_test(t, expect.regexes))
                        .unwrap_or_default();
                    (m.name.as_str(), what)
                });
                format!("status {status}, match \"{name}\" failed: {what}")
            }
            Failure::Invalid(why) => why.replacen("upstream sent", "the server sent", 1),
            Failure::Closed { got: 0 } => "connection closed without an answer".into(),
            Failure::Closed { got } => {
                format!("connection closed after {got} bytes, in the response head")
            }
            Failure::BodyCut => "connection closed in the response body".into(),
            Failure::Io(e) => e.clone(),
            Failure::TimedOut(phase) => format!("{phase} timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proton_ir::RegexId;

    fn regexes(patterns: &[&str]) -> Vec<proton_ir::pattern::Regex> {
        patterns
            .iter()
            .map(|p| proton_ir::pattern::compile(p, false).expect("regex"))
            .collect()
    }

    /// Feeds `parts` in order; the verdict (and at which part it came), or the EOF verdict.
    fn run(parts: &[&[u8]], expect: &Expect<'_>) -> (Verdict, Option<usize>) {
        let mut a = Answer::default();
        for (i, p) in parts.iter().enumerate() {
            if let Some(v) = a.feed(p, expect) {
                assert_eq!(a.feed(b"more", expect), None, "one verdict only");
                assert_eq!(a.eof(expect), None, "one verdict only");
                return (v, Some(i));
            }
        }
        (a.eof(expect).expect("a verdict at EOF"), None)
    }

    /// The verdict for `raw` split at every byte offset (and fed one byte at a time): the
    /// same everywhere. Returns it.
    fn every_split(raw: &[u8], expect: &Expect<'_>) -> Verdict {
        let (whole, _) = run(&[raw], expect);
        for k in 0..=raw.len() {
            let (v, _) = run(&[&raw[..k], &raw[k..]], expect);
            assert_eq!(
                v,
                whole,
                "split at {k} of {:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(run(&bytes, expect).0, whole, "byte at a time");
        whole
    }

    const PLAIN: Expect<'static> = Expect {
        tests: None,
        regexes: &[],
    };

    #[test]
    fn without_match_2xx_and_3xx_pass() {
        for (raw, want) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
                Verdict::Pass(200),
            ),
            (
                b"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n",
                Verdict::Pass(302),
            ),
            (b"HTTP/1.1 204\r\n\r\n", Verdict::Pass(204)),
            (b"HTTP/1.1 399 X\n\n", Verdict::Pass(399)),
            (
                b"HTTP/1.1 500 Oops\r\n\r\nbody",
                Verdict::Fail(Failure::Status(500)),
            ),
            (
                b"HTTP/1.1 199 X\r\n\r\n",
                Verdict::Fail(Failure::Status(199)),
            ),
            (
                b"HTTP/1.1 400 X\r\n\r\n",
                Verdict::Fail(Failure::Status(400)),
            ),
        ] {
            assert_eq!(
                every_split(raw, &PLAIN),
                want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn the_verdict_comes_with_the_head_not_at_eof() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome";
        let (v, at) = run(&[&raw[..10], &raw[10..]], &PLAIN);
        assert_eq!((v, at), (Verdict::Pass(200), Some(1)));
        // Before the empty line, nothing is decided.
        let (v, at) = run(&[b"HTTP/1.1 200 OK\r\nX: y\r\n"], &PLAIN);
        assert_eq!(at, None);
        assert!(
            matches!(v, Verdict::Fail(Failure::Closed { got: 23 })),
            "{v:?}"
        );
    }

    #[test]
    fn garbage_fails_at_once() {
        for raw in [
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 20\r\n\r\n",
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            b"\x00\x01\x02",
        ] {
            let v = every_split(raw, &PLAIN);
            assert!(
                matches!(v, Verdict::Fail(Failure::Invalid(_))),
                "{raw:?}: {v:?}"
            );
        }
        // The first wrong byte decides: no need for the rest (or for the timeout).
        let (v, at) = run(&[b"S", b"SH-2.0\r\n"], &PLAIN);
        assert_eq!(at, Some(0));
        assert!(matches!(v, Verdict::Fail(Failure::Invalid(_))));
    }

    #[test]
    fn empty_and_cut_answers() {
        assert_eq!(
            every_split(b"", &PLAIN),
            Verdict::Fail(Failure::Closed { got: 0 })
        );
        assert_eq!(
            every_split(b"HTTP/1.1 200 O", &PLAIN),
            Verdict::Fail(Failure::Closed { got: 14 })
        );
    }

    #[test]
    fn head_size_is_bounded() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() < MAX_HEAD + 100 {
            raw.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        let mut a = Answer::default();
        let mut verdict = None;
        for c in raw.chunks(1000) {
            if let Some(v) = a.feed(c, &PLAIN) {
                verdict = Some(v);
                break;
            }
        }
        assert!(matches!(verdict, Some(Verdict::Fail(Failure::Invalid(_)))));
        assert!(a.buf.len() <= MAX_HEAD);
        // Too many fields, in a small head.
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            raw.extend_from_slice(b"A: b\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        assert!(matches!(
            every_split(&raw, &PLAIN),
            Verdict::Fail(Failure::Invalid(_))
        ));
    }

    fn block(tests: Vec<MatchTest>) -> HealthMatch {
        HealthMatch {
            name: "m".into(),
            tests,
        }
    }

    fn status(negate: bool, ranges: &[(u16, u16)]) -> MatchTest {
        MatchTest::Status {
            negate,
            ranges: ranges.to_vec(),
        }
    }

    fn header(name: &str, test: HeaderTest) -> MatchTest {
        MatchTest::Header {
            name: name.into(),
            test,
        }
    }

    fn body(negate: bool, regex: u32) -> MatchTest {
        MatchTest::Body {
            negate,
            regex: RegexId(regex),
        }
    }

    #[test]
    fn status_tests() {
        let res = regexes(&[]);
        let check = |tests: Vec<MatchTest>, code: u16| {
            let m = block(tests);
            let e = Expect {
                tests: Some(&m),
                regexes: &res,
            };
            let raw = format!("HTTP/1.1 {code} X\r\n\r\n");
            every_split(raw.as_bytes(), &e)
        };
        assert_eq!(
            check(vec![status(false, &[(200, 200)])], 200),
            Verdict::Pass(200)
        );
        assert_eq!(
            check(vec![status(false, &[(200, 200)])], 204),
            Verdict::Fail(Failure::Test {
                status: 204,
                test: 0
            })
        );
        let list = vec![status(false, &[(200, 200), (204, 204)])];
        assert_eq!(check(list.clone(), 204), Verdict::Pass(204));
        assert!(matches!(check(list, 201), Verdict::Fail(_)));
        let range = vec![status(false, &[(301, 303), (307, 307)])];
        for (code, ok) in [
            (300, false),
            (301, true),
            (303, true),
            (304, false),
            (307, true),
        ] {
            assert_eq!(
                matches!(check(range.clone(), code), Verdict::Pass(_)),
                ok,
                "{code}"
            );
        }
        let not = vec![status(true, &[(500, 500)])];
        assert!(matches!(check(not.clone(), 500), Verdict::Fail(_)));
        assert_eq!(check(not.clone(), 503), Verdict::Pass(503));
        // No status test: any status passes (even 500).
        assert_eq!(check(not.clone(), 404), Verdict::Pass(404));
        assert_eq!(check(vec![], 500), Verdict::Pass(500));
        // Every test must hold: the first that does not is reported.
        let both = vec![status(false, &[(200, 399)]), status(true, &[(204, 204)])];
        assert_eq!(
            check(both, 204),
            Verdict::Fail(Failure::Test {
                status: 204,
                test: 1
            })
        );
    }

    #[test]
    fn header_tests() {
        let res = regexes(&["^text/", "close"]);
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Foo: \r\nX-Multi: a\r\nx-multi: b\r\n\r\n";
        let check = |t: HeaderTest, name: &str| {
            let m = block(vec![header(name, t)]);
            let e = Expect {
                tests: Some(&m),
                regexes: &res,
            };
            matches!(every_split(raw, &e), Verdict::Pass(_))
        };
        use HeaderTest::*;
        assert!(check(Present, "content-type"));
        assert!(check(Present, "x-foo"), "an empty value is present");
        assert!(!check(Present, "x-bar"));
        assert!(check(Absent, "x-bar"));
        assert!(!check(Absent, "x-foo"));
        assert!(check(Equal("text/html".into()), "content-type"));
        assert!(
            !check(Equal("text/HTML".into()), "content-type"),
            "values are exact"
        );
        assert!(!check(Equal("text/html".into()), "x-bar"), "missing fails");
        assert!(check(NotEqual("text/plain".into()), "content-type"));
        assert!(!check(NotEqual("text/html".into()), "content-type"));
        assert!(!check(NotEqual("x".into()), "x-bar"), "missing fails !=");
        assert!(check(Matches(RegexId(0)), "content-type"));
        assert!(!check(Matches(RegexId(1)), "content-type"));
        assert!(check(NotMatches(RegexId(1)), "content-type"));
        assert!(!check(NotMatches(RegexId(0)), "content-type"));
        assert!(!check(NotMatches(RegexId(0)), "x-bar"), "missing fails !~");
        // Any field of the name may pass (names compare ignoring case).
        assert!(check(Equal("b".into()), "x-multi"));
        assert!(check(Equal("a".into()), "x-multi"));
        assert!(check(NotEqual("a".into()), "x-multi"));
    }

    #[test]
    fn body_tests_read_as_much_as_needed() {
        let res = regexes(&["Welcome", "maint"]);
        let m = block(vec![
            status(false, &[(200, 200)]),
            body(false, 0),
            body(true, 1),
        ]);
        let e = Expect {
            tests: Some(&m),
            regexes: &res,
        };
        // Content-Length: decided when the body is complete, without waiting for EOF.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nWelcome home";
        assert_eq!(every_split(raw, &e), Verdict::Pass(200));
        let (_, at) = run(&[&raw[..], b"trailing junk"], &e);
        assert_eq!(at, Some(0));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nmaintenance";
        assert_eq!(
            every_split(raw, &e),
            Verdict::Fail(Failure::Test {
                status: 200,
                test: 1
            })
        );
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nWelcome (maintenance on)";
        assert_eq!(
            every_split(&[&raw[..], b")"].concat(), &e),
            Verdict::Fail(Failure::Test {
                status: 200,
                test: 2
            })
        );
        // Until close: decided at EOF.
        let raw = b"HTTP/1.0 200 OK\r\n\r\nWelcome";
        assert_eq!(every_split(raw, &e), Verdict::Pass(200));
        // Chunked.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nWel\r\n4\r\ncome\r\n0\r\n\r\n";
        assert_eq!(every_split(raw, &e), Verdict::Pass(200));
        // The chunk framing is not part of the body.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nmai\r\n2\r\nnt\r\n0\r\n\r\n";
        assert!(matches!(every_split(raw, &e), Verdict::Fail(_)));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(
            every_split(raw, &e),
            Verdict::Fail(Failure::Invalid(_))
        ));
        // Cut short.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nWelcome";
        assert_eq!(every_split(raw, &e), Verdict::Fail(Failure::BodyCut));
        // A status test that fails decides before the body.
        let raw = b"HTTP/1.1 503 X\r\nContent-Length: 7\r\n\r\n";
        let (v, at) = run(&[raw], &e);
        assert_eq!(
            (v, at),
            (
                Verdict::Fail(Failure::Test {
                    status: 503,
                    test: 0
                }),
                Some(0)
            )
        );
        // An empty body: the body tests run on nothing.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            every_split(raw, &e),
            Verdict::Fail(Failure::Test { test: 1, .. })
        ));
    }

    #[test]
    fn body_limit() {
        let res = regexes(&["needle"]);
        let m = block(vec![body(false, 0)]);
        let e = Expect {
            tests: Some(&m),
            regexes: &res,
        };
        let mut big = vec![b'x'; BODY_LIMIT - 6];
        big.extend_from_slice(b"needle");
        big.extend_from_slice(&vec![b'y'; 100_000]);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", big.len());
        let raw = [head.as_bytes(), &big].concat();
        // Decided once the limit is reached, long before the body ends.
        let mut a = Answer::default();
        let mut fed = 0;
        let mut verdict = None;
        for c in raw.chunks(4096) {
            fed += c.len();
            if let Some(v) = a.feed(c, &e) {
                verdict = Some(v);
                break;
            }
        }
        assert_eq!(verdict, Some(Verdict::Pass(200)));
        assert!(fed < head.len() + BODY_LIMIT + 4096);
        assert!(a.buf.len() <= BODY_LIMIT);
        // A needle past the limit is not seen.
        let mut far = vec![b'x'; BODY_LIMIT];
        far.extend_from_slice(b"needle");
        let raw = [b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), &far].concat();
        assert!(matches!(run(&[&raw], &e).0, Verdict::Fail(_)));
    }

    #[test]
    fn reasons_name_the_test() {
        let res = regexes(&["maint"]);
        let m = HealthMatch {
            name: "ok".into(),
            tests: vec![
                status(true, &[(500, 500), (502, 504)]),
                header("content-type", HeaderTest::Equal("text/html".into())),
                header("x-bar", HeaderTest::Absent),
                body(true, 0),
            ],
        };
        let e = Expect {
            tests: Some(&m),
            regexes: &res,
        };
        let text = |test| Failure::Test { status: 200, test }.describe(&e);
        assert_eq!(
            text(0),
            "status 200, match \"ok\" failed: status ! 500 502-504"
        );
        assert_eq!(
            text(1),
            "status 200, match \"ok\" failed: header content-type = \"text/html\""
        );
        assert_eq!(text(2), "status 200, match \"ok\" failed: header ! x-bar");
        assert_eq!(
            text(3),
            "status 200, match \"ok\" failed: body !~ \"maint\""
        );
        assert_eq!(Failure::Status(503).describe(&PLAIN), "status 503");
        assert_eq!(Failure::TimedOut("read").describe(&PLAIN), "read timed out");
        assert_eq!(
            Failure::Invalid("upstream sent invalid status").describe(&PLAIN),
            "the server sent invalid status"
        );
    }
}
