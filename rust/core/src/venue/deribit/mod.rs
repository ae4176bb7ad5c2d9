//! Deribit API v2 over JSON-RPC websocket: `book.{instrument}.raw` (or `.100ms`) books,
//! `trades.{instrument}.raw`, `ticker.{instrument}.raw`, and the venue's heartbeat.
//!
//! Books: the first message of a subscription is `type: snapshot` with a `change_id`; every
//! later one is `type: change` whose `prev_change_id` must equal the `change_id` before it
//! (ids grow but not by one). A broken chain costs that instrument its book and asks for
//! `NeedResubscribe`: Deribit sends a fresh snapshot when the channel is subscribed again.
//! Entries are `[action, price, amount]` with action `new`/`change`/`delete`; numbers are JSON
//! numbers read from their text (see `wire`).
//!
//! Tickers become `Quote` events with no `seq`: a ticker carries no `change_id`. What ties it
//! to a book state is its `timestamp`: it shows the book after the last book message whose own
//! `timestamp` is not later (the ticker often arrives just before the book change that carries
//! the same timestamp), which is what `lobfeed verify` and the tape proof check. An empty side
//! is given as price 0 and amount 0, as Deribit sends it.
//!
//! Heartbeat: after `public/set_heartbeat`, the venue sends `test_request`s that must be
//! answered with `public/test` or it closes the connection.

mod wire;

#[cfg(test)]
mod tests;

use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use wire::{BookData, Frame, Scanned, TickerData, TradeData};

/// Deribit's `change_id` chain: a change applies when its `prev_change_id` is the id the book
/// stands at. `first == last == change_id`, `prev == prev_change_id`.
pub struct DeribitRule;

impl SequenceRule for DeribitRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.prev == Some(snapshot_id) {
            Continuity::Apply
        } else if d.last <= snapshot_id {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected: snapshot_id,
                received: d.prev.unwrap_or(d.first),
            }
        }
    }

    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        self.bridges(last.last, d)
    }
}

/// The answer a `test_request` wants, or the venue closes the connection.
pub const TEST_ANSWER: &str = r#"{"jsonrpc":"2.0","method":"public/test","params":{}}"#;

pub struct DeribitSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
}

