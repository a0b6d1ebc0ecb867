use super::*;
use scalewise_sdk::run_consensus;

fn vote(expert: &str, desired: Option<f64>, confidence: f64) -> Vote {
    let ballot = match desired {
        Some(d) => Ballot::Proposed(Proposal::new(d, confidence, "")),
        None => Ballot::Abstained("trapped".into()),
    };
    Vote { expert: expert.into(), weight: 1.0, ballot }
}

fn run(settings: &str, votes: Vec<Vote>, state: Option<Vec<u8>>) -> Result<ConsensusOutput, String> {
    run_consensus::<ConfidenceWeighted>(&ConsensusInput {
        pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 1000 },
        votes,
        settings: settings.into(),
        state,
        ..Default::default()
    })
}

#[test]
fn with_no_history_it_is_the_confidence_weighted_mean() {
    // (10·1 + 20·0.5 + 40·0) / 1.5 = 13.33 -> 14; c has no say at confidence 0.
    let out = run("{}", vec![vote("a", Some(10.0), 1.0), vote("b", Some(20.0), 0.5), vote("c", Some(40.0), 0.0)], None).unwrap();
    assert_eq!(out.desired, 14.0);
    assert!(out.explanation.starts_with("weighted mean 13.33 -> 14, carried by a 10 (confidence 1.00, trust 1.00): 67%; b 20"), "{}", out.explanation);
}

#[test]
fn a_tie_of_equal_experts_is_their_mean() {
    let out = run("{}", vec![vote("a", Some(8.0), 0.7), vote("b", Some(12.0), 0.7)], None).unwrap();
    assert_eq!(out.desired, 10.0);
}

#[test]
fn an_expert_that_saw_it_coming_earns_trust_and_a_laggard_loses_it() {
    // The panel asks for 10, 10, 10, then 20 from step 3 on. `early`
    // proposes 20 from step 1 (two decisions ahead), `late` follows at
    // step 5, and `steady` agrees with the panel as it happens.
    let settings = r#"{"lag":2,"learning_rate":0.5}"#;
    let mut state = None;
    let mut out = None;
    for t in 0..12 {
        let panel = if t >= 3 { 20.0 } else { 10.0 };
        let early = if t >= 1 { 20.0 } else { 10.0 };
        let late = if t >= 5 { 20.0 } else { 10.0 };
        let o = run(settings, vec![vote("early", Some(early), 1.0), vote("steady", Some(panel), 1.0), vote("late", Some(late), 1.0)], state).unwrap();
        state = o.state.clone();
        out = Some(o);
    }
    let s: State = serde_json::from_slice(&state.unwrap()).unwrap();
    let trust = |name: &str| Settings::default().trust(s.experts.get(name));
    assert!(trust("early") > trust("steady") && trust("steady") > trust("late"), "early {} steady {} late {}", trust("early"), trust("steady"), trust("late"));
    assert!(out.unwrap().explanation.contains("carried by early 20"));
}

#[test]
fn a_drifting_expert_is_outvoted() {
    let mut state = None;
    let mut last = None;
    let mut first = None;
    for _ in 0..30 {
        let o = run("{}", vec![vote("a", Some(10.0), 1.0), vote("b", Some(10.0), 1.0), vote("broken", Some(100.0), 1.0)], state).unwrap();
        state = o.state.clone();
        first.get_or_insert(o.desired);
        last = Some(o.desired);
    }
    // Trusted at first, the broken expert pulls the mean to 40; at its
    // floor of trust it moves it by less than three members.
    assert_eq!(first, Some(40.0));
    assert!(last.unwrap() <= 13.0, "{last:?}");
}

#[test]
fn abstentions_carry_no_weight_and_keep_their_trust() {
    let out = run("{}", vec![vote("a", Some(10.0), 1.0), vote("x", None, 1.0)], None).unwrap();
    assert_eq!(out.desired, 10.0);
    assert!(out.explanation.ends_with("; abstained: x (trapped)"), "{}", out.explanation);
    assert!(run("{}", vec![vote("x", None, 1.0)], None).is_err());
}

#[test]
fn all_disagreeing_gives_the_mean_with_low_confidence_only_from_disagreement() {
    let out = run("{}", vec![vote("a", Some(2.0), 0.9), vote("b", Some(10.0), 0.9), vote("c", Some(30.0), 0.9)], None).unwrap();
    assert_eq!(out.desired, 14.0);
}

#[test]
fn bad_settings_name_the_field() {
    for (text, field) in [(r#"{"lag":0}"#, "lag"), (r#"{"learning_rate":0}"#, "learning_rate"), (r#"{"min_trust":2}"#, "min_trust")] {
        let err = scalewise_sdk::validate_consensus::<ConfidenceWeighted>(text).unwrap_err();
        assert!(err.contains(field), "{err}");
    }
}
