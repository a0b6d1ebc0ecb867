//! Pool routes: state, decisions (paged), manual scale, pause and resume,
//! approvals, pushed samples, and the demo queue.
//!
//! Why each answer is a named struct rather than a `json!` literal: the
//! OpenAPI document is derived from these types, so what a route says it
//! returns and what it returns are one definition.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::ToSchema;

use super::{ApiError, AppState, authorize, error};
use crate::control::{PoolCommand, PoolSnapshot};
use crate::decide::guardrails::Hold;
use crate::decide::record::DecisionRecord;
use crate::service::PoolEntry;
use scalewise_providers::Sample;

fn pool(state: &AppState, id: &str) -> Result<Arc<PoolEntry>, Response> {
    state.live.load().pools.get(id).cloned().ok_or_else(|| {
        let live = state.live.load();
        let known: Vec<&str> = live.pools.keys().map(String::as_str).collect();
        error(StatusCode::NOT_FOUND, format!("no pool `{id}`; configured pools: {}", known.join(", ")))
    })
}

/// Parse a JSON body into `T`, or say what was wrong with it.
fn body<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Response> {
    serde_json::from_str(text).map_err(|e| error(StatusCode::BAD_REQUEST, format!("the body is not a valid {what}: {e}")))
}

/// Every pool's state.
///
/// Members (lifecycle, CPU, memory, restarts), desired capacity, pause,
/// pending approval, budget, last errors.
#[utoipa::path(get, path = "/pools", operation_id = "list_pools", tag = "pools",
    responses((status = 200, description = "Every pool, by id", body = Vec<PoolSnapshot>)))]
pub async fn list(State(state): State<AppState>) -> Response {
    Json(state.live.load().pools.values().map(|p| p.handle.snapshot()).collect::<Vec<_>>()).into_response()
}

/// One pool's state.
#[utoipa::path(get, path = "/pools/{id}", operation_id = "get_pool", tag = "pools",
    params(("id" = String, Path, description = "The pool's id")),
    responses(
        (status = 200, description = "The pool", body = PoolSnapshot),
        (status = 400, description = "The path is not valid", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
    ))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Response> {
    Ok(Json(pool(&state, &id)?.handle.snapshot()).into_response())
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<u64>,
    limit: Option<usize>,
}

/// A pool's decisions, newest first, from memory and then the journal.
///
/// Each with every vote (and its gauges), consensus, cost verdicts,
/// placement, feasibility limit, clamps, budget alerts and action.
#[utoipa::path(get, path = "/pools/{id}/decisions", tag = "pools",
    params(
        ("id" = String, Path, description = "The pool's id"),
        ("before" = Option<u64>, Query, description = "Only decisions numbered below this (the next page)"),
        ("limit" = Option<usize>, Query, description = "At most this many (default 50; 1 to 1000, larger or smaller is taken as the bound)"),
    ),
    responses(
        (status = 200, description = "The decisions, newest first", body = Vec<DecisionRecord>),
        (status = 400, description = "The path or the query is not valid", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
    ))]
pub async fn decisions(State(state): State<AppState>, Path(id): Path<String>, page: Result<Query<Page>, axum::extract::rejection::QueryRejection>) -> Result<Response, Response> {
    let Query(page) = page.map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad query: {e}; use ?before=SEQ&limit=N")))?;
    let p = pool(&state, &id)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 1000);
    let mut found = p.handle.recent(page.before, limit);
    // Older than the in-memory window: read the journal.
    if found.len() < limit
        && let Some(j) = &state.journal {
            let before = found.last().map(|d| d.seq).or(page.before);
            // Nothing is numbered below 1: no walk of the whole chain.
            if before.is_none_or(|b| b > 1) {
                let more = j.decisions(&id, before, limit - found.len()).unwrap_or_default();
                found.extend(more);
            }
        }
    Ok(Json(found).into_response())
}

/// One decision with everything in it, from memory or the journal: what
/// the dashboard's decision view and `scalewise journal` links show.
#[utoipa::path(get, path = "/pools/{id}/decisions/{seq}", tag = "pools",
    params(
        ("id" = String, Path, description = "The pool's id"),
        ("seq" = u64, Path, description = "The decision's number"),
    ),
    responses(
        (status = 200, description = "The decision", body = DecisionRecord),
        (status = 400, description = "The path is not valid (`seq` is not a decision number)", body = ApiError),
        (status = 404, description = "No such pool, or no such decision in memory or in the journal's retention", body = ApiError),
        (status = 503, description = "The journal could not be read", body = ApiError),
    ))]
