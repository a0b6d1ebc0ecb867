//! The `gce` target: a pool is one Compute Engine managed instance group,
//! zonal or regional, through Google's official client
//! (`google-cloud-compute-v1`) with credentials from the standard Google
//! chain (Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`,
//! gcloud's file, the metadata server).
//!
//! Why the group and not instances of our own: the group is the truth, and
//! what Compute Engine heals, updates and spreads over zones. Scale-out
//! resizes the group to the absolute size wanted, with a request id, so a
//! resize sent twice is one resize and a host killed half-way through a
//! scale-up finds the size it asked for. Scale-in deletes chosen instances
//! by the removal score (`deleteInstances`, which lowers the target size
//! with them; instances already gone are skipped), since a plain resize
//! down lets the group pick. Both follow the returned operation to `DONE`
//! with the client's poller, bounded by the configured time.
//!
//! Instances the group cannot create (a quota, a zone out of capacity) stay
//! in `CREATING` with the reason in their last attempt, and the group keeps
//! trying. They show as members in back-off with that reason, and while any
//! is there the pool's scale-ups are held at what does run (the decision
//! shows `limited` and why) rather than asking for more of what cannot be.
//!
//! Spot: provisioning model (Spot or standard) is part of the instance
//! template, not of a call, so the cost rules' placement is not applied.
//!
//! Everything the code asks of the Compute API is listed in [`API_USE`];
//! the end-to-end test holds the stand-in's log of requests to it.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_compute_v1::client::{InstanceGroupManagers, RegionInstanceGroupManagers};
use google_cloud_compute_v1::model::{InstanceGroupManagersDeleteInstancesRequest, ManagedInstance, RegionInstanceGroupManagersDeleteInstancesRequest};
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_lro::Poller;

use crate::targets::backoff::Backoff;
use crate::targets::hold::ScaleUpHold;
use crate::targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};

/// Every request the target makes, as method and path under the group
/// (`{igm}` = `projects/{p}/zones/{z}/instanceGroupManagers/{name}`, or
/// `regions/{r}` for a regional group), besides the operation polls.
pub const API_USE: &[(&str, &str)] = &[
    // instanceGroupManagers.resize / regionInstanceGroupManagers.resize
    ("POST", "{igm}/resize"),
    // instanceGroupManagers.deleteInstances / regionInstanceGroupManagers.deleteInstances
    ("POST", "{igm}/deleteInstances"),
    // instanceGroupManagers.listManagedInstances / regionInstanceGroupManagers.listManagedInstances
    ("POST", "{igm}/listManagedInstances"),
    // zoneOperations.get / regionOperations.get (the poller)
    ("GET", "{location}/operations/{operation}"),
];

/// Where the group lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Zone(String),
    Region(String),
}

#[derive(Debug, Clone)]
pub struct GceConfig {
    pub pool: String,
    pub project: String,
    pub location: Location,
    pub name: String,
    /// A Compute API endpoint instead of Google's (a private endpoint, a test server).
    pub endpoint: Option<String>,
    pub backoff: Backoff,
    pub request_timeout: Duration,
    pub operation_timeout: Duration,
    /// Instances per page of `listManagedInstances` (1..=500).
    pub page_size: u32,
    /// How long instances that cannot be created hold scale-ups at least.
    pub quota_cooldown: Duration,
}

/// The API of the group's kind, with its zone or region.
enum Client {
    Zonal(InstanceGroupManagers, String),
    Regional(RegionInstanceGroupManagers, String),
}

/// One request on either kind of group. The two APIs differ only in their
/// types and in the location's setter (`set_zone`, `set_region`), so the
/// request is written once: `$method` on the API, then the project, the
/// location and the group, then `$rest` (the request's own setters and how
/// it is sent) on both. A request with a body names the body's type for
/// each kind, and its setters once.
macro_rules! on_group {
    (@ $target:expr, $method:ident, ($($zbody:tt)*), ($($rbody:tt)*) $($rest:tt)*) => {{
        let c = &$target.config;
        match &$target.client {
            Client::Zonal(api, zone) => api.$method().set_project(&c.project).set_zone(zone).set_instance_group_manager(&c.name) $($zbody)* $($rest)*,
            Client::Regional(api, region) => api.$method().set_project(&c.project).set_region(region).set_instance_group_manager(&c.name) $($rbody)* $($rest)*,
        }
    }};
    ($target:expr, $method:ident, body = $zonal:ident | $regional:ident ($($body:tt)*) $($rest:tt)*) => {
        on_group!(@ $target, $method, (.set_body($zonal::new() $($body)*)), (.set_body($regional::new() $($body)*)) $($rest)*)
    };
    ($target:expr, $method:ident $($rest:tt)*) => {
        on_group!(@ $target, $method, (), () $($rest)*)
    };
}

pub struct GceTarget {
    client: Client,
    config: GceConfig,
    hold: ScaleUpHold,
    /// Instances the group could not create, at the last read.
    stuck: std::sync::Mutex<Vec<String>>,
}

