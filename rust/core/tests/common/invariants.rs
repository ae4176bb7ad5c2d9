//! What must hold of a session's books whatever bytes it was fed: shared by
//! `tests/fuzz_tapes.rs` and the cargo-fuzz targets in `fuzz/` (included there by path).
//!
//! - a live book is never crossed (best bid < best ask);
//! - no book holds a zero-size (or negative) level, nor a negative price;
//! - each side is strictly ordered, best first, and the cached best level is the first one.

#![allow(dead_code)]

use lobfeed_core::{Level, Session, SyncState};

/// The first broken invariant of any symbol's book, described for the failure message.
pub fn check_books(session: &dyn Session) -> Result<(), String> {
    let symbols = session.symbols();
    for id in 0..symbols.len() {
        let id = id as lobfeed_core::SymbolId;
        let name = symbols.name(id);
        let Some(sync) = symbols.sync(id) else {
            return Err(format!("symbol {name} ({id}) has no sync state"));
        };
        let book = &sync.book;
        if sync.state() == SyncState::Live && book.is_crossed() {
            return Err(format!(
                "{name}: live book crossed: bid {:?} ask {:?}",
                book.best_bid().map(|l| l.price.to_string()),
                book.best_ask().map(|l| l.price.to_string())
            ));
        }
        let bids: Vec<Level> = book.bids().collect();
        let asks: Vec<Level> = book.asks().collect();
        for level in bids.iter().chain(&asks) {
            if level.qty.is_zero() || level.qty.is_negative() {
                return Err(format!(
                    "{name}: level {} holds size {}",
                    level.price, level.qty
                ));
            }
            if level.price.is_negative() {
                return Err(format!("{name}: negative price {}", level.price));
            }
        }
        if !bids.windows(2).all(|w| w[0].price > w[1].price) {
            return Err(format!("{name}: bids out of order"));
        }
        if !asks.windows(2).all(|w| w[0].price < w[1].price) {
            return Err(format!("{name}: asks out of order"));
        }
        if book.best_bid() != bids.first().copied() {
            return Err(format!(
                "{name}: cached best bid {:?} is not the first bid {:?}",
                book.best_bid(),
                bids.first()
            ));
        }
        if book.best_ask() != asks.first().copied() {
            return Err(format!(
                "{name}: cached best ask {:?} is not the first ask {:?}",
                book.best_ask(),
                asks.first()
            ));
        }
    }
    Ok(())
}
