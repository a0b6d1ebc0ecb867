//! A pool's history read forward: every frame the journal still holds for
//! it, oldest first, with its record, its memory and its policy states.
//!
//! Why a forward scan of the log rather than the decision chain: the chain
//! links decisions newest first and skips what a replay needs. An action's
//! intent and its outcome are two frames of one decision, and the chain
//! keeps only the outcome, while the policy states (written only when they
//! change) may be in the intent's frame; a pause is a memory-only frame
//! with no place in the chain at all. The log, read in order, has every
//! frame where it was written. Reading it costs one pass over the retained
//! journal, which retention bounds; a frame of another pool is skipped
//! after its name is read.
//!
//! A compaction copies a pool's newest decision, memory and states forward
//! past what it drops; such a copy reads here as one more frame, in the
//! place it was written. A reader that tracks the newest memory and states
//! as it goes stays right: the copy repeats what was newest then.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use redb::ReadableDatabase;

use super::{Journal, JournalError, LOG, States, segment, state_policy};
use crate::decide::memory::PoolMemory;
use crate::decide::record::DecisionRecord;

/// One frame of a pool, parsed.
#[derive(Debug, Clone)]
pub struct Written {
    /// The decision, if the frame has one (a memory-only frame has not).
    /// The same seq twice is one decision: its intent, then its outcome.
    pub record: Option<DecisionRecord>,
    /// The pool's memory after the frame, without policy states.
    pub memory: Option<PoolMemory>,
    /// Every policy state after the frame, when they changed in it.
    pub states: Option<BTreeMap<String, Vec<u8>>>,
}

impl Journal {
    /// Visit every frame of `pool` still in the journal, oldest first,
    /// until `visit` breaks. The states are known from the first baseline
    /// on (see [`super::States`]); a policy's own frames follow its pool's
    /// in the same commit, and a frame's `states` include them.
    pub fn history(&self, pool: &str, mut visit: impl FnMut(Written) -> ControlFlow<()>) -> Result<(), JournalError> {
        let read = |e: &dyn std::fmt::Display| JournalError::Read(e.to_string());
        let tx = self.inner.db.begin_read().map_err(|e| read(&e))?;
        let log = tx.open_table(LOG).map_err(|e| read(&e))?;
        // Every state as of the frame read last, once a baseline has been
        // read; whether they changed since the last visit; the pool's frame
        // waiting for its states.
        let mut states: Option<BTreeMap<String, Vec<u8>>> = None;
        let mut changed = false;
        let mut waiting: Option<Written> = None;
        let mut flush = |waiting: &mut Option<Written>, states: &Option<BTreeMap<String, Vec<u8>>>, changed: &mut bool| match waiting.take() {
            Some(mut w) => {
                w.states = if std::mem::take(changed) { states.clone() } else { None };
                visit(w)
            }
            None => ControlFlow::Continue(()),
        };
        for entry in log.range(self.inner.oldest.load(Ordering::Acquire)..).map_err(|e| read(&e))? {
            let (key, v) = entry.map_err(|e| read(&e))?;
            for f in segment::frames(v.value()) {
                let at = |what: &str, e: serde_json::Error| read(&format!("segment {}, {what} of {pool} seq {}: {e}", key.value(), f.seq));
                if let Some(policy) = state_policy(f.pool, pool) {
                    // Before a baseline, one state is no start.
                    if let Some(states) = states.as_mut() {
                        let mut one = serde_json::from_slice::<States>(f.states).map_err(|e| at("states", e))?.states;
                        match one.remove(policy) {
                            Some(state) => states.insert(policy.to_owned(), state),
                            None => states.remove(policy),
                        };
                        changed = true;
                    }
                    continue;
                }
                if flush(&mut waiting, &states, &mut changed).is_break() {
                    return Ok(());
                }
                if f.pool != pool {
                    continue;
                }
                let record = if f.record.is_empty() { None } else { Some(serde_json::from_slice::<DecisionRecord>(f.record).map_err(|e| at("decision", e))?) };
                let mut memory = if f.memory.is_empty() { None } else { Some(serde_json::from_slice::<PoolMemory>(f.memory).map_err(|e| at("memory", e))?) };
                // A baseline: the pool's own section, or in a journal from
                // before states had a section, its memory's states.
                let baseline = if !f.states.is_empty() {
                    Some(serde_json::from_slice::<States>(f.states).map_err(|e| at("states", e))?.states)
                } else {
                    memory.as_mut().filter(|m| !m.states.is_empty()).map(|m| std::mem::take(&mut m.states))
                };
                if baseline.is_some() {
                    states = baseline;
                    changed = true;
                }
                waiting = Some(Written { record, memory, states: None });
            }
            if flush(&mut waiting, &states, &mut changed).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }
}
