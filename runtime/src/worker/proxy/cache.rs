//! The content cache in the proxy (`proxy_cache`, and the FastCGI, SCGI, uwsgi and gRPC
//! equivalents on the same machinery), as nginx's `ngx_http_upstream_cache` and
//! `ngx_http_file_cache`:
//!
//! * at the start of a proxied request ([`Worker::cache_lookup`]): the key is made and its
//!   digest looked up in the zone's shared index; a fresh object's file is opened and its
//!   stored head becomes the response head (`HIT`: no upstream is asked), else the request
//!   goes upstream (`MISS`, `EXPIRED`, `BYPASS`);
//! * at the upstream's head ([`Worker::cache_decide`]): whether the response may be stored
//!   (the method, `proxy_cache_valid`, `X-Accel-Expires`, `Cache-Control`, `Expires`,
//!   `Set-Cookie`, `Vary`, `proxy_no_cache`, `proxy_cache_min_uses`); if so a temporary file
//!   in the cache's directory gets the header, the key and the head;
//! * as the body passes ([`Proxy::cache_tap`], before a range is cut from it): the decoded
//!   body bytes are appended;
//! * at the body's end ([`Worker::cache_commit`]): the header gets the body's length and the
//!   file is renamed into place (nginx's levels); the index learns it. A response cut short,
//!   or one whose request ends early, leaves nothing: the temporary file is removed when its
//!   [`CacheWrite`] is dropped.

use super::*;
use crate::cache::file::{Meta, FLAG_AUTHORIZED, FLAG_REVALIDATE, HEADER_LEN, MAX_META};
use crate::cache::index::Evicted;
use crate::cache::Status;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// How long a request may hold an object's `updating` flag without `proxy_cache_lock`
/// (a worker that died holding it does not keep others waiting longer).
const UPDATING_MAX_MS: u64 = 120_000;

/// Bytes of an object read at once on a lookup: the header, key and head, and the whole
/// body of a small object (which is then sent from memory).
const READ_AHEAD: usize = 16 * 1024;

/// The largest object whose head a revalidation rewrites (the body is copied to a new
/// file, in the kernel, on the event loop).
const REWRITE_MAX: u64 = 16 * 1024 * 1024;

/// A temporary file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a `Connection` field's value lists `name` (a field of that connection only).
pub(super) fn listed_in(connection: &[u8], name: &[u8]) -> bool {
    connection
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
}

/// How often a request waiting for `proxy_cache_lock` looks again.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// A response on its way into the cache.
pub(crate) struct CacheWrite {
    file: std::fs::File,
    temp: std::path::PathBuf,
    meta: Meta,
    /// Body bytes written.
    written: u64,
    /// A write failed (logged at the end): nothing is stored.
    failed: Option<std::io::Error>,
    done: bool,
}

impl Drop for CacheWrite {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A response body on its way into a `proxy_store` file.
pub(crate) struct StoreWrite {
    file: std::fs::File,
    temp: std::path::PathBuf,
    target: std::path::PathBuf,
    written: u64,
    failed: Option<std::io::Error>,
    done: bool,
    /// The upstream's Last-Modified (the file's time).
    mtime: Option<i64>,
    mode: u32,
}

impl Drop for StoreWrite {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The cache's part in a proxied request (kept with the recycled [`Proxy`], so its
/// buffers are reused).
#[derive(Default)]
pub(crate) struct CacheReq {
    /// The zone (index into `ir.cache_zones`) of a request the cache deals with.
    pub(crate) zone: Option<usize>,
    pub(crate) md5: [u8; 16],
    pub(crate) key: Vec<u8>,
    /// `md5` is an answer's variant (Vary): the main key's digest is kept here.
    pub(crate) secondary: bool,
    pub(crate) main_md5: [u8; 16],
    /// When the main key's object was stored (or revalidated): a variant's own object
    /// stored before it is out of date (the main key was invalidated, purged or fetched
    /// again since), and is fetched again.
    main_date: i64,
    /// Times the key was asked for (`proxy_cache_min_uses`).
    uses: u32,
    /// A HEAD sent upstream as a GET (`proxy_cache_convert_head`): the client gets the head
    /// only.
    pub(crate) no_client_body: bool,
    /// Served from the cache: the object's file (none for a copy from the memory tier, whose
    /// body is in `Proxy::hold`) and header.
    pub(crate) hit: Option<(Option<std::fs::File>, Meta)>,
    pub(crate) write: Option<CacheWrite>,
    /// `proxy_store`: the body going to its file.
    pub(crate) store: Option<StoreWrite>,
    /// An unsafe method (POST, PUT, DELETE…) through this zone: a success removes the
    /// object stored for the key (RFC 9111 4.4; nginx does not).
    pub(crate) invalidate: Option<usize>,
    /// The object's body is in `Proxy::hold` after its head (read whole with it).
    pub(crate) body_in_hold: bool,
    /// `cache_multipart` made the answer (its parts' type and bytes have been through the
    /// charset filter already).
    pub(crate) multipart: bool,
    /// The response is stored or served from the cache: ranges may be asked of it (nginx's
    /// `allow_ranges` for cached and cacheable responses with `Accept-Ranges`).
    pub(crate) cacheable: bool,
    /// `$upstream_cache_status` as it stands (see `crate::cache::Status`).
    pub(crate) status: u8,
    /// An expired object, kept while the upstream is asked: sent instead of an error
    /// (`proxy_cache_use_stale`) or of a 304 (`proxy_cache_revalidate`).
    pub(crate) stale: Option<(std::fs::File, Meta)>,
    /// The expired object's ETag (for `If-None-Match` when revalidating).
    pub(crate) etag: Vec<u8>,
    /// This request holds the entry's `updating` flag (it fetches the object).
    updating: bool,
    /// `proxy_cache_lock`: another request fetches the object; this one waits until it is
    /// stored, or until `lock_until` (then it goes upstream and stores nothing).
    pub(crate) lock_wait: bool,
    lock_until: Option<Instant>,
    /// The response is not stored whatever it says (after a lock timeout, below
    /// `proxy_cache_min_uses`, a range past `proxy_cache_max_range_offset`): nginx's
    /// `cacheable` off, so the request goes upstream as without a cache.
    pub(crate) no_store: bool,
    /// An error status the cache holds for the key answers the request (`HIT`).
    pub(crate) error_answer: u16,
    /// This is a background update (`proxy_cache_background_update`): upstream always, the
    /// answer stored, nothing sent.
    pub(crate) updater: bool,
    /// The expired object's status, and whether `stale-if-error` still covers it.
    pub(crate) stale_status: u16,
    stale_error: bool,
    /// The request has `Authorization` and the upstream gets it: only an object stored as
    /// `public`, `s-maxage` or `must-revalidate` answers it, and only such an answer is
    /// stored (RFC 9111 3.5).
    authorized: bool,
    /// `$proxy_host` as the key was made with (for the keys of other URIs).
    proxy_host: Vec<u8>,
    proxy_unix: bool,
    /// The request's own `Cache-Control` (`only-if-cached`, `no-store`, `max-stale`).
    pub(crate) request_cc: crate::cache::control::RequestControl,
    /// `proxy_cache_purge` of a wildcard key (or of a key whose answer varied): the walk
    /// through the cache's files, done in steps (`St::CachePurge`).
    pub(crate) purge: Option<Box<crate::cache::keeper::Purge>>,
}

impl CacheReq {
    pub(crate) fn reset(&mut self) {
        self.zone = None;
        self.key.clear();
        self.secondary = false;
        self.main_date = 0;
        self.uses = 0;
        self.no_client_body = false;
        self.hit = None;
        self.write = None;
        self.invalidate = None;
        self.store = None;
        self.body_in_hold = false;
        self.multipart = false;
        self.cacheable = false;
        self.status = 0;
        self.stale = None;
        self.etag.clear();
        self.updating = false;
        self.lock_wait = false;
        self.lock_until = None;
        self.no_store = false;
        self.error_answer = 0;
        self.updater = false;
        self.stale_status = 0;
        self.stale_error = false;
        self.authorized = false;
        self.proxy_host.clear();
        self.proxy_unix = false;
        self.purge = None;
        self.request_cc = Default::default();
    }
}

/// Request headers the upstream does not get when the location caches (nginx's
/// `ngx_http_proxy_cache_headers`): the answer stored must be the whole, unconditional one.
pub(super) const NOT_FORWARDED: [&[u8]; 6] = [
    b"if-modified-since",
    b"if-unmodified-since",
    b"if-none-match",
    b"if-match",
    b"range",
    b"if-range",
];

/// What a response's headers (and `proxy_cache_valid`) give it in the cache.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Fresh {
    /// Fresh until (seconds since the epoch); `None`: no rule gives it a time.
    valid: Option<i64>,
    /// `stale-while-revalidate=` and `stale-if-error=`.
    updating_sec: u32,
    error_sec: u32,
    /// Its age on arrival.
    age: u32,
    /// `crate::cache::file::FLAG_*`.
    flags: u8,
}

/// Seconds since the epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// nginx's predicates (`proxy_cache_bypass`, `proxy_no_cache`): true when a value is
/// neither empty nor `0`.
fn any_true(w: &Worker<'_>, conn: &Conn, req: &RequestCtx, list: &[proton_ir::Template]) -> bool {
    if list.is_empty() {
        return false;
    }
    let mut v = w.scratch.var_pool.borrow_mut().buf();
    let mut yes = false;
    for t in list {
        v.clear();
        w.ctx(conn, req, 0).expand(t, &mut v);
        if !v.is_empty() && v != b"0" {
            yes = true;
            break;
        }
    }
    w.scratch.var_pool.borrow_mut().give_buf(v);
    yes
}

impl Worker<'_> {
    /// The zone of this request's `proxy_cache` (a name with variables found among the
    /// zones; an empty or unknown one: none).
    /// `Err`: a name with variables that names no zone (logged; nginx answers 500).
    fn cache_zone(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        ps: &proton_ir::ProxySettings,
    ) -> Result<Option<usize>, ()> {
        match ps.cache.zone.as_ref() {
            None => Ok(None),
            Some(proton_ir::CacheRef::Zone(i)) => Ok(Some(*i as usize)),
            Some(proton_ir::CacheRef::Var(t)) => {
                let mut v = self.scratch.var_pool.borrow_mut().buf();
                self.ctx(conn, req, 0).expand(t, &mut v);
                let found = self
                    .loaded
                    .ir
                    .cache_zones
                    .iter()
                    .position(|z| z.name.as_bytes() == v.as_slice());
                let r = match found {
                    Some(i) => Ok(Some(i)),
                    None if v.is_empty() => Ok(None),
                    None => {
                        elog!(
                            self.elog,
                            Error,
                            "cache \"{}\" not found, client: {}",
                            String::from_utf8_lossy(&v),
                            conn.peer.ip()
                        );
                        Err(())
                    }
                };
                self.scratch.var_pool.borrow_mut().give_buf(v);
                r
            }
        }
    }

