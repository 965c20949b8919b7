//! TLS name tables shared by `protonc` and `proton-run`.
//!
//! nginx configures TLS with OpenSSL's vocabulary: `ssl_ciphers` takes an OpenSSL cipher-list
//! string, `ssl_protocols` takes OpenSSL protocol words, `ssl_ecdh_curve` takes OpenSSL group
//! names and `ssl_session_ticket_key` names a file in nginx's own layout. Proton serves TLS
//! with rustls and its aws-lc-rs provider, which knows a much smaller set of algorithms under
//! different (IANA) names. This module is the one translation between the two vocabularies:
//! the compiler uses it to check the directives (and to explain what does not translate), the
//! runtime uses it to pick the rustls cipher suites, protocol versions and key-exchange groups,
//! and to print `$ssl_cipher` with OpenSSL's names. Everything here is pure: tables and
//! parsers, no I/O and no rustls dependency (names are compared as strings, spelled exactly as
//! rustls' `as_str()` prints them).

use std::fmt;

/// A TLS protocol version rustls implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Key exchange of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyExchange {
    /// Ephemeral elliptic-curve Diffie-Hellman (TLS 1.2 `ECDHE-…` suites).
    Ecdhe,
    /// Not part of the suite (TLS 1.3 negotiates it separately).
    Any,
}

/// Authentication (certificate key type) of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// ECDSA certificates.
    Ecdsa,
    /// RSA certificates.
    Rsa,
    /// Not part of the suite (TLS 1.3).
    Any,
}

/// Bulk cipher of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BulkCipher {
    /// AES-128 in GCM mode.
    Aes128Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
    /// ChaCha20 with Poly1305.
    Chacha20Poly1305,
}

impl BulkCipher {
    /// Key size in bits, what OpenSSL's `@STRENGTH` sorts by.
    pub const fn bits(self) -> u16 {
        match self {
            BulkCipher::Aes128Gcm => 128,
            BulkCipher::Aes256Gcm | BulkCipher::Chacha20Poly1305 => 256,
        }
    }
}

/// Record protection MAC of a cipher suite. All suites rustls offers are AEADs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mac {
    /// The bulk cipher authenticates itself (no separate HMAC).
    Aead,
}

/// Hash of the suite's PRF (TLS 1.2) or HKDF (TLS 1.3), the `SHA256`/`SHA384` in its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

/// One cipher suite the rustls aws-lc-rs provider implements, under both names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CipherSuite {
    /// OpenSSL's name, as `ssl_ciphers` and `$ssl_cipher` spell it.
    pub openssl: &'static str,
    /// rustls' name (IANA's), as `rustls::CipherSuite::as_str()` prints it.
    pub rustls: &'static str,
    /// The protocol version the suite belongs to.
    pub version: TlsVersion,
    /// Key exchange.
    pub kx: KeyExchange,
    /// Authentication.
    pub auth: Authentication,
    /// Bulk cipher.
    pub cipher: BulkCipher,
    /// Record MAC.
    pub mac: Mac,
    /// PRF / HKDF hash.
    pub digest: Digest,
}

const fn tls12(
    openssl: &'static str,
    rustls: &'static str,
    auth: Authentication,
    cipher: BulkCipher,
    digest: Digest,
) -> CipherSuite {
    CipherSuite {
        openssl,
        rustls,
        version: TlsVersion::Tls12,
        kx: KeyExchange::Ecdhe,
        auth,
        cipher,
        mac: Mac::Aead,
        digest,
    }
}

const fn tls13(
    openssl: &'static str,
    rustls: &'static str,
    cipher: BulkCipher,
    digest: Digest,
) -> CipherSuite {
    CipherSuite {
        openssl,
        rustls,
        version: TlsVersion::Tls13,
        kx: KeyExchange::Any,
        auth: Authentication::Any,
        cipher,
        mac: Mac::Aead,
        digest,
    }
}

/// The TLS 1.2 suites rustls 0.23 implements with aws-lc-rs, in OpenSSL's preference order
/// (the relative order `openssl ciphers -v ALL` lists them in, which is the order an alias
/// such as `HIGH` adds them in).
pub const TLS12_SUITES: [CipherSuite; 6] = {
    use Authentication::{Ecdsa, Rsa};
    use BulkCipher::{Aes128Gcm, Aes256Gcm, Chacha20Poly1305};
    use Digest::{Sha256, Sha384};
    [
        tls12(
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Ecdsa,
            Aes256Gcm,
            Sha384,
        ),
        tls12(
            "ECDHE-RSA-AES256-GCM-SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            Rsa,
            Aes256Gcm,
            Sha384,
        ),
        tls12(
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Ecdsa,
            Chacha20Poly1305,
            Sha256,
        ),
        tls12(
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Rsa,
            Chacha20Poly1305,
            Sha256,
        ),
        tls12(
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Ecdsa,
            Aes128Gcm,
            Sha256,
        ),
        tls12(
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            Rsa,
            Aes128Gcm,
            Sha256,
        ),
    ]
};

/// The TLS 1.3 suites rustls 0.23 implements with aws-lc-rs, in OpenSSL's default order.
/// `ssl_ciphers` does not select these (OpenSSL configures TLS 1.3 suites separately); they
/// are here for their names.
pub const TLS13_SUITES: [CipherSuite; 3] = [
    tls13(
        "TLS_AES_256_GCM_SHA384",
        "TLS13_AES_256_GCM_SHA384",
        BulkCipher::Aes256Gcm,
        Digest::Sha384,
    ),
    tls13(
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
        BulkCipher::Chacha20Poly1305,
        Digest::Sha256,
    ),
    tls13(
        "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_128_GCM_SHA256",
        BulkCipher::Aes128Gcm,
        Digest::Sha256,
    ),
];

/// The OpenSSL name of a rustls cipher suite name (TLS 1.2 or 1.3), for `$ssl_cipher`.
pub fn openssl_name_of(rustls_name: &str) -> Option<&'static str> {
    TLS12_SUITES
        .iter()
        .chain(TLS13_SUITES.iter())
        .find(|s| s.rustls == rustls_name)
        .map(|s| s.openssl)
}

