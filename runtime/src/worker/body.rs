//! A request's body as the proxy reads it, nginx's `ngx_http_read_client_request_body`:
//! with `proxy_request_buffering on` the whole body is read before an upstream is chosen,
//! kept in memory up to `client_body_buffer_size` and beyond that written to a temporary
//! file under `client_body_temp_path` (always to a file with `client_body_in_file_only`);
//! with `off` it streams to the upstream and only a copy of its first
//! `client_body_buffer_size` bytes is kept, for `$request_body`.
//!
//! The body belongs to its request context, so it outlives the proxy attempt that read it:
//! an `error_page` after an upstream error, a `post_action` or a retry sends it again.
//!
//! Never: write more than one buffer (plus one read from the client) to the file in a
//! call, panic on an I/O error (the caller answers 500 and logs the error), or leave a file
//! behind. As nginx, a temporary file that is not kept is unlinked as soon as it is
//! created (only its descriptor is used), so no path (a client abort, an upstream error, a
//! worker crash) can leave it on disk; `client_body_in_file_only clean` keeps the name until
//! the request ends and removes it then (`Drop`), `on` keeps the file.

use proton_ir::{BodyInFileOnly, TempPath};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Memory a reused body buffer keeps between requests at most.
const KEEP: usize = 64 * 1024;

/// Where the body is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum BodyState {
    /// Not read by anyone (a `return`, a static file: the body is discarded).
    #[default]
    Unread,
    /// Being read whole (`proxy_request_buffering on`).
    Reading,
    /// Read whole: in `mem`, or in the file.
    Read,
    /// Streamed to an upstream as it arrived (`proxy_request_buffering off`).
    Streamed,
}

/// A temporary file of a request body.
pub(crate) struct TempFile {
    file: File,
    path: PathBuf,
    /// Removed when dropped (`client_body_in_file_only clean`).
    remove: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why a body could not be kept; the caller logs it (as nginx, at `crit`) and answers 500.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The temporary file could not be created.
    Open(PathBuf, io::Error),
    /// Writing to it failed (a full disk).
    Write(PathBuf, io::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Open(p, e) => write!(
                f,
                "open() \"{}\" failed ({})",
                p.display(),
                crate::log::OsError(e)
            ),
            BodyError::Write(p, e) => write!(
                f,
                "write() \"{}\" failed ({})",
                p.display(),
                crate::log::OsError(e)
            ),
        }
    }
}

/// Where a body goes once it is larger than memory allows.
pub(crate) struct Spill<'a> {
    /// `client_body_temp_path` (a relative path is under `prefix`).
    pub(crate) temp: &'a TempPath,
    pub(crate) prefix: &'a Path,
    pub(crate) in_file_only: BodyInFileOnly,
    /// The worker's temporary-file counter (nginx's `ngx_temp_number`).
    pub(crate) seq: &'a mut u32,
}

/// One request's body (see the module docs).
#[derive(Default)]
pub(crate) struct RequestBody {
    pub(crate) state: BodyState,
    /// In memory: the whole body; with a file: the bytes not written to it yet. Streamed:
    /// the body while it fits the limit.
    mem: Vec<u8>,
    file: Option<TempFile>,
    /// Body bytes received (decoded, for a chunked body).
    len: u64,
    /// `client_body_buffer_size` of the location that reads it.
    limit: usize,
    /// A streamed body outgrew `limit`: `mem` no longer has it.
    overflow: bool,
    /// A streamed body arrived whole.
    done: bool,
}

impl RequestBody {
    /// Starts reading a body whole, keeping up to `limit` bytes in memory.
    pub(crate) fn start(&mut self, limit: u64, streamed: bool) {
        self.reset();
        self.state = if streamed {
            BodyState::Streamed
        } else {
            BodyState::Reading
        };
        self.limit = usize::try_from(limit).unwrap_or(usize::MAX);
    }

