//! The database schema, its migrations and the time partitions of `events`.
//!
//! Migrations run at open, each in its own transaction under an advisory lock, so
//! several processes starting at once apply each exactly once; `schema_migrations`
//! records how far a database is.
//!
//! Tables, by what they hold:
//! - source of truth: `events` (the log, partitioned by month of `recorded_at`,
//!   append-only — a trigger refuses UPDATE and DELETE), `streams` (each
//!   aggregate's version: the compare-and-set that serialises its writers),
//!   `contents` (one row per distinct content version of a user),
//!   `command_outcomes` (idempotency records) and the accounts: `users`,
//!   `api_tokens`, `sessions`;
//! - projections, rebuildable from the log at any time: `entities`, `tags`,
//!   `entity_tags`, `task_details`, `relations`, `search`;
//! - caches: `snapshots`.
//!
//! Uniqueness on a partitioned table must include the partition key, so the two
//! guarantees the log needs are enforced elsewhere, in the same transaction:
//! `(aggregate_id, version)` by the `streams` compare-and-set (a version is taken
//! only by moving the stream row from `version - 1`), and event ids by
//! `command_outcomes`' primary key (the only id a client chooses is the command
//! id, which is the first event's id; the others are fresh UUIDv7s).

use crate::codec::sql_error;
use crate::pool::{APP_ROLE, Conn};
use jiff::Timestamp;
use jiff::civil::Date;
use std::collections::BTreeSet;
use std::sync::Mutex;
use synap_store::{StoreError, StoreResult};

/// Advisory lock key held while migrating (any value unique to Synap).
pub(crate) const MIGRATION_LOCK: i64 = 0x5359_4e41_505f_4d49; // "SYNAP_MI"
/// Advisory lock key held while creating partitions.
const PARTITION_LOCK: i64 = 0x5359_4e41_505f_5041; // "SYNAP_PA"
/// Months of partitions kept ready beyond the current one.
pub const PARTITIONS_AHEAD: i32 = 2;

/// The user-owned tables: row-level security is enabled and forced on each.
pub const USER_TABLES: &[&str] = &[
    "events",
    "contents",
    "command_outcomes",
    "snapshots",
    "entities",
    "tags",
    "entity_tags",
    "task_details",
    "relations",
    "search",
    "api_tokens",
    "sessions",
];

/// The projection tables, in the order rebuild clears them.
pub const PROJECTION_TABLES: &[&str] = &[
    "entity_attachments",
    "search",
    "entity_tags",
    "task_details",
    "tags",
    "relations",
    "entities",
];

/// The projection tables' definitions. `{schema}` is replaced by the schema they
/// are created in (`public` for the live ones; verify builds a scratch copy).
pub const PROJECTION_SCHEMA: &str = r#"
CREATE TABLE {schema}.entities (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    type         text NOT NULL,
    title        text NOT NULL,
    title_key    text NOT NULL,
    preview      text NOT NULL,
    content_hash bytea,
    content_size bigint,
    media_type   text,
    metadata     jsonb NOT NULL,
    version      bigint NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    deleted_at   bigint
);
CREATE INDEX entities_by_user_updated ON {schema}.entities (user_id, updated_at DESC, id DESC);
CREATE INDEX entities_by_user_title ON {schema}.entities (user_id, title_key);

