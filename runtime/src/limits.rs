//! The zones of `limit_req_zone` and `limit_conn_zone`: per-key state in memory shared by
//! the master and every worker, mapped by the master before it forks (see
//! `shared::map_shared_zeroed`), so that all workers count the same requests.
//!
//! A zone is one anonymous `MAP_SHARED` mapping of the size the directive gives:
//!
//! * a header: the lock word (the pid of the process holding it, 0 when free);
//! * the table, read and written only under the lock: the LRU list's ends, the bump
//!   pointer and one free list per size class, then the hash buckets, then the cells.
//!
//! An entry (node) is a run of 64-byte cells, a power of two of them (its size class):
//! a 48-byte head (hash, LRU links, bucket chain, key length, count, last time, excess)
//! and the key. Entries are found by the hash of the key and compared on the full key.
//! A freed entry goes on its class's free list; when neither a free entry nor fresh cells
//! are left, `limit_req` drops the least recently used entries as nginx does (see
//! [`Zone::req_lookup`]), `limit_conn` refuses.
//!
//! The lock is a spinlock on an atomic word in the mapping (no lock of the standard library
//! crosses `fork`). A process that dies holding it would stop every worker: a waiter that
//! spun long finds whether the holder is alive (`kill(pid, 0)`) and takes the lock over when
//! it is not. Every access to the table goes through bounds-checked slices, so a table left
//! half-updated by a dead holder can give wrong counts but never a crash.
//!
//! The zones made by this (master) process are remembered by (name, size, kind): a reload
//! that keeps them gets the same mappings, and their state, as nginx reuses its shared
//! memory zones. They are never unmapped (old workers may still be using them).

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of the header before the table (the lock word and padding).
const HEADER: usize = 64;
/// Bytes of a cell.
const CELL: usize = 64;
/// Bytes of a node's head before its key.
pub(crate) const NODE_HEAD: usize = 48;
/// Size classes: 1, 2, 4 … 2048 cells (a 65535-byte key needs 1025).
const CLASSES: usize = 12;
/// Bytes of the table's own fields: LRU head and tail, bump, count, free lists, then 16
/// bytes for the user of the table ([`USER`]).
const META: usize = 16 + 4 * CLASSES + 16;
/// Two words of the table for its user (a cache: the bytes its files take, and whether its
/// loader has been through the directory).
pub(crate) const USER: usize = 16 + 4 * CLASSES;

// Offsets in the table.
const LRU_HEAD: usize = 0;
pub(crate) const LRU_TAIL: usize = 4;
const BUMP: usize = 8;
const FREE: usize = 16;

// Offsets in a node.
const N_HASH: usize = 0;
pub(crate) const N_PREV: usize = 8;
const N_NEXT: usize = 12;
const N_CHAIN: usize = 16;
const N_LEN: usize = 20;
const N_CLASS: usize = 24;
const N_COUNT: usize = 28;
const N_LAST: usize = 32;
const N_EXCESS: usize = 40;

/// What a zone counts (as `proton_ir::LimitZoneKind`, without the rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Req,
    Conn,
    /// A content cache's index (`crate::cache::index`).
    Cache,
}

/// One zone.
pub struct Zone {
    base: NonNull<u8>,
    len: usize,
    /// Buckets (a power of two) and cells of the table.
    buckets: usize,
    cells: usize,
    name: String,
}

// SAFETY: the lock word is only accessed through an atomic, and the table only by a
// process (and thread) holding the lock, through a slice made while holding it; so a
// `Zone` may be used from any thread.
unsafe impl Send for Zone {}
// SAFETY: as above.
unsafe impl Sync for Zone {}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.name)
            .field("cells", &self.cells)
            .finish()
    }
}

type Zones = Vec<(String, u64, Kind, Arc<Zone>)>;
/// The zones made so far by this process (the master), for reloads.
static ZONES: Mutex<Zones> = Mutex::new(Vec::new());

/// What [`Zone::req_lookup`] found (nginx's `NGX_BUSY`, `NGX_OK`, `NGX_AGAIN`,
/// `NGX_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqLookup {
    /// Over the burst: refuse. The excess it would have had, in milli-requests.
    Busy(u64),
    /// The last limit: accounted, with this excess.
    Ok(u64),
    /// Not the last limit: the node is held (its count raised) until accounted or released.
    Again { node: u32, excess: u64 },
    /// No room for a new entry.
    NoMemory,
}