    /// Forgets the body (a file not kept is removed); buffers up to [`KEEP`] are kept.
    pub(crate) fn reset(&mut self) {
        self.file = None;
        if self.mem.capacity() > KEEP {
            self.mem = Vec::new();
        }
        self.mem.clear();
        self.state = BodyState::Unread;
        self.len = 0;
        self.overflow = false;
        self.done = false;
    }

    /// Bytes of the body received so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body is whole and kept (read whole, or streamed and still all in memory): it
    /// can be sent again, by an error page or a post action that proxies.
    pub(crate) fn resendable(&self) -> bool {
        match self.state {
            BodyState::Read => true,
            BodyState::Streamed => self.done && !self.overflow,
            _ => false,
        }
    }

    /// A streamed body arrived whole.
    pub(crate) fn finish_streamed(&mut self) {
        self.done = true;
    }

    /// The body is in a temporary file (sent from there with [`read_at`](Self::read_at)).
    pub(crate) fn in_file(&self) -> bool {
        self.file.is_some()
    }

    /// `$request_body`: the body when it is whole in memory (nginx: empty when it went to a
    /// file, or was not read).
    pub(crate) fn memory(&self) -> Option<&[u8]> {
        match self.state {
            BodyState::Read if self.file.is_none() => Some(&self.mem),
            BodyState::Streamed if !self.overflow => Some(&self.mem),
            _ => None,
        }
    }

    /// `$request_body_file`.
    pub(crate) fn file_name(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// `$content_length` of a chunked request, as nginx: the body's length once it was read
    /// whole or streamed to its end; `None` (not found) while it is still arriving; 0 for a
    /// body nothing read (nginx's value once it discarded the body).
    pub(crate) fn chunked_length(&self) -> Option<u64> {
        match self.state {
            BodyState::Read => Some(self.len),
            BodyState::Streamed if self.done => Some(self.len),
            BodyState::Unread => Some(0),
            _ => None,
        }
    }

    /// Adds bytes of a body being read whole. `Ok(true)`: a temporary file was just created
    /// (nginx logs it).
    pub(crate) fn push(&mut self, data: &[u8], spill: &mut Spill<'_>) -> Result<bool, BodyError> {
        self.len += data.len() as u64;
        let mut created = false;
        if self.file.is_none() {
            let fits = self.mem.len().saturating_add(data.len()) <= self.limit;
            if fits && spill.in_file_only == BodyInFileOnly::Off {
                self.mem.extend_from_slice(data);
                return Ok(false);
            }
            self.file = Some(create(spill)?);
            created = true;
        }
        // `mem` buffers the file's writes: one write per buffer, not per client read.
        if self.mem.len().saturating_add(data.len()) > self.limit.max(1) {
            self.flush()?;
        }
        if data.len() >= self.limit.max(1) {
            self.write(data)?;
        } else {
            self.mem.extend_from_slice(data);
        }
        Ok(created)
    }

    /// Adds bytes of a streamed body: a copy is kept while the body fits the limit.
    pub(crate) fn push_streamed(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if self.overflow {
            return;
        }
        if self.mem.len().saturating_add(data.len()) > self.limit {
            self.overflow = true;
            self.mem.clear();
        } else {
            self.mem.extend_from_slice(data);
        }
    }

    /// The body is complete: what is buffered for the file is written. `Ok(true)`: a file
    /// was created now (an empty body with `client_body_in_file_only`).
    pub(crate) fn finish(&mut self, spill: &mut Spill<'_>) -> Result<bool, BodyError> {
        let mut created = false;
        if self.state == BodyState::Reading {
            if self.file.is_none() && spill.in_file_only != BodyInFileOnly::Off {
                self.file = Some(create(spill)?);
                created = true;
            }
            self.flush()?;
            self.state = BodyState::Read;
        }
        Ok(created)
    }

    /// Reads file bytes at `offset` into `buf` (a bounded piece of a body being sent).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match &self.file {
            Some(f) => f.file.read_at(buf, offset),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// The body in memory (after [`finish`](Self::finish), when not in a file).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.mem
    }

