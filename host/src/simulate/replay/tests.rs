use std::sync::atomic::{AtomicU32, Ordering};

use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, Proposal, Sample, StrategyInput, StrategyOutput};

use super::*;
use crate::decide::budget::CostSpec;
use crate::decide::guardrails::Guardrails;
use crate::decide::inputs::InputRecorder;
use crate::decide::pipeline::{Answer, ExpertSpec, NoAnswer};
use crate::decide::record::MetricReading;

/// A strategy with a state: the newest queue value over ten, plus one on
/// every other call; `bias` is added to what it proposes.
struct Counting {
    bias: f64,
    calls: AtomicU32,
}

impl Counting {
    fn new(bias: f64) -> Self {
        Counting { bias, calls: AtomicU32::new(0) }
    }
}

impl Experts for Counting {
    fn strategy(&self, _: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let n: u32 = input.state.as_deref().map_or(0, |s| std::str::from_utf8(s).unwrap().parse().unwrap());
        let q = input.metrics.iter().find(|m| m.name == "q").and_then(|m| m.last()).unwrap_or(0.0);
        let desired = q / 10.0 + f64::from(n % 2) + self.bias;
        let output = StrategyOutput { proposal: Proposal::new(desired, 1.0, "counting"), gauges: vec![], state: Some((n + 1).to_string().into_bytes()) };
        Ok(Answer { output, version: 1, fallback: None })
    }
    /// The highest proposal (for the pool with an advisor).
    fn consensus(&self, _: &str, input: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer> {
        let desired = input.votes.iter().filter_map(|v| v.proposal()).map(|p| p.desired).fold(0.0, f64::max);
        Ok(Answer { output: ConsensusOutput { desired, confidence: 1.0, explanation: "max".into(), state: None }, version: 1, fallback: None })
    }
    fn cost_rule(&self, _: &str, _: &CostInput) -> Result<Answer<CostOutput>, NoAnswer> {
        Err("not used".into())
    }
}

fn plan() -> PoolPlan {
    plan_with(None)
}

/// With a consensus (the advisor's pool).
fn plan_with(consensus: Option<&str>) -> PoolPlan {
    PoolPlan {
        id: "web".into(),
        min: 1,
        max: 50,
        strategies: vec![ExpertSpec { policy: "counting".into(), weight: 1.0 }],
        consensus: consensus.map(String::from),
        cost_rules: vec![],
        cost: CostSpec::default(),
        guardrails: Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 0, scale_down_cooldown_secs: 5, scale_down_stabilization_secs: 3, scale_up_limits: vec![], scale_down_limits: vec![], manual_hold_secs: 0, rollback_after_faults: 0 },
        limits: vec![],
        instances: Default::default(),
        candidate: None,
    }
}

/// A pool deciding `ticks` times a second apart on a sliding window of a
/// wavy queue, journalling as the live loop does; the capacity follows
/// each decision. `lose` names a decision whose frame never reaches the
/// journal.
async fn journal_of(path: &std::path::Path, ticks: u64, lose: Option<u64>) -> Journal {
    journal_advised(path, ticks, lose, false).await
}

/// With `advised`, an advisor votes 6 above the queue every third tick
/// and abstains otherwise, and a consensus takes the highest proposal.
async fn journal_advised(path: &std::path::Path, ticks: u64, lose: Option<u64>, advised: bool) -> Journal {
    let journal = Journal::open(path).unwrap();
    let (experts, plan) = (Counting::new(0.0), if advised { plan_with(Some("max")) } else { plan() });
    let mut memory = PoolMemory::default();
    let mut recorder = InputRecorder::default();
    let mut running = 2;
    for tick in 0..ticks as i64 {
        let now = 1_000_000 + tick * 1000;
        let samples: Vec<Sample> = (tick.saturating_sub(5)..=tick).map(|t| Sample { at: 1_000_000 + t * 1000, value: 40.0 + 35.0 * ((t as f64) / 4.0).sin() }).collect();
        let window = MetricWindow::new("q", samples);
        let seq = memory.seq + 1;
        let inputs = recorder.record(seq, std::slice::from_ref(&window), None, None);
        let readings = vec![MetricReading { name: "q".into(), samples: window.times().len(), last: window.last(), error: None }];
        let recent = memory.guard.recent();
        let advice = advised.then(|| match tick % 3 {
            0 => crate::decide::record::AdvisorBallot { weight: 1.0, proposal: Some(Proposal::new(window.last().unwrap() / 10.0 + 6.0, 0.8, "model")), abstained: None, answered_at: Some(now - 500) },
            _ => crate::decide::record::AdvisorBallot { weight: 1.0, proposal: None, abstained: Some("in flight".into()), answered_at: None },
        });
        let input = TickInput { plan: &plan, now, mode: Mode::Live, running, booting: 0, metrics: vec![window], readings, recent, headroom: None, advice };
        let mut record = pipeline::decide(&experts, input, &mut memory);
        record.inputs = Some(inputs);
        if record.desired != running {
            memory.guard.record_action(crate::decide::guardrails::Scaled { at: now, from: running, to: record.desired });
            running = record.desired;
        }
        if lose == Some(seq) {
            continue;
        }
        journal.record(&record, &memory).await.unwrap();
    }
    journal
}