/// What [`Zone::conn_acquire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnAcquire {
    /// Counted: release `node` when the request ends.
    Held(u32),
    /// The key has `limit` requests in progress already.
    Busy,
    /// No room for a new entry.
    NoMemory,
}

/// Milliseconds since `last` as nginx's limit_req takes them: a time far in the future (a
/// clock step back) counts as 1 ms, one slightly in the future as 0.
pub fn elapsed_ms(now: u64, last: u64) -> i64 {
    let ms = now.wrapping_sub(last) as i64;
    if ms < -60_000 {
        1
    } else {
        ms.max(0)
    }
}

/// The leaky bucket: the excess (milli-requests) of a key whose excess was `excess` `ms`
/// ago, with this request added; never below 0. `rate` is in milli-requests per second.
pub fn leak(excess: i64, rate: u64, ms: i64) -> i64 {
    let e = i128::from(excess) - i128::from(rate) * i128::from(ms) / 1000 + 1000;
    e.clamp(0, i128::from(i64::MAX)) as i64
}

/// How long a request with `excess` waits under a limit that lets `delay` of it through
/// at once (milliseconds; nginx's `(excess - delay) * 1000 / rate`).
pub fn delay_ms(excess: u64, delay: u64, rate: u64) -> u64 {
    if excess <= delay || rate == 0 {
        return 0;
    }
    ((u128::from(excess - delay) * 1000) / u128::from(rate)).min(u128::from(u64::MAX)) as u64
}

/// A well-distributed 64-bit hash of a key (the same in every process).
pub fn hash(key: &[u8]) -> u64 {
    // FNV-1a, then a final mix so that the low bits (the bucket) depend on every byte.
    let mut h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// This process's id as the lock word holds it, kept so that a lock costs no system call;
/// 0: not known yet. A forked child calls [`forget_pid`] at once (it would otherwise hold
/// its parent's).
static PID: AtomicU32 = AtomicU32::new(0);

fn my_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id().max(1);
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// After `fork`, in the child: the process id is looked up again.
pub fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// Milliseconds of CLOCK_MONOTONIC (system-wide: the same in every process).
pub fn now_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        (t.tv_sec() as u64)
            .saturating_mul(1000)
            .saturating_add(t.tv_nsec() as u64 / 1_000_000)
    })
}

pub(crate) fn rd32(m: &[u8], at: usize) -> u32 {
    m.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

pub(crate) fn wr32(m: &mut [u8], at: usize, v: u32) {
    if let Some(b) = m.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_ne_bytes());
    }
}

