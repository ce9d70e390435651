//! Accounts, sessions and API tokens over HTTP:
//!
//! - `POST /v1/auth/register` (only with open registration) and
//!   `POST /v1/auth/login` start a browser session (the `synap_session` cookie,
//!   `HttpOnly`, `SameSite=Lax`, `Secure` in production); login can also hand out
//!   an API token. A wrong email and a wrong password get the same 401, after the
//!   same amount of work (a password hash is verified either way), so the answer
//!   does not tell whether an account exists. Logins go through the brute-force
//!   guard ([`LoginGuard`]): too many failures for one email lock it (429).
//! - `POST /v1/auth/logout` ends the session and clears the cookie.
//! - `GET /v1/me`: the caller, their scopes and how they authenticated.
//! - `POST /v1/tokens` (the secret is in this answer only), `GET /v1/tokens`,
//!   `DELETE /v1/tokens/{id}`.
//!
//! Minting rules: a credential can only mint scopes it has itself; `admin` also
//! needs an owner or admin account; a token minted with a token cannot outlive it
//! (no expiry, or a later one, is refused). Secrets never reach the store: tokens
//! are kept as prefix + SHA-256, sessions as the SHA-256 of the cookie value.

use crate::auth::{self, Caller, Credential, Permission, password, tokens};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::dto::{BodyErrors, CommonErrors, Problem};
use crate::security::LoginGuard;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use synap_store::{NewSession, NewToken, NewUser, TokenInfo, UserSummary};
use tokio::sync::OnceCell;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The role of accounts created by open registration.
pub const REGISTERED_ROLE: &str = "member";
/// The name of a token handed out by `login` with `"token": true`.
pub const LOGIN_TOKEN_NAME: &str = "login";
/// The scopes of a token handed out by `login`.
pub const LOGIN_TOKEN_SCOPES: &[&str] = &["read", "write"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

// ---------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------

/// A user account as the API shows it (never a password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<UserSummary> for UserView {
    fn from(user: UserSummary) -> Self {
        UserView {
            id: user.id.0,
            email: user.email,
            role: user.role,
            display_name: user.display_name,
            created_at: user.created_at,
        }
    }
}

/// An API token as its owner sees it (never the secret, except once at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    /// The public part of the token (`syn_<prefix>…`), to recognise it.
    pub prefix: String,
    /// Any of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

impl From<TokenInfo> for TokenView {
    fn from(token: TokenInfo) -> Self {
        TokenView {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            scopes: token.scopes,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A token just created: its description and, this once, the secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// The whole token (`syn_…`): send it as `Authorization: Bearer <token>`.
    /// It is shown only in this answer; the server keeps only its hash.
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Also create an API token (scopes `read` and `write`, no expiry) and return
    /// it in the answer.
    #[serde(default)]
    pub token: bool,
}

/// A session was started (the cookie is in `Set-Cookie`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionStarted {
    pub user: UserView,
    #[schema(value_type = String, format = DateTime)]
    pub session_expires_at: Timestamp,
    /// Present when the login asked for a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<CreatedToken>,
}

/// The caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    /// What this credential may do: `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    /// `token` or `session`.
    pub credential: &'static str,
    /// The token's id, when the caller used a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    #[schema(example = "laptop")]
    pub name: String,
    /// Any of `read`, `write`, `admin`; only scopes the caller has.
    #[schema(example = json!(["read", "write"]))]
    pub scopes: Vec<String>,
    /// When the token stops working (RFC 3339); none: never.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenList {
    /// Newest first, revoked ones included.
    pub items: Vec<TokenView>,
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// `Cache-Control: no-store`, for every answer that carries a secret.
fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// The one answer to a failed login, whatever failed.
fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("wrong email or password")
}

/// A PHC hash of a random password, verified against when the email is unknown so
/// that an unknown email costs the same time as a wrong password.
async fn decoy_hash() -> ApiResult<&'static str> {
    static DECOY: OnceCell<String> = OnceCell::const_new();
    DECOY
        .get_or_try_init(|| password::hash(tokens::mint_session_id()))
        .await
        .map(String::as_str)
}

