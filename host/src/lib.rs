//! # scalewise
//!
//! A WebAssembly-extensible autoscaling policy engine. This crate is the
//! host. Its folders are rooms in layers, each using only those below it
//! (`layering` checks it on every test run):
//!
//! - [`decide`]: the pure decision core (pipeline, guardrails, feasibility,
//!   budget, pool memory, the decision record). No I/O, no clock.
//! - [`policy`]: the sandbox that loads, runs and swaps policies against
//!   the `scalewise:policy@0.2.0` contract (wasmtime components, rhai).
//! - [`journal`]: the crash-safe store of decisions and pool memory.
//! - [`control`]: one task per pool that ticks, collects, decides, acts and
//!   records.
//! - [`api`] (HTTP API, `/metrics`, dashboard) and [`simulate`] (the same
//!   control loop under a virtual clock), on top.
//!
//! Beside them: [`config`] (the TOML model), [`service`] (a host built from
//! a config), [`demo`], [`timing`], and the command line ([`cli`] parses,
//! [`command`] carries out). See `docs/ARCHITECTURE.md` for how the pieces
//! fit.

pub mod api;
pub mod cli;
pub mod command;
pub mod config;
pub mod control;
pub mod decide;
pub mod demo;
pub mod journal;
pub mod policy;
pub mod service;
pub mod simulate;
pub mod timing;
pub mod tune;

#[cfg(test)]
mod layering;

/// Set up `tracing` output: human-readable (coloured only on a terminal),
/// or JSON lines.
pub fn init_tracing(filter: &str, json: bool) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::builder().parse(filter).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
    Ok(())
}

/// The host allocates and frees small objects on every tick of every pool
/// (inputs lowered into policies, decision records, journal batches), often
/// on one thread and freed on another. mimalloc's thread-local free lists
/// make that cheaper than glibc's malloc (measured when it came in, at
/// `505928a`: 9% less CPU for a simulation, together with shared member
/// lists; see the history of docs/BENCHMARKS.md).
/// Declared in the library, so the binary, the tests and the benchmarks all
/// run on the allocator production runs on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
