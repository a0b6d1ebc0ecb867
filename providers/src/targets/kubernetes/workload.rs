//! The `kubernetes` target: one workload's replica count, through its scale
//! subresource.
//!
//! The pool's members are the workload's pods: ready pods serve, pods not
//! yet ready are booting, terminating pods drain. Kubernetes creates and
//! removes the pods itself, so the members are padded or trimmed to the
//! scale's `spec.replicas`: asking for 5 shows 5 members at once, the
//! missing ones booting, exactly as the control loop expects of any target.
//!
//! What the pool does to the workload, and what it is refused, it records
//! as Events on the workload ([`super::events`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::Api;

use super::{PAUSE_ANNOTATION, api_error, events, is_not_found, quantity};
use crate::targets::{Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, TargetEvent};

/// Which workload a pool scales.
#[derive(Debug, Clone)]
pub struct WorkloadRef {
    /// `apps/v1`, or `group/version` of a custom resource.
    pub api_version: String,
    /// `Deployment`, `StatefulSet`, or the custom kind.
    pub kind: String,
    /// The resource's plural; default: the lower-cased kind plus `s`.
    pub plural: Option<String>,
    pub namespace: String,
    pub name: String,
}

impl WorkloadRef {
    fn resource(&self) -> ApiResource {
        let (group, version) = self.api_version.rsplit_once('/').unwrap_or(("", &self.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &self.kind);
        let plural = self.plural.clone().unwrap_or_else(|| format!("{}s", self.kind.to_lowercase()));
        ApiResource::from_gvk_with_plural(&gvk, &plural)
    }

    /// `Deployment shop/web`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

pub struct WorkloadTarget {
    workload: WorkloadRef,
    workloads: Api<DynamicObject>,
    pods: Api<Pod>,
    pod_metrics: Api<DynamicObject>,
    /// Set once metrics.k8s.io answered 404: not installed, stop asking.
    no_metrics: AtomicBool,
    /// Events in the workload's namespace: that is where Kubernetes looks
    /// for an object's events.
    events: Api<Event>,
    /// The workload's uid as the scale last reported it, so an event names
    /// this incarnation of the object and not one recreated under its name.
    uid: Mutex<Option<String>>,
    /// `reportingInstance` of the events: this host replica.
    instance: String,
}

impl WorkloadTarget {
    pub fn new(client: kube::Client, workload: WorkloadRef) -> Self {
        let ns = workload.namespace.clone();
        let workloads = Api::namespaced_with(client.clone(), &ns, &workload.resource());
        let metrics = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"), "pods");
        Self {
            pods: Api::namespaced(client.clone(), &ns),
            pod_metrics: Api::namespaced_with(client.clone(), &ns, &metrics),
            events: Api::namespaced(client, &ns),
            workloads,
            workload,
            no_metrics: AtomicBool::new(false),
            uid: Mutex::new(None),
            instance: events::reporting_instance(),
        }
    }

    fn remember_uid(&self, uid: Option<String>) {
        if uid.is_some() {
            *self.uid.lock().unwrap_or_else(|e| e.into_inner()) = uid;
        }
    }

    fn gone(&self, e: &kube::Error) -> ProviderError {
        if is_not_found(e) {
            ProviderError::Other(format!(
                "{} does not exist (deleted?); create it again or remove the pool from the config",
                self.workload.describe()
            ))
        } else {
            ProviderError::Read(format!("{}: {}", self.workload.describe(), api_error(e)))
        }
    }

    /// CPU (percent of one core) and memory (bytes) per pod name.
    async fn usage(&self, selector: &str) -> std::collections::HashMap<String, (f64, f64)> {
        let mut out = std::collections::HashMap::new();
        if self.no_metrics.load(Ordering::Relaxed) {
            return out;
        }
        match self.pod_metrics.list(&ListParams::default().labels(selector)).await {
            Ok(list) => {
                for pm in list.items {
                    let Some(name) = pm.metadata.name.clone() else { continue };
                    let (mut cpu, mut mem) = (0.0, 0.0);
                    for c in pm.data.get("containers").and_then(|c| c.as_array()).into_iter().flatten() {
                        let usage = &c["usage"];
                        cpu += usage["cpu"].as_str().and_then(quantity::parse).unwrap_or(0.0);
                        mem += usage["memory"].as_str().and_then(quantity::parse).unwrap_or(0.0);
                    }
                    out.insert(name, (cpu * 100.0, mem));
                }
            }
            Err(e) if is_not_found(&e) => {
                tracing::info!(workload = %self.workload.describe(), "metrics.k8s.io is not served here; pods carry no CPU or memory readings");
                self.no_metrics.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!("pod metrics unavailable this tick: {}", api_error(&e)),
        }
        out
    }
}

fn member_of(pod: &Pod, usage: Option<&(f64, f64)>) -> Option<Member> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed") {
        return None;
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let state = if pod.metadata.deletion_timestamp.is_some() {
        MemberState::Draining
    } else if ready {
        MemberState::Active
    } else {
        MemberState::Starting
    };
    let started = pod.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_millisecond());
    let mut m = Member::new(pod.metadata.name.clone().unwrap_or_default(), state, started);
    m.restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum());
    m.healthy = ready || state == MemberState::Starting;
    if let Some((cpu, mem)) = usage {
        m.cpu_percent = Some(*cpu);
        m.memory_bytes = Some(*mem as u64);
    }
    Some(m)
}

