//! OKX v5 public websocket: order books (`books`, `books-l2-tbt`, `books50-l2-tbt` incremental;
//! `books5`, `bbo-tbt` full each message), trades, and the REST depth snapshot.
//!
//! Frames: `{"arg":{"channel","instId"},"action":"snapshot"|"update","data":[{...}]}`; acks and
//! notices are `{"event":...}` (counted as ignored), the heartbeat answer is the text `pong`.
//! An error answer `{"event":"error","code","msg"}` is `FrameError::VenueError` ("code C: msg"),
//! naming the instrument when it carries an `arg`; it changes no book.
//!
//! Two independent proofs keep a book honest:
//! - the legacy CRC32 `checksum` of the top 25 levels (see `checksum::okx_checksum`), checked
//!   after every applied snapshot or update when the field is present and non-zero (OKX
//!   announced that it sends 0 from 2026-06-23: 0 means "not given", never a failure);
//! - the `seqId`/`prevSeqId` chain: an update follows when its `prevSeqId` equals the previous
//!   `seqId` (steps are not +1; a `seqId` lower than `prevSeqId` after a maintenance reset still
//!   chains by identity); `seqId == prevSeqId` is a keep-alive that changes nothing;
//!   `prevSeqId == -1` marks the in-band snapshot. A REST snapshot (`GET /api/v5/market/books`)
//!   bridges like the in-band one: updates with `seqId <= snapshot seqId` are dropped and the first
//!   kept one must have `prevSeqId <= snapshot seqId < seqId`. Frames without `seqId` (older
//!   recordings) are applied in order, guarded by the checksum alone.
//!
//! Resync: by default a gap or mismatch asks for `NeedResubscribe` (the in-band snapshot OKX
//! sends on subscribe); `SessionOptions::resync = Some(ResyncBy::Snapshot)` (or
//! `OkxSession::with_resync`) asks for `NeedSnapshot` instead, for clients that fetch the REST
//! book (OKX's announced procedure once the in-band snapshot is gone). Either way, updates are
//! buffered until a snapshot bridges them.
//!
//! One book channel per instrument per session: the book is keyed by `instId`.
//!
//! `tickers` items become `Quote` events from `bidPx`/`bidSz`/`askPx`/`askSz`, with no `seq`
//! (tickers carry no `seqId`); they are information only, never checked against the book.
//!
//! Depth: the book is kept as the channel sends it (`books5`: 5 levels, whole each message;
//! `books`: 400, incremental, which truncating would corrupt), whatever
//! `SessionOptions::depth` says: the Python spec picks the channel that serves the wanted
//! depth and the view shows that many levels.

mod wire;

#[cfg(test)]
mod tests;

use crate::checksum::okx_checksum;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::publication::{confirm_checksum, published};
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use wire::{BookItem, Data, Frame};

/// OKX's `seqId` chain. `first == last == seqId`, `prev == prevSeqId` (None for -1).
pub struct OkxRule;

