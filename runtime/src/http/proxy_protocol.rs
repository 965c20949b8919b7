//! The PROXY protocol header (HAProxy's specification, versions 1 and 2) that a load
//! balancer sends before anything else on a connection to a `listen … proxy_protocol`
//! address, naming the client it accepted the connection from. Sans-IO: [`parse`] looks
//! at the bytes received so far and says how long the header is and what it names.
//!
//! As nginx: a `TCP4`/`TCP6` (v1) or `AF_INET`/`AF_INET6` over `STREAM` (v2) header gives
//! both addresses; `UNKNOWN` (v1), the `LOCAL` command, or another address family (v2) is
//! accepted and names nobody; v2's TLVs are skipped. Unlike nginx, a header split over
//! several TCP segments is waited for instead of refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 header (the specification's limit, CRLF included).
pub const V1_MAX: usize = 107;
/// The longest version 2 header accepted (16 bytes of fixed part, addresses and TLVs).
pub const V2_MAX: usize = 4096;
/// Bytes to look at to tell any header: the longest there is.
pub const MAX: usize = V2_MAX;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The addresses a header names: where the client connected from and to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far are the beginning of a header.
    Incomplete,
    /// A header of `len` bytes; `addrs` is `None` when it names nobody (`UNKNOWN`, `LOCAL`,
    /// another address family); `tlvs` are the bytes of v2's TLVs after the addresses
    /// (empty otherwise).
    Done {
        len: usize,
        addrs: Option<Addrs>,
        tlvs: std::ops::Range<usize>,
    },
    /// Not a PROXY protocol header, or a broken one (the reason, for the error log).
    Invalid(&'static str),
}

/// The value of the TLV of type `ty` in `tlvs` (a list of type, 16-bit length, value), as
/// nginx looks it up: the first of that type; `None` when absent or when the list is broken
/// before it.
pub fn tlv(tlvs: &[u8], ty: u8) -> Option<&[u8]> {
    let mut rest = tlvs;
    while !rest.is_empty() {
        let (&t, after) = rest.split_first()?;
        let len = usize::from(u16::from_be_bytes([*after.first()?, *after.get(1)?]));
        let value = after.get(2..2 + len)?;
        if t == ty {
            return Some(value);
        }
        rest = &after[2 + len..];
    }
    None
}

/// Parses the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.starts_with(V1_PREFIX) {
        return v1(buf);
    }
    if buf.starts_with(V2_SIGNATURE) {
        return v2(buf);
    }
    let n = buf.len();
    if (n < V1_PREFIX.len() && V1_PREFIX.starts_with(buf))
        || (n < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(buf))
    {
        return Parsed::Incomplete;
    }
    Parsed::Invalid("broken header")
}