    /// Writes what `mem` buffers to the file (nothing without a file: `mem` is the body).
    fn flush(&mut self) -> Result<(), BodyError> {
        if self.mem.is_empty() || self.file.is_none() {
            return Ok(());
        }
        let mem = std::mem::take(&mut self.mem);
        let r = self.write(&mem);
        self.mem = mem;
        self.mem.clear();
        r
    }

    fn write(&mut self, data: &[u8]) -> Result<(), BodyError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.file
            .write_all(data)
            .map_err(|e| BodyError::Write(f.path.clone(), e))
    }
}

/// The hashed name of temporary file number `n` (nginx's `ngx_create_hashed_filename`):
/// ten digits, under one directory per level named by the last digits (`1 2`:
/// `dir/7/45/0000012457`).
fn hashed_name(dir: &Path, levels: &[u8], n: u32) -> PathBuf {
    let name = format!("{n:010}");
    let mut path = dir.to_path_buf();
    let mut end = name.len();
    for &l in levels.iter().take(3) {
        let start = end.saturating_sub(usize::from(l));
        path.push(&name[start..end]);
        end = start;
    }
    path.push(&name);
    path
}

/// Creates the next temporary file (missing directories are made, as nginx's
/// `ngx_create_path`); a file that is not to be kept is unlinked at once.
fn create(spill: &mut Spill<'_>) -> Result<TempFile, BodyError> {
    let dir = spill.prefix.join(&spill.temp.path);
    let persistent = spill.in_file_only != BodyInFileOnly::Off;
    let (file, path) = create_temp(&dir, &spill.temp.levels, spill.seq, persistent)
        .map_err(|(path, e)| BodyError::Open(path, e))?;
    Ok(TempFile {
        file,
        remove: spill.in_file_only == BodyInFileOnly::Clean,
        path,
    })
}

