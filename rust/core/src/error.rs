//! Typed errors of the core. A bad frame is an error for that frame (and, where its symbol is
//! known, a resync of that symbol); it never panics and never touches other symbols.

use crate::book::BookError;
use crate::decimal::DecimalError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is {len} bytes, over the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("bad number in field `{field}`: {error}")]
    BadNumber {
        field: &'static str,
        error: DecimalError,
    },
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("book update rejected: {0}")]
    Book(#[from] BookError),
    #[error("the venue reported an error: {0}")]
    VenueError(String),
}

/// A frame error with the symbol it concerns, when the frame got far enough to name one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ReceiveError {
    pub symbol: Option<String>,
    pub error: FrameError,
}

impl ReceiveError {
    pub fn new(symbol: Option<String>, error: FrameError) -> Self {
        ReceiveError { symbol, error }
    }
}

impl From<FrameError> for ReceiveError {
    fn from(error: FrameError) -> Self {
        ReceiveError {
            symbol: None,
            error,
        }
    }
}

impl From<serde_json::Error> for FrameError {
    fn from(e: serde_json::Error) -> Self {
        FrameError::Json(e.to_string())
    }
}
