//! Binance spot, USDⓈ-M and COIN-M: depth diffs bridged to REST snapshots, bookTicker quotes,
//! trades, aggTrades and klines, from combined-stream (`{"stream":..,"data":..}`) or raw frames.
//!
//! Sequence rules (per symbol): spot chains `U == previous u + 1` and bridges a snapshot with
//! `U <= lastUpdateId + 1 <= u`; futures chain `pu == previous u` and bridge with
//! `U <= lastUpdateId <= u`.
//!
//! A refused request, `{"code","msg","id"}` or `{"error":{"code","msg"},"id"}`, is
//! `FrameError::VenueError` ("code C: msg"); it names no symbol and changes no book.

use crate::book::Side;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, Trade, TradeSide};
use crate::sync::{Continuity, DeltaIds, LevelChange, ResyncBy, SequenceRule, SymbolSync, Symbols};
use crate::venue::scan::Scanner;
use crate::venue::{
    check_frame_size, decimal_field, ms_to_ns, Session, SessionOptions, SessionStats,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Spot,
    UsdM,
    CoinM,
}

impl Market {
    pub fn venue_name(self) -> &'static str {
        match self {
            Market::Spot => "binance",
            Market::UsdM => "binance-usdm",
            Market::CoinM => "binance-coinm",
        }
    }
}

pub struct SpotRule;

impl SequenceRule for SpotRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last <= snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id + 1 {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id + 1,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        // Quantities are absolute, so an overlapping event is as safe as the next one.
        self.bridges(last.last, d)
    }
}

pub struct FuturesRule;

impl SequenceRule for FuturesRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last < snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        if d.prev == Some(last.last) {
            Continuity::Apply
        } else if d.last <= last.last {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected: last.last,
                received: d.prev.unwrap_or(d.first),
            }
        }
    }
}

pub struct BinanceSession {
    market: Market,
    symbols: Symbols,
    levels: Vec<LevelChange>,
    stats: SessionStats,
    options: SessionOptions,
}

impl BinanceSession {
    pub fn new(market: Market, options: SessionOptions) -> Self {
        BinanceSession {
            market,
            symbols: options.symbols_table(),
            levels: Vec::with_capacity(256),
            stats: SessionStats::default(),
            options,
        }
    }

    fn rule(&self) -> &'static dyn SequenceRule {
        match self.market {
            Market::Spot => &SpotRule,
            Market::UsdM | Market::CoinM => &FuturesRule,
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, symbol: &str) -> Option<u32> {
        self.symbols
            .intern(symbol, || SymbolSync::new(ResyncBy::Snapshot, None))
    }

