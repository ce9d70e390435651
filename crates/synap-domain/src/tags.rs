//! Tag rules. A tag is 1..=64 characters after trimming (a leading `#` is dropped);
//! tags are unique per user case-insensitively, and the first spelling a user ever
//! used is kept — the store canonicalises spellings before `decide`, so events always
//! carry the canonical spelling.

use crate::error::DomainError;
use crate::limits::TAG_CHARS_MAX;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The case-insensitive identity of a tag ("Rust" and "rust" have the same key).
pub fn tag_key(name: &str) -> String {
    name.to_lowercase()
}

/// Checks and normalises a tag as typed by a user.
pub fn normalize_tag(raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let name = trimmed.strip_prefix('#').unwrap_or(trimmed).trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(DomainError::invalid("tags", "a tag cannot be empty"));
    }
    if chars > TAG_CHARS_MAX {
        return Err(DomainError::invalid(
            "tags",
            format!("tag {name:?} has {chars} characters; the limit is {TAG_CHARS_MAX}"),
        ));
    }
    if name.chars().any(|c| c.is_control() || c == ',') {
        return Err(DomainError::invalid(
            "tags",
            format!("tag {name:?} contains a comma or a control character"),
        ));
    }
    Ok(name.to_string())
}

/// A set of tags, unique by key, in key order (deterministic for comparisons).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet(BTreeMap<String, String>);

impl TagSet {
    pub fn from_names(names: impl IntoIterator<Item = String>) -> Self {
        let mut set = TagSet::default();
        for name in names {
            set.insert(name);
        }
        set
    }
    /// Adds a tag; keeps the existing spelling when the key is already present.
    pub fn insert(&mut self, name: String) -> bool {
        let key = tag_key(&name);
        if self.0.contains_key(&key) {
            return false;
        }
        self.0.insert(key, name);
        true
    }
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.remove(&tag_key(name)).is_some()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(&tag_key(name))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Spellings, in key order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
    /// `(key, spelling)` pairs, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn to_vec(&self) -> Vec<String> {
        self.0.values().cloned().collect()
    }
}

impl Serialize for TagSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.values())
    }
}

impl<'de> Deserialize<'de> for TagSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(TagSet::from_names(Vec::<String>::deserialize(
            deserializer,
        )?))
    }
}
