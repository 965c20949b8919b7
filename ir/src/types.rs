//! The IR data types. Ids are indices into the vectors of [`Ir`]; [`Ir::verify`] checks that
//! every id is in range, so the runtime may index without bounds surprises.

use serde::{Deserialize, Serialize};

/// Index into [`Ir::servers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct ServerId(pub u32);
/// Index into [`Ir::locations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct LocationId(pub u32);
/// Index into [`Ir::upstreams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct UpstreamId(pub u32);
/// Index into [`Ir::regexes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct RegexId(pub u32);
/// Index into [`Ir::mime_types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct MimeTableId(pub u32);
/// Index into [`Ir::log_formats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct LogFormatId(pub u32);

/// The whole compiled configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ir {
    /// main and events context settings.
    pub main: MainConf,
    /// One entry per distinct listen address, sorted by address.
    pub listeners: Vec<Listener>,
    /// Every `server {}` block, in config order.
    pub servers: Vec<Server>,
    /// Every location (and each server's implicit server-level location), flattened.
    pub locations: Vec<Location>,
    /// Every `upstream {}` block plus one implicit group per literal `proxy_pass host:port`.
    pub upstreams: Vec<Upstream>,
    /// Every regular expression used anywhere (locations, server names, rewrites).
    pub regexes: Vec<Regex>,
    /// Named log formats; index 0 is always nginx's predefined `combined`.
    pub log_formats: Vec<LogFormat>,
    /// User variables created by `set`, by index (the name is for diagnostics only).
    pub user_vars: Vec<String>,
    /// `map` blocks, by index ([`Var::Map`]); a map's templates may use other maps, never
    /// in a cycle and at most [`MAX_MAP_NESTING`] deep (checked by [`Ir::verify`]).
    pub maps: Vec<Map>,
    /// Distinct `types {}` tables: lowercase extension → MIME type, sorted by extension.
    pub mime_types: Vec<Vec<(String, String)>>,
    /// Distinct inherited-settings records, shared by locations.
    pub settings: Vec<Settings>,
    /// The config files read, in order; [`SourceRef::file`] indexes this.
    pub source_files: Vec<String>,
    /// Short strings stored back to back (location names), so that decoding does not
    /// allocate one String per location.
    pub text: String,
    /// `charset_map` tables.
    pub charset_maps: Vec<CharsetMap>,
    /// Every `resolver` directive, in config order ([`Settings::resolver`] indexes this);
    /// each has a cache of its own, as in nginx.
    pub resolvers: Vec<Resolver>,
    /// `limit_req_zone` and `limit_conn_zone` lines, in config order
    /// ([`LimitReqRule::zone`] and [`LimitConnRule::zone`] index this).
    pub limit_zones: Vec<LimitZone>,
    /// `proxy_cache_path` (and `fastcgi_`, `scgi_`, `uwsgi_cache_path`) lines, in config
    /// order ([`CacheRef::Zone`] indexes this).
    pub cache_zones: Vec<CacheZone>,
}

/// A `proxy_cache_path`: responses stored as files under `path`, indexed in memory shared by
/// every worker (`keys_zone`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheZone {
    /// `keys_zone=NAME`.
    pub name: String,
    /// `keys_zone=NAME:SIZE`, in bytes (at least 8 pages, as nginx).
    pub size: u64,
    /// The directory, as written (relative paths are relative to the prefix).
    pub path: String,
    /// `levels=1:2`: the subdirectory name lengths (each 1 or 2, at most 3 levels).
    pub levels: Vec<u8>,
    /// `use_temp_path` (default on). Proton writes every object to a temporary file inside
    /// the cache directory either way (so that it appears with one rename); the flag is kept
    /// for reports.
    pub use_temp_path: bool,
    /// `inactive=` (default 10m): an object not used for this long is removed.
    pub inactive_secs: u64,
    /// `max_size=`: the most the cache's files may take on disk (`None`: no limit).
    pub max_size: Option<u64>,
    /// `min_free=`: the free space the cache leaves on its file system (`None`: none).
    pub min_free: Option<u64>,
    /// `manager_files=`, `manager_sleep=`, `manager_threshold=` (defaults 100, 50ms, 200ms).
    pub manager_files: u32,
    pub manager_sleep_ms: u64,
    pub manager_threshold_ms: u64,
    /// `loader_files=`, `loader_sleep=`, `loader_threshold=` (defaults 100, 50ms, 200ms).
    pub loader_files: u32,
    pub loader_sleep_ms: u64,
    pub loader_threshold_ms: u64,
    /// `memory=SIZE` (a Proton extension, default 4m): each worker keeps up to this many
    /// bytes of small objects (16 KiB at most each) in memory, so that their hits do not
    /// touch the file system; 0: none.
    pub memory: u64,
}

/// Which cache a location uses (`proxy_cache`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CacheRef {
    /// A zone named literally: index into [`Ir::cache_zones`].
    Zone(u32),
    /// A name with variables, found among the zones per request (an empty value or an
    /// unknown name: not cached).
    Var(Template),
}

/// One `proxy_cache_valid [code ...] time` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheValid {
    /// The statuses it applies to; empty with `any`.
    pub codes: Vec<u16>,
    /// `any`: every status.
    pub any: bool,
    /// How long a response with such a status stays fresh (0: not cached).
    pub secs: u64,
}

/// `proxy_cache_use_stale`: when a stale object is sent rather than an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheStale {
    pub error: bool,
    pub timeout: bool,
    pub invalid_header: bool,
    pub updating: bool,
    pub http_500: bool,
    pub http_502: bool,
    pub http_503: bool,
    pub http_504: bool,
    pub http_403: bool,
    pub http_404: bool,
    pub http_429: bool,
}

/// The content cache of a location (`proxy_cache*`, `proxy_no_cache`), as nginx merges it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheSettings {
    /// `proxy_cache` (`None`: off).
    pub zone: Option<CacheRef>,
    /// `proxy_cache_key` (default `$scheme$proxy_host$request_uri`; FastCGI, SCGI and uwsgi
    /// have no default and require one).
    pub key: Template,
    /// `proxy_cache_valid`, in config order (the first line naming a status applies).
    pub valid: Vec<CacheValid>,
    /// `proxy_cache_methods` (GET and HEAD are always in it), upper case.
    pub methods: Vec<String>,
    /// `proxy_cache_min_uses` (default 1).
    pub min_uses: u32,
    /// `proxy_cache_bypass`: the response is not taken from the cache when one of these is
    /// neither empty nor `0`.
    pub bypass: Vec<Template>,
    /// `proxy_no_cache`: the response is not stored when one of these is neither empty nor
    /// `0`.
    pub no_cache: Vec<Template>,
    /// `proxy_cache_purge` (NGINX Plus's): a request for which one of these is neither
    /// empty nor `0` removes what the cache holds for its key (a key ending in `*`: every
    /// key it starts) and is answered 204, or 404 when nothing was held.
    pub purge: Vec<Template>,
    /// `proxy_cache_use_stale` (default off).
    pub use_stale: CacheStale,
    /// `proxy_cache_background_update` (default off).
    pub background_update: bool,
    /// `proxy_cache_lock` (default off), `_timeout` (5s), `_age` (5s).
    pub lock: bool,
    pub lock_timeout_ms: u64,
    pub lock_age_ms: u64,
    /// `proxy_cache_revalidate` (default off).
    pub revalidate: bool,
    /// `proxy_cache_convert_head` (default on).
    pub convert_head: bool,
    /// `proxy_cache_max_range_offset` (`None`: no limit).
    pub max_range_offset: Option<u64>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            zone: None,
            key: Template { parts: vec![] },
            valid: vec![],
            methods: vec!["GET".into(), "HEAD".into()],
            min_uses: 1,
            bypass: vec![],
            no_cache: vec![],
            purge: vec![],
            use_stale: CacheStale::default(),
            background_update: false,
            lock: false,
            lock_timeout_ms: 5000,
            lock_age_ms: 5000,
            revalidate: false,
            convert_head: true,
            max_range_offset: None,
        }
    }
}

/// A `limit_req_zone` or `limit_conn_zone`: state per key in memory shared by every worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitZone {
    /// `zone=NAME`.
    pub name: String,
    /// `zone=NAME:SIZE`, in bytes (at least 8 pages, as nginx).
    pub size: u64,
    /// The key (nginx's complex value): an empty value is not limited.
    pub key: Template,
    /// What the zone counts.
    pub kind: LimitZoneKind,
}

/// What a [`LimitZone`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LimitZoneKind {
    /// `limit_req_zone`: a leaky bucket per key; `rate` in requests per 1000 seconds
    /// (nginx's milli-requests per second: `Nr/s` is N×1000, `Nr/m` N×1000/60).
    Req { rate: u64, sync: bool },
    /// `limit_conn_zone`: requests in progress per key.
    Conn,
}

/// `limit_req` lines in effect and their companions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitReq {
    /// The `limit_req` lines of the nearest level that has any, in order.
    pub limits: Vec<LimitReqRule>,
    /// `limit_req_status` (503).
    pub status: u16,
    /// `limit_req_log_level` (error): rejections; delays are logged one level lower.
    pub log_level: LogLevel,
    /// `limit_req_dry_run`.
    pub dry_run: bool,
}

impl Default for LimitReq {
    fn default() -> Self {
        LimitReq {
            limits: Vec::new(),
            status: 503,
            log_level: LogLevel::Error,
            dry_run: false,
        }
    }
}

/// One `limit_req zone=NAME [burst=N] [nodelay | delay=N]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitReqRule {
    /// Index into [`Ir::limit_zones`] (a `Req` zone).
    pub zone: u32,
    /// `burst` × 1000.
    pub burst: u64,
    /// `delay` × 1000: excess up to this is not delayed (`nodelay`: `u64::MAX`).
    pub delay: u64,
}

/// `limit_conn` lines in effect and their companions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitConn {
    /// The `limit_conn` lines of the nearest level that has any, in order.
    pub limits: Vec<LimitConnRule>,
    /// `limit_conn_status` (503).
    pub status: u16,
    /// `limit_conn_log_level` (error).
    pub log_level: LogLevel,
    /// `limit_conn_dry_run`.
    pub dry_run: bool,
}

impl Default for LimitConn {
    fn default() -> Self {
        LimitConn {
            limits: Vec::new(),
            status: 503,
            log_level: LogLevel::Error,
            dry_run: false,
        }
    }
}

/// One `limit_conn ZONE N` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitConnRule {
    /// Index into [`Ir::limit_zones`] (a `Conn` zone).
    pub zone: u32,
    /// Requests in progress allowed per key.
    pub conn: u32,
}

/// A `resolver` directive: the DNS servers a worker asks for the names of a `proxy_pass`
/// with variables, without blocking (UDP, TCP when an answer comes truncated).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resolver {
    /// `ip:port` or `name:port` (port 53 unless written); a name is resolved when
    /// proton-run loads the configuration, each of its addresses becoming a server.
    pub servers: Vec<String>,
    /// `valid=`: how long an answer is kept, overriding the records' TTL.
    pub valid_secs: Option<u32>,
    /// `ipv4=`, `ipv6=`: which address families are asked for (A, AAAA).
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The scheme of a `proxy_pass` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A string inside [`Ir::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TextRef {
    pub start: u32,
    pub len: u32,
}

/// A place in the config sources: file index and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SourceRef {
    pub file: u32,
    pub line: u32,
}

impl Ir {
    /// The string a [`TextRef`] points at ("" if it does not point inside [`Ir::text`]).
    pub fn text_of(&self, r: TextRef) -> &str {
        let start = r.start as usize;
        self.text
            .get(start..start.saturating_add(r.len as usize))
            .unwrap_or("")
    }

    /// Appends `s` to [`Ir::text`] and returns where it is.
    pub fn push_text(&mut self, s: &str) -> TextRef {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        TextRef {
            start,
            len: s.len() as u32,
        }
    }

    /// The nginx name (without `$`) of a variable; map variables by their map's name.
    pub fn var_name(&self, v: &Var) -> String {
        match v {
            Var::Map(i) => self
                .maps
                .get(*i as usize)
                .map_or_else(|| format!("map#{i}"), |m| m.name.clone()),
            other => other.name(&self.user_vars),
        }
    }

    /// A template in nginx source form, every variable by its name (see
    /// [`Template::to_source`]).
    pub fn source_of(&self, t: &Template) -> String {
        t.to_source_with(&|v| self.var_name(v))
    }

    /// The settings of a server's own level (those of its default location).
    pub fn server_settings(&self, s: &Server) -> Option<&Settings> {
        let loc = self.locations.get(s.default_location.0 as usize)?;
        self.settings.get(loc.conf.settings.0 as usize)
    }

    /// The effective `root` of a location.
    pub fn root_of<'a>(&'a self, loc: &'a Location) -> &'a Template {
        static EMPTY: Template = Template { parts: Vec::new() };
        loc.conf.root.as_ref().unwrap_or_else(|| {
            self.servers
                .get(loc.server.0 as usize)
                .and_then(|s| self.locations.get(s.default_location.0 as usize))
                .and_then(|d| d.conf.root.as_ref())
                .unwrap_or(&EMPTY)
        })
    }

    /// `file:line` of a source reference.
    pub fn describe(&self, at: SourceRef) -> String {
        let file = self
            .source_files
            .get(at.file as usize)
            .map_or("?", String::as_str);
        format!("{file}:{}", at.line)
    }
}

/// `worker_processes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerProcesses {
    /// One worker per CPU.
    Auto,
    /// A fixed count.
    Count(u32),
}

/// Log severity levels, nginx order (debug is the most verbose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Crit,
    Alert,
    Emerg,
}

impl LogLevel {
    /// Every level with its nginx name, most verbose first.
    pub const ALL: [(LogLevel, &'static str); 8] = [
        (LogLevel::Debug, "debug"),
        (LogLevel::Info, "info"),
        (LogLevel::Notice, "notice"),
        (LogLevel::Warn, "warn"),
        (LogLevel::Error, "error"),
        (LogLevel::Crit, "crit"),
        (LogLevel::Alert, "alert"),
        (LogLevel::Emerg, "emerg"),
    ];

    /// The level called `name` (nginx's names, exact case).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(l, _)| *l)
    }

    /// nginx's name of the level.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(l, _)| *l == self)
            .map_or("error", |(_, n)| n)
    }
}

