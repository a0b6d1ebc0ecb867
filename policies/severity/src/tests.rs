use super::*;
use scalewise_sdk::{run_strategy, validate_strategy};

const SIGNALS: &str = r#""signals":[
    {"metric":"queue_depth","thresholds":[10,50,200,500]},
    {"metric":"latency_ms","statistic":"p99","thresholds":[50,100,300,1000]},
    {"metric":"throughput","statistic":"drop","thresholds":[0.05,0.1,0.3,0.5]}]"#;

fn window(name: &str, values: &[f64]) -> MetricWindow {
    MetricWindow::new(name, values.iter().enumerate().map(|(i, &value)| Sample { at: i as i64 * 1000, value }).collect())
}

fn run(metrics: Vec<MetricWindow>, extra: &str) -> Result<Proposal, String> {
    let input = StrategyInput {
        pool: Pool { id: "p".into(), running: 10, booting: 0, min: 2, max: 100 },
        metrics,
        settings: format!("{{{SIGNALS}{extra}}}"),
        ..Default::default()
    };
    run_strategy::<Severity>(&input).map(|o| o.proposal)
}

fn calm() -> Vec<MetricWindow> {
    vec![window("queue_depth", &[3.0, 4.0]), window("latency_ms", &[20.0; 50]), window("throughput", &[100.0, 99.0])]
}

#[test]
fn each_level_takes_its_step() {
    // Everything very low: one member less.
    let p = run(calm(), "").unwrap();
    assert_eq!(p.desired, 9.0);
    assert!(p.reason.starts_with("VERY_LOW:"), "{}", p.reason);
    // One signal LOW, the rest very low: no step at LOW, no opinion.
    let mut m = calm();
    m[0] = window("queue_depth", &[30.0]);
    let e = run(m.clone(), "").unwrap_err();
    assert!(e.starts_with("no opinion: LOW: queue_depth last 30.000 is LOW") && e.ends_with("no step at LOW") && scalewise_sdk::is_no_opinion(&e), "{e}");
    // Unless LOW has a step: then it holds.
    assert_eq!(run(m, r#","steps":{"low":0,"critical":4}"#).unwrap().desired, 10.0);
    // p99 latency HIGH (one slow request in a hundred is enough): +2.
    let mut m = calm();
    let mut lat = vec![20.0; 98];
    lat.extend([400.0, 450.0]);
    m[1] = window("latency_ms", &lat);
    let p = run(m, "").unwrap();
    assert_eq!(p.desired, 12.0);
    assert!(p.reason.starts_with("HIGH:") && p.reason.contains("latency_ms p99"), "{}", p.reason);
}

#[test]
fn critical_is_an_emergency() {
    // Throughput fell by 60 %: CRITICAL, at least twice the capacity.
    let mut m = calm();
    m[2] = window("throughput", &[100.0, 90.0, 40.0]);
    let p = run(m, "").unwrap();
    assert_eq!((p.desired, p.confidence), (20.0, 1.0));
    assert!(p.reason.starts_with("CRITICAL:") && p.reason.contains("EMERGENCY"), "{}", p.reason);
    // Percent steps and a gentler factor; the pool's max still holds.
    let mut m = calm();
    m[0] = window("queue_depth", &[900.0]);
    let p = run(m.clone(), r#","step_type":"percent","steps":{"very_low":-10,"low":0,"medium":0,"high":20,"critical":50},"emergency_factor":1.2"#).unwrap();
    assert_eq!(p.desired, 15.0, "{}", p.reason);
    let p = run(m, r#","emergency_factor":50"#).unwrap();
    assert_eq!(p.desired, 100.0);
}

#[test]
fn missing_signals_are_named_and_all_missing_abstains() {
    let e = run(vec![window("queue_depth", &[60.0])], "").unwrap_err();
    assert!(e.starts_with("no opinion: MEDIUM:") && e.contains("no samples of latency_ms, throughput"), "{e}");
    let e = run(vec![window("other", &[1.0])], "").unwrap_err();
    assert!(e.contains("no samples of queue_depth, latency_ms, throughput"), "{e}");
    // A NaN is no sample.
    assert!(run(vec![window("queue_depth", &[f64::NAN])], "").is_err());
}

#[test]
fn bad_settings_name_the_field() {
    let bad = |s: &str| validate_strategy::<Severity>(s).unwrap_err();
    assert!(bad(r#"{"signals":[]}"#).contains("signals:"));
    assert!(bad(r#"{"signals":[{"metric":"q","thresholds":[5,4,6,7]}]}"#).contains("signals[0].thresholds"));
    assert!(bad(&format!("{{{SIGNALS},\"steps\":{{\"very_low\":0,\"low\":0,\"medium\":3,\"high\":2,\"critical\":4}}}}")).contains("steps: must not shrink"));
    assert!(bad(&format!("{{{SIGNALS},\"emergency_factor\":0.5}}")).contains("emergency_factor"));
    assert!(bad(&format!("{{{SIGNALS},\"steps\":{{\"high\":2}}}}")).contains("steps.critical"));
    assert!(bad(r#"{"signals":[{"metric":"q","thresholds":[1,2,3]}]}"#).contains("expected an array of length 4"));
}
