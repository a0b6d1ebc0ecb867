//! `local`: a pool of worker processes on this machine, the embedded default.
//!
//! Each member runs the configured command. The pool launches members
//! concurrently, drains them on scale-in (a drain file tells the worker to
//! stop taking work, then SIGTERM, a grace period, then SIGKILL), picks
//! victims by [`pick_victims`](crate::pick_victims), restarts crashed members
//! with an exponential back-off (a command that exits at once backs off to
//! 30 s instead of spinning), and reads each member's CPU and memory from
//! /proc.
//!
//! The worker protocol is three environment variables: `SCALEWISE_MEMBER_ID`;
//! `SCALEWISE_STATUS_FILE`, where a worker may write `ready`, `busy` or
//! `idle` (a member that writes nothing counts as ready once it has stayed
//! up for `ready_after`); and `SCALEWISE_DRAIN_FILE`, which exists once the
//! member is draining.
//!
//! Every member has a pidfile in the run directory holding its pid and start
//! time, written before the worker's command runs (see `process`). At
//! start, [`LocalPool::reconcile`] adopts every member a previous host left
//! running (after a crash or `kill -9`) instead of launching new ones: those
//! its pidfiles name, and any it finds in /proc by their environment whose
//! pidfile is gone. Member ids are never reused while a process with one
//! may live: the next number is kept in `next-id` in the run directory,
//! written before the members it numbers are launched.

mod headroom;
mod process;

pub use headroom::Needs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};

/// Longest back-off between restarts of a crashing member.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A member that stays up this long is no longer in a crash loop.
const STABLE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Program and arguments.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Pidfiles, status and drain files.
    pub run_dir: PathBuf,
    /// From SIGTERM to SIGKILL.
    pub grace: Duration,
    /// A member that reports nothing is ready after staying up this long.
    pub ready_after: Duration,
    /// Leave workers running when the host shuts down gracefully.
    pub keep_on_exit: bool,
    /// What a worker needs of the machine, for the pool's headroom.
    pub needs: Needs,
}

/// How the pool knows a member's process.
enum Handle {
    /// Launched by this host: reaped with `try_wait`.
    Child(Child),
    /// Adopted from an earlier run: watched through /proc.
    Adopted,
    /// No process (crashed, waiting to restart).
    None,
}

struct Slot {
    id: String,
    handle: Handle,
    pid: u32,
    start_ticks: u64,
    state: MemberState,
    started_at: i64,
    launched: Instant,
    restarts: u32,
    /// Crashes in a row without staying up `STABLE_AFTER`.
    crash_streak: u32,
    last_error: Option<String>,
    restart_at: Option<Instant>,
    kill_at: Option<Instant>,
    busy: Option<bool>,
    cpu: Option<(u64, Instant)>,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
}

impl Slot {
    /// A member with no process yet.
    fn new(id: String, launched: Instant) -> Self {
        Slot {
            id,
            handle: Handle::None,
            pid: 0,
            start_ticks: 0,
            state: MemberState::Starting,
            started_at: crate::now_ms(),
            launched,
            restarts: 0,
            crash_streak: 0,
            last_error: None,
            restart_at: None,
            kill_at: None,
            busy: None,
            cpu: None,
            cpu_percent: None,
            memory_bytes: None,
        }
    }

