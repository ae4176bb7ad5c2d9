use super::*;
use crate::sync::SyncState;

#[test]
fn refused_requests_are_typed_venue_errors_and_change_no_book() {
    let mut s = BinanceSession::new(Market::Spot, SessionOptions::default());
    let mut out = Vec::new();
    s.receive(
        br#"{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[]}"#,
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    for (frame, message) in [
        (
            r#"{"code":0,"msg":"Unknown property","id":1}"#,
            "code 0: Unknown property",
        ),
        (
            r#"{"error":{"code":2,"msg":"Invalid request: unknown method"},"id":2}"#,
            "code 2: Invalid request: unknown method",
        ),
    ] {
        out.clear();
        let err = s.receive(frame.as_bytes(), 2, &mut out).unwrap_err();
        assert_eq!(err.symbol, None);
        assert_eq!(err.error, FrameError::VenueError(message.into()));
        assert!(out.is_empty());
    }
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.buffered(), 1, "the buffered update is kept");
    assert_eq!(sync.counters.errors, 0);
    assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
}

fn depth(first: u64, last: u64, bid: &str) -> String {
    format!(
        r#"{{"stream":"bnbbtc@depth","data":{{"e":"depthUpdate","E":1,"s":"BNBBTC","U":{first},"u":{last},"b":[["{bid}","1"]],"a":[]}}}}"#
    )
}

#[test]
fn ids_going_backwards_lose_sync_and_a_snapshot_recovers() {
    use crate::event::LossReason;
    let mut s = BinanceSession::new(Market::Spot, SessionOptions::default());
    let mut out = Vec::new();
    s.receive(depth(100, 105, "0.0020").as_bytes(), 1, &mut out)
        .unwrap();
    let body = br#"{"lastUpdateId":102,"bids":[["0.0010","5"]],"asks":[["0.0030","5"]]}"#;
    s.receive_snapshot("BNBBTC", body, 2, &mut out).unwrap();
    s.receive(depth(106, 110, "0.0021").as_bytes(), 3, &mut out)
        .unwrap();
    assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(110));
    // A repeat of the last event: dropped as stale, nothing said.
    out.clear();
    s.receive(depth(106, 110, "0.0021").as_bytes(), 4, &mut out)
        .unwrap();
    assert!(out.is_empty());
    // The venue's ids restart lower: before, every later event was dropped as stale
    // and the book froze; now the symbol says so and asks for a snapshot.
    s.receive(depth(7, 9, "0.0022").as_bytes(), 5, &mut out)
        .unwrap();
    assert_eq!(
        out,
        vec![
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::IdsBackwards {
                    last: 110,
                    received: 9
                }
            },
            Event::NeedSnapshot { symbol: 0 }
        ]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
    assert_eq!(
        (sync.counters.ids_backwards, sync.counters.stale_dropped),
        (1, 1)
    );
    assert_eq!(sync.buffered(), 1);
    // The new stream is buffered and bridged to a snapshot of it.
    out.clear();
    s.receive(depth(10, 12, "0.0023").as_bytes(), 6, &mut out)
        .unwrap();
    let body = br#"{"lastUpdateId":11,"bids":[["0.0010","5"]],"asks":[["0.0030","5"]]}"#;
    s.receive_snapshot("BNBBTC", body, 7, &mut out).unwrap();
    assert!(out
        .iter()
        .any(|e| matches!(e, Event::Resynced { seq: Some(12), .. })));
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    assert_eq!(sync.counters.resyncs, 1);
    assert_eq!(
        sync.counters.stale_dropped, 2,
        "7..=9 is before the new snapshot"
    );
    assert_eq!(
        sync.book.best_bid().map(|l| l.price.to_string()),
        Some("0.0023".to_owned())
    );
}

#[test]
fn unsubscribed_symbols_create_nothing_and_are_counted() {
    let options = SessionOptions {
        symbols: Some(vec!["ethusdt".to_owned()]),
        ..SessionOptions::default()
    };
    let mut s = BinanceSession::new(Market::Spot, options);
    let mut out = Vec::new();
    s.receive(depth(100, 105, "0.0020").as_bytes(), 1, &mut out)
        .unwrap();
    let trade = br#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1,"m":true}}"#;
    s.receive(trade, 2, &mut out).unwrap();
    let body = br#"{"lastUpdateId":102,"bids":[["0.0010","5"]],"asks":[]}"#;
    s.receive_snapshot("BNBBTC", body, 3, &mut out).unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.symbols().len(), 0);
    assert_eq!(s.stats().unsubscribed, 3);
    // The subscribed one, spelled as the venue spells it.
    let eth = depth(100, 105, "0.0020").replace("BNBBTC", "ETHUSDT");
    s.receive(eth.as_bytes(), 4, &mut out).unwrap();
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    assert_eq!(s.symbols().names(), ["ETHUSDT"]);
    assert_eq!(s.stats().unsubscribed, 3);
}

#[test]
fn agg_trades_carry_the_aggregate_id_and_the_taker_side() {
    let mut s = BinanceSession::new(Market::UsdM, SessionOptions::default());
    let mut out = Vec::new();
    // As recorded on USDⓈ-M (binance-usdm-4sym-2021), and one whose buyer was the maker.
    for frame in [
        r#"{"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}}"#,
        r#"{"e":"aggTrade","E":1626992741600,"a":16599293,"s":"CTKUSDT","p":"1.01000","q":"7.5","f":23961323,"l":23961325,"T":1626992741590,"m":true}"#,
    ] {
        s.receive(frame.as_bytes(), 9, &mut out).unwrap();
    }
    let trades: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (
                t.trade_id.as_str(),
                t.price.to_string(),
                t.size.to_string(),
                t.side,
                t.exchange_ts_ns,
                t.is_snapshot,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        trades,
        vec![
            (
                "16599292",
                "1.01100".into(),
                "10".into(),
                Some(TradeSide::Buy),
                1_626_992_741_421_000_000,
                false
            ),
            (
                "16599293",
                "1.01000".into(),
                "7.5".into(),
                Some(TradeSide::Sell),
                1_626_992_741_590_000_000,
                false
            ),
        ]
    );
    // An aggTrade without its aggregate id is malformed, not a trade with another id.
    let err = s
        .receive(
            br#"{"e":"aggTrade","E":1,"s":"CTKUSDT","p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"t":5}"#,
            9,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.error, FrameError::MissingField("a"));
}

#[test]
fn symbols_match_in_the_users_case_and_the_venues() {
    let options = SessionOptions {
        symbols: Some(vec!["bnbbtc".to_owned()]),
        ..SessionOptions::default()
    };
    let mut s = BinanceSession::new(Market::Spot, options);
    let mut out = Vec::new();
    s.receive(depth(100, 105, "0.0020").as_bytes(), 1, &mut out)
        .unwrap();
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    // The snapshot asked for in the user's spelling lands on the venue's symbol.
    let body = br#"{"lastUpdateId":102,"bids":[["0.0010","5"]],"asks":[["0.0030","5"]]}"#;
    s.receive_snapshot("bnbbtc", body, 2, &mut out).unwrap();
    assert_eq!(s.symbols().names(), ["BNBBTC"]);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(s.stats().unsubscribed, 0);
}
