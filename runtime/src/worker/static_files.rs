//! Static files: root/alias, index, try_files, directories (301 to the slashed URI, index,
//! autoindex or 403), MIME types, ETag/Last-Modified with conditional requests (304),
//! single ranges (206/416), expires, and the body sent with sendfile.
//!
//! The URI is already normalised (no `..`), so `root + uri` cannot climb out of the root.

use super::conn::{Conn, FileBody};
use super::context::RequestCtx;
use super::request::Handled;
use super::respond::end_head;
use super::vars::header;
use super::Worker;
use crate::elog;
use crate::http::request::Method;
use proton_ir::{Expires, IfModifiedSince, LocationId};
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Builds the filesystem path of `uri` for location `loc` into `out`. False when the path
/// would climb out of the alias directory: nginx serves `/img../secret` from
/// `location /img { alias /data/; }` as `/data/../secret` (its off-by-slash trap); Proton
/// refuses any `..` that the request brings into an alias path.
fn map_path(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    uri: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    let ctx = w.ctx(conn, req, 0);
    out.clear();
    match &l.conf.alias {
        Some(alias) => {
            // The alias replaces the prefix of the location that declared it; in a regex
            // location (empty prefix) it is the whole path.
            ctx.expand(&alias.path, out);
            // What the configuration wrote; the rest comes from the request.
            let written = match alias.path.parts.as_slice() {
                [proton_ir::Part::Literal(_)] => out.len(),
                [proton_ir::Part::Literal(s), ..] => s.len(),
                _ => 0,
            };
            if !alias.prefix.is_empty() {
                let prefix = alias.prefix.as_bytes();
                let rest = uri.strip_prefix(prefix).unwrap_or(uri);
                out.extend_from_slice(rest);
            }
            if climbs(out, written) {
                return false;
            }
        }
        None => {
            ctx.expand(ir.root_of(l), out);
            out.extend_from_slice(uri);
        }
    }
    if !out.starts_with(b"/") {
        let base = w.loaded.prefix.as_os_str().as_bytes().to_vec();
        let mut full = base;
        full.push(b'/');
        full.extend_from_slice(out);
        *out = full;
    }
    true
}

/// Whether `path` has a `..` segment in the segment that holds byte `from` or after it.
fn climbs(path: &[u8], from: usize) -> bool {
    let head = path.get(..from).unwrap_or(path);
    let start = head.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    path.get(start..)
        .unwrap_or_default()
        .split(|&b| b == b'/')
        .any(|seg| seg == b"..")
}

