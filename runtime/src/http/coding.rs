//! Content codings on byte slices: which coding a client's `Accept-Encoding` allows, and a
//! streaming gzip encoder (the start of the response filter chain of issue 17).
//!
//! [`Accepted::parse`] reads an `Accept-Encoding` value once into the q-value of each
//! coding Proton can produce; [`Accepted::allows`] answers nginx's question for one coding
//! (`ngx_http_gzip_ok`: the coding is named, as a whole token, with no `q=0`), and
//! [`Accepted::best`] picks among several by q-value (ties go to the server's order), as the
//! brotli and zstd modules need.
//!
//! [`GzipEncoder`] is sans-IO: bytes in, gzip bytes appended to a `Vec` the caller owns and
//! reuses; a sync flush makes everything given so far decodable (`gzip_flush`, streamed
//! proxied responses); [`GzipEncoder::finish`] writes the trailer. The deflate state (about
//! 256 KiB at the default window) is made once and reset between responses, never per
//! request.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// A content coding Proton can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Br,
    Zstd,
}

impl Coding {
    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static [u8] {
        match self {
            Coding::Gzip => b"gzip",
            Coding::Br => b"br",
            Coding::Zstd => b"zstd",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The q-values (in thousandths) an `Accept-Encoding` value gives the codings Proton can
/// produce; `None`: not named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    q: [Option<u16>; 3],
}

impl Accepted {
    /// Reads an `Accept-Encoding` value (several headers: joined with `,`). Tokens are
    /// compared without regard to case; a parameter list other than a valid `q` makes the
    /// coding refused, as nginx's check does (`gzip;q=bad`); `*` is not taken as naming a
    /// coding (nginx does not either). A coding named twice keeps its first q-value.
    pub fn parse(value: &[u8]) -> Accepted {
        let mut a = Accepted::default();
        for item in value.split(|&b| b == b',') {
            let mut parts = item.split(|&b| b == b';');
            let name = parts.next().unwrap_or_default().trim_ascii();
            let coding = [Coding::Gzip, Coding::Br, Coding::Zstd]
                .into_iter()
                .find(|c| name.eq_ignore_ascii_case(c.token()));
            let Some(coding) = coding else {
                continue;
            };
            let mut q = Some(1000);
            for p in parts {
                let p = p.trim_ascii();
                q = match p.split_first() {
                    Some((b'q' | b'Q', rest)) => rest
                        .trim_ascii_start()
                        .strip_prefix(b"=")
                        .and_then(|v| quantity(v.trim_ascii())),
                    // An empty parameter (`gzip;`) is harmless.
                    None => q,
                    _ => None,
                };
            }
            let slot = &mut a.q[coding.index()];
            if slot.is_none() {
                *slot = Some(q.unwrap_or(0));
            }
        }
        a
    }

    /// Whether `coding` may be used: named with a q-value above zero.
    pub fn allows(&self, coding: Coding) -> bool {
        self.q[coding.index()].is_some_and(|q| q > 0)
    }

    /// The coding with the highest q-value among `offered` (in the server's order of
    /// preference, which breaks ties); `None`: the client accepts none of them.
    pub fn best(&self, offered: &[Coding]) -> Option<Coding> {
        let mut best: Option<(Coding, u16)> = None;
        for &c in offered {
            if let Some(q) = self.q[c.index()].filter(|&q| q > 0) {
                if best.is_none_or(|(_, b)| q > b) {
                    best = Some((c, q));
                }
            }
        }
        best.map(|(c, _)| c)
    }
}

/// A q-value (RFC 9110 §12.4.2: `0`, `0.` and up to three digits, `1`, `1.000`) in
/// thousandths; `None` when malformed.
fn quantity(v: &[u8]) -> Option<u16> {
    let (&first, rest) = v.split_first()?;
    let whole = match first {
        b'0' => 0u16,
        b'1' => 1000,
        _ => return None,
    };
    let Some(frac) = rest.strip_prefix(b".") else {
        return rest.is_empty().then_some(whole);
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n = 0u16;
    for i in 0..3 {
        n = n * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    (whole + n <= 1000).then_some(whole + n)
}

/// The gzip member header nginx writes: no name, no time, OS "unix".
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

/// Output room asked for per deflate call.
const STEP: usize = 8 * 1024;

/// The deflate engine failed (it does not on well-formed calls; reported, never a panic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodingError(pub String);

/// A streaming gzip encoder (one member per response); see the module's documentation.
pub struct GzipEncoder {
    z: Compress,
    crc: Crc,
    /// The header is written (the first bytes of this response went out).
    started: bool,
    level: u8,
}

impl GzipEncoder {
    /// An encoder at `level` (1-9, nginx's `gzip_comp_level`; out-of-range values are
    /// clamped).
    pub fn new(level: u32) -> GzipEncoder {
        GzipEncoder {
            z: Compress::new(Compression::new(level.clamp(1, 9)), false),
            crc: Crc::new(),
            started: false,
            level: level.clamp(1, 9) as u8,
        }
    }

    /// The compression level it was made for.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Ready for the next response, at the same level (the deflate state is kept).
    pub fn reset(&mut self) {
        self.z.reset();
        self.crc.reset();
        self.started = false;
    }

    /// Compresses all of `input`, appending to `out` what deflate gives out now (it may
    /// hold some back until more comes, a flush or the end).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError> {
        self.start(out);
        self.crc.update(input);
        self.run(input, out, FlushCompress::None)
    }

    /// Everything given so far goes out (a sync flush: the client can decode it all).
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        self.start(out);
        self.run(&[], out, FlushCompress::Sync)
    }

    /// The end of the body: the rest of the deflate stream and the gzip trailer (CRC-32
    /// and length, little-endian). The encoder must be [`reset`](Self::reset) before the
    /// next response.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        self.start(out);
        self.run(&[], out, FlushCompress::Finish)?;
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Ok(())
    }

    /// Body bytes taken so far, and gzip bytes given out (header included), for
    /// `$gzip_ratio`.
    pub fn totals(&self) -> (u64, u64) {
        let header = if self.started { 10 } else { 0 };
        (self.z.total_in(), self.z.total_out() + header)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            out.extend_from_slice(&GZIP_HEADER);
        }
    }

