//! The host against real peers: a headless Chromium rendering the dashboard,
//! a real Prometheus server feeding a pool and scraping `/metrics`, and
//! metric sources that are down or answer garbage.
//!
//! `.ci/run` installs Chromium and Prometheus (Debian packages). Run
//! elsewhere, these tests fail with a message saying what to install; set
//! `SCALEWISE_CHROMIUM` / `SCALEWISE_PROMETHEUS` to use other binaries.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use scalewise_e2e::host::{Host, SLEEPER, free_port, queue_depth_config};
use scalewise_e2e::prometheus::{Prometheus, prom_query, start_prometheus};
use scalewise_e2e::tools::{dump_dom, dump_dom_at, find};
use serde_json::Value;

/// Pool `p`: queue-depth on `metric`, 0..=10 sleeping workers.
fn config(dir: &Path, metric: &str, sources: &str) -> PathBuf {
    queue_depth_config(
        dir,
        "t",
        &format!(
            r#"
{sources}
[[pools]]
id = "p"
min = 0
max = 10
interval_ms = 500
strategies = [{{ policy = "queue-depth" }}]
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 2, ready_after_ms = 200 }}
metrics = [{metric}]
guardrails = {{ scale_down_stabilization_secs = 0 }}
"#
        ),
    )
}

/// A tiny HTTP server answering every request with `body` until dropped.
struct Fixed {
    port: u16,
}

fn serve_fixed(content_type: &'static str, body: &'static str) -> Fixed {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    Fixed { port }
}

fn push(h: &Host, v: f64) {
    let (s, b) = h.post("/pools/p/metrics", Some("t"), &format!(r#"{{"name":"queue_depth","value":{v}}}"#));
    assert_eq!(s, 200, "{b}");
}

fn attr_values(dom: &str, attr: &str) -> Vec<u64> {
    dom.match_indices(&format!("{attr}=\"")).filter_map(|(i, m)| dom[i + m.len()..].split('"').next()?.parse().ok()).collect()
}

#[test]
fn the_dashboard_shows_live_data_in_a_real_browser() {
    let chromium = find("SCALEWISE_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"], "apt-get install chromium");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), r#"{ name = "queue_depth", source = "push" }"#, "");
    // A policy file that does not load, which no pool uses and nothing configures.
    std::fs::write(dir.path().join("policies.d/idle.rhai"), "fn strategy(input) {").unwrap();
    let host = Host::start(&cfg, port);
    assert_eq!(host.get("/policies/idle")["state"], "unconfigured");
    assert_eq!(host.get("/policies/queue-depth")["used_by"][0], "p");
    push(&host, 25.0);
    host.wait_for("a few decisions", Duration::from_secs(15), |h| (h.get("/pools/p")["decisions"].as_u64()? >= 3).then_some(()));

    let dom = dump_dom(&chromium, &format!("{}/", host.base));
    let points = attr_values(&dom, "data-points");
    assert!(points.first().is_some_and(|n| *n >= 3), "the chart has no points: {points:?}");
    assert!(dom.contains("class=\"capacity\"") && dom.contains("class=\"desired\"") && dom.contains("class=\"load\""), "chart lines missing");
    let seqs = attr_values(&dom, "data-seq");
    assert!(!seqs.is_empty(), "the decision feed is empty");
    assert!(dom.contains("queue-depth v") && dom.contains("backlog 25 / 10 per worker"), "votes and reasons missing");
    assert!(dom.contains("data-policy=\"queue-depth\""), "policies table missing");
    // The chart: a time axis, whole workers on the capacity axis, the load on its own.
    let texts = |dom: &str, class: &str| -> Vec<String> {
        dom.split(&format!("class=\"{class}\"")).skip(1).filter_map(|r| r.split_once('>').and_then(|(_, t)| t.split('<').next()).map(str::to_owned)).collect()
    };
    let times = texts(&dom, "time-tick");
    assert_eq!(times.len(), 5, "{times:?}");
    assert!(times.iter().all(|t| t.matches(':').count() == 2), "clock times: {times:?}");
    let caps = texts(&dom, "cap-tick");
    assert!(caps.len() >= 2 && caps.iter().all(|t| t.parse::<u32>().is_ok()), "whole workers only: {caps:?}");
    assert!(texts(&dom, "load-tick").len() >= 2, "the load has its own axis");
    // No sideways scroll, on a desktop and on a phone.
    for (width, dom) in [(1280, dom.clone()), (420, dump_dom_at(&chromium, &format!("{}/", host.base), 420))] {
        let attr = |name: &str| attr_values(&dom, name).first().copied().unwrap_or_else(|| panic!("no {name} at {width} px"));
        let (scroll, view) = (attr("data-scroll-width"), attr("data-view-width"));
        assert!(scroll <= view, "at {width} px the page is {scroll} px wide: it scrolls sideways");
        assert!(dom.contains("data-seq=") && dom.contains("data-policy=\"queue-depth\""), "at {width} px the feed and the policies show");
    }
    // Shown as idle, not as a red error.
    let idle = dom.split("data-policy=\"idle\"").nth(1).and_then(|r| r.split("</tr>").next()).expect("the idle policy's row");
    assert!(idle.contains("unconfigured, unused") && idle.contains("class=\"muted\"") && !idle.contains("class=\"err\""), "{idle}");

    // Live: a moment later the feed has newer decisions and the new load.
    push(&host, 55.0);
    std::thread::sleep(Duration::from_secs(2));
    let dom2 = dump_dom(&chromium, &format!("{}/", host.base));
    let newest = |s: &[u64]| s.iter().copied().max().unwrap_or(0);
    assert!(newest(&attr_values(&dom2, "data-seq")) > newest(&seqs), "the feed did not move");
    assert!(dom2.contains("backlog 55 / 10 per worker"));
}