/// A Compute call's failure, in words, and whether another try may help.
#[derive(Debug, Clone)]
struct CallError {
    message: String,
    retryable: bool,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn classify(e: &google_cloud_compute_v1::Error) -> CallError {
    let http = e.http_status_code();
    let (code, text) = match e.status() {
        Some(s) => (format!("{:?}", s.code), s.message.clone()),
        None => (http.map_or_else(|| "Transport".to_owned(), |h| format!("HTTP {h}")), crate::error_chain(e)),
    };
    let retryable = e.is_timeout() || e.is_io() || e.is_connect() || http.is_some_and(|h| h == 429 || h >= 500);
    let hint = if e.is_authentication() || http == Some(401) {
        " (no usable Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key, run `gcloud auth application-default login`, or run with a service account on Compute Engine or GKE)"
    } else if http == Some(403) {
        " (grant the host's service account roles/compute.instanceAdmin.v1 on the project or the group)"
    } else if http == Some(404) {
        " (the group is not there: check project, zone or region, and name; was it deleted?)"
    } else if e.is_connect() || e.is_io() {
        " (check `endpoint` and that the host can reach the Compute API)"
    } else {
        ""
    };
    CallError { message: format!("{code}: {text}{hint}"), retryable }
}

/// A request id for a call Compute should do once, however often it is sent:
/// a random version-4 UUID.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

impl GceTarget {
    /// Build the client: the standard credential chain, the endpoint if one
    /// is given. Nothing is asked of Compute Engine yet.
    pub async fn connect(config: GceConfig) -> Result<Self, ProviderError> {
        // The Google client runs on rustls and expects the process to pick
        // the crypto provider: ring, as the rest of the host.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fail = |e: &dyn std::error::Error| ProviderError::Other(format!("pool `{}`: cannot set up the Compute Engine client: {}", config.pool, crate::error_chain(e)));
        let client = match &config.location {
            Location::Zone(zone) => {
                // Our own retries only (see `retrying`): the client's would
                // stack under ours and outlast the call's time bound.
                let mut b = InstanceGroupManagers::builder().with_retry_policy(NeverRetry);
                if let Some(e) = &config.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                Client::Zonal(b.build().await.map_err(|e| fail(&e))?, zone.clone())
            }
            Location::Region(region) => {
                let mut b = RegionInstanceGroupManagers::builder().with_retry_policy(NeverRetry);
                if let Some(e) = &config.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                Client::Regional(b.build().await.map_err(|e| fail(&e))?, region.clone())
            }
        };
        Ok(Self { client, config, hold: ScaleUpHold::default(), stuck: Default::default() })
    }

    fn what(&self) -> String {
        let c = &self.config;
        match &c.location {
            Location::Zone(z) => format!("managed instance group {}/{z}/{}", c.project, c.name),
            Location::Region(r) => format!("managed instance group {}/{r}/{}", c.project, c.name),
        }
    }

