//! How values are stored: ids as 16-byte blobs, hashes as 32-byte blobs, times as
//! microseconds since the Unix epoch, JSON as text; and how SQLite errors become
//! `StoreError`s.

use jiff::Timestamp;
use rusqlite::{ErrorCode, Row};
use synap_domain::event::{EventMetadata, StoredEvent, decode};
use synap_domain::ids::{ContentHash, EventId, UserId};
use synap_store::StoreError;
use uuid::Uuid;

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

pub fn uuid(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("an id is not 16 bytes".into()))
}

pub fn hash(bytes: &[u8]) -> Result<ContentHash, StoreError> {
    ContentHash::try_from(bytes).map_err(StoreError::Corrupt)
}

/// Maps a SQLite error: a busy database is `Busy`; anything else is a backend failure.
pub fn sql_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Busy("another process is writing; try again".into())
        }
        _ => StoreError::Backend(error.to_string()),
    }
}

/// Whether an error is a uniqueness violation (used to turn a reused id into a
/// clear error instead of a backend failure).
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// The columns `event_from_row` expects, in order.
pub const EVENT_COLUMNS: &str = "position, id, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at";

/// Reads one event row (selected with `EVENT_COLUMNS`), upcasting its payload.
pub fn event_from_row(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let get = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    let event_type: String = row.get(4).map_err(get)?;
    let schema_version: u32 = row.get(5).map_err(get)?;
    let data: String = row.get(7).map_err(get)?;
    let metadata: String = row.get(8).map_err(get)?;
    Ok(StoredEvent {
        position: row.get::<_, i64>(0).map_err(get)? as u64,
        id: EventId(uuid(&row.get::<_, Vec<u8>>(1).map_err(get)?)?),
        aggregate_id: uuid(&row.get::<_, Vec<u8>>(2).map_err(get)?)?,
        version: row.get::<_, i64>(3).map_err(get)? as u64,
        payload: decode(&event_type, schema_version, data.as_str())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        schema_version,
        user_id: UserId(uuid(&row.get::<_, Vec<u8>>(6).map_err(get)?)?),
        metadata: serde_json::from_str::<EventMetadata>(&metadata)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        recorded_at: timestamp(row.get(9).map_err(get)?)?,
    })
}

/// Runs one statement that takes no parameters and returns no rows (transaction
/// control, a pragma) through the statement cache: `execute_batch` would parse
/// it every time, and the workflow engine and the reads run several per call.
pub(crate) fn run_cached(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}
