//! `scalewise policy new`: a policy project that builds and tests as it is.
//!
//! Why templates per language and role rather than one skeleton: the
//! first thing an author does is run the tests and build, and both must
//! pass before a line is changed, so that the first failure they see is
//! their own. Each template is a small working policy of its role (a
//! target-per-worker strategy, an hourly cost cap, a weighted-mean
//! consensus) with a unit test in the language's own runner (`cargo test`,
//! `python -m unittest`, `node --test`).
//!
//! A Python or JavaScript project carries the kit (`scalewise_policy/`,
//! `scalewise-policy/`) at this host's contract version, so its tests and
//! its build need no package registry. A Rust project depends on the SDK by
//! path when this binary was built from a checkout that still exists, and
//! by git otherwise; `--sdk` says otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::build::{Language, kit};

/// The SDK's git repository, for a project written away from a checkout.
const SDK_GIT: &str = "https://github.com/scalewise/scalewise";

fn template(language: Language, role: &str) -> Vec<(&'static str, &'static str)> {
    match (language, role) {
        (Language::Rust, "strategy") => vec![("src/lib.rs", include_str!("rust/strategy.rs"))],
        (Language::Rust, "cost-rule") => vec![("src/lib.rs", include_str!("rust/cost-rule.rs"))],
        (Language::Rust, _) => vec![("src/lib.rs", include_str!("rust/consensus.rs"))],
        (Language::Python, "strategy") => vec![("app.py", include_str!("python/strategy.py")), ("test_app.py", include_str!("python/strategy_test.py"))],
        (Language::Python, "cost-rule") => vec![("app.py", include_str!("python/cost-rule.py")), ("test_app.py", include_str!("python/cost-rule_test.py"))],
        (Language::Python, _) => vec![("app.py", include_str!("python/consensus.py")), ("test_app.py", include_str!("python/consensus_test.py"))],
        (Language::JavaScript, "strategy") => vec![("app.js", include_str!("js/strategy.js")), ("app.test.js", include_str!("js/strategy.test.js"))],
        (Language::JavaScript, "cost-rule") => vec![("app.js", include_str!("js/cost-rule.js")), ("app.test.js", include_str!("js/cost-rule.test.js"))],
        (Language::JavaScript, _) => vec![("app.js", include_str!("js/consensus.js")), ("app.test.js", include_str!("js/consensus.test.js"))],
    }
}

/// How the Rust template names its SDK dependency.
fn sdk_dependency(sdk: Option<&str>) -> String {
    match sdk {
        Some(s) if s.starts_with("http") || s.starts_with("git") => format!("{{ git = {s:?} }}"),
        Some(path) => format!("{{ path = {path:?} }}"),
        None => {
            let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
            match here.canonicalize() {
                Ok(p) if p.join("Cargo.toml").is_file() => format!("{{ path = {:?} }}", p.display().to_string()),
                _ => format!("{{ git = {SDK_GIT:?} }}"),
            }
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!("{name:?} is not a policy name: use lowercase letters, digits and dashes, starting with a letter (it becomes the policy's id)");
    }
    Ok(())
}

/// Write the project; returns its directory.
pub fn write(name: &str, language: Language, role: &str, dir: &Path, sdk: Option<&str>) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    if !["strategy", "cost-rule", "consensus"].contains(&role) {
        bail!("--role {role:?}: say strategy, cost-rule or consensus");
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty: choose another name or --dir", dir.display());
    }
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{role}}", role);
    let mut files: Vec<(String, String)> = template(language, role).into_iter().map(|(p, t)| (p.to_owned(), fill(t))).collect();
    match language {
        Language::Rust => {
            let manifest = include_str!("rust/Cargo.toml").replace("{{sdk}}", &sdk_dependency(sdk));
            files.push(("Cargo.toml".into(), fill(&manifest)));
            files.push((".gitignore".into(), "/target\n".into()));
        }
        Language::Python => {
            files.push(("pyproject.toml".into(), fill(include_str!("python/pyproject.toml"))));
            files.push((".gitignore".into(), ".scalewise-build/\n__pycache__/\n".into()));
        }
        Language::JavaScript => {
            files.push(("package.json".into(), fill(include_str!("js/package.json"))));
            files.push((".gitignore".into(), ".scalewise-build/\nnode_modules/\n".into()));
        }
    }
    for (path, text) in &files {
        let at = dir.join(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&at, text).with_context(|| format!("writing {}", at.display()))?;
    }
    match language {
        Language::Python => kit::write_all(&dir.join("scalewise_policy"), &kit::PYTHON)?,
        Language::JavaScript => kit::write_all(&dir.join("scalewise-policy"), &kit::JS)?,
        Language::Rust => {}
    }
    Ok(dir.to_owned())
}

pub fn run(name: &str, language: Language, role: &str, dir: Option<PathBuf>, sdk: Option<&str>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    write(name, language, role, &dir, sdk)?;
    let d = dir.display();
    println!("wrote a {} {role} policy in {d}", language.as_str());
    match language {
        Language::Rust => println!("test it:   (cd {d} && cargo test)"),
        Language::Python => println!("test it:   (cd {d} && python3 -m unittest)\nbuild needs componentize-py: pip install componentize-py==0.25.*"),
        Language::JavaScript => println!("test it:   (cd {d} && npm install && npm test)"),
    }
    println!("build it:  scalewise policy build {d} --out-dir policies.d\ncheck it:  scalewise policy check policies.d/{name}.wasm --settings '{{…}}'");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_roles_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["My Policy", "9lives", "x_y", "trailing-"] {
            assert!(write(bad, Language::Python, "strategy", &dir.path().join("a"), None).is_err(), "{bad}");
        }
        let err = write("ok", Language::Python, "strategist", &dir.path().join("b"), None).unwrap_err();
        assert!(err.to_string().contains("strategy, cost-rule or consensus"), "{err}");
        // Never over an existing project.
        std::fs::create_dir_all(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("c/app.py"), "mine").unwrap();
        assert!(write("c", Language::Python, "strategy", &dir.path().join("c"), None).unwrap_err().to_string().contains("not empty"));
        assert_eq!(std::fs::read_to_string(dir.path().join("c/app.py")).unwrap(), "mine");
    }

    #[test]
    fn every_template_is_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        for language in [Language::Rust, Language::Python, Language::JavaScript] {
            for role in ["strategy", "cost-rule", "consensus"] {
                let at = dir.path().join(format!("{}-{role}", language.as_str()));
                write("p", language, role, &at, Some("/sdk")).unwrap();
                for entry in walk(&at) {
                    let text = std::fs::read_to_string(&entry).unwrap();
                    assert!(!text.contains("{{"), "{} is not filled in", entry.display());
                }
                assert_eq!(super::super::build::detect(&at), Some(language));
            }
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() { out.extend(walk(&e.path())) } else { out.push(e.path()) }
        }
        out
    }
}
