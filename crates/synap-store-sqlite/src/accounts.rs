//! Accounts: users, API tokens and browser sessions.
//!
//! These tables are the source of truth for accounts (they are not projections:
//! rebuild and verify leave them alone). Changes that matter for the audit trail
//! (`user.created`, `user.token_created`, `user.token_revoked`) append an event to
//! the user's stream in the same transaction as the row change; the events never
//! carry a secret or a hash of one.
//!
//! Writes take a `&mut Connection` and run on the writer thread (one transaction
//! each); reads take a `&Connection` from the read pool.

use crate::codec::{is_unique_violation, micros, opt_timestamp, sql_error, timestamp, uuid};
use crate::writer;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
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

fn begin(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)
}

// ---------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------

/// The columns `user_from_row` reads, in order (`u` is the `users` alias).
const USER_COLUMNS: &str = "u.id, u.email, u.role, u.display_name, u.created_at, u.disabled_at";

type UserFields = (Vec<u8>, String, String, Option<String>, i64, Option<i64>);

/// Reads the six `USER_COLUMNS` starting at column `at`.
fn user_fields(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UserFields> {
    Ok((
        row.get(at)?,
        row.get(at + 1)?,
        row.get(at + 2)?,
        row.get(at + 3)?,
        row.get(at + 4)?,
        row.get(at + 5)?,
    ))
}

fn user_summary(
    (id, email, role, display_name, created_at, disabled_at): UserFields,
) -> StoreResult<UserSummary> {
    Ok(UserSummary {
        id: UserId(uuid(&id)?),
        email,
        role,
        display_name,
        created_at: timestamp(created_at)?,
        disabled_at: opt_timestamp(disabled_at)?,
    })
}

fn query_user(
    conn: &Connection,
    filter: &str,
    param: &dyn rusqlite::ToSql,
) -> StoreResult<Option<UserSummary>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE {filter}"
    ))
    .map_err(sql_error)?
    .query_row([param], |row| user_fields(row, 0))
    .optional()
    .map_err(sql_error)?
    .map(user_summary)
    .transpose()
}

/// The first owner.
pub fn local_owner(conn: &Connection) -> StoreResult<UserSummary> {
    let fields = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.role = 'owner' ORDER BY u.created_at, u.id LIMIT 1"
        ))
        .map_err(sql_error)?
        .query_row([], |row| user_fields(row, 0))
        .map_err(sql_error)?;
    user_summary(fields)
}

pub fn user(conn: &Connection, id: UserId) -> StoreResult<Option<UserSummary>> {
    query_user(conn, "u.id = ?1", &id.as_bytes().as_slice())
}

pub fn user_by_email(conn: &Connection, email: &str) -> StoreResult<Option<UserSummary>> {
    query_user(conn, "u.email_key = ?1", &email.trim().to_lowercase())
}

/// Appends one event to a user's stream, at the stream's next version.
fn append_user_event(
    tx: &Transaction<'_>,
    user: UserId,
    payload: EventPayload,
    now: Timestamp,
    source: Source,
) -> StoreResult<()> {
    let version: i64 = tx
        .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = ?1")
        .map_err(sql_error)?
        .query_row([user.as_bytes()], |r| r.get(0))
        .map_err(sql_error)?;
    let metadata = EventMetadata {
        source,
        ..Default::default()
    };
    writer::append_event(
        tx,
        &NewEvent {
            id: Uuid::now_v7(),
            aggregate_id: user.0,
            version: version as u64 + 1,
            payload: &payload,
            user_id: user,
            metadata: &metadata,
            recorded_at: now,
        },
    )?;
    Ok(())
}

/// Creates a user row and appends `user.created`, in one transaction.
pub fn create_user(
    conn: &mut Connection,
    user: &NewUser,
    now: Timestamp,
    source: Source,
) -> StoreResult<UserSummary> {
    let now = stored(now);
    let CheckedUser {
        email,
        role,
        display_name,
    } = check_user(user)?;
    let tx = begin(conn)?;
    let taken = tx
        .prepare_cached("SELECT 1 FROM users WHERE email_key = ?1")
        .map_err(sql_error)?
        .exists([email.to_lowercase()])
        .map_err(sql_error)?;
    if taken {
        return Err(invalid("email", format!("{email} already has an account")));
    }
    let id = UserId::new_v7();
    tx.execute(
        "INSERT INTO users (id, email, email_key, password_hash, display_name, role, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.as_bytes(),
            email,
            email.to_lowercase(),
            user.password_hash,
            display_name,
            role,
            micros(now)
        ],
    )
    .map_err(sql_error)?;
    let payload = EventPayload::User(UserEvent::Created(UserCreated {
        email: email.to_string(),
        role: role.to_string(),
        display_name: display_name.map(str::to_string),
    }));
    append_user_event(&tx, id, payload, now, source)?;
    tx.commit().map_err(sql_error)?;
    Ok(UserSummary {
        id,
        email: email.to_string(),
        role: role.to_string(),
        display_name: display_name.map(str::to_string),
        created_at: now,
        disabled_at: None,
    })
}

