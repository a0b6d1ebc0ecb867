//! The host's rooms and the order they stand in, checked on every test run.
//!
//! Why a test and not a comment: the layout in `docs/ARCHITECTURE.md` is
//! only worth something while it is true, and the first import that
//! breaks it compiles without a word. These tests read the source (not the
//! compiled crate), skip comments, and fail naming the file and line:
//!
//! - `decide/` is pure: it names no async runtime, no clock, no
//!   filesystem, no sandbox runtime, no web framework and no journal.
//! - The folders are in layers, each using only those below it:
//!   `decide` ← `policy` ← `journal` ← `control` ← `api` / `simulate` ← `tune`.
//!   So there is no cycle among them.

use std::path::{Path, PathBuf};

/// The rooms, bottom first. A folder may use only folders of a lower rank.
const LAYERS: &[(&str, u8)] = &[("decide", 0), ("policy", 1), ("journal", 2), ("control", 3), ("api", 4), ("simulate", 4), ("tune", 5)];

/// What `decide/` must never name: the async runtime, clocks, the
/// filesystem, the sandbox runtimes, the web framework, the journal.
const IMPURE: &[&str] = &["tokio", "SystemTime", "Instant", "fs", "wasmtime", "rhai", "axum", "journal", "Journal"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of each line of `file` with comments removed, numbered from 1.
fn code_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            (!code.trim().is_empty()).then(|| (i + 1, code.to_owned()))
        })
        .collect()
}

/// The identifiers of a line of code, in order.
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

/// The top-level folders a line reaches with `crate::<folder>`.
fn reached(code: &str) -> Vec<&str> {
    code.match_indices("crate::").map(|(at, _)| identifiers(&code[at + 7..]).next().unwrap_or("")).collect()
}

/// Each place in `dir` where a line names one of `words`.
fn naming(dir: &Path, words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(dir) {
        for (n, code) in code_lines(&file) {
            if let Some(w) = identifiers(&code).find(|w| words.contains(w)) {
                found.push(format!("{}:{n}: names `{w}`: {}", file.display(), code.trim()));
            }
        }
    }
    found
}

/// Each place where a folder reaches one that is not below it.
fn upward_uses(root: &Path) -> Vec<String> {
    let rank = |name: &str| LAYERS.iter().find(|(f, _)| *f == name).map(|(_, r)| *r);
    let mut found = Vec::new();
    for (folder, own) in LAYERS {
        for file in rust_files(&root.join(folder)) {
            for (n, code) in code_lines(&file) {
                for other in reached(&code) {
                    if other != *folder && rank(other).is_some_and(|r| r >= *own) {
                        found.push(format!("{}:{n}: `{folder}` uses `{other}`: {}", file.display(), code.trim()));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn decide_does_no_io_and_reads_no_clock() {
    let found = naming(&src().join("decide"), IMPURE);
    assert!(found.is_empty(), "decide/ must stay pure:\n{}", found.join("\n"));
}

#[test]
fn folders_use_only_the_layers_below_them() {
    let found = upward_uses(&src());
    assert!(found.is_empty(), "a layer reaches up (or sideways):\n{}", found.join("\n"));
}

/// The checks can fail: a tree that breaks each rule is caught.
#[test]
fn the_checks_catch_what_they_forbid() {
    let tree = tempfile::tempdir().unwrap();
    for (folder, file, code) in [
        ("decide", "a.rs", "use std::time::Instant; // a clock\n"),
        ("decide", "b.rs", "pub fn f() { tokio::spawn(async {}); }\n"),
        ("decide", "c.rs", "use std::{fs, io};\n"),
        ("decide", "d.rs", "// tokio in a comment is fine\npub fn g() {}\n"),
        ("journal", "e.rs", "use crate::control::PoolHandle;\n"),
        ("journal", "f.rs", "use crate::decide::record::DecisionRecord;\n"),
        ("api", "g.rs", "use crate::simulate::run;\n"),
    ] {
        std::fs::create_dir_all(tree.path().join(folder)).unwrap();
        std::fs::write(tree.path().join(folder).join(file), code).unwrap();
    }
    for folder in ["policy", "control", "simulate", "tune"] {
        std::fs::create_dir_all(tree.path().join(folder)).unwrap();
    }
    let impure = naming(&tree.path().join("decide"), IMPURE);
    assert_eq!(impure.len(), 3, "{impure:#?}");
    assert!(impure.iter().any(|f| f.contains("a.rs:1: names `Instant`")), "{impure:#?}");
    assert!(impure.iter().any(|f| f.contains("c.rs:1: names `fs`")), "{impure:#?}");
    let upward = upward_uses(tree.path());
    assert_eq!(upward.len(), 2, "{upward:#?}");
    assert!(upward.iter().any(|f| f.contains("e.rs:1: `journal` uses `control`")), "{upward:#?}");
    assert!(upward.iter().any(|f| f.contains("g.rs:1: `api` uses `simulate`")), "{upward:#?}");
}
