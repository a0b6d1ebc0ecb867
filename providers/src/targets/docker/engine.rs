//! The connection to one Docker engine: found lazily, its API version
//! agreed with the engine, every call bounded in time and retried only
//! when that is safe.
//!
//! Why lazily: an engine that is down when the host starts (dockerd still
//! booting, a socket not yet mounted) must not keep the host from starting.
//! The first call that needs the engine connects; a call that finds it gone
//! forgets the connection, so the next one connects and negotiates again.
//! That is also how an engine upgraded underneath us (a restart with another
//! API version) is picked up without restarting the host.
//!
//! Why negotiate: bollard speaks the newest API version it knows, and an
//! engine refuses a client newer than itself (Debian's 20.10 speaks 1.41),
//! while the newest engines refuse clients older than theirs. Asking the
//! engine which version it speaks serves both.
//!
//! What is retried: only errors that say nothing reached the engine or the
//! engine was briefly unable (a broken connection, a timeout, 502/503/504).
//! Every call this target makes is safe to send twice: reads, stops and
//! removes are idempotent, and a create carries the member's name, so a
//! repeated create meets "409 Conflict" instead of making a second
//! container (see [`super::DockerTarget`]).

use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;

use crate::targets::backoff::Backoff;

/// A Docker call's failure, classified.
#[derive(Debug, Clone)]
pub struct EngineError {
    /// The HTTP status the engine answered with; `None` when it did not
    /// answer at all.
    pub status: Option<u16>,
    pub message: String,
    pub retryable: bool,
}

impl EngineError {
    pub fn unreachable(&self) -> bool {
        self.status.is_none()
    }
    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "the engine answered {s}: {}", self.message),
            None => write!(f, "{} (is dockerd running, and is `host` in the pool's provider config right?)", self.message),
        }
    }
}

/// Sort a bollard error into what it means for the caller.
pub fn classify(e: &BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => EngineError {
            status: Some(*status_code),
            message: message.trim().to_owned(),
            retryable: matches!(status_code, 429 | 502 | 503 | 504),
        },
        BollardError::RequestTimeoutError => EngineError { status: None, message: "the engine did not answer in time".into(), retryable: true },
        BollardError::SocketNotFoundError(path) => EngineError { status: None, message: format!("no Docker socket at {path}"), retryable: true },
        BollardError::IOError { .. } | BollardError::HyperResponseError { .. } | BollardError::HttpClientError { .. } | BollardError::HyperLegacyError { .. } => {
            EngineError { status: None, message: format!("cannot reach the Docker engine: {}", crate::error_chain(e)), retryable: true }
        }
        other => EngineError { status: Some(0), message: crate::error_chain(other), retryable: false },
    }
}

/// One engine, as configured.
pub struct Engine {
    /// `unix:///path`, or `http://host:port` (`tcp://` is taken as http).
    host: String,
    /// How long one call may take (a stop gets its grace period on top).
    pub call_timeout: Duration,
    backoff: Backoff,
    client: tokio::sync::Mutex<Option<Docker>>,
}

impl Engine {
    pub fn new(host: String, call_timeout: Duration, backoff: Backoff) -> Self {
        Self { host, call_timeout, backoff, client: tokio::sync::Mutex::new(None) }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The client, connected and with its API version agreed.
    async fn client(&self) -> Result<Docker, EngineError> {
        let mut held = self.client.lock().await;
        if let Some(d) = &*held {
            return Ok(d.clone());
        }
        // bollard's own timeout is a backstop; ours (per call) is tighter.
        let backstop = self.call_timeout.as_secs() + 600;
        let docker = if let Some(path) = self.host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, backstop, bollard::API_DEFAULT_VERSION)
        } else {
            let url = self.host.replacen("tcp://", "http://", 1);
            Docker::connect_with_http(&url, backstop, bollard::API_DEFAULT_VERSION)
        }
        .map_err(|e| classify(&e))?;
        let docker = tokio::time::timeout(self.call_timeout, docker.negotiate_version())
            .await
            .map_err(|_| EngineError { status: None, message: format!("the engine at {} did not answer in {:?}", self.host, self.call_timeout), retryable: true })?
            .map_err(|e| classify(&e))?;
        *held = Some(docker.clone());
        Ok(docker)
    }

    /// Drop the connection, so that the next call connects afresh.
    async fn forget(&self) {
        *self.client.lock().await = None;
    }

    /// Run one call, bounded by `timeout`, retried while the error allows.
    pub async fn call<T, F, Fut>(&self, what: &str, timeout: Duration, mut call: F) -> Result<T, EngineError>
    where
        F: FnMut(Docker) -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        let mut attempt = 0;
        loop {
            let result = match self.client().await {
                Ok(docker) => match tokio::time::timeout(timeout, call(docker)).await {
                    Ok(r) => r.map_err(|e| classify(&e)),
                    Err(_) => Err(EngineError { status: None, message: format!("{what} took longer than {timeout:?}"), retryable: true }),
                },
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if error.unreachable() {
                self.forget().await;
            }
            attempt += 1;
            if !error.retryable || attempt >= self.backoff.attempts {
                return Err(error);
            }
            let wait = self.backoff.wait(attempt - 1);
            // The caller reports the error that ends the tries; each retry
            // is only worth a debug line.
            tracing::debug!(engine = %self.host, call = what, attempt, ?wait, "Docker engine: {error}; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_never_reached_the_engine_or_a_busy_engine_is_retried() {
        let server = |code: u16| classify(&BollardError::DockerResponseServerError { status_code: code, message: "m".into() });
        assert!(!server(404).retryable && !server(409).retryable && !server(500).retryable && !server(400).retryable);
        assert!(server(503).retryable && server(429).retryable);
        let gone = classify(&BollardError::SocketNotFoundError("/nope.sock".into()));
        assert!(gone.retryable && gone.unreachable());
        assert!(gone.to_string().contains("is dockerd running"), "{gone}");
        assert!(server(404).to_string().contains("answered 404"));
    }

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_named_and_the_call_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let engine = Engine::new(format!("unix://{}", sock.display()), Duration::from_secs(2), Backoff { attempts: 2, base: Duration::from_millis(1), cap: Duration::from_millis(2) });
        let e = engine.call("ping", Duration::from_secs(1), |d| async move { d.ping().await }).await.unwrap_err();
        assert!(e.unreachable(), "{e}");
        assert!(e.to_string().contains("is dockerd running"), "{e}");
    }
}