    /// Removes the files of entries the index let go.
    fn cache_unlink(&mut self, zone: usize, evicted: &Evicted) {
        let loaded = self.loaded;
        let Some(z) = loaded.ir.cache_zones.get(zone) else {
            return;
        };
        for md5 in evicted.iter() {
            let mut rel = String::new();
            crate::cache::file::relative_path(&z.levels, md5, &mut rel);
            let path = loaded.prefix.join(&z.path).join(&rel);
            let _ = std::fs::remove_file(path);
        }
    }

    /// The cache's look at a request about to go upstream (`method` as the client sent
    /// it). Returns the method to send upstream instead (a HEAD converted to GET) and
    /// whether the response comes from the cache (then `p` holds its head, parsed).
    pub(super) fn cache_lookup(
        &mut self,
        conn: &Conn,
        req: &mut RequestCtx,
        p: &mut Proxy,
        ps: &proton_ir::ProxySettings,
        method: &[u8],
        (proxy_host, proxy_unix): (&[u8], bool),
    ) -> (bool, bool) {
        p.cache.reset();
        p.cache.updater = req.cache_updater;
        p.cache.proxy_host.extend_from_slice(proxy_host);
        p.cache.proxy_unix = proxy_unix;
        p.cache.authorized = req.head.get(&conn.rbuf, b"authorization").is_some()
            && ps.pass_request_headers
            && !ps
                .set_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        let cs = &ps.cache;
        let zone = match self.cache_zone(conn, req, ps) {
            Ok(Some(z)) => z,
            Ok(None) => return (false, false),
            Err(()) => {
                p.cache.error_answer = 500;
                return (false, false);
            }
        };
        if any_true(self, conn, req, &cs.purge) {
            self.cache_key(conn, req, p, &cs.key);
            p.cache.zone = Some(zone);
            p.cache.error_answer = self.cache_purge(p, zone);
            return (false, false);
        }
        if !cs.methods.iter().any(|m| m.as_bytes() == method) || (p.discard && !p.cache.updater) {
            // RFC 9111 4.4: an unsafe method's success invalidates what is stored for its
            // URI (its key): noted here, done at the answer's head.
            if !p.discard && !matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE") {
                self.cache_key(conn, req, p, &cs.key);
                p.cache.invalidate = Some(zone);
            }
            return (false, false);
        }
        let convert = method == b"HEAD" && cs.convert_head;
        // A FastCGI, SCGI or uwsgi application's answer to HEAD is read whole (what body it
        // sends is stored, as nginx stores it) and the client gets its head only.
        p.cache.no_client_body = convert || (method == b"HEAD" && p.protocol.cgi());
        p.cache.zone = Some(zone);
        for (n, v) in req.head.fields(&conn.rbuf) {
            if n.eq_ignore_ascii_case(b"cache-control") {
                p.cache.request_cc.add(v);
            }
        }
        if p.cache.request_cc.no_store {
            p.cache.no_store = true;
        }
        self.cache_key(conn, req, p, &cs.key);
        let loaded = self.loaded;
        let (Some(index), Some(z)) = (
            loaded.cache_zones.get(zone),
            loaded.ir.cache_zones.get(zone),
        ) else {
            p.cache.zone = None;
            return (false, false);
        };
        loop {
            let now = unix_now();
            let mut evicted = Evicted::default();
            // (With a step of nginx's cache manager: what is inactive or over max_size goes.)
            let entry = index.lookup(&p.cache.md5, now, z.inactive_secs, z.max_size, &mut evicted);
            self.cache_unlink(zone, &evicted);
            let Some(entry) = entry else {
                elog!(
                    self.elog,
                    Alert,
                    "could not allocate node in cache keys zone \"{}\"",
                    z.name
                );
                p.cache.zone = None;
                return (false, false);
            };
            p.cache.uses = entry.uses;
            // Asked for fewer times than proxy_cache_min_uses: not to be stored (nginx's
            // "scarce"; the client's conditions and range then go upstream).
            if entry.uses < cs.min_uses {
                p.cache.no_store = true;
            }
            // proxy_cache_bypass: fetched anew (and stored, by the rules), the use counted.
            if any_true(self, conn, req, &cs.bypass) {
                p.cache.status = Status::Bypass as u8;
                req.cache_status = Status::Bypass as u8;
                return (convert, false);
            }
            if entry.error != 0 && entry.valid_sec >= now {
                // (nginx's cached error: the status answers, through error_page.)
                p.cache.error_answer = entry.error;
                p.cache.status = Status::Hit as u8;
                req.cache_status = Status::Hit as u8;
                return (convert, false);
            }
            p.cache.status = Status::Miss as u8;
            req.cache_status = Status::Miss as u8;
            if !entry.exists && !entry.new {
                self.cache_miss_lock(p, cs);
                return (convert, false);
            }
            // The memory tier: this worker's copy of a fresh small object, while the index
            // says it is the same object (its generation).
            if entry.exists && !entry.new && entry.valid_sec >= now && z.memory > 0 {
                let found =
                    self.ups
                        .hot(zone)
                        .get(&p.cache.md5, entry.generation)
                        .map(|(meta, bytes)| {
                            p.hold.clear();
                            p.hold.extend_from_slice(bytes);
                            meta
                        });
                if let Some(meta) = found {
                    let main = if p.cache.secondary {
                        p.cache.main_md5
                    } else {
                        p.cache.md5
                    };
                    let same_variant = meta.variant == [0u8; 16]
                        || request_variant(conn, req, &p.hold, main) == meta.variant;
                    let current = !(p.cache.secondary && meta.date < p.cache.main_date);
                    if same_variant
                        && current
                        && !(p.cache.authorized && meta.flags & FLAG_AUTHORIZED == 0)
                    {
                        p.cache.body_in_hold = true;
                        let path = std::path::Path::new("(memory)");
                        if self.serve_cached(p, None, meta, Status::Hit, path) {
                            req.cache_status = Status::Hit as u8;
                            return (convert, true);
                        }
                        self.ups.hot(zone).remove(&p.cache.md5);
                    }
                    p.hold.clear();
                    p.cache.body_in_hold = false;
                }
            }
            // Known to exist, or not known yet (a file from before a restart counts).
            let mut rel = String::new();
            crate::cache::file::relative_path(&z.levels, &p.cache.md5, &mut rel);
            let path = loaded.prefix.join(&z.path).join(&rel);
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) => {
                    if e.kind() != ErrorKind::NotFound {
                        elog!(
                            self.elog,
                            Crit,
                            "open() \"{}\" failed ({}), client: {}",
                            path.display(),
                            crate::log::OsError(&e),
                            conn.peer.ip()
                        );
                    }
                    if entry.exists {
                        index.forget(&p.cache.md5);
                        // (A new entry for the fetch that follows.)
                        let mut ev = Evicted::default();
                        index.lookup(&p.cache.md5, now, z.inactive_secs, z.max_size, &mut ev);
                        self.cache_unlink(zone, &ev);
                    }
                    self.cache_miss_lock(p, cs);
                    return (convert, false);
                }
            };
            let meta = match read_object(&file, &p.cache.key, &mut p.hold) {
                Ok((m, whole)) => {
                    p.cache.body_in_hold = whole;
                    m
                }
                Err(why) => {
                    elog!(
                        self.elog,
                        Crit,
                        "cache file \"{}\" {why}, client: {}",
                        path.display(),
                        conn.peer.ip()
                    );
                    index.forget(&p.cache.md5);
                    let _ = std::fs::remove_file(&path);
                    p.hold.clear();
                    return (convert, false);
                }
            };
            if p.cache.secondary && meta.date < p.cache.main_date {
                // A variant older than the main key's object: out of date.
                index.forget(&p.cache.md5);
                let _ = std::fs::remove_file(&path);
                p.hold.clear();
                let mut ev = Evicted::default();
                index.lookup(&p.cache.md5, now, z.inactive_secs, z.max_size, &mut ev);
                self.cache_unlink(zone, &ev);
                self.cache_miss_lock(p, cs);
                return (convert, false);
            }
            if entry.new {
                index.stored(&p.cache.md5, meta.valid_sec, meta.file_len());
            }
            // An answer stored with Vary: the request's values must give its variant,
            // else the variant's own object is looked for, under the variant's hash
            // (nginx's secondary key).
            if meta.variant != [0u8; 16] {
                let main = if p.cache.secondary {
                    p.cache.main_md5
                } else {
                    p.cache.md5
                };
                let v = request_variant(conn, req, &p.hold, main);
                if v != meta.variant {
                    p.hold.clear();
                    if p.cache.secondary {
                        elog!(
                            self.elog,
                            Crit,
                            "cache file \"{}\" has incorrect vary hash, client: {}",
                            path.display(),
                            conn.peer.ip()
                        );
                        self.cache_miss_lock(p, cs);
                        return (convert, false);
                    }
                    p.cache.main_md5 = p.cache.md5;
                    p.cache.main_date = meta.date;
                    p.cache.md5 = v;
                    p.cache.secondary = true;
                    continue;
                }
            }
            if p.cache.authorized && meta.flags & FLAG_AUTHORIZED == 0 {
                // Not for a request with credentials: asked of the upstream, the object left
                // as it is for the others.
                p.hold.clear();
                return (convert, false);
            }
            if meta.valid_sec < now
                && meta.flags & FLAG_REVALIDATE == 0
                && p.cache.request_cc.stale_ok(meta.valid_sec, now)
            {
                // The client's max-stale takes it as it is.
                if self.serve_cached(p, Some(file), meta, Status::Stale, &path) {
                    req.cache_status = Status::Stale as u8;
                    return (convert, true);
                }
                return (convert, false);
            }
            if meta.valid_sec < now {
                // Expired: fetched again, the object kept meanwhile (stale answers,
                // revalidation). One request at a time fetches it (nginx's `updating`); the
                // others get the stale object at once with `proxy_cache_use_stale updating` or
                // within the object's `stale-while-revalidate`.
                p.cache.etag.clear();
                p.cache.stale_status = 0;
                if parse_response_head(&p.hold, p.hold.len() + 1, 1000, &mut p.resp).is_ok() {
                    p.cache.stale_status = p.resp.status;
                    if let Some(v) = p.resp.headers.iter().find_map(|(n, v)| {
                        p.hold
                            .get(n.clone())
                            .filter(|n| n.eq_ignore_ascii_case(b"etag"))
                            .and_then(|_| p.hold.get(v.clone()))
                    }) {
                        p.cache.etag.extend_from_slice(v);
                    }
                }
                p.hold.clear();
                p.resp.reset();
                let stale_updating = meta.valid_sec + i64::from(meta.updating_sec) >= now;
                p.cache.stale_error = meta.valid_sec + i64::from(meta.error_sec) >= now;
                // (Never an object that must be revalidated: no-cache, must-revalidate.)
                let serve_updating = (cs.use_stale.updating || stale_updating)
                    && !p.cache.updater
                    && meta.flags & FLAG_REVALIDATE == 0;
                let age = if cs.lock {
                    cs.lock_age_ms
                } else {
                    UPDATING_MAX_MS
                };
                let mine = index
                    .begin_update(&p.cache.md5, crate::limits::now_ms(), Some(age))
                    .unwrap_or(false);
                if mine && serve_updating && cs.background_update {
                    // (Held until this request ends; the update takes it then.)
                    p.cache.updating = true;
                    // The stale object now; the update after the response (a subrequest of
                    // this request; a subrequest itself sends the stale object only).
                    if !req.subrequest && !req.mirror_sub {
                        req.cache_update = Some(p.loc);
                        req.update_uri.clear();
                        req.update_uri.extend_from_slice(&req.uri);
                        req.update_args.clear();
                        req.update_args.extend_from_slice(&req.args);
                    }
                    if self.serve_cached(p, Some(file), meta, Status::Stale, &path) {
                        req.cache_status = Status::Stale as u8;
                        return (convert, true);
                    }
                    return (convert, false);
                }
                if !mine && serve_updating {
                    if self.serve_cached(p, Some(file), meta, Status::Updating, &path) {
                        req.cache_status = Status::Updating as u8;
                        return (convert, true);
                    }
                    return (convert, false);
                }
                p.cache.updating = mine;
                p.cache.stale = Some((file, meta));
                p.cache.status = Status::Expired as u8;
                req.cache_status = Status::Expired as u8;
                return (convert, false);
            }
            // (The head read above is the one served: the file is not read twice.)
            if self.serve_cached(p, Some(file), meta, Status::Hit, &path) {
                req.cache_status = Status::Hit as u8;
                // A small object read whole: kept in this worker's memory tier.
                if p.cache.body_in_hold && !entry.new && z.memory > 0 {
                    let memory = usize::try_from(z.memory).unwrap_or(usize::MAX);
                    let md5 = p.cache.md5;
                    self.ups
                        .hot(zone)
                        .put(md5, entry.generation, meta, &p.hold, memory);
                }
                return (convert, true);
            }
            return (convert, false);
        }
    }

    /// The request's cache key (`proxy_cache_key`, with `$proxy_host` as the lookup was
    /// given it) into `p.cache.key`, and its MD5.
    fn cache_key(&self, conn: &Conn, req: &RequestCtx, p: &mut Proxy, t: &proton_ir::Template) {
        let mut key = std::mem::take(&mut p.cache.key);
        key.clear();
        {
            let mut ctx = self.ctx(conn, req, 0);
            ctx.proxy_host = &p.cache.proxy_host;
            ctx.proxy_unix = p.cache.proxy_unix;
            ctx.expand(t, &mut key);
        }
        p.cache.md5 = crate::cache::file::digest(&key);
        p.cache.key = key;
    }

    /// `proxy_cache_purge`: what the cache holds for the request's key goes (its entry and
    /// file). The answer's status (204: something went, 404: nothing was held), or 0 when
    /// a walk through the files follows (`p.cache.purge`): for a key ending in `*` (every
    /// key that starts so), and for an answer stored with Vary (each variant is a file).
    fn cache_purge(&mut self, p: &mut Proxy, zone: usize) -> u16 {
        let loaded = self.loaded;
        let (Some(index), Some(z)) = (
            loaded.cache_zones.get(zone),
            loaded.ir.cache_zones.get(zone),
        ) else {
            return 404;
        };
        let root = loaded.prefix.join(&z.path);
        let levels = z.levels.len();
        if let Some(prefix) = p.cache.key.strip_suffix(b"*") {
            p.cache.purge = Some(Box::new(crate::cache::keeper::Purge::new(
                &root, levels, prefix, false,
            )));
            return 0;
        }
        let held = index
            .peek(&p.cache.md5)
            .is_some_and(|e| e.exists || e.error != 0);
        index.forget(&p.cache.md5);
        let path = self.cache_path(p);
        let mut varied = false;
        let mut removed = false;
        if let Some(path) = path.as_ref() {
            if let Ok(f) = std::fs::File::open(path) {
                let mut h = [0u8; HEADER_LEN];
                varied = f
                    .read_exact_at(&mut h, 0)
                    .ok()
                    .and_then(|()| Meta::decode(&h))
                    .is_some_and(|m| m.variant != [0u8; 16]);
                removed = std::fs::remove_file(path).is_ok();
            }
        }
        if varied {
            let mut purge = crate::cache::keeper::Purge::new(&root, levels, &p.cache.key, true);
            purge.removed = u32::from(removed);
            p.cache.purge = Some(Box::new(purge));
            return 0;
        }
        if held || removed {
            204
        } else {
            404
        }
    }

    /// `St::CachePurge`: a step of the walk; the answer once it is through.
    pub(super) fn step_cache_purge(&mut self, p: &mut Proxy) -> Step {
        let loaded = self.loaded;
        let zone = p.cache.zone.unwrap_or(0);
        let (Some(index), Some(z), Some(purge)) = (
            loaded.cache_zones.get(zone),
            loaded.ir.cache_zones.get(zone),
            p.cache.purge.as_mut(),
        ) else {
            return Step::Done(Drive::Failed(404));
        };
        let elog = &self.elog;
        if !purge.step(index, z.loader_files, &mut |l, a| elog.log(l, a)) {
            // (The next step on the next round of the loop.)
            p.deadline = self.now + Duration::from_millis(1);
            return Step::Blocked;
        }
        let code = if purge.removed > 0 { 204 } else { 404 };
        p.cache.purge = None;
        Step::Done(Drive::Failed(code))
    }

    /// `proxy_cache_lock` for an object not in the cache: the first request fetches it,
    /// the others wait (`St::CacheLock`).
    fn cache_miss_lock(&mut self, p: &mut Proxy, cs: &proton_ir::CacheSettings) {
        let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) else {
            return;
        };
        let age = if cs.lock {
            cs.lock_age_ms
        } else {
            UPDATING_MAX_MS
        };
        let mine = index
            .begin_update(&p.cache.md5, crate::limits::now_ms(), Some(age))
            .unwrap_or(false);
        p.cache.updating = mine;
        if cs.lock && !mine {
            p.cache.lock_wait = true;
            p.cache.lock_until = Some(self.now + Duration::from_millis(cs.lock_timeout_ms));
        }
    }

    /// The object in `file` becomes the response: its head read into `p` as an upstream's
    /// (the body is the file's, of known length). False when it cannot be (logged, the
    /// object removed).
    fn serve_cached(
        &mut self,
        p: &mut Proxy,
        file: Option<std::fs::File>,
        meta: Meta,
        status: Status,
        path: &std::path::Path,
    ) -> bool {
        // The head is read from the file unless `p.hold` has it already.
        let read = if p.hold.is_empty() {
            match file.as_ref() {
                Some(f) => read_object(f, &p.cache.key, &mut p.hold).map(|(_, whole)| whole),
                None => Err("has no file"),
            }
        } else {
            Ok(p.cache.body_in_hold)
        };
        // (With the body after it when the object was read whole.)
        let body_in_hold = read.unwrap_or(false);
        let body = if body_in_hold {
            meta.body_len as usize
        } else {
            0
        };
        let ok = match read {
            Ok(_) => matches!(
                parse_response_head(&p.hold, p.hold.len() + 1, 1000, &mut p.resp),
                Ok(Parsed::Complete) if p.resp.head_len + body == p.hold.len()
            ),
            Err(_) => false,
        };
        if !ok {
            elog!(
                self.elog,
                Crit,
                "cache file \"{}\" contains invalid header, client: {}",
                path.display(),
                p.client
            );
            if let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) {
                index.forget(&p.cache.md5);
            }
            let _ = std::fs::remove_file(path);
            p.hold.clear();
            p.resp.reset();
            return false;
        }
        p.resp.chunked = false;
        p.resp.content_length = Some(meta.body_len);
        p.cache.hit = Some((file, meta));
        p.cache.cacheable = true;
        p.cache.status = status as u8;
        p.cache.body_in_hold = body_in_hold;
        // A body that came with the head is taken as an upstream's first bytes; the file is
        // read from past it.
        p.hit_pos = meta.body_start() + body as u64;
        // The body is read from the file now, whatever became of an upstream attempt.
        p.released = false;
        p.upstream_eof = false;
        true
    }

    /// The path of this request's object.
    fn cache_path(&self, p: &Proxy) -> Option<std::path::PathBuf> {
        let z = self.loaded.ir.cache_zones.get(p.cache.zone?)?;
        let mut rel = String::new();
        crate::cache::file::relative_path(&z.levels, &p.cache.md5, &mut rel);
        Some(self.loaded.prefix.join(&z.path).join(&rel))
    }

    /// The upstream failed (`fail`, or a status `proxy_cache_use_stale` names): the expired
    /// object is sent instead when allowed (`STALE`). The attempt is over already.
    pub(super) fn cache_stale(&mut self, p: &mut Proxy, fail: Fail) -> bool {
        let Some(u) = p
            .cache
            .zone
            .map(|_| self.proxy_settings(p.loc).cache.use_stale)
        else {
            return false;
        };
        let allowed = match fail {
            Fail::Error => u.error,
            Fail::Timeout => u.timeout,
            Fail::InvalidHeader => u.invalid_header,
            Fail::Status(500) => u.http_500,
            Fail::Status(502) => u.http_502,
            Fail::Status(503) => u.http_503,
            Fail::Status(504) => u.http_504,
            Fail::Status(403) => u.http_403,
            Fail::Status(404) => u.http_404,
            Fail::Status(429) => u.http_429,
            Fail::Status(_) => false,
        };
        // (`stale-if-error` covers failures to get an answer, not an answer's status.)
        let allowed = allowed
            || (p.cache.stale_error
                && matches!(fail, Fail::Error | Fail::Timeout | Fail::InvalidHeader));
        if !allowed || p.written > 0 {
            return false;
        }
        if p.cache
            .stale
            .as_ref()
            .is_some_and(|(_, m)| m.flags & FLAG_REVALIDATE != 0)
        {
            return false;
        }
        let Some((file, meta)) = p.cache.stale.take() else {
            return false;
        };
        let Some(path) = self.cache_path(p) else {
            return false;
        };
        p.hold.clear();
        if !self.serve_cached(p, Some(file), meta, Status::Stale, &path) {
            return false;
        }
        p.head_only |= p.cache.no_client_body;
        p.st = St::Head;
        true
    }

    /// `proxy_cache_revalidate`: the upstream answered 304 to the expired object's
    /// validators; the object is fresh again and is sent (`REVALIDATED`). The 304's fields
    /// replace the stored ones (RFC 9111 3.2; nginx keeps the old ones), and the freshness
    /// is the updated head's (its headers, else `proxy_cache_valid` for its status).
    pub(super) fn cache_revalidated(&mut self, p: &mut Proxy) -> bool {
        if p.resp.status != 304
            || p.cache.stale.is_none()
            || !self.proxy_settings(p.loc).cache.revalidate
        {
            return false;
        }
        let now = unix_now();
        let Some((file, meta)) = p.cache.stale.take() else {
            return false;
        };
        let Some(path) = self.cache_path(p) else {
            return false;
        };
        // The 304's fields, kept before its attempt ends (its connection may serve others).
        let mut fields = self.pool.get();
        fields.clear();
        let up = &p.hold;
        let connection_lists =
            |name: &[u8]| p.upstream_lines(b"connection").any(|v| listed_in(v, name));
        for (n, v) in &p.resp.headers {
            let (Some(name), Some(value)) = (up.get(n.clone()), up.get(v.clone())) else {
                continue;
            };
            if crate::cache::file::updates(name)
                && !super::hop_by_hop_response(name)
                && !connection_lists(name)
            {
                fields.extend_from_slice(name);
                fields.extend_from_slice(b": ");
                fields.extend_from_slice(value);
                fields.extend_from_slice(b"\r\n");
            }
        }
        self.release_upstream(p);
        p.hold.clear();
        p.resp.reset();
        // The stored head, updated.
        let mut stored = self.pool.get();
        let mut merged = self.pool.get();
        let read = read_object(&file, &p.cache.key, &mut stored);
        if read.is_ok() {
            let head = stored.get(..meta.head_len as usize).unwrap_or_default();
            crate::cache::file::update_head(head, &fields, &mut merged);
        }
        self.pool.put(fields);
        let changed =
            read.is_ok() && merged != stored.get(..meta.head_len as usize).unwrap_or_default();
        self.pool.put(stored);
        // Its freshness, as for a new response.
        let mut fresh = None;
        if read.is_ok() {
            p.hold.extend_from_slice(&merged);
            if matches!(
                parse_response_head(&p.hold, p.hold.len() + 1, 1000, &mut p.resp),
                Ok(Parsed::Complete)
            ) {
                fresh = self.response_valid(p, now).ok();
            }
            p.hold.clear();
            p.resp.reset();
        }
        let mut new_meta = meta;
        let mut serve = file;
        if let Some(
            f @ Fresh {
                valid: Some(valid), ..
            },
        ) = fresh
        {
            new_meta.valid_sec = valid;
            new_meta.date = now;
            new_meta.age = f.age;
            new_meta.flags = f.flags;
            new_meta.updating_sec = f.updating_sec;
            new_meta.error_sec = f.error_sec;
            let updated = if changed {
                self.cache_rewrite(&serve, meta, new_meta, &p.cache.key, &merged, &path)
                    .map(|(f, m)| {
                        serve = f;
                        new_meta = m;
                    })
            } else {
                // The header in place (the object's file itself, opened for writing).
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.write_all_at(&new_meta.encode(), 0))
            };
            match updated {
                Err(e) => {
                    elog!(
                        self.elog,
                        Crit,
                        "cannot update cache file \"{}\" ({})",
                        path.display(),
                        crate::log::OsError(&e)
                    );
                    new_meta = meta;
                }
                Ok(()) => {
                    if let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) {
                        index.stored(&p.cache.md5, new_meta.valid_sec, new_meta.file_len());
                        p.cache.updating = false;
                    }
                    self.ups.hot(p.cache.zone.unwrap_or(0)).remove(&p.cache.md5);
                }
            }
        }
        self.pool.put(merged);
        if !self.serve_cached(p, Some(serve), new_meta, Status::Revalidated, &path) {
            return false;
        }
        p.head_only |= p.cache.no_client_body;
        true
    }

    /// An object's head changed (a 304's fields): the object is written anew (header, key,
    /// the new head, the body copied in the kernel) to a temporary file renamed over it.
    /// Objects over [`REWRITE_MAX`] keep their head (an error, logged by the caller), so a
    /// revalidation never copies much on the event loop.
    fn cache_rewrite(
        &mut self,
        old: &std::fs::File,
        meta: Meta,
        mut new: Meta,
        key: &[u8],
        head: &[u8],
        path: &std::path::Path,
    ) -> std::io::Result<(std::fs::File, Meta)> {
        use std::io::{Seek, SeekFrom};
        if meta.body_len > REWRITE_MAX {
            return Err(std::io::Error::other(format!(
                "a head update of an object over {REWRITE_MAX} bytes is not written"
            )));
        }
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::from(ErrorKind::NotFound))?;
        let (mut file, temp) =
            crate::worker::body::create_temp(dir, &[], &mut self.ups.temp_seq, true)
                .map_err(|(_, e)| e)?;
        // (Removed on every failure below.)
        let guard = TempFile(temp);
        new.head_len = head.len() as u32;
        let mut prefix = self.pool.get();
        prefix.clear();
        prefix.extend_from_slice(&new.encode());
        crate::cache::file::write_prefix(key, head, &mut prefix);
        let written = file.write_all_at(&prefix, 0);
        self.pool.put(prefix);
        written?;
        let mut src = old.try_clone()?;
        src.seek(SeekFrom::Start(meta.body_start()))?;
        file.seek(SeekFrom::Start(new.body_start()))?;
        let copied = std::io::copy(&mut std::io::Read::take(&mut src, meta.body_len), &mut file)?;
        if copied != meta.body_len {
            return Err(std::io::Error::from(ErrorKind::UnexpectedEof));
        }
        std::fs::rename(&guard.0, path)?;
        std::mem::forget(guard);
        Ok((file, new))
    }

    /// `St::CacheLock`: waiting for another request to store the object.
    pub(super) fn step_cache_lock(&mut self, conn: &Conn, p: &mut Proxy) -> Step {
        let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) else {
            p.cache.lock_wait = false;
            return self.cache_lock_done(conn, p);
        };
        let entry = index.peek(&p.cache.md5);
        let now = unix_now();
        if let (Some(e), Some(path)) = (entry, self.cache_path(p)) {
            if e.exists && e.valid_sec >= now {
                if let Ok(f) = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::libc::O_NONBLOCK)
                    .open(&path)
                {
                    let meta = Meta::decode(&{
                        let mut h = [0u8; HEADER_LEN];
                        let _ = f.read_at(&mut h, 0);
                        h
                    });
                    p.hold.clear();
                    if let Some(meta) = meta {
                        if self.serve_cached(p, Some(f), meta, Status::Hit, &path) {
                            p.cache.lock_wait = false;
                            p.head_only |= p.cache.no_client_body;
                            p.st = St::Head;
                            return Step::Progress;
                        }
                    }
                }
            }
        }
        let cs = &self.proxy_settings(p.loc).cache;
        let mine = index
            .begin_update(&p.cache.md5, crate::limits::now_ms(), Some(cs.lock_age_ms))
            .unwrap_or(true);
        if mine {
            // The one who fetched let go without storing (or held it too long): this
            // request fetches it now.
            p.cache.updating = true;
            p.cache.lock_wait = false;
            return self.cache_lock_done(conn, p);
        }
        if p.cache.lock_until.is_some_and(|u| self.now >= u) {
            elog!(
                self.elog,
                Info,
                "cache lock timeout, client: {}",
                conn.peer.ip()
            );
            p.cache.lock_wait = false;
            p.cache.no_store = true;
            return self.cache_lock_done(conn, p);
        }
        // (Checked again a little later, as nginx's lock wait does.)
        let next = self.now + LOCK_POLL;
        p.deadline = p.cache.lock_until.map_or(next, |u| next.min(u));
        Step::Blocked
    }

    fn cache_lock_done(&mut self, conn: &Conn, p: &mut Proxy) -> Step {
        p.st = St::Connect;
        p.first_try = self.now;
        match self.connect_or_resolve(conn, p) {
            Ok(()) => Step::Progress,
            Err(code) => Step::Done(Drive::Failed(code)),
        }
    }

    /// A hit whose body goes out as stored (nothing recodes, codes or frames it): sent
    /// straight from the object's file, with sendfile where the client allows it (the
    /// path of a buffered response's temporary file).
    pub(super) fn hit_from_file(&mut self, conn: &Conn, p: &mut Proxy) {
        if p.cache.body_in_hold {
            // (Read whole with its head: sent from memory.)
            return;
        }
        let coded = conn.req.as_deref().is_some_and(|r| r.coder.is_some());
        if coded || p.recode.is_some() || p.rechunk || p.discard || p.cache.no_client_body {
            return;
        }
        if !matches!(p.relay.framing, Framing::Length(_)) {
            return;
        }
        let Some((Some(file), meta)) = p.cache.hit.take() else {
            return;
        };
        let (a, b) = p.relay.range.take().unwrap_or((0, meta.body_len));
        let start = meta.body_start();
        p.spill = Some((file, std::path::PathBuf::new()));
        p.spill_sent = start + a.min(meta.body_len);
        p.spill_written = start + b.min(meta.body_len);
        p.relay.framing = Framing::None;
        p.upstream_eof = true;
        p.released = true;
    }

    /// nginx's not_modified filter on a cached or cacheable 200 (the one evaluation of
    /// `crate::http::conditional`, as for files): 412, 304, or `None`.
    pub(super) fn cache_conditions(&self, conn: &Conn, p: &Proxy) -> Option<u16> {
        let req = conn.req.as_deref()?;
        if req.subrequest || req.mirror_sub {
            return None;
        }
        let header = |name: &[u8]| req.head.get(&conn.rbuf, name);
        let mtime = p
            .upstream_field(b"last-modified")
            .and_then(crate::http::response::parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        let c = crate::http::conditional::Conditions {
            if_unmodified_since: header(b"if-unmodified-since"),
            if_match: header(b"if-match"),
            if_modified_since: header(b"if-modified-since"),
            if_none_match: header(b"if-none-match"),
        };
        let ims = self.settings_for(p.loc).if_modified_since;
        crate::http::conditional::evaluate(&c, mtime, p.upstream_field(b"etag"), ims)
    }

    /// `proxy_intercept_errors` answers the upstream's error status with an error page: a
    /// status `proxy_cache_valid` gives a time is remembered for the key (nginx's cached
    /// `error`), and answers it until then.
    pub(super) fn cache_error(&mut self, conn: &Conn, p: &mut Proxy, status: u16) {
        let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) else {
            return;
        };
        if p.cache.no_store || p.cache.hit.is_some() {
            return;
        }
        let now = unix_now();
        // The time the answer's headers give, else proxy_cache_valid's for its status.
        let Ok(Fresh {
            valid: Some(valid), ..
        }) = self.response_valid(p, now)
        else {
            return;
        };
        let cs = &self.proxy_settings(p.loc).cache;
        if p.cache.uses < cs.min_uses {
            return;
        }
        if let Some(req) = conn.req.as_deref() {
            if any_true(self, conn, req, &cs.no_cache) {
                return;
            }
        }
        index.stored_error(&p.cache.md5, status, valid);
        p.cache.updating = false;
    }

    /// `proxy_cache_max_range_offset`: a request whose range starts at or past it (or a
    /// suffix range, or any range with 0) goes upstream without its answer being stored
    /// (nginx's `ngx_http_upstream_cache_check_range`).
    pub(super) fn cache_check_range(&self, conn: &Conn, req: &RequestCtx, p: &mut Proxy) {
        let Some(max) = self.proxy_settings(p.loc).cache.max_range_offset else {
            return;
        };
        let Some(v) = req.head.get(&conn.rbuf, b"range") else {
            return;
        };
        let declined = if max == 0 {
            true
        } else if v.len() < 7 || !v[..6].eq_ignore_ascii_case(b"bytes=") {
            false
        } else {
            let rest = v[6..].trim_ascii_start();
            if rest.starts_with(b"-") {
                true
            } else {
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let offset = std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                offset >= max
            }
        };
        if declined {
            p.cache.no_store = true;
        }
    }

    /// `proxy_store`: a 200 answer to a request that has a body is also written to the file
    /// the URI maps to (or the configured path), through a temporary file under
    /// `proxy_temp_path`.
    pub(super) fn store_decide(&mut self, conn: &Conn, p: &mut Proxy) {
        let ps = self.proxy_settings(p.loc);
        let Some(target) = ps.store.as_ref() else {
            return;
        };
        if p.resp.status != 200 || p.head_only || p.discard {
            return;
        }
        let Some(req) = conn.req.as_deref() else {
            return;
        };
        let mut path = self.scratch.var_pool.borrow_mut().buf();
        let mapped = match target {
            proton_ir::StoreTarget::Root => crate::worker::static_files::map_path(
                self, conn, req, p.loc, &req.uri, false, &mut path,
            ),
            proton_ir::StoreTarget::Path(t) => {
                self.ctx(conn, req, 0).expand(t, &mut path);
                !path.is_empty()
            }
        };
        let target = {
            use std::os::unix::ffi::OsStrExt;
            std::path::Path::new(std::ffi::OsStr::from_bytes(&path)).to_path_buf()
        };
        self.scratch.var_pool.borrow_mut().give_buf(path);
        if !mapped {
            return;
        }
        let dir = self.loaded.prefix.join(&ps.temp_path.path);
        let levels = ps.temp_path.levels.clone();
        let mode = ps.store_access;
        let (file, temp) = match self.upstream_temp(conn, &dir, &levels, true) {
            Some(x) => x,
            None => return,
        };
        let mtime = p
            .upstream_field(b"last-modified")
            .and_then(crate::http::response::parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        p.cache.store = Some(StoreWrite {
            file,
            temp,
            target,
            written: 0,
            failed: None,
            done: false,
            mtime,
            mode,
        });
    }

    /// The stored body is complete: the file gets its permissions and time and is renamed
    /// into place (its directories made as needed); cut short, it is removed.
    pub(super) fn store_commit(&mut self, conn: &Conn, p: &mut Proxy) {
        let Some(mut s) = p.cache.store.take() else {
            return;
        };
        if p.broken {
            return;
        }
        let what = "while reading upstream";
        if let Some(e) = s.failed.take() {
            elog!(
                self.elog,
                Crit,
                "write() \"{}\" failed ({}) {what}, client: {}",
                s.temp.display(),
                crate::log::OsError(&e),
                conn.peer.ip()
            );
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = s
            .file
            .set_permissions(std::fs::Permissions::from_mode(s.mode));
        if let Some(t) = s.mtime {
            let ts = nix::sys::time::TimeSpec::new(t, 0);
            use std::os::fd::AsRawFd;
            let _ = nix::sys::stat::futimens(s.file.as_raw_fd(), &ts, &ts);
        }
        let mut r = std::fs::rename(&s.temp, &s.target);
        if matches!(&r, Err(e) if e.kind() == ErrorKind::NotFound) {
            if let Some(parent) = s.target.parent() {
                use std::os::unix::fs::DirBuilderExt;
                // (Directories searchable where the files are readable, as nginx's
                // ngx_dir_access.)
                let dir_mode = s.mode | ((s.mode & 0o444) >> 2) | 0o700;
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(dir_mode)
                    .create(parent);
            }
            r = std::fs::rename(&s.temp, &s.target);
        }
        match r {
            Ok(()) => s.done = true,
            Err(e) => elog!(
                self.elog,
                Crit,
                "rename() \"{}\" to \"{}\" failed ({}) {what}, client: {}",
                s.temp.display(),
                s.target.display(),
                crate::log::OsError(&e),
                conn.peer.ip()
            ),
        }
    }

    /// RFC 9111 4.4: an unsafe method answered with a 2xx or 3xx removes what the cache
    /// holds for its key (the object's file and its entry), and for the keys of the URIs
    /// its `Location` and `Content-Location` name on the same origin.
    pub(super) fn cache_invalidate(&mut self, conn: &Conn, p: &mut Proxy) {
        let Some(zone) = p.cache.invalidate.take() else {
            return;
        };
        if !(200..400).contains(&p.resp.status) {
            return;
        }
        let loaded = self.loaded;
        let Some(index) = loaded.cache_zones.get(zone) else {
            return;
        };
        let mut ev = Evicted::default();
        ev.keys[0] = p.cache.md5;
        ev.n = 1;
        if let (Some(req), Some(cs)) =
            (conn.req.as_deref(), Some(&self.proxy_settings(p.loc).cache))
        {
            let mut target = self.scratch.var_pool.borrow_mut().buf();
            let mut line = self.scratch.var_pool.borrow_mut().buf();
            let mut key = self.scratch.var_pool.borrow_mut().buf();
            let base = conn.rbuf.get(req.head.target.clone()).unwrap_or_default();
            for name in [&b"location"[..], b"content-location"] {
                let Some(v) = stored_field(&p.hold[..p.resp.head_len.min(p.hold.len())], name)
                else {
                    continue;
                };
                if !crate::cache::control::same_origin_target(v, &req.host, base, &mut target) {
                    continue;
                }
                // The key as a GET of that target would make it.
                let (path, args) = match target.iter().position(|&b| b == b'?') {
                    Some(i) => (&target[..i], &target[i + 1..]),
                    None => (&target[..], &b""[..]),
                };
                line.clear();
                line.extend_from_slice(b"GET ");
                line.extend_from_slice(&target);
                line.extend_from_slice(b" HTTP/1.1");
                key.clear();
                let mut ctx = self.ctx(conn, req, 0);
                ctx.uri = path;
                ctx.args = args;
                ctx.main_line = Some(&line);
                ctx.proxy_host = &p.cache.proxy_host;
                ctx.proxy_unix = p.cache.proxy_unix;
                ctx.expand(&cs.key, &mut key);
                if ev.n < ev.keys.len() {
                    ev.keys[ev.n] = crate::cache::file::digest(&key);
                    ev.n += 1;
                }
            }
            let mut pool = self.scratch.var_pool.borrow_mut();
            pool.give_buf(target);
            pool.give_buf(line);
            pool.give_buf(key);
        }
        for md5 in ev.iter() {
            index.forget(md5);
        }
        self.cache_unlink(zone, &ev);
    }

    /// Several ranges of a cached 200 with `Accept-Ranges` (nginx's range filter sends a
    /// cached answer's ranges as `multipart/byteranges`): the stored head becomes a 206 of
    /// that type and the parts, read from the object, follow it in `p.hold` as a body of
    /// known length. False: not such a request (one range, none, an `If-Range`, too large).
    pub(super) fn cache_multipart(&mut self, conn: &Conn, p: &mut Proxy) -> bool {
        use std::io::Write as _;
        let Some((file, meta)) = p.cache.hit.as_ref() else {
            return false;
        };
        let Some(req) = conn.req.as_deref() else {
            return false;
        };
        let s = self.settings_for(p.loc);
        if p.resp.status != 200
            || p.head_only
            || s.max_ranges == Some(0)
            || req.head.get(&conn.rbuf, b"if-range").is_some()
            || (stored_field(&p.hold, b"accept-ranges").is_none()
                && !self.proxy_settings(p.loc).force_ranges)
        {
            return false;
        }
        let Some(range) = req.head.get(&conn.rbuf, b"range") else {
            return false;
        };
        let max = s.max_ranges.map_or(crate::http::range::MAX_RANGES, |m| {
            (m as usize).min(crate::http::range::MAX_RANGES)
        });
        let len = meta.body_len;
        let mut ranges = [crate::http::range::ByteRange::default(); crate::http::range::MAX_RANGES];
        let n = match crate::http::range::parse_range(range, len, &mut ranges[..max]) {
            crate::http::range::RangeResult::Satisfiable(n) if n > 1 => n,
            _ => return false,
        };
        let total: u64 = ranges[..n].iter().map(|r| r.end - r.start).sum();
        if total > crate::worker::static_files::MULTIPART_MAX {
            return false;
        }
        let head_len = p.resp.head_len.min(p.hold.len());
        let stored_ct = stored_field(&p.hold[..head_len], b"content-type").unwrap_or_default();
        // The parts' type and bytes as the charset filter makes them (nginx's charset filter
        // runs before its range filter).
        let mut charset_ct = self.scratch.var_pool.borrow_mut().buf();
        let (changed, recode) = self.proxied_type(conn, p, stored_ct, &mut charset_ct);
        let ct: &[u8] = if changed { &charset_ct } else { stored_ct };
        // A boundary that cannot occur in the body by chance: time-derived digits.
        let boundary = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut out = self.pool.get();
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 206 Partial Content\r\n");
        let drop = [
            &b"content-type"[..],
            b"content-length",
            b"transfer-encoding",
            b"content-range",
        ];
        for line in p.hold[..head_len]
            .split(|&b| b == b'\n')
            .skip(1)
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .take_while(|l| !l.is_empty())
        {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if drop.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                continue;
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(
            out,
            "Content-Type: multipart/byteranges; boundary={boundary:020}\r\n\r\n"
        );
        let new_head = out.len();
        let mut failed = false;
        for r in &ranges[..n] {
            out.extend_from_slice(b"\r\n--");
            let _ = write!(out, "{boundary:020}\r\n");
            if !ct.is_empty() {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(ct);
                out.extend_from_slice(b"\r\n");
            }
            let _ = write!(
                out,
                "Content-Range: bytes {}-{}/{len}\r\n\r\n",
                r.start,
                r.end - 1
            );
            let at = out.len();
            let part = (r.end - r.start) as usize;
            if p.cache.body_in_hold {
                match p
                    .hold
                    .get(head_len + r.start as usize..head_len + r.end as usize)
                {
                    Some(b) => out.extend_from_slice(b),
                    None => failed = true,
                }
            } else {
                out.resize(at + part, 0);
                if file.as_ref().is_none_or(|f| {
                    f.read_exact_at(&mut out[at..], meta.body_start() + r.start)
                        .is_err()
                }) {
                    failed = true;
                }
            }
            if failed {
                break;
            }
            if let Some(r) = recode {
                r.apply(&self.loaded.ir, &mut out[at..]);
            }
        }
        let _ = write!(out, "\r\n--{boundary:020}--\r\n");
        self.scratch.var_pool.borrow_mut().give_buf(charset_ct);
        if failed {
            elog!(
                self.elog,
                Crit,
                "pread() of a cache file failed while building a multipart answer, client: {}",
                conn.peer.ip()
            );
            self.pool.put(out);
            return false;
        }
        let body = (out.len() - new_head) as u64;
        let old = std::mem::replace(&mut p.hold, out);
        self.pool.put(old);
        if !matches!(
            parse_response_head(&p.hold, new_head + 1, 1000, &mut p.resp),
            Ok(Parsed::Complete) if p.resp.head_len == new_head
        ) {
            return false;
        }
        p.resp.content_length = Some(body);
        p.cache.body_in_hold = true;
        p.cache.multipart = true;
        true
    }

    /// A proxied request is over: a fetch it held lets go.
    pub(super) fn cache_release(&mut self, p: &mut Proxy) {
        if !p.cache.updating {
            return;
        }
        p.cache.updating = false;
        if let Some(index) = p.cache.zone.and_then(|z| self.loaded.cache_zones.get(z)) {
            index.end_update(&p.cache.md5);
        }
    }

    /// How long the upstream's response may be kept, by nginx's rules in its order:
    /// `X-Accel-Expires`, then RFC 9111's (`Surrogate-Control`, `Cache-Control`, `Expires`,
    /// less the age the response has on arrival), each unless ignored, `Set-Cookie` and
    /// `Vary` refusing it, then `proxy_cache_valid` for its status. `Err`: not to be stored;
    /// `valid: None`: no rule gives it a time.
    fn response_valid(&self, p: &Proxy, now: i64) -> Result<Fresh, ()> {
        use crate::cache::control;
        let ps = self.proxy_settings(p.loc);
        let cs = &ps.cache;
        let ig = ps.ignore_headers;
        let status = p.resp.status;
        let lines = |name: &'static [u8]| p.upstream_lines(name);
        let field = |name: &'static [u8]| p.upstream_field(name);
        let secs = |v: &[u8]| {
            crate::http::response::parse_http_date(v)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
        };
        let mut fresh = Fresh::default();
        let mut valid: Option<i64> = None;
        let mut cacheable = true;
        // X-Accel-Expires: `@` an absolute time, else seconds (0: not stored); it wins over
        // Cache-Control and Expires.
        let accel = field(b"x-accel-expires").filter(|_| !ig.x_accel_expires);
        if let Some(v) = accel {
            let v = v.trim_ascii();
            let (abs, digits) = match v.strip_prefix(b"@") {
                Some(d) => (true, d),
                None => (false, v),
            };
            if let Some(n) = std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                if abs {
                    valid = Some(n);
                } else if n == 0 {
                    cacheable = false;
                } else {
                    valid = Some(now.saturating_add(n));
                }
            }
        }
        // The age on arrival: the larger of its Age and the time since its Date. An Age
        // that is not one number makes the response stale.
        let age = match control::age(lines(b"age")) {
            Some(Ok(a)) => Some(a),
            Some(Err(())) => None,
            None => Some(0),
        };
        let date = field(b"date").and_then(secs);
        let initial = age.map(|a| control::initial_age(now, date, a));
        fresh.age = initial.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX));
        // What is left of a lifetime once the age is taken off (`None`: stale on arrival).
        let left = |lifetime: u64| {
            let a = initial?;
            (lifetime > a).then(|| now.saturating_add(i64::try_from(lifetime - a).unwrap_or(0)))
        };
        let by_headers = valid.is_none();
        // X-Accel-Expires is the application's word to this proxy (nginx's), as
        // proxy_cache_valid is the configuration's: either makes the answer one to share
        // with requests that carry credentials (RFC 9111 3.5 applies to what only the
        // HTTP caching headers make storable; nginx's suite relies on the former).
        if !by_headers {
            fresh.flags |= FLAG_AUTHORIZED;
        }
        let mut cc = control::Control::default();
        let mut sc = control::Surrogate::default();
        if !ig.cache_control {
            for v in lines(b"cache-control") {
                cc.add(v);
            }
            for v in lines(b"surrogate-control") {
                sc.add(v);
            }
        }
        if cc.public || cc.s_maxage.is_some() || cc.must_revalidate {
            fresh.flags |= FLAG_AUTHORIZED;
        }
        if cc.must_revalidate {
            fresh.flags |= FLAG_REVALIDATE;
        }
        if cacheable && by_headers && !ig.cache_control {
            // A Surrogate-Control for this cache replaces what Cache-Control says to it.
            let surrogate = sc.max_age.is_some() || sc.no_store;
            let understood = control::understood(status);
            // (must-understand: a status this cache knows is stored whatever no-store says;
            // another is not stored.)
            let refused = if cc.must_understand {
                !understood
            } else {
                cc.no_store
            };
            if sc.no_store || (!surrogate && (refused || cc.private)) {
                cacheable = false;
            }
            // Surrogate-Control's max-age is this cache's own and comes first.
            match sc.max_age.or(cc.lifetime()) {
                None => {}
                Some(None) | Some(Some(0)) => cacheable = false,
                Some(Some(n)) => match left(n) {
                    Some(v) => valid = Some(v),
                    None => cacheable = false,
                },
            }
            // no-cache: kept only to be revalidated (with proxy_cache_revalidate and a
            // validator to revalidate it with; else not stored, as nginx).
            if cc.no_cache && cacheable && !surrogate {
                let validator = field(b"etag").is_some() || field(b"last-modified").is_some();
                if cs.revalidate && validator {
                    fresh.flags |= FLAG_REVALIDATE;
                    valid = Some(now - 1);
                } else {
                    cacheable = false;
                }
            }
        }
        // The stale times, from Cache-Control even where X-Accel-Expires gave the time.
        if cacheable && !ig.cache_control {
            match cc.stale_while_revalidate {
                Some(None) => cacheable = false,
                Some(Some(n)) => {
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    fresh.updating_sec = n;
                    fresh.error_sec = n;
                }
                None => {}
            }
            match cc.stale_if_error {
                Some(None) => cacheable = false,
                Some(Some(n)) => fresh.error_sec = u32::try_from(n).unwrap_or(u32::MAX),
                None => {}
            }
        }
        // Expires counts from the response's Date (its own clock), else from now.
        if valid.is_none() && cacheable && !ig.expires {
            if let Some(v) = field(b"expires") {
                match secs(v) {
                    Some(t) => {
                        let lifetime = t.saturating_sub(date.unwrap_or(now));
                        match u64::try_from(lifetime).ok().and_then(left) {
                            Some(v) => valid = Some(v),
                            None => cacheable = false,
                        }
                    }
                    None => cacheable = false,
                }
            }
        }
        if !ig.set_cookie && field(b"set-cookie").is_some() {
            cacheable = false;
        }
        // `Vary: *` (alone or among other names), or a Vary too long to keep (nginx's limit:
        // 128 bytes), is not stored; other answers with Vary are stored per variant (see
        // `cache_decide`).
        if let Some(v) = field(b"vary").filter(|_| !ig.vary) {
            let star =
                lines(b"vary").any(|v| v.split(|&b| b == b',').any(|n| n.trim_ascii() == b"*"));
            if star || v.len() > 128 {
                cacheable = false;
            }
        }
        if valid.is_none() && cacheable {
            valid = cs
                .valid
                .iter()
                .find(|v| v.any || v.codes.contains(&status))
                .filter(|v| v.secs > 0)
                .map(|v| now.saturating_add(v.secs as i64));
            // (The configuration's own say: shared with requests that carry credentials, as
            // nginx shares them; see below for X-Accel-Expires.)
            if valid.is_some() {
                fresh.flags |= FLAG_AUTHORIZED;
            }
        }
        if !cacheable {
            return Err(());
        }
        fresh.valid = valid;
        Ok(fresh)
    }

    /// At the upstream's head: whether this response is stored (nginx's rules, in its
    /// order), and if so the temporary file is made with the header, key and head.
    pub(super) fn cache_decide(&mut self, conn: &Conn, p: &mut Proxy) {
        let Some(zone) = p.cache.zone else {
            return;
        };
        if p.cache.no_store {
            return;
        }
        let now = unix_now();
        let Ok(fresh) = self.response_valid(p, now) else {
            return;
        };
        let Some(valid) = fresh.valid else {
            return;
        };
        if p.cache.authorized && fresh.flags & FLAG_AUTHORIZED == 0 {
            return;
        }
        let cs = &self.proxy_settings(p.loc).cache;
        let field = |name: &'static [u8]| p.upstream_field(name);
        if p.cache.uses < cs.min_uses {
            return;
        }
        if let Some(req) = conn.req.as_deref() {
            if any_true(self, conn, req, &cs.no_cache) {
                return;
            }
        }
        let head_len = p.resp.head_len.min(p.hold.len());
        if head_len + p.cache.key.len() > MAX_META {
            return;
        }
        let loaded = self.loaded;
        let Some(z) = loaded.ir.cache_zones.get(zone) else {
            return;
        };
        let dir = loaded.prefix.join(&z.path);
        let (file, temp) = match self.upstream_temp(conn, &dir, &[], true) {
            Some(x) => x,
            None => return,
        };
        let last_modified = field(b"last-modified")
            .and_then(crate::http::response::parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_secs() as i64);
        // Vary: the answer is the variant the request's values give. Stored under the
        // variant's own key when that is the key looked up (a secondary one), else under
        // the main key (nginx's ngx_http_file_cache_update_variant).
        let main = if p.cache.secondary {
            p.cache.main_md5
        } else {
            p.cache.md5
        };
        let vary = field(b"vary").filter(|_| !self.proxy_settings(p.loc).ignore_headers.vary);
        let variant = match (vary, conn.req.as_deref()) {
            (Some(v), Some(req)) => crate::cache::file::variant(&main, v, |f| {
                for (n, v) in req.head.fields(&conn.rbuf) {
                    f(n, v);
                }
            }),
            _ => [0u8; 16],
        };
        if p.cache.secondary && (vary.is_none() || variant != p.cache.md5) {
            // Back to the main key: the fetch of the variant's key is let go.
            self.cache_release(p);
            p.cache.md5 = main;
            p.cache.secondary = false;
            if let Some(index) = self.loaded.cache_zones.get(zone) {
                let mut ev = Evicted::default();
                index.lookup(&main, now, z.inactive_secs, z.max_size, &mut ev);
                self.cache_unlink(zone, &ev);
            }
        }
        let meta = Meta {
            valid_sec: valid,
            date: now,
            last_modified,
            body_len: 0,
            key_len: p.cache.key.len() as u32,
            head_len: head_len as u32,
            updating_sec: fresh.updating_sec,
            error_sec: fresh.error_sec,
            variant,
            age: fresh.age,
            flags: fresh.flags,
        };
        let mut w = CacheWrite {
            file,
            temp,
            meta,
            written: 0,
            failed: None,
            done: false,
        };
        let mut prefix = self.pool.get();
        prefix.clear();
        prefix.extend_from_slice(&meta.encode());
        crate::cache::file::write_prefix(&p.cache.key, &p.hold[..head_len], &mut prefix);
        if let Err(e) = w.file.write_all_at(&prefix, 0) {
            w.failed = Some(e);
        }
        self.pool.put(prefix);
        p.cache.write = Some(w);
        p.cache.cacheable = true;
    }

    /// The response is complete (or over): a stored one is put in place, one cut short
    /// removed.
    pub(super) fn cache_commit(&mut self, conn: &Conn, p: &mut Proxy) {
        let Some(mut w) = p.cache.write.take() else {
            return;
        };
        let Some(zone) = p.cache.zone else {
            return;
        };
        if p.broken {
            return;
        }
        if let Some(e) = w.failed.take() {
            elog!(
                self.elog,
                Crit,
                "write() \"{}\" failed ({}) while reading upstream, client: {}",
                w.temp.display(),
                crate::log::OsError(&e),
                conn.peer.ip()
            );
            return;
        }
        let loaded = self.loaded;
        let (Some(index), Some(z)) = (
            loaded.cache_zones.get(zone),
            loaded.ir.cache_zones.get(zone),
        ) else {
            return;
        };
        w.meta.body_len = w.written;
        if let Err(e) = w.file.write_all_at(&w.meta.encode(), 0) {
            elog!(
                self.elog,
                Crit,
                "write() \"{}\" failed ({}) while reading upstream, client: {}",
                w.temp.display(),
                crate::log::OsError(&e),
                conn.peer.ip()
            );
            return;
        }
        let mut rel = String::new();
        crate::cache::file::relative_path(&z.levels, &p.cache.md5, &mut rel);
        let path = loaded.prefix.join(&z.path).join(&rel);
        let mut r = std::fs::rename(&w.temp, &path);
        if matches!(&r, Err(e) if e.kind() == ErrorKind::NotFound) {
            if let Some(parent) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent);
            }
            r = std::fs::rename(&w.temp, &path);
        }
        if let Err(e) = r {
            elog!(
                self.elog,
                Crit,
                "rename() \"{}\" to \"{}\" failed ({}) while reading upstream, client: {}",
                w.temp.display(),
                path.display(),
                crate::log::OsError(&e),
                conn.peer.ip()
            );
            return;
        }
        w.done = true;
        index.stored(&p.cache.md5, w.meta.valid_sec, w.meta.file_len());
        // min_free: the file system keeps that much free; the least recently used
        // objects go while it does not (nginx's cache manager does the same).
        if let Some(min_free) = z.min_free {
            let dir = loaded.prefix.join(&z.path);
            if let Ok(st) = nix::sys::statvfs::statvfs(&dir) {
                let free = st.blocks_available().saturating_mul(st.fragment_size());
                if free < min_free {
                    let deficit = min_free - free;
                    let target = index.size().saturating_sub(deficit);
                    let mut evicted = Evicted::default();
                    index.expire(unix_now(), Some(target), &mut evicted);
                    self.cache_unlink(zone, &evicted);
                }
            }
        }
    }
}

