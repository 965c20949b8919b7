//! Server-side includes, sans IO: the command parser nginx's SSI module runs over a
//! response body (`<!--#command param="value" … -->`), the evaluation of a parameter's
//! `$variables`, and the `if` expression's parts. What the commands do (subrequests,
//! variables, output) is the worker's (`worker::ssi`).
//!
//! The parser takes the body in pieces of any size: text is handed on as it comes (a
//! possible `<!--#` start at a piece's end is held until the next piece says), a command is
//! returned once its `-->` arrives, and what follows it is left to the caller.

/// The longest command name (nginx's `NGX_HTTP_SSI_COMMAND_LEN`).
pub const COMMAND_LEN: usize = 32;
/// The longest parameter name (`NGX_HTTP_SSI_PARAM_LEN`).
pub const PARAM_LEN: usize = 32;
/// The most parameters of one command (`NGX_HTTP_SSI_MAX_PARAMS`).
pub const MAX_PARAMS: usize = 16;

const START: &[u8] = b"<!--#";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Text; `looked` bytes of `<!--#` matched so far (0: none).
    Text,
    PreCommand,
    Command,
    PreParam,
    Param,
    PreEqual,
    PreValue,
    /// In a quoted value (the quote byte).
    Value(u8),
    /// After a backslash in a quoted value.
    Escaped(u8),
    PostParam,
    End0,
    End1,
    /// A broken command: skipped to its `-->`.
    Error,
    ErrEnd0,
    ErrEnd1,
}

/// What [`Parser::feed`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The input is used up (its text handed on).
    More,
    /// A whole command: its name in [`Parser::command`], its parameters in
    /// [`Parser::params`].
    Command,
    /// A malformed command, skipped to its end (why in [`Parser::error`]).
    Error,
}

/// The SSI command parser of one response.
#[derive(Debug)]
pub struct Parser {
    st: St,
    looked: usize,
    command: Vec<u8>,
    /// Parameters: (name, value); `n` of them in use (the vectors are kept for reuse).
    params: Vec<(Vec<u8>, Vec<u8>)>,
    n: usize,
    value_len: usize,
    /// Why the last command was refused (nginx's error log line).
    pub error: String,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(256)
    }
}

impl Parser {
    /// A parser whose parameter values are at most `value_len` bytes (`ssi_value_length`).
    pub fn new(value_len: usize) -> Parser {
        Parser {
            st: St::Text,
            looked: 0,
            command: Vec::new(),
            params: Vec::new(),
            n: 0,
            value_len,
            error: String::new(),
        }
    }

    /// Back to the start of a body.
    pub fn reset(&mut self, value_len: usize) {
        self.st = St::Text;
        self.looked = 0;
        self.command.clear();
        self.n = 0;
        self.value_len = value_len;
        self.error.clear();
    }

    /// The command just parsed.
    pub fn command(&self) -> &[u8] {
        &self.command
    }

    /// Its parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.params[..self.n]
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// How many parameters the command had.
    pub fn param_count(&self) -> usize {
        self.n
    }

