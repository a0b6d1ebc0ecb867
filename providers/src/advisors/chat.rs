//! The chat-completions wire format (`POST {base}/chat/completions`), as the
//! public API reference gives it, and what its compatible servers accept:
//! `model`, `messages` (one `system`, one `user`), `temperature`,
//! `max_tokens`, an optional `seed`, `stream: false`, and `response_format`
//! with a JSON schema (`{"type": "json_schema", "json_schema": {"name",
//! "strict": true, "schema"}}`), which OpenAI, Ollama (0.5 and later), vLLM
//! and llama.cpp's server all use to constrain the answer to the schema.
//!
//! Every call is bounded: a timeout over the whole exchange (connect, send,
//! the body), and the body read only up to a size, so an endpoint that is
//! down, slow or answers a flood costs a bounded wait and a bounded buffer.
//! The error says which of those it was, with the start of what came back
//! where something did.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Access, BodyError, body_bounded};

/// How to reach the endpoint and what to ask it with.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// The API's base, e.g. `http://127.0.0.1:11434/v1`.
    pub base: String,
    pub model: String,
    pub timeout: Duration,
    pub temperature: f64,
    pub seed: Option<i64>,
    /// `max_tokens` of the answer.
    pub max_tokens: u32,
    /// The largest response body read, in bytes.
    pub max_body_bytes: usize,
    /// Ask for the schema with `response_format`. Off for a server that
    /// refuses the field; the schema is then only in the prompt.
    pub structured_output: bool,
    pub access: Access,
}

/// One question.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    pub system: &'a str,
    pub user: &'a str,
    /// The answer's JSON schema and its name (`^[a-zA-Z0-9_-]{1,64}$`).
    pub schema_name: &'a str,
    pub schema: &'a Value,
}

/// Tokens, where the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The model's answer: the first choice's message content, untouched.
#[derive(Debug, Clone)]
pub struct ChatReply {
    pub content: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub latency: Duration,
}

/// Why there is no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatError {
    /// No connection, or it broke.
    Unreachable(String),
    /// No whole answer within the timeout.
    Timeout(Duration),
    /// An HTTP error, with the API's `error.message` where it gave one.
    Status { status: u16, message: String, retry_after_secs: Option<u64> },
    /// A body over the size limit; the first bytes of it.
    TooLarge { limit: usize, head: String },
    /// A 200 that is not a chat completion (no choices, no content).
    Envelope { detail: String, head: String },
    /// The model refused (`message.refusal`).
    Refused(String),
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "the endpoint is unreachable: {e}"),
            Self::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            Self::Status { status, message, retry_after_secs } => {
                write!(f, "HTTP {status}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if let Some(s) = retry_after_secs {
                    write!(f, " (retry after {s} s)")?;
                }
                Ok(())
            }
            Self::TooLarge { limit, .. } => write!(f, "the answer is larger than {limit} bytes"),
            Self::Envelope { detail, .. } => write!(f, "not a chat completion: {detail}"),
            Self::Refused(why) => write!(f, "the model refused: {why}"),
        }
    }
}

impl ChatError {
    /// What came back, where something did (kept, truncated, in the journal).
    pub fn raw(&self) -> Option<&str> {
        match self {
            Self::TooLarge { head, .. } | Self::Envelope { head, .. } => Some(head),
            Self::Status { message, .. } if !message.is_empty() => Some(message),
            _ => None,
        }
    }

    /// A short word for the metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Status { status: 429, .. } => "rate_limited",
            Self::Status { .. } => "http_error",
            Self::TooLarge { .. } => "too_large",
            Self::Envelope { .. } => "not_a_completion",
            Self::Refused(_) => "refused",
        }
    }
}

/// A chat-completions client for one endpoint and model.
#[derive(Debug)]
pub struct ChatClient {
    url: String,
    client: reqwest::Client,
    basic: Option<(String, String)>,
    s: ChatSettings,
}