/// The answer when the request would climb out of its alias directory.
fn alias_refused(w: &mut Worker<'_>, conn: &Conn, path: &[u8]) -> Handled {
    elog!(
        w.elog,
        Error,
        "\"{}\" leaves the alias directory, refused, client: {}",
        String::from_utf8_lossy(path),
        conn.peer.ip()
    );
    Handled::Status(404)
}

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// Serves the current URI from location `loc`.
pub(crate) fn serve(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    // try_files: the first that exists, else the last argument (for any method, as nginx:
    // `try_files $uri @app` sends a POST on to @app). Candidates are made in pooled buffers.
    if !l.conf.try_files.is_empty() {
        let n = l.conf.try_files.len();
        let pool = w.scratch.var_pool.get_mut();
        let (mut cand, mut path) = (pool.buf(), pool.buf());
        let mut answer = None;
        let mut found_dir = false;
        for t in &l.conf.try_files[..n - 1] {
            cand.clear();
            w.ctx(conn, req, 0).expand(t, &mut cand);
            // As nginx: a candidate written with a final `/` tests for a directory, named
            // without that slash (`$uri/` for `/a/dir` becomes `/a/dir`, then 301 to
            // `/a/dir/`); any other candidate must be a file, even one ending in `/`.
            let dir =
                matches!(t.parts.last(), Some(proton_ir::Part::Literal(lit)) if lit.ends_with('/'));
            if dir {
                cand.pop();
            }
            let inside = map_path(w, conn, req, loc, &cand, &mut path);
            let found = inside
                && std::fs::metadata(path_of(&path)).is_ok_and(|m| {
                    if dir {
                        m.is_dir()
                    } else {
                        m.is_file()
                    }
                });
            if found {
                req.uri.clear();
                req.uri.extend_from_slice(&cand);
                if dir {
                    // Served below from the URI: its index, or a 301 to add the slash.
                    found_dir = true;
                } else {
                    answer = Some(if static_method(req, error_status) {
                        send_file(w, conn, req, loc, &path, error_status)
                    } else {
                        Handled::Status(405)
                    });
                }
                break;
            }
        }
        if answer.is_none() && !found_dir {
            cand.clear();
            w.ctx(conn, req, 0)
                .expand(&l.conf.try_files[n - 1], &mut cand);
            answer = Some(if let Some(code) = cand.strip_prefix(b"=") {
                let code = std::str::from_utf8(code)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(404);
                Handled::Status(code)
            } else if cand.starts_with(b"@") {
                let named = std::str::from_utf8(&cand)
                    .ok()
                    .and_then(|name| ir.find_named(l.server, name));
                Handled::Named(named)
            } else {
                let (p, a) = match cand.iter().position(|&b| b == b'?') {
                    Some(i) => (&cand[..i], &cand[i + 1..]),
                    None => (&cand[..], &cand[cand.len()..]),
                };
                // As nginx's internal redirect: the fallback's arguments replace the
                // request's (`try_files $uri /index.php?$args` keeps them).
                req.uri.clear();
                req.uri.extend_from_slice(p);
                req.args.clear();
                req.args.extend_from_slice(a);
                Handled::Redirect
            });
        }
        let pool = w.scratch.var_pool.get_mut();
        pool.give_buf(cand);
        pool.give_buf(path);
        if let Some(a) = answer {
            return a;
        }
    }
    if !static_method(req, error_status) {
        return Handled::Status(405);
    }
    let mut path = std::mem::take(&mut w.scratch.path);
    let inside = map_path(w, conn, req, loc, &req.uri, &mut path);
    let is_dir = req.uri.ends_with(b"/");
    let result = if !inside {
        alias_refused(w, conn, &path)
    } else if is_dir {
        serve_dir(w, conn, req, loc, &path, error_status)
    } else {
        send_file(w, conn, req, loc, &path, error_status)
    };
    w.scratch.path = path;
    result
}

/// nginx's static handler takes GET, HEAD and POST (a POST is refused with 405 only once
/// the file is found); other methods are 405 at once. After error_page the method is GET.
fn static_method(req: &RequestCtx, error_status: Option<(u16, Option<u16>)>) -> bool {
    error_status.is_some() || matches!(req.head.method, Method::Get | Method::Head | Method::Post)
}

/// A POST for a file that exists (nginx: 405 after the lookup, so a missing file is 404).
fn refused_post(req: &RequestCtx, error_status: Option<(u16, Option<u16>)>) -> bool {
    error_status.is_none() && req.head.method == Method::Post
}

fn serve_dir(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    path: &[u8],
    error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    let settings = &ir.settings[l.conf.settings.0 as usize];
    let pool = w.scratch.var_pool.get_mut();
    let (mut name, mut p) = (pool.buf(), pool.buf());
    let mut found = false;
    for idx in &settings.index {
        name.clear();
        w.ctx(conn, req, 0).expand(idx, &mut name);
        p.clear();
        p.extend_from_slice(path);
        p.extend_from_slice(&name);
        if std::fs::metadata(path_of(&p)).is_ok_and(|m| m.is_file()) {
            // nginx: an internal redirect to the URI (the directory's) + the index name.
            req.uri.extend_from_slice(&name);
            found = true;
            break;
        }
    }
    let pool = w.scratch.var_pool.get_mut();
    pool.give_buf(name);
    pool.give_buf(p);
    if found {
        return Handled::Redirect;
    }
    match std::fs::metadata(path_of(path)) {
        Ok(m) if m.is_dir() => {
            // nginx's autoindex answers GET and HEAD only; a POST falls through to 403.
            if settings.autoindex && !refused_post(req, error_status) {
                // The listing allocates anyway (names, sorting); its URI is copied here.
                let uri = req.uri.clone();
                return autoindex(w, conn, req, loc, &uri, path, error_status);
            }
            elog!(
                w.elog,
                Error,
                "directory index of \"{}\" is forbidden, client: {}",
                String::from_utf8_lossy(path),
                conn.peer.ip()
            );
            Handled::Status(403)
        }
        _ if !log_not_found(w, loc) => Handled::Status(404),
        _ => {
            elog!(
                w.elog,
                Error,
                "\"{}\" is not found, client: {}",
                String::from_utf8_lossy(path),
                conn.peer.ip()
            );
            Handled::Status(404)
        }
    }
}

