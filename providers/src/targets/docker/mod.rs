//! The `docker` target: a pool is the set of containers labelled
//! `scalewise.pool = <id>` on one Docker engine, run from a configured
//! image, command, environment, resource limits and network.
//!
//! Why labels and names, and no list of our own: the engine is the truth.
//! A restarted host, a second replica or an operator's `docker ps` see the
//! same pool by listing the label. Each member is named `<prefix>-<slot>`
//! with the lowest free slot, so a create is idempotent: sent twice (a retry
//! after a lost answer, a host killed between create and start and run
//! again), the second meets "409 Conflict" on the name and finds the first
//! container, instead of making a duplicate. A container of someone else's
//! that holds one of our names is left alone and its slot skipped.
//!
//! Crashes are the engine's to restart: members run with the restart policy
//! `unless-stopped` (by default), so a member that exits is restarted by
//! the engine with its doubling back-off, also while the host is down, and
//! shows as `backoff` with its exit code until it stays up. A member that
//! exited for good (restart `no`) is removed at the next scale and replaced.
//!
//! Scale-in drains in the background: `docker stop` (the image's stop
//! signal, the grace period, then SIGKILL), then removal with its anonymous
//! volumes. A draining member shows as `draining` until it is gone. Health
//! comes from the image's or the config's healthcheck, where there is one;
//! CPU and memory from the stats API ([`stats`]).
//!
//! Docker has no spot market or instance kinds: the cost rules' placement
//! is not applied.

pub mod engine;
mod stats;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum, HealthConfig, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};

use crate::targets::backoff::Backoff;
use crate::targets::hold::ScaleUpHold;
use crate::targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};
use engine::{Engine, EngineError};

/// The label that names a container's pool.
pub const POOL_LABEL: &str = "scalewise.pool";

/// What the engine does when a member exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// The engine restarts it, with back-off, until the pool removes it.
    UnlessStopped,
    /// It stays exited; the pool removes it and starts another.
    No,
}

/// A healthcheck given in the config (else the image's own applies).
#[derive(Debug, Clone)]
pub struct Healthcheck {
    /// As in a Dockerfile: `["CMD", "curl", "-f", "..."]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub pool: String,
    /// `unix:///var/run/docker.sock` or `tcp://host:2375`.
    pub host: String,
    pub image: String,
    /// Empty: the image's own command.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// More labels for every member (the pool's label is always set).
    pub labels: Vec<(String, String)>,
    /// `none`, `host`, a network's name; default: the engine's.
    pub network: Option<String>,
    pub memory_mib: Option<u64>,
    pub cpus: Option<f64>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Restart,
    /// Members are named `<name_prefix>-<slot>`.
    pub name_prefix: String,
    /// Between the stop signal and SIGKILL.
    pub grace: Duration,
    /// Creates and starts in flight at once.
    pub parallel: usize,
    /// How long one engine call may take.
    pub call_timeout: Duration,
    pub backoff: Backoff,
    /// How long a launch the engine refused for good (no such image, a bad
    /// command) holds scale-ups before the next try.
    pub hold: Duration,
}

/// Remove container `name` by force (it stops if it runs), with its
/// anonymous volumes; best-effort: a failure is logged, and one already
/// gone is not a failure.
async fn remove(engine: &Engine, pool: &str, name: &str) {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    if let Err(e) = engine.call("remove container", engine.call_timeout, |d| {
        let o = options.clone();
        async move { d.remove_container(name, Some(o)).await }
    }).await
        && !e.is(404)
    {
        tracing::warn!(pool = %pool, container = name, "cannot remove: {e}");
    }
}

/// A member's container as listed.
#[derive(Debug, Clone)]
struct Listed {
    name: String,
    member: Member,
    /// Listed but never started (a host that died between create and start).
    created_only: bool,
    /// Exited for good, or dead.
    exited: bool,
}

pub struct DockerTarget {
    engine: Arc<Engine>,
    config: DockerConfig,
    stats: Arc<stats::Stats>,
    /// Names being stopped and removed now.
    draining: Arc<Mutex<HashSet<String>>>,
    /// Names of foreign containers already reported.
    foreign: Mutex<BTreeSet<String>>,
    /// When a launch error last stopped a scale-up: until when, at what
    /// size, and why.
    hold: ScaleUpHold,
}

