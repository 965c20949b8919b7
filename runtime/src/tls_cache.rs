//! `ssl_session_cache shared:NAME:SIZE`: TLS sessions kept in memory shared by every worker,
//! so that a session made on one worker resumes on another (and, since the zone outlives a
//! reload when its name and size stay, after a reload too).
//!
//! The zone is mapped by the master before it forks (see `shared::map_shared_zeroed`) and is
//! an array of fixed-size slots, each a seqlock of atomic words: a writer claims a slot by
//! making its version odd, writes, and makes it even again; a reader copies the slot and keeps
//! the copy only if the version did not change meanwhile. No lock is ever held across
//! processes, so a worker killed mid-write loses at most that one slot (it stays odd and is
//! skipped). Sessions larger than a slot are not cached (nginx also has a size limit), and
//! when the few slots a key may use are taken, the one that expires first is replaced.

use rustls::server::StoresServerSessions;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Words per slot: the version, the expiry, the lengths and hash, then the key and value.
const WORDS: usize = 64;
const SLOT_BYTES: usize = WORDS * 8;
/// Bytes of key + value a slot holds.
const DATA_BYTES: usize = (WORDS - 3) * 8;
/// Slots a key may live in (from its hash on).
const PROBE: usize = 4;

pub struct SharedSessions {
    base: NonNull<AtomicU64>,
    slots: usize,
}

/// A zone as one server's settings use it: sessions it stores live for its
/// `ssl_session_timeout` (servers with other timeouts may share the zone, as in nginx).
#[derive(Debug)]
pub struct ZoneUse {
    zone: Arc<SharedSessions>,
    timeout: u64,
}

// SAFETY: the mapping is only ever accessed through atomics (see the module's doc), so it
// may be shared between threads like any `&[AtomicU64]`.
unsafe impl Send for SharedSessions {}
// SAFETY: as above.
unsafe impl Sync for SharedSessions {}

impl std::fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSessions")
            .field("slots", &self.slots)
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// FNV-1a: stable across processes (the slot of a key must be the same in every worker).
fn hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The zones made so far by this (master) process: a reload with the same name and size
/// keeps its zone, and its sessions.
type Zones = Vec<(String, u64, Arc<SharedSessions>)>;
static ZONES: Mutex<Zones> = Mutex::new(Vec::new());

impl SharedSessions {
    /// The zone `name` of `size` bytes: the one made earlier with that name and size, else a
    /// new one.
    pub fn zone(name: &str, size: u64) -> Result<Arc<SharedSessions>, String> {
        let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, z)) = zones.iter().find(|(n, s, _)| n == name && *s == size) {
            return Ok(z.clone());
        }
        let slots = (size as usize / SLOT_BYTES).max(PROBE);
        let len = NonZeroUsize::new(slots * SLOT_BYTES).ok_or("empty session cache")?;
        let ptr = crate::shared::map_shared_zeroed(len)
            .map_err(|e| format!("cannot map ssl_session_cache \"{name}\" ({size} bytes): {e}"))?;
        let z = Arc::new(SharedSessions {
            base: ptr.cast::<AtomicU64>(),
            slots,
        });
        zones.push((name.to_string(), size, z.clone()));
        Ok(z)
    }

    /// The zone used with sessions that live `timeout` seconds.
    pub fn with_timeout(self: &Arc<Self>, timeout: u64) -> Arc<ZoneUse> {
        Arc::new(ZoneUse {
            zone: self.clone(),
            timeout: timeout.max(1),
        })
    }

    /// How many sessions the zone holds at most.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    fn word(&self, slot: usize, i: usize) -> &AtomicU64 {
        debug_assert!(slot < self.slots && i < WORDS);
        // SAFETY: `slot < self.slots` and `i < WORDS` (callers take slots modulo `slots`), so
        // the word is inside the mapping, which is zero-filled (a valid AtomicU64), aligned,
        // and never unmapped.
        unsafe { &*self.base.as_ptr().add(slot * WORDS + i) }
    }

    /// A consistent copy of a slot's key and value if it holds `key` (and has not expired),
    /// with its version.
    fn read(&self, slot: usize, h: u64, key: &[u8], now: u64) -> Option<(u64, Vec<u8>)> {
        let v1 = self.word(slot, 0).load(Ordering::Acquire);
        if v1 & 1 == 1 {
            return None;
        }
        let expires = self.word(slot, 1).load(Ordering::Relaxed);
        let meta = self.word(slot, 2).load(Ordering::Relaxed);
        let klen = (meta & 0xffff) as usize;
        let vlen = ((meta >> 16) & 0xffff) as usize;
        if expires <= now || meta >> 32 != h & 0xffff_ffff || klen != key.len() {
            return None;
        }
        if klen + vlen > DATA_BYTES {
            return None;
        }
        let mut bytes = Vec::with_capacity((klen + vlen).div_ceil(8) * 8);
        for i in 0..(klen + vlen).div_ceil(8) {
            let w = self.word(slot, 3 + i).load(Ordering::Relaxed);
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        fence(Ordering::Acquire);
        if self.word(slot, 0).load(Ordering::Relaxed) != v1 {
            return None;
        }
        if bytes.get(..klen) != Some(key) {
            return None;
        }
        bytes.truncate(klen + vlen);
        bytes.drain(..klen);
        Some((v1, bytes))
    }

    /// Writes a slot if its version is still `version` (claims it first); false if another
    /// writer got there.
    fn write(&self, slot: usize, version: u64, expires: u64, meta: u64, data: &[u8]) -> bool {
        let seq = self.word(slot, 0);
        if version & 1 == 1
            || seq
                .compare_exchange(version, version + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        self.word(slot, 1).store(expires, Ordering::Relaxed);
        self.word(slot, 2).store(meta, Ordering::Relaxed);
        for (i, chunk) in data.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(slot, 3 + i)
                .store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        seq.store(version + 2, Ordering::Release);
        true
    }

    fn find(&self, key: &[u8]) -> Option<(usize, u64, Vec<u8>)> {
        let h = hash(key);
        let now = now();
        (0..PROBE).find_map(|i| {
            let slot = (h as usize).wrapping_add(i) % self.slots;
            self.read(slot, h, key, now).map(|(v, val)| (slot, v, val))
        })
    }
}

impl SharedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>, timeout: u64) -> bool {
        if key.len() + value.len() > DATA_BYTES || key.len() > 0xffff {
            return false;
        }
        let h = hash(&key);
        let now = now();
        // The slot: the key's own (anywhere in its window, so that it is never stored
        // twice), else a free or expired one, else the one expiring first.
        let window = (0..PROBE).map(|i| (h as usize).wrapping_add(i) % self.slots);
        let mut best: Option<(usize, u64, u64)> = None;
        for slot in window.clone() {
            let version = self.word(slot, 0).load(Ordering::Acquire);
            if version & 1 == 0 && self.read(slot, h, &key, now).is_some() {
                best = Some((slot, version, 0));
                break;
            }
        }
        if best.is_none() {
            for slot in window {
                let version = self.word(slot, 0).load(Ordering::Acquire);
                if version & 1 == 1 {
                    continue;
                }
                let expires = self.word(slot, 1).load(Ordering::Relaxed);
                if expires <= now {
                    best = Some((slot, version, 0));
                    break;
                }
                if best.is_none_or(|(_, _, e)| expires < e) {
                    best = Some((slot, version, expires));
                }
            }
        }
        let Some((slot, version, _)) = best else {
            return false;
        };
        let meta = (key.len() as u64) | ((value.len() as u64) << 16) | ((h & 0xffff_ffff) << 32);
        let mut data = key;
        data.extend_from_slice(&value);
        self.write(slot, version, now + timeout, meta, &data)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(key).map(|(_, _, v)| v)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (slot, version, value) = self.find(key)?;
        // Single use (TLS 1.3): only the taker that clears the slot gets the session.
        self.write(slot, version, 0, 0, &[]).then_some(value)
    }
}

