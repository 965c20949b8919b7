//! Config as code: `protonc test` against a file of expected answers, `protonc route --batch`,
//! and `protonc diff` in its three formats, each run as a real `protonc` process on files in a
//! private temp dir. Reports are compared with insta snapshots in `snapshots/config_as_code/`
//! (accept changes with `INSTA_UPDATE=always cargo test -p proton-compiler --test
//! config_as_code`).

mod support;

use std::path::Path;
use std::process::Output;
use support::{protonc, tmpdir, write};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Output with the temp dir's path replaced, so snapshots do not depend on it.
fn anonymous(text: &str, dir: &Path) -> String {
    text.replace(&format!("{}/", dir.display()), "")
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({snapshot_path => "../../snapshots/config_as_code", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, text);
    });
}

const SITE: &str = r#"events {}
http {
    upstream app {
        server 127.0.0.1:9001;
        server 127.0.0.1:9002 weight=3;
    }
    server {
        listen 127.0.0.1:8080 default_server;
        server_name example.com *.example.com;
        add_header X-Site main;
        location = / { return 200 "home"; }
        location / { root /srv/www; }
        location ^~ /images/ {
            root /srv/img;
            expires 7d;
        }
        location ~* \.(png|jpg)$ { return 403; }
        location /api/ { proxy_pass http://app/v1/; }
        location /old/ { rewrite ^/old/(.*)$ /api/$1 last; }
        location = /moved { return 301 https://example.com/new; }
    }
    server {
        listen 127.0.0.1:8080;
        server_name admin.example.com;
        location / { return 200 "admin"; }
    }
}
"#;

const EXPECT: &str = r#"# What the site answers.
GET http://www.example.com/
server example.com
location = /
handler return 200 "home"
status 200
header X-Site: main

GET http://example.com/images/a.png
location ^~ /images/
handler static
header Cache-Control: max-age=604800

GET http://example.com/api/orders?id=1
H: Cookie: beta=yes
location /api/
upstream app
handler proxy_pass http://app/v1/

GET http://example.com/old/orders
location /api/
uri /api/orders

GET http://example.com/moved
handler return 301
status 301

GET http://admin.example.com/
server admin.example.com
handler return 200 "admin"
"#;

/// The same config with comments, blank lines, the server blocks swapped back and forth, the
/// upstream after the servers, and the locations in another order (regex locations keep their
/// order: it matters).
const SITE_MOVED: &str = r#"# The site, rearranged: nothing here changes an answer.
events {}

http {
    server {
        listen 127.0.0.1:8080 default_server;   # the default server stays the default

        server_name example.com *.example.com;
        add_header X-Site main;

        location = /moved { return 301 https://example.com/new; }
        location /old/ {
            # an old path
            rewrite ^/old/(.*)$ /api/$1 last;
        }
        location /api/ { proxy_pass http://app/v1/; }
        location ^~ /images/ {
            expires 7d;
            root /srv/img;
        }
        location ~* \.(png|jpg)$ { return 403; }
        location / { root /srv/www; }
        location = / { return 200 "home"; }
    }

    server {
        listen 127.0.0.1:8080;
        server_name admin.example.com;
        location / { return 200 "admin"; }
    }

    upstream app {
        server 127.0.0.1:9001;

        server 127.0.0.1:9002 weight=3;
    }
}
"#;

#[test]
fn test_passes_on_matching_answers() {
    let d = tmpdir("pass");
    let conf = write(&d, "site.conf", SITE);
    let expect = write(&d, "site.expect", EXPECT);
    let out = protonc(&["test", &conf, &expect]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "6 requests answered as expected\n");
    // An IR file answers the same.
    let ir = d.join("site.ir").display().to_string();
    assert!(protonc(&["compile", &conf, "-o", &ir]).status.success());
    let out = protonc(&["test", &ir, &expect]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn test_reports_a_moved_location_and_a_changed_return() {
    let d = tmpdir("changed");
    let changed = SITE
        // /images/ no longer stops the regexes: a .png now reaches the regex location.
        .replace("location ^~ /images/ {", "location /images/ {")
        .replace(
            "return 301 https://example.com/new",
            "return 302 https://example.com/new",
        );
    let conf = write(&d, "site.conf", &changed);
    let expect = write(&d, "site.expect", EXPECT);
    let out = protonc(&["test", &conf, &expect]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = anonymous(&stdout(&out), &d);
    assert!(
        report.contains("-location ^~ /images/\n+location ~* \\.(png|jpg)$\n"),
        "{report}"
    );
    assert!(report.contains("-status 301\n+status 302\n"), "{report}");
    snapshot("test_report_moved_location_changed_return", &report);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn malformed_expect_exits_2_with_file_and_line() {
    let d = tmpdir("malformed");
    let conf = write(&d, "site.conf", SITE);
    let expect = write(
        &d,
        "bad.expect",
        "# comment\nGET http://example.com/\nlcation /\nstatus 20x\nGET example.com/\nheader nocolon\n",
    );
    let out = protonc(&["test", &conf, &expect]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = anonymous(&stderr(&out), &d);
    snapshot("test_malformed_expect", &err);
    assert!(
        err.contains("error: bad.expect:3: unknown key \"lcation\" (did you mean \"location\"?)"),
        "{err}"
    );
    assert!(err.contains("error: bad.expect:4: status \"20x\""), "{err}");
    assert!(
        err.contains("error: bad.expect:5: URL \"example.com/\""),
        "{err}"
    );
    // A key before any request.
    let expect = write(&d, "early.expect", "server example.com\n");
    let out = protonc(&["test", &conf, &expect]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("early.expect:1:"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn comments_moves_and_renames_change_no_answer() {
    let d = tmpdir("stable");
    let a = write(&d, "site.conf", SITE);
    let b = write(&d, "renamed-and-moved.conf", SITE_MOVED);
    let batch = write(
        &d,
        "batch.txt",
        "example.com /\nwww.example.com /images/a.png\n- /x.jpg\nadmin.example.com /\nPOST http://example.com/old/x\nH: Cookie: a=1\n",
    );
    let routed = |conf: &str, extra: &[&str]| -> String {
        let mut args = vec!["route", conf, "--batch", batch.as_str()];
        args.extend_from_slice(extra);
        let out = protonc(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let text = routed(&a, &[]);
    assert_eq!(text, routed(&b, &[]));
    assert_eq!(routed(&a, &["--json"]), routed(&b, &["--json"]));
    // Every line starts with its request; no file:line unless asked.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("example.com / => server example.com (exact), location = / (exact)"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("POST http://example.com/old/x => "),
        "{text}"
    );
    assert!(lines[4].ends_with(", uri /api/x"), "{text}");
    assert!(!text.contains("site.conf"), "{text}");
    let with_lines = routed(&a, &["--with-lines"]);
    assert!(with_lines.contains(" at "), "{with_lines}");
    assert!(with_lines.contains("site.conf:11"), "{with_lines}");

    // `test`: the same report, passing or not.
    let expect = write(&d, "site.expect", EXPECT);
    for conf in [&a, &b] {
        let out = protonc(&["test", conf, &expect]);
        assert_eq!(out.status.code(), Some(0), "{conf}: {}", stdout(&out));
    }
    let wrong = write(
        &d,
        "wrong.expect",
        &EXPECT.replace("status 301", "status 308"),
    );
    let ra = protonc(&["test", &a, &wrong]);
    let rb = protonc(&["test", &b, &wrong]);
    assert_eq!(ra.status.code(), Some(1));
    assert_eq!(stdout(&ra), stdout(&rb));
    // `diff` finds no change in meaning.
    let out = protonc(&["diff", &a, &b]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn update_writes_the_current_answers() {
    let d = tmpdir("update");
    let conf = write(&d, "site.conf", SITE);
    let requests = "# Requests only: protonc fills in the answers.\nGET http://www.example.com/\nGET http://example.com/images/a.png\n\n# A rewrite.\nGET http://example.com/old/orders\nGET /nowhere/../../x\nGET http://example.com/moved\nlocation = /moved\nat somewhere.conf:1\n";
    let expect = write(&d, "site.expect", requests);
    let out = protonc(&["test", &conf, &expect, "--update"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(&expect).expect("updated");
    snapshot("test_update_bootstrap", &written);
    // The file it wrote passes, and a second update changes nothing.
    let out = protonc(&["test", &conf, &expect]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(protonc(&["test", &conf, &expect, "--update"])
        .status
        .success());
    assert_eq!(std::fs::read_to_string(&expect).expect("again"), written);
    // With --with-lines, `at` is written and checked.
    assert!(
        protonc(&["test", &conf, &expect, "--update", "--with-lines"])
            .status
            .success()
    );
    let lines = std::fs::read_to_string(&expect).expect("with lines");
    assert!(lines.contains("at "), "{lines}");
    assert!(!lines.contains("somewhere.conf"), "{lines}");
    let out = protonc(&["test", &conf, &expect, "--with-lines"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&d);
}

/// The B side of the diff: expires 7d → 30d, a peer added, a weight changed, a new location
/// that takes requests from /api/, and /old/ gone.
fn site_b() -> String {
    SITE.replace("expires 7d;", "expires 30d;")
        .replace(
            "server 127.0.0.1:9002 weight=3;",
            "server 127.0.0.1:9002 weight=5;\n        server 127.0.0.1:9003 max_fails=3 fail_timeout=30s;",
        )
        .replace(
            "location /api/ { proxy_pass http://app/v1/; }",
            "location /api/ { proxy_pass http://app/v1/; }\n        location /api/v2/ { proxy_pass http://app/v2/; }",
        )
        .replace("location /old/ { rewrite ^/old/(.*)$ /api/$1 last; }\n", "")
}

#[test]
fn diff_shows_a_changed_split() {
    let d = tmpdir("diff-split");
    let conf = |share: &str| {
        format!(
            "events {{}}\nhttp {{ split_clients \"${{remote_addr}}x\" $v {{ {share} a; * b; }} \
             server {{ listen 127.0.0.1:8080; return 200 $v; }} }}\n"
        )
    };
    let a = write(&d, "a.conf", &conf("51.2%"));
    let b = write(&d, "b.conf", &conf("40%"));
    let out = protonc(&["diff", &a, &b]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "~ map $v split_clients ${remote_addr}x { 51.20% a; * b; } -> split_clients ${remote_addr}x { 40.00% a; * b; }"
        ),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn diff_in_three_formats() {
    let d = tmpdir("diff");
    let a = write(&d, "a.conf", SITE);
    let b = write(&d, "b.conf", &site_b());
    let run = |format: &str| -> String {
        let out = protonc(&["diff", &a, &b, "--format", format]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stdout(&out)
    };
    let text = run("text");
    for want in [
        "upstream app\n",
        "  ~ server 127.0.0.1:9002 weight=3 -> weight=5\n",
        "  + server 127.0.0.1:9003 weight=1 max_fails=3 fail_timeout=30s\n",
        "  ~ location ^~ /images/: expires 7d -> 30d\n",
        "  + location /api/v2/ (proxy_pass http://app/v2/)\n",
        "  - location /old/ (rewrite ^/old/(.*)$ /api/$1 last)\n",
        "  GET http://example.com:8080/api/v2/x\n      before: location /api/; handler proxy_pass http://app/v1/\n      after:  location /api/v2/; handler proxy_pass http://app/v2/\n",
        "  GET http://www.example.com:8080/images/x\n      before: header Cache-Control: max-age=604800\n      after:  header Cache-Control: max-age=2592000\n",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    snapshot("diff_text", &text);
    let md = run("markdown");
    assert!(
        md.contains("| changed |  | `server 127.0.0.1:9002` | `weight=3` | `weight=5` |"),
        "{md}"
    );
    snapshot("diff_markdown", &md);
    let json = run("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("diff JSON");
    assert_eq!(v["different"], true);
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    assert!(changes.iter().any(|c| c["what"] == "peer"
        && c["change"] == "added"
        && c["subject"] == "server 127.0.0.1:9003"));
    assert!(changes.iter().any(|c| c["what"] == "request"));
    snapshot("diff_json", &json);

    // A request corpus of one's own: each request lists what changed in its answer.
    let requests = write(
        &d,
        "requests.expect",
        "GET http://example.com/images/photo\nGET http://example.com/api/v2/orders\nGET http://example.com/old/orders\nGET http://example.com/moved\n",
    );
    let out = protonc(&["diff", &a, &b, "--requests", &requests]);
    let text = stdout(&out);
    assert!(
        text.contains("requests answered differently (3 of 4 routed)"),
        "{text}"
    );
    assert!(
        text.contains("  GET http://example.com/old/orders\n      before: location /api/; handler proxy_pass http://app/v1/; upstream app; uri /api/orders\n      after:  location /; handler static root /srv/www; upstream -; uri /old/orders\n"),
        "{text}"
    );
    snapshot("diff_text_requests", &text);
    // expires in the config's own units, where the location stays.
    let c = write(&d, "c.conf", &SITE.replace("expires 7d;", "expires 30d;"));
    let out = protonc(&["diff", &a, &c]);
    let text = stdout(&out);
    assert!(
        text.contains("  ~ location ^~ /images/: expires 7d -> 30d\n"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
