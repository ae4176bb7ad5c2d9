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

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::book::Side;
use crate::checksum::okx_checksum;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, DeltaIds, LevelChange, ResyncBy, SequenceRule, SymbolSync, Symbols};
use crate::venue::json::{venue_error, LevelsSeed, LooseText, NumberFault};
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions, SessionStats};

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

fn book_kind(channel: &str) -> Option<BookKind> {
    match channel {
        "books" | "books-l2-tbt" | "books50-l2-tbt" | "books-elp" => Some(BookKind::Incremental),
        "books5" | "bbo-tbt" => Some(BookKind::Full),
        _ => None,
    }
}

/// The `notice` code OKX sends "30 seconds before" it closes a connection for a service
/// upgrade (docs-v5, "Notification of service upgrade" under WebSocket).
const CLOSING_NOTICE: &str = "64008";

pub struct OkxSession {
    symbols: Symbols,
    levels: Vec<LevelChange>,
    items: Vec<Item>,
    /// Strings of `data[]` items (instId, tradeId), kept by range so nothing borrows the frame.
    text: String,
    stats: SessionStats,
    options: SessionOptions,
    resync_by: ResyncBy,
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
            symbols: options.symbols_table(),
            levels: Vec::with_capacity(512),
            items: Vec::with_capacity(8),
            text: String::with_capacity(256),
            stats: SessionStats::default(),
            options: SessionOptions {
                resync: Some(resync_by),
                ..options
            },
            resync_by,
        }
    }

    /// `None` for an instrument that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let resync_by = self.resync_by;
        self.symbols
            .intern(name, || SymbolSync::new(resync_by, None))
    }

    fn decode<'de>(
        &mut self,
        frame: &'de [u8],
        fields: &mut Fields<'de>,
    ) -> Result<(), FrameError> {
        self.levels.clear();
        self.items.clear();
        self.text.clear();
        check_frame_size(frame, self.options.max_frame_bytes)?;
        let mut fault = NumberFault::default();
        let mut de = serde_json::Deserializer::from_slice(frame);
        let seed = FrameSeed {
            fields,
            bufs: Bufs {
                levels: &mut self.levels,
                items: &mut self.items,
                text: &mut self.text,
                fault: &mut fault,
            },
        };
        match seed.deserialize(&mut de).and_then(|()| de.end()) {
            Ok(()) => Ok(()),
            Err(e) => Err(match fault.fault {
                Some((field, error)) => FrameError::BadNumber { field, error },
                None => FrameError::Json(e.to_string()),
            }),
        }
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if frame.trim_ascii() == b"pong" {
            self.stats.ignored += 1;
            return Ok(());
        }
        let mut fields = Fields::default();
        if let Err(error) = self.decode(frame, &mut fields) {
            // A book frame that names its instrument but cannot be read costs it its sync.
            if fields.channel.and_then(book_kind).is_some() {
                if let Some(id) = fields.inst_id.and_then(|s| self.symbols.id(s)) {
                    return Err(self.symbols.bad_frame(id, error, out));
                }
            }
            return Err(ReceiveError::new(fields.inst_id.map(str::to_owned), error));
        }
        if fields.event == Some("error") {
            // A refused request; it names its instrument only when it echoes the `arg`, and
            // no book changes either way.
            return Err(venue_error(
                fields.inst_id,
                fields.code.as_deref(),
                fields.msg.as_deref(),
            ));
        }
        if fields.event == Some("notice") && fields.code.as_deref() == Some(CLOSING_NOTICE) {
            self.stats.closing_notices += 1;
            return Ok(());
        }
        if fields.event.is_some() {
            // subscribe/unsubscribe acks, other notices, connection counts.
            self.stats.ignored += 1;
            return Ok(());
        }
        let Some(channel) = fields.channel else {
            self.stats.ignored += 1;
            return Ok(());
        };
        if let Some(kind) = book_kind(channel) {
            return self.on_book(kind, &fields, ts_ns, out);
        }
        match channel {
            "trades" | "trades-all" => self.on_trades(&fields, ts_ns, out),
            "tickers" => self.on_tickers(&fields, ts_ns, out),
            _ => {
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        kind: BookKind,
        fields: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = fields
            .inst_id
            .ok_or(FrameError::MissingField("arg.instId"))?;
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let snapshot = match (kind, fields.action) {
            (BookKind::Full, _) | (_, Some("snapshot")) => true,
            (_, Some("update")) => false,
            (_, Some(other)) => {
                let e = FrameError::Invalid(format!("unknown book action {other:?}"));
                return Err(self.symbols.bad_frame(id, e, out));
            }
            (_, None) => {
                return Err(self
                    .symbols
                    .bad_frame(id, FrameError::MissingField("action"), out))
            }
        };
        if self.items.is_empty() {
            return Err(self
                .symbols
                .bad_frame(id, FrameError::MissingField("data"), out));
        }
        for i in 0..self.items.len() {
            let item = self.items[i].clone();
            if let Err(e) = self.on_book_item(id, snapshot, &item, ts_ns, out) {
                return Err(self.symbols.bad_frame(id, e, out));
            }
        }
        Ok(())
    }

    fn on_book_item(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        item: &Item,
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
        let exchange_ts_ns = ms_to_ns(item.ts.unwrap_or(0));
        let levels = &self.levels[item.levels.clone()];
        let sync = self.symbols.sync_mut(id).expect("interned by the caller");
        let mark = out.len();
        let applied = if snapshot {
            let bridging = sync.buffered() > 0;
            sync.on_snapshot(id, &OkxRule, seq_id, levels, exchange_ts_ns, ts_ns, out)?;
            // With buffered updates applied on top, the book is past what the checksum covers.
            !bridging && published(&out[mark..], id)
        } else if let Some(seq) = seq_id {
            let ids = DeltaIds {
                first: seq,
                last: seq,
                prev: prev_seq_id,
            };
            sync.on_delta(id, &OkxRule, ids, levels, exchange_ts_ns, ts_ns, out)?
        } else {
            sync.on_unsequenced_delta(id, levels, exchange_ts_ns, ts_ns, out)?
        };
        if let (true, Some(expected)) = (applied, checksum) {
            let computed = okx_checksum(sync.book.bids(), sync.book.asks());
            if !sync.on_checksum(id, expected as u32, computed as u32, out) {
                retract_publication(out, mark, id);
            }
        }
        Ok(())
    }

    fn on_trades(
        &mut self,
        fields: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        for i in 0..self.items.len() {
            let item = self.items[i].clone();
            let name = match item.inst_id.clone() {
                Some(r) => &self.text[r],
                None => fields.inst_id.ok_or(FrameError::MissingField("instId"))?,
            };
            let price = item.px.ok_or(FrameError::MissingField("px"))?;
            let size = item.sz.ok_or(FrameError::MissingField("sz"))?;
            let trade_id = &self.text[item
                .trade_id
                .clone()
                .ok_or(FrameError::MissingField("tradeId"))?];
            let Some(symbol) = self
                .symbols
                .intern(name, || SymbolSync::new(self.resync_by, None))
            else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side: item.side,
                trade_id: trade_id.to_owned(),
                exchange_ts_ns: ms_to_ns(item.ts.unwrap_or(0)),
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }
}

impl OkxSession {
    /// `tickers`: each item's best bid and ask (`bidPx`, `bidSz`, `askPx`, `askSz`) is a `Quote`
    /// with no `seq` (tickers carry no `seqId`). An item without all four (an empty side) gives
    /// none.
    fn on_tickers(
        &mut self,
        fields: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let start = out.len();
        for i in 0..self.items.len() {
            let item = self.items[i].clone();
            let (Some(bid_price), Some(bid_size), Some(ask_price), Some(ask_size)) =
                (item.bid_px, item.bid_sz, item.ask_px, item.ask_sz)
            else {
                continue;
            };
            let name = match item.inst_id.clone() {
                Some(r) => &self.text[r],
                None => fields.inst_id.ok_or(FrameError::MissingField("instId"))?,
            };
            let resync_by = self.resync_by;
            let Some(symbol) = self
                .symbols
                .intern(name, || SymbolSync::new(resync_by, None))
            else {
                continue;
            };
            out.push(Event::Quote(Quote {
                symbol,
                seq: None,
                bid_price,
                bid_size,
                ask_price,
                ask_size,
                exchange_ts_ns: ms_to_ns(item.ts.unwrap_or(0)),
                ts_ns,
            }));
        }
        if out.len() == start {
            self.stats.ignored += 1;
        }
        Ok(())
    }
}

/// Whether `events` announce a new book for `id`.
fn published(events: &[Event], id: SymbolId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::BookUpdated { symbol, .. } if *symbol == id))
}

