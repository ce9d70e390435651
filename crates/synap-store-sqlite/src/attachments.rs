//! Object-stored content and attachments on SQLite: content rows that refer to the
//! object store (bodies over the inline threshold, attachments' bytes), the
//! `entity_attachments` projection (an entity's attachments, part of its state),
//! and verify's check that every referenced object exists with its size and hash.

use crate::codec::{hash, micros, sql_error, timestamp, uuid};
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, HashSet};
use synap_domain::entity::{Attachment, ContentRef, EntityState};
use synap_domain::ids::AttachmentId;
use synap_store::objects::{ObjectCheck, Objects, content_key};
use synap_store::pipeline::place_body;
use synap_store::{Scope, StoreError, StoreResult};

/// `contents.storage` of a body kept inline.
pub const STORAGE_DB: &str = "db";
/// `contents.storage` of a body kept in the object store (`object_key`).
pub const STORAGE_OBJECT: &str = "object";

/// Stores a new body once per (user, hash): inline, or in the object store first
/// when it is over the threshold (before this transaction commits).
pub fn put_content(
    conn: &Connection,
    objects: Option<&Objects>,
    scope: &Scope,
    content: &ContentRef,
    body: &str,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM contents WHERE user_id = ?1 AND hash = ?2")
        .map_err(sql_error)?
        .exists(params![scope.user_id.as_bytes(), content.hash.as_bytes()])
        .map_err(sql_error)?;
    if exists {
        return Ok(());
    }
    let object = place_body(objects, scope, content, body)?;
    conn.prepare_cached(
        "INSERT INTO contents (user_id, hash, size, media_type, storage, body, object_provider, object_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(sql_error)?
    .execute(params![
        scope.user_id.as_bytes(),
        content.hash.as_bytes(),
        content.size as i64,
        content.media_type,
        if object.is_some() { STORAGE_OBJECT } else { STORAGE_DB },
        if object.is_some() { None } else { Some(body) },
        object.as_ref().map(|o| o.provider.as_str()),
        object.as_ref().map(|o| o.key.as_str()),
        micros(now),
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// Records that the object store holds `content` (an attachment's bytes). An
/// existing inline row keeps its body and gains the object reference.
pub fn put_object_ref(
    conn: &Connection,
    objects: Option<&Objects>,
    scope: &Scope,
    content: &ContentRef,
    now: jiff::Timestamp,
) -> StoreResult<()> {
    let objects = objects.ok_or_else(|| {
        StoreError::InvalidInput("attachments need an object store; none is configured".into())
    })?;
    conn.prepare_cached(
        "INSERT INTO contents (user_id, hash, size, media_type, storage, body, object_provider, object_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'object', NULL, ?5, ?6, ?7) \
         ON CONFLICT (user_id, hash) DO UPDATE SET object_provider = excluded.object_provider, \
         object_key = excluded.object_key WHERE contents.object_key IS NULL",
    )
    .map_err(sql_error)?
    .execute(params![
        scope.user_id.as_bytes(),
        content.hash.as_bytes(),
        content.size as i64,
        content.media_type,
        objects.provider().as_str(),
        content_key(&scope.user_id, &content.hash),
        micros(now),
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// Brings `entity_attachments` of one entity row from `before` to `after`.
pub fn project_attachments(
    conn: &Connection,
    entity_rowid: i64,
    before: Option<&EntityState>,
    after: &EntityState,
) -> StoreResult<()> {
    let empty = BTreeMap::new();
    let old = before.map_or(&empty, |b| &b.attachments);
    for (id, attachment) in old {
        if after.attachments.get(id) != Some(attachment) {
            conn.prepare_cached(
                "DELETE FROM entity_attachments WHERE entity_rowid = ?1 AND id = ?2",
            )
            .map_err(sql_error)?
            .execute(params![entity_rowid, id.as_bytes()])
            .map_err(sql_error)?;
        }
    }
    for (id, attachment) in &after.attachments {
        if old.get(id) != Some(attachment) {
            conn.prepare_cached(
                "INSERT INTO entity_attachments (entity_rowid, id, filename, hash, size, media_type, added_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql_error)?
            .execute(params![
                entity_rowid,
                id.as_bytes(),
                attachment.filename,
                attachment.hash.as_bytes(),
                attachment.size as i64,
                attachment.media_type,
                micros(attachment.added_at),
            ])
            .map_err(sql_error)?;
        }
    }
    Ok(())
}

/// The attachments of one entity row, by id.
pub fn load_attachments(
    conn: &Connection,
    entity_rowid: i64,
) -> StoreResult<BTreeMap<AttachmentId, Attachment>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, filename, hash, size, media_type, added_at FROM entity_attachments \
             WHERE entity_rowid = ?1 ORDER BY id",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map([entity_rowid], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(sql_error)?;
    let mut attachments = BTreeMap::new();
    for row in rows {
        let (id, filename, content_hash, size, media_type, added_at) = row.map_err(sql_error)?;
        let id = AttachmentId(uuid(&id)?);
        attachments.insert(
            id,
            Attachment {
                id,
                filename,
                hash: hash(&content_hash)?,
                size: size as u64,
                media_type,
                added_at: timestamp(added_at)?,
            },
        );
    }
    Ok(attachments)
}

/// Checks every object a content row refers to (exists, size, SHA-256): a missing
/// or damaged object is a difference. Objects no row refers to are orphans — left
/// by a write whose transaction rolled back after the object was put — returned as
/// warnings. `contents` resolves to the live database.
pub fn verify_objects(
    conn: &Connection,
    objects: Option<&Objects>,
    differences: &mut Vec<String>,
) -> StoreResult<Vec<String>> {
    let mut statement = conn
        .prepare("SELECT user_id, hash, size, object_key FROM contents WHERE object_key IS NOT NULL OR storage = 'object'")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    drop(statement);
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
    for (user, content_hash, size, key) in rows {
        let user = synap_domain::UserId(uuid(&user)?);
        let content_hash = hash(&content_hash)?;
        let key = key.unwrap_or_else(|| content_key(&user, &content_hash));
        let check = objects
            .check_blocking(&key, size as u64, &content_hash)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        describe_check(&key, size as u64, check, differences);
        referenced.insert(key);
    }
    let warnings = objects
        .content_keys_blocking()
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .into_iter()
        .filter(|key| !referenced.contains(key))
        .map(|key| format!("orphan object {key}: no content refers to it (left by a rolled-back write; harmless)"))
        .collect();
    Ok(warnings)
}

/// One line for a failed object check.
pub fn describe_check(key: &str, size: u64, check: ObjectCheck, differences: &mut Vec<String>) {
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
}
