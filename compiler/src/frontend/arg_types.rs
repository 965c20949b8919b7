//! Which arguments of a directive a JSON/YAML number may stand for, read from the `syntax`
//! column of [`crate::directives::TABLE`] (`URL`, `path [level1 [level2]]`, `code [text] | URL`…).
//!
//! A document may write an argument as a number where nginx's syntax puts a count, a code, a
//! size, a time, a port or free text there (`"keepalive_timeout": 65`, `"return": [301, "/x"]`);
//! where it puts a URL, a path, a name, an address or a keyword, only a string is an argument
//! (`"proxy_pass": 5` is a mistake, not the URL `5`). The schema, the readers and the writers
//! all ask this module, so the three agree, and a new table row needs no change here unless
//! its syntax names a new placeholder a number may fill.
//!
//! Only `Text` and `Custom` rows are read this way: the other kinds have a value shape of
//! their own (`on | off`, a size, a time, a keyword list).

use crate::directives::{Kind, Spec};

/// Placeholders of the syntax column that a bare number may fill.
const NUMERIC: &[&str] = &[
    "number",
    "n",
    "N",
    "code",
    "size",
    "time",
    "timeout",
    "header_timeout",
    "rate",
    "level1",
    "level2",
    "level3",
    "port",
    "value",
    "text",
    "string",
    "replacement",
];

/// Positions tracked one by one; later ones share one answer.
const TRACKED: usize = 16;

/// Whether a number may stand for each argument of a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Numbers {
    /// Bit `i`: argument `i` may be a number.
    mask: u16,
    /// Arguments after the tracked ones.
    rest: bool,
}

impl Numbers {
    /// Numbers anywhere (unknown directives, and kinds with a value shape of their own).
    pub(crate) const ANY: Numbers = Numbers {
        mask: u16::MAX,
        rest: true,
    };

    /// What `spec`'s syntax says.
    pub(crate) fn of(spec: &Spec) -> Numbers {
        if !matches!(spec.kind, Kind::Text | Kind::Custom) {
            return Numbers::ANY;
        }
        let (positions, rest) = words_by_position(spec.syntax);
        let mut mask = 0u16;
        for (i, words) in positions.iter().enumerate() {
            if numeric_or_unknown(words) {
                mask |= 1 << i;
            }
        }
        Numbers {
            mask,
            rest: numeric_or_unknown(&rest),
        }
    }

    /// Whether argument `i` may be a number.
    pub(crate) fn at(self, i: usize) -> bool {
        if i < TRACKED {
            self.mask & (1 << i) != 0
        } else {
            self.rest
        }
    }

    /// The answer for every argument after the tracked ones.
    pub(crate) fn rest(self) -> bool {
        self.rest
    }

    /// How many positions are tracked one by one.
    pub(crate) const fn tracked() -> usize {
        TRACKED
    }
}

/// Whether a number may fill a place where one of `words` stands. A place no syntax word
/// reaches (more arguments than the syntax has) is left to the arity check: any value.
fn numeric_or_unknown(words: &[&str]) -> bool {
    words.is_empty() || words.iter().any(|w| numeric(w))
}

/// `size`, `port`, `text`…: yes; `URL`, `address[:port]`, `max=N`, `$variable`, `off`: no.
fn numeric(word: &str) -> bool {
    let base = word.split('[').next().unwrap_or(word);
    if base.contains(['=', ':']) || base.starts_with(['$', '@', '~', '!']) {
        return false;
    }
    NUMERIC.contains(&base)
}

