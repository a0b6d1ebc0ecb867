//! The assembled host: the policy registry, the journal, and one control
//! loop per configured pool with its target and metric sources.
//!
//! `serve` builds a [`Service`] from the config and hands it to the API;
//! tests build one the same way. Stopping it lets every pool finish the
//! decision in hand, flush the journal and stop its target's workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use scalewise_providers::sources::proc::ProcSource;
use scalewise_providers::leader::Leadership;
use scalewise_providers::targets::local::{LocalConfig, LocalPool, Needs};
use scalewise_providers::sources::nvml::NvmlSource;
use scalewise_providers::sources::members::MembersSource;
use scalewise_providers::sources::prometheus::{PrometheusAccess, PrometheusSource};
use scalewise_providers::sources::push::PushSource;
use scalewise_providers::sources::replay::ReplaySource;
use scalewise_providers::{MetricSource, Target};
use tokio::sync::watch;

use crate::config::{Config, PoolConfig, ProviderConfig, SourceConfig};
use crate::control::PoolHandle;
use crate::control::clock::{Clock, WallClock};
use crate::control::pool::{self, MetricSpec, PoolSettings};
use crate::decide::budget::CostSpec;
use crate::decide::guardrails::Guardrails;
use crate::decide::pipeline::{ExpertSpec, Experts, PoolPlan};
use crate::journal::Journal;

mod advisor;
mod cloud;
pub mod reload;
#[path = "service/watch.rs"]
pub mod config_watch;

/// In a worker command, this word stands for the running scalewise binary.
pub const SELF_EXE: &str = "$SCALEWISE";

/// A running pool and where its pushed samples go.
pub struct PoolEntry {
    pub handle: Arc<PoolHandle>,
    pub push: Arc<PushSource>,
}

pub struct Service {
    pub journal: Option<Journal>,
    /// What the API reads; replaced whole when the pools change.
    pub live: Arc<ArcSwap<Live>>,
    /// This replica's part in leader election, if several run.
    pub leadership: Option<Leadership>,
    running: BTreeMap<String, Running>,
    /// The config the pools and sources run now.
    config: Config,
    sources: BTreeMap<String, Arc<dyn MetricSource>>,
    experts: Arc<dyn Experts>,
    clock: Arc<dyn Clock>,
    /// This machine's /proc, the `host` source every pool may read.
    host: Arc<dyn MetricSource>,
    /// Told to release the lease once every pool has stopped.
    elector: Option<cloud::Elector>,
}

/// How a pool's decisions are made, from its config.
pub fn plan(p: &PoolConfig) -> PoolPlan {
    PoolPlan {
        id: p.id.clone(),
        min: p.min,
        max: p.max,
        strategies: p.strategies.iter().map(|s| ExpertSpec { policy: s.policy.clone(), weight: s.weight }).collect(),
        consensus: p.consensus.clone(),
        cost_rules: p.cost_rules.clone(),
        cost: CostSpec {
            kind: p.cost.kind.clone(),
            catalog: p.cost.catalog.clone(),
            budget_limit: p.cost.budget,
            budget_period: p.cost.period(),
            budget_alerts: p.cost.budget_alerts.clone(),
        },
        guardrails: Guardrails { ..p.guardrails.clone() },
        limits: p.limits.clone(),
        instances: p.instances.clone(),
        candidate: p.candidate.as_ref().map(|c| {
            let mut serving = plan(&PoolConfig { candidate: None, ..p.clone() });
            serving.strategies = c.strategies.iter().map(|s| ExpertSpec { policy: s.policy.clone(), weight: s.weight }).collect();
            serving.consensus = c.consensus.clone();
            serving.cost_rules = c.cost_rules.clone();
            Box::new(serving)
        }),
    }
}

/// A file of a credential or certificate: read with a bound (they are small).
fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, String> {
    scalewise_providers::file::read(path, 1 << 20).map_err(|e| e.at(path, "it should hold one secret or certificate"))
}