/// Make the members add up to `replicas`: placeholders for pods not created
/// yet, and the surplus (what the controller will remove: not ready first,
/// then newest) shown as draining.
fn fit_to(mut members: Vec<Member>, replicas: u32) -> Vec<Member> {
    let live = |m: &Member| m.state != MemberState::Draining;
    let mut count = members.iter().filter(|m| live(m)).count() as u32;
    if count > replicas {
        let mut order: Vec<usize> = (0..members.len()).filter(|&i| live(&members[i])).collect();
        order.sort_by_key(|&i| (members[i].state == MemberState::Active, std::cmp::Reverse(members[i].started_at)));
        for &i in order.iter().take((count - replicas) as usize) {
            members[i].state = MemberState::Draining;
        }
    }
    while count < replicas {
        members.push(Member::new(format!("pending-{count}"), MemberState::Starting, crate::now_ms()));
        count += 1;
    }
    members
}

#[async_trait]
impl Target for WorkloadTarget {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        self.state().await
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        let scale = self.workloads.get_scale(&self.workload.name).await.map_err(|e| self.gone(&e))?;
        self.remember_uid(scale.metadata.uid.clone());
        let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let selector = scale.status.and_then(|s| s.selector).filter(|s| !s.is_empty());
        let Some(selector) = selector else {
            // No selector yet (a custom resource that does not report one):
            // the count is all there is to know.
            return Ok(PoolState { members: fit_to(Vec::new(), replicas).into() });
        };
        let pods = self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ProviderError::Read(format!("pods of {}: {}", self.workload.describe(), api_error(&e))))?;
        let usage = self.usage(&selector).await;
        let members = pods.items.iter().filter_map(|p| member_of(p, p.metadata.name.as_ref().and_then(|n| usage.get(n)))).collect();
        Ok(PoolState { members: fit_to(members, replicas).into() })
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        let workload = self.workloads.get(&self.workload.name).await.map_err(|e| self.gone(&e))?;
        self.remember_uid(workload.metadata.uid.clone());
        if workload.metadata.annotations.as_ref().and_then(|a| a.get(PAUSE_ANNOTATION)).is_some_and(|v| v == "true") {
            return Err(ProviderError::Other(format!(
                "{} carries {PAUSE_ANNOTATION}=true: scalewise leaves it alone until the annotation is removed",
                self.workload.describe()
            )));
        }
        let patch = serde_json::json!({ "spec": { "replicas": desired } });
        let scale = self
            .workloads
            .patch_scale(&self.workload.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| match self.gone(&e) {
                ProviderError::Read(d) => ProviderError::Other(format!("cannot scale: {d}")),
                other => other,
            })?;
        let now = scale.spec.and_then(|s| s.replicas).unwrap_or(desired as i32).max(0) as u32;
        Ok(ScaleOutcome { launched: Vec::new(), removed: Vec::new(), capacity: now })
    }

    fn records_events(&self) -> bool {
        true
    }

    async fn record_event(&self, event: &TargetEvent) -> Result<(), ProviderError> {
        let uid = self.uid.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let ev = events::to_event(&self.workload, uid, &self.instance, event);
        self.events
            .create(&PostParams::default(), &ev)
            .await
            .map(drop)
            .map_err(|e| ProviderError::Other(format!("cannot record an event on {}: {}", self.workload.describe(), api_error(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, state: MemberState, at: i64) -> Member {
        Member::new(id, state, at)
    }

    #[test]
    fn members_are_padded_to_the_replica_count() {
        let got = fit_to(vec![m("a", MemberState::Active, 1)], 3);
        assert_eq!(got.len(), 3);
        assert_eq!(PoolState { members: got.into() }.capacity(), 3);
    }

    #[test]
    fn the_surplus_drains_not_ready_then_newest_first() {
        let got = fit_to(
            vec![m("old", MemberState::Active, 1), m("new", MemberState::Active, 9), m("booting", MemberState::Starting, 5)],
            1,
        );
        let mut draining: Vec<_> = got.iter().filter(|x| x.state == MemberState::Draining).map(|x| &*x.id).collect();
        draining.sort();
        assert_eq!(draining, ["booting", "new"], "the old ready pod stays");
        assert_eq!(PoolState { members: got.into() }.capacity(), 1);
    }

    #[test]
    fn pods_become_members_by_readiness() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-11-23T10:00:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 2}]}
        }))
        .unwrap();
        let got = member_of(&pod, Some(&(25.0, 1024.0))).unwrap();
        assert_eq!(got.state, MemberState::Active);
        assert_eq!(got.restarts, 2);
        assert_eq!(got.cpu_percent, Some(25.0));
        assert_eq!(got.started_at, 1_795_428_000_000);
        let done: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}, "status": {"phase": "Succeeded"}})).unwrap();
        assert!(member_of(&done, None).is_none());
    }
}
