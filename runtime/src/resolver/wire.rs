//! DNS messages (RFC 1035) as nginx's resolver writes and reads them: a query for A or AAAA
//! records, and the parts of an answer it acts on (the header, the question, the addresses,
//! a CNAME and the smallest TTL). Sans-IO: byte slices in, values out; every length is
//! checked against the message, nothing panics on a hostile answer.
//!
//! The checks follow `ngx_resolver_process_response`/`ngx_resolver_process_a` (nginx 1.22):
//! the question's name must not be compressed, records are taken whatever their owner name
//! (a CNAME chain answered in one message works that way), a record of the other family or
//! of the wrong length makes the whole answer invalid.

use std::net::{Ipv4Addr, Ipv6Addr};

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_DNAME: u16 = 39;

/// Response codes (RFC 1035 §4.1.1) nginx names.
pub(crate) const FORMERR: u8 = 1;
pub(crate) const NXDOMAIN: u8 = 3;
pub(crate) const REFUSED: u8 = 5;
/// Not a DNS code: the answer did not come in time (nginx's `NGX_RESOLVE_TIMEDOUT`).
pub(crate) const TIMEDOUT: u16 = 110;

/// nginx's text for a resolver error code (`ngx_resolver_strerror`).
pub(crate) fn strerror(code: u16) -> &'static str {
    match code {
        1 => "Format error",
        2 => "Server failure",
        3 => "Host not found",
        4 => "Unimplemented",
        5 => "Operation refused",
        110 => "Operation timed out",
        _ => "Unknown error",
    }
}

const HEADER: usize = 12;
/// Longest name asked for or read from an answer, and most compression pointers followed.
/// RFC 1035 §2.3.4 says 255 bytes on the wire; nginx's resolver sets no such limit and
/// follows a CNAME to a longer name (http_resolver.t "long name"), so a larger bound, kept
/// only to bound the work, is used here.
const MAX_NAME: usize = 1024;
const MAX_POINTERS: usize = 128;

/// Writes the query for `name` (`qtype` A or AAAA, recursion desired) into `out`. False if
/// the name cannot be asked for (an empty label, a label over 63 bytes, over [`MAX_NAME`]).
pub(crate) fn write_query(out: &mut Vec<u8>, ident: u16, name: &[u8], qtype: u16) -> bool {
    out.clear();
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() + 2 > MAX_NAME {
        return false;
    }
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > 63 {
            out.clear();
            return false;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    true
}

/// The identity of an answer from its first 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub ident: u16,
    /// The RCODE.
    pub code: u8,
    /// TC: the answer was cut (ask again over TCP).
    pub trunc: bool,
    /// Records in the answer section.
    pub answers: u16,
}

/// What the first part of a message says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// An answer to an A or AAAA question about `name` (lowercase); its records start at
    /// `records`.
    Answer {
        header: Header,
        name: Vec<u8>,
        qtype: u16,
        records: usize,
    },
    /// `FORMERR`: the server did not understand a query (nginx matches it to a query by
    /// its id only).
    FormatError(u16),
    /// An error code above REFUSED (logged, ignored).
    OtherError(u16, u8),
    /// Not usable (logged as the text says, ignored).
    Invalid(String),
}

