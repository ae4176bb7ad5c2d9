//! BitMEX realtime frames as borrowed types.
//!
//! Table frames are `{"table","action","data":[rows]}` (`partial` first, then `insert`,
//! `update`, `delete`); answers are `{"success":true,"subscribe":..}`, the greeting
//! `{"info":..}`, refusals `{"error":..,"status":..}`; the heartbeat is the text `pong` (or
//! `ping`). One row type covers the three tables read (`orderBookL2`, `quote`, `trade`): every
//! field is optional and each table checks what it needs. Numbers are JSON numbers, kept as
//! `RawValue` and read as decimals from their text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;

#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow, default)]
    pub table: Option<&'a str>,
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    #[serde(borrow, default)]
    pub data: Option<Vec<Row<'a>>>,
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub status: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct Row<'a> {
    #[serde(borrow, default)]
    pub symbol: Option<&'a str>,
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    #[serde(borrow, default)]
    pub size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub timestamp: Option<&'a str>,
    #[serde(borrow, default, rename = "bidPrice")]
    pub bid_price: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "bidSize")]
    pub bid_size: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "askPrice")]
    pub ask_price: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "askSize")]
    pub ask_size: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "trdMatchID")]
    pub trade_id: Option<Cow<'a, str>>,
}

/// A required number of a row, read exactly from its text.
pub fn number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    let raw = raw
        .filter(|r| r.get() != "null")
        .ok_or(FrameError::MissingField(field))?;
    Decimal::parse(raw.get()).map_err(|error| FrameError::BadNumber { field, error })
}

/// A quote's price or size: `null` (an empty side) is 0.
pub fn quote_number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    match raw {
        Some(raw) if raw.get() != "null" => number(field, Some(raw)),
        _ => Ok(Decimal::ZERO),
    }
}

/// `Buy` is the bid side, `Sell` the ask side.
pub fn side(text: Option<&str>) -> Result<Side, FrameError> {
    match text {
        Some("Buy") => Ok(Side::Bid),
        Some("Sell") => Ok(Side::Ask),
        Some(other) => Err(FrameError::Invalid(format!(
            "side {other:?} is not Buy or Sell"
        ))),
        None => Err(FrameError::MissingField("side")),
    }
}
