//! `Session`: one venue connection's sync machine. Bytes in, a tuple of events out.

use lobfeed_core::{
    new_session, Event, ResyncBy, SessionError, SessionOptions, SymbolSync, SyncState, VENUES,
};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::args;
use crate::errors::{config_error, raise, receive_error};
use crate::events;
use crate::routes::Routes;
use crate::view::BookView;

#[pyclass(unsendable, weakref, module = "lobfeed._native")]
pub struct Session {
    inner: Box<dyn lobfeed_core::Session>,
    venue: &'static str,
    /// The feed's name stamped on every event (`bybit-spot` where the decoder is `bybit`).
    feed_name: Py<PyString>,
    /// Levels a side the views show (`None`: all). Venues whose checksum covers a fixed depth
    /// also keep only that many; the others stream whole books, which must be kept whole.
    depth: Option<usize>,
    /// The way to resync the session was made with (`None`: the venue's default).
    resync_by: Option<ResyncBy>,
    events: Vec<Event>,
    /// Python strings of the symbol names, made once per symbol.
    names: Vec<Py<PyString>>,
    /// Per symbol, bumped whenever its book changes or is dropped: views check it.
    versions: Vec<u64>,
    /// Per symbol, the health the I/O layer last set (`set_status`): what `BookView.state`
    /// shows before the sync state. Kept here because views reach the session, not the feed.
    statuses: Vec<Option<Py<PyString>>>,
    /// Called with the text of each `Reply` the venue asks for (`set_replier`); replies never
    /// enter the event tuple, so the hot path pays nothing for them.
    replier: Option<Py<PyAny>>,
    replies: u64,
    /// Replies asked for while no replier was set (a replay, a bench): counted, not sent.
    replies_unanswered: u64,
    /// Replies of the frame being handled, sent once the session is no longer borrowed.
    pending_replies: Vec<String>,
    /// Where `receive_routed` delivers events (`set_routes`).
    routes: Option<Arc<Routes>>,
    /// The last event `receive_routed` made, until `take_last_event` (the feed's lag sample).
    last_event: Option<Py<PyAny>>,
}

/// The venues this build understands.
#[pyfunction]
pub fn supported_venues() -> Vec<&'static str> {
    VENUES.to_vec()
}

fn frame_bytes<'a>(frame: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(bytes) = frame.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    if let Ok(text) = frame.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "a frame is bytes (or str)",
    ))
}

impl Session {
    pub fn sync(&self, id: u32) -> Option<&SymbolSync> {
        self.inner.symbols().sync(id)
    }

    pub fn version(&self, id: u32) -> u64 {
        self.versions.get(id as usize).copied().unwrap_or(0)
    }

    pub fn status(&self, id: u32) -> Option<&Py<PyString>> {
        self.statuses.get(id as usize).and_then(Option::as_ref)
    }

    /// Most levels a side a view shows.
    pub fn shown_depth(&self) -> usize {
        self.depth.unwrap_or(usize::MAX)
    }

    fn symbol_name(&mut self, py: Python<'_>, id: u32) -> Py<PyString> {
        let symbols = self.inner.symbols();
        while self.names.len() < symbols.len() {
            let next = self.names.len() as u32;
            self.names
                .push(PyString::new(py, symbols.name(next)).unbind());
        }
        if self.versions.len() < self.names.len() {
            self.versions.resize(self.names.len(), 0);
        }
        self.names[id as usize].clone_ref(py)
    }

