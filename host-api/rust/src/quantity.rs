//! Byte sizes as capgate reads and prints them: Kubernetes quantities. `16Gi` is binary (Ki Mi
//! Gi Ti Pi Ei), `16G` decimal (k M G T P E), plain digits are bytes, `unlimited` is u64 max.
//! Same rules as the AssemblyScript and C SDKs and capgate itself (runtime/simulator/byte-size.ts).

use std::string::String;

use crate::types::MEMLOCK_UNLIMITED;

/// Parses a quantity such as `"16Gi"`, `"16G"`, `"1.5Gi"`, `"17179869184"` or `"unlimited"`.
/// `None` for anything else: ambiguous spellings (`"4GB"`, `"64K"`), overflow, a fraction of a byte.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let t = text.trim_matches(|c| c == ' ' || c == '\t');
    if ["unlimited", "infinity", "max"].iter().any(|w| t.eq_ignore_ascii_case(w)) {
        return Some(MEMLOCK_UNLIMITED);
    }
    let b = t.as_bytes();
    let mut i = 0;
    let mut whole: u64 = 0;
    if b.is_empty() || !b[0].is_ascii_digit() {
        return None;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        whole = whole.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    // The fraction, trailing zeros dropped: at most 19 significant digits (10^19 fits in u64).
    let (mut frac, mut frac_digits) = (0u64, 0u32);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let mut end = i;
        while end > start && b[end - 1] == b'0' {
            end -= 1;
        }
        if end - start > 19 {
            return None;
        }
        for &d in &b[start..end] {
            frac = frac * 10 + u64::from(d - b'0');
        }
        frac_digits = (end - start) as u32;
    }
    let (shift, exponent) = match &b[i..] {
        [] => (0, 0),
        [u, b'i'] => (10 * (b"KMGTPE".iter().position(|c| c == u)? as u32 + 1), 0),
        [u] => (0, 3 * (b"kMGTPE".iter().position(|c| c == u)? as u32 + 1)),
        _ => return None,
    };
    let factor = (1u64 << shift) * 10u64.pow(exponent);
    let mut total = whole.checked_mul(factor)?;
    if frac_digits > 0 {
        // frac / 10^d * factor must be whole; 10^d = 2^d * 5^d.
        let part = if exponent != 0 {
            if frac_digits > exponent {
                return None;
            }
            frac * 10u64.pow(exponent - frac_digits)
        } else {
            let five = 5u64.pow(frac_digits);
            if frac % five != 0 {
                return None;
            }
            let h = frac / five; // < 2^frac_digits
            if shift >= frac_digits {
                h << (shift - frac_digits)
            } else {
                let down = frac_digits - shift;
                if h & ((1u64 << down) - 1) != 0 {
                    return None;
                }
                h >> down
            }
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// A byte count as capgate prints sizes: `"16Gi"`, `"1536Mi"`, `"64Ki"`, `"1000"`, `"unlimited"`.
pub fn format_bytes(bytes: u64) -> String {
    if bytes == MEMLOCK_UNLIMITED {
        return String::from("unlimited");
    }
    for (i, unit) in ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"].iter().enumerate() {
        let shift = 60 - 10 * i as u32;
        let factor = 1u64 << shift;
        if bytes >= factor && bytes % factor == 0 {
            let q = bytes >> shift;
            if q >= 1_024_000 {
                break;
            }
            return format!("{}{}", q, unit);
        }
    }
    format!("{}", bytes)
}
