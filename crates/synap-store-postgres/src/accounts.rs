//! Accounts on PostgreSQL: users, API tokens and browser sessions — the same
//! behaviour, validation and messages as the SQLite backend's `accounts.rs`.
//!
//! These tables are the source of truth for accounts (they are not projections:
//! rebuild and verify leave them alone). Changes that matter for the audit trail
//! (`user.created`, `user.token_created`, `user.token_revoked`) append an event to
//! the user's stream in the same transaction as the row change, through the
//! streams compare-and-set of [`write::append_event`]; the events never carry a
//! secret or a hash of one. A transaction that appended an event sends the feed's
//! `NOTIFY` before it commits, as commands do, so other processes' readers wake.
//!
//! Every function runs unscoped (no `synap.user_id`): account lookups find out who
//! is calling, and the email check must see every user's row. Each write is one
//! transaction; each read one statement.

use crate::codec::{corrupt, micros, opt_timestamp, timestamp, unique_violation};
use crate::pool::Conn;
use crate::write;
use jiff::Timestamp;
use postgres::Row;
use synap_domain::event::{
    EventMetadata, EventPayload, Source, TokenCreated, TokenRevoked, UserCreated, UserEvent,
};
use synap_domain::ids::UserId;
use synap_store::accounts::{
    CheckedUser, LOCAL_OWNER_EMAIL, check_user, invalid, stored, token_name, token_scopes,
};
use synap_store::pipeline::NewEvent;
use synap_store::{
    NewSession, NewToken, NewUser, SessionRecord, StoreError, StoreResult, TokenCredential,
    TokenInfo, UserSummary,
};
use uuid::Uuid;

/// Advisory lock key held while creating the local owner, so processes opening
/// one database at once create it exactly once (any value unique to Synap).
const OWNER_LOCK: i64 = 0x5359_4e41_505f_4f57; // "SYNAP_OW"

// ---------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------

/// The columns `user_from_row` reads, in order (`u` is the `users` alias).
const USER_COLUMNS: &str = "u.id, u.email, u.role, u.display_name, u.created_at, u.disabled_at";

/// Reads the six `USER_COLUMNS` starting at column `at`.
fn user_from_row(row: &Row, at: usize) -> StoreResult<UserSummary> {
    Ok(UserSummary {
        id: UserId(row.try_get(at).map_err(corrupt)?),
        email: row.try_get(at + 1).map_err(corrupt)?,
        role: row.try_get(at + 2).map_err(corrupt)?,
        display_name: row.try_get(at + 3).map_err(corrupt)?,
        created_at: timestamp(row.try_get(at + 4).map_err(corrupt)?)?,
        disabled_at: opt_timestamp(row.try_get(at + 5).map_err(corrupt)?)?,
    })
}

/// The first owner.
pub fn local_owner(conn: &mut Conn) -> StoreResult<UserSummary> {
    let row = conn
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.role = 'owner' \
                 ORDER BY u.created_at, u.id LIMIT 1"
            ),
            &[],
        )?
        .ok_or_else(|| StoreError::Corrupt("the database has no owner account".into()))?;
    user_from_row(&row, 0)
}

pub fn user(conn: &mut Conn, id: UserId) -> StoreResult<Option<UserSummary>> {
    conn.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
        &[&id.0],
    )?
    .map(|row| user_from_row(&row, 0))
    .transpose()
}

pub fn user_by_email(conn: &mut Conn, email: &str) -> StoreResult<Option<UserSummary>> {
    conn.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_key = $1"),
        &[&email.trim().to_lowercase()],
    )?
    .map(|row| user_from_row(&row, 0))
    .transpose()
}

