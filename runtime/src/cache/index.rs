//! A cache's index (`keys_zone`): one entry per object, keyed by the MD5 of its key, in
//! memory shared by the master and every worker (a [`crate::limits::Zone`] table: spinlock,
//! hash buckets, LRU list). An entry says whether the object's file exists, until when it is
//! fresh, how often it was asked for (`proxy_cache_min_uses`), when it goes if unused
//! (`inactive`) and how many bytes its file takes (`max_size`); whether a request is
//! fetching it now (`proxy_cache_lock`).
//!
//! A key the index does not know is looked for on disk by the worker (the file's header
//! says the rest), so objects are found before the cache loader (`super::keeper`) has
//! entered them all. Entries whose files must go (inactive, over `max_size`, pushed out of
//! a full zone) are handed back to the caller, which unlinks the files after the lock is
//! let go.

use crate::limits::{rd32, rd64, wr32, wr64, Zone, LRU_TAIL, NODE_HEAD, N_PREV, USER};
use std::sync::Arc;

const KEY: usize = 16;
const V: usize = NODE_HEAD + KEY;
const V_VALID: usize = V;
const V_EXPIRE: usize = V + 8;
const V_FS: usize = V + 16;
const V_USES: usize = V + 24;
const V_FLAGS: usize = V + 28;
const V_LOCK: usize = V + 32;
const V_ERROR: usize = V + 40;
/// Raised each time the object is stored again (a copy in a worker's memory is current
/// while its generation is the entry's).
const V_GEN: usize = V + 44;
const VALUE: usize = 48;

const EXISTS: u32 = 1;
/// A request is fetching the object now (nginx's `node->updating`), until `V_LOCK` (ms of
/// CLOCK_MONOTONIC) at the latest.
const UPDATING: u32 = 2;

/// Entries of files to remove at most per call (the rest go with later calls).
pub const EVICT_MAX: usize = 4;

/// What [`Index::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Times the key was asked for, this request included.
    pub uses: u32,
    /// The index knows the file exists.
    pub exists: bool,
    /// Fresh until (seconds since the epoch).
    pub valid_sec: i64,
    /// The index had no entry for the key (its file may still be on disk).
    pub new: bool,
    /// A request is fetching the object now.
    pub updating: bool,
    /// An error status stored instead of an object (nginx's cached `error`, from
    /// `proxy_intercept_errors`), fresh until `valid_sec`.
    pub error: u16,
    /// The object's generation (see `V_GEN`).
    pub generation: u32,
}

/// Keys whose files are to be removed.
#[derive(Debug, Default)]
pub struct Evicted {
    pub keys: [[u8; KEY]; EVICT_MAX],
    pub n: usize,
}

impl Evicted {
    fn push(&mut self, k: [u8; KEY]) {
        if self.n < EVICT_MAX {
            self.keys[self.n] = k;
            self.n += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8; KEY]> {
        self.keys[..self.n].iter()
    }
}

/// A cache's index.
#[derive(Debug, Clone)]
pub struct Index {
    zone: Arc<Zone>,
}

fn bucket_hash(md5: &[u8; KEY]) -> u64 {
    u64::from_le_bytes([
        md5[0], md5[1], md5[2], md5[3], md5[4], md5[5], md5[6], md5[7],
    ])
}

impl Index {
    /// The index of zone `name` of `size` bytes (the same mapping after a reload that keeps
    /// both).
    pub fn get(name: &str, size: u64) -> Result<Index, String> {
        Ok(Index {
            zone: Zone::get(name, size, crate::limits::Kind::Cache)?,
        })
    }

