//! Writing responses into the connection's buffer (head and small bodies), the cached Date
//! header, and the access logs.

use super::vars::Ctx;
use super::Worker;
use crate::config::Loaded;
use crate::http::response::{write_num_header, write_status_line, DateCache};
use proton_ir::{AccessLog, LogEscape, LogFileCache, LogFormatId, Settings};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The `Date` value, reformatted at most once a second.
pub(crate) struct DateHeader {
    cache: DateCache,
    /// The monotonic time at which the wall-clock second changes next: the clock is read
    /// again only then (one `clock_gettime` per second instead of one per loop round).
    next_second: Instant,
    /// `$time_local` and the second it was formatted for.
    local: Vec<u8>,
    local_secs: u64,
    /// `Server: …` and `Date: …` lines of a response head, without and with the version
    /// (`server_tokens`), and the second they were made for: one copy per response.
    server_date: [Vec<u8>; 2],
    server_date_secs: i64,
}

impl DateHeader {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        let mut d = DateHeader {
            cache: DateCache::default(),
            next_second: now,
            local: Vec::new(),
            local_secs: u64::MAX,
            server_date: [Vec::new(), Vec::new()],
            server_date_secs: i64::MIN,
        };
        d.refresh(now);
        d
    }

    /// Brings the cached wall-clock second up to date; `mono` is the loop round's clock.
    pub(crate) fn refresh(&mut self, mono: Instant) {
        if mono < self.next_second {
            return;
        }
        let since = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let to_next = 1_000_000_000 - u64::from(since.subsec_nanos());
        self.next_second = mono + Duration::from_nanos(to_next);
        let secs = since.as_secs();
        if secs != self.local_secs {
            self.local_secs = secs;
            self.local.clear();
            self.local
                .extend_from_slice(super::vars::time_local().as_bytes());
        }
    }

    /// The current Unix second, as of this loop round.
    pub(crate) fn unix_secs(&self) -> i64 {
        i64::try_from(self.local_secs).unwrap_or(0)
    }

    /// `$time_local` of the current second.
    pub(crate) fn time_local(&self) -> &[u8] {
        &self.local
    }
    /// The `Server` and `Date` lines of a response head (`server_tokens` adds the version),
    /// in that order; the `Server` line is the first [`server_line`]`(server_tokens).len()`
    /// bytes.
    pub(crate) fn server_and_date(&mut self, server_tokens: bool) -> &[u8] {
        let secs = self.unix_secs();
        if secs != self.server_date_secs {
            self.server_date_secs = secs;
            let date = self.cache.get_secs(secs);
            for (line, tokens) in self.server_date.iter_mut().zip([false, true]) {
                line.clear();
                line.extend_from_slice(server_line(tokens));
                line.extend_from_slice(b"Date: ");
                line.extend_from_slice(date);
                line.extend_from_slice(b"\r\n");
            }
        }
        &self.server_date[usize::from(server_tokens)]
    }
}

/// The `Server` header line (`server_tokens` adds the version).
pub(crate) fn server_line(server_tokens: bool) -> &'static [u8] {
    if server_tokens {
        concat!("Server: proton/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes()
    } else {
        b"Server: proton\r\n"
    }
}

/// The parts of a response head besides status and body.
pub(crate) struct Head<'h> {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'h [u8]>,
    pub(crate) content_length: Option<u64>,
    pub(crate) keep_alive: bool,
    pub(crate) keepalive_header_secs: Option<u64>,
    pub(crate) server_tokens: bool,
}

/// Writes status line and the common headers; the caller adds its own headers and then
/// calls [`end_head`].
pub(crate) fn begin_head(w: &mut Worker<'_>, out: &mut Vec<u8>, h: &Head<'_>) {
    // nginx answers HTTP/1.1 whatever the request's version.
    write_status_line(out, 1, h.status);
    out.extend_from_slice(w.date.server_and_date(h.server_tokens));
    if let Some(ct) = h.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = h.content_length {
        write_num_header(out, b"Content-Length: ", n);
    }
    if h.keep_alive {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
        if let Some(t) = h.keepalive_header_secs {
            write_num_header(out, b"Keep-Alive: timeout=", t);
        }
    } else {
        out.extend_from_slice(b"Connection: close\r\n");
    }
}

