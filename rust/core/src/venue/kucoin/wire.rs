//! KuCoin's frames as borrowed types.
//!
//! Every frame is one object with a `type`: `welcome`, `ack`, `pong`, `error` (`code`, and the
//! reason in `data`), or `message` with `subject`, `topic` and `data`. KuCoin writes `data`
//! before `subject`, so `data` is kept raw and read once the subject says what it is. The REST
//! book is `{"code":"200000","data":{"sequence","bids","asks",..}}`, an error `{"code","msg"}`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::venue::json::LooseText;

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
        let (_, rest) = self.topic?.split_once(':')?;
        Some(rest.split_once('_').map_or(rest, |(symbol, _)| symbol))
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