/// `log_not_found` of location `loc`.
fn log_not_found(w: &Worker<'_>, loc: LocationId) -> bool {
    let ir = &w.loaded.ir;
    ir.locations
        .get(loc.0 as usize)
        .and_then(|l| ir.settings.get(l.conf.settings.0 as usize))
        .is_none_or(|s| s.log_not_found)
}

/// Bodies up to this size are read into the response buffer behind the head.
const SMALL_BODY: u64 = 8 * 1024;

fn send_file(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    path: &[u8],
    error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    // Non-blocking: opening a FIFO (or a device) for reading would otherwise block the
    // whole event loop until a writer came; such a file is then refused below.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path_of(path));
    let file = match opened {
        Ok(f) => f,
        Err(e) => {
            let (status, level) = match e.kind() {
                ErrorKind::NotFound => (404, proton_ir::LogLevel::Error),
                ErrorKind::PermissionDenied => (403, proton_ir::LogLevel::Error),
                _ if e.raw_os_error() == Some(20) => (404, proton_ir::LogLevel::Error), // ENOTDIR
                _ if e.raw_os_error() == Some(36) => (404, proton_ir::LogLevel::Error), // ENAMETOOLONG
                _ => (500, proton_ir::LogLevel::Crit),
            };
            // log_not_found off keeps the missing-file lines out (nginx: ENOENT, ENOTDIR,
            // ENAMETOOLONG).
            let missing = status == 404;
            if missing && !log_not_found(w, loc) {
                return Handled::Status(status);
            }
            w.elog.log(
                level,
                format_args!(
                    "open() \"{}\" failed ({e}), client: {}",
                    String::from_utf8_lossy(path),
                    conn.peer.ip(),
                    e = crate::log::OsError(&e)
                ),
            );
            return Handled::Status(status);
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => {
            elog!(
                w.elog,
                Crit,
                "fstat() \"{}\" failed ({e})",
                String::from_utf8_lossy(path),
                e = crate::log::OsError(&e)
            );
            return Handled::Status(500);
        }
    };
    if meta.is_dir() {
        // 301 to the URI with a slash (nginx), arguments kept.
        req.text.clear();
        req.text.extend_from_slice(&req.uri);
        req.text.push(b'/');
        if !req.args.is_empty() {
            req.text.push(b'?');
            req.text.extend_from_slice(&req.args);
        }
        return redirect_slash(w, conn, req, loc);
    }
    if !meta.is_file() {
        // As nginx: only regular files are served.
        elog!(
            w.elog,
            Crit,
            "\"{}\" is not a regular file, client: {}",
            String::from_utf8_lossy(path),
            conn.peer.ip()
        );
        return Handled::Status(404);
    }
    if refused_post(req, error_status) {
        return Handled::Status(405);
    }
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    let settings = &ir.settings[l.conf.settings.0 as usize];
    let len = meta.len();
    let mtime = meta.mtime();
    let mut etag_buf = [0u8; 40];
    let etag_len = crate::http::etag::etag(mtime, len, &mut etag_buf);
    let etag = &etag_buf[..etag_len];
    let buf = &conn.rbuf;
    let mut status = match error_status {
        Some((orig, over)) => over.filter(|c| *c != 0).unwrap_or(orig),
        None => 200,
    };
    if error_status.is_none() {
        // Conditional requests.
        if settings.etag {
            if let Some(inm) = header(&req.head, buf, b"if-none-match") {
                if crate::http::etag::if_none_match(inm, etag) {
                    return not_modified(w, conn, req, loc, mtime, etag, settings.etag);
                }
            }
        }
        if settings.if_modified_since != IfModifiedSince::Off
            && header(&req.head, buf, b"if-none-match").is_none()
        {
            if let Some(ims) = header(&req.head, buf, b"if-modified-since")
                .and_then(crate::http::response::parse_http_date)
            {
                let ims = ims
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let hit = match settings.if_modified_since {
                    IfModifiedSince::Exact => ims == mtime,
                    _ => ims >= mtime,
                };
                if hit {
                    return not_modified(w, conn, req, loc, mtime, etag, settings.etag);
                }
            }
        }
    }
    // Range: one range → 206; unsatisfiable → 416; otherwise the whole file.
    let mut start = 0u64;
    let mut end = len;
    let mut content_range: Option<(u64, u64)> = None;
    if status == 200 {
        if let Some(r) = header(&req.head, buf, b"range") {
            let if_range_ok = header(&req.head, buf, b"if-range").is_none_or(|v| v == etag);
            if if_range_ok {
                let mut ranges = [crate::http::range::ByteRange::default(); 16];
                match crate::http::range::parse_range(r, len, &mut ranges) {
                    crate::http::range::RangeResult::Satisfiable(n) if n > 1 => {
                        let total: u64 = ranges[..n].iter().map(|r| r.end - r.start).sum();
                        if total <= MULTIPART_MAX {
                            return multipart(w, conn, req, loc, &file, &ranges[..n], len, path);
                        }
                        // Larger multi-range answers are served whole (200) for now.
                    }
                    crate::http::range::RangeResult::Satisfiable(1) => {
                        start = ranges[0].start;
                        end = ranges[0].end;
                        status = 206;
                        content_range = Some((start, end));
                    }
                    crate::http::range::RangeResult::Unsatisfiable => {
                        return range_not_satisfiable(w, conn, req, loc, len);
                    }
                    _ => {}
                }
            }
        }
    }
    let ct = content_type(w.loaded, settings, path);
    let use_etag = settings.etag;
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(&mut wbuf, req, loc, status, Some(ct), Some(end - start));
    validators(&mut wbuf, mtime, etag, use_etag);
    if let Some((s, e)) = content_range {
        let _ = write!(
            wbuf,
            "Content-Range: bytes {}-{}/{}\r\n",
            s,
            e.saturating_sub(1),
            len
        );
    }
    if error_status.is_none() {
        wbuf.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    }
    req.mtime = Some(mtime);
    w.add_headers(conn, req, loc, status, &mut wbuf);
    let n = end_head(&mut wbuf);
    if !req.head.is_head() && end > start && end - start <= SMALL_BODY {
        // A small file goes out with its head in one write (one TCP segment instead of
        // two); sendfile only pays off for larger bodies.
        use std::os::unix::fs::FileExt;
        let len = (end - start) as usize;
        wbuf.resize(n + len, 0);
        if matches!(file.read_at(&mut wbuf[n..], start), Ok(got) if got == len) {
            conn.wbuf = wbuf;
            return Handled::Done {
                status,
                header_bytes: n,
            };
        }
        // Changed under us: the sendfile path copes with a short file.
        wbuf.truncate(n);
    }
    conn.wbuf = wbuf;
    if !req.head.is_head() && end > start {
        let s = w.settings_for(loc);
        conn.file = Some(FileBody {
            file,
            offset: start as i64,
            end: end as i64,
            sendfile: s.sendfile,
            nopush: s.tcp_nopush,
        });
    }
    Handled::Done {
        status,
        header_bytes: n,
    }
}

/// Largest multipart/byteranges body built in memory.
const MULTIPART_MAX: u64 = 16 << 20;

/// A `multipart/byteranges` answer for several ranges (read with pread, sent from memory).
#[allow(clippy::too_many_arguments)]
fn multipart(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &RequestCtx,
    loc: LocationId,
    file: &File,
    ranges: &[crate::http::range::ByteRange],
    len: u64,
    path: &[u8],
) -> Handled {
    use std::os::unix::fs::FileExt;
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    let settings = &ir.settings[l.conf.settings.0 as usize];
    let ct = content_type(w.loaded, settings, path);
    // A boundary that cannot occur in the file's bytes by chance: time-derived digits.
    let boundary = format!(
        "{:020}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    );
    let mut body = Vec::new();
    for r in ranges {
        let _ = write!(
            body,
            "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            String::from_utf8_lossy(ct),
            r.start,
            r.end - 1
        );
        let at = body.len();
        body.resize(at + (r.end - r.start) as usize, 0);
        if file.read_exact_at(&mut body[at..], r.start).is_err() {
            elog!(
                w.elog,
                Crit,
                "read() \"{}\" failed while building a multipart answer",
                String::from_utf8_lossy(path)
            );
            return Handled::Status(500);
        }
    }
    let _ = write!(body, "\r\n--{boundary}--\r\n");
    let ctype = format!("multipart/byteranges; boundary={boundary}");
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(
        &mut wbuf,
        req,
        loc,
        206,
        Some(ctype.as_bytes()),
        Some(body.len() as u64),
    );
    w.add_headers(conn, req, loc, 206, &mut wbuf);
    let n = end_head(&mut wbuf);
    if !req.head.is_head() {
        wbuf.extend_from_slice(&body);
    }
    conn.wbuf = wbuf;
    Handled::Done {
        status: 206,
        header_bytes: n,
    }
}

/// The MIME type of `path` by its extension (ASCII case-insensitive), else default_type.
fn content_type<'a>(
    loaded: &'a crate::config::Loaded,
    settings: &'a proton_ir::Settings,
    path: &[u8],
) -> &'a [u8] {
    let ext = path
        .rsplit(|&b| b == b'/')
        .next()
        .and_then(|name| {
            name.iter()
                .rposition(|&b| b == b'.')
                .map(|i| &name[i + 1..])
        })
        .unwrap_or(b"");
    // The table's extensions are lowercase; compare without building a lowercase copy.
    loaded
        .ir
        .mime_types
        .get(settings.types.0 as usize)
        .and_then(|t| {
            t.binary_search_by(|(e, _)| e.bytes().cmp(ext.iter().map(u8::to_ascii_lowercase)))
                .ok()
                .map(|i| t[i].1.as_bytes())
        })
        .unwrap_or(settings.default_type.as_bytes())
}