/// The answer of a location whose whole handling is `return CODE "constant text"` (one
/// literal, no `add_header`, no `expires`, a status that has a body and is not a redirect):
/// the head after the `Server` and `Date` lines, for a kept and a closed connection, and
/// the body, made once per worker so answering is a handful of copies. What it holds is
/// what [`begin_head`] + `add_headers` + [`end_head`] write for such a location (the
/// integration test `constant_return_matches_the_general_path` compares the two).
pub(crate) struct ConstReturn {
    pub(crate) code: u16,
    /// `Content-Type`, `Content-Length`, `Connection: keep-alive` [, `Keep-Alive`], blank line.
    pub(crate) keep_tail: Vec<u8>,
    /// The same with `Connection: close`.
    pub(crate) close_tail: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

/// The [`ConstReturn`] of every location of `ir` that has one, by location id (boxed: most
/// locations have none). Built by the master with the rest of [`crate::config::Loaded`], so
/// the workers share it.
pub(crate) fn const_returns(ir: &proton_ir::Ir) -> Vec<Option<Box<ConstReturn>>> {
    ir.locations
        .iter()
        .map(|l| {
            let s = ir.settings.get(l.conf.settings.0 as usize)?;
            let [proton_ir::ScriptOp::Return {
                code,
                text: Some(t),
            }] = l.conf.script.as_slice()
            else {
                return None;
            };
            let [proton_ir::Part::Literal(lit)] = t.parts.as_slice() else {
                return None;
            };
            let code = *code;
            let plain = (200..600).contains(&code)
                && !matches!(code, 204 | 304 | 444 | 301 | 302 | 303 | 307 | 308);
            if !plain
                || !s.add_headers.is_empty()
                || s.expires != proton_ir::Expires::Off
                || s.charset.charset.is_some()
                // (The body filters decide per request: compression, sub_filter.)
                || s.gzip.enable
                || s.brotli.enable
                || s.zstd.enable
                || !s.sub_filter.pairs.is_empty()
                || s.ssi.enable
                || !s.addition.before.is_empty()
                || !s.addition.after.is_empty()
            {
                return None;
            }
            let mut common = Vec::new();
            common.extend_from_slice(b"Content-Type: ");
            common.extend_from_slice(s.default_type.as_bytes());
            common.extend_from_slice(b"\r\n");
            write_num_header(&mut common, b"Content-Length: ", lit.len() as u64);
            let mut keep_tail = common.clone();
            keep_tail.extend_from_slice(b"Connection: keep-alive\r\n");
            if let Some(t) = s.keepalive_header_secs {
                write_num_header(&mut keep_tail, b"Keep-Alive: timeout=", t);
            }
            keep_tail.extend_from_slice(b"\r\n");
            let mut close_tail = common;
            close_tail.extend_from_slice(b"Connection: close\r\n\r\n");
            Some(Box::new(ConstReturn {
                code,
                keep_tail,
                close_tail,
                body: lit.as_bytes().to_vec(),
            }))
        })
        .collect()
}

/// Ends the head; returns its length in bytes.
pub(crate) fn end_head(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(b"\r\n");
    out.len()
}

/// What a location adds to a built-in error page.
#[derive(Default)]
pub(crate) struct PageExtras<'a> {
    /// `Content-Type` (empty: `text/html`); `charset` adds its charset.
    pub(crate) content_type: &'a [u8],
    /// `add_header … always` lines.
    pub(crate) headers: &'a [u8],
    /// `msie_padding` for an MSIE or Chrome client.
    pub(crate) padding: bool,
}

/// A complete error response with nginx's default page. Returns the head length.
pub(crate) fn error_response(
    w: &mut Worker<'_>,
    out: &mut Vec<u8>,
    status: u16,
    keep_alive: bool,
    server_tokens: bool,
    extras: &PageExtras<'_>,
) -> usize {
    let padding = extras.padding;
    let mut body = std::mem::take(&mut w.scratch.page);
    body.clear();
    if crate::http::response::error_page(status, server_tokens, &mut body)
        && padding
        && status >= 400
    {
        body.extend_from_slice(crate::http::response::MSIE_PADDING);
    }
    begin_head(
        w,
        out,
        &Head {
            status,
            content_type: Some(if extras.content_type.is_empty() {
                b"text/html"
            } else {
                extras.content_type
            }),
            content_length: Some(body.len() as u64),
            keep_alive,
            keepalive_header_secs: None,
            server_tokens,
        },
    );
    out.extend_from_slice(extras.headers);
    let n = end_head(out);
    out.extend_from_slice(&body);
    w.scratch.page = body;
    n
}

