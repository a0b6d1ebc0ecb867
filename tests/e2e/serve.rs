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
    // Every timestamp also in RFC 3339.
    let utc = status["serving"]["loaded_at_utc"].as_str().unwrap();
    assert!(utc.len() == 24 && utc.ends_with('Z') && utc.starts_with("20"), "{status}");
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
    assert_eq!(r.status(), 401, "evaluate needs the token");
    let body: Value = r.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    // The scheme is case-insensitive (RFC 9110).
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).header("authorization", "bearer s3cret").json(&input).send().unwrap();
    assert!(r.status().is_success());
    let evaluation: Value = r.json().unwrap();
    assert_eq!(evaluation["output"]["proposal"]["desired"], 8.0);
    assert_eq!(evaluation["digest"], status["serving"]["digest"]);

    // Bad API calls get clear errors and change nothing.
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).bearer_auth("s3cret").body("{").send().unwrap();
    assert_eq!(r.status(), 400);
    let r = client.post(format!("{}/policies/nope/evaluate", host.base)).bearer_auth("s3cret").json(&input).send().unwrap();
    assert_eq!(r.status(), 404);
    // Settings as an object, as `policy test` takes them: they replace the
    // configured ones (10 per worker) for this call, checked first.
    let mut with_settings = input.clone();
    with_settings["settings"] = json!({"target_per_worker": 20});
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).bearer_auth("s3cret").json(&with_settings).send().unwrap();
    assert!(r.status().is_success());
    let evaluation: Value = r.json().unwrap();
    assert_eq!(evaluation["output"]["proposal"]["desired"], 4.0, "73 rps at the given 20 per worker: {evaluation}");
    with_settings["settings"] = json!({"per_worker": 20});
    let r = client.post(format!("{}/policies/newcomer/evaluate", host.base)).bearer_auth("s3cret").json(&with_settings).send().unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("target_per_worker"), "the policy's own refusal: {body}");
    // Every error is JSON: an unknown route, a wrong method, a body too large.
    for (r, status) in [
        (client.get(format!("{}/no/such/route", host.base)).send().unwrap(), 404),
        (client.delete(format!("{}/policies/newcomer", host.base)).send().unwrap(), 405),
        (client.post(format!("{}/policies/newcomer/evaluate", host.base)).bearer_auth("s3cret").body(vec![b' '; 3 << 20]).send().unwrap(), 413),
    ] {
        assert_eq!(r.status(), status);
        let body: Value = r.json().expect("a JSON error");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    let r = client.post(format!("{}/policies/reload", host.base)).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = client.post(format!("{}/policies/reload", host.base)).bearer_auth("s3cret").send().unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{}/policies/newcomer", host.base)).send().unwrap();
    let s: Value = r.json().unwrap();
    assert_eq!(s["calls"], 0, "trying a policy out is not a live call: {s}");
}

/// `POST /policies/ID/evaluate` runs at most `server.evaluate_concurrency`
/// at once: a caller cannot take the CPU the pools' ticks need, nor make a
/// policy look faulty in its live counters.
#[test]
fn evaluate_is_bounded_and_leaves_the_live_counters_alone() {
    use scalewise_e2e::guest;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies.d")).unwrap();
    install(&guest("hostile"), &dir.path().join("policies.d"), "h.wasm");
    let config = dir.path().join("scalewise.toml");
    std::fs::write(&config, "[server]\ntoken = \"t\"\nevaluate_without_token = true\n[policies]\ndir = \"policies.d\"\ncache_dir = \"cache\"\ndeadline_ms = 1500\n").unwrap();
    let host = Host::start(&config, free_port());
    let input = |pool: &str| json!({"pool": {"id": pool, "running": 2, "min": 1, "max": 20}, "metrics": [], "now": 1000});
    let base = host.base.clone();
    // The hostile guest loops on pool `loop`: this call holds the one permit.
    let slow = std::thread::spawn(move || reqwest::blocking::Client::new().post(format!("{base}/policies/h/evaluate")).json(&input("loop")).send().unwrap().status().as_u16());
    std::thread::sleep(Duration::from_millis(400));
    let client = reqwest::blocking::Client::new();
    let r = client.post(format!("{}/policies/h/evaluate", host.base)).json(&input("fine")).send().unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("server.evaluate_concurrency"), "{body}");
    assert_eq!(slow.join().unwrap(), 422, "the loop ran past its deadline");
    // A caller who hangs up does not free its place: the loop runs on to
    // its deadline, and holds the permit until then.
    // (700 ms: long enough for the call to reach its evaluation on a busy
    // machine, well short of the 1500 ms deadline.)
    let impatient = reqwest::blocking::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    assert!(impatient.post(format!("{}/policies/h/evaluate", host.base)).json(&input("loop")).send().is_err());
    let r = client.post(format!("{}/policies/h/evaluate", host.base)).json(&input("fine")).send().unwrap();
    assert_eq!(r.status(), 429, "the abandoned loop still runs");
    // Its deadline frees the place. Open without a token (opted in), and
    // counted nowhere live.
    let started = Instant::now();
    let r = loop {
        let r = client.post(format!("{}/policies/h/evaluate", host.base)).json(&input("fine")).send().unwrap();
        if r.status() != 429 || started.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let waited = started.elapsed();
    assert!(r.status().is_success(), "{} after {waited:?}", r.status());
    assert!(waited > Duration::from_millis(200), "the place was free after {waited:?}, before the abandoned loop's deadline");
    let status = host.get("/policies/h");
    assert_eq!((status["calls"].as_u64(), status["timeouts"].as_u64()), (Some(0), Some(0)), "{status}");
    assert!(status["last_error"].is_null(), "{status}");
}