CREATE TABLE {schema}.tags (
    user_id uuid NOT NULL,
    key     text NOT NULL,
    name    text NOT NULL,
    count   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE {schema}.entity_tags (
    entity_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    tag_key   text NOT NULL,
    PRIMARY KEY (entity_id, tag_key)
);
CREATE INDEX entity_tags_by_tag ON {schema}.entity_tags (user_id, tag_key, entity_id);

CREATE TABLE {schema}.task_details (
    entity_id    uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    status       text NOT NULL,
    priority     smallint NOT NULL,
    due_at       bigint,
    completed_at bigint
);

CREATE TABLE {schema}.relations (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    source_id  uuid NOT NULL,
    target_id  uuid NOT NULL,
    kind       text NOT NULL,
    version    bigint NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX relations_by_source ON {schema}.relations (user_id, source_id);
CREATE INDEX relations_by_target ON {schema}.relations (user_id, target_id);

-- Live entities only. `title` and `body` hold the folded text (CJK runs as
-- bigrams, as the SQLite index gets it); `words` is its tsvector for word and
-- prefix matches, and the trigram index serves word starts the word parser keeps
-- inside longer tokens (host names, hyphenated words).
CREATE TABLE {schema}.search (
    entity_id uuid PRIMARY KEY,
    user_id   uuid NOT NULL,
    title     text NOT NULL,
    body      text NOT NULL,
    words     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A') || to_tsvector('simple', body)
    ) STORED
);
CREATE INDEX search_words ON {schema}.search USING gin (words);
CREATE INDEX search_trigrams ON {schema}.search USING gin ((title || ' ' || body) gin_trgm_ops);
"#;

/// One step of the schema: SQL, or code where rows must be converted by the
/// domain (which SQL cannot do).
enum Migration {
    Sql(&'static str),
    Code(fn(&mut Conn) -> StoreResult<()>),
}

/// Each migration, in order. Never edit a released one; append a new one.
const MIGRATIONS: &[Migration] = &[
    // 1: the log, streams, content, accounts, idempotency, snapshots.
    Migration::Sql(
        r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE streams (
    aggregate_id uuid PRIMARY KEY,
    version      bigint NOT NULL
);

-- Columns ordered widest first so rows carry no alignment padding.
CREATE TABLE events (
    position       bigint NOT NULL,
    recorded_at    bigint NOT NULL,
    id             uuid NOT NULL,
    aggregate_id   uuid NOT NULL,
    user_id        uuid NOT NULL,
    version        bigint NOT NULL,
    schema_version smallint NOT NULL,
    aggregate_type text NOT NULL,
    type           text NOT NULL,
    -- JSON as text: the log is written and read whole, never queried inside, and
    -- text is both smaller on disk and cheaper to read than jsonb for small payloads.
    data           text NOT NULL,
    metadata       text NOT NULL
) PARTITION BY RANGE (recorded_at);
CREATE INDEX events_by_position ON events (position);
CREATE INDEX events_by_aggregate ON events (aggregate_id, version);
CREATE INDEX events_by_user ON events (user_id, position);

CREATE FUNCTION synap_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END $$;
CREATE TRIGGER events_are_never_changed BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION synap_refuse_change();
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION synap_refuse_change();

CREATE TABLE contents (
    user_id    uuid NOT NULL,
    hash       bytea NOT NULL,
    size       bigint NOT NULL,
    media_type text NOT NULL,
    storage    text NOT NULL DEFAULT 'db',
    body       text,
    created_at bigint NOT NULL,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    email_key     text NOT NULL UNIQUE,
    password_hash text,
    display_name  text,
    role          text NOT NULL,
    created_at    bigint NOT NULL,
    disabled_at   bigint
);

CREATE TABLE command_outcomes (
    command_id     uuid PRIMARY KEY,
    user_id        uuid NOT NULL,
    aggregate_id   uuid NOT NULL,
    version        bigint NOT NULL,
    first_position bigint,
    event_count    integer NOT NULL
);

CREATE TABLE snapshots (
    aggregate_id   uuid NOT NULL,
    version        bigint NOT NULL,
    user_id        uuid NOT NULL,
    schema_version integer NOT NULL,
    state          jsonb NOT NULL,
    PRIMARY KEY (aggregate_id, version)
);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    scopes       jsonb NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint,
    last_used_at bigint,
    revoked_at   bigint
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at DESC, id DESC);

CREATE TABLE sessions (
    id_hash      text PRIMARY KEY,
    user_id      uuid NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL,
    last_seen_at bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
"#,
    ),
    // 2: durable workflows (runs, memoised steps, cron schedules), with forced
    // row-level security like the other user-owned tables.
    Migration::Sql(crate::workflow::SCHEMA),
    // 3: object storage. A content row records where an object-stored body or
    // attachment lives (provider, key); the `entity_attachments` projection
    // (`attachments::ATTACHMENTS_SCHEMA` for `public`), under row-level security.
    Migration::Sql(
        r#"
ALTER TABLE contents ADD COLUMN object_provider text;
ALTER TABLE contents ADD COLUMN object_key text;
CREATE TABLE IF NOT EXISTS public.entity_attachments (
    entity_id  uuid NOT NULL,
    id         uuid NOT NULL,
    user_id    uuid NOT NULL,
    filename   text NOT NULL,
    hash       bytea NOT NULL,
    size       bigint NOT NULL,
    media_type text NOT NULL,
    added_at   bigint NOT NULL,
    PRIMARY KEY (entity_id, id)
);
ALTER TABLE entity_attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE entity_attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY entity_attachments_of_user ON entity_attachments
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
"#,
    ),
    // 4: search vectors (derived; see `vectors`), under row-level security.
    Migration::Sql(crate::vectors::SCHEMA),
    // 5: webhook subscriptions (see `webhooks`), under row-level security.
    Migration::Sql(crate::webhooks::SCHEMA),
    // 6: suggestions (see `suggestions`), under row-level security.
    Migration::Sql(crate::suggestions::SCHEMA),
    // 7: finished runs by age, for the retention purge.
    Migration::Sql(crate::workflow::RETENTION_INDEX),
    // 8: the log in its compact form (`COMPACT_EVENTS`; see `codec`), every
    // stored event converted (`log_format`).
    Migration::Code(crate::log_format::compact_the_log),
];

/// The log as migration 8 creates it. Columns are ordered widest first so rows
/// carry no alignment padding; see `codec` for how each value is stored.
pub const COMPACT_EVENTS: &str = r#"
CREATE TABLE events (
    position       bigint NOT NULL,
    recorded_at    bigint NOT NULL,
    id             uuid NOT NULL,
    aggregate_id   uuid NOT NULL,
    user_id        uuid NOT NULL,
    version        integer NOT NULL,
    type_code      smallint NOT NULL,
    schema_version smallint NOT NULL,
    data           bytea NOT NULL,
    metadata       bytea NOT NULL
) PARTITION BY RANGE (recorded_at);
-- Positions only grow, overall and per user, so these two indexes only ever
-- append: their pages are filled completely instead of to the default 90 %.
CREATE INDEX events_by_position ON events (position) WITH (fillfactor = 100);
CREATE INDEX events_by_aggregate ON events (aggregate_id, version);
CREATE INDEX events_by_user ON events (user_id, position) WITH (fillfactor = 100);
CREATE TRIGGER events_are_never_changed BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION synap_refuse_change();
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION synap_refuse_change();
"#;

/// The version of snapshot states; bump it when `EntityState` changes shape so
/// stale snapshots are ignored (they are only a cache).
pub const SNAPSHOT_SCHEMA_VERSION: i32 = 1;

/// Brings a database up to the newest schema, sets up row-level security and the
/// application role, and reports whether the store can work as [`APP_ROLE`].
pub fn migrate(conn: &mut Conn) -> StoreResult<bool> {
    migrate_up_to(conn, MIGRATIONS.len())?;
    ensure_app_role(conn)
}

/// Applies the migrations up to number `last` (from 1) that a database lacks.
/// (All of them at open; tests stop earlier to hold a database in an old form.)
pub(crate) fn migrate_up_to(conn: &mut Conn, last: usize) -> StoreResult<()> {
    conn.client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(|e| {
            // Two processes creating the table at once: one loses the race.
            let raced = crate::codec::unique_violation(&e).is_some()
                || matches!(
                    e.code(),
                    Some(&postgres::error::SqlState::DUPLICATE_OBJECT)
                        | Some(&postgres::error::SqlState::DUPLICATE_TABLE)
                );
            if raced {
                StoreError::Busy("another process is migrating; try again".into())
            } else {
                sql_error(e)
            }
        })?;
    for (index, migration) in MIGRATIONS.iter().enumerate().take(last) {
        let version = index as i32 + 1;
        conn.transaction(None, |conn| {
            conn.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            let done = conn
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[&version],
                )?
                .is_some();
            if !done {
                match migration {
                    Migration::Sql(sql) => conn.client.batch_execute(sql).map_err(sql_error)?,
                    Migration::Code(convert) => convert(conn)?,
                }
                if version == 1 {
                    conn.client
                        .batch_execute(&PROJECTION_SCHEMA.replace("{schema}", "public"))
                        .map_err(sql_error)?;
                    enable_row_level_security(conn)?;
                }
                conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[&version],
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Enables and forces row-level security on every user-owned table. The user id
/// is read in a sub-select, so PostgreSQL evaluates it once per statement (an
/// init plan) instead of parsing the setting again for every row. A policy
/// lets a transaction see only the rows of the user it set in `synap.user_id`;
/// a transaction that set none (system work: rebuild, the token lookup that
/// finds out who is calling) sees every row.
fn enable_row_level_security(conn: &mut Conn) -> StoreResult<()> {
    let mut sql = String::new();
    for table in USER_TABLES {
        sql.push_str(&row_level_security(table));
    }
    // The users table is keyed by the user's own id.
    sql.push_str(
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE users FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY users_self ON users \
           USING (id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), id)) \
           WITH CHECK (id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), id));\n",
    );
    conn.client.batch_execute(&sql).map_err(sql_error)
}

/// The SQL that enables and forces row-level security on a user-owned `table`.
pub(crate) fn row_level_security(table: &str) -> String {
    format!(
        "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY {table}_of_user ON {table} \
           USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id)) \
           WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));\n"
    )
}

/// Creates [`APP_ROLE`] (no login, no superuser, no BYPASSRLS) when the
/// connecting role may, grants it what the store needs, and reports whether the
/// connecting role can switch to it. Without it, the store works as the
/// connecting role, which row-level security still binds unless it is a
/// superuser.
fn ensure_app_role(conn: &mut Conn) -> StoreResult<bool> {
    let row = conn.query_one(
        "SELECT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user), \
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
        &[&APP_ROLE],
    )?;
    let may_create: bool = row.get(0);
    let exists: bool = row.get(1);
    if !exists && may_create {
        // Roles are cluster-wide: another database's migration may create it first.
        let created = conn.client.batch_execute(&format!(
            "CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS"
        ));
        if let Err(error) = created {
            let raced = matches!(
                error.code(),
                Some(&postgres::error::SqlState::DUPLICATE_OBJECT)
                    | Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            );
            if !raced {
                return Err(sql_error(error));
            }
        }
    }
    let member = conn
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) \
             AND pg_has_role(current_user, $1, 'MEMBER')",
            &[&APP_ROLE],
        )?
        .get::<_, bool>(0);
    if !member {
        if may_create {
            conn.client
                .batch_execute(&format!("GRANT {APP_ROLE} TO current_user"))
                .map_err(sql_error)?;
        } else {
            return Ok(false);
        }
    }
    // Under the migration and partition locks: processes opening one database at
    // once would otherwise update the same catalogue rows — each other's grants,
    // or a new partition's parent row — and fail with "tuple concurrently
    // updated". Session locks, taken before the grants' transaction starts, so
    // that transaction reads the catalogue as the previous holder left it (a
    // transaction-level lock comes after the transaction read its caches).
    conn.query_one(
        "SELECT pg_advisory_lock($1), pg_advisory_lock($2)",
        &[&MIGRATION_LOCK, &PARTITION_LOCK],
    )?;
    let granted = conn
        .client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA public TO {APP_ROLE};\n\
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};\n\
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};"
        ))
        .map_err(sql_error);
    conn.query_one(
        "SELECT pg_advisory_unlock($2), pg_advisory_unlock($1)",
        &[&MIGRATION_LOCK, &PARTITION_LOCK],
    )?;
    granted?;
    Ok(true)
}

