//! Kubernetes resource quantities (`250m`, `1500000n`, `128Mi`, `1e9`) as
//! numbers, for the per-pod usage metrics-server reports.

/// The value of a quantity in base units (cores, bytes); `None` if it is not one.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    // "1e3" is a decimal exponent, but a lone trailing "E" is exa.
    let (number, suffix) = if suffix.is_empty() && (number.ends_with('E') || number.ends_with('e')) && number.len() > 1 {
        (&number[..number.len() - 1], &number[number.len() - 1..])
    } else {
        (number, suffix)
    };
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" | "e" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    let v = value * scale;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn cpu_and_memory_quantities() {
        assert_eq!(parse("250m"), Some(0.25));
        assert_eq!(parse("2"), Some(2.0));
        assert!((parse("1500000n").unwrap() - 0.0015).abs() < 1e-12);
        assert!((parse("1500u").unwrap() - 0.0015).abs() < 1e-12);
        assert_eq!(parse("128Mi"), Some(134_217_728.0));
        assert_eq!(parse("1Gi"), Some(1_073_741_824.0));
        assert_eq!(parse("500k"), Some(500_000.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("2E"), Some(2e18));
        assert_eq!(parse("12345Ki"), Some(12_641_280.0));
        assert_eq!(parse(""), None);
        assert_eq!(parse("12Xi"), None);
        assert_eq!(parse("lots"), None);
    }
}
