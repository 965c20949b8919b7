//! When each checked server is due, without a clock of its own: [`Schedule`] is a min-heap
//! of exact deadlines with at most one live entry per server (its next probe while it is
//! idle, the probe's timeout while one runs), and the two rules that place probes in time:
//!
//! * [`first_start`]: the servers of one upstream start spread over its interval, each at a
//!   random point of its own slot of `interval / n`, so 1,000 servers with `interval=5s`
//!   start about 5 ms apart instead of all in the same millisecond, and no two upstreams'
//!   probes line up by construction;
//! * [`next_start`]: a server's next probe is due one interval after the previous one was
//!   due (so the spread holds round after round), or when its previous probe ended if that
//!   took longer (never two probes of a server at once).
//!
//! The caller passes `now`; tests drive it with a fake clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines of the checked servers, by index.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// The live deadline of each server; heap entries that differ are stale.
    armed: Vec<Option<Instant>>,
}

impl Schedule {
    /// A schedule for `n` servers, none armed.
    pub fn new(n: usize) -> Schedule {
        Schedule {
            heap: BinaryHeap::with_capacity(n),
            armed: vec![None; n],
        }
    }

    /// Server `i` is due at `at` (replacing its previous deadline).
    pub fn arm(&mut self, i: usize, at: Instant) {
        if let Some(slot) = self.armed.get_mut(i) {
            *slot = Some(at);
            self.heap.push(Reverse((at, i)));
        }
    }

    /// Server `i` has no deadline.
    pub fn disarm(&mut self, i: usize) {
        if let Some(slot) = self.armed.get_mut(i) {
            *slot = None;
        }
    }

    /// A server whose deadline is `now` or earlier, earliest first, with that deadline; it
    /// is disarmed.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, Instant)> {
        while let Some(&Reverse((at, i))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(slot) = self.armed.get_mut(i) {
                if *slot == Some(at) {
                    *slot = None;
                    return Some((i, at));
                }
            }
        }
        None
    }

    /// The earliest live deadline (stale entries on top are dropped).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, i))) = self.heap.peek() {
            if self.armed.get(i).copied().flatten() == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Heap entries, stale ones included (bounded: see the tests).
    pub fn entries(&self) -> usize {
        self.heap.len()
    }
}

/// The first probe of server `k` of `n` servers of an upstream checked every `interval`,
/// from `now`: at `(k + jitter) / n` of the interval, `jitter` in [0, 1).
pub fn first_start(now: Instant, interval: Duration, k: usize, n: usize, jitter: f64) -> Instant {
    let n = n.max(1) as f64;
    let at = (k as f64 + jitter.clamp(0.0, 0.999_999)) / n;
    now + interval.mul_f64(at.clamp(0.0, 1.0))
}

/// The next probe of a server whose previous probe was due at `due` and ended at `ended`.
pub fn next_start(due: Instant, interval: Duration, ended: Instant) -> Instant {
    (due + interval).max(ended)
}

/// How early a probe of a server checked every `interval` may start so that it shares a
/// wake-up of the loop with another one: 1% of the interval, at most 10 ms. (1,000 servers
/// every 5 s: about 100 wake-ups a second starting two probes each, instead of 200 starting
/// one; never more than a few probes in one go.)
pub fn start_slack(interval: Duration) -> Duration {
    (interval / 100).min(MAX_SLACK)
}

