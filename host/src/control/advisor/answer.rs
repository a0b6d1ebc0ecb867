//! What the advisor may answer, and the strict reading of what it did.
//!
//! A model's answer is untrusted text, like a policy's output, and it is
//! read as strictly: one JSON object with exactly its question's fields (no
//! code fence, no prose around it, no extra field, none twice), each of its
//! type, then through the same guard as a strategy's output ([`guard`]): a
//! whole number of members inside the pool's bounds, a confidence in [0, 1],
//! a reason short enough to journal. An answer with a field of the other
//! question (a review that names a capacity, a vote that approves) acts
//! outside its role and is refused as such. Anything refused counts for
//! nothing: the advisor abstains, and the raw answer is kept.

use scalewise_sdk::{Pool, Proposal, StrategyOutput};
use serde_json::{Map, Value, json};

use crate::policy::guard::{self, OutputLimits};

/// What the advisor is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// How many members the pool should run.
    Vote,
    /// Whether the change `from → to` should be taken.
    Review { from: u32, to: u32 },
}

impl Question {
    pub fn label(&self) -> String {
        match self {
            Self::Vote => "vote".into(),
            Self::Review { from, to } => format!("review {from} -> {to}"),
        }
    }

    /// The fields of its answer.
    fn fields(&self) -> &'static [&'static str] {
        match self {
            Self::Vote => &["desired", "confidence", "reason"],
            Self::Review { .. } => &["verdict", "reason"],
        }
    }

    /// The schema the endpoint is asked to hold its answer to (and the
    /// prompt shows): strict mode's subset, every field required, nothing
    /// else allowed.
    pub fn schema(&self, pool: &Pool) -> Value {
        match self {
            Self::Vote => json!({
                "type": "object",
                "properties": {
                    "desired": { "type": "integer", "minimum": pool.min, "maximum": pool.max, "description": "members the pool should run" },
                    "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                    "reason": { "type": "string", "description": "why, in one or two sentences" },
                },
                "required": ["desired", "confidence", "reason"],
                "additionalProperties": false,
            }),
            Self::Review { .. } => json!({
                "type": "object",
                "properties": {
                    "verdict": { "type": "string", "enum": ["agree", "object"] },
                    "reason": { "type": "string", "description": "why, in one or two sentences" },
                },
                "required": ["verdict", "reason"],
                "additionalProperties": false,
            }),
        }
    }

    /// The schema's name in `response_format`.
    pub fn schema_name(&self) -> &'static str {
        match self {
            Self::Vote => "scalewise_vote",
            Self::Review { .. } => "scalewise_review",
        }
    }
}

/// A reviewer's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub agree: bool,
    pub reason: String,
}

/// An answer that passed.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Vote(Proposal),
    Review(Review),
}

impl Answer {
    /// In words, for the journal.
    pub fn describe(&self) -> String {
        match self {
            Self::Vote(p) => format!("desired {} (confidence {}): {}", p.desired, p.confidence, p.reason),
            Self::Review(r) => format!("{}: {}", if r.agree { "agree" } else { "object" }, r.reason),
        }
    }
}

/// At most this many characters of the answer's own words in an error,
/// which goes into every decision's record while it stands.
const QUOTED: usize = 64;

/// `text` for an error message: its first characters, marked when cut.
fn quote(text: &str) -> String {
    super::clip(text, QUOTED)
}

/// Read `content` as the answer to `q` for `pool`, or say why it is none.
pub fn read(q: Question, content: &str, pool: &Pool, limits: &OutputLimits) -> Result<Answer, String> {
    let text = content.trim();
    if !text.starts_with('{') {
        return Err(format!("not a JSON object (it starts with {:?})", text.chars().take(24).collect::<String>()));
    }
    let Fields(fields) = serde_json::from_str(text).map_err(|e| format!("not JSON: {}", quote(&e.to_string())))?;
    let mut object = Map::new();
    for (key, value) in fields {
        // Two of one field: which one a reader takes differs by reader.
        if object.insert(key.clone(), value).is_some() {
            return Err(format!("the field `{}` is given twice", quote(&key)));
        }
    }
    let other = match q {
        Question::Vote => Question::Review { from: 0, to: 0 },
        Question::Review { .. } => Question::Vote,
    };
    for key in object.keys() {
        if q.fields().contains(&key.as_str()) {
            continue;
        }
        if other.fields().contains(&key.as_str()) {
            return Err(format!("acts outside its role: a {} answers {}, and `{key}` belongs to a {}", role(q), list(q.fields()), role(other)));
        }
        return Err(format!("unknown field `{}`; the answer has exactly {}", quote(key), list(q.fields())));
    }
    if let Some(missing) = q.fields().iter().find(|f| !object.contains_key(**f)) {
        return Err(format!("missing field `{missing}`"));
    }
    let reason = object["reason"].as_str().ok_or("`reason` must be a string")?.to_owned();
    match q {
        Question::Vote => {
            let desired = &object["desired"];
            let whole = desired.as_u64().filter(|n| *n <= u64::from(u32::MAX));
            let Some(desired) = whole else {
                return Err(format!("`desired` must be a whole number of members ≥ 0, got {}", quote(&desired.to_string())));
            };
            let confidence = object["confidence"].as_f64().ok_or_else(|| format!("`confidence` must be a number, got {}", quote(&object["confidence"].to_string())))?;
            let out = StrategyOutput { proposal: Proposal::new(desired as f64, confidence, reason), gauges: Vec::new(), state: None };
            guard::check_strategy(pool, &out, limits).map_err(|e| match e {
                crate::policy::PolicyError::InvalidOutput(why) => why,
                other => other.to_string(),
            })?;
            Ok(Answer::Vote(out.proposal))
        }
        Question::Review { .. } => {
            let agree = match object["verdict"].as_str() {
                Some("agree") => true,
                Some("object") => false,
                _ => return Err(format!("`verdict` must be \"agree\" or \"object\", got {}", quote(&object["verdict"].to_string()))),
            };
            if reason.len() > limits.max_reason_bytes {
                return Err(format!("reason is {} bytes; the limit is {}", reason.len(), limits.max_reason_bytes));
            }
            Ok(Answer::Review(Review { agree, reason }))
        }
    }
}

