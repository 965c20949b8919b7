//! htpasswd files as nginx's auth_basic module reads them: a sans-IO scanner that finds a
//! user's line in the bytes of the file as they are read, and the password check of
//! `ngx_crypt` (nginx's own `{PLAIN}`, `{SHA}`, `{SSHA}`, `$apr1$`, and crypt(3) formats for
//! the rest).

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// The longest password field kept (nginx's buffer holds 2048 bytes of it; the rest of a
/// longer field is not read).
pub const MAX_FIELD: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, or matching its user name (`matched` bytes so far).
    Login,
    /// In the password field of the user's line.
    Passwd,
    /// Skipping the rest of a line (a comment, another user).
    Skip,
}

/// Looks for `user`'s line (`user:hash[:anything]`) in an htpasswd file fed in pieces, as
/// nginx's state machine does: a line that starts with `#` or CR is skipped, the user name
/// must match exactly (bytes), and the password field ends at CR, LF, `:` or the end of
/// the file.
#[derive(Debug)]
pub struct Scan {
    state: State,
    matched: usize,
    field: Vec<u8>,
    found: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            state: State::Login,
            matched: 0,
            field: Vec::new(),
            found: false,
        }
    }
}

impl Scan {
    /// Feeds the next bytes of the file. True once the user's password field is whole
    /// (see [`Scan::field`]); the rest of the file need not be read.
    pub fn feed(&mut self, user: &[u8], chunk: &[u8]) -> bool {
        if self.found {
            return true;
        }
        for &b in chunk {
            match self.state {
                State::Login => {
                    if self.matched == 0 {
                        if b == b'#' || b == b'\r' {
                            self.state = State::Skip;
                            continue;
                        }
                        if b == b'\n' {
                            continue;
                        }
                    }
                    // The name, then its `:`.
                    let want = user.get(self.matched).copied().unwrap_or(b':');
                    if b != want {
                        self.state = State::Skip;
                        continue;
                    }
                    if self.matched == user.len() {
                        self.state = State::Passwd;
                        self.field.clear();
                    }
                    self.matched += 1;
                }
                State::Passwd => {
                    if matches!(b, b'\n' | b'\r' | b':') {
                        self.found = true;
                        return true;
                    }
                    if self.field.len() < MAX_FIELD {
                        self.field.push(b);
                    }
                }
                State::Skip => {
                    if b == b'\n' {
                        self.state = State::Login;
                        self.matched = 0;
                    }
                }
            }
        }
        false
    }

    /// The user's password field once found (at the end of the file, a last line without
    /// a newline counts); `None`: the user is not in the file.
    pub fn field(&self) -> Option<&[u8]> {
        (self.found || self.state == State::Passwd).then_some(&self.field[..])
    }
}

/// How a password compares with the hash of the user's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
    /// A crypt(3) format Proton does not implement (gost-yescrypt, scrypt): never a match.
    Unsupported,
}

