//! Attachments on any backend: files attached to an entity, their bytes stored once
//! per (user, hash) in the object store, their references in the entity's state
//! (`entity.attachment_added` / `entity.attachment_removed`), so history, time
//! travel and revert treat them like any other field.
//!
//! This is the store-level API that the HTTP routes, the CLI and importers use:
//! [`attach`] streams bytes in and records the reference in one command;
//! [`list`] and [`find`] read references; [`open`] streams bytes out (a range, or
//! all); [`detach`] removes a reference (the bytes stay: history can reach them).

use crate::api::{CommandOutcome, CommandRequest, Scope, Store, StoreError, StoreResult, Target};
use crate::objects::{ObjectError, Objects, content_key, detect_media_type};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::ops::Range;
use std::sync::Arc;
use synap_domain::DomainError;
use synap_domain::command::{EntityCommand, NewAttachment, validate_filename};
use synap_domain::entity::Attachment;
use synap_domain::event::EventMetadata;
use synap_domain::ids::{AttachmentId, EntityId};

/// Default largest attachment, in bytes (100 MiB).
pub const ATTACHMENT_BYTES_MAX_DEFAULT: u64 = 100 * 1024 * 1024;

/// A stream of bytes in or out.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A file to attach.
#[derive(Debug)]
pub struct Upload {
    pub filename: String,
    /// The media type the client declared; used when the bytes say nothing.
    pub declared_media_type: Option<String>,
    pub limit_bytes: u64,
    pub metadata: EventMetadata,
}

/// Why an attachment could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Over the size limit; nothing was kept.
    #[error("the file is over the attachment limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    /// The upload itself failed (the client stopped sending, a read error).
    #[error("{0}")]
    Upload(String),
}

fn objects_of(store: &dyn Store) -> StoreResult<Arc<Objects>> {
    store.objects().ok_or_else(|| {
        StoreError::InvalidInput(
            "attachments need an object store; this store was opened without one".into(),
        )
    })
}

fn object_error(error: ObjectError) -> StoreError {
    match error {
        ObjectError::NotFound { key } => {
            StoreError::Corrupt(format!("object {key} is missing from the object store"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

/// Streams `body` into the object store and attaches it to `entity`: checks the
/// entity first (so a refused upload costs nothing), detects the media type from
/// the first bytes, then runs one command. Returns the new attachment.
pub async fn attach(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
    upload: Upload,
    body: ByteStream,
) -> Result<(Attachment, CommandOutcome), AttachError> {
    let objects = objects_of(store)?;
    let filename = validate_filename(&upload.filename).map_err(StoreError::from)?;
    match store.entity(&scope, entity).await? {
        None => return Err(StoreError::from(DomainError::EntityNotFound(entity)).into()),
        Some(view) if view.deleted_at.is_some() => {
            return Err(StoreError::from(DomainError::EntityDeleted(entity)).into());
        }
        Some(_) => {}
    }
    let stored = objects
        .put_stream(scope.user_id, body, upload.limit_bytes)
        .await
        .map_err(|e| match e {
            ObjectError::TooLarge { limit_bytes } => AttachError::TooLarge { limit_bytes },
            ObjectError::Upload(message) => AttachError::Upload(message),
            other => AttachError::Store(object_error(other)),
        })?;
    let media_type = detect_media_type(&stored.head, upload.declared_media_type.as_deref());
    let id = AttachmentId::new_v7();
    let command = EntityCommand::Attach(NewAttachment {
        id,
        filename,
        hash: stored.hash,
        size: stored.size,
        media_type,
    });
    let outcome = store
        .execute(CommandRequest::new(
            scope,
            Target::Entity {
                id: entity,
                command,
            },
            upload.metadata,
        ))
        .await?;
    let attachment = find(store, scope, entity, id).await?.ok_or_else(|| {
        StoreError::Corrupt(format!("attachment {id} was added but cannot be read back"))
    })?;
    Ok((attachment, outcome))
}

/// Attaches bytes already in memory (importers, tests).
pub async fn attach_bytes(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
    upload: Upload,
    bytes: Vec<u8>,
) -> Result<(Attachment, CommandOutcome), AttachError> {
    let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))]));
    attach(store, scope, entity, upload, body).await
}

/// The attachments of an entity (of this user), oldest first; `None` when there
/// is no such entity.
pub async fn list(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
) -> StoreResult<Option<Vec<Attachment>>> {
    Ok(store
        .entity(&scope, entity)
        .await?
        .map(|view| view.attachments))
}

/// One attachment of an entity (of this user).
pub async fn find(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
    attachment: AttachmentId,
) -> StoreResult<Option<Attachment>> {
    Ok(list(store, scope, entity)
        .await?
        .and_then(|all| all.into_iter().find(|a| a.id == attachment)))
}

/// The bytes of an attachment, or of `range` of them (the caller checks the range
/// against `attachment.size`).
pub async fn open(
    store: &dyn Store,
    scope: Scope,
    attachment: &Attachment,
    range: Option<Range<u64>>,
) -> StoreResult<ByteStream> {
    let objects = objects_of(store)?;
    objects
        .get_stream(&content_key(&scope.user_id, &attachment.hash), range)
        .await
        .map_err(object_error)
}

/// Removes an attachment from an entity (`entity.attachment_removed`). The bytes
/// stay in the object store: earlier versions still refer to them.
pub async fn detach(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
    attachment: AttachmentId,
    metadata: EventMetadata,
) -> StoreResult<CommandOutcome> {
    store
        .execute(CommandRequest::new(
            scope,
            Target::Entity {
                id: entity,
                command: EntityCommand::Detach {
                    attachment_id: attachment,
                },
            },
            metadata,
        ))
        .await
}