/// Creates the local owner unless an owner exists.
pub fn ensure_local_owner(conn: &mut Connection, now: Timestamp) -> StoreResult<()> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM users WHERE role = 'owner' LIMIT 1",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(sql_error)?
        .is_some();
    if exists {
        return Ok(());
    }
    let owner = NewUser {
        email: LOCAL_OWNER_EMAIL.into(),
        role: "owner".into(),
        ..Default::default()
    };
    match create_user(conn, &owner, now, Source::System) {
        // Another process created the owner between our check and our insert.
        Err(StoreError::Domain(_)) => Ok(()),
        other => other.map(|_| ()),
    }
}

pub fn password_hash(conn: &Connection, user: UserId) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT password_hash FROM users WHERE id = ?1")
        .map_err(sql_error)?
        .query_row([user.as_bytes()], |r| r.get::<_, Option<String>>(0))
        .optional()
        .map_err(sql_error)
        .map(Option::flatten)
}

pub fn set_password_hash(conn: &mut Connection, user: UserId, hash: &str) -> StoreResult<()> {
    let tx = begin(conn)?;
    let changed = tx
        .execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user.as_bytes(), hash],
        )
        .map_err(sql_error)?;
    if changed == 0 {
        return Err(invalid("user_id", format!("user {user} does not exist")));
    }
    tx.commit().map_err(sql_error)
}

// ---------------------------------------------------------------------------------
// API tokens
// ---------------------------------------------------------------------------------

/// The columns `token_info` reads, in order (`t` is the `api_tokens` alias).
const TOKEN_COLUMNS: &str =
    "t.id, t.name, t.prefix, t.scopes, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

type TokenFields = (
    Vec<u8>,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn token_fields(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenFields> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn token_info(
    (id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at): TokenFields,
) -> StoreResult<TokenInfo> {
    Ok(TokenInfo {
        id: uuid(&id)?,
        name,
        prefix,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
        created_at: timestamp(created_at)?,
        expires_at: opt_timestamp(expires_at)?,
        last_used_at: opt_timestamp(last_used_at)?,
        revoked_at: opt_timestamp(revoked_at)?,
    })
}

/// Stores a token and appends `user.token_created`, in one transaction.
pub fn create_token(
    conn: &mut Connection,
    token: &NewToken,
    now: Timestamp,
) -> StoreResult<TokenInfo> {
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
    let tx = begin(conn)?;
    let user_exists = tx
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
        .map_err(sql_error)?
        .exists([token.user_id.as_bytes()])
        .map_err(sql_error)?;
    if !user_exists {
        return Err(invalid(
            "user_id",
            format!("user {} does not exist", token.user_id),
        ));
    }
    let scopes_json =
        serde_json::to_string(&scopes).map_err(|e| StoreError::Backend(e.to_string()))?;
    tx.execute(
        "INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, scopes, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            token.id.as_bytes(),
            token.user_id.as_bytes(),
            name,
            token.prefix,
            token.secret_hash,
            scopes_json,
            micros(now),
            expires_at.map(micros),
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            if e.to_string().contains("api_tokens.prefix") {
                invalid("prefix", "this token prefix is already used; mint a new token")
            } else {
                invalid("id", format!("token id {} is already used", token.id))
            }
        } else {
            sql_error(e)
        }
    })?;
    let payload = EventPayload::User(UserEvent::TokenCreated(TokenCreated {
        token_id: token.id,
        name: name.to_string(),
        scopes: scopes.clone(),
        expires_at,
    }));
    append_user_event(&tx, token.user_id, payload, now, Source::Api)?;
    tx.commit().map_err(sql_error)?;
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
pub fn list_tokens(conn: &Connection, user: UserId) -> StoreResult<Vec<TokenInfo>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = ?1 \
             ORDER BY t.created_at DESC, t.id DESC"
        ))
        .map_err(sql_error)?;
    let rows = statement
        .query_map([user.as_bytes()], token_fields)
        .map_err(sql_error)?;
    rows.map(|row| token_info(row.map_err(sql_error)?))
        .collect()
}