/// Appends one event to a user's stream, at the stream's next version, in the
/// open transaction, and queues the feed's wake-up for its commit. The stream row
/// is locked first, so account changes and logged events of one user take
/// versions one after the other, in any process.
fn append_user_event(
    conn: &mut Conn,
    user: UserId,
    payload: EventPayload,
    now: Timestamp,
    source: Source,
) -> StoreResult<()> {
    let version = conn
        .query_opt(
            "SELECT version FROM streams WHERE aggregate_id = $1 FOR UPDATE",
            &[&user.0],
        )?
        .map(|r| r.try_get::<_, i64>(0).map_err(corrupt))
        .transpose()?
        .unwrap_or(0) as u64;
    let metadata = EventMetadata {
        source,
        ..Default::default()
    };
    write::append_event(
        conn,
        &NewEvent {
            id: Uuid::now_v7(),
            aggregate_id: user.0,
            version: version + 1,
            payload: &payload,
            user_id: user,
            metadata: &metadata,
            recorded_at: now,
        },
        0,
    )?;
    // Readers are woken after the commit (`PostgresStore::wake`).
    Ok(())
}

/// Inserts a checked user and appends `user.created`, in the open transaction.
fn insert_user(
    conn: &mut Conn,
    user: &NewUser,
    checked: &CheckedUser<'_>,
    now: Timestamp,
    source: Source,
) -> StoreResult<UserSummary> {
    let email = checked.email;
    let taken = || invalid("email", format!("{email} already has an account"));
    let email_key = email.to_lowercase();
    if conn
        .query_opt("SELECT 1 FROM users WHERE email_key = $1", &[&email_key])?
        .is_some()
    {
        return Err(taken());
    }
    let id = UserId::new_v7();
    // The unique `email_key` also catches a concurrent transaction that took the
    // address between the check above and this insert.
    conn.execute_raw(
        "INSERT INTO users (id, email, email_key, password_hash, display_name, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id.0,
            &email,
            &email_key,
            &user.password_hash,
            &checked.display_name,
            &checked.role,
            &micros(now),
        ],
    )
    .map_err(|e| {
        if unique_violation(&e).is_some() {
            taken()
        } else {
            crate::codec::sql_error(e)
        }
    })?;
    let payload = EventPayload::User(UserEvent::Created(UserCreated {
        email: email.to_string(),
        role: checked.role.to_string(),
        display_name: checked.display_name.map(str::to_string),
    }));
    append_user_event(conn, id, payload, now, source)?;
    Ok(UserSummary {
        id,
        email: email.to_string(),
        role: checked.role.to_string(),
        display_name: checked.display_name.map(str::to_string),
        created_at: now,
        disabled_at: None,
    })
}

/// Creates a user row and appends `user.created`, in one transaction.
pub fn create_user(
    conn: &mut Conn,
    user: &NewUser,
    now: Timestamp,
    source: Source,
) -> StoreResult<UserSummary> {
    let now = stored(now);
    let checked = check_user(user)?;
    conn.transaction(None, |conn| insert_user(conn, user, &checked, now, source))
}

/// Creates the local owner unless an owner exists. Processes opening one
/// database at once serialise on an advisory lock and check again under it, so
/// exactly one creates the owner.
pub fn ensure_local_owner(conn: &mut Conn, now: Timestamp) -> StoreResult<()> {
    let owner_exists = |conn: &mut Conn| -> StoreResult<bool> {
        Ok(conn
            .query_opt("SELECT 1 FROM users WHERE role = 'owner' LIMIT 1", &[])?
            .is_some())
    };
    if owner_exists(conn)? {
        return Ok(());
    }
    let owner = NewUser {
        email: LOCAL_OWNER_EMAIL.into(),
        role: "owner".into(),
        ..Default::default()
    };
    let now = stored(now);
    let checked = check_user(&owner)?;
    let created = conn.transaction(None, |conn| {
        conn.query_one("SELECT pg_advisory_xact_lock($1)", &[&OWNER_LOCK])?;
        if owner_exists(conn)? {
            return Ok(());
        }
        insert_user(conn, &owner, &checked, now, Source::System).map(|_| ())
    });
    match created {
        // The address is taken by a non-owner: as on SQLite, leave it be.
        Err(StoreError::Domain(_)) => Ok(()),
        other => other,
    }
}

