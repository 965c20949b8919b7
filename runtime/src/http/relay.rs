//! Bodies through the proxy, sans-IO. The request's: [`RequestBody::decode`] finds the data
//! of a client's body (length or chunked) in what was read, and [`frame_streamed`] frames it
//! for the upstream. The response's: the bytes read from the
//! upstream are appended to the client's write buffer and [`BodyRelay::take`] then works on
//! them in place — it finds where the body ends (`Content-Length`, the last chunk, or the
//! connection's end), counts what was received, keeps the chunked trailer section, decodes
//! chunks for an HTTP/1.0 client, drops what follows the body, and cuts out all but the range
//! `proxy_force_ranges` sends. It never reads a socket or a clock, and never allocates
//! except to keep trailers; the proxy reports and logs what it says ([`Taken`]).
//!
//! Unit-tested below on byte slices, a body split at every point.

use super::chunked::ChunkedDecoder;

/// How the response's body ends.
#[derive(Debug)]
pub enum Framing {
    /// No (more) body: anything further is not the response's.
    None,
    /// This many bytes still to come.
    Length(u64),
    /// Chunked; `dechunk`: the chunks are decoded on the way (an HTTP/1.0 client).
    Chunked { dec: ChunkedDecoder, dechunk: bool },
    /// Until the upstream closes the connection.
    UntilClose,
}

/// The state of one response's body.
#[derive(Debug)]
pub struct BodyRelay {
    pub framing: Framing,
    /// Body bytes received as the upstream sent them (chunk framing included, as nginx counts
    /// them for `$upstream_response_length`).
    pub received: u64,
    /// `proxy_pass_trailers`: a chunked body's trailer section goes on as received
    /// (otherwise it ends with an empty one).
    pub pass_trailers: bool,
    /// `proxy_force_ranges`: the one range of the body sent (start, end exclusive), and how
    /// many body bytes went past so far.
    pub range: Option<(u64, u64)>,
    pub range_pos: u64,
}

impl Default for BodyRelay {
    fn default() -> Self {
        BodyRelay {
            framing: Framing::None,
            received: 0,
            pass_trailers: false,
            range: None,
            range_pos: 0,
        }
    }
}

/// What [`BodyRelay::take`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Bytes came after the body's end (dropped): the connection cannot be reused.
    pub excess: bool,
    /// More than the `Content-Length` (nginx warns about it).
    pub over_length: bool,
    /// The chunked framing is broken: the response is cut short here.
    pub invalid: bool,
    /// The body is complete.
    pub done: bool,
}

impl BodyRelay {
    /// A fresh relay with `framing`, nothing received yet.
    pub fn reset(&mut self, framing: Framing) {
        self.framing = framing;
        self.received = 0;
        self.pass_trailers = false;
        self.range = None;
        self.range_pos = 0;
    }

    /// Works on the bytes `buf[from..]` just read from the upstream, in place: afterwards
    /// `buf[from..]` holds what goes to the client. A chunked body's trailer section is
    /// appended to `trailers` as received.
    pub fn take(&mut self, buf: &mut Vec<u8>, from: usize, trailers: &mut Vec<u8>) -> Taken {
        let t = self.take_framed(buf, from, trailers);
        self.cut_range(buf, from);
        t
    }

