//! The HTTP API: pools and their decisions, operator actions, pushed
//! metrics, policy status, Prometheus exposition and the dashboard.
//!
//! Read calls are open (the API listens on loopback by default); calls that
//! change anything, and `POST /policies/ID/evaluate` (which costs CPU), need
//! `Authorization: Bearer <server.token>` (the scheme in any case). Every
//! error is a JSON object `{"error": "..."}` that says what was wrong: the
//! handlers' own, and, through [`json_errors`], axum's (an unknown route, a
//! wrong method, a body over `server.max_body_bytes`).

// Handlers return `Result<_, Response>`: the error is the reply itself.
#![allow(clippy::result_large_err)]

mod dashboard;
mod exposition;
mod pools;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::policy::registry::RegistryError;
use crate::policy::{AnyInput, Registry};

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub server: Arc<crate::config::ServerConfig>,
    /// Permits for `POST /policies/ID/evaluate`: `server.evaluate_concurrency`.
    pub evaluations: Arc<tokio::sync::Semaphore>,
    pub pools: Arc<BTreeMap<String, Arc<PoolEntry>>>,
    /// The named metric sources (Prometheus, replay, nvml).
    pub sources: Arc<BTreeMap<String, Arc<dyn scalewise_providers::MetricSource>>>,
    pub journal: Option<Journal>,
    pub demo: Option<Arc<crate::demo::Queue>>,
    /// This replica's part in leader election, if several run.
    pub leadership: Option<scalewise_providers::leader::Leadership>,
}

use crate::journal::Journal;
use crate::service::PoolEntry;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard.js", get(dashboard::script))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(exposition::metrics))
        .route("/pools", get(pools::list))
        .route("/pools/{id}", get(pools::get_one))
        .route("/pools/{id}/decisions", get(pools::decisions))
        .route("/pools/{id}/scale", post(pools::scale))
        .route("/pools/{id}/pause", post(pools::pause))
        .route("/pools/{id}/resume", post(pools::resume))
        .route("/pools/{id}/approve/{seq}", post(pools::approve))
        .route("/pools/{id}/metrics", post(pools::push_metrics))
        .route("/demo/take", post(pools::demo_take))
        .route("/sources", get(list_sources))
        .route("/leader", get(leader))
        .route("/journal", get(journal_stats))
        .route("/policies", get(list_policies))
        .route("/policies/reload", post(reload))
        .route("/policies/{id}", get(get_policy))
        .route("/policies/{id}/evaluate", post(evaluate))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route; see the API table in README.md") })
        .layer(DefaultBodyLimit::max(state.server.max_body_bytes))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(with_utc_times))
        .with_state(state)
}

/// Beside every timestamp in milliseconds, the same time in RFC 3339: a
/// field `at`, `since`, `until`, `period_start`, `period_end` or ending in
/// `_at` or `_at_ms` gets a sibling `<name>_utc` (`loaded_at_ms` →
/// `loaded_at_utc`). Done once here for every JSON answer, so no route can
/// forget it.
async fn with_utc_times(response: Response) -> Response {
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !response.status().is_success() || !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 << 20).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the answer was too large to send");
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    add_utc(&mut value);
    let mut response = Json(value).into_response();
    *response.status_mut() = parts.status;
    response
}

fn add_utc(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(add_utc),
        Value::Object(map) => {
            let mut stamps = Vec::new();
            for (key, v) in map.iter_mut() {
                let timed = matches!(key.as_str(), "at" | "since" | "until" | "period_start" | "period_end") || key.ends_with("_at") || key.ends_with("_at_ms");
                match v.as_i64() {
                    // After 1973 in ms: a timestamp, not a count.
                    Some(ms) if timed && ms > 100_000_000_000 => stamps.push((format!("{}_utc", key.trim_end_matches("_ms")), crate::decide::budget::rfc3339(ms))),
                    _ => add_utc(v),
                }
            }
            for (key, text) in stamps {
                map.entry(key).or_insert(Value::String(text));
            }
        }
        _ => {}
    }
}

/// Make every error JSON: an error response that is not JSON yet (axum's
/// own rejections: 404, 405, 413, ...) has its text wrapped as
/// `{"error": "..."}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("the request body is too large (server.max_body_bytes): {text}"),
        StatusCode::METHOD_NOT_ALLOWED => format!("this route does not take that method{}", if text.is_empty() { String::new() } else { format!(": {text}") }),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    error(status, message)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = &state.server.token else {
        return Err(error(StatusCode::FORBIDDEN, "mutating calls are disabled: set server.token in the config"));
    };
    let header = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    // RFC 9110: the scheme is case-insensitive.
    let given = header.and_then(|v| v.trim().split_once(' ')).filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
    match (header, given) {
        (_, Some(g)) if same(g.as_bytes(), token.as_bytes()) => Ok(()),
        (_, Some(_)) => Err(error(StatusCode::UNAUTHORIZED, "wrong bearer token")),
        (Some(_), None) => Err(error(StatusCode::UNAUTHORIZED, "the Authorization header is not `Bearer <token>`")),
        (None, None) => Err(error(StatusCode::UNAUTHORIZED, "missing `Authorization: Bearer <token>` header")),
    }
}

