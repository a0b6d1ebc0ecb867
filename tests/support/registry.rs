//! A real OCI registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry), on a free loopback port, storing in a temporary
//! directory, stopped when dropped. And minisign keys to sign with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::free_port;
use crate::tools::find;

pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    _htpasswd: Option<tempfile::TempDir>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Where it keeps blobs: `<root>/docker/registry/v2/blobs/sha256/xx/<hex>/data`.
    pub root: PathBuf,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with("")
    }

    /// One that takes only `user` with the password whose bcrypt hash is
    /// `hash` (HTTP basic authentication, as the registry's htpasswd).
    pub fn with_login(user: &str, hash: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
        let mut r = Self::start_with(&format!("auth:\n  htpasswd:\n    realm: scalewise-test\n    path: {}\n", file.display()));
        r._htpasswd = Some(dir);
        r
    }

    fn start_with(extra: &str) -> Registry {
        let bin = find("SCALEWISE_DOCKER_REGISTRY", &["docker-registry", "registry"], "apt-get install docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra}", root.display()),
        )
        .unwrap();
        let child = Command::new(bin).args(["serve"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let mut registry = Registry { child, _dir: dir, _htpasswd: None, addr, root };
        let started = Instant::now();
        loop {
            // Up: it answers, with 401 where it takes a login.
            if reqwest::blocking::get(format!("http://{}/v2/", registry.addr)).is_ok_and(|r| r.status().is_success() || r.status() == 401) {
                return registry;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the registry did not come up");
            if let Some(s) = registry.child.try_wait().unwrap() {
                panic!("docker-registry exited at start: {s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stored bytes of blob `digest` (`sha256:…`), to tamper with.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.root.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The manifest `reference` (`repo@sha256:…` or `repo:tag`) as JSON.
    pub fn manifest(&self, repo: &str, reference: &str) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(format!("http://{}/v2/{repo}/manifests/{reference}", self.addr))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minisign key pair without a password, in `dir`: the public key's
/// base64 line, and the secret key's path.
pub fn minisign_keys(dir: &Path, name: &str) -> (String, PathBuf) {
    let minisign = find("SCALEWISE_MINISIGN", &["minisign"], "apt-get install minisign");
    let (public, secret) = (dir.join(format!("{name}.pub")), dir.join(format!("{name}.key")));
    let out = Command::new(minisign).args(["-G", "-W", "-f", "-p"]).arg(&public).arg("-s").arg(&secret).output().unwrap();
    assert!(out.status.success(), "minisign -G: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&public).unwrap();
    (text.lines().nth(1).unwrap().trim().to_owned(), secret)
}

/// Sign `file` with `secret`: the path of the detached signature.
pub fn minisign(file: &Path, secret: &Path) -> PathBuf {
    let minisign = find("SCALEWISE_MINISIGN", &["minisign"], "apt-get install minisign");
    let sig = file.with_extension("minisig");
    let out = Command::new(minisign).args(["-S", "-s"]).arg(secret).arg("-m").arg(file).arg("-x").arg(&sig).output().unwrap();
    assert!(out.status.success(), "minisign -S: {}", String::from_utf8_lossy(&out.stderr));
    sig
}
