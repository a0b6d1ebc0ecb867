//! What can go wrong with a policy, as types the rest of the host can act on.
//!
//! Two families: [`LoadError`] says why a policy file was not taken into
//! service (the previous version, if any, keeps serving), and [`PolicyError`]
//! says why one evaluation produced no usable answer (that expert abstains, or
//! the registry falls back to the last good version). Every message names the
//! thing that was wrong and, where there is one, what to do about it.

use std::time::Duration;

use thiserror::Error;

/// Why one evaluation produced no usable answer.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum PolicyError {
    /// The policy itself declined, e.g. it had no data. Not a fault.
    #[error("policy declined: {0}")]
    Declined(String),
    /// The guest trapped: a panic, `unreachable`, a stack overflow, an out-of-bounds access.
    #[error("policy trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline and was interrupted.
    #[error("policy ran past its {}ms deadline and was stopped", .0.as_millis())]
    Timeout(Duration),
    /// The guest tried to grow its memory beyond the cap.
    #[error("policy exceeded its memory cap of {} MiB", .0 / (1024 * 1024))]
    MemoryCap(usize),
    /// The policy answered, but the answer is nonsense (NaN, negative, out of bounds, oversized).
    #[error("policy returned an invalid output: {0}")]
    InvalidOutput(String),
    /// The host could not set up the sandbox for this call.
    #[error("could not instantiate the policy: {0}")]
    Instantiate(String),
    /// The policy was asked to play a role it does not play.
    #[error("policy is a {actual}, not a {expected}")]
    WrongRole { expected: &'static str, actual: &'static str },
}

impl PolicyError {
    /// Faults are the policy's misbehaviour (as opposed to a considered
    /// refusal): they count against it and trigger a fallback.
    pub fn is_fault(&self) -> bool {
        !matches!(self, PolicyError::Declined(_) | PolicyError::WrongRole { .. })
    }

    /// A short machine-readable tag, used in status counters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Declined(why) if scalewise_sdk::is_no_opinion(why) => "declined",
            PolicyError::Declined(_) => "error",
            PolicyError::Trap(_) => "trap",
            PolicyError::Timeout(_) => "timeout",
            PolicyError::MemoryCap(_) => "memory_cap",
            PolicyError::InvalidOutput(_) => "invalid_output",
            PolicyError::Instantiate(_) => "instantiate",
            PolicyError::WrongRole { .. } => "wrong_role",
        }
    }
}

/// Why a policy file was not taken into service.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is {kind}; only regular files (or links to them) are loaded from the policy directory")]
    NotRegularFile { path: String, kind: &'static str },
    #[error("{path} is {size} bytes, over the {max}-byte cap on policy files (`policies.max_file_bytes`); it was not read")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{0}; the serving version, if any, keeps serving until one is removed")]
    Clash(String),
    #[error("not a WebAssembly component (expected `\\0asm` with the component layer); build policies with `scalewise policy build`")]
    NotWasm,
    #[error("this is a core WebAssembly module, not a component; wrap it with `scalewise policy build` (or `wasm-tools component new`)")]
    CoreModule,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component exports none of the scalewise worlds (strategy, cost-rule, consensus); it exports: {found}")]
    UnknownWorld { found: String },
    #[error("the component was built against {found}, but this host speaks scalewise:policy@{supported}; rebuild it with a matching scalewise-sdk")]
    IncompatibleVersion { found: String, supported: &'static str },
    #[error("the component imports `{0}`, which scalewise does not provide; policies may import only scalewise:policy/log (and WASI, which is denied everything)")]
    ForbiddenImport(String),
    #[error("the component does not match the {world} world: {detail}")]
    Link { world: &'static str, detail: String },
    #[error("the policy rejected its settings: {0}")]
    Config(String),
    #[error("the policy's `validate-config` call failed: {0}")]
    ValidateConfig(PolicyError),
    #[error("the smoke call (one call on a sample input, after `validate-config` passed) failed: {0}")]
    Smoke(PolicyError),
    #[error("the rhai script does not parse: {0}")]
    RhaiSyntax(String),
    #[error("the rhai script must define exactly one of `fn strategy(input)`, `fn cost_rule(input)`, `fn consensus(input)`; {0}")]
    RhaiRole(String),
    #[error("unsupported policy file `{0}`: use .wasm (a component) or .rhai (a script)")]
    UnsupportedFile(String),
}