pub(crate) fn rd64(m: &[u8], at: usize) -> u64 {
    m.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

pub(crate) fn wr64(m: &mut [u8], at: usize, v: u64) {
    if let Some(b) = m.get_mut(at..at + 8) {
        b.copy_from_slice(&v.to_ne_bytes());
    }
}

/// The size class of a node with a key of `len` bytes.
fn class_of(len: usize) -> usize {
    let cells = (NODE_HEAD + len).div_ceil(CELL);
    cells.next_power_of_two().trailing_zeros() as usize
}

impl Zone {
    /// The zone `name` of `size` bytes and this kind: the one this process made earlier
    /// with the same name, size and kind (a reload), else a new one.
    pub fn get(name: &str, size: u64, kind: Kind) -> Result<Arc<Zone>, String> {
        let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((.., z)) = zones
            .iter()
            .find(|(n, s, k, _)| n == name && *s == size && *k == kind)
        {
            return Ok(z.clone());
        }
        let z = Arc::new(Zone::new(name, size)?);
        zones.push((name.to_string(), size, kind, z.clone()));
        Ok(z)
    }

    /// A new zone of `size` bytes (at least a header, the table's fields and a few cells).
    pub fn new(name: &str, size: u64) -> Result<Zone, String> {
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l >= HEADER + META + 64 * (CELL + 1))
            .ok_or_else(|| format!("limit zone \"{name}\" of {size} bytes is too small"))?;
        let len = len.div_ceil(4096) * 4096;
        let room = len - HEADER - META;
        // A bucket (4 bytes) per two cells, a power of two.
        let cells_guess = room / (CELL + 2);
        let buckets = (cells_guess / 2).next_power_of_two().max(1);
        let cells = (room - buckets * 4) / CELL;
        let ptr =
            crate::shared::map_shared_zeroed(NonZeroUsize::new(len).ok_or("empty limit zone")?)
                .map_err(|e| format!("cannot map limit zone \"{name}\" ({size} bytes): {e}"))?;
        Ok(Zone {
            base: ptr.cast::<u8>(),
            len,
            buckets,
            cells,
            name: name.to_string(),
        })
    }

    /// The zone's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many entries with keys of `key_len` bytes fit at most.
    pub fn capacity(&self, key_len: usize) -> usize {
        self.cells >> class_of(key_len)
    }

    fn lock_word(&self) -> &AtomicU32 {
        // SAFETY: the mapping is page-aligned, at least HEADER bytes long, zero-filled (a
        // valid AtomicU32) and never unmapped; the word is only accessed atomically.
        unsafe { &*self.base.as_ptr().cast::<AtomicU32>() }
    }

    /// Takes the lock (see the module's doc) and gives the table.
    pub(crate) fn lock(&self) -> Table<'_> {
        let me = my_pid();
        let word = self.lock_word();
        let mut spins = 0u32;
        loop {
            let held = word.load(Ordering::Relaxed);
            if held == 0 {
                if word
                    .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
                continue;
            }
            spins = spins.wrapping_add(1);
            if spins < 64 {
                std::hint::spin_loop();
                continue;
            }
            std::thread::yield_now();
            // Held for long: by a process that is gone (killed while holding it)?
            if spins.is_multiple_of(4096) {
                let pid = nix::unistd::Pid::from_raw(held as i32);
                let gone = held == me
                    || matches!(
                        nix::sys::signal::kill(pid, None),
                        Err(nix::errno::Errno::ESRCH)
                    );
                if gone
                    && word
                        .compare_exchange(held, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    break;
                }
            }
        }
        // SAFETY: this process holds the lock, and every other user of the table takes it
        // before making its own slice, so nothing else reads or writes these bytes until
        // `Table` is dropped (which releases the lock). They lie inside the mapping
        // (HEADER..len), which is never unmapped.
        let mem = unsafe {
            std::slice::from_raw_parts_mut(self.base.as_ptr().add(HEADER), self.len - HEADER)
        };
        Table {
            zone: self,
            mem,
            word,
        }
    }

    /// nginx's `ngx_http_limit_req_lookup` for one limit: the key's bucket leaks since its
    /// last request and takes this one. `account`: the last limit of the request, whose
    /// excess is stored at once; the other limits hold their node (see [`Self::req_account`]).
    pub fn req_lookup(
        &self,
        h: u64,
        key: &[u8],
        now: u64,
        rate: u64,
        burst: u64,
        account: bool,
    ) -> ReqLookup {
        let mut t = self.lock();
        if let Some(n) = t.find(h, key) {
            t.lru_unlink(n);
            t.lru_push_head(n);
            let at = t.node(n);
            let ms = elapsed_ms(now, rd64(t.mem, at + N_LAST));
            let excess = leak(rd64(t.mem, at + N_EXCESS) as i64, rate, ms) as u64;
            if excess > burst {
                return ReqLookup::Busy(excess);
            }
            if account {
                wr64(t.mem, at + N_EXCESS, excess);
                if ms != 0 {
                    wr64(t.mem, at + N_LAST, now);
                }
                return ReqLookup::Ok(excess);
            }
            let c = rd32(t.mem, at + N_COUNT);
            wr32(t.mem, at + N_COUNT, c.saturating_add(1));
            return ReqLookup::Again { node: n, excess };
        }
        t.req_expire(now, rate, 1);
        let n = match t.alloc(key.len()) {
            Some(n) => n,
            None => {
                t.req_expire(now, rate, 0);
                match t.alloc(key.len()) {
                    Some(n) => n,
                    None => return ReqLookup::NoMemory,
                }
            }
        };
        t.insert(n, h, key);
        let at = t.node(n);
        wr64(t.mem, at + N_EXCESS, 0);
        if account {
            wr64(t.mem, at + N_LAST, now);
            wr32(t.mem, at + N_COUNT, 0);
            return ReqLookup::Ok(0);
        }
        wr64(t.mem, at + N_LAST, 0);
        wr32(t.mem, at + N_COUNT, 1);
        ReqLookup::Again { node: n, excess: 0 }
    }

    /// nginx's accounting of a limit that was not the last: its node leaks again and
    /// takes the request, and is no longer held. Returns its excess.
    pub fn req_account(&self, node: u32, now: u64, rate: u64) -> u64 {
        let t = self.lock();
        let at = t.node(node);
        let ms = elapsed_ms(now, rd64(t.mem, at + N_LAST));
        let excess = leak(rd64(t.mem, at + N_EXCESS) as i64, rate, ms);
        if ms != 0 {
            wr64(t.mem, at + N_LAST, now);
        }
        wr64(t.mem, at + N_EXCESS, excess as u64);
        let c = rd32(t.mem, at + N_COUNT);
        wr32(t.mem, at + N_COUNT, c.saturating_sub(1));
        excess as u64
    }

    /// A held node is let go without accounting (a later limit refused the request).
    pub fn req_release(&self, node: u32) {
        let t = self.lock();
        let at = t.node(node);
        let c = rd32(t.mem, at + N_COUNT);
        wr32(t.mem, at + N_COUNT, c.saturating_sub(1));
    }

    /// nginx's limit_conn: counts one more request in progress for `key` unless it has
    /// `limit` already.
    pub fn conn_acquire(&self, h: u64, key: &[u8], limit: u32) -> ConnAcquire {
        let mut t = self.lock();
        if let Some(n) = t.find(h, key) {
            let at = t.node(n);
            let c = rd32(t.mem, at + N_COUNT);
            if c >= limit {
                return ConnAcquire::Busy;
            }
            wr32(t.mem, at + N_COUNT, c + 1);
            return ConnAcquire::Held(n);
        }
        let Some(n) = t.alloc(key.len()) else {
            return ConnAcquire::NoMemory;
        };
        t.insert(n, h, key);
        let at = t.node(n);
        wr32(t.mem, at + N_COUNT, 1);
        ConnAcquire::Held(n)
    }

    /// The request counted on `node` (whose key hashes to `h`) ended: one less in
    /// progress; the entry goes when none is left.
    pub fn conn_release(&self, node: u32, h: u64) {
        let mut t = self.lock();
        let at = t.node(node);
        if rd64(t.mem, at + N_HASH) != h {
            return;
        }
        let c = rd32(t.mem, at + N_COUNT).saturating_sub(1);
        wr32(t.mem, at + N_COUNT, c);
        if c == 0 {
            t.remove(node);
        }
    }

    /// The requests in progress counted for `key` (tests).
    pub fn conn_count(&self, key: &[u8]) -> u32 {
        let t = self.lock();
        t.find(hash(key), key)
            .map_or(0, |n| rd32(t.mem, t.node(n) + N_COUNT))
    }

    /// How many entries the zone holds (tests).
    pub fn entries(&self) -> usize {
        let t = self.lock();
        let mut n = rd32(t.mem, LRU_HEAD);
        let mut count = 0;
        while n != 0 && count <= self.cells {
            count += 1;
            n = rd32(t.mem, t.node(n) + N_NEXT);
        }
        count
    }
}

