use super::*;
use scalewise_sdk::run_strategy;

const MIN: i64 = 60_000;
const START: i64 = 20_000 * 86_400_000; // midnight UTC

fn settings(extra: &str) -> String {
    format!(r#"{{"metric":"load","per_instance":10.0,"horizon_secs":360{extra}}}"#)
}

/// Low at night, a ramp from 06:00 to 09:00, a plateau, and a fall at 18:00.
fn office(step: i64) -> f64 {
    let minute = step.rem_euclid(1440);
    match minute {
        0..360 => 100.0,
        360..540 => 100.0 + (minute - 360) as f64 * 5.0,
        540..1080 => 1000.0,
        1080..1200 => 1000.0 - (minute - 1080) as f64 * 7.5,
        _ => 100.0,
    }
}

/// One call at step `k`: the window holds the previous and the current minute.
fn call(k: i64, load: impl Fn(i64) -> f64, settings: &str, state: Option<Vec<u8>>) -> (Proposal, Option<Vec<u8>>) {
    let samples = (k - 1..=k).map(|j| Sample { at: START + j * MIN, value: load(j) }).collect();
    let input = StrategyInput {
        pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 1000 },
        metrics: vec![MetricWindow::new("load", samples)],
        now: START + k * MIN,
        settings: settings.to_owned(),
        state,
        ..Default::default()
    };
    let out = run_strategy::<Predictive>(&input).unwrap();
    (out.proposal, out.state)
}

fn run(days: i64, load: impl Fn(i64) -> f64 + Copy, settings: &str) -> (Vec<f64>, Option<Vec<u8>>) {
    let mut state = None;
    let mut desired = Vec::new();
    for k in 0..days * 1440 {
        let (p, s) = call(k, load, settings, state);
        state = s;
        desired.push(p.desired);
    }
    (desired, state)
}

#[test]
fn after_a_day_it_scales_up_before_the_morning_ramp_and_down_after_the_evening() {
    let (desired, _) = run(3, office, &settings(""));
    let day = 2 * 1440;
    // At 05:57 the load is flat (10 instances' worth); the ramp starts at
    // 06:00 and a launch takes 6 minutes: the forecast asks for more now.
    let before_ramp = desired[(day + 357) as usize];
    assert!(before_ramp > 10.0, "at 05:57 it asked for {before_ramp}");
    // Throughout the ramp it stays ahead of the load.
    for m in 360..540 {
        let k = day + m;
        assert!(desired[k as usize] * 10.0 >= office(k), "at minute {m} it asked for {} for {}", desired[k as usize], office(k));
    }
    // After the evening fall it is back near the night's 10.
    assert!(desired[(day + 1260) as usize] <= 12.0, "at 21:00 it asked for {}", desired[(day + 1260) as usize]);
}

