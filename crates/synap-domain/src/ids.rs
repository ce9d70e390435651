//! Identifiers. Entities, relations, users and events are identified by UUIDv7
//! (time-ordered, so ids sort by creation); content is identified by its SHA-256.
//! Generating a fresh id needs a clock and randomness, so it happens in adapters;
//! the domain only carries ids.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7) from the system clock and randomness.
            /// Only adapters call this; the domain never makes ids.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }
        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }
    };
}

uuid_id!(
    /// An entity (note, task, idea, ...): the aggregate id of its event stream.
    EntityId
);
uuid_id!(
    /// A relation between two entities: the aggregate id of its event stream.
    RelationId
);
uuid_id!(
    /// A user account; also the scope every stored row belongs to.
    UserId
);
uuid_id!(
    /// A file attached to an entity (`entity.attachment_added`).
    AttachmentId
);
uuid_id!(
    /// One event, unique forever. Appending an event id twice returns the first result.
    EventId
);

/// SHA-256 of a content body: the address of that body in the content store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The hash of `body`.
    pub fn of(body: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self(Sha256::digest(body).into())
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl FromStr for ContentHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(format!("a SHA-256 has 64 hex digits: {s:?}"));
        }
        // Decoded in place: catch-up reads parse two of these per note edit.
        let mut array = [0u8; 32];
        hex::decode_to_slice(s, &mut array).map_err(|_| format!("not a hex SHA-256: {s:?}"))?;
        Ok(Self(array))
    }
}

impl TryFrom<&[u8]> for ContentHash {
    type Error = String;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a SHA-256 has 32 bytes".to_string())?;
        Ok(Self(array))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Hex in JSON; the raw 32 bytes in the binary log encoding (`binary`).
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}
impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Parses the hex text or takes the raw bytes where the deserializer holds
        /// them (no `String`).
        struct HashVisitor;
        impl serde::de::Visitor<'_> for HashVisitor {
            type Value = ContentHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-256 as 64 hex digits or 32 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ContentHash, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ContentHash, E> {
                ContentHash::try_from(bytes).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(HashVisitor)
        } else {
            deserializer.deserialize_bytes(HashVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashes_read_back_from_hex_and_refuse_anything_else() {
        let hash = ContentHash([0xab; 32]);
        let text = hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<ContentHash>(), Ok(hash));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), hash);
        let from_value: ContentHash = serde_json::from_value(serde_json::json!(text)).unwrap();
        assert_eq!(from_value, hash);

        assert!(
            "ab".parse::<ContentHash>()
                .unwrap_err()
                .contains("64 hex digits")
        );
        let not_hex = "zz".repeat(32);
        assert!(
            not_hex
                .parse::<ContentHash>()
                .unwrap_err()
                .contains("not a hex")
        );
        assert!(serde_json::from_str::<ContentHash>("42").is_err());
        assert!(serde_json::from_str::<ContentHash>("\"abc\"").is_err());
    }
}
