use super::*;

const MIN: i64 = 60_000;

/// A daily cycle between 100 and 500, one value per minute.
fn daily(step: i64) -> f64 {
    let phase = (step * MIN).rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
    300.0 - 200.0 * (2.0 * std::f64::consts::PI * phase).cos()
}

fn learn(model: &mut Model, steps: std::ops::Range<i64>, f: impl Fn(i64) -> f64) {
    for k in steps {
        model.observe(k, f(k), 5, &Smoothing::default(), 0.05, false);
    }
}

#[test]
fn a_daily_cycle_is_learnt_and_forecast_by_a_seasonal_method() {
    let mut m = Model::new(MIN);
    let start = 20_000 * 1440; // a day boundary, far from the epoch
    learn(&mut m, start..start + 3 * 1440, daily);
    let now = start + 3 * 1440 - 1;
    let f = m.forecast(now + 1, now + 5, &Smoothing::default(), &Method::ALL, None).unwrap();
    assert_ne!(f.method, Method::LinearTrend, "{f:?}");
    let truth = (now + 1..=now + 5).map(daily).fold(0.0, f64::max);
    assert!((f.peak - truth).abs() / truth < 0.03, "forecast {} vs {truth}", f.peak);
    assert!(f.relative_error.unwrap() < 0.05, "{f:?}");
}

#[test]
fn a_ramp_without_season_is_followed_by_the_trend() {
    let mut m = Model::new(MIN);
    learn(&mut m, 0..120, |k| 10.0 + 2.0 * k as f64);
    let f = m.forecast(120, 125, &Smoothing::default(), &Method::ALL, None).unwrap();
    assert_eq!(f.method, Method::LinearTrend, "{f:?}");
    assert!((f.peak - (10.0 + 2.0 * 125.0)).abs() < 1.0, "{f:?}");
}

#[test]
fn seasonal_naive_is_yesterdays_bucket() {
    let mut m = Model::new(MIN);
    learn(&mut m, 0..1440, |k| k as f64);
    // Tomorrow at 10:02 is forecast as the mean of yesterday's 10:00-10:05.
    let target = 1440 + 602;
    let guess = m.naive(target).unwrap();
    assert_eq!(guess, (600.0 + 601.0 + 602.0 + 603.0 + 604.0) / 5.0);
    // Two days on, nothing from the day before: no guess.
    assert_eq!(m.naive(3 * 1440 + 602), None);
}

#[test]
fn only_the_allowed_methods_are_chosen() {
    let mut m = Model::new(MIN);
    learn(&mut m, 0..3 * 1440, daily);
    let f = m.forecast(3 * 1440, 3 * 1440 + 5, &Smoothing::default(), &[Method::LinearTrend], None).unwrap();
    assert_eq!(f.method, Method::LinearTrend);
}

#[test]
fn the_state_round_trips_compactly() {
    let mut m = Model::new(MIN);
    learn(&mut m, 0..2 * 1440, daily);
    let json = serde_json::to_vec(&m).unwrap();
    assert!(json.len() < 20_000, "state is {} bytes", json.len());
    let back: Model = serde_json::from_slice(&json).unwrap();
    // Profiles travel as f32: the forecasts agree to f32 precision.
    let s = Smoothing::default();
    let (a, b) = (m.forecast(2880, 2885, &s, &Method::ALL, None).unwrap(), back.forecast(2880, 2885, &s, &Method::ALL, None).unwrap());
    assert_eq!(a.method, b.method);
    assert!((a.peak - b.peak).abs() < 1e-3 * a.peak, "{a:?} vs {b:?}");
    let broken = String::from_utf8(json).unwrap().replacen("\"day\":\"", "\"day\":\"zz", 1);
    assert!(serde_json::from_str::<Model>(&broken).is_err());
}

#[test]
fn the_binary_state_is_the_profiles_bytes_and_reads_back_like_json() {
    use scalewise_sdk::state::{self, StateEncoding};
    let mut m = Model::new(MIN);
    learn(&mut m, 0..2 * 1440, daily);
    let binary = state::encode(&m, StateEncoding::Binary).unwrap().unwrap();
    let json = state::encode(&m, StateEncoding::Json).unwrap().unwrap();
    // Seven profiles of f32s (5 × 288 + 2 × 168 buckets... as bytes) and a few numbers.
    let profiles = (5 * DAY_BUCKETS + 2 * WEEK_BUCKETS) * 4;
    assert!(binary.len() < profiles + 1_500, "binary state is {} bytes", binary.len());
    assert!(binary.len() * 2 < json.len(), "binary {} vs json {}", binary.len(), json.len());
    // Binary is exact (JSON text is not, in the last digit of an f64):
    // decoding and encoding again gives the same bytes, and the forecast of
    // the decoded model is the one of a model whose profiles went through f32.
    let from_binary: Model = state::decode(Some(&binary)).unwrap();
    assert!(state::encode(&from_binary, StateEncoding::Binary).unwrap().unwrap() == binary, "binary round trip changed the state");
    let from_json: Model = state::decode(Some(&json)).unwrap();
    let s = Smoothing::default();
    let (a, b) = (from_binary.forecast(2880, 2885, &s, &Method::ALL, None).unwrap(), from_json.forecast(2880, 2885, &s, &Method::ALL, None).unwrap());
    assert_eq!(a.method, b.method);
    assert!((a.peak - b.peak).abs() < 1e-9 * a.peak, "{a:?} vs {b:?}");
}

#[test]
fn forecasts_never_go_negative() {
    let mut m = Model::new(MIN);
    learn(&mut m, 0..60, |k| (600 - 10 * k) as f64);
    for method in Method::ALL {
        let f = m.forecast(60, 200, &Smoothing::default(), &[method], None).unwrap();
        assert!(f.peak >= 0.0);
    }
}
