//! The request context: everything one request owns from its parsed head to its access-log
//! line — the head, the URI and arguments after rewrites, the host, regex captures, `set`
//! variables, the server and location chosen, the redirect or return text, the upstream
//! attempt and its timing.
//!
//! A context belongs to its request, never to the worker: an HTTP/1.1 connection owns the
//! context of the request it is answering (see `Conn::req`), an HTTP/2 stream will own its
//! own. Contexts are pooled per worker ([`ContextPool`]) so a request allocates nothing once
//! the pool and the contexts' buffers have grown; an idle keep-alive connection holds none.

use super::vars::{Captures, VarPool};
use crate::http::request::RequestHead;
use proton_ir::{LocationId, ServerId};

/// One request's state.
pub(crate) struct RequestCtx {
    /// The parsed request head (ranges into the connection's read buffer).
    pub(crate) head: RequestHead,
    /// The current URI: normalised, then as rewrites, try_files, index and error_page left it.
    pub(crate) uri: Vec<u8>,
    /// The current arguments (after `?`).
    pub(crate) args: Vec<u8>,
    /// The host the server was chosen by (lowercased, no port, no trailing dot).
    pub(crate) host: Vec<u8>,
    /// `set` variables, by `Ir::user_vars` index (`None`: not set).
    pub(crate) user: Vec<Option<Vec<u8>>>,
    /// `$1`… and named groups of the request's regex matches.
    pub(crate) captures: Captures,
    /// The server chosen by Host.
    pub(crate) server: ServerId,
    /// The location answering (or last chosen while routing).
    pub(crate) location: Option<LocationId>,
    /// URI changes left (rewrites that re-select the location and internal redirects).
    pub(crate) budget: proton_ir::rewrite::UriBudget,
    /// The request reached its location through a rewrite or an internal redirect
    /// (`internal` locations accept it).
    pub(crate) internal: bool,
    /// The URI was changed by rewrite, try_files or error_page (the proxy then sends it
    /// escaped instead of the client's own).
    pub(crate) uri_changed: bool,
    /// A `rewrite` changed the URI in the location that answers and stopped there (`break`):
    /// nginx's `valid_location` is off, so a `proxy_pass` with a URI part sends the whole
    /// changed URI instead of replacing the location prefix. Cleared whenever a location is
    /// selected (after `last`, an internal redirect, a post action).
    pub(crate) rewritten_here: bool,
    /// The body of a `return` or the URL of a redirect being answered.
    pub(crate) text: Vec<u8>,
    /// The URL of a redirect `return` whose code went to error_page: nginx keeps its
    /// `Location` on the final answer (unless that is a redirect of its own).
    pub(crate) redirected: Vec<u8>,
    /// `$limit_rate`: set by `set $limit_rate`, else from the location once the response
    /// starts (`None`: not yet).
    pub(crate) limit_rate: Option<u64>,
    /// `limit_rate_after`, read with the rate.
    pub(crate) limit_rate_after: Option<u64>,
    /// `sendfile_max_chunk` of the file being sent (0: no limit).
    pub(crate) sendfile_max_chunk: u64,
    /// error_page redirected the request (to a URI or a named location): the status and the
    /// `=response` of that error_page. As nginx, the request goes on as a GET (a HEAD stays
    /// a HEAD), e.g. towards an upstream, and the answer keeps the error's status unless
    /// `=` (the target's own) or `=code` says otherwise.
    pub(crate) error_status: Option<(u16, Option<u16>)>,
    /// The client address realip found in a header (`None`: the connection's peer).
    pub(crate) client: Option<std::net::SocketAddr>,
    /// When `limit_rate` lets the response go on: the one wake-up queued for it (see
    /// `conn::rate_allowance`).
    pub(crate) wake_at: Option<std::time::Instant>,
    /// Requests answered on the connection before this one.
    pub(crate) served: u32,
    /// The request announced a body with `Expect: 100-continue` that no handler reads
    /// (see `Worker::keep_alive_for`).
    pub(crate) expect_unread: bool,
    /// Modification time of the file being answered (for `expires modified`).
    pub(crate) mtime: Option<i64>,
    /// Every upstream attempt of the request, in order (`$upstream_addr`, `$upstream_status`,
    /// the times and byte counts), those of each proxied response after a mark.
    pub(crate) upstreams: Vec<UpState>,
    /// The upstream's response head (status line and header lines, as received) of the last
    /// attempt: `$upstream_http_*`, `$upstream_cookie_*`. Empty when not proxied.
    pub(crate) upstream_head: Vec<u8>,
    /// The trailer section of the upstream's chunked response, as received
    /// (`$upstream_trailer_*`; at most the decoder's trailer limit).
    pub(crate) upstream_trailers: Vec<u8>,
    /// The request was sent elsewhere by an upstream's `X-Accel-Redirect` (or is a mirror of
    /// a request an error_page or X-Accel-Redirect made a GET): it is a GET (a HEAD stays
    /// one); after X-Accel-Redirect the answer carries some of that upstream's headers.
    pub(crate) xar: bool,
    /// Header lines of an upstream answer that go with the answer of the request instead
    /// (an intercepted 401's `WWW-Authenticate`, X-Accel-Redirect's redirect headers),
    /// copied when the upstream's answer was set aside.
    pub(crate) carried: Vec<u8>,
    /// An `if` block with a proxy_pass was entered while the location was being chosen.
    pub(crate) if_proxy: bool,
    /// The head of a proxied response as sent to the client, for `$sent_http_*` in the
    /// access log (a head Proton makes itself is read from the write buffer instead).
    pub(crate) sent_head: Vec<u8>,
    /// When the request started (its head was read), in `conn::clock_ms` units.
    pub(crate) started: u32,
    /// When the connection was accepted, in `conn::clock_ms` units (`$connection_time`,
    /// `keepalive_time`).
    pub(crate) conn_started: u32,
    /// The `User-Agent`'s browser family (`keepalive_disable`).
    pub(crate) browser: crate::http::response::Browser,
    /// The response is out and the request runs its `post_action` (nginx's
    /// `r->post_action`): its output is thrown away, it is not logged again, and it runs no
    /// further post action.
    pub(crate) post_action: bool,
    /// The request runs as one of its own `mirror` subrequests: its output is thrown away,
    /// it is logged only with `log_subrequest on`, and it mirrors nothing itself.
    pub(crate) mirror_sub: bool,
    /// The request is a subrequest of SSI or addition (`worker::sub`): it is internal, is
    /// not compressed, mirrored or logged (unless `log_subrequest on`), and runs no
    /// addition.
    pub(crate) subrequest: bool,
    /// The mirror subrequests still to run once the response is out, in order (noted each
    /// time the request reached the content handler of a location with `mirror`).
    pub(crate) mirrors: Vec<PendingMirror>,
    /// The arguments of the pending mirrors (each keeps a range of it).
    pub(crate) mirror_args: Vec<u8>,
    /// What the main request's response was (status, location, bytes), kept while its
    /// mirrors run: the connection goes on with it afterwards (keep-alive, lingering).
    pub(crate) main_finished: Option<super::conn::Finished>,
    /// The values of non-`volatile` maps computed so far (nginx keeps them for the request).
    pub(crate) maps: std::cell::RefCell<super::vars::MapCache>,
    /// The request body as the proxy read it (memory or a temporary file), kept for the
    /// whole request: `$request_body`, retries, error pages, a post action.
    pub(crate) body: super::body::RequestBody,
    /// Request body bytes read so far, as received (HTTP/1.1: with any chunked framing;
    /// HTTP/2: the DATA payloads): with the head, `$request_length`, as nginx counts it.
    pub(crate) body_read: u64,
    /// The body coder of the response (gzip, gunzip), while it is coded.
    pub(crate) coder: Option<Box<super::filter::BodyCoder>>,
    /// nginx's `r->gzip_tested`/`r->gzip_ok`, once asked: whether the request may get a
    /// compressed response at all (`gzip_http_version`, `gzip_proxied`, `gzip_disable`,
    /// not a subrequest); `Accept-Encoding` is read for each coding.
    pub(crate) gzip_tested: Option<bool>,
    /// nginx's `r->gzip_vary`: a gzip module looked at the response (gzip_static found a
    /// `.gz` file the client did not get).
    pub(crate) gzip_vary: bool,
    /// Body bytes in and out of the response's compression, and its coding
    /// (`$gzip_ratio`, `$brotli_ratio`, `$zstd_ratio`).
    pub(crate) gzip_ratio: Option<(crate::http::coding::Coding, (u64, u64))>,
    /// `slice`: the ranges of the response being fetched (see `worker::ssi`).
    pub(crate) slice: Option<Box<SliceState>>,
    /// `limit_req` and `limit_conn`: statuses, the counts the request holds (given back
    /// when the context is reset or dropped), a delay's resumption point.
    pub(crate) limits: super::limits::LimitState,
    /// What the content cache did for this request (`$upstream_cache_status`; see
    /// `crate::cache::Status`, 0: no cache).
    pub(crate) cache_status: u8,
    /// `proxy_cache_background_update`: a stale object was sent; this location fetches it
    /// again once the response is out (a subrequest, as nginx's background update), with
    /// the URI and arguments the request had then.
    pub(crate) cache_update: Option<proton_ir::LocationId>,
    pub(crate) update_uri: Vec<u8>,
    pub(crate) update_args: Vec<u8>,
    /// This (sub)request is such a background update: it goes upstream and stores what
    /// comes, and nothing goes to the client.
    pub(crate) cache_updater: bool,
    /// The access phase's state (`satisfy any`'s refusal, the auth subrequest,
    /// `auth_delay`).
    pub(crate) auth: super::auth::AuthState,
}