/// main + events context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MainConf {
    pub worker_processes: WorkerProcesses,
    pub worker_connections: u32,
    pub worker_rlimit_nofile: Option<u64>,
    /// `worker_shutdown_timeout`: how long old workers may drain (None: until done).
    pub worker_shutdown_timeout_ms: Option<u64>,
    /// `error_log` targets (nginx allows several).
    pub error_log: Vec<ErrorLog>,
    pub pid: String,
    /// `events { use …; }` if given.
    pub event_method: Option<String>,
    /// `daemon on` written: detach from the terminal as nginx does. Without the directive
    /// proton-run stays in the foreground (see docs/configuration.md).
    pub daemon: bool,
    /// `master_process` (default on); off: one process runs the worker loop itself.
    pub master_process: bool,
    /// `user user [group]`: whom workers run as when the master is root.
    pub user: Option<UserGroup>,
    /// `worker_cpu_affinity`.
    pub worker_cpu_affinity: Option<CpuAffinity>,
    /// `worker_priority` (0: leave it).
    pub worker_priority: i32,
    /// `worker_rlimit_core`, bytes.
    pub worker_rlimit_core: Option<u64>,
    /// `working_directory`.
    pub working_directory: Option<String>,
    /// `env` lines as written: `NAME` (kept from the master's environment) or `NAME=value`.
    pub env: Vec<String>,
    /// `events { debug_connection …; }`: clients whose connections log at debug level.
    pub debug_connection: Vec<ClientAddr>,
    /// `pcre_jit on`: the patterns PCRE2 compiles (those the fast engine cannot express)
    /// are JIT-compiled where the machine allows it.
    pub pcre_jit: bool,
}

impl Default for MainConf {
    /// nginx's defaults (one worker, 512 connections, `logs/error.log` at `error`,
    /// `logs/proton.pid`, master process on, no daemon, nothing else set).
    fn default() -> Self {
        MainConf {
            worker_processes: WorkerProcesses::Count(1),
            worker_connections: 512,
            worker_rlimit_nofile: None,
            worker_shutdown_timeout_ms: None,
            error_log: vec![ErrorLog {
                path: "logs/error.log".into(),
                level: LogLevel::Error,
            }],
            pid: "logs/proton.pid".into(),
            event_method: None,
            daemon: false,
            master_process: true,
            user: None,
            worker_cpu_affinity: None,
            worker_priority: 0,
            worker_rlimit_core: None,
            working_directory: None,
            env: vec![],
            debug_connection: vec![],
            pcre_jit: false,
        }
    }
}

/// A client address as `debug_connection`, `allow` and `deny` match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientAddr {
    /// An address and prefix length (a plain address has the full length).
    Cidr { addr: std::net::IpAddr, prefix: u8 },
    /// `unix:`: every connection on a unix socket.
    Unix,
}

/// `valid_referers`: which `Referer` headers are valid (`$invalid_referer` is empty for
/// them, `1` for the others). See [`Referers::invalid`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Referers {
    /// `none`: a request without `Referer` is valid.
    pub none: bool,
    /// `blocked`: a `Referer` without `http://` or `https://` (shorter than `http://i.ru`,
    /// as nginx counts) is valid.
    pub blocked: bool,
    /// Exact host names (lowercase), each with the URI prefix the referer must then have
    /// (`.example.com` puts `example.com` here too).
    pub exact: Vec<(String, Option<String>)>,
    /// `*.example.com` and `.example.com`, as the suffix `.example.com`, with a URI prefix.
    pub leading: Vec<(String, Option<String>)>,
    /// `www.example.*` (prefix `www.example.`), with a URI prefix.
    pub trailing: Vec<(String, Option<String>)>,
    /// `~regex` entries: matched (caseless unless the regex says otherwise) against the
    /// referer after its scheme.
    pub regex: Vec<RegexId>,
    /// The server's regex names (`server_names`): matched against the referer's host.
    pub server_name_regex: Vec<RegexId>,
}

impl Referers {
    /// Whether `referer` (the request's first `Referer` header) is invalid, as nginx's
    /// referer module decides: scheme `http://` or `https://`, then the host (lowercase, up
    /// to `/` or `:`, at most 256 bytes) by exact name, leading and trailing wildcards (with
    /// the URI prefix of the entry that matched, compared after the port), then the server
    /// name regexes on the host and the other regexes on the rest.
    pub fn invalid(
        &self,
        referer: Option<&[u8]>,
        is_match: &mut dyn FnMut(RegexId, &[u8]) -> bool,
    ) -> bool {
        let Some(r) = referer else {
            return !self.none;
        };
        let rest = if r.len() >= "http://i.ru".len() {
            if r[..7].eq_ignore_ascii_case(b"http://") {
                Some(&r[7..])
            } else if r[..8].eq_ignore_ascii_case(b"https://") {
                Some(&r[8..])
            } else {
                None
            }
        } else {
            None
        };
        let Some(rest) = rest else {
            return !self.blocked;
        };
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b':')
            .unwrap_or(rest.len());
        if end > 256 {
            return true;
        }
        let mut host = [0u8; 256];
        let host = &mut host[..end];
        host.copy_from_slice(&rest[..end]);
        host.make_ascii_lowercase();
        let host = &*host;
        let found = self
            .exact
            .iter()
            .find(|(n, _)| n.as_bytes() == host)
            .map(|(_, u)| u)
            .or_else(|| longest_wildcard(&self.leading, host, |w| host.ends_with(w)))
            .or_else(|| longest_wildcard(&self.trailing, host, |w| host.starts_with(w)));
        if let Some(uri) = found {
            let path = rest[end..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(&[][..], |i| &rest[end + i..]);
            return match uri {
                None => false,
                Some(u) => !path.starts_with(u.as_bytes()),
            };
        }
        if self.server_name_regex.iter().any(|&id| is_match(id, host)) {
            return false;
        }
        !self.regex.iter().any(|&id| is_match(id, rest))
    }
}

/// nginx's realip module: which peers are trusted to say who the client is, and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RealIp {
    /// `set_real_ip_from` addresses.
    pub from: Vec<ClientAddr>,
    /// `real_ip_header`, lowercase (default `x-real-ip`); [`RealIp::PROXY_PROTOCOL`] for
    /// the address of the connection's PROXY protocol header (as nginx, a keyword, never a
    /// header name).
    pub header: String,
    /// `real_ip_recursive on`: with `X-Forwarded-For`, skip trusted addresses from the right.
    pub recursive: bool,
}

impl RealIp {
    /// The `header` of `real_ip_header proxy_protocol`.
    pub const PROXY_PROTOCOL: &'static str = "proxy_protocol";

    /// Whether `peer` (the connection's, or a unix-socket one: `None`) is trusted.
    pub fn trusts(&self, peer: Option<std::net::IpAddr>) -> bool {
        self.from.iter().any(|f| match (f, peer) {
            (ClientAddr::Unix, None) => true,
            (ClientAddr::Unix, Some(_)) | (ClientAddr::Cidr { .. }, None) => false,
            (c, Some(ip)) => c.matches(ip),
        })
    }

    /// The client address `value` (the header's, for `X-Forwarded-For` a list) gives when
    /// the peer is trusted, as nginx's `ngx_http_get_forwarded_addr`: the last address of
    /// the list, and with `recursive`, while that one is trusted too, the one before it.
    /// `None`: no change.
    pub fn client(
        &self,
        peer: Option<std::net::IpAddr>,
        value: &[u8],
        list: bool,
    ) -> Option<std::net::IpAddr> {
        if !self.trusts(peer) {
            return None;
        }
        let parse = |s: &[u8]| -> Option<std::net::IpAddr> {
            let s = std::str::from_utf8(s).ok()?.trim();
            s.parse().ok().or_else(|| {
                // `addr:port` and `[v6]:port`, as ngx_parse_addr_port takes them.
                s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
            })
        };
        if !list {
            return parse(value);
        }
        let mut parts = value
            .split(|&b| b == b',')
            .map(|p| p.trim_ascii())
            .rev()
            .skip_while(|p| p.is_empty());
        let mut found = parse(parts.next()?)?;
        if self.recursive {
            for p in parts {
                if !self.trusts(Some(found)) {
                    break;
                }
                match parse(p) {
                    Some(a) => found = a,
                    None => break,
                }
            }
        }
        Some(found)
    }
}

/// One `allow` or `deny` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessRule {
    pub deny: bool,
    /// The clients it applies to; `None`: `all`.
    pub from: Option<ClientAddr>,
}

/// nginx's access phase beyond `allow`/`deny`: its handlers run in nginx's order (access,
/// auth_basic, auth_request) and `satisfy` says how their answers combine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Auth {
    /// `satisfy any` (default `all`): one handler letting the request in is enough.
    pub satisfy_any: bool,
    /// `auth_basic` realm (may have variables; a value of `off` turns it off); `None`: not
    /// set at any level.
    pub basic_realm: Option<Template>,
    /// `auth_basic_user_file` (may have variables; relative to the prefix); `None`: not set.
    pub basic_user_file: Option<Template>,
    /// `auth_delay`: a 401 is answered this much later (against timing attacks).
    pub delay_ms: u64,
    /// `auth_request` URI (`None`: off): a subrequest whose status lets the request in
    /// (2xx), or answers it (401 with the subrequest's `WWW-Authenticate`, 403; other: 500).
    pub request: Option<String>,
    /// `auth_request_set` lines: each variable gets its value, evaluated in the finished
    /// auth subrequest (`$upstream_http_*`, `$upstream_status`, …).
    pub request_set: Vec<AuthSet>,
    /// `auth_jwt` and its companions (`None`: not set at any level).
    pub jwt: Option<Box<AuthJwt>>,
}

/// `auth_jwt` (NGINX Plus's directive names): a JSON Web Token checked against the key
/// sets of `auth_jwt_key_file`, run between `auth_basic` and `auth_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthJwt {
    /// The realm (may have variables; a value of `off` turns the check off).
    pub realm: Template,
    /// `token=$variable`: where the token is (`None`: `Authorization: Bearer …`).
    pub token: Option<Template>,
    /// `auth_jwt_key_file` paths as written (relative ones are relative to the prefix), read
    /// once when the IR is loaded.
    pub key_files: Vec<String>,
    /// `auth_jwt_key_request` URI: the key set is fetched by a subrequest (`None`: the key
    /// files only).
    pub key_request: Option<String>,
    /// `auth_jwt_key_cache` in seconds: how long a worker keeps a fetched key set (0: it is
    /// fetched for each request, as NGINX Plus does without the directive).
    pub key_cache_secs: u64,
    /// `auth_jwt_require` values: each must be non-empty and not `0`.
    pub require: Vec<Template>,
    /// The status a failed `auth_jwt_require` answers (401 or 403).
    pub require_error: u16,
    /// `auth_jwt_leeway` in seconds, for `exp` and `nbf`.
    pub leeway_secs: u64,
}

/// One `auth_request_set $variable value` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthSet {
    pub var: SetTarget,
    pub value: Template,
}

/// A variable a `set`-like directive writes: a `set` variable (by [`Ir::user_vars`] index)
/// or one of the built-ins nginx lets a script change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetTarget {
    User(u32),
    Builtin(Builtin),
}

/// `limit_except METHOD … { … }` of a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExcept {
    /// The methods that keep the location's own configuration, upper case (`GET` brings
    /// `HEAD`, as in nginx).
    pub methods: Vec<String>,
    /// The configuration every other method takes: the location's plus the block's.
    pub location: LocationId,
}

impl ClientAddr {
    /// Whether a client at `ip` matches (IPv4-mapped IPv6 addresses as IPv4).
    pub fn matches(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (*self, ip) {
            (
                ClientAddr::Cidr {
                    addr: IpAddr::V4(a),
                    prefix,
                },
                IpAddr::V4(b),
            ) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix.min(32)))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (
                ClientAddr::Cidr {
                    addr: IpAddr::V6(a),
                    prefix,
                },
                IpAddr::V6(b),
            ) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix.min(128)))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// `user user [group]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroup {
    pub user: String,
    /// The group; `None`: the group named like the user (nginx's rule).
    pub group: Option<String>,
}

/// `worker_cpu_affinity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuAffinity {
    /// `auto [mask]`: worker n runs on the n-th CPU (modulo their count) of the mask's CPUs
    /// (every CPU when there is no mask).
    Auto { cpus: Option<Vec<u16>> },
    /// One set of CPUs per worker, the last one for every worker beyond.
    Masks(Vec<Vec<u16>>),
}

/// One `error_log FILE [LEVEL]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ErrorLog {
    pub path: String,
    pub level: LogLevel,
}

/// A listening socket and the server-name table of the servers on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    /// The address as `ip:port` (`[::]:port` for IPv6).
    pub addr: String,
    pub reuseport: bool,
    pub backlog: i32,
    pub names: ServerNames,
    /// The other socket options of `listen` (rcvbuf=, sndbuf=, deferred, bind, ipv6only=,
    /// so_keepalive=).
    pub sock: SocketOptions,
    /// `listen … ssl` on any listen line of this address: connections speak TLS first.
    pub ssl: bool,
    /// `listen … proxy_protocol` on any listen line of this address: every connection
    /// starts with a PROXY protocol header (version 1 or 2) naming the client.
    pub proxy_protocol: bool,
    /// `listen … http2` on any listen line of this address (nginx's form before `http2
    /// on`): HTTP/2 is spoken there whatever the servers say.
    pub http2: bool,
}

/// Socket options of a listening socket, as nginx's `listen` parameters set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SocketOptions {
    /// `rcvbuf=size`: SO_RCVBUF.
    pub rcvbuf: Option<u32>,
    /// `sndbuf=size`: SO_SNDBUF.
    pub sndbuf: Option<u32>,
    /// `deferred`: TCP_DEFER_ACCEPT, for the default server's `client_header_timeout` in
    /// whole seconds (as nginx); 0 when off.
    pub deferred_secs: u32,
    /// `bind` (or any parameter that implies it): a specific address gets its own socket
    /// even when the wildcard of its port is also listened on.
    pub bind: bool,
    /// `ipv6only=off`: an IPv6 wildcard also takes IPv4 connections (nginx's default is on).
    pub ipv6only_off: bool,
    /// `so_keepalive=`.
    pub keepalive: SoKeepalive,
}

/// `listen … so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SoKeepalive {
    /// Not given: the system's default (off).
    #[default]
    Unset,
    /// `off`: SO_KEEPALIVE cleared.
    Off,
    /// `on` or the tunable form: SO_KEEPALIVE set, and TCP_KEEPIDLE (seconds),
    /// TCP_KEEPINTVL (seconds), TCP_KEEPCNT where given (0: the system's value).
    On { idle: u32, intvl: u32, cnt: u32 },
}

