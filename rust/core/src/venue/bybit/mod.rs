//! Bybit v5 public streams (spot, linear, inverse): `orderbook.N.SYMBOL` books, `publicTrade`
//! trades, `kline` candles and `tickers` / `orderbook.1` quotes.
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
//! is not truncated here: `SessionOptions::depth` only says which topic is the book (below).
//!
//! Trades: `S` is the taker's side (`Buy`/`Sell`), `i` the trade id, `T` the trade time (ms).
//! Candles: `confirm: true` marks a closed candle; the interval is spelled like Binance's
//! (`1` becomes `1m`, `60` becomes `1h`, `D` becomes `1d`, `W` `1w`, `M` `1M`).
//!
//! Quotes, two sources, information only (books are never checked against them):
//! - `tickers` (linear, inverse): the best bid and ask (`bid1Price`, `bid1Size`, `ask1Price`,
//!   `ask1Size`) become `Quote` events with no `seq` (the ticker's `cs` is not the book's `u`).
//!   Deltas carry only the fields that changed, so the last known values fill in; spot tickers
//!   carry no top of book and give no quotes.
//! - `orderbook.1` (any category; what spot quotes are subscribed as): Bybit's own top of book,
//!   snapshots only, the same `u` resent when nothing changed for 3 s (a resend gives no new
//!   quote). Each message gives a `Quote`.
//!
//! Which topic is a symbol's book: the deepest `orderbook.N` seen for it. A deeper topic takes
//! the book over (with its snapshot, which Bybit sends first on subscribe); `orderbook.1` under
//! a deeper book never touches it, and a frame of it that cannot be used costs the book nothing.
//! While `orderbook.1` is the book (`depth=1` subscriptions), its quotes carry the book's `u` as
//! `seq`; under a deeper book they carry none (its `u` is not the book's). The rule needs no
//! option, so a recording replays the same whatever depth it was made with.
//!
//! Operation answers (`{"op":..}`: subscribe acks, pongs) and any other topic are understood
//! and counted as ignored. A refused operation (`"success":false`) is the venue's error:
//! `FrameError::VenueError` with its `op` and `ret_msg` (and `ret_code` if sent), naming no
//! symbol (the answer names no topic); nothing of any book changes.

mod wire;

#[cfg(test)]
mod tests;

use crate::book::Book;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::{optional_decimal, venue_error, NumberFault};
use crate::venue::session_core::SessionCore;
use crate::venue::{decimal_field, ms_to_ns, Session, SessionOptions};

use wire::{decode, topic_depth, topic_symbol, DataShape, Fields, Item};

/// The book depth whose topic is the venue's top of book.
pub const TOP_OF_BOOK: usize = 1;

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
/// A symbol's best bid and ask as its `tickers` topic last told them: bid price, bid size,
/// ask price, ask size (a delta carries only what changed).
type TickerTop = [Option<Decimal>; 4];

/// What a symbol's `orderbook.1` topic said last, when it is not the symbol's book.
#[derive(Debug, Clone, Default)]
struct TopOfBook {
    book: Book,
    /// `u` of the last message applied to `book`: a delta must follow it.
    applied: Option<u64>,
    /// `u` of the last message that gave a quote: a resent one gives none.
    quoted: Option<u64>,
}

pub struct BybitSession {
    core: SessionCore,
    /// Reused for every frame's levels: decoding allocates nothing.
    levels: Vec<LevelChange>,
    /// Per symbol id: the `tickers` top of book so far.
    tickers: Vec<TickerTop>,
    /// Per symbol id: the `orderbook.1` top of book so far.
    tops: Vec<TopOfBook>,
    /// Per symbol id: the depth of the `orderbook.N` topic its book follows (the deepest seen).
    book_depths: Vec<Option<usize>>,
}

/// What an `orderbook.N` frame is to its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BookRole {
    /// The topic the book follows.
    Book,
    /// `orderbook.1` under a deeper book: quotes only.
    TopOnly,
    /// A shallower topic than the book's, other than the top: nothing of ours.
    Shallower,
}