    /// The key is asked for at `now`: its entry (made if new, pushing out the least
    /// recently used entries when the zone is full: their keys land in `evicted`), one use
    /// more, unused until `now + inactive`. Under the same lock, a step of the cache
    /// manager ([`Self::expire`]'s) with `max_size`.
    pub fn lookup(
        &self,
        md5: &[u8; KEY],
        now: i64,
        inactive: u64,
        max_size: Option<u64>,
        evicted: &mut Evicted,
    ) -> Option<Entry> {
        let h = bucket_hash(md5);
        let mut t = self.zone.lock();
        expire_steps(&mut t, now, max_size, evicted);
        let expire = (now.max(0) as u64).saturating_add(inactive);
        if let Some(n) = t.find(h, md5) {
            t.lru_unlink(n);
            t.lru_push_head(n);
            let at = t.node(n);
            let uses = rd32(t.mem, at + V_USES).saturating_add(1);
            wr32(t.mem, at + V_USES, uses);
            wr64(t.mem, at + V_EXPIRE, expire);
            let flags = rd32(t.mem, at + V_FLAGS);
            return Some(Entry {
                uses,
                exists: flags & EXISTS != 0,
                valid_sec: rd64(t.mem, at + V_VALID) as i64,
                new: false,
                updating: flags & UPDATING != 0,
                error: rd32(t.mem, at + V_ERROR) as u16,
                generation: rd32(t.mem, at + V_GEN),
            });
        }
        let len = KEY + VALUE;
        let mut n = t.alloc(len);
        // Full: the least recently used entries go (nginx's forced expiry).
        while n.is_none() && evicted.n < EVICT_MAX {
            if !drop_tail(&mut t, evicted) {
                break;
            }
            n = t.alloc(len);
        }
        let n = n?;
        t.insert_sized(n, h, md5, len);
        let at = t.node(n);
        for (off, v) in [(V_VALID, 0u64), (V_EXPIRE, expire), (V_FS, 0), (V_LOCK, 0)] {
            wr64(t.mem, at + off, v);
        }
        wr32(t.mem, at + V_USES, 1);
        wr32(t.mem, at + V_FLAGS, 0);
        wr32(t.mem, at + V_ERROR, 0);
        wr32(t.mem, at + V_GEN, 0);
        Some(Entry {
            uses: 1,
            exists: false,
            valid_sec: 0,
            new: true,
            updating: false,
            error: 0,
            generation: 0,
        })
    }

    /// Whether the caller may fetch the object now (nginx's cache lock and its `updating`
    /// flag): yes when no one else does, or when the one who does has held it past its
    /// time (`lock_until`); the caller then holds it until `now_ms + age_ms` (`None`: until it
    /// lets go). `None`: the key has no entry (pushed out meanwhile).
    pub fn begin_update(&self, md5: &[u8; KEY], now_ms: u64, age_ms: Option<u64>) -> Option<bool> {
        let t = self.zone.lock();
        let n = t.find(bucket_hash(md5), md5)?;
        let at = t.node(n);
        let flags = rd32(t.mem, at + V_FLAGS);
        if flags & UPDATING != 0 && rd64(t.mem, at + V_LOCK) > now_ms {
            return Some(false);
        }
        wr32(t.mem, at + V_FLAGS, flags | UPDATING);
        let until = age_ms.map_or(u64::MAX, |a| now_ms.saturating_add(a));
        wr64(t.mem, at + V_LOCK, until);
        Some(true)
    }

    /// The fetch is over (stored or not): others may fetch it.
    pub fn end_update(&self, md5: &[u8; KEY]) {
        let t = self.zone.lock();
        if let Some(n) = t.find(bucket_hash(md5), md5) {
            let at = t.node(n);
            let flags = rd32(t.mem, at + V_FLAGS);
            wr32(t.mem, at + V_FLAGS, flags & !UPDATING);
        }
    }

    /// The entry as it is now, without counting a use.
    pub fn peek(&self, md5: &[u8; KEY]) -> Option<Entry> {
        let t = self.zone.lock();
        let n = t.find(bucket_hash(md5), md5)?;
        let at = t.node(n);
        let flags = rd32(t.mem, at + V_FLAGS);
        Some(Entry {
            uses: rd32(t.mem, at + V_USES),
            exists: flags & EXISTS != 0,
            valid_sec: rd64(t.mem, at + V_VALID) as i64,
            new: false,
            updating: flags & UPDATING != 0,
            error: rd32(t.mem, at + V_ERROR) as u16,
            generation: rd32(t.mem, at + V_GEN),
        })
    }

    /// The object's file is in place (stored now, or found on disk): fresh until
    /// `valid_sec`, `fs_size` bytes on disk.
    pub fn stored(&self, md5: &[u8; KEY], valid_sec: i64, fs_size: u64) {
        let mut t = self.zone.lock();
        let Some(n) = t.find(bucket_hash(md5), md5) else {
            return;
        };
        let at = t.node(n);
        let old = rd64(t.mem, at + V_FS);
        wr64(t.mem, at + V_VALID, valid_sec as u64);
        wr64(t.mem, at + V_FS, fs_size);
        wr32(
            t.mem,
            at + V_FLAGS,
            (rd32(t.mem, at + V_FLAGS) | EXISTS) & !UPDATING,
        );
        wr32(t.mem, at + V_ERROR, 0);
        wr32(t.mem, at + V_GEN, rd32(t.mem, at + V_GEN).wrapping_add(1));
        sub_total(&mut t, old);
        let total = rd64(t.mem, USER).saturating_add(fs_size);
        wr64(t.mem, USER, total);
    }

