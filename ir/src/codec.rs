//! The IR file format.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "PROTONIR"
//! 8       4     format version (u32 LE)
//! 12      4     CRC-32 of the payload (u32 LE)
//! 16      8     payload length (u64 LE)
//! 24      32    source digest: SHA-256 of the config sources, in include order
//! 56      …     payload: the bincode encoding of [`Ir`]
//! ```
//!
//! [`decode`] checks magic, version, length and checksum before it decodes, then runs
//! [`Ir::verify`], so a runtime that gets an `Ir` back can trust every index in it.

use crate::types::Ir;
use crate::verify::VerifyError;
use std::fmt;

/// The first eight bytes of every IR file.
pub const MAGIC: [u8; 8] = *b"PROTONIR";
/// Bumped whenever the payload layout changes.
pub const FORMAT_VERSION: u32 = 81;
const HEADER_LEN: usize = 56;

/// The fixed-size header of an IR file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub checksum: u32,
    pub payload_len: u64,
    pub source_digest: [u8; 32],
}

impl Header {
    /// The source digest as lowercase hex.
    pub fn digest_hex(&self) -> String {
        self.source_digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Why an IR file was refused.
#[derive(Debug)]
pub enum DecodeError {
    /// Shorter than the header, or shorter than the header says.
    Truncated { len: usize, expected: usize },
    /// Not an IR file at all.
    BadMagic,
    /// Written by a different format version of protonc.
    WrongVersion { found: u32, expected: u32 },
    /// The payload does not match its checksum: the file is corrupt.
    BadChecksum { found: u32, expected: u32 },
    /// The payload does not decode.
    Malformed(String),
    /// The payload decodes but is inconsistent.
    Invalid(VerifyError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { len, expected } => write!(
                f,
                "truncated IR file: {len} bytes, expected {expected}; recompile it with protonc"
            ),
            DecodeError::BadMagic => {
                write!(f, "not a Proton IR file (bad magic); compile the config with protonc first")
            }
            DecodeError::WrongVersion { found, expected } => write!(
                f,
                "IR format version {found} is not supported (this build reads version {expected}); recompile the config with this protonc"
            ),
            DecodeError::BadChecksum { found, expected } => write!(
                f,
                "corrupt IR file: checksum {found:08x} does not match {expected:08x}; recompile it with protonc"
            ),
            DecodeError::Malformed(e) => write!(f, "corrupt IR file: payload does not decode: {e}"),
            DecodeError::Invalid(e) => write!(f, "invalid IR file: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `ir` into the file format, stamping `source_digest`.
pub fn encode(ir: &Ir, source_digest: [u8; 32]) -> Vec<u8> {
    // bincode serialisation of plain data into a Vec cannot fail (no maps with non-string
    // keys, no sequences of unknown length); fall back to an empty payload defensively.
    let payload = bincode::DefaultOptions::new()
        .serialize(ir)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&source_digest);
    out.extend_from_slice(&payload);
    out
}

/// Reads and checks the header only.
pub fn read_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        if bytes.len() < 8 && MAGIC.starts_with(bytes) {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                expected: HEADER_LEN,
            });
        }
        return Err(DecodeError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            len: bytes.len(),
            expected: HEADER_LEN,
        });
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(DecodeError::WrongVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let mut source_digest = [0u8; 32];
    source_digest.copy_from_slice(&bytes[24..56]);
    Ok(Header {
        version,
        checksum: u32_at(12),
        payload_len: u64::from_le_bytes(len),
        source_digest,
    })
}

/// Decodes and verifies an IR file.
pub fn decode(bytes: &[u8]) -> Result<(Header, Ir), DecodeError> {
    let header = read_header(bytes)?;
    let expected = usize::try_from(header.payload_len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN))
        .unwrap_or(usize::MAX);
    if bytes.len() < expected {
        return Err(DecodeError::Truncated {
            len: bytes.len(),
            expected,
        });
    }
    let payload = &bytes[HEADER_LEN..expected];
    let found = crc32fast::hash(payload);
    if found != header.checksum {
        return Err(DecodeError::BadChecksum {
            found,
            expected: header.checksum,
        });
    }
    let ir: Ir = bincode::DefaultOptions::new()
        .with_limit(payload.len() as u64 * 4 + 4096)
        .deserialize(payload)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    ir.verify().map_err(DecodeError::Invalid)?;
    Ok((header, ir))
}