impl BybitSession {
    pub fn new(options: SessionOptions) -> Self {
        BybitSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(512),
            tickers: Vec::new(),
            tops: Vec::new(),
            book_depths: Vec::new(),
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops what it decoded.
    fn intern(&mut self, symbol: &str) -> Option<SymbolId> {
        self.core.intern(symbol, ResyncBy::Resubscribe, None)
    }

    /// What a frame of `orderbook.{depth}` is to symbol `id`, without taking the book over.
    fn book_role(&self, id: SymbolId, depth: Option<usize>) -> BookRole {
        let followed = self.book_depths.get(id as usize).copied().flatten();
        match (depth, followed) {
            (Some(depth), Some(book)) if depth < book => match depth {
                TOP_OF_BOOK => BookRole::TopOnly,
                _ => BookRole::Shallower,
            },
            _ => BookRole::Book,
        }
    }

    /// The book of `id` follows `orderbook.{depth}` from now on, if it is deeper than before.
    fn follow(&mut self, id: SymbolId, depth: Option<usize>) {
        let index = id as usize;
        if self.book_depths.len() <= index {
            self.book_depths.resize(index + 1, None);
        }
        let book = &mut self.book_depths[index];
        if depth > *book {
            *book = depth;
        }
    }

    fn top_mut(&mut self, id: SymbolId) -> &mut TopOfBook {
        let index = id as usize;
        if self.tops.len() <= index {
            self.tops.resize(index + 1, TopOfBook::default());
        }
        &mut self.tops[index]
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
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let Some(topic) = f.topic else {
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match topic.split_once('.').map_or(topic, |(channel, _)| channel) {
            "orderbook" => self.on_book(f, topic, ts_ns, out),
            "publicTrade" => self.on_trades(f, topic_symbol(topic), ts_ns, out),
            "kline" => self.on_klines(f, topic, ts_ns, out),
            "tickers" => self.on_ticker(f, topic_symbol(topic), ts_ns, out),
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        f: &Fields<'_>,
        topic: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = match f.s.unwrap_or(topic_symbol(topic)) {
            "" => return Err(FrameError::MissingField("s").into()),
            name => name,
        };
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let depth = topic_depth(topic);
        match self.book_role(id, depth) {
            BookRole::TopOnly => return self.on_top(f, id, ts_ns, out),
            BookRole::Shallower => {
                self.core.stats.ignored += 1;
                return Ok(());
            }
            BookRole::Book => self.follow(id, depth),
        }
        let start = out.len();
        if let Err(e) = self.apply_book(id, f, ts_ns, out) {
            return Err(self.core.symbols.bad_frame(id, e, out));
        }
        if depth == Some(TOP_OF_BOOK) {
            self.quote_book_top(id, f, start, ts_ns, out);
        }
        Ok(())
    }

    fn apply_book(
        &mut self,
        symbol: SymbolId,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        if f.data != DataShape::Object {
            return Err(FrameError::MissingField("data"));
        }
        let u = f.u.ok_or(FrameError::MissingField("u"))?;
        let snapshot = is_full_book(f.kind, u)?;
        let exchange_ts_ns = ms_to_ns(f.ts.unwrap_or(0));
        let sync = self
            .core
            .symbols
            .sync_mut(symbol)
            .ok_or_else(|| FrameError::Invalid("unknown symbol id".into()))?;
        if snapshot {
            // Any snapshot replaces the book, even one whose id is lower than the last delta's.
            sync.forget_stream();
            let snapshot = Snapshot {
                symbol,
                id: Some(u),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_snapshot(&BybitRule, snapshot, out)?;
        } else {
            let delta = Delta {
                symbol,
                ids: DeltaIds::single(u),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_delta(&BybitRule, delta, out)?;
        }
        Ok(())
    }

    /// After an `orderbook.1` message that is the symbol's book: its top as a `Quote`, if the
    /// message updated the book (`out[start..]`) and is not a resend of the last one.
    fn quote_book_top(
        &mut self,
        symbol: SymbolId,
        f: &Fields<'_>,
        start: usize,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) {
        let updated = out[start..]
            .iter()
            .any(|e| matches!(e, Event::BookUpdated { symbol: s, .. } if *s == symbol));
        let u = f.u;
        if !updated || u.is_none() || self.top_mut(symbol).quoted == u {
            return;
        }
        let Some(sync) = self.core.symbols.sync(symbol) else {
            return;
        };
        let (Some(bid), Some(ask)) = (sync.book.best_bid(), sync.book.best_ask()) else {
            return;
        };
        self.top_mut(symbol).quoted = u;
        out.push(Event::Quote(Quote {
            symbol,
            seq: u,
            bid_price: bid.price,
            bid_size: bid.qty,
            ask_price: ask.price,
            ask_size: ask.qty,
            exchange_ts_ns: ms_to_ns(f.ts.unwrap_or(0)),
            ts_ns,
        }));
    }

    /// `orderbook.1` under a deeper book: its top of book becomes a `Quote` (no `seq`).
    fn on_top(
        &mut self,
        f: &Fields<'_>,
        id: SymbolId,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        match self.top_quote(f, id) {
            Ok(Some(top)) => out.push(Event::Quote(Quote {
                symbol: id,
                seq: None,
                exchange_ts_ns: ms_to_ns(f.ts.unwrap_or(0)),
                ts_ns,
                ..top
            })),
            Ok(None) => self.core.stats.ignored += 1,
            Err(e) => {
                let name = self.core.symbols.name(id).to_owned();
                return Err(ReceiveError::new(Some(name), e));
            }
        }
        Ok(())
    }

    /// The top of book an `orderbook.1` message leaves `id` with, if it gives a quote.
    fn top_quote(&mut self, f: &Fields<'_>, id: SymbolId) -> Result<Option<Quote>, FrameError> {
        if f.data != DataShape::Object {
            return Err(FrameError::MissingField("data"));
        }
        let u = f.u.ok_or(FrameError::MissingField("u"))?;
        let full = is_full_book(f.kind, u)?;
        let levels = std::mem::take(&mut self.levels);
        let result = self.top_mut(id).apply(full, u, &levels);
        self.levels = levels;
        result
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
            optional_decimal("bid1Price", t.bid_price.as_deref()).map_err(err)?,
            optional_decimal("bid1Size", t.bid_size.as_deref()).map_err(err)?,
            optional_decimal("ask1Price", t.ask_price.as_deref()).map_err(err)?,
            optional_decimal("ask1Size", t.ask_size.as_deref()).map_err(err)?,
        ];
        let snapshot = f.kind == Some("snapshot");
        if fresh.iter().all(Option::is_none) {
            // Nothing of the top (spot tickers carry none): only a snapshot forgets it.
            if let (true, Some(id)) = (snapshot, self.core.symbols.id(name)) {
                if let Some(top) = self.tickers.get_mut(id as usize) {
                    *top = [None; 4];
                }
            }
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        if self.tickers.len() <= id as usize {
            self.tickers.resize(id as usize + 1, [None; 4]);
        }
        let top = &mut self.tickers[id as usize];
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
            _ => self.core.stats.ignored += 1,
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
/// Whether a book message is a whole book: a `snapshot`, or a `delta` numbered 1 (the venue
/// restarted its book service and sends the whole book again).
fn is_full_book(kind: Option<&str>, u: u64) -> Result<bool, FrameError> {
    match kind {
        Some("snapshot") => Ok(true),
        Some("delta") => Ok(u == 1),
        Some(other) => Err(FrameError::Invalid(format!(
            "unknown book message type {other:?}"
        ))),
        None => Err(FrameError::MissingField("type")),
    }
}

impl TopOfBook {
    /// Applies one `orderbook.1` message; the quote it gives (symbol and times left to the
    /// caller), or `None`: a resend, a side empty, or a delta that does not follow on (the top
    /// is then unknown until the next snapshot, which the venue sends at least every 3 s).
    fn apply(
        &mut self,
        full: bool,
        u: u64,
        levels: &[LevelChange],
    ) -> Result<Option<Quote>, FrameError> {
        if full && self.quoted == Some(u) {
            return Ok(None);
        }
        let follows = self
            .applied
            .is_some_and(|last| last.checked_add(1) == Some(u));
        if !full && !follows {
            self.book.clear();
            self.applied = None;
            return Ok(None);
        }
        // Built aside, so a level no book may hold leaves the last top as it was.
        let mut next = if full { Book::new() } else { self.book.clone() };
        for &(side, price, qty) in levels {
            next.apply(side, price, qty)?;
        }
        self.book = next;
        self.applied = Some(u);
        let (Some(bid), Some(ask)) = (self.book.best_bid(), self.book.best_ask()) else {
            return Ok(None);
        };
        self.quoted = Some(u);
        Ok(Some(Quote {
            symbol: 0,
            seq: None,
            bid_price: bid.price,
            bid_size: bid.qty,
            ask_price: ask.price,
            ask_size: ask.qty,
            exchange_ts_ns: 0,
            ts_ns: 0,
        }))
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
        self.levels.clear();
        let mut fields = Fields::default();
        let mut fault = NumberFault::default();
        match decode(
            frame,
            &mut fields,
            &mut self.levels,
            &mut fault,
            self.core.options.max_frame_bytes,
        ) {
            Ok(()) => self.on_fields(&fields, ts_ns, out),
            Err(error) => {
                // A book frame that names a known symbol but cannot be read costs it its sync
                // (a topic under its book's costs nothing).
                let symbol = fields.s.or_else(|| fields.topic.map(topic_symbol));
                let depth = fields.topic.and_then(topic_depth);
                if fields.is_book() {
                    if let Some(id) = symbol.and_then(|s| self.core.symbols.id(s)) {
                        if self.book_role(id, depth) == BookRole::Book {
                            return Err(self.core.symbols.bad_frame(id, error, out));
                        }
                    }
                }
                Err(ReceiveError::new(symbol.map(str::to_owned), error))
            }
        }
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
