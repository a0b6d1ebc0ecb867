//! The source on played-back readings. The figures are made up for the
//! arithmetic (no GPU was lent to this project's test machines); the
//! readings' shape is what `NvmlProbe` produces.

use super::*;

const G: u64 = 1024 * 1024 * 1024;

fn gpu(index: u32, total_gib: u64, used_gib: u64, util: u32, temp: u32, processes: &[(u32, Option<u64>)]) -> GpuReading {
    GpuReading {
        index,
        name: format!("test GPU {index}"),
        uuid: format!("GPU-{index}"),
        memory_total_bytes: total_gib * G,
        memory_used_bytes: used_gib * G,
        memory_free_bytes: (total_gib - used_gib) * G,
        utilization_percent: Some(util),
        memory_utilization_percent: None,
        temperature_celsius: Some(temp),
        processes: processes.iter().map(|&(pid, gib)| GpuProcess { pid, used_bytes: gib.map(|g| g * G) }).collect(),
    }
}

fn two_gpus() -> Vec<GpuReading> {
    vec![gpu(0, 80, 30, 90, 71, &[(100, Some(14)), (101, Some(14))]), gpu(1, 80, 10, 30, 55, &[(200, None)])]
}

fn window(end: i64) -> Window {
    Window { end, length_ms: 10_000, step_ms: 1000 }
}

async fn last(source: &NvmlSource, query: &str, at: i64) -> Result<Option<f64>, MetricError> {
    source.query(query, window(at)).await.map(|s| s.last().map(|s| s.value))
}

#[tokio::test]
async fn series_sum_average_and_select() {
    let s = NvmlSource::with_probe(Box::new(Recorded::new(vec![Ok(two_gpus())])));
    let at = 5000;
    assert_eq!(last(&s, "memory_free_gib", at).await.unwrap(), Some(120.0));
    assert_eq!(last(&s, "memory_free_gib{gpu=1}", at).await.unwrap(), Some(70.0));
    assert_eq!(last(&s, "memory_free_mib{gpu=1}", at).await.unwrap(), Some(70.0 * 1024.0));
    assert_eq!(last(&s, "memory_used_gib", at).await.unwrap(), Some(40.0));
    assert_eq!(last(&s, "memory_total_gib", at).await.unwrap(), Some(160.0));
    assert_eq!(last(&s, "utilization", at).await.unwrap(), Some(60.0));
    assert_eq!(last(&s, "temperature", at).await.unwrap(), Some(71.0));
    assert_eq!(last(&s, "gpus", at).await.unwrap(), Some(2.0));
    // A process whose memory the driver does not report counts nothing.
    assert_eq!(last(&s, "process_memory_gib", at).await.unwrap(), Some(28.0));
    assert_eq!(last(&s, "process_memory_gib{pid=101}", at).await.unwrap(), Some(14.0));
    // No memory-utilization reading: no sample rather than a made-up zero.
    assert_eq!(last(&s, "memory_utilization", at).await.unwrap(), None);
    // A GPU that is not there has no samples.
    assert_eq!(last(&s, "memory_free_gib{gpu=7}", at).await.unwrap(), None);
    assert!(matches!(s.status(), SourceStatus::Up(d) if d == "2 GPUs"));
}

#[tokio::test]
async fn one_read_per_tick_and_a_window_of_readings() {
    let readings = (0..5).map(|i| Ok(vec![gpu(0, 80, 10 * i, 0, 40, &[])])).collect();
    let s = NvmlSource::with_probe(Box::new(Recorded::new(readings)));
    for t in 1..=4 {
        // Two queries at one tick share one read.
        s.query("memory_used_gib", window(t * 1000)).await.unwrap();
        s.query("memory_free_gib", window(t * 1000)).await.unwrap();
    }
    let used: Vec<f64> = s.query("memory_used_gib", window(4000)).await.unwrap().iter().map(|x| x.value).collect();
    assert_eq!(used, [0.0, 10.0, 20.0, 30.0]);
}

#[tokio::test]
async fn no_driver_is_a_clear_error_and_a_gpu_that_goes_is_noticed() {
    let s = NvmlSource::with_probe(Box::new(Recorded::new(vec![
        Ok(two_gpus()),
        Err("GPU 1: cannot read memory: GPU is lost".into()),
        Ok(vec![gpu(0, 80, 30, 90, 71, &[])]),
    ])));
    assert_eq!(last(&s, "gpus", 1000).await.unwrap(), Some(2.0));
    let err = last(&s, "gpus", 2000).await.unwrap_err().to_string();
    assert!(err.contains("GPU is lost"), "{err}");
    assert!(matches!(s.status(), SourceStatus::Unavailable(d) if d.contains("GPU is lost")));
    // The next tick reads again: one GPU left.
    assert_eq!(last(&s, "gpus", 3000).await.unwrap(), Some(1.0));
    assert!(matches!(s.status(), SourceStatus::Up(d) if d == "1 GPU"));
}

#[tokio::test]
async fn the_real_probe_without_a_driver_says_nvml_is_not_available() {
    // On a machine with an NVIDIA driver this reads real GPUs instead.
    let s = NvmlSource::new();
    match s.query("memory_free_gib", window(1000)).await {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("NVML not available"), "{e}");
            assert!(matches!(s.status(), SourceStatus::Unavailable(_)));
        }
        Ok(samples) => assert!(samples.iter().all(|x| x.value >= 0.0)),
    }
}

#[test]
fn queries_are_checked() {
    assert!(parse("memory_free_gib{gpu=0}").is_ok());
    assert!(parse("process_memory_gib{gpu=0, pid=12}").is_ok());
    assert!(parse("vram").unwrap_err().contains("no series `vram`; use memory_free_gib"));
    assert!(parse("temperature_mib").is_err());
    assert!(parse("utilization{pid=3}").unwrap_err().contains("not a selector of `utilization`"));
    assert!(parse("utilization{gpu=x}").unwrap_err().contains("whole number"));
    assert!(parse("utilization{gpu=0").unwrap_err().contains("ends with `}`"));
}

#[test]
fn recorded_readings_round_trip_through_json() {
    let text = serde_json::to_string(&two_gpus()).unwrap();
    let r = Recorded::from_json(&text).unwrap();
    assert_eq!(r.read().unwrap(), two_gpus());
    assert!(Recorded::from_json("{}").is_err());
}