    /// The bytes of a possible command start held at the end of the input (`<!--` and its
    /// prefixes): text, if the body ends here.
    pub fn held(&self) -> &'static [u8] {
        if self.st == St::Text {
            &START[..self.looked]
        } else {
            &[]
        }
    }

    /// [`Parser::held`], given up: the body ended there.
    pub fn take_held(&mut self) -> &'static [u8] {
        let held = self.held();
        self.looked = 0;
        held
    }

    /// Parses `input`, appending its text to `text`, until a command (or a broken one) ends
    /// or the input does: returns how many bytes were used and what stopped it.
    pub fn feed(&mut self, input: &[u8], text: &mut Vec<u8>) -> (usize, Parsed) {
        let mut i = 0;
        while i < input.len() {
            let ch = input[i];
            i += 1;
            match self.st {
                St::Text => {
                    if self.looked == 0 {
                        // The tight loop: text up to the next `<`.
                        let rest = &input[i - 1..];
                        match memchr::memchr(b'<', rest) {
                            Some(at) => {
                                text.extend_from_slice(&rest[..at]);
                                i += at;
                                self.looked = 1;
                            }
                            None => {
                                text.extend_from_slice(rest);
                                return (input.len(), Parsed::More);
                            }
                        }
                        continue;
                    }
                    if ch == START[self.looked] {
                        self.looked += 1;
                        if self.looked == START.len() {
                            self.looked = 0;
                            self.st = St::PreCommand;
                        }
                        continue;
                    }
                    // Not a command: what was held is text.
                    text.extend_from_slice(&START[..self.looked]);
                    if ch == b'<' {
                        self.looked = 1;
                    } else {
                        self.looked = 0;
                        text.push(ch);
                    }
                }
                St::PreCommand => {
                    if !is_space(ch) {
                        self.command.clear();
                        self.command.push(ch);
                        self.n = 0;
                        self.error.clear();
                        self.st = St::Command;
                    }
                }
                St::Command => match ch {
                    _ if is_space(ch) => self.st = St::PreParam,
                    b'-' => self.st = St::End0,
                    _ => {
                        if self.command.len() == COMMAND_LEN {
                            self.fail(format!(
                                "the \"{}{}...\" SSI command is too long",
                                lossy(&self.command),
                                char::from(ch)
                            ));
                        } else {
                            self.command.push(ch);
                        }
                    }
                },
                St::PreParam => match ch {
                    _ if is_space(ch) => {}
                    b'-' => self.st = St::End0,
                    _ => {
                        if self.n == self.params.len() {
                            self.params.push((Vec::new(), Vec::new()));
                        }
                        let (k, v) = &mut self.params[self.n];
                        k.clear();
                        v.clear();
                        k.push(ch);
                        self.n += 1;
                        self.st = St::Param;
                        if self.n > MAX_PARAMS {
                            self.fail(format!(
                                "too many SSI command parameters: \"{}\"",
                                lossy(&self.command)
                            ));
                        }
                    }
                },
                St::Param => match ch {
                    _ if is_space(ch) => self.st = St::PreEqual,
                    b'=' => self.st = St::PreValue,
                    b'-' => {
                        self.fail_at_end(format!(
                            "unexpected \"-\" symbol after \"{}\" parameter in \"{}\" SSI command",
                            lossy(&self.params[self.n - 1].0),
                            lossy(&self.command)
                        ));
                    }
                    _ => {
                        let k = &mut self.params[self.n - 1].0;
                        if k.len() == PARAM_LEN {
                            let msg = format!(
                                "too long \"{}{}...\" parameter in \"{}\" SSI command",
                                lossy(k),
                                char::from(ch),
                                lossy(&self.command)
                            );
                            self.fail(msg);
                        } else {
                            k.push(ch);
                        }
                    }
                },
                St::PreEqual | St::PreValue if is_space(ch) => {}
                St::PreEqual if ch == b'=' => self.st = St::PreValue,
                St::PreValue if ch == b'"' || ch == b'\'' => self.st = St::Value(ch),
                St::PreEqual | St::PreValue => {
                    let msg = if self.st == St::PreEqual {
                        format!(
                            "unexpected \"{}\" symbol after \"{}\" parameter in \"{}\" SSI command",
                            char::from(ch),
                            lossy(&self.params[self.n - 1].0),
                            lossy(&self.command)
                        )
                    } else {
                        format!(
                            "unexpected \"{}\" symbol before value of \"{}\" parameter in \"{}\" SSI command",
                            char::from(ch),
                            lossy(&self.params[self.n - 1].0),
                            lossy(&self.command)
                        )
                    };
                    if ch == b'-' {
                        self.fail_at_end(msg);
                    } else {
                        self.fail(msg);
                    }
                }
                St::Value(q) if ch == q => self.st = St::PostParam,
                St::Value(q) | St::Escaped(q) => {
                    // (A backslash is kept, with the byte after it: the evaluation of the
                    // value takes it out.)
                    self.st = match self.st {
                        St::Value(_) if ch == b'\\' => St::Escaped(q),
                        _ => St::Value(q),
                    };
                    let (k, v) = &mut self.params[self.n - 1];
                    if v.len() == self.value_len {
                        let msg = format!(
                            "too long \"{}{}...\" value of \"{}\" parameter in \"{}\" SSI command",
                            lossy(v),
                            char::from(ch),
                            lossy(k),
                            lossy(&self.command)
                        );
                        self.fail(msg);
                    } else {
                        v.push(ch);
                    }
                }
                St::PostParam => match ch {
                    _ if is_space(ch) => self.st = St::PreParam,
                    b'-' => self.st = St::End0,
                    _ => {
                        let (k, v) = &self.params[self.n - 1];
                        let msg = format!(
                            "unexpected \"{}\" symbol after \"{}\" value of \"{}\" parameter in \"{}\" SSI command",
                            char::from(ch),
                            lossy(v),
                            lossy(k),
                            lossy(&self.command)
                        );
                        self.fail(msg);
                    }
                },
                St::End0 | St::End1 => {
                    let want = if self.st == St::End0 { b'-' } else { b'>' };
                    if ch != want {
                        self.fail(format!(
                            "unexpected \"{}\" symbol in \"{}\" SSI command",
                            char::from(ch),
                            lossy(&self.command)
                        ));
                    } else if self.st == St::End0 {
                        self.st = St::End1;
                    } else {
                        self.st = St::Text;
                        return (i, Parsed::Command);
                    }
                }
                St::Error => {
                    if ch == b'-' {
                        self.st = St::ErrEnd0;
                    }
                }
                St::ErrEnd0 => {
                    self.st = if ch == b'-' { St::ErrEnd1 } else { St::Error };
                }
                St::ErrEnd1 => {
                    if ch == b'>' {
                        self.st = St::Text;
                        return (i, Parsed::Error);
                    }
                    self.st = St::Error;
                }
            }
        }
        (input.len(), Parsed::More)
    }

    fn fail(&mut self, why: String) {
        self.error = why;
        self.st = St::Error;
    }

    /// A failure on a `-`: it may be the first of the closing `-->`.
    fn fail_at_end(&mut self, why: String) {
        self.error = why;
        self.st = St::ErrEnd0;
    }
}

