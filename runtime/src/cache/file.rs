//! A cached object on disk, sans-IO: the fixed header, where the parts are, and the name of
//! the file (`levels`). The file is
//!
//! ```text
//! header (96 bytes) | "KEY: " key "\n" | the upstream's response head as received | body
//! ```
//!
//! The header holds a magic word, the format's version, the lengths of the key and the head,
//! the times the object is fresh until, was stored and last modified, its age when stored,
//! flags from its `Cache-Control`, and the body's length;
//! its last 8 bytes are a checksum of the rest. An object is written to a temporary file
//! in the cache's directory and renamed into place only once complete (the header, with the
//! body's length, written last), so a reader never meets a half object: one whose header does
//! not check, or whose length is not the header's, is not served.

/// The header's first bytes.
pub const MAGIC: &[u8; 8] = b"PRTNCACH";
/// The layout's version (a different one is not read).
pub const VERSION: u32 = 4;
/// Bytes of the header.
pub const HEADER_LEN: usize = 96;
/// The most of a key and a response head kept with an object (a larger one is not stored).
pub const MAX_META: usize = 64 * 1024;

/// The object is never sent without asking the upstream first, nor stale (`no-cache`,
/// `must-revalidate`, `proxy-revalidate`).
pub const FLAG_REVALIDATE: u8 = 1;
/// The object may answer a request with `Authorization` (`public`, `s-maxage`,
/// `must-revalidate`: RFC 9111 3.5).
pub const FLAG_AUTHORIZED: u8 = 2;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Fresh until this time (seconds since the epoch).
    pub valid_sec: i64,
    /// Stored (or revalidated) at this time.
    pub date: i64,
    /// The response's age when it was stored (RFC 9111 4.2.3): its `Age` is this plus the
    /// time since `date`.
    pub age: u32,
    /// [`FLAG_REVALIDATE`], [`FLAG_AUTHORIZED`].
    pub flags: u8,
    /// The upstream's `Last-Modified` (-1: none).
    pub last_modified: i64,
    /// The body's length.
    pub body_len: u64,
    pub key_len: u32,
    pub head_len: u32,
    /// `Cache-Control: stale-while-revalidate=` and `stale-if-error=` (seconds past
    /// `valid_sec` the object may still be sent while it is fetched again, or instead of an
    /// error).
    pub updating_sec: u32,
    pub error_sec: u32,
    /// The answer had `Vary`: the hash of the storing request's values of those fields
    /// ([`variant`]); zero without `Vary`.
    pub variant: [u8; 16],
}

impl Meta {
    /// Where the key's line starts.
    pub fn key_start(&self) -> u64 {
        HEADER_LEN as u64
    }

    /// Where the upstream's head starts.
    pub fn head_start(&self) -> u64 {
        HEADER_LEN as u64 + 5 + u64::from(self.key_len) + 1
    }

    /// Where the body starts.
    pub fn body_start(&self) -> u64 {
        self.head_start() + u64::from(self.head_len)
    }

    /// The whole file's length.
    pub fn file_len(&self) -> u64 {
        self.body_start() + self.body_len
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.key_len.to_le_bytes());
        h[16..20].copy_from_slice(&self.head_len.to_le_bytes());
        h[20..24].copy_from_slice(&self.age.to_le_bytes());
        h[24..32].copy_from_slice(&self.valid_sec.to_le_bytes());
        h[32..40].copy_from_slice(&self.date.to_le_bytes());
        h[40..48].copy_from_slice(&self.last_modified.to_le_bytes());
        h[48..56].copy_from_slice(&self.body_len.to_le_bytes());
        h[56..60].copy_from_slice(&self.updating_sec.to_le_bytes());
        h[60..64].copy_from_slice(&self.error_sec.to_le_bytes());
        h[64..80].copy_from_slice(&self.variant);
        h[80] = self.flags;
        let sum = crate::limits::hash(&h[..88]);
        h[88..96].copy_from_slice(&sum.to_le_bytes());
        h
    }

    /// Reads a header; `None` when it is not one of this version or does not check.
    pub fn decode(b: &[u8]) -> Option<Meta> {
        let h = b.get(..HEADER_LEN)?;
        if &h[0..8] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| h[i..i + 4].try_into().ok().map(u32::from_le_bytes);
        let u64_at = |i: usize| h[i..i + 8].try_into().ok().map(u64::from_le_bytes);
        if u32_at(8)? != VERSION || u64_at(88)? != crate::limits::hash(&h[..88]) {
            return None;
        }
        let m = Meta {
            key_len: u32_at(12)?,
            head_len: u32_at(16)?,
            valid_sec: u64_at(24)? as i64,
            date: u64_at(32)? as i64,
            last_modified: u64_at(40)? as i64,
            body_len: u64_at(48)?,
            updating_sec: u32_at(56)?,
            error_sec: u32_at(60)?,
            variant: h[64..80].try_into().ok()?,
            age: u32_at(20)?,
            flags: h[80],
        };
        (m.key_len as usize + m.head_len as usize <= MAX_META).then_some(m)
    }

    /// The key and the head from the bytes after the header (`rest`, at least
    /// `body_start() - HEADER_LEN` of them); `None` when the key's line is not there.
    pub fn parts<'a>(&self, rest: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let k = self.key_len as usize;
        let line = rest.get(..5 + k + 1)?;
        if !line.starts_with(b"KEY: ") || line[5 + k] != b'\n' {
            return None;
        }
        let head = rest.get(6 + k..6 + k + self.head_len as usize)?;
        Some((&line[5..5 + k], head))
    }
}

