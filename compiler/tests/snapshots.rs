//! insta snapshots: the IR (as readable JSON) of every example config in `conf/`, and the
//! diagnostics of every broken config in `compiler/tests/broken/`. Snapshots live in the
//! top-level `snapshots/` folder. Review changes with `cargo insta review`, or accept them
//! with `INSTA_UPDATE=always cargo test -p proton-compiler --test snapshots`.

mod support;

use proton_compiler::compile::compile_path;
use proton_compiler::diagnostics::{render, Diagnostics, MessageFormat};
use proton_compiler::source::SourceMap;
use std::path::{Path, PathBuf};

fn files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    v.sort();
    v
}

fn snapshot_name(p: &Path) -> String {
    p.to_string_lossy()
        .trim_start_matches("../")
        .replace(['/', '.'], "_")
}

/// Every example config compiles without errors, and its IR matches the snapshot.
#[test]
fn example_configs_ir() {
    support::conf_certificate();
    let mut examples = files("../conf", &["conf", "json", "yaml"]);
    examples.extend(files("../conf/examples", &["conf", "json", "yaml"]));
    examples.retain(|p| !p.ends_with("mime.types"));
    assert!(examples.len() >= 3, "expected example configs in conf/");
    for path in examples {
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::default();
        let out = compile_path(&path, &mut map, &mut diags);
        let text = render(&map, &diags, MessageFormat::Plain);
        let Some((ir, _)) = out else {
            panic!("{} does not compile:\n{text}", path.display());
        };
        assert!(!diags.has_errors());
        let json = serde_json::to_string_pretty(&ir).expect("IR serialises");
        insta::with_settings!({snapshot_path => "../../snapshots/ir", prepend_module_to_snapshot => false, description => path.display().to_string()}, {
            insta::assert_snapshot!(snapshot_name(&path), format!("{text}{json}"));
        });
    }
}

/// Every broken config fails (or warns) with the diagnostics in its snapshot.
#[test]
fn broken_configs_diagnostics() {
    let broken = files("tests/broken", &["conf", "json", "yaml"]);
    assert!(
        broken.len() >= 40,
        "the broken-config corpus has only {} files",
        broken.len()
    );
    for ext in ["json", "yaml"] {
        let n = broken
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .count();
        assert!(n >= 8, "only {n} broken .{ext} documents");
    }
    let mut distinct = std::collections::HashSet::new();
    for path in broken {
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::default();
        let _ = compile_path(&path, &mut map, &mut diags);
        assert!(
            !diags.list.is_empty(),
            "{} produced no diagnostic",
            path.display()
        );
        let text = render(&map, &diags, MessageFormat::Plain);
        let json = render(&map, &diags, MessageFormat::Json);
        // Compare the diagnostics without the file names, which differ in every case.
        let name = path.display().to_string();
        distinct.insert(text.replace(&name, "FILE"));
        insta::with_settings!({snapshot_path => "../../snapshots/diagnostics", prepend_module_to_snapshot => false, description => path.display().to_string()}, {
            insta::assert_snapshot!(snapshot_name(&path), format!("{text}\n--- json ---\n{json}"));
        });
    }
    assert!(
        distinct.len() >= 40,
        "broken configs must give at least 40 distinct diagnostics"
    );
}