    fn on_fields(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let event = f.e.or(if f.b_str.is_some() && f.ask_size.is_some() {
            Some("bookTicker")
        } else {
            None
        });
        match event {
            Some("depthUpdate") => self.on_depth(f, ts_ns, out),
            Some("bookTicker") => self.on_quote(f, ts_ns, out),
            Some("trade") | Some("aggTrade") => self.on_trade(f, ts_ns, out),
            Some("kline") => self.on_kline(f, ts_ns, out),
            _ => {
                if let Some(msg) = f.msg {
                    return Err(FrameError::VenueError(format!(
                        "code {}: {}",
                        f.code.unwrap_or(0),
                        String::from_utf8_lossy(msg)
                    ))
                    .into());
                }
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_depth(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let ids = match self.depth_ids(f) {
            Ok(ids) => ids,
            Err(e) => return Err(self.symbols.bad_frame(id, e, out)),
        };
        let rule = self.rule();
        let exchange_ts = ms_to_ns(f.event_time.unwrap_or(0));
        let sync = self.symbols.sync_mut(id).expect("interned above");
        match sync.on_delta(id, rule, ids, &self.levels, exchange_ts, ts_ns, out) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.symbols.bad_frame(id, e.into(), out)),
        }
    }

    fn depth_ids(&self, f: &Fields<'_>) -> Result<DeltaIds, FrameError> {
        let first = f.first_id.ok_or(FrameError::MissingField("U"))?;
        let last = f.last_id.ok_or(FrameError::MissingField("u"))?;
        let prev = match self.market {
            Market::Spot => None,
            Market::UsdM | Market::CoinM => Some(f.prev_id.ok_or(FrameError::MissingField("pu"))?),
        };
        if first > last {
            return Err(FrameError::Invalid(format!(
                "first update id {first} is after last {last}"
            )));
        }
        Ok(DeltaIds { first, last, prev })
    }

    fn on_quote(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let bid_price = decimal_field("b", f.b_str)?;
        let bid_size = decimal_field("B", f.bid_size)?;
        let ask_price = decimal_field("a", f.a_str)?;
        let ask_size = decimal_field("A", f.ask_size)?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Quote(Quote {
            symbol,
            seq: f.last_id,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(f.event_time.or(f.tx_time).unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_trade(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let price = decimal_field("p", f.p)?;
        let size = decimal_field("q", f.q)?;
        // `m`: the buyer was the maker, so the taker sold.
        let side = f.m.map(|maker| {
            if maker {
                TradeSide::Sell
            } else {
                TradeSide::Buy
            }
        });
        let trade_id = if f.e == Some("aggTrade") {
            f.a_num.ok_or(FrameError::MissingField("a"))?
        } else {
            f.t.ok_or(FrameError::MissingField("t"))?
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Trade(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade_id.to_string(),
            exchange_ts_ns: ms_to_ns(f.tx_time.or(f.event_time).unwrap_or(0)),
            ts_ns,
            is_snapshot: false,
        }));
        Ok(())
    }

    fn on_kline(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let k = f.k.as_ref().ok_or(FrameError::MissingField("k"))?;
        let candle = Candle {
            symbol: 0,
            interval: k.interval.to_owned(),
            open_ts_ns: ms_to_ns(k.open_time),
            // Binance's close time is the last millisecond of the interval.
            close_ts_ns: ms_to_ns(k.close_time.saturating_add(1)),
            open: decimal_field("o", Some(k.open))?,
            high: decimal_field("h", Some(k.high))?,
            low: decimal_field("l", Some(k.low))?,
            close: decimal_field("c", Some(k.close))?,
            volume: decimal_field("v", Some(k.volume))?,
            trades: k.trades,
            closed: k.closed,
            exchange_ts_ns: ms_to_ns(f.event_time.unwrap_or(0)),
            ts_ns,
            is_snapshot: false,
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Candle(Candle { symbol, ..candle }));
        Ok(())
    }
}

impl Session for BinanceSession {
    fn venue(&self) -> &'static str {
        self.market.venue_name()
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn receive_snapshot(
        &mut self,
        symbol: &str,
        body: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let owned_symbol = || Some(symbol.to_owned());
        self.levels.clear();
        let mut fields = Fields::default();
        decode(
            body,
            &mut fields,
            &mut self.levels,
            self.options.max_frame_bytes,
        )
        .map_err(|e| ReceiveError::new(owned_symbol(), e))?;
        if let Some(msg) = fields.msg {
            return Err(ReceiveError::new(
                owned_symbol(),
                FrameError::VenueError(format!(
                    "code {}: {}",
                    fields.code.unwrap_or(0),
                    String::from_utf8_lossy(msg)
                )),
            ));
        }
        let last_update_id = fields.last_update_id.ok_or_else(|| {
            ReceiveError::new(owned_symbol(), FrameError::MissingField("lastUpdateId"))
        })?;
        let Some(id) = self.intern(symbol) else {
            return Ok(());
        };
        let rule = self.rule();
        let exchange_ts = ms_to_ns(fields.event_time.unwrap_or(0));
        let sync = self.symbols.sync_mut(id).expect("interned above");
        sync.on_snapshot(
            id,
            rule,
            Some(last_update_id),
            &self.levels,
            exchange_ts,
            ts_ns,
            out,
        )
        .map_err(|e| ReceiveError::new(owned_symbol(), e.into()))
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        // Depth streams carry no book: only the REST snapshot rebuilds one.
        &[ResyncBy::Snapshot]
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

impl BinanceSession {
    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        let mut fields = Fields::default();
        match decode(
            frame,
            &mut fields,
            &mut self.levels,
            self.options.max_frame_bytes,
        ) {
            Ok(()) => self.on_fields(&fields, ts_ns, out),
            Err(error) => {
                // A depth frame that names its symbol but cannot be read costs that symbol its sync.
                if fields.e == Some("depthUpdate") {
                    if let Some(id) = fields.s.and_then(|s| self.symbols.id(s)) {
                        return Err(self.symbols.bad_frame(id, error, out));
                    }
                }
                Err(ReceiveError::new(fields.s.map(str::to_owned), error))
            }
        }
    }
}

fn decode<'a>(
    frame: &'a [u8],
    fields: &mut Fields<'a>,
    levels: &mut Vec<LevelChange>,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let mut scanner = Scanner::new(frame);
    read_object(&mut scanner, fields, levels, true)?;
    Ok(scanner.finish()?)
}

/// Every field any Binance frame we read can carry; filled in one pass over the frame.
#[derive(Debug, Default)]
struct Fields<'a> {
    e: Option<&'a str>,
    s: Option<&'a str>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    prev_id: Option<u64>,
    event_time: Option<u64>,
    tx_time: Option<u64>,
    /// `b`/`a` are level lists in depth frames, prices in bookTicker, order ids in old trades.
    b_str: Option<&'a str>,
    a_str: Option<&'a str>,
    a_num: Option<u64>,
    bid_size: Option<&'a str>,
    ask_size: Option<&'a str>,
    p: Option<&'a str>,
    q: Option<&'a str>,
    t: Option<u64>,
    m: Option<bool>,
    k: Option<Kline<'a>>,
    last_update_id: Option<u64>,
    code: Option<i64>,
    msg: Option<&'a [u8]>,
}

#[derive(Debug, Default)]
struct Kline<'a> {
    open_time: u64,
    close_time: u64,
    interval: &'a str,
    open: &'a str,
    close: &'a str,
    high: &'a str,
    low: &'a str,
    volume: &'a str,
    trades: Option<u64>,
    closed: bool,
}

/// One object of the frame: the combined-stream wrapper, the event inside it, or a raw event.
fn read_object<'a>(
    s: &mut Scanner<'a>,
    f: &mut Fields<'a>,
    levels: &mut Vec<LevelChange>,
    outer: bool,
) -> Result<(), FrameError> {
    s.begin_object()?;
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        match key {
            b"data" if outer => read_object(s, f, levels, false)?,
            // `{"error":{"code","msg"},"id"}`: a refused request, read like a flat one.
            b"error" if outer => read_object(s, f, levels, false)?,
            b"e" => f.e = Some(s.str_value()?),
            b"s" => f.s = Some(s.str_value()?),
            b"U" => f.first_id = Some(s.u64()?),
            b"u" => f.last_id = Some(s.u64()?),
            b"pu" => f.prev_id = Some(s.u64()?),
            b"E" => f.event_time = Some(s.u64()?),
            b"T" => f.tx_time = Some(s.u64()?),
            b"b" | b"bids" => side_value(s, Side::Bid, levels, &mut f.b_str, &mut None)?,
            b"a" | b"asks" => side_value(s, Side::Ask, levels, &mut f.a_str, &mut f.a_num)?,
            b"B" => f.bid_size = optional_str(s)?,
            b"A" => f.ask_size = optional_str(s)?,
            b"p" => f.p = Some(s.str_value()?),
            b"q" => f.q = Some(s.str_value()?),
            b"t" => f.t = Some(s.u64()?),
            b"m" => f.m = Some(s.bool()?),
            b"k" => f.k = Some(read_kline(s)?),
            b"lastUpdateId" => f.last_update_id = Some(s.u64()?),
            b"code" => f.code = Some(signed(s)?),
            b"msg" => f.msg = Some(s.string()?),
            _ => s.skip_value()?,
        }
    }
    Ok(())
}

