//! The L2 book: price levels per side, exact digits, O(log n) updates, O(1) best bid/ask.
//!
//! Each side is a `BTreeMap` keyed by the price mantissa at the book's price scale (one scale per
//! book, so keys compare as plain integers). A level remembers the scale its price was written
//! with, so `"0.1"` prints back as `"0.1"` in a book whose other prices have two decimals.
//! The best level of each side is cached after every change, so reading it costs no tree walk.

use std::collections::BTreeMap;

use crate::decimal::{pow10, Decimal, DecimalError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Bid,
    Ask,
}

/// One price level as the venue wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: Decimal,
    pub qty: Decimal,
}

/// What the tree stores per level: 16 bytes beside the 8-byte key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    qty_mantissa: i64,
    qty_scale: u8,
    price_scale: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("negative quantity {0}")]
    NegativeQuantity(Decimal),
    #[error("negative price {0}")]
    NegativePrice(Decimal),
    #[error("price {0} does not fit the book's fixed-point range")]
    PriceOutOfRange(Decimal),
}

impl From<(DecimalError, Decimal)> for BookError {
    fn from((_, price): (DecimalError, Decimal)) -> Self {
        BookError::PriceOutOfRange(price)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Book {
    bids: BTreeMap<i64, Slot>,
    asks: BTreeMap<i64, Slot>,
    /// Digits after the point of every key; grows (and re-keys) if a finer price arrives.
    price_scale: u8,
    best_bid: Option<(i64, Slot)>,
    best_ask: Option<(i64, Slot)>,
}

impl Book {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.best_bid = None;
        self.best_ask = None;
    }

    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// Sets the absolute quantity at a price; zero removes the level (an unknown level is fine).
    pub fn apply(&mut self, side: Side, price: Decimal, qty: Decimal) -> Result<(), BookError> {
        if qty.is_negative() {
            return Err(BookError::NegativeQuantity(qty));
        }
        if price.is_negative() {
            return Err(BookError::NegativePrice(price));
        }
        if price.scale() > self.price_scale {
            self.rescale(price.scale())
                .map_err(|e| BookError::from((e, price)))?;
        }
        let key = price
            .mantissa_at(self.price_scale)
            .map_err(|e| BookError::from((e, price)))?;
        let tree = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty.is_zero() {
            if tree.remove(&key).is_some() {
                self.refresh_best_after_remove(side, key);
            }
        } else {
            let slot = Slot {
                qty_mantissa: qty.mantissa(),
                qty_scale: qty.scale(),
                price_scale: price.scale(),
            };
            tree.insert(key, slot);
            self.refresh_best_after_insert(side, key, slot);
        }
        Ok(())
    }

    fn refresh_best_after_insert(&mut self, side: Side, key: i64, slot: Slot) {
        match side {
            Side::Bid => match self.best_bid {
                Some((best, _)) if key < best => {}
                _ => self.best_bid = Some((key, slot)),
            },
            Side::Ask => match self.best_ask {
                Some((best, _)) if key > best => {}
                _ => self.best_ask = Some((key, slot)),
            },
        }
    }

    fn refresh_best_after_remove(&mut self, side: Side, key: i64) {
        match side {
            Side::Bid => {
                if self.best_bid.is_some_and(|(best, _)| best == key) {
                    self.best_bid = self.bids.last_key_value().map(|(k, s)| (*k, *s));
                }
            }
            Side::Ask => {
                if self.best_ask.is_some_and(|(best, _)| best == key) {
                    self.best_ask = self.asks.first_key_value().map(|(k, s)| (*k, *s));
                }
            }
        }
    }

    /// Re-keys both sides at a finer scale: rare, only when a venue adds digits mid-stream.
    fn rescale(&mut self, scale: u8) -> Result<(), DecimalError> {
        let factor = pow10(scale - self.price_scale);
        let rekey = |tree: &BTreeMap<i64, Slot>| -> Result<BTreeMap<i64, Slot>, DecimalError> {
            tree.iter()
                .map(|(k, s)| {
                    k.checked_mul(factor)
                        .map(|k| (k, *s))
                        .ok_or(DecimalError::Overflow)
                })
                .collect()
        };
        let bids = rekey(&self.bids)?;
        let asks = rekey(&self.asks)?;
        self.bids = bids;
        self.asks = asks;
        self.price_scale = scale;
        self.best_bid = self.bids.last_key_value().map(|(k, s)| (*k, *s));
        self.best_ask = self.asks.first_key_value().map(|(k, s)| (*k, *s));
        Ok(())
    }

    #[inline]
    fn level(&self, key: i64, slot: Slot) -> Level {
        // The key is exact at the book scale; dividing back to the written scale is exact too.
        let price_mantissa = key / pow10(self.price_scale - slot.price_scale);
        Level {
            price: Decimal::new(price_mantissa, slot.price_scale).unwrap_or_default(),
            qty: Decimal::new(slot.qty_mantissa, slot.qty_scale).unwrap_or_default(),
        }
    }

    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.best_bid.map(|(k, s)| self.level(k, s))
    }

    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.best_ask.map(|(k, s)| self.level(k, s))
    }

    /// Bids from the best down; lazily, nothing is allocated.
    pub fn bids(&self) -> impl DoubleEndedIterator<Item = Level> + '_ {
        self.bids.iter().rev().map(|(k, s)| self.level(*k, *s))
    }

    /// Asks from the best up; lazily, nothing is allocated.
    pub fn asks(&self) -> impl DoubleEndedIterator<Item = Level> + '_ {
        self.asks.iter().map(|(k, s)| self.level(*k, *s))
    }

    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        match side {
            Side::Bid => Box::new(self.bids()),
            Side::Ask => Box::new(self.asks()),
        }
    }

    /// Best bid at or above best ask: never true of a correctly synced book.
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid, self.best_ask) {
            (Some((b, _)), Some((a, _))) => b >= a,
            _ => false,
        }
    }

    /// Keeps the best `depth` levels of each side (venues whose checksums assume a fixed depth).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
        if depth == 0 {
            self.best_bid = None;
            self.best_ask = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn strings(levels: impl Iterator<Item = Level>) -> Vec<(String, String)> {
        levels
            .map(|l| (l.price.to_string(), l.qty.to_string()))
            .collect()
    }

    #[test]
    fn keeps_best_and_order() {
        let mut book = Book::new();
        book.apply(Side::Bid, d("100.10"), d("1.0")).unwrap();
        book.apply(Side::Bid, d("100.20"), d("2.0")).unwrap();
        book.apply(Side::Bid, d("99.00"), d("3.0")).unwrap();
        book.apply(Side::Ask, d("100.30"), d("1.5")).unwrap();
        book.apply(Side::Ask, d("100.25"), d("0.5")).unwrap();
        assert_eq!(book.best_bid().unwrap().price.to_string(), "100.20");
        assert_eq!(book.best_ask().unwrap().price.to_string(), "100.25");
        assert_eq!(
            strings(book.bids()),
            vec![
                ("100.20".into(), "2.0".into()),
                ("100.10".into(), "1.0".into()),
                ("99.00".into(), "3.0".into())
            ]
        );
        book.apply(Side::Bid, d("100.20"), d("0")).unwrap();
        assert_eq!(book.best_bid().unwrap().price.to_string(), "100.10");
        book.apply(Side::Ask, d("100.25"), d("0.000")).unwrap();
        assert_eq!(book.best_ask().unwrap().price.to_string(), "100.30");
        assert!(!book.is_crossed());
    }

    #[test]
    fn removing_unknown_level_is_fine() {
        let mut book = Book::new();
        book.apply(Side::Ask, d("5"), d("0")).unwrap();
        assert!(book.is_empty());
        assert_eq!(book.best_ask(), None);
    }

    #[test]
    fn keeps_mixed_digits_exact() {
        let mut book = Book::new();
        book.apply(Side::Ask, d("0.1"), d("1")).unwrap();
        book.apply(Side::Ask, d("0.105"), d("2")).unwrap();
        book.apply(Side::Ask, d("0.11"), d("3")).unwrap();
        assert_eq!(
            strings(book.asks()),
            vec![
                ("0.1".into(), "1".into()),
                ("0.105".into(), "2".into()),
                ("0.11".into(), "3".into())
            ]
        );
        // Same price written with another scale replaces the level.
        book.apply(Side::Ask, d("0.10"), d("4")).unwrap();
        assert_eq!(book.len(Side::Ask), 3);
        assert_eq!(book.best_ask().unwrap().price.to_string(), "0.10");
    }

    #[test]
    fn truncates_worst_levels() {
        let mut book = Book::new();
        for i in 1..=5 {
            book.apply(Side::Bid, Decimal::new(i, 0).unwrap(), d("1"))
                .unwrap();
            book.apply(Side::Ask, Decimal::new(10 + i, 0).unwrap(), d("1"))
                .unwrap();
        }
        book.truncate(2);
        assert_eq!(
            strings(book.bids()),
            vec![("5".into(), "1".into()), ("4".into(), "1".into())]
        );
        assert_eq!(
            strings(book.asks()),
            vec![("11".into(), "1".into()), ("12".into(), "1".into())]
        );
    }

    #[test]
    fn rejects_negative_values() {
        let mut book = Book::new();
        assert!(matches!(
            book.apply(Side::Bid, d("1"), d("-1")),
            Err(BookError::NegativeQuantity(_))
        ));
        assert!(matches!(
            book.apply(Side::Bid, d("-1"), d("1")),
            Err(BookError::NegativePrice(_))
        ));
        assert!(book.is_empty());
    }

    #[test]
    fn detects_crossed() {
        let mut book = Book::new();
        book.apply(Side::Bid, d("10"), d("1")).unwrap();
        book.apply(Side::Ask, d("10"), d("1")).unwrap();
        assert!(book.is_crossed());
    }
}
