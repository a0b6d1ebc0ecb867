//! One pool's task: tick, collect, decide, act, record.
//!
//! The task owns the pool's [`PoolMemory`]; the API talks to it through a
//! [`PoolHandle`] (see [`super::handle`]: commands over a channel, and a
//! snapshot that the task refreshes every tick), so nothing else ever
//! mutates what the journal persists. What to decide is
//! [`pipeline::decide`]'s; this task supplies its inputs (the time, the
//! mode, the target's state, the metric windows) and carries out its answer.
//! What it did to the target, and what it was refused, it tells the target
//! on the side ([`events`]), never waiting for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use scalewise_providers::leader::Leadership;
use scalewise_providers::{MetricSource, PoolState, Sample, Target, Window};
use scalewise_sdk::{Action, MetricWindow};
use tokio::sync::{mpsc, watch};

use super::advisor::{self, Advisor, Gate};
use super::clock::{Clock, phase_of, until_next_tick};
use super::handle::{PendingApproval, PoolCommand, PoolHandle, PoolSnapshot};
use crate::decide::budget;
use crate::decide::guardrails::Scaled;
use crate::decide::memory::PoolMemory;
use crate::decide::pipeline::{self, Experts, OperatorChange, PoolPlan, TickInput};
use crate::decide::record::*;
use crate::journal::Journal;

/// An action that has not settled after this long no longer blocks the next.
const IN_FLIGHT_TIMEOUT_MS: i64 = 300_000;

/// One metric a pool collects each tick.
pub struct MetricSpec {
    pub name: String,
    pub source: Arc<dyn MetricSource>,
    pub query: String,
    pub window: Duration,
    pub step: Duration,
}

pub struct PoolSettings {
    pub plan: PoolPlan,
    pub interval: Duration,
    pub dry_run: bool,
    /// Changes larger than this many members wait for approval.
    pub approval_above: Option<u32>,
    pub approval_ttl: Duration,
    pub metrics: Vec<MetricSpec>,
    pub target: Arc<dyn Target>,
    /// Set when several replicas run: only the lease holder acts.
    pub leader: Option<Leadership>,
    /// A language model asked about the pool's decisions, off the tick path.
    pub advisor: Option<Advisor>,
}

/// A pool's loop. [`start`] runs it on its own task on the wall clock;
/// the simulator builds one with [`prepare`] and calls [`PoolLoop::tick`]
/// once per virtual step, so both run exactly this code.
pub struct PoolLoop {
    s: PoolSettings,
    commands: Option<mpsc::Receiver<PoolCommand>>,
    experts: Arc<dyn Experts>,
    journal: Option<Journal>,
    clock: Arc<dyn Clock>,
    handle: Arc<PoolHandle>,
    memory: PoolMemory,
    pending: Option<PendingApproval>,
    last_error: Option<String>,
    journal_error: Option<String>,
    decisions: u64,
    actions: u64,
    /// On standby: the capacity at the last tick, to see the leader's actions.
    seen_capacity: Option<u32>,
    /// The last error of each metric, so a lasting one is logged once.
    metric_errors: std::collections::HashMap<String, String>,
    /// Actions whose target call failed, by cause.
    failed_actions: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// The target's events: each action and refusal, queued, never awaited.
    events: events::Announcer,
    /// The candidate set's shadow: its states, divergence, and the set a
    /// promotion replaced.
    shadow: candidate::Shadow,
    /// What each decision is kept with so that it can be replayed.
    replayable: replayable::Replayable,
}

/// Start a pool: reconcile its target, restore its memory from the journal,
/// and run its loop until `shutdown` turns true (finishing the tick in hand).
pub async fn start(
    s: PoolSettings,
    experts: Arc<dyn Experts>,
    journal: Option<Journal>,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<PoolHandle>, tokio::task::JoinHandle<()>), String> {
    let (handle, mut runner) = prepare(s, experts, journal, clock).await?;
    let task = tokio::spawn(async move { runner.run(shutdown).await });
    Ok((handle, task))
}

