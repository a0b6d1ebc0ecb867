//! Load traces, streamed: one load value per step, whatever the file is like.
//!
//! Real traces are messy, and a simulation must neither choke on them nor
//! quietly invent data. The reader takes `step,load` rows (a header or none,
//! more columns ignored, CRLF or LF), or a single column of loads, one per
//! step. What it had to repair is counted in [`TraceStats`] and reported
//! with the results, never hidden:
//! - a row that is not numbers is skipped (the first few are quoted);
//! - a negative load counts as zero;
//! - a gap in the step column is filled by holding the last load (up to
//!   [`MAX_GAP`] steps; a larger jump is not filled, only counted);
//! - a step that goes backwards or repeats is skipped.
//!
//! It reads line by line and keeps nothing but the last value, so a trace
//! of a billion rows (or an endless pipe, with a step limit) costs no more
//! memory than a short one.

use std::io::BufRead;

use serde::Serialize;

/// The longest gap in the step column that is filled.
pub const MAX_GAP: u64 = 100_000;
/// How many problem lines are quoted.
const QUOTED: usize = 5;

/// What the reader repaired or skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraceStats {
    /// Steps produced (filled ones included).
    pub steps: u64,
    pub header: Option<String>,
    pub skipped_rows: u64,
    pub negative_loads: u64,
    pub filled_steps: u64,
    pub unfilled_gaps: u64,
    pub out_of_order: u64,
    /// The first few problems, with their line numbers.
    pub problems: Vec<String>,
}

impl TraceStats {
    fn note(&mut self, problem: String) {
        if self.problems.len() < QUOTED {
            self.problems.push(problem);
        }
    }

    /// One line saying what was repaired, or `None` for a clean trace.
    pub fn summary(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.skipped_rows, "rows skipped (not numbers)"),
            (self.negative_loads, "negative loads read as 0"),
            (self.filled_steps, "missing steps filled with the previous load"),
            (self.unfilled_gaps, "gaps too long to fill"),
            (self.out_of_order, "rows out of order skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Streams a trace's loads, one per step.
pub struct TraceReader<R> {
    input: R,
    line: String,
    line_no: u64,
    last_step: Option<i64>,
    last_load: f64,
    /// Steps still to fill before the row in `ahead` is served.
    fill: u64,
    ahead: Option<f64>,
    limit: Option<u64>,
    pub stats: TraceStats,
    error: Option<String>,
}

impl<R: BufRead> TraceReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: String::new(),
            line_no: 0,
            last_step: None,
            last_load: 0.0,
            fill: 0,
            ahead: None,
            limit: None,
            stats: TraceStats::default(),
            error: None,
        }
    }

    /// Stop after `steps` steps.
    pub fn limit(mut self, steps: Option<u64>) -> Self {
        self.limit = steps;
        self
    }

    /// An I/O error that ended the trace early, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The next row's (step, load), or `None` at the end of the input.
    fn next_row(&mut self) -> Option<(Option<i64>, f64)> {
        loop {
            self.line.clear();
            match self.input.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.error = Some(format!("line {}: {e}", self.line_no + 1));
                    return None;
                }
            }
            self.line_no += 1;
            let text = self.line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let mut cells = text.split([',', ';', '\t']).map(str::trim);
            let first = cells.next().unwrap_or_default();
            let second = cells.next();
            let parsed = match second {
                Some(load) => match (first.parse::<f64>(), load.parse::<f64>()) {
                    (Ok(step), Ok(load)) if step.is_finite() && load.is_finite() => Some((Some(step as i64), load)),
                    _ => None,
                },
                None => first.parse::<f64>().ok().filter(|v| v.is_finite()).map(|load| (None, load)),
            };
            match parsed {
                Some(row) => return Some(row),
                None if self.line_no == 1 => self.stats.header = Some(text.to_owned()),
                None => {
                    self.stats.skipped_rows += 1;
                    let shown: String = text.chars().take(60).collect();
                    self.stats.note(format!("line {}: not a step and a load: `{shown}`", self.line_no));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        if self.limit.is_some_and(|l| self.stats.steps >= l) {
            return None;
        }
        loop {
            if self.fill > 0 {
                self.fill -= 1;
                self.stats.steps += 1;
                self.stats.filled_steps += 1;
                return Some(self.last_load);
            }
            if let Some(load) = self.ahead.take() {
                self.last_load = load;
                self.stats.steps += 1;
                return Some(load);
            }
            let (step, mut load) = self.next_row()?;
            if load < 0.0 {
                self.stats.negative_loads += 1;
                self.stats.note(format!("line {}: negative load {load} read as 0", self.line_no));
                load = 0.0;
            }
            if let (Some(step), Some(last)) = (step, self.last_step) {
                if step <= last {
                    self.stats.out_of_order += 1;
                    self.stats.note(format!("line {}: step {step} does not follow step {last}; skipped", self.line_no));
                    continue;
                }
                let gap = (step - last - 1) as u64;
                if gap > MAX_GAP {
                    self.stats.unfilled_gaps += 1;
                    self.stats.note(format!("line {}: {gap} steps missing before step {step}; not filled", self.line_no));
                } else {
                    self.fill = gap;
                }
            }
            if step.is_some() {
                self.last_step = step;
            }
            self.ahead = Some(load);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<f64>, TraceStats) {
        let mut r = TraceReader::new(text.as_bytes());
        let loads: Vec<f64> = r.by_ref().collect();
        (loads, r.stats)
    }

    #[test]
    fn reads_with_or_without_header_and_crlf() {
        assert_eq!(read("minute,requests\r\n0,5\r\n1,7\r\n").0, [5.0, 7.0]);
        assert_eq!(read("0,5\n1,7\n").0, [5.0, 7.0]);
        assert_eq!(read("5\n7\n9").0, [5.0, 7.0, 9.0], "one column: a load per step");
        let (loads, stats) = read("step,load\n0,3\n");
        assert_eq!((loads, stats.header.as_deref()), (vec![3.0], Some("step,load")));
    }

    #[test]
    fn repairs_are_counted() {
        let (loads, s) = read("step,load\n0,5\n1,abc\n2,-4\n5,8\n4,1\n6,2\n");
        // The bad row leaves step 1 missing: it holds step 0's load.
        assert_eq!(loads, [5.0, 5.0, 0.0, 0.0, 0.0, 8.0, 2.0]);
        assert_eq!((s.skipped_rows, s.negative_loads, s.filled_steps, s.out_of_order), (1, 1, 3, 1));
        assert!(s.problems[0].contains("line 3"), "{:?}", s.problems);
        assert!(s.summary().unwrap().contains("3 missing steps filled"));
        assert_eq!(read("0,1\n1,2\n").1.summary(), None);
    }

    #[test]
    fn huge_gaps_are_not_filled_and_limits_stop() {
        let (loads, s) = read("0,1\n999999999,2\n");
        assert_eq!((loads, s.unfilled_gaps), (vec![1.0, 2.0], 1));
        let r = TraceReader::new("0,1\n1,2\n2,3\n".as_bytes()).limit(Some(2));
        assert_eq!(r.collect::<Vec<_>>(), [1.0, 2.0]);
        assert_eq!(read("").0, Vec::<f64>::new());
        assert_eq!(read("x,y\nNaN,inf\n").1.skipped_rows, 1);
    }
}