    fn member(&self) -> Member {
        Member {
            id: self.id.as_str().into(),
            state: self.state,
            started_at: self.started_at,
            healthy: !matches!(self.state, MemberState::Backoff | MemberState::Stopped),
            busy: self.busy,
            cpu_percent: self.cpu_percent,
            memory_bytes: self.memory_bytes,
            restarts: self.restarts,
            last_error: self.last_error.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    slots: BTreeMap<String, Slot>,
    next: u64,
}

pub struct LocalPool {
    config: LocalConfig,
    inner: Arc<Mutex<Inner>>,
    /// The last /proc/stat reading (busy, total jiffies), for idle CPU.
    cpu_seen: Mutex<Option<(u64, u64)>>,
}

impl LocalPool {
    /// A pool with no members yet; call [`Target::reconcile`] before use and
    /// [`LocalPool::supervise`] to keep it healthy.
    pub fn new(config: LocalConfig) -> Result<Self, ProviderError> {
        if config.command.is_empty() {
            return Err(ProviderError::Other("the worker command is empty".into()));
        }
        std::fs::create_dir_all(&config.run_dir)
            .map_err(|e| ProviderError::Other(format!("cannot create run directory {}: {e}", config.run_dir.display())))?;
        Ok(Self { config, inner: Arc::default(), cpu_seen: Mutex::new(None) })
    }

    /// Run the supervision loop (reap, restart, ready, kill after grace,
    /// /proc readings) every `every` until the returned task is aborted.
    pub fn supervise(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.tick();
            }
        })
    }

    fn files(&self, id: &str) -> process::Files {
        process::Files::new(&self.config.run_dir, id)
    }

    fn next_id_file(&self) -> PathBuf {
        self.config.run_dir.join("next-id")
    }

    /// Keep `next` on disk before members numbered below it are launched.
    fn save_next(&self, next: u64) -> Result<(), String> {
        let path = self.next_id_file();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{next}\n")).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Adopt the live worker `pid` as member `id`.
    fn adopt(&self, inner: &mut Inner, id: String, pid: u32, start_ticks: u64) {
        let files = self.files(&id);
        let draining = files.drain.exists();
        let mut slot = Slot { handle: Handle::Adopted, pid, start_ticks, state: MemberState::Active, ..Slot::new(id.clone(), Instant::now() - STABLE_AFTER) };
        if draining {
            self.drain(&mut slot);
        }
        tracing::info!(member = %id, pid, draining, "adopted a worker left by an earlier run");
        if let Some(n) = id.strip_prefix("w-").and_then(|n| n.parse::<u64>().ok()) {
            inner.next = inner.next.max(n + 1);
        }
        inner.slots.insert(id, slot);
    }

    /// Launch (or relaunch) the member in `slot`.
    fn launch(&self, slot: &mut Slot) {
        let files = self.files(&slot.id);
        match process::launch(&self.config.command, &self.config.env, &slot.id, &files) {
            Ok((child, start_ticks)) => {
                slot.pid = child.id();
                slot.start_ticks = start_ticks;
                slot.handle = Handle::Child(child);
                slot.state = MemberState::Starting;
                slot.launched = Instant::now();
                slot.started_at = crate::now_ms();
                slot.restart_at = None;
                slot.busy = None;
                slot.cpu = None;
                tracing::info!(member = %slot.id, pid = slot.pid, "worker started");
            }
            Err(e) => {
                tracing::warn!(member = %slot.id, "cannot start worker: {e}");
                slot.last_error = Some(format!("cannot start: {e}"));
                self.back_off(slot);
            }
        }
    }

    fn back_off(&self, slot: &mut Slot) {
        slot.crash_streak += 1;
        let delay = Duration::from_millis(500u64.saturating_mul(1 << slot.crash_streak.min(10))).min(MAX_BACKOFF);
        slot.state = MemberState::Backoff;
        slot.handle = Handle::None;
        slot.restart_at = Some(Instant::now() + delay);
    }

    /// One round of supervision. Cheap: a few /proc reads per member.
    pub fn tick(&self) {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut gone = Vec::new();
        for slot in inner.slots.values_mut() {
            let exited = match &mut slot.handle {
                Handle::Child(c) => match c.try_wait() {
                    Ok(Some(status)) => Some(status.to_string()),
                    Ok(None) => None,
                    Err(e) => Some(e.to_string()),
                },
                Handle::Adopted => (!process::is_same_live(slot.pid, slot.start_ticks)).then(|| "exited".to_owned()),
                Handle::None => None,
            };
            if let Some(how) = exited {
                if slot.state == MemberState::Draining {
                    tracing::info!(member = %slot.id, "worker drained and stopped ({how})");
                    slot.state = MemberState::Stopped;
                    gone.push(slot.id.clone());
                    continue;
                }
                if slot.launched.elapsed() >= STABLE_AFTER {
                    slot.crash_streak = 0;
                }
                slot.restarts += 1;
                slot.last_error = Some(format!("worker {how}"));
                self.back_off(slot);
                tracing::warn!(member = %slot.id, restarts = slot.restarts, "worker {how}; restarting after back-off");
                continue;
            }
            match slot.state {
                MemberState::Backoff if slot.restart_at.is_some_and(|t| now >= t) => self.launch(slot),
                MemberState::Draining if slot.kill_at.is_some_and(|t| now >= t) => {
                    if !matches!(slot.handle, Handle::None) && process::is_same_live(slot.pid, slot.start_ticks) {
                        tracing::warn!(member = %slot.id, "worker outlived its grace period; SIGKILL");
                        process::signal(slot.pid, libc::SIGKILL);
                    }
                    slot.kill_at = None;
                }
                MemberState::Draining if matches!(slot.handle, Handle::None) => {
                    slot.state = MemberState::Stopped;
                    gone.push(slot.id.clone());
                }
                _ => {}
            }
            if matches!(slot.state, MemberState::Starting | MemberState::Active | MemberState::Draining) {
                let status = process::read_status(&self.files(&slot.id).status);
                slot.busy = match status.as_deref() {
                    Some("busy") => Some(true),
                    Some("idle") | Some("ready") => Some(false),
                    _ => slot.busy,
                };
                if slot.state == MemberState::Starting && (status.is_some() || slot.launched.elapsed() >= self.config.ready_after) {
                    slot.state = MemberState::Active;
                }
                if let Some(stat) = process::read_stat(slot.pid) {
                    if let Some((ticks, at)) = slot.cpu {
                        let secs = at.elapsed().as_secs_f64();
                        if secs > 0.0 {
                            slot.cpu_percent = Some(100.0 * (stat.cpu_ticks.saturating_sub(ticks)) as f64 / process::ticks_per_second() / secs);
                        }
                    }
                    slot.cpu = Some((stat.cpu_ticks, now));
                    slot.memory_bytes = Some(stat.rss_pages * process::page_size());
                }
            }
        }
        for id in gone {
            inner.slots.remove(&id);
            self.files(&id).remove_all();
        }
    }

    fn drain(&self, slot: &mut Slot) {
        slot.state = MemberState::Draining;
        let files = self.files(&slot.id);
        let _ = std::fs::write(&files.drain, b"draining\n");
        if matches!(slot.handle, Handle::None) {
            return;
        }
        process::signal(slot.pid, libc::SIGTERM);
        slot.kill_at = Some(Instant::now() + self.config.grace);
        tracing::info!(member = %slot.id, pid = slot.pid, "draining worker");
    }

    fn snapshot(&self) -> PoolState {
        let inner = self.inner.lock().unwrap();
        PoolState { members: inner.slots.values().map(Slot::member).collect() }
    }
}

