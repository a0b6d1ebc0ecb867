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

mod segment;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};

use segment::{Frame, Ptr};
use tokio::sync::oneshot;

use crate::decide::memory::PoolMemory;
use crate::decide::record::DecisionRecord;

/// Segment number → the frames one commit wrote.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// `"index"` → the newest segment the checkpoint covers, then every pool's [`Head`].
const CHECKPOINT: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
/// How long the writer gathers records into one commit.
const GATHER: Duration = Duration::from_millis(3);
/// How often the index is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// Where a pool's newest decision and memory are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Head {
    decision: Ptr,
    seq: u64,
    /// The newest decision's own predecessor (what replacing it links to).
    prev: Ptr,
    memory: Ptr,
}

type Index = HashMap<String, Head>;

fn encode_index(covered: u64, index: &Index) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + index.len() * 48);
    v.extend_from_slice(&covered.to_le_bytes());
    for (pool, h) in index {
        v.extend_from_slice(&(pool.len() as u16).to_le_bytes());
        v.extend_from_slice(pool.as_bytes());
        for x in [h.decision, h.seq, h.prev, h.memory] {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v
}

fn decode_index(bytes: &[u8]) -> Option<(u64, Index)> {
    let covered = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut rest = &bytes[8..];
    let mut index = Index::new();
    while !rest.is_empty() {
        let n = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let pool = std::str::from_utf8(rest.get(2..2 + n)?).ok()?.to_owned();
        let mut x = [0u64; 4];
        for (i, v) in x.iter_mut().enumerate() {
            let at = 2 + n + i * 8;
            *v = u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?);
        }
        index.insert(pool, Head { decision: x[0], seq: x[1], prev: x[2], memory: x[3] });
        rest = &rest[2 + n + 32..];
    }
    Some((covered, index))
}

