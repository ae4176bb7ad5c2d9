//! Bybit v5 frames as read: the envelope (`topic`, `type`, `ts`, operation answers) and its
//! `data`, an object (books, tickers) or a list (trades, klines).
//!
//! The envelope and the `data` object are read by hand-written seeds so that book levels are
//! parsed straight into the session's reusable buffer while the frame is read (book frames are
//! most of the stream and carry up to a thousand levels); trade and kline items are derived.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::check_frame_size;
use crate::venue::json::{scan_side, LevelsSeed, LooseText, NumberFault};
use crate::venue::scan::Scanner;

/// Reads `frame` into `fields`, its book levels into `levels`; a number that does not parse
/// is a typed `BadNumber` (remembered in `fault` while serde unwinds).
pub(super) fn decode<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
    fault: &mut NumberFault,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let kept = levels.len();
    if scan_book(frame, fields, levels).is_some() {
        return Ok(());
    }
    // Not the common book frame: read again from the start, so what the frame yields (and
    // how it fails) is serde's alone.
    *fields = Fields::default();
    levels.truncate(kept);
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = FrameSeed {
        fields,
        levels,
        fault,
    };
    match seed.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(e) => Err(match fault.fault {
            Some((field, error)) => FrameError::BadNumber { field, error },
            None => FrameError::Json(e.to_string()),
        }),
    }
}

/// The common book frame (`topic`, `type`, `ts`, `cts` and a `data` object of `s`, `b`, `a`,
/// `u`, `seq`) read by the scanner in one pass, numbers straight to fixed point (most of the
/// stream; serde's walk made a `&str` per number and checked each string's UTF-8). `None` at
/// the first thing outside that shape, a bad number or a malformed frame included.
fn scan_book<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
) -> Option<()> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"topic" => fields.topic = Some(scan.str_value().ok()?),
            b"type" => fields.kind = Some(scan.str_value().ok()?),
            b"ts" => fields.ts = Some(scan.u64().ok()?),
            b"cts" => scan.skip_value().ok()?,
            b"data" => scan_book_data(&mut scan, fields, levels)?,
            _ => return None,
        }
    }
    scan.finish().ok()
}

fn scan_book_data<'de>(
    scan: &mut Scanner<'de>,
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
) -> Option<()> {
    scan.begin_object().ok()?;
    fields.data = DataShape::Object;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"s" => fields.s = Some(scan.str_value().ok()?),
            b"u" => fields.u = Some(scan.u64().ok()?),
            b"seq" => scan.skip_value().ok()?,
            b"b" => scan_side(scan, Side::Bid, levels)?,
            b"a" => scan_side(scan, Side::Ask, levels)?,
            _ => return None,
        }
    }
    Some(())
}

/// The last dot-separated part of a topic: `orderbook.200.BTCUSDT` names `BTCUSDT`.
pub(super) fn topic_symbol(topic: &str) -> &str {
    match topic.rsplit_once('.') {
        Some((_, symbol)) => symbol,
        None => "",
    }
}

/// The depth a book topic names: `orderbook.200.BTCUSDT` is 200 levels a side.
pub(super) fn topic_depth(topic: &str) -> Option<usize> {
    topic.split('.').nth(1)?.parse().ok()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataShape {
    #[default]
    Missing,
    /// Books and tickers.
    Object,
    /// Trades and klines.
    List,
}

/// Everything we read from a Bybit frame, filled in one pass; book levels go straight into the
/// session's reusable buffer, trade and kline items into `items`.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub topic: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub ts: Option<u64>,
    pub op: Option<&'a str>,
    pub success: Option<bool>,
    pub ret_msg: Option<Cow<'a, str>>,
    pub ret_code: Option<Cow<'a, str>>,
    pub data: DataShape,
    pub s: Option<&'a str>,
    pub u: Option<u64>,
    pub ticker: TickerFields<'a>,
    pub items: Vec<Item<'a>>,
}

/// What a `tickers` data object says of the top of book (read loosely: other topics' data
/// objects may use these names otherwise).
#[derive(Debug, Default)]
pub(super) struct TickerFields<'a> {
    pub symbol: Option<Cow<'a, str>>,
    pub bid_price: Option<Cow<'a, str>>,
    pub bid_size: Option<Cow<'a, str>>,
    pub ask_price: Option<Cow<'a, str>>,
    pub ask_size: Option<Cow<'a, str>>,
}