/// A book that failed the venue's checksum was never in sync: take back its announcement.
fn retract_publication(out: &mut Vec<Event>, from: usize, id: SymbolId) {
    let mut i = from;
    while i < out.len() {
        if matches!(&out[i], Event::BookUpdated { symbol, .. } | Event::Resynced { symbol, .. } if *symbol == id)
        {
            out.remove(i);
        } else {
            i += 1;
        }
    }
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
        let mut fields = Fields::default();
        self.decode(body, &mut fields)
            .map_err(|e| ReceiveError::new(owned(), e))?;
        if let Some(code) = fields.code.as_deref().filter(|c| *c != "0") {
            return Err(venue_error(Some(symbol), Some(code), fields.msg.as_deref()));
        }
        let item = match self.items.as_slice() {
            [item] => item.clone(),
            [] => return Err(ReceiveError::new(owned(), FrameError::MissingField("data"))),
            _ => {
                return Err(ReceiveError::new(
                    owned(),
                    FrameError::Invalid("more than one book in the snapshot".into()),
                ))
            }
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
        let Some(id) = self.intern(symbol) else {
            return Ok(());
        };
        let levels = &self.levels[item.levels.clone()];
        let sync = self.symbols.sync_mut(id).expect("interned above");
        sync.on_snapshot(
            id,
            &OkxRule,
            Some(seq_id),
            levels,
            ms_to_ns(item.ts.unwrap_or(0)),
            ts_ns,
            out,
        )
        .map_err(|e| ReceiveError::new(owned(), e.into()))
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

/// Top-level fields of a frame (or of the REST body), read in one pass.
#[derive(Debug, Default)]
struct Fields<'a> {
    channel: Option<&'a str>,
    inst_id: Option<&'a str>,
    action: Option<&'a str>,
    event: Option<&'a str>,
    code: Option<Cow<'a, str>>,
    msg: Option<Cow<'a, str>>,
}

/// One element of `data[]`: book fields and trade fields, whichever it has. Strings live in
/// the session's text buffer, levels in its level buffer, so items hold no borrow.
#[derive(Debug, Default, Clone)]
struct Item {
    levels: Range<usize>,
    ts: Option<u64>,
    checksum: Option<i64>,
    seq_id: Option<i64>,
    prev_seq_id: Option<i64>,
    inst_id: Option<Range<usize>>,
    trade_id: Option<Range<usize>>,
    px: Option<Decimal>,
    sz: Option<Decimal>,
    side: Option<TradeSide>,
    /// Tickers' best bid and ask.
    bid_px: Option<Decimal>,
    bid_sz: Option<Decimal>,
    ask_px: Option<Decimal>,
    ask_sz: Option<Decimal>,
}

struct Bufs<'f> {
    levels: &'f mut Vec<LevelChange>,
    items: &'f mut Vec<Item>,
    text: &'f mut String,
    fault: &'f mut NumberFault,
}

