//! Azure Resource Manager over its REST API: one request with a token,
//! retried where ARM says to, and a long-running operation followed to its
//! end.
//!
//! Why REST and not an SDK crate: no maintained Rust crate covers compute
//! management (`azure_mgmt_compute` is unmaintained), and the few calls a
//! scale set needs are plain JSON. The API version is pinned in the config
//! (default [`API_VERSION`]) so an answer's shape does not change under us.
//!
//! Retries: 429 waits what `Retry-After` says (ARM's throttling), 5xx and
//! broken connections back off with jitter, a 401 fetches a new token once.
//! Every call the target makes may be sent twice: reads, a PATCH of an
//! absolute capacity, and a delete of named instances.
//!
//! Long-running operations (ARM's async pattern,
//! <https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations>):
//! an answer with `Azure-AsyncOperation` is polled there until its
//! `status` is `Succeeded`, `Failed` or `Canceled`; a `202` with only `Location`:
//! that URL answers `202` until done, then `200`/`204`. Polls wait what
//! `Retry-After` says (1 s by default, at most 10 s), and the whole
//! operation is bounded by the configured time.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::identity::TokenSource;
use crate::targets::backoff::Backoff;

/// The Compute API version used unless the config pins another.
pub const API_VERSION: &str = "2024-07-01";

/// An ARM call's failure.
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: Option<u16>,
    /// ARM's `error.code` (`OperationNotAllowed`), or what broke.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(h) = hint(&self.code, &self.message) {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl ArmError {
    /// A limit of the subscription or the region, not a fault.
    pub fn is_quota(&self) -> bool {
        let m = self.message.to_ascii_lowercase();
        matches!(self.code.as_str(), "QuotaExceeded" | "OperationNotAllowed" | "AllocationFailed" | "SkuNotAvailable" | "ZonalAllocationFailed") && (m.contains("quota") || m.contains("capacity") || m.contains("alloc") || self.code != "OperationNotAllowed")
    }
}

fn hint(code: &str, message: &str) -> Option<&'static str> {
    Some(match code {
        "AuthorizationFailed" | "LinkedAuthorizationFailed" => "grant the host's identity a role that may write the scale set (Virtual Machine Contributor)",
        "InvalidAuthenticationToken" | "ExpiredAuthenticationToken" => "check the credential the pool's provider config names",
        "ResourceNotFound" | "ParentResourceNotFound" | "ResourceGroupNotFound" | "NotFound" => {
            "the scale set is not there: check subscription_id, resource_group and name; was it deleted?"
        }
        "SubscriptionNotFound" | "InvalidSubscriptionId" => "check subscription_id",
        "Unreachable" => "check `endpoint` and that the host can reach Azure Resource Manager",
        "QuotaExceeded" | "AllocationFailed" | "ZonalAllocationFailed" | "SkuNotAvailable" => "a quota or capacity limit: ask Azure for more, choose another size or region, or lower the pool's max",
        "OperationNotAllowed" if message.to_ascii_lowercase().contains("quota") => "a quota: ask Azure for more, or lower the pool's max",
        _ => return None,
    })
}

/// ARM's error body, `{"error": {"code", "message"}}`, or what there is.
pub fn parse_error(status: u16, body: &[u8]) -> ArmError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = if v["error"].is_object() { &v["error"] } else { &v };
    let code = e["code"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP{status}"));
    let message = e["message"].as_str().map(str::to_owned).unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    ArmError { status: Some(status), code, message }
}

/// The largest answer read from ARM: a page of a scale set's VMs is some
/// hundred kilobytes.
const MAX_ANSWER_BYTES: usize = 32 << 20;

pub struct Arm {
    pub http: reqwest::Client,
    /// `https://management.azure.com`
    pub endpoint: String,
    pub api_version: String,
    pub tokens: TokenSource,
    pub backoff: Backoff,
    /// How long one long-running operation may take.
    pub operation_timeout: Duration,
}

/// What `Retry-After` asks for, in seconds, bounded.
fn retry_after(headers: &HeaderMap, default: Duration, cap: Duration) -> Duration {
    headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0).map_or(default, Duration::from_secs_f64).min(cap)
}

