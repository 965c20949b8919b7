//! PHP-FPM (Debian's `php-fpm`) behind `fastcgi_pass`, configured with Debian's own
//! `fastcgi.conf`, `fastcgi_params` and `snippets/fastcgi-php.conf` (copied unchanged from
//! `/etc/nginx` into the test's directory at run time): PATH_INFO, a missing script, uploads,
//! X-Accel-Redirect, large answers and keep-alive connections to the pool.

use proton_tests::{raw_exchange, wait_until, Proton, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::fastcgi::{get, params_of as vars};
use super::request_body::{conf, send};

/// Debian's php-fpm (`PROTON_PHP_FPM` overrides). `None` only with `PROTON_SKIP_PHP=1`: CI
/// installs it, so a missing one fails otherwise.
fn php_fpm_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROTON_PHP_FPM") {
        return Some(PathBuf::from(p));
    }
    let found = std::fs::read_dir("/usr/sbin").ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("php-fpm"))
            })
            .max()
    });
    if found.is_some() {
        return found;
    }
    if std::env::var("PROTON_SKIP_PHP").as_deref() == Ok("1") {
        eprintln!("php-fpm not found; skipped (PROTON_SKIP_PHP=1)");
        return None;
    }
    panic!("php-fpm not found in /usr/sbin: apt-get install php-fpm, or set PROTON_SKIP_PHP=1");
}

/// A php-fpm master with two children on a unix socket in `dir`; stopped on drop.
struct PhpFpm {
    child: Child,
    socket: PathBuf,
}

impl PhpFpm {
    fn start(bin: &Path, dir: &Path) -> PhpFpm {
        let socket = dir.join("php.sock");
        let conf = dir.join("fpm.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\nerror_log = {dir}/fpm.log\ndaemonize = no\n\
                 [www]\nlisten = {sock}\npm = static\npm.max_children = 2\n\
                 catch_workers_output = yes\n",
                dir = dir.display(),
                sock = socket.display()
            ),
        )
        .expect("fpm.conf");
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        let mut cmd = Command::new(bin);
        cmd.arg("-n").arg("-F").arg("-y").arg(&conf);
        if root {
            // (php-fpm refuses to run as root without it.)
            cmd.arg("-R");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php-fpm starts");
        let mut fpm = PhpFpm { child, socket };
        let up = wait_until(Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&fpm.socket).is_ok()
        });
        if !up {
            let _ = fpm.child.kill();
            panic!(
                "php-fpm did not listen within 20 s:\n{}",
                std::fs::read_to_string(dir.join("fpm.log")).unwrap_or_default()
            );
        }
        fpm
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// php-fpm, the PHP scripts, Debian's FastCGI snippets and Proton in front of them.
fn site(label: &str) -> Option<(TempDir, PhpFpm, Proton)> {
    let bin = php_fpm_binary()?;
    let t = TempDir::new(label);
    let www = t.path().join("www");
    std::fs::create_dir_all(www.join("files")).expect("www");
    for (name, php) in [
        (
            "info.php",
            "<?php header('X-Php: yes');\n\
             foreach (['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'REQUEST_METHOD', \
             'QUERY_STRING', 'REQUEST_URI', 'DOCUMENT_ROOT', 'HTTP_HOST'] as $k) \
             { echo $k, '=', $_SERVER[$k] ?? '-', \"\\n\"; }\n",
        ),
        (
            "upload.php",
            "<?php foreach ($_FILES as $f) { echo $f['name'], ' ', $f['size'], ' ', \
             md5_file($f['tmp_name']), \"\\n\"; } echo 'field=', $_POST['field'] ?? '-', \"\\n\";\n",
        ),
        ("accel.php", "<?php header('X-Accel-Redirect: /files/static.txt');\n"),
        ("teapot.php", "<?php http_response_code(418); echo \"short and stout\\n\";\n"),
        ("big.php", "<?php echo str_repeat('0123456789', 100000);\n"),
        ("warn.php", "<?php error_log('careful now'); echo \"done\\n\";\n"),
    ] {
        std::fs::write(www.join(name), php).expect("script");
    }
    std::fs::write(www.join("files/static.txt"), "a static file\n").expect("static");
    // Debian's files, unchanged.
    std::fs::create_dir_all(t.path().join("snippets")).expect("snippets");
    for f in [
        "fastcgi.conf",
        "fastcgi_params",
        "snippets/fastcgi-php.conf",
    ] {
        let from = Path::new("/etc/nginx").join(f);
        std::fs::copy(&from, t.path().join(f))
            .unwrap_or_else(|e| panic!("{}: {e} (Debian's nginx-common has it)", from.display()));
    }
    let fpm = PhpFpm::start(&bin, t.path());
    let c = conf(&format!(
        "upstream php {{ server unix:{sock}; keepalive 4; }}
         server {{ listen 127.0.0.1:{{port}}; root {{dir}}/www; index index.php;
           client_max_body_size 10m;
           location ~ \\.php(/|$) {{
             include {{dir}}/snippets/fastcgi-php.conf;
             fastcgi_pass php;
             fastcgi_keep_conn on;
           }}
           location /files/ {{ internal; }}
         }}",
        sock = fpm.socket.display()
    ));
    let p = Proton::start(t.path(), &c, 1);
    Some((t, fpm, p))
}

