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
use crate::venue::scan::Scanner;

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

/// What a book row gives, whichever reader read it: numbers are asked for only where the
/// action uses them, so an unused one is never refused.
pub trait BookRow {
    fn symbol(&self) -> Option<&str>;
    fn id(&self) -> Option<u64>;
    fn side(&self) -> Option<&str>;
    fn timestamp(&self) -> Option<&str>;
    fn price(&self) -> Result<Decimal, FrameError>;
    fn size(&self) -> Result<Decimal, FrameError>;
}

impl BookRow for Row<'_> {
    fn symbol(&self) -> Option<&str> {
        self.symbol
    }
    fn id(&self) -> Option<u64> {
        self.id
    }
    fn side(&self) -> Option<&str> {
        self.side
    }
    fn timestamp(&self) -> Option<&str> {
        self.timestamp
    }
    fn price(&self) -> Result<Decimal, FrameError> {
        number("price", self.price)
    }
    fn size(&self) -> Result<Decimal, FrameError> {
        number("size", self.size)
    }
}

/// A book row the scanner read, its numbers already decimals (`None`: absent or `null`).
#[derive(Debug, Default)]
pub struct ScannedRow<'a> {
    symbol: Option<&'a str>,
    id: Option<u64>,
    side: Option<&'a str>,
    timestamp: Option<&'a str>,
    price: Option<Decimal>,
    size: Option<Decimal>,
}

impl BookRow for ScannedRow<'_> {
    fn symbol(&self) -> Option<&str> {
        self.symbol
    }
    fn id(&self) -> Option<u64> {
        self.id
    }
    fn side(&self) -> Option<&str> {
        self.side
    }
    fn timestamp(&self) -> Option<&str> {
        self.timestamp
    }
    fn price(&self) -> Result<Decimal, FrameError> {
        self.price.ok_or(FrameError::MissingField("price"))
    }
    fn size(&self) -> Result<Decimal, FrameError> {
        self.size.ok_or(FrameError::MissingField("size"))
    }
}

/// An `orderBookL2` frame in its common shape (`table`, `action`, a partial's schema keys,
/// `data` rows), read by the scanner in one pass with numbers straight to fixed point: serde
/// made a checked `&str` of every key and string and kept numbers as text to parse again. The
/// action and the rows, appended to `rows`. `None` at the first thing outside that shape, a
/// bad number or a malformed frame included: the serde path then reads the frame and says
/// what is wrong with it.
pub fn scan_book<'a>(frame: &'a [u8], rows: &mut Vec<ScannedRow<'a>>) -> Option<&'a str> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    if scan.next_key(&mut first).ok()? != Some(b"table") {
        return None;
    }
    if !matches!(scan.string().ok()?, b"orderBookL2" | b"orderBookL2_25") {
        return None;
    }
    let (mut action, mut data) = (None, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"action" => action = Some(scan.str_value().ok()?),
            b"data" if !data => {
                data = true;
                scan_rows(&mut scan, rows)?;
            }
            b"keys" | b"types" | b"foreignKeys" | b"attributes" | b"filter" => {
                scan.skip_value().ok()?
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    data.then_some(action?)
}

fn scan_rows<'a>(scan: &mut Scanner<'a>, rows: &mut Vec<ScannedRow<'a>>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        scan.begin_object().ok()?;
        let mut row = ScannedRow::default();
        let mut first_key = true;
        while let Some(key) = scan.next_key(&mut first_key).ok()? {
            match key {
                b"symbol" => row.symbol = Some(scan.str_value().ok()?),
                b"id" => row.id = Some(scan.u64().ok()?),
                b"side" => row.side = Some(scan.str_value().ok()?),
                b"timestamp" => row.timestamp = Some(scan.str_value().ok()?),
                b"price" => row.price = scan_number(scan)?,
                b"size" => row.size = scan_number(scan)?,
                _ => scan.skip_value().ok()?,
            }
        }
        rows.push(row);
    }
    Some(())
}

/// A number or `null` (`Some(None)`); `None` for anything else.
fn scan_number(scan: &mut Scanner) -> Option<Option<Decimal>> {
    if scan.null().ok()? {
        return Some(None);
    }
    Some(Some(scan.number_decimal().ok()?.ok()?))
}
