//! `BookView`: reads a symbol's book in the Rust session lazily, only what is asked for.
//!
//! A view is tied to the book as one update left it. Once the book moves on, reading the view
//! raises `StaleBookError` instead of quietly showing a later book under an earlier `seq`.
//!
//! A view shows at most the session's `depth` levels a side: venues that stream whole books
//! keep them whole (a delta may touch any level), but a user who asked for 5 levels sees 5.

use lobfeed_core::{Decimal, DecimalError, Level, Side, SymbolSync, SyncState};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::args;
use crate::errors::raise;
use crate::events::ReprValue;
use crate::session::Session;

/// One side's levels as a `(k, 2)` array of price and size.
type SideArray<'py> = Bound<'py, PyArray2<f64>>;

/// Levels a side when a read names no count.
const DEFAULT_LEVELS: usize = 10;

#[pyclass(frozen, module = "lobfeed._native")]
pub struct BookView {
    session: Py<Session>,
    /// The feed's name (the session's `name`), as events carry it.
    #[pyo3(get)]
    venue: Py<PyString>,
    id: u32,
    #[pyo3(get)]
    symbol: Py<PyString>,
    version: u64,
    #[pyo3(get)]
    seq: Option<u64>,
}

impl BookView {
    pub fn new(
        session: Py<Session>,
        venue: Py<PyString>,
        id: u32,
        symbol: Py<PyString>,
        version: u64,
        seq: Option<u64>,
    ) -> Self {
        BookView {
            session,
            venue,
            id,
            symbol,
            version,
            seq,
        }
    }

    fn with_sync<T>(&self, py: Python<'_>, f: impl FnOnce(&SymbolSync) -> T) -> PyResult<T> {
        self.with_shown(py, |sync, _| f(sync))
    }

    /// Reads the book with the most levels a side this view may show.
    fn with_shown<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&SymbolSync, usize) -> T,
    ) -> PyResult<T> {
        let session = self.session.bind(py).try_borrow().map_err(|_| {
            raise(
                py,
                "StaleBookError",
                "the session is busy with a frame".to_owned(),
            )
        })?;
        if session.version(self.id) != self.version {
            return Err(raise(
                py,
                "StaleBookError",
                match self.seq {
                    Some(seq) => format!(
                        "{}: the book has changed since this view (at seq {seq}) was made",
                        self.symbol.bind(py)
                    ),
                    None => format!(
                        "{}: the book has changed since this view was made",
                        self.symbol.bind(py)
                    ),
                },
            ));
        }
        let sync = session
            .sync(self.id)
            .ok_or_else(|| raise(py, "StaleBookError", "unknown symbol".to_owned()))?;
        Ok(f(sync, session.shown_depth()))
    }

    /// Best bid and best ask prices, when both sides have a level.
    fn best_prices(&self, py: Python<'_>) -> PyResult<Option<(Decimal, Decimal)>> {
        self.with_sync(py, |s| match (s.book.best_bid(), s.book.best_ask()) {
            (Some(b), Some(a)) => Some((b.price, a.price)),
            _ => None,
        })
    }

    /// Top levels of one side as `(price, size)`, at most `n` and at most the session's depth.
    fn top<T>(
        &self,
        py: Python<'_>,
        side: Side,
        n: Option<&Bound<'_, PyAny>>,
        each: impl FnMut(Level) -> T,
    ) -> PyResult<Vec<T>> {
        let n = levels_arg(n)?;
        self.with_shown(py, |s, shown| {
            s.book.levels(side).take(n.min(shown)).map(each).collect()
        })
    }
}

fn levels_arg(n: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    args::size_or(n, "n", 0, DEFAULT_LEVELS)
}

/// A `decimal.Decimal` of the exact digits.
fn py_decimal<'py>(py: Python<'py>, value: Decimal) -> PyResult<Bound<'py, PyAny>> {
    static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let mut buf = [0u8; 24];
    DECIMAL
        .import(py, "decimal", "Decimal")?
        .call1((value.format_into(&mut buf),))
}