    /// An error status answers the key until `valid_sec` (the fetch is over).
    pub fn stored_error(&self, md5: &[u8; KEY], status: u16, valid_sec: i64) {
        let t = self.zone.lock();
        let Some(n) = t.find(bucket_hash(md5), md5) else {
            return;
        };
        let at = t.node(n);
        wr64(t.mem, at + V_VALID, valid_sec as u64);
        wr32(t.mem, at + V_ERROR, u32::from(status));
        wr32(t.mem, at + V_GEN, rd32(t.mem, at + V_GEN).wrapping_add(1));
        wr32(t.mem, at + V_FLAGS, rd32(t.mem, at + V_FLAGS) & !UPDATING);
    }

    /// The object's file is gone or unusable: the entry is dropped.
    pub fn forget(&self, md5: &[u8; KEY]) {
        let mut t = self.zone.lock();
        if let Some(n) = t.find(bucket_hash(md5), md5) {
            let fs = rd64(t.mem, t.node(n) + V_FS);
            sub_total(&mut t, fs);
            t.remove(n);
        }
    }

    /// nginx's cache manager, a step of it: from the least recently used end, entries
    /// unused past their `inactive` time, then (with `max_size`) entries while the files
    /// take more than it, at most [`EVICT_MAX`]; their keys (those with files) go into
    /// `evicted`.
    pub fn expire(&self, now: i64, max_size: Option<u64>, evicted: &mut Evicted) {
        let mut t = self.zone.lock();
        expire_steps(&mut t, now, max_size, evicted);
    }

    /// Bytes the cache's files take, as the index counts them.
    pub fn size(&self) -> u64 {
        let t = self.zone.lock();
        rd64(t.mem, USER)
    }

    /// The cache loader found an object's file (fresh until `valid_sec`, `fs_size` bytes):
    /// an entry for it unless the key has one already (a request got there first), unused
    /// until `now + inactive`. False when the zone is full (nothing is pushed out for it).
    pub fn load(
        &self,
        md5: &[u8; KEY],
        valid_sec: i64,
        fs_size: u64,
        now: i64,
        inactive: u64,
    ) -> bool {
        let h = bucket_hash(md5);
        let mut t = self.zone.lock();
        if t.find(h, md5).is_some() {
            return true;
        }
        let len = KEY + VALUE;
        let Some(n) = t.alloc(len) else {
            return false;
        };
        // (At the least recently used end: a file found on disk is no one's recent use.)
        t.insert_sized(n, h, md5, len);
        t.lru_unlink(n);
        t.lru_push_tail(n);
        let at = t.node(n);
        let expire = (now.max(0) as u64).saturating_add(inactive);
        for (off, v) in [
            (V_VALID, valid_sec as u64),
            (V_EXPIRE, expire),
            (V_FS, fs_size),
            (V_LOCK, 0),
        ] {
            wr64(t.mem, at + off, v);
        }
        wr32(t.mem, at + V_USES, 0);
        wr32(t.mem, at + V_FLAGS, EXISTS);
        wr32(t.mem, at + V_ERROR, 0);
        wr32(t.mem, at + V_GEN, 1);
        let total = rd64(t.mem, USER).saturating_add(fs_size);
        wr64(t.mem, USER, total);
        true
    }

    /// Whether the cache loader has been through the directory (for this zone's lifetime:
    /// a reload that keeps the zone does not load it again, as nginx).
    pub fn loaded(&self) -> bool {
        let t = self.zone.lock();
        rd64(t.mem, USER + 8) != 0
    }

