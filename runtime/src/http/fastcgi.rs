//! The FastCGI record layer (the FastCGI 1.0 specification, as nginx's fastcgi module speaks
//! it) on byte slices: writers for a request (`BEGIN_REQUEST`, `PARAMS`, `STDIN`) and a
//! [`Decoder`] for the application's answer (`STDOUT`, `STDERR`, `END_REQUEST`), fed whatever
//! bytes have arrived. The decoder never copies a body byte: it hands back where the
//! `STDOUT`/`STDERR` bytes are in its input, and keeps no more than a record header between
//! calls.
//!
//! ```
//! use proton_runtime::http::fastcgi::{Decoder, Event};
//! // STDOUT "hi" then END_REQUEST, for request 1.
//! let input = [1, 6, 0, 1, 0, 2, 0, 0, b'h', b'i',
//!              1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
//! let mut dec = Decoder::new(1);
//! let (mut at, mut out, mut ended) = (0, Vec::new(), false);
//! while at < input.len() {
//!     let step = dec.decode(&input[at..]).unwrap();
//!     match step.event {
//!         Some(Event::Stdout(r)) => out.extend_from_slice(&input[at..][r]),
//!         Some(Event::End { .. }) => ended = true,
//!         _ => {}
//!     }
//!     at += step.consumed;
//! }
//! assert_eq!((out.as_slice(), ended), (&b"hi"[..], true));
//! ```

use std::ops::Range;

/// The protocol version every record carries.
pub const VERSION: u8 = 1;
/// The most content bytes one record holds.
pub const MAX_CONTENT: usize = 65535;

/// Record types (the specification's `FCGI_*` values).
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;

/// `FCGI_RESPONDER`, the role of a web request.
const RESPONDER: u16 = 1;
/// `FCGI_KEEP_CONN`: the application keeps the connection after the request.
const KEEP_CONN: u8 = 1;

/// The header of one record with `len` content bytes (padded, as nginx pads, to a multiple
/// of 8 bytes).
fn header(kind: u8, id: u16, len: usize, out: &mut Vec<u8>) -> usize {
    let (h, padding) = header_bytes(kind, id, len);
    out.extend_from_slice(&h);
    padding
}

/// The 8 header bytes of a record with `len` content bytes, and its padding.
fn header_bytes(kind: u8, id: u16, len: usize) -> ([u8; 8], usize) {
    let padding = (8 - len % 8) % 8;
    let [hi, lo] = id.to_be_bytes();
    let [lh, ll] = (len as u16).to_be_bytes();
    ([VERSION, kind, hi, lo, lh, ll, padding as u8, 0], padding)
}

/// `BEGIN_REQUEST` for request `id` in the responder role; `keep_conn`: nginx's
/// `fastcgi_keep_conn on`.
pub fn begin_request(id: u16, keep_conn: bool, out: &mut Vec<u8>) {
    header(BEGIN_REQUEST, id, 8, out);
    let [rh, rl] = RESPONDER.to_be_bytes();
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    out.extend_from_slice(&[rh, rl, flags, 0, 0, 0, 0, 0]);
}

/// Appends one name-value pair to `body` (the content of `PARAMS` records): each length in
/// one byte below 128, else in four with the high bit set. `false` (and nothing written)
/// for a name or value of 2^31 bytes or more.
pub fn param(name: &[u8], value: &[u8], body: &mut Vec<u8>) -> bool {
    if name.len() > 0x7fff_ffff || value.len() > 0x7fff_ffff {
        return false;
    }
    for len in [name.len(), value.len()] {
        if len < 128 {
            body.push(len as u8);
        } else {
            body.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
        }
    }
    body.extend_from_slice(name);
    body.extend_from_slice(value);
    true
}

