//! A stand-in for the Compute Engine API and the metadata server: no
//! Compute Engine emulator exists, so the `gce` provider (Google's own
//! client) is tested against this server, which speaks the REST JSON of
//! exactly the endpoints the provider uses, shaped after Google's reference
//! (cloud.google.com/compute/docs/reference/rest/v1):
//! - `POST {igm}/resize?size=N&requestId=...` (instanceGroupManagers.resize,
//!   regionInstanceGroupManagers.resize): a `compute#operation`; a repeated
//!   request id answers the same operation and changes nothing;
//! - `POST {igm}/deleteInstances` with `{"instances": [URL...],
//!   "skipInstancesOnValidationError": true}`;
//! - `POST {igm}/listManagedInstances?maxResults=N&pageToken=T`: the
//!   group's `managedInstances` (`currentAction`, `instanceStatus`,
//!   `lastAttempt.errors`), paged by `nextPageToken`;
//! - `GET {zones|regions}/{location}/operations/{name}` (zoneOperations.get,
//!   regionOperations.get): `RUNNING` until the operation's time is up,
//!   then `DONE`;
//! - the metadata server's `GET /computeMetadata/v1/instance/service-accounts/default/token`
//!   (needs `Metadata-Flavor: Google`; cloud.google.com/compute/docs/access/authenticate-workloads).
//!
//! `{igm}` is `/compute/v1/projects/{p}/zones/{z}/instanceGroupManagers/{name}`
//! or its `regions/{r}` form. Errors are Google's `{"error": {"code",
//! "message", "errors": [{"domain", "reason", "message"}], "status"}}`: 404
//! `notFound` for a deleted group, 429 `rateLimitExceeded`, 401
//! `UNAUTHENTICATED` for a token the metadata server did not issue. Over the
//! quota, new instances stay `CREATING` with `QUOTA_EXCEEDED` in their last
//! attempt, as Compute Engine's groups do. Every request is logged by
//! endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const PROJECT: &str = "shop-prod";
pub const GROUP: &str = "web";

#[derive(Debug, Clone)]
pub struct Vm {
    pub name: String,
    pub created: Instant,
    pub deleting_since: Option<Instant>,
    /// Cannot be created (over the quota).
    pub stuck: bool,
}

pub struct Gce {
    /// `zones/europe-west1-b` or `regions/europe-west1`.
    pub location: String,
    pub target_size: u32,
    pub vms: Vec<Vm>,
    pub created_total: u32,
    next: u32,
    pub quota: Option<u32>,
    pub deleted: bool,
    pub throttle_next: u32,
    /// The metadata server hands out tokens Compute does not accept.
    pub bad_tokens: bool,
    pub op_time: Duration,
    pub ready_after: Duration,
    ops: BTreeMap<String, Instant>,
    request_ids: BTreeMap<String, String>,
    pub requests: Vec<(String, u16)>,
}

pub struct GceStandIn {
    pub state: Arc<Mutex<Gce>>,
    pub url: String,
    /// `host:port`, for GCE_METADATA_HOST.
    pub host: String,
    _runtime: tokio::runtime::Runtime,
}

impl GceStandIn {
    /// A group in `location` (`zones/...` or `regions/...`), empty.
    pub fn start(location: &str) -> GceStandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let state = Arc::new(Mutex::new(Gce {
            location: location.into(),
            target_size: 0,
            vms: Vec::new(),
            created_total: 0,
            next: 0,
            quota: None,
            deleted: false,
            throttle_next: 0,
            bad_tokens: false,
            op_time: Duration::from_millis(500),
            ready_after: Duration::from_millis(300),
            ops: BTreeMap::new(),
            request_ids: BTreeMap::new(),
            requests: Vec::new(),
        }));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        GceStandIn { state, url: format!("http://{host}"), host, _runtime: runtime }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Gce) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Instances not being deleted.
    pub fn live(&self) -> usize {
        self.with(|g| {
            g.tick();
            g.vms.iter().filter(|v| v.deleting_since.is_none()).count()
        })
    }

    pub fn count(&self, endpoint: &str) -> usize {
        self.with(|g| g.requests.iter().filter(|(e, _)| e == endpoint).count())
    }
}

fn google_error(code: u16, status: &str, reason: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}], "status": status}});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

impl Gce {
    fn tick(&mut self) {
        let op_time = self.op_time;
        self.vms.retain(|v| v.deleting_since.is_none_or(|t| t.elapsed() < op_time));
    }

