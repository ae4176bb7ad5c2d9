//! Streaming serde helpers shared by the venue decoders: levels are parsed straight into a
//! reusable buffer while the frame is read, so a frame costs one pass and no allocation.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use crate::book::Side;
use crate::decimal::{Decimal, DecimalError};
use crate::sync::LevelChange;

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
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [price, quantity] levels")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((price, qty)) = seq.next_element_seed(LevelSeed {
            fault: &mut *self.fault,
        })? {
            self.out.push((self.side, price, qty));
        }
        Ok(())
    }
}

struct LevelSeed<'a> {
    fault: &'a mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_> {
    type Value = (Decimal, Decimal);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_> {
    type Value = (Decimal, Decimal);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [price, quantity] pair of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let price: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let qty: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let price = self.fault.parse("price", price)?;
        let qty = self.fault.parse("quantity", qty)?;
        Ok((price, qty))
    }
}