/// A secret from a file, without its trailing newline.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let bytes = read_bounded(path)?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// A pool's target, and the local pool's supervisor where it has one.
async fn target(p: &PoolConfig) -> anyhow::Result<BuiltTarget> {
    match &p.provider {
        ProviderConfig::Local { .. } => {
            let local = local_target(p)?;
            let supervisor = local.supervise(Duration::from_millis(250));
            Ok((local, Some(supervisor)))
        }
        ProviderConfig::AwsEc2(c) => Ok((cloud::ec2_target(p, c).await?, None)),
        ProviderConfig::Kubernetes(k) => Ok((cloud::kubernetes_target(p, k).await?, None)),
        ProviderConfig::Docker(d) => Ok((cloud::docker_target(p, d)?, None)),
        ProviderConfig::AzureVmss(a) => Ok((cloud::azure_vmss_target(p, a)?, None)),
        ProviderConfig::Gce(g) => Ok((cloud::gce_target(p, g).await?, None)),
        ProviderConfig::Simulated { .. } => anyhow::bail!(
            "pool `{}`: the simulated provider runs only under `scalewise simulate`; give the pool a real provider (local, docker, aws-ec2, azure-vmss, gce, kubernetes) to serve it",
            p.id
        ),
    }
}

fn local_target(p: &PoolConfig) -> anyhow::Result<Arc<LocalPool>> {
    let ProviderConfig::Local { command, env, run_dir, grace_secs, ready_after_ms, keep_on_exit, member_memory_mib, reserve_memory_mib, member_cpus } = &p.provider else {
        anyhow::bail!("pool `{}` is not a local pool", p.id);
    };
    let exe = std::env::current_exe().context("locating the scalewise binary")?;
    let command = command
        .iter()
        .map(|a| if a == SELF_EXE { exe.display().to_string() } else { a.clone() })
        .collect();
    let config = LocalConfig {
        command,
        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        run_dir: run_dir.clone().unwrap_or_else(|| format!(".scalewise/run/{}", p.id).into()),
        grace: Duration::from_secs(*grace_secs),
        ready_after: Duration::from_millis(*ready_after_ms),
        keep_on_exit: *keep_on_exit,
        needs: Needs { member_memory_mib: *member_memory_mib, reserve_memory_mib: *reserve_memory_mib, member_cpus: *member_cpus },
    };
    Ok(Arc::new(LocalPool::new(config).with_context(|| format!("pool `{}`", p.id))?))
}

/// Stop the workers a previous host left running for a local pool this
/// config no longer has (removed while the host was down, by `kill -9` or
/// otherwise): nothing would manage them. Each run directory under the
/// default root that no configured pool uses is reconciled as a pool's own
/// is at start, and what lives there is stopped as a pool's shutdown stops
/// its members (drain file, SIGTERM, 10 s, SIGKILL), off the start path.
/// Not with leader election: replicas on one machine may share the root.
fn stop_orphans(config: &Config) {
    let Some(root) = config.run_root.as_ref().filter(|_| config.leader_election.is_none()) else { return };
    // Compared as the file system resolves them: a pool's own `run_dir`
    // may name a directory under the root in other words.
    let kept: std::collections::HashSet<std::path::PathBuf> = config
        .pools
        .iter()
        .filter_map(|p| match &p.provider {
            ProviderConfig::Local { run_dir, .. } => run_dir.as_deref().and_then(|d| std::fs::canonicalize(d).ok()),
            _ => None,
        })
        .collect();
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for dir in entries.flatten().map(|e| e.path()).filter(|d| d.is_dir() && std::fs::canonicalize(d).is_ok_and(|c| !kept.contains(&c))) {
        let pool = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let local = LocalConfig {
            command: vec!["true".into()],
            env: Vec::new(),
            run_dir: dir.clone(),
            grace: Duration::from_secs(10),
            ready_after: Duration::ZERO,
            keep_on_exit: false,
            needs: Needs::default(),
        };
        let Ok(local) = LocalPool::new(local) else { continue };
        tokio::spawn(async move {
            let Ok(state) = local.reconcile().await else { return };
            if state.members.is_empty() {
                return;
            }
            let ids: Vec<&str> = state.members.iter().map(|m| &*m.id).collect();
            tracing::warn!(pool = %pool, run_dir = %dir.display(), members = ?ids, "stopping the workers a previous host left running for a pool this config no longer has");
            local.shutdown().await;
        });
    }
}

/// The named metric sources, by name.
type Sources = BTreeMap<String, Arc<dyn MetricSource>>;

/// A pool's target, and the local pool's supervisor where it has one.
pub type BuiltTarget = (Arc<dyn Target>, Option<tokio::task::JoinHandle<()>>);

