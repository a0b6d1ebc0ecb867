use std::time::Duration;

use scalewise_providers::advisors::{ChatSettings, Usage};
use scalewise_sdk::Proposal;

use super::*;
use crate::control::clock::VirtualClock;
use crate::decide::record::{ConsensusResult, ExpertVote};

fn advisor(max_calls_per_hour: u32) -> Advisor {
    Advisor::new(spec(max_calls_per_hour))
}

fn spec(max_calls_per_hour: u32) -> AdvisorSpec {
    // Nothing listens on port 9: a call fails at once, unreachable.
    let settings = ChatSettings { base: "http://127.0.0.1:9/v1".into(), model: "m".into(), timeout: Duration::from_secs(1), temperature: 0.0, seed: None, max_tokens: 100, max_body_bytes: 4096, structured_output: true, access: Default::default() };
    AdvisorSpec {
        client: Arc::new(ChatClient::new(settings).unwrap()),
        vote: true,
        weight: 1.5,
        review_above: Some(2),
        ask_every_ticks: 0,
        ask_on_spread: Some(0.5),
        fresh_ms: 10_000,
        max_calls_per_hour,
        cost_per_1k_tokens: None,
        journal_bytes: 256,
        timeout_ms: 1000,
        prompts: Prompts::default(),
        limits: OutputLimits::default(),
    }
}

