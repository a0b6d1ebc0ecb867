//! Retention: the journal keeps a bounded past, by age and by size.
//!
//! A strategy that returns a new 1 MiB state every 200 ms would otherwise
//! grow the journal by 400 GB a day. So the log is counted in *buckets*:
//! runs of consecutive segments (a bucket closes at [`bucket_cap`] bytes
//! or after a minute), each with its size and its time span, kept in a
//! small table beside the log. When the whole journal (every pool
//! together) holds more than its share of `max_bytes`, or its oldest
//! bucket is older than `max_age`, whole buckets are dropped from the
//! oldest on.
//!
//! Dropping must not lose what a pool needs to resume: its newest decision
//! (an action's intent may be pending), its guardrail memory and its
//! policies' states. So every pool whose newest frames are in the dropped
//! buckets has them copied forward into a new segment first; when one of
//! them is a states frame, the copy is a fresh baseline of every state
//! (see `States`), so that a replay knows the states from there on. The copy, the
//! deletions and a new checkpoint are one redb transaction: a `kill -9` at
//! any point leaves either the journal before the compaction or the one
//! after it, and nothing inside the retention window is lost either way.
//!
//! `max_bytes` bounds the *file*, which is more than the log it holds.
//! Sizes are counted as redb stores them (a value larger than a page takes
//! a run of pages rounded up to a power of two, so a 1.1 MB segment costs
//! 2 MiB), and the file needs room beyond that: pages freed by the last
//! commits are not reusable yet, and redb grows a file by doubling it.
//! Measured with 1 MiB states, the file reached about 3x the counted log
//! at its peaks. So compaction starts when the count passes [`COMPACT_AT`]
//! of `max_bytes` and brings it down to [`COMPACT_TO`]: the log kept is
//! 15 to 25% of `max_bytes`, and the file stays under `max_bytes`.

use std::collections::VecDeque;
use std::time::Duration;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// First segment of a bucket → its size and time span.
pub(super) const BUCKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("buckets");

/// Compaction starts above this share of `max_bytes`...
pub const COMPACT_AT: f64 = 0.25;
/// ...and drops buckets until the journal is under this share.
pub const COMPACT_TO: f64 = 0.15;

/// How much of the past the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The journal file stays under this many bytes.
    pub max_bytes: u64,
    /// Decisions older than this are dropped.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self { max_bytes: 1 << 30, max_age: Duration::from_secs(30 * 24 * 3600) }
    }
}

/// A bucket closes at this many bytes: a fine enough grain for the size
/// bound, few enough rows for the table.
pub fn bucket_cap(r: &Retention) -> u64 {
    (r.max_bytes / 64).clamp(64 << 10, 16 << 20)
}
/// A bucket closes after this long: the grain of the age bound.
const BUCKET_SPAN_MS: i64 = 60_000;

/// What a segment of `len` bytes costs in the file.
pub fn stored(len: usize) -> u64 {
    let len = len as u64;
    if len > 2048 { len.next_power_of_two().max(4096) } else { len + 64 }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bucket {
    pub first_seg: u64,
    pub bytes: u64,
    pub first_at: i64,
    pub last_at: i64,
}

impl Bucket {
    fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.bytes.to_le_bytes());
        b[8..16].copy_from_slice(&self.first_at.to_le_bytes());
        b[16..].copy_from_slice(&self.last_at.to_le_bytes());
        b
    }

    fn decode(first_seg: u64, b: &[u8]) -> Option<Self> {
        let n = |r: std::ops::Range<usize>| b.get(r).and_then(|s| s.try_into().ok());
        Some(Self { first_seg, bytes: u64::from_le_bytes(n(0..8)?), first_at: i64::from_le_bytes(n(8..16)?), last_at: i64::from_le_bytes(n(16..24)?) })
    }
}

/// The buckets of the log, oldest first.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    pub list: VecDeque<Bucket>,
}

