//! A pool's advisor built from its config: the chat client (its key read
//! from the environment or a file, never the config's text; its CA and
//! headers as the Prometheus source takes them) and the prompt templates.
//! Built while a config is prepared, so a missing key or a bad template
//! refuses the start or the reload with the field's path, and the old
//! settings keep serving.

use std::time::Duration;

use scalewise_providers::advisors::{ChatClient, ChatSettings};
use scalewise_providers::http::Access;

use crate::config::advisor::AdvisorConfig;
use crate::control::advisor::AdvisorSpec;
use crate::control::advisor::prompt::Prompts;
use crate::policy::guard::OutputLimits;

/// The advisor of pool `pool`, or what is wrong, starting with its path.
pub(crate) fn spec(pool: &str, a: &AdvisorConfig) -> Result<AdvisorSpec, String> {
    let at = |field: &str, e: String| format!("pools.{pool}.advisor.{field}: {e}");
    let bearer_token = match (&a.api_key_env, &a.api_key_file) {
        (Some(var), _) => match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Some(key.trim().to_owned()),
            Ok(_) => return Err(at("api_key_env", format!("the variable {var} is empty"))),
            Err(_) => return Err(at("api_key_env", format!("the variable {var} is not set (or not UTF-8) in the host's environment"))),
        },
        (None, Some(file)) => Some(super::read_secret(file).map_err(|e| at("api_key_file", e))?),
        (None, None) => None,
    };
    let ca_pem = match &a.ca_file {
        Some(f) => Some(super::read_bounded(f).map_err(|e| at("ca_file", e))?),
        None => None,
    };
    let access = Access { bearer_token, basic_auth: None, headers: a.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), ca_pem };
    let settings = ChatSettings {
        base: a.endpoint.clone(),
        model: a.model.clone(),
        timeout: Duration::from_millis(a.timeout_ms),
        temperature: a.temperature,
        seed: a.seed,
        max_tokens: a.max_tokens,
        max_body_bytes: a.max_answer_bytes,
        structured_output: a.structured_output,
        access,
    };
    let client = ChatClient::new(settings).map_err(|e| at("endpoint", e))?;
    let prompts = Prompts::load(a.system_prompt_file.as_deref(), a.prompt_file.as_deref()).map_err(|(field, e)| at(field, e))?;
    Ok(AdvisorSpec {
        client: std::sync::Arc::new(client),
        vote: a.vote,
        weight: a.weight,
        review_above: a.review_above,
        ask_every_ticks: a.ask_every_ticks,
        ask_on_spread: a.ask_on_spread,
        fresh_ms: a.fresh_secs as i64 * 1000,
        max_calls_per_hour: a.max_calls_per_hour,
        cost_per_1k_tokens: a.cost_per_1k_tokens,
        journal_bytes: a.journal_bytes,
        timeout_ms: a.timeout_ms,
        prompts,
        limits: OutputLimits { max_reason_bytes: 1024, ..OutputLimits::default() },
    })
}
