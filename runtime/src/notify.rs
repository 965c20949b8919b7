//! systemd's readiness protocol (`sd_notify`), spoken by the master when `NOTIFY_SOCKET`
//! names a unix datagram socket (a path, or an abstract name written `@name`).
//!
//! The master says `READY=1` (with `MAINPID=`) once its first generation of workers runs
//! on bound listeners, `RELOADING=1` (with `MONOTONIC_USEC=`) when a HUP reload starts and
//! `READY=1` again when it ends, whether the new configuration was taken or not, and
//! `STOPPING=1` when it is told to stop. Those are the messages of systemd's
//! `Type=notify-reload`; `Type=notify` takes the same ones.
//!
//! Notifying must never stop the server: a socket that cannot be reached is reported once in
//! the error log and then left alone. Without `NOTIFY_SOCKET` nothing is sent.

use crate::elog;
use crate::log::ErrorLog;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where the notifications go, read once from the environment at start.
pub struct Notifier {
    target: Target,
    /// A failure was logged already; later ones are not.
    reported: bool,
}

enum Target {
    /// No `NOTIFY_SOCKET`: not run by a service manager that listens.
    None,
    Socket(SocketAddr),
    /// `NOTIFY_SOCKET` is set to something this master cannot address (a `vsock:` address,
    /// a relative path); the text says what, for the one log line.
    Unusable(String),
}

impl Notifier {
    /// The notifier of `NOTIFY_SOCKET`, or one that sends nothing.
    pub fn from_env() -> Notifier {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            None => Target::None,
            Some(v) if v.is_empty() => Target::None,
            Some(v) => parse_target(v.as_encoded_bytes()),
        };
        Notifier {
            target,
            reported: false,
        }
    }

    /// Whether a service manager listens (`NOTIFY_SOCKET` is set).
    pub fn enabled(&self) -> bool {
        !matches!(self.target, Target::None)
    }

    /// `READY=1`: the master serves (after start, and after a reload, taken or not).
    pub fn ready(&mut self, status: &str, elog: &mut ErrorLog) {
        let msg = format!(
            "READY=1\nMAINPID={}\nSTATUS={}\n",
            std::process::id(),
            one_line(status)
        );
        self.send(&msg, elog);
    }

    /// `RELOADING=1` with the monotonic clock, as `Type=notify-reload` wants it.
    pub fn reloading(&mut self, elog: &mut ErrorLog) {
        let msg = format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading\n",
            monotonic_usec()
        );
        self.send(&msg, elog);
    }

    /// `STOPPING=1`: a graceful or fast stop has begun.
    pub fn stopping(&mut self, how: &str, elog: &mut ErrorLog) {
        let msg = format!("STOPPING=1\nSTATUS={} shutdown\n", one_line(how));
        self.send(&msg, elog);
    }

    fn send(&mut self, msg: &str, elog: &mut ErrorLog) {
        let result = match &self.target {
            Target::None => return,
            Target::Socket(addr) => {
                UnixDatagram::unbound().and_then(|s| s.send_to_addr(msg.as_bytes(), addr))
            }
            Target::Unusable(why) => Err(std::io::Error::other(why.clone())),
        };
        if let Err(e) = result {
            if !self.reported {
                self.reported = true;
                elog!(
                    elog,
                    Warn,
                    "cannot notify the service manager (NOTIFY_SOCKET): {e}; not trying to again"
                );
            }
        }
    }
}

/// `NOTIFY_SOCKET`'s value as an address: `@name` is abstract, `/path` a file.
fn parse_target(v: &[u8]) -> Target {
    let shown = String::from_utf8_lossy(v).into_owned();
    let addr = match v.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&v[1..]),
        Some(b'/') => {
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(v))
        }
        _ => {
            return Target::Unusable(format!(
                "\"{shown}\" is neither an absolute path nor an abstract @name"
            ))
        }
    };
    match addr {
        Ok(a) => Target::Socket(a),
        Err(e) => Target::Unusable(format!("\"{shown}\": {e}")),
    }
}

/// CLOCK_MONOTONIC in microseconds (what systemd compares the reload against).
fn monotonic_usec() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
        }
        Err(_) => 0,
    }
}

/// A `STATUS=` value stays on its line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let Target::Socket(a) = parse_target(b"@proton-notify") else {
            panic!("abstract name refused");
        };
        assert_eq!(a.as_abstract_name(), Some(&b"proton-notify"[..]));
        let Target::Socket(p) = parse_target(b"/run/systemd/notify") else {
            panic!("path refused");
        };
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(matches!(parse_target(b"vsock:2:1234"), Target::Unusable(_)));
        assert!(matches!(parse_target(b"relative"), Target::Unusable(_)));
    }

    #[test]
    fn messages_arrive_on_an_abstract_socket() {
        let name = format!("proton-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let mut n = Notifier {
            target: parse_target(format!("@{name}").as_bytes()),
            reported: false,
        };
        let mut elog = ErrorLog::open(None, proton_ir::LogLevel::Error);
        n.reloading(&mut elog);
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        let usec: u64 = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(usec > 0);
    }
}
