//! `scalewise policy push FILE oci://…`: publish a built policy to an OCI
//! registry, with its signature, and print the reference to pin it by.
//!
//! Why it prints the digest: a host serves a remote policy only by digest
//! (or by a tag it was told to follow), so the one thing a publisher needs
//! next is the exact `oci://…@sha256:…` line to put in the config.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::policy::file::{self, FileLimits};

pub fn run(file: &Path, reference: &str, signature: Option<&Path>, login: &crate::policy::remote::Login) -> anyhow::Result<ExitCode> {
    let Some(name) = reference.strip_prefix("oci://") else {
        bail!("`{reference}`: push to an OCI reference, `oci://host[:port]/repository:tag`");
    };
    if name.contains('@') {
        bail!("`{reference}`: push to a tag; the digest is what the push prints");
    }
    let ext = match file.extension().and_then(|e| e.to_str()) {
        Some(e @ ("wasm" | "rhai")) => e,
        _ => bail!("{}: a policy is a .wasm component or a .rhai script", file.display()),
    };
    let limits = FileLimits { settle: Duration::ZERO, ..FileLimits::default() };
    let bytes = file::read(file, &limits).with_context(|| format!("reading {}", file.display()))?;
    let signature = match signature {
        Some(s) => {
            use std::io::Read;
            let mut sig = Vec::new();
            std::fs::File::open(s).and_then(|f| f.take(64 * 1024).read_to_end(&mut sig)).with_context(|| format!("reading the signature {}", s.display()))?;
            Some(sig)
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let digest = runtime
        .block_on(crate::policy::remote::push(name, ext, bytes, signature, Duration::from_secs(60), login))
        .map_err(|e| anyhow::anyhow!("pushing {} to {reference}: {e}", file.display()))?;
    println!("oci://{name}@{digest}");
    Ok(ExitCode::SUCCESS)
}
