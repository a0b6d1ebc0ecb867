//! `scalewise journal`: stats, tail and export of the decision journal.
//!
//! The journal is a redb file that one process at a time may open. When no
//! host runs, these commands open the file (to read only: nothing is
//! compacted). When a host holds it, they read through that host's API
//! (`GET /journal`, `GET /pools/ID/decisions`), at `--url` or the config's
//! `server.listen`, which is also the only way to *follow* new decisions.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{JournalAt, JournalCommand};
use crate::config::Config;
use crate::decide::record::DecisionRecord;
use crate::journal::{Journal, JournalError, JournalStats};

/// Where the decisions are read from.
enum Source {
    File(Journal),
    Api { base: String, client: reqwest::blocking::Client },
}

/// The most one API call asks for.
const PAGE: usize = 1000;

impl Source {
    fn open(at: &JournalAt) -> anyhow::Result<Source> {
        let config = match &at.config {
            Some(path) => Some(Config::load(path)?),
            None => None,
        };
        let api = |base: String| -> anyhow::Result<Source> {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
            Ok(Source::Api { base: base.trim_end_matches('/').to_owned(), client })
        };
        if let Some(url) = &at.url {
            return api(url.clone());
        }
        let path = at.journal.clone().or_else(|| config.as_ref().map(|c| c.journal.path.clone())).unwrap_or_else(|| ".scalewise/journal.redb".into());
        match Journal::open_to_read(&path) {
            Ok(j) => Ok(Source::File(j)),
            Err(JournalError::Open { detail, .. }) if detail.contains("another process") => {
                let listen = config.map(|c| c.server.listen).unwrap_or_else(|| crate::config::Config::default().server.listen);
                eprintln!("a running host holds {}; reading through its API at http://{listen}", path.display());
                api(format!("http://{listen}"))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(client: &reqwest::blocking::Client, url: &str) -> anyhow::Result<T> {
        let r = client.get(url).send().with_context(|| format!("asking {url}"))?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().unwrap_or_default();
            bail!("{url}: {status}: {body}");
        }
        r.json().with_context(|| format!("reading the answer of {url}"))
    }

    fn stats(&self) -> anyhow::Result<JournalStats> {
        match self {
            Source::File(j) => Ok(j.stats()?),
            Source::Api { base, client } => Self::get(client, &format!("{base}/journal")),
        }
    }

    /// Decisions of `pool`, newest first, with `seq < before`.
    fn page(&self, pool: &str, before: Option<u64>, limit: usize) -> anyhow::Result<Vec<DecisionRecord>> {
        match self {
            Source::File(j) => Ok(j.decisions(pool, before, limit)?),
            Source::Api { base, client } => {
                let mut url = format!("{base}/pools/{pool}/decisions?limit={}", limit.min(PAGE));
                if let Some(b) = before {
                    url.push_str(&format!("&before={b}"));
                }
                Self::get(client, &url)
            }
        }
    }

    /// Decisions of `pool` made at `since` or later, oldest first.
    fn since(&self, pool: &str, since: i64, until: i64) -> anyhow::Result<Vec<DecisionRecord>> {
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self.page(pool, before, PAGE)?;
            let Some(last) = page.last() else { break };
            let (last_seq, last_at) = (last.seq, last.at);
            out.extend(page.into_iter().filter(|d| d.at >= since && d.at <= until));
            if last_at < since || last_seq <= 1 {
                break;
            }
            before = Some(last_seq);
        }
        out.reverse();
        Ok(out)
    }

    fn pools(&self, only: &[String]) -> anyhow::Result<Vec<String>> {
        if !only.is_empty() {
            return Ok(only.to_vec());
        }
        Ok(self.stats()?.pools.into_iter().map(|p| p.pool).collect())
    }
}

pub fn run(at: JournalAt, command: JournalCommand) -> anyhow::Result<ExitCode> {
    let source = Source::open(&at)?;
    match command {
        JournalCommand::Stats { json } => stats(&source, json),
        JournalCommand::Export { pool, since, until, out } => {
            let now = now_ms();
            let since = since.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MIN);
            let until = until.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MAX);
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut n = 0;
            for p in source.pools(&pool)? {
                for d in source.since(&p, since, until)? {
                    serde_json::to_writer(&mut sink, &d)?;
                    sink.write_all(b"\n")?;
                    n += 1;
                }
            }
            sink.flush()?;
            if let Some(path) = out {
                eprintln!("{n} decisions written to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Tail { pool, lines, max, interval_ms, json } => tail(&source, &pool, lines, max, Duration::from_millis(interval_ms.max(50)), json),
    }
}

fn stats(source: &Source, json: bool) -> anyhow::Result<ExitCode> {
    let s = source.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("journal   {}", s.path);
    println!("file      {} ({} counted for retention)", bytes(s.file_bytes), bytes(s.counted_bytes));
    match (s.max_bytes, s.max_age_secs) {
        (Some(b), Some(a)) => println!("retention {} or {}", bytes(b), age(a)),
        _ => println!("retention that of the host which writes it (read offline)"),
    }
    println!("{:<24} {:>10} {:<24} {:>10} {:<24}", "pool", "oldest", "at", "newest", "at");
    for p in &s.pools {
        let seq = |s: Option<u64>| s.map_or("-".into(), |s| s.to_string());
        let at = |a: Option<i64>| a.map_or("-".into(), utc);
        println!("{:<24} {:>10} {:<24} {:>10} {:<24}", p.pool, seq(p.oldest_seq), at(p.oldest_at), seq(p.newest_seq), at(p.newest_at));
    }
    Ok(ExitCode::SUCCESS)
}

fn tail(source: &Source, only: &[String], lines: usize, max: Option<usize>, interval: Duration, json: bool) -> anyhow::Result<ExitCode> {
    let pools = source.pools(only)?;
    let mut newest: Vec<(String, u64)> = Vec::new();
    let mut first: Vec<DecisionRecord> = Vec::new();
    for p in &pools {
        let page = source.page(p, None, lines.max(1))?;
        newest.push((p.clone(), page.first().map_or(0, |d| d.seq)));
        first.extend(page);
    }
    first.sort_by_key(|d| d.at);
    let skip = first.len().saturating_sub(lines);
    for d in &first[skip..] {
        print_decision(d, json)?;
    }
    if matches!(source, Source::File(_)) {
        eprintln!("(read from the file: no host holds it, so no new decisions will come)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut printed = 0;
    loop {
        if max.is_some_and(|m| printed >= m) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(interval);
        let mut fresh = Vec::new();
        for (pool, seen) in &mut newest {
            let mut page = source.page(pool, None, 100)?;
            page.retain(|d| d.seq > *seen);
            if let Some(d) = page.first() {
                *seen = d.seq;
            }
            fresh.extend(page);
        }
        fresh.sort_by_key(|d| (d.at, d.seq));
        for d in fresh.iter().take(max.map_or(usize::MAX, |m| m - printed)) {
            print_decision(d, json)?;
            printed += 1;
        }
    }
}

fn print_decision(d: &DecisionRecord, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, d)?;
        writeln!(out)?;
    } else {
        let action = match &d.action {
            Some(a) => format!("{} -> {} ({})", a.from, a.to, a.reason),
            None => format!("hold at {}", d.running + d.booting),
        };
        let clamps = if d.clamps.is_empty() { String::new() } else { format!(" [{}]", d.clamps.iter().map(|c| c.guardrail.as_str()).collect::<Vec<_>>().join(", ")) };
        writeln!(out, "{} {} #{} {:?} proposed {} desired {}: {action}{clamps}", utc(d.at), d.pool, d.seq, d.mode, d.proposed, d.desired)?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Unix milliseconds, or an age (`90s`, `30m`, `6h`, `7d`) before `now`.
pub(super) fn parse_time(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("`{text}` is not a time: give Unix milliseconds, or an age like 90s, 30m, 6h or 7d"),
    };
    let n: i64 = n.parse().map_err(|_| anyhow::anyhow!("`{text}` is not a time: give Unix milliseconds, or an age like 90s, 30m, 6h or 7d"))?;
    Ok(now - n * scale)
}

/// RFC 3339 in UTC, from Unix milliseconds.
fn utc(ms: i64) -> String {
    crate::decide::budget::rfc3339(ms)
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn age(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_ages() {
        assert_eq!(parse_time("1700000000000", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("30m", 10_000_000).unwrap(), 10_000_000 - 1_800_000);
        assert_eq!(parse_time("7d", 1_000_000_000).unwrap(), 1_000_000_000 - 604_800_000);
        let err = parse_time("yesterday", 0).unwrap_err().to_string();
        assert!(err.contains("`yesterday` is not a time"), "{err}");
        assert!(parse_time("5w", 0).is_err());
    }

    #[test]
    fn utc_prints_calendar_time() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_796_044_683_237), "2026-11-30T13:18:03.237Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