/// The first day of the month `at` falls in, and of the month `months` later.
fn month_start(at: Timestamp, months: i32) -> StoreResult<Date> {
    let date = jiff::tz::TimeZone::UTC
        .to_datetime(at)
        .date()
        .first_of_month();
    date.checked_add(jiff::Span::new().months(months))
        .map_err(|e| StoreError::InvalidInput(format!("time out of range: {e}")))
}

fn micros_at(date: Date) -> StoreResult<i64> {
    jiff::tz::TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .map(|t| t.as_microsecond())
        .map_err(|e| StoreError::InvalidInput(format!("time out of range: {e}")))
}

/// The months whose partitions this process knows exist.
#[derive(Debug, Default)]
pub struct Partitions {
    known: Mutex<BTreeSet<Date>>,
}

impl Partitions {
    /// Makes sure the partition for `at` exists, and [`PARTITIONS_AHEAD`] months
    /// after it. Cheap when this process already knows them. Must run outside a
    /// transaction (creating a partition locks the parent table briefly).
    pub fn ensure(&self, conn: &mut Conn, at: Timestamp) -> StoreResult<()> {
        let month = month_start(at, 0)?;
        if self.known.lock().is_ok_and(|known| known.contains(&month)) {
            return Ok(());
        }
        let months = (0..=PARTITIONS_AHEAD)
            .map(|ahead| month_start(at, ahead))
            .collect::<StoreResult<Vec<_>>>()?;
        self.create(conn, &months)?;
        if let Ok(mut known) = self.known.lock() {
            known.extend(months);
        }
        Ok(())
    }

