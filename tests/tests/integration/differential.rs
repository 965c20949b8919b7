//! Differential test: for generated configs, `protonc route` must pick the same server and
//! location as nginx does.
//!
//! A seeded generator writes nginx configs with several servers on one port (exact, leading
//! and trailing wildcard, `.domain`, regex and empty server names, one `default_server`) and
//! many locations (prefix, `=`, `^~`, `~`, `~*`, named, nested). Every location answers
//! `return 200 "<ID>"`, so nginx's body names the location it chose; the nginx copy of the
//! config also tags each server with an `X-Proton-Server` header, so even a 404 from a server
//! without `location /` names the server. protonc answers the same requests in one batch.
//!
//! Only already-normalised URIs are asked here (no `..`, `%` or `//`): URI normalisation
//! belongs to the runtime and is tested with it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use proton_tests::{bin, nginx_binary, request, Nginx, TempDir};
use serde_json::Value;

/// One generated config per seed; `PROTON_DIFF_SEEDS=N` asks for seeds `1..=N` (a longer hunt).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=24;
/// Configs checked at once, each with its own nginx.
const PARALLEL: usize = 4;
/// Caps on the request corpus of one config.
const MAX_HOSTS: usize = 14;
const MAX_URIS: usize = 26;
/// How much of the failures the failure message shows.
const SHOWN_CONFIGS: usize = 3;
const SHOWN_PER_CONFIG: usize = 12;

