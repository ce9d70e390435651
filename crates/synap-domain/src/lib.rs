//! Synap's domain: what a note, task, relation and event *are*, and the rules that
//! turn a command into delta events (`decide`) and events into state (`evolve`).
//!
//! This crate is pure: no I/O, no async, no clock, no randomness. Ids and the current
//! time are passed in by the caller, so every function here is deterministic and can
//! be tested with given/when/then.

pub mod binary;
pub mod command;
pub mod entity;
pub mod error;
pub mod event;
pub mod ids;
pub mod limits;
pub mod relation;
pub mod revert;
pub mod tags;
pub mod text;

pub use command::{
    Change, CreateEntity, DecideContext, EntityCommand, NewAttachment, NewContent, TaskInput,
    decide,
};
pub use entity::{Attachment, ContentRef, EntityState, EntityType, TaskFields, TaskStatus};
pub use error::DomainError;
pub use event::{
    AggregateType, EntityEvent, EventMetadata, EventPayload, RelationEvent, Source, StoredEvent,
    UserEvent,
};
pub use ids::{AttachmentId, ContentHash, EntityId, EventId, RelationId, UserId};
pub use relation::{RelationKind, RelationState};

/// A point in time, UTC. Re-exported so that adapters agree on one time type.
pub use jiff::Timestamp;
