//! PromQL over Prometheus' HTTP API (`/api/v1/query_range`).
//!
//! A query must come back as one series: a pool decides on one number per
//! metric, so a query that matches several series is an error that says how
//! to aggregate it, rather than a silent pick of one.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::sources::{MetricError, MetricSource, Window, tidy};
use crate::Sample;

#[derive(Debug)]
pub struct PrometheusSource {
    base: String,
    client: reqwest::Client,
}

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
        let base = base.trim_end_matches('/').to_owned();
        // The HTTP client is built without TLS to keep the binary lean.
        if !base.starts_with("http://") {
            return Err(format!("prometheus url `{base}` must start with http:// (https is not supported by this build yet)"));
        }
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
        Ok(Self { base, client })
    }

    async fn get(&self, path: &str, params: &[(&str, String)], query: &str) -> Result<Data, MetricError> {
        let url = format!("{}{}", self.base, path);
        let reply = self
            .client
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(|e| MetricError::Unreachable { source_kind: "prometheus", detail: format!("{url}: {e}") })?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(|e| MetricError::Unreachable { source_kind: "prometheus", detail: e.to_string() })?;
        let garbage = |detail: String| MetricError::Garbage { source_kind: "prometheus", query: query.into(), detail };
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
    fn refuses_non_http_urls() {
        assert!(PrometheusSource::new("localhost:9090", Duration::from_secs(1)).is_err());
        assert!(PrometheusSource::new("https://prom.example", Duration::from_secs(1)).unwrap_err().contains("https is not supported"));
    }
}
