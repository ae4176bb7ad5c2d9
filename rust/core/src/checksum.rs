//! Venue book checksums (CRC32 over the top levels as the venue prints them).
//!
//! Each checksum writes the text of its top levels into one stack buffer and hashes it in one
//! call (two for the rare text longer than the buffer): a CRC over a kilobyte runs its wide
//! carry-less-multiply loop, where a call per number spent most of its time in set-up and the
//! byte-at-a-time tail. The numbers are written from the exact digits the book kept (`Decimal`
//! remembers the venue's scale) eight digits at a time, so a checksum allocates nothing and
//! divides nothing per digit.

use crc32fast::Hasher;

use crate::book::Level;
use crate::decimal::Decimal;

/// CRC32 (IEEE) of a text, as OKX, Kraken and Bitfinex compute it.
pub fn crc32(text: &[u8]) -> u32 {
    crc32fast::hash(text)
}

/// Levels per side that OKX's legacy checksum covers.
pub const OKX_CHECKSUM_DEPTH: usize = 25;

/// Levels per side that Kraken's checksum covers (v1 and v2, whatever the subscribed depth).
pub const KRAKEN_CHECKSUM_DEPTH: usize = 10;

/// The longest text of a `Decimal`: a sign, 19 digits and a point.
pub(crate) const MAX_DECIMAL_TEXT: usize = 21;

/// The buffer of a checksum whose longest text may not fit: a typical top-25 text (about a
/// kilobyte) does, and zeroing it stays a short vector loop (glibc's `memset` turns to
/// `rep stosb` at 2 KiB).
pub(crate) const BLOCK_BYTES: usize = 2040;

/// Kraken's buffer: its longest text (per level two mantissas of at most 19 digits, no
/// separators) always fits.
const KRAKEN_TEXT_BYTES: usize = 2 * KRAKEN_CHECKSUM_DEPTH * 2 * 19 + OVERHANG;

/// OKX's legacy book checksum: the top 25 levels of each side interleaved as
/// `bidPx:bidSz:askPx:askSz:...`; where one side has run out of levels, only the other side's
/// level is written at that index. The CRC32 is read as a signed 32-bit integer, as OKX sends it.
///
/// `bids` must come best (highest) first, `asks` best (lowest) first.
pub fn okx_checksum<B, A>(bids: B, asks: A) -> i32
where
    B: IntoIterator<Item = Level>,
    A: IntoIterator<Item = Level>,
{
    let (bids, bid_count) = top_levels::<OKX_CHECKSUM_DEPTH>(bids);
    let (asks, ask_count) = top_levels::<OKX_CHECKSUM_DEPTH>(asks);
    let mut crc = Hasher::new();
    let mut text = TextBuf::<BLOCK_BYTES>::new();
    for i in 0..bid_count.max(ask_count) {
        if !text.has_room(2 * (2 * MAX_DECIMAL_TEXT + 2)) {
            crc.update(text.as_bytes());
            text.clear();
        }
        if i < bid_count {
            push_okx_level(&mut text, bids[i]);
        }
        if i < ask_count {
            push_okx_level(&mut text, asks[i]);
        }
    }
    // Each level was followed by a separator; the text ends without one.
    text.pop();
    crc.update(text.as_bytes());
    crc.finalize() as i32
}

/// `price:qty:`; the last separator of the text is taken back.
#[inline(always)]
fn push_okx_level<const N: usize>(text: &mut TextBuf<N>, level: Level) {
    text.push_decimal(level.price);
    text.push(b':');
    text.push_decimal(level.qty);
    text.push(b':');
}

/// The first `D` levels, and how many there were.
#[inline]
fn top_levels<const D: usize>(levels: impl IntoIterator<Item = Level>) -> ([Level; D], usize) {
    let mut top = [Level {
        price: Decimal::ZERO,
        qty: Decimal::ZERO,
    }; D];
    let mut count = 0;
    for (cell, level) in top.iter_mut().zip(levels) {
        *cell = level;
        count += 1;
    }
    (top, count)
}

