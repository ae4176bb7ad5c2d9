//! One side of the book, in rank order: rank 0 is as good as a price can be, and a larger rank
//! is a worse price (a bid's rank is minus its tick number, an ask's is its tick number), so
//! both sides share this code.
//!
//! The levels near the top live in a dense window of tick slots: setting or clearing one is an
//! index, and the best is a cached index. The window follows the top (it recentres when a
//! better price arrives above it or the best sinks deep into it) and grows while the book keeps
//! it dense; levels past its end wait, sorted, in a `BTreeMap` and move in when it reaches them.
//! Every level is in exactly one of the two, and all of the map's are worse than the window's.

use std::collections::BTreeMap;

/// What the book keeps per level, beside its rank. A zero quantity marks an empty window slot:
/// a level of size zero is never kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot {
    pub qty_mantissa: i64,
    pub qty_scale: u8,
    pub price_scale: u8,
}

impl Slot {
    const EMPTY: Slot = Slot {
        qty_mantissa: 0,
        qty_scale: 0,
        price_scale: 0,
    };

    #[inline(always)]
    fn is_held(&self) -> bool {
        self.qty_mantissa != 0
    }
}

/// Slots of a new window: 1 KiB a side, about what a busy book churns in.
const MIN_WINDOW: usize = 64;
/// 64 KiB a side: past this the map's log-time operations are as good as a wider window.
const MAX_WINDOW: usize = 4096;
/// The window grows only while the side has at least one level per this many slots of it, so
/// a sparse book keeps its tail in the map instead of in empty slots (16 bytes each).
const SLOTS_PER_LEVEL: usize = 4;

#[derive(Debug, Clone, Default)]
pub(super) struct Ladder {
    /// Rank of `slots[0]`.
    lo: i64,
    slots: Vec<Slot>,
    /// Held slots in the window; when 0, `far` is empty too.
    held: usize,
    /// Index of the first held slot (when `held > 0`).
    best: usize,
    /// One past the index of the last held slot (when `held > 0`).
    end: usize,
    /// Levels ranked at or past the window's end.
    far: BTreeMap<i64, Slot>,
}

impl Ladder {
    #[inline]
    pub fn len(&self) -> usize {
        self.held + self.far.len()
    }

    #[inline]
    pub fn best(&self) -> Option<(i64, Slot)> {
        (self.held > 0).then(|| (self.lo + self.best as i64, self.slots[self.best]))
    }

    pub fn worst_rank(&self) -> Option<i64> {
        match self.far.last_key_value() {
            Some((&rank, _)) => Some(rank),
            None => (self.held > 0).then(|| self.lo + (self.end - 1) as i64),
        }
    }

    /// Empties the side and keeps the window's memory for the next snapshot.
    pub fn clear(&mut self) {
        if self.held > 0 {
            self.slots[self.best..self.end].fill(Slot::EMPTY);
        }
        self.held = 0;
        self.far.clear();
    }