/// `exact` as a `decimal.Decimal`, or where its digits do not fit a core `Decimal` (a half
/// needing a 19th digit after the point), `wide(context, bid, ask)`: the same sum done by
/// Python's decimal module in a context with room for every digit.
fn exact_or_wide<'py>(
    py: Python<'py>,
    exact: Result<Decimal, DecimalError>,
    (bid, ask): (Decimal, Decimal),
    wide: impl FnOnce(
        &Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(value) = exact {
        return py_decimal(py, value);
    }
    // Two 19-digit mantissas 18 digits apart, plus one digit for a half, fit in 60 digits.
    let settings = PyDict::new(py);
    settings.set_item("prec", 60)?;
    let context = py
        .import("decimal")?
        .getattr("Context")?
        .call((), Some(&settings))?;
    wide(&context, py_decimal(py, bid)?, py_decimal(py, ask)?)
}

fn exact<'py>(py: Python<'py>, level: Level) -> PyResult<Bound<'py, PyTuple>> {
    let mut buf = [0u8; 24];
    let price = PyString::new(py, level.price.format_into(&mut buf));
    let mut buf = [0u8; 24];
    let qty = PyString::new(py, level.qty.format_into(&mut buf));
    PyTuple::new(py, [price, qty])
}

fn float_pair(level: Level) -> (f64, f64) {
    (level.price.to_f64(), level.qty.to_f64())
}

/// Levels as `[price, size, price, size, ...]`: the rows of a `(k, 2)` array.
fn flat(levels: impl Iterator<Item = Level>) -> Vec<f64> {
    let mut values = Vec::with_capacity(2 * levels.size_hint().0);
    for level in levels {
        values.push(level.price.to_f64());
        values.push(level.qty.to_f64());
    }
    values
}

fn side_array(py: Python<'_>, values: Vec<f64>) -> PyResult<SideArray<'_>> {
    let rows = values.len() / 2;
    let array = Array2::from_shape_vec((rows, 2), values)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok(array.into_pyarray(py))
}

fn exact_list<'py>(
    py: Python<'py>,
    levels: impl Iterator<Item = Level>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for level in levels {
        list.append(exact(py, level)?)?;
    }
    Ok(list)
}

#[pymethods]
impl BookView {
    /// Best bid as `(price, size)` floats, or None.
    fn best_bid(&self, py: Python<'_>) -> PyResult<Option<(f64, f64)>> {
        self.with_sync(py, |s| s.book.best_bid().map(float_pair))
    }

    /// Best ask as `(price, size)` floats, or None.
    fn best_ask(&self, py: Python<'_>) -> PyResult<Option<(f64, f64)>> {
        self.with_sync(py, |s| s.book.best_ask().map(float_pair))
    }

