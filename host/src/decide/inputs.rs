//! What a decision's policies were given, kept in its record, compactly,
//! so that `scalewise simulate --from-journal` can take the same decision
//! again and a candidate set can be tried on what really happened.
//!
//! Why in the record and why as changes: a record already says what the
//! metrics read (a count and the newest value), which explains a decision
//! but cannot repeat it; the policies saw whole windows. A pool's windows
//! slide: from one tick to the next a window loses a few of its oldest
//! samples and gains a few new ones. So a record keeps, for each metric,
//! how many samples fell off the front of the same metric's window in the
//! previous recorded decision (`base`) and the samples that are new. Every
//! [`WHOLE_EVERY`]th decision, the first after a start, and any window that
//! is not a slide of the one before (a Prometheus series whose past was
//! revised) are kept whole, so a journal cut by retention still replays
//! from its next whole record. A minute-long window of one sample a second
//! costs about 40 bytes a tick this way instead of about 2 KB.
//!
//! What else a decision depends on is in the journal already: the pool's
//! memory after each frame, and the policy states whenever they changed.
//! What the loop changes between the previous frame and the decision (an
//! action it found settled, a leader's change it observed on standby) is
//! kept here as `began_with`, only when there is such a change. The target's
//! headroom is kept as it was read.
//!
//! Values are kept exactly: serde_json writes the shortest text that reads
//! back as the same `f64`, and reads it back correctly rounded (its
//! `float_roundtrip` feature; without it, over a quarter of random values came back
//! a bit off and the decision's fingerprint differed). A value that is not
//! finite is written as a string (JSON has no NaN).

use serde::{Deserialize, Serialize};

use scalewise_sdk::MetricWindow;

use super::feasibility::Headroom;
use super::memory::PoolMemory;

/// A whole window at least this often (in a pool's policy decisions).
pub const WHOLE_EVERY: u32 = 64;

/// What a decision's policies were given, as kept in its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedInputs {
    /// The decision whose windows these are changes of (absent: every
    /// window is whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
    /// The metric windows, in the order the strategies got them.
    pub windows: Vec<WindowChange>,
    /// What the target said it could hold, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub headroom: Option<Headroom>,
    /// The pool's memory (without policy states) as the decision began,
    /// where the loop changed it after the previous journal frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub began_with: Option<PoolMemory>,
}

/// One metric window: whole, or as a change of the base decision's window
/// of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WindowChange {
    pub name: String,
    /// Samples dropped from the front of the base window; absent when the
    /// window is whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<u32>,
    /// The new samples' times (ms) and values.
    pub t: Vec<i64>,
    #[serde(with = "exact")]
    #[schema(value_type = Vec<f64>)]
    pub v: Vec<f64>,
}

/// The pool loop's side: remembers the windows of the last recorded decision.
#[derive(Debug, Default)]
pub struct InputRecorder {
    last: Option<(u64, Vec<MetricWindow>)>,
    since_whole: u32,
}

impl InputRecorder {
    /// The inputs of decision `seq`.
    pub fn record(&mut self, seq: u64, windows: &[MetricWindow], headroom: Option<Headroom>, began_with: Option<PoolMemory>) -> RecordedInputs {
        let base = self.last.take().filter(|_| self.since_whole + 1 < WHOLE_EVERY);
        let mut changes = Vec::with_capacity(windows.len());
        let mut any_change = false;
        for w in windows {
            let slid = base.as_ref().and_then(|(_, ws)| ws.iter().find(|b| b.name == w.name)).and_then(|b| slide(b, w));
            changes.push(match slid {
                Some((drop, kept)) => {
                    any_change = true;
                    WindowChange { name: w.name.clone(), drop: Some(drop as u32), t: w.times()[kept..].to_vec(), v: w.values()[kept..].to_vec() }
                }
                None => WindowChange { name: w.name.clone(), drop: None, t: w.times().to_vec(), v: w.values().to_vec() },
            });
        }
        let base_seq = base.filter(|_| any_change).map(|(s, _)| s);
        self.since_whole = if base_seq.is_some() { self.since_whole + 1 } else { 0 };
        self.last = Some((seq, windows.to_vec()));
        RecordedInputs { base: base_seq, windows: changes, headroom, began_with }
    }

    /// The last record did not reach the journal: the next keeps its windows whole.
    pub fn forget(&mut self) {
        self.last = None;
    }
}

/// If `cur` is `base` with `drop` samples gone from the front and new ones
/// at the back: `(drop, samples of cur that base had)`.
fn slide(base: &MetricWindow, cur: &MetricWindow) -> Option<(usize, usize)> {
    let (bt, bv, ct, cv) = (base.times(), base.values(), cur.times(), cur.values());
    let drop = match ct.first() {
        Some(first) => bt.partition_point(|t| t < first),
        None => bt.len(),
    };
    let kept = bt.len() - drop;
    let same = kept <= ct.len() && bt[drop..] == ct[..kept] && bv[drop..].iter().zip(&cv[..kept]).all(|(a, b)| a.to_bits() == b.to_bits());
    same.then_some((drop, kept))
}

/// The reading side: rebuilds each decision's windows from the one before.
#[derive(Debug, Default)]
pub struct InputReader {
    last: Option<(u64, Vec<MetricWindow>)>,
}

