//! The host's config over the API: how it stands (`GET /config`) and a
//! reload on demand (`POST /config/reload`).
//!
//! Why a module of its own: a reload is the operator's lever on a running
//! host, beside `SIGHUP` and the watched file; its answer must say exactly
//! what changed or, when it is refused, every problem with its field path,
//! since the running config goes on either way. The work is
//! [`crate::service::reload`]'s; this module only asks and answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, authorize, error};
use crate::service::reload::{ReloadOutcome, ReloadStatus};

const NO_FILE: &str = "this host runs without a config file (`serve --config FILE`), so there is nothing to reload";

/// The running config: its file, generation and digest, and how the
/// newest reload went (what it changed, or every problem that refused it).
#[utoipa::path(get, path = "/config", tag = "config",
    responses(
        (status = 200, description = "The running config and the newest reload", body = ReloadStatus),
        (status = 404, description = "The host runs without a config file", body = ApiError),
    ))]
pub async fn get_config(State(state): State<AppState>) -> Response {
    match &state.reload {
        Some(r) => Json(r.status.lock().unwrap().clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, NO_FILE),
    }
}

/// Reload the config file now (it is also reloaded on `SIGHUP` and when it
/// changes). Checked whole first; a refused config changes nothing.
#[utoipa::path(post, path = "/config/reload", tag = "config",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied (or already running): what changed", body = ReloadOutcome),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "The host runs without a config file", body = ApiError),
        (status = 422, description = "Refused, with every problem; the running config goes on", body = ReloadOutcome),
        (status = 503, description = "The host is stopping", body = ApiError),
    ))]
pub async fn reload_config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let Some(handle) = &state.reload else {
        return error(StatusCode::NOT_FOUND, NO_FILE);
    };
    match handle.reload("api").await {
        Ok(outcome) if outcome.applied => Json(outcome).into_response(),
        Ok(outcome) => (StatusCode::UNPROCESSABLE_ENTITY, Json(outcome)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
