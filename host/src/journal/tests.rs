use super::*;
use std::time::Duration;
use crate::decide::record::*;

fn record(pool: &str, seq: u64) -> DecisionRecord {
    DecisionRecord {
        pool: pool.into(),
        seq,
        at: seq as i64 * 1000,
        mode: Mode::Live,
        input_digest: String::new(),
        running: 1,
        booting: 0,
        metrics: vec![],
        votes: vec![],
        consensus: ConsensusResult { policy: "single".into(), desired: Some(2.0), confidence: 1.0, explanation: String::new() },
        cost: vec![],
        placement: None,
        limited: None,
        proposed: 2,
        clamps: vec![],
        desired: 2,
        alerts: vec![],
        action: None,
    }
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