impl SequenceRule for OkxRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.prev == Some(snapshot_id) && d.last != snapshot_id {
            // The very next update (also when a reset restarts seqId lower).
            Continuity::Apply
        } else if d.last <= snapshot_id {
            Continuity::Stale
        } else if d.prev.is_some_and(|prev| prev <= snapshot_id) {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id,
                received: d.prev.unwrap_or(d.first),
            }
        }
    }

    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        match d.prev {
            // Keep-alive: nothing changed since the update we hold.
            Some(prev) if prev == d.last && prev == last.last => Continuity::Stale,
            // Chained by identity (also across a reset where seqId goes down).
            Some(prev) if prev == last.last => Continuity::Apply,
            _ if d.last <= last.last && d.prev.is_none_or(|p| p < last.last) => Continuity::Stale,
            _ => Continuity::Gap {
                expected: last.last,
                received: d.prev.unwrap_or(d.first),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BookKind {
    /// Snapshot then updates (`books`, `books-l2-tbt`, `books50-l2-tbt`).
    Incremental,
    /// Every message is the whole book (`books5`, `bbo-tbt`).
    Full,
}

fn book_kind(channel: &str) -> BookKind {
    match channel {
        "books5" | "bbo-tbt" => BookKind::Full,
        _ => BookKind::Incremental,
    }
}

/// The `notice` code OKX sends "30 seconds before" it closes a connection for a service
/// upgrade (docs-v5, "Notification of service upgrade" under WebSocket).
const CLOSING_NOTICE: &str = "64008";

pub struct OkxSession {
    core: SessionCore,
    resync_by: ResyncBy,
    levels: Vec<LevelChange>,
}

impl OkxSession {
    /// A session that resyncs as `options.resync` says: through the in-band snapshot
    /// (`NeedResubscribe`) unless it asks for `ResyncBy::Snapshot`.
    pub fn new(options: SessionOptions) -> Self {
        let resync_by = options.resync.unwrap_or(ResyncBy::Resubscribe);
        Self::with_resync(options, resync_by)
    }

    /// A session whose gaps ask for what the client is set up for: `ResyncBy::Snapshot` when it
    /// fetches the REST book, `ResyncBy::Resubscribe` when it relies on the in-band snapshot.
    pub fn with_resync(options: SessionOptions, resync_by: ResyncBy) -> Self {
        OkxSession {
            core: SessionCore::new(SessionOptions {
                resync: Some(resync_by),
                ..options
            }),
            resync_by,
            levels: Vec::with_capacity(512),
        }
    }

    /// `None` for an instrument that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, self.resync_by, None)
    }

    fn read<'a>(
        &mut self,
        frame: &'a [u8],
        rest_book: bool,
    ) -> Result<Frame<'a>, wire::FrameFault<'a>> {
        self.levels.clear();
        if let Err(error) = check_frame_size(frame, self.core.options.max_frame_bytes) {
            return Err(wire::FrameFault {
                channel: None,
                inst_id: None,
                error,
            });
        }
        wire::read_frame(frame, rest_book, &mut self.levels)
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if frame.trim_ascii() == b"pong" {
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let f = match self.read(frame, false) {
            Ok(f) => f,
            Err(fault) => {
                // A book frame that names its instrument but cannot be read costs it its sync.
                if fault.channel.is_some_and(wire::is_book_channel) {
                    if let Some(id) = fault.inst_id.and_then(|s| self.core.symbols.id(s)) {
                        return Err(self.core.symbols.bad_frame(id, fault.error, out));
                    }
                }
                return Err(ReceiveError::new(
                    fault.inst_id.map(str::to_owned),
                    fault.error,
                ));
            }
        };
        if f.event == Some("error") {
            // A refused request; it names its instrument only when it echoes the `arg`, and
            // no book changes either way.
            return Err(venue_error(f.inst_id, f.code.as_deref(), f.msg.as_deref()));
        }
        if f.event == Some("notice") && f.code.as_deref() == Some(CLOSING_NOTICE) {
            self.core.stats.closing_notices += 1;
            return Ok(());
        }
        if f.event.is_some() {
            // subscribe/unsubscribe acks, other notices, connection counts.
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let Some(channel) = f.channel else {
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match (channel, &f.data) {
            (_, Some(Data::Book(items))) => self.on_book(book_kind(channel), &f, items, ts_ns, out),
            (channel, Some(Data::Raw(data))) if wire::is_book_channel(channel) => {
                // `data` came before `arg`: read again now that the channel is known.
                match wire::read_book_items(data, &mut self.levels) {
                    Ok(items) => self.on_book(book_kind(channel), &f, &items, ts_ns, out),
                    Err(error) => Err(self.book_error(&f, error, out)),
                }
            }
            ("trades" | "trades-all", Some(Data::Raw(data))) => {
                self.on_trades(&f, data, ts_ns, out)
            }
            ("tickers", Some(Data::Raw(data))) => self.on_tickers(&f, data, ts_ns, out),
            (channel, None) if wire::is_book_channel(channel) => {
                Err(self.book_error(&f, FrameError::MissingField("data"), out))
            }
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// A book frame of `f.inst_id` that could not be used: the instrument, if known, resyncs.
    fn book_error(
        &mut self,
        f: &Frame<'_>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        match f.inst_id.and_then(|s| self.core.symbols.id(s)) {
            Some(id) => self.core.symbols.bad_frame(id, error, out),
            None => ReceiveError::new(f.inst_id.map(str::to_owned), error),
        }
    }

    fn on_book(
        &mut self,
        kind: BookKind,
        f: &Frame<'_>,
        items: &[BookItem],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.inst_id.ok_or(FrameError::MissingField("arg.instId"))?;
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let snapshot = match (kind, f.action) {
            (BookKind::Full, _) | (_, Some("snapshot")) => true,
            (_, Some("update")) => false,
            (_, Some(other)) => {
                let e = FrameError::Invalid(format!("unknown book action {other:?}"));
                return Err(self.core.symbols.bad_frame(id, e, out));
            }
            (_, None) => {
                return Err(self.core.symbols.bad_frame(
                    id,
                    FrameError::MissingField("action"),
                    out,
                ))
            }
        };
        if items.is_empty() {
            return Err(self
                .core
                .symbols
                .bad_frame(id, FrameError::MissingField("data"), out));
        }
        for item in items {
            if let Err(e) = self.on_book_item(id, snapshot, item, ts_ns, out) {
                return Err(self.core.symbols.bad_frame(id, e, out));
            }
        }
        Ok(())
    }

    fn on_book_item(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        item: &BookItem,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let seq_id = match item.seq_id {
            Some(s) if s < 0 => {
                return Err(FrameError::Invalid(format!("negative seqId {s}")));
            }
            s => s.map(|s| s as u64),
        };
        // -1 marks the snapshot: no previous id.
        let prev_seq_id = item.prev_seq_id.and_then(|p| u64::try_from(p).ok());
        let checksum = match item.checksum {
            None | Some(0) => None,
            Some(c) => Some(i32::try_from(c).map_err(|_| {
                FrameError::Invalid(format!("checksum {c} is not a 32-bit integer"))
            })?),
        };
        let exchange_ts_ns = ms_to_ns(non_negative("ts", item.ts)?);
        let levels = &self.levels[item.levels.clone()];
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let mark = out.len();
        let applied = if snapshot {
            let bridging = sync.buffered() > 0;
            let snapshot = Snapshot {
                symbol: id,
                id: seq_id,
                levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_snapshot(&OkxRule, snapshot, out)?;
            // With buffered updates applied on top, the book is past what the checksum covers.
            !bridging && published(&out[mark..], id)
        } else if let Some(seq) = seq_id {
            let delta = Delta {
                symbol: id,
                ids: DeltaIds {
                    first: seq,
                    last: seq,
                    prev: prev_seq_id,
                },
                levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_delta(&OkxRule, delta, out)?
        } else {
            sync.on_unsequenced_delta(id, levels, exchange_ts_ns, ts_ns, out)?
        };
        if let (true, Some(expected)) = (applied, checksum) {
            let computed = okx_checksum(sync.book.bids(), sync.book.asks());
            confirm_checksum(sync, id, expected as u32, computed as u32, out, mark);
        }
        Ok(())
    }

    fn on_trades(
        &mut self,
        f: &Frame<'_>,
        data: &serde_json::value::RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(f.inst_id.map(str::to_owned), error);
        let items: Vec<wire::TradeItem<'_>> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        for item in items {
            let name = item
                .inst_id
                .or(f.inst_id)
                .ok_or(FrameError::MissingField("instId"))?;
            let side = match item.side {
                None => None,
                Some("buy") => Some(TradeSide::Buy),
                Some("sell") => Some(TradeSide::Sell),
                Some(other) => {
                    let e = FrameError::Invalid(format!("trade side {other:?} is not buy or sell"));
                    return Err(named(e));
                }
            };
            let price = wire::number("px", item.px).map_err(named)?;
            let size = wire::number("sz", item.sz).map_err(named)?;
            let exchange_ts_ns = ms_to_ns(non_negative("ts", item.ts).map_err(named)?);
            let Some(symbol) = self.intern(name) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side,
                trade_id: item.trade_id.to_owned(),
                exchange_ts_ns,
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }

    /// `tickers`: each item's best bid and ask (`bidPx`, `bidSz`, `askPx`, `askSz`) is a `Quote`
    /// with no `seq` (tickers carry no `seqId`). An item without all four (an empty side) gives
    /// none.
    fn on_tickers(
        &mut self,
        f: &Frame<'_>,
        data: &serde_json::value::RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(f.inst_id.map(str::to_owned), error);
        let items: Vec<wire::TickerItem<'_>> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let start = out.len();
        for item in items {
            let fields = [
                ("bidPx", item.bid_px),
                ("bidSz", item.bid_sz),
                ("askPx", item.ask_px),
                ("askSz", item.ask_sz),
            ];
            if fields.iter().any(|(_, text)| text.is_empty()) {
                continue;
            }
            let mut numbers = [crate::decimal::Decimal::default(); 4];
            for (slot, (field, text)) in numbers.iter_mut().zip(fields) {
                *slot = wire::number(field, text).map_err(named)?;
            }
            let [bid_price, bid_size, ask_price, ask_size] = numbers;
            let exchange_ts_ns = ms_to_ns(non_negative("ts", item.ts).map_err(named)?);
            let name = item
                .inst_id
                .or(f.inst_id)
                .ok_or(FrameError::MissingField("instId"))?;
            let Some(symbol) = self.intern(name) else {
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

/// An OKX integer that must not be negative (times), 0 when absent.
fn non_negative(field: &'static str, value: Option<i64>) -> Result<u64, FrameError> {
    let value = value.unwrap_or(0);
    u64::try_from(value).map_err(|_| FrameError::Invalid(format!("negative `{field}`: {value}")))
}

impl Session for OkxSession {
    fn venue(&self) -> &'static str {
        "okx"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        &[ResyncBy::Resubscribe, ResyncBy::Snapshot]
    }

    /// The body of `GET /api/v5/market/books?instId=..&sz=400`:
    /// `{"code":"0","msg":"","data":[{"asks","bids","ts","seqId"}]}`.
    fn receive_snapshot(
        &mut self,
        symbol: &str,
        body: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let owned = || Some(symbol.to_owned());
        let f = self
            .read(body, true)
            .map_err(|fault| ReceiveError::new(owned(), fault.error))?;
        if let Some(code) = f.code.as_deref().filter(|c| *c != "0") {
            return Err(venue_error(Some(symbol), Some(code), f.msg.as_deref()));
        }
        let item = match &f.data {
            Some(Data::Book(items)) if items.len() == 1 => &items[0],
            Some(Data::Book(items)) if items.len() > 1 => {
                return Err(ReceiveError::new(
                    owned(),
                    FrameError::Invalid("more than one book in the snapshot".into()),
                ))
            }
            _ => return Err(ReceiveError::new(owned(), FrameError::MissingField("data"))),
        };
        let seq_id = match item.seq_id {
            Some(s) => u64::try_from(s).map_err(|_| {
                ReceiveError::new(owned(), FrameError::Invalid(format!("negative seqId {s}")))
            })?,
            None => {
                return Err(ReceiveError::new(
                    owned(),
                    FrameError::MissingField("seqId"),
                ))
            }
        };
        let exchange_ts_ns =
            ms_to_ns(non_negative("ts", item.ts).map_err(|e| ReceiveError::new(owned(), e))?);
        let levels = item.levels.clone();
        let Some(id) = self.intern(symbol) else {
            return Ok(());
        };
        let sync = self.core.symbols.sync_mut(id).expect("interned above");
        let snapshot = Snapshot {
            symbol: id,
            id: Some(seq_id),
            levels: &self.levels[levels],
            exchange_ts_ns,
            ts_ns,
        };
        sync.apply_snapshot(&OkxRule, snapshot, out)
            .map_err(|e| ReceiveError::new(owned(), e.into()))
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
