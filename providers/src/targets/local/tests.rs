//! The pool against real processes (`sh` scripts).

use super::*;

fn pool(dir: &std::path::Path, script: &str, grace_ms: u64) -> Arc<LocalPool> {
    Arc::new(
        LocalPool::new(LocalConfig {
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![],
            run_dir: dir.to_owned(),
            grace: Duration::from_millis(grace_ms),
            ready_after: Duration::from_millis(100),
            keep_on_exit: false,
            needs: Needs::default(),
        })
        .unwrap(),
    )
}

fn pids(p: &LocalPool) -> Vec<u32> {
    p.inner.lock().unwrap().slots.values().map(|s| s.pid).collect()
}

async fn settle(p: &LocalPool, until: impl Fn(&PoolState) -> bool) -> PoolState {
    for _ in 0..100 {
        p.tick();
        let s = p.snapshot();
        if until(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pool did not settle: {:?}", p.snapshot());
}

const SLEEPER: &str = "trap 'exit 0' TERM; while true; do sleep 0.05; done";

#[tokio::test]
async fn scales_up_and_drains_down() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), SLEEPER, 2000);
    p.reconcile().await.unwrap();
    let out = p.scale_to(3).await.unwrap();
    assert_eq!((out.launched.len(), out.capacity), (3, 3));
    let s = settle(&p, |s| s.running() == 3).await;
    assert!(s.members.iter().all(|m| m.memory_bytes.unwrap_or(0) > 0));
    assert_eq!(p.scale_to(3).await.unwrap(), ScaleOutcome { capacity: 3, ..Default::default() }, "idempotent");
    let before = pids(&p);
    let out = p.scale_to(1).await.unwrap();
    assert_eq!(out.removed.len(), 2);
    settle(&p, |s| s.members.len() == 1).await;
    let gone: Vec<u32> = before.into_iter().filter(|pid| !pids(&p).contains(pid)).collect();
    assert_eq!(gone.len(), 2);
    for pid in gone {
        assert!(process::read_stat(pid).is_none_or(|s| s.state == 'Z'), "drained worker {pid} still runs");
    }
    p.shutdown().await;
    assert!(p.snapshot().members.is_empty());
}

#[tokio::test]
async fn stubborn_worker_is_killed_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), "trap '' TERM; while true; do sleep 0.05; done", 300);
    p.scale_to(1).await.unwrap();
    settle(&p, |s| s.running() == 1).await;
    let started = Instant::now();
    p.scale_to(0).await.unwrap();
    settle(&p, |s| s.members.is_empty()).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "killed before its grace period");
}

#[tokio::test]
async fn busy_workers_are_removed_last() {
    let dir = tempfile::tempdir().unwrap();
    // The first worker says it is busy, the others idle.
    let p = pool(dir.path(), "case $SCALEWISE_MEMBER_ID in w-0) echo busy;; *) echo idle;; esac > $SCALEWISE_STATUS_FILE; trap 'exit 0' TERM; while true; do sleep 0.05; done", 2000);
    p.scale_to(3).await.unwrap();
    settle(&p, |s| s.running() == 3 && s.busy() == 1).await;
    p.scale_to(1).await.unwrap();
    let s = settle(&p, |s| s.members.len() == 1).await;
    assert_eq!(&*s.members[0].id, "w-0");
    p.shutdown().await;
}

#[tokio::test]
async fn crash_loop_backs_off_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), "exit 3", 100);
    p.scale_to(1).await.unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        p.tick();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = p.snapshot();
    let m = &s.members[0];
    // Back-off 1 s, 2 s, 4 s...: at most three restarts in three seconds,
    // where a spinning supervisor would have made a hundred.
    assert!((1..=3).contains(&m.restarts), "{m:?}");
    assert!(m.last_error.as_deref().unwrap().contains("exit status: 3"), "{m:?}");
    assert_eq!(s.capacity(), 1, "a crashing member still holds its place");
}

#[tokio::test]
async fn missing_command_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(
        LocalPool::new(LocalConfig {
            command: vec!["/nonexistent/worker".into()],
            env: vec![],
            run_dir: dir.path().to_owned(),
            grace: Duration::from_millis(100),
            ready_after: Duration::from_millis(100),
            keep_on_exit: false,
            needs: Needs::default(),
        })
        .unwrap(),
    );
    let err = p.scale_to(2).await.unwrap_err().to_string();
    assert!(err.contains("2 of 2 launches failed") && err.contains("/nonexistent/worker"), "{err}");
    assert!(p.snapshot().members.iter().all(|m| m.state == MemberState::Backoff));
}

