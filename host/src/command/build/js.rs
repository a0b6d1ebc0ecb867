//! JavaScript policy projects into components, with componentize-js.
//!
//! A project is a folder with `package.json` whose main module (`app.js`
//! by default) exports `strategyApi`, `costRuleApi` or `consensusApi`,
//! usually through the kit (`@scalewise/policy`). The build writes an entry
//! module beside it that connects the host's log and re-exports the
//! project's exports; componentize-js evaluates it once at build time, so a
//! syntax error or a missing module is a build error with its message.
//! Relative imports are followed as they are; a project that imports
//! packages by name (`import … from "@scalewise/policy"`) is bundled first
//! with rolldown from its `node_modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{find_tool, finish, project_name, run_step, scratch, world_of};

const LOG_IMPORT: &str = "scalewise:policy/log@0.2.0";

pub(super) fn build(project: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest_path = project.join("package.json");
    let text = std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let main = manifest["main"].as_str().unwrap_or("app.js").trim_start_matches("./").to_owned();
    let main_file = project.join(&main);
    let source = std::fs::read_to_string(&main_file)
        .with_context(|| format!("{}: the policy's module is missing (package.json's \"main\" names it)", main_file.display()))?;
    let world = world_of(manifest["scalewise"]["role"].as_str(), &source, ["strategyApi", "costRuleApi", "consensusApi"], &main_file)?;
    let Some(tool) = find_tool(project, "componentize-js") else {
        bail!(
            "componentize-js was not found: run `npm install` in {} (its package.json lists @bytecodealliance/componentize-js), or `npm install -g @bytecodealliance/componentize-js@0.23`",
            project.display()
        );
    };
    let name = project_name(project, manifest["name"].as_str().map(|n| n.rsplit('/').next().unwrap_or(n).to_owned()));
    let build = scratch(project)?;
    // The kit reads the host's imports from this global at call time, so it
    // runs unchanged under node --test, where nothing sets it.
    std::fs::write(
        build.join("entry.js"),
        format!("import {{ log }} from '{LOG_IMPORT}';\nglobalThis.__scalewiseHost = {{ log }};\nexport * from '../{main}';\n"),
    )?;
    let mut entry = ".scalewise-build/entry.js".to_owned();
    // Only the project's own bundler: it resolves the project's own packages.
    if let Some(rolldown) = Some(project.join("node_modules/.bin/rolldown")).filter(|p| p.is_file()) {
        let mut bundle = Command::new(&rolldown);
        bundle.current_dir(project).args([&entry, "--file", ".scalewise-build/bundle.js", "--format", "esm", "--external", LOG_IMPORT]);
        run_step(&mut bundle, || format!("rolldown could not bundle {}", project.display()))?;
        entry = ".scalewise-build/bundle.js".into();
    }
    let out = ".scalewise-build/component.wasm";
    // No HTTP and no fetch event: a policy has no network, and the host
    // links only what it denies.
    let mut componentize = Command::new(&tool);
    componentize.current_dir(project).args([&entry, "--wit", ".scalewise-build/wit", "-n", world, "-d", "http", "fetch-event", "-o", out]);
    run_step(&mut componentize, || format!("componentize-js could not build {} ({world})", project.display()))?;
    finish(&build, &project.join(out), &name, out_dir)
}
