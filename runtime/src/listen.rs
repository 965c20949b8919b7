//! Listening sockets. The master binds every listener of the IR before forking; workers
//! inherit them. A reload keeps the sockets of addresses that stay (so no connection is
//! refused during a reload), binds the new ones and closes the removed ones.
//!
//! When a wildcard address (`0.0.0.0:80`) and a specific one (`127.0.0.1:80`) share a port,
//! only the wildcard is bound, as nginx does (unless the specific one has `bind`); the worker
//! maps each accepted connection to its IR listener by the connection's local address.
//!
//! A unix-domain listener (`listen unix:/path`) is one socket shared by every worker
//! (SO_REUSEPORT does not spread unix-socket connections), made as nginx makes it: the bind
//! fails if the path exists (nginx does not remove a stale file either), the file is made
//! `rw-rw-rw-` with chmod, and the master removes it when the socket is closed for good (a
//! stop, or a reload that drops the listener).

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};
use proton_ir::{SoKeepalive, SocketOptions};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A bound socket and the IR listener addresses it serves.
pub struct Bound {
    /// The address bound (`0.0.0.0:80`, `[::]:80`, `127.0.0.1:8080`); `0.0.0.0:0` for a
    /// unix-domain socket, whose path is in `unix`.
    pub addr: SocketAddr,
    /// `listen unix:PATH`: the socket's path.
    pub unix: Option<PathBuf>,
    /// The listening socket (TCP, or unix-domain with `unix`); every worker shares it
    /// when there are no per-worker sockets.
    pub socket: OwnedFd,
    /// One SO_REUSEPORT socket per worker slot (the kernel spreads connections over them),
    /// all bound by the master and kept across reloads. Never for unix sockets.
    pub reuseport: bool,
    pub per_worker: Vec<OwnedFd>,
    /// The `listen` socket options the sockets were made with.
    pub opts: SocketOptions,
    /// The process that made a unix socket's file, the only one that removes it.
    owner: u32,
}

