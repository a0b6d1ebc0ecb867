//! Kubernetes: scale any workload that has a `scale` subresource. (The
//! election of one acting host replica on a Lease is [`crate::leader::lease`];
//! it shares this module's API error handling and its [`API_USE`] line.)
//!
//! Why the scale subresource and not the workload's own spec: it is the one
//! interface Deployments, StatefulSets, ReplicaSets and any custom resource
//! that declares `subresources.scale` share, it reports the pod selector
//! with the replica count, and RBAC can grant it without granting writes to
//! the workload itself. The target reads the members from the pods that
//! selector matches (ready or not, terminating) and, where metrics-server is
//! installed, their CPU and memory from `metrics.k8s.io`. What it does to
//! the workload, and what it is refused, it records as `events.k8s.io/v1`
//! Events on the workload ([`events`]).
//!
//! Everything the code asks of the API server is listed in [`API_USE`]; the
//! shipped RBAC Role grants exactly that, and a test holds the two together.

pub mod events;
mod quantity;
pub mod workload;

pub use workload::{WorkloadRef, WorkloadTarget};

use crate::targets::ProviderError;

/// The annotation that pauses scalewise on a workload: with value `"true"`
/// the pool keeps deciding but never patches the scale.
pub const PAUSE_ANNOTATION: &str = "scalewise.io/paused";

/// One line of what the provider and the leader election ask of the API
/// server: API group, resource (with subresource), verbs.
pub type ApiUse = (&'static str, &'static str, &'static [&'static str]);

/// Every request the Kubernetes code makes, for the default workload kind
/// (Deployments). A pool that scales another kind needs the same verbs on
/// that kind's resource and `scale` subresource.
pub const API_USE: &[ApiUse] = &[
    ("apps", "deployments", &["get"]),
    ("apps", "deployments/scale", &["get", "patch"]),
    ("", "pods", &["list"]),
    ("metrics.k8s.io", "pods", &["list"]),
    ("events.k8s.io", "events", &["create"]),
    ("coordination.k8s.io", "leases", &["create", "get", "update"]),
];

/// A client for the cluster: `cluster_url` where given (a proxy, a test
/// stand-in; no credentials), else the standard inference (in-cluster
/// service account, then `KUBECONFIG` / `~/.kube/config`).
pub async fn client(cluster_url: Option<&str>) -> Result<kube::Client, ProviderError> {
    let config = match cluster_url {
        Some(url) => {
            let uri = url.parse().map_err(|e| ProviderError::Other(format!("cluster_url `{url}` is not a URL: {e}")))?;
            let mut c = kube::Config::new(uri);
            c.connect_timeout = Some(std::time::Duration::from_secs(5));
            c.read_timeout = Some(std::time::Duration::from_secs(15));
            c
        }
        None => kube::Config::infer().await.map_err(|e| {
            ProviderError::Other(format!(
                "no Kubernetes configuration found ({e}); run in a pod with a service account, set KUBECONFIG, or give cluster_url"
            ))
        })?,
    };
    kube::Client::try_from(config).map_err(|e| ProviderError::Other(format!("cannot build a Kubernetes client: {e}")))
}

/// An API error in words: the server's own message where it sent a Status.
pub(crate) fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let reason = if s.reason.is_empty() { String::new() } else { format!(" {}", s.reason) };
            format!("{}{reason}: {}", s.code, s.message)
        }
        other => other.to_string(),
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
