//! Online snapshots of the embedded database, for `synap admin backup`.
//!
//! `VACUUM INTO` copies the database as one read transaction sees it: writers (this
//! process's writer thread, a running `synap serve`, another CLI) go on while it
//! runs, and the copy holds every transaction committed before it began and none
//! that committed after. The copy is compact (free pages dropped) and carries the
//! schema version (`PRAGMA user_version`), so it opens like any data directory's
//! database. The snapshot uses its own connection and never the store's writer, so
//! it needs no opened [`SqliteStore`](crate::SqliteStore).

use crate::codec::sql_error;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;
use synap_store::{StoreError, StoreResult};

/// How long the snapshot waits for a lock another connection holds (a checkpoint
/// or a schema migration) before giving up with `StoreError::Busy`.
pub const SNAPSHOT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a snapshot holds, read back from the copy itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The last position of the copied log (0 when empty).
    pub head_position: u64,
    /// The number of events in the copy.
    pub events: u64,
    /// The size of the copy in bytes.
    pub bytes: u64,
}

/// Copies the database at `source` into the new file `target` (which must not
/// exist) as of one moment, and syncs it to disk.
pub fn snapshot(source: &Path, target: &Path) -> StoreResult<Snapshot> {
    if !source.is_file() {
        return Err(StoreError::InvalidInput(format!(
            "no embedded database at {}",
            source.display()
        )));
    }
    if target.exists() {
        return Err(StoreError::InvalidInput(format!(
            "{} already exists; a snapshot is written to a new file",
            target.display()
        )));
    }
    let target_text = target.to_str().ok_or_else(|| {
        StoreError::InvalidInput(format!(
            "the snapshot path {} is not valid UTF-8",
            target.display()
        ))
    })?;
    // Read-write only so that the WAL index can be opened; nothing is written to
    // the source through this connection.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_error)?;
    conn.busy_timeout(SNAPSHOT_BUSY_TIMEOUT)
        .map_err(sql_error)?;
    conn.execute("VACUUM INTO ?1", [target_text])
        .map_err(sql_error)?;
    drop(conn);

    let file = std::fs::File::open(target)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", target.display())))?;
    file.sync_all()
        .map_err(|e| StoreError::Backend(format!("cannot sync {}: {e}", target.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);

    let copy =
        Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql_error)?;
    let (head_position, events): (i64, i64) = copy
        .query_row(
            "SELECT coalesce(max(position), 0), count(*) FROM events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(sql_error)?;
    Ok(Snapshot {
        head_position: head_position.max(0) as u64,
        events: events.max(0) as u64,
        bytes,
    })
}
