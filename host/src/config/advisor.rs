//! `[pools.advisor]`: a language model among a pool's experts, behind an
//! OpenAI-compatible chat-completions endpoint (see `control::advisor`).
//!
//! The API key is never in the config's text, which is shown by `GET
//! /config`, journalled in reload notes and kept in git: it comes from an
//! environment variable or a file, as the Prometheus source's secrets do.
//! The defaults are the cautious ones: a call at most every ten ticks and
//! sixty an hour, answers trusted for two minutes, temperature 0.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::cloud::within;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvisorConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:11434/v1` (Ollama) or
    /// `http://127.0.0.1:8000/v1` (vLLM); requests go to
    /// `{endpoint}/chat/completions`.
    pub endpoint: String,
    pub model: String,
    /// The environment variable that holds the API key (sent as a bearer
    /// token). Local servers need none.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file that holds the API key (a mounted Secret).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Refused with a clear message: a key in the config's text.
    #[serde(default)]
    pub api_key: Option<toml::Value>,
    /// Sent with every request (an organization, a gateway's tenant).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A CA certificate (PEM) to trust for https, besides the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Each call must answer whole within this.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub temperature: f64,
    /// Sent as `seed`, for servers that make sampling repeatable with one.
    #[serde(default)]
    pub seed: Option<i64>,
    /// The answer's `max_tokens`.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Ask for the answer's JSON schema with `response_format` (OpenAI,
    /// Ollama 0.5+, vLLM and llama.cpp's server take it). Off for a server
    /// that refuses the field: the schema is then only in the prompt.
    #[serde(default = "yes")]
    pub structured_output: bool,
    /// Vote like a strategy (the pool then needs a consensus policy).
    #[serde(default = "yes")]
    pub vote: bool,
    /// The vote's weight.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Review every change of more than this many members before it is
    /// taken: an objection holds it for an operator's approval.
    #[serde(default)]
    pub review_above: Option<u32>,
    /// Ask for a vote every this many ticks (0: not on a schedule).
    #[serde(default = "default_every")]
    pub ask_every_ticks: u32,
    /// Also ask when the strategies' proposals spread wider than this share
    /// of their mean ((max - min) / mean).
    #[serde(default)]
    pub ask_on_spread: Option<f64>,
    /// An answer counts for this long; older, the advisor abstains.
    #[serde(default = "default_fresh")]
    pub fresh_secs: u64,
    /// At most this many calls in any hour; past it, questions are skipped
    /// (and counted) until an hour-old call leaves the window.
    #[serde(default = "default_calls")]
    pub max_calls_per_hour: u32,
    /// To show the spend in money: the price of a thousand tokens.
    #[serde(default)]
    pub cost_per_1k_tokens: Option<f64>,
    /// The largest response body read.
    #[serde(default = "default_answer_bytes")]
    pub max_answer_bytes: usize,
    /// How much of each prompt and raw answer the journal keeps.
    #[serde(default = "default_journal_bytes")]
    pub journal_bytes: usize,
    /// Replaces the built-in system message (placeholders `{{pool}}`,
    /// `{{question}}`, `{{schema}}`).
    #[serde(default)]
    pub system_prompt_file: Option<PathBuf>,
    /// Replaces the built-in user message; must hold `{{data}}`, where the
    /// decision's record goes, quoted.
    #[serde(default)]
    pub prompt_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_tokens() -> u32 {
    400
}
fn default_weight() -> f64 {
    1.0
}
fn default_every() -> u32 {
    10
}
fn default_fresh() -> u64 {
    120
}
fn default_calls() -> u32 {
    60
}
fn default_answer_bytes() -> usize {
    64 * 1024
}
fn default_journal_bytes() -> usize {
    4096
}

use crate::decide::pipeline::ADVISOR;

