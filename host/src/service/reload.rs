//! A config reload, applied to the running service without a restart.
//!
//! Why it is built this way:
//!
//! - **Whole or nothing.** A reload is checked by the rules `config check`
//!   applies ([`crate::config::check`]: the TOML, every policy reference,
//!   each policy's settings through its own `validate-config`), and every
//!   target and metric source it needs is built, before anything running
//!   is touched. Any problem refuses the whole file: the running config
//!   goes on, and the problems are in the API (`GET /config`), the log and
//!   `/metrics`.
//! - **The pool never misses a tick.** A pool whose provider is unchanged
//!   is not restarted: it gets its new settings as a command between two
//!   ticks ([`PoolCommand::Reconfigure`]) and keeps its memory (cooldowns,
//!   stabilization, budget books, a hold, a pause, the states of the
//!   policies it still uses). A pool the reload leaves alone is not told
//!   anything at all. Only a pool whose provider changed is stopped and
//!   started again (from its journal memory), since its members belong to
//!   another target now.
//! - **A removed pool stops as on shutdown**: it finishes the decision in
//!   hand, and its target stops by its provider's rules (local workers
//!   stop unless `keep_on_exit`; cloud members stay). Its journal is kept,
//!   so the pool resumes where it was if a later reload brings it back.
//! - **One reload at a time.** Reloads from the file watcher, `SIGHUP` and
//!   the API are queued to one task ([`Reloader`]); requests that queue up
//!   while one runs are answered by the next run together, so a storm of
//!   changes costs one or two reloads, each of the file as it is then.
//! - **Some fields need a restart** (where the API listens, the sandbox's
//!   limits, the journal's file, leader election, the demo): a reload that
//!   changes one is refused, naming it, rather than applied in part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{BuiltTarget, Service, settings, sources, target};
use crate::config::{Config, PoolConfig};
use crate::control::handle::PoolCommand;
use crate::policy::Registry;

/// What one reload did, or why it did nothing.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    /// When it finished (ms since the Unix epoch).
    pub at: i64,
    /// What asked for it: `api`, `SIGHUP`, `file`.
    pub trigger: String,
    /// True when the new config runs now (or was the running one already).
    pub applied: bool,
    /// Why it was refused: each problem with its field path.
    pub problems: Vec<String>,
    /// Pools started, stopped, given new settings, and restarted (their
    /// provider changed).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub reconfigured: Vec<String>,
    pub restarted: Vec<String>,
    /// Named metric sources built anew.
    pub sources: Vec<String>,
    /// What pools forgot because the change invalidated it, as `pool: what`.
    pub forgot: Vec<String>,
    /// Each remote policy's artifact digest (a followed tag's as resolved now).
    pub remote: BTreeMap<String, String>,
    /// Policies loaded, unloaded or failed by the new settings.
    pub policies: crate::policy::registry::ScanReport,
    pub took_ms: u64,
}

/// The config the host runs, and how its reloads went.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The config file (empty when the host runs without one).
    pub path: String,
    /// How many configs have run: 1 for the one the host started with, one
    /// more for each reload that changed something.
    pub generation: u64,
    /// The sha256 of the running config's text.
    pub digest: String,
    pub applied: u64,
    pub refused: u64,
    /// The newest reload, applied or refused.
    pub last: Option<ReloadOutcome>,
}

/// What the API and the signal and file watchers hold: a way to ask for a
/// reload, and its status.
#[derive(Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<Request>,
    pub status: Arc<Mutex<ReloadStatus>>,
}

struct Request {
    trigger: String,
    reply: Option<oneshot::Sender<ReloadOutcome>>,
}

impl ReloadHandle {
    /// Reload now and wait for the outcome.
    pub async fn reload(&self, trigger: &str) -> Result<ReloadOutcome, String> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request { trigger: trigger.to_owned(), reply: Some(tx) }).await.map_err(|_| "the host is stopping".to_owned())?;
        rx.await.map_err(|_| "the host is stopping".to_owned())
    }

    /// Ask for a reload without waiting (a signal, the file watcher).
    pub fn nudge(&self, trigger: &str) {
        let _ = self.requests.try_send(Request { trigger: trigger.to_owned(), reply: None });
    }
}

/// How `serve` changes a config after reading it (its `--policy-dir` and
/// `--listen` flags), applied to every reload too.
pub type Overrides = Box<dyn Fn(&mut Config) + Send + Sync>;

