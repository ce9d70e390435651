//! The global feed: reading the log in position order without ever skipping an
//! event that commits late, and waking readers when something was committed.
//!
//! A position is `xid8 << 20 | index` of the transaction that wrote the event
//! (see `codec`). Every transaction whose id is below the snapshot's `xmin` has
//! finished, so an event whose position is below `xmin << 20` (the *horizon*) is
//! settled: no event can ever appear at or below it later. Readers return settled
//! events only. Events already visible above the horizon (committed while an older
//! transaction is still open) wait until it closes — at most
//! [`SETTLE_WAIT_MAX`], after which the reader returns the settled part.
//!
//! `LISTEN/NOTIFY` on [`FEED_CHANNEL`] only wakes readers: a listener thread per
//! store turns notifications into a counter readers wait on; the data is always
//! read from the table.

use crate::codec::{EVENT_COLUMNS, POSITION_INDEX_BITS, corrupt, event_from_row, micros};
use crate::pool::Conn;
pub use crate::write::FEED_CHANNEL;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use std::time::{Duration, Instant};
use synap_domain::StoredEvent;
use synap_domain::event::type_code;
use synap_domain::ids::UserId;
use synap_store::{EventFilter, PageRequest, StoreError, StoreResult};
use tokio::sync::watch;

/// Longest a read waits for older open transactions to finish before returning
/// the events that are settled.
pub const SETTLE_WAIT_MAX: Duration = Duration::from_secs(2);
/// Pause between looks while waiting for the horizon to pass.
const SETTLE_POLL: Duration = Duration::from_millis(2);
/// How often the listener thread checks that its store still exists, and how
/// long it waits before reconnecting after losing its connection.
const LISTENER_TICK: Duration = Duration::from_secs(1);

/// Shortest time between two wake-up notifications from one process: commits in
/// between are announced by one `NOTIFY`. Every notification is a transaction of
/// its own and wakes every listening process, so at thousands of commits a
/// second one per commit would cost more CPU than the commits; readers in other
/// processes learn of a commit at most this much later. (Readers in this
/// process are woken at once, without `NOTIFY`.)
pub const NOTIFY_INTERVAL_MIN: Duration = Duration::from_millis(2);
/// SQL for the horizon: positions below it are settled. An uncorrelated
/// subquery, so it is computed once per statement rather than once per row.
fn horizon_sql() -> String {
    format!(
        "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_INDEX_BITS})"
    )
}

/// The highest settled position of the whole log (0 for an empty log). When
/// committed events are still above the horizon (an older transaction is open),
/// waits for them to settle — at most [`SETTLE_WAIT_MAX`] — so that a caller who
/// has just committed sees its own commit in the head.
pub fn head_position(conn: &mut Conn) -> StoreResult<u64> {
    let sql = format!(
        "SELECT coalesce((SELECT position FROM events WHERE position < {h} ORDER BY position DESC LIMIT 1), 0), \
                coalesce((SELECT position FROM events ORDER BY position DESC LIMIT 1), 0)",
        h = horizon_sql()
    );
    let started = Instant::now();
    loop {
        let row = conn.query_one(&sql, &[])?;
        let settled = row.try_get::<_, i64>(0).map_err(corrupt)? as u64;
        let visible = row.try_get::<_, i64>(1).map_err(corrupt)? as u64;
        if settled >= visible || started.elapsed() >= SETTLE_WAIT_MAX {
            return Ok(settled);
        }
        std::thread::sleep(SETTLE_POLL);
    }
}

/// The caller's events after `filter.after`, oldest first, settled ones only.
pub fn read_events(
    conn: &mut Conn,
    user: &UserId,
    filter: &EventFilter,
) -> StoreResult<Vec<StoredEvent>> {
    let limit = PageRequest {
        limit: filter.limit,
        cursor: None,
    }
    .limit()?;
    let after = filter.after.min(i64::MAX as u64) as i64;
    let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(user.0), Box::new(after)];
    let mut conditions = vec!["user_id = $1".to_string(), "position > $2".into()];
    if !filter.types.is_empty() {
        let mut codes = Vec::with_capacity(filter.types.len());
        for event_type in &filter.types {
            let code = type_code(event_type).ok_or_else(|| {
                StoreError::InvalidInput(format!(
                    "unknown event type {event_type:?}; types look like entity.created"
                ))
            })?;
            codes.push(code);
        }
        params.push(Box::new(codes));
        conditions.push(format!("type_code = ANY(${}::smallint[])", params.len()));
    }
    if let Some(aggregate) = filter.aggregate_id {
        params.push(Box::new(aggregate));
        conditions.push(format!("aggregate_id = ${}", params.len()));
    }
    if let Some(since) = filter.since {
        params.push(Box::new(micros(since)));
        conditions.push(format!("recorded_at >= ${}", params.len()));
    }
    if let Some(until) = filter.until {
        params.push(Box::new(micros(until)));
        conditions.push(format!("recorded_at < ${}", params.len()));
    }
    params.push(Box::new(i64::from(limit)));
    let sql = format!(
        "SELECT {EVENT_COLUMNS}, position < {h} AS settled FROM events WHERE {} \
         ORDER BY position LIMIT ${}",
        conditions.join(" AND "),
        params.len(),
        h = horizon_sql()
    );
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let started = Instant::now();
    loop {
        let rows = conn.query(&sql, &params)?;
        let mut events = Vec::with_capacity(rows.len());
        let mut unsettled = false;
        for row in &rows {
            if !row.try_get::<_, bool>(10).map_err(corrupt)? {
                unsettled = true;
                break;
            }
            events.push(event_from_row(row)?);
        }
        if !unsettled || started.elapsed() >= SETTLE_WAIT_MAX {
            return Ok(events);
        }
        std::thread::sleep(SETTLE_POLL);
    }
}

