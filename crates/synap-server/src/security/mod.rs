//! The security layer of `API.md` ("Security defaults"), every value from
//! [`ServerConfig`]:
//!
//! - [`outer`] wraps the finished router. Outermost first: security headers
//!   ([`headers`]: on every response, errors, 413s, 429s and panics included;
//!   HSTS only in production), CORS (preflights answered 204 for configured
//!   origins, refused 403 without CORS headers for others), problem+json for bare
//!   error responses and panics → 500 `internal` ([`errors`]), the body limit
//!   (413 `payload_too_large`, also for chunked bodies). It also puts the
//!   process's [`SecurityState`] into every request's extensions.
//! - [`rate_limit`] runs after authentication: an authenticated caller counts
//!   against a per-user budget (`rate_limit_user`), except on `/v1/auth/*`;
//!   everything else counts per client IP (`rate_limit_anonymous`), the IP being
//!   the peer address or, from a trusted proxy only, `X-Forwarded-For`
//!   ([`client_ip`]). Responses carry `RateLimit-Policy: 100;w=900` and
//!   `RateLimit: limit=100, remaining=N, reset=S`; over the limit the answer is
//!   429 `rate_limited` with `Retry-After`. `/health` and `/ready`
//!   ([`RATE_LIMIT_EXEMPT_PATHS`]) are not limited, so that load-balancer and
//!   orchestrator probes can never be refused. The limiter ([`limiter`]) keeps
//!   at most [`limiter::RATE_LIMIT_KEYS_MAX`] keys; time is `AppState::clock`.
//! - Login brute-force protection ([`login`]): the login handler takes a
//!   [`LoginGuard`] extractor and calls `guard.check(email)?` before checking
//!   the password (429 `rate_limited` with `Retry-After` while the email is
//!   locked), then `attempt.failed()` or `attempt.succeeded()` on the value it
//!   returned (or `guard.record_failure(email)` / `guard.record_success(email)`).
//!   `login_failures_max` failures within `login_lockout` lock the email for
//!   `login_lockout`.
//!
//! The limiter and guard state live in one [`SecurityState`], created by
//! `outer()` (so once per `app(state)`), shared by `Arc`, and reached from
//! handlers through request extensions: no global, no field on `AppState`.

pub mod client_ip;
pub mod errors;
pub mod headers;
pub mod limiter;
pub mod login;

pub use client_ip::{ClientIp, client_ip};
pub use login::{LoginAttempt, LoginGuard};

use crate::auth::Caller;
use crate::config::{IpBlock, ServerConfig};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use limiter::{Decision, RateLimiter};
use std::net::IpAddr;
use std::sync::Arc;
use synap_domain::UserId;
use synap_store::Clock;

/// Paths that are never rate limited: health probes.
pub const RATE_LIMIT_EXEMPT_PATHS: &[&str] = &["/health", "/ready"];

/// Below this prefix requests count per client IP even when authenticated
/// (logins, registration: the brute-force surface).
pub const AUTH_PATH_PREFIX: &str = "/v1/auth/";

/// `RateLimit-Policy: 100;w=900` (IETF draft `ratelimit-headers`).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit: limit=100, remaining=N, reset=S`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The security layer's process state: rate limiters, the login guard, and the
/// settings the middlewares read. Created by [`outer`].
#[derive(Debug)]
pub struct SecurityState {
    /// Per client IP; `None` when the limit is off.
    pub anonymous: Option<RateLimiter<IpAddr>>,
    /// Per user; `None` when the limit is off.
    pub users: Option<RateLimiter<UserId>>,
    pub logins: LoginGuard,
    pub cors: headers::CorsOrigins,
    pub body_limit_bytes: usize,
    pub trusted_proxies: Vec<IpBlock>,
    pub production: bool,
}

impl SecurityState {
    pub fn new(config: &ServerConfig, clock: Arc<dyn Clock>) -> Self {
        SecurityState {
            anonymous: config.rate_limit_anonymous.map(RateLimiter::new),
            users: config.rate_limit_user.map(RateLimiter::new),
            logins: LoginGuard::from_config(config, clock),
            cors: headers::CorsOrigins::new(&config.cors_origins()),
            body_limit_bytes: config.body_limit_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            production: config.is_production(),
        }
    }

