//! Maintenance on PostgreSQL: replaying the log into projections (used by
//! `rebuild` on the live tables and by `verify` into scratch copies off to the
//! side), comparing projections, and size figures. Replay calls the very
//! projection functions of the write path (`project.rs`) with no previous state,
//! as the SQLite backend's `admin.rs` does.
//!
//! - `rebuild` runs in one transaction on a pooled connection. It first takes
//!   `LOCK TABLE streams IN EXCLUSIVE MODE`: every append moves a stream row and
//!   every command locks the stream rows it reads, so writers of every process
//!   wait until the rebuild commits, while readers keep reading the old
//!   projections (MVCC) until then. The projections are cleared with `DELETE`
//!   (the application role has no `TRUNCATE`), which leaves dead rows for
//!   autovacuum; the snapshot cache is dropped as on SQLite.
//! - `verify` rebuilds into *temporary* tables (`PROJECTION_SCHEMA` created in
//!   `pg_temp`) on a scratch connection of its own, with `pg_temp` put first on that
//!   connection's `search_path`, so the unqualified projection tables of
//!   `project.rs` resolve to the scratch copies while `contents` still resolves
//!   to the live table. Temporary tables need only the `TEMPORARY` privilege
//!   (PostgreSQL grants it to everyone by default), so neither the application
//!   role nor the database needs a `CREATE` grant, and the server drops them when
//!   the connection closes — also when verify fails half-way or the process
//!   dies, so no scratch schema can be left behind.
//! - Verify reads one instant while writers go on: a second connection holds a
//!   `REPEATABLE READ READ ONLY` snapshot and reads the log from it; the live
//!   projections are copied (into `pg_temp.live_<table>`) in a transaction that
//!   imports that snapshot (`pg_export_snapshot`). The replay's writes then go
//!   to the temporary tables one page per short transaction. Why not one long
//!   transaction: writing, even to temporary tables, takes a transaction id, and
//!   an open one holds the feed's horizon (`feed.rs`) — followers would receive
//!   nothing new until verify ended. The read-only snapshot takes no id. Contents
//!   are read outside the snapshot, which is safe because content rows are only
//!   ever added.
//! - The comparison is `EXCEPT` both ways per table, on every stored column.
//!
//! Limits: a rebuild holds the feed's horizon for its duration (it writes), on
//! top of blocking writers; verify's snapshot holds back vacuum's horizon while
//! it runs. Replay reads the log in pages of [`REPLAY_PAGE_EVENTS`] and keeps one
//! stream's state in memory at a time (plus the page's completed ones). Tags are
//! re-registered in position order, which is transaction-id order: two
//! concurrent commands of one user introducing two spellings of a new tag may
//! have been stored in the other order, and verify then reports the tag row.

use crate::codec::{EVENT_COLUMNS, corrupt, event_from_row, sql_error};
use crate::pool::Conn;
use crate::project::{project_entity, project_relation, register_tag};
use crate::schema::{PROJECTION_SCHEMA, PROJECTION_TABLES, USER_TABLES};
use crate::store::PostgresStore;
use std::time::Instant;
use synap_domain::AggregateType;
use synap_domain::entity::EntityState;
use synap_domain::event::{
    EntityCreated, EntityEvent, EventPayload, StoredEvent, TagsChanged, type_code,
};
use synap_domain::relation::RelationState;
use synap_store::fold::{fold_entity, fold_relation};
use synap_store::progress::{forward, reporter};
use synap_store::{Progress, RebuildReport, Stats, StoreError, StoreResult, VerifyReport};
use uuid::Uuid;

/// Events between progress reports.
const PROGRESS_EVERY: u64 = 10_000;
/// Events read per page while replaying.
pub const REPLAY_PAGE_EVENTS: i64 = 5_000;
/// Most difference lines reported per table and direction.
const DIFFERENCES_PER_TABLE_MAX: usize = 50;
/// Longest rendering of one differing row in a report line.
const DIFFERENCE_CHARS_MAX: usize = 400;

