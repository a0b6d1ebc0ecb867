//! How a policy's state travels between its calls.
//!
//! The host keeps a policy's state as opaque bytes and hands them back on
//! the next call; the SDK decodes them before [`evaluate`] and encodes the
//! new state after it, on every call. For most policies (a few counters, a
//! smoothed level) JSON is the right encoding: a few hundred bytes, and the
//! journal and the API show it as text an operator can read.
//!
//! A policy that learns a model is different. `predictive` keeps two
//! seasonal profiles (about 1,600 numbers): as JSON text, decoding and
//! encoding them was most of the cost of a call (about 130 µs a step in the
//! simulator, against 6 µs for a reactive rule), and it grew with the
//! model. [`StateEncoding::Binary`] encodes the same `serde` types with
//! postcard, a compact binary format: numbers travel as their bytes, and a
//! field marked `#[serde(with = "scalewise_sdk::state::f32s")]` as one run of
//! little-endian `f32`s, copied rather than parsed.
//!
//! A binary state starts with [`BINARY_MAGIC`], which no JSON text can start
//! with, so decoding needs no setting: a state written as JSON by an earlier
//! version of a policy still decodes after it switches to binary, and the
//! other way round. (A state that decodes neither way starts afresh from the
//! default, as before.) The journal writes a binary state as base64.
//!
//! [`evaluate`]: crate::Strategy::evaluate

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a policy's state is encoded; set with the role trait's
/// `STATE_ENCODING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateEncoding {
    /// JSON text: readable in the journal and the API. The default.
    #[default]
    Json,
    /// postcard after [`BINARY_MAGIC`]: for states of thousands of numbers.
    Binary,
}

/// The first bytes of a binary state: a NUL (never the start of JSON text)
/// and a version.
pub const BINARY_MAGIC: &[u8; 4] = b"\0sw1";

thread_local! {
    /// The size of the last binary state encoded: the next is usually about
    /// as large, and reserving it at once saves the output's regrowth.
    static LAST_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Decode a state the host kept: binary after [`BINARY_MAGIC`], JSON
/// otherwise. `None` when absent or undecodable (an incompatible older
/// version): the caller starts from the default.
pub fn decode<T: DeserializeOwned>(bytes: Option<&[u8]>) -> Option<T> {
    let bytes = bytes?;
    match bytes.strip_prefix(BINARY_MAGIC.as_slice()) {
        Some(rest) => postcard::from_bytes(rest).ok(),
        None => serde_json::from_slice(bytes).ok(),
    }
}

/// Encode a state; `None` for an empty one (`()` and other states that
/// encode as JSON `null` store nothing, whatever the encoding).
pub fn encode<T: Serialize>(state: &T, encoding: StateEncoding) -> Result<Option<Vec<u8>>, String> {
    let json_null = || serde_json::to_vec(state).is_ok_and(|b| b == b"null");
    match encoding {
        StateEncoding::Json => {
            let bytes = serde_json::to_vec(state).map_err(|e| format!("cannot encode state: {e}"))?;
            Ok(if bytes == b"null" { None } else { Some(bytes) })
        }
        StateEncoding::Binary => {
            let mut out = Vec::with_capacity(LAST_SIZE.get() + 64);
            out.extend_from_slice(BINARY_MAGIC);
            let bytes = postcard::to_extend(state, out).map_err(|e| format!("cannot encode state: {e}"))?;
            LAST_SIZE.set(bytes.len());
            // postcard writes `()` as nothing at all.
            Ok(if bytes.len() == BINARY_MAGIC.len() && json_null() { None } else { Some(bytes) })
        }
    }
}

/// `#[serde(with = "scalewise_sdk::state::f32s")]` on a `Vec<f64>`: the
/// numbers kept as `f32` (a seasonal profile or a histogram needs no more
/// precision). In JSON they are a hex string of their little-endian bytes
/// (hex decodes without float parsing); in the binary encoding, the bytes
/// themselves.
pub mod f32s {
    use serde::{Deserialize, Deserializer, Serializer};

    const HEX: &[u8; 16] = b"0123456789abcdef";

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        // Fixed-size chunks, no capacity checks: the loop compiles to a few
        // instructions a number, in wasm as natively.
        let mut bytes = vec![0u8; v.len() * 4];
        for (out, x) in bytes.chunks_exact_mut(4).zip(v) {
            out.copy_from_slice(&(*x as f32).to_le_bytes());
        }
        if !s.is_human_readable() {
            return s.serialize_bytes(&bytes);
        }
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        if !d.is_human_readable() {
            let bytes = <&'de [u8]>::deserialize(d)?;
            if bytes.len() % 4 != 0 {
                return Err(serde::de::Error::custom("packed floats: length is not a multiple of 4"));
            }
            let mut v = vec![0.0; bytes.len() / 4];
            for (x, c) in v.iter_mut().zip(bytes.chunks_exact(4)) {
                *x = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
            return Ok(v);
        }
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = text.as_bytes();
        if bytes.len() % 8 != 0 {
            return Err(serde::de::Error::custom("packed floats: length is not a multiple of 8"));
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("packed floats: not hex")),
        };
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 4];
                for (i, pair) in c.chunks_exact(2).enumerate() {
                    b[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
                }
                Ok(f64::from(f32::from_le_bytes(b)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Model {
        level: f64,
        #[serde(with = "f32s")]
        profile: Vec<f64>,
        recent: Vec<f64>,
        name: String,
    }

    fn model() -> Model {
        Model { level: 0.1 + 0.2, profile: vec![1.5, -2.25, 1e6, 0.0], recent: vec![f64::MAX, 1e-300], name: "x".into() }
    }

    #[test]
    fn both_encodings_round_trip() {
        for encoding in [StateEncoding::Json, StateEncoding::Binary] {
            let bytes = encode(&model(), encoding).unwrap().unwrap();
            assert_eq!(decode::<Model>(Some(&bytes)), Some(model()), "{encoding:?}");
        }
    }

    #[test]
    fn binary_is_marked_and_compact() {
        let big = Model { profile: vec![0.123; 1600], ..model() };
        let json = encode(&big, StateEncoding::Json).unwrap().unwrap();
        let binary = encode(&big, StateEncoding::Binary).unwrap().unwrap();
        assert!(binary.starts_with(BINARY_MAGIC));
        assert!(binary.len() * 2 < json.len(), "binary {} vs json {}", binary.len(), json.len());
    }

    #[test]
    fn a_json_state_decodes_after_a_switch_to_binary_and_back() {
        let json = encode(&model(), StateEncoding::Json).unwrap().unwrap();
        let binary = encode(&decode::<Model>(Some(&json)).unwrap(), StateEncoding::Binary).unwrap().unwrap();
        assert_eq!(decode::<Model>(Some(&binary)), Some(model()));
    }

    #[test]
    fn empty_states_store_nothing_and_garbage_decodes_to_none() {
        assert_eq!(encode(&(), StateEncoding::Json).unwrap(), None);
        assert_eq!(encode(&(), StateEncoding::Binary).unwrap(), None);
        assert_eq!(decode::<Model>(Some(b"\0sw1\xff\xff")), None);
        assert_eq!(decode::<Model>(Some(b"{not json")), None);
        assert_eq!(decode::<Model>(None), None);
    }
}
