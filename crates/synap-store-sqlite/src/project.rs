//! Projection updates: bringing `entities`, `tags`, `entity_tags`, `task_details`,
//! `relations` and the `search` index from one state to the next. The write path
//! calls these inside the command's transaction; rebuild and verify call the very
//! same functions with no previous state, so live projections and a rebuild from
//! the log cannot drift apart by construction.

use crate::codec::{hash, micros, opt_timestamp, sql_error, timestamp, uuid};
use rusqlite::{Connection, OptionalExtension, params};
use synap_domain::entity::{ContentRef, EntityState, EntityType, TaskFields, TaskStatus};
use synap_domain::ids::{ContentHash, EntityId, RelationId, UserId};
use synap_domain::relation::{RelationKind, RelationState};
use synap_domain::tags::TagSet;
use synap_domain::text::{index_text, preview, title_key};
use synap_store::objects::{Objects, content_key};
use synap_store::pipeline::read_object_body;
use synap_store::{StoreError, StoreResult};

/// Columns of `entities` read by `entity_from_row`, prefixed with `e.`.
pub const ENTITY_COLUMNS: &str = "e.rowid, e.id, e.user_id, e.type, e.title, e.content_hash, e.content_size, \
     e.media_type, e.metadata, e.version, e.created_at, e.updated_at, e.deleted_at, e.preview";

