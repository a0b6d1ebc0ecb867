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
    for seq in 1..=200u64 {
        // Two busy pools, each with a new ~250 KB state every decision:
        // 100 MB in all. The bound is the whole journal's, so neither pool
        // may keep max_bytes of its own.
        for pool in ["busy", "other"] {
            let state = format!("{seq:06}").repeat(42_000);
            j.record(&record(pool, seq), &memory_with_state(seq, &state)).await.unwrap();
            let file = std::fs::metadata(&path).unwrap().len();
            assert!(file < max_bytes, "after decision {seq} of {pool} the file is {file} bytes, over {max_bytes}");
        }
        newest = seq;
    }
    let stats = j.stats().unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < max_bytes, "the file is {file} bytes, over {max_bytes}");
    assert!(stats.counted_bytes <= max_bytes, "{stats:?}");
    let mut kept = std::collections::HashMap::new();
    for pool in ["busy", "other"] {
        let s = stats.pools.iter().find(|p| p.pool == pool).unwrap();
        assert!(s.oldest_seq.unwrap() > 1, "old decisions were dropped: {s:?}");
        assert_eq!(s.newest_seq, Some(newest));
        // Every decision from the oldest kept to the newest reads back.
        let seqs: Vec<u64> = j.decisions(pool, None, 10_000).unwrap().iter().map(|r| r.seq).collect();
        let expected: Vec<u64> = (s.oldest_seq.unwrap()..=newest).rev().collect();
        assert_eq!(seqs, expected, "{pool}");
        kept.insert(pool, seqs.len());
    }
    let busy = stats.pools.iter().find(|p| p.pool == "busy").unwrap();
    assert_eq!(j.memory("quiet").unwrap().unwrap().states["big"], b"quiet state");
    assert_eq!(j.decisions("quiet", None, 10).unwrap().len(), 1, "a pool's newest decision is carried forward");
    assert!(j.memory("busy").unwrap().unwrap().states["big"].starts_with(format!("{newest:06}").as_bytes()));
    drop(j);
    // And all of it after a reopen.
    let j = Journal::open_retaining(&path, retention).unwrap();
    for pool in ["busy", "other"] {
        assert_eq!(j.decisions(pool, None, 10_000).unwrap().len(), kept[pool], "{pool}");
    }
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

#[tokio::test]
async fn each_policy_s_state_is_written_only_when_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    let big = "b".repeat(100_000);
    let memory = |seq: u64, small: &str| PoolMemory {
        seq,
        states: [("big".to_string(), big.as_bytes().to_vec()), ("small".to_string(), small.as_bytes().to_vec())].into(),
        ..Default::default()
    };
    {
        let j = Journal::open(&path).unwrap();
        for seq in 1..=30 {
            j.record(&record("a", seq), &memory(seq, &format!("tick {seq}"))).await.unwrap();
        }
        // The big state once (128 KiB as stored) and the small one thirty
        // times; the big one again with each small change would be 3.8 MiB.
        let counted = j.stats().unwrap().counted_bytes;
        assert!(counted < 3 * 131_072, "{counted} bytes counted: the unchanged state was written again");
        let m = j.memory("a").unwrap().unwrap();
        assert_eq!((m.states["big"].len(), m.states["small"].as_slice()), (100_000, &b"tick 30"[..]));
        // A policy the pool no longer has leaves its memory.
        let mut m = memory(31, "");
        m.states.remove("small");
        j.record(&record("a", 31), &m).await.unwrap();
        assert_eq!(j.memory("a").unwrap().unwrap().states.keys().collect::<Vec<_>>(), ["big"]);
    }
    let j = Journal::open(&path).unwrap();
    let m = j.memory("a").unwrap().unwrap();
    assert_eq!((m.seq, m.states.keys().map(String::as_str).collect::<Vec<_>>()), (31, vec!["big"]));
    assert_eq!(m.states["big"].len(), 100_000);
    let stats = j.stats().unwrap();
    assert_eq!(stats.pools.iter().map(|p| p.pool.as_str()).collect::<Vec<_>>(), ["a"], "a policy's key is not a pool");
}

