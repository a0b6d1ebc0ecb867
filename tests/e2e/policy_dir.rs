//! The policy directory is untrusted input. Each test puts something an
//! operator (or a broken deploy) could put there, and asserts what must
//! hold: nothing is read without bound, nothing half-written is loaded,
//! the serving version keeps serving, and what happened is said clearly in
//! the status.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use scalewise::policy::file::FileLimits;
use scalewise::policy::{Registry, SandboxOptions};
use scalewise_e2e::{engine, guest, install};
use scalewise_sdk::{MetricWindow, Pool, Sample, StrategyInput};

fn registry(dir: &Path, settings: &[(&str, &str)], limits: FileLimits) -> Registry {
    let settings: HashMap<String, String> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let options = SandboxOptions { deadline: Duration::from_millis(100), ..SandboxOptions::default() };
    Registry::new(engine(options), dir, settings).with_file_limits(limits)
}

const NO_SETTLE: FileLimits = FileLimits { max_bytes: 1 << 20, settle: Duration::ZERO };

fn script(reason: &str) -> String {
    format!("fn strategy(input) {{ #{{ desired: 2, reason: \"{reason}\" }} }}")
}

fn reason(registry: &Registry, id: &str) -> String {
    let input = StrategyInput {
        pool: Pool { id: "p".into(), running: 2, booting: 0, min: 1, max: 10 },
        metrics: vec![MetricWindow::new("cpu", vec![Sample { at: 0, value: 1.0 }])],
        now: 1000,
        ..Default::default()
    };
    registry.evaluate(id, &input).unwrap().output.proposal.reason
}

fn load_error(registry: &Registry, id: &str) -> String {
    registry.status_of(id).and_then(|s| s.last_load_error).map(|e| e.message).unwrap_or_default()
}

#[test]
fn a_device_link_a_fifo_and_an_oversized_file_are_refused_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.wasm")).unwrap();
    std::os::unix::fs::symlink("/dev/urandom", dir.path().join("random.rhai")).unwrap();
    let fifo = std::ffi::CString::new(dir.path().join("pipe.rhai").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // 2 GB on paper; reading it whole would take gigabytes of memory.
    std::fs::File::create(dir.path().join("big.wasm")).unwrap().set_len(2 << 30).unwrap();
    std::fs::write(dir.path().join("good.rhai"), script("good")).unwrap();

    let registry = registry(dir.path(), &[], NO_SETTLE);
    let report = registry.rescan();
    assert_eq!(report.loaded, ["good"], "{report:?}");
    assert_eq!(reason(&registry, "good"), "good");
    for (id, expected) in [("zero", "character device"), ("random", "character device"), ("pipe", "a FIFO"), ("big", "over the 1048576-byte cap")] {
        let error = load_error(&registry, id);
        assert!(error.contains(expected), "{id}: {error}");
        assert!(registry.get(id).is_none(), "{id} must not load");
    }
    assert!(load_error(&registry, "zero").contains("only regular files"));
}

#[test]
fn a_file_being_written_is_loaded_once_it_settles_and_uses_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let settle = Duration::from_millis(300);
    let registry = registry(dir.path(), &[], FileLimits { settle, ..NO_SETTLE });
    let path = dir.path().join("slow.rhai");
    let text = script("whole");
    // Written in pieces, each rescan sees a half-written script.
    for end in [5, 20, text.len() - 3] {
        std::fs::write(&path, &text[..end]).unwrap();
        let report = registry.rescan();
        assert_eq!(report.pending, ["slow"], "{report:?}");
        assert!(report.failed.is_empty() && report.loaded.is_empty(), "{report:?}");
        assert!(report.recheck_in.is_some_and(|d| d <= settle));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&path, &text).unwrap();
    assert_eq!(registry.rescan().pending, ["slow"]);
    assert!(registry.status_of("slow").is_none_or(|s| s.last_load_error.is_none()), "no error while it settles");
    std::thread::sleep(settle + Duration::from_millis(50));
    let report = registry.rescan();
    assert_eq!(report.loaded, ["slow"], "{report:?}");
    assert_eq!(reason(&registry, "slow"), "whole");
    assert_eq!(registry.get("slow").unwrap().generation, 1, "the half-written states used no version numbers");
}

