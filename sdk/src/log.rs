//! The policy's one window to the outside: the host's log.
//!
//! In a component these call the `scalewise:policy/log` import, and the host
//! writes the message into its `tracing` output tagged with the policy's id
//! and version. Natively (unit tests, benchmarks) they print nothing.

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Send `message` to the host's log at `level`.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    // All three worlds import the same `log` interface; any binding will do.
    use crate::bindings::strategy::scalewise::policy::log as wit;

    pub fn log(level: super::Level, message: &str) {
        use super::Level::*;
        let level = match level {
            Trace => wit::Level::Trace,
            Debug => wit::Level::Debug,
            Info => wit::Level::Info,
            Warn => wit::Level::Warn,
            Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub fn log(_level: super::Level, _message: &str) {}
}
