//! Invariants, not examples: the book against a naive model, decimals round-tripping, the sync
//! machine bridging a snapshot delivered at any point, and decoders that never panic.

use std::collections::BTreeMap;

use lobfeed_core::{new_session, Book, Decimal, Event, Level, SessionOptions, Side, VENUES};
use proptest::prelude::*;

/// The Gemini v1 session, which `VENUES` does not name (its name carries its one symbol).
const GEMINI_V1: &str = "gemini-v1:BTCUSD";

fn decimal(mantissa: i64, scale: u8) -> Decimal {
    Decimal::new(mantissa, scale).unwrap()
}

/// Prices on a few scales so that re-keying is exercised; sizes include zero (deletes).
fn level_op() -> impl Strategy<Value = (Side, Decimal, Decimal)> {
    (
        prop_oneof![Just(Side::Bid), Just(Side::Ask)],
        1i64..2_000,
        0u8..4,
        prop_oneof![Just(0i64), 1i64..1_000_000],
        0u8..8,
    )
        .prop_map(|(side, p, ps, q, qs)| (side, decimal(p, ps), decimal(q, qs)))
}

/// The naive reference: a map from the exact price value to the last level written there.
#[derive(Default)]
struct Model {
    bids: BTreeMap<Decimal, Level>,
    asks: BTreeMap<Decimal, Level>,
}

impl Model {
    fn apply(&mut self, side: Side, price: Decimal, qty: Decimal) {
        let tree = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        // Equal values written with other digits are the same level: drop the old key first.
        tree.remove(&price);
        if !qty.is_zero() {
            tree.insert(price, Level { price, qty });
        }
    }
    fn bids(&self) -> Vec<Level> {
        self.bids.values().rev().copied().collect()
    }
    fn asks(&self) -> Vec<Level> {
        self.asks.values().copied().collect()
    }
}

