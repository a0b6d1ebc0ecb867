//! One worker process: launching it, knowing it is still the same process,
//! signalling it, and reading its CPU and memory from /proc.
//!
//! A pid alone does not identify a process across a host restart (pids are
//! reused), so each worker's pidfile also records the process' start time
//! from /proc/<pid>/stat; a pid is adopted only if both match.
//!
//! There must be no moment when a worker runs unrecorded, or a host killed
//! at that moment leaves a worker nobody manages. So the pidfile is written
//! by the forked child itself, *before* it executes the worker command
//! (with raw system calls only: nothing else is safe between fork and
//! exec). It holds the pid alone until the host adds the start time. A
//! pidfile with a pid alone is trusted only if that process is the worker:
//! a process-group leader whose environment names this member and this
//! pool's status file ([`is_member`]). The same check finds workers whose
//! pidfile is gone ([`find_members`]).

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
/// and write its pidfile: first from the child, before the command runs,
/// then again with its start time.
pub fn launch(command: &[String], env: &[(String, String)], id: &str, files: &Files) -> Result<(Child, u64), String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let (program, args) = command.split_first().ok_or("the worker command is empty")?;
    let _ = std::fs::remove_file(&files.drain);
    let _ = std::fs::remove_file(&files.status);
    let pidfile = std::ffi::CString::new(files.pid.as_os_str().as_bytes()).map_err(|_| "the run directory's path holds a NUL byte")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SCALEWISE_MEMBER_ID", id)
        .env("SCALEWISE_STATUS_FILE", &files.status)
        .env("SCALEWISE_DRAIN_FILE", &files.drain)
        .stdin(Stdio::null())
        .process_group(0);
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // system calls (getpid, open, write, close) and does not allocate.
    unsafe {
        command.pre_exec(move || write_own_pid(&pidfile));
    }
    let child = command.spawn().map_err(|e| format!("`{program}`: {e}"))?;
    let start = read_stat(child.id()).map_or(0, |s| s.start_ticks);
    std::fs::write(&files.pid, format!("{} {start}\n", child.id()))
        .map_err(|e| format!("cannot write pidfile {}: {e}", files.pid.display()))?;
    Ok((child, start))
}

/// In the forked child: write its own pid to the pidfile, or fail the
/// spawn (a worker that cannot be recorded must not run).
fn write_own_pid(path: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: async-signal-safe calls on a valid C string and a stack buffer.
    unsafe {
        let mut buf = [0u8; 24];
        let mut n = libc::getpid() as u64;
        let mut i = buf.len() - 1;
        buf[i] = b'\n';
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o644);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let len = buf.len() - i;
        let written = libc::write(fd, buf[i..].as_ptr().cast(), len);
        libc::close(fd);
        if written != len as isize {
            return Err(std::io::Error::other("cannot write the pidfile"));
        }
    }
    Ok(())
}

/// Read a pidfile: `pid start_ticks`, or `pid` alone when the host that
/// launched the worker stopped before it could add the start time.
pub fn read_pidfile(path: &Path) -> Option<(u32, Option<u64>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    let pid = it.next()?.parse().ok()?;
    Some((pid, it.next().and_then(|s| s.parse().ok())))
}

/// Is `pid` this pool's worker `id`: alive, the leader of its own process
/// group (as every worker is launched), with the environment it was
/// launched with? Children a worker started share its environment but not
/// its pid as their group.
pub fn is_member(pid: u32, id: &str, files: &Files) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return false };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let leader = f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pid);
    let alive = f.first().is_some_and(|s| *s != "Z" && *s != "X");
    if !(leader && alive) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let want_id = format!("SCALEWISE_MEMBER_ID={id}");
    let want_status = format!("SCALEWISE_STATUS_FILE={}", files.status.display());
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    vars.contains(&want_id.as_bytes()) && vars.contains(&want_status.as_bytes())
}

/// Every live worker of the pool whose files are in `run_dir`, found by
/// its environment in /proc: (member id, pid).
pub fn find_members(run_dir: &Path) -> Vec<(String, u32)> {
    let prefix = format!("SCALEWISE_STATUS_FILE={}/", run_dir.display());
    let Ok(proc) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in proc.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if !vars.iter().any(|v| v.starts_with(prefix.as_bytes())) {
            continue;
        }
        let Some(id) = vars.iter().find_map(|v| v.strip_prefix(b"SCALEWISE_MEMBER_ID=")).and_then(|v| std::str::from_utf8(v).ok()) else { continue };
        if is_member(pid, id, &Files::new(run_dir, id)) {
            found.push((id.to_owned(), pid));
        }
    }
    found
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
    fn the_child_writes_its_pidfile_before_the_command_runs() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path(), "w-7");
        // The command reads its own pidfile: it exists when the command starts.
        let command: Vec<String> = ["sh", "-c", "cat \"$0\"; sleep 5", files.pid.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
        let (mut child, start) = launch(&command, &[], "w-7", &files).unwrap();
        let pid = child.id();
        assert!(is_member(pid, "w-7", &files), "found by its environment");
        assert!(!is_member(pid, "w-8", &files), "not another member");
        assert!(find_members(dir.path()).contains(&("w-7".to_string(), pid)));
        assert_eq!(read_pidfile(&files.pid), Some((pid, Some(start))));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_member(pid, "w-7", &files), "gone");
    }

    #[test]
    fn a_pidfile_that_cannot_be_written_stops_the_launch() {
        let files = Files::new(Path::new("/proc/no-such-dir"), "w-1");
        let err = launch(&["true".to_string()], &[], "w-1", &files).unwrap_err();
        assert!(err.contains("true"), "{err}");
    }

    #[test]
    fn own_process_is_same_live() {
        let me = std::process::id();
        let s = read_stat(me).unwrap();
        assert!(is_same_live(me, s.start_ticks));
        assert!(!is_same_live(me, s.start_ticks + 1));
    }
}