impl StoresServerSessions for ZoneUse {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.zone.put(key, value, self.timeout)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.zone.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.zone.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_stored_found_taken_once_and_bounded() {
        let z = SharedSessions::zone("test-a", 64 * 1024)
            .unwrap()
            .with_timeout(300);
        assert_eq!(z.zone.capacity(), 128);
        assert!(z.put(b"id-1".to_vec(), b"state one".to_vec()));
        assert_eq!(z.get(b"id-1").unwrap(), b"state one");
        assert!(z.get(b"id-2").is_none());
        // Replaced in place.
        assert!(z.put(b"id-1".to_vec(), b"state two".to_vec()));
        assert_eq!(z.get(b"id-1").unwrap(), b"state two");
        assert_eq!(z.take(b"id-1").unwrap(), b"state two");
        assert!(z.take(b"id-1").is_none(), "taken once");
        assert!(z.get(b"id-1").is_none());
        // Too large for a slot: not cached.
        assert!(!z.put(b"big".to_vec(), vec![7; DATA_BYTES]));
        assert!(z.put(b"fits".to_vec(), vec![7; DATA_BYTES - 4]));
        assert_eq!(z.get(b"fits").unwrap().len(), DATA_BYTES - 4);
        // Far more sessions than slots: every put succeeds (the oldest go), the zone keeps
        // its size, and the latest sessions are found.
        for i in 0..1000u32 {
            assert!(z.put(format!("k{i}").into_bytes(), i.to_le_bytes().to_vec()));
        }
        assert_eq!(z.get(b"k999").unwrap(), 999u32.to_le_bytes());
        let found = (0..1000u32)
            .filter(|i| z.get(format!("k{i}").as_bytes()).is_some())
            .count();
        assert!(
            found <= 128 && found > 64,
            "{found} of 1000 kept in 128 slots"
        );
    }

    #[test]
    fn the_same_name_and_size_is_the_same_zone() {
        let a = SharedSessions::zone("test-b", 32768).unwrap();
        let b = SharedSessions::zone("test-b", 32768).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = SharedSessions::zone("test-b", 65536).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a new size is a new zone");
    }

    #[test]
    fn a_forked_process_sees_the_parents_sessions_and_the_parent_its() {
        let z = SharedSessions::zone("test-fork", 64 * 1024)
            .unwrap()
            .with_timeout(300);
        assert!(z.put(b"from-parent".to_vec(), b"p".to_vec()));
        // SAFETY: the child only touches the shared mapping and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = z.get(b"from-parent").as_deref() == Some(b"p".as_slice())
                    && z.put(b"from-child".to_vec(), b"c".to_vec());
                // SAFETY: _exit ends the child without running the parent's destructors.
                unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                assert_eq!(z.get(b"from-child").unwrap(), b"c");
            }
        }
    }
}