    /// Runs deflate over `input` with `mode` until it has taken all of it and, for a flush
    /// or the end, given out everything it must.
    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        mode: FlushCompress,
    ) -> Result<(), CodingError> {
        loop {
            out.reserve(STEP);
            let (before_in, before_out) = (self.z.total_in(), out.len());
            let status = self
                .z
                .compress_vec(input, out, mode)
                .map_err(|e| CodingError(e.to_string()))?;
            let taken = usize::try_from(self.z.total_in() - before_in).unwrap_or(input.len());
            input = input.get(taken..).unwrap_or_default();
            let room_left = out.len() < out.capacity();
            match (mode, status) {
                (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
                (FlushCompress::Finish, _) => {}
                // Done once all is taken and deflate stopped before filling the room it had
                // (it had no more to give out).
                _ if input.is_empty() && room_left => return Ok(()),
                // No progress at all with room to spare: nothing more will come.
                _ if taken == 0 && out.len() == before_out && room_left => {
                    return Err(CodingError("deflate made no progress".into()));
                }
                _ => {}
            }
        }
    }
}

/// The memory of a brotli encoder, kept from one response to the next. The brotli crate's
/// encoder cannot be reset, so each response makes a new one; without this its hasher tables
/// and ring buffer (megabytes at quality 4 and a 512k window) would be allocated, faulted in
/// page by page, zeroed by the kernel and given back on every response. The encoder asks for
/// its cells through this allocator, and a cell freed when a stream ends serves the next
/// stream's request for a cell of the same type and length (cleared to the type's default, as
/// the crate's own allocator gives them). One pool belongs to one [`BrotliEncoder`], whose
/// streams follow each other; what it keeps is bounded by [`BROTLI_POOL_KEEP`].
#[derive(Clone, Default)]
pub struct BrotliPool(std::rc::Rc<std::cell::RefCell<PoolCells>>);