impl ChatClient {
    pub fn new(s: ChatSettings) -> Result<Self, String> {
        let base = s.base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("endpoint `{base}` must start with http:// or https://"));
        }
        let url = format!("{base}/chat/completions");
        let client = crate::http::client(s.timeout, &s.access)?;
        Ok(Self { url, client, basic: s.access.basic_auth.clone(), s })
    }

    /// Where requests go.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn model(&self) -> &str {
        &self.s.model
    }

    /// The request body for `r`, as sent.
    pub fn body(&self, r: &ChatRequest<'_>) -> Value {
        let mut body = json!({
            "model": self.s.model,
            "messages": [
                { "role": "system", "content": r.system },
                { "role": "user", "content": r.user },
            ],
            "temperature": self.s.temperature,
            "max_tokens": self.s.max_tokens,
            "stream": false,
        });
        if let Some(seed) = self.s.seed {
            body["seed"] = json!(seed);
        }
        if self.s.structured_output {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": r.schema_name, "strict": true, "schema": r.schema },
            });
        }
        body
    }

    /// Ask once; no retry (the next question is the retry, under the
    /// caller's cap on calls).
    pub async fn ask(&self, r: &ChatRequest<'_>) -> Result<ChatReply, ChatError> {
        let started = Instant::now();
        let timeout = self.s.timeout;
        // reqwest's timeout covers the whole exchange too; this one also
        // bounds the body's chunked read, and names the failure.
        match tokio::time::timeout(timeout, self.exchange(r)).await {
            Ok(Ok((content, usage, finish_reason))) => Ok(ChatReply { content, usage, finish_reason, latency: started.elapsed() }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ChatError::Timeout(timeout)),
        }
    }

    async fn exchange(&self, r: &ChatRequest<'_>) -> Result<(String, Option<Usage>, Option<String>), ChatError> {
        let mut request = self.client.post(&self.url).json(&self.body(r));
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let net = |e: reqwest::Error| if e.is_timeout() { ChatError::Timeout(self.s.timeout) } else { ChatError::Unreachable(crate::error_chain(&e)) };
        let reply = request.send().await.map_err(net)?;
        let status = reply.status().as_u16();
        if !(200..300).contains(&status) {
            // The status and Retry-After are the news; of the body, only
            // enough to read the API's message.
            let retry_after_secs = reply.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, std::time::SystemTime::now()));
            let body = match body_bounded(reply, ERROR_BODY_BYTES).await {
                Ok(b) | Err(BodyError::TooLarge(b)) => b,
                Err(BodyError::Read(_)) => Vec::new(),
            };
            return Err(ChatError::Status { status, message: error_message(&body), retry_after_secs });
        }
        let limit = self.s.max_body_bytes;
        let body = match body_bounded(reply, limit).await {
            Ok(b) => b,
            Err(BodyError::TooLarge(head)) => return Err(ChatError::TooLarge { limit, head: head_of(&head) }),
            Err(BodyError::Read(e)) => return Err(net(e)),
        };
        parse_completion(&body)
    }
}

/// Of an error's body, this much is read.
const ERROR_BODY_BYTES: usize = 16 * 1024;

/// `Retry-After` in seconds from `now`: delta-seconds, or an HTTP date.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |d| d.as_secs_f64().ceil() as u64))
}

/// The first 512 bytes of a body, as text.
fn head_of(body: &[u8]) -> String {
    let head = &body[..body.len().min(512)];
    String::from_utf8_lossy(head).into_owned()
}

/// The API's `{"error": {"message": …}}`, or the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => e.error.message.chars().take(512).collect(),
        Err(_) => head_of(body),
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

fn parse_completion(body: &[u8]) -> Result<(String, Option<Usage>, Option<String>), ChatError> {
    let bad = |detail: String| ChatError::Envelope { detail, head: head_of(body) };
    let c: Completion = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let Some(first) = c.choices.into_iter().next() else { return Err(bad("no choices".into())) };
    if let Some(why) = first.message.refusal.filter(|r| !r.is_empty()) {
        return Err(ChatError::Refused(why.chars().take(512).collect()));
    }
    let content = first.message.content.ok_or_else(|| bad("the first choice has no content".into()))?;
    Ok((content, c.usage, first.finish_reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_gives_its_first_choices_content_and_usage() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"desired\":3}","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        let (content, usage, finish) = parse_completion(body).unwrap();
        assert_eq!(content, r#"{"desired":3}"#);
        assert_eq!(usage, Some(Usage { prompt_tokens: 12, completion_tokens: 5 }));
        assert_eq!(finish.as_deref(), Some("stop"));
    }

    #[test]
    fn what_is_not_a_completion_says_why_and_keeps_its_start() {
        for (body, why) in [(&b"<html>gateway</html>"[..], "expected value"), (br#"{"choices":[]}"#, "no choices"), (br#"{"choices":[{"message":{"role":"assistant"}}]}"#, "no content")] {
            match parse_completion(body) {
                Err(ChatError::Envelope { detail, head }) => {
                    assert!(detail.contains(why), "{detail}");
                    assert_eq!(head.as_bytes(), body);
                }
                other => panic!("{other:?}"),
            }
        }
        let refused = br#"{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}]}"#;
        assert_eq!(parse_completion(refused).unwrap_err(), ChatError::Refused("I can't help with that.".into()));
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 7 ", now), Some(7));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(30));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(0), "a date passed");
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn an_api_error_gives_its_message() {
        assert_eq!(error_message(br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#), "Rate limit reached");
        assert_eq!(error_message(b"upstream down"), "upstream down");
    }

    #[test]
    fn the_request_asks_for_the_schema_where_told_to() {
        let settings = ChatSettings { base: "http://127.0.0.1:1/v1/".into(), model: "m".into(), timeout: Duration::from_secs(1), temperature: 0.0, seed: Some(7), max_tokens: 300, max_body_bytes: 1024, structured_output: true, access: Access::default() };
        let schema = json!({"type": "object"});
        let r = ChatRequest { system: "s", user: "u", schema_name: "vote", schema: &schema };
        let c = ChatClient::new(settings.clone()).unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:1/v1/chat/completions");
        let b = c.body(&r);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "u");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(b["response_format"]["json_schema"]["schema"], schema);
        assert_eq!(b["seed"], 7);
        let plain = ChatClient::new(ChatSettings { structured_output: false, seed: None, ..settings }).unwrap().body(&r);
        assert!(plain.get("response_format").is_none() && plain.get("seed").is_none());
        assert!(ChatClient::new(ChatSettings { base: "ftp://x".into(), ..c.s.clone() }).is_err());
    }
}
