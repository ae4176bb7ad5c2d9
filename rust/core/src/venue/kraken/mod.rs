//! Kraken spot websocket, v1 (`wss://ws.kraken.com`) and v2 (`wss://ws.kraken.com/v2`), told
//! apart by shape: v1 data frames are arrays `[channelID, payload.., channelName, pair]`, v1
//! events are objects with `event`, v2 frames are objects with `channel` or `method`.
//!
//! Books: a snapshot (`as`/`bs` in v1, `type: "snapshot"` in v2) then updates with absolute
//! volumes (zero deletes). Kraken sends no sequence numbers; after every update the book is
//! truncated to the subscribed depth (Kraken sends no deletes for levels that fall out of it) and
//! then checked against the CRC32 the venue sends (`c` in v1 updates, `checksum` in v2 snapshots
//! and updates; see `checksum::kraken_checksum`). A mismatch clears the book and asks for
//! `NeedResubscribe`: the fresh snapshot comes in-band. Levels flagged `r` (republish: a level
//! re-sent because it came back inside the subscribed depth) are applied like any level.
//!
//! The depth kept is the venue depth subscribed (10, 25, 100, 500 or 1000): v1
//! `subscriptionStatus` (which also maps channelID to pair, given back by
//! `Session::book_channel`), else the channel name `book-N`; v2 `subscribe` results; else the
//! venue depth that serves `SessionOptions::depth` (the smallest at least as deep, as the
//! Python spec subscribes), else Kraken's default of 10. Fewer levels than that would break the
//! checksum; a smaller wanted depth is the view's business.
//!
//! Trades: v1 `trade` rows and v2 `trade` items; the v2 `snapshot` sent on subscribe (the
//! latest trades) is marked `is_snapshot`, being history.
//!
//! Tickers become `Quote` events (no `seq`: Kraken has none): v1 `ticker` from `b`/`a`
//! (`[price, wholeLotVolume, lotVolume]`: the lot volume is the size), no exchange time; v2
//! `ticker` from `bid`, `bid_qty`, `ask`, `ask_qty` and `timestamp` (an item missing a side gives
//! none). They are information only, never checked against the book (a separate channel, with
//! no id to match it to a book update).
//!
//! v2 prices and quantities are JSON numbers: they are read as raw tokens, so the book keeps the
//! digits Kraken wrote (trailing zeros included), which its checksum depends on.
//!
//! Refused requests are `FrameError::VenueError` with the venue's message, naming the pair when
//! the answer does: v1 `{"event":"error","errorMessage"}` and `subscriptionStatus` with
//! `"status":"error"` (and its `pair`), v2 `{"method","success":false,"error","symbol"}`. They
//! change no book. Heartbeats, `systemStatus`, pongs and acks are counted as ignored.

mod wire;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use crate::book::{Book, Side};
use crate::checksum::kraken_checksum;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::json::venue_error;
use crate::venue::publication::{confirm_checksum, published};
use crate::venue::session_core::SessionCore;
use crate::venue::time::{parse_epoch_seconds_ns, parse_iso8601_ns};
use crate::venue::{check_frame_size, Session, SessionOptions};

use wire::{Data, Message, V1Frame};

/// Kraken's book depth when a subscription names none.
pub const DEFAULT_DEPTH: usize = 10;

/// The book depths Kraken serves, v1 and v2 alike.
pub const DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