/// The most a probe starts ahead of its time.
pub const MAX_SLACK: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::XorShift64;

    fn jitter(rng: &mut XorShift64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// 1,000 servers checked every 5 s, probes that take no time, a fake clock stepped by
    /// 1 ms through 30 s: starts are spread (never more than two in a millisecond, about 20 in
    /// any 100 ms), each server is probed exactly every 5 s, and the heap stays small.
    #[test]
    fn a_thousand_servers_spread_and_steady() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(5);
        let n = 1000;
        let mut rng = XorShift64::new(7);
        let mut s = Schedule::new(n);
        let mut due = vec![t0; n];
        for (k, d) in due.iter_mut().enumerate() {
            *d = first_start(t0, interval, k, n, jitter(&mut rng));
            s.arm(k, *d);
        }
        let mut starts: Vec<Vec<Duration>> = vec![Vec::new(); n];
        let mut per_ms = vec![0u32; 30_001];
        for ms in 0..=30_000u64 {
            let now = t0 + Duration::from_millis(ms);
            while let Some((i, at)) = s.pop_due(now) {
                assert!(at == due[i] && at <= now);
                starts[i].push(due[i] - t0);
                per_ms[ms as usize] += 1;
                due[i] = next_start(due[i], interval, now);
                s.arm(i, due[i]);
            }
            assert!(s.entries() <= n, "stale entries pile up");
        }
        assert!(
            per_ms.iter().all(|&c| c <= 2),
            "bursts: {:?}",
            per_ms.iter().max()
        );
        for w in per_ms.windows(100).step_by(100) {
            let c: u32 = w.iter().sum();
            assert!((19..=21).contains(&c), "{c} starts in 100 ms");
        }
        for (i, st) in starts.iter().enumerate() {
            assert_eq!(st.len(), 6, "server {i}: {st:?}");
            assert!(st[0] < interval);
            assert!(st.windows(2).all(|p| p[1] - p[0] == interval), "{st:?}");
        }
    }

    /// The loop as the worker runs it: it sleeps until the earliest deadline, then starts
    /// every probe due within the slack. 1,000 servers every 5 s over 30 s: at most about
    /// 100 wake-ups a second (not 200), at most three probes per wake-up, none more than the slack early,
    /// and each server still exactly every 5 s.
    #[test]
    fn wakeups_are_shared_within_the_slack() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(5);
        let slack = start_slack(interval);
        assert_eq!(slack, Duration::from_millis(10));
        let n = 1000;
        let mut rng = XorShift64::new(11);
        let mut s = Schedule::new(n);
        let mut due = vec![t0; n];
        for (k, d) in due.iter_mut().enumerate() {
            *d = first_start(t0, interval, k, n, jitter(&mut rng));
            s.arm(k, *d);
        }
        let end = t0 + Duration::from_secs(30);
        let (mut wakes, mut most) = (0, 0);
        let mut starts: Vec<Vec<Instant>> = vec![Vec::new(); n];
        while let Some(now) = s.next_deadline().filter(|&d| d <= end) {
            wakes += 1;
            let mut here = 0;
            while let Some((i, at)) = s.pop_due(now + slack) {
                assert!(at >= now && at <= now + slack);
                here += 1;
                starts[i].push(at);
                due[i] = next_start(due[i], interval, now);
                s.arm(i, due[i]);
            }
            most = most.max(here);
        }
        assert!(most <= 3, "{most} probes in one wake-up");
        // One wake-up per probe would be 6,000.
        assert!((1500..=3300).contains(&wakes), "{wakes} wake-ups in 30 s");
        for st in &starts {
            assert!(st.windows(2).all(|p| p[1] - p[0] == interval));
        }
        assert_eq!(
            start_slack(Duration::from_millis(100)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn a_slow_probe_delays_the_next_one() {
        let t0 = Instant::now();
        let i = Duration::from_secs(1);
        assert_eq!(next_start(t0, i, t0 + Duration::from_millis(10)), t0 + i);
        assert_eq!(
            next_start(t0, i, t0 + Duration::from_millis(1500)),
            t0 + Duration::from_millis(1500)
        );
    }

    #[test]
    fn first_starts_stay_in_the_interval() {
        let t0 = Instant::now();
        let i = Duration::from_secs(2);
        assert_eq!(first_start(t0, i, 0, 1, 0.0), t0);
        assert!(first_start(t0, i, 0, 1, 1.0) < t0 + i);
        assert!(first_start(t0, i, 9, 10, 0.99) < t0 + i);
        assert!(first_start(t0, i, 5, 10, 0.0) == t0 + Duration::from_secs(1));
        assert_eq!(first_start(t0, i, 0, 0, 0.5), t0 + Duration::from_secs(1));
    }

    /// A deadline replaced by an earlier or later one: only the live one fires.
    #[test]
    fn rearmed_and_disarmed() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = Schedule::new(3);
        s.arm(0, ms(100));
        s.arm(0, ms(50));
        s.arm(1, ms(10));
        s.arm(1, ms(200));
        s.arm(2, ms(20));
        s.disarm(2);
        assert_eq!(s.next_deadline(), Some(ms(50)));
        assert_eq!(s.pop_due(ms(49)), None);
        assert_eq!(s.pop_due(ms(150)), Some((0, ms(50))));
        assert_eq!(s.pop_due(ms(150)), None, "the stale 100 ms entry of 0");
        assert_eq!(s.next_deadline(), Some(ms(200)));
        assert_eq!(s.pop_due(ms(300)), Some((1, ms(200))));
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.entries(), 0);
        s.arm(7, ms(1));
        assert_eq!(s.pop_due(ms(5)), None, "out of range is ignored");
    }
}
