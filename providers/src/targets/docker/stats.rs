//! CPU and memory of a pool's containers, from the engine's stats API, for
//! the `pool` metric source (as the local pool reports its processes').
//!
//! Why off the tick path: one stats call per container per tick would tie a
//! decision to the engine's slowest answer. The target reads the last
//! samples it has, and starts a refresh in the background when they are
//! older than a second; a refresh already under way is not started twice.
//!
//! Why one-shot samples and our own difference: a streaming or two-sample
//! stats call makes the engine wait about a second to compute CPU use. A
//! one-shot sample is immediate, and the CPU use in percent of one core is
//! the growth of the container's CPU time between two of our samples over
//! the wall time between them, which is what the local pool reports too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;

use super::engine::Engine;

/// How often the samples are refreshed at most.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: Option<Instant>,
    /// The container's CPU time so far, ns.
    cpu_ns: u64,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
}

#[derive(Default)]
pub struct Stats {
    samples: Mutex<HashMap<String, Sample>>,
    refreshed: Mutex<Option<Instant>>,
    running: AtomicBool,
}

impl Stats {
    /// The latest CPU (percent of one core) and memory of `name`.
    pub fn get(&self, name: &str) -> (Option<f64>, Option<u64>) {
        self.samples.lock().unwrap().get(name).map_or((None, None), |s| (s.cpu_percent, s.memory_bytes))
    }

    /// Start a refresh of `names` in the background if the samples are
    /// stale and none is under way. Samples of containers no longer named
    /// are dropped.
    pub fn refresh(self: &Arc<Self>, engine: &Arc<Engine>, names: Vec<String>) {
        {
            let mut last = self.refreshed.lock().unwrap();
            if last.is_some_and(|t| t.elapsed() < EVERY) || self.running.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
        }
        let (stats, engine) = (self.clone(), engine.clone());
        tokio::spawn(async move {
            let reads = names.iter().map(|n| read(&engine, n));
            let results = futures_util::future::join_all(reads).await;
            let now = Instant::now();
            let mut samples = stats.samples.lock().unwrap();
            samples.retain(|k, _| names.contains(k));
            for (name, got) in names.iter().zip(results) {
                let Some(r) = got else { continue };
                let before = samples.get(name).copied().unwrap_or_default();
                samples.insert(name.clone(), next(before, &r, now));
            }
            stats.running.store(false, Ordering::Release);
        });
    }
}

/// One sample of `name`, or `None` when the engine did not give one.
async fn read(engine: &Engine, name: &str) -> Option<ContainerStatsResponse> {
    let options = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
    let got = engine
        .call("container stats", engine.call_timeout, |d| {
            let options = options.clone();
            async move {
                let mut samples = std::pin::pin!(d.stats(name, Some(options)));
                samples.next().await.transpose()
            }
        })
        .await;
    got.ok().flatten()
}

/// The sample after `before`, from the engine's answer at `now`.
fn next(before: Sample, r: &ContainerStatsResponse, now: Instant) -> Sample {
    let cpu_ns = r.cpu_stats.as_ref().and_then(|c| c.cpu_usage.as_ref()).and_then(|u| u.total_usage).unwrap_or(0);
    let cpu_percent = before.at.and_then(|at| {
        let wall = now.duration_since(at).as_nanos() as f64;
        (wall > 0.0 && cpu_ns >= before.cpu_ns).then(|| (cpu_ns - before.cpu_ns) as f64 / wall * 100.0)
    });
    Sample { at: Some(now), cpu_ns, cpu_percent: cpu_percent.or(before.cpu_percent), memory_bytes: memory(r) }
}

/// Memory in use as `docker stats` counts it: usage less the page cache the
/// kernel can drop (`inactive_file` on cgroup v2, `total_inactive_file` on v1).
fn memory(r: &ContainerStatsResponse) -> Option<u64> {
    let m = r.memory_stats.as_ref()?;
    let usage = m.usage?;
    let cache = m.stats.as_ref().and_then(|s| s.get("inactive_file").or_else(|| s.get("total_inactive_file")).copied()).unwrap_or(0);
    Some(usage.saturating_sub(cache))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    fn answer(cpu_ns: u64, usage: u64, inactive: u64) -> ContainerStatsResponse {
        ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats { cpu_usage: Some(ContainerCpuUsage { total_usage: Some(cpu_ns), ..Default::default() }), ..Default::default() }),
            memory_stats: Some(ContainerMemoryStats { usage: Some(usage), stats: Some([("inactive_file".to_owned(), inactive)].into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_is_cpu_time_over_wall_time_and_memory_leaves_out_the_cache() {
        let t0 = Instant::now();
        let first = next(Sample::default(), &answer(1_000_000_000, 50 << 20, 10 << 20), t0);
        assert_eq!(first.cpu_percent, None, "one sample has no rate yet");
        assert_eq!(first.memory_bytes, Some(40 << 20));
        // Half a core over two seconds.
        let second = next(first, &answer(2_000_000_000, 60 << 20, 0), t0 + Duration::from_secs(2));
        assert!((second.cpu_percent.unwrap() - 50.0).abs() < 1e-9, "{second:?}");
        // A counter that went back (a restarted container) keeps the last rate.
        let third = next(second, &answer(5, 60 << 20, 0), t0 + Duration::from_secs(3));
        assert_eq!(third.cpu_percent, second.cpu_percent);
    }
}