/// Bytes of free cells a [`BrotliPool`] keeps; the oldest go first beyond it (a quality-11
/// encoder with a 16 MiB window needs more than this and then allocates as the crate does).
pub const BROTLI_POOL_KEEP: usize = 32 << 20;

struct PoolCells {
    /// Free cells, oldest first: (type, length in elements, bytes, the `Box<[T]>`).
    free: Vec<(std::any::TypeId, usize, usize, Box<dyn std::any::Any>)>,
    bytes: usize,
    /// What may be kept ([`BROTLI_POOL_KEEP`] but in tests).
    keep: usize,
}

impl Default for PoolCells {
    fn default() -> Self {
        PoolCells {
            free: Vec::new(),
            bytes: 0,
            keep: BROTLI_POOL_KEEP,
        }
    }
}

/// A cell of a [`BrotliPool`].
pub struct PoolCell<T>(Box<[T]>);

impl<T> Default for PoolCell<T> {
    fn default() -> Self {
        PoolCell(Box::default())
    }
}

impl<T> brotli::SliceWrapper<T> for PoolCell<T> {
    fn slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> brotli::SliceWrapperMut<T> for PoolCell<T> {
    fn slice_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Clone + Default + 'static> brotli::Allocator<T> for BrotliPool {
    type AllocatedMemory = PoolCell<T>;

    fn alloc_cell(&mut self, len: usize) -> PoolCell<T> {
        if len == 0 {
            return PoolCell::default();
        }
        let ty = std::any::TypeId::of::<T>();
        let mut cells = self.0.borrow_mut();
        if let Some(i) = cells.free.iter().position(|c| c.0 == ty && c.1 == len) {
            let (_, _, bytes, cell) = cells.free.swap_remove(i);
            cells.bytes -= bytes;
            if let Ok(mut b) = cell.downcast::<Box<[T]>>() {
                b.fill(T::default());
                return PoolCell(*b);
            }
        }
        PoolCell(vec![T::default(); len].into_boxed_slice())
    }

    fn free_cell(&mut self, data: PoolCell<T>) {
        let bytes = std::mem::size_of_val(&*data.0);
        let mut cells = self.0.borrow_mut();
        if data.0.is_empty() || bytes > cells.keep {
            return;
        }
        cells.bytes += bytes;
        cells.free.push((
            std::any::TypeId::of::<T>(),
            data.0.len(),
            bytes,
            Box::new(data.0),
        ));
        while cells.bytes > cells.keep && !cells.free.is_empty() {
            let (_, _, b, _) = cells.free.remove(0);
            cells.bytes -= b;
        }
    }
}

impl brotli::enc::BrotliAlloc for BrotliPool {}

impl BrotliPool {
    /// Bytes of free cells kept now.
    pub fn kept(&self) -> usize {
        self.0.borrow().bytes
    }

    /// A pool that keeps at most `keep` bytes of free cells.
    #[cfg(test)]
    fn keeping(keep: usize) -> BrotliPool {
        let pool = BrotliPool::default();
        pool.0.borrow_mut().keep = keep;
        pool
    }
}

type BrotliWriter =
    brotli::enc::writer::CompressorWriterCustomAlloc<Vec<u8>, PoolCell<u8>, BrotliPool>;

/// A streaming brotli encoder (one stream per response). The brotli crate's encoder cannot
/// be reset, so one stream is made per response, its memory from the encoder's [`BrotliPool`].
pub struct BrotliEncoder {
    w: Option<Box<BrotliWriter>>,
    pool: BrotliPool,
    level: u8,
    window_log: u8,
    totals: (u64, u64),
}

impl BrotliEncoder {
    /// An encoder at quality `level` (0-11) with a window of 2^`window_log` bytes (10-24).
    pub fn new(level: u8, window_log: u8) -> BrotliEncoder {
        BrotliEncoder {
            w: None,
            pool: BrotliPool::default(),
            level: level.min(11),
            window_log: window_log.clamp(10, 24),
            totals: (0, 0),
        }
    }