    /// Run `call` with retries while the error allows, each try bounded by
    /// `timeout`. A call that runs out of it is tried again only if it is a
    /// read: an operation given its whole time is not given it again.
    async fn retrying<T, F, Fut>(&self, what: &str, timeout: Duration, mut call: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, google_cloud_compute_v1::Error>>,
    {
        let mut attempt = 0;
        loop {
            let error = match tokio::time::timeout(timeout, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => classify(&e),
                Err(_) => CallError {
                    message: format!("{what} took longer than {timeout:?} (check `endpoint` and that the host can reach the Compute API)"),
                    retryable: what == "listManagedInstances",
                },
            };
            attempt += 1;
            if !error.retryable || attempt >= self.config.backoff.attempts {
                return Err(error);
            }
            let wait = self.config.backoff.wait(attempt - 1);
            tracing::debug!(pool = %self.config.pool, call = what, attempt, ?wait, "Compute Engine: {error}; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Every managed instance, over all pages.
    async fn instances(&self) -> Result<Vec<ManagedInstance>, CallError> {
        let (c, t) = (&self.config, self.config.request_timeout);
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .retrying("listManagedInstances", t, || {
                    let token = token.clone();
                    async move {
                        on_group!(self, list_managed_instances.set_max_results(c.page_size).set_page_token(token).send().await.map(|r| (r.managed_instances, r.next_page_token)))
                    }
                })
                .await?;
            out.extend(page.0);
            match page.1 {
                Some(next) if !next.is_empty() && out.len() < 100_000 => token = next,
                _ => return Ok(out),
            }
        }
    }

    async fn resize(&self, size: u32) -> Result<(), CallError> {
        let (c, id) = (&self.config, request_id());
        self.retrying("resize", c.operation_timeout, || async {
            on_group!(self, resize.set_size(size as i32).set_request_id(&id).poller().until_done().await.map(drop))
        })
        .await
    }

    async fn delete(&self, urls: Vec<String>) -> Result<(), CallError> {
        let (c, id) = (&self.config, request_id());
        self.retrying("deleteInstances", c.operation_timeout, || async {
            on_group!(
                self,
                delete_instances,
                body = InstanceGroupManagersDeleteInstancesRequest | RegionInstanceGroupManagersDeleteInstancesRequest (.set_instances(urls.clone()).set_skip_instances_on_validation_error(true))
                .set_request_id(&id).poller().until_done().await.map(drop)
            )
        })
        .await
    }

    /// The members now, with the instance URLs scale-in needs; holds
    /// scale-ups while instances cannot be created.
    async fn read(&self) -> Result<Vec<(Member, String)>, ProviderError> {
        let found = self.instances().await.map_err(|e| ProviderError::Read(format!("{}: {e}", self.what())))?;
        let read: Vec<(Member, String, bool)> = found.iter().filter_map(member).collect();
        let stuck: Vec<&Member> = read.iter().filter(|(_, _, s)| *s).map(|(m, _, _)| m).collect();
        if let Some(first) = stuck.first() {
            let serving = read.iter().filter(|(m, _, _)| m.state == MemberState::Active).count() as u32;
            let why = format!("{} instance(s) cannot be created: {}", stuck.len(), first.last_error.as_deref().unwrap_or(""));
            self.hold.set(self.config.quota_cooldown, serving, why);
        }
        *self.stuck.lock().unwrap() = stuck.iter().map(|m| m.id.to_string()).collect();
        Ok(read.into_iter().map(|(m, u, _)| (m, u)).collect())
    }
}

/// A managed instance as a member, its URL, and whether the group cannot
/// create it (still creating, with errors in its last attempt); `None`
/// without a name.
fn member(i: &ManagedInstance) -> Option<(Member, String, bool)> {
    let url = i.instance.clone()?;
    let name = i.name.clone().or_else(|| url.rsplit('/').next().map(str::to_owned))?;
    let action = i.current_action.as_ref().and_then(|a| a.name()).unwrap_or("NONE");
    let status = i.instance_status.as_ref().and_then(|s| s.name()).unwrap_or("");
    let errors: Vec<String> = i
        .last_attempt
        .as_ref()
        .and_then(|a| a.errors.as_ref())
        .map(|e| e.errors.iter().map(|x| format!("{}: {}", x.code.as_deref().unwrap_or("ERROR"), x.message.as_deref().unwrap_or(""))).collect())
        .unwrap_or_default();
    let stuck = !errors.is_empty() && matches!(action, "CREATING" | "CREATING_WITHOUT_RETRIES" | "RECREATING");
    let state = match (action, status) {
        ("DELETING" | "ABANDONING" | "STOPPING" | "SUSPENDING", _) => MemberState::Draining,
        _ if stuck => MemberState::Backoff,
        // Serving; a refresh or verification of a running instance does not stop it.
        ("NONE" | "REFRESHING" | "VERIFYING", "RUNNING") => MemberState::Active,
        ("NONE", "STOPPED" | "SUSPENDED" | "TERMINATED" | "STOPPING" | "SUSPENDING") => MemberState::Backoff,
        _ => MemberState::Starting,
    };
    let mut m = Member::new(name, state, 0);
    let health = i.instance_health.iter().filter_map(|h| h.detailed_health_state.as_ref().and_then(|d| d.name())).collect::<Vec<_>>();
    m.healthy = state != MemberState::Backoff && !health.iter().any(|h| matches!(*h, "UNHEALTHY" | "TIMEOUT"));
    if stuck {
        m.last_error = Some(errors.join("; "));
    } else if state == MemberState::Backoff {
        m.last_error = Some(format!("instance {status}"));
    }
    Some((m, url, stuck))
}

#[async_trait]
impl Target for GceTarget {
    fn kind(&self) -> &'static str {
        "gce"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        let state = self.state().await?;
        tracing::info!(pool = %self.config.pool, running = state.running(), booting = state.booting(), "found the group's instances");
        Ok(state)
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        Ok(PoolState { members: self.read().await?.into_iter().map(|(m, _)| m).collect() })
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        let live: Vec<(Member, String)> = self.read().await?.into_iter().filter(|(m, _)| m.state != MemberState::Draining).collect();
        let have = live.len() as u32;
        let mut outcome = ScaleOutcome { capacity: have, ..Default::default() };
        if desired > have {
            self.resize(desired).await.map_err(|e| ProviderError::Launch(format!("{}: resize {have} → {desired}: {e}", self.what())))?;
            outcome.capacity = desired;
            outcome.launched = vec![format!("size {have} → {desired}")];
        } else if desired < have {
            let members: Vec<Member> = live.iter().map(|(m, _)| m.clone()).collect();
            let names = pick_victims(&members, (have - desired) as usize);
            let urls = names.iter().filter_map(|n| live.iter().find(|(m, _)| *m.id == **n).map(|(_, u)| u.clone())).collect();
            self.delete(urls).await.map_err(|e| ProviderError::Remove { member: names.join(", "), detail: format!("{}: {e}", self.what()) })?;
            outcome.capacity -= names.len() as u32;
            outcome.removed = names;
        }
        Ok(outcome)
    }

    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        // Held for as long as instances cannot be created, at least the cooldown.
        let stuck = !self.stuck.lock().unwrap().is_empty();
        self.hold.headroom(state, "Compute Engine cannot create more instances", stuck)
    }
}

#[cfg(test)]
mod tests;