    /// Levels from the best down (or, reversed, from the worst up); nothing is allocated.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, Slot)> + '_ {
        let (start, stop) = if self.held > 0 {
            (self.best, self.end)
        } else {
            (0, 0)
        };
        let lo = self.lo;
        self.slots[start..stop]
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_held())
            .map(move |(i, slot)| (lo + (start + i) as i64, *slot))
            .chain(self.far.iter().map(|(rank, slot)| (*rank, *slot)))
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.slots.len() / 4
    }

    /// Where `rank` falls in the window, if it does. Never overflows: the window may reach
    /// past the last representable rank, but no held slot does.
    #[inline(always)]
    fn index(&self, rank: i64) -> Option<usize> {
        let offset = rank.wrapping_sub(self.lo) as u64;
        (rank >= self.lo && offset < self.slots.len() as u64).then_some(offset as usize)
    }

    /// Sets the level at `rank` (its quantity is not zero).
    #[inline(always)]
    pub fn set(&mut self, rank: i64, slot: Slot) {
        debug_assert!(slot.is_held());
        // Most updates land in the window of a side that holds levels: an index, inlined.
        if self.held > 0 {
            if let Some(i) = self.index(rank) {
                self.place(i, slot);
                return;
            }
        }
        self.set_elsewhere(rank, slot);
    }

    /// `set` for a level outside the window, or the first level of an empty side.
    #[inline(never)]
    fn set_elsewhere(&mut self, rank: i64, slot: Slot) {
        if self.held == 0 {
            // An empty side goes wherever the first level is.
            if self.slots.is_empty() {
                self.slots = vec![Slot::EMPTY; MIN_WINDOW];
            }
            self.lo = rank.saturating_sub(self.headroom() as i64);
        }
        if let Some(i) = self.index(rank) {
            self.place(i, slot);
        } else if rank < self.lo {
            self.shift_down(rank);
            let i = self.index(rank).expect("the window was moved onto it");
            self.place(i, slot);
        } else if self.try_grow(rank) {
            let i = self.index(rank).expect("the window was grown over it");
            self.place(i, slot);
        } else {
            self.far.insert(rank, slot);
        }
    }

    /// Removes the level at `rank`; whether there was one.
    #[inline(always)]
    pub fn remove(&mut self, rank: i64) -> bool {
        match self.index(rank) {
            // A size of zero for a price the book does not hold is common: nothing to do.
            Some(i) if !self.slots[i].is_held() => false,
            Some(i) => self.vacate(i),
            None if rank >= self.lo && self.held > 0 => self.far.remove(&rank).is_some(),
            None => false,
        }
    }

    /// Keeps the best `depth` levels.
    pub fn truncate(&mut self, depth: usize) {
        while self.len() > depth {
            if self.far.pop_last().is_none() {
                self.vacate(self.end - 1);
            }
        }
    }

    /// Every level, best first, and the side emptied (the book re-ranks them on a new tick).
    pub fn take_all(&mut self) -> Vec<(i64, Slot)> {
        let all = self.iter().collect();
        self.clear();
        all
    }

    #[inline(always)]
    fn place(&mut self, i: usize, slot: Slot) {
        if !self.slots[i].is_held() {
            if self.held == 0 {
                self.best = i;
                self.end = i + 1;
            } else {
                self.best = self.best.min(i);
                self.end = self.end.max(i + 1);
            }
            self.held += 1;
        }
        self.slots[i] = slot;
    }

    #[inline(always)]
    fn vacate(&mut self, i: usize) -> bool {
        if !self.slots[i].is_held() {
            return false;
        }
        self.slots[i] = Slot::EMPTY;
        self.held -= 1;
        if self.held == 0 || i == self.best || i + 1 == self.end {
            self.vacated_an_end(i);
        }
        true
    }

    /// Slot `i`, the first or last held one, was just emptied: the ends follow.
    #[inline(never)]
    fn vacated_an_end(&mut self, i: usize) {
        if self.held == 0 {
            self.refill();
        } else if i == self.best {
            // Another held slot follows: `held > 0` and none precedes the old best.
            let next = self.slots[i + 1..self.end]
                .iter()
                .position(Slot::is_held)
                .unwrap_or(0);
            self.best = i + 1 + next;
            if self.best > self.slots.len() / 2 && !self.far.is_empty() {
                self.shift_up(self.best - self.headroom());
            }
        } else {
            let last = self.slots[self.best..i]
                .iter()
                .rposition(Slot::is_held)
                .unwrap_or(0);
            self.end = self.best + last + 1;
        }
    }

    /// The window is empty: it moves onto the best of the map's levels, if any.
    fn refill(&mut self) {
        if let Some((&first, _)) = self.far.first_key_value() {
            self.lo = first.saturating_sub(self.headroom() as i64);
            self.pull_far();
        }
    }

    /// Moves the map's levels that the window now covers into it (all of the map's levels
    /// rank at or past `lo`).
    fn pull_far(&mut self) {
        while let Some((&rank, _)) = self.far.first_key_value() {
            let Some(i) = self.index(rank) else {
                break;
            };
            if let Some((_, slot)) = self.far.pop_first() {
                self.place(i, slot);
            }
        }
    }

    /// Grows the window's end over `rank` if the book stays dense enough there.
    fn try_grow(&mut self, rank: i64) -> bool {
        let needed = rank.wrapping_sub(self.lo) as u64 + 1;
        if needed > MAX_WINDOW as u64 {
            return false;
        }
        let new_len = (needed as usize).next_power_of_two();
        // Counting the map's levels too: the ones the wider window takes in are what make it
        // worth widening, and counting exactly which would cost a walk of the map.
        if new_len > SLOTS_PER_LEVEL * (self.len() + 1) {
            return false;
        }
        self.slots.reserve_exact(new_len - self.slots.len());
        self.slots.resize(new_len, Slot::EMPTY);
        self.pull_far();
        true
    }

    /// A better price than the window's first slot: the window moves down to hold it with
    /// headroom above, and what falls off its end goes to the map.
    fn shift_down(&mut self, rank: i64) {
        let len = self.slots.len();
        if len * 2 <= MAX_WINDOW && len * 2 <= SLOTS_PER_LEVEL * (self.held + 1) {
            self.slots.reserve_exact(len);
            self.slots.resize(len * 2, Slot::EMPTY);
        }
        let len = self.slots.len();
        let new_lo = rank.saturating_sub(self.headroom() as i64);
        let shift = self.lo.wrapping_sub(new_lo) as u64;
        let keep = len.saturating_sub(usize::try_from(shift).unwrap_or(usize::MAX));
        if self.held > 0 {
            for i in keep.max(self.best)..self.end {
                let slot = self.slots[i];
                if slot.is_held() {
                    self.far.insert(self.lo + i as i64, slot);
                    self.slots[i] = Slot::EMPTY;
                    self.held -= 1;
                }
            }
        }
        if keep > 0 {
            self.slots.copy_within(0..keep, len - keep);
            self.slots[..len - keep].fill(Slot::EMPTY);
        }
        self.lo = new_lo;
        self.rescan();
        // A window that doubled may now reach over levels the map holds.
        self.pull_far();
    }

    /// The best sank past the window's middle: the window moves up by `shift` slots (all
    /// empty, above the best) and takes in what the map holds below its new end.
    fn shift_up(&mut self, shift: usize) {
        let len = self.slots.len();
        self.slots.copy_within(shift..len, 0);
        self.slots[len - shift..].fill(Slot::EMPTY);
        self.lo += shift as i64;
        self.best -= shift;
        self.end -= shift;
        self.pull_far();
    }

    /// Recounts the held slots and finds the first and last after a bulk move.
    fn rescan(&mut self) {
        self.held = self.slots.iter().filter(|s| s.is_held()).count();
        if self.held > 0 {
            self.best = self.slots.iter().position(Slot::is_held).unwrap_or(0);
            self.end = self.slots.iter().rposition(Slot::is_held).unwrap_or(0) + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(q: i64) -> Slot {
        Slot {
            qty_mantissa: q,
            qty_scale: 0,
            price_scale: 0,
        }
    }

    fn ranks(ladder: &Ladder) -> Vec<i64> {
        ladder.iter().map(|(rank, _)| rank).collect()
    }

    /// A level parked in the map while the side was sparse, then a better price that doubles
    /// the window over it: the map's level must move into the window, or a later level set
    /// in the window past it is listed before it (found by the BitMEX tape).
    #[test]
    fn a_window_doubled_by_a_better_price_takes_in_the_map_levels_it_covers() {
        let mut side = Ladder::default();
        side.set(1000, level(1)); // the window is [984, 1048)
        side.set(1060, level(2)); // too sparse to grow over: parked in the map
        for rank in 1001..=1040 {
            side.set(rank, level(3));
        }
        side.set(980, level(4)); // better than the window: it doubles to [948, 1076)
        side.set(1070, level(5));
        let listed = ranks(&side);
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        assert_eq!(listed, sorted);
        assert_eq!(listed.len(), 44);
        assert!(side.remove(1060));
        assert!(!side.remove(1060));
        assert_eq!(side.len(), 43);
    }
}