/// Server selection by `Host`, nginx's order: exact, longest leading wildcard, longest
/// trailing wildcard, regexes in config order, then the default server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerNames {
    /// Exact names, lowercase, sorted for binary search.
    pub exact: Vec<(String, ServerId)>,
    /// `*.example.com` and `.example.com`, stored as the suffix `.example.com`.
    /// `.example.com` also matches `example.com` itself (`also_bare`).
    pub leading: Vec<LeadingWildcard>,
    /// `www.example.*`, stored as the prefix `www.example.`.
    pub trailing: Vec<(String, ServerId)>,
    /// `~regex` names in config order.
    pub regex: Vec<(RegexId, ServerId)>,
    /// The `default_server` of this address, or the first server that listens on it.
    pub default: ServerId,
}

/// A leading-wildcard server name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadingWildcard {
    pub suffix: String,
    pub also_bare: bool,
    pub server: ServerId,
}

/// A `server {}` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// `server_name` values as written (for diagnostics, `$server_name`, route output).
    pub names: Vec<String>,
    /// Where the block was written, for route/diff output.
    pub source: SourceRef,
    /// Server-level rewrite-phase script (`rewrite`, `return`, `set` in server context).
    pub script: Vec<ScriptOp>,
    /// The server-level configuration, used when no location matches.
    pub default_location: LocationId,
    /// Top-level locations of this server.
    pub tree: LocationTree,
    /// `location @name` blocks.
    pub named: Vec<(String, LocationId)>,
    /// The server's TLS settings (`ssl_*`, inherited from http): present when the server
    /// has a certificate, `ssl_reject_handshake on` or `ssl_verify_client` (without a
    /// certificate, only its verification mode is used). On a TLS address, the server the
    /// client's SNI name chooses answers the handshake with these; a server without them
    /// answers with its address's default server's.
    pub tls: Option<Box<ServerTls>>,
}

/// TLS settings of one server block, as nginx's `ngx_http_ssl_module` merges them. File paths
/// are kept as written: relative ones are relative to proton-run's prefix (protonc checks
/// them against the config file's directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerTls {
    /// `ssl_certificate` / `ssl_certificate_key` pairs (paths as written, checked by protonc):
    /// the handshake picks the first whose key the client's signature algorithms accept.
    pub certificates: Vec<CertificatePair>,
    /// The pairs when any of them has variables (nginx ≥ 1.15.9): named and read per
    /// handshake (with the connection's variables, `$ssl_server_name` among them);
    /// `certificates` is then empty.
    pub certificate_vars: Vec<CertificateTemplates>,
    /// `ssl_protocols`: TLS 1.2 allowed.
    pub tls12: bool,
    /// `ssl_protocols`: TLS 1.3 allowed.
    pub tls13: bool,
    /// `ssl_ciphers`, resolved to the OpenSSL names of the TLS 1.2 suites Proton has, in
    /// order (TLS 1.3 suites are not chosen by `ssl_ciphers`, as in OpenSSL).
    pub ciphers: Vec<String>,
    /// `ssl_prefer_server_ciphers on`: the server's order of suites wins.
    pub prefer_server_ciphers: bool,
    /// `ssl_ecdh_curve`: key-exchange groups by rustls name, in order; empty: `auto`.
    pub curves: Vec<String>,
    /// `ssl_session_cache`.
    pub session_cache: SessionCache,
    /// `ssl_session_timeout`, seconds.
    pub session_timeout_secs: u64,
    /// `ssl_session_tickets`.
    pub session_tickets: bool,
    /// `ssl_session_ticket_key` files: the first encrypts, all decrypt. Empty:
    /// keys made by the master, shared by the workers and kept across reloads.
    pub ticket_key_files: Vec<String>,
    /// `ssl_reject_handshake on`: a handshake that chooses this server is refused.
    pub reject_handshake: bool,
    /// `ssl_verify_client`.
    pub verify_client: VerifyClient,
    /// `ssl_verify_depth`.
    pub verify_depth: u32,
    /// `ssl_client_certificate`: CAs that verify client certificates and are
    /// sent to the client as acceptable.
    pub client_certificate: Option<String>,
    /// `ssl_trusted_certificate`: CAs that verify client certificates, not sent.
    pub trusted_certificate: Option<String>,
    /// `ssl_crl`.
    pub crl: Option<String>,
    /// `ssl_buffer_size`: the largest TLS record of response data.
    pub buffer_size: u32,
    /// `ssl_password_file`: passphrases, one per line, tried in turn on encrypted keys.
    pub password_file: Option<String>,
    /// `ssl_stapling on` and its settings (`None`: no stapling).
    pub stapling: Option<Stapling>,
}

/// `ssl_stapling on`: an OCSP response stapled to the handshakes of each certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stapling {
    /// `ssl_stapling_file`: a DER response stapled as it is, never fetched.
    pub file: Option<String>,
    /// `ssl_stapling_responder`: the `http://` URL asked instead of the one in each
    /// certificate's Authority Information Access extension.
    pub responder: Option<String>,
    /// `ssl_stapling_verify on`: a fetched response's signer must chain to the trusted
    /// certificates and be allowed to answer for the issuer.
    pub verify: bool,
}

/// One `ssl_certificate` with its `ssl_certificate_key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertificatePair {
    pub certificate: String,
    pub key: String,
}

/// A certificate and its key named with variables (`proxy_ssl_certificate $name.crt`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertificateTemplates {
    pub certificate: Template,
    pub key: Template,
}

/// `ssl_session_cache`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionCache {
    /// `off`: sessions are neither stored nor offered for reuse.
    Off,
    /// `none` (the default): nginx tells the client a session may be reused but keeps
    /// none; a session id is never resumed.
    None,
    /// `builtin[:size]` and/or `shared:name:size`: sessions kept for
    /// `ssl_session_timeout`, resumable on any worker when `shared` is given.
    Cache {
        /// `builtin:size` in sessions (0: not given).
        builtin: u64,
        /// `shared:name:size`: the zone's name and size in bytes.
        shared: Option<(String, u64)>,
    },
}

/// `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum VerifyClient {
    #[default]
    Off,
    On,
    Optional,
    OptionalNoCa,
}

impl Server {
    /// nginx's primary name of the server (`$server_name`, `server_name_in_redirect`): the
    /// first `server_name`, without the leading dot of a `.example.com` name; empty when
    /// there is none.
    pub fn primary_name(&self) -> &str {
        match self.names.first() {
            Some(n) if n.starts_with('.') => &n[1..],
            Some(n) => n,
            None => "",
        }
    }
}

/// The match structure of one nesting level: a prefix trie with exact/`^~` flags, then the
/// regex locations in config order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LocationTree {
    /// Trie nodes; node 0 is the root (empty path). Labels and child lists live in the two
    /// arenas below, so a tree decodes with a handful of allocations, not two per node.
    pub nodes: Vec<TrieNode>,
    /// Every node's label bytes, back to back.
    pub labels: Vec<u8>,
    /// Every node's children (node indices), back to back.
    pub edges: Vec<u32>,
    pub regex: Vec<RegexLocation>,
}

/// A radix-trie node: its label (the bytes that extend the parent's path) and its children
/// are `(start, len)` ranges into [`LocationTree::labels`] and [`LocationTree::edges`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrieNode {
    pub label: (u32, u32),
    /// Children sorted by the first byte of their label (distinct first bytes).
    pub children: (u32, u32),
    /// `location = path` ending here.
    pub exact: Option<LocationId>,
    /// `location path` or `location ^~ path` ending here.
    pub prefix: Option<PrefixEntry>,
}

/// A prefix location in the trie.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrefixEntry {
    pub location: LocationId,
    /// `^~`: when this is the longest prefix, regexes are not checked.
    pub no_regex: bool,
}

/// A `location ~ re` / `location ~* re`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegexLocation {
    pub regex: RegexId,
    pub location: LocationId,
}

/// A compiled-later regular expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regex {
    pub pattern: String,
    pub case_insensitive: bool,
}

/// How a location was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocationKind {
    /// The implicit server-level configuration.
    Server,
    Prefix,
    PrefixNoRegex,
    Exact,
    Regex,
    RegexCaseless,
    Named,
    /// The block of an `if` in a location: the enclosing location's name and settings plus
    /// the block's own. Never matched by a URI; reached through [`ScriptOp::If`].
    If,
    /// The block of a `limit_except`: the enclosing location's name and settings plus the
    /// block's own. Never matched by a URI; reached through [`LocationConf::limit_except`].
    LimitExcept,
}

/// One location, with every setting already inherited and merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub kind: LocationKind,
    /// The path, regex source or @name as written, in [`Ir::text`] (use [`Ir::text_of`]).
    pub name: TextRef,
    pub server: ServerId,
    /// Where it was written.
    pub source: SourceRef,
    /// Nested locations (`None` for a location without any: most of them). Use
    /// [`Location::tree`].
    pub nested: Option<Box<LocationTree>>,
    pub conf: LocationConf,
}

impl Location {
    /// The match structure of the nested locations (empty when there are none).
    pub fn tree(&self) -> &LocationTree {
        static EMPTY: LocationTree = LocationTree {
            nodes: Vec::new(),
            labels: Vec::new(),
            edges: Vec::new(),
            regex: Vec::new(),
        };
        self.nested.as_deref().unwrap_or(&EMPTY)
    }
}

/// Effective settings of a location after nginx-style inheritance. What is specific to the
/// location is here; the inherited settings, which most locations share, are interned in
/// [`Ir::settings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationConf {
    /// Rewrite-phase script of this location (not inherited, as in nginx).
    pub script: Vec<ScriptOp>,
    /// Serves internal redirects only (external requests get 404). Set by `internal` in
    /// this location or any enclosing one (nginx inherits it), and for named locations.
    pub internal: bool,
    /// `root`; `None` when it is the server-level root (the common case, kept once in the
    /// server's default location). Use [`Ir::root_of`].
    pub root: Option<Template>,
    /// `alias` in effect (its own or inherited; `root` and `alias` are one setting, the
    /// nearest level with either wins). See [`Alias`].
    pub alias: Option<Box<Alias>>,
    /// `try_files` of this level only: nginx does not inherit it. The server default
    /// location holds the server-level `try_files`, which applies only when no location
    /// matches. Empty: none.
    pub try_files: Vec<Template>,
    pub proxy: Option<Box<Proxy>>,
    pub settings: SettingsId,
    /// `limit_except` of this location, if any.
    pub limit_except: Option<Box<LimitExcept>>,
    /// `stub_status`: the content handler answers with the connection and request figures
    /// of all workers, as nginx's stub_status module prints them.
    pub stub_status: bool,
    /// `proton_metrics`: the content handler answers with Proton's figures in Prometheus'
    /// text format (requests by server, location and status class, latency histograms,
    /// upstream peers, limits, connections, TLS handshakes, reloads).
    pub proton_metrics: bool,
}

/// An `alias`: the file path is `path` followed by the part of the URI after `prefix`.
///
/// `prefix` is the path of the location that *declared* the alias, which is not always the
/// location that matched: a nested location inherits its parent's alias together with the
/// parent's prefix, as nginx does (`location /al/ { alias /etc/; location /al/sub/ { } }`
/// serves `/al/sub/x` from `/etc/sub/x`). For an alias declared in a regex location
/// `prefix` is empty and `path` is the whole file path (normally built from the regex's
/// captures): nothing of the URI is appended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Alias {
    pub path: Template,
    pub prefix: String,
}

/// Index into [`Ir::settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct SettingsId(pub u32);

