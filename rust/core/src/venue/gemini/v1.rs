//! The Gemini v1 session: one connection, one symbol, `socket_sequence` checked on every frame.

use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::session_core::SessionCore;
use crate::venue::trades::{RawTrade, TradeCursor};
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use super::wire::{self, Buffers, V1Fields};

pub struct GeminiV1Session {
    core: SessionCore,
    symbol: SymbolId,
    /// The `socket_sequence` the next frame must carry.
    expected_seq: u64,
    /// A frame failed to decode: it may have used up one sequence number.
    allow_skip: bool,
    trades_emitted: TradeCursor,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
}

impl GeminiV1Session {
    pub fn new(symbol: &str, options: SessionOptions) -> Self {
        // The connection is this one symbol's: a subscription list has nothing to filter.
        let mut core = SessionCore::new(SessionOptions {
            symbols: None,
            ..options
        });
        let id = core
            .intern(symbol, ResyncBy::Resubscribe, None)
            .expect("no subscription list, so every symbol is taken");
        GeminiV1Session {
            core,
            symbol: id,
            expected_seq: 0,
            allow_skip: false,
            trades_emitted: TradeCursor::default(),
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(8),
        }
    }

    fn owned_name(&self) -> Option<String> {
        Some(self.core.symbols.name(self.symbol).to_owned())
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let id = self.symbol;
        check_frame_size(frame, self.core.options.max_frame_bytes)
            .map_err(|e| ReceiveError::new(self.owned_name(), e))?;
        self.levels.clear();
        self.trades.clear();
        let mut fields = V1Fields::default();
        let buffers = Buffers {
            levels: &mut self.levels,
            trades: &mut self.trades,
        };
        if let Err(error) = wire::decode_v1(frame, &mut fields, buffers) {
            self.allow_skip = true;
            if fields.kind != Some("heartbeat") {
                // Every other frame of the connection may have changed this symbol's book.
                if let Some(sync) = self.core.symbols.sync_mut(id) {
                    sync.on_bad_frame(id, &error, out);
                }
            }
            return Err(ReceiveError::new(self.owned_name(), error));
        }

        if let Some(seq) = fields.socket_sequence {
            self.check_sequence(seq, out);
        }
        if fields.error.is_error() {
            // The connection is this symbol's: the error concerns it, but changes no book.
            let name = self.core.symbols.name(id);
            return Err(fields.error.to_receive_error(Some(name)));
        }
        match fields.kind {
            Some("update") => self.on_update(&fields, ts_ns, out),
            // heartbeat, unknown kinds: understood, not kept.
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// `socket_sequence` is 0 on a new connection and +1 per frame; anything else lost frames.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        let expected = self.expected_seq;
        let skipped_ok = self.allow_skip && seq == expected.saturating_add(1);
        self.allow_skip = false;
        self.expected_seq = seq.saturating_add(1);
        if seq == 0 || seq == expected || skipped_ok {
            return;
        }
        let id = self.symbol;
        if let Some(sync) = self.core.symbols.sync_mut(id) {
            sync.on_gap(id, expected, seq, out);
        }
    }

    fn on_update(
        &mut self,
        f: &V1Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let id = self.symbol;
        let exchange_ts_ms = f
            .timestampms
            .or(f.timestamp.map(|s| s.saturating_mul(1000)))
            .unwrap_or(0);
        let exchange_ts = ms_to_ns(exchange_ts_ms);
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("created with the session");
        let first_event = out.len();
        let result = if f.initial {
            let book = Snapshot {
                symbol: id,
                id: None,
                levels: &self.levels,
                exchange_ts_ns: exchange_ts,
                ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, book, out)
        } else if !self.levels.is_empty() {
            sync.on_unsequenced_delta(id, &self.levels, exchange_ts, ts_ns, out)
                .map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            let error = FrameError::from(e);
            sync.on_bad_frame(id, &error, out);
            return Err(ReceiveError::new(self.owned_name(), error));
        }
        if let Some(seq) = f.socket_sequence {
            stamp_seq(&mut out[first_event..], seq);
            if f.initial || !self.levels.is_empty() {
                sync.last_seq = Some(seq);
            }
        }
        for t in self.trades.iter_mut() {
            t.ts_ms = exchange_ts_ms;
        }
        if f.initial {
            self.trades_emitted
                .history(&mut self.trades, id, ts_ns, out);
        } else {
            for t in &self.trades {
                self.trades_emitted.live(t, id, ts_ns, out);
            }
        }
        Ok(())
    }
}

/// Gives `BookUpdated`/`Resynced` events the connection's sequence number.
fn stamp_seq(events: &mut [Event], seq: u64) {
    for ev in events {
        match ev {
            Event::BookUpdated { seq: s, .. } | Event::Resynced { seq: s, .. } if s.is_none() => {
                *s = Some(seq)
            }
            _ => {}
        }
    }
}

impl Session for GeminiV1Session {
    fn venue(&self) -> &'static str {
        "gemini-v1"
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