#[tokio::test]
async fn a_pool_s_states_in_one_section_read_back_and_give_way_to_its_policies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.redb");
    let states = |pairs: &[(&str, &str)]| pairs.iter().map(|(p, s)| (p.to_string(), s.as_bytes().to_vec())).collect::<BTreeMap<_, _>>();
    {
        // As journals written before per-policy states kept them: every
        // state in the pool's own section.
        let j = Journal::open(&path).unwrap();
        let section = serde_json::to_vec(&StatesRef { states: &states(&[("old", "dropped since"), ("kept", "v1")]) }).unwrap();
        let (ack, done) = oneshot::channel();
        let job = Job {
            pool: "a".into(),
            record: Some((1, serde_json::to_vec(&record("a", 1)).unwrap())),
            memory: Some(serde_json::to_vec(&PoolMemory { seq: 1, ..Default::default() }).unwrap()),
            states: Some(section),
            policy_states: Vec::new(),
            ack,
        };
        j.inner.tx.as_ref().unwrap().send(job).unwrap();
        done.await.unwrap().unwrap();
        assert_eq!(j.memory("a").unwrap().unwrap().states, states(&[("old", "dropped since"), ("kept", "v1")]));
    }
    // A new host writes the pool, which now has only `kept`.
    let j = Journal::open(&path).unwrap();
    j.record(&record("a", 2), &PoolMemory { seq: 2, states: states(&[("kept", "v2")]), ..Default::default() }).await.unwrap();
    assert_eq!(j.memory("a").unwrap().unwrap().states, states(&[("kept", "v2")]));
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.memory("a").unwrap().unwrap().states, states(&[("kept", "v2")]));
}

#[tokio::test]
async fn a_large_state_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(&dir.path().join("j.redb")).unwrap();
    assert!(!j.warn_large("a", "p", LARGE_STATE - 1));
    assert!(j.warn_large("a", "p", LARGE_STATE));
    assert!(!j.warn_large("a", "p", LARGE_STATE + 1), "once per pool and policy");
    assert!(j.warn_large("b", "p", LARGE_STATE));
    // Recording a large state warns: the pair is then known.
    j.record(&record("c", 1), &memory_with_state(1, &"x".repeat(LARGE_STATE))).await.unwrap();
    assert!(!j.warn_large("c", "big", LARGE_STATE));
}

#[tokio::test]
async fn history_after_compactions_knows_every_state_from_a_baseline_on() {
    let dir = tempfile::tempdir().unwrap();
    let retention = retention::Retention { max_bytes: 8 << 20, max_age: Duration::from_secs(3600) };
    let j = Journal::open_retaining(&dir.path().join("j.redb"), retention).unwrap();
    for seq in 1..=600u64 {
        // A large state that never changes, a small one every tick: by
        // size alone, a baseline would come only every ~2,500 ticks...
        let big = "b".repeat(250_000);
        let states = [("big".to_string(), big.into_bytes()), ("small".to_string(), format!("tick {seq}").into_bytes())].into();
        j.record(&record("a", seq), &PoolMemory { seq, states, ..Default::default() }).await.unwrap();
        // ...and a pool that fills the journal: many compactions, each of
        // which would leave the window without a baseline.
        j.record(&record("filler", seq), &memory_with_state(seq, &format!("{seq:06}").repeat(3_000))).await.unwrap();
    }
    let kept = j.decisions("a", None, 10_000).unwrap().len();
    assert!(kept < 600, "nothing was compacted away ({kept} kept)");
    let (mut states, mut known, mut records) = (None::<BTreeMap<String, Vec<u8>>>, 0, 0);
    j.history("a", |w| {
        if w.states.is_some() {
            states = w.states;
        }
        if let Some(r) = &w.record {
            records += 1;
            if let Some(s) = &states {
                known += 1;
                // Every state, each as it was at this decision.
                assert_eq!(s["small"], format!("tick {}", r.seq).into_bytes(), "seq {}", r.seq);
                assert!(s["big"].len() == 250_000 && s["big"][0] == b'b', "seq {}", r.seq);
            }
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    eprintln!("{records} decisions read, {known} with every state known, {kept} kept");
    assert!(known * 2 >= records, "only {known} of {records} decisions had their states known");
    let m = j.memory("a").unwrap().unwrap();
    assert_eq!((m.states["small"].as_slice(), m.states["big"][0]), (&b"tick 600"[..], b'b'));
}