    pub fn set_loaded(&self) {
        let t = self.zone.lock();
        wr64(t.mem, USER + 8, 1);
    }
}

/// [`Index::expire`]'s work, the lock held.
fn expire_steps(
    t: &mut crate::limits::Table<'_>,
    now: i64,
    max_size: Option<u64>,
    evicted: &mut Evicted,
) {
    for _ in 0..EVICT_MAX {
        let tail = rd32(t.mem, LRU_TAIL);
        if tail == 0 {
            return;
        }
        let at = t.node(tail);
        let inactive = rd64(t.mem, at + V_EXPIRE) <= now.max(0) as u64;
        let over = max_size.is_some_and(|m| rd64(t.mem, USER) > m);
        if !inactive && !over {
            return;
        }
        drop_tail(t, evicted);
    }
}

/// Removes the least recently used entry (its key goes into `evicted` when it has a file);
/// false when there is none.
fn drop_tail(t: &mut crate::limits::Table<'_>, evicted: &mut Evicted) -> bool {
    let tail = rd32(t.mem, LRU_TAIL);
    if tail == 0 {
        return false;
    }
    let at = t.node(tail);
    let mut k = [0u8; KEY];
    if let Some(b) = t.mem.get(at + NODE_HEAD..at + NODE_HEAD + KEY) {
        k.copy_from_slice(b);
    }
    let fs = rd64(t.mem, at + V_FS);
    let exists = rd32(t.mem, at + V_FLAGS) & EXISTS != 0;
    sub_total(t, fs);
    t.remove(tail);
    if exists {
        evicted.push(k);
    }
    true
}

fn sub_total(t: &mut crate::limits::Table<'_>, n: u64) {
    let total = rd64(t.mem, USER).saturating_sub(n);
    wr64(t.mem, USER, total);
}

// (The previous link of a node is not needed here; named so the table's layout stays in one
// place.)
const _: usize = N_PREV;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k[8..12].copy_from_slice(&i.wrapping_mul(7).to_le_bytes());
        k
    }

    #[test]
    fn lookup_counts_uses_and_remembers_files() {
        let ix = Index {
            zone: Arc::new(Zone::new("t", 64 * 4096).unwrap()),
        };
        let mut ev = Evicted::default();
        let e = ix.lookup(&key(1), 100, 600, None, &mut ev).unwrap();
        assert!(e.new && !e.exists && e.uses == 1);
        let e = ix.lookup(&key(1), 101, 600, None, &mut ev).unwrap();
        assert!(!e.new && e.uses == 2);
        ix.stored(&key(1), 200, 1000);
        let e = ix.lookup(&key(1), 102, 600, None, &mut ev).unwrap();
        assert!(e.exists && e.valid_sec == 200);
        assert_eq!(ix.size(), 1000);
        ix.stored(&key(1), 300, 400);
        assert_eq!(ix.size(), 400);
        ix.forget(&key(1));
        assert_eq!(ix.size(), 0);
        assert!(ix.lookup(&key(1), 103, 600, None, &mut ev).unwrap().new);
        assert_eq!(ev.n, 0);
    }

    #[test]
    fn one_fetch_at_a_time_until_its_lock_ages() {
        let ix = Index {
            zone: Arc::new(Zone::new("t", 64 * 4096).unwrap()),
        };
        let mut ev = Evicted::default();
        ix.lookup(&key(1), 100, 600, None, &mut ev);
        assert_eq!(ix.begin_update(&key(1), 1000, Some(500)), Some(true));
        assert_eq!(ix.begin_update(&key(1), 1200, Some(500)), Some(false));
        assert!(ix.peek(&key(1)).unwrap().updating);
        // Held past its age: taken over.
        assert_eq!(ix.begin_update(&key(1), 1500, Some(500)), Some(true));
        ix.end_update(&key(1));
        assert!(!ix.peek(&key(1)).unwrap().updating);
        assert_eq!(ix.begin_update(&key(1), 1600, None), Some(true));
        // Storing lets go too.
        ix.stored(&key(1), 200, 10);
        assert!(!ix.peek(&key(1)).unwrap().updating);
        assert_eq!(ix.begin_update(&key(2), 1600, None), None);
    }

    #[test]
    fn a_full_zone_pushes_out_the_least_recently_used() {
        let ix = Index {
            zone: Arc::new(Zone::new("t", 8 * 4096).unwrap()),
        };
        let mut evicted_total = 0;
        for i in 0..2000u32 {
            let mut ev = Evicted::default();
            let e = ix.lookup(&key(i), 100, 600, None, &mut ev);
            assert!(e.is_some(), "entry {i}");
            ix.stored(&key(i), 200, 10);
            evicted_total += ev.n;
            for k in ev.iter() {
                // The oldest go first.
                assert!(u32::from_le_bytes([k[0], k[1], k[2], k[3]]) < i);
            }
        }
        assert!(evicted_total > 1000, "{evicted_total}");
        // The newest is still known.
        let mut ev = Evicted::default();
        assert!(
            ix.lookup(&key(1999), 101, 600, None, &mut ev)
                .unwrap()
                .exists
        );
    }

    #[test]
    fn expiry_removes_inactive_and_keeps_max_size() {
        let ix = Index {
            zone: Arc::new(Zone::new("t", 64 * 4096).unwrap()),
        };
        let mut ev = Evicted::default();
        for i in 0..3 {
            ix.lookup(&key(i), 100 + i64::from(i), 10, None, &mut ev);
            ix.stored(&key(i), 1000, 100);
        }
        // Nothing inactive yet, no limit.
        ix.expire(105, None, &mut ev);
        assert_eq!(ev.n, 0);
        // Over max_size: the oldest goes.
        ix.expire(105, Some(250), &mut ev);
        assert_eq!((ev.n, ix.size()), (1, 200));
        assert_eq!(ev.keys[0], key(0));
        // All inactive by 200.
        let mut ev = Evicted::default();
        ix.expire(200, None, &mut ev);
        assert_eq!((ev.n, ix.size()), (2, 0));
    }
}
