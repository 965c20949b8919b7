//! The condition of `if`, read from its arguments as nginx's rewrite module reads them
//! (`ngx_http_rewrite_if_condition`): the parentheses may stand alone or touch the first and
//! last words; the first operand is a variable, compared with `=`/`!=`, matched with
//! `~`/`~*`/`!~`/`!~*`, or alone (true unless empty or `0`); or a file test `-f`, `-d`, `-e`,
//! `-x` (and `!-f`…) on a path.

use crate::ast::Arg;
use proton_ir::FileTest;

/// One operand: the argument it came from and its text (parentheses taken off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operand<'a> {
    pub arg: usize,
    pub text: &'a str,
}

/// A parsed condition, before its operands become templates and regexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond<'a> {
    Value(Operand<'a>),
    Equals {
        left: Operand<'a>,
        right: Operand<'a>,
        negate: bool,
    },
    Matches {
        left: Operand<'a>,
        regex: Operand<'a>,
        caseless: bool,
        negate: bool,
    },
    File {
        test: FileTest,
        path: Operand<'a>,
        negate: bool,
    },
}

/// Why a condition is refused: the argument to point at and nginx's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CondError {
    pub arg: usize,
    pub message: String,
}

fn invalid(arg: usize, text: &str) -> CondError {
    CondError {
        arg,
        message: format!("invalid condition \"{text}\""),
    }
}

/// Reads the condition of `if` from its arguments.
pub(crate) fn parse(args: &[Arg]) -> Result<Cond<'_>, CondError> {
    // The operands, parentheses off; a lone "(" or ")" is dropped.
    let n = args.len();
    let first = args.first().map_or("", |a| a.value.as_str());
    if !first.starts_with('(') {
        return Err(invalid(0, first));
    }
    let last_text = args.last().map_or("", |a| a.value.as_str());
    if n == 0 || !last_text.ends_with(')') {
        return Err(invalid(n.saturating_sub(1), last_text));
    }
    let mut ops: Vec<Operand<'_>> = Vec::with_capacity(n);
    for (i, a) in args.iter().enumerate() {
        let mut t = a.value.as_str();
        if i == 0 {
            t = &t[1..];
        }
        if i + 1 == n {
            t = t.strip_suffix(')').unwrap_or(t);
        }
        // A lone parenthesis (written apart from its operand) is not an operand.
        if t.is_empty() && ((i == 0 && a.value == "(") || (i + 1 == n && a.value.ends_with(')'))) {
            continue;
        }
        ops.push(Operand { arg: i, text: t });
    }
    let Some(head) = ops.first().cloned() else {
        return Err(invalid(0, first));
    };
    let p = head.text;
    if p.len() > 1 && p.starts_with('$') {
        match ops.len() {
            1 => return Ok(Cond::Value(head)),
            3 => {}
            _ => return Err(invalid(head.arg, p)),
        }
        let (op, right) = (ops[1].clone(), ops[2].clone());
        return match op.text {
            "=" => Ok(Cond::Equals {
                left: head,
                right,
                negate: false,
            }),
            "!=" => Ok(Cond::Equals {
                left: head,
                right,
                negate: true,
            }),
            "~" | "~*" | "!~" | "!~*" => Ok(Cond::Matches {
                left: head,
                regex: right,
                caseless: op.text.ends_with('*'),
                negate: op.text.starts_with('!'),
            }),
            other => Err(CondError {
                arg: op.arg,
                message: format!("unexpected \"{other}\" in condition"),
            }),
        };
    }
    let (negate, flag) = match p.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    if flag.len() == 2 && flag.starts_with('-') {
        if ops.len() != 2 {
            return Err(invalid(head.arg, p));
        }
        let test = match &flag[1..] {
            "f" => FileTest::File,
            "d" => FileTest::Dir,
            "e" => FileTest::Exists,
            "x" => FileTest::Exec,
            _ => return Err(invalid(head.arg, p)),
        };
        return Ok(Cond::File {
            test,
            path: ops[1].clone(),
            negate,
        });
    }
    Err(invalid(head.arg, p))
}

/// The regex of a condition, if it has one (for collecting named captures early).
pub(crate) fn regex_of(args: &[Arg]) -> Option<(&str, bool)> {
    match parse(args) {
        Ok(Cond::Matches {
            regex, caseless, ..
        }) => Some((regex.text, caseless)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Quote;
    use crate::source::Span;

    fn args(words: &[&str]) -> Vec<Arg> {
        words
            .iter()
            .map(|w| Arg {
                value: w.to_string(),
                quote: Quote::Bare,
                span: Span::default(),
            })
            .collect()
    }

    fn show(words: &[&str]) -> String {
        match parse(&args(words)) {
            Ok(Cond::Value(v)) => format!("value {}", v.text),
            Ok(Cond::Equals {
                left,
                right,
                negate,
            }) => format!(
                "{} {} {}",
                left.text,
                if negate { "!=" } else { "=" },
                right.text
            ),
            Ok(Cond::Matches {
                left,
                regex,
                caseless,
                negate,
            }) => format!(
                "{} match{} {} {}",
                left.text,
                if caseless { "*" } else { "" },
                negate,
                regex.text
            ),
            Ok(Cond::File { test, path, negate }) => {
                format!("file {test:?} {negate} {}", path.text)
            }
            Err(e) => format!("error@{} {}", e.arg, e.message),
        }
    }

    /// The forms of nginx's rewrite_if.t and the mistakes nginx refuses.
    #[test]
    fn conditions_as_nginx_reads_them() {
        for (words, want) in [
            (&["($arg_c)"][..], "value $arg_c"),
            (&["(", "$arg_c", ")"][..], "value $arg_c"),
            (&["($arg_c", "=", "1)"][..], "$arg_c = 1"),
            (&["($arg_c", "!=", "2)"][..], "$arg_c != 2"),
            (&["($arg_c", "~", "foo)"][..], "$arg_c match false foo"),
            (
                &["($arg_c", "~*", "foo", ")"][..],
                "$arg_c match* false foo",
            ),
            (&["($arg_c", "!~*", "foo)"][..], "$arg_c match* true foo"),
            (&["(-f", "/t/$arg_c)"][..], "file File false /t/$arg_c"),
            (&["(!-x", "/t/$arg_c)"][..], "file Exec true /t/$arg_c"),
            (
                &["($arg_c", "==", "1)"][..],
                "error@1 unexpected \"==\" in condition",
            ),
            (&["$arg_c)"][..], "error@0 invalid condition \"$arg_c)\""),
            (&["($arg_c"][..], "error@0 invalid condition \"($arg_c\""),
            (&["(-q", "/x)"][..], "error@0 invalid condition \"-q\""),
            (&["(foo)"][..], "error@0 invalid condition \"foo\""),
            (&["($a", "=)"][..], "error@0 invalid condition \"$a\""),
        ] {
            assert_eq!(show(words), want, "{words:?}");
        }
    }
}
