//! Chunked request bodies (RFC 9112 §7.1): [`ChunkedDecoder`] is an explicit state machine
//! fed whatever bytes have arrived; it hands back where the payload bytes are in its input,
//! never copies or allocates, and keeps no more than a few integers between calls.
//!
//! It is strict where lenient parsing has let requests be smuggled ("funky chunks"): every line
//! ends in CRLF (a bare LF or bare CR is an error — nginx accepts a bare LF, this does not);
//! a chunk size is 1 to 16 hex digits and at most 2^63-1; between the size and CRLF only
//! spaces/tabs before a `;` extension are allowed. Extensions and trailer fields are skipped,
//! bounded by [`MAX_EXTENSION_LEN`] per chunk and [`MAX_TRAILER_LEN`] in all.
//!
//! ```
//! use proton_runtime::http::chunked::ChunkedDecoder;
//! let mut dec = ChunkedDecoder::new();
//! let input = b"5\r\nhello\r\n0\r\n\r\nNEXT";
//! let mut at = 0;
//! let mut body = Vec::new();
//! loop {
//!     let step = dec.decode(&input[at..]).unwrap();
//!     body.extend_from_slice(&input[at..][step.data.clone()]);
//!     at += step.consumed;
//!     if step.done { break; }
//! }
//! assert_eq!(body, b"hello");
//! assert_eq!(&input[at..], b"NEXT");
//! ```

use std::ops::Range;

use super::HttpError;

/// Longest run of bytes allowed between a chunk size and its CRLF (whitespace and
/// `;name=value` extensions).
pub const MAX_EXTENSION_LEN: usize = 4096;

/// Longest trailer section (all trailer lines, with their CRLFs).
pub const MAX_TRAILER_LEN: usize = 8192;

/// Most hex digits in a chunk size (leading zeros included).
const MAX_SIZE_DIGITS: u8 = 16;

/// The largest chunk size and body accepted: nginx's off_t.
const MAX_SIZE: u64 = i64::MAX as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size,
    /// Whitespace after the size, before `;` or CR.
    SizeBws,
    /// Inside chunk extensions, up to CR.
    Extension,
    /// After the CR of the size line.
    SizeLf,
    /// Inside chunk data; `remaining` bytes left.
    Data,
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerLineStart,
    /// Inside a trailer line.
    Trailer,
    /// After the CR of a trailer line.
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
    /// A framing error was found; the connection must be closed.
    Failed(HttpError),
}

/// One step of decoding: how much of the input was used, and where the payload bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input that were used; pass the rest to the next call.
    pub consumed: usize,
    /// Payload bytes inside the input (empty if none); always within `..consumed`.
    pub data: Range<usize>,
    /// The last chunk and the trailers have been read; the next request starts at `consumed`.
    pub done: bool,
}

