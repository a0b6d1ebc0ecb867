//! Rust policy crates into components.
//!
//! A crate is compiled for `wasm32-unknown-unknown`, which links no WASI at
//! all, and its core module is wrapped into a component from the world
//! description the SDK embeds. The result imports only `scalewise:policy/log`:
//! nothing to deny, and the cheapest possible instantiation.
//!
//! Why crates of one workspace build in one cargo run: the built-ins are
//! sixteen small crates over the same dependencies (the SDK, serde,
//! wit-bindgen). One run compiles those once and then builds the crates
//! side by side on every core, where a run per crate would link each one
//! after the other on a single core (`make run` waits for all of them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

const GUEST_RUSTFLAGS: &str = r#"target.wasm32-unknown-unknown.rustflags=["-C", "link-arg=-zstack-size=131072", "-C", "link-arg=--initial-memory=1048576"]"#;

/// Build several policy crates into `out_dir`, in the order given; see
/// [`build_policy_crate`]. Crates of one workspace share one cargo run.
pub fn build_policy_crates(crates: &[PathBuf], out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut manifests = Vec::new();
    for dir in crates {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            bail!("{} has no Cargo.toml: name a policy crate's directory", dir.display());
        }
        manifests.push(manifest.canonicalize().with_context(|| format!("reading {}", manifest.display()))?);
    }
    let mut built: Vec<Option<PathBuf>> = vec![None; crates.len()];
    while let Some(first) = built.iter().position(Option::is_none) {
        // The workspace of the first crate not built yet, and which of the
        // others belong to it (a crate outside any workspace is its own).
        let (root, members) = workspace(&manifests[first]);
        let group: Vec<usize> = (first..crates.len())
            .filter(|&i| built[i].is_none() && (i == first || members.iter().any(|(_, m)| *m == manifests[i])))
            .collect();
        let names: Vec<&str> = group
            .iter()
            .filter_map(|&i| members.iter().find(|(_, m)| *m == manifests[i]).map(|(n, _)| n.as_str()))
            .collect();
        let cores = if names.len() == group.len() && group.len() > 1 {
            cargo_build(&root, &names, &crates[first])?
        } else {
            cargo_build(&manifests[first], &[], &crates[first])?
        };
        for &i in if names.len() == group.len() { &group[..] } else { &group[..1] } {
            let package = members.iter().find(|(_, m)| *m == manifests[i]).map(|(n, _)| n.clone());
            let (core, name) = match &package {
                Some(p) => cores.iter().find(|(_, _, pkg)| pkg == p),
                None => cores.first(),
            }
            .map(|(c, n, _)| (c.clone(), n.clone()))
            .with_context(|| format!("{} built no .wasm: its [lib] needs crate-type = [\"cdylib\", \"rlib\"]", crates[i].display()))?;
            built[i] = Some(componentize(&core, &name, out_dir)?);
        }
    }
    Ok(built.into_iter().flatten().collect())
}

/// Build one policy crate into `out_dir/<crate-name>.wasm`.
pub fn build_policy_crate(dir: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} has no Cargo.toml: name a policy crate's directory", dir.display());
    }
    let cores = cargo_build(&manifest, &[], dir)?;
    let Some((core, name, _)) = cores.into_iter().next() else {
        bail!("{} built no .wasm: its [lib] needs crate-type = [\"cdylib\", \"rlib\"]", dir.display());
    };
    componentize(&core, &name, out_dir)
}

/// The workspace `manifest` belongs to: its root manifest, and each
/// member's package name and manifest. A crate cargo cannot describe is
/// left to build on its own.
fn workspace(manifest: &Path) -> (PathBuf, Vec<(String, PathBuf)>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .stderr(Stdio::null())
        .output();
    let Some(meta) = out.ok().filter(|o| o.status.success()).and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok()) else {
        return (manifest.to_owned(), Vec::new());
    };
    let root = meta["workspace_root"].as_str().map(|r| Path::new(r).join("Cargo.toml")).unwrap_or_else(|| manifest.to_owned());
    let members = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), Path::new(p["manifest_path"].as_str()?).canonicalize().ok()?)))
        .collect();
    (root, members)
}