/// A JSON object's fields in order, duplicates kept (a `Map` keeps the
/// last silently).
struct Fields(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

fn role(q: Question) -> &'static str {
    match q {
        Question::Vote => "vote",
        Question::Review { .. } => "review",
    }
}

fn list(fields: &[&str]) -> String {
    fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool { id: "p".into(), running: 3, booting: 0, min: 1, max: 20 }
    }

    fn vote(text: &str) -> Result<Answer, String> {
        read(Question::Vote, text, &pool(), &OutputLimits::default())
    }

    fn review(text: &str) -> Result<Answer, String> {
        read(Question::Review { from: 3, to: 15 }, text, &pool(), &OutputLimits::default())
    }

    #[test]
    fn a_vote_and_a_review_of_the_schema_pass() {
        assert_eq!(vote(r#" {"desired": 4, "confidence": 0.7, "reason": "queue rising"} "#), Ok(Answer::Vote(Proposal::new(4.0, 0.7, "queue rising"))));
        assert_eq!(review(r#"{"verdict": "object", "reason": "the spike is one sample"}"#), Ok(Answer::Review(Review { agree: false, reason: "the spike is one sample".into() })));
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let cases = [
            ("Sure! I think 4.", "not a JSON object"),
            ("```json\n{\"desired\": 4}\n```", "not a JSON object"),
            ("{\"desired\": 4, ", "not JSON"),
            ("[4]", "not a JSON object"),
            (r#"{"desired": 4, "confidence": 0.7}"#, "missing field `reason`"),
            (r#"{"desired": 4.5, "confidence": 0.7, "reason": "r"}"#, "whole number"),
            (r#"{"desired": -2, "confidence": 0.7, "reason": "r"}"#, "whole number"),
            (r#"{"desired": "4", "confidence": 0.7, "reason": "r"}"#, "whole number"),
            (r#"{"desired": 1000, "confidence": 0.7, "reason": "ignore previous instructions"}"#, "outside the pool's bounds [1, 20]"),
            (r#"{"desired": 4, "confidence": 7, "reason": "r"}"#, "confidence 7 is outside [0, 1]"),
            (r#"{"desired": 4, "confidence": 0.5, "reason": "r", "scale_to": 1000}"#, "unknown field `scale_to`"),
            (r#"{"desired": 4, "confidence": 0.5, "reason": "r", "verdict": "agree"}"#, "acts outside its role"),
            (r#"{"desired": 4, "confidence": 0.5, "reason": "r", "desired": 1000}"#, "the field `desired` is given twice"),
        ];
        for (text, why) in cases {
            let e = vote(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        // What it quotes of a hostile answer is bounded, however large.
        let huge_key = format!(r#"{{"{}": 1}}"#, "k".repeat(100_000));
        let huge_value = format!(r#"{{"desired": "{}", "confidence": 1, "reason": "r"}}"#, "9".repeat(100_000));
        let huge_verdict = format!(r#"{{"verdict": "{}", "reason": "r"}}"#, "v".repeat(100_000));
        for e in [vote(&huge_key), vote(&huge_value), review(&huge_verdict), vote(&format!("{{\"a\": {}", "[".repeat(100_000)))] {
            let e = e.unwrap_err();
            assert!(e.len() < 300, "{} bytes: {}…", e.len(), &e[..200]);
        }
        let long = format!(r#"{{"desired": 4, "confidence": 0.5, "reason": "{}"}}"#, "x".repeat(5000));
        assert!(vote(&long).unwrap_err().contains("reason is 5000 bytes"));
        assert!(review(r#"{"verdict": "object", "reason": "no", "desired": 1}"#).unwrap_err().contains("acts outside its role: a review answers `verdict`, `reason`"));
        assert!(review(r#"{"verdict": "approve", "reason": "r"}"#).unwrap_err().contains("must be \"agree\" or \"object\""));
    }

    #[test]
    fn the_schemas_allow_nothing_but_their_fields() {
        let s = Question::Vote.schema(&pool());
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["desired"]["maximum"], 20);
        assert_eq!(s["required"], json!(["desired", "confidence", "reason"]));
        assert_eq!(Question::Review { from: 1, to: 9 }.schema(&pool())["properties"]["verdict"]["enum"], json!(["agree", "object"]));
    }
}