/// One running pool: what it was built from, and how to stop it.
struct Running {
    config: PoolConfig,
    entry: Arc<PoolEntry>,
    target: Arc<dyn Target>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// What the API reads of the running service. A reload replaces it whole,
/// so a request sees the pools and sources of one config, never a mix.
#[derive(Default)]
pub struct Live {
    pub pools: BTreeMap<String, Arc<PoolEntry>>,
    /// The named metric sources, for their status in the API.
    pub sources: BTreeMap<String, Arc<dyn MetricSource>>,
}

/// Build every named metric source of `config`, reusing from `old` each
/// one whose config is unchanged (a replayed trace keeps its place, a
/// Prometheus client its connections).
fn sources(config: &Config, old: Option<(&Config, &Sources)>, clock: &dyn Clock) -> anyhow::Result<Sources> {
    let mut named: BTreeMap<String, Arc<dyn MetricSource>> = BTreeMap::new();
    for (name, s) in &config.sources {
        if let Some((c, built)) = old
            && c.sources.get(name) == Some(s)
            && let Some(b) = built.get(name)
        {
            named.insert(name.clone(), b.clone());
            continue;
        }
        named.insert(name.clone(), source(name, s, clock)?);
    }
    Ok(named)
}

pub(crate) fn source(name: &str, s: &SourceConfig, clock: &dyn Clock) -> anyhow::Result<Arc<dyn MetricSource>> {
    Ok(match s {
        SourceConfig::Prometheus { url, timeout_ms, bearer_token, bearer_token_file, basic_auth, headers, ca_file, max_answer_bytes } => {
            let at = |field: &str, e: String| anyhow::anyhow!("sources.{name}.{field}: {e}");
            let bearer_token = match (bearer_token, bearer_token_file) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(f)) => Some(read_secret(f).map_err(|e| at("bearer_token_file", e))?),
                (None, None) => None,
            };
            let basic_auth = match basic_auth {
                Some(b) => {
                    let password = match (&b.password, &b.password_file) {
                        (Some(p), _) => p.clone(),
                        (None, Some(f)) => read_secret(f).map_err(|e| at("basic_auth.password_file", e))?,
                        (None, None) => String::new(),
                    };
                    Some((b.username.clone(), password))
                }
                None => None,
            };
            let ca_pem = match ca_file {
                Some(f) => Some(read_bounded(f).map_err(|e| at("ca_file", e))?),
                None => None,
            };
            let access = PrometheusAccess { bearer_token, basic_auth, headers: headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), ca_pem };
            let source = PrometheusSource::with_access(url, Duration::from_millis(*timeout_ms), access).map_err(|e| anyhow::anyhow!("sources.{name}: {e}"))?;
            Arc::new(source.with_max_answer_bytes(*max_answer_bytes))
        }
        SourceConfig::Replay { path, step_ms } => {
            Arc::new(ReplaySource::open(path, clock.now_ms(), *step_ms as i64).map_err(|e| anyhow::anyhow!("sources.{name}: {e}"))?)
        }
        SourceConfig::Nvml {} => {
            let nvml = NvmlSource::new();
            // Look once now, so the log and the API say at start whether GPUs are there.
            match nvml.sample(clock.now_ms()) {
                Ok(()) => tracing::info!(source = %name, gpus = nvml.latest().map_or(0, |g| g.len()), "NVML source up"),
                Err(e) => tracing::warn!(source = %name, "{e}; pools that read it decide without it"),
            }
            Arc::new(nvml)
        }
    })
}

/// How pool `p` runs on `target`, reading `named` sources and the host's own.
/// `advisor` is built beforehand ([`advisor::spec`]), where a problem can
/// still refuse the start or the reload.
#[allow(clippy::too_many_arguments)]
fn settings(p: &PoolConfig, target: Arc<dyn Target>, push: &Arc<PushSource>, named: &BTreeMap<String, Arc<dyn MetricSource>>, host: &Arc<dyn MetricSource>, leader: Option<Leadership>, advisor: Option<crate::control::advisor::AdvisorSpec>) -> PoolSettings {
    let pool_source: Arc<dyn MetricSource> = Arc::new(MembersSource::new(target.clone()));
    let metrics = p
        .metrics
        .iter()
        .map(|m| {
            let source = match m.source.as_str() {
                "host" => host.clone(),
                "pool" => pool_source.clone(),
                "push" => push.clone() as Arc<dyn MetricSource>,
                other => named[other].clone(),
            };
            MetricSpec {
                name: m.name.clone(),
                source,
                query: m.query.clone().unwrap_or_else(|| m.name.clone()),
                window: Duration::from_secs(m.window_secs),
                step: Duration::from_secs(m.step_secs),
            }
        })
        .collect();
    PoolSettings {
        plan: plan(p),
        interval: Duration::from_millis(p.interval_ms),
        dry_run: p.dry_run,
        approval_above: p.approval_above,
        approval_ttl: Duration::from_secs(p.approval_ttl_secs),
        metrics,
        target,
        leader,
        advisor: advisor.map(crate::control::advisor::Advisor::new),
    }
}

