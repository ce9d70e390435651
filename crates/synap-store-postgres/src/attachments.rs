//! Object-stored content and attachments on PostgreSQL: content rows that refer to
//! the object store (bodies over the inline threshold, attachments' bytes), the
//! `entity_attachments` projection (an entity's attachments, part of its state),
//! and verify's check that every referenced object exists with its size and hash.

use crate::codec::{corrupt, hash, micros, timestamp};
use crate::pool::Conn;
use std::collections::{BTreeMap, HashSet};
use synap_domain::entity::{Attachment, ContentRef, EntityState};
use synap_domain::ids::{AttachmentId, EntityId};
use synap_store::objects::{ObjectCheck, Objects, content_key};
use synap_store::pipeline::place_body;
use synap_store::{Scope, StoreError, StoreResult};

/// `contents.storage` of a body kept inline.
pub const STORAGE_DB: &str = "db";
/// `contents.storage` of a body kept in the object store (`object_key`).
pub const STORAGE_OBJECT: &str = "object";

/// The `entity_attachments` projection; `{schema}` as in `schema::PROJECTION_SCHEMA`
/// (verify builds a scratch copy in `pg_temp`).
pub const ATTACHMENTS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS {schema}.entity_attachments (
    entity_id  uuid NOT NULL,
    id         uuid NOT NULL,
    user_id    uuid NOT NULL,
    filename   text NOT NULL,
    hash       bytea NOT NULL,
    size       bigint NOT NULL,
    media_type text NOT NULL,
    added_at   bigint NOT NULL,
    PRIMARY KEY (entity_id, id)
);
"#;

/// Stores a new body once per (user, hash): inline, or in the object store first
/// when it is over the threshold (before this transaction commits).
pub fn put_content(
    conn: &mut Conn,
    scope: &Scope,
    content: &ContentRef,
    body: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let exists = conn
        .query_opt(
            "SELECT 1 FROM contents WHERE user_id = $1 AND hash = $2",
            &[&scope.user_id.0, &content.hash.as_bytes().as_slice()],
        )?
        .is_some();
    if exists {
        return Ok(());
    }
    let objects = conn.objects.clone();
    let object = place_body(objects.as_deref(), scope, content, body)?;
    let storage = if object.is_some() {
        STORAGE_OBJECT
    } else {
        STORAGE_DB
    };
    let inline = if object.is_some() { None } else { Some(body) };
    let provider = object.as_ref().map(|o| o.provider.as_str());
    let key = object.as_ref().map(|o| o.key.as_str());
    conn.execute(
        "INSERT INTO contents (user_id, hash, size, media_type, storage, body, object_provider, object_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (user_id, hash) DO NOTHING",
        &[
            &scope.user_id.0,
            &content.hash.as_bytes().as_slice(),
            &(content.size as i64),
            &content.media_type,
            &storage,
            &inline,
            &provider,
            &key,
            &micros(now),
        ],
    )?;
    Ok(())
}

/// Records that the object store holds `content` (an attachment's bytes). An
/// existing inline row keeps its body and gains the object reference.
pub fn put_object_ref(
    conn: &mut Conn,
    scope: &Scope,
    content: &ContentRef,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let provider = conn
        .objects
        .as_ref()
        .ok_or_else(|| {
            StoreError::InvalidInput("attachments need an object store; none is configured".into())
        })?
        .provider()
        .as_str();
    conn.execute(
        "INSERT INTO contents (user_id, hash, size, media_type, storage, body, object_provider, object_key, created_at) \
         VALUES ($1, $2, $3, $4, 'object', NULL, $5, $6, $7) \
         ON CONFLICT (user_id, hash) DO UPDATE SET object_provider = excluded.object_provider, \
         object_key = excluded.object_key WHERE contents.object_key IS NULL",
        &[
            &scope.user_id.0,
            &content.hash.as_bytes().as_slice(),
            &(content.size as i64),
            &content.media_type,
            &provider,
            &content_key(&scope.user_id, &content.hash),
            &micros(now),
        ],
    )?;
    Ok(())
}

