//! `$ssl_session_id`: the 32-byte id of a client connection's TLS session, the same on a
//! full handshake and on every resumption of that session.
//!
//! rustls's unbuffered API exposes no session id, but Proton owns both places where rustls
//! keeps a session: the ticketer ([`crate::tls::Tickets`]) seals the id inside every ticket
//! it issues and opens it again, and the session stores ([`Tracked`], around the shared
//! zone and the per-worker cache) use their key as the id. rustls calls them synchronously,
//! on the worker's thread, inside the one call that processes a connection's records; the
//! connection lends its id to that call with [`lend`] and takes it back with [`reclaim`].
//!
//! What this module must never do: keep anything between two calls into rustls. The id
//! belongs to the connection (its `Records`); the thread-local cell is only the channel
//! between one call's callbacks and the connection that made the call.

use rustls::server::StoresServerSessions;
use std::cell::Cell;
use std::sync::Arc;

/// Bytes in a session id (nginx prints them as 64 hex digits).
pub const LEN: usize = 32;

/// A connection's session id, and whether it came from a session the client resumed (an id
/// rustls then issues a new session under, in TLS 1.3 stateful resumption, does not
/// replace it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionId {
    pub bytes: [u8; LEN],
    pub resumed: bool,
    /// When a resumed ticket's session expires (Unix seconds): the tickets issued on the
    /// connection keep it, so that resuming again and again does not make a session outlive
    /// `ssl_session_timeout` (rustls issues a new ticket on each TLS 1.2 resumption).
    pub expires: Option<u64>,
}

thread_local! {
    // The return channel of one call into rustls: set from the calling connection's id right
    // before the call ([`lend`]), emptied right after it ([`reclaim`]). It holds no state of
    // its own between calls.
    static HANDOFF: Cell<Option<SessionId>> = const { Cell::new(None) };
}

/// Before a call into rustls for a connection: its current id, for the callbacks to see.
pub fn lend(id: Option<SessionId>) {
    HANDOFF.set(id);
}

/// After that call: the connection's id as the callbacks left it (the cell is emptied).
pub fn reclaim() -> Option<SessionId> {
    HANDOFF.take()
}

/// The id to seal in a new ticket, and the expiry of the ticket the connection resumed (if
/// it did): the connection's id, else a new random one that becomes the connection's (so
/// that every ticket of one connection carries the same id). `None` if the system's random
/// source fails (the ticket is then not issued).
pub fn for_ticket() -> Option<([u8; LEN], Option<u64>)> {
    if let Some(id) = HANDOFF.get() {
        return Some((id.bytes, id.expires));
    }
    let mut bytes = [0u8; LEN];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    HANDOFF.set(Some(SessionId {
        bytes,
        resumed: false,
        expires: None,
    }));
    Some((bytes, None))
}

/// A session was resumed (from a ticket that expires at `expires`, or from a store): its id
/// becomes the connection's.
pub fn resumed(bytes: [u8; LEN], expires: Option<u64>) {
    HANDOFF.set(Some(SessionId {
        bytes,
        resumed: true,
        expires,
    }));
}

/// A new session was stored under `key`: its id becomes the connection's, unless the
/// connection resumed a session (TLS 1.3 stores a new session per ticket it issues, on a
/// resumed connection too).
fn stored(key: &[u8]) {
    if HANDOFF.get().is_some_and(|id| id.resumed) {
        return;
    }
    HANDOFF.set(Some(SessionId {
        bytes: of_key(key),
        resumed: false,
        expires: None,
    }));
}

/// The id of a stored session's key: the key itself when it has 32 bytes (the session id of
/// TLS 1.2, rustls's random ticket of TLS 1.3), else its SHA-256.
pub fn of_key(key: &[u8]) -> [u8; LEN] {
    let mut id = [0u8; LEN];
    match <[u8; LEN]>::try_from(key) {
        Ok(k) => id = k,
        Err(_) => {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
            id.copy_from_slice(d.as_ref());
        }
    }
    id
}

/// A session store whose keys are the sessions' ids: a session put becomes the
/// connection's new session, one found by `get` or `take` its resumed one. Each value
/// starts with the session context of the server that stored it (`tls::session_context`);
/// a session stored under another context is not found (nginx's session id context).
#[derive(Debug)]
pub struct Tracked(
    pub Arc<dyn StoresServerSessions>,
    pub [u8; crate::tls::CTX_LEN],
);

impl Tracked {
    /// The session's state, when it was stored under this store's context.
    fn own(&self, mut value: Vec<u8>) -> Option<Vec<u8>> {
        if !value.starts_with(&self.1) {
            return None;
        }
        value.drain(..self.1.len());
        Some(value)
    }
}

impl StoresServerSessions for Tracked {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        stored(&key);
        let mut v = Vec::with_capacity(self.1.len() + value.len());
        v.extend_from_slice(&self.1);
        v.extend_from_slice(&value);
        self.0.put(key, v)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.own(self.0.get(key)?)?;
        resumed(of_key(key), None);
        Some(value)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.own(self.0.take(key)?)?;
        resumed(of_key(key), None);
        Some(value)
    }

    fn can_cache(&self) -> bool {
        self.0.can_cache()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ServerSessionMemoryCache;

    #[test]
    fn a_stored_session_gives_its_key_and_a_resumed_one_keeps_its_id() {
        let store = Tracked(ServerSessionMemoryCache::new(8), [3; crate::tls::CTX_LEN]);
        let key = [7u8; LEN];
        lend(None);
        assert!(store.put(key.to_vec(), b"state".to_vec()));
        let id = reclaim().expect("an id");
        assert_eq!((id.bytes, id.resumed), (key, false));
        assert_eq!(reclaim(), None, "the cell is emptied");

        // Resumption: the key found is the id, and a session stored afterwards on the same
        // connection (TLS 1.3 issues new tickets) does not replace it.
        lend(None);
        assert_eq!(store.get(&key).as_deref(), Some(b"state".as_slice()));
        assert!(store.put(vec![9; LEN], b"next".to_vec()));
        assert_eq!(
            reclaim(),
            Some(SessionId {
                bytes: key,
                resumed: true,
                expires: None,
            })
        );
        // A full handshake's later session replaces its earlier one (TLS 1.3: the id is the
        // last ticket's, which clients resume first).
        lend(Some(SessionId {
            bytes: key,
            resumed: false,
            expires: None,
        }));
        assert!(store.put(vec![9; LEN], b"next".to_vec()));
        assert_eq!(reclaim().map(|i| i.bytes), Some([9; LEN]));
        // A key of another length: its SHA-256.
        lend(None);
        assert!(store.put(b"short".to_vec(), b"v".to_vec()));
        let id = reclaim().expect("an id");
        assert_ne!(id.bytes, of_key(b"other"));
        assert_eq!(id.bytes, of_key(b"short"));
        // Not found: nothing changes.
        lend(None);
        assert!(store.take(&[1; LEN]).is_none());
        assert_eq!(reclaim(), None);
    }

    #[test]
    fn every_ticket_of_a_connection_carries_one_id() {
        lend(None);
        let (a, _) = for_ticket().expect("random");
        let (b, _) = for_ticket().expect("random");
        assert_eq!(a, b);
        assert_eq!(reclaim().map(|i| i.bytes), Some(a));
        lend(None);
        let (c, _) = for_ticket().expect("random");
        assert_ne!(a, c, "another connection, another id");
        reclaim();
    }
}
