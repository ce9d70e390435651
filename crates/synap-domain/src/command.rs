//! Entity commands and `decide`: a command plus the current state gives the delta
//! events to append, or a rejection. A command that changes several fields yields
//! several events (consecutive versions, one transaction). A command that changes
//! nothing yields no events.

use crate::entity::{
    ContentRef, DEFAULT_MEDIA_TYPE, EntityState, EntityType, TaskFields, TaskStatus,
};
use crate::error::DomainError;
use crate::event::{
    AttachmentAdded, AttachmentRemoved, ContentChanged, EntityCreated, EntityEvent, FieldChange,
    MetadataChanged, TagsChanged,
};
use crate::ids::{AttachmentId, ContentHash, EntityId};
use crate::limits::{
    ATTACHMENT_FILENAME_CHARS_MAX, ATTACHMENTS_PER_ENTITY_MAX, CHANGES_PER_COMMAND_MAX,
    CONTENT_BYTES_MAX, MEDIA_TYPE_CHARS_MAX, METADATA_BYTES_MAX, METADATA_KEY_CHARS_MAX,
    TAGS_PER_ENTITY_MAX, TASK_PRIORITY_MAX, TITLE_CHARS_MAX,
};
use crate::revert;
use crate::tags::{normalize_tag, tag_key};
use crate::text::derive_title;
use jiff::Timestamp;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A content body given with a command. The domain hashes it; the store keeps the
/// body once per distinct hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContent {
    pub body: String,
    pub media_type: Option<String>,
}

impl NewContent {
    pub fn markdown(body: impl Into<String>) -> Self {
        NewContent {
            body: body.into(),
            media_type: None,
        }
    }
    /// The reference this body will be stored under.
    pub fn content_ref(&self) -> ContentRef {
        ContentRef {
            hash: ContentHash::of(self.body.as_bytes()),
            size: self.body.len() as u64,
            media_type: self
                .media_type
                .clone()
                .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
        }
    }
}

/// Task fields given at creation; absent ones take their defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskInput {
    pub status: Option<TaskStatus>,
    pub priority: Option<u8>,
    pub due_at: Option<Timestamp>,
}

/// Create an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateEntity {
    pub entity_type: EntityType,
    /// `None` (or blank): derived from the content.
    pub title: Option<String>,
    pub content: Option<NewContent>,
    pub tags: Vec<String>,
    pub task: Option<TaskInput>,
    pub metadata: Map<String, Value>,
}

impl CreateEntity {
    pub fn note(body: impl Into<String>) -> Self {
        CreateEntity {
            entity_type: EntityType::Note,
            title: None,
            content: Some(NewContent::markdown(body)),
            tags: Vec::new(),
            task: None,
            metadata: Map::new(),
        }
    }
}

/// One field change. Several can be sent in one command and are applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A blank title means "derive it from the content again".
    Title(String),
    /// `None` or an empty body removes the content.
    Content(Option<NewContent>),
    Type(EntityType),
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    SetMetadata(Map<String, Value>),
    UnsetMetadata(Vec<String>),
    TaskStatus(TaskStatus),
    TaskPriority(u8),
    TaskDue(Option<Timestamp>),
}

/// A file to attach. Its bytes are already in the object store under `hash` (the
/// store puts them there before it runs the command); the command records the
/// reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub filename: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
}

/// A command to the entity aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityCommand {
    Create(CreateEntity),
    Change(Vec<Change>),
    Delete,
    Restore,
    /// Append events that restore the state of `version`. History is kept.
    RevertTo {
        version: u64,
    },
    /// Attach a file (`entity.attachment_added`).
    Attach(NewAttachment),
    /// Detach a file (`entity.attachment_removed`); its bytes stay in the store.
    Detach {
        attachment_id: AttachmentId,
    },
}