pub fn password_hash(conn: &mut Conn, user: UserId) -> StoreResult<Option<String>> {
    Ok(conn
        .query_opt("SELECT password_hash FROM users WHERE id = $1", &[&user.0])?
        .map(|r| r.try_get::<_, Option<String>>(0).map_err(corrupt))
        .transpose()?
        .flatten())
}

pub fn set_password_hash(conn: &mut Conn, user: UserId, hash: &str) -> StoreResult<()> {
    conn.transaction(None, |conn| {
        let changed = conn.execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[&user.0, &hash],
        )?;
        if changed == 0 {
            return Err(invalid("user_id", format!("user {user} does not exist")));
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------
// API tokens
// ---------------------------------------------------------------------------------

/// The columns `token_from_row` reads, in order (`t` is the `api_tokens` alias).
const TOKEN_COLUMNS: &str =
    "t.id, t.name, t.prefix, t.scopes, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

/// Reads the eight `TOKEN_COLUMNS` at the start of a row.
fn token_from_row(row: &Row) -> StoreResult<TokenInfo> {
    let scopes: serde_json::Value = row.try_get(3).map_err(corrupt)?;
    Ok(TokenInfo {
        id: row.try_get(0).map_err(corrupt)?,
        name: row.try_get(1).map_err(corrupt)?,
        prefix: row.try_get(2).map_err(corrupt)?,
        scopes: serde_json::from_value(scopes)
            .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
        created_at: timestamp(row.try_get(4).map_err(corrupt)?)?,
        expires_at: opt_timestamp(row.try_get(5).map_err(corrupt)?)?,
        last_used_at: opt_timestamp(row.try_get(6).map_err(corrupt)?)?,
        revoked_at: opt_timestamp(row.try_get(7).map_err(corrupt)?)?,
    })
}

/// Stores a token and appends `user.token_created`, in one transaction.
pub fn create_token(conn: &mut Conn, token: &NewToken, now: Timestamp) -> StoreResult<TokenInfo> {
    let now = stored(now);
    let name = token_name(&token.name)?;
    let scopes = token_scopes(&token.scopes)?;
    if token.prefix.is_empty() || token.secret_hash.is_empty() {
        return Err(invalid(
            "prefix",
            "a token needs a lookup prefix and a secret hash",
        ));
    }
    let expires_at = token.expires_at.map(stored);
    let scopes_json =
        serde_json::to_value(&scopes).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.transaction(None, |conn| {
        let user_exists = conn
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&token.user_id.0])?
            .is_some();
        if !user_exists {
            return Err(invalid(
                "user_id",
                format!("user {} does not exist", token.user_id),
            ));
        }
        conn.execute_raw(
            "INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &token.id,
                &token.user_id.0,
                &name,
                &token.prefix,
                &token.secret_hash,
                &scopes_json,
                &micros(now),
                &expires_at.map(micros),
            ],
        )
        .map_err(|e| match unique_violation(&e) {
            Some(constraint) if constraint.contains("prefix") => {
                invalid("prefix", "this token prefix is already used; mint a new token")
            }
            Some(_) => invalid("id", format!("token id {} is already used", token.id)),
            None => crate::codec::sql_error(e),
        })?;
        let payload = EventPayload::User(UserEvent::TokenCreated(TokenCreated {
            token_id: token.id,
            name: name.to_string(),
            scopes: scopes.clone(),
            expires_at,
        }));
        append_user_event(conn, token.user_id, payload, now, Source::Api)
    })?;
    Ok(TokenInfo {
        id: token.id,
        name: name.to_string(),
        prefix: token.prefix.clone(),
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    })
}

/// The user's tokens, newest first.
pub fn list_tokens(conn: &mut Conn, user: UserId) -> StoreResult<Vec<TokenInfo>> {
    conn.query(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1 \
             ORDER BY t.created_at DESC, t.id DESC"
        ),
        &[&user.0],
    )?
    .iter()
    .map(token_from_row)
    .collect()
}

