//! Policies in Python and JavaScript beside Rust, as an author meets them:
//! `policy new` in each language and role, the project's own tests in its
//! own runner, `policy build`, `policy check`, `policy test`, and a real
//! pool in the simulator; all from a temporary directory outside the
//! repository. Then the hostile cases: a Python or JS policy that raises,
//! loops, allocates without bound, returns the wrong shape or reaches for
//! a module that is not there is contained, and the last good version
//! keeps serving.
//!
//! componentize-py (PyPI) and componentize-js (npm) are real toolchains
//! that `.ci/run` installs; without them these tests fail and say so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use scalewise::policy::{InstanceMode, Registry, SandboxOptions};
use scalewise_e2e::{engine, install, root, scalewise_bin};
use scalewise_sdk::{MetricWindow, Pool, Sample, StrategyInput};
use serde_json::Value;

const ROLES: [&str; 3] = ["strategy", "cost-rule", "consensus"];

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `scalewise ARGS` in `cwd`, with the tests' compile cache, so a
/// component compiles once across check, test and the simulator.
fn scalewise(args: &[&str], cwd: &Path) -> Output {
    Command::new(scalewise_bin())
        .args(args)
        .current_dir(cwd)
        .env("SCALEWISE_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .unwrap()
}

fn require(tool: &str) {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(tool).is_file());
    assert!(found, "{tool} is not installed: `bash .ci/run` installs it (componentize-py from PyPI, componentize-js from npm)");
}

fn run_ok(command: &mut Command, what: &str) {
    let o = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what} failed:\n{}", text(&o));
}

/// The settings and a `policy test` input of each role, and what the
/// templates answer to them.
fn settings(role: &str) -> &'static str {
    match role {
        "strategy" => r#"{"target_per_worker": 10}"#,
        "cost-rule" => r#"{"max_hourly": 3}"#,
        _ => "{}",
    }
}

fn input(role: &str) -> String {
    let pool = r#""pool": {"id": "web", "running": 2, "booting": 0, "min": 1, "max": 20}"#;
    match role {
        "strategy" => format!(r#"{{{pool}, "metrics": [{{"name": "queue_depth", "samples": [{{"at": 0, "value": 95}}]}}], "now": 1000}}"#),
        "cost-rule" => format!(
            r#"{{{pool}, "proposed": 10, "kind": "m5", "catalog": [{{"name": "m5", "on_demand_hourly": 0.5, "vcpus": 2, "memory_gib": 8, "gpus": 0}}], "metrics": [], "now": 1000}}"#
        ),
        _ => format!(
            r#"{{{pool}, "votes": [{{"expert": "a", "weight": 1, "ballot": {{"proposed": {{"desired": 2, "confidence": 1, "reason": ""}}}}}}, {{"expert": "b", "weight": 2, "ballot": {{"proposed": {{"desired": 8, "confidence": 1, "reason": ""}}}}}}], "now": 1000}}"#
        ),
    }
}

fn check_answer(role: &str, out: &Value, who: &str) {
    match role {
        "strategy" => assert_eq!(out["proposal"]["desired"], 10.0, "{who}: {out}"),
        "cost-rule" => assert_eq!(out["verdict"], serde_json::json!({"clamp": 6}), "{who}: {out}"),
        _ => assert_eq!(out["desired"], 6.0, "{who}: {out}"),
    }
}

/// `policy new` for Python and JS in every role, in a temporary directory
/// outside the repository, built once per test process.
fn projects() -> &'static (tempfile::TempDir, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        require("componentize-py");
        require("componentize-js");
        let dir = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        for lang in ["python", "js"] {
            for role in ROLES {
                let name = format!("{lang}-{role}");
                let o = scalewise(&["policy", "new", &name, "--lang", lang, "--role", role], dir.path());
                assert!(o.status.success(), "policy new {name}: {}", text(&o));
                names.push(name);
            }
        }
        let out = dir.path().join("out");
        let mut args = vec!["policy", "build"];
        args.extend(names.iter().map(String::as_str));
        args.extend(["--out-dir", "out"]);
        let o = scalewise(&args, dir.path());
        assert!(o.status.success(), "policy build: {}", text(&o));
        (dir, out)
    })
}

