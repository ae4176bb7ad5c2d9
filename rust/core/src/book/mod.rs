//! The L2 book: price levels per side, exact digits, O(1) best bid/ask, O(1) updates near the top.
//!
//! Prices are keyed as whole ticks: the mantissa at the book's price scale (one scale per book,
//! finer if a finer price arrives) divided by the book's tick (the coarsest step all its prices
//! are multiples of, refined if a price falls between). Each side keeps the ticks near its top in
//! a dense window and the rest in a sorted map (`ladder.rs`). A level remembers the scale its
//! price was written with, so `"0.1"` prints back as `"0.1"` in a book whose other prices have two
//! decimals, and checksums over the venue's digits stay what they were.

mod ladder;
mod tick;

use crate::decimal::{pow10, Decimal, DecimalError};

use ladder::{Ladder, Slot};
use tick::Tick;

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

/// The error of a level with a negative quantity or price (the quantity is named first).
#[cold]
fn negative(price: Decimal, qty: Decimal) -> BookError {
    if qty.is_negative() {
        BookError::NegativeQuantity(qty)
    } else {
        BookError::NegativePrice(price)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Book {
    /// Ranked by minus the tick number: the highest bid first.
    bids: Ladder,
    /// Ranked by the tick number: the lowest ask first.
    asks: Ladder,
    /// Digits after the point of every key; grows if a finer price arrives.
    price_scale: u8,
    /// Key units per tick; kept across `clear` (a venue's tick does not change on a resync).
    tick: Tick,
}

impl Book {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.bids.len() == 0 && self.asks.len() == 0
    }

    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// Sets the absolute quantity at a price; zero removes the level (an unknown level is fine).
    /// Inlined into the sync's loop over a frame's levels, its only caller on the hot path.
    #[inline(always)]
    pub fn apply(&mut self, side: Side, price: Decimal, qty: Decimal) -> Result<(), BookError> {
        // Both signs in one test: either sign bit sets the union's.
        if (qty.mantissa() | price.mantissa()) < 0 {
            return Err(negative(price, qty));
        }
        // Most prices are written at the book's scale: the key is then the mantissa itself.
        let key = if price.scale() == self.price_scale {
            price.mantissa()
        } else {
            self.key_at_other_scale(price)?
        };
        let ticks = match self.tick.ticks_of(key) {
            Some(ticks) => ticks,
            // Between two ticks: no such level is held, so there is nothing to remove.
            None if qty.is_zero() => return Ok(()),
            None => self.retick(key),
        };
        let (ladder, rank) = match side {
            Side::Bid => (&mut self.bids, -ticks),
            Side::Ask => (&mut self.asks, ticks),
        };
        if qty.is_zero() {
            ladder.remove(rank);
        } else {
            ladder.set(
                rank,
                Slot {
                    qty_mantissa: qty.mantissa(),
                    qty_scale: qty.scale(),
                    price_scale: price.scale(),
                },
            );
        }
        Ok(())
    }

    /// The key of a price written with more digits than the book's (the book rescales first)
    /// or fewer.
    #[cold]
    #[inline(never)]
    fn key_at_other_scale(&mut self, price: Decimal) -> Result<i64, BookError> {
        if price.scale() > self.price_scale {
            self.rescale(price.scale())
                .map_err(|e| BookError::from((e, price)))?;
        }
        price
            .mantissa_at(self.price_scale)
            .map_err(|e| BookError::from((e, price)))
    }

    /// A price that is not a whole number of ticks: the tick becomes the common step of the
    /// old one and this key, and every level is re-ranked at it. At most 63 times in a book's
    /// life (each at least halves the tick), and in practice only while the first snapshot
    /// shows the venue's tick. Returns the key's tick number.
    #[cold]
    #[inline(never)]
    fn retick(&mut self, key: i64) -> i64 {
        let old = self.tick.size();
        let tick = self.tick.refined_for(key);
        // The old tick is a multiple of the new one (or unset, when every key was 0).
        let factor = if old == 0 { 1 } else { old / tick.size() };
        let bids = self.bids.take_all();
        let asks = self.asks.take_all();
        self.tick = tick;
        for (rank, slot) in bids {
            self.bids.set(rank * factor, slot);
        }
        for (rank, slot) in asks {
            self.asks.set(rank * factor, slot);
        }
        self.tick.ticks_of(key).unwrap_or(0)
    }

    /// Moves every key to a finer scale: rare, only when a venue adds digits mid-stream. Tick
    /// numbers stay; the tick, in key units, grows by the same factor.
    #[cold]
    fn rescale(&mut self, scale: u8) -> Result<(), DecimalError> {
        let factor = pow10(scale - self.price_scale);
        let Some(tick) = self.tick.scaled(factor) else {
            return self.rescale_from_keys(scale, factor);
        };
        // The largest key of the book is the best bid or the worst ask; it must still fit.
        let top_ticks = [
            self.bids.best().map(|(rank, _)| -rank),
            self.asks.worst_rank(),
        ];
        for ticks in top_ticks.into_iter().flatten() {
            ticks
                .checked_mul(tick.size())
                .ok_or(DecimalError::Overflow)?;
        }
        self.tick = tick;
        self.price_scale = scale;
        Ok(())
    }

    /// The tick learned from levels since removed can be too large to scale when every key
    /// still held would: the tick is then learned again from the held keys alone.
    #[cold]
    fn rescale_from_keys(&mut self, scale: u8, factor: i64) -> Result<(), DecimalError> {
        let size = self.tick.size();
        let mut keyed = Vec::with_capacity(self.bids.len() + self.asks.len());
        for (side, ladder) in [(Side::Bid, &self.bids), (Side::Ask, &self.asks)] {
            for (rank, slot) in ladder.iter() {
                let ticks = if side == Side::Bid { -rank } else { rank };
                let key = (ticks * size)
                    .checked_mul(factor)
                    .ok_or(DecimalError::Overflow)?;
                keyed.push((side, key, slot));
            }
        }
        let mut tick = Tick::default();
        for &(_, key, _) in &keyed {
            if key != 0 && tick.ticks_of(key).is_none() {
                tick = tick.refined_for(key);
            }
        }
        self.clear();
        self.tick = tick;
        self.price_scale = scale;
        for (side, key, slot) in keyed {
            let ticks = tick.ticks_of(key).unwrap_or(0);
            match side {
                Side::Bid => self.bids.set(-ticks, slot),
                Side::Ask => self.asks.set(ticks, slot),
            }
        }
        Ok(())
    }

    #[inline]
    fn level(&self, side: Side, rank: i64, slot: Slot) -> Level {
        let ticks = match side {
            Side::Bid => -rank,
            Side::Ask => rank,
        };
        // Exact: the key was a whole number of ticks, and a whole number of the written
        // scale's units.
        let key = ticks * self.tick.size();
        // Most prices are written at the book's scale: no division then.
        let price_mantissa = match self.price_scale - slot.price_scale {
            0 => key,
            finer => key / pow10(finer),
        };
        Level {
            price: Decimal::new(price_mantissa, slot.price_scale).unwrap_or_default(),
            qty: Decimal::new(slot.qty_mantissa, slot.qty_scale).unwrap_or_default(),
        }
    }

    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best().map(|(r, s)| self.level(Side::Bid, r, s))
    }

    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best().map(|(r, s)| self.level(Side::Ask, r, s))
    }

    /// The best level of a side, in O(1).
    #[inline]
    pub fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Bid => self.best_bid(),
            Side::Ask => self.best_ask(),
        }
    }

    /// Levels of a side from the best on (reversed: from the worst); lazily, nothing is
    /// allocated. The same type for both sides, so a caller need not box it.
    pub fn side(&self, side: Side) -> impl DoubleEndedIterator<Item = Level> + '_ {
        let ladder = match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        };
        ladder.iter().map(move |(r, s)| self.level(side, r, s))
    }

    /// The best `n` levels of a side; nothing is allocated.
    pub fn top(&self, side: Side, n: usize) -> impl Iterator<Item = Level> + '_ {
        self.side(side).take(n)
    }

    /// Writes the best levels of a side into `out` (as many as fit); how many were written.
    pub fn top_into(&self, side: Side, out: &mut [Level]) -> usize {
        let mut written = 0;
        for (cell, level) in out.iter_mut().zip(self.side(side)) {
            *cell = level;
            written += 1;
        }
        written
    }

    /// Bids from the best down; lazily, nothing is allocated.
    pub fn bids(&self) -> impl DoubleEndedIterator<Item = Level> + '_ {
        self.side(Side::Bid)
    }

    /// Asks from the best up; lazily, nothing is allocated.
    pub fn asks(&self) -> impl DoubleEndedIterator<Item = Level> + '_ {
        self.side(Side::Ask)
    }

    /// Boxed, for callers that predate `side` (which allocates nothing).
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        Box::new(self.side(side))
    }

    /// Best bid at or above best ask: never true of a correctly synced book.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.bids.best(), self.asks.best()) {
            (Some((bid, _)), Some((ask, _))) => -bid >= ask,
            _ => false,
        }
    }

    /// Keeps the best `depth` levels of each side (venues whose checksums assume a fixed depth).
    #[inline]
    pub fn truncate(&mut self, depth: usize) {
        if self.bids.len() > depth {
            self.bids.truncate(depth);
        }
        if self.asks.len() > depth {
            self.asks.truncate(depth);
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
