//! Maintenance: replaying the log into projections (used by `rebuild` on the live
//! database and by `verify` into a scratch database off to the side), comparing
//! projections, and size figures. Replay calls the same projection functions as
//! the write path.

use crate::codec::{EVENT_COLUMNS, event_from_row, sql_error};
use crate::project::{project_entity, project_relation, register_tag};
use crate::schema::{PROJECTION_SCHEMA, PROJECTION_TABLES};
use rusqlite::Connection;
use std::path::Path;
use std::time::Instant;
use synap_domain::AggregateType;
use synap_domain::event::StoredEvent;
use synap_store::fold::{fold_entity, fold_relation};
use synap_store::objects::Objects;
use synap_store::{Progress, RebuildReport, StoreError, StoreResult, VerifyReport};

/// Events between progress reports.
const PROGRESS_EVERY: u64 = 10_000;
/// Most difference lines reported per table.
const DIFFERENCES_PER_TABLE_MAX: usize = 50;

/// Replays the whole log into the (empty) projection tables visible as unqualified
/// names on `conn`. Returns (events, entities, live relations).
pub fn replay(
    conn: &Connection,
    objects: Option<&Objects>,
    progress: Progress<'_>,
) -> StoreResult<(u64, u64, u64)> {
    let total: u64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .map_err(sql_error)? as u64;
    progress(0, total);

    // First spellings of tags, in log order: tag rows are never deleted, so the
    // spelling a user first used stays canonical, exactly as on the write path.
    {
        let mut statement = conn
            .prepare("SELECT user_id, data FROM events WHERE type IN ('entity.created', 'entity.tags_added') ORDER BY position")
            .map_err(sql_error)?;
        let mut rows = statement.query([]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let user: Vec<u8> = row.get(0).map_err(sql_error)?;
            let user = synap_domain::UserId(crate::codec::uuid(&user)?);
            let data: String = row.get(1).map_err(sql_error)?;
            let value: serde_json::Value =
                serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(tags) = value.get("tags").and_then(|t| t.as_array()) {
                for tag in tags.iter().filter_map(|t| t.as_str()) {
                    register_tag(conn, &user, tag)?;
                }
            }
        }
    }

    // Then every stream, one at a time, folded and projected.
    let mut statement = conn
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS}, aggregate_type FROM events ORDER BY aggregate_id, version"
        ))
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    let (mut done, mut entities, mut relations) = (0u64, 0u64, 0u64);
    let mut stream: Vec<StoredEvent> = Vec::new();
    let mut flush = |stream: &mut Vec<StoredEvent>| -> StoreResult<()> {
        let Some(first) = stream.first() else {
            return Ok(());
        };
        match first.aggregate_type() {
            AggregateType::Entity => {
                if let Some(state) = fold_entity(None, stream.iter())? {
                    project_entity(conn, objects, None, &state, None)?;
                    entities += 1;
                }
            }
            AggregateType::Relation => {
                if let Some(state) = fold_relation(None, stream.iter())?
                    && !state.is_deleted()
                {
                    project_relation(conn, None, &state)?;
                    relations += 1;
                }
            }
            AggregateType::User => {}
        }
        stream.clear();
        Ok(())
    };
    while let Some(row) = rows.next().map_err(sql_error)? {
        let event = event_from_row(row)?;
        if stream
            .first()
            .is_some_and(|first| first.aggregate_id != event.aggregate_id)
        {
            flush(&mut stream)?;
        }
        stream.push(event);
        done += 1;
        if done % PROGRESS_EVERY == 0 {
            progress(done, total);
        }
    }
    flush(&mut stream)?;
    progress(done, total);
    Ok((done, entities, relations))
}

