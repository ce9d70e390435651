//! Projection updates: bringing `entities`, `tags`, `entity_tags`, `task_details`,
//! `relations` and `search` from one state to the next. The write path calls these
//! inside the command's transaction; rebuild and verify call the very same
//! functions with no previous state, so live projections and a rebuild from the
//! log cannot drift apart by construction. (The same steps as the SQLite
//! backend's `project.rs`, in PostgreSQL's SQL.)

use crate::codec::{corrupt, hash, micros, opt_timestamp, timestamp};
use crate::pool::Conn;
use postgres::Row;
use synap_domain::entity::{ContentRef, EntityState, EntityType, TaskFields, TaskStatus};
use synap_domain::ids::{ContentHash, EntityId, RelationId, UserId};
use synap_domain::relation::{RelationKind, RelationState};
use synap_domain::tags::TagSet;
use synap_domain::text::{index_text, preview, title_key};
use synap_store::{StoreError, StoreResult};

/// Most bytes of a body's folded text that go into the search index. PostgreSQL
/// refuses a `tsvector` over 1 MB, and bodies may be 10 MiB; text past this
/// point is not searchable on PostgreSQL (SQLite indexes it all).
pub const SEARCH_BODY_BYTES_MAX: usize = 512 * 1024;

/// Columns of `entities` read by `entity_from_row`, prefixed with `e.`.
pub const ENTITY_COLUMNS: &str = "e.id, e.user_id, e.type, e.title, e.content_hash, e.content_size, \
     e.media_type, e.metadata, e.version, e.created_at, e.updated_at, e.deleted_at, e.preview";

/// An entity row with its preview.
#[derive(Debug, Clone)]
pub struct EntityRow {
    pub state: EntityState,
    pub preview: String,
}

