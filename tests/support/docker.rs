//! A real Docker engine for the tests: Debian's `dockerd` on a private
//! socket, data root and exec root, with `--iptables=false --bridge=none`
//! so it touches nothing of the machine's; stopped (and its containers
//! removed) when dropped. No image registry is reachable, so the worker
//! image is imported from a root filesystem of one static busybox.
//!
//! `.ci/run` installs `docker.io` and `busybox-static`. Elsewhere the tests
//! say how. Set `SCALEWISE_DOCKERD` to use another dockerd binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The image the tests' members run.
pub const IMAGE: &str = "scalewise-test-worker:1";

/// A worker that idles until SIGTERM, and is ready (for the healthcheck)
/// once it has written /tmp/ready.
pub const WORKER: &str = r#"["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; while true; do sleep 0.2; done"]"#;

pub struct Dockerd {
    /// `unix:///.../docker.sock`
    pub host: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn dockerd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SCALEWISE_DOCKERD").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let found = ["/usr/sbin/dockerd", "/usr/bin/dockerd"].iter().map(PathBuf::from).find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("dockerd is not installed: `apt-get install docker.io` (or set SCALEWISE_DOCKERD)"))
}

fn busybox() -> PathBuf {
    let found = ["/bin/busybox", "/usr/bin/busybox"].iter().map(PathBuf::from).find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("busybox is not installed: `apt-get install busybox-static`"))
}

impl Dockerd {
    /// Start an engine and import the worker image into it.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("swd").tempdir_in("/tmp").unwrap();
        let mut d = Dockerd { host: format!("unix://{}", dir.path().join("docker.sock").display()), dir, child: None };
        d.spawn();
        d.import_image();
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn spawn(&mut self) {
        let p = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(p.join("dockerd.log")).unwrap();
        let child = Command::new(dockerd_binary())
            .arg("--host")
            .arg(&self.host)
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.child = Some(child);
        let started = Instant::now();
        while !self.cli(&["version", "--format", "{{.Server.Version}}"]).status.success() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited at start ({status}):\n{}", self.log_tail());
            }
            assert!(started.elapsed() < Duration::from_secs(60), "dockerd did not answer in 60 s:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Run the docker CLI against this engine.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").arg("-H").arg(&self.host).args(args).output().expect("run the docker CLI (apt-get install docker.io)")
    }

    /// Run the docker CLI and return its stdout; fail on an error.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn import_image(&self) {
        let root = self.dir.path().join("rootfs");
        for d in ["bin", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
        for applet in ["sh", "sleep", "touch", "test", "true", "cat", "rm"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().unwrap();
        assert!(status.success());
        self.ok(&["import", "--change", "CMD [\"/bin/sh\"]", tar.to_str().unwrap(), IMAGE]);
    }

    /// Stop the engine (SIGTERM, as a service manager would): its
    /// containers stop with it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Start it again on the same socket and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The pool's containers: (name, state), sorted by name.
    pub fn pool(&self, pool: &str) -> Vec<(String, String)> {
        let out = self.ok(&["ps", "-a", "--filter", &format!("label=scalewise.pool={pool}"), "--format", "{{.Names}} {{.State}}"]);
        let mut v: Vec<(String, String)> = out.lines().filter_map(|l| l.split_once(' ')).map(|(n, s)| (n.to_owned(), s.to_owned())).collect();
        v.sort();
        v
    }

    /// The pool's containers that are running.
    pub fn running(&self, pool: &str) -> Vec<String> {
        self.pool(pool).into_iter().filter(|(_, s)| s == "running").map(|(n, _)| n).collect()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.cli(&["ps", "-aq"]);
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.cli(&args);
            }
        }
        self.stop();
    }
}