/// Writes `content` as records of `kind` for request `id`, at most [`MAX_CONTENT`] bytes
/// each; empty `content` writes the one empty record that ends a stream (`PARAMS`,
/// `STDIN`).
pub fn records(kind: u8, id: u16, content: &[u8], out: &mut Vec<u8>) {
    if content.is_empty() {
        header(kind, id, 0, out);
        return;
    }
    for piece in content.chunks(MAX_CONTENT) {
        let padding = header(kind, id, piece.len(), out);
        out.extend_from_slice(piece);
        out.extend(std::iter::repeat_n(0u8, padding));
    }
}

/// Makes the `at..` tail of `out` one record of `kind`: its first 8 bytes (reserved by the
/// caller) become the header of the content after them (at most [`MAX_CONTENT`] bytes), and
/// the padding is appended, as [`records`] would write it.
pub fn frame_in_place(kind: u8, id: u16, out: &mut Vec<u8>, at: usize) {
    let len = out.len() - at - 8;
    debug_assert!(len <= MAX_CONTENT);
    let (h, pad) = header_bytes(kind, id, len);
    out[at..at + 8].copy_from_slice(&h);
    out.resize(out.len() + pad, 0);
}

/// What the application's records say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Response bytes (CGI head, then body) at this range of the input given.
    Stdout(Range<usize>),
    /// Bytes the application wrote to its error stream (nginx logs them).
    Stderr(Range<usize>),
    /// An empty `STDOUT` record: the application's output is complete (nginx ends the
    /// response there unless `fastcgi_keep_conn` waits for `END_REQUEST`).
    StdoutEnd,
    /// The request is over (`END_REQUEST`): the application's exit status and the
    /// protocol status (0: request complete).
    End {
        app_status: u32,
        protocol_status: u8,
    },
}

/// One call of [`Decoder::decode`]: `consumed` input bytes, and what they held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub event: Option<Event>,
}

/// A record the decoder refuses (nginx: "upstream sent unsupported FastCGI protocol
/// version", "… unexpected FastCGI request id", "… invalid FastCGI record type").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FcgiError {
    Version(u8),
    RequestId(u16),
    /// A record type an application does not send to a web server.
    Type(u8),
    /// An `END_REQUEST` whose content is not 8 bytes.
    EndLength(u16),
    /// Records after `END_REQUEST`.
    AfterEnd,
}

impl std::fmt::Display for FcgiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FcgiError::Version(v) => {
                write!(f, "upstream sent unsupported FastCGI protocol version: {v}")
            }
            FcgiError::RequestId(id) => {
                write!(f, "upstream sent unexpected FastCGI request id {id}")
            }
            FcgiError::Type(t) => write!(f, "upstream sent invalid FastCGI record type: {t}"),
            FcgiError::EndLength(n) => write!(
                f,
                "upstream sent invalid FastCGI end request record of {n} bytes"
            ),
            FcgiError::AfterEnd => write!(f, "upstream sent data after the FastCGI end request"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a record header (`have` of its 8 bytes so far).
    Header,
    /// Reading content: `left` bytes of this record's content.
    Content,
    /// Skipping padding: `left` bytes.
    Padding,
    /// `END_REQUEST` was read.
    Done,
}

/// Reads an application's records for one request, in whatever pieces they arrive.
#[derive(Clone, Debug)]
pub struct Decoder {
    id: u16,
    state: State,
    head: [u8; 8],
    have: usize,
    kind: u8,
    left: usize,
    padding: usize,
    /// The content of an `END_REQUEST` record so far.
    end: [u8; 8],
    end_have: usize,
}

impl Decoder {
    /// A decoder for request `id`'s records.
    pub fn new(id: u16) -> Decoder {
        Decoder {
            id,
            state: State::Header,
            head: [0; 8],
            have: 0,
            kind: 0,
            left: 0,
            padding: 0,
            end: [0; 8],
            end_have: 0,
        }
    }

