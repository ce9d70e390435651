//! Who is calling. A request carries an API token (`Authorization: Bearer syn_…`)
//! or a session cookie (`synap_session`); [`authenticate`] (a middleware on every
//! authenticated route) resolves it to a [`Caller`] in the request's extensions and
//! refreshes sessions older than a day. Handlers take `Caller` as an extractor,
//! which answers 401 when there is none.
//!
//! Secrets are never stored: tokens are kept as a lookup prefix plus the SHA-256 of
//! the whole token, sessions as the SHA-256 of the cookie value. Verified tokens
//! are kept in memory for a few seconds ([`cache`]); a revocation through this
//! process takes effect at once.

pub mod cache;
pub mod password;
pub mod routes;
pub mod tokens;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use synap_store::{Scope, UserSummary};
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "synap_session";

/// What a caller may do. A token has the scopes it was minted with; a session has
/// `read` and `write`, and `admin` for owners and admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Admin,
}

impl Permission {
    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Admin => "admin",
        }
    }
    pub fn parse(text: &str) -> Option<Permission> {
        match text {
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            "admin" => Some(Permission::Admin),
            _ => None,
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Token { id: Uuid },
    Session { id_hash: String },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserSummary,
    pub permissions: Vec<Permission>,
    pub credential: Credential,
}

impl Caller {
    /// The store scope every operation of this request acts in.
    pub fn scope(&self) -> Scope {
        Scope::user(self.user.id)
    }
    /// 403 unless the caller has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this credential lacks the {} scope; use a token created with --scope {}",
                permission.as_str(),
                permission.as_str()
            )))
        }
    }
    /// The `actor` recorded in event metadata: the token or the user.
    pub fn actor(&self) -> String {
        match &self.credential {
            Credential::Token { id } => format!("token:{id}"),
            Credential::Session { .. } => format!("user:{}", self.user.id),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::unauthorized(
                "sign in first: send Authorization: Bearer <token> or log in for a session cookie",
            )
        })
    }
}

/// Resolves the request's credential, if any, into a `Caller` extension. A
/// credential that is present but invalid (unknown, revoked, expired) is a 401;
/// no credential passes through (public routes need none; `Caller` refuses later).
pub async fn authenticate<F, Fut>(state: &AppState, mut request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut cookie_to_send = None;
    match resolve(state, request.headers()).await {
        Ok(Resolved::Caller(caller, refreshed)) => {
            cookie_to_send = refreshed;
            request.extensions_mut().insert(*caller);
        }
        Ok(Resolved::Anonymous) => {}
        // A browser holding a cookie of an ended session is simply signed out:
        // it must still reach `/v1/auth/login` and public routes. Clear the cookie.
        Ok(Resolved::StaleSession) => cookie_to_send = Some(session_cookie(state, "", 0)),
        Err(error) => return error.into_response(),
    }
    let mut response = next(request).await;
    if let Some(cookie) = cookie_to_send {
        // A handler that set the session cookie itself (login, logout) wins.
        let handler_set_session = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
            });
        if !handler_set_session {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// What a request's credentials resolve to.
enum Resolved {
    /// A valid credential, and a refreshed session cookie to send back, if any.
    Caller(Box<Caller>, Option<HeaderValue>),
    /// No credential.
    Anonymous,
    /// A session cookie for a session that has ended or does not exist.
    StaleSession,
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Resolved, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or_default();
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("use Authorization: Bearer <token>"))?;
        let caller = token_caller(state, token.trim()).await?;
        return Ok(Resolved::Caller(Box::new(caller), None));
    }
    if let Some(session_id) = cookie_value(headers, SESSION_COOKIE) {
        return Ok(match session_caller(state, &session_id).await? {
            Some((caller, refreshed)) => Resolved::Caller(Box::new(caller), refreshed),
            None => Resolved::StaleSession,
        });
    }
    Ok(Resolved::Anonymous)
}

async fn token_caller(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let invalid = || {
        ApiError::unauthorized("the token is not valid; create a new one with `synap token create`")
    };
    let prefix = tokens::prefix_of(token).ok_or_else(invalid)?;
    let now = state.clock.now();
    let (credential, from_database) = match state.tokens.get(prefix, now) {
        Some(credential) => (credential, None),
        None => {
            let generation = state.tokens.generation();
            let credential = state
                .store
                .token_by_prefix(prefix)
                .await?
                .ok_or_else(invalid)?;
            (credential, Some(generation))
        }
    };
    let presented = tokens::hash_secret(token);
    if !bool::from(
        presented
            .as_bytes()
            .ct_eq(credential.secret_hash.as_bytes()),
    ) {
        return Err(invalid());
    }
    if let Some(generation) = from_database {
        // Only a credential whose secret matched is cached: unknown or forged
        // tokens never take room.
        state
            .tokens
            .insert(prefix, credential.clone(), now, generation);
    }
    if credential.token.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "the token was revoked; create a new one",
        ));
    }
    if credential.token.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::unauthorized(
            "the token has expired; create a new one",
        ));
    }
    if credential.user.disabled_at.is_some() {
        return Err(ApiError::unauthorized("this account is disabled"));
    }
    let stale = credential.token.last_used_at.is_none_or(|at| {
        now.duration_since(at).as_secs_f64() >= state.config.token_touch_interval.as_secs_f64()
    });
    if stale {
        // The cache remembers the touch, so the next requests within
        // `token_touch_interval` do not write again.
        state.tokens.touched(prefix, now);
        // Best effort and off the request's path: a failed touch loses a timestamp.
        let (store, id) = (state.store.clone(), credential.token.id);
        tokio::spawn(async move {
            let _ = store.touch_token(id, now).await;
        });
    }
    let permissions = credential
        .token
        .scopes
        .iter()
        .filter_map(|s| Permission::parse(s))
        .collect();
    Ok(Caller {
        user: credential.user,
        permissions,
        credential: Credential::Token {
            id: credential.token.id,
        },
    })
}

/// The caller of a live session (`None` when it has ended or never existed).
async fn session_caller(
    state: &AppState,
    session_id: &str,
) -> Result<Option<(Caller, Option<HeaderValue>)>, ApiError> {
    let id_hash = tokens::hash_secret(session_id);
    let Some(session) = state.store.session(&id_hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if session.expires_at <= now || session.user.disabled_at.is_some() {
        return Ok(None);
    }
    let mut cookie = None;
    let age = now.duration_since(session.last_seen_at).as_secs_f64();
    if age >= state.config.session_refresh_after.as_secs_f64() {
        let expires_at = now + state.config.session_ttl;
        state
            .store
            .extend_session(&id_hash, expires_at, now)
            .await?;
        cookie = Some(session_cookie(
            state,
            session_id,
            state.config.session_ttl.as_secs(),
        ));
    }
    let mut permissions = vec![Permission::Read, Permission::Write];
    if matches!(session.user.role.as_str(), "owner" | "admin") {
        permissions.push(Permission::Admin);
    }
    let caller = Caller {
        user: session.user,
        permissions,
        credential: Credential::Session { id_hash },
    };
    Ok(Some((caller, cookie)))
}

/// A `Set-Cookie` value for the session (an empty value with max-age 0 clears it).
pub fn session_cookie(state: &AppState, value: &str, max_age_seconds: u64) -> HeaderValue {
    let secure = if state.config.is_production() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name`, if the request has it.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            line.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name && !value.is_empty()).then(|| value.to_string())
            })
        })
}
