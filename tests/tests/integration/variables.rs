//! Built-in variables against nginx: the same server block runs in nginx and in Proton, and
//! every variable Proton implements must give nginx's value (paths with each server's prefix
//! replaced by `PREFIX`; per-request values such as `$request_id` or `$msec` by their shape and
//! how they relate).

use proton_tests::{keep_alive_exchange, nginx_binary, request, Nginx, Proton, TempDir};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The server block, for both (`PORT` is replaced by each one's port).
const SERVER: &str = r#"
    server {
        listen 127.0.0.1:PORT;
        root html/;
        set $x "[$document_root|$request_filename]";
        location /v { return 200 "dr=$document_root|fn=$request_filename|x=$x|ru=[$remote_user]|rl=$request_length|h=$hostname\n"; }
        location /img { alias /data/; return 200 "dr=$document_root|fn=$request_filename\n"; }
        location /a/ { alias /data/x; return 200 "dr=$document_root|fn=$request_filename\n"; }
        location ~ ^/re/(.*)$ { alias /data/$1; return 200 "dr=$document_root|fn=$request_filename\n"; }
        location /vr { root /srv/$host/; return 200 "dr=$document_root|fn=$request_filename\n"; }
        location = /bin { return 200 "$binary_remote_addr"; }
        location = /dyn {
            return 200 "$connection|$connection_requests|$request_id|$request_id|$pid|$msec|$date_gmt|$date_local|$time_iso8601|$connection_time";
        }
    }
"#;

/// The paths whose answers must be the same byte for byte.
const SAME: &[&str] = &[
    "/v/x?y=1",
    "/v",
    "/img/a.txt",
    "/a/b",
    "/re/zz",
    "/vr/q",
    "/bin",
];

struct Server {
    port: u16,
    prefix: String,
    /// The pid `$pid` must show.
    pid: u32,
}

impl Server {
    fn get(&self, path: &str) -> Vec<u8> {
        let r = request(self.port, Some("example.test"), path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status, 200, "GET {path}");
        r.body
    }

    /// The body with the server's prefix written `PREFIX`.
    fn normalised(&self, path: &str) -> Vec<u8> {
        let body = self.get(path);
        match String::from_utf8(body) {
            Ok(text) => text.replace(&self.prefix, "PREFIX").into_bytes(),
            Err(e) => e.into_bytes(),
        }
    }
}

/// Seconds since the epoch of `Weekday, DD-Mon-YYYY HH:MM:SS ZONE`, checking the weekday.
fn parse_date(s: &str, zone: &str) -> u64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let (day, rest) = s.split_once(", ").unwrap_or_else(|| panic!("{s:?}"));
    let rest = rest
        .strip_suffix(&format!(" {zone}"))
        .unwrap_or_else(|| panic!("{s:?} does not end in {zone}"));
    let (date, time) = rest.split_once(' ').unwrap_or_else(|| panic!("{s:?}"));
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<u64> = time
        .split(':')
        .map(|x| x.parse().expect("a number"))
        .collect();
    assert!(d.len() == 3 && t.len() == 3 && d[0].len() == 2, "{s:?}");
    let (dd, yy): (i64, i64) = (d[0].parse().expect("day"), d[2].parse().expect("year"));
    let mm = MONTHS.iter().position(|m| *m == d[1]).expect("a month") as i64 + 1;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mm <= 2 { yy - 1 } else { yy };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mm + 9) % 12) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    assert_eq!(DAYS[days.rem_euclid(7) as usize], day, "weekday of {s:?}");
    days as u64 * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]
}