/// Fold one frame (at `at`) into the heads.
fn apply(heads: &mut Index, at: Ptr, f: &Frame<'_>) {
    let h = heads.entry(f.pool.to_owned()).or_default();
    if !f.record.is_empty() {
        *h = Head { decision: at, seq: f.seq, prev: f.prev, memory: h.memory };
    }
    if !f.memory.is_empty() {
        h.memory = at;
    }
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

struct Job {
    pool: String,
    record: Option<(u64, Vec<u8>)>,
    memory: Option<Vec<u8>>,
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

impl Journal {
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, CHECKPOINT_EVERY)
    }

    /// Open with a given checkpoint interval (tests use zero: every commit).
    pub fn open_with(path: &Path, checkpoint_every: Duration) -> Result<Self, JournalError> {
        Self::open_mode(path, checkpoint_every, false)
    }

    /// Open for a simulation: the same records, frames and commits, but a
    /// write returns as soon as it is queued and commits skip fsync (a
    /// simulated pool's action needs no durable intent before it, and
    /// waiting for each commit would make a replay of 50,000 steps wait
    /// 50,000 times). Dropping the last clone still commits everything.
    pub fn open_detached(path: &Path) -> Result<Self, JournalError> {
        Self::open_mode(path, CHECKPOINT_EVERY, true)
    }

    fn open_mode(path: &Path, checkpoint_every: Duration, detached: bool) -> Result<Self, JournalError> {
        let open = |detail: String| JournalError::Open { path: path.display().to_string(), detail };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| open(e.to_string()))?;
        // Make sure the tables exist so readers never see them missing.
        let w = db.begin_write().map_err(|e| open(e.to_string()))?;
        w.open_table(LOG).map_err(|e| open(e.to_string()))?;
        w.open_table(CHECKPOINT).map_err(|e| open(e.to_string()))?;
        w.commit().map_err(|e| open(e.to_string()))?;
        let (index, next) = rebuild(&db).map_err(open)?;
        let db = Arc::new(db);
        let index = Arc::new(RwLock::new(index));
        let (tx, rx) = mpsc::channel::<Job>();
        let (writer_db, writer_index) = (db.clone(), index.clone());
        let writer = std::thread::Builder::new()
            .name("scalewise-journal".into())
            .spawn(move || write_loop(&writer_db, &writer_index, next, checkpoint_every, detached, rx))
            .map_err(|e| open(e.to_string()))?;
        Ok(Self { inner: Arc::new(Inner { detached, db, index, tx: Some(tx), writer: Some(writer), path: path.to_owned() }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Durably record a decision and the pool's memory after it. Resolves
    /// once committed.
    pub async fn record(&self, record: &DecisionRecord, memory: &PoolMemory) -> Result<(), JournalError> {
        let rec = serde_json::to_vec(record).map_err(|e| JournalError::Write(e.to_string()))?;
        let mem = serde_json::to_vec(memory).map_err(|e| JournalError::Write(e.to_string()))?;
        self.submit(record.pool.clone(), Some((record.seq, rec)), Some(mem)).await
    }

    /// Durably record a pool's memory alone (a pause, a resume).
    pub async fn remember(&self, pool: &str, memory: &PoolMemory) -> Result<(), JournalError> {
        let mem = serde_json::to_vec(memory).map_err(|e| JournalError::Write(e.to_string()))?;
        self.submit(pool.to_owned(), None, Some(mem)).await
    }

    async fn submit(&self, pool: String, record: Option<(u64, Vec<u8>)>, memory: Option<Vec<u8>>) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.inner.tx.as_ref().ok_or(JournalError::Closed)?.send(Job { pool, record, memory, ack }).map_err(|_| JournalError::Closed)?;
        if self.inner.detached {
            return Ok(());
        }
        done.await.map_err(|_| JournalError::Closed)?
    }

    /// A pool's memory as last committed.
    pub fn memory(&self, pool: &str) -> Result<Option<PoolMemory>, JournalError> {
        let Some(at) = self.inner.index.read().unwrap().get(pool).map(|h| h.memory).filter(|p| *p != 0) else {
            return Ok(None);
        };
        let mut reader = Reader::new(&self.inner.db)?;
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let memory = reader.with_frame(at, |f| serde_json::from_slice(f.memory).map_err(|e| read(&e)))?;
        memory.map(Some)
    }

    /// Decisions of `pool`, newest first, with `seq < before`.
    pub fn decisions(&self, pool: &str, before: Option<u64>, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        let Some(mut at) = self.inner.index.read().unwrap().get(pool).map(|h| h.decision) else { return Ok(Vec::new()) };
        let before = before.unwrap_or(u64::MAX);
        let mut reader = Reader::new(&self.inner.db)?;
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let mut out = Vec::new();
        while at != 0 && out.len() < limit {
            let (prev, record) = reader.with_frame(at, |f| (f.prev, (f.seq < before).then(|| serde_json::from_slice(f.record))))?;
            if let Some(r) = record {
                out.push(r.map_err(|e| read(&e))?);
            }
            at = prev;
        }
        Ok(out)
    }
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

/// The heads from the last checkpoint and the segments after it; and the
/// next segment number.
fn rebuild(db: &Database) -> Result<(Index, u64), String> {
    let r = db.begin_read().map_err(|e| e.to_string())?;
    let checkpoint = r.open_table(CHECKPOINT).map_err(|e| e.to_string())?;
    let (covered, mut index) = match checkpoint.get("index").map_err(|e| e.to_string())? {
        Some(v) => decode_index(v.value()).ok_or("the journal's checkpoint is unreadable")?,
        None => (0, Index::new()),
    };
    let log = r.open_table(LOG).map_err(|e| e.to_string())?;
    let mut next = covered + 1;
    for entry in log.range(covered + 1..).map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        for (i, f) in segment::frames(v.value()).enumerate() {
            apply(&mut index, segment::ptr(k.value(), i), &f);
        }
        next = k.value() + 1;
    }
    Ok((index, next))
}

fn write_loop(db: &Database, index: &RwLock<Index>, mut next: u64, checkpoint_every: Duration, detached: bool, rx: mpsc::Receiver<Job>) {
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
        if batch.len() < 256 && !detached {
            std::thread::sleep(GATHER);
            drain(&mut batch);
        }
        let checkpoint = last_checkpoint.elapsed() >= checkpoint_every;
        let result = commit(db, index, next, &batch, checkpoint, !detached).map_err(JournalError::Write);
        match &result {
            Ok(()) => {
                next += 1;
                if checkpoint {
                    last_checkpoint = Instant::now();
                }
            }
            Err(e) => tracing::error!("{e}"),
        }
        for job in batch {
            let _ = job.ack.send(result.clone());
        }
    }
    if detached {
        // An empty durable commit makes every earlier non-durable one durable.
        if let Err(e) = db.begin_write().map_err(redb::Error::from).and_then(|w| w.commit().map_err(redb::Error::from)) {
            tracing::error!("journal: final commit failed: {e}");
        }
    }
}

/// Write `batch` as segment `seg`; publish the new heads only once committed.
fn commit(db: &Database, index: &RwLock<Index>, seg: u64, batch: &[Job], checkpoint: bool, durable: bool) -> Result<(), String> {
    let mut changed = Index::new();
    let mut bytes = Vec::with_capacity(batch.iter().map(|j| 64 + j.record.as_ref().map_or(0, |r| r.1.len()) + j.memory.as_ref().map_or(0, Vec::len)).sum());
    {
        let heads = index.read().unwrap();
        for (i, job) in batch.iter().enumerate() {
            let h = changed.get(&job.pool).or_else(|| heads.get(&job.pool)).copied().unwrap_or_default();
            let (seq, prev, record) = match &job.record {
                // The same decision again (its outcome after its intent)
                // replaces it in the pool's chain.
                Some((seq, rec)) if h.decision != 0 && h.seq == *seq => (*seq, h.prev, rec.as_slice()),
                Some((seq, rec)) => (*seq, h.decision, rec.as_slice()),
                None => (h.seq, 0, &[][..]),
            };
            let frame = Frame { pool: &job.pool, seq, prev, record, memory: job.memory.as_deref().unwrap_or_default() };
            segment::push(&mut bytes, &frame);
            changed.entry(job.pool.clone()).or_insert(h);
            apply(&mut changed, segment::ptr(seg, i), &frame);
        }
    }
    let mut w = db.begin_write().map_err(|e| e.to_string())?;
    if !durable {
        w.set_durability(redb::Durability::None).map_err(|e| e.to_string())?;
    }
    {
        let mut log = w.open_table(LOG).map_err(|e| e.to_string())?;
        log.insert(seg, bytes.as_slice()).map_err(|e| e.to_string())?;
        if checkpoint {
            let mut all = index.read().unwrap().clone();
            all.extend(changed.iter().map(|(k, v)| (k.clone(), *v)));
            let mut cp = w.open_table(CHECKPOINT).map_err(|e| e.to_string())?;
            cp.insert("index", encode_index(seg, &all).as_slice()).map_err(|e| e.to_string())?;
        }
    }
    w.commit().map_err(|e| e.to_string())?;
    index.write().unwrap().extend(changed);
    Ok(())
}

#[cfg(test)]
mod tests;