/// How a place of argument `i` of `spec` is named in its syntax (`URL`, `path or uri`), for
/// messages; empty when the syntax says nothing about it.
pub(crate) fn placeholder(spec: &Spec, i: usize) -> String {
    let (positions, rest) = words_by_position(spec.syntax);
    let words = positions.get(i).unwrap_or(&rest);
    let mut names: Vec<&str> = Vec::new();
    for w in words {
        if !names.contains(w) {
            names.push(w);
        }
    }
    match names.len() {
        0..=3 => names.join(" or "),
        _ => format!("{}, …", names[..3].join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// The syntax column as a pattern

/// A syntax string read as a pattern over argument words.
#[derive(Debug)]
enum Pattern<'a> {
    Word(&'a str),
    Seq(Vec<Pattern<'a>>),
    Alt(Vec<Pattern<'a>>),
    /// `[ … ]`
    Optional(Box<Pattern<'a>>),
    /// `x …`: one or more.
    Many(Box<Pattern<'a>>),
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.at..).and_then(|t| t.chars().next())
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.at += c.len_utf8();
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or("")
    }

    /// `a | b c | d`
    fn alternatives(&mut self) -> Pattern<'a> {
        let mut alts = vec![self.sequence()];
        while self.peek() == Some('|') {
            self.bump();
            alts.push(self.sequence());
        }
        if alts.len() == 1 {
            alts.remove(0)
        } else {
            Pattern::Alt(alts)
        }
    }

    fn sequence(&mut self) -> Pattern<'a> {
        let mut items = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            match self.peek() {
                None | Some(']' | '|') => break,
                Some('[') => {
                    self.bump();
                    let inner = self.alternatives();
                    if self.peek() == Some(']') {
                        self.bump();
                    }
                    items.push(Pattern::Optional(Box::new(inner)));
                }
                Some('…') => {
                    self.bump();
                    if let Some(last) = items.pop() {
                        items.push(Pattern::Many(Box::new(last)));
                    }
                }
                Some('.') if self.rest().starts_with("...") => {
                    self.at += 3;
                    if let Some(last) = items.pop() {
                        items.push(Pattern::Many(Box::new(last)));
                    }
                }
                Some(_) => items.push(Pattern::Word(self.word())),
            }
        }
        Pattern::Seq(items)
    }

    /// One argument word; brackets inside it (`address[:port]`, `=[response]`) belong to it.
    fn word(&mut self) -> &'a str {
        let start = self.at;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                '[' => depth += 1,
                ']' if depth > 0 => depth -= 1,
                ']' | '|' | '…' if depth == 0 => break,
                c if c.is_whitespace() && depth == 0 => break,
                _ => {}
            }
            self.bump();
        }
        if self.at == start {
            self.bump();
        }
        self.text.get(start..self.at).unwrap_or("")
    }
}

/// A nondeterministic automaton over argument words (Thompson's construction).
#[derive(Default)]
struct Automaton<'a> {
    /// Empty moves of each state.
    empty: Vec<Vec<usize>>,
    /// The word move of each state, if any.
    word: Vec<Option<(&'a str, usize)>>,
}

impl<'a> Automaton<'a> {
    fn state(&mut self) -> usize {
        self.empty.push(Vec::new());
        self.word.push(None);
        self.empty.len() - 1
    }

    fn link(&mut self, from: usize, to: usize) {
        if let Some(e) = self.empty.get_mut(from) {
            e.push(to);
        }
    }

    /// The entry and exit states of `p`.
    fn build(&mut self, p: &Pattern<'a>) -> (usize, usize) {
        let (s, e) = (self.state(), self.state());
        match p {
            Pattern::Word(w) => {
                if let Some(slot) = self.word.get_mut(s) {
                    *slot = Some((w, e));
                }
            }
            Pattern::Seq(items) => {
                let mut cur = s;
                for item in items {
                    let (a, b) = self.build(item);
                    self.link(cur, a);
                    cur = b;
                }
                self.link(cur, e);
            }
            Pattern::Alt(alts) => {
                for alt in alts {
                    let (a, b) = self.build(alt);
                    self.link(s, a);
                    self.link(b, e);
                }
            }
            Pattern::Optional(inner) => {
                let (a, b) = self.build(inner);
                self.link(s, a);
                self.link(s, e);
                self.link(b, e);
            }
            Pattern::Many(inner) => {
                let (a, b) = self.build(inner);
                self.link(s, a);
                self.link(b, a);
                self.link(b, e);
            }
        }
        (s, e)
    }

    /// `set` and every state reachable from it by empty moves.
    fn closure(&self, set: &mut [bool]) {
        let mut stack: Vec<usize> = (0..set.len()).filter(|&i| set[i]).collect();
        while let Some(s) = stack.pop() {
            for &t in self.empty.get(s).into_iter().flatten() {
                if !set[t] {
                    set[t] = true;
                    stack.push(t);
                }
            }
        }
    }