/// `cargo build` of the policy profile for wasm32-unknown-unknown, of
/// `manifest`'s package or of `packages` in its workspace: each core
/// module built, with the library's name and its package's.
fn cargo_build(manifest: &Path, packages: &[&str], what: &Path) -> anyhow::Result<Vec<(PathBuf, String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--lib", "--target", "wasm32-unknown-unknown", "--profile", "policy"])
        .args(["--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(manifest);
    for p in packages {
        command.args(["-p", p]);
    }
    let mut output = command
        .args(["--config", "profile.policy.inherits=\"release\""])
        .args(["--config", "profile.policy.opt-level=3"])
        .args(["--config", "profile.policy.lto=true"])
        .args(["--config", "profile.policy.codegen-units=1"])
        .args(["--config", "profile.policy.panic=\"abort\""])
        .args(["--config", "profile.policy.strip=true"])
        // A 128 KiB stack and 1 MiB of initial memory: the SDK's allocator
        // finds its first ~850 KiB of heap in memory the module starts with
        // (no `memory.grow` per fresh instance), and the host's reset scans a
        // small range.
        .args(["--config", GUEST_RUSTFLAGS])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo (is the Rust toolchain installed?)")?;
    // cargo's rendered output goes on to the author as it comes, and is
    // kept to say which errors were the author's.
    let stderr = output.stderr.take().expect("piped");
    let echo = std::thread::spawn(move || {
        let mut kept = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            eprintln!("{line}");
            if kept.len() < 1 << 20 {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        kept
    });
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(output.stdout.as_mut().expect("piped"), &mut stdout).context("reading cargo's output")?;
    let status = output.wait().context("waiting for cargo")?;
    let rendered = echo.join().unwrap_or_default();
    let output = std::process::Output { status, stdout, stderr: Vec::new() };
    if !output.status.success() {
        bail!("{}", build_failure(&rendered, what));
    }
    let mut cores = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else { continue };
        let is_cdylib = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if msg["reason"] == "compiler-artifact" && is_cdylib {
            let files = msg["filenames"].as_array().cloned().unwrap_or_default();
            let name = msg["target"]["name"].as_str().unwrap_or("policy").replace('_', "-");
            // Which package it is, to match it to the crate asked for.
            let package = msg["manifest_path"]
                .as_str()
                .and_then(|m| workspace_package_name(Path::new(m)))
                .unwrap_or_else(|| name.clone());
            if let Some(f) = files.iter().filter_map(Value::as_str).find(|f| f.ends_with(".wasm")) {
                cores.push((PathBuf::from(f), name, package));
            }
        }
    }
    Ok(cores)
}

/// Why cargo failed, in the author's terms: their own compiler errors
/// (cargo printed them in full above; the first few are repeated here),
/// or, only when it is so, that the wasm target is not installed.
fn build_failure(rendered: &str, what: &Path) -> String {
    let missing_target = rendered.contains("can't find crate for `core`") || rendered.contains("can't find crate for `std`") || rendered.contains("target may not be installed");
    if missing_target || !target_installed() {
        return format!(
            "cargo could not build {}: the wasm32-unknown-unknown target is not installed (install it with `rustup target add wasm32-unknown-unknown`)",
            what.display()
        );
    }
    let errors = compiler_errors(rendered);
    if errors.is_empty() {
        // cargo's own complaint (a manifest, a workspace, a registry): its
        // first error line and what it says under it.
        let said: Vec<&str> = rendered.lines().skip_while(|l| !l.starts_with("error")).take(4).map(str::trim).filter(|l| !l.is_empty()).collect();
        return match said.is_empty() {
            true => format!("cargo could not build {}: see cargo's output above", what.display()),
            false => format!("cargo could not build {}: {}", what.display(), said.join(" ")),
        };
    }
    let shown: Vec<&str> = errors.iter().take(5).map(String::as_str).collect();
    let more = if errors.len() > shown.len() { format!(" (and {} more)", errors.len() - shown.len()) } else { String::new() };
    format!("{} does not compile: {}{more}", what.display(), shown.join("; "))
}

/// The compiler's errors in cargo's rendered output, each with where it
/// is: `src/lib.rs:29: mismatched types`.
fn compiler_errors(rendered: &str) -> Vec<String> {
    let lines: Vec<&str> = rendered.lines().collect();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("error") else { continue };
        // `error[E0308]: mismatched types` or `error: unexpected token`,
        // but not cargo's own closing `error: could not compile`.
        let message = match rest.split_once(": ") {
            Some((code, m)) if code.is_empty() || code.starts_with('[') => m,
            _ => continue,
        };
        if message.starts_with("could not compile") || message.starts_with("aborting due to") {
            continue;
        }
        // Only an error with a place in the source is the compiler's.
        let Some(place) = lines[i + 1..].iter().take(3).find_map(|l| l.trim_start().strip_prefix("--> ")) else { continue };
        let mut parts = place.rsplitn(3, ':');
        let (_col, line, file) = (parts.next(), parts.next(), parts.next());
        errors.push(format!("{}:{}: {message}", file.unwrap_or(place), line.unwrap_or("?")));
    }
    errors
}

/// Whether rustup (or the toolchain) has the standard library for wasm32-unknown-unknown.
fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-unknown-unknown"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore")))))
}

/// A package's name from its manifest's `[package] name`.
fn workspace_package_name(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("package")?.get("name")?.as_str().map(str::to_owned)
}

/// Wrap a core module into a component at `out_dir/<name>.wasm`, written
/// through a rename so the host never loads half a file.
pub(super) fn componentize(core_path: &Path, name: &str, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let core = std::fs::read(core_path)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| anyhow::anyhow!("cannot make a component of {}: {e:#}", core_path.display()))?;
    super::install(&component, name, out_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authors_errors_are_read_off_cargos_output() {
        let rendered = "   Compiling my-rule v0.1.0 (/tmp/my-rule)\nerror[E0308]: mismatched types\n  --> src/lib.rs:29:28\n   |\nerror: expected one of `;`\n --> src/main.rs:3:1\nerror: could not compile `my-rule` (lib) due to 2 previous errors\n";
        assert_eq!(compiler_errors(rendered), ["src/lib.rs:29: mismatched types", "src/main.rs:3: expected one of `;`"]);
        assert!(compiler_errors("warning: unused\nerror: aborting due to 1 previous error\n").is_empty());
        // cargo's own errors have no place in the source: not the author's code.
        assert!(compiler_errors("error: current package believes it's in a workspace when it's not:\ncurrent:   /x/Cargo.toml\n").is_empty());
    }
}
