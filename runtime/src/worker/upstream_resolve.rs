//! `server name … resolve` (nginx ≥ 1.27.3): the addresses of an upstream server's name,
//! found at run time and kept up to date.
//!
//! Each such line has [`RESOLVE_SLOTS`] peers in its group (made at load, see
//! `config::expand_upstreams`), every one without an address at first and so never picked.
//! The first worker of the generation asks the group's `resolver` for the name at start and
//! again every second after each answer (the resolver's cache answers at once until the
//! records' TTL or `valid=` runs out, so a new query goes out only then), without blocking.
//! It writes the addresses into the peers' shared slots (`SharedUpstreams::set_peer_addr`): an
//! address that stays keeps its peer (and its failures), a new one takes a free peer, one
//! that went frees its peer. Every worker, at each sweep (250 ms) and the first right after
//! an answer, takes the shared addresses into its balancer: a peer with an address can be
//! picked, one without cannot, and the idle keep-alive connections of a peer whose address
//! changed are closed. An error answer (or a timeout) keeps the peers as they were; an empty
//! answer removes them. A reload carries the addresses over (`Loaded::carry_upstream_state`).

use super::Worker;
use crate::config::RESOLVE_SLOTS;
use crate::elog;
use crate::resolver::{Outcome, Waiter};
use crate::upstream::PeerAddr;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Waiter keys of these lookups start here: far above any connection's slab key.
pub(crate) const KEY_BASE: usize = usize::MAX / 2;
/// How long after an answer (or an error) the name is asked again.
const AGAIN: Duration = Duration::from_secs(1);

/// One `resolve` line's lookup in this worker.
#[derive(Debug, Default, Clone, Copy)]
struct Lookup {
    /// The lookup in flight: its serial number and when it is given up.
    pending: Option<(u32, Instant)>,
    /// When to ask again (`None`: now).
    next: Option<Instant>,
}

/// The `resolve` lines' lookups of a worker.
#[derive(Debug, Default)]
pub(crate) struct UpstreamResolve {
    /// This worker asks (the first of its generation); the others only read the results.
    asks: bool,
    lookups: Vec<Lookup>,
}

impl UpstreamResolve {
    pub(crate) fn new(loaded: &crate::config::Loaded, first_worker: bool) -> UpstreamResolve {
        UpstreamResolve {
            asks: first_worker,
            lookups: vec![Lookup::default(); loaded.resolve_servers.len()],
        }
    }
}

/// How long after an error answer (or none) a name is asked again: nginx's
/// `max(resolver_timeout, 1 s)`.
fn retry_after(group: &proton_ir::Upstream) -> Duration {
    Duration::from_millis(group.resolver_timeout_ms.max(1000))
}