/// The `slice` module's state of a request (nginx's `ngx_http_slice_ctx_t`): the main
/// request's, or a slice subrequest's (its range, and the ETag every part must have).
#[derive(Debug, Clone, Default)]
pub(crate) struct SliceState {
    /// `slice`'s size.
    pub(crate) size: u64,
    /// Where the next range to fetch starts.
    pub(crate) start: u64,
    /// Where the client's part ends (exclusive): the whole length, or its range's end.
    pub(crate) end: u64,
    /// The client's part, absolute (start, end exclusive): slices are cut to it.
    pub(crate) want: (u64, u64),
    /// The ETag of the first part (empty: none).
    pub(crate) etag: Vec<u8>,
    /// Of the slice a subrequest is fetching: bytes to skip, then to keep (the client's
    /// range cut from it).
    pub(crate) cut: (u64, u64),
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx {
            head: RequestHead::default(),
            uri: Vec::new(),
            args: Vec::new(),
            host: Vec::new(),
            user: Vec::new(),
            captures: Captures::default(),
            server: ServerId(0),
            location: None,
            budget: proton_ir::rewrite::UriBudget::default(),
            internal: false,
            uri_changed: false,
            rewritten_here: false,
            text: Vec::new(),
            redirected: Vec::new(),
            limit_rate: None,
            sendfile_max_chunk: 0,
            limit_rate_after: None,
            wake_at: None,
            client: None,
            error_status: None,
            served: 0,
            expect_unread: false,
            mtime: None,
            upstreams: Vec::new(),
            upstream_head: Vec::new(),
            upstream_trailers: Vec::new(),
            xar: false,
            carried: Vec::new(),
            if_proxy: false,
            sent_head: Vec::new(),
            started: 0,
            conn_started: 0,
            browser: Default::default(),
            post_action: false,
            mirror_sub: false,
            subrequest: false,
            mirrors: Vec::new(),
            mirror_args: Vec::new(),
            main_finished: None,
            maps: Default::default(),
            body: Default::default(),
            body_read: 0,
            coder: None,
            gzip_tested: None,
            gzip_vary: false,
            gzip_ratio: None,
            slice: None,
            limits: Default::default(),
            cache_status: 0,
            cache_update: None,
            update_uri: Vec::new(),
            update_args: Vec::new(),
            cache_updater: false,
            auth: Default::default(),
        }
    }
}

