//! Event objects handed to Python: small frozen classes whose exact numbers become strings only
//! when read. Every one names its feed (`venue`: the name the Session was given, so
//! `bybit-spot` and `bybit` differ though one decoder reads both) and its `symbol`.

use std::fmt::Display;

use lobfeed_core::{Decimal, TradeSide};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::session::Session;
use crate::view::BookView;

/// How a field reads in a repr: Python's spelling (`None`, quoted text), never Rust's `Some(..)`.
pub trait ReprValue {
    fn repr(&self) -> String;
}

impl ReprValue for u64 {
    fn repr(&self) -> String {
        self.to_string()
    }
}

impl ReprValue for u32 {
    fn repr(&self) -> String {
        self.to_string()
    }
}

impl ReprValue for bool {
    fn repr(&self) -> String {
        if *self { "True" } else { "False" }.to_owned()
    }
}

impl ReprValue for &str {
    /// Python's quoting for the plain text names and ids are; anything needing escapes gets
    /// Rust's escaped form (still valid Python).
    fn repr(&self) -> String {
        if self.contains(['\'', '\\']) || self.chars().any(char::is_control) {
            format!("{self:?}")
        } else {
            format!("'{self}'")
        }
    }
}

impl ReprValue for String {
    fn repr(&self) -> String {
        self.as_str().repr()
    }
}

impl<T: ReprValue> ReprValue for Option<T> {
    fn repr(&self) -> String {
        self.as_ref()
            .map_or_else(|| "None".to_owned(), ReprValue::repr)
    }
}

/// A Python string field as a repr shows it.
fn quoted(py: Python<'_>, text: &Py<PyString>) -> String {
    text.bind(py).to_string().as_str().repr()
}

/// An exact number as a repr shows it: its digits, quoted as the `str` the getter returns.
fn digits(value: impl Display) -> String {
    value.to_string().as_str().repr()
}

#[pyclass(frozen, module = "lobfeed._native")]
pub struct BookUpdate {
    #[pyo3(get)]
    pub venue: Py<PyString>,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub seq: Option<u64>,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
    pub session: Py<Session>,
    pub symbol_id: u32,
    pub version: u64,
}

#[pymethods]
impl BookUpdate {
    /// A view of the book as this update left it.
    #[getter]
    fn book(&self, py: Python<'_>) -> BookView {
        BookView::new(
            self.session.clone_ref(py),
            self.venue.clone_ref(py),
            self.symbol_id,
            self.symbol.clone_ref(py),
            self.version,
            self.seq,
        )
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "BookUpdate(venue={}, symbol={}, seq={}, ts_ns={})",
            quoted(py, &self.venue),
            quoted(py, &self.symbol),
            self.seq.repr(),
            self.ts_ns
        )
    }
}

macro_rules! symbol_event {
    ($name:ident { $($field:ident : $ty:ty),* }) => {
        #[pyclass(frozen, module = "lobfeed._native")]
        pub struct $name {
            #[pyo3(get)]
            pub venue: Py<PyString>,
            #[pyo3(get)]
            pub symbol: Py<PyString>,
            $(#[pyo3(get)] pub $field: $ty,)*
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self, py: Python<'_>) -> String {
                let mut text = format!(
                    "{}(venue={}, symbol={}",
                    stringify!($name),
                    quoted(py, &self.venue),
                    quoted(py, &self.symbol)
                );
                $(text.push_str(&format!(", {}={}", stringify!($field), self.$field.repr()));)*
                text.push(')');
                text
            }
        }
    };
}

symbol_event!(NeedSnapshot {});
symbol_event!(NeedResubscribe {});
symbol_event!(GapDetected {
    expected: u64,
    received: u64
});
symbol_event!(ChecksumMismatch {
    expected: u32,
    computed: u32
});
symbol_event!(Resynced { seq: Option<u64> });
// `reason`: "gap", "checksum", "bad-frame", "rejected", "crossed" or "ids-backwards";
// `detail`: a short sentence such as "bid 2683.10 >= ask 2682.51".
symbol_event!(SyncLost {
    reason: &'static str,
    detail: String
});