/// Wait (a bounded while) for the vote question in flight to end.
async fn vote_ended(a: &Advisor) {
    for _ in 0..100 {
        if lock(&a.shared).vote.asked.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the vote question never ended");
}

fn pool() -> Pool {
    Pool { id: "p".into(), running: 3, booting: 0, min: 1, max: 20 }
}

fn reply(content: &str) -> Result<ChatReply, ChatError> {
    Ok(ChatReply { content: content.into(), usage: Some(Usage { prompt_tokens: 100, completion_tokens: 10 }), finish_reason: Some("stop".into()), latency: Duration::from_millis(40) })
}

fn settle(a: &Advisor, q: Question, at: i64, r: Result<ChatReply, ChatError>) {
    let spec = a.spec.clone();
    lock(&a.shared).settle(&spec, &pool(), q, at - 40, at, r);
}

fn record(proposals: &[f64], desired: u32) -> DecisionRecord {
    let votes = proposals.iter().enumerate().map(|(i, d)| ExpertVote { expert: format!("s{i}"), weight: 1.0, version: Some(1), proposal: Some(Proposal::new(*d, 1.0, "r")), abstained: None, declined: false, fallback: None, gauges: vec![] }).collect();
    DecisionRecord {
        votes,
        consensus: ConsensusResult { policy: "c".into(), desired: Some(f64::from(desired)), confidence: 1.0, explanation: "e".into() },
        ..DecisionRecord::sample("p", 1, 3, desired)
    }
}

#[test]
fn it_votes_with_its_latest_answer_while_fresh_and_otherwise_says_why_not() {
    let a = advisor(60);
    assert_eq!(a.ballot(0).unwrap().abstained.as_deref(), Some("it has not answered yet"));
    settle(&a, Question::Vote, 1_000, reply(r#"{"desired": 7, "confidence": 0.6, "reason": "rising"}"#));
    let b = a.ballot(5_000).unwrap();
    assert_eq!((b.proposal.unwrap().desired, b.weight, b.answered_at), (7.0, 1.5, Some(1_000)));
    let stale = a.ballot(12_000).unwrap();
    assert_eq!(stale.abstained.as_deref(), Some("its latest answer is 11 s old; answers count for 10 s"));
    // A later answer that breaks the rules outweighs the older good one.
    settle(&a, Question::Vote, 2_000, reply(r#"{"desired": 70, "confidence": 0.6, "reason": "r"}"#));
    let refused = a.ballot(3_000).unwrap();
    assert!(refused.proposal.is_none());
    assert!(refused.abstained.unwrap().contains("counts for nothing: the answer was refused: desired capacity 70 is outside the pool's bounds [1, 20]"));
    let heard: Vec<_> = lock(&a.shared).heard.drain(..).collect();
    assert_eq!(heard.iter().map(|h| h.outcome.as_str()).collect::<Vec<_>>(), ["answered", "refused"]);
    assert_eq!(heard[1].raw.as_deref(), Some(r#"{"desired": 70, "confidence": 0.6, "reason": "r"}"#));
    let s = a.status(3_000);
    assert_eq!((s.prompt_tokens, s.completion_tokens, s.failures.get("bad_answer").copied()), (200, 20, Some(1)));
}

#[test]
fn a_review_applies_to_changes_from_the_same_size_in_the_same_direction() {
    let a = advisor(60);
    assert_eq!(a.review_state(3, 15, 0), ReviewState::NotAsked);
    lock(&a.shared).review.asked = Some((Question::Review { from: 3, to: 15 }, 100));
    assert_eq!(a.review_state(3, 15, 500), ReviewState::Waiting(100));
    settle(&a, Question::Review { from: 3, to: 15 }, 1_000, reply(r#"{"verdict": "object", "reason": "one sample"}"#));
    assert_eq!(a.review_state(3, 20, 2_000), ReviewState::Object("one sample".into()), "a larger change");
    assert_eq!(a.review_state(3, 14, 2_000), ReviewState::NotAsked, "an objection to 3 → 15 is not one to a smaller change");
    assert_eq!(a.review_state(4, 15, 2_000), ReviewState::NotAsked, "another starting size");
    assert_eq!(a.review_state(15, 3, 2_000), ReviewState::NotAsked, "the other direction");
    assert_eq!(a.review_state(3, 15, 20_000), ReviewState::NotAsked, "stale");
    // An agreement covers a smaller change, never a larger one.
    settle(&a, Question::Review { from: 3, to: 5 }, 2_500, reply(r#"{"verdict": "agree", "reason": "fine"}"#));
    assert_eq!(a.review_state(3, 5, 2_600), ReviewState::Agree("fine".into()));
    assert_eq!(a.review_state(3, 4, 2_600), ReviewState::Agree("fine".into()));
    assert_eq!(a.review_state(3, 40, 2_600), ReviewState::NotAsked, "agreeing to 3 → 5 is not agreeing to 3 → 40");
    settle(&a, Question::Review { from: 3, to: 15 }, 3_000, Err(ChatError::Timeout(Duration::from_secs(1))));
    assert_eq!(a.review_state(3, 15, 4_000), ReviewState::Failed("the call failed: no answer within 1000 ms".into()));
}

#[tokio::test]
async fn questions_stop_at_the_hourly_cap_and_at_the_endpoints_retry_after() {
    let mut a = advisor(2);
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::new(0));
    let metrics = [];
    let facts = Facts { min: 1, max: 20, interval_ms: 1000, metrics: &metrics, recent: &[] };
    // The strategies disagree (2 vs 9): each decision asks for a vote.
    let mut asked = Vec::new();
    for t in 0..3 {
        let mut r = record(&[2.0, 9.0], 3);
        a.after_decision(&mut r, &facts, 3, &clock, t * 1000);
        asked.push(r.advisor.unwrap().asked.len());
        // Let the call fail (nothing listens) before the next decision.
        for _ in 0..100 {
            if lock(&a.shared).vote.asked.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Votes use at most three quarters of the cap (here 1 of 2): a review
    // still gets its call.
    assert_eq!(asked, [1, 0, 0]);
    let mut large = record(&[9.0], 9);
    assert!(matches!(a.after_decision(&mut large, &facts, 3, &clock, 3_000), Gate::Hold(_)));
    let s = a.status(3_000);
    assert_eq!((s.calls_last_hour, s.skipped_at_cap), (2, 2));
    assert_eq!(a.status(3_600_001).calls_last_hour, 1, "the first call has left the hour");
    for _ in 0..100 {
        if lock(&a.shared).review.asked.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.status(4_000).failures.get("unreachable").copied(), Some(2));
    // At the cap, a large change goes ahead unreviewed, and says why.
    let mut again = record(&[15.0], 15);
    assert_eq!(a.after_decision(&mut again, &facts, 3, &clock, 5_000), Gate::Proceed);
    let review = again.advisor.unwrap().review.unwrap();
    assert_eq!(review.verdict, "unreviewed");
    assert!(review.reason.contains("the cap of 2 calls an hour are used"), "{}", review.reason);

    // A 429's Retry-After holds every question until it passes.
    let b = advisor(60);
    settle(&b, Question::Vote, 1_000, Err(ChatError::Status { status: 429, message: "slow down".into(), retry_after_secs: Some(30) }));
    let r = record(&[2.0, 9.0], 3);
    assert!(b.ask(Question::Vote, "t".into(), &r, &facts, &clock, 10_000).unwrap_err().contains("Retry-After"));
}

#[tokio::test]
async fn a_voter_is_asked_every_n_ticks_and_not_between() {
    let mut a = Advisor::new(AdvisorSpec { ask_every_ticks: 3, ask_on_spread: None, ..spec(60) });
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::new(0));
    let facts = Facts { min: 1, max: 20, interval_ms: 1000, metrics: &[], recent: &[] };
    let mut asked = Vec::new();
    for t in 0..9 {
        // The experts agree, and nothing is large: only the count asks.
        let mut r = record(&[3.0, 3.0], 3);
        a.after_decision(&mut r, &facts, 3, &clock, t * 1000);
        let rec = r.advisor.unwrap();
        asked.push(rec.asked.iter().map(|q| q.why.clone()).collect::<Vec<_>>().join(","));
        vote_ended(&a).await;
    }
    let every = "every 3 ticks".to_string();
    assert_eq!(asked, [every.clone(), "".into(), "".into(), every.clone(), "".into(), "".into(), every, "".into(), "".into()]);
    // A standby replica counts no ticks and asks nothing.
    let mut standby = record(&[3.0], 3);
    standby.mode = Mode::Standby;
    a.after_decision(&mut standby, &facts, 3, &clock, 9_000);
    assert!(standby.advisor.unwrap().asked.is_empty());
    let mut r = record(&[3.0], 3);
    a.after_decision(&mut r, &facts, 3, &clock, 10_000);
    assert_eq!(r.advisor.unwrap().asked.len(), 1, "the tenth counted tick asks");
}

#[test]
fn a_large_change_in_a_dry_run_or_a_small_one_is_not_reviewed() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let mut a = advisor(60);
    let clock: Arc<dyn Clock> = Arc::new(VirtualClock::new(0));
    let facts = Facts { min: 1, max: 20, interval_ms: 1000, metrics: &[], recent: &[] };
    let mut small = record(&[4.0], 4);
    assert_eq!(a.after_decision(&mut small, &facts, 3, &clock, 0), Gate::Proceed);
    let mut dry = record(&[9.0], 9);
    dry.mode = Mode::DryRun;
    assert_eq!(a.after_decision(&mut dry, &facts, 3, &clock, 0), Gate::Proceed);
    assert!(dry.advisor.unwrap().review.is_none());
    let mut large = record(&[9.0], 9);
    assert!(matches!(a.after_decision(&mut large, &facts, 3, &clock, 0), Gate::Hold(_)));
    let rec = large.advisor.unwrap();
    assert_eq!(rec.review.unwrap().verdict, "waiting");
    assert_eq!(rec.asked[0].question, "review 3 -> 9");
}

#[test]
fn text_is_clipped_by_characters_and_cut_by_bytes_on_a_boundary() {
    assert_eq!(clip("héllo", 5), "héllo");
    assert_eq!(clip("héllo wörld", 7), "héllo w…");
    assert_eq!(clip("", 0), "");
    assert_eq!(cut("abc", 3), "abc");
    // `é` is two bytes: a cut at 2 must not split it.
    assert_eq!(cut("héllo", 2), "h… [6 bytes in all]");
}

#[test]
fn its_calls_of_the_last_hour_are_kept_by_bucket_and_restored_no_shorter() {
    let a = advisor(5);
    lock(&a.shared).calls.extend([10_000, 20_000, 400_000]);
    assert_eq!(a.calls_by_bucket(500_000), vec![(0, 2), (300_000, 1)]);
    // Restored at each bucket's end (never later than now).
    let mut b = advisor(5);
    b.restore_calls(&[(0, 2), (300_000, 1)], 500_000);
    assert_eq!(lock(&b.shared).calls.iter().copied().collect::<Vec<_>>(), vec![299_999, 299_999, 500_000]);
    // A count past the cap (a memory from another config) is cut to it.
    let mut c = advisor(5);
    c.restore_calls(&[(0, 1000)], 299_999 + HOUR_MS - 1);
    assert_eq!(lock(&c.shared).calls.len(), 5);
    // An hour after its bucket's end, a call no longer counts.
    let mut d = advisor(5);
    d.restore_calls(&[(0, 3)], 299_999 + HOUR_MS);
    assert!(lock(&d.shared).calls.is_empty());
    // An advisor that has called already keeps its own count.
    let mut e = advisor(5);
    lock(&e.shared).calls.push_back(1);
    e.restore_calls(&[(0, 3)], 10);
    assert_eq!(lock(&e.shared).calls.len(), 1);
}
