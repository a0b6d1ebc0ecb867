//! How many more workers this machine can hold: free memory and idle CPU.
//!
//! Why the local pool needs it: its members share one machine with each
//! other and with everything else on it. A pool that starts more workers
//! than memory holds does not get more capacity, it gets the kernel's OOM
//! killer, crash loops and a slower machine. So before each decision the
//! pool says how many members fit:
//!
//! - memory: `(MemAvailable − reserve) / per member`, where a member needs
//!   what the config says (`member_memory_mib`) or else the largest resident
//!   size of the members running now (none running: no memory limit known);
//! - CPU, only where the config says what a member needs (`member_cpus`):
//!   idle cores since the last look at /proc/stat, divided by that need.
//!
//! The tighter one is the headroom, with its arithmetic in words.

use crate::targets::{Headroom, Member};

/// What one worker needs, and what the machine keeps for itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Needs {
    /// Memory per worker in MiB; measured from running workers if unset.
    pub member_memory_mib: Option<u64>,
    /// Memory left free for everything else, in MiB.
    pub reserve_memory_mib: u64,
    /// Cores per worker; no CPU limit if unset.
    pub member_cpus: Option<f64>,
}

impl Default for Needs {
    fn default() -> Self {
        Self { member_memory_mib: None, reserve_memory_mib: 512, member_cpus: None }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn available_memory(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// The headroom by memory and CPU; `idle_cores` is what the last interval
/// left idle, if known.
pub fn fit(needs: &Needs, available_bytes: Option<u64>, idle_cores: Option<f64>, members: &[Member], current: u32) -> Option<Headroom> {
    let measured = members.iter().filter_map(|m| m.memory_bytes).max();
    let per_member = needs.member_memory_mib.map(|m| m * 1024 * 1024).or(measured).filter(|&b| b > 0);
    let memory = match (available_bytes, per_member) {
        (Some(free), Some(each)) => {
            let usable = free.saturating_sub(needs.reserve_memory_mib * 1024 * 1024);
            let more = (usable / each).min(u64::from(u32::MAX)) as u32;
            let source = if needs.member_memory_mib.is_some() { "configured" } else { "largest running worker" };
            Some(Headroom {
                at_most: current.saturating_add(more),
                why: format!(
                    "host memory: {:.0} MiB available, {} MiB reserved, {:.0} MiB per worker ({source}): {more} more fit",
                    free as f64 / MIB,
                    needs.reserve_memory_mib,
                    each as f64 / MIB
                ),
            })
        }
        _ => None,
    };
    let cpu = match (idle_cores, needs.member_cpus) {
        (Some(idle), Some(each)) if each > 0.0 => {
            let more = (idle / each).floor().clamp(0.0, f64::from(u32::MAX)) as u32;
            Some(Headroom { at_most: current.saturating_add(more), why: format!("host CPU: {idle:.1} cores idle, {each} per worker: {more} more fit") })
        }
        _ => None,
    };
    memory.into_iter().chain(cpu).min_by_key(|h| h.at_most)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::MemberState;

    fn member(rss_mib: u64) -> Member {
        Member { memory_bytes: Some(rss_mib * 1024 * 1024), ..Member::new("m", MemberState::Active, 0) }
    }

    #[test]
    fn memory_from_the_largest_worker_or_the_config() {
        let gib = 1024 * 1024 * 1024;
        let members = [member(100), member(300)];
        // 2 GiB available − 512 MiB reserve = 1536 MiB / 300 MiB = 5 more.
        let h = fit(&Needs::default(), Some(2 * gib), None, &members, 2).unwrap();
        assert_eq!(h.at_most, 7);
        assert!(h.why.contains("300 MiB per worker (largest running worker)"), "{}", h.why);
        let needs = Needs { member_memory_mib: Some(1024), ..Needs::default() };
        assert_eq!(fit(&needs, Some(2 * gib), None, &members, 2).unwrap().at_most, 3);
        // Nothing running and nothing configured: no limit known.
        assert_eq!(fit(&Needs::default(), Some(2 * gib), None, &[], 0), None);
    }

    #[test]
    fn cpu_counts_only_when_configured_and_the_tighter_wins() {
        let needs = Needs { member_memory_mib: Some(100), reserve_memory_mib: 0, member_cpus: Some(0.5) };
        let h = fit(&needs, Some(10 * 1024 * 1024 * 1024), Some(1.6), &[], 4).unwrap();
        assert_eq!(h.at_most, 7);
        assert!(h.why.starts_with("host CPU: 1.6 cores idle"), "{}", h.why);
        assert_eq!(fit(&Needs::default(), None, Some(1.6), &[], 4), None);
    }

    #[test]
    fn reads_mem_available() {
        assert_eq!(available_memory("MemTotal: 10 kB\nMemAvailable:    250 kB\n"), Some(256_000));
        assert_eq!(available_memory("MemTotal: 10 kB\n"), None);
    }
}
