//! Fixed-point decimals that keep the venue's exact digits.
//!
//! A venue sends `"0.35130000"`; the book must print `"0.35130000"` back, because checksums and
//! digit-for-digit cross-checks depend on it. So a value is an integer mantissa plus the number of
//! digits after the point as written (`scale`), never an `f64`.

use std::cmp::Ordering;
use std::fmt;

/// Most digits after the point we accept; 10^18 still fits in an `i64`.
pub const MAX_SCALE: u8 = 18;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// 10^exp as an `i64`, for `exp <= MAX_SCALE`.
#[inline]
pub fn pow10(exp: u8) -> i64 {
    POW10[exp as usize]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty number")]
    Empty,
    #[error("invalid character in number")]
    InvalidChar,
    #[error("number has more than {MAX_SCALE} digits after the point")]
    TooPrecise,
    #[error("number does not fit in 64 bits")]
    Overflow,
}

/// An exact decimal: `mantissa * 10^-scale`, with the scale the venue wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    pub fn new(mantissa: i64, scale: u8) -> Result<Self, DecimalError> {
        if scale > MAX_SCALE {
            return Err(DecimalError::TooPrecise);
        }
        Ok(Decimal { mantissa, scale })
    }

    #[inline]
    pub fn mantissa(self) -> i64 {
        self.mantissa
    }

    #[inline]
    pub fn scale(self) -> u8 {
        self.scale
    }

    #[inline]
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    #[inline]
    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// The absolute value, keeping the scale (Bitfinex signs sizes by side).
    pub fn abs(self) -> Result<Self, DecimalError> {
        let m = self.mantissa.checked_abs().ok_or(DecimalError::Overflow)?;
        Ok(Decimal {
            mantissa: m,
            scale: self.scale,
        })
    }

    /// The mantissa expressed at a larger (or equal) scale.
    #[inline]
    pub fn mantissa_at(self, scale: u8) -> Result<i64, DecimalError> {
        debug_assert!(scale >= self.scale);
        self.mantissa
            .checked_mul(pow10(scale - self.scale))
            .ok_or(DecimalError::Overflow)
    }

    /// Both mantissas at the finer of the two scales, wide enough that no sum of them overflows.
    fn aligned(self, other: Decimal) -> (i128, i128, u8) {
        let scale = self.scale.max(other.scale);
        let a = self.mantissa as i128 * pow10(scale - self.scale) as i128;
        let b = other.mantissa as i128 * pow10(scale - other.scale) as i128;
        (a, b, scale)
    }

    fn from_wide(mantissa: i128, scale: u8) -> Result<Self, DecimalError> {
        if scale > MAX_SCALE {
            return Err(DecimalError::TooPrecise);
        }
        let mantissa = i64::try_from(mantissa).map_err(|_| DecimalError::Overflow)?;
        Ok(Decimal { mantissa, scale })
    }

    /// `self - other`, exact, at the finer of the two scales (`"0.10" - "0.09"` is `"0.01"`).
    pub fn checked_sub(self, other: Decimal) -> Result<Self, DecimalError> {
        let (a, b, scale) = self.aligned(other);
        Self::from_wide(a - b, scale)
    }

    /// `(self + other) / 2`, exact: at the finer of the two scales when the sum is even, one
    /// digit finer when it is odd (the mid of `"0.01"` and `"0.02"` is `"0.015"`). Fails only
    /// when that needs more than `MAX_SCALE` digits or 64 bits.
    pub fn midpoint(self, other: Decimal) -> Result<Self, DecimalError> {
        let (a, b, scale) = self.aligned(other);
        let sum = a + b;
        if sum % 2 == 0 {
            Self::from_wide(sum / 2, scale)
        } else {
            // sum / 2 == sum * 5 / 10: one more digit after the point holds the half exactly.
            Self::from_wide(sum * 5, scale + 1)
        }
    }

    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / pow10(self.scale) as f64
    }

    /// Parses the venue's text: `-12.3400`, `7`, `1.5e-7`, `2E+3`.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parses ASCII text; the common shape (`digits[.digits]`, at most 18 digits) takes a fast
    /// path with no overflow check per digit.
    #[inline]
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, DecimalError> {
        if let Some(d) = Self::parse_plain(bytes) {
            return Ok(d);
        }
        Self::parse_general(bytes)
    }

    #[inline]
    fn parse_plain(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 19 {
            return None;
        }
        let mut mantissa: i64 = 0;
        let mut point: Option<usize> = None;
        for (i, &c) in bytes.iter().enumerate() {
            if c.is_ascii_digit() {
                mantissa = mantissa * 10 + (c - b'0') as i64;
            } else if c == b'.' && point.is_none() && i > 0 {
                point = Some(i);
            } else {
                return None;
            }
        }
        let scale = match point {
            Some(at) if at + 1 == bytes.len() => return None,
            Some(at) => bytes.len() - at - 1,
            None => 0,
        };
        // At most 18 digits were read (19 bytes with a point), so no overflow was possible.
        if point.is_none() && bytes.len() > 18 {
            return None;
        }
        Some(Decimal {
            mantissa,
            scale: scale as u8,
        })
    }

    fn parse_general(bytes: &[u8]) -> Result<Self, DecimalError> {
        let (negative, digits) = match bytes.first() {
            None => return Err(DecimalError::Empty),
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            Some(_) => (false, bytes),
        };
        let mut mantissa: i64 = 0;
        let mut scale: i32 = 0;
        let mut seen_digit = false;
        let mut seen_point = false;
        let mut i = 0;
        while i < digits.len() {
            let c = digits[i];
            match c {
                b'0'..=b'9' => {
                    seen_digit = true;
                    mantissa = mantissa
                        .checked_mul(10)
                        .and_then(|m| m.checked_add((c - b'0') as i64))
                        .ok_or(DecimalError::Overflow)?;
                    if seen_point {
                        scale += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                b'e' | b'E' => break,
                _ => return Err(DecimalError::InvalidChar),
            }
            i += 1;
        }
        if !seen_digit {
            return Err(DecimalError::Empty);
        }
        if i < digits.len() {
            let exponent = parse_exponent(&digits[i + 1..])?;
            scale -= exponent;
        }
        if scale < 0 {
            let up = u8::try_from(-scale).map_err(|_| DecimalError::Overflow)?;
            if up > MAX_SCALE {
                return Err(DecimalError::Overflow);
            }
            mantissa = mantissa
                .checked_mul(pow10(up))
                .ok_or(DecimalError::Overflow)?;
            scale = 0;
        }
        if scale > MAX_SCALE as i32 {
            return Err(DecimalError::TooPrecise);
        }
        Ok(Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale: scale as u8,
        })
    }

    /// Writes the digits without allocating; the same text `Display` gives.
    pub fn write_to(self, out: &mut String) {
        let mut buf = [0u8; 24];
        let text = self.format_into(&mut buf);
        out.push_str(text);
    }

    /// Formats into a stack buffer and returns the text.
    pub fn format_into(self, buf: &mut [u8; 24]) -> &str {
        // Build right to left: fraction digits, point, integer digits, sign.
        let mut pos = buf.len();
        let mut value = self.mantissa.unsigned_abs();
        let mut written = 0u8;
        while written < self.scale {
            pos -= 1;
            buf[pos] = b'0' + (value % 10) as u8;
            value /= 10;
            written += 1;
        }
        if self.scale > 0 {
            pos -= 1;
            buf[pos] = b'.';
        }
        loop {
            pos -= 1;
            buf[pos] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if self.mantissa < 0 {
            pos -= 1;
            buf[pos] = b'-';
        }
        // Only ASCII digits, '.', '-' were written.
        std::str::from_utf8(&buf[pos..]).unwrap_or("")
    }
}

fn parse_exponent(bytes: &[u8]) -> Result<i32, DecimalError> {
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        Some(_) => (false, bytes),
        None => return Err(DecimalError::InvalidChar),
    };
    if digits.is_empty() {
        return Err(DecimalError::InvalidChar);
    }
    if digits.len() > 3 {
        return Err(DecimalError::Overflow);
    }
    let mut value: i32 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(DecimalError::InvalidChar);
        }
        value = value * 10 + (c - b'0') as i32;
    }
    Ok(if negative { -value } else { value })
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b, _) = self.aligned(*other);
        a.cmp(&b)
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        f.write_str(self.format_into(&mut buf))
    }
}