pub async fn decision(State(state): State<AppState>, Path((id, seq)): Path<(String, String)>) -> Result<Response, Response> {
    let seq: u64 = seq.parse().map_err(|_| error(StatusCode::BAD_REQUEST, format!("`{seq}` is not a decision number")))?;
    let p = pool(&state, &id)?;
    let mut found = p.handle.recent(seq.checked_add(1), 1);
    if found.first().is_none_or(|d| d.seq != seq)
        && let Some(j) = &state.journal
    {
        found = j.decisions(&id, seq.checked_add(1), 1).map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("reading the journal: {e}")))?;
    }
    match found.into_iter().find(|d| d.seq == seq) {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, format!("pool `{id}` has no decision #{seq} (in memory or in the journal's retention)"))),
    }
}

/// A manual scale.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ScaleBody {
    /// The capacity, within the pool's min..max.
    capacity: u32,
    /// Why: it goes into the journal (not blank).
    #[schema(pattern = r"\S")]
    reason: String,
    /// How long the capacity holds against the policies, at most a week
    /// (default: the pool's `guardrails.manual_hold_secs`; 0: not at all).
    #[schema(maximum = 604800)]
    hold_secs: Option<u64>,
}

/// What a manual scale did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ScaleAnswer {
    /// The capacity the pool now aims for.
    capacity: u32,
    /// The hold against the policies, if any.
    hold: Option<Hold>,
}

/// Whether the pool now acts on its decisions.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PauseAnswer {
    paused: bool,
}

/// An approved change: the capacity the pool now aims for.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Approved {
    capacity: u32,
}

async fn ask<T>(p: &PoolEntry, make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> PoolCommand) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    p.handle.command(make(tx)).await.map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
    match rx.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::UNPROCESSABLE_ENTITY, e)),
        Err(_) => Err(error(StatusCode::SERVICE_UNAVAILABLE, "the pool stopped before answering")),
    }
}

/// The pool a mutating call is for, once the caller is authorized.
fn authorized_pool(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Arc<PoolEntry>, Response> {
    authorize(state, headers)?;
    pool(state, id)
}

/// A manual action within min..max, journalled with its reason and held
/// against the policies for `hold_secs`.
#[utoipa::path(post, path = "/pools/{id}/scale", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    request_body(content = ScaleBody, content_type = "application/json",
        example = json!({ "capacity": 3, "reason": "warming up for the launch", "hold_secs": 60 })),
    responses(
        (status = 200, description = "The capacity the pool now aims for, and its hold", body = ScaleAnswer),
        (status = 400, description = "The body or the path is not valid", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ApiError),
        (status = 422, description = "The pool refused (outside min..max, ...)", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn scale(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, text: String) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    let b: ScaleBody = body(&text, "scale request ({\"capacity\": N, \"reason\": \"...\"})")?;
    if b.reason.trim().is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "a manual scale needs a reason; it goes into the journal"));
    }
    let max = crate::decide::guardrails::MAX_HOLD_SECS;
    if b.hold_secs.is_some_and(|h| h > max) {
        return Err(error(StatusCode::BAD_REQUEST, format!("hold_secs: at most {max} (7 days)")));
    }
    let to = ask(&p, |reply| PoolCommand::Scale { to: b.capacity, reason: b.reason, hold_secs: b.hold_secs, reply }).await?;
    Ok(Json(ScaleAnswer { capacity: to, hold: p.handle.snapshot().hold }).into_response())
}

async fn set_paused(state: AppState, id: String, headers: HeaderMap, paused: bool) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    ask(&p, |reply| PoolCommand::Pause { paused, reply }).await?;
    Ok(Json(PauseAnswer { paused }).into_response())
}