/// A policy directory holding a link to `/dev/zero`, a 2 GB sparse
/// `*.wasm` and a file being written slowly: the host starts at once,
/// stays small, and its pool keeps deciding on time.
#[test]
fn a_hostile_policy_directory_does_not_hold_the_host_up() {
    use scalewise_e2e::host::{SLEEPER, queue_depth_config};
    let dir = tempfile::tempdir().unwrap();
    let config = queue_depth_config(
        dir.path(),
        "t0ken",
        &format!(
            "[[pools]]\nid = \"k\"\nmin = 1\nmax = 3\ninterval_ms = 200\nstrategies = [{{ policy = \"queue-depth\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\n\
             metrics = [{{ name = \"queue_depth\", source = \"push\", window_secs = 30 }}]\n\
             [[pools]]\nid = \"demo\"\nmin = 1\nmax = 2\nstrategies = [{{ policy = \"queue-depth\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\n\
             metrics = [{{ name = \"queue_depth\", source = \"push\", window_secs = 30 }}]\n"
        ),
    );
    let policies = dir.path().join("policies.d");
    std::os::unix::fs::symlink("/dev/zero", policies.join("zero.wasm")).unwrap();
    std::fs::File::create(policies.join("huge.wasm")).unwrap().set_len(2 << 30).unwrap();
    scalewise_e2e::scalewise_bin();
    let slow = policies.join("slow.rhai");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&slow).unwrap();
        for b in "fn strategy(input) { #{ desired: 1, reason: \"written slowly\" } }".bytes() {
            f.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let started = Instant::now();
    let host = Host::start(&config, free_port());
    let up = started.elapsed();
    assert!(up < Duration::from_secs(2), "/healthz answered after {up:?}");

    // While the slow file is still being written: small, and deciding.
    std::thread::sleep(Duration::from_secs(2));
    let rss = host.rss_bytes();
    assert!(rss < 200 << 20, "resident {} MiB", rss >> 20);
    let status = host.get("/policies/slow");
    assert!(status["last_load_error"].is_null() && status["serving"].is_null(), "half-written, it is neither loaded nor refused: {status}");
    let zero = host.get("/policies/zero");
    assert!(zero["last_load_error"]["message"].as_str().unwrap().contains("character device"), "{zero}");
    let huge = host.get("/policies/huge");
    assert!(huge["last_load_error"]["message"].as_str().unwrap().contains("policies.max_file_bytes"), "{huge}");
    let decisions: Value = host.get("/pools/k/decisions?limit=1000");
    let at: Vec<i64> = decisions.as_array().unwrap().iter().map(|d| d["at"].as_i64().unwrap()).collect();
    // A tick held up by the files would come seconds late (reading the
    // 2 GB file took 4 s; /dev/zero never ends). The bounds leave room for
    // a busy machine's stalls, which other tests in this binary cause.
    assert!(at.len() >= 5, "{} decisions in 2 s at 200 ms", at.len());
    let worst = at.windows(2).map(|w| (w[0] - w[1]).abs()).max().unwrap();
    assert!(worst < 1500, "a decision came {worst} ms after the one before");
    eprintln!("healthz after {up:?}, resident {} MiB, {} decisions, widest gap {worst} ms", rss >> 20, at.len());

    writer.join().unwrap();
    let loaded = host.wait_for("the slow file to load once written", Duration::from_secs(20), |h| {
        let s = h.get("/policies/slow");
        (!s["serving"].is_null()).then_some(s)
    });
    assert!(loaded["last_load_error"].is_null(), "{loaded}");
    assert_eq!(loaded["serving"]["generation"], 2, "one version for queue-depth, one for the finished file: {loaded}");
}

