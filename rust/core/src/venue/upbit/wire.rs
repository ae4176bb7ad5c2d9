//! Upbit's frames: JSON text that arrives in binary websocket frames, in the `SIMPLE` format
//! (short keys). Numbers are JSON numbers, each read from its text (`RawValue`), never through
//! `f64` (Upbit writes `9.9E-7`; the exponent is kept exact).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decimal::Decimal;
use crate::error::FrameError;

/// Every message type in one struct: `ty` says which fields are there.
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(default, borrow)]
    pub ty: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub cd: Option<Cow<'a, str>>,
    #[serde(default)]
    pub tms: Option<u64>,
    // orderbook
    #[serde(default, borrow)]
    pub tas: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tbs: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub obu: Option<Vec<Unit<'a>>>,
    // trade
    #[serde(default, borrow)]
    pub tp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tv: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub ab: Option<Cow<'a, str>>,
    #[serde(default)]
    pub ttms: Option<u64>,
    #[serde(default, borrow)]
    pub sid: Option<&'a RawValue>,
    // answers
    #[serde(default, borrow)]
    pub error: Option<ErrorBody<'a>>,
}

/// One orderbook unit: the ask and the bid at the same rank.
#[derive(Deserialize)]
pub struct Unit<'a> {
    #[serde(borrow)]
    pub ap: &'a RawValue,
    #[serde(borrow, rename = "as")]
    pub ask_size: &'a RawValue,
    #[serde(borrow)]
    pub bp: &'a RawValue,
    #[serde(borrow)]
    pub bs: &'a RawValue,
}

/// `{"error":{"name":"INVALID_AUTH","message":"..."}}`.
#[derive(Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}

pub fn read_frame(text: &[u8]) -> Result<Frame<'_>, FrameError> {
    Ok(serde_json::from_slice(text)?)
}

/// A required number field, exact from its text.
pub fn number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    let raw = raw.ok_or(FrameError::MissingField(field))?;
    Decimal::parse(raw.get()).map_err(|error| FrameError::BadNumber { field, error })
}