impl Buckets {
    /// Read the table, or, for a journal written before retention, make one
    /// bucket of the whole log.
    pub fn load(tx: &WriteTransaction, now_ms: i64) -> Result<Self, String> {
        let table = tx.open_table(BUCKETS).map_err(|e| e.to_string())?;
        let mut list = VecDeque::new();
        for entry in table.iter().map_err(|e| e.to_string())? {
            let (k, v) = entry.map_err(|e| e.to_string())?;
            list.push_back(Bucket::decode(k.value(), v.value()).ok_or("the journal's bucket table is unreadable")?);
        }
        drop(table);
        if list.is_empty() {
            let log = tx.open_table(super::LOG).map_err(|e| e.to_string())?;
            let mut bucket: Option<Bucket> = None;
            for entry in log.iter().map_err(|e| e.to_string())? {
                let (k, v) = entry.map_err(|e| e.to_string())?;
                let b = bucket.get_or_insert(Bucket { first_seg: k.value(), bytes: 0, first_at: now_ms, last_at: now_ms });
                b.bytes += stored(v.value().len());
            }
            drop(log);
            if let Some(b) = bucket {
                tx.open_table(BUCKETS).map_err(|e| e.to_string())?.insert(b.first_seg, b.encode().as_slice()).map_err(|e| e.to_string())?;
                list.push_back(b);
            }
        }
        Ok(Self { list })
    }

    pub fn total(&self) -> u64 {
        self.list.iter().map(|b| b.bytes).sum()
    }

    /// Count segment `seg` of `len` bytes, committed at `now_ms`, in `tx`.
    pub fn add(&mut self, tx: &WriteTransaction, seg: u64, len: usize, now_ms: i64, r: &Retention) -> Result<(), String> {
        let open_new = self.list.back().is_none_or(|b| b.bytes >= bucket_cap(r) || now_ms - b.first_at >= BUCKET_SPAN_MS);
        if open_new {
            self.list.push_back(Bucket { first_seg: seg, bytes: 0, first_at: now_ms, last_at: now_ms });
        }
        let b = self.list.back_mut().expect("a bucket");
        b.bytes += stored(len);
        b.last_at = b.last_at.max(now_ms);
        let mut table = tx.open_table(BUCKETS).map_err(|e| e.to_string())?;
        table.insert(b.first_seg, b.encode().as_slice()).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// How many of the oldest buckets to drop (never the newest).
    pub fn to_drop(&self, r: &Retention, now_ms: i64) -> usize {
        let over_size = self.total() as f64 > r.max_bytes as f64 * COMPACT_AT;
        let cutoff = now_ms - r.max_age.as_millis() as i64;
        let mut total = self.total();
        let target = (r.max_bytes as f64 * COMPACT_TO) as u64;
        let mut n = 0;
        for b in self.list.iter().take(self.list.len().saturating_sub(1)) {
            let too_old = b.last_at < cutoff;
            if !(too_old || (over_size && total > target)) {
                break;
            }
            total -= b.bytes;
            n += 1;
        }
        n
    }

    /// Drop the `n` oldest buckets in `tx`; the first segment kept.
    pub fn drop_oldest(&mut self, tx: &WriteTransaction, n: usize) -> Result<u64, String> {
        let mut table = tx.open_table(BUCKETS).map_err(|e| e.to_string())?;
        for _ in 0..n {
            let b = self.list.pop_front().expect("a bucket to drop");
            table.remove(b.first_seg).map_err(|e| e.to_string())?;
        }
        Ok(self.list.front().map_or(u64::MAX, |b| b.first_seg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(sizes_and_ages: &[(u64, i64)]) -> Buckets {
        Buckets {
            list: sizes_and_ages
                .iter()
                .enumerate()
                .map(|(i, &(bytes, at))| Bucket { first_seg: i as u64 * 10 + 1, bytes, first_at: at, last_at: at })
                .collect(),
        }
    }

    #[test]
    fn size_drops_the_oldest_down_to_the_target_and_never_the_newest() {
        let r = Retention { max_bytes: 1000, max_age: Duration::from_secs(3600) };
        assert_eq!(buckets(&[(50, 0), (50, 0), (50, 0)]).to_drop(&r, 0), 0, "under COMPACT_AT");
        assert_eq!(buckets(&[(100, 0), (100, 0), (100, 0)]).to_drop(&r, 0), 2, "300 > 250: down to 150 or less");
        assert_eq!(buckets(&[(5000, 0)]).to_drop(&r, 0), 0, "the newest bucket stays");
    }

    #[test]
    fn age_drops_what_ended_before_the_window() {
        let r = Retention { max_bytes: 1 << 30, max_age: Duration::from_secs(60) };
        let now = 1_000_000;
        assert_eq!(buckets(&[(1, now - 120_000), (1, now - 61_000), (1, now - 59_000), (1, now)]).to_drop(&r, now), 2);
    }

    #[test]
    fn stored_sizes_round_up_as_pages_do() {
        assert_eq!(stored(100), 164);
        assert_eq!(stored(1_100_000), 2 << 20);
        assert_eq!(stored(3000), 4096);
    }
}
