//! The database schema and its migrations. Migrations are applied in order at open,
//! inside one transaction each; `PRAGMA user_version` records how far a file is.
//!
//! Tables, by what they hold:
//! - source of truth: `events` (the log, append-only — triggers refuse UPDATE and
//!   DELETE), `contents` (one row per distinct content version of a user),
//!   `command_outcomes` (idempotency records), and the accounts: `users`,
//!   `api_tokens` (a lookup prefix and the SHA-256 of the token, never the token),
//!   `sessions` (keyed by the SHA-256 of the cookie value) and `webhooks`;
//! - projections, rebuildable from the log at any time: `entities`, `tags`,
//!   `entity_tags`, `task_details`, `relations`, `search` (FTS5);
//! - caches: `snapshots`;
//! - derived from the projections and an embedding model: `vector_sources` and
//!   `vectors` (semantic search; see [`crate::vectors`]).

use rusqlite::Connection;

/// The projection tables, recreated by rebuild and built off to the side by verify.
/// Unqualified names, so the same text creates them in any schema.
/// The `entity_attachments` projection: an entity's attachments (part of its state).
/// In the projection schema and in the migration that introduced it.
macro_rules! attachments_projection {
    () => {
        r#"
CREATE TABLE IF NOT EXISTS entity_attachments (
    entity_rowid INTEGER NOT NULL,
    id           BLOB NOT NULL,
    filename     TEXT NOT NULL,
    hash         BLOB NOT NULL,
    size         INTEGER NOT NULL,
    media_type   TEXT NOT NULL,
    added_at     INTEGER NOT NULL,
    PRIMARY KEY (entity_rowid, id)
) WITHOUT ROWID;
"#
    };
}

pub const PROJECTION_SCHEMA: &str = concat!(
    r#"
CREATE TABLE IF NOT EXISTS entities (
    rowid        INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    user_id      BLOB NOT NULL,
    type         TEXT NOT NULL,
    title        TEXT NOT NULL,
    title_key    TEXT NOT NULL,
    preview      TEXT NOT NULL,
    content_hash BLOB,
    content_size INTEGER,
    media_type   TEXT,
    metadata     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX IF NOT EXISTS entities_by_user_updated ON entities(user_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS entities_by_user_title ON entities(user_id, title_key);

CREATE TABLE IF NOT EXISTS tags (
    rowid   INTEGER PRIMARY KEY,
    user_id BLOB NOT NULL,
    key     TEXT NOT NULL,
    name    TEXT NOT NULL,
    count   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, key)
);

CREATE TABLE IF NOT EXISTS entity_tags (
    entity_rowid INTEGER NOT NULL,
    tag_rowid    INTEGER NOT NULL,
    PRIMARY KEY (entity_rowid, tag_rowid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_tags_by_tag ON entity_tags(tag_rowid, entity_rowid);

CREATE TABLE IF NOT EXISTS task_details (
    entity_rowid INTEGER PRIMARY KEY,
    status       TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    due_at       INTEGER,
    completed_at INTEGER
);

CREATE TABLE IF NOT EXISTS relations (
    id         BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL,
    source_id  BLOB NOT NULL,
    target_id  BLOB NOT NULL,
    kind       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relations_by_source ON relations(user_id, source_id);
CREATE INDEX IF NOT EXISTS relations_by_target ON relations(user_id, target_id);

-- Merging fewer, larger segments at write time (automerge 16 instead of 4) keeps
-- group commits cheap; BENCHMARKS.md shows the query latency this leaves.
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(
    title, body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search (search, rank) VALUES ('automerge', 16), ('crisismerge', 64);
"#,
    attachments_projection!()
);

/// The projection tables' names, in the order rebuild clears them.
pub const PROJECTION_TABLES: &[&str] = &[
    "entities",
    "tags",
    "entity_tags",
    "task_details",
    "relations",
    "search",
    "entity_attachments",
];

/// Each migration, in order. Never edit a released one; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the log, content, accounts, idempotency, snapshots and projections.
    r#"
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    id             BLOB NOT NULL UNIQUE,
    aggregate_type TEXT NOT NULL,
    aggregate_id   BLOB NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    user_id        BLOB NOT NULL,
    data           TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    recorded_at    INTEGER NOT NULL,
    UNIQUE (aggregate_id, version)
);
CREATE INDEX events_by_user ON events(user_id, position);
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE contents (
    rowid      INTEGER PRIMARY KEY,
    user_id    BLOB NOT NULL,
    hash       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    storage    TEXT NOT NULL DEFAULT 'db',
    body       TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, hash)
);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    display_name  TEXT,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
) WITHOUT ROWID;

CREATE TABLE command_outcomes (
    command_id   BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL,
    aggregate_id BLOB NOT NULL,
    version      INTEGER NOT NULL,
    event_count  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE snapshots (
    aggregate_id   BLOB NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, version)
) WITHOUT ROWID;
"#,
    // 2: API tokens and browser sessions. Scopes are a JSON array of names.
    r#"
CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX api_tokens_by_user ON api_tokens(user_id, created_at DESC, id DESC);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions(user_id);
"#,
    // 3: durable workflows (runs, memoised steps, cron schedules).
    crate::workflow::SCHEMA,
    // 4: object storage. A content row records where an object-stored body or
    // attachment lives (provider, key); the `entity_attachments` projection.
    concat!(
        r#"
ALTER TABLE contents ADD COLUMN object_provider TEXT;
ALTER TABLE contents ADD COLUMN object_key TEXT;
"#,
        attachments_projection!()
    ),
    // 5: search vectors (derived; see `vectors`).
    crate::vectors::SCHEMA,
    // 6: webhook subscriptions (see `webhooks`).
    crate::webhooks::SCHEMA,
    // 7: suggestions (see `suggestions`).
    crate::suggestions::SCHEMA,
    // 8: finished runs by age, for the retention purge.
    crate::workflow::RETENTION_INDEX,
];

/// The version of snapshot states; bump it when `EntityState` changes shape so
/// stale snapshots are ignored (they are only a cache).
pub const SNAPSHOT_SCHEMA_VERSION: i64 = 1;

/// Brings a database up to the newest schema.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if now < version {
            tx.execute_batch(sql)?;
            if version == 1 {
                tx.execute_batch(PROJECTION_SCHEMA)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        }
        tx.commit()?;
    }
    Ok(())
}