    /// Turns the events of one call into Python objects (and bumps book versions first, so the
    /// views handed out are current).
    fn drain<'py>(slf: &Bound<'py, Self>, this: &mut Session) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        if this.events.is_empty() {
            return Ok(PyTuple::empty(py));
        }
        PyTuple::new(py, Self::event_objects(slf, this)?)
    }

    /// The events of one call as Python objects, in order (the event buffer is left empty).
    fn event_objects<'py>(
        slf: &Bound<'py, Self>,
        this: &mut Session,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let py = slf.py();
        let events = std::mem::take(&mut this.events);
        for ev in &events {
            if !matches!(ev, Event::Trade(_) | Event::Candle(_) | Event::Quote(_)) {
                if let Some(id) = ev.symbol() {
                    this.symbol_name(py, id);
                    this.versions[id as usize] += 1;
                }
            }
        }
        let mut objects: Vec<Bound<'py, PyAny>> = Vec::with_capacity(events.len());
        for ev in &events {
            let Some(id) = ev.symbol() else {
                if let Event::Reply { text } = ev {
                    this.pending_replies.push(text.clone());
                }
                continue;
            };
            let symbol = this.symbol_name(py, id);
            let venue = this.feed_name.clone_ref(py);
            let obj = match ev {
                Event::BookUpdated {
                    symbol: id,
                    seq,
                    exchange_ts_ns,
                    ts_ns,
                } => Bound::new(
                    py,
                    events::BookUpdate {
                        venue,
                        symbol,
                        seq: *seq,
                        exchange_ts_ns: *exchange_ts_ns,
                        ts_ns: *ts_ns,
                        session: slf.clone().unbind(),
                        symbol_id: *id,
                        version: this.versions[*id as usize],
                    },
                )?
                .into_any(),
                Event::NeedSnapshot { .. } => {
                    Bound::new(py, events::NeedSnapshot { venue, symbol })?.into_any()
                }
                Event::NeedResubscribe { .. } => {
                    Bound::new(py, events::NeedResubscribe { venue, symbol })?.into_any()
                }
                Event::GapDetected {
                    expected, received, ..
                } => Bound::new(
                    py,
                    events::GapDetected {
                        venue,
                        symbol,
                        expected: *expected,
                        received: *received,
                    },
                )?
                .into_any(),
                Event::ChecksumMismatch {
                    expected, computed, ..
                } => Bound::new(
                    py,
                    events::ChecksumMismatch {
                        venue,
                        symbol,
                        expected: *expected,
                        computed: *computed,
                    },
                )?
                .into_any(),
                Event::Resynced { seq, .. } => Bound::new(
                    py,
                    events::Resynced {
                        venue,
                        symbol,
                        seq: *seq,
                    },
                )?
                .into_any(),
                Event::SyncLost { reason, .. } => Bound::new(
                    py,
                    events::SyncLost {
                        venue,
                        symbol,
                        reason: reason.name(),
                        detail: reason.to_string(),
                    },
                )?
                .into_any(),
                Event::Trade(t) => Bound::new(
                    py,
                    events::Trade {
                        venue,
                        symbol,
                        price: t.price,
                        size: t.size,
                        side: t.side,
                        trade_id: t.trade_id.clone(),
                        exchange_ts_ns: t.exchange_ts_ns,
                        ts_ns: t.ts_ns,
                        is_snapshot: t.is_snapshot,
                    },
                )?
                .into_any(),
                Event::Candle(c) => Bound::new(
                    py,
                    events::Candle {
                        venue,
                        symbol,
                        interval: c.interval.clone(),
                        open_ts_ns: c.open_ts_ns,
                        close_ts_ns: c.close_ts_ns,
                        open: c.open,
                        high: c.high,
                        low: c.low,
                        close: c.close,
                        volume: c.volume,
                        trades: c.trades,
                        closed: c.closed,
                        exchange_ts_ns: c.exchange_ts_ns,
                        ts_ns: c.ts_ns,
                        is_snapshot: c.is_snapshot,
                    },
                )?
                .into_any(),
                Event::Reply { .. } => unreachable!("replies have no symbol"),
                Event::Quote(q) => Bound::new(
                    py,
                    events::Quote {
                        venue,
                        symbol,
                        seq: q.seq,
                        bid_price: q.bid_price,
                        bid_size: q.bid_size,
                        ask_price: q.ask_price,
                        ask_size: q.ask_size,
                        exchange_ts_ns: q.exchange_ts_ns,
                        ts_ns: q.ts_ns,
                    },
                )?
                .into_any(),
            };
            objects.push(obj);
        }
        // Keep the buffer's capacity for the next frame.
        this.events = events;
        this.events.clear();
        Ok(objects)
    }

    /// Sends the replies the last frame asked for, through the replier, once the session is
    /// no longer borrowed (the replier may call it); without one they are only counted.
    fn answer(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (texts, replier) = {
            let mut this = slf.borrow_mut();
            if this.pending_replies.is_empty() {
                return Ok(());
            }
            let texts = std::mem::take(&mut this.pending_replies);
            this.replies += texts.len() as u64;
            let replier = this.replier.as_ref().map(|r| r.clone_ref(py));
            if replier.is_none() {
                this.replies_unanswered += texts.len() as u64;
            }
            (texts, replier)
        };
        if let Some(replier) = replier {
            for text in texts {
                replier.call1(py, (text,))?;
            }
        }
        Ok(())
    }

    fn finish<'py>(
        slf: &Bound<'py, Self>,
        this: &mut Session,
        result: Result<(), lobfeed_core::ReceiveError>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let events = Self::drain(slf, this)?;
        match result {
            Ok(()) => Ok(events),
            Err(err) => Err(receive_error(slf.py(), &err, events)),
        }
    }
}