/// Stop acting: decisions go on, marked paused.
#[utoipa::path(post, path = "/pools/{id}/pause", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    responses(
        (status = 200, description = "Paused", body = PauseAnswer),
        (status = 400, description = "The path is not valid", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 422, description = "The pool refused", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn pause(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    set_paused(state, id, headers, true).await
}

/// Act again after a pause.
#[utoipa::path(post, path = "/pools/{id}/resume", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    responses(
        (status = 200, description = "Acting", body = PauseAnswer),
        (status = 400, description = "The path is not valid", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 422, description = "The pool refused", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn resume(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    set_paused(state, id, headers, false).await
}

/// Carry out a change held for approval (`approval_above`).
#[utoipa::path(post, path = "/pools/{id}/approve/{seq}", tag = "pools",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The pool's id"),
        ("seq" = u64, Path, description = "The number of the decision that awaits approval"),
    ),
    responses(
        (status = 200, description = "Approved: the capacity the pool now aims for", body = Approved),
        (status = 400, description = "The path is not valid (`seq` is not a decision number)", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 422, description = "Nothing awaits approval under that number (or it expired)", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn approve(State(state): State<AppState>, Path((id, seq)): Path<(String, String)>, headers: HeaderMap) -> Result<Response, Response> {
    authorize(&state, &headers)?;
    let seq: u64 = seq.parse().map_err(|_| error(StatusCode::BAD_REQUEST, format!("`{seq}` is not a decision number")))?;
    let p = pool(&state, &id)?;
    let to = ask(&p, |reply| PoolCommand::Approve { seq, reply }).await?;
    Ok(Json(Approved { capacity: to }).into_response())
}

/// What a promotion or a rollback did, in words (also journalled).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Changed {
    changed: String,
}

/// Promote the pool's candidate set: it serves from the next tick (with the
/// states its shadow built), and the set it replaces is kept for a
/// rollback. Journalled as a record of its own.
#[utoipa::path(post, path = "/pools/{id}/promote", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    responses(
        (status = 200, description = "Promoted: what changed", body = Changed),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 422, description = "The pool has no candidate", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn promote(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    let changed = ask(&p, |reply| PoolCommand::Promote { reply }).await?;
    Ok(Json(Changed { changed }).into_response())
}

/// Return to the set the last promotion replaced (the exact versions that
/// served then); the set rolled back goes on in shadow as the candidate.
#[utoipa::path(post, path = "/pools/{id}/rollback", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    responses(
        (status = 200, description = "Rolled back: what changed", body = Changed),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 422, description = "Nothing was promoted: no previous version", body = ApiError),
        (status = 503, description = "The pool has stopped", body = ApiError),
    ))]
pub async fn rollback(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    let changed = ask(&p, |reply| PoolCommand::Rollback { reply }).await?;
    Ok(Json(Changed { changed }).into_response())
}

/// Samples of one series: exactly one of `value` and `samples`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushBody {
    /// The series, as a pool's metrics name it (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// One value, timestamped now.
    value: Option<f64>,
    /// Or samples with their own times.
    samples: Option<Vec<Sample>>,
}

/// How many samples were kept.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Accepted {
    accepted: usize,
}

/// Push samples of a series to the pool's `push` source.
#[utoipa::path(post, path = "/pools/{id}/metrics", tag = "pools",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pool's id")),
    request_body(content = PushBody, content_type = "application/json",
        example = json!({ "name": "queue_depth", "value": 42.0 })),
    responses(
        (status = 200, description = "Kept", body = Accepted),
        (status = 400, description = "The body or the path is not valid", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such pool", body = ApiError),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ApiError),
    ))]
pub async fn push_metrics(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, text: String) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    let b: PushBody = body(&text, "push ({\"name\": \"...\", \"value\": X} or {\"name\": \"...\", \"samples\": [{\"at\": MS, \"value\": X}]})")?;
    let samples = match (b.value, b.samples) {
        (Some(v), None) => vec![Sample { at: scalewise_providers::now_ms(), value: v }],
        (None, Some(s)) => s,
        _ => return Err(error(StatusCode::BAD_REQUEST, "give exactly one of `value` and `samples`")),
    };
    p.push.push(&b.name, &samples).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(Accepted { accepted: samples.len() }).into_response())
}

/// The demo's work queue: a worker takes its next job.
#[utoipa::path(post, path = "/demo/take", tag = "demo",
    responses(
        (status = 200, description = "A job", body = crate::demo::Job),
        (status = 204, description = "The queue is empty"),
        (status = 404, description = "The demo is not enabled in this host's config", body = ApiError),
    ))]
pub async fn demo_take(State(state): State<AppState>) -> Response {
    match state.demo.as_ref().map(|q| q.take()) {
        Some(Some(job)) => Json(job).into_response(),
        Some(None) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "the demo is not enabled in this host's config"),
    }
}
