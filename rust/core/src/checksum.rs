//! Venue book checksums (CRC32 over the top levels as the venue prints them).

/// CRC32 (IEEE) of a text, as OKX, Kraken and Bitfinex compute it.
pub fn crc32(text: &[u8]) -> u32 {
    crc32fast::hash(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_value() {
        // The standard CRC-32 check value.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