    fn writer(&mut self) -> &mut BrotliWriter {
        let (q, lgwin) = (u32::from(self.level), u32::from(self.window_log));
        let pool = &self.pool;
        self.w.get_or_insert_with(|| {
            let mut alloc = pool.clone();
            let buffer = brotli::Allocator::<u8>::alloc_cell(&mut alloc, 4096);
            Box::new(BrotliWriter::new(Vec::new(), buffer, alloc, q, lgwin))
        })
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        if let Some(w) = self.w.as_mut() {
            let made = w.get_mut();
            self.totals.1 += made.len() as u64;
            out.extend_from_slice(made);
            made.clear();
        }
    }

    /// Compresses all of `input`, appending what the encoder gives out now.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError> {
        use std::io::Write;
        self.writer()
            .write_all(input)
            .map_err(|e| CodingError(e.to_string()))?;
        self.totals.0 += input.len() as u64;
        self.drain(out);
        Ok(())
    }

    /// Everything given so far goes out.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        use std::io::Write;
        self.writer()
            .flush()
            .map_err(|e| CodingError(e.to_string()))?;
        self.drain(out);
        Ok(())
    }

    /// The end of the body: the rest of the stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        self.writer();
        self.drain(out);
        if let Some(w) = self.w.take() {
            let rest = w.into_inner();
            self.totals.1 += rest.len() as u64;
            out.extend_from_slice(&rest);
        }
        Ok(())
    }

    /// Ready for the next response (the next one makes a new stream).
    pub fn reset(&mut self) {
        self.w = None;
        self.totals = (0, 0);
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    pub fn window_log(&self) -> u8 {
        self.window_log
    }

    /// Body bytes taken and given out so far.
    pub fn totals(&self) -> (u64, u64) {
        self.totals
    }
}

/// A streaming zstd encoder (one frame per response); its context is kept and reset
/// between responses.
pub struct ZstdEncoder {
    z: zstd::stream::raw::Encoder<'static>,
    level: u8,
    totals: (u64, u64),
}

impl ZstdEncoder {
    /// An encoder at `level` (1-22).
    pub fn new(level: u8) -> Result<ZstdEncoder, CodingError> {
        let level = level.clamp(1, 22);
        let z = zstd::stream::raw::Encoder::new(i32::from(level))
            .map_err(|e| CodingError(e.to_string()))?;
        Ok(ZstdEncoder {
            z,
            level,
            totals: (0, 0),
        })
    }

    /// Runs `f` on room for [`STEP`] more bytes at the end of `out`; returns what `f` did.
    fn step(
        out: &mut Vec<u8>,
        f: impl FnOnce(&mut zstd::stream::raw::OutBuffer<'_, [u8]>) -> std::io::Result<usize>,
    ) -> Result<(usize, usize), CodingError> {
        let old = out.len();
        out.resize(old + STEP, 0);
        let mut ob = zstd::stream::raw::OutBuffer::around(&mut out[old..]);
        let r = f(&mut ob);
        let made = ob.pos();
        out.truncate(old + made);
        let left = r.map_err(|e| CodingError(e.to_string()))?;
        Ok((left, made))
    }

    /// Compresses all of `input`, appending what the encoder gives out now.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodingError> {
        use zstd::stream::raw::Operation;
        let mut inb = zstd::stream::raw::InBuffer::around(input);
        while inb.pos() < input.len() {
            let before = inb.pos();
            let z = &mut self.z;
            let (_, made) = Self::step(out, |ob| z.run(&mut inb, ob))?;
            self.totals.1 += made as u64;
            if made == 0 && inb.pos() == before {
                return Err(CodingError("zstd made no progress".into()));
            }
        }
        self.totals.0 += input.len() as u64;
        Ok(())
    }

