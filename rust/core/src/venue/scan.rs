//! A pull scanner over one JSON frame, for the hottest decoders.
//!
//! serde_json validates and unescapes every string and builds each number twice; a depth frame
//! needs neither. The scanner walks the bytes once, hands out raw slices of strings and numbers,
//! and skips what the caller does not ask for. It is strict about structure (commas, colons,
//! brackets, literals, number grammar, nothing after the value, a nesting limit), so malformed
//! frames are refused as serde_json would refuse them. String contents are not UTF-8-checked
//! unless the caller asks for a `&str` (`str_value`); escapes are kept as written, so an escaped
//! key simply matches nothing.

use crate::decimal::{Decimal, DecimalError};
use crate::error::FrameError;

/// A scan failure: small and `Copy`, so the hot paths return it in registers; it becomes a
/// `FrameError` (with its message) only when a frame is actually refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    pub pos: usize,
    pub what: &'static str,
}

impl From<ScanError> for FrameError {
    #[cold]
    fn from(e: ScanError) -> Self {
        FrameError::Json(format!("{} at byte {}", e.what, e.pos))
    }
}

/// Deeper nesting than any venue sends; refusing it bounds the recursion in `skip_value`.
const MAX_DEPTH: u32 = 64;

/// The index of the first byte at or after `i` that is a quote, a backslash or a control
/// character (or `buf.len()`). Eight bytes at a time: a word holds such a byte exactly when one
/// of the three classic "has a zero byte" tests on it fires.
#[inline(always)]
fn skip_plain_string_bytes(buf: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let stop = string_stops(w);
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && !STRING_STOP[buf[i] as usize] {
        i += 1;
    }
    i
}

/// The bytes of `word` that end a plain run of string bytes (a quote, a backslash, a control
/// character), flagged by their high bit; exact for the first such byte, which is all the
/// callers look at (a borrow can only flag bytes after a flagged one).
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let quote = w ^ (ONES * b'"' as u64);
    let slash = w ^ (ONES * b'\\' as u64);
    let stop = (quote.wrapping_sub(ONES) & !quote)
        | (slash.wrapping_sub(ONES) & !slash)
        | (w.wrapping_sub(ONES * 0x20) & !w);
    stop & HIGHS
}

/// `digits[.digits]` starting at `start`, at most 18 digits in all: the decimal and where it
/// ends. Runs of eight fraction digits (Binance prints eight) are converted eight at a time.
#[inline(always)]
fn plain_decimal(buf: &[u8], start: usize) -> Option<(Decimal, usize)> {
    let mut i = start;
    let mut mantissa: i64 = 0;
    let mut digits = 0usize;
    while let Some(&c) = buf.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if digits == 18 {
            return None;
        }
        mantissa = mantissa * 10 + (c - b'0') as i64;
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if buf.get(i) != Some(&b'.') {
        return Some((Decimal::new(mantissa, 0).ok()?, i));
    }
    i += 1;
    let frac_start = i;
    while digits + 8 <= 18 {
        let Some(chunk) = buf.get(i..i + 8) else {
            break;
        };
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let Some(value) = eight_digits(word) else {
            break;
        };
        mantissa = mantissa * 100_000_000 + value as i64;
        digits += 8;
        i += 8;
    }
    while let Some(&c) = buf.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if digits == 18 {
            return None;
        }
        mantissa = mantissa * 10 + (c - b'0') as i64;
        digits += 1;
        i += 1;
    }
    if i == frac_start {
        return None;
    }
    Some((Decimal::new(mantissa, (i - frac_start) as u8).ok()?, i))
}