/// `Last-Modified` and (with `etag on`) `ETag` of a file.
fn validators(out: &mut Vec<u8>, mtime: i64, etag: &[u8], use_etag: bool) {
    let mut date = [0u8; 29];
    crate::http::response::http_date(
        UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64),
        &mut date,
    );
    out.extend_from_slice(b"Last-Modified: ");
    out.extend_from_slice(&date);
    out.extend_from_slice(b"\r\n");
    if use_etag {
        out.extend_from_slice(b"ETag: ");
        out.extend_from_slice(etag);
        out.extend_from_slice(b"\r\n");
    }
}

/// `expires`: Expires and Cache-Control (nginx's headers filter); `mtime` for `modified`.
/// `now`: the current Unix second (the worker's clock of this loop round).
pub(crate) fn expires_headers(e: Expires, mtime: Option<i64>, now: i64, out: &mut Vec<u8>) {
    let (at, max_age) = match e {
        Expires::Off => return,
        Expires::Epoch => {
            out.extend_from_slice(
                b"Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n",
            );
            return;
        }
        Expires::Max => {
            out.extend_from_slice(
                b"Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\nCache-Control: max-age=315360000\r\n",
            );
            return;
        }
        Expires::After(s) => (now + s, s),
        Expires::Modified(s) => match mtime {
            Some(m) => (m + s, m + s - now),
            None => return,
        },
    };
    let mut date = [0u8; 29];
    crate::http::response::http_date(
        UNIX_EPOCH + Duration::from_secs(at.max(0) as u64),
        &mut date,
    );
    out.extend_from_slice(b"Expires: ");
    out.extend_from_slice(&date);
    out.extend_from_slice(b"\r\n");
    if max_age < 0 {
        out.extend_from_slice(b"Cache-Control: no-cache\r\n");
    } else {
        let _ = write!(out, "Cache-Control: max-age={max_age}\r\n");
    }
}

