//! Static files: root/alias, index, try_files, disable_symlinks, directories (301 to the
//! slashed URI, index, autoindex or 403), MIME types, charset labels and single-byte
//! recoding, ETag/Last-Modified with nginx's conditional requests (304, 412, If-Range),
//! ranges (206, multipart, 416, max_ranges), expires, and the body sent with sendfile.
//!
//! The URI is already normalised (no `..`), so `root + uri` cannot climb out of the root.

use super::conn::{Conn, FileBody};
use super::context::RequestCtx;
use super::file_cache::{FileInfo, FileRef, OpenError};
use super::filter;
use super::request::Handled;
use super::respond::end_head;
use super::vars::header;
use super::Worker;
use crate::elog;
use crate::http::coding::Coding;
use crate::http::request::Method;
use proton_ir::{Expires, GzipStatic, LocationId};
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
pub(crate) fn map_path(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    uri: &[u8],
    add_uri_to_alias: bool,
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
            } else if add_uri_to_alias {
                // nginx's add_uri_to_alias: a try_files candidate in a regex location is
                // looked for (and served) under the alias.
                out.extend_from_slice(uri);
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

/// nginx's `disable_symlinks` for `path` in location `loc`: true when it may be opened.
fn symlinks_allowed(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    path: &[u8],
) -> bool {
    symlink_check(w, conn, req, loc, path).is_ok()
}

/// nginx's `disable_symlinks` for `path` in location `loc`: `Err(status)` when a component
/// of the path (after the `from=` part) is a symbolic link (`on`), or a link whose owner is
/// not its target's (`if_not_owner`). The status is nginx's: under `on` a directory that is
/// a link fails as not a directory (404, nginx opens it with O_DIRECTORY|O_NOFOLLOW) and the
/// file itself as a loop (403); under `if_not_owner` both are 403. The final component is
/// also opened with O_NOFOLLOW under `on`: `Ok(true)` says so (`Ok(false)`: links are
/// allowed, also when `from=` covers the whole path, as nginx turns the check off then).
pub(crate) fn symlink_check(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    path: &[u8],
) -> Result<bool, u16> {
    use proton_ir::DisableSymlinks;
    let (owner, from) = match &w.settings_for(loc).disable_symlinks {
        DisableSymlinks::Off => return Ok(false),
        DisableSymlinks::On { from } => (false, from),
        DisableSymlinks::IfNotOwner { from } => (true, from),
    };
    // The `from=` part is opened as it is (nginx: a prefix that ends at a slash).
    let mut start = 0;
    if let Some(t) = from {
        let mut f = w.scratch.var_pool.borrow_mut().buf();
        w.ctx(conn, req, 0).expand(t, &mut f);
        let skip = if f.is_empty() || !path.starts_with(&f) {
            Some(0)
        } else if path.len() == f.len() {
            None
        } else if f.ends_with(b"/") {
            Some(f.len() - 1)
        } else if path.get(f.len()) == Some(&b'/') {
            Some(f.len())
        } else {
            Some(0)
        };
        w.scratch.var_pool.borrow_mut().give_buf(f);
        match skip {
            Some(s) => start = s,
            None => return Ok(false),
        }
    }
    let refused = |prefix: &[u8]| -> Option<bool> {
        let m = std::fs::symlink_metadata(path_of(prefix)).ok()?;
        if !m.file_type().is_symlink() {
            return Some(false);
        }
        if !owner {
            return Some(true);
        }
        let target = std::fs::metadata(path_of(prefix)).ok()?;
        Some(target.uid() != m.uid())
    };
    let mut i = start;
    while i < path.len() {
        let end = path[i + 1..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |p| i + 1 + p);
        // Empty, `.` and `..` components are not links.
        let comp = &path[i + 1..end];
        if !comp.is_empty() && comp != b"." && comp != b".." {
            match refused(&path[..end]) {
                Some(true) if !owner && end < path.len() => return Err(404),
                Some(true) => return Err(403),
                Some(false) => {}
                // Missing: the open that follows answers for it.
                None => return Ok(!owner),
            }
        }
        i = end;
    }
    Ok(!owner)
}

/// The Last-Modified time the response will carry: the file's, unless the location's
/// `add_header Last-Modified` replaces it (nginx's add_header sets the time itself; an empty
/// or unparsable value leaves none).
fn last_modified(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    mtime: i64,
) -> Option<i64> {
    let Some(h) = w
        .settings_for(loc)
        .add_headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case("last-modified"))
    else {
        return Some(mtime);
    };
    let mut v = w.scratch.var_pool.borrow_mut().buf();
    w.ctx(conn, req, 200).expand(&h.value, &mut v);
    let t = crate::http::response::parse_http_date(&v)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    w.scratch.var_pool.borrow_mut().give_buf(v);
    t
}