    fn igm(&self) -> String {
        format!("/compute/v1/projects/{PROJECT}/{}/instanceGroupManagers/{GROUP}", self.location)
    }

    /// The zone an instance lives in (the first zone of a region).
    fn zone(&self) -> String {
        match self.location.strip_prefix("regions/") {
            Some(r) => format!("{r}-b"),
            None => self.location.trim_start_matches("zones/").to_owned(),
        }
    }

    fn instance_url(&self, name: &str) -> String {
        format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{}/instances/{name}", self.zone())
    }

    fn managed(&self, v: &Vm) -> Value {
        let (action, status) = match v.deleting_since {
            Some(_) => ("DELETING", Some("RUNNING")),
            None if v.stuck => ("CREATING", None),
            None if v.created.elapsed() < self.ready_after => ("CREATING", Some("PROVISIONING")),
            None => ("NONE", Some("RUNNING")),
        };
        let mut m = json!({"instance": self.instance_url(&v.name), "id": format!("{}", 4_000_000_000u64 + v.name.len() as u64), "name": v.name,
                           "currentAction": action, "version": {"instanceTemplate": format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/instanceTemplates/web-v3")}});
        if let Some(s) = status {
            m["instanceStatus"] = json!(s);
        }
        if v.stuck {
            m["lastAttempt"] = json!({"errors": {"errors": [{"code": "QUOTA_EXCEEDED", "message": format!("Quota 'CPUS' exceeded.  Limit: {}.0 in region europe-west1.", self.quota.unwrap_or(0) * 2)}]}});
        }
        m
    }

    fn operation(&self, base: &str, name: &str, kind: &str) -> Value {
        let done = self.ops.get(name).is_some_and(|t| Instant::now() >= *t);
        let (scope_key, scope) = match self.location.split_once('/') {
            Some(("zones", z)) => ("zone", format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{z}")),
            Some((_, r)) => ("region", format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/{r}")),
            None => ("zone", String::new()),
        };
        let mut op = json!({
            "kind": "compute#operation", "id": "7046302574851430110", "name": name, "operationType": kind,
            "targetLink": format!("https://www.googleapis.com/compute/v1{}", self.igm().trim_start_matches("/compute/v1")),
            "targetId": "2339011312497330530", "status": if done { "DONE" } else { "RUNNING" }, "user": "scalewise@shop-prod.iam.gserviceaccount.com",
            "progress": if done { 100 } else { 0 }, "insertTime": "2026-12-01T02:00:00.000-08:00", "startTime": "2026-12-01T02:00:00.100-08:00",
            "selfLink": format!("{base}/compute/v1/projects/{PROJECT}/{}/operations/{name}", self.location)
        });
        op[scope_key] = json!(scope);
        if done {
            op["endTime"] = json!("2026-12-01T02:00:01.000-08:00");
        }
        op
    }

    fn start_op(&mut self, request_id: Option<&str>) -> (String, bool) {
        if let Some(id) = request_id
            && let Some(name) = self.request_ids.get(id)
        {
            return (name.clone(), true);
        }
        let name = format!("operation-1796119200000-{:04}", self.ops.len() + 1);
        self.ops.insert(name.clone(), Instant::now() + self.op_time);
        if let Some(id) = request_id {
            self.request_ids.insert(id.to_owned(), name.clone());
        }
        (name, false)
    }
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query().unwrap_or("").split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.replace("%2F", "/"))).collect()
}

async fn handle(State(state): State<Arc<Mutex<Gce>>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut g = state.lock().unwrap();
    g.tick();
    let base = format!("http://{}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1"));
    let (endpoint, response) = route(&mut g, &base, &method, uri.path(), &query(&uri), &headers, &body);
    g.requests.push((endpoint, response.status().as_u16()));
    response
}

fn route(g: &mut Gce, base: &str, method: &Method, path: &str, q: &BTreeMap<String, String>, headers: &HeaderMap, body: &[u8]) -> (String, Response) {
    if path.starts_with("/computeMetadata/") {
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return (format!("mds {path}"), (StatusCode::FORBIDDEN, "Missing required header \"Metadata-Flavor\"").into_response());
        }
        if path == "/computeMetadata/v1/instance/service-accounts/default/token" {
            let token = if g.bad_tokens { "revoked" } else { "ya29.standin" };
            return ("mds token".into(), axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response());
        }
        return (format!("mds {path}"), (StatusCode::NOT_FOUND, "not found").into_response());
    }
    let igm = g.igm();
    let ops_prefix = format!("/compute/v1/projects/{PROJECT}/{}/operations/", g.location);
    let endpoint = match (method.as_str(), path.strip_prefix(&igm)) {
        ("POST", Some("/resize")) => "POST {igm}/resize".to_owned(),
        ("POST", Some("/deleteInstances")) => "POST {igm}/deleteInstances".to_owned(),
        ("POST", Some("/listManagedInstances")) => "POST {igm}/listManagedInstances".to_owned(),
        ("GET", None) if path.starts_with(&ops_prefix) => "GET {location}/operations/{operation}".to_owned(),
        _ => format!("unknown {method} {path}"),
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != "Bearer ya29.standin" {
        let m = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
        return (endpoint, google_error(401, "UNAUTHENTICATED", "authError", m));
    }
    if g.throttle_next > 0 {
        g.throttle_next -= 1;
        let m = "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'compute.googleapis.com'.";
        return (endpoint, google_error(429, "RESOURCE_EXHAUSTED", "rateLimitExceeded", m));
    }
    if let Some(name) = path.strip_prefix(&ops_prefix) {
        return match g.ops.contains_key(name) {
            true => (endpoint, axum::Json(g.operation(base, name, "compute.instanceGroupManagers.resize")).into_response()),
            false => (endpoint, google_error(404, "NOT_FOUND", "notFound", &format!("The resource 'projects/{PROJECT}/{}/operations/{name}' was not found", g.location))),
        };
    }
    if g.deleted {
        let m = format!("The resource 'projects/{PROJECT}/{}/instanceGroupManagers/{GROUP}' was not found", g.location);
        return (endpoint, google_error(404, "NOT_FOUND", "notFound", &m));
    }
    let response = match endpoint.as_str() {
        "POST {igm}/resize" => {
            let Some(size) = q.get("size").and_then(|s| s.parse::<u32>().ok()) else {
                return (endpoint, google_error(400, "INVALID_ARGUMENT", "required", "Required field 'size' not specified"));
            };
            let (name, repeated) = g.start_op(q.get("requestId").map(String::as_str));
            if !repeated {
                let live: Vec<usize> = (0..g.vms.len()).filter(|i| g.vms[*i].deleting_since.is_none()).collect();
                let now = Instant::now();
                for _ in live.len() as u32..size {
                    g.next += 1;
                    g.created_total += 1;
                    let running = g.vms.iter().filter(|v| v.deleting_since.is_none() && !v.stuck).count() as u32;
                    let stuck = g.quota.is_some_and(|q| running >= q);
                    let vm = Vm { name: format!("{GROUP}-{:04x}", 0xa000 + g.next), created: now, deleting_since: None, stuck };
                    g.vms.push(vm);
                }
                if size < live.len() as u32 {
                    for i in live.into_iter().skip(size as usize) {
                        g.vms[i].deleting_since = Some(now);
                    }
                }
                g.target_size = size;
            }
            axum::Json(g.operation(base, &name, "compute.instanceGroupManagers.resize")).into_response()
        }
        "POST {igm}/deleteInstances" => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(urls) = v["instances"].as_array() else {
                return (endpoint, google_error(400, "INVALID_ARGUMENT", "required", "Required field 'instances' not specified"));
            };
            let (name, repeated) = g.start_op(q.get("requestId").map(String::as_str));
            if !repeated {
                let now = Instant::now();
                for url in urls.iter().filter_map(|u| u.as_str()) {
                    let n = url.rsplit('/').next().unwrap_or("").to_owned();
                    if let Some(vm) = g.vms.iter_mut().find(|v| v.name == n && v.deleting_since.is_none()) {
                        vm.deleting_since = Some(now);
                        g.target_size -= 1;
                    }
                }
            }
            axum::Json(g.operation(base, &name, "compute.instanceGroupManagers.deleteInstances")).into_response()
        }
        "POST {igm}/listManagedInstances" => {
            let max: usize = q.get("maxResults").and_then(|m| m.parse().ok()).unwrap_or(500).clamp(1, 500);
            let skip: usize = q.get("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
            let all: Vec<Value> = g.vms.iter().map(|v| g.managed(v)).collect();
            let mut page = json!({"managedInstances": all.iter().skip(skip).take(max).cloned().collect::<Vec<_>>()});
            if skip + max < all.len() {
                page["nextPageToken"] = json!((skip + max).to_string());
            }
            axum::Json(page).into_response()
        }
        _ => google_error(404, "NOT_FOUND", "notFound", &format!("no route for {method} {path}")),
    };
    (endpoint, response)
}