/// Revokes one of the user's live tokens and appends `user.token_revoked`, in one
/// transaction. `false` (and nothing written) when the user has no such live token.
pub fn revoke_token(
    conn: &mut Connection,
    user: UserId,
    token_id: Uuid,
    now: Timestamp,
) -> StoreResult<bool> {
    let now = stored(now);
    let tx = begin(conn)?;
    let changed = tx
        .execute(
            "UPDATE api_tokens SET revoked_at = ?3 \
             WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![token_id.as_bytes(), user.as_bytes(), micros(now)],
        )
        .map_err(sql_error)?;
    if changed == 0 {
        return Ok(false);
    }
    let payload = EventPayload::User(UserEvent::TokenRevoked(TokenRevoked { token_id }));
    append_user_event(&tx, user, payload, now, Source::Api)?;
    tx.commit().map_err(sql_error)?;
    Ok(true)
}

/// A token by prefix, with its secret hash and its user.
pub fn token_by_prefix(conn: &Connection, prefix: &str) -> StoreResult<Option<TokenCredential>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS}, t.secret_hash, {USER_COLUMNS} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.prefix = ?1"
        ))
        .map_err(sql_error)?
        .query_row([prefix], |row| {
            Ok((
                token_fields(row)?,
                row.get::<_, String>(8)?,
                user_fields(row, 9)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    found
        .map(|(token, secret_hash, user)| {
            Ok(TokenCredential {
                token: token_info(token)?,
                secret_hash,
                user: user_summary(user)?,
            })
        })
        .transpose()
}

/// Records a use of a token; never moves `last_used_at` backwards.
pub fn touch_token(conn: &mut Connection, token_id: Uuid, at: Timestamp) -> StoreResult<()> {
    let tx = begin(conn)?;
    tx.execute(
        "UPDATE api_tokens SET last_used_at = ?2 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        params![token_id.as_bytes(), micros(stored(at))],
    )
    .map_err(sql_error)?;
    tx.commit().map_err(sql_error)
}

// ---------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------

pub fn create_session(
    conn: &mut Connection,
    session: &NewSession,
    now: Timestamp,
) -> StoreResult<()> {
    let now = micros(stored(now));
    if session.id_hash.is_empty() {
        return Err(invalid("id_hash", "a session needs the hash of its id"));
    }
    let tx = begin(conn)?;
    let user_exists = tx
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
        .map_err(sql_error)?
        .exists([session.user_id.as_bytes()])
        .map_err(sql_error)?;
    if !user_exists {
        return Err(invalid(
            "user_id",
            format!("user {} does not exist", session.user_id),
        ));
    }
    tx.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?3)",
        params![
            session.id_hash,
            session.user_id.as_bytes(),
            now,
            micros(stored(session.expires_at)),
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            invalid("id_hash", "this session id is already used; mint a new one")
        } else {
            sql_error(e)
        }
    })?;
    tx.commit().map_err(sql_error)
}

pub fn session(conn: &Connection, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT s.id_hash, s.created_at, s.expires_at, s.last_seen_at, {USER_COLUMNS} \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1"
        ))
        .map_err(sql_error)?
        .query_row([id_hash], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                user_fields(row, 4)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    found
        .map(|(id_hash, created_at, expires_at, last_seen_at, user)| {
            Ok(SessionRecord {
                id_hash,
                user: user_summary(user)?,
                created_at: timestamp(created_at)?,
                expires_at: timestamp(expires_at)?,
                last_seen_at: timestamp(last_seen_at)?,
            })
        })
        .transpose()
}

pub fn extend_session(
    conn: &mut Connection,
    id_hash: &str,
    expires_at: Timestamp,
    seen_at: Timestamp,
) -> StoreResult<()> {
    let tx = begin(conn)?;
    tx.execute(
        "UPDATE sessions SET expires_at = ?2, last_seen_at = ?3 WHERE id_hash = ?1",
        params![id_hash, micros(stored(expires_at)), micros(stored(seen_at))],
    )
    .map_err(sql_error)?;
    tx.commit().map_err(sql_error)
}

pub fn delete_session(conn: &mut Connection, id_hash: &str) -> StoreResult<()> {
    let tx = begin(conn)?;
    tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
        .map_err(sql_error)?;
    tx.commit().map_err(sql_error)
}
