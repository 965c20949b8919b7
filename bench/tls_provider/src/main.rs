//! Which rustls crypto provider for Proton's TLS (issue 14): `ring` or `aws-lc-rs`.
//!
//! Both ends run in this process over in-memory buffers (no sockets, no kernel), so what
//! is timed is the TLS work alone, and only the server's side of it: every call on the
//! `ServerConnection` (reading the client's records, processing them, writing its own) is
//! timed, the client's are not. Certificate: ECDSA P-256 (rcgen's default), TLS 1.3.
//!
//! Figures: full handshakes per second of server CPU, resumed handshakes (tickets) per
//! second, and the heap a server connection holds once its handshake is done (counted by
//! a global allocator).
//!
//! Run: `cargo run --release --manifest-path bench/tls_provider/Cargo.toml [N]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// Live heap bytes, for the memory figure.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Res<T> = Result<T, Box<dyn Error>>;

/// Moves records both ways until neither side has anything to send; returns the time spent
/// in server calls.
fn pump(c: &mut ClientConnection, s: &mut ServerConnection) -> Res<Duration> {
    let mut server = Duration::ZERO;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let mut moved = false;
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf)?;
        }
        if !buf.is_empty() {
            moved = true;
            let t = Instant::now();
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd)?;
                s.process_new_packets()?;
            }
            server += t.elapsed();
        }
        buf.clear();
        let t = Instant::now();
        while s.wants_write() {
            s.write_tls(&mut buf)?;
        }
        server += t.elapsed();
        if !buf.is_empty() {
            moved = true;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd)?;
                c.process_new_packets()?;
            }
        }
        if !moved {
            return Ok(server);
        }
    }
}

struct Setup {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

type Ticketer = fn() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error>;

fn setup(provider: CryptoProvider, ticketer: Ticketer, tickets: bool) -> Res<Setup> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(provider);
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    server.session_storage = Arc::new(NoServerSessionStorage {});
    if tickets {
        server.ticketer = ticketer()?;
    }
    let mut roots = RootCertStore::empty();
    roots.add(cert)?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = if tickets {
        Resumption::in_memory_sessions(64)
    } else {
        Resumption::disabled()
    };
    Ok(Setup {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

fn connection(s: &Setup) -> Res<(ClientConnection, ServerConnection)> {
    let name = ServerName::try_from("localhost")?;
    Ok((
        ClientConnection::new(s.client.clone(), name)?,
        ServerConnection::new(s.server.clone())?,
    ))
}

/// Server-side seconds per handshake over `n` handshakes (full, or resumed after a first one).
fn handshakes(s: &Setup, n: usize) -> Res<(f64, usize)> {
    let mut server = Duration::ZERO;
    let mut resumed = 0;
    // A first handshake gives the client its tickets.
    let (mut c, mut sv) = connection(s)?;
    pump(&mut c, &mut sv)?;
    for _ in 0..n {
        let (mut c, mut sv) = connection(s)?;
        server += pump(&mut c, &mut sv)?;
        if c.is_handshaking() || sv.is_handshaking() {
            return Err("handshake did not finish".into());
        }
        if matches!(c.handshake_kind(), Some(rustls::HandshakeKind::Resumed)) {
            resumed += 1;
        }
    }
    Ok((server.as_secs_f64() / n as f64, resumed))
}

/// Heap bytes each server connection keeps after its handshake (`n` of them kept alive).
fn memory(s: &Setup, n: usize) -> Res<f64> {
    let mut kept = Vec::with_capacity(n);
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..n {
        let (mut c, mut sv) = connection(s)?;
        pump(&mut c, &mut sv)?;
        drop(c);
        kept.push(sv);
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    drop(kept);
    Ok(per)
}

/// aws-lc-rs's provider with the classic X25519 and P-256 key exchanges only (its default
/// puts the post-quantum hybrid X25519MLKEM768 first, which costs more per handshake).
fn aws_lc_classic() -> CryptoProvider {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.kx_groups = vec![
        rustls::crypto::aws_lc_rs::kx_group::X25519,
        rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
    ];
    p
}

/// ring's provider with the same classic key exchanges (its default now lists secp384r1
/// first, which costs far more).
#[allow(deprecated)] // ring's provider: deprecated only for lacking post-quantum groups
fn ring() -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![
        rustls::crypto::ring::kx_group::X25519,
        rustls::crypto::ring::kx_group::SECP256R1,
    ];
    p
}

fn main() -> Res<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    println!("| provider | key exchange | full handshakes/s (server CPU) | resumed handshakes/s | resumed | heap per connection after the handshake |");
    println!("|---|---|---|---|---|---|");
    let aws_ticketer: Ticketer = rustls::crypto::aws_lc_rs::Ticketer::new;
    let ring_ticketer: Ticketer = rustls::crypto::ring::Ticketer::new;
    for (name, make, ticketer) in [
        ("ring", ring as fn() -> CryptoProvider, ring_ticketer),
        ("aws-lc-rs", aws_lc_classic, aws_ticketer),
        (
            "aws-lc-rs (default)",
            rustls::crypto::aws_lc_rs::default_provider,
            aws_ticketer,
        ),
    ] {
        let kx: Vec<String> = make()
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        let full = setup(make(), ticketer, false)?;
        let (t_full, _) = handshakes(&full, n)?;
        let res = setup(make(), ticketer, true)?;
        let (t_res, resumed) = handshakes(&res, n)?;
        let mem = memory(&full, 1000)?;
        println!(
            "| {name} | {} | {:.0} | {:.0} | {resumed}/{n} | {:.0} B |",
            kx.join(", "),
            1.0 / t_full,
            1.0 / t_res,
            mem
        );
    }
    Ok(())
}
