//! AscendEX's frames as borrowed types.
//!
//! Every frame is one object named by `m`: `depth` and `depth-snapshot` (`symbol`, and `data`
//! with `seqnum`, `ts`, `asks`, `bids` as `[price, size]` strings), `trades` (`data` a list),
//! `ping` (answered with `{"op":"pong"}`), `sub`/`unsub` answers with `code` (0: accepted),
//! `error` (`code`, `reason`, `info`), `connected` and `pong`. Depth frames, most of the stream,
//! are read by the scanner in one pass (`scan_depth`); the rest, and any depth frame outside
//! the common shape, by the derived types below, `data` kept raw and read once `m` is known.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::sync::LevelChange;
use crate::venue::json::{scan_side, LooseText};
use crate::venue::scan::Scanner;

#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(default, borrow)]
    pub m: Option<&'a str>,
    #[serde(default, borrow)]
    pub symbol: Option<&'a str>,
    #[serde(default, borrow)]
    pub ch: Option<&'a str>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "loose", borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "loose", borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "loose", borrow)]
    pub info: Option<Cow<'a, str>>,
}

/// The `data` of a `depth` or `depth-snapshot` frame.
#[derive(Deserialize)]
pub struct Depth<'a> {
    pub seqnum: u64,
    #[serde(default)]
    pub ts: Option<u64>,
    #[serde(default, borrow)]
    pub asks: Vec<(&'a str, &'a str)>,
    #[serde(default, borrow)]
    pub bids: Vec<(&'a str, &'a str)>,
}

/// One trade of a `trades` frame: `bm` is true when the buyer was the maker.
#[derive(Deserialize)]
pub struct TradeItem<'a> {
    #[serde(borrow)]
    pub p: &'a str,
    #[serde(borrow)]
    pub q: &'a str,
    #[serde(default)]
    pub ts: Option<u64>,
    #[serde(default)]
    pub bm: Option<bool>,
    pub seqnum: u64,
}

fn loose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    LooseText.deserialize(d)
}

/// A depth frame as the scanner read it (its levels in the caller's buffer).
pub struct ScannedDepth<'a> {
    pub snapshot: bool,
    pub symbol: &'a str,
    pub seqnum: u64,
    pub ts_ms: Option<u64>,
}

/// `{"m":"depth"|"depth-snapshot","symbol":..,"data":{"ts","seqnum","asks","bids"}}` read in one
/// pass, levels straight to fixed point into `levels`: serde read the frame to find `data`, then
/// `data` again, a `&str` per number. `None` at anything else (other messages, other key orders,
/// a bad number): the derived path then reads the frame and names what is wrong.
pub fn scan_depth<'a>(frame: &'a [u8], levels: &mut Vec<LevelChange>) -> Option<ScannedDepth<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    let mut snapshot = None;
    let mut symbol = None;
    let mut data = None;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"m" if snapshot.is_none() => {
                snapshot = Some(match scan.string().ok()? {
                    b"depth" => false,
                    b"depth-snapshot" => true,
                    _ => return None,
                })
            }
            b"symbol" if symbol.is_none() => symbol = Some(scan.str_value().ok()?),
            // Only once `m` says it is a book (a `trades` list is not read here).
            b"data" if data.is_none() && snapshot.is_some() => {
                data = Some(scan_depth_data(&mut scan, levels)?)
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    let (seqnum, ts_ms) = data?;
    Some(ScannedDepth {
        snapshot: snapshot?,
        symbol: symbol?,
        seqnum,
        ts_ms,
    })
}

fn scan_depth_data(
    scan: &mut Scanner,
    levels: &mut Vec<LevelChange>,
) -> Option<(u64, Option<u64>)> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut seqnum, mut ts_ms) = (None, None);
    let (mut asks, mut bids) = (false, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"seqnum" if seqnum.is_none() => seqnum = Some(scan.u64().ok()?),
            b"ts" if ts_ms.is_none() => ts_ms = Some(scan.u64().ok()?),
            b"asks" if !asks => {
                asks = true;
                scan_side(scan, Side::Ask, levels)?;
            }
            b"bids" if !bids => {
                bids = true;
                scan_side(scan, Side::Bid, levels)?;
            }
            b"seqnum" | b"ts" | b"asks" | b"bids" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    Some((seqnum?, ts_ms))
}
