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

    /// [`PeerAddr::connect`] from the local address `local` (`proxy_bind`), as nginx's
    /// `ngx_event_connect_peer`: IP_TRANSPARENT first when `transparent` (a non-local address
    /// may be bound; it needs CAP_NET_ADMIN), IP_BIND_ADDRESS_NO_PORT when no port is given
    /// (the port is picked at connect time, so many connections can share the address),
    /// then `bind` and a non-blocking connect. A failure before the connect is
    /// [`ConnectError::Local`] (nginx answers 500 and tries no other server); a unix-domain
    /// peer cannot be connected from an inet address (`EINVAL` at `bind`, as nginx).
    pub fn connect_bound(
        &self,
        local: SocketAddr,
        transparent: bool,
    ) -> Result<mio::net::TcpStream, ConnectError> {
        use socket2::{Domain, Socket, Type};
        let (domain, peer) = match self {
            PeerAddr::Inet(a) => (Domain::for_address(*a), Some(*a)),
            PeerAddr::Unix(_) => (Domain::UNIX, None),
        };
        let s = Socket::new(domain, Type::STREAM.nonblocking().cloexec(), None)
            .map_err(ConnectError::Connect)?;
        if transparent {
            let what = if local.is_ipv4() {
                "setsockopt(IP_TRANSPARENT)"
            } else {
                "setsockopt(IPV6_TRANSPARENT)"
            };
            let set = if local.is_ipv4() {
                s.set_ip_transparent(true)
            } else {
                set_ipv6_transparent(&s)
            };
            set.map_err(|e| ConnectError::Local(what.to_string(), e))?;
        }
        if peer.is_some() && local.port() == 0 {
            // Best effort: where the option is unknown the port is picked at bind.
            let _ = nix::sys::socket::setsockopt(
                &s,
                nix::sys::socket::sockopt::IpBindAddressNoPort,
                &true,
            );
        }
        // nginx names the address as written: without a port when none was given. Made
        // only for an error.
        let bind_failed = |e: std::io::Error| {
            let name = if local.port() == 0 {
                local.ip().to_string()
            } else {
                local.to_string()
            };
            ConnectError::Local(format!("bind({name})"), e)
        };
        s.bind(&local.into()).map_err(bind_failed)?;
        let Some(peer) = peer else {
            return Err(bind_failed(std::io::Error::from_raw_os_error(
                nix::libc::EINVAL,
            )));
        };
        match s.connect(&peer.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => return Err(ConnectError::Connect(e)),
        }
        let fd: std::os::fd::OwnedFd = s.into();
        Ok(mio::net::TcpStream::from(fd))
    }
}

/// IPV6_TRANSPARENT on `s` (neither socket2 nor nix has it).
fn set_ipv6_transparent(s: &socket2::Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: nix::libc::c_int = 1;
    // SAFETY: `s` is an open socket for the whole call, and the option value is a live
    // c_int whose exact size is passed.
    let r = unsafe {
        nix::libc::setsockopt(
            s.as_raw_fd(),
            nix::libc::IPPROTO_IPV6,
            nix::libc::IPV6_TRANSPARENT,
            (&one as *const nix::libc::c_int).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Why [`PeerAddr::connect_bound`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Setting up the local end failed (what was tried, e.g. `bind(127.0.0.2)`): a
    /// configuration or permission problem, not the peer's fault.
    Local(String, std::io::Error),
    /// The socket could not be made, or the connect failed at once.
    Connect(std::io::Error),
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
    fn connects_from_a_bound_address() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let peer = PeerAddr::from(l.local_addr().expect("addr"));
        let local: SocketAddr = "127.0.0.2:0".parse().expect("an address");
        let c = peer.connect_bound(local, false).expect("connect");
        let (s, from) = l.accept().expect("accept");
        assert_eq!(from.ip().to_string(), "127.0.0.2");
        drop((c, s));
        // An address of no local interface fails at bind, named as nginx names it.
        let away: SocketAddr = "192.0.2.1:0".parse().expect("an address");
        match peer.connect_bound(away, false) {
            Err(ConnectError::Local(what, e)) => {
                assert_eq!(what, "bind(192.0.2.1)");
                assert_eq!(e.raw_os_error(), Some(nix::libc::EADDRNOTAVAIL));
            }
            other => panic!("{other:?}"),
        }
        // A unix-domain peer cannot be reached from an inet address.
        match PeerAddr::unix("/nonexistent.sock").connect_bound(local, false) {
            Err(ConnectError::Local(what, _)) => assert_eq!(what, "bind(127.0.0.2)"),
            other => panic!("{other:?}"),
        }
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
