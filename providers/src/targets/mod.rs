//! What a target is: something that holds a pool's members and can be asked
//! to hold N of them; and the targets: [`local`] (worker processes on this
//! machine), [`aws`] (EC2 instances by tag), [`azure`] (a virtual machine scale
//! set), [`docker`] (containers by label), [`gce`] (a Compute Engine managed
//! instance group) and [`kubernetes`] (a workload's scale subresource).
//!
//! `scale_to` takes an absolute number, never a delta, so that a retried or
//! repeated call after a crash is harmless: asking for 5 when 5 are there
//! does nothing. A target also says which members exist right now
//! ([`Target::state`]), read from the infrastructure rather than from its own
//! memory, which is how a restarted host picks up where it left off.
//!
//! A target may also record what the pool did to it ([`event`]), where its
//! infrastructure keeps such a record next to the thing scaled.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod backoff;
#[cfg(feature = "docker")]
pub mod docker;
pub mod event;
pub mod hold;
#[cfg(feature = "gce")]
pub mod gce;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod local;

use std::sync::Arc;

use async_trait::async_trait;
use scalewise_sdk::Placement;
use serde::Serialize;

pub use event::{TargetEvent, TargetEventKind};

/// Where a member is in its life.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Launched, not yet serving.
    Starting,
    /// Serving.
    Active,
    /// Being removed: no new work, waiting for its current work to finish.
    Draining,
    /// Crashed and waiting out a back-off before it is started again.
    Backoff,
    /// Gone.
    Stopped,
}

/// One member of a pool, as the target sees it now.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The member's id: a process slot, an instance id, a pod name.
    // Shared, since a pool's members are listed every tick while their ids
    // rarely change.
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub id: Arc<str>,
    pub state: MemberState,
    /// When it was launched, ms since the epoch.
    pub started_at: i64,
    /// Whether it passes its health check (a live process, a ready instance).
    pub healthy: bool,
    /// Whether it is doing work now, where the target can tell.
    pub busy: Option<bool>,
    /// CPU use in percent of one core, where known.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes, where known.
    pub memory_bytes: Option<u64>,
    /// Times it has been restarted after a crash.
    pub restarts: u32,
    /// The last thing that went wrong with it.
    pub last_error: Option<String>,
}

impl Member {
    /// A healthy member with nothing else known about it.
    pub fn new(id: impl Into<Arc<str>>, state: MemberState, started_at: i64) -> Self {
        Self { id: id.into(), state, started_at, healthy: true, busy: None, cpu_percent: None, memory_bytes: None, restarts: 0, last_error: None }
    }
}

/// A pool as its target reports it.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolState {
    /// Every member the target reports, in every state.
    // Shared rather than owned: the control loop reads a pool's state every
    // tick and publishes it, and a target whose members did not change
    // hands out the same list again without copying a member.
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Member>))]
    pub members: Arc<[Member]>,
}

impl PoolState {
    pub fn count(&self, state: MemberState) -> u32 {
        self.members.iter().filter(|m| m.state == state).count() as u32
    }

    /// Members serving now.
    pub fn running(&self) -> u32 {
        self.count(MemberState::Active)
    }

    /// Members that will serve once they are up: starting, or restarting
    /// after a crash.
    pub fn booting(&self) -> u32 {
        self.count(MemberState::Starting) + self.count(MemberState::Backoff)
    }

    /// What the pool holds, not counting members on their way out.
    pub fn capacity(&self) -> u32 {
        self.running() + self.booting()
    }

    /// Members known to be busy.
    pub fn busy(&self) -> u32 {
        self.members.iter().filter(|m| m.state == MemberState::Active && m.busy == Some(true)).count() as u32
    }
}

/// What a `scale_to` call did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ScaleOutcome {
    pub launched: Vec<String>,
    pub removed: Vec<String>,
    /// The capacity once every launch lands and every drain finishes.
    pub capacity: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot launch a member: {0}")]
    Launch(String),
    #[error("cannot remove member {member}: {detail}")]
    Remove { member: String, detail: String },
    #[error("cannot read the pool: {0}")]
    Read(String),
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// A short tag for counting failures: `launch`, `remove`, `read` or
    /// `provider` (anything else the platform said).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Launch(_) => "launch",
            ProviderError::Remove { .. } => "remove",
            ProviderError::Read(_) => "read",
            ProviderError::Other(_) => "provider",
        }
    }
}

