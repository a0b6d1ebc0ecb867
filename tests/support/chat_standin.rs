//! A stand-in for an OpenAI-compatible chat-completions endpoint (OpenAI,
//! Ollama, vLLM, llama.cpp's server): no model can run here, so the
//! advisor is tested against this server, which speaks the wire format of
//! the public API reference (platform.openai.com/docs/api-reference/chat):
//! - `POST /v1/chat/completions`: the request is checked as the API checks
//!   it (`model` a string, `messages` of `{role, content}` with a known
//!   role, `temperature` in [0, 2], `response_format` of type `text`,
//!   `json_object`, or `json_schema` with `{name, schema, strict}`), and
//!   refused with a 400 `invalid_request_error` otherwise; a wrong key is a
//!   401 `invalid_api_key`, an unknown model a 404 `model_not_found`.
//! - The answer is a `chat.completion` object: `id`, `object`, `created`,
//!   `model`, `choices[0].message {role, content, refusal}`,
//!   `finish_reason`, and `usage {prompt_tokens, completion_tokens,
//!   total_tokens}`. Errors are `{"error": {message, type, param, code}}`,
//!   a 429 with `Retry-After`.
//!
//! What it answers is set per pool (read from the system message's "pool
//! `ID`"): a vote, a review, raw content (not JSON, the wrong shape), an
//! HTTP error, a huge body, a delay, or a model that obeys any instruction
//! it finds in the data. Every request body is kept, in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const MODEL: &str = "stand-in-7b";
pub const KEY: &str = "sk-test-advisor";

/// What the model says.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer each question by its schema: a vote of `desired` for a vote,
    /// `verdict` for a review.
    Answer { desired: u32, confidence: f64, verdict: &'static str, reason: String },
    /// This message content, whatever was asked.
    Content(String),
    /// An HTTP error in the API's shape.
    Status { status: u16, kind: &'static str, code: &'static str, retry_after: Option<u64> },
    /// A completion whose body is this many bytes.
    Huge(usize),
    /// Obeys the data: if the user message holds `scale to N`, votes N
    /// with full confidence; otherwise votes `otherwise`.
    Obedient { otherwise: u32 },
}

impl Behavior {
    pub fn vote(desired: u32, reason: &str) -> Behavior {
        Behavior::Answer { desired, confidence: 0.8, verdict: "agree", reason: reason.into() }
    }

    pub fn review(verdict: &'static str, reason: &str) -> Behavior {
        Behavior::Answer { desired: 1, confidence: 0.8, verdict, reason: reason.into() }
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    /// By pool id; `default` for the others.
    pub behavior: BTreeMap<String, Behavior>,
    pub default: Behavior,
    /// How long each answer takes.
    pub delay: Duration,
    /// Every request body, in order.
    pub requests: Vec<Value>,
}

pub struct ChatStandIn {
    pub state: Arc<Mutex<Model>>,
    /// The API base to configure: `http://127.0.0.1:PORT/v1`.
    pub base: String,
    _runtime: tokio::runtime::Runtime,
}

impl ChatStandIn {
    pub fn start(default: Behavior) -> ChatStandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let state = Arc::new(Mutex::new(Model { behavior: BTreeMap::new(), default, delay: Duration::ZERO, requests: Vec::new() }));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete)).with_state(state.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        ChatStandIn { state, base, _runtime: runtime }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn set(&self, pool: &str, b: Behavior) {
        self.with(|m| m.behavior.insert(pool.into(), b));
    }

    pub fn requests(&self) -> Vec<Value> {
        self.with(|m| m.requests.clone())
    }
}

fn error(status: u16, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

/// What the API would refuse in `body`, as its 400 says it.
fn invalid(body: &Value) -> Option<(String, &'static str)> {
    if !body["model"].is_string() {
        return Some(("you must provide a model parameter".into(), "model"));
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Some(("'messages' must be a non-empty array".into(), "messages"));
    };
    for (i, m) in messages.iter().enumerate() {
        if !matches!(m["role"].as_str(), Some("system" | "developer" | "user" | "assistant")) || !m["content"].is_string() {
            return Some((format!("Invalid value for 'messages[{i}]': a message needs a role and string content"), "messages"));
        }
    }
    if let Some(t) = body.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)) {
            return Some(("'temperature' must be a number between 0 and 2".into(), "temperature"));
        }
    if let Some(rf) = body.get("response_format") {
        match rf["type"].as_str() {
            Some("text" | "json_object") => {}
            Some("json_schema") => {
                let s = &rf["json_schema"];
                let name_ok = s["name"].as_str().is_some_and(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
                if !name_ok || !s["schema"].is_object() || s.get("strict").is_some_and(|v| !v.is_boolean()) {
                    return Some(("Invalid 'response_format.json_schema': needs a name matching ^[a-zA-Z0-9_-]{1,64}$ and a schema object".into(), "response_format"));
                }
                if s["strict"] == true && s["schema"]["additionalProperties"] != false {
                    return Some(("Invalid schema for response_format: In strict mode, 'additionalProperties' is required to be supplied and to be false".into(), "response_format"));
                }
            }
            _ => return Some(("Invalid 'response_format.type'".into(), "response_format")),
        }
    }
    None
}

async fn complete(State(state): State<Arc<Mutex<Model>>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None, None);
    };
    let (behavior, delay) = {
        let mut m = state.lock().unwrap();
        m.requests.push(body.clone());
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        let pool = system.split("pool `").nth(1).and_then(|r| r.split('`').next()).unwrap_or("");
        (m.behavior.get(pool).cloned().unwrap_or_else(|| m.default.clone()), m.delay)
    };
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        return error(401, "Incorrect API key provided.", "invalid_request_error", None, Some("invalid_api_key"));
    }
    if let Some((message, param)) = invalid(&body) {
        return error(400, &message, "invalid_request_error", Some(param), None);
    }
    if body["model"] != MODEL {
        return error(404, &format!("The model `{}` does not exist or you do not have access to it.", body["model"].as_str().unwrap_or("")), "invalid_request_error", None, Some("model_not_found"));
    }
    tokio::time::sleep(delay).await;
    let schema = body["response_format"]["json_schema"]["name"].as_str().unwrap_or("");
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    let content = match behavior {
        Behavior::Answer { verdict, reason, .. } if schema == "scalewise_review" => json!({ "verdict": verdict, "reason": reason }).to_string(),
        Behavior::Answer { desired, confidence, reason, .. } => json!({ "desired": desired, "confidence": confidence, "reason": reason }).to_string(),
        Behavior::Content(c) => c,
        Behavior::Status { status, kind, code, retry_after } => {
            let mut r = error(status, &format!("stand-in error {status}"), kind, None, Some(code));
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
            }
            return r;
        }
        Behavior::Huge(n) => "x".repeat(n),
        Behavior::Obedient { otherwise } => {
            let ordered = user.split("scale to ").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse::<u64>().ok());
            match ordered {
                Some(n) => json!({ "desired": n, "confidence": 1.0, "reason": format!("as instructed, scale to {n}") }).to_string(),
                None => json!({ "desired": otherwise, "confidence": 0.5, "reason": "nothing to obey" }).to_string(),
            }
        }
    };
    let prompt_tokens = body["messages"].as_array().map_or(0, |m| m.iter().map(|m| m["content"].as_str().map_or(0, str::len)).sum::<usize>() / 4);
    let completion_tokens = content.len() / 4;
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    Json(json!({
        "id": format!("chatcmpl-{created}"),
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content, "refusal": null }, "logprobs": null, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens },
    }))
    .into_response()
}