fn is_space(ch: u8) -> bool {
    matches!(ch, b' ' | b'\r' | b'\n' | b'\t')
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Why a parameter could not be evaluated (nginx's error log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

/// nginx's `ngx_http_ssi_evaluate_string`: `value` with its `$name` and `${name}`
/// variables replaced (by `lookup`, which appends a variable's value and says whether it
/// exists; one that does not is empty) and its backslashes taken out (`\x` is `x` for `\`,
/// `'`, `"` and `$`, else kept whole), appended to `out`. With `prefix` (an include's URI)
/// and a result not starting with `/`, the directory of `uri` goes first.
pub fn evaluate(
    value: &[u8],
    uri: Option<&[u8]>,
    lookup: &mut dyn FnMut(&[u8], &mut Vec<u8>) -> bool,
    out: &mut Vec<u8>,
) -> Result<(), EvalError> {
    let start = out.len();
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'$' {
            i += 1;
            let bracket = value.get(i) == Some(&b'{');
            if bracket {
                i += 1;
            }
            let from = i;
            while i < value.len() && (value[i].is_ascii_alphanumeric() || value[i] == b'_') {
                i += 1;
            }
            let name = &value[from..i];
            if bracket {
                if value.get(i) != Some(&b'}') {
                    return Err(EvalError(format!(
                        "the closing bracket in \"{}\" variable is missing",
                        lossy(name)
                    )));
                }
                i += 1;
            }
            if name.is_empty() {
                return Err(EvalError(format!(
                    "invalid variable name in \"{}\"",
                    lossy(value)
                )));
            }
            let mark = out.len();
            if !lookup(&name.to_ascii_lowercase(), out) {
                out.truncate(mark);
            }
            continue;
        }
        let mut quoted = false;
        while i < value.len() {
            let ch = value[i];
            if quoted {
                quoted = false;
                if !matches!(ch, b'\\' | b'\'' | b'"' | b'$') {
                    out.push(b'\\');
                }
                out.push(ch);
            } else if ch == b'\\' {
                quoted = true;
            } else if ch == b'$' {
                break;
            } else {
                out.push(ch);
            }
            i += 1;
        }
    }
    if let Some(uri) = uri {
        if out.len() > start && out[start] != b'/' {
            if let Some(slash) = memchr::memrchr(b'/', uri) {
                out.splice(start..start, uri[..=slash].iter().copied());
            }
        }
    }
    Ok(())
}

/// The parts of an `if` expression (`expr`): the left side (up to the first byte not
/// among letters, digits, `$`, `{`, `}`, `_` and quotes; lowercased as nginx does), and the
/// comparison after it, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Expr<'a> {
    pub left: Vec<u8>,
    pub test: Option<Test<'a>>,
}

