//! One module per venue: how its frames decode and how its book ids chain.

pub mod ascendex;
pub mod binance;
pub mod bitfinex;
pub mod bitget;
pub mod bitmex;
pub mod bybit;
pub mod coinbase;
pub mod deribit;
pub mod gateio;
pub mod gemini;
pub mod htx;
pub mod json;
pub mod kraken;
pub mod kraken_futures;
pub mod kucoin;
pub mod okx;
pub mod publication;
pub mod scan;
pub mod session_core;
pub mod time;
pub mod trades;
pub mod upbit;

use crate::error::{FrameError, ReceiveError};
use crate::event::Event;
use crate::sync::{ResyncBy, Symbols};
use session_core::SessionCore;

/// Frames larger than this are refused before parsing (no venue sends book frames near it).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    pub max_frame_bytes: usize,
    /// Book depth the subscription asked for; venues whose checksum assumes it truncate to it.
    pub depth: Option<usize>,
    /// How a symbol that lost sync gets a fresh book: `None` is the venue's own way (the first
    /// of `Session::resync_modes`). `new_session` refuses a way the venue does not offer, such
    /// as `ResyncBy::Snapshot` for a venue whose books only come in-band.
    pub resync: Option<ResyncBy>,
    /// The subscribed symbols (any ASCII case); frames for others are counted in
    /// `SessionStats::unsubscribed` and dropped before any state is made for them. `None`
    /// takes every symbol. Gemini v1 sessions are one symbol already and ignore it.
    pub symbols: Option<Vec<String>>,
    /// Bound on each symbol's buffer of deltas awaiting a snapshot, in estimated bytes.
    pub max_buffer_bytes: usize,
}

impl SessionOptions {
    /// The symbol table these options call for (subscribed symbols, buffer bound).
    pub fn symbols_table(&self) -> Symbols {
        Symbols::configured(self.symbols.as_deref(), self.max_buffer_bytes)
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            depth: None,
            resync: None,
            symbols: None,
            max_buffer_bytes: crate::sync::DEFAULT_MAX_BUFFER_BYTES,
        }
    }
}

/// Frame counters of a whole session (per-symbol counters live in `SymbolSync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub frames: u64,
    /// Frames understood but carrying nothing we keep (subscription acks, other channels).
    pub ignored: u64,
    pub errors: u64,
    /// Frames (and snapshots) dropped because their symbol was not in `SessionOptions::symbols`.
    pub unsubscribed: u64,
    /// Notices that the venue will soon close this connection (OKX `notice` 64008, a service
    /// upgrade): the I/O layer replaces the connection before it goes.
    pub closing_notices: u64,
}

/// The sans-I/O interface every venue implements: bytes in, events out.
pub trait Session: Send {
    fn venue(&self) -> &'static str;

    /// One websocket frame as received. Events are appended to `out`; on error, `out` still
    /// holds whatever the frame caused before it failed (for example a symbol's resync request).
    fn receive(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.stats_mut().frames += 1;
        let result = self.receive_frame(frame, ts_ns, out);
        if result.is_err() {
            self.stats_mut().errors += 1;
        }
        result
    }

    /// The venue's decoding of one frame; `receive` wraps it with the frame counters.
    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError>;

    /// A REST snapshot body for `symbol`, fetched because of a `NeedSnapshot` (or unsolicited).
    /// Venues whose books only come in-band refuse it: the I/O layer resubscribes instead.
    fn receive_snapshot(
        &mut self,
        symbol: &str,
        _body: &[u8],
        _ts_ns: u64,
        _out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        Err(ReceiveError::new(
            Some(symbol.to_owned()),
            FrameError::Invalid(format!(
                "{} books come in-band: resubscribe instead of fetching a snapshot",
                self.venue()
            )),
        ))
    }

    /// The ways this venue's symbols can resync, its default first: most venues send a fresh
    /// book in-band when resubscribed; Binance has only the REST snapshot; OKX has both.
    fn resync_modes(&self) -> &'static [ResyncBy] {
        &[ResyncBy::Resubscribe]
    }

    /// The venue's channel id of `symbol`'s book, where the venue has one (Bitfinex `chanId`,
    /// Kraken v1 `channelID`): what its unsubscribe request names.
    fn book_channel(&self, _symbol: &str) -> Option<u64> {
        None
    }

    /// What every session holds alike: symbols, counters, options.
    fn core(&self) -> &SessionCore;

    fn core_mut(&mut self) -> &mut SessionCore;

    fn symbols(&self) -> &Symbols {
        &self.core().symbols
    }

    fn stats(&self) -> SessionStats {
        self.core().stats()
    }

    fn stats_mut(&mut self) -> &mut SessionStats {
        &mut self.core_mut().stats
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown venue {0:?}; known: {known}", known = VENUES.join(", "))]
pub struct UnknownVenue(pub String);

/// Why `new_session` could not make a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    UnknownVenue(#[from] UnknownVenue),
    /// `SessionOptions::resync` asked for a way the venue does not offer.
    #[error("{venue} cannot resync by {} (it offers: {})", resync_name(*.resync), names(.offered))]
    UnsupportedResync {
        venue: &'static str,
        resync: ResyncBy,
        offered: &'static [ResyncBy],
    },
}

