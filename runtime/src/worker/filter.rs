//! The response body filters between a handler and the client, in nginx's order: `gunzip`
//! (a gzipped response for a client that does not take gzip), `sub_filter`, the charset
//! filter (see `static_files::charset_type`, applied where heads are made), a compression
//! (`gzip`, `brotli` or `zstd`: the client's q-values choose among those the location
//! enables), and the framing the changed body needs (chunked, or the close on HTTP/1.0).
//!
//! Each response is looked at once, at its head ([`Worker::plan`]: nginx's gzip, gunzip
//! and sub header filters and `ngx_http_gzip_ok`); the head is then edited as bytes
//! ([`edit_head`]): every handler writes an HTTP/1.1 head, so one editor serves static
//! files, in-memory answers, proxied responses and HTTP/2 streams (whose bridge reads the
//! same bytes). The body then goes through the request's [`BodyCoder`], a pipeline of
//! sans-IO stages owned by the request ([`RequestCtx::coder`]):
//! - in-memory answers are coded whole when the head is edited ([`Worker::filter_answer`]);
//! - files are read, coded and framed a piece at a time as the client takes them
//!   (`Conn::flush` refills its buffer: no sendfile while coding);
//! - proxied bodies are coded as they are taken from the upstream (`proxy::deliver`),
//!   before any spill to a temporary file, and framed by the proxy.

use super::conn::Conn;
use super::context::RequestCtx;
use super::request::Outcome;
use super::Worker;
use crate::http::coding::{
    Accepted, BrotliEncoder, Coding, CodingError, GunzipDecoder, GzipEncoder, ZstdEncoder,
};
use crate::http::subst::Substitution;
use proton_ir::{LocationId, Settings};
use std::io::Write;

/// A response's header fields by name (ASCII case-insensitive), borrowed from its head.
pub(crate) type Fields<'h> = dyn Fn(&[u8]) -> Option<&'h [u8]> + 'h;

/// `f` as [`Fields`] (so that a closure's result borrows from what it captured).
pub(crate) fn fields<'h>(
    f: impl Fn(&[u8]) -> Option<&'h [u8]> + 'h,
) -> impl Fn(&[u8]) -> Option<&'h [u8]> + 'h {
    f
}

/// What a response's body becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Compress it (`Content-Encoding: gzip`, `br` or `zstd` added).
    Encode(Coding),
    /// gunzip it (`Content-Encoding` removed).
    Decompress,
}

/// The codings a response may be compressed with, in the server's order of preference
/// (which breaks ties between equal q-values of the client).
pub(crate) const PREFERENCE: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

/// A coding's settings in `s`: whether it is on, its types, minimum length, level and
/// window (brotli's; 0 for the others).
pub(crate) fn knobs(s: &Settings, c: Coding) -> (bool, &[String], u64, u8, u8) {
    match c {
        Coding::Gzip => {
            let g = &s.gzip;
            (g.enable, &g.types, g.min_length, g.comp_level, 0)
        }
        Coding::Br | Coding::Zstd => {
            let k = if c == Coding::Br { &s.brotli } else { &s.zstd };
            (k.enable, &k.types, k.min_length, k.comp_level, k.window_log)
        }
    }
}

/// A coding's `*_static` mode and the suffix of its precompressed files.
pub(crate) fn static_of(s: &Settings, c: Coding) -> (proton_ir::GzipStatic, &'static [u8]) {
    match c {
        Coding::Gzip => (s.gzip.static_mode, b".gz"),
        Coding::Br => (s.brotli.static_mode, b".br"),
        Coding::Zstd => (s.zstd.static_mode, b".zst"),
    }
}

/// What the filters decided for one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) coding: Option<Dir>,
    /// A gzip module looked at the response (nginx's `r->gzip_vary`): with `gzip_vary on`
    /// the head gets `Vary: Accept-Encoding`.
    pub(crate) vary: bool,
}

/// The framing a head gets when its body changes length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// As it is (the proxy frames its own; a HEAD has no body).
    Keep,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No length: the connection closes after the body (`Connection: close`).
    Close,
}

/// The coding of a body.
enum Coder {
    Gzip(GzipEncoder),
    Br(BrotliEncoder),
    Zstd(ZstdEncoder),
    /// (Boxed: zlib's inflate state is the largest of the four.)
    Gunzip(Box<GunzipDecoder>),
}

/// What a response's body waits for from the worker: an SSI command to run, or a
/// subrequest (SSI's `include`, addition's) whose body goes out in its place (see
/// `worker::ssi`). While it waits, the body's input is held, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Wait {
    #[default]
    Nothing,
    /// An SSI command is parsed (in the SSI state's parser): the worker runs it.
    Command,
    /// A malformed SSI command was skipped: the worker logs it and writes `errmsg`.
    Broken,
    /// `add_before_body`'s subrequest is to run, before any of the body.
    Before,
    /// `add_after_body`'s subrequest is to run, after all of the body.
    After,
    /// `slice`: the next part of the whole is to be fetched (or none is left).
    Slice,
    /// A subrequest runs: the connection with this slab key and number; its body comes
    /// through [`BodyCoder::pass`].
    Sub(usize, u32),
}

/// A response body on its way through the filters, owned by its request: gunzip, then
/// sub_filter, then SSI, then a compression (each stage optional), then chunk framing.
/// addition's and SSI's subrequests put their bodies in between (nginx's postpone filter:
/// after SSI, before the compression). A spare goes back to the worker afterwards, so
/// deflate, zstd and substitution state is made once, not per response.
pub(crate) struct BodyCoder {
    coder: Option<Coder>,
    /// `sub_filter`: in use for this response when `sub_on`.
    sub: Substitution,
    pub(crate) sub_on: bool,
    /// `ssi on` for this response: the parser and the commands' state.
    pub(crate) ssi: Option<Box<super::ssi::SsiState>>,
    /// addition's subrequests not run yet.
    pub(crate) before: bool,
    pub(crate) after: bool,
    /// `slice`: the further parts of the whole are still to be fetched after the body.
    pub(crate) slice: bool,
    /// What the body waits for.
    pub(crate) wait: Wait,
    /// Input given while the body waits, not looked at yet.
    front: Vec<u8>,
    /// The end of the body was given while it waited (with the `last_chunk` asked for).
    end_wanted: Option<bool>,
    /// The end has gone through gunzip, sub_filter and SSI.
    front_ended: bool,
    /// SSI's output, between SSI and the compression.
    txt: Vec<u8>,
    /// This coder frames its output as chunks (the static and in-memory paths; the proxy
    /// frames its own).
    pub(crate) chunked: bool,
    /// The coder's end (trailer, last chunk) is written.
    pub(crate) ended: bool,
    /// The coding failed (a corrupt gzip stream): nothing more is given out.
    pub(crate) failed: bool,
    /// One step's output before framing, what passes between two stages, and a step's
    /// input taken out of the write buffer.
    out: Vec<u8>,
    mid: Vec<u8>,
    input: Vec<u8>,
}

/// Spare coders a worker keeps.
pub(crate) const SPARE_CODERS: usize = 8;

/// Larger step buffers are not kept with a spare coder.
const KEEP_STEP: usize = 256 * 1024;