#[test]
fn protonc_routes_like_nginx() {
    let Some(nginx) = nginx_binary() else { return };
    let protonc = bin("protonc");

    let seeds: Vec<u64> = match std::env::var("PROTON_DIFF_SEEDS") {
        Ok(n) => 1..=n.parse().expect("PROTON_DIFF_SEEDS is a number"),
        Err(_) => SEEDS,
    }
    .collect();
    let reports: Vec<ConfigReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL)
            .map(|w| {
                let seeds = &seeds;
                let (nginx, protonc) = (&nginx, &protonc);
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(w)
                        .step_by(PARALLEL)
                        .map(|&seed| check_config(nginx, protonc, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<ConfigReport> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker panicked"))
            .collect();
        all.sort_by_key(|r| r.seed);
        all
    });

    let configs = reports.len();
    let requests: usize = reports.iter().map(|r| r.requests).sum();
    let located: usize = reports.iter().map(|r| r.located).sum();
    let failures: Vec<&ConfigReport> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    eprintln!(
        "differential: {configs} configs, {requests} requests ({located} answered by a \
         location, {} by a server without a matching location)",
        requests - located
    );
    if failures.is_empty() {
        return;
    }

    let total: usize = failures.iter().map(|r| r.problems.len()).sum();
    let mut msg = format!(
        "protonc disagrees with nginx: {total} problem(s) in {} of {configs} configs \
         ({requests} requests); the first {SHOWN_CONFIGS} configs:\n",
        failures.len()
    );
    for report in failures.iter().take(SHOWN_CONFIGS) {
        let _ = write!(
            msg,
            "\n=== config seed {} ({} problems) ===\n{}\n",
            report.seed,
            report.problems.len(),
            report.config
        );
        for problem in report.problems.iter().take(SHOWN_PER_CONFIG) {
            let _ = writeln!(msg, "{problem}");
        }
    }
    panic!("{msg}");
}

/// What checking one generated config found.
struct ConfigReport {
    seed: u64,
    /// The config as given to protonc.
    config: String,
    requests: usize,
    /// Requests nginx answered from a location (the others: 404 from the server level).
    located: usize,
    problems: Vec<String>,
}

/// nginx's answer to one request.
struct NginxAnswer {
    status: u16,
    body: String,
    /// From the `X-Proton-Server: s<N>` header.
    server: Option<u64>,
}

fn check_config(nginx_bin: &Path, protonc: &Path, seed: u64) -> ConfigReport {
    let config = Generator::new(seed).config();
    let nginx = Nginx::start(nginx_bin, |port| config.render(port, true));
    let port = nginx.port();
    let source = format!("events {{}}\nhttp {{\n{}}}\n", config.render(port, false));
    let corpus = Corpus::for_config(&config, seed);

    let answers: Vec<NginxAnswer> = corpus
        .requests
        .iter()
        .map(|(host, uri)| {
            let resp = request(port, host.as_deref(), uri).unwrap_or_else(|e| {
                panic!(
                    "seed {seed}: GET {uri} Host {host:?}: {e}\n{}",
                    nginx.logs()
                )
            });
            NginxAnswer {
                status: resp.status,
                body: resp.body_text(),
                server: resp
                    .header("x-proton-server")
                    .and_then(|s| s.strip_prefix('s'))
                    .and_then(|n| n.parse().ok()),
            }
        })
        .collect();
    for ((host, uri), answer) in corpus.requests.iter().zip(&answers) {
        if let Err(why) = answer.sane() {
            panic!(
                "seed {seed}: the oracle itself is off for Host {host:?} GET {uri}: {why}\n\
                 config:\n{source}\n{}",
                nginx.logs()
            );
        }
    }

    let mut report = ConfigReport {
        seed,
        config: source.clone(),
        requests: corpus.requests.len(),
        located: answers.iter().filter(|a| a.status == 200).count(),
        problems: Vec::new(),
    };
    let routes = match protonc_route_batch(protonc, &source, &corpus.requests) {
        Ok(routes) => routes,
        Err(e) => {
            report.problems.push(e);
            return report;
        }
    };
    for (((host, uri), answer), route) in corpus.requests.iter().zip(&answers).zip(&routes) {
        if let Err(why) = compare(answer, route) {
            let host = host.as_deref().unwrap_or("(none)");
            let chosen = if answer.status == 200 {
                format!("{:?} = {}", answer.body, config.describe(&answer.body))
            } else {
                "error page: no location matched".to_string()
            };
            report.problems.push(format!(
                "Host {host:?} GET {uri}: {why}\n    nginx:   {} {chosen} (server {})\n    protonc: {route}",
                answer.status,
                answer.server.map_or("?".into(), |s| s.to_string()),
            ));
        }
    }
    report
}

impl NginxAnswer {
    /// Whether the answer is one the generated config can give: a location's `return 200`
    /// naming the server that tagged it, or a server-level 404 (no file under the default root).
    fn sane(&self) -> Result<(), String> {
        let Some(server) = self.server else {
            return Err(format!("status {} without X-Proton-Server", self.status));
        };
        match self.status {
            200 if self.body.starts_with(&format!("s{server}-L")) => Ok(()),
            200 => Err(format!("body {:?} from server {server}", self.body)),
            404 => Ok(()),
            other => Err(format!("status {other}")),
        }
    }
}

/// Runs `protonc route CONF --json --batch FILE` and parses one JSON object per request.
fn protonc_route_batch(
    protonc: &Path,
    source: &str,
    requests: &[(Option<String>, String)],
) -> Result<Vec<Value>, String> {
    let dir = TempDir::new("differential");
    let conf = dir.write("proton.conf", source);
    let batch: String = requests
        .iter()
        .map(|(host, uri)| format!("{} {uri}\n", host.as_deref().unwrap_or("-")))
        .collect();
    let batch_file = dir.write("requests.txt", &batch);
    let out = Command::new(protonc)
        .arg("route")
        .arg(&conf)
        .arg("--json")
        // (The server's index comes with the locations' places.)
        .arg("--with-lines")
        .arg("--batch")
        .arg(&batch_file)
        .output()
        .map_err(|e| format!("running {}: {e}", protonc.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "`protonc route {} --json --batch FILE` failed ({}):\n{}{}",
            conf.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdout
        ));
    }
    let routes = stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .map_err(|e| format!("protonc printed a line that is not JSON ({e}): {line}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if routes.len() != requests.len() {
        return Err(format!(
            "protonc printed {} lines for {} requests:\n{stdout}",
            routes.len(),
            requests.len()
        ));
    }
    Ok(routes)
}

/// Whether protonc's route agrees with nginx's answer; the reason when it does not.
fn compare(nginx: &NginxAnswer, route: &Value) -> Result<(), String> {
    let server = route["server"].as_u64();
    if nginx.server.is_none() {
        return Err("nginx's answer lacks the X-Proton-Server header".into());
    }
    if server != nginx.server {
        return Err("different server".into());
    }
    let kind = route["location_kind"].as_str().unwrap_or("");
    match nginx.status {
        200 => {
            if kind == "server" {
                return Err("protonc found no location, nginx did".into());
            }
            let ret = &route["return"];
            if ret["code"].as_u64() != Some(200) || ret["text"].as_str() != Some(&nginx.body) {
                return Err("different location".into());
            }
            Ok(())
        }
        404 if kind == "server" => Ok(()),
        404 => Err("nginx found no location (404), protonc did".into()),
        other => Err(format!(
            "nginx answered {other}: the request is not a routing case"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The generator.

/// xorshift64*, seeded through splitmix64: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i + 1));
        }
    }
}

/// A server name and Host values that exercise it (matching and near misses).
/// `-` stands for a request without a Host header.
struct NameSpec {
    name: &'static str,
    hosts: &'static [&'static str],
}

const fn n(name: &'static str, hosts: &'static [&'static str]) -> NameSpec {
    NameSpec { name, hosts }
}

const NAMES: &[NameSpec] = &[
    // exact
    n(
        "example.com",
        &[
            "example.com",
            "EXAMPLE.com",
            "example.com.",
            "example.com:8080",
        ],
    ),
    n(
        "www.example.com",
        &["www.example.com", "WWW.Example.COM", "www.example.com."],
    ),
    n("a.example.org", &["a.example.org", "A.Example.Org:81"]),
    n(
        "api.example.com",
        &["api.example.com", "api.example.com:443"],
    ),
    n("localhost", &["localhost", "LOCALHOST:8080"]),
    n("b.wild.test", &["b.wild.test", "B.WILD.TEST."]),
    n("www.example.net", &["www.example.net"]),
    n(
        "MiXeD.Example.com",
        &["mixed.example.com", "MIXED.EXAMPLE.COM"],
    ),
    n("_", &["_"]),
    // leading wildcard
    n(
        "*.example.com",
        &["x.example.com", "y.z.example.com", "Q.Example.Com."],
    ),
    n(
        "*.wild.test",
        &["a.wild.test", "x.y.wild.test", "wild.test"],
    ),
    n(
        "*.a.wild.test",
        &["q.a.wild.test", "a.wild.test", "r.q.a.wild.test:99"],
    ),
    n("*.example.org", &["w.example.org", "example.org"]),
    n(
        "*.api.example.com",
        &["v1.api.example.com", "api.example.com"],
    ),
    // ".domain": the domain itself and all its subdomains
    n(
        ".example.org",
        &["example.org", "www.example.org", "a.b.example.org"],
    ),
    n(".wild.test", &["wild.test", "z.wild.test", "WILD.test."]),
    n(".example.net", &["example.net", "x.example.net"]),
    n(
        ".sub.example.com",
        &["sub.example.com", "a.sub.example.com"],
    ),
    // trailing wildcard
    n(
        "www.example.*",
        &["www.example.com", "www.example.co.uk", "WWW.EXAMPLE.IO"],
    ),
    n("api.*", &["api.test", "api.example.org", "api"]),
    n("mail.example.*", &["mail.example.de", "mail.example"]),
    n("www.*", &["www.test", "www.other.test", "www"]),
    // claimed by ".example.com", "*.wild.test" and ".example.org" too (conflicts)
    n(
        ".example.com",
        &["example.com", "q.example.com", "Example.Com."],
    ),
    n("wild.test", &["wild.test", "WILD.TEST"]),
    n("example.org", &["example.org"]),
    // regex (hosts like c.regex.test match two, so their order counts)
    n(
        r"~^api\d+\.",
        &[
            "api12.example.com",
            "API7.test",
            "api.example.com",
            "api3.example.net",
        ],
    ),
    n(
        r"~^(?<sub>[a-z]+)\.regex\.test$",
        &[
            "foo.regex.test",
            "Foo.Regex.Test.",
            "1.regex.test",
            "c.regex.test",
        ],
    ),
    n(
        r"~^www\d*\.example\.com$",
        &["www2.example.com", "www.example.com"],
    ),
    n(
        r"~\.example\.net$",
        &["q.example.net", "example.net", "b.example.net"],
    ),
    n(r"~^[a-c]\.", &["a.test", "c.example.org", "d.test"]),
    // uppercase: nginx matches caselessly and `\D` must stay `\D`
    n(
        r"~^x\D\.UP\.test$",
        &["xa.up.test", "x1.up.test", "XB.Up.Test"],
    ),
    // PCRE quoting: the quoted dot is a literal dot
    n(
        r"~^\Qq.\E[a-z]+\.quoted\.test$",
        &["q.ab.quoted.test", "qxab.quoted.test", "Q.AB.QUOTED.TEST"],
    ),
    // the empty name: requests without a Host
    n("", &["-"]),
];

/// Names nginx files under a shared key: any two of one family conflict (`.x` claims the
/// exact name `x` and the wildcard `*.x`), so the later one is ignored with a warning.
const CONFLICT_FAMILIES: &[&[&str]] = &[
    &["example.com", ".example.com", "*.example.com"],
    &["wild.test", ".wild.test", "*.wild.test"],
    &["example.org", ".example.org", "*.example.org"],
    &["www.example.*", "www.example.*", "www.example.com"],
    &[r"~^api\d+\.", r"~^api\d+\.", "api.example.com"],
];

/// Hosts asked of every config: unknown names, an address, no Host at all.
const EXTRA_HOSTS: &[&str] = &[
    "unknown.invalid",
    "127.0.0.1",
    "-",
    "WWW.Example.COM",
    "example.org:8080",
    "[::1]",
    "[::1]:8080",
];

/// Paths for prefix, `^~` and `=` locations.
const PATHS: &[&str] = &[
    "/",
    "/a.b",
    "/a",
    "/a/",
    "/a/b",
    "/a/b/",
    "/a/b/c",
    "/ab",
    "/a/bc",
    "/img",
    "/img/",
    "/img/icons/",
    "/api/",
    "/api/v1",
    "/api/v1/",
    "/static/",
    "/x",
    "/A",
    "/users/",
];

/// Patterns for `~` and `~*` locations (no `{`, `;`, quotes, spaces or `\n`-like escapes,
/// so they need no quoting in the config).
const REGEXES: &[&str] = &[
    r"\.php$",
    r"\.(gif|jpg|png)$",
    r"^/a/b/",
    r"^/api/v\d+",
    "/b",
    r"\.PHP$",
    r"^/img/.*\.jpg$",
    "^/A",
    r"^/users/(?<id>\d+)$",
    "c",
    "^/a$",
    r"\.js$",
    "^/(a|img)/",
    "x",
    r"\.(?:css|js)$",
    "^/static/.+",
    r"^/a\.b",
    r"^/a\Q.b\E",
    "(?i)^/ab",
    // needs quoting: `{` would end the token
    "^/(img|a){1}/",
];

/// URIs asked of every config, already normalised.
const URIS: &[&str] = &[
    "/a.b",
    "/a.bc",
    "/aXb",
    "/AB",
    "/aa",
    "/img/a/",
    "/",
    "/a",
    "/a/",
    "/ab",
    "/abc",
    "/a/b",
    "/a/b/",
    "/a/b/c",
    "/a/b/c.php",
    "/a/bc",
    "/x.PHP",
    "/x.php",
    "/img/x.JPG",
    "/img/x.gif",
    "/img/icons/y.png",
    "/nomatch",
    "/a/b/c/d/e/f.jpg",
    "/api/v2/users",
    "/API/v1",
    "/api/v1",
    "/static/app.js",
    "/static/",
    "/users/42",
    "/users/abc",
    "/A/b",
    "/b",
    "/c",
    "/x",
    "/index.html",
    "/a/b/c/d/e/f/g/h/i/j/k/deep.css",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Modifier {
    Prefix,
    NoRegex,
    Exact,
    Regex,
    RegexCaseless,
    Named,
}

impl Modifier {
    fn keyword(self) -> &'static str {
        match self {
            Modifier::Prefix => "",
            Modifier::NoRegex => "^~ ",
            Modifier::Exact => "= ",
            Modifier::Regex => "~ ",
            Modifier::RegexCaseless => "~* ",
            Modifier::Named => "",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, Modifier::Regex | Modifier::RegexCaseless)
    }

    fn is_prefix(self) -> bool {
        matches!(self, Modifier::Prefix | Modifier::NoRegex)
    }

    /// nginx rejects two locations of one level with the same key ("duplicate location"):
    /// `/p` and `^~ /p` clash, `= /p` does not clash with either.
    fn duplicate_key(self, path: &str) -> (u8, String) {
        let class = match self {
            Modifier::Prefix | Modifier::NoRegex => 0,
            Modifier::Exact => 1,
            Modifier::Regex => 2,
            Modifier::RegexCaseless => 3,
            Modifier::Named => 4,
        };
        (class, path.to_string())
    }
}

struct Location {
    modifier: Modifier,
    path: String,
    id: String,
    children: Vec<Location>,
}

struct Server {
    names: Vec<String>,
    locations: Vec<Location>,
}

struct Config {
    servers: Vec<Server>,
    /// The server marked `default_server`; without one nginx defaults to the first.
    default: Option<usize>,
    /// Server names may conflict (nginx warns and keeps the first claim).
    conflicts: bool,
}

impl Config {
    /// The server blocks, listening on `127.0.0.1:port`. With `instrument`, each server adds
    /// an `X-Proton-Server: s<N>` header to every response (nginx's copy only).
    fn render(&self, port: u16, instrument: bool) -> String {
        let mut out = String::new();
        for (i, server) in self.servers.iter().enumerate() {
            let default = if self.default == Some(i) {
                " default_server"
            } else {
                ""
            };
            let names: Vec<String> = server.names.iter().map(|n| token(n)).collect();
            let _ = writeln!(out, "server {{\n    listen 127.0.0.1:{port}{default};");
            let _ = writeln!(out, "    server_name {};", names.join(" "));
            if instrument {
                let _ = writeln!(out, "    add_header X-Proton-Server s{i} always;");
            }
            for loc in &server.locations {
                render_location(&mut out, loc, 1);
            }
            out.push_str("}\n");
        }
        out
    }
}

impl Config {
    /// The head of the location answering with `id`, e.g. `location ~* \.(gif|jpg)$`.
    fn describe(&self, id: &str) -> String {
        fn find<'a>(locs: &'a [Location], id: &str) -> Option<&'a Location> {
            locs.iter().find_map(|l| {
                if l.id == id {
                    Some(l)
                } else {
                    find(&l.children, id)
                }
            })
        }
        self.servers
            .iter()
            .find_map(|s| find(&s.locations, id))
            .map_or("?".into(), |l| {
                format!("location {}{}", l.modifier.keyword(), l.path)
            })
    }
}