    /// Makes sure a partition exists for every month from `from` to `to`.
    pub fn ensure_range(&self, conn: &mut Conn, from: Timestamp, to: Timestamp) -> StoreResult<()> {
        let mut months = Vec::new();
        let mut month = month_start(from, 0)?;
        let last = month_start(to, 0)?;
        while month <= last {
            months.push(month);
            month = month
                .checked_add(jiff::Span::new().months(1))
                .map_err(|e| StoreError::InvalidInput(format!("time out of range: {e}")))?;
        }
        self.create(conn, &months)?;
        if let Ok(mut known) = self.known.lock() {
            known.extend(months);
        }
        Ok(())
    }

    fn create(&self, conn: &mut Conn, months: &[Date]) -> StoreResult<()> {
        // Partitions are created by the table's owner, not the application role.
        let app_role = conn
            .query_one("SELECT current_user = $1::text", &[&APP_ROLE])?
            .get::<_, bool>(0);
        if app_role {
            conn.client.batch_execute("RESET ROLE").map_err(sql_error)?;
        }
        let result = conn.transaction(None, |conn| {
            conn.query_one("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
            for month in months {
                let next = month
                    .checked_add(jiff::Span::new().months(1))
                    .map_err(|e| StoreError::InvalidInput(format!("time out of range: {e}")))?;
                let name = format!("events_{:04}_{:02}", month.year(), month.month());
                let exists = conn
                    .query_opt(
                        "SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
                        &[&name],
                    )?
                    .is_some();
                if !exists {
                    conn.client
                        .batch_execute(&format!(
                            "CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
                            micros_at(*month)?,
                            micros_at(next)?
                        ))
                        .map_err(sql_error)?;
                }
            }
            Ok(())
        });
        if app_role {
            conn.client
                .batch_execute(&format!("SET ROLE {APP_ROLE}"))
                .map_err(sql_error)?;
        }
        result
    }
}