#[test]
fn without_the_floor_it_lets_capacity_go_before_the_load_falls() {
    // Unanchored: an anchored forecast starts from the load now, and on
    // this slope stays within one instance of the floor.
    let (floored, _) = run(3, office, &settings(r#","anchor":false"#));
    let (free, _) = run(3, office, &settings(r#","anchor":false,"floor_at_current":false"#));
    // Through the evening fall (18:00 to 20:00) the floored one holds what
    // the load of the moment needs; the free one follows the forecast down.
    let fall = (2 * 1440 + 1080) as usize..(2 * 1440 + 1200) as usize;
    let (kept, let_go): (f64, f64) = (floored[fall.clone()].iter().sum(), free[fall].iter().sum());
    assert!(let_go < kept, "instance-minutes in the fall: {let_go} without the floor, {kept} with it");
    // Both cover the morning ramp alike.
    let ramp = (2 * 1440 + 400) as usize;
    assert_eq!(floored[ramp], free[ramp]);
}

#[test]
fn the_model_survives_in_the_state_and_a_fresh_one_knows_nothing() {
    let (_, state) = run(2, office, &settings(""));
    let k = 2 * 1440 + 357;
    let (learnt, _) = call(k, office, &settings(""), state);
    let (fresh, _) = call(k, office, &settings(""), None);
    assert!(learnt.desired > fresh.desired, "learnt {} fresh {}", learnt.desired, fresh.desired);
    assert!(fresh.reason.contains("1 steps learnt, error not scored yet"), "{}", fresh.reason);
    assert!(learnt.reason.contains("recent error"), "{}", learnt.reason);
    assert!(learnt.confidence > fresh.confidence);
}

#[test]
fn a_spike_is_named_and_followed() {
    let flat = |k: i64| if k == 300 { 900.0 } else { 100.0 + (k % 7) as f64 };
    let mut state = None;
    for k in 0..300 {
        state = call(k, flat, &settings(""), state).1;
    }
    let (p, _) = call(300, flat, &settings(""), state);
    assert!(p.reason.starts_with("spike:"), "{}", p.reason);
    assert_eq!(p.desired, 90.0);
    assert!(p.confidence <= 0.5);
}

#[test]
fn bad_settings_name_the_field() {
    for (extra, field) in [
        (r#","headroom":-1"#, "headroom"),
        (r#","methods":[]"#, "methods"),
        (r#","smoothing":{"alpha":2}"#, "smoothing.alpha"),
        (r#","spike_sigmas":0"#, "spike_sigmas"),
    ] {
        let err = scalewise_sdk::validate_strategy::<Predictive>(&settings(extra)).unwrap_err();
        assert!(err.contains(field), "{extra}: {err}");
    }
    let err = scalewise_sdk::validate_strategy::<Predictive>(r#"{"metric":"load","per_instance":0}"#).unwrap_err();
    assert!(err.contains("per_instance"), "{err}");
}

#[test]
fn no_samples_abstains_with_the_metric_named() {
    let input = StrategyInput { pool: Pool { id: "p".into(), running: 1, booting: 0, min: 1, max: 9 }, settings: settings(""), ..Default::default() };
    let err = run_strategy::<Predictive>(&input).unwrap_err();
    assert!(err.contains("`load`"), "{err}");
}

#[test]
fn it_reports_its_accuracy_as_gauges() {
    let (_, state) = run(2, office, &settings(""));
    let k = 2 * 1440;
    let samples = (k - 1..=k).map(|j| Sample { at: START + j * MIN, value: office(j) }).collect();
    let input = StrategyInput {
        pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 1000 },
        metrics: vec![MetricWindow::new("load", samples)],
        now: START + k * MIN,
        settings: settings(""),
        state,
        ..Default::default()
    };
    let out = run_strategy::<Predictive>(&input).unwrap();
    let gauge = |name: &str| out.gauges.iter().find(|g| g.name == name).map(|g| g.value);
    assert_eq!(gauge("load_now"), Some(office(k)));
    assert!(gauge("steps_learnt").unwrap() >= 2.0 * 1440.0 - 2.0, "{:?}", out.gauges);
    let e = gauge("relative_error").expect("scored after two days");
    // The office day repeats exactly: a seasonal method predicts it well.
    assert!((0.0..0.1).contains(&e), "relative error {e}");
    assert!(gauge("forecast_peak").unwrap() > 0.0);
}

#[test]
fn error_headroom_grows_with_the_recent_forecast_error() {
    // A noisy flat load: the forecast's error is the noise.
    let noisy = |k: i64| 500.0 + if k % 2 == 0 { 60.0 } else { -60.0 };
    let (plain, _) = run(1, noisy, &settings(""));
    let (sized, _) = run(1, noisy, &settings(r#","error_headroom":2.0"#));
    let (a, b) = (plain.last().unwrap(), sized.last().unwrap());
    assert!(b > a, "error-sized headroom adds capacity on noisy load: {b} vs {a}");
    // A steady load has no error, and earns no margin.
    let (steady, _) = run(1, |_| 500.0, &settings(r#","error_headroom":2.0"#));
    assert_eq!(*steady.last().unwrap(), 50.0);
    let err = scalewise_sdk::validate_strategy::<Predictive>(&settings(r#","error_headroom":-1"#)).unwrap_err();
    assert!(err.contains("error_headroom"), "{err}");
}