fn side_name(side: Option<TradeSide>) -> Option<&'static str> {
    side.map(|s| match s {
        TradeSide::Buy => "buy",
        TradeSide::Sell => "sell",
    })
}

/// A trade, normalized across venues; prices and sizes keep the venue's digits.
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Trade {
    #[pyo3(get)]
    pub venue: Py<PyString>,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    pub price: Decimal,
    pub size: Decimal,
    pub side: Option<TradeSide>,
    #[pyo3(get)]
    pub trade_id: String,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
    /// Part of the history a venue sends on subscribe (Bitfinex, Gemini), not a live trade.
    #[pyo3(get)]
    pub is_snapshot: bool,
}

#[pymethods]
impl Trade {
    #[getter]
    fn price(&self) -> String {
        self.price.to_string()
    }
    #[getter]
    fn size(&self) -> String {
        self.size.to_string()
    }
    #[getter]
    fn price_float(&self) -> f64 {
        self.price.to_f64()
    }
    #[getter]
    fn size_float(&self) -> f64 {
        self.size.to_f64()
    }
    /// The taker's side, `"buy"` or `"sell"`, where the venue tells it.
    #[getter]
    fn side(&self) -> Option<&'static str> {
        side_name(self.side)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Trade(venue={}, symbol={}, price={}, size={}, side={}, trade_id={}, is_snapshot={})",
            quoted(py, &self.venue),
            quoted(py, &self.symbol),
            digits(self.price),
            digits(self.size),
            side_name(self.side).repr(),
            self.trade_id.repr(),
            self.is_snapshot.repr()
        )
    }
}

/// An OHLCV candle; `closed` tells whether its interval has ended.
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Candle {
    #[pyo3(get)]
    pub venue: Py<PyString>,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub interval: String,
    #[pyo3(get)]
    pub open_ts_ns: u64,
    #[pyo3(get)]
    pub close_ts_ns: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    #[pyo3(get)]
    pub trades: Option<u64>,
    #[pyo3(get)]
    pub closed: bool,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
    /// Part of the history a venue sends on subscribe (Coinbase), not a live candle.
    #[pyo3(get)]
    pub is_snapshot: bool,
}

#[pymethods]
impl Candle {
    #[getter]
    fn open(&self) -> String {
        self.open.to_string()
    }
    #[getter]
    fn high(&self) -> String {
        self.high.to_string()
    }
    #[getter]
    fn low(&self) -> String {
        self.low.to_string()
    }
    #[getter]
    fn close(&self) -> String {
        self.close.to_string()
    }
    #[getter]
    fn volume(&self) -> String {
        self.volume.to_string()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Candle(venue={}, symbol={}, interval={}, open_ts_ns={}, o={} h={} l={} c={} v={}, \
             closed={}, is_snapshot={})",
            quoted(py, &self.venue),
            quoted(py, &self.symbol),
            self.interval.repr(),
            self.open_ts_ns,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.closed.repr(),
            self.is_snapshot.repr()
        )
    }
}

/// The venue's own best bid/ask at an update id (Binance `bookTicker`).
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Quote {
    #[pyo3(get)]
    pub venue: Py<PyString>,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub seq: Option<u64>,
    pub bid_price: Decimal,
    pub bid_size: Decimal,
    pub ask_price: Decimal,
    pub ask_size: Decimal,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
}

#[pymethods]
impl Quote {
    #[getter]
    fn bid_price(&self) -> String {
        self.bid_price.to_string()
    }
    #[getter]
    fn bid_size(&self) -> String {
        self.bid_size.to_string()
    }
    #[getter]
    fn ask_price(&self) -> String {
        self.ask_price.to_string()
    }
    #[getter]
    fn ask_size(&self) -> String {
        self.ask_size.to_string()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Quote(venue={}, symbol={}, seq={}, bid={}x{}, ask={}x{})",
            quoted(py, &self.venue),
            quoted(py, &self.symbol),
            self.seq.repr(),
            self.bid_price,
            self.bid_size,
            self.ask_price,
            self.ask_size
        )
    }
}