#[async_trait]
impl Target for LocalPool {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        let available = std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(headroom::available_memory);
        let idle_cores = std::fs::read_to_string("/proc/stat").ok().as_deref().and_then(crate::sources::proc::parse_cpu).and_then(|now| {
            let before = self.cpu_seen.lock().unwrap().replace(now)?;
            let (busy, total) = (now.0.saturating_sub(before.0), now.1.saturating_sub(before.1));
            (total > 0).then(|| crate::sources::proc::cores() * (1.0 - busy as f64 / total as f64))
        });
        headroom::fit(&self.config.needs, available, idle_cores, &state.members, state.capacity())
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        let dir = &self.config.run_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| ProviderError::Read(format!("{}: {e}", dir.display())))?;
        {
            let mut inner = self.inner.lock().unwrap();
            if let Some(n) = std::fs::read_to_string(self.next_id_file()).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                inner.next = inner.next.max(n);
            }
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pid")).map(str::to_owned) else {
                    continue;
                };
                if inner.slots.contains_key(&id) {
                    continue;
                }
                if let Some(n) = id.strip_prefix("w-").and_then(|n| n.parse::<u64>().ok()) {
                    inner.next = inner.next.max(n + 1);
                }
                let files = self.files(&id);
                match process::read_pidfile(&path) {
                    Some((pid, Some(start_ticks))) if process::is_same_live(pid, start_ticks) => self.adopt(&mut inner, id, pid, start_ticks),
                    // Written by the worker before it ran; its launcher
                    // stopped before adding the start time.
                    Some((pid, None)) if process::is_member(pid, &id, &files) => {
                        let start_ticks = process::read_stat(pid).map_or(0, |s| s.start_ticks);
                        let _ = std::fs::write(&files.pid, format!("{pid} {start_ticks}\n"));
                        self.adopt(&mut inner, id, pid, start_ticks);
                    }
                    _ => files.remove_all(),
                }
            }
            // Workers whose pidfile is gone: found by their environment.
            for (id, pid) in process::find_members(dir) {
                if inner.slots.contains_key(&id) {
                    continue;
                }
                let start_ticks = process::read_stat(pid).map_or(0, |s| s.start_ticks);
                tracing::warn!(member = %id, pid, "a worker of this pool was running without a pidfile; adopting it");
                let _ = std::fs::write(self.files(&id).pid, format!("{pid} {start_ticks}\n"));
                self.adopt(&mut inner, id, pid, start_ticks);
            }
            let next = inner.next;
            if let Err(e) = self.save_next(next) {
                tracing::warn!("{e}");
            }
        }
        self.tick();
        Ok(self.snapshot())
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        Ok(self.snapshot())
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        let mut outcome = ScaleOutcome::default();
        let mut failures = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            let state = PoolState { members: inner.slots.values().map(Slot::member).collect() };
            let (members, capacity) = (&state.members, state.capacity());
            if desired < capacity {
                for id in pick_victims(members, (capacity - desired) as usize) {
                    if let Some(slot) = inner.slots.get_mut(&id) {
                        self.drain(slot);
                        outcome.removed.push(id);
                    }
                }
            }
            if desired > capacity
                && let Err(e) = self.save_next(inner.next + u64::from(desired - capacity))
            {
                // Without it a later host could reuse an id; launch nothing.
                return Err(ProviderError::Launch(format!("{e}; no worker was started")));
            }
            for _ in capacity..desired {
                let id = format!("w-{}", inner.next);
                inner.next += 1;
                let mut slot = Slot::new(id.clone(), Instant::now());
                self.launch(&mut slot);
                if let Some(e) = &slot.last_error {
                    failures.push(e.clone());
                }
                outcome.launched.push(id.clone());
                inner.slots.insert(id, slot);
            }
        }
        outcome.capacity = self.snapshot().capacity();
        match failures.first() {
            // Failed launches stay as members in back-off: the pool retries
            // them on its own, and the caller hears why now.
            Some(e) => Err(ProviderError::Launch(format!("{} of {} launches failed, retrying with back-off; first: {e}", failures.len(), outcome.launched.len()))),
            None => Ok(outcome),
        }
    }

    async fn shutdown(&self) {
        if self.config.keep_on_exit {
            return;
        }
        {
            let mut inner = self.inner.lock().unwrap();
            for slot in inner.slots.values_mut() {
                if slot.state != MemberState::Draining {
                    self.drain(slot);
                }
            }
        }
        let deadline = Instant::now() + self.config.grace + Duration::from_millis(500);
        while Instant::now() < deadline {
            self.tick();
            if self.inner.lock().unwrap().slots.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests;
