//! A standby replica learns the leader's actions from the capacity it sees,
//! so that after a take-over its cooldowns count them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use scalewise_providers::{Member, MemberState, ProviderError, ScaleOutcome};
use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, Proposal, StrategyInput, StrategyOutput};

use super::*;
use crate::control::clock::VirtualClock;
use crate::decide::budget::CostSpec;
use crate::decide::guardrails::Guardrails;
use crate::decide::pipeline::{Answer, ExpertSpec, NoAnswer};

/// One strategy that proposes whatever `wants` holds.
struct Wants(AtomicU32);

impl Experts for Wants {
    fn strategy(&self, _: &str, _: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer> {
        let d = f64::from(self.0.load(Ordering::Relaxed));
        Ok(Answer { output: StrategyOutput { proposal: Proposal::new(d, 1.0, "wants"), gauges: vec![], state: None }, version: 1, fallback: None })
    }
    fn consensus(&self, _: &str, _: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer> {
        Err("not used".into())
    }
    fn cost_rule(&self, _: &str, _: &CostInput) -> Result<Answer<CostOutput>, NoAnswer> {
        Err("not used".into())
    }
}

struct Counter(AtomicU32);

#[async_trait]
impl Target for Counter {
    fn kind(&self) -> &'static str {
        "counter"
    }
    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        self.state().await
    }
    async fn state(&self) -> Result<PoolState, ProviderError> {
        Ok(PoolState { members: (0..self.0.load(Ordering::Relaxed)).map(|i| Member::new(format!("m{i}"), MemberState::Active, 0)).collect() })
    }
    async fn scale_to(&self, n: u32) -> Result<ScaleOutcome, ProviderError> {
        self.0.store(n, Ordering::Relaxed);
        Ok(ScaleOutcome { capacity: n, ..Default::default() })
    }
}

async fn standby_pool(leader: Leadership, target: Arc<Counter>, wants: Arc<Wants>, clock: Arc<VirtualClock>) -> PoolLoop {
    let plan = PoolPlan {
        id: "web".into(),
        min: 1,
        max: 50,
        strategies: vec![ExpertSpec { policy: "wants".into(), weight: 1.0 }],
        consensus: None,
        cost_rules: vec![],
        cost: CostSpec::default(),
        guardrails: Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 600, scale_down_cooldown_secs: 0, scale_down_stabilization_secs: 0, scale_up_limits: vec![], scale_down_limits: vec![], manual_hold_secs: 0, rollback_after_faults: 0 },
        limits: vec![],
        instances: Default::default(),
        candidate: None,
    };
    let settings = PoolSettings {
        plan,
        interval: Duration::from_secs(1),
        dry_run: false,
        approval_above: None,
        approval_ttl: Duration::from_secs(60),
        metrics: vec![],
        target,
        leader: Some(leader),
        advisor: None,
    };
    prepare(settings, wants, None, clock).await.unwrap().1
}

#[tokio::test]
async fn after_a_take_over_the_old_leaders_scale_up_still_holds_the_cooldown() {
    let clock = Arc::new(VirtualClock::new(1_000_000));
    let target = Arc::new(Counter(AtomicU32::new(4)));
    let wants = Arc::new(Wants(AtomicU32::new(4)));
    let leader = Leadership::new("b");
    let mut pool = standby_pool(leader.clone(), target.clone(), wants.clone(), clock.clone()).await;
    pool.tick().await;
    assert_eq!(pool.inspect_last(|d| d.mode), Some(Mode::Standby));

    // The leader (another replica) scales up to 8; this one sees it.
    target.0.store(8, Ordering::Relaxed);
    clock.set(1_005_000);
    pool.tick().await;
    assert_eq!(target.0.load(Ordering::Relaxed), 8, "a standby never acts");

    // This replica takes over 30 s later and wants 12: the old leader's
    // scale-up 30 s ago is within the 600 s cooldown.
    leader.renewed(Instant::now(), Duration::from_secs(10));
    wants.0.store(12, Ordering::Relaxed);
    clock.set(1_035_000);
    pool.tick().await;
    let clamps = pool.inspect_last(|d| d.clamps.iter().map(|c| c.guardrail.clone()).collect::<Vec<_>>()).unwrap();
    assert!(clamps.iter().any(|c| c == "scale_up_cooldown"), "{clamps:?}");
    assert_eq!(target.0.load(Ordering::Relaxed), 8);

    // A replica that never saw the leader act would have scaled at once.
    let fresh = Leadership::new("c");
    fresh.renewed(Instant::now(), Duration::from_secs(10));
    let mut other = standby_pool(fresh, target.clone(), wants, clock).await;
    other.tick().await;
    assert_eq!(target.0.load(Ordering::Relaxed), 12);
}