/// Brings `entity_attachments` of one entity from `before` to `after`.
pub fn project_attachments(
    conn: &mut Conn,
    before: Option<&EntityState>,
    after: &EntityState,
) -> StoreResult<()> {
    let empty = BTreeMap::new();
    let old = before.map_or(&empty, |b| &b.attachments);
    for (id, attachment) in old {
        if after.attachments.get(id) != Some(attachment) {
            conn.execute(
                "DELETE FROM entity_attachments WHERE entity_id = $1 AND id = $2",
                &[&after.id.0, &id.0],
            )?;
        }
    }
    for (id, attachment) in &after.attachments {
        if old.get(id) != Some(attachment) {
            conn.execute(
                "INSERT INTO entity_attachments (entity_id, id, user_id, filename, hash, size, media_type, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &after.id.0,
                    &id.0,
                    &after.user_id.0,
                    &attachment.filename,
                    &attachment.hash.as_bytes().as_slice(),
                    &(attachment.size as i64),
                    &attachment.media_type,
                    &micros(attachment.added_at),
                ],
            )?;
        }
    }
    Ok(())
}

/// The attachments of one entity, by id.
pub fn load_attachments(
    conn: &mut Conn,
    entity: EntityId,
) -> StoreResult<BTreeMap<AttachmentId, Attachment>> {
    let rows = conn.query(
        "SELECT id, filename, hash, size, media_type, added_at FROM entity_attachments \
         WHERE entity_id = $1 ORDER BY id",
        &[&entity.0],
    )?;
    let mut attachments = BTreeMap::new();
    for row in rows {
        let id = AttachmentId(row.try_get(0).map_err(corrupt)?);
        let content_hash: Vec<u8> = row.try_get(2).map_err(corrupt)?;
        attachments.insert(
            id,
            Attachment {
                id,
                filename: row.try_get(1).map_err(corrupt)?,
                hash: hash(&content_hash)?,
                size: row.try_get::<_, i64>(3).map_err(corrupt)? as u64,
                media_type: row.try_get(4).map_err(corrupt)?,
                added_at: timestamp(row.try_get(5).map_err(corrupt)?)?,
            },
        );
    }
    Ok(attachments)
}

/// Checks every object a content row refers to (exists, size, SHA-256): a missing
/// or damaged object is a difference. Objects no row refers to are orphans — left
/// by a write whose transaction rolled back after the object was put — returned as
/// warnings.
pub fn verify_objects(
    conn: &mut Conn,
    objects: Option<&Objects>,
    differences: &mut Vec<String>,
) -> StoreResult<Vec<String>> {
    let rows = conn.query(
        "SELECT user_id, hash, size, object_key FROM public.contents \
         WHERE object_key IS NOT NULL OR storage = 'object'",
        &[],
    )?;
    let Some(objects) = objects else {
        if !rows.is_empty() {
            differences.push(format!(
                "{} content rows refer to the object store, but none is configured",
                rows.len()
            ));
        }
        return Ok(Vec::new());
    };
    let mut referenced = HashSet::with_capacity(rows.len());
    for row in rows {
        let user = synap_domain::UserId(row.try_get(0).map_err(corrupt)?);
        let content_hash = hash(&row.try_get::<_, Vec<u8>>(1).map_err(corrupt)?)?;
        let size = row.try_get::<_, i64>(2).map_err(corrupt)? as u64;
        let key = row
            .try_get::<_, Option<String>>(3)
            .map_err(corrupt)?
            .unwrap_or_else(|| content_key(&user, &content_hash));
        let check = objects
            .check_blocking(&key, size, &content_hash)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        match check {
            ObjectCheck::Ok => {}
            ObjectCheck::Missing => {
                differences.push(format!("object {key} is missing from the object store"))
            }
            ObjectCheck::WrongSize { actual } => differences.push(format!(
                "object {key} is damaged: {actual} bytes where {size} were stored"
            )),
            ObjectCheck::WrongHash { actual } => {
                differences.push(format!("object {key} is damaged: its SHA-256 is {actual}"))
            }
        }
        referenced.insert(key);
    }
    Ok(objects
        .content_keys_blocking()
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .into_iter()
        .filter(|key| !referenced.contains(key))
        .map(|key| {
            format!("orphan object {key}: no content refers to it (left by a rolled-back write; harmless)")
        })
        .collect())
}
