//! Arguments from Python, checked here so that a mistake is a `ConfigError` naming the argument
//! and its value, never pyo3's `OverflowError`/`TypeError` "while processing 'n'".
//!
//! Arguments with a default arrive as `Option` (`None`: the default) and the methods restate
//! their Python signature in `text_signature`, so the defaults users see stay the real ones.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyList, PyString, PyTuple};

use crate::errors::config_error;

pub fn shown(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "an object without a repr".to_owned())
}

/// `name must be <allowed>, not <value>`.
pub fn refuse(value: &Bound<'_, PyAny>, name: &str, allowed: &str) -> PyErr {
    config_error(
        value.py(),
        format!("{name} must be {allowed}, not {}", shown(value)),
    )
}

/// A whole number from `min` to `usize::MAX`. `True`/`False` are refused: a flag is never a
/// count.
fn counted(value: &Bound<'_, PyAny>, min: u64) -> Option<usize> {
    if value.is_instance_of::<PyBool>() {
        return None;
    }
    let n = value.extract::<u64>().ok().filter(|n| *n >= min)?;
    usize::try_from(n).ok()
}

/// A size: a whole number at least `min`.
pub fn size(value: &Bound<'_, PyAny>, name: &str, min: u64) -> PyResult<usize> {
    counted(value, min).ok_or_else(|| refuse(value, name, &format!("a whole number >= {min}")))
}

/// A size that may be None (no limit).
pub fn optional_size(
    value: Option<&Bound<'_, PyAny>>,
    name: &str,
    min: u64,
) -> PyResult<Option<usize>> {
    match value {
        Some(v) if !v.is_none() => counted(v, min)
            .map(Some)
            .ok_or_else(|| refuse(v, name, &format!("None or a whole number >= {min}"))),
        _ => Ok(None),
    }
}

/// An optional argument with a default: `None` (or left out) gives `default`.
pub fn size_or(
    value: Option<&Bound<'_, PyAny>>,
    name: &str,
    min: u64,
    default: usize,
) -> PyResult<usize> {
    value.map_or(Ok(default), |v| size(v, name, min))
}

/// Nanoseconds since the epoch, as the I/O layer stamps a frame.
pub fn ts_ns(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    value
        .extract::<u64>()
        .map_err(|_| refuse(value, "ts_ns", "a whole number of nanoseconds >= 0"))
}

/// A `str` argument, or None.
pub fn text(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_none() {
        return Ok(None);
    }
    match value.cast::<PyString>() {
        Ok(s) => Ok(Some(s.to_str()?.to_owned())),
        Err(_) => Err(refuse(value, name, "a str")),
    }
}

/// A list (or tuple) of `str`, or None. A lone `str` is refused rather than read as letters.
pub fn text_list(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Vec<String>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_none() {
        return Ok(None);
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(refuse(value, name, "a list of str"));
    };
    items
        .iter()
        .map(|item| match item.cast::<PyString>() {
            Ok(s) => Ok(s.to_str()?.to_owned()),
            Err(_) => Err(config_error(
                value.py(),
                format!("{name} must be a list of str; {} is not a str", shown(item)),
            )),
        })
        .collect::<PyResult<Vec<String>>>()
        .map(Some)
}
