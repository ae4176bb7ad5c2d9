//! Venue book checksums (CRC32 over the top levels as the venue prints them).
//!
//! Both functions stream the text into the CRC as it is produced, from the exact digits the
//! book kept (`Decimal` remembers the venue's scale), so a checksum costs no allocation.

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
    let mut hasher = Hasher::new();
    let mut bids = bids.into_iter().take(OKX_CHECKSUM_DEPTH);
    let mut asks = asks.into_iter().take(OKX_CHECKSUM_DEPTH);
    let mut first = true;
    loop {
        let bid = bids.next();
        let ask = asks.next();
        if bid.is_none() && ask.is_none() {
            break;
        }
        for level in [bid, ask].into_iter().flatten() {
            if !first {
                hasher.update(b":");
            }
            first = false;
            let mut buf = [0u8; 24];
            hasher.update(level.price.format_into(&mut buf).as_bytes());
            hasher.update(b":");
            hasher.update(level.qty.format_into(&mut buf).as_bytes());
        }
    }
    hasher.finalize() as i32
}

/// Kraken's book checksum (websocket v1 and v2): the top 10 asks, lowest first, then the top 10
/// bids, highest first; each level contributes its price then its quantity, each written with
/// the point removed and the leading zeros stripped; CRC32 of the concatenation, unsigned.
///
/// `asks` must come best (lowest) first, `bids` best (highest) first.
pub fn kraken_checksum<A, B>(asks: A, bids: B) -> u32
where
    A: IntoIterator<Item = Level>,
    B: IntoIterator<Item = Level>,
{
    let mut hasher = Hasher::new();
    let levels = asks
        .into_iter()
        .take(KRAKEN_CHECKSUM_DEPTH)
        .chain(bids.into_iter().take(KRAKEN_CHECKSUM_DEPTH));
    for level in levels {
        push_kraken_digits(&mut hasher, level.price);
        push_kraken_digits(&mut hasher, level.qty);
    }
    hasher.finalize()
}

/// The decimal's digits with the point removed and leading zeros stripped. Removing the point
/// from the written text leaves the mantissa padded with zeros on the left (`"0.00100000"` is
/// mantissa 100000 at scale 8), so the stripped text is exactly the mantissa's digits; zero
/// strips to nothing.
fn push_kraken_digits(hasher: &mut Hasher, value: Decimal) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut rest = value.mantissa().unsigned_abs();
    while rest > 0 {
        pos -= 1;
        buf[pos] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    hasher.update(&buf[pos..]);
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