/// Inherited settings of a location, shared by every location with the same values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Settings {
    pub index: Vec<Template>,
    pub autoindex: bool,
    pub default_type: String,
    /// The `types {}` table in effect.
    pub types: MimeTableId,
    pub error_pages: Vec<ErrorPage>,
    pub add_headers: Vec<AddHeader>,
    pub expires: Expires,
    pub etag: bool,
    pub if_modified_since: IfModifiedSince,
    pub sendfile: bool,
    /// `sendfile_max_chunk`: the most one sendfile call sends before the connection
    /// yields to the worker's others (0: no limit).
    pub sendfile_max_chunk: u64,
    /// `subrequest_output_buffer_size` (default 4k, a page): the most of a subrequest's
    /// answer kept in memory (SSI `include … set=`); more fails the subrequest.
    pub subrequest_output_buffer_size: u64,
    pub tcp_nopush: bool,
    pub tcp_nodelay: bool,
    pub server_tokens: ServerTokens,
    pub keepalive_timeout_ms: u64,
    pub keepalive_header_secs: Option<u64>,
    pub keepalive_requests: u32,
    /// `keepalive_time`: a connection open longer than this is closed after the request
    /// being answered (nginx checks it when the location is chosen).
    pub keepalive_time_ms: u64,
    /// `keepalive_disable`: the browsers keep-alive is refused to.
    pub keepalive_disable: KeepaliveDisable,
    /// 0 = unlimited, as nginx.
    pub client_max_body_size: u64,
    /// Server-level (read from the default server of an address before Host is known).
    pub client_header_timeout_ms: u64,
    pub client_header_buffer_size: u64,
    /// `large_client_header_buffers number size`.
    pub large_client_header_buffers: (u32, u64),
    pub client_body_timeout_ms: u64,
    /// `client_body_buffer_size`: a request body up to this size is kept in memory; a
    /// larger one goes to a temporary file (nginx's default: two memory pages, 8k on x86-64).
    pub client_body_buffer_size: u64,
    /// `client_body_temp_path`: where request bodies too large for memory are written.
    pub client_body_temp_path: TempPath,
    /// `client_body_in_file_only`.
    pub client_body_in_file_only: BodyInFileOnly,
    /// `client_body_in_single_buffer` (Proton always keeps an in-memory body in one
    /// buffer; the setting is carried for `$request_body`'s documentation only).
    pub client_body_in_single_buffer: bool,
    pub send_timeout_ms: u64,
    pub lingering_close: LingeringClose,
    pub lingering_time_ms: u64,
    pub lingering_timeout_ms: u64,
    /// `open_file_cache` and its companions.
    pub open_file_cache: OpenFileCache,
    pub access_log: Vec<AccessLog>,
    /// `error_log` lines of the http, server or location level in effect (nginx inherits
    /// them as one setting); empty: the main context's logs.
    pub error_log: Vec<ErrorLog>,
    /// `log_not_found` (default on): off keeps "No such file or directory" lines out of
    /// the error log.
    pub log_not_found: bool,
    /// `open_log_file_cache`; `None`: not written (Proton's default cache, see the docs).
    pub open_log_file_cache: Option<LogFileCache>,
    /// `resolver`: index into [`Ir::resolvers`]; `None`: names in a `proxy_pass` with
    /// variables cannot be resolved (502, as nginx without a resolver).
    pub resolver: Option<u32>,
    /// `resolver_timeout`.
    pub resolver_timeout_ms: u64,
    /// Settings used by the proxy module (proxy_pass itself is per location).
    pub proxy: ProxySettings,
    /// The fastcgi module's settings (`fastcgi_*`, inherited apart from the proxy
    /// module's, as nginx's modules each have their own).
    pub fastcgi: Box<ProxySettings>,
    /// The scgi module's settings (`scgi_*`).
    pub scgi: Box<ProxySettings>,
    /// The uwsgi module's settings (`uwsgi_*`).
    pub uwsgi: Box<ProxySettings>,
    /// The grpc module's settings (`grpc_*`).
    pub grpc: Box<ProxySettings>,
    pub charset: Charset,
    pub autoindex_format: AutoindexFormat,
    pub autoindex_exact_size: bool,
    pub autoindex_localtime: bool,
    /// `absolute_redirect`, `port_in_redirect`, `server_name_in_redirect`.
    pub absolute_redirect: bool,
    pub port_in_redirect: bool,
    pub server_name_in_redirect: bool,
    /// `msie_refresh`, `msie_padding`.
    pub msie_refresh: bool,
    pub msie_padding: bool,
    /// `merge_slashes` (server level: read from the default server of the address).
    pub merge_slashes: bool,
    /// `http2` and its companions.
    pub http2: Http2Settings,
    /// `max_ranges`: `None` unlimited (Proton serves at most 16 ranges of one request and
    /// sends the whole file for more); `Some(0)`: ranges are off (no `Accept-Ranges`).
    pub max_ranges: Option<u32>,
    /// `ignore_invalid_headers`, `underscores_in_headers` (server level: read from the
    /// server chosen by Host).
    pub ignore_invalid_headers: bool,
    pub underscores_in_headers: bool,
    /// `max_headers`: request header fields a request may have (nginx ≥ 1.27.2; server
    /// level: read from the address's default server).
    pub max_headers: u32,
    pub disable_symlinks: DisableSymlinks,
    /// `add_trailer` lines (inherited as add_header's: only if the level has none).
    pub add_trailers: Vec<AddHeader>,
    /// `chunked_transfer_encoding`.
    pub chunked_transfer_encoding: bool,
    /// `rewrite_log`: regex tests and rewrites of the rewrite module are logged at `notice`.
    pub rewrite_log: bool,
    /// `uninitialized_variable_warn`: reading a `set` variable that was never set is logged
    /// at `warn`.
    pub uninitialized_variable_warn: bool,
    /// `limit_rate`: the response's rate in bytes per second (0: none).
    pub limit_rate: SizeValue,
    /// `limit_rate_after`: bytes sent at full speed before `limit_rate` applies.
    pub limit_rate_after: SizeValue,
    /// `set_real_ip_from` with `real_ip_header` and `real_ip_recursive` (`None`: no
    /// `set_real_ip_from`, the client address is the connection's).
    pub realip: Option<Box<RealIp>>,
    /// `valid_referers` in effect (`None`: every referer is valid).
    pub referers: Option<Box<Referers>>,
    /// `allow` and `deny` lines in order (the first that matches the client decides; none
    /// matching allows). Inherited as a whole: a level with any replaces its parent's.
    pub access: Vec<AccessRule>,
    /// `satisfy`, `auth_basic`, `auth_request`, `auth_delay`: the rest of nginx's access
    /// phase.
    pub auth: Auth,
    /// `post_action`: once the response is out, the request is redirected internally to
    /// this URI (`/…`) or named location (`@…`) with its output discarded; `None`: off.
    pub post_action: Option<String>,
    /// `mirror`: the URIs a request that reaches this location's content handler is copied
    /// to (each a subrequest with the request's method, headers and arguments whose answer
    /// is thrown away); empty: off.
    pub mirror: Vec<String>,
    /// `mirror_request_body`: the mirror subrequests get the request's body (read whole
    /// first, as nginx); off: they are sent without one.
    pub mirror_request_body: bool,
    /// `log_subrequest`: subrequests (mirrors) that end in this location are logged.
    pub log_subrequest: bool,
    /// `gzip`, `gzip_static`, `gunzip` and their companions.
    pub gzip: Gzip,
    /// `brotli` and its companions (the directives of the ngx_brotli module).
    pub brotli: Compression,
    /// `zstd` and its companions (the directives of the zstd-nginx-module).
    pub zstd: Compression,
    /// `sub_filter` and its companions.
    pub sub_filter: SubFilter,
    /// `ssi` and its companions.
    pub ssi: Ssi,
    /// `add_before_body`, `add_after_body`, `addition_types`.
    pub addition: Addition,
    /// `slice`: the size of the ranges a proxied response is fetched in (0: off).
    pub slice: u64,
    /// `limit_req` and its companions (nginx's preaccess phase).
    pub limit_req: LimitReq,
    /// `limit_conn` and its companions (nginx's preaccess phase).
    pub limit_conn: LimitConn,
}

/// nginx's SSI module: commands in response bodies (`<!--#include virtual="…" -->`, `echo`,
/// `set`, `if`, `config`, `block`) run as the body goes out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ssi {
    /// `ssi` (default off; also in `if` blocks of a location).
    pub enable: bool,
    /// `ssi_types`, lowercase and sorted, `text/html` always among them; `["*"]`: every
    /// type.
    pub types: Vec<String>,
    /// `ssi_silent_errors` (default off): a failed command writes nothing instead of the
    /// `errmsg` text.
    pub silent_errors: bool,
    /// `ssi_value_length` (default 256): the longest parameter value a command takes, 1 to
    /// [`SSI_MAX_VALUE_LENGTH`].
    pub value_length: u32,
    /// `ssi_last_modified` (default off): keep `Last-Modified` (and a weak `ETag`).
    pub last_modified: bool,
}

/// The largest `ssi_value_length` Proton takes (nginx takes any size, and sets aside a
/// buffer of it for a parameter value being read: Proton bounds it).
pub const SSI_MAX_VALUE_LENGTH: u32 = 64 * 1024;

/// nginx's addition module: the bodies of two subrequests around a response's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Addition {
    /// `add_before_body` (empty: none): a URI whose answer's body goes before the body.
    pub before: String,
    /// `add_after_body` (empty: none): a URI whose answer's body goes after the body.
    pub after: String,
    /// `addition_types`, lowercase and sorted, `text/html` always among them; `["*"]`:
    /// every type.
    pub types: Vec<String>,
}

/// nginx's sub module: text replaced in response bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubFilter {
    /// `sub_filter match replacement` lines in order (both may have variables; the match
    /// is compared without regard to ASCII case). Inherited as a whole, as nginx's array
    /// directives. Empty: off.
    pub pairs: Vec<(Template, Template)>,
    /// `sub_filter_types`, lowercase and sorted, `text/html` always among them; `["*"]`:
    /// every type.
    pub types: Vec<String>,
    /// `sub_filter_once` (default on): each match string is replaced once.
    pub once: bool,
    /// `sub_filter_last_modified` (default off): keep `Last-Modified` (and a weak `ETag`).
    pub last_modified: bool,
}

/// A content coding besides gzip (brotli, zstd), with the directive names of the
/// third-party nginx modules that provide it: `X`, `X_types`, `X_comp_level`,
/// `X_min_length`, `X_static`. The core module's `gzip_vary`, `gzip_http_version`,
/// `gzip_proxied` and `gzip_disable` apply to it as to gzip.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Compression {
    /// Responses are compressed on the fly.
    pub enable: bool,
    /// Types compressed, lowercase and sorted, `text/html` always among them; `["*"]`:
    /// every type.
    pub types: Vec<String>,
    /// The encoder's level (brotli 0-11, zstd 1-22).
    pub comp_level: u8,
    /// A response whose `Content-Length` is smaller is sent as it is.
    pub min_length: u64,
    /// `X_static`: `file.br` / `file.zst` next to a file is sent instead of it.
    pub static_mode: GzipStatic,
    /// brotli's window as a power of two (`brotli_window`, 10-24); 0 for zstd (the
    /// level's own).
    pub window_log: u8,
}

impl Compression {
    /// The settings where nothing is written: off, text/html, `level`, 20 bytes.
    pub fn off(level: u8, window_log: u8) -> Self {
        Compression {
            enable: false,
            types: vec!["text/html".to_string()],
            comp_level: level,
            min_length: 20,
            static_mode: GzipStatic::Off,
            window_log,
        }
    }
}

/// nginx's gzip, gzip_static and gunzip modules with the core module's shared
/// `gzip_vary`, `gzip_http_version`, `gzip_proxied` and `gzip_disable`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Gzip {
    /// `gzip`: responses are compressed on the fly.
    pub enable: bool,
    /// `gzip_types`, lowercase and sorted, `text/html` always among them; `["*"]`: every
    /// type.
    pub types: Vec<String>,
    /// `gzip_comp_level` (1-9).
    pub comp_level: u8,
    /// `gzip_min_length`: a response whose `Content-Length` is smaller is sent as it is.
    pub min_length: u64,
    /// `gzip_vary`: `Vary: Accept-Encoding` on responses the gzip modules looked at.
    pub vary: bool,
    /// `gzip_http_version`: the minor version of HTTP/1.x a request needs (0 or 1).
    pub http_version_minor: u8,
    /// `gzip_proxied`: which responses to requests with `Via` may be compressed.
    pub proxied: GzipProxied,
    /// `gzip_disable msie6`.
    pub disable_msie6: bool,
    /// `gzip_disable` regexes (caseless) tested on `User-Agent`.
    pub disable: Vec<RegexId>,
    /// `gzip_static`.
    pub static_mode: GzipStatic,
    /// `gunzip`: a gzipped response is decompressed for a client that does not take gzip.
    pub gunzip: bool,
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip {
            enable: false,
            types: vec!["text/html".to_string()],
            comp_level: 1,
            min_length: 20,
            vary: false,
            http_version_minor: 1,
            proxied: GzipProxied::default(),
            disable_msie6: false,
            disable: Vec::new(),
            static_mode: GzipStatic::Off,
            gunzip: false,
        }
    }
}

/// `gzip_proxied off | expired | no-cache | no-store | private | no_last_modified | no_etag
/// | auth | any …` (nginx's default: `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GzipProxied {
    pub off: bool,
    pub expired: bool,
    pub no_cache: bool,
    pub no_store: bool,
    pub private: bool,
    pub no_last_modified: bool,
    pub no_etag: bool,
    pub auth: bool,
    pub any: bool,
}

impl GzipProxied {
    /// No word given (nginx's bitmask with no bit set).
    pub const NONE: GzipProxied = GzipProxied {
        off: false,
        expired: false,
        no_cache: false,
        no_store: false,
        private: false,
        no_last_modified: false,
        no_etag: false,
        auth: false,
        any: false,
    };
}

impl Default for GzipProxied {
    /// nginx's default, `gzip_proxied off`.
    fn default() -> Self {
        GzipProxied {
            off: true,
            ..GzipProxied::NONE
        }
    }
}

/// `gzip_static off | on | always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GzipStatic {
    Off,
    /// `file.gz` is sent when the client takes gzip.
    On,
    /// `file.gz` is sent whatever the client says (with `gunzip` for those that do not).
    Always,
}

/// A temporary-file directory (`client_body_temp_path path [level1 [level2 [level3]]]`):
/// the path as written (a relative one is relative to proton-run's prefix) and the digit
/// counts of the hashed subdirectory levels (each 1 or more, at most 10 in all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TempPath {
    pub path: String,
    pub levels: Vec<u8>,
}

/// `client_body_in_file_only off | on | clean`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyInFileOnly {
    /// Only a body larger than `client_body_buffer_size` goes to a file, removed after.
    Off,
    /// Every body goes to a file, which is kept after the request.
    On,
    /// Every body goes to a file, removed after the request.
    Clean,
}

/// `keepalive_disable none | msie6 | safari …` (nginx's default: `msie6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeepaliveDisable {
    /// MSIE 4 to 6 (not 6 with SV1): no keep-alive after a POST.
    pub msie6: bool,
    /// Safari on Mac OS X: no keep-alive at all.
    pub safari: bool,
}

impl Default for KeepaliveDisable {
    fn default() -> Self {
        KeepaliveDisable {
            msie6: true,
            safari: false,
        }
    }
}

/// A size that may come from variables (nginx's complex value read as a size).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SizeValue {
    Const(u64),
    /// Expanded per request and read as a size (`10k`, `1m`); invalid is 0.
    Var(Template),
}

/// `disable_symlinks off | on | if_not_owner [from=part]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum DisableSymlinks {
    Off,
    /// A symbolic link in any component of the path (after `from`) is refused (403).
    On {
        from: Option<Template>,
    },
    /// A link is refused when it and what it points to have different owners.
    IfNotOwner {
        from: Option<Template>,
    },
}

impl LocationConf {
    /// True when the location answers with `return` before any content handler.
    pub fn returns(&self) -> bool {
        self.script
            .iter()
            .any(|op| matches!(op, ScriptOp::Return { .. }))
    }
}

/// `open_file_cache max=N [inactive=time] | off`, `open_file_cache_valid`,
/// `open_file_cache_min_uses`, `open_file_cache_errors`, each inherited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenFileCache {
    /// The cache in effect: `None` for `off` (nginx's default).
    pub cache: Option<FileCacheZone>,
    /// `open_file_cache_valid` (default 60s).
    pub valid_ms: u64,
    /// `open_file_cache_min_uses` (default 1).
    pub min_uses: u32,
    /// `open_file_cache_errors` (default off).
    pub errors: bool,
}

/// One `open_file_cache max=N inactive=T` directive: each directive is its own cache per
/// worker (as in nginx, where each level that writes the directive has its own), shared by
/// every location that inherits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileCacheZone {
    /// Which cache: 0, 1, … in the order the compiler met the directives; less than the
    /// number of settings records (checked by verify).
    pub id: u32,
    pub max: u32,
    pub inactive_ms: u64,
}

impl Default for OpenFileCache {
    fn default() -> Self {
        OpenFileCache {
            cache: None,
            valid_ms: 60_000,
            min_uses: 1,
            errors: false,
        }
    }
}

