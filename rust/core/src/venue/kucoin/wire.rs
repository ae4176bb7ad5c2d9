//! KuCoin's frames as borrowed types.
//!
//! Every frame is one object with a `type`: `welcome`, `ack`, `pong`, `error` (`code`, and the
//! reason in `data`), or `message` with `subject`, `topic` and `data`. KuCoin writes `data`
//! before `subject`, so `data` is kept raw and read once the subject says what it is; book
//! updates, most of the stream, are read by the scanner in one pass instead (`scan_l2update`:
//! `data` is read as one, and the frame is given up if the subject turns out otherwise). The REST
//! book is `{"code":"200000","data":{"sequence","bids","asks",..}}`, an error `{"code","msg"}`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::sync::LevelChange;
use crate::venue::json::LooseText;
use crate::venue::scan::Scanner;

/// A websocket frame, or a REST body (which has `code` and `data` only).
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(default, rename = "type", borrow)]
    pub kind: Option<&'a str>,
    #[serde(default, borrow)]
    pub subject: Option<&'a str>,
    #[serde(default, borrow)]
    pub topic: Option<&'a str>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "loose", borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "loose", borrow)]
    pub msg: Option<Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    /// The symbol a `message` topic names: `/market/level2:BTC-USDT` -> `BTC-USDT`, and
    /// without the interval of a candle topic (`/market/candles:BTC-USDT_1min`).
    pub fn topic_symbol(&self) -> Option<&'a str> {
        topic_symbol(self.topic?)
    }

    /// The interval a candle topic names (`1min` of `/market/candles:BTC-USDT_1min`).
    pub fn topic_interval(&self) -> Option<&'a str> {
        let (_, rest) = self.topic?.split_once(':')?;
        rest.split_once('_').map(|(_, interval)| interval)
    }
}

/// `trade.l2update`: each change is `[price, size, sequence]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L2Update<'a> {
    #[serde(borrow)]
    pub symbol: Option<&'a str>,
    #[serde(deserialize_with = "int")]
    pub sequence_start: u64,
    #[serde(deserialize_with = "int")]
    pub sequence_end: u64,
    #[serde(borrow)]
    pub changes: Changes<'a>,
    #[serde(default, deserialize_with = "opt_int")]
    pub time: Option<u64>,
}

#[derive(Deserialize)]
pub struct Changes<'a> {
    #[serde(default, borrow)]
    pub asks: Vec<(&'a str, &'a str, &'a str)>,
    #[serde(default, borrow)]
    pub bids: Vec<(&'a str, &'a str, &'a str)>,
}

/// The REST book's `data`: levels are `[price, size]`.
#[derive(Deserialize)]
pub struct RestBook<'a> {
    #[serde(deserialize_with = "int")]
    pub sequence: u64,
    #[serde(default, borrow)]
    pub bids: Vec<(&'a str, &'a str)>,
    #[serde(default, borrow)]
    pub asks: Vec<(&'a str, &'a str)>,
    #[serde(default, deserialize_with = "opt_int")]
    pub time: Option<u64>,
}

/// `trade.ticker`: the best bid and ask at the book's `sequence` (the topic names the symbol).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker<'a> {
    #[serde(default, deserialize_with = "opt_int")]
    pub sequence: Option<u64>,
    #[serde(borrow)]
    pub best_bid: &'a str,
    #[serde(borrow)]
    pub best_bid_size: &'a str,
    #[serde(borrow)]
    pub best_ask: &'a str,
    #[serde(borrow)]
    pub best_ask_size: &'a str,
    #[serde(default, deserialize_with = "opt_int")]
    pub time: Option<u64>,
}

/// `trade.l3match`: one trade; `side` is the taker's, `time` in nanoseconds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match<'a> {
    #[serde(borrow)]
    pub symbol: Option<&'a str>,
    #[serde(borrow)]
    pub trade_id: &'a str,
    #[serde(borrow)]
    pub price: &'a str,
    #[serde(borrow)]
    pub size: &'a str,
    #[serde(borrow)]
    pub side: Option<&'a str>,
    #[serde(default, deserialize_with = "opt_int")]
    pub time: Option<u64>,
}

/// `trade.candles.add` / `trade.candles.update`: `candles` is `[start s, open, close, high,
/// low, volume, turnover]`; `time` in nanoseconds.
#[derive(Deserialize)]
pub struct Candles<'a> {
    #[serde(borrow)]
    pub symbol: Option<&'a str>,
    #[serde(borrow)]
    pub candles: Vec<&'a str>,
    #[serde(default, deserialize_with = "opt_int")]
    pub time: Option<u64>,
}

fn loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    LooseText.deserialize(d)
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(UintVisitor)
}

fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(UintVisitor).map(Some)
}

/// A whole non-negative number written as a JSON number or as a string of digits: KuCoin
/// writes `sequenceStart` as a number and a ticker's `sequence` as a string.
struct UintVisitor;

impl Visitor<'_> for UintVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole non-negative number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format_args!("negative number {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse()
            .map_err(|_| E::custom(format_args!("not a whole number: {v:?}")))
    }
}

/// The symbol a `message` topic names (see `Frame::topic_symbol`).
pub fn topic_symbol(topic: &str) -> Option<&str> {
    let (_, rest) = topic.split_once(':')?;
    Some(rest.split_once('_').map_or(rest, |(symbol, _)| symbol))
}

/// A `trade.l2update` as the scanner read it (its changes in the caller's buffer, those of
/// price 0 left out).
pub struct ScannedL2Update<'a> {
    pub symbol: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub sequence_start: u64,
    pub sequence_end: u64,
    pub time: Option<u64>,
}

/// `{"data":{"sequenceStart","symbol","changes":{"asks","bids"},"sequenceEnd"},"subject":
/// "trade.l2update","topic","type":"message"}` read in one pass, levels straight to fixed point
/// into `levels`: serde kept `data` raw (one walk), read it again, then each number from its
/// text. `None` at anything else (other subjects, a bad number, keys not of a book update): the
/// derived path then reads the frame and says what is wrong.
pub fn scan_l2update<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
) -> Option<ScannedL2Update<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut data, mut topic) = (None, None);
    let (mut subject, mut message) = (false, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"data" if data.is_none() => data = Some(scan_l2_data(&mut scan, levels)?),
            b"subject" if !subject => {
                subject = true;
                (scan.string().ok()? == b"trade.l2update").then_some(())?;
            }
            b"topic" if topic.is_none() => topic = Some(scan.str_value().ok()?),
            b"type" if !message => {
                message = true;
                (scan.string().ok()? == b"message").then_some(())?;
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    (subject && message).then_some(())?;
    Some(ScannedL2Update { topic, ..data? })
}

fn scan_l2_data<'a>(
    scan: &mut Scanner<'a>,
    levels: &mut Vec<LevelChange>,
) -> Option<ScannedL2Update<'a>> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut symbol, mut start, mut end, mut time) = (None, None, None, None);
    let mut changes = false;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"symbol" if symbol.is_none() => symbol = Some(scan.str_value().ok()?),
            b"sequenceStart" if start.is_none() => start = Some(scan.u64_or_quoted().ok()??),
            b"sequenceEnd" if end.is_none() => end = Some(scan.u64_or_quoted().ok()??),
            b"time" if time.is_none() => time = Some(scan.u64_or_quoted().ok()??),
            b"changes" if !changes => {
                changes = true;
                scan_changes(scan, levels)?;
            }
            b"symbol" | b"sequenceStart" | b"sequenceEnd" | b"time" | b"changes" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    changes.then_some(())?;
    Some(ScannedL2Update {
        symbol,
        topic: None,
        sequence_start: start?,
        sequence_end: end?,
        time,
    })
}

/// `{"asks":[["price","size","sequence"],..],"bids":[..]}`.
fn scan_changes(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut asks, mut bids) = (false, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        let side = match key {
            b"asks" if !asks => {
                asks = true;
                Side::Ask
            }
            b"bids" if !bids => {
                bids = true;
                Side::Bid
            }
            b"asks" | b"bids" => return None,
            _ => {
                scan.skip_value().ok()?;
                continue;
            }
        };
        scan.begin_array().ok()?;
        let mut first_change = true;
        while scan.next_element(&mut first_change).ok()? {
            let (price, size) = scan_change(scan)?;
            // Price 0: a change that only moves the sequence.
            if !price.is_zero() {
                levels.push((side, price, size));
            }
        }
    }
    Some(())
}

/// `["price","size","sequence"]`.
fn scan_change(scan: &mut Scanner) -> Option<(Decimal, Decimal)> {
    let mut rest = false;
    let (price, size) = match scan.short_level_head() {
        Some(head) => head,
        None => {
            scan.begin_array().ok()?;
            let mut head = true;
            scan.next_element(&mut head).ok()?.then_some(())?;
            let price = scan.quoted_decimal().ok()?.ok()?;
            scan.next_element(&mut head).ok()?.then_some(())?;
            (price, scan.quoted_decimal().ok()?.ok()?)
        }
    };
    scan.next_element(&mut rest).ok()?.then_some(())?;
    scan.str_value().ok()?;
    (!scan.next_element(&mut rest).ok()?).then_some((price, size))
}
