//! Bitfinex websocket v2 (`wss://api-pub.bitfinex.com/ws/2`): P-precision books, trades,
//! tickers, sequence numbers and book checksums.
//!
//! - Events are objects: `info`, `conf` (the flags the server accepted), `subscribed` (maps a
//!   `chanId` to a channel and symbol), `unsubscribed`, `pong`. They are counted as ignored once
//!   used. The book's `chanId` of a symbol is `Session::book_channel` (Bitfinex unsubscribes
//!   by `chanId` only). An `error` event (`{"event":"error","msg","code"}`, a refused subscribe or
//!   unsubscribe) is `FrameError::VenueError` ("code C: msg"), naming the symbol the event
//!   echoes (`symbol`, `pair`, or the `chanId` of a channel held); it changes no book.
//! - Data frames are arrays `[chanId, payload, ..., seq]`. With conf flag 65536 the last element
//!   of every data frame, heartbeats included, is one sequence counter for the whole connection:
//!   each must be the previous + 1 (the first seen sets the base). A gap resyncs every book of
//!   the connection (`GapDetected`, then `NeedResubscribe` per book symbol).
//! - Book (`P0`..`P4`): the snapshot is a list of `[price, count, amount]`, an update one level;
//!   `amount > 0` is a bid, `< 0` an ask; `count == 0` deletes (side from the sign of amount).
//!   Numbers are JSON numbers: they are read from the token text, so the venue's digits are kept
//!   exactly (strings, as the `DEC_S` flag sends them, are read too). Bitfinex keeps the book at
//!   the subscribed `len` itself (a level leaving it is deleted), so the session never cuts it.
//! - Checksum (conf flag 131072) `[chanId, "cs", crc, seq]`: see `book_checksum`. A mismatch
//!   resyncs the symbol.
//! - Trades: the subscription's snapshot `[chanId, [[id, mts, amount, price], ...]]` is history
//!   (`is_snapshot`), emitted oldest first, skipping ids not above the last trade emitted for the
//!   symbol (a resubscribe repeats them); then each `"te"` (trade executed) is a live trade, and
//!   `"tu"` (the same trade once written to the database) is ignored, so a trade is emitted once
//!   and as early as possible. `amount > 0`: the taker bought.
//! - Ticker of a trading pair `[chanId, [BID, BID_SIZE, ASK, ASK_SIZE, ...]]`: a `Quote` whose
//!   `seq` is the frame's connection sequence number. Its sizes are Bitfinex's sums of the 25
//!   best levels of a side, and it is sent on its own schedule, so it can lag the book.
//! - Not handled, counted as ignored: candle channels, raw books (`R0`), funding (`f...`) books,
//!   trades and tickers, channel 0 (authenticated).
//! - With conf flag 32768 (timestamps) the element before the sequence number is taken as the
//!   frame's millisecond timestamp, following Bitfinex's own client which reads the sequence
//!   number as the last element.

mod checksum;
mod wire;

#[cfg(test)]
mod tests;

pub use checksum::{book_checksum, write_js_number, CHECKSUM_DEPTH};

use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId};
use crate::sync::{LevelChange, ResyncBy, Snapshot, SyncState, Unsequenced};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::trades::{RawTrade, TradeCursor};
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};
use wire::{Buffers, DataFrame, EventFields, Frame, Kind, Payload, RawQuote};

/// Conf flag: every data frame ends with the connection's sequence number.
pub const FLAG_SEQ_ALL: u64 = 65_536;
/// Conf flag: book checksum frames.
pub const FLAG_CHECKSUM: u64 = 131_072;
/// Conf flag: a millisecond timestamp on every data frame.
pub const FLAG_TIMESTAMP: u64 = 32_768;

#[derive(Debug, Clone, Copy)]
struct Channel {
    id: u64,
    kind: Kind,
    symbol: SymbolId,
}