/// Reads the header and the question of `buf` (`tcp`: it came over TCP, where a truncated
/// answer is an error).
pub(crate) fn head(buf: &[u8], tcp: bool) -> Head {
    let Some(h) = buf.get(..HEADER) else {
        return Head::Invalid("short DNS response".into());
    };
    let ident = u16::from_be_bytes([h[0], h[1]]);
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let nqs = u16::from_be_bytes([h[4], h[5]]);
    let nan = u16::from_be_bytes([h[6], h[7]]);
    let trunc = flags & 0x0200 != 0;
    // A response (QR) to a standard query (opcode 0), Z clear; never truncated over TCP.
    if flags & 0xf870 != 0x8000 || (trunc && tcp) {
        return Head::Invalid(format!(
            "invalid {} DNS response {ident} fl:{flags:04X}",
            if tcp { "TCP" } else { "UDP" }
        ));
    }
    let code = (flags & 0xf) as u8;
    if code == FORMERR {
        return Head::FormatError(ident);
    }
    if code > REFUSED {
        return Head::OtherError(ident, code);
    }
    if nqs != 1 {
        return Head::Invalid("invalid number of questions in DNS response".into());
    }
    // The question's name, uncompressed.
    let mut i = HEADER;
    let mut name = Vec::new();
    loop {
        let Some(&len) = buf.get(i) else {
            return Head::Invalid("short DNS response".into());
        };
        if len & 0xc0 != 0 {
            return Head::Invalid("unexpected compression pointer in DNS response".into());
        }
        if len == 0 {
            break;
        }
        let Some(label) = buf.get(i + 1..i + 1 + len as usize) else {
            return Head::Invalid("short DNS response".into());
        };
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend(label.iter().map(u8::to_ascii_lowercase));
        i += 1 + len as usize;
    }
    if i == HEADER {
        return Head::Invalid("zero-length domain name in DNS response".into());
    }
    i += 1;
    // The question's type and class, and room for the answers' fixed parts (nginx's
    // early length check).
    if i + 4 + nan as usize * 12 > buf.len() {
        return Head::Invalid("short DNS response".into());
    }
    let qtype = u16::from_be_bytes([buf[i], buf[i + 1]]);
    let qclass = u16::from_be_bytes([buf[i + 2], buf[i + 3]]);
    if qclass != 1 {
        return Head::Invalid(format!("unknown query class {qclass} in DNS response"));
    }
    if qtype != TYPE_A && qtype != TYPE_AAAA {
        return Head::Invalid(format!("unknown query type {qtype} in DNS response"));
    }
    Head::Answer {
        header: Header {
            ident,
            code,
            trunc,
            answers: nan,
        },
        name,
        qtype,
        records: i + 4,
    }
}

/// The records of an answer that matter.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Records {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    /// The target of the last CNAME record (lowercase), if any.
    pub cname: Option<Vec<u8>>,
    /// The smallest TTL of all records (negative counts as 0).
    pub ttl: u32,
    /// Records of types nginx does not expect (it logs each).
    pub unexpected: Vec<u16>,
}