/// Decodes a chunked body incrementally. Call [`decode`](Self::decode) with the bytes that
/// have arrived; while the returned step is not `done` and did not consume everything, call
/// again with the rest; when it consumed everything, wait for more bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk size being read, then the data bytes left in the chunk.
    remaining: u64,
    digits: u8,
    ext_len: usize,
    trailer_len: usize,
    /// Payload bytes handed out so far.
    total: u64,
    /// Sum of the chunk sizes announced so far.
    declared: u64,
    limit: u64,
    /// The longest trailer section accepted ([`MAX_TRAILER_LEN`] unless set).
    max_trailer: usize,
    /// Where, in the input of the last `decode` call, the trailer section began (right
    /// after the last chunk's size line), if it began in that call.
    trailer_mark: Option<usize>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder with no body size limit (beyond 2^63-1).
    pub const fn new() -> ChunkedDecoder {
        ChunkedDecoder::with_limit(MAX_SIZE)
    }

    /// A decoder that fails with [`HttpError::BodyTooLarge`] (413) as soon as a chunk size
    /// would take the body past `limit` bytes (client_max_body_size; checked when the size
    /// line arrives, before the data, as nginx does).
    pub const fn with_limit(limit: u64) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            remaining: 0,
            digits: 0,
            ext_len: 0,
            trailer_len: 0,
            total: 0,
            declared: 0,
            limit,
            max_trailer: MAX_TRAILER_LEN,
            trailer_mark: None,
        }
    }

    /// The same decoder accepting a trailer section of up to `max` bytes (for a body this
    /// server wrote itself, whose trailers its own limits already bound).
    pub const fn with_trailer_limit(mut self, max: usize) -> ChunkedDecoder {
        self.max_trailer = max;
        self
    }

    /// Ready for the next body, keeping the limits.
    pub fn reset(&mut self) {
        *self = ChunkedDecoder::with_limit(self.limit).with_trailer_limit(self.max_trailer);
    }

    /// Payload bytes decoded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether the whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the last chunk was read and the trailer section (possibly empty: just its
    /// final CRLF) is being read.
    pub fn in_trailer(&self) -> bool {
        matches!(
            self.state,
            State::TrailerLineStart | State::Trailer | State::TrailerLf | State::EndLf
        )
    }

    /// Where the trailer section began in the input of the last [`decode`](Self::decode)
    /// call, if it began there (bytes from this offset to the step's `consumed` belong to
    /// it, its final CRLF included).
    pub fn trailer_mark(&self) -> Option<usize> {
        self.trailer_mark
    }

    /// Decodes from `input`: stops after the first run of payload bytes, at the end of the
    /// body, or at the end of the input, whichever comes first.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, HttpError> {
        let mut i = 0;
        self.trailer_mark = None;
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => {
                    return Ok(Step {
                        consumed: i,
                        data: i..i,
                        done: true,
                    })
                }
                State::Data => {
                    let available = input.len().saturating_sub(i);
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(available);
                    let start = i;
                    i += n;
                    self.remaining -= n as u64;
                    self.total += n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Step {
                        consumed: i,
                        data: start..i,
                        done: false,
                    });
                }
                _ => {}
            }
            let Some(&b) = input.get(i) else {
                return Ok(Step {
                    consumed: i,
                    data: i..i,
                    done: false,
                });
            };
            i += 1;
            let was = self.state;
            self.state = match self.step(b) {
                Ok(s) => s,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            };
            if was == State::SizeLf && self.state == State::TrailerLineStart {
                self.trailer_mark = Some(i);
            }
        }
    }

    /// The state after framing byte `b`.
    fn step(&mut self, b: u8) -> Result<State, HttpError> {
        Ok(match self.state {
            State::Size => {
                if let Some(v) = hex_value(b) {
                    if self.digits == MAX_SIZE_DIGITS {
                        return Err(HttpError::ChunkSizeOverflow);
                    }
                    self.digits += 1;
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|n| n.checked_add(u64::from(v)))
                        .filter(|&n| n <= MAX_SIZE)
                        .ok_or(HttpError::ChunkSizeOverflow)?;
                    State::Size
                } else if self.digits == 0 {
                    return Err(HttpError::InvalidChunkSize);
                } else {
                    match b {
                        b' ' | b'\t' => self.extension_byte(State::SizeBws)?,
                        b';' => self.extension_byte(State::Extension)?,
                        b'\r' => State::SizeLf,
                        _ => return Err(HttpError::InvalidChunkSize),
                    }
                }
            }
            State::SizeBws => match b {
                b' ' | b'\t' => self.extension_byte(State::SizeBws)?,
                b';' => self.extension_byte(State::Extension)?,
                b'\r' => State::SizeLf,
                _ => return Err(HttpError::InvalidChunkSize),
            },
            State::Extension => match b {
                b'\r' => State::SizeLf,
                b'\t' => self.extension_byte(State::Extension)?,
                _ if b < 0x20 || b == 0x7f => return Err(HttpError::InvalidChunkExtension),
                _ => self.extension_byte(State::Extension)?,
            },
            State::SizeLf => {
                if b != b'\n' {
                    return Err(HttpError::InvalidChunkSize);
                }
                self.end_size_line()?
            }
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(HttpError::InvalidChunkTerminator),
            },
            State::DataLf => match b {
                b'\n' => {
                    self.remaining = 0;
                    self.digits = 0;
                    self.ext_len = 0;
                    State::Size
                }
                _ => return Err(HttpError::InvalidChunkTerminator),
            },
            State::TrailerLineStart => match b {
                b'\r' => State::EndLf,
                _ => self.trailer_byte(b)?,
            },
            State::Trailer => self.trailer_byte(b)?,
            State::TrailerLf => match b {
                b'\n' => self.trailer_count(State::TrailerLineStart)?,
                _ => return Err(HttpError::InvalidTrailer),
            },
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err(HttpError::InvalidTrailer),
            },
            // Handled by `decode` before a byte is read.
            State::Data | State::Done | State::Failed(_) => self.state,
        })
    }

    fn extension_byte(&mut self, next: State) -> Result<State, HttpError> {
        self.ext_len += 1;
        if self.ext_len > MAX_EXTENSION_LEN {
            return Err(HttpError::InvalidChunkExtension);
        }
        Ok(next)
    }

    fn trailer_byte(&mut self, b: u8) -> Result<State, HttpError> {
        match b {
            b'\r' => self.trailer_count(State::TrailerLf),
            b'\n' | 0 => Err(HttpError::InvalidTrailer),
            _ => self.trailer_count(State::Trailer),
        }
    }

    fn trailer_count(&mut self, next: State) -> Result<State, HttpError> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailer {
            return Err(HttpError::InvalidTrailer);
        }
        Ok(next)
    }

    /// The size line is complete: the last chunk, or data follows.
    fn end_size_line(&mut self) -> Result<State, HttpError> {
        if self.remaining == 0 {
            return Ok(State::TrailerLineStart);
        }
        self.declared = self
            .declared
            .checked_add(self.remaining)
            .filter(|&n| n <= MAX_SIZE)
            .ok_or(HttpError::ChunkSizeOverflow)?;
        if self.declared > self.limit {
            return Err(HttpError::BodyTooLarge);
        }
        Ok(State::Data)
    }
}

