//! The decision journal: every decision, every action's intent and outcome,
//! and every pool's memory (guardrail history, policy states), in a
//! crash-safe embedded store (redb: copy-on-write B-trees, a commit is
//! durable once `commit` returns).
//!
//! Writes go through one writer thread that commits whatever has queued up
//! in one transaction (group commit): ten thousand pools deciding each
//! second cost a handful of fsyncs, not ten thousand, yet each pool waits
//! for its own record to be durable before it acts. An action is journalled
//! as `pending` before the target is called, so a host killed between the
//! two finds the intent on restart and does not take it again.
//!
//! Decisions are appended to one log under a global, increasing key, so a
//! commit writes the log's last pages only, however many pools it holds
//! (keys of the form (pool, seq) scatter ten thousand pools' inserts over
//! the whole tree, and a commit rewrites a page per pool: measured, that
//! cost most of a core at 10,000 decisions a second). Each entry points at
//! the same pool's previous entry, and a pool's memory row points at its
//! newest, so a pool's history is read newest first by following the chain.
//!
//! A write that fails (disk full, read-only file system) is reported to the
//! pool that asked, which keeps deciding; what was committed before stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::control::pipeline::PoolMemory;
use crate::control::record::DecisionRecord;

/// Global entry number → `seq (u64 LE) | previous entry of the pool (u64 LE, 0: none) | record JSON`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// How long the writer gathers records into one commit.
const GATHER: Duration = Duration::from_millis(3);
/// Pool → `newest entry (u64 LE, 0: none) | its seq (u64 LE) | memory JSON`.
const MEMORY: TableDefinition<&str, &[u8]> = TableDefinition::new("memory");
const HEADER: usize = 16;

fn header(bytes: &[u8]) -> (u64, u64) {
    if bytes.len() < HEADER {
        return (0, 0);
    }
    (u64::from_le_bytes(bytes[..8].try_into().unwrap()), u64::from_le_bytes(bytes[8..16].try_into().unwrap()))
}

fn framed(a: u64, b: u64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + body.len());
    v.extend_from_slice(&a.to_le_bytes());
    v.extend_from_slice(&b.to_le_bytes());
    v.extend_from_slice(body);
    v
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
    db: Arc<Database>,
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
        let open = |detail: String| JournalError::Open { path: path.display().to_string(), detail };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| open(e.to_string()))?;
        // Make sure the tables exist so readers never see them missing.
        let w = db.begin_write().map_err(|e| open(e.to_string()))?;
        w.open_table(LOG).map_err(|e| open(e.to_string()))?;
        w.open_table(MEMORY).map_err(|e| open(e.to_string()))?;
        w.commit().map_err(|e| open(e.to_string()))?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = db.clone();
        let writer = std::thread::Builder::new()
            .name("scalewise-journal".into())
            .spawn(move || write_loop(&writer, rx))
            .map_err(|e| open(e.to_string()))?;
        Ok(Self { inner: Arc::new(Inner { db, tx: Some(tx), writer: Some(writer), path: path.to_owned() }) })
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
        done.await.map_err(|_| JournalError::Closed)?
    }

    /// A pool's memory as last committed.
    pub fn memory(&self, pool: &str) -> Result<Option<PoolMemory>, JournalError> {
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let r = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let t = r.open_table(MEMORY).map_err(|e| read(&e))?;
        let Some(v) = t.get(pool).map_err(|e| read(&e))? else { return Ok(None) };
        serde_json::from_slice(&v.value()[HEADER..]).map(Some).map_err(|e| read(&e))
    }

    /// Decisions of `pool`, newest first, with `seq < before`.
    pub fn decisions(&self, pool: &str, before: Option<u64>, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let r = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let memory = r.open_table(MEMORY).map_err(|e| read(&e))?;
        let log = r.open_table(LOG).map_err(|e| read(&e))?;
        let mut entry = match memory.get(pool).map_err(|e| read(&e))? {
            Some(v) => header(v.value()).0,
            None => return Ok(Vec::new()),
        };
        let before = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        while entry != 0 && out.len() < limit {
            let Some(v) = log.get(entry).map_err(|e| read(&e))? else { break };
            let (seq, prev) = header(v.value());
            if seq < before {
                out.push(serde_json::from_slice(&v.value()[HEADER..]).map_err(|e| read(&e))?);
            }
            entry = prev;
        }
        Ok(out)
    }
}

fn write_loop(db: &Database, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Whatever else arrives within the gathering window goes in the same
        // commit: a commit costs the same for one record as for thousands.
        let until = std::time::Instant::now() + GATHER;
        while batch.len() < 4096 {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = commit(db, &batch).map_err(JournalError::Write);
        if let Err(e) = &result {
            tracing::error!("{e}");
        }
        for job in batch {
            let _ = job.ack.send(result.clone());
        }
    }
}

fn commit(db: &Database, batch: &[Job]) -> Result<(), String> {
    let w = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut log = w.open_table(LOG).map_err(|e| e.to_string())?;
        let mut memory = w.open_table(MEMORY).map_err(|e| e.to_string())?;
        let mut next = log.last().map_err(|e| e.to_string())?.map_or(1, |(k, _)| k.value() + 1);
        for job in batch {
            let (mut head, mut head_seq) = match memory.get(job.pool.as_str()).map_err(|e| e.to_string())? {
                Some(v) => header(v.value()),
                None => (0, 0),
            };
            if let Some((seq, rec)) = &job.record {
                if head != 0 && head_seq == *seq {
                    // The same decision again (its outcome after its intent): replace it.
                    let prev = header(log.get(head).map_err(|e| e.to_string())?.map(|v| v.value().to_vec()).unwrap_or_default().as_slice()).1;
                    log.insert(head, framed(*seq, prev, rec).as_slice()).map_err(|e| e.to_string())?;
                } else {
                    log.insert(next, framed(*seq, head, rec).as_slice()).map_err(|e| e.to_string())?;
                    head = next;
                    head_seq = *seq;
                    next += 1;
                }
            }
            let body = match &job.memory {
                Some(m) => m.clone(),
                None => memory.get(job.pool.as_str()).map_err(|e| e.to_string())?.map(|v| v.value()[HEADER..].to_vec()).unwrap_or_else(|| b"{}".to_vec()),
            };
            memory.insert(job.pool.as_str(), framed(head, head_seq, &body).as_slice()).map_err(|e| e.to_string())?;
        }
    }
    w.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
