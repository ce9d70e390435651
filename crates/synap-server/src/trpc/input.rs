//! Input validation in the manner of the original's zod schemas: the input is an
//! object; a field that is present must have the declared type (`null` is not
//! "absent", as with zod's `.optional()`); unknown fields are ignored, as
//! `z.object` strips them. Every failure is a `BAD_REQUEST` naming the field.

use super::error::RpcError;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The fields of a procedure's input object.
#[derive(Debug)]
pub(super) struct Fields {
    map: Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(key: &str, message: impl std::fmt::Display) -> RpcError {
    RpcError::bad_request(format!("invalid input: {key}: {message}"))
}

fn expected(key: &str, what: &str, got: &Value) -> RpcError {
    invalid(key, format!("expected {what}, got {}", kind(got)))
}

impl Fields {
    /// The input object. A missing input is an error, or `{}` when every field of
    /// the procedure is optional (`missing_is_empty`).
    pub fn of(input: Option<Value>, missing_is_empty: bool) -> Result<Fields, RpcError> {
        match input {
            Some(Value::Object(map)) => Ok(Fields { map }),
            None if missing_is_empty => Ok(Fields { map: Map::new() }),
            None => Err(RpcError::bad_request(
                "invalid input: expected an object, got nothing; send the input as JSON",
            )),
            Some(other) => Err(RpcError::bad_request(format!(
                "invalid input: expected an object, got {}",
                kind(&other)
            ))),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// A required string of `min_chars..=max_chars` characters.
    pub fn string(
        &self,
        key: &str,
        min_chars: usize,
        max_chars: usize,
    ) -> Result<String, RpcError> {
        match self.opt_string(key, min_chars, max_chars)? {
            Some(text) => Ok(text),
            None => Err(invalid(key, "required")),
        }
    }

    /// An optional string of `min_chars..=max_chars` characters.
    pub fn opt_string(
        &self,
        key: &str,
        min_chars: usize,
        max_chars: usize,
    ) -> Result<Option<String>, RpcError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(expected(key, "a string", value));
        };
        let chars = text.chars().count();
        if chars < min_chars {
            return Err(invalid(
                key,
                format!("must contain at least {min_chars} character(s)"),
            ));
        }
        if chars > max_chars {
            return Err(invalid(
                key,
                format!("must contain at most {max_chars} characters, got {chars}"),
            ));
        }
        Ok(Some(text.clone()))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, RpcError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(expected(key, "a boolean", other)),
        }
    }

    /// An optional integer in `min..=max` (an integral float such as `10.0` counts).
    pub fn opt_int(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, RpcError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Value::Number(number) = value else {
            return Err(expected(key, "a number", value));
        };
        let whole = number
            .as_i64()
            .map(|n| n as f64)
            .or_else(|| number.as_f64())
            .filter(|n| n.fract() == 0.0)
            .ok_or_else(|| invalid(key, format!("expected an integer, got {number}")))?;
        if whole < f64::from(min) || whole > f64::from(max) {
            return Err(invalid(
                key,
                format!("must be between {min} and {max}, got {number}"),
            ));
        }
        Ok(Some(whole as u32))
    }

    /// A required object (zod `z.record(z.any())`).
    pub fn object(&self, key: &str) -> Result<Map<String, Value>, RpcError> {
        self.opt_object(key)?
            .ok_or_else(|| invalid(key, "required"))
    }

    pub fn opt_object(&self, key: &str) -> Result<Option<Map<String, Value>>, RpcError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(other) => Err(expected(key, "an object", other)),
        }
    }

    /// An optional array of strings (their content is checked by the domain).
    pub fn opt_strings(&self, key: &str) -> Result<Option<Vec<String>>, RpcError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(expected(key, "an array of strings", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(expected(&format!("{key}[{index}]"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional string that must be one of `choices` (zod `z.enum`).
    pub fn opt_choice(
        &self,
        key: &str,
        choices: &'static [&'static str],
    ) -> Result<Option<&'static str>, RpcError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(expected(key, "a string", value));
        };
        choices
            .iter()
            .find(|choice| **choice == text.as_str())
            .copied()
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("expected one of {}, got {text:?}", choices.join(" | ")),
                )
            })
    }

    /// An optional UUID string (zod `z.string().uuid()`).
    pub fn opt_uuid(&self, key: &str) -> Result<Option<Uuid>, RpcError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(expected(key, "a UUID string", value));
        };
        Uuid::parse_str(text)
            .map(Some)
            .map_err(|_| invalid(key, format!("expected a UUID, got {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::of(Some(value), false).unwrap()
    }

    #[test]
    fn inputs_must_be_objects() {
        assert!(Fields::of(None, false).is_err());
        assert!(Fields::of(None, true).is_ok());
        assert!(Fields::of(Some(json!([1])), true).is_err());
        assert!(Fields::of(Some(Value::Null), true).is_err());
    }

    #[test]
    fn strings_are_checked_for_type_and_length() {
        let input = fields(json!({"a": "", "b": 3, "c": "ok", "d": null}));
        assert!(input.string("a", 1, 10).is_err());
        assert!(input.string("b", 1, 10).is_err());
        assert_eq!(input.string("c", 1, 10).unwrap(), "ok");
        assert!(input.string("c", 1, 1).is_err());
        assert!(input.opt_string("d", 0, 10).is_err(), "null is not absent");
        assert!(input.string("missing", 1, 10).is_err());
        assert_eq!(input.opt_string("missing", 1, 10).unwrap(), None);
    }

    #[test]
    fn integers_are_checked_for_range() {
        let input = fields(json!({"a": 0, "b": 101, "c": 2.5, "d": 10.0, "e": "5", "f": 100}));
        assert!(input.opt_int("a", 1, 100).is_err());
        assert!(input.opt_int("b", 1, 100).is_err());
        assert!(input.opt_int("c", 1, 100).is_err());
        assert_eq!(input.opt_int("d", 1, 100).unwrap(), Some(10));
        assert!(input.opt_int("e", 1, 100).is_err());
        assert_eq!(input.opt_int("f", 1, 100).unwrap(), Some(100));
        let error = input.opt_int("b", 1, 100).unwrap_err();
        assert_eq!(
            error.message,
            "invalid input: b: must be between 1 and 100, got 101"
        );
    }

    #[test]
    fn other_kinds() {
        let input = fields(json!({
            "tags": ["a", 1], "ok": ["a"], "src": "sync", "bad": "web",
            "id": "not-a-uuid", "uuid": "0190a3c4-0000-7000-8000-000000000000",
            "obj": {}, "flag": "yes"
        }));
        assert_eq!(
            input.opt_strings("tags").unwrap_err().message,
            "invalid input: tags[1]: expected a string, got a number"
        );
        assert_eq!(input.opt_strings("ok").unwrap(), Some(vec!["a".into()]));
        assert_eq!(
            input.opt_choice("src", &["api", "sync"]).unwrap(),
            Some("sync")
        );
        assert!(input.opt_choice("bad", &["api", "sync"]).is_err());
        assert!(input.opt_uuid("id").is_err());
        assert!(input.opt_uuid("uuid").unwrap().is_some());
        assert!(input.object("obj").is_ok());
        assert!(input.object("missing").is_err());
        assert!(input.opt_bool("flag").is_err());
    }
}