/// The advisor of `p`, if it has one, built (its key, CA and templates read).
fn build_advisor(p: &PoolConfig) -> Result<Option<crate::control::advisor::AdvisorSpec>, String> {
    p.advisor.as_ref().map(|a| advisor::spec(&p.id, a)).transpose()
}

/// What keeps a pool's advisor from being built here (a key variable not
/// set, a template without `{{data}}`), for `config check`.
pub fn advisor_problems(config: &Config) -> Vec<String> {
    config.pools.iter().filter_map(|p| build_advisor(p).err()).collect()
}

impl Service {
    /// Open the journal, build every pool's target and sources, reconcile,
    /// and start the loops. Must run inside a tokio runtime.
    pub async fn start(config: &Config, experts: Arc<dyn Experts>, journal: Option<Journal>) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(WallClock);
        let host: Arc<dyn MetricSource> = Arc::new(ProcSource::new());
        let named = sources(config, None, clock.as_ref())?;
        let election = cloud::elect(config).await?;
        let leadership = election.as_ref().map(|(l, _)| l.clone());
        let elector = election.map(|(_, elector)| elector);
        let mut service = Self {
            journal,
            live: Arc::new(ArcSwap::from_pointee(Live::default())),
            leadership,
            running: BTreeMap::new(),
            config: config.clone(),
            sources: named,
            experts,
            clock,
            host,
            elector,
        };
        for p in &config.pools {
            let advisor = build_advisor(p).map_err(anyhow::Error::msg)?;
            let built = target(p).await?;
            service.start_pool(p, built, advisor, None).await?;
        }
        stop_orphans(config);
        service.publish();
        Ok(service)
    }

    /// Start pool `p` on its built target. `previous` is the advisor of the pool it replaces
    /// (a restart on a new target): the new advisor keeps its hourly cap.
    async fn start_pool(&mut self, p: &PoolConfig, (target, supervisor): BuiltTarget, advisor: Option<crate::control::advisor::AdvisorSpec>, previous: Option<crate::control::advisor::Advisor>) -> anyhow::Result<()> {
        let push = Arc::new(PushSource::new());
        let mut s = settings(p, target.clone(), &push, &self.sources, &self.host, self.leadership.clone(), advisor);
        if let (Some(new), Some(old)) = (s.advisor.as_mut(), previous) {
            new.adopt(&old);
        }
        let (stop, rx) = watch::channel(false);
        let (handle, task) = pool::start(s, self.experts.clone(), self.journal.clone(), self.clock.clone(), rx).await.map_err(anyhow::Error::msg)?;
        tracing::info!(pool = %p.id, min = p.min, max = p.max, "pool started");
        let entry = Arc::new(PoolEntry { handle, push });
        self.running.insert(p.id.clone(), Running { config: p.clone(), entry, target, stop, task, supervisor });
        Ok(())
    }

    /// Stop one pool after the decision in hand, then its target as the
    /// provider stops it (its members kept or drained by its own rules).
    async fn stop_pool(r: Running) {
        let _ = r.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(60), r.task).await.is_err() {
            tracing::warn!(pool = %r.config.id, "the pool did not stop within 60s");
        }
        if let Some(s) = r.supervisor {
            s.abort();
        }
    }

    /// Show the API the pools and sources running now.
    fn publish(&self) {
        let pools = self.running.iter().map(|(id, r)| (id.clone(), r.entry.clone())).collect();
        self.live.store(Arc::new(Live { pools, sources: self.sources.clone() }));
    }

    /// The config the service runs now.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stop every pool after the decision in hand, then its workers, then
    /// release the leader lease.
    pub async fn stop(mut self) {
        let running = std::mem::take(&mut self.running);
        let mut stopping = tokio::task::JoinSet::new();
        for r in running.into_values() {
            stopping.spawn(Self::stop_pool(r));
        }
        stopping.join_all().await;
        self.publish();
        // Only now, with no decision in hand, hand the lease on.
        if let Some((stop, task)) = self.elector {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