impl Drop for Bound {
    /// A unix socket's file goes with the socket, as nginx removes it when it closes its
    /// listening sockets; only in the master that made it (workers never drop theirs, and
    /// must not remove the file the master still serves).
    fn drop(&mut self) {
        if let Some(p) = &self.unix {
            if std::process::id() == self.owner {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

impl Bound {
    /// The address as nginx writes it: `127.0.0.1:80`, `[::1]:80`, `unix:/path`.
    pub fn name(&self) -> String {
        match &self.unix {
            Some(p) => format!("unix:{}", p.display()),
            None => self.addr.to_string(),
        }
    }

    fn is(&self, w: &Wanted) -> bool {
        self.addr == w.addr && self.unix == w.unix
    }

    /// The socket worker `slot` accepts from.
    pub fn for_worker(&self, slot: usize) -> &OwnedFd {
        if self.per_worker.is_empty() {
            &self.socket
        } else {
            &self.per_worker[slot % self.per_worker.len()]
        }
    }

    /// With reuseport: makes sure there is one socket per worker slot.
    fn fit_workers(&mut self, workers: usize, backlog: i32) -> Result<(), String> {
        if !self.reuseport {
            return Ok(());
        }
        while self.per_worker.len() < workers.max(1) {
            self.per_worker
                .push(bind_one(self.addr, true, backlog, &self.opts)?);
        }
        // Extra sockets of a smaller generation are closed; connections already queued
        // on them are lost, as with nginx.
        self.per_worker.truncate(workers.max(1));
        Ok(())
    }
}

/// Parses an IR listener address (`ip:port`, `[v6]:port`); `None` for `unix:` ones.
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

/// The path of an IR listener address `unix:PATH`.
pub fn unix_path(s: &str) -> Option<&Path> {
    s.strip_prefix("unix:").map(Path::new)
}

/// The key `Bound::addr` has for every unix-domain listener.
pub const UNIX_PLACEHOLDER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

fn wildcard_of(a: &SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v) => SocketAddr::from(([0, 0, 0, 0], v.port())),
        SocketAddr::V6(v) => SocketAddr::from(([0u16; 8], v.port())),
    }
}

/// One address to bind: a TCP address (or, with `unix`, a unix socket path), whether it
/// gets per-worker SO_REUSEPORT sockets, its backlog and its socket options.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub addr: SocketAddr,
    pub unix: Option<PathBuf>,
    pub reuseport: bool,
    pub backlog: i32,
    pub opts: SocketOptions,
}

/// The socket addresses to bind for a set of IR listener addresses: a specific address is
/// left out when the wildcard of its family and port is also configured, unless it has
/// `bind` (or a socket option, which implies it, as in nginx).
pub fn addresses_to_bind(ir: &proton_ir::Ir) -> Vec<Wanted> {
    let all: Vec<Wanted> = ir
        .listeners
        .iter()
        // Every TCP listener gets one SO_REUSEPORT socket per worker: measured to spread
        // connections evenly (docs/architecture.md), where a shared socket woken with
        // EPOLLEXCLUSIVE leaves most of the work to one worker. `listen … reuseport` is
        // therefore always in effect. A unix socket is one socket for all workers.
        .filter_map(|l| match (parse_addr(&l.addr), unix_path(&l.addr)) {
            (Some(a), _) => Some(Wanted {
                addr: a,
                unix: None,
                reuseport: true,
                backlog: l.backlog,
                opts: l.sock,
            }),
            (None, Some(p)) => Some(Wanted {
                addr: UNIX_PLACEHOLDER,
                unix: Some(p.to_path_buf()),
                reuseport: false,
                backlog: l.backlog,
                opts: l.sock,
            }),
            _ => None,
        })
        .collect();
    let mut out: Vec<Wanted> = Vec::new();
    for w in &all {
        let covered = w.unix.is_none() && !w.opts.bind && {
            let wild = wildcard_of(&w.addr);
            wild != w.addr && all.iter().any(|b| b.unix.is_none() && b.addr == wild)
        };
        if !covered && !out.iter().any(|b| b.addr == w.addr && b.unix == w.unix) {
            out.push(w.clone());
        }
    }
    out
}

/// An OS error as nginx words it: `98: Address already in use`.
fn os_error(e: nix::errno::Errno) -> String {
    format!("{}: {}", e as i32, e.desc())
}

/// Creates, binds and listens on one socket.
///
/// With `reuseport`, the socket joins the SO_REUSEPORT group of the address, which only
/// works once the group's first socket exists (see [`bind_exclusive`]). Without it, the
/// bind and the listen are exclusive: they fail with EADDRINUSE when any other socket is
/// bound to (or listening on) the address, as nginx's do.
pub fn bind_one(
    addr: SocketAddr,
    reuseport: bool,
    backlog: i32,
    opts: &SocketOptions,
) -> Result<OwnedFd, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket() for {addr} failed ({})", os_error(e)))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| {
        format!(
            "setsockopt(SO_REUSEADDR) for {addr} failed ({})",
            os_error(e)
        )
    })?;
    if reuseport {
        setsockopt(&fd, sockopt::ReusePort, &true).map_err(|e| {
            format!(
                "setsockopt(SO_REUSEPORT) for {addr} failed ({})",
                os_error(e)
            )
        })?;
    }
    if addr.is_ipv6() {
        // nginx's default: an IPv6 wildcard does not also take IPv4 connections
        // (`ipv6only=off` lets it).
        let _ = setsockopt(&fd, sockopt::Ipv6V6Only, &!opts.ipv6only_off);
    }
    set_options(&fd, addr, opts)?;
    let sa = SockaddrStorage::from(addr);
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &sa)
        .map_err(|e| format!("bind() to {addr} failed ({})", os_error(e)))?;
    let backlog = backlog.clamp(1, 65_535);
    let bl = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    listen(&fd, bl).map_err(|e| {
        format!(
            "listen() to {addr}, backlog {backlog} failed ({})",
            os_error(e)
        )
    })?;
    if opts.deferred_secs > 0 {
        set_defer_accept(fd.as_fd(), opts.deferred_secs).map_err(|e| {
            format!(
                "setsockopt(TCP_DEFER_ACCEPT, {}) for {addr} failed ({})",
                opts.deferred_secs,
                os_error(e)
            )
        })?;
    }
    Ok(fd)
}

