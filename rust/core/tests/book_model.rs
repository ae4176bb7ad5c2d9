//! The tick-ladder book against the book it replaced (a `BTreeMap` per side keyed by the price
//! at the book's scale), kept here as the model: after any sequence of updates, truncations and
//! clears, both hold the same levels, printed digit for digit, in the same order, with the same
//! best, count and errors. The generator walks the mid price so the window recentres, jumps it
//! far so levels move between window and map, mixes price steps so the tick is refined, and
//! adds digits so the book rescales.

use lobfeed_core::decimal::pow10;
use lobfeed_core::{Book, Decimal, Level, Side};
use proptest::prelude::*;

#[path = "../benches/support/tree_book.rs"]
mod tree_book;

use tree_book::TreeBook;

#[derive(Debug, Clone)]
enum Op {
    /// A level `offset` steps from the mid, at `step` units of the scale.
    Level {
        side: Side,
        offset: i64,
        step: i64,
        extra_digits: u8,
        qty: i64,
        qty_scale: u8,
    },
    /// The mid moves by this many units.
    Walk(i64),
    Truncate(usize),
    Clear,
    /// A price near the top of the fixed-point range, at this scale.
    Huge(Side, u8),
    /// The best `n` levels of a side taken out one by one, as a market order sweeps them:
    /// the best sinks into the window, which then moves up over the map's levels.
    Sweep(Side, usize),
    /// The level `k`-th from the best (wrapping around the side) gets a new size, or goes:
    /// reaches levels wherever they are kept, deep ones included.
    Requote(Side, usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let side = prop_oneof![Just(Side::Bid), Just(Side::Ask)];
    let level = (
        side.clone(),
        prop_oneof![8 => -60i64..60, 1 => -20_000i64..20_000],
        prop_oneof![6 => Just(10i64), 2 => Just(5i64), 1 => Just(1i64), 1 => Just(250i64)],
        prop_oneof![12 => Just(0u8), 1 => 1u8..4],
        prop_oneof![1 => Just(0i64), 3 => 1i64..1_000_000],
        0u8..9,
    )
        .prop_map(
            |(side, offset, step, extra_digits, qty, qty_scale)| Op::Level {
                side,
                offset,
                step,
                extra_digits,
                qty,
                qty_scale,
            },
        );
    prop_oneof![
        40 => level,
        4 => prop_oneof![5 => -300i64..300, 1 => -200_000i64..200_000].prop_map(Op::Walk),
        1 => (0usize..80).prop_map(Op::Truncate),
        1 => Just(Op::Clear),
        1 => (side.clone(), 0u8..19).prop_map(|(side, scale)| Op::Huge(side, scale)),
        2 => (side.clone(), prop_oneof![1usize..10, 10usize..2_000]).prop_map(|(side, n)| Op::Sweep(side, n)),
        6 => (side, 0usize..5_000, prop_oneof![Just(0i64), 1i64..1_000]).prop_map(|(side, k, qty)| Op::Requote(side, k, qty)),
    ]
}

fn text(levels: &[Level]) -> Vec<(String, String)> {
    levels
        .iter()
        .map(|l| (l.price.to_string(), l.qty.to_string()))
        .collect()
}

fn check_same(book: &Book, model: &TreeBook) -> Result<(), TestCaseError> {
    let (best_bid, best_ask) = (model.best_bid(), model.best_ask());
    prop_assert_eq!(book.len(Side::Bid), model.len(Side::Bid));
    prop_assert_eq!(book.len(Side::Ask), model.len(Side::Ask));
    prop_assert_eq!(book.is_empty(), best_bid.is_none() && best_ask.is_none());
    prop_assert_eq!(
        text(&book.best_bid().into_iter().collect::<Vec<_>>()),
        text(&best_bid.into_iter().collect::<Vec<_>>())
    );
    prop_assert_eq!(
        text(&book.best_ask().into_iter().collect::<Vec<_>>()),
        text(&best_ask.into_iter().collect::<Vec<_>>())
    );
    let crossed = match (best_bid, best_ask) {
        (Some(b), Some(a)) => b.price >= a.price,
        _ => false,
    };
    prop_assert_eq!(book.is_crossed(), crossed);
    Ok(())
}

fn check_levels(book: &Book, model: &TreeBook) -> Result<(), TestCaseError> {
    let (bids, asks) = (model.bids(), model.asks());
    prop_assert_eq!(text(&book.bids().collect::<Vec<_>>()), text(&bids));
    prop_assert_eq!(text(&book.asks().collect::<Vec<_>>()), text(&asks));
    // Backwards too: the iterators are double-ended.
    let mut reversed: Vec<Level> = book.asks().rev().collect();
    reversed.reverse();
    prop_assert_eq!(text(&reversed), text(&asks));
    // Top-N into a caller's buffer.
    let mut top = [Level {
        price: Decimal::ZERO,
        qty: Decimal::ZERO,
    }; 5];
    let n = book.top_into(Side::Bid, &mut top);
    prop_assert_eq!(text(&top[..n]), text(&bids[..bids.len().min(5)]));
    prop_assert_eq!(
        text(&book.top(Side::Ask, 3).collect::<Vec<_>>()),
        text(&asks[..asks.len().min(3)])
    );
    Ok(())
}

fn run(ops: &[Op], start_mid: i64) -> Result<(), TestCaseError> {
    let mut book = Book::new();
    let mut model = TreeBook::default();
    let mut mid = start_mid;
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Level {
                side,
                offset,
                step,
                extra_digits,
                qty,
                qty_scale,
            } => {
                // Bids below the mid, asks above, so the book is rarely crossed; but the walk
                // can cross it, as a missed update would.
                let away = match side {
                    Side::Bid => -offset.abs(),
                    Side::Ask => offset.abs() + 1,
                };
                let units = ((mid + away) * step).max(0);
                let price = Decimal::new(units * pow10(extra_digits), extra_digits).unwrap();
                let qty = Decimal::new(qty, qty_scale).unwrap();
                let got = book.apply(side, price, qty);
                let want = model.apply(side, price, qty);
                prop_assert_eq!(got, want);
            }
            Op::Walk(by) => mid = (mid + by).clamp(0, 10_000_000),
            Op::Truncate(depth) => {
                book.truncate(depth);
                model.truncate(depth);
            }
            Op::Clear => {
                book.clear();
                model.clear();
            }
            Op::Sweep(side, n) => {
                for _ in 0..n {
                    let best = match side {
                        Side::Bid => model.best_bid(),
                        Side::Ask => model.best_ask(),
                    };
                    let Some(best) = best else {
                        break;
                    };
                    let gone = Decimal::ZERO;
                    prop_assert_eq!(
                        book.apply(side, best.price, gone),
                        model.apply(side, best.price, gone)
                    );
                    check_same(&book, &model)?;
                }
                check_levels(&book, &model)?;
            }
            Op::Requote(side, k, qty) => {
                let levels = match side {
                    Side::Bid => model.bids(),
                    Side::Ask => model.asks(),
                };
                if !levels.is_empty() {
                    let price = levels[k % levels.len()].price;
                    let qty = Decimal::new(qty, 1).unwrap();
                    prop_assert_eq!(book.apply(side, price, qty), model.apply(side, price, qty));
                }
            }
            Op::Huge(side, scale) => {
                let price = Decimal::new(i64::MAX / 3, scale).unwrap();
                let qty = Decimal::new(1, 0).unwrap();
                prop_assert_eq!(book.apply(side, price, qty), model.apply(side, price, qty));
            }
        }
        check_same(&book, &model)?;
        if n % 16 == 0 {
            check_levels(&book, &model)?;
        }
    }
    check_levels(&book, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ladder_book_equals_the_tree_book(
        ops in prop::collection::vec(op(), 0..600),
        start_mid in prop_oneof![Just(0i64), 1i64..100, 100_000i64..10_000_000],
    ) {
        run(&ops, start_mid)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Deep books: a snapshot of hundreds of levels a side, so the window grows to its cap and
    /// the tail lives in the map, then churn and walks.
    #[test]
    fn deep_books_equal_the_tree_book(
        depth in 1i64..3_000,
        gap in prop_oneof![Just(1i64), 1i64..7],
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let mid = 1_000_000;
        let mut snapshot = Vec::new();
        for i in 0..depth {
            for side in [Side::Bid, Side::Ask] {
                snapshot.push(Op::Level { side, offset: i * gap, step: 10, extra_digits: 0, qty: 1 + i, qty_scale: 2 });
            }
        }
        snapshot.extend(ops);
        run(&snapshot, mid)?;
    }
}

#[test]
fn a_far_jump_recentres_and_keeps_every_level() {
    let mut book = Book::new();
    let mut model = TreeBook::default();
    let d = |m: i64| Decimal::new(m, 2).unwrap();
    let one = Decimal::new(1, 0).unwrap();
    for i in 0..500 {
        for (side, m) in [(Side::Bid, 100_000 - i), (Side::Ask, 100_001 + i)] {
            book.apply(side, d(m), one).unwrap();
            model.apply(side, d(m), one).unwrap();
        }
    }
    // Far above every bid, then far below: each becomes the best.
    for m in [900_000, 10, 50_000] {
        book.apply(Side::Bid, d(m), one).unwrap();
        model.apply(Side::Bid, d(m), one).unwrap();
        assert_eq!(book.best_bid().unwrap().price, model.bids()[0].price);
    }
    // Removing the top walks down into the rest.
    for m in [900_000, 100_000, 99_999] {
        book.apply(Side::Bid, d(m), Decimal::ZERO).unwrap();
        model.apply(Side::Bid, d(m), Decimal::ZERO).unwrap();
        assert_eq!(book.best_bid().unwrap().price, model.bids()[0].price);
    }
    assert_eq!(text(&book.bids().collect::<Vec<_>>()), text(&model.bids()));
    assert_eq!(text(&book.asks().collect::<Vec<_>>()), text(&model.asks()));
}
