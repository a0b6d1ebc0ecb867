//! Whether this replica may act: the gate leader election sets and every
//! pool reads before it touches a target.
//!
//! Several host replicas can run side by side for availability; all of them
//! decide (so a standby is warm and its dashboard is live) but only the
//! holder of the lease acts. The gate is deliberately pessimistic: holding
//! the lease is not enough, the last renewal must also be recent enough that
//! no other replica can have taken the lease over since. A leader whose
//! renewals stall (a partition, a stolen lease) stops acting on its own
//! before the lease expires for everyone else, so two replicas never act at
//! once even if they cannot talk to each other.
//!
//! The gate itself knows nothing of Kubernetes: the elector that drives it,
//! on a Kubernetes Lease, is [`lease`].

#[cfg(feature = "kubernetes")]
pub mod lease;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

/// A fresh look at the lease, taken just before acting.
#[async_trait]
pub trait LeaseCheck: Send + Sync {
    /// `Ok` if this replica still holds the lease; otherwise why not.
    async fn still_held(&self) -> Result<(), String>;
}

/// What a replica knows about the lease, for the API.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LeaderView {
    /// This replica's identity.
    pub identity: String,
    /// Whether this replica may act now.
    pub leading: bool,
    /// Who holds the lease, as last read.
    pub holder: Option<String>,
    /// Times this replica has become leader.
    pub acquired: u32,
    /// Why this replica is not leading, or the last renewal error.
    pub detail: Option<String>,
}

struct State {
    holder: Option<String>,
    /// Acting is allowed until this instant (last renewal + renew deadline).
    until: Option<Instant>,
    acquired: u32,
    detail: Option<String>,
}

/// The shared gate. Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    identity: Arc<str>,
    state: Arc<Mutex<State>>,
    check: Arc<OnceLock<Weak<dyn LeaseCheck>>>,
}

impl Leadership {
    pub fn new(identity: impl Into<String>) -> Self {
        let identity: String = identity.into();
        Self {
            identity: identity.into(),
            state: Arc::new(Mutex::new(State { holder: None, until: None, acquired: 0, detail: Some("not yet elected".into()) })),
            check: Arc::new(OnceLock::new()),
        }
    }

    /// Confirm the lease with `check` before each action (the elector).
    pub fn confirm_with(&self, check: Weak<dyn LeaseCheck>) {
        let _ = self.check.set(check);
    }

    /// Right before acting: `Ok` only if this replica leads and, where an
    /// elector is attached, the lease still names it.
    pub async fn confirm(&self) -> Result<(), String> {
        if !self.is_leader() {
            return Err(self.standby_reason());
        }
        match self.check.get().and_then(Weak::upgrade) {
            Some(check) => check.still_held().await,
            None => Ok(()),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// May this replica act now?
    pub fn is_leader(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.until.is_some_and(|u| Instant::now() < u)
    }

    /// The lease was acquired or renewed at `at`: act until `at + deadline`.
    pub fn renewed(&self, at: Instant, deadline: Duration) {
        let mut s = self.state.lock().unwrap();
        if s.until.is_none_or(|u| Instant::now() >= u) {
            s.acquired += 1;
        }
        s.holder = Some(self.identity.to_string());
        s.until = Some(at + deadline);
        s.detail = None;
    }

    /// Someone else holds the lease (or nobody, `holder` None); stop acting now.
    pub fn follower(&self, holder: Option<String>, detail: String) {
        let mut s = self.state.lock().unwrap();
        s.holder = holder;
        s.until = None;
        s.detail = Some(detail);
    }

    /// A renewal failed; keep acting only until the current deadline passes.
    pub fn renewal_failed(&self, detail: String) {
        self.state.lock().unwrap().detail = Some(detail);
    }

    /// Why this replica may not act, in words, for records and API errors.
    pub fn standby_reason(&self) -> String {
        let v = self.view();
        match (&v.holder, &v.detail) {
            (Some(h), _) if *h != v.identity => format!("standby: {h} holds the lease, this replica ({}) does not act", v.identity),
            (_, Some(d)) => format!("standby ({}): {d}", v.identity),
            _ => format!("standby ({}): the lease's renewal deadline has passed", v.identity),
        }
    }

    pub fn view(&self) -> LeaderView {
        let leading = self.is_leader();
        let s = self.state.lock().unwrap();
        LeaderView { identity: self.identity.to_string(), leading, holder: s.holder.clone(), acquired: s.acquired, detail: s.detail.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acting_stops_at_the_renew_deadline_without_any_call() {
        let l = Leadership::new("a");
        assert!(!l.is_leader(), "nobody leads before an election");
        l.renewed(Instant::now(), Duration::from_millis(50));
        assert!(l.is_leader());
        l.renewal_failed("apiserver unreachable".into());
        assert!(l.is_leader(), "a failed renewal keeps the lease until its deadline");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!l.is_leader(), "past the deadline the replica stops acting by itself");
        assert!(l.standby_reason().contains("apiserver unreachable"), "{}", l.standby_reason());
    }

    #[test]
    fn losing_the_lease_stops_acting_at_once_and_counts_acquisitions() {
        let l = Leadership::new("a");
        l.renewed(Instant::now(), Duration::from_secs(10));
        l.renewed(Instant::now(), Duration::from_secs(10));
        assert_eq!(l.view().acquired, 1, "a renewal is not a new acquisition");
        l.follower(Some("b".into()), "b took the lease over".into());
        assert!(!l.is_leader());
        assert!(l.standby_reason().contains("b holds the lease"), "{}", l.standby_reason());
        l.renewed(Instant::now(), Duration::from_secs(10));
        assert_eq!(l.view().acquired, 2);
    }
}
