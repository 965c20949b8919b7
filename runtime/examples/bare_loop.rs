//! The reference point of bench scenario (a): a bare mio loop that answers every request
//! head (`\r\n\r\n`) with the same fixed 200 response Proton sends for `return 200 "hello,
//! world\n"`, without parsing or routing. Not a server: no limits, no timeouts, no errors
//! answered. `bench/run --bare` runs it beside Proton and nginx to show how close the real
//! server is to the floor set by the kernel and the load generator.
//!
//! Usage: `bare_loop 127.0.0.1:PORT` (one thread; pin it with taskset).

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: proton\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nhello, world\n";

struct Conn {
    sock: TcpStream,
    /// Bytes of an incomplete head carried to the next read.
    tail: Vec<u8>,
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string())
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, format!("address: {e}")))?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut sock, _)) = listener.accept() {
                    let _ = sock.set_nodelay(true);
                    let entry = conns.vacant_entry();
                    poll.registry()
                        .register(&mut sock, Token(entry.key()), Interest::READABLE)?;
                    entry.insert(Conn {
                        sock,
                        tail: Vec::new(),
                    });
                }
                continue;
            }
            let key = ev.token().0;
            let mut close = false;
            if let Some(c) = conns.get_mut(key) {
                loop {
                    match c.sock.read(&mut buf) {
                        Ok(0) => {
                            close = true;
                            break;
                        }
                        Ok(n) => {
                            // Count the heads that end in this read (with the carried tail).
                            c.tail.extend_from_slice(&buf[..n]);
                            let mut heads = 0;
                            let mut from = 0;
                            while let Some(i) = memchr::memmem::find(&c.tail[from..], b"\r\n\r\n") {
                                heads += 1;
                                from += i + 4;
                            }
                            c.tail.drain(..from);
                            out.clear();
                            for _ in 0..heads {
                                out.extend_from_slice(RESPONSE);
                            }
                            if !out.is_empty() && c.sock.write_all(&out).is_err() {
                                close = true;
                                break;
                            }
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            close = true;
                            break;
                        }
                    }
                }
            }
            if close {
                conns.try_remove(key);
            }
        }
    }
}