fn not_modified(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    mtime: i64,
    etag: &[u8],
    use_etag: bool,
) -> Handled {
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(&mut wbuf, req, loc, 304, None, None);
    validators(&mut wbuf, mtime, etag, use_etag);
    req.mtime = Some(mtime);
    w.add_headers(conn, req, loc, 304, &mut wbuf);
    let n = end_head(&mut wbuf);
    conn.wbuf = wbuf;
    Handled::Done {
        status: 304,
        header_bytes: n,
    }
}

fn range_not_satisfiable(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &RequestCtx,
    loc: LocationId,
    len: u64,
) -> Handled {
    let tokens = w.settings_for(loc).server_tokens != proton_ir::ServerTokens::Off;
    let mut body = std::mem::take(&mut w.scratch.page);
    body.clear();
    crate::http::response::error_page(416, tokens, &mut body);
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(
        &mut wbuf,
        req,
        loc,
        416,
        Some(b"text/html"),
        Some(body.len() as u64),
    );
    let _ = write!(wbuf, "Content-Range: bytes */{len}\r\n");
    let n = end_head(&mut wbuf);
    if !req.head.is_head() {
        wbuf.extend_from_slice(&body);
    }
    conn.wbuf = wbuf;
    w.scratch.page = body;
    Handled::Done {
        status: 416,
        header_bytes: n,
    }
}

