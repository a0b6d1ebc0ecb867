//! A stand-in for Azure Resource Manager and Microsoft Entra ID: no Azure
//! emulator exists, so the `azure-vmss` provider is tested against this
//! server, which speaks the real JSON of exactly the endpoints the provider
//! uses, shaped after Microsoft's published examples:
//! - `POST /{tenant}/oauth2/v2.0/token` (client credentials, with a secret
//!   or a federated assertion; errors as Entra ID's `invalid_client` with
//!   an AADSTS code): learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//! - `GET /metadata/identity/oauth2/token` (IMDS, needs `Metadata: true`;
//!   `expires_in` as a string): learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token
//! - `GET` and `PATCH {vmss}`: Virtual Machine Scale Sets - Get / Update
//!   (REST API 2024-07-01; the PATCH answers 200 with `Azure-AsyncOperation`)
//! - `GET {vmss}/virtualMachines?$expand=instanceView`: Virtual Machine
//!   Scale Set VMs - List (paged by `nextLink`)
//! - `POST {vmss}/delete`: Virtual Machine Scale Sets - Delete Instances
//!   (202 with `Location`, which answers 202 until done, then 200)
//! - `GET .../locations/{loc}/operations/{id}`: the async operation's
//!   status (`InProgress`, `Succeeded`, `Failed` with ARM's error)
//!
//! Errors are ARM's `{"error": {"code", "message"}}`: `ResourceNotFound`
//! for a deleted scale set, `OperationNotAllowed` for a quota (as ARM
//! refuses a capacity over the regional cores quota), `TooManyRequests`
//! (429) with `Retry-After`, `InvalidAuthenticationToken` (401) without a
//! token this server issued. Every request is logged by endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const SUBSCRIPTION: &str = "00000000-0000-4000-8000-000000000001";
pub const GROUP: &str = "rg-web";
pub const VMSS: &str = "web";
pub const TENANT: &str = "tenant-1";
pub const SECRET: &str = "s3cret";
pub const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.federated.token";
const API_VERSION: &str = "2024-07-01";
/// Instances per page of the list, small so that paging is exercised.
const PAGE: usize = 4;

#[derive(Debug, Clone)]
pub struct Vm {
    pub id: u32,
    pub created: Instant,
    pub deleting_since: Option<Instant>,
}

pub struct Arm {
    pub capacity: u32,
    pub vms: Vec<Vm>,
    next_id: u32,
    /// Every instance ever created.
    pub created_total: u32,
    /// The most instances the quota allows.
    pub quota: Option<u32>,
    pub deleted: bool,
    /// Answer this many next ARM requests with 429.
    pub throttle_next: u32,
    /// How long an operation stays `InProgress`.
    pub op_time: Duration,
    ops: BTreeMap<String, Instant>,
    /// (endpoint, status) of every request, in order.
    pub requests: Vec<(String, u16)>,
    pub ready_after: Duration,
    tokens: u32,
}

pub struct ArmStandIn {
    pub state: Arc<Mutex<Arm>>,
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl ArmStandIn {
    pub fn start(capacity: u32) -> ArmStandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let now = Instant::now();
        let state = Arc::new(Mutex::new(Arm {
            capacity,
            vms: (0..capacity).map(|id| Vm { id, created: now, deleting_since: None }).collect(),
            next_id: capacity,
            created_total: capacity,
            quota: None,
            deleted: false,
            throttle_next: 0,
            op_time: Duration::from_millis(600),
            ops: BTreeMap::new(),
            requests: Vec::new(),
            ready_after: Duration::from_millis(300),
            tokens: 0,
        }));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(handle).with_state((state.clone(), url.clone()));
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        ArmStandIn { state, url, _runtime: runtime }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Arm) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Instances not being deleted.
    pub fn live(&self) -> usize {
        self.with(|a| {
            a.tick();
            a.vms.iter().filter(|v| v.deleting_since.is_none()).count()
        })
    }

    /// How many requests went to `endpoint`.
    pub fn count(&self, endpoint: &str) -> usize {
        self.with(|a| a.requests.iter().filter(|(e, _)| e == endpoint).count())
    }
}

fn arm_error(status: u16, code: &str, message: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

fn vmss_path() -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{VMSS}")
}

impl Arm {
    /// Let time pass: deletions finish.
    fn tick(&mut self) {
        let op_time = self.op_time;
        self.vms.retain(|v| v.deleting_since.is_none_or(|t| t.elapsed() < op_time));
    }