    /// [`Self::take`] without cutting the range: `buf[from..]` then holds the body's bytes
    /// as they go on (decoded where the framing says so), for a copy of the whole (the
    /// cache) before [`Self::cut_range`].
    pub fn take_framed(&mut self, buf: &mut Vec<u8>, from: usize, trailers: &mut Vec<u8>) -> Taken {
        let mut t = Taken::default();
        let from = from.min(buf.len());
        let new = buf.len() - from;
        match &mut self.framing {
            Framing::None => {
                if new > 0 {
                    t.excess = true;
                }
                buf.truncate(from);
            }
            Framing::Length(left) => {
                if new as u64 > *left {
                    buf.truncate(from + *left as usize);
                    t.excess = true;
                    t.over_length = true;
                    *left = 0;
                } else {
                    *left -= new as u64;
                }
                self.received += (buf.len() - from) as u64;
                if *left == 0 {
                    self.framing = Framing::None;
                    t.done = true;
                }
            }
            Framing::Chunked { dec, dechunk } => {
                let mut at = from;
                let mut out_at = from;
                let end = buf.len();
                let mut done = false;
                while at < end && !done {
                    let was_in_trailer = dec.in_trailer();
                    match dec.decode(&buf[at..end]) {
                        Ok(step) => {
                            self.received += step.consumed as u64;
                            // The trailer section's bytes in this step (kept; passed on
                            // only with proxy_pass_trailers).
                            let split = if was_in_trailer {
                                0
                            } else {
                                dec.trailer_mark().unwrap_or(step.consumed)
                            };
                            if split < step.consumed {
                                trailers.extend_from_slice(&buf[at + split..at + step.consumed]);
                            }
                            if *dechunk {
                                let data = step.data.start + at..step.data.end + at;
                                let len = data.len();
                                buf.copy_within(data, out_at);
                                out_at += len;
                            } else if self.pass_trailers {
                                out_at = at + step.consumed;
                            } else {
                                // Everything before the trailer section, in place; the
                                // section itself becomes its bare final CRLF.
                                if out_at != at {
                                    buf.copy_within(at..at + split, out_at);
                                }
                                out_at += split;
                                if step.done {
                                    buf.truncate(out_at);
                                    buf.extend_from_slice(b"\r\n");
                                    out_at += 2;
                                    at += step.consumed;
                                    done = true;
                                    break;
                                }
                            }
                            at += step.consumed;
                            done = step.done;
                            if step.consumed == 0 {
                                break;
                            }
                        }
                        Err(_) => {
                            t.invalid = true;
                            break;
                        }
                    }
                }
                if done && at < end {
                    t.excess = true;
                }
                buf.truncate(out_at);
                if done {
                    self.framing = Framing::None;
                    t.done = true;
                }
            }
            Framing::UntilClose => self.received += new as u64,
        }
        t
    }

    /// `proxy_force_ranges` (and a cached response's range): of the body bytes
    /// `buf[from..]`, only those of the range go on.
    pub fn cut_range(&mut self, buf: &mut Vec<u8>, from: usize) {
        let from = from.min(buf.len());
        if let Some((start, end)) = self.range {
            let n = (buf.len() - from) as u64;
            let pos = self.range_pos;
            self.range_pos += n;
            let keep_from = start.saturating_sub(pos).min(n) as usize;
            let keep_to = end.saturating_sub(pos).min(n) as usize;
            if keep_to > keep_from {
                buf.copy_within(from + keep_from..from + keep_to, from);
                buf.truncate(from + keep_to - keep_from);
            } else {
                buf.truncate(from);
            }
        }
    }
}

/// What is still to be read of a client's request body on its way to an upstream.
#[derive(Debug)]
pub enum RequestBody {
    None,
    Length(u64),
    /// Decoded as it comes (read whole, or sent chunked to an HTTP/1.1 upstream, framed anew
    /// on the way: the client's chunk extensions and trailer section never go on).
    Chunked(ChunkedDecoder),
}