/// Compare without stopping at the first difference, so the time taken
/// says nothing about how much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every named metric source, its kind and whether it answers.
/// Who acts: this replica's view of the leader lease (null without election).
async fn leader(State(state): State<AppState>) -> Response {
    Json(state.leadership.as_ref().map(|l| l.view())).into_response()
}

/// Ready to decide: every policy a pool uses serves, the journal takes
/// writes, and, with leader election, the lease's holder is known. 503 with
/// each reason otherwise. (`/healthz` says only that the process answers.)
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems: Vec<String> = state
        .registry
        .unserved()
        .into_iter()
        .map(|(id, pools)| format!("policy `{id}` (used by {}) is not loaded; see GET /policies/{id}", pools.join(", ")))
        .collect();
    for p in state.pools.values() {
        if let Some(e) = p.handle.snapshot().journal_error {
            problems.push(format!("pool `{}`: {e}", p.handle.id));
        }
    }
    if let Some(view) = state.leadership.as_ref().map(|l| l.view())
        && view.holder.is_none()
    {
        problems.push(format!("the leader is not known yet{}", view.detail.map(|d| format!(": {d}")).unwrap_or_default()));
    }
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "ready": problems.is_empty(), "problems": problems }))).into_response()
}

/// The journal's size, retention, and each pool's oldest and newest decision.
async fn journal_stats(State(state): State<AppState>) -> Response {
    let Some(journal) = state.journal.clone() else {
        return error(StatusCode::NOT_FOUND, "this host keeps no journal (it has no pools)");
    };
    match tokio::task::spawn_blocking(move || journal.stats()).await {
        Ok(Ok(stats)) => Json(stats).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_sources(State(state): State<AppState>) -> Response {
    let list: Vec<Value> = state.sources.iter().map(|(name, s)| json!({ "name": name, "kind": s.kind(), "status": s.status() })).collect();
    Json(list).into_response()
}

async fn list_policies(State(state): State<AppState>) -> Response {
    Json(state.registry.statuses().into_iter().map(|s| with_usage(&state, s)).collect::<Vec<_>>()).into_response()
}

/// A policy's status with who uses it and a one-word `state`: `serving`;
/// `failed` (not loaded, and a pool uses it or the config set it up);
/// `unconfigured` (not loaded, and nothing uses or configures it: the
/// built-ins a pool does not name, say, which need settings to load); or
/// `unloaded` (its file went).
fn with_usage(state: &AppState, s: crate::policy::StatusSnapshot) -> Value {
    let (used_by, configured) = state.registry.usage(&s.id);
    let word = match (&s.serving, &s.last_load_error) {
        (Some(_), _) => "serving",
        (None, _) if s.clash.is_some() => "failed",
        (None, Some(_)) if used_by.is_empty() && !configured => "unconfigured",
        (None, Some(_)) => "failed",
        (None, None) => "unloaded",
    };
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["used_by"] = json!(used_by);
    v["configured"] = json!(configured);
    v["state"] = json!(word);
    v
}

async fn get_policy(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.registry.status_of(&id) {
        Some(s) => Json(with_usage(&state, s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no policy `{id}` has been seen in the policy directory")),
    }
}

async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let registry = state.registry.clone();
    match tokio::task::spawn_blocking(move || registry.rescan()).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn evaluate(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, body: String) -> Response {
    if !state.server.evaluate_without_token
        && let Err(r) = authorize(&state, &headers)
    {
        return r;
    }
    let Ok(_permit) = state.evaluations.clone().try_acquire_owned() else {
        let n = state.server.evaluate_concurrency;
        return error(StatusCode::TOO_MANY_REQUESTS, format!("{n} evaluation{} already running (server.evaluate_concurrency); try again", if n == 1 { " is" } else { "s are" }));
    };
    let Some(policy) = state.registry.get(&id) else {
        return error(StatusCode::NOT_FOUND, RegistryError::NotLoaded(id).to_string());
    };
    let value: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let role = policy.role();
    let registry = state.registry.clone();
    let result = tokio::task::spawn_blocking(move || {
        let input = AnyInput::parse(role, value).map_err(|e| format!("the body is not a valid {role} input: {e}"))?;
        Ok::<_, String>(input.try_in(&registry, &id))
    })
    .await;
    match result {
        Ok(Ok(Ok(evaluation))) => Json(evaluation).into_response(),
        Ok(Ok(Err(RegistryError::NotLoaded(id)))) => error(StatusCode::NOT_FOUND, RegistryError::NotLoaded(id).to_string()),
        Ok(Ok(Err(RegistryError::Policy(e)))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": e.to_string(), "kind": e.kind() })),
        )
            .into_response(),
        Ok(Err(msg)) => error(StatusCode::BAD_REQUEST, msg),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
