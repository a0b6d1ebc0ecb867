//! The `scalewise policy …` and `scalewise config …` commands, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

use scalewise_e2e::{builtin, guest, newcomer, root, scalewise_bin};

fn scalewise(args: &[&str]) -> Output {
    Command::new(scalewise_bin()).args(args).env("SCALEWISE_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_accepts_every_builtin_and_names_its_world() {
    for (name, role) in [
        ("target-tracking", "strategy"),
        ("step-scaling", "strategy"),
        ("queue-depth", "strategy"),
        ("weighted-vote", "consensus"),
        ("safest", "consensus"),
        ("budget-cap", "cost-rule"),
        ("predictive", "strategy"),
        ("quorum", "consensus"),
        ("median", "consensus"),
        ("confidence-weighted", "consensus"),
        ("hybrid", "consensus"),
        ("gpu-memory", "strategy"),
        ("severity", "strategy"),
        ("scheduled", "strategy"),
        ("price-catalog", "cost-rule"),
        ("spot-mix", "cost-rule"),
    ] {
        let settings = match name {
            "target-tracking" => r#"{"metrics":[{"name":"cpu","target":0.6}]}"#,
            "step-scaling" => r#"{"metric":"cpu","scale_out":{"threshold":0.7,"steps":[{"lower":0,"adjustment":1}]}}"#,
            "queue-depth" => r#"{"target_per_worker":10}"#,
            "predictive" => r#"{"metric":"requests","per_instance":50,"horizon_secs":300}"#,
            "gpu-memory" => r#"{"model":"small","models":{"small":6144}}"#,
            "severity" => r#"{"signals":[{"metric":"queue_depth","thresholds":[1,5,20,50]}]}"#,
            "scheduled" => r#"{"timezone":"Europe/Berlin","rules":[{"name":"office","cron":"* 8-17 * * MON-FRI","min":3}]}"#,
            "price-catalog" => r#"{"needs":{"vcpus":1,"memory_gib":2}}"#,
            _ => "{}",
        };
        let o = scalewise(&["policy", "check", path(&builtin(name)), "--settings", settings]);
        let out = text(&o);
        assert!(o.status.success(), "{name}: {out}");
        assert!(out.contains(&format!("role:     {role}")), "{name}: {out}");
        assert!(out.contains("contract: scalewise:policy@0.2.0"), "{name}: {out}");
        // Only the contract's own interfaces: no WASI, nothing else to deny.
        let imports = out.lines().find(|l| l.starts_with("  imports:")).unwrap();
        assert!(
            imports["  imports:".len()..].split(',').all(|i| i.trim().starts_with("scalewise:policy/")),
            "{name} imports more than the contract: {imports}"
        );
    }
}

#[test]
fn check_explains_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm at all").unwrap();
    for (file, settings, expected) in [
        (junk.clone(), "{}", "not a WebAssembly component"),
        (guest("wrong-world"), "{}", "exports none of the scalewise worlds"),
        (guest("wrong-version"), "{}", "built against scalewise:policy@1.0.0"),
        (newcomer(), "{}", "missing field `target_per_worker`"),
        (newcomer(), "{\"target_per_worker\": ", "--settings is not valid JSON"),
    ] {
        let o = scalewise(&["policy", "check", path(&file), "--settings", settings]);
        assert!(!o.status.success(), "{} passed", file.display());
        assert!(text(&o).contains(expected), "{}: {}", file.display(), text(&o));
    }
    let o = scalewise(&["policy", "check", "/nonexistent/p.wasm"]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent/p.wasm"), "{}", text(&o));
}

#[test]
fn test_prints_the_output_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        r#"{"pool": {"id": "web", "running": 2, "min": 1, "max": 20},
            "metrics": [{"name": "rps", "samples": [{"at": 0, "value": 95}]}],
            "now": 1000, "settings": {"target_per_worker": 10}}"#,
    )
    .unwrap();
    let o = scalewise(&["policy", "test", path(&newcomer()), "--input", path(&input)]);
    assert!(o.status.success(), "{}", text(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["proposal"]["desired"], 10.0);
    assert_eq!(out["proposal"]["reason"], "95 rps / 10 per worker");

    // The same with a rhai script of the same rule.
    let script = dir.path().join("rpw.rhai");
    std::fs::write(
        &script,
        r#"fn strategy(input) {
             let rps = input.metrics[0].samples[-1].value;
             #{ desired: (rps / input.settings.target_per_worker).ceiling(), confidence: 0.9, reason: `${rps} rps` }
           }"#,
    )
    .unwrap();
    let o = scalewise(&["policy", "test", path(&script), "--input", path(&input)]);
    assert!(o.status.success(), "{}", text(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["proposal"]["desired"], 10.0);

    // An input of the wrong shape is named as such.
    std::fs::write(&input, r#"{"pool": 3, "settings": {"target_per_worker": 10}}"#).unwrap();
    let o = scalewise(&["policy", "test", path(&newcomer()), "--input", path(&input)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a valid strategy input"), "{}", text(&o));
}

#[test]
fn bench_reports_fresh_and_reused_latency() {
    let o = scalewise(&["policy", "bench", path(&builtin("safest")), "--iterations", "300"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for row in ["fresh instance", "reused instance"] {
        let line = out.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no {row} row: {out}"));
        let numbers: Vec<f64> = line[row.len()..].split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(numbers.len(), 3, "{line}");
        assert!(numbers.iter().all(|n| *n > 0.0), "{line}");
    }
}

#[test]
fn config_check_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("scalewise.toml");
    std::fs::write(&cfg, "[policies]\ndeadline_ms = 0\n").unwrap();
    let o = scalewise(&["config", "check", path(&cfg)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("policies.deadline_ms"), "{}", text(&o));
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
    let o = scalewise(&["config", "check", path(&cfg)]);
    assert!(o.status.success(), "{}", text(&o));
    // The shipped examples, with the built-in policies they name.
    let policies = dir.path().join("policies.d");
    scalewise_e2e::host::install_builtins(&policies, &["queue-depth", "target-tracking", "safest", "budget-cap"]);
    for example in ["examples/scalewise.toml", "examples/prometheus-pool.toml", "examples/advisor.toml"] {
        let o = scalewise(&["config", "check", path(&root().join(example)), "--policy-dir", path(&policies)]);
        assert!(o.status.success(), "the shipped example config {example}: {}", text(&o));
        assert!(text(&o).contains("references checked"), "{}", text(&o));
    }
}

/// `config check` loads the policies as the host would: a name no file
/// defines, a policy in the wrong role and settings its `validate-config`
/// rejects are each a problem with its field path.
#[test]
fn config_check_loads_the_policies_and_runs_their_validate_config() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    scalewise_e2e::host::install_builtins(&policies, &["queue-depth", "safest"]);
    let cfg = dir.path().join("scalewise.toml");
    std::fs::write(
        &cfg,
        r#"
[policies]
dir = "policies.d"
[policies.settings.queue-depth]
target_per_worker = "ten"

[[pools]]
id = "web"
min = 1
max = 5
strategies = [{ policy = "queue-depth" }, { policy = "safest" }, { policy = "no-such-policy" }]
consensus = "safest"
provider = { kind = "local", command = ["true"] }
metrics = [{ name = "queue_depth", source = "push" }]

[[pools]]
id = "batch"
min = 1
max = 5
strategies = [{ policy = "queue-depth" }]
settings = { queue-depth = { target_per_worker = 5 } }
provider = { kind = "local", command = ["true"] }
metrics = [{ name = "queue_depth", source = "push" }]
"#,
    )
    .unwrap();
    let o = scalewise(&["config", "check", path(&cfg)]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    for want in [
        "3 problems",
        "pools[0].strategies[0].policy: `queue-depth` rejected its settings (policies.settings.queue-depth): invalid settings: target_per_worker: invalid type: string \"ten\"",
        "pools[0].strategies[1].policy: `safest` is a consensus, not a strategy",
        "pools[0].strategies[2].policy: no policy file defines `no-such-policy`",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    assert!(!out.contains("pools[1]"), "the pool's own settings are valid: {out}");
}

#[test]
fn config_check_lists_every_problem_of_a_pool_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("scalewise.toml");
    std::fs::write(
        &cfg,
        r#"
[policies]
deadline_ms = 0
[sources.prom]
kind = "prometheus"
url = "localhost:9090"
[[pools]]
id = "web pool"
min = 5
max = 2
interval_ms = 10
strategies = []
provider = { kind = "local", command = [] }
metrics = [{ name = "cpu", source = "graphite" }]
guardrails = { tolerance = 1.5, scale_up_limits = [{ type = "members", value = 0, period_secs = 0 }] }
cost = { kind = "m5.large" }
"#,
    )
    .unwrap();
    let o = scalewise(&["config", "check", path(&cfg)]);
    assert!(!o.status.success());
    let out = text(&o);
    for want in [
        "11 problems",
        "policies.deadline_ms:",
        "sources.prom.url:",
        "pools[0].id:",
        "pools[0].min: 5 is above max 2",
        "pools[0].interval_ms:",
        "pools[0].strategies:",
        "pools[0].provider.command:",
        "pools[0].metrics[0].source: no source `graphite`",
        "pools[0].guardrails.tolerance:",
        "pools[0].guardrails.scale_up_limits[0]:",
        "pools[0].cost.kind:",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    // A type error stops parsing there, with the path and the line.
    std::fs::write(&cfg, "[[pools]]\nid = \"a\"\nmin = \"one\"\n").unwrap();
    let out = text(&scalewise(&["config", "check", path(&cfg)]));
    assert!(out.contains("pools[0].min:") && out.contains("line 3"), "{out}");
}

/// A config, or a file a config names (a key, a CA bundle, a prompt
/// template), that is a FIFO or a device is refused for what it is, at
/// once: an open that waited for a writer would hang the check, and a
/// host's start or reload, for good.
#[test]
fn a_config_or_a_file_it_names_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(path(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let check = |cfg: &Path| -> String {
        let mut child = Command::new(scalewise_bin())
            .args(["config", "check", path(cfg)])
            .env("SCALEWISE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                child.kill().unwrap();
                panic!("`config check {}` hung", cfg.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        assert!(!o.status.success());
        text(&o)
    };
    let out = check(&fifo);
    assert!(out.contains("a FIFO, not a regular file"), "{out}");
    let out = check(Path::new("/dev/zero"));
    assert!(out.contains("a character device, not a regular file"), "{out}");

    let cfg = dir.path().join("scalewise.toml");
    let advisor = |field: &str, at: &str| {
        let pool = r#"[[pools]]
id = "api"
min = 1
max = 4
strategies = [{ policy = "queue-depth" }]
provider = { kind = "local", command = ["sleep", "60"] }
[pools.advisor]
endpoint = "http://127.0.0.1:9/v1"
model = "m"
vote = false
review_above = 2
"#;
        let key = if field == "api_key_file" { String::new() } else { "api_key_env = \"PATH\"\n".to_owned() };
        std::fs::write(&cfg, format!("{pool}{key}{field} = \"{at}\"\n")).unwrap();
        check(&cfg)
    };
    for (field, at, kind) in [
        ("api_key_file", path(&fifo), "a FIFO"),
        ("ca_file", path(&fifo), "a FIFO"),
        ("system_prompt_file", "/dev/zero", "a character device"),
        ("prompt_file", path(&fifo), "a FIFO"),
    ] {
        let out = advisor(field, at);
        assert!(out.contains(&format!("pools.api.advisor.{field}")) && out.contains(&format!("{kind}, not a regular file")), "{field}: {out}");
    }
}

/// `RUST_LOG` is honoured when `--log` / `SCALEWISE_LOG` are not given,
/// and a filter that does not parse is refused, naming where it came from.
#[test]
fn a_bad_log_filter_is_refused_and_rust_log_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("scalewise.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(scalewise_bin());
        c.env_remove("SCALEWISE_LOG").env_remove("RUST_LOG").envs(env.iter().copied()).args(args).arg("config").arg("check").arg(&cfg);
        c.output().unwrap()
    };
    let o = run(&[("RUST_LOG", "scalewise=loud")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`scalewise=loud` from RUST_LOG does not parse"), "{}", text(&o));
    let o = run(&[], &["--log", "nonsense=="]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("from --log / SCALEWISE_LOG"), "{}", text(&o));
    // --log wins over RUST_LOG, and a good RUST_LOG is taken.
    assert!(run(&[("RUST_LOG", "scalewise=loud")], &["--log", "warn"]).status.success());
    assert!(run(&[("RUST_LOG", "scalewise=debug")], &[]).status.success());
    // RUST_LOG sets the level: a script's debug line shows at debug only.
    let script = dir.path().join("talks.rhai");
    std::fs::write(&script, r#"fn strategy(input) { debug("said at debug"); #{ desired: 1, reason: "x" } }"#).unwrap();
    let check = |env: &[(&str, &str)]| {
        let o = Command::new(scalewise_bin()).env_remove("SCALEWISE_LOG").env_remove("RUST_LOG").envs(env.iter().copied()).args(["policy", "check"]).arg(&script).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o).contains("said at debug")
    };
    assert!(check(&[("RUST_LOG", "scalewise=debug")]), "RUST_LOG=scalewise=debug shows debug lines");
    assert!(!check(&[("RUST_LOG", "info")]) && !check(&[]), "info, and the default, do not");
}

/// `policy build` of several crates: those of one workspace in one cargo
/// run, a crate of its own apart, every component written, in the order
/// asked for.
#[test]
fn policy_build_builds_each_crate_asked_for_in_order() {
    let out = tempfile::tempdir().unwrap();
    let root = root();
    let crates = [root.join("policies/median"), root.join("tests/guests/newcomer"), root.join("policies/safest")];
    let mut args = vec!["policy", "build"];
    args.extend(crates.iter().map(|c| path(c)));
    args.extend(["--out-dir", path(out.path())]);
    let o = scalewise(&args);
    assert!(o.status.success(), "{}", text(&o));
    let built: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_prefix("built ")).map(str::to_owned).collect();
    let names: Vec<&str> = built.iter().map(|b| Path::new(b).file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(names, ["median.wasm", "newcomer.wasm", "safest.wasm"], "{}", text(&o));
    for b in &built {
        let bytes = std::fs::read(b).unwrap();
        // A component, not a core module: layer 1 in the header.
        assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{b} is not a component");
    }
    let o = scalewise(&["policy", "check", path(&out.path().join("median.wasm"))]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The SDK carries its contract (`sdk/wit`), and the model policy inherits
/// nothing from the workspace: a copy of `policies/queue-depth` outside the
/// repository, with the SDK as a path dependency, builds with `policy
/// build` and passes `policy check`.
#[test]
fn a_copy_of_the_model_policy_builds_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("my-policy");
    std::fs::create_dir_all(copy.join("src")).unwrap();
    for f in ["src/lib.rs", "src/tests.rs"] {
        if root().join("policies/queue-depth").join(f).is_file() {
            std::fs::copy(root().join("policies/queue-depth").join(f), copy.join(f)).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(root().join("policies/queue-depth/Cargo.toml")).unwrap();
    assert!(!manifest.contains(".workspace"), "the model policy inherits nothing from the workspace:\n{manifest}");
    let sdk = root().join("sdk");
    std::fs::write(copy.join("Cargo.toml"), manifest.replace("path = \"../../sdk\"", &format!("path = {:?}", sdk.display().to_string()))).unwrap();
    // The workspace's lock pins the same versions, so the build needs no
    // registry beyond what the workspace already fetched.
    std::fs::copy(root().join("Cargo.lock"), copy.join("Cargo.lock")).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(scalewise_bin())
        .args(["policy", "build"])
        .arg(&copy)
        .arg("--out-dir")
        .arg(&out)
        .env("CARGO_TARGET_DIR", root().join("target/test-outside"))
        .env("CARGO_NET_OFFLINE", "true")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let wasm = out.join("queue-depth.wasm");
    let o = Command::new(scalewise_bin()).args(["policy", "check"]).arg(&wasm).args(["--settings", r#"{"target_per_worker": 10}"#]).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
