//! Bybit v5 public streams (spot, linear, inverse): `orderbook.N.SYMBOL` books, `publicTrade`
//! trades and `kline` candles.
//!
//! One session per websocket connection: the same symbol (say `BTCUSDT`) is a different market
//! on the spot and on the linear connection, and its update ids only chain within one of them.
//!
//! Book rule (per symbol): a `snapshot` replaces the book whatever its id (the snapshot comes
//! in-band, so a resync is an unsubscribe/subscribe: `ResyncBy::Resubscribe`); each `delta`
//! must carry `u == previous u + 1`, anything higher is a gap and anything lower is dropped as
//! stale. A delta with `u == 1` means the venue restarted its book service: it carries a full
//! book and is taken as a snapshot. Size `"0"` deletes a level. A depth-N topic keeps N levels
//! a side by the venue's own deltas (proven on the recorded `orderbook.200` tape), so the book
//! is not truncated here.
//!
//! Trades: `S` is the taker's side (`Buy`/`Sell`), `i` the trade id, `T` the trade time (ms).
//! Candles: `confirm: true` marks a closed candle; the interval is spelled like Binance's
//! (`1` becomes `1m`, `60` becomes `1h`, `D` becomes `1d`, `W` `1w`, `M` `1M`).
//! Tickers: the best bid and ask of `tickers` (`bid1Price`, `bid1Size`, `ask1Price`,
//! `ask1Size`) become `Quote` events with no `seq` (the ticker's `cs` is not the book's `u`), as
//! information only: books are never checked against them. Linear deltas carry only the fields
//! that changed, so the last known values fill in; spot tickers carry no top of book and give no
//! quotes. Operation answers (`{"op":..}`: subscribe acks, pongs) and any other topic are
//! understood and counted as ignored. A refused operation (`"success":false`) is the venue's
//! error: `FrameError::VenueError` with its `op` and `ret_msg` (and `ret_code` if sent), naming
//! no symbol (the answer names no topic); nothing of any book changes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, Trade, TradeSide};
use crate::sync::{Continuity, DeltaIds, LevelChange, ResyncBy, SequenceRule, SymbolSync, Symbols};
use crate::venue::json::{venue_error, LevelsSeed, LooseText, NumberFault};
use crate::venue::{
    check_frame_size, decimal_field, ms_to_ns, Session, SessionOptions, SessionStats,
};

/// `u` must grow by exactly one from one book message to the next.
pub struct BybitRule;

impl BybitRule {
    fn next(prev: u64, u: u64) -> Continuity {
        if u <= prev {
            Continuity::Stale
        } else if u - 1 == prev {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: prev + 1,
                received: u,
            }
        }
    }
}

impl SequenceRule for BybitRule {
    fn bridges(&self, snapshot_id: u64, delta: &DeltaIds) -> Continuity {
        Self::next(snapshot_id, delta.last)
    }
    fn follows(&self, last: &DeltaIds, delta: &DeltaIds) -> Continuity {
        Self::next(last.last, delta.last)
    }
}

/// A symbol's best bid and ask as its `tickers` topic last told them: bid price, bid size,
/// ask price, ask size (a delta carries only what changed).
type TickerTop = [Option<Decimal>; 4];

pub struct BybitSession {
    symbols: Symbols,
    levels: Vec<LevelChange>,
    /// Per symbol id: the `tickers` top of book so far.
    tops: Vec<TickerTop>,
    stats: SessionStats,
    options: SessionOptions,
}

