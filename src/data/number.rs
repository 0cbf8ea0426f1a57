//! Reading numbers from text fast, with exactly the value `str::parse::<f64>` gives.

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `text.parse::<f64>()`, with a fast path for plain decimals (`80`, `-0.000011`,
/// `1655935176.726357`): when the digits make an integer below 2^53 and there are at most 22
/// after the dot, integer / 10^k is exact on both sides and IEEE division rounds it
/// correctly, so the value is the one the full parser gives (Clinger's fast path). Anything
/// else (exponents, `inf`, long digit strings) goes to the full parser.
pub fn parse_f64(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 {
        return text.parse().ok();
    }
    let (mut mantissa, mut scale, mut seen_dot, mut n) = (0u64, 0usize, false, 0);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                n += 1;
                scale += usize::from(seen_dot);
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return text.parse().ok(),
        }
    }
    if n == 0 || n > 19 || mantissa >= 1 << 53 || scale >= POW10.len() {
        return text.parse().ok();
    }
    let v = mantissa as f64 / POW10[scale];
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_as_the_full_parser() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "+0",
            "1.",
            ".5",
            "-.5",
            ".",
            "-",
            "",
            "1e3",
            "inf",
            "NaN",
            "0.1",
            "0.000011",
            "1655935176.726357",
            "9007199254740991",
            "9007199254740993",
            "123456789012345678901",
            "1.2.3",
            "12a",
            " 1",
            "0x10",
            "00042.5000",
            "0.30000000000000004",
            "1234567.8901234567",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let digits = (state % 17) as usize;
            let whole = state >> 20;
            let s = format!("{}", whole % 10u64.pow(digits.min(15) as u32 + 1));
            let dot = (state >> 8) as usize % (s.len() + 1);
            cases.push(format!("{}{}.{}", if state & 1 == 1 { "-" } else { "" }, &s[..dot], &s[dot..]));
            cases.push(s);
        }
        for c in &cases {
            let want = c.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_f64(c).map(f64::to_bits), want, "{c:?}");
        }
    }
}