/// Starts a session for `user`: stores the hash of a fresh id; returns the
/// `Set-Cookie` value and the expiry.
async fn start_session(
    state: &AppState,
    user: &UserSummary,
) -> ApiResult<(HeaderValue, Timestamp)> {
    let session_id = tokens::mint_session_id();
    let expires_at = state.clock.now() + state.config.session_ttl;
    state
        .store
        .create_session(NewSession {
            id_hash: tokens::hash_secret(&session_id),
            user_id: user.id,
            expires_at,
        })
        .await?;
    let cookie = auth::session_cookie(state, &session_id, state.config.session_ttl.as_secs());
    Ok((cookie, expires_at))
}

/// Creates a token; returns its description and the whole token.
async fn mint(
    state: &AppState,
    user: &UserSummary,
    name: String,
    scopes: Vec<String>,
    expires_at: Option<Timestamp>,
) -> ApiResult<CreatedToken> {
    let (token, prefix) = tokens::mint_token();
    let info = state
        .store
        .create_token(NewToken {
            id: Uuid::now_v7(),
            user_id: user.id,
            name,
            prefix,
            secret_hash: tokens::hash_secret(&token),
            scopes,
            expires_at,
        })
        .await?;
    Ok(CreatedToken {
        info: info.into(),
        token,
    })
}

// ---------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------

/// Create an account (only when open registration is on) and start a session.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; session cookie set", body = SessionStarted,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 403, description = "Registration is closed (`registration_closed`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed or taken email, a password of the wrong length, or an unknown field (`validation_failed`, with `field`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this client (`rate_limited`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The server failed (`internal`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is busy (`unavailable`).", body = Problem, content_type = "application/problem+json"),
        BodyErrors,
    ),
    security(()),
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    if !state.config.allow_registration {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "registration is closed on this server; ask its operator for an account",
        ));
    }
    password::validate(&body.password)?;
    let password_hash = password::hash(body.password).await?;
    let user = state
        .store
        .create_user(NewUser {
            email: body.email.trim().to_string(),
            role: REGISTERED_ROLE.to_string(),
            password_hash: Some(password_hash),
            display_name: body
                .display_name
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty()),
        })
        .await?;
    let (cookie, session_expires_at) = start_session(&state, &user).await?;
    let answer = SessionStarted {
        user: user.into(),
        session_expires_at,
        token: None,
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie), no_store()],
        Json(answer),
    )
        .into_response())
}

/// Log in with email and password: a session cookie and, if asked, an API token.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; session cookie set", body = SessionStarted,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "Wrong email or password: one answer for both (`unauthorized`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A body of the wrong shape (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this email, or too many requests from this client (`rate_limited`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The server failed (`internal`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is busy (`unavailable`).", body = Problem, content_type = "application/problem+json"),
        BodyErrors,
    ),
    security(()),
)]
pub async fn login(
    State(state): State<AppState>,
    guard: LoginGuard,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    // Brute-force protection: 429 while this email is locked out, before any
    // password work; the attempt is settled below as failed or succeeded.
    let attempt = guard.check(&body.email)?;

    // Look the account up, then verify a hash whatever was found: an unknown
    // email, an account without a password (the local owner), a disabled account
    // and a wrong password all cost one verification and get one answer.
    let user = state.store.user_by_email(body.email.trim()).await?;
    let stored_hash = match &user {
        Some(user) if user.disabled_at.is_none() => state.store.password_hash(user.id).await?,
        _ => None,
    };
    let (hash, real) = match stored_hash {
        Some(hash) => (hash, true),
        None => (decoy_hash().await?.to_string(), false),
    };
    let matches = password::verify(body.password, hash).await;
    let user = match user {
        Some(user) if real && matches => user,
        _ => {
            attempt.failed();
            return Err(wrong_credentials());
        }
    };
    attempt.succeeded();

    let (cookie, session_expires_at) = start_session(&state, &user).await?;
    let token = if body.token {
        let scopes = LOGIN_TOKEN_SCOPES.iter().map(|s| s.to_string()).collect();
        Some(mint(&state, &user, LOGIN_TOKEN_NAME.to_string(), scopes, None).await?)
    } else {
        None
    };
    let answer = SessionStarted {
        user: user.into(),
        session_expires_at,
        token,
    };
    Ok(([(header::SET_COOKIE, cookie), no_store()], Json(answer)).into_response())
}