/// OpenSSL's name of the cipher suite with IANA code `code`, for the suites clients commonly
/// offer and the two signalling values (`$ssl_ciphers`); `None` for others (GREASE values,
/// suites OpenSSL 3 does not know), which nginx prints in hex.
pub fn openssl_cipher_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc02b => "ECDHE-ECDSA-AES128-GCM-SHA256",
        0xc02c => "ECDHE-ECDSA-AES256-GCM-SHA384",
        0xc02f => "ECDHE-RSA-AES128-GCM-SHA256",
        0xc030 => "ECDHE-RSA-AES256-GCM-SHA384",
        0xcca8 => "ECDHE-RSA-CHACHA20-POLY1305",
        0xcca9 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        0xccaa => "DHE-RSA-CHACHA20-POLY1305",
        0x009e => "DHE-RSA-AES128-GCM-SHA256",
        0x009f => "DHE-RSA-AES256-GCM-SHA384",
        0xc023 => "ECDHE-ECDSA-AES128-SHA256",
        0xc024 => "ECDHE-ECDSA-AES256-SHA384",
        0xc027 => "ECDHE-RSA-AES128-SHA256",
        0xc028 => "ECDHE-RSA-AES256-SHA384",
        0xc009 => "ECDHE-ECDSA-AES128-SHA",
        0xc00a => "ECDHE-ECDSA-AES256-SHA",
        0xc013 => "ECDHE-RSA-AES128-SHA",
        0xc014 => "ECDHE-RSA-AES256-SHA",
        0x0067 => "DHE-RSA-AES128-SHA256",
        0x006b => "DHE-RSA-AES256-SHA256",
        0x0033 => "DHE-RSA-AES128-SHA",
        0x0039 => "DHE-RSA-AES256-SHA",
        0x009c => "AES128-GCM-SHA256",
        0x009d => "AES256-GCM-SHA384",
        0x003c => "AES128-SHA256",
        0x003d => "AES256-SHA256",
        0x002f => "AES128-SHA",
        0x0035 => "AES256-SHA",
        0x000a => "DES-CBC3-SHA",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x5600 => "TLS_FALLBACK_SCSV",
        _ => return None,
    })
}

/// Why an OpenSSL cipher-list string cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CipherListError {
    /// A word that is neither an OpenSSL cipher alias nor an OpenSSL cipher name.
    UnknownWord {
        /// The word as written.
        word: String,
        /// The closest known name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// Something OpenSSL would reject outright: an operator without a word, a character that
    /// is neither a separator nor part of a word, or an unknown `@` command.
    Syntax {
        /// The offending item.
        item: String,
    },
    /// The list is valid but selects none of the suites Proton supports.
    NoSupportedSuite,
}

