//! A strategy that misbehaves on request, to prove the sandbox holds.
//!
//! The behaviour is picked by the pool id of each call (so one loaded
//! component can be driven through every case), or for every call including
//! the host's smoke call by the `always` setting.

use std::hint::black_box;

use scalewise_sdk::prelude::*;

#[derive(Deserialize, Default)]
pub struct Settings {
    #[serde(default)]
    always: Option<String>,
    /// `loop`: hang inside `validate-config`.
    #[serde(default)]
    validate: Option<String>,
    /// Return a new state of about this many bytes on every call.
    #[serde(default)]
    state_bytes: Option<usize>,
}

pub struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: it must overflow the stack
fn recurse(n: u64) -> u64 {
    let frame = black_box([n; 32]);
    black_box(recurse(n + 1)) + frame[7]
}

impl Strategy for Hostile {
    type Settings = Settings;
    type State = String;

    fn validate(s: &Settings) -> Result<(), String> {
        if s.validate.as_deref() == Some("loop") {
            loop {
                black_box(());
            }
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, state: &mut String) -> Result<Proposal, String> {
        if let Some(n) = s.state_bytes {
            *state = format!("{}:{}", input.now, "x".repeat(n));
        }
        let pool = &input.pool;
        let ok = |reason: String| Ok(Proposal::new(pool.clamp(pool.running as f64), 1.0, reason));
        match s.always.as_deref().unwrap_or(&pool.id) {
            "loop" => loop {
                black_box(());
            },
            "alloc" => {
                let mut hoard = Vec::new();
                loop {
                    // Reserve without touching: grows memory as fast as it can.
                    hoard.push(black_box(Vec::<u8>::with_capacity(1 << 20)));
                }
            }
            "recurse" => Ok(Proposal::new(recurse(1) as f64, 1.0, "")),
            "panic" => panic!("hostile policy panicked on purpose"),
            // Traps only at some steps: when the first metric's newest value is above 1.
            "panic-when-high" => match input.metrics.first().and_then(MetricWindow::last) {
                Some(v) if v > 1.0 => panic!("hostile policy panicked at {v}"),
                _ => ok("hostile: calm".into()),
            },
            "big-reason" => Ok(Proposal::new(pool.min as f64, 1.0, "x".repeat(10 << 20))),
            "nan" => Ok(Proposal::new(f64::NAN, 1.0, "nan")),
            "negative" => Ok(Proposal::new(-3.0, 1.0, "negative")),
            "above-max" => Ok(Proposal::new(pool.max as f64 + 1000.0, 1.0, "above max")),
            "read-file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => ok(format!("LEAK: read {} bytes of /etc/passwd", text.len())),
                Err(e) => Err(format!("file denied: {e}")),
            },
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                if vars.is_empty() { Err("env denied: no variables".into()) } else { ok(format!("LEAK: env {vars:?}")) }
            }
            "socket" => match std::net::TcpStream::connect("127.0.0.1:7070") {
                Ok(_) => ok("LEAK: connected a socket".into()),
                Err(e) => Err(format!("socket denied: {e}")),
            },
            "clock" => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                ok(format!("clock reads {}s", now.as_secs()))
            }
            "chatty" => {
                for i in 0..10_000 {
                    log::info(&format!("message {i}"));
                }
                println!("printed to stdout");
                ok("chatty".into())
            }
            _ => ok("hostile: behaving".into()),
        }
    }
}

export_strategy!(Hostile);
