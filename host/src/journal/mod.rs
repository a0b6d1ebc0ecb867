//! The decision journal: every decision, every action's intent and outcome,
//! and every pool's memory (guardrail history, policy states), in a
//! crash-safe embedded store (redb: copy-on-write B-trees, a commit is
//! durable once `commit` returns).
//!
//! Writes go through one writer thread that commits whatever has queued up
//! in one transaction (group commit): ten thousand pools deciding each
//! second cost a few hundred fsyncs, not ten thousand, yet each pool waits
//! for its own record to be durable before it acts. An action is journalled
//! as `pending` before the target is called, so a host killed between the
//! two finds the intent on restart and does not take it again.
//!
//! The store is a log: each commit appends one segment (see [`segment`])
//! holding all of its records, each frame pointing at its pool's previous
//! decision. Appending touches only the end of the tree, whatever the number
//! of pools; measured at 10,000 decisions a second, keying rows by
//! (pool, seq) instead cost the writer most of a core, and one row per
//! decision under a global key still a third of one. Where each pool's
//! newest decision and memory are is kept in memory, written as a
//! checkpoint every few seconds, and rebuilt at open from the checkpoint
//! and the segments after it.
//!
//! A write that fails (disk full, read-only file system) is reported to the
//! pool that asked, which keeps deciding; what was committed before stays.

mod heads;
mod history;
pub mod retention;
mod segment;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::Serialize;

use heads::{Head, Index};
use retention::{Buckets, Retention};
use segment::{Frame, Ptr};
use tokio::sync::oneshot;

use crate::decide::memory::PoolMemory;
use crate::decide::record::DecisionRecord;

pub use history::Written;
pub use retention::Retention as JournalRetention;

/// Segment number → the frames one commit wrote.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// [`heads::KEY`] → the newest segment the checkpoint covers, then every pool's [`Head`].
const CHECKPOINT: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
/// How long the writer gathers records into one commit.
const GATHER: Duration = Duration::from_millis(3);
/// How often the index is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// redb's page cache. Its default (1 GiB) would let the host's memory grow
/// with the journal; the writer and the API's reads need little.
const CACHE_BYTES: usize = 32 << 20;
/// A policy state this large is worth a warning (once per pool and policy):
/// it is written again each time it changes.
pub const LARGE_STATE: usize = 256 * 1024;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Policy states, written as the pool memory writes them. A pool's own
/// states section is a *baseline*: every state it had then. After it, a
/// state that changes is written in a frame of its own key
/// ([`state_key`]), holding that one entry, or none once the pool no longer
/// has the policy. The states are the newest baseline with the policy
/// frames written after it (a later frame has a higher [`Ptr`]).
#[derive(Serialize, serde::Deserialize)]
struct States {
    #[serde(with = "crate::decide::state_text")]
    states: BTreeMap<String, Vec<u8>>,
}

#[derive(Serialize)]
struct StatesRef<'a> {
    #[serde(serialize_with = "crate::decide::state_text::serialize")]
    states: &'a BTreeMap<String, Vec<u8>>,
}

/// The index key under which one policy's state of a pool is kept: a
/// state is written only when it changed, so a large state that stays the
/// same costs nothing while another policy's small one changes each tick.
/// A NUL cannot be in a pool id or a policy id (a file name), and keys
/// with no decision are not pools to any listing.
fn state_key(pool: &str, policy: &str) -> String {
    format!("{pool}\0{policy}")
}

/// The policy whose state `key` holds, if it is one of `pool`'s.
fn state_policy<'a>(key: &'a str, pool: &str) -> Option<&'a str> {
    key.strip_prefix(pool)?.strip_prefix('\0')
}

fn state_hash(state: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open journal {path}: {detail}; check the path and its permissions, or set [journal] path")]
    Open { path: String, detail: String },
    #[error("journal write failed: {0}; decisions go on but are not being recorded")]
    Write(String),
    #[error("journal read failed: {0}")]
    Read(String),
    #[error("the journal writer has stopped")]
    Closed,
}

