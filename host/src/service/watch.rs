//! What asks for a config reload besides the API: `SIGHUP`, and the config
//! file changing.
//!
//! Why the file is compared by content, not by events: editors save by
//! writing a new file and renaming it over the old one, and a Kubernetes
//! ConfigMap volume swaps a symbolic link to a new directory, so the events
//! seen depend on the tool and the mount. Events (on the file's directory)
//! only wake the watcher early; a reload is asked for when the file's text
//! differs from the text last seen, checked after the events go quiet and
//! on a slow poll. A file saved again unchanged asks for nothing, and a
//! refused file is not retried until it changes.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use super::reload::{ReloadHandle, read_config};

/// How long the directory must be quiet before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Read the file at least this often even without events.
const POLL: Duration = Duration::from_secs(2);

/// Reload on `SIGHUP` and when the file at `path` changes, for as long as
/// the host runs.
pub fn start(path: PathBuf, handle: ReloadHandle) {
    let on_signal = handle.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload through the API or by changing the file");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            on_signal.nudge("SIGHUP");
        }
    });
    let seen = handle.status.lock().unwrap().digest.clone();
    let spawned = std::thread::Builder::new().name("scalewise-config-watch".into()).spawn(move || watch(&path, seen, &handle));
    if let Err(e) = spawned {
        tracing::warn!("cannot watch the config file: {e}");
    }
}

fn watch(path: &Path, mut seen: String, handle: &ReloadHandle) {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    // Kept alive for the thread's life; without it, the poll alone serves.
    let _watcher = notify::recommended_watcher(tx).and_then(|mut w| {
        w.watch(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")), RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    if let Err(e) = &_watcher {
        tracing::warn!(path = %path.display(), "config file events unavailable ({e}); polling every {POLL:?}");
    }
    let mut last = Instant::now();
    loop {
        match rx.recv_timeout(POLL.saturating_sub(last.elapsed())) {
            Ok(_) => {
                // Let the burst end: a save is several events.
                let burst = Instant::now();
                while burst.elapsed() < DEBOUNCE * 10 && rx.recv_timeout(DEBOUNCE).is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if _watcher.is_ok() => return,
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
        }
        last = Instant::now();
        let Ok(text) = read_config(path) else { continue };
        let digest = crate::policy::digest(text.as_bytes());
        if digest != seen {
            seen = digest;
            tracing::info!(path = %path.display(), "the config file changed: reloading");
            handle.nudge("file");
        }
    }
}
