//! `scalewise policy build`: a policy project, in Rust, Python or
//! JavaScript, into a component.
//!
//! Why one command for three languages: a policy author should not need to
//! know how a component is made from their language, only that `policy
//! build` makes one the host accepts. The language is read off the
//! project's files (`Cargo.toml`, `pyproject.toml` or `app.py`,
//! `package.json`), the toolchain is found or explained (cargo and the wasm
//! target, componentize-py, componentize-js), the contract is the one this
//! host speaks (embedded in the binary, so a project needs no copy of it),
//! and a failure reports the author's own error, not a guess.
//!
//! Every component is written through a rename, so a host watching the
//! output directory never loads half a file.

mod js;
pub(crate) mod kit;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub use rust::{build_policy_crate, build_policy_crates};

/// The language of a policy project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }
}

/// Which language the project in `dir` is written in, from its files.
pub fn detect(dir: &Path) -> Option<Language> {
    if dir.join("Cargo.toml").is_file() {
        Some(Language::Rust)
    } else if dir.join("pyproject.toml").is_file() || dir.join("app.py").is_file() {
        Some(Language::Python)
    } else if dir.join("package.json").is_file() {
        Some(Language::JavaScript)
    } else {
        None
    }
}

/// The policy projects directly under `dir` (folders of any language), sorted.
pub fn projects_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut projects: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}: run from the repository root or name the projects", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && detect(p).is_some())
        .collect();
    projects.sort();
    Ok(projects)
}

/// Build policy projects into `out_dir`, in the order given. Rust crates of
/// one workspace share one cargo run; Python and JS projects build one by one.
pub fn build_policies(projects: &[PathBuf], out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut languages = Vec::with_capacity(projects.len());
    for p in projects {
        let language = detect(p).with_context(|| {
            format!("{} is not a policy project: it has no Cargo.toml (Rust), pyproject.toml or app.py (Python), or package.json (JavaScript)", p.display())
        })?;
        languages.push(language);
    }
    let crates: Vec<PathBuf> = projects.iter().zip(&languages).filter(|(_, l)| **l == Language::Rust).map(|(p, _)| p.clone()).collect();
    let mut rust = build_policy_crates(&crates, out_dir)?.into_iter();
    let mut built = Vec::with_capacity(projects.len());
    for (p, language) in projects.iter().zip(languages) {
        built.push(match language {
            Language::Rust => rust.next().context("cargo built fewer components than crates")?,
            Language::Python => python::build(p, out_dir)?,
            Language::JavaScript => js::build(p, out_dir)?,
        });
    }
    Ok(built)
}

/// Write a component to `out_dir/<name>.wasm` through a rename.
pub(super) fn install(component: &[u8], name: &str, out_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join(format!("{name}.wasm"));
    let tmp = out.with_extension("wasm.tmp");
    std::fs::write(&tmp, component).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// The world a Python or JS project exports: what its manifest says
/// (`[tool.scalewise] role` or `"scalewise": {"role": …}`), else which
/// export its source defines.
fn world_of(declared: Option<&str>, source: &str, names: [&str; 3], what: &Path) -> anyhow::Result<&'static str> {
    const WORLDS: [&str; 3] = ["strategy", "cost-rule", "consensus"];
    if let Some(role) = declared {
        return WORLDS.into_iter().find(|w| *w == role).with_context(|| {
            format!("{}: role = {role:?} is not a role: say strategy, cost-rule or consensus", what.display())
        });
    }
    let found: Vec<&str> = WORLDS.into_iter().zip(names).filter(|(_, n)| source.contains(n)).map(|(w, _)| w).collect();
    match found[..] {
        [one] => Ok(one),
        [] => bail!(
            "{}: no export found: define `{}`, `{}` or `{}` (see docs/POLICIES.md), or name the role in the manifest",
            what.display(),
            names[0],
            names[1],
            names[2]
        ),
        _ => bail!("{}: defines more than one role's export ({}): a component plays one role", what.display(), found.join(", ")),
    }
}

/// A scratch folder inside the project for what a build writes beside it
/// (the contract, an entry module), emptied first.
fn scratch(project: &Path) -> anyhow::Result<PathBuf> {
    let project = project.canonicalize().with_context(|| format!("reading {}", project.display()))?;
    let dir = project.join(".scalewise-build");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    kit::write_contract(&dir.join("wit"))?;
    Ok(dir)
}

/// A project's name: what its manifest says, else its folder's name.
fn project_name(project: &Path, declared: Option<String>) -> String {
    declared
        .or_else(|| project.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())))
        .unwrap_or_else(|| "policy".into())
}

/// Run one toolchain step in the project. On failure the tool's whole
/// output goes on to the author, and the error is `failed` with the
/// tool's last lines (without Node's stack frames or a Rust backtrace).
fn run_step(command: &mut Command, failed: impl FnOnce() -> String) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().with_context(|| format!("running {program}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprint!("{said}");
    let without_stack: String = said.lines().filter(|l| !l.trim_start().starts_with("at ") && !l.starts_with("Node.js ")).collect::<Vec<_>>().join("\n");
    bail!("{}:\n  {}", failed(), tail(&without_stack, 6))
}

/// Install the component a tool wrote into the scratch folder, and remove the folder.
fn finish(build: &Path, component: &Path, name: &str, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let bytes = std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let installed = install(&bytes, name, out_dir)?;
    let _ = std::fs::remove_dir_all(build);
    Ok(installed)
}

/// The first `n` lines of a tool's output that say what went wrong, for
/// the error (the tool's whole output was printed above).
/// A tool's own backtrace (componentize-py prints Rust's) says nothing to
/// a policy author and is left out.
fn tail(text: &str, n: usize) -> String {
    let text = text.split("Stack backtrace:").next().unwrap_or(text);
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n  ")
}

/// Find a tool: in the project's `node_modules/.bin`, then on PATH.
fn find_tool(project: &Path, name: &str) -> Option<PathBuf> {
    let local = project.join("node_modules/.bin").join(name);
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin"));
    std::env::split_paths(&path).chain(home_bin).map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_read_off_the_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect(dir.path()), None);
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(detect(dir.path()), Some(Language::JavaScript));
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Language::Python));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Language::Rust));
    }

    #[test]
    fn the_role_comes_from_the_manifest_or_the_export() {
        let p = Path::new("app.py");
        let names = ["StrategyApi", "CostRuleApi", "ConsensusApi"];
        assert_eq!(world_of(Some("cost-rule"), "", names, p).unwrap(), "cost-rule");
        assert!(world_of(Some("strategist"), "", names, p).unwrap_err().to_string().contains("not a role"));
        assert_eq!(world_of(None, "StrategyApi = sw.strategy(evaluate)", names, p).unwrap(), "strategy");
        assert!(world_of(None, "x = 1", names, p).unwrap_err().to_string().contains("no export found"));
        assert!(world_of(None, "StrategyApi ConsensusApi", names, p).unwrap_err().to_string().contains("more than one"));
    }
}