/// Logs a file refused by `disable_symlinks` as nginx does (its open fails with ELOOP, or
/// ENOTDIR for a directory).
fn log_symlink(w: &mut Worker<'_>, conn: &Conn, path: &[u8], status: u16) {
    let why = if status == 404 {
        "20: Not a directory"
    } else {
        "40: Too many levels of symbolic links"
    };
    elog!(
        w.elog,
        Error,
        "open() \"{}\" failed ({why}), client: {}",
        String::from_utf8_lossy(path),
        conn.peer.ip()
    );
}

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// nginx's try_files (its precontent phase): the first candidate that exists becomes the
/// URI (`serve_found`: a file is sent here; else the location's handler, its upstream, takes
/// the request on with that URI: `None`), else the last argument answers (`=code`, a named
/// location, an internal redirect). `None` too without try_files, or for a directory found.
pub(crate) fn try_files(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    error_status: Option<(u16, Option<u16>)>,
    serve_found: bool,
) -> Option<Handled> {
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
            let inside = map_path(w, conn, req, loc, &cand, true, &mut path);
            let found = inside
                && symlinks_allowed(w, conn, req, loc, &path)
                && stat_file(w, loc, &path).is_ok_and(|m| if dir { m.is_dir } else { m.is_file });
            // A directory found under a regex location's alias leaves the URI as it is.
            let regex_alias = l.conf.alias.as_ref().is_some_and(|a| a.prefix.is_empty());
            if found && !(dir && regex_alias) {
                req.uri.clear();
                req.uri.extend_from_slice(&cand);
            }
            if found {
                w.note_mirrors(conn, req, loc);
                if dir || !serve_found {
                    // Served from the URI: its index, or a 301 to add the slash (or by
                    // the location's upstream, which gets the URI found).
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
        return answer;
    }
    None
}

/// Serves the current URI from location `loc`.
pub(crate) fn serve(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    if let Some(answer) = try_files(w, conn, req, loc, error_status, true) {
        return answer;
    }
    if !static_method(req, error_status) {
        return Handled::Status(405);
    }
    let mut path = std::mem::take(&mut w.scratch.path);
    let inside = map_path(w, conn, req, loc, &req.uri, false, &mut path);
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
/// the file is found); other methods are 405 at once. After error_page or an upstream's
/// X-Accel-Redirect the method is GET.
fn static_method(req: &RequestCtx, error_status: Option<(u16, Option<u16>)>) -> bool {
    error_status.is_some()
        || req.xar
        || matches!(req.head.method, Method::Get | Method::Head | Method::Post)
}

/// A POST for a file that exists (nginx: 405 after the lookup, so a missing file is 404).
fn refused_post(req: &RequestCtx, error_status: Option<(u16, Option<u16>)>) -> bool {
    error_status.is_none() && !req.xar && req.head.method == Method::Post
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
        if name.starts_with(b"/") {
            // An absolute index is a URI: nginx redirects to it internally at once, without
            // looking for a file (the arguments stay).
            req.uri.clear();
            req.uri.extend_from_slice(&name);
            found = true;
            break;
        }
        p.clear();
        p.extend_from_slice(path);
        p.extend_from_slice(&name);
        if symlinks_allowed(w, conn, req, loc, &p) && stat_file(w, loc, &p).is_ok_and(|m| m.is_file)
        {
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

/// Stats a file (the existence tests of try_files and index), through the location's
/// `open_file_cache` if it has one.
fn stat_file(w: &mut Worker<'_>, loc: LocationId, path: &[u8]) -> std::io::Result<FileInfo> {
    let ir = &w.loaded.ir;
    let conf = ir.settings[ir.locations[loc.0 as usize].conf.settings.0 as usize].open_file_cache;
    w.file_caches.stat(&conf, path, w.now)
}

/// Opens a file to serve, through the location's `open_file_cache` if it has one.
fn open_file(
    w: &mut Worker<'_>,
    loc: LocationId,
    path: &[u8],
) -> Result<(FileRef, FileInfo), OpenError> {
    let ir = &w.loaded.ir;
    let conf = ir.settings[ir.locations[loc.0 as usize].conf.settings.0 as usize].open_file_cache;
    w.file_caches.open(&conf, path, w.now)
}

/// Opens a file with O_NOFOLLOW (and O_NONBLOCK) and stats it: `disable_symlinks on`
/// refuses a final link, so such an open never goes through the cache.
fn open_nofollow(path: &[u8]) -> Result<(FileRef, FileInfo), OpenError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(path_of(path))
        .map_err(OpenError::Open)?;
    let m = f.metadata().map_err(OpenError::Stat)?;
    Ok((FileRef::Owned(f), FileInfo::of(&m)))
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
    let nofollow = match symlink_check(w, conn, req, loc, path) {
        Ok(nofollow) => nofollow,
        Err(status) => {
            log_symlink(w, conn, path, status);
            return Handled::Status(status);
        }
    };
    // Non-blocking: opening a FIFO (or a device) for reading would otherwise block the
    // whole event loop until a writer came; such a file is then refused below. Through
    // the location's `open_file_cache` when it has one; with `disable_symlinks on` the
    // file is opened with O_NOFOLLOW, never from the cache.
    let pre = precompressed(w, conn, req, loc, path, error_status);
    let gzipped = pre.as_ref().map(|(c, _, _)| *c);
    let opened = if let Some((_, file, meta)) = pre {
        Ok((file, meta))
    } else if nofollow {
        open_nofollow(path)
    } else {
        open_file(w, loc, path)
    };
    let (file, meta) = match opened {
        Ok(x) => x,
        Err(OpenError::Open(e)) => {
            let (status, level) = match e.kind() {
                ErrorKind::NotFound => (404, proton_ir::LogLevel::Error),
                ErrorKind::PermissionDenied => (403, proton_ir::LogLevel::Error),
                _ if e.raw_os_error() == Some(20) => (404, proton_ir::LogLevel::Error), // ENOTDIR
                _ if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                    (403, proton_ir::LogLevel::Error)
                }
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
        Err(OpenError::Stat(e)) => {
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
    if meta.is_dir {
        req.set_slash_redirect();
        return redirect_slash(w, conn, req, loc);
    }
    if !meta.is_file {
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
    let len = meta.len;
    let mtime = meta.mtime;
    let mut etag_buf = [0u8; 40];
    let etag_len = crate::http::etag::etag(mtime, len, &mut etag_buf);
    let etag = &etag_buf[..etag_len];
    let buf = &conn.rbuf;
    // After error_page: its `=code`, the file's own 200 with `=` alone, else the error's.
    let mut status = match error_status {
        Some((_, Some(0))) | None => 200,
        Some((_, Some(code))) => code,
        Some((orig, None)) => orig,
    };
    if error_status.is_none() {
        // Conditional requests (nginx's not_modified filter).
        let c = crate::http::conditional::Conditions {
            if_unmodified_since: header(&req.head, buf, b"if-unmodified-since"),
            if_match: header(&req.head, buf, b"if-match"),
            if_modified_since: header(&req.head, buf, b"if-modified-since"),
            if_none_match: header(&req.head, buf, b"if-none-match"),
        };
        let tag = settings.etag.then_some(etag);
        match crate::http::conditional::evaluate(&c, Some(mtime), tag, settings.if_modified_since) {
            Some(304) => return not_modified(w, conn, req, loc, mtime, etag, settings.etag),
            Some(code) => return Handled::Status(code),
            None => {}
        }
    }
    // Range: one range → 206; unsatisfiable → 416; otherwise the whole file.
    let mut start = 0u64;
    let mut end = len;
    let mut content_range: Option<(u64, u64)> = None;
    let max_ranges = settings
        .max_ranges
        .map_or(crate::http::range::MAX_RANGES, |m| {
            (m as usize).min(crate::http::range::MAX_RANGES)
        });
    let ct = content_type(w.loaded, settings, path);
    // A body the gzip or gunzip filter will code has no ranges (nginx's filters turn them
    // off before the range filter runs).
    let coded = match gzipped {
        Some(Coding::Gzip) => settings.gzip.gunzip && !w.gzip_ok(conn, req, settings, &|_| None),
        Some(_) => false,
        None => w.will_change_body(conn, req, settings, status, ct, len),
    };
    let ranges_on = settings.max_ranges != Some(0) && !coded;
    let buf = &conn.rbuf;
    if status == 200 && ranges_on {
        if let Some(r) = header(&req.head, buf, b"range") {
            // nginx's range filter: an entity tag (ends with `"`) must equal the ETag sent,
            // a date must equal Last-Modified; otherwise the whole file.
            let if_range_ok = header(&req.head, buf, b"if-range").is_none_or(|v| {
                if v.len() >= 2 && v.ends_with(b"\"") {
                    settings.etag && v == etag
                } else {
                    let lm = last_modified(w, conn, req, loc, mtime);
                    crate::http::response::parse_http_date(v)
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .is_some_and(|d| Some(d.as_secs() as i64) == lm)
                }
            });
            if if_range_ok {
                let mut ranges = [crate::http::range::ByteRange::default(); 16];
                match crate::http::range::parse_range(r, len, &mut ranges[..max_ranges]) {
                    crate::http::range::RangeResult::Satisfiable(n) if n > 1 => {
                        let total: u64 = ranges[..n].iter().map(|r| r.end - r.start).sum();
                        if total <= MULTIPART_MAX {
                            let v = (mtime, etag, settings.etag);
                            return multipart(w, conn, req, loc, &file, &ranges[..n], len, path, v);
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
    let use_etag = settings.etag;
    let mut ctype = std::mem::take(&mut w.scratch.ctype);
    let (relabelled, recode) = match charset_type(w, conn, req, loc, ct, &mut ctype) {
        // A `.gz` cannot be recoded: then it is not labelled either (nginx's charset
        // filter on gzip_static's answers).
        (_, Some(_)) if gzipped.is_some() => (false, None),
        r => r,
    };
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(
        &mut wbuf,
        req,
        loc,
        status,
        Some(if relabelled { &ctype } else { ct }),
        Some(end - start),
    );
    w.scratch.ctype = ctype;
    validators(&mut wbuf, mtime, etag, use_etag);
    if let Some(c) = gzipped {
        wbuf.extend_from_slice(b"Content-Encoding: ");
        wbuf.extend_from_slice(c.token());
        wbuf.extend_from_slice(b"\r\n");
    }
    if let Some((s, e)) = content_range {
        let _ = write!(
            wbuf,
            "Content-Range: bytes {}-{}/{}\r\n",
            s,
            e.saturating_sub(1),
            len
        );
    }
    if error_status.is_none() && ranges_on && status == 200 {
        wbuf.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    }
    req.mtime = Some(mtime);
    w.add_headers(conn, req, loc, status, &mut wbuf);
    let n = end_head(&mut wbuf);
    if let Some(recode) = recode.filter(|_| !req.head.is_head() && end > start) {
        // Recoded bodies are read into memory (single-byte tables keep the length).
        use std::os::unix::fs::FileExt;
        let len = (end - start) as usize;
        wbuf.resize(n + len, 0);
        if file.read_exact_at(&mut wbuf[n..], start).is_err() {
            wbuf.truncate(n);
            conn.wbuf = wbuf;
            return Handled::Status(500);
        }
        recode.apply(&w.loaded.ir, &mut wbuf[n..]);
        conn.wbuf = wbuf;
        return Handled::Done {
            status,
            header_bytes: n,
        };
    }
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
        // The connection owns its descriptor (a cached one is duplicated: keeping the
        // `Rc` would make every connection larger, and this is only for bodies > 8 KiB).
        let file = match file.into_owned() {
            Ok(f) => f,
            Err(e) => {
                elog!(
                    w.elog,
                    Crit,
                    "dup() \"{}\" failed ({e}), client: {}",
                    String::from_utf8_lossy(path),
                    conn.peer.ip(),
                    e = crate::log::OsError(&e)
                );
                // The head is out already: the response is cut short and closed.
                conn.close_after = true;
                return Handled::Done {
                    status,
                    header_bytes: n,
                };
            }
        };
        if let Some(req) = conn.req.as_deref_mut() {
            req.sendfile_max_chunk = s.sendfile_max_chunk;
        }
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

/// nginx's gzip_static, and the brotli and zstd modules' `brotli_static`/`zstd_static`:
/// `PATH.gz` (`.br`, `.zst`) is sent instead of `PATH`, with its `Content-Encoding`, for a
/// GET or HEAD whose client takes that coding (`on`; among several, the client's
/// q-values and then the server's preference choose) or for any client (`always`: gzip
/// first; the gunzip filter then decodes a `.gz` for those that do not take gzip). `None`:
/// the file itself is served (no such file, or the client takes none of them — which, a
/// `.gz` being there, still makes `gzip_vary` add its `Vary`).
fn precompressed(
    w: &mut Worker<'_>,
    conn: &Conn,
    req: &mut RequestCtx,
    loc: LocationId,
    path: &[u8],
    error_status: Option<(u16, Option<u16>)>,
) -> Option<(Coding, FileRef, FileInfo)> {
    let loaded = w.loaded;
    let s = loaded
        .ir
        .locations
        .get(loc.0 as usize)
        .and_then(|l| loaded.ir.settings.get(l.conf.settings.0 as usize))?;
    let get =
        error_status.is_some() || req.xar || matches!(req.head.method, Method::Get | Method::Head);
    if !get || req.uri.ends_with(b"/") {
        return None;
    }
    let mut on = [Coding::Gzip; 3];
    let mut n = 0;
    for c in filter::PREFERENCE {
        if filter::static_of(s, c).0 == GzipStatic::On {
            on[n] = c;
            n += 1;
        }
    }
    let always = [Coding::Gzip, Coding::Br, Coding::Zstd]
        .into_iter()
        .filter(|&c| filter::static_of(s, c).0 == GzipStatic::Always);
    if n == 0 && always.clone().next().is_none() {
        return None;
    }
    // The `on` codings the client takes, best first (the next is tried when a file is
    // missing), then the `always` ones; for Vary, whether a `.gz` the client does not get
    // is there (nginx opens it only with gzip_vary on).
    let mut order = [None; 6];
    let mut k = 0;
    while n > 0 {
        let Some(c) = w.best_coding(conn, req, s, &|_| None, &on[..n]) else {
            break;
        };
        order[k] = Some(c);
        k += 1;
        if let Some(i) = on[..n].iter().position(|&o| o == c) {
            on.copy_within(i + 1..n, i);
            n -= 1;
        }
    }
    for (slot, c) in order[k..].iter_mut().zip(always) {
        *slot = Some(c);
    }
    let wanted = |c: Coding| order[..k].contains(&Some(c));
    let gz_unwanted = on[..n].contains(&Coding::Gzip) && s.gzip.vary;
    let mut found = None;
    let mut candidate = w.scratch.var_pool.get_mut().buf();
    for c in order.into_iter().flatten() {
        if let Some((file, meta)) = open_variant(w, conn, req, loc, path, c, &mut candidate) {
            if meta.is_file {
                found = Some((c, file, meta));
                break;
            }
        }
    }
    if found.is_none() && gz_unwanted {
        if open_variant(w, conn, req, loc, path, Coding::Gzip, &mut candidate).is_some() {
            req.gzip_vary = true;
        }
    } else if found.as_ref().is_some_and(|(c, _, _)| wanted(*c)) {
        req.gzip_vary = true;
    }
    w.scratch.var_pool.get_mut().give_buf(candidate);
    found
}

/// Opens `PATH` + the suffix of coding `c` (through the location's open-file cache and
/// symlink rules) into `buf`.
fn open_variant(
    w: &mut Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    path: &[u8],
    c: Coding,
    buf: &mut Vec<u8>,
) -> Option<(FileRef, FileInfo)> {
    let suffix = filter::static_of(w.settings_for(loc), c).1;
    buf.clear();
    buf.extend_from_slice(path);
    buf.extend_from_slice(suffix);
    match symlink_check(w, conn, req, loc, buf) {
        Ok(true) => open_nofollow(buf).ok(),
        Ok(false) => open_file(w, loc, buf).ok(),
        Err(_) => None,
    }
}

/// Largest multipart/byteranges body built in memory.
pub(crate) const MULTIPART_MAX: u64 = 16 << 20;

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
    (mtime, etag, use_etag): (i64, &[u8], bool),
) -> Handled {
    use std::os::unix::fs::FileExt;
    let ir = &w.loaded.ir;
    let l = &ir.locations[loc.0 as usize];
    let settings = &ir.settings[l.conf.settings.0 as usize];
    let ct = content_type(w.loaded, settings, path);
    let mut ctype = Vec::new();
    let (relabelled, recode) = charset_type(w, conn, req, loc, ct, &mut ctype);
    let ct: &[u8] = if relabelled { &ctype } else { ct };
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
        if let Some(r) = recode {
            r.apply(&w.loaded.ir, &mut body[at..]);
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
    validators(&mut wbuf, mtime, etag, use_etag);
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
pub(crate) fn content_type<'a>(
    loaded: &'a crate::config::Loaded,
    settings: &'a proton_ir::Settings,
    path: &[u8],
) -> &'a [u8] {
    type_by_ext(loaded, settings, path).unwrap_or(settings.default_type.as_bytes())
}

/// The MIME type the `types` of `settings` give `path`'s extension, if any.
pub(crate) fn type_by_ext<'a>(
    loaded: &'a crate::config::Loaded,
    settings: &'a proton_ir::Settings,
    path: &[u8],
) -> Option<&'a [u8]> {
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
}

/// A recoding of a response body: an index into `Ir::charset_maps` and the direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recode {
    map: usize,
    forward: bool,
}

impl Recode {
    /// Recodes `body` in place.
    pub(crate) fn apply(self, ir: &proton_ir::Ir, body: &mut [u8]) {
        let Some(m) = ir.charset_maps.get(self.map) else {
            return;
        };
        let table = if self.forward {
            &m.forward
        } else {
            &m.backward
        };
        for b in body {
            *b = table.get(usize::from(*b)).copied().unwrap_or(*b);
        }
    }
}

/// nginx's charset filter on a response of type `ct` from `loc`: writes the `Content-Type`
/// value into `out` (`; charset=NAME` added when the type is in `charset_types` and names no
/// charset yet) and says whether the body must be recoded (`source_charset` and `charset`
/// differ and a `charset_map` links them). False when `ct` is to be sent unchanged.
pub(crate) fn charset_type(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    ct: &[u8],
    out: &mut Vec<u8>,
) -> (bool, Option<Recode>) {
    let ir = &w.loaded.ir;
    let Some(l) = ir.locations.get(loc.0 as usize) else {
        return (false, None);
    };
    let c = &ir.settings[l.conf.settings.0 as usize].charset;
    let Some(name) = &c.charset else {
        return (false, None);
    };
    let base = ct.split(|&b| b == b';').next().unwrap_or(ct);
    let listed = c.types.first().is_some_and(|t| t == "*")
        || c.types
            .binary_search_by(|t| t.bytes().cmp(base.iter().map(u8::to_ascii_lowercase)))
            .is_ok();
    if !listed || memchr::memmem::find(ct, b"charset=").is_some() {
        return (false, None);
    }
    out.clear();
    out.extend_from_slice(ct);
    out.extend_from_slice(b"; charset=");
    let at = out.len();
    w.ctx(conn, req, 0).expand(name, out);
    if out.len() == at {
        return (false, None);
    }
    let recode = c
        .source
        .as_deref()
        .and_then(|src| find_recode(ir, src.as_bytes(), &out[at..]));
    (true, recode)
}

/// The `charset_map` that recodes from charset `src` to `dst` (names compared ignoring
/// case), in the direction needed; `None` when they are the same charset or no map links
/// them.
pub(crate) fn find_recode(ir: &proton_ir::Ir, src: &[u8], dst: &[u8]) -> Option<Recode> {
    if dst.eq_ignore_ascii_case(src) {
        return None;
    }
    ir.charset_maps.iter().enumerate().find_map(|(i, m)| {
        let (from, to) = (m.from.as_bytes(), m.to.as_bytes());
        if src.eq_ignore_ascii_case(from) && dst.eq_ignore_ascii_case(to) {
            Some(Recode {
                map: i,
                forward: true,
            })
        } else if src.eq_ignore_ascii_case(to) && dst.eq_ignore_ascii_case(from) {
            Some(Recode {
                map: i,
                forward: false,
            })
        } else {
            None
        }
    })
}

/// nginx's charset filter on a proxied response whose `Content-Type` is `ct`: the value to
/// send into `out` (true when it changed) and the recoding of the body. A type without a
/// charset is labelled as [`charset_type`] does; one that names a charset is relabelled and
/// recoded from it only with `override_charset on`.
pub(crate) fn proxied_charset_type(
    w: &Worker<'_>,
    conn: &Conn,
    req: &RequestCtx,
    loc: LocationId,
    ct: &[u8],
    out: &mut Vec<u8>,
) -> (bool, Option<Recode>) {
    let lower_at = |s: &[u8], pat: &[u8]| {
        s.windows(pat.len())
            .position(|win| win.eq_ignore_ascii_case(pat))
    };
    let Some(at) = lower_at(ct, b"charset=") else {
        return charset_type(w, conn, req, loc, ct, out);
    };
    let ir = &w.loaded.ir;
    let Some(l) = ir.locations.get(loc.0 as usize) else {
        return (false, None);
    };
    let c = &ir.settings[l.conf.settings.0 as usize].charset;
    if !c.override_charset {
        return (false, None);
    }
    // The upstream's charset: up to `;`, without quotes.
    let rest = &ct[at + 8..];
    let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    let upstream = crate::http::request::trim_ows(&rest[..end]);
    let upstream = upstream
        .strip_prefix(b"\"")
        .and_then(|u| u.strip_suffix(b"\""))
        .unwrap_or(upstream);
    // The type without its parameters, then labelled with the configured charset.
    let base_end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
    let base = crate::http::request::trim_ows(&ct[..base_end]);
    let (relabelled, _) = charset_type(w, conn, req, loc, base, out);
    if !relabelled {
        return (false, None);
    }
    let dst_at = out.len() - out.iter().rev().position(|&b| b == b'=').unwrap_or(0);
    let recode = find_recode(ir, upstream, &out[dst_at..]);
    (true, recode)
}

/// nginx's charset filter for a proxied answer with `X-Accel-Charset: dst`: the answer is
/// labelled `dst` and its body recoded into it from the charset its `Content-Type` (`ct`)
/// names, else from `source_charset` (without either, only labelled). `Err` with nginx's
/// error line when `dst` is a charset the configuration does not know, or no `charset_map`
/// links the two (the answer then goes unchanged). Writes the new type into `out`; true when
/// it changed.
pub(crate) fn accel_charset_type(
    ir: &proton_ir::Ir,
    c: &proton_ir::Charset,
    ct: &[u8],
    dst: &[u8],
    out: &mut Vec<u8>,
) -> Result<(bool, Option<Recode>), String> {
    let known = |name: &[u8]| {
        ir.charset_maps.iter().any(|m| {
            name.eq_ignore_ascii_case(m.from.as_bytes())
                || name.eq_ignore_ascii_case(m.to.as_bytes())
        }) || ir.settings.iter().any(|s| {
            s.charset
                .source
                .as_deref()
                .is_some_and(|n| name.eq_ignore_ascii_case(n.as_bytes()))
                || s.charset
                    .charset
                    .as_ref()
                    .and_then(|t| t.as_literal())
                    .is_some_and(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        })
    };
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if !known(dst) {
        return Err(format!("unknown charset \"{}\" to override", show(dst)));
    }
    if ct.is_empty() {
        return Ok((false, None));
    }
    let base_end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
    let base = crate::http::request::trim_ows(&ct[..base_end]);
    // The answer's own charset (up to `;`, without quotes), else source_charset.
    let own = ct
        .windows(8)
        .position(|w| w.eq_ignore_ascii_case(b"charset="))
        .map(|at| {
            let rest = &ct[at + 8..];
            let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
            let v = crate::http::request::trim_ows(&rest[..end]);
            v.strip_prefix(b"\"")
                .and_then(|u| u.strip_suffix(b"\""))
                .unwrap_or(v)
        });
    let src = own.or(c.source.as_deref().map(str::as_bytes));
    let recode = match src {
        Some(src) if !src.eq_ignore_ascii_case(dst) => match find_recode(ir, src, dst) {
            Some(r) => Some(r),
            None => {
                return Err(format!(
                    "no \"charset_map\" between the charsets \"{}\" and \"{}\"",
                    show(src),
                    show(dst)
                ))
            }
        },
        _ => None,
    };
    out.clear();
    out.extend_from_slice(base);
    out.extend_from_slice(b"; charset=");
    out.extend_from_slice(dst);
    Ok((true, recode))
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

/// `expires`: Expires and Cache-Control (nginx's headers filter, `ngx_http_set_expires`);
/// `mtime` for `modified`; `now`: the current Unix second (the worker's clock of this loop
/// round). `Expires::Variable` is parsed by the caller first.
pub(crate) fn expires_headers(e: &Expires, mtime: Option<i64>, now: i64, out: &mut Vec<u8>) {
    let (at, max_age, conf_negative) = match *e {
        Expires::Off | Expires::Variable { .. } => return,
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
        Expires::Daily(t) => {
            // The next time the day reaches second `t` (UTC, the runtime's local time).
            let today = now - now.rem_euclid(86_400);
            let mut at = today + t;
            if at <= now {
                at += 86_400;
            }
            (at, at - now, false)
        }
        Expires::After(s) => (now + s, s, s < 0),
        Expires::Modified(s) => match mtime {
            Some(m) => (m + s, m + s - now, s < 0),
            None => (now + s, s, s < 0),
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
    if conf_negative || max_age < 0 {
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

/// A directory listing (`autoindex_format`), as nginx's autoindex module.
fn autoindex(
    w: &mut Worker<'_>,
    conn: &mut Conn,
    req: &RequestCtx,
    loc: LocationId,
    uri: &[u8],
    path: &[u8],
    _error_status: Option<(u16, Option<u16>)>,
) -> Handled {
    use super::autoindex::{self as ai, Entry};
    use proton_ir::AutoindexFormat;
    let s = w.settings_for(loc);
    let (exact, localtime) = (s.autoindex_exact_size, s.autoindex_localtime);
    let mut format = s.autoindex_format;
    let mut callback = None;
    if format == AutoindexFormat::Jsonp {
        match ai::jsonp_callback(&req.args) {
            Ok(Some(cb)) => callback = Some(cb),
            Ok(None) => format = AutoindexFormat::Json,
            Err(()) => {
                elog!(
                    w.elog,
                    Info,
                    "client sent invalid callback name: \"{}\"",
                    String::from_utf8_lossy(&req.args)
                );
                return Handled::Status(400);
            }
        }
    }
    // The directory path without its final slash, as nginx opens it.
    let dir_path = match path {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        p => p,
    };
    let rd = match std::fs::read_dir(path_of(dir_path)) {
        Ok(rd) => rd,
        Err(e) => {
            let status = match e.kind() {
                ErrorKind::NotFound => 404,
                ErrorKind::PermissionDenied => 403,
                _ if e.raw_os_error() == Some(20) || e.raw_os_error() == Some(36) => 404,
                _ => 500,
            };
            elog!(
                w.elog,
                Error,
                "opendir() \"{}\" failed ({e})",
                String::from_utf8_lossy(dir_path),
                e = crate::log::OsError(&e)
            );
            return Handled::Status(status);
        }
    };
    // The listing allocates (names, sorting), as nginx's does from its request pool.
    let mut entries: Vec<Entry> = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().as_bytes().to_vec();
        if name.first() == Some(&b'.') {
            continue;
        }
        // stat() follows links; a dangling link is listed as itself (lstat).
        let m = match std::fs::metadata(e.path()) {
            Ok(m) => m,
            Err(err) if err.kind() == ErrorKind::PermissionDenied => continue,
            Err(_) => match std::fs::symlink_metadata(e.path()) {
                Ok(m) => m,
                Err(_) => continue,
            },
        };
        entries.push(Entry {
            name,
            dir: m.is_dir(),
            file: m.is_file(),
            mtime: m.mtime(),
            size: m.len(),
        });
    }
    ai::sort(&mut entries);
    let (ct, fixed_charset): (&[u8], bool) = match format {
        AutoindexFormat::Html => (b"text/html", false),
        AutoindexFormat::Xml => (b"text/xml", true),
        AutoindexFormat::Json => (b"application/json", false),
        AutoindexFormat::Jsonp => (b"application/javascript", false),
    };
    let mut ctype = std::mem::take(&mut w.scratch.ctype);
    let relabelled = if fixed_charset {
        // nginx's XML listing names its charset itself.
        ctype.clear();
        ctype.extend_from_slice(ct);
        ctype.extend_from_slice(b"; charset=utf-8");
        true
    } else {
        charset_type(w, conn, req, loc, ct, &mut ctype).0
    };
    let utf8 = relabelled && ctype.to_ascii_lowercase().ends_with(b"charset=utf-8");
    let mut body = Vec::new();
    let gmtoff = if localtime { local_offset() } else { 0 };
    ai::write(
        format, uri, &entries, utf8, exact, gmtoff, callback, &mut body,
    );
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    w.start_head(
        &mut wbuf,
        req,
        loc,
        200,
        Some(if relabelled { &ctype } else { ct }),
        Some(body.len() as u64),
    );
    w.scratch.ctype = ctype;
    w.add_headers(conn, req, loc, 200, &mut wbuf);
    let n = end_head(&mut wbuf);
    if !req.head.is_head() {
        wbuf.extend_from_slice(&body);
    }
    conn.wbuf = wbuf;
    Handled::Done {
        status: 200,
        header_bytes: n,
    }
}

/// The offset of local time from UTC in seconds, for `autoindex_localtime`. Proton's
/// local time is UTC (as `$time_local`), so this is 0.
fn local_offset() -> i64 {
    0
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
