//! Source files and spans. Every span is owned (`file id + byte range`), so nothing downstream
//! borrows from a file buffer.

use codespan_reporting::files::{Error as FilesError, Files, SimpleFile};
use std::ops::Range;
use std::path::PathBuf;

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span {
            file,
            start: range.start as u32,
            end: range.end as u32,
        }
    }
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
    /// A span covering both.
    pub fn to(self, other: Span) -> Span {
        if other.file != self.file {
            return self;
        }
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Every file read during one compilation, in the order read.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SimpleFile<String, String>>,
    paths: Vec<PathBuf>,
    /// For an included file, the `include` argument that pulled it in.
    parents: Vec<Option<Span>>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a file's text; `path` is what diagnostics print.
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.add_included(path, text, None)
    }

    /// Registers a file read because of the `include` at `parent`.
    pub fn add_included(&mut self, path: PathBuf, text: String, parent: Option<Span>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files
            .push(SimpleFile::new(path.display().to_string(), text));
        self.paths.push(path);
        self.parents.push(parent);
        id
    }

    /// The chain of `include` arguments that led to `file`, innermost first.
    pub fn include_chain(&self, file: FileId) -> Vec<Span> {
        let mut out = Vec::new();
        let mut at = file;
        while let Some(Some(p)) = self.parents.get(at.0 as usize) {
            if out.len() > 64 {
                break;
            }
            out.push(*p);
            at = p.file;
        }
        out
    }

    pub fn text(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map(|f| f.source().as_str())
            .unwrap_or("")
    }

    pub fn path(&self, id: FileId) -> Option<&PathBuf> {
        self.paths.get(id.0 as usize)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// 1-based line and column (in characters) of a byte offset; a binary search over the
    /// file's line starts.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let text = self.text(span.file);
        let at = floor_char_boundary(text, (span.start as usize).min(text.len()));
        let Ok(line) = Files::line_index(self, span.file, at) else {
            return (1, 1);
        };
        let start = Files::line_range(self, span.file, line).map_or(0, |r| r.start);
        let col = text.get(start..at).map_or(0, |l| l.chars().count()) + 1;
        (line + 1, col)
    }

    /// 1-based line of a byte offset: a binary search over the file's line starts, without
    /// counting the characters of the line (which [`SourceMap::line_col`] does, and which is
    /// quadratic over many spans on one long line).
    pub fn line(&self, span: Span) -> usize {
        let text = self.text(span.file);
        let at = (span.start as usize).min(text.len());
        Files::line_index(self, span.file, at).map_or(1, |l| l + 1)
    }

    /// `file:line` of a span, for IR source references.
    pub fn describe(&self, span: Span) -> String {
        let line = self.line(span);
        let name = self
            .path(span.file)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{name}:{line}")
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = String;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<String, FilesError> {
        self.files
            .get(id.0 as usize)
            .map(|f| f.name().clone())
            .ok_or(FilesError::FileMissing)
    }
    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.files
            .get(id.0 as usize)
            .map(|f| f.source().as_str())
            .ok_or(FilesError::FileMissing)
    }
    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        self.files
            .get(id.0 as usize)
            .ok_or(FilesError::FileMissing)?
            .line_index((), byte_index)
    }
    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        self.files
            .get(id.0 as usize)
            .ok_or(FilesError::FileMissing)?
            .line_range((), line_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_without_counting_characters() {
        let mut m = SourceMap::new();
        let f = m.add(PathBuf::from("a"), "é a\nb c\n\nd".to_string());
        let at = |i: usize| Span::new(f, i..i);
        assert_eq!(m.line(at(0)), 1);
        assert_eq!(m.line(at(3)), 1);
        assert_eq!(m.line(at(5)), 2);
        assert_eq!(m.line(at(9)), 3);
        assert_eq!(m.line(at(10)), 4);
        assert_eq!(m.line(at(99)), 4);
        assert_eq!(m.line_col(at(5)), (2, 1));
        assert_eq!(m.describe(at(10)), "a:4");
    }
}