/// A rewrite-module instruction, executed in config order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScriptOp {
    Rewrite {
        regex: RegexId,
        replacement: Template,
        flag: RewriteFlag,
        /// Where the `rewrite` was written (for `protonc route` and logs).
        source: SourceRef,
    },
    Return {
        code: u16,
        /// Body text (2xx/4xx/5xx) or URL (301/302/303/307/308).
        text: Option<Template>,
    },
    Set {
        var: u32,
        value: Template,
    },
    /// `set` of a built-in variable that nginx lets a script change (`$limit_rate`).
    SetBuiltin {
        var: Builtin,
        value: Template,
    },
    /// `if (condition) { … }`: when the condition holds, the request takes the block's
    /// configuration (`location`: an anonymous location that inherits from the enclosing
    /// one, as nginx's; `None` in a server block, where the location is chosen afterwards
    /// anyway) and runs the block's script; then the enclosing script goes on.
    If {
        cond: Condition,
        then: Vec<ScriptOp>,
        location: Option<LocationId>,
        /// Where the `if` was written.
        source: SourceRef,
    },
    /// `break`: stops the rewrite-module directives of this level.
    Break,
}

/// The condition of an `if`, as nginx's rewrite module reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// `($var)`: true unless the value is empty or `0`.
    Value(Template),
    /// `($var = text)`, `($var != text)`.
    Equals {
        left: Template,
        right: Template,
        negate: bool,
    },
    /// `($var ~ regex)`, `~*`, `!~`, `!~*` (the case is the regex's flag); a match sets the
    /// captures.
    Matches {
        left: Template,
        regex: RegexId,
        negate: bool,
    },
    /// `(-f path)`, `-d`, `-e`, `-x`, and with `!` the negations.
    File {
        test: FileTest,
        path: Template,
        negate: bool,
    },
}

/// The file tests of `if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileTest {
    /// `-f`: a regular file.
    File,
    /// `-d`: a directory.
    Dir,
    /// `-e`: anything that exists.
    Exists,
    /// `-x`: an executable file.
    Exec,
}

/// `rewrite … flag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewriteFlag {
    /// No flag: continue with the next instruction.
    None,
    Last,
    Break,
    Redirect,
    Permanent,
}

/// `error_page codes… [=[code]] uri`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct ErrorPage {
    pub codes: Vec<u16>,
    /// `=code`: the response code to use; `Some(0)` means `=` alone (the target's code).
    pub response: Option<u16>,
    pub target: Template,
}

/// `add_header name value [always]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct AddHeader {
    pub name: String,
    pub value: Template,
    pub always: bool,
}

/// `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Expires {
    Off,
    Epoch,
    Max,
    /// Seconds relative to now (may be negative).
    After(i64),
    /// `modified +time`: relative to the file's mtime (relative to now for a response
    /// without one, as nginx).
    Modified(i64),
    /// `@15h30m`: the next time this second of the day (UTC) comes.
    Daily(i64),
    /// `[modified] $variable`: the value, parsed at request time as the directive's
    /// argument would be (`epoch`, `max`, `off`, `@time`, `[+|-]time`); an invalid value
    /// sends no header.
    Variable {
        modified: bool,
        value: Template,
    },
}

/// `autoindex_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum AutoindexFormat {
    Html,
    Xml,
    Json,
    /// JSON wrapped in a call of the function named by `$arg_callback`.
    Jsonp,
}

/// `charset_map FROM TO { … }`: a single-byte recoding table, usable in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharsetMap {
    /// Charset names, lowercase (nginx compares them case-insensitively).
    pub from: String,
    pub to: String,
    /// `forward[b]`: the byte `b` of `from` in `to` (identity where the map says nothing).
    pub forward: Vec<u8>,
    /// `backward[b]`: the byte `b` of `to` in `from`.
    pub backward: Vec<u8>,
}

/// The charset settings of a location (`charset`, `source_charset`, `charset_types`,
/// `override_charset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Charset {
    /// `charset`: the charset added to `Content-Type` (a template: nginx allows variables);
    /// `None`: `charset off`.
    pub charset: Option<Template>,
    /// `source_charset`, lowercase; the body is recoded from it into `charset` when a
    /// `charset_map` links the two.
    pub source: Option<String>,
    /// `charset_types`, lowercase and sorted; `["*"]`: every type.
    pub types: Vec<String>,
    /// `override_charset`.
    pub override_charset: bool,
}

/// `lingering_close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum LingeringClose {
    Off,
    /// The default: when the client may still be sending.
    On,
    Always,
}

/// `server_tokens`: what the `Server` header and error pages say about the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum ServerTokens {
    /// `off`: the name only (`Server: proton`).
    Off,
    /// `on` (the default): name and version.
    On,
    /// `build`: name, version and build name (nginx 1.22 accepts it in open source).
    Build,
}

/// `if_modified_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum IfModifiedSince {
    Off,
    Exact,
    Before,
}

/// `access_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub enum AccessLog {
    Off,
    File {
        path: Template,
        format: LogFormatId,
        buffer: Option<u64>,
        flush_ms: Option<u64>,
        /// `if=condition`: the line is written only when it expands to something other
        /// than "" and "0".
        condition: Option<Template>,
        /// `gzip[=level]`: each flush of the buffer is written as one gzip member.
        gzip: Option<u8>,
    },
}

/// `open_log_file_cache max=N [inactive=time] [min_uses=N] [valid=time] | off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogFileCache {
    /// `off`: every line opens and closes its file, as nginx.
    Off,
    On {
        max: u32,
        inactive_ms: u64,
        min_uses: u32,
        valid_ms: u64,
    },
}

/// `log_format name [escape=…] string…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogFormat {
    pub name: String,
    pub escape: LogEscape,
    pub template: Template,
}

/// `log_format … escape=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEscape {
    Default,
    Json,
    None,
}

/// `proxy_pass`: where requests of this location go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    pub upstream: UpstreamId,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The `host[:port]` as written in proxy_pass (the default `$proxy_host`), in
    /// [`Ir::text`]; `unix:PATH` for a unix-domain socket (without the URI part), whose
    /// `$proxy_host` is `localhost` (nginx's).
    pub proxy_host: TextRef,
    /// The URI part of proxy_pass, if any (replaces the matched location prefix).
    pub uri: Option<Template>,
    /// Upstream given by variables: resolved at request time.
    pub dynamic: Option<Template>,
    /// The prefix the URI part replaces: the name of the (prefix or exact) location where
    /// proxy_pass is written, also for the `if` and `limit_except` blocks that inherit it
    /// (nginx's `plcf->location`). `None`: the URI part replaces nothing.
    pub prefix: Option<TextRef>,
    /// What the upstream speaks: HTTP (`proxy_pass`) or FastCGI (`fastcgi_pass`).
    pub protocol: Protocol,
}

/// The protocol of a location's upstream, which also says whose settings apply
/// ([`Settings::upstream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Protocol {
    /// `proxy_pass`: HTTP/1.x, over TLS for `https://`.
    #[default]
    Http,
    /// `fastcgi_pass`: FastCGI records, the request as CGI parameters.
    FastCgi,
    /// `scgi_pass`: the parameters as one netstring, then the body; the answer until the
    /// connection closes.
    Scgi,
    /// `uwsgi_pass`: the parameters in a uwsgi packet, then the body; the answer until the
    /// connection closes.
    Uwsgi,
    /// `grpc_pass`: one HTTP/2 stream per request (over TLS for `grpcs://`), the
    /// answer's trailers passed on.
    Grpc,
}

impl Protocol {
    /// FastCGI, SCGI and uwsgi: the request as CGI parameters, the answer a CGI head.
    pub fn cgi(self) -> bool {
        matches!(self, Protocol::FastCgi | Protocol::Scgi | Protocol::Uwsgi)
    }

    /// The name of the module (the prefix of its directives) and of its URL scheme.
    pub fn module(self) -> &'static str {
        match self {
            Protocol::Http => "proxy",
            Protocol::FastCgi => "fastcgi",
            Protocol::Scgi => "scgi",
            Protocol::Uwsgi => "uwsgi",
            Protocol::Grpc => "grpc",
        }
    }
}

impl Settings {
    /// The settings of the module that speaks `protocol` (`proxy_*` or `fastcgi_*`).
    pub fn upstream(&self, protocol: Protocol) -> &ProxySettings {
        match protocol {
            Protocol::Http => &self.proxy,
            Protocol::FastCgi => &self.fastcgi,
            Protocol::Scgi => &self.scgi,
            Protocol::Uwsgi => &self.uwsgi,
            Protocol::Grpc => &self.grpc,
        }
    }
}

/// One `fastcgi_param` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: Template,
    /// `if_not_empty`: an empty value sends nothing.
    pub if_not_empty: bool,
}

/// What only CGI-style upstream modules have (`fastcgi_param`, `fastcgi_index`,
/// `scgi_param`, `uwsgi_modifier1`, …); empty for the proxy module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct CgiSettings {
    /// `fastcgi_param` (`scgi_param`, `uwsgi_param`): the parameters sent, in order
    /// (inherited as one list, as nginx's).
    pub params: Vec<Param>,
    /// `fastcgi_index`: appended to `$fastcgi_script_name` when the URI ends with `/`
    /// (text as written: nginx expands no variables in it).
    pub index: Option<String>,
    /// `fastcgi_split_path_info`: the regex whose first two captures are
    /// `$fastcgi_script_name` and `$fastcgi_path_info`.
    pub split_path_info: Option<RegexId>,
    /// `fastcgi_keep_conn on`: the application keeps the connection after each request,
    /// which may then be reused (with the upstream's `keepalive`).
    pub keep_conn: bool,
    /// `fastcgi_catch_stderr`: text that, found in what the application writes to its
    /// error stream before its answer's head is whole, makes the answer a failure
    /// (`invalid_header`: 502 or the next server).
    pub catch_stderr: Vec<String>,
    /// `uwsgi_modifier1` and `uwsgi_modifier2`: the two bytes around the uwsgi packet's
    /// size.
    pub modifiers: (u8, u8),
}

/// `http2 on` and the `http2_*` directives. Connection-level values are read from the
/// server a connection's address (or its TLS SNI name) chooses, as nginx does;
/// `chunk_size` from the location that answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Http2Settings {
    /// `http2 on`: HTTP/2 is offered (ALPN `h2` over TLS; over plain TCP a connection that
    /// starts with the HTTP/2 preface speaks it, others HTTP/1.1).
    pub enabled: bool,
    /// `http2_max_concurrent_streams` (default 128).
    pub max_concurrent_streams: u32,
    /// `http2_body_preread_size` (default 64k): each stream's receive window, the request
    /// body bytes a client may send before they are read.
    pub body_preread_size: u64,
    /// `http2_chunk_size` (default 8k): the largest DATA frame of a response.
    pub chunk_size: u64,
}

/// Proxy settings that follow ordinary inheritance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct ProxySettings {
    /// Effective request headers to send (nginx defaults merged in).
    pub set_headers: Vec<(String, Template)>,
    pub http_version: ProxyHttpVersion,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub send_timeout_ms: u64,
    pub next_upstream: NextUpstream,
    /// 0 = unlimited.
    pub next_upstream_tries: u32,
    pub next_upstream_timeout_ms: u64,
    /// `proxy_buffering` (default on): the response is read from the upstream as fast as it
    /// comes, into `buffers` and then a temporary file, and the upstream connection is let
    /// go once the response is read; off: read only as fast as the client takes it.
    pub buffering: bool,
    pub buffer_size: u64,
    pub buffers: (u32, u64),
    /// `proxy_max_temp_file_size` (default 1024m): the most of one response written to a
    /// temporary file; 0: none.
    pub max_temp_file_size: u64,
    /// `proxy_temp_file_write_size`: bytes read from the upstream and written to the
    /// temporary file at a time.
    pub temp_file_write_size: u64,
    /// `proxy_temp_path`.
    pub temp_path: TempPath,
    pub hide_headers: Vec<String>,
    pub pass_headers: Vec<String>,
    /// `proxy_redirect`: the rules for `Location` and the `url=` of `Refresh`, in order; the
    /// first that matches applies. `default` (written or implied) is already resolved into a
    /// [`ProxyPattern::Text`] rule from the proxy_pass URL of the level that defines it.
    /// Empty: `off`, or nothing to rewrite.
    pub redirect: Vec<ProxyRewrite>,
    /// `proxy_cookie_domain`, `proxy_cookie_path`, `proxy_cookie_flags`: rewriting of the
    /// upstream's `Set-Cookie` headers.
    pub cookies: CookieRewrites,
    pub intercept_errors: bool,
    /// `proxy_request_buffering` (default on): the whole request body is read before an
    /// upstream is chosen; off: it streams to the upstream as it arrives.
    pub request_buffering: bool,
    /// `proxy_method`: the method sent instead of the client's.
    pub method: Option<Template>,
    /// `proxy_set_body`: the body sent instead of the client's (with its Content-Length).
    pub set_body: Option<Template>,
    /// `proxy_pass_request_body` (default on): the client's body is sent.
    pub pass_request_body: bool,
    /// `proxy_pass_request_headers` (default on): the client's headers are sent.
    pub pass_request_headers: bool,
    /// `proxy_socket_keepalive on`: TCP keep-alive probes on upstream connections.
    pub socket_keepalive: bool,
    /// `proxy_protocol` (a Proton extension with the name of nginx's stream directive): a
    /// PROXY protocol v1 line with the client's addresses starts every new upstream
    /// connection, which is then never reused for another request.
    pub proxy_protocol: bool,
    /// `proxy_pass_trailers`: the trailer section of a chunked upstream response goes on to
    /// the client (nginx's default, off, drops it; `$upstream_trailer_*` see it either way).
    pub pass_trailers: bool,
    /// `proxy_limit_rate` (bytes per second; 0: no limit): how fast a buffered response is
    /// read from the upstream, per request (nginx 1.22 applies it only with buffering).
    pub limit_rate: u64,
    /// `proxy_bind`: the local address of connections to upstreams (`None`: `off`, the
    /// system's choice).
    pub bind: Option<ProxyBind>,
    /// `proxy_ignore_client_abort on`: a client that closes its connection does not end the
    /// upstream request before the response is sent.
    pub ignore_client_abort: bool,
    /// `proxy_ignore_headers`: upstream response headers whose effect is ignored.
    pub ignore_headers: IgnoreHeaders,
    /// `proxy_force_ranges on`: byte ranges are served from proxied responses whatever
    /// their `Accept-Ranges`.
    pub force_ranges: bool,
    /// `proxy_ssl_*`: TLS towards `https://` upstreams.
    pub tls: UpstreamTls,
    /// The CGI modules' own settings (`fastcgi_param`, …).
    pub cgi: CgiSettings,
    /// `proxy_cache` and its companions.
    pub cache: CacheSettings,
    /// `proxy_store` (`None`: off): where the body of a 200 answer is kept as a file.
    pub store: Option<StoreTarget>,
    /// `proxy_store_access` (default `user:rw`): the permission bits of stored files.
    pub store_access: u32,
}

/// `proxy_store on | string`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreTarget {
    /// `on`: the file the request's URI maps to under `root` or `alias`.
    Root,
    /// A path with variables.
    Path(Template),
}