pub struct BitfinexSession {
    core: SessionCore,
    /// Subscribed channels; a connection holds at most a few dozen, so a list beats a map.
    channels: Vec<Channel>,
    trade_cursors: Vec<TradeCursor>,
    /// Flags the server acknowledged with `conf`; `None` until then.
    flags: Option<u64>,
    last_seq: Option<u64>,
    /// A frame failed to decode: it may have used up one sequence number.
    allow_skip: bool,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
    quote: Option<RawQuote>,
    checksum_text: String,
}

impl BitfinexSession {
    pub fn new(options: SessionOptions) -> Self {
        BitfinexSession {
            core: SessionCore::new(options),
            channels: Vec::new(),
            trade_cursors: Vec::new(),
            flags: None,
            last_seq: None,
            allow_skip: false,
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(64),
            quote: None,
            checksum_text: String::with_capacity(2048),
        }
    }

    /// The connection's last sequence number.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let id = self.core.intern(name, ResyncBy::Resubscribe, None)?;
        if self.trade_cursors.len() <= id as usize {
            self.trade_cursors
                .resize(id as usize + 1, TradeCursor::default());
        }
        Some(id)
    }

    fn channel(&self, id: u64) -> Option<Channel> {
        self.channels.iter().find(|c| c.id == id).copied()
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if let Err(e) = check_frame_size(frame, self.core.options.max_frame_bytes) {
            // The frame is lost but was sequenced: the next sequence number may skip one.
            self.allow_skip = true;
            return Err(e.into());
        }
        self.levels.clear();
        self.trades.clear();
        self.quote = None;
        let channels = &self.channels;
        let kind_of = |chan: u64| {
            channels
                .iter()
                .find(|c| c.id == chan)
                .map_or(Kind::Other, |c| c.kind)
        };
        let buffers = Buffers {
            levels: &mut self.levels,
            trades: &mut self.trades,
            quote: &mut self.quote,
        };
        match wire::decode(frame, kind_of, buffers) {
            Ok(Frame::Event(fields)) => self.on_event(&fields),
            Ok(Frame::Data(data)) => self.on_data(&data, ts_ns, out),
            Err(undecoded) => {
                self.allow_skip = true;
                let error = undecoded.error;
                let Some(ch) = undecoded.chan.and_then(|c| self.channel(c)) else {
                    return Err(error.into());
                };
                if ch.kind == Kind::Book {
                    return Err(self.core.symbols.bad_frame(ch.symbol, error, out));
                }
                let name = self.core.symbols.name(ch.symbol).to_owned();
                Err(ReceiveError::new(Some(name), error))
            }
        }
    }

    fn on_event(&mut self, e: &EventFields<'_>) -> Result<(), ReceiveError> {
        if e.event == Some("error") {
            return Err(self.venue_error(e));
        }
        match e.event {
            Some("subscribed") => self.on_subscribed(e)?,
            Some("unsubscribed") => {
                if let Some(chan) = e.chan_id {
                    self.channels.retain(|c| c.id != chan);
                }
            }
            Some("conf") if e.status.is_none_or(|s| s == "OK") => {
                self.flags = e.flags.or(self.flags);
            }
            // info (version, maintenance codes), pong: understood, nothing to keep.
            _ => {}
        }
        self.core.stats.ignored += 1;
        Ok(())
    }

    /// An `error` event: a refused subscribe or unsubscribe. It names its symbol when it echoes
    /// the request (`symbol`, or `pair` without the `t`) or a channel we hold (`chanId`).
    fn venue_error(&self, e: &EventFields<'_>) -> ReceiveError {
        let prefixed;
        let symbol = match (e.symbol, e.pair) {
            (Some(symbol), _) => Some(symbol),
            (None, Some(pair)) => {
                prefixed = format!("t{pair}");
                Some(prefixed.as_str())
            }
            (None, None) => e
                .chan_id
                .and_then(|id| self.channel(id))
                .filter(|c| !matches!(c.kind, Kind::Other | Kind::Unsubscribed))
                .map(|c| self.core.symbols.name(c.symbol)),
        };
        venue_error(symbol, e.code.as_deref(), e.msg.as_deref())
    }

    fn on_subscribed(&mut self, e: &EventFields<'_>) -> Result<(), ReceiveError> {
        let chan = e.chan_id.ok_or(FrameError::MissingField("chanId"))?;
        let name = match (e.symbol, e.pair, e.key) {
            (Some(symbol), _, _) => symbol,
            (None, Some(pair), _) => pair,
            (None, None, Some(key)) => key,
            _ => return Err(FrameError::MissingField("symbol").into()),
        };
        let funding = name.starts_with('f');
        let kind = match e.channel {
            Some("book") if !funding && e.prec.is_none_or(|p| p.starts_with('P')) => Kind::Book,
            Some("trades") if !funding => Kind::Trades,
            Some("ticker") if !funding => Kind::Ticker,
            _ => Kind::Other,
        };
        // Old-style subscriptions name the pair without the `t` prefix.
        let mut spelled = String::new();
        let name = if e.symbol.is_none() && e.pair.is_some() {
            spelled.push('t');
            spelled.push_str(name);
            spelled.as_str()
        } else {
            name
        };
        let (kind, symbol) = if kind == Kind::Other {
            (kind, SymbolId::MAX)
        } else {
            match self.intern(name) {
                Some(id) => (kind, id),
                None => (Kind::Unsubscribed, SymbolId::MAX),
            }
        };
        // One channel per id, and one book channel per symbol (a resubscribe replaces the old).
        self.channels.retain(|c| {
            c.id != chan && !(kind == Kind::Book && c.kind == kind && c.symbol == symbol)
        });
        self.channels.push(Channel {
            id: chan,
            kind,
            symbol,
        });
        Ok(())
    }

    fn on_data(
        &mut self,
        data: &DataFrame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let chan = data.chan.expect("a data frame starts with its channel");
        // The trailing numbers: the sequence number last, a timestamp before it if asked for.
        let flags = self.flags;
        let seq_on = flags.is_none_or(|f| f & FLAG_SEQ_ALL != 0);
        let ts_on = flags.is_some_and(|f| f & FLAG_TIMESTAMP != 0);
        let (seq, mts) = match (seq_on, ts_on) {
            // Channel 0 (authenticated) puts the public sequence number second to last.
            (true, _) if chan == 0 && data.tag != Some("hb") => (data.trailing[0], None),
            (true, true) => (data.trailing[1], data.trailing[0]),
            (true, false) => (data.trailing[1], None),
            (false, true) => (None, data.trailing[1]),
            (false, false) => (None, None),
        };
        if let Some(seq) = seq {
            self.check_sequence(seq, out);
        }
        let exchange_ts = mts.map_or(0, ms_to_ns);
        let Some(ch) = self.channel(chan) else {
            // Heartbeats can arrive before their `subscribed` event; other channels we skip.
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match (ch.kind, data.tag, data.payload) {
            (Kind::Unsubscribed, tag, _) if tag != Some("hb") => {
                self.core.symbols.count_unsubscribed();
                Ok(())
            }
            (Kind::Book, None, Payload::BookSnapshot) => {
                self.on_book(ch.symbol, true, seq, exchange_ts, ts_ns, out)
            }
            (Kind::Book, None, Payload::BookUpdate) => {
                self.on_book(ch.symbol, false, seq, exchange_ts, ts_ns, out)
            }
            (Kind::Book, Some("cs"), _) => self.on_checksum(ch.symbol, data.crc, out),
            (Kind::Trades, None, Payload::Trades) => {
                let cursor = &mut self.trade_cursors[ch.symbol as usize];
                cursor.history(&mut self.trades, ch.symbol, ts_ns, out);
                Ok(())
            }
            (Kind::Trades, Some("te"), Payload::Trades) => {
                let cursor = &mut self.trade_cursors[ch.symbol as usize];
                for t in &self.trades {
                    cursor.live(t, ch.symbol, ts_ns, out);
                }
                Ok(())
            }
            (Kind::Ticker, None, Payload::Ticker) => {
                let q = self.quote.expect("a ticker payload decodes to a quote");
                out.push(Event::Quote(Quote {
                    symbol: ch.symbol,
                    seq,
                    bid_price: q.bid,
                    bid_size: q.bid_size,
                    ask_price: q.ask,
                    ask_size: q.ask_size,
                    exchange_ts_ns: exchange_ts,
                    ts_ns,
                }));
                Ok(())
            }
            // "hb", "tu", anything else a channel sends: understood, not kept.
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// One counter per connection: each data frame's number is the previous + 1.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        let allow_skip = std::mem::replace(&mut self.allow_skip, false);
        let Some(last) = self.last_seq.replace(seq) else {
            return;
        };
        let expected = last.saturating_add(1);
        if seq == expected || (allow_skip && seq == expected.saturating_add(1)) {
            return;
        }
        // Any frame may have been lost, a book update included: every book starts again.
        for i in 0..self.channels.len() {
            let ch = self.channels[i];
            if ch.kind != Kind::Book {
                continue;
            }
            if let Some(sync) = self.core.symbols.sync_mut(ch.symbol) {
                sync.on_gap(ch.symbol, expected, seq, out);
            }
        }
    }

    fn on_book(
        &mut self,
        symbol: SymbolId,
        snapshot: bool,
        seq: Option<u64>,
        exchange_ts: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let first_event = out.len();
        let sync = self
            .core
            .symbols
            .sync_mut(symbol)
            .expect("channel symbols exist");
        let result = if snapshot {
            let book = Snapshot {
                symbol,
                id: None,
                levels: &self.levels,
                exchange_ts_ns: exchange_ts,
                ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, book, out).map(|()| true)
        } else {
            sync.on_unsequenced_delta(symbol, &self.levels, exchange_ts, ts_ns, out)
        };
        match result {
            Ok(applied) => {
                if let (true, Some(seq)) = (applied, seq) {
                    // Book events carry the connection's sequence number.
                    sync.last_seq = Some(seq);
                    for ev in &mut out[first_event..] {
                        match ev {
                            Event::BookUpdated { seq: s, .. } | Event::Resynced { seq: s, .. } => {
                                *s = Some(seq)
                            }
                            _ => {}
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.core.symbols.bad_frame(symbol, e.into(), out)),
        }
    }

    fn on_checksum(
        &mut self,
        symbol: SymbolId,
        crc: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = || Some(self.core.symbols.name(symbol).to_owned());
        let crc = crc.ok_or_else(|| ReceiveError::new(name(), FrameError::MissingField("cs")))?;
        // Sent signed; the same 32 bits either way.
        let expected = i32::try_from(crc)
            .map(|v| v as u32)
            .or_else(|_| u32::try_from(crc))
            .map_err(|_| {
                ReceiveError::new(
                    name(),
                    FrameError::Invalid(format!("checksum {crc} is not 32 bits")),
                )
            })?;
        let sync = self
            .core
            .symbols
            .sync_mut(symbol)
            .expect("channel symbols exist");
        if sync.state() != SyncState::Live {
            // Nothing to check until the new book arrives.
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let computed = book_checksum(&sync.book, &mut self.checksum_text);
        sync.on_checksum(symbol, expected, computed, out);
        Ok(())
    }
}

impl Session for BitfinexSession {
    fn venue(&self) -> &'static str {
        "bitfinex"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    /// The `chanId` of the symbol's book channel, which Bitfinex's unsubscribe names. The
    /// symbol may be spelled in any ASCII case, as subscriptions may be.
    fn book_channel(&self, symbol: &str) -> Option<u64> {
        let symbols = &self.core.symbols;
        let id = symbols.id(symbol).or_else(|| {
            let names = symbols.names();
            let at = names.iter().position(|n| n.eq_ignore_ascii_case(symbol))?;
            Some(at as SymbolId)
        })?;
        self.channels
            .iter()
            .find(|c| c.kind == Kind::Book && c.symbol == id)
            .map(|c| c.id)
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