impl Arm {
    /// `path` (from `/subscriptions/...`) with the API version.
    pub fn url(&self, path: &str, query: &str) -> String {
        format!("{}{path}?api-version={}{query}", self.endpoint.trim_end_matches('/'), self.api_version)
    }

    /// One call, retried as the module says. Returns the status, headers
    /// and JSON body (`Null` when empty) of a 2xx answer.
    pub async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<(StatusCode, HeaderMap, Value), ArmError> {
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await.map_err(|e| ArmError { status: None, code: "SignIn".into(), message: e })?;
            let mut request = self.http.request(method.clone(), url).bearer_auth(token);
            if let Some(b) = body {
                request = request.json(b);
            }
            let wait = match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let headers = answer.headers().clone();
                    let body = match crate::http::body_bounded(answer, MAX_ANSWER_BYTES).await {
                        Ok(bytes) => Ok(bytes),
                        Err(crate::http::BodyError::TooLarge(_)) => {
                            let message = format!("the answer to {method} {url} is larger than {MAX_ANSWER_BYTES} bytes");
                            return Err(ArmError { status: Some(status.as_u16()), code: "AnswerTooLarge".into(), message });
                        }
                        Err(crate::http::BodyError::Read(e)) => Err(crate::error_chain(&e)),
                    };
                    // A success whose body was cut off, or is not JSON, is
                    // tried again: read as empty, a list of the set's VMs
                    // would say it has none.
                    let bad = |message: String| ArmError { status: Some(status.as_u16()), code: "BadAnswer".into(), message };
                    match (status.is_success(), body) {
                        (true, Ok(bytes)) if bytes.is_empty() => return Ok((status, headers, Value::Null)),
                        (true, Ok(bytes)) => match serde_json::from_slice(&bytes) {
                            Ok(v) => return Ok((status, headers, v)),
                            Err(e) => (self.backoff.wait(attempt), bad(format!("HTTP {status} with a body that is not JSON: {e}"))),
                        },
                        (true, Err(e)) => (self.backoff.wait(attempt), bad(format!("HTTP {status}, its body cut off: {e}"))),
                        (false, body) => {
                            let error = parse_error(status.as_u16(), body.as_deref().unwrap_or_default());
                            if status == StatusCode::UNAUTHORIZED && !renewed {
                                renewed = true;
                                self.tokens.forget().await;
                                continue;
                            }
                            if status == StatusCode::TOO_MANY_REQUESTS {
                                (retry_after(&headers, self.backoff.wait(attempt), Duration::from_secs(60)), error)
                            } else if status.is_server_error() {
                                (retry_after(&headers, self.backoff.wait(attempt), Duration::from_secs(30)), error)
                            } else {
                                return Err(error);
                            }
                        }
                    }
                }
                Err(e) => (self.backoff.wait(attempt), ArmError { status: None, code: "Unreachable".into(), message: crate::error_chain(&e) }),
            };
            let (wait, error) = wait;
            attempt += 1;
            if attempt >= self.backoff.attempts {
                return Err(error);
            }
            tracing::debug!(call = %method, url, attempt, ?wait, "ARM {error}; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Follow the long-running operation an answer started, if it did.
    pub async fn follow(&self, status: StatusCode, headers: &HeaderMap) -> Result<(), ArmError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // A PUT or PATCH may answer 200 or 201 with Azure-AsyncOperation; a
        // Location alone means something only with 202.
        let (url, async_op) = match (header("azure-asyncoperation"), header("location")) {
            (Some(u), _) => (u, true),
            (None, Some(u)) if status == StatusCode::ACCEPTED => (u, false),
            _ => return Ok(()),
        };
        let deadline = Instant::now() + self.operation_timeout;
        let mut wait = retry_after(headers, Duration::from_secs(1), Duration::from_secs(10));
        loop {
            if Instant::now() + wait > deadline {
                return Err(ArmError { status: None, code: "OperationTimeout".into(), message: format!("the operation at {url} did not finish in {:?}", self.operation_timeout) });
            }
            tokio::time::sleep(wait).await;
            let (s, h, v) = self.send(Method::GET, &url, None).await?;
            wait = retry_after(&h, Duration::from_secs(1), Duration::from_secs(10));
            if async_op {
                match v["status"].as_str().unwrap_or("") {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => {
                        let e = &v["error"];
                        return Err(ArmError {
                            status: None,
                            code: e["code"].as_str().unwrap_or("OperationFailed").to_owned(),
                            message: e["message"].as_str().unwrap_or("the operation failed").to_owned(),
                        });
                    }
                    _ => {}
                }
            } else if s != StatusCode::ACCEPTED {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_errors_are_read_and_say_what_to_do() {
        let e = parse_error(404, br#"{"error":{"code":"ResourceNotFound","message":"The Resource 'Microsoft.Compute/virtualMachineScaleSets/web' under resource group 'rg' was not found."}}"#);
        assert_eq!(e.code, "ResourceNotFound");
        assert!(e.to_string().contains("was it deleted?"), "{e}");
        let q = parse_error(409, br#"{"error":{"code":"OperationNotAllowed","message":"Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota."}}"#);
        assert!(q.is_quota() && q.to_string().contains("a quota"), "{q}");
        let other = parse_error(409, br#"{"error":{"code":"OperationNotAllowed","message":"another operation is in progress"}}"#);
        assert!(!other.is_quota());
        let raw = parse_error(502, b"<html>bad gateway</html>");
        assert_eq!((raw.code.as_str(), raw.message.as_str()), ("HTTP502", "<html>bad gateway</html>"));
    }

    /// ARM answering without end: the read stops at the cap, as an error
    /// that says so, after the token (a small answer) was read.
    #[tokio::test]
    async fn an_answer_past_the_cap_is_an_error_not_a_read_without_end() {
        use super::super::identity::Credential;
        const TOKEN: &[(&str, &str)] = &[("/oauth2/token", r#"{"access_token":"t","expires_in":"3600"}"#)];
        let (base, sent) = crate::http::endless_server(TOKEN, r#"{"value":["#, r#"{"name":"web_0","properties":{}},"#).await;
        let http = reqwest::Client::new();
        let tokens = TokenSource::new(Credential::ManagedIdentity { client_id: None }, base.clone(), base.clone(), "https://management.azure.com/".into(), http.clone());
        let arm = Arm { http, endpoint: base, api_version: "2024-07-01".into(), tokens, backoff: Backoff::default(), operation_timeout: Duration::from_secs(5) };
        let e = arm.send(Method::GET, &arm.url("/subscriptions/s/virtualMachines", ""), None).await.unwrap_err();
        assert_eq!(e.code, "AnswerTooLarge", "{e}");
        assert!(e.message.contains(&format!("is larger than {MAX_ANSWER_BYTES} bytes")), "{e}");
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < 2 * MAX_ANSWER_BYTES, "the client read on past its cap");
    }

    /// A success whose body is not JSON is tried again and then an error:
    /// read as empty, a list of the set's VMs would say it has none.
    #[tokio::test]
    async fn a_success_that_is_not_json_is_an_error_not_an_empty_answer() {
        use super::super::identity::Credential;
        const ROUTES: &[(&str, &str)] = &[("/oauth2/token", r#"{"access_token":"t","expires_in":"3600"}"#), ("/virtualMachines", "<html>upstream reset</html>")];
        let (base, _) = crate::http::endless_server(ROUTES, "", "").await;
        let http = reqwest::Client::new();
        let tokens = TokenSource::new(Credential::ManagedIdentity { client_id: None }, base.clone(), base.clone(), "https://management.azure.com/".into(), http.clone());
        let backoff = Backoff { attempts: 2, base: Duration::from_millis(1), cap: Duration::from_millis(1) };
        let arm = Arm { http, endpoint: base, api_version: "2024-07-01".into(), tokens, backoff, operation_timeout: Duration::from_secs(5) };
        let e = arm.send(Method::GET, &arm.url("/subscriptions/s/virtualMachines", ""), None).await.unwrap_err();
        assert_eq!(e.code, "BadAnswer", "{e}");
        assert!(e.message.contains("HTTP 200 OK with a body that is not JSON"), "{e}");
    }

    #[test]
    fn retry_after_is_read_and_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, Duration::from_secs(1), Duration::from_secs(10)), Duration::from_secs(1));
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h, Duration::from_secs(1), Duration::from_secs(10)), Duration::from_secs(3));
        h.insert("retry-after", "3600".parse().unwrap());
        assert_eq!(retry_after(&h, Duration::from_secs(1), Duration::from_secs(10)), Duration::from_secs(10));
    }
}