/// The three compressions, as one coder stage sees them.
trait Encode {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError>;
    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError>;
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError>;
}

macro_rules! encode_via {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError> {
                <$t>::feed(self, input, out)
            }
            fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
                <$t>::flush(self, out)
            }
            fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
                <$t>::finish(self, out)
            }
        }
    )*};
}
encode_via!(GzipEncoder, BrotliEncoder, ZstdEncoder);

/// One step of a compression: `input`, then a flush or the end.
fn encode_step(
    e: &mut dyn Encode,
    input: &[u8],
    flush: bool,
    end: bool,
    out: &mut Vec<u8>,
) -> Result<(), CodingError> {
    e.feed(input, out)?;
    if end {
        e.finish(out)
    } else if flush {
        e.flush(out)
    } else {
        Ok(())
    }
}

impl BodyCoder {
    /// A coder for `dir` (`None`: no coding, sub_filter alone) at `level` (and brotli's
    /// `window_log`), from `spares` when one fits. `Err`: the encoder could not be made
    /// (zstd's context allocation).
    // (Boxed on purpose: a request holds its coder boxed, and what is spared is the box.)
    #[allow(clippy::vec_box)]
    pub(crate) fn take(
        spares: &mut Vec<Box<BodyCoder>>,
        dir: Option<Dir>,
        (level, window_log): (u8, u8),
        chunked: bool,
    ) -> Result<Box<BodyCoder>, CodingError> {
        let fits = |c: &BodyCoder| match (&c.coder, dir) {
            (Some(Coder::Gzip(e)), Some(Dir::Encode(Coding::Gzip))) => e.level() == level,
            (Some(Coder::Br(e)), Some(Dir::Encode(Coding::Br))) => {
                e.level() == level && e.window_log() == window_log
            }
            (Some(Coder::Zstd(e)), Some(Dir::Encode(Coding::Zstd))) => e.level() == level,
            (None, None) => true,
            _ => false,
        };
        let mut c = match spares.iter().position(|c| fits(c)) {
            Some(i) => spares.swap_remove(i),
            None => Box::new(BodyCoder {
                coder: match dir {
                    Some(Dir::Encode(Coding::Gzip)) => {
                        Some(Coder::Gzip(GzipEncoder::new(u32::from(level))))
                    }
                    Some(Dir::Encode(Coding::Br)) => {
                        Some(Coder::Br(BrotliEncoder::new(level, window_log)))
                    }
                    Some(Dir::Encode(Coding::Zstd)) => Some(Coder::Zstd(ZstdEncoder::new(level)?)),
                    Some(Dir::Decompress) => Some(Coder::Gunzip(Box::default())),
                    None => None,
                },
                sub: Substitution::default(),
                sub_on: false,
                ssi: None,
                before: false,
                after: false,
                slice: false,
                wait: Wait::Nothing,
                front: Vec::new(),
                end_wanted: None,
                front_ended: false,
                txt: Vec::new(),
                chunked,
                ended: false,
                failed: false,
                out: Vec::new(),
                mid: Vec::new(),
                input: Vec::new(),
            }),
        };
        c.chunked = chunked;
        Ok(c)
    }

    /// Turns sub_filter on for this response: its patterns are then added to what this
    /// returns.
    pub(crate) fn substitute(&mut self, once: bool) -> &mut Substitution {
        self.sub.reset(once);
        self.sub_on = true;
        &mut self.sub
    }

    /// Gives a finished coder back to `spares` (a gunzip decoder cannot be reset and is
    /// dropped).
    #[allow(clippy::vec_box)]
    pub(crate) fn give_back(mut self: Box<Self>, spares: &mut Vec<Box<BodyCoder>>) {
        if spares.len() >= SPARE_CODERS {
            return;
        }
        match &mut self.coder {
            Some(Coder::Gzip(e)) => e.reset(),
            Some(Coder::Br(e)) => e.reset(),
            Some(Coder::Zstd(e)) => e.reset(),
            Some(Coder::Gunzip(_)) => return,
            None => {}
        }
        self.ended = false;
        self.failed = false;
        self.sub_on = false;
        self.sub.reset(true);
        // (SSI state is per response: made again when SSI is on.)
        self.ssi = None;
        self.before = false;
        self.after = false;
        self.slice = false;
        self.wait = Wait::Nothing;
        self.end_wanted = None;
        self.front_ended = false;
        for b in [
            &mut self.out,
            &mut self.mid,
            &mut self.input,
            &mut self.front,
            &mut self.txt,
        ] {
            b.clear();
            if b.capacity() > KEEP_STEP {
                *b = Vec::new();
            }
        }
        spares.push(self);
    }

    /// Body bytes taken and given out so far by the coding stage (`$gzip_ratio`).
    pub(crate) fn totals(&self) -> (u64, u64) {
        match &self.coder {
            Some(Coder::Gzip(e)) => e.totals(),
            Some(Coder::Br(e)) => e.totals(),
            Some(Coder::Zstd(e)) => e.totals(),
            Some(Coder::Gunzip(d)) => d.totals(),
            None => (0, 0),
        }
    }

    /// The compression this coder makes, if any (`$gzip_ratio` and its siblings).
    pub(crate) fn compresses(&self) -> Option<Coding> {
        match self.coder {
            Some(Coder::Gzip(_)) => Some(Coding::Gzip),
            Some(Coder::Br(_)) => Some(Coding::Br),
            Some(Coder::Zstd(_)) => Some(Coding::Zstd),
            _ => None,
        }
    }