#[test]
fn a_new_policy_in_each_language_and_role_passes_its_tests_builds_checks_and_runs_a_pool() {
    let (dir, out) = projects();
    let d = dir.path();
    assert!(!d.starts_with(root()), "the projects live outside the repository");
    for lang in ["python", "js"] {
        for role in ROLES {
            let name = format!("{lang}-{role}");
            // The project's own unit test, in its language's own runner.
            match lang {
                "python" => run_ok(Command::new("python3").args(["-m", "unittest"]).current_dir(d.join(&name)), &format!("{name}: python3 -m unittest")),
                _ => run_ok(Command::new("node").arg("--test").current_dir(d.join(&name)), &format!("{name}: node --test")),
            }
            let wasm = out.join(format!("{name}.wasm"));
            let o = scalewise(&["policy", "check", wasm.to_str().unwrap(), "--settings", settings(role)], d);
            let said = text(&o);
            assert!(o.status.success(), "{name}: {said}");
            let language = if lang == "python" { "Python" } else { "JavaScript" };
            assert!(said.contains(&format!("role:     {role}")) && said.contains(&format!("language: {language}")), "{name}: {said}");
            // Costly to instantiate: warm by default.
            assert!(said.contains("instances: warm"), "{name}: {said}");
            std::fs::write(d.join(format!("{name}.json")), input(role)).unwrap();
            let o = scalewise(&["policy", "test", wasm.to_str().unwrap(), "--input", &format!("{name}.json"), "--settings", settings(role)], d);
            assert!(o.status.success(), "{name}: {}", text(&o));
            check_answer(role, &serde_json::from_slice(&o.stdout).unwrap(), &name);
        }
    }

    // A pool per language, each with all three roles, in the simulator.
    let mut sim = String::from("[environment]\ncapacity = 1.0\nboot_steps = 0\n\n[[traces]]\npath = \"load.csv\"\n");
    for lang in ["python", "js"] {
        std::fs::write(
            d.join(format!("{lang}.toml")),
            format!(
                "[policies]\ndir = \"out\"\n[policies.settings.{lang}-strategy]\ntarget_per_worker = 1.0\n[policies.settings.{lang}-cost-rule]\nmax_hourly = 100.0\n\n\
                 [[pools]]\nid = \"{lang}\"\nmin = 1\nmax = 100\nstrategies = [{{ policy = \"{lang}-strategy\" }}]\nconsensus = \"{lang}-consensus\"\ncost_rules = [\"{lang}-cost-rule\"]\n\
                 cost = {{ kind = \"vm\", catalog = [{{ name = \"vm\", on_demand_hourly = 0.5 }}] }}\nprovider = {{ kind = \"simulated\" }}\nmetrics = [{{ name = \"queue_depth\", source = \"push\" }}]\n"
            ),
        )
        .unwrap();
        sim.push_str(&format!("\n[[sets]]\nname = \"{lang}\"\nconfig = \"{lang}.toml\"\n"));
    }
    std::fs::write(d.join("sim.toml"), sim).unwrap();
    let load: String = (0..120).map(|i| format!("{i},{}\n", 5.0 + 20.0 * ((i as f64) / 10.0).sin().abs())).collect();
    std::fs::write(d.join("load.csv"), load).unwrap();
    let cache = root().join("target/test-cache");
    let o = scalewise(&["simulate", "sim.toml", "--json", "--quiet", "--out", "sim", "--cache-dir", cache.to_str().unwrap()], d);
    assert!(o.status.success(), "simulate: {}", text(&o));
    let results: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let sets = results["traces"][0]["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{results}");
    for s in sets {
        assert_eq!(s["failed"], Value::Null, "{s}");
        assert_eq!(s["decisions"], 120, "{s}");
        assert_eq!((s["faults"].as_u64(), s["declined"].as_u64()), (Some(0), Some(0)), "{}: every call answered", s["set"]);
        // The load swings between 5 and 25 instances' worth: a pool held
        // at its minimum would have 2 instance-hours and under-provision
        // most of the time.
        let (hours, theta_u) = (s["instance_hours"].as_f64().unwrap(), s["metrics"]["theta_u"].as_f64().unwrap());
        assert!(s["actions"].as_u64().unwrap() > 10 && hours > 20.0 && theta_u < 20.0, "{}: the pool followed the load: {s}", s["set"]);
    }
}