/// Kraken's book checksum (websocket v1 and v2): the top 10 asks, lowest first, then the top 10
/// bids, highest first; each level contributes its price then its quantity, each written with
/// the point removed and the leading zeros stripped; CRC32 of the concatenation, unsigned.
///
/// Removing the point from the written text leaves the mantissa padded with zeros on the left
/// (`"0.00100000"` is mantissa 100000 at scale 8), so the stripped text is exactly the
/// mantissa's digits; zero strips to nothing.
///
/// `asks` must come best (lowest) first, `bids` best (highest) first.
pub fn kraken_checksum<A, B>(asks: A, bids: B) -> u32
where
    A: IntoIterator<Item = Level>,
    B: IntoIterator<Item = Level>,
{
    let mut text = TextBuf::<KRAKEN_TEXT_BYTES>::new();
    let levels = asks
        .into_iter()
        .take(KRAKEN_CHECKSUM_DEPTH)
        .chain(bids.into_iter().take(KRAKEN_CHECKSUM_DEPTH));
    for level in levels {
        text.push_digits(level.price.mantissa().unsigned_abs(), 0);
        text.push_digits(level.qty.mantissa().unsigned_abs(), 0);
    }
    crc32(text.as_bytes())
}

/// Bytes past a text's end that the word stores may touch (a buffer's size counts them): a store
/// of eight bytes starts at or before the end of the digits it writes, and the next write
/// overwrites what it left beyond.
pub(crate) const OVERHANG: usize = 8;

