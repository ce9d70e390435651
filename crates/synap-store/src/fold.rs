//! Folding events into state: the one definition of "the state after these events",
//! used by time travel, by the write pipeline's snapshots and by rebuild/verify.

use crate::api::{StoreError, StoreResult};
use synap_domain::entity::EntityState;
use synap_domain::event::{EventPayload, StoredEvent};
use synap_domain::ids::{EntityId, RelationId};
use synap_domain::relation::RelationState;

/// A snapshot is written every this-many versions of an entity. Snapshots are a
/// cache: deleting them all changes no answer, only the time it takes.
pub const SNAPSHOT_INTERVAL: u64 = 64;

/// Applies `events` (of one entity, in version order, continuing `start`) and
/// returns the resulting state.
pub fn fold_entity<'a>(
    start: Option<EntityState>,
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> StoreResult<Option<EntityState>> {
    let mut state = start;
    for event in events {
        let EventPayload::Entity(payload) = &event.payload else {
            return Err(StoreError::Corrupt(format!(
                "event {} in entity stream {} is a {}",
                event.id,
                event.aggregate_id,
                event.event_type()
            )));
        };
        let expected = state.as_ref().map_or(1, |s| s.version + 1);
        if event.version != expected {
            return Err(StoreError::Corrupt(format!(
                "entity {} jumps from version {} to {}",
                event.aggregate_id,
                expected - 1,
                event.version
            )));
        }
        state = EntityState::evolve(
            state,
            EntityId(event.aggregate_id),
            event.user_id,
            event.version,
            event.recorded_at,
            payload,
        );
        if state.is_none() {
            return Err(StoreError::Corrupt(format!(
                "entity {} does not start with entity.created",
                event.aggregate_id
            )));
        }
    }
    Ok(state)
}

/// Applies `events` of one relation, in version order.
pub fn fold_relation<'a>(
    start: Option<RelationState>,
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> StoreResult<Option<RelationState>> {
    let mut state = start;
    for event in events {
        let EventPayload::Relation(payload) = &event.payload else {
            return Err(StoreError::Corrupt(format!(
                "event {} in relation stream {} is a {}",
                event.id,
                event.aggregate_id,
                event.event_type()
            )));
        };
        state = RelationState::evolve(
            state,
            RelationId(event.aggregate_id),
            event.user_id,
            event.version,
            event.recorded_at,
            payload,
        );
    }
    Ok(state)
}
