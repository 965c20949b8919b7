//! nginx's `sub_filter` on byte slices: text replaced in a body that arrives in pieces.
//!
//! As nginx's sub module: the match strings are compared without regard to ASCII case; the
//! body is scanned left to right, and at each place the first match string (in config
//! order) that matches there is replaced, the scan going on after it (matches never
//! overlap); with `once`, each match string is replaced at most once, and once all have
//! been the rest passes untouched. A match string that could still match when a piece
//! ends (its first bytes are the piece's last ones) holds those bytes back until the next
//! piece (or the end) decides; everything before goes out at once.
//!
//! The patterns of a response are set once ([`Substitution::add`]) and the state is kept
//! and reset between responses, so a response allocates nothing once the buffers grew.

use std::ops::Range;

/// Most `sub_filter` lines a location may have (nginx's limit).
pub const MAX_PATTERNS: usize = 255;

/// A body substitution in progress.
#[derive(Debug, Default)]
pub struct Substitution {
    /// Match strings (lowercase) and replacements, back to back.
    text: Vec<u8>,
    /// (match, replacement) ranges into `text`, in config order.
    pats: Vec<(Range<usize>, Range<usize>)>,
    /// With `once`: the patterns replaced already.
    used: Vec<bool>,
    once: bool,
    /// Patterns still in play.
    live: usize,
    /// Bytes (lowercase) that can start a live pattern.
    first: Vec<bool>,
    /// The end of the body seen so far that may begin a match (less than the longest
    /// pattern), and the scratch the next piece is put behind it in.
    held: Vec<u8>,
}

/// What the patterns say about a place in the body.
enum At {
    /// Pattern `k` matches here.
    Match(usize),
    /// A pattern may match here once more bytes come.
    More,
    None,
}

impl Substitution {
    /// Forgets the last response's patterns and state (the buffers stay).
    pub fn reset(&mut self, once: bool) {
        self.text.clear();
        self.pats.clear();
        self.used.clear();
        self.held.clear();
        self.once = once;
        self.live = 0;
        self.first.clear();
        self.first.resize(256, false);
    }

    /// Adds `pattern` (compared without regard to case; an empty one is skipped, as nginx
    /// skips a match string whose variables came out empty) and its replacement. False
    /// when there are [`MAX_PATTERNS`] already.
    pub fn add(&mut self, pattern: &[u8], replacement: &[u8]) -> bool {
        if pattern.is_empty() {
            return true;
        }
        if self.pats.len() >= MAX_PATTERNS {
            return false;
        }
        if self.first.len() < 256 {
            self.first.resize(256, false);
        }
        let at = self.text.len();
        self.text.extend(pattern.iter().map(u8::to_ascii_lowercase));
        let mid = self.text.len();
        self.text.extend_from_slice(replacement);
        self.pats.push((at..mid, mid..self.text.len()));
        self.used.push(false);
        self.live += 1;
        self.first[usize::from(pattern[0].to_ascii_lowercase())] = true;
        true
    }

    /// Whether any pattern is set.
    pub fn is_active(&self) -> bool {
        !self.pats.is_empty()
    }

