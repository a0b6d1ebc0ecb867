//! `GET /openapi.json`: the API described as an OpenAPI 3.1 document,
//! derived from the code.
//!
//! Why derived and not written by hand: a hand-kept description drifts from
//! the handlers the first time someone adds a field. Here each route's
//! `#[utoipa::path]` sits on its handler, each answer is a type deriving
//! `ToSchema` (the SDK's and the providers' types behind their `schema`
//! features), and this module only gathers them. Three things the derive
//! cannot know are added here:
//!
//! - the bearer scheme the mutating routes (and evaluate) name;
//! - the `<name>_utc` siblings [`with_utc_times`](super::with_utc_times)
//!   adds to JSON answers beside each time in milliseconds, described by
//!   the same rule ([`utc_sibling`](super::utc_sibling)) as optional,
//!   read-only strings;
//! - when served, this host's own ids: its pools' as the values a pool's
//!   `id` may take (a host's pools are fixed when it starts; any other id
//!   is a 404), its policies' (which come and go with the policy
//!   directory) and its pools' newest decision numbers as examples, so a
//!   reader, or a tool such as schemathesis, can try the routes on things
//!   that exist.
//!
//! The tests below check that every route of [`routes`](super::routes) is
//! described (a new route without a description fails them) and that the
//! document holds together: every `$ref` resolves, every path parameter is
//! declared, every operation has a success answer.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{AppState, Verbatim, utc_sibling};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scalewise",
        description = "The scalewise host's HTTP API: pools and their decisions, operator actions, pushed metrics, \
                       policy status and evaluation, health, Prometheus exposition and the dashboard. Read calls are \
                       open; calls that change anything, and `POST /policies/{id}/evaluate`, need \
                       `Authorization: Bearer <server.token>`. Every error is `{\"error\": \"...\"}`. Beside each \
                       time in milliseconds (`at`, `at_ms`, `since`, `until`, `period_start`, `period_end`, `*_at`, \
                       `*_at_ms`) a JSON answer carries the same time in RFC 3339 as `<name>_utc` \
                       (`loaded_at_ms` -> `loaded_at_utc`)."
    ),
    paths(
        super::dashboard::page,
        super::dashboard::script,
        document,
        super::healthz,
        super::readyz,
        super::exposition::metrics,
        super::pools::list,
        super::pools::get_one,
        super::pools::decisions,
        super::pools::decision,
        super::pools::scale,
        super::pools::pause,
        super::pools::resume,
        super::pools::approve,
        super::pools::promote,
        super::pools::rollback,
        super::pools::push_metrics,
        super::pools::demo_take,
        super::list_sources,
        super::leader,
        super::journal_stats,
        super::config::get_config,
        super::config::reload_config,
        super::policies::list,
        super::policies::reload,
        super::policies::get_one,
        super::policies::evaluate,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "pools", description = "Pools, their decisions, and operator actions"),
        (name = "policies", description = "Policy status, rescans, evaluation"),
        (name = "health", description = "Liveness, readiness, the leader lease"),
        (name = "sources", description = "Named metric sources"),
        (name = "journal", description = "The decision journal"),
        (name = "config", description = "The running config and its reloads"),
        (name = "metrics", description = "Prometheus exposition"),
        (name = "dashboard", description = "The web dashboard"),
        (name = "demo", description = "The demo's work queue"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The scheme the mutating routes name: `Authorization: Bearer <server.token>`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("`server.token` from the host's config")).build();
        openapi.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as JSON, built once: utoipa's, with the `_utc` siblings.
fn base() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        describe_utc(&mut doc);
        doc
    })
}

/// Beside each integer property that [`utc_sibling`] names, describe the
/// sibling the API adds: optional (only times after 1973 get one), a
/// string, read-only (it is never read from a request).
fn describe_utc(value: &mut Value) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(describe_utc);
        }
        return;
    };
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        let integer = |p: &Value| match &p["type"] {
            Value::String(t) => t == "integer",
            Value::Array(ts) => ts.iter().any(|t| t == "integer"),
            _ => false,
        };
        let siblings: Vec<(String, String)> = properties.iter().filter(|(_, p)| integer(p)).filter_map(|(k, _)| utc_sibling(k).map(|s| (k.clone(), s))).collect();
        for (key, sibling) in siblings {
            properties.entry(sibling).or_insert_with(|| {
                json!({
                    "type": "string",
                    "readOnly": true,
                    "description": format!("`{key}` in RFC 3339 (UTC), added to answers where `{key}` is a time after 1973"),
                })
            });
        }
    }
    for (key, v) in map.iter_mut() {
        // Examples are data, not schemas.
        if key != "example" && key != "examples" {
            describe_utc(v);
        }
    }
}

