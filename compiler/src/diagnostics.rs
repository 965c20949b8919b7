//! Diagnostics: every problem protonc finds, with a code, a span and an optional fix hint.
//! Rendered rustc-style by codespan-reporting, or as JSON lines for tools.

use crate::source::{SourceMap, Span};
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::term::{self, termcolor};
use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes; the docs list each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The file could not be tokenised or has unbalanced braces.
    Syntax,
    /// No such directive in nginx or Proton.
    UnknownDirective,
    /// An nginx directive Proton does not implement yet.
    Unsupported,
    /// A directive outside the contexts where it is allowed.
    WrongContext,
    /// Too few or too many arguments, or a block where none belongs.
    Arity,
    /// An argument of the wrong kind (size, time, number, flag…).
    BadValue,
    /// A directive that may appear once per block appears again.
    Duplicate,
    /// `include` failed: missing file, cycle, unreadable.
    Include,
    /// A reference to an upstream, named location or log format that does not exist.
    UnknownName,
    /// `$name` is not a known variable.
    UnknownVariable,
    /// A regular expression does not compile.
    BadRegex,
    /// A conflict between servers or listeners.
    Conflict,
    /// A JSON or YAML document that is not of the expected shape.
    Document,
    /// Warning: a named location nothing refers to.
    UnusedNamedLocation,
    /// Warning: two servers claim the same name on the same address.
    ConflictingServerName,
    /// Warning: a location that can never be selected.
    UnreachableLocation,
    /// Warning: add_header here hides add_header lines inherited from outer levels.
    AddHeaderDropsInherited,
    /// Warning: accepted, but nginx warns about it too (an absolute index that is not the
    /// last, a duplicate MIME extension).
    NginxWarning,
    /// Warning: a prefix location without a trailing slash whose alias ends in one
    /// (nginx's off-by-slash path traversal).
    AliasTraversal,
    /// Warning: an `if` in a location with `try_files`: when the condition holds, the
    /// request takes the block's configuration, which has no `try_files` (nginx's "if is
    /// evil").
    IfDropsTryFiles,
    /// Warning: a redirect `return` without a URL (nginx sends an empty `Location`).
    RedirectWithoutUrl,
    /// Warning: `load_module`: Proton has no dynamic modules.
    NoDynamicModules,
    /// Warning: `ssl_stapling on`, but a certificate's issuer or OCSP responder cannot be
    /// found, so nothing is stapled for it (nginx's `"ssl_stapling" ignored` warning).
    StaplingIgnored,
    /// Warning: `ssl on`, nginx's deprecated form of `listen … ssl`.
    SslDirectiveDeprecated,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::UnknownDirective => "E0002",
            Code::Unsupported => "E0003",
            Code::WrongContext => "E0004",
            Code::Arity => "E0005",
            Code::BadValue => "E0006",
            Code::Duplicate => "E0007",
            Code::Include => "E0008",
            Code::UnknownName => "E0009",
            Code::UnknownVariable => "E0010",
            Code::BadRegex => "E0011",
            Code::Conflict => "E0012",
            Code::Document => "E0013",
            Code::UnusedNamedLocation => "W0001",
            Code::ConflictingServerName => "W0002",
            Code::UnreachableLocation => "W0003",
            Code::AddHeaderDropsInherited => "W0004",
            Code::NginxWarning => "W0005",
            Code::AliasTraversal => "W0006",
            Code::IfDropsTryFiles => "W0007",
            Code::RedirectWithoutUrl => "W0008",
            Code::NoDynamicModules => "W0009",
            Code::StaplingIgnored => "W0010",
            Code::SslDirectiveDeprecated => "W0011",
        }
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            help: None,
        }
    }
    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }
}

/// Collects diagnostics of a whole run.
#[derive(Default)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
    /// (code, span, message) of every diagnostic pushed, to drop repeats in O(1).
    seen: std::collections::HashSet<(Code, Span, String)>,
}