/// Reads the entity columns of a row (selected with `ENTITY_COLUMNS`); tags and
/// task fields are filled in by `complete_entity`.
pub fn entity_from_row(row: &Row) -> StoreResult<EntityRow> {
    let entity_type: String = row.try_get(2).map_err(corrupt)?;
    let content_hash: Option<Vec<u8>> = row.try_get(4).map_err(corrupt)?;
    let content = match content_hash {
        Some(bytes) => Some(ContentRef {
            hash: hash(&bytes)?,
            size: row.try_get::<_, i64>(5).map_err(corrupt)? as u64,
            media_type: row.try_get(6).map_err(corrupt)?,
        }),
        None => None,
    };
    let metadata: serde_json::Value = row.try_get(7).map_err(corrupt)?;
    Ok(EntityRow {
        state: EntityState {
            id: EntityId(row.try_get(0).map_err(corrupt)?),
            user_id: UserId(row.try_get(1).map_err(corrupt)?),
            entity_type: entity_type
                .parse::<EntityType>()
                .map_err(StoreError::Corrupt)?,
            title: row.try_get(3).map_err(corrupt)?,
            content,
            tags: TagSet::default(),
            task: None,
            attachments: Default::default(),
            metadata: serde_json::from_value(metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            version: row.try_get::<_, i64>(8).map_err(corrupt)? as u64,
            created_at: timestamp(row.try_get(9).map_err(corrupt)?)?,
            updated_at: timestamp(row.try_get(10).map_err(corrupt)?)?,
            deleted_at: opt_timestamp(row.try_get(11).map_err(corrupt)?)?,
        },
        preview: row.try_get(12).map_err(corrupt)?,
    })
}

/// Fills in the tags and task fields of an entity read from its row.
pub fn complete_entity(conn: &mut Conn, row: &mut EntityRow) -> StoreResult<()> {
    let id = row.state.id.0;
    let names = conn
        .query(
            "SELECT t.name FROM entity_tags et JOIN tags t ON t.user_id = et.user_id AND t.key = et.tag_key \
             WHERE et.entity_id = $1",
            &[&id],
        )?
        .iter()
        .map(|r| r.try_get::<_, String>(0).map_err(corrupt))
        .collect::<StoreResult<Vec<_>>>()?;
    row.state.tags = TagSet::from_names(names);
    let task = conn.query_opt(
        "SELECT status, priority, due_at, completed_at FROM task_details WHERE entity_id = $1",
        &[&id],
    )?;
    row.state.task = match task {
        Some(r) => Some(TaskFields {
            status: r
                .try_get::<_, String>(0)
                .map_err(corrupt)?
                .parse::<TaskStatus>()
                .map_err(StoreError::Corrupt)?,
            priority: r.try_get::<_, i16>(1).map_err(corrupt)? as u8,
            due_at: opt_timestamp(r.try_get(2).map_err(corrupt)?)?,
            completed_at: opt_timestamp(r.try_get(3).map_err(corrupt)?)?,
        }),
        None => None,
    };
    row.state.attachments = crate::attachments::load_attachments(conn, row.state.id)?;
    Ok(())
}

/// An entity of `user` by id, with tags and task fields.
pub fn load_entity(conn: &mut Conn, user: &UserId, id: EntityId) -> StoreResult<Option<EntityRow>> {
    let row = conn.query_opt(
        &format!("SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.id = $1 AND e.user_id = $2"),
        &[&id.0, &user.0],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut entity = entity_from_row(&row)?;
    complete_entity(conn, &mut entity)?;
    Ok(Some(entity))
}

/// A content body of `user` by hash, read from its row or from the object store
/// (bodies over the inline threshold).
pub fn load_body(
    conn: &mut Conn,
    user: &UserId,
    content_hash: &ContentHash,
) -> StoreResult<Option<String>> {
    let Some(row) = conn.query_opt(
        "SELECT storage, body, object_key FROM contents WHERE user_id = $1 AND hash = $2",
        &[&user.0, &content_hash.as_bytes().as_slice()],
    )?
    else {
        return Ok(None);
    };
    let storage: String = row.try_get(0).map_err(corrupt)?;
    if storage == crate::attachments::STORAGE_OBJECT {
        let key = row
            .try_get::<_, Option<String>>(2)
            .map_err(corrupt)?
            .unwrap_or_else(|| synap_store::objects::content_key(user, content_hash));
        return synap_store::pipeline::read_object_body(conn.objects.as_deref(), &key).map(Some);
    }
    row.try_get::<_, Option<String>>(1).map_err(corrupt)
}

fn body_of(conn: &mut Conn, state: &EntityState, given: Option<&str>) -> StoreResult<String> {
    match (&state.content, given) {
        (None, _) => Ok(String::new()),
        (Some(_), Some(body)) => Ok(body.to_string()),
        (Some(content), None) => load_body(conn, &state.user_id, &content.hash)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "entity {} refers to missing content {}",
                state.id, content.hash
            ))
        }),
    }
}