impl std::str::FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_venue_digits() {
        for text in [
            "0.35130000",
            "7.6110",
            "2683.80000000",
            "0",
            "0.00000000",
            "-12.5",
            "61837.63000000",
            "100",
            "0.00000001",
        ] {
            assert_eq!(Decimal::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn scientific_notation_becomes_plain() {
        assert_eq!(Decimal::parse("1.5e-7").unwrap().to_string(), "0.00000015");
        assert_eq!(Decimal::parse("2E+3").unwrap().to_string(), "2000");
        assert_eq!(Decimal::parse("-3.25e1").unwrap().to_string(), "-32.5");
    }

    #[test]
    fn orders_across_scales() {
        let a = Decimal::parse("0.1").unwrap();
        let b = Decimal::parse("0.10").unwrap();
        let c = Decimal::parse("0.11").unwrap();
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert!(a < c);
        assert!(Decimal::parse("-1").unwrap() < a);
    }

    #[test]
    fn rejects_garbage_with_typed_errors() {
        assert_eq!(Decimal::parse(""), Err(DecimalError::Empty));
        assert_eq!(Decimal::parse("-"), Err(DecimalError::Empty));
        assert_eq!(Decimal::parse("."), Err(DecimalError::Empty));
        assert_eq!(Decimal::parse("1.2.3"), Err(DecimalError::InvalidChar));
        assert_eq!(Decimal::parse("1,5"), Err(DecimalError::InvalidChar));
        assert_eq!(Decimal::parse("1e"), Err(DecimalError::InvalidChar));
        assert_eq!(
            Decimal::parse("99999999999999999999"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            Decimal::parse("0.0000000000000000001"),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(Decimal::parse("1e999"), Err(DecimalError::Overflow));
        assert_eq!(Decimal::parse("1e+"), Err(DecimalError::InvalidChar));
        assert_eq!(Decimal::parse("1e30"), Err(DecimalError::Overflow));
    }

    #[test]
    fn subtracts_exactly_across_scales() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(
            d("100.02").checked_sub(d("100.01")).unwrap().to_string(),
            "0.01"
        );
        assert_eq!(d("5").checked_sub(d("4.5")).unwrap().to_string(), "0.5");
        assert_eq!(d("1.0").checked_sub(d("2")).unwrap().to_string(), "-1.0");
        assert_eq!(
            d("-9223372036854775807").checked_sub(d("9223372036854775807")),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn halves_exactly() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("0.01").midpoint(d("0.02")).unwrap().to_string(), "0.015");
        assert_eq!(
            d("100.00").midpoint(d("100.02")).unwrap().to_string(),
            "100.01"
        );
        assert_eq!(d("1").midpoint(d("2.5")).unwrap().to_string(), "1.75");
        // Both near the top of the range: the sum overflows 64 bits, its half does not.
        let max = Decimal::new(i64::MAX - 1, 0).unwrap();
        assert_eq!(max.midpoint(max).unwrap(), max);
        // An odd sum at the finest scale has no 19th digit to hold the half.
        let finest = d("0.000000000000000001");
        assert_eq!(
            finest.midpoint(Decimal::ZERO),
            Err(DecimalError::TooPrecise)
        );
    }

    #[test]
    fn extreme_values_format() {
        let min = Decimal::new(i64::MIN + 1, 18).unwrap();
        assert_eq!(min.to_string(), "-9.223372036854775807");
        let max = Decimal::new(i64::MAX, 0).unwrap();
        assert_eq!(max.to_string(), "9223372036854775807");
    }
}
