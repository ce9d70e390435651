//! Revert: the compensating events that take an entity from its current state back
//! to the state of an earlier version. History is never rewritten — the revert is
//! itself new events, and can be reverted in turn.

use crate::entity::{EntityState, TaskFields};
use crate::event::{
    AttachmentAdded, AttachmentRemoved, ContentChanged, EntityEvent, FieldChange, MetadataChanged,
    TagsChanged,
};
use serde_json::Map;

/// Events that turn `current` into `target` (fields only; the version moves forward).
/// Empty when nothing differs.
pub fn events_to_restore(current: &EntityState, target: &EntityState) -> Vec<EntityEvent> {
    let mut events = Vec::new();
    if current.is_deleted() && !target.is_deleted() {
        events.push(EntityEvent::Restored);
    }
    if current.entity_type != target.entity_type {
        events.push(EntityEvent::TypeChanged(FieldChange {
            old: current.entity_type,
            new: target.entity_type,
        }));
    }
    if current.title != target.title {
        events.push(EntityEvent::TitleChanged(FieldChange {
            old: current.title.clone(),
            new: target.title.clone(),
        }));
    }
    if current.content != target.content {
        let media_type = match (&current.content, &target.content) {
            (Some(old), Some(new)) if old.media_type != new.media_type => {
                Some(new.media_type.clone())
            }
            (None, Some(new)) => Some(new.media_type.clone()),
            _ => None,
        };
        events.push(EntityEvent::ContentChanged(ContentChanged {
            old_hash: current.content.as_ref().map(|c| c.hash),
            new_hash: target.content.as_ref().map(|c| c.hash),
            size: target.content.as_ref().map_or(0, |c| c.size),
            media_type,
        }));
    }
    let removed: Vec<String> = current
        .tags
        .names()
        .filter(|t| !target.tags.contains(t))
        .map(str::to_string)
        .collect();
    if !removed.is_empty() {
        events.push(EntityEvent::TagsRemoved(TagsChanged { tags: removed }));
    }
    let added: Vec<String> = target
        .tags
        .names()
        .filter(|t| !current.tags.contains(t))
        .map(str::to_string)
        .collect();
    if !added.is_empty() {
        events.push(EntityEvent::TagsAdded(TagsChanged { tags: added }));
    }
    let mut set = Map::new();
    for (key, value) in &target.metadata {
        if current.metadata.get(key) != Some(value) {
            set.insert(key.clone(), value.clone());
        }
    }
    let unset: Vec<String> = current
        .metadata
        .keys()
        .filter(|k| !target.metadata.contains_key(*k))
        .cloned()
        .collect();
    if !set.is_empty() || !unset.is_empty() {
        events.push(EntityEvent::MetadataChanged(MetadataChanged { set, unset }));
    }
    // Task fields exist exactly while the entity is a task, so after the type change
    // above both sides have them or neither does; compare from the defaults a type
    // change to task starts with.
    let now_task = match (&current.task, &target.task) {
        (Some(now), _) => Some(now.clone()),
        (None, Some(_)) => Some(TaskFields::default()),
        (None, None) => None,
    };
    if let (Some(now), Some(then)) = (&now_task, &target.task) {
        if now.status != then.status {
            events.push(EntityEvent::TaskStatusChanged(FieldChange {
                old: now.status,
                new: then.status,
            }));
        }
        if now.priority != then.priority {
            events.push(EntityEvent::TaskPriorityChanged(FieldChange {
                old: now.priority,
                new: then.priority,
            }));
        }
        if now.due_at != then.due_at {
            events.push(EntityEvent::TaskDueChanged(FieldChange {
                old: now.due_at,
                new: then.due_at,
            }));
        }
    }
    // Attachments are references to bytes that are never deleted, so a detached
    // file can be attached again under its old id; one attached since is detached.
    for (id, now) in &current.attachments {
        if !target
            .attachments
            .get(id)
            .is_some_and(|then| then.same_file(now))
        {
            events.push(EntityEvent::AttachmentRemoved(AttachmentRemoved {
                attachment_id: *id,
                filename: now.filename.clone(),
                hash: now.hash,
            }));
        }
    }
    for (id, then) in &target.attachments {
        if !current
            .attachments
            .get(id)
            .is_some_and(|now| now.same_file(then))
        {
            events.push(EntityEvent::AttachmentAdded(AttachmentAdded {
                attachment_id: *id,
                filename: then.filename.clone(),
                hash: then.hash,
                size: then.size,
                media_type: then.media_type.clone(),
            }));
        }
    }
    if !current.is_deleted() && target.is_deleted() {
        events.push(EntityEvent::Deleted);
    }
    events
}
