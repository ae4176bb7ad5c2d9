//! Streaming serde helpers shared by the venue decoders: levels are parsed straight into a
//! reusable buffer while the frame is read, so a frame costs one pass and no allocation; and
//! the reading of the venues' error answers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::{Decimal, DecimalError};
use crate::error::{FrameError, ReceiveError};
use crate::sync::LevelChange;

use super::scan::{ScanError, Scanner};

/// Where a number that failed to parse is remembered, so the error stays typed (serde's own
/// errors are strings).
#[derive(Debug, Default)]
pub struct NumberFault {
    pub fault: Option<(&'static str, DecimalError)>,
}

impl NumberFault {
    pub fn parse<E: de::Error>(&mut self, field: &'static str, text: &str) -> Result<Decimal, E> {
        Decimal::parse(text).map_err(|e| {
            self.fault.get_or_insert((field, e));
            E::custom(format_args!("bad number in `{field}`"))
        })
    }
}

/// `[[price, qty, ...], ...]` of one side, appended to `out`; extra elements of a level are
/// skipped (OKX adds order counts, Kraken timestamps).
pub struct LevelsSeed<'a> {
    pub side: Side,
    pub out: &'a mut Vec<LevelChange>,
    pub fault: &'a mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for LevelsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // serde_json only finds where the list ends (a skip, no strings made); the scanner
        // then reads each number straight to fixed point in one pass, the common short shape
        // with word loads, instead of a `&str` per field parsed again by `Decimal::parse`.
        let raw = <&'de RawValue>::deserialize(d)?;
        self.scan(raw.get().as_bytes())
    }
}

impl LevelsSeed<'_> {
    fn scan<E: de::Error>(self, list: &[u8]) -> Result<(), E> {
        let mut scan = Scanner::new(list);
        scan.begin_array().map_err(scan_error)?;
        let mut first = true;
        while scan.next_element(&mut first).map_err(scan_error)? {
            let (price, qty) = match scan.short_level_skipping_extras().map_err(scan_error)? {
                Some(level) => level,
                None => general_level(&mut scan, self.fault)?,
            };
            self.out.push((self.side, price, qty));
        }
        Ok(())
    }
}

/// A level in any shape the short reader declines: white space, signs, exponents, long
/// numbers (and the errors, typed where they are numbers).
pub fn general_level<E: de::Error>(
    scan: &mut Scanner,
    fault: &mut NumberFault,
) -> Result<(Decimal, Decimal), E> {
    scan.begin_array().map_err(scan_error)?;
    let mut first = true;
    let mut number = |scan: &mut Scanner, field: &'static str| -> Result<Decimal, E> {
        if !scan.next_element(&mut first).map_err(scan_error)? {
            return Err(E::custom("a level needs a price and a quantity"));
        }
        scan.quoted_decimal().map_err(scan_error)?.map_err(|e| {
            fault.fault.get_or_insert((field, e));
            E::custom(format_args!("bad number in `{field}`"))
        })
    };
    let price = number(scan, "price")?;
    let qty = number(scan, "quantity")?;
    while scan.next_element(&mut first).map_err(scan_error)? {
        scan.skip_value().map_err(scan_error)?;
    }
    Ok((price, qty))
}

fn scan_error<E: de::Error>(e: ScanError) -> E {
    E::custom(FrameError::from(e))
}

/// Any scalar as text, for the fields of venue error answers: strings (escaped ones too, owned
/// then), and numbers written out (Bitfinex sends its error codes as numbers, OKX as strings).
/// Booleans, null, lists and objects give nothing.
pub struct LooseText;

impl<'de> DeserializeSeed<'de> for LooseText {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LooseText {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The error of a venue's error answer: `code {code}: {message}` (or the parts there are),
/// concerning `symbol` when the answer names one.
pub fn venue_error(
    symbol: Option<&str>,
    code: Option<&str>,
    message: Option<&str>,
) -> ReceiveError {
    let message = message.filter(|m| !m.is_empty());
    let text = match (code.filter(|c| !c.is_empty()), message) {
        (Some(code), Some(message)) => format!("code {code}: {message}"),
        (Some(code), None) => format!("code {code}"),
        (None, Some(message)) => message.to_owned(),
        (None, None) => "no message".to_owned(),
    };
    ReceiveError::new(symbol.map(str::to_owned), FrameError::VenueError(text))
}

/// The first typed problem met while decoding a frame. Serde's own errors are strings, so a
/// decoder notes here what went wrong (a bad number, a value no venue sends) and the session
/// reports that instead of the string. Wider than `NumberFault`, which knows numbers only.
#[derive(Debug, Default)]
pub struct FrameFault(Option<FrameError>);

impl FrameFault {
    /// `text` as a decimal; a bad one is noted as `BadNumber` in `field`.
    #[inline]
    pub fn number<E: de::Error>(&mut self, field: &'static str, text: &str) -> Result<Decimal, E> {
        Decimal::parse(text).map_err(|error| self.bad_number(field, error))
    }

    /// Notes a number that does not parse, or that parsed but cannot be used (an overflow
    /// when negated, say).
    #[cold]
    pub fn bad_number<E: de::Error>(&mut self, field: &'static str, error: DecimalError) -> E {
        self.note(FrameError::BadNumber { field, error })
    }

    /// Notes a value the venue does not send (an unknown side, a level without one).
    pub fn invalid<E: de::Error>(&mut self, message: String) -> E {
        self.note(FrameError::Invalid(message))
    }

    /// Notes `error` (unless an earlier one is noted) and gives serde's error for it.
    #[cold]
    pub fn note<E: de::Error>(&mut self, error: FrameError) -> E {
        let e = E::custom(&error);
        self.0.get_or_insert(error);
        e
    }

    /// What the frame's decoding failed with: the noted problem, else serde's message.
    pub fn into_error(self, e: serde_json::Error) -> FrameError {
        self.0.unwrap_or_else(|| FrameError::Json(e.to_string()))
    }
}

/// A number field a venue may leave out or send empty (`""`, Bybit and Coinbase do for what
/// they do not have): `None` then; a typed error when it is there and does not parse.
pub fn optional_decimal(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<Decimal>, FrameError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => Decimal::parse(text)
            .map(Some)
            .map_err(|error| FrameError::BadNumber { field, error }),
    }
}

/// `[[price, qty, ...], ...]` of one side read with the frame's own scanner (for a venue's
/// one-pass book reader), extra elements of a level skipped; `None` at anything else, a bad
/// number included: the venue's serde path then reads the frame and types the error.
pub fn scan_levels(scan: &mut Scanner, side: Side, out: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        let (price, qty) = match scan.short_level_skipping_extras().ok()? {
            Some(level) => level,
            None => general_level::<serde_json::Error>(scan, &mut NumberFault::default()).ok()?,
        };
        out.push((side, price, qty));
    }
    Some(())
}