/// nginx's base64 decoding: padding optional, trailing bits ignored.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `password` against `stored` (the password field of the user's line) as
/// `ngx_crypt` does: the password is hashed with the stored hash's scheme and salt, and the
/// result must be the stored text. Both end at a NUL, as the C strings nginx passes.
pub fn verify(password: &[u8], stored: &[u8]) -> Verdict {
    let cut = |s: &[u8]| -> usize { memchr::memchr(0, s).unwrap_or(s.len()) };
    let password = &password[..cut(password)];
    let stored = &stored[..cut(stored)];
    let ok = |m: bool| if m { Verdict::Match } else { Verdict::Mismatch };
    if let Some(plain) = stored.strip_prefix(b"{PLAIN}") {
        return ok(same(plain, password));
    }
    if let Some(encoded) = stored.strip_prefix(b"{SSHA}") {
        // base64(SHA1(password salt) salt).
        let Ok(decoded) = LENIENT.decode(encoded) else {
            return Verdict::Mismatch;
        };
        let Some(salt) = decoded.get(20..) else {
            return Verdict::Mismatch;
        };
        let mut raw = sha1(&[password, salt]).to_vec();
        raw.extend_from_slice(salt);
        return ok(same(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .as_bytes(),
            encoded,
        ));
    }
    if let Some(encoded) = stored.strip_prefix(b"{SHA}") {
        let mine = base64::engine::general_purpose::STANDARD.encode(sha1(&[password]));
        return ok(same(mine.as_bytes(), encoded));
    }
    for unsupported in [&b"$gy$"[..], b"$7$"] {
        if stored.starts_with(unsupported) {
            return Verdict::Unsupported;
        }
    }
    if stored.starts_with(b"$y$") {
        use yescrypt::password_hash::PasswordVerifier;
        let Ok(text) = std::str::from_utf8(stored) else {
            return Verdict::Mismatch;
        };
        return ok(yescrypt::Yescrypt::default()
            .verify_password(password, text)
            .is_ok());
    }
    // `$apr1$` and crypt(3)'s formats; a hash the algorithm cannot read never matches (as
    // libxcrypt's failure token).
    let Ok(text) = std::str::from_utf8(stored) else {
        return Verdict::Mismatch;
    };
    #[allow(deprecated)] // (DES and MD5 are there to check old files, not to make new ones)
    let hashed = {
        use crypt3_rs::crypt::{apr1, bcrypt, bsdi, md5, sha1, sha256, sha512, unix};
        if text.starts_with("$apr1$") {
            apr1::hash_with(text, password)
        } else if text.starts_with("$1$") {
            md5::hash_with(text, password)
        } else if text.starts_with("$5$") {
            sha256::hash_with(text, password)
        } else if text.starts_with("$6$") {
            sha512::hash_with(text, password)
        } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
            bcrypt::hash_with(text, password)
        } else if text.starts_with("$sha1$") {
            sha1::hash_with(text, password)
        } else if text.starts_with('_') {
            bsdi::hash_with(text, password)
        } else {
            unix::hash_with(text, password)
        }
    };
    match hashed {
        Ok(h) => ok(same(h.as_bytes(), stored)),
        Err(_) => Verdict::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(file: &[u8], user: &[u8], step: usize) -> Option<Vec<u8>> {
        let mut s = Scan::default();
        for piece in file.chunks(step.max(1)) {
            if s.feed(user, piece) {
                break;
            }
        }
        s.field().map(<[u8]>::to_vec)
    }

    #[test]
    fn users_are_found_at_every_split_point() {
        let file = b"# comment user:nope\n\
            \r\n\
            other:x\n\
            user2:wrong\n\
            user:{PLAIN}secret:extra field\n\
            last:{SHA}abc";
        let cases: [(&[u8], Option<&[u8]>); 6] = [
            (b"user", Some(b"{PLAIN}secret")),
            (b"last", Some(b"{SHA}abc")),
            (b"other", Some(b"x")),
            (b"use", None),
            (b"users", None),
            (b"nobody", None),
        ];
        for (user, want) in cases {
            for step in 1..=file.len() {
                assert_eq!(
                    find(file, user, step).as_deref(),
                    want,
                    "user {:?} step {step}",
                    String::from_utf8_lossy(user)
                );
            }
        }
        // CRLF line ends, an empty password field.
        assert_eq!(find(b"a:1\r\nb:\r\n", b"b", 1).as_deref(), Some(&b""[..]));
        // A user name never matches in the middle of a line.
        assert_eq!(find(b"xuser:1\n", b"user", 3), None);
        // A comment is a comment only at the start of a line.
        assert_eq!(
            find(b"#user:1\nuser:2\n", b"user", 2).as_deref(),
            Some(&b"2"[..])
        );
    }

    #[test]
    fn a_long_field_is_cut_as_nginx_cuts_it() {
        let mut file = b"u:".to_vec();
        file.extend(std::iter::repeat_n(b'a', MAX_FIELD + 100));
        file.push(b'\n');
        assert_eq!(find(&file, b"u", 4096).map(|f| f.len()), Some(MAX_FIELD));
    }

    /// The hashes of nginx's own auth_basic tests, and crypt(3)'s formats.
    #[test]
    fn hashes_are_checked_as_nginx_checks_them() {
        use Verdict::*;
        let cases: [(&[u8], &[u8], Verdict); 25] = [
            (b"password", b"{PLAIN}password", Match),
            (b"passwor", b"{PLAIN}password", Mismatch),
            (b"password", b"{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0", Match),
            (b"123", b"{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0", Mismatch),
            (b"1", b"{SSHA}_____wQadOA1e+/f+T+H3eCQQhRzYWx0", Mismatch),
            (b"1", b"{SSHA}Zm9vCg==", Mismatch),
            (b"password", b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", Match),
            (b"123", b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", Mismatch),
            (b"1", b"{SHA}_____Mm5Pz8GgiULbPgzG37mj9g=", Mismatch),
            (b"password", b"$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.", Match),
            (b"123", b"$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.", Mismatch),
            (b"1", b"$apr1$", Mismatch),
            // Perl's crypt('password', 'salt') and crypt('password', '$1$salt$').
            (b"password", b"sa3tHJ3/KuYvI", Match),
            (b"123", b"sa3tHJ3/KuYvI", Mismatch),
            (b"password", b"$1$salt$qJH7.N4xYta3aEG/dfqo/0", Match),
            (b"1", b"$1$", Mismatch),
            // `openssl passwd -5 -salt salt password`, `-6`, `htpasswd -bnBC 5`.
            (
                b"password",
                b"$5$salt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1",
                Match,
            ),
            (
                b"password",
                b"$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.",
                Match,
            ),
            (
                b"password",
                b"$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe",
                Match,
            ),
            (
                b"wrong",
                b"$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe",
                Mismatch,
            ),
            // yescrypt, as libxcrypt makes it (Debian's mkpasswd default).
            (
                b"password",
                b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$tnSYvahCwPBHKZUspmcxMfb0.WiB9W.zEaKlOBL35rC",
                Match,
            ),
            (
                b"wrong",
                b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$tnSYvahCwPBHKZUspmcxMfb0.WiB9W.zEaKlOBL35rC",
                Mismatch,
            ),
            (b"password", b"$y$j9T$salt$hash", Mismatch),
            (b"password", b"$gy$j9T$salt$hash", Unsupported),
            // The password ends at a NUL, as the C string nginx hands on.
            (b"password\0junk", b"{PLAIN}password", Match),
        ];
        for (password, stored, want) in cases {
            assert_eq!(
                verify(password, stored),
                want,
                "{:?} against {:?}",
                String::from_utf8_lossy(password),
                String::from_utf8_lossy(stored)
            );
        }
    }

    #[test]
    fn garbage_never_matches_and_never_panics() {
        let stored: [&[u8]; 9] = [
            b"",
            b"$",
            b"$2y$",
            b"$2y$99$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe",
            b"$2y$05$!!",
            b"$5$rounds=1$",
            b"$6$rounds=99999999999999999999999$x$",
            b"{SSHA}",
            b"\xff\xfe",
        ];
        for s in stored {
            assert_ne!(verify(b"password", s), Verdict::Match);
            assert_ne!(verify(b"", s), Verdict::Match);
        }
    }
}