/// The bytes that follow the header: the key's line and the head.
pub fn write_prefix(key: &[u8], head: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"KEY: ");
    out.extend_from_slice(key);
    out.push(b'\n');
    out.extend_from_slice(head);
}

/// Fields a `304` does not change in a stored response (RFC 9111 3.2) besides the
/// hop-by-hop ones (which the caller leaves out): those of the stored body's range,
/// coding and digest, and its validator.
const KEPT_ON_UPDATE: [&[u8]; 5] = [
    b"content-range",
    b"content-encoding",
    b"content-md5",
    // (A 304 with another ETag is not about the stored response: RFC 9111 4.3.4.)
    b"etag",
    b"proxy-authenticate",
];

/// The name of a field line.
fn line_name(line: &[u8]) -> &[u8] {
    line.split(|&b| b == b':')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// Whether a `304`'s field `name` (not a hop-by-hop one) replaces the stored response's.
pub fn updates(name: &[u8]) -> bool {
    !KEPT_ON_UPDATE.iter().any(|k| name.eq_ignore_ascii_case(k))
}

/// A stored response head (status line, fields, empty line) updated by a `304`'s fields
/// (`fields`: `name: value` lines, each ending in CRLF, of names [`updates`] allows): a
/// stored field the `304` has is replaced by the `304`'s lines, the others are kept as
/// they were, in order (RFC 9111 3.2).
pub fn update_head(stored: &[u8], fields: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (i, line) in stored.split_inclusive(|&c| c == b'\n').enumerate() {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let n = line_name(line);
        let replaced = i > 0
            && fields
                .split_inclusive(|&c| c == b'\n')
                .any(|f| line_name(f).eq_ignore_ascii_case(n));
        if !replaced {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(fields);
    out.extend_from_slice(b"\r\n");
}

/// nginx's variant of an answer with `Vary` (`ngx_http_file_cache_vary`): the MD5 of the
/// main key's MD5, then for each field name of `vary` (lower case) `name:`, the request's
/// values of that field (joined by `,`; for Accept-Charset, Accept-Encoding and
/// Accept-Language each value's space- and comma-separated tokens, joined by `,`) and CRLF.
/// `fields` calls its argument with each (name, value) of the request.
pub fn variant(
    main: &[u8; 16],
    vary: &[u8],
    fields: impl Fn(&mut dyn FnMut(&[u8], &[u8])),
) -> [u8; 16] {
    use md5::Digest;
    let mut h = md5::Md5::new();
    h.update(main);
    let names = vary
        .split(|&b| b == b',' || b == b' ')
        .filter(|n| !n.is_empty());
    for name in names {
        for b in name {
            h.update([b.to_ascii_lowercase()]);
        }
        h.update(b":");
        let normalize = [
            &b"accept-charset"[..],
            b"accept-encoding",
            b"accept-language",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
        let mut multiple = false;
        fields(&mut |n: &[u8], v: &[u8]| {
            if !n.eq_ignore_ascii_case(name) {
                return;
            }
            if !normalize {
                if multiple {
                    h.update(b",");
                }
                h.update(v);
                multiple = true;
                return;
            }
            for t in v
                .split(|&b| b == b',' || b == b' ')
                .filter(|t| !t.is_empty())
            {
                if multiple {
                    h.update(b",");
                }
                h.update(t);
                multiple = true;
            }
        });
        h.update(b"\r\n");
    }
    h.finalize().into()
}

/// The MD5 of a key, as nginx names cache files by it.
pub fn digest(key: &[u8]) -> [u8; 16] {
    use md5::Digest;
    let mut h = md5::Md5::new();
    h.update(key);
    h.finalize().into()
}

/// The file's name under the cache's directory: `levels` directories named by the digest's
/// last hex digits (nginx's layout: `levels=1:2` puts `…029c` in `c/29/`), then the digest
/// in hex.
pub fn relative_path(levels: &[u8], md5: &[u8; 16], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut name = [0u8; 32];
    for (i, b) in md5.iter().enumerate() {
        name[2 * i] = HEX[usize::from(b >> 4)];
        name[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    let mut end = 32;
    for &l in levels {
        let l = usize::from(l).min(end);
        out.extend(name[end - l..end].iter().map(|&c| char::from(c)));
        out.push('/');
        end -= l;
    }
    out.extend(name.iter().map(|&c| char::from(c)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let m = Meta {
            valid_sec: 1_700_000_000,
            date: 1_699_999_000,
            last_modified: -1,
            body_len: 12345,
            key_len: 30,
            head_len: 200,
            updating_sec: 10,
            error_sec: 20,
            variant: [7; 16],
            age: 30,
            flags: FLAG_AUTHORIZED,
        };
        let h = m.encode();
        assert_eq!(Meta::decode(&h), Some(m));
        assert_eq!(m.body_start(), 96 + 5 + 30 + 1 + 200);
        // Any changed byte, a short header, another version: not read.
        for i in (0..HEADER_LEN).filter(|i| !(80..88).contains(i)) {
            let mut b = h;
            b[i] ^= 1;
            assert_eq!(Meta::decode(&b), None, "byte {i}");
        }
        assert_eq!(Meta::decode(&h[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn a_304_updates_the_stored_fields() {
        let stored = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nA: 1\r\nB: 2\r\nb: 3\r\nContent-Length: 4\r\n\r\n";
        let mut out = Vec::new();
        update_head(stored, b"b: new\r\nC: 9\r\n", &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nA: 1\r\nContent-Length: 4\r\nb: new\r\nC: 9\r\n\r\n"
        );
        update_head(stored, b"", &mut out);
        assert_eq!(out, stored);
        assert!(updates(b"Content-Type") && updates(b"Expires"));
        assert!(!updates(b"Content-Encoding") && !updates(b"ETag"));
    }

    #[test]
    fn key_and_head_found_after_the_header() {
        let m = Meta {
            key_len: 3,
            head_len: 5,
            ..Default::default()
        };
        let mut rest = Vec::new();
        write_prefix(b"abc", b"HTTP/", &mut rest);
        rest.extend_from_slice(b"body");
        assert_eq!(m.parts(&rest), Some((&b"abc"[..], &b"HTTP/"[..])));
        assert_eq!(m.parts(&rest[..8]), None);
        assert_eq!(m.parts(b"KEY: abcXHTTP/"), None);
    }

    #[test]
    fn variants_as_nginx() {
        let main = [1u8; 16];
        let req: &[(&[u8], &[u8])] = &[
            (b"Accept-Encoding", b"gzip,  deflate"),
            (b"X-A", b"1"),
            (b"x-a", b"2"),
        ];
        let each = |f: &mut dyn FnMut(&[u8], &[u8])| {
            for (n, v) in req {
                f(n, v);
            }
        };
        // Accept-Encoding's tokens are normalized: the same variant for other spacing.
        let other: &[(&[u8], &[u8])] = &[(b"accept-encoding", b"gzip,deflate")];
        let each_other = |f: &mut dyn FnMut(&[u8], &[u8])| {
            for (n, v) in other {
                f(n, v);
            }
        };
        assert_eq!(
            variant(&main, b"Accept-Encoding", each),
            variant(&main, b"accept-encoding", each_other)
        );
        // Other fields keep their values as sent, several joined by a comma.
        let a = variant(&main, b"X-A", each);
        let joined: &[(&[u8], &[u8])] = &[(b"X-A", b"1,2")];
        let each_joined = |f: &mut dyn FnMut(&[u8], &[u8])| {
            for (n, v) in joined {
                f(n, v);
            }
        };
        assert_eq!(a, variant(&main, b"x-a", each_joined));
        assert_ne!(a, variant(&main, b"X-A, Accept-Encoding", each));
        assert_ne!(a, variant(&[2u8; 16], b"X-A", each));
    }

    #[test]
    fn file_names_as_nginx_levels() {
        // nginx's documentation example: levels=1:2, key digest b7f5…029c.
        let md5 = [
            0xb7, 0xf5, 0x4b, 0x2d, 0xf7, 0x77, 0x37, 0x22, 0xd3, 0x82, 0xf4, 0x80, 0x9d, 0x65,
            0x02, 0x9c,
        ];
        let mut s = String::new();
        relative_path(&[1, 2], &md5, &mut s);
        assert_eq!(s, "c/29/b7f54b2df7773722d382f4809d65029c");
        s.clear();
        relative_path(&[], &md5, &mut s);
        assert_eq!(s, "b7f54b2df7773722d382f4809d65029c");
        // nginx's md5 of a key, as its cache file names show.
        let d = digest(b"");
        assert_eq!(d[0], 0xd4);
        assert_eq!(d[15], 0x7e);
    }
}
