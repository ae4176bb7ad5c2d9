use std::io::Write;

use super::*;
use crate::decimal::Decimal;
use crate::sync::SyncState;

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

fn depth(symbol: &str, version: u64, bids: &str, asks: &str) -> Vec<u8> {
    gzip(&format!(
        r#"{{"ch":"market.{symbol}.depth.step0","ts":1645289384831,"tick":{{"mrid":{version},"id":1,"bids":{bids},"asks":{asks},"ts":1645289384830,"version":{version},"ch":"market.{symbol}.depth.step0"}}}}"#
    ))
}

fn session() -> HtxSession {
    HtxSession::new(SessionOptions::default())
}

#[test]
fn each_push_replaces_the_whole_book_with_exact_numbers() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(
        &depth("BTC-USD", 5, "[[40000.5,10],[39999,2]]", "[[40001,3]]"),
        1,
        &mut out,
    )
    .unwrap();
    s.receive(
        &depth("BTC-USD", 6, "[[40000.1,7]]", "[[9.9E-7,1],[40002,4]]"),
        2,
        &mut out,
    )
    .unwrap();
    // 9.9E-7 is below the bid: the push is crossed and the book dropped.
    assert!(out.iter().any(|e| matches!(
        e,
        Event::SyncLost {
            reason: crate::event::LossReason::Crossed { .. },
            ..
        }
    )));
    out.clear();
    s.receive(
        &depth("BTC-USD", 7, "[[40000.10,7]]", "[[40002,4]]"),
        3,
        &mut out,
    )
    .unwrap();
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    let bids: Vec<_> = sync.book.bids().map(|l| (l.price, l.qty)).collect();
    assert_eq!(bids, vec![(dec("40000.10"), dec("7"))]);
    assert_eq!(sync.book.best_bid().unwrap().price.to_string(), "40000.10");
    assert_eq!(sync.book.len(crate::book::Side::Ask), 1);
    assert!(matches!(out[0], Event::Resynced { seq: Some(7), .. }));
    assert!(matches!(
        out[1],
        Event::BookUpdated {
            seq: Some(7),
            exchange_ts_ns: 1_645_289_384_830_000_000,
            ..
        }
    ));
}

#[test]
fn an_older_push_is_stale_and_changes_nothing() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(&depth("ETH-USDT", 9, "[[10,1]]", "[[11,1]]"), 1, &mut out)
        .unwrap();
    out.clear();
    s.receive(&depth("ETH-USDT", 8, "[[1,1]]", "[[2,1]]"), 2, &mut out)
        .unwrap();
    assert!(out.is_empty());
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.stale_dropped, 1);
    assert_eq!(sync.book.best_bid().unwrap().price, dec("10"));
}

#[test]
fn ping_is_answered_with_the_same_number() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(&gzip(r#"{"ping":1645289389594}"#), 1, &mut out)
        .unwrap();
    assert_eq!(
        out,
        vec![Event::Reply {
            text: r#"{"pong":1645289389594}"#.to_owned()
        }]
    );
}

#[test]
fn plain_json_frames_are_read_too() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(br#"{"ping":7}"#, 1, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Event::Reply {
            text: r#"{"pong":7}"#.to_owned()
        }]
    );
}

#[test]
fn trades_keep_their_digits_side_and_id() {
    let mut s = session();
    let mut out = Vec::new();
    let frame = gzip(
        r#"{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"id":1,"ts":1,"data":[{"id":10163537855410253432341093,"ts":1630994963173,"tradeId":100050305348,"amount":0.045,"price":52648.62,"direction":"sell"},{"id":2,"ts":1630994963174,"amount":1,"price":52649,"direction":"buy"}]}}"#,
    );
    s.receive(&frame, 9, &mut out).unwrap();
    let trades: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(trades.len(), 2);
    assert_eq!(trades[0].trade_id, "100050305348");
    assert_eq!(trades[0].price.to_string(), "52648.62");
    assert_eq!(trades[0].size.to_string(), "0.045");
    assert_eq!(trades[0].side, Some(TradeSide::Sell));
    assert_eq!(trades[0].exchange_ts_ns, 1_630_994_963_173_000_000);
    assert_eq!(trades[1].trade_id, "2");
    assert_eq!(trades[1].side, Some(TradeSide::Buy));
}

