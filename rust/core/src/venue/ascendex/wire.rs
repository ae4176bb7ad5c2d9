//! AscendEX's frames as borrowed types.
//!
//! Every frame is one object named by `m`: `depth` and `depth-snapshot` (`symbol`, and `data`
//! with `seqnum`, `ts`, `asks`, `bids` as `[price, size]` strings), `trades` (`data` a list),
//! `ping` (answered with `{"op":"pong"}`), `sub`/`unsub` answers with `code` (0: accepted),
//! `error` (`code`, `reason`, `info`), `connected` and `pong`. `data` is kept raw and read once
//! `m` is known.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::venue::json::LooseText;

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