/// Listens on [`FEED_CHANNEL`] on its own connection and bumps `wake` for every
/// notification, until every receiver of `wake` is gone. Reconnects after a lost
/// connection (readers poll meanwhile, so nothing is missed, only later).
pub fn listen(url: String, wake: watch::Sender<u64>) {
    while !wake.is_closed() {
        let mut client = match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(client) => client,
            Err(_) => {
                std::thread::sleep(LISTENER_TICK);
                continue;
            }
        };
        if client
            .batch_execute(&format!("LISTEN {FEED_CHANNEL}"))
            .is_err()
        {
            std::thread::sleep(LISTENER_TICK);
            continue;
        }
        // A wake-up after (re)connecting covers anything committed meanwhile.
        wake.send_modify(|n| *n += 1);
        loop {
            if wake.is_closed() {
                return;
            }
            let mut notifications = client.notifications();
            let first = notifications.timeout_iter(LISTENER_TICK).next();
            match first {
                Ok(Some(_)) => {
                    // Collapse a burst (already received) into one wake-up.
                    while let Ok(Some(_)) = notifications.iter().next() {}
                    wake.send_modify(|n| *n += 1);
                }
                Ok(None) => {}
                Err(_) => break,
            }
            drop(notifications);
            if client.is_closed() {
                break;
            }
        }
    }
}

/// Sends the wake-up `NOTIFY` for commits made through this process, from a
/// thread of its own after the commit — never inside a write transaction,
/// where PostgreSQL would serialise every notifying commit on its notification
/// queue lock. Pokes that arrive while a notification is being sent coalesce
/// into the next one.
#[derive(Debug)]
pub struct Notifier {
    state: std::sync::Arc<(std::sync::Mutex<NotifierState>, std::sync::Condvar)>,
}

#[derive(Debug, Default)]
struct NotifierState {
    pending: bool,
    closed: bool,
}

impl Notifier {
    pub fn start(url: String) -> StoreResult<Notifier> {
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(NotifierState::default()),
            std::sync::Condvar::new(),
        ));
        let shared = std::sync::Arc::clone(&state);
        std::thread::Builder::new()
            .name("synap-pg-notifier".into())
            .spawn(move || notify_loop(&url, &shared))
            .map_err(|e| StoreError::Backend(format!("cannot start the notifier thread: {e}")))?;
        Ok(Notifier { state })
    }

    /// Asks for a notification soon.
    pub fn poke(&self) {
        let (lock, wake) = &*self.state;
        if let Ok(mut state) = lock.lock() {
            state.pending = true;
            wake.notify_one();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        if let Ok(mut state) = lock.lock() {
            state.closed = true;
            wake.notify_one();
        }
    }
}

fn notify_loop(url: &str, state: &(std::sync::Mutex<NotifierState>, std::sync::Condvar)) {
    let (lock, wake) = state;
    let mut client: Option<postgres::Client> = None;
    loop {
        {
            let Ok(mut guard) = lock.lock() else { return };
            while !guard.pending && !guard.closed {
                guard = match wake.wait(guard) {
                    Ok(guard) => guard,
                    Err(_) => return,
                };
            }
            if guard.closed {
                return;
            }
            guard.pending = false;
        }
        let sending = Instant::now();
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = postgres::Client::connect(url, postgres::NoTls).ok();
        }
        let sent = client
            .as_mut()
            .is_some_and(|c| c.batch_execute(&format!("NOTIFY {FEED_CHANNEL}")).is_ok());
        if !sent {
            // Readers poll meanwhile; try again after a pause.
            client = None;
            std::thread::sleep(LISTENER_TICK);
            if let Ok(mut guard) = lock.lock() {
                guard.pending = true;
            }
        } else {
            // Commits poked meanwhile are announced together, after a pause.
            std::thread::sleep(NOTIFY_INTERVAL_MIN.saturating_sub(sending.elapsed()));
        }
    }
}