/// The one task that reloads: it owns the [`Service`] while the host runs.
pub struct Reloader {
    path: PathBuf,
    service: Service,
    registry: Arc<Registry>,
    overrides: Overrides,
    status: Arc<Mutex<ReloadStatus>>,
    requests: mpsc::Receiver<Request>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The config file's text, read with a bound.
pub fn read_config(path: &std::path::Path) -> Result<String, String> {
    crate::config::read_text(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))
}

impl Reloader {
    pub fn new(path: PathBuf, service: Service, registry: Arc<Registry>, overrides: Overrides) -> (Self, ReloadHandle) {
        let text = read_config(&path).unwrap_or_default();
        let status = Arc::new(Mutex::new(ReloadStatus { path: path.display().to_string(), generation: 1, digest: crate::policy::digest(text.as_bytes()), ..ReloadStatus::default() }));
        let (tx, requests) = mpsc::channel(64);
        let handle = ReloadHandle { requests: tx, status: status.clone() };
        (Self { path, service, registry, overrides, status, requests }, handle)
    }

    /// Serve reload requests until `stop` fires; then hand the service
    /// back, to be stopped.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) -> Service {
        loop {
            let first = tokio::select! {
                r = self.requests.recv() => match r { Some(r) => r, None => break },
                _ = stop.changed() => break,
            };
            // Everything queued meanwhile is answered by this one run.
            let mut waiting = vec![first];
            while let Ok(r) = self.requests.try_recv() {
                waiting.push(r);
            }
            let trigger = waiting[0].trigger.clone();
            let outcome = self.reload(&trigger).await;
            for r in waiting {
                if let Some(reply) = r.reply {
                    let _ = reply.send(outcome.clone());
                }
            }
        }
        self.service
    }

    async fn reload(&mut self, trigger: &str) -> ReloadOutcome {
        let started = Instant::now();
        let mut outcome = match self.try_reload(trigger).await {
            Ok(o) => o,
            Err(problems) => ReloadOutcome { trigger: trigger.to_owned(), problems, ..ReloadOutcome::default() },
        };
        outcome.at = now_ms();
        outcome.took_ms = started.elapsed().as_millis() as u64;
        let mut status = self.status.lock().unwrap();
        if outcome.applied {
            status.applied += 1;
            let changed = !(outcome.added.is_empty() && outcome.removed.is_empty() && outcome.reconfigured.is_empty() && outcome.restarted.is_empty() && outcome.sources.is_empty() && outcome.policies.loaded.is_empty() && outcome.policies.unloaded.is_empty());
            if changed {
                status.generation += 1;
            }
            tracing::info!(trigger, generation = status.generation, added = ?outcome.added, removed = ?outcome.removed, reconfigured = ?outcome.reconfigured, restarted = ?outcome.restarted, took_ms = outcome.took_ms, "config reloaded");
        } else {
            status.refused += 1;
            tracing::warn!(trigger, path = %self.path.display(), "config reload refused; the running config goes on:\n  {}", outcome.problems.join("\n  "));
        }
        status.last = Some(outcome.clone());
        outcome
    }

    async fn try_reload(&mut self, trigger: &str) -> Result<ReloadOutcome, Vec<String>> {
        let file = self.path.display().to_string();
        let text = read_config(&self.path).map_err(|e| vec![e])?;
        let mut next = Config::parse_at(&text, &self.path).map_err(|e| match e.starts_with("TOML parse error") {
            // One error over several lines (the line, a caret under it).
            true => vec![format!("{file}: {e}")],
            false => e.lines().map(|l| format!("{file}: {l}")).collect::<Vec<_>>(),
        })?;
        (self.overrides)(&mut next);
        let digest = crate::policy::digest(text.as_bytes());
        let running = self.service.config();
        let problems = restart_only(running, &next);
        if !problems.is_empty() {
            return Err(problems);
        }
        if &next == running {
            self.status.lock().unwrap().digest = digest;
            return Ok(ReloadOutcome { trigger: trigger.to_owned(), applied: true, ..ReloadOutcome::default() });
        }
        // Remote policies first: fetched (or found in the cache) and checked;
        // one that cannot be had refuses the reload, and what served goes on.
        let (fetched, failures) = crate::policy::remote::fetch_all(next.remote_sources(), &next.fetching()).await;
        if !failures.is_empty() {
            return Err(failures.iter().map(crate::policy::remote::problem).collect());
        }
        let remote: BTreeMap<String, PathBuf> = fetched.iter().map(|(id, f)| (id.clone(), f.path.clone())).collect();
        let engine = self.registry.engine().clone();
        let dir = next.policies.dir.clone();
        let checked = next.clone();
        let for_check = remote.clone();
        let problems = tokio::task::spawn_blocking(move || crate::config::check::problems(&checked, &dir, Some(engine), &for_check))
            .await
            .map_err(|e| vec![format!("checking the policies: {e}")])?
            .map_err(|e| vec![format!("checking the policies: {e:#}")])?;
        if !problems.is_empty() {
            return Err(problems);
        }
        let prepared = self.service.prepare(&next).await.map_err(|e| vec![e])?;
        let registry = self.registry.clone();
        let (settings, instances, users) = (next.policy_settings(), next.policy_instances(), next.policy_users());
        let policies = tokio::task::spawn_blocking(move || registry.reconfigure(settings, instances, users, remote)).await.unwrap_or_default();
        let mut outcome = self.service.commit(next, prepared).await;
        outcome.trigger = trigger.to_owned();
        outcome.applied = true;
        outcome.policies = policies;
        outcome.remote = fetched.into_iter().map(|(id, f)| (id, f.digest)).collect();
        self.status.lock().unwrap().digest = digest;
        Ok(outcome)
    }
}