impl InputReader {
    /// The windows of decision `seq`, which recorded `inputs`. Fails when
    /// they are changes of a decision this reader has not seen (retention
    /// dropped it, or its write failed); a whole record resets that.
    pub fn windows(&mut self, seq: u64, inputs: &RecordedInputs) -> Result<Vec<MetricWindow>, String> {
        let base = match (inputs.base, &self.last) {
            (None, _) => None,
            (Some(b), Some((s, ws))) if *s == b => Some(ws),
            (Some(b), _) => {
                self.last = None;
                return Err(format!("its metric windows are changes of decision {b}, which was not read before it (dropped by retention, or never written); replay resumes at the next whole record"));
            }
        };
        let mut out = Vec::with_capacity(inputs.windows.len());
        for c in &inputs.windows {
            if c.t.len() != c.v.len() {
                return Err(format!("metric `{}`: {} times but {} values", c.name, c.t.len(), c.v.len()));
            }
            let (mut times, mut values) = match c.drop {
                None => (Vec::new(), Vec::new()),
                Some(drop) => {
                    let b = base.and_then(|ws| ws.iter().find(|w| w.name == c.name)).ok_or_else(|| format!("metric `{}` is a change of a window its base decision did not have", c.name))?;
                    let drop = (drop as usize).min(b.times().len());
                    (b.times()[drop..].to_vec(), b.values()[drop..].to_vec())
                }
            };
            times.extend_from_slice(&c.t);
            values.extend_from_slice(&c.v);
            out.push(MetricWindow::from_columns(c.name.clone(), times, values));
        }
        self.last = Some((seq, out.clone()));
        Ok(out)
    }
}

/// `f64`s as JSON numbers, and the few that are not finite as strings.
mod exact {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|&v| if v.is_finite() { Value::Number(v) } else { Value::Text(v.to_string()) }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Value>::deserialize(d)?
            .into_iter()
            .map(|v| match v {
                Value::Number(n) => Ok(n),
                Value::Text(t) => t.parse::<f64>().map_err(|_| serde::de::Error::custom(format!("`{t}` is not a number"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::Sample;

    fn window(name: &str, from: i64, to: i64) -> MetricWindow {
        MetricWindow::new(name, (from..to).map(|t| Sample { at: t * 1000, value: (t as f64).sin() * 7.3 + 1.0 / 3.0 }).collect())
    }

    fn round_trip(r: &RecordedInputs) -> RecordedInputs {
        serde_json::from_slice(&serde_json::to_vec(r).unwrap()).unwrap()
    }

    #[test]
    fn sliding_windows_are_kept_as_changes_and_read_back_exactly() {
        let mut rec = InputRecorder::default();
        let mut read = InputReader::default();
        let mut whole = 0;
        for tick in 0..200i64 {
            let ws = vec![window("load", tick, tick + 60), window("queue", tick / 2, tick + 30)];
            let r = round_trip(&rec.record(tick as u64 + 1, &ws, None, None));
            if r.base.is_none() {
                whole += 1;
            } else {
                // A slide by one keeps one new sample a window, not sixty.
                assert!(r.windows.iter().all(|w| w.t.len() <= 1), "tick {tick}: {:?}", r.windows);
            }
            assert_eq!(read.windows(tick as u64 + 1, &r).unwrap(), ws, "tick {tick}");
        }
        // The first, then every WHOLE_EVERY-th.
        assert_eq!(whole, 200u32.div_ceil(WHOLE_EVERY));
    }

    #[test]
    fn every_value_reads_back_to_the_same_bits() {
        // Values of every magnitude and many mantissas: a parser that is not
        // correctly rounded gets some of these wrong by one unit.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let values: Vec<f64> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = f64::from_bits(x);
                if v.is_finite() { v } else { (x >> 11) as f64 / (1u64 << 53) as f64 * 1e3 }
            })
            .collect();
        let w = MetricWindow::from_columns("x", (0..values.len() as i64).collect(), values.clone());
        let r = round_trip(&InputRecorder::default().record(1, &[w], None, None));
        let back = InputReader::default().windows(1, &r).unwrap();
        let wrong = back[0].values().iter().zip(&values).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(wrong, 0, "{wrong} of {} values changed on the way through JSON", values.len());
    }

    #[test]
    fn a_revised_past_a_new_metric_and_odd_values_are_kept_whole() {
        let mut rec = InputRecorder::default();
        let mut read = InputReader::default();
        let first = vec![window("load", 0, 10)];
        read.windows(1, &round_trip(&rec.record(1, &first, None, None))).unwrap();
        // A revised sample in the middle: no slide.
        let mut revised = window("load", 1, 11);
        let (t, mut v) = (revised.times().to_vec(), revised.values().to_vec());
        v[3] = f64::NAN;
        v[4] = f64::INFINITY;
        revised = MetricWindow::from_columns("load", t, v);
        let second = vec![revised.clone(), window("new", 0, 3)];
        let r = round_trip(&rec.record(2, &second, None, None));
        assert!(r.windows.iter().all(|w| w.drop.is_none()));
        let back = read.windows(2, &r).unwrap();
        assert_eq!(back[0].times(), revised.times());
        assert!(back[0].values()[3].is_nan() && back[0].values()[4] == f64::INFINITY);
    }

    #[test]
    fn a_change_of_a_decision_the_reader_never_saw_is_refused_until_a_whole_one() {
        let mut rec = InputRecorder::default();
        let _lost = rec.record(1, &[window("load", 0, 10)], None, None);
        let second = rec.record(2, &[window("load", 1, 11)], None, None);
        assert_eq!(second.base, Some(1));
        let mut read = InputReader::default();
        let err = read.windows(2, &second).unwrap_err();
        assert!(err.contains("decision 1"), "{err}");
        // After a failed write the recorder starts again from a whole window.
        rec.forget();
        let third = rec.record(3, &[window("load", 2, 12)], None, None);
        assert_eq!(third.base, None);
        assert_eq!(read.windows(3, &third).unwrap(), vec![window("load", 2, 12)]);
    }
}