/// `proxy_bind address [transparent]`: the local address upstream connections are bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct ProxyBind {
    /// `address[:port]` (IPv6 as `::1` or `[::1]:port`), with variables evaluated per request
    /// (an empty value: not bound). A literal address was checked by the compiler.
    pub address: Template,
    /// `transparent`: the address may be a non-local one (IP_TRANSPARENT, needs
    /// CAP_NET_ADMIN).
    pub transparent: bool,
}

impl ProxyBind {
    /// Reads a local address as nginx's `ngx_parse_addr_port`: an IPv4 or IPv6 address, or
    /// one with a port from 1 to 65535 (`127.0.0.1:8000`, `[::1]:8000`); without a port, the
    /// port is 0 (the system picks one).
    pub fn parse_address(text: &[u8]) -> Option<std::net::SocketAddr> {
        use std::net::{IpAddr, SocketAddr};
        let text = std::str::from_utf8(text).ok()?;
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        if let Some(a) = ip(text) {
            return Some(SocketAddr::new(a, 0));
        }
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (h, p) = rest.split_once(']')?;
                (h, p.strip_prefix(':')?)
            }
            None => text.split_once(':')?,
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return None;
        }
        let port: u16 = port.parse().ok().filter(|&p| p >= 1)?;
        Some(SocketAddr::new(ip(host)?, port))
    }
}

/// `proxy_ignore_headers`: the upstream response headers whose effect is ignored (they are
/// still passed or hidden as usual).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct IgnoreHeaders {
    pub x_accel_redirect: bool,
    pub x_accel_expires: bool,
    pub x_accel_limit_rate: bool,
    pub x_accel_buffering: bool,
    pub x_accel_charset: bool,
    pub expires: bool,
    pub cache_control: bool,
    pub set_cookie: bool,
    pub vary: bool,
}

impl IgnoreHeaders {
    /// Adds the header `name` (as `proxy_ignore_headers` names it, any case); false when it
    /// is not one of nginx's.
    pub fn add(&mut self, name: &str) -> bool {
        let flag = match name.to_ascii_lowercase().as_str() {
            "x-accel-redirect" => &mut self.x_accel_redirect,
            "x-accel-expires" => &mut self.x_accel_expires,
            "x-accel-limit-rate" => &mut self.x_accel_limit_rate,
            "x-accel-buffering" => &mut self.x_accel_buffering,
            "x-accel-charset" => &mut self.x_accel_charset,
            "expires" => &mut self.expires,
            "cache-control" => &mut self.cache_control,
            "set-cookie" => &mut self.set_cookie,
            "vary" => &mut self.vary,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// TLS towards upstreams (`proxy_ssl_*`), as nginx's proxy module merges them. The runtime
/// builds one rustls client config per distinct record (with its own session cache).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpstreamTls {
    /// `proxy_ssl_server_name on`: the name goes in the handshake's SNI.
    pub server_name: bool,
    /// `proxy_ssl_name`; `None`: the proxy_pass host (without its port).
    pub name: Option<Template>,
    /// `proxy_ssl_verify on`: the upstream's certificate must chain to
    /// `trusted_certificate` and match the name.
    pub verify: bool,
    /// `proxy_ssl_trusted_certificate`.
    pub trusted_certificate: Option<String>,
    /// `proxy_ssl_verify_depth`.
    pub verify_depth: u32,
    /// `proxy_ssl_certificate` / `proxy_ssl_certificate_key`: the client certificate.
    pub certificate: Option<CertificatePair>,
    /// `proxy_ssl_certificate` / `proxy_ssl_certificate_key` with variables: the files are
    /// named per request (an empty certificate name: no client certificate), and read when
    /// a name is first used. `certificate` is then `None`.
    pub certificate_vars: Option<Box<CertificateTemplates>>,
    /// `proxy_ssl_protocols`: TLS 1.2 allowed.
    pub tls12: bool,
    /// `proxy_ssl_protocols`: TLS 1.3 allowed.
    pub tls13: bool,
    /// `proxy_ssl_ciphers`, resolved to the rustls names of the TLS 1.2 suites, in order.
    pub ciphers: Vec<String>,
    /// `proxy_ssl_session_reuse`.
    pub session_reuse: bool,
    /// `proxy_ssl_crl`.
    pub crl: Option<String>,
    /// `proxy_ssl_password_file`: passphrases for an encrypted `proxy_ssl_certificate_key`.
    pub password_file: Option<String>,
}

impl Default for UpstreamTls {
    fn default() -> UpstreamTls {
        UpstreamTls {
            server_name: false,
            name: None,
            verify: false,
            trusted_certificate: None,
            verify_depth: 1,
            certificate: None,
            certificate_vars: None,
            tls12: true,
            tls13: true,
            ciphers: Vec::new(),
            session_reuse: true,
            crl: None,
            password_file: None,
        }
    }
}

/// `proxy_http_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum ProxyHttpVersion {
    Http10,
    Http11,
}

/// `proxy_next_upstream` conditions as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Hash)]
pub struct NextUpstream {
    pub error: bool,
    pub timeout: bool,
    pub invalid_header: bool,
    pub http_500: bool,
    pub http_502: bool,
    pub http_503: bool,
    pub http_504: bool,
    pub http_403: bool,
    pub http_404: bool,
    pub http_429: bool,
    pub non_idempotent: bool,
}

/// One rule of `proxy_redirect`, `proxy_cookie_domain` or `proxy_cookie_path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct ProxyRewrite {
    pub pattern: ProxyPattern,
    /// With [`ProxyPattern::Text`] it replaces the matched text; with
    /// [`ProxyPattern::Regex`] the whole value, and it reads the match's captures.
    pub replacement: Template,
}

/// What a [`ProxyRewrite`] or [`CookieFlags`] rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub enum ProxyPattern {
    /// Text with variables. `proxy_redirect`, `proxy_cookie_path`: a prefix of the value
    /// (bytes compared exactly; an empty text matches everything). `proxy_cookie_domain`:
    /// the whole domain, ignoring ASCII case and a leading dot of the value (the dot is
    /// kept). `proxy_cookie_flags`: the whole cookie name, ignoring ASCII case.
    Text(Template),
    /// `~regex` (`~*regex`: the regex is caseless), searched anywhere in the value; its
    /// captures are `$1`… (and its named groups) in the replacement.
    Regex(RegexId),
}

/// The `Set-Cookie` rewriting of the proxy module. All empty: the header passes unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct CookieRewrites {
    /// `proxy_cookie_domain`: rules for the `domain=` attribute, first match applies.
    pub domain: Vec<ProxyRewrite>,
    /// `proxy_cookie_path`: rules for the `path=` attribute, first match applies.
    pub path: Vec<ProxyRewrite>,
    /// `proxy_cookie_flags`: the first rule whose cookie matches the cookie's name applies.
    pub flags: Vec<CookieFlags>,
}

impl CookieRewrites {
    /// No rule at all: `Set-Cookie` passes unchanged.
    pub fn is_empty(&self) -> bool {
        self.domain.is_empty() && self.path.is_empty() && self.flags.is_empty()
    }
}

/// One `proxy_cookie_flags cookie flag…` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Eq, Hash)]
pub struct CookieFlags {
    /// The cookie's name ([`ProxyPattern::Text`]) or a regex on it (always caseless).
    pub cookie: ProxyPattern,
    /// `secure`, `nosecure`, `httponly`, `nohttponly`, `samesite=strict|lax|none`,
    /// `nosamesite` (ASCII case ignored), or variables giving one of them; anything else,
    /// an empty value included, is ignored when the response comes (as nginx).
    pub flags: Vec<Template>,
}

/// An `upstream {}` group (or the implicit group of a literal `proxy_pass` address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upstream {
    pub name: String,
    /// False for the implicit group made from a `proxy_pass host:port`.
    pub explicit: bool,
    pub servers: Vec<UpstreamServer>,
    pub balance: Balance,
    pub keepalive: u32,
    pub keepalive_timeout_ms: u64,
    pub keepalive_requests: u32,
    /// `keepalive_time`: a connection open longer than this is closed after its response
    /// instead of being cached.
    pub keepalive_time_ms: u64,
    /// Active health checks of every server of the group (`health_check`), if configured.
    pub health_check: Option<HealthCheck>,
    /// The `resolver` for its `server … resolve` names: the block's own, else the http
    /// level's (index into [`Ir::resolvers`]); `None` when no server resolves.
    pub resolver: Option<u32>,
    /// `resolver_timeout` for those names (the block's own, else the http level's).
    pub resolver_timeout_ms: u64,
}

/// `health_check` inside `upstream`: every `interval_ms` each server gets
/// `GET uri HTTP/1.0`; an answer within `timeout_ms` that passes `expect` (without it: a 2xx
/// or 3xx status) is a pass, anything else a failure. `fails` consecutive failures mark the
/// server down (never picked), `passes` consecutive passes mark it up again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Time between the start of two checks of a server; at least 1.
    pub interval_ms: u64,
    /// Request target: starts with `/`, no spaces or control characters.
    pub uri: String,
    /// Consecutive failures that mark a server down; at least 1.
    pub fails: u32,
    /// Consecutive passes that mark a server up again; at least 1.
    pub passes: u32,
    /// Bound on connecting, sending and reading the status line; at least 1.
    pub timeout_ms: u64,
    /// Port to check instead of each server's own.
    pub port: Option<u16>,
    /// `match=NAME`: the `match` block the answer must pass (`None`: a 2xx or 3xx status).
    pub expect: Option<HealthMatch>,
}

/// `match NAME { … }` (http): the tests a health check's answer must pass, all of them (no
/// test: any answer with a status line passes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthMatch {
    /// The block's name, for log lines.
    pub name: String,
    /// In config order.
    pub tests: Vec<MatchTest>,
}

/// One line of a `match` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchTest {
    /// `status [!] CODE|FROM-TO …`: the status is in one of the inclusive ranges (with
    /// `negate`: in none of them).
    Status {
        negate: bool,
        ranges: Vec<(u16, u16)>,
    },
    /// `header …`: a test on the header fields called `name` (lowercase; names compare
    /// ignoring case).
    Header { name: String, test: HeaderTest },
    /// `body ~ RE` / `body !~ RE`: the first bytes of the body (as many as the runtime
    /// reads) match the regex (with `negate`: do not).
    Body { negate: bool, regex: RegexId },
}

/// What `header NAME …` asks of the header fields called NAME. The value tests pass when some
/// field of that name passes them (a missing field fails them all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderTest {
    /// `header NAME;`: present.
    Present,
    /// `header ! NAME;`: absent.
    Absent,
    /// `header NAME = VALUE;`: a field with exactly this value.
    Equal(String),
    /// `header NAME != VALUE;`: a field with another value.
    NotEqual(String),
    /// `header NAME ~ RE;`: a field whose value matches.
    Matches(RegexId),
    /// `header NAME !~ RE;`: a field whose value does not match.
    NotMatches(RegexId),
}

/// `server` inside `upstream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamServer {
    /// `host:port` (the port always written by the compiler), or `unix:PATH`: a unix-domain
    /// socket, the path used as written.
    pub address: String,
    pub weight: u32,
    pub max_fails: u32,
    pub fail_timeout_ms: u64,
    pub backup: bool,
    pub down: bool,
    /// 0 = unlimited.
    pub max_conns: u32,
    /// `resolve`: a host name the workers resolve again as its records expire (with the
    /// group's `resolver`), its addresses becoming the server's peers at run time.
    pub resolve: bool,
}

impl UpstreamServer {
    /// A `server ADDRESS;` line with nginx's defaults: weight=1 max_fails=1
    /// fail_timeout=10s, not backup, not down, no max_conns.
    pub fn new(address: impl Into<String>) -> UpstreamServer {
        UpstreamServer {
            address: address.into(),
            weight: 1,
            max_fails: 1,
            fail_timeout_ms: 10_000,
            backup: false,
            down: false,
            max_conns: 0,
            resolve: false,
        }
    }
}

/// The balancing method of an upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    IpHash,
    Hash {
        key: Template,
        consistent: bool,
    },
    Random {
        two: bool,
    },
    /// nginx Plus's `least_time header | last_byte`: latency-aware. The runtime implements it
    /// as peak-EWMA (latency estimate × (active + 1)); `last_byte` says the latency is
    /// measured to the end of the response instead of to its head.
    LeastTime {
        last_byte: bool,
    },
}

/// A string with variables precompiled: literal pieces and variable references.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Hash)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Part {
    Literal(String),
    Var(Var),
    /// `$1`…`$9`: a capture of the last regex match.
    Capture(u8),
}

/// A variable reference, resolved by name at compile time. Names are lowercase: nginx
/// compares variable names case-insensitively (`$Host` is `$host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Var {
    /// A built-in variable.
    Builtin(Builtin),
    /// `$http_NAME`: request header (name lowercased, `_` for `-`).
    Http(String),
    /// `$arg_NAME` (lowercase; nginx finds the argument case-insensitively).
    Arg(String),
    /// `$cookie_NAME` (lowercase; nginx finds the cookie case-insensitively).
    Cookie(String),
    /// `$sent_http_NAME`: a header of the response sent (name lowercased, `_` for `-`);
    /// known once the head is written (access logs).
    SentHttp(String),
    /// `$sent_trailer_NAME`: a trailer already added to the response (name as above).
    SentTrailer(String),
    /// `$upstream_http_NAME`: a header of the upstream's response (name lowercased, `_` for
    /// `-`), repeated ones joined by `", "`.
    UpstreamHttp(String),
    /// `$upstream_cookie_NAME`: the value of the cookie NAME the upstream's response sets
    /// (`Set-Cookie`; name lowercase, compared case-insensitively).
    UpstreamCookie(String),
    /// `$upstream_trailer_NAME`: a trailer field at the end of the upstream's chunked
    /// response (name as for `$upstream_http_*`).
    UpstreamTrailer(String),
    /// A `set` variable by index into [`Ir::user_vars`].
    User(u32),
    /// `$name` for a named regex capture `(?<name>…)` / `(?P<name>…)` (name lowercase; the
    /// group name is compared case-insensitively). The runtime fills it from the last regex
    /// match that defined that group: a `server_name` regex when the server is selected, a
    /// location regex when the location is selected, a `rewrite` regex when it matches.
    /// Empty when no such match happened.
    NamedCapture(String),
    /// The variable of a `map` block, by index into [`Ir::maps`].
    Map(u32),
    /// `$proxy_protocol_tlv_NAME`: a TLV of the connection's PROXY protocol v2 header.
    ProxyProtocolTlv(ProxyTlv),
    /// `$jwt_header_NAME`: a member of the header of the request's validated JWT (name
    /// lowercase, compared case-insensitively).
    JwtHeader(String),
    /// `$jwt_claim_NAME`: a claim of the request's validated JWT (as above).
    JwtClaim(String),
}

