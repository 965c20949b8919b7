//! The canonical layout of one NGINX-style file, comments kept: what `protonc fmt` prints.
//!
//! The file is read as it is (an `include` stays a directive; nothing is expanded), and
//! written back with the same directives and argument values in the same order, so it
//! compiles to the same IR:
//!
//! * 4 spaces per block level, one directive per line, `}` on a line of its own; an empty
//!   block without comments is `name {}`;
//! * an argument that was on a later line than the one before it stays on a line of its
//!   own, aligned under the first argument (nginx's own style for long `log_format`s);
//! * arguments are quoted only where they must be (with `'…'` when the value holds `"` and
//!   no `'`, else `"…"`); an argument that starts a continuation line keeps its quotes, so it
//!   cannot be taken for a directive whose `;` is missing;
//! * one blank line before and after a block directive (except first and last in a block),
//!   and one where the file had one or more; comments directly above a directive stay
//!   attached to it;
//! * the entries of a `map` or `types` block line up their values in one column, paragraph
//!   by paragraph;
//! * a comment keeps its place: at the end of the line of the directive (or `{`, or
//!   argument) it followed, or on a line of its own at the level of what is around it; its
//!   text is kept, trailing spaces dropped. A comment written between the last argument and
//!   the `;` or `{` moves after it.
//!
//! Formatting its own output changes nothing (a test checks it on every config of the
//! repository).

use super::conf::{quote, quote_with};
use crate::ast::{Arg, Directive, Quote};
use crate::diagnostics::Diagnostics;
use crate::source::FileId;
use crate::syntax;
use std::ops::Range;

/// Indentation of one block level.
const INDENT: &str = "    ";

/// The canonical text of `text` (the file `file`), or `None` when it does not parse: the
/// syntax errors are in `diags`, as `protonc check` reports them.
pub fn format_conf(file: FileId, text: &str, diags: &mut Diagnostics) -> Option<String> {
    let Ok((tree, comments)) = syntax::reader::parse_with_comments(file, text) else {
        // The same reading again, with error recovery, for the diagnostics.
        syntax::parse_text(file, text, diags);
        return None;
    };
    // A directive that swallowed the next line (its `;` missing) reads, but is an error.
    let mut found = Diagnostics::default();
    let tree = syntax::split_missing_semicolons(tree, text, &mut found);
    let failed = found.has_errors();
    diags.list.append(&mut found.list);
    if failed {
        return None;
    }
    let mut lines = vec![0];
    lines.extend(
        text.bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i + 1),
    );
    let mut w = Writer {
        text,
        comments,
        lines,
        out: String::with_capacity(text.len() + text.len() / 8),
    };
    w.block(&tree, 0, None, (0, text.len()), false);
    Some(w.out)
}

struct Writer<'a> {
    text: &'a str,
    /// Every comment, in file order.
    comments: Vec<Range<usize>>,
    /// The byte offset of each line's start.
    lines: Vec<usize>,
    out: String,
}

/// A thing on a line of its own in a block.
enum Item<'t> {
    Directive(&'t Directive),
    Comment(Range<usize>),
}

/// An item, and the comment at the end of its line (a directive's only).
struct Entry<'t> {
    item: Item<'t>,
    trailing: Option<Range<usize>>,
}

impl Entry<'_> {
    fn start(&self) -> usize {
        match &self.item {
            Item::Directive(d) => d.span.start as usize,
            Item::Comment(r) => r.start,
        }
    }

    /// Where the entry ends, its trailing comment included.
    fn end(&self) -> usize {
        match (&self.trailing, &self.item) {
            (Some(t), _) => t.end,
            (None, Item::Directive(d)) => d.span.end as usize,
            (None, Item::Comment(r)) => r.end,
        }
    }

    fn is_block(&self) -> bool {
        matches!(&self.item, Item::Directive(d) if d.block.is_some())
    }
}

impl<'a> Writer<'a> {
    /// The line (from 0) of byte `pos`.
    fn line(&self, pos: usize) -> usize {
        self.lines.partition_point(|&s| s <= pos).saturating_sub(1)
    }

