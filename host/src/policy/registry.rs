//! The live set of policies, swapped atomically.
//!
//! Readers take a snapshot (`ArcSwap::load`) and hold an `Arc` to the version
//! they call, so an evaluation that started on the old version finishes on
//! it even if a new version lands mid-call; the next evaluation sees the new
//! one. Writers (loads, unloads, rescans) are serialised by a lock and publish
//! a whole new [`PolicySet`], so a reader never sees half a change.
//!
//! A new version replaces the old only after it loaded, accepted its
//! settings and survived a smoke call.
//!
//! Compiling with Cranelift takes ~100 ms for a typical policy, several
//! times that on a busy host. With a baseline engine and tiering started
//! ([`Registry::with_baseline`], [`Registry::start_tiering`]), a new version
//! is first built with Winch (~5x faster to compile) and serves at once; a
//! background thread then builds it with Cranelift and swaps that build in,
//! if the version is still the one serving. Both builds pass the same checks.
//!
//! The directory is untrusted input: files are read through
//! [`super::file`] (regular files only, a size cap, the header first, and
//! only once they have settled). Two files that define the same id are a
//! *clash*: neither is loaded, the serving version keeps serving, and the
//! clash is reported loudly (a WARN line, the policy's status and a
//! metric) until one file goes. A policy whose file is removed while pools
//! use it is unloaded, and the pools it leaves are named, as loudly.
//! A failure is logged once per cause, not on every rescan.
//!
//! Version numbers come from a [`Ledger`]: the same build with the same
//! settings keeps its number across restarts, and a failed load uses none.
//!
//! The version a new one replaced is kept as the fallback: if the new one
//! faults on a real input (trap, timeout, nonsense output), the call is
//! answered by the previous version and the fault is reported. A file that
//! fails to load leaves whatever served before in service and records the
//! error in the policy's status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::error::{LoadError, PolicyError};
use super::file::{self, FileLimits};
use super::versions::{self, Ledger};
use super::status::{PolicyStatus, StatusSnapshot, VersionInfo};
use super::{Compiler, Policy, PolicyEngine, PolicySource, RoleInput, digest};

#[derive(Clone)]
struct Entry {
    current: Arc<Policy>,
    previous: Option<Arc<Policy>>,
}

/// One consistent view of every loaded policy.
#[derive(Clone, Default)]
pub struct PolicySet {
    entries: BTreeMap<String, Entry>,
}

impl PolicySet {
    pub fn get(&self, id: &str) -> Option<&Arc<Policy>> {
        self.entries.get(id).map(|e| &e.current)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// The answer to one evaluation, and which version gave it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evaluation<T> {
    pub output: T,
    pub generation: u64,
    pub digest: String,
    /// Set when the serving version faulted and the previous one answered.
    pub fallback: Option<String>,
}

impl<T> Evaluation<T> {
    /// The same evaluation with its output mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Evaluation<U> {
        Evaluation { output: f(self.output), generation: self.generation, digest: self.digest, fallback: self.fallback }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no policy `{0}` is loaded; check the policy directory and `GET /policies` for load errors")]
    NotLoaded(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Settings given for one evaluation that the policy's
    /// `validate-config` refused.
    #[error("the policy refused the settings given: {0}")]
    Settings(String),
}

/// What identifies one version of a file without reading it. The inode
/// changes on every atomic rename, the size and times on in-place writes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
    changed_ns: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
        changed_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
    })
}

/// What a rescan did.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    pub loaded: Vec<String>,
    pub unloaded: Vec<String>,
    /// Each `[policy id, why it did not load]`.
    #[schema(value_type = Vec<Vec<String>>)]
    pub failed: Vec<(String, String)>,
    /// Changed files not loaded yet because they have not settled.
    pub pending: Vec<String>,
    /// When to scan again for the pending files to be due.
    #[serde(skip)]
    pub recheck_in: Option<Duration>,
}

/// How long a Winch build serves before its Cranelift build starts.
pub const TIER_UP_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// A version serving from a Winch build, to be rebuilt with Cranelift.
struct TierJob {
    id: String,
    path: PathBuf,
    bytes: Vec<u8>,
    settings: String,
    generation: u64,
}

