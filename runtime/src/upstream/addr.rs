//! The address of an upstream server, [`PeerAddr`]: an inet socket address, or the path of a
//! unix-domain socket (`server unix:/path;`, `proxy_pass http://unix:/path;`). It is the one
//! type wherever a peer's address goes: resolved once at load, connected to by the workers (proxying and
//! health checks), printed in `$upstream_addr` and log lines as nginx prints it
//! (`127.0.0.1:8080`, `[::1]:8080`, `unix:/path`).
//!
//! Cloning is cheap and never allocates (a unix path is shared), so a request can keep the
//! address of its attempt without a buffer of its own.
//!
//! A unix-domain connection is carried as a `TcpStream` over its descriptor, as accepted
//! unix connections are (`worker/accept.rs`): reads, writes, peeks, shutdown and timeouts are
//! the same calls on both kinds of stream socket, so the proxy state machine and the TLS
//! transport take either. Nothing here sets a TCP-only option on a unix socket.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Where an upstream server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A unix-domain stream socket, the path as written in the config.
    Unix(Arc<Path>),
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr::Inet(a)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(a) => write!(f, "{a}"),
            PeerAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl PeerAddr {
    /// The path of an address written `unix:PATH` (the prefix in any case, as nginx), if it
    /// is one.
    pub fn unix_path(address: &str) -> Option<&str> {
        address
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("unix:"))
            .and_then(|_| address.get(5..))
    }

    /// A unix-domain socket address for `path`.
    pub fn unix(path: &str) -> PeerAddr {
        PeerAddr::Unix(Arc::from(Path::new(path)))
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, PeerAddr::Unix(_))
    }

    /// The inet address, if it is one.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Inet(a) => Some(*a),
            PeerAddr::Unix(_) => None,
        }
    }

    /// Starts a non-blocking connect (for a worker's event loop). A unix-domain connect is
    /// complete or refused when this returns (`EAGAIN` when the listener's backlog is full,
    /// which nginx counts as a refusal too); a TCP one may still be in progress.
    pub fn connect(&self) -> std::io::Result<mio::net::TcpStream> {
        match self {
            PeerAddr::Inet(a) => mio::net::TcpStream::connect(*a),
            PeerAddr::Unix(p) => {
                let s = mio::net::UnixStream::connect(p)?;
                let fd: std::os::fd::OwnedFd = s.into();
                Ok(mio::net::TcpStream::from(fd))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn printed_as_nginx() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
        let v6: SocketAddr = "[::1]:80".parse().expect("an address");
        assert_eq!(PeerAddr::from(v4).to_string(), "127.0.0.1:8080");
        assert_eq!(PeerAddr::from(v6).to_string(), "[::1]:80");
        assert_eq!(
            PeerAddr::unix("/run/a.sock").to_string(),
            "unix:/run/a.sock"
        );
        assert_eq!(PeerAddr::unix_path("UNIX:/x:y"), Some("/x:y"));
        assert_eq!(PeerAddr::unix_path("unix"), None);
        assert_eq!(PeerAddr::unix_path("127.0.0.1:80"), None);
        assert!(PeerAddr::unix("a").is_unix() && PeerAddr::unix("a").inet().is_none());
    }

    #[test]
    fn connects_to_unix_sockets_as_tcp_streams() {
        let dir = std::env::temp_dir().join(format!("proton-addr-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let addr = PeerAddr::unix(path.to_str().expect("utf-8"));
        // The connect is complete when it returns: the first write goes through.
        let mut c = addr.connect().expect("connect");
        let (mut s, _) = listener.accept().expect("accept");
        c.write_all(b"ping").expect("write");
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"ping");
        // TCP-only options fail on it; nothing else does.
        assert!(c.set_nodelay(true).is_err());
        assert!(c.peer_addr().is_err() && c.take_error().is_ok());
        // A missing socket file: ENOENT, as nginx reports it.
        let gone = PeerAddr::unix(dir.join("none.sock").to_str().expect("utf-8"));
        let e = gone.connect().expect_err("no socket file");
        assert_eq!(e.raw_os_error(), Some(2));
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
