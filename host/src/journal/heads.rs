//! Where each pool's newest decision, memory and policy states are in the
//! log, and how that index is saved (the checkpoint) and rebuilt at open.
//! A policy's state is indexed under a key of its own (the pool, a NUL,
//! the policy) whose head has only `states`.
//!
//! The index lives in memory; a checkpoint every few seconds (and at every
//! compaction) saves it with the newest segment it covers, and an open
//! replays only the segments after that.

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::segment::{self, Frame, Ptr};
use super::{CHECKPOINT, LOG};

/// Where a pool's newest decision, memory and states are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Head {
    pub decision: Ptr,
    pub seq: u64,
    /// The newest decision's own predecessor (what replacing it links to).
    pub prev: Ptr,
    pub memory: Ptr,
    /// The frame with the newest states section (0: the states are in the
    /// memory frame, as journals written before the split keep them).
    pub states: Ptr,
}

/// Ordered, so that a pool's policy keys (the pool, a NUL, the policy) are
/// one range of it.
pub(super) type Index = BTreeMap<String, Head>;

/// The policy frames of `pool` written after its baseline at `since`:
/// (policy, where), oldest first.
pub(super) fn after_baseline(index: &Index, pool: &str, since: Ptr) -> Vec<(String, Ptr)> {
    let range = index.range(format!("{pool}\0")..format!("{pool}\u{1}"));
    let mut after: Vec<(String, Ptr)> = range.filter(|(_, h)| h.states > since).map(|(k, h)| (k[pool.len() + 1..].to_owned(), h.states)).collect();
    after.sort_by_key(|(_, at)| *at);
    after
}

/// The checkpoint key of this layout (five numbers a head).
pub(super) const KEY: &str = "heads";
/// The key of the layout before states had a pointer (four numbers).
const OLD_KEY: &str = "index";

pub(super) fn encode(covered: u64, index: &Index) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + index.len() * 56);
    v.extend_from_slice(&covered.to_le_bytes());
    for (pool, h) in index {
        v.extend_from_slice(&(pool.len() as u16).to_le_bytes());
        v.extend_from_slice(pool.as_bytes());
        for x in [h.decision, h.seq, h.prev, h.memory, h.states] {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v
}

fn decode(bytes: &[u8], fields: usize) -> Option<(u64, Index)> {
    let covered = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut rest = &bytes[8..];
    let mut index = Index::new();
    while !rest.is_empty() {
        let n = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let pool = std::str::from_utf8(rest.get(2..2 + n)?).ok()?.to_owned();
        let mut x = [0u64; 5];
        for (i, v) in x.iter_mut().take(fields).enumerate() {
            let at = 2 + n + i * 8;
            *v = u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?);
        }
        index.insert(pool, Head { decision: x[0], seq: x[1], prev: x[2], memory: x[3], states: x[4] });
        rest = &rest[2 + n + fields * 8..];
    }
    Some((covered, index))
}

/// Fold one frame (at `at`) into the heads.
pub(super) fn apply(heads: &mut Index, at: Ptr, f: &Frame<'_>) {
    let h = heads.entry(f.pool.to_owned()).or_default();
    if !f.record.is_empty() {
        *h = Head { decision: at, seq: f.seq, prev: f.prev, ..*h };
    }
    if !f.memory.is_empty() {
        h.memory = at;
    }
    if !f.states.is_empty() {
        h.states = at;
    }
}

/// The heads from the last checkpoint and the segments after it; and the
/// next segment number.
pub(super) fn rebuild(db: &Database) -> Result<(Index, u64), String> {
    let r = db.begin_read().map_err(|e| e.to_string())?;
    let checkpoint = r.open_table(CHECKPOINT).map_err(|e| e.to_string())?;
    let saved = match checkpoint.get(KEY).map_err(|e| e.to_string())? {
        Some(v) => Some(decode(v.value(), 5).ok_or("the journal's checkpoint is unreadable")?),
        None => match checkpoint.get(OLD_KEY).map_err(|e| e.to_string())? {
            Some(v) => Some(decode(v.value(), 4).ok_or("the journal's checkpoint is unreadable")?),
            None => None,
        },
    };
    let (covered, mut index) = saved.unwrap_or((0, Index::new()));
    let log = r.open_table(LOG).map_err(|e| e.to_string())?;
    let mut next = covered + 1;
    if let Some(last) = log.last().map_err(|e| e.to_string())? {
        next = next.max(last.0.value() + 1);
    }
    for entry in log.range(covered + 1..).map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        for (i, f) in segment::frames(v.value()).enumerate() {
            apply(&mut index, segment::ptr(k.value(), i), &f);
        }
    }
    Ok((index, next))
}