fn run(journal: &Journal, serving: &dyn Experts, candidate: Option<&dyn Experts>) -> (ReplaySummary, Vec<Step>) {
    run_plan(journal, plan(), serving, candidate)
}

fn run_plan(journal: &Journal, plan: PoolPlan, serving: &dyn Experts, candidate: Option<&dyn Experts>) -> (ReplaySummary, Vec<Step>) {
    let r = Replay {
        serving: ReplaySet { plan: &plan, experts: serving },
        candidate: candidate.map(|experts| ReplaySet { plan: &plan, experts }),
        from_seq: 0,
        to_seq: u64::MAX,
    };
    let mut steps = Vec::new();
    let summary = replay(journal, "web", &r, |s| steps.push(s.clone())).unwrap();
    (summary, steps)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_is_taken_again_the_same_and_a_changed_policy_parts_where_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_of(&dir.path().join("j.redb"), 150, None).await;
    let (s, steps) = run(&journal, &Counting::new(0.0), Some(&Counting::new(2.0)));
    assert_eq!((s.replayed, s.reproduced, s.skipped), (150, 150, 0), "{s:?}");
    assert!(steps.iter().any(|st| st.recorded != steps[0].recorded), "the pool moved");
    let c = s.candidate.as_ref().unwrap();
    assert_eq!(c.steps, 150);
    assert!(c.higher > 0 && c.differed > 0, "{c:?}");
    assert!(c.candidate_member_hours > c.recorded_member_hours, "{c:?}");

    // A strategy that now answers otherwise: each step says so, by name.
    let (s, steps) = run(&journal, &Counting::new(0.5), None);
    assert_eq!(s.reproduced + s.differed, 150);
    assert!(s.differed > 0);
    let why = steps.iter().find_map(|st| st.differs.clone()).unwrap();
    assert!(why.starts_with("strategy `counting`"), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_frame_skips_until_the_next_whole_record_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_of(&dir.path().join("j.redb"), 100, Some(10)).await;
    let (s, _) = run(&journal, &Counting::new(0.0), None);
    // Decision 10 is missing; 11..=64 are changes of windows the reader
    // lost; 65 is whole again.
    assert_eq!(s.skipped, 54, "{s:?}");
    assert!(s.skipped_first[0].why.contains("decision 10"), "{:?}", s.skipped_first[0]);
    assert_eq!(s.replayed, 100 - 1 - 54);
    // From the whole record on, the memory of the frame before is right again.
    assert_eq!(s.reproduced, s.replayed, "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_advisors_recorded_answers_replay_without_asking_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_advised(&dir.path().join("j.redb"), 90, None, true).await;
    let (s, steps) = run_plan(&journal, plan_with(Some("max")), &Counting::new(0.0), None);
    assert_eq!((s.replayed, s.reproduced), (90, 90), "{s:?}");
    // Its votes moved the pool: without them the strategy alone decides
    // otherwise, so a replay that did not cast them would differ.
    let plain = journal_advised(&dir.path().join("plain.redb"), 90, None, false).await;
    let alone = run(&plain, &Counting::new(0.0), None).1;
    assert!(steps.iter().zip(&alone).any(|(a, b)| a.recorded != b.recorded), "the advisor never mattered");
}