#[test]
fn php_fpm_serves_scripts_with_path_info_through_debians_snippets() {
    let Some((t, _fpm, p)) = site("php-info") else {
        return;
    };
    let r = get(&p, "/info.php/extra/path?a=1&b=2");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("X-Php"), Some("yes"));
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    let v = vars(&r);
    let root = t.path().join("www");
    assert_eq!(v["SCRIPT_NAME"], "/info.php");
    assert_eq!(v["SCRIPT_FILENAME"], format!("{}/info.php", root.display()));
    assert_eq!(
        v["PATH_INFO"], "/extra/path",
        "set $path_info before try_files"
    );
    assert_eq!(v["QUERY_STRING"], "a=1&b=2");
    assert_eq!(v["REQUEST_URI"], "/info.php/extra/path?a=1&b=2");
    assert_eq!(v["HTTP_HOST"], "app.test");
    // try_files $fastcgi_script_name =404: no such script.
    assert_eq!(get(&p, "/missing.php").status, 404);
    // A status from the script, and its error stream in Proton's log.
    let r = get(&p, "/teapot.php");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (418, "short and stout\n")
    );
    assert_eq!(get(&p, "/warn.php").status, 200);
    let log = std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        log.contains("FastCGI sent in stderr: \"PHP message: careful now\""),
        "{log}"
    );
}

#[test]
fn php_fpm_takes_uploads_and_answers_large_bodies() {
    let Some((_t, _fpm, p)) = site("php-upload") else {
        return;
    };
    let file: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let boundary = "proton-boundary-1234";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"data.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut raw = format!(
        "POST /upload.php HTTP/1.1\r\nHost: php.test\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = send(&p, &raw);
    assert_eq!(r.status, 200, "{}", p.logs());
    let md5 = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&file)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let md5 = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        r.body_text(),
        format!("data.bin 300000 {md5}\nfield=value\n"),
        "{}",
        p.logs()
    );
    let r = get(&p, "/big.php");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 1_000_000);
    assert!(r.body.starts_with(b"0123456789") && r.body.ends_with(b"0123456789"));
}

#[test]
fn php_fpm_redirects_internally_and_keeps_connections() {
    let Some((_t, _fpm, p)) = site("php-accel") else {
        return;
    };
    let r = get(&p, "/accel.php");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "a static file\n"),
        "{}",
        p.logs()
    );
    // Many requests on one client connection, over kept connections to the pool.
    let mut raw = Vec::new();
    for i in 0..50 {
        raw.extend_from_slice(
            format!("GET /info.php?n={i} HTTP/1.1\r\nHost: php.test\r\n\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(
        b"GET /info.php?n=last HTTP/1.1\r\nHost: php.test\r\nConnection: close\r\n\r\n",
    );
    let (out, _) = raw_exchange(p.port, &raw, Duration::from_secs(60));
    // (Chunked answers: counted by their heads.)
    let text = String::from_utf8_lossy(&out);
    assert_eq!(
        text.matches("HTTP/1.1 200 OK\r\n").count(),
        51,
        "{}",
        p.logs()
    );
    assert_eq!(text.matches("\r\nX-Php: yes\r\n").count(), 51);
    assert!(text.contains("QUERY_STRING=n=0\n") && text.contains("QUERY_STRING=n=last\n"));
    assert!(text.ends_with("0\r\n\r\n"), "the last answer whole");
}