    fn vmss(&self) -> Value {
        json!({
            "name": VMSS, "id": vmss_path(), "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope",
            "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": self.capacity},
            "properties": {"singlePlacementGroup": true, "upgradePolicy": {"mode": "Manual"}, "provisioningState": "Succeeded",
                           "overprovision": false, "uniqueId": "d053ec5a-8da6-495f-ab13-38216503c6d7"}
        })
    }

    fn vm(&self, v: &Vm) -> Value {
        let (prov, power) = match v.deleting_since {
            Some(_) => ("Deleting", "running"),
            None if v.created.elapsed() < self.ready_after => ("Creating", "starting"),
            None => ("Succeeded", "running"),
        };
        json!({
            "name": format!("{VMSS}_{}", v.id), "id": format!("{}/virtualMachines/{}", vmss_path(), v.id),
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines", "location": "westeurope", "instanceId": v.id.to_string(),
            "sku": {"name": "Standard_D2s_v3", "tier": "Standard"},
            "properties": {
                "latestModelApplied": true, "vmId": format!("0f47b100-583c-48e3-a4c0-{:012}", v.id), "provisioningState": prov,
                "timeCreated": "2026-12-01T10:00:00.0000000+00:00",
                "instanceView": {"statuses": [
                    {"code": format!("ProvisioningState/{}", prov.to_lowercase()), "level": "Info", "displayStatus": format!("Provisioning {}", prov.to_lowercase())},
                    {"code": format!("PowerState/{power}"), "level": "Info", "displayStatus": format!("VM {power}")}
                ]}
            }
        })
    }

    fn start_op(&mut self, base: &str) -> String {
        let id = format!("op-{}", self.ops.len() + 1);
        self.ops.insert(id.clone(), Instant::now() + self.op_time);
        format!("{base}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/westeurope/operations/{id}?api-version={API_VERSION}")
    }
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query().map(url_pairs).unwrap_or_default()
}

fn url_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State((state, base)): State<(Arc<Mutex<Arm>>, String)>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut a = state.lock().unwrap();
    a.tick();
    let path = uri.path().to_owned();
    let (endpoint, response) = route(&mut a, &base, &method, &path, &query(&uri), &headers, &body);
    let status = response.status().as_u16();
    a.requests.push((endpoint, status));
    response
}

