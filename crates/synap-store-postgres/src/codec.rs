//! How values are stored: ids as `uuid`, hashes as `bytea`, times as microseconds
//! since the Unix epoch (`bigint`, the same numbers as on SQLite), other JSON as
//! `jsonb`; positions as the writing transaction's id and the event's index in it;
//! and how PostgreSQL errors become `StoreError`s.
//!
//! An event row is kept small, because the log is most of the database: its type
//! is a code (`smallint`, [`synap_domain::event::type_code`]), its version an
//! `integer`, and its `data` and `metadata` are `bytea` in the domain's binary
//! encoding ([`synap_domain::binary`]: content hashes and UUIDs raw, struct
//! fields keyed by index). The usual metadata (`{"source": "api"}` and nothing
//! else) is stored as no bytes at all.

use jiff::Timestamp;
use postgres::Row;
use postgres::error::SqlState;
use synap_domain::binary::{from_binary, to_binary};
use synap_domain::event::{Binary, EventMetadata, EventPayload, StoredEvent, decode, type_name};
use synap_domain::ids::{ContentHash, EventId, UserId};
use synap_store::{StoreError, StoreResult};

/// Bits of a position that number the events of one transaction: a position is
/// `xid8 << POSITION_INDEX_BITS | index`. Positions stay below 2^53 (exact in
/// JavaScript) until the cluster has used 2^33 transaction ids.
pub const POSITION_INDEX_BITS: u32 = 20;
/// Most events one transaction can append (1,048,576).
pub const EVENTS_PER_TRANSACTION_MAX: u64 = 1 << POSITION_INDEX_BITS;

pub fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub fn timestamp(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {micros}: {e}")))
}

pub fn opt_timestamp(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(timestamp).transpose()
}

pub fn hash(bytes: &[u8]) -> Result<ContentHash, StoreError> {
    ContentHash::try_from(bytes).map_err(StoreError::Corrupt)
}

/// Maps a PostgreSQL error: lock and serialisation failures are `Busy`
/// (retryable); a lost connection is `Busy` too; anything else is a backend failure.
pub fn sql_error(error: postgres::Error) -> StoreError {
    if is_retryable(&error) {
        return StoreError::Busy(format!("the database asked to retry: {error}"));
    }
    if error.is_closed() {
        return StoreError::Unavailable("the connection to PostgreSQL was lost".into());
    }
    match error.as_db_error() {
        Some(db) => StoreError::Backend(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Backend(error.to_string()),
    }
}

/// A deadlock or serialisation failure: the whole transaction may be retried.
pub fn is_retryable(error: &postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// The name of the unique constraint a uniqueness violation broke, if it is one.
pub fn unique_violation(error: &postgres::Error) -> Option<String> {
    let db = error.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint().unwrap_or_default().to_string())
}

pub fn corrupt(e: postgres::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Highest version a stream can reach: the log stores versions as `integer`.
pub const STREAM_VERSION_MAX: u64 = i32::MAX as u64;

/// An event's version as the log stores it.
pub fn stored_version(version: u64) -> StoreResult<i32> {
    i32::try_from(version).map_err(|_| {
        StoreError::InvalidInput(format!(
            "a stream holds at most {STREAM_VERSION_MAX} events; this one is full"
        ))
    })
}

/// An event's delta as the log's `data` column stores it.
pub fn encode_data(payload: &EventPayload) -> StoreResult<Vec<u8>> {
    payload
        .binary_data()
        .map_err(|e| StoreError::Backend(format!("encoding {}: {e}", payload.event_type())))
}

/// An envelope's metadata as the log's `metadata` column stores it: no bytes for
/// the usual `{"source": "api"}`, else the binary encoding.
pub fn encode_metadata(metadata: &EventMetadata) -> StoreResult<Vec<u8>> {
    if *metadata == EventMetadata::default() {
        return Ok(Vec::new());
    }
    to_binary(metadata).map_err(|e| StoreError::Backend(format!("encoding metadata: {e}")))
}

pub fn decode_metadata(bytes: &[u8]) -> StoreResult<EventMetadata> {
    if bytes.is_empty() {
        return Ok(EventMetadata::default());
    }
    from_binary(bytes).map_err(|e| StoreError::Corrupt(format!("event metadata: {e}")))
}

/// The catalogued type a stored code stands for.
pub fn stored_type(code: i16) -> StoreResult<&'static str> {
    type_name(code).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "event type code {code} is not in this binary's catalogue"
        ))
    })
}

/// The columns `event_from_row` expects, in order.
pub const EVENT_COLUMNS: &str = "position, id, aggregate_id, version, type_code, schema_version, user_id, data, metadata, recorded_at";

/// Reads one event row (selected with `EVENT_COLUMNS`), upcasting its payload.
pub fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let event_type = stored_type(row.try_get(4).map_err(corrupt)?)?;
    let schema_version = row.try_get::<_, i16>(5).map_err(corrupt)? as u32;
    let data: &[u8] = row.try_get(7).map_err(corrupt)?;
    let metadata: &[u8] = row.try_get(8).map_err(corrupt)?;
    Ok(StoredEvent {
        position: row.try_get::<_, i64>(0).map_err(corrupt)? as u64,
        id: EventId(row.try_get(1).map_err(corrupt)?),
        aggregate_id: row.try_get(2).map_err(corrupt)?,
        version: row.try_get::<_, i32>(3).map_err(corrupt)? as u64,
        payload: decode(event_type, schema_version, Binary(data))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        schema_version,
        user_id: UserId(row.try_get(6).map_err(corrupt)?),
        metadata: decode_metadata(metadata)?,
        recorded_at: timestamp(row.try_get(9).map_err(corrupt)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use synap_domain::event::Source;

    #[test]
    fn versions_past_the_integer_column_are_refused_not_wrapped() {
        assert_eq!(stored_version(1).unwrap(), 1);
        assert_eq!(stored_version(STREAM_VERSION_MAX).unwrap(), i32::MAX);
        assert!(matches!(
            stored_version(STREAM_VERSION_MAX + 1),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn the_usual_metadata_is_stored_as_no_bytes_and_reads_back() {
        let usual = EventMetadata::default();
        assert!(encode_metadata(&usual).unwrap().is_empty());
        assert_eq!(decode_metadata(&[]).unwrap(), usual);
        let other = EventMetadata {
            source: Source::Cli,
            actor: Some("user:1".into()),
            ..EventMetadata::default()
        };
        let bytes = encode_metadata(&other).unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(decode_metadata(&bytes).unwrap(), other);
        assert!(matches!(
            decode_metadata(&[0xc1]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn unknown_type_codes_are_corruption() {
        assert_eq!(stored_type(3).unwrap(), "entity.content_changed");
        assert!(matches!(stored_type(0), Err(StoreError::Corrupt(_))));
        assert!(matches!(stored_type(i16::MAX), Err(StoreError::Corrupt(_))));
    }
}
