//! The book's tick: the largest step every resident price is a whole multiple of, learned from
//! the prices themselves (a venue's tick is not in its frames), and exact division by it.
//!
//! Dividing by an arbitrary `i64` costs tens of cycles, once per level of every frame. A key is
//! always either a multiple of the tick or a reason to refine it, so division here is exact
//! division: strip the tick's factor of two with a shift, then multiply by the inverse of its
//! odd part modulo 2^64. The same product tells divisibility (Granlund and Montgomery's test):
//! it is a multiple exactly when the product is at most `u64::MAX / odd`.

/// Key units per tick, with the constants of exact division by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tick {
    /// Zero until the first non-zero price: every price seen is then 0, tick number 0.
    size: i64,
    shift: u32,
    inverse: u64,
    limit: u64,
}

impl Default for Tick {
    fn default() -> Self {
        Tick {
            size: 0,
            shift: 0,
            inverse: 1,
            limit: 0,
        }
    }
}

impl Tick {
    pub fn new(size: i64) -> Self {
        debug_assert!(size > 0);
        let shift = size.trailing_zeros();
        let odd = (size as u64) >> shift;
        Tick {
            size,
            shift,
            inverse: odd_inverse(odd),
            limit: u64::MAX / odd,
        }
    }

    #[inline]
    pub fn size(self) -> i64 {
        self.size
    }

    /// `key / size` when `key` (non-negative) is a whole number of ticks.
    #[inline(always)]
    pub fn ticks_of(self, key: i64) -> Option<i64> {
        let key = key as u64;
        if key & ((1u64 << self.shift) - 1) != 0 {
            return None;
        }
        let quotient = (key >> self.shift).wrapping_mul(self.inverse);
        // An unset tick (limit 0) takes only key 0, whose quotient is 0.
        (quotient <= self.limit).then_some(quotient as i64)
    }

    /// The coarsest tick that both this one and `key` are multiples of.
    pub fn refined_for(self, key: i64) -> Tick {
        Tick::new(gcd(self.size, key))
    }

    /// The same tick at a price scale `factor` times finer, if it still fits.
    pub fn scaled(self, factor: i64) -> Option<Tick> {
        if self.size == 0 {
            return Some(self);
        }
        self.size.checked_mul(factor).map(Tick::new)
    }
}

/// The inverse of an odd number modulo 2^64, by Newton's iteration: each step doubles the
/// number of correct low bits, and `odd` itself is right in the lowest three.
fn odd_inverse(odd: u64) -> u64 {
    let mut inverse = odd;
    for _ in 0..5 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
    }
    inverse
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divides_exactly_or_refuses() {
        for size in [1i64, 2, 3, 5, 10, 25, 1_000_000, 7 * 1024, 999_999_937] {
            let tick = Tick::new(size);
            for key in [
                0i64,
                1,
                2,
                3,
                9,
                10,
                250,
                1_000_000,
                268_250_000_000,
                i64::MAX,
            ] {
                let want = (key % size == 0).then_some(key / size);
                assert_eq!(tick.ticks_of(key), want, "{key} / {size}");
            }
        }
    }

    #[test]
    fn unset_tick_takes_only_zero() {
        let tick = Tick::default();
        assert_eq!(tick.ticks_of(0), Some(0));
        assert_eq!(tick.ticks_of(5), None);
        assert_eq!(tick.refined_for(5).size(), 5);
    }

    #[test]
    fn refines_to_the_common_step() {
        let tick = Tick::new(268_250).refined_for(268_260);
        assert_eq!(tick.size(), 10);
        assert_eq!(tick.scaled(100).unwrap().size(), 1_000);
        assert!(Tick::new(i64::MAX / 2).scaled(10).is_none());
    }
}
