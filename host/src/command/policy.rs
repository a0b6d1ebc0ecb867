//! `scalewise policy …`: build, check, test and benchmark policy files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::policy::cache::ArtifactCache;
use super::build::{Language, build_policies, projects_under};
use crate::cli::{PolicyCommand, SettingsArg};
use crate::timing::measure;
use crate::policy::{
    AnyInput, InstanceMode, Policy, PolicyEngine, PolicySource, PolicyStatus, SandboxOptions,
    component,
};

pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { file, settings } => check(&file, &settings),
        PolicyCommand::Test { file, input, settings } => test(&file, &input, &settings),
        PolicyCommand::Bench { file, input, iterations, settings } => bench(&file, input.as_deref(), iterations, &settings),
        PolicyCommand::Push { file, reference, signature, username, password_file, token_file } => {
            let login = crate::policy::remote::Login { username, password_file, token_file };
            super::push::run(&file, &reference, signature.as_deref(), &login)
        }
        PolicyCommand::New { name, lang, role, dir, sdk } => {
            let language = match lang.as_str() {
                "python" => Language::Python,
                "js" => Language::JavaScript,
                _ => Language::Rust,
            };
            super::new::run(&name, language, &role, dir, sdk.as_deref())
        }
        PolicyCommand::Build { projects, out_dir } => {
            let projects = if projects.is_empty() { projects_under(Path::new("policies"))? } else { projects };
            for built in build_policies(&projects, &out_dir)? {
                println!("built {}", built.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_settings(arg: &SettingsArg, fallback: Option<String>) -> anyhow::Result<String> {
    let text = match &arg.settings {
        Some(s) if s.starts_with('@') => std::fs::read_to_string(&s[1..]).with_context(|| format!("reading settings from {}", &s[1..]))?,
        Some(s) => s.clone(),
        None => return Ok(fallback.unwrap_or_else(|| "{}".into())),
    };
    serde_json::from_str::<Value>(&text).context("--settings is not valid JSON")?;
    Ok(text)
}

/// The compile cache of one command: `SCALEWISE_CACHE_DIR` when set (kept,
/// so an author's check, test and bench of the same build compile it once),
/// else a temporary folder removed on drop, so that a command that loads a
/// component twice (check, bench) still compiles it once: for an 18 MB
/// Python component, that is seconds.
struct ScratchCache(PathBuf, bool);

impl ScratchCache {
    fn new() -> Self {
        match std::env::var_os("SCALEWISE_CACHE_DIR") {
            Some(dir) => Self(PathBuf::from(dir), false),
            None => Self(std::env::temp_dir().join(format!("scalewise-policy-{}", std::process::id())), true),
        }
    }
    fn cache(&self) -> Option<ArtifactCache> {
        ArtifactCache::new(&self.0).ok()
    }
}

impl Drop for ScratchCache {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn load(file: &Path, settings: &str, options: SandboxOptions, scratch: &ScratchCache) -> anyhow::Result<Policy> {
    let engine = Arc::new(PolicyEngine::new(options, scratch.cache())?);
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let id = crate::policy::registry::policy_id(file).unwrap_or_else(|| "policy".into());
    let src = PolicySource { id: &id, path: file, bytes: &bytes, settings, generation: 1 };
    Policy::load(&engine, src, Arc::new(PolicyStatus::default()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn check(file: &Path, settings: &SettingsArg) -> anyhow::Result<ExitCode> {
    let settings = read_settings(settings, None)?;
    let scratch = ScratchCache::new();
    // As a host with the default config would run it.
    let options = SandboxOptions { instance_mode: InstanceMode::Auto { max_calls: 10_000 }, ..SandboxOptions::default() };
    let policy = load(file, &settings, options, &scratch)?;
    println!("ok: {}", file.display());
    println!("  role:     {}", policy.role());
    println!("  runtime:  {}", policy.runtime_kind());
    println!("  digest:   {}", policy.digest);
    if policy.runtime_kind() == "wasm" {
        let engine = PolicyEngine::new(SandboxOptions::default(), scratch.cache())?;
        let (_, info) = component::compile(&engine, &std::fs::read(file)?)?;
        println!("  contract: {}", info.contract);
        if let Some(language) = &info.language {
            println!("  language: {language}");
        }
        println!("  exports:  {}", info.exports.join(", "));
        println!("  imports:  {}", info.imports.join(", "));
        if info.uses_wasi {
            println!("  note:     imports WASI, denied everything (as Python and JavaScript components do; a Rust policy built by `scalewise policy build` imports none)");
        }
        if let Some(instances) = policy.instances() {
            println!("  instances: {instances}");
        }
    }
    println!("  settings: accepted, smoke call passed");
    Ok(ExitCode::SUCCESS)
}

/// Read an input file; its `settings` may be a JSON object or JSON text.
fn read_input(path: &Path) -> anyhow::Result<(Value, Option<String>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let settings = match value.get("settings") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
        None => None,
    };
    if let Some(s) = &settings {
        value["settings"] = Value::String(s.clone());
    }
    Ok((value, settings))
}

fn test(file: &Path, input: &Path, settings: &SettingsArg) -> anyhow::Result<ExitCode> {
    let (value, from_input) = read_input(input)?;
    let settings = read_settings(settings, from_input)?;
    let policy = load(file, &settings, SandboxOptions::default(), &ScratchCache::new())?;
    let role = policy.role();
    let input = AnyInput::parse(role, value).with_context(|| format!("the input is not a valid {role} input"))?;
    match input.evaluate(&policy) {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn bench(file: &Path, input: Option<&Path>, iterations: u32, settings: &SettingsArg) -> anyhow::Result<ExitCode> {
    let (value, from_input) = match input {
        Some(p) => {
            let (v, s) = read_input(p)?;
            (Some(v), s)
        }
        None => (None, None),
    };
    let settings = read_settings(settings, from_input)?;
    let modes = [
        ("fresh instance", InstanceMode::Fresh),
        ("reused instance", InstanceMode::Warm { max_calls: u64::MAX }),
    ];
    println!("{:<18} {:>10} {:>10} {:>10}", "mode", "p50 µs", "p99 µs", "mean µs");
    let scratch = ScratchCache::new();
    for (name, mode) in modes {
        let policy = load(file, &settings, SandboxOptions { instance_mode: mode, ..SandboxOptions::default() }, &scratch)?;
        let role = policy.role();
        let input = match &value {
            Some(v) => AnyInput::parse(role, v.clone()).with_context(|| format!("the input is not a valid {role} input"))?,
            None => AnyInput::sample(role),
        };
        if let Err(e) = input.evaluate(&policy)
            && e.is_fault() {
                bail!("the policy faults on this input: {e}");
            }
        let p = measure(iterations, || {
            let _ = input.evaluate(&policy);
        });
        println!("{name:<18} {:>10.2} {:>10.2} {:>10.2}", p.p50, p.p99, p.mean);
        if policy.runtime_kind() == "rhai" {
            break; // rhai has no instances: one row says it all
        }
    }
    Ok(ExitCode::SUCCESS)
}