impl EntityCommand {
    /// Keys of the tags this command names, so the store can look up their
    /// canonical spellings before deciding. Invalid tags are skipped (decide rejects them).
    pub fn tag_keys(&self) -> Vec<String> {
        let raw: Vec<&String> = match self {
            EntityCommand::Create(create) => create.tags.iter().collect(),
            EntityCommand::Change(changes) => changes
                .iter()
                .flat_map(|change| match change {
                    Change::AddTags(tags) => tags.iter().collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .collect(),
            _ => Vec::new(),
        };
        raw.into_iter()
            .filter_map(|tag| normalize_tag(tag).ok())
            .map(|t| tag_key(&t))
            .collect()
    }

    /// Whether deciding needs the current content body (to re-derive the title).
    pub fn needs_current_body(&self) -> bool {
        match self {
            EntityCommand::Change(changes) => changes.iter().any(|c| {
                matches!(c, Change::Content(_))
                    || matches!(c, Change::Title(t) if t.trim().is_empty())
            }),
            _ => false,
        }
    }
}

/// What the store supplies besides the state.
#[derive(Debug, Clone, Default)]
pub struct DecideContext<'a> {
    /// The body of the current content, when `needs_current_body()`.
    pub current_body: Option<&'a str>,
    /// Canonical spellings (by tag key) of tags this user already has.
    pub tag_spellings: HashMap<String, String>,
    /// The state at the version a `RevertTo` asks for.
    pub revert_target: Option<&'a EntityState>,
}

/// Decides the events for `command` against `state` (`None`: the entity does not exist).
pub fn decide(
    id: EntityId,
    state: Option<&EntityState>,
    command: &EntityCommand,
    context: &DecideContext<'_>,
) -> Result<Vec<EntityEvent>, DomainError> {
    match command {
        EntityCommand::Create(create) => match state {
            Some(_) => Err(DomainError::AlreadyExists(id)),
            None => Ok(vec![EntityEvent::Created(decide_create(create, context)?)]),
        },
        EntityCommand::Change(changes) => {
            let state = live(id, state)?;
            if changes.len() > CHANGES_PER_COMMAND_MAX {
                return Err(DomainError::invalid(
                    "changes",
                    format!("at most {CHANGES_PER_COMMAND_MAX} changes per command"),
                ));
            }
            let mut working = state.clone();
            let mut body = context.current_body.map(str::to_string);
            // Spellings introduced by earlier changes of this command count as the
            // user's too: "Web Dev" added, removed and re-added as "web dev" in one
            // command stays "Web Dev", as it would across two commands.
            let mut context = context.clone();
            let mut events = Vec::new();
            for change in changes {
                for event in decide_change(&working, change, body.as_deref(), &context)? {
                    if let (EntityEvent::ContentChanged(_), Change::Content(content)) =
                        (&event, change)
                    {
                        body = content.as_ref().map(|c| c.body.clone());
                    }
                    if let EntityEvent::TagsAdded(added) = &event {
                        for tag in &added.tags {
                            context
                                .tag_spellings
                                .entry(tag_key(tag))
                                .or_insert_with(|| tag.clone());
                        }
                    }
                    working = step(working, &event);
                    events.push(event);
                }
            }
            Ok(events)
        }
        EntityCommand::Delete => {
            let state = state.ok_or(DomainError::EntityNotFound(id))?;
            Ok(if state.is_deleted() {
                vec![]
            } else {
                vec![EntityEvent::Deleted]
            })
        }
        EntityCommand::Restore => {
            let state = state.ok_or(DomainError::EntityNotFound(id))?;
            Ok(if state.is_deleted() {
                vec![EntityEvent::Restored]
            } else {
                vec![]
            })
        }
        EntityCommand::RevertTo { version } => {
            let state = state.ok_or(DomainError::EntityNotFound(id))?;
            let target = match context.revert_target {
                Some(target)
                    if *version >= 1 && *version <= state.version && target.version == *version =>
                {
                    target
                }
                _ => {
                    return Err(DomainError::NoSuchVersion {
                        id,
                        version: *version,
                        current: state.version,
                    });
                }
            };
            Ok(revert::events_to_restore(state, target))
        }
        EntityCommand::Attach(new) => {
            let state = live(id, state)?;
            Ok(vec![EntityEvent::AttachmentAdded(decide_attach(
                state, new,
            )?)])
        }
        EntityCommand::Detach { attachment_id } => {
            let state = live(id, state)?;
            let attachment = state.attachments.get(attachment_id).ok_or_else(|| {
                DomainError::invalid(
                    "attachment_id",
                    format!("entity {id} has no attachment {attachment_id}"),
                )
            })?;
            Ok(vec![EntityEvent::AttachmentRemoved(AttachmentRemoved {
                attachment_id: attachment.id,
                filename: attachment.filename.clone(),
                hash: attachment.hash,
            })])
        }
    }
}

fn decide_attach(state: &EntityState, new: &NewAttachment) -> Result<AttachmentAdded, DomainError> {
    if state.attachments.contains_key(&new.id) {
        return Err(DomainError::invalid(
            "attachment_id",
            format!("attachment id {} is already used; send a new id", new.id),
        ));
    }
    if state.attachments.len() >= ATTACHMENTS_PER_ENTITY_MAX {
        return Err(DomainError::invalid(
            "attachments",
            format!(
                "an entity has at most {ATTACHMENTS_PER_ENTITY_MAX} attachments; detach one first"
            ),
        ));
    }
    Ok(AttachmentAdded {
        attachment_id: new.id,
        filename: validate_filename(&new.filename)?,
        hash: new.hash,
        size: new.size,
        media_type: validate_media_type(&new.media_type)?,
    })
}

/// A file name as users see it: trimmed, 1..=255 characters, no path separators and
/// no control characters (it ends up in `Content-Disposition` and on disk on export).
pub fn validate_filename(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > ATTACHMENT_FILENAME_CHARS_MAX {
        return Err(DomainError::invalid(
            "filename",
            format!("a file name has 1 to {ATTACHMENT_FILENAME_CHARS_MAX} characters"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
        || name == "."
        || name == ".."
    {
        return Err(DomainError::invalid(
            "filename",
            "a file name has no path separators (/ or \\\\) and no control characters",
        ));
    }
    Ok(name.to_string())
}

/// A media type `type/subtype` (parameters allowed), printable ASCII, at most 255
/// characters.
pub fn validate_media_type(media_type: &str) -> Result<String, DomainError> {
    let media_type = media_type.trim();
    let valid = media_type.len() <= MEDIA_TYPE_CHARS_MAX
        && media_type.is_ascii()
        && !media_type.chars().any(|c| c.is_ascii_control())
        && media_type
            .split(';')
            .next()
            .and_then(|essence| essence.trim().split_once('/'))
            .is_some_and(|(kind, sub)| {
                !kind.is_empty() && !sub.is_empty() && !kind.contains(' ') && !sub.contains(' ')
            });
    if !valid {
        return Err(DomainError::invalid(
            "media_type",
            format!(
                "a media type looks like type/subtype (at most {MEDIA_TYPE_CHARS_MAX} characters)"
            ),
        ));
    }
    Ok(media_type.to_string())
}

/// Applies an event to a working copy while deciding a multi-change command.
fn step(state: EntityState, event: &EntityEvent) -> EntityState {
    let (id, user, version, at) = (state.id, state.user_id, state.version + 1, state.updated_at);
    EntityState::evolve(Some(state.clone()), id, user, version, at, event).unwrap_or(state)
}

fn live(id: EntityId, state: Option<&EntityState>) -> Result<&EntityState, DomainError> {
    match state {
        None => Err(DomainError::EntityNotFound(id)),
        Some(state) if state.is_deleted() => Err(DomainError::EntityDeleted(id)),
        Some(state) => Ok(state),
    }
}

fn decide_create(
    create: &CreateEntity,
    context: &DecideContext<'_>,
) -> Result<EntityCreated, DomainError> {
    let content = match &create.content {
        Some(content) if !content.body.is_empty() => Some(validate_content(content)?),
        _ => None,
    };
    let body = create.content.as_ref().map_or("", |c| c.body.as_str());
    let title = match &create.title {
        Some(title) if !title.trim().is_empty() => validate_title(title)?,
        _ => derive_title(body),
    };
    let mut tags: Vec<String> = Vec::new();
    for raw in &create.tags {
        let tag = canonical(normalize_tag(raw)?, context);
        if !tags.iter().any(|t| tag_key(t) == tag_key(&tag)) {
            tags.push(tag);
        }
    }
    check_tag_count(tags.len())?;
    let task = match (&create.task, create.entity_type) {
        (Some(_), t) if t != EntityType::Task => {
            return Err(DomainError::invalid(
                "task",
                "status, priority and due date need type task",
            ));
        }
        (input, EntityType::Task) => {
            let input = input.clone().unwrap_or_default();
            let priority = input.priority.unwrap_or(0);
            validate_priority(priority)?;
            Some(TaskFields {
                status: input.status.unwrap_or(TaskStatus::Todo),
                priority,
                due_at: input.due_at,
                completed_at: None,
            })
        }
        _ => None,
    };
    validate_metadata(&create.metadata)?;
    Ok(EntityCreated {
        entity_type: create.entity_type,
        title,
        content,
        tags,
        task,
        metadata: create.metadata.clone(),
    })
}

fn decide_change(
    state: &EntityState,
    change: &Change,
    current_body: Option<&str>,
    context: &DecideContext<'_>,
) -> Result<Vec<EntityEvent>, DomainError> {
    let mut events = Vec::new();
    match change {
        Change::Title(title) => {
            let new = if title.trim().is_empty() {
                derive_title(current_body.unwrap_or(""))
            } else {
                validate_title(title)?
            };
            if new != state.title {
                events.push(EntityEvent::TitleChanged(FieldChange {
                    old: state.title.clone(),
                    new,
                }));
            }
        }
        Change::Content(content) => {
            let new = match content {
                Some(content) if !content.body.is_empty() => Some(validate_content(content)?),
                _ => None,
            };
            if new != state.content {
                let media_type = match (&new, &state.content) {
                    (Some(new), Some(old)) if new.media_type != old.media_type => {
                        Some(new.media_type.clone())
                    }
                    (Some(new), None) if new.media_type != DEFAULT_MEDIA_TYPE => {
                        Some(new.media_type.clone())
                    }
                    _ => None,
                };
                events.push(EntityEvent::ContentChanged(ContentChanged {
                    old_hash: state.content.as_ref().map(|c| c.hash),
                    new_hash: new.as_ref().map(|c| c.hash),
                    size: new.as_ref().map_or(0, |c| c.size),
                    media_type,
                }));
                // A title that was derived from the old content follows the new content.
                let old_derived = derive_title(current_body.unwrap_or(""));
                if state.title == old_derived {
                    let new_title = derive_title(content.as_ref().map_or("", |c| c.body.as_str()));
                    if new_title != state.title {
                        events.push(EntityEvent::TitleChanged(FieldChange {
                            old: state.title.clone(),
                            new: new_title,
                        }));
                    }
                }
            }
        }
        Change::Type(new) => {
            if *new != state.entity_type {
                events.push(EntityEvent::TypeChanged(FieldChange {
                    old: state.entity_type,
                    new: *new,
                }));
            }
        }
        Change::AddTags(raw) => {
            let mut added: Vec<String> = Vec::new();
            for raw in raw {
                let tag = canonical(normalize_tag(raw)?, context);
                if !state.tags.contains(&tag) && !added.iter().any(|t| tag_key(t) == tag_key(&tag))
                {
                    added.push(tag);
                }
            }
            check_tag_count(state.tags.len() + added.len())?;
            if !added.is_empty() {
                events.push(EntityEvent::TagsAdded(TagsChanged { tags: added }));
            }
        }
        Change::RemoveTags(raw) => {
            let mut removed: Vec<String> = Vec::new();
            for raw in raw {
                let key = tag_key(&normalize_tag(raw)?);
                if let Some((_, spelling)) = state.tags.entries().find(|(k, _)| *k == key)
                    && !removed.iter().any(|t| tag_key(t) == key)
                {
                    removed.push(spelling.to_string());
                }
            }
            if !removed.is_empty() {
                events.push(EntityEvent::TagsRemoved(TagsChanged { tags: removed }));
            }
        }
        Change::SetMetadata(set) => {
            let mut changed = Map::new();
            let mut after = state.metadata.clone();
            for (key, value) in set {
                validate_metadata_key(key)?;
                if state.metadata.get(key) != Some(value) {
                    changed.insert(key.clone(), value.clone());
                    after.insert(key.clone(), value.clone());
                }
            }
            validate_metadata(&after)?;
            if !changed.is_empty() {
                events.push(EntityEvent::MetadataChanged(MetadataChanged {
                    set: changed,
                    unset: vec![],
                }));
            }
        }
        Change::UnsetMetadata(keys) => {
            let mut unset: Vec<String> = Vec::new();
            for key in keys {
                if state.metadata.contains_key(key) && !unset.contains(key) {
                    unset.push(key.clone());
                }
            }
            if !unset.is_empty() {
                events.push(EntityEvent::MetadataChanged(MetadataChanged {
                    set: Map::new(),
                    unset,
                }));
            }
        }
        Change::TaskStatus(new) => {
            let task = task_of(state)?;
            if task.status != *new {
                events.push(EntityEvent::TaskStatusChanged(FieldChange {
                    old: task.status,
                    new: *new,
                }));
            }
        }
        Change::TaskPriority(new) => {
            validate_priority(*new)?;
            let task = task_of(state)?;
            if task.priority != *new {
                events.push(EntityEvent::TaskPriorityChanged(FieldChange {
                    old: task.priority,
                    new: *new,
                }));
            }
        }
        Change::TaskDue(new) => {
            let task = task_of(state)?;
            if task.due_at != *new {
                events.push(EntityEvent::TaskDueChanged(FieldChange {
                    old: task.due_at,
                    new: *new,
                }));
            }
        }
    }
    Ok(events)
}

fn task_of(state: &EntityState) -> Result<&TaskFields, DomainError> {
    state.visible_task().ok_or(DomainError::NotATask(state.id))
}

fn canonical(tag: String, context: &DecideContext<'_>) -> String {
    context
        .tag_spellings
        .get(&tag_key(&tag))
        .cloned()
        .unwrap_or(tag)
}

fn check_tag_count(count: usize) -> Result<(), DomainError> {
    if count > TAGS_PER_ENTITY_MAX {
        return Err(DomainError::invalid(
            "tags",
            format!(
                "an entity can have at most {TAGS_PER_ENTITY_MAX} tags; this change would give it {count}"
            ),
        ));
    }
    Ok(())
}

/// Checks a title given by a user and returns it trimmed.
pub fn validate_title(title: &str) -> Result<String, DomainError> {
    let title = title.trim();
    let chars = title.chars().count();
    if chars > TITLE_CHARS_MAX {
        return Err(DomainError::invalid(
            "title",
            format!("the title has {chars} characters; the limit is {TITLE_CHARS_MAX}"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "title",
            "a title is one line without control characters",
        ));
    }
    Ok(title.to_string())
}

fn validate_content(content: &NewContent) -> Result<ContentRef, DomainError> {
    if content.body.len() > CONTENT_BYTES_MAX {
        return Err(DomainError::invalid(
            "content",
            format!(
                "the content has {} bytes; the limit is {CONTENT_BYTES_MAX} bytes (10 MiB)",
                content.body.len()
            ),
        ));
    }
    if let Some(media_type) = &content.media_type {
        let valid = media_type.len() <= 127
            && media_type
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && media_type.chars().all(|c| c.is_ascii_graphic());
        if !valid {
            return Err(DomainError::invalid(
                "media_type",
                format!("{media_type:?} is not a media type like text/markdown"),
            ));
        }
    }
    Ok(content.content_ref())
}

fn validate_priority(priority: u8) -> Result<(), DomainError> {
    if priority > TASK_PRIORITY_MAX {
        return Err(DomainError::invalid(
            "priority",
            format!("priority {priority} is out of range; use 0 to {TASK_PRIORITY_MAX}"),
        ));
    }
    Ok(())
}

fn validate_metadata_key(key: &str) -> Result<(), DomainError> {
    let chars = key.chars().count();
    if chars == 0 || chars > METADATA_KEY_CHARS_MAX || key.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "metadata",
            format!(
                "metadata keys have 1 to {METADATA_KEY_CHARS_MAX} characters and no control characters"
            ),
        ));
    }
    Ok(())
}

/// Checks a whole metadata object against the size limit.
pub fn validate_metadata(metadata: &Map<String, Value>) -> Result<(), DomainError> {
    for key in metadata.keys() {
        validate_metadata_key(key)?;
    }
    let bytes = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    if bytes > METADATA_BYTES_MAX {
        return Err(DomainError::invalid(
            "metadata",
            format!(
                "metadata is {bytes} bytes as JSON; the limit is {METADATA_BYTES_MAX} bytes (16 KiB)"
            ),
        ));
    }
    Ok(())
}
