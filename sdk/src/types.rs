//! The contract's nouns as plain Rust values.
//!
//! These mirror `wit/types.wit` field for field. They exist natively so that
//! a policy's logic, its unit tests and its benchmarks never touch generated
//! bindings, and so that the host can use the very same types for the JSON it
//! reads and writes. The wasm glue in [`crate::export`] converts between these
//! and the bindings that `wit-bindgen` generates.

use serde::{Deserialize, Serialize};

/// One timestamped observation (milliseconds since the Unix epoch).
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: i64,
    pub value: f64,
}

/// A named series of samples, oldest first: `times()[i]` is when
/// `values()[i]` was observed.
///
/// Held as two columns, as the contract passes it: a guest takes the host's
/// lists as they land in its memory, and the host lends its columns to the
/// call without copying them. Policies that want records iterate
/// [`samples`](Self::samples). In JSON (policy test inputs, rhai scripts, the
/// push API) a window is still `{"name": ..., "samples": [{"at", "value"}]}`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(from = "WindowJson")]
pub struct MetricWindow {
    pub name: String,
    times: Vec<i64>,
    values: Vec<f64>,
}

impl MetricWindow {
    pub fn new(name: impl Into<String>, samples: Vec<Sample>) -> Self {
        let times = samples.iter().map(|s| s.at).collect();
        let values = samples.iter().map(|s| s.value).collect();
        Self { name: name.into(), times, values }
    }

    /// A window from its two columns. Should their lengths differ, the
    /// longer is cut to the shorter: a time without a value is no sample.
    pub fn from_columns(name: impl Into<String>, mut times: Vec<i64>, mut values: Vec<f64>) -> Self {
        let n = times.len().min(values.len());
        times.truncate(n);
        values.truncate(n);
        Self { name: name.into(), times, values }
    }

    /// When each sample was taken, oldest first.
    pub fn times(&self) -> &[i64] {
        &self.times
    }

    /// The values alone, oldest first.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The samples as records, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = Sample> + DoubleEndedIterator + Clone + '_ {
        self.times.iter().zip(&self.values).map(|(&at, &value)| Sample { at, value })
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Add a sample at the end (the newest).
    pub fn push(&mut self, sample: Sample) {
        self.times.push(sample.at);
        self.values.push(sample.value);
    }

    /// The newest sample's value.
    pub fn last(&self) -> Option<f64> {
        self.values.last().copied()
    }

    /// The samples no older than `window_ms` before `now`.
    pub fn since(&self, now: i64, window_ms: i64) -> impl Iterator<Item = Sample> + Clone + '_ {
        self.samples().filter(move |s| s.at >= now - window_ms)
    }
}

// A window as JSON spells it; with `schema`, its doc comment below is the
// API's description of a window.
/// A named series of samples, oldest first.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
struct WindowJson {
    name: String,
    #[serde(default)]
    samples: Vec<Sample>,
}

/// A window is two columns inside and `{"name", "samples"}` in JSON, so its
/// schema is the JSON form's, not one derived from its fields.
#[cfg(feature = "schema")]
impl utoipa::PartialSchema for MetricWindow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <WindowJson as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "schema")]
impl utoipa::ToSchema for MetricWindow {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <WindowJson as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A policy's settings in an input: JSON text, as the host passes them to
/// a policy, or (where the host reads an input a person wrote: `policy
/// test`, `POST /policies/ID/evaluate`) the JSON object itself.
#[cfg(feature = "schema")]
fn settings_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).description(Some("the settings as JSON text")))
        .item(ObjectBuilder::new().schema_type(Type::Object).description(Some("the settings as a JSON object")))
        .description(Some("The policy's settings (default: `{}`)."))
        .into()
}

impl From<WindowJson> for MetricWindow {
    fn from(w: WindowJson) -> Self {
        Self::new(w.name, w.samples)
    }
}

impl Serialize for MetricWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        struct Samples<'a>(&'a MetricWindow);
        impl Serialize for Samples<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for sample in self.0.samples() {
                    seq.serialize_element(&sample)?;
                }
                seq.end()
            }
        }
        let mut window = serializer.serialize_struct("MetricWindow", 2)?;
        window.serialize_field("name", &self.name)?;
        window.serialize_field("samples", &Samples(self))?;
        window.end()
    }
}

/// The pool being scaled, as the provider reports it.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pool {
    pub id: String,
    /// Members that are up and serving.
    pub running: u32,
    /// Members launched but not yet serving.
    #[serde(default)]
    pub booting: u32,
    pub min: u32,
    pub max: u32,
}

impl Pool {
    /// Running plus booting: what the pool will have once every launch lands.
    pub fn capacity(&self) -> u32 {
        self.running.saturating_add(self.booting)
    }