impl BybitSession {
    pub fn new(options: SessionOptions) -> Self {
        BybitSession {
            symbols: options.symbols_table(),
            levels: Vec::with_capacity(512),
            tops: Vec::new(),
            stats: SessionStats::default(),
            options,
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops what it decoded.
    fn intern(&mut self, symbol: &str) -> Option<u32> {
        self.symbols
            .intern(symbol, || SymbolSync::new(ResyncBy::Resubscribe, None))
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        let mut fields = Fields::default();
        let mut fault = NumberFault::default();
        match decode(
            frame,
            &mut fields,
            &mut self.levels,
            &mut fault,
            self.options.max_frame_bytes,
        ) {
            Ok(()) => self.on_fields(&fields, ts_ns, out),
            Err(error) => {
                // A book frame that names a known symbol but cannot be read costs it its sync.
                let symbol = fields.s.or_else(|| fields.topic.map(topic_symbol));
                if fields.is_book() {
                    if let Some(id) = symbol.and_then(|s| self.symbols.id(s)) {
                        return Err(self.symbols.bad_frame(id, error, out));
                    }
                }
                Err(ReceiveError::new(symbol.map(str::to_owned), error))
            }
        }
    }

    fn on_fields(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if f.success == Some(false) {
            // A refused request (a subscribe to an unknown topic, say): the venue's answer
            // names no topic, so no symbol's state changes.
            let op = f.op.unwrap_or("request");
            let message = match f.ret_msg.as_deref() {
                Some(text) if !text.is_empty() => format!("{op}: {text}"),
                _ => format!("{op} failed"),
            };
            return Err(venue_error(None, f.ret_code.as_deref(), Some(&message)));
        }
        if f.op.is_some() || f.success.is_some() {
            // Subscribe/unsubscribe acks, pongs.
            self.stats.ignored += 1;
            return Ok(());
        }
        let Some(topic) = f.topic else {
            self.stats.ignored += 1;
            return Ok(());
        };
        match topic.split_once('.').map_or(topic, |(channel, _)| channel) {
            "orderbook" => self.on_book(f, topic_symbol(topic), ts_ns, out),
            "publicTrade" => self.on_trades(f, topic_symbol(topic), ts_ns, out),
            "kline" => self.on_klines(f, topic, ts_ns, out),
            "tickers" => self.on_ticker(f, topic_symbol(topic), ts_ns, out),
            _ => {
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        f: &Fields<'_>,
        topic_symbol: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = match f.s.unwrap_or(topic_symbol) {
            "" => return Err(FrameError::MissingField("s").into()),
            name => name,
        };
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        match self.apply_book(id, f, ts_ns, out) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.symbols.bad_frame(id, e, out)),
        }
    }

    fn apply_book(
        &mut self,
        id: u32,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        if f.data != DataShape::Object {
            return Err(FrameError::MissingField("data"));
        }
        let u = f.u.ok_or(FrameError::MissingField("u"))?;
        let snapshot = match f.kind {
            Some("snapshot") => true,
            // The book service restarted: this delta is a full book.
            Some("delta") => u == 1,
            Some(other) => {
                return Err(FrameError::Invalid(format!(
                    "unknown book message type {other:?}"
                )))
            }
            None => return Err(FrameError::MissingField("type")),
        };
        let exchange_ts = ms_to_ns(f.ts.unwrap_or(0));
        let sync = self
            .symbols
            .sync_mut(id)
            .ok_or_else(|| FrameError::Invalid("unknown symbol id".into()))?;
        if snapshot {
            // Any snapshot replaces the book, even one whose id is lower than the last delta's.
            sync.forget_stream();
            sync.on_snapshot(
                id,
                &BybitRule,
                Some(u),
                &self.levels,
                exchange_ts,
                ts_ns,
                out,
            )?;
        } else {
            sync.on_delta(
                id,
                &BybitRule,
                DeltaIds::single(u),
                &self.levels,
                exchange_ts,
                ts_ns,
                out,
            )?;
        }
        Ok(())
    }

    fn on_trades(
        &mut self,
        f: &Fields<'_>,
        topic_symbol: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if f.data != DataShape::List {
            return Err(ReceiveError::new(
                Some(topic_symbol.to_owned()),
                FrameError::MissingField("data"),
            ));
        }
        let start = out.len();
        for item in &f.items {
            match self.trade(item, topic_symbol, ts_ns) {
                Ok(Some(trade)) => out.push(Event::Trade(trade)),
                Ok(None) => {}
                Err(e) => {
                    // All or nothing: a frame's trades are not half delivered.
                    out.truncate(start);
                    return Err(ReceiveError::new(Some(topic_symbol.to_owned()), e));
                }
            }
        }
        Ok(())
    }

    fn trade(
        &mut self,
        item: &Item<'_>,
        topic_symbol: &str,
        ts_ns: u64,
    ) -> Result<Option<Trade>, FrameError> {
        let name = item.s.unwrap_or(topic_symbol);
        if name.is_empty() {
            return Err(FrameError::MissingField("s"));
        }
        let price = decimal_field("p", item.p)?;
        let size = decimal_field("v", item.v)?;
        let side = match item.side {
            Some("Buy") => Some(TradeSide::Buy),
            Some("Sell") => Some(TradeSide::Sell),
            // A side we cannot read does not make price and size wrong.
            _ => None,
        };
        let trade_id = item.i.ok_or(FrameError::MissingField("i"))?;
        let time = item.trade_time.ok_or(FrameError::MissingField("T"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(None);
        };
        Ok(Some(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade_id.to_owned(),
            exchange_ts_ns: ms_to_ns(time),
            ts_ns,
            is_snapshot: false,
        }))
    }

    /// `tickers`: the best bid and ask become a `Quote` (no `seq`: `cs` is not the book's `u`).
    /// A snapshot replaces what was known, a delta updates the fields it carries; a quote goes
    /// out once all four are known and the frame changed one of them.
    fn on_ticker(
        &mut self,
        f: &Fields<'_>,
        topic_symbol: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.ticker.symbol.as_deref().unwrap_or(topic_symbol);
        let err = |e| ReceiveError::new(Some(name.to_owned()), e);
        if f.data != DataShape::Object {
            return Err(err(FrameError::MissingField("data")));
        }
        if name.is_empty() {
            return Err(FrameError::MissingField("symbol").into());
        }
        let t = &f.ticker;
        let fresh = [
            ticker_field("bid1Price", t.bid_price.as_deref()).map_err(err)?,
            ticker_field("bid1Size", t.bid_size.as_deref()).map_err(err)?,
            ticker_field("ask1Price", t.ask_price.as_deref()).map_err(err)?,
            ticker_field("ask1Size", t.ask_size.as_deref()).map_err(err)?,
        ];
        let snapshot = f.kind == Some("snapshot");
        if fresh.iter().all(Option::is_none) {
            // Nothing of the top (spot tickers carry none): only a snapshot forgets it.
            if let (true, Some(id)) = (snapshot, self.symbols.id(name)) {
                if let Some(top) = self.tops.get_mut(id as usize) {
                    *top = [None; 4];
                }
            }
            self.stats.ignored += 1;
            return Ok(());
        }
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        if self.tops.len() <= id as usize {
            self.tops.resize(id as usize + 1, [None; 4]);
        }
        let top = &mut self.tops[id as usize];
        if snapshot {
            *top = [None; 4];
        }
        for (known, new) in top.iter_mut().zip(fresh) {
            if new.is_some() {
                *known = new;
            }
        }
        match *top {
            [Some(bid_price), Some(bid_size), Some(ask_price), Some(ask_size)] => {
                out.push(Event::Quote(Quote {
                    symbol: id,
                    seq: None,
                    bid_price,
                    bid_size,
                    ask_price,
                    ask_size,
                    exchange_ts_ns: ms_to_ns(f.ts.unwrap_or(0)),
                    ts_ns,
                }));
            }
            _ => self.stats.ignored += 1,
        }
        Ok(())
    }

    fn on_klines(
        &mut self,
        f: &Fields<'_>,
        topic: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        // `kline.<interval>.<symbol>`
        let mut parts = topic.splitn(3, '.').skip(1);
        let (interval, name) = match (parts.next(), parts.next()) {
            (Some(interval), Some(name)) if !interval.is_empty() && !name.is_empty() => {
                (interval, name)
            }
            _ => {
                return Err(
                    FrameError::Invalid(format!("kline topic {topic:?} names no symbol")).into(),
                )
            }
        };
        let err = |e| ReceiveError::new(Some(name.to_owned()), e);
        if f.data != DataShape::List {
            return Err(err(FrameError::MissingField("data")));
        }
        let start = out.len();
        for item in &f.items {
            match candle(item, interval, f.ts, ts_ns) {
                Ok(c) => out.push(Event::Candle(c)),
                Err(e) => {
                    out.truncate(start);
                    return Err(err(e));
                }
            }
        }
        if out.len() > start {
            let Some(symbol) = self.intern(name) else {
                out.truncate(start);
                return Ok(());
            };
            for ev in &mut out[start..] {
                if let Event::Candle(c) = ev {
                    c.symbol = symbol;
                }
            }
        }
        Ok(())
    }
}

fn candle(
    item: &Item<'_>,
    topic_interval: &str,
    frame_ts: Option<u64>,
    ts_ns: u64,
) -> Result<Candle, FrameError> {
    let open_ms = item.start.ok_or(FrameError::MissingField("start"))?;
    let end_ms = item.end.ok_or(FrameError::MissingField("end"))?;
    Ok(Candle {
        symbol: 0,
        interval: interval_name(item.interval.unwrap_or(topic_interval)),
        open_ts_ns: ms_to_ns(open_ms),
        // `end` is the interval's last millisecond.
        close_ts_ns: ms_to_ns(end_ms.saturating_add(1)),
        open: decimal_field("open", item.open)?,
        high: decimal_field("high", item.high)?,
        low: decimal_field("low", item.low)?,
        close: decimal_field("close", item.close)?,
        volume: decimal_field("volume", item.volume)?,
        trades: None,
        closed: item.confirm.ok_or(FrameError::MissingField("confirm"))?,
        exchange_ts_ns: ms_to_ns(item.timestamp.or(frame_ts).unwrap_or(0)),
        ts_ns,
        is_snapshot: false,
    })
}

/// Bybit's interval (`1`, `60`, `D`, `W`, `M`) spelled as `1m`, `1h`, `1d`, `1w`, `1M`.
pub fn interval_name(bybit: &str) -> String {
    match bybit {
        "D" => "1d".to_owned(),
        "W" => "1w".to_owned(),
        "M" => "1M".to_owned(),
        _ if !bybit.is_empty() && bybit.bytes().all(|b| b.is_ascii_digit()) => {
            match bybit.parse::<u32>() {
                Ok(minutes) if minutes >= 60 && minutes % 60 == 0 => {
                    format!("{}h", minutes / 60)
                }
                Ok(minutes) => format!("{minutes}m"),
                Err(_) => bybit.to_owned(),
            }
        }
        _ => bybit.to_owned(),
    }
}

/// The last dot-separated part of a topic: `orderbook.200.BTCUSDT` names `BTCUSDT`.
fn topic_symbol(topic: &str) -> &str {
    match topic.rsplit_once('.') {
        Some((_, symbol)) => symbol,
        None => "",
    }
}

/// A `tickers` number: absent or empty (Bybit sends `""` for what it does not have) is `None`.
fn ticker_field(field: &'static str, text: Option<&str>) -> Result<Option<Decimal>, FrameError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => Decimal::parse(text)
            .map(Some)
            .map_err(|error| FrameError::BadNumber { field, error }),
    }
}

impl Session for BybitSession {
    fn venue(&self) -> &'static str {
        "bybit"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    fn stats(&self) -> SessionStats {
        SessionStats {
            unsubscribed: self.symbols.unsubscribed(),
            ..self.stats
        }
    }

