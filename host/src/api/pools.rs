//! Pool routes: state, decisions (paged), manual scale, pause and resume,
//! approvals, pushed samples, and the demo queue.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use super::{AppState, authorize, error};
use crate::control::PoolCommand;
use crate::service::PoolEntry;
use scalewise_providers::Sample;

fn pool(state: &AppState, id: &str) -> Result<Arc<PoolEntry>, Response> {
    state.pools.get(id).cloned().ok_or_else(|| {
        let known: Vec<&str> = state.pools.keys().map(String::as_str).collect();
        error(StatusCode::NOT_FOUND, format!("no pool `{id}`; configured pools: {}", known.join(", ")))
    })
}

/// Parse a JSON body into `T`, or say what was wrong with it.
fn body<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Response> {
    serde_json::from_str(text).map_err(|e| error(StatusCode::BAD_REQUEST, format!("the body is not a valid {what}: {e}")))
}

pub async fn list(State(state): State<AppState>) -> Response {
    Json(state.pools.values().map(|p| p.handle.snapshot()).collect::<Vec<_>>()).into_response()
}

pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Response> {
    Ok(Json(pool(&state, &id)?.handle.snapshot()).into_response())
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<u64>,
    limit: Option<usize>,
}

pub async fn decisions(State(state): State<AppState>, Path(id): Path<String>, page: Result<Query<Page>, axum::extract::rejection::QueryRejection>) -> Result<Response, Response> {
    let Query(page) = page.map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad query: {e}; use ?before=SEQ&limit=N")))?;
    let p = pool(&state, &id)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 1000);
    let mut found = p.handle.recent(page.before, limit);
    // Older than the in-memory window: read the journal.
    if found.len() < limit
        && let Some(j) = &state.journal {
            let before = found.last().map(|d| d.seq).or(page.before);
            if before != Some(1) {
                let more = j.decisions(&id, before, limit - found.len()).unwrap_or_default();
                found.extend(more);
            }
        }
    Ok(Json(found).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    capacity: u32,
    reason: String,
    /// How long the capacity holds against the policies (default: the
    /// pool's `guardrails.manual_hold_secs`; 0: not at all).
    hold_secs: Option<u64>,
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
    Ok(Json(json!({ "capacity": to, "hold": p.handle.snapshot().hold })).into_response())
}

async fn set_paused(state: AppState, id: String, headers: HeaderMap, paused: bool) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    ask(&p, |reply| PoolCommand::Pause { paused, reply }).await?;
    Ok(Json(json!({ "paused": paused })).into_response())
}

pub async fn pause(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    set_paused(state, id, headers, true).await
}

pub async fn resume(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Response> {
    set_paused(state, id, headers, false).await
}

pub async fn approve(State(state): State<AppState>, Path((id, seq)): Path<(String, String)>, headers: HeaderMap) -> Result<Response, Response> {
    authorize(&state, &headers)?;
    let seq: u64 = seq.parse().map_err(|_| error(StatusCode::BAD_REQUEST, format!("`{seq}` is not a decision number")))?;
    let p = pool(&state, &id)?;
    let to = ask(&p, |reply| PoolCommand::Approve { seq, reply }).await?;
    Ok(Json(json!({ "capacity": to })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushBody {
    name: String,
    /// One value, timestamped now.
    value: Option<f64>,
    /// Or samples with their own times.
    samples: Option<Vec<Sample>>,
}

pub async fn push_metrics(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, text: String) -> Result<Response, Response> {
    let p = authorized_pool(&state, &headers, &id)?;
    let b: PushBody = body(&text, "push ({\"name\": \"...\", \"value\": X} or {\"name\": \"...\", \"samples\": [{\"at\": MS, \"value\": X}]})")?;
    let samples = match (b.value, b.samples) {
        (Some(v), None) => vec![Sample { at: scalewise_providers::now_ms(), value: v }],
        (None, Some(s)) => s,
        _ => return Err(error(StatusCode::BAD_REQUEST, "give exactly one of `value` and `samples`")),
    };
    p.push.push(&b.name, &samples).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(json!({ "accepted": samples.len() })).into_response())
}

pub async fn demo_take(State(state): State<AppState>) -> Response {
    match state.demo.as_ref().map(|q| q.take()) {
        Some(Some(job)) => Json(job).into_response(),
        Some(None) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "the demo is not enabled in this host's config"),
    }
}
