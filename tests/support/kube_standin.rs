//! A stand-in Kubernetes API server for the endpoints scalewise uses.
//!
//! No real API server can run on the test machine, so this one speaks the
//! real wire format for exactly what the `kubernetes` provider and the
//! leader election call: a Deployment and its `autoscaling/v1` Scale
//! (get, merge-patch), the pods its selector matches, `metrics.k8s.io`
//! pod metrics, a `coordination.k8s.io/v1` Lease (get, create, replace
//! with `resourceVersion` conflicts answered `409` and a `Status` body), and
//! `events.k8s.io/v1` Events (create, checked as the API server checks a new
//! event and answered `422 Invalid` where it would be; list; get).
//! Anything else is a `404` Status and is recorded, so a test notices a
//! request it did not expect.
//!
//! Endpoints, under the one namespace it serves:
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/apis/apps/v1/namespaces/{ns}/deployments/{name}` | the workload (or a custom resource's path) |
//! | GET, PATCH | `…/deployments/{name}/scale` | `autoscaling/v1` Scale, merge patch |
//! | GET | `/api/v1/namespaces/{ns}/pods?labelSelector=app=web` | one pod per replica |
//! | GET | `/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods` | pod metrics |
//! | GET, POST, PUT | `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]` | the Lease |
//! | GET, POST | `/apis/events.k8s.io/v1/namespaces/{ns}/events[/{name}]` | Events (a switch makes POST fail or answer late) |
//!
//! It listens on one loopback port per replica: every request is recorded
//! with the replica whose port it came in on, which is how a test knows who
//! patched what without trusting the client to say so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request, as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub replica: String,
    /// Kubernetes verb: get, list, create, update, patch.
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Resource, with its subresource: `deployments/scale`.
    pub resource: String,
    pub status: u16,
}

/// A patch of the scale that was applied.
#[derive(Debug, Clone)]
pub struct Patched {
    pub at: Instant,
    pub replica: String,
    pub replicas: i64,
    /// Who held the lease when the patch arrived.
    pub lease_holder: Option<String>,
}

pub struct Cluster {
    pub namespace: String,
    pub deployment: String,
    /// The workload's API group and plural: `apps`/`deployments`, or a
    /// custom resource's.
    pub workload: (String, String),
    pub replicas: i64,
    pub annotations: BTreeMap<String, String>,
    pub deleted: bool,
    rv: u64,
    pub lease: Option<Value>,
    pub requests: Vec<Seen>,
    pub patches: Vec<Patched>,
    /// Lease holders in the order they first held it, with when.
    pub holders: Vec<(Instant, String)>,
    started: Instant,
    /// Pods become ready this long after they are created.
    pub ready_after: Duration,
    pod_created: Vec<Instant>,
    /// `events.k8s.io/v1` Events created, as stored (with uid and
    /// resourceVersion), oldest first.
    pub events: Vec<Value>,
    /// Answer every event create with this status (a `Status` body), as an
    /// API server refusing events would (503, 403 without RBAC).
    pub events_fail: Option<u16>,
    /// Answer every event create this late (before failing or storing it).
    pub events_delay: Duration,
}

#[derive(Clone)]
struct Shared {
    cluster: Arc<Mutex<Cluster>>,
    replica: String,
}

pub struct KubeStandIn {
    pub cluster: Arc<Mutex<Cluster>>,
    /// Base URL per replica name.
    pub urls: BTreeMap<String, String>,
    _runtime: tokio::runtime::Runtime,
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

impl KubeStandIn {
    /// Serve the Deployment `default/web` at `replicas`, one port per name in `replicas_of_host`.
    pub fn start(hosts: &[&str], replicas: i64) -> KubeStandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let cluster = Arc::new(Mutex::new(Cluster {
            namespace: "default".into(),
            deployment: "web".into(),
            workload: ("apps".into(), "deployments".into()),
            replicas,
            annotations: BTreeMap::new(),
            deleted: false,
            rv: 100,
            lease: None,
            requests: Vec::new(),
            patches: Vec::new(),
            holders: Vec::new(),
            started: Instant::now(),
            ready_after: Duration::from_millis(300),
            pod_created: vec![Instant::now(); replicas as usize],
            events: Vec::new(),
            events_fail: None,
            events_delay: Duration::ZERO,
        }));
        let mut urls = BTreeMap::new();
        for h in hosts {
            let shared = Shared { cluster: cluster.clone(), replica: h.to_string() };
            let app = axum::Router::new().fallback(handle).with_state(shared);
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            urls.insert(h.to_string(), format!("http://{}", listener.local_addr().unwrap()));
            runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        KubeStandIn { cluster, urls, _runtime: runtime }
    }

    pub fn url(&self, host: &str) -> &str {
        &self.urls[host]
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Cluster) -> T) -> T {
        f(&mut self.cluster.lock().unwrap())
    }
}

impl Cluster {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn stamp(&self) -> String {
        "2026-11-23T10:00:00Z".into()
    }

    fn scale(&self) -> Value {
        json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": self.deployment, "namespace": self.namespace, "uid": "5c1e0b2a-0000-4000-8000-000000000001",
                         "resourceVersion": self.rv.to_string(), "creationTimestamp": self.stamp()},
            "spec": {"replicas": self.replicas},
            "status": {"replicas": self.replicas, "selector": "app=web"}
        })
    }

    fn deployment(&self) -> Value {
        let (kind, api_version) = if self.workload.0 == "apps" { ("Deployment".into(), "apps/v1".into()) } else { ("Worker".to_owned(), format!("{}/v1", self.workload.0)) };
        json!({
            "kind": kind, "apiVersion": api_version,
            "metadata": {"name": self.deployment, "namespace": self.namespace, "uid": "5c1e0b2a-0000-4000-8000-000000000001",
                         "resourceVersion": self.rv.to_string(), "generation": 3, "creationTimestamp": self.stamp(),
                         "annotations": self.annotations},
            "spec": {"replicas": self.replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"replicas": self.replicas, "readyReplicas": self.replicas}
        })
    }

    /// The Deployment controller, in one line: as many pods as replicas.
    fn reconcile_pods(&mut self) {
        let want = self.replicas.max(0) as usize;
        self.pod_created.truncate(want);
        while self.pod_created.len() < want {
            self.pod_created.push(Instant::now());
        }
    }

    fn pods(&mut self) -> Value {
        self.reconcile_pods();
        let items: Vec<Value> = self
            .pod_created
            .iter()
            .enumerate()
            .map(|(i, created)| {
                let ready = created.elapsed() >= self.ready_after;
                json!({
                    "metadata": {"name": format!("web-{i}"), "namespace": self.namespace, "labels": {"app": "web"},
                                 "creationTimestamp": self.stamp(), "uid": format!("pod-{i}")},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                    "status": {"phase": "Running",
                               "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                               "containerStatuses": [{"name": "web", "image": "nginx:1.27", "imageID": "", "ready": ready, "restartCount": 0}]}
                })
            })
            .collect();
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": self.rv.to_string()}, "items": items})
    }

    fn pod_metrics(&mut self) -> Value {
        self.reconcile_pods();
        let items: Vec<Value> = (0..self.pod_created.len())
            .map(|i| json!({"metadata": {"name": format!("web-{i}"), "namespace": self.namespace},
                            "timestamp": self.stamp(), "window": "15s",
                            "containers": [{"name": "web", "usage": {"cpu": "250m", "memory": "64Mi"}}]}))
            .collect();
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items})
    }

    fn lease_holder(&self) -> Option<String> {
        self.lease.as_ref().and_then(|l| l["spec"]["holderIdentity"].as_str()).filter(|h| !h.is_empty()).map(str::to_owned)
    }

    fn store_lease(&mut self, mut lease: Value) -> Value {
        lease["metadata"]["resourceVersion"] = json!(self.next_rv());
        lease["metadata"]["namespace"] = json!(self.namespace);
        lease["kind"] = json!("Lease");
        lease["apiVersion"] = json!("coordination.k8s.io/v1");
        let holder = lease["spec"]["holderIdentity"].as_str().filter(|h| !h.is_empty()).map(str::to_owned);
        if let Some(h) = holder
            && self.holders.last().map(|(_, l)| l) != Some(&h)
        {
            self.holders.push((Instant::now(), h));
        }
        self.lease = Some(lease.clone());
        lease
    }

    /// Replace the lease as another party would (a stolen lease).
    pub fn steal_lease(&mut self, holder: &str) {
        let mut lease = self.lease.clone().expect("a lease to steal");
        lease["spec"]["holderIdentity"] = json!(holder);
        lease["spec"]["leaseDurationSeconds"] = json!(3600);
        self.store_lease(lease);
    }

    pub fn since_start(&self, at: Instant) -> Duration {
        at.duration_since(self.started)
    }

    /// Events with `reason` (`ScaledUp`, `ScaleRefused`, ...).
    pub fn events_with(&self, reason: &str) -> Vec<Value> {
        self.events.iter().filter(|e| e["reason"] == reason).cloned().collect()
    }

    /// What a new `events.k8s.io/v1` Event must carry, as the API server's
    /// validation has it (`ValidateEventCreate`): each problem as the
    /// server words it.
    fn event_problems(&self, e: &Value, ns: &str) -> Vec<String> {
        let mut out = Vec::new();
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let mut required = |path: &str, v: &Value, limit: usize| match text(v) {
            None => out.push(format!("{path}: Required value")),
            Some(s) if s.len() > limit => out.push(format!("{path}: Too long: may not be more than {limit} bytes")),
            Some(_) => {}
        };
        required("reportingController", &e["reportingController"], 253);
        required("reportingInstance", &e["reportingInstance"], 128);
        required("action", &e["action"], 128);
        required("reason", &e["reason"], 128);
        required("eventTime", &e["eventTime"], 64);
        required("regarding.kind", &e["regarding"]["kind"], 253);
        required("regarding.name", &e["regarding"]["name"], 253);
        if text(&e["metadata"]["name"]).is_none() && text(&e["metadata"]["generateName"]).is_none() {
            out.push("metadata.name: Required value: name or generateName is required".into());
        }
        if let Some(t) = text(&e["eventTime"])
            && !is_micro_time(&t)
        {
            out.push(format!("eventTime: Invalid value: \"{t}\": not an RFC 3339 time with microseconds"));
        }
        if let Some(n) = e["note"].as_str()
            && n.len() > 1024
        {
            out.push("note: Too long: may not be more than 1024 bytes".into());
        }
        match e["type"].as_str() {
            Some("Normal" | "Warning") => {}
            other => out.push(format!("type: Unsupported value: {other:?}: supported values: \"Normal\", \"Warning\"")),
        }
        if let Some(rn) = e["regarding"]["namespace"].as_str()
            && rn != ns
        {
            out.push(format!("regarding.namespace: Invalid value: \"{rn}\": does not match event.namespace"));
        }
        out
    }

    fn create_event(&mut self, body: &[u8], ns: &str) -> Response {
        if let Some(code) = self.events_fail {
            let reason = match code {
                403 => "Forbidden",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                _ => "InternalError",
            };
            return status(code, reason, "the stand-in refuses events (events_fail)".into());
        }
        let Ok(mut e) = serde_json::from_slice::<Value>(body) else { return status(400, "BadRequest", "not JSON".into()) };
        if e["apiVersion"] != "events.k8s.io/v1" || e["kind"] != "Event" {
            return status(400, "BadRequest", format!("expected events.k8s.io/v1 Event, got {} {}", e["apiVersion"], e["kind"]));
        }
        if let Some(other) = e["metadata"]["namespace"].as_str().filter(|n| *n != ns) {
            return status(400, "BadRequest", format!("the namespace of the provided object ({other}) does not match the namespace sent on the request ({ns})"));
        }
        let problems = self.event_problems(&e, ns);
        let name = e["metadata"]["name"].as_str().map(str::to_owned);
        if !problems.is_empty() {
            let shown = name.as_deref().unwrap_or("");
            return status(422, "Invalid", format!("Event.events.k8s.io \"{shown}\" is invalid: [{}]", problems.join(", ")));
        }
        let name = name.unwrap_or_else(|| format!("{}{:x}", e["metadata"]["generateName"].as_str().unwrap_or(""), self.events.len() + 1));
        if self.events.iter().any(|x| x["metadata"]["name"] == name.as_str()) {
            return status(409, "AlreadyExists", format!("events.events.k8s.io \"{name}\" already exists"));
        }
        let rv = self.next_rv();
        let meta = &mut e["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(format!("event-{}", self.events.len() + 1));
        meta["resourceVersion"] = json!(rv);
        meta["creationTimestamp"] = json!(self.stamp());
        self.events.push(e.clone());
        (StatusCode::CREATED, axum::Json(e)).into_response()
    }
}

/// `2026-11-23T10:00:00.123456Z` (MicroTime's form: six fractional digits,
/// UTC), or with a numeric offset.
fn is_micro_time(t: &str) -> bool {
    let b = t.as_bytes();
    if !t.is_ascii() || b.len() < 27 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let zone = &t[26..];
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && (zone == "Z" || (zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-'))))
}

async fn handle(State(s): State<Shared>, method: Method, uri: Uri, Query(q): Query<BTreeMap<String, String>>, body: Bytes) -> Response {
    let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    if method == Method::POST && path.first() == Some(&"apis") && path.get(1) == Some(&"events.k8s.io") {
        // An API server slow to take events: the wait must not hold the
        // cluster, or every other request would wait with it.
        let delay = s.cluster.lock().unwrap().events_delay;
        tokio::time::sleep(delay).await;
    }
    let mut c = s.cluster.lock().unwrap();
    let (group, rest) = match path.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => ("?", &path[..]),
    };
    let (resource, name) = match rest {
        ["namespaces", _ns, res] => (res.to_string(), None),
        ["namespaces", _ns, res, name] => (res.to_string(), Some(name.to_string())),
        ["namespaces", _ns, res, name, sub] => (format!("{res}/{sub}"), Some(name.to_string())),
        _ => ("?".into(), None),
    };
    let ns = match rest {
        ["namespaces", ns, ..] => ns.to_string(),
        _ => String::new(),
    };
    let verb = match (&method, &name) {
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "?",
    };
    let response = respond(&mut c, &s.replica, group, (&ns, &resource, name.as_deref()), verb, &q, &body);
    c.requests.push(Seen { at: Instant::now(), replica: s.replica.clone(), verb: verb.into(), group: group.into(), resource, status: response.status().as_u16() });
    response
}

/// Answer one request: `at` is the namespace, resource and name from the path.
fn respond(c: &mut Cluster, replica: &str, group: &str, at: (&str, &str, Option<&str>), verb: &str, q: &BTreeMap<String, String>, body: &[u8]) -> Response {
    let (ns, resource, name) = at;
    let workload_gone = |c: &Cluster| status(404, "NotFound", format!("{}.{} \"{}\" not found", c.workload.1, c.workload.0, c.deployment));
    let (wg, wr) = c.workload.clone();
    let scale = format!("{wr}/scale");
    match (group, resource, verb) {
        (g, r, "get") if g == wg && r == wr && name == Some(c.deployment.as_str()) => {
            if c.deleted { workload_gone(c) } else { ok(c.deployment()) }
        }
        (g, r, "get") if g == wg && r == scale && !c.deleted => ok(c.scale()),
        (g, r, "patch") if g == wg && r == scale && !c.deleted => {
            let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the patch is not JSON".into());
            };
            let Some(n) = patch["spec"]["replicas"].as_i64() else {
                return status(422, "Invalid", "spec.replicas: Required value".into());
            };
            let holder = c.lease_holder();
            c.replicas = n;
            c.next_rv();
            c.patches.push(Patched { at: Instant::now(), replica: replica.into(), replicas: n, lease_holder: holder });
            ok(c.scale())
        }
        (g, r, _) if g == wg && r == scale => workload_gone(c),
        ("", "pods", "list") => {
            if q.get("labelSelector").map(String::as_str) != Some("app=web") {
                return status(400, "BadRequest", format!("expected labelSelector=app=web, got {:?}", q.get("labelSelector")));
            }
            ok(c.pods())
        }
        ("metrics.k8s.io", "pods", "list") => ok(c.pod_metrics()),
        ("coordination.k8s.io", "leases", "get") => match &c.lease {
            Some(l) => ok(l.clone()),
            None => status(404, "NotFound", format!("leases.coordination.k8s.io \"{}\" not found", name.unwrap_or(""))),
        },
        ("coordination.k8s.io", "leases", "create") => {
            if c.lease.is_some() {
                return status(409, "AlreadyExists", "leases.coordination.k8s.io already exists".into());
            }
            let Ok(lease) = serde_json::from_slice::<Value>(body) else { return status(400, "BadRequest", "not JSON".into()) };
            let stored = c.store_lease(lease);
            (StatusCode::CREATED, axum::Json(stored)).into_response()
        }
        ("coordination.k8s.io", "leases", "update") => {
            let Ok(lease) = serde_json::from_slice::<Value>(body) else { return status(400, "BadRequest", "not JSON".into()) };
            let current = c.lease.as_ref().map(|l| l["metadata"]["resourceVersion"].clone());
            if current.as_ref() != Some(&lease["metadata"]["resourceVersion"]) {
                return status(
                    409,
                    "Conflict",
                    format!("Operation cannot be fulfilled on leases.coordination.k8s.io \"{}\": the object has been modified; please apply your changes to the latest version and try again", name.unwrap_or("")),
                );
            }
            ok(c.store_lease(lease))
        }
        ("events.k8s.io", "events", "create") => c.create_event(body, ns),
        ("events.k8s.io", "events", "list") => {
            let items: Vec<Value> = c.events.iter().filter(|e| e["metadata"]["namespace"] == ns).cloned().collect();
            ok(json!({"kind": "EventList", "apiVersion": "events.k8s.io/v1", "metadata": {"resourceVersion": c.rv.to_string()}, "items": items}))
        }
        ("events.k8s.io", "events", "get") => match c.events.iter().find(|e| e["metadata"]["name"].as_str() == name && e["metadata"]["namespace"] == ns) {
            Some(e) => ok(e.clone()),
            None => status(404, "NotFound", format!("events.events.k8s.io \"{}\" not found", name.unwrap_or(""))),
        },
        _ => status(404, "NotFound", format!("the server could not find the requested resource ({verb} {group}/{resource})")),
    }
}
