//! A stand-in Kubernetes API server for the endpoints scalewise uses.
//!
//! No real API server can run on the test machine, so this one speaks the
//! real wire format for exactly what the `kubernetes` provider and the
//! leader election call: a Deployment and its `autoscaling/v1` Scale
//! (get, merge-patch), the pods its selector matches, `metrics.k8s.io`
//! pod metrics, and a `coordination.k8s.io/v1` Lease (get, create, replace
//! with `resourceVersion` conflicts answered `409` and a `Status` body).
//! Anything else is a `404` Status and is recorded, so a test notices a
//! request it did not expect.
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
}

async fn handle(State(s): State<Shared>, method: Method, uri: Uri, Query(q): Query<BTreeMap<String, String>>, body: Bytes) -> Response {
    let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
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
    let verb = match (&method, &name) {
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "?",
    };
    let response = respond(&mut c, &s.replica, group, &resource, name.as_deref(), verb, &q, &body);
    c.requests.push(Seen { at: Instant::now(), replica: s.replica.clone(), verb: verb.into(), group: group.into(), resource, status: response.status().as_u16() });
    response
}

#[allow(clippy::too_many_arguments)]
fn respond(c: &mut Cluster, replica: &str, group: &str, resource: &str, name: Option<&str>, verb: &str, q: &BTreeMap<String, String>, body: &[u8]) -> Response {
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
        _ => status(404, "NotFound", format!("the server could not find the requested resource ({verb} {group}/{resource})")),
    }
}