#[test]
fn a_new_rust_policy_builds_and_checks_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let o = scalewise(&["policy", "new", "my-rule", "--lang", "rust", "--role", "cost-rule"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let project = dir.path().join("my-rule");
    // The workspace's lock pins the versions its registry cache holds.
    std::fs::copy(root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = root().join("target/test-outside");
    run_ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(["test", "--quiet"]).current_dir(&project).env("CARGO_TARGET_DIR", &target).env("CARGO_NET_OFFLINE", "true"),
        "cargo test in a new Rust policy",
    );
    let build = || {
        Command::new(scalewise_bin())
            .args(["policy", "build", ".", "--out-dir", "out"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_NET_OFFLINE", "true")
            .output()
            .unwrap()
    };
    let o = build();
    assert!(o.status.success(), "{}", text(&o));
    let o = scalewise(&["policy", "check", "out/my-rule.wasm", "--settings", settings("cost-rule")], &project);
    assert!(o.status.success() && text(&o).contains("instances: fresh per call"), "{}", text(&o));

    // A type error is the author's own, not a guess about the target.
    let lib = project.join("src/lib.rs");
    let broken = std::fs::read_to_string(&lib).unwrap().replace("let cost = price * input.proposed as f64;", "let cost: String = price * input.proposed as f64;");
    std::fs::write(&lib, broken).unwrap();
    let o = build();
    let said = text(&o);
    assert!(!o.status.success());
    let last = said.lines().rev().find(|l| l.starts_with("Error:") || l.starts_with("error:")).unwrap_or("");
    assert!(last.contains("does not compile") && last.contains("mismatched types") && last.contains("src/lib.rs:"), "{last}\n{said}");
    assert!(!last.contains("rustup target add"), "{last}");
}

#[test]
fn build_errors_in_python_and_js_are_the_authors_own() {
    require("componentize-py");
    require("componentize-js");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (lang, name) in [("python", "py-broken"), ("js", "js-broken")] {
        let o = scalewise(&["policy", "new", name, "--lang", lang], d);
        assert!(o.status.success(), "{}", text(&o));
    }
    // A module that is not there, imported at the top.
    let app = d.join("py-broken/app.py");
    std::fs::write(&app, format!("import no_such_module\n{}", std::fs::read_to_string(&app).unwrap())).unwrap();
    let o = scalewise(&["policy", "build", "py-broken", "--out-dir", "out"], d);
    let said = text(&o);
    assert!(!o.status.success() && said.contains("componentize-py could not build") && said.contains("No module named 'no_such_module'"), "{said}");
    let app = d.join("js-broken/app.js");
    std::fs::write(&app, format!("import {{ nothing }} from './no-such-module.js';\n{}", std::fs::read_to_string(&app).unwrap())).unwrap();
    let o = scalewise(&["policy", "build", "js-broken", "--out-dir", "out"], d);
    let said = text(&o);
    assert!(!o.status.success() && said.contains("componentize-js could not build") && said.contains("no-such-module.js"), "{said}");
    // A syntax error says where.
    std::fs::write(d.join("py-broken/app.py"), "def evaluate(:\n").unwrap();
    let o = scalewise(&["policy", "build", "py-broken", "--out-dir", "out"], d);
    assert!(!o.status.success() && text(&o).contains("SyntaxError"), "{}", text(&o));
    // A folder of no known language is named as such.
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let o = scalewise(&["policy", "build", "empty"], d);
    assert!(!o.status.success() && text(&o).contains("not a policy project"), "{}", text(&o));
}

/// The hostile guests of tests/guests, built with their kit.
fn hostile(lang: &str) -> PathBuf {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, out) = BUILT.get_or_init(|| {
        require("componentize-py");
        require("componentize-js");
        let dir = tempfile::tempdir().unwrap();
        for name in ["python-hostile", "js-hostile"] {
            let to = dir.path().join(name);
            std::fs::create_dir_all(&to).unwrap();
            for f in ["app.py", "pyproject.toml", "app.js", "package.json"] {
                let from = root().join("tests/guests").join(name).join(f);
                if from.is_file() {
                    std::fs::copy(&from, to.join(f)).unwrap();
                }
            }
        }
        // The JS guest imports the kit by relative path, as `policy new` writes it.
        let kit = dir.path().join("js-hostile/scalewise-policy");
        std::fs::create_dir_all(&kit).unwrap();
        std::fs::copy(root().join("sdk/js/index.js"), kit.join("index.js")).unwrap();
        let o = scalewise(&["policy", "build", "python-hostile", "js-hostile", "--out-dir", "out"], dir.path());
        assert!(o.status.success(), "{}", text(&o));
        let out = dir.path().join("out");
        (dir, out)
    });
    out.join(format!("{lang}-hostile.wasm"))
}

#[test]
fn hostile_python_and_js_policies_are_contained_and_the_last_good_version_serves() {
    let (_, good) = projects();
    for (lang, language) in [("python", "Python"), ("js", "JavaScript")] {
        let dir = tempfile::tempdir().unwrap();
        let settings = HashMap::from([("guest".to_string(), r#"{"target_per_worker": 1}"#.to_string())]);
        let options = SandboxOptions { memory_limit: 96 << 20, instance_mode: InstanceMode::Auto { max_calls: 10_000 }, ..SandboxOptions::default() };
        let registry = Arc::new(Registry::new(engine(options), dir.path(), settings));
        // The last good version: the template's strategy.
        install(&good.join(format!("{lang}-strategy.wasm")), dir.path(), "guest.wasm");
        registry.rescan();
        let good_generation = registry.get("guest").expect("the good version serves").generation;
        install(&hostile(lang), dir.path(), "guest.wasm");
        registry.rescan();
        let serving = registry.get("guest").unwrap();
        assert!(serving.generation > good_generation, "{lang}: the hostile version loaded (it behaves on the smoke call)");
        assert!(serving.instances().unwrap().starts_with("warm"), "{lang}: {:?}", serving.instances());

        let ask = |how: &str| {
            // With a window the last good version (the template) can answer.
            let input = StrategyInput {
                pool: Pool { id: how.into(), running: 3, booting: 0, min: 1, max: 50 },
                metrics: vec![MetricWindow::new("queue_depth", vec![Sample { at: 0, value: 7.0 }])],
                ..Default::default()
            };
            registry.evaluate("guest", &input)
        };
        for (how, says) in [
            ("raise", "ZeroDivisionError|RangeError: out of patience"),
            ("loop", "deadline"),
            ("alloc", "memory|deadline"),
            ("shape", "not a Proposal|not a number"),
            ("import", "No module named 'no_such_module'|TypeError"),
        ] {
            let e = ask(how).unwrap_or_else(|e| panic!("{lang} {how}: no fallback answered: {e}"));
            let why = e.fallback.clone().unwrap_or_else(|| panic!("{lang} {how}: answered without a fallback: {:?}", e.output.proposal));
            let why = format!("{why:?}");
            assert!(says.split('|').any(|s| why.contains(s)), "{lang} {how}: {why}");
            assert_eq!(e.generation, good_generation, "{lang} {how}: the last good version answered");
            if how == "raise" || how == "shape" {
                assert!(why.contains(language), "{lang} {how}: the error names the language: {why}");
            }
            // And the hostile version is still there for the calls it can answer.
            let fine = ask("fine").unwrap();
            assert_eq!((fine.output.proposal.reason.as_str(), fine.fallback.is_none()), ("hostile: behaving", true), "{lang} after {how}");
        }
    }
}

#[test]
fn the_kits_pass_their_own_tests() {
    run_ok(Command::new("python3").args(["-m", "unittest", "discover", "-s", "tests"]).current_dir(root().join("sdk/python")), "the Python kit's tests");
    run_ok(Command::new("node").args(["--test", "test/"]).current_dir(root().join("sdk/js")), "the JavaScript kit's tests");
}