/// Open access log files, each with its buffer.
#[derive(Default)]
pub(crate) struct AccessLogs {
    /// Files of paths without variables (open for the worker's life).
    files: Vec<LogFile>,
    /// Files of paths made from variables: at most [`DYNAMIC_LOGS_MAX`] open, the least
    /// recently used flushed and closed to make room (nginx opens and closes such a file
    /// for every line unless `open_log_file_cache` is set).
    dynamic: Vec<DynamicLog>,
    /// Uses of dynamic files so far (their recency).
    uses: u64,
    /// The expanded path of a line being written.
    path: Vec<u8>,
    line: Vec<u8>,
    /// One variable's value while a line is formatted.
    value: Vec<u8>,
    /// Files of access_log lines whose path has no variables, by the line's address in the
    /// IR (which lives as long as the worker), so the path is resolved once.
    fixed: Vec<(usize, usize)>,
    /// Write failures not yet in the error log (see [`AccessLogs::report_errors`]); at most
    /// one per file and [`WRITE_ERROR_INTERVAL`].
    failures: Vec<(PathBuf, std::io::Error)>,
}

/// A file whose writes fail (a full disk, a removed device) is named in the error log at
/// most this often, as nginx does (once a minute per log file): serving goes on, the lines
/// are lost, and the error log is not flooded.
pub(crate) const WRITE_ERROR_INTERVAL: Duration = Duration::from_secs(60);

/// Most log files with paths made from variables a worker keeps open.
const DYNAMIC_LOGS_MAX: usize = 16;

struct DynamicLog {
    /// The path as expanded (before resolving against the prefix).
    expanded: Vec<u8>,
    log: LogFile,
    last_use: u64,
    /// The `open_log_file_cache` this entry belongs to (its address in the IR; 0: Proton's
    /// default cache, where no such directive is in effect).
    cache: usize,
    /// Lines written through this entry (nginx's `uses`: the file is kept open from
    /// `min_uses` on).
    uses: u32,
    /// When it was last used, for `inactive`.
    accessed: Instant,
}

/// The rules of a dynamic-path cache: nginx's `open_log_file_cache` parameters.
#[derive(Clone, Copy)]
struct CacheRules {
    key: usize,
    max: usize,
    min_uses: u32,
    inactive: Option<Duration>,
}

struct LogFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    limit: usize,
    flush: Option<Duration>,
    last_flush: Instant,
    /// When a write failure of this file was last reported.
    error_reported: Option<Instant>,
    /// `gzip=level`: each flush is written as one gzip member (as nginx).
    gzip: Option<u8>,
}

impl AccessLogs {
    /// The worker's access logs, with every file of a fixed path open already (before a
    /// worker under `user` gives up root, as nginx opens them in the master).
    pub(crate) fn new(loaded: &Loaded) -> Self {
        let mut logs = AccessLogs::default();
        for s in &loaded.ir.settings {
            for l in &s.access_log {
                if let AccessLog::File {
                    path,
                    buffer,
                    flush_ms,
                    gzip,
                    ..
                } = l
                {
                    if let Some(literal) = path.as_literal() {
                        let i = logs.file_for(loaded.resolve(literal), *buffer, *flush_ms, *gzip);
                        logs.fixed.push((l as *const AccessLog as usize, i));
                    }
                }
            }
        }
        logs
    }

    fn file_for(
        &mut self,
        path: PathBuf,
        buffer: Option<u64>,
        flush_ms: Option<u64>,
        gzip: Option<u8>,
    ) -> usize {
        if let Some(i) = self.files.iter().position(|f| f.path == path) {
            return i;
        }
        let file = open_log(&path);
        let mut log = LogFile::new(path, file, buffer, flush_ms);
        log.gzip = gzip;
        self.files.push(log);
        self.files.len() - 1
    }