    /// `desired` limited to `[min, max]`; NaN becomes the current capacity.
    pub fn clamp(&self, desired: f64) -> f64 {
        if desired.is_nan() {
            return self.capacity() as f64;
        }
        desired.clamp(self.min as f64, self.max.max(self.min) as f64)
    }
}

/// A scaling action the host took recently.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub at: i64,
    pub from: u32,
    pub to: u32,
    #[serde(default)]
    pub reason: String,
}

/// What an expert wants: a capacity, how sure it is, and why.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub desired: f64,
    pub confidence: f64,
    pub reason: String,
}

impl Proposal {
    pub fn new(desired: f64, confidence: f64, reason: impl Into<String>) -> Self {
        Self { desired, confidence, reason: reason.into() }
    }

    /// Keep the current capacity.
    pub fn hold(pool: &Pool, confidence: f64, reason: impl Into<String>) -> Self {
        Self::new(pool.capacity() as f64, confidence, reason)
    }
}

/// An expert's ballot: a proposal, or an abstention with its cause.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ballot {
    Proposed(Proposal),
    Abstained(String),
}

/// One expert's vote as consensus sees it.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub expert: String,
    pub weight: f64,
    pub ballot: Ballot,
}

impl Vote {
    /// The proposal, unless the expert abstained.
    pub fn proposal(&self) -> Option<&Proposal> {
        match &self.ballot {
            Ballot::Proposed(p) => Some(p),
            Ballot::Abstained(_) => None,
        }
    }
}

/// An instance kind with its prices per instance-hour and its size.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceKind {
    pub name: String,
    /// Who sells it (`aws`, `gcp`, ...); empty when the catalog does not say.
    #[serde(default)]
    pub provider: String,
    /// Where; empty when the catalog does not say.
    #[serde(default)]
    pub region: String,
    pub on_demand_hourly: f64,
    #[serde(default)]
    pub spot_hourly: Option<f64>,
    /// The effective hourly price under a reservation or savings plan.
    #[serde(default)]
    pub reserved_hourly: Option<f64>,
    #[serde(default)]
    pub vcpus: f64,
    #[serde(default)]
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: u32,
}

impl InstanceKind {
    /// `name (provider/region)`, leaving out what the catalog does not say.
    pub fn label(&self) -> String {
        match (self.provider.is_empty(), self.region.is_empty()) {
            (true, true) => self.name.clone(),
            (false, true) => format!("{} ({})", self.name, self.provider),
            (true, false) => format!("{} ({})", self.name, self.region),
            (false, false) => format!("{} ({}/{})", self.name, self.provider, self.region),
        }
    }
}

/// How a capacity is bought: the instance kind, and members on demand and
/// on spot. Cost rules pass it along their chain; the provider gets the last.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default)]
    pub kind: Option<String>,
    pub on_demand: u32,
    pub spot: u32,
}

impl Placement {
    /// Every member on demand.
    pub fn on_demand(kind: Option<String>, members: u32) -> Self {
        Self { kind, on_demand: members, spot: 0 }
    }

    pub fn total(&self) -> u32 {
        self.on_demand + self.spot
    }
}

/// A number a policy reports about itself, exported by the host as a gauge.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gauge {
    pub name: String,
    pub value: f64,
}

/// A spending limit over a period and what was spent so far in it.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub limit: f64,
    pub period_hours: f64,
    pub spent: f64,
    pub elapsed_hours: f64,
}

/// What a cost rule says of a proposed capacity.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Clamp(u32),
    Deny,
}

/// Everything a strategy sees.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StrategyInput {
    pub pool: Pool,
    #[serde(default)]
    pub metrics: Vec<MetricWindow>,
    #[serde(default)]
    pub now: i64,
    #[serde(default)]
    pub recent_actions: Vec<Action>,
    /// The policy's settings as JSON text.
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "schema", schema(schema_with = settings_schema))]
    pub settings: String,
    /// What the policy returned as state on its previous call.
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

impl StrategyInput {
    /// The window called `name`, if the host supplied one.
    pub fn metric(&self, name: &str) -> Option<&MetricWindow> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyOutput {
    pub proposal: Proposal,
    /// What the policy reported with [`crate::gauge::report`] during the call.
    #[serde(default)]
    pub gauges: Vec<Gauge>,
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

/// Everything a cost rule sees.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CostInput {
    pub pool: Pool,
    pub proposed: u32,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub catalog: Vec<InstanceKind>,
    #[serde(default)]
    pub budget: Option<Budget>,
    /// What the cost rule before this one chose, if any.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// The pool's metric windows, the same the strategies saw.
    #[serde(default)]
    pub metrics: Vec<MetricWindow>,
    #[serde(default)]
    pub now: i64,
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "schema", schema(schema_with = settings_schema))]
    pub settings: String,
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