fn route(a: &mut Arm, base: &str, method: &Method, path: &str, q: &BTreeMap<String, String>, headers: &HeaderMap, body: &[u8]) -> (String, Response) {
    // Entra ID.
    if method == Method::POST && path == format!("/{TENANT}/oauth2/v2.0/token") {
        let form = url_pairs(&String::from_utf8_lossy(body));
        let good = form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("scope").map(String::as_str) == Some("https://management.azure.com/.default")
            && (form.get("client_secret").map(String::as_str) == Some(SECRET)
                || (form.get("client_assertion").map(String::as_str) == Some(ASSERTION)
                    && form.get("client_assertion_type").map(String::as_str) == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")));
        if !good {
            let e = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                           "error_codes": [7000215], "timestamp": "2026-12-01 10:00:00Z", "trace_id": "t", "correlation_id": "c"});
            return ("token".into(), (StatusCode::UNAUTHORIZED, axum::Json(e)).into_response());
        }
        a.tokens += 1;
        let t = json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("tok-{}", a.tokens)});
        return ("token".into(), axum::Json(t).into_response());
    }
    if path == "/metadata/identity/oauth2/token" {
        if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
            let e = json!({"error": "invalid_request", "error_description": "Required metadata header not specified"});
            return ("imds".into(), (StatusCode::BAD_REQUEST, axum::Json(e)).into_response());
        }
        a.tokens += 1;
        let t = json!({"access_token": format!("tok-{}", a.tokens), "expires_in": "3599", "expires_on": "1796122800", "not_before": "1796119200",
                       "resource": q.get("resource").cloned().unwrap_or_default(), "token_type": "Bearer", "client_id": "mi"});
        return ("imds".into(), axum::Json(t).into_response());
    }
    // Azure Resource Manager.
    let endpoint = if let Some(rest) = path.strip_prefix(&vmss_path()) {
        match (method.as_str(), rest) {
            ("GET", "") => "GET {vmss}",
            ("PATCH", "") => "PATCH {vmss}",
            ("GET", "/virtualMachines") => "GET {vmss}/virtualMachines",
            ("POST", "/delete") => "POST {vmss}/delete",
            _ => "unknown",
        }
    } else if method == Method::GET && path.contains("/providers/Microsoft.Compute/locations/westeurope/operations/") {
        "operation"
    } else {
        "unknown"
    }
    .to_owned();
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer tok-"));
    if !authorized {
        return (endpoint, arm_error(401, "InvalidAuthenticationToken", "The access token is invalid."));
    }
    if q.get("api-version").map(String::as_str) != Some(API_VERSION) {
        return (endpoint, arm_error(400, "InvalidApiVersionParameter", "The api-version is invalid. The supported versions are '2024-07-01'."));
    }
    if a.throttle_next > 0 {
        a.throttle_next -= 1;
        let mut r = arm_error(429, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read_30Min.");
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return (endpoint, r);
    }
    if endpoint == "operation" {
        let id = path.rsplit('/').next().unwrap_or("");
        let Some(done) = a.ops.get(id).copied() else { return (endpoint, arm_error(404, "NotFound", "no such operation")) };
        let finished = Instant::now() >= done;
        let monitor = q.contains_key("monitor");
        return (endpoint, match (monitor, finished) {
            (true, false) => StatusCode::ACCEPTED.into_response(),
            (true, true) => StatusCode::OK.into_response(),
            (false, f) => axum::Json(json!({"startTime": "2026-12-01T10:00:00.0000000+00:00", "status": if f { "Succeeded" } else { "InProgress" }, "name": id})).into_response(),
        });
    }
    if a.deleted {
        let m = format!("The Resource 'Microsoft.Compute/virtualMachineScaleSets/{VMSS}' under resource group '{GROUP}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix");
        return (endpoint, arm_error(404, "ResourceNotFound", &m));
    }
    let response = match endpoint.as_str() {
        "GET {vmss}" => axum::Json(a.vmss()).into_response(),
        "PATCH {vmss}" => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(capacity) = v["sku"]["capacity"].as_u64() else {
                return (endpoint, arm_error(400, "InvalidParameter", "The value of parameter sku.capacity is invalid."));
            };
            let capacity = capacity as u32;
            if a.quota.is_some_and(|q| capacity > q) {
                let m = format!("Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: {}, Current Usage: {}, Additional Required: {}.", a.quota.unwrap() * 2, a.capacity * 2, (capacity - a.capacity) * 2);
                return (endpoint, arm_error(409, "OperationNotAllowed", &m));
            }
            let live = a.vms.iter().filter(|v| v.deleting_since.is_none()).count() as u32;
            let now = Instant::now();
            for _ in live..capacity {
                let id = a.next_id;
                a.next_id += 1;
                a.created_total += 1;
                a.vms.push(Vm { id, created: now, deleting_since: None });
            }
            a.capacity = capacity;
            let op = a.start_op(base);
            let mut r = axum::Json(a.vmss()).into_response();
            r.headers_mut().insert("azure-asyncoperation", op.parse().unwrap());
            r
        }
        "GET {vmss}/virtualMachines" => {
            if q.get("$expand").map(String::as_str) != Some("instanceView") {
                return (endpoint, arm_error(400, "InvalidParameter", "expected $expand=instanceView"));
            }
            let skip: usize = q.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
            let all: Vec<Value> = a.vms.iter().map(|v| a.vm(v)).collect();
            let page: Vec<Value> = all.iter().skip(skip).take(PAGE).cloned().collect();
            let mut v = json!({"value": page});
            if skip + PAGE < all.len() {
                v["nextLink"] = json!(format!("{base}{}/virtualMachines?api-version={API_VERSION}&$expand=instanceView&$skiptoken={}", vmss_path(), skip + PAGE));
            }
            axum::Json(v).into_response()
        }
        "POST {vmss}/delete" => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(ids) = v["instanceIds"].as_array() else {
                return (endpoint, arm_error(400, "InvalidParameter", "instanceIds is required"));
            };
            let now = Instant::now();
            for id in ids.iter().filter_map(|i| i.as_str()).filter_map(|i| i.parse::<u32>().ok()) {
                if let Some(vm) = a.vms.iter_mut().find(|v| v.id == id && v.deleting_since.is_none()) {
                    vm.deleting_since = Some(now);
                    a.capacity -= 1;
                }
            }
            let op = a.start_op(base).replace("?api-version", "?monitor=true&api-version");
            let mut r = StatusCode::ACCEPTED.into_response();
            r.headers_mut().insert("location", op.parse().unwrap());
            r
        }
        _ => arm_error(400, "InvalidResourceType", &format!("no route for {method} {path}")),
    };
    (endpoint, response)
}