    /// Whether the thing ending at `end` (exclusive) and the one starting at `start` share a line.
    fn same_line(&self, end: usize, start: usize) -> bool {
        self.line(end.saturating_sub(1)) == self.line(start)
    }

    /// Whether the text between two things holds an empty line.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        self.text
            .get(from.min(to)..to)
            .is_some_and(|gap| gap.bytes().filter(|&b| b == b'\n').count() >= 2)
    }

    fn comment_text(&self, r: &Range<usize>) -> &'a str {
        self.text.get(r.clone()).unwrap_or("#").trim_end()
    }

    /// The comments that start in `from..to`.
    fn comments_in(&self, from: usize, to: usize) -> Vec<Range<usize>> {
        let first = self.comments.partition_point(|c| c.start < from);
        self.comments
            .get(first..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.start < to)
            .cloned()
            .collect()
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
    }

    fn push_comment(&mut self, c: &Range<usize>) {
        let t = self.comment_text(c);
        self.out.push_str(t);
    }

    /// The `{` of a block whose last argument (or name) ends at `from`.
    fn open_brace(&self, from: usize) -> usize {
        let b = self.text.as_bytes();
        let mut i = from;
        while let Some(&c) = b.get(i) {
            match c {
                b'{' => return i,
                b'#' => {
                    while b.get(i).is_some_and(|&c| c != b'\n') {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        from
    }

    /// One block's lines. `open`: the end of its `{` (`None` for the file itself, which has
    /// no braces); its comments are those in `start..close` (`close`: its `}`).
    fn block(
        &mut self,
        tree: &[Directive],
        depth: usize,
        open: Option<usize>,
        (start, close): (usize, usize),
        aligned: bool,
    ) {
        let mut entries: Vec<Entry<'_>> = Vec::new();
        // A comment at the end of the `{` line.
        let mut head: Option<Range<usize>> = None;
        let mut last_end = open;
        let mut cursor = start;
        let place = |w: &Self,
                     c: Range<usize>,
                     entries: &mut Vec<Entry<'_>>,
                     head: &mut Option<Range<usize>>,
                     last_end: Option<usize>| {
            let same = last_end.is_some_and(|e| w.same_line(e, c.start));
            match entries.last_mut() {
                Some(e) if same && e.trailing.is_none() && matches!(e.item, Item::Directive(_)) => {
                    e.trailing = Some(c)
                }
                None if same && head.is_none() => *head = Some(c),
                _ => entries.push(Entry {
                    item: Item::Comment(c),
                    trailing: None,
                }),
            }
        };
        for d in tree {
            for c in self.comments_in(cursor, d.span.start as usize) {
                place(self, c, &mut entries, &mut head, last_end);
                last_end = None;
            }
            entries.push(Entry {
                item: Item::Directive(d),
                trailing: None,
            });
            last_end = Some(d.span.end as usize);
            // Comments between a simple directive's last argument and its `;` come after it.
            cursor = match &d.block {
                Some(_) => d.span.end as usize,
                None => args_end(d),
            };
        }
        for c in self.comments_in(cursor, close) {
            place(self, c, &mut entries, &mut head, last_end);
            last_end = None;
        }

        let blank: Vec<bool> = (0..entries.len())
            .map(|i| i > 0 && self.blank_before(&entries, i))
            .collect();
        // The entries of `map` and `types` line up their values in a column, paragraph by
        // paragraph (a blank line or a comment line ends one).
        let mut widths = vec![0; entries.len()];
        if aligned {
            let mut i = 0;
            while i < entries.len() {
                let mut j = i;
                while j < entries.len()
                    && matches!(&entries[j].item, Item::Directive(d) if d.block.is_none())
                    && (j == i || !blank[j])
                {
                    j += 1;
                }
                let width = entries[i..j]
                    .iter()
                    .filter_map(|e| match &e.item {
                        Item::Directive(d) => Some(quote(&d.name, false).chars().count()),
                        Item::Comment(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                widths[i..j].iter_mut().for_each(|w| *w = width);
                i = j.max(i + 1);
            }
        }
        if open.is_some() {
            if entries.is_empty() && head.is_none() {
                self.out.push_str(" {}");
                return;
            }
            self.out.push_str(" {");
            if let Some(c) = &head {
                self.out.push(' ');
                self.push_comment(c);
            }
            self.out.push('\n');
        }
        for i in 0..entries.len() {
            if blank[i] {
                self.out.push('\n');
            }
            match &entries[i].item {
                Item::Comment(c) => {
                    self.indent(depth);
                    self.push_comment(c);
                }
                Item::Directive(d) => self.directive(d, depth, widths[i]),
            }
            if let Some(t) = &entries[i].trailing {
                self.out.push(' ');
                self.push_comment(t);
            }
            self.out.push('\n');
        }
        if open.is_some() {
            self.indent(depth.saturating_sub(1));
            self.out.push('}');
        }
    }

    /// Whether a blank line goes before entry `i` (not the first).
    fn blank_before(&self, entries: &[Entry<'_>], i: usize) -> bool {
        let (prev, cur) = (&entries[i - 1], &entries[i]);
        let source = self.blank_between(prev.end(), cur.start());
        if matches!(prev.item, Item::Comment(_)) && !source {
            return false; // comments directly above stay with what follows them
        }
        source || prev.is_block() || self.anchor(entries, i).is_some_and(Entry::is_block)
    }

    /// The directive entry `i` belongs to: itself, or for a comment, the directive that the
    /// comment run it starts leads to without an empty line.
    fn anchor<'e, 't>(&self, entries: &'e [Entry<'t>], i: usize) -> Option<&'e Entry<'t>> {
        let mut j = i;
        loop {
            let e = entries.get(j)?;
            if matches!(e.item, Item::Directive(_)) {
                return Some(e);
            }
            let next = entries.get(j + 1)?;
            if self.blank_between(e.end(), next.start()) {
                return None;
            }
            j += 1;
        }
    }

    /// One directive, from its indentation to its `;` or `}`; its name padded to
    /// `name_width` characters.
    fn directive(&mut self, d: &Directive, depth: usize, name_width: usize) {
        self.indent(depth);
        let mut name = quote(&d.name, false);
        if d.block.is_none() && !d.args.is_empty() {
            let pad = name_width.saturating_sub(name.chars().count());
            name.push_str(&" ".repeat(pad));
        }
        // Continuation lines line up under the first argument.
        let column = depth * INDENT.len() + name.chars().count() + 1;
        self.out.push_str(&name);
        let mut prev_end = d.name_span.end as usize;
        for a in &d.args {
            let start = a.span.start as usize;
            let inside = self.comments_in(prev_end, start);
            let broken =
                !inside.is_empty() || self.line(start) > self.line(prev_end.saturating_sub(1));
            for (k, c) in inside.iter().enumerate() {
                if k == 0 && self.same_line(prev_end, c.start) {
                    self.out.push(' ');
                } else {
                    self.out.push('\n');
                    self.out.push_str(&" ".repeat(column));
                }
                self.push_comment(c);
            }
            if broken {
                self.out.push('\n');
                self.out.push_str(&" ".repeat(column));
            } else {
                self.out.push(' ');
            }
            self.out.push_str(&argument(a, broken));
            prev_end = a.span.end as usize;
        }
        match &d.block {
            None => self.out.push(';'),
            Some(children) => {
                let open = self.open_brace(prev_end);
                let close = (d.span.end as usize).saturating_sub(1);
                let aligned = matches!(d.name.as_str(), "map" | "types");
                self.block(
                    children,
                    depth + 1,
                    Some(open + 1),
                    (prev_end, close),
                    aligned,
                );
            }
        }
    }
}

/// Where a directive's last argument (or its name) ends.
fn args_end(d: &Directive) -> usize {
    d.args.last().map_or(d.name_span.end, |a| a.span.end) as usize
}

/// An argument as written: bare unless it must be quoted, in `'…'` when it holds `"` and
/// no `'`. One that starts a continuation line keeps the quotes it had, so that a value
/// such as `"deny"` is not read as the next directive of a line whose `;` is missing.
fn argument(a: &Arg, starts_line: bool) -> String {
    let force = starts_line && a.quote != Quote::Bare;
    let q = if force && a.quote == Quote::Single || a.value.contains('"') && !a.value.contains('\'')
    {
        '\''
    } else {
        '"'
    };
    quote_with(&a.value, force, q)
}
