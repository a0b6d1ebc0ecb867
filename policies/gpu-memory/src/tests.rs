use super::*;
use scalewise_sdk::run_strategy;

fn window(name: &str, v: f64) -> MetricWindow {
    MetricWindow::new(name, vec![Sample { at: 0, value: v }])
}

fn settings(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","models":{{"small-q4":6144,"large":143360}},"safety_buffer_mib":1024{extra}}}"#)
}

fn input(settings: String, free: &[f64], running: u32, booting: u32, min: u32, max: u32, workload: Option<f64>) -> StrategyInput {
    let mut metrics: Vec<MetricWindow> = free.iter().enumerate().map(|(i, f)| window(&format!("gpu_free_mib.{i}"), *f)).collect();
    if let Some(w) = workload {
        metrics.push(window("queue_depth", w));
    }
    StrategyInput { pool: Pool { id: "p".into(), running, booting, min, max }, metrics, settings, ..Default::default() }
}

#[test]
fn per_gpu_floors_add_up() {
    // 80 GiB and 20 GiB free, 1 GiB buffer, 6 GiB a worker: 13 + 3.
    let out = run_strategy::<GpuMemory>(&input(settings("small-q4", ""), &[81920.0, 20480.0], 2, 0, 0, 100, None)).unwrap();
    assert_eq!(out.proposal.desired, 18.0);
    assert!(out.proposal.reason.contains("hold 16 more `small-q4` worker(s)"), "{}", out.proposal.reason);
}

#[test]
fn the_workload_decides_within_the_ceiling_and_the_limit_is_explained() {
    let s = settings("small-q4", r#","workload_metric":"queue_depth","per_worker":4"#);
    let out = run_strategy::<GpuMemory>(&input(s.clone(), &[20480.0], 1, 0, 0, 100, Some(8.0))).unwrap();
    assert_eq!(out.proposal.desired, 2.0);
    let out = run_strategy::<GpuMemory>(&input(s, &[20480.0], 1, 0, 0, 100, Some(400.0))).unwrap();
    assert_eq!(out.proposal.desired, 4.0);
    assert!(out.proposal.reason.contains("limited to 4 by GPU memory"), "{}", out.proposal.reason);
}

#[test]
fn a_bigger_model_fits_fewer_and_a_min_above_the_ceiling_abstains() {
    let out = run_strategy::<GpuMemory>(&input(settings("large", ""), &[81920.0, 81920.0], 0, 0, 0, 100, None)).unwrap();
    assert_eq!(out.proposal.desired, 0.0, "{}", out.proposal.reason);
    let err = run_strategy::<GpuMemory>(&input(settings("large", ""), &[81920.0], 0, 0, 1, 100, None)).unwrap_err();
    assert!(err.contains("pool min 1 is more than the GPUs hold (0)"), "{err}");
}

#[test]
fn bad_settings_and_missing_metrics_are_named() {
    let err = scalewise_sdk::validate_strategy::<GpuMemory>(&settings("medium", "")).unwrap_err();
    assert!(err.contains("model: `medium` is not in models (known: large, small-q4)"), "{err}");
    let err = scalewise_sdk::validate_strategy::<GpuMemory>(r#"{"model":"m","models":{"m":0}}"#).unwrap_err();
    assert!(err.contains("models.m"), "{err}");
    let err = run_strategy::<GpuMemory>(&input(settings("small-q4", ""), &[], 0, 0, 0, 9, None)).unwrap_err();
    assert!(err.contains("gpu_free_mib"), "{err}");
}

/// Issue 5, acceptance 3: over random inputs (GPUs, free memory, buffer,
/// model table, the model chosen and then changed, pool counts and bounds,
/// workload), the proposal never exceeds the running workers plus what fits
/// beside them, less those still booting; where no such proposal exists
/// inside the pool's bounds the policy abstains.
#[test]
fn never_more_workers_than_fit_over_random_inputs() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let (mut proposed, mut abstained) = (0, 0);
    for _ in 0..5000 {
        let gpus = 1 + next(8) as usize;
        let free: Vec<f64> = (0..gpus).map(|_| next(196_608) as f64 + if next(10) == 0 { -100.0 } else { 0.5 }).collect();
        let buffer = next(4096) as f64;
        let models: Vec<(String, f64)> = (0..1 + next(4)).map(|i| (format!("m{i}"), 1.0 + next(150_000) as f64)).collect();
        let table: Vec<String> = models.iter().map(|(n, m)| format!("\"{n}\":{m}")).collect();
        let (running, booting) = (next(40) as u32, next(10) as u32);
        let min = next(5) as u32;
        let max = min + next(200) as u32;
        let workload = (next(2) == 0).then(|| next(1000) as f64);
        // The same pool, then the same pool after the model changes.
        for (model, need) in [&models[0], &models[next(models.len() as u64) as usize]] {
            let extra = if workload.is_some() { r#","workload_metric":"queue_depth","per_worker":3"# } else { "" };
            let s = format!(r#"{{"model":"{model}","models":{{{}}},"safety_buffer_mib":{buffer}{extra}}}"#, table.join(","));
            let fit: u64 = free.iter().map(|f| if *f > buffer { ((f - buffer) / need).floor() as u64 } else { 0 }).sum();
            let ceiling = u64::from(running) + fit.saturating_sub(u64::from(booting));
            match run_strategy::<GpuMemory>(&input(s, &free, running, booting, min, max, workload)) {
                Ok(out) => {
                    let d = out.proposal.desired;
                    assert!(d <= ceiling as f64, "proposed {d} > {ceiling} fitting: free {free:?} buffer {buffer} need {need} running {running} booting {booting}");
                    assert!(d >= f64::from(min) && d <= f64::from(max), "{d} outside [{min}, {max}]");
                    proposed += 1;
                }
                Err(e) => {
                    assert!(u64::from(min) > ceiling, "abstained although {min} ≤ {ceiling}: {e}");
                    abstained += 1;
                }
            }
        }
    }
    // Both branches were exercised.
    assert!(proposed > 1000 && abstained > 100, "{proposed} proposed, {abstained} abstained");
}
