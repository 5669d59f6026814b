//! A task's output as JSON text. It is checked once, when the attempt ends (exactly what
//! `serde_json::Value` accepts, without building one), then shared without copying by the store's
//! commit, every dependent's input document and the report, which writes it as it is. A parsed
//! value of a JSON document costs many times its text (16 MiB of rows take about 270 MiB as a
//! `Value`), so an output is never held as one.

use bytes::Bytes;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// One JSON value as text.
#[derive(Clone, PartialEq, Eq)]
pub struct OutputJson(Bytes);

impl OutputJson {
    /// `null`.
    pub fn null() -> OutputJson {
        OutputJson(Bytes::from_static(b"null"))
    }

    /// Checks `text`: one JSON value, JSON whitespace around it dropped; only whitespace is
    /// `null`.
    /// The error says what is wrong, as serde_json puts it.
    pub fn parse(text: impl Into<Bytes>) -> Result<OutputJson, serde_json::Error> {
        let text: Bytes = text.into();
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(OutputJson::null());
        }
        // Only JSON's whitespace around the value (a form feed is not JSON's: it stays, and is
        // refused as serde_json refuses it).
        let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        let start = text.iter().position(|b| !json_space(b)).unwrap_or(0);
        let end = text
            .iter()
            .rposition(|b| !json_space(b))
            .map_or(start, |e| e + 1);
        let text = text.slice(start..end);
        let mut de = serde_json::Deserializer::from_slice(&text);
        Check.deserialize(&mut de)?;
        de.end()?;
        Ok(OutputJson(text))
    }

    /// The text of `value`.
    pub fn of(value: &serde_json::Value) -> OutputJson {
        // Serialising a JSON value cannot fail.
        OutputJson(serde_json::to_vec(value).unwrap_or_default().into())
    }

    /// The text (checked UTF-8 when it was made).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("null")
    }

    /// The shared bytes of the text.
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never: `null` at least).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value, parsed (a copy many times the size of the text: for small outputs and tests).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl Default for OutputJson {
    fn default() -> Self {
        OutputJson::null()
    }
}

impl std::fmt::Debug for OutputJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.as_str();
        match text.char_indices().nth(200) {
            Some((cut, _)) => write!(f, "{}... ({} bytes)", &text[..cut], text.len()),
            None => f.write_str(text),
        }
    }
}

/// Written as the JSON it is, not as a string of it.
impl serde::Serialize for OutputJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<&serde_json::value::RawValue>(self.as_str()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// Visits a whole JSON value the way `serde_json::Value` would (numbers in range, strings
/// valid, nesting within serde_json's limit) and keeps nothing.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Check)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Check)?.is_some() {
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whitespace_is_null_and_surrounding_whitespace_goes() {
        assert_eq!(OutputJson::parse(&b"  \n"[..]).unwrap().as_str(), "null");
        assert_eq!(
            OutputJson::parse(&b" {\"a\": 1}\n"[..]).unwrap().as_str(),
            "{\"a\": 1}"
        );
        let shown =
            serde_json::to_string(&OutputJson::parse(&b"[1, {\"b\": null}]"[..]).unwrap()).unwrap();
        assert_eq!(
            shown, "[1, {\"b\": null}]",
            "written as JSON, not as a string"
        );
    }

    proptest! {
        /// Accepts exactly what `serde_json::Value` accepts, on texts near the edges: numbers
        /// out of range, trailing data, bad escapes, deep nesting, bad UTF-8.
        #[test]
        fn accepts_what_a_value_accepts(text in proptest::collection::vec(
            proptest::sample::select(vec![
                "1", "-0", "1e400", "-1e400", "18446744073709551616", "1.5", "\"a\"", "\"\\u00e9\"",
                "\"\\ud800\"", "\"\\x\"", "[", "]", "{", "}", ":", ",", "null", "tru", " ", "\u{e9}",
                "\"k\"", "\u{c}", "\t", "\r\n", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            ]),
            0..12,
        ).prop_map(|parts| parts.concat()), bad_byte in proptest::option::of(0x80u8..)) {
            let mut bytes = text.into_bytes();
            if let Some(b) = bad_byte {
                bytes.insert(bytes.len() / 2, b);
            }
            let as_value = match bytes.iter().all(u8::is_ascii_whitespace) {
                true => Ok(serde_json::Value::Null),
                false => serde_json::from_slice::<serde_json::Value>(&bytes),
            };
            let checked = OutputJson::parse(bytes.clone());
            prop_assert_eq!(as_value.is_ok(), checked.is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
            if let (Ok(v), Ok(c)) = (as_value, checked) {
                prop_assert_eq!(v, c.value());
            }
        }
    }
}
