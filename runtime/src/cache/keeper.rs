//! nginx's cache loader and cache manager, as steps on the event loop of each generation's
//! first worker (as the active health checks are), bounded so that serving goes on:
//!
//! * the **loader** walks each cache's directory once per zone's lifetime (a reload that
//!   keeps the zone does not walk it again), `loader_files` files a step, a step every
//!   `loader_sleep`, and tells the index of every object it finds (its size counts towards
//!   `max_size`, its entry towards `inactive` from now). A damaged object is removed; a
//!   temporary file not written to for an hour (a worker died writing it) is removed.
//!   Until it is through, a request for a key the index does not know still finds the
//!   object on disk (`cache_lookup`).
//! * the **manager** removes, from the least recently used end, objects unused for
//!   `inactive`, and objects while the files take more than `max_size` or leave less than
//!   `min_free` on the file system: `manager_files` files a step, a step every
//!   `manager_sleep` while there is work, else once a second.
//!
//! A step also stops after `loader_threshold` / `manager_threshold`, and never runs longer
//! than [`STEP_CAP`]: nginx's loader and manager are processes of their own that may block
//! for their threshold; here the step shares the loop with connections.

use super::file::{relative_path, Meta, HEADER_LEN};
use super::index::{Evicted, Index};
use proton_ir::{CacheZone, LogLevel};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The longest a step runs, whatever the zone's thresholds say.
pub const STEP_CAP: Duration = Duration::from_millis(20);

/// A temporary file older than this (since its last write) is a dead worker's.
const TEMP_ABANDONED: Duration = Duration::from_secs(3600);

/// How often the manager looks when it found nothing to do.
const IDLE: Duration = Duration::from_secs(1);