impl AdvisorConfig {
    /// Every problem, each with its path under `at`.
    pub fn problems(&self, at: &str, has_consensus: bool, strategies: &[&str]) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            p.push(format!("{at}.endpoint: must start with http:// or https://, got `{}`", self.endpoint));
        }
        if self.model.trim().is_empty() {
            p.push(format!("{at}.model: name the model the endpoint serves"));
        }
        if self.api_key.is_some() {
            p.push(format!("{at}.api_key: a key is never read from the config's text; use api_key_env (a variable's name) or api_key_file"));
        }
        if self.api_key_env.is_some() && self.api_key_file.is_some() {
            p.push(format!("{at}: give api_key_env or api_key_file, not both"));
        }
        if let Some(v) = &self.api_key_env
            && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
                p.push(format!("{at}.api_key_env: the name of an environment variable (letters, digits, `_`), got `{v}`"));
            }
        for name in self.headers.keys() {
            if ["authorization", "api-key", "x-api-key", "proxy-authorization"].contains(&name.to_ascii_lowercase().as_str()) {
                p.push(format!("{at}.headers.{name}: a credential is never read from the config's text; use api_key_env or api_key_file"));
            }
        }
        within(&mut p, at, "timeout_ms", self.timeout_ms, 100, 600_000);
        if !(self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature)) {
            p.push(format!("{at}.temperature: between 0 and 2, got {}", self.temperature));
        }
        within(&mut p, at, "max_tokens", self.max_tokens, 16, 32_768);
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            p.push(format!("{at}.weight: must be a number ≥ 0, got {}", self.weight));
        }
        if !self.vote && self.review_above.is_none() {
            p.push(format!("{at}: the advisor neither votes nor reviews; set vote = true, review_above, or both"));
        }
        if self.vote && !has_consensus {
            p.push(format!("{at}.vote: the advisor's vote is combined with the strategies' by a consensus policy; set the pool's consensus"));
        }
        if self.vote && self.ask_every_ticks == 0 && self.ask_on_spread.is_none() {
            p.push(format!("{at}: the advisor votes but is never asked; set ask_every_ticks or ask_on_spread"));
        }
        if let Some(s) = self.ask_on_spread
            && !(s.is_finite() && s > 0.0) {
                p.push(format!("{at}.ask_on_spread: a share of the mean proposal > 0, got {s}"));
            }
        within(&mut p, at, "fresh_secs", self.fresh_secs, 1, 86_400);
        within(&mut p, at, "max_calls_per_hour", self.max_calls_per_hour, 1, 36_000);
        if let Some(c) = self.cost_per_1k_tokens
            && !(c.is_finite() && c >= 0.0) {
                p.push(format!("{at}.cost_per_1k_tokens: must be a number ≥ 0, got {c}"));
            }
        within(&mut p, at, "max_answer_bytes", self.max_answer_bytes, 1024, 16 << 20);
        within(&mut p, at, "journal_bytes", self.journal_bytes, 256, 64 * 1024);
        if strategies.contains(&ADVISOR) {
            p.push(format!("{at}: a strategy of this pool is named `{ADVISOR}`, the name the advisor votes under; rename the policy"));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AdvisorConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_cautious_and_a_key_in_the_text_is_refused() {
        let a = parse("endpoint = \"http://127.0.0.1:11434/v1\"\nmodel = \"llama3.2\"");
        assert_eq!((a.timeout_ms, a.temperature, a.ask_every_ticks, a.max_calls_per_hour, a.fresh_secs), (10_000, 0.0, 10, 60, 120));
        assert!(a.problems("pools[0].advisor", true, &["queue-depth"]).is_empty());
        let keyed = parse("endpoint = \"http://x/v1\"\nmodel = \"m\"\napi_key = \"sk-secret\"");
        let p = keyed.problems("pools[0].advisor", true, &[]).join("\n");
        let headed = parse("endpoint = \"http://x/v1\"\nmodel = \"m\"\nheaders = { Authorization = \"Bearer sk-secret\", X-Org = \"o\" }");
        let h = headed.problems("at", true, &[]).join("\n");
        assert!(h.contains("at.headers.Authorization: a credential is never read") && !h.contains("X-Org"), "{h}");
        assert!(p.contains("pools[0].advisor.api_key: a key is never read from the config's text"), "{p}");
        assert!(!p.contains("sk-secret"), "the problem repeats the key: {p}");
    }

    #[test]
    fn each_problem_names_its_field() {
        let a = parse(
            "endpoint = \"ftp://x\"\nmodel = \"\"\napi_key_env = \"A-B\"\ntimeout_ms = 5\ntemperature = 3.0\nweight = -1.0\nask_on_spread = 0.0\nfresh_secs = 0\nmax_calls_per_hour = 0\nmax_answer_bytes = 10\njournal_bytes = 1",
        );
        let p = a.problems("at", false, &["advisor"]).join("\n");
        for field in ["at.endpoint", "at.model", "at.api_key_env", "at.timeout_ms", "at.temperature", "at.weight", "at.vote", "at.ask_on_spread", "at.fresh_secs", "at.max_calls_per_hour", "at.max_answer_bytes", "at.journal_bytes", "named `advisor`"] {
            assert!(p.contains(field), "no problem for {field}:\n{p}");
        }
        let idle = parse("endpoint = \"http://x\"\nmodel = \"m\"\nvote = false");
        assert!(idle.problems("at", true, &[]).join("\n").contains("neither votes nor reviews"));
    }
}