/// The last chunk and the empty trailer section: how [`ChunkedDecoder::rechunk`] ends a body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends one chunk holding `data` (`hex-size CRLF data CRLF`) to `out`; nothing for an
/// empty `data` (a zero size would end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    write_chunk_size(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the size line of a chunk of `len` bytes (`len` in hex, CRLF); the caller adds
/// the data and its CRLF.
pub fn write_chunk_size(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = len as u64;
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[((n >> (4 * i)) & 15) as usize]);
    }
    out.extend_from_slice(b"\r\n");
}

/// What [`ChunkedDecoder::rechunk`] did with its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rechunked {
    /// Bytes of the input that were used.
    pub consumed: usize,
    /// The body is complete (its last chunk was appended); the next request starts at
    /// `consumed`.
    pub done: bool,
}

impl ChunkedDecoder {
    /// Decodes as much of `input` as possible and appends the payload to `out` framed
    /// anew: one chunk per run of payload bytes, then [`LAST_CHUNK`] once the body ends.
    /// The sender's chunk extensions and trailer section are validated and dropped, never
    /// copied (what nginx forwards: clean chunks, no trailers). On an error nothing of the
    /// failing run is appended; what was appended before stays valid framing.
    pub fn rechunk(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Rechunked, HttpError> {
        let mut at = 0;
        loop {
            let step = self.decode(input.get(at..).unwrap_or_default())?;
            let data = step.data.start + at..step.data.end + at;
            write_chunk(out, input.get(data).unwrap_or_default());
            at += step.consumed;
            if step.done {
                out.extend_from_slice(LAST_CHUNK);
                return Ok(Rechunked {
                    consumed: at,
                    done: true,
                });
            }
            if step.consumed == 0 || at >= input.len() {
                return Ok(Rechunked {
                    consumed: at,
                    done: false,
                });
            }
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces cut at `cuts`, as a connection would: after each piece, decode
    /// until everything buffered is consumed. Returns the payload and the bytes after the body.
    fn feed(
        dec: &mut ChunkedDecoder,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, usize), HttpError> {
        let mut body = Vec::new();
        let mut at = 0;
        let mut ends: Vec<usize> = cuts.to_vec();
        ends.push(input.len());
        for end in ends {
            loop {
                let avail = &input[at..end];
                let step = dec.decode(avail)?;
                assert!(step.data.end <= step.consumed && step.consumed <= avail.len());
                body.extend_from_slice(&avail[step.data.clone()]);
                at += step.consumed;
                if step.done {
                    return Ok((body, at));
                }
                if at == end {
                    break;
                }
            }
        }
        // Not done: the body continues beyond the input.
        Ok((body, usize::MAX))
    }

    /// The trailer section is found wherever the input is cut: bytes before the mark (or
    /// before the call, when already in the trailer) are the body's, the rest the trailer's.
    #[test]
    fn trailer_section_is_marked_at_every_split() {
        let input: &[u8] = b"3\r\nabc\r\n0;e=1\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
        let trailer_at = input.len() - b"X-A: 1\r\nX-B: 2\r\n\r\n".len();
        for cut in 0..=input.len() {
            let mut dec = ChunkedDecoder::new();
            let (mut at, mut body_bytes, mut trailer) = (0, 0, Vec::new());
            for end in [cut, input.len()] {
                while at < end {
                    let was_in_trailer = dec.in_trailer();
                    let step = dec.decode(&input[at..end]).expect("valid");
                    let split = if was_in_trailer {
                        0
                    } else {
                        dec.trailer_mark().unwrap_or(step.consumed)
                    };
                    body_bytes += split;
                    trailer.extend_from_slice(&input[at + split..at + step.consumed]);
                    at += step.consumed;
                    if step.done || step.consumed == 0 {
                        break;
                    }
                }
            }
            assert!(dec.is_done(), "cut {cut}");
            assert_eq!(body_bytes, trailer_at, "cut {cut}");
            assert_eq!(trailer, b"X-A: 1\r\nX-B: 2\r\n\r\n", "cut {cut}");
        }
    }

    #[test]
    fn decodes_in_one_piece() {
        let input = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nGET";
        let mut dec = ChunkedDecoder::new();
        let (body, end) = feed(&mut dec, input, &[]).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[end..], b"GET");
        assert_eq!(dec.total(), 11);
        assert!(dec.is_done());
        // Done is sticky and consumes nothing more.
        assert_eq!(
            dec.decode(b"GET").unwrap(),
            Step {
                consumed: 0,
                data: 0..0,
                done: true
            }
        );
    }

    #[test]
    fn every_split_gives_the_same_body() {
        let input = b"A\r\n0123456789\r\n1 ; a=\"b\"\r\nx\r\n00\r\nT: v\r\nU: w\r\n\r\n";
        for cut in 0..=input.len() {
            let mut dec = ChunkedDecoder::new();
            let (body, end) = feed(&mut dec, input, &[cut]).unwrap();
            assert_eq!(body, b"0123456789x", "cut at {cut}");
            assert_eq!(end, input.len());
        }
        let cuts: Vec<usize> = (1..input.len()).collect();
        let mut dec = ChunkedDecoder::new();
        let (body, _) = feed(&mut dec, input, &cuts).unwrap();
        assert_eq!(body, b"0123456789x");
    }

    #[test]
    fn rejects_bad_framing() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"\r\n", HttpError::InvalidChunkSize),
            (b"z\r\n", HttpError::InvalidChunkSize),
            (b" 5\r\n", HttpError::InvalidChunkSize),
            (b"0x5\r\n", HttpError::InvalidChunkSize),
            (b"-5\r\n", HttpError::InvalidChunkSize),
            (b"5 x\r\n", HttpError::InvalidChunkSize),
            (b"5\n", HttpError::InvalidChunkSize),
            (b"5\rx", HttpError::InvalidChunkSize),
            (b"00000000000000005\r\n", HttpError::ChunkSizeOverflow),
            (b"fffffffffffffffff\r\n", HttpError::ChunkSizeOverflow),
            (b"8000000000000000\r\n", HttpError::ChunkSizeOverflow),
            (b"5;a\x00\r\n", HttpError::InvalidChunkExtension),
            (b"5;a\nb\r\n", HttpError::InvalidChunkExtension),
            (b"5\r\nhelloXX", HttpError::InvalidChunkTerminator),
            (b"5\r\nhello\n0\r\n\r\n", HttpError::InvalidChunkTerminator),
            (b"5\r\nhello\r0\r\n\r\n", HttpError::InvalidChunkTerminator),
            (b"5\r\nhello\r\n\r\n", HttpError::InvalidChunkSize),
            (b"0\r\n\n", HttpError::InvalidTrailer),
            (b"0\r\nA: b\n\r\n", HttpError::InvalidTrailer),
            (b"0\r\nA: b\rc\r\n\r\n", HttpError::InvalidTrailer),
            (b"0\r\nA: \x00\r\n\r\n", HttpError::InvalidTrailer),
            (b"0\r\n\rx", HttpError::InvalidTrailer),
        ];
        for &(input, want) in cases {
            let mut dec = ChunkedDecoder::new();
            assert_eq!(
                feed(&mut dec, input, &[]).err(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            // The error is sticky.
            assert_eq!(dec.decode(b"0\r\n\r\n"), Err(want));
        }
    }

    #[test]
    fn sixteen_digit_sizes_and_bounded_extensions() {
        let mut dec = ChunkedDecoder::new();
        assert!(dec.decode(b"0000000000000001\r\n").is_ok());
        let mut long = b"1;".to_vec();
        long.resize(2 + MAX_EXTENSION_LEN, b'a');
        long.extend_from_slice(b"\r\n");
        let mut dec = ChunkedDecoder::new();
        assert_eq!(dec.decode(&long), Err(HttpError::InvalidChunkExtension));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILER_LEN + 16 {
            trailers.extend_from_slice(b"X-A: b\r\n");
        }
        let mut dec = ChunkedDecoder::new();
        assert_eq!(dec.decode(&trailers), Err(HttpError::InvalidTrailer));
    }

    #[test]
    fn limit_is_checked_when_the_size_arrives() {
        let mut dec = ChunkedDecoder::with_limit(10);
        let step = dec.decode(b"5\r\nhello\r\n").unwrap();
        assert_eq!(step.data, 3..8);
        let _ = dec.decode(b"\r\n").unwrap();
        assert_eq!(dec.decode(b"5\r\n").unwrap().consumed, 3);
        let mut dec = ChunkedDecoder::with_limit(10);
        let _ = dec.decode(b"5\r\nhello\r\n").unwrap();
        assert_eq!(dec.decode(b"\r\n6\r\n"), Err(HttpError::BodyTooLarge));
        let mut dec = ChunkedDecoder::with_limit(0);
        assert!(dec.decode(b"0\r\n\r\n").unwrap().done);
        dec.reset();
        assert_eq!(dec.decode(b"1\r\n"), Err(HttpError::BodyTooLarge));
    }

    /// Re-chunks `input` cut at `cut`, as the proxy does when it forwards a request body.
    fn rechunk_split(input: &[u8], cut: usize) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let first = dec.rechunk(&input[..cut], &mut out)?;
        if first.done {
            return Ok((out, first.consumed, true));
        }
        // The connection keeps unconsumed bytes and appends the next read to them.
        let rest = &input[first.consumed..];
        let second = dec.rechunk(rest, &mut out)?;
        Ok((out, first.consumed + second.consumed, second.done))
    }