/// The fields a reload cannot change, each named with why, where `next`
/// changes one.
pub fn restart_only(running: &Config, next: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, differs: bool| {
        if differs {
            out.push(format!("{name}: changed, but it takes effect only when the host starts; restart it, or put the old value back to reload the rest"));
        }
    };
    let (a, b) = (&running.server, &next.server);
    field("server.listen", a.listen != b.listen);
    field("server.max_body_bytes", a.max_body_bytes != b.max_body_bytes);
    field("server.evaluate_concurrency", a.evaluate_concurrency != b.evaluate_concurrency);
    field("server.token", a.token != b.token);
    field("server.evaluate_without_token", a.evaluate_without_token != b.evaluate_without_token);
    let (a, b) = (&running.policies, &next.policies);
    field("policies.dir", a.dir != b.dir);
    field("policies.cache_dir", a.cache_dir != b.cache_dir);
    field("policies.deadline_ms", a.deadline_ms != b.deadline_ms);
    field("policies.memory_mib", a.memory_mib != b.memory_mib);
    field("policies.instance_mode", a.instance_mode != b.instance_mode);
    field("policies.warm_max_calls", a.warm_max_calls != b.warm_max_calls);
    field("policies.limits", a.limits != b.limits);
    field("policies.max_file_bytes", a.max_file_bytes != b.max_file_bytes);
    field("policies.settle_ms", a.settle_ms != b.settle_ms);
    field("policies.versions_file", a.versions_file != b.versions_file);
    field("journal", running.journal != next.journal);
    field("leader_election", running.leader_election != next.leader_election);
    field("demo", running.demo != next.demo);
    out
}

/// What a reload will do to the pools, with the targets it needs built.
pub struct Prepared {
    sources: BTreeMap<String, Arc<dyn scalewise_providers::MetricSource>>,
    changed_sources: Vec<String>,
    /// Pools to start, with their targets (new, or with a new provider).
    start: Vec<(PoolConfig, BuiltTarget)>,
    restarted: Vec<String>,
    reconfigure: Vec<PoolConfig>,
    removed: Vec<String>,
    /// The advisors of the pools to start or reconfigure, built.
    advisors: BTreeMap<String, crate::control::advisor::AdvisorSpec>,
}

impl Service {
    /// Build what `next` needs (its changed metric sources, the targets of
    /// new pools and of pools whose provider changed) without touching
    /// anything running. An error here refuses the reload.
    pub async fn prepare(&self, next: &Config) -> Result<Prepared, String> {
        let built = sources(next, Some((&self.config, &self.sources)), self.clock.as_ref()).map_err(|e| format!("{e:#}"))?;
        let changed_sources = built.iter().filter(|(name, s)| self.sources.get(*name).is_none_or(|old| !Arc::ptr_eq(old, s))).map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let mut prepared = Prepared { sources: built, changed_sources, start: Vec::new(), restarted: Vec::new(), reconfigure: Vec::new(), removed: Vec::new(), advisors: BTreeMap::new() };
        for p in &next.pools {
            if let Some(a) = super::build_advisor(p)? {
                prepared.advisors.insert(p.id.clone(), a);
            }
            let reads_changed = p.metrics.iter().any(|m| prepared.changed_sources.contains(&m.source));
            match self.running.get(&p.id) {
                Some(r) if r.config.provider == p.provider => {
                    if r.config != *p || reads_changed {
                        prepared.reconfigure.push(p.clone());
                    }
                }
                running => {
                    match target(p).await {
                        Ok(t) => prepared.start.push((p.clone(), t)),
                        Err(e) => {
                            for (_, (_, supervisor)) in prepared.start.drain(..) {
                                if let Some(s) = supervisor {
                                    s.abort();
                                }
                            }
                            return Err(format!("pools.{}: {e:#}", p.id));
                        }
                    }
                    if running.is_some() {
                        prepared.restarted.push(p.id.clone());
                    }
                }
            }
        }
        prepared.removed = self.running.keys().filter(|id| !next.pools.iter().any(|p| &p.id == *id)).cloned().collect();
        Ok(prepared)
    }