/// An entity row with its rowid and preview.
#[derive(Debug, Clone)]
pub struct EntityRow {
    pub rowid: i64,
    pub state: EntityState,
    pub preview: String,
}

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Reads the entity columns of a row; tags and task fields are filled in by
/// `complete_entity`.
pub fn entity_from_row(row: &rusqlite::Row<'_>) -> StoreResult<EntityRow> {
    let entity_type: String = row.get(3).map_err(corrupt)?;
    let content_hash: Option<Vec<u8>> = row.get(5).map_err(corrupt)?;
    let content = match content_hash {
        Some(bytes) => Some(ContentRef {
            hash: hash(&bytes)?,
            size: row.get::<_, i64>(6).map_err(corrupt)? as u64,
            media_type: row.get(7).map_err(corrupt)?,
        }),
        None => None,
    };
    let metadata: String = row.get(8).map_err(corrupt)?;
    Ok(EntityRow {
        rowid: row.get(0).map_err(corrupt)?,
        state: EntityState {
            id: EntityId(uuid(&row.get::<_, Vec<u8>>(1).map_err(corrupt)?)?),
            user_id: UserId(uuid(&row.get::<_, Vec<u8>>(2).map_err(corrupt)?)?),
            entity_type: entity_type
                .parse::<EntityType>()
                .map_err(StoreError::Corrupt)?,
            title: row.get(4).map_err(corrupt)?,
            content,
            tags: TagSet::default(),
            task: None,
            attachments: Default::default(),
            metadata: serde_json::from_str(&metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            version: row.get::<_, i64>(9).map_err(corrupt)? as u64,
            created_at: timestamp(row.get(10).map_err(corrupt)?)?,
            updated_at: timestamp(row.get(11).map_err(corrupt)?)?,
            deleted_at: opt_timestamp(row.get(12).map_err(corrupt)?)?,
        },
        preview: row.get(13).map_err(corrupt)?,
    })
}

/// Fills in the tags and task fields of an entity read from its row.
pub fn complete_entity(conn: &Connection, row: &mut EntityRow) -> StoreResult<()> {
    let mut tags = conn
        .prepare_cached(
            "SELECT t.name FROM entity_tags et JOIN tags t ON t.rowid = et.tag_rowid WHERE et.entity_rowid = ?1",
        )
        .map_err(sql_error)?;
    let names = tags
        .query_map([row.rowid], |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    row.state.tags = TagSet::from_names(names);
    let mut task = conn
        .prepare_cached("SELECT status, priority, due_at, completed_at FROM task_details WHERE entity_rowid = ?1")
        .map_err(sql_error)?;
    let fields = task
        .query_row([row.rowid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    row.state.task = match fields {
        Some((status, priority, due_at, completed_at)) => Some(TaskFields {
            status: status.parse::<TaskStatus>().map_err(StoreError::Corrupt)?,
            priority: priority as u8,
            due_at: opt_timestamp(due_at)?,
            completed_at: opt_timestamp(completed_at)?,
        }),
        None => None,
    };
    row.state.attachments = crate::attachments::load_attachments(conn, row.rowid)?;
    Ok(())
}

/// An entity of `user` by id, with tags and task fields.
pub fn load_entity(
    conn: &Connection,
    user: &UserId,
    id: EntityId,
) -> StoreResult<Option<EntityRow>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.id = ?1 AND e.user_id = ?2"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![id.as_bytes(), user.as_bytes()])
        .map_err(sql_error)?;
    let Some(row) = rows.next().map_err(sql_error)? else {
        return Ok(None);
    };
    let mut entity = entity_from_row(row)?;
    drop(rows);
    complete_entity(conn, &mut entity)?;
    Ok(Some(entity))
}

/// A content body of `user` by hash, read from its row or from the object store
/// (bodies over the inline threshold).
pub fn load_body(
    conn: &Connection,
    objects: Option<&Objects>,
    user: &UserId,
    content_hash: &ContentHash,
) -> StoreResult<Option<String>> {
    let found = conn
        .prepare_cached(
            "SELECT storage, body, object_key FROM contents WHERE user_id = ?1 AND hash = ?2",
        )
        .map_err(sql_error)?
        .query_row(params![user.as_bytes(), content_hash.as_bytes()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    match found {
        None => Ok(None),
        Some((storage, _, key)) if storage == crate::attachments::STORAGE_OBJECT => {
            let key = key.unwrap_or_else(|| content_key(user, content_hash));
            read_object_body(objects, &key).map(Some)
        }
        Some((_, body, _)) => Ok(body),
    }
}

fn body_of(
    conn: &Connection,
    objects: Option<&Objects>,
    state: &EntityState,
    given: Option<&str>,
) -> StoreResult<String> {
    match (&state.content, given) {
        (None, _) => Ok(String::new()),
        (Some(_), Some(body)) => Ok(body.to_string()),
        (Some(content), None) => load_body(conn, objects, &state.user_id, &content.hash)?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "entity {} refers to missing content {}",
                    state.id, content.hash
                ))
            }),
    }
}

/// Brings every entity projection from `before` to `after`.
pub fn project_entity(
    conn: &Connection,
    objects: Option<&Objects>,
    before: Option<&EntityState>,
    after: &EntityState,
    body: Option<&str>,
) -> StoreResult<()> {
    let content_changed = before.is_none_or(|b| b.content != after.content);
    let title_changed = before.is_none_or(|b| b.title != after.title);
    let mut lazy_body: Option<String> = None;
    let mut body_text = |conn: &Connection| -> StoreResult<String> {
        if lazy_body.is_none() {
            lazy_body = Some(body_of(conn, objects, after, body)?);
        }
        Ok(lazy_body.clone().unwrap_or_default())
    };

    // The entity row.
    let content = after.content.as_ref();
    let metadata =
        serde_json::to_string(&after.metadata).map_err(|e| StoreError::Backend(e.to_string()))?;
    let rowid: i64 = if before.is_none() {
        conn.prepare_cached(
            "INSERT INTO entities (id, user_id, type, title, title_key, preview, content_hash, content_size, \
             media_type, metadata, version, created_at, updated_at, deleted_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(sql_error)?
        .execute(params![
            after.id.as_bytes(),
            after.user_id.as_bytes(),
            after.entity_type.as_str(),
            after.title,
            title_key(&after.title),
            preview(&body_text(conn)?),
            content.map(|c| c.hash.as_bytes().to_vec()),
            content.map(|c| c.size as i64),
            content.map(|c| c.media_type.as_str()),
            metadata,
            after.version as i64,
            micros(after.created_at),
            micros(after.updated_at),
            after.deleted_at.map(micros),
        ])
        .map_err(sql_error)?;
        conn.last_insert_rowid()
    } else {
        let rowid: i64 = conn
            .prepare_cached("SELECT rowid FROM entities WHERE id = ?1")
            .map_err(sql_error)?
            .query_row([after.id.as_bytes()], |r| r.get(0))
            .map_err(sql_error)?;
        if content_changed {
            conn.prepare_cached("UPDATE entities SET preview = ?2 WHERE rowid = ?1")
                .map_err(sql_error)?
                .execute(params![rowid, preview(&body_text(conn)?)])
                .map_err(sql_error)?;
        }
        conn.prepare_cached(
            "UPDATE entities SET type = ?2, title = ?3, title_key = ?4, content_hash = ?5, content_size = ?6, \
             media_type = ?7, metadata = ?8, version = ?9, updated_at = ?10, deleted_at = ?11 WHERE rowid = ?1",
        )
        .map_err(sql_error)?
        .execute(params![
            rowid,
            after.entity_type.as_str(),
            after.title,
            title_key(&after.title),
            content.map(|c| c.hash.as_bytes().to_vec()),
            content.map(|c| c.size as i64),
            content.map(|c| c.media_type.as_str()),
            metadata,
            after.version as i64,
            micros(after.updated_at),
            after.deleted_at.map(micros),
        ])
        .map_err(sql_error)?;
        rowid
    };

    // Tags and their counts of live entities.
    let was_live = before.is_some_and(|b| !b.is_deleted());
    let is_live = !after.is_deleted();
    let empty = TagSet::default();
    let before_tags = before.map_or(&empty, |b| &b.tags);
    for (key, name) in after.tags.entries() {
        let existed = before_tags.contains(key);
        let tag_rowid = if existed {
            tag_rowid(conn, &after.user_id, key)?
        } else {
            ensure_tag(conn, &after.user_id, key, name)?
        };
        if !existed {
            conn.prepare_cached(
                "INSERT INTO entity_tags (entity_rowid, tag_rowid) VALUES (?1, ?2)",
            )
            .map_err(sql_error)?
            .execute(params![rowid, tag_rowid])
            .map_err(sql_error)?;
        }
        let delta = i64::from(is_live) - i64::from(existed && was_live);
        adjust_tag_count(conn, tag_rowid, delta)?;
    }
    for (key, _) in before_tags.entries() {
        if after.tags.contains(key) {
            continue;
        }
        let tag_rowid = tag_rowid(conn, &after.user_id, key)?;
        conn.prepare_cached("DELETE FROM entity_tags WHERE entity_rowid = ?1 AND tag_rowid = ?2")
            .map_err(sql_error)?
            .execute(params![rowid, tag_rowid])
            .map_err(sql_error)?;
        adjust_tag_count(conn, tag_rowid, -i64::from(was_live))?;
    }

    crate::attachments::project_attachments(conn, rowid, before, after)?;

    // Task details: present exactly while the entity is a task.
    if before.map(|b| &b.task) != Some(&after.task) {
        match &after.task {
            Some(task) => {
                conn.prepare_cached(
                    "INSERT INTO task_details (entity_rowid, status, priority, due_at, completed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (entity_rowid) DO UPDATE SET \
                     status = excluded.status, priority = excluded.priority, due_at = excluded.due_at, \
                     completed_at = excluded.completed_at",
                )
                .map_err(sql_error)?
                .execute(params![
                    rowid,
                    task.status.as_str(),
                    task.priority,
                    task.due_at.map(micros),
                    task.completed_at.map(micros)
                ])
                .map_err(sql_error)?;
            }
            None => {
                conn.prepare_cached("DELETE FROM task_details WHERE entity_rowid = ?1")
                    .map_err(sql_error)?
                    .execute([rowid])
                    .map_err(sql_error)?;
            }
        }
    }

    // The full-text index holds live entities only.
    let indexed = was_live;
    let reindex = content_changed || title_changed;
    if indexed && (!is_live || reindex) {
        conn.prepare_cached("DELETE FROM search WHERE rowid = ?1")
            .map_err(sql_error)?
            .execute([rowid])
            .map_err(sql_error)?;
    }
    if is_live && (!indexed || reindex) {
        conn.prepare_cached("INSERT INTO search (rowid, title, body) VALUES (?1, ?2, ?3)")
            .map_err(sql_error)?
            .execute(params![
                rowid,
                index_text(&after.title),
                index_text(&body_text(conn)?)
            ])
            .map_err(sql_error)?;
    }
    Ok(())
}

fn tag_rowid(conn: &Connection, user: &UserId, key: &str) -> StoreResult<i64> {
    conn.prepare_cached("SELECT rowid FROM tags WHERE user_id = ?1 AND key = ?2")
        .map_err(sql_error)?
        .query_row(params![user.as_bytes(), key], |r| r.get(0))
        .map_err(sql_error)
}

/// The tag row for `key`, created with this spelling if the user never had it.
/// Tag rows are never deleted, so the first spelling is kept for good.
fn ensure_tag(conn: &Connection, user: &UserId, key: &str, name: &str) -> StoreResult<i64> {
    conn.prepare_cached("INSERT INTO tags (user_id, key, name, count) VALUES (?1, ?2, ?3, 0) ON CONFLICT DO NOTHING")
        .map_err(sql_error)?
        .execute(params![user.as_bytes(), key, name])
        .map_err(sql_error)?;
    tag_rowid(conn, user, key)
}

/// Registers a tag spelling without attaching it (rebuild replays first spellings).
pub fn register_tag(conn: &Connection, user: &UserId, name: &str) -> StoreResult<()> {
    ensure_tag(conn, user, &synap_domain::tags::tag_key(name), name).map(|_| ())
}

fn adjust_tag_count(conn: &Connection, tag_rowid: i64, delta: i64) -> StoreResult<()> {
    if delta != 0 {
        conn.prepare_cached("UPDATE tags SET count = count + ?2 WHERE rowid = ?1")
            .map_err(sql_error)?
            .execute(params![tag_rowid, delta])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Brings the `relations` projection from `before` to `after`. Only live relations
/// are kept; a deleted relation's row is removed (its history stays in the log).
/// (`_before` is unused here: the upsert needs only the new state.)
pub fn project_relation(
    conn: &Connection,
    _before: Option<&RelationState>,
    after: &RelationState,
) -> StoreResult<()> {
    if after.is_deleted() {
        conn.prepare_cached("DELETE FROM relations WHERE id = ?1")
            .map_err(sql_error)?
            .execute([after.id.as_bytes()])
            .map_err(sql_error)?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO relations (id, user_id, source_id, target_id, kind, version, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
    )
    .map_err(sql_error)?
    .execute(params![
        after.id.as_bytes(),
        after.user_id.as_bytes(),
        after.source_id.as_bytes(),
        after.target_id.as_bytes(),
        after.kind.as_str(),
        after.version as i64,
        micros(after.created_at),
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// A live relation of `user` by id.
pub fn load_relation(
    conn: &Connection,
    user: &UserId,
    id: RelationId,
) -> StoreResult<Option<RelationState>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, user_id, source_id, target_id, kind, version, created_at FROM relations WHERE id = ?1 AND user_id = ?2",
        )
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![id.as_bytes(), user.as_bytes()])
        .map_err(sql_error)?;
    match rows.next().map_err(sql_error)? {
        Some(row) => relation_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// Reads `id, user_id, source_id, target_id, kind, version, created_at`.
pub fn relation_from_row(row: &rusqlite::Row<'_>) -> StoreResult<RelationState> {
    let kind: String = row.get(4).map_err(corrupt)?;
    Ok(RelationState {
        id: RelationId(uuid(&row.get::<_, Vec<u8>>(0).map_err(corrupt)?)?),
        user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(corrupt)?)?),
        source_id: EntityId(uuid(&row.get::<_, Vec<u8>>(2).map_err(corrupt)?)?),
        target_id: EntityId(uuid(&row.get::<_, Vec<u8>>(3).map_err(corrupt)?)?),
        kind: RelationKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        version: row.get::<_, i64>(5).map_err(corrupt)? as u64,
        created_at: timestamp(row.get(6).map_err(corrupt)?)?,
        deleted_at: None,
    })
}