    /// Best bid as `(price, size)` strings with the venue's digits, or None.
    fn best_bid_exact<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.with_sync(py, |s| s.book.best_bid())?
            .map(|l| exact(py, l))
            .transpose()
    }

    /// Best ask as `(price, size)` strings with the venue's digits, or None.
    fn best_ask_exact<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.with_sync(py, |s| s.book.best_ask())?
            .map(|l| exact(py, l))
            .transpose()
    }

    /// Top `n` bids, best first, as `(price, size)` strings (at most the session's depth).
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn bids<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let levels = self.top(py, Side::Bid, n, |l| l)?;
        exact_list(py, levels.into_iter())
    }

    /// Top `n` asks, best first, as `(price, size)` strings (at most the session's depth).
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn asks<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let levels = self.top(py, Side::Ask, n, |l| l)?;
        exact_list(py, levels.into_iter())
    }

    /// Top `n` bids as `(price, size)` floats.
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn bids_float(
        &self,
        py: Python<'_>,
        n: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(f64, f64)>> {
        self.top(py, Side::Bid, n, float_pair)
    }

    /// Top `n` asks as `(price, size)` floats.
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn asks_float(
        &self,
        py: Python<'_>,
        n: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(f64, f64)>> {
        self.top(py, Side::Ask, n, float_pair)
    }

    /// Top `n` levels as two float64 numpy arrays `(bids, asks)`, each of shape `(k, 2)`:
    /// column 0 the price, column 1 the size, best level first; `k` is at most `n` and the
    /// session's depth, fewer when the side holds fewer levels. Filled in Rust, one buffer a
    /// side, no Python object per level.
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn to_numpy<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(SideArray<'py>, SideArray<'py>)> {
        let n = levels_arg(n)?;
        let (bids, asks) = self.with_shown(py, |s, shown| {
            let take = n.min(shown);
            (
                flat(s.book.bids().take(take)),
                flat(s.book.asks().take(take)),
            )
        })?;
        Ok((side_array(py, bids)?, side_array(py, asks)?))
    }

    /// Best ask minus best bid as a float, or None when a side is empty. Binary floats cannot
    /// hold most decimal prices: a 0.01 spread may read 0.009999999999763531 here, where
    /// `spread_decimal` gives exactly `Decimal("0.01")`.
    fn spread(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_sync(py, |s| match (s.book.best_bid(), s.book.best_ask()) {
            (Some(b), Some(a)) => Some(a.price.to_f64() - b.price.to_f64()),
            _ => None,
        })
    }

    /// Midpoint of best bid and best ask as a float, or None when a side is empty (see
    /// `mid_decimal` for the exact value).
    fn mid(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_sync(py, |s| match (s.book.best_bid(), s.book.best_ask()) {
            (Some(b), Some(a)) => Some((a.price.to_f64() + b.price.to_f64()) / 2.0),
            _ => None,
        })
    }

    /// Best ask minus best bid, exact, as a `decimal.Decimal`; None when a side is empty.
    fn spread_decimal<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((bid, ask)) = self.best_prices(py)? else {
            return Ok(None);
        };
        exact_or_wide(py, ask.checked_sub(bid), (bid, ask), |context, bid, ask| {
            context.call_method1("subtract", (ask, bid))
        })
        .map(Some)
    }

    /// `(best bid + best ask) / 2`, exact, as a `decimal.Decimal` (one more digit than the
    /// prices when their sum is odd); None when a side is empty.
    fn mid_decimal<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((bid, ask)) = self.best_prices(py)? else {
            return Ok(None);
        };
        exact_or_wide(py, bid.midpoint(ask), (bid, ask), |context, bid, ask| {
            let sum = context.call_method1("add", (bid, ask))?;
            context.call_method1("divide", (sum, 2))
        })
        .map(Some)
    }

    /// Number of levels on each side, `(bids, asks)`, counting at most the session's depth.
    fn depth(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        self.with_shown(py, |s, shown| {
            (
                s.book.len(Side::Bid).min(shown),
                s.book.len(Side::Ask).min(shown),
            )
        })
    }

    /// Whether best bid >= best ask (never true of a synced book).
    #[getter]
    fn crossed(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_sync(py, |s| s.book.is_crossed())
    }

    /// The symbol's status as the I/O layer set it (`Session.set_status`), else `"live"` when
    /// its book is in sync and `"syncing"` while a snapshot is awaited. Current, not as of the
    /// view's update: a view is how a printer asks "what is this book doing now".
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyString>> {
        let session = self.session.bind(py).try_borrow().map_err(|_| {
            raise(
                py,
                "StaleBookError",
                "the session is busy with a frame".to_owned(),
            )
        })?;
        if let Some(status) = session.status(self.id) {
            return Ok(status.clone_ref(py));
        }
        let word = match session.sync(self.id).map(SymbolSync::state) {
            Some(SyncState::Live) => pyo3::intern!(py, "live"),
            _ => pyo3::intern!(py, "syncing"),
        };
        Ok(word.clone().unbind())
    }

    /// Whether the view still shows the current book.
    #[getter]
    fn is_current(&self, py: Python<'_>) -> bool {
        self.session
            .bind(py)
            .try_borrow()
            .map(|s| s.version(self.id) == self.version)
            .unwrap_or(false)
    }

    /// Plain Python copy of the top `n` levels, safe to keep after the book moves on.
    #[pyo3(signature = (n=None), text_signature = "($self, n=10)")]
    fn snapshot<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("symbol", self.symbol.clone_ref(py))?;
        dict.set_item("seq", self.seq)?;
        dict.set_item("bids", self.bids(py, n)?)?;
        dict.set_item("asks", self.asks(py, n)?)?;
        Ok(dict)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "BookView(venue={}, symbol={}, seq={})",
            self.venue.bind(py).to_string().as_str().repr(),
            self.symbol.bind(py).to_string().as_str().repr(),
            self.seq.repr()
        )
    }
}