impl Proxy {
    /// Body bytes on their way to the client (decoded, before a range is cut from them) go
    /// into the cache's file too.
    pub(super) fn cache_tap(&mut self, body: &[u8]) {
        if let Some(s) = self.cache.store.as_mut().filter(|s| s.failed.is_none()) {
            match s.file.write_all_at(body, s.written) {
                Ok(()) => s.written += body.len() as u64,
                Err(e) => s.failed = Some(e),
            }
        }
        let Some(w) = self.cache.write.as_mut() else {
            return;
        };
        if w.failed.is_some() || body.is_empty() {
            return;
        }
        let at = w.meta.body_start() + w.written;
        match w.file.write_all_at(body, at) {
            Ok(()) => w.written += body.len() as u64,
            Err(e) => w.failed = Some(e),
        }
    }
}

/// The variant of the request for a stored head's `Vary` (nginx's; see
/// [`crate::cache::file::variant`]).
fn request_variant(conn: &Conn, req: &RequestCtx, head: &[u8], main: [u8; 16]) -> [u8; 16] {
    let vary = stored_field(head, b"vary").unwrap_or_default();
    crate::cache::file::variant(&main, vary, |f| {
        for (n, v) in req.head.fields(&conn.rbuf) {
            f(n, v);
        }
    })
}