/// The per-request values of `/dyn`: shapes, and how they relate to each other.
fn check_dynamic(who: &str, s: &Server) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = String::from_utf8_lossy(&s.get("/dyn")).into_owned();
    let f: Vec<&str> = body.split('|').collect();
    assert_eq!(f.len(), 10, "{who}: {body}");
    assert_eq!(f[1], "1", "{who}: $connection_requests of a new connection");
    let id = f[2];
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{who}: $request_id {id:?}"
    );
    assert_eq!(f[3], id, "{who}: one $request_id per request");
    assert_eq!(f[4], s.pid.to_string(), "{who}: $pid");
    let (secs, ms) = f[5].split_once('.').expect("$msec is seconds.millis");
    assert_eq!(ms.len(), 3, "{who}: $msec {}", f[5]);
    let secs: u64 = secs.parse().expect("$msec seconds");
    assert!(secs.abs_diff(now) <= 60, "{who}: $msec {secs} vs {now}");
    assert!(
        parse_date(f[6], "GMT").abs_diff(secs) <= 1,
        "{who}: {}",
        f[6]
    );
    // Both run in UTC (the test machine's zone; Proton's local time is always UTC).
    assert!(
        parse_date(f[7], "UTC").abs_diff(secs) <= 1,
        "{who}: {}",
        f[7]
    );
    assert_eq!(
        f[8].len(),
        "2026-11-25T22:58:00+00:00".len(),
        "{who}: {}",
        f[8]
    );
    assert!(f[8].ends_with("+00:00"), "{who}: {}", f[8]);
    // $connection_time: seconds with milliseconds since the connection was accepted.
    let (secs, ms) = f[9]
        .split_once('.')
        .expect("$connection_time is seconds.millis");
    assert!(
        secs.parse::<u64>().is_ok() && ms.len() == 3 && ms.bytes().all(|b| b.is_ascii_digit()),
        "{who}: $connection_time {}",
        f[9]
    );

    // $connection: the same on one connection, the next number on the next one;
    // $connection_requests counts the requests of the connection.
    let req: &[u8] = b"GET /dyn HTTP/1.1\r\nHost: example.test\r\n\r\n";
    let rs = keep_alive_exchange(s.port, &[req, req]).expect("keep-alive exchange");
    assert_eq!(rs.len(), 2, "{who}");
    let fields = |r: &proton_tests::Response| {
        let t = r.body_text();
        let v: Vec<String> = t.split('|').map(str::to_string).collect();
        (
            v[0].parse::<u64>().expect("$connection"),
            v[1].clone(),
            v[2].clone(),
        )
    };
    let (c1, n1, id1) = fields(&rs[0]);
    let (c2, n2, id2) = fields(&rs[1]);
    assert_eq!((c1, n1.as_str(), n2.as_str()), (c2, "1", "2"), "{who}");
    assert_ne!(id1, id2, "{who}: $request_id differs between requests");
    let next = request(s.port, Some("example.test"), "/dyn").expect("GET /dyn");
    let (c3, _, id3) = fields(&next);
    assert_eq!(c3, c1 + 1, "{who}: the next connection's $connection");
    assert!(id3 != id1 && id3 != id2, "{who}");
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[test]
fn builtin_variables_match_nginx() {
    let Some(bin) = nginx_binary() else {
        return;
    };
    let nginx = Nginx::start(&bin, |port| SERVER.replace("PORT", &port.to_string()));
    // master_process off: the one nginx process answers; its $pid must be an nginx process.
    let ngx_pid = {
        let body = String::from_utf8_lossy(
            &request(nginx.port(), Some("example.test"), "/dyn")
                .expect("GET /dyn")
                .body,
        )
        .into_owned();
        body.split('|')
            .nth(4)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    let comm = std::fs::read_to_string(format!("/proc/{ngx_pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "nginx", "$pid {ngx_pid} is not nginx's");
    let ngx = Server {
        port: nginx.port(),
        prefix: nginx.dir().display().to_string(),
        pid: ngx_pid,
    };

    let t = TempDir::new("variables");
    let conf = format!(
        "events {{}}\nhttp {{\n{}\n}}\n",
        SERVER.replace("PORT", "{port}")
    );
    let proton = Proton::start(t.path(), &conf, 1);
    let pro = Server {
        port: proton.port,
        prefix: canonical(t.path()),
        pid: proton.the_worker(),
    };

    for path in SAME {
        let want = ngx.normalised(path);
        let got = pro.normalised(path);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "GET {path}: Proton (left) and nginx (right) differ"
        );
    }
    assert_eq!(pro.get("/bin"), [127, 0, 0, 1], "$binary_remote_addr");
    check_dynamic("nginx", &ngx);
    check_dynamic("proton", &pro);
}

#[test]
fn realpath_root_resolves_links_as_nginx() {
    let t = TempDir::new("realpath-root");
    std::fs::create_dir_all(t.path().join("real/www")).expect("dirs");
    std::os::unix::fs::symlink(t.path().join("real/www"), t.path().join("current"))
        .expect("symlink");
    let body = "return 200 \"root=$document_root real=$realpath_root early=[$ssl_early_data]\\n\";";
    let conf = format!(
        "events {{}}\nhttp {{ server {{ listen 127.0.0.1:{{port}}; root {{dir}}/current;
           location / {{ {body} }}
           location /gone/ {{ root {{dir}}/missing; {body} }} }} }}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let dir = canonical(t.path());
    let got = request(p.port, None, "/x").expect("request").body_text();
    let real = canonical(&t.path().join("real/www"));
    assert_eq!(
        got,
        format!("root={}/current real={real} early=[]\n", t.path().display())
    );
    assert!(real.starts_with(&dir));
    // A root that does not exist: empty, as nginx's failed realpath().
    let got = request(p.port, None, "/gone/x")
        .expect("request")
        .body_text();
    assert!(got.contains(" real= "), "{got}");
}
