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
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use limiter::{Decision, RateLimiter};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use synap_domain::UserId;
use synap_store::Clock;
use tower::{Layer, Service, ServiceExt};

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
    /// The limit of attachment uploads, which replaces `body_limit_bytes` there.
    pub attachment_limit_bytes: u64,
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
            attachment_limit_bytes: config.attachment_limit_bytes,
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
    Outer::new(router, security).into_router()
}

/// The security layer as one service around a finished router (see the module
/// docs for what it does, outermost first).
///
/// Why one hand-written service rather than a `Router::layer` per middleware:
/// axum applies such layers to every route separately, and each `from_fn` layer
/// clones everything below it (the other layers, their states, the boxed route)
/// on every request. That cloning and dropping was over a third of the CPU of a
/// request that does no database work. This service wraps the router once; a
/// request costs two reference-count increments here.
#[derive(Clone)]
pub struct Outer<S> {
    security: Arc<SecurityState>,
    inner: S,
    trpc_errors: bool,
}

impl<S> std::fmt::Debug for Outer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outer")
            .field("security", &self.security)
            .field("trpc_errors", &self.trpc_errors)
            .finish_non_exhaustive()
    }
}

impl Outer<()> {
    /// The security layer around `router`.
    pub fn new(
        router: Router,
        security: Arc<SecurityState>,
    ) -> Outer<
        impl Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static,
    > {
        Outer {
            // Axum's extractors would otherwise cap bodies at their own 2 MB default.
            inner: DefaultBodyLimit::max(security.body_limit_bytes).layer(router),
            security,
            trpc_errors: false,
        }
    }
}

impl<S> Outer<S>
where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static,
{
    /// Also renders failures under `/trpc` in tRPC's error shape, outside
    /// everything else ([`crate::trpc::problems_as_trpc_errors`]).
    pub fn with_trpc_errors(mut self) -> Self {
        self.trpc_errors = true;
        self
    }

    /// As a `Router` (whose clone is one reference count).
    pub fn into_router(self) -> Router {
        Router::new().fallback_service(self)
    }
}

impl<S> Service<Request> for Outer<S>
where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.run(request).await) })
    }
}

impl<S> Outer<S>
where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static,
{
    async fn run(self, mut request: Request) -> Response {
        let Outer {
            security,
            inner,
            trpc_errors,
        } = self;
        let head = request.method() == Method::HEAD;
        request.extensions_mut().insert(security.clone());
        let security = &security;
        let stack = |request: Request| {
            headers::security_headers(security, request, |request| {
                headers::cors(security, request, |request| {
                    errors::problem_for_bare_errors(security, request, |request| {
                        errors::catch_panics(errors::limit_body(security, request, |request| {
                            inner.oneshot(request).map(|answer| match answer {
                                Ok(response) => response,
                                Err(never) => match never {},
                            })
                        }))
                    })
                })
            })
        };
        let mut response = if trpc_errors {
            crate::trpc::problems_as_trpc_errors(request, stack).await
        } else {
            stack(request).await
        };
        // What axum does to the response of the outermost route (and, with one
        // `Router::layer` per middleware, did after all of them): a length for
        // bodies of known size, and no body for `HEAD`. A layer above may have
        // replaced the body that the route's own answer had stripped.
        if !response.headers().contains_key(header::CONTENT_LENGTH)
            && let Some(size) = response.body().size_hint().exact()
        {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
        if head {
            *response.body_mut() = Body::empty();
        }
        response
    }
}

/// Rate limits: per user for authenticated requests (except `/v1/auth/*`), per
/// client IP otherwise.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    rate_limited_or(&state, request, |request| next.run(request)).await
}

/// [`rate_limit`] around `next`: a 429 instead of running it when over the limit,
/// the RateLimit headers on its response otherwise.
pub async fn rate_limited_or<F, Fut>(state: &AppState, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(security) = request.extensions().get::<Arc<SecurityState>>().cloned() else {
        eprintln!("synap: rate_limit runs without security::outer; refusing the request");
        return ApiError::internal().into_response();
    };
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |uri| uri.0.path());
    if RATE_LIMIT_EXEMPT_PATHS.contains(&path) {
        return next(request).await;
    }
    let auth_path = path.starts_with(AUTH_PATH_PREFIX);
    let now_ms = state.clock.now().as_millisecond();
    let user = request
        .extensions()
        .get::<Caller>()
        .filter(|_| !auth_path)
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
        return next(request).await;
    };
    if !decision.allowed {
        return rate_limited(&decision).into_response();
    }
    let mut response = next(request).await;
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
