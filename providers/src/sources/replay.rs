//! A CSV load trace replayed as a live series.
//!
//! The file has a header and rows of `step,load` (more columns are allowed;
//! the query names the column to read, default the second). Row `i` is
//! served at `start + i * step_ms`, so a trace of per-minute rows can be
//! replayed compressed (say one row per second) against a live pool. Past
//! the end the trace starts again.

use std::path::Path;

use async_trait::async_trait;

use crate::sources::{MetricError, MetricSource, Window};
use crate::Sample;

/// The largest trace a replay source reads: 128 MiB, some ten million
/// rows.
pub const MAX_TRACE_BYTES: u64 = 128 << 20;

#[derive(Debug)]
pub struct ReplaySource {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
    start: i64,
    step_ms: i64,
}

impl ReplaySource {
    /// Read the whole trace, up to [`MAX_TRACE_BYTES`], as [`crate::file`]
    /// reads any file a config names. Errors name the file, the line and
    /// the column.
    pub fn open(path: &Path, start: i64, step_ms: i64) -> Result<Self, String> {
        let hint = "a replay source holds its trace in memory (`scalewise simulate` streams longer ones)";
        let text = crate::file::read_text(path, MAX_TRACE_BYTES).map_err(|e| format!("cannot read trace {}", e.at(path, hint)))?;
        Self::parse(&text, start, step_ms).map_err(|e| format!("trace {}: {e}", path.display()))
    }

    pub fn parse(text: &str, start: i64, step_ms: i64) -> Result<Self, String> {
        if step_ms <= 0 {
            return Err("step must be positive".into());
        }
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        let (_, header) = lines.next().ok_or("the trace is empty")?;
        let header: Vec<String> = header.split(',').map(|h| h.trim().to_owned()).collect();
        if header.len() < 2 {
            return Err("the header needs at least two columns (step,load)".into());
        }
        let mut rows = Vec::new();
        for (n, line) in lines {
            let cells: Result<Vec<f64>, String> = line
                .split(',')
                .enumerate()
                .map(|(c, v)| {
                    let x: f64 = v.trim().parse().map_err(|_| format!("line {}: column `{}` is not a number: `{}`", n + 1, header.get(c).map_or("?", |h| h.as_str()), v.trim()))?;
                    if x.is_finite() { Ok(x) } else { Err(format!("line {}: non-finite value", n + 1)) }
                })
                .collect();
            let cells = cells?;
            if cells.len() != header.len() {
                return Err(format!("line {}: {} columns, the header has {}", n + 1, cells.len(), header.len()));
            }
            rows.push(cells);
        }
        if rows.is_empty() {
            return Err("the trace has a header but no rows".into());
        }
        Ok(Self { header, rows, start, step_ms })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn column(&self, query: &str) -> Result<usize, MetricError> {
        if query.is_empty() {
            return Ok(1);
        }
        self.header.iter().position(|h| h == query).ok_or_else(|| MetricError::Unknown {
            source_kind: "replay",
            query: query.into(),
            hint: format!("; the trace has columns {}", self.header.join(", ")),
        })
    }

    /// The value of `column` at time `at` (the row in force then).
    pub fn value_at(&self, column: usize, at: i64) -> f64 {
        let i = ((at - self.start).max(0) / self.step_ms) as usize % self.rows.len();
        self.rows[i][column]
    }
}

#[async_trait]
impl MetricSource for ReplaySource {
    fn kind(&self) -> &'static str {
        "replay"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        let column = self.column(query)?;
        let step = self.step_ms;
        let first = window.start().max(self.start);
        // Align to the row boundaries so each row appears once.
        let mut at = self.start + ((first - self.start) + step - 1) / step * step;
        let mut out = Vec::new();
        while at <= window.end && out.len() < 100_000 {
            out.push(Sample { at, value: self.value_at(column, at) });
            at += step;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_that_is_not_a_regular_file_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("trace.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = ReplaySource::open(&fifo, 0, 1000).unwrap_err();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        let e = ReplaySource::open(Path::new("/dev/zero"), 0, 1000).unwrap_err();
        assert!(e.contains("a character device"), "{e}");
        let file = dir.path().join("t.csv");
        std::fs::write(&file, "step,load\n0,1\n").unwrap();
        assert!(ReplaySource::open(&file, 0, 1000).is_ok());
    }

    #[tokio::test]
    async fn replays_rows_at_their_times_and_wraps() {
        let r = ReplaySource::parse("step,load\n0,10\n1,20\n2,30\n", 1000, 100).unwrap();
        let got = r.query("load", Window { end: 1250, length_ms: 300, step_ms: 100 }).await.unwrap();
        assert_eq!(got.iter().map(|s| s.value).collect::<Vec<_>>(), [10.0, 20.0, 30.0]);
        assert_eq!(r.value_at(1, 1300), 10.0, "wraps past the end");
    }

    #[test]
    fn bad_traces_name_the_line() {
        assert!(ReplaySource::parse("", 0, 1).unwrap_err().contains("empty"));
        assert!(ReplaySource::parse("step,load\n0,x\n", 0, 1).unwrap_err().contains("line 2: column `load`"));
        assert!(ReplaySource::parse("step,load\n0,1,2\n", 0, 1).unwrap_err().contains("3 columns"));
        assert!(ReplaySource::parse("step,load\n", 0, 1).unwrap_err().contains("no rows"));
    }
}