    /// Substitutes in `input`, appending what is decided to `out` (a possible match at the
    /// end is held back).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.held.is_empty() {
            let kept = self.scan(input, false, out);
            self.held.extend_from_slice(&input[kept..]);
        } else {
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(input);
            let kept = self.scan(&buf, false, out);
            buf.drain(..kept);
            self.held = buf;
        }
    }

    /// The end of the body: what was held back, with whatever it matches.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let buf = std::mem::take(&mut self.held);
        let kept = self.scan(&buf, true, out);
        debug_assert_eq!(kept, buf.len());
        self.held = buf;
        self.held.clear();
    }

    /// Scans `buf`, writing the decided part to `out`; returns where the undecided tail
    /// starts (`buf.len()` when all is decided).
    fn scan(&mut self, buf: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        let mut copied = 0;
        while i < buf.len() {
            if self.live == 0 {
                break;
            }
            // Skip to the next byte that can start a live pattern.
            match buf[i..]
                .iter()
                .position(|&b| self.first[usize::from(b.to_ascii_lowercase())])
            {
                Some(skip) => i += skip,
                None => break,
            }
            match self.at(&buf[i..], last) {
                At::Match(k) => {
                    let (m, r) = self.pats[k].clone();
                    out.extend_from_slice(&buf[copied..i]);
                    out.extend_from_slice(&self.text[r]);
                    i += m.len();
                    copied = i;
                    if self.once {
                        self.used[k] = true;
                        self.live -= 1;
                        self.refresh_first();
                    }
                }
                At::More => {
                    out.extend_from_slice(&buf[copied..i]);
                    return i;
                }
                At::None => i += 1,
            }
        }
        out.extend_from_slice(&buf[copied..]);
        buf.len()
    }

    /// The first live pattern (in config order) that matches at the start of `rest`, or
    /// one that might with more bytes (unless this is the `last` of the body).
    fn at(&self, rest: &[u8], last: bool) -> At {
        for (k, (m, _)) in self.pats.iter().enumerate() {
            if self.used[k] {
                continue;
            }
            let pat = &self.text[m.clone()];
            let n = pat.len().min(rest.len());
            let same = rest[..n]
                .iter()
                .zip(&pat[..n])
                .all(|(a, b)| a.to_ascii_lowercase() == *b);
            if !same {
                continue;
            }
            if n == pat.len() {
                return At::Match(k);
            }
            if !last {
                return At::More;
            }
        }
        At::None
    }

    fn refresh_first(&mut self) {
        self.first.iter_mut().for_each(|f| *f = false);
        for (k, (m, _)) in self.pats.iter().enumerate() {
            if !self.used[k] {
                if let Some(&b) = self.text.get(m.start) {
                    self.first[usize::from(b)] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` through `pairs` cut at every pair of split points (and whole): the
    /// result, checked to be the same for every cut.
    fn run(pairs: &[(&str, &str)], once: bool, body: &str) -> String {
        let mut s = Substitution::default();
        let whole = {
            s.reset(once);
            for (p, r) in pairs {
                assert!(s.add(p.as_bytes(), r.as_bytes()));
            }
            let mut out = Vec::new();
            s.feed(body.as_bytes(), &mut out);
            s.finish(&mut out);
            out
        };
        let b = body.as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                s.reset(once);
                for (p, r) in pairs {
                    s.add(p.as_bytes(), r.as_bytes());
                }
                let mut out = Vec::new();
                s.feed(&b[..i], &mut out);
                s.feed(&b[i..j], &mut out);
                s.feed(&b[j..], &mut out);
                s.finish(&mut out);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&whole),
                    "cut at {i} and {j} of {body:?}"
                );
            }
        }
        String::from_utf8_lossy(&whole).into_owned()
    }

    /// nginx-tests' sub_filter.t, on byte slices.
    #[test]
    fn as_nginx_tests_sub_filter() {
        let foo = [("foo", "bar")];
        assert_eq!(run(&foo, true, "foo"), "bar");
        assert_eq!(run(&foo, true, "FOO"), "bar");
        assert_eq!(run(&foo, true, "foofoo"), "barfoo");
        assert_eq!(run(&foo, false, "foofoo"), "barbar");
        assert_eq!(run(&foo, false, "fo"), "fo");
        assert_eq!(run(&foo, false, "foofo"), "barfo");
        let abac = [("abac", "_replaced")];
        assert_eq!(run(&abac, true, "abac"), "_replaced");
        assert_eq!(run(&abac, true, "abaabac"), "aba_replaced");
        assert_eq!(run(&abac, true, "ababac"), "ab_replaced");
        let ababx = [("ababX", "_replaced")];
        assert_eq!(run(&ababx, true, "ababX"), "_replaced");
        assert_eq!(run(&ababx, true, "abababX"), "ab_replaced");
        let aab = [("aab", "_replaced")];
        assert_eq!(run(&aab, true, "aab"), "_replaced");
        assert_eq!(run(&aab, true, "aaab"), "a_replaced");
        assert_eq!(run(&aab, true, "aaaab"), "aa_replaced");
        let a = [("A", "B")];
        assert_eq!(run(&a, true, "A"), "B");
        assert_eq!(run(&a, true, "AA"), "BA");
        assert_eq!(run(&a, true, "CAAC"), "CBAC");
        assert_eq!(run(&a, false, "CAAC"), "CBBC");
        assert_eq!(run(&a, false, "CA"), "CB");
    }

    /// nginx-tests' sub_filter_multi.t, on byte slices.
    #[test]
    fn as_nginx_tests_sub_filter_multi() {
        let multi = [("aab", "+"), ("yyz", "-")];
        assert_eq!(run(&multi, false, "aaabyyyz"), "a+y-");
        assert_eq!(run(&multi, false, "xaabyyzx"), "x+-x");
        assert_eq!(run(&multi, true, "aabaabyyzyyz"), "+aab-yyz");
        let multi2 = [("aabb", "+"), ("aaabb", "-")];
        assert_eq!(run(&multi2, false, "aaabbb"), "-b");
        assert_eq!(run(&multi2, false, "aabbaaabb"), "+-");
        let multi3 = [("aacbb", "+"), ("aadbb", "-")];
        assert_eq!(run(&multi3, false, "aacbbaadbbaacbb"), "+-+");
        let case = [("AAB", "+"), ("YYZ", "-")];
        assert_eq!(run(&case, false, "aAbyYz"), "+-");
        let minimal = [
            ("ab", "+"),
            ("cd", "-"),
            ("ef", "*"),
            ("gh", "!"),
            ("x", "_"),
        ];
        assert_eq!(run(&minimal, false, "abcdefghx"), "+-*!_");
        assert_eq!(run(&minimal, false, "aabbccddeeffgghhxx"), "a+bc-de*fg!h__");
        let utf8 = [("模様", "замена1"), ("паттерн", "replaced")];
        assert_eq!(run(&utf8, false, "模様 паттерн"), "замена1 replaced");
        // Once all are used, the rest passes untouched.
        assert_eq!(run(&[("a", "1"), ("b", "2")], true, "abab"), "12ab");
    }

    #[test]
    fn a_partial_match_holds_only_its_bytes() {
        let mut s = Substitution::default();
        s.reset(false);
        s.add(b"za", b"ZA");
        let mut out = Vec::new();
        s.feed(b"xyz", &mut out);
        assert_eq!(out, b"xy", "the z may begin za");
        out.clear();
        s.reset(false);
        s.add(b"ab", b"AB");
        s.feed(b"xyz", &mut out);
        assert_eq!(out, b"xyz", "nothing held");
        // A limit on the count of patterns, and an empty one skipped.
        s.reset(true);
        assert!(s.add(b"", b"x"));
        assert!(!s.is_active());
        for i in 0..MAX_PATTERNS {
            assert!(s.add(format!("p{i}").as_bytes(), b"x"));
        }
        assert!(!s.add(b"one more", b"x"));
    }
}
