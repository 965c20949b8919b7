//! The `protonc` binary end to end: compile, check, inspect, route, diff, exit codes, and the
//! IR file guards, each in a private temp dir.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{protonc, tmpdir, write};

const CONF: &str = r#"
events {}
http {
    upstream backend { server 127.0.0.1:9001; server 127.0.0.1:9002 weight=3; }
    server {
        listen 127.0.0.1:8080 default_server;
        server_name example.com *.example.com;
        location = / { return 200 "exact"; }
        location / { return 200 "prefix"; }
        location ^~ /static/ { root /srv; }
        location ~ \.php$ { proxy_pass http://backend; }
        location /api/ { proxy_pass http://backend/v1/; }
    }
}
"#;

#[test]
fn compile_inspect_route() {
    let d = tmpdir("route");
    let conf = write(&d, "p.conf", CONF);
    let ir = d.join("p.ir").display().to_string();
    let out = protonc(&["compile", &conf, "-o", &ir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&ir).expect("IR written");
    assert!(bytes.starts_with(b"PROTONIR"));

    let out = protonc(&["inspect", &ir]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(v["ir"]["servers"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["source_digest"].as_str().map(str::len), Some(64));

    for (file, uri, kind, reason) in [
        (&ir, "/", "exact", "exact"),
        (&conf, "/x", "prefix", "longest prefix"),
        (&ir, "/static/a.php", "prefix_no_regex", "prefix ^~"),
        (&ir, "/a/b.php", "regex", "regex #0"),
        (&ir, "/api/x", "prefix", "longest prefix"),
    ] {
        let out = protonc(&[
            "route",
            file,
            "--host",
            "www.example.com",
            "--json",
            "GET",
            uri,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("route JSON");
        assert_eq!(v["location_kind"], kind, "{uri}: {v}");
        assert_eq!(v["reason"], reason, "{uri}: {v}");
        assert_eq!(v["server_match"], "leading_wildcard");
    }
    let out = protonc(&["route", &ir, "GET", "/api/x"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("proxy_pass http://backend/v1/"), "{text}");
    let out = protonc(&["route", &ir, "GET", "/../etc/passwd"]);
    assert!(!out.status.success());
}

#[test]
fn diff_reports_routing_changes() {
    let d = tmpdir("diff");
    let a = write(&d, "a.conf", CONF);
    let b = write(
        &d,
        "b.conf",
        &CONF
            .replace("return 200 \"prefix\"", "return 200 \"changed\"")
            .replace("location ^~ /static/ { root /srv; }", ""),
    );
    let out = protonc(&["diff", &a, &a]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no routing differences"));
    let out = protonc(&["diff", &a, &b]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server \"example.com\"\n")
            && text.contains("  - location ^~ /static/ (static root /srv)\n"),
        "{text}"
    );
    assert!(
        text.contains("  ~ location /: rewrite phase return 200 prefix -> return 200 changed\n"),
        "{text}"
    );
    // The request that moved, with what changed in its answer.
    assert!(
        text.contains(
            "  GET http://example.com:8080/static/x\n      before: location ^~ /static/; handler static root /srv; status -\n      after:  location /; handler return 200 \"changed\"; status 200\n"
        ),
        "{text}"
    );
}

#[test]
fn errors_exit_nonzero_with_positions() {
    let d = tmpdir("errors");
    let conf = write(&d, "bad.conf", "events {}\nhttp {\n  server {\n    listen 8080;\n    rooot /x;\n    sendfile maybe;\n  }\n}\n");
    let out = protonc(&["check", &conf]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[E0002]: unknown directive \"rooot\""),
        "{err}"
    );
    assert!(err.contains("bad.conf:5:5"), "{err}");
    assert!(err.contains("did you mean \"root\"?"), "{err}");
    assert!(
        err.contains("bad.conf:6:14"),
        "both errors in one run: {err}"
    );
    let out = protonc(&["check", "--message-format", "json", &conf]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 5);
    assert_eq!(lines[0]["column"], 5);
    assert_eq!(lines[1]["code"], "E0006");
    // No IR is written for a config that does not compile.
    let out = protonc(&["compile", &conf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.join("bad.ir").exists());
}

#[test]
fn damaged_ir_is_refused() {
    let d = tmpdir("damaged");
    let conf = write(&d, "p.conf", CONF);
    let ir = d.join("p.ir");
    assert!(
        protonc(&["compile", &conf, "-o", &ir.display().to_string()])
            .status
            .success()
    );
    let bytes = std::fs::read(&ir).expect("IR");
    let newer = format!("version {}", proton_ir::FORMAT_VERSION + 1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "magic",
            b"NOTANIR!rest of the file".to_vec(),
            "not a Proton IR",
        ),
        (
            "version",
            {
                // A version this build does not read: one past its own.
                let mut b = bytes.clone();
                b[8..12].copy_from_slice(&(proton_ir::FORMAT_VERSION + 1).to_le_bytes());
                b
            },
            &newer,
        ),
        (
            "checksum",
            {
                let mut b = bytes.clone();
                let n = b.len() - 3;
                b[n] ^= 1;
                b
            },
            "checksum",
        ),
    ];
    for (name, data, want) in cases {
        let p = d.join(format!("{name}.ir"));
        std::fs::write(&p, data).expect("write");
        let out = protonc(&["inspect", &p.display().to_string()]);
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn route_follows_the_rewrite_phase() {
    // Answers checked against nginx 1.22 with the same server blocks.
    let d = tmpdir("rewrite");
    let conf = write(
        &d,
        "r.conf",
        r#"events {}
http {
  server {
    listen 8080;
    rewrite ^/old/(.*)$ /new/$1 last;
    rewrite ^/go$ https://example.com/$host permanent;
    location /new/ { return 200 "new"; }
    location /a/ { rewrite ^/a/(?<rest>.*)$ /b/$rest last; }
    location /b/ { return 200 "b"; }
    location /nf/ { rewrite ^/nf/(.*) /b/$1; }
    location /brk/ { rewrite ^/brk/(.*) /c/$1 break; return 200 "never"; }
    location /loop/ { rewrite ^ /loop/x last; }
  }
  server { listen 8081; return 301 https://$host$request_uri; }
}
"#,
    );
    let route = |port: &str, uri: &str| -> serde_json::Value {
        let out = protonc(&["route", &conf, "--port", port, "--json", "GET", uri]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("route JSON")
    };
    for (uri, location, code, text, rewritten) in [
        ("/old/x", "/new/", Some(200u16), Some("new"), Some("/new/x")),
        ("/a/q", "/b/", Some(200), Some("b"), Some("/b/q")),
        ("/nf/y", "/b/", Some(200), Some("b"), Some("/b/y")),
        ("/brk/z", "/brk/", None, None, Some("/c/z")),
        (
            "/go",
            "",
            Some(301),
            Some("https://example.com/$host"),
            None,
        ),
        ("/loop/", "", Some(500), None, Some("/loop/x")),
        ("/b/", "/b/", Some(200), Some("b"), None),
    ] {
        let v = route("8080", uri);
        assert_eq!(v["location"], location, "{uri}: {v}");
        assert_eq!(
            v["return"]["code"].as_u64(),
            code.map(u64::from),
            "{uri}: {v}"
        );
        assert_eq!(v["return"]["text"].as_str(), text, "{uri}: {v}");
        assert_eq!(v["rewritten"].as_str(), rewritten, "{uri}: {v}");
    }
    assert_eq!(route("8080", "/brk/z")["handler"], "static root html");
    // A server-level return answers before any location is chosen.
    let v = route("8081", "/x");
    assert_eq!(v["location_kind"], "server");
    assert_eq!(v["return"]["code"], 301);
    assert_eq!(v["handler"], "return 301 \"https://$host$request_uri\"");
    let out = protonc(&["route", &conf, "GET", "/old/x"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rewritten to /new/x by ") && text.contains("r.conf:5"),
        "{text}"
    );
}

#[test]
fn a_config_without_command_is_compiled() {
    let d = tmpdir("bare");
    let conf = write(&d, "p.conf", CONF);
    let bare = d.join("bare.ir").display().to_string();
    let out = protonc(&[&conf, "-o", &bare]);
    assert!(
        out.status.success(),
        "protonc CONFIG -o FILE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explicit = d.join("explicit.ir").display().to_string();
    let out = protonc(&["compile", &conf, "-o", &explicit]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(&bare).expect("IR written"),
        std::fs::read(&explicit).expect("IR written"),
        "`protonc CONFIG` and `protonc compile CONFIG` write the same IR"
    );
    // Without -o: next to the config.
    let out = protonc(&[&conf]);
    assert!(out.status.success());
    assert!(d.join("p.ir").is_file());
    // A broken config fails the same way, with its diagnostics.
    let bad = write(&d, "bad.conf", "events {}\nhttp { server { lisen 80; } }\n");
    let out = protonc(&[&bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0002"));
    // Nothing at all: a usage error that shows both forms.
    let out = protonc(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("protonc <CONFIG>") && err.contains("<COMMAND>"),
        "{err}"
    );
}

#[test]
fn version_and_compile_help() {
    for flag in ["-V", "--version"] {
        let out = protonc(&[flag]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(&format!("protonc {}", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
    }
    let long = String::from_utf8_lossy(&protonc(&["--version"]).stdout).to_string();
    assert!(
        long.contains(&format!("IR format v{}", proton_ir::FORMAT_VERSION)),
        "{long}"
    );
    let out = protonc(&["compile", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for what in [
        "<CONFIG>  The config to compile",
        "-o, --output <FILE.ir>",
        "default: CONFIG with extension .ir",
        "--message-format",
        "human",
    ] {
        assert!(
            help.contains(what),
            "compile --help lacks {what:?}:\n{help}"
        );
    }
}

/// `if` and `limit_except` convert to JSON and YAML (an `if` in `script`, `limit_except` as a
/// location key), and the documents compile to the same routes; only an `if` whose condition
/// is not in parentheses (which nginx refuses) has no document form, and convert says so.
#[test]
fn convert_writes_if_and_limit_except_in_documents() {
    let d = tmpdir("convert-if");
    let conf = write(
        &d,
        "if.conf",
        "events {}\nhttp { server { listen 8080; location / { set $a 1; if ($arg_c ~* ^x) { return 204; } limit_except GET { deny all; } } } }\n",
    );
    for (to, ext) in [("json", "json"), ("yaml", "yaml")] {
        let out = protonc(&["convert", &conf, "--to", to]);
        assert!(
            out.status.success(),
            "{to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains("condition") && text.contains("limit_except"),
            "{text}"
        );
        let doc = write(&d, &format!("if.{ext}"), &text);
        let out = protonc(&["diff", &conf, &doc]);
        let diff = String::from_utf8_lossy(&out.stdout);
        // Only the source positions differ, which diff does not look at.
        assert_eq!(out.status.code(), Some(0), "{to}:\n{diff}");
        assert!(diff.starts_with("no routing differences"), "{to}:\n{diff}");
        let out = protonc(&["convert", &doc, "--to", "conf"]);
        assert!(out.status.success());
        let back = String::from_utf8_lossy(&out.stdout);
        assert!(
            back.contains("if ($arg_c ~* ^x)") && back.contains("limit_except GET {"),
            "{back}"
        );
    }
    let bare = write(
        &d,
        "bare.conf",
        "events {}\nhttp { server { listen 8080; location / { if $arg_c { return 204; } } } }\n",
    );
    let out = protonc(&["convert", &bare, "--to", "json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"if\" at") && err.contains("not in parentheses"),
        "{err}"
    );
    // An if where nginx allows none would lose its condition: refused too.
    let misplaced = write(
        &d,
        "misplaced.conf",
        "events {}\nhttp { if ($arg_c) { return 204; } }\n",
    );
    let out = protonc(&["convert", &misplaced, "--to", "yaml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs in a server or location"), "{err}");
    let out = protonc(&["convert", &conf, "--to", "conf"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("if ($arg_c ~* ^x)"));
}

/// `protonc check --dump` prints every file the config reads, each once, as `nginx -T`:
/// `# configuration file PATH:`, the text, a line feed; a config that does not compile says
/// `configuration file PATH test failed` (nginx-tests' config_dump.t).
#[test]
fn check_dump_as_nginx_t() {
    let d = tmpdir("dump");
    let main = "include inc.conf;\ninclude inc.conf;\nevents {}\nhttp {\n    map $args $x { default 0; include map.conf; include map.conf; }\n    server { listen 127.0.0.1:8080; }\n}\n";
    let conf = write(&d, "nginx.conf", main);
    let inc = write(&d, "inc.conf", "include inc2.conf;");
    let inc2 = write(&d, "inc2.conf", "#inc2.conf");
    let map = write(&d, "map.conf", "#map.conf;");
    let out = protonc(&["check", "--dump", &conf]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "# configuration file {conf}:\n{main}\n# configuration file {inc}:\ninclude inc2.conf;\n# configuration file {inc2}:\n#inc2.conf\n# configuration file {map}:\n#map.conf;\n"
    );
    assert_eq!(dump, expected);
    std::fs::remove_file(&inc).expect("rm");
    let out = protonc(&["check", "--dump", &conf]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("configuration file {conf} test failed")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn route_evaluates_if_with_the_requests_own_variables() {
    let d = tmpdir("route-if");
    let conf = write(
        &d,
        "r.conf",
        r#"events {}
http {
  server {
    listen 8080;
    server_name a.test;
    if ($http_x_block) { return 403; }
    location / {
      if ($arg_debug = 1) { return 200 "debug"; }
      if ($cookie_beta ~ ^(on|yes)$) { return 200 "beta"; }
      if ($remote_addr = 10.0.0.1) { return 200 "office"; }
      if (-f $request_filename) { return 200 "file"; }
      return 200 "plain";
    }
    location /w { limit_except GET { proxy_pass http://127.0.0.1:9000; } return 200 "read"; }
  }
}
"#,
    );
    let route = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["route", conf.as_str(), "--json", "--host", "a.test"];
        all.extend_from_slice(args);
        let out = protonc(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("route JSON")
    };
    let text = |v: &serde_json::Value| v["return"]["text"].as_str().unwrap_or("").to_string();
    assert_eq!(
        route(&["-H", "X-Block: 1", "GET", "/"])["return"]["code"],
        403
    );
    // "0" is false, as in nginx.
    assert_eq!(text(&route(&["-H", "X-Block: 0", "GET", "/"])), "plain");
    assert_eq!(text(&route(&["GET", "/?debug=1"])), "debug");
    assert_eq!(
        text(&route(&["-H", "Cookie: a=1; beta=yes", "GET", "/"])),
        "beta"
    );
    // What only the running server knows is said so.
    let out = protonc(&["route", &conf, "--host", "a.test", "GET", "/"]);
    let steps = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        steps.contains("$remote_addr unknown before run time, taken as its name"),
        "{steps}"
    );
    assert!(steps.contains("a file test is false"), "{steps}");
    // limit_except by the request's method.
    assert_eq!(text(&route(&["GET", "/w"])), "read");
    let v = route(&["POST", "/w"]);
    assert_eq!(v["location_kind"], "limit_except", "{v}");
    assert_eq!(v["handler"], "proxy_pass http://127.0.0.1:9000", "{v}");
    // A malformed header is refused.
    let out = protonc(&["route", &conf, "-H", "nocolon", "GET", "/"]);
    assert!(!out.status.success());
}

/// A number where nginx's syntax has a URL is refused by protonc with its place in the file
/// (the schema refuses it too: `documents_validate_with_a_third_party_validator`).
#[test]
fn a_number_for_a_url_is_an_error_with_its_position() {
    let d = tmpdir("number-url");
    let json = write(
        &d,
        "bad.json",
        "{\n  \"http\": {\n    \"servers\": [\n      { \"locations\": [ { \"match\": \"/\", \"proxy_pass\": 5 } ] }\n    ]\n  }\n}\n",
    );
    let out = protonc(&["check", &json, "--message-format", "short"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json:4:54")
            && err.contains("\"proxy_pass\" takes a string (URL), not a number"),
        "{err}"
    );
    let yaml = write(&d, "bad.yaml", "http:\n  servers:\n    - root: 5\n");
    let out = protonc(&["check", &yaml, "--message-format", "short"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:3:13") && err.contains("\"root\" takes a string (path)"),
        "{err}"
    );
}

fn protonc_fmt(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["fmt"];
    all.extend_from_slice(args);
    let out = protonc(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const MESSY: &str = "# top comment\r
worker_processes 2;   # trailing   \r
events { worker_connections 512; }
http {
  include mime.types;
  log_format main '$remote_addr - \"$request\" '
     '$status';   # after the format
  map $http_upgrade $connection_upgrade { default upgrade; '' close; \"~^ws\" \"a b\"; }
  # about the server
  server { listen 8080; server_name a.test
      # between arguments
      b.test;
    location / { return 200 \"hi there\"; }  # end of location
    location = /x {


      return 204;
    }
    # last in server
  }
  server # before the brace
  {
  }
}
# end of file
";

const TIDY: &str = r#"# top comment
worker_processes 2; # trailing

events {
    worker_connections 512;
}

http {
    include mime.types;
    log_format main '$remote_addr - "$request" '
               '$status'; # after the format

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ""      close;
        ~^ws    "a b";
    }

    # about the server
    server {
        listen 8080;
        server_name a.test
                    # between arguments
                    b.test;

        location / {
            return 200 "hi there";
        } # end of location

        location = /x {
            return 204;
        }

        # last in server
    }

    server {
        # before the brace
    }
}

# end of file
"#;

/// `protonc fmt` prints the canonical layout with every comment where it was; its output is
/// a fixed point; includes stay as they are.
#[test]
fn fmt_keeps_comments_and_is_idempotent() {
    let d = tmpdir("fmt");
    let messy = write(&d, "messy.conf", MESSY);
    let (code, out, err) = protonc_fmt(&[&messy]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, TIDY);
    for comment in [
        "# top comment",
        "# trailing",
        "# after the format",
        "# about the server",
        "# between arguments",
        "# end of location",
        "# last in server",
        "# before the brace",
        "# end of file",
    ] {
        assert_eq!(out.matches(comment).count(), 1, "{comment}");
    }
    let tidy = write(&d, "tidy.conf", &out);
    let (code, again, _) = protonc_fmt(&[&tidy]);
    assert_eq!(code, Some(0));
    assert_eq!(again, out, "fmt of fmt's output changes it");
    // An empty file, and one with comments only.
    let empty = write(&d, "empty.conf", "");
    assert_eq!(protonc_fmt(&[&empty]).1, "");
    let only = write(&d, "only.conf", "  # one\n\n\n# two  \n");
    assert_eq!(protonc_fmt(&[&only]).1, "# one\n\n# two\n");
}

/// `--check` prints nothing on stdout and exits 1 naming each file that is not canonical;
/// `--write` rewrites it; syntax errors exit 2 with the file's line and column.
#[test]
fn fmt_check_and_write_exit_codes() {
    let d = tmpdir("fmt-check");
    let messy = write(&d, "messy.conf", MESSY);
    let tidy = write(&d, "tidy.conf", TIDY);
    let (code, out, err) = protonc_fmt(&["--check", &tidy]);
    assert_eq!((code, out.as_str(), err.as_str()), (Some(0), "", ""));
    let (code, out, err) = protonc_fmt(&["--check", &tidy, &messy]);
    assert_eq!(code, Some(1));
    assert_eq!(out, "");
    assert!(
        err.contains("messy.conf") && !err.contains("tidy.conf"),
        "{err}"
    );
    let (code, out, err) = protonc_fmt(&["--write", &messy]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    assert!(err.contains("formatted"), "{err}");
    assert_eq!(std::fs::read_to_string(&messy).ok().as_deref(), Some(TIDY));
    assert_eq!(protonc_fmt(&["--check", &messy]).0, Some(0));
    assert_eq!(protonc_fmt(&["-w", &messy]).2, "", "nothing to rewrite");

    let broken = write(
        &d,
        "broken.conf",
        "http {\n    server {\n        listen 80\n    }\n",
    );
    let (code, out, err) = protonc_fmt(&["--check", &broken]);
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert!(err.contains("broken.conf:"), "{err}");
    let json = write(&d, "a.json", "{}");
    let (code, _, err) = protonc_fmt(&[&json]);
    assert_eq!(code, Some(2));
    assert!(err.contains("protonc convert"), "{err}");
    let (code, _, err) = protonc_fmt(&[&tidy, &messy]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = protonc_fmt(&["--check", "--write", &tidy]);
    assert_eq!(code, Some(2), "clap refuses both");
    // The shipped configs are in the canonical layout.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let shipped = [
        root.join("proton.conf"),
        root.join("examples/proxy.conf"),
        root.join("examples/vhosts.conf"),
    ];
    let shipped: Vec<String> = shipped.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["--check"];
    args.extend(shipped.iter().map(String::as_str));
    let (code, _, err) = protonc_fmt(&args);
    assert_eq!(code, Some(0), "run protonc fmt --write on them: {err}");
}

/// `protonc inspect`'s IR without what names source lines and files.
fn inspect_ir(path: &Path) -> Option<serde_json::Value> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("source");
                m.remove("source_files");
                m.remove("source_digest");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let out = protonc(&["inspect", &path.display().to_string()]);
    if !out.status.success() {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    strip(&mut v);
    Some(v)
}

/// `protonc check`'s diagnostics without their positions, sorted.
fn messages(path: &Path) -> Vec<String> {
    let out = protonc(&[
        "check",
        &path.display().to_string(),
        "--message-format",
        "json",
    ]);
    let mut list: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| format!("{} {}", v["code"], v["message"]))
        .collect();
    list.sort();
    list
}

/// Copies the files under `from` to `to` (recursively).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// Every config of `conf/` and every fixture of the tests (copied to a temp dir, so their
/// includes and relative paths work): `protonc fmt --write` gives a file that formats to
/// itself, and one that compiles to the same IR (`protonc inspect`, source lines aside) or,
/// for a fixture that does not compile, still does not.
#[test]
fn fmt_keeps_the_meaning_of_every_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tmpdir("fmt-corpus");
    let make_cert = root.join("../conf/make-cert.sh");
    let ok = Command::new("sh")
        .arg(&make_cert)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{} failed", make_cert.display());
    copy_tree(&root.join("../conf"), &d.join("conf"));
    copy_tree(&root.join("tests/broken"), &d.join("broken"));
    let mut files = Vec::new();
    let mut stack = vec![d.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "conf" || x == "types") {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut same_ir, mut formatted) = (0, 0);
    for path in &files {
        let name = path.display().to_string();
        let before = inspect_ir(path);
        let messages_before = messages(path);
        let original = std::fs::read_to_string(path).unwrap_or_default();
        let (code, _, err) = protonc_fmt(&["--write", &name]);
        if code == Some(2) {
            // Syntax errors: nothing to format, and the file is left alone.
            assert!(
                before.is_none(),
                "{name} compiles but fmt refuses it: {err}"
            );
            assert_eq!(std::fs::read_to_string(path).unwrap_or_default(), original);
            continue;
        }
        assert_eq!(code, Some(0), "{name}: {err}");
        formatted += 1;
        let (code, _, err) = protonc_fmt(&["--check", &name]);
        assert_eq!(code, Some(0), "{name}: fmt is not idempotent: {err}");
        let after = inspect_ir(path);
        assert_eq!(
            before.is_some(),
            after.is_some(),
            "{name}: compiles before fmt: {}",
            before.is_some()
        );
        if before.is_some() {
            assert!(before == after, "{name}: fmt changed the IR");
            same_ir += 1;
        } else {
            assert_eq!(messages(path), messages_before, "{name}: other diagnostics");
        }
    }
    assert!(formatted >= 100, "only {formatted} files formatted");
    assert!(same_ir >= 12, "only {same_ir} configs compiled");
}

fn ok_stdout(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The configs of a copy of `conf/` (so that converted files sit beside them and find the
/// same certificates and relative paths), and the copy's directory.
fn conf_copy(name: &str) -> (PathBuf, Vec<PathBuf>) {
    support::conf_certificate();
    let d = tmpdir(name);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    copy_tree(&root, &d);
    let configs = [
        "proton.conf",
        "proton.json",
        "proton.yaml",
        "examples/proxy.conf",
        "examples/proxy.json",
        "examples/proxy.yaml",
        "examples/vhosts.conf",
        "examples/vhosts.json",
        "examples/vhosts.yaml",
    ]
    .iter()
    .map(|c| d.join(c))
    .collect();
    (d, configs)
}

/// `convert --to crossplane` and `convert --from crossplane` are inverse: every example
/// config, through the crossplane payload and back to NGINX-style text, JSON and YAML,
/// compiles to the same IR.
#[test]
fn crossplane_round_trip_keeps_the_ir() {
    let (_dir, configs) = conf_copy("crossplane");
    for config in &configs {
        let name = config.display().to_string();
        let want = inspect_ir(config).unwrap_or_else(|| panic!("{name} compiles"));
        let payload = ok_stdout(protonc(&["convert", "--to", "crossplane", &name]), &name);
        let v: serde_json::Value = serde_json::from_str(&payload).expect("a JSON payload");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["config"][0]["file"], name.as_str());
        assert!(
            v["config"][0]["parsed"][0]["line"].as_u64().is_some(),
            "{v}"
        );
        let payload_path = config.with_extension("crossplane.json");
        std::fs::write(&payload_path, &payload).expect("write");
        let payload_name = payload_path.display().to_string();
        for (to, ext) in [
            ("conf", "back.conf"),
            ("json", "back.json"),
            ("yaml", "back.yaml"),
        ] {
            let text = ok_stdout(
                protonc(&["convert", "--from", "crossplane", &payload_name, "--to", to]),
                &payload_name,
            );
            let back = config.with_extension(ext);
            std::fs::write(&back, text).expect("write");
            assert!(
                inspect_ir(&back) == Some(want.clone()),
                "{name} via crossplane to {to}: another IR"
            );
        }
    }
    // An if's condition is the words between its parentheses, as crossplane writes it.
    let d = tmpdir("crossplane-if");
    let conf = write(
        &d,
        "if.conf",
        "events {}\nhttp { server { listen 8080; if ($arg_a = \"x y\") { return 204; } } }\n",
    );
    let v: serde_json::Value = serde_json::from_str(&ok_stdout(
        protonc(&["convert", "--to", "crossplane", &conf]),
        "if.conf",
    ))
    .expect("JSON");
    let server = &v["config"][0]["parsed"][1]["block"][0]["block"];
    assert_eq!(server[1]["directive"], "if");
    assert_eq!(server[1]["args"], serde_json::json!(["$arg_a", "=", "x y"]));
}

/// A payload of the wrong shape, or one recording crossplane's parse errors, is refused
/// with the line and column of the value at fault.
#[test]
fn crossplane_payload_errors() {
    let d = tmpdir("crossplane-bad");
    for (text, at, want) in [
        (
            "{\"status\": \"ok\", \"errors\": [], \"config\": [{\"file\": \"a\", \"parsed\": [\n  {\"directive\": \"listen\", \"args\": [80]}]}]}\n",
            "bad.json:2:36",
            "an argument must be a string",
        ),
        (
            "{\"config\": [{\"file\": \"a\", \"errors\": [{\"error\": \"unexpected }\", \"line\": 3}], \"parsed\": []}]}",
            "bad.json:1:38",
            "this config records 1 parse error(s): unexpected }",
        ),
        (
            "{\"config\": {}}",
            "bad.json:1:12",
            "\"config\" must be an array",
        ),
        ("[1, 2", "bad.json:1:", "syntax"),
    ] {
        let p = write(&d, "bad.json", text);
        let out = protonc(&["convert", "--from", "crossplane", &p, "--to", "conf"]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(at) && err.contains(want), "{text}: {err}");
    }
}

/// nginx's own crossplane tool reads what protonc writes: `crossplane build` turns
/// `protonc convert --to crossplane` into a config that compiles to the same IR, and
/// `crossplane parse` of the examples (includes and all) converts back to the same IR.
/// Skipped with a printed reason when crossplane is not installed, except in CI.
#[test]
fn crossplane_tool_reads_and_writes_the_same_configs() {
    if !support::third_party_tool("crossplane", "pip install crossplane") {
        return;
    }
    let (_dir, configs) = conf_copy("crossplane-tool");
    for config in &configs {
        let name = config.display().to_string();
        let want = inspect_ir(config).unwrap_or_else(|| panic!("{name} compiles"));
        let payload = config.with_extension("crossplane.json");
        let text = ok_stdout(protonc(&["convert", "--to", "crossplane", &name]), &name);
        std::fs::write(&payload, text).expect("write");
        // --stdout: build writes nothing to disk (the payload names the original file).
        let built = ok_stdout(
            Command::new("crossplane")
                .arg("build")
                .arg("--stdout")
                .arg(&payload)
                .output()
                .expect("crossplane runs"),
            "crossplane build",
        );
        let rebuilt = config.with_extension("built.conf");
        std::fs::write(&rebuilt, built).expect("write");
        assert!(
            inspect_ir(&rebuilt) == Some(want.clone()),
            "{name}: crossplane build gave another config"
        );
    }
    // crossplane parse, in its default form (each included file a config of its own). Its
    // directive table puts nginx Plus's health_check in a location, so proxy.conf (which
    // has it in an upstream, as Proton does) is left out.
    for config in ["proton.conf", "examples/vhosts.conf"] {
        let path = configs[0].with_file_name(config);
        let name = path.display().to_string();
        let want = inspect_ir(&path).unwrap_or_else(|| panic!("{name} compiles"));
        let parsed = ok_stdout(
            Command::new("crossplane")
                .arg("parse")
                .arg(&path)
                .output()
                .expect("crossplane runs"),
            "crossplane parse",
        );
        let v: serde_json::Value = serde_json::from_str(&parsed).expect("crossplane JSON");
        assert_eq!(v["status"], "ok", "{v}");
        let payload = path.with_extension("parsed.json");
        std::fs::write(&payload, parsed).expect("write");
        let back = path.with_extension("parsed.conf");
        let text = ok_stdout(
            protonc(&[
                "convert",
                "--from",
                "crossplane",
                &payload.display().to_string(),
                "--to",
                "conf",
            ]),
            "convert --from crossplane",
        );
        std::fs::write(&back, text).expect("write");
        assert!(
            inspect_ir(&back) == Some(want),
            "{name}: crossplane parse gave another config"
        );
    }
}

/// The shell form of the CI recipe (`docs/ci/check-config.sh`) run as CI runs it, against the
/// default config in `conf/` and its expected answers `conf/proton.expect`, with the protonc
/// just built; then against a copy of `conf/` whose config changed, which it must fail, with
/// the report and the diff against the original.
#[test]
fn ci_recipe_checks_the_default_config() {
    support::conf_certificate();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let d = tmpdir("ci-recipe");
    let markdown = d.join("diff.md");
    let recipe = |dir: &Path, config: &str, expect: &str, base: &str| -> Output {
        Command::new("sh")
            .arg(root.join("docs/ci/check-config.sh"))
            .args([config, expect])
            .current_dir(dir)
            .env("PROTONC", env!("CARGO_BIN_EXE_protonc"))
            .env("BASE_CONFIG", base)
            .env("DIFF_MARKDOWN", &markdown)
            .env_remove("BASE_REF")
            .output()
            .expect("sh runs")
    };
    let out = recipe(
        &root,
        "conf/proton.conf",
        "conf/proton.expect",
        "conf/proton.conf",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("requests answered as expected"), "{text}");
    assert!(text.contains("no routing differences"), "{text}");
    let md = std::fs::read_to_string(&markdown).expect("markdown diff written");
    assert!(md.starts_with("### protonc diff\n"), "{md}");

    // A copy of conf/ whose assets are cached for 30 days instead of 7.
    let conf = d.join("conf");
    for sub in ["", "html", "tls"] {
        std::fs::create_dir_all(conf.join(sub)).expect("mkdir");
        let from = root.join("conf").join(sub);
        for e in std::fs::read_dir(&from).expect("conf/ listed").flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), conf.join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
    let original = root.join("conf/proton.conf").display().to_string();
    let text = std::fs::read_to_string(&original).expect("proton.conf");
    assert!(text.contains("expires 7d;"));
    std::fs::write(
        conf.join("proton.conf"),
        text.replace("expires 7d;", "expires 30d;"),
    )
    .expect("write");
    let out = recipe(&d, "conf/proton.conf", "conf/proton.expect", &original);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "-header Cache-Control: max-age=604800\n+header Cache-Control: max-age=2592000\n"
        ),
        "{text}"
    );
    assert!(text.contains("expires 7d -> 30d"), "{text}");
    let md = std::fs::read_to_string(&markdown).expect("markdown diff written");
    assert!(md.contains("| `expires` | `7d` | `30d` |"), "{md}");
    // An EXPECT file named but missing is a usage error.
    let out = recipe(&d, "conf/proton.conf", "conf/none.expect", "");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&d);
}