/// Which TLV `$proxy_protocol_tlv_NAME` reads (nginx ≥ 1.23.2's names, resolved by protonc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyTlv {
    /// A top-level TLV of this type (`alpn` 0x01, `authority` 0x02, `unique_id` 0x05, `ssl`
    /// 0x20, `netns` 0x30, or `0xNN`); its raw value.
    Type(u8),
    /// A sub-TLV of the `ssl` TLV (`ssl_version` 0x21, `ssl_cn` 0x22, `ssl_cipher` 0x23,
    /// `ssl_sig_alg` 0x24, `ssl_key_alg` 0x25, or `ssl_0xNN`).
    Ssl(u8),
    /// `ssl_verify`: the `ssl` TLV's verify field, in decimal.
    SslVerify,
    /// A hex type beyond one byte: never present.
    None,
}

impl ProxyTlv {
    /// The TLV `name` (after `proxy_protocol_tlv_`) reads; `None` for a name nginx does not
    /// know.
    pub fn from_name(name: &str) -> Option<ProxyTlv> {
        let hex = |s: &str| -> Option<Option<u8>> {
            let h = s.strip_prefix("0x")?;
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let h = h.trim_start_matches('0');
            Some(if h.len() > 2 {
                None
            } else {
                Some(u8::from_str_radix(if h.is_empty() { "0" } else { h }, 16).ok()?)
            })
        };
        if let Some(s) = name.strip_prefix("ssl_") {
            if s == "verify" {
                return Some(ProxyTlv::SslVerify);
            }
            if let Some(t) = hex(s) {
                return Some(t.map_or(ProxyTlv::None, ProxyTlv::Ssl));
            }
            let t = match s {
                "version" => 0x21,
                "cn" => 0x22,
                "cipher" => 0x23,
                "sig_alg" => 0x24,
                "key_alg" => 0x25,
                _ => return None,
            };
            return Some(ProxyTlv::Ssl(t));
        }
        if let Some(t) = hex(name) {
            return Some(t.map_or(ProxyTlv::None, ProxyTlv::Type));
        }
        let t = match name {
            "alpn" => 0x01,
            "authority" => 0x02,
            "unique_id" => 0x05,
            "ssl" => 0x20,
            "netns" => 0x30,
            _ => return None,
        };
        Some(ProxyTlv::Type(t))
    }
}

/// Declares [`Builtin`] with its nginx names, in one table, so that a variant cannot lack a
/// name and the name lookup cannot miss a variant.
macro_rules! builtins {
    ($($(#[$doc:meta])* $v:ident = $name:literal,)*) => {
        /// The built-in variables Proton implements, with nginx's names and values. The
        /// compiler maps a name to one of these (or refuses it); the runtime matches them
        /// exhaustively, so a variant cannot be left without a value. Serialised by name
        /// (`"request_id"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Builtin {
            $($(#[$doc])* $v,)*
        }

        impl Builtin {
            /// Every built-in, in table order.
            pub const ALL: &'static [Builtin] = &[$(Builtin::$v,)*];

            /// The variable's nginx name, without `$`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Builtin::$v => $name,)*
                }
            }

            /// The built-in called `name` (lowercase, without `$`).
            pub fn from_name(name: &str) -> Option<Builtin> {
                match name {
                    $($name => Some(Builtin::$v),)*
                    _ => None,
                }
            }
        }
    };
}

builtins! {
    /// The query string (without `?`), after rewrites.
    Args = "args",
    /// The client address as 4 (IPv4) or 16 (IPv6) bytes.
    BinaryRemoteAddr = "binary_remote_addr",
    /// Response body bytes sent.
    BodyBytesSent = "body_bytes_sent",
    /// Response bytes sent, head included.
    BytesSent = "bytes_sent",
    /// The compression ratio of a gzipped response (`3.25`: body bytes in per byte out),
    /// empty when the response was not compressed.
    GzipRatio = "gzip_ratio",
    /// The same for a response `brotli` compressed (the ngx_brotli module's variable).
    BrotliRatio = "brotli_ratio",
    /// The same for a response `zstd` compressed (the zstd-nginx-module's variable).
    ZstdRatio = "zstd_ratio",
    /// `bytes=START-END` of the slice being fetched (the `slice` module: the request's
    /// own, then each of its slice subrequests'); empty where `slice` is off.
    SliceRange = "slice_range",
    /// The connection's serial number.
    Connection = "connection",
    /// How many requests this connection has carried, this one included.
    ConnectionRequests = "connection_requests",
    /// Seconds since the connection was accepted, with milliseconds (`1.234`).
    ConnectionTime = "connection_time",
    /// Open client connections, all workers together (`stub_status`'s active).
    ConnectionsActive = "connections_active",
    /// Connections reading a request head, all workers together.
    ConnectionsReading = "connections_reading",
    /// Requests being answered, all workers together.
    ConnectionsWriting = "connections_writing",
    /// Idle keep-alive connections and connections without a request yet, all workers.
    ConnectionsWaiting = "connections_waiting",
    /// The `Content-Length` request header; for a chunked body read whole, its length.
    ContentLength = "content_length",
    /// The `Content-Type` request header.
    ContentType = "content_type",
    /// The `Cookie` request header.
    Cookie = "cookie",
    /// The time in UTC, `Saturday, 25-Nov-2026 22:58:00 GMT` (nginx's SSI default format).
    DateGmt = "date_gmt",
    /// The local time in the same format; the runtime's local time is UTC.
    DateLocal = "date_local",
    /// The `root` (or `alias`) of the location, expanded and made absolute.
    DocumentRoot = "document_root",
    /// `$document_root` with every symbolic link resolved (`realpath`), empty when it
    /// cannot be resolved.
    RealpathRoot = "realpath_root",
    /// The URI (same as `$uri`).
    DocumentUri = "document_uri",
    /// The request's host: the absolute-form authority, else `Host`, lowercased, no port.
    Host = "host",
    /// The machine's host name.
    Hostname = "hostname",
    /// `on` over TLS, else empty.
    Https = "https",
    /// The connection's own client address when realip replaced `$remote_addr`.
    RealipRemoteAddr = "realip_remote_addr",
    /// The connection's own client port when realip replaced `$remote_port`.
    RealipRemotePort = "realip_remote_port",
    /// `1` when the `Referer` is not one `valid_referers` allows, else empty.
    InvalidReferer = "invalid_referer",
    /// `?` when there are arguments, else empty.
    IsArgs = "is_args",
    /// The response's rate limit in bytes per second (0: none); `set $limit_rate` changes it.
    LimitRate = "limit_rate",
    /// The payload (claims) of the request's validated JWT, as JSON.
    JwtPayload = "jwt_payload",
    /// What `limit_req` did with the request: `PASSED`, `DELAYED`, `REJECTED`,
    /// `DELAYED_DRY_RUN`, `REJECTED_DRY_RUN` (empty: not checked).
    LimitReqStatus = "limit_req_status",
    /// What `limit_conn` did with the request: `PASSED`, `REJECTED`, `REJECTED_DRY_RUN`
    /// (empty: not checked).
    LimitConnStatus = "limit_conn_status",
    /// The current time in seconds with milliseconds (`1700000000.123`).
    Msec = "msec",
    /// The server's version (Proton's: it stands in for nginx's).
    NginxVersion = "nginx_version",
    /// The worker's pid.
    Pid = "pid",
    /// `fastcgi_split_path_info`'s first capture (else the URI), with `fastcgi_index`
    /// appended when it ends with `/`.
    FastcgiScriptName = "fastcgi_script_name",
    /// `fastcgi_split_path_info`'s second capture (else empty).
    FastcgiPathInfo = "fastcgi_path_info",
    /// `X-Forwarded-For` with the client address appended.
    ProxyAddXForwardedFor = "proxy_add_x_forwarded_for",
    /// `host[:port]` of `proxy_pass`.
    ProxyHost = "proxy_host",
    /// The port of `proxy_pass`.
    ProxyPort = "proxy_port",
    /// Same as `$args`.
    QueryString = "query_string",
    /// The client address.
    RemoteAddr = "remote_addr",
    /// The client port.
    RemotePort = "remote_port",
    /// The user name of the request's `Authorization: Basic` credentials.
    RemoteUser = "remote_user",
    /// The request line.
    Request = "request",
    /// The request body when it was read and is kept in memory (`client_body_buffer_size`);
    /// empty when it went to a temporary file or was not read (nginx's rule).
    RequestBody = "request_body",
    /// The name of the temporary file holding the request body, if it went to one.
    RequestBodyFile = "request_body_file",
    /// The file path the URI maps to (root or alias, as nginx).
    RequestFilename = "request_filename",
    /// 16 random bytes in hex, one value per request.
    RequestId = "request_id",
    /// The length of the request head.
    RequestLength = "request_length",
    /// The request method.
    RequestMethod = "request_method",
    /// Seconds since the request's first byte, with milliseconds.
    RequestTime = "request_time",
    /// The request target as the client sent it.
    RequestUri = "request_uri",
    /// `http` or `https`.
    Scheme = "scheme",
    /// The TLS version of the connection (`TLSv1.3`), empty for plain HTTP.
    SslProtocol = "ssl_protocol",
    /// The cipher suite by its OpenSSL name (`TLS_AES_256_GCM_SHA384`).
    SslCipher = "ssl_cipher",
    /// The SNI name the client asked for.
    SslServerName = "ssl_server_name",
    /// `r` when the TLS session was resumed, else `.`.
    SslSessionReused = "ssl_session_reused",
    /// `1` when the request came in TLS 1.3 early data: always empty, as Proton accepts no
    /// early data (0-RTT), which cannot be replayed against it then.
    SslEarlyData = "ssl_early_data",
    /// The TLS session's id, 64 lowercase hex digits: the same on the full handshake and
    /// on every resumption of its session; empty for plain HTTP.
    SslSessionId = "ssl_session_id",
    /// The protocol ALPN chose (`http/1.1`), empty without ALPN.
    SslAlpnProtocol = "ssl_alpn_protocol",
    /// The key-exchange group of the handshake (OpenSSL's name: `X25519`, `prime256v1`).
    SslCurve = "ssl_curve",
    /// The groups the client offered, in its order, `:`-separated (OpenSSL's names; others
    /// as `0x` and four hex digits).
    SslCurves = "ssl_curves",
    /// The cipher suites the client offered, in its order, `:`-separated (OpenSSL's names;
    /// others as `0x` and four hex digits).
    SslCiphers = "ssl_ciphers",
    /// The client certificate's verification: `SUCCESS`, `FAILED:reason` (OpenSSL's
    /// reason), `NONE` (no certificate).
    SslClientVerify = "ssl_client_verify",
    /// The client certificate's subject, RFC 2253 (`CN=client,O=Org`).
    SslClientSDn = "ssl_client_s_dn",
    /// The client certificate's issuer, RFC 2253.
    SslClientIDn = "ssl_client_i_dn",
    /// The client certificate's subject in OpenSSL's one-line form (`/O=Org/CN=client`).
    SslClientSDnLegacy = "ssl_client_s_dn_legacy",
    /// The client certificate's issuer in OpenSSL's one-line form.
    SslClientIDnLegacy = "ssl_client_i_dn_legacy",
    /// The client certificate's serial number, uppercase hex.
    SslClientSerial = "ssl_client_serial",
    /// The SHA-1 of the client certificate's DER, lowercase hex.
    SslClientFingerprint = "ssl_client_fingerprint",
    /// The client certificate in PEM, each line after the first starting with a tab
    /// (nginx's deprecated form).
    SslClientCert = "ssl_client_cert",
    /// The client certificate in PEM.
    SslClientRawCert = "ssl_client_raw_cert",
    /// The client certificate in PEM, URL-encoded.
    SslClientEscapedCert = "ssl_client_escaped_cert",
    /// The client certificate's start date (`Dec  6 08:15:47 2026 GMT`).
    SslClientVStart = "ssl_client_v_start",
    /// The client certificate's end date.
    SslClientVEnd = "ssl_client_v_end",
    /// Whole days until the client certificate expires.
    SslClientVRemain = "ssl_client_v_remain",
    /// The client address the PROXY protocol header named (empty without one).
    ProxyProtocolAddr = "proxy_protocol_addr",
    /// The client port the PROXY protocol header named.
    ProxyProtocolPort = "proxy_protocol_port",
    /// The server address the PROXY protocol header named.
    ProxyProtocolServerAddr = "proxy_protocol_server_addr",
    /// The server port the PROXY protocol header named.
    ProxyProtocolServerPort = "proxy_protocol_server_port",
    /// The address that accepted the connection.
    ServerAddr = "server_addr",
    /// The first `server_name` of the chosen server.
    ServerName = "server_name",
    /// The port that accepted the connection.
    ServerPort = "server_port",
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    ServerProtocol = "server_protocol",
    /// The response status.
    Status = "status",
    /// The local time in ISO 8601 (UTC).
    TimeIso8601 = "time_iso8601",
    /// The local time in the access log's format (UTC).
    TimeLocal = "time_local",
    /// The current URI, normalised and after rewrites.
    Uri = "uri",
    /// The address of the upstream server of the last attempt.
    UpstreamAddr = "upstream_addr",
    /// The length of the upstream's response body (of the last attempt).
    UpstreamResponseLength = "upstream_response_length",
    /// The upstream's response time, seconds with milliseconds.
    UpstreamResponseTime = "upstream_response_time",
    /// The upstream's response status.
    UpstreamStatus = "upstream_status",
    /// What the content cache did: MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED or
    /// HIT (empty when the location has no cache).
    UpstreamCacheStatus = "upstream_cache_status",
    /// Seconds (with milliseconds) to the connection to each upstream server tried.
    UpstreamConnectTime = "upstream_connect_time",
    /// Seconds (with milliseconds) to each upstream's response head.
    UpstreamHeaderTime = "upstream_header_time",
    /// Bytes received from each upstream server tried.
    UpstreamBytesReceived = "upstream_bytes_received",
    /// Bytes sent to each upstream server tried.
    UpstreamBytesSent = "upstream_bytes_sent",
    /// Proton's version.
    ProtonVersion = "proton_version",
    /// `h2c` for a request over HTTP/2 with prior knowledge (`h2` over TLS), else empty.
    Http2 = "http2",
}

impl Template {
    /// The template as a config writes it (`$binary_remote_addr`, `${arg_a}x`), for log
    /// lines and reports.
    pub fn text(&self, user_vars: &[String]) -> String {
        let mut s = String::new();
        for (i, p) in self.parts.iter().enumerate() {
            match p {
                Part::Literal(l) => s.push_str(l),
                Part::Var(v) => {
                    // Braces only where a name character follows.
                    let braces = matches!(
                        self.parts.get(i + 1),
                        Some(Part::Literal(l)) if l.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    );
                    s.push_str(if braces { "${" } else { "$" });
                    s.push_str(&v.name(user_vars));
                    if braces {
                        s.push('}');
                    }
                }
                Part::Capture(n) => {
                    s.push('$');
                    s.push_str(&n.to_string());
                }
            }
        }
        s
    }

    /// A template of one literal string.
    pub fn literal(s: &str) -> Template {
        if s.is_empty() {
            return Template::default();
        }
        Template {
            parts: vec![Part::Literal(s.to_string())],
        }
    }

    /// The literal text if the template has no variables.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Writes the template back in nginx source form (`$var` / `${var}`). Map variables
    /// are written `$map#N`; [`Ir::source_of`] names them.
    pub fn to_source(&self, user_vars: &[String]) -> String {
        self.to_source_with(&|v| v.name(user_vars))
    }

    /// Writes the template back in nginx source form, naming variables with `name`.
    pub fn to_source_with(&self, name: &dyn Fn(&Var) -> String) -> String {
        let mut out = String::new();
        for (i, part) in self.parts.iter().enumerate() {
            let next_is_word = match self.parts.get(i + 1) {
                Some(Part::Literal(s)) => s
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_'),
                _ => false,
            };
            let name = match part {
                Part::Literal(s) => {
                    out.push_str(s);
                    continue;
                }
                Part::Capture(n) => n.to_string(),
                Part::Var(v) => name(v),
            };
            if next_is_word {
                out.push_str(&format!("${{{name}}}"));
            } else {
                out.push('$');
                out.push_str(&name);
            }
        }
        out
    }
}

impl Var {
    /// The variable's nginx name without the `$`.
    pub fn name(&self, user_vars: &[String]) -> String {
        match self {
            Var::Builtin(b) => b.name().to_string(),
            Var::Http(n) => format!("http_{n}"),
            Var::Arg(n) => format!("arg_{n}"),
            Var::Cookie(n) => format!("cookie_{n}"),
            Var::JwtHeader(n) => format!("jwt_header_{n}"),
            Var::JwtClaim(n) => format!("jwt_claim_{n}"),
            Var::SentHttp(n) => format!("sent_http_{n}"),
            Var::SentTrailer(n) => format!("sent_trailer_{n}"),
            Var::UpstreamHttp(n) => format!("upstream_http_{n}"),
            Var::UpstreamTrailer(n) => format!("upstream_trailer_{n}"),
            Var::UpstreamCookie(n) => format!("upstream_cookie_{n}"),
            Var::User(i) => user_vars
                .get(*i as usize)
                .cloned()
                .unwrap_or_else(|| format!("user#{i}")),
            Var::NamedCapture(n) => n.clone(),
            Var::Map(i) => format!("map#{i}"),
            Var::ProxyProtocolTlv(t) => format!("proxy_protocol_tlv_{t:?}"),
        }
    }
}

/// The value of the longest wildcard of `list` that `hit` says matches `key` (and is shorter
/// than it).
fn longest_wildcard<'m, T>(
    list: &'m [(String, T)],
    key: &[u8],
    hit: impl Fn(&[u8]) -> bool,
) -> Option<&'m T> {
    list.iter()
        .filter(|(w, _)| key.len() > w.len() && hit(w.as_bytes()))
        .max_by_key(|(w, _)| w.len())
        .map(|(_, t)| t)
}