#[pymethods]
impl Session {
    #[new]
    // Arguments with a default arrive as Option so that a bad one becomes a ConfigError naming
    // it (see args.rs); `text_signature` shows Python the real defaults.
    // `name`: the feed's name stamped on every event as `venue` (default: the venue's).
    // `depth`: levels a side the views show (None: all).
    // `max_frame_bytes` is lobfeed_core::venue::DEFAULT_MAX_FRAME_BYTES and `max_buffer_bytes`
    // lobfeed_core::sync::DEFAULT_MAX_BUFFER_BYTES, spelled out for the signature Python shows.
    // `resync`: None (the venue's own way), "snapshot" or "resubscribe".
    // `symbols`: the subscribed symbols (any ASCII case); frames for others are dropped and
    // counted in `stats()["unsubscribed"]`.
    #[pyo3(
        signature = (
            venue,
            *,
            name=None,
            depth=None,
            max_frame_bytes=None,
            resync=None,
            symbols=None,
            max_buffer_bytes=None
        ),
        text_signature = "(venue, *, name=None, depth=None, max_frame_bytes=8388608, resync=None, symbols=None, max_buffer_bytes=4194304)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        venue: &Bound<'_, PyAny>,
        name: Option<&Bound<'_, PyAny>>,
        depth: Option<&Bound<'_, PyAny>>,
        max_frame_bytes: Option<&Bound<'_, PyAny>>,
        resync: Option<&Bound<'_, PyAny>>,
        symbols: Option<&Bound<'_, PyAny>>,
        max_buffer_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let venue = args::text(Some(venue), "venue")?
            .ok_or_else(|| config_error(py, "venue must be a str, not None".to_owned()))?;
        let name = args::text(name, "name")?;
        if name.as_deref() == Some("") {
            return Err(config_error(py, "name must not be empty".to_owned()));
        }
        let depth = args::optional_size(depth, "depth", 1)?;
        let max_frame_bytes = args::size_or(
            max_frame_bytes,
            "max_frame_bytes",
            1,
            lobfeed_core::venue::DEFAULT_MAX_FRAME_BYTES,
        )?;
        let max_buffer_bytes = args::size_or(
            max_buffer_bytes,
            "max_buffer_bytes",
            0,
            lobfeed_core::sync::DEFAULT_MAX_BUFFER_BYTES,
        )?;
        let resync = match resync.filter(|r| !r.is_none()) {
            None => None,
            Some(value) => match value.extract::<String>().ok().as_deref() {
                Some("snapshot") => Some(ResyncBy::Snapshot),
                Some("resubscribe") => Some(ResyncBy::Resubscribe),
                _ => {
                    return Err(args::refuse(
                        value,
                        "resync",
                        "None, 'snapshot' or 'resubscribe'",
                    ))
                }
            },
        };
        let options = SessionOptions {
            max_frame_bytes,
            depth,
            resync,
            symbols: args::text_list(symbols, "symbols")?,
            max_buffer_bytes,
        };
        let inner = new_session(&venue, options).map_err(|e| match e {
            SessionError::UnknownVenue(_) => raise(py, "UnknownVenueError", e.to_string()),
            SessionError::UnsupportedResync { .. } => {
                raise(py, "UnsupportedOptionError", e.to_string())
            }
        })?;
        let feed_name = PyString::new(py, name.as_deref().unwrap_or(inner.venue())).unbind();
        Ok(Session {
            venue: inner.venue(),
            feed_name,
            depth,
            resync_by: resync,
            inner,
            events: Vec::with_capacity(16),
            names: Vec::new(),
            versions: Vec::new(),
            statuses: Vec::new(),
            replier: None,
            replies: 0,
            replies_unanswered: 0,
            pending_replies: Vec::new(),
            routes: None,
            last_event: None,
        })
    }

    /// Where `receive_routed` sends events from now on: `table` maps an event class to the
    /// callable taking it (None: dropped); other classes go to `fallback` (None: dropped).
    /// `on_error(handler, event, exception)` gets what a handler raised; `on_rejected(error)`
    /// the `FrameError` of a frame that failed, carrying the events it made.
    #[pyo3(signature = (table, fallback, on_error, on_rejected))]
    fn set_routes(
        &mut self,
        table: &Bound<'_, PyDict>,
        fallback: Option<Bound<'_, PyAny>>,
        on_error: Bound<'_, PyAny>,
        on_rejected: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.routes = Some(Routes::new(table, fallback, on_error, on_rejected)?);
        Ok(())
    }

    /// `receive` that hands each event to its route (`set_routes`) instead of returning them,
    /// and a failed frame's error to `on_rejected` instead of raising it: the feed's hot path,
    /// called by the transport with no Python frame in between.
    #[pyo3(name = "receive_routed")]
    fn py_receive_routed(
        slf: &Bound<'_, Self>,
        frame: &Bound<'_, PyAny>,
        ts_ns: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let bytes = frame_bytes(frame)?;
        let ts_ns = args::ts_ns(ts_ns)?;
        let (routes, outcome) = {
            // Borrowed only while decoding: the handlers read views and call the session.
            let mut guard = slf.borrow_mut();
            let this = &mut *guard;
            let Some(routes) = this.routes.clone() else {
                return Err(config_error(
                    py,
                    "receive_routed before set_routes: no route for the events".to_owned(),
                ));
            };
            let outcome = match this.inner.receive(bytes, ts_ns, &mut this.events) {
                Ok(()) if this.events.is_empty() => return Ok(()),
                Ok(()) => {
                    let objects = Self::event_objects(slf, this)?;
                    this.last_event = objects.last().map(|o| o.clone().unbind());
                    Ok(objects)
                }
                Err(err) => Err(receive_error(py, &err, Self::drain(slf, this)?)),
            };
            (routes, outcome)
        };
        Self::answer(slf)?;
        match outcome {
            Ok(objects) => routes.deliver(objects),
            Err(rejected) => routes
                .on_rejected
                .call1(py, (rejected.into_value(py),))
                .map(drop),
        }
    }

    /// The last event `receive_routed` made since the previous call, if any.
    fn take_last_event(&mut self) -> Option<Py<PyAny>> {
        self.last_event.take()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.last_event)?;
        visit.call(&self.replier)?;
        if let Some(routes) = &self.routes {
            routes.traverse(&visit)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.last_event = None;
        self.replier = None;
        self.routes = None;
    }

    /// The feed's name, stamped on every event as `venue`: the `name` given, else the venue's.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.feed_name.clone_ref(py)
    }

    /// Levels a side the book views show (None: every level kept).
    #[getter]
    fn depth(&self) -> Option<usize> {
        self.depth
    }

    #[getter]
    fn venue(&self) -> &'static str {
        self.venue
    }

    /// How a symbol that lost sync gets a fresh book here: `"resubscribe"` (the venue sends it
    /// in-band: `NeedResubscribe`) or `"snapshot"` (a REST fetch: `NeedSnapshot`).
    #[getter]
    fn resync(&self) -> &'static str {
        let modes = self.inner.resync_modes();
        lobfeed_core::resync_name(self.resync_by.unwrap_or(modes[0]))
    }

    /// One websocket frame (bytes, or str) received at `ts_ns`; returns the events it caused.
    #[pyo3(name = "receive")]
    fn py_receive<'py>(
        slf: &Bound<'py, Self>,
        frame: &Bound<'py, PyAny>,
        ts_ns: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = frame_bytes(frame)?;
        let ts_ns = args::ts_ns(ts_ns)?;
        let events = {
            // One borrow for decoding and turning events into objects.
            let mut guard = slf.borrow_mut();
            let this = &mut *guard;
            let result = this.inner.receive(bytes, ts_ns, &mut this.events);
            Self::finish(slf, this, result)
        };
        Self::answer(slf)?;
        events
    }

    /// Many frames in one call, for replay and benchmarks: decoded and applied in Rust with no
    /// Python object per frame. Returns how many book updates were applied. Frames that fail
    /// are counted in `stats()["errors"]` (and resync their symbol) instead of raising.
    #[pyo3(name = "receive_batch")]
    fn py_receive_batch(
        &mut self,
        frames: Vec<Bound<'_, PyBytes>>,
        ts_ns: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let ts_ns = args::ts_ns(ts_ns)?;
        let mut updates = 0;
        for frame in &frames {
            self.events.clear();
            let _ = self
                .inner
                .receive(frame.as_bytes(), ts_ns, &mut self.events);
            updates += self
                .events
                .iter()
                .filter(|e| matches!(e, Event::BookUpdated { .. }))
                .count() as u64;
        }
        // Books moved without views being handed out: any older view must now refuse to read.
        let symbols = self.inner.symbols().len();
        self.versions.resize(symbols, 0);
        for v in &mut self.versions {
            *v += 1;
        }
        self.events.clear();
        Ok(updates)
    }

    /// A REST depth snapshot body for `symbol`, received at `ts_ns`.
    #[pyo3(name = "receive_snapshot")]
    fn py_receive_snapshot<'py>(
        slf: &Bound<'py, Self>,
        symbol: &str,
        body: &Bound<'py, PyAny>,
        ts_ns: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = frame_bytes(body)?;
        let ts_ns = args::ts_ns(ts_ns)?;
        let mut guard = slf.borrow_mut();
        let this = &mut *guard;
        let result = this
            .inner
            .receive_snapshot(symbol, bytes, ts_ns, &mut this.events);
        Self::finish(slf, this, result)
    }

    /// A view of the symbol's current book.
    fn book(slf: &Bound<'_, Self>, symbol: &str) -> PyResult<BookView> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let id = this
            .inner
            .symbols()
            .id(symbol)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(symbol.to_owned()))?;
        let name = this.symbol_name(py, id);
        let seq = this.sync(id).and_then(|s| s.last_seq);
        let version = this.version(id);
        let venue = this.feed_name.clone_ref(py);
        Ok(BookView::new(
            slf.clone().unbind(),
            venue,
            id,
            name,
            version,
            seq,
        ))
    }

    /// The venue's channel id of this symbol's book, where the venue has one (Bitfinex
    /// `chanId`, Kraken v1 `channelID`: what an unsubscribe names); None otherwise.
    fn channel(&self, symbol: &str) -> Option<u64> {
        self.inner.book_channel(symbol)
    }

    /// Symbols seen so far, as the venue spells them.
    fn symbols(&self) -> Vec<String> {
        self.inner.symbols().names().to_vec()
    }

    /// `"live"` or `"awaiting_snapshot"`.
    fn state(&self, symbol: &str) -> PyResult<&'static str> {
        let sync = self.sync_of(symbol)?;
        Ok(match sync.state() {
            SyncState::Live => "live",
            SyncState::AwaitingSnapshot => "awaiting_snapshot",
        })
    }

    /// What happened to a symbol: updates, snapshots, gaps, resyncs, checksums, errors.
    fn counters<'py>(&self, py: Python<'py>, symbol: &str) -> PyResult<Bound<'py, PyDict>> {
        let c = self.sync_of(symbol)?.counters;
        let dict = PyDict::new(py);
        for (key, value) in [
            ("updates", c.updates),
            ("snapshots", c.snapshots),
            ("gaps", c.gaps),
            ("resyncs", c.resyncs),
            ("stale_dropped", c.stale_dropped),
            ("stale_snapshots", c.stale_snapshots),
            ("buffer_dropped", c.buffer_dropped),
            ("checksums_checked", c.checksums_checked),
            ("checksum_mismatches", c.checksum_mismatches),
            ("errors", c.errors),
            ("crossed", c.crossed),
            ("ids_backwards", c.ids_backwards),
        ] {
            dict.set_item(key, value)?;
        }
        Ok(dict)
    }

    /// Frames received, ignored (acks, channels we do not keep) and rejected, for the session.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let dict = PyDict::new(py);
        dict.set_item("frames", s.frames)?;
        dict.set_item("ignored", s.ignored)?;
        dict.set_item("errors", s.errors)?;
        dict.set_item("unsubscribed", s.unsubscribed)?;
        dict.set_item("closing_notices", s.closing_notices)?;
        dict.set_item("replies", self.replies)?;
        dict.set_item("replies_unanswered", self.replies_unanswered)?;
        Ok(dict)
    }

    /// `replier(text)` is called, during `receive`, with each answer the venue asks this
    /// connection for (an application-level ping); None stops it. Without one, replies are
    /// only counted (`stats()["replies_unanswered"]`).
    #[pyo3(signature = (replier))]
    fn set_replier(&mut self, py: Python<'_>, replier: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(r) = &replier {
            if !r.is_callable() {
                return Err(config_error(
                    py,
                    format!(
                        "replier must be callable or None, not {}",
                        r.get_type().name()?
                    ),
                ));
            }
        }
        self.replier = replier.map(Bound::unbind);
        Ok(())
    }

    /// The health the I/O layer gives a symbol ("connecting", "stale", ...), shown by its
    /// views' `state`; None clears it. A symbol the session does not know is left alone.
    fn set_status(&mut self, symbol: &str, status: Option<Bound<'_, PyString>>) {
        let Some(id) = self.inner.symbols().id(symbol) else {
            return;
        };
        let symbols = self.inner.symbols().len();
        if self.statuses.len() < symbols {
            self.statuses.resize_with(symbols, || None);
        }
        self.statuses[id as usize] = status.map(Bound::unbind);
    }

    /// Every known symbol's status becomes "disconnected" (the connection dropped): one
    /// string shared by all, so hundreds of symbols cost a pointer each.
    fn mark_disconnected(&mut self, py: Python<'_>) {
        let word = pyo3::intern!(py, "disconnected");
        let symbols = self.inner.symbols().len();
        self.statuses.clear();
        self.statuses
            .resize_with(symbols, || Some(word.clone().unbind()));
    }
}

impl Session {
    fn sync_of(&self, symbol: &str) -> PyResult<&SymbolSync> {
        self.inner
            .symbols()
            .id(symbol)
            .and_then(|id| self.inner.symbols().sync(id))
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(symbol.to_owned()))
    }
}