    /// Writes one request to every access_log of `settings`. Returns false when a path
    /// made from variables was refused (see [`expand_log_path`]); that line is not written.
    pub(crate) fn write(&mut self, loaded: &Loaded, settings: &Settings, ctx: &Ctx<'_>) -> bool {
        let mut all = true;
        let rules = match &settings.open_log_file_cache {
            None => Some(CacheRules {
                key: 0,
                max: DYNAMIC_LOGS_MAX,
                min_uses: 1,
                inactive: None,
            }),
            Some(LogFileCache::Off) => None,
            Some(
                c @ LogFileCache::On {
                    max,
                    inactive_ms,
                    min_uses,
                    ..
                },
            ) => Some(CacheRules {
                key: c as *const LogFileCache as usize,
                max: *max as usize,
                min_uses: *min_uses,
                inactive: Some(Duration::from_millis(*inactive_ms)),
            }),
        };
        for l in &settings.access_log {
            let AccessLog::File {
                path,
                format,
                buffer,
                flush_ms,
                condition,
                gzip,
            } = l
            else {
                continue;
            };
            if let Some(c) = condition {
                // nginx: a condition that is empty or "0" skips the line.
                self.value.clear();
                for p in &c.parts {
                    ctx.expand_part(p, &mut self.value);
                }
                if self.value.is_empty() || self.value == b"0" {
                    continue;
                }
            }
            self.line.clear();
            format_line(loaded, *format, ctx, &mut self.line, &mut self.value);
            self.line.push(b'\n');
            let f = if let Some(literal) = path.as_literal() {
                let key = l as *const AccessLog as usize;
                let i = match self.fixed.iter().find(|(k, _)| *k == key) {
                    Some((_, i)) => *i,
                    None => {
                        let i = self.file_for(loaded.resolve(literal), *buffer, *flush_ms, *gzip);
                        self.fixed.push((key, i));
                        i
                    }
                };
                &mut self.files[i]
            } else {
                if !expand_log_path(path, ctx, &mut self.path) {
                    all = false;
                    continue;
                }
                let Some(rules) = rules else {
                    // open_log_file_cache off: open, write and close, as nginx.
                    let path = path_of(loaded, &self.path);
                    let file = open_append(&path);
                    let mut once = LogFile::new(path, file, None, None);
                    once.gzip = *gzip;
                    once.buf.extend_from_slice(&self.line);
                    if let Some(e) = once.flush_now() {
                        self.failures.push(e);
                    }
                    continue;
                };
                let Some(j) = self.dynamic_entry(loaded, rules, *buffer, *flush_ms, *gzip) else {
                    continue;
                };
                let d = &mut self.dynamic[j];
                d.log.buf.extend_from_slice(&self.line);
                if d.uses < rules.min_uses || d.log.buf.len() >= d.log.limit {
                    if let Some(e) = d.log.flush_now() {
                        self.failures.push(e);
                    }
                }
                if d.uses < rules.min_uses {
                    // Not used often enough to be kept open (nginx's min_uses).
                    d.log.file = None;
                }
                continue;
            };
            f.buf.extend_from_slice(&self.line);
            if f.buf.len() >= f.limit {
                if let Some(e) = f.flush_now() {
                    self.failures.push(e);
                }
            }
        }
        all
    }

    /// Writes the write failures met since the last call to the error log, at `alert` as
    /// nginx does (`write() to "path" failed (28: No space left on device)`). The worker
    /// calls it once per event-loop round.
    pub(crate) fn report_errors(&mut self, elog: &mut crate::log::ErrorLog) {
        for (path, e) in self.failures.drain(..) {
            crate::elog!(
                elog,
                Alert,
                "write() to \"{}\" failed ({}) while logging request",
                path.display(),
                crate::log::OsError(&e)
            );
        }
    }