/// Revokes one of the user's live tokens and appends `user.token_revoked`, in one
/// transaction. `false` (and nothing written) when the user has no such live token.
pub fn revoke_token(
    conn: &mut Conn,
    user: UserId,
    token_id: Uuid,
    now: Timestamp,
) -> StoreResult<bool> {
    let now = stored(now);
    conn.transaction(None, |conn| {
        let changed = conn.execute(
            "UPDATE api_tokens SET revoked_at = $3 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&token_id, &user.0, &micros(now)],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        let payload = EventPayload::User(UserEvent::TokenRevoked(TokenRevoked { token_id }));
        append_user_event(conn, user, payload, now, Source::Api)?;
        Ok(true)
    })
}

/// A token by prefix (matched exactly), with its secret hash and its user.
pub fn token_by_prefix(conn: &mut Conn, prefix: &str) -> StoreResult<Option<TokenCredential>> {
    conn.query_opt(
        &format!(
            "SELECT {TOKEN_COLUMNS}, t.secret_hash, {USER_COLUMNS} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.prefix = $1"
        ),
        &[&prefix],
    )?
    .map(|row| {
        Ok(TokenCredential {
            token: token_from_row(&row)?,
            secret_hash: row.try_get(8).map_err(corrupt)?,
            user: user_from_row(&row, 9)?,
        })
    })
    .transpose()
}

/// Records a use of a token; never moves `last_used_at` backwards.
pub fn touch_token(conn: &mut Conn, token_id: Uuid, at: Timestamp) -> StoreResult<()> {
    conn.execute(
        "UPDATE api_tokens SET last_used_at = $2 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
        &[&token_id, &micros(stored(at))],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------

pub fn create_session(conn: &mut Conn, session: &NewSession, now: Timestamp) -> StoreResult<()> {
    let now = micros(stored(now));
    if session.id_hash.is_empty() {
        return Err(invalid("id_hash", "a session needs the hash of its id"));
    }
    conn.transaction(None, |conn| {
        let user_exists = conn
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&session.user_id.0])?
            .is_some();
        if !user_exists {
            return Err(invalid(
                "user_id",
                format!("user {} does not exist", session.user_id),
            ));
        }
        conn.execute_raw(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $3)",
            &[
                &session.id_hash,
                &session.user_id.0,
                &now,
                &micros(stored(session.expires_at)),
            ],
        )
        .map_err(|e| {
            if unique_violation(&e).is_some() {
                invalid("id_hash", "this session id is already used; mint a new one")
            } else {
                crate::codec::sql_error(e)
            }
        })?;
        Ok(())
    })
}

pub fn session(conn: &mut Conn, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
    conn.query_opt(
        &format!(
            "SELECT s.id_hash, s.created_at, s.expires_at, s.last_seen_at, {USER_COLUMNS} \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
        ),
        &[&id_hash],
    )?
    .map(|row| {
        Ok(SessionRecord {
            id_hash: row.try_get(0).map_err(corrupt)?,
            created_at: timestamp(row.try_get(1).map_err(corrupt)?)?,
            expires_at: timestamp(row.try_get(2).map_err(corrupt)?)?,
            last_seen_at: timestamp(row.try_get(3).map_err(corrupt)?)?,
            user: user_from_row(&row, 4)?,
        })
    })
    .transpose()
}

pub fn extend_session(
    conn: &mut Conn,
    id_hash: &str,
    expires_at: Timestamp,
    seen_at: Timestamp,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE sessions SET expires_at = $2, last_seen_at = $3 WHERE id_hash = $1",
        &[
            &id_hash,
            &micros(stored(expires_at)),
            &micros(stored(seen_at)),
        ],
    )?;
    Ok(())
}

pub fn delete_session(conn: &mut Conn, id_hash: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])?;
    Ok(())
}