    /// The words that can be read from `set`, and the states after them.
    fn step(&self, set: &[bool]) -> (Vec<&'a str>, Vec<bool>) {
        let mut words = Vec::new();
        let mut next = vec![false; set.len()];
        for (s, on) in set.iter().enumerate() {
            if let (true, Some(Some((w, to)))) = (*on, self.word.get(s)) {
                words.push(*w);
                next[*to] = true;
            }
        }
        self.closure(&mut next);
        (words, next)
    }
}

/// The syntax words that may stand at each of the first [`TRACKED`] argument places, and
/// those that may stand at any later place.
fn words_by_position(syntax: &str) -> (Vec<Vec<&str>>, Vec<&str>) {
    let mut parser = Parser {
        text: syntax,
        at: 0,
    };
    let pattern = parser.alternatives();
    let mut nfa = Automaton::default();
    let (start, _) = nfa.build(&pattern);
    let mut set = vec![false; nfa.empty.len()];
    set[start] = true;
    nfa.closure(&mut set);
    let mut positions = Vec::with_capacity(TRACKED);
    for _ in 0..TRACKED {
        let (words, next) = nfa.step(&set);
        positions.push(words);
        set = next;
    }
    // Later places: until the set of states repeats (it is finite) or empties.
    let mut rest = Vec::new();
    let mut seen: Vec<Vec<bool>> = Vec::new();
    while set.iter().any(|&on| on) && !seen.contains(&set) && seen.len() < 64 {
        let (words, next) = nfa.step(&set);
        rest.extend(words);
        seen.push(std::mem::replace(&mut set, next));
    }
    (positions, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directives::{Arity, TABLE};

    fn numbers(name: &str) -> Numbers {
        let spec = TABLE.iter().find(|s| s.name == name).expect("a table row");
        Numbers::of(spec)
    }

    #[test]
    fn urls_paths_names_and_addresses_are_strings() {
        for name in [
            "proxy_pass",
            "root",
            "alias",
            "server_name",
            "index",
            "pid",
            "allow",
            "ssl_certificate",
            "default_type",
            "try_files",
            "server",
        ] {
            let spec = TABLE.iter().find(|s| s.name == name).expect("a table row");
            let n = Numbers::of(spec);
            let places = match spec.arity {
                Arity::Exactly(m) | Arity::Range(_, m) => m as usize,
                Arity::AtLeast(_) => TRACKED + 1,
            };
            for i in 0..places {
                assert!(!n.at(i), "{name} {i}: {n:?}");
            }
        }
    }

    #[test]
    fn counts_codes_sizes_times_and_text_may_be_numbers() {
        assert!(numbers("keepalive_timeout").at(0));
        assert!(numbers("keepalive_timeout").at(1));
        assert!(numbers("worker_processes").at(0));
        assert!(numbers("listen").at(0), "a port");
        assert!(!numbers("listen").at(1), "listen options are words");
        let ret = numbers("return");
        assert!(ret.at(0) && ret.at(1));
        let set = numbers("set");
        assert!(!set.at(0) && set.at(1), "set $variable value");
        let header = numbers("add_header");
        assert!(!header.at(0) && header.at(1) && !header.at(2));
        let zone = numbers("zone");
        assert!(!zone.at(0) && zone.at(1));
        let temp = numbers("proxy_temp_path");
        assert!(!temp.at(0) && temp.at(1) && temp.at(3));
        let page = numbers("error_page");
        assert!(page.at(0) && page.at(5) && page.rest());
        // Kinds with their own shape are not judged here.
        assert_eq!(numbers("client_max_body_size"), Numbers::ANY);
        assert_eq!(numbers("sendfile"), Numbers::ANY);
    }

    #[test]
    fn every_syntax_reads_to_its_end() {
        for s in TABLE {
            let mut p = Parser {
                text: s.syntax,
                at: 0,
            };
            p.alternatives();
            assert_eq!(p.rest(), "", "{}: {:?} stops early", s.name, s.syntax);
        }
    }

    #[test]
    fn placeholders_name_the_place() {
        let spec = TABLE.iter().find(|s| s.name == "proxy_pass");
        assert_eq!(spec.map(|s| placeholder(s, 0)).as_deref(), Some("URL"));
        let spec = TABLE.iter().find(|s| s.name == "post_action");
        assert_eq!(
            spec.map(|s| placeholder(s, 0)).as_deref(),
            Some("uri or @name or off")
        );
    }
}