    /// The login guard (also available to handlers as the [`LoginGuard`] extractor).
    pub fn login_guard(&self) -> LoginGuard {
        self.logins.clone()
    }
}

/// Wraps the finished router: security headers, CORS, problem+json for bare
/// errors, panics → 500, body limit.
pub fn outer(router: Router, state: &AppState) -> Router {
    let security = Arc::new(SecurityState::new(&state.config, state.clock.clone()));
    wrap(router, security)
}

/// [`outer`] over a given [`SecurityState`], for callers that keep one state
/// across several routers.
pub fn wrap(router: Router, security: Arc<SecurityState>) -> Router {
    // Router::layer: the last one added runs first.
    router
        // Axum's extractors would otherwise cap bodies at their own 2 MB default.
        .layer(DefaultBodyLimit::max(security.body_limit_bytes))
        .layer(from_fn_with_state(security.clone(), errors::limit_body))
        .layer(from_fn(errors::catch_panics))
        .layer(from_fn_with_state(
            security.clone(),
            errors::problem_for_bare_errors,
        ))
        .layer(from_fn_with_state(security.clone(), headers::cors))
        .layer(from_fn_with_state(
            security.clone(),
            headers::security_headers,
        ))
        .layer(Extension(security))
}

/// Rate limits: per user for authenticated requests (except `/v1/auth/*`), per
/// client IP otherwise.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(security) = request.extensions().get::<Arc<SecurityState>>().cloned() else {
        eprintln!("synap: rate_limit runs without security::outer; refusing the request");
        return ApiError::internal().into_response();
    };
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map(|uri| uri.0.path().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    if RATE_LIMIT_EXEMPT_PATHS.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let now_ms = state.clock.now().as_millisecond();
    let user = request
        .extensions()
        .get::<Caller>()
        .filter(|_| !path.starts_with(AUTH_PATH_PREFIX))
        .map(|caller| caller.user.id);
    let decision = match user {
        Some(user) => security.users.as_ref().map(|l| l.hit(user, now_ms)),
        None => {
            let ip = client_ip(
                client_ip::peer_ip(request.extensions()),
                request.headers(),
                &security.trusted_proxies,
            );
            security
                .anonymous
                .as_ref()
                .map(|l| l.hit(client_ip::ip_key(ip), now_ms))
        }
    };
    let Some(decision) = decision else {
        return next.run(request).await;
    };
    if !decision.allowed {
        return rate_limited(&decision).into_response();
    }
    let mut response = next.run(request).await;
    set_rate_limit_headers(response.headers_mut(), &decision);
    response
}

/// 429 `rate_limited` with `Retry-After` and the RateLimit headers.
pub fn rate_limited(decision: &Decision) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many requests: the limit is {} per {} s; retry in {} s",
            decision.limit, decision.window_seconds, decision.reset_seconds
        ),
    )
    .with("retry_after", decision.reset_seconds)
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from(decision.reset_seconds),
    );
    let mut headers = HeaderMap::new();
    set_rate_limit_headers(&mut headers, decision);
    for (name, value) in headers {
        if let Some(name) = name {
            error = error.with_header(name, value);
        }
    }
    error
}

/// `RateLimit-Policy` and `RateLimit` for a decision.
pub fn set_rate_limit_headers(headers: &mut HeaderMap, decision: &Decision) {
    let policy = format!("{};w={}", decision.limit, decision.window_seconds);
    let current = format!(
        "limit={}, remaining={}, reset={}",
        decision.limit, decision.remaining, decision.reset_seconds
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&current) {
        headers.insert(RATELIMIT, value);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LoginGuard {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Arc<SecurityState>>()
            .map(|security| security.login_guard())
            .ok_or_else(|| {
                eprintln!("synap: LoginGuard used without security::outer");
                ApiError::internal()
            })
    }
}