/// Describe the path parameters by this host: a pool's `id` is one of its
/// pools (an `enum`, with each as an example); a policy's `id` and a
/// decision's `seq` get its policies, and its pools' pending approvals and
/// newest decisions, as examples.
fn for_this_host(doc: &mut Value, pools: &[String], policies: &[String], seqs: &[u64]) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else { return };
    for (path, item) in paths.iter_mut() {
        let Value::Object(operations) = item else { continue };
        for operation in operations.values_mut() {
            let Some(Value::Array(parameters)) = operation.get_mut("parameters") else { continue };
            for p in parameters.iter_mut().filter(|p| p["in"] == "path") {
                let values: Vec<Value> = match p["name"].as_str() {
                    Some("id") if path.starts_with("/pools/") => pools.iter().map(|s| json!(s)).collect(),
                    Some("id") if path.starts_with("/policies/") => policies.iter().map(|s| json!(s)).collect(),
                    Some("seq") => seqs.iter().map(|s| json!(s)).collect(),
                    _ => continue,
                };
                if values.is_empty() {
                    continue;
                }
                if p["name"] == "id" && path.starts_with("/pools/") {
                    p["schema"]["enum"] = Value::Array(values.clone());
                }
                let examples: Map<String, Value> = values.into_iter().map(|v| (v.to_string().trim_matches('"').to_owned(), json!({ "value": v }))).collect();
                p["examples"] = Value::Object(examples);
            }
        }
    }
}

