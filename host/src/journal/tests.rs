use super::*;
use std::time::Duration;
use crate::decide::record::*;
use redb::ReadableTable;

fn record(pool: &str, seq: u64) -> DecisionRecord {
    DecisionRecord { at: seq as i64 * 1000, ..DecisionRecord::sample(pool, seq, 1, 2) }
}

#[tokio::test]
async fn records_survive_reopening_and_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    {
        let j = Journal::open(&path).unwrap();
        let mut m = PoolMemory::default();
        for seq in 1..=5 {
            m.seq = seq;
            j.record(&record("a", seq), &m).await.unwrap();
        }
        j.record(&record("b", 1), &PoolMemory::default()).await.unwrap();
    }
    let j = Journal::open(&path).unwrap();
    let page: Vec<u64> = j.decisions("a", None, 2).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(page, [5, 4]);
    let page: Vec<u64> = j.decisions("a", Some(4), 10).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(page, [3, 2, 1]);
    assert_eq!(j.memory("a").unwrap().unwrap().seq, 5);
    assert!(j.memory("zzz").unwrap().is_none());
}

#[tokio::test]
async fn reopening_from_a_checkpoint_and_the_segments_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    {
        // Checkpoint on every commit, then some commits without one.
        let j = Journal::open_with(&path, Duration::ZERO).unwrap();
        for seq in 1..=3 {
            j.record(&record("a", seq), &PoolMemory { seq, ..Default::default() }).await.unwrap();
        }
    }
    {
        let j = Journal::open_with(&path, Duration::from_secs(3600)).unwrap();
        for seq in 4..=6 {
            j.record(&record("a", seq), &PoolMemory { seq, ..Default::default() }).await.unwrap();
        }
        j.record(&record("b", 1), &PoolMemory::default()).await.unwrap();
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.decisions("a", None, 100).unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), [6, 5, 4, 3, 2, 1]);
    assert_eq!(j.memory("a").unwrap().unwrap().seq, 6);
    assert_eq!(j.decisions("b", None, 100).unwrap().len(), 1);
}

#[test]
fn unwritable_path_is_a_clear_error() {
    let err = Journal::open(Path::new("/proc/scalewise/j.redb")).err().unwrap().to_string();
    assert!(err.contains("cannot open journal /proc/scalewise/j.redb"), "{err}");
}

#[tokio::test]
async fn an_outcome_replaces_its_intent_and_pools_keep_their_own_chains() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(&dir.path().join("j.redb")).unwrap();
    let m = PoolMemory::default();
    j.record(&record("a", 1), &m).await.unwrap();
    j.record(&record("b", 1), &m).await.unwrap();
    let mut intent = record("a", 2);
    intent.action = Some(ActionRecord { from: 1, to: 2, cause: "policy".into(), reason: String::new(), outcome: Outcome::Pending });
    j.record(&intent, &m).await.unwrap();
    j.record(&record("b", 2), &m).await.unwrap();
    intent.action.as_mut().unwrap().outcome = Outcome::Done;
    j.record(&intent, &m).await.unwrap();
    j.remember("a", &PoolMemory { paused: true, ..m.clone() }).await.unwrap();
    let a = j.decisions("a", None, 10).unwrap();
    assert_eq!(a.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(a[0].action.as_ref().unwrap().outcome, Outcome::Done);
    assert_eq!(j.decisions("b", None, 10).unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 1]);
    assert!(j.memory("a").unwrap().unwrap().paused, "remember keeps the chain and replaces the memory");
    assert_eq!(j.decisions("a", None, 10).unwrap().len(), 2);
}

fn memory_with_state(seq: u64, state: &str) -> PoolMemory {
    PoolMemory { seq, states: [("big".to_string(), state.as_bytes().to_vec())].into(), ..Default::default() }
}

#[tokio::test]
async fn a_state_is_written_only_when_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    let state = "s".repeat(100_000);
    {
        let j = Journal::open(&path).unwrap();
        for seq in 1..=30 {
            j.record(&record("a", seq), &memory_with_state(seq, &state)).await.unwrap();
        }
        let counted = j.stats().unwrap().counted_bytes;
        // Once: 128 KiB as stored. Thirty times would be 30 x 128 KiB.
        assert!(counted < 3 * 131_072, "{counted} bytes counted for one unchanged state");
        j.record(&record("a", 31), &memory_with_state(31, "changed")).await.unwrap();
    }
    let j = Journal::open(&path).unwrap();
    let m = j.memory("a").unwrap().unwrap();
    assert_eq!((m.seq, m.states["big"].as_slice()), (31, &b"changed"[..]));
    // After reopening, the first write of a pool writes its states again.
    j.record(&record("a", 32), &memory_with_state(32, &state)).await.unwrap();
    assert_eq!(j.memory("a").unwrap().unwrap().states["big"].len(), 100_000);
}

