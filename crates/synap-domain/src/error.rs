//! The domain's rejections. Each says what was wrong and, where useful, what to do.

use crate::ids::EntityId;

/// Why a command was refused. Nothing is written when a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An input broke a rule; `field` names it for API clients.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// The command needs an entity that does not exist (or belongs to someone else).
    #[error("entity {0} not found")]
    EntityNotFound(EntityId),
    /// The command needs a relation that does not exist.
    #[error("relation not found")]
    RelationNotFound,
    /// Create was called for an id that is already taken.
    #[error("entity {0} already exists")]
    AlreadyExists(EntityId),
    /// Edits to a deleted entity are refused until it is restored.
    #[error("entity {0} is deleted; restore it before changing it")]
    EntityDeleted(EntityId),
    /// Task fields only exist on tasks.
    #[error("entity {0} is not a task; change its type to task first")]
    NotATask(EntityId),
    /// Revert asked for a version the entity never had.
    #[error("entity {id} has no version {version} (current version is {current})")]
    NoSuchVersion {
        id: EntityId,
        version: u64,
        current: u64,
    },
    /// The same link already exists.
    #[error("these entities are already linked with kind {kind}")]
    DuplicateRelation { kind: String },
}

impl DomainError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field,
            message: message.into(),
        }
    }
}
