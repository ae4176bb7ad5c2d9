//! The book lobfeed kept before the tick ladder: a `BTreeMap` per side keyed by the price
//! mantissa at the book's scale. Kept, unchanged in behaviour, as the model the ladder is
//! tested against (`tests/book_model.rs`) and the baseline it is benchmarked against
//! (`benches/book.rs`); both include this file by path.

#![allow(dead_code)]

use std::collections::BTreeMap;

use lobfeed_core::book::BookError;
use lobfeed_core::decimal::pow10;
use lobfeed_core::{Decimal, Level, Side};

/// The previous book, unchanged in behaviour.
#[derive(Default)]
pub struct TreeBook {
    bids: BTreeMap<i64, (i64, u8, u8)>,
    asks: BTreeMap<i64, (i64, u8, u8)>,
    price_scale: u8,
}

impl TreeBook {
    pub fn apply(&mut self, side: Side, price: Decimal, qty: Decimal) -> Result<(), BookError> {
        if qty.is_negative() {
            return Err(BookError::NegativeQuantity(qty));
        }
        if price.is_negative() {
            return Err(BookError::NegativePrice(price));
        }
        if price.scale() > self.price_scale {
            let factor = pow10(price.scale() - self.price_scale);
            let rekey = |tree: &BTreeMap<i64, (i64, u8, u8)>| {
                tree.iter()
                    .map(|(k, s)| k.checked_mul(factor).map(|k| (k, *s)))
                    .collect::<Option<BTreeMap<_, _>>>()
            };
            let (Some(bids), Some(asks)) = (rekey(&self.bids), rekey(&self.asks)) else {
                return Err(BookError::PriceOutOfRange(price));
            };
            self.bids = bids;
            self.asks = asks;
            self.price_scale = price.scale();
        }
        let key = price
            .mantissa_at(self.price_scale)
            .map_err(|_| BookError::PriceOutOfRange(price))?;
        let tree = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty.is_zero() {
            tree.remove(&key);
        } else {
            tree.insert(key, (qty.mantissa(), qty.scale(), price.scale()));
        }
        Ok(())
    }

    pub fn level(&self, key: i64, slot: (i64, u8, u8)) -> Level {
        let (qty, qty_scale, price_scale) = slot;
        Level {
            price: Decimal::new(key / pow10(self.price_scale - price_scale), price_scale).unwrap(),
            qty: Decimal::new(qty, qty_scale).unwrap(),
        }
    }

    pub fn bids(&self) -> Vec<Level> {
        self.bids
            .iter()
            .rev()
            .map(|(k, s)| self.level(*k, *s))
            .collect()
    }

    pub fn asks(&self) -> Vec<Level> {
        self.asks.iter().map(|(k, s)| self.level(*k, *s)).collect()
    }

    /// Lazily, best first (`bids()` collects them all).
    pub fn bids_iter(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter().rev().map(|(k, s)| self.level(*k, *s))
    }

    pub fn asks_iter(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().map(|(k, s)| self.level(*k, *s))
    }

    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last_key_value().map(|(k, s)| self.level(*k, *s))
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.first_key_value().map(|(k, s)| self.level(*k, *s))
    }

    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
}