/// Buffers kept by a context between requests at most (larger ones are dropped).
const KEEP: usize = 64 * 1024;

impl RequestCtx {
    /// Makes `text` the target of nginx's 301 that adds a slash to a directory's URI: the
    /// URI escaped as nginx escapes it, `/`, then the arguments.
    pub(crate) fn set_slash_redirect(&mut self) {
        self.text.clear();
        crate::http::response::escape_uri(
            &self.uri,
            crate::http::response::Escape::Uri,
            &mut self.text,
        );
        self.text.push(b'/');
        if !self.args.is_empty() {
            self.text.push(b'?');
            self.text.extend_from_slice(&self.args);
        }
    }

    /// The request goes on as one of its subrequests (a mirror, its URI and arguments set by
    /// the caller): routed afresh as an internal request, with the request's head, `set`
    /// values and body, and nothing of the answer it had. `get`: it is a GET (see `xar`).
    pub(crate) fn start_subrequest(&mut self, get: bool) {
        self.forget_answer();
        self.mirror_sub = true;
        // (A subrequest is not a post action, even after one ran.)
        self.post_action = false;
        self.internal = true;
        self.uri_changed = true;
        self.xar = get;
    }

    /// Forgets where the request was routed and what answered it (kept: the head, URI,
    /// arguments, host, `set` values, body and connection facts).
    fn forget_answer(&mut self) {
        for b in [
            &mut self.text,
            &mut self.redirected,
            &mut self.upstream_head,
            &mut self.upstream_trailers,
            &mut self.sent_head,
            &mut self.carried,
        ] {
            b.clear();
        }
        self.location = None;
        self.budget = proton_ir::rewrite::UriBudget::default();
        self.rewritten_here = false;
        self.limit_rate = None;
        self.sendfile_max_chunk = 0;
        self.limit_rate_after = None;
        self.wake_at = None;
        self.error_status = None;
        self.expect_unread = false;
        self.mtime = None;
        self.upstreams.clear();
        self.xar = false;
        self.if_proxy = false;
        self.coder = None;
        self.gzip_tested = None;
        self.gzip_vary = false;
        self.gzip_ratio = None;
        self.slice = None;
        self.auth.reset();
    }

