//! Finding and driving the real tools tests run against (Chromium,
//! Prometheus, schemathesis): `.ci/run` installs them; elsewhere a test says
//! what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tool's path: `$env` if set, else the first of `names` on the usual paths.
pub fn find(env: &str, names: &[&str], install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("{} not found: `{install}` (or set {env})", names[0]);
}

/// How every test runs Chromium: headless, in a container (no sandbox, no
/// GPU, a small /dev/shm), talking to nothing but the page it is given.
pub const HEADLESS: &[&str] = &["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run"];

/// Headless Chromium: the DOM of `url` after its scripts ran.
pub fn dump_dom(chromium: &Path, url: &str) -> String {
    dump_dom_at(chromium, url, 1280)
}

/// The same, in a window `width` CSS pixels wide (420: a phone).
pub fn dump_dom_at(chromium: &Path, url: &str, width: u32) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(HEADLESS)
        .args(["--virtual-time-budget=4000", "--dump-dom"])
        .arg(format!("--window-size={width},900"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Headless Chromium from the project's usual places.
pub fn chromium() -> PathBuf {
    find("SCALEWISE_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"], "apt-get install chromium")
}

/// `promtool check metrics` on an exposition: its complaints, if any.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    use std::io::Write;
    let promtool = find("SCALEWISE_PROMTOOL", &["promtool"], "apt-get install prometheus");
    let mut child = Command::new(promtool).args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(()) } else { Err(said) }
}

/// The schemathesis CLI (PyPI; `.ci/run` installs it): `$SCALEWISE_SCHEMATHESIS`,
/// else `schemathesis` on `PATH` or in `~/.local/bin` (where `pip install
/// --user` puts it).
pub fn schemathesis() -> PathBuf {
    const INSTALL: &str = "python3 -m pip install 'schemathesis>=4,<5'";
    if let Some(p) = std::env::var_os("SCALEWISE_SCHEMATHESIS") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/bin"));
    std::env::split_paths(&path)
        .chain(home)
        .map(|dir| dir.join("schemathesis"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("schemathesis not found: `{INSTALL}` (or set SCALEWISE_SCHEMATHESIS)"))
}
