//! Policies from a registry that is not public: a real registry (Debian's
//! `docker-registry`) that takes only a user with a password. `policy push`
//! logs in with a password file; a host's config names the registry's
//! login (`policies.registries."host"`), with the password in a file;
//! without it, or with a wrong one, the fetch is refused and says so.

use std::process::Command;

use scalewise_e2e::host::queue_depth_config;
use scalewise_e2e::registry::Registry;
use scalewise_e2e::scalewise_bin;

/// bcrypt of `prom-s3cret` (the registry's htpasswd takes bcrypt only).
const HASH: &str = "$2b$04$OSixGdArWsJFoOdiEhNsgOK26MsAihUdJSOHmkFE9mz0I28gwn2uW";

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(scalewise_bin()).args(args).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn a_private_registry_is_pushed_to_and_fetched_from_with_a_login_from_files() {
    let registry = Registry::with_login("scalewise", HASH);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("two.rhai");
    std::fs::write(&script, r#"fn strategy(input) { #{ desired: 2, reason: "two" } }"#).unwrap();
    std::fs::write(dir.path().join("password"), "prom-s3cret\n").unwrap();
    std::fs::write(dir.path().join("wrong"), "guess\n").unwrap();
    let reference = format!("oci://{}/policies/two:1", registry.addr);

    // Anonymous: refused by the registry, and said.
    let (ok, text) = run(&["policy", "push", script.to_str().unwrap(), &reference]);
    assert!(!ok && (text.contains("401") || text.to_lowercase().contains("unauthorized")), "{text}");
    // With the login.
    let password = dir.path().join("password");
    let (ok, pinned) = run(&["policy", "push", script.to_str().unwrap(), &reference, "--username", "scalewise", "--password-file", password.to_str().unwrap()]);
    assert!(ok, "{pinned}");
    let pinned = pinned.lines().rfind(|l| l.starts_with("oci://")).unwrap_or_default().to_owned();
    assert!(pinned.starts_with(&format!("{reference}@sha256:")), "{pinned}");

    // A host's config names the login; `config check` fetches as the host does.
    let config = |login: &str| {
        let pools = format!(
            "[policies.remote.two]\nsource = \"{pinned}\"\n{login}\n[[pools]]\nid = \"web\"\nmin = 1\nmax = 4\nstrategies = [{{ policy = \"two\" }}]\nprovider = {{ kind = \"local\", command = [\"true\"] }}\n"
        );
        // A fresh cache each time: a copy fetched once needs no login again.
        let _ = std::fs::remove_dir_all(dir.path().join(".scalewise"));
        let cfg = queue_depth_config(dir.path(), "t", &pools);
        run(&["config", "check", cfg.to_str().unwrap()])
    };
    let host = registry.addr.clone();
    let (ok, text) = config(&format!("[policies.registries.\"{host}\"]\nusername = \"scalewise\"\npassword_file = \"password\""));
    assert!(ok, "{text}");
    let (ok, text) = config("");
    assert!(!ok && text.contains("policies.remote.two") && text.contains("HTTP 401") && text.contains(&format!("policies.registries.\"{host}\"")), "{text}");
    let (ok, text) = config(&format!("[policies.registries.\"{host}\"]\nusername = \"scalewise\"\npassword_file = \"wrong\""));
    assert!(!ok && text.contains("policies.remote.two") && text.contains("HTTP 401"), "{text}");
    let (ok, text) = config(&format!("[policies.registries.\"{host}\"]\nusername = \"scalewise\"\npassword_file = \"missing\""));
    assert!(!ok && text.contains(&format!("policies.registries.\"{host}\".password_file")), "{text}");
    let (ok, text) = config(&format!("[policies.registries.\"{host}\"]\nusername = \"scalewise\""));
    assert!(!ok && text.contains("needs a password_file"), "{text}");
}
