//! What the rest of the host holds of a running pool: a [`PoolHandle`] to
//! send it [`PoolCommand`]s, read its [`PoolSnapshot`] and its recent
//! decisions, and its lag histograms.
//!
//! Why apart from the loop: the API, the metrics exposition and the
//! dashboard need these nouns and nothing of how a tick runs. The pool's
//! task is the only writer (through the `pub(super)` methods here), so
//! nothing else ever mutates what the journal persists; readers take a
//! lock for as long as a clone.

use std::collections::VecDeque;
use std::sync::Mutex;

use scalewise_providers::PoolState;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::decide::budget::BudgetStatus;
use crate::decide::record::DecisionRecord;
use crate::timing::LatencyHistogram;

/// Decisions kept in memory per pool for the API and the dashboard.
const RECENT: usize = 600;

/// What the API may ask of a running pool.
pub enum PoolCommand {
    /// `hold_secs`: how long it holds; `None`: the pool's `manual_hold_secs`.
    Scale { to: u32, reason: String, hold_secs: Option<u64>, reply: oneshot::Sender<Result<u32, String>> },
    Pause { paused: bool, reply: oneshot::Sender<Result<(), String>> },
    Approve { seq: u64, reply: oneshot::Sender<Result<u32, String>> },
    /// A config reload changed the pool but not its provider: decide by
    /// these settings from the next tick on. Their target is the pool's
    /// own (a pool whose provider changes is restarted instead). The reply
    /// says what the pool forgot because the change invalidated it.
    Reconfigure { settings: Box<super::pool::PoolSettings>, reply: oneshot::Sender<Vec<String>> },
    /// The pool is about to stop because a reload removed it: journal why.
    /// The reply hands on the pool's advisor, if it has one, so that a pool
    /// restarted on a new target keeps its hourly cap and what it heard.
    Retire { note: String, reply: oneshot::Sender<Option<super::advisor::Advisor>> },
    /// Make the candidate set the serving one (between two ticks).
    Promote { reply: oneshot::Sender<Result<String, String>> },
    /// Return to the set the last promotion replaced.
    Rollback { reply: oneshot::Sender<Result<String, String>> },
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PendingApproval {
    pub seq: u64,
    pub from: u32,
    pub to: u32,
    pub expires_at: i64,
    /// Why it waits, when not only for its size: the advisor's objection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the API and the dashboard read about a pool.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PoolSnapshot {
    pub id: String,
    pub target: &'static str,
    pub min: u32,
    pub max: u32,
    pub interval_ms: u64,
    pub dry_run: bool,
    pub paused: bool,
    pub running: u32,
    pub booting: u32,
    pub desired: u32,
    pub last_decision_at: Option<i64>,
    pub members: PoolState,
    pub pending_approval: Option<PendingApproval>,
    pub last_error: Option<String>,
    pub journal_error: Option<String>,
    pub decisions: u64,
    pub actions: u64,
    /// The budget's standing, if the pool has one.
    pub budget: Option<BudgetStatus>,
    /// A manual scale's hold, while it lasts (its end may have passed
    /// since the last decision, which then lifts it).
    pub hold: Option<crate::decide::guardrails::Hold>,
    /// What the capacity costs per hour, when the pool has a catalog.
    pub cost_per_hour: Option<f64>,
    /// Money spent so far in the budget period (accrued with or without a budget).
    pub spent: f64,
    /// Actions whose target call failed, by what asked for them (`policy`,
    /// `manual`, `approval`), then by the error: `launch`, `remove`,
    /// `read`, `provider` (anything else the platform said) or
    /// `not_leading` (this replica could not confirm its lease).
    pub failed_actions: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// How late ticks were recorded, from their due time, since the host
    /// started: the median and the 99th percentile in ms (`/metrics` has
    /// the whole histogram).
    pub tick_lag_p50_ms: Option<f64>,
    /// The candidate set in shadow, and how its decisions differed.
    pub candidate: Option<super::pool::Divergence>,
    /// The set a promotion replaced: what `rollback` returns to.
    pub previous: Option<String>,
    pub tick_lag_p99_ms: Option<f64>,
    /// The pool's advisor, if it has one: calls, the cap, the spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisor: Option<super::advisor::AdvisorStatus>,
}

/// Picks one of a pool's lag histograms ([`PoolHandle::lag`] or
/// [`PoolHandle::decide_lag`]), for code that reports both alike.
pub type LagOf = fn(&PoolHandle) -> &LatencyHistogram;

pub struct PoolHandle {
    pub id: String,
    commands: mpsc::Sender<PoolCommand>,
    snapshot: Mutex<PoolSnapshot>,
    recent: Mutex<VecDeque<DecisionRecord>>,
    /// From each tick's due time to its decision being recorded (durable
    /// in the journal, when there is one).
    pub lag: LatencyHistogram,
    /// From each tick's due time to its decision being made, before the
    /// journal: how late the evaluation itself ran. The difference from
    /// [`lag`](Self::lag) is the wait for the journal's disk.
    pub decide_lag: LatencyHistogram,
}

impl PoolHandle {
    pub fn snapshot(&self) -> PoolSnapshot {
        self.snapshot.lock().unwrap().clone()
    }

    /// Recent decisions, newest first, with `seq < before`.
    pub fn recent(&self, before: Option<u64>, limit: usize) -> Vec<DecisionRecord> {
        let r = self.recent.lock().unwrap();
        r.iter().rev().filter(|d| before.is_none_or(|b| d.seq < b)).take(limit).cloned().collect()
    }

    pub async fn command(&self, c: PoolCommand) -> Result<(), String> {
        self.commands.send(c).await.map_err(|_| "the pool has stopped".to_owned())
    }

    pub(super) fn new(id: String, commands: mpsc::Sender<PoolCommand>, recent: VecDeque<DecisionRecord>) -> Self {
        Self { id, commands, snapshot: Mutex::default(), recent: Mutex::new(recent), lag: LatencyHistogram::default(), decide_lag: LatencyHistogram::default() }
    }

    /// Look at the newest decision.
    pub(super) fn last<R>(&self, f: impl FnOnce(&DecisionRecord) -> R) -> Option<R> {
        self.recent.lock().unwrap().back().map(f)
    }

    /// Put a record in the in-memory window, replacing an earlier copy of
    /// the same decision (its intent).
    pub(super) fn remember(&self, record: DecisionRecord) {
        let mut r = self.recent.lock().unwrap();
        if r.back().is_some_and(|b| b.seq == record.seq) {
            r.pop_back();
        }
        r.push_back(record);
        while r.len() > RECENT {
            r.pop_front();
        }
    }

    /// Replace the snapshot with one made from the one it replaces.
    pub(super) fn publish(&self, next: impl FnOnce(&PoolSnapshot) -> PoolSnapshot) {
        let mut s = self.snapshot.lock().unwrap();
        *s = next(&s);
    }

    /// Show a tick's error at once, the members as last read.
    pub(super) fn show_error(&self, error: Option<String>) {
        self.snapshot.lock().unwrap().last_error = error;
    }
}