    #[test]
    fn chunk_framing_is_written_in_lower_hex() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"");
        assert!(out.is_empty());
        write_chunk(&mut out, b"hello");
        write_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(&out[..10], b"5\r\nhello\r\n");
        assert_eq!(&out[10..14], b"1a\r\n");
        let mut big = Vec::new();
        write_chunk(&mut big, &vec![0u8; 0x10000]);
        assert!(big.starts_with(b"10000\r\n"));
    }

    /// Extensions and trailers never reach the output, whatever they hold, and every split
    /// of the input gives the same clean body.
    #[test]
    fn rechunk_drops_extensions_and_trailers() {
        let input: &[u8] = b"5;ext=\"a\"\r\nhello\r\n6 ; x\r\n world\r\n0;last=1\r\n\
X-Evil: \x01bell\r\nGET /smuggled HTTP/1.1\r\nFoo:  folded\r\n\r\nNEXT";
        let body_end = input.len() - 4;
        for cut in 0..=body_end {
            let (out, consumed, done) = rechunk_split(input, cut).unwrap();
            assert!(done, "cut at {cut}");
            assert_eq!(consumed, body_end, "cut at {cut}");
            // Cuts make more, smaller chunks; decoded, it is always the same payload.
            let mut dec = ChunkedDecoder::new();
            let (body, end) = feed(&mut dec, &out, &[]).unwrap();
            assert_eq!(
                body,
                b"hello world",
                "cut at {cut}: {:?}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(end, out.len());
            assert!(out.ends_with(b"\r\n0\r\n\r\n"), "cut at {cut}");
            for leak in [
                &b"ext"[..],
                b"last",
                b"Evil",
                b"smuggled",
                b"folded",
                b";",
                b"\x01",
            ] {
                assert!(
                    !out.windows(leak.len()).any(|w| w == leak),
                    "cut at {cut}: {leak:?} forwarded in {:?}",
                    String::from_utf8_lossy(&out)
                );
            }
        }
        let (out, _, _) = rechunk_split(input, body_end).unwrap();
        assert_eq!(out, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    }

    #[test]
    fn rechunk_waits_for_more_and_stops_at_errors() {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        // A size line cut short: consumed, nothing written yet.
        assert_eq!(
            dec.rechunk(b"1", &mut out),
            Ok(Rechunked {
                consumed: 1,
                done: false
            })
        );
        assert!(out.is_empty());
        let r = dec.rechunk(b"0\r\nabc", &mut out).unwrap();
        assert_eq!((r.consumed, r.done), (6, false));
        assert_eq!(out, b"3\r\nabc\r\n");
        // A bad chunk terminator: an error, and nothing more appended.
        let before = out.len();
        let e = dec.rechunk(b"defghijklmnopX\r\n", &mut out);
        assert_eq!(e, Err(HttpError::InvalidChunkTerminator));
        assert_eq!(out.len(), before + "d\r\ndefghijklmnop\r\n".len());
        // A control byte in a trailer line is refused like any bad framing.
        let mut dec = ChunkedDecoder::new();
        assert_eq!(
            dec.rechunk(b"0\r\nA: \x00\r\n\r\n", &mut Vec::new()),
            Err(HttpError::InvalidTrailer)
        );
    }

    #[test]
    fn large_chunk_streams_in_pieces() {
        let mut dec = ChunkedDecoder::new();
        let s = dec.decode(b"ffffffff\r\n").unwrap();
        assert_eq!(s.consumed, 10);
        let data = vec![b'x'; 4096];
        for _ in 0..10 {
            let s = dec.decode(&data).unwrap();
            assert_eq!(s.data, 0..4096);
        }
        assert_eq!(dec.total(), 40960);
    }
}