impl fmt::Display for CipherListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherListError::UnknownWord { word, suggestion } => {
                write!(f, "unknown cipher or cipher alias \"{word}\"")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean \"{s}\"?)")?;
                }
                Ok(())
            }
            CipherListError::Syntax { item } => {
                write!(f, "invalid cipher list item \"{item}\"")
            }
            CipherListError::NoSupportedSuite => {
                f.write_str("no cipher suite Proton supports matches; Proton supports ")?;
                for (i, s) in TLS12_SUITES.iter().enumerate() {
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    f.write_str(s.openssl)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CipherListError {}

/// A set of [`TLS12_SUITES`], bit `i` standing for `TLS12_SUITES[i]`.
type Mask = u8;

const ALL_SUITES: Mask = (1 << TLS12_SUITES.len()) - 1;

fn mask_where(pred: impl Fn(&CipherSuite) -> bool) -> Mask {
    TLS12_SUITES
        .iter()
        .enumerate()
        .filter(|(_, s)| pred(s))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// OpenSSL's cipher aliases that select nothing Proton supports: key exchanges, ciphers,
/// MACs and protocol versions other than the ones in [`TLS12_SUITES`], plus the aliases older
/// OpenSSL versions had (`EXPORT`, `DES`, `SSLv2`, …), which nginx configurations still carry.
const EMPTY_ALIASES: &[&str] = &[
    // Old OpenSSL's alias for the ECC ciphers of the draft standard; OpenSSL 3 ignores it,
    // and configs (nginx's own tests among them) still say `DEFAULT:ECCdraft`.
    "ECCdraft",
    "COMPLEMENTOFDEFAULT",
    "COMPLEMENTOFALL",
    "MEDIUM",
    "LOW",
    "EXPORT",
    "EXP",
    "EXPORT40",
    "EXPORT56",
    "aNULL",
    "eNULL",
    "NULL",
    "ADH",
    "AECDH",
    "kRSA",
    "RSA",
    "kDHE",
    "kEDH",
    "DHE",
    "EDH",
    "DH",
    "kDHr",
    "kDHd",
    "kDH",
    "kECDHr",
    "kECDHe",
    "aDH",
    "aECDH",
    "PSK",
    "kPSK",
    "kRSAPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "aPSK",
    "ECDHEPSK",
    "DHEPSK",
    "RSAPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "DSS",
    "aDSS",
    "kGOST",
    "kGOST18",
    "aGOST",
    "aGOST01",
    "aGOST12",
    "GOST94",
    "GOST89",
    "GOST89MAC",
    "GOST12",
    "KUZNYECHIK",
    "MAGMA",
    "AESCCM",
    "AESCCM8",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIAGCM",
    "ARIA128",
    "ARIA256",
    "SEED",
    "IDEA",
    "RC4",
    "RC2",
    "DES",
    "3DES",
    "CBC",
    "MD5",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "TLSv1",
    "TLSv1.0",
    "SSLv3",
    "SSLv2",
    "KRB5",
    "kKRB5",
    "aKRB5",
];

/// The suites an OpenSSL cipher alias selects, `None` if `word` is not an alias.
fn alias_mask(word: &str) -> Option<Mask> {
    use Authentication::{Ecdsa, Rsa};
    use BulkCipher::{Aes128Gcm, Aes256Gcm, Chacha20Poly1305};
    Some(match word {
        // Every suite Proton supports is TLS 1.2, ECDHE, AEAD and "HIGH" strength.
        "ALL" | "HIGH" | "TLSv1.2" | "kECDHE" | "kEECDH" | "ECDHE" | "EECDH" | "ECDH" => ALL_SUITES,
        // `DEFAULT` is special only at the very beginning (handled by `cipher_list`); anywhere
        // else OpenSSL 3 treats it as an alias that selects nothing.
        "DEFAULT" => 0,
        // `RSA` is the RSA *key exchange* (kRSA); the authentication is `aRSA`.
        "aRSA" => mask_where(|s| s.auth == Rsa),
        "aECDSA" | "ECDSA" => mask_where(|s| s.auth == Ecdsa),
        "AES" | "AESGCM" => mask_where(|s| matches!(s.cipher, Aes128Gcm | Aes256Gcm)),
        "AES128" => mask_where(|s| s.cipher == Aes128Gcm),
        "AES256" => mask_where(|s| s.cipher == Aes256Gcm),
        "CHACHA20" => mask_where(|s| s.cipher == Chacha20Poly1305),
        _ if EMPTY_ALIASES.contains(&word) => 0,
        _ => return None,
    })
}

/// The suites one word of a cipher list selects: an alias, or a single cipher by OpenSSL name.
fn word_mask(word: &str) -> Option<Mask> {
    if let Some(m) = alias_mask(word) {
        return Some(m);
    }
    if let Some(i) = TLS12_SUITES.iter().position(|s| s.openssl == word) {
        return Some(1 << i);
    }
    if OPENSSL_CIPHER_NAMES.contains(&word) || LEGACY_CIPHER_NAMES.contains(&word) {
        return Some(0);
    }
    None
}

/// The closest known word to `word` (case-insensitive edit distance at most a third of its
/// length, and at least 1 so that case slips are always caught).
fn suggest(word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    let known = alias_names()
        .chain(TLS12_SUITES.iter().map(|s| s.openssl))
        .chain(OPENSSL_CIPHER_NAMES.iter().copied())
        .chain(LEGACY_CIPHER_NAMES.iter().copied());
    closest(&lower, known)
}

fn alias_names() -> impl Iterator<Item = &'static str> {
    const NONEMPTY: &[&str] = &[
        "ALL", "HIGH", "TLSv1.2", "kECDHE", "kEECDH", "ECDHE", "EECDH", "ECDH", "DEFAULT", "aRSA",
        "aECDSA", "ECDSA", "AES", "AESGCM", "AES128", "AES256", "CHACHA20",
    ];
    NONEMPTY.iter().chain(EMPTY_ALIASES.iter()).copied()
}

/// The candidate nearest to `lower` (already lower-cased) by case-insensitive edit distance,
/// if it is close enough to be a plausible typo.
fn closest(lower: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let limit = (lower.chars().count() / 3).max(1);
    candidates
        .map(|c| (levenshtein(lower, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein edit distance between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// What a cipher-list item does with the suites its words select.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `X`: append the selected suites that are not active (and not killed).
    Add,
    /// `-X`: deactivate; a later item may add them again.
    Delete,
    /// `!X`: remove for good.
    Kill,
    /// `+X`: move the selected active suites to the end.
    Order,
}

/// OpenSSL's working list: every suite not yet killed, in list order, with its active flag.
/// Mirrors `ssl_cipher_apply_rule` in OpenSSL's `ssl/ssl_ciph.c`, restricted to the six
/// suites: positions matter because deleted suites move to the head and re-added ones to
/// the tail.
struct WorkList {
    entries: Vec<Entry>,
}

/// An index into [`TLS12_SUITES`] and whether the suite is active (selected so far).
type Entry = (usize, bool);

impl WorkList {
    fn new() -> Self {
        WorkList {
            entries: (0..TLS12_SUITES.len()).map(|i| (i, false)).collect(),
        }
    }

    fn apply(&mut self, op: Op, mask: Mask) {
        let selected = |i: usize| mask & (1 << i) != 0;
        match op {
            Op::Add => self.move_to_tail(|(i, active)| selected(i) && !active),
            Op::Order => self.move_to_tail(|(i, active)| selected(i) && active),
            Op::Delete => {
                // OpenSSL walks backwards putting each at the head: relative order is kept.
                let (mut moved, rest) = self.split(|(i, active)| selected(i) && active);
                for entry in &mut moved {
                    entry.1 = false;
                }
                moved.extend(rest);
                self.entries = moved;
            }
            Op::Kill => self.entries.retain(|&(i, _)| !selected(i)),
        }
    }

    /// Takes the entries apart into those `pick` chooses and the others, both in list order.
    fn split(&mut self, pick: impl Fn(Entry) -> bool) -> (Vec<Entry>, Vec<Entry>) {
        std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|&e| pick(e))
    }

    /// Moves the entries `pick` chooses to the end, in their current order, and activates them.
    fn move_to_tail(&mut self, pick: impl Fn(Entry) -> bool) {
        let (moved, mut rest) = self.split(pick);
        rest.extend(moved.into_iter().map(|(i, _)| (i, true)));
        self.entries = rest;
    }

    /// `@STRENGTH`: a stable sort of the active suites by key bits, strongest first, behind
    /// the inactive ones.
    fn sort_by_strength(&mut self) {
        let (mut active, mut inactive) = self.split(|(_, active)| active);
        active.sort_by_key(|&(i, _)| std::cmp::Reverse(TLS12_SUITES[i].cipher.bits()));
        inactive.extend(active);
        self.entries = inactive;
    }

    fn active(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter(|e| e.1)
            .map(|&(i, _)| TLS12_SUITES[i].openssl)
            .collect()
    }
}

fn is_separator(c: char) -> bool {
    matches!(c, ':' | ',' | ' ' | ';')
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')
}

/// Evaluates an OpenSSL cipher-list string (what nginx's `ssl_ciphers` takes) the way
/// OpenSSL 3 does, restricted to the TLS 1.2 suites Proton supports ([`TLS12_SUITES`]), and
/// returns their OpenSSL names in the resulting preference order.
///
/// Items are separated by `:`, `,`, `;` or spaces. An item is `X` (append the matching suites
/// not yet in the list), `-X` (remove them; a later item may add them back), `!X` (remove
/// them for good), `+X` (move the matching suites in the list to its end), `@STRENGTH`
/// (sort by key bits) or `@SECLEVEL=n` (`n` from 0 to 5, accepted and ignored: OpenSSL's
/// security level is mostly about certificate and key-exchange sizes, which are not known
/// here; note that OpenSSL at levels 4 and 5 would also drop the 128-bit suites). `X` is a cipher alias such as `HIGH`
/// or `aRSA`, a cipher name such as `ECDHE-RSA-AES128-GCM-SHA256`, or several joined with
/// `+` meaning their intersection (`EECDH+AESGCM`). A leading `DEFAULT` stands for OpenSSL's
/// default list. Aliases add suites in OpenSSL's order; names one by one add them in the
/// order written.
///
/// Unlike OpenSSL, which silently skips words it does not know, an unknown word is an error,
/// and so is a list that selects none of Proton's suites.
pub fn cipher_list(spec: &str) -> Result<Vec<&'static str>, CipherListError> {
    let mut list = WorkList::new();
    let mut rest = spec;
    if let Some(after) = rest.strip_prefix("DEFAULT") {
        if after.chars().next().is_none_or(is_separator) {
            // OpenSSL's default list is "ALL:!COMPLEMENTOFDEFAULT:!eNULL"; the kills touch
            // none of the six.
            list.apply(Op::Add, ALL_SUITES);
            rest = after;
        }
    }
    for item in rest.split(is_separator).filter(|i| !i.is_empty()) {
        let syntax = || CipherListError::Syntax {
            item: item.to_owned(),
        };
        let (op, body) = match item.as_bytes()[0] {
            b'-' => (Op::Delete, &item[1..]),
            b'!' => (Op::Kill, &item[1..]),
            b'+' => (Op::Order, &item[1..]),
            b'@' => {
                match &item[1..] {
                    "STRENGTH" => list.sort_by_strength(),
                    level
                        if level.strip_prefix("SECLEVEL=").is_some_and(|n| {
                            n.len() == 1 && n.as_bytes()[0].is_ascii_digit() && n <= "5"
                        }) => {}
                    _ => return Err(syntax()),
                }
                continue;
            }
            _ => (Op::Add, item),
        };
        let mut mask = ALL_SUITES;
        for word in body.split('+') {
            if word.is_empty() || !word.chars().all(is_word_char) {
                return Err(syntax());
            }
            mask &= word_mask(word).ok_or_else(|| CipherListError::UnknownWord {
                word: word.to_owned(),
                suggestion: suggest(word),
            })?;
        }
        list.apply(op, mask);
    }
    let suites = list.active();
    if suites.is_empty() {
        return Err(CipherListError::NoSupportedSuite);
    }
    Ok(suites)
}

/// Every cipher name OpenSSL 3.0 knows for TLS 1.2 and earlier (and the TLS 1.3 names, which
/// `ssl_ciphers` accepts but ignores), from `openssl ciphers 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`
/// with OpenSSL 3.0.19. Those outside [`TLS12_SUITES`] are valid in a cipher list but select
/// nothing.
const OPENSSL_CIPHER_NAMES: &[&str] = &[
    "ADH-AES128-GCM-SHA256",
    "ADH-AES128-SHA",
    "ADH-AES128-SHA256",
    "ADH-AES256-GCM-SHA384",
    "ADH-AES256-SHA",
    "ADH-AES256-SHA256",
    "ADH-CAMELLIA128-SHA",
    "ADH-CAMELLIA128-SHA256",
    "ADH-CAMELLIA256-SHA",
    "ADH-CAMELLIA256-SHA256",
    "AECDH-AES128-SHA",
    "AECDH-AES256-SHA",
    "AECDH-NULL-SHA",
    "AES128-CCM",
    "AES128-CCM8",
    "AES128-GCM-SHA256",
    "AES128-SHA",
    "AES128-SHA256",
    "AES256-CCM",
    "AES256-CCM8",
    "AES256-GCM-SHA384",
    "AES256-SHA",
    "AES256-SHA256",
    "ARIA128-GCM-SHA256",
    "ARIA256-GCM-SHA384",
    "CAMELLIA128-SHA",
    "CAMELLIA128-SHA256",
    "CAMELLIA256-SHA",
    "CAMELLIA256-SHA256",
    "DHE-DSS-AES128-GCM-SHA256",
    "DHE-DSS-AES128-SHA",
    "DHE-DSS-AES128-SHA256",
    "DHE-DSS-AES256-GCM-SHA384",
    "DHE-DSS-AES256-SHA",
    "DHE-DSS-AES256-SHA256",
    "DHE-DSS-ARIA128-GCM-SHA256",
    "DHE-DSS-ARIA256-GCM-SHA384",
    "DHE-DSS-CAMELLIA128-SHA",
    "DHE-DSS-CAMELLIA128-SHA256",
    "DHE-DSS-CAMELLIA256-SHA",
    "DHE-DSS-CAMELLIA256-SHA256",
    "DHE-PSK-AES128-CBC-SHA",
    "DHE-PSK-AES128-CBC-SHA256",
    "DHE-PSK-AES128-CCM",
    "DHE-PSK-AES128-CCM8",
    "DHE-PSK-AES128-GCM-SHA256",
    "DHE-PSK-AES256-CBC-SHA",
    "DHE-PSK-AES256-CBC-SHA384",
    "DHE-PSK-AES256-CCM",
    "DHE-PSK-AES256-CCM8",
    "DHE-PSK-AES256-GCM-SHA384",
    "DHE-PSK-ARIA128-GCM-SHA256",
    "DHE-PSK-ARIA256-GCM-SHA384",
    "DHE-PSK-CAMELLIA128-SHA256",
    "DHE-PSK-CAMELLIA256-SHA384",
    "DHE-PSK-CHACHA20-POLY1305",
    "DHE-PSK-NULL-SHA",
    "DHE-PSK-NULL-SHA256",
    "DHE-PSK-NULL-SHA384",
    "DHE-RSA-AES128-CCM",
    "DHE-RSA-AES128-CCM8",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES128-SHA",
    "DHE-RSA-AES128-SHA256",
    "DHE-RSA-AES256-CCM",
    "DHE-RSA-AES256-CCM8",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES256-SHA",
    "DHE-RSA-AES256-SHA256",
    "DHE-RSA-ARIA128-GCM-SHA256",
    "DHE-RSA-ARIA256-GCM-SHA384",
    "DHE-RSA-CAMELLIA128-SHA",
    "DHE-RSA-CAMELLIA128-SHA256",
    "DHE-RSA-CAMELLIA256-SHA",
    "DHE-RSA-CAMELLIA256-SHA256",
    "DHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ARIA128-GCM-SHA256",
    "ECDHE-ARIA256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-AES128-CCM8",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-CCM",
    "ECDHE-ECDSA-AES256-CCM8",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-ECDSA-ARIA128-GCM-SHA256",
    "ECDHE-ECDSA-ARIA256-GCM-SHA384",
    "ECDHE-ECDSA-CAMELLIA128-SHA256",
    "ECDHE-ECDSA-CAMELLIA256-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-NULL-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-PSK-AES128-CBC-SHA256",
    "ECDHE-PSK-AES256-CBC-SHA",
    "ECDHE-PSK-AES256-CBC-SHA384",
    "ECDHE-PSK-CAMELLIA128-SHA256",
    "ECDHE-PSK-CAMELLIA256-SHA384",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-PSK-NULL-SHA",
    "ECDHE-PSK-NULL-SHA256",
    "ECDHE-PSK-NULL-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-CAMELLIA128-SHA256",
    "ECDHE-RSA-CAMELLIA256-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-RSA-NULL-SHA",
    "NULL-MD5",
    "NULL-SHA",
    "NULL-SHA256",
    "PSK-AES128-CBC-SHA",
    "PSK-AES128-CBC-SHA256",
    "PSK-AES128-CCM",
    "PSK-AES128-CCM8",
    "PSK-AES128-GCM-SHA256",
    "PSK-AES256-CBC-SHA",
    "PSK-AES256-CBC-SHA384",
    "PSK-AES256-CCM",
    "PSK-AES256-CCM8",
    "PSK-AES256-GCM-SHA384",
    "PSK-ARIA128-GCM-SHA256",
    "PSK-ARIA256-GCM-SHA384",
    "PSK-CAMELLIA128-SHA256",
    "PSK-CAMELLIA256-SHA384",
    "PSK-CHACHA20-POLY1305",
    "PSK-NULL-SHA",
    "PSK-NULL-SHA256",
    "PSK-NULL-SHA384",
    "RSA-PSK-AES128-CBC-SHA",
    "RSA-PSK-AES128-CBC-SHA256",
    "RSA-PSK-AES128-GCM-SHA256",
    "RSA-PSK-AES256-CBC-SHA",
    "RSA-PSK-AES256-CBC-SHA384",
    "RSA-PSK-AES256-GCM-SHA384",
    "RSA-PSK-ARIA128-GCM-SHA256",
    "RSA-PSK-ARIA256-GCM-SHA384",
    "RSA-PSK-CAMELLIA128-SHA256",
    "RSA-PSK-CAMELLIA256-SHA384",
    "RSA-PSK-CHACHA20-POLY1305",
    "RSA-PSK-NULL-SHA",
    "RSA-PSK-NULL-SHA256",
    "RSA-PSK-NULL-SHA384",
    "SRP-AES-128-CBC-SHA",
    "SRP-AES-256-CBC-SHA",
    "SRP-DSS-AES-128-CBC-SHA",
    "SRP-DSS-AES-256-CBC-SHA",
    "SRP-RSA-AES-128-CBC-SHA",
    "SRP-RSA-AES-256-CBC-SHA",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Cipher names OpenSSL still defines but this build of OpenSSL 3 omits (weak ciphers: RC4,
/// DES, 3DES, IDEA, SEED, GOST), which old nginx configurations name explicitly.
const LEGACY_CIPHER_NAMES: &[&str] = &[
    "RC4-MD5",
    "RC4-SHA",
    "IDEA-CBC-SHA",
    "SEED-SHA",
    "DHE-DSS-SEED-SHA",
    "DHE-RSA-SEED-SHA",
    "ADH-SEED-SHA",
    "DES-CBC-SHA",
    "DES-CBC3-SHA",
    "EDH-RSA-DES-CBC-SHA",
    "EDH-RSA-DES-CBC3-SHA",
    "EDH-DSS-DES-CBC-SHA",
    "EDH-DSS-DES-CBC3-SHA",
    "DHE-RSA-DES-CBC3-SHA",
    "DHE-DSS-DES-CBC3-SHA",
    "ADH-RC4-MD5",
    "ADH-DES-CBC-SHA",
    "ADH-DES-CBC3-SHA",
    "ECDHE-RSA-RC4-SHA",
    "ECDHE-ECDSA-RC4-SHA",
    "ECDHE-RSA-DES-CBC3-SHA",
    "ECDHE-ECDSA-DES-CBC3-SHA",
    "AECDH-RC4-SHA",
    "AECDH-DES-CBC3-SHA",
    "PSK-RC4-SHA",
    "PSK-3DES-EDE-CBC-SHA",
    "RSA-PSK-RC4-SHA",
    "RSA-PSK-3DES-EDE-CBC-SHA",
    "DHE-PSK-RC4-SHA",
    "DHE-PSK-3DES-EDE-CBC-SHA",
    "ECDHE-PSK-RC4-SHA",
    "ECDHE-PSK-3DES-EDE-CBC-SHA",
    "SRP-3DES-EDE-CBC-SHA",
    "SRP-RSA-3DES-EDE-CBC-SHA",
    "SRP-DSS-3DES-EDE-CBC-SHA",
    "GOST2001-GOST89-GOST89",
    "GOST2001-NULL-GOST94",
    "GOST2012-GOST8912-GOST8912",
    "GOST2012-NULL-GOST12",
    "GOST2012-KUZNYECHIK-KUZNYECHIKOMAC",
    "GOST2012-MAGMA-MAGMAOMAC",
];

/// What Proton makes of an `ssl_protocols` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A version rustls implements.
    Supported(TlsVersion),
    /// A version nginx knows but rustls does not implement (`SSLv2`, `SSLv3`, `TLSv1`,
    /// `TLSv1.1`); carries the canonical spelling.
    Unsupported(&'static str),
    /// Not a protocol nginx knows.
    Unknown,
}

/// Classifies an `ssl_protocols` word. nginx compares them case-insensitively.
pub fn protocol(name: &str) -> Protocol {
    const UNSUPPORTED: [&str; 4] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1"];
    if name.eq_ignore_ascii_case("TLSv1.2") {
        Protocol::Supported(TlsVersion::Tls12)
    } else if name.eq_ignore_ascii_case("TLSv1.3") {
        Protocol::Supported(TlsVersion::Tls13)
    } else if let Some(canonical) = UNSUPPORTED.iter().find(|p| p.eq_ignore_ascii_case(name)) {
        Protocol::Unsupported(canonical)
    } else {
        Protocol::Unknown
    }
}

/// Key-exchange groups the rustls aws-lc-rs provider implements (`ALL_KX_GROUPS` in
/// rustls 0.23's `crypto/aws_lc_rs/mod.rs`): OpenSSL's names and aliases for each (compared
/// case-insensitively), then the `rustls::NamedGroup::as_str()` name. The provider has no
/// secp521r1.
const SUPPORTED_GROUPS: &[(&[&str], &str)] = &[
    (&["X25519"], "X25519"),
    (&["secp256r1", "prime256v1", "P-256"], "secp256r1"),
    (&["secp384r1", "P-384"], "secp384r1"),
    (&["X25519MLKEM768"], "X25519MLKEM768"),
    (&["SecP256r1MLKEM768"], "secp256r1MLKEM768"),
    (&["MLKEM768"], "MLKEM768"),
    (&["MLKEM1024"], "MLKEM1024"),
];

/// Group names OpenSSL knows that the aws-lc-rs provider does not implement.
const UNSUPPORTED_GROUPS: &[&str] = &[
    "secp521r1",
    "P-521",
    "X448",
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "ffdhe6144",
    "ffdhe8192",
    "MLKEM512",
    "SecP384r1MLKEM1024",
    "X448MLKEM1024",
    "brainpoolP256r1",
    "brainpoolP384r1",
    "brainpoolP512r1",
    "brainpoolP256r1tls13",
    "brainpoolP384r1tls13",
    "brainpoolP512r1tls13",
    "secp256k1",
    "secp224r1",
    "P-224",
    "secp224k1",
    "secp192r1",
    "prime192v1",
    "P-192",
    "secp192k1",
    "secp160r2",
    "secp160r1",
    "secp160k1",
    "sect571r1",
    "sect571k1",
    "sect409r1",
    "sect409k1",
    "sect283r1",
    "sect283k1",
    "sect239k1",
    "sect233r1",
    "sect233k1",
    "sect193r2",
    "sect193r1",
    "sect163r2",
    "sect163r1",
    "sect163k1",
];

/// The rustls `NamedGroup` name (as `as_str()` prints it) for an OpenSSL/nginx
/// `ssl_ecdh_curve` name, `None` if the aws-lc-rs provider does not implement that group or
/// the name is unknown (see [`curve_list`] for which).
pub fn curve(name: &str) -> Option<&'static str> {
    SUPPORTED_GROUPS
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|&(_, rustls)| rustls)
}

/// Parses an `ssl_ecdh_curve` value: `auto` (alone) is `None`, the provider's default groups
/// in its default order; otherwise a `:`-separated list of group names, returned as rustls
/// names in the order given. Empty items, duplicates (as OpenSSL rejects them), groups the
/// provider lacks and unknown names are errors.
pub fn curve_list(spec: &str) -> Result<Option<Vec<&'static str>>, String> {
    if spec == "auto" {
        return Ok(None);
    }
    let mut groups = Vec::new();
    for name in spec.split(':') {
        if name.is_empty() {
            return Err(format!("empty curve name in \"{spec}\""));
        }
        if name == "auto" {
            return Err(format!(
                "\"auto\" must be the whole value of ssl_ecdh_curve, not part of \"{spec}\""
            ));
        }
        let Some(group) = curve(name) else {
            return Err(curve_error(name));
        };
        if groups.contains(&group) {
            return Err(format!("curve \"{name}\" is listed twice in \"{spec}\""));
        }
        groups.push(group);
    }
    Ok(Some(groups))
}

fn curve_error(name: &str) -> String {
    if UNSUPPORTED_GROUPS
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
    {
        return format!("curve \"{name}\" is not supported by Proton's TLS library; {SUPPORTED}");
    }
    let known = SUPPORTED_GROUPS
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .chain(UNSUPPORTED_GROUPS.iter().copied())
        .chain(["auto"]);
    match closest(&name.to_ascii_lowercase(), known) {
        Some(s) => format!("unknown curve \"{name}\" (did you mean \"{s}\"?)"),
        None => format!("unknown curve \"{name}\"; {SUPPORTED}"),
    }
}

const SUPPORTED: &str = "supported: X25519, prime256v1 (P-256), secp384r1 (P-384), \
                         X25519MLKEM768, SecP256r1MLKEM768, MLKEM768, MLKEM1024";

/// A session ticket key from an `ssl_session_ticket_key` file.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKey {
    /// The key name, sent in the clear in each ticket to find the key again.
    pub name: [u8; 16],
    /// The AES key protecting the tickets: 16 bytes (AES-128) from a 48-byte file, 32 bytes
    /// (AES-256) from an 80-byte file. nginx's HMAC secret is not used: rustls seals tickets
    /// with an AEAD.
    pub aead_key: Vec<u8>,
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("TicketKey")
            .field("name", &self.name)
            .field("aead_key", &format_args!("<{} bytes>", self.aead_key.len()))
            .finish()
    }
}

