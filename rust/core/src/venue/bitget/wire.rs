//! Bitget websocket frames as borrowed types: `{"action","arg":{"instType","channel","instId"},
//! "data":[..]}` for data, `{"event","code","msg","arg"}` for answers, the text `pong` for the
//! heartbeat. `data` is kept raw until the channel says what it holds. Derived serde is enough:
//! books are read once per frame into the session's level buffer.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decimal::Decimal;
use crate::error::FrameError;

#[derive(Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    #[serde(borrow, default)]
    pub code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    #[serde(borrow, default)]
    pub arg: Option<Arg<'a>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct Arg<'a> {
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(rename = "instId", borrow, default)]
    pub inst_id: Option<&'a str>,
}

/// One book of a `books` frame: levels `["price", "size"]`, `ts` in ms (a string), and the
/// signed CRC32 `checksum` of the top 25 levels.
#[derive(Deserialize)]
pub(super) struct BookItem<'a> {
    #[serde(borrow, default)]
    pub asks: Vec<(&'a str, &'a str)>,
    #[serde(borrow, default)]
    pub bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow, default)]
    pub ts: Option<&'a RawValue>,
    #[serde(default)]
    pub checksum: Option<i64>,
}

/// A trade row of ws v1: `["ts", "price", "size", "side"]` (the taker's side; no trade id).
pub(super) type TradeRow<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A candle row: `["open ts", "o", "h", "l", "c", "base volume"]`.
pub(super) type CandleRow<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

/// The text of a number sent as a JSON number or a string.
pub(super) fn number_text(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `text` as a decimal, a bad one named by `field`.
pub(super) fn number(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// Milliseconds since the epoch as text (`"1649290077777"`), to a count.
pub(super) fn millis(field: &'static str, text: &str) -> Result<u64, FrameError> {
    text.parse()
        .map_err(|_| FrameError::Invalid(format!("`{field}` {text:?} is not milliseconds")))
}