impl Bufs<'_> {
    fn reborrow(&mut self) -> Bufs<'_> {
        Bufs {
            levels: &mut *self.levels,
            items: &mut *self.items,
            text: &mut *self.text,
            fault: &mut *self.fault,
        }
    }
}

struct FrameSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    bufs: Bufs<'f>,
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
        f.write_str("an OKX message object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "arg" => map.next_value_seed(ArgSeed { fields: &mut *f })?,
                "action" => f.action = Some(map.next_value()?),
                "event" => f.event = Some(map.next_value()?),
                "code" => f.code = map.next_value_seed(LooseText)?,
                "msg" => f.msg = map.next_value_seed(LooseText)?,
                "data" => map.next_value_seed(DataSeed {
                    bufs: self.bufs.reborrow(),
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ArgSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
}

impl<'de> DeserializeSeed<'de> for ArgSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ArgSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OKX `arg` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "channel" => self.fields.channel = Some(map.next_value()?),
                "instId" => self.fields.inst_id = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct DataSeed<'f> {
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OKX `data` list")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let start = self.bufs.levels.len();
            let mut item = Item {
                levels: start..start,
                ..Item::default()
            };
            let more = seq.next_element_seed(ItemSeed {
                item: &mut item,
                bufs: self.bufs.reborrow(),
            })?;
            if more.is_none() {
                return Ok(());
            }
            item.levels.end = self.bufs.levels.len();
            self.bufs.items.push(item);
        }
    }
}