    /// The entry of the expanded path in `self.path` under `rules`, with its file open, as
    /// nginx's open file cache: a known entry counts one more use (and reopens its file when
    /// it was not kept open); a new one is made only when its file opens (a failed open
    /// evicts nothing), after closing the least recently used entry of the same cache when
    /// `max` are there. Entries unused for `inactive` are closed first. The directory must
    /// exist (as nginx). `None`: the file cannot be opened; the line is lost.
    fn dynamic_entry(
        &mut self,
        loaded: &Loaded,
        rules: CacheRules,
        buffer: Option<u64>,
        flush_ms: Option<u64>,
        gzip: Option<u8>,
    ) -> Option<usize> {
        let now = Instant::now();
        if let Some(inactive) = rules.inactive {
            let mut j = 0;
            while j < self.dynamic.len() {
                let d = &self.dynamic[j];
                if d.cache == rules.key && now.saturating_duration_since(d.accessed) > inactive {
                    self.drop_dynamic(j);
                } else {
                    j += 1;
                }
            }
        }
        self.uses += 1;
        if let Some(j) = self
            .dynamic
            .iter()
            .position(|d| d.cache == rules.key && d.expanded == self.path)
        {
            let d = &mut self.dynamic[j];
            d.uses = d.uses.saturating_add(1);
            d.last_use = self.uses;
            d.accessed = now;
            if d.log.file.is_none() {
                d.log.file = open_append(&d.log.path);
            }
            return d.log.file.is_some().then_some(j);
        }
        let path = path_of(loaded, &self.path);
        let file = open_append(&path)?;
        let held = self.dynamic.iter().filter(|d| d.cache == rules.key).count();
        if held >= rules.max.max(1) {
            if let Some(old) = self
                .dynamic
                .iter()
                .enumerate()
                .filter(|(_, d)| d.cache == rules.key)
                .min_by_key(|(_, d)| d.last_use)
                .map(|(j, _)| j)
            {
                self.drop_dynamic(old);
            }
        }
        let mut log = LogFile::new(path, Some(file), buffer, flush_ms);
        log.gzip = gzip;
        self.dynamic.push(DynamicLog {
            expanded: self.path.clone(),
            log,
            last_use: self.uses,
            cache: rules.key,
            uses: 1,
            accessed: now,
        });
        Some(self.dynamic.len() - 1)
    }

    /// Flushes and closes dynamic entry `j`.
    fn drop_dynamic(&mut self, j: usize) {
        let mut gone = self.dynamic.swap_remove(j);
        if let Some(e) = gone.log.flush_now() {
            self.failures.push(e);
        }
    }

    /// Flushes buffers whose flush= time passed.
    pub(crate) fn tick(&mut self, now: Instant) {
        for f in self
            .files
            .iter_mut()
            .chain(self.dynamic.iter_mut().map(|d| &mut d.log))
        {
            if !f.buf.is_empty()
                && f.flush
                    .is_none_or(|d| now.duration_since(f.last_flush) >= d)
            {
                if let Some(e) = f.flush_now() {
                    self.failures.push(e);
                }
            }
        }
    }

    pub(crate) fn flush_all(&mut self) {
        for f in self
            .files
            .iter_mut()
            .chain(self.dynamic.iter_mut().map(|d| &mut d.log))
        {
            if let Some(e) = f.flush_now() {
                self.failures.push(e);
            }
        }
    }

    /// USR1: flush and reopen every file.
    pub(crate) fn reopen(&mut self) {
        for f in &mut self.files {
            if let Some(e) = f.flush_now() {
                self.failures.push(e);
            }
            f.file = open_log(&f.path);
        }
        // Paths made from variables: their directory is never created (see write).
        for d in &mut self.dynamic {
            if let Some(e) = d.log.flush_now() {
                self.failures.push(e);
            }
            if d.log.file.is_some() {
                d.log.file = open_append(&d.log.path);
            }
        }
    }
}

impl LogFile {
    fn new(path: PathBuf, file: Option<File>, buffer: Option<u64>, flush_ms: Option<u64>) -> Self {
        LogFile {
            path,
            file,
            buf: Vec::new(),
            limit: buffer.unwrap_or(0) as usize,
            flush: flush_ms.map(Duration::from_millis),
            last_flush: Instant::now(),
            error_reported: None,
            gzip: None,
        }
    }

    /// Writes the buffered lines (they are dropped either way). A failure is returned, with
    /// the path, when it is to be reported: not more than once per
    /// [`WRITE_ERROR_INTERVAL`].
    fn flush_now(&mut self) -> Option<(PathBuf, std::io::Error)> {
        let now = Instant::now();
        let result = match self.file.as_mut() {
            Some(file) if !self.buf.is_empty() => match self.gzip {
                None => file.write_all(&self.buf),
                Some(level) => {
                    // One gzip member per flush, written at once: a reader can
                    // decompress the file at any time (as nginx's gzip logs).
                    let out = Vec::with_capacity(self.buf.len() / 4 + 64);
                    let mut z = flate2::write::GzEncoder::new(
                        out,
                        flate2::Compression::new(u32::from(level)),
                    );
                    match z.write_all(&self.buf).and_then(|()| z.finish()) {
                        Ok(member) => file.write_all(&member),
                        Err(e) => Err(e),
                    }
                }
            },
            _ => Ok(()),
        };
        self.buf.clear();
        self.last_flush = now;
        let e = result.err()?;
        if self
            .error_reported
            .is_some_and(|t| now.saturating_duration_since(t) < WRITE_ERROR_INTERVAL)
        {
            return None;
        }
        self.error_reported = Some(now);
        Some((self.path.clone(), e))
    }
}