/// The comparison of an `if` expression.
#[derive(Debug, PartialEq, Eq)]
pub struct Test<'a> {
    pub negative: bool,
    /// A regular expression (`/…/`) rather than a string.
    pub regex: bool,
    pub right: &'a [u8],
}

/// Splits an `if` expression as nginx does; `None`: invalid.
pub fn split_expr(expr: &[u8]) -> Option<Expr<'_>> {
    let mut p = 0;
    while p < expr.len() {
        let b = expr[p];
        if !(b.is_ascii_alphanumeric() || b"${}_\"'".contains(&b)) {
            break;
        }
        p += 1;
    }
    let left = expr[..p].to_ascii_lowercase();
    while expr.get(p) == Some(&b' ') {
        p += 1;
    }
    if p == expr.len() {
        return Some(Expr { left, test: None });
    }
    let negative = if expr[p] == b'=' {
        p += 1;
        false
    } else if expr[p..].starts_with(b"!=") {
        p += 2;
        true
    } else {
        return None;
    };
    while expr.get(p) == Some(&b' ') {
        p += 1;
    }
    let rest = &expr[p..];
    let (regex, right) = if rest.len() > 1 && rest[0] == b'/' {
        if rest[rest.len() - 1] != b'/' {
            return None;
        }
        (true, &rest[1..rest.len() - 1])
    } else if rest.len() > 1 && rest.starts_with(b"\\/") {
        (false, &rest[1..])
    } else {
        (false, rest)
    };
    Some(Expr {
        left,
        test: Some(Test {
            negative,
            regex,
            right,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `body` in pieces of `step` bytes: the text and each command (name and
    /// parameters, or `!` for a broken one) in order.
    fn run(body: &[u8], step: usize) -> Vec<String> {
        let mut p = Parser::new(256);
        let mut out = Vec::new();
        let mut text = Vec::new();
        for piece in body.chunks(step.max(1)) {
            let mut at = 0;
            loop {
                let (n, what) = p.feed(&piece[at..], &mut text);
                at += n;
                match what {
                    Parsed::More => break,
                    Parsed::Command => {
                        if !text.is_empty() {
                            out.push(String::from_utf8_lossy(&text).into_owned());
                            text.clear();
                        }
                        let mut c = format!("#{}", lossy(p.command()));
                        for (k, v) in p.params() {
                            c.push_str(&format!(" {}={}", lossy(k), lossy(v)));
                        }
                        out.push(c);
                    }
                    Parsed::Error => {
                        if !text.is_empty() {
                            out.push(String::from_utf8_lossy(&text).into_owned());
                            text.clear();
                        }
                        out.push("!".into());
                    }
                }
            }
        }
        text.extend_from_slice(p.held());
        if !text.is_empty() {
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
        out
    }

    #[test]
    fn commands_are_found_at_every_split_point() {
        let body = b"a<b<!-x<!--#echo var=\"v\" -->c<!--# include virtual='/x?y' wait=\"yes\"-->d<!--#endif-->e<!--";
        let whole = run(body, body.len());
        assert_eq!(
            whole,
            [
                "a<b<!-x",
                "#echo var=v",
                "c",
                "#include virtual=/x?y wait=yes",
                "d",
                "#endif",
                "e<!--"
            ]
        );
        for step in 1..body.len() {
            assert_eq!(run(body, step), whole, "pieces of {step}");
        }
    }

    #[test]
    fn backslashes_stay_for_the_evaluation() {
        assert_eq!(
            run(br#"<!--#set var="a" value="x\"y\\z" -->"#, 1),
            [r#"#set var=a value=x\"y\\z"#]
        );
    }

    #[test]
    fn broken_commands_are_skipped_to_their_end() {
        for (body, why) in [
            (&b"<!--#echo var=v -->T"[..], "before value"),
            (b"<!--#echo var -x -->T", "after \"var\" parameter"),
            (b"<!--#echo var=\"v\"x -->T", "after \"v\" value"),
            (b"<!--#echo var=\"v\" -x>T-->T", "symbol in"),
        ] {
            let mut p = Parser::new(256);
            let mut text = Vec::new();
            let (n, what) = p.feed(body, &mut text);
            assert_eq!(what, Parsed::Error, "{}", lossy(body));
            assert!(p.error.contains(why), "{} / {}", p.error, why);
            assert_eq!(&body[n..], b"T");
        }
    }

    #[test]
    fn limits_are_nginx_s() {
        let long = format!("<!--#{} -->", "c".repeat(COMMAND_LEN + 1));
        assert_eq!(run(long.as_bytes(), 7), ["!"]);
        let long = format!("<!--#echo {}=\"v\" -->", "p".repeat(PARAM_LEN + 1));
        assert_eq!(run(long.as_bytes(), 7), ["!"]);
        let mut p = Parser::new(4);
        let (_, what) = p.feed(b"<!--#echo var=\"12345\" -->", &mut Vec::new());
        assert_eq!(what, Parsed::Error);
        assert!(p.error.contains("too long"), "{}", p.error);
        let many: String = (0..=MAX_PARAMS).map(|i| format!(" p{i}=\"v\"")).collect();
        let many = format!("<!--#echo{many} -->");
        assert_eq!(run(many.as_bytes(), 5), ["!"]);
    }

    fn eval(value: &str, uri: Option<&str>) -> Result<String, EvalError> {
        let mut out = b"=".to_vec();
        let mut lookup = |name: &[u8], out: &mut Vec<u8>| match name {
            b"a" => {
                out.extend_from_slice(b"A");
                true
            }
            b"empty" => true,
            _ => false,
        };
        evaluate(
            value.as_bytes(),
            uri.map(str::as_bytes),
            &mut lookup,
            &mut out,
        )?;
        Ok(String::from_utf8_lossy(&out[1..]).into_owned())
    }

    #[test]
    fn values_are_evaluated_as_nginx() {
        assert_eq!(eval("x$a${a}y$A", None).unwrap(), "xAAyA");
        assert_eq!(eval("x$none$empty.", None).unwrap(), "x.");
        assert_eq!(eval(r#"\$a \" \\ \x"#, None).unwrap(), r#"$a " \ \x"#);
        assert_eq!(eval("t.html", Some("/d/i.html")).unwrap(), "/d/t.html");
        assert_eq!(eval("/t.html", Some("/d/i.html")).unwrap(), "/t.html");
        assert_eq!(eval("${a}.html", Some("/d/")).unwrap(), "/d/A.html");
        assert!(eval("${a", None).is_err());
        assert!(eval("x$", None).is_err());
    }

    #[test]
    fn if_expressions_split_as_nginx() {
        let e = split_expr(b"$A").unwrap();
        assert_eq!((e.left.as_slice(), e.test), (&b"$a"[..], None));
        let e = split_expr(b"$a = text").unwrap();
        assert_eq!(
            e.test,
            Some(Test {
                negative: false,
                regex: false,
                right: b"text"
            })
        );
        let e = split_expr(b"$a!=/^x$/").unwrap();
        assert_eq!(
            e.test,
            Some(Test {
                negative: true,
                regex: true,
                right: b"^x$"
            })
        );
        let e = split_expr(b"$a = \\/x").unwrap();
        assert_eq!(e.test.map(|t| t.right), Some(&b"/x"[..]));
        assert!(split_expr(b"$a > 1").is_none());
        assert!(split_expr(b"$a = /x").is_none());
    }
}
