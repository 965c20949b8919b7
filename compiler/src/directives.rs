//! The directive table: the one declarative place that says, for every directive Proton
//! understands, where it may appear, how many arguments it takes, what kind of value they
//! are, whether it may repeat, how it is inherited, and its default. Checks, the JSON Schema,
//! the JSON/YAML readers and the docs table are all driven from here; a new feature adds rows.

/// A set of contexts, as bit flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx(pub u16);

impl Ctx {
    pub const MAIN: Ctx = Ctx(1);
    pub const EVENTS: Ctx = Ctx(2);
    pub const HTTP: Ctx = Ctx(4);
    pub const SERVER: Ctx = Ctx(8);
    pub const LOCATION: Ctx = Ctx(16);
    pub const UPSTREAM: Ctx = Ctx(32);
    /// The block of an `if` in a server (rewrite-module directives only).
    pub const IF_SERVER: Ctx = Ctx(64);
    /// The block of an `if` in a location (nginx's "if in location" directives).
    pub const IF_LOCATION: Ctx = Ctx(128);
    /// The block of a `limit_except` (access control, access_log, proxy_pass).
    pub const LIMIT_EXCEPT: Ctx = Ctx(256);
    /// The block of a `match` (the tests of a health check's answer).
    pub const MATCH: Ctx = Ctx(512);
    /// http, server and location: the usual inheritable settings.
    pub const HSL: Ctx = Ctx(4 | 8 | 16);
    pub const SL: Ctx = Ctx(8 | 16);
    pub const HS: Ctx = Ctx(4 | 8);

    pub const fn or(self, o: Ctx) -> Ctx {
        Ctx(self.0 | o.0)
    }
    pub fn contains(self, o: Ctx) -> bool {
        self.0 & o.0 == o.0
    }
    /// The context names, for messages and docs.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Ctx::MAIN, "main"),
            (Ctx::EVENTS, "events"),
            (Ctx::HTTP, "http"),
            (Ctx::SERVER, "server"),
            (Ctx::LOCATION, "location"),
            (Ctx::UPSTREAM, "upstream"),
            (Ctx::IF_SERVER, "if in server"),
            (Ctx::IF_LOCATION, "if in location"),
            (Ctx::LIMIT_EXCEPT, "limit_except"),
            (Ctx::MATCH, "match"),
        ]
        .into_iter()
        .filter(|(c, _)| self.contains(*c))
        .map(|(_, n)| n)
        .collect()
    }
}

/// How many arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exactly(u8),
    Range(u8, u8),
    AtLeast(u8),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(a) => n == a as usize,
            Arity::Range(a, b) => (a as usize..=b as usize).contains(&n),
            Arity::AtLeast(a) => n >= a as usize,
        }
    }
    pub fn describe(self) -> String {
        match self {
            Arity::Exactly(0) => "no arguments".into(),
            Arity::Exactly(1) => "exactly one argument".into(),
            Arity::Exactly(n) => format!("exactly {n} arguments"),
            Arity::Range(a, b) => format!("{a} to {b} arguments"),
            Arity::AtLeast(1) => "at least one argument".into(),
            Arity::AtLeast(n) => format!("at least {n} arguments"),
        }
    }
}

/// What the arguments are; simple kinds are checked by the table walker, `Custom` ones by the
/// directive's own code in `model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `on` | `off`.
    Flag,
    /// `10k`, `1m`, bytes.
    Size,
    /// `30s`, `1h30m`, `500ms`; a bare number is seconds.
    Time,
    /// A non-negative integer.
    Int,
    /// One of these words.
    Keyword(&'static [&'static str]),
    /// Free text (may contain variables where the directive allows).
    Text,
    /// A block of directives (http, server, location…).
    Block,
    /// Checked by the directive's own code.
    Custom,
}

/// How a setting reaches inner levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The nearest level that sets it wins; for repeatable directives, all lines of that level
    /// (nginx's array directives: add_header, proxy_set_header, error_page, access_log…).
    Inherit,
    /// Applies only where written (rewrite-module directives, proxy_pass, alias, internal…).
    Local,
    /// Structural: defines a block or a name.
    Structure,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub ctx: Ctx,
    pub arity: Arity,
    pub kind: Kind,
    pub repeat: bool,
    pub merge: Merge,
    /// nginx's default, as it would be written in a config (empty: none).
    pub default: &'static str,
    /// Argument syntax for the docs.
    pub syntax: &'static str,
    pub doc: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    ctx: Ctx,
    arity: Arity,
    kind: Kind,
    repeat: bool,
    merge: Merge,
    default: &'static str,
    syntax: &'static str,
    doc: &'static str,
) -> Spec {
    Spec {
        name,
        ctx,
        arity,
        kind,
        repeat,
        merge,
        default,
        syntax,
        doc,
    }
}

use Arity::*;
use Kind::*;
use Merge::*;

const M: Ctx = Ctx::MAIN;
const E: Ctx = Ctx::EVENTS;
const H: Ctx = Ctx::HTTP;
const S: Ctx = Ctx::SERVER;
const L: Ctx = Ctx::LOCATION;
const U: Ctx = Ctx::UPSTREAM;
/// Server and location, and the `if` blocks of both (rewrite-module directives).
const SL_IF: Ctx = Ctx(8 | 16 | 64 | 128);
/// http, server, location and `if` in location.
const HSL_LIF: Ctx = Ctx(4 | 8 | 16 | 128);
/// http, server, location, `if` in location and `limit_except`.
const HSL_LIF_LMT: Ctx = Ctx(4 | 8 | 16 | 128 | 256);
/// http, server, location and `limit_except` (the access module).
const HSL_LMT: Ctx = Ctx(4 | 8 | 16 | 256);
const HSL: Ctx = Ctx::HSL;
const SL: Ctx = Ctx::SL;
const HS: Ctx = Ctx::HS;