#[test]
fn a_real_prometheus_feeds_a_pool_and_scrapes_the_host() {
    // An application exporting its queue depth, as many do.
    let app = serve_fixed("text/plain; version=0.0.4", "# TYPE app_queue_depth gauge\napp_queue_depth 42\n");
    let host_port = free_port();
    let prom = start_prometheus(&[("app", app.port), ("scalewise", host_port)]);
    let dir = tempfile::tempdir().unwrap();
    let sources = format!("[sources.prom]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{}\"\n", prom.port);
    let cfg = config(dir.path(), r#"{ name = "queue_depth", source = "prom", query = "sum(app_queue_depth)", window_secs = 30 }"#, &sources);
    let host = Host::start(&cfg, host_port);

    // 42 waiting at 10 per worker: five workers.
    host.wait_for("the pool to follow Prometheus", Duration::from_secs(40), |h| {
        let p = h.get("/pools/p");
        (p["running"].as_u64()? + p["booting"].as_u64()? == 5).then_some(())
    });
    let d: Value = host.get("/pools/p/decisions?limit=1");
    assert_eq!(d[0]["metrics"][0]["last"], 42.0);
    assert!(d[0]["metrics"][0]["samples"].as_u64().unwrap() >= 1);
    // And Prometheus scrapes the host.
    let running = host.wait_for("Prometheus to scrape scalewise", Duration::from_secs(30), |_| {
        prom_query(&prom, r#"scalewise_pool_capacity{pool="p",state="running"}"#).filter(|v| *v == 5.0)
    });
    assert_eq!(running, 5.0);
    assert_eq!(prom_query(&prom, r#"up{job="scalewise"}"#), Some(1.0));
    assert!(prom_query(&prom, r#"sum(scalewise_policy_evaluation_seconds_count{policy="queue-depth"})"#).unwrap() >= 1.0);
    // Both tick lags: to the decision being made, and to its record being durable.
    let decided = prom_query(&prom, r#"scalewise_pool_decide_lag_seconds_count{pool="p"}"#);
    let recorded = prom_query(&prom, r#"scalewise_pool_tick_lag_seconds_count{pool="p"}"#);
    assert!(decided.is_some_and(|n| n >= 1.0) && recorded.is_some_and(|n| n >= 1.0), "decided {decided:?}, recorded {recorded:?}");
}

#[test]
fn a_source_that_is_down_or_answers_garbage_makes_the_expert_abstain() {
    let garbage = serve_fixed("text/html", "<html>not prometheus</html>");
    let dead = free_port();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sources = format!(
        "[sources.down]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{dead}\"\ntimeout_ms = 300\n[sources.junk]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{}\"\n",
        garbage.port
    );
    let cfg = config(
        dir.path(),
        r#"{ name = "queue_depth", source = "down", query = "q" }, { name = "other", source = "junk", query = "q" }"#,
        &sources,
    );
    let host = Host::start(&cfg, port);
    let d = host.wait_for("a decision", Duration::from_secs(10), |h| {
        let d: Value = h.get("/pools/p/decisions?limit=1");
        d.get(0).cloned()
    });
    let m = d["metrics"].as_array().unwrap();
    assert!(m[0]["error"].as_str().unwrap().contains("unreachable"), "{}", m[0]);
    assert!(m[1]["error"].as_str().unwrap().contains("not a Prometheus API reply"), "{}", m[1]);
    assert!(d["votes"][0]["abstained"].as_str().unwrap().contains("no samples for queue_depth"), "{}", d["votes"][0]);
    assert_eq!(d["desired"], 0, "held");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", host.base)).unwrap().status(), 200);
}

/// A CA and a certificate for 127.0.0.1 signed by it, made by openssl in `dir`.
fn tls_files(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=scalewise test CA"]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "leaf.ext"]);
}

/// A gateway in front of Prometheus, as hosted services put one: it wants
/// `Authorization: Bearer gw-token` and `X-Scope-OrgID: team-a`, and
/// forwards the query to the real server.
fn serve_gateway(prometheus: String, ca: Vec<u8>) -> Fixed {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = reqwest::blocking::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = vec![0u8; 16384];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let path = String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).unwrap_or("/").to_owned();
            let allowed = head.contains("\r\nauthorization: bearer gw-token\r\n") && head.contains("\r\nx-scope-orgid: team-a\r\n");
            let (status, body) = if allowed {
                let r = client.get(format!("{prometheus}{path}")).basic_auth("scalewise", Some("prom-s3cret")).send().unwrap();
                (r.status().as_u16(), r.text().unwrap())
            } else {
                (401, "{\"status\":\"error\",\"error\":\"no bearer token or tenant\"}".to_owned())
            };
            let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    Fixed { port }
}

/// Prometheus over https with a private CA and basic auth (its own
/// `--web.config.file`), and behind a gateway that takes a bearer token and
/// a tenant header: the pool reads both; a wrong password is refused and
/// said.
#[test]
fn a_prometheus_behind_tls_basic_auth_or_a_bearer_token_is_read() {
    let app = serve_fixed("text/plain; version=0.0.4", "# TYPE app_queue_depth gauge\napp_queue_depth 42\n");
    let bin = find("SCALEWISE_PROMETHEUS", &["prometheus"], "apt-get install prometheus");
    let pdir = tempfile::tempdir().unwrap();
    tls_files(pdir.path());
    // The password is `prom-s3cret`; Prometheus takes only bcrypt hashes.
    std::fs::write(
        pdir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  scalewise: $2b$04$OSixGdArWsJFoOdiEhNsgOK26MsAihUdJSOHmkFE9mz0I28gwn2uW\n",
    )
    .unwrap();
    std::fs::write(pdir.path().join("prometheus.yml"), format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n", app.port)).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .current_dir(pdir.path())
        .arg("--config.file=prometheus.yml")
        .arg("--web.config.file=web.yml")
        .arg("--storage.tsdb.path=data")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prom = Prometheus::adopt(child, port);
    let ca = std::fs::read(pdir.path().join("ca.pem")).unwrap();
    let client = reqwest::blocking::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while !client.get(format!("{url}/api/v1/query?query=app_queue_depth")).basic_auth("scalewise", Some("prom-s3cret")).send().is_ok_and(|r| r.text().unwrap_or_default().contains("\"42\"")) {
        assert!(started.elapsed() < Duration::from_secs(40), "prometheus over https did not come up with the app's series");
        std::thread::sleep(Duration::from_millis(200));
    }
    let gateway = serve_gateway(url.clone(), ca);

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(pdir.path().join("ca.pem"), dir.path().join("ca.pem")).unwrap();
    std::fs::write(dir.path().join("password"), "prom-s3cret\n").unwrap();
    std::fs::write(dir.path().join("token"), "gw-token\n").unwrap();
    let sources = format!(
        "[sources.tls]\nkind = \"prometheus\"\nurl = \"{url}\"\nca_file = \"ca.pem\"\nbasic_auth = {{ username = \"scalewise\", password_file = \"password\" }}\n\
         [sources.gw]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{}\"\nbearer_token_file = \"token\"\nheaders = {{ X-Scope-OrgID = \"team-a\" }}\n\
         [sources.wrong]\nkind = \"prometheus\"\nurl = \"{url}\"\nca_file = \"ca.pem\"\nbasic_auth = {{ username = \"scalewise\", password = \"guess\" }}\n",
        gateway.port
    );
    let metrics = r#"{ name = "queue_depth", source = "tls", query = "sum(app_queue_depth)", window_secs = 30 },
                     { name = "via_gateway", source = "gw", query = "sum(app_queue_depth)", window_secs = 30 },
                     { name = "refused", source = "wrong", query = "sum(app_queue_depth)", window_secs = 30 }"#;
    let cfg = config(dir.path(), metrics, &sources);
    let host = Host::start(&cfg, free_port());
    let d = host.wait_for("a decision with both readings", Duration::from_secs(30), |h| {
        let d: Value = h.get("/pools/p/decisions?limit=1");
        (d[0]["metrics"][0]["last"] == 42.0 && d[0]["metrics"][1]["last"] == 42.0).then(|| d[0].clone())
    });
    let refused = d["metrics"][2]["error"].as_str().unwrap_or_default().to_owned();
    assert!(refused.contains("401"), "a wrong password is said: {d}");
    let sources: Value = host.get("/sources");
    let wrong = sources.as_array().unwrap().iter().find(|s| s["name"] == "wrong").unwrap();
    assert!(wrong["status"].to_string().contains("401"), "{wrong}");
}

/// The dashboard acts: in a real Chromium, pause and resume, a manual scale
/// with a hold, and an approval, each refused by the host without the token
/// (and with a wrong one), each done with it; then one decision's view,
/// reached from the feed. At desktop and phone widths.
#[test]
fn the_dashboard_pauses_scales_and_approves_with_the_token_and_is_refused_without_it() {
    use scalewise_e2e::browser::Browser;
    let chromium = find("SCALEWISE_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"], "apt-get install chromium");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), r#"{ name = "queue_depth", source = "push" }"#, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("interval_ms = 500", "interval_ms = 500\napproval_above = 3\napproval_ttl_secs = 600");
    std::fs::write(&cfg, text).unwrap();
    let host = Host::start(&cfg, free_port());
    push(&host, 60.0); // queue-depth wants 6: more than 3 at once waits for approval
    let wanted = host.wait_for("a change awaiting approval", Duration::from_secs(15), |h| h.get("/pools/p")["pending_approval"]["to"].as_u64());
    assert!(wanted > 3, "{wanted}");

    let mut b = Browser::open(&chromium, &format!("{}/", host.base), 1280, 900);
    let card = "document.querySelector('[data-pool=\"p\"]')";
    b.wait_for("the approve button", Duration::from_secs(10), &format!("!{card}.querySelector('button.approve').hidden"));
    let click = |b: &mut Browser, what: &str| {
        b.eval(&format!("{card}.querySelector('.result').removeAttribute('data-status'); {card}.querySelector('{what}').click()"));
    };
    let scale = |b: &mut Browser, to: u32, hold: u32, reason: &str| {
        b.eval(&format!(
            "{{ {card}.querySelector('.result').removeAttribute('data-status'); const f = {card}.querySelector('form.scale'); \
             f.capacity.value = '{to}'; f.hold_secs.value = '{hold}'; f.reason.value = '{reason}'; f.requestSubmit() }}"
        ));
    };
    let answer = |b: &mut Browser| -> (u64, String) {
        let status = b.wait_for("the host's answer", Duration::from_secs(10), &format!("{card}.querySelector('.result').dataset.status"));
        (status.as_str().unwrap().parse().unwrap(), b.eval(&format!("{card}.querySelector('.result').textContent")).as_str().unwrap().to_owned())
    };
    let set_token = |b: &mut Browser, t: &str| {
        b.eval(&format!("{{ const i = document.getElementById('token'); i.value = '{t}'; i.dispatchEvent(new Event('input')) }}"));
    };

    // Without the token: each refused, with the host's reason, and nothing changed.
    click(&mut b, "button.pause");
    let (status, said) = answer(&mut b);
    assert_eq!(status, 401, "{said}");
    assert!(said.contains("missing `Authorization: Bearer <token>` header"), "{said}");
    scale(&mut b, 2, 30, "from the dashboard");
    assert_eq!(answer(&mut b).0, 401);
    click(&mut b, "button.approve");
    assert_eq!(answer(&mut b).0, 401);
    set_token(&mut b, "wrong");
    click(&mut b, "button.pause");
    let (status, said) = answer(&mut b);
    assert_eq!((status, said.contains("wrong bearer token")), (401, true), "{said}");
    let p = host.get("/pools/p");
    assert_eq!((p["paused"].as_bool(), p["hold"].is_null(), p["pending_approval"]["to"].as_u64()), (Some(false), true, Some(wanted)), "{p}");

    // With it: approve, pause, resume, scale with a hold.
    set_token(&mut b, "t");
    click(&mut b, "button.approve");
    let (status, said) = answer(&mut b);
    assert_eq!((status, said), (200, format!("approved: scaling to {wanted}")));
    host.wait_for("the approved change", Duration::from_secs(15), |h| (h.get("/pools/p")["desired"].as_u64()? >= wanted).then_some(()));
    click(&mut b, "button.pause");
    assert_eq!(answer(&mut b).0, 200);
    assert_eq!(host.get("/pools/p")["paused"], true);
    b.wait_for("the button to offer resume", Duration::from_secs(5), &format!("{card}.querySelector('button.pause').textContent === 'Resume'"));
    click(&mut b, "button.pause");
    assert_eq!(answer(&mut b).0, 200);
    assert_eq!(host.get("/pools/p")["paused"], false);
    scale(&mut b, 2, 30, "from the dashboard");
    let (status, said) = answer(&mut b);
    assert!(status == 200 && said.starts_with("scaled to 2, held until"), "{status} {said}");
    let hold = host.get("/pools/p")["hold"].clone();
    assert_eq!((hold["target"].as_u64(), hold["until"].as_i64().unwrap() - hold["since"].as_i64().unwrap()), (Some(2), 30_000), "{hold}");
    b.wait_for("the hold in the facts", Duration::from_secs(5), &format!("{card}.querySelector('.facts').textContent.includes('held at 2')"));

    // One decision's view, from the feed: the manual action with its reason.
    let manual = host.wait_for("the manual decision", Duration::from_secs(10), |h| {
        h.get("/pools/p/decisions?limit=100").as_array()?.iter().find(|d| d["action"]["cause"] == "manual").and_then(|d| d["seq"].as_u64())
    });
    b.wait_for("its link in the feed", Duration::from_secs(10), &format!("{card}.querySelector('a.open[href$=\"/decisions/{manual}\"]')"));
    b.eval(&format!("{card}.querySelector('a.open[href$=\"/decisions/{manual}\"]').click()"));
    let view = b.wait_for("the decision view", Duration::from_secs(10), &format!("document.querySelector('#detail[data-seq=\"{manual}\"] .action') && document.getElementById('detail').innerText"));
    let view = view.as_str().unwrap();
    for part in ["Metrics read", "no votes: an operator's action", "Guardrails", "Action", "by manual (from the dashboard): done", "the record as JSON"] {
        assert!(view.contains(part), "the manual decision's view lacks `{part}`:\n{view}");
    }
    // A policy's decision: what it read, each vote, the consensus, the clamps.
    let held = host.wait_for("a decision under the hold", Duration::from_secs(10), |h| {
        h.get("/pools/p/decisions?limit=20").as_array()?.iter()
            .find(|d| d["votes"].as_array().is_some_and(|v| !v.is_empty()) && d["clamps"].as_array().is_some_and(|c| c.iter().any(|c| c["guardrail"] == "manual_hold")))
            .and_then(|d| d["seq"].as_u64())
    });
    b.eval(&format!("location.hash = '#/pools/p/decisions/{held}'"));
    let view = b.wait_for("the policy decision's view", Duration::from_secs(10), &format!("document.querySelector('#detail[data-seq=\"{held}\"] .action') && document.getElementById('detail').innerText"));
    let view = view.as_str().unwrap();
    for part in ["queue_depth\t", "queue-depth\tv", "backlog 60 / 10 per worker", "Consensus", "manual_hold\t", "an operator set 2"] {
        assert!(view.contains(part), "the policy decision's view lacks `{part}`:\n{view}");
    }
    b.eval("location.hash = '#/pools/p/decisions/999999'");
    let missing = b.wait_for("a missing decision's error", Duration::from_secs(5), "(document.querySelector('#detail .err') || {}).textContent");
    assert!(missing.as_str().unwrap().contains("no decision #999999"), "{missing}");

    // On a phone: the controls act, and nothing scrolls sideways.
    let mut phone = Browser::open(&chromium, &format!("{}/", host.base), 420, 800);
    phone.wait_for("the pool card", Duration::from_secs(10), &format!("{card} && {card}.querySelector('button.pause').textContent === 'Pause'"));
    set_token(&mut phone, "t");
    click(&mut phone, "button.pause");
    assert_eq!(answer(&mut phone).0, 200);
    assert_eq!(host.get("/pools/p")["paused"], true);
    let (scroll, view) = (phone.eval("document.documentElement.scrollWidth"), phone.eval("window.innerWidth"));
    assert!(scroll.as_u64() <= view.as_u64() && view == 420, "at 420 px the page is {scroll} px wide");
}
