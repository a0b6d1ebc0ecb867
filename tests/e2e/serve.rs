//! The host as a service: a newcomer's strategy dropped into the policy
//! directory of a running host is picked up without a restart.

use std::time::{Duration, Instant};

use scalewise_e2e::host::{Host, free_port};
use scalewise_e2e::{install, newcomer};
use serde_json::{Value, json};

#[test]
fn a_new_strategy_is_picked_up_by_a_running_host() {
    let component = newcomer();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scalewise.toml");
    std::fs::write(
        &config,
        "[server]\ntoken = \"s3cret\"\n[policies]\ndir = \"policies.d\"\ncache_dir = \"cache\"\n\
         [policies.settings.newcomer]\ntarget_per_worker = 10\n",
    )
    .unwrap();
    let host = Host::start(&config, free_port());
    let client = reqwest::blocking::Client::new();
    let policies: Value = client.get(format!("{}/policies", host.base)).send().unwrap().json().unwrap();
    assert_eq!(policies, json!([]));

    install(&component, &dir.path().join("policies.d"), "newcomer.wasm");
    let started = Instant::now();
    let status = loop {
        let r = client.get(format!("{}/policies/newcomer", host.base)).send().unwrap();
        if r.status().is_success() {
            let s: Value = r.json().unwrap();
            if !s["serving"].is_null() {
                break s;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the host never picked the policy up");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status["serving"]["role"], "strategy");
    assert_eq!(status["serving"]["runtime"], "wasm");
    // It served first from its Winch build; the Cranelift build follows.
    let started = Instant::now();
    loop {
        let s: Value = client.get(format!("{}/policies/newcomer", host.base)).send().unwrap().json().unwrap();
        if s["serving"]["compiled_by"] == "cranelift" {
            assert_eq!(s["serving"]["generation"], status["serving"]["generation"]);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never tiered up: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let input = json!({
        "pool": {"id": "web", "running": 2, "min": 1, "max": 20},
        "metrics": [{"name": "rps", "samples": [{"at": 0, "value": 73}]}],
        "now": 1000
    });
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).json(&input).send().unwrap();
    assert!(r.status().is_success());
    let evaluation: Value = r.json().unwrap();
    assert_eq!(evaluation["output"]["proposal"]["desired"], 8.0);
    assert_eq!(evaluation["digest"], status["serving"]["digest"]);

    // Bad API calls get clear errors and change nothing.
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).body("{").send().unwrap();
    assert_eq!(r.status(), 400);
    let r = client.post(format!("{}/policies/nope/evaluate", host.base)).json(&input).send().unwrap();
    assert_eq!(r.status(), 404);
    let r = client.post(format!("{}/policies/reload", host.base)).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = client.post(format!("{}/policies/reload", host.base)).bearer_auth("s3cret").send().unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{}/policies/newcomer", host.base)).send().unwrap();
    let s: Value = r.json().unwrap();
    assert_eq!(s["calls"], 1, "{s}");
}