fn v1(buf: &[u8]) -> Parsed {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = memchr::memmem::find(window, b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("broken header")
        } else {
            Parsed::Incomplete
        };
    };
    let len = end + 2;
    let line = &buf[V1_PREFIX.len()..end];
    if line.starts_with(b"UNKNOWN") {
        return Parsed::Done {
            len,
            addrs: None,
            tlvs: 0..0,
        };
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Parsed::Invalid("broken header");
    };
    let mut f = line.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Parsed::Invalid("broken header");
    };
    let ip = |s: &str| -> Option<IpAddr> {
        match proto {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    let port = |s: &str| -> Option<u16> {
        if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (ip(src), ip(dst), port(sport), port(dport)) {
        (Some(s), Some(d), Some(sp), Some(dp)) => Parsed::Done {
            len,
            addrs: Some(Addrs {
                src: SocketAddr::new(s, sp),
                dst: SocketAddr::new(d, dp),
            }),
            tlvs: 0..0,
        },
        _ => Parsed::Invalid("broken header"),
    }
}

fn v2(buf: &[u8]) -> Parsed {
    let Some(fixed) = buf.get(..16) else {
        return Parsed::Incomplete;
    };
    let (ver_cmd, fam) = (fixed[12], fixed[13]);
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("unknown PROXY protocol version");
    }
    let body = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let len = 16 + body;
    if len > V2_MAX {
        return Parsed::Invalid("PROXY protocol v2 header is too large");
    }
    let Some(addrs) = buf.get(16..len) else {
        return Parsed::Incomplete;
    };
    match ver_cmd & 0x0f {
        // LOCAL: the balancer's own connection (a health check); nobody is named.
        0 => {
            return Parsed::Done {
                len,
                addrs: None,
                tlvs: 0..0,
            }
        }
        1 => {}
        _ => return Parsed::Invalid("unknown PROXY protocol v2 command"),
    }
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let (addrs, fixed_len) = match fam {
        // AF_INET over STREAM: 4 + 4 address bytes, 2 + 2 port bytes.
        0x11 => {
            let Some(a) = addrs.get(..12) else {
                return Parsed::Invalid("PROXY protocol v2 header is too small");
            };
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            let a = Addrs {
                src: SocketAddr::new(ip(&a[0..4]), port(&a[8..10])),
                dst: SocketAddr::new(ip(&a[4..8]), port(&a[10..12])),
            };
            (Some(a), 12)
        }
        // AF_INET6 over STREAM: 16 + 16, 2 + 2.
        0x21 => {
            let Some(a) = addrs.get(..36) else {
                return Parsed::Invalid("PROXY protocol v2 header is too small");
            };
            let ip = |b: &[u8]| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let a = Addrs {
                src: SocketAddr::new(ip(&a[0..16]), port(&a[32..34])),
                dst: SocketAddr::new(ip(&a[16..32]), port(&a[34..36])),
            };
            (Some(a), 36)
        }
        // Unix sockets, datagrams, AF_UNSPEC: accepted, naming nobody (as nginx).
        _ => (None, body),
    };
    Parsed::Done {
        len,
        addrs,
        tlvs: 16 + fixed_len..len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(src: &str, dst: &str) -> Option<Addrs> {
        Some(Addrs {
            src: src.parse().expect("src"),
            dst: dst.parse().expect("dst"),
        })
    }

    /// Every prefix of a complete header is incomplete, the whole is done.
    fn whole(h: &[u8], want: Parsed) {
        for n in 0..h.len() {
            assert_eq!(parse(&h[..n]), Parsed::Incomplete, "prefix of {n} bytes");
        }
        let mut more = h.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(parse(h), want);
        assert_eq!(parse(&more), want);
    }

    #[test]
    fn version_1() {
        let h = b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n";
        whole(
            h,
            Parsed::Done {
                len: h.len(),
                addrs: addrs("192.0.2.1:123", "192.0.2.2:5678"),
                tlvs: 0..0,
            },
        );
        let h = b"PROXY TCP6 2001:Db8::1 2001:db8::2 123 5678\r\n";
        whole(
            h,
            Parsed::Done {
                len: h.len(),
                addrs: addrs("[2001:db8::1]:123", "[2001:db8::2]:5678"),
                tlvs: 0..0,
            },
        );
        let h = b"PROXY UNKNOWN 1 2 3\r\n";
        whole(
            h,
            Parsed::Done {
                len: h.len(),
                addrs: None,
                tlvs: 0..0,
            },
        );
        for bad in [
            &b"PROXY TCP4 192.0.2.1 192.0.2.2 123\r\n"[..],
            b"PROXY TCP4 192.0.2.1 192.0.2.2 123 99999\r\n",
            b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
            b"PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid(_)), "{bad:?}");
        }
        // No CRLF within the specification's 107 bytes.
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(200, b'x');
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
        assert_eq!(parse(&long[..100]), Parsed::Incomplete);
    }

    fn v2_header(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn version_2() {
        let mut body = vec![192, 0, 2, 1, 192, 0, 2, 2, 0, 123, 0x16, 0x2e];
        // TLVs after the addresses (PP2_TYPE_AUTHORITY, then PP2_TYPE_ALPN).
        body.extend_from_slice(&[
            0x02, 0x00, 0x03, b'a', b'.', b'b', 0x01, 0x00, 0x02, b'h', b'2',
        ]);
        let h = v2_header(1, 0x11, &body);
        whole(
            &h,
            Parsed::Done {
                len: h.len(),
                addrs: addrs("192.0.2.1:123", "192.0.2.2:5678"),
                tlvs: 28..h.len(),
            },
        );
        let tlvs = &h[28..];
        assert_eq!(tlv(tlvs, 0x02), Some(&b"a.b"[..]));
        assert_eq!(tlv(tlvs, 0x01), Some(&b"h2"[..]));
        assert_eq!(tlv(tlvs, 0x05), None);
        // A list broken after its first TLV still gives that one.
        assert_eq!(tlv(&tlvs[..8], 0x02), Some(&b"a.b"[..]));
        assert_eq!(tlv(&tlvs[..8], 0x01), None);
        let mut body = Vec::new();
        body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("v6").octets());
        body.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("v6").octets());
        body.extend_from_slice(&[0, 123, 0x16, 0x2e]);
        let h = v2_header(1, 0x21, &body);
        whole(
            &h,
            Parsed::Done {
                len: h.len(),
                addrs: addrs("[2001:db8::1]:123", "[2001:db8::2]:5678"),
                tlvs: h.len()..h.len(),
            },
        );
        // LOCAL, and an address family nobody is named by.
        let h = v2_header(0, 0x11, &[0; 12]);
        whole(
            &h,
            Parsed::Done {
                len: h.len(),
                addrs: None,
                tlvs: 0..0,
            },
        );
        let h = v2_header(1, 0x31, &[0; 216]);
        whole(
            &h,
            Parsed::Done {
                len: h.len(),
                addrs: None,
                tlvs: h.len()..h.len(),
            },
        );
        let h = v2_header(1, 0x00, &[]);
        whole(
            &h,
            Parsed::Done {
                len: h.len(),
                addrs: None,
                tlvs: 16..16,
            },
        );
        // Too short for its addresses, an unknown command or version, too large.
        assert!(matches!(
            parse(&v2_header(1, 0x11, &[0; 8])),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse(&v2_header(1, 0x21, &[0; 20])),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse(&v2_header(2, 0x11, &[0; 12])),
            Parsed::Invalid(_)
        ));
        let mut h = v2_header(1, 0x11, &[0; 12]);
        h[12] = 0x11;
        assert!(matches!(parse(&h), Parsed::Invalid(_)));
        let h = v2_header(1, 0x11, &vec![0; V2_MAX]);
        assert!(matches!(parse(&h[..20]), Parsed::Invalid(_)));
    }
}