/// The most members a pool can hold, by one limit, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Headroom {
    pub at_most: u32,
    pub why: String,
}

/// A pool's capacity: read it, change it.
#[async_trait]
pub trait Target: Send + Sync {
    /// A short name of the adapter, for logs and the API.
    fn kind(&self) -> &'static str;

    /// Discover what already exists (after a restart, members launched by an
    /// earlier run). Called once before the first decision.
    async fn reconcile(&self) -> Result<PoolState, ProviderError>;

    /// The members now.
    async fn state(&self) -> Result<PoolState, ProviderError>;

    /// Hold `desired` members. Idempotent: calling it again with the same
    /// number changes nothing.
    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError>;

    /// Hold `desired` members bought as `placement` says (instance kind, on
    /// demand and spot), where the target can choose; the cost rules'
    /// answer. Targets with one way of buying (a process pool) ignore it.
    async fn scale_placed(&self, desired: u32, placement: Option<&Placement>) -> Result<ScaleOutcome, ProviderError> {
        let _ = placement;
        self.scale_to(desired).await
    }

    /// The most members this target can hold now, and why, if it knows a
    /// limit below the pool's `max` (free host memory, an account quota).
    /// Asked before each decision; the pipeline cuts a scale-up to it.
    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        let _ = state;
        None
    }

    /// Whether [`Target::record_event`] records anything. The control loop
    /// builds and queues events only for a target that says yes, so a pool
    /// on a target without a record of its own (and every simulated step)
    /// pays nothing for them.
    fn records_events(&self) -> bool {
        false
    }

    /// Record what the pool did to this target, or could not do, where the
    /// infrastructure shows it next to the workload (a Kubernetes Event on
    /// the scaled object). Best-effort: the control loop calls it from a
    /// task of its own with a timeout and never waits for it, so it may
    /// take its time, and an error is only logged. Default: nothing.
    async fn record_event(&self, event: &TargetEvent) -> Result<(), ProviderError> {
        let _ = event;
        Ok(())
    }

    /// Stop everything this target started (graceful host shutdown). Targets
    /// that manage long-lived infrastructure leave it alone.
    async fn shutdown(&self) {}
}

/// Which `n` members to remove: idle before busy, then unhealthy before
/// healthy, then oldest first. Members already draining or stopped are not
/// candidates. Returns member ids, best victim first.
pub fn pick_victims(members: &[Member], n: usize) -> Vec<String> {
    let mut candidates: Vec<&Member> = members
        .iter()
        .filter(|m| !matches!(m.state, MemberState::Draining | MemberState::Stopped))
        .collect();
    // A member that is not serving yet or is in back-off costs nothing to
    // lose, so it goes first; then idle, unhealthy, old.
    candidates.sort_by_key(|m| {
        let not_serving = m.state != MemberState::Active;
        (!not_serving, m.busy == Some(true), m.healthy, m.started_at)
    });
    candidates.into_iter().take(n).map(|m| m.id.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, state: MemberState, started_at: i64, busy: Option<bool>, healthy: bool) -> Member {
        Member {
            id: id.into(),
            state,
            started_at,
            healthy,
            busy,
            cpu_percent: None,
            memory_bytes: None,
            restarts: 0,
            last_error: None,
        }
    }

    #[test]
    fn victims_idle_then_unhealthy_then_oldest() {
        use MemberState::*;
        let members = vec![
            member("busy-old", Active, 1, Some(true), true),
            member("idle-new", Active, 9, Some(false), true),
            member("idle-old", Active, 2, Some(false), true),
            member("idle-sick", Active, 8, Some(false), false),
            member("draining", Draining, 0, Some(false), true),
            member("starting", Starting, 10, None, true),
        ];
        assert_eq!(pick_victims(&members, 5), ["starting", "idle-sick", "idle-old", "idle-new", "busy-old"]);
        assert_eq!(pick_victims(&members, 1), ["starting"]);
    }

    #[test]
    fn capacity_counts_booting_not_draining() {
        use MemberState::*;
        let s = PoolState {
            members: vec![
                member("a", Active, 0, None, true),
                member("b", Starting, 0, None, true),
                member("c", Draining, 0, None, true),
                member("d", Backoff, 0, None, false),
            ]
            .into(),
        };
        assert_eq!((s.running(), s.booting(), s.capacity()), (1, 2, 3));
    }
}
