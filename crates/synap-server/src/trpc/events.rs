//! `events.log` and `events.list`: the caller's event log in the original's row
//! shape `{id, userId, timestamp, type, data, source, correlationId}` (plus
//! `position`, `aggregateId`, `aggregateType`, `version`).
//!
//! `events.list` is always confined to the caller — with or without `type` (the
//! original's `type` filter replaced its user filter and leaked every user's
//! events) — and answers newest first.

use super::Call;
use super::error::RpcError;
use super::input::Fields;
use crate::routes::dto::command_metadata;
use serde_json::{Value, json};
use synap_domain::event::CATALOGUE;
use synap_domain::limits::LOGGED_EVENT_TYPE_CHARS_MAX;
use synap_domain::{Source, StoredEvent};
use synap_store::{CommandRequest, EventFilter, Scope, Store, StoreResult, Target};

/// The stored type of events appended by `events.log`; their `data` carries the
/// client's `type` and `data`, which is what `events.list` shows.
pub const LOGGED_EVENT_TYPE: &str = "user.event_logged";
/// Default and largest `limit` of `events.list` (the original's zod schema).
const LIST_LIMIT_DEFAULT: u32 = 50;
const LIST_LIMIT_MAX: u32 = 100;
/// Events asked of the store per read while looking for the newest ones.
const READ_PAGE_EVENTS: u32 = 500;
/// The `source` values a client may log with (the original's zod enum).
const LOG_SOURCES: &[&str] = &["api", "automation", "sync", "migration"];

/// `(type, data)` as the original's callers see them: a logged event shows the
/// client's type and data, any other event its own type and delta.
fn presented(event: &StoredEvent) -> (String, Value) {
    let data = event.payload.data();
    if event.event_type() == LOGGED_EVENT_TYPE {
        let logged_type = ["type", "event_type"]
            .iter()
            .find_map(|key| data.get(key).and_then(Value::as_str))
            .unwrap_or(LOGGED_EVENT_TYPE)
            .to_string();
        let logged_data = data.get("data").cloned().unwrap_or(Value::Null);
        return (logged_type, logged_data);
    }
    (event.event_type().to_string(), data)
}

/// An event as a row of the original's `events` table.
pub(super) fn row(event: &StoredEvent) -> Value {
    let (event_type, data) = presented(event);
    json!({
        "id": event.id,
        "userId": event.user_id,
        "timestamp": event.recorded_at,
        "type": event_type,
        "data": data,
        "source": event.metadata.source.as_str(),
        "correlationId": event.metadata.correlation_id,
        "position": event.position,
        "aggregateId": event.aggregate_id,
        "aggregateType": event.aggregate_type().as_str(),
        "version": event.version,
    })
}

/// `events.list` (query) `{limit? 1..=100 (50), type?}` → rows, newest first.
///
/// `type` matches the type a row shows: an event's own type, or the client's type
/// of a logged event. An empty `type` means no filter, as in the original.
pub(super) async fn list(call: &Call<'_>, input: Option<Value>) -> Result<Value, RpcError> {
    let input = Fields::of(input, true)?;
    let limit = input
        .opt_int("limit", 1, LIST_LIMIT_MAX)?
        .unwrap_or(LIST_LIMIT_DEFAULT);
    let wanted_type = input
        .opt_string("type", 0, LOGGED_EVENT_TYPE_CHARS_MAX)?
        .filter(|t| !t.is_empty());
    // The stored types that can show as `wanted_type`: itself, when it is one of
    // the catalogue's, and logged events. The store refuses types it does not know.
    let store_types: Vec<String> = match &wanted_type {
        None => Vec::new(),
        Some(t) => {
            let mut types = vec![t.as_str(), LOGGED_EVENT_TYPE];
            types.dedup();
            types.retain(|t| CATALOGUE.iter().any(|(name, _)| name == t));
            if types.is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            types.into_iter().map(str::to_string).collect()
        }
    };
    let keep = |event: &StoredEvent| match &wanted_type {
        None => true,
        Some(t) => presented(event).0 == *t,
    };
    let events = newest_events(
        call.state.store.as_ref(),
        &call.caller.scope(),
        store_types,
        &keep,
        limit as usize,
        READ_PAGE_EVENTS,
    )
    .await?;
    Ok(Value::Array(events.iter().map(row).collect()))
}

/// The newest `want` events of the caller (of `types`, when not empty) for which
/// `keep` holds, newest first.
///
/// The store reads forward from a position, so this looks at the log from its end
/// backwards: it reads a range `(low, high]` of positions in one call when the range
/// holds at most `page` of the caller's events, and otherwise splits the range in
/// two and looks at the newer half first. Every read returns at most `page` events,
/// and the number of reads grows with the logarithm of the log's length, not with
/// the number of the caller's events.
pub(super) async fn newest_events(
    store: &dyn Store,
    scope: &Scope,
    types: Vec<String>,
    keep: &(dyn Fn(&StoredEvent) -> bool + Sync),
    want: usize,
    page: u32,
) -> StoreResult<Vec<StoredEvent>> {
    let mut found = Vec::new();
    if want == 0 {
        return Ok(found);
    }
    let head = store.head_position().await?;
    // Ranges still to look at; the top of the stack is the newest.
    let mut ranges = vec![(0_u64, head)];
    while let Some((low, high)) = ranges.pop() {
        if low >= high {
            continue;
        }
        let filter = EventFilter {
            after: low,
            types: types.clone(),
            limit: Some(page),
            ..EventFilter::default()
        };
        let events = store.read_events(scope, &filter).await?;
        let covers_range =
            events.len() < page as usize || events.last().is_some_and(|e| e.position >= high);
        if !covers_range {
            // More than `page` events in the range, so `high - low > page >= 1`
            // and both halves are smaller than the range.
            let middle = low + (high - low) / 2;
            ranges.push((low, middle));
            ranges.push((middle, high));
            continue;
        }
        for event in events.into_iter().rev() {
            if event.position > high || !keep(&event) {
                continue;
            }
            found.push(event);
            if found.len() == want {
                return Ok(found);
            }
        }
    }
    Ok(found)
}

