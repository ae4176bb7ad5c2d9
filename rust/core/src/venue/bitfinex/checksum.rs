//! Bitfinex's book checksum: a CRC32 of the book's top levels written the way JavaScript
//! writes numbers.

use crate::book::Book;
use crate::checksum::crc32;
use crate::decimal::Decimal;

/// Levels per side a checksum covers.
pub const CHECKSUM_DEPTH: usize = 25;

/// The CRC32 Bitfinex sends for a book: top 25 levels, `bid:amount:ask:-amount:...`.
/// `text` is a reusable buffer; it holds the checksummed text afterwards.
pub fn book_checksum(book: &Book, text: &mut String) -> u32 {
    text.clear();
    let mut bids = book.bids().take(CHECKSUM_DEPTH);
    let mut asks = book.asks().take(CHECKSUM_DEPTH);
    loop {
        let (bid, ask) = (bids.next(), asks.next());
        if bid.is_none() && ask.is_none() {
            break;
        }
        for (level, negate) in [(bid, false), (ask, true)] {
            if let Some(level) = level {
                if !text.is_empty() {
                    text.push(':');
                }
                write_js_number(level.price, false, text);
                text.push(':');
                write_js_number(level.qty, negate, text);
            }
        }
    }
    crc32(text.as_bytes())
}

/// Writes a decimal the way JavaScript's `String(number)` does for the same value: shortest
/// digits (trailing zeros dropped), exponent form when the value is below 1e-6.
pub fn write_js_number(value: Decimal, negate: bool, out: &mut String) {
    let mut mantissa = value.mantissa().unsigned_abs();
    let mut scale = value.scale() as i32;
    if mantissa == 0 {
        out.push('0');
        return;
    }
    while scale > 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        scale -= 1;
    }
    if value.is_negative() != negate {
        out.push('-');
    }
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    while mantissa > 0 {
        pos -= 1;
        buf[pos] = b'0' + (mantissa % 10) as u8;
        mantissa /= 10;
    }
    let digits = &buf[pos..];
    let k = digits.len() as i32;
    // value = 0.d1d2..dk * 10^n
    let n = k - scale;
    let push = |out: &mut String, bytes: &[u8]| {
        for &b in bytes {
            out.push(b as char);
        }
    };
    if n >= k {
        // Integer (scale is 0 here, as trailing zeros of the fraction were dropped).
        push(out, digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if n > 0 {
        push(out, &digits[..n as usize]);
        out.push('.');
        push(out, &digits[n as usize..]);
    } else if n > -6 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        push(out, digits);
    } else {
        push(out, &digits[..1]);
        if k > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        out.push_str("e-");
        let exp = 1 - n;
        let mut ebuf = [0u8; 4];
        let mut epos = ebuf.len();
        let mut e = exp as u32;
        while e > 0 {
            epos -= 1;
            ebuf[epos] = b'0' + (e % 10) as u8;
            e /= 10;
        }
        push(out, &ebuf[epos..]);
    }
}
