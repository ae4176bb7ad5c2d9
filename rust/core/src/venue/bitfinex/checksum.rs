//! Bitfinex's book checksum: a CRC32 of the book's top levels written the way JavaScript
//! writes numbers.

use crate::book::Book;
use crc32fast::Hasher;

use crate::checksum::{TextBuf, BLOCK_BYTES, OVERHANG};
use crate::decimal::{pow10, Decimal};

/// Levels per side a checksum covers.
pub const CHECKSUM_DEPTH: usize = 25;

/// The longest number JavaScript writes for a `Decimal`: a sign, 19 digits, a point and an
/// exponent of `e-` and two digits (the plain forms are shorter).
const MAX_JS_TEXT: usize = 25;

/// The CRC32 Bitfinex sends for a book: top 25 levels, `bid:amount:ask:-amount:...`.
/// `text` is a reusable buffer; it holds the checksummed text afterwards.
pub fn book_checksum(book: &Book, text: &mut String) -> u32 {
    text.clear();
    let mut crc = Hasher::new();
    let mut buf = TextBuf::<BLOCK_BYTES>::new();
    let mut bids = book.bids().take(CHECKSUM_DEPTH);
    let mut asks = book.asks().take(CHECKSUM_DEPTH);
    loop {
        let (bid, ask) = (bids.next(), asks.next());
        if bid.is_none() && ask.is_none() {
            break;
        }
        if !buf.has_room(2 * (2 * MAX_JS_TEXT + 2)) {
            crc.update(buf.as_bytes());
            text.push_str(ascii_text(buf.as_bytes()));
            buf.clear();
        }
        for (level, negate) in [(bid, false), (ask, true)] {
            if let Some(level) = level {
                push_js_number(&mut buf, level.price, false);
                buf.push(b':');
                push_js_number(&mut buf, level.qty, negate);
                buf.push(b':');
            }
        }
    }
    // Each level was followed by a separator; the text ends without one.
    buf.pop();
    crc.update(buf.as_bytes());
    text.push_str(ascii_text(buf.as_bytes()));
    crc.finalize()
}

/// Writes a decimal the way JavaScript's `String(number)` does for the same value: shortest
/// digits (trailing zeros dropped), exponent form when the value is below 1e-6.
pub fn write_js_number(value: Decimal, negate: bool, out: &mut String) {
    let mut buf = TextBuf::<{ MAX_JS_TEXT + OVERHANG }>::new();
    push_js_number(&mut buf, value, negate);
    out.push_str(ascii_text(buf.as_bytes()));
}

/// The writers make only ASCII digits, points, signs and separators.
fn ascii_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn push_js_number<const N: usize>(out: &mut TextBuf<N>, value: Decimal, negate: bool) {
    let mut mantissa = value.mantissa().unsigned_abs();
    let mut scale = value.scale();
    if mantissa == 0 {
        out.push(b'0');
        return;
    }
    while scale > 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        scale -= 1;
    }
    if value.is_negative() != negate {
        out.push(b'-');
    }
    // Below 1e-6 means fewer digits than `scale - 6`.
    if scale > 6 && mantissa < pow10(scale - 6) as u64 {
        push_exponent_form(out, mantissa, scale);
    } else {
        // From here JavaScript's plain forms are the fixed-point text of the trimmed digits,
        // `0.000ddd` included.
        out.push_fixed(mantissa, scale as usize);
    }
}

/// `d[.ddd]e-x` for `mantissa * 10^-scale` below 1e-6 (rare: dust sizes).
#[cold]
fn push_exponent_form<const N: usize>(out: &mut TextBuf<N>, mantissa: u64, scale: u8) {
    let mut digits = TextBuf::<{ 19 + OVERHANG }>::new();
    digits.push_digits(mantissa, 0);
    let digits = digits.as_bytes();
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        for &digit in &digits[1..] {
            out.push(digit);
        }
    }
    out.push(b'e');
    out.push(b'-');
    // value = d.ddd * 10^(k - 1 - scale), k digits.
    let exponent = scale as u64 + 1 - digits.len() as u64;
    let mut exponent_text = TextBuf::<{ 3 + OVERHANG }>::new();
    exponent_text.push_digits(exponent, 1);
    for &digit in exponent_text.as_bytes() {
        out.push(digit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(text: &str, negate: bool) -> String {
        let mut out = String::new();
        write_js_number(Decimal::parse(text).unwrap(), negate, &mut out);
        out
    }

    /// Long numbers on 25 levels a side make a text longer than one buffer: it is hashed in
    /// two calls and kept whole.
    #[test]
    fn a_text_longer_than_a_buffer_is_one_text() {
        use crate::book::Side;
        let mut book = Book::new();
        let mut parts = Vec::new();
        for i in 0..25 {
            let bid = Decimal::new(123_456_789_123_456_789 - i, 9).unwrap();
            let ask = Decimal::new(123_456_789_123_456_800 + i, 9).unwrap();
            let qty = Decimal::new(123_456_789_012_345_671 + i, 18).unwrap();
            book.apply(Side::Bid, bid, qty).unwrap();
            book.apply(Side::Ask, ask, qty).unwrap();
            let (mut bid_text, mut ask_text, mut qty_text) =
                (String::new(), String::new(), String::new());
            write_js_number(bid, false, &mut bid_text);
            write_js_number(ask, false, &mut ask_text);
            write_js_number(qty, false, &mut qty_text);
            parts.push(format!("{bid_text}:{qty_text}:{ask_text}:-{qty_text}"));
        }
        let want = parts.join(":");
        assert!(want.len() > BLOCK_BYTES - 2 * (2 * MAX_JS_TEXT + 2) - OVERHANG);
        let mut text = String::new();
        assert_eq!(
            book_checksum(&book, &mut text),
            crate::checksum::crc32(want.as_bytes())
        );
        assert_eq!(text, want);
    }

    #[test]
    fn edge_values_read_as_javascript_writes_them() {
        for (text, negate, want) in [
            // The 1e-6 boundary, with one digit and with many.
            ("0.000001", false, "0.000001"),
            ("0.0000019", false, "0.0000019"),
            ("0.00000099", false, "9.9e-7"),
            ("0.000000123456789012", false, "1.23456789012e-7"),
            ("0.000000000000000001", false, "1e-18"),
            // Long mantissas: past one and two words of digits, the point inside and past
            // the first word.
            ("123456789.123456789", false, "123456789.123456789"),
            ("9223372036854775807", false, "9223372036854775807"),
            ("0.922337203685477580", false, "0.92233720368547758"),
            ("1.000000000000000000", false, "1"),
            ("-0.25", true, "0.25"),
            ("-0.000000050", false, "-5e-8"),
            ("0.000", true, "0"),
        ] {
            assert_eq!(js(text, negate), want, "{text}");
        }
    }
}
