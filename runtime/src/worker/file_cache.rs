//! nginx's `open_file_cache`, per worker: open descriptors of static files with their size
//! and modification time, and (with `open_file_cache_errors`) failed lookups, by path.
//!
//! Semantics, as nginx's `ngx_open_cached_file`:
//! * `max`: at most this many entries; when full, the least recently used one goes.
//! * `inactive`: an entry not used for this long goes (looked for at each lookup, up to two
//!   entries from the least recently used end, as nginx's `ngx_expire_old_cached_files`).
//! * `open_file_cache_valid`: an entry older than this is looked at again before use: the
//!   path is stat'ed, and when it is no longer the same file (device and inode), it is opened
//!   anew, so a file replaced by a rename is served after at most this long.
//! * `open_file_cache_min_uses`: a descriptor is kept only once its path was asked for this
//!   many times (an entry counts the uses until then).
//! * Only regular files are kept open; directories and other files are looked up each time.
//!
//! A small body is read from the cached descriptor while the response is made; a larger one
//! (sent after the call, with sendfile) gets a duplicate of it, so the connection owns its
//! descriptor and an entry can go at any time. Nothing here blocks beyond the open/stat that
//! serving a file does anyway. A hit allocates nothing.

use proton_ir::OpenFileCache;
use rustc_hash::FxHashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What a lookup needs to know about a file besides its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) len: u64,
    pub(crate) mtime: i64,
    pub(crate) is_file: bool,
    pub(crate) is_dir: bool,
    dev: u64,
    ino: u64,
}

impl FileInfo {
    pub(crate) fn of(m: &std::fs::Metadata) -> FileInfo {
        FileInfo {
            len: m.len(),
            mtime: m.mtime(),
            is_file: m.is_file(),
            is_dir: m.is_dir(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    fn same_file(&self, m: &std::fs::Metadata) -> bool {
        self.dev == m.dev() && self.ino == m.ino()
    }
}

/// An open file: owned by the response, or shared with the cache.
pub(crate) enum FileRef {
    Owned(File),
    Shared(Rc<File>),
}

impl FileRef {
    /// A descriptor of its own for a response that outlives the call (a cached file is
    /// duplicated).
    pub(crate) fn into_owned(self) -> io::Result<File> {
        match self {
            FileRef::Owned(f) => Ok(f),
            FileRef::Shared(f) => f.try_clone(),
        }
    }
}

impl std::ops::Deref for FileRef {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            FileRef::Owned(f) => f,
            FileRef::Shared(f) => f,
        }
    }
}

/// Opens `path` for reading without blocking on a FIFO or device (such a file is refused
/// by the caller as not regular), and stats the descriptor. The second error is fstat's.
pub(crate) fn open_and_stat(path: &std::path::Path) -> Result<(File, FileInfo), OpenError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(OpenError::Open)?;
    let m = f.metadata().map_err(OpenError::Stat)?;
    let info = FileInfo::of(&m);
    Ok((f, info))
}

/// Why a file could not be served: open() or fstat() failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    Open(io::Error),
    Stat(io::Error),
}

/// Errors nginx's cache keeps with `open_file_cache_errors on`: the file is not there or
/// cannot be reached.
fn cacheable(e: &io::Error) -> Option<i32> {
    use nix::libc::{EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR};
    e.raw_os_error()
        .filter(|n| matches!(*n, ENOENT | ENOTDIR | EACCES | ELOOP | ENAMETOOLONG))
}

enum State {
    /// Asked for fewer than `min_uses` times: nothing kept yet.
    Counting,
    Open(Rc<File>, FileInfo),
    /// A stat result without a descriptor (an existence test of `try_files` or `index`, or
    /// a directory).
    Stat(FileInfo),
    /// A cached failure (errno).
    Failed(i32),
}

struct Entry {
    key: Rc<[u8]>,
    state: State,
    /// When the state was made or last checked against the file system.
    checked: Instant,
    used: Instant,
    uses: u32,
    /// Neighbours in the use order (most recent first); `NIL` at the ends.
    newer: usize,
    older: usize,
}

const NIL: usize = usize::MAX;

/// One `open_file_cache` zone of one worker.
struct FileCache {
    max: usize,
    inactive: Duration,
    map: FxHashMap<Rc<[u8]>, usize>,
    entries: slab::Slab<Entry>,
    newest: usize,
    oldest: usize,
}

/// The settings a lookup follows (`open_file_cache_valid`, `_min_uses`, `_errors`).
#[derive(Debug, Clone, Copy)]
struct Rules {
    valid: Duration,
    min_uses: u32,
    errors: bool,
}

impl Rules {
    fn of(c: &OpenFileCache) -> Rules {
        Rules {
            valid: Duration::from_millis(c.valid_ms),
            min_uses: c.min_uses,
            errors: c.errors,
        }
    }
}

