//! Memory shared by the master and all workers, mapped once by the master before any fork:
//! per-worker counters (active connections) that the master sums for its status file, and
//! per worker slot the generation whose worker in that slot is dead and awaiting respawn
//! (the living workers of that generation accept from the slot's sockets meanwhile).
//!
//! The `stub_status` figures (and the TLS handshake counts of `proton_metrics`) are rows of
//! atomics per worker slot, plus one row the master alone writes (reload counts).
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

/// One figure of nginx's `stub_status` (and the `$connections_*` variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Client connections accepted (a total).
    Accepted = 0,
    /// Client connections handled (a total; the same as accepted: Proton refuses none it
    /// accepted, as nginx when no limit is reached).
    Handled = 1,
    /// Client requests, HTTP/2 streams included (a total).
    Requests = 2,
    /// Open client connections.
    Active = 3,
    /// Connections reading a request head.
    Reading = 4,
    /// Requests being answered (and connections closing after one).
    Writing = 5,
    /// Idle connections: keep-alive, or no byte of a request yet.
    Waiting = 6,
    /// TLS handshakes with clients that made a new session (a total; `proton_metrics`).
    TlsFull = 7,
    /// TLS handshakes with clients that resumed a session (a total; `proton_metrics`).
    TlsResumed = 8,
}

/// Figures per slot (16: two cache lines; the last ones unused).
const STAT_FIELDS: usize = 16;

/// A figure only the master writes, in the row after the workers' (`proton_metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterFigure {
    /// Successful reloads since the master started.
    Reloads = 0,
    /// Reloads refused (the IR did not load, or its listeners could not be bound).
    ReloadFailures = 1,
}

/// The `stub_status` figures of every worker: one row of atomics per worker counter slot
/// (the slot of [`Counters`] the worker's `active` count is in), written only by its worker
/// and summed by whoever reads them. Mapped once by the master before any fork.
pub struct Stats {
    base: NonNull<AtomicU64>,
}

// SAFETY: the memory is only ever accessed through atomics.
unsafe impl Send for Stats {}
// SAFETY: as above.
unsafe impl Sync for Stats {}

static STATS: std::sync::OnceLock<Stats> = std::sync::OnceLock::new();
/// This process's row in [`Stats`] (a worker's counter slot; 0 in the master).
static STAT_ROW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Stats {
    fn cell(&self, row: usize, f: Stat) -> &AtomicU64 {
        // SAFETY: `(row % SLOTS) * STAT_FIELDS + f` is within the mapping of
        // `SLOTS * STAT_FIELDS` zero-initialised atomics, which lives as long as the process.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add((row % SLOTS) * STAT_FIELDS + f as usize)
        }
    }

    /// The master's row, after the workers' rows.
    fn master_cell(&self, f: MasterFigure) -> &AtomicU64 {
        // SAFETY: `SLOTS * STAT_FIELDS + f` is within the mapping of `(SLOTS + 1) *
        // STAT_FIELDS` zero-initialised atomics, which lives as long as the process.
        unsafe { &*self.base.as_ptr().add(SLOTS * STAT_FIELDS + f as usize) }
    }

    /// The sum over all rows. Gauges go up in one worker's row and down in the same row,
    /// but a row may dip below zero between the two (they are added with wrapping
    /// arithmetic), so the sum is read as signed and never below 0.
    pub fn total(&self, f: Stat) -> u64 {
        let sum = (0..SLOTS).fold(0u64, |s, r| {
            s.wrapping_add(self.cell(r, f).load(Ordering::Relaxed))
        });
        u64::try_from(sum as i64).unwrap_or(0)
    }
}

/// Maps the figures (the master, before it forks; later calls keep the first mapping).
pub fn init_stats() -> Result<(), String> {
    if STATS.get().is_some() {
        return Ok(());
    }
    let len = NonZeroUsize::new((SLOTS + 1) * STAT_FIELDS * std::mem::size_of::<AtomicU64>())
        .ok_or("empty shared mapping")?;
    let ptr = map_shared_zeroed(len).map_err(|e| format!("mmap of shared figures failed: {e}"))?;
    let _ = STATS.set(Stats {
        base: ptr.cast::<AtomicU64>(),
    });
    Ok(())
}

/// The figures, if they are mapped.
pub fn stats() -> Option<&'static Stats> {
    STATS.get()
}

/// Makes `row` this process's row (a worker at its start) and zeroes its gauges: what a
/// dead worker of that row left open is gone with it. Totals are kept.
pub fn take_stat_row(row: usize) {
    STAT_ROW.store(row, Ordering::Relaxed);
    if let Some(s) = stats() {
        for f in [Stat::Active, Stat::Reading, Stat::Writing, Stat::Waiting] {
            s.cell(row, f).store(0, Ordering::Relaxed);
        }
    }
}

/// Adds `delta` to figure `f` of this process's row.
pub fn count(f: Stat, delta: i64) {
    if let Some(s) = stats() {
        s.cell(STAT_ROW.load(Ordering::Relaxed), f)
            .fetch_add(delta as u64, Ordering::Relaxed);
    }
}

/// Adds one to the master's figure `f` (the master, at a reload).
pub fn count_master(f: MasterFigure) {
    if let Some(s) = stats() {
        s.master_cell(f).fetch_add(1, Ordering::Relaxed);
    }
}

/// The master's figure `f` (0 when not mapped).
pub fn master_figure(f: MasterFigure) -> u64 {
    stats().map_or(0, |s| s.master_cell(f).load(Ordering::Relaxed))
}

/// A TLS handshake with a client finished (`resumed`: it resumed a session).
pub fn count_handshake(resumed: bool) {
    count(
        if resumed {
            Stat::TlsResumed
        } else {
            Stat::TlsFull
        },
        1,
    );
}

/// The sum of figure `f` over all workers (0 when not mapped).
pub fn total(f: Stat) -> u64 {
    stats().map_or(0, |s| s.total(f))
}

/// What a connection counts as in [`Stat::Reading`], [`Stat::Writing`], [`Stat::Waiting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnStat {
    /// Not counted (a subrequest's connection, or not yet).
    #[default]
    None,
    Waiting,
    Reading,
    Writing,
}

impl ConnStat {
    fn figure(self) -> Option<Stat> {
        match self {
            ConnStat::None => None,
            ConnStat::Waiting => Some(Stat::Waiting),
            ConnStat::Reading => Some(Stat::Reading),
            ConnStat::Writing => Some(Stat::Writing),
        }
    }

    /// Moves a connection from `self` to `to` in the figures.
    pub fn moved(self, to: ConnStat) {
        if self == to {
            return;
        }
        if let Some(f) = self.figure() {
            count(f, -1);
        }
        if let Some(f) = to.figure() {
            count(f, 1);
        }
    }
}
