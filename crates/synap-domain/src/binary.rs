//! The compact binary encoding of stored event payloads and metadata (the
//! PostgreSQL log stores these; JSON stays the format of the API, of the SQLite log
//! and of the golden files).
//!
//! It is MessagePack, with one rule of its own: a struct is a map keyed by the
//! **index of each field in its declaration** (one byte), not by its name. Fields
//! skipped because they are empty (`skip_serializing_if`) are left out without
//! moving the others' indexes, so optional fields cost nothing and names cost one
//! byte. Everything that is not human-readable is stored raw: a content hash as its
//! 32 bytes, a UUID as its 16 (`serde`'s `is_human_readable` is false here). Unit
//! enum variants are stored by name, so reordering variants never changes a stored
//! value.
//!
//! Consequence for schema evolution: **the declaration order of a payload's fields
//! is part of the stored format.** Add new fields at the end; renaming a field is
//! free (names are not stored), reordering or removing one needs a new schema
//! version and an upcaster, exactly as a JSON shape change does. The golden files
//! (`tests/data/events/<type>/v<N>.bin`) pin every type's bytes.
//!
//! Reading is `rmp-serde`'s deserializer: `serde`'s derived field visitors accept a
//! field's index in place of its name, and MessagePack describes itself, so
//! `serde_json::Value`s inside payloads (entity metadata, logged events) read back.

use serde::ser::{self, Serialize};
use std::fmt;

/// Encodes a payload or an envelope's metadata. Encoding the domain's types cannot
/// fail (no map has a non-string key); an error here is a bug in a new type.
pub fn to_binary<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BinaryError> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut Writer { out: &mut out })?;
    Ok(out)
}

/// Decodes what [`to_binary`] wrote. Trailing bytes are refused: a stored value
/// is exactly one MessagePack value.
pub fn from_binary<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BinaryError> {
    // A reader that advances (and reads no further than asked), so what is left
    // over can be checked.
    let mut unread = bytes;
    let mut deserializer = rmp_serde::Deserializer::new(&mut unread);
    let value = T::deserialize(&mut deserializer).map_err(|e| BinaryError(e.to_string()))?;
    let rest = unread.len();
    if rest != 0 {
        return Err(BinaryError(format!("{rest} bytes after the value")));
    }
    Ok(value)
}

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryError(pub String);

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BinaryError {}

impl ser::Error for BinaryError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        BinaryError(message.to_string())
    }
}

/// Writing into a `Vec` cannot fail; the `rmp` functions still return `Result`s.
fn written<T, E: fmt::Display>(result: Result<T, E>) -> Result<(), BinaryError> {
    result
        .map(|_| ())
        .map_err(|e| BinaryError(format!("writing MessagePack: {e}")))
}

/// The serializer: MessagePack into `out`.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn len(len: usize) -> Result<u32, BinaryError> {
        u32::try_from(len).map_err(|_| BinaryError(format!("{len} items are too many")))
    }

    /// `{variant: …}`: how a variant with data is stored (`rmp-serde` reads it so).
    fn variant_key(&mut self, variant: &str) -> Result<(), BinaryError> {
        written(rmp::encode::write_map_len(self.out, 1))?;
        written(rmp::encode::write_str(self.out, variant))
    }

    /// A sequence or map whose length is known only at its end is written into a
    /// buffer of its own first.
    fn collection(&mut self, len: Option<usize>, map: bool) -> Result<Collection<'_>, BinaryError> {
        match len {
            Some(len) => {
                let len = Self::len(len)?;
                if map {
                    written(rmp::encode::write_map_len(self.out, len))?;
                } else {
                    written(rmp::encode::write_array_len(self.out, len))?;
                }
                Ok(Collection {
                    parent: self.out,
                    buffered: None,
                    map,
                })
            }
            None => Ok(Collection {
                parent: self.out,
                buffered: Some((Vec::new(), 0)),
                map,
            }),
        }
    }
}

