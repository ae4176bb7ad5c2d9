//! Kraken Futures (ws v1) frames as borrowed types, written from the shapes the protocol notes
//! give (no capture is shared): `{"feed":"book_snapshot","product_id","seq","bids":[{"price",
//! "qty"}],"asks":[..]}`, `{"feed":"book","product_id","side","price","qty","seq"}`, answers
//! and errors `{"event":..}`. Prices and quantities are JSON numbers, kept as `RawValue` and
//! read as decimals from their text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decimal::Decimal;
use crate::error::FrameError;

#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub feed: Option<&'a str>,
    #[serde(borrow, default)]
    pub product_id: Option<&'a str>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    #[serde(borrow, default)]
    pub price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub qty: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub bids: Vec<Level<'a>>,
    #[serde(borrow, default)]
    pub asks: Vec<Level<'a>>,
    /// A trade's id and time.
    #[serde(borrow, default)]
    pub uid: Option<Cow<'a, str>>,
    #[serde(default)]
    pub time: Option<u64>,
    /// `trade_snapshot`: the last trades, sent on subscribe.
    #[serde(borrow, default)]
    pub trades: Vec<TradeRow<'a>>,
}

#[derive(Deserialize)]
pub struct Level<'a> {
    #[serde(borrow)]
    pub price: &'a RawValue,
    #[serde(borrow)]
    pub qty: &'a RawValue,
}

#[derive(Deserialize)]
pub struct TradeRow<'a> {
    #[serde(borrow, default)]
    pub product_id: Option<&'a str>,
    #[serde(borrow, default)]
    pub uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    #[serde(borrow)]
    pub price: &'a RawValue,
    #[serde(borrow)]
    pub qty: &'a RawValue,
    #[serde(default)]
    pub time: Option<u64>,
}

/// A number read exactly from its JSON text.
pub fn number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    let raw = raw.ok_or(FrameError::MissingField(field))?;
    Decimal::parse(raw.get()).map_err(|error| FrameError::BadNumber { field, error })
}