    fn stats_mut(&mut self) -> &mut SessionStats {
        &mut self.stats
    }
}

fn decode<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
    fault: &mut NumberFault,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = FrameSeed {
        fields,
        levels,
        fault,
    };
    match seed.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(e) => Err(match fault.fault {
            Some((field, error)) => FrameError::BadNumber { field, error },
            None => FrameError::Json(e.to_string()),
        }),
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum DataShape {
    #[default]
    Missing,
    /// Books and tickers.
    Object,
    /// Trades and klines.
    List,
}

/// Everything we read from a Bybit frame, filled in one pass; book levels go straight into the
/// session's reusable buffer, trade and kline items into `items`.
#[derive(Debug, Default)]
struct Fields<'a> {
    topic: Option<&'a str>,
    kind: Option<&'a str>,
    ts: Option<u64>,
    op: Option<&'a str>,
    success: Option<bool>,
    ret_msg: Option<Cow<'a, str>>,
    ret_code: Option<Cow<'a, str>>,
    data: DataShape,
    s: Option<&'a str>,
    u: Option<u64>,
    ticker: TickerFields<'a>,
    items: Vec<Item<'a>>,
}

/// What a `tickers` data object says of the top of book (read loosely: other topics' data
/// objects may use these names otherwise).
#[derive(Debug, Default)]
struct TickerFields<'a> {
    symbol: Option<Cow<'a, str>>,
    bid_price: Option<Cow<'a, str>>,
    bid_size: Option<Cow<'a, str>>,
    ask_price: Option<Cow<'a, str>>,
    ask_size: Option<Cow<'a, str>>,
}