    /// Everything given so far goes out.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        use zstd::stream::raw::Operation;
        loop {
            let z = &mut self.z;
            let (left, made) = Self::step(out, |ob| z.flush(ob))?;
            self.totals.1 += made as u64;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// The end of the body: the rest of the frame.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        use zstd::stream::raw::Operation;
        loop {
            let z = &mut self.z;
            let (left, made) = Self::step(out, |ob| z.finish(ob, false))?;
            self.totals.1 += made as u64;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// Ready for the next response, at the same level.
    pub fn reset(&mut self) {
        use zstd::stream::raw::Operation;
        let _ = self.z.reinit();
        self.totals = (0, 0);
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    /// Body bytes taken and given out so far.
    pub fn totals(&self) -> (u64, u64) {
        self.totals
    }
}

impl std::fmt::Debug for BrotliEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrotliEncoder")
            .field("level", &self.level)
            .field("totals", &self.totals)
            .finish()
    }
}

impl std::fmt::Debug for ZstdEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdEncoder")
            .field("level", &self.level)
            .field("totals", &self.totals)
            .finish()
    }
}

/// A streaming gzip decoder (`gunzip`): any number of members one after another, as nginx's
/// gunzip filter takes them; bytes in, decoded bytes appended to the caller's `Vec`.
pub struct GunzipDecoder {
    z: flate2::write::MultiGzDecoder<Vec<u8>>,
    /// Body bytes taken and given out, for the log.
    totals: (u64, u64),
}

/// Input given to the decoder at a time: what one step can make is bounded by deflate's
/// largest ratio (about 1:1032), so a hostile stream cannot make one step's output huge.
const GUNZIP_STEP: usize = 1024;

/// Output one [`GunzipDecoder::feed`] makes at most, give or take one step's (about 1 MiB
/// with [`GUNZIP_STEP`]): the rest of its input waits for the caller to have sent this.
/// nginx's gunzip stops the same way when its `gunzip_buffers` are full.
pub const GUNZIP_OUT: usize = 256 * 1024;

impl GunzipDecoder {
    pub fn new() -> GunzipDecoder {
        GunzipDecoder {
            z: flate2::write::MultiGzDecoder::new(Vec::new()),
            totals: (0, 0),
        }
    }

    /// Decodes `input`, appending what it makes to `out`, until `out` has grown by
    /// [`GUNZIP_OUT`]: how much of `input` was taken (the rest is the caller's to give again
    /// once that output is sent).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, CodingError> {
        use std::io::Write;
        let start = out.len();
        let mut taken = 0;
        for piece in input.chunks(GUNZIP_STEP) {
            if out.len() - start >= GUNZIP_OUT {
                break;
            }
            self.z
                .write_all(piece)
                .map_err(|e| CodingError(e.to_string()))?;
            self.drain(out);
            taken += piece.len();
        }
        self.totals.0 += taken as u64;
        Ok(taken)
    }

    /// The end of the input: what the decoder still holds. A stream cut inside a member is
    /// an error (the response was truncated).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CodingError> {
        use std::io::Write;
        self.z
            .try_finish()
            .map_err(|e| CodingError(e.to_string()))?;
        let _ = self.z.flush();
        self.drain(out);
        Ok(())
    }

    /// Body bytes taken and given out so far.
    pub fn totals(&self) -> (u64, u64) {
        self.totals
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let made = self.z.get_mut();
        self.totals.1 += made.len() as u64;
        out.extend_from_slice(made);
        made.clear();
    }
}

impl Default for GunzipDecoder {
    fn default() -> Self {
        GunzipDecoder::new()
    }
}

impl std::fmt::Debug for GunzipDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GunzipDecoder")
            .field("totals", &self.totals)
            .finish()
    }
}