impl<'a> ser::Serializer for &'a mut Writer<'_> {
    type Ok = ();
    type Error = BinaryError;
    type SerializeSeq = Collection<'a>;
    type SerializeTuple = Collection<'a>;
    type SerializeTupleStruct = Collection<'a>;
    type SerializeTupleVariant = Collection<'a>;
    type SerializeMap = Collection<'a>;
    type SerializeStruct = Struct<'a>;
    type SerializeStructVariant = Struct<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), BinaryError> {
        written(rmp::encode::write_bool(self.out, v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), BinaryError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), BinaryError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), BinaryError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), BinaryError> {
        written(rmp::encode::write_sint(self.out, v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), BinaryError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), BinaryError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), BinaryError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), BinaryError> {
        written(rmp::encode::write_uint(self.out, v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), BinaryError> {
        written(rmp::encode::write_f32(self.out, v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), BinaryError> {
        written(rmp::encode::write_f64(self.out, v))
    }
    fn serialize_char(self, v: char) -> Result<(), BinaryError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), BinaryError> {
        written(rmp::encode::write_str(self.out, v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), BinaryError> {
        written(rmp::encode::write_bin(self.out, v))
    }
    fn serialize_none(self) -> Result<(), BinaryError> {
        written(rmp::encode::write_nil(self.out))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), BinaryError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), BinaryError> {
        written(rmp::encode::write_nil(self.out))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BinaryError> {
        written(rmp::encode::write_nil(self.out))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), BinaryError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), BinaryError> {
        self.variant_key(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Collection<'a>, BinaryError> {
        self.collection(len, false)
    }
    fn serialize_tuple(self, len: usize) -> Result<Collection<'a>, BinaryError> {
        self.collection(Some(len), false)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Collection<'a>, BinaryError> {
        self.collection(Some(len), false)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Collection<'a>, BinaryError> {
        self.variant_key(variant)?;
        self.collection(Some(len), false)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Collection<'a>, BinaryError> {
        self.collection(len, true)
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Struct<'a>, BinaryError> {
        // `len` counts the fields that will be written, skipped ones excluded.
        written(rmp::encode::write_map_len(self.out, Writer::len(len)?))?;
        Ok(Struct {
            out: self.out,
            index: 0,
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Struct<'a>, BinaryError> {
        self.variant_key(variant)?;
        self.serialize_struct(name, len)
    }
}

/// A sequence or map being written: straight into the parent when its length was
/// known up front, else into a buffer that is prefixed with the count at the end.
struct Collection<'a> {
    parent: &'a mut Vec<u8>,
    /// The items so far and how many (map entries count once), when buffering.
    buffered: Option<(Vec<u8>, usize)>,
    map: bool,
}

impl Collection<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T, counts: bool) -> Result<(), BinaryError> {
        match &mut self.buffered {
            Some((buffer, count)) => {
                value.serialize(&mut Writer { out: buffer })?;
                if counts {
                    *count += 1;
                }
                Ok(())
            }
            None => value.serialize(&mut Writer { out: self.parent }),
        }
    }

    fn finish(self) -> Result<(), BinaryError> {
        if let Some((buffer, count)) = self.buffered {
            let count = Writer::len(count)?;
            if self.map {
                written(rmp::encode::write_map_len(self.parent, count))?;
            } else {
                written(rmp::encode::write_array_len(self.parent, count))?;
            }
            self.parent.extend_from_slice(&buffer);
        }
        Ok(())
    }
}

/// Sequences, tuples and tuple structs and variants are all arrays: every item
/// counts once.
macro_rules! array_items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Collection<'_> {
            type Ok = ();
            type Error = BinaryError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
                self.item(value, true)
            }
            fn end(self) -> Result<(), BinaryError> {
                self.finish()
            }
        }
    )*};
}

array_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Collection<'_> {
    type Ok = ();
    type Error = BinaryError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BinaryError> {
        self.item(key, true)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
        self.item(value, false)
    }
    fn end(self) -> Result<(), BinaryError> {
        self.finish()
    }
}

/// A struct being written: each field keyed by its declaration index.
struct Struct<'a> {
    out: &'a mut Vec<u8>,
    /// The index of the next field, counting skipped ones.
    index: u64,
}

impl Struct<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BinaryError> {
        written(rmp::encode::write_uint(self.out, self.index))?;
        self.index += 1;
        value.serialize(&mut Writer { out: self.out })
    }
}

/// A struct and a struct variant's fields are written alike.
macro_rules! struct_fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Struct<'_> {
            type Ok = ();
            type Error = BinaryError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _key: &'static str,
                value: &T,
            ) -> Result<(), BinaryError> {
                self.field(value)
            }
            fn skip_field(&mut self, _key: &'static str) -> Result<(), BinaryError> {
                self.index += 1;
                Ok(())
            }
            fn end(self) -> Result<(), BinaryError> {
                Ok(())
            }
        }
    )*};
}

struct_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        first: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        middle: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        list: Vec<String>,
        last: Value,
        id: uuid::Uuid,
    }

    #[test]
    fn skipped_fields_keep_the_indexes_of_the_others() {
        let id = uuid::Uuid::from_u128(0x0192f0c1_5a2e_7c3d_8f10_3b7e2a9d4c01);
        let sample = Sample {
            first: 1024,
            middle: None,
            list: vec![],
            last: json!({"b": [1, -2, 2.5, null, true], "a": "x"}),
            id,
        };
        let bytes = to_binary(&sample).unwrap();
        // A map of 3 entries keyed 0, 3 and 4: the skipped fields took 1 and 2.
        assert_eq!(&bytes[..4], &[0x83, 0x00, 0xcd, 0x04]);
        assert_eq!(bytes[5], 0x03);
        assert_eq!(from_binary::<Sample>(&bytes).unwrap(), sample);
        // The UUID is its 16 bytes (key 4, 16 bytes of binary), not 36 characters.
        assert_eq!(
            &bytes[bytes.len() - 19..bytes.len() - 16],
            &[0x04, 0xc4, 16]
        );
        assert!(bytes.ends_with(id.as_bytes()));

        let full = Sample {
            middle: Some("m".into()),
            list: vec!["a".into(), "b".into()],
            ..sample
        };
        assert_eq!(
            from_binary::<Sample>(&to_binary(&full).unwrap()).unwrap(),
            full
        );
    }

    #[test]
    fn trailing_bytes_and_truncated_values_are_refused() {
        let mut bytes = to_binary(&json!({"a": 1})).unwrap();
        bytes.push(0xc0);
        assert!(from_binary::<Value>(&bytes).is_err());
        let bytes = to_binary(&"a string").unwrap();
        assert!(from_binary::<String>(&bytes[..bytes.len() - 1]).is_err());
    }
}