/// Logs a line.
pub type LogFn<'a> = &'a mut dyn FnMut(LogLevel, std::fmt::Arguments<'_>);

struct Zone {
    index: Index,
    conf: CacheZone,
    root: PathBuf,
    /// The loader's place (`None`: through, or never).
    walk: Option<Walk>,
    next_load: Instant,
    next_manage: Instant,
}

/// The loader and manager of every cache zone.
pub struct Keeper {
    zones: Vec<Zone>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The MD5 a 32-hex-digit file name spells.
fn md5_of(name: &[u8]) -> Option<[u8; 16]> {
    if name.len() != 32 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut md5 = [0u8; 16];
    for (i, pair) in name.chunks(2).enumerate() {
        md5[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(md5)
}

impl Keeper {
    /// A keeper for `zones` (the IR's, with their indexes, paths relative to `prefix`).
    pub fn new(zones: &[CacheZone], indexes: &[Index], prefix: &Path, now: Instant) -> Keeper {
        let zones = zones
            .iter()
            .zip(indexes)
            .map(|(conf, index)| Zone {
                index: index.clone(),
                conf: conf.clone(),
                root: prefix.join(&conf.path),
                walk: None,
                next_load: now,
                next_manage: now,
            })
            .map(|mut z| {
                if !z.index.loaded() {
                    z.walk = Walk::new(&z.root, z.conf.levels.len());
                    if z.walk.is_none() {
                        // (Nothing to load: no directory yet.)
                        z.index.set_loaded();
                    }
                }
                z
            })
            .collect();
        Keeper { zones }
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// When a step is due next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.zones
            .iter()
            .flat_map(|z| [z.walk.is_some().then_some(z.next_load), Some(z.next_manage)])
            .flatten()
            .min()
    }

    /// Runs the steps that are due.
    pub fn run(&mut self, now: Instant, log: LogFn<'_>) {
        for z in &mut self.zones {
            if z.walk.is_some() && now >= z.next_load {
                z.load_step(now, log);
                z.next_load = now + Duration::from_millis(z.conf.loader_sleep_ms);
            }
            if now >= z.next_manage {
                let busy = z.manage_step(now, log);
                z.next_manage = if busy {
                    now + Duration::from_millis(z.conf.manager_sleep_ms)
                } else {
                    now + IDLE
                };
            }
        }
    }
}

impl Zone {
    fn cap(&self, threshold_ms: u64) -> Duration {
        Duration::from_millis(threshold_ms).min(STEP_CAP)
    }

    /// Up to `loader_files` directory entries.
    fn load_step(&mut self, start: Instant, log: LogFn<'_>) {
        let cap = self.cap(self.conf.loader_threshold_ms);
        let now = unix_now();
        let mut seen = 0u32;
        let mut full = false;
        let mut through = false;
        let Some(walk) = self.walk.as_mut() else {
            return;
        };
        while seen < self.conf.loader_files.max(1) && start.elapsed() < cap {
            let found = match walk.next(&mut seen) {
                None => {
                    through = true;
                    break;
                }
                Some(f) => f,
            };
            match found {
                Found::Other => {}
                Found::Temp(entry) => {
                    // A temporary file: a dead worker's when untouched for an hour.
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age >= TEMP_ABANDONED);
                    let path = entry.path();
                    if old && std::fs::remove_file(&path).is_ok() {
                        log(
                            LogLevel::Notice,
                            format_args!(
                                "removed abandoned cache temporary file \"{}\"",
                                path.display()
                            ),
                        );
                    }
                }
                Found::Object(entry, md5) => {
                    let path = entry.path();
                    match read_meta(&path) {
                        Some((meta, len, _)) if len == meta.file_len() => {
                            let inactive = self.conf.inactive_secs;
                            if !self.index.load(&md5, meta.valid_sec, len, now, inactive) {
                                full = true;
                                break;
                            }
                        }
                        _ => {
                            log(
                                LogLevel::Crit,
                                format_args!(
                                    "cache file \"{}\" has incorrect header or length, removed by the cache loader",
                                    path.display()
                                ),
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
            }
        }
        if full {
            log(
                LogLevel::Warn,
                format_args!(
                    "cache keys zone \"{}\" is full: the cache loader stops (objects not loaded are found on disk when asked for)",
                    self.conf.name
                ),
            );
        }
        if full || through {
            self.walk = None;
            self.index.set_loaded();
            log(
                LogLevel::Notice,
                format_args!(
                    "cache \"{}\" loaded: {} bytes in its files",
                    self.conf.name,
                    self.index.size()
                ),
            );
        }
    }

    /// Up to `manager_files` removals; true when there may be more to do.
    fn manage_step(&mut self, start: Instant, log: LogFn<'_>) -> bool {
        let cap = self.cap(self.conf.manager_threshold_ms);
        let now = unix_now();
        // min_free: the file system keeps that much free.
        let mut target = self.conf.max_size;
        if let Some(min_free) = self.conf.min_free {
            if let Ok(st) = nix::sys::statvfs::statvfs(&self.root) {
                let free = st.blocks_available().saturating_mul(st.fragment_size());
                if free < min_free {
                    let want = self.index.size().saturating_sub(min_free - free);
                    target = Some(target.map_or(want, |t| t.min(want)));
                }
            }
        }
        let mut removed = 0u32;
        let mut rel = String::new();
        loop {
            let mut ev = Evicted::default();
            self.index.expire(now, target, &mut ev);
            for md5 in ev.iter() {
                rel.clear();
                relative_path(&self.conf.levels, md5, &mut rel);
                let path = self.root.join(&rel);
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        log(
                            LogLevel::Crit,
                            format_args!("unlink() \"{}\" failed ({e})", path.display()),
                        );
                    }
                }
                removed += 1;
            }
            if ev.n == 0 {
                return false;
            }
            if removed >= self.conf.manager_files.max(1) || start.elapsed() >= cap {
                return true;
            }
        }
    }
}

/// An object file's header, length, and open file.
fn read_meta(path: &Path) -> Option<(Meta, u64, std::fs::File)> {
    let f = std::fs::File::open(path).ok()?;
    let mut h = [0u8; HEADER_LEN];
    f.read_exact_at(&mut h, 0).ok()?;
    let meta = Meta::decode(&h)?;
    let len = f.metadata().ok()?.len();
    Some((meta, len, f))
}

/// A walk through a cache's directory, one entry at a time, so that it can be done in
/// steps: the open directories, deepest last. Objects are the 32-hex-digit names at the
/// depth of the cache's `levels`; temporary files the 10-digit names at its top.
pub struct Walk {
    stack: Vec<(std::fs::ReadDir, usize)>,
    levels: usize,
}

/// What [`Walk::next`] read.
pub enum Found {
    Object(std::fs::DirEntry, [u8; 16]),
    Temp(std::fs::DirEntry),
    /// A directory (entered when it is a level's), or anything else.
    Other,
}

impl Walk {
    /// A walk of `root` (`None` when it cannot be read: no directory yet).
    pub fn new(root: &Path, levels: usize) -> Option<Walk> {
        let d = std::fs::read_dir(root).ok()?;
        Some(Walk {
            stack: vec![(d, 0)],
            levels,
        })
    }

    /// The next entry (`seen` counts the entries read); `None` when the walk is through.
    pub fn next(&mut self, seen: &mut u32) -> Option<Found> {
        loop {
            let (dir, depth) = self.stack.last_mut()?;
            let depth = *depth;
            let Some(entry) = dir.next() else {
                self.stack.pop();
                continue;
            };
            *seen += 1;
            let Ok(entry) = entry else {
                return Some(Found::Other);
            };
            let Ok(kind) = entry.file_type() else {
                return Some(Found::Other);
            };
            if kind.is_dir() {
                if depth < self.levels {
                    if let Ok(d) = std::fs::read_dir(entry.path()) {
                        self.stack.push((d, depth + 1));
                    }
                }
                return Some(Found::Other);
            }
            if !kind.is_file() {
                return Some(Found::Other);
            }
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if depth == 0 && name.len() == 10 && name.iter().all(u8::is_ascii_digit) {
                return Some(Found::Temp(entry));
            }
            return Some(match md5_of(name).filter(|_| depth == self.levels) {
                Some(md5) => Found::Object(entry, md5),
                None => Found::Other,
            });
        }
    }
}

/// A purge of every object whose key starts with `prefix` (or is `prefix`, `exact`), by
/// reading each object's key, in steps (`proxy_cache_purge` with a wildcard key, or an
/// exact key whose answer varied: each variant is a file of its own).
pub struct Purge {
    walk: Option<Walk>,
    prefix: Vec<u8>,
    exact: bool,
    /// Objects removed so far.
    pub removed: u32,
    /// A key's first bytes, read for the comparison.
    key: Vec<u8>,
}

impl Purge {
    pub fn new(root: &Path, levels: usize, prefix: &[u8], exact: bool) -> Purge {
        Purge {
            walk: Walk::new(root, levels),
            prefix: prefix.to_vec(),
            exact,
            removed: 0,
            key: Vec::with_capacity(prefix.len()),
        }
    }

    /// Up to `files` directory entries, for at most [`STEP_CAP`]; true when through.
    pub fn step(&mut self, index: &Index, files: u32, log: LogFn<'_>) -> bool {
        let start = Instant::now();
        let mut seen = 0u32;
        while seen < files.max(1) && start.elapsed() < STEP_CAP {
            let Some(walk) = self.walk.as_mut() else {
                return true;
            };
            let found = match walk.next(&mut seen) {
                None => {
                    self.walk = None;
                    return true;
                }
                Some(f) => f,
            };
            let Found::Object(entry, md5) = found else {
                continue;
            };
            let path = entry.path();
            let Some((meta, _, file)) = read_meta(&path) else {
                continue;
            };
            let len = meta.key_len as usize;
            if len < self.prefix.len() || (self.exact && len != self.prefix.len()) {
                continue;
            }
            self.key.clear();
            self.key.resize(self.prefix.len(), 0);
            if file
                .read_exact_at(&mut self.key, meta.key_start() + 5)
                .is_err()
                || self.key != self.prefix
            {
                continue;
            }
            index.forget(&md5);
            match std::fs::remove_file(&path) {
                Ok(()) => self.removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log(
                    LogLevel::Crit,
                    format_args!("unlink() \"{}\" failed ({e})", path.display()),
                ),
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_md5_digits() {
        let md5 = md5_of(b"00ff10a0000000000000000000000001").unwrap();
        assert_eq!(&md5[..4], &[0x00, 0xff, 0x10, 0xa0]);
        assert_eq!(md5[15], 1);
        assert_eq!(md5_of(b"00FF10a0000000000000000000000001"), None);
        assert_eq!(md5_of(b"0000000001"), None);
    }
}