fn version_info(policy: &Policy) -> VersionInfo {
    VersionInfo {
        generation: policy.generation,
        digest: policy.digest.clone(),
        role: policy.role().as_str(),
        runtime: policy.runtime_kind(),
        compiled_by: policy.compiled_by,
        source: policy.source.display().to_string(),
        loaded_at_ms: super::status::unix_ms(policy.loaded_at),
    }
}

pub struct Registry {
    engine: Arc<PolicyEngine>,
    baseline: Option<Arc<PolicyEngine>>,
    tiering: Mutex<Option<mpsc::Sender<TierJob>>>,
    dir: PathBuf,
    settings: RwLock<HashMap<String, String>>,
    /// Policy instances: id → the policy whose file each loads (with the
    /// instance's own settings). A swap of that file swaps them all.
    instances: RwLock<BTreeMap<String, String>>,
    live: ArcSwap<PolicySet>,
    statuses: Mutex<BTreeMap<String, Arc<PolicyStatus>>>,
    limits: FileLimits,
    /// Which pools use each policy id, to say whom an unload affects.
    users: RwLock<BTreeMap<String, Vec<String>>>,
    /// Serialises writers, and holds what they know of the directory.
    writer: Mutex<Files>,
    /// A registry that only checks (`config check`, a reload's check):
    /// what it loads serves nothing, so it says so only at debug level.
    checking: bool,
}

/// What the writers know of the directory.
#[derive(Default)]
struct Files {
    /// Which file (and which stamp of it) each id was last loaded from.
    loaded: HashMap<String, (PathBuf, Stamp)>,
    /// Changed files waiting to settle: the stamp seen, and since when.
    pending: HashMap<PathBuf, (Stamp, Instant)>,
    /// The ids in a clash, with the files that clash.
    clashes: BTreeMap<String, Vec<PathBuf>>,
    /// Remote policies (see [`super::remote`]): id → the checked copy in
    /// the cache, served as if it were in the directory.
    remote: BTreeMap<String, PathBuf>,
    ledger: Ledger,
}

/// The policy id of a file: its name without the extension.
pub fn policy_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    let ext = path.extension()?.to_str()?;
    if !matches!(ext, "wasm" | "rhai") {
        return None;
    }
    Some(path.file_stem()?.to_str()?.to_owned())
}

impl Registry {
    /// `settings` maps policy ids to their settings as JSON text.
    pub fn new(engine: Arc<PolicyEngine>, dir: impl Into<PathBuf>, settings: HashMap<String, String>) -> Self {
        Self {
            engine,
            baseline: None,
            tiering: Mutex::new(None),
            dir: dir.into(),
            settings: RwLock::new(settings),
            instances: RwLock::default(),
            live: ArcSwap::from_pointee(PolicySet::default()),
            statuses: Mutex::new(BTreeMap::new()),
            limits: FileLimits { settle: Duration::ZERO, ..FileLimits::default() },
            users: RwLock::default(),
            writer: Mutex::new(Files { ledger: Ledger::in_memory(), ..Files::default() }),
            checking: false,
        }
    }

    /// A registry that only checks a config: see [`Registry::checking`].
    pub fn for_checking(mut self) -> Self {
        self.checking = true;
        self
    }

