//! Directory listings (`autoindex`), byte for byte as nginx's autoindex module writes them:
//! HTML (names cut at 50 characters, sizes exact or rounded, dates), XML, JSON and JSONP.
//! Pure functions over a list of entries; reading the directory is the caller's.

use crate::http::response::escape_html;
use crate::http::response::{escape_uri, Escape};
use proton_ir::AutoindexFormat;
use std::io::Write;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) dir: bool,
    pub(crate) file: bool,
    pub(crate) mtime: i64,
    pub(crate) size: u64,
}

/// Width of the name column of the HTML listing (nginx's `NGX_HTTP_AUTOINDEX_NAME_LEN`).
const NAME_LEN: usize = 50;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Sorts as nginx: directories first, then by name (bytes).
pub(crate) fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
}

/// The JSONP callback of `args` (`callback=`): `Ok(None)` when absent or empty (plain JSON),
/// `Err` when longer than 128 bytes or with a byte other than a letter, digit, `_` or `.`
/// (nginx answers 400).
pub(crate) fn jsonp_callback(args: &[u8]) -> Result<Option<&[u8]>, ()> {
    let Some(cb) = args.split(|&b| b == b'&').find_map(|p| {
        let (k, v) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        };
        k.eq_ignore_ascii_case(b"callback").then_some(v)
    }) else {
        return Ok(None);
    };
    if cb.len() > 128 {
        return Err(());
    }
    if !cb
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(());
    }
    Ok((!cb.is_empty()).then_some(cb))
}

/// Writes the listing of `entries` (sorted) for the directory URI `uri` in `format` into
/// `out`. `utf8`: the response's charset is UTF-8 (names are cut by characters, not bytes).
/// `gmtoff`: seconds added to times in the HTML listing (`autoindex_localtime`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    format: AutoindexFormat,
    uri: &[u8],
    entries: &[Entry],
    utf8: bool,
    exact_size: bool,
    gmtoff: i64,
    callback: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    match format {
        AutoindexFormat::Html => html(uri, entries, utf8, exact_size, gmtoff, out),
        AutoindexFormat::Xml => xml(entries, out),
        AutoindexFormat::Json | AutoindexFormat::Jsonp => json(entries, callback, out),
    }
}

fn html(
    uri: &[u8],
    entries: &[Entry],
    utf8: bool,
    exact_size: bool,
    gmtoff: i64,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"<html>\r\n<head><title>Index of ");
    escape_html(uri, out);
    out.extend_from_slice(b"</title></head>\r\n<body>\r\n<h1>Index of ");
    escape_html(uri, out);
    out.extend_from_slice(b"</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for e in entries {
        out.extend_from_slice(b"<a href=\"");
        escape_uri(&e.name, Escape::UriComponent, out);
        if e.dir {
            out.push(b'/');
        }
        out.extend_from_slice(b"\">");
        let chars = if utf8 {
            utf8_length(&e.name)
        } else {
            e.name.len()
        };
        let mut len = chars;
        // The name shown: at most 50 characters, or 47 and `..>` when longer.
        let shown = if chars > NAME_LEN {
            NAME_LEN - 3
        } else {
            chars
        };
        let end = if chars == e.name.len() {
            shown
        } else {
            utf8_prefix(&e.name, shown)
        };
        escape_html(&e.name[..end], out);
        if len > NAME_LEN {
            out.extend_from_slice(b"..&gt;</a>");
        } else {
            if e.dir && NAME_LEN > len {
                out.push(b'/');
                len += 1;
            }
            out.extend_from_slice(b"</a>");
            out.resize(out.len() + NAME_LEN.saturating_sub(len), b' ');
        }
        out.push(b' ');
        let (y, mo, d, h, mi, _) = civil(e.mtime + gmtoff);
        let _ = write!(
            out,
            "{d:02}-{}-{y} {h:02}:{mi:02} ",
            MONTHS[(mo as usize).saturating_sub(1) % 12]
        );
        if exact_size {
            if e.dir {
                out.extend_from_slice(b"                  -");
            } else {
                let _ = write!(out, "{:>19}", e.size);
            }
        } else if e.dir {
            out.extend_from_slice(b"      -");
        } else {
            let l = e.size;
            const G: u64 = 1 << 30;
            const M: u64 = 1 << 20;
            let (size, scale) = if l > G - 1 {
                (l / G + u64::from(l % G > G / 2 - 1), Some('G'))
            } else if l > M - 1 {
                (l / M + u64::from(l % M > M / 2 - 1), Some('M'))
            } else if l > 9999 {
                (l / 1024 + u64::from(l % 1024 > 511), Some('K'))
            } else {
                (l, None)
            };
            match scale {
                Some(c) => {
                    let _ = write!(out, "{size:>6}{c}");
                }
                None => {
                    let _ = write!(out, " {size:>6}");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"</pre><hr></body>\r\n</html>\r\n");
}

fn kind(e: &Entry) -> &'static str {
    if e.dir {
        "directory"
    } else if e.file {
        "file"
    } else {
        "other"
    }
}

fn xml(entries: &[Entry], out: &mut Vec<u8>) {
    out.extend_from_slice(b"<?xml version=\"1.0\"?>\r\n<list>\r\n");
    for e in entries {
        let t = kind(e);
        let (y, mo, d, h, mi, s) = civil(e.mtime);
        let _ = write!(
            out,
            "<{t} mtime=\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\""
        );
        if e.file {
            let _ = write!(out, " size=\"{}\"", e.size);
        }
        out.push(b'>');
        escape_html(&e.name, out);
        let _ = write!(out, "</{t}>\r\n");
    }
    out.extend_from_slice(b"</list>\r\n");
}

fn json(entries: &[Entry], callback: Option<&[u8]>, out: &mut Vec<u8>) {
    if let Some(cb) = callback {
        out.extend_from_slice(b"/* callback */\r\n");
        out.extend_from_slice(cb);
        out.push(b'(');
    }
    out.push(b'[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\r\n{ \"name\":\"");
        escape_json(&e.name, out);
        let _ = write!(out, "\", \"type\":\"{}\", \"mtime\":\"", kind(e));
        let mut date = [0u8; 29];
        crate::http::response::http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime.max(0) as u64),
            &mut date,
        );
        out.extend_from_slice(&date);
        if e.file {
            let _ = write!(out, "\", \"size\":{}", e.size);
        } else {
            out.push(b'"');
        }
        out.extend_from_slice(b" }");
    }
    out.extend_from_slice(b"\r\n]");
    if callback.is_some() {
        out.extend_from_slice(b");");
    }
}

