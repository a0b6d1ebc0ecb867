//! Watching the policy directory, so a policy changes without a restart.
//!
//! Filesystem events only say *that* something happened; what happened is
//! read from the directory itself. Every burst of events is debounced (a
//! copy writes a file in several steps), then the registry rescans the
//! directory and loads whatever changed. A slow periodic rescan backs the
//! events up, for filesystems that do not deliver them (some network and
//! container mounts). A file that has not settled yet (see
//! [`super::file`]) is looked at again as soon as it could have. Dropping
//! the [`Watcher`] stops all of it.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use super::registry::Registry;

/// How long the directory must be quiet before a rescan.
pub const DEBOUNCE: Duration = Duration::from_millis(40);
/// Rescan at least this often even without events.
pub const POLL: Duration = Duration::from_secs(2);

pub struct Watcher {
    // Dropping the notify watcher closes the channel, which ends the thread.
    inner: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Start watching the registry's directory (which must exist).
    pub fn start(registry: Arc<Registry>) -> notify::Result<Self> {
        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut inner = notify::recommended_watcher(tx)?;
        inner.watch(registry.dir(), RecursiveMode::NonRecursive)?;
        let thread = std::thread::Builder::new()
            .name("scalewise-watch".into())
            .spawn(move || run(&registry, &rx))
            .expect("spawn the policy watcher thread");
        Ok(Self { inner: Some(inner), thread: Some(thread) })
    }
}

fn relevant(event: &notify::Event) -> bool {
    use notify::EventKind::*;
    matches!(event.kind, Create(_) | Modify(_) | Remove(_) | Any)
        && event.paths.iter().any(|p| is_policy_file(p))
}

fn is_policy_file(path: &Path) -> bool {
    super::registry::policy_id(path).is_some()
}

fn run(registry: &Registry, rx: &mpsc::Receiver<notify::Result<notify::Event>>) {
    let mut last_scan = Instant::now();
    let mut next_scan = POLL;
    loop {
        match rx.recv_timeout(next_scan.saturating_sub(last_scan.elapsed())) {
            Ok(Ok(event)) if relevant(&event) => {
                // Debounce: wait until the directory has been quiet for a while.
                let burst_started = Instant::now();
                loop {
                    match rx.recv_timeout(DEBOUNCE) {
                        Ok(_) if burst_started.elapsed() < DEBOUNCE * 10 => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                        _ => break,
                    }
                }
            }
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => {
                tracing::warn!("policy directory watch error: {e}");
                continue;
            }
            Err(RecvTimeoutError::Timeout) if last_scan.elapsed() >= next_scan => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let report = registry.rescan();
        last_scan = Instant::now();
        // A few ms past the settle time, so the file is due when looked at.
        next_scan = report.recheck_in.map_or(POLL, |d| (d + Duration::from_millis(5)).min(POLL));
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.inner.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