/// What a pool's policy states were when last written.
#[derive(Clone)]
struct WrittenStates {
    /// The hash of each policy's state.
    hashes: HashMap<String, u64>,
    /// Bytes of per-policy frames written since the pool's last baseline.
    since_baseline: usize,
    /// The journal's bytes submitted, and the time, at that baseline.
    baseline_bytes: u64,
    baseline_ms: i64,
}

/// A baseline is also written once the journal as a whole has taken this
/// share of retention's `max_bytes` (or the time, of `max_age`) since the
/// pool's last one. Compaction keeps 15 to 25% of `max_bytes`, so the
/// window a replay reads then has a baseline in its first part, even for
/// a pool whose changes are too small to call for one by size.
const BASELINE_SHARE: u64 = 20;

/// A baseline is written once the changes since the last one reach the
/// whole map's size, or this much, whichever is more: small maps are not
/// rewritten every few ticks.
const MIN_BASELINE: usize = 16 * 1024;

struct Job {
    pool: String,
    record: Option<(u64, Vec<u8>)>,
    memory: Option<Vec<u8>>,
    /// A baseline: every state, in the pool's own section (see [`States`]).
    states: Option<Vec<u8>>,
    /// Otherwise ([`state_key`], states section) for each policy whose
    /// state changed or went away since the last write.
    policy_states: Vec<(String, Vec<u8>)>,
    ack: oneshot::Sender<Result<(), JournalError>>,
}