use bincode::Options;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::*;

    pub(crate) fn tiny() -> Ir {
        let conf = crate::verify::tests::conf();
        Ir {
            main: MainConf {
                worker_processes: WorkerProcesses::Auto,
                error_log: vec![],
                pid: "proton.pid".into(),
                ..MainConf::default()
            },
            listeners: vec![Listener {
                addr: "0.0.0.0:80".into(),
                reuseport: false,
                backlog: 511,
                sock: SocketOptions::default(),
                ssl: false,
                proxy_protocol: false,
                http2: false,
                names: ServerNames {
                    exact: vec![],
                    leading: vec![],
                    trailing: vec![],
                    regex: vec![],
                    default: ServerId(0),
                },
            }],
            servers: vec![Server {
                names: vec![String::new()],
                source: SourceRef::default(),
                script: vec![],
                default_location: LocationId(0),
                tree: LocationTree::default(),
                named: vec![],
                tls: None,
            }],
            locations: vec![Location {
                kind: LocationKind::Server,
                name: TextRef::default(),
                server: ServerId(0),
                source: SourceRef::default(),
                nested: None,
                conf,
            }],
            upstreams: vec![],
            regexes: vec![],
            log_formats: vec![],
            user_vars: vec![],
            maps: vec![],
            mime_types: vec![vec![]],
            settings: vec![crate::verify::tests::settings()],
            text: String::new(),
            charset_maps: vec![],
            resolvers: vec![],
            limit_zones: vec![],
            cache_zones: vec![],
            source_files: vec!["proton.conf".into()],
        }
    }

    #[test]
    fn roundtrip() {
        let ir = tiny();
        let bytes = encode(&ir, [7; 32]);
        let (h, back) = decode(&bytes).unwrap();
        assert_eq!(back, ir);
        assert_eq!(h.source_digest, [7; 32]);
    }

    /// The payload layout is pinned: when a type change alters the encoding of this IR, this
    /// test fails until FORMAT_VERSION is bumped and the pinned checksum updated, so an old
    /// runtime refuses a new file as "wrong version" instead of misreading it.
    #[test]
    fn layout_change_needs_version_bump() {
        // A small IR and one that uses every optional part (proxy, alias, rewrite, …).
        let crc = |ir: &Ir| {
            let bytes = encode(ir, [0; 32]);
            u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]])
        };
        assert_eq!(
            (
                FORMAT_VERSION,
                crc(&tiny()),
                crc(&crate::verify::tests::rich())
            ),
            (81, PINNED_CRC, PINNED_RICH_CRC),
            "IR layout changed: bump FORMAT_VERSION and update the pinned CRCs"
        );
    }

    const PINNED_RICH_CRC: u32 = 2457165232;

    const PINNED_CRC: u32 = 3736971807;

    #[test]
    fn refuses_damage() {
        let bytes = encode(&tiny(), [0; 32]);
        assert!(matches!(
            decode(&bytes[..30]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"hello world, not an IR at all........................."),
            Err(DecodeError::BadMagic)
        ));
        let mut v = bytes.clone();
        v[8] = 99;
        assert!(matches!(
            decode(&v),
            Err(DecodeError::WrongVersion { found: 99, .. })
        ));
        let mut c = bytes.clone();
        let last = c.len() - 1;
        c[last] ^= 0xff;
        assert!(matches!(decode(&c), Err(DecodeError::BadChecksum { .. })));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
    }
}