/// A path from request bytes.
fn fs_path(path: &[u8]) -> &std::path::Path {
    std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path))
}

impl FileCache {
    fn new(max: u32, inactive: Duration) -> FileCache {
        FileCache {
            max: (max as usize).max(1),
            inactive,
            map: FxHashMap::default(),
            entries: slab::Slab::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    /// Entries held (descriptors, counters and failures).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Descriptors held open.
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Open(..)))
            .count()
    }

    /// Stats `path` through the cache (the existence tests of `try_files` and `index`): a
    /// fresh entry answers; otherwise the path is stat'ed and the result kept (a failure
    /// only with `open_file_cache_errors`). No descriptor is opened.
    fn stat(&mut self, path: &[u8], now: Instant, rules: Rules) -> io::Result<FileInfo> {
        self.expire(now);
        let fs_path = fs_path(path);
        let found = self.map.get(path).copied();
        if let Some(i) = found {
            self.touch(i, now);
            let e = &mut self.entries[i];
            e.uses = e.uses.saturating_add(1);
            if now.saturating_duration_since(e.checked) < rules.valid {
                match &e.state {
                    State::Open(_, info) | State::Stat(info) => return Ok(*info),
                    State::Failed(errno) => return Err(io::Error::from_raw_os_error(*errno)),
                    State::Counting => {}
                }
            }
        }
        let result = std::fs::metadata(fs_path);
        let state = match &result {
            Ok(m) => {
                let info = FileInfo::of(m);
                // A descriptor of the same file stays; another file's goes.
                match found.map(|i| &self.entries[i].state) {
                    Some(State::Open(f, old)) if old.same_file(m) => State::Open(f.clone(), info),
                    _ => State::Stat(info),
                }
            }
            Err(err) => match cacheable(err).filter(|_| rules.errors) {
                Some(errno) => State::Failed(errno),
                None if found.is_some() => State::Counting,
                None => return result.map(|m| FileInfo::of(&m)),
            },
        };
        match found {
            Some(i) => {
                let e = &mut self.entries[i];
                e.state = state;
                e.checked = now;
            }
            None => self.insert(path, state, now),
        }
        result.map(|m| FileInfo::of(&m))
    }

    /// Opens `path` through the cache.
    fn open(
        &mut self,
        path: &[u8],
        now: Instant,
        rules: Rules,
    ) -> Result<(FileRef, FileInfo), OpenError> {
        self.expire(now);
        let fs_path = fs_path(path);
        let Some(&i) = self.map.get(path) else {
            return self.miss(path, fs_path, now, rules);
        };
        self.touch(i, now);
        let e = &mut self.entries[i];
        e.uses = e.uses.saturating_add(1);
        let fresh = now.saturating_duration_since(e.checked) < rules.valid;
        let cached = match &e.state {
            State::Open(f, info) => Some((f.clone(), *info)),
            State::Failed(errno) if fresh => {
                return Err(OpenError::Open(io::Error::from_raw_os_error(*errno)))
            }
            _ => None,
        };
        if let Some((f, info)) = cached {
            if fresh {
                return Ok((FileRef::Shared(f), info));
            }
            // Revalidate: the same file (a rename puts another in its place) keeps its
            // descriptor, with its new size and time.
            if let Ok(m) = std::fs::metadata(fs_path) {
                if info.same_file(&m) && m.is_file() {
                    let info = FileInfo::of(&m);
                    e.state = State::Open(f.clone(), info);
                    e.checked = now;
                    return Ok((FileRef::Shared(f), info));
                }
            }
        }
        // Open anew (a stale entry, a stale failure, or still counting uses).
        let uses = e.uses;
        match open_and_stat(fs_path) {
            Ok((f, info)) if info.is_file && uses >= rules.min_uses => {
                let f = Rc::new(f);
                e.state = State::Open(f.clone(), info);
                e.checked = now;
                Ok((FileRef::Shared(f), info))
            }
            Ok((f, info)) => {
                e.state = State::Counting;
                e.checked = now;
                Ok((FileRef::Owned(f), info))
            }
            Err(OpenError::Open(err)) => {
                e.state = match cacheable(&err).filter(|_| rules.errors) {
                    Some(errno) => State::Failed(errno),
                    None => State::Counting,
                };
                e.checked = now;
                Err(OpenError::Open(err))
            }
            Err(err) => {
                e.state = State::Counting;
                Err(err)
            }
        }
    }

    fn miss(
        &mut self,
        path: &[u8],
        fs_path: &std::path::Path,
        now: Instant,
        rules: Rules,
    ) -> Result<(FileRef, FileInfo), OpenError> {
        let result = open_and_stat(fs_path);
        let (state, answer) = match result {
            Ok((f, info)) if info.is_file && rules.min_uses <= 1 => {
                let f = Rc::new(f);
                (State::Open(f.clone(), info), Ok((FileRef::Shared(f), info)))
            }
            Ok((f, info)) => (State::Counting, Ok((FileRef::Owned(f), info))),
            Err(OpenError::Open(err)) => match cacheable(&err).filter(|_| rules.errors) {
                Some(errno) => (State::Failed(errno), Err(OpenError::Open(err))),
                // As nginx: a failure is not remembered without open_file_cache_errors.
                None => return Err(OpenError::Open(err)),
            },
            Err(err) => return Err(err),
        };
        self.insert(path, state, now);
        answer
    }

    /// A new entry, making room first when the cache is full.
    fn insert(&mut self, path: &[u8], state: State, now: Instant) {
        if self.entries.len() >= self.max && self.oldest != NIL {
            self.remove(self.oldest);
        }
        let key: Rc<[u8]> = Rc::from(path);
        let i = self.entries.insert(Entry {
            key: key.clone(),
            state,
            checked: now,
            used: now,
            uses: 1,
            newer: NIL,
            older: NIL,
        });
        self.map.insert(key, i);
        self.link_newest(i);
    }

    /// Drops up to two entries unused for `inactive`, oldest first.
    fn expire(&mut self, now: Instant) {
        for _ in 0..2 {
            let i = self.oldest;
            if i == NIL || now.saturating_duration_since(self.entries[i].used) < self.inactive {
                return;
            }
            self.remove(i);
        }
    }

    fn remove(&mut self, i: usize) {
        self.unlink(i);
        let e = self.entries.remove(i);
        self.map.remove(&e.key);
        // Dropping `e` closes its descriptor unless a response still sends from it.
    }

    fn touch(&mut self, i: usize, now: Instant) {
        self.entries[i].used = now;
        if self.newest != i {
            self.unlink(i);
            self.link_newest(i);
        }
    }

    fn link_newest(&mut self, i: usize) {
        let old_newest = self.newest;
        {
            let e = &mut self.entries[i];
            e.newer = NIL;
            e.older = old_newest;
        }
        if old_newest != NIL {
            self.entries[old_newest].newer = i;
        }
        self.newest = i;
        if self.oldest == NIL {
            self.oldest = i;
        }
    }

    fn unlink(&mut self, i: usize) {
        let (newer, older) = (self.entries[i].newer, self.entries[i].older);
        if newer != NIL {
            self.entries[newer].older = older;
        } else {
            self.newest = older;
        }
        if older != NIL {
            self.entries[older].newer = newer;
        } else {
            self.oldest = newer;
        }
        let e = &mut self.entries[i];
        e.newer = NIL;
        e.older = NIL;
    }
}

