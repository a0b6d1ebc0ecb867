//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does
//! it, driving a [`Leadership`] gate.
//!
//! Why each rule:
//! - A follower takes the lease over only after the lease record has stayed
//!   unchanged for a whole `lease_duration` *on its own clock*, counted
//!   from the start of the look before the one that first saw the record
//!   (the earliest the record can have been written). It never compares the
//!   holder's `renewTime` with its own clock, so skew between machines
//!   cannot make two leaders.
//! - The leader acts only until `renew_deadline` (shorter than the lease
//!   duration) after the start of its last successful renewal. A leader cut
//!   off from the API server stops acting before anyone can take over.
//! - Every write is a `replace` carrying the `resourceVersion` that was read,
//!   so two replicas racing for the lease cannot both win: the API server
//!   answers the loser `409 Conflict`, and the loser follows.
//! - Before each action the pool asks [`LeaseElector::still_held`], which
//!   re-reads the lease: a lease stolen since the last renewal stops the old
//!   leader before its next call to a target, not one renewal later.
//! - On a graceful stop the leader writes the lease free (no holder, one
//!   second long), so a standby takes over at its next retry instead of
//!   waiting the lease out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use super::{LeaseCheck, Leadership};
use crate::targets::kubernetes::api_error;

/// How a replica takes part in the election.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    /// The Lease object's name; every replica of one deployment uses the same.
    pub name: String,
    /// This replica's identity (the pod name in a Deployment).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps acting after a renewal starts; shorter than
    /// the lease duration.
    pub renew_deadline: Duration,
    /// How often the leader renews and a follower looks.
    pub retry_period: Duration,
}

/// The last lease record this replica saw, and when it first saw it.
struct Observed {
    record: (Option<String>, Option<MicroTime>, Option<String>),
    at: Instant,
}

pub struct LeaseElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leadership: Leadership,
    observed: Mutex<Option<Observed>>,
    /// When the previous look at the lease began.
    last_look: Mutex<Option<Instant>>,
}

