//! Shared helpers for the end-to-end tests: building guest components and
//! the binary once per test process, and starting a host.

pub mod arm_standin;
pub mod aws;
pub mod browser;
pub mod chat_standin;
pub mod docker;
pub mod gce_standin;
pub mod host;
pub mod kube_standin;
pub mod prometheus;
pub mod registry;
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use scalewise::policy::cache::ArtifactCache;
use scalewise::policy::{PolicyEngine, SandboxOptions};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Build the test guests (for wasm32-wasip2) once and return the one asked for.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let guests = root().join("tests/guests");
        let status = cargo()
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(guests.join("Cargo.toml"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the test guests failed");
        guests.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Build a policy crate the documented way (`scalewise policy build`), once per crate.
pub fn built_policy(crate_dir: &Path) -> PathBuf {
    static LOCK: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _serial = LOCK.get_or_init(Default::default).lock().unwrap();
    let out = root().join("target/test-policies");
    scalewise::command::build_policy_crate(crate_dir, &out).expect("build policy crate")
}

/// A built-in policy from `policies/`, built into a component.
pub fn builtin(name: &str) -> PathBuf {
    built_policy(&root().join("policies").join(name))
}

/// The newcomer's ~20-line strategy, built with `scalewise policy build`.
pub fn newcomer() -> PathBuf {
    built_policy(&root().join("tests/guests/newcomer"))
}

/// The `scalewise` binary, built once.
pub fn scalewise_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Name this crate too, so the features resolve as in `cargo test
        // --workspace` (tokio's test-util) and the library already built for
        // the tests is reused rather than built a second time.
        let status = cargo()
            .args(["build", "-p", "scalewise", "-p", "scalewise-e2e", "--bin", "scalewise"])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(status.success());
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
        target.join("debug/scalewise")
    })
    .clone()
}

/// A shared compile cache for tests, so each component compiles once per run.
pub fn test_cache() -> ArtifactCache {
    ArtifactCache::new(root().join("target/test-cache")).unwrap()
}

/// An engine with the test cache and the given options.
pub fn engine(options: SandboxOptions) -> Arc<PolicyEngine> {
    Arc::new(PolicyEngine::new(options, Some(test_cache())).unwrap())
}

/// Copy `src` into `dir` as `name`, atomically (write elsewhere, then rename),
/// the way a deploy should land a policy.
pub fn install(src: &Path, dir: &Path, name: &str) -> PathBuf {
    install_bytes(&std::fs::read(src).unwrap(), dir, name)
}

pub fn install_bytes(bytes: &[u8], dir: &Path, name: &str) -> PathBuf {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    let dest = dir.join(name);
    std::fs::rename(&tmp, &dest).unwrap();
    dest
}

/// `bytes` plus a custom section: the same component, a different digest.
pub fn with_custom_section(bytes: &[u8], marker: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"scalewise-test";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(marker.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}
