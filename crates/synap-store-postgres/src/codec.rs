//! How values are stored: ids as `uuid`, hashes as `bytea`, times as microseconds
//! since the Unix epoch (`bigint`, the same numbers as on SQLite), event JSON as
//! text (other JSON as `jsonb`);
//! positions as the writing transaction's id and the event's index in it; and how
//! PostgreSQL errors become `StoreError`s.

use jiff::Timestamp;
use postgres::Row;
use postgres::error::SqlState;
use synap_domain::event::{EventMetadata, StoredEvent, decode};
use synap_domain::ids::{ContentHash, EventId, UserId};
use synap_store::StoreError;

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

/// The columns `event_from_row` expects, in order.
pub const EVENT_COLUMNS: &str = "position, id, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at";

/// Reads one event row (selected with `EVENT_COLUMNS`), upcasting its payload.
pub fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let event_type: &str = row.try_get(4).map_err(corrupt)?;
    let schema_version = row.try_get::<_, i16>(5).map_err(corrupt)? as u32;
    let data: &str = row.try_get(7).map_err(corrupt)?;
    let metadata: &str = row.try_get(8).map_err(corrupt)?;
    Ok(StoredEvent {
        position: row.try_get::<_, i64>(0).map_err(corrupt)? as u64,
        id: EventId(row.try_get(1).map_err(corrupt)?),
        aggregate_id: row.try_get(2).map_err(corrupt)?,
        version: row.try_get::<_, i64>(3).map_err(corrupt)? as u64,
        payload: decode(event_type, schema_version, data)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        schema_version,
        user_id: UserId(row.try_get(6).map_err(corrupt)?),
        metadata: serde_json::from_str::<EventMetadata>(metadata)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        recorded_at: timestamp(row.try_get(9).map_err(corrupt)?)?,
    })
}
