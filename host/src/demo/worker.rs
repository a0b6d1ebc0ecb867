//! `scalewise demo worker`: one member of the demo pool.
//!
//! It takes jobs from the host's demo queue (`POST <queue>/take`), works on
//! each for its `work_ms`, tells the local provider whether it is busy or
//! idle through `SCALEWISE_STATUS_FILE`, stops taking work once
//! `SCALEWISE_DRAIN_FILE` exists, and on SIGTERM finishes the job in hand
//! and exits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Job;

fn status(file: &Option<PathBuf>, s: &str) {
    if let Some(f) = file {
        let _ = std::fs::write(f, format!("{s}\n"));
    }
}

pub fn run(queue: &str) -> anyhow::Result<()> {
    let term = Arc::new(AtomicBool::new(false));
    signal_flag(libc::SIGTERM, &term);
    let status_file = std::env::var_os("SCALEWISE_STATUS_FILE").map(PathBuf::from);
    let drain_file = std::env::var_os("SCALEWISE_DRAIN_FILE").map(PathBuf::from);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let take = format!("{}/take", queue.trim_end_matches('/'));
    status(&status_file, "idle");
    let mut idle_polls = 0u32;
    while !term.load(Ordering::Relaxed) && !drain_file.as_ref().is_some_and(|f| f.exists()) {
        let job: Option<Job> = client.post(&take).send().ok().filter(|r| r.status() == 200).and_then(|r| r.json().ok());
        match job {
            Some(job) => {
                idle_polls = 0;
                status(&status_file, "busy");
                std::thread::sleep(Duration::from_millis(job.work_ms));
            }
            None => {
                if idle_polls == 0 {
                    status(&status_file, "idle");
                }
                idle_polls += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    status(&status_file, "idle");
    Ok(())
}

static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(f) = FLAG.get() {
        f.store(true, Ordering::Relaxed);
    }
}

fn signal_flag(sig: libc::c_int, flag: &Arc<AtomicBool>) {
    let _ = FLAG.set(flag.clone());
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(sig, on_signal as *const () as libc::sighandler_t);
    }
}