/// A checksum's text in a fixed stack buffer of `N` bytes, written with eight-byte stores. Its
/// users size `N` for the longest text their levels can make plus `OVERHANG`, so writing never
/// runs out of room.
pub(crate) struct TextBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> TextBuf<N> {
    pub fn new() -> Self {
        TextBuf {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Whether `bytes` more fit, with the overhang of the word stores.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.len + bytes + OVERHANG <= N
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Takes the last byte back (none if empty).
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline(always)]
    pub fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    #[inline(always)]
    fn store_word(&mut self, at: usize, word: u64) {
        self.bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }

    /// The decimal as `Display` writes it: the digits of its mantissa with as many after the
    /// point as its scale, at least one before it, and a sign if negative.
    #[inline(always)]
    pub fn push_decimal(&mut self, value: Decimal) {
        if value.is_negative() {
            self.push(b'-');
        }
        self.push_fixed(value.mantissa().unsigned_abs(), value.scale() as usize);
    }

    /// `mantissa` written with `scale` (at most 18) digits after the point, at least one
    /// before it; no point when `scale` is 0.
    #[inline(always)]
    pub fn push_fixed(&mut self, mantissa: u64, scale: usize) {
        self.push_digits(mantissa, scale + 1);
        if scale == 0 {
            return;
        }
        // The fraction's digits move one place right to let the point in.
        let point = self.len - scale;
        if scale <= 8 {
            let fraction = u64::from_le_bytes(self.word_at(point));
            self.store_word(point + 1, fraction);
        } else {
            self.bytes.copy_within(point..self.len, point + 1);
        }
        self.bytes[point] = b'.';
        self.len += 1;
    }

    #[inline(always)]
    fn word_at(&self, at: usize) -> [u8; 8] {
        let mut word = [0; 8];
        word.copy_from_slice(&self.bytes[at..at + 8]);
        word
    }

    /// The decimal digits of `value`, zero-padded on the left to `min_width` (at most 19)
    /// digits; zero with a `min_width` of 0 writes nothing.
    #[inline(always)]
    pub fn push_digits(&mut self, value: u64, min_width: usize) {
        if value < EIGHT_DIGITS && min_width <= 8 {
            // Most venue numbers: one word.
            self.push_top_chunk(value as u32, min_width);
        } else if value < EIGHT_DIGITS * EIGHT_DIGITS && min_width <= 16 {
            self.push_top_chunk((value / EIGHT_DIGITS) as u32, min_width.saturating_sub(8));
            self.push_chunk((value % EIGHT_DIGITS) as u32);
        } else {
            self.push_long_digits(value, min_width);
        }
    }

    /// `push_digits` for the values that take three words.
    #[inline(never)]
    fn push_long_digits(&mut self, value: u64, min_width: usize) {
        let rest = value / EIGHT_DIGITS;
        self.push_top_chunk((rest / EIGHT_DIGITS) as u32, min_width.saturating_sub(16));
        self.push_chunk((rest % EIGHT_DIGITS) as u32);
        self.push_chunk((value % EIGHT_DIGITS) as u32);
    }

    /// All eight digits of `chunk` (below 10^8), leading zeros kept.
    #[inline(always)]
    fn push_chunk(&mut self, chunk: u32) {
        self.store_word(self.len, digit_values(chunk) + ASCII_ZEROS);
        self.len += 8;
    }

    /// The digits of `chunk` (below 10^8) without its leading zeros, zero-padded to
    /// `min_width` (at most 8): the whole word is stored, shifted so its first kept digit
    /// lands at the end of the text, and only the kept digits are counted in.
    #[inline(always)]
    fn push_top_chunk(&mut self, chunk: u32, min_width: usize) {
        let values = digit_values(chunk);
        // The first digit is the lowest byte: leading zeros are the word's low zero bytes.
        let significant = 8 - (values.trailing_zeros() / 8) as usize;
        let width = significant.max(min_width);
        if width == 0 {
            return;
        }
        self.store_word(self.len, (values + ASCII_ZEROS) >> (8 * (8 - width)));
        self.len += width;
    }
}

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// 10^8: a word of digits.
const EIGHT_DIGITS: u64 = 100_000_000;

/// The eight decimal digits of `value` (below 10^8) as byte values 0-9, the most significant
/// in the lowest byte (so that the little-endian word, plus ASCII zeros, reads as its text).
/// Halves, then quarters, then digits, each split by a multiply-and-shift on all lanes at once.
#[inline(always)]
fn digit_values(value: u32) -> u64 {
    let value = value as u64;
    // Two lanes of 32 bits: the high four digits first (in the low lane), then the low four.
    let lanes = (value / 10_000) | ((value % 10_000) << 32);
    // x / 100 == (x * 10486) >> 20 for every x below 10^4.
    let hundreds = ((lanes * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let lanes = hundreds | ((lanes - hundreds * 100) << 16);
    // x / 10 == (x * 103) >> 10 for every x below 100.
    let tens = ((lanes * 103) >> 10) & 0x000F_000F_000F_000F;
    tens | ((lanes - tens * 10) << 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(price: &str, qty: &str) -> Level {
        Level {
            price: Decimal::parse(price).unwrap(),
            qty: Decimal::parse(qty).unwrap(),
        }
    }

    fn levels(pairs: &[(&str, &str)]) -> Vec<Level> {
        pairs.iter().map(|(p, q)| level(p, q)).collect()
    }

    #[test]
    fn known_value() {
        // The standard CRC-32 check value.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn okx_interleaves_bid_then_ask_as_signed() {
        let bids = levels(&[("3366.1", "7"), ("3366", "6")]);
        let asks = levels(&[("3366.8", "9"), ("3368", "8")]);
        let text = "3366.1:7:3366.8:9:3366:6:3368:8";
        assert_eq!(okx_checksum(bids, asks), crc32(text.as_bytes()) as i32);
    }

    #[test]
    fn okx_skips_the_side_that_ran_out() {
        // Three bids, one ask: after index 0 only bids are written.
        let bids = levels(&[("10.5", "1"), ("10.4", "2"), ("10.3", "3")]);
        let asks = levels(&[("10.6", "4")]);
        let text = "10.5:1:10.6:4:10.4:2:10.3:3";
        assert_eq!(okx_checksum(bids, asks), crc32(text.as_bytes()) as i32);
        // And the other way round.
        let bids = levels(&[("10.5", "1")]);
        let asks = levels(&[("10.6", "4"), ("10.7", "5")]);
        let text = "10.5:1:10.6:4:10.7:5";
        assert_eq!(okx_checksum(bids, asks), crc32(text.as_bytes()) as i32);
    }

    #[test]
    fn okx_covers_only_the_top_25_and_keeps_digits() {
        let bids: Vec<Level> = (0..30)
            .map(|i| level(&format!("{}.10", 1000 - i), "0.50"))
            .collect();
        let asks: Vec<Level> = (0..30)
            .map(|i| level(&format!("{}.20", 1001 + i), "1.000"))
            .collect();
        let mut text = String::new();
        for i in 0..25 {
            if i > 0 {
                text.push(':');
            }
            text.push_str(&format!("{}.10:0.50:{}.20:1.000", 1000 - i, 1001 + i));
        }
        assert_eq!(okx_checksum(bids, asks), crc32(text.as_bytes()) as i32);
    }

    #[test]
    fn okx_signed_reading_of_a_high_crc() {
        // A CRC with the top bit set reads negative, as OKX sends it.
        let bids = levels(&[("1", "1")]);
        let asks = levels(&[("2", "1")]);
        let unsigned = crc32(b"1:1:2:1");
        assert_eq!(okx_checksum(bids, asks), unsigned as i32);
        assert_eq!(okx_checksum(Vec::new(), Vec::new()), 0);
    }

    fn written(value: Decimal) -> String {
        let mut text = TextBuf::<{ MAX_DECIMAL_TEXT + OVERHANG }>::new();
        text.push_decimal(value);
        String::from_utf8(text.as_bytes().to_vec()).unwrap()
    }

    /// Mantissas around every place the writer changes course (one word, two, three; the
    /// point inside the first word or past it), at every scale.
    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut mantissas = vec![0i64, 1, 7, 9, 10, 99, 100, 12_345, i64::MAX, i64::MIN];
        for power in 1..=18u32 {
            let p = 10i64.pow(power);
            mantissas.extend([p - 1, p, p + 1, p + p / 2 + 3, -p, -(p - 1)]);
        }
        mantissas.extend([
            33_661,
            100_000,
            154_571_953,
            4_528_520,
            9_999_999_999_999_999,
        ]);
        for &mantissa in &mantissas {
            for scale in 0..=18 {
                let value = Decimal::new(mantissa, scale).unwrap();
                assert_eq!(written(value), value.to_string(), "{mantissa} at {scale}");
            }
        }
        // Zero-padded fractions and trailing zeros stay as the venue wrote them.
        for text in [
            "0.00000001",
            "0.05000",
            "100.00",
            "0.000000000000000001",
            "3366",
        ] {
            assert_eq!(written(Decimal::parse(text).unwrap()), text);
        }
    }

    #[test]
    fn digits_pad_to_the_width_asked_and_strip_otherwise() {
        let digits = |value: u64, width: usize| {
            let mut text = TextBuf::<{ 20 + OVERHANG }>::new();
            text.push_digits(value, width);
            String::from_utf8(text.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(digits(0, 0), "");
        assert_eq!(digits(0, 1), "0");
        assert_eq!(digits(42, 5), "00042");
        assert_eq!(digits(42, 12), "000000000042");
        assert_eq!(digits(42, 19), "0000000000000000042");
        assert_eq!(digits(123_456_789, 0), "123456789");
        assert_eq!(digits(10_000_000_000_000_000, 0), "10000000000000000");
        assert_eq!(digits(u64::MAX, 0), u64::MAX.to_string());
        for value in (0..2_000_000u64)
            .step_by(997)
            .chain([99_999_999, 100_000_000])
        {
            assert_eq!(
                digits(value, 0),
                if value == 0 {
                    String::new()
                } else {
                    value.to_string()
                }
            );
        }
    }

    /// The text OKX's checksum covers, written the slow and obvious way.
    fn okx_reference(bids: &[Level], asks: &[Level]) -> i32 {
        let mut parts = Vec::new();
        for i in 0..OKX_CHECKSUM_DEPTH {
            for side in [bids, asks] {
                if let Some(level) = side.get(i) {
                    parts.push(format!("{}:{}", level.price, level.qty));
                }
            }
        }
        crc32(parts.join(":").as_bytes()) as i32
    }

    #[test]
    fn okx_agrees_with_the_obvious_text_on_mixed_scales() {
        let value = |i: i64, scale: u8| Decimal::new(i, scale).unwrap();
        let bids: Vec<Level> = (0..40)
            .map(|i| Level {
                price: value(5_000_000_000_000 - i * 7_919, (i % 13) as u8),
                qty: value(1 + i * i * 104_729, (i % 19) as u8),
            })
            .collect();
        let asks: Vec<Level> = (0..17)
            .map(|i| Level {
                price: value(123_456_789_012 + i, 18 - (i % 5) as u8),
                qty: value(10i64.pow(i as u32), 8),
            })
            .collect();
        assert_eq!(
            okx_checksum(bids.clone(), asks.clone()),
            okx_reference(&bids, &asks)
        );
        assert_eq!(
            okx_checksum(asks.clone(), bids.clone()),
            okx_reference(&asks, &bids)
        );
    }

    /// The longest numbers there are make a text longer than one buffer: it is hashed in two
    /// calls, as one text.
    #[test]
    fn okx_text_longer_than_a_buffer() {
        let long = |i: i64| Level {
            price: Decimal::new(i64::MIN + i, 18).unwrap(),
            qty: Decimal::new(i64::MAX - i, 1).unwrap(),
        };
        let bids: Vec<Level> = (0..25).map(long).collect();
        let asks: Vec<Level> = (25..50).map(long).collect();
        let text_len: usize = bids
            .iter()
            .chain(&asks)
            .map(|l| l.price.to_string().len() + l.qty.to_string().len() + 2)
            .sum();
        assert!(text_len > BLOCK_BYTES);
        assert_eq!(
            okx_checksum(bids.clone(), asks.clone()),
            okx_reference(&bids, &asks)
        );
    }

    #[test]
    fn kraken_keeps_the_digits_of_long_mantissas() {
        // Mantissas of one, two and three words: 8 digits, 16 digits, 19 digits.
        let asks = levels(&[("1234.5678", "12345678.12345678")]);
        let bids = levels(&[("0.000000000000000001", "9223372036.854775807")]);
        let text = "12345678123456781234567819223372036854775807";
        assert_eq!(kraken_checksum(asks, bids), crc32(text.as_bytes()));
    }

    /// The worked example of Kraken's "Spot Websockets (v2) Book Checksum" guide: ten asks and
    /// ten bids of BTC/USD whose checksum the guide gives as 3310070434.
    fn kraken_doc_book() -> (Vec<Level>, Vec<Level>) {
        let asks = levels(&[
            ("45285.2", "0.00100000"),
            ("45286.4", "1.54571953"),
            ("45286.6", "1.54571109"),
            ("45289.6", "1.54560911"),
            ("45290.2", "0.15890660"),
            ("45291.8", "1.54553491"),
            ("45294.7", "0.04454749"),
            ("45296.1", "0.35380000"),
            ("45297.5", "0.09945542"),
            ("45299.5", "0.18772827"),
        ]);
        let bids = levels(&[
            ("45283.5", "0.10000000"),
            ("45283.4", "1.54582015"),
            ("45282.1", "0.10000000"),
            ("45281.0", "0.10000000"),
            ("45280.3", "1.54592586"),
            ("45279.0", "0.07990000"),
            ("45277.6", "0.03310103"),
            ("45277.5", "0.30000000"),
            ("45277.3", "1.54602737"),
            ("45276.6", "0.15445238"),
        ]);
        (asks, bids)
    }

    #[test]
    fn kraken_documented_v2_example() {
        let (asks, bids) = kraken_doc_book();
        assert_eq!(kraken_checksum(asks, bids), 3_310_070_434);
    }

    #[test]
    fn kraken_strips_point_and_leading_zeros_only() {
        // "0.05000" -> "5000", "0.00000304" -> "304", "100.00" -> "10000".
        let asks = levels(&[("0.05000", "0.00000304")]);
        let bids = levels(&[("100.00", "2.50")]);
        assert_eq!(kraken_checksum(asks, bids), crc32(b"500030410000250"));
    }

    #[test]
    fn kraken_uses_ten_levels_a_side() {
        let (mut asks, mut bids) = kraken_doc_book();
        asks.push(level("45300.0", "9.00000000"));
        bids.push(level("45200.0", "9.00000000"));
        assert_eq!(kraken_checksum(asks, bids), 3_310_070_434);
    }
}
