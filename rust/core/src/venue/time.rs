//! The one ISO-8601 reader of the venues that stamp events with text (Coinbase, Kraken v2).

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
            at += 3;
            if b.get(at) == Some(&b':') {
                at += 1;
            }
            let minutes = number(at, 2)?;
            at += 2;
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
            parse_iso8601_ns("2000-01-01T01:29:59-0130"),
            Some(946_695_599_000_000_000)
        );
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
        ] {
            assert_eq!(parse_iso8601_ns(bad), None, "{bad}");
        }
    }
}