impl Fields<'_> {
    /// Whether the frame (as far as it was read) is a book message.
    fn is_book(&self) -> bool {
        match self.topic {
            Some(topic) => topic.starts_with("orderbook."),
            // Only book objects carry `s` in an object `data`.
            None => self.s.is_some(),
        }
    }
}

/// One element of a list `data`: a trade or a kline.
#[derive(Debug, Default, Deserialize)]
struct Item<'a> {
    #[serde(rename = "T")]
    trade_time: Option<u64>,
    #[serde(borrow)]
    s: Option<&'a str>,
    #[serde(rename = "S", borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    v: Option<&'a str>,
    #[serde(borrow)]
    p: Option<&'a str>,
    #[serde(borrow)]
    i: Option<&'a str>,
    start: Option<u64>,
    end: Option<u64>,
    #[serde(borrow)]
    interval: Option<&'a str>,
    #[serde(borrow)]
    open: Option<&'a str>,
    #[serde(borrow)]
    close: Option<&'a str>,
    #[serde(borrow)]
    high: Option<&'a str>,
    #[serde(borrow)]
    low: Option<&'a str>,
    #[serde(borrow)]
    volume: Option<&'a str>,
    confirm: Option<bool>,
    timestamp: Option<u64>,
}

struct FrameSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bybit message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "topic" => f.topic = Some(map.next_value()?),
                "type" => f.kind = Some(map.next_value()?),
                "ts" => f.ts = Some(map.next_value()?),
                "op" => f.op = Some(map.next_value()?),
                "success" => f.success = Some(map.next_value()?),
                "ret_msg" => f.ret_msg = map.next_value_seed(LooseText)?,
                "ret_code" => f.ret_code = map.next_value_seed(LooseText)?,
                "data" => map.next_value_seed(DataSeed {
                    fields: &mut *f,
                    levels: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `data`: an object (book: `s`, `b`, `a`, `u`, `seq`; tickers: `symbol`, `bid1Price`, ..) or a
/// list (trades, klines).
struct DataSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a data object or list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        f.data = DataShape::Object;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "s" => f.s = Some(map.next_value()?),
                "u" => f.u = Some(map.next_value()?),
                "symbol" => f.ticker.symbol = map.next_value_seed(LooseText)?,
                "bid1Price" => f.ticker.bid_price = map.next_value_seed(LooseText)?,
                "bid1Size" => f.ticker.bid_size = map.next_value_seed(LooseText)?,
                "ask1Price" => f.ticker.ask_price = map.next_value_seed(LooseText)?,
                "ask1Size" => f.ticker.ask_size = map.next_value_seed(LooseText)?,
                "b" => map.next_value_seed(LevelsSeed {
                    side: Side::Bid,
                    out: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                "a" => map.next_value_seed(LevelsSeed {
                    side: Side::Ask,
                    out: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let f = self.fields;
        f.data = DataShape::List;
        while let Some(item) = seq.next_element::<Item<'de>>()? {
            f.items.push(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Level;
    use crate::event::LossReason;
    use crate::sync::SyncState;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn feed(session: &mut BybitSession, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        session
            .receive(frame.as_bytes(), T0, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    /// A book message as the v5 docs describe it: top-level `topic`/`type`/`ts`, `data` with
    /// `s`, `b`, `a`, `u`, `seq`.
    fn book_msg(kind: &str, u: u64, bids: &str, asks: &str) -> String {
        format!(
            r#"{{"topic":"orderbook.50.XYZUSDT","type":"{kind}","ts":1700000000123,"data":{{"s":"XYZUSDT","b":[{bids}],"a":[{asks}],"u":{u},"seq":9000{u}}},"cts":1700000000120}}"#
        )
    }

    fn side(session: &BybitSession, side: Side) -> Vec<(String, String)> {
        let sync = session.symbols().sync(0).unwrap();
        sync.book
            .levels(side)
            .map(|Level { price, qty }| (price.to_string(), qty.to_string()))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect()
    }

    #[test]
    fn rule_needs_exactly_the_next_id() {
        let last = DeltaIds::single(10);
        assert_eq!(
            BybitRule.follows(&last, &DeltaIds::single(11)),
            Continuity::Apply
        );
        assert_eq!(
            BybitRule.follows(&last, &DeltaIds::single(10)),
            Continuity::Stale
        );
        assert_eq!(
            BybitRule.follows(&last, &DeltaIds::single(13)),
            Continuity::Gap {
                expected: 11,
                received: 13
            }
        );
        assert_eq!(
            BybitRule.bridges(u64::MAX, &DeltaIds::single(u64::MAX)),
            Continuity::Stale
        );
    }

    #[test]
    fn snapshot_then_deltas_with_deletes_of_unknown_levels() {
        let mut s = BybitSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            &book_msg(
                "snapshot",
                100,
                r#"["10.0","1"],["9.5","2"]"#,
                r#"["10.5","3"]"#,
            ),
        );
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated {
                seq: Some(100),
                exchange_ts_ns: 1_700_000_000_123_000_000,
                ..
            }]
        ));
        // Deleting a level the book never had is normal.
        let out = feed(
            &mut s,
            &book_msg(
                "delta",
                101,
                r#"["9.0","0"],["9.5","0"]"#,
                r#"["11.0","0"]"#,
            ),
        );
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated { seq: Some(101), .. }]
        ));
        assert_eq!(side(&s, Side::Bid), pairs(&[("10.0", "1")]));
        assert_eq!(side(&s, Side::Ask), pairs(&[("10.5", "3")]));
        assert_eq!(s.stats().errors, 0);
    }

    #[test]
    fn snapshot_replaces_a_populated_book_fully() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(
            &mut s,
            &book_msg(
                "snapshot",
                5,
                r#"["100","1"],["99","1"],["98","1"]"#,
                r#"["101","1"],["102","1"]"#,
            ),
        );
        feed(
            &mut s,
            &book_msg("delta", 6, r#"["97","4"]"#, r#"["103","5"]"#),
        );
        // A new snapshot (lower id, as after a resubscription elsewhere) replaces everything.
        let out = feed(
            &mut s,
            &book_msg("snapshot", 3, r#"["50","7"]"#, r#"["60","8"]"#),
        );
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated { seq: Some(3), .. }]
        ));
        assert_eq!(side(&s, Side::Bid), pairs(&[("50", "7")]));
        assert_eq!(side(&s, Side::Ask), pairs(&[("60", "8")]));
        // And deltas chain from the new snapshot's id.
        let out = feed(&mut s, &book_msg("delta", 4, r#"["51","1"]"#, ""));
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated { seq: Some(4), .. }]
        ));
    }

    #[test]
    fn delta_with_u_1_is_a_restart_and_resets_the_book() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(
            &mut s,
            &book_msg(
                "snapshot",
                500,
                r#"["100","1"],["99","2"]"#,
                r#"["101","1"]"#,
            ),
        );
        feed(&mut s, &book_msg("delta", 501, r#"["98","3"]"#, ""));
        let out = feed(
            &mut s,
            &book_msg("delta", 1, r#"["200","1"]"#, r#"["201","2"]"#),
        );
        assert!(
            matches!(out.as_slice(), [Event::BookUpdated { seq: Some(1), .. }]),
            "{out:?}"
        );
        assert_eq!(side(&s, Side::Bid), pairs(&[("200", "1")]));
        assert_eq!(side(&s, Side::Ask), pairs(&[("201", "2")]));
        let out = feed(&mut s, &book_msg("delta", 2, "", r#"["202","1"]"#));
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated { seq: Some(2), .. }]
        ));
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.gaps, 0);
        assert_eq!(sync.counters.snapshots, 2);
    }

    #[test]
    fn u_jump_is_a_gap_then_a_new_snapshot_resyncs() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(
            &mut s,
            &book_msg("snapshot", 10, r#"["100","1"]"#, r#"["101","1"]"#),
        );
        feed(&mut s, &book_msg("delta", 11, r#"["99","1"]"#, ""));
        let out = feed(&mut s, &book_msg("delta", 14, r#"["98","1"]"#, ""));
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 12,
                    received: 14
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 12,
                        received: 14,
                    },
                },
                Event::NeedResubscribe { symbol: 0 },
            ]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert!(sync.book.is_empty());
        // Deltas until the resubscription lands change nothing and ask nothing new.
        let out = feed(&mut s, &book_msg("delta", 15, r#"["97","1"]"#, ""));
        assert!(out.is_empty(), "{out:?}");
        // The resubscription's snapshot rebuilds the book.
        let out = feed(
            &mut s,
            &book_msg("snapshot", 20, r#"["90","2"]"#, r#"["91","3"]"#),
        );
        assert_eq!(
            out,
            vec![
                Event::Resynced {
                    symbol: 0,
                    seq: Some(20)
                },
                Event::BookUpdated {
                    symbol: 0,
                    seq: Some(20),
                    exchange_ts_ns: 1_700_000_000_123_000_000,
                    ts_ns: T0
                },
            ]
        );
        assert_eq!(side(&s, Side::Bid), pairs(&[("90", "2")]));
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.gaps, 1);
        assert_eq!(sync.counters.resyncs, 1);
        assert_eq!(sync.state(), SyncState::Live);
    }

    #[test]
    fn restart_while_resyncing_is_still_taken() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(&mut s, &book_msg("snapshot", 10, r#"["100","1"]"#, ""));
        feed(&mut s, &book_msg("delta", 12, "", r#"["101","1"]"#));
        // Ids restart while the symbol awaits its snapshot: the restart book is taken anyway.
        let out = feed(
            &mut s,
            &book_msg("delta", 1, r#"["80","1"]"#, r#"["81","1"]"#),
        );
        assert!(matches!(
            out.as_slice(),
            [
                Event::Resynced { seq: Some(1), .. },
                Event::BookUpdated { .. }
            ]
        ));
        assert_eq!(side(&s, Side::Ask), pairs(&[("81", "1")]));
    }

    #[test]
    fn bad_book_frame_resyncs_only_its_symbol() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(&mut s, &book_msg("snapshot", 10, r#"["100","1"]"#, ""));
        feed(
            &mut s,
            r#"{"topic":"orderbook.50.ABCUSDT","type":"snapshot","ts":1,"data":{"s":"ABCUSDT","b":[["1","1"]],"a":[],"u":7}}"#,
        );
        let mut out = Vec::new();
        let err = s
            .receive(
                book_msg("delta", 11, r#"["99","x"]"#, "").as_bytes(),
                T0,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("XYZUSDT"));
        assert!(matches!(err.error, FrameError::BadNumber { .. }));
        assert_eq!(
            out,
            vec![
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::BadFrame
                },
                Event::NeedResubscribe { symbol: 0 }
            ]
        );
        assert_eq!(
            s.symbols().sync(1).unwrap().state(),
            SyncState::Live,
            "the other symbol keeps its book"
        );
        // A frame cut short still names its symbol and costs it its sync.
        feed(&mut s, &book_msg("snapshot", 30, r#"["100","1"]"#, ""));
        let frame = book_msg("delta", 31, r#"["99","1"]"#, "");
        let mut out = Vec::new();
        let err = s
            .receive(&frame.as_bytes()[..frame.len() - 20], T0, &mut out)
            .unwrap_err();
        assert!(matches!(err.error, FrameError::Json(_)));
        assert_eq!(
            out,
            vec![
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::BadFrame
                },
                Event::NeedResubscribe { symbol: 0 }
            ]
        );
    }

    #[test]
    fn trades_keep_taker_side_and_exact_digits() {
        let mut s = BybitSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            r#"{"topic":"publicTrade.XYZUSDT","type":"snapshot","ts":1700000000200,"data":[{"T":1700000000199,"s":"XYZUSDT","S":"Sell","v":"0.0100","p":"25000.50","L":"MinusTick","i":"abc-1","BT":false},{"T":1700000000200,"s":"XYZUSDT","S":"Buy","v":"2","p":"25000.6","i":"abc-2","BT":true}]}"#,
        );
        let trades: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Trade(t) => (
                    t.price.to_string(),
                    t.size.to_string(),
                    t.side,
                    t.trade_id.clone(),
                    t.exchange_ts_ns,
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            trades,
            vec![
                (
                    "25000.50".into(),
                    "0.0100".into(),
                    Some(TradeSide::Sell),
                    "abc-1".into(),
                    1_700_000_000_199_000_000
                ),
                (
                    "25000.6".into(),
                    "2".into(),
                    Some(TradeSide::Buy),
                    "abc-2".into(),
                    1_700_000_000_200_000_000
                ),
            ]
        );
        // One bad trade spoils the frame, not half of it.
        let mut out = Vec::new();
        assert!(s
            .receive(
                br#"{"topic":"publicTrade.XYZUSDT","ts":1,"data":[{"T":1,"s":"XYZUSDT","S":"Buy","v":"1","p":"1","i":"a"},{"T":1,"s":"XYZUSDT","S":"Buy","v":"1","p":"nope","i":"b"}]}"#,
                T0,
                &mut out
            )
            .is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn klines_carry_the_confirm_flag() {
        let mut s = BybitSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            r#"{"topic":"kline.60.XYZUSDT","type":"snapshot","ts":1700003600001,"data":[{"start":1700000000000,"end":1700003599999,"interval":"60","open":"1.10","close":"1.20","high":"1.25","low":"1.05","volume":"300.5","turnover":"350","confirm":true,"timestamp":1700003600000}]}"#,
        );
        match out.as_slice() {
            [Event::Candle(c)] => {
                assert!(c.closed);
                assert_eq!(c.interval, "1h");
                assert_eq!(c.open_ts_ns, 1_700_000_000_000_000_000);
                assert_eq!(c.close_ts_ns, 1_700_003_600_000_000_000);
                assert_eq!(c.exchange_ts_ns, 1_700_003_600_000_000_000);
                assert_eq!(
                    (
                        c.open.to_string(),
                        c.close.to_string(),
                        c.volume.to_string()
                    ),
                    ("1.10".into(), "1.20".into(), "300.5".into())
                );
                assert_eq!(s.symbols().name(c.symbol), "XYZUSDT");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(interval_name("1"), "1m");
        assert_eq!(interval_name("240"), "4h");
        assert_eq!(interval_name("D"), "1d");
        assert_eq!(interval_name("M"), "1M");
    }

    #[test]
    fn acks_pongs_spot_tickers_and_unknown_frames_are_ignored() {
        let mut s = BybitSession::new(SessionOptions::default());
        for frame in [
            r#"{"success":true,"ret_msg":"","conn_id":"c-1","req_id":"","op":"subscribe"}"#,
            r#"{"req_id":"p1","op":"pong","args":["1700000000000"],"conn_id":"c-1"}"#,
            r#"{"topic":"tickers.XYZUSDT","ts":1700000000100,"type":"snapshot","cs":1,"data":{"symbol":"XYZUSDT","lastPrice":"25000.5","highPrice24h":"25100","lowPrice24h":"24900","volume24h":"12.5"}}"#,
            r#"{"topic":"allLiquidation.XYZUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"XYZUSDT","S":"Sell","v":"1","p":"1"}]}"#,
            r#"{"hello":"world"}"#,
        ] {
            assert!(feed(&mut s, frame).is_empty());
        }
        assert_eq!(s.stats().ignored, 5);
        assert_eq!(s.stats().errors, 0);
        assert!(s.symbols().is_empty());
    }

    #[test]
    fn linear_tickers_become_quotes_from_snapshot_and_deltas() {
        let mut s = BybitSession::new(SessionOptions::default());
        let ticker = |kind: &str, ts: u64, fields: &str| {
            format!(
                r#"{{"topic":"tickers.XYZUSDT","type":"{kind}","data":{{"symbol":"XYZUSDT","lastPrice":"25000.40"{fields}}},"cs":9001,"ts":{ts}}}"#
            )
        };
        let quote = |out: &[Event]| match out {
            [Event::Quote(q)] => (
                q.symbol,
                q.seq,
                q.bid_price.to_string(),
                q.bid_size.to_string(),
                q.ask_price.to_string(),
                q.ask_size.to_string(),
                q.exchange_ts_ns,
            ),
            other => panic!("{other:?}"),
        };
        let out = feed(
            &mut s,
            &ticker(
                "snapshot",
                1700000000100,
                r#","bid1Price":"25000.40","bid1Size":"1.500","ask1Price":"25000.50","ask1Size":"0.020","markPrice":"25000.45""#,
            ),
        );
        assert_eq!(
            quote(&out),
            (
                0,
                None,
                "25000.40".into(),
                "1.500".into(),
                "25000.50".into(),
                "0.020".into(),
                1_700_000_000_100_000_000
            )
        );
        // A delta carries what changed; the rest is the last known.
        let out = feed(
            &mut s,
            &ticker("delta", 1700000000200, r#","ask1Size":"0.700""#),
        );
        let q = quote(&out);
        assert_eq!((q.2.as_str(), q.5.as_str()), ("25000.40", "0.700"));
        // A delta that leaves the top alone gives no quote.
        assert!(feed(&mut s, &ticker("delta", 1700000000300, "")).is_empty());
        assert_eq!(s.stats().ignored, 1);
        // A new snapshot starts over: until all four are known again, nothing is quoted.
        assert!(feed(
            &mut s,
            &ticker(
                "snapshot",
                1700000000400,
                r#","bid1Price":"24999.9","bid1Size":"2""#
            )
        )
        .is_empty());
        // An empty field is "not given", not zero.
        let out = feed(
            &mut s,
            &ticker(
                "delta",
                1700000000500,
                r#","ask1Price":"25000","ask1Size":"3","bid1Size":"""#,
            ),
        );
        let q = quote(&out);
        assert_eq!(
            (q.2.as_str(), q.3.as_str(), q.4.as_str(), q.5.as_str()),
            ("24999.9", "2", "25000", "3")
        );
        // Quotes are information only: no book is made or checked.
        let sync = s.symbols().sync(0).unwrap();
        assert!(sync.book.is_empty());
        assert_eq!(sync.counters.updates, 0);
        // A number that does not parse is a typed error naming the symbol.
        let mut out = Vec::new();
        let err = s
            .receive(
                ticker("delta", 1, r#","bid1Price":"2x""#).as_bytes(),
                T0,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("XYZUSDT"));
        assert!(matches!(
            err.error,
            FrameError::BadNumber {
                field: "bid1Price",
                ..
            }
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn refused_operation_is_a_typed_venue_error_and_changes_no_book() {
        let mut s = BybitSession::new(SessionOptions::default());
        feed(
            &mut s,
            &book_msg("snapshot", 10, r#"["100","1"]"#, r#"["101","2"]"#),
        );
        let before = (side(&s, Side::Bid), side(&s, Side::Ask));
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"success":false,"ret_msg":"error:topic not exists \"orderbook.50.NOPE\"","conn_id":"c-9","req_id":"r1","op":"subscribe"}"#,
                T0,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol, None);
        assert_eq!(
            err.error,
            FrameError::VenueError(
                r#"subscribe: error:topic not exists "orderbook.50.NOPE""#.into()
            )
        );
        assert!(out.is_empty());
        assert_eq!((side(&s, Side::Bid), side(&s, Side::Ask)), before);
        assert_eq!(s.symbols().len(), 1);
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
        assert_eq!((s.stats().errors, s.stats().ignored), (1, 0));
        // And the stream goes on.
        let out = feed(&mut s, &book_msg("delta", 11, r#"["99","1"]"#, ""));
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(11), .. }]
        ));
    }
}
