//! Upbit's frames: JSON text that arrives in binary websocket frames, in the `SIMPLE` format
//! (short keys). Numbers are JSON numbers, each read from its text (`RawValue`), never through
//! `f64` (Upbit writes `9.9E-7`; the exponent is kept exact).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::scan::Scanner;

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

/// What an orderbook message says beside its units (which go to the level buffer).
pub struct BookTotals {
    pub tms: Option<u64>,
    pub total_asks: Decimal,
    pub total_bids: Decimal,
}

/// An orderbook message in its common shape (`ty` first, then `cd`, `tms`, `tas`, `tbs`, `obu`
/// and `st`), read by the scanner in one pass with numbers straight to fixed point: these are
/// most of the stream, and serde made a `&str` of every number and checked every string's
/// UTF-8. Each unit gives its ask, then its bid. `None` at the first thing outside that shape,
/// a bad number or a malformed frame included: the serde path then reads the frame and says
/// what is wrong with it.
pub fn scan_book<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
) -> Option<(&'a str, BookTotals)> {
    let kept = levels.len();
    let book = scan_book_frame(frame, levels);
    if book.is_none() {
        levels.truncate(kept);
    }
    book
}

fn scan_book_frame<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
) -> Option<(&'a str, BookTotals)> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    if scan.next_key(&mut first).ok()? != Some(b"ty") || scan.string().ok()? != b"orderbook" {
        return None;
    }
    let (mut symbol, mut tms, mut tas, mut tbs, mut units) = (None, None, None, None, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"cd" => symbol = Some(scan.str_value().ok()?),
            b"tms" => tms = Some(scan.u64().ok()?),
            b"tas" => tas = Some(scan.number_decimal().ok()?.ok()?),
            b"tbs" => tbs = Some(scan.number_decimal().ok()?.ok()?),
            b"obu" => units = scan_units(&mut scan, levels).is_some(),
            b"st" => scan.skip_value().ok()?,
            _ => return None,
        }
    }
    scan.finish().ok()?;
    let totals = BookTotals {
        tms,
        total_asks: tas?,
        total_bids: tbs?,
    };
    units.then_some((symbol?, totals))
}

/// `obu`: `[{"ap","bp","as","bs"}, ...]`, each unit's ask then its bid.
fn scan_units(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        scan.begin_object().ok()?;
        let (mut ap, mut ask_size, mut bp, mut bs) = (None, None, None, None);
        let mut first_key = true;
        while let Some(key) = scan.next_key(&mut first_key).ok()? {
            let field = match key {
                b"ap" => &mut ap,
                b"as" => &mut ask_size,
                b"bp" => &mut bp,
                b"bs" => &mut bs,
                _ => {
                    scan.skip_value().ok()?;
                    continue;
                }
            };
            *field = Some(scan.number_decimal().ok()?.ok()?);
        }
        levels.push((Side::Ask, ap?, ask_size?));
        levels.push((Side::Bid, bp?, bs?));
    }
    Some(())
}