/// Expands a log path made from variables into `out`. False when a variable's value could
/// leave the intended directory or is not a file name part: it holds `/` or a NUL byte, or
/// is `.` or `..` (nginx does not check this; a client choosing `$arg_x` or a header could
/// otherwise make the worker write anywhere it may).
fn expand_log_path(path: &proton_ir::Template, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    for part in &path.parts {
        if let proton_ir::Part::Literal(l) = part {
            out.extend_from_slice(l.as_bytes());
            continue;
        }
        let at = out.len();
        ctx.expand_part(part, out);
        let value = &out[at..];
        if value.contains(&b'/') || value.contains(&0) || value == b"." || value == b".." {
            return false;
        }
    }
    true
}

/// Opens a log file of a fixed path, making its directory first.
fn open_log(path: &PathBuf) -> Option<File> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    open_append(path)
}

/// The file of an expanded dynamic log path.
fn path_of(loaded: &Loaded, expanded: &[u8]) -> PathBuf {
    loaded.resolve(&String::from_utf8_lossy(expanded))
}

/// Opens (creating) a file for appending log lines.
fn open_append(path: &PathBuf) -> Option<File> {
    OpenOptions::new().create(true).append(true).open(path).ok()
}

/// Expands a log format with its escaping (nginx: `\xHH` for `"`, `\` and bytes outside
/// printable ASCII by default; JSON escapes with `escape=json`).
fn format_line(
    loaded: &Loaded,
    id: LogFormatId,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
    val: &mut Vec<u8>,
) {
    let Some(f) = loaded.ir.log_formats.get(id.0 as usize) else {
        return;
    };
    for p in &f.template.parts {
        match p {
            proton_ir::Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
            other => {
                val.clear();
                ctx.expand_part(other, val);
                // nginx writes "-" for a missing value only with the default escaping
                // (escape=none and escape=json write nothing).
                if val.is_empty() && f.escape == LogEscape::Default {
                    if !ctx.found_empty(other) {
                        out.push(b'-');
                    }
                    continue;
                }
                escape(val, f.escape, out);
            }
        }
    }
}

fn escape(v: &[u8], how: LogEscape, out: &mut Vec<u8>) {
    for &b in v {
        match how {
            LogEscape::None => out.push(b),
            LogEscape::Default => {
                if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                    let _ = write!(out, "\\x{b:02X}");
                } else {
                    out.push(b);
                }
            }
            LogEscape::Json => match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    // nginx's ngx_escape_json: upper-case hex digits.
                    let _ = write!(out, "\\u{b:04X}");
                }
                _ => out.push(b),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes to a full device fail; the failure is handed out for the error log once per
    /// WRITE_ERROR_INTERVAL, and the lines are dropped rather than piling up.
    #[test]
    fn write_failures_are_reported_once_per_interval() {
        let path = PathBuf::from("/dev/full");
        let Some(file) = open_append(&path) else {
            return; // No /dev/full here: nothing to test with.
        };
        let mut log = LogFile::new(path.clone(), Some(file), None, None);
        log.buf.extend_from_slice(b"line\n");
        let (p, e) = log.flush_now().expect("the first failure is reported");
        assert_eq!(p, path);
        assert_eq!(e.raw_os_error(), Some(28), "{e}");
        assert!(log.buf.is_empty());
        for _ in 0..5 {
            log.buf.extend_from_slice(b"line\n");
            assert!(
                log.flush_now().is_none(),
                "reported again within the interval"
            );
            assert!(log.buf.is_empty());
        }
        // Once the interval has passed, the next failure is reported again.
        log.error_reported = Instant::now().checked_sub(WRITE_ERROR_INTERVAL);
        log.buf.extend_from_slice(b"line\n");
        assert!(log.flush_now().is_some());
        // Nothing buffered: nothing written, nothing to report.
        log.error_reported = None;
        assert!(log.flush_now().is_none());
    }
}