struct ItemSeed<'f, 'i> {
    item: &'i mut Item,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OKX data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let item = self.item;
        let bufs = self.bufs;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "asks" | "bids" => map.next_value_seed(LevelsSeed {
                    side: if key == "asks" { Side::Ask } else { Side::Bid },
                    out: &mut *bufs.levels,
                    fault: &mut *bufs.fault,
                })?,
                "ts" => item.ts = Some(int_field(map.next_value_seed(IntSeed)?, "ts")?),
                "checksum" => item.checksum = Some(map.next_value_seed(IntSeed)?),
                "seqId" => item.seq_id = Some(map.next_value_seed(IntSeed)?),
                "prevSeqId" => item.prev_seq_id = Some(map.next_value_seed(IntSeed)?),
                "instId" | "tradeId" => {
                    let text: &str = map.next_value()?;
                    let start = bufs.text.len();
                    bufs.text.push_str(text);
                    let range = Some(start..bufs.text.len());
                    if key == "instId" {
                        item.inst_id = range;
                    } else {
                        item.trade_id = range;
                    }
                }
                "px" => item.px = Some(bufs.fault.parse("px", map.next_value()?)?),
                "sz" => item.sz = Some(bufs.fault.parse("sz", map.next_value()?)?),
                "bidPx" | "bidSz" | "askPx" | "askSz" => {
                    let text: &str = map.next_value()?;
                    // Empty when the side has nothing.
                    if !text.is_empty() {
                        let (slot, field) = match key {
                            "bidPx" => (&mut item.bid_px, "bidPx"),
                            "bidSz" => (&mut item.bid_sz, "bidSz"),
                            "askPx" => (&mut item.ask_px, "askPx"),
                            _ => (&mut item.ask_sz, "askSz"),
                        };
                        *slot = Some(bufs.fault.parse(field, text)?);
                    }
                }
                "side" => {
                    item.side = match map.next_value::<&str>()? {
                        "buy" => Some(TradeSide::Buy),
                        "sell" => Some(TradeSide::Sell),
                        other => {
                            return Err(de::Error::unknown_variant(other, &["buy", "sell"]));
                        }
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

fn int_field<E: de::Error>(value: i64, field: &'static str) -> Result<u64, E> {
    u64::try_from(value).map_err(|_| E::custom(format_args!("negative `{field}`")))
}

/// An integer written as a JSON number or as a string of digits (OKX quotes `ts`).
struct IntSeed;

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for IntSeed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse()
            .map_err(|_| E::custom(format_args!("not an integer: {v:?}")))
    }
}

#[cfg(test)]
mod tests {
    //! Frames written from OKX's v5 documentation of the `books` and `trades` channels and of
    //! `GET /api/v5/market/books`.

