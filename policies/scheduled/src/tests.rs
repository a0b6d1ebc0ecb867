use super::*;
use scalewise_sdk::{run_strategy, validate_strategy};

/// Milliseconds of a UTC date-time.
fn utc(t: &str) -> i64 {
    t.parse::<DateTime>().unwrap().to_zoned(TimeZone::UTC).unwrap().timestamp().as_millisecond()
}

fn run(at: i64, running: u32, settings: &str) -> Result<Proposal, String> {
    let input = StrategyInput {
        pool: Pool { id: "p".into(), running, booting: 0, min: 1, max: 40 },
        now: at,
        settings: settings.into(),
        ..Default::default()
    };
    run_strategy::<Scheduled>(&input).map(|o| o.proposal)
}

const BERLIN: &str = r#"{"timezone":"Europe/Berlin","rules":[
    {"name":"office","cron":"* 8-17 * * MON-FRI","min":10},
    {"name":"weekend","cron":"* * * * SAT,SUN","max":4},
    {"name":"backup","cron":"0-29 2 * * SUN","fixed":2}]}"#;

#[test]
fn office_hours_are_local_time_across_daylight_saving() {
    // Tuesday 08:30 in Berlin is 07:30 UTC in winter (CET) ...
    let p = run(utc("2026-11-24T07:30"), 3, BERLIN).unwrap();
    assert_eq!(p.desired, 10.0);
    assert!(p.reason.contains("Tue 2026-11-24 08:30 Europe/Berlin") && p.reason.contains("`office` floor 10"), "{}", p.reason);
    // ... and 06:30 UTC in summer (CEST).
    assert_eq!(run(utc("2026-06-23T06:30"), 3, BERLIN).unwrap().desired, 10.0);
    // 07:30 UTC in summer is already 09:30 there; 06:30 UTC in winter is 07:30, before the office opens.
    assert!(run(utc("2026-11-24T06:30"), 3, BERLIN).unwrap_err().contains("no schedule rule is active"));
    assert!(scalewise_sdk::is_no_opinion(&run(utc("2026-11-24T06:30"), 3, BERLIN).unwrap_err()), "no rule active is a decline, not a fault");
    // A floor never lowers a busier pool.
    assert_eq!(run(utc("2026-11-24T07:30"), 25, BERLIN).unwrap().desired, 25.0);
}

#[test]
fn weekends_cap_and_a_maintenance_window_fixes() {
    let sat = run(utc("2026-11-28T12:00"), 9, BERLIN).unwrap();
    assert_eq!(sat.desired, 4.0, "{}", sat.reason);
    // Sunday 02:10 Berlin: weekend ceiling and the backup window; fixed wins.
    let p = run(utc("2026-11-29T01:10"), 9, BERLIN).unwrap();
    assert_eq!(p.desired, 2.0);
    assert!(p.reason.contains("`backup` fixes the pool at 2"), "{}", p.reason);
    // 02:30 the window is over: only the ceiling.
    assert_eq!(run(utc("2026-11-29T01:30"), 9, BERLIN).unwrap().desired, 4.0);
}

#[test]
fn date_bounded_rules_and_conflicts() {
    let s = r#"{"rules":[
        {"name":"sale","cron":"* * * * *","from":"2026-11-27T00:00","to":"2026-11-30T00:00","min":30},
        {"name":"night","cron":"* 0-5 * * *","max":20}]}"#;
    assert!(run(utc("2026-11-26T23:59"), 5, s).is_err());
    assert_eq!(run(utc("2026-11-27T12:00"), 5, s).unwrap().desired, 30.0);
    let p = run(utc("2026-11-28T03:00"), 5, s).unwrap();
    assert_eq!(p.desired, 20.0);
    assert!(p.reason.contains("`night` ceiling 20 is below the floor and wins"), "{}", p.reason);
    let p = run(utc("2026-11-30T00:00"), 5, s).unwrap();
    assert!(!p.reason.contains("sale") && p.desired == 5.0, "`to` is exclusive: {}", p.reason);
    // The pool's own bounds still hold.
    let big = r#"{"rules":[{"name":"all","cron":"* * * * *","fixed":100}]}"#;
    let p = run(utc("2026-11-27T12:00"), 5, big).unwrap();
    assert_eq!(p.desired, 40.0);
    assert!(p.reason.contains("the pool's bounds allow 40"), "{}", p.reason);
}

#[test]
fn bad_settings_name_the_rule_and_field() {
    let bad = |s: &str| validate_strategy::<Scheduled>(s).unwrap_err();
    assert!(bad(r#"{"timezone":"Mars/Olympus","rules":[{"name":"a","cron":"* * * * *","min":1}]}"#).contains("timezone: `Mars/Olympus`"));
    assert!(bad(r#"{"rules":[{"name":"a","cron":"* 25 * * *","min":1}]}"#).contains("rules[0].cron: hour field `25`"));
    assert!(bad(r#"{"rules":[{"name":"a","cron":"* * * * *"}]}"#).contains("rules[0] (a): set `min`"));
    assert!(bad(r#"{"rules":[{"name":"a","cron":"* * * * *","fixed":1,"min":2}]}"#).contains("`fixed` stands alone"));
    assert!(bad(r#"{"rules":[{"name":"a","cron":"* * * * *","min":5,"max":2}]}"#).contains("min 5 is above max 2"));
    assert!(bad(r#"{"rules":[{"name":"a","cron":"* * * * *","min":1,"from":"tomorrow"}]}"#).contains("rules[0].from: `tomorrow`"));
    assert!(bad(r#"{"rules":[]}"#).contains("rules: add at least one rule"));
}
