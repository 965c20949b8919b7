//! Memory shared by the master and all workers, mapped once by the master before any fork:
//! per-worker counters (active connections) that the master sums for its status file, and
//! per worker slot the generation whose worker in that slot is dead and awaiting respawn
//! (the living workers of that generation accept from the slot's sockets meanwhile).
//!
//! The mapping lives for the whole life of the master; workers inherit it.

use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh anonymous `MAP_SHARED` read-write mapping of `len` bytes: zero-filled and
/// page-aligned by the kernel, and shared with every process forked after it.
pub(crate) fn map_shared_zeroed(len: NonZeroUsize) -> nix::Result<NonNull<c_void>> {
    // SAFETY: an anonymous mapping at an address the kernel picks aliases nothing; the
    // caller owns it (and unmaps it, if ever, with the same length).
    unsafe {
        mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }
}

/// Number of counter slots: more than the workers of a few overlapping generations.
pub const SLOTS: usize = 1024;

/// A fixed array of atomic counters in shared memory.
pub struct Counters {
    base: std::ptr::NonNull<AtomicU64>,
}

// SAFETY: the memory is only ever accessed through atomics, so sharing references across
// threads (and processes) is sound.
unsafe impl Send for Counters {}
// SAFETY: as above.
unsafe impl Sync for Counters {}

impl Counters {
    /// Maps `SLOTS` zeroed counters shared with every future child process.
    pub fn new() -> Result<Counters, String> {
        let len = NonZeroUsize::new(SLOTS * std::mem::size_of::<AtomicU64>())
            .ok_or("empty shared mapping")?;
        // Never unmapped; zero-filled, which is a valid `AtomicU64` in every slot.
        let ptr =
            map_shared_zeroed(len).map_err(|e| format!("mmap of shared counters failed: {e}"))?;
        Ok(Counters {
            base: ptr.cast::<AtomicU64>(),
        })
    }

    /// Counter `i` (wrapped into range).
    pub fn slot(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `i % SLOTS` is within the mapping, which is aligned (page-aligned) and
        // lives as long as the process.
        unsafe { &*self.base.as_ptr().add(i % SLOTS) }
    }

    /// Sum of all counters.
    pub fn sum(&self) -> u64 {
        (0..SLOTS)
            .map(|i| self.slot(i).load(Ordering::Relaxed))
            .sum()
    }
}