    use super::*;
    use crate::checksum::crc32;
    use crate::event::LossReason;
    use crate::sync::SyncState;

    fn session() -> OkxSession {
        OkxSession::new(SessionOptions::default())
    }

    fn feed(s: &mut OkxSession, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        s.receive(frame.as_bytes(), 1, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    /// A `books` frame: levels as (price, size) pairs.
    fn book(
        action: &str,
        bids: &[(&str, &str)],
        asks: &[(&str, &str)],
        checksum: i64,
        ids: Option<(i64, i64)>,
    ) -> String {
        let side = |levels: &[(&str, &str)]| {
            levels
                .iter()
                .map(|(p, q)| format!(r#"["{p}","{q}","0","1"]"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let seq = match ids {
            Some((prev, seq)) => format!(r#","prevSeqId":{prev},"seqId":{seq}"#),
            None => String::new(),
        };
        format!(
            r#"{{"arg":{{"channel":"books","instId":"BTC-USDT"}},"action":"{action}","data":[{{"asks":[{}],"bids":[{}],"ts":"1652459225000","checksum":{checksum}{seq}}}]}}"#,
            side(asks),
            side(bids)
        )
    }

    fn tops(s: &OkxSession) -> (Vec<String>, Vec<String>) {
        let sync = s.symbols().sync(0).unwrap();
        let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
        (
            sync.book.bids().map(fmt).collect(),
            sync.book.asks().map(fmt).collect(),
        )
    }

    fn counters(s: &OkxSession) -> crate::sync::SyncCounters {
        s.symbols().sync(0).unwrap().counters
    }

    #[test]
    fn seq_chain_with_keep_alive_and_gap() {
        let mut s = session();
        let out = feed(
            &mut s,
            &book(
                "snapshot",
                &[("10.0", "1")],
                &[("10.5", "2")],
                0,
                Some((-1, 100)),
            ),
        );
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(100), .. }]
        ));
        // Steps are not +1: the chain is prevSeqId == previous seqId.
        let out = feed(
            &mut s,
            &book("update", &[("10.1", "3")], &[], 0, Some((100, 107))),
        );
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(107), .. }]
        ));
        // Keep-alive: seqId == prevSeqId == last: no change, no gap, no event.
        let out = feed(&mut s, &book("update", &[], &[], 0, Some((107, 107))));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(107));
        let out = feed(
            &mut s,
            &book("update", &[], &[("10.5", "0")], 0, Some((107, 120))),
        );
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(120), .. }]
        ));
        assert_eq!(tops(&s), (vec!["10.1:3".into(), "10.0:1".into()], vec![]));
        // An update whose prevSeqId is not the last seqId: a gap, the book is dropped.
        let out = feed(
            &mut s,
            &book("update", &[("10.2", "1")], &[], 0, Some((130, 140))),
        );
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 120,
                    received: 130
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 120,
                        received: 130,
                    },
                },
                Event::NeedResubscribe { symbol: 0 },
            ]
        );
        assert!(s.symbols().sync(0).unwrap().book.is_empty());
        assert_eq!(counters(&s).gaps, 1);
        // The in-band snapshot of the resubscription brings it back.
        let out = feed(
            &mut s,
            &book(
                "snapshot",
                &[("9.9", "1")],
                &[("10.4", "1")],
                0,
                Some((-1, 150)),
            ),
        );
        assert!(out.contains(&Event::Resynced {
            symbol: 0,
            seq: Some(150)
        }));
        assert!(matches!(
            out.last(),
            Some(Event::BookUpdated { seq: Some(150), .. })
        ));
        assert_eq!(tops(&s), (vec!["9.9:1".into()], vec!["10.4:1".into()]));
    }

    #[test]
    fn seq_reset_chains_by_identity() {
        // After maintenance OKX may restart seqId lower; prevSeqId still names the last one.
        let mut s = session();
        feed(
            &mut s,
            &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 500))),
        );
        let out = feed(
            &mut s,
            &book("update", &[("1.5", "1")], &[], 0, Some((500, 3))),
        );
        assert!(matches!(out[..], [Event::BookUpdated { seq: Some(3), .. }]));
        let out = feed(
            &mut s,
            &book("update", &[("1.6", "1")], &[], 0, Some((3, 9))),
        );
        assert!(matches!(out[..], [Event::BookUpdated { seq: Some(9), .. }]));
        assert_eq!(counters(&s).gaps, 0);
    }

    fn rest(seq: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> String {
        let side = |levels: &[(&str, &str)]| {
            levels
                .iter()
                .map(|(p, q)| format!(r#"["{p}","{q}","0","1"]"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"code":"0","msg":"","data":[{{"asks":[{}],"bids":[{}],"ts":"1652459225000","seqId":{seq}}}]}}"#,
            side(asks),
            side(bids)
        )
    }

    #[test]
    fn rest_snapshot_bridges_buffered_updates() {
        let mut s = OkxSession::with_resync(SessionOptions::default(), ResyncBy::Snapshot);
        // Updates arrive before any snapshot: buffered, one snapshot request.
        let out = feed(
            &mut s,
            &book("update", &[("10.0", "5")], &[], 0, Some((90, 95))),
        );
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        assert!(feed(
            &mut s,
            &book("update", &[("10.1", "1")], &[], 0, Some((95, 101)))
        )
        .is_empty());
        assert!(feed(
            &mut s,
            &book("update", &[], &[("10.3", "0")], 0, Some((101, 110)))
        )
        .is_empty());
        assert_eq!(s.symbols().sync(0).unwrap().buffered(), 3);

        // A snapshot older than the first buffered update cannot be bridged: ask again.
        let mut out = Vec::new();
        s.receive_snapshot(
            "BTC-USDT",
            rest(80, &[("9.0", "1")], &[("11", "1")]).as_bytes(),
            2,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        assert_eq!(counters(&s).stale_snapshots, 1);

        // Snapshot at 100: update 95 is dropped (seqId <= 100), 101 bridges
        // (prevSeqId 95 <= 100 < 101), 110 follows.
        out.clear();
        let body = rest(
            100,
            &[("10.0", "2"), ("9.9", "4")],
            &[("10.3", "7"), ("10.4", "1")],
        );
        s.receive_snapshot("BTC-USDT", body.as_bytes(), 3, &mut out)
            .unwrap();
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(110), .. }]
        ));
        assert_eq!(
            tops(&s),
            (
                vec!["10.1:1".into(), "10.0:2".into(), "9.9:4".into()],
                vec!["10.4:1".into()]
            )
        );
        assert_eq!(counters(&s).stale_dropped, 1);
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        // And the live stream goes on from 110.
        let mut out = feed(
            &mut s,
            &book("update", &[("10.2", "1")], &[], 0, Some((110, 111))),
        );
        assert!(matches!(
            out[..],
            [Event::BookUpdated { seq: Some(111), .. }]
        ));
        // A REST error body is a typed venue error.
        let err = s
            .receive_snapshot(
                "BTC-USDT",
                br#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
                4,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err.error, FrameError::VenueError(_)));
    }

    fn okx_text_crc(text: &str) -> i64 {
        crc32(text.as_bytes()) as i32 as i64
    }

    #[test]
    fn checksum_zero_is_not_checked() {
        let mut s = session();
        feed(
            &mut s,
            &book("snapshot", &[("1.0", "1")], &[("2.0", "1")], 0, None),
        );
        let out = feed(&mut s, &book("update", &[("1.1", "1")], &[], 0, None));
        assert!(matches!(out[..], [Event::BookUpdated { .. }]));
        assert_eq!(counters(&s).checksums_checked, 0);
        assert_eq!(counters(&s).checksum_mismatches, 0);
    }

    #[test]
    fn wrong_checksum_clears_and_resyncs() {
        let mut s = session();
        let good = okx_text_crc("1.0:1:2.0:1");
        let out = feed(
            &mut s,
            &book("snapshot", &[("1.0", "1")], &[("2.0", "1")], good, None),
        );
        assert!(matches!(out[..], [Event::BookUpdated { .. }]));
        assert_eq!(counters(&s).checksums_checked, 1);
        // The venue's checksum says the book is not what we hold after this update.
        let wrong = okx_text_crc("1.1:1:1.0:1:2.0:1") ^ 1;
        let out = feed(&mut s, &book("update", &[("1.1", "1")], &[], wrong, None));
        let computed = okx_text_crc("1.1:1:2.0:1:1.0:1") as i32 as u32;
        assert_eq!(
            out,
            vec![
                Event::ChecksumMismatch {
                    symbol: 0,
                    expected: wrong as i32 as u32,
                    computed
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Checksum {
                        expected: wrong as i32 as u32,
                        computed,
                    },
                },
                Event::NeedResubscribe { symbol: 0 },
            ],
            "no BookUpdated for a book that failed its checksum"
        );
        assert!(s.symbols().sync(0).unwrap().book.is_empty());
        assert_eq!(
            s.symbols().sync(0).unwrap().state(),
            SyncState::AwaitingSnapshot
        );
        assert_eq!(counters(&s).checksum_mismatches, 1);
    }

    #[test]
    fn checksum_interleaves_unequal_sides() {
        // Three bids, one ask: bid0:ask0 then the bids alone.
        let mut s = session();
        let crc = okx_text_crc("8476.98:415:8476.99:1:8475.55:0.3:8475.1:22");
        let frame = book(
            "snapshot",
            &[("8476.98", "415"), ("8475.55", "0.3"), ("8475.1", "22")],
            &[("8476.99", "1")],
            crc,
            None,
        );
        let out = feed(&mut s, &frame);
        assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
        assert_eq!(counters(&s).checksums_checked, 1);
        assert_eq!(counters(&s).checksum_mismatches, 0);
        // Asks longer than bids: ask-only entries at the tail.
        let crc = okx_text_crc("8476.98:415:8476.99:1:8477:2:8478.5:3");
        let frame = book(
            "snapshot",
            &[("8476.98", "415")],
            &[("8476.99", "1"), ("8477", "2"), ("8478.5", "3")],
            crc,
            None,
        );
        feed(&mut s, &frame);
        assert_eq!(counters(&s).checksum_mismatches, 0);
    }

    #[test]
    fn trades_acks_pong_and_tickers() {
        let mut s = session();
        assert!(feed(&mut s, "pong").is_empty());
        assert!(feed(
            &mut s,
            r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}"#
        )
        .is_empty());
        assert!(feed(
            &mut s,
            r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade.","connId":"a4d3ae55"}"#
        )
        .is_empty());
        assert!(feed(&mut s, r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"9999.99"}]}"#).is_empty());
        // The service-upgrade notice is counted apart: the Feed replaces the connection.
        assert_eq!(s.stats().ignored, 3);
        assert_eq!(s.stats().closing_notices, 1);
        let out = feed(
            &mut s,
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.90","sz":"0.12060306","side":"sell","ts":"1630048897897"},{"instId":"BTC-USDT","tradeId":"130639475","px":"42220.00","sz":"1","side":"buy","ts":"1630048897898"}]}"#,
        );
        assert_eq!(out.len(), 2);
        let Event::Trade(t) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(t.price.to_string(), "42219.90");
        assert_eq!(t.size.to_string(), "0.12060306");
        assert_eq!(t.side, Some(TradeSide::Sell));
        assert_eq!(t.trade_id, "130639474");
        assert_eq!(t.exchange_ts_ns, 1_630_048_897_897_000_000);
        assert_eq!(t.ts_ns, 1);
        let Event::Trade(t) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(t.side, Some(TradeSide::Buy));
    }

    #[test]
    fn bad_book_frame_resyncs_only_its_symbol() {
        let mut s = session();
        feed(
            &mut s,
            &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 1))),
        );
        let other = book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 1)))
            .replace("BTC-USDT", "ETH-USDT");
        feed(&mut s, &other);
        let mut out = Vec::new();
        let bad = book("update", &[("1x", "1")], &[], 0, Some((1, 2)));
        let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
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
        assert!(s.symbols().sync(0).unwrap().book.is_empty());
        assert!(!s.symbols().sync(1).unwrap().book.is_empty());
        assert_eq!(s.stats().errors, 1);
    }

    #[test]
    fn error_answer_is_a_typed_venue_error_and_changes_no_book() {
        let mut s = session();
        feed(
            &mut s,
            &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 7))),
        );
        let mut out = Vec::new();
        // The message quotes the refused request, escaped quotes and all.
        let err = s
            .receive(
                br#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol, None);
        assert_eq!(
            err.error,
            FrameError::VenueError(r#"code 60012: Invalid request: {"op": "subscribe"}"#.into())
        );
        // An error that echoes its `arg` names the instrument, without touching its book.
        let err = s
            .receive(
                br#"{"event":"error","code":60018,"msg":"Wrong URL or channel:books,instId:BTC-USDT doesn't exist.","arg":{"channel":"books","instId":"BTC-USDT"}}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
        assert!(
            matches!(&err.error, FrameError::VenueError(m) if m.starts_with("code 60018: Wrong URL"))
        );
        assert!(out.is_empty());
        assert_eq!(tops(&s), (vec!["1:1".into()], vec!["2:1".into()]));
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(7));
        assert_eq!(counters(&s).errors, 0);
        assert_eq!(s.symbols().len(), 1);
        assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
    }

    #[test]
    fn tickers_become_quotes_without_seq() {
        let mut s = session();
        let out = feed(
            &mut s,
            r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5.10","open24h":"9000","high24h":"10000","low24h":"8888.88","volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222","ts":"1597026383085"}]}"#,
        );
        let [Event::Quote(q)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(q.seq, None);
        assert_eq!(
            (
                q.bid_price.to_string(),
                q.bid_size.to_string(),
                q.ask_price.to_string(),
                q.ask_size.to_string()
            ),
            (
                "8888.88".into(),
                "5.10".into(),
                "9999.99".into(),
                "11".into()
            )
        );
        assert_eq!(q.exchange_ts_ns, 1_597_026_383_085_000_000);
        assert_eq!(s.symbols().name(q.symbol), "BTC-USDT");
        // An empty side gives no quote.
        assert!(feed(
            &mut s,
            r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","askPx":"","askSz":"0","bidPx":"8888.88","bidSz":"5","ts":"1597026383086"}]}"#
        )
        .is_empty());
        assert_eq!(s.stats().ignored, 1);
        // Quotes do not make or check a book.
        let sync = s.symbols().sync(0).unwrap();
        assert!(sync.book.is_empty());
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","askPx":"1","askSz":"1","bidPx":"x","bidSz":"1","ts":"1"}]}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
        assert!(matches!(
            err.error,
            FrameError::BadNumber { field: "bidPx", .. }
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn books5_replaces_the_book_each_message() {
        let mut s = session();
        let frame = |bid: &str, ask: &str| {
            format!(
                r#"{{"arg":{{"channel":"books5","instId":"BTC-USDT"}},"data":[{{"asks":[["{ask}","1","0","1"]],"bids":[["{bid}","1","0","1"]],"instId":"BTC-USDT","ts":"1","seqId":5}}]}}"#
            )
        };
        feed(&mut s, &frame("10", "11"));
        let out = feed(&mut s, &frame("12", "13"));
        assert!(matches!(out[..], [Event::BookUpdated { .. }]));
        assert_eq!(tops(&s), (vec!["12:1".into()], vec!["13:1".into()]));
    }
}