/// End the browser session and clear its cookie.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "accounts",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Credential::Session { id_hash } = &caller.credential {
        state.store.delete_session(id_hash).await?;
    }
    // A token caller that also holds a cookie: end that session too.
    if let Some(session_id) = auth::cookie_value(&headers, auth::SESSION_COOKIE) {
        state
            .store
            .delete_session(&tokens::hash_secret(&session_id))
            .await?;
    }
    let clear = auth::session_cookie(&state, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// The caller: account, scopes and credential.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    responses(
        (status = 200, description = "The caller", body = Me),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn me(caller: Caller) -> Json<Me> {
    let (credential, token_id) = match &caller.credential {
        Credential::Token { id } => ("token", Some(*id)),
        Credential::Session { .. } => ("session", None),
    };
    Json(Me {
        scopes: caller
            .permissions
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
        user: caller.user.into(),
        credential,
        token_id,
    })
}

/// Create an API token. The secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "accounts",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is the secret, shown once", body = CreatedToken),
        (status = 422, description = "No or an unknown scope, a bad name, an expiry in the past or after the minting token's (`validation_failed`, with `field`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<Response> {
    caller.require(Permission::Write)?;
    if body.scopes.is_empty() {
        return Err(ApiError::validation(
            "scopes",
            "name at least one scope: read, write or admin",
        ));
    }
    let mut wanted = Vec::new();
    for scope in &body.scopes {
        let permission = Permission::parse(scope.trim()).ok_or_else(|| {
            ApiError::validation(
                "scopes",
                format!("unknown scope {scope:?}; use read, write or admin"),
            )
        })?;
        if !wanted.contains(&permission) {
            wanted.push(permission);
        }
    }
    wanted.sort();
    for permission in &wanted {
        if !caller.permissions.contains(permission) {
            return Err(ApiError::forbidden(format!(
                "this credential lacks the {} scope, so it cannot give it to a token",
                permission.as_str()
            )));
        }
    }
    if wanted.contains(&Permission::Admin)
        && !matches!(caller.user.role.as_str(), "owner" | "admin")
    {
        return Err(ApiError::forbidden(
            "only owners and admins can create tokens with the admin scope",
        ));
    }
    let now = state.clock.now();
    if body.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::validation(
            "expires_at",
            "expires_at is in the past; give a future time or leave it out",
        ));
    }
    let mut expires_at = body.expires_at;
    // A token cannot make a token that outlives it.
    if let Credential::Token { id } = &caller.credential {
        let parent = state
            .store
            .list_tokens(caller.user.id)
            .await?
            .into_iter()
            .find(|token| token.id == *id);
        if let Some(limit) = parent.and_then(|token| token.expires_at) {
            match expires_at {
                None => expires_at = Some(limit),
                Some(at) if at > limit => {
                    return Err(ApiError::validation(
                        "expires_at",
                        format!(
                            "a token cannot create a token that outlives it; expire it at {limit} or earlier"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let scopes = wanted.iter().map(|p| p.as_str().to_string()).collect();
    let created = mint(
        &state,
        &caller.user,
        body.name.trim().to_string(),
        scopes,
        expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, [no_store()], Json(created)).into_response())
}

/// The caller's API tokens, newest first, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "accounts",
    responses(
        (status = 200, description = "The caller's tokens", body = TokenList),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TokenList>> {
    caller.require(Permission::Read)?;
    let items = state
        .store
        .list_tokens(caller.user.id)
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(Json(TokenList { items }))
}

/// Revoke one of the caller's tokens (another user's token id is a 404).
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live token of the caller: revoked, missing, or another user's (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::Write)?;
    if state.store.revoke_token(caller.user.id, id).await? {
        // Refused from the next request on, not after the token cache's TTL.
        state.tokens.forget(id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no live token {id}")))
    }
}