/// `text` as a config token: quoted when it must be (empty, or holding `{`, `}`, `;` or
/// spaces), and now and then when it need not be, so that both spellings get parsed.
fn token(text: &str) -> String {
    let must = text.is_empty() || text.contains(['{', '}', ';', ' ']);
    let now_and_then = text.bytes().map(usize::from).sum::<usize>() % 5 == 0;
    if must || now_and_then {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

fn render_location(out: &mut String, loc: &Location, depth: usize) {
    let indent = "    ".repeat(depth);
    let _ = writeln!(
        out,
        "{indent}location {}{} {{",
        loc.modifier.keyword(),
        token(&loc.path)
    );
    let _ = writeln!(out, "{indent}    return 200 \"{}\";", loc.id);
    for child in &loc.children {
        render_location(out, child, depth + 1);
    }
    let _ = writeln!(out, "{indent}}}");
}

struct Generator {
    rng: Rng,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
        }
    }

    fn config(&mut self) -> Config {
        let count = self.rng.range(2, 4);
        let conflicts = self.rng.percent(35);
        let mut taken = BTreeSet::new();
        let servers: Vec<Server> = (0..count)
            .map(|i| self.server(i, &mut taken, conflicts))
            .collect();
        let default = (!self.rng.percent(20)).then(|| self.rng.below(count));
        Config {
            servers,
            default,
            conflicts,
        }
    }

    /// One server. Without `conflicts` its names clash with none already `taken`; with it,
    /// half of its names are drawn from families of names that nginx files under one key
    /// (`example.com`, `.example.com`, `*.example.com`…), so that nginx warns
    /// "conflicting server name" and keeps the first claim, and protonc must do the same.
    fn server(&mut self, index: usize, taken: &mut BTreeSet<String>, conflicts: bool) -> Server {
        let want = self.rng.range(1, 4);
        let mut names = Vec::new();
        for _ in 0..want * 4 {
            if names.len() == want {
                break;
            }
            if conflicts {
                let name = if self.rng.percent(50) {
                    let family = *self.rng.pick(CONFLICT_FAMILIES);
                    *self.rng.pick(family)
                } else {
                    self.rng.pick(NAMES).name
                };
                names.push(name.to_string());
                continue;
            }
            let spec = self.rng.pick(NAMES);
            let keys = name_keys(spec.name);
            if keys.iter().any(|k| taken.contains(k)) {
                continue;
            }
            taken.extend(keys);
            names.push(spec.name.to_string());
        }
        if names.is_empty() {
            // Every server gets an explicit name: without one nginx gives it "".
            names.push(format!("fallback{index}.test"));
        }
        let mut next_id = 0;
        let locations = self.level(index, None, 0, &mut next_id);
        Server { names, locations }
    }

    /// The locations of one level: the server's (`parent == None`) or a location's.
    fn level(
        &mut self,
        server: usize,
        parent: Option<(Modifier, &str)>,
        depth: usize,
        next_id: &mut usize,
    ) -> Vec<Location> {
        let count = match parent {
            None => self.rng.range(3, 10),
            Some(_) => self.rng.range(1, 4),
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for _ in 0..count * 3 {
            if out.len() == count {
                break;
            }
            let Some((modifier, path)) = self.location_head(parent) else {
                continue;
            };
            if !seen.insert(modifier.duplicate_key(&path)) {
                continue;
            }
            let id = format!("s{server}-L{next_id}");
            *next_id += 1;
            let nests = depth < 2
                && ((modifier.is_prefix() && self.rng.percent(35))
                    || (modifier.is_regex() && self.rng.percent(15)));
            let children = if nests {
                self.level(server, Some((modifier, &path)), depth + 1, next_id)
            } else {
                Vec::new()
            };
            out.push(Location {
                modifier,
                path,
                id,
                children,
            });
        }
        out
    }

    /// A modifier and path allowed at this level by nginx: nested prefix and exact locations
    /// extend their parent's path; inside a regex location only regexes; named locations on
    /// the server level only.
    fn location_head(&mut self, parent: Option<(Modifier, &str)>) -> Option<(Modifier, String)> {
        let roll = self.rng.below(100);
        let inside_regex = parent.is_some_and(|(m, _)| m.is_regex());
        let modifier = match roll {
            _ if inside_regex => {
                if roll < 60 {
                    Modifier::Regex
                } else {
                    Modifier::RegexCaseless
                }
            }
            0..=29 => Modifier::Prefix,
            30..=41 => Modifier::NoRegex,
            42..=57 => Modifier::Exact,
            58..=81 => Modifier::Regex,
            82..=95 => Modifier::RegexCaseless,
            _ if parent.is_none() => Modifier::Named,
            _ => Modifier::Prefix,
        };
        let path = match modifier {
            Modifier::Named => format!("@named{}", self.rng.below(3)),
            m if m.is_regex() => self.rng.pick(REGEXES).to_string(),
            _ => {
                let Some((_, parent_path)) = parent else {
                    // `/` often, so that about half the servers have a catch-all.
                    let path = if modifier.is_prefix() && self.rng.percent(20) {
                        "/"
                    } else {
                        self.rng.pick(PATHS)
                    };
                    return Some((modifier, path.to_string()));
                };
                // Nested: strictly longer than the parent, rarely the parent's path itself.
                let same = self.rng.percent(8);
                let options: Vec<&str> = PATHS
                    .iter()
                    .copied()
                    .filter(|p| p.starts_with(parent_path) && (same || *p != parent_path))
                    .collect();
                if options.is_empty() {
                    return None;
                }
                self.rng.pick(&options).to_string()
            }
        };
        Some((modifier, path))
    }
}

/// The keys under which nginx's server-name hashes store `name`; two names sharing a key
/// conflict. `.example.org` stands for both `example.org` and `*.example.org`; names other
/// than regexes are compared lower-cased.
fn name_keys(name: &str) -> Vec<String> {
    if name.starts_with('~') {
        return vec![name.to_string()];
    }
    let name = name.to_ascii_lowercase();
    match name.strip_prefix('.') {
        Some(domain) => vec![domain.to_string(), format!("*.{domain}")],
        None => vec![name.to_string()],
    }
}

/// The requests asked of one config: hosts × URIs.
struct Corpus {
    /// `(None, uri)` is a request without a Host header.
    requests: Vec<(Option<String>, String)>,
}

impl Corpus {
    fn for_config(config: &Config, seed: u64) -> Corpus {
        let mut rng = Rng::new(seed ^ 0xC0FF_EE00);

        // Hosts: every host of the names in use, a few of names not in use, and the extras.
        let in_use: BTreeSet<&str> = config
            .servers
            .iter()
            .flat_map(|s| s.names.iter().map(String::as_str))
            .collect();
        let mut hosts: Vec<&str> = Vec::new();
        for spec in NAMES {
            if in_use.contains(spec.name) {
                hosts.extend(spec.hosts);
            }
        }
        for _ in 0..3 {
            hosts.extend(rng.pick(NAMES).hosts);
        }
        hosts.extend(EXTRA_HOSTS);
        let mut hosts = dedup(hosts.into_iter().map(str::to_string));
        rng.shuffle(&mut hosts);
        hosts.truncate(MAX_HOSTS);
        // Keep "no Host" in every corpus.
        if !hosts.iter().any(|h| h == "-") {
            hosts.push("-".into());
        }

        // URIs: the fixed list plus ones made from the config's own paths.
        let mut derived = Vec::new();
        for server in &config.servers {
            collect_paths(&server.locations, &mut derived);
        }
        let mut from_config = Vec::new();
        for path in derived {
            from_config.push(path.clone());
            from_config.push(format!("{path}z"));
            from_config.push(format!("{}/q.php", path.trim_end_matches('/')));
            from_config.push(path.to_ascii_uppercase());
        }
        let mut from_config = dedup(from_config.into_iter());
        rng.shuffle(&mut from_config);
        from_config.truncate(MAX_URIS / 2);
        let mut fixed: Vec<String> = URIS.iter().map(|s| s.to_string()).collect();
        rng.shuffle(&mut fixed);
        let mut uris = dedup(from_config.into_iter().chain(fixed));
        uris.truncate(MAX_URIS);

        let requests = hosts
            .iter()
            .flat_map(|h| {
                let host = (h != "-").then(|| h.clone());
                uris.iter().map(move |u| (host.clone(), u.clone()))
            })
            .collect();
        Corpus { requests }
    }
}

fn collect_paths(locations: &[Location], out: &mut Vec<String>) {
    for loc in locations {
        if matches!(
            loc.modifier,
            Modifier::Prefix | Modifier::NoRegex | Modifier::Exact
        ) {
            out.push(loc.path.clone());
        }
        collect_paths(&loc.children, out);
    }
}

/// Removes repeats, keeping the first of each.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.filter(|s| seen.insert(s.clone())).collect()
}