/// Reads the `count` records from `at` of an answer to a `qtype` question. `Err`: the
/// answer is invalid (nginx logs the text and ignores the answer).
pub(crate) fn records(buf: &[u8], at: usize, count: u16, qtype: u16) -> Result<Records, String> {
    const SHORT: &str = "short DNS response";
    let n = buf.len();
    let mut r = Records {
        ttl: u32::MAX,
        ..Records::default()
    };
    let mut cname_at = None;
    let mut i = at;
    for _ in 0..count {
        // The owner name: labels up to a zero or a pointer.
        let start = i;
        loop {
            let Some(&len) = buf.get(i) else {
                return Err(SHORT.into());
            };
            if len & 0xc0 != 0 {
                i += 2;
                break;
            }
            if len == 0 {
                i += 1;
                if i - start < 2 {
                    return Err("invalid name in DNS response".into());
                }
                break;
            }
            i += 1 + len as usize;
        }
        if i + 10 >= n {
            return Err(SHORT.into());
        }
        let f = &buf[i..i + 10];
        let rtype = u16::from_be_bytes([f[0], f[1]]);
        let class = u16::from_be_bytes([f[2], f[3]]);
        let ttl = i32::from_be_bytes([f[4], f[5], f[6], f[7]]).max(0) as u32;
        let len = u16::from_be_bytes([f[8], f[9]]) as usize;
        if class != 1 {
            return Err(format!("unexpected RR class {class} in DNS response"));
        }
        r.ttl = r.ttl.min(ttl);
        i += 10;
        match rtype {
            TYPE_A => {
                if qtype != TYPE_A {
                    return Err("unexpected A record in DNS response".into());
                }
                if len != 4 {
                    return Err("invalid A record in DNS response".into());
                }
                let Some(a) = buf.get(i..i + 4) else {
                    return Err(SHORT.into());
                };
                r.v4.push(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
            }
            TYPE_AAAA => {
                if qtype != TYPE_AAAA {
                    return Err("unexpected AAAA record in DNS response".into());
                }
                if len != 16 {
                    return Err("invalid AAAA record in DNS response".into());
                }
                let Some(a) = buf.get(i..i + 16) else {
                    return Err(SHORT.into());
                };
                let mut o = [0u8; 16];
                o.copy_from_slice(a);
                r.v6.push(Ipv6Addr::from(o));
            }
            TYPE_CNAME => cname_at = Some(i),
            TYPE_DNAME => {}
            other => r.unexpected.push(other),
        }
        i += len;
    }
    if r.ttl == u32::MAX {
        r.ttl = 0;
    }
    if let Some(c) = cname_at {
        // Needed only when there is no address (nginx copies it then too).
        if r.v4.is_empty() && r.v6.is_empty() {
            r.cname = Some(name_at(buf, c)?);
        }
    }
    Ok(r)
}

/// The (possibly compressed) name at `at`, lowercase, labels joined by dots.
pub(crate) fn name_at(buf: &[u8], mut at: usize) -> Result<Vec<u8>, String> {
    let mut name = Vec::new();
    let mut jumps = 0;
    loop {
        let Some(&len) = buf.get(at) else {
            return Err("name is out of DNS response".into());
        };
        if len & 0xc0 == 0xc0 {
            let Some(&lo) = buf.get(at + 1) else {
                return Err("name is out of DNS response".into());
            };
            jumps += 1;
            if jumps > MAX_POINTERS {
                return Err("compression pointers loop in DNS response".into());
            }
            at = (usize::from(len & 0x3f) << 8) | usize::from(lo);
            continue;
        }
        if len & 0xc0 != 0 {
            return Err("invalid label type in DNS response".into());
        }
        if len == 0 {
            break;
        }
        let Some(label) = buf.get(at + 1..at + 1 + len as usize) else {
            return Err("name is out of DNS response".into());
        };
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend(label.iter().map(u8::to_ascii_lowercase));
        if name.len() > MAX_NAME {
            return Err("name is too long in DNS response".into());
        }
        at += 1 + len as usize;
    }
    if name.is_empty() {
        return Err("zero-length name in DNS response".into());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as a server would send it: header, the question, then `records`.
    fn answer(ident: u16, flags: u16, name: &str, qtype: u16, nan: u16, records: &[u8]) -> Vec<u8> {
        let mut q = Vec::new();
        assert!(write_query(&mut q, ident, name.as_bytes(), qtype));
        q[2..4].copy_from_slice(&flags.to_be_bytes());
        q[6..8].copy_from_slice(&nan.to_be_bytes());
        q.extend_from_slice(records);
        q
    }

    fn rr(name: &[u8], rtype: u16, ttl: i32, data: &[u8]) -> Vec<u8> {
        let mut v = name.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    const PTR_QNAME: &[u8] = &[0xc0, 12];

    #[test]
    fn query_bytes() {
        let mut q = Vec::new();
        assert!(write_query(&mut q, 0x1234, b"a.example.net", TYPE_AAAA));
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x03net\x00\x00\x1c\x00\x01"
        );
        assert!(write_query(&mut q, 1, b"trailing.dot.", TYPE_A));
        assert!(!write_query(&mut q, 1, b"a..b", TYPE_A));
        assert!(!write_query(&mut q, 1, b"", TYPE_A));
        assert!(!write_query(&mut q, 1, &[b'a'; 64], TYPE_A));
        // Past RFC 1035's 255 bytes, as nginx asks (http_resolver.t "long name"); past
        // MAX_NAME, not.
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(write_query(&mut q, 1, long.as_bytes(), TYPE_A));
        let too_long = vec!["a".repeat(63); 17].join(".");
        assert!(!write_query(&mut q, 1, too_long.as_bytes(), TYPE_A));
        let fits = [
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(61),
        ]
        .join(".");
        assert!(write_query(&mut q, 1, fits.as_bytes(), TYPE_A));
    }

    #[test]
    fn addresses_cname_and_ttl() {
        let mut recs = rr(PTR_QNAME, TYPE_A, 60, &[127, 0, 0, 1]);
        recs.extend(rr(PTR_QNAME, TYPE_A, 30, &[127, 0, 0, 2]));
        recs.extend(rr(PTR_QNAME, TYPE_DNAME, 10, &[0]));
        let buf = answer(7, 0x8180, "Many.Example.net", TYPE_A, 3, &recs);
        let Head::Answer {
            header,
            name,
            qtype,
            records: at,
        } = head(&buf, false)
        else {
            panic!("not an answer")
        };
        assert_eq!(name, b"many.example.net");
        assert_eq!(
            (header.ident, header.code, header.trunc, qtype),
            (7, 0, false, TYPE_A)
        );
        let r = records(&buf, at, header.answers, qtype).unwrap();
        assert_eq!(
            r.v4,
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)]
        );
        assert_eq!(r.ttl, 10);
        assert_eq!(r.cname, None);

        // A CNAME whose target is compressed towards the question's name.
        let recs = rr(
            PTR_QNAME,
            TYPE_CNAME,
            -5,
            &[5, b'a', b'l', b'i', b'a', b's', 0xc0, 12 + 6],
        );
        let buf = answer(8, 0x8180, "cname.example.net", TYPE_A, 1, &recs);
        let Head::Answer {
            header,
            records: at,
            ..
        } = head(&buf, false)
        else {
            panic!()
        };
        let r = records(&buf, at, header.answers, TYPE_A).unwrap();
        assert_eq!(r.cname.as_deref(), Some(&b"alias.example.net"[..]));
        assert_eq!(r.ttl, 0, "a negative TTL counts as 0");
    }

    #[test]
    fn invalid_answers() {
        // An A record with no data at the end of the message: short.
        let recs = rr(PTR_QNAME, TYPE_A, 60, &[]);
        let buf = answer(1, 0x8180, "short.example.net", TYPE_A, 1, &recs);
        let Head::Answer {
            header,
            records: at,
            ..
        } = head(&buf, false)
        else {
            panic!()
        };
        assert!(records(&buf, at, header.answers, TYPE_A).is_err());
        // An A record in an answer about AAAA; an AAAA of the wrong length.
        let recs = rr(PTR_QNAME, TYPE_A, 60, &[1, 2, 3, 4]);
        let buf = answer(1, 0x8180, "x.net", TYPE_AAAA, 1, &recs);
        assert!(records(&buf, 12 + 7 + 4, 1, TYPE_AAAA).is_err());
        let recs = rr(PTR_QNAME, TYPE_AAAA, 60, &[1, 2, 3, 4]);
        let buf = answer(1, 0x8180, "x.net", TYPE_AAAA, 1, &recs);
        assert!(records(&buf, 12 + 7 + 4, 1, TYPE_AAAA).is_err());
        // Not a response; truncated over TCP; a compressed question; two questions.
        let buf = answer(1, 0x0100, "x.net", TYPE_A, 0, &[]);
        assert!(matches!(head(&buf, false), Head::Invalid(_)));
        let buf = answer(1, 0x8380, "x.net", TYPE_A, 0, &[]);
        assert!(matches!(head(&buf, true), Head::Invalid(_)));
        assert!(matches!(
            head(&buf, false),
            Head::Answer {
                header: Header { trunc: true, .. },
                ..
            }
        ));
        let mut buf = answer(1, 0x8180, "x.net", TYPE_A, 0, &[]);
        buf[12] = 0xc0;
        assert!(matches!(head(&buf, false), Head::Invalid(_)));
        let mut buf = answer(1, 0x8180, "x.net", TYPE_A, 0, &[]);
        buf[5] = 2;
        assert!(matches!(head(&buf, false), Head::Invalid(_)));
        // Format errors and codes above REFUSED.
        assert_eq!(
            head(&answer(9, 0x8181, "x.net", TYPE_A, 0, &[]), false),
            Head::FormatError(9)
        );
        assert_eq!(
            head(&answer(9, 0x8189, "x.net", TYPE_A, 0, &[]), false),
            Head::OtherError(9, 9)
        );
        // A pointer loop in a CNAME target.
        let recs = rr(PTR_QNAME, TYPE_CNAME, 1, &[0xc0, 12 + 7 + 4 + 12]);
        let buf = answer(1, 0x8180, "x.net", TYPE_A, 1, &recs);
        assert!(records(&buf, 12 + 7 + 4, 1, TYPE_A).is_err());
    }

    /// Every prefix of a valid answer parses or fails cleanly (never panics).
    #[test]
    fn every_truncation_is_handled() {
        let mut recs = rr(PTR_QNAME, TYPE_CNAME, 5, &[1, b'b', 0xc0, 12]);
        recs.extend(rr(&[1, b'b', 0xc0, 12], TYPE_A, 5, &[10, 0, 0, 1]));
        let buf = answer(3, 0x8180, "a.example.net", TYPE_A, 2, &recs);
        for cut in 0..buf.len() {
            let part = &buf[..cut];
            if let Head::Answer {
                header,
                qtype,
                records: at,
                ..
            } = head(part, false)
            {
                let _ = records(part, at, header.answers, qtype);
            }
        }
        let Head::Answer {
            header,
            records: at,
            ..
        } = head(&buf, false)
        else {
            panic!()
        };
        let r = records(&buf, at, header.answers, TYPE_A).unwrap();
        assert_eq!(r.v4, [Ipv4Addr::new(10, 0, 0, 1)]);
    }
}