impl DeribitSession {
    pub fn new(options: SessionOptions) -> Self {
        DeribitSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(64),
        }
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, ResyncBy::Resubscribe, None)
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.levels.clear();
        if let Some((channel, read)) = wire::scan_notification(frame, &mut self.levels) {
            let named = wire::channel_instrument(channel);
            return match read {
                Scanned::Book(book) => self.on_scanned_book(named, &book, ts_ns, out),
                Scanned::Ticker(t) => {
                    self.push_quote(named, t.instrument_name, t.timestamp, t.quote, ts_ns, out)
                }
            };
        }
        let f: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        if let Some(error) = &f.error {
            let code = error.code.map(|c| c.get());
            return Err(venue_error(None, code, error.message.as_deref()));
        }
        match (f.method, &f.params) {
            (Some("subscription"), Some(params)) => {
                let channel = params.channel.ok_or(FrameError::MissingField("channel"))?;
                let data = params.data.ok_or(FrameError::MissingField("data"))?;
                match channel.split('.').next() {
                    Some("book") => self.on_book(channel, data.get(), ts_ns, out),
                    Some("ticker") => self.on_ticker(channel, data.get(), ts_ns, out),
                    Some("trades") => self.on_trades(channel, data.get(), ts_ns, out),
                    _ => {
                        self.core.stats.ignored += 1;
                        Ok(())
                    }
                }
            }
            (Some("heartbeat"), Some(params)) if params.kind == Some("test_request") => {
                out.push(Event::Reply {
                    text: TEST_ANSWER.to_owned(),
                });
                Ok(())
            }
            _ => {
                // Answers to subscribe, set_heartbeat and test; plain heartbeats.
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        channel: &str,
        data: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = wire::channel_instrument(channel);
        let known = named.and_then(|name| self.core.symbols.id(name));
        let book: BookData<'_> = match serde_json::from_str(data) {
            Ok(book) => book,
            Err(e) => return Err(self.fail(known, named, e.into(), out)),
        };
        let Some(id) = self.book_symbol(named, &book)? else {
            return Ok(());
        };
        self.levels.clear();
        let result = book
            .levels(&mut self.levels)
            .and_then(|()| self.apply_book(id, &book, ts_ns, out));
        result.map_err(|e| self.core.symbols.bad_frame(id, e, out))
    }

    /// A book the scanner read, its levels already in `self.levels`.
    fn on_scanned_book(
        &mut self,
        named: Option<&str>,
        book: &BookData<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(id) = self.book_symbol(named, book)? else {
            return Ok(());
        };
        let result = self.apply_book(id, book, ts_ns, out);
        result.map_err(|e| self.core.symbols.bad_frame(id, e, out))
    }

    /// The book's instrument (`None`: not subscribed, skipped).
    fn book_symbol(
        &mut self,
        named: Option<&str>,
        book: &BookData<'_>,
    ) -> Result<Option<SymbolId>, ReceiveError> {
        let name = book
            .instrument_name
            .or(named)
            .ok_or(FrameError::MissingField("instrument_name"))?;
        Ok(self.intern(name))
    }

    fn apply_book(
        &mut self,
        id: SymbolId,
        book: &BookData<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let change_id = book
            .change_id
            .ok_or(FrameError::MissingField("change_id"))?;
        let exchange_ts_ns = ms_to_ns(book.timestamp.unwrap_or(0));
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        match book.kind {
            Some("snapshot") => {
                let snapshot = Snapshot {
                    symbol: id,
                    id: Some(change_id),
                    levels: &self.levels,
                    exchange_ts_ns,
                    ts_ns,
                };
                sync.apply_snapshot(&DeribitRule, snapshot, out)?;
            }
            Some("change") => {
                let prev = book
                    .prev_change_id
                    .ok_or(FrameError::MissingField("prev_change_id"))?;
                let delta = Delta {
                    symbol: id,
                    ids: DeltaIds {
                        first: change_id,
                        last: change_id,
                        prev: Some(prev),
                    },
                    levels: &self.levels,
                    exchange_ts_ns,
                    ts_ns,
                };
                sync.apply_delta(&DeribitRule, delta, out)?;
            }
            Some(other) => {
                return Err(FrameError::Invalid(format!(
                    "book type {other:?} is not snapshot or change"
                )))
            }
            None => return Err(FrameError::MissingField("type")),
        }
        Ok(())
    }

    /// A book frame that could not be read: its instrument, if known, resyncs.
    fn fail(
        &mut self,
        known: Option<SymbolId>,
        named: Option<&str>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        match known {
            Some(id) => self.core.symbols.bad_frame(id, error, out),
            None => ReceiveError::new(named.map(str::to_owned), error),
        }
    }

    fn on_ticker(
        &mut self,
        channel: &str,
        data: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = wire::channel_instrument(channel);
        let error = |e: FrameError| ReceiveError::new(named.map(str::to_owned), e);
        let t: TickerData<'_> = serde_json::from_str(data).map_err(|e| error(e.into()))?;
        let quote = (|| {
            Ok::<_, FrameError>((
                wire::quote_number("best_bid_price", t.best_bid_price)?,
                wire::quote_number("best_bid_amount", t.best_bid_amount)?,
                wire::quote_number("best_ask_price", t.best_ask_price)?,
                wire::quote_number("best_ask_amount", t.best_ask_amount)?,
            ))
        })();
        let quote = quote.map_err(error)?;
        self.push_quote(named, t.instrument_name, t.timestamp, quote, ts_ns, out)
    }

    /// A ticker's top of book, as a quote of its instrument (unless not subscribed).
    fn push_quote(
        &mut self,
        named: Option<&str>,
        instrument_name: Option<&str>,
        timestamp: Option<u64>,
        (bid_price, bid_size, ask_price, ask_size): (Decimal, Decimal, Decimal, Decimal),
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let error = |e: FrameError| ReceiveError::new(named.map(str::to_owned), e);
        let name = instrument_name
            .or(named)
            .ok_or_else(|| error(FrameError::MissingField("instrument_name")))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Quote(Quote {
            symbol,
            seq: None,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(timestamp.unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_trades(
        &mut self,
        channel: &str,
        data: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = wire::channel_instrument(channel);
        let error = |e: FrameError| ReceiveError::new(named.map(str::to_owned), e);
        let trades: Vec<TradeData<'_>> = serde_json::from_str(data).map_err(|e| error(e.into()))?;
        for t in trades {
            let side = match t.direction {
                Some("buy") => Some(TradeSide::Buy),
                Some("sell") => Some(TradeSide::Sell),
                None => None,
                Some(other) => {
                    return Err(error(FrameError::Invalid(format!(
                        "trade direction {other:?} is not buy or sell"
                    ))))
                }
            };
            let price = wire::number("price", t.price).map_err(error)?;
            let size = wire::number("amount", t.amount).map_err(error)?;
            let name = t
                .instrument_name
                .or(named)
                .ok_or_else(|| error(FrameError::MissingField("instrument_name")))?;
            let Some(symbol) = self.intern(name) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side,
                trade_id: t.trade_id.into_owned(),
                exchange_ts_ns: ms_to_ns(t.timestamp.unwrap_or(0)),
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }
}

impl Session for DeribitSession {
    fn venue(&self) -> &'static str {
        "deribit"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