#[test]
fn an_error_answer_is_a_venue_error() {
    let mut s = session();
    let frame = gzip(
        r#"{"status":"error","ts":1,"id":"3","err-code":"bad-request","err-msg":"invalid topic market.nope.depth.step0"}"#,
    );
    let err = s.receive(&frame, 1, &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code bad-request: invalid topic market.nope.depth.step0".into())
    );
}

#[test]
fn a_bad_number_resyncs_only_that_symbol() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(&depth("A-USD", 1, "[[1,1]]", "[[2,1]]"), 1, &mut out)
        .unwrap();
    s.receive(&depth("B-USD", 1, "[[1,1]]", "[[2,1]]"), 1, &mut out)
        .unwrap();
    out.clear();
    let err = s
        .receive(&depth("A-USD", 2, r#"[["x",1]]"#, "[[2,1]]"), 2, &mut out)
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("A-USD"));
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "price", .. } | FrameError::Json(_)
    ));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
}

#[test]
fn unsubscribed_symbols_and_acks_are_dropped() {
    let mut s = HtxSession::new(SessionOptions {
        symbols: Some(vec!["btc-usd".into()]),
        ..SessionOptions::default()
    });
    let mut out = Vec::new();
    s.receive(&depth("ETH-USD", 1, "[[1,1]]", "[[2,1]]"), 1, &mut out)
        .unwrap();
    s.receive(
        &gzip(r#"{"id":"1","subbed":"market.BTC-USD.depth.step0","ts":1,"status":"ok"}"#),
        1,
        &mut out,
    )
    .unwrap();
    s.receive(&depth("BTC-USD", 1, "[[1,1]]", "[[2,1]]"), 1, &mut out)
        .unwrap();
    assert_eq!(s.stats().unsubscribed, 1);
    assert_eq!(s.stats().ignored, 1);
    assert_eq!(s.symbols().names(), ["BTC-USD"]);
}

#[test]
fn a_broken_gzip_frame_is_a_typed_error() {
    let mut s = session();
    let mut frame = gzip(r#"{"ping":1}"#);
    let len = frame.len();
    frame.truncate(len - 3);
    let err = s.receive(&frame, 1, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err.error, FrameError::Invalid(ref m) if m.contains("gzip")),
        "{err:?}"
    );
}

#[test]
fn levels_past_the_kept_depth_are_skipped_but_still_checked() {
    let mut s = HtxSession::new(SessionOptions {
        depth: Some(1),
        ..SessionOptions::default()
    });
    let mut out = Vec::new();
    s.receive(
        &depth(
            "BTC-USD",
            5,
            "[[40000.5,10],[39999,2],[1e2,1]]",
            "[[40001,3],[40002,1]]",
        ),
        1,
        &mut out,
    )
    .unwrap();
    let book = &s.symbols().sync(0).unwrap().book;
    let bids: Vec<_> = book.bids().map(|l| (l.price, l.qty)).collect();
    assert_eq!(bids, vec![(dec("40000.5"), dec("10"))]);
    assert_eq!(book.len(crate::book::Side::Ask), 1);
    // A skipped level is not read, but the frame must still be JSON.
    let err = s
        .receive(
            &depth("BTC-USD", 6, "[[40000.5,10],[39999,]]", "[]"),
            2,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Json(_)), "{err:?}");
    // A kept level with a bad number is a typed error (read again by the serde path).
    let err = s
        .receive(&depth("BTC-USD", 7, "[[1e999,10]]", "[]"), 3, &mut out)
        .unwrap_err();
    assert!(
        matches!(err.error, FrameError::BadNumber { field: "price", .. }),
        "{err:?}"
    );
}

#[test]
fn gzip_members_with_optional_header_fields_inflate_and_a_bad_crc_is_refused() {
    let text = r#"{"ping":1645289384831}"#;
    let mut encoder = flate2::GzBuilder::new()
        .filename("frame.json")
        .comment("a comment")
        .extra(vec![1, 2, 3])
        .write(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    let framed = encoder.finish().unwrap();
    let mut s = session();
    let mut out = Vec::new();
    s.receive(&framed, 0, &mut out).unwrap();
    assert!(matches!(&out[..], [Event::Reply { text }] if text == r#"{"pong":1645289384831}"#));
    let mut bad_crc = gzip(text);
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 1;
    let err = s.receive(&bad_crc, 0, &mut out).unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
    let truncated = gzip(text);
    let err = s
        .receive(&truncated[..truncated.len() - 12], 0, &mut out)
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
}