/// Parses an `ssl_session_ticket_key` file as nginx lays it out: 48 bytes (16 name, 16 HMAC
/// secret, 16 AES-128 key) or 80 bytes (16 name, 32 HMAC secret, 32 AES-256 key).
pub fn ticket_key_file(bytes: &[u8]) -> Result<TicketKey, String> {
    let secret_len = match bytes.len() {
        48 => 16,
        80 => 32,
        n => {
            return Err(format!(
                "ssl_session_ticket_key file has {n} bytes, must be 48 or 80 bytes"
            ))
        }
    };
    let (name, rest) = bytes.split_at(16);
    let name: [u8; 16] = name.try_into().expect("split at 16");
    Ok(TicketKey {
        name,
        aead_key: rest[secret_len..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<&str> {
        list.split(' ').collect()
    }

    #[test]
    fn suite_tables() {
        assert_eq!(TLS12_SUITES.len(), 6);
        for s in &TLS12_SUITES {
            assert_eq!(s.version, TlsVersion::Tls12);
            assert_eq!(s.kx, KeyExchange::Ecdhe);
            assert_eq!(s.mac, Mac::Aead);
            assert!(s.rustls.starts_with("TLS_ECDHE_"), "{}", s.rustls);
            let auth = if s.openssl.contains("-ECDSA-") {
                Authentication::Ecdsa
            } else {
                Authentication::Rsa
            };
            assert_eq!(s.auth, auth, "{}", s.openssl);
            let digest = if s.openssl.ends_with("SHA384") {
                Digest::Sha384
            } else {
                Digest::Sha256
            };
            assert_eq!(s.digest, digest, "{}", s.openssl);
            assert!(OPENSSL_CIPHER_NAMES.contains(&s.openssl));
        }
        for s in &TLS13_SUITES {
            assert_eq!(s.version, TlsVersion::Tls13);
            assert_eq!(s.rustls.replacen("TLS13_", "TLS_", 1), s.openssl);
            assert!(OPENSSL_CIPHER_NAMES.contains(&s.openssl));
        }
        assert_eq!(BulkCipher::Aes128Gcm.bits(), 128);
        assert_eq!(BulkCipher::Chacha20Poly1305.bits(), 256);
    }

    #[test]
    fn openssl_names_of_rustls_suites() {
        assert_eq!(
            openssl_name_of("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            Some("ECDHE-ECDSA-AES256-GCM-SHA384")
        );
        assert_eq!(
            openssl_name_of("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            Some("ECDHE-RSA-CHACHA20-POLY1305")
        );
        assert_eq!(
            openssl_name_of("TLS13_AES_128_GCM_SHA256"),
            Some("TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(
            openssl_name_of("TLS13_CHACHA20_POLY1305_SHA256"),
            Some("TLS_CHACHA20_POLY1305_SHA256")
        );
        assert_eq!(openssl_name_of("ECDHE-RSA-AES128-GCM-SHA256"), None);
        assert_eq!(openssl_name_of("TLS_RSA_WITH_AES_128_CBC_SHA"), None);
    }

    /// Expected results from OpenSSL 3.0.19: `openssl ciphers -s -tls1_2 'LIST'`, keeping only
    /// the six suites in `TLS12_SUITES`, in the order OpenSSL printed them.
    #[test]
    fn cipher_lists_agree_with_openssl() {
        let cases: &[(&str, &str)] = &[
            (
                "HIGH:!aNULL:!MD5",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305",
            ),
            (
                "EECDH+AESGCM:EDH+AESGCM",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "ALL:!ADH:!EXPORT:!SSLv2:RC4+RSA:+HIGH:+MEDIUM",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "DEFAULT",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "DEFAULT:!aRSA",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "AES128:CHACHA20:@STRENGTH",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "HIGH:@SECLEVEL=2",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "ALL:-AES256:AES256",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384",
            ),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:ALL",
                "ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "ALL:-aRSA:ECDHE-RSA-AES128-GCM-SHA256:aRSA",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305",
            ),
            (
                "ALL:!AES256:AES256",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "aRSA+AES:aECDSA",
                "ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "ALL:-ECDSA:+AES128:ECDSA",
                "ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "CHACHA20:+aRSA",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305",
            ),
            (
                "HIGH:+AES128:+AES256",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384",
            ),
            (
                "ECDHE+CHACHA20:ECDHE+AES256,ECDHE+AES128",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "kEECDH+ECDSA kEECDH+aRSA",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "HIGH:!CHACHA20:!AES128",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384",
            ),
            (
                "AESGCM:+aECDSA",
                "ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            (
                "ECDSA+AES128:!AES256:ALL:@STRENGTH",
                "ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "HIGH:-AES128:+CHACHA20:AES128",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                "aECDSA+AES256:aRSA+SHA384:aRSA",
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256",
            ),
        ];
        for &(spec, expected) in cases {
            assert_eq!(cipher_list(spec), Ok(names(expected)), "{spec}");
        }
    }

    #[test]
    fn cipher_list_syntax() {
        // Empty items are skipped; `;` separates too; `@SECLEVEL` is ignored.
        assert_eq!(
            cipher_list("::AES256;;CHACHA20+aRSA,@SECLEVEL=0 "),
            Ok(names(
                "ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305"
            ))
        );
        // DEFAULT is special only at the beginning; later it selects nothing.
        assert_eq!(
            cipher_list("aRSA:DEFAULT"),
            Ok(names(
                "ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256"
            ))
        );
        for bad in [
            "!",
            "-",
            "+",
            "AES+",
            "HIGH:@FOO",
            "@SECLEVEL=6",
            "@SECLEVEL=",
            "HIGH/AES",
            "é",
            "HIGH:!é",
        ] {
            assert!(
                matches!(cipher_list(bad), Err(CipherListError::Syntax { .. })),
                "{bad}: {:?}",
                cipher_list(bad)
            );
        }
    }

    #[test]
    fn cipher_list_words_outside_the_six_are_valid_but_select_nothing() {
        for word in [
            "DHE-RSA-AES128-GCM-SHA256",
            "AES128-SHA",
            "RC4-SHA",
            "DES-CBC3-SHA",
            "TLS_AES_128_GCM_SHA256",
            "MEDIUM",
            "SHA256",
            "RSA",
            "kGOST",
            "EXP",
            "TLSv1",
        ] {
            assert_eq!(
                cipher_list(&format!("{word}:AES128+aRSA")),
                Ok(vec!["ECDHE-RSA-AES128-GCM-SHA256"]),
                "{word}"
            );
            assert_eq!(
                cipher_list(word),
                Err(CipherListError::NoSupportedSuite),
                "{word}"
            );
        }
    }

    #[test]
    fn cipher_list_errors() {
        assert_eq!(
            cipher_list("HIGH:!aNUL"),
            Err(CipherListError::UnknownWord {
                word: "aNUL".into(),
                suggestion: Some("aNULL"),
            })
        );
        assert_eq!(
            cipher_list("high"),
            Err(CipherListError::UnknownWord {
                word: "high".into(),
                suggestion: Some("HIGH"),
            })
        );
        assert_eq!(
            cipher_list("ECDHE-RSA-AES128-GCM-SHA265"),
            Err(CipherListError::UnknownWord {
                word: "ECDHE-RSA-AES128-GCM-SHA265".into(),
                suggestion: Some("ECDHE-RSA-AES128-GCM-SHA256"),
            })
        );
        assert_eq!(
            cipher_list("EECDH+AESGCM:frobnicate"),
            Err(CipherListError::UnknownWord {
                word: "frobnicate".into(),
                suggestion: None,
            })
        );
        assert_eq!(
            cipher_list("@STRENGTH"),
            Err(CipherListError::NoSupportedSuite)
        );
        assert_eq!(cipher_list(""), Err(CipherListError::NoSupportedSuite));
        assert_eq!(
            cipher_list("HIGH:!ECDHE"),
            Err(CipherListError::NoSupportedSuite)
        );
        let message = CipherListError::NoSupportedSuite.to_string();
        assert!(message.starts_with("no cipher suite Proton supports matches"));
        assert!(message.contains("ECDHE-RSA-CHACHA20-POLY1305"));
        assert_eq!(
            cipher_list("aNUL").unwrap_err().to_string(),
            "unknown cipher or cipher alias \"aNUL\" (did you mean \"aNULL\"?)"
        );
        assert_eq!(
            cipher_list("a/b").unwrap_err().to_string(),
            "invalid cipher list item \"a/b\""
        );
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "ab"), 2);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn protocols() {
        assert_eq!(protocol("TLSv1.2"), Protocol::Supported(TlsVersion::Tls12));
        assert_eq!(protocol("TLSv1.3"), Protocol::Supported(TlsVersion::Tls13));
        assert_eq!(protocol("tlsv1.3"), Protocol::Supported(TlsVersion::Tls13));
        assert_eq!(protocol("SSLv2"), Protocol::Unsupported("SSLv2"));
        assert_eq!(protocol("SSLv3"), Protocol::Unsupported("SSLv3"));
        assert_eq!(protocol("TLSv1"), Protocol::Unsupported("TLSv1"));
        assert_eq!(protocol("tlsv1.1"), Protocol::Unsupported("TLSv1.1"));
        assert_eq!(protocol("TLSv1.4"), Protocol::Unknown);
        assert_eq!(protocol("TLS1.2"), Protocol::Unknown);
        assert_eq!(protocol(""), Protocol::Unknown);
    }

    #[test]
    fn curves() {
        for (name, group) in [
            ("X25519", "X25519"),
            ("x25519", "X25519"),
            ("prime256v1", "secp256r1"),
            ("P-256", "secp256r1"),
            ("secp256r1", "secp256r1"),
            ("secp384r1", "secp384r1"),
            ("P-384", "secp384r1"),
            ("X25519MLKEM768", "X25519MLKEM768"),
            ("SecP256r1MLKEM768", "secp256r1MLKEM768"),
            ("MLKEM1024", "MLKEM1024"),
        ] {
            assert_eq!(curve(name), Some(group), "{name}");
        }
        // Known to OpenSSL, absent from the aws-lc-rs provider.
        for name in ["secp521r1", "P-521", "X448", "ffdhe2048", "brainpoolP256r1"] {
            assert_eq!(curve(name), None, "{name}");
        }
        assert_eq!(curve("auto"), None);
        assert_eq!(curve("P256"), None);
    }

    #[test]
    fn curve_lists() {
        assert_eq!(curve_list("auto"), Ok(None));
        assert_eq!(curve_list("prime256v1"), Ok(Some(vec!["secp256r1"])));
        assert_eq!(
            curve_list("X25519MLKEM768:x25519:P-384:prime256v1"),
            Ok(Some(vec![
                "X25519MLKEM768",
                "X25519",
                "secp384r1",
                "secp256r1"
            ]))
        );
        let err = curve_list("X25519:secp521r1").unwrap_err();
        assert!(
            err.starts_with("curve \"secp521r1\" is not supported"),
            "{err}"
        );
        assert!(err.contains("prime256v1"), "{err}");
        let err = curve_list("X448").unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        assert_eq!(
            curve_list("prime256v2").unwrap_err(),
            "unknown curve \"prime256v2\" (did you mean \"prime256v1\"?)"
        );
        assert_eq!(
            curve_list("X25591").unwrap_err(),
            "unknown curve \"X25591\" (did you mean \"X25519\"?)"
        );
        let err = curve_list("something").unwrap_err();
        assert!(
            err.starts_with("unknown curve \"something\"; supported:"),
            "{err}"
        );
        assert!(curve_list("").is_err());
        assert!(curve_list("X25519:").is_err());
        assert!(curve_list("auto:X25519")
            .unwrap_err()
            .contains("whole value"));
        assert!(curve_list("P-256:prime256v1")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn ticket_key_files() {
        let bytes: Vec<u8> = (0..80).collect();
        let key = ticket_key_file(&bytes[..48]).unwrap();
        assert_eq!(key.name, <[u8; 16]>::try_from(&bytes[..16]).unwrap());
        assert_eq!(key.aead_key, &bytes[32..48]);
        let key = ticket_key_file(&bytes).unwrap();
        assert_eq!(key.name, <[u8; 16]>::try_from(&bytes[..16]).unwrap());
        assert_eq!(key.aead_key, &bytes[48..80]);
        for len in [0, 16, 47, 49, 64, 79, 81, 96] {
            let err = ticket_key_file(&vec![0; len]).unwrap_err();
            assert!(err.contains(&format!("{len} bytes")), "{err}");
            assert!(err.contains("must be 48 or 80 bytes"), "{err}");
        }
        let debug = format!("{:?}", ticket_key_file(&bytes).unwrap());
        assert!(debug.contains("<32 bytes>"), "{debug}");
    }
}