#[tokio::test]
async fn a_new_pool_adopts_workers_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let first = pool(dir.path(), SLEEPER, 2000);
    first.scale_to(2).await.unwrap();
    settle(&first, |s| s.running() == 2).await;
    let before = pids(&first);
    // The host dies without shutting down: its pool object is just dropped.
    drop(first);
    let second = pool(dir.path(), SLEEPER, 2000);
    let s = second.reconcile().await.unwrap();
    assert_eq!(s.running(), 2);
    let mut after = pids(&second);
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(before, after, "the same processes, not new ones");
    // Scaling to what is there launches nothing; new ids do not collide.
    assert!(second.scale_to(2).await.unwrap().launched.is_empty());
    assert_eq!(second.scale_to(3).await.unwrap().launched, ["w-2"]);
    second.shutdown().await;
    for pid in before {
        assert!(process::read_stat(pid).is_none_or(|s| s.state == 'Z'));
    }
}

/// A host killed while it was starting workers: one worker's pidfile holds
/// only the pid its child wrote before running the command; another's is
/// gone altogether. The next host adopts both, and gives no new worker
/// their ids, nor the id of one whose number was reserved but never used.
#[tokio::test]
async fn workers_a_crashed_host_was_starting_are_adopted_and_their_ids_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = pool(dir.path(), SLEEPER, 2000);
    first.reconcile().await.unwrap();
    first.scale_to(3).await.unwrap();
    settle(&first, |s| s.running() == 3).await;
    let before = pids(&first);
    drop(first);
    // w-0: killed before the start time was added. w-1: pidfile lost.
    let w0 = process::read_pidfile(&dir.path().join("w-0.pid")).unwrap().0;
    std::fs::write(dir.path().join("w-0.pid"), format!("{w0}\n")).unwrap();
    std::fs::remove_file(dir.path().join("w-1.pid")).unwrap();
    // And a number was reserved for a launch that never came.
    std::fs::write(dir.path().join("next-id"), "5\n").unwrap();

    let second = pool(dir.path(), SLEEPER, 2000);
    let s = second.reconcile().await.unwrap();
    let mut after = pids(&second);
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!((s.members.len(), after), (3, before.clone()), "every worker adopted, none launched");
    assert!(process::read_pidfile(&dir.path().join("w-1.pid")).is_some_and(|(_, start)| start.is_some()), "its pidfile is written again");
    assert_eq!(second.scale_to(4).await.unwrap().launched, ["w-5"]);
    second.shutdown().await;
    for pid in before {
        assert!(process::read_stat(pid).is_none_or(|s| s.state == 'Z'), "{pid} was stopped");
    }
}

#[tokio::test]
async fn headroom_follows_free_memory_and_the_workers_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), "exec sleep 30", 200);
    p.scale_to(2).await.unwrap();
    // Until /proc has a resident size for a worker, no memory limit is known.
    let mut state = p.state().await.unwrap();
    // Up to 5 s: on a busy machine the first /proc reading can take a while.
    for _ in 0..250 {
        p.tick();
        state = p.state().await.unwrap();
        if state.members.iter().all(|m| m.memory_bytes.is_some_and(|b| b > 0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let free_now = || headroom::available_memory(&std::fs::read_to_string("/proc/meminfo").unwrap()).unwrap();
    let before = free_now();
    let h = p.headroom(&state).await.unwrap_or_else(|| panic!("a memory headroom once workers have a size: {:?}", state.members));
    let after = free_now();
    let rss = state.members.iter().filter_map(|m| m.memory_bytes).max().unwrap();
    // The figure is this machine's, and free memory moves while other
    // tests run: it must lie between what free memory before and after
    // the call allows (within 5 %).
    let fits = |free: u64| (free.saturating_sub(512 << 20) / rss) as f64;
    let (low, high) = (fits(before.min(after)), fits(before.max(after)));
    let more = f64::from(h.at_most - 2);
    assert!(more >= low * 0.95 - 2.0 && more <= high * 1.05 + 2.0, "{more} not in {low}..={high}: {}", h.why);
    assert!(h.why.starts_with("host memory:"), "{}", h.why);
    p.shutdown().await;
}