/// Brings every entity projection from `before` to `after`.
pub fn project_entity(
    conn: &mut Conn,
    before: Option<&EntityState>,
    after: &EntityState,
    body: Option<&str>,
) -> StoreResult<()> {
    let content_changed = before.is_none_or(|b| b.content != after.content);
    let title_changed = before.is_none_or(|b| b.title != after.title);
    let mut lazy_body: Option<String> = None;
    let mut body_text = |conn: &mut Conn| -> StoreResult<String> {
        if lazy_body.is_none() {
            lazy_body = Some(body_of(conn, after, body)?);
        }
        Ok(lazy_body.clone().unwrap_or_default())
    };

    // The entity row.
    let content = after.content.as_ref();
    let metadata =
        serde_json::to_value(&after.metadata).map_err(|e| StoreError::Backend(e.to_string()))?;
    let id = after.id.0;
    let user = after.user_id.0;
    let hash_bytes = content.map(|c| c.hash.as_bytes().to_vec());
    let size = content.map(|c| c.size as i64);
    let media_type = content.map(|c| c.media_type.as_str());
    let deleted_at = after.deleted_at.map(micros);
    if before.is_none() {
        let preview = preview(&body_text(conn)?);
        conn.execute(
            "INSERT INTO entities (id, user_id, type, title, title_key, preview, content_hash, content_size, \
             media_type, metadata, version, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &id,
                &user,
                &after.entity_type.as_str(),
                &after.title,
                &title_key(&after.title),
                &preview,
                &hash_bytes,
                &size,
                &media_type,
                &metadata,
                &(after.version as i64),
                &micros(after.created_at),
                &micros(after.updated_at),
                &deleted_at,
            ],
        )?;
    } else {
        if content_changed {
            let preview = preview(&body_text(conn)?);
            conn.execute(
                "UPDATE entities SET preview = $2 WHERE id = $1",
                &[&id, &preview],
            )?;
        }
        conn.execute(
            "UPDATE entities SET type = $2, title = $3, title_key = $4, content_hash = $5, content_size = $6, \
             media_type = $7, metadata = $8, version = $9, updated_at = $10, deleted_at = $11 WHERE id = $1",
            &[
                &id,
                &after.entity_type.as_str(),
                &after.title,
                &title_key(&after.title),
                &hash_bytes,
                &size,
                &media_type,
                &metadata,
                &(after.version as i64),
                &micros(after.updated_at),
                &deleted_at,
            ],
        )?;
    }

    // Tags and their counts of live entities. Keys in sorted order, so two
    // transactions touching the same tags lock their rows in the same order.
    let was_live = before.is_some_and(|b| !b.is_deleted());
    let is_live = !after.is_deleted();
    let empty = TagSet::default();
    let before_tags = before.map_or(&empty, |b| &b.tags);
    let mut changes: Vec<(&str, Option<&str>, i64)> = Vec::new();
    for (key, name) in after.tags.entries() {
        let existed = before_tags.contains(key);
        let delta = i64::from(is_live) - i64::from(existed && was_live);
        changes.push((key, (!existed).then_some(name), delta));
    }
    for (key, _) in before_tags.entries() {
        if !after.tags.contains(key) {
            changes.push((key, None, -i64::from(was_live)));
        }
    }
    changes.sort_by(|a, b| a.0.cmp(b.0));
    for (key, added_name, delta) in changes {
        let attached = after.tags.contains(key);
        if let Some(name) = added_name {
            ensure_tag(conn, &after.user_id, key, name)?;
            conn.execute(
                "INSERT INTO entity_tags (entity_id, user_id, tag_key) VALUES ($1, $2, $3)",
                &[&id, &user, &key],
            )?;
        } else if !attached {
            conn.execute(
                "DELETE FROM entity_tags WHERE entity_id = $1 AND tag_key = $2",
                &[&id, &key],
            )?;
        }
        if delta != 0 {
            conn.execute(
                "UPDATE tags SET count = count + $3 WHERE user_id = $1 AND key = $2",
                &[&user, &key, &delta],
            )?;
        }
    }

    crate::attachments::project_attachments(conn, before, after)?;

    // Task details: present exactly while the entity is a task.
    if before.map(|b| &b.task) != Some(&after.task) {
        match &after.task {
            Some(task) => {
                conn.execute(
                    "INSERT INTO task_details (entity_id, user_id, status, priority, due_at, completed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (entity_id) DO UPDATE SET \
                     status = excluded.status, priority = excluded.priority, due_at = excluded.due_at, \
                     completed_at = excluded.completed_at",
                    &[
                        &id,
                        &user,
                        &task.status.as_str(),
                        &i16::from(task.priority),
                        &task.due_at.map(micros),
                        &task.completed_at.map(micros),
                    ],
                )?;
            }
            None => {
                conn.execute("DELETE FROM task_details WHERE entity_id = $1", &[&id])?;
            }
        }
    }

    // The full-text index holds live entities only.
    let indexed = was_live;
    let reindex = content_changed || title_changed;
    if indexed && !is_live {
        conn.execute("DELETE FROM search WHERE entity_id = $1", &[&id])?;
    }
    if is_live && (!indexed || reindex) {
        let title = index_text(&after.title);
        let mut body = index_text(&body_text(conn)?);
        if body.len() > SEARCH_BODY_BYTES_MAX {
            let mut cut = SEARCH_BODY_BYTES_MAX;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        conn.execute(
            "INSERT INTO search (entity_id, user_id, title, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (entity_id) DO UPDATE SET title = excluded.title, body = excluded.body",
            &[&id, &user, &title, &body],
        )?;
    }
    Ok(())
}