/// Reconcile the pool's target and restore its memory from the journal,
/// without starting its timer: the caller ticks it.
pub async fn prepare(
    s: PoolSettings,
    experts: Arc<dyn Experts>,
    journal: Option<Journal>,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<PoolHandle>, PoolLoop), String> {
    let id = s.plan.id.clone();
    // A target that cannot be read now (an endpoint down, credentials not
    // yet mounted) must not keep the host from starting: the pool reports
    // why and every tick tries to read it again.
    let (state, first_error) = match s.target.reconcile().await {
        Ok(state) => (state, None),
        Err(e) => {
            tracing::warn!(pool = %id, "cannot read the pool at start; it decides once the target answers: {e}");
            (PoolState::default(), Some(e.to_string()))
        }
    };
    let memory = match &journal {
        Some(j) => j.memory(&id).map_err(|e| format!("pool `{id}`: {e}"))?.unwrap_or_default(),
        None => PoolMemory::default(),
    };
    let recent: VecDeque<DecisionRecord> = match &journal {
        Some(j) => j.decisions(&id, None, 120).unwrap_or_default().into_iter().rev().collect(),
        None => VecDeque::new(),
    };
    if memory.seq > 0 {
        tracing::info!(pool = %id, seq = memory.seq, members = state.capacity(), "resumed from the journal");
    }
    let (tx, rx) = mpsc::channel(16);
    let handle = Arc::new(PoolHandle::new(id.clone(), tx, recent));
    let events = events::Announcer::new(&id, &s.target);
    let shadow = candidate::Shadow::default();
    let replayable = replayable::Replayable::new(&memory);
    let mut runner = PoolLoop { s, commands: Some(rx), experts, journal, clock, handle: handle.clone(), memory, replayable, pending: None, last_error: first_error, journal_error: None, decisions: 0, actions: 0, seen_capacity: None, metric_errors: Default::default(), failed_actions: Default::default(), events, shadow };
    if let Some(a) = runner.s.advisor.as_mut() {
        a.restore_calls(&runner.memory.advisor_calls, runner.clock.now_ms());
    }
    if let Some(note) = runner.restore_promotion() {
        tracing::info!(pool = %runner.s.plan.id, "{note}");
    }
    runner.shadow.reconfigured(&runner.s.plan, runner.clock.now_ms());
    runner.publish(state, None);
    Ok((handle, runner))
}