fn optional_str<'a>(s: &mut Scanner<'a>) -> Result<Option<&'a str>, FrameError> {
    if s.null()? {
        return Ok(None);
    }
    Ok(Some(s.str_value()?))
}

fn signed(s: &mut Scanner<'_>) -> Result<i64, FrameError> {
    let text = s.number()?;
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| s.error("expected an integer").into())
}

/// `b`/`a`: a list of levels (depth), a price string (bookTicker) or an order id (old trades).
fn side_value<'a>(
    s: &mut Scanner<'a>,
    side: Side,
    levels: &mut Vec<LevelChange>,
    text: &mut Option<&'a str>,
    number: &mut Option<u64>,
) -> Result<(), FrameError> {
    match s.peek() {
        Some(b'[') => read_levels(s, side, levels),
        Some(b'"') => {
            *text = Some(s.str_value()?);
            Ok(())
        }
        Some(b'0'..=b'9') => {
            *number = Some(s.u64()?);
            Ok(())
        }
        _ => Ok(s.skip_value()?),
    }
}

/// `[["price","qty"], ...]`, parsed straight into the level buffer.
fn read_levels(
    s: &mut Scanner<'_>,
    side: Side,
    levels: &mut Vec<LevelChange>,
) -> Result<(), FrameError> {
    s.begin_array()?;
    let mut first = true;
    while s.next_element(&mut first)? {
        s.begin_array()?;
        let mut inner = true;
        if !s.next_element(&mut inner)? {
            return Err(s.error("empty price level").into());
        }
        let price = s.quoted_decimal()?;
        if !s.next_element(&mut inner)? {
            return Err(s.error("price level without a quantity").into());
        }
        let qty = s.quoted_decimal()?;
        while s.next_element(&mut inner)? {
            s.skip_value()?;
        }
        let price = price.map_err(|error| FrameError::BadNumber {
            field: "price",
            error,
        })?;
        let qty = qty.map_err(|error| FrameError::BadNumber {
            field: "quantity",
            error,
        })?;
        levels.push((side, price, qty));
    }
    Ok(())
}