impl Diagnostics {
    /// Records a diagnostic; an identical one (same code, place and message), which
    /// inherited settings can produce once per location, is kept once.
    pub fn push(&mut self, d: Diagnostic) {
        if self.seen.insert((d.code, d.span, d.message.clone())) {
            self.list.push(d);
        }
    }

    /// Orders diagnostics by file and position (stable for equal positions).
    pub fn sort(&mut self) {
        self.list.sort_by_key(|d| (d.span.file, d.span.start));
    }
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    pub fn warning_count(&self) -> usize {
        self.list.len() - self.error_count()
    }
}

/// How to print diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    Human,
    /// Plain text without colour (tests, snapshots).
    Plain,
    /// One line per diagnostic: `file:line:col: severity[code]: message (help: …)`.
    Short,
    /// One JSON object per line.
    Json,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: &'static str,
    message: &'a str,
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    label: &'a str,
    help: Option<&'a str>,
    related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    file: String,
    line: usize,
    column: usize,
    label: &'a str,
}

fn to_codespan(map: &SourceMap, d: &Diagnostic) -> CsDiagnostic<crate::source::FileId> {
    let sev = match d.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let mut labels = vec![Label::primary(d.span.file, d.span.range()).with_message(&d.label)];
    for (s, l) in &d.secondary {
        labels.push(Label::secondary(s.file, s.range()).with_message(l));
    }
    for inc in map.include_chain(d.span.file) {
        labels.push(Label::secondary(inc.file, inc.range()).with_message("included from here"));
    }
    let mut cs = CsDiagnostic::new(sev)
        .with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels);
    if let Some(h) = &d.help {
        cs = cs.with_notes(vec![format!("help: {h}")]);
    }
    cs
}

/// Renders diagnostics to a string.
pub fn render(map: &SourceMap, diags: &Diagnostics, format: MessageFormat) -> String {
    match format {
        MessageFormat::Json => {
            let mut out = String::new();
            for d in &diags.list {
                let (line, column) = map.line_col(d.span);
                let end = Span {
                    start: d.span.end,
                    ..d.span
                };
                let (end_line, end_column) = map.line_col(end);
                let j = JsonDiagnostic {
                    severity: d.severity,
                    code: d.code.as_str(),
                    message: &d.message,
                    file: file_name(map, d.span),
                    line,
                    column,
                    end_line,
                    end_column,
                    label: &d.label,
                    help: d.help.as_deref(),
                    related: d
                        .secondary
                        .iter()
                        .map(|(s, l)| {
                            let (line, column) = map.line_col(*s);
                            JsonRelated {
                                file: file_name(map, *s),
                                line,
                                column,
                                label: l,
                            }
                        })
                        .collect(),
                };
                out.push_str(&serde_json::to_string(&j).unwrap_or_default());
                out.push('\n');
            }
            out
        }
        MessageFormat::Short => {
            let mut out = String::new();
            for d in &diags.list {
                let (line, col) = map.line_col(d.span);
                let sev = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                out.push_str(&format!(
                    "{}:{line}:{col}: {sev}[{}]: {}",
                    file_name(map, d.span),
                    d.code.as_str(),
                    d.message
                ));
                if let Some(h) = &d.help {
                    out.push_str(&format!(" (help: {h})"));
                }
                out.push('\n');
            }
            out
        }
        MessageFormat::Human | MessageFormat::Plain => {
            let mut buf = if format == MessageFormat::Human {
                termcolor::Buffer::ansi()
            } else {
                termcolor::Buffer::no_color()
            };
            let config = term::Config::default();
            for d in &diags.list {
                let _ = term::emit(&mut buf, &config, map, &to_codespan(map, d));
            }
            String::from_utf8_lossy(buf.as_slice()).into_owned()
        }
    }
}

fn file_name(map: &SourceMap, s: Span) -> String {
    map.path(s.file)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The closest candidate to `name`, for "did you mean" hints.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.85 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}