#[tokio::test]
async fn retention_bounds_the_whole_journal_and_keeps_every_pool_s_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    let max_bytes = 24 << 20;
    let retention = retention::Retention { max_bytes, max_age: Duration::from_secs(3600) };
    let j = Journal::open_retaining(&path, retention).unwrap();
    // Pool `quiet` decided once, long ago: its memory must survive.
    j.record(&record("quiet", 1), &memory_with_state(1, "quiet state")).await.unwrap();
    let mut newest = 0;
    for seq in 1..=400u64 {
        // A new ~250 KB state every decision: 100 MB in all.
        let state = format!("{seq:06}").repeat(42_000);
        j.record(&record("busy", seq), &memory_with_state(seq, &state)).await.unwrap();
        newest = seq;
        let file = std::fs::metadata(&path).unwrap().len();
        assert!(file < max_bytes, "after decision {seq} the file is {file} bytes, over {max_bytes}");
    }
    let stats = j.stats().unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < max_bytes, "the file is {file} bytes, over {max_bytes}");
    assert!(stats.counted_bytes <= max_bytes, "{stats:?}");
    let busy = stats.pools.iter().find(|p| p.pool == "busy").unwrap();
    assert!(busy.oldest_seq.unwrap() > 1, "old decisions were dropped: {busy:?}");
    assert_eq!(busy.newest_seq, Some(newest));
    // Every decision from the oldest kept to the newest reads back.
    let kept = j.decisions("busy", None, 10_000).unwrap();
    let seqs: Vec<u64> = kept.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = (busy.oldest_seq.unwrap()..=newest).rev().collect();
    assert_eq!(seqs, expected);
    assert_eq!(j.memory("quiet").unwrap().unwrap().states["big"], b"quiet state");
    assert_eq!(j.decisions("quiet", None, 10).unwrap().len(), 1, "a pool's newest decision is carried forward");
    assert!(j.memory("busy").unwrap().unwrap().states["big"].starts_with(format!("{newest:06}").as_bytes()));
    drop(j);
    // And all of it after a reopen.
    let j = Journal::open_retaining(&path, retention).unwrap();
    assert_eq!(j.decisions("busy", None, 10_000).unwrap().len(), kept.len());
    assert_eq!(j.memory("quiet").unwrap().unwrap().states["big"], b"quiet state");
    eprintln!("file {file} bytes, counted {}, kept decisions {}..={newest}", stats.counted_bytes, busy.oldest_seq.unwrap());
}

#[tokio::test]
async fn age_retention_drops_old_decisions_but_not_the_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    let retention = retention::Retention { max_bytes: 1 << 30, max_age: Duration::from_millis(1) };
    let j = Journal::open_retaining(&path, retention).unwrap();
    for seq in 1..=3 {
        j.record(&record("a", seq), &memory_with_state(seq, "kept")).await.unwrap();
    }
    // Buckets close after a minute; a compaction needs two of them. Reopen
    // with a bucket table that says the first is old.
    drop(j);
    {
        let db = Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(retention::BUCKETS).unwrap();
            let rows: Vec<(u64, Vec<u8>)> = t.iter().unwrap().map(|e| { let (k, v) = e.unwrap(); (k.value(), v.value().to_vec()) }).collect();
            let (first, mut bytes) = rows[0].clone();
            bytes[8..16].copy_from_slice(&0i64.to_le_bytes());
            bytes[16..24].copy_from_slice(&0i64.to_le_bytes());
            t.insert(first, bytes.as_slice()).unwrap();
        }
        w.commit().unwrap();
    }
    let j = Journal::open_retaining(&path, retention).unwrap();
    j.record(&record("a", 4), &memory_with_state(4, "kept")).await.unwrap();
    j.record(&record("a", 5), &memory_with_state(5, "kept")).await.unwrap();
    let seqs: Vec<u64> = j.decisions("a", None, 10).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [5, 4], "decisions 1 to 3 were older than the window");
    assert_eq!(j.memory("a").unwrap().unwrap().states["big"], b"kept");
}
