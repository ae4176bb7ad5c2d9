use super::*;
use crate::book::{Book, Side};
use crate::decimal::Decimal;
use crate::event::{LossReason, Quote, TradeSide};
use crate::venue::new_session;

fn feed(s: &mut dyn Session, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 5, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn d(s: &str) -> Decimal {
    Decimal::parse(s).unwrap()
}

fn js(s: &str) -> String {
    let mut out = String::new();
    write_js_number(d(s), false, &mut out);
    out
}

/// A session subscribed (per Bitfinex's v2 docs) to the tBTCUSD book on channel 17 and its
/// trades on channel 18, with sequence numbers and checksums.
fn subscribed() -> Box<dyn Session> {
    let mut s = new_session("bitfinex", SessionOptions::default()).unwrap();
    for frame in [
        r#"{"event":"info","version":2,"serverId":"0d1f2e3c","platform":{"status":1}}"#,
        r#"{"event":"conf","status":"OK","flags":196608}"#,
        r#"{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
        r#"{"event":"subscribed","channel":"trades","chanId":18,"symbol":"tBTCUSD","pair":"BTCUSD"}"#,
    ] {
        assert!(feed(s.as_mut(), frame).is_empty());
    }
    s
}

const SNAPSHOT: &str = "[17,[[7254.7,3,3.3],[7254.6,1,0.5],[7254,2,1e-7],[7255,1,-0.25],[7255.5,4,-2.00000001],[7260,1,-10]],1]";

#[test]
fn writes_numbers_as_javascript_does() {
    assert_eq!(js("7254.70"), "7254.7");
    assert_eq!(js("7254.0"), "7254");
    assert_eq!(js("100"), "100");
    assert_eq!(js("0.000001"), "0.000001");
    assert_eq!(js("0.0000010"), "0.000001");
    assert_eq!(js("0.00000099"), "9.9e-7");
    assert_eq!(js("1e-7"), "1e-7");
    assert_eq!(js("0.000000025"), "2.5e-8");
    assert_eq!(js("0.00002516"), "0.00002516");
    assert_eq!(js("-2.00000001"), "-2.00000001");
    assert_eq!(js("0"), "0");
    let mut out = String::new();
    write_js_number(d("0.25"), true, &mut out);
    assert_eq!(out, "-0.25");
}

#[test]
fn subscription_maps_channels_and_snapshot_builds_book() {
    let mut s = subscribed();
    let out = feed(s.as_mut(), SNAPSHOT);
    assert_eq!(
        out,
        vec![Event::BookUpdated {
            symbol: 0,
            seq: Some(1),
            exchange_ts_ns: 0,
            ts_ns: 5
        }]
    );
    assert_eq!(s.symbols().name(0), "tBTCUSD");
    let book = &s.symbols().sync(0).unwrap().book;
    assert_eq!(book.len(Side::Bid), 3);
    assert_eq!(book.len(Side::Ask), 3);
    assert_eq!(book.best_bid().unwrap().price.to_string(), "7254.7");
    assert_eq!(book.best_ask().unwrap().qty.to_string(), "0.25");
    // The smallest bid kept the token's exact value.
    assert_eq!(book.bids().last().unwrap().qty.to_string(), "0.0000001");

    // The trades channel: snapshot newest first, emitted oldest first; then "te" only.
    let out = feed(
        s.as_mut(),
        "[18,[[402,1574694478000,-0.005,7253],[401,1574694475000,0.01,7254.7]],2]",
    );
    let trades: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (
                t.trade_id.clone(),
                t.side,
                t.size.to_string(),
                t.is_snapshot,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    // The snapshot is history sent on subscribe: marked.
    assert_eq!(
        trades,
        vec![
            ("401".into(), Some(TradeSide::Buy), "0.01".into(), true),
            ("402".into(), Some(TradeSide::Sell), "0.005".into(), true)
        ]
    );
    let out = feed(s.as_mut(), r#"[18,"te",[403,1574694479000,0.5,7255],3]"#);
    assert!(matches!(&out[..], [Event::Trade(t)]
        if t.trade_id == "403" && t.exchange_ts_ns == 1_574_694_479_000_000_000
            && t.price.to_string() == "7255" && !t.is_snapshot));
    assert!(feed(s.as_mut(), r#"[18,"tu",[403,1574694479000,0.5,7255],4]"#).is_empty());
    // A channel the session never saw subscribed: counted, not an error.
    let ignored = s.stats().ignored;
    assert!(feed(s.as_mut(), "[99,[1,2,3],5]").is_empty());
    assert_eq!(s.stats().ignored, ignored + 1);
    // Unsubscribing unmaps the channel: its frames no longer touch the book.
    feed(
        s.as_mut(),
        r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
    );
    assert!(feed(s.as_mut(), "[17,[7254.7,0,1],6]").is_empty());
    assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 3);
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn count_zero_deletes_by_sign_of_amount() {
    let mut s = subscribed();
    feed(s.as_mut(), SNAPSHOT);
    // Delete the best bid (amount 1) and the best ask (amount -1).
    feed(s.as_mut(), "[17,[7254.7,0,1],2]");
    feed(s.as_mut(), "[17,[7255,0,-1],3]");
    let book = &s.symbols().sync(0).unwrap().book;
    assert_eq!(book.best_bid().unwrap().price.to_string(), "7254.6");
    assert_eq!(book.best_ask().unwrap().price.to_string(), "7255.5");
    assert_eq!(book.len(Side::Bid), 2);
    assert_eq!(book.len(Side::Ask), 2);
    // count > 0 sets the level; an ask's amount is negative.
    feed(s.as_mut(), "[17,[7255.2,1,-0.75],4]");
    let book = &s.symbols().sync(0).unwrap().book;
    let best = book.best_ask().unwrap();
    assert_eq!(
        (best.price.to_string(), best.qty.to_string()),
        ("7255.2".into(), "0.75".into())
    );
    // Deleting an unknown level is harmless.
    feed(s.as_mut(), "[17,[1,0,1],5]");
    assert!(!s.symbols().sync(0).unwrap().book.is_crossed());
}

#[test]
fn heartbeat_advances_the_sequence() {
    let mut s = subscribed();
    feed(s.as_mut(), SNAPSHOT);
    let ignored = s.stats().ignored;
    assert!(feed(s.as_mut(), r#"[17,"hb",2]"#).is_empty());
    assert!(feed(s.as_mut(), r#"[18,"hb",3]"#).is_empty());
    assert_eq!(s.stats().ignored, ignored + 2);
    // 4 follows 3: no gap.
    let out = feed(s.as_mut(), "[17,[7254.6,2,0.7],4]");
    assert!(matches!(
        &out[..],
        [Event::BookUpdated { seq: Some(4), .. }]
    ));
    // Without the heartbeats counted, 4 after 1 would have been a gap.
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
}

#[test]
fn sequence_gap_resyncs_every_book_of_the_connection() {
    let mut s = subscribed();
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":19,"symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25","pair":"ETHUSD"}"#,
    );
    feed(s.as_mut(), SNAPSHOT);
    feed(s.as_mut(), "[19,[[150.1,1,2],[150.2,1,-3]],2]");
    // Sequence 3 is lost; 4 arrives on the trades channel.
    let out = feed(s.as_mut(), r#"[18,"hb",4]"#);
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 3,
                received: 4
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 3,
                    received: 4,
                },
            },
            Event::NeedResubscribe { symbol: 0 },
            Event::GapDetected {
                symbol: 1,
                expected: 3,
                received: 4
            },
            Event::SyncLost {
                symbol: 1,
                reason: LossReason::Gap {
                    expected: 3,
                    received: 4,
                },
            },
            Event::NeedResubscribe { symbol: 1 },
        ]
    );
    for id in 0..2 {
        let sync = s.symbols().sync(id).unwrap();
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert!(sync.book.is_empty());
    }
    // Updates before the new snapshots are dropped; the counter goes on from 4.
    assert!(feed(s.as_mut(), "[17,[7254.6,2,0.7],5]").is_empty());
    // Resubscribing: a new channel id, and its snapshot is the new book.
    feed(
        s.as_mut(),
        r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
    );
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":27,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
    );
    let out = feed(
        s.as_mut(),
        &SNAPSHOT.replace("[17,", "[27,").replace("],1]", "],6]"),
    );
    assert_eq!(
        out,
        vec![
            Event::Resynced {
                symbol: 0,
                seq: Some(6)
            },
            Event::BookUpdated {
                symbol: 0,
                seq: Some(6),
                exchange_ts_ns: 0,
                ts_ns: 5
            }
        ]
    );
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(
        s.symbols().sync(1).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
}

/// The checksum text built by hand from the book of `SNAPSHOT`, the way Bitfinex's
/// documentation describes it, hashed with crc32fast directly.
fn expected_crc() -> i32 {
    let text = "7254.7:3.3:7255:-0.25:7254.6:0.5:7255.5:-2.00000001:7254:1e-7:7260:-10";
    crc32fast::hash(text.as_bytes()) as i32
}

#[test]
fn checksum_frames_match_and_mismatch() {
    let mut s = subscribed();
    feed(s.as_mut(), SNAPSHOT);
    let good = expected_crc();
    let out = feed(s.as_mut(), &format!(r#"[17,"cs",{good},2]"#));
    assert!(out.is_empty(), "{out:?}");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksums_checked, 1);
    assert_eq!(sync.counters.checksum_mismatches, 0);

    // After an update the old value no longer matches: the book is dropped and resubscribed.
    feed(s.as_mut(), "[17,[7254.6,2,0.7],3]");
    let out = feed(s.as_mut(), &format!(r#"[17,"cs",{good},4]"#));
    let text = "7254.7:3.3:7255:-0.25:7254.6:0.7:7255.5:-2.00000001:7254:1e-7:7260:-10";
    assert_eq!(
        out,
        vec![
            Event::ChecksumMismatch {
                symbol: 0,
                expected: good as u32,
                computed: crc32fast::hash(text.as_bytes()),
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Checksum {
                    expected: good as u32,
                    computed: crc32fast::hash(text.as_bytes()),
                },
            },
            Event::NeedResubscribe { symbol: 0 }
        ]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksum_mismatches, 1);
    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
    // A checksum while no book is held is skipped.
    assert!(feed(s.as_mut(), r#"[17,"cs",12345,5]"#).is_empty());
}

#[test]
fn checksum_covers_25_levels_and_uneven_sides() {
    let mut book = Book::new();
    for i in 0..30 {
        book.apply(Side::Bid, Decimal::new(1000 - i, 0).unwrap(), d("1.50"))
            .unwrap();
    }
    for i in 0..3 {
        book.apply(Side::Ask, Decimal::new(2000 + i, 0).unwrap(), d("2"))
            .unwrap();
    }
    let mut parts = Vec::new();
    for i in 0..25 {
        parts.push(format!("{}:1.5", 1000 - i));
        if i < 3 {
            parts.push(format!("{}:-2", 2000 + i));
        }
    }
    let mut text = String::new();
    let crc = book_checksum(&book, &mut text);
    assert_eq!(text, parts.join(":"));
    assert_eq!(crc, crc32fast::hash(parts.join(":").as_bytes()));
}

#[test]
fn bad_level_is_typed_and_resyncs_only_its_symbol() {
    let mut s = subscribed();
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":19,"symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25","pair":"ETHUSD"}"#,
    );
    feed(s.as_mut(), SNAPSHOT);
    feed(s.as_mut(), "[19,[[150.1,1,2],[150.2,1,-3]],2]");
    let mut out = Vec::new();
    let err = s.receive(b"[17,[7254.6,1,0],3]", 5, &mut out).unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
    assert_eq!(err.symbol.as_deref(), Some("tBTCUSD"));
    assert_eq!(
        out,
        vec![
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::BadFrame
            },
            Event::NeedResubscribe { symbol: 0 }
        ]
    );
    let err = s
        .receive(br#"[17,[7254.6,1,"1.2.3"],4]"#, 5, &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err.error,
            FrameError::BadNumber {
                field: "amount",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
    // Events from the venue are understood, not errors.
    feed(
        s.as_mut(),
        r#"{"event":"pong","ts":1511545528111,"cid":1234}"#,
    );
    assert_eq!(s.stats().errors, 2);
}

#[test]
fn raw_and_funding_books_are_not_taken_for_p_books() {
    let mut s = subscribed();
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":30,"symbol":"tBTCUSD","prec":"R0","len":"25"}"#,
    );
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":31,"symbol":"fUSD","prec":"P0","len":"25"}"#,
    );
    feed(s.as_mut(), SNAPSHOT);
    assert!(feed(s.as_mut(), "[30,[[3475123,7254.7,0.5]],2]").is_empty());
    assert!(feed(s.as_mut(), "[31,[[0.0002,30,1,100]],3]").is_empty());
    assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 3);
    assert_eq!(s.symbols().len(), 1);
}

#[test]
fn error_event_is_a_typed_venue_error_and_changes_no_book() {
    let mut s = subscribed();
    feed(s.as_mut(), SNAPSHOT);
    let book_text = |s: &dyn Session| {
        let mut text = String::new();
        book_checksum(&s.symbols().sync(0).unwrap().book, &mut text);
        text
    };
    let before = book_text(s.as_ref());
    let cases: [(&str, Option<&str>, &str); 4] = [
        (
            r#"{"event":"error","msg":"subscribe: invalid","code":10300,"channel":"book","symbol":"tNOPE"}"#,
            Some("tNOPE"),
            "code 10300: subscribe: invalid",
        ),
        (
            r#"{"event":"error","msg":"subscribe: dup","code":10301,"channel":"book","chanId":17}"#,
            Some("tBTCUSD"),
            "code 10301: subscribe: dup",
        ),
        (
            r#"{"event":"error","msg":"subscribe: invalid","code":10300,"channel":"trades","pair":"NOPEUSD"}"#,
            Some("tNOPEUSD"),
            "code 10300: subscribe: invalid",
        ),
        (
            r#"{"event":"error","msg":"unsubscribe: invalid","code":10400,"chanId":99}"#,
            None,
            "code 10400: unsubscribe: invalid",
        ),
    ];
    for (frame, symbol, message) in cases {
        let mut out = Vec::new();
        let err = s.receive(frame.as_bytes(), 5, &mut out).unwrap_err();
        assert_eq!(err.symbol.as_deref(), symbol, "{frame}");
        assert_eq!(err.error, FrameError::VenueError(message.into()), "{frame}");
        assert!(out.is_empty(), "{frame}");
    }
    assert_eq!(book_text(s.as_ref()), before);
    assert_eq!(s.symbols().len(), 1, "a refused symbol is not added");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    assert_eq!(sync.counters.errors, 0);
    assert_eq!(s.stats().errors, 4);
    // Errors carry no sequence number: the next frame follows without a gap.
    let out = feed(s.as_mut(), "[17,[7254.6,1,0.75],2]");
    assert!(
        matches!(out[..], [Event::BookUpdated { seq: Some(2), .. }]),
        "{out:?}"
    );
}

#[test]
fn book_channel_follows_subscribe_and_unsubscribe() {
    let mut s = subscribed();
    assert_eq!(
        s.book_channel("tBTCUSD"),
        Some(17),
        "the book's, not the trades'"
    );
    assert_eq!(s.book_channel("tETHUSD"), None);
    feed(
        s.as_mut(),
        r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
    );
    assert_eq!(s.book_channel("tBTCUSD"), None);
    // Resubscribed: a new channel id.
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":23,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
    );
    assert_eq!(s.book_channel("tBTCUSD"), Some(23));
    // A raw book is not the P book the session keeps.
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"book","chanId":24,"symbol":"tBTCUSD","prec":"R0","len":"25"}"#,
    );
    assert_eq!(s.book_channel("tBTCUSD"), Some(23));
}

/// A ticker frame as Bitfinex documents it (trading pair, conf flags 65536 and 32768):
/// `[chanId, [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE, LAST_PRICE,
/// VOLUME, HIGH, LOW], MTS, SEQ]`.
#[test]
fn ticker_is_a_quote_with_the_frames_sequence_number() {
    let mut s = subscribed();
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"ticker","chanId":20,"symbol":"tBTCUSD","pair":"BTCUSD"}"#,
    );
    feed(s.as_mut(), SNAPSHOT);
    let out = feed(
        s.as_mut(),
        "[20,[7254.6,34.57,7255,2.00000001,-153.3,-0.0207,7254.9,7011.5,7524,7145],2]",
    );
    assert_eq!(
        out,
        vec![Event::Quote(Quote {
            symbol: 0,
            seq: Some(2),
            bid_price: d("7254.6"),
            bid_size: d("34.57"),
            ask_price: d("7255"),
            ask_size: d("2.00000001"),
            exchange_ts_ns: 0,
            ts_ns: 5,
        })]
    );
    // Heartbeats of the ticker channel are sequenced and ignored.
    let ignored = s.stats().ignored;
    assert!(feed(s.as_mut(), r#"[20,"hb",3]"#).is_empty());
    assert_eq!(s.stats().ignored, ignored + 1);
    // With timestamps on, the number before the sequence is the exchange time.
    feed(
        s.as_mut(),
        r#"{"event":"conf","status":"OK","flags":229376}"#,
    );
    let out = feed(s.as_mut(), "[20,[1,2,3,4,5,6,7,8,9,10],1574694479000,4]");
    assert!(
        matches!(&out[..], [Event::Quote(q)] if q.seq == Some(4)
            && q.exchange_ts_ns == 1_574_694_479_000_000_000 && q.ask_size == d("4")),
        "{out:?}"
    );
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn bad_ticker_is_typed_and_leaves_the_book() {
    let mut s = subscribed();
    feed(
        s.as_mut(),
        r#"{"event":"subscribed","channel":"ticker","chanId":20,"symbol":"tBTCUSD","pair":"BTCUSD"}"#,
    );
    feed(s.as_mut(), SNAPSHOT);
    let mut out = Vec::new();
    let err = s
        .receive(br#"[20,[7254.6,"x",7255,1],2]"#, 5, &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err.error,
            FrameError::BadNumber {
                field: "bid_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.symbol.as_deref(), Some("tBTCUSD"));
    let err = s
        .receive(b"[20,[7254.6,1,7255],3]", 5, &mut out)
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Json(_)), "{err:?}");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
}

#[test]
fn funding_tickers_and_unsubscribed_tickers_make_no_quotes() {
    let options = SessionOptions {
        symbols: Some(vec!["tBTCUSD".into()]),
        ..SessionOptions::default()
    };
    let mut s = new_session("bitfinex", options).unwrap();
    for frame in [
        r#"{"event":"subscribed","channel":"ticker","chanId":21,"symbol":"fUSD","currency":"USD"}"#,
        r#"{"event":"subscribed","channel":"ticker","chanId":22,"symbol":"tETHUSD","pair":"ETHUSD"}"#,
    ] {
        assert!(feed(s.as_mut(), frame).is_empty());
    }
    // A funding ticker's layout differs (FRR, BID, BID_PERIOD, ...): not read as a quote.
    assert!(feed(
        s.as_mut(),
        "[21,[0.0003,0.0002,30,1000,0.0004,2,500,0,0,0,0,0,0,0,0,0],1]"
    )
    .is_empty());
    assert!(feed(s.as_mut(), "[22,[150.1,2,150.2,3,0,0,0,0,0,0],2]").is_empty());
    // Its `subscribed` event and its frame are counted.
    assert_eq!(s.stats().unsubscribed, 2);
    assert_eq!(s.symbols().len(), 0);
}

/// Subscriptions may spell a symbol in any ASCII case: frames in Bitfinex's spelling are
/// taken, and the book's channel is found by either spelling.
#[test]
fn symbols_match_in_any_case() {
    for given in ["tBTCUSD", "tbtcusd", "TBTCUSD"] {
        let options = SessionOptions {
            symbols: Some(vec![given.into()]),
            ..SessionOptions::default()
        };
        let mut s = new_session("bitfinex", options).unwrap();
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0","len":"25"}"#,
        );
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":19,"symbol":"tETHUSD","prec":"P0","len":"25"}"#,
        );
        let out = feed(s.as_mut(), SNAPSHOT);
        assert!(
            matches!(out[..], [Event::BookUpdated { symbol: 0, .. }]),
            "{given}"
        );
        assert!(feed(s.as_mut(), "[19,[[150.1,1,2],[150.2,1,-3]],2]").is_empty());
        assert_eq!(s.symbols().names(), ["tBTCUSD"], "{given}");
        assert_eq!(s.book_channel(given), Some(17), "{given}");
        assert_eq!(s.book_channel("tETHUSD"), None);
    }
}

/// Bitfinex keeps the book at the subscribed `len` itself and checksums its top 25 levels: a
/// smaller depth asked for does not cut the session's book (views show that depth).
#[test]
fn depth_does_not_cut_the_book_the_checksum_covers() {
    let options = SessionOptions {
        depth: Some(1),
        ..SessionOptions::default()
    };
    let mut s = new_session("bitfinex", options).unwrap();
    for frame in [
        r#"{"event":"conf","status":"OK","flags":196608}"#,
        r#"{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0","len":"25"}"#,
        SNAPSHOT,
    ] {
        feed(s.as_mut(), frame);
    }
    let book = &s.symbols().sync(0).unwrap().book;
    assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (3, 3));
    assert!(feed(s.as_mut(), &format!(r#"[17,"cs",{},2]"#, expected_crc())).is_empty());
    assert_eq!(s.symbols().sync(0).unwrap().counters.checksum_mismatches, 0);
}
