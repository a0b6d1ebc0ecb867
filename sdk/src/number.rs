//! Numbers in reasons, formatted cheaply.
//!
//! Why this exists: every proposal carries a reason an operator reads, and a
//! reason usually quotes a few floats. Inside a wasm guest, `core`'s float
//! formatting (Grisu with a Dragon fallback, on 128-bit multiplies the guest
//! has no instruction for) was the largest single cost of a built-in
//! strategy's call: 16% of a reused-instance `target-tracking` evaluation.
//! A reason needs a handful of decimals, not the shortest round-trip digits,
//! so [`num`] and [`fixed`] scale to an integer and print that.
//!
//! Both write the digits themselves into a stack buffer and hand the
//! formatter one string, and keep to 32-bit arithmetic where they can.
//! Values too large to scale (beyond 9·10¹⁵ after
//! scaling) and non-finite values fall back to `core`'s formatting, so
//! nothing prints wrong, it only prints slower. Rounding is to nearest on the
//! scaled binary value, so a decimal tie (0.0005 to three places) may round
//! either way, as it may with `core` too.

use std::fmt;

/// The largest scaled magnitude printed by the integer path: below 2⁵³, so
/// every integer up to it is exact in an `f64`.
const EXACT: f64 = 9.0e15;
const POW10: [u64; 10] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// A number as a reason quotes it; see [`num`] and [`fixed`].
#[derive(Debug, Clone, Copy)]
pub struct Num {
    value: f64,
    decimals: u8,
    /// Keep trailing zeros (`fixed`) or trim them (`num`).
    pad: bool,
}

/// `value` with at most six decimals and no trailing zeros: `0.5`, `11`,
/// `0.333333`. Where `format!("{}")` would print the same digits, so does
/// this (for values whose shortest form has six decimals or fewer).
pub fn num(value: f64) -> Num {
    Num { value, decimals: 6, pad: false }
}

/// `value` with exactly `decimals` decimals (at most 9), as `{:.N}` prints
/// it, except that a value that rounds to zero prints without a sign.
pub fn fixed(value: f64, decimals: u8) -> Num {
    Num { value, decimals: decimals.min(9), pad: true }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Num { value, decimals, pad } = *self;
        let scale = POW10[decimals as usize];
        // `floor(x + 0.5)`, not `round`: wasm has an instruction for floor,
        // while `round` is a libm call. They differ only below 0.5 ulp.
        let scaled = (value.abs() * scale as f64 + 0.5).floor();
        if scaled.is_nan() || scaled >= EXACT {
            return if pad { write!(f, "{value:.*}", decimals as usize) } else { write!(f, "{value}") };
        }
        let scaled = scaled as u64;
        let int = scaled / scale;
        // Below 10^9: fits in 32 bits, whose division by ten is a multiply
        // in wasm (64-bit division by a constant needs a 128-bit multiply,
        // which wasm32 does in software).
        let mut frac = (scaled - int * scale) as u32;
        let mut digits = decimals as usize;
        if !pad {
            while digits > 0 && frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
        }
        // Filled from the end: fraction, point, integer part, sign.
        let mut buf = [0u8; 32];
        let mut at = buf.len();
        if digits > 0 {
            put(&mut buf, &mut at, frac, digits);
            at -= 1;
            buf[at] = b'.';
        }
        // Below 9·10¹⁵, so the part above 10⁹ fits in 32 bits too.
        match u32::try_from(int) {
            Ok(int) => put(&mut buf, &mut at, int, 1),
            Err(_) => {
                put(&mut buf, &mut at, (int % 1_000_000_000) as u32, 9);
                put(&mut buf, &mut at, (int / 1_000_000_000) as u32, 1);
            }
        }
        if value.is_sign_negative() && scaled != 0 {
            at -= 1;
            buf[at] = b'-';
        }
        // SAFETY: only ASCII digits, '.' and '-' were written.
        f.write_str(unsafe { std::str::from_utf8_unchecked(&buf[at..]) })
    }
}

/// Write `n`'s decimal digits, at least `width` of them (zero-padded), so
/// that they end at `at`; move `at` to the first.
fn put(buf: &mut [u8], at: &mut usize, mut n: u32, width: usize) {
    let mut written = 0;
    while n > 0 || written < width {
        *at -= 1;
        buf[*at] = b'0' + (n % 10) as u8;
        n /= 10;
        written += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_prints_what_display_prints_for_short_values() {
        for v in [0.0, 1.0, -1.0, 0.5, 11.0, 0.55, 123.25, -0.125, 1e12, 0.333333, 64.0, 1e-7] {
            let expected = format!("{v}");
            if expected.split('.').nth(1).is_none_or(|d| d.len() <= 6) {
                assert_eq!(num(v).to_string(), expected, "{v:?}");
            }
        }
        assert_eq!(num(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(num(2.0 / 3.0).to_string(), "0.666667");
    }

    #[test]
    fn fixed_matches_precision_formatting() {
        // Away from decimal ties, the two agree digit for digit.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 2_000_000) as f64 / 997.0 - 1000.0;
            for d in [0u8, 1, 2, 3, 6] {
                let core = format!("{v:.*}", d as usize);
                // `core` keeps the sign of a value that rounds to zero ("-0.00").
                let zero = core.bytes().all(|b| matches!(b, b'-' | b'0' | b'.'));
                let expected = if zero { core.trim_start_matches('-') } else { &core };
                assert_eq!(fixed(v, d).to_string(), expected, "{v:?} to {d}");
            }
        }
    }

    #[test]
    fn huge_and_odd_values_fall_back() {
        assert_eq!(num(f64::NAN).to_string(), "NaN");
        assert_eq!(num(f64::INFINITY).to_string(), "inf");
        assert_eq!(fixed(f64::NEG_INFINITY, 2).to_string(), "-inf");
        assert_eq!(num(1e20).to_string(), "100000000000000000000");
        assert_eq!(fixed(1e17, 3).to_string(), format!("{:.3}", 1e17));
        // Integer parts past 32 bits, still on the integer path.
        assert_eq!(fixed(123_456_789_012.0, 0).to_string(), "123456789012");
        assert_eq!(fixed(-4_294_967_296.25, 2).to_string(), "-4294967296.25");
        assert_eq!(num(5_000_000_007.5).to_string(), "5000000007.5");
        assert_eq!(fixed(-0.0001, 3).to_string(), "0.000");
        assert_eq!(fixed(-1.5, 0).to_string(), "-2");
    }
}