/// `/readyz` is ready only when every policy a pool uses serves; `/healthz`
/// answers all along.
#[test]
fn readyz_waits_for_the_policies_the_pools_use() {
    use scalewise_e2e::host::SLEEPER;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies.d")).unwrap();
    let config = dir.path().join("scalewise.toml");
    std::fs::write(
        &config,
        format!(
            "[policies]\ndir = \"policies.d\"\nsettle_ms = 100\n[journal]\npath = \"journal.redb\"\n\
             [[pools]]\nid = \"web\"\nmin = 1\nmax = 2\nstrategies = [{{ policy = \"later\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\nmetrics = [{{ name = \"x\", source = \"push\" }}]\n"
        ),
    )
    .unwrap();
    let host = Host::start(&config, free_port());
    let r = reqwest::blocking::get(format!("{}/readyz", host.base)).unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().unwrap();
    assert!(body["problems"][0].as_str().unwrap().contains("policy `later` (used by web) is not loaded"), "{body}");
    std::fs::write(dir.path().join("policies.d/later.rhai"), r#"fn strategy(input) { #{ desired: 1, reason: "here" } }"#).unwrap();
    host.wait_for("readiness", Duration::from_secs(15), |h| {
        let r = reqwest::blocking::get(format!("{}/readyz", h.base)).ok()?;
        (r.status() == 200).then_some(())
    });
}

/// schemathesis (PyPI) against a live host, with its token, bounded in
/// time: generated calls to every route in `GET /openapi.json` (valid ones
/// from the document's examples and schemas, and invalid ones) get no
/// server error, and every answer matches what the document says of its
/// status, content type and body. A fixed seed keeps a failure repeatable.
#[test]
fn schemathesis_finds_the_live_api_true_to_its_openapi_document() {
    use scalewise_e2e::host::{IMMEDIATE, SLEEPER, install_builtins, queue_depth_config};
    let schemathesis = scalewise_e2e::tools::schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let token = "schema-t0ken";
    // A pool with a cost rule, a budget and approvals, so that decisions,
    // budgets and pending approvals are there to be described; and a second
    // pool the demo's load generator feeds, so that `POST /demo/take` has
    // jobs to hand out (each pool has its own pushed series).
    let config = queue_depth_config(
        dir.path(),
        token,
        &format!(
            "[policies.settings.budget-cap]\nmax_hourly = 0.5\n[demo]\npool = \"demo\"\nbase_rate = 5.0\npeak_rate = 5.0\n\
             [[pools]]\nid = \"web\"\nmin = 1\nmax = 4\ninterval_ms = 300\napproval_above = 2\n\
             strategies = [{{ policy = \"queue-depth\" }}]\ncost_rules = [\"budget-cap\"]\n\
             cost = {{ kind = \"worker\", catalog = [{{ name = \"worker\", on_demand_hourly = 0.04 }}], budget = 1000.0 }}\n\
             {IMMEDIATE}\nprovider = {{ kind = \"local\", command = {SLEEPER} }}\n\
             metrics = [{{ name = \"queue_depth\", source = \"push\", window_secs = 30 }}]\n\
             [[pools]]\nid = \"demo\"\nmin = 1\nmax = 2\nstrategies = [{{ policy = \"queue-depth\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\n\
             metrics = [{{ name = \"queue_depth\", source = \"push\", window_secs = 30 }}]\n"
        ),
    );
    install_builtins(&dir.path().join("policies.d"), &["budget-cap"]);
    let host = Host::start(&config, free_port());
    let (status, body) = host.post("/pools/web/metrics", Some(token), r#"{"name": "queue_depth", "value": 35}"#);
    assert_eq!(status, 200, "{body}");
    host.wait_for("a change held for approval", Duration::from_secs(20), |h| h.get("/pools/web")["pending_approval"].as_object().map(|_| ()));

    // Bounded twice: schemathesis stops generating after --max-time, and a
    // run that overstays that by far (a hung request past its timeouts) is
    // killed.
    let log = dir.path().join("schemathesis.log");
    let mut run = std::process::Command::new(&schemathesis)
        .current_dir(dir.path())
        .args(["run", &format!("{}/openapi.json", host.base)])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "20250119", "--workers", "1"])
        .args(["--max-time", "100", "--request-timeout", "10", "--generation-database", "none", "--no-color"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap())
        .spawn()
        .expect("run schemathesis");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(200) {
            let _ = run.kill();
            let _ = run.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("schemathesis ran past 200 s and was stopped:\n{said}"));
    assert!(status.success(), "schemathesis found problems ({status}):\n{said}");
    eprintln!("{}", said.lines().skip_while(|l| !(l.contains("WARNINGS") || l.contains("SUMMARY"))).collect::<Vec<_>>().join("\n"));
    // Its calls reached the pool, not only its 404s: manual scales were done.
    let decisions = host.get("/pools/web/decisions?limit=1000");
    let manual = decisions.as_array().unwrap().iter().filter(|d| d["action"]["cause"] == "manual").count();
    assert!(manual > 0, "no manual scale got through in {} decisions", decisions.as_array().unwrap().len());
}