/// The venue depth that serves a wanted depth: the smallest at least as deep (the deepest when
/// none is), Kraken's default when none is wanted.
pub fn venue_depth(wanted: Option<usize>) -> usize {
    match wanted {
        None => DEFAULT_DEPTH,
        Some(wanted) => DEPTHS
            .into_iter()
            .find(|&depth| depth >= wanted)
            .unwrap_or(DEPTHS[DEPTHS.len() - 1]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelKind {
    Book { depth: usize },
    Trade,
    Ticker,
    Other,
}

/// What a v1 `subscriptionStatus` told about a channelID.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Channel {
    kind: ChannelKind,
    pair: String,
}

/// A decoded book frame (or v2 item) of one symbol.
struct BookFrame {
    id: SymbolId,
    snapshot: bool,
    checksum: Option<u32>,
    /// Where the levels are in `KrakenSession::levels`.
    levels: Range<usize>,
    /// The depth the book is truncated to.
    depth: usize,
    exchange_ts_ns: u64,
    ts_ns: u64,
}

pub struct KrakenSession {
    core: SessionCore,
    /// v1 channelID -> channel, from `subscriptionStatus`.
    channels: HashMap<u64, Channel>,
    /// v2 symbol -> subscribed book depth, from `subscribe` results.
    v2_depths: HashMap<String, usize>,
    levels: Vec<LevelChange>,
}

impl KrakenSession {
    pub fn new(options: SessionOptions) -> Self {
        KrakenSession {
            core: SessionCore::new(options),
            channels: HashMap::new(),
            v2_depths: HashMap::new(),
            levels: Vec::with_capacity(512),
        }
    }

    /// The depth of a book no subscription answer told about.
    fn fallback_depth(&self) -> usize {
        venue_depth(self.core.options.depth)
    }

    /// `None` for a pair that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str, depth: Option<usize>) -> Option<SymbolId> {
        let id = self.core.intern(name, ResyncBy::Resubscribe, depth)?;
        if let (Some(depth), Some(sync)) = (depth, self.core.symbols.sync_mut(id)) {
            sync.set_truncate_to(Some(depth));
        }
        Some(id)
    }

    /// A frame about `pair` that could not be used: if `pair` has a book, the frame may have
    /// held an update of it, so it resyncs; nothing else is touched.
    fn lost_update(
        &mut self,
        pair: Option<&str>,
        is_book: bool,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        match pair.and_then(|p| self.core.symbols.id(p)) {
            Some(id) if is_book => self.core.symbols.bad_frame(id, error, out),
            _ => ReceiveError::new(pair.map(str::to_owned), error),
        }
    }

    fn on_v1_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        // The channel is looked up once, as soon as its id is read: a book's levels are then
        // read in the same pass.
        let channels = &self.channels;
        let mut channel = None;
        let announce = |id: u64| {
            channel = channels.get(&id);
            channel.is_some_and(|c| matches!(c.kind, ChannelKind::Book { .. }))
        };
        let v1 = match wire::read_v1_frame(frame, announce, &mut self.levels) {
            Ok(v1) => v1,
            Err(error) => {
                let is_book = channel.is_some_and(|c| matches!(c.kind, ChannelKind::Book { .. }));
                let pair = channel.map(|c| c.pair.clone());
                return Err(self.lost_update(pair.as_deref(), is_book, error, out));
            }
        };
        let kind = match (v1.name, channel) {
            (Some(name), _) if name.starts_with("book") => ChannelKind::Book {
                depth: match channel {
                    Some(Channel {
                        kind: ChannelKind::Book { depth },
                        ..
                    }) => *depth,
                    _ => depth_from_name(name).unwrap_or(self.fallback_depth()),
                },
            },
            (Some("trade"), _) => ChannelKind::Trade,
            (Some("ticker"), _) => ChannelKind::Ticker,
            (Some(_), _) => ChannelKind::Other,
            (None, Some(c)) => c.kind,
            (None, None) => {
                return Err(FrameError::Invalid(format!(
                    "channel {} was never announced and the frame does not name it",
                    v1.channel_id
                ))
                .into())
            }
        };
        // The frame names its pair (borrowed, no copy); only a frame without one falls back to
        // the pair the subscription announced.
        let pair: Cow<'_, str> = match (v1.pair, channel) {
            (Some(pair), _) => Cow::Borrowed(pair),
            (None, Some(c)) => Cow::Owned(c.pair.clone()),
            (None, None) => return Err(FrameError::MissingField("pair").into()),
        };
        if v1.book.is_some() && !matches!(kind, ChannelKind::Book { .. }) {
            let e = FrameError::Invalid(format!(
                "channel {} was announced as a book but the frame names {:?}",
                v1.channel_id, v1.name
            ));
            return Err(ReceiveError::new(Some(pair.into_owned()), e));
        }
        match kind {
            ChannelKind::Book { depth } => self.on_v1_book(&v1, &pair, depth, ts_ns, out),
            ChannelKind::Trade => self.on_v1_trades(&v1, &pair, ts_ns, out),
            ChannelKind::Ticker => self.on_v1_ticker(&v1, &pair, ts_ns, out),
            ChannelKind::Other => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_v1_book(
        &mut self,
        v1: &V1Frame<'_>,
        pair: &str,
        depth: usize,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let book = match v1.book {
            Some(book) => Ok(book),
            None => wire::read_v1_book(&v1.payloads, &mut self.levels),
        };
        let book = book.and_then(|book| {
            let checksum = book.checksum.map(parse_crc).transpose()?;
            Ok((book.snapshot, checksum, book.newest_ns))
        });
        let (snapshot, checksum, exchange_ts_ns) = match book {
            Ok(book) => book,
            Err(error) => return Err(self.lost_update(Some(pair), true, error, out)),
        };
        let Some(id) = self.intern(pair, Some(depth)) else {
            return Ok(());
        };
        self.apply_book(
            BookFrame {
                id,
                snapshot,
                checksum,
                levels: 0..self.levels.len(),
                depth,
                exchange_ts_ns,
                ts_ns,
            },
            out,
        )
    }

    /// Applies a snapshot or an update, then checks Kraken's checksum if given.
    fn apply_book(&mut self, frame: BookFrame, out: &mut Vec<Event>) -> Result<(), ReceiveError> {
        let id = frame.id;
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let mark = out.len();
        let mut range = frame.levels;
        if !frame.snapshot {
            range.end = skip_past_depth(&sync.book, frame.depth, &mut self.levels, range.clone());
        }
        let levels = &self.levels[range];
        let result = if frame.snapshot {
            let snapshot = Snapshot {
                symbol: id,
                id: None,
                levels,
                exchange_ts_ns: frame.exchange_ts_ns,
                ts_ns: frame.ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, snapshot, out)
                .map(|()| published(&out[mark..], id))
        } else {
            sync.on_unsequenced_delta(id, levels, frame.exchange_ts_ns, frame.ts_ns, out)
        };
        match result {
            Ok(true) => {
                if let Some(expected) = frame.checksum {
                    let computed = kraken_checksum(sync.book.asks(), sync.book.bids());
                    confirm_checksum(sync, id, expected, computed, out, mark);
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(self.core.symbols.bad_frame(id, e.into(), out)),
        }
    }

    fn on_v1_trades(
        &mut self,
        v1: &V1Frame<'_>,
        pair: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(Some(pair.to_owned()), error);
        let rows = wire::read_v1_trades(&v1.payloads).map_err(named)?;
        let mut trades = Vec::with_capacity(rows.len());
        for row in rows {
            let side = match row.side {
                "b" => TradeSide::Buy,
                "s" => TradeSide::Sell,
                other => {
                    let e = FrameError::Invalid(format!("trade side {other:?} is not b or s"));
                    return Err(named(e));
                }
            };
            let exchange_ts_ns = parse_epoch_seconds_ns(row.time).ok_or_else(|| {
                named(FrameError::Invalid(format!(
                    "bad trade time {:?}",
                    row.time
                )))
            })?;
            trades.push((
                wire::number("price", row.price).map_err(named)?,
                wire::number("volume", row.volume).map_err(named)?,
                side,
                row.trade_id.unwrap_or_default(),
                exchange_ts_ns,
            ));
        }
        let Some(symbol) = self.intern(pair, None) else {
            return Ok(());
        };
        for (price, size, side, trade_id, exchange_ts_ns) in trades {
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side: Some(side),
                trade_id: trade_id.into_owned(),
                exchange_ts_ns,
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }

    fn on_v1_ticker(
        &mut self,
        v1: &V1Frame<'_>,
        pair: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let quote = wire::read_v1_ticker(&v1.payloads).and_then(|t| {
            Ok([
                wire::number("b", t.bid.price)?,
                wire::number("b", t.bid.lot_volume)?,
                wire::number("a", t.ask.price)?,
                wire::number("a", t.ask.lot_volume)?,
            ])
        });
        let [bid_price, bid_size, ask_price, ask_size] =
            quote.map_err(|e| ReceiveError::new(Some(pair.to_owned()), e))?;
        let Some(symbol) = self.intern(pair, None) else {
            return Ok(());
        };
        out.push(Event::Quote(Quote {
            symbol,
            seq: None,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            // v1 tickers carry no time.
            exchange_ts_ns: 0,
            ts_ns,
        }));
        Ok(())
    }

    fn on_message(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let mut msg = Message::default();
        if let Err(fault) = wire::read_message(frame, &mut msg, &mut self.levels) {
            return Err(self.lost_update(fault.book_symbol, true, fault.error, out));
        }
        if let Some(event) = msg.event {
            if event == "error" || (event == "subscriptionStatus" && msg.status == Some("error")) {
                // A refused request: reported, and no book changes.
                return Err(venue_error(msg.pair, None, msg.error.as_deref()));
            }
            if event == "subscriptionStatus" && self.on_subscription_status(&msg) {
                return Ok(());
            }
            // heartbeat, systemStatus, pong, and statuses we do not use.
            self.core.stats.ignored += 1;
            return Ok(());
        }
        if let Some(method) = msg.method {
            return self.on_method_answer(method, &msg);
        }
        let Some(channel) = msg.channel else {
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match (channel, &msg.data) {
            ("book", Some(Data::Book(items))) => {
                self.on_v2_book(msg.kind, items.as_slice(), ts_ns, out)
            }
            ("book", Some(Data::Raw(data))) => {
                // `data` came before `channel`: read again now that the channel is known.
                self.levels.clear();
                match wire::read_v2_book(data, &mut self.levels) {
                    Ok(items) => self.on_v2_book(msg.kind, items.as_slice(), ts_ns, out),
                    Err(fault) => Err(self.lost_update(fault.book_symbol, true, fault.error, out)),
                }
            }
            ("trade", Some(Data::Raw(data))) => {
                // The trades sent on subscribe are history, not live.
                let history = msg.kind == Some("snapshot");
                self.on_v2_trades(data, history, ts_ns, out)
            }
            ("ticker", Some(Data::Raw(data))) => self.on_v2_tickers(data, ts_ns, out),
            ("book" | "trade" | "ticker", _) => Err(FrameError::MissingField("data").into()),
            _ => {
                // heartbeat, status, ohlc, instrument, anything unknown.
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// A v2 answer to a request: a refusal is an error; a book subscription tells its depth.
    fn on_method_answer(&mut self, method: &str, msg: &Message<'_>) -> Result<(), ReceiveError> {
        if msg.success == Some(false) {
            let message = match msg.error.as_deref() {
                Some(error) => format!("{method}: {error}"),
                None => format!("{method} failed"),
            };
            let symbol = msg.symbol.or(msg.result.as_ref().and_then(|r| r.symbol));
            return Err(venue_error(symbol, None, Some(&message)));
        }
        if let (true, Some(result)) = (
            method == "subscribe" && msg.success == Some(true),
            &msg.result,
        ) {
            if let (Some("book"), Some(symbol)) = (result.channel, result.symbol) {
                let depth = result.depth.map_or(DEFAULT_DEPTH, |d| d as usize);
                self.v2_depths.insert(symbol.to_owned(), depth);
                self.intern(symbol, Some(depth));
                return Ok(());
            }
        }
        // pong, unsubscribe, other subscriptions.
        self.core.stats.ignored += 1;
        Ok(())
    }

    /// Maps a v1 channelID to its pair and depth; returns whether the status was used.
    fn on_subscription_status(&mut self, msg: &Message<'_>) -> bool {
        let Some(channel_id) = msg.channel_id else {
            return false;
        };
        match msg.status {
            Some("subscribed") => {
                let Some(pair) = msg.pair else {
                    return false;
                };
                let subscription = msg.subscription.as_ref();
                let name = subscription
                    .and_then(|s| s.name)
                    .or(msg.channel_name)
                    .unwrap_or("");
                let kind = if name.starts_with("book") {
                    let depth = subscription
                        .and_then(|s| s.depth)
                        .map(|d| d as usize)
                        .or_else(|| msg.channel_name.and_then(depth_from_name))
                        .unwrap_or(DEFAULT_DEPTH);
                    self.intern(pair, Some(depth));
                    ChannelKind::Book { depth }
                } else if name == "trade" {
                    ChannelKind::Trade
                } else if name == "ticker" {
                    ChannelKind::Ticker
                } else {
                    ChannelKind::Other
                };
                self.channels.insert(
                    channel_id,
                    Channel {
                        kind,
                        pair: pair.to_owned(),
                    },
                );
                true
            }
            Some("unsubscribed") => self.channels.remove(&channel_id).is_some(),
            _ => false,
        }
    }

    fn on_v2_book(
        &mut self,
        kind: Option<&str>,
        items: &[wire::V2BookItem<'_>],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let snapshot = match kind {
            Some("snapshot") => Some(true),
            Some("update") => Some(false),
            _ => None,
        };
        for item in items {
            let symbol = item.symbol.ok_or(FrameError::MissingField("data.symbol"))?;
            let depth = self
                .v2_depths
                .get(symbol)
                .copied()
                .unwrap_or(self.fallback_depth());
            let Some(id) = self.intern(symbol, Some(depth)) else {
                continue;
            };
            let frame = match (snapshot, v2_time(item.timestamp)) {
                (Some(snapshot), Ok(exchange_ts_ns)) => BookFrame {
                    id,
                    snapshot,
                    checksum: item.checksum,
                    levels: item.levels.clone(),
                    depth,
                    exchange_ts_ns,
                    ts_ns,
                },
                (None, _) => {
                    let e = FrameError::Invalid(format!("unknown book type {kind:?}"));
                    return Err(self.core.symbols.bad_frame(id, e, out));
                }
                (_, Err(e)) => return Err(self.core.symbols.bad_frame(id, e, out)),
            };
            self.apply_book(frame, out)?;
        }
        Ok(())
    }

    fn on_v2_trades(
        &mut self,
        data: &serde_json::value::RawValue,
        history: bool,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let items: Vec<wire::V2Trade<'_>> =
            serde_json::from_str(data.get()).map_err(FrameError::from)?;
        for item in items {
            let named = |error| ReceiveError::new(Some(item.symbol.to_owned()), error);
            let side = match item.side {
                None => None,
                Some("buy") => Some(TradeSide::Buy),
                Some("sell") => Some(TradeSide::Sell),
                Some(other) => {
                    let e = FrameError::Invalid(format!("trade side {other:?} is not buy or sell"));
                    return Err(named(e));
                }
            };
            let price = wire::raw_number("price", item.price).map_err(named)?;
            let size = wire::raw_number("qty", item.qty).map_err(named)?;
            let exchange_ts_ns = v2_time(item.timestamp).map_err(named)?;
            let Some(symbol) = self.intern(item.symbol, None) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side,
                trade_id: item.trade_id.unwrap_or_default().into_owned(),
                exchange_ts_ns,
                ts_ns,
                is_snapshot: history,
            }));
        }
        Ok(())
    }

    fn on_v2_tickers(
        &mut self,
        data: &serde_json::value::RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let items: Vec<wire::V2Ticker<'_>> =
            serde_json::from_str(data.get()).map_err(FrameError::from)?;
        let start = out.len();
        for item in items {
            let named = |error| ReceiveError::new(Some(item.symbol.to_owned()), error);
            let (Some(bid), Some(bid_qty), Some(ask), Some(ask_qty)) =
                (item.bid, item.bid_qty, item.ask, item.ask_qty)
            else {
                continue;
            };
            let bid_price = wire::raw_number("bid", bid).map_err(named)?;
            let bid_size = wire::raw_number("bid_qty", bid_qty).map_err(named)?;
            let ask_price = wire::raw_number("ask", ask).map_err(named)?;
            let ask_size = wire::raw_number("ask_qty", ask_qty).map_err(named)?;
            let exchange_ts_ns = v2_time(item.timestamp).map_err(named)?;
            let Some(symbol) = self.intern(item.symbol, None) else {
                continue;
            };
            out.push(Event::Quote(Quote {
                symbol,
                seq: None,
                bid_price,
                bid_size,
                ask_price,
                ask_size,
                exchange_ts_ns,
                ts_ns,
            }));
        }
        if out.len() == start {
            self.core.stats.ignored += 1;
        }
        Ok(())
    }
}

impl Session for KrakenSession {
    fn venue(&self) -> &'static str {
        "kraken"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.levels.clear();
        match frame.trim_ascii_start().first() {
            Some(b'[') => self.on_v1_frame(frame, ts_ns, out),
            Some(b'{') => self.on_message(frame, ts_ns, out),
            _ => Err(
                FrameError::Invalid("not a Kraken message (an array or an object)".into()).into(),
            ),
        }
    }

    /// The v1 `channelID` of the pair's book (v2 has no channel ids), the pair in any ASCII
    /// case. Should a pair hold two book channels, the newest (Kraken numbers channels
    /// upwards) is given.
    fn book_channel(&self, symbol: &str) -> Option<u64> {
        self.channels
            .iter()
            .filter(|(_, c)| {
                matches!(c.kind, ChannelKind::Book { .. }) && c.pair.eq_ignore_ascii_case(symbol)
            })
            .map(|(id, _)| *id)
            .max()
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}

/// A v2 item's `timestamp`, 0 when it has none.
fn v2_time(text: Option<&str>) -> Result<u64, FrameError> {
    match text {
        Some(text) => parse_iso8601_ns(text)
            .ok_or_else(|| FrameError::Invalid(format!("bad timestamp {text:?}"))),
        None => Ok(0),
    }
}

/// Drops the update levels of `levels[range]` that cannot be in the book once it is truncated
/// to `depth` (Kraken sends no deletes for levels pushed out of the depth, so the client
/// truncates; a level that lands past the depth is applied then truncated away for nothing).
/// A side is trimmed only when it holds `depth` levels already and the update deletes none of
/// them: then every level strictly worse than its worst kept one has `depth` better levels
/// after the update too (an insert is truncated, a delete finds nothing). Levels that
/// `Book::apply` would refuse (negative numbers) are kept, so they are still refused. The
/// kept levels are moved to the front of the range, in order; the new end of the range.
fn skip_past_depth(
    book: &Book,
    depth: usize,
    levels: &mut [LevelChange],
    range: Range<usize>,
) -> usize {
    let mut worst = [Side::Bid, Side::Ask].map(|side| {
        (book.len(side) >= depth)
            .then(|| book.side(side).next_back().map(|level| level.price))
            .flatten()
    });
    if worst == [None, None] {
        return range.end;
    }
    let past = |side: Side, price: Decimal, worst: Decimal| match side {
        Side::Bid => price < worst,
        Side::Ask => price > worst,
    };
    // A delete at or inside the depth could let a worse level in: that side is left whole.
    for &(side, price, qty) in &levels[range.clone()] {
        let slot = &mut worst[side as usize];
        if slot.is_some_and(|w| qty.is_zero() && !past(side, price, w)) {
            *slot = None;
        }
    }
    let mut kept = range.start;
    for i in range {
        let (side, price, qty) = levels[i];
        let unreachable = worst[side as usize]
            .is_some_and(|w| past(side, price, w) && !price.is_negative() && !qty.is_negative());
        if !unreachable {
            levels[kept] = levels[i];
            kept += 1;
        }
    }
    kept
}

/// `book-1000` -> 1000.
fn depth_from_name(name: &str) -> Option<usize> {
    name.strip_prefix("book-")?.parse().ok()
}

fn parse_crc(text: &str) -> Result<u32, FrameError> {
    text.parse()
        .map_err(|_| FrameError::Invalid(format!("checksum {text:?} is not a 32-bit value")))
}
