//! The readers of the times venues write as text: RFC 3339 (Coinbase, Kraken v2) and decimal
//! seconds since the epoch (Kraken v1).
//!
//! The one rule for RFC 3339, from what both venues document ("RFC3339") and send (always UTC,
//! `Z`, 0 to 9 fraction digits): the grammar of RFC 3339 section 5.6, so a numeric offset needs
//! its colon (`+01:00`; ISO 8601's basic `+0100` is refused), the date must exist in the
//! calendar (no 30 February), and `t`/`z` in lower case and a space for `T` are taken, as its
//! notes allow. Kraken's own reader, replaced by this one, took impossible dates (31 April) and
//! refused every offset; Coinbase's took `+0100`. Neither venue sends any of those.

const NS_PER_SEC: u64 = 1_000_000_000;

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to Unix nanoseconds, without allocating.
/// Digits past nanoseconds are truncated; `None` for malformed text or times before 1970.
pub fn parse_iso8601_ns(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let expect = |at: usize, what: &[u8]| b.get(at).is_some_and(|c| what.contains(c));
    let year = number(0, 4)?;
    let month = number(5, 2)?;
    let day = number(8, 2)?;
    let hour = number(11, 2)?;
    let minute = number(14, 2)?;
    let second = number(17, 2)?;
    if !(expect(4, b"-")
        && expect(7, b"-")
        && expect(10, b"Tt ")
        && expect(13, b":")
        && expect(16, b":"))
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: u64 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let mut kept = 0u32;
        let first = at;
        while let Some(c) = b.get(at).filter(|c| c.is_ascii_digit()) {
            if kept < 9 {
                nanos = nanos * 10 + u64::from(c - b'0');
                kept += 1;
            }
            at += 1;
        }
        if at == first {
            return None;
        }
        nanos *= 10u64.pow(9 - kept);
    }
    let offset_secs: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = number(at + 1, 2)?;
            if !expect(at + 3, b":") {
                return None;
            }
            let minutes = number(at + 4, 2)?;
            at += 6;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if at != b.len() {
        return None;
    }
    let days = days_since_epoch(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    secs.checked_mul(NS_PER_SEC)?.checked_add(nanos)
}

/// Seconds since the epoch with an optional fraction (`"1618678142.557535"`, Kraken v1) to
/// nanoseconds; digits past the ninth decimal are dropped. No sign, no exponent, no allocation.
pub fn parse_epoch_seconds_ns(text: &str) -> Option<u64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos = (0..9).fold(0u64, |acc, i| {
        let digit = frac.as_bytes().get(i).map_or(0, |c| u64::from(c - b'0'));
        acc * 10 + digit
    });
    secs.checked_mul(NS_PER_SEC)?.checked_add(nanos)
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date. Years are counted from March, so the
/// leap day ends a year; 400-year eras of 146,097 days keep the arithmetic in small integers.
fn days_since_epoch(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_to_unix_ns() {
        assert_eq!(parse_iso8601_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601_ns("2026-08-09T21:05:48.228568804Z"),
            Some(1_786_309_548_228_568_804)
        );
        assert_eq!(
            parse_iso8601_ns("2026-08-09T21:05:48.2Z"),
            Some(1_786_309_548_200_000_000)
        );
        assert_eq!(
            parse_iso8601_ns("2026-08-09T21:05:48.514318Z"),
            Some(1_786_309_548_514_318_000)
        );
        // Past nanoseconds, digits are dropped, not rounded.
        assert_eq!(
            parse_iso8601_ns("2026-08-09T21:05:48.1234567899Z"),
            Some(1_786_309_548_123_456_789)
        );
        // Leap day, offsets.
        assert_eq!(
            parse_iso8601_ns("2000-02-29T12:00:00+01:00"),
            Some(951_822_000_000_000_000)
        );
        assert_eq!(
            parse_iso8601_ns("1999-12-31T23:59:59.000000001z"),
            Some(946_684_799_000_000_001)
        );
        assert_eq!(
            parse_iso8601_ns("2000-01-01T01:29:59-01:30"),
            Some(946_695_599_000_000_000)
        );
        // The forms both venues send: Kraken v2 (microseconds) and Coinbase (0 to 9 digits).
        assert_eq!(
            parse_iso8601_ns("2023-10-06T17:35:55.440295Z"),
            Some(1_696_613_755_440_295_000)
        );
        assert_eq!(
            parse_iso8601_ns("2026-08-09T21:05:48Z"),
            Some(1_786_309_548_000_000_000)
        );
        assert_eq!(parse_iso8601_ns("1970-01-01T00:00:00.000000001Z"), Some(1));
        for bad in [
            "",
            "2026-08-09",
            "2026-08-09T21:05:48",
            "2026-08-09T21:05:48.Z",
            "2026-13-09T21:05:48Z",
            "2026-02-29T21:05:48Z",
            "2026-08-09T24:00:00Z",
            "2026-08-09X21:05:48Z",
            "2026-08-09T21:05:48Zjunk",
            "1969-12-31T23:59:59Z",
            "2026-08-09T21:05:4٨Z",
            "+026-08-09T21:05:48Z",
            // RFC 3339 offsets have a colon; basic-format ISO 8601 is not taken.
            "2000-01-01T01:29:59-0130",
            "2000-01-01T01:29:59+01",
            "2000-01-01T01:29:59+01:3",
            // Dates that do not exist (Kraken's old reader took these).
            "2023-04-31T00:00:00Z",
            "2023-02-30T00:00:00Z",
            // Go's time.String() form, which Coinbase puts in heartbeats (not a time we read).
            "2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.260485341",
        ] {
            assert_eq!(parse_iso8601_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_seconds_to_unix_ns() {
        assert_eq!(
            parse_epoch_seconds_ns("1618678142.557535"),
            Some(1_618_678_142_557_535_000)
        );
        assert_eq!(
            parse_epoch_seconds_ns("1618678142"),
            Some(1_618_678_142_000_000_000)
        );
        assert_eq!(parse_epoch_seconds_ns("1.1234567891"), Some(1_123_456_789));
        for bad in ["", ".5", "1.2.3", "-1", "1e9", "+1", "99999999999999999999"] {
            assert_eq!(parse_epoch_seconds_ns(bad), None, "{bad}");
        }
    }
}
