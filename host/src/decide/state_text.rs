//! How policy states are written in the journal's pool memory.
//!
//! A policy's state is opaque bytes to the host, but the SDK encodes it as
//! JSON text, so it is almost always UTF-8. Written as a JSON array of
//! numbers, each byte cost three to four characters, and every pool writes
//! its memory on every decision: a state holding 300 numbers (2,345 bytes)
//! took 7,050 bytes of the journal. A state that is valid UTF-8 is
//! therefore written as a JSON string (2,351 bytes for that one); any other
//! is still written as an array. Reading accepts both, so journals written
//! before this change open unchanged. (The 10,000-pool benchmark, whose
//! policies keep little state, used the same CPU either way.)
//!
//! A state in the SDK's binary encoding (a learnt model: `predictive` keeps
//! about 8 KB) is not text. As an array it would take 3.6 characters a byte;
//! it is written as `{"base64": "…"}` instead, 1.33 a byte. Older journals
//! hold no such object, and still read.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserializer, Serializer};

/// One state, as it is written: text where it can be, bytes otherwise.
struct Written<'a>(&'a [u8]);

impl serde::Serialize for Written<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The SDK's binary states start with a NUL, which no text state does:
        // such a state is bytes even where they happen to be valid UTF-8.
        match std::str::from_utf8(self.0).ok().filter(|_| self.0.first() != Some(&0)) {
            Some(text) => s.serialize_str(text),
            None => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("base64", &BASE64.encode(self.0))?;
                map.end()
            }
        }
    }
}

pub fn serialize<S: Serializer>(states: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(states.len()))?;
    for (policy, state) in states {
        map.serialize_entry(policy, &Written(state))?;
    }
    map.end()
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    d.deserialize_map(StatesVisitor)
}

struct StatesVisitor;

impl<'de> Visitor<'de> for StatesVisitor {
    type Value = BTreeMap<String, Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of policy ids to states")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut states = BTreeMap::new();
        while let Some((policy, state)) = map.next_entry::<String, Read>()? {
            states.insert(policy, state.0);
        }
        Ok(states)
    }
}

/// One state, as read: a string or an array of bytes.
struct Read(Vec<u8>);

impl<'de> serde::Deserialize<'de> for Read {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ReadVisitor)
    }
}

struct ReadVisitor;

impl<'de> Visitor<'de> for ReadVisitor {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a policy state (a string, {\"base64\": \"…\"}, or an array of bytes)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let Some((key, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        if key != "base64" {
            return Err(de::Error::unknown_field(&key, &["base64"]));
        }
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom("a binary policy state has one field, `base64`"));
        }
        BASE64.decode(text.as_bytes()).map(Read).map_err(|e| de::Error::custom(format!("a binary policy state is not base64: {e}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Read, E> {
        Ok(Read(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Read, E> {
        Ok(Read(v.into_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Read(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Memory {
        #[serde(with = "super")]
        states: BTreeMap<String, Vec<u8>>,
    }

    fn memory(entries: &[(&str, &[u8])]) -> Memory {
        Memory { states: entries.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect() }
    }

    #[test]
    fn text_states_are_written_as_strings_and_read_back() {
        let m = memory(&[("ewma", br#"{"level":0.53,"n":"x\"y"}"#), ("empty", b"")]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"states":{"empty":"","ewma":"{\"level\":0.53,\"n\":\"x\\\"y\"}"}}"#);
        assert_eq!(serde_json::from_str::<Memory>(&json).unwrap(), m);
    }

    #[test]
    fn binary_states_are_written_as_base64_and_read_back() {
        let m = memory(&[("raw", &[0xff, 0x00, 0x80]), ("model", b"\0sw1\x01\x02")]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"states":{"model":{"base64":"AHN3MQEC"},"raw":{"base64":"/wCA"}}}"#);
        assert_eq!(serde_json::from_str::<Memory>(&json).unwrap(), m);
        let big = memory(&[("model", &[0xfe; 8000])]);
        assert!(serde_json::to_string(&big).unwrap().len() < 11_000, "8000 bytes take 1.33 characters each");
    }

    #[test]
    fn a_binary_state_that_is_not_base64_or_has_other_fields_is_refused() {
        for bad in [r#"{"states":{"m":{"base64":"!!"}}}"#, r#"{"states":{"m":{"hex":"00"}}}"#, r#"{"states":{"m":{"base64":"AA==","x":"y"}}}"#, r#"{"states":{"m":{}}}"#] {
            assert!(serde_json::from_str::<Memory>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn journals_written_as_arrays_still_read() {
        let old = r#"{"states":{"ewma":[123,125],"other":[]}}"#;
        assert_eq!(serde_json::from_str::<Memory>(old).unwrap(), memory(&[("ewma", b"{}"), ("other", b"")]));
    }

    #[test]
    fn a_state_of_another_shape_is_an_error_that_says_what_was_expected() {
        let err = serde_json::from_str::<Memory>(r#"{"states":{"ewma":12}}"#).unwrap_err().to_string();
        assert!(err.contains("a policy state"), "{err}");
        assert!(serde_json::from_str::<Memory>(r#"{"states":{"ewma":[256]}}"#).is_err());
    }
}
