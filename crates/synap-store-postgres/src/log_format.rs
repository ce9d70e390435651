//! The one-time conversion of the log to its compact form (migration 8).
//!
//! Migrations 1–7 stored an event's type and aggregate type as text, its version
//! as `bigint`, and its `data` and `metadata` as JSON text: about 490 bytes on
//! disk per note edit. Migration 8 replaces the table with
//! [`crate::schema::COMPACT_EVENTS`] (a type code, an `integer` version, `data` and
//! `metadata` in the domain's binary encoding; see `codec`) and converts every
//! stored event into it.
//!
//! It runs inside the migration's transaction, so a database is either wholly
//! converted or untouched. Positions, ids, versions and times are kept exactly
//! (subscribers resume from positions); payloads are read at whatever schema
//! version they were stored with and written at the current one, as an import
//! writes them. The old table and its partitions are set aside under `_json`
//! names, copied from page by page in position order, then dropped.

use crate::codec::{corrupt, timestamp};
use crate::pool::Conn;
use crate::schema::{COMPACT_EVENTS, row_level_security};
use crate::write::{EVENT_INSERT_COLUMNS, EventColumns, PendingEvent};
use synap_domain::StoredEvent;
use synap_domain::event::{EventMetadata, decode};
use synap_domain::ids::{EventId, UserId};
use synap_store::{StoreError, StoreResult};

/// Events converted per statement.
const CONVERT_PAGE_EVENTS: i64 = 5_000;

/// Migration 8: rebuilds `events` in the compact form, every event converted.
pub fn compact_the_log(conn: &mut Conn) -> StoreResult<()> {
    // The partitions, with their bounds, so the new table gets the same ones.
    let partitions: Vec<(String, String)> = conn
        .query(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'public.events'::regclass ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()
        .map_err(corrupt)?;

    let mut sql = String::from(
        "ALTER TABLE events RENAME TO events_json;\n\
         ALTER INDEX events_by_position RENAME TO events_json_by_position;\n\
         ALTER INDEX events_by_aggregate RENAME TO events_json_by_aggregate;\n\
         ALTER INDEX events_by_user RENAME TO events_json_by_user;\n",
    );
    for (name, _) in &partitions {
        sql.push_str(&format!("ALTER TABLE {name} RENAME TO {name}_json;\n"));
    }
    sql.push_str(COMPACT_EVENTS);
    sql.push_str(&row_level_security("events"));
    for (name, bound) in &partitions {
        sql.push_str(&format!(
            "CREATE TABLE {name} PARTITION OF events {bound};\n"
        ));
    }
    conn.client
        .batch_execute(&sql)
        .map_err(crate::codec::sql_error)?;

    let mut after = i64::MIN;
    loop {
        let rows = conn.query(
            "SELECT position, recorded_at, id, aggregate_id, user_id, version, type, \
                    schema_version, data, metadata \
             FROM events_json WHERE position > $1 ORDER BY position LIMIT $2",
            &[&after, &CONVERT_PAGE_EVENTS],
        )?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0).map_err(corrupt)?;
        copy_page(conn, &rows)?;
    }
    conn.client
        .batch_execute("DROP TABLE events_json")
        .map_err(crate::codec::sql_error)
}

/// Converts one page of old rows and inserts them into the new table.
fn copy_page(conn: &mut Conn, rows: &[postgres::Row]) -> StoreResult<()> {
    let mut pending = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i64 = row.try_get(0).map_err(corrupt)?;
        let event_type: &str = row.try_get(6).map_err(corrupt)?;
        let stored_schema = row.try_get::<_, i16>(7).map_err(corrupt)? as u32;
        let json: &str = row.try_get(8).map_err(corrupt)?;
        let payload = decode(event_type, stored_schema, json)
            .map_err(|e| StoreError::Corrupt(format!("event at position {position}: {e}")))?;
        let metadata: EventMetadata = serde_json::from_str(row.try_get(9).map_err(corrupt)?)
            .map_err(|e| {
                StoreError::Corrupt(format!("metadata of the event at position {position}: {e}"))
            })?;
        let event = StoredEvent {
            position: position as u64,
            id: EventId(row.try_get(2).map_err(corrupt)?),
            aggregate_id: row.try_get(3).map_err(corrupt)?,
            version: row.try_get::<_, i64>(5).map_err(corrupt)? as u64,
            schema_version: payload.schema_version(),
            payload,
            user_id: UserId(row.try_get(4).map_err(corrupt)?),
            metadata,
            recorded_at: timestamp(row.try_get(1).map_err(corrupt)?)?,
        };
        pending.push(PendingEvent::from_stored(&event, position)?);
    }
    let columns = EventColumns::new(&pending);
    conn.execute(
        &format!(
            "INSERT INTO events ({EVENT_INSERT_COLUMNS}) SELECT * FROM {}",
            EventColumns::unnest(1)
        ),
        &columns.params(),
    )?;
    Ok(())
}