impl std::fmt::Debug for GzipEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipEncoder")
            .field("started", &self.started)
            .field("totals", &self.totals())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn brotli_and_zstd_round_trip_in_pieces_with_flushes() {
        let body = body(300_000);
        for piece in [1usize, 777, 65_536] {
            let mut br = BrotliEncoder::new(5, 19);
            let mut zs = ZstdEncoder::new(3).expect("a zstd context");
            let mut first = Vec::new();
            for round in 0..3 {
                let (mut b, mut z) = (Vec::new(), Vec::new());
                for (i, p) in body.chunks(piece).take(2000).enumerate() {
                    assert!(br.feed(p, &mut b).is_ok());
                    assert!(zs.feed(p, &mut z).is_ok());
                    if i == 3 {
                        assert!(br.flush(&mut b).is_ok());
                        assert!(zs.flush(&mut z).is_ok());
                    }
                }
                assert!(br.finish(&mut b).is_ok());
                assert!(zs.finish(&mut z).is_ok());
                let taken: usize = body.chunks(piece).take(2000).map(<[u8]>::len).sum();
                let mut plain = Vec::new();
                let r = brotli::Decompressor::new(&b[..], 4096).read_to_end(&mut plain);
                assert!(r.is_ok(), "piece {piece} round {round}: {r:?}");
                assert_eq!(plain, &body[..taken]);
                let z_plain = zstd::stream::decode_all(&z[..]);
                assert!(z_plain.is_ok(), "{z_plain:?}");
                assert_eq!(z_plain.unwrap_or_default(), &body[..taken]);
                assert_eq!(br.totals(), (taken as u64, b.len() as u64));
                assert_eq!(zs.totals(), (taken as u64, z.len() as u64));
                // A stream made from the pool's reused cells gives the same bytes as the
                // first one, made from fresh memory.
                if round == 0 {
                    first = b.clone();
                } else {
                    assert_eq!(b, first, "piece {piece} round {round}");
                }
                // The same encoders serve the next response.
                br.reset();
                zs.reset();
                // The stream's memory went back to the pool (a few MiB at this level and
                // window), within its bound.
                let kept = br.pool.kept();
                assert!(kept > 1 << 20 && kept <= BROTLI_POOL_KEEP, "{kept}");
            }
        }
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut d = flate2::read::GzDecoder::new(data);
        let mut v = Vec::new();
        d.read_to_end(&mut v).expect("a valid gzip stream");
        v
    }

    fn body(n: usize) -> Vec<u8> {
        // Compressible but not trivial: words with a counter.
        let mut v = Vec::with_capacity(n);
        let mut i = 0u32;
        while v.len() < n {
            v.extend_from_slice(format!("<p>line {i} of the page</p>\n").as_bytes());
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12345) % 100_000;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn the_brotli_pool_keeps_at_most_its_bound_and_clears_what_it_gives_again() {
        use brotli::{Allocator, SliceWrapper, SliceWrapperMut};
        let mut pool = BrotliPool::keeping(1000);
        let mut cells: Vec<PoolCell<u8>> = (0..5)
            .map(|_| Allocator::<u8>::alloc_cell(&mut pool, 300))
            .collect();
        for (i, c) in cells.iter_mut().enumerate() {
            c.slice_mut().fill(i as u8 + 1);
        }
        for c in cells {
            Allocator::<u8>::free_cell(&mut pool, c);
        }
        // Five cells of 300 bytes were freed; three fit in 1,000 bytes: the two oldest went.
        assert_eq!(pool.kept(), 900);
        let again = Allocator::<u8>::alloc_cell(&mut pool, 300);
        assert_eq!(pool.kept(), 600, "a kept cell was given again");
        assert!(
            again.slice().iter().all(|&b| b == 0),
            "a reused cell is cleared"
        );
        // Another type or length is not served from the pool.
        let other = Allocator::<u16>::alloc_cell(&mut pool, 150);
        assert_eq!(pool.kept(), 600);
        // A cell larger than the bound is not kept at all.
        let big = Allocator::<u8>::alloc_cell(&mut pool, 2000);
        Allocator::<u8>::free_cell(&mut pool, big);
        assert_eq!(pool.kept(), 600);
        Allocator::<u16>::free_cell(&mut pool, other);
        assert_eq!(pool.kept(), 900);
        Allocator::<u8>::free_cell(&mut pool, again);
        assert_eq!(pool.kept(), 900, "the oldest cell made room");
    }

    #[test]
    fn nginx_accept_encoding_cases() {
        let ok = |v: &str| Accepted::parse(v.as_bytes()).allows(Coding::Gzip);
        for v in [
            "gzip",
            "GZIP",
            "deflate, gzip",
            "gzip, deflate",
            "gzip;q=0.5",
            "gzip; q=1",
            "gzip;q=1.000",
            "gzip;q=0.001",
            "br;q=0, gzip",
            "gzip;",
        ] {
            assert!(ok(v), "{v}");
        }
        for v in [
            "",
            "x-gzip",
            "gzipx",
            "deflate",
            "*",
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=1.5",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=",
            "gzip;level=1",
            "gzip;q=0, gzip",
        ] {
            assert!(!ok(v), "{v}");
        }
    }

    #[test]
    fn best_coding_by_q_then_server_order() {
        let all = [Coding::Zstd, Coding::Br, Coding::Gzip];
        let best = |v: &str| Accepted::parse(v.as_bytes()).best(&all);
        assert_eq!(best("gzip, br"), Some(Coding::Br));
        assert_eq!(best("gzip, br, zstd"), Some(Coding::Zstd));
        assert_eq!(best("gzip;q=1, br;q=0.8"), Some(Coding::Gzip));
        assert_eq!(best("br;q=0, gzip;q=0.1"), Some(Coding::Gzip));
        assert_eq!(best("identity"), None);
        assert_eq!(best("zstd;q=0"), None);
        assert_eq!(
            Accepted::parse(b"gzip, br").best(&[Coding::Gzip]),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn round_trips_at_every_split_and_level() {
        let text = body(40_000);
        for level in [1, 6, 9] {
            let mut z = GzipEncoder::new(level);
            for piece in [1, 7, 1000, 4096, text.len()] {
                z.reset();
                let mut out = Vec::new();
                for p in text.chunks(piece) {
                    z.feed(p, &mut out).unwrap();
                }
                z.finish(&mut out).unwrap();
                assert_eq!(out[..10], GZIP_HEADER);
                assert_eq!(gunzip(&out), text, "level {level} piece {piece}");
                assert!(out.len() < text.len() / 3, "{} bytes", out.len());
                assert_eq!(z.totals(), (text.len() as u64, out.len() as u64 - 8));
            }
        }
    }

    #[test]
    fn empty_body_is_a_valid_member() {
        let mut z = GzipEncoder::new(1);
        let mut out = Vec::new();
        z.finish(&mut out).unwrap();
        assert_eq!(gunzip(&out), b"");
    }

    #[test]
    fn a_flush_makes_everything_so_far_decodable() {
        let mut z = GzipEncoder::new(1);
        let mut out = Vec::new();
        z.feed(b"first part, ", &mut out).unwrap();
        z.flush(&mut out).unwrap();
        // A raw inflate of what is out so far yields all of it.
        let mut d = flate2::Decompress::new(false);
        let mut got = Vec::with_capacity(1024);
        d.decompress_vec(&out[10..], &mut got, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(got, b"first part, ");
        z.feed(b"second part", &mut out).unwrap();
        z.finish(&mut out).unwrap();
        assert_eq!(gunzip(&out), b"first part, second part");
    }

    #[test]
    fn incompressible_input_grows_boundedly() {
        // Bytes from a simple generator: deflate stores them; the output stays within a
        // small overhead of the input.
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut z = GzipEncoder::new(6);
        let mut out = Vec::new();
        for p in data.chunks(3000) {
            z.feed(p, &mut out).unwrap();
        }
        z.finish(&mut out).unwrap();
        assert_eq!(gunzip(&out), data);
        assert!(
            out.len() < data.len() + data.len() / 100 + 64,
            "{}",
            out.len()
        );
    }
}