/// The table of a locked zone; the lock is released when it is dropped.
pub(crate) struct Table<'z> {
    zone: &'z Zone,
    pub(crate) mem: &'z mut [u8],
    word: &'z AtomicU32,
}

impl Drop for Table<'_> {
    fn drop(&mut self) {
        self.word.store(0, Ordering::Release);
    }
}

impl Table<'_> {
    fn buckets_at(&self) -> usize {
        META
    }

    /// Byte offset of node `n` (1-based cell number; 0 is "none").
    pub(crate) fn node(&self, n: u32) -> usize {
        META + self.zone.buckets * 4 + (n as usize).saturating_sub(1) * CELL
    }

    fn bucket(&self, h: u64) -> usize {
        self.buckets_at() + (h as usize & (self.zone.buckets - 1)) * 4
    }

    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        let mut n = rd32(self.mem, self.bucket(h));
        let mut steps = 0;
        while n != 0 && steps <= self.zone.cells {
            let at = self.node(n);
            if rd64(self.mem, at + N_HASH) == h
                && rd32(self.mem, at + N_LEN) as usize == key.len()
                && self.mem.get(at + NODE_HEAD..at + NODE_HEAD + key.len()) == Some(key)
            {
                return Some(n);
            }
            n = rd32(self.mem, at + N_CHAIN);
            steps += 1;
        }
        None
    }

    /// A node for a key of `len` bytes: from its class's free list, else fresh cells.
    pub(crate) fn alloc(&mut self, len: usize) -> Option<u32> {
        let class = class_of(len);
        if class >= CLASSES {
            return None;
        }
        let free = FREE + class * 4;
        let n = rd32(self.mem, free);
        if n != 0 {
            let next = rd32(self.mem, self.node(n) + N_CHAIN);
            wr32(self.mem, free, next);
            return Some(n);
        }
        let bump = rd32(self.mem, BUMP) as usize;
        let need = 1usize << class;
        if bump + need > self.zone.cells {
            return None;
        }
        wr32(self.mem, BUMP, (bump + need) as u32);
        Some(bump as u32 + 1)
    }

    /// Fills node `n` with the key and links it into its bucket and at the LRU's head.
    fn insert(&mut self, n: u32, h: u64, key: &[u8]) {
        self.insert_sized(n, h, key, key.len());
    }

    /// As [`Self::insert`], for a node allocated with room for `len` bytes after its head
    /// (the key, then a value of the caller's).
    pub(crate) fn insert_sized(&mut self, n: u32, h: u64, key: &[u8], len: usize) {
        let at = self.node(n);
        let b = self.bucket(h);
        wr64(self.mem, at + N_HASH, h);
        wr32(self.mem, at + N_LEN, key.len() as u32);
        wr32(self.mem, at + N_CLASS, class_of(len.max(key.len())) as u32);
        wr32(self.mem, at + N_COUNT, 0);
        wr64(self.mem, at + N_LAST, 0);
        wr64(self.mem, at + N_EXCESS, 0);
        if let Some(k) = self.mem.get_mut(at + NODE_HEAD..at + NODE_HEAD + key.len()) {
            k.copy_from_slice(key);
        }
        let head = rd32(self.mem, b);
        wr32(self.mem, at + N_CHAIN, head);
        wr32(self.mem, b, n);
        self.lru_push_head(n);
    }

    /// Unlinks node `n` from its bucket and the LRU and frees it.
    pub(crate) fn remove(&mut self, n: u32) {
        let at = self.node(n);
        let b = self.bucket(rd64(self.mem, at + N_HASH));
        let next = rd32(self.mem, at + N_CHAIN);
        let mut link = b;
        let mut steps = 0;
        loop {
            let cur = rd32(self.mem, link);
            if cur == 0 || steps > self.zone.cells {
                break;
            }
            if cur == n {
                wr32(self.mem, link, next);
                break;
            }
            link = self.node(cur) + N_CHAIN;
            steps += 1;
        }
        self.lru_unlink(n);
        let class = rd32(self.mem, at + N_CLASS) as usize;
        if class < CLASSES {
            let free = FREE + class * 4;
            let head = rd32(self.mem, free);
            wr32(self.mem, at + N_CHAIN, head);
            wr32(self.mem, free, n);
        }
    }

    pub(crate) fn lru_unlink(&mut self, n: u32) {
        let at = self.node(n);
        let (prev, next) = (rd32(self.mem, at + N_PREV), rd32(self.mem, at + N_NEXT));
        if prev == 0 {
            wr32(self.mem, LRU_HEAD, next);
        } else {
            let p = self.node(prev);
            wr32(self.mem, p + N_NEXT, next);
        }
        if next == 0 {
            wr32(self.mem, LRU_TAIL, prev);
        } else {
            let x = self.node(next);
            wr32(self.mem, x + N_PREV, prev);
        }
        wr32(self.mem, at + N_PREV, 0);
        wr32(self.mem, at + N_NEXT, 0);
    }

    pub(crate) fn lru_push_tail(&mut self, n: u32) {
        let at = self.node(n);
        let tail = rd32(self.mem, LRU_TAIL);
        wr32(self.mem, at + N_NEXT, 0);
        wr32(self.mem, at + N_PREV, tail);
        if tail == 0 {
            wr32(self.mem, LRU_HEAD, n);
        } else {
            let t = self.node(tail);
            wr32(self.mem, t + N_NEXT, n);
        }
        wr32(self.mem, LRU_TAIL, n);
    }

    pub(crate) fn lru_push_head(&mut self, n: u32) {
        let at = self.node(n);
        let head = rd32(self.mem, LRU_HEAD);
        wr32(self.mem, at + N_PREV, 0);
        wr32(self.mem, at + N_NEXT, head);
        if head == 0 {
            wr32(self.mem, LRU_TAIL, n);
        } else {
            let h = self.node(head);
            wr32(self.mem, h + N_PREV, n);
        }
        wr32(self.mem, LRU_HEAD, n);
    }

    /// nginx's `ngx_http_limit_req_expire`: from the least recently used end, `n == 1`
    /// frees up to two entries idle for a minute whose bucket has drained; `n == 0` frees
    /// the oldest entry whatever its age, then up to two such. An entry held by a request
    /// in progress stops it.
    fn req_expire(&mut self, now: u64, rate: u64, mut n: u32) {
        while n < 3 {
            let tail = rd32(self.mem, LRU_TAIL);
            if tail == 0 {
                return;
            }
            let at = self.node(tail);
            if rd32(self.mem, at + N_COUNT) != 0 {
                return;
            }
            let first = n == 0;
            n += 1;
            if !first {
                let ms = (now.wrapping_sub(rd64(self.mem, at + N_LAST)) as i64).unsigned_abs();
                if ms < 60_000 {
                    return;
                }
                let excess = i128::from(rd64(self.mem, at + N_EXCESS) as i64)
                    - i128::from(rate) * i128::from(ms) / 1000;
                if excess > 0 {
                    return;
                }
            }
            self.remove(tail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_arithmetic_is_nginx_s() {
        // 1r/s: a request 0 ms after one with no excess has an excess of 1.000.
        assert_eq!(leak(0, 1000, 0), 1000);
        // Half a second later at 2r/s the bucket drained by 1000.
        assert_eq!(leak(1000, 2000, 500), 1000);
        // Never below 0.
        assert_eq!(leak(0, 2000, 10_000), 0);
        assert_eq!(leak(3000, 1000, 1000), 3000);
        // r/m: 30r/m is 500 milli-requests a second.
        assert_eq!(leak(2000, 30 * 1000 / 60, 1000), 2500);
        // The clock: far in the future counts 1 ms, slightly 0 ms.
        assert_eq!(elapsed_ms(1000, 1000 + 60_001), 1);
        assert_eq!(elapsed_ms(1000, 1500), 0);
        assert_eq!(elapsed_ms(2000, 1000), 1000);
        // The delay: (excess - delay) * 1000 / rate.
        assert_eq!(delay_ms(3000, 0, 2000), 1500);
        assert_eq!(delay_ms(3000, 3000, 2000), 0);
        assert_eq!(delay_ms(2500, 1000, 1000), 1500);
        assert_eq!(delay_ms(5000, u64::MAX, 1000), 0);
    }

    #[test]
    fn req_lookup_follows_the_bucket() {
        let z = Zone::new("t", 32768).unwrap();
        let k = b"\x7f\0\0\x01";
        let h = hash(k);
        // 2r/s, burst 1: the first passes, the second (same ms) is the burst, the third busy.
        assert_eq!(
            z.req_lookup(h, k, 10_000, 2000, 1000, true),
            ReqLookup::Ok(0)
        );
        assert_eq!(
            z.req_lookup(h, k, 10_000, 2000, 1000, true),
            ReqLookup::Ok(1000)
        );
        assert_eq!(
            z.req_lookup(h, k, 10_000, 2000, 1000, true),
            ReqLookup::Busy(2000)
        );
        // A refused request is not counted: 500 ms later the bucket has 0 + 1000.
        assert_eq!(
            z.req_lookup(h, k, 10_500, 2000, 1000, true),
            ReqLookup::Ok(1000)
        );
        // Not the last limit: held, then accounted.
        let ReqLookup::Again { node, excess } = z.req_lookup(h, k, 10_500, 2000, 5000, false)
        else {
            panic!("not held");
        };
        assert_eq!(excess, 2000);
        assert_eq!(z.req_account(node, 10_500, 2000), 2000);
        assert_eq!(z.entries(), 1);
    }

    #[test]
    fn full_zone_evicts_the_oldest_then_refuses_held_entries() {
        let z = Zone::new("t", 32768).unwrap();
        let cap = z.capacity(4);
        assert!(cap > 100, "{cap}");
        for i in 0..cap as u32 {
            let k = i.to_be_bytes();
            assert_eq!(
                z.req_lookup(hash(&k), &k, 1000, 1000, 0, true),
                ReqLookup::Ok(0)
            );
        }
        assert_eq!(z.entries(), cap);
        // Full: the oldest goes by force.
        let k = u32::MAX.to_be_bytes();
        assert_eq!(
            z.req_lookup(hash(&k), &k, 1000, 1000, 0, true),
            ReqLookup::Ok(0)
        );
        assert_eq!(z.entries(), cap);
        // An hour later, entries idle a minute go two at a time, on every new key.
        let k = (u32::MAX - 1).to_be_bytes();
        assert_eq!(
            z.req_lookup(hash(&k), &k, 3_601_000, 1000, 0, true),
            ReqLookup::Ok(0)
        );
        assert_eq!(z.entries(), cap - 1);
        // Held entries (a request in progress) are never dropped: with all of them held, a
        // new key finds no room.
        let z = Zone::new("t", 32768).unwrap();
        for i in 0..cap as u32 {
            let k = i.to_be_bytes();
            assert!(matches!(
                z.req_lookup(hash(&k), &k, 1000, 1000, 0, false),
                ReqLookup::Again { .. }
            ));
        }
        let k = u32::MAX.to_be_bytes();
        assert_eq!(
            z.req_lookup(hash(&k), &k, 1000, 1000, 0, true),
            ReqLookup::NoMemory
        );
    }

    #[test]
    fn conn_counts_and_frees() {
        let z = Zone::new("c", 32768).unwrap();
        let k = b"key";
        let h = hash(k);
        let ConnAcquire::Held(n) = z.conn_acquire(h, k, 2) else {
            panic!()
        };
        assert!(matches!(z.conn_acquire(h, k, 2), ConnAcquire::Held(m) if m == n));
        assert_eq!(z.conn_acquire(h, k, 2), ConnAcquire::Busy);
        assert_eq!(z.conn_count(k), 2);
        z.conn_release(n, h);
        z.conn_release(n, h);
        assert_eq!(z.conn_count(k), 0);
        assert_eq!(z.entries(), 0);
        // The freed node is reused.
        assert_eq!(
            z.conn_acquire(hash(b"other"), b"other", 1),
            ConnAcquire::Held(n)
        );
        // Long keys take more cells, and still compare whole.
        let long = vec![b'x'; 1000];
        let long2 = [&long[..999], b"y"].concat();
        assert!(matches!(
            z.conn_acquire(hash(&long), &long, 1),
            ConnAcquire::Held(_)
        ));
        assert!(matches!(
            z.conn_acquire(hash(&long2), &long2, 1),
            ConnAcquire::Held(_)
        ));
        assert_eq!(z.conn_acquire(hash(&long), &long, 1), ConnAcquire::Busy);
    }

    #[test]
    fn zones_are_kept_by_name_size_and_kind() {
        let a = Zone::get("keep", 65536, Kind::Req).unwrap();
        let b = Zone::get("keep", 65536, Kind::Req).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = Zone::get("keep", 131072, Kind::Req).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        let d = Zone::get("keep", 65536, Kind::Conn).unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
    }
}