/// The comparison of each projection: its table and the columns compared (every
/// stored column; `search.words` is generated from `title` and `body`).
const COMPARED: &[(&str, &str)] = &[
    (
        "entities",
        "id, user_id, type, title, title_key, preview, content_hash, content_size, media_type, \
         metadata, version, created_at, updated_at, deleted_at",
    ),
    ("tags", "user_id, key, name, count"),
    ("entity_tags", "entity_id, user_id, tag_key"),
    (
        "task_details",
        "entity_id, user_id, status, priority, due_at, completed_at",
    ),
    (
        "relations",
        "id, user_id, source_id, target_id, kind, version, created_at",
    ),
    ("search", "entity_id, user_id, title, body"),
    (
        "entity_attachments",
        "entity_id, id, user_id, filename, hash, size, media_type, added_at",
    ),
];

/// The fold of the stream being replayed.
// A page's worth at most: boxing the state would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Folding {
    Entity(Option<EntityState>),
    Relation(Option<RelationState>),
    /// Account and logged events: no projection.
    User,
}

/// Where replay reads the log and writes the projections.
enum Sides<'a> {
    /// Rebuild: both on one connection, in its open transaction.
    One(&'a mut Conn),
    /// Verify: the log read in `log`'s open snapshot; each page projected on
    /// `out` in a short transaction of its own, so no transaction id is held for
    /// the whole replay.
    Two {
        log: &'a mut Conn,
        out: &'a mut Conn,
    },
}

impl Sides<'_> {
    fn log(&mut self) -> &mut Conn {
        match self {
            Sides::One(conn) => conn,
            Sides::Two { log, .. } => log,
        }
    }

    /// Runs `work` on the projections' connection (in a transaction of its own
    /// when that connection is not the log's).
    fn project(&mut self, work: impl FnOnce(&mut Conn) -> StoreResult<()>) -> StoreResult<()> {
        match self {
            Sides::One(conn) => work(conn),
            Sides::Two { out, .. } => out.transaction(None, work),
        }
    }
}

