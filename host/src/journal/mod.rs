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
//! A write that fails (disk full, read-only file system) is reported to the
//! pool that asked, which keeps deciding; what was committed before stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::oneshot;

use crate::control::pipeline::PoolMemory;
use crate::control::record::DecisionRecord;

const DECISIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("decisions");
const MEMORY: TableDefinition<&str, &[u8]> = TableDefinition::new("memory");

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
    record: Option<(String, u64, Vec<u8>)>,
    memory: Option<(String, Vec<u8>)>,
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
        w.open_table(DECISIONS).map_err(|e| open(e.to_string()))?;
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
        self.submit(Some((record.pool.clone(), record.seq, rec)), Some((record.pool.clone(), mem))).await
    }

    /// Durably record a pool's memory alone (a pause, a resume).
    pub async fn remember(&self, pool: &str, memory: &PoolMemory) -> Result<(), JournalError> {
        let mem = serde_json::to_vec(memory).map_err(|e| JournalError::Write(e.to_string()))?;
        self.submit(None, Some((pool.to_owned(), mem))).await
    }

    async fn submit(&self, record: Option<(String, u64, Vec<u8>)>, memory: Option<(String, Vec<u8>)>) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.inner.tx.as_ref().ok_or(JournalError::Closed)?.send(Job { record, memory, ack }).map_err(|_| JournalError::Closed)?;
        done.await.map_err(|_| JournalError::Closed)?
    }

    /// A pool's memory as last committed.
    pub fn memory(&self, pool: &str) -> Result<Option<PoolMemory>, JournalError> {
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let r = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let t = r.open_table(MEMORY).map_err(|e| read(&e))?;
        let Some(v) = t.get(pool).map_err(|e| read(&e))? else { return Ok(None) };
        serde_json::from_slice(v.value()).map(Some).map_err(|e| read(&e))
    }

    /// Decisions of `pool`, newest first, with `seq < before`.
    pub fn decisions(&self, pool: &str, before: Option<u64>, limit: usize) -> Result<Vec<DecisionRecord>, JournalError> {
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let r = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let t = r.open_table(DECISIONS).map_err(|e| read(&e))?;
        let end = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for item in t.range((pool, 0)..(pool, end)).map_err(|e| read(&e))?.rev() {
            let (_, v) = item.map_err(|e| read(&e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| read(&e))?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

fn write_loop(db: &Database, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Whatever else has queued meanwhile goes in the same commit.
        while batch.len() < 4096 {
            match rx.recv_timeout(Duration::ZERO) {
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
        let mut decisions = w.open_table(DECISIONS).map_err(|e| e.to_string())?;
        let mut memory = w.open_table(MEMORY).map_err(|e| e.to_string())?;
        for job in batch {
            if let Some((pool, seq, rec)) = &job.record {
                decisions.insert((pool.as_str(), *seq), rec.as_slice()).map_err(|e| e.to_string())?;
            }
            if let Some((pool, mem)) = &job.memory {
                memory.insert(pool.as_str(), mem.as_slice()).map_err(|e| e.to_string())?;
            }
        }
    }
    w.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