    /// Carry out a prepared reload: stop the removed pools and those to be
    /// restarted, reconfigure the changed ones between two of their ticks,
    /// start the new ones, and show the API the result.
    pub async fn commit(&mut self, next: Config, mut p: Prepared) -> ReloadOutcome {
        let mut advisors = std::mem::take(&mut p.advisors);
        let mut outcome = ReloadOutcome { sources: p.changed_sources, restarted: p.restarted.clone(), ..ReloadOutcome::default() };
        self.sources = p.sources;
        let mut stopping = tokio::task::JoinSet::new();
        // The advisors of the pools to restart, to be adopted by the new ones.
        let mut previous = BTreeMap::new();
        for id in p.removed.iter().chain(&p.restarted) {
            if let Some(r) = self.running.remove(id) {
                // The pool's own journal says why it stopped.
                let (tx, rx) = oneshot::channel();
                let note = if p.removed.contains(id) {
                    "removed from the config by a reload: stopping after the decision in hand; its target stops by its provider's rules (local workers stop unless keep_on_exit; cloud members stay)"
                } else {
                    "its provider changed in a config reload: restarting on the new target"
                };
                if r.entry.handle.command(PoolCommand::Retire { note: note.to_owned(), reply: tx }).await.is_ok() {
                    match tokio::time::timeout(Duration::from_secs(10), rx).await {
                        Ok(Ok(Some(advisor))) => {
                            previous.insert(id.clone(), advisor);
                        }
                        Ok(_) => {}
                        // Busy in a tick (a cloud scale waits for its
                        // operation): what it counted is lost with it.
                        Err(_) if r.config.advisor.is_some() && p.restarted.contains(id) => {
                            tracing::warn!(pool = %id, "the pool did not answer within 10 s; its advisor's hourly cap starts afresh on the new provider");
                        }
                        Err(_) => {}
                    }
                }
                tracing::info!(pool = %id, "stopping: {}", if p.removed.contains(id) { "removed from the config" } else { "its provider changed" });
                stopping.spawn(Self::stop_pool(r));
            }
        }
        stopping.join_all().await;
        outcome.removed = p.removed;
        for c in p.reconfigure {
            let Some(r) = self.running.get_mut(&c.id) else { continue };
            let s = settings(&c, r.target.clone(), &r.entry.push, &self.sources, &self.host, self.leadership.clone(), advisors.remove(&c.id));
            let (tx, rx) = oneshot::channel();
            let sent = r.entry.handle.command(PoolCommand::Reconfigure { settings: Box::new(s), reply: tx }).await;
            match sent {
                Ok(()) => match tokio::time::timeout(Duration::from_secs(60), rx).await {
                    Ok(Ok(forgot)) => outcome.forgot.extend(forgot.into_iter().map(|f| format!("{}: {f}", c.id))),
                    _ => tracing::warn!(pool = %c.id, "the pool did not confirm its new settings within 60s"),
                },
                Err(e) => tracing::warn!(pool = %c.id, "{e}"),
            }
            r.config = c.clone();
            outcome.reconfigured.push(c.id);
        }
        for (c, built) in p.start {
            let restarted = p.restarted.contains(&c.id);
            match self.start_pool(&c, built, advisors.remove(&c.id), previous.remove(&c.id)).await {
                Ok(()) if !restarted => outcome.added.push(c.id),
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(pool = %c.id, "the reload could not start the pool: {e:#}");
                    outcome.problems.push(format!("pools.{}: not started: {e:#}", c.id));
                }
            }
        }
        self.config = next;
        self.publish();
        outcome
    }
}