/// Replays the whole log into the (empty) projection tables that unqualified
/// names resolve to on the projections' side. Returns (events, entities, live
/// relations).
fn replay(mut sides: Sides<'_>, progress: &dyn Fn(u64, u64)) -> StoreResult<(u64, u64, u64)> {
    let total = sides
        .log()
        .query_one("SELECT count(*) FROM events", &[])?
        .try_get::<_, i64>(0)
        .map_err(corrupt)? as u64;
    progress(0, total);

    // First spellings of tags, in log order: tag rows are never deleted, so the
    // spelling a user first used stays canonical, exactly as on the write path.
    let naming_tags: Vec<i16> = ["entity.created", "entity.tags_added"]
        .into_iter()
        .filter_map(type_code)
        .collect();
    let mut after = i64::MIN;
    loop {
        let events = sides
            .log()
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND type_code = ANY($3) \
                     ORDER BY position LIMIT $2"
                ),
                &[&after, &REPLAY_PAGE_EVENTS, &naming_tags],
            )?
            .iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<StoredEvent>>>()?;
        let Some(last) = events.last() else { break };
        after = last.position as i64;
        let mut named = Vec::new();
        for event in events {
            if let EventPayload::Entity(
                EntityEvent::Created(EntityCreated { tags, .. })
                | EntityEvent::TagsAdded(TagsChanged { tags }),
            ) = event.payload
            {
                named.push((event.user_id, tags));
            }
        }
        sides.project(|conn| {
            for (user, tags) in &named {
                for tag in tags {
                    register_tag(conn, user, tag)?;
                }
            }
            Ok(())
        })?;
    }

    // Then every stream in (aggregate, version) order, folded event by event and
    // projected once complete: memory holds a page's states, never whole streams.
    let (mut done, mut entities, mut relations) = (0u64, 0u64, 0u64);
    let mut current: Option<(Uuid, Folding)> = None;
    // Folded streams whose last event has been read, projected page by page.
    let mut complete: Vec<Folding> = Vec::new();
    let mut flush = |sides: &mut Sides<'_>, complete: &mut Vec<Folding>| -> StoreResult<()> {
        sides.project(|conn| {
            for folding in complete.drain(..) {
                match folding {
                    Folding::Entity(Some(state)) => {
                        project_entity(conn, None, &state, None)?;
                        entities += 1;
                    }
                    Folding::Relation(Some(state)) if !state.is_deleted() => {
                        project_relation(conn, None, &state)?;
                        relations += 1;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    };
    let (mut after_id, mut after_version) = (Uuid::nil(), 0i64);
    loop {
        let events = sides
            .log()
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE (aggregate_id, version) > ($1, $2::bigint) \
                     ORDER BY aggregate_id, version LIMIT $3"
                ),
                &[&after_id, &after_version, &REPLAY_PAGE_EVENTS],
            )?
            .iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<StoredEvent>>>()?;
        let Some(last) = events.last() else { break };
        (after_id, after_version) = (last.aggregate_id, last.version as i64);
        for event in &events {
            if current
                .as_ref()
                .is_some_and(|(id, _)| *id != event.aggregate_id)
                && let Some((_, folding)) = current.take()
            {
                complete.push(folding);
            }
            let (_, folding) = current.get_or_insert_with(|| {
                let folding = match event.aggregate_type() {
                    AggregateType::Entity => Folding::Entity(None),
                    AggregateType::Relation => Folding::Relation(None),
                    AggregateType::User => Folding::User,
                };
                (event.aggregate_id, folding)
            });
            match folding {
                Folding::Entity(state) => *state = fold_entity(state.take(), [event])?,
                Folding::Relation(state) => *state = fold_relation(state.take(), [event])?,
                Folding::User => {}
            }
            done += 1;
            if done % PROGRESS_EVERY == 0 {
                progress(done, total);
            }
        }
        flush(&mut sides, &mut complete)?;
    }
    complete.extend(current.take().map(|(_, folding)| folding));
    flush(&mut sides, &mut complete)?;
    progress(done, total);
    Ok((done, entities, relations))
}

/// Clears every projection and the snapshot cache and replays the log, in one
/// transaction that keeps writers out.
fn rebuild_on(conn: &mut Conn, progress: &dyn Fn(u64, u64)) -> StoreResult<RebuildReport> {
    let started = Instant::now();
    let (events, entities, relations) = conn.transaction(None, |conn| {
        conn.client
            .batch_execute("LOCK TABLE streams IN EXCLUSIVE MODE")
            .map_err(sql_error)?;
        let mut clear = String::new();
        for table in PROJECTION_TABLES.iter().chain(&["snapshots"]) {
            clear.push_str(&format!("DELETE FROM {table};\n"));
        }
        conn.client.batch_execute(&clear).map_err(sql_error)?;
        replay(Sides::One(conn), progress)
    })?;
    Ok(RebuildReport {
        events,
        entities,
        relations,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Drops and rebuilds every projection from the log (see the module comment).
pub async fn rebuild(store: &PostgresStore, progress: Progress<'_>) -> StoreResult<RebuildReport> {
    let (report, reports) = reporter();
    let task = store.pool().run(move |conn| rebuild_on(conn, &*report));
    forward(progress, reports, task).await
}

/// Rebuilds the projections into temporary tables on connections of its own and
/// compares them with the live ones (see the module comment).
pub async fn verify(store: &PostgresStore, progress: Progress<'_>) -> StoreResult<VerifyReport> {
    let url = store.pool().url().to_string();
    let app_role = store.pool().app_role();
    let objects = store.pool().objects.clone();
    let (report, reports) = reporter();
    // Not pooled connections: the temporary tables and search path must not
    // outlive verify, and closing the connection is what drops them.
    let task = async move {
        tokio::task::spawn_blocking(move || {
            let mut log = Conn::connect(&url, app_role)?;
            let mut out = Conn::connect(&url, app_role)?;
            log.objects = objects.clone();
            out.objects = objects.clone();
            // Objects first: the rebuild reads bodies from them.
            let mut differences = Vec::new();
            let mut warnings =
                crate::attachments::verify_objects(&mut log, objects.as_deref(), &mut differences)?;
            if !differences.is_empty() {
                warnings.push(synap_store::objects::PROJECTIONS_NOT_COMPARED.to_string());
                return Ok(VerifyReport {
                    events_checked: 0,
                    differences,
                    warnings,
                });
            }
            let mut verified = verify_on(&mut log, &mut out, &*report)?;
            verified.warnings = warnings;
            Ok(verified)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a maintenance task failed: {e}")))?
    };
    forward(progress, reports, task).await
}

fn verify_on(
    log: &mut Conn,
    out: &mut Conn,
    progress: &dyn Fn(u64, u64),
) -> StoreResult<VerifyReport> {
    // Created under the connection's own search path, so the index definitions
    // find `gin_trgm_ops` where the migrations found it.
    out.client
        .batch_execute(&PROJECTION_SCHEMA.replace("{schema}", "pg_temp"))
        .map_err(sql_error)?;
    out.client
        .batch_execute(&crate::attachments::ATTACHMENTS_SCHEMA.replace("{schema}", "pg_temp"))
        .map_err(sql_error)?;
    out.query_one(
        "SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), false)",
        &[],
    )?;
    // One instant for everything: the log connection's snapshot (read-only, so
    // it takes no transaction id), shared with the copy of the live projections.
    log.begin_snapshot()?;
    let snapshot: String = log
        .query_one("SELECT pg_export_snapshot()", &[])?
        .try_get(0)
        .map_err(corrupt)?;
    let mut copy = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ;\n\
         SET TRANSACTION SNAPSHOT '{}';\n",
        snapshot.replace('\'', "''")
    );
    for (table, columns) in COMPARED {
        copy.push_str(&format!(
            "CREATE TEMP TABLE live_{table} AS SELECT {columns} FROM public.{table};\n"
        ));
    }
    copy.push_str("COMMIT;");
    out.client.batch_execute(&copy).map_err(sql_error)?;
    let (events, _, _) = replay(Sides::Two { log, out }, progress)?;
    log.commit()?;
    Ok(VerifyReport {
        events_checked: events,
        differences: compare(out)?,
        warnings: Vec::new(),
    })
}

/// For each projection: rows only in the rebuild (`pg_temp.<table>`), and rows
/// only in the copy of the live table (`pg_temp.live_<table>`), one line each.
fn compare(conn: &mut Conn) -> StoreResult<Vec<String>> {
    let mut differences = Vec::new();
    for (table, columns) in COMPARED {
        for (label, first, second) in [
            ("missing from the live projection", "", "live_"),
            ("not in the log", "live_", ""),
        ] {
            let sql = format!(
                "SELECT row_to_json(d)::text FROM \
                 (SELECT {columns} FROM pg_temp.{first}{table} \
                  EXCEPT SELECT {columns} FROM pg_temp.{second}{table}) d \
                 LIMIT {}",
                DIFFERENCES_PER_TABLE_MAX + 1
            );
            let rows = conn.client.query(&sql, &[]).map_err(sql_error)?;
            for (index, row) in rows.iter().enumerate() {
                if index == DIFFERENCES_PER_TABLE_MAX {
                    differences.push(format!("{table}: more differences not listed"));
                    break;
                }
                let rendered: String = row.try_get(0).map_err(corrupt)?;
                let mut shown: String = rendered.chars().take(DIFFERENCE_CHARS_MAX).collect();
                if shown.len() < rendered.len() {
                    shown.push('…');
                }
                differences.push(format!("{table}: row {label}: {shown}"));
            }
        }
    }
    Ok(differences)
}

/// Size figures. `bytes_on_disk` is the total size (rows, TOAST and indexes) of
/// Synap's own tables, every partition of `events` included — not
/// `pg_database_size`, which adds the system catalogues (several MB even when
/// empty) and anything else sharing the database.
pub fn stats(conn: &mut Conn) -> StoreResult<Stats> {
    let others: Vec<&str> = USER_TABLES
        .iter()
        .copied()
        .filter(|table| *table != "events")
        .chain(["users", "streams", "schema_migrations"])
        .collect();
    let row = conn.query_one(
        "SELECT (SELECT count(*) FROM events), \
                (SELECT count(*) FROM entities), \
                (SELECT count(*) FROM relations), \
                (SELECT count(*) FROM users), \
                (SELECT count(*) FROM contents), \
                (SELECT coalesce(sum(size), 0)::bigint FROM contents), \
                (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM ( \
                    SELECT relid FROM pg_partition_tree('public.events'::regclass) \
                    UNION ALL \
                    SELECT ('public.' || quote_ident(t))::regclass FROM unnest($1::text[]) t) r)",
        &[&others],
    )?;
    let count = |index: usize| -> StoreResult<u64> {
        Ok(row.try_get::<_, i64>(index).map_err(corrupt)?.max(0) as u64)
    };
    let content_bytes = count(5)?;
    let bytes_on_disk = count(6)?;
    Ok(Stats {
        events: count(0)?,
        entities: count(1)?,
        relations: count(2)?,
        users: count(3)?,
        content_versions: count(4)?,
        content_bytes,
        bytes_on_disk,
        amplification: if content_bytes == 0 {
            0.0
        } else {
            bytes_on_disk as f64 / content_bytes as f64
        },
    })
}
