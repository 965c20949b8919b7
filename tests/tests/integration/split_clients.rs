//! nginx's split_clients module: `split_clients STRING $variable { N% value; … * value; }`
//! puts each value of STRING in a part by its MurmurHash2, with nginx's arithmetic, so a
//! client lands in the same part under Proton as under nginx. The same requests against
//! proton-run and, where Debian's nginx is installed, against nginx.

use proton_tests::{assert_same_as_nginx, bin, get, nginx_binary, Nginx, Proton, TempDir};
use std::process::Command;

const HTTP: &str = r#"
    split_clients "${arg_k}AAA" $variant {
        51.2%  ".one";
        10%    ".two";
        0.5%   half;
        *      ".three";
    }
    split_clients $arg_k $partial {
        20%  a;
        30%  "b c";
    }
    server {
        listen 127.0.0.1:{port};
        location / { return 200 "$variant|$partial"; }
    }
"#;

#[test]
fn split_clients_as_nginx() {
    let t = TempDir::new("split");
    let conf = format!("events {{}}\nhttp {{\naccess_log off;\n{HTTP}}}\n");
    let p = Proton::start(t.path(), &conf, 1);
    let keys: Vec<String> = (0..400).map(|i| format!("k{i}")).collect();
    let answers = |port: u16| -> Vec<String> {
        keys.iter()
            .map(|k| {
                let (status, body) = get(port, Some("localhost"), &format!("/?k={k}"));
                format!("{status} {body}")
            })
            .collect()
    };
    let ours = answers(p.port);
    // The same key gets the same part every time.
    assert_eq!(ours, answers(p.port));
    let share = |f: &dyn Fn(&str) -> bool| ours.iter().filter(|a| f(a)).count() * 100 / ours.len();
    let one = share(&|a| a.starts_with("200 .one|"));
    let two = share(&|a| a.starts_with("200 .two|"));
    let three = share(&|a| a.starts_with("200 .three|"));
    let none = share(&|a| a.ends_with('|'));
    assert!(
        (40..=62).contains(&one),
        "51.2 % expected, {one} % got: {ours:?}"
    );
    assert!((4..=17).contains(&two), "10 % expected, {two} % got");
    assert!((28..=48).contains(&three), "38.3 % expected, {three} % got");
    // $partial covers half of the keys; the rest get the empty value.
    assert!(
        (38..=62).contains(&none),
        "50 % expected without a part, {none} % got"
    );
    assert!(ours.iter().any(|a| a.ends_with("|b c")), "{ours:?}");
    if let Some(bin) = nginx_binary() {
        let nginx = Nginx::start(&bin, |port| HTTP.replace("{port}", &port.to_string()));
        let theirs = answers(nginx.port());
        assert_same_as_nginx(&keys, &ours, &theirs, &p.logs());
    }
}

#[test]
fn percentages_are_checked_as_nginx_checks_them() {
    let t = TempDir::new("split-bad");
    for (block, want) in [
        ("60% a; 50% b;", "percent total is greater than 100%"),
        ("0% a;", "invalid percent value \"0%\""),
        ("1.234% a;", "invalid percent value \"1.234%\""),
        ("ten% a;", "invalid percent value \"ten%\""),
        ("10 a;", "invalid percent value \"10\""),
        ("10% a b;", "invalid number of the split_clients parameters"),
    ] {
        let conf = t.write(
            "bad.conf",
            &format!(
                "events {{}}\nhttp {{ split_clients $arg_k $v {{ {block} }} \
                 server {{ listen 127.0.0.1:1; return 200 $v; }} }}\n"
            ),
        );
        let out = Command::new(bin("protonc"))
            .arg("compile")
            .arg(&conf)
            .arg("-o")
            .arg(t.path().join("bad.ir"))
            .output()
            .expect("protonc runs");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{block}: compiled");
        assert!(text.contains(want), "{block}: {text}");
        assert!(text.contains("bad.conf:2:"), "{block}: no position: {text}");
    }
}
