//! The entity aggregate: a note, task, project, page, idea or calendar event.
//! `EntityState` is the fold of an entity's events (`EntityState::apply`); the
//! `entities` projection stores exactly this state, so "projection = fold of the log"
//! can be checked field by field.

use crate::event::EntityEvent;
use crate::ids::{AttachmentId, ContentHash, EntityId, UserId};
use crate::tags::TagSet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    Note,
    Task,
    Project,
    Page,
    Idea,
    Event,
}

impl EntityType {
    pub const ALL: [EntityType; 6] = [
        EntityType::Note,
        EntityType::Task,
        EntityType::Project,
        EntityType::Page,
        EntityType::Idea,
        EntityType::Event,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            EntityType::Note => "note",
            EntityType::Task => "task",
            EntityType::Project => "project",
            EntityType::Page => "page",
            EntityType::Idea => "idea",
            EntityType::Event => "event",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown type {s:?}; use one of note, task, project, page, idea, event")
            })
    }
}

/// A task's workflow state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::Done,
        TaskStatus::Cancelled,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Todo => "todo",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}; use one of todo, in_progress, done, cancelled")
            })
    }
}

/// The task part of an entity. Present exactly while its type is `task`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFields {
    pub status: TaskStatus,
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    /// Set by the transition to `done`, cleared when leaving it. Derived from the
    /// event's `recorded_at`, never stored in a payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
}

impl Default for TaskFields {
    fn default() -> Self {
        TaskFields {
            status: TaskStatus::Todo,
            priority: 0,
            due_at: None,
            completed_at: None,
        }
    }
}

/// A reference to one content version in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
}

/// A file attached to an entity. The bytes live once per (user, hash) in the object
/// store; the entity's state holds only this reference, so time travel and revert
/// see attachments like any other field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub filename: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
    /// When it was (last) added: the `recorded_at` of its `entity.attachment_added`.
    pub added_at: Timestamp,
}

impl Attachment {
    /// The same file under the same name (when it was added does not count).
    pub fn same_file(&self, other: &Attachment) -> bool {
        self.id == other.id
            && self.filename == other.filename
            && self.hash == other.hash
            && self.size == other.size
            && self.media_type == other.media_type
    }
}

/// The media type of content when none is given.
pub const DEFAULT_MEDIA_TYPE: &str = "text/markdown";

/// The current state of one entity: the fold of its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    pub id: EntityId,
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentRef>,
    pub tags: TagSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskFields>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Attached files by id (ids are UUIDv7, so this is also the order they were
    /// first added in). Absent from snapshots written before attachments existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attachments: BTreeMap<AttachmentId, Attachment>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
}

impl EntityState {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The task fields, if this entity is currently a task.
    pub fn visible_task(&self) -> Option<&TaskFields> {
        match self.entity_type {
            EntityType::Task => self.task.as_ref(),
            _ => None,
        }
    }

    /// Folds one event into the state. `state` is `None` before the first event;
    /// the result is `None` only if the first event is not `entity.created`
    /// (a corrupt stream, which callers report).
    pub fn evolve(
        state: Option<EntityState>,
        id: EntityId,
        user_id: UserId,
        version: u64,
        recorded_at: Timestamp,
        event: &EntityEvent,
    ) -> Option<EntityState> {
        if let EntityEvent::Created(created) = event {
            return Some(EntityState {
                id,
                user_id,
                entity_type: created.entity_type,
                title: created.title.clone(),
                content: created.content.clone(),
                tags: TagSet::from_names(created.tags.iter().cloned()),
                task: created.task.clone().map(|mut task| {
                    task.completed_at = if task.status == TaskStatus::Done {
                        Some(recorded_at)
                    } else {
                        None
                    };
                    task
                }),
                metadata: created.metadata.clone(),
                attachments: BTreeMap::new(),
                version,
                created_at: recorded_at,
                updated_at: recorded_at,
                deleted_at: None,
            });
        }
        let mut state = state?;
        state.apply(event, recorded_at);
        state.version = version;
        state.updated_at = recorded_at;
        Some(state)
    }

    fn apply(&mut self, event: &EntityEvent, recorded_at: Timestamp) {
        match event {
            EntityEvent::Created(_) => {}
            EntityEvent::TitleChanged(change) => self.title = change.new.clone(),
            EntityEvent::ContentChanged(change) => {
                self.content = change.new_hash.map(|hash| ContentRef {
                    hash,
                    size: change.size,
                    media_type: change
                        .media_type
                        .clone()
                        .or_else(|| self.content.as_ref().map(|c| c.media_type.clone()))
                        .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
                });
            }
            EntityEvent::TypeChanged(change) => {
                self.entity_type = change.new;
                // Task fields exist exactly while the entity is a task: becoming a
                // task starts from the defaults, leaving it drops them (the old
                // values stay in the history).
                self.task = match change.new {
                    EntityType::Task => self.task.take().or_else(|| Some(TaskFields::default())),
                    _ => None,
                };
            }
            EntityEvent::TagsAdded(change) => {
                for tag in &change.tags {
                    self.tags.insert(tag.clone());
                }
            }
            EntityEvent::TagsRemoved(change) => {
                for tag in &change.tags {
                    self.tags.remove(tag);
                }
            }
            EntityEvent::MetadataChanged(change) => {
                for key in &change.unset {
                    self.metadata.remove(key);
                }
                for (key, value) in &change.set {
                    self.metadata.insert(key.clone(), value.clone());
                }
            }
            EntityEvent::AttachmentAdded(added) => {
                self.attachments.insert(
                    added.attachment_id,
                    Attachment {
                        id: added.attachment_id,
                        filename: added.filename.clone(),
                        hash: added.hash,
                        size: added.size,
                        media_type: added.media_type.clone(),
                        added_at: recorded_at,
                    },
                );
            }
            EntityEvent::AttachmentRemoved(removed) => {
                self.attachments.remove(&removed.attachment_id);
            }
            EntityEvent::Deleted => self.deleted_at = Some(recorded_at),
            EntityEvent::Restored => self.deleted_at = None,
            EntityEvent::TaskStatusChanged(change) => {
                let task = self.task.get_or_insert_with(TaskFields::default);
                task.status = change.new;
                task.completed_at = if change.new == TaskStatus::Done {
                    Some(recorded_at)
                } else {
                    None
                };
            }
            EntityEvent::TaskPriorityChanged(change) => {
                self.task.get_or_insert_with(TaskFields::default).priority = change.new;
            }
            EntityEvent::TaskDueChanged(change) => {
                self.task.get_or_insert_with(TaskFields::default).due_at = change.new;
            }
        }
    }
}