impl RequestBody {
    /// Decodes the body bytes at the start of `buf` (at most `buf.len()`, what may be taken
    /// now): the data's ranges go into `pieces` (ranges of `buf`). Returns how many bytes of
    /// `buf` were used and whether the body is complete (then `self` is `None`), or the
    /// framing error of a broken chunked body.
    pub fn decode(
        &mut self,
        buf: &[u8],
        pieces: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<(usize, bool), super::HttpError> {
        let (used, done) = match self {
            RequestBody::None => (0, false),
            RequestBody::Length(left) => {
                let take = (*left).min(buf.len() as u64) as usize;
                if take > 0 {
                    pieces.push(0..take);
                }
                *left -= take as u64;
                (take, *left == 0)
            }
            RequestBody::Chunked(dec) => {
                let mut at = 0;
                let mut done = false;
                while at < buf.len() && !done {
                    let step = dec.decode(&buf[at..])?;
                    if !step.data.is_empty() {
                        pieces.push(step.data.start + at..step.data.end + at);
                    }
                    at += step.consumed;
                    done = step.done;
                    if step.consumed == 0 {
                        break;
                    }
                }
                (at, done)
            }
        };
        if done {
            *self = RequestBody::None;
        }
        Ok((used, done))
    }
}

/// Frames the decoded `pieces` of `buf` for an upstream, streamed: as they are, or (`chunked`)
/// as one chunk — what one read brought goes as one chunk, however many the client cut it
/// into, as nginx — and the last chunk once the body is `done`.
pub fn frame_streamed(
    buf: &[u8],
    pieces: &[std::ops::Range<usize>],
    chunked: bool,
    done: bool,
    out: &mut Vec<u8>,
) {
    let total: usize = pieces.iter().map(|r| r.len()).sum();
    if chunked && total > 0 {
        super::chunked::write_chunk_size(out, total);
    }
    for r in pieces {
        out.extend_from_slice(&buf[r.clone()]);
    }
    if chunked && total > 0 {
        out.extend_from_slice(b"\r\n");
    }
    if done && chunked {
        out.extend_from_slice(super::chunked::LAST_CHUNK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `input` (a chunked request body, then the next request) through
    /// [`RequestBody::decode`] and [`frame_streamed`] in two reads split at `at`, as the
    /// proxy does (what a read used is drained from the client's buffer).
    fn stream(input: &[u8], at: usize, chunked_out: bool) -> (Vec<u8>, Vec<u8>) {
        let mut body = RequestBody::Chunked(ChunkedDecoder::default());
        let mut client = Vec::new();
        let mut out = Vec::new();
        let mut pieces = Vec::new();
        let mut finished = false;
        for piece in [&input[..at], &input[at..]] {
            client.extend_from_slice(piece);
            if finished {
                continue;
            }
            pieces.clear();
            let (used, done) = body.decode(&client, &mut pieces).expect("valid");
            frame_streamed(&client, &pieces, chunked_out, done, &mut out);
            client.drain(..used);
            finished = done;
        }
        (out, client)
    }

    #[test]
    fn request_bodies_are_reframed_at_every_split() {
        let input = b"3;a=b\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n";
        for at in 0..=input.len() {
            let (out, rest) = stream(input, at, false);
            assert_eq!(out, b"abcdefg".to_vec(), "split {at}");
            assert_eq!(rest, b"GET / HTTP/1.1\r\n".to_vec(), "split {at}");
            // Re-chunked: the data only, no extension, no trailer section.
            let (out, _) = stream(input, at, true);
            let mut dec = ChunkedDecoder::default();
            let mut data = Vec::new();
            let mut pos = 0;
            while pos < out.len() {
                let step = dec.decode(&out[pos..]).expect("our chunks");
                data.extend_from_slice(&out[pos..][step.data.clone()]);
                pos += step.consumed;
                if step.done {
                    break;
                }
            }
            assert_eq!(data, b"abcdefg".to_vec(), "split {at}");
            assert_eq!(pos, out.len(), "split {at}: nothing after the last chunk");
            assert!(!out.windows(3).any(|w| w == b"a=b"), "split {at}");
            assert!(!out.windows(3).any(|w| w == b"X-T"), "split {at}");
        }
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let mut body = RequestBody::Length(5);
        let mut pieces = Vec::new();
        assert_eq!(body.decode(b"abc", &mut pieces).ok(), Some((3, false)));
        assert_eq!(pieces, vec![std::ops::Range { start: 0, end: 3 }]);
        pieces.clear();
        assert_eq!(body.decode(b"deNEXT", &mut pieces).ok(), Some((2, true)));
        assert_eq!(pieces, vec![std::ops::Range { start: 0, end: 2 }]);
        assert!(matches!(body, RequestBody::None));
        let mut out = Vec::new();
        frame_streamed(
            b"0123456789abcdefXY",
            &[0..16, 16..18],
            true,
            true,
            &mut out,
        );
        assert_eq!(out, b"12\r\n0123456789abcdefXY\r\n0\r\n\r\n".to_vec());
    }

    #[test]
    fn a_broken_request_body_is_an_error() {
        let mut body = RequestBody::Chunked(ChunkedDecoder::default());
        let mut pieces = Vec::new();
        assert!(body.decode(b"zz\r\n", &mut pieces).is_err());
    }

    /// Runs `input` through a relay in two pieces split at `at` (after `prefix`, which stands
    /// for what the client buffer already held); returns (output, trailers, the takes).
    fn run(relay: &mut BodyRelay, input: &[u8], at: usize) -> (Vec<u8>, Vec<u8>, Vec<Taken>) {
        let prefix = b"HEAD".to_vec();
        let mut buf = prefix.clone();
        let mut trailers = Vec::new();
        let mut takes = Vec::new();
        for piece in [&input[..at], &input[at..]] {
            let from = buf.len();
            buf.extend_from_slice(piece);
            takes.push(relay.take(&mut buf, from, &mut trailers));
        }
        assert!(buf.starts_with(&prefix), "what was there before stays");
        (buf[prefix.len()..].to_vec(), trailers, takes)
    }

    fn chunked(dechunk: bool, pass_trailers: bool) -> BodyRelay {
        BodyRelay {
            framing: Framing::Chunked {
                dec: ChunkedDecoder::default(),
                dechunk,
            },
            pass_trailers,
            ..BodyRelay::default()
        }
    }

    const BODY: &[u8] = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";

    #[test]
    fn chunked_bodies_at_every_split() {
        for at in 0..=BODY.len() {
            // As received, the trailer section emptied; what follows the body dropped.
            let mut r = chunked(false, false);
            let (out, trailers, takes) = run(&mut r, BODY, at);
            assert_eq!(
                out,
                b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n".to_vec(),
                "split {at}"
            );
            assert_eq!(trailers, b"X-T: 1\r\n\r\n".to_vec(), "split {at}");
            assert!(takes.iter().any(|t| t.done) && takes.iter().any(|t| t.excess));
            assert_eq!(r.received, (BODY.len() - 4) as u64, "split {at}");
            // With proxy_pass_trailers: the section goes on.
            let mut r = chunked(false, true);
            let (out, _, _) = run(&mut r, BODY, at);
            assert_eq!(out, BODY[..BODY.len() - 4].to_vec(), "split {at}");
            // Decoded for an HTTP/1.0 client.
            let mut r = chunked(true, false);
            let (out, trailers, _) = run(&mut r, BODY, at);
            assert_eq!(out, b"hello, world".to_vec(), "split {at}");
            assert_eq!(trailers, b"X-T: 1\r\n\r\n".to_vec(), "split {at}");
        }
    }

    #[test]
    fn broken_chunks_are_reported() {
        let bad = b"5\r\nhello\r\nzz\r\n";
        for at in 0..=bad.len() {
            let mut r = chunked(false, false);
            let (_, _, takes) = run(&mut r, bad, at);
            assert!(takes.iter().any(|t| t.invalid), "split {at}");
            assert!(!takes.iter().any(|t| t.done), "split {at}");
        }
    }

    #[test]
    fn a_length_ends_the_body_and_more_is_dropped() {
        let input = b"0123456789EXTRA";
        for at in 0..=input.len() {
            let mut r = BodyRelay {
                framing: Framing::Length(10),
                ..BodyRelay::default()
            };
            let (out, _, takes) = run(&mut r, input, at);
            assert_eq!(out, b"0123456789".to_vec(), "split {at}");
            assert_eq!(r.received, 10);
            assert!(takes.iter().any(|t| t.done));
            // Bytes beyond the length are always reported; with the warning when they came
            // with the body's last bytes (split 10: the body was complete before them).
            assert!(takes.iter().any(|t| t.excess), "split {at}");
            assert_eq!(takes.iter().any(|t| t.over_length), at != 10, "split {at}");
            assert!(matches!(r.framing, Framing::None));
        }
    }

    #[test]
    fn until_close_counts_and_none_drops() {
        let mut r = BodyRelay {
            framing: Framing::UntilClose,
            ..BodyRelay::default()
        };
        let (out, _, takes) = run(&mut r, b"abcdef", 2);
        assert_eq!((out, r.received), (b"abcdef".to_vec(), 6));
        assert!(takes.iter().all(|t| *t == Taken::default()));
        let mut r = BodyRelay::default();
        let (out, _, takes) = run(&mut r, b"late", 1);
        assert!(out.is_empty() && takes.iter().all(|t| t.excess));
    }

    #[test]
    fn a_forced_range_keeps_its_bytes_only() {
        let input = b"0123456789";
        for at in 0..=input.len() {
            let mut r = BodyRelay {
                framing: Framing::Length(10),
                range: Some((3, 7)),
                ..BodyRelay::default()
            };
            let (out, _, _) = run(&mut r, input, at);
            assert_eq!(out, b"3456".to_vec(), "split {at}");
            assert_eq!(r.range_pos, 10);
        }
    }
}