/// Creates, binds and listens on a unix-domain socket, as nginx: bind fails with
/// EADDRINUSE when the path exists; the file is then made `rw-rw-rw-`.
pub fn bind_unix(path: &Path, backlog: i32, opts: &SocketOptions) -> Result<OwnedFd, String> {
    let name = format!("unix:{}", path.display());
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket() for {name} failed ({})", os_error(e)))?;
    let failed = |what: &str, e: nix::errno::Errno| {
        format!("setsockopt({what}) for {name} failed ({})", os_error(e))
    };
    if let Some(n) = opts.rcvbuf {
        setsockopt(&fd, sockopt::RcvBuf, &(n as usize)).map_err(|e| failed("SO_RCVBUF", e))?;
    }
    if let Some(n) = opts.sndbuf {
        setsockopt(&fd, sockopt::SndBuf, &(n as usize)).map_err(|e| failed("SO_SNDBUF", e))?;
    }
    let sa = nix::sys::socket::UnixAddr::new(path)
        .map_err(|e| format!("bind() to {name} failed ({})", os_error(e)))?;
    bind(fd.as_raw_fd(), &sa).map_err(|e| format!("bind() to {name} failed ({})", os_error(e)))?;
    // nginx: chmod 0666, whatever the umask (a failure is logged there and ignored).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
    }
    let backlog = backlog.clamp(1, 65_535);
    let bl = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    if let Err(e) = listen(&fd, bl) {
        let _ = std::fs::remove_file(path);
        return Err(format!(
            "listen() to {name}, backlog {backlog} failed ({})",
            os_error(e)
        ));
    }
    Ok(fd)
}

/// The `listen` options set before bind: buffer sizes and keep-alive probes (accepted
/// connections inherit them from the listening socket on Linux, as nginx relies on).
fn set_options(fd: &OwnedFd, addr: SocketAddr, opts: &SocketOptions) -> Result<(), String> {
    set_options_fd(fd.as_fd(), addr, opts)
}

fn set_options_fd(
    fd: BorrowedFd<'_>,
    addr: SocketAddr,
    opts: &SocketOptions,
) -> Result<(), String> {
    let failed = |what: &str, e: nix::errno::Errno| {
        format!("setsockopt({what}) for {addr} failed ({})", os_error(e))
    };
    if let Some(n) = opts.rcvbuf {
        setsockopt(&fd, sockopt::RcvBuf, &(n as usize)).map_err(|e| failed("SO_RCVBUF", e))?;
    }
    if let Some(n) = opts.sndbuf {
        setsockopt(&fd, sockopt::SndBuf, &(n as usize)).map_err(|e| failed("SO_SNDBUF", e))?;
    }
    match opts.keepalive {
        SoKeepalive::Unset => {}
        SoKeepalive::Off => {
            setsockopt(&fd, sockopt::KeepAlive, &false).map_err(|e| failed("SO_KEEPALIVE", e))?
        }
        SoKeepalive::On { idle, intvl, cnt } => {
            setsockopt(&fd, sockopt::KeepAlive, &true).map_err(|e| failed("SO_KEEPALIVE", e))?;
            if idle > 0 {
                setsockopt(&fd, sockopt::TcpKeepIdle, &idle)
                    .map_err(|e| failed("TCP_KEEPIDLE", e))?;
            }
            if intvl > 0 {
                setsockopt(&fd, sockopt::TcpKeepInterval, &intvl)
                    .map_err(|e| failed("TCP_KEEPINTVL", e))?;
            }
            if cnt > 0 {
                setsockopt(&fd, sockopt::TcpKeepCount, &cnt)
                    .map_err(|e| failed("TCP_KEEPCNT", e))?;
            }
        }
    }
    Ok(())
}