const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Eight bytes at `at` as a little-endian word, if the buffer holds them.
#[inline(always)]
fn word_at(buf: &[u8], at: usize) -> Option<u64> {
    let chunk = buf.get(at..at + 8)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// How many of the word's bytes, from the first, are ASCII digits (8 if all are).
#[inline(always)]
fn leading_digits(word: u64) -> usize {
    // A byte is a digit when its high nibble is 3 and adding 6 does not carry out of its low
    // one. A carry out of a non-digit byte can spoil only the bytes after it, which are not
    // looked at: the first non-zero byte of `not_digit` is exact.
    let not_digit = ((word & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS)
        | ((word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `count` (1 to 8) bytes of `word`, all known to be digits: moved to
/// the top of the word and led by ASCII zeros, they read as eight digits.
#[inline(always)]
fn first_digits(word: u64, count: usize) -> u64 {
    let word = if count == 8 {
        word
    } else {
        (word << (8 * (8 - count))) | (ZEROS >> (8 * count))
    };
    digits_value(word)
}

/// The value of eight ASCII digits (checked by the caller) read as a little-endian word.
/// Pairs, then quads, then the whole: three multiplications instead of eight.
#[inline(always)]
fn digits_value(word: u64) -> u64 {
    let v = word - ZEROS;
    // First byte is the most significant digit (little-endian load).
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0x0000_0000_FFFF_FFFF
}

/// Each byte of `word` that is not an ASCII digit, flagged by its high bit. Exact for every
/// byte (unlike `leading_digits`, which is exact only up to the first): the tests run on the
/// low seven bits, where adding cannot carry into the next byte.
#[inline(always)]
fn non_digit_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let low = word & LOW7;
    let at_least_zero = low.wrapping_add(ONES * (0x80 - b'0' as u64));
    let past_nine = low.wrapping_add(ONES * (0x80 - b'9' as u64 - 1));
    (!at_least_zero | past_nine | word) & HIGHS
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The common shape of a quoted venue number, `1-7 digits[.1-8 digits]"`, from `start` (just
/// past the opening quote): two word loads at most, no loop. A number of up to seven digits
/// (USDⓈ-M's and COIN-M's) is one conversion: the point is found in the first word and the
/// fraction's digits are moved down over it. The decimal and the index just past the closing
/// quote; `None` for anything else (the general path then reads it).
#[inline(always)]
fn short_quoted_decimal(buf: &[u8], start: usize) -> Option<(Decimal, usize)> {
    let head = word_at(buf, start)?;
    let stops = non_digit_bytes(head);
    let int_len = (stops.trailing_zeros() / 8) as usize;
    if int_len == 0 || int_len == 8 {
        return None;
    }
    match (head >> (8 * int_len)) as u8 {
        b'"' => Some((
            Decimal::new(first_digits(head, int_len) as i64, 0).ok()?,
            start + int_len + 1,
        )),
        b'.' => {
            let after_point = stops & (stops - 1);
            if after_point != 0 {
                // The closing quote is in the first word too: the fraction's digits moved
                // down over the point make one run of at most six digits.
                let quote_at = (after_point.trailing_zeros() / 8) as usize;
                let scale = quote_at - int_len - 1;
                if scale == 0 || (head >> (8 * quote_at)) as u8 != b'"' {
                    return None;
                }
                let int_mask = (1u64 << (8 * int_len)) - 1;
                let joined = (head & int_mask) | ((head >> 8) & !int_mask);
                let mantissa = first_digits(joined, quote_at - 1);
                return Some((
                    Decimal::new(mantissa as i64, scale as u8).ok()?,
                    start + quote_at + 1,
                ));
            }
            // A longer fraction (spot prints eight digits): one word of its own.
            let frac_start = start + int_len + 1;
            let tail = word_at(buf, frac_start)?;
            let frac_len = leading_digits(tail);
            if frac_len == 0 || *buf.get(frac_start + frac_len)? != b'"' {
                return None;
            }
            let mantissa =
                first_digits(head, int_len) * POW10_U64[frac_len] + first_digits(tail, frac_len);
            Some((
                Decimal::new(mantissa as i64, frac_len as u8).ok()?,
                frac_start + frac_len + 1,
            ))
        }
        _ => None,
    }
}

/// An unsigned integer of 1 to 15 digits from `start` (ids and millisecond times are 10 to 13),
/// ended by a JSON delimiter: two word loads, no loop. The value and where it ends; `None` for
/// anything else (the general path then reads it).
#[inline(always)]
fn short_u64(buf: &[u8], start: usize) -> Option<(u64, usize)> {
    let head = word_at(buf, start)?;
    let head_len = leading_digits(head);
    // JSON allows no leading zero ("0" alone is fine).
    if head_len == 0 || (head_len > 1 && head as u8 == b'0') {
        return None;
    }
    let (value, end) = if head_len < 8 {
        (first_digits(head, head_len), start + head_len)
    } else {
        let tail = word_at(buf, start + 8)?;
        let tail_len = leading_digits(tail);
        match tail_len {
            0 => (digits_value(head), start + 8),
            8 => return None,
            _ => (
                digits_value(head) * POW10_U64[tail_len] + first_digits(tail, tail_len),
                start + 8 + tail_len,
            ),
        }
    };
    matches!(
        buf.get(end),
        None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
    )
    .then_some((value, end))
}

const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The value of eight ASCII digits read as a little-endian word, or None if any byte is not a
/// digit. Pairs, then quads, then the whole: three multiplications instead of eight.
#[inline(always)]
fn eight_digits(word: u64) -> Option<u64> {
    // Every byte in 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    let all_digits = (word & 0xF0F0_F0F0_F0F0_F0F0) == ZEROS
        && (word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == ZEROS;
    if !all_digits {
        return None;
    }
    Some(digits_value(word))
}

/// Bytes that end the fast part of a string scan: `"`, `\\` and control characters.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// An unquoted venue number in its common shape, `digits[.digits]` (at most 18 digits, no
/// leading zero) ended by a JSON delimiter, from `start`: one loop over the digits. (Word-wide
/// digit tricks cost more than they save on the three- to eight-digit numbers these venues
/// send.) `None` for anything else (the general path then reads it).
#[inline(always)]
fn bare_decimal(buf: &[u8], start: usize) -> Option<(Decimal, usize)> {
    let mut i = start;
    let mut mantissa: u64 = 0;
    while let Some(&c) = buf.get(i) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        // Wraps only past 19 digits, which the length check below refuses.
        mantissa = mantissa.wrapping_mul(10).wrapping_add(digit as u64);
        i += 1;
    }
    let int_len = i - start;
    if int_len == 0 || (int_len > 1 && buf[start] == b'0') {
        return None;
    }
    let mut scale = 0;
    if buf.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while let Some(&c) = buf.get(i) {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(digit as u64);
            i += 1;
        }
        scale = i - frac_start;
        if scale == 0 {
            return None;
        }
    }
    if int_len + scale > 18
        || !matches!(
            buf.get(i),
            None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
        )
    {
        return None;
    }
    Some((Decimal::new(mantissa as i64, scale as u8).ok()?, i))
}

/// `["price","qty"` at `at` with both numbers short and plain: the two and the index just
/// past the quantity's closing quote.
#[inline(always)]
fn short_pair_at(buf: &[u8], at: usize) -> Option<(Decimal, Decimal, usize)> {
    if buf.get(at..at + 2)? != b"[\"" {
        return None;
    }
    let (price, end) = short_quoted_decimal(buf, at + 2)?;
    if buf.get(end..end + 2)? != b",\"" {
        return None;
    }
    let (qty, end) = short_quoted_decimal(buf, end + 2)?;
    Some((price, qty, end))
}

pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Scanner { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn error(&self, what: &'static str) -> ScanError {
        ScanError {
            pos: self.pos,
            what,
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.pos += 1;
        }
    }

    /// The next non-space byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.buf.get(self.pos).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Result<(), ScanError> {
        // Venue frames are compact: test the byte before looking for white space.
        if self.buf.get(self.pos) == Some(&c) || self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(c))
        }
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, c: u8) -> ScanError {
        self.error(match c {
            b'{' => "expected '{'",
            b'[' => "expected '['",
            b':' => "expected ':'",
            b'"' => "expected a string",
            _ => "unexpected character",
        })
    }

    /// Only white space may follow the value.
    pub fn finish(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    pub fn begin_object(&mut self) -> Result<(), ScanError> {
        self.eat(b'{')
    }

    pub fn begin_array(&mut self) -> Result<(), ScanError> {
        self.eat(b'[')
    }

    /// The next key of an object (raw bytes), or None at its end. `first` says whether this is
    /// the first call for the object (no comma expected before it).
    #[inline(always)]
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<&'a [u8]>, ScanError> {
        // Inlined into the callers' key loops, the common compact key costs no call.
        if let Some(key) = self.compact_key(*first) {
            *first = false;
            return Ok(Some(key));
        }
        self.next_key_walked(first)
    }

    /// `next_key` for any spacing or key: the general walk.
    #[inline(never)]
    fn next_key_walked(&mut self, first: &mut bool) -> Result<Option<&'a [u8]>, ScanError> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !*first => self.pos += 1,
            Some(_) if *first => {}
            _ => return Err(self.error("expected ',' or '}'")),
        }
        *first = false;
        let key = self.string()?;
        self.eat(b':')?;
        Ok(Some(key))
    }

    /// A key of up to seven plain bytes written compactly (`,"key":`, or `"key":` first),
    /// found with one word load; `None` (nothing consumed) for anything else, which the
    /// general walk of `next_key` then reads.
    #[inline(always)]
    fn compact_key(&mut self, first: bool) -> Option<&'a [u8]> {
        let buf = self.buf;
        let at = self.pos + usize::from(!first);
        if !first && *buf.get(self.pos)? != b',' {
            return None;
        }
        if *buf.get(at)? != b'"' {
            return None;
        }
        let word = word_at(buf, at + 1)?;
        let len = (string_stops(word).trailing_zeros() / 8) as usize;
        if len == 8 || (word >> (8 * len)) as u8 != b'"' || *buf.get(at + len + 2)? != b':' {
            return None;
        }
        self.pos = at + len + 3;
        Some(&buf[at + 1..at + 1 + len])
    }

    /// Whether an array has another element (consuming the comma), false at its end.
    #[inline]
    pub fn next_element(&mut self, first: &mut bool) -> Result<bool, ScanError> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b',') if !*first => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            _ => Err(self.error("expected ',' or ']'")),
        }
    }

    /// The raw contents of a string value (between the quotes, escapes as written).
    #[inline]
    pub fn string(&mut self) -> Result<&'a [u8], ScanError> {
        self.eat(b'"')?;
        let start = self.pos;
        let buf = self.buf;
        let mut i = self.pos;
        loop {
            i = skip_plain_string_bytes(buf, i);
            match buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(&buf[start..i]);
                }
                Some(b'\\') => i += 2,
                Some(_) => {
                    self.pos = i;
                    return Err(self.error("control character in string"));
                }
                None => {
                    self.pos = buf.len();
                    return Err(self.error("unterminated string"));
                }
            }
        }
    }

    /// A quoted decimal (`"2683.80000000"`) parsed while it is scanned: one pass over the
    /// digits instead of finding the string's end and parsing it again. Anything unusual
    /// (signs, exponents, 19+ digits, escapes) goes through the general parser.
    #[inline]
    pub fn quoted_decimal(&mut self) -> Result<Result<Decimal, DecimalError>, ScanError> {
        self.eat(b'"')?;
        let buf = self.buf;
        let start = self.pos;
        if let Some((decimal, end)) = short_quoted_decimal(buf, start) {
            self.pos = end;
            return Ok(Ok(decimal));
        }
        if let Some((decimal, end)) = plain_decimal(buf, start) {
            if buf.get(end) == Some(&b'"') {
                self.pos = end + 1;
                return Ok(Ok(decimal));
            }
        }
        self.pos = start - 1;
        let raw = self.string()?;
        Ok(Decimal::parse_bytes(raw))
    }

    /// A `["price","qty"]` level in its common shape (compact, both numbers short and plain),
    /// read without the general walk; `None` (nothing consumed) for anything else.
    #[inline(always)]
    pub fn short_level(&mut self) -> Option<(Decimal, Decimal)> {
        let (price, qty, end) = self.short_pair()?;
        if *self.buf.get(end)? != b']' {
            return None;
        }
        self.pos = end + 1;
        Some((price, qty))
    }

    /// As `short_level`, for venues whose levels go on after the quantity (OKX adds order
    /// counts): what follows it is skipped. `Ok(None)`, nothing consumed, when the price and
    /// quantity are not in the common shape.
    #[inline(always)]
    pub fn short_level_skipping_extras(&mut self) -> Result<Option<(Decimal, Decimal)>, ScanError> {
        let Some((price, qty, end)) = self.short_pair() else {
            return Ok(None);
        };
        self.pos = end;
        let mut first = false;
        while self.next_element(&mut first)? {
            self.skip_value()?;
        }
        Ok(Some((price, qty)))
    }

    /// `["price","qty"` with both numbers short and plain: the two and the index just past
    /// the quantity's closing quote.
    #[inline(always)]
    fn short_pair(&self) -> Option<(Decimal, Decimal, usize)> {
        short_pair_at(self.buf, self.pos)
    }

    /// The run of compact levels (`["price","qty"]`, both numbers short and plain) that comes
    /// next in a list of levels, each handed to `each`, read in one tight loop over local
    /// state: the level lists are most of a depth frame. Stops before the first element in any
    /// other shape (or the list's end), where `next_element` goes on; `first` is as for it.
    #[inline(always)]
    pub fn short_levels(&mut self, first: &mut bool, mut each: impl FnMut(Decimal, Decimal)) {
        let buf = self.buf;
        let mut at = self.pos;
        let mut comma = !*first;
        loop {
            let start = if comma {
                if buf.get(at) != Some(&b',') {
                    break;
                }
                at + 1
            } else {
                at
            };
            let Some((price, qty, end)) = short_pair_at(buf, start) else {
                break;
            };
            if buf.get(end) != Some(&b']') {
                break;
            }
            each(price, qty);
            at = end + 1;
            comma = true;
        }
        if at != self.pos {
            self.pos = at;
            *first = false;
        }
    }

    /// A string value as `&str` (checked UTF-8, no escapes allowed: venues never escape the
    /// short identifiers we read this way).
    pub fn str_value(&mut self) -> Result<&'a str, ScanError> {
        let raw = self.string()?;
        if raw.contains(&b'\\') {
            return Err(self.error("escaped identifier"));
        }
        std::str::from_utf8(raw).map_err(|_| self.error("invalid UTF-8"))
    }

    /// As `str_value`, but a string equal to `common` is that string, with no escape or UTF-8
    /// check to make: for a field whose value is nearly always the same (an event's name).
    #[inline]
    pub fn str_value_mostly(&mut self, common: &'static str) -> Result<&'a str, ScanError> {
        let raw = self.string()?;
        if raw == common.as_bytes() {
            return Ok(common);
        }
        if raw.contains(&b'\\') {
            return Err(self.error("escaped identifier"));
        }
        std::str::from_utf8(raw).map_err(|_| self.error("invalid UTF-8"))
    }

    /// The raw text of a number value, checked against the JSON number grammar.
    #[inline]
    pub fn number(&mut self) -> Result<&'a [u8], ScanError> {
        self.skip_ws();
        let start = self.pos;
        let b = self.buf;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int_len = i - int_start;
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac_start {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start {
                return Err(self.error("invalid number"));
            }
        }
        self.pos = i;
        Ok(&b[start..i])
    }

    /// An unsigned integer value.
    #[inline(always)]
    pub fn u64(&mut self) -> Result<u64, ScanError> {
        // Ids and times are short: inlined, they cost no call.
        if let Some((value, end)) = short_u64(self.buf, self.pos) {
            self.pos = end;
            return Ok(value);
        }
        self.u64_walked()
    }

    /// `u64` for any other shape: longer, spaced, or not an unsigned integer at all.
    #[inline(never)]
    fn u64_walked(&mut self) -> Result<u64, ScanError> {
        // Up to 19 plain digits followed by a delimiter.
        let buf = self.buf;
        let start = self.pos;
        let mut i = start;
        let mut value: u64 = 0;
        while i < buf.len() && i - start < 19 && buf[i].is_ascii_digit() {
            value = value * 10 + (buf[i] - b'0') as u64;
            i += 1;
        }
        let len = i - start;
        let delimited = matches!(
            buf.get(i),
            None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
        );
        if len > 0 && delimited && (len == 1 || buf[start] != b'0') {
            self.pos = i;
            return Ok(value);
        }
        let text = self.number()?;
        if text.len() <= 19 && text.iter().all(u8::is_ascii_digit) {
            // 19 digits cannot overflow a u64: no checks per digit.
            return Ok(text.iter().fold(0u64, |v, &c| v * 10 + (c - b'0') as u64));
        }
        let mut value: u64 = 0;
        for &c in text {
            if !c.is_ascii_digit() {
                return Err(self.error("expected an unsigned integer"));
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add((c - b'0') as u64))
                .ok_or_else(|| self.error("integer out of range"))?;
        }
        Ok(value)
    }

    /// `null` (true) or something else (false, nothing consumed).
    pub fn null(&mut self) -> Result<bool, ScanError> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    pub fn bool(&mut self) -> Result<bool, ScanError> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => Err(self.error("expected true or false")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Skips any value, checking its structure.
    pub fn skip_value(&mut self) -> Result<(), ScanError> {
        // Most skipped values are strings (Binance's stream names, COIN-M's pair).
        if self.buf.get(self.pos) == Some(&b'"') {
            return self.string().map(|_| ());
        }
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip_nested(depth + 1)?;
                }
                Ok(())
            }
            Some(b'[') => {
                self.pos += 1;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip_nested(depth + 1)?;
                }
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of frame")),
        }
    }

    /// An unsigned integer sent as a number or as a string of plain digits (Bitget, AscendEX
    /// and KuCoin quote their millisecond times). `Ok(None)` when the string holds anything
    /// else (signs, spaces, escapes, more than a u64): the caller's general path decides then.
    pub fn u64_or_quoted(&mut self) -> Result<Option<u64>, ScanError> {
        if self.peek() != Some(b'"') {
            return self.u64().map(Some);
        }
        let digits = self.string()?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Ok(None);
        }
        Ok(digits.iter().try_fold(0u64, |value, &c| {
            value.checked_mul(10)?.checked_add((c - b'0') as u64)
        }))
    }

    /// As `short_level`, stopping after the quantity: the caller reads what follows (Kraken's
    /// level time) with `next_element`, the level's first two elements counted as read.
    /// `None`, nothing consumed, when the level is not in the common shape.
    #[inline(always)]
    pub fn short_level_head(&mut self) -> Option<(Decimal, Decimal)> {
        let (price, qty, end) = self.short_pair()?;
        self.pos = end;
        Some((price, qty))
    }

    /// A JSON number value (unquoted: HTX, Bitfinex, Deribit, Upbit and BitMEX send prices
    /// and sizes so) straight to a decimal in one pass, from its digits (never through `f64`).
    /// Signs, exponents and long numbers are checked against the JSON number grammar and
    /// then go through the general parser.
    #[inline]
    pub fn number_decimal(&mut self) -> Result<Result<Decimal, DecimalError>, ScanError> {
        self.skip_ws();
        let buf = self.buf;
        let start = self.pos;
        if let Some((decimal, end)) = bare_decimal(buf, start) {
            self.pos = end;
            return Ok(Ok(decimal));
        }
        // Asks and sells are negative at some venues (Bitfinex amounts): as common.
        if buf.get(start) == Some(&b'-') {
            if let Some((decimal, end)) = bare_decimal(buf, start + 1) {
                if let Ok(negated) = Decimal::new(-decimal.mantissa(), decimal.scale()) {
                    self.pos = end;
                    return Ok(Ok(negated));
                }
            }
        }
        let text = self.number()?;
        Ok(Decimal::parse_bytes(text))
    }

    /// Skips the rest of an array whose first elements the caller has read (`first` as it
    /// left it), checking its structure: levels past the kept depth, say.
    #[inline]
    pub fn skip_rest_of_array(&mut self, first: &mut bool) -> Result<(), ScanError> {
        while self.next_element(first)? {
            self.skip_value()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(text: &str) -> Result<(), ScanError> {
        let mut s = Scanner::new(text.as_bytes());
        s.skip_value()?;
        s.finish()
    }

    #[test]
    fn accepts_what_json_accepts() {
        for ok in [
            r#"{"a":[1,-2.5,3e4,0.1E-2],"b":{"c":null,"d":true,"e":false},"f":"x\"y"}"#,
            " [ ] ",
            "{}",
            r#"["\\", "\u00e9"]"#,
            "0",
        ] {
            assert!(skip_all(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_json_refuses() {
        for bad in [
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "[1 2]",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "\"abc",
            "[1]]",
            "{\"a\":1}x",
            "\"a\nb\"",
            "",
            "{,}",
        ] {
            assert!(skip_all(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(skip_all(&deep).is_err());
    }

    #[test]
    fn quoted_decimals_match_the_general_parser() {
        for text in [
            "0",
            "0.35130000",
            "7.6110",
            "12",
            "1.5e-7",
            "-3",
            "1.",
            ".5",
            "",
            "1.2.3",
            "a",
            "123456789012345678",
            "1234567890123456789",
            "0.000000000000000001",
            "1\\u0030",
        ] {
            let json = format!("\"{text}\"");
            let mut s = Scanner::new(json.as_bytes());
            let fast = s.quoted_decimal().unwrap();
            assert_eq!(fast, Decimal::parse(&text.replace("\\\\", "\\")), "{text}");
            s.finish().unwrap();
        }
        assert!(Scanner::new(b"\"12").quoted_decimal().is_err());
        assert!(Scanner::new(b"12").quoted_decimal().is_err());
    }

    #[test]
    fn short_numbers_and_levels_match_the_general_parser() {
        let shapes = [
            "0",
            "7",
            "1234567",
            "12345678",
            "2682.78000000",
            "0.00000000",
            "2681.25",
            "1.5",
            "1234567.12345678",
            "1.123456789",
            "12.",
            ".5",
            "1.2.3",
            "1e5",
            "-1",
            "1\\u0030",
            "00.10",
            "99999999.9",
            "12.708",
            "44.41",
            "1.23456",
            "123456.7",
            "1234567.1",
            "0.1",
            "1..2",
            "1.2e",
            "12.3.4",
            "1234.5678",
            "1.2345678",
        ];
        for text in shapes {
            for tail in ["", "]", ",\"1\"]]"] {
                let json = format!("\"{text}\"{tail}");
                let mut s = Scanner::new(json.as_bytes());
                let got = s.quoted_decimal();
                let want = Decimal::parse(&text.replace("\\\\", "\\"));
                assert_eq!(got, Ok(want), "{json}");
                assert_eq!(s.position(), text.len() + 2, "{json}");
            }
        }
        for (text, want) in [
            (
                "[\"2682.78000000\",\"26.5339\"],[\"1\",\"2\"]]",
                Some(("2682.78000000", "26.5339")),
            ),
            (
                "[\"2681.25\",\"0\"],[\"1\",\"2\"]]}}",
                Some(("2681.25", "0")),
            ),
            ("[\"2681.25\", \"0\"]", None),
            ("[\"2681.25\",\"0\",\"x\"]", None),
            ("[\"1e5\",\"0\"]", None),
            ("[\"1\",\"2\"", None),
        ] {
            let mut s = Scanner::new(text.as_bytes());
            let got = s.short_level();
            let want = want.map(|(p, q)| (Decimal::parse(p).unwrap(), Decimal::parse(q).unwrap()));
            assert_eq!(got, want, "{text}");
            assert_eq!(s.position() == 0, got.is_none(), "{text}");
        }
    }

    /// A list mixing compact levels with spaced and long ones: the compact runs are read by
    /// `short_levels`, the rest by the general walk, and every level comes out once, in order.
    #[test]
    fn compact_level_runs_hand_over_to_the_general_walk() {
        let list =
            br#"[["1.5","2"],["2681.25","0.000"], ["3","4"],["5","6"],["12345678.125","7"],["8","9"]]"#;
        let mut s = Scanner::new(list);
        s.begin_array().unwrap();
        let mut first = true;
        let mut got = Vec::new();
        loop {
            s.short_levels(&mut first, |p, q| got.push((p.to_string(), q.to_string())));
            if !s.next_element(&mut first).unwrap() {
                break;
            }
            s.begin_array().unwrap();
            let mut inner = true;
            assert!(s.next_element(&mut inner).unwrap());
            let price = s.quoted_decimal().unwrap().unwrap();
            assert!(s.next_element(&mut inner).unwrap());
            let qty = s.quoted_decimal().unwrap().unwrap();
            assert!(!s.next_element(&mut inner).unwrap());
            got.push((price.to_string(), qty.to_string()));
        }
        s.finish().unwrap();
        let want = [
            ("1.5", "2"),
            ("2681.25", "0.000"),
            ("3", "4"),
            ("5", "6"),
            ("12345678.125", "7"),
            ("8", "9"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect();
        assert_eq!(got, want);
        let mut empty = Scanner::new(b"[]");
        empty.begin_array().unwrap();
        let mut first = true;
        empty.short_levels(&mut first, |_, _| panic!("no level"));
        assert!(first);
        assert!(!empty.next_element(&mut first).unwrap());
    }

    #[test]
    fn integers_read_alike_on_every_path() {
        for text in [
            "0",
            "7",
            "10",
            "1234567",
            "12345678",
            "123456789",
            "1723161259253",
            "100719864906512",
            "1007198649065123",
            "18446744073709551615",
            "18446744073709551616",
            "01",
            "00",
            "-1",
            "1.5",
            "1e3",
            "12x",
        ] {
            for tail in ["", ",", "}", "]", " ", ",\"E\":1}"] {
                let json = format!("{text}{tail}");
                let got = Scanner::new(json.as_bytes()).u64();
                // The digits before a stray character are the number; the scanner's caller
                // then refuses what follows.
                let want = match text {
                    "12x" => Some(12),
                    t if t.len() > 1 && t.starts_with('0') => None,
                    t => t.parse::<u64>().ok(),
                };
                assert_eq!(got.ok(), want, "{json:?}");
            }
        }
    }

    #[test]
    fn eight_digits_at_once() {
        let word = |s: &[u8; 8]| u64::from_le_bytes(*s);
        assert_eq!(eight_digits(word(b"12345678")), Some(12_345_678));
        assert_eq!(eight_digits(word(b"00000000")), Some(0));
        assert_eq!(eight_digits(word(b"99999999")), Some(99_999_999));
        assert_eq!(eight_digits(word(b"80000000")), Some(80_000_000));
        assert_eq!(eight_digits(word(b"1234567\"")), None);
        assert_eq!(eight_digits(word(b"12:45678")), None);
        assert_eq!(eight_digits(word(b"12/45678")), None);
    }

    #[test]
    fn walks_objects_and_arrays() {
        let mut s = Scanner::new(br#"{"k": [ "1.5" , "2" ], "n": 42}"#);
        s.begin_object().unwrap();
        let mut first = true;
        assert_eq!(s.next_key(&mut first).unwrap(), Some(&b"k"[..]));
        s.begin_array().unwrap();
        let mut el = true;
        assert!(s.next_element(&mut el).unwrap());
        assert_eq!(s.string().unwrap(), b"1.5");
        assert!(s.next_element(&mut el).unwrap());
        assert_eq!(s.string().unwrap(), b"2");
        assert!(!s.next_element(&mut el).unwrap());
        assert_eq!(s.next_key(&mut first).unwrap(), Some(&b"n"[..]));
        assert_eq!(s.u64().unwrap(), 42);
        assert_eq!(s.next_key(&mut first).unwrap(), None);
        s.finish().unwrap();
    }

    #[test]
    fn unquoted_numbers_read_as_the_general_parser_reads_them() {
        for text in [
            "0",
            "7",
            "0.41887",
            "40000.5",
            "1234567.12345678",
            "9.9E-7",
            "1.0000000000E-8",
            "-3.5",
            "-0",
            "-0.25",
            "-40000.125",
            "123456789012345678",
            "1234567890123456789",
            "0.000000000000000001",
        ] {
            for tail in ["", "]", ",1]", "}", " "] {
                let json = format!("{text}{tail}");
                let mut s = Scanner::new(json.as_bytes());
                assert_eq!(s.number_decimal(), Ok(Decimal::parse(text)), "{json}");
                assert_eq!(s.position(), text.len(), "{json}");
            }
        }
        for bad in [
            "01", "-01", "--1", "-.5", "00.5", "1.", ".5", "-", "1e", "\"1\"", "x", "",
        ] {
            assert!(
                Scanner::new(bad.as_bytes()).number_decimal().is_err(),
                "{bad:?}"
            );
        }
        // Grammar-valid but beyond a decimal: a typed number error, not a scan error.
        let long = "12345678901234567890123";
        assert!(matches!(
            Scanner::new(long.as_bytes()).number_decimal(),
            Ok(Err(_))
        ));
        let mut s = Scanner::new(b"[[1,2],[3,4]],5");
        s.begin_array().unwrap();
        let mut first = true;
        assert!(s.next_element(&mut first).unwrap());
        s.skip_value().unwrap();
        s.skip_rest_of_array(&mut first).unwrap();
        assert_eq!(s.position(), 13);
        assert!(Scanner::new(b"[1,]").skip_rest_of_array(&mut true).is_err());
    }
}