    /// Whether `END_REQUEST` was read.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes bytes from the front of `input`: at most one event per call (with a range
    /// relative to `input`). A call that consumes nothing needs more input.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, FcgiError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Done => {
                    return if rest.is_empty() {
                        Ok(Step {
                            consumed: at,
                            event: None,
                        })
                    } else {
                        Err(FcgiError::AfterEnd)
                    };
                }
                State::Header => {
                    if rest.is_empty() {
                        return Ok(Step {
                            consumed: at,
                            event: None,
                        });
                    }
                    let n = (8 - self.have).min(rest.len());
                    self.head[self.have..self.have + n].copy_from_slice(&rest[..n]);
                    self.have += n;
                    at += n;
                    if self.have < 8 {
                        continue;
                    }
                    self.have = 0;
                    let h = self.head;
                    if h[0] != VERSION {
                        return Err(FcgiError::Version(h[0]));
                    }
                    let id = u16::from_be_bytes([h[2], h[3]]);
                    self.kind = h[1];
                    self.left = usize::from(u16::from_be_bytes([h[4], h[5]]));
                    self.padding = usize::from(h[6]);
                    match self.kind {
                        STDOUT | STDERR | END_REQUEST => {}
                        t => return Err(FcgiError::Type(t)),
                    }
                    if id != self.id {
                        return Err(FcgiError::RequestId(id));
                    }
                    if self.kind == END_REQUEST && self.left != 8 {
                        return Err(FcgiError::EndLength(self.left as u16));
                    }
                    self.end_have = 0;
                    self.state = State::Content;
                    if self.kind == STDOUT && self.left == 0 {
                        self.state = State::Padding;
                        return Ok(Step {
                            consumed: at,
                            event: Some(Event::StdoutEnd),
                        });
                    }
                }
                State::Content => {
                    if self.left == 0 {
                        self.state = State::Padding;
                        if self.kind == END_REQUEST {
                            let e = self.end;
                            self.state = if self.padding == 0 {
                                State::Done
                            } else {
                                State::Padding
                            };
                            return Ok(Step {
                                consumed: at,
                                event: Some(Event::End {
                                    app_status: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                                    protocol_status: e[4],
                                }),
                            });
                        }
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok(Step {
                            consumed: at,
                            event: None,
                        });
                    }
                    let n = self.left.min(rest.len());
                    self.left -= n;
                    let range = at..at + n;
                    at += n;
                    match self.kind {
                        STDOUT => {
                            return Ok(Step {
                                consumed: at,
                                event: Some(Event::Stdout(range)),
                            })
                        }
                        STDERR => {
                            return Ok(Step {
                                consumed: at,
                                event: Some(Event::Stderr(range)),
                            })
                        }
                        _ => {
                            self.end[self.end_have..self.end_have + n]
                                .copy_from_slice(&input[range]);
                            self.end_have += n;
                        }
                    }
                }
                State::Padding => {
                    let n = self.padding.min(rest.len());
                    self.padding -= n;
                    at += n;
                    if self.padding > 0 {
                        return Ok(Step {
                            consumed: at,
                            event: None,
                        });
                    }
                    self.state = if self.kind == END_REQUEST {
                        State::Done
                    } else {
                        State::Header
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a whole answer held: stdout, stderr, and the end's statuses.
    type Answer = (Vec<u8>, Vec<u8>, Option<(u32, u8)>);

    /// Decodes `input` fed in pieces of `step` bytes.
    fn run(input: &[u8], id: u16, step: usize) -> Result<Answer, FcgiError> {
        let mut dec = Decoder::new(id);
        let (mut out, mut err, mut end) = (Vec::new(), Vec::new(), None);
        let mut buf = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let s = dec.decode(&buf)?;
                match s.event {
                    Some(Event::Stdout(r)) => out.extend_from_slice(&buf[r]),
                    Some(Event::Stderr(r)) => err.extend_from_slice(&buf[r]),
                    Some(Event::End {
                        app_status,
                        protocol_status,
                    }) => end = Some((app_status, protocol_status)),
                    Some(Event::StdoutEnd) | None => {}
                }
                buf.drain(..s.consumed);
                if s.consumed == 0 || buf.is_empty() {
                    break;
                }
            }
        }
        Ok((out, err, end))
    }

    fn answer(id: u16) -> Vec<u8> {
        let mut v = Vec::new();
        records(
            STDOUT,
            id,
            b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n",
            &mut v,
        );
        records(STDERR, id, b"PHP Notice: x", &mut v);
        records(STDOUT, id, &vec![b'x'; 70_000], &mut v);
        records(STDOUT, id, b"", &mut v);
        header(END_REQUEST, id, 8, &mut v);
        v.extend_from_slice(&[0, 0, 1, 2, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn answers_are_read_at_every_split_point() {
        let input = answer(1);
        let mut want = b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n".to_vec();
        want.extend(std::iter::repeat_n(b'x', 70_000));
        for step in (1..=64).chain([999, 65_536, input.len()]) {
            let (out, err, end) = run(&input, 1, step).unwrap();
            assert_eq!(out, want, "step {step}");
            assert_eq!(err, b"PHP Notice: x");
            assert_eq!(end, Some((258, 0)));
        }
    }

    #[test]
    fn records_are_padded_and_split_as_nginx_writes_them() {
        let mut v = Vec::new();
        records(STDIN, 1, &vec![7u8; MAX_CONTENT + 3], &mut v);
        // Two records: 65535 bytes (+1 padding) and 3 bytes (+5 padding).
        assert_eq!(&v[..8], &[1, STDIN, 0, 1, 0xff, 0xff, 1, 0]);
        let second = 8 + MAX_CONTENT + 1;
        assert_eq!(&v[second..second + 8], &[1, STDIN, 0, 1, 0, 3, 5, 0]);
        assert_eq!(v.len(), second + 8 + 3 + 5);
        let mut e = Vec::new();
        records(PARAMS, 9, b"", &mut e);
        assert_eq!(e, [1, PARAMS, 0, 9, 0, 0, 0, 0]);
        let mut b = Vec::new();
        begin_request(1, true, &mut b);
        assert_eq!(
            b,
            [1, BEGIN_REQUEST, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn params_use_short_and_long_lengths() {
        let mut body = Vec::new();
        assert!(param(b"SCRIPT_FILENAME", b"/srv/index.php", &mut body));
        assert_eq!(&body[..2], &[15, 14]);
        let long = vec![b'v'; 300];
        let mut body = Vec::new();
        assert!(param(b"QUERY_STRING", &long, &mut body));
        assert_eq!(&body[..5], &[12, 0x80, 0, 1, 44]);
        assert_eq!(body.len(), 5 + 12 + 300);
    }

    #[test]
    fn bad_records_are_refused() {
        let mut v = answer(1);
        v[0] = 2;
        assert_eq!(run(&v, 1, 3), Err(FcgiError::Version(2)));
        assert_eq!(run(&answer(2), 1, 5), Err(FcgiError::RequestId(2)));
        let mut t = Vec::new();
        header(PARAMS, 1, 0, &mut t);
        assert_eq!(run(&t, 1, 1), Err(FcgiError::Type(PARAMS)));
        let mut e = Vec::new();
        header(END_REQUEST, 1, 4, &mut e);
        e.extend_from_slice(&[0; 4]);
        assert_eq!(run(&e, 1, 2), Err(FcgiError::EndLength(4)));
        let mut after = answer(1);
        records(STDOUT, 1, b"late", &mut after);
        assert_eq!(run(&after, 1, 7), Err(FcgiError::AfterEnd));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly valid headers: version 1, types 3/6/7, id 1.
                    match seed % 5 {
                        0 => 1,
                        1 => 6,
                        2 => 0,
                        _ => (seed >> 8) as u8,
                    }
                })
                .collect();
            for step in [1, 3, 64] {
                let _ = run(&bytes, 1, step);
            }
        }
    }
}