/// Drops and rebuilds every projection from the log, in one transaction on the
/// write connection, and drops the snapshot cache.
pub fn rebuild(
    conn: &mut Connection,
    objects: Option<&Objects>,
    progress: Progress<'_>,
) -> StoreResult<RebuildReport> {
    let started = Instant::now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    for table in PROJECTION_TABLES {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))
            .map_err(sql_error)?;
    }
    tx.execute_batch("DELETE FROM snapshots")
        .map_err(sql_error)?;
    tx.execute_batch(PROJECTION_SCHEMA).map_err(sql_error)?;
    let (events, entities, relations) = replay(&tx, objects, progress)?;
    tx.commit().map_err(sql_error)?;
    Ok(RebuildReport {
        events,
        entities,
        relations,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Rebuilds the projections into a scratch database with the live one attached,
/// then compares table by table, all inside one read transaction of the live data.
pub fn verify(
    live_path: &Path,
    scratch_path: &Path,
    objects: Option<&Objects>,
    progress: Progress<'_>,
) -> StoreResult<VerifyReport> {
    let conn = Connection::open(scratch_path).map_err(sql_error)?;
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(sql_error)?;
    conn.execute_batch(PROJECTION_SCHEMA).map_err(sql_error)?;
    conn.execute("ATTACH DATABASE ?1 AS live", [live_path.to_string_lossy()])
        .map_err(sql_error)?;
    conn.execute_batch("BEGIN").map_err(sql_error)?;
    // Unqualified `events`, `contents` and `users` resolve to the live database,
    // which has them; projections resolve to the scratch database first.
    // Objects first: the replay reads bodies from them.
    let mut differences = Vec::new();
    let mut warnings = crate::attachments::verify_objects(&conn, objects, &mut differences)?;
    let events = if differences.is_empty() {
        let (events, _, _) = replay(&conn, objects, progress)?;
        differences = compare(&conn)?;
        events
    } else {
        warnings.push(synap_store::objects::PROJECTIONS_NOT_COMPARED.to_string());
        0
    };
    conn.execute_batch("COMMIT").map_err(sql_error)?;
    Ok(VerifyReport {
        events_checked: events,
        differences,
        warnings,
    })
}

/// For each projection: rows (by natural keys) only in the rebuild, and rows only
/// in the live database.
fn compare(conn: &Connection) -> StoreResult<Vec<String>> {
    let checks: &[(&str, &str)] = &[
        (
            "entities",
            "SELECT hex(id), type, title, title_key, preview, hex(content_hash), content_size, media_type, metadata, \
             version, created_at, updated_at, deleted_at, hex(user_id) FROM {db}.entities",
        ),
        (
            "tags",
            "SELECT hex(user_id), key, name, count FROM {db}.tags",
        ),
        (
            "entity tags",
            "SELECT hex(e.id), t.key FROM {db}.entity_tags et JOIN {db}.entities e ON e.rowid = et.entity_rowid \
             JOIN {db}.tags t ON t.rowid = et.tag_rowid",
        ),
        (
            "task details",
            "SELECT hex(e.id), d.status, d.priority, d.due_at, d.completed_at FROM {db}.task_details d \
             JOIN {db}.entities e ON e.rowid = d.entity_rowid",
        ),
        (
            "relations",
            "SELECT hex(id), hex(user_id), hex(source_id), hex(target_id), kind, version, created_at FROM {db}.relations",
        ),
        (
            "attachments",
            "SELECT hex(e.id), hex(a.id), a.filename, hex(a.hash), a.size, a.media_type, a.added_at \
             FROM {db}.entity_attachments a JOIN {db}.entities e ON e.rowid = a.entity_rowid",
        ),
        (
            "search documents",
            "SELECT hex(e.id) FROM {db}.search s JOIN {db}.entities e ON e.rowid = s.rowid",
        ),
        (
            "search terms",
            "SELECT term, doc, cnt FROM {db}_search_terms",
        ),
    ];
    conn.execute_batch(
        "CREATE VIRTUAL TABLE temp.main_search_terms USING fts5vocab(main, search, 'row');
         CREATE VIRTUAL TABLE temp.live_search_terms USING fts5vocab(live, search, 'row');",
    )
    .map_err(sql_error)?;
    let mut differences = Vec::new();
    for (name, query) in checks {
        let rebuilt = query.replace("{db}", "main");
        let live = query.replace("{db}", "live");
        for (label, first, second) in [
            ("missing from the live projection", &rebuilt, &live),
            ("not in the log", &live, &rebuilt),
        ] {
            let sql = format!(
                "SELECT * FROM ({first} EXCEPT {second}) LIMIT {}",
                DIFFERENCES_PER_TABLE_MAX + 1
            );
            let mut statement = conn.prepare(&sql).map_err(sql_error)?;
            let columns = statement.column_count();
            let mut rows = statement.query([]).map_err(sql_error)?;
            let mut count = 0;
            while let Some(row) = rows.next().map_err(sql_error)? {
                count += 1;
                if count > DIFFERENCES_PER_TABLE_MAX {
                    differences.push(format!("{name}: more differences not listed"));
                    break;
                }
                let values: Vec<String> = (0..columns)
                    .map(|i| match row.get_ref(i) {
                        Ok(value) => render(value),
                        Err(_) => "?".into(),
                    })
                    .collect();
                differences.push(format!("{name}: row {label}: ({})", values.join(", ")));
            }
        }
    }
    conn.execute_batch("DROP TABLE temp.main_search_terms; DROP TABLE temp.live_search_terms;")
        .map_err(sql_error)?;
    Ok(differences)
}

fn render(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => "null".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let short: String = text.chars().take(60).collect();
            format!("{short:?}")
        }
        ValueRef::Blob(b) => format!("x'{}'", b.len()),
    }
}