impl Worker<'_> {
    /// At start and at every sweep: the first worker asks for the names whose time has
    /// come; every worker takes the shared addresses into its balancers.
    pub(crate) fn upstream_resolve_tick(&mut self) {
        if self.loaded.resolve_servers.is_empty() {
            return;
        }
        if self.dyn_ups.asks {
            for i in 0..self.loaded.resolve_servers.len() {
                self.ask_upstream_name(i);
            }
        }
        self.refresh_resolved();
    }

    fn ask_upstream_name(&mut self, i: usize) {
        let loaded = self.loaded;
        let now = self.now;
        let (Some(rs), Some(lk)) = (
            loaded.resolve_servers.get(i),
            self.dyn_ups.lookups.get(i).copied(),
        ) else {
            return;
        };
        let Some(group) = loaded.ir.upstreams.get(rs.upstream) else {
            return;
        };
        let Some(r) = group.resolver else {
            return;
        };
        if let Some((serial, deadline)) = lk.pending {
            if now < deadline {
                return;
            }
            // No answer within resolver_timeout: given up, asked again later.
            self.resolvers.cancel(r as usize, serial);
            elog!(
                self.elog,
                Error,
                "{} could not be resolved (110: Operation timed out) in upstream \"{}\"",
                rs.host,
                group.name
            );
            self.dyn_ups.lookups[i] = Lookup {
                pending: None,
                next: Some(now + retry_after(group)),
            };
            return;
        }
        if lk.next.is_some_and(|t| now < t) {
            return;
        }
        let serial = self.resolvers.next_serial();
        let deadline = now + Duration::from_millis(group.resolver_timeout_ms.max(1));
        let waiter = Waiter {
            key: KEY_BASE + i,
            number: 0,
            request: 0,
            serial,
            deadline,
            recursion: 0,
        };
        let answer = self.resolvers.resolve(
            r as usize,
            rs.host.as_bytes(),
            waiter,
            now,
            &self.registry,
            &self.elog,
        );
        match answer {
            Some(outcome) => self.apply_upstream_name(i, outcome),
            None => self.dyn_ups.lookups[i].pending = Some((serial, deadline)),
        }
    }

    /// The resolver's answer for waiter `key` (at or above [`KEY_BASE`]) of lookup `serial`.
    pub(crate) fn upstream_name_resolved(&mut self, key: usize, serial: u32, outcome: Outcome) {
        let i = key - KEY_BASE;
        let awaited = self
            .dyn_ups
            .lookups
            .get(i)
            .and_then(|l| l.pending)
            .is_some_and(|(s, _)| s == serial);
        if awaited {
            self.apply_upstream_name(i, outcome);
            self.refresh_resolved();
        }
    }

    /// Writes what the lookup of line `i` found into the shared peers (the first worker).
    fn apply_upstream_name(&mut self, i: usize, outcome: Outcome) {
        let loaded = self.loaded;
        let Some(rs) = loaded.resolve_servers.get(i) else {
            return;
        };
        let Some(group) = loaded.ir.upstreams.get(rs.upstream) else {
            return;
        };
        self.dyn_ups.lookups[i] = Lookup {
            pending: None,
            next: Some(self.now + AGAIN),
        };
        let ips = match outcome {
            Ok(ips) => ips,
            Err(code) => {
                elog!(
                    self.elog,
                    Error,
                    "{} could not be resolved ({code}: {}) in upstream \"{}\"",
                    rs.host,
                    crate::resolver::wire::strerror(code),
                    group.name
                );
                if code != 3 {
                    // As nginx: the peers stay as they were, and the name is asked again
                    // after resolver_timeout (at least a second).
                    self.dyn_ups.lookups[i].next = Some(self.now + retry_after(group));
                    return;
                }
                // No such name: no addresses (nginx empties the server too).
                Vec::new()
            }
        };
        let mut want: Vec<SocketAddr> = Vec::with_capacity(ips.len().min(RESOLVE_SLOTS));
        for ip in ips {
            let a = SocketAddr::new(ip, rs.port);
            if !want.contains(&a) && want.len() < 4 * RESOLVE_SLOTS {
                want.push(a);
            }
        }
        let shared = &loaded.upstream_shared;
        let have: Vec<Option<SocketAddr>> = rs
            .slots
            .clone()
            .map(|p| shared.peer_addr(rs.upstream, p).flatten())
            .collect();
        // Addresses that stay keep their peers (whatever order the answer lists them in,
        // so that a name with more addresses than peers does not churn); those that went
        // free theirs, and new ones take free peers as fresh servers.
        // Peers that were empty before are filled first: one freed just now may still be
        // in use for its former address by a worker that has not seen the change (its
        // failure there would count against the new server).
        let mut free = Vec::new();
        let mut freed = Vec::new();
        for (j, a) in have.iter().enumerate() {
            match a {
                Some(a) if want.contains(a) => want.retain(|w| w != a),
                Some(_) => {
                    shared.set_peer_addr(rs.upstream, rs.slots.start + j, None);
                    freed.push(j);
                }
                None => free.push(j),
            }
        }
        free.extend(freed);
        for (a, j) in want.into_iter().zip(free) {
            shared.reset_peer(rs.upstream, rs.slots.start + j);
            shared.set_peer_addr(rs.upstream, rs.slots.start + j, Some(a));
        }
    }

    /// Takes the shared addresses of every `resolve` line into this worker's balancers.
    fn refresh_resolved(&mut self) {
        let loaded = self.loaded;
        for rs in &loaded.resolve_servers {
            let mut changed = false;
            for p in rs.slots.clone() {
                let Some(now) = loaded.upstream_shared.peer_addr(rs.upstream, p) else {
                    continue;
                };
                let now = now.map(PeerAddr::Inet);
                if self.ups.peer_address(rs.upstream, p) != now.as_ref() {
                    self.ups.readdress(rs.upstream, p, now);
                    changed = true;
                }
            }
            if changed {
                self.ups.settle(rs.upstream);
            }
        }
    }
}
