//! Deribit's JSON-RPC frames as borrowed types.
//!
//! Every frame is one object: `{"jsonrpc","id","result"}` answers a request (subscribe,
//! `public/set_heartbeat`, `public/test`), `{"jsonrpc","id","error":{"code","message"}}` refuses
//! one, and `{"jsonrpc","method":"subscription","params":{"channel","data"}}` carries data;
//! `{"method":"heartbeat","params":{"type":"test_request"|"heartbeat"}}` is the venue's
//! heartbeat. Prices and amounts are JSON numbers: they are kept as `RawValue` and read as
//! decimals from their text, so no digit goes through `f64`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;

#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow, default)]
    pub method: Option<&'a str>,
    #[serde(borrow, default)]
    pub params: Option<Params<'a>>,
    #[serde(borrow, default)]
    pub error: Option<RpcError<'a>>,
}

#[derive(Deserialize)]
pub struct Params<'a> {
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// The heartbeat's kind: `test_request` (answer it) or `heartbeat`.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct RpcError<'a> {
    #[serde(borrow, default)]
    pub code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// One `[action, price, amount]` entry of a book side.
type Entry<'a> = (&'a str, &'a RawValue, &'a RawValue);

#[derive(Deserialize)]
pub struct BookData<'a> {
    /// `snapshot` first, then `change`.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(default)]
    pub change_id: Option<u64>,
    #[serde(default)]
    pub prev_change_id: Option<u64>,
    #[serde(borrow, default)]
    bids: Vec<Entry<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Entry<'a>>,
}

impl BookData<'_> {
    /// The entries as level changes appended to `out`; `delete` sets the size to zero whatever
    /// amount came with it.
    pub fn levels(&self, out: &mut Vec<LevelChange>) -> Result<(), FrameError> {
        for (side, entries) in [(Side::Bid, &self.bids), (Side::Ask, &self.asks)] {
            for (action, price, amount) in entries {
                let price = number("price", price)?;
                let amount = match *action {
                    "new" | "change" => number("amount", amount)?,
                    "delete" => Decimal::ZERO,
                    other => {
                        return Err(FrameError::Invalid(format!(
                            "book action {other:?} is not new, change or delete"
                        )))
                    }
                };
                out.push((side, price, amount));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct TickerData<'a> {
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(borrow, default)]
    pub best_bid_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_bid_amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_ask_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_ask_amount: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct TradeData<'a> {
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(borrow)]
    pub trade_id: Cow<'a, str>,
    pub price: &'a RawValue,
    pub amount: &'a RawValue,
    #[serde(borrow, default)]
    pub direction: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// A JSON number (or a string holding one) as an exact decimal from its text.
pub fn number(field: &'static str, raw: &RawValue) -> Result<Decimal, FrameError> {
    let text = raw.get();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// A best-price field of the ticker: absent or `null` is an empty side, 0 as Deribit sends it.
pub fn quote_number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    match raw {
        None => Ok(Decimal::ZERO),
        Some(raw) if raw.get() == "null" => Ok(Decimal::ZERO),
        Some(raw) => number(field, raw),
    }
}

/// The instrument of a `kind.INSTRUMENT.interval` channel name.
pub fn channel_instrument(channel: &str) -> Option<&str> {
    let mut parts = channel.split('.');
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}