/// Creates the next temporary file under `dir` with hashed subdirectories of `levels`,
/// numbered from the worker's counter `seq` (missing directories are made, as nginx's
/// `ngx_create_path`). Unless `keep`, the file is unlinked at once: it is gone on every
/// path, a crash included, while its descriptor lives. The error names the path.
pub(crate) fn create_temp(
    dir: &Path,
    levels: &[u8],
    seq: &mut u32,
    keep: bool,
) -> Result<(File, PathBuf), (PathBuf, io::Error)> {
    let mut made_dirs = false;
    let mut collisions = 0;
    loop {
        *seq = seq.wrapping_add(1);
        let path = hashed_name(dir, levels, *seq % 4_000_000_000);
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match opened {
            Ok(file) => {
                if !keep {
                    let _ = std::fs::remove_file(&path);
                }
                return Ok((file, path));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && collisions < 64 => {
                // Another worker's file (or a kept one): nginx jumps ahead by a random step.
                collisions += 1;
                *seq = seq.wrapping_add(std::process::id() % 7919 + 1);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !made_dirs => {
                made_dirs = true;
                if let Some(parent) = path.parent() {
                    use std::os::unix::fs::DirBuilderExt;
                    if let Err(e) = std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                    {
                        return Err((path, e));
                    }
                }
                *seq = seq.wrapping_sub(1);
            }
            Err(e) => return Err((path, e)),
        }
    }
}

/// The first value of a worker's temporary-file counter: apart from other workers'.
pub(crate) fn first_seq() -> u32 {
    std::process::id().wrapping_mul(100_003) % 4_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("proton-body-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn files(d: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(d) else {
            return out;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn hashed_names_as_nginx() {
        let p = hashed_name(Path::new("/t"), &[1, 2], 12457);
        assert_eq!(p, Path::new("/t/7/45/0000012457"));
        let p = hashed_name(Path::new("/t"), &[], 3);
        assert_eq!(p, Path::new("/t/0000000003"));
        let p = hashed_name(Path::new("/t"), &[2, 2, 2], 1234567890);
        assert_eq!(p, Path::new("/t/90/78/56/1234567890"));
    }

    #[test]
    fn small_body_stays_in_memory() {
        let d = dir("mem");
        let mut seq = 0;
        let temp = TempPath {
            path: d.to_string_lossy().into_owned(),
            levels: vec![],
        };
        let mut spill = Spill {
            temp: &temp,
            prefix: Path::new("/"),
            in_file_only: BodyInFileOnly::Off,
            seq: &mut seq,
        };
        let mut b = RequestBody::default();
        b.start(16, false);
        assert!(!b.push(b"0123456789", &mut spill).unwrap_or(true));
        assert!(!b.finish(&mut spill).unwrap_or(true));
        assert_eq!(b.memory(), Some(&b"0123456789"[..]));
        assert!(b.file_name().is_none());
        assert!(!d.exists());
    }

    #[test]
    fn large_body_goes_to_an_unlinked_file_read_back_whole() {
        let d = dir("file");
        let mut seq = 0;
        let temp = TempPath {
            path: d.to_string_lossy().into_owned(),
            levels: vec![1, 2],
        };
        let mut spill = Spill {
            temp: &temp,
            prefix: Path::new("/"),
            in_file_only: BodyInFileOnly::Off,
            seq: &mut seq,
        };
        let mut b = RequestBody::default();
        b.start(8, false);
        let data: Vec<u8> = (0..100u8).collect();
        let mut created = false;
        for piece in data.chunks(7) {
            created |= b.push(piece, &mut spill).expect("push");
        }
        b.finish(&mut spill).expect("finish");
        assert!(created);
        assert_eq!(b.memory(), None);
        assert_eq!(b.chunked_length(), Some(100));
        // Not kept: unlinked at once, under its hashed directories.
        let name = b.file_name().expect("a file").to_path_buf();
        assert!(name.starts_with(&d));
        assert!(files(&d).is_empty());
        let mut back = vec![0; 100];
        let mut at = 0;
        while at < 100 {
            let n = b.read_at(&mut back[at..], at as u64).expect("read");
            assert!(n > 0);
            at += n;
        }
        assert_eq!(back, data);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn in_file_only_on_keeps_clean_removes() {
        for (mode, kept) in [(BodyInFileOnly::On, true), (BodyInFileOnly::Clean, false)] {
            let d = dir(if kept { "on" } else { "clean" });
            let mut seq = 0;
            let temp = TempPath {
                path: d.to_string_lossy().into_owned(),
                levels: vec![],
            };
            let mut spill = Spill {
                temp: &temp,
                prefix: Path::new("/"),
                in_file_only: mode,
                seq: &mut seq,
            };
            let mut b = RequestBody::default();
            b.start(1024, false);
            b.push(b"abc", &mut spill).expect("push");
            b.finish(&mut spill).expect("finish");
            let name = b.file_name().expect("a file").to_path_buf();
            assert_eq!(std::fs::read(&name).ok().as_deref(), Some(&b"abc"[..]));
            b.reset();
            assert_eq!(name.exists(), kept);
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn an_uncreatable_file_is_an_error_not_a_panic() {
        let mut seq = 0;
        let d = Path::new("/proc/self/no-such-dir-for-proton");
        let temp = TempPath {
            path: d.to_string_lossy().into_owned(),
            levels: vec![],
        };
        let mut spill = Spill {
            temp: &temp,
            prefix: Path::new("/"),
            in_file_only: BodyInFileOnly::Off,
            seq: &mut seq,
        };
        let mut b = RequestBody::default();
        b.start(2, false);
        let e = b.push(b"0123", &mut spill).expect_err("no file");
        assert!(e
            .to_string()
            .starts_with("open() \"/proc/self/no-such-dir-for-proton/"));
    }

    #[test]
    fn a_streamed_copy_is_kept_while_it_fits() {
        let mut b = RequestBody::default();
        b.start(4, true);
        b.push_streamed(b"ab");
        assert_eq!(b.memory(), Some(&b"ab"[..]));
        b.push_streamed(b"cde");
        assert_eq!(b.memory(), None);
        assert_eq!(b.len(), 5);
    }
}