fn holder_of(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty())
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaseElector {
    pub fn new(client: kube::Client, config: LeaseConfig, leadership: Leadership) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self { api, config, leadership, observed: Mutex::new(None), last_look: Mutex::new(None) }
    }

    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    fn spec(&self, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquire,
            renew_time: Some(now_micro()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round of the election; returns how long to wait before the next.
    pub async fn step(&self) -> Duration {
        let retry = self.config.retry_period;
        let started = Instant::now();
        let lease = match self.api.get_opt(&self.config.name).await {
            Ok(l) => l,
            Err(e) => {
                self.leadership.renewal_failed(format!("cannot read Lease {}/{}: {}", self.config.namespace, self.config.name, api_error(&e)));
                return retry;
            }
        };
        let Some(lease) = lease else {
            let fresh = Lease {
                metadata: ObjectMeta { name: Some(self.config.name.clone()), namespace: Some(self.config.namespace.clone()), ..Default::default() },
                spec: Some(self.spec(Some(now_micro()), 0)),
            };
            match self.api.create(&PostParams::default(), &fresh).await {
                Ok(_) => self.won(started, "created the lease"),
                Err(e) => self.leadership.follower(None, format!("creating the lease failed: {}", api_error(&e))),
            }
            return retry;
        };
        let holder = holder_of(&lease);
        let spec = lease.spec.clone().unwrap_or_default();
        let record = (holder.clone(), spec.renew_time.clone(), lease.metadata.resource_version.clone());
        let duration = spec.lease_duration_seconds.map_or(self.config.lease_duration, |s| Duration::from_secs(s.max(0) as u64));
        // The earliest a record first seen now can count from and stay safe:
        // the holder stops acting renew_deadline after its write.
        let safe_from = started.checked_sub(duration.saturating_sub(self.config.renew_deadline)).unwrap_or(started);
        let seen_at = {
            let mut o = self.observed.lock().unwrap();
            let last_look = self.last_look.lock().unwrap().replace(started);
            match o.as_ref() {
                Some(prev) if prev.record == record => prev.at,
                _ => {
                    // The record changed after our previous look began, so
                    // that is the earliest it can have been written. Counting
                    // from there (not from now) lets a dead leader be replaced
                    // within one lease duration of its last renewal. Never
                    // earlier than `safe_from`, in case looks failed between.
                    let at = last_look.map_or(started, |l| l.max(safe_from));
                    *o = Some(Observed { record, at });
                    at
                }
            }
        };
        let mine = holder.as_deref() == Some(self.config.identity.as_str());
        let expires = seen_at + duration;
        if !mine && holder.is_some() && Instant::now() < expires {
            let left = expires.saturating_duration_since(Instant::now());
            self.leadership.follower(holder.clone(), format!("{} holds the lease (expires in {:.1}s unless renewed)", holder.unwrap_or_default(), left.as_secs_f64()));
            // Look again at the retry period, or right when the lease would
            // expire if that is sooner, so a dead leader is replaced promptly.
            return retry.min(left + Duration::from_millis(5));
        }
        let mut next = lease.clone();
        let transitions = spec.lease_transitions.unwrap_or(0);
        next.spec = Some(if mine {
            self.spec(spec.acquire_time.clone(), transitions)
        } else {
            self.spec(Some(now_micro()), transitions + 1)
        });
        match self.api.replace(&self.config.name, &PostParams::default(), &next).await {
            Ok(written) => {
                *self.observed.lock().unwrap() = Some(Observed {
                    record: (holder_of(&written), written.spec.as_ref().and_then(|s| s.renew_time.clone()), written.metadata.resource_version.clone()),
                    at: started,
                });
                self.won(started, if mine { "renewed" } else { "took the lease over" });
            }
            Err(e) if is_conflict(&e) => {
                self.leadership.follower(None, "another replica wrote the lease first (409 Conflict)".into());
            }
            Err(e) => {
                let detail = format!("cannot write Lease {}/{}: {}", self.config.namespace, self.config.name, api_error(&e));
                if mine { self.leadership.renewal_failed(detail) } else { self.leadership.follower(holder, detail) }
            }
        }
        retry
    }

    fn won(&self, started: Instant, how: &str) {
        let was = self.leadership.is_leader();
        self.leadership.renewed(started, self.config.renew_deadline);
        if !was {
            tracing::info!(identity = %self.config.identity, lease = %self.config.name, "leading: {how}");
        }
    }

    /// Free the lease if this replica holds it (graceful shutdown).
    pub async fn release(&self) {
        if !self.leadership.is_leader() {
            return;
        }
        self.leadership.follower(None, "released the lease on shutdown".into());
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else { return };
        if holder_of(&lease).as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now_micro());
        }
        match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(identity = %self.config.identity, "released the lease"),
            Err(e) => tracing::warn!("could not release the lease: {}", api_error(&e)),
        }
    }

    /// Take part until `stop` turns true, then release the lease.
    pub async fn run(self: std::sync::Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let wait = self.step().await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        self.release().await;
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[async_trait]
impl LeaseCheck for LeaseElector {
    async fn still_held(&self) -> Result<(), String> {
        if !self.leadership.is_leader() {
            return Err(self.leadership.standby_reason());
        }
        match self.api.get_opt(&self.config.name).await {
            Ok(Some(l)) if holder_of(&l).as_deref() == Some(self.config.identity.as_str()) => Ok(()),
            Ok(l) => {
                let holder = l.as_ref().and_then(holder_of);
                self.leadership.follower(holder.clone(), format!("the lease was taken by {}", holder.as_deref().unwrap_or("nobody")));
                Err(self.leadership.standby_reason())
            }
            Err(e) => Err(format!("cannot confirm the lease before acting: {}", api_error(&e))),
        }
    }
}