/// The journal; cheap to clone. The last clone dropped stops the writer
/// (after it has committed what was queued) and closes the file.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whether a write returns before its commit (see [`Journal::open_detached`]).
    detached: bool,
    db: Arc<Database>,
    index: Arc<RwLock<Index>>,
    /// The oldest segment retention kept; pointers below it lead nowhere.
    oldest: Arc<AtomicU64>,
    buckets: Arc<Mutex<Buckets>>,
    /// None: a reader's open, which never compacts.
    retention: Option<Retention>,
    /// Each pool's policy states as last written.
    written_states: Mutex<HashMap<String, WrittenStates>>,
    /// Bytes submitted for writing since the journal was opened.
    submitted: AtomicU64,
    /// (pool, policy) pairs already warned about for a large state.
    warned: Mutex<HashSet<(String, String)>>,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// What the journal holds: `scalewise journal stats` and `GET /journal`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JournalStats {
    pub path: String,
    pub file_bytes: u64,
    /// The log as counted for retention (see [`retention`]).
    pub counted_bytes: u64,
    /// The retention of the host that has it open (none when read offline).
    pub max_bytes: Option<u64>,
    pub max_age_secs: Option<u64>,
    pub pools: Vec<PoolStats>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PoolStats {
    pub pool: String,
    /// The oldest decision kept, and when it was made (ms since the epoch).
    pub oldest_seq: Option<u64>,
    pub oldest_at: Option<i64>,
    pub newest_seq: Option<u64>,
    pub newest_at: Option<i64>,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, CHECKPOINT_EVERY)
    }

    /// Open with a given checkpoint interval (tests use zero: every commit).
    pub fn open_with(path: &Path, checkpoint_every: Duration) -> Result<Self, JournalError> {
        Self::open_mode(path, checkpoint_every, false, Some(Retention::default()))
    }

    /// Open, keeping the past `retention` allows.
    pub fn open_retaining(path: &Path, retention: Retention) -> Result<Self, JournalError> {
        Self::open_mode(path, CHECKPOINT_EVERY, false, Some(retention))
    }

    /// Open an existing journal to read it (`scalewise journal`): nothing
    /// is compacted, whatever retention the host that wrote it had.
    pub fn open_to_read(path: &Path) -> Result<Self, JournalError> {
        if !path.is_file() {
            return Err(JournalError::Open { path: path.display().to_string(), detail: "no journal there (give --journal, or --config for its `journal.path`)".into() });
        }
        Self::open_mode(path, CHECKPOINT_EVERY, false, None)
    }

    /// Open for a simulation: the same records, frames and commits, but a
    /// write returns as soon as it is queued and commits skip fsync (a
    /// simulated pool's action needs no durable intent before it, and
    /// waiting for each commit would make a replay of 50,000 steps wait
    /// 50,000 times). Dropping the last clone still commits everything.
    pub fn open_detached(path: &Path) -> Result<Self, JournalError> {
        Self::open_mode(path, CHECKPOINT_EVERY, true, Some(Retention::default()))
    }

    fn open_mode(path: &Path, checkpoint_every: Duration, detached: bool, retention: Option<Retention>) -> Result<Self, JournalError> {
        let open = |detail: String| JournalError::Open { path: path.display().to_string(), detail };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open(e.to_string()))?;
        }
        let db = match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(open("another process (a running host?) has it open; stop it, or read it through that host's API".into()));
            }
            Err(e) => return Err(open(e.to_string())),
        };
        // Make sure the tables exist so readers never see them missing.
        let w = db.begin_write().map_err(|e| open(e.to_string()))?;
        w.open_table(LOG).map_err(|e| open(e.to_string()))?;
        w.open_table(CHECKPOINT).map_err(|e| open(e.to_string()))?;
        let buckets = Buckets::load(&w, now_ms()).map_err(open)?;
        w.commit().map_err(|e| open(e.to_string()))?;
        let (index, next) = heads::rebuild(&db).map_err(open)?;
        let oldest = Arc::new(AtomicU64::new(buckets.list.front().map_or(next, |b| b.first_seg)));
        let db = Arc::new(db);
        let index = Arc::new(RwLock::new(index));
        let buckets = Arc::new(Mutex::new(buckets));
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = Writer { db: db.clone(), index: index.clone(), oldest: oldest.clone(), buckets: buckets.clone(), retention, next, checkpoint_every, durable: !detached };
        let writer = std::thread::Builder::new()
            .name("scalewise-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| open(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                detached,
                db,
                index,
                oldest,
                buckets,
                retention,
                written_states: Mutex::default(),
                submitted: AtomicU64::new(0),
                warned: Mutex::default(),
                tx: Some(tx),
                writer: Some(writer),
                path: path.to_owned(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Durably record a decision and the pool's memory after it. Resolves
    /// once committed. A policy's state is written only if it changed.
    pub async fn record(&self, record: &DecisionRecord, memory: &PoolMemory) -> Result<(), JournalError> {
        let rec = serde_json::to_vec(record).map_err(|e| JournalError::Write(e.to_string()))?;
        self.submit(&record.pool, Some((record.seq, rec)), memory).await
    }

    /// Durably record a pool's memory alone (a pause, a resume).
    pub async fn remember(&self, pool: &str, memory: &PoolMemory) -> Result<(), JournalError> {
        self.submit(pool, None, memory).await
    }

    async fn submit(&self, pool: &str, record: Option<(u64, Vec<u8>)>, memory: &PoolMemory) -> Result<(), JournalError> {
        let write = |e: serde_json::Error| JournalError::Write(e.to_string());
        // Everything but the states; they go in a section of their own.
        let bare = memory.sans_states();
        let mem = serde_json::to_vec(&bare).map_err(write)?;
        let hashes: HashMap<String, u64> = memory.states.iter().map(|(policy, state)| (policy.clone(), state_hash(state))).collect();
        let written = self.inner.written_states.lock().unwrap().get(pool).cloned();
        let is_new = |policy: &String| written.as_ref().and_then(|w| w.hashes.get(policy)) != Some(&hashes[policy]);
        let changed: Vec<&String> = memory.states.keys().filter(|p| is_new(p)).collect();
        let gone: Vec<&String> = written.as_ref().map(|w| w.hashes.keys().filter(|p| !hashes.contains_key(*p)).collect()).unwrap_or_default();
        for policy in &changed {
            self.warn_large(pool, policy, memory.states[*policy].len());
        }
        let delta: usize = changed.iter().map(|p| memory.states[*p].len() + 64).sum::<usize>() + gone.len() * 64;
        let whole: usize = memory.states.values().map(|s| s.len() + 64).sum();
        // A baseline (every state, in the pool's own section) at the pool's
        // first write by this host, and whenever the changes written since
        // the last one add up to what a baseline costs: a reader going
        // forward (a replay) then knows every state from the first
        // baseline on, and the changes cost at most twice themselves.
        let since = written.as_ref().map(|w| w.since_baseline);
        let (bytes_now, now) = (self.inner.submitted.load(Ordering::Relaxed), now_ms());
        let far = |w: &WrittenStates| {
            self.inner.retention.is_some_and(|r| {
                bytes_now - w.baseline_bytes >= r.max_bytes / BASELINE_SHARE || (now - w.baseline_ms) as u128 >= r.max_age.as_millis() / u128::from(BASELINE_SHARE)
            })
        };
        let baseline = match &written {
            None => true,
            Some(w) => w.since_baseline + delta >= whole.max(MIN_BASELINE) || far(w),
        };
        let (states, policy_states, since_baseline) = if baseline {
            (Some(serde_json::to_vec(&StatesRef { states: &memory.states }).map_err(write)?), Vec::new(), 0)
        } else {
            let mut frames = Vec::with_capacity(changed.len() + gone.len());
            for policy in changed {
                let one = BTreeMap::from([(policy.clone(), memory.states[policy].clone())]);
                frames.push((state_key(pool, policy), serde_json::to_vec(&StatesRef { states: &one }).map_err(write)?));
            }
            for policy in gone {
                frames.push((state_key(pool, policy), serde_json::to_vec(&StatesRef { states: &BTreeMap::new() }).map_err(write)?));
            }
            (None, frames, since.unwrap_or_default() + delta)
        };
        let size = record.as_ref().map_or(0, |r| r.1.len()) + mem.len() + states.as_ref().map_or(0, Vec::len) + policy_states.iter().map(|(_, s)| s.len()).sum::<usize>();
        self.inner.submitted.fetch_add(size as u64, Ordering::Relaxed);
        let (baseline_bytes, baseline_ms) = match &written {
            Some(w) if !baseline => (w.baseline_bytes, w.baseline_ms),
            _ => (bytes_now, now),
        };
        let (ack, done) = oneshot::channel();
        let job = Job { pool: pool.to_owned(), record, memory: Some(mem), states, policy_states, ack };
        self.inner.tx.as_ref().ok_or(JournalError::Closed)?.send(job).map_err(|_| JournalError::Closed)?;
        let result = if self.inner.detached { Ok(()) } else { done.await.map_err(|_| JournalError::Closed)? };
        // A pool's loop writes one record at a time, so these land in the
        // order they were committed.
        if result.is_ok() {
            self.inner.written_states.lock().unwrap().insert(pool.to_owned(), WrittenStates { hashes, since_baseline, baseline_bytes, baseline_ms });
        }
        result
    }

    /// Warn once per pool and policy about a state of `bytes` at or over
    /// [`LARGE_STATE`]; true when this call warned.
    fn warn_large(&self, pool: &str, policy: &str, bytes: usize) -> bool {
        let warn = bytes >= LARGE_STATE && self.inner.warned.lock().unwrap().insert((pool.to_owned(), policy.to_owned()));
        if warn {
            tracing::warn!(
                pool,
                policy,
                bytes,
                "a large policy state: the journal writes it again every time it changes; retention bounds the journal ({} bytes), but a smaller state keeps more history",
                self.inner.retention.unwrap_or_default().max_bytes
            );
        }
        warn
    }

    /// A pool's memory as last committed.
    pub fn memory(&self, pool: &str) -> Result<Option<PoolMemory>, JournalError> {
        retried(|| self.memory_once(pool))
    }

    fn memory_once(&self, pool: &str) -> Result<Option<PoolMemory>, JournalError> {
        let (head, after) = {
            let index = self.inner.index.read().unwrap();
            let Some(head) = index.get(pool).copied().filter(|h| h.memory != 0) else {
                return Ok(None);
            };
            (head, heads::after_baseline(&index, pool, head.states))
        };
        let mut reader = Reader::new(&self.inner.db)?;
        let mut memory: PoolMemory = reader.with_frame(head.memory, |f| serde_json::from_slice(f.memory).map_err(|e| JournalError::Read(e.to_string())))??;
        let embedded = std::mem::take(&mut memory.states);
        memory.states = pool_states(&mut reader, head.states, after, embedded)?;
        Ok(Some(memory))
    }

    /// Decisions of `pool`, newest first, with `seq < before`.
    pub fn decisions(&self, pool: &str, before: Option<u64>, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        self.walk(pool, before, |_| true, limit)
    }

    /// Decisions of `pool`, newest first, with `seq < before` and `keep`
    /// true, at most `limit` of them. The walk ends where retention did.
    pub fn walk(&self, pool: &str, before: Option<u64>, mut keep: impl FnMut(&DecisionRecord) -> bool, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        retried(|| self.walk_once(pool, before, &mut keep, limit))
    }

    fn walk_once(&self, pool: &str, before: Option<u64>, keep: &mut impl FnMut(&DecisionRecord) -> bool, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        let Some(mut at) = self.inner.index.read().unwrap().get(pool).map(|h| h.decision) else { return Ok(Vec::new()) };
        let before = before.unwrap_or(u64::MAX);
        let mut reader = Reader::new(&self.inner.db)?;
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let mut out = Vec::new();
        while at != 0 && out.len() < limit {
            if segment::split(at).0 < self.inner.oldest.load(Ordering::Acquire) {
                break; // compacted away
            }
            let (prev, record) = reader.with_frame(at, |f| (f.prev, (f.seq < before).then(|| serde_json::from_slice::<DecisionRecord>(f.record))))?;
            if let Some(r) = record {
                let r = r.map_err(|e| read(&e))?;
                if keep(&r) {
                    out.push(r);
                }
            }
            at = prev;
        }
        Ok(out)
    }

    /// The pools the journal has decisions for.
    pub fn pools(&self) -> Vec<String> {
        let mut pools: Vec<String> = self.inner.index.read().unwrap().iter().filter(|(_, h)| h.decision != 0).map(|(p, _)| p.clone()).collect();
        pools.sort();
        pools
    }

    /// Size, retention, and each pool's oldest and newest decision.
    pub fn stats(&self) -> Result<JournalStats, JournalError> {
        let pools = self.pools();
        let mut oldest: HashMap<String, (u64, i64)> = HashMap::new();
        // The oldest decision of each pool is near the start of the log:
        // read forward until every pool has been seen.
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let tx = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let log = tx.open_table(LOG).map_err(|e| read(&e))?;
        for entry in log.range(self.inner.oldest.load(Ordering::Acquire)..).map_err(|e| read(&e))? {
            let (_, v) = entry.map_err(|e| read(&e))?;
            for f in segment::frames(v.value()).filter(|f| !f.record.is_empty()) {
                if !oldest.contains_key(f.pool)
                    && let Ok(r) = serde_json::from_slice::<DecisionRecord>(f.record)
                {
                    oldest.insert(f.pool.to_owned(), (r.seq, r.at));
                }
            }
            if oldest.len() >= pools.len() {
                break;
            }
        }
        let mut out = Vec::new();
        for pool in pools {
            let newest = self.decisions(&pool, None, 1)?.pop();
            let first = oldest.get(&pool);
            out.push(PoolStats {
                oldest_seq: first.map(|f| f.0),
                oldest_at: first.map(|f| f.1),
                newest_seq: newest.as_ref().map(|r| r.seq),
                newest_at: newest.as_ref().map(|r| r.at),
                pool,
            });
        }
        Ok(JournalStats {
            path: self.inner.path.display().to_string(),
            file_bytes: std::fs::metadata(&self.inner.path).map_or(0, |m| m.len()),
            counted_bytes: self.inner.buckets.lock().unwrap().total(),
            max_bytes: self.inner.retention.map(|r| r.max_bytes),
            max_age_secs: self.inner.retention.map(|r| r.max_age.as_secs()),
            pools: out,
        })
    }
}

/// Run a read again if it met a segment a compaction dropped between its
/// look at the index and its read transaction: the index it reads the
/// second time points at the copies carried forward.
fn retried<T>(mut read: impl FnMut() -> Result<T, JournalError>) -> Result<T, JournalError> {
    match read() {
        Err(JournalError::Read(e)) if e.contains("is missing") => read(),
        other => other,
    }
}

/// A pool's states: its baseline at `baseline` with `after`, its policies'
/// frames written after it ([`heads::after_baseline`]; see [`States`]).
/// `embedded`: its memory frame's states, which a journal from before
/// states had a section of their own keeps there (`baseline` 0).
fn pool_states(reader: &mut Reader, baseline: Ptr, after: Vec<(String, Ptr)>, embedded: BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>, JournalError> {
    let read = |e: serde_json::Error| JournalError::Read(e.to_string());
    let mut states = if baseline != 0 { reader.with_frame(baseline, |f| serde_json::from_slice::<States>(f.states).map_err(read))??.states } else { embedded };
    for (policy, at) in after {
        // One entry, or none once the pool dropped the policy.
        match reader.with_frame(at, |f| serde_json::from_slice::<States>(f.states).map_err(read))??.states.remove(&policy) {
            Some(state) => states.insert(policy, state),
            None => states.remove(&policy),
        };
    }
    Ok(states)
}

/// Reads frames, keeping the last segment it read.
struct Reader {
    tx: redb::ReadTransaction,
    cached: Option<(u64, Vec<u8>)>,
}

impl Reader {
    fn new(db: &Database) -> Result<Self, JournalError> {
        Ok(Self { tx: db.begin_read().map_err(|e| JournalError::Read(e.to_string()))?, cached: None })
    }

    fn with_frame<T>(&mut self, at: Ptr, f: impl FnOnce(&Frame<'_>) -> T) -> Result<T, JournalError> {
        let (seg, i) = segment::split(at);
        if self.cached.as_ref().is_none_or(|(k, _)| *k != seg) {
            let log = self.tx.open_table(LOG).map_err(|e| JournalError::Read(e.to_string()))?;
            let bytes = log.get(seg).map_err(|e| JournalError::Read(e.to_string()))?.map(|v| v.value().to_vec());
            let bytes = bytes.ok_or_else(|| JournalError::Read(format!("segment {seg} is missing")))?;
            self.cached = Some((seg, bytes));
        }
        let bytes = &self.cached.as_ref().unwrap().1;
        let frame = segment::frames(bytes).nth(i).ok_or_else(|| JournalError::Read(format!("frame {i} of segment {seg} is missing")))?;
        Ok(f(&frame))
    }
}

/// The one writer: group commits, checkpoints, and compaction.
struct Writer {
    db: Arc<Database>,
    index: Arc<RwLock<Index>>,
    oldest: Arc<AtomicU64>,
    buckets: Arc<Mutex<Buckets>>,
    retention: Option<Retention>,
    next: u64,
    checkpoint_every: Duration,
    durable: bool,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut last_checkpoint = Instant::now();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            // Whatever else arrives within the gathering window goes in the same
            // commit: a commit costs about the same for one record as for
            // hundreds. Sleeping through the window, rather than waiting on the
            // channel, spares a wake-up per record.
            // Under a backlog there is no need to wait for more.
            let drain = |batch: &mut Vec<Job>| {
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            };
            drain(&mut batch);
            if batch.len() < 256 && self.durable {
                std::thread::sleep(GATHER);
                drain(&mut batch);
            }
            let checkpoint = last_checkpoint.elapsed() >= self.checkpoint_every;
            let result = self.commit(&batch, checkpoint).map_err(JournalError::Write);
            match &result {
                Ok(()) => {
                    self.next += 1;
                    if checkpoint {
                        last_checkpoint = Instant::now();
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
            for job in batch {
                let _ = job.ack.send(result.clone());
            }
            // Cheap when there is nothing to drop: a look at the bucket list.
            if let Err(e) = self.compact() {
                tracing::error!("journal compaction failed: {e}; the journal is unchanged and will be compacted at the next try");
            }
        }
        if !self.durable {
            // An empty durable commit makes every earlier non-durable one durable.
            if let Err(e) = self.db.begin_write().map_err(redb::Error::from).and_then(|w| w.commit().map_err(redb::Error::from)) {
                tracing::error!("journal: final commit failed: {e}");
            }
        }
    }

    /// Write `batch` as the next segment; publish the new heads only once committed.
    fn commit(&self, batch: &[Job], checkpoint: bool) -> Result<(), String> {
        let seg = self.next;
        let mut changed = Index::new();
        let size = |j: &Job| 64 + j.record.as_ref().map_or(0, |r| r.1.len()) + j.memory.as_ref().map_or(0, Vec::len) + j.states.as_ref().map_or(0, Vec::len) + j.policy_states.iter().map(|(k, s)| 64 + k.len() + s.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(batch.iter().map(size).sum());
        {
            let heads = self.index.read().unwrap();
            let mut i = 0;
            for job in batch {
                let h = changed.get(&job.pool).or_else(|| heads.get(&job.pool)).copied().unwrap_or_default();
                let (seq, prev, record) = match &job.record {
                    // The same decision again (its outcome after its intent)
                    // replaces it in the pool's chain.
                    Some((seq, rec)) if h.decision != 0 && h.seq == *seq => (*seq, h.prev, rec.as_slice()),
                    Some((seq, rec)) => (*seq, h.decision, rec.as_slice()),
                    None => (h.seq, 0, &[][..]),
                };
                let frame = Frame { pool: &job.pool, seq, prev, record, memory: job.memory.as_deref().unwrap_or_default(), states: job.states.as_deref().unwrap_or_default() };
                segment::push(&mut bytes, &frame);
                changed.entry(job.pool.clone()).or_insert(h);
                heads::apply(&mut changed, segment::ptr(seg, i), &frame);
                i += 1;
                for (key, states) in &job.policy_states {
                    let frame = Frame { pool: key, seq: 0, prev: 0, record: &[], memory: &[], states };
                    segment::push(&mut bytes, &frame);
                    heads::apply(&mut changed, segment::ptr(seg, i), &frame);
                    i += 1;
                }
            }
        }
        let mut w = self.db.begin_write().map_err(|e| e.to_string())?;
        if !self.durable {
            w.set_durability(redb::Durability::None).map_err(|e| e.to_string())?;
        }
        let mut buckets = self.buckets.lock().unwrap();
        let before = buckets.list.clone();
        let written = (|| {
            let mut log = w.open_table(LOG).map_err(|e| e.to_string())?;
            log.insert(seg, bytes.as_slice()).map_err(|e| e.to_string())?;
            drop(log);
            buckets.add(&w, seg, bytes.len(), now_ms(), &self.retention.unwrap_or_default())?;
            if checkpoint {
                let mut all = self.index.read().unwrap().clone();
                all.extend(changed.iter().map(|(k, v)| (k.clone(), *v)));
                write_checkpoint(&w, seg, &all)?;
            }
            w.commit().map_err(|e| e.to_string())
        })();
        if written.is_err() {
            buckets.list = before;
        }
        written?;
        self.index.write().unwrap().extend(changed);
        Ok(())
    }

    /// Drop what retention no longer keeps, carrying every pool's newest
    /// decision, memory and states forward first; see [`retention`].
    fn compact(&mut self) -> Result<(), String> {
        let Some(retention) = self.retention else { return Ok(()) };
        let now = now_ms();
        let mut buckets = self.buckets.lock().unwrap();
        let n = buckets.to_drop(&retention, now);
        if n == 0 {
            return Ok(());
        }
        let cutoff = buckets.list.get(n).map_or(self.next, |b| b.first_seg);
        let seg = self.next;
        let old = |p: Ptr| p != 0 && segment::split(p).0 < cutoff;
        let heads = self.index.read().unwrap().clone();
        let mut carried = Index::new();
        let mut bytes = Vec::new();
        {
            let mut reader = Reader::new(&self.db).map_err(|e| e.to_string())?;
            // 0: the record, 1: the memory, 2: the states.
            let copy = |reader: &mut Reader, at: Ptr, part: usize| -> Result<Vec<u8>, String> {
                if !old(at) {
                    return Ok(Vec::new());
                }
                reader.with_frame(at, |f| [f.record, f.memory, f.states][part].to_vec()).map_err(|e| e.to_string())
            };
            let mut pools: Vec<(&String, &Head)> = heads.iter().filter(|(k, h)| !k.contains('\0') && (old(h.decision) || old(h.memory) || old(h.states))).collect();
            pools.sort_by_key(|(p, _)| p.as_str());
            for (i, (pool, h)) in pools.into_iter().enumerate() {
                let record = copy(&mut reader, h.decision, 0)?;
                let memory = copy(&mut reader, h.memory, 1)?;
                // A baseline to be dropped is not copied but written afresh
                // with the policy frames after it (which, being later, may
                // be kept): the copy is what the states are now, and the
                // frames before it no longer count.
                let states = if old(h.states) {
                    let after = heads::after_baseline(&heads, pool, h.states);
                    let all = pool_states(&mut reader, h.states, after, BTreeMap::new()).map_err(|e| e.to_string())?;
                    serde_json::to_vec(&StatesRef { states: &all }).map_err(|e| e.to_string())?
                } else {
                    Vec::new()
                };
                let frame = Frame { pool, seq: h.seq, prev: 0, record: &record, memory: &memory, states: &states };
                segment::push(&mut bytes, &frame);
                carried.insert(pool.clone(), *h);
                heads::apply(&mut carried, segment::ptr(seg, i), &frame);
            }
        }
        let w = self.db.begin_write().map_err(|e| e.to_string())?;
        let before = buckets.list.clone();
        let done = (|| {
            let first_kept = buckets.drop_oldest(&w, n)?;
            debug_assert_eq!(first_kept.min(self.next), cutoff);
            let mut log = w.open_table(LOG).map_err(|e| e.to_string())?;
            log.retain_in(..cutoff, |_, _| false).map_err(|e| e.to_string())?;
            if !bytes.is_empty() {
                log.insert(seg, bytes.as_slice()).map_err(|e| e.to_string())?;
            }
            drop(log);
            if !bytes.is_empty() {
                buckets.add(&w, seg, bytes.len(), now, &retention)?;
            }
            let mut all = heads.clone();
            all.extend(carried.iter().map(|(k, v)| (k.clone(), *v)));
            write_checkpoint(&w, seg, &all)?;
            w.commit().map_err(|e| e.to_string())
        })();
        if let Err(e) = done {
            buckets.list = before;
            return Err(e);
        }
        self.index.write().unwrap().extend(carried.clone());
        self.oldest.store(cutoff, Ordering::Release);
        self.next = seg + 1;
        tracing::info!(dropped_buckets = n, carried_pools = carried.len(), counted_bytes = buckets.total(), "journal compacted");
        Ok(())
    }
}

fn write_checkpoint(w: &redb::WriteTransaction, covered: u64, index: &Index) -> Result<(), String> {
    let mut cp = w.open_table(CHECKPOINT).map_err(|e| e.to_string())?;
    cp.insert(heads::KEY, heads::encode(covered, index).as_slice()).map_err(|e| e.to_string())?;
    cp.remove("index").map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests;