/// The tag row for `key`, created with this spelling if the user never had it.
/// Tag rows are never deleted, so the first spelling is kept for good.
fn ensure_tag(conn: &mut Conn, user: &UserId, key: &str, name: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO tags (user_id, key, name, count) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
        &[&user.0, &key, &name],
    )?;
    Ok(())
}

/// Registers a tag spelling without attaching it (rebuild replays first spellings).
pub fn register_tag(conn: &mut Conn, user: &UserId, name: &str) -> StoreResult<()> {
    ensure_tag(conn, user, &synap_domain::tags::tag_key(name), name)
}

/// Brings the `relations` projection from `before` to `after`. Only live relations
/// are kept; a deleted relation's row is removed (its history stays in the log).
pub fn project_relation(
    conn: &mut Conn,
    _before: Option<&RelationState>,
    after: &RelationState,
) -> StoreResult<()> {
    if after.is_deleted() {
        conn.execute("DELETE FROM relations WHERE id = $1", &[&after.id.0])?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO relations (id, user_id, source_id, target_id, kind, version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        &[
            &after.id.0,
            &after.user_id.0,
            &after.source_id.0,
            &after.target_id.0,
            &after.kind.as_str(),
            &(after.version as i64),
            &micros(after.created_at),
        ],
    )?;
    Ok(())
}

/// The columns `relation_from_row` reads, in order.
pub const RELATION_COLUMNS: &str = "id, user_id, source_id, target_id, kind, version, created_at";

/// A live relation of `user` by id.
pub fn load_relation(
    conn: &mut Conn,
    user: &UserId,
    id: RelationId,
) -> StoreResult<Option<RelationState>> {
    conn.query_opt(
        &format!("SELECT {RELATION_COLUMNS} FROM relations WHERE id = $1 AND user_id = $2"),
        &[&id.0, &user.0],
    )?
    .map(|row| relation_from_row(&row))
    .transpose()
}

/// Reads a row selected with `RELATION_COLUMNS`.
pub fn relation_from_row(row: &Row) -> StoreResult<RelationState> {
    let kind: String = row.try_get(4).map_err(corrupt)?;
    Ok(RelationState {
        id: RelationId(row.try_get(0).map_err(corrupt)?),
        user_id: UserId(row.try_get(1).map_err(corrupt)?),
        source_id: EntityId(row.try_get(2).map_err(corrupt)?),
        target_id: EntityId(row.try_get(3).map_err(corrupt)?),
        kind: RelationKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        version: row.try_get::<_, i64>(5).map_err(corrupt)? as u64,
        created_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
        deleted_at: None,
    })
}

/// State of an entity of `user` at `version`: a fold of its events from the
/// nearest snapshot at or below that version (snapshots are only a cache).
pub fn state_at_version(
    conn: &mut Conn,
    user: &UserId,
    id: EntityId,
    version: u64,
) -> StoreResult<Option<EntityState>> {
    use crate::codec::{EVENT_COLUMNS, event_from_row};
    if version == 0 {
        return Ok(None);
    }
    let snapshot = conn.query_opt(
        "SELECT state FROM snapshots WHERE aggregate_id = $1 AND version <= $2 AND schema_version = $3 \
         ORDER BY version DESC LIMIT 1",
        &[
            &id.0,
            &(version as i64),
            &crate::schema::SNAPSHOT_SCHEMA_VERSION,
        ],
    )?;
    let start: Option<EntityState> = match snapshot {
        // A snapshot that cannot be read is ignored: it is only a cache.
        Some(row) => row
            .try_get::<_, serde_json::Value>(0)
            .ok()
            .and_then(|json| serde_json::from_value::<EntityState>(json).ok())
            .filter(|s| s.user_id == *user),
        None => None,
    };
    let from = start.as_ref().map_or(0, |s| s.version);
    let events = conn
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id = $1 AND user_id = $2 \
                 AND version > $3::bigint AND version <= $4::bigint ORDER BY version"
            ),
            &[&id.0, &user.0, &(from as i64), &(version as i64)],
        )?
        .iter()
        .map(event_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    if start.is_none() && events.is_empty() {
        return Ok(None);
    }
    let state = synap_store::fold::fold_entity(start, &events)?;
    Ok(state.filter(|s| s.version == version))
}