/// This document: the API's OpenAPI 3.1 description.
///
/// Its path parameters name this host's pools (the only ids a pool route
/// takes) and, as examples, its policies, pending approvals and newest
/// decisions.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value, content_type = "application/json")))]
pub(super) async fn document(State(state): State<AppState>) -> Response {
    let mut doc = base().clone();
    let pools: Vec<String> = state.live.load().pools.keys().cloned().collect();
    let policies: Vec<String> = state.registry.statuses().into_iter().map(|s| s.id).collect();
    // The changes awaiting approval first: those are the numbers worth trying.
    let live = state.live.load();
    let pending = live.pools.values().filter_map(|p| p.handle.snapshot().pending_approval.map(|a| a.seq));
    let newest = live.pools.values().flat_map(|p| p.handle.recent(None, 2)).map(|d| d.seq);
    let mut seqs: Vec<u64> = pending.chain(newest).collect();
    seqs.dedup();
    for_this_host(&mut doc, &pools, &policies, &seqs);
    let mut response = Json(doc).into_response();
    response.extensions_mut().insert(Verbatim);
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn doc() -> Value {
        base().clone()
    }

    /// What `pointer` (`#/components/schemas/X`) points at in `doc`.
    fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
        doc.pointer(pointer.strip_prefix('#')?)
    }

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_the_router_serves_is_described_and_nothing_else() {
        let doc = doc();
        let routes = super::super::routes();
        let missing: Vec<String> = routes.iter().filter(|r| doc["paths"][r.path].get(r.method).is_none()).map(|r| format!("{} {}", r.method.to_uppercase(), r.path)).collect();
        assert!(missing.is_empty(), "routes without a #[utoipa::path] in ApiDoc: {missing:?}");
        let served: BTreeSet<(String, String)> = routes.iter().map(|r| (r.path.to_owned(), r.method.to_owned())).collect();
        let described: BTreeSet<(String, String)> = doc["paths"].as_object().unwrap().iter().flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone()))).collect();
        assert_eq!(served, described, "the document describes a route the router does not serve");
    }

    #[test]
    fn the_document_holds_together() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        let dangling: Vec<&String> = all.iter().filter(|r| resolve(&doc, r).is_none()).collect();
        assert!(dangling.is_empty(), "$refs to nothing: {dangling:?}");
        let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let in_path: BTreeSet<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{} {path}", method.to_uppercase());
                assert!(ids.insert(op["operationId"].as_str().unwrap_or_default().to_owned()), "{at}: operationId not unique");
                let declared: BTreeSet<&str> = op["parameters"].as_array().map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect()).unwrap_or_default();
                assert_eq!(in_path, declared, "{at}: path parameters");
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.keys().any(|s| s.starts_with('2')), "{at}: no success answer");
                for (status, r) in responses {
                    assert!(status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)), "{at}: status {status}");
                    if status.starts_with('4') || status.starts_with('5') {
                        let body = &r["content"]["application/json"]["schema"];
                        assert!(body.get("$ref").is_some(), "{at}: {status} has no JSON error body");
                    }
                }
                let secured = op["security"].as_array().is_some_and(|s| s.iter().any(|req| req.as_object().is_some_and(|o| o.keys().all(|k| schemes.contains_key(k)) && !o.is_empty())));
                let mutating = method == "post" && path != "/demo/take";
                assert_eq!(secured, mutating, "{at}: the bearer scheme belongs on exactly the mutating routes and evaluate");
                if secured {
                    assert!(responses.contains_key("401") && responses.contains_key("403"), "{at}: 401 and 403");
                }
            }
        }
    }

    #[test]
    fn times_are_described_with_their_utc_siblings() {
        let doc = doc();
        let schema = |name: &str| doc["components"]["schemas"][name]["properties"].clone();
        assert_eq!(schema("DecisionRecord")["at_utc"]["type"], "string");
        assert_eq!(schema("VersionInfo")["loaded_at_utc"]["readOnly"], true);
        assert_eq!(schema("Hold")["until_utc"]["type"], "string");
        assert_eq!(schema("PoolSnapshot")["last_decision_at_utc"]["type"], "string");
        // Only integers are times: a sibling is never required.
        assert!(schema("ScanReport").as_object().unwrap().keys().all(|k| !k.ends_with("_utc")));
        for (name, s) in doc["components"]["schemas"].as_object().unwrap() {
            let required = s["required"].as_array().cloned().unwrap_or_default();
            assert!(required.iter().all(|r| !r.as_str().unwrap().ends_with("_utc")), "{name}");
        }
    }

    #[test]
    fn fields_left_out_when_empty_are_not_required_and_options_are_nullable() {
        let doc = doc();
        let required = |name: &str| -> Vec<String> {
            assert!(doc["components"]["schemas"][name].is_object(), "no schema {name}");
            doc["components"]["schemas"][name]["required"].as_array().map_or(vec![], |r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        };
        let record = required("DecisionRecord");
        for skipped in ["placement", "limited", "alerts", "action"] {
            assert!(!record.contains(&skipped.to_owned()), "DecisionRecord.{skipped} is required");
        }
        assert!(!required("ExpertVote").contains(&"gauges".to_owned()));
        for (schema, field) in [("DecisionRecord", "advisor"), ("PoolSnapshot", "advisor"), ("PendingApproval", "reason"), ("AdvisorRecord", "heard"), ("HeardRecord", "raw")] {
            assert!(!required(schema).contains(&field.to_owned()), "{schema}.{field} is required");
        }
        assert!(!required("StatusSnapshot").contains(&"clash".to_owned()));
        let hold = &doc["components"]["schemas"]["ScaleBody"]["properties"]["hold_secs"]["maximum"];
        assert_eq!(hold.as_u64(), Some(crate::decide::guardrails::MAX_HOLD_SECS), "ScaleBody.hold_secs");
        let last_error = &doc["components"]["schemas"]["PoolSnapshot"]["properties"]["last_error"];
        assert!(last_error["type"].as_array().is_some_and(|t| t.contains(&json!("null"))), "{last_error}");
    }

    #[test]
    fn served_parameters_name_this_hosts_pools_and_policies() {
        let mut doc = doc();
        for_this_host(&mut doc, &["web".into()], &["queue-depth".into()], &[7]);
        let param = |path: &str, method: &str, name: &str| doc["paths"][path][method]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
        assert_eq!(param("/pools/{id}", "get", "id")["examples"]["web"]["value"], "web");
        assert_eq!(param("/pools/{id}/scale", "post", "id")["schema"]["enum"], json!(["web"]));
        assert!(param("/policies/{id}", "get", "id")["schema"].get("enum").is_none(), "policies come and go");
        assert_eq!(param("/policies/{id}/evaluate", "post", "id")["examples"]["queue-depth"]["value"], "queue-depth");
        assert_eq!(param("/pools/{id}/decisions/{seq}", "get", "seq")["examples"]["7"]["value"], 7);
    }
}