/// A worker's caches, one per `open_file_cache` directive (zone id), made on first use.
#[derive(Default)]
pub(crate) struct FileCaches {
    zones: Vec<Option<FileCache>>,
}

impl FileCaches {
    /// Opens `path` for a location whose `open_file_cache` settings are `conf` (without a
    /// cache: a plain open and fstat).
    pub(crate) fn open(
        &mut self,
        conf: &OpenFileCache,
        path: &[u8],
        now: Instant,
    ) -> Result<(FileRef, FileInfo), OpenError> {
        match &conf.cache {
            Some(zone) => self.zone(zone).open(path, now, Rules::of(conf)),
            None => open_and_stat(fs_path(path)).map(|(f, info)| (FileRef::Owned(f), info)),
        }
    }

    /// Stats `path` for a location whose `open_file_cache` settings are `conf`.
    pub(crate) fn stat(
        &mut self,
        conf: &OpenFileCache,
        path: &[u8],
        now: Instant,
    ) -> io::Result<FileInfo> {
        match &conf.cache {
            Some(zone) => self.zone(zone).stat(path, now, Rules::of(conf)),
            None => std::fs::metadata(fs_path(path)).map(|m| FileInfo::of(&m)),
        }
    }

    /// The cache of `zone`.
    fn zone(&mut self, zone: &proton_ir::FileCacheZone) -> &mut FileCache {
        let id = zone.id as usize;
        if self.zones.len() <= id {
            self.zones.resize_with(id + 1, || None);
        }
        self.zones[id].get_or_insert_with(|| {
            FileCache::new(zone.max, Duration::from_millis(zone.inactive_ms))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rules(valid_ms: u64, min_uses: u32, errors: bool) -> Rules {
        Rules {
            valid: Duration::from_millis(valid_ms),
            min_uses,
            errors,
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("proton-fc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(p: &std::path::Path, body: &[u8]) {
        std::fs::File::create(p).unwrap().write_all(body).unwrap();
    }

    fn read(f: &FileRef) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mut b = vec![0; 64];
        let n = f.read_at(&mut b, 0).unwrap();
        b.truncate(n);
        b
    }

    fn bytes(p: &std::path::Path) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())
    }

    #[test]
    fn keeps_at_most_max_descriptors_and_drops_the_least_recently_used() {
        let d = dir("max");
        let mut c = FileCache::new(2, Duration::from_secs(60));
        let now = Instant::now();
        let paths: Vec<_> = (0..5).map(|i| d.join(format!("f{i}"))).collect();
        for p in &paths {
            write(p, b"x");
            c.open(bytes(p), now, rules(60_000, 1, false)).ok().unwrap();
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.open_count(), 2);
        // The two newest stay.
        assert!(c.map.contains_key(bytes(&paths[4])));
        assert!(c.map.contains_key(bytes(&paths[3])));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_replaced_file_is_seen_after_the_validity_time() {
        let d = dir("valid");
        let p = d.join("f");
        write(&p, b"one");
        let mut c = FileCache::new(8, Duration::from_secs(60));
        let t0 = Instant::now();
        let r = rules(1000, 1, false);
        assert_eq!(read(&c.open(bytes(&p), t0, r).ok().unwrap().0), b"one");
        let tmp = d.join("f.new");
        write(&tmp, b"two!");
        std::fs::rename(&tmp, &p).unwrap();
        // Within the validity time: the cached descriptor (nginx does the same).
        let (f, info) = c
            .open(bytes(&p), t0 + Duration::from_millis(500), r)
            .ok()
            .unwrap();
        assert_eq!((read(&f), info.len), (b"one".to_vec(), 3));
        let (f, info) = c
            .open(bytes(&p), t0 + Duration::from_millis(1000), r)
            .ok()
            .unwrap();
        assert_eq!((read(&f), info.len), (b"two!".to_vec(), 4));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn errors_are_cached_only_with_open_file_cache_errors() {
        let d = dir("errors");
        let p = d.join("missing");
        let t0 = Instant::now();
        let mut c = FileCache::new(8, Duration::from_secs(60));
        assert!(c.open(bytes(&p), t0, rules(60_000, 1, false)).is_err());
        assert_eq!(c.len(), 0);
        assert!(c.open(bytes(&p), t0, rules(60_000, 1, true)).is_err());
        assert_eq!(c.len(), 1);
        write(&p, b"now here");
        // Still the cached failure within the validity time, then the file.
        assert!(c.open(bytes(&p), t0, rules(60_000, 1, true)).is_err());
        let later = t0 + Duration::from_secs(61);
        assert!(c.open(bytes(&p), later, rules(60_000, 1, true)).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn existence_tests_are_cached_and_share_the_entry() {
        let d = dir("stat");
        let p = d.join("f");
        let t0 = Instant::now();
        let mut c = FileCache::new(8, Duration::from_secs(60));
        let r = rules(60_000, 1, true);
        assert!(c.stat(bytes(&p), t0, r).is_err());
        write(&p, b"abc");
        // The cached failure holds for the validity time…
        assert!(c.stat(bytes(&p), t0, r).is_err());
        let later = t0 + Duration::from_secs(60);
        let info = c.stat(bytes(&p), later, r).ok().unwrap();
        assert!(info.is_file && info.len == 3);
        // …and opening it afterwards uses the same entry.
        assert_eq!(read(&c.open(bytes(&p), later, r).ok().unwrap().0), b"abc");
        assert_eq!((c.len(), c.open_count()), (1, 1));
        assert!(c.stat(bytes(&d), later, r).ok().unwrap().is_dir);
        assert_eq!((c.len(), c.open_count()), (2, 1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn min_uses_and_inactive() {
        let d = dir("uses");
        let p = d.join("f");
        write(&p, b"x");
        let t0 = Instant::now();
        let mut c = FileCache::new(8, Duration::from_secs(10));
        let r = rules(60_000, 3, false);
        assert!(matches!(
            c.open(bytes(&p), t0, r).ok().unwrap().0,
            FileRef::Owned(_)
        ));
        assert!(matches!(
            c.open(bytes(&p), t0, r).ok().unwrap().0,
            FileRef::Owned(_)
        ));
        assert!(matches!(
            c.open(bytes(&p), t0, r).ok().unwrap().0,
            FileRef::Shared(_)
        ));
        assert_eq!(c.open_count(), 1);
        // Unused for `inactive`: gone at the next lookup (of anything).
        let q = d.join("g");
        write(&q, b"y");
        let _ = c.open(bytes(&q), t0 + Duration::from_secs(11), r);
        assert!(!c.map.contains_key(bytes(&p)));
        let _ = std::fs::remove_dir_all(&d);
    }
}