impl DockerTarget {
    /// Make the target; nothing is asked of the engine until the first call
    /// (see [`engine`]).
    pub fn new(config: DockerConfig) -> Self {
        let engine = Arc::new(Engine::new(config.host.clone(), config.call_timeout, config.backoff));
        Self { engine, config, stats: Arc::default(), draining: Arc::default(), foreign: Mutex::default(), hold: ScaleUpHold::default() }
    }

    fn read_error(&self, e: EngineError) -> ProviderError {
        ProviderError::Read(format!("listing the pool's containers on {}: {e}", self.engine.host()))
    }

    /// Every container with the pool's label, in every state.
    async fn list(&self) -> Result<Vec<Listed>, EngineError> {
        let filters = HashMap::from([("label", vec![format!("{POOL_LABEL}={}", self.config.pool)])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = self.engine.call("list containers", self.config.call_timeout, |d| {
            let o = options.clone();
            async move { d.list_containers(Some(o)).await }
        }).await?;
        let draining = self.draining.lock().unwrap().clone();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut out: Vec<Listed> = found.iter().filter_map(|c| listed(c, &draining, now)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        // Why a member restarts: the exit code and count from an inspect, for
        // the members in back-off only, `parallel` at a time, so that a pool
        // crashing whole costs a tick a few round trips, not one per member.
        use futures_util::StreamExt;
        let restarting: Vec<String> = out.iter().filter(|l| l.member.state == MemberState::Backoff).map(|l| l.name.clone()).collect();
        let (engine, timeout) = (self.engine.clone(), self.config.call_timeout);
        let inspected: Vec<(String, Option<ContainerInspectResponse>)> = futures_util::stream::iter(restarting)
            .map(move |name| {
                let engine = engine.clone();
                async move {
                    let n = name.clone();
                    let i = engine.call("inspect container", timeout, move |d| {
                        let n = n.clone();
                        async move { d.inspect_container(&n, None).await }
                    });
                    (name, i.await.ok())
                }
            })
            .buffer_unordered(self.config.parallel.max(1))
            .collect()
            .await;
        for (name, i) in inspected {
            let (Some(l), Some(i)) = (out.iter_mut().find(|l| l.name == name), i) else { continue };
            let code = i.state.as_ref().and_then(|s| s.exit_code).unwrap_or(0);
            l.member.restarts = i.restart_count.unwrap_or(0).max(0) as u32;
            l.member.last_error = Some(format!("exited with code {code}; the engine restarts it with back-off (restart {})", l.member.restarts));
        }
        Ok(out)
    }

    fn body(&self) -> ContainerCreateBody {
        let c = &self.config;
        let mut labels: HashMap<String, String> = c.labels.iter().cloned().collect();
        labels.insert(POOL_LABEL.into(), c.pool.clone());
        ContainerCreateBody {
            image: Some(c.image.clone()),
            cmd: (!c.command.is_empty()).then(|| c.command.clone()),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            stop_timeout: Some(c.grace.as_secs() as i64),
            healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval.as_nanos() as i64),
                retries: Some(h.retries as i64),
                start_period: Some(h.start_period.as_nanos() as i64),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                memory: c.memory_mib.map(|m| (m << 20) as i64),
                nano_cpus: c.cpus.map(|n| (n * 1e9) as i64),
                network_mode: c.network.clone(),
                restart_policy: Some(RestartPolicy {
                    name: Some(match c.restart {
                        Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                        Restart::No => RestartPolicyNameEnum::NO,
                    }),
                    maximum_retry_count: None,
                }),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn start(&self, name: &str) -> Result<(), EngineError> {
        match self.engine.call("start container", self.config.call_timeout, |d| async move { d.start_container(name, None).await }).await {
            // 304: already running.
            Err(e) if e.is(304) => Ok(()),
            other => other,
        }
    }

    /// Create and start the member in `slot`. `Ok(false)`: the name is held
    /// by a container that is not the pool's.
    async fn launch_one(&self, name: &str) -> Result<bool, EngineError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let body = self.body();
        let created = self.engine.call("create container", self.config.call_timeout, |d| {
            let (o, b) = (options.clone(), body.clone());
            async move { d.create_container(Some(o), b).await }
        }).await;
        match created {
            Ok(_) => {}
            Err(e) if e.is(409) => {
                // The name exists: ours (an earlier try that got through) or not.
                let i = self.engine.call("inspect container", self.config.call_timeout, |d| async move { d.inspect_container(name, None).await }).await?;
                let ours = i.config.and_then(|c| c.labels).and_then(|l| l.get(POOL_LABEL).cloned()).as_deref() == Some(self.config.pool.as_str());
                if !ours {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
        if let Err(e) = self.start(name).await {
            // A container that cannot start (a command the image lacks) is
            // not left behind to be counted.
            self.remove(name).await;
            return Err(e);
        }
        Ok(true)
    }

    /// Remove `name` now, stopping it if it runs; best-effort.
    async fn remove(&self, name: &str) {
        remove(&self.engine, &self.config.pool, name).await;
    }

    /// Launch `need` members in free slots, `parallel` at a time. Returns
    /// the names launched, and the error that stopped it, if one did.
    async fn launch(&self, need: usize, taken: &BTreeSet<String>) -> (Vec<String>, Option<EngineError>) {
        let mut taken = taken.clone();
        let mut launched = Vec::new();
        let mut next_slot = 0u32;
        // Every foreign name costs one try; bounded all the same.
        let mut tries_left = need + 64;
        while launched.len() < need && tries_left > 0 {
            let batch: Vec<String> = std::iter::from_fn(|| {
                while taken.contains(&self.name(next_slot)) {
                    next_slot += 1;
                }
                let n = self.name(next_slot);
                taken.insert(n.clone());
                Some(n)
            })
            .take((need - launched.len()).min(self.config.parallel).min(tries_left))
            .collect();
            tries_left -= batch.len();
            let results = futures_util::future::join_all(batch.iter().map(|n| self.launch_one(n))).await;
            let mut failed = None;
            for (name, r) in batch.into_iter().zip(results) {
                match r {
                    Ok(true) => launched.push(name),
                    Ok(false) => {
                        if self.foreign.lock().unwrap().insert(name.clone()) {
                            tracing::warn!(pool = %self.config.pool, container = %name, "a container that is not the pool's holds this name; skipping its slot");
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                return (launched, Some(e));
            }
        }
        if launched.len() < need {
            let e = EngineError { status: None, message: format!("no free container name under `{}-N` after {} tries", self.config.name_prefix, need + 64), retryable: false };
            return (launched, Some(e));
        }
        (launched, None)
    }

    fn name(&self, slot: u32) -> String {
        format!("{}-{slot}", self.config.name_prefix)
    }

    /// Stop (grace, then SIGKILL) and remove `names` in the background.
    fn drain(&self, names: &[String]) {
        self.draining.lock().unwrap().extend(names.iter().cloned());
        for name in names {
            let (engine, draining, name) = (self.engine.clone(), self.draining.clone(), name.clone());
            let (grace, pool) = (self.config.grace, self.config.pool.clone());
            tokio::spawn(async move {
                let stop = StopContainerOptionsBuilder::new().t(grace.as_secs() as i32).build();
                let timeout = grace + engine.call_timeout;
                match engine.call("stop container", timeout, |d| {
                    let (o, name) = (stop.clone(), &name);
                    async move { d.stop_container(name, Some(o)).await }
                }).await {
                    Ok(()) => {}
                    Err(e) if e.is(304) || e.is(404) => {}
                    Err(e) => tracing::warn!(pool = %pool, container = %name, "cannot stop: {e}; removing it by force"),
                }
                // Left listed if this fails: the next scale sees it and tries again.
                remove(&engine, &pool, &name).await;
                draining.lock().unwrap().remove(&name);
            });
        }
    }

    /// Start what a host killed between create and start left created, and
    /// remove what exited for good; returns what remains.
    async fn tidy(&self, listed: Vec<Listed>) -> Vec<Listed> {
        let mut out = Vec::with_capacity(listed.len());
        for mut l in listed {
            if l.exited {
                tracing::warn!(pool = %self.config.pool, container = %l.name, why = ?l.member.last_error, "removing a member that exited");
                self.remove(&l.name).await;
                continue;
            }
            if l.created_only {
                match self.start(&l.name).await {
                    Ok(()) => l.created_only = false,
                    Err(e) => {
                        tracing::warn!(pool = %self.config.pool, container = %l.name, "cannot start a created member: {e}; removing it");
                        self.remove(&l.name).await;
                        continue;
                    }
                }
            }
            out.push(l);
        }
        out
    }

    fn hold_after(&self, size: u32, e: &EngineError) {
        if !e.retryable {
            self.hold.set(self.config.hold, size, e.to_string());
        }
    }
}

/// How long a container may stay created but not started before it is
/// taken for a leftover (a start that failed, then a removal that failed
/// too): not capacity, removed and replaced at the next scale.
const CREATED_FOR_SECS: i64 = 60;

/// A listed container as a member, unless it has no name; `now` in seconds
/// since the epoch.
fn listed(c: &ContainerSummary, draining: &HashSet<String>, now: i64) -> Option<Listed> {
    use ContainerSummaryStateEnum as S;
    let name = c.names.as_ref()?.first()?.trim_start_matches('/').to_owned();
    let status = c.status.clone().unwrap_or_default();
    let created = c.created.unwrap_or(0);
    let leftover = c.state == Some(S::CREATED) && now - created > CREATED_FOR_SECS;
    let mut state = match c.state {
        _ if leftover => MemberState::Stopped,
        Some(S::RUNNING) if status.contains("(health: starting)") => MemberState::Starting,
        Some(S::RUNNING | S::PAUSED) => MemberState::Active,
        Some(S::CREATED) => MemberState::Starting,
        Some(S::RESTARTING) => MemberState::Backoff,
        Some(S::REMOVING | S::STOPPING) => MemberState::Draining,
        _ => MemberState::Stopped,
    };
    let exited = state == MemberState::Stopped;
    if draining.contains(&name) {
        state = MemberState::Draining;
    }
    let mut member = Member::new(name.as_str(), state, created * 1000);
    member.healthy = !status.contains("(unhealthy)") && !matches!(c.state, Some(S::PAUSED | S::RESTARTING)) && !exited;
    if leftover {
        member.last_error = Some(format!("created {}s ago and never started", now - created));
    } else if exited || !member.healthy {
        member.last_error = Some(status.clone()).filter(|s| !s.is_empty());
    }
    Some(Listed { created_only: c.state == Some(S::CREATED) && !leftover && !draining.contains(&name), exited: exited && !draining.contains(&name), name, member })
}

#[async_trait]
impl Target for DockerTarget {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        let listed = self.list().await.map_err(|e| self.read_error(e))?;
        let kept = self.tidy(listed).await;
        let state = PoolState { members: kept.into_iter().map(|l| l.member).collect() };
        tracing::info!(pool = %self.config.pool, engine = %self.engine.host(), running = state.running(), booting = state.booting(), "found the pool's containers");
        Ok(state)
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        let listed = self.list().await.map_err(|e| self.read_error(e))?;
        let running: Vec<String> = listed.iter().filter(|l| l.member.state == MemberState::Active).map(|l| l.name.clone()).collect();
        self.stats.refresh(&self.engine, running);
        let members = listed
            .into_iter()
            .map(|l| {
                let mut m = l.member;
                (m.cpu_percent, m.memory_bytes) = self.stats.get(&l.name);
                m
            })
            .collect();
        Ok(PoolState { members })
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        let listed = self.list().await.map_err(|e| self.read_error(e))?;
        let taken: BTreeSet<String> = listed.iter().map(|l| l.name.clone()).collect();
        let live: Vec<Member> = self.tidy(listed).await.into_iter().map(|l| l.member).filter(|m| m.state != MemberState::Draining).collect();
        let have = live.len() as u32;
        let mut outcome = ScaleOutcome { capacity: have, ..Default::default() };
        if desired > have {
            let need = (desired - have) as usize;
            let (launched, error) = self.launch(need, &taken).await;
            outcome.capacity += launched.len() as u32;
            outcome.launched = launched;
            if let Some(e) = error {
                self.hold_after(outcome.capacity, &e);
                return Err(ProviderError::Launch(format!(
                    "started {} of {need} container(s) [{}], then: {e}{}",
                    outcome.launched.len(),
                    outcome.launched.join(", "),
                    hint(&e, &self.config.image)
                )));
            }
        } else if desired < have {
            let names = pick_victims(&live, (have - desired) as usize);
            self.drain(&names);
            outcome.capacity -= names.len() as u32;
            outcome.removed = names;
        }
        Ok(outcome)
    }

    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        self.hold.headroom(state, "the Docker engine refused a new container", false)
    }
}

/// What to do about a launch error, where the engine's answer says.
fn hint(e: &EngineError, image: &str) -> String {
    let m = e.message.to_ascii_lowercase();
    if e.is(404) && m.contains("image") {
        format!(" (the image `{image}` is not on the engine: `docker pull` or `docker load` it there)")
    } else if m.contains("executable file not found") || m.contains("no such file or directory") {
        " (the command is not in the image: fix `command` in the pool's provider config)".into()
    } else if e.is(400) || e.is(500) {
        " (fix the container spec in the pool's provider config)".into()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests;