/// A field of a stored head (status line and fields as received; the first such line).
fn stored_field<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    // (The head ends with an empty line; a body may follow it in the buffer.)
    let end = memchr::memmem::find(head, b"\r\n\r\n").map_or(head.len(), |i| i + 2);
    crate::worker::vars::head_fields(&head[..end])
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Reads an object's header, checks it against the key and the file's length, and puts the
/// stored response head in `head`.
fn read_object(
    file: &std::fs::File,
    key: &[u8],
    head: &mut Vec<u8>,
) -> Result<(Meta, bool), &'static str> {
    // One read for the header, the key, the head and (a small object) the body.
    head.clear();
    head.resize(READ_AHEAD, 0);
    let n = loop {
        match file.read_at(head, 0) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err("could not be read"),
            Ok(n) => break n,
        }
    };
    head.truncate(n);
    if n < HEADER_LEN {
        return Err("is too small");
    }
    let meta = Meta::decode(&head[..HEADER_LEN]).ok_or("has incorrect header")?;
    // A short read ends the file: its length is known without asking.
    let len = if n < READ_AHEAD {
        n as u64
    } else {
        file.metadata().map_err(|_| "could not be read")?.len()
    };
    if len != meta.file_len() {
        return Err("has incorrect length");
    }
    let start = meta.body_start() as usize;
    if start > n {
        let old = head.len();
        head.resize(start, 0);
        match file.read_at(&mut head[old..], old as u64) {
            Ok(got) if got == start - old => {}
            _ => return Err("could not be read"),
        }
    }
    // The whole body came with it, or none of it is kept here.
    let whole = len as usize <= head.len();
    if !whole {
        head.truncate(start);
    }
    let (k, _) = meta
        .parts(&head[HEADER_LEN..])
        .ok_or("has incorrect header")?;
    if k != key {
        // (Two keys with one digest: nginx logs the same.)
        return Err("has md5 collision");
    }
    head.drain(..HEADER_LEN + 5 + key.len() + 1);
    Ok((meta, whole))
}

/// A cached object's body read as an upstream's (for a hit whose body is recoded, coded or
/// cut: the same steps as the upstream's bytes take).
pub(super) struct HitReader<'a> {
    pub(super) file: &'a std::fs::File,
    pub(super) pos: &'a mut u64,
    pub(super) end: u64,
}

impl UpstreamIo for HitReader<'_> {
    fn read(
        &mut self,
        _ready: &mut bool,
        _hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(*self.pos)).unwrap_or(usize::MAX);
        let n = want.min(left).min(64 * 1024);
        if n == 0 {
            return Ok(0);
        }
        let old = buf.len();
        buf.resize(old + n, 0);
        match self.file.read_at(&mut buf[old..], *self.pos) {
            Ok(0) => {
                buf.truncate(old);
                Err(std::io::Error::from(ErrorKind::UnexpectedEof))
            }
            Ok(got) => {
                buf.truncate(old + got);
                *self.pos += got as u64;
                Ok(got)
            }
            Err(e) => {
                buf.truncate(old);
                Err(e)
            }
        }
    }

    fn write(&mut self, _data: &[u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}
