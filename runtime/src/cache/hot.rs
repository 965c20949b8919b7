//! The memory tier: a worker's copies of small cached objects (their head and body as read
//! from the file), so that a hit on one does not touch the file system. A copy is used
//! only while the shared index says the object is the same one (its generation, raised by
//! every store) and fresh; it is dropped, least recently used first, to stay within the
//! zone's `memory=` bytes. Per worker, not shared: each worker fills its own from the
//! files.

use super::file::Meta;
use rustc_hash::FxHashMap;

/// The largest object kept (head and body).
pub const OBJECT_MAX: usize = 16 * 1024;

struct Obj {
    generation: u32,
    meta: Meta,
    /// The stored head, then the body.
    bytes: Box<[u8]>,
    last_use: u64,
}

/// One zone's copies in this worker.
#[derive(Default)]
pub struct Hot {
    map: FxHashMap<[u8; 16], Obj>,
    bytes: usize,
    tick: u64,
}

impl Hot {
    /// The copy of `md5` if it is of `generation`: its header and bytes (head, then body).
    pub fn get(&mut self, md5: &[u8; 16], generation: u32) -> Option<(Meta, &[u8])> {
        self.tick += 1;
        let tick = self.tick;
        let stale = match self.map.get_mut(md5) {
            None => return None,
            Some(o) if o.generation == generation => {
                o.last_use = tick;
                false
            }
            Some(_) => true,
        };
        if stale {
            self.remove(md5);
            return None;
        }
        self.map.get(md5).map(|o| (o.meta, &o.bytes[..]))
    }

    /// Keeps a copy (when it is small enough and `max` bytes allow), pushing out the least
    /// recently used ones.
    pub fn put(&mut self, md5: [u8; 16], generation: u32, meta: Meta, bytes: &[u8], max: usize) {
        if bytes.len() > OBJECT_MAX || bytes.len() > max {
            return;
        }
        self.remove(&md5);
        while self.bytes + bytes.len() > max {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, o)| o.last_use)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.remove(&oldest);
        }
        self.tick += 1;
        self.bytes += bytes.len();
        self.map.insert(
            md5,
            Obj {
                generation,
                meta,
                bytes: bytes.into(),
                last_use: self.tick,
            },
        );
    }

    pub fn remove(&mut self, md5: &[u8; 16]) {
        if let Some(o) = self.map.remove(md5) {
            self.bytes -= o.bytes.len();
        }
    }

    /// Bytes kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_follow_the_generation_and_the_budget() {
        let mut h = Hot::default();
        let m = Meta::default();
        h.put([1; 16], 5, m, b"abc", 10);
        assert_eq!(
            h.get(&[1; 16], 5).map(|(_, b)| b.to_vec()),
            Some(b"abc".to_vec())
        );
        // Stored again elsewhere: the copy is dropped.
        assert!(h.get(&[1; 16], 6).is_none());
        assert_eq!(h.bytes(), 0);
        // The budget: the least recently used goes.
        h.put([1; 16], 1, m, b"aaaa", 10);
        h.put([2; 16], 1, m, b"bbbb", 10);
        assert!(h.get(&[1; 16], 1).is_some());
        h.put([3; 16], 1, m, b"cccc", 10);
        assert!(h.get(&[2; 16], 1).is_none());
        assert!(h.get(&[1; 16], 1).is_some() && h.get(&[3; 16], 1).is_some());
        assert_eq!(h.bytes(), 8);
        // Too large for the budget or the tier: not kept.
        h.put([4; 16], 1, m, &[0; 11], 10);
        assert!(h.get(&[4; 16], 1).is_none());
    }
}