/// Deepest chain of map variables whose templates use other map variables
/// (`map $a $b {…}`, `map $b $c {…}`… is a chain of two). The compiler refuses deeper chains
/// and cycles, [`Ir::verify`] checks it again, and the runtime stops evaluating there.
pub const MAX_MAP_NESTING: usize = 16;

/// A `map SOURCE $name { … }` block: the variable's value is chosen by the expansion of
/// `source`, nginx's order: an exact key (compared ASCII case-insensitively), then with
/// `hostnames` the longest leading wildcard and the longest trailing wildcard, then the
/// regexes in config order (not tried for an empty source), then `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Map {
    /// The variable's name, lowercase, without `$`.
    pub name: String,
    pub source: Template,
    /// `hostnames`: one trailing dot of the source is ignored, and keys may be wildcards.
    pub hostnames: bool,
    /// `volatile`: computed at every use. Otherwise, as in nginx, a request computes the
    /// value once and keeps it (through internal redirects).
    pub volatile: bool,
    /// Exact keys, lowercase, sorted (by bytes) and distinct for binary search.
    pub exact: Vec<(String, Template)>,
    /// `*.example.com` and `.example.com`, as the lowercase suffix `.example.com`
    /// (`.example.com` also puts `example.com` among the exact keys), distinct.
    pub leading: Vec<(String, Template)>,
    /// `www.example.*`, as the lowercase prefix `www.example.`, distinct.
    pub trailing: Vec<(String, Template)>,
    /// `~regex` / `~*regex` keys in config order. Their captures (`$1`…`$9`, named groups)
    /// are the ones their value sees.
    pub regex: Vec<(RegexId, Template)>,
    /// The value when nothing matches (empty when the map has no `default`).
    pub default: Template,
    /// A `geo` block (nginx's geo module, the same kind of variable). `None` for a `map`.
    pub geo: Option<Box<Geo>>,
    /// A `split_clients` block: the MurmurHash2 of the source (32 bits) takes the value of
    /// the first part whose bound is above it, or of a part with bound 0 (`*`, or the part
    /// that reaches 100 %); bounds are the running sums of the percentages scaled to
    /// `0..=u32::MAX` as nginx computes them. No part chosen: the empty value. `None` for a
    /// `map` or `geo`.
    pub split: Option<Vec<(u32, Template)>>,
}

/// A `geo` table: the source is an IP address (not one: 255.255.255.255, as nginx), first
/// replaced by the client an `X-Forwarded-For` names when it comes from a `proxy` address,
/// then looked up; values are literal text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Geo {
    /// Networks, longest prefix first (without `ranges`).
    pub networks: Vec<(ClientAddr, Template)>,
    /// `ranges`: disjoint IPv4 ranges (first, last address), sorted, as nginx's `/16`
    /// buckets leave them.
    pub ranges: Option<Vec<(u32, u32, Template)>>,
    /// `proxy` addresses and `proxy_recursive` (header `x-forwarded-for`).
    pub proxy: Option<RealIp>,
}

impl Map {
    /// The value of the first exact or wildcard key that matches `key`, which must already
    /// be lowercased (and, for a `hostnames` map, without its trailing dot). Regex keys are
    /// the caller's: they need a regex engine and see the source as it was.
    pub fn find_static(&self, key: &[u8]) -> Option<&Template> {
        if let Ok(i) = self.exact.binary_search_by(|(k, _)| k.as_bytes().cmp(key)) {
            return self.exact.get(i).map(|(_, t)| t);
        }
        if !self.hostnames {
            return None;
        }
        longest_wildcard(&self.leading, key, |w| key.ends_with(w))
            .or_else(|| longest_wildcard(&self.trailing, key, |w| key.starts_with(w)))
    }

    /// Every template of the map: the source, then every value.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        std::iter::once(&self.source)
            .chain(self.exact.iter().map(|(_, t)| t))
            .chain(self.leading.iter().map(|(_, t)| t))
            .chain(self.trailing.iter().map(|(_, t)| t))
            .chain(self.regex.iter().map(|(_, t)| t))
            .chain(self.split.iter().flatten().map(|(_, t)| t))
            .chain(std::iter::once(&self.default))
    }
}

#[cfg(test)]
mod tests {
    use super::Builtin;

    #[test]
    fn a_template_is_written_back_as_a_config_writes_it() {
        use super::{Part, Template, Var};
        let t = Template {
            parts: vec![
                Part::Var(Var::Builtin(Builtin::BinaryRemoteAddr)),
                Part::Literal(":".into()),
                Part::Var(Var::Arg("a".into())),
                Part::Literal("x".into()),
                Part::Var(Var::User(0)),
                Part::Capture(1),
            ],
        };
        assert_eq!(
            t.text(&["mine".to_string()]),
            "$binary_remote_addr:${arg_a}x$mine$1"
        );
    }

    #[test]
    fn builtin_names_are_distinct_and_found_again() {
        let mut names = std::collections::HashSet::new();
        for &b in Builtin::ALL {
            assert!(names.insert(b.name()), "{} twice", b.name());
            assert_eq!(Builtin::from_name(b.name()), Some(b));
            assert_eq!(b.name(), b.name().to_ascii_lowercase());
        }
        assert_eq!(Builtin::from_name("no_such_variable"), None);
        assert_eq!(Builtin::from_name("Host"), None, "names are lowercase");
    }

    #[test]
    fn bind_addresses_read_as_nginx() {
        use super::ProxyBind;
        let p = |s: &str| ProxyBind::parse_address(s.as_bytes()).map(|a| a.to_string());
        assert_eq!(p("127.0.0.2").as_deref(), Some("127.0.0.2:0"));
        assert_eq!(p("127.0.0.2:8000").as_deref(), Some("127.0.0.2:8000"));
        assert_eq!(p("::1").as_deref(), Some("[::1]:0"));
        assert_eq!(p("[::1]:80").as_deref(), Some("[::1]:80"));
        assert_eq!(p("::ffff:1.2.3.4").as_deref(), Some("[::ffff:1.2.3.4]:0"));
        for bad in [
            "",
            "[::1]",
            "[::1]:",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:",
            "1.2.3",
            "localhost",
            "localhost:80",
            "127.0.0.1:+80",
            "[::1]x80",
            "1.2.3.4:80:1",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ignore_headers_names_any_case() {
        let mut h = super::IgnoreHeaders::default();
        assert!(h.add("x-accel-BUFFERING") && h.x_accel_buffering);
        assert!(h.add("Set-Cookie") && h.set_cookie);
        assert!(!h.add("X-Accel-Other"));
        assert!(!h.x_accel_limit_rate);
    }
}

#[cfg(test)]
mod referer_tests {
    use super::*;

    fn refs() -> Referers {
        Referers {
            none: false,
            blocked: false,
            exact: vec![
                ("www.example.org".into(), None),
                ("img.example.org".into(), Some("/img/".into())),
                ("example.net".into(), None),
            ],
            leading: vec![(".example.com".into(), None), (".example.net".into(), None)],
            trailing: vec![("www.example.".into(), Some("/uri".into()))],
            regex: vec![RegexId(0)],
            server_name_regex: vec![RegexId(1)],
        }
    }

    /// Regex 0 is "contains `foo`", regex 1 is "is `bar`".
    fn invalid(r: &Referers, referer: Option<&str>) -> bool {
        r.invalid(referer.map(str::as_bytes), &mut |id, s| match id.0 {
            0 => s.windows(3).any(|w| w == b"foo"),
            _ => s == b"bar",
        })
    }

    #[test]
    fn referers_as_nginx_reads_them() {
        let mut r = refs();
        for (referer, bad) in [
            (None, true),
            (Some("http://www.example.org"), false),
            (Some("HTTPS://WWW.Example.ORG:8080/x"), false),
            (Some("www.example.org"), true),
            (Some("http://su"), true),
            (Some("http://img.example.org/img/a.png"), false),
            (Some("http://img.example.org:81/img/a.png"), false),
            (Some("http://img.example.org/IMG/a.png"), true),
            (Some("http://a.b.example.com/"), false),
            (Some("http://example.com/"), true),
            (Some("http://example.net/"), false),
            (Some("http://www.example.de/urii"), false),
            (Some("http://www.example.de/ur"), true),
            (Some("http://other.test/foo"), false),
            (Some("http://bar/x"), false),
            (Some("http://BAR/x"), false),
            (Some("http://bars/x"), true),
        ] {
            assert_eq!(invalid(&r, referer), bad, "{referer:?}");
        }
        // A host over 256 bytes is invalid whatever else would match.
        let long = format!("http://{}.example.com/foo", "a".repeat(250));
        assert!(invalid(&r, Some(&long)));
        let just = format!("http://foo{}", "a".repeat(253));
        assert!(!invalid(&r, Some(&just)));
        r.none = true;
        r.blocked = true;
        assert!(!invalid(&r, None));
        assert!(!invalid(&r, Some("www.example.org")));
        assert!(!invalid(&r, Some("")));
    }
}

#[cfg(test)]
mod realip_tests {
    use super::*;

    #[test]
    fn forwarded_addresses_as_nginx_reads_them() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().ok();
        let mut r = RealIp {
            from: vec![
                ClientAddr::Cidr {
                    addr: "127.0.0.1".parse().expect("ip"),
                    prefix: 32,
                },
                ClientAddr::Cidr {
                    addr: "10.0.1.0".parse().expect("ip"),
                    prefix: 24,
                },
            ],
            header: "x-forwarded-for".into(),
            recursive: false,
        };
        let local = ip("127.0.0.1");
        let xff = |r: &RealIp, peer, v: &str| r.client(peer, v.as_bytes(), true);
        // An untrusted peer changes nothing.
        assert_eq!(xff(&r, ip("192.0.2.5"), "192.0.2.1"), None);
        assert_eq!(xff(&r, None, "192.0.2.1"), None);
        assert_eq!(xff(&r, local, "10.0.0.1, 192.0.2.1"), ip("192.0.2.1"));
        assert_eq!(
            xff(&r, local, "192.0.2.1, 10.0.1.1, 127.0.0.1"),
            ip("127.0.0.1")
        );
        assert_eq!(xff(&r, local, "192.0.2.1 , "), ip("192.0.2.1"));
        assert_eq!(xff(&r, local, "junk"), None);
        assert_eq!(xff(&r, local, "192.0.2.1:8080"), ip("192.0.2.1"));
        r.recursive = true;
        assert_eq!(
            xff(&r, local, "10.0.1.1, 192.0.2.1, 127.0.0.1"),
            ip("192.0.2.1")
        );
        assert_eq!(xff(&r, local, "10.0.1.1, 127.0.0.1"), ip("10.0.1.1"));
        assert_eq!(xff(&r, local, "junk, 10.0.1.1"), ip("10.0.1.1"));
        assert_eq!(r.client(local, b"2001:db8::1", false), ip("2001:db8::1"));
        r.from.push(ClientAddr::Unix);
        assert_eq!(xff(&r, None, "192.0.2.1"), ip("192.0.2.1"));
    }
}