fn read_kline<'a>(s: &mut Scanner<'a>) -> Result<Kline<'a>, FrameError> {
    let mut k = Kline::default();
    let mut seen = 0u16;
    s.begin_object()?;
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        let bit = match key {
            b"t" => {
                k.open_time = s.u64()?;
                1
            }
            b"T" => {
                k.close_time = s.u64()?;
                2
            }
            b"i" => {
                k.interval = s.str_value()?;
                4
            }
            b"o" => {
                k.open = s.str_value()?;
                8
            }
            b"c" => {
                k.close = s.str_value()?;
                16
            }
            b"h" => {
                k.high = s.str_value()?;
                32
            }
            b"l" => {
                k.low = s.str_value()?;
                64
            }
            b"v" => {
                k.volume = s.str_value()?;
                128
            }
            b"x" => {
                k.closed = s.bool()?;
                256
            }
            b"n" => {
                k.trades = Some(s.u64()?);
                0
            }
            _ => {
                s.skip_value()?;
                0
            }
        };
        seen |= bit;
    }
    if seen != 511 {
        return Err(FrameError::MissingField("k.{t,T,i,o,c,h,l,v,x}"));
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncState;

    #[test]
    fn refused_requests_are_typed_venue_errors_and_change_no_book() {
        let mut s = BinanceSession::new(Market::Spot, SessionOptions::default());
        let mut out = Vec::new();
        s.receive(
            br#"{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[]}"#,
            1,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        for (frame, message) in [
            (
                r#"{"code":0,"msg":"Unknown property","id":1}"#,
                "code 0: Unknown property",
            ),
            (
                r#"{"error":{"code":2,"msg":"Invalid request: unknown method"},"id":2}"#,
                "code 2: Invalid request: unknown method",
            ),
        ] {
            out.clear();
            let err = s.receive(frame.as_bytes(), 2, &mut out).unwrap_err();
            assert_eq!(err.symbol, None);
            assert_eq!(err.error, FrameError::VenueError(message.into()));
            assert!(out.is_empty());
        }
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.buffered(), 1, "the buffered update is kept");
        assert_eq!(sync.counters.errors, 0);
        assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
    }

    fn depth(first: u64, last: u64, bid: &str) -> String {
        format!(
            r#"{{"stream":"bnbbtc@depth","data":{{"e":"depthUpdate","E":1,"s":"BNBBTC","U":{first},"u":{last},"b":[["{bid}","1"]],"a":[]}}}}"#
        )
    }

    #[test]
    fn ids_going_backwards_lose_sync_and_a_snapshot_recovers() {
        use crate::event::LossReason;
        let mut s = BinanceSession::new(Market::Spot, SessionOptions::default());
        let mut out = Vec::new();
        s.receive(depth(100, 105, "0.0020").as_bytes(), 1, &mut out)
            .unwrap();
        let body = br#"{"lastUpdateId":102,"bids":[["0.0010","5"]],"asks":[["0.0030","5"]]}"#;
        s.receive_snapshot("BNBBTC", body, 2, &mut out).unwrap();
        s.receive(depth(106, 110, "0.0021").as_bytes(), 3, &mut out)
            .unwrap();
        assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(110));
        // A repeat of the last event: dropped as stale, nothing said.
        out.clear();
        s.receive(depth(106, 110, "0.0021").as_bytes(), 4, &mut out)
            .unwrap();
        assert!(out.is_empty());
        // The venue's ids restart lower: before, every later event was dropped as stale
        // and the book froze; now the symbol says so and asks for a snapshot.
        s.receive(depth(7, 9, "0.0022").as_bytes(), 5, &mut out)
            .unwrap();
        assert_eq!(
            out,
            vec![
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::IdsBackwards {
                        last: 110,
                        received: 9
                    }
                },
                Event::NeedSnapshot { symbol: 0 }
            ]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert_eq!(
            (sync.counters.ids_backwards, sync.counters.stale_dropped),
            (1, 1)
        );
        assert_eq!(sync.buffered(), 1);
        // The new stream is buffered and bridged to a snapshot of it.
        out.clear();
        s.receive(depth(10, 12, "0.0023").as_bytes(), 6, &mut out)
            .unwrap();
        let body = br#"{"lastUpdateId":11,"bids":[["0.0010","5"]],"asks":[["0.0030","5"]]}"#;
        s.receive_snapshot("BNBBTC", body, 7, &mut out).unwrap();
        assert!(out
            .iter()
            .any(|e| matches!(e, Event::Resynced { seq: Some(12), .. })));
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::Live);
        assert_eq!(sync.counters.resyncs, 1);
        assert_eq!(
            sync.counters.stale_dropped, 2,
            "7..=9 is before the new snapshot"
        );
        assert_eq!(
            sync.book.best_bid().map(|l| l.price.to_string()),
            Some("0.0023".to_owned())
        );
    }

    #[test]
    fn unsubscribed_symbols_create_nothing_and_are_counted() {
        let options = SessionOptions {
            symbols: Some(vec!["ethusdt".to_owned()]),
            ..SessionOptions::default()
        };
        let mut s = BinanceSession::new(Market::Spot, options);
        let mut out = Vec::new();
        s.receive(depth(100, 105, "0.0020").as_bytes(), 1, &mut out)
            .unwrap();
        let trade = br#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1,"m":true}}"#;
        s.receive(trade, 2, &mut out).unwrap();
        let body = br#"{"lastUpdateId":102,"bids":[["0.0010","5"]],"asks":[]}"#;
        s.receive_snapshot("BNBBTC", body, 3, &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.symbols().len(), 0);
        assert_eq!(s.stats().unsubscribed, 3);
        // The subscribed one, spelled as the venue spells it.
        let eth = depth(100, 105, "0.0020").replace("BNBBTC", "ETHUSDT");
        s.receive(eth.as_bytes(), 4, &mut out).unwrap();
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        assert_eq!(s.symbols().names(), ["ETHUSDT"]);
        assert_eq!(s.stats().unsubscribed, 3);
    }
}
