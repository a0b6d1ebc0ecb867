//! One worker process: launching it, knowing it is still the same process,
//! signalling it, and reading its CPU and memory from /proc.
//!
//! A pid alone does not identify a process across a host restart (pids are
//! reused), so each worker's pidfile also records the process' start time
//! from /proc/<pid>/stat; a pid is adopted only if both match.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Fields of /proc/<pid>/stat that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One-letter state: R, S, D, Z, T...
    pub state: char,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks: with the pid, an identity.
    pub start_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parse /proc/<pid>/stat. The command name is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, so f[0]; utime is 14 → f[11].
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

pub fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Is `pid` alive, not a zombie, and the process that started at `start_ticks`?
pub fn is_same_live(pid: u32, start_ticks: u64) -> bool {
    read_stat(pid).is_some_and(|s| s.start_ticks == start_ticks && s.state != 'Z' && s.state != 'X')
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; a stale pid is checked
    // by the caller against its start time first.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The files a worker and the pool share, in the pool's run directory.
pub struct Files {
    pub pid: PathBuf,
    pub status: PathBuf,
    pub drain: PathBuf,
}

impl Files {
    pub fn new(run_dir: &Path, id: &str) -> Self {
        Self {
            pid: run_dir.join(format!("{id}.pid")),
            status: run_dir.join(format!("{id}.status")),
            drain: run_dir.join(format!("{id}.drain")),
        }
    }

    pub fn remove_all(&self) {
        for p in [&self.pid, &self.status, &self.drain] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Start a worker in its own process group (a Ctrl-C at the host's terminal
/// is the host's to handle, not the workers'), tell it where its files are,
/// and write its pidfile.
pub fn launch(command: &[String], env: &[(String, String)], id: &str, files: &Files) -> Result<(Child, u64), String> {
    use std::os::unix::process::CommandExt;
    let (program, args) = command.split_first().ok_or("the worker command is empty")?;
    let _ = std::fs::remove_file(&files.drain);
    let _ = std::fs::remove_file(&files.status);
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SCALEWISE_MEMBER_ID", id)
        .env("SCALEWISE_STATUS_FILE", &files.status)
        .env("SCALEWISE_DRAIN_FILE", &files.drain)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("`{program}`: {e}"))?;
    let start = read_stat(child.id()).map_or(0, |s| s.start_ticks);
    std::fs::write(&files.pid, format!("{} {start}\n", child.id()))
        .map_err(|e| format!("cannot write pidfile {}: {e}", files.pid.display()))?;
    Ok((child, start))
}

/// Read a pidfile: `pid start_ticks`.
pub fn read_pidfile(path: &Path) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// What a worker last wrote to its status file, if anything.
pub fn read_status(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().last()?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_name() {
        let line = "1234 (my (odd) worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 25 17 0 0 20 0 1 0 5555 1000000 321 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { state: 'S', cpu_ticks: 42, start_ticks: 5555, rss_pages: 321 });
    }

    #[test]
    fn own_process_is_same_live() {
        let me = std::process::id();
        let s = read_stat(me).unwrap();
        assert!(is_same_live(me, s.start_ticks));
        assert!(!is_same_live(me, s.start_ticks + 1));
    }
}
