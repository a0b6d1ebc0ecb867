//! Python policy projects into components, with componentize-py.
//!
//! A project is a folder with `app.py` (or the module `[tool.scalewise]
//! module` names in `pyproject.toml`) that defines `StrategyApi`,
//! `CostRuleApi` or `ConsensusApi`, usually through the kit
//! (`scalewise_policy`). componentize-py bundles CPython, the module and
//! what it imports, and runs the module's top level once at build time, so
//! an import error or a syntax error is a build error, reported with
//! Python's own traceback.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{find_tool, finish, kit, project_name, run_step, scratch, world_of};

/// What `pyproject.toml` says, where there is one.
struct Manifest {
    name: Option<String>,
    role: Option<String>,
    module: String,
}

fn manifest(project: &Path) -> anyhow::Result<Manifest> {
    let path = project.join("pyproject.toml");
    let mut m = Manifest { name: None, role: None, module: "app".into() };
    if !path.is_file() {
        return Ok(m);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    m.name = doc.get("project").and_then(|p| p.get("name")).and_then(|n| n.as_str()).map(str::to_owned);
    if let Some(sw) = doc.get("tool").and_then(|t| t.get("scalewise")) {
        m.role = sw.get("role").and_then(|r| r.as_str()).map(str::to_owned);
        if let Some(module) = sw.get("module").and_then(|r| r.as_str()) {
            m.module = module.to_owned();
        }
    }
    Ok(m)
}

/// Where `scalewise_policy` comes from: the project's own copy, the
/// Python environment's, or this binary's.
fn kit_path(project: &Path, build: &Path) -> anyhow::Result<Option<PathBuf>> {
    if project.join("scalewise_policy/__init__.py").is_file() {
        return Ok(None);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let found = Command::new(python)
        .args(["-c", "import os, scalewise_policy as k; print(os.path.dirname(os.path.dirname(k.__file__)))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = found {
        return Ok(Some(dir));
    }
    let dir = build.join("python");
    kit::write_all(&dir.join("scalewise_policy"), &kit::PYTHON)?;
    Ok(Some(dir))
}

pub(super) fn build(project: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let m = manifest(project)?;
    let module_file = project.join(format!("{}.py", m.module.replace('.', "/")));
    let source = std::fs::read_to_string(&module_file)
        .with_context(|| format!("{}: the policy's module is missing (name another with [tool.scalewise] module)", module_file.display()))?;
    let world = world_of(m.role.as_deref(), &source, ["StrategyApi", "CostRuleApi", "ConsensusApi"], &module_file)?;
    let Some(tool) = find_tool(project, "componentize-py") else {
        bail!("componentize-py was not found on PATH: install it with `pip install componentize-py==0.25.*` (PyPI) to build Python policies");
    };
    let build = scratch(project)?;
    let kit = kit_path(project, &build)?;
    let name = project_name(project, m.name).to_lowercase().replace('_', "-");
    let out = build.join("component.wasm");
    let mut command = Command::new(&tool);
    command.current_dir(project).arg("-d").arg(build.join("wit")).args(["-w", world, "componentize", &m.module, "-p", "."]);
    if let Some(k) = &kit {
        command.arg("-p").arg(k);
    }
    run_step(command.arg("-o").arg(&out), || format!("componentize-py could not build {} ({world})", project.display()))?;
    finish(&build, &out, &name, out_dir)
}
