//! `SessionOptions::symbols` on real tapes: frames of the other symbols create no state and are
//! counted, and the subscribed symbol's book is exactly what an unfiltered session builds.

mod common;

use std::collections::BTreeMap;

use common::replay_by_connection;
use lobfeed_core::{Session, SessionOptions, Side};

fn replay(name: &str, options: &SessionOptions) -> BTreeMap<String, Box<dyn Session>> {
    replay_by_connection(name, options, |_| {})
}

fn book_text(session: &dyn Session, symbol: &str) -> Vec<String> {
    let symbols = session.symbols();
    let id = symbols.id(symbol).expect("symbol kept");
    let book = &symbols.sync(id).unwrap().book;
    [Side::Bid, Side::Ask]
        .into_iter()
        .flat_map(|side| book.levels(side).map(|l| format!("{}:{}", l.price, l.qty)))
        .collect()
}

/// Subscribes to `wanted` (spelled differently from the venue) and checks the result against
/// an unfiltered replay of the same tape.
fn check(tape: &str, venue_spelling: &str, wanted: &str) {
    let all = replay(tape, &SessionOptions::default());
    assert!(
        all.values().map(|s| s.symbols().len()).sum::<usize>() > 1,
        "{tape}: needs several symbols"
    );
    let options = SessionOptions {
        symbols: Some(vec![wanted.to_owned()]),
        ..SessionOptions::default()
    };
    let some = replay(tape, &options);
    let mut unsubscribed = 0;
    let mut seen = false;
    for (conn, session) in &some {
        let names = session.symbols().names();
        assert!(names.len() <= 1, "{tape} {conn}: {names:?}");
        unsubscribed += session.stats().unsubscribed;
        if names.len() == 1 {
            assert_eq!(names[0], venue_spelling);
            let full = all[conn].as_ref();
            assert_eq!(
                book_text(session.as_ref(), venue_spelling),
                book_text(full, venue_spelling)
            );
            // A connection of quotes or trades holds the symbol without a book.
            seen |= !book_text(full, venue_spelling).is_empty();
        }
    }
    assert!(seen, "{tape}: {venue_spelling} never seen");
    assert!(unsubscribed > 0, "{tape}");
}

#[test]
fn binance_keeps_only_the_subscribed_symbol() {
    check(
        "binance-coinm-10sym-2021.jsonl.gz",
        "XRPUSD_PERP",
        "xrpusd_perp",
    );
}

#[test]
fn okx_keeps_only_the_subscribed_instrument() {
    check("okx-books-3inst-2022.jsonl.gz", "BTC-USDT", "btc-usdt");
}

#[test]
fn kraken_keeps_only_the_subscribed_pair() {
    check(
        "kraken-v1-book1000-10sym-2021.jsonl.gz",
        "OMG/USD",
        "omg/usd",
    );
}

#[test]
fn bitfinex_keeps_only_the_subscribed_channel_symbol() {
    check("bitfinex-book-p0-7sym-2021.jsonl.gz", "tMNABTC", "tmnabtc");
}

#[test]
fn bybit_keeps_only_the_subscribed_symbol_on_each_connection() {
    check("bybit-2026.jsonl.gz", "ETHUSDT", "ethusdt");
}

#[test]
fn coinbase_keeps_only_the_subscribed_product() {
    check("coinbase-2026.jsonl.gz", "ETH-USD", "eth-usd");
}

#[test]
fn gemini_keeps_only_the_subscribed_symbol() {
    check("gemini-v2-l2-10sym-2021.jsonl.gz", "GRTUSD", "grtusd");
}
