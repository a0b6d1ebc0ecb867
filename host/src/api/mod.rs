//! The HTTP API: pools and their decisions, operator actions, pushed
//! metrics, policy status, Prometheus exposition and the dashboard.
//!
//! Read calls are open (the API listens on loopback by default); calls that
//! change anything, and `POST /policies/ID/evaluate` (which costs CPU), need
//! `Authorization: Bearer <server.token>` (the scheme in any case). Every
//! error is a JSON object `{"error": "..."}` that says what was wrong: the
//! handlers' own, and, through [`json_errors`], axum's (an unknown route, a
//! wrong method, a body over `server.max_body_bytes`).
//!
//! The API describes itself: `GET /openapi.json` is an OpenAPI 3.1 document
//! derived from the handlers' `#[utoipa::path]` attributes and the types
//! they answer with ([`openapi`]). Every route is registered from one table
//! ([`routes`]), which the document's test reads, so a route added without
//! a description fails the tests rather than going undocumented.

// Handlers return `Result<_, Response>`: the error is the reply itself.
#![allow(clippy::result_large_err)]

mod config;
mod dashboard;
mod exposition;
mod openapi;
mod policies;
mod pools;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<crate::policy::Registry>,
    pub server: Arc<crate::config::ServerConfig>,
    /// Permits for `POST /policies/ID/evaluate`: `server.evaluate_concurrency`.
    pub evaluations: Arc<tokio::sync::Semaphore>,
    /// The pools and named metric sources running now; a config reload
    /// replaces them whole.
    pub live: Arc<arc_swap::ArcSwap<Live>>,
    pub journal: Option<Journal>,
    pub demo: Option<Arc<crate::demo::Queue>>,
    /// This replica's part in leader election, if several run.
    pub leadership: Option<scalewise_providers::leader::Leadership>,
    /// Config reloads, when the host runs from a config file.
    pub reload: Option<ReloadHandle>,
}

use crate::journal::Journal;
use crate::service::Live;
use crate::service::reload::ReloadHandle;

/// One route: its method (as axum's routing function names it), its path,
/// and its handler.
struct Route {
    /// Read by the OpenAPI document's test; the handler carries it already.
    #[cfg_attr(not(test), allow(dead_code))]
    method: &'static str,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

/// `method "path" => handler`: the method names both the routing function
/// and the [`Route`]'s method, so the two cannot disagree.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:expr,)*) => {
        vec![$(Route { method: stringify!($method), path: $path, handler: axum::routing::$method($handler) },)*]
    };
}

/// Every route the API serves, in one table: [`router`] registers them, and
/// the OpenAPI document's test checks that each one is described.
fn routes() -> Vec<Route> {
    routes![
        get "/" => dashboard::page,
        get "/dashboard.js" => dashboard::script,
        get "/openapi.json" => openapi::document,
        get "/healthz" => healthz,
        get "/readyz" => readyz,
        get "/metrics" => exposition::metrics,
        get "/pools" => pools::list,
        get "/pools/{id}" => pools::get_one,
        get "/pools/{id}/decisions" => pools::decisions,
        get "/pools/{id}/decisions/{seq}" => pools::decision,
        post "/pools/{id}/scale" => pools::scale,
        post "/pools/{id}/pause" => pools::pause,
        post "/pools/{id}/resume" => pools::resume,
        post "/pools/{id}/approve/{seq}" => pools::approve,
        post "/pools/{id}/promote" => pools::promote,
        post "/pools/{id}/rollback" => pools::rollback,
        post "/pools/{id}/metrics" => pools::push_metrics,
        post "/demo/take" => pools::demo_take,
        get "/sources" => list_sources,
        get "/leader" => leader,
        get "/journal" => journal_stats,
        get "/config" => config::get_config,
        post "/config/reload" => config::reload_config,
        get "/policies" => policies::list,
        post "/policies/reload" => policies::reload,
        get "/policies/{id}" => policies::get_one,
        post "/policies/{id}/evaluate" => policies::evaluate,
    ]
}

pub fn router(state: AppState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route; see the API table in README.md or GET /openapi.json") })
        .layer(DefaultBodyLimit::max(state.server.max_body_bytes))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(with_utc_times))
        .with_state(state)
}

/// Every error's body: what was wrong, in words that say what to do.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub(crate) struct ApiError {
    pub error: String,
}

/// Marks an answer [`with_utc_times`] must leave as it is (the OpenAPI
/// document, whose examples are data about the API, not times of its own).
#[derive(Clone, Copy)]
struct Verbatim;

