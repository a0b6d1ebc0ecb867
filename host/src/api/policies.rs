//! Policy routes: each policy's status and who uses it, a rescan of the
//! policy directory, and evaluating the serving version on an input.
//!
//! Why apart from the pool routes: these speak of the sandbox's nouns
//! (versions, load errors, a role's input and output), and the answers are
//! the registry's, not a pool's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};

use super::{ApiError, AppState, authorize, error};
use crate::policy::registry::{Evaluation, RegistryError, ScanReport};
use crate::policy::{AnyInput, AnyOutput, StatusSnapshot};
use scalewise_sdk::{ConsensusInput, CostInput, StrategyInput};

/// A policy in one word: `serving`; `failed` (not loaded, and a pool uses
/// it or the config sets it up, or several files define it); `unconfigured`
/// (not loaded, and nothing uses or configures it: the built-ins a pool does
/// not name, say, which need settings to load; the dashboard shows these
/// neutrally, not as errors); or `unloaded` (its file went).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum PolicyState {
    Serving,
    Failed,
    Unconfigured,
    Unloaded,
}

/// A policy's status with who uses it and its [`PolicyState`].
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PolicyView {
    #[serde(flatten)]
    status: StatusSnapshot,
    /// The pools that name it.
    used_by: Vec<String>,
    /// Whether the config gives it settings (`policies.settings.ID`).
    configured: bool,
    state: PolicyState,
}

fn view(state: &AppState, status: StatusSnapshot) -> PolicyView {
    let (used_by, configured) = state.registry.usage(&status.id);
    let word = match (&status.serving, &status.last_load_error) {
        (Some(_), _) => PolicyState::Serving,
        (None, _) if status.clash.is_some() => PolicyState::Failed,
        (None, Some(_)) if used_by.is_empty() && !configured => PolicyState::Unconfigured,
        (None, Some(_)) => PolicyState::Failed,
        (None, None) => PolicyState::Unloaded,
    };
    PolicyView { status, used_by, configured, state: word }
}

/// Every policy seen in the policy directory.
///
/// Its serving version, counters, latency, last errors, the pools that use
/// it, whether the config gives it settings, and its state.
#[utoipa::path(get, path = "/policies", operation_id = "list_policies", tag = "policies",
    responses((status = 200, description = "Every policy seen, by id", body = Vec<PolicyView>)))]
pub async fn list(State(state): State<AppState>) -> Response {
    Json(state.registry.statuses().into_iter().map(|s| view(&state, s)).collect::<Vec<_>>()).into_response()
}

/// One policy's status.
#[utoipa::path(get, path = "/policies/{id}", operation_id = "get_policy", tag = "policies",
    params(("id" = String, Path, description = "The policy's id (its file name without .wasm or .rhai)")),
    responses(
        (status = 200, description = "The policy", body = PolicyView),
        (status = 400, description = "The path is not valid", body = ApiError),
        (status = 404, description = "No such policy has been seen", body = ApiError),
    ))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.registry.status_of(&id) {
        Some(s) => Json(view(&state, s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no policy `{id}` has been seen in the policy directory")),
    }
}

/// Rescan the policy directory now (it is also watched).
#[utoipa::path(post, path = "/policies/reload", tag = "policies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the rescan did", body = ScanReport),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
    ))]
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let registry = state.registry.clone();
    match tokio::task::spawn_blocking(move || registry.rescan()).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A policy that gave no usable answer: why, and the kind of failure.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PolicyFailure {
    error: String,
    /// `declined` (no opinion), `error` (the policy's own error), `trap`,
    /// `timeout`, `memory_cap`, `invalid_output`,
    /// `instantiate` or `wrong_role`.
    kind: &'static str,
}

/// The body of `POST /policies/{id}/evaluate`: the input of whichever role
/// the policy plays. Its schema is any of the three roles' inputs (not one
/// of them: a consensus input is also a valid strategy input, the fields
/// each role does not read being ignored).
pub(super) struct EvaluateInput;

impl utoipa::PartialSchema for EvaluateInput {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(StrategyInput::name()))
            .item(Ref::from_schema_name(CostInput::name()))
            .item(Ref::from_schema_name(ConsensusInput::name()))
            .description(Some("A strategy's, a cost rule's or a consensus policy's input, as the policy's role needs"))
            .into()
    }
}

impl ToSchema for EvaluateInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
        add::<StrategyInput>(schemas);
        add::<CostInput>(schemas);
        add::<ConsensusInput>(schemas);
    }
}

/// Evaluate the serving version on an input of its role.
///
/// Checked like any call (the output guard applies), but counted in no live
/// counter and with no fallback: a caller's experiments cannot make a
/// policy look faulty. `settings` may be a JSON object or JSON text; when
/// given, they replace the configured settings for this call once the
/// policy's `validate-config` accepts them (absent, the configured ones
/// apply). At most
/// `server.evaluate_concurrency` run at once. Needs the token unless
/// `server.evaluate_without_token` is set.
#[utoipa::path(post, path = "/policies/{id}/evaluate", tag = "policies",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The policy's id")),
    request_body(content = EvaluateInput, description = "The role's input", content_type = "application/json",
        example = json!({
            "pool": { "id": "web", "running": 2, "booting": 0, "min": 1, "max": 10 },
            "metrics": [{ "name": "queue_depth", "samples": [{ "at": 1_767_225_600_000_i64, "value": 42.0 }] }],
            "now": 1_767_225_600_000_i64,
            "settings": { "target_per_worker": 10 }
        })),
    responses(
        (status = 200, description = "The policy's answer and the version that gave it", body = Evaluation<AnyOutput>),
        (status = 400, description = "The body is not JSON, not an input of the policy's role, or has settings the policy's validate-config refuses", body = ApiError),
        (status = 401, description = "No token, or the wrong one", body = ApiError),
        (status = 403, description = "Mutating calls are disabled (no `server.token`)", body = ApiError),
        (status = 404, description = "No such policy is loaded", body = ApiError),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ApiError),
        (status = 422, description = "The policy gave no usable answer", body = PolicyFailure),
        (status = 429, description = "`server.evaluate_concurrency` evaluations are already running", body = ApiError),
    ))]
pub async fn evaluate(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, body: String) -> Response {
    if !state.server.evaluate_without_token
        && let Err(r) = authorize(&state, &headers)
    {
        return r;
    }
    // The permit goes into the blocking task: a caller who hangs up drops
    // this handler, but the evaluation runs on to its deadline and keeps
    // its place in `server.evaluate_concurrency` until then.
    let Ok(permit) = state.evaluations.clone().try_acquire_owned() else {
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
    let own_settings = value.get("settings").is_some_and(|s| !s.is_null());
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let input = AnyInput::parse(role, value).map_err(|e| format!("the body is not a valid {role} input: {e}"))?;
        Ok::<_, String>(input.try_in(&registry, &id, own_settings))
    })
    .await;
    match result {
        Ok(Ok(Ok(evaluation))) => Json::<Evaluation<AnyOutput>>(evaluation).into_response(),
        Ok(Ok(Err(RegistryError::NotLoaded(id)))) => error(StatusCode::NOT_FOUND, RegistryError::NotLoaded(id).to_string()),
        Ok(Ok(Err(e @ RegistryError::Settings(_)))) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Ok(Err(RegistryError::Policy(e)))) => (StatusCode::UNPROCESSABLE_ENTITY, Json(PolicyFailure { error: e.to_string(), kind: e.kind() })).into_response(),
        Ok(Err(msg)) => error(StatusCode::BAD_REQUEST, msg),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