    /// What a failure of this coder is called in the error log.
    pub(crate) fn what(&self) -> &'static str {
        if matches!(self.coder, Some(Coder::Gunzip(_))) {
            "inflate()"
        } else {
            "deflate()"
        }
    }

    /// Whether the body waits for the worker (input is then held, not coded).
    pub(crate) fn paused(&self) -> bool {
        self.wait != Wait::Nothing
    }

    /// Whether more input is welcome now: nothing is waited for (a producer that can wait,
    /// a file or an upstream, holds off meanwhile; what is given anyway is kept).
    pub(crate) fn accepting(&self) -> bool {
        !self.paused() && self.front.is_empty()
    }

    /// Whether the coder holds input it did not code yet while nothing is waited for:
    /// gunzip stopped at its output bound
    /// ([`crate::http::coding::GUNZIP_OUT`]). Once the output made so far is
    /// sent, [`BodyCoder::resume`] codes more of it.
    pub(crate) fn holds_input(&self) -> bool {
        !self.paused() && !self.front.is_empty() && !self.ended && !self.failed
    }

    /// Whether SSI or addition run on this body (their subrequests' bodies are put into
    /// it by the worker).
    pub(crate) fn has_includes(&self) -> bool {
        self.ssi.is_some() || self.before || self.after || self.slice || self.wait != Wait::Nothing
    }

    /// Codes `input` (`flush`: everything so far made decodable now) and appends the
    /// result to `out`, as one chunk when this coder frames.
    pub(crate) fn code(
        &mut self,
        input: &[u8],
        flush: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodingError> {
        if self.ended || self.failed {
            return Ok(());
        }
        if self.before {
            self.before = false;
            self.wait = Wait::Before;
        }
        if self.paused() || !self.front.is_empty() {
            self.front.extend_from_slice(input);
            return Ok(());
        }
        self.out.clear();
        let r = self.run(input, flush);
        self.emit(out);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// The end of the body: what the stages still hold, and the last chunk when this
    /// coder frames and `last_chunk` (trailers may follow it otherwise). While the body
    /// waits, the end is noted and made once the wait is over ([`BodyCoder::resume`]).
    pub(crate) fn end(&mut self, last_chunk: bool, out: &mut Vec<u8>) -> Result<(), CodingError> {
        if self.ended || self.failed {
            return Ok(());
        }
        if self.before {
            self.before = false;
            self.wait = Wait::Before;
        }
        self.end_wanted = Some(last_chunk);
        if self.paused() || !self.front.is_empty() {
            return Ok(());
        }
        self.out.clear();
        let r = self.finish_body();
        self.emit(out);
        if self.ended && self.chunked && last_chunk {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// The body may go on after a wait (the worker ran the command or the subrequest
    /// ended): what was held is coded into `out` until the next wait, and the end if it
    /// was given.
    pub(crate) fn resume(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        self.wait = Wait::Nothing;
        if self.ended || self.failed {
            return Ok(());
        }
        self.out.clear();
        let mut r = Ok(());
        loop {
            if self.paused() || r.is_err() {
                break;
            }
            if let Some(ssi) = self.ssi.as_deref_mut() {
                if ssi.has_held() {
                    let mut txt = std::mem::take(&mut self.txt);
                    txt.clear();
                    ssi.feed_held(&mut txt, &mut self.wait);
                    r = self.encode(&txt, false);
                    self.txt = txt;
                    continue;
                }
            }
            if !self.front.is_empty() {
                let mut front = std::mem::take(&mut self.front);
                r = self.run(&front, false);
                front.clear();
                if self.front.is_empty() {
                    self.front = front;
                    continue;
                }
                // gunzip stopped at its output bound: the rest after this output is sent
                // (the worker resumes the coder then: see `holds_input`).
                break;
            }
            if self.end_wanted.is_some() {
                r = self.finish_body();
            }
            break;
        }
        self.emit(out);
        if self.ended && self.chunked && self.end_wanted == Some(true) {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// A subrequest's body (or an SSI command's output) goes out in the body's place:
    /// compressed and framed as the body is.
    pub(crate) fn pass(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError> {
        if self.ended || self.failed || bytes.is_empty() {
            return Ok(());
        }
        self.out.clear();
        let r = self.encode(bytes, false);
        self.emit(out);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// The end, through each stage in turn; stops if SSI or addition have the body wait
    /// (then [`BodyCoder::resume`] comes back here).
    fn finish_body(&mut self) -> Result<(), CodingError> {
        if !self.front_ended {
            self.front_ended = true;
            self.front_stages(&[], true)?;
            let mid = std::mem::take(&mut self.mid);
            let r = self.ssi_stage(&mid, false);
            self.mid = mid;
            r?;
            if self.paused() {
                return Ok(());
            }
        }
        if let Some(ssi) = self.ssi.as_deref_mut() {
            // A command start the body ended in is text.
            let mut txt = std::mem::take(&mut self.txt);
            txt.clear();
            ssi.end_text(&mut txt);
            let r = self.encode(&txt, false);
            self.txt = txt;
            r?;
        }
        if self.slice {
            // (The worker clears `slice` once no part is left.)
            self.wait = Wait::Slice;
            return Ok(());
        }
        if self.after {
            self.after = false;
            self.wait = Wait::After;
            return Ok(());
        }
        self.ended = true;
        self.encode(&[], true)
    }

    /// `input` through gunzip and sub_filter into `self.mid` (`end`: and what they hold).
    fn front_stages(&mut self, input: &[u8], end: bool) -> Result<(), CodingError> {
        let BodyCoder {
            coder,
            sub,
            sub_on,
            mid,
            ..
        } = self;
        mid.clear();
        let mut r = Ok(());
        if let Some(Coder::Gunzip(d)) = coder {
            let mut taken = input.len();
            if *sub_on {
                let mut unz = std::mem::take(&mut self.input);
                unz.clear();
                r = d.feed(input, &mut unz).and_then(|n| {
                    taken = n;
                    if end {
                        d.finish(&mut unz)
                    } else {
                        Ok(())
                    }
                });
                sub.feed(&unz, mid);
                self.input = unz;
            } else {
                r = d.feed(input, mid).and_then(|n| {
                    taken = n;
                    if end {
                        d.finish(mid)
                    } else {
                        Ok(())
                    }
                });
            }
            // What gunzip did not take (its output bound) waits for the output to go out.
            self.front
                .extend_from_slice(&input[taken.min(input.len())..]);
        } else if *sub_on {
            sub.feed(input, mid);
        } else {
            mid.extend_from_slice(input);
        }
        if end && self.sub_on {
            self.sub.finish(&mut self.mid);
        }
        r
    }

    /// `data` (what gunzip and sub_filter made) through SSI, when on, then the
    /// compression, into `self.out`.
    fn ssi_stage(&mut self, data: &[u8], flush: bool) -> Result<(), CodingError> {
        let Some(ssi) = self.ssi.as_deref_mut() else {
            return self.encode(data, flush);
        };
        let mut txt = std::mem::take(&mut self.txt);
        txt.clear();
        ssi.feed(data, &mut txt, &mut self.wait);
        let r = self.encode(&txt, flush);
        self.txt = txt;
        r
    }

    /// `input` through every stage into `self.out`.
    fn run(&mut self, input: &[u8], flush: bool) -> Result<(), CodingError> {
        // (gunzip alone decodes straight into the output.)
        if let (Some(Coder::Gunzip(d)), false, true) =
            (&mut self.coder, self.sub_on, self.ssi.is_none())
        {
            let taken = d.feed(input, &mut self.out)?;
            // What gunzip did not take (its output bound) waits for the output to go out.
            self.front
                .extend_from_slice(&input[taken.min(input.len())..]);
            return Ok(());
        }
        // (Without gunzip, sub_filter and SSI the input goes straight to the compression.)
        let plain = !matches!(self.coder, Some(Coder::Gunzip(_))) && !self.sub_on;
        if plain && self.ssi.is_none() {
            return self.encode(input, flush);
        }
        if plain {
            return self.ssi_stage(input, flush);
        }
        let r = self.front_stages(input, false);
        let mid = std::mem::take(&mut self.mid);
        let r2 = self.ssi_stage(&mid, flush);
        self.mid = mid;
        r.and(r2)
    }

    /// The compression stage: `data` into `self.out` (`end`: the coding's end).
    fn encode(&mut self, data: &[u8], flush: bool) -> Result<(), CodingError> {
        let end = self.ended;
        let out = &mut self.out;
        match &mut self.coder {
            Some(Coder::Gzip(e)) => encode_step(e, data, flush, end, out),
            Some(Coder::Br(e)) => encode_step(e, data, flush, end, out),
            Some(Coder::Zstd(e)) => encode_step(e, data, flush, end, out),
            Some(Coder::Gunzip(_)) | None => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Codes the bytes `buf[from..]` in place (taken out, coded, put back); `end`: they
    /// are the last of the body.
    pub(crate) fn code_tail(
        &mut self,
        buf: &mut Vec<u8>,
        from: usize,
        flush: bool,
        end: bool,
    ) -> Result<(), CodingError> {
        let from = from.min(buf.len());
        let mut input = std::mem::take(&mut self.input);
        input.clear();
        input.extend_from_slice(&buf[from..]);
        buf.truncate(from);
        let mut r = self.code(&input, flush && !end, buf);
        if end && r.is_ok() {
            r = self.end(true, buf);
        }
        self.input = input;
        r
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        if self.out.is_empty() {
            return;
        }
        if self.chunked {
            crate::http::chunked::write_chunk_size(out, self.out.len());
            out.extend_from_slice(&self.out);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&self.out);
        }
    }
}

/// The lines of a response head after its status line (each without its CRLF), up to the
/// blank line.
fn head_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&head[head.len()..], |i| &head[i + 1..]);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

/// The value of the first header `name` (ASCII case-insensitive) of a response head.
pub(crate) fn head_field<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head_lines(head).find_map(|l| field_value(l, name))
}

fn field_value<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    let (n, v) = line.split_at(line.iter().position(|&b| b == b':')?);
    n.eq_ignore_ascii_case(name).then(|| v[1..].trim_ascii())
}

/// How a response head changes (see [`edit_head`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit {
    /// `Content-Encoding` added (a compression) or removed (gunzip).
    pub(crate) coding: Option<Dir>,
    /// `Vary: Accept-Encoding` added.
    pub(crate) vary: bool,
    pub(crate) framing: Framing,
    /// The body changes: no `Content-Length` or `Accept-Ranges`, a weak `ETag`.
    pub(crate) body_changes: bool,
    /// `Last-Modified` and `ETag` go (sub_filter without `sub_filter_last_modified`).
    pub(crate) drop_validators: bool,
}

/// Edits a response head (status line to blank line) as `e` says: `Content-Encoding`
/// added or removed, `Content-Length` and `Accept-Ranges` dropped for a changed body, a
/// strong `ETag` made weak (nginx's `ngx_http_weak_etag`: one not in quotes goes) or the
/// validators dropped, `Vary: Accept-Encoding`, and the framing. Written to `out` (cleared
/// first).
pub(crate) fn edit_head(head: &[u8], e: &Edit, out: &mut Vec<u8>) {
    out.clear();
    let first = head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(head.len(), |i| i + 1);
    out.extend_from_slice(&head[..first]);
    for line in head_lines(head) {
        let is = |name: &[u8]| {
            line.len() > name.len()
                && line[name.len()] == b':'
                && line[..name.len()].eq_ignore_ascii_case(name)
        };
        if e.drop_validators && (is(b"last-modified") || is(b"etag")) {
            continue;
        }
        if e.body_changes {
            if is(b"content-length") || is(b"accept-ranges") {
                continue;
            }
            if is(b"etag") {
                let v = field_value(line, b"etag").unwrap_or_default();
                if v.starts_with(b"W/") {
                    out.extend_from_slice(line);
                } else if v.starts_with(b"\"") {
                    out.extend_from_slice(b"ETag: W/");
                    out.extend_from_slice(v);
                } else {
                    continue;
                }
                out.extend_from_slice(b"\r\n");
                continue;
            }
        }
        if e.coding == Some(Dir::Decompress) && is(b"content-encoding") {
            continue;
        }
        if e.framing == Framing::Close {
            if is(b"keep-alive") {
                continue;
            }
            if is(b"connection") {
                out.extend_from_slice(b"Connection: close\r\n");
                continue;
            }
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(Dir::Encode(c)) = e.coding {
        out.extend_from_slice(b"Content-Encoding: ");
        out.extend_from_slice(c.token());
        out.extend_from_slice(b"\r\n");
    }
    if e.vary {
        out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    if e.framing == Framing::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether the location's `sub_filter` applies to a response with these header fields
/// (nginx's sub header filter: patterns, a body that is not known to be empty, a listed
/// type; any status).
pub(crate) fn substitutes(s: &Settings, resp: &Fields<'_>) -> bool {
    let sf = &s.sub_filter;
    !sf.pairs.is_empty()
        && resp(b"content-length") != Some(b"0")
        && type_listed(&sf.types, resp(b"content-type"))
}

/// What SSI and addition make of a response (nginx's ssi and addition header filters):
/// SSI for a body not known to be empty of a listed type; addition for a main request's
/// 200 of a listed type with a URI to add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Includes {
    pub(crate) ssi: bool,
    pub(crate) before: bool,
    pub(crate) after: bool,
    /// `slice`: the rest of the whole comes in subrequests after the body (the body's
    /// length does not change for that).
    pub(crate) slice: bool,
}

impl Includes {
    pub(crate) fn of(s: &Settings, req: &RequestCtx, status: u16, resp: &Fields<'_>) -> Includes {
        let ct = resp(b"content-type");
        let ssi =
            s.ssi.enable && resp(b"content-length") != Some(b"0") && type_listed(&s.ssi.types, ct);
        let a = &s.addition;
        let add = !req.subrequest
            && status == 200
            && !(a.before.is_empty() && a.after.is_empty())
            && type_listed(&a.types, ct);
        Includes {
            ssi,
            before: add && !a.before.is_empty(),
            after: add && !a.after.is_empty(),
            slice: false,
        }
    }

    /// Whether SSI or addition change the body (slices do not).
    pub(crate) fn any(self) -> bool {
        self.ssi || self.before || self.after
    }
}

/// Whether a `Content-Type` value is among `types` (lowercase, sorted; `["*"]`: any, even
/// none), as nginx's `ngx_http_test_content_type`: the type without its parameters.
pub(crate) fn type_listed(types: &[String], ct: Option<&[u8]>) -> bool {
    if types.first().is_some_and(|t| t == "*") {
        return true;
    }
    let Some(ct) = ct else {
        return false;
    };
    let base = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
    types
        .binary_search_by(|t| t.bytes().cmp(base.iter().map(u8::to_ascii_lowercase)))
        .is_ok()
}

/// True when a `Cache-Control` value names `directive` (a whole token, any case).
fn cache_control_has(v: &[u8], directive: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|item| {
        let t = item.trim_ascii();
        let t = t.split(|&b| b == b'=').next().unwrap_or(t).trim_ascii();
        t.eq_ignore_ascii_case(directive)
    })
}

impl Worker<'_> {
    /// nginx's `ngx_http_gzip_ok`: whether the client of `req` may get gzip, given the
    /// response's header fields (`resp`, for `gzip_proxied`).
    pub(crate) fn gzip_ok(
        &self,
        conn: &Conn,
        req: &mut RequestCtx,
        s: &Settings,
        resp: &Fields<'_>,
    ) -> bool {
        self.best_coding(conn, req, s, resp, &[Coding::Gzip])
            .is_some()
    }

    /// The coding among `offered` (in the server's order of preference) the client of
    /// `req` takes best, if it may get a compressed response at all (nginx's
    /// `ngx_http_gzip_ok`, applied to every coding).
    pub(crate) fn best_coding(
        &self,
        conn: &Conn,
        req: &mut RequestCtx,
        s: &Settings,
        resp: &Fields<'_>,
        offered: &[Coding],
    ) -> Option<Coding> {
        let ae = super::vars::header(&req.head, &conn.rbuf, b"accept-encoding")?;
        // nginx's quick test of the most common value first.
        let best = if offered == [Coding::Gzip] && ae.starts_with(b"gzip,") {
            Some(Coding::Gzip)
        } else {
            Accepted::parse(ae).best(offered)
        };
        best.filter(|_| self.client_ok(conn, req, s, resp))
    }

    /// The rest of `ngx_http_gzip_ok` (subrequests, `gzip_disable`, `gzip_http_version`,
    /// `gzip_proxied`), decided once per request as nginx (`r->gzip_tested`).
    fn client_ok(
        &self,
        conn: &Conn,
        req: &mut RequestCtx,
        s: &Settings,
        resp: &Fields<'_>,
    ) -> bool {
        if let Some(ok) = req.gzip_tested {
            return ok;
        }
        let ok = self.client_ok_now(conn, req, s, resp);
        req.gzip_tested = Some(ok);
        ok
    }

    fn client_ok_now(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        s: &Settings,
        resp: &Fields<'_>,
    ) -> bool {
        let g = &s.gzip;
        if req.mirror_sub || req.post_action || req.subrequest {
            return false;
        }
        let header = |name: &[u8]| super::vars::header(&req.head, &conn.rbuf, name);
        let ua = header(b"user-agent");
        if g.disable_msie6 && ua.is_some_and(|ua| crate::http::response::Browser::of(ua).msie6) {
            return false;
        }
        if req.head.minor_version < g.http_version_minor {
            return false;
        }
        if header(b"via").is_some() && !self.proxied_ok(g, header(b"authorization"), resp) {
            return false;
        }
        if let Some(ua) = ua {
            if g.disable.iter().any(|&id| self.loaded.is_match(id, ua)) {
                return false;
            }
        }
        true
    }

    /// `gzip_proxied` for a request that came through a proxy (`Via`).
    fn proxied_ok(
        &self,
        g: &proton_ir::Gzip,
        authorization: Option<&[u8]>,
        resp: &Fields<'_>,
    ) -> bool {
        let p = &g.proxied;
        if p.off {
            return false;
        }
        if p.any || (authorization.is_some() && p.auth) {
            return true;
        }
        let date = |v: &[u8]| {
            crate::http::response::parse_http_date(v)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        if let Some(e) = resp(b"expires") {
            if !p.expired {
                return false;
            }
            let Some(expires) = date(e) else {
                return false;
            };
            let now = match resp(b"date") {
                Some(d) => match date(d) {
                    Some(d) => d,
                    None => return false,
                },
                None => u64::try_from(self.date.unix_secs()).unwrap_or(0),
            };
            return expires < now;
        }
        if let Some(cc) = resp(b"cache-control") {
            return (p.no_cache && cache_control_has(cc, b"no-cache"))
                || (p.no_store && cache_control_has(cc, b"no-store"))
                || (p.private && cache_control_has(cc, b"private"));
        }
        if p.no_last_modified && resp(b"last-modified").is_some() {
            return false;
        }
        if p.no_etag && resp(b"etag").is_some() {
            return false;
        }
        true
    }

    /// What the gunzip and gzip filters make of a response of `status` whose header fields
    /// `resp` gives (`header_only`: nginx's `r->header_only` at that point — a 304 or 204,
    /// not a HEAD, which gets the gzip head as nginx sends it).
    pub(crate) fn plan(
        &self,
        conn: &Conn,
        req: &mut RequestCtx,
        s: &Settings,
        status: u16,
        header_only: bool,
        resp: &Fields<'_>,
    ) -> Plan {
        let g = &s.gzip;
        let mut plan = Plan::default();
        let encoding = resp(b"content-encoding").filter(|v| !v.is_empty());
        if g.gunzip && encoding.is_some_and(|v| v.eq_ignore_ascii_case(b"gzip")) {
            plan.vary = true;
            if !self.gzip_ok(conn, req, s, resp) {
                plan.coding = Some(Dir::Decompress);
            }
            return plan;
        }
        if !matches!(status, 200 | 403 | 404) || encoding.is_some() || header_only {
            return plan;
        }
        let length = resp(b"content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
        let content_type = resp(b"content-type");
        // The codings whose own settings take this response (each module's header filter).
        let mut offered = [Coding::Gzip; 3];
        let mut n = 0;
        for c in PREFERENCE {
            let (on, types, min_length, _, _) = knobs(s, c);
            if on && length.is_none_or(|len| len >= min_length) && type_listed(types, content_type)
            {
                offered[n] = c;
                n += 1;
            }
        }
        if n == 0 {
            return plan;
        }
        plan.vary = true;
        plan.coding = self
            .best_coding(conn, req, s, resp, &offered[..n])
            .map(Dir::Encode);
        plan
    }

    /// Whether the body of a response of this kind from location `s` would be changed by
    /// a compression or sub_filter (asked by the static handler before it decides on
    /// ranges: nginx's filters turn ranges off for a body whose length they change).
    pub(crate) fn will_change_body(
        &self,
        conn: &Conn,
        req: &mut RequestCtx,
        s: &Settings,
        status: u16,
        content_type: &[u8],
        length: u64,
    ) -> bool {
        if !(s.gzip.enable || s.brotli.enable || s.zstd.enable || !s.sub_filter.pairs.is_empty()) {
            return false;
        }
        let mut digits = [0u8; 20];
        let n = {
            let mut c = std::io::Cursor::new(&mut digits[..]);
            let _ = write!(c, "{length}");
            c.position() as usize
        };
        let len = &digits[..n];
        let resp = fields(|name: &[u8]| match name {
            b"content-type" => Some(content_type),
            b"content-length" => Some(len),
            _ => None,
        });
        substitutes(s, &resp)
            || matches!(
                self.plan(conn, req, s, status, false, &resp).coding,
                Some(Dir::Encode(_))
            )
    }

    /// The filters on an answer Proton made itself (a file, a `return`, an error page, a
    /// listing): its head in `conn.wbuf[..out.header_bytes]`, then the body in memory or
    /// in `conn.file`. Edits the head, codes the body in memory, and leaves a file to be
    /// coded as it is sent.
    pub(crate) fn filter_answer(&mut self, conn: &mut Conn, out: &mut Outcome) {
        let Some(loc) = out.location.map(LocationId) else {
            return;
        };
        let Some(mut req) = conn.req.take() else {
            return;
        };
        self.filter_answer_of(conn, &mut req, loc, out);
        conn.req = Some(req);
    }

    fn filter_answer_of(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        loc: LocationId,
        out: &mut Outcome,
    ) {
        let loaded = self.loaded;
        let ir = &loaded.ir;
        let Some(s) = ir
            .locations
            .get(loc.0 as usize)
            .and_then(|l| ir.settings.get(l.conf.settings.0 as usize))
        else {
            return;
        };
        let g = &s.gzip;
        let any = g.enable
            || g.gunzip
            || s.brotli.enable
            || s.zstd.enable
            || !s.sub_filter.pairs.is_empty()
            || s.ssi.enable
            || !s.addition.before.is_empty()
            || !s.addition.after.is_empty();
        if !(any || (req.gzip_vary && g.vary)) || req.coder.is_some() {
            return;
        }
        let hb = out.header_bytes;
        if conn.wbuf.len() < hb || !conn.wbuf[..hb].ends_with(b"\r\n\r\n") {
            return;
        }
        // (Trailers frame the body themselves: such a response is not coded.)
        if super::request::trailers_apply(s, out.status) {
            return;
        }
        let status = out.status;
        let head = std::mem::take(&mut conn.wbuf);
        let (plan, sub, inc) = {
            let resp = fields(|name: &[u8]| head_field(&head[..hb], name));
            let header_only = matches!(status, 204 | 304);
            let plan = self.plan(conn, req, s, status, header_only, &resp);
            (
                plan,
                substitutes(s, &resp),
                Includes::of(s, req, status, &resp),
            )
        };
        let vary = (plan.vary || req.gzip_vary) && g.vary;
        // (An empty body still becomes a gzip stream, framed: nginx's too.)
        let has_body = !req.head.is_head() && !matches!(status, 204 | 304);
        let coder = if has_body && (plan.coding.is_some() || sub || inc.any()) {
            // (A subrequest's body goes to its parent unframed: nginx's chunked filter
            // skips subrequests.)
            let chunked =
                req.head.minor_version >= 1 && s.chunked_transfer_encoding && !req.subrequest;
            match self.start_coder(conn, req, s, plan.coding, (sub, inc), chunked) {
                Ok(c) => c,
                Err(e) => {
                    // (Nothing is sent yet: the answer goes out as it is.)
                    crate::elog!(
                        self.elog,
                        Alert,
                        "compression failed to start ({}), client: {}",
                        e.0,
                        conn.peer.ip()
                    );
                    conn.wbuf = head;
                    return;
                }
            }
        } else {
            None
        };
        // sub_filter changes the head even without a body (nginx's header filter).
        let sub = sub && (coder.as_ref().is_some_and(|c| c.sub_on) || !has_body);
        let edit = Edit {
            coding: plan.coding,
            vary,
            framing: match &coder {
                None => Framing::Keep,
                Some(c) if c.chunked => Framing::Chunked,
                Some(_) => Framing::Close,
            },
            body_changes: plan.coding.is_some() || sub || inc.any(),
            drop_validators: (sub && !s.sub_filter.last_modified)
                || (inc.ssi && !s.ssi.last_modified),
        };
        if !edit.body_changes && !vary {
            conn.wbuf = head;
            return;
        }
        let mut edited = self.pool.get();
        edit_head(&head[..hb], &edit, &mut edited);
        out.header_bytes = edited.len();
        if edit.framing == Framing::Close {
            out.close = true;
            conn.close_after = true;
        }
        let Some(mut coder) = coder else {
            // Only the head changed (a HEAD, or Vary alone): what followed it stays.
            edited.extend_from_slice(&head[hb..]);
            self.pool.put(head);
            conn.wbuf = edited;
            return;
        };
        let body = &head[hb..];
        let file = conn.file.is_some();
        let mut r = coder.code(body, false, &mut edited);
        if !file && r.is_ok() {
            r = coder.end(true, &mut edited);
        }
        if let Err(e) = r {
            crate::elog!(
                self.elog,
                Error,
                "{} failed ({}), client: {}",
                coder.what(),
                e.0,
                conn.peer.ip()
            );
            // What was valid goes out; the connection cannot carry another response.
            conn.file = None;
            out.close = true;
            conn.close_after = true;
        }
        if let Some(f) = conn.file.as_mut() {
            // Read and coded as the client takes it (see `Conn::flush`).
            f.sendfile = false;
            f.nopush = false;
        }
        req.coder = Some(coder);
        self.pool.put(head);
        conn.wbuf = edited;
    }

    /// A body coder for `coding` and, with `sub`, the location's sub_filter patterns
    /// (their variables expanded now). `Ok(None)`: nothing to do (no coding, and every
    /// match string came out empty).
    pub(crate) fn start_coder(
        &mut self,
        conn: &Conn,
        req: &RequestCtx,
        s: &Settings,
        coding: Option<Dir>,
        (sub, inc): (bool, Includes),
        chunked: bool,
    ) -> Result<Option<Box<BodyCoder>>, CodingError> {
        let params = coding.map_or((0, 0), |d| params(s, d));
        let mut coder = BodyCoder::take(&mut self.spare_coders, coding, params, chunked)?;
        if inc.ssi {
            coder.ssi = Some(Box::new(super::ssi::SsiState::new(
                s.ssi.value_length,
                s.ssi.silent_errors,
            )));
        }
        coder.before = inc.before;
        coder.after = inc.after;
        coder.slice = inc.slice;
        if sub {
            let sf = &s.sub_filter;
            let mut pool = self.scratch.var_pool.borrow_mut();
            let (mut m, mut r) = (pool.buf(), pool.buf());
            drop(pool);
            let ctx = self.ctx(conn, req, 0);
            let st = coder.substitute(sf.once);
            for (pattern, replacement) in &sf.pairs {
                m.clear();
                r.clear();
                ctx.expand(pattern, &mut m);
                ctx.expand(replacement, &mut r);
                st.add(&m, &r);
            }
            coder.sub_on = coder.sub.is_active();
            let mut pool = self.scratch.var_pool.borrow_mut();
            pool.give_buf(m);
            pool.give_buf(r);
        }
        if coding.is_none() && !coder.sub_on && !inc.any() && !inc.slice {
            coder.give_back(&mut self.spare_coders);
            return Ok(None);
        }
        Ok(Some(coder))
    }

    /// A request's coder is done with: its totals become `$gzip_ratio` (or
    /// `$brotli_ratio`, `$zstd_ratio`), and it goes back to the worker's spares.
    pub(crate) fn end_coding(&mut self, req: &mut RequestCtx) {
        if let Some(c) = req.coder.take() {
            if let Some(coding) = c.compresses() {
                let (zin, zout) = c.totals();
                // nginx counts the gzip trailer's 8 bytes in (the others' totals include
                // everything they wrote).
                let zout = if coding == Coding::Gzip {
                    zout + 8
                } else {
                    zout
                };
                req.gzip_ratio = Some((coding, (zin, zout)));
            }
            c.give_back(&mut self.spare_coders);
        }
    }
}

/// The level and window of the coder for `dir` under `s`.
pub(crate) fn params(s: &Settings, dir: Dir) -> (u8, u8) {
    match dir {
        Dir::Encode(c) => {
            let (_, _, _, level, window) = knobs(s, c);
            (level, window)
        }
        Dir::Decompress => (0, 0),
    }
}

/// `$gzip_ratio` from the body bytes in and out: nginx's `%ui.%02ui` (rounded to the
/// nearest hundredth).
pub(crate) fn write_ratio(totals: (u64, u64), out: &mut Vec<u8>) {
    let (zin, zout) = totals;
    if zout == 0 {
        return;
    }
    let thousandths = u128::from(zin) * 1000 / u128::from(zout);
    let hundredths = thousandths / 10 + u128::from(thousandths % 10 > 4);
    let _ = write!(out, "{}.{:02}", hundredths / 100, hundredths % 100);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn ed(coding: Option<Dir>, vary: bool, framing: Framing) -> Edit {
        Edit {
            coding,
            vary,
            framing,
            body_changes: coding.is_some(),
            drop_validators: false,
        }
    }

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: proton\r\nContent-Type: text/html\r\nContent-Length: 64\r\nLast-Modified: Mon, 07 Dec 2026 06:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nETag: \"abc-40\"\r\nAccept-Ranges: bytes\r\n\r\n";

    fn text(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap_or("(not UTF-8)")
    }

    #[test]
    fn a_compressed_head_loses_length_and_ranges_and_gets_a_weak_etag() {
        let mut out = Vec::new();
        edit_head(
            HEAD,
            &ed(Some(Dir::Encode(Coding::Gzip)), true, Framing::Chunked),
            &mut out,
        );
        let h = text(&out);
        assert!(!h.contains("Content-Length"), "{h}");
        assert!(!h.contains("Accept-Ranges"), "{h}");
        assert!(h.contains("\r\nETag: W/\"abc-40\"\r\n"), "{h}");
        assert!(h.contains("\r\nContent-Encoding: gzip\r\n"), "{h}");
        assert!(h.contains("\r\nVary: Accept-Encoding\r\n"), "{h}");
        assert!(h.ends_with("Transfer-Encoding: chunked\r\n\r\n"), "{h}");
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nServer: proton\r\n"),
            "{h}"
        );
        assert!(h.contains("Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"));
    }

    #[test]
    fn close_framing_and_decompression() {
        let gz = HEAD
            .strip_suffix(b"\r\n")
            .map(|h| [h, b"Content-Encoding: gzip\r\nETag: W/\"x\"\r\n\r\n"].concat())
            .unwrap_or_default();
        let mut out = Vec::new();
        edit_head(
            &gz,
            &ed(Some(Dir::Decompress), false, Framing::Close),
            &mut out,
        );
        let h = text(&out);
        assert!(!h.contains("Content-Encoding"), "{h}");
        assert!(!h.contains("Keep-Alive"), "{h}");
        assert!(h.contains("\r\nConnection: close\r\n"), "{h}");
        assert!(!h.contains("Transfer-Encoding"), "{h}");
        // An ETag weak already stays; the strong one of the first line is weakened.
        assert!(h.contains("ETag: W/\"x\"\r\n"), "{h}");
        assert!(h.contains("ETag: W/\"abc-40\"\r\n"), "{h}");
        // An ETag not in quotes goes (nginx).
        let odd = b"HTTP/1.1 200 OK\r\nETag: abc\r\n\r\n";
        edit_head(
            odd,
            &ed(Some(Dir::Encode(Coding::Gzip)), false, Framing::Keep),
            &mut out,
        );
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n"
        );
    }

    #[test]
    fn vary_alone_changes_nothing_else() {
        let mut out = Vec::new();
        edit_head(HEAD, &ed(None, true, Framing::Keep), &mut out);
        let expected = [
            HEAD.strip_suffix(b"\r\n").unwrap_or(HEAD),
            b"Vary: Accept-Encoding\r\n\r\n",
        ]
        .concat();
        assert_eq!(text(&out), text(&expected));
    }

    #[test]
    fn fields_and_types() {
        assert_eq!(head_field(HEAD, b"content-type"), Some(&b"text/html"[..]));
        assert_eq!(head_field(HEAD, b"CONTENT-LENGTH"), Some(&b"64"[..]));
        assert_eq!(head_field(HEAD, b"vary"), None);
        // The status line is not a field.
        assert_eq!(
            head_field(b"HTTP/1.1 200 OK\r\n\r\n", b"http/1.1 200 ok"),
            None
        );
        let types = vec!["application/json".to_string(), "text/html".to_string()];
        assert!(type_listed(&types, Some(b"text/html; charset=utf-8")));
        assert!(type_listed(&types, Some(b"Application/JSON")));
        assert!(!type_listed(&types, Some(b"text/plain")));
        assert!(!type_listed(&types, None));
        assert!(type_listed(&["*".to_string()], None));
        assert!(cache_control_has(b"max-age=0, No-Cache", b"no-cache"));
        assert!(!cache_control_has(b"no-cache-please", b"no-cache"));
        assert!(cache_control_has(b"private=\"x\"", b"private"));
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let r = flate2::read::MultiGzDecoder::new(data).read_to_end(&mut v);
        assert!(r.is_ok(), "{r:?}");
        v
    }

    /// Reads chunked framing back (sizes in hex, each chunk then CRLF, a last chunk).
    fn dechunk(mut data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let eol = data
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(data.len());
            let n = usize::from_str_radix(text(&data[..eol]), 16).unwrap_or(usize::MAX);
            assert!(n != usize::MAX, "a chunk size: {:?}", text(data));
            data = &data[eol + 2..];
            if n == 0 {
                assert_eq!(data, b"\r\n");
                return body;
            }
            body.extend_from_slice(&data[..n]);
            assert_eq!(&data[n..n + 2], b"\r\n");
            data = &data[n + 2..];
        }
    }

    #[test]
    fn a_body_coded_in_pieces_is_framed_and_decodes() {
        let body: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut spares = Vec::new();
        for chunked in [true, false] {
            let mut c = BodyCoder::take(
                &mut spares,
                Some(Dir::Encode(Coding::Gzip)),
                (1, 0),
                chunked,
            )
            .expect("gzip");
            let mut out = Vec::new();
            for piece in body.chunks(7_001) {
                assert!(c.code(piece, false, &mut out).is_ok());
            }
            assert!(c.end(true, &mut out).is_ok());
            let gz = if chunked { dechunk(&out) } else { out.clone() };
            assert_eq!(gunzip(&gz), body);
            let (zin, zout) = c.totals();
            assert_eq!(zin, body.len() as u64);
            // (The gzip trailer's 8 bytes are not in the encoder's count.)
            assert_eq!(zout + 8, gz.len() as u64);
            // Decoding it again through a gunzip coder, in odd pieces.
            let mut d =
                BodyCoder::take(&mut spares, Some(Dir::Decompress), (0, 0), false).expect("gunzip");
            let mut plain = Vec::new();
            for piece in gz.chunks(333) {
                assert!(d.code(piece, false, &mut plain).is_ok());
            }
            assert!(d.end(true, &mut plain).is_ok());
            assert_eq!(plain, body);
            c.give_back(&mut spares);
            d.give_back(&mut spares);
            assert_eq!(spares.len(), 1, "gzip coders are kept, gunzip ones are not");
        }
        // code_tail: the bytes after `from` are replaced by their coding.
        let mut c = BodyCoder::take(&mut spares, Some(Dir::Encode(Coding::Gzip)), (1, 0), false)
            .expect("gzip");
        assert!(spares.is_empty(), "the spare is reused");
        let mut buf = b"HEAD".to_vec();
        buf.extend_from_slice(&body[..1000]);
        assert!(c.code_tail(&mut buf, 4, false, true).is_ok());
        assert_eq!(&buf[..4], b"HEAD");
        assert_eq!(gunzip(&buf[4..]), &body[..1000]);
    }

    fn decode_as(c: Coding, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let r = match c {
            Coding::Gzip => flate2::read::MultiGzDecoder::new(data).read_to_end(&mut v),
            Coding::Br => brotli::Decompressor::new(data, 4096).read_to_end(&mut v),
            Coding::Zstd => {
                zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut v))
            }
        };
        assert!(r.is_ok(), "{c:?}: {r:?}");
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Any body, cut into any pieces, with flushes anywhere, through every coder and
        /// its framing, decodes back to itself with a reference decoder; and gunzip undoes
        /// what a reference gzip encoder made.
        #[test]
        fn every_coder_round_trips(
            words in proptest::collection::vec(0u8..40, 0..3000),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(1usize..5000, 1..8),
            flush_at in proptest::collection::vec(proptest::prelude::any::<bool>(), 8),
            chunked in proptest::prelude::any::<bool>(),
        ) {
            // Compressible text with incompressible bytes in the middle.
            let mut body: Vec<u8> = words.iter().flat_map(|w| format!("w{w} ").into_bytes()).collect();
            let mid = body.len() / 2;
            body.splice(mid..mid, noise.iter().copied());
            let mut spares = Vec::new();
            for (c, params) in [(Coding::Gzip, (1, 0)), (Coding::Gzip, (9, 0)), (Coding::Br, (4, 18)), (Coding::Zstd, (3, 0))] {
                let mut coder = BodyCoder::take(&mut spares, Some(Dir::Encode(c)), params, chunked).expect("a coder");
                let mut out = Vec::new();
                let mut rest = &body[..];
                let mut i = 0;
                while !rest.is_empty() {
                    let n = cuts[i % cuts.len()].min(rest.len());
                    proptest::prop_assert!(coder.code(&rest[..n], flush_at[i % 8], &mut out).is_ok());
                    rest = &rest[n..];
                    i += 1;
                }
                proptest::prop_assert!(coder.end(true, &mut out).is_ok());
                let stream = if chunked { dechunk(&out) } else { out };
                proptest::prop_assert_eq!(decode_as(c, &stream), body.clone());
                coder.give_back(&mut spares);
            }
            let gz = {
                use std::io::Write;
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                proptest::prop_assert!(z.write_all(&body).is_ok());
                z.finish().unwrap_or_default()
            };
            let mut d = BodyCoder::take(&mut spares, Some(Dir::Decompress), (0, 0), chunked).expect("gunzip");
            let mut out = Vec::new();
            for (i, piece) in gz.chunks(cuts[0]).enumerate() {
                proptest::prop_assert!(d.code(piece, flush_at[i % 8], &mut out).is_ok());
            }
            proptest::prop_assert!(d.end(true, &mut out).is_ok());
            let plain = if chunked { dechunk(&out) } else { out };
            proptest::prop_assert_eq!(plain, body);
        }
    }

    /// A gzip bomb (8 MiB of the same byte in ~8 KiB) given in one piece: each step makes
    /// a bounded output, the rest of the input is held (no more is accepted) until the
    /// caller resumes the coder after sending that output; the whole body comes out, with
    /// or without sub_filter after gunzip, framed or not.
    #[test]
    fn gunzip_output_is_bounded_per_step() {
        use crate::http::coding::GUNZIP_OUT;
        let body = vec![b'a'; 8 << 20];
        let gz = {
            use std::io::Write;
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let _ = z.write_all(&body);
            z.finish().unwrap_or_default()
        };
        assert!(gz.len() < 16 << 10, "{}", gz.len());
        for (chunked, sub) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut spares = Vec::new();
            let mut d = BodyCoder::take(&mut spares, Some(Dir::Decompress), (0, 0), chunked)
                .expect("gunzip");
            if sub {
                d.substitute(false).add(b"aaaa", b"b");
            }
            let (mut all, mut out, mut steps) = (Vec::new(), Vec::new(), 0);
            assert!(d.code(&gz, false, &mut out).is_ok());
            assert!(d.end(true, &mut out).is_ok());
            loop {
                // One step's output: the bound and at most one input step's worth.
                assert!(out.len() <= GUNZIP_OUT + (1 << 20) + 64, "{}", out.len());
                all.append(&mut out);
                if !d.holds_input() {
                    break;
                }
                assert!(!d.accepting());
                assert!(d.resume(&mut out).is_ok());
                steps += 1;
            }
            assert!(d.ended, "chunked {chunked} sub {sub}");
            assert!(steps >= 4, "{steps}");
            let plain = if chunked { dechunk(&all) } else { all };
            let want = if sub {
                vec![b'b'; body.len() / 4]
            } else {
                body.clone()
            };
            assert_eq!(plain.len(), want.len(), "chunked {chunked} sub {sub}");
            assert!(plain == want, "chunked {chunked} sub {sub}");
        }
    }

    /// sub_filter before a compression, and after gunzip, in any pieces.
    #[test]
    fn substitution_runs_between_gunzip_and_compression() {
        let body: Vec<u8> = (0..2000)
            .flat_map(|i| format!("<p>Foo {i} foo</p>").into_bytes())
            .collect();
        let want = String::from_utf8_lossy(&body)
            .replace("Foo", "bar")
            .replace("foo", "bar");
        let gz = {
            use std::io::Write;
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = z.write_all(&body);
            z.finish().unwrap_or_default()
        };
        let mut spares = Vec::new();
        for piece in [1, 7, 4096] {
            for (dir, input) in [
                (Some(Dir::Encode(Coding::Gzip)), &body),
                (Some(Dir::Decompress), &gz),
                (None, &body),
            ] {
                let mut c = BodyCoder::take(&mut spares, dir, (1, 0), true).expect("a coder");
                c.substitute(false).add(b"FOO", b"bar");
                c.sub_on = true;
                let mut out = Vec::new();
                for p in input.chunks(piece) {
                    assert!(c.code(p, false, &mut out).is_ok());
                }
                assert!(c.end(true, &mut out).is_ok());
                let framed = dechunk(&out);
                let plain = if dir == Some(Dir::Encode(Coding::Gzip)) {
                    gunzip(&framed)
                } else {
                    framed
                };
                assert_eq!(
                    String::from_utf8_lossy(&plain),
                    want,
                    "{dir:?} in pieces of {piece}"
                );
                c.give_back(&mut spares);
            }
        }
    }

    #[test]
    fn a_corrupt_gzip_stream_fails_once_and_gives_nothing_more() {
        let mut spares = Vec::new();
        let mut d =
            BodyCoder::take(&mut spares, Some(Dir::Decompress), (0, 0), false).expect("gunzip");
        let mut out = Vec::new();
        let bad = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff];
        let first = d
            .code(&bad, false, &mut out)
            .and_then(|()| d.end(true, &mut out));
        assert!(first.is_err());
        assert!(d.failed);
        assert!(d.code(b"more", false, &mut out).is_ok());
        assert!(out.is_empty());
    }

    #[test]
    fn ratio_as_nginx_writes_it() {
        let mut v = Vec::new();
        write_ratio((1000, 300), &mut v);
        assert_eq!(v, b"3.33");
        v.clear();
        write_ratio((64, 26), &mut v);
        assert_eq!(v, b"2.46");
        v.clear();
        write_ratio((2125, 1000), &mut v);
        assert_eq!(v, b"2.13");
        v.clear();
        write_ratio((1999, 1000), &mut v);
        assert_eq!(v, b"2.00");
        v.clear();
        write_ratio((5, 0), &mut v);
        assert!(v.is_empty());
    }
}