/// nginx's `ngx_escape_json`: `"` and `\` with a backslash, control bytes as `\n`, `\r`,
/// `\t`, `\b`, `\f` or `\u00XX`.
fn escape_json(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
}

/// Characters in `s` when it is valid UTF-8, else its length in bytes (nginx's
/// `ngx_utf8_length`).
fn utf8_length(s: &[u8]) -> usize {
    match std::str::from_utf8(s) {
        Ok(t) => t.chars().count(),
        Err(_) => s.len(),
    }
}

/// The byte length of the first `n` characters of `s` (valid UTF-8 up to there).
fn utf8_prefix(s: &[u8], n: usize) -> usize {
    match std::str::from_utf8(s) {
        Ok(t) => t.char_indices().nth(n).map_or(s.len(), |(i, _)| i),
        Err(_) => n.min(s.len()),
    }
}

/// Year, month (1–12), day, hour, minute, second of a Unix time (UTC).
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, dir: bool, size: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            dir,
            file: !dir,
            mtime: 1_000_000_000,
            size,
        }
    }

    #[test]
    fn html_as_nginx() {
        let mut out = Vec::new();
        let e = [entry("d", true, 0), entry("a b", false, 12)];
        write(
            AutoindexFormat::Html,
            b"/x/",
            &e,
            false,
            true,
            0,
            None,
            &mut out,
        );
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.contains("<a href=\"d/\">d/</a>"), "{s}");
        assert!(
            s.contains(" 09-Sep-2001 01:46                   -\r\n"),
            "{s}"
        );
        assert!(s.contains("<a href=\"a%20b\">a b</a>"), "{s}");
        assert!(s.contains(&format!("{}12\r\n", " ".repeat(17))), "{s}");
    }

    #[test]
    fn long_names_and_rounded_sizes() {
        let long = format!("test-long-{}", "0".repeat(50));
        let mut out = Vec::new();
        let e = [entry(&long, false, 10_240)];
        write(
            AutoindexFormat::Html,
            b"/",
            &e,
            false,
            false,
            0,
            None,
            &mut out,
        );
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(
            s.contains(&format!("test-long-{}..&gt;</a>", "0".repeat(37))),
            "{s}"
        );
        assert!(s.contains("    10K\r\n"), "{s}");
    }

    #[test]
    fn xml_and_jsonp() {
        let e = [entry("a\"<", false, 5), entry("d", true, 0)];
        let mut out = Vec::new();
        write(
            AutoindexFormat::Xml,
            b"/",
            &e,
            false,
            true,
            0,
            None,
            &mut out,
        );
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(
            s.contains("<file mtime=\"2001-09-09T01:46:40Z\" size=\"5\">a&quot;&lt;</file>\r\n"),
            "{s}"
        );
        let mut out = Vec::new();
        write(
            AutoindexFormat::Jsonp,
            b"/",
            &e,
            false,
            true,
            0,
            Some(b"cb"),
            &mut out,
        );
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.starts_with("/* callback */\r\ncb([\r\n{ \"name\":\"a\\\"<\", \"type\":\"file\", \"mtime\":\"Sun, 09 Sep 2001 01:46:40 GMT\", \"size\":5 },\r\n{ \"name\":\"d\", \"type\":\"directory\""), "{s}");
        assert!(s.ends_with("\r\n]);"), "{s}");
        assert_eq!(
            jsonp_callback(b"a=1&callback=f_1.x"),
            Ok(Some(&b"f_1.x"[..]))
        );
        assert_eq!(jsonp_callback(b"callback="), Ok(None));
        assert_eq!(jsonp_callback(b"callback=f("), Err(()));
    }
}