fn same_text(a: &[Level], b: &[Level]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.price.to_string() == y.price.to_string() && x.qty.to_string() == y.qty.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn book_matches_the_naive_model(ops in prop::collection::vec(level_op(), 0..300)) {
        let mut book = Book::new();
        let mut model = Model::default();
        for (side, price, qty) in &ops {
            book.apply(*side, *price, *qty).unwrap();
            model.apply(*side, *price, *qty);
            prop_assert_eq!(book.best_bid().map(|l| l.price), model.bids().first().map(|l| l.price));
            prop_assert_eq!(book.best_ask().map(|l| l.price), model.asks().first().map(|l| l.price));
        }
        let bids: Vec<Level> = book.bids().collect();
        let asks: Vec<Level> = book.asks().collect();
        prop_assert!(same_text(&bids, &model.bids()));
        prop_assert!(same_text(&asks, &model.asks()));
        // No zero-size level is ever kept.
        prop_assert!(bids.iter().chain(&asks).all(|l| !l.qty.is_zero()));
        // Sorted strictly: best first on both sides.
        prop_assert!(bids.windows(2).all(|w| w[0].price > w[1].price));
        prop_assert!(asks.windows(2).all(|w| w[0].price < w[1].price));
    }

    #[test]
    fn snapshot_then_deltas_equals_the_final_snapshot(
        ops in prop::collection::vec(level_op(), 0..300),
        split in 0usize..300,
    ) {
        // Incremental: everything as deltas.
        let mut incremental = Book::new();
        for (side, price, qty) in &ops {
            incremental.apply(*side, *price, *qty).unwrap();
        }
        // A snapshot of the state after `split` ops, then the remaining deltas.
        let split = split.min(ops.len());
        let mut prefix = Model::default();
        for (side, price, qty) in &ops[..split] {
            prefix.apply(*side, *price, *qty);
        }
        let mut rebuilt = Book::new();
        for l in prefix.bids() {
            rebuilt.apply(Side::Bid, l.price, l.qty).unwrap();
        }
        for l in prefix.asks() {
            rebuilt.apply(Side::Ask, l.price, l.qty).unwrap();
        }
        for (side, price, qty) in &ops[split..] {
            rebuilt.apply(*side, *price, *qty).unwrap();
        }
        let a: Vec<Level> = incremental.bids().chain(incremental.asks()).collect();
        let b: Vec<Level> = rebuilt.bids().chain(rebuilt.asks()).collect();
        prop_assert!(same_text(&a, &b));
    }

    #[test]
    fn truncation_keeps_the_best_levels(ops in prop::collection::vec(level_op(), 0..200), depth in 0usize..20) {
        let mut book = Book::new();
        let mut model = Model::default();
        for (side, price, qty) in &ops {
            book.apply(*side, *price, *qty).unwrap();
            model.apply(*side, *price, *qty);
        }
        book.truncate(depth);
        let bids: Vec<Level> = book.bids().collect();
        let asks: Vec<Level> = book.asks().collect();
        let want_bids: Vec<Level> = model.bids().into_iter().take(depth).collect();
        let want_asks: Vec<Level> = model.asks().into_iter().take(depth).collect();
        prop_assert!(same_text(&bids, &want_bids));
        prop_assert!(same_text(&asks, &want_asks));
        prop_assert_eq!(book.best_bid().map(|l| l.price), want_bids.first().map(|l| l.price));
    }

    #[test]
    fn decimals_print_back_what_they_parse(mantissa in any::<i64>(), scale in 0u8..=18) {
        prop_assume!(mantissa != i64::MIN);
        let d = decimal(mantissa, scale);
        let text = d.to_string();
        let back = Decimal::parse(&text).unwrap();
        prop_assert_eq!(back, d);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn decimal_order_is_numeric(a in -1_000_000i64..1_000_000, sa in 0u8..6, b in -1_000_000i64..1_000_000, sb in 0u8..6) {
        let x = decimal(a, sa);
        let y = decimal(b, sb);
        let xa = a as i128 * 10i128.pow((6 - sa) as u32);
        let yb = b as i128 * 10i128.pow((6 - sb) as u32);
        prop_assert_eq!(x.cmp(&y), xa.cmp(&yb));
    }

    #[test]
    fn decimal_parser_never_panics(text in "[-+0-9.eE]{0,30}") {
        let _ = Decimal::parse(&text);
    }

    /// A Binance spot stream with contiguous ids and a snapshot taken at any id, delivered at
    /// any later point: the synced book always equals the model.
    #[test]
    fn binance_bridges_a_snapshot_delivered_at_any_point(
        ops in prop::collection::vec(level_op(), 1..120),
        snapshot_at in 0usize..120,
        delivered_after in 0usize..120,
    ) {
        // A real book never crosses, and a crossed one now costs the symbol its sync: asks
        // are lifted above every bid the generator can make.
        let ops: Vec<(Side, Decimal, Decimal)> = ops
            .into_iter()
            .map(|(side, price, qty)| match side {
                Side::Bid => (side, price, qty),
                Side::Ask => {
                    let lift = 2_000 * 10i64.pow(u32::from(price.scale()));
                    (side, decimal(price.mantissa() + lift, price.scale()), qty)
                }
            })
            .collect();
        let snapshot_at = snapshot_at.min(ops.len());
        let delivered_after = delivered_after.clamp(snapshot_at, ops.len());
        let mut model = Model::default();
        let mut snapshot_body = String::new();
        let mut frames = Vec::new();
        for (i, (side, price, qty)) in ops.iter().enumerate() {
            if i == snapshot_at {
                snapshot_body = snapshot_json(100 + i as u64, &model);
            }
            model.apply(*side, *price, *qty);
            let id = 101 + i as u64;
            let (b, a) = match side {
                Side::Bid => (format!("[[\"{price}\",\"{qty}\"]]"), "[]".to_owned()),
                Side::Ask => ("[]".to_owned(), format!("[[\"{price}\",\"{qty}\"]]")),
            };
            frames.push(format!(
                "{{\"stream\":\"x@depth\",\"data\":{{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":{id},\"u\":{id},\"b\":{b},\"a\":{a}}}}}"
            ));
        }
        if snapshot_at == ops.len() {
            snapshot_body = snapshot_json(100 + ops.len() as u64, &model);
        }
        let mut session = new_session("binance", SessionOptions::default()).unwrap();
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            if i == delivered_after {
                session.receive_snapshot("X", snapshot_body.as_bytes(), 0, &mut out).unwrap();
            }
            session.receive(frame.as_bytes(), 0, &mut out).unwrap();
        }
        if delivered_after == frames.len() {
            session.receive_snapshot("X", snapshot_body.as_bytes(), 0, &mut out).unwrap();
        }
        let gaps = out.iter().filter(|e| matches!(e, Event::GapDetected { .. })).count();
        prop_assert_eq!(gaps, 0);
        let id = session.symbols().id("X").unwrap();
        let book = &session.symbols().sync(id).unwrap().book;
        let bids: Vec<Level> = book.bids().collect();
        let asks: Vec<Level> = book.asks().collect();
        prop_assert!(same_text(&bids, &model.bids()));
        prop_assert!(same_text(&asks, &model.asks()));
    }

    /// Any bytes into any venue: Ok or a typed error, never a panic.
    #[test]
    fn every_decoder_survives_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for venue in VENUES.iter().chain(&[GEMINI_V1]) {
            let mut session = new_session(venue, SessionOptions::default()).unwrap();
            let mut out = Vec::new();
            let _ = session.receive(&bytes, 0, &mut out);
            let _ = session.receive_snapshot("X", &bytes, 0, &mut out);
        }
    }

    /// JSON-shaped garbage reaches deeper into the decoders than random bytes.
    #[test]
    fn every_decoder_survives_json_shaped_input(json in json_value(3)) {
        let text = json.to_string();
        for venue in VENUES.iter().chain(&[GEMINI_V1]) {
            let mut session = new_session(venue, SessionOptions::default()).unwrap();
            let mut out = Vec::new();
            let _ = session.receive(text.as_bytes(), 0, &mut out);
            let wrapped = format!("{{\"stream\":\"x@depth\",\"data\":{text}}}");
            let _ = session.receive(wrapped.as_bytes(), 0, &mut out);
            let _ = session.receive_snapshot("X", text.as_bytes(), 0, &mut out);
        }
    }
}

