//! The AWS http-desync-guardian corpus (Apache-2.0; a copy with its LICENSE and NOTICE is in
//! runtime/tests/data/http-desync-guardian), turned into raw requests. Shared by the codec
//! test (http_codec.rs) and the server test (desync_server.rs).
#![allow(dead_code)]

use yaml_rust2::{Yaml, YamlLoader};

pub fn corpus_dir() -> std::path::PathBuf {
    match std::env::var_os("PROTON_DESYNC_CORPUS") {
        Some(dir) => dir.into(),
        None => {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/http-desync-guardian")
        }
    }
}

pub struct Case {
    pub file: String,
    pub index: usize,
    pub name: String,
    pub tier: String,
    pub raw: Vec<u8>,
}

fn yaml_bytes(y: &Yaml) -> Vec<u8> {
    let text = match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    };
    let mut out = Vec::new();
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => out.push(b),
            Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

fn build_request(case: &Yaml) -> Vec<u8> {
    let mut raw = yaml_bytes(&case["method"]);
    raw.push(b' ');
    raw.extend(yaml_bytes(&case["uri"]));
    let version = yaml_bytes(&case["version"]);
    if !version.is_empty() {
        raw.push(b' ');
        raw.extend(version);
    }
    raw.extend_from_slice(b"\r\n");
    let headers = case["headers"].as_vec().cloned().unwrap_or_default();
    let named = |h: &Yaml, name: &str| {
        String::from_utf8_lossy(&yaml_bytes(&h["name"]))
            .trim()
            .eq_ignore_ascii_case(name)
    };
    if !headers.iter().any(|h| named(h, "host")) {
        raw.extend_from_slice(b"Host: localhost\r\n");
    }
    let mut body = Vec::new();
    for h in &headers {
        raw.extend(yaml_bytes(&h["name"]));
        raw.extend_from_slice(b": ");
        let value = yaml_bytes(&h["value"]);
        raw.extend_from_slice(&value);
        raw.extend_from_slice(b"\r\n");
        if named(h, "content-length") {
            if let Ok(n) = String::from_utf8_lossy(&value).trim().parse::<usize>() {
                body = vec![b'x'; n.min(16)];
            }
        }
        if named(h, "transfer-encoding")
            && value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked")
        {
            body = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
        }
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend(body);
    raw
}

pub fn load_corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the desync corpus is expected at {} ({e}); set PROTON_DESYNC_CORPUS",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = YamlLoader::load_from_str(&text).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for doc in &docs {
            for (index, case) in doc.as_vec().into_iter().flatten().enumerate() {
                cases.push(Case {
                    file: file.clone(),
                    index,
                    name: case["name"].as_str().unwrap_or("").to_string(),
                    tier: case["expected"]["tier"].as_str().unwrap_or("").to_string(),
                    raw: build_request(case),
                });
            }
        }
    }
    cases
}