/// The word for a way to resync, as the Python binding spells it.
pub fn resync_name(resync: ResyncBy) -> &'static str {
    match resync {
        ResyncBy::Snapshot => "snapshot",
        ResyncBy::Resubscribe => "resubscribe",
    }
}

fn names(modes: &[ResyncBy]) -> String {
    modes
        .iter()
        .map(|m| resync_name(*m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one list of venues: each name and how its session is made. `VENUES` and
/// `new_session` both come from it, so a new venue is one line here.
macro_rules! registry {
    ($($name:literal => $make:expr,)*) => {
        pub const VENUES: &[&str] = &[$($name),*];

        fn make_session(venue: &str, options: SessionOptions) -> Option<Box<dyn Session>> {
            match venue {
                $($name => Some(Box::new(($make)(options))),)*
                _ => None,
            }
        }
    };
}

registry! {
    "binance" => |o| binance::BinanceSession::new(binance::Market::Spot, o),
    "binance-usdm" => |o| binance::BinanceSession::new(binance::Market::UsdM, o),
    "binance-coinm" => |o| binance::BinanceSession::new(binance::Market::CoinM, o),
    "okx" => okx::OkxSession::new,
    "kraken" => kraken::KrakenSession::new,
    "gemini" => gemini::GeminiSession::new,
    "bitfinex" => bitfinex::BitfinexSession::new,
    "bybit" => bybit::BybitSession::new,
    "coinbase" => coinbase::CoinbaseSession::new,
    "kucoin" => kucoin::KucoinSession::new,
    "ascendex" => ascendex::AscendexSession::new,
    "htx-swap" => htx::HtxSession::new,
    "upbit" => upbit::UpbitSession::new,
    "gateio" => |o| gateio::GateSession::new(gateio::Market::Spot, o),
    "gateio-futures" => |o| gateio::GateSession::new(gateio::Market::Futures, o),
    "bitget" => bitget::BitgetSession::new,
    "deribit" => deribit::DeribitSession::new,
    "bitmex" => bitmex::BitmexSession::new,
    "kraken-futures" => kraken_futures::KrakenFuturesSession::new,
}

/// A session for `venue` (a name of `VENUES`, or `gemini-v1:SYMBOL`).
pub fn new_session(venue: &str, options: SessionOptions) -> Result<Box<dyn Session>, SessionError> {
    let resync_option = options.resync;
    let session: Box<dyn Session> = match venue.strip_prefix(gemini::V1_PREFIX) {
        // Gemini v1 streams one symbol per connection: `gemini-v1:BTCUSD`.
        Some(symbol) if !symbol.is_empty() => {
            Box::new(gemini::GeminiV1Session::new(symbol, options))
        }
        _ => make_session(venue, options).ok_or_else(|| UnknownVenue(venue.to_owned()))?,
    };
    if let Some(resync) = resync_option {
        let offered = session.resync_modes();
        if !offered.contains(&resync) {
            return Err(SessionError::UnsupportedResync {
                venue: session.venue(),
                resync,
                offered,
            });
        }
    }
    Ok(session)
}

/// Refuses a frame over the session's size limit before anything reads it.
#[inline]
pub fn check_frame_size(frame: &[u8], max: usize) -> Result<(), FrameError> {
    if frame.len() > max {
        return Err(FrameError::Oversized {
            len: frame.len(),
            max,
        });
    }
    Ok(())
}

/// A required decimal field of a decoded frame, with typed errors for absent and bad values.
pub fn decimal_field(
    field: &'static str,
    text: Option<&str>,
) -> Result<crate::decimal::Decimal, FrameError> {
    let text = text.ok_or(FrameError::MissingField(field))?;
    crate::decimal::Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// Milliseconds since the epoch, as venues stamp events, to nanoseconds.
#[inline]
pub fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_resync(resync: Option<ResyncBy>) -> SessionOptions {
        SessionOptions {
            resync,
            ..SessionOptions::default()
        }
    }

    #[test]
    fn resync_choice_is_honoured_or_refused() {
        for venue in VENUES {
            let session = new_session(venue, SessionOptions::default()).unwrap();
            let offered = session.resync_modes();
            // The venue's default is always accepted when asked for by name.
            assert!(
                new_session(venue, with_resync(Some(offered[0]))).is_ok(),
                "{venue}"
            );
            for mode in [ResyncBy::Snapshot, ResyncBy::Resubscribe] {
                let result = new_session(venue, with_resync(Some(mode)));
                assert_eq!(result.is_ok(), offered.contains(&mode), "{venue} {mode:?}");
            }
        }
        assert_eq!(
            new_session("okx", SessionOptions::default())
                .unwrap()
                .resync_modes(),
            &[ResyncBy::Resubscribe, ResyncBy::Snapshot]
        );
        let Err(err) = new_session("kraken", with_resync(Some(ResyncBy::Snapshot))) else {
            panic!("kraken has no REST snapshot")
        };
        assert_eq!(
            err,
            SessionError::UnsupportedResync {
                venue: "kraken",
                resync: ResyncBy::Snapshot,
                offered: &[ResyncBy::Resubscribe],
            }
        );
        assert_eq!(
            err.to_string(),
            "kraken cannot resync by snapshot (it offers: resubscribe)"
        );
        assert!(matches!(
            new_session("nasdaq", SessionOptions::default()),
            Err(SessionError::UnknownVenue(_))
        ));
    }
}