    /// Forgets the last request, keeping the buffers (the `set` values go back to `pool`).
    fn reset(&mut self, pool: &mut VarPool) {
        for slot in self.user.iter_mut() {
            if let Some(old) = slot.take() {
                pool.give_buf(old);
            }
        }
        for b in [
            &mut self.uri,
            &mut self.args,
            &mut self.host,
            &mut self.text,
            &mut self.redirected,
            &mut self.upstream_head,
            &mut self.upstream_trailers,
            &mut self.sent_head,
            &mut self.carried,
            &mut self.mirror_args,
        ] {
            if b.capacity() > KEEP {
                *b = Vec::new();
            }
            b.clear();
        }
        self.forget_answer();
        self.captures.clear();
        self.server = ServerId(0);
        self.internal = false;
        self.uri_changed = false;
        self.served = 0;
        self.client = None;
        self.started = 0;
        self.conn_started = 0;
        self.browser = Default::default();
        self.post_action = false;
        self.mirror_sub = false;
        self.subrequest = false;
        self.mirrors.clear();
        self.main_finished = None;
        self.maps.get_mut().clear();
        self.body.reset();
        self.body_read = 0;
        self.limits.reset();
        self.cache_status = 0;
        self.cache_update = None;
        self.update_uri.clear();
        self.update_args.clear();
        self.cache_updater = false;
    }
}

/// A mirror subrequest to run: the `mirror` URI (index `index` of the list in settings
/// `settings`), whether it carries the request's body, and its arguments (the request's
/// when it was noted: `RequestCtx::mirror_args[args]`).
#[derive(Debug, Clone)]
pub(crate) struct PendingMirror {
    pub(crate) settings: u32,
    pub(crate) index: u16,
    pub(crate) body: bool,
    /// The request was a GET by then (an error_page or X-Accel-Redirect made it one; a HEAD
    /// stays one): so is the mirror, as nginx copies the method the request has.
    pub(crate) get: bool,
    pub(crate) args: std::ops::Range<u32>,
}

impl RequestCtx {
    /// The request's body must be kept whole for mirror subrequests still to run (or for
    /// the one running and those after it).
    pub(crate) fn mirror_body_wanted(&self) -> bool {
        self.mirrors.iter().any(|m| m.body)
    }
}

/// Contexts waiting for a request.
#[derive(Default)]
pub(crate) struct ContextPool {
    /// Boxed: a connection holds its context by pointer, so handing one out or back moves
    /// 8 bytes, not the context (its head alone is over a kilobyte).
    #[allow(clippy::vec_box)]
    free: Vec<Box<RequestCtx>>,
}

/// Contexts a worker keeps at most (one per connection answering at once is typical).
const POOL_KEEP: usize = 1024;

impl ContextPool {
    /// A context for a new request.
    pub(crate) fn get(&mut self) -> Box<RequestCtx> {
        self.free.pop().unwrap_or_default()
    }

    /// Takes back a finished request's context.
    pub(crate) fn put(&mut self, mut c: Box<RequestCtx>, vars: &mut VarPool) {
        if self.free.len() < POOL_KEEP {
            c.reset(vars);
            self.free.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_comes_back_clean() {
        let mut pool = ContextPool::default();
        let mut vars = VarPool::default();
        let mut c = pool.get();
        c.uri.extend_from_slice(b"/a");
        c.args.extend_from_slice(b"x=1");
        c.user.push(Some(b"v".to_vec()));
        c.location = Some(LocationId(3));
        c.internal = true;
        c.budget.spend();
        pool.put(c, &mut vars);
        let c = pool.get();
        assert!(c.uri.is_empty() && c.args.is_empty());
        assert_eq!(c.user, vec![None]);
        assert_eq!(c.location, None);
        assert!(!c.internal);
        assert_eq!(c.budget, proton_ir::rewrite::UriBudget::default());
    }
}

/// One attempt at an upstream server (nginx's `ngx_http_upstream_state_t`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UpState {
    pub(crate) peer: UpPeer,
    /// The status the attempt ended with (its own, or 502/504 for a failure); 0: none yet.
    pub(crate) status: u16,
    /// Milliseconds from the attempt's start to the connection, the response head, the
    /// end of the upstream's part (`None`: not (yet) reached, printed `-`).
    pub(crate) connect_ms: Option<u32>,
    pub(crate) header_ms: Option<u32>,
    pub(crate) response_ms: Option<u32>,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    /// Body bytes received (chunk framing included, as nginx counts them).
    pub(crate) response_length: u64,
}

/// Whom an attempt went to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum UpPeer {
    /// Not an attempt: the mark between the attempts of two proxied responses of one
    /// request (printed ` : `).
    #[default]
    Mark,
    Addr(crate::upstream::PeerAddr),
    /// No server of upstream group N was available (nginx prints the group's name).
    Group(u32),
}