#[test]
fn two_files_for_one_id_are_both_refused_and_the_serving_version_stays() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[], NO_SETTLE);
    std::fs::write(dir.path().join("p.rhai"), script("serving")).unwrap();
    registry.rescan();
    let serving = registry.get("p").unwrap().generation;

    install(&guest("hostile"), dir.path(), "p.wasm");
    let report = registry.rescan();
    assert!(report.failed.iter().any(|(id, e)| id == "p" && e.contains("p.rhai") && e.contains("p.wasm")), "{report:?}");
    assert!(report.loaded.is_empty() && report.unloaded.is_empty(), "{report:?}");
    assert_eq!(registry.get("p").unwrap().generation, serving, "the serving version stays");
    assert_eq!(reason(&registry, "p"), "serving");
    let status = registry.status_of("p").unwrap();
    assert_eq!(status.clash.as_ref().map(Vec::len), Some(2));
    assert!(load_error(&registry, "p").contains(&format!("v{serving} keeps serving")), "{}", load_error(&registry, "p"));
    // Still refused on the next scan: the clash is not forgotten.
    registry.rescan();
    assert_eq!(reason(&registry, "p"), "serving");

    // Removing one ends the clash; the survivor is what serves.
    std::fs::remove_file(dir.path().join("p.rhai")).unwrap();
    let report = registry.rescan();
    assert_eq!(report.loaded, ["p"], "{report:?}");
    let status = registry.status_of("p").unwrap();
    assert!(status.clash.is_none() && status.last_load_error.is_none(), "{status:?}");
    assert_eq!(reason(&registry, "p"), "hostile: behaving");
}

#[test]
fn removing_a_file_that_pools_use_says_which_pools_lost_it() {
    let dir = tempfile::tempdir().unwrap();
    let users = BTreeMap::from([("p".to_string(), vec!["web".to_string(), "batch".to_string()])]);
    let registry = registry(dir.path(), &[], NO_SETTLE).with_users(users);
    std::fs::write(dir.path().join("p.rhai"), script("x")).unwrap();
    std::fs::write(dir.path().join("unused.rhai"), script("x")).unwrap();
    registry.rescan();
    std::fs::remove_file(dir.path().join("p.rhai")).unwrap();
    std::fs::remove_file(dir.path().join("unused.rhai")).unwrap();
    let report = registry.rescan();
    assert_eq!(report.unloaded, ["p", "unused"]);
    let error = load_error(&registry, "p");
    assert!(error.contains("p.rhai was removed") && error.contains("[web, batch]"), "{error}");
    assert!(registry.status_of("p").unwrap().serving.is_none());
    assert_eq!(load_error(&registry, "unused"), "", "a policy no pool uses goes quietly");
}

#[test]
fn a_hang_in_validate_config_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[("h", r#"{"validate":"loop"}"#)], NO_SETTLE);
    install(&guest("hostile"), dir.path(), "h.wasm");
    let report = registry.rescan();
    let (_, error) = report.failed.iter().find(|(id, _)| id == "h").expect("refused");
    assert!(error.contains("`validate-config` call failed") && error.contains("deadline"), "{error}");
    assert!(!error.contains("smoke"), "{error}");
}

#[test]
fn version_numbers_belong_to_a_build_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    std::fs::create_dir(&policies).unwrap();
    let ledger = dir.path().join("versions.json");
    let start = || registry(&policies, &[], NO_SETTLE).with_version_ledger(&ledger);

    let host = start();
    let path = policies.join("p.rhai");
    std::fs::write(&path, script("one")).unwrap();
    host.rescan();
    std::fs::write(&path, "fn strategy(input) { this does not parse").unwrap();
    host.rescan();
    std::fs::write(&path, script("two")).unwrap();
    host.rescan();
    assert_eq!(host.get("p").unwrap().generation, 2, "the broken file used no number");
    std::fs::write(&path, script("one")).unwrap();
    host.rescan();
    assert_eq!(host.get("p").unwrap().generation, 1, "a revert is the same version");
    drop(host);

    std::fs::write(&path, script("two")).unwrap();
    let restarted = start();
    restarted.rescan();
    assert_eq!(restarted.get("p").unwrap().generation, 2, "the same build after a restart");
}