fn redirect_slash(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &RequestCtx,
    loc: LocationId,
) -> Handled {
    let out = w.redirect_to_tmp(conn, req, 301, loc);
    Handled::Done {
        status: 301,
        header_bytes: out,
    }
}

/// An HTML listing of a directory.
fn autoindex(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &RequestCtx,
    loc: LocationId,
    uri: &[u8],
    path: &[u8],
    _error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    let Ok(rd) = std::fs::read_dir(path_of(path)) else {
        return Handled::Status(403);
    };
    let mut names: Vec<(String, bool, u64)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let m = e.metadata().ok()?;
            Some((name, m.is_dir(), m.len()))
        })
        .collect();
    names.sort();
    let u = String::from_utf8_lossy(uri);
    let mut body = format!("<html>\r\n<head><title>Index of {u}</title></head>\r\n<body>\r\n<h1>Index of {u}</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for (n, dir, size) in &names {
        let esc = html_escape(n);
        let href = url_escape(n);
        if *dir {
            body.push_str(&format!(
                "<a href=\"{href}/\">{esc}/</a>{}-\r\n",
                " ".repeat(51usize.saturating_sub(n.len() + 1))
            ));
        } else {
            body.push_str(&format!(
                "<a href=\"{href}\">{esc}</a>{}{size}\r\n",
                " ".repeat(51usize.saturating_sub(n.len()))
            ));
        }
    }
    body.push_str("</pre><hr></body>\r\n</html>\r\n");
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(
        &mut wbuf,
        req,
        loc,
        200,
        Some(b"text/html"),
        Some(body.len() as u64),
    );
    w.add_headers(conn, req, loc, 200, &mut wbuf);
    let n = end_head(&mut wbuf);
    if !req.head.is_head() {
        wbuf.extend_from_slice(body.as_bytes());
    }
    conn.wbuf = wbuf;
    Handled::Done {
        status: 200,
        header_bytes: n,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod alias_tests {
    use super::climbs;

    #[test]
    fn a_request_never_climbs_out_of_an_alias() {
        for (path, written, want) in [
            ("/data/../secret.txt", 6, true),
            ("/data/..", 6, true),
            ("/data/a/../b", 6, true),
            ("/data/a..b", 6, false),
            ("/data..x/y", 5, false),
            ("/data/x", 6, false),
            // `..` written by the configuration itself is its own business.
            ("/srv/../data/x", 13, false),
            ("/srv/../data/../x", 13, true),
            ("../x", 0, true),
            ("", 0, false),
        ] {
            assert_eq!(climbs(path.as_bytes(), written), want, "{path} {written}");
        }
    }
}
