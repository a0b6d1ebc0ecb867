//! PromQL over Prometheus' HTTP API (`/api/v1/query_range`), over http or
//! https, with basic auth, a bearer token, extra headers (a tenant id) and
//! a private CA, as managed Prometheus services ask for.
//!
//! An answer is read up to a cap ([`DEFAULT_MAX_ANSWER_BYTES`] unless the
//! source is given another): a query that matches a million series must
//! cost the host an error, not its memory.
//!
//! A query must come back as one series: a pool decides on one number per
//! metric, so a query that matches several series is an error that says how
//! to aggregate it, rather than a silent pick of one.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::http::BodyError;
use crate::sources::{MetricError, MetricSource, SourceStatus, Window, tidy};
use crate::Sample;

#[derive(Debug)]
pub struct PrometheusSource {
    base: String,
    client: reqwest::Client,
    basic: Option<(String, String)>,
    max_answer: usize,
    /// Whether the server answered its last query, for the API and `/metrics`.
    status: std::sync::Mutex<SourceStatus>,
}

/// How to reach a Prometheus that asks for more than plain http (the
/// same as any outside HTTP service: see [`crate::http::Access`]).
pub type PrometheusAccess = crate::http::Access;

/// The largest answer read by default: 16 MiB, some hundred thousand
/// points, far more than a window of one series holds.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Matrix(Vec<RangeSeries>),
    // The other result types a query can answer with: read, so that a range
    // query answered with one is "expected a matrix", not a parse error.
    Vector(#[allow(dead_code)] serde_json::Value),
    Scalar(#[allow(dead_code)] serde_json::Value),
    String(#[allow(dead_code)] serde_json::Value),
}

#[derive(Deserialize)]
struct RangeSeries {
    values: Vec<(f64, String)>,
}

impl PrometheusSource {
    /// `base` is the server's URL, e.g. `http://127.0.0.1:9090`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        Self::with_access(base, timeout, PrometheusAccess::default())
    }

    /// With credentials, headers and a CA: see [`PrometheusAccess`].
    pub fn with_access(base: &str, timeout: Duration, access: PrometheusAccess) -> Result<Self, String> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("prometheus url `{base}` must start with http:// or https://"));
        }
        let client = crate::http::client(timeout, &access)?;
        Ok(Self { base, client, basic: access.basic_auth, max_answer: DEFAULT_MAX_ANSWER_BYTES, status: std::sync::Mutex::new(SourceStatus::Unknown) })
    }

    /// Read at most `bytes` of an answer; a longer one is an error.
    pub fn with_max_answer_bytes(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }

    async fn get(&self, path: &str, params: &[(&str, String)], query: &str) -> Result<Data, MetricError> {
        let result = self.get_once(path, params, query).await;
        let status = match &result {
            Ok(_) => SourceStatus::Up(format!("answering at {}", self.base)),
            Err(MetricError::Unreachable { detail, .. }) => SourceStatus::Unavailable(detail.clone()),
            // The server answered; the query was wrong. Only a refusal
            // (an HTTP error that is not a Prometheus reply) makes it unavailable.
            Err(MetricError::Garbage { detail, .. }) if detail.starts_with("HTTP 4") || detail.starts_with("HTTP 5") => SourceStatus::Unavailable(detail.clone()),
            Err(_) => SourceStatus::Up(format!("answering at {}", self.base)),
        };
        *self.status.lock().unwrap() = status;
        result
    }

    async fn get_once(&self, path: &str, params: &[(&str, String)], query: &str) -> Result<Data, MetricError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.get(&url).query(params);
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let reply = request
            .send()
            .await
            .map_err(|e| MetricError::Unreachable { source_kind: "prometheus", detail: format!("{url}: {e}") })?;
        let status = reply.status();
        let garbage = |detail: String| MetricError::Garbage { source_kind: "prometheus", query: query.into(), detail };
        let body = match crate::http::body_bounded(reply, self.max_answer).await {
            Ok(body) => body,
            Err(BodyError::TooLarge(_)) => {
                return Err(garbage(format!("HTTP {status}: the answer is larger than {} bytes (max_answer_bytes); narrow or aggregate the query", self.max_answer)));
            }
            Err(BodyError::Read(e)) => return Err(MetricError::Unreachable { source_kind: "prometheus", detail: format!("{url}: {e}") }),
        };
        let parsed: Response = serde_json::from_slice(&body)
            .map_err(|e| garbage(format!("HTTP {status}, not a Prometheus API reply: {e}")))?;
        if parsed.status != "success" {
            return Err(garbage(parsed.error.unwrap_or_else(|| format!("status {}", parsed.status))));
        }
        parsed.data.ok_or_else(|| garbage("no data".into()))
    }
}

fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn point(t: f64, v: &str) -> Option<Sample> {
    let value: f64 = v.parse().ok()?;
    value.is_finite().then(|| Sample { at: (t * 1000.0).round() as i64, value })
}

fn several(query: &str, n: usize) -> MetricError {
    MetricError::Garbage {
        source_kind: "prometheus",
        query: query.into(),
        detail: format!("matched {n} series; a pool needs one, so aggregate it, e.g. `sum({query})`"),
    }
}

#[async_trait]
impl MetricSource for PrometheusSource {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    fn status(&self) -> SourceStatus {
        self.status.lock().unwrap().clone()
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        let params = [
            ("query", query.to_owned()),
            ("start", seconds(window.start())),
            ("end", seconds(window.end)),
            ("step", format!("{:.3}", window.step_ms.max(1) as f64 / 1000.0)),
        ];
        match self.get("/api/v1/query_range", &params, query).await? {
            Data::Matrix(m) => match m.as_slice() {
                [] => Ok(Vec::new()),
                [one] => Ok(tidy(one.values.iter().filter_map(|(t, v)| point(*t, v)).collect(), window)),
                many => Err(several(query, many.len())),
            },
            _ => Err(MetricError::Garbage { source_kind: "prometheus", query: query.into(), detail: "expected a matrix".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_api_shapes() {
        let r: Response = serde_json::from_str(r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1.5,"2"],[2.5,"NaN"]]}]}}"#).unwrap();
        let Some(Data::Matrix(m)) = r.data else { panic!() };
        let pts: Vec<Sample> = m[0].values.iter().filter_map(|(t, v)| point(*t, v)).collect();
        assert_eq!(pts, vec![Sample { at: 1500, value: 2.0 }]);
        let r: Response = serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#).unwrap();
        assert_eq!(r.error.as_deref(), Some("parse error"));
    }

    #[test]
    fn takes_http_and_https_and_refuses_the_rest() {
        let err = PrometheusSource::new("localhost:9090", Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("must start with http:// or https://"), "{err}");
        assert!(PrometheusSource::new("https://prom.example", Duration::from_secs(1)).is_ok());
        let both = PrometheusAccess { bearer_token: Some("t".into()), basic_auth: Some(("u".into(), "p".into())), ..Default::default() };
        assert!(PrometheusSource::with_access("https://prom.example", Duration::from_secs(1), both).unwrap_err().contains("not both"));
        let bad = PrometheusAccess { headers: vec![("bad header".into(), "x".into())], ..Default::default() };
        assert!(PrometheusSource::with_access("http://p", Duration::from_secs(1), bad).unwrap_err().contains("`bad header` is not a valid header name"));
        let not_pem = PrometheusAccess { ca_pem: Some(b"hello".to_vec()), ..Default::default() };
        assert!(PrometheusSource::with_access("https://p", Duration::from_secs(1), not_pem).is_err());
    }

    /// A server that answers a query with a matrix that never ends: the
    /// read stops at the cap, and the error says which cap.
    #[tokio::test]
    async fn an_answer_past_the_cap_is_an_error_not_a_read_without_end() {
        let (base, sent) = crate::http::endless_server(&[], r#"{"status":"success","data":{"resultType":"matrix","result":["#, r#"{"metric":{"pod":"p"},"values":[[1,"1"]]},"#).await;
        let source = PrometheusSource::new(&base, Duration::from_secs(30)).unwrap().with_max_answer_bytes(1 << 20);
        let window = Window { end: 10_000, length_ms: 10_000, step_ms: 1000 };
        let err = source.query("up", window).await.unwrap_err().to_string();
        assert!(err.contains("the answer is larger than 1048576 bytes (max_answer_bytes)"), "{err}");
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < 64 << 20, "the client read on past its cap");
        assert!(matches!(source.status(), SourceStatus::Up(_)), "it answered; the query was too wide");
    }
}