/// `events.log` (mutation) `{type, data, source?, correlationId?}` → the stored row.
///
/// Appends `user.event_logged` to the caller's user stream in one command (the
/// store checks the type, 1 to 100 characters, and the data, at most 16 KiB);
/// `source` (default `api`) and `correlationId` go into the event's metadata, the
/// caller's token or session into its `actor`.
pub(super) async fn log(call: &Call<'_>, input: Option<Value>) -> Result<Value, RpcError> {
    let input = Fields::of(input, false)?;
    let event_type = input.string("type", 1, LOGGED_EVENT_TYPE_CHARS_MAX)?;
    let data = input.object("data")?;
    let source = match input.opt_choice("source", LOG_SOURCES)? {
        Some("automation") => Source::Automation,
        Some("sync") => Source::Sync,
        Some("migration") => Source::Migration,
        _ => Source::Api,
    };
    let correlation_id = input.opt_uuid("correlationId")?;
    let mut metadata = command_metadata(call.caller, call.headers);
    metadata.source = source;
    metadata.correlation_id = correlation_id;
    let scope = call.caller.scope();
    let request = CommandRequest::new(
        scope,
        Target::LogEvent {
            event_type,
            data: Value::Object(data),
        },
        metadata,
    );
    let outcome = call.state.store.execute(request).await?;
    let missing = || {
        eprintln!("synap: events.log: the appended event could not be read back");
        RpcError::internal()
    };
    let appended = outcome.events.first().ok_or_else(missing)?;
    // Read the event back for its recorded time (the row the original returned).
    let filter = EventFilter {
        after: appended.position.saturating_sub(1),
        aggregate_id: Some(appended.aggregate_id),
        limit: Some(1),
        ..EventFilter::default()
    };
    let stored = call
        .state
        .store
        .read_events(&scope, &filter)
        .await?
        .into_iter()
        .find(|event| event.position == appended.position)
        .ok_or_else(missing)?;
    Ok(row(&stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use synap_domain::{CreateEntity, EntityCommand, EntityId, EventMetadata};
    use synap_store::{Accounts, CommandRequest, NewUser, Target};
    use synap_store_sqlite::{SqliteConfig, SqliteStore};

    async fn create_note(store: &SqliteStore, scope: Scope, body: &str) {
        let request = CommandRequest::new(
            scope,
            Target::Entity {
                id: EntityId::new_v7(),
                command: EntityCommand::Create(CreateEntity::note(body)),
            },
            EventMetadata::default(),
        );
        synap_store::EventStore::execute(store, request)
            .await
            .expect("create");
    }

    /// Every event of the scope, newest first, the slow way.
    async fn all_newest_first(store: &SqliteStore, scope: &Scope) -> Vec<u64> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let filter = EventFilter {
                after,
                limit: Some(500),
                ..EventFilter::default()
            };
            let page = synap_store::EventStore::read_events(store, scope, &filter)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.position;
            all.extend(page.iter().map(|e| e.position));
        }
        all.reverse();
        all
    }

    #[tokio::test]
    async fn newest_events_reads_backwards_in_small_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SqliteConfig::new(dir.path().join("synap.db"));
        config.durable = false;
        let store = Arc::new(SqliteStore::open(config).unwrap());
        let owner = Scope::user(store.local_owner().await.unwrap().id);
        let other = Scope::user(
            store
                .create_user(NewUser {
                    email: "other@example.com".into(),
                    role: "member".into(),
                    ..NewUser::default()
                })
                .await
                .unwrap()
                .id,
        );
        // Dense runs of one user's events between sparse ones of the other's.
        for round in 0..4 {
            for i in 0..7 {
                create_note(&store, owner, &format!("owner {round} {i}")).await;
            }
            create_note(&store, other, &format!("other {round}")).await;
        }
        let expected = all_newest_first(&store, &owner).await;
        assert!(expected.len() >= 28);
        let keep_all = |_: &StoredEvent| true;
        for page in [1, 2, 3, 5, 500] {
            for want in [1, 2, 9, 27, expected.len(), expected.len() + 10] {
                let found =
                    newest_events(store.as_ref(), &owner, Vec::new(), &keep_all, want, page)
                        .await
                        .unwrap();
                let positions: Vec<u64> = found.iter().map(|e| e.position).collect();
                let want_positions: Vec<u64> = expected.iter().copied().take(want).collect();
                assert_eq!(positions, want_positions, "page {page}, want {want}");
                assert!(found.iter().all(|e| e.user_id == owner.user_id));
            }
        }
        // A `keep` that holds for few events still finds them, newest first.
        let every_fifth = |e: &StoredEvent| e.position.is_multiple_of(5);
        let found = newest_events(
            store.as_ref(),
            &owner,
            vec!["entity.created".into()],
            &every_fifth,
            100,
            2,
        )
        .await
        .unwrap();
        let want: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|p| p.is_multiple_of(5))
            .collect();
        assert_eq!(found.iter().map(|e| e.position).collect::<Vec<_>>(), want);
        let none = newest_events(store.as_ref(), &owner, Vec::new(), &keep_all, 0, 3)
            .await
            .unwrap();
        assert!(none.is_empty());
    }
}