/// Every directive Proton supports.
pub static TABLE: &[Spec] = &[
    // main and events
    row("worker_processes", M, Exactly(1), Custom, false, Structure, "1", "number | auto", "Number of worker processes; `auto` = one per CPU (env PROTON_WORKERS overrides)."),
    row("worker_shutdown_timeout", M, Exactly(1), Time, false, Structure, "", "time", "Bounds a graceful stop or reload: workers still busy after it close their connections."),
    row("worker_rlimit_nofile", M, Exactly(1), Int, false, Structure, "", "number", "RLIMIT_NOFILE the master raises for workers."),
    row("error_log", M.or(HSL), Range(1, 2), Custom, true, Inherit, "logs/error.log error", "file [level]", "Error log file (`stderr`: standard error) and minimum level (debug info notice warn error crit alert emerg). In every context, as nginx: a request's error lines go to the error_log lines of its location (inherited as one setting from the nearest level that has any, else the main ones); lines not tied to a request go to the main context's log."),
    row("pid", M, Exactly(1), Text, false, Structure, "logs/proton.pid", "file", "Where the master writes its pid."),
    row("events", M, Exactly(0), Block, false, Structure, "", "{ … }", "Connection processing settings."),
    row("worker_connections", E, Exactly(1), Int, false, Structure, "512", "number", "Most simultaneous connections per worker."),
    row("use", E, Exactly(1), Keyword(&["epoll"]), false, Structure, "", "epoll", "Event method; only epoll exists on Linux."),
    row("http", M, Exactly(0), Block, false, Structure, "", "{ … }", "The HTTP server configuration."),
    // process globals (nginx's core module)
    row("daemon", M, Exactly(1), Flag, false, Structure, "on", "on | off", "`on`: proton-run detaches as nginx does (forks, starts a new session, the first process exits once the pid file is written, the master runs in the background with standard input and output on /dev/null); `off`: it stays in the foreground."),
    row("master_process", M, Exactly(1), Flag, false, Structure, "on", "on | off", "`off`: one process serves, as nginx's debug mode: no worker is forked, the master runs the worker loop itself (worker_processes is ignored; HUP reload and respawn are not available). For development and nginx's test suite."),
    row("user", M, Range(1, 2), Text, false, Structure, "", "user [group]", "When the master runs as root, workers switch to this user and group (default: the group named like the user) after the listening sockets are bound: setgid, initgroups, setuid. Ignored with a warning when not root, as nginx."),
    row("worker_cpu_affinity", M, AtLeast(1), Custom, false, Structure, "", "cpumask … | auto [cpumask]", "Pins workers to CPUs with sched_setaffinity: one bitmask per worker (`0101`, rightmost digit = CPU 0; the last one for the workers after), or `auto` (worker n on the n-th CPU of the optional mask, all CPUs by default)."),
    row("worker_priority", M, Exactly(1), Custom, false, Structure, "0", "number", "Scheduling priority (nice value, -20 to 20) of the worker processes, set with setpriority."),
    row("worker_rlimit_core", M, Exactly(1), Size, false, Structure, "", "size", "RLIMIT_CORE (largest core file) of the worker processes."),
    row("working_directory", M, Exactly(1), Text, false, Structure, "", "directory", "The directory proton-run changes to before forking workers (where core files land)."),
    row("load_module", M, Exactly(1), Text, true, Structure, "", "file", "Accepted with a warning (W0009): Proton loads no nginx modules, so a module's directives stay unknown (an error where they are used). Lets stock configs that load modules they do not use (Debian's `modules-enabled/*.conf`) compile."),
    row("env", M, Exactly(1), Text, true, Structure, "", "variable[=value]", "Environment of the worker processes: as nginx, every variable the master inherited is removed except those named here (and TZ); `NAME=value` sets one."),
    row("pcre_jit", M, Exactly(1), Flag, false, Structure, "off", "on | off", "`on`: the patterns that PCRE2 compiles (those with look-around, back-references and other PCRE-only syntax; every other pattern runs on the regex crate's automata, which need no JIT) are JIT-compiled when proton-run loads the config, where the machine allows it; `off` (nginx's default): PCRE2's interpreter."),
    row("lock_file", M, Exactly(1), Text, false, Structure, "logs/nginx.lock", "file", "Accepted, no effect: nginx's accept mutex lock; Proton gives every worker its own listening sockets and has no accept mutex."),
    row("accept_mutex", E, Exactly(1), Flag, false, Structure, "off", "on | off", "Accepted, no effect: every Proton worker has its own listening sockets (SO_REUSEPORT), so there is no mutex to take turns on; nginx's default is off too."),
    row("accept_mutex_delay", E, Exactly(1), Time, false, Structure, "500ms", "time", "Accepted, no effect (see accept_mutex)."),
    row("debug_connection", E, Exactly(1), Custom, true, Structure, "", "address | CIDR | localhost | unix:", "Connections from these clients are logged at `debug` (to every error_log file of the request, whatever its level): their accept, request line and finalize lines, and every other line of theirs."),
    row("timer_resolution", M, Exactly(1), Time, false, Structure, "", "interval", "Accepted, no effect: Proton reads the clock once per event-loop round already (nginx's reason for the knob)."),
    // nginx's sizing knobs for its own hash tables and pools: accepted with nginx's argument
    // checks, no effect (Proton builds exact tables at compile time and sizes its own pools).
    row("server_names_hash_max_size", H, Exactly(1), Int, false, Structure, "512", "size", "Accepted, no effect: protonc builds exact server-name tables at compile time."),
    row("server_names_hash_bucket_size", H, Exactly(1), Size, false, Structure, "64", "size", "Accepted, no effect: protonc builds exact server-name tables at compile time."),
    row("variables_hash_max_size", H, Exactly(1), Int, false, Structure, "1024", "size", "Accepted, no effect: variables are resolved to ids at compile time."),
    row("variables_hash_bucket_size", H, Exactly(1), Size, false, Structure, "64", "size", "Accepted, no effect: variables are resolved to ids at compile time."),
    row("map_hash_max_size", H, Exactly(1), Int, false, Structure, "2048", "size", "Accepted, no effect: map keys are sorted into exact tables at compile time."),
    row("map_hash_bucket_size", H, Exactly(1), Size, false, Structure, "64", "size", "Accepted, no effect: map keys are sorted into exact tables at compile time."),
    row("types_hash_max_size", HSL, Exactly(1), Int, false, Inherit, "1024", "size", "Accepted, no effect: `types` tables are sorted at compile time."),
    row("types_hash_bucket_size", HSL, Exactly(1), Size, false, Inherit, "64", "size", "Accepted, no effect: `types` tables are sorted at compile time."),
    row("proxy_headers_hash_max_size", HSL, Exactly(1), Int, false, Inherit, "512", "size", "Accepted, no effect: proxy header lists are built at compile time."),
    row("proxy_headers_hash_bucket_size", HSL, Exactly(1), Size, false, Inherit, "64", "size", "Accepted, no effect: proxy header lists are built at compile time."),
    row("connection_pool_size", HS, Exactly(1), Custom, false, Inherit, "512", "size", "Accepted, no effect (nginx's checks: at least 112, a multiple of 16): Proton's connection buffers come from a per-worker pool it sizes itself."),
    row("request_pool_size", HS, Exactly(1), Custom, false, Inherit, "4k", "size", "Accepted, no effect (nginx's checks: at least 112, a multiple of 16): request contexts are pooled per worker and reused."),
    // temporary files: nginx's syntax; the proxy's own have no effect until responses are
    // buffered to disk
    row("client_body_temp_path", HSL, Range(1, 4), Custom, false, Inherit, "client_body_temp", "path [level1 [level2 [level3]]]", "Directory of the temporary files request bodies larger than `client_body_buffer_size` are written to (relative: under proton-run's prefix), with up to three levels of subdirectories named by the last digits of the file's number (`1 2`: `path/7/45/0000012457`). Missing directories are created when a file is."),
    row("proxy_temp_path", HSL, Range(1, 4), Custom, false, Inherit, "proxy_temp", "path [level1 [level2 [level3]]]", "Directory of the temporary files that hold the part of a buffered upstream response (`proxy_buffering on`) that does not fit `proxy_buffers` (relative: under proton-run's prefix), with up to three levels of hashed subdirectories as `client_body_temp_path`. The files are unlinked as soon as they are made, so none is left behind on any path."),
    // logging
    row("log_not_found", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: a missing file is not written to the error log (the 404 stays)."),
    row("log_subrequest", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Whether subrequests (Proton's are those of `mirror`) are written to the access log of the location they end in. A subrequest's line has its own `$uri`, `$status` and location, with the main request's other variables (`$request_uri`, headers, `$args`)."),
    row("mirror", HSL, Exactly(1), Text, true, Inherit, "off", "uri | off", "Copies the request to `uri` (several lines: several copies, in order): a request that reaches the content handler of a location with mirrors (after its rewrites, access checks and a `try_files` that found a file; again after each internal redirect, as nginx) gets one subrequest per URI, with its method, headers and arguments and, with `mirror_request_body on`, its body. The subrequest is routed as any internal request (an `internal` location fits) and its answer is thrown away: a proxied mirror is over once the upstream's response head has come (nginx's `header_only`: the body is not read, and that upstream connection is not kept alive); it is logged only with `log_subrequest on`. Difference: nginx starts the mirrors before the main request's content handler and runs them beside it; Proton runs them one after another once the main response is written (the client gets its answer as soon as from nginx; the mirror backend sees the copy when the main response is out). In both, the next request of a keep-alive connection waits for the mirrors to finish. A main request that does not end normally (the client goes away, a send times out, an upgraded connection such as a WebSocket) runs no mirrors in Proton, where nginx has started them already. `off` at a level stops the inherited ones."),
    row("mirror_request_body", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "Whether mirror subrequests carry the request's body. On (the default): the body is kept whole (memory, then `client_body_temp_path`) and each mirror sends it again; a proxied request reads it whole before choosing its upstream even with `proxy_request_buffering off`, and for one whose handler does not read bodies (a static file) the first proxied mirror reads it once the response is out (nginx reads it before the content handler; the copies are the same). Off: the mirrors are sent without a body, and the main request reads its body as it would without mirrors (as nginx, a `Content-Length` header still goes with the mirror's request unless `proxy_set_header Content-Length \"\"` removes it)."),
    row("open_log_file_cache", HSL, Range(1, 4), Custom, false, Inherit, "off", "max=N [inactive=time] [min_uses=N] [valid=time] | off", "Access logs whose path has variables, as nginx's cache: a worker keeps up to `max` files (the least recently used one is closed for a new one), a file is kept open from its `min_uses`-th use within `inactive` (default 1 and 10s), and files unused for `inactive` are closed; `off`: each line opens and closes its file. `valid` (default 60s) is checked and accepted: a cached file is not checked again until it is closed (USR1 reopens it)."),
    // http / server / location core
    row("server", H, Exactly(0), Block, true, Structure, "", "{ … }", "A virtual server."),
    row("listen", S, AtLeast(1), Custom, true, Structure, "*:80", "address[:port] | port [default_server] [ssl] [http2] [proxy_protocol] [reuseport] [backlog=number]", "Address and port the server accepts requests on; `ssl`: connections to the address speak TLS (its default server needs `ssl_certificate`); `http2`: HTTP/2 on the address whatever its servers' `http2` (nginx's older form, still accepted by nginx); `proxy_protocol`: every connection starts with a PROXY protocol header (v1 or v2) naming the client."),
    row("server_name", S, AtLeast(1), Custom, true, Structure, "\"\"", "name …", "Virtual server names: exact, `*.example.com`, `www.example.*`, `.example.com`, `~regex`, or `\"\"`."),
    row("location", SL, Range(1, 2), Block, true, Structure, "", "[ = | ~ | ~* | ^~ ] uri { … } | @name { … }", "Settings by request URI, nginx's precedence."),
    row("types", HSL, Exactly(0), Custom, true, Inherit, "text/html html; image/gif gif; image/jpeg jpg;", "{ type extension…; … }", "Maps file name extensions to MIME types."),
    row("default_type", HSL, Exactly(1), Text, false, Inherit, "text/plain", "mime-type", "MIME type of responses whose extension is not in `types`."),
    row("map", H, Exactly(2), Block, true, Structure, "", "string $variable { … }", "Defines `$variable`, whose value is chosen by the value of `string` (text with variables): `key value;` lines matched ignoring case, `~regex`/`~*regex` keys tried in order (their captures usable in the value), `default value;` (else empty), `hostnames;` (wildcard keys `*.example.com`, `.example.com`, `www.example.*`; a trailing dot is ignored), `volatile;` (computed at every use; otherwise a request computes the value once and keeps it, as nginx), `include file;`. Write `\\default`, `\\hostnames`… for those words as keys."),
    row("log_format", H, AtLeast(2), Custom, true, Structure, "combined \"…\"", "name [escape=default|json|none] string …", "A named access log format; `combined` is predefined."),
    row("access_log", HSL_LIF_LMT, AtLeast(1), Custom, true, Inherit, "logs/access.log combined", "path [format [buffer=size] [flush=time] [if=condition]] | off", "Where and how requests are logged; with `if=`, a request whose condition (text with variables) is empty or \"0\" is not logged."),
    row("open_file_cache", HSL, Range(1, 2), Custom, false, Inherit, "off", "off | max=N [inactive=time]", "Per worker, keeps up to N open file descriptors with their size and modification time (and, with `open_file_cache_errors`, failed lookups) for static files; one not used for `inactive` (default 60s) is closed, and the least recently used is closed when the cache is full."),
    row("open_file_cache_valid", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "How long a cached file's descriptor and stat result are used before the file is looked at again (a replaced file is then opened anew)."),
    row("open_file_cache_min_uses", HSL, Exactly(1), Int, false, Inherit, "1", "number", "Uses within `inactive` a file needs before its descriptor is kept open."),
    row("open_file_cache_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Also cache failed lookups (a missing file, no permission) for `open_file_cache_valid`."),
    row("sendfile", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "Send static files with sendfile(2)."),
    row("subrequest_output_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "The most of a subrequest's answer kept in memory, for the subrequests whose answer is kept rather than sent (SSI `include … set=`); a larger answer fails the subrequest (\"too big subrequest response\" is logged and the main response is cut short, as nginx). Set in the location the subrequest runs in. nginx's default is one memory page (4k on x86-64)."),
    row("sendfile_max_chunk", HSL, Exactly(1), Size, false, Inherit, "2m", "size", "The most one sendfile(2) call sends; after that much the connection lets the worker's other connections go first and goes on in the next round of the event loop (nginx ≥ 1.21.4's default of 2m; 0: no limit), so one fast client on a large file does not hold the worker."),
    row("tcp_nopush", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "TCP_CORK while sending headers and file start together."),
    row("tcp_nodelay", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "TCP_NODELAY on keep-alive connections."),
    row("keepalive_timeout", HSL, Range(1, 2), Custom, false, Inherit, "75s", "timeout [header_timeout]", "Idle keep-alive timeout; the optional second value (whole seconds) is sent as `Keep-Alive: timeout=` and is inherited on its own."),
    row("keepalive_requests", HSL, Exactly(1), Int, false, Inherit, "1000", "number", "Most requests served over one keep-alive connection (the location's value applies to the request it answers)."),
    row("keepalive_time", HSL, Exactly(1), Time, false, Inherit, "1h", "time", "Longest life of a keep-alive connection: once a request is answered on a connection open longer than this, the connection is closed."),
    row("keepalive_disable", HSL, Range(1, 2), Keyword(&["none", "msie6", "safari"]), false, Inherit, "msie6", "none | browser …", "No keep-alive for these browsers (told apart by `User-Agent` as nginx): `msie6` (MSIE 4 to 6) after a POST, `safari` (Safari on Mac OS X) always; `none`: keep-alive for all."),
    row("client_max_body_size", HSL, Exactly(1), Size, false, Inherit, "1m", "size", "Largest request body; 0 disables the check. Larger bodies get 413."),
    row("client_header_timeout", HS, Exactly(1), Time, false, Inherit, "60s", "time", "Time to receive the whole request head (HTTP/1.x: the connection is closed; an HTTP/2 connection's first request, likewise; an HTTP/2 request whose HEADERS frame is still arriving after it has its stream reset with PROTOCOL_ERROR while the connection goes on, as nginx)."),
    row("client_body_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "Longest pause between two reads of the request body. When it passes while the proxy reads a body whole, the connection is closed without an answer and the request logged with 408, as nginx."),
    row("client_body_buffer_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "Default: two memory pages as nginx (8k with the 4 KiB pages of x86-64; Proton uses 8k everywhere). A request body read whole (`proxy_request_buffering on`) is kept in memory up to this size; a larger one is written to a temporary file under `client_body_temp_path`. Also the most of a streamed body (`proxy_request_buffering off`) kept for `$request_body`."),
    row("client_body_in_file_only", HSL, Exactly(1), Keyword(&["off", "on", "clean"]), false, Inherit, "off", "on | clean | off", "`on`: every request body read whole is written to a temporary file, kept after the request (`$request_body_file` names it); `clean`: the same, removed after the request; `off`: only bodies larger than `client_body_buffer_size`, removed after. No effect with `proxy_request_buffering off`, as nginx."),
    row("client_body_in_single_buffer", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Accepted, no further effect: Proton keeps a request body that fits `client_body_buffer_size` in one buffer always (nginx's `on`), so `$request_body` has it whole."),
    row("lingering_close", HSL, Exactly(1), Keyword(&["off", "on", "always"]), false, Inherit, "on", "off | on | always", "After a response that closes the connection while the client may still be sending (a refused body, a pipelined request), stop writing and read and drop its input for a while, so the client reads the response instead of a reset; `always`: after every response that closes."),
    row("lingering_time", HSL, Exactly(1), Time, false, Inherit, "30s", "time", "Longest time input is read and dropped in a lingering close."),
    row("lingering_timeout", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "Longest wait for more input in a lingering close; then the connection is closed."),
    row("send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "Longest pause between two writes to the client."),
    row("client_header_buffer_size", HS, Exactly(1), Size, false, Inherit, "1k", "size", "Buffer for the request head."),
    row("large_client_header_buffers", HS, Exactly(2), Custom, false, Inherit, "4 8k", "number size", "Buffers for long request lines and headers (a longer line gets 414/400)."),
    row("server_tokens", HSL, Exactly(1), Keyword(&["on", "off", "build"]), false, Inherit, "on", "on | off | build", "Send the version (and with `build` the build name) in `Server` and error pages."),
    row("root", HSL_LIF, Exactly(1), Text, false, Inherit, "html", "path", "Document root; the URI is appended."),
    row("alias", L, Exactly(1), Text, false, Inherit, "", "path", "Replaces the prefix of the location that declares it with this path (also in nested locations that inherit it)."),
    row("index", HSL, AtLeast(1), Text, false, Inherit, "index.html", "file …", "Files tried for a URI that ends with `/`."),
    row("try_files", SL, AtLeast(2), Custom, false, Local, "", "file … uri | file … =code", "Tries files in order, then the last argument (URI, @name or =code). Not inherited: a server-level try_files applies only when no location matches."),
    row("autoindex", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "HTML listing for directories without an index file."),
    row("post_action", HSL_LIF, Exactly(1), Text, false, Inherit, "off", "uri | @name | off", "Once the response is sent, the request is redirected internally to `uri` (without arguments) or `@name` (a named location of the server, checked at compile time) and answered again with the output thrown away: a static file is opened, a `proxy_pass` location sends its request to the upstream and reads the answer's head (as nginx, which makes the post action `header_only`: the body is not read). The request's one access-log line is written after it, with the post action's status, location and `$uri` and the bytes of the response sent, as nginx. A post action does not run another one. A proxied post action sends the request's body again when the request's own location read it whole (`proxy_request_buffering on`) or streamed one that fit `client_body_buffer_size`. Difference: a body nothing read (a `return`, a static file) or one streamed past that size is gone, and such a post action is refused (500 in the log, an error line); nginx reads or keeps it."),
    row("error_page", HSL_LIF, AtLeast(2), Custom, true, Inherit, "", "code … [=[response]] uri", "URI (or @name) shown for the given error codes; any other target (a URL, a relative name) redirects the client there (302, or the `=response` code if it is a redirect)."),
    row("add_header", HSL_LIF, Range(2, 3), Custom, true, Inherit, "", "name value [always]", "Adds a response header (to 2xx/3xx unless `always`). Lines are inherited only if the level has none."),
    row("expires", HSL_LIF, Range(1, 2), Custom, false, Inherit, "off", "[modified] time | epoch | max | off", "Sets `Expires` and `Cache-Control: max-age` (for 2xx/3xx responses); they replace a proxied response's own `Expires` and `Cache-Control`."),
    row("etag", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "Send `ETag` for static files."),
    row("if_modified_since", HSL, Exactly(1), Keyword(&["off", "exact", "before"]), false, Inherit, "exact", "off | exact | before", "How `If-Modified-Since` is compared with the file time."),
    row("autoindex_format", HSL, Exactly(1), Keyword(&["html", "xml", "json", "jsonp"]), false, Inherit, "html", "html | xml | json | jsonp", "Format of the autoindex listing; `jsonp` wraps the JSON in a call of the function named by the `callback` argument (`$arg_callback`; without it, plain JSON)."),
    row("autoindex_exact_size", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "HTML listing: exact file sizes in bytes, or rounded to K, M, G (`off`)."),
    row("autoindex_localtime", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "HTML listing: times in local time instead of UTC. Proton's local time is UTC (as for `$time_local`), so `on` shows UTC too."),
    row("charset", HSL, Exactly(1), Text, false, Inherit, "off", "charset | off", "Adds `; charset=…` to the `Content-Type` of responses whose type is in `charset_types` and that name no charset (variables allowed): files, listings, `return` text, built-in error and redirect pages, proxied responses. With `source_charset` and a `charset_map` between the two, the body is recoded (a proxied body passed through in chunks is not)."),
    row("source_charset", HSL, Exactly(1), Text, false, Inherit, "", "charset", "The charset of the files served; with `charset` and a `charset_map` linking them, the body is recoded byte by byte."),
    row("charset_types", HSL, AtLeast(1), Text, false, Inherit, "text/html text/xml text/plain text/vnd.wap.wml application/javascript application/rss+xml", "mime-type … | *", "Types that get the charset; `*` is every type."),
    row("override_charset", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "A proxied response that names a charset of its own is relabelled with `charset` and its body recoded from its charset when a `charset_map` links the two (not when its chunks are passed through as they came)."),
    // gzip, gzip_static and gunzip modules, with the core module's gzip_* settings
    row("gzip", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "Compresses responses with gzip on the fly for clients whose `Accept-Encoding` takes it (read as nginx does: `gzip;q=0` refuses it): static files, in-memory answers (`return` text, error and redirect pages, listings) and proxied responses, over HTTP/1.x and HTTP/2. As nginx, a response is compressed when its status is 200, 403 or 404, its type is in `gzip_types`, it has no `Content-Encoding` of its own and its length, when known, is at least `gzip_min_length`, and the request passes `gzip_http_version`, `gzip_proxied` and `gzip_disable` (subrequests are never compressed). A compressed response gets `Content-Encoding: gzip`, loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `Accept-Ranges`, and its `ETag` is made weak (`W/`). `$gzip_ratio` logs the ratio achieved. When `brotli` or `zstd` is on as well, the client's `Accept-Encoding` q-values choose among the codings (see `brotli`)."),
    row("gzip_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) that `gzip` compresses besides `text/html`, which is always compressed (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    row("gzip_comp_level", HSL, Exactly(1), Int, false, Inherit, "1", "level", "The deflate compression level, 1 (fastest) to 9 (smallest)."),
    row("gzip_min_length", HSL, Exactly(1), Size, false, Inherit, "20", "length", "A response whose `Content-Length` is smaller is not compressed; one of unknown length (a chunked proxied response) is compressed whatever its size."),
    row("output_buffers", HSL, Exactly(2), Custom, false, Inherit, "2 32k", "number size", "Accepted with nginx's checks (a count and a size, both above 0), no effect: it sizes the buffers nginx reads a file into when it does not use sendfile; Proton reads such a file in 32 KiB pieces through one buffer per worker."),
    row("postpone_output", HSL, Exactly(1), Size, false, Inherit, "1460", "size", "Accepted, no effect: nginx holds back output until at least this many bytes are ready to send (unless the response ends or is flushed); Proton writes output as soon as it is ready, as nginx with `postpone_output 0`."),
    row("gzip_buffers", HSL, Exactly(2), Custom, false, Inherit, "32 4k", "number size", "Accepted with nginx's checks (a count and a size, both above 0), no effect: it sizes nginx's buffers of compressed output (nginx's default is `16 8k` where memory pages are 8k); Proton manages its own."),
    row("gzip_window", HSL, Exactly(1), Size, false, Inherit, "32k", "size", "Accepted with nginx's checks (512, 1k, 2k, 4k, 8k, 16k or 32k), no effect: zlib's window size, which Proton leaves at its default (32k)."),
    row("gzip_hash", HSL, Exactly(1), Size, false, Inherit, "64k", "size", "Accepted with nginx's checks (512, 1k, 2k, … 128k), no effect: the memory zlib's compression state uses (its memory level), which Proton leaves at its default."),
    row("gzip_vary", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: responses that `gzip`, `gzip_static`, `gunzip`, `brotli`, `brotli_static`, `zstd` or `zstd_static` considered (compressed or not: those whose status, type and length fit) get `Vary: Accept-Encoding`, so that caches keep both forms apart."),
    row("gzip_http_version", HSL, Exactly(1), Keyword(&["1.0", "1.1"]), false, Inherit, "1.1", "1.0 | 1.1", "The lowest HTTP version of a request whose response `gzip`, `brotli`, `zstd` or their `*_static` compress: with `1.1`, HTTP/1.0 clients get uncompressed responses. HTTP/2 requests always pass."),
    row("gzip_proxied", HSL, AtLeast(1), Custom, true, Inherit, "off", "off | expired | no-cache | no-store | private | no_last_modified | no_etag | auth | any …", "Which responses to proxied requests (those with a `Via` header) `gzip`, `brotli`, `zstd` and their `*_static` may compress, as nginx: `off` none, `any` all, `auth` those to requests with `Authorization`; otherwise a response with `Expires` only when `expired` is given and it has expired, one with `Cache-Control` only when it has `no-cache`, `no-store` or `private` and that word is given; one with neither unless `no_last_modified` is given and it has `Last-Modified`, or `no_etag` and it has `ETag`. The words add up (`off` among them still turns compression off), also over several lines of one block; a level with any replaces its parent's."),
    row("gzip_disable", HSL, AtLeast(1), Custom, true, Inherit, "", "regex …", "Requests whose `User-Agent` matches one of these regular expressions (caseless) get no compression from `gzip`, `brotli`, `zstd` and their `*_static on` (`gunzip` decompresses for them). `msie6` stands for MSIE 4 to 6 (told apart by `User-Agent` as nginx). The lines of one block add up; as nginx, a level with any `gzip_disable` replaces its parent's regular expressions, while `msie6` written at an outer level stays in effect."),
    row("gzip_static", HSL, Exactly(1), Keyword(&["off", "on", "always"]), false, Inherit, "off", "off | on | always", "`on`: a request for a static file is answered with the precompressed `file.gz` next to it, when there is one and the client takes gzip (and passes `gzip_http_version`, `gzip_proxied` and `gzip_disable`): `Content-Encoding: gzip`, the type of the file's own name, the length, modification time and ETag of `file.gz`. `always`: `file.gz` is sent to every client (with `gunzip on`, one that does not take gzip gets it decompressed). Without `file.gz`, the file is served as usual."),
    row("gunzip", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: a response with `Content-Encoding: gzip` (from an upstream, or `gzip_static always`) is decompressed for a client that does not take gzip (or fails `gzip_http_version`, `gzip_proxied` or `gzip_disable`): the `Content-Encoding`, `Content-Length` and `Accept-Ranges` go and the `ETag` is made weak."),
    row("gunzip_buffers", HSL, Exactly(2), Custom, false, Inherit, "32 4k", "number size", "Accepted with nginx's checks (a count and a size, both above 0), no effect: it sizes nginx's buffers of decompressed output (nginx's default is `16 8k` where memory pages are 8k). Proton bounds its own: a response's decoder makes at most 256 KiB (plus what one 1 KiB piece of input decodes to) before that output is sent, whatever the input's ratio."),
    // ngx_brotli's filter and static modules (third-party), with the core module's gzip_* settings
    row("brotli", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "Compresses responses with brotli on the fly for clients whose `Accept-Encoding` takes `br` (ngx_brotli's directive), on every kind of response `gzip` compresses. The client's `Accept-Encoding` q-values choose among the codings enabled for the location (`gzip`, `brotli`, `zstd`); on a tie Proton prefers br, then zstd, then gzip. A response is compressed under the same rules as with `gzip`: its status is 200, 403 or 404, its type is in `brotli_types`, it has no `Content-Encoding` of its own and its length, when known, is at least `brotli_min_length`; the core module's `gzip_vary`, `gzip_http_version`, `gzip_proxied` and `gzip_disable` apply to brotli as to gzip (Proton's choice: the third-party modules differ among themselves there). A compressed response gets `Content-Encoding: br`, loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `ETag` is made weak (`W/`)."),
    row("brotli_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) that `brotli` compresses besides `text/html`, which is always compressed (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    row("brotli_comp_level", HSL, Exactly(1), Int, false, Inherit, "6", "level", "The brotli quality, 0 (fastest) to 11 (smallest)."),
    row("brotli_min_length", HSL, Exactly(1), Size, false, Inherit, "20", "length", "A response whose `Content-Length` is smaller is not compressed with brotli; one of unknown length (a chunked proxied response) is compressed whatever its size."),
    row("brotli_window", HSL, Exactly(1), Size, false, Inherit, "512k", "size", "The brotli encoder's window, a power of two from 1k to 16m (ngx_brotli's sizes: 1k, 2k, 4k, … 8m, 16m): a larger window finds more repeats in large responses and costs the encoder and the client more memory."),
    row("brotli_buffers", HSL, Exactly(2), Custom, false, Inherit, "32 4k", "number size", "Accepted with nginx's checks (a count and a size, both above 0), no effect: deprecated and unused in ngx_brotli itself."),
    row("brotli_static", HSL, Exactly(1), Keyword(&["off", "on", "always"]), false, Inherit, "off", "off | on | always", "`on`: a request for a static file is answered with the precompressed `file.br` next to it, the way `gzip_static` sends `file.gz`: when there is one and the client takes `br` (and passes `gzip_http_version`, `gzip_proxied` and `gzip_disable`), with `Content-Encoding: br`, the type of the file's own name, the length, modification time and ETag of `file.br`. When several precompressed files exist for the enabled `brotli_static`, `zstd_static` and `gzip_static`, the client's `Accept-Encoding` q-values choose, a tie going to br, then zstd, then gzip. `always`: `file.br` is sent to every client, whether it takes br or not. Without `file.br`, the file is served as usual."),
    // zstd-nginx-module's filter and static modules (third-party), with the core module's gzip_* settings
    row("zstd", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "Compresses responses with zstd on the fly for clients whose `Accept-Encoding` takes `zstd` (zstd-nginx-module's directive), on every kind of response `gzip` compresses. The client's `Accept-Encoding` q-values choose among the codings enabled for the location (`gzip`, `brotli`, `zstd`); on a tie Proton prefers br, then zstd, then gzip. A response is compressed under the same rules as with `gzip`: its status is 200, 403 or 404, its type is in `zstd_types`, it has no `Content-Encoding` of its own and its length, when known, is at least `zstd_min_length`; the core module's `gzip_vary`, `gzip_http_version`, `gzip_proxied` and `gzip_disable` apply to zstd as to gzip (Proton's choice: the third-party modules differ among themselves there). A compressed response gets `Content-Encoding: zstd`, loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `ETag` is made weak (`W/`). Dictionaries (`zstd_dict_file`) are not supported."),
    row("zstd_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) that `zstd` compresses besides `text/html`, which is always compressed (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    row("zstd_comp_level", HSL, Exactly(1), Int, false, Inherit, "1", "level", "The zstd compression level, 1 (fastest) to 22 (smallest); the window is the level's own. Negative (fast) levels are not supported."),
    row("zstd_min_length", HSL, Exactly(1), Size, false, Inherit, "20", "length", "A response whose `Content-Length` is smaller is not compressed with zstd; one of unknown length (a chunked proxied response) is compressed whatever its size."),
    row("zstd_buffers", HSL, Exactly(2), Custom, false, Inherit, "32 4k", "number size", "Accepted with nginx's checks (a count and a size, both above 0), no effect: it sizes the module's buffers of compressed output; Proton manages its own."),
    row("zstd_static", HSL, Exactly(1), Keyword(&["off", "on", "always"]), false, Inherit, "off", "off | on | always", "`on`: a request for a static file is answered with the precompressed `file.zst` next to it, the way `gzip_static` sends `file.gz`: when there is one and the client takes `zstd` (and passes `gzip_http_version`, `gzip_proxied` and `gzip_disable`), with `Content-Encoding: zstd`, the type of the file's own name, the length, modification time and ETag of `file.zst`. When several precompressed files exist for the enabled `brotli_static`, `zstd_static` and `gzip_static`, the client's `Accept-Encoding` q-values choose, a tie going to br, then zstd, then gzip. `always`: `file.zst` is sent to every client, whether it takes zstd or not. Without `file.zst`, the file is served as usual."),
    // nginx's sub module
    row("sub_filter", HSL, Exactly(2), Text, true, Inherit, "", "string replacement", "Replaces `string` with `replacement` in the bodies of responses whose type is in `sub_filter_types`: static files, in-memory answers (`return` text, error pages, listings) and proxied responses, over HTTP/1.x and HTTP/2. Both may contain variables. Matching ignores ASCII case (`string` is lowercased: at compile time when it has no variables, per response when it has; one whose variables make it empty is skipped). Several lines are searched together: the leftmost match is replaced first, and among matches at one place the first `sub_filter` line; replaced text is not searched again and matches do not overlap. Matches are found across the pieces a body arrives in: a partial match at the end of a piece waits for the next piece, everything else is sent at once. The response loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `Last-Modified` and `ETag`, unless `sub_filter_last_modified on` (then the `ETag` is made weak). Substitution comes before compression: `gzip`, `brotli` and `zstd` compress the substituted body, as in nginx's filter order. As nginx, an empty `string` is refused, a level takes at most 255 lines, and a level with any `sub_filter` replaces its parent's lines."),
    row("sub_filter_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) whose bodies `sub_filter` changes besides `text/html`, which is always included (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    row("sub_filter_once", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`on`: each `sub_filter` match string is replaced at its first occurrence in a response only (each line counts on its own); `off`: every occurrence is replaced."),
    row("sub_filter_last_modified", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: a response `sub_filter` changes keeps its `Last-Modified`, and its `ETag` is made weak (`W/`); `off`: both are removed, as the body no longer matches them."),
    // nginx's SSI module
    row("ssi", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: the bodies of responses whose type is in `ssi_types` are read for SSI commands (`<!--# command parameter=\"value\" … -->`) as they go out, and each command is replaced by what it produces: `include` (`virtual=` or `file=`, a subrequest to a URI, with `wait`, `set` and `stub`), `echo` (a variable, with `default` and `encoding`), `set`, `if` / `elif` / `else` / `endif`, `config` (`errmsg`, `timefmt`) and `block` / `endblock`; the rest of the body passes unchanged. It applies to static files, in-memory answers and proxied responses; the response to an `include` is processed too when the location that answers it has `ssi on`. A response with `Content-Length: 0` is left alone. A processed response loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `Accept-Ranges`, and its `Last-Modified` and `ETag` unless `ssi_last_modified on`. SSI comes before compression: `gzip`, `brotli` and `zstd` compress the processed body, as in nginx's filter order. Also in an `if` block of a location, as nginx. Differences from nginx: the subrequests of one page run one after another in the page's order (nginx starts those without `wait` at once; the output is the same), a subrequest gets its parent's header fields but not its request body, SSI variables belong to the response whose commands set them (nginx shares them with its subrequests), `$date_local` is in UTC, and an included body cut short by its upstream cuts the page short (nginx ends the main request too). Limits: a page keeps at most 256 SSI variables (a `set` beyond them is not kept; nginx has no bound), `include … set` keeps at most 64 KiB of the included body (a larger one fails the include with the `too big subrequest response` error nginx gives past `subrequest_output_buffer_size`), and the regex of an `if` compiles to at most 1 MiB (a larger one fails the `if`)."),
    row("ssi_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) whose bodies `ssi` processes besides `text/html`, which is always included (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    row("ssi_silent_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: an SSI command that fails (an unknown command or parameter, a missing parameter, a value longer than `ssi_value_length`, an `include` that cannot be made) writes nothing in its place; `off`: it writes the `errmsg` text (`[an error occurred while processing the directive]` unless a `config errmsg=` command changed it). The error is logged either way."),
    row("ssi_value_length", HSL, Exactly(1), Size, false, Inherit, "255", "length", "The longest parameter value an SSI command takes, in bytes; a longer one is an error of that command (see `ssi_silent_errors`). Proton takes 1 to 64k, where nginx also takes 0 (every non-empty value is then too long) and any larger size. The default is what nginx does when the directive is absent (255), not the 256 its documentation gives."),
    row("ssi_last_modified", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: a response `ssi` processes keeps its `Last-Modified`, and its `ETag` is made weak (`W/`); `off`: both are removed, as the body no longer matches them."),
    row("ssi_min_file_chunk", HSL, Exactly(1), Size, false, Inherit, "1k", "size", "Accepted, no effect: in nginx, the smallest part of a file between SSI commands that is sent from the file (with sendfile) rather than from memory; Proton's SSI reads the file into memory pieces and sends every part from them."),
    row("ssi_ignore_recycled_buffers", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Accepted, no effect: an undocumented nginx switch about its reused (recycled) buffers, which Proton does not have."),
    // nginx's addition module
    row("add_before_body", HSL, Exactly(1), Text, false, Inherit, "", "uri", "The body of a subrequest to `uri` is sent before the body of each response with status 200 whose type is in `addition_types` (main requests only: not the responses of subrequests). The URI is taken as written (no variables, as nginx); it is routed as any internal request, so an `internal` location fits. Such a response loses its `Content-Length` (it is sent chunked on HTTP/1.1, delimited by closing the connection on HTTP/1.0) and its `Accept-Ranges`, and its `ETag` is made weak. `add_before_body \"\";` turns off one inherited from an outer level."),
    row("add_after_body", HSL, Exactly(1), Text, false, Inherit, "", "uri", "The body of a subrequest to `uri` is sent after the body of each response with status 200 whose type is in `addition_types`, under the same rules as `add_before_body` (the two may be used together). `add_after_body \"\";` turns off one inherited from an outer level."),
    row("addition_types", HSL, AtLeast(1), Text, true, Inherit, "text/html", "mime-type … | *", "Types (the response's `Content-Type` without parameters, in any case) that `add_before_body` and `add_after_body` apply to besides `text/html`, which is always included (naming it draws nginx's duplicate warning); `*`: every type. The lines of one block add up; a level with any replaces its parent's."),
    // nginx's slice module
    row("slice", HSL, Exactly(1), Size, false, Inherit, "0", "size", "With a size above 0, a proxied response is fetched from the upstream in ranges (slices) of that size, which an upstream or a cache can serve one by one. The request itself asks for the first slice (the one holding the start of the client's `Range`, if it has one); each further slice is fetched by a subrequest to the same URI, one after another. The config must send the slice's range to the upstream: `proxy_set_header Range $slice_range;` (`$slice_range` is `bytes=START-END` of the slice being fetched); as in nginx, a request whose upstream request does not use `$slice_range` is not sliced. Every slice must come back as a 206 whose `Content-Range` is the range asked for (of the same full length) and with the first slice's `ETag`, else the response is cut short and the error logged; a first answer that is not a 206 (an upstream that ignores `Range`, an error) is sent as it is. The client gets one response: a 200 with the full length, or a 206 for its own range. As nginx (its `single_range`), a client's `Range` is applied across the slices when it names one range; with several ranges the whole response is sent. `0`: off. `proxy_cache`, with which `slice` is usually paired, is not in Proton yet."),
    row("geo", H, Range(1, 2), Block, true, Structure, "", "[$address] $variable { … }", "Defines `$variable` from the client address (`$remote_addr`, or the IP address `$address` gives; not an address: 255.255.255.255): `network value;` lines (an address or CIDR, IPv4 or IPv6; the longest prefix that holds the address wins), `default value;` (else empty), `delete network;`; with `ranges;`, IPv4 ranges `first-last value;` (a later range may nest in an earlier one, not cross it, as nginx); `proxy address|CIDR;` (from those, the client `X-Forwarded-For` names; `proxy_recursive;` skips trusted ones from the right). Values are literal text."),
    row("stub_status", SL, Range(0, 1), Custom, false, Local, "", "[on]", "Answers requests of this location (or, at server level, of the server's requests that no location takes) with the figures of all workers together, in nginx's exact text: `Active connections: N`, then accepted and handled connections and requests (totals since the start, across reloads), then the connections reading a request head, writing a response, and waiting (keep-alive, or no request yet). GET and HEAD only (others: 405). The same figures are in `$connections_active`, `$connections_reading`, `$connections_writing` and `$connections_waiting`. An HTTP/2 connection counts as waiting and each of its streams as a request being written; subrequests are not counted. nginx before 1.7.5 wanted an argument (`stub_status on;`): one is accepted and ignored, as nginx does."),
    row("proton_metrics", SL, Exactly(0), Custom, false, Local, "", "", "Proton extension: answers requests of this location (or, at server level, of the server's requests that no location takes) with Proton's figures in Prometheus' text format (`text/plain; version=0.0.4`), for a Prometheus scrape and for `protonctl status --watch` and `protonctl top`. GET and HEAD only (others: 405). The figures: requests by server (its first `server_name`, else its first `listen` address), location (its match as written: `/api/`, `= /login`, `~ \\.php$`, `@fallback`; an `if` or `limit_except` block counts as its location; empty: the server level and requests that could not be parsed) and status class (`1xx`…`5xx`); a request-latency histogram and bytes received and sent per server; an upstream-response latency histogram per upstream group; attempts and failures per upstream server (its address as written in `upstream` or `proxy_pass`); `limit_req` and `limit_conn` outcomes per zone; connections (active, reading, writing, idle) and the accepted, handled and request totals of `stub_status`; TLS handshakes (full, resumed); the config generation and the reload counts. Every label value comes from the config, never from a request, so the number of series is fixed by the config. Every worker counts into its own row of shared memory (no lock); a scrape sums the rows. The per-request counting runs only when some location of the config has `proton_metrics` (without it, nothing is counted). Figures labelled by server, location, upstream or zone start again from zero at each reload (counter resets, which Prometheus' `rate()` allows for); connection, request, TLS and reload figures are totals since the master started. Subrequests are not counted. See docs/operations.md."),
    row("split_clients", H, Exactly(2), Block, true, Structure, "", "string $variable { … }", "Defines `$variable` for A/B testing: the MurmurHash2 of `string` (text with variables, e.g. `${remote_addr}AAA`) picks one of the parts `N% value;` (percentages with up to two decimals, in order; `* value;` takes the rest; the total may not pass 100 %), with nginx's arithmetic, so a client lands in the same part as under nginx. A hash no part covers gives the empty value. Values are literal text; a request computes the value once."),
    row("charset_map", H, Exactly(2), Block, true, Structure, "", "charset1 charset2 { hex hex; … }", "A single-byte recoding table between two charsets (used in both directions). Tables whose values are UTF-8 sequences (maps to `utf-8`) are refused: Proton does not recode to or from UTF-8 yet."),
    row("absolute_redirect", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "Redirects Proton makes (`return 301 /path`, the slash added to a directory) carry an absolute URL; `off`: the path as is."),
    row("port_in_redirect", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "An absolute redirect names the port when it is not the scheme's default."),
    row("server_name_in_redirect", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "An absolute redirect names the server's first `server_name` instead of the request's `Host`."),
    row("msie_refresh", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Redirects to MSIE clients are answered with an HTML page that refreshes instead of a `Location` header."),
    row("msie_padding", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "Error pages (status > 400) to MSIE clients are padded with comments to over 512 bytes, so MSIE shows them."),
    row("http2", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "HTTP/2 on the server's addresses: over plain TCP a connection that starts with the HTTP/2 preface speaks it (h2c with prior knowledge; others HTTP/1.1; no `Upgrade: h2c`, as nginx). The default server of an address decides, as nginx. Over TLS the server that the SNI name chooses offers `h2` by ALPN (before `http/1.1`); an HTTP/2 request whose Host names a server with `http2 off` gets 421, as nginx."),
    row("http2_max_concurrent_streams", HS, Exactly(1), Int, false, Inherit, "128", "number", "Streams open at once on one HTTP/2 connection; more are refused (RST_STREAM REFUSED_STREAM)."),
    row("http2_body_preread_size", HS, Exactly(1), Size, false, Inherit, "64k", "size", "Each HTTP/2 stream's receive window: request body bytes a client may send before they are read."),
    row("http2_chunk_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "Largest DATA frame of an HTTP/2 response (the value of the address's default server applies to the whole connection)."),
    row("http2_idle_timeout", HS, Exactly(1), Time, false, Structure, "", "time", "Obsolete (nginx ≥ 1.25.1 warns and ignores it, as Proton does): use `keepalive_timeout`."),
    row("http2_recv_timeout", HS, Exactly(1), Time, false, Structure, "", "time", "Obsolete (nginx ≥ 1.25.1 warns and ignores it, as Proton does): use `client_header_timeout`."),
    row("http2_max_requests", HS, Exactly(1), Int, false, Structure, "", "number", "Obsolete (nginx ≥ 1.25.1 warns and ignores it, as Proton does): use `keepalive_requests`."),
    row("http2_max_field_size", HS, Exactly(1), Size, false, Structure, "", "size", "Obsolete (nginx ≥ 1.25.1 warns and ignores it, as Proton does): use `large_client_header_buffers`."),
    row("http2_max_header_size", HS, Exactly(1), Size, false, Structure, "", "size", "Obsolete (nginx ≥ 1.25.1 warns and ignores it, as Proton does): use `large_client_header_buffers`."),
    row("http2_max_concurrent_pushes", HS, Exactly(1), Int, false, Structure, "", "number", "Obsolete (server push is gone from nginx ≥ 1.25.1, which warns and ignores it, as Proton does)."),
    row("http2_push", HSL, Exactly(1), Custom, false, Structure, "", "uri | off", "Obsolete (server push is gone from nginx ≥ 1.25.1, which warns and ignores it, as Proton does)."),
    row("http2_push_preload", HSL, Exactly(1), Flag, false, Structure, "", "on | off", "Obsolete (server push is gone from nginx ≥ 1.25.1, which warns and ignores it, as Proton does)."),
    row("http2_recv_buffer_size", H, Exactly(1), Size, false, Structure, "256k", "size", "Accepted, no effect: sizes nginx's per-worker read buffer; Proton reads an HTTP/2 connection 16 KiB at a time into the connection's own pooled buffer, at most 256 KiB ahead."),
    row("merge_slashes", HS, Exactly(1), Flag, false, Inherit, "on", "on | off", "Merge runs of `/` in the request URI before location matching; `off` keeps them (an empty segment is then a segment: `/a//../b` is `/a/b`). As in nginx, the URI is normalised with the request line, before `Host` is known: the default server of the address decides."),
    row("max_ranges", HSL, Exactly(1), Int, false, Inherit, "", "number", "Most byte ranges served from one request; more and the whole file is sent (200). `0` turns ranges off (no `Accept-Ranges`). Unset, nginx has no limit; Proton serves at most 16."),
    row("ignore_invalid_headers", HS, Exactly(1), Flag, false, Inherit, "on", "on | off", "Drop request header fields whose names are not letters, digits and `-` (and `_` with `underscores_in_headers`); `off` keeps them (they reach `$http_…` and the proxy). Names that are not HTTP tokens at all (`</x>`, a control byte) are 400 either way. Read from the server chosen by `Host`."),
    row("max_headers", HS, Exactly(1), Int, false, Inherit, "1000", "number", "Request header fields a request may have; one more is 400 (nginx ≥ 1.27.2). The address's default server decides for HTTP/1.x; for HTTP/2 the connection's server (its SNI server over TLS). Proton takes at most 1000 (a larger value is a protonc error)."),
    row("underscores_in_headers", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "Header names with `_` are valid (else dropped by `ignore_invalid_headers`)."),
    row("disable_symlinks", HSL, Range(1, 2), Custom, false, Inherit, "off", "off | on | if_not_owner [from=part]", "Refuse (403) files reached through a symbolic link in any component of their path (`on`), or through a link whose owner differs from its target's (`if_not_owner`); with `from=`, the part of the path it names (variables allowed, e.g. `$document_root`) is not checked. A `from=` part that is the whole path turns the check off. Applies to files served, index files, try_files candidates (a refused candidate counts as missing) and the file tests of `if` (a refused link is a file that cannot be opened). Proton checks the directories with lstat and opens the file itself with O_NOFOLLOW (nginx opens every component with openat), so a directory swapped for a link between the check and the open is not caught."),
    row("add_trailer", HSL, Range(2, 3), Custom, true, Inherit, "", "name value [always]", "Adds a trailer field to responses (files, listings, `return` text, error and redirect pages, proxied responses) with status 200, 201, 206, 301, 302, 303, 307 or 308 (any status with `always`), sent chunked to HTTP/1.1 clients (not to HEAD, not with `chunked_transfer_encoding off`); an empty value adds nothing. Lines are inherited only if the level has none. `$sent_http_*` and `$sent_trailer_*` (earlier trailers) may be used. A file served with trailers is read into memory; over 16 MiB it is sent without them (logged). A proxied body is framed in chunks by Proton (the upstream's own chunks and trailers are not passed through); its trailers may use `$upstream_*` variables such as `$upstream_response_length`."),
    row("chunked_transfer_encoding", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: no chunked responses: a chunked upstream body reaches the client decoded, delimited by closing the connection, and `add_trailer` sends nothing."),
    row("internal", L, Exactly(0), Custom, false, Inherit, "", "", "The location (and the locations nested in it) serves only internal redirects (error_page, try_files, rewrite…)."),
    // rewrite module (not inherited, executed in order)
    row("return", SL_IF, Range(1, 2), Custom, false, Local, "", "code [text] | code URL | URL", "Stops processing and returns the code (with body text or redirect URL). `return 200;` sends an empty body with the default_type; a redirect code without a URL sends an empty `Location` (W0008)."),
    row("rewrite", SL_IF, Range(2, 3), Custom, true, Local, "", "regex replacement [last | break | redirect | permanent]", "Rewrites the URI when the regex matches. A redirect (flag `redirect`/`permanent`, or a replacement starting with `http://`, `https://` or `$scheme`) is unescaped as nginx does it before the request's arguments are added: `%XX` of a printable character above `%` becomes the character, up to the first `?` (so `rewrite ^ $arg_url? redirect;` with `url=http%3A%2F%2Fa%2F` redirects to `http://a/`, while `%20`, `%0D%0A` and `%25` stay escaped)."),
    row("limit_rate", HSL_LIF, Exactly(1), Custom, false, Inherit, "0", "rate", "Sends each response at most this many bytes per second (0: no limit); variables allowed (read as a size), and `set $limit_rate` changes it for the request. Applies to every response (static files, built-in answers, buffered proxied responses: as nginx 1.22, an unbuffered one has no rate); an upstream's `X-Accel-Limit-Rate` header sets it for its response."),
    row("limit_rate_after", HSL_LIF, Exactly(1), Custom, false, Inherit, "0", "size", "Bytes of a response (head included) sent at full speed before `limit_rate` applies; variables allowed."),
    row("rewrite_log", HSL_LIF, Exactly(1), Flag, false, Inherit, "off", "on | off", "Logs at `notice` each regex a `rewrite` or `if` tests (\"… matches …\", \"… does not match …\") and each rewritten URI or redirect, to the error_log in effect. Not in an `if` of a server block (Proton gives that block no configuration of its own)."),
    row("uninitialized_variable_warn", HSL_LIF, Exactly(1), Flag, false, Inherit, "on", "on | off", "Logs at `warn` a `set` variable read before any `set` gave it a value (\"using uninitialized … variable\"). Not in an `if` of a server block."),
    row("set_real_ip_from", HSL, Exactly(1), Custom, true, Inherit, "", "address | CIDR | unix:", "Peers trusted to name the client: for a request from one of them, `$remote_addr` (and `$remote_port`) become the address `real_ip_header` gives, for variables, logs and `allow`/`deny`; `$realip_remote_addr`/`$realip_remote_port` keep the connection's. Applied with the server's settings when the request arrives, else with the location's after its rewrite directives (a `return` there answers first, as in nginx), once."),
    row("real_ip_header", HSL, Exactly(1), Text, false, Inherit, "X-Real-IP", "field | X-Real-IP | X-Forwarded-For", "The header that names the client, or `proxy_protocol`: the client the connection's PROXY protocol header names (address and port; `listen … proxy_protocol`). With `X-Forwarded-For`, its last address."),
    row("ssl", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "nginx's deprecated switch (W0011): `ssl on` in an address's default server makes the address speak TLS, as `listen … ssl` does; write that instead."),
    row("ssl_certificate", HS, Exactly(1), Text, true, Inherit, "", "file", "A PEM certificate (with its chain after it) for the server's TLS handshakes; several (e.g. ECDSA and RSA) each with its own `ssl_certificate_key`, the handshake choosing the first the client can verify. Relative paths are relative to the main config file's directory. protonc reads the files and refuses a missing file, a file without a certificate, or a key that does not match. With variables (`$ssl_server_name`, a `map` of it, the addresses), the files are named per handshake and read when a worker first meets the names; a name without files fails that handshake, logged."),
    row("ssl_certificate_key", HS, Exactly(1), Text, true, Inherit, "", "file", "The PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of the `ssl_certificate` in the same position. Encrypted keys (`ssl_password_file`) are not supported yet."),
    row("ssl_dhparam", HS, Exactly(1), Text, false, Inherit, "", "file", "Accepted with a warning (W0005), no effect: nginx uses the parameters for DHE cipher suites, and rustls has none (only ECDHE), so they are never used; clients of Mozilla's intermediate configuration, which sets it, get ECDHE suites."),
    row("ssl_password_file", HS, Exactly(1), Text, false, Inherit, "", "file", "Passphrases for encrypted private keys, one per line, tried in turn. Keys in PKCS#8 `ENCRYPTED PRIVATE KEY` PEM (what OpenSSL 3 writes, e.g. `openssl genrsa -aes128`) are read; the old OpenSSL `Proc-Type: 4,ENCRYPTED` form is refused with the command that converts it. A named pipe is read by proton-run when it loads the config (protonc does not read it)."),
    row("ssl_protocols", HS, AtLeast(1), Custom, false, Inherit, "TLSv1.2 TLSv1.3", "[TLSv1.2] [TLSv1.3]", "TLS versions offered. Differs from nginx 1.22 (whose default also has TLSv1 and TLSv1.1): Proton (rustls) has no TLS 1.0/1.1 or SSL, and naming them is an error."),
    row("ssl_ciphers", HS, Exactly(1), Custom, false, Inherit, "HIGH:!aNULL:!MD5", "ciphers", "TLS 1.2 cipher suites in OpenSSL's cipher-list syntax (aliases, `!`, `-`, `+`, `@STRENGTH`), evaluated over the suites Proton has (ECDHE with AES-GCM or ChaCha20-Poly1305, ECDSA or RSA). Valid OpenSSL names Proton lacks match nothing; an unknown name, or a list that leaves no suite, is an error. TLS 1.3 suites are not chosen here, as in OpenSSL."),
    row("ssl_prefer_server_ciphers", HS, Exactly(1), Flag, false, Inherit, "on", "on | off", "Choose the cipher suite by the server's order (`on`) instead of the client's (`off`). Default `on`, where nginx's is `off`: with the server's order a client cannot steer the choice, and scanners such as testssl.sh rate a missing server order HIGH. Clients that put ChaCha20 first (devices without AES hardware, the reason Mozilla's guide says `off`) still get ChaCha20, as with OpenSSL's `PrioritizeChaCha` option. Write `off` for nginx's behaviour."),
    row("ssl_ecdh_curve", HS, Exactly(1), Custom, false, Inherit, "auto", "auto | curve[:curve…]", "Key-exchange groups in order (X25519, prime256v1/P-256, secp384r1/P-384, secp521r1/P-521, X25519MLKEM768); `auto`: the provider's default (X25519MLKEM768, X25519, P-256, P-384)."),
    row("ssl_session_cache", HS, Range(1, 2), Custom, false, Inherit, "none", "off | none | [builtin[:size]] [shared:name:size]", "Keeps TLS sessions for resumption by session id: `shared:name:size` in memory shared by all workers (about 4,000 sessions per megabyte), `builtin[:size]` per worker; `none` and `off` keep none. A session, by id or by ticket, resumes only on a server whose certificates (as written) and client-certificate checks are those it was made with (nginx's session id context): another port or server block with the same certificate resumes it, one with another certificate makes a new session."),
    row("ssl_session_timeout", HS, Exactly(1), Time, false, Inherit, "5m", "time", "How long a session (cached or in a ticket) may be resumed."),
    row("ssl_session_tickets", HS, Exactly(1), Flag, false, Inherit, "on", "on | off", "Resumption with session tickets. Without `ssl_session_ticket_key`, the ticket keys are made by the master process at start, shared by all workers and kept across reloads (so a ticket issued by one worker resumes on another), and rotated every `ssl_session_timeout`."),
    row("ssl_session_ticket_key", HS, Exactly(1), Text, true, Inherit, "", "file", "A 48- or 80-byte key file (as nginx's: `openssl rand 80 > file`): the first encrypts tickets, all of them decrypt. Proton's ticket format is its own, so tickets do not move between Proton and nginx."),
    row("ssl_reject_handshake", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "Refuse TLS handshakes that choose this server (by SNI, or as the default server), with an `unrecognized_name` alert."),
    row("ssl_stapling", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "Staple an OCSP response to the handshakes of each certificate: the response of `ssl_stapling_file`, or one fetched from the OCSP responder (`ssl_stapling_responder`, else the URL in the certificate's Authority Information Access extension). As nginx, each worker asks the responder when a handshake uses the certificate and no current response is kept (first handshakes go without a staple), keeps only responses that say `good`, refreshes them 5 minutes before `nextUpdate`, at least hourly and at most every 5 minutes (5 minutes after an error), and needs the issuer certificate in the certificate file or in `ssl_trusted_certificate`/`ssl_client_certificate`; a certificate whose issuer or responder cannot be found gets warning W0010 and no staple. The request is sent by a helper thread of the worker (60 s timeouts), never on the event loop."),
    row("ssl_stapling_file", HS, Exactly(1), Text, false, Inherit, "", "file", "A DER OCSP response (as `openssl ocsp -respout` writes) stapled to every handshake instead of querying a responder; protonc checks that it is a DER structure. As in nginx, the response is not verified."),
    row("ssl_stapling_verify", HS, Exactly(1), Flag, false, Inherit, "off", "on | off", "Verify fetched OCSP responses as nginx does: the signer must chain to `ssl_trusted_certificate` (or `ssl_client_certificate`) and be the issuer or a responder the issuer delegated to (`OCSPSigning`); a signer in the certificate file's chain is trusted as it is. `off`: only the signature is checked. Responses from `ssl_stapling_file` are never verified (as nginx)."),
    row("ssl_stapling_responder", HS, Exactly(1), Text, false, Inherit, "", "url", "The OCSP responder asked instead of the certificate's own: `http://host[:port][/path]` (only `http`, as nginx). The host name is resolved when the configuration is loaded."),
    row("ssl_verify_client", HS, Exactly(1), Keyword(&["on", "off", "optional", "optional_no_ca"]), false, Inherit, "off", "on | off | optional | optional_no_ca", "Asks the client for a certificate. The handshake never fails over it (as in nginx): with `on`, a request without a certificate is answered 400 with the 496 page (\"No required SSL certificate was sent\"), one whose certificate does not verify with the 495 page (\"The SSL certificate error\"), both through `error_page 495`/`496`; `optional` refuses only a certificate that does not verify; `optional_no_ca` also lets one through whose chain does not reach a trusted CA. `$ssl_client_verify` tells the result (`SUCCESS`, `FAILED:reason` with OpenSSL's reason, `NONE`). `on` and `optional` need `ssl_client_certificate` (or `ssl_trusted_certificate`)."),
    row("ssl_verify_depth", HS, Exactly(1), Int, false, Inherit, "1", "number", "How many intermediate CA certificates may stand between the client's certificate and the trusted root (OpenSSL's count, neither end counted): 0 accepts only certificates a trusted CA signed directly, 1 (the default) also one intermediate."),
    row("ssl_client_certificate", HS, Exactly(1), Text, false, Inherit, "", "file", "PEM CA certificates that verify client certificates; their names are sent to the client in the certificate request (each once). protonc reads the file and refuses a missing file or one without a certificate."),
    row("ssl_trusted_certificate", HS, Exactly(1), Text, false, Inherit, "", "file", "PEM CA certificates that also verify client certificates (and complete chains), without being announced to the client. Checked by protonc as `ssl_client_certificate`."),
    row("ssl_crl", HS, Exactly(1), Text, false, Inherit, "", "file", "PEM certificate revocation lists for client certificates. As nginx (OpenSSL's CRL_CHECK_ALL), every certificate of a client's chain below its self-signed root then needs a CRL of its issuer in the file (`FAILED:unable to get certificate CRL` otherwise), and a revoked one fails (`FAILED:certificate revoked`). protonc reads the file and refuses a missing file or one without a CRL."),
    row("ssl_buffer_size", HS, Exactly(1), Size, false, Inherit, "16k", "size", "The largest TLS record of response data."),
    row("real_ip_recursive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "With `X-Forwarded-For`: skip the trusted addresses from the right, taking the first untrusted one."),
    row("valid_referers", SL, AtLeast(1), Custom, true, Inherit, "", "none | blocked | server_names | string | ~regex …", "Which `Referer` headers are valid: `$invalid_referer` is empty for them and `1` for the others. `none`: no Referer; `blocked`: a Referer without `http://`/`https://`; `server_names`: the server's names (regex names too); a host name or wildcard (`*.example.com`, `.example.com`, `www.example.*`), optionally with a URI prefix (`example.com/img/`); `~regex` on the referer after its scheme (caseless). All lines of the nearest level that has any apply."),
    row("referer_hash_max_size", SL, Exactly(1), Int, false, Inherit, "2048", "size", "Accepted, no effect: sizes nginx's hash of referer names; Proton sizes its own."),
    row("referer_hash_bucket_size", SL, Exactly(1), Int, false, Inherit, "64", "size", "Accepted, no effect: sizes nginx's hash of referer names; Proton sizes its own."),
    row("limit_except", L, AtLeast(1), Block, false, Local, "", "method … { … }", "Requests whose method is not listed take the block's configuration (the location's plus the block's own: `allow`, `deny`, `access_log`, `proxy_pass`). `GET` also covers `HEAD`. Methods: GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, OPTIONS, PROPFIND, PROPPATCH, LOCK, UNLOCK, PATCH."),
    row("allow", HSL_LMT, Exactly(1), Custom, true, Inherit, "", "address | CIDR | unix: | all", "Lets the clients it names in. `allow` and `deny` lines are checked in order and the first that matches decides (403 for `deny`, with \"access forbidden by rule\" in the error log); a level with any of them replaces its parent's. Checked after the location's rewrite directives, before try_files and the content handler, as nginx's access phase."),
    row("deny", HSL_LMT, Exactly(1), Custom, true, Inherit, "", "address | CIDR | unix: | all", "Refuses (403) the clients it names; see `allow`."),
    row("satisfy", HSL, Exactly(1), Keyword(&["all", "any"]), false, Inherit, "all", "all | any", "How the access checks combine (`allow`/`deny`, `auth_basic`, `auth_request`, run in that order, as nginx's access phase): `all` lets a request in only if none of them refuses it (the first refusal answers); `any` lets it in as soon as one of them accepts it, and otherwise answers 401 if one asked for credentials, else 403. Subrequests are not checked, as in nginx."),
    row("auth_basic", HSL_LMT, Exactly(1), Text, false, Inherit, "off", "realm | off", "HTTP Basic authentication against `auth_basic_user_file`: a request without valid credentials gets 401 with `WWW-Authenticate: Basic realm=\"realm\"`. The realm may have variables; if it evaluates to `off`, the check is off (as nginx). Log lines as nginx's: \"no user/password was provided for basic authentication\" (info), \"user \"x\" was not found in \"file\"\", \"user \"x\": password mismatch\" (error)."),
    row("auth_basic_user_file", HSL_LMT, Exactly(1), Text, false, Inherit, "", "file", "The htpasswd file of `auth_basic`: `user:hash` lines (`#` comments). The name may have variables; a relative name is relative to the prefix. As nginx, the file is read on each request that needs it, so edits take effect at once; a missing file answers 403, an unreadable one 500. Hashes: `{PLAIN}`, `{SHA}`, `{SSHA}`, `$apr1$` (nginx's own), and what nginx leaves to the system's crypt(3): DES, `$1$` (MD5), `$5$`/`$6$` (SHA-256/512), `$2a$`/`$2b$`/`$2y$` (bcrypt), `$y$` (yescrypt, the default of Debian's `mkpasswd`). Not supported: gost-yescrypt (`$gy$`) and scrypt (`$7$`): such a line never matches, with an error log line. Checking a bcrypt, SHA-crypt or yescrypt hash takes the worker's time (milliseconds; about 80 ms for yescrypt at Debian's default cost), as in nginx."),
    row("auth_delay", HSL, Exactly(1), Time, false, Inherit, "0s", "time", "A request refused with 401 (by `auth_basic` or `auth_request`) is answered this much later, on the worker's timers, so that the time an answer takes tells nothing about the credentials."),
    row("auth_request", HSL, Exactly(1), Text, false, Inherit, "off", "uri | off", "Asks the location `uri` (an internal subrequest: a GET with the request's header fields and no body, its response body thrown away) whether the request may go on: a 2xx status lets it in; 401 answers 401 with the subrequest's `WWW-Authenticate` lines; 403 answers 403; any other status 500 (\"auth request unexpected status\"). The subrequest runs on the same worker, concurrently with other requests; the request waits on it without blocking."),
    row("auth_request_set", HSL, Exactly(2), Custom, true, Inherit, "", "$variable value", "Once the `auth_request` subrequest is done, sets `$variable` to `value` evaluated in the subrequest: e.g. `$upstream_http_x_user` of an auth service's answer, or `$upstream_status`. The variable keeps its value through internal redirects. `$args` may be set this way (as with `set`)."),
    row("auth_jwt", HSL_LMT, Range(1, 2), Custom, false, Inherit, "off", "realm [token=$variable] | off", "Lets in only requests with a valid JSON Web Token (the directive names of NGINX Plus, which Proton has free): a signed token (JWS, compact form) from `Authorization: Bearer …`, or from the variable of `token=` (a cookie, an argument), whose signature verifies with a key of `auth_jwt_key_file` and whose `exp` and `nbf` hold (with `auth_jwt_leeway`). Algorithms HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA (Ed25519); `alg: none`, an algorithm the key is not for (no HMAC with an RSA key's bytes), an unknown `kid`, an unknown `crit`, an expired or malformed token are refused: 401 with `WWW-Authenticate: Bearer realm=\"realm\"` (and `error=\"invalid_token\"` when a token was given) and an error-log line saying why. Runs after `auth_basic` and before `auth_request`, combined by `satisfy`. The realm may have variables; if it evaluates to `off`, the check is off. Its claims are `$jwt_claim_NAME`, its header members `$jwt_header_NAME`, the whole payload `$jwt_payload`. Encrypted tokens (JWE) are refused."),
    row("auth_jwt_key_file", HSL_LMT, Exactly(1), Text, true, Inherit, "", "file", "A JSON Web Key set (RFC 7517), or a single key, for `auth_jwt`: RSA (2048 bits or more), EC (P-256, P-384, P-521), OKP (Ed25519) and `oct` (HMAC secrets at least as long as the hash) keys; a key's `kid`, `alg`, `use` and `key_ops` are honoured. Several lines: every key of every file. Read and checked by protonc (a broken key is an error with its line and column in the key file; a key Proton cannot use is a warning) and read once by proton-run when it loads the IR (a reload reads it again), never per request. The name takes no variables."),
    row("auth_jwt_key_request", HSL_LMT, Exactly(1), Text, false, Inherit, "", "uri", "Fetches the key set of `auth_jwt` with a subrequest to `uri` (usually a location that proxies to the identity provider's JWKS endpoint): a 200 whose body (at most 1 MiB) is a JWK set. Keys of `auth_jwt_key_file` are used as well. Without `auth_jwt_key_cache` the set is fetched for every request, as NGINX Plus does; a fetch that fails answers 500 with an error-log line."),
    row("auth_jwt_key_cache", HSL, Exactly(1), Time, false, Inherit, "0s", "time", "How long each worker keeps the key set `auth_jwt_key_request` fetched (0: not kept). A reload starts afresh."),
    row("auth_jwt_type", HSL_LMT, Exactly(1), Keyword(&["signed", "encrypted", "nested"]), false, Inherit, "signed", "signed | encrypted | nested", "The kind of token `auth_jwt` expects. Proton checks signed tokens (JWS); `encrypted` and `nested` (JWE) are not supported yet and are an error."),
    row("auth_jwt_require", HSL_LMT, AtLeast(1), Custom, true, Inherit, "", "$value … [error=401 | 403]", "Further conditions on a valid token: each value (usually a `map` of `$jwt_claim_*`) must be non-empty and not `0`, else the request is refused with the `error=` status (401 by default). Lines of one level together; a level with none inherits its parent's."),
    row("auth_jwt_leeway", HSL, Exactly(1), Time, false, Inherit, "0s", "time", "How far the clocks may disagree when `exp` and `nbf` are checked."),
    row("limit_req_zone", H, Range(3, 4), Custom, true, Structure, "", "key zone=name:size rate=rate [sync]", "A shared memory zone of `size` bytes (at least 32k, 8 pages, as nginx) holding a leaky bucket per value of `key` (variables, e.g. `$binary_remote_addr`); `rate` is `Nr/s` or `Nr/m`. The zone is shared by every worker and kept across a reload when its name and size stay. When it is full, entries idle the longest are dropped (one unused for 60 s, or the oldest when a new one does not fit); when none can be, the request is refused with `limit_req_status` and \"could not allocate node\" is logged. `sync` (nginx Plus: zone synchronisation in a cluster) is accepted and has no effect."),
    row("limit_req", HSL, Range(1, 3), Custom, true, Inherit, "", "zone=name [burst=number] [nodelay | delay=number]", "Limits the rate of requests per key of a `limit_req_zone` (nginx's preaccess phase: after the rewrite phase found the location, before `allow`/`deny` and the content handler; once per request, not again after an internal redirect). Requests over the rate wait (on the worker's timers) until they fit, up to `burst` of them; more are refused with `limit_req_status`. `nodelay` serves the burst at once, `delay=N` the first N of it. Several lines apply together; a level with any replaces its parent's lines."),
    row("limit_req_status", HSL, Exactly(1), Custom, false, Inherit, "503", "code", "The status of refused requests (400 to 599)."),
    row("limit_req_log_level", HSL, Exactly(1), Keyword(&["info", "notice", "warn", "error"]), false, Inherit, "error", "info | notice | warn | error", "The level of \"limiting requests\" lines; \"delaying request\" lines are one level lower (`info` stays `info`)."),
    row("limit_req_dry_run", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Requests are neither delayed nor refused, but counted and logged (with \", dry run\"), and `$limit_req_status` says what would have happened."),
    row("limit_conn_zone", H, Exactly(2), Custom, true, Structure, "", "key zone=name:size", "A shared memory zone of `size` bytes (at least 32k) counting the requests in progress per value of `key` (variables; a value is at most 255 bytes, as nginx). Shared by every worker, kept across a reload when its name and size stay."),
    row("limit_conn", HSL, Exactly(2), Custom, true, Inherit, "", "zone number", "At most `number` requests in progress per key of the zone (checked in the preaccess phase, after `limit_req`; counted until the request ends: answered, failed or abandoned by the client); more are refused with `limit_conn_status`. Several lines apply together; a level with any replaces its parent's lines."),
    row("limit_conn_status", HSL, Exactly(1), Custom, false, Inherit, "503", "code", "The status of refused requests (400 to 599)."),
    row("limit_conn_log_level", HSL, Exactly(1), Keyword(&["info", "notice", "warn", "error"]), false, Inherit, "error", "info | notice | warn | error", "The level of \"limiting connections\" lines."),
    row("limit_conn_dry_run", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Requests over the limit are not refused, only logged (\", dry run,\"), and `$limit_conn_status` says `REJECTED_DRY_RUN`."),
    row("if", SL, AtLeast(1), Block, true, Local, "", "(condition) { … }", "Runs the block's directives when the condition holds: `($var)` (not empty and not `0`), `($var = text)`, `($var != text)`, `($var ~ regex)` with `~`, `~*`, `!~`, `!~*` (a match sets the captures), `(-f path)` with `-f`, `-d`, `-e`, `-x` and `!-f`…. In a location the request then takes the block's configuration: the location's settings plus the block's own (`try_files` is not inherited into it, as in nginx); the location's rewrite directives after the block still run."),
    row("break", SL_IF, Exactly(0), Custom, true, Local, "", "", "Stops the rewrite-module directives of the current level; a URI changed before it does not select another location."),
    row("set", SL_IF, Exactly(2), Custom, true, Local, "", "$variable value", "Sets a variable."),
    // upstream
    row("upstream", H, Exactly(1), Block, true, Structure, "", "name { … }", "A group of servers for proxy_pass."),
    row("server", U, AtLeast(1), Custom, true, Structure, "", "address [weight=n] [max_fails=n] [fail_timeout=time] [backup] [down] [max_conns=n] [resolve]", "A member of an upstream group: `host[:port]` (port 80 by default; a name is resolved when proton-run loads the configuration, and each of its addresses becomes a server with the line's parameters, as nginx) or `unix:PATH`, a unix-domain socket (the path used as written, not against the prefix). With `resolve` (nginx ≥ 1.27.3; the group needs a `zone` and a `resolver`, its own or the http level's), the name is not resolved at load: the first worker asks the resolver for it at start and again whenever the answer expires (its TTL or `valid=`), without blocking, and the addresses it gets become the server's peers in every worker (at most 32 per `resolve` line; one answer with more keeps the first 32). Until the first answer the server has no peer (502, `no live upstreams`); an error answer keeps the peers as they were; an empty one removes them. A reload keeps the addresses known for the same name in the same group until the new answer comes. `service=` (SRV records) is not supported; active health checks skip `resolve` servers."),
    row("zone", U, Range(1, 2), Custom, false, Structure, "", "name [size]", "nginx's shared memory zone for the group's run-time state. Checked as nginx does (at least 32k, one size per name, a zone named without a size must be sized by another upstream) and otherwise without effect: Proton keeps every group's state (connections, failures, health) in memory shared by all workers, zone or not, and a reload carries the failures (`max_fails`/`fail_timeout`) and (for a group whose `health_check` is unchanged) the health-check verdicts of each server the new configuration still has (same group name and address) over to the new workers, so a server known to fail or be down is not tried again (nginx starts the new configuration afresh). Open connections stay counted by the old workers as they drain."),
    row("keepalive", U, Exactly(1), Int, false, Structure, "", "connections", "Idle keep-alive connections to the group cached per worker."),
    row("keepalive_timeout", U, Exactly(1), Time, false, Structure, "60s", "time", "How long an idle upstream connection stays cached."),
    row("keepalive_requests", U, Exactly(1), Int, false, Structure, "1000", "number", "Requests per cached upstream connection."),
    row("keepalive_time", U, Exactly(1), Time, false, Structure, "1h", "time", "Longest life of an upstream connection: one open longer than this is closed after its response instead of being cached."),
    row("least_conn", U, Exactly(0), Custom, false, Structure, "", "", "Pick the server with the fewest active connections (weighted)."),
    row("ip_hash", U, Exactly(0), Custom, false, Structure, "", "", "Pick by client IPv4 /24 (or whole IPv6 address)."),
    row("hash", U, Range(1, 2), Custom, false, Structure, "", "key [consistent]", "Pick by a hash of the key; `consistent` uses ketama."),
    row("random", U, Range(0, 2), Custom, false, Structure, "", "[two [least_conn]]", "Pick at random; `two` picks the less loaded of two draws (by active connections per weight: `least_conn`, the only method, written or not)."),
    row("least_time", U, Range(1, 2), Custom, false, Structure, "", "header | last_byte [inflight]", "Latency-aware picking (nginx Plus). Proton implements it as peak-EWMA: a per-server latency estimate (to the response head with `header`, to its last byte with `last_byte`) that takes a slowdown at once and decays with a 10 s half-life, times (active connections + 1), per weight; in-flight requests always count (`inflight` is accepted)."),
    row("health_check", U, AtLeast(0), Custom, false, Structure, "", "[interval=time] [uri=uri] [fails=number] [passes=number] [timeout=time] [port=number] [match=name]", "Active health checks, run on the event loop of one worker: every interval each server gets `GET uri HTTP/1.0`; the answer passes when it passes the `match` block named by `match=` (without it: a 2xx/3xx status). `fails` failures in a row take the server out of rotation, `passes` passes bring it back. Defaults: interval=5s uri=/ fails=1 passes=1, timeout = the interval (at most 10s), the server's own port. Lives in `upstream` (nginx Plus has it in `location`)."),
    row("match", H, Exactly(1), Block, true, Structure, "", "name { … }", "A named set of tests for the answers to `health_check … match=name`: `status`, `header` and `body` lines, all of which must hold (a block without a `status` line accepts any status). Only the first 16k of the body are tested (nginx Plus: 256k). `require` is not supported."),
    row("status", Ctx::MATCH, AtLeast(1), Custom, true, Local, "", "[!] code | from-to …", "In `match`: the status is one of the codes or inclusive ranges (`status 200 204;`, `status 200-399;`); with `!` it is none of them (`status ! 500;`)."),
    row("header", Ctx::MATCH, Range(1, 3), Custom, true, Local, "", "name [= | != | ~ | !~ value] | ! name", "In `match`: the answer has a header field `name` (names compare ignoring case), one whose value is (`=`) or is not (`!=`) exactly `value`, one whose value matches (`~`) or does not match (`!~`) the regex `value`; `! name`: it has no such field."),
    row("body", Ctx::MATCH, Exactly(2), Custom, true, Local, "", "~ | !~ regex", "In `match`: the first 16k of the answer's body match (`~`) or do not match (`!~`) the regex."),
    // proxy
    row("proxy_pass", L.or(Ctx::IF_LOCATION).or(Ctx::LIMIT_EXCEPT), Exactly(1), Custom, false, Local, "", "URL", "Proxies to an upstream group, `host[:port]`, or a unix-domain socket: `http://unix:/path.sock` or, with a URI part after a second colon, `http://unix:/path.sock:/uri/` (`$proxy_host`, so `Host`, is then `localhost`, as nginx). `https://` works over all of them."),
    row("proxy_set_header", HSL, Exactly(2), Custom, true, Inherit, "Host $proxy_host; Connection close;", "field value", "Request header sent upstream; inherited only if the level has none."),
    row("proxy_http_version", HSL, Exactly(1), Keyword(&["1.0", "1.1"]), false, Inherit, "1.0", "1.0 | 1.1", "HTTP version towards upstreams."),
    row("proxy_connect_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "Timeout to connect to an upstream (504)."),
    row("proxy_read_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "Longest pause between two reads from the upstream (504)."),
    row("proxy_send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "Longest pause between two writes to the upstream (504)."),
    row("proxy_next_upstream", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "error timeout", "error | timeout | invalid_header | http_500 | … | non_idempotent | off …", "When a request moves to the next upstream server."),
    row("proxy_next_upstream_tries", HSL, Exactly(1), Int, false, Inherit, "0", "number", "Most tries (0 = no limit)."),
    row("proxy_next_upstream_timeout", HSL, Exactly(1), Time, false, Inherit, "0", "time", "Time bound for passing to the next server (0 = no limit)."),
    row("proxy_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`on`: the upstream's response is read as fast as the upstream sends it, into `proxy_buffers` and beyond them into a temporary file (`proxy_temp_path`, at most `proxy_max_temp_file_size`), and the upstream connection is released (kept alive or closed) as soon as the whole response is read, however slowly the client takes it. `off`: read only as fast as the client takes it, `proxy_buffer_size` at a time. An upstream's `X-Accel-Buffering: yes|no` header switches it for its response, as nginx."),
    row("proxy_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "Buffer for the upstream response head."),
    row("proxy_buffers", HSL, Exactly(2), Custom, false, Inherit, "8 4k", "number size", "Memory for the upstream response body, per request: with `proxy_buffering on`, up to `number × size` bytes the client has not taken yet are kept in memory before the rest goes to a temporary file; at least 2 buffers (nginx's check)."),
    row("proxy_max_temp_file_size", HSL, Exactly(1), Size, false, Inherit, "1024m", "size", "The most of one buffered response written to a temporary file; when it is reached the upstream is read only as fast as the client takes the response (as nginx). `0` disables temporary files. Otherwise at least the larger of `proxy_buffer_size` and one `proxy_buffers` buffer (nginx's check)."),
    row("proxy_temp_file_write_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "How much of the upstream response is read and written to the temporary file at a time. Default twice the larger of `proxy_buffer_size` and one `proxy_buffers` buffer (8k with the defaults); at least that larger size (nginx's check)."),
    row("proxy_busy_buffers_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "Checked as nginx checks it (at least the larger of `proxy_buffer_size` and one `proxy_buffers` buffer, less than all `proxy_buffers` but one) and otherwise without effect: it sizes nginx's own bookkeeping of buffers being sent, which Proton does not have (what waits for the client is bounded by `proxy_buffers`)."),
    row("proxy_hide_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Upstream response header not passed to the client."),
    row("proxy_pass_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Pass a header nginx hides by default (Date, Server, X-Accel-…)."),
    row("proxy_redirect", HSL, Range(1, 2), Custom, true, Inherit, "default", "default | off | redirect replacement", "Rewrites the `Location` header of upstream responses and the URL after `url=` in `Refresh`: the rules are tried in order and the first that matches applies. `redirect` is a prefix (variables allowed, bytes compared exactly) that `replacement` replaces, or `~regex` / `~*regex` (caseless), searched in the value, whose match makes the whole value `replacement`, with its captures `$1`… and named groups. `default` is the proxy_pass URL (its URL plus `/` when it has no URI part) → the location's name (`/`); implied where no rules are inherited and proxy_pass has no variables. `off`: no rewriting. A rewritten `Location` that starts with `/` is made absolute as nginx does (`absolute_redirect`)."),
    row("proxy_cookie_domain", HSL, Range(1, 2), Custom, true, Inherit, "off", "off | domain replacement", "Rewrites the `domain=` attribute of upstream `Set-Cookie` headers: `domain` is the whole domain (variables allowed; ASCII case and a leading dot of either side ignored, the cookie's dot kept) or `~regex` (always caseless; the replacement, with captures, becomes the whole value). Rules are tried in order; the first that matches applies."),
    row("proxy_cookie_path", HSL, Range(1, 2), Custom, true, Inherit, "off", "off | path replacement", "Rewrites the `path=` attribute of upstream `Set-Cookie` headers: `path` is a prefix (variables allowed, bytes compared exactly) or `~regex` / `~*regex` (the replacement, with captures, becomes the whole value). Rules are tried in order; the first that matches applies."),
    row("proxy_cookie_flags", HSL, Range(1, 4), Custom, true, Inherit, "off", "off | cookie [flag ...]", "Sets or removes flags of upstream `Set-Cookie` headers whose cookie is `cookie` (the name, ASCII case ignored, variables allowed, or `~regex`, caseless): `secure`, `httponly`, `samesite=strict|lax|none` add the attribute unless present (a different `SameSite` is replaced), `nosecure`, `nohttponly`, `nosamesite` remove it; at most three flags, variables allowed. The first line whose cookie matches applies."),
    row("proxy_intercept_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Upstream responses ≥ 300 go through error_page."),
    row("proxy_request_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`on`: the whole request body is read (into memory, then a temporary file) before an upstream is chosen and connected; it is sent with a Content-Length (a chunked body too) and sent again from the buffer to the next server on a retry. `off`: the body streams to the upstream as it arrives (chunked to an HTTP/1.1 upstream); once some of it went out a retry is impossible. A chunked body to an HTTP/1.0 upstream is read whole either way, as nginx."),
    row("proxy_method", HSL, Exactly(1), Text, false, Inherit, "", "method", "The method of the request sent to the upstream instead of the client's (variables allowed, as nginx ≥ 1.15.6). A POST, PATCH or LOCK made so counts as non-idempotent for `proxy_next_upstream`. A value that is not a token is answered 500; a HEAD request stays HEAD."),
    row("proxy_set_body", HSL, Exactly(1), Text, false, Inherit, "", "value", "The body sent to the upstream instead of the client's (variables allowed), with its Content-Length; the client's body is read and dropped."),
    row("proxy_pass_request_body", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: the client's body is read and dropped, not sent. As nginx, the client's Content-Length is still sent unless `proxy_set_header Content-Length \"\";` (the usual companion)."),
    row("proxy_pass_request_headers", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: only the headers of `proxy_set_header` (and nginx's defaults, `Host` and `Connection`) are sent, none of the client's."),
    row("resolver", HSL.or(U), AtLeast(1), Custom, false, Inherit, "", "address ... [valid=time] [ipv4=on|off] [ipv6=on|off] [status_zone=zone]", "DNS servers (`ip[:port]`, `[ipv6][:port]` or a name resolved at load; port 53) that workers ask, without blocking, for the host names of a `proxy_pass` with variables: UDP to each server in turn, TCP when an answer comes truncated, a query sent again to the next server every 5 s until `resolver_timeout`. Answers are cached for their TTL (`valid=` overrides it) in a cache of each `resolver` directive; A and AAAA are both asked unless `ipv4=off` or `ipv6=off`; every address of a name becomes a server that `proxy_next_upstream` can move to. `status_zone` is accepted and keeps no statistics. In an `upstream` block, the resolver of that group's `server … resolve` names (else the http level's)."),
    row("resolver_timeout", HSL.or(U), Exactly(1), Time, false, Inherit, "30s", "time", "How long a request waits for a name to be resolved (then 502); in an `upstream` block (else from the http level), how long a `server … resolve` lookup may take before it is given up and asked again."),
    row("proxy_pass_trailers", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: the trailer section of a chunked upstream response goes on to a client that gets the response chunked (HTTP/1.1); `off` (nginx's default) ends the body with an empty trailer section. `$upstream_trailer_NAME` sees the trailers either way."),
    row("proxy_protocol", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Proton extension (nginx has this name in its stream module only): `on` starts every new upstream connection with a PROXY protocol v1 line naming the client (the address `realip` found, else the peer) and the address it connected to, so the backend sees who the client is; `PROXY UNKNOWN` when they are not both IPv4 or both IPv6 (a unix-socket client). Such a connection carries one request only: it is never cached for keep-alive nor taken from the cache."),
    row("proxy_socket_keepalive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: TCP keep-alive (SO_KEEPALIVE, with the system's probe timings) on connections to upstreams, so that a peer that vanished is noticed on idle kept-alive connections. No effect on unix-domain upstreams."),
    row("proxy_limit_rate", HSL, Exactly(1), Size, false, Inherit, "0", "rate", "Reads a buffered response from the upstream at most this many bytes per second, per request (0: no limit). As nginx 1.22, it applies only with `proxy_buffering on` (or `X-Accel-Buffering: yes`); the client side is `limit_rate`."),
    row("proxy_bind", HSL, Range(1, 2), Custom, false, Inherit, "off", "address [transparent] | off", "The local address (and optionally port) of connections to upstreams: `127.0.0.2`, `[::1]:8000`; variables allowed (evaluated per request; an empty value: not bound, an invalid one: logged and not bound). `transparent`: a non-local address may be used (IP_TRANSPARENT; the worker needs CAP_NET_ADMIN). A bind that fails is a 500, as nginx."),
    row("proxy_ignore_client_abort", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: a client that closes its connection while the upstream works on its request does not end it: the response is still read and sent (until a write to the client fails). `off`: the upstream connection is closed at once and 499 logged."),
    row("proxy_ignore_headers", HSL, AtLeast(1), Custom, true, Inherit, "", "field …", "Upstream response headers whose effect is ignored: X-Accel-Redirect, X-Accel-Expires, X-Accel-Limit-Rate, X-Accel-Buffering, X-Accel-Charset, Expires, Cache-Control, Set-Cookie, Vary (any case). The headers themselves are passed or hidden as usual. See the notes for what each one does in Proton."),
    row("proxy_force_ranges", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: a single byte range is served (206, or 416) from a proxied 200 response of known length, whatever its `Accept-Ranges`, which is then not passed on; several ranges get the whole response."),
    row("proxy_ssl_server_name", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Send the upstream's name (`proxy_ssl_name`) in the TLS handshake (SNI) to `https://` upstreams."),
    row("proxy_ssl_name", HSL, Exactly(1), Text, false, Inherit, "$proxy_host", "name", "The name the upstream's certificate is checked against (`proxy_ssl_verify`) and sent as SNI (`proxy_ssl_server_name`); variables allowed. Default: the proxy_pass host, without its port (`localhost` for a unix socket)."),
    row("proxy_ssl_verify", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "Verify the upstream's certificate: its chain against `proxy_ssl_trusted_certificate` and its name against `proxy_ssl_name`. A failure is an upstream error (502, or the next server). `off`: any certificate is accepted."),
    row("proxy_ssl_trusted_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "PEM CA certificates that verify upstream certificates (needed by `proxy_ssl_verify on`). Read and checked by protonc."),
    row("proxy_ssl_verify_depth", HSL, Exactly(1), Int, false, Inherit, "1", "number", "How deep the upstream's chain may be: at most depth − 1 of the intermediate certificates it sends are used to reach a trusted CA (1: the certificate is signed by a trusted CA)."),
    row("proxy_ssl_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "A PEM client certificate (with its chain) presented to `https://` upstreams that ask for one. With variables the file is named per request (an empty name: no certificate) and read when a worker first uses it."),
    row("proxy_ssl_certificate_key", HSL, Exactly(1), Text, false, Inherit, "", "file", "The PEM private key of `proxy_ssl_certificate`; protonc checks that it matches (at request time with variables). An encrypted key opens with `proxy_ssl_password_file`."),
    row("proxy_ssl_protocols", HSL, AtLeast(1), Custom, false, Inherit, "TLSv1.2 TLSv1.3", "[TLSv1.2] [TLSv1.3]", "TLS versions offered to upstreams. As `ssl_protocols`, Proton (rustls) has no TLS 1.0/1.1 or SSL, and naming them is an error."),
    row("proxy_ssl_ciphers", HSL, Exactly(1), Custom, false, Inherit, "DEFAULT", "ciphers", "TLS 1.2 cipher suites offered to upstreams, in OpenSSL's cipher-list syntax (as `ssl_ciphers`)."),
    row("proxy_ssl_session_reuse", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "Resume TLS sessions with upstreams (each worker keeps the sessions of the servers it talked to, by name)."),
    row("proxy_ssl_password_file", HSL, Exactly(1), Text, false, Inherit, "", "file", "Passphrases for an encrypted `proxy_ssl_certificate_key`, one per line, tried in turn (as `ssl_password_file`)."),
    row("proxy_ssl_crl", HSL, Exactly(1), Text, false, Inherit, "", "file", "PEM certificate revocation lists checked with `proxy_ssl_verify`. Read and checked by protonc."),
    // the content cache (nginx's file cache, through the proxy module)
    row("proxy_cache_path", H, AtLeast(2), Custom, true, Structure, "", "path [levels=1:2] keys_zone=name:size [use_temp_path=on|off] [inactive=time] [max_size=size] [min_free=size] [manager_files=number] [manager_sleep=time] [manager_threshold=time] [loader_files=number] [loader_sleep=time] [loader_threshold=time] [memory=size]", "Declares a cache: responses are kept as files under `path` (in subdirectories named after the last characters of the key's MD5 with `levels`), and their keys and metadata in a shared memory zone of `size` bytes (at least 8k) that every worker sees. `inactive` (default 10m): an entry nobody asked for in that time is removed, fresh or not. `max_size` and `min_free` bound the disk the cache takes, enforced by the cache manager; the cache loader learns what a directory holds at start. Both run in steps on the first worker's event loop, paced by `manager_files`/`_sleep`/`_threshold` and `loader_files`/`_sleep`/`_threshold` as nginx's processes are (a step never longer than 20 ms). `memory` (a Proton extension, default 4m, 0: none): the bytes of small objects (16 KiB at most each) each worker keeps in memory, so that their hits do not touch the file system. The zone names of all four modules (`proxy_`, `fastcgi_`, `scgi_`, `uwsgi_cache_path`) share one name space, each name once; a `proxy_cache` may name a zone declared further down. `use_temp_path` is accepted: Proton always writes an entry to a temporary file inside the cache directory and renames it into place. The NGINX Plus `purger*` parameters are refused."),
    row("proxy_cache", HSL, Exactly(1), Custom, false, Inherit, "off", "zone | off", "The cache (a `keys_zone` name of a `proxy_cache_path`) that proxied responses are stored in and answered from; with variables, the zone is picked per request (an empty or unknown name: no caching). `off` undoes an outer level's."),
    row("proxy_cache_key", HSL, Exactly(1), Text, false, Inherit, "$scheme$proxy_host$request_uri", "string", "What identifies a cached response (variables allowed); two requests with the same key get the same entry."),
    row("proxy_cache_valid", HSL, AtLeast(1), Custom, true, Inherit, "", "[code ...] time", "How long responses with these statuses (100 to 599, or `any`) stay fresh when the upstream says nothing itself (its `X-Accel-Expires`, `Cache-Control` and `Expires` come first unless ignored); a time alone means 200, 301 and 302. The lines of the nearest level that has any apply, the first line naming a status wins. Without any line, only responses that carry their own lifetime are cached."),
    row("proxy_cache_methods", HSL, AtLeast(1), Custom, false, Inherit, "GET HEAD", "GET | HEAD | POST ...", "The request methods whose responses are cached; GET and HEAD always are, so the directive only adds POST (names in any case)."),
    row("proxy_cache_min_uses", HSL, Exactly(1), Int, false, Inherit, "1", "number", "A response is stored only once its key was asked for this many times."),
    row("proxy_cache_purge", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "NGINX Plus's cache purge: a request for which one of these values (variables allowed) is neither empty nor `0` removes what the cache holds for its key (a key that ends in `*`: every key that starts with what comes before it, found by reading the keys of the cache's files in bounded steps) and is answered 204, or 404 when nothing was held; the upstream is not asked. Guard it with an access rule, e.g. `map $request_method $purge { PURGE $purge_allowed; default 0; }` with `geo $purge_allowed`. The values of all lines of the nearest level that has any count. The third-party ngx_cache_purge syntax (`on`, a method, `from`, `purge_all`) is refused with a hint."),
    row("proxy_cache_bypass", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "When one of these values (variables allowed) is neither empty nor `0`, the response is fetched from the upstream instead of taken from the cache (and may still be stored). The values of all lines of the nearest level that has any count."),
    row("proxy_no_cache", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "When one of these values (variables allowed) is neither empty nor `0`, the response is not stored. The values of all lines of the nearest level that has any count."),
    row("proxy_cache_use_stale", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "updating", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "off", "error | timeout | invalid_header | updating | http_500 | http_502 | http_503 | http_504 | http_403 | http_404 | http_429 ... | off", "In which cases an expired entry is sent rather than the upstream's error (`updating`: while another request refreshes it). Not supported yet: anything but `off` is refused."),
    row("proxy_cache_background_update", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: an expired entry sent under `proxy_cache_use_stale updating` is refreshed by a subrequest in the background. Not supported yet: `on` is refused."),
    row("proxy_cache_lock", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: of several requests for one missing entry, only the first goes to the upstream; the others wait for the entry (at most `proxy_cache_lock_timeout`). Not supported yet: `on` is refused."),
    row("proxy_cache_lock_timeout", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "How long a request waits under `proxy_cache_lock` before going to the upstream itself (its response is then not stored)."),
    row("proxy_cache_lock_age", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "Under `proxy_cache_lock`, when the request that fills an entry takes longer than this, one more request may go to the upstream."),
    row("proxy_cache_revalidate", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: an expired entry with `Last-Modified` or `ETag` is checked with a conditional request (`If-Modified-Since`, `If-None-Match`) and kept on a 304. Not supported yet: `on` is refused."),
    row("proxy_cache_convert_head", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`on`: a HEAD request that may be cached is sent upstream as a GET, so that the stored entry has a body for later GETs; `off`: it goes as a HEAD (put `$request_method` in the key then)."),
    row("proxy_cache_max_range_offset", HSL, Exactly(1), Size, false, Inherit, "", "number", "A request for a byte range starting beyond this offset goes to the upstream as it is and its response is not stored (no limit by default)."),
    row("proxy_store", HSL, Exactly(1), Custom, false, Inherit, "off", "on | off | string", "`on`: the body of a 200 answer is also kept as a file where `root` or `alias` maps the request's URI (a mirror of the upstream's files); a string: at that path (variables allowed). The file is written to a temporary file under `proxy_temp_path` and renamed into place once the whole body came, with the upstream's `Last-Modified` as its time; a response cut short leaves nothing. Not with `proxy_cache` at the same level."),
    row("proxy_store_access", HSL, Range(1, 3), Custom, false, Inherit, "user:rw", "users:permissions …", "The permissions of the files `proxy_store` makes: `user:`, `group:`, `all:` with `r`, `w` or `rw`; rights for group or all give the user read and write too."),
    // FastCGI (nginx's fastcgi module): the proxy machinery with FastCGI records on the wire;
    // every setting is the fastcgi_ one, inherited apart from the proxy_ one.
    row("fastcgi_pass", L.or(Ctx::IF_LOCATION), Exactly(1), Custom, false, Local, "", "address", "Passes requests to a FastCGI application (PHP-FPM, …): `host:port`, `unix:/path.sock`, an upstream group (every balancer, `keepalive`), or variables (an address, `unix:PATH` or a group's name, made per request). No scheme and no URI part; the request goes as CGI parameters (`fastcgi_param`) and the body as FastCGI `STDIN`. The application's answer is a CGI head (`Status:` gives the status, else 302 with `Location`, else 200) and a body, relayed as proxy_pass relays (buffering, temporary files, next upstream, error pages, X-Accel-Redirect)."),
    row("fastcgi_param", HSL, Range(2, 3), Custom, true, Inherit, "", "parameter value [if_not_empty]", "A parameter sent to the application (variables allowed); `if_not_empty`: not sent when the value is empty. Inherited as one list from the nearest level that has any, as nginx. A parameter named `HTTP_*` replaces the one made from the client's header of that name. Debian's `fastcgi_params`, `fastcgi.conf` and `snippets/fastcgi-php.conf` compile unchanged."),
    row("fastcgi_index", HSL, Exactly(1), Text, false, Inherit, "", "name", "Appended to `$fastcgi_script_name` when the URI ends with `/` (as written: no variables, as nginx)."),
    row("fastcgi_split_path_info", L, Exactly(1), Text, false, Inherit, "", "regex", "A regex with two captures that splits the URI into `$fastcgi_script_name` (the first) and `$fastcgi_path_info` (the second), as `^(.+\\.php)(/.+)$`. No match: the whole URI is the script name and the path info is empty."),
    row("fastcgi_keep_conn", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "`on`: the application is asked to keep the connection open after each request (FCGI_KEEP_CONN), and it goes back to the upstream's `keepalive` cache once the whole answer (its END_REQUEST record) is read. `off`: one request per connection."),
    row("fastcgi_catch_stderr", HSL, Exactly(1), Text, true, Inherit, "", "string", "When the application writes this text to its error stream before its answer's head is complete, the answer counts as an invalid header: 502, or the next server with `fastcgi_next_upstream invalid_header`. Several lines: any of them; inherited as one list."),
    row("fastcgi_connect_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_connect_timeout`, for FastCGI."),
    row("fastcgi_read_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_read_timeout`, for FastCGI."),
    row("fastcgi_send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_send_timeout`, for FastCGI."),
    row("fastcgi_next_upstream", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "error timeout", "error | timeout | invalid_header | http_500 | http_503 | http_403 | http_404 | http_429 | non_idempotent | off …", "As `proxy_next_upstream`, for FastCGI (nginx's fastcgi module has no http_502 and http_504)."),
    row("fastcgi_next_upstream_tries", HSL, Exactly(1), Int, false, Inherit, "0", "number", "As `proxy_next_upstream_tries`, for FastCGI."),
    row("fastcgi_next_upstream_timeout", HSL, Exactly(1), Time, false, Inherit, "0", "time", "As `proxy_next_upstream_timeout`, for FastCGI."),
    row("fastcgi_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_buffering`, for FastCGI."),
    row("fastcgi_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "As `proxy_buffer_size`: the most of the CGI head."),
    row("fastcgi_buffers", HSL, Exactly(2), Custom, false, Inherit, "8 4k", "number size", "As `proxy_buffers`, for FastCGI."),
    row("fastcgi_busy_buffers_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_busy_buffers_size` (checked as nginx, no effect)."),
    row("fastcgi_max_temp_file_size", HSL, Exactly(1), Size, false, Inherit, "1024m", "size", "As `proxy_max_temp_file_size`, for FastCGI."),
    row("fastcgi_temp_file_write_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_temp_file_write_size`, for FastCGI."),
    row("fastcgi_temp_path", HSL, Range(1, 4), Custom, false, Inherit, "fastcgi_temp", "path [level1 [level2 [level3]]]", "As `proxy_temp_path`: where the part of a buffered FastCGI answer beyond `fastcgi_buffers` goes."),
    row("fastcgi_hide_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "A header of the application's answer not passed to the client (besides `Status` and the `X-Accel-*` ones, hidden by default)."),
    row("fastcgi_pass_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Passes a header hidden by default (`Status`, `X-Accel-*`)."),
    row("fastcgi_ignore_headers", HSL, AtLeast(1), Custom, true, Inherit, "", "field …", "As `proxy_ignore_headers`, for FastCGI."),
    row("fastcgi_intercept_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_intercept_errors`: answers ≥ 300 go through error_page."),
    row("fastcgi_request_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_request_buffering`: `on` reads the whole body first (then `CONTENT_LENGTH` is known for a chunked one); `off` sends it in STDIN records as it arrives."),
    row("fastcgi_pass_request_body", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: the client's body is read and dropped; the application gets an empty STDIN."),
    row("fastcgi_pass_request_headers", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: no `HTTP_*` parameters are made from the client's headers."),
    row("fastcgi_socket_keepalive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_socket_keepalive`, for FastCGI."),
    row("fastcgi_limit_rate", HSL, Exactly(1), Size, false, Inherit, "0", "rate", "As `proxy_limit_rate`, for FastCGI."),
    row("fastcgi_bind", HSL, Range(1, 2), Custom, false, Inherit, "off", "address [transparent] | off", "As `proxy_bind`, for FastCGI."),
    row("fastcgi_ignore_client_abort", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ignore_client_abort`, for FastCGI."),
    row("fastcgi_force_ranges", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_force_ranges`, for FastCGI."),
    // the content cache for FastCGI (as the proxy's; the key has no default)
    row("fastcgi_cache_path", H, AtLeast(2), Custom, true, Structure, "", "path [levels=1:2] keys_zone=name:size [use_temp_path=on|off] [inactive=time] [max_size=size] [min_free=size] [manager_files=number] [manager_sleep=time] [manager_threshold=time] [loader_files=number] [loader_sleep=time] [loader_threshold=time]", "As `proxy_cache_path`, for FastCGI answers (one name space for the zones of all four modules; a `fastcgi_cache` can only use a `fastcgi_cache_path` zone)."),
    row("fastcgi_cache", HSL, Exactly(1), Custom, false, Inherit, "off", "zone | off", "As `proxy_cache`, for FastCGI. A `fastcgi_cache_key` must be in effect wherever it is on."),
    row("fastcgi_cache_key", HSL, Exactly(1), Text, false, Inherit, "", "string", "As `proxy_cache_key`, for FastCGI; there is no default, and `fastcgi_cache` without a key is an error (e.g. `$scheme$request_method$host$request_uri`)."),
    row("fastcgi_cache_valid", HSL, AtLeast(1), Custom, true, Inherit, "", "[code ...] time", "As `proxy_cache_valid`, for FastCGI."),
    row("fastcgi_cache_methods", HSL, AtLeast(1), Custom, false, Inherit, "GET HEAD", "GET | HEAD | POST ...", "As `proxy_cache_methods`, for FastCGI. A HEAD goes to the application as a HEAD (there is no `convert_head` for FastCGI)."),
    row("fastcgi_cache_min_uses", HSL, Exactly(1), Int, false, Inherit, "1", "number", "As `proxy_cache_min_uses`, for FastCGI."),
    row("fastcgi_cache_purge", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_purge`, for FastCGI."),
    row("fastcgi_cache_bypass", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_bypass`, for FastCGI."),
    row("fastcgi_no_cache", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_no_cache`, for FastCGI."),
    row("fastcgi_cache_use_stale", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "updating", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "off", "error | timeout | invalid_header | updating | http_500 | http_503 | http_403 | http_404 | http_429 ... | off", "As `proxy_cache_use_stale`, for FastCGI (no `http_502`, `http_504`, as nginx). Not supported yet: anything but `off` is refused."),
    row("fastcgi_cache_background_update", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_background_update`, for FastCGI. Not supported yet: `on` is refused."),
    row("fastcgi_cache_lock", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_lock`, for FastCGI. Not supported yet: `on` is refused."),
    row("fastcgi_cache_lock_timeout", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_timeout`, for FastCGI."),
    row("fastcgi_cache_lock_age", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_age`, for FastCGI."),
    row("fastcgi_cache_revalidate", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_revalidate`, for FastCGI. Not supported yet: `on` is refused."),
    row("fastcgi_cache_max_range_offset", HSL, Exactly(1), Size, false, Inherit, "", "number", "As `proxy_cache_max_range_offset`, for FastCGI."),
    row("fastcgi_store", HSL, Exactly(1), Custom, false, Inherit, "off", "on | off | string", "As `proxy_store`, for FastCGI."),
    row("fastcgi_store_access", HSL, Range(1, 3), Custom, false, Inherit, "user:rw", "users:permissions …", "As `proxy_store_access`, for FastCGI."),
    // SCGI (nginx's scgi module): the proxy machinery with the SCGI request on the wire.
    row("scgi_pass", L.or(Ctx::IF_LOCATION), Exactly(1), Custom, false, Local, "", "address", "Passes requests to an SCGI application: `host:port`, `unix:/path.sock`, an upstream group, or variables, as `fastcgi_pass`. The request goes as one netstring of parameters (`CONTENT_LENGTH` first, then `scgi_param`s and the client's headers as `HTTP_*`) and then the body; a chunked body is always read whole first (its length is needed). The answer is a status line or a CGI head, then the body until the application closes the connection (no keep-alive)."),
    row("scgi_param", HSL, Range(2, 3), Custom, true, Inherit, "", "parameter value [if_not_empty]", "As `fastcgi_param`, for SCGI (Debian's `scgi_params` compiles unchanged)."),
    row("scgi_connect_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_connect_timeout`, for SCGI."),
    row("scgi_read_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_read_timeout`, for SCGI."),
    row("scgi_send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_send_timeout`, for SCGI."),
    row("scgi_next_upstream", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "error timeout", "error | timeout | invalid_header | http_500 | http_503 | http_403 | http_404 | http_429 | non_idempotent | off …", "As `proxy_next_upstream`, for SCGI (nginx's fastcgi module has no http_502 and http_504)."),
    row("scgi_next_upstream_tries", HSL, Exactly(1), Int, false, Inherit, "0", "number", "As `proxy_next_upstream_tries`, for SCGI."),
    row("scgi_next_upstream_timeout", HSL, Exactly(1), Time, false, Inherit, "0", "time", "As `proxy_next_upstream_timeout`, for SCGI."),
    row("scgi_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_buffering`, for SCGI."),
    row("scgi_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "As `proxy_buffer_size`: the most of the answer's head."),
    row("scgi_buffers", HSL, Exactly(2), Custom, false, Inherit, "8 4k", "number size", "As `proxy_buffers`, for SCGI."),
    row("scgi_busy_buffers_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_busy_buffers_size` (checked as nginx, no effect)."),
    row("scgi_max_temp_file_size", HSL, Exactly(1), Size, false, Inherit, "1024m", "size", "As `proxy_max_temp_file_size`, for SCGI."),
    row("scgi_temp_file_write_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_temp_file_write_size`, for SCGI."),
    row("scgi_temp_path", HSL, Range(1, 4), Custom, false, Inherit, "scgi_temp", "path [level1 [level2 [level3]]]", "As `proxy_temp_path`: where the part of a buffered SCGI answer beyond `scgi_buffers` goes."),
    row("scgi_hide_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "A header of the application's answer not passed to the client (besides `Status` and the `X-Accel-*` ones, hidden by default)."),
    row("scgi_pass_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Passes a header hidden by default (`Status`, `X-Accel-*`)."),
    row("scgi_ignore_headers", HSL, AtLeast(1), Custom, true, Inherit, "", "field …", "As `proxy_ignore_headers`, for SCGI."),
    row("scgi_intercept_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_intercept_errors`: answers ≥ 300 go through error_page."),
    row("scgi_request_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_request_buffering`: `on` reads the whole body first before the request goes; `off` streams a body with a length as it arrives (a chunked one is read whole either way)."),
    row("scgi_pass_request_body", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: the client's body is read and dropped, not sent."),
    row("scgi_pass_request_headers", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: no `HTTP_*` parameters are made from the client's headers."),
    row("scgi_socket_keepalive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_socket_keepalive`, for SCGI."),
    row("scgi_limit_rate", HSL, Exactly(1), Size, false, Inherit, "0", "rate", "As `proxy_limit_rate`, for SCGI."),
    row("scgi_bind", HSL, Range(1, 2), Custom, false, Inherit, "off", "address [transparent] | off", "As `proxy_bind`, for SCGI."),
    row("scgi_ignore_client_abort", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ignore_client_abort`, for SCGI."),
    row("scgi_force_ranges", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_force_ranges`, for SCGI."),
    // the content cache for SCGI (as the proxy's; the key has no default)
    row("scgi_cache_path", H, AtLeast(2), Custom, true, Structure, "", "path [levels=1:2] keys_zone=name:size [use_temp_path=on|off] [inactive=time] [max_size=size] [min_free=size] [manager_files=number] [manager_sleep=time] [manager_threshold=time] [loader_files=number] [loader_sleep=time] [loader_threshold=time]", "As `proxy_cache_path`, for SCGI answers (one name space for the zones of all four modules; a `scgi_cache` can only use a `scgi_cache_path` zone)."),
    row("scgi_cache", HSL, Exactly(1), Custom, false, Inherit, "off", "zone | off", "As `proxy_cache`, for SCGI. A `scgi_cache_key` must be in effect wherever it is on."),
    row("scgi_cache_key", HSL, Exactly(1), Text, false, Inherit, "", "string", "As `proxy_cache_key`, for SCGI; there is no default, and `scgi_cache` without a key is an error (e.g. `$scheme$request_method$host$request_uri`)."),
    row("scgi_cache_valid", HSL, AtLeast(1), Custom, true, Inherit, "", "[code ...] time", "As `proxy_cache_valid`, for SCGI."),
    row("scgi_cache_methods", HSL, AtLeast(1), Custom, false, Inherit, "GET HEAD", "GET | HEAD | POST ...", "As `proxy_cache_methods`, for SCGI. A HEAD goes to the application as a HEAD (there is no `convert_head` for SCGI)."),
    row("scgi_cache_min_uses", HSL, Exactly(1), Int, false, Inherit, "1", "number", "As `proxy_cache_min_uses`, for SCGI."),
    row("scgi_cache_purge", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_purge`, for SCGI."),
    row("scgi_cache_bypass", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_bypass`, for SCGI."),
    row("scgi_no_cache", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_no_cache`, for SCGI."),
    row("scgi_cache_use_stale", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "updating", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "off", "error | timeout | invalid_header | updating | http_500 | http_503 | http_403 | http_404 | http_429 ... | off", "As `proxy_cache_use_stale`, for SCGI (no `http_502`, `http_504`, as nginx). Not supported yet: anything but `off` is refused."),
    row("scgi_cache_background_update", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_background_update`, for SCGI. Not supported yet: `on` is refused."),
    row("scgi_cache_lock", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_lock`, for SCGI. Not supported yet: `on` is refused."),
    row("scgi_cache_lock_timeout", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_timeout`, for SCGI."),
    row("scgi_cache_lock_age", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_age`, for SCGI."),
    row("scgi_cache_revalidate", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_revalidate`, for SCGI. Not supported yet: `on` is refused."),
    row("scgi_cache_max_range_offset", HSL, Exactly(1), Size, false, Inherit, "", "number", "As `proxy_cache_max_range_offset`, for SCGI."),
    row("scgi_store", HSL, Exactly(1), Custom, false, Inherit, "off", "on | off | string", "As `proxy_store`, for SCGI."),
    row("scgi_store_access", HSL, Range(1, 3), Custom, false, Inherit, "user:rw", "users:permissions …", "As `proxy_store_access`, for SCGI."),
    // uwsgi (nginx's uwsgi module): the proxy machinery with the uwsgi request on the wire.
    row("uwsgi_pass", L.or(Ctx::IF_LOCATION), Exactly(1), Custom, false, Local, "", "[uwsgi://]address", "Passes requests to a uwsgi application (uWSGI): `host:port`, `unix:/path.sock`, an upstream group, or variables, optionally after `uwsgi://` (`suwsgi://`: over TLS, with the `uwsgi_ssl_*` settings). The request goes as a uwsgi packet of parameters (`uwsgi_param`s and the client's headers as `HTTP_*`, at most 64 KiB) and then the body; a chunked body is always read whole first. The answer is a status line or a CGI head, then the body until the application closes the connection (no keep-alive)."),
    row("uwsgi_param", HSL, Range(2, 3), Custom, true, Inherit, "", "parameter value [if_not_empty]", "As `fastcgi_param`, for uwsgi (Debian's `uwsgi_params` compiles unchanged)."),
    row("uwsgi_modifier1", HSL, Exactly(1), Int, false, Inherit, "0", "number", "The first modifier byte of the uwsgi packet (0: a WSGI request for uWSGI's Python plugin)."),
    row("uwsgi_modifier2", HSL, Exactly(1), Int, false, Inherit, "0", "number", "The second modifier byte of the uwsgi packet."),
    row("uwsgi_ssl_server_name", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ssl_server_name`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_name", HSL, Exactly(1), Text, false, Inherit, "", "name", "As `proxy_ssl_name`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_verify", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ssl_verify`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_trusted_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_trusted_certificate`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_verify_depth", HSL, Exactly(1), Int, false, Inherit, "1", "number", "As `proxy_ssl_verify_depth`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_certificate`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_certificate_key", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_certificate_key`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_protocols", HSL, AtLeast(1), Custom, false, Inherit, "TLSv1.2 TLSv1.3", "[TLSv1.2] [TLSv1.3]", "As `proxy_ssl_protocols`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_ciphers", HSL, Exactly(1), Custom, false, Inherit, "DEFAULT", "ciphers", "As `proxy_ssl_ciphers`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_session_reuse", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_ssl_session_reuse`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_password_file", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_password_file`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_ssl_crl", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_crl`, for `uwsgi_pass suwsgi://`."),
    row("uwsgi_connect_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_connect_timeout`, for uwsgi."),
    row("uwsgi_read_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_read_timeout`, for uwsgi."),
    row("uwsgi_send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_send_timeout`, for uwsgi."),
    row("uwsgi_next_upstream", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "error timeout", "error | timeout | invalid_header | http_500 | http_503 | http_403 | http_404 | http_429 | non_idempotent | off …", "As `proxy_next_upstream`, for uwsgi (nginx's fastcgi module has no http_502 and http_504)."),
    row("uwsgi_next_upstream_tries", HSL, Exactly(1), Int, false, Inherit, "0", "number", "As `proxy_next_upstream_tries`, for uwsgi."),
    row("uwsgi_next_upstream_timeout", HSL, Exactly(1), Time, false, Inherit, "0", "time", "As `proxy_next_upstream_timeout`, for uwsgi."),
    row("uwsgi_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_buffering`, for uwsgi."),
    row("uwsgi_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "As `proxy_buffer_size`: the most of the answer's head."),
    row("uwsgi_buffers", HSL, Exactly(2), Custom, false, Inherit, "8 4k", "number size", "As `proxy_buffers`, for uwsgi."),
    row("uwsgi_busy_buffers_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_busy_buffers_size` (checked as nginx, no effect)."),
    row("uwsgi_max_temp_file_size", HSL, Exactly(1), Size, false, Inherit, "1024m", "size", "As `proxy_max_temp_file_size`, for uwsgi."),
    row("uwsgi_temp_file_write_size", HSL, Exactly(1), Size, false, Inherit, "8k", "size", "As `proxy_temp_file_write_size`, for uwsgi."),
    row("uwsgi_temp_path", HSL, Range(1, 4), Custom, false, Inherit, "uwsgi_temp", "path [level1 [level2 [level3]]]", "As `proxy_temp_path`: where the part of a buffered uwsgi answer beyond `uwsgi_buffers` goes."),
    row("uwsgi_hide_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "A header of the application's answer not passed to the client (besides `Status` and the `X-Accel-*` ones, hidden by default)."),
    row("uwsgi_pass_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Passes a header hidden by default (`Status`, `X-Accel-*`)."),
    row("uwsgi_ignore_headers", HSL, AtLeast(1), Custom, true, Inherit, "", "field …", "As `proxy_ignore_headers`, for uwsgi."),
    row("uwsgi_intercept_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_intercept_errors`: answers ≥ 300 go through error_page."),
    row("uwsgi_request_buffering", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_request_buffering`: `on` reads the whole body first before the request goes; `off` streams a body with a length as it arrives (a chunked one is read whole either way)."),
    row("uwsgi_pass_request_body", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: the client's body is read and dropped, not sent."),
    row("uwsgi_pass_request_headers", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "`off`: no `HTTP_*` parameters are made from the client's headers."),
    row("uwsgi_socket_keepalive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_socket_keepalive`, for uwsgi."),
    row("uwsgi_limit_rate", HSL, Exactly(1), Size, false, Inherit, "0", "rate", "As `proxy_limit_rate`, for uwsgi."),
    row("uwsgi_bind", HSL, Range(1, 2), Custom, false, Inherit, "off", "address [transparent] | off", "As `proxy_bind`, for uwsgi."),
    row("uwsgi_ignore_client_abort", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ignore_client_abort`, for uwsgi."),
    row("uwsgi_force_ranges", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_force_ranges`, for uwsgi."),
    // the content cache for uwsgi (as the proxy's; the key has no default)
    row("uwsgi_cache_path", H, AtLeast(2), Custom, true, Structure, "", "path [levels=1:2] keys_zone=name:size [use_temp_path=on|off] [inactive=time] [max_size=size] [min_free=size] [manager_files=number] [manager_sleep=time] [manager_threshold=time] [loader_files=number] [loader_sleep=time] [loader_threshold=time]", "As `proxy_cache_path`, for uwsgi answers (one name space for the zones of all four modules; a `uwsgi_cache` can only use a `uwsgi_cache_path` zone)."),
    row("uwsgi_cache", HSL, Exactly(1), Custom, false, Inherit, "off", "zone | off", "As `proxy_cache`, for uwsgi. A `uwsgi_cache_key` must be in effect wherever it is on."),
    row("uwsgi_cache_key", HSL, Exactly(1), Text, false, Inherit, "", "string", "As `proxy_cache_key`, for uwsgi; there is no default, and `uwsgi_cache` without a key is an error (e.g. `$scheme$request_method$host$request_uri`)."),
    row("uwsgi_cache_valid", HSL, AtLeast(1), Custom, true, Inherit, "", "[code ...] time", "As `proxy_cache_valid`, for uwsgi."),
    row("uwsgi_cache_methods", HSL, AtLeast(1), Custom, false, Inherit, "GET HEAD", "GET | HEAD | POST ...", "As `proxy_cache_methods`, for uwsgi. A HEAD goes to the application as a HEAD (there is no `convert_head` for uwsgi)."),
    row("uwsgi_cache_min_uses", HSL, Exactly(1), Int, false, Inherit, "1", "number", "As `proxy_cache_min_uses`, for uwsgi."),
    row("uwsgi_cache_purge", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_purge`, for uwsgi."),
    row("uwsgi_cache_bypass", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_cache_bypass`, for uwsgi."),
    row("uwsgi_no_cache", HSL, AtLeast(1), Text, true, Inherit, "", "string ...", "As `proxy_no_cache`, for uwsgi."),
    row("uwsgi_cache_use_stale", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "updating", "http_500", "http_503", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "off", "error | timeout | invalid_header | updating | http_500 | http_503 | http_403 | http_404 | http_429 ... | off", "As `proxy_cache_use_stale`, for uwsgi (no `http_502`, `http_504`, as nginx). Not supported yet: anything but `off` is refused."),
    row("uwsgi_cache_background_update", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_background_update`, for uwsgi. Not supported yet: `on` is refused."),
    row("uwsgi_cache_lock", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_lock`, for uwsgi. Not supported yet: `on` is refused."),
    row("uwsgi_cache_lock_timeout", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_timeout`, for uwsgi."),
    row("uwsgi_cache_lock_age", HSL, Exactly(1), Time, false, Inherit, "5s", "time", "As `proxy_cache_lock_age`, for uwsgi."),
    row("uwsgi_cache_revalidate", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_cache_revalidate`, for uwsgi. Not supported yet: `on` is refused."),
    row("uwsgi_cache_max_range_offset", HSL, Exactly(1), Size, false, Inherit, "", "number", "As `proxy_cache_max_range_offset`, for uwsgi."),
    row("uwsgi_store", HSL, Exactly(1), Custom, false, Inherit, "off", "on | off | string", "As `proxy_store`, for uwsgi."),
    row("uwsgi_store_access", HSL, Range(1, 3), Custom, false, Inherit, "user:rw", "users:permissions …", "As `proxy_store_access`, for uwsgi."),
    // gRPC (nginx's grpc module): the proxy machinery with an HTTP/2 stream on the wire.
    row("grpc_pass", L.or(Ctx::IF_LOCATION), Exactly(1), Custom, false, Local, "", "[grpc:// | grpcs://]address", "Passes requests to a gRPC server over HTTP/2 (cleartext with prior knowledge, or TLS with ALPN `h2` for `grpcs://`): `host:port`, `unix:/path.sock`, an upstream group, or variables. Each request is one stream; its body is streamed as it arrives (never buffered first, as nginx), the answer's DATA and trailers go to the client as they come (no response buffering). `keepalive` in the upstream group keeps connections and opens the next stream on them. `:authority` is the address as written (an upstream group's name; `localhost` for a unix socket) unless `grpc_set_header Host` says otherwise."),
    row("grpc_set_header", HSL, Exactly(2), Custom, true, Inherit, "", "field value", "A header sent with the stream (an empty value: not sent); inherited only if the level has none. `Host` sets `:authority`. As nginx, the client's `Host`, `Content-Length`, `TE` (sent as `te: trailers` when the client accepts trailers) and hop-by-hop headers are not passed."),
    row("grpc_hide_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "A header of the answer not passed to the client (besides the ones nginx hides: `Date`, `Server`, `X-Accel-*`)."),
    row("grpc_pass_header", HSL, Exactly(1), Text, true, Inherit, "", "field", "Passes a header hidden by default."),
    row("grpc_ignore_headers", HSL, AtLeast(1), Custom, true, Inherit, "", "field …", "As `proxy_ignore_headers`, for gRPC."),
    row("grpc_connect_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_connect_timeout`, for gRPC."),
    row("grpc_read_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_read_timeout`: the longest wait between two reads of the answer."),
    row("grpc_send_timeout", HSL, Exactly(1), Time, false, Inherit, "60s", "time", "As `proxy_send_timeout`, for gRPC (a send blocked by the server's flow-control window counts)."),
    row("grpc_buffer_size", HSL, Exactly(1), Size, false, Inherit, "4k", "size", "The most of the answer's head (its fields decoded); a larger head is a 502."),
    row("grpc_next_upstream", HSL, AtLeast(1), Keyword(&["error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"]), false, Inherit, "error timeout", "error | timeout | invalid_header | http_500 | http_502 | http_503 | http_504 | http_403 | http_404 | http_429 | non_idempotent | off …", "As `proxy_next_upstream`, for gRPC (a stream the server refused with GOAWAY counts as `error`)."),
    row("grpc_next_upstream_tries", HSL, Exactly(1), Int, false, Inherit, "0", "number", "As `proxy_next_upstream_tries`, for gRPC."),
    row("grpc_next_upstream_timeout", HSL, Exactly(1), Time, false, Inherit, "0", "time", "As `proxy_next_upstream_timeout`, for gRPC."),
    row("grpc_intercept_errors", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_intercept_errors`: answers ≥ 300 go through error_page."),
    row("grpc_socket_keepalive", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_socket_keepalive`, for gRPC."),
    row("grpc_bind", HSL, Range(1, 2), Custom, false, Inherit, "off", "address [transparent] | off", "As `proxy_bind`, for gRPC."),
    row("grpc_ssl_server_name", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ssl_server_name`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_name", HSL, Exactly(1), Text, false, Inherit, "", "name", "As `proxy_ssl_name`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_verify", HSL, Exactly(1), Flag, false, Inherit, "off", "on | off", "As `proxy_ssl_verify`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_trusted_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_trusted_certificate`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_verify_depth", HSL, Exactly(1), Int, false, Inherit, "1", "number", "As `proxy_ssl_verify_depth`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_certificate", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_certificate`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_certificate_key", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_certificate_key`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_protocols", HSL, AtLeast(1), Custom, false, Inherit, "TLSv1.2 TLSv1.3", "[TLSv1.2] [TLSv1.3]", "As `proxy_ssl_protocols`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_ciphers", HSL, Exactly(1), Custom, false, Inherit, "DEFAULT", "ciphers", "As `proxy_ssl_ciphers`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_session_reuse", HSL, Exactly(1), Flag, false, Inherit, "on", "on | off", "As `proxy_ssl_session_reuse`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_password_file", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_password_file`, for `grpc_pass grpcs://`."),
    row("grpc_ssl_crl", HSL, Exactly(1), Text, false, Inherit, "", "file", "As `proxy_ssl_crl`, for `grpc_pass grpcs://`."),
];

/// nginx directives Proton knows of but does not implement yet: an error that says so.
pub static UNSUPPORTED: &[&str] = &[
    "thread_pool",
    "multi_accept",
    "worker_aio_requests",
    "stream",
    "mail",
    "aio",
    "directio",
    "postpone_gzipping",
    "reset_timedout_connection",
    "recursive_error_pages",
    "send_lowat",
    "return_log",
    "http3",
    "quic",
    "sticky",
    "ntlm",
    "require",
    "status_zone",
    "api",
    "empty_gif",
    "image_filter",
    "xslt_stylesheet",
    "perl",
    "js_content",
    "dav_methods",
    "mp4",
    "flv",
    "hls",
    "secure_link",
    "userid",
    "memcached_pass",
    "random_index",
    "index_ext",
    "ancient_browser",
    "modern_browser",
    "modern_browser_value",
    "ancient_browser_value",
    "debug_points",
    "devpoll_changes",
    "devpoll_events",
    "epoll_events",
    "eventport_events",
    "iocp_threads",
    "post_acceptex",
    "acceptex_read",
    "kqueue_changes",
    "kqueue_events",
    "create_full_put_path",
    "min_delete_depth",
    "dav_access",
    "degradation",
    "degrade",
    "add_header_inherit",
    "add_trailer_inherit",
    "mp4_buffer_size",
    "mp4_max_buffer_size",
    "mp4_start_key_frame",
    "proxy_send_lowat",
    "fastcgi_send_lowat",
    "fastcgi_socket_rcvbuf",
    "scgi_socket_rcvbuf",
    "scgi_socket_sndbuf",
    "uwsgi_socket_rcvbuf",
    "uwsgi_socket_sndbuf",
    "uwsgi_string",
    "uwsgi_ssl_conf_command",
    "uwsgi_ssl_certificate_cache",
    "uwsgi_ssl_key_log",
    "fastcgi_socket_sndbuf",
    "secure_link_md5",
    "secure_link_secret",
    "userid_service",
    "userid_name",
    "userid_domain",
    "userid_path",
    "userid_expires",
    "userid_flags",
    "userid_p3p",
    "userid_mark",
    "xml_entities",
    "xml_external_entities",
    "client_body_early_read",
    "read_ahead",
    "directio_alignment",
    "keepalive_min_timeout",
    "early_hints",
    "open_file_cache_events",
];

/// Prefixes of nginx directive families not implemented yet.
pub static UNSUPPORTED_PREFIXES: &[&str] = &[
    "tunnel_",
    "http3_",
    "ssl_",
    "gzip",
    "gunzip",
    "brotli",
    "zstd",
    "proxy_ssl",
    "grpc_socket_rcvbuf",
    "grpc_socket_sndbuf",
    "grpc_ssl_conf_command",
    "grpc_ssl_certificate_cache",
    "grpc_ssl_key_log",
    "auth_jwt_claim_set",
    "auth_jwt_header_set",
    "http2_",
    "quic_",
    "memcached_",
    "keyval",
    "js_",
    "perl_",
    "spdy_",
    "geoip_",
    "xslt_",
    "image_filter_",
    "proxy_socket_",
    "proxy_upstream_",
    "proxy_no_",
    "aio_",
];

/// The rows for `name` whose context includes `ctx`, if any.
pub fn lookup(name: &str, ctx: Ctx) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.name == name && s.ctx.contains(ctx))
}

/// Every context in which `name` is allowed (union over its rows).
pub fn contexts_of(name: &str) -> Option<Ctx> {
    let mut c = Ctx(0);
    for s in TABLE.iter().filter(|s| s.name == name) {
        c = c.or(s.ctx);
    }
    (c.0 != 0).then_some(c)
}

/// True when `name` is an nginx directive Proton has not implemented.
///
/// A family prefix covers the directives of the family that have no row of their own in the
/// table (a family is implemented directive by directive).
pub fn is_unsupported(name: &str) -> bool {
    UNSUPPORTED.contains(&name)
        || (UNSUPPORTED_PREFIXES.iter().any(|p| name.starts_with(p))
            && !TABLE.iter().any(|s| s.name == name))
}

/// What to do instead of an unsupported directive, where there is more to say than "remove it".
pub fn unsupported_hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "ssl_dhparam" => "Proton's TLS (rustls) has no DHE key exchange; TLS 1.2 uses ECDHE suites, so the parameters have no use: remove the line",
        "ssl_conf_command" => "OpenSSL configuration commands have no meaning for Proton's TLS (rustls); use ssl_protocols, ssl_ciphers and ssl_ecdh_curve",
        "ssl_engine" => "OpenSSL engines have no equivalent in Proton's TLS (rustls)",
        "zstd_dict_file" => "zstd dictionaries are not supported: Proton's zstd responses are compressed without one; remove the line",
        "require" => "nginx Plus's `require $variable` test of a `match` block is not supported: test the status, header fields or body instead",
        _ => return None,
    })
}

/// Parses a non-negative decimal number as nginx's `ngx_atoi` does: digits only (no sign,
/// no spaces), and it must fit `T`.
pub fn parse_number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an nginx size: `1024`, `8k`, `1m`, `1g`.
pub fn parse_size(s: &str) -> Option<u64> {
    proton_ir::time::parse_size(s.as_bytes())
}

/// Parses an nginx time into milliseconds, as nginx's `ngx_parse_time(…, 0)`: units `w`,
/// `d`, `h`, `m`, `s`, `ms`, each at most once and from the largest to the smallest
/// (`1h30m`, not `30m1h`); a number without unit is seconds, also at the end (`1h30` is
/// 1h30s). `y` and `M` are refused in millisecond times, as in nginx.
pub fn parse_time_ms(s: &str) -> Option<u64> {
    proton_ir::time::parse_time(s, false)
}

/// Parses an nginx time into seconds, as nginx's `ngx_parse_time(…, 1)` (used by `expires`,
/// the `Keep-Alive` header time and `fail_timeout`): units `y`, `M`, `w`, `d`, `h`, `m`, `s`
/// from the largest to the smallest; `ms` is refused.
pub fn parse_time_secs(s: &str) -> Option<u64> {
    proton_ir::time::parse_time(s, true)
}

/// The directive reference as a Markdown table, generated from [`TABLE`]. `full` adds the
/// syntax and description columns (docs/configuration.md); the short form is the README's.
pub fn markdown_table(full: bool) -> String {
    let mut out = String::new();
    if full {
        out.push_str("| directive | contexts | syntax | default | inherited | description |\n|---|---|---|---|---|---|\n");
    } else {
        out.push_str("| directive | contexts | default |\n|---|---|---|\n");
    }
    let cell = |s: &str| s.replace('|', "\\|");
    for s in TABLE {
        let ctx = s.ctx.names().join(", ");
        let default = if s.default.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", cell(s.default))
        };
        if full {
            let end = if s.kind == Kind::Block { "" } else { ";" };
            let syntax = if s.syntax.is_empty() {
                format!("`{}{end}`", s.name)
            } else {
                format!("`{} {}{end}`", s.name, cell(s.syntax))
            };
            let inherit = match s.merge {
                Merge::Inherit => "yes",
                Merge::Local => "no",
                Merge::Structure => "—",
            };
            out.push_str(&format!(
                "| `{}` | {ctx} | {syntax} | {default} | {inherit} | {} |\n",
                s.name,
                cell(s.doc)
            ));
        } else {
            out.push_str(&format!("| `{}` | {ctx} | {default} |\n", s.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every directive of nginx's http, core and event modules is known: implemented, or
    /// refused as "not supported yet" (never "unknown directive"). `include` is the reader's.
    #[test]
    fn every_nginx_directive_is_known() {
        let list = include_str!("../tests/nginx/directives.txt");
        let unknown: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty() && *l != "include")
            .filter(|n| !super::TABLE.iter().any(|s| s.name == *n) && !super::is_unsupported(n))
            .collect();
        assert!(unknown.is_empty(), "unknown to protonc: {unknown:?}");
    }

    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("1x"), None);
        assert_eq!(parse_size("99999999999999999999g"), None);
        assert_eq!(parse_time_ms("30s"), Some(30_000));
        assert_eq!(parse_time_ms("30"), Some(30_000));
        assert_eq!(parse_time_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_time_ms("500ms"), Some(500));
        assert_eq!(parse_time_ms("s"), None);
        assert_eq!(parse_time_ms(""), None);
        // nginx 1.22's ngx_parse_time: a trailing bare number is seconds; units go from the
        // largest to the smallest, once each; no y/M in millisecond times, no ms in seconds.
        assert_eq!(parse_time_ms("1h30"), Some(3_630_000));
        assert_eq!(parse_time_ms("1w2d"), Some(9 * 86_400_000));
        assert_eq!(parse_time_ms("1s500ms"), Some(1500));
        assert_eq!(parse_time_ms("30s1h"), None);
        assert_eq!(parse_time_ms("1h1h"), None);
        assert_eq!(parse_time_ms("1M"), None);
        assert_eq!(parse_time_ms("1y"), None);
        assert_eq!(parse_time_ms("1ms1s"), None);
        assert_eq!(parse_time_ms("99999999999999999999"), None);
        assert_eq!(parse_time_secs("1y"), Some(365 * 86_400));
        assert_eq!(parse_time_secs("1M1d"), Some(31 * 86_400));
        assert_eq!(parse_time_secs("15h30m"), Some(55_800));
        assert_eq!(parse_time_secs("500ms"), None);
        assert_eq!(parse_time_secs("30"), Some(30));
    }

    #[test]
    fn table_is_consistent() {
        for s in TABLE {
            assert!(
                !is_unsupported(s.name) || s.name == "server",
                "{} is both supported and not",
                s.name
            );
            let dup = TABLE
                .iter()
                .filter(|o| o.name == s.name && o.ctx.0 & s.ctx.0 != 0)
                .count();
            assert_eq!(dup, 1, "{} has overlapping rows", s.name);
        }
    }
}