fn snapshot_json(last_update_id: u64, model: &Model) -> String {
    let side = |levels: Vec<Level>| {
        levels
            .iter()
            .map(|l| format!("[\"{}\",\"{}\"]", l.price, l.qty))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"lastUpdateId\":{last_update_id},\"bids\":[{}],\"asks\":[{}]}}",
        side(model.bids()),
        side(model.asks())
    )
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let keys = prop_oneof![
        Just("e"),
        Just("s"),
        Just("U"),
        Just("u"),
        Just("pu"),
        Just("b"),
        Just("a"),
        Just("B"),
        Just("A"),
        Just("E"),
        Just("T"),
        Just("p"),
        Just("q"),
        Just("t"),
        Just("m"),
        Just("k"),
        Just("data"),
        Just("lastUpdateId"),
        Just("bids"),
        Just("asks"),
        Just("code"),
        Just("msg"),
        Just("type"),
        Just("topic"),
        Just("channel"),
        Just("event"),
        Just("arg"),
        Just("action"),
        Just("changes"),
        Just("symbol"),
        Just("events"),
        Just("sequence_num"),
        Just("updates"),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        prop_oneof![
            Just("depthUpdate"),
            Just("bookTicker"),
            Just("trade"),
            Just("aggTrade"),
            Just("kline"),
            Just("1.5"),
            Just("0"),
            Just("-1"),
            Just("x"),
            Just("snapshot"),
            Just("update"),
            Just("delta"),
            Just("1e400"),
            Just(""),
        ]
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(depth, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// The scanner's one-pass decimal reader agrees with the general parser on any text.
    #[test]
    fn scanned_decimals_equal_parsed_decimals(text in "[0-9]{0,12}(\\.[0-9]{0,20})?|[-+0-9.eE]{0,24}") {
        use lobfeed_core::venue::scan::Scanner;
        let json = format!("\"{text}\"");
        let mut scanner = Scanner::new(json.as_bytes());
        let scanned = scanner.quoted_decimal().expect("a closed string");
        prop_assert_eq!(scanned, Decimal::parse(&text));
        prop_assert!(scanner.finish().is_ok());
    }
}