/// Beside every timestamp in milliseconds, the same time in RFC 3339: a
/// field [`utc_sibling`] names gets that sibling (`loaded_at_ms` →
/// `loaded_at_utc`) when its value is a time after 1973. Done once here for
/// every JSON answer, so no route can forget it; the OpenAPI document
/// describes the siblings by the same rule.
async fn with_utc_times(response: Response) -> Response {
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !response.status().is_success() || !is_json || response.extensions().get::<Verbatim>().is_some() {
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

/// The name of the RFC 3339 sibling a field called `key` gets when it holds
/// a time in milliseconds: `at`, `at_ms`, `since`, `until`, `period_start`,
/// `period_end` and names ending in `_at` or `_at_ms` do (`at` → `at_utc`,
/// `at_ms` → `at_utc`, `loaded_at_ms` → `loaded_at_utc`).
fn utc_sibling(key: &str) -> Option<String> {
    let timed = matches!(key, "at" | "at_ms" | "since" | "until" | "period_start" | "period_end") || key.ends_with("_at") || key.ends_with("_at_ms");
    timed.then(|| format!("{}_utc", key.trim_end_matches("_ms")))
}

fn add_utc(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(add_utc),
        Value::Object(map) => {
            let mut stamps = Vec::new();
            for (key, v) in map.iter_mut() {
                match (utc_sibling(key), v.as_i64()) {
                    // After 1973 in ms: a timestamp, not a count.
                    (Some(name), Some(ms)) if ms > 100_000_000_000 => stamps.push((name, crate::decide::budget::rfc3339(ms))),
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
    (status, Json(ApiError { error: message.into() })).into_response()
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

/// Liveness: the process answers (it says nothing of the pools; see `/readyz`).
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain", example = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness, with each problem in words.
#[derive(Debug, Serialize, ToSchema)]
struct Readiness {
    /// True when `problems` is empty.
    ready: bool,
    problems: Vec<String>,
}

/// Readiness: every policy a pool uses serves, no pool's journal writes
/// fail, and with leader election the lease's holder is known.
///
/// (`/healthz` says only that the process answers.)
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to decide", body = Readiness),
        (status = 503, description = "Not ready, with each problem", body = Readiness),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems: Vec<String> = state
        .registry
        .unserved()
        .into_iter()
        .map(|(id, pools)| format!("policy `{id}` (used by {}) is not loaded; see GET /policies/{id}", pools.join(", ")))
        .collect();
    for p in state.live.load().pools.values() {
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
    (status, Json(Readiness { ready: problems.is_empty(), problems })).into_response()
}

/// Who acts: this replica's view of the leader lease.
///
/// `null` when the host runs without leader election.
#[utoipa::path(get, path = "/leader", tag = "health",
    responses((status = 200, description = "This replica's view of the lease, or null", body = Option<scalewise_providers::leader::LeaderView>)))]
async fn leader(State(state): State<AppState>) -> Response {
    Json(state.leadership.as_ref().map(|l| l.view())).into_response()
}

/// The journal's size, retention, and each pool's oldest and newest decision.
#[utoipa::path(get, path = "/journal", tag = "journal",
    responses(
        (status = 200, description = "The journal's standing", body = crate::journal::JournalStats),
        (status = 404, description = "This host keeps no journal (it has no pools)", body = ApiError),
        (status = 503, description = "The journal could not be read", body = ApiError),
    ))]
async fn journal_stats(State(state): State<AppState>) -> Response {
    let Some(journal) = state.journal.clone() else {
        return error(StatusCode::NOT_FOUND, "this host keeps no journal (it has no pools)");
    };
    match tokio::task::spawn_blocking(move || journal.stats()).await {
        Ok(Ok(stats)) => Json(stats).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("reading the journal: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A named metric source: its kind and whether it answers.
#[derive(Debug, Serialize, ToSchema)]
struct SourceInfo {
    name: String,
    /// `prometheus`, `replay`, `nvml`, ...
    kind: &'static str,
    status: scalewise_providers::SourceStatus,
}

/// Every named metric source, its kind and whether it answers.
#[utoipa::path(get, path = "/sources", tag = "sources",
    responses((status = 200, description = "The named metric sources, by name", body = Vec<SourceInfo>)))]
async fn list_sources(State(state): State<AppState>) -> Response {
    let list: Vec<SourceInfo> = state.live.load().sources.iter().map(|(name, s)| SourceInfo { name: name.clone(), kind: s.kind(), status: s.status() }).collect();
    Json(list).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_get_an_rfc3339_sibling_and_counts_do_not() {
        let mut v = serde_json::json!({ "at": 1_767_225_600_000_i64, "loaded_at_ms": 1_767_225_600_000_i64, "seq": 1_767_225_600_000_i64, "since": 5, "nested": [{ "expires_at": 1_767_225_600_000_i64 }], "last_error": { "at_ms": 1_767_225_600_000_i64 } });
        add_utc(&mut v);
        assert_eq!(v["last_error"]["at_utc"], "2026-01-01T00:00:00.000Z", "a policy error's time");
        assert_eq!(v["at_utc"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["loaded_at_utc"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["nested"][0]["expires_at_utc"], "2026-01-01T00:00:00.000Z");
        assert!(v.get("seq_utc").is_none() && v.get("since_utc").is_none(), "{v}");
    }
}
