//! A real Prometheus server for the tests (Debian's `prometheus`, which
//! `.ci/run` installs; `SCALEWISE_PROMETHEUS` points at another binary).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::host::free_port;
use crate::tools::find;

/// A Prometheus server on loopback, stopped when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// One started otherwise (its own flags), to be stopped when dropped.
    pub fn adopt(child: Child, port: u16) -> Prometheus {
        Prometheus { child, port, _dir: tempfile::tempdir().unwrap() }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start Prometheus scraping each `(job, port)` every second; wait until it is ready.
pub fn start_prometheus(targets: &[(&str, u16)]) -> Prometheus {
    let bin = find("SCALEWISE_PROMETHEUS", &["prometheus"], "apt-get install prometheus");
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
    for (job, port) in targets {
        yaml.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"));
    }
    std::fs::write(dir.path().join("prometheus.yml"), yaml).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus { child, port, _dir: dir };
    let started = std::time::Instant::now();
    while !reqwest::blocking::get(format!("http://127.0.0.1:{port}/-/ready")).is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(30), "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    p
}

/// One instant query's first value.
pub fn prom_query(p: &Prometheus, q: &str) -> Option<f64> {
    let v: Value = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/api/v1/query", p.port))
        .query(&[("query", q)])
        .send()
        .ok()?
        .json()
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}