    /// Read files within these limits (the default settles nothing).
    pub fn with_file_limits(mut self, limits: FileLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep version numbers in this file, so they survive a restart.
    pub fn with_version_ledger(self, path: &Path) -> Self {
        self.writer.lock().unwrap().ledger = Ledger::open(path);
        self
    }

    /// Which pools use which policy ids (id → pools), so that an unload
    /// can say whom it affects.
    pub fn with_users(mut self, users: BTreeMap<String, Vec<String>>) -> Self {
        self.users = RwLock::new(users);
        self
    }

    /// Also load each policy instance (id → the policy it loads) whenever
    /// its policy's file is found; its settings are in `settings` under the
    /// instance id.
    pub fn with_instances(mut self, instances: BTreeMap<String, String>) -> Self {
        self.instances = RwLock::new(instances);
        self
    }

    /// Serve these remote policies (id → checked copy) beside the directory's.
    pub fn with_remote(self, remote: BTreeMap<String, PathBuf>) -> Self {
        self.writer.lock().unwrap().remote = remote;
        self
    }

    /// Build new versions with this (Winch) engine first, once tiering is
    /// started; see the module documentation.
    pub fn with_baseline(mut self, baseline: Arc<PolicyEngine>) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// A config reload's policy settings, instances and users: what
    /// changed is loaded again (a policy whose settings changed becomes a
    /// new version, a new instance loads, a dropped one unloads) by one
    /// rescan before this returns, so the pools that name them find them
    /// when they next tick.
    pub fn reconfigure(&self, settings: HashMap<String, String>, instances: BTreeMap<String, String>, users: BTreeMap<String, Vec<String>>, remote: BTreeMap<String, PathBuf>) -> ScanReport {
        {
            let mut files = self.writer.lock().unwrap();
            files.remote = remote;
            let old_settings = self.settings.read().unwrap().clone();
            let old_instances = self.instances.read().unwrap().clone();
            let changed: Vec<String> = files
                .loaded
                .keys()
                .filter(|id| old_settings.get(*id) != settings.get(*id) || old_instances.get(*id) != instances.get(*id))
                .cloned()
                .collect();
            for id in changed {
                // Forgetting the stamp makes the rescan load it again.
                files.loaded.remove(&id);
            }
            *self.settings.write().unwrap() = settings;
            *self.instances.write().unwrap() = instances;
            *self.users.write().unwrap() = users;
        }
        self.rescan()
    }

    /// Start the thread that replaces Winch builds with Cranelift builds.
    /// It holds no strong reference: it ends when the registry is dropped.
    pub fn start_tiering(self: &Arc<Self>) {
        let (tx, rx) = mpsc::channel::<TierJob>();
        let registry = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("scalewise-tier-up".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // Let a burst of swaps settle first: a Cranelift build of a
                    // version about to be replaced would only hold up the
                    // Winch build of its successor, which shares the
                    // compile threads. Stale jobs are skipped in `tier_up`.
                    std::thread::sleep(TIER_UP_DELAY);
                    let jobs: Vec<TierJob> = std::iter::once(job).chain(rx.try_iter()).collect();
                    let Some(registry) = registry.upgrade() else { return };
                    for job in jobs {
                        registry.tier_up(job);
                    }
                }
            })
            .expect("spawn the tier-up thread");
        *self.tiering.lock().unwrap() = Some(tx);
    }

    fn still_on_baseline(&self, job: &TierJob) -> bool {
        self.get(&job.id).is_some_and(|p| p.generation == job.generation && p.compiled_by == Compiler::Winch.as_str())
    }

    fn tier_up(&self, job: TierJob) {
        if !self.still_on_baseline(&job) {
            return; // a newer version replaced it already
        }
        let status = self.status(&job.id);
        let src = PolicySource { id: &job.id, path: &job.path, bytes: &job.bytes, settings: &job.settings, generation: job.generation };
        let policy = match Policy::load(&self.engine, src, status.clone()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::warn!(policy = %job.id, version = job.generation, "the Cranelift build failed; the Winch build keeps serving: {e}");
                return;
            }
        };
        let _writer = self.writer.lock().unwrap();
        if !self.still_on_baseline(&job) {
            return;
        }
        status.update_serving(version_info(&policy));
        self.publish(|set| {
            if let Some(entry) = set.entries.get_mut(&job.id) {
                entry.current = policy.clone();
            }
        });
        tracing::info!(policy = %job.id, version = job.generation, "optimised build serving");
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// A consistent snapshot of everything loaded.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        self.live.load_full()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Policy>> {
        self.live.load().get(id).cloned()
    }

    fn status(&self, id: &str) -> Arc<PolicyStatus> {
        self.statuses.lock().unwrap().entry(id.to_owned()).or_default().clone()
    }

    /// Status of every policy the registry has seen, loaded or not.
    pub fn statuses(&self) -> Vec<StatusSnapshot> {
        self.statuses.lock().unwrap().iter().map(|(id, s)| s.snapshot(id)).collect()
    }

    /// Each policy's live status, for metrics exposition.
    pub fn status_handles(&self) -> Vec<(String, Arc<PolicyStatus>)> {
        self.statuses.lock().unwrap().iter().map(|(id, s)| (id.clone(), s.clone())).collect()
    }

    pub fn status_of(&self, id: &str) -> Option<StatusSnapshot> {
        self.statuses.lock().unwrap().get(id).map(|s| s.snapshot(id))
    }

    fn settings_of(&self, id: &str) -> String {
        self.settings.read().unwrap().get(id).cloned().unwrap_or_else(|| "{}".to_owned())
    }

    fn publish(&self, change: impl FnOnce(&mut PolicySet)) {
        let mut next = PolicySet::clone(&self.live.load());
        change(&mut next);
        self.live.store(Arc::new(next));
    }

    /// Load (or reload) one policy file under `id`: a policy instance's id,
    /// or the file's own.
    pub fn load_as(&self, id: &str, path: &Path) -> Result<Arc<Policy>, LoadError> {
        let mut files = self.writer.lock().unwrap();
        self.load_locked(&mut files, id.to_owned(), path)
    }

    fn load_locked(&self, files: &mut Files, id: String, path: &Path) -> Result<Arc<Policy>, LoadError> {
        let status = self.status(&id);
        // Stamp before reading: if the file changes while it loads, the next
        // rescan sees a new stamp and loads again. (Stamping afterwards would
        // mistake the newer file for the one just loaded.)
        let before = stamp(path);
        let result = self.load_file(&id, path, status.clone(), &mut files.ledger);
        if let Some(s) = before {
            files.loaded.insert(id.clone(), (path.to_owned(), s));
        }
        match result {
            Ok(policy) => Ok(policy),
            Err(e) => {
                self.report_load_error(&id, &status, format!("{}: {e}", path.display()));
                Err(e)
            }
        }
    }

    /// Record that `id` could not be loaded for a reason found outside the
    /// registry (a remote policy that could not be fetched), as loudly as
    /// a load error.
    pub fn record_load_error(&self, id: &str, message: String) {
        let status = self.status(id);
        self.report_load_error(id, &status, message);
    }

    /// Record a load error; log it only if it is news, so a cause that
    /// persists across rescans is reported once.
    fn report_load_error(&self, id: &str, status: &PolicyStatus, message: String) {
        let repeated = status.snapshot(id).last_load_error.is_some_and(|e| e.message == message);
        if repeated {
            tracing::debug!(policy = %id, "policy still not loaded: {message}");
        } else {
            tracing::warn!(policy = %id, "policy not loaded: {message}");
        }
        status.record_load_error(message);
    }

    fn load_file(&self, id: &str, path: &Path, status: Arc<PolicyStatus>, ledger: &mut Ledger) -> Result<Arc<Policy>, LoadError> {
        let bytes = file::read(path, &self.limits)?;
        let settings = self.settings_of(id);
        let digest = digest(&bytes);
        if let Some(current) = self.get(id)
            && current.digest == digest && current.settings() == settings && current.source == path {
                return Ok(current);
            }
        let key = versions::key(&digest, &settings);
        let generation = ledger.peek(id, &key);
        // Winch first when tiering is on, unless Cranelift's build is cached.
        let tiering = self.tiering.lock().unwrap().clone();
        let baseline = match (&self.baseline, &tiering) {
            (Some(b), Some(_)) if path.extension().is_some_and(|e| e == "wasm") => {
                let cached = self.engine.cache.as_ref().is_some_and(|c| c.contains(&self.engine.engine, &bytes));
                (!cached).then_some(b)
            }
            _ => None,
        };
        let src = PolicySource { id, path, bytes: &bytes, settings: &settings, generation };
        let policy = Arc::new(Policy::load(baseline.unwrap_or(&self.engine), src, status.clone())?);
        ledger.commit(id, &key, generation);
        status.set_serving(Some(version_info(&policy)));
        let installed = policy.clone();
        self.publish(|set| {
            let previous = set.entries.remove(id).map(|e| e.current);
            set.entries.insert(id.to_owned(), Entry { current: installed, previous });
        });
        if self.checking {
            tracing::debug!(policy = %id, role = %policy.role(), "policy checked");
        } else {
            tracing::info!(policy = %id, version = generation, role = %policy.role(), digest = &policy.digest[..12], compiled_by = policy.compiled_by, "policy serving");
        }
        if let (Some(_), Some(tx)) = (baseline, tiering) {
            let job = TierJob { id: id.to_owned(), path: path.to_owned(), bytes, settings, generation };
            let _ = tx.send(job);
        }
        Ok(policy)
    }

    fn unload_locked(&self, id: &str, path: Option<&Path>) -> bool {
        let present = self.live.load().entries.contains_key(id);
        if present {
            self.publish(|set| {
                set.entries.remove(id);
            });
            let status = self.status(id);
            status.set_serving(None);
            let file = path.map_or_else(|| "its file".to_owned(), |p| p.display().to_string());
            match self.users.read().unwrap().get(id).filter(|pools| !pools.is_empty()) {
                Some(pools) => {
                    let message = format!(
                        "unloaded: {file} was removed while pools [{}] use this policy; they decide without it (a strategy abstains, a missing consensus or cost rule holds the pool) until a file for `{id}` is back",
                        pools.join(", ")
                    );
                    tracing::warn!(policy = %id, pools = ?pools, "policy {message}");
                    status.record_load_error(message);
                }
                None => tracing::info!(policy = %id, "policy unloaded: {file} was removed; no pool uses it"),
            }
        }
        present
    }

    /// Has the changed file at `path` settled? Either its modification
    /// time is older than the settle time, or this registry has seen the
    /// same stamp for that long (which also covers a clock that runs behind
    /// the file system's).
    fn settled(&self, files: &mut Files, path: &Path, now: Instant) -> Result<(), Duration> {
        let settle = self.limits.settle;
        let Some(current) = stamp(path) else { return Ok(()) };
        if file::settled(current.modified, SystemTime::now(), settle) {
            files.pending.remove(path);
            return Ok(());
        }
        match files.pending.get(path) {
            Some((seen, since)) if *seen == current => {
                let waited = now.duration_since(*since);
                if waited >= settle {
                    files.pending.remove(path);
                    Ok(())
                } else {
                    Err(settle - waited)
                }
            }
            _ => {
                files.pending.insert(path.to_owned(), (current, now));
                Err(settle)
            }
        }
    }

    /// Bring the live set in line with the directory: load new and changed
    /// files, unload the ones that are gone.
    pub fn rescan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let mut guard = self.writer.lock().unwrap();
        let files = &mut *guard;
        let mut candidates: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        match std::fs::read_dir(&self.dir) {
            Ok(dir) => {
                for path in dir.filter_map(|e| e.ok().map(|e| e.path())) {
                    if let Some(id) = policy_id(&path) {
                        candidates.entry(id).or_default().push(path);
                    }
                }
            }
            Err(e) => tracing::warn!(dir = %self.dir.display(), "cannot read the policy directory: {e}"),
        }
        // A remote policy stands beside the directory's files: one with
        // the same id is a clash like any other.
        for (id, path) in &files.remote {
            candidates.entry(id.clone()).or_default().push(path.clone());
        }
        let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut clashes: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for (id, mut paths) in candidates {
            paths.sort();
            if paths.len() == 1 {
                found.insert(id, paths.pop().expect("one path"));
            } else {
                clashes.insert(id, paths);
            }
        }
        for (id, base) in self.instances.read().unwrap().iter() {
            if let Some(path) = found.get(base).cloned() {
                found.insert(id.clone(), path);
            } else if let Some(paths) = clashes.get(base).cloned() {
                clashes.insert(id.clone(), paths);
            }
        }
        self.report_clashes(files, &clashes, &mut report);
        let now = Instant::now();
        for (id, path) in &found {
            let unchanged = files.loaded.get(id).is_some_and(|(p, s)| p == path && Some(*s) == stamp(path));
            if unchanged {
                continue;
            }
            // A remote policy's copy was written whole (renamed in) and
            // checked against its digest: nothing to wait for.
            let remote = files.remote.get(id).or_else(|| self.instances.read().unwrap().get(id).and_then(|b| files.remote.get(b))).is_some_and(|p| p == path);
            if let Err(wait) = if remote { Ok(()) } else { self.settled(files, path, now) } {
                report.pending.push(id.clone());
                report.recheck_in = Some(report.recheck_in.map_or(wait, |w| w.min(wait)));
                continue;
            }
            match self.load_locked(files, id.clone(), path) {
                Ok(_) => report.loaded.push(id.clone()),
                Err(e) => report.failed.push((id.clone(), e.to_string())),
            }
        }
        // An id in a clash keeps serving what it served: it is not gone.
        let gone: Vec<String> = self.live.load().ids().filter(|id| !found.contains_key(*id) && !clashes.contains_key(*id)).map(str::to_owned).collect();
        for id in gone {
            let path = files.loaded.remove(&id).map(|(p, _)| p);
            if self.unload_locked(&id, path.as_deref()) {
                report.unloaded.push(id);
            }
        }
        files.loaded.retain(|id, _| found.contains_key(id) || clashes.contains_key(id));
        let live_paths: BTreeSet<&PathBuf> = found.values().collect();
        files.pending.retain(|p, _| live_paths.contains(p));
        report
    }

    /// Refuse every file in a clash, keep what served, and say so: loudly
    /// when a clash starts, and again in the status until it ends.
    fn report_clashes(&self, files: &mut Files, clashes: &BTreeMap<String, Vec<PathBuf>>, report: &mut ScanReport) {
        for (id, paths) in clashes {
            let status = self.status(id);
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let serving = self.get(id).map_or_else(|| "nothing was serving".to_owned(), |p| format!("v{} keeps serving", p.generation));
            let message = LoadError::Clash(format!("{} all define policy `{id}`; none was loaded and {serving}; remove all but one", names.join(" and ")));
            if files.clashes.get(id) != Some(paths) {
                tracing::warn!(policy = %id, files = ?names, "policy clash: {message}");
            }
            status.set_clash(Some(names));
            status.record_load_error(message.to_string());
            report.failed.push((id.clone(), message.to_string()));
        }
        for (id, _) in files.clashes.iter().filter(|(id, _)| !clashes.contains_key(*id)) {
            tracing::info!(policy = %id, "policy clash resolved");
            self.status(id).set_clash(None);
        }
        files.clashes = clashes.clone();
    }

    /// Which pools use `id`, and whether the config gives it settings: a
    /// policy that neither is merely unconfigured when it does not load.
    pub fn usage(&self, id: &str) -> (Vec<String>, bool) {
        let pools = self.users.read().unwrap().get(id).cloned().unwrap_or_default();
        (pools, self.settings.read().unwrap().contains_key(id))
    }

    /// The policy ids some pool uses that no version serves, with those pools.
    pub fn unserved(&self) -> Vec<(String, Vec<String>)> {
        let live = self.live.load();
        self.users.read().unwrap().iter().filter(|(id, _)| live.get(id).is_none()).map(|(id, pools)| (id.clone(), pools.clone())).collect()
    }

    /// Evaluate the serving version of `id` without counting the call in
    /// its status, and without falling back: see [`super::AnyInput::try_in`].
    /// `settings`, when given, replace the configured ones for this call,
    /// once the policy's `validate-config` has accepted them.
    pub fn try_out<I: RoleInput>(&self, id: &str, input: &I, settings: Option<&str>) -> Result<Evaluation<I::Output>, RegistryError> {
        let policy = self.get(id).ok_or_else(|| RegistryError::NotLoaded(id.to_owned()))?;
        let output = policy.call_with(input, settings)?;
        Ok(Evaluation { output, generation: policy.generation, digest: policy.digest.clone(), fallback: None })
    }

    /// Evaluate policy `id`. If the serving version faults and a previous
    /// version exists, the previous one answers and the fault is reported.
    pub fn evaluate<I: RoleInput>(&self, id: &str, input: &I) -> Result<Evaluation<I::Output>, RegistryError> {
        let entry = self.live.load().entries.get(id).cloned().ok_or_else(|| RegistryError::NotLoaded(id.to_owned()))?;
        let served = |p: &Policy, output, fallback| Evaluation { output, generation: p.generation, digest: p.digest.clone(), fallback };
        match entry.current.evaluate(input) {
            Ok(out) => Ok(served(&entry.current, out, None)),
            Err(e) if e.is_fault() => {
                let Some(previous) = &entry.previous else { return Err(e.into()) };
                let out = previous.evaluate(input).map_err(|_| e.clone())?;
                entry.current.status().record_fallback();
                tracing::warn!(policy = %id, version = entry.current.generation, fallback = previous.generation, "version faulted, previous answered: {e}");
                Ok(served(previous, out, Some(e.to_string())))
            }
            Err(e) => Err(e.into()),
        }
    }
}