// ---------------------------------------------------------------------------------------
// The generator checks itself, without nginx or protonc.

#[test]
fn generator_is_deterministic() {
    let a = Generator::new(7).config().render(8080, false);
    let b = Generator::new(7).config().render(8080, false);
    assert_eq!(a, b);
    assert_ne!(a, Generator::new(8).config().render(8080, false));
}

#[test]
fn generator_covers_every_kind_and_respects_nginx_rules() {
    let mut modifiers = BTreeSet::new();
    let mut nested = BTreeSet::new();
    let mut name_kinds = BTreeSet::new();
    let (mut with_default, mut without_default, mut requests) = (0, 0, 0);
    let mut conflicting = 0;
    for seed in SEEDS {
        let config = Generator::new(seed).config();
        requests += Corpus::for_config(&config, seed).requests.len();
        match config.default {
            Some(_) => with_default += 1,
            None => without_default += 1,
        }
        assert!((2..=4).contains(&config.servers.len()));
        let mut names = BTreeSet::new();
        let mut clashed = false;
        for server in &config.servers {
            for name in &server.names {
                for key in name_keys(name) {
                    if !names.insert(key) {
                        assert!(
                            config.conflicts,
                            "seed {seed}: conflicting server name {name:?}"
                        );
                        clashed = true;
                    }
                }
                name_kinds.insert(match name.chars().next() {
                    None => "empty",
                    Some('~') => "regex",
                    Some('*') => "leading",
                    Some('.') => "dot",
                    _ if name.ends_with('*') => "trailing",
                    _ => "exact",
                });
            }
            check_level(&server.locations, None, &mut modifiers, &mut nested);
        }
        conflicting += usize::from(clashed);
    }
    assert!(
        conflicting >= 3,
        "only {conflicting} configs with conflicting server names"
    );
    assert_eq!(modifiers.len(), 6, "modifiers seen: {modifiers:?}");
    for pair in [
        (Modifier::Prefix, Modifier::Prefix),
        (Modifier::Prefix, Modifier::Exact),
        (Modifier::Prefix, Modifier::Regex),
        (Modifier::NoRegex, Modifier::Regex),
        (Modifier::Regex, Modifier::Regex),
    ] {
        assert!(
            nested.contains(&pair),
            "never nested {pair:?}; saw {nested:?}"
        );
    }
    assert_eq!(
        name_kinds.len(),
        6,
        "server name kinds seen: {name_kinds:?}"
    );
    assert!(with_default > 0 && without_default > 0);
    assert!(requests >= SEEDS.count() * 60, "only {requests} requests");
}

fn check_level(
    locations: &[Location],
    parent: Option<&Location>,
    modifiers: &mut BTreeSet<Modifier>,
    nested: &mut BTreeSet<(Modifier, Modifier)>,
) {
    let mut keys = BTreeSet::new();
    for loc in locations {
        modifiers.insert(loc.modifier);
        assert!(
            keys.insert(loc.modifier.duplicate_key(&loc.path)),
            "duplicate location {}",
            loc.path
        );
        if let Some(p) = parent {
            nested.insert((p.modifier, loc.modifier));
            assert!(!matches!(p.modifier, Modifier::Exact | Modifier::Named));
            assert_ne!(loc.modifier, Modifier::Named);
            if p.modifier.is_regex() {
                assert!(
                    loc.modifier.is_regex(),
                    "{} inside regex {}",
                    loc.path,
                    p.path
                );
            } else if !loc.modifier.is_regex() {
                assert!(
                    loc.path.starts_with(&p.path),
                    "{} outside {}",
                    loc.path,
                    p.path
                );
            }
        }
        check_level(&loc.children, Some(loc), modifiers, nested);
    }
}