impl CostInput {
    /// The catalog entry for the instance kind in use: the one an earlier
    /// rule placed the capacity on, else the pool's, else the only entry.
    pub fn instance_kind(&self) -> Option<&InstanceKind> {
        let placed = self.placement.as_ref().and_then(|p| p.kind.as_ref());
        match placed.or(self.kind.as_ref()) {
            Some(name) => self.catalog.iter().find(|k| &k.name == name),
            None if self.catalog.len() == 1 => self.catalog.first(),
            None => None,
        }
    }

    /// The window called `name`, if the host supplied one.
    pub fn metric(&self, name: &str) -> Option<&MetricWindow> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The placement in force: an earlier rule's, else all on demand.
    pub fn placement_or_default(&self, members: u32) -> Placement {
        match &self.placement {
            Some(p) if p.total() == members => p.clone(),
            Some(p) => Placement::on_demand(p.kind.clone(), members),
            None => Placement::on_demand(self.kind.clone(), members),
        }
    }
}

#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostOutput {
    pub verdict: Verdict,
    pub cost_per_hour: f64,
    pub reason: String,
    /// How to buy the capacity; `None` keeps the previous rule's choice.
    #[serde(default)]
    pub placement: Option<Placement>,
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

/// Everything consensus sees.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConsensusInput {
    pub pool: Pool,
    #[serde(default)]
    pub votes: Vec<Vote>,
    #[serde(default)]
    pub now: i64,
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "schema", schema(schema_with = settings_schema))]
    pub settings: String,
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

impl ConsensusInput {
    /// The votes that propose a finite capacity, in order.
    pub fn proposals(&self) -> impl Iterator<Item = (&Vote, &Proposal)> {
        self.votes.iter().filter_map(|v| v.proposal().filter(|p| p.desired.is_finite()).map(|p| (v, p)))
    }

    /// The experts that did not propose (trapped, timed out, no data, or a
    /// proposal that was not a number), with why.
    pub fn abstentions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.votes.iter().filter_map(|v| match &v.ballot {
            Ballot::Abstained(why) => Some((v.expert.as_str(), why.as_str())),
            Ballot::Proposed(p) if !p.desired.is_finite() => Some((v.expert.as_str(), "proposed no number")),
            Ballot::Proposed(_) => None,
        })
    }

    /// "; abstained: a (why), b (why)", or nothing: for explanations.
    pub fn abstention_note(&self) -> String {
        let list: Vec<String> = self.abstentions().map(|(e, why)| format!("{e} ({why})")).collect();
        if list.is_empty() { String::new() } else { format!("; abstained: {}", list.join(", ")) }
    }
}

/// Which way a proposal points, relative to the pool's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Down,
    Hold,
    Up,
}

impl Direction {
    pub fn of(desired: f64, current: u32) -> Self {
        let current = f64::from(current);
        if desired > current {
            Direction::Up
        } else if desired < current {
            Direction::Down
        } else {
            Direction::Hold
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Direction::Down => "scale down",
            Direction::Hold => "hold",
            Direction::Up => "scale up",
        }
    }
}

#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsensusOutput {
    pub desired: f64,
    pub confidence: f64,
    pub explanation: String,
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

fn empty_object() -> String {
    "{}".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_columns_inside_and_samples_in_json() {
        let json = r#"{"name":"cpu","samples":[{"at":1000,"value":0.5},{"at":2000,"value":0.75}]}"#;
        let w: MetricWindow = serde_json::from_str(json).unwrap();
        assert_eq!((w.times(), w.values()), (&[1000, 2000][..], &[0.5, 0.75][..]));
        assert_eq!(serde_json::to_string(&w).unwrap(), json);
        let bare: MetricWindow = serde_json::from_str(r#"{"name":"cpu"}"#).unwrap();
        assert!(bare.is_empty());
        assert!(serde_json::from_str::<MetricWindow>(r#"{"name":"cpu","samples":[{"at":1}]}"#).is_err());
    }

    #[test]
    fn columns_of_unequal_length_are_cut_to_whole_samples() {
        let w = MetricWindow::from_columns("cpu", vec![1, 2, 3], vec![0.1, 0.2]);
        assert_eq!(w.len(), 2);
        assert_eq!(w.samples().last(), Some(Sample { at: 2, value: 0.2 }));
        let mut w = MetricWindow::from_columns("cpu", vec![1], vec![0.1, 0.2, 0.3]);
        w.push(Sample { at: 5, value: 0.5 });
        assert_eq!((w.times(), w.values()), (&[1, 5][..], &[0.1, 0.5][..]));
        assert_eq!(w.since(5, 0).count(), 1);
    }
}
