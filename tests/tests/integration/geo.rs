//! nginx's geo module: `geo [$address] $variable { … }` with networks (IPv4, IPv6, longest
//! prefix), `default`, `delete`, a source variable (not an address: 255.255.255.255), and
//! the client address after realip. The same requests against proton-run and, where
//! Debian's nginx is installed, against nginx.

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, Nginx, Proton, TempDir,
};
use std::time::Duration;

fn http_block(listen: &str) -> String {
    format!(
        r#"
    geo $net {{
        default outside;
        127.0.0.0/8 loopback;
        127.0.0.1 this-host;
        10.0.0.0/8 ten;
        10.1.0.0/16 ten-one;
        10.2.0.0/16 deleted;
        delete 10.2.0.0/16;
        2001:db8::/32 doc6;
        255.255.255.255 broadcast;
    }}
    geo $http_x_ip $given {{
        default none;
        192.0.2.0/24 doc;
        10.1.2.3 exact;
        10.0.0.0/8 ten;
        255.255.255.255 not-an-address;
        2001:db8::/32 doc6;
    }}
    geo $http_x_ip $ranged {{
        ranges;
        default none;
        10.0.0.0-10.255.255.255 ten;
        10.1.0.0-10.1.255.255 ten-one;
        10.1.2.0-10.1.2.255 nested;
        192.0.2.0-192.0.2.127 low;
        delete 192.0.2.0-192.0.2.127;
        198.51.100.0-198.51.101.255 two-sixteens;
    }}
    geo $proxied {{
        proxy 127.0.0.1;
        default none;
        192.0.2.0/24 doc;
        127.0.0.0/8 lo;
    }}
    server {{
        listen {listen};
        set_real_ip_from 127.0.0.1;
        location / {{ return 200 "$net|$given|$ranged|$proxied"; }}
        location /real {{ real_ip_header X-Real-IP; return 200 "$net|$given|$remote_addr"; }}
    }}
"#
    )
}

#[test]
fn geo_as_nginx() {
    let t = TempDir::new("geo");
    let conf = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        http_block("127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let cases: &[(&str, &str, &str)] = &[
        ("no header", "/", ""),
        ("an address in a /24", "/", "X-IP: 192.0.2.7\r\n"),
        ("an exact address", "/", "X-IP: 10.1.2.3\r\n"),
        ("a /8", "/", "X-IP: 10.200.0.1\r\n"),
        ("IPv6", "/", "X-IP: 2001:db8::5\r\n"),
        ("not an address", "/", "X-IP: nonsense\r\n"),
        ("an address with a port", "/", "X-IP: 10.1.2.3:80\r\n"),
        ("realip: longest prefix", "/real", "X-Real-IP: 10.1.9.9\r\n"),
        (
            "realip: a deleted network",
            "/real",
            "X-Real-IP: 10.2.0.1\r\n",
        ),
        ("realip: IPv6", "/real", "X-Real-IP: 2001:db8::1\r\n"),
        (
            "realip: nothing matches",
            "/real",
            "X-Real-IP: 203.0.113.1\r\n",
        ),
        ("ranges: nested", "/", "X-IP: 10.1.2.200\r\n"),
        (
            "ranges: split around the nested one",
            "/",
            "X-IP: 10.1.3.1\r\n",
        ),
        ("ranges: deleted", "/", "X-IP: 192.0.2.5\r\n"),
        ("ranges: over two /16s", "/", "X-IP: 198.51.101.9\r\n"),
        ("ranges: IPv6", "/", "X-IP: 2001:db8::1\r\n"),
        (
            "proxy: X-Forwarded-For",
            "/",
            "X-Forwarded-For: 192.0.2.9\r\n",
        ),
        (
            "proxy: a list",
            "/",
            "X-Forwarded-For: 203.0.113.5, 192.0.2.9\r\n",
        ),
        ("proxy: not an address", "/", "X-Forwarded-For: junk\r\n"),
    ];
    let ask = |port: u16| -> Vec<String> {
        cases
            .iter()
            .map(|(_, path, headers)| {
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: geo.test\r\n{headers}Connection: close\r\n\r\n"
                );
                let (raw, _) = raw_exchange(port, req.as_bytes(), Duration::from_secs(10));
                match parse_response(&raw) {
                    Ok(r) => format!("{} {}", r.status, r.body_text()),
                    Err(e) => format!("bad response: {e}"),
                }
            })
            .collect()
    };
    let ours = ask(p.port);
    assert_eq!(
        ours[0],
        "200 this-host|not-an-address|none|lo",
        "{}",
        p.logs()
    );
    assert_eq!(ours[5], "200 this-host|not-an-address|none|lo");
    assert_eq!(ours[8], "200 ten|not-an-address|10.2.0.1");
    assert_eq!(ours[11], "200 this-host|ten|nested|lo");
    assert_eq!(ours[16], "200 this-host|not-an-address|none|doc");
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| http_block(&format!("127.0.0.1:{port}")));
    let theirs = ask(n.port());
    let labels: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_same_as_nginx(&labels, &ours, &theirs, &p.logs());
}