/// TCP_DEFER_ACCEPT (`listen … deferred`): the connection is accepted only once data has
/// arrived (or after `secs`). nix has no wrapper for this option.
fn set_defer_accept(fd: impl AsRawFd, secs: u32) -> Result<(), nix::errno::Errno> {
    let value: nix::libc::c_int = secs.min(i32::MAX as u32) as nix::libc::c_int;
    // SAFETY: `fd` is an open socket owned by the caller; the option value points to a
    // live c_int whose size is passed, as setsockopt(2) requires.
    let rc = unsafe {
        nix::libc::setsockopt(
            fd.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_DEFER_ACCEPT,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

/// Binds the first socket of an address so that no other process can share the address,
/// and then opens it to this master's own per-worker sockets.
///
/// The socket is bound and put in the listening state *without* SO_REUSEPORT: that fails
/// with EADDRINUSE if any socket of any process listens on the address (or on the
/// wildcard covering it), including another Proton's SO_REUSEPORT sockets; and once it
/// listens, any later plain bind or listen of the address by someone else fails. Only then
/// is SO_REUSEPORT set on it, so the master's further sockets for the address (bound with
/// SO_REUSEPORT) can join its group. Another Proton always starts with this exclusive
/// step, so two masters can never share an address; of two starting at the same moment,
/// the one whose `listen()` comes second gets EADDRINUSE. (Checked on Linux 6.18: a
/// listening socket that gets SO_REUSEPORT afterwards joins the group of the sockets bound
/// after it, and the kernel spreads connections over all of them.)
pub fn bind_exclusive(
    addr: SocketAddr,
    backlog: i32,
    opts: &SocketOptions,
) -> Result<OwnedFd, String> {
    let sock = bind_one(addr, false, backlog, opts)?;
    setsockopt(&sock, sockopt::ReusePort, &true).map_err(|e| {
        format!(
            "setsockopt(SO_REUSEPORT) for {addr} failed ({})",
            os_error(e)
        )
    })?;
    Ok(sock)
}

/// The outcome of [`rebind`]: `Ok((new set, no longer needed))` or `Err((why, old set))`.
pub type Rebind = Result<(Vec<Bound>, Vec<Bound>), (String, Vec<Bound>)>;

/// Binds what `ir` needs, reusing sockets from `old` for addresses that stay. On success
/// returns the new set and the old sockets no longer needed; on failure `old` comes back
/// untouched (nothing of the new configuration is bound).
pub fn rebind(ir: &proton_ir::Ir, old: Vec<Bound>, workers: usize) -> Rebind {
    let wanted = addresses_to_bind(ir);
    let mut fresh = Vec::new();
    for w in &wanted {
        if old.iter().any(|b| b.is(w)) {
            continue;
        }
        let socket = match &w.unix {
            Some(p) => bind_unix(p, w.backlog, &w.opts),
            None => bind_exclusive(w.addr, w.backlog, &w.opts),
        };
        let bound = socket.and_then(|socket| {
            let mut b = Bound {
                addr: w.addr,
                unix: w.unix.clone(),
                socket,
                reuseport: w.reuseport,
                per_worker: Vec::new(),
                opts: w.opts,
                owner: std::process::id(),
            };
            if b.reuseport {
                // The first per-worker socket is the one just bound.
                b.per_worker
                    .push(b.socket.try_clone().map_err(|e| e.to_string())?);
                b.fit_workers(workers, w.backlog)?;
            }
            Ok(b)
        });
        match bound {
            Ok(b) => fresh.push(b),
            Err(e) => return Err((e, old)),
        }
    }
    let (mut kept, removed): (Vec<Bound>, Vec<Bound>) = old
        .into_iter()
        .partition(|b| wanted.iter().any(|w| b.is(w)));
    for b in &mut kept {
        if let Some(w) = wanted.iter().find(|w| b.is(w)) {
            // Changed options are applied to the kept sockets, as nginx does on a reload
            // (ipv6only cannot change on a bound socket; a cleared option keeps its value).
            if w.opts != b.opts && b.unix.is_none() {
                b.opts = w.opts;
                for s in std::iter::once(&b.socket).chain(&b.per_worker) {
                    let fd = s.as_fd();
                    let _ = set_options_fd(fd, b.addr, &w.opts);
                    if w.opts.deferred_secs > 0 {
                        let _ = set_defer_accept(fd, w.opts.deferred_secs);
                    }
                }
            }
            // reuseport cannot change on a bound address; the socket keeps its mode.
            let bl = Backlog::new(w.backlog.clamp(1, 65_535)).unwrap_or(Backlog::MAXCONN);
            let _ = listen(&b.socket, bl);
            if let Err(e) = b.fit_workers(workers, w.backlog) {
                return Err((e, kept.into_iter().chain(removed).collect()));
            }
        }
    }
    kept.extend(fresh);
    Ok((kept, removed))
}
