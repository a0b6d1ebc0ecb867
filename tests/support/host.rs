//! A scalewise host process for end-to-end tests: started on a free
//! loopback port, waited for, killed (politely or with SIGKILL), restarted.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scalewise_bin;

pub struct Host {
    child: Option<Child>,
    config: PathBuf,
    /// Extra environment for the host process.
    pub env: Vec<(String, String)>,
    /// Largest file the host may write (RLIMIT_FSIZE), to simulate a full disk.
    pub file_size_limit: Option<u64>,
    pub port: u16,
    pub base: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Host {
    /// Start `scalewise serve --config CONFIG --listen 127.0.0.1:PORT` and
    /// wait for `/healthz`.
    pub fn start(config: &Path, port: u16) -> Host {
        Self::start_with(config, port, &[])
    }

    pub fn start_with(config: &Path, port: u16, env: &[(&str, &str)]) -> Host {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut host = Host { child: None, config: config.to_owned(), env, file_size_limit: None, port, base: format!("http://127.0.0.1:{port}") };
        host.spawn();
        host
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(scalewise_bin());
        if let Some(limit) = self.file_size_limit {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    // A write past the limit fails with EFBIG instead of
                    // killing the process with SIGXFSZ, as a full disk would.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &r);
                    Ok(())
                });
            }
        }
        let child = command
            .args(["serve", "--config", self.config.to_str().unwrap(), "--listen", &format!("127.0.0.1:{}", self.port)])
            .env("SCALEWISE_LOG", std::env::var("SCALEWISE_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while reqwest::blocking::get(format!("{}/healthz", self.base)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the host did not come up");
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the host exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The host's resident memory, in bytes, from `/proc`.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).unwrap();
        kib.parse::<u64>().unwrap() * 1024
    }

    /// SIGKILL, no warning: nothing gets to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the host did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn();
    }

    pub fn get(&self, path: &str) -> Value {
        reqwest::blocking::get(format!("{}{path}", self.base)).unwrap().json().unwrap()
    }

    /// POST with the bearer token `token` (or none); returns status and body.
    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut r = reqwest::blocking::Client::new().post(format!("{}{path}", self.base)).body(body.to_owned());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Push one sample of `queue_depth` to pool `api`, the pool the provider
    /// tests drive; fails on anything but 200.
    pub fn push_depth(&self, depth: f64) {
        let (s, b) = self.post("/pools/api/metrics", Some("t"), &format!(r#"{{"name":"queue_depth","value":{depth}}}"#));
        assert_eq!(s, 200, "{b}");
    }

    /// Poll `f` every 200 ms until it returns `Some`, or fail after `limit`.
    pub fn wait_for<T>(&self, what: &str, limit: Duration, mut f: impl FnMut(&Host) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate();
        }
    }
}

/// A pool's capacity as the API reports it: running plus booting.
pub fn capacity(pool: &Value) -> u64 {
    pool["running"].as_u64().unwrap_or(0) + pool["booting"].as_u64().unwrap_or(0)
}

/// Build every built-in policy into `dir`.
pub fn install_builtins(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for n in names {
        crate::install(&crate::builtin(n), dir, &format!("{n}.wasm"));
    }
}

/// Write `dir/scalewise.toml`: mutating calls need `token`, policies come
/// from `dir/policies.d` with the built-in queue-depth at 10 per worker, the
/// journal is `dir/journal.redb`; `rest` adds sources and pools.
pub fn queue_depth_config(dir: &Path, token: &str, rest: &str) -> PathBuf {
    install_builtins(&dir.join("policies.d"), &["queue-depth"]);
    let text = format!(
        "[server]\ntoken = \"{token}\"\n[policies]\ndir = \"policies.d\"\ncache_dir = \"cache\"\n\
         [policies.settings.queue-depth]\ntarget_per_worker = 10\n[journal]\npath = \"journal.redb\"\n{rest}\n"
    );
    let path = dir.join("scalewise.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Guardrails that let every decision act at once (no tolerance, cooldowns,
/// stabilization or step limits): for tests that drive a pool step by step.
pub const IMMEDIATE: &str = "guardrails = { tolerance = 0.0, scale_up_cooldown_secs = 0, scale_down_cooldown_secs = 0, \
                              scale_down_stabilization_secs = 0, scale_up_limits = [], scale_down_limits = [] }";

/// A rhai consensus that takes the highest proposal (holds without one).
pub const HIGHEST: &str = r#"fn consensus(input) {
             let hi = ();
             for v in input.votes { if "proposed" in v.ballot { let d = v.ballot.proposed.desired; if hi == () || d > hi { hi = d; } } }
             if hi == () { hi = input.pool.running; }
             #{ desired: hi, explanation: "the highest proposal" }
           }"#;

/// A worker command that idles until SIGTERM.
pub const SLEEPER: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]"#;