impl Fields<'_> {
    /// Whether the frame (as far as it was read) is a book message.
    pub fn is_book(&self) -> bool {
        match self.topic {
            Some(topic) => topic.starts_with("orderbook."),
            // Only book objects carry `s` in an object `data`.
            None => self.s.is_some(),
        }
    }
}

/// One element of a list `data`: a trade or a kline.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Item<'a> {
    #[serde(rename = "T")]
    pub trade_time: Option<u64>,
    #[serde(borrow)]
    pub s: Option<&'a str>,
    #[serde(rename = "S", borrow)]
    pub side: Option<&'a str>,
    #[serde(borrow)]
    pub v: Option<&'a str>,
    #[serde(borrow)]
    pub p: Option<&'a str>,
    #[serde(borrow)]
    pub i: Option<&'a str>,
    pub start: Option<u64>,
    pub end: Option<u64>,
    #[serde(borrow)]
    pub interval: Option<&'a str>,
    #[serde(borrow)]
    pub open: Option<&'a str>,
    #[serde(borrow)]
    pub close: Option<&'a str>,
    #[serde(borrow)]
    pub high: Option<&'a str>,
    #[serde(borrow)]
    pub low: Option<&'a str>,
    #[serde(borrow)]
    pub volume: Option<&'a str>,
    pub confirm: Option<bool>,
    pub timestamp: Option<u64>,
}

struct FrameSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bybit message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "topic" => f.topic = Some(map.next_value()?),
                "type" => f.kind = Some(map.next_value()?),
                "ts" => f.ts = Some(map.next_value()?),
                "op" => f.op = Some(map.next_value()?),
                "success" => f.success = Some(map.next_value()?),
                "ret_msg" => f.ret_msg = map.next_value_seed(LooseText)?,
                "ret_code" => f.ret_code = map.next_value_seed(LooseText)?,
                "data" => map.next_value_seed(DataSeed {
                    fields: &mut *f,
                    levels: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `data`: an object (book: `s`, `b`, `a`, `u`, `seq`; tickers: `symbol`, `bid1Price`, ..) or a
/// list (trades, klines).
struct DataSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a data object or list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        f.data = DataShape::Object;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "s" => f.s = Some(map.next_value()?),
                "u" => f.u = Some(map.next_value()?),
                "symbol" => f.ticker.symbol = map.next_value_seed(LooseText)?,
                "bid1Price" => f.ticker.bid_price = map.next_value_seed(LooseText)?,
                "bid1Size" => f.ticker.bid_size = map.next_value_seed(LooseText)?,
                "ask1Price" => f.ticker.ask_price = map.next_value_seed(LooseText)?,
                "ask1Size" => f.ticker.ask_size = map.next_value_seed(LooseText)?,
                "b" => map.next_value_seed(LevelsSeed {
                    side: Side::Bid,
                    out: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                "a" => map.next_value_seed(LevelsSeed {
                    side: Side::Ask,
                    out: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let f = self.fields;
        f.data = DataShape::List;
        while let Some(item) = seq.next_element::<Item<'de>>()? {
            f.items.push(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::Decimal;

    fn read(frame: &str) -> (Result<(), FrameError>, Vec<LevelChange>, Option<u64>) {
        let mut fields = Fields::default();
        let mut levels = Vec::new();
        let mut fault = NumberFault::default();
        let result = decode(
            frame.as_bytes(),
            &mut fields,
            &mut levels,
            &mut fault,
            usize::MAX,
        );
        (result, levels, fields.u)
    }

    #[test]
    fn scanned_and_serde_read_book_frames_agree() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        // Long numbers (the scanner's general level), then white space and an unknown key
        // (serde's path): the same levels either way.
        let compact = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["123456789.5","0.000000001"]],"a":[["2.50","0"]],"u":7,"seq":9},"cts":2}"#;
        let spaced = r#"{"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "x": 0, "data": {"s": "BTCUSDT", "b": [["123456789.5", "0.000000001"]], "a": [["2.50", "0"]], "u": 7}}"#;
        let expected = vec![
            (Side::Bid, d("123456789.5"), d("0.000000001")),
            (Side::Ask, d("2.50"), d("0")),
        ];
        for frame in [compact, spaced] {
            let (result, levels, u) = read(frame);
            assert!(result.is_ok(), "{frame}: {result:?}");
            assert_eq!(levels, expected, "{frame}");
            assert_eq!(u, Some(7));
        }
        assert_eq!(expected[1].1.to_string(), "2.50");
        let bad = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1.5","x"]],"a":[],"u":7}}"#;
        assert!(matches!(read(bad).0, Err(FrameError::BadNumber { .. })));
    }
}