impl PoolLoop {
    /// Decisions made and actions taken so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.decisions, self.actions)
    }

    /// Look at the newest decision, as the API shows it.
    pub fn inspect_last<R>(&self, f: impl FnOnce(&DecisionRecord) -> R) -> Option<R> {
        self.handle.last(f)
    }

    /// Whether another replica holds the lease.
    fn standby(&self) -> bool {
        self.s.leader.as_ref().is_some_and(|l| !l.is_leader())
    }

    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) {
        let mut commands = self.commands.take().expect("a pool loop runs once");
        let supervisor = self.s.target.clone();
        loop {
            // Each turn: a reload may have changed the interval.
            let phase = phase_of(&self.s.plan.id, self.s.interval);
            let wait = until_next_tick(self.clock.now_ms(), self.s.interval, phase);
            let due = tokio::time::Instant::now() + wait;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    self.tick_due(Some(due)).await;
                    self.handle.lag.record(due.elapsed());
                }
                Some(c) = commands.recv() => self.on_command(c).await,
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        tracing::info!(pool = %self.s.plan.id, "stopping");
        supervisor.shutdown().await;
    }

    async fn collect(&mut self, now: i64) -> (Vec<MetricWindow>, Vec<MetricReading>) {
        let pool = &self.s.plan.id;
        let logged = &mut self.metric_errors;
        let queries = self.s.metrics.iter().map(|m| async move {
            let window = Window { end: now, length_ms: m.window.as_millis() as i64, step_ms: m.step.as_millis().max(1) as i64 };
            let r = tokio::time::timeout(Duration::from_secs(2), m.source.query(&m.query, window)).await;
            let r: Result<Vec<Sample>, String> = match r {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("metric source `{}` did not answer within 2s", m.source.kind())),
            };
            (m.name.clone(), r)
        });
        let mut windows = Vec::new();
        let mut readings = Vec::new();
        for (name, r) in futures_join(queries).await {
            match r {
                Ok(samples) => {
                    if logged.remove(&name).is_some() {
                        tracing::info!(pool = %pool, metric = %name, "metric answers again");
                    }
                    readings.push(MetricReading { name: name.clone(), samples: samples.len(), last: samples.last().map(|s| s.value), error: None });
                    windows.push(MetricWindow::new(name, samples));
                }
                Err(e) => {
                    // Once per cause: a metric that stays missing is in
                    // every decision record, not in every log line.
                    if logged.get(&name) != Some(&e) {
                        tracing::warn!(pool = %pool, metric = %name, "{e}");
                        logged.insert(name.clone(), e.clone());
                    }
                    readings.push(MetricReading { name, samples: 0, last: None, error: Some(e) });
                }
            }
        }
        (windows, readings)
    }

    /// One decision: read the target, collect the metric windows, decide,
    /// act (or record only), journal, publish.
    pub async fn tick(&mut self) {
        self.tick_due(None).await
    }

    /// A tick the loop scheduled for `due`, which times how late its
    /// decision was made.
    async fn tick_due(&mut self, due: Option<tokio::time::Instant>) {
        self.decide_tick(due).await;
        // A promoted set that keeps faulting is rolled back after its
        // decision is recorded, as a record of its own.
        if let Some(why) = self.shadow.rollback_due.take() {
            self.auto_rollback(&why).await;
        }
    }

    async fn decide_tick(&mut self, due: Option<tokio::time::Instant>) {
        let now = self.clock.now_ms();
        let mut state = match self.s.target.state().await {
            Ok(s) => s,
            Err(e) => {
                self.last_error = Some(e.to_string());
                tracing::warn!(pool = %self.s.plan.id, "cannot read the pool, skipping this tick: {e}");
                // Show the error now; the members stay as last read.
                self.handle.show_error(self.last_error.clone());
                return;
            }
        };
        self.observe_leader(&state, now);
        if self.settle_in_flight(&state, now).await {
            // An interrupted action was just completed: decide on what is there now.
            state = self.s.target.state().await.unwrap_or(state);
        }
        if self.pending.as_ref().is_some_and(|p| now >= p.expires_at) {
            tracing::info!(pool = %self.s.plan.id, "approval request expired");
            self.pending = None;
        }
        let (metrics, readings) = self.collect(now).await;
        let recent: Vec<Action> = self.memory.guard.recent();
        let headroom = self.s.target.headroom(&state).await;
        let mode = Mode::of(self.s.dry_run, self.memory.paused, self.standby());
        // The candidate, if any, decides after on copies of the same input.
        let shadow = self.s.plan.candidate.is_some().then(|| (metrics.clone(), readings.clone(), recent.clone(), headroom.clone(), self.memory.sans_states()));
        let inputs = self.journal.is_some().then(|| self.replayable.inputs(&self.memory, self.memory.seq + 1, &metrics, headroom.clone()));
        // What the advisor's prompt needs besides the record.
        let asking = self.s.advisor.as_ref().map(|_| (advisor::prompt::summarize(&metrics), recent.clone()));
        let advice = self.s.advisor.as_ref().and_then(|a| a.ballot(now));
        let input = TickInput { plan: &self.s.plan, now, mode, running: state.running(), booting: state.booting(), metrics, readings, recent, headroom, advice: advice.clone() };
        let mut record = pipeline::decide(self.experts.as_ref(), input, &mut self.memory);
        record.inputs = inputs;
        if let Some((metrics, readings, recent, headroom, before)) = shadow {
            let plan = self.s.plan.candidate.as_deref().expect("checked above").clone();
            let input = TickInput { plan: &plan, now, mode, running: state.running(), booting: state.booting(), metrics, readings, recent, headroom, advice };
            self.shadow_tick(input, &before, &mut record);
        }
        let current = state.capacity();
        let gate = match (self.s.advisor.as_mut(), asking) {
            (Some(a), Some((metrics, recent))) => {
                let facts = advisor::Facts { min: self.s.plan.min, max: self.s.plan.max, interval_ms: self.s.interval.as_millis() as u64, metrics: &metrics, recent: &recent };
                a.after_decision(&mut record, &facts, current, &self.clock, now)
            }
            _ => Gate::Proceed,
        };
        if let Some(a) = &self.s.advisor {
            self.memory.advisor_calls = a.calls_by_bucket(now);
        }
        if let Some(due) = due {
            self.handle.decide_lag.record(due.elapsed());
        }
        self.watch_promotion(&record);
        self.accrue_spend(&mut record, &state, now);
        if record.desired != current {
            let (from, to) = (current, record.desired);
            let reason = record.consensus.explanation.clone();
            let objection = match &gate {
                Gate::Object(why) => Some(format!("the advisor objects: {why}")),
                _ => None,
            };
            if record.mode != Mode::Live {
                record.action = Some(ActionRecord { from, to, cause: "policy".into(), reason, outcome: Outcome::NotTaken });
            } else if let Gate::Hold(why) = gate {
                record.action = Some(ActionRecord { from, to, cause: "policy".into(), reason: format!("{reason}; {why}"), outcome: Outcome::AwaitingReview });
            } else if objection.is_some() || self.s.approval_above.is_some_and(|n| from.abs_diff(to) > n) {
                // The same change asked for again keeps its request: its
                // number, which an operator may be about to approve, and its
                // expiry. A different change replaces it.
                if !self.pending.as_ref().is_some_and(|p| p.from == from && p.to == to) {
                    let expires_at = now + self.s.approval_ttl.as_millis() as i64;
                    self.pending = Some(PendingApproval { seq: record.seq, from, to, expires_at, reason: None });
                }
                if let Some(p) = self.pending.as_mut() {
                    // The advisor's standing objection, or none since it agreed.
                    p.reason = objection.clone();
                }
                let reason = objection.map_or(reason.clone(), |why| format!("{reason}; {why}"));
                record.action = Some(ActionRecord { from, to, cause: "policy".into(), reason, outcome: Outcome::AwaitingApproval });
            } else {
                // A request for approval is of a change not taken: taking
                // one now (the advisor agreed since, or the change shrank
                // below the limit) ends it.
                self.pending = None;
                self.act(&mut record, from, to, "policy", reason, now).await;
                return self.finish(record, None).await;
            }
        }
        self.persist(&record).await;
        self.finish(record, Some(state)).await;
    }

    /// Take an action: journal the intent, call the target, journal the outcome.
    async fn act(&mut self, record: &mut DecisionRecord, from: u32, to: u32, cause: &str, reason: String, now: i64) {
        let scaled = Scaled { at: now, from, to };
        self.memory.guard.record_action(scaled);
        self.memory.guard.in_flight = Some(scaled);
        record.action = Some(ActionRecord { from, to, cause: cause.into(), reason, outcome: Outcome::Pending });
        self.persist(record).await;
        self.handle.remember(record.clone());
        if let Some(delay) = failpoint_act_delay() {
            tracing::warn!(pool = %self.s.plan.id, ?delay, "failpoint: holding between intent and action");
            tokio::time::sleep(delay).await;
        }
        let placement = record.placement.clone().filter(|p| p.total() == to);
        let (outcome, error) = match self.confirm_leading().await {
            Ok(()) => self.scale_target(to, placement.as_ref()).await,
            Err(why) => (Outcome::Failed(why), "not_leading"),
        };
        if outcome == Outcome::Done && placement.is_some() {
            self.memory.placement = placement;
        }
        tracing::info!(pool = %self.s.plan.id, from, to, cause, ?outcome, "scaled");
        self.actions += 1;
        if matches!(outcome, Outcome::Failed(_)) {
            *self.failed_actions.entry(cause.to_owned()).or_default().entry(error.to_owned()).or_default() += 1;
        }
        if let Some(a) = record.action.as_mut() {
            a.outcome = outcome;
        }
        self.persist(record).await;
    }

    /// On standby, the leader's actions show only as changes of capacity:
    /// remember them as actions, so that when this replica takes over, the
    /// cooldowns and step limits count what the old leader did.
    fn observe_leader(&mut self, state: &PoolState, now: i64) {
        let standby = self.standby();
        let current = state.capacity();
        match self.seen_capacity.replace(current) {
            Some(before) if standby && before != current => {
                self.memory.guard.record_action(Scaled { at: now, from: before, to: current });
            }
            _ => {}
        }
    }

    /// Right before calling the target: this replica must still hold the
    /// lease (re-read, so a lease stolen since the last renewal stops it).
    async fn confirm_leading(&self) -> Result<(), String> {
        match &self.s.leader {
            Some(l) => l.confirm().await.inspect_err(|why| tracing::warn!(pool = %self.s.plan.id, "not acting: {why}")),
            None => Ok(()),
        }
    }

    /// Ask the target for `to` members; a failure is the pool's last error.
    /// With the outcome, the kind of error (empty when done).
    async fn scale_target(&mut self, to: u32, placement: Option<&scalewise_sdk::Placement>) -> (Outcome, &'static str) {
        match self.s.target.scale_placed(to, placement).await {
            Ok(_) => (Outcome::Done, ""),
            Err(e) => {
                self.last_error = Some(e.to_string());
                (Outcome::Failed(e.to_string()), e.kind())
            }
        }
    }

    /// Clear the in-flight action once the target has settled; finish an
    /// action a previous run journalled as pending but never completed
    /// (returns true then).
    async fn settle_in_flight(&mut self, state: &PoolState, now: i64) -> bool {
        let Some(f) = self.memory.guard.in_flight else { return false };
        let interrupted = self.handle.last(|r| r.action.as_ref().is_some_and(|a| a.outcome == Outcome::Pending)).unwrap_or(false);
        if interrupted && self.confirm_leading().await.is_ok() {
            // The host stopped between journalling the intent and hearing
            // the outcome. scale_to is absolute, so asking again completes
            // the same action instead of taking a second one.
            tracing::warn!(pool = %self.s.plan.id, from = f.from, to = f.to, "completing an action interrupted by a restart");
            let placement = self.memory.placement.clone().filter(|p| p.total() == f.to);
            let (outcome, _) = self.scale_target(f.to, placement.as_ref()).await;
            if let Some(mut rec) = self.handle.last(DecisionRecord::clone) {
                if let Some(a) = rec.action.as_mut() {
                    a.outcome = outcome;
                }
                self.persist(&rec).await;
                self.events.observe(&rec, self.s.plan.min, self.s.plan.max, now);
                self.handle.remember(rec);
            }
            return true;
        }
        // Settled once nothing is on its way in or out. A member in back-off
        // (a crash loop, an instance the platform cannot create for want of
        // quota) is not on its way: waiting for it would keep the pool from
        // acting, even from removing it, until the timeout.
        use scalewise_providers::MemberState::{Draining, Starting};
        let settled = state.count(Starting) == 0 && state.count(Draining) == 0;
        if settled || now - f.at > IN_FLIGHT_TIMEOUT_MS {
            self.memory.guard.in_flight = None;
        }
        false
    }

    /// Book the interval's spend; a budget alert crossed now is logged and
    /// noted in the decision.
    fn accrue_spend(&mut self, record: &mut DecisionRecord, state: &PoolState, now: i64) {
        let hours = self.s.interval.as_secs_f64() / 3600.0;
        let cost = &self.s.plan.cost;
        for threshold in budget::accrue(cost, &mut self.memory, state.capacity(), hours, now) {
            let limit = cost.budget_limit.unwrap_or_default();
            let alert = format!("budget alert: {:.2} spent of {limit:.2} this period, past {threshold}%", self.memory.spent);
            tracing::warn!(pool = %self.s.plan.id, threshold, spent = self.memory.spent, limit, "{alert}");
            record.alerts.push(alert);
        }
    }

    async fn persist(&mut self, record: &DecisionRecord) {
        let Some(j) = &self.journal else { return };
        let written = j.record(record, &self.memory).await;
        self.replayable.journaled(&self.memory, written.is_ok());
        match written {
            Ok(()) => self.journal_error = None,
            Err(e) => {
                if self.journal_error.is_none() {
                    tracing::error!(pool = %self.s.plan.id, "{e}");
                }
                self.journal_error = Some(e.to_string());
            }
        }
    }

    /// Publish a decision and tell the target what it means for it. `state`
    /// is the pool as the tick saw it, when no action changed it since;
    /// otherwise the target is read again.
    async fn finish(&mut self, record: DecisionRecord, state: Option<PoolState>) {
        self.decisions += 1;
        if !self.standby() {
            // A replica that just lost the lease leaves the workload's
            // story to the one that holds it.
            self.events.observe(&record, self.s.plan.min, self.s.plan.max, self.clock.now_ms());
        }
        let state = match state {
            Some(s) => s,
            None => self.s.target.state().await.unwrap_or_default(),
        };
        self.publish(state, Some(&record));
        self.handle.remember(record);
    }

    fn publish(&self, state: PoolState, record: Option<&DecisionRecord>) {
        let p = &self.s.plan;
        let now = self.clock.now_ms();
        self.handle.publish(|s| PoolSnapshot {
            id: p.id.clone(),
            target: self.s.target.kind(),
            min: p.min,
            max: p.max,
            interval_ms: self.s.interval.as_millis() as u64,
            dry_run: self.s.dry_run,
            paused: self.memory.paused,
            running: state.running(),
            booting: state.booting(),
            // Between decisions the last one stands; before the first, what is there.
            desired: record.map_or(if s.last_decision_at.is_none() { state.capacity() } else { s.desired }, |r| r.desired),
            last_decision_at: record.map(|r| r.at).or(s.last_decision_at),
            pending_approval: self.pending.clone(),
            last_error: self.last_error.clone(),
            journal_error: self.journal_error.clone(),
            decisions: self.decisions,
            actions: self.actions,
            budget: budget::status(&p.cost, &self.memory, state.capacity(), now),
            hold: self.memory.guard.hold.clone(),
            cost_per_hour: (!p.cost.catalog.is_empty()).then(|| budget::hourly(&p.cost, self.memory.placement.as_ref(), state.capacity())),
            spent: self.memory.spent,
            failed_actions: self.failed_actions.clone(),
            candidate: self.shadow.divergence.clone(),
            previous: self.shadow.previous.as_deref().map(PoolPlan::describe),
            tick_lag_p50_ms: self.handle.lag.quantile_micros(0.5).map(|u| u / 1000.0),
            tick_lag_p99_ms: self.handle.lag.quantile_micros(0.99).map(|u| u / 1000.0),
            advisor: self.s.advisor.as_ref().map(|a| a.status(now)),
            members: state,
        });
    }

    async fn on_command(&mut self, c: PoolCommand) {
        match c {
            PoolCommand::Pause { paused, reply } => {
                self.memory.paused = paused;
                if let Some(j) = &self.journal {
                    let written = j.remember(&self.s.plan.id, &self.memory).await;
                    self.replayable.journaled(&self.memory, written.is_ok());
                }
                let state = self.s.target.state().await.unwrap_or_default();
                self.publish(state, None);
                let _ = reply.send(Ok(()));
            }
            PoolCommand::Scale { to, reason, hold_secs, reply } => {
                let (min, max) = (self.s.plan.min, self.s.plan.max);
                if to < min || to > max {
                    let _ = reply.send(Err(format!("{to} is outside this pool's bounds {min}..={max}")));
                    return;
                }
                if let Err(why) = self.confirm_leading().await {
                    let _ = reply.send(Err(why));
                    return;
                }
                let hold = hold_secs.unwrap_or(self.s.plan.guardrails.manual_hold_secs);
                let r = self.manual(to, "manual", reason, hold).await;
                let _ = reply.send(r);
            }
            PoolCommand::Approve { seq, reply } => {
                let Some(p) = self.pending.take_if(|p| p.seq == seq) else {
                    let _ = reply.send(Err(format!("no pending approval with seq {seq}; see GET /pools/{{id}}")));
                    return;
                };
                if let Err(why) = self.confirm_leading().await {
                    self.pending = Some(p);
                    let _ = reply.send(Err(why));
                    return;
                }
                let r = self.manual(p.to, "approval", format!("approved change of decision {seq}"), 0).await;
                let _ = reply.send(r);
            }
            PoolCommand::Promote { reply } => {
                let r = self.promote().await;
                let _ = reply.send(r);
            }
            PoolCommand::Rollback { reply } => {
                let r = self.rollback().await;
                let _ = reply.send(r);
            }
            PoolCommand::Reconfigure { settings, reply } => {
                let mut settings = *settings;
                self.hold_promotion(&mut settings.plan);
                let changed = reload::changes(&self.s, &settings);
                let forgot = self.reconfigure(settings);
                self.shadow.reconfigured(&self.s.plan, self.clock.now_ms());
                let mut note = format!("reconfigured by a config reload: {}", if changed.is_empty() { "what it reads".to_owned() } else { changed.join("; ") });
                if !forgot.is_empty() {
                    note.push_str(&format!("; forgot {}", forgot.join(", ")));
                }
                self.record_lifecycle("reload", note).await;
                let _ = reply.send(forgot);
            }
            PoolCommand::Retire { note, reply } => {
                self.record_lifecycle("reload", note).await;
                let _ = reply.send(self.s.advisor.as_ref().map(Advisor::share));
            }
        }
    }

    /// An operator's action: recorded as a decision of its own.
    async fn manual(&mut self, to: u32, cause: &str, reason: String, hold_secs: u64) -> Result<u32, String> {
        let now = self.clock.now_ms();
        let state = self.s.target.state().await.map_err(|e| e.to_string())?;
        let from = state.capacity();
        let change = OperatorChange { to, cause, reason: &reason, hold_secs };
        let mut record = pipeline::operator(&self.s.plan, &mut self.memory, now, state.running(), state.booting(), change);
        self.act(&mut record, from, to, cause, reason, now).await;
        let failed = match &record.action.as_ref().unwrap().outcome {
            Outcome::Failed(e) => Some(e.clone()),
            _ => None,
        };
        self.finish(record, None).await;
        match failed {
            Some(e) => Err(e),
            None => Ok(to),
        }
    }
}

/// Fault injection for crash tests: `SCALEWISE_FAILPOINT_ACT_DELAY_MS`
/// holds every action between journalling its intent and calling the
/// target, so a test can kill the host exactly there.
fn failpoint_act_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| std::env::var("SCALEWISE_FAILPOINT_ACT_DELAY_MS").ok().and_then(|v| v.parse().ok()).map(Duration::from_millis))
}

/// Run futures concurrently and collect their outputs in order.
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

mod candidate;
mod events;
mod reload;
mod replayable;

pub use candidate::Divergence;

#[cfg(test)]
mod tests;
