//! The security layer (`API.md`, "Security defaults"): rate limits with 429 and
//! the RateLimit headers, the client IP behind trusted proxies, the body limit
//! for declared and chunked bodies, the security headers on every response,
//! CORS preflights, problem+json for bare errors and panics, the login guard.
//!
//! In-process (`oneshot`) on `app(state)` over a SQLite store in a temporary
//! directory, on a manual clock. The router is built once per test and cloned
//! per request, so the limiter state (created by `security::outer`) is shared
//! like in the server.

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synap_server::auth::tokens;
use synap_server::config::{Environment, RateLimit};
use synap_server::security::{self, LoginGuard};
use synap_server::{AppState, ServerConfig};
use synap_store::{ManualClock, NewToken, Store};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

struct Setup {
    _dir: TempDir,
    state: AppState,
    clock: Arc<ManualClock>,
}

impl Setup {
    fn new(config: ServerConfig) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
        let mut sqlite = SqliteConfig::new(dir.path().join("synap.db"));
        sqlite.durable = false;
        sqlite.clock = clock.clone();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(sqlite).expect("open store"));
        let (state, _shutdown) = AppState::new(store, config, clock.clone(), "sqlite", None);
        Setup {
            _dir: dir,
            state,
            clock,
        }
    }

    fn advance(&self, by: Duration) {
        self.clock
            .advance(jiff::SignedDuration::try_from(by).expect("a small duration"));
    }

    /// A token for the local owner, minted in the store.
    async fn owner_token(&self) -> String {
        let owner = self.state.store.local_owner().await.expect("local owner");
        let (token, prefix) = tokens::mint_token();
        self.state
            .store
            .create_token(NewToken {
                id: Uuid::now_v7(),
                user_id: owner.id,
                name: "security test".into(),
                prefix,
                secret_hash: tokens::hash_secret(&token),
                scopes: vec!["read".into(), "write".into()],
                expires_at: None,
            })
            .await
            .expect("create token");
        token
    }

    /// The application with test-only routes: `/test/echo` reads its body,
    /// `/test/panic` panics, `/test/login/{email}` fails a login through the guard.
    fn test_router(&self) -> Router {
        let routes = Router::new()
            .route(
                "/test/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/test/panic",
                get(|| async { panics() }),
            )
            .route(
                "/test/login/{email}",
                post(
                    |guard: LoginGuard,
                     axum::extract::Path(email): axum::extract::Path<String>| async move {
                        match guard.check(&email) {
                            Ok(attempt) => {
                                attempt.failed();
                                StatusCode::UNAUTHORIZED.into_response()
                            }
                            Err(error) => error.into_response(),
                        }
                    },
                ),
            )
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                security::rate_limit,
            ))
            .with_state(self.state.clone());
        security::outer(routes, &self.state)
    }
}

fn panics() -> &'static str {
    panic!("secret internal detail")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!("a JSON body, got {:?}", String::from_utf8_lossy(&self.body))
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII"))
    }
    fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let problem = self.json();
        assert_eq!(problem["code"], code);
        assert_eq!(problem["status"], status.as_u16());
    }
    fn assert_security_headers(&self) {
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            self.header("referrer-policy"),
            Some("strict-origin-when-cross-origin")
        );
        assert_eq!(
            self.header("permissions-policy"),
            Some("geolocation=(), microphone=(), camera=()")
        );
        let csp = self
            .header("content-security-policy")
            .expect("a Content-Security-Policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(
            self.header("strict-transport-security"),
            None,
            "no HSTS outside production"
        );
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 64 * MIB)
        .await
        .expect("a body")
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A request arriving from `peer`, optionally with an `X-Forwarded-For` line.
fn from_peer(peer: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/no/such/route");
    if let Some(line) = forwarded_for {
        builder = builder.header("x-forwarded-for", line);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

fn limit(requests: u32, seconds: u64) -> Option<RateLimit> {
    Some(RateLimit {
        requests,
        window: Duration::from_secs(seconds),
    })
}

#[tokio::test]
async fn the_101st_anonymous_request_in_the_window_is_a_429_with_retry_after() {
    let setup = Setup::new(ServerConfig::default());
    let app = synap_server::app(setup.state.clone());
    for n in 1..=100u32 {
        let answer = send(&app, get_request("/no/such/route")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "request {n}");
        assert_eq!(answer.header("ratelimit-policy"), Some("100;w=900"));
        assert_eq!(
            answer.header("ratelimit"),
            Some(format!("limit=100, remaining={}, reset=900", 100 - n).as_str())
        );
    }
    setup.advance(Duration::from_secs(60));
    let refused = send(&app, get_request("/no/such/route")).await;
    refused.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    refused.assert_security_headers();
    assert_eq!(refused.header("retry-after"), Some("840"));
    assert_eq!(refused.header("ratelimit-policy"), Some("100;w=900"));
    assert_eq!(
        refused.header("ratelimit"),
        Some("limit=100, remaining=0, reset=840")
    );
    assert_eq!(refused.json()["retry_after"], 840);

    // Health probes are never refused.
    let health = send(&app, get_request("/health")).await;
    assert_ne!(health.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(health.header("ratelimit"), None);

    // The window passes: allowed again, with a fresh budget.
    setup.advance(Duration::from_secs(840));
    let again = send(&app, get_request("/no/such/route")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        again.header("ratelimit"),
        Some("limit=100, remaining=99, reset=900")
    );
}

#[tokio::test]
async fn an_authenticated_caller_has_a_budget_of_its_own() {
    let setup = Setup::new(ServerConfig {
        rate_limit_anonymous: limit(2, 900),
        rate_limit_user: limit(3, 60),
        ..ServerConfig::default()
    });
    let token = setup.owner_token().await;
    let app = synap_server::app(setup.state.clone());
    let authed = |path: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    for n in 1..=3u32 {
        let answer = send(&app, authed("/no/such/route")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "request {n}");
        assert_eq!(answer.header("ratelimit-policy"), Some("3;w=60"));
    }
    let refused = send(&app, authed("/no/such/route")).await;
    refused.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("60"));

    // The same client's anonymous budget is untouched by the user's requests.
    let anonymous = send(&app, get_request("/no/such/route")).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    assert_eq!(anonymous.header("ratelimit-policy"), Some("2;w=900"));
    assert_eq!(
        anonymous.header("ratelimit"),
        Some("limit=2, remaining=1, reset=900")
    );
    // Under /v1/auth/ even an authenticated caller counts per IP: the last one.
    let auth = send(&app, authed("/v1/auth/nothing-here")).await;
    assert_eq!(auth.header("ratelimit-policy"), Some("2;w=900"));
    assert_eq!(
        auth.header("ratelimit"),
        Some("limit=2, remaining=0, reset=900")
    );
    let over = send(&app, get_request("/no/such/route")).await;
    over.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // The user's window passes; the IP's has not.
    setup.advance(Duration::from_secs(60));
    assert_eq!(
        send(&app, authed("/no/such/route")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, get_request("/no/such/route")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let setup = Setup::new(ServerConfig {
        rate_limit_anonymous: limit(1, 900),
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..ServerConfig::default()
    });
    let app = synap_server::app(setup.state.clone());

    // An untrusted peer cannot pick a fresh identity per request.
    let first = send(&app, from_peer("203.0.113.5", Some("1.1.1.1"))).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    let spoofed = send(&app, from_peer("203.0.113.5", Some("2.2.2.2"))).await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);
    // Nor does it spend 1.1.1.1's budget.
    let behind_proxy = send(&app, from_peer("10.0.0.1", Some("1.1.1.1"))).await;
    assert_eq!(behind_proxy.status, StatusCode::NOT_FOUND);

    // Behind a trusted proxy, clients are told apart by the header...
    let other = send(&app, from_peer("10.0.0.1", Some("9.9.9.9, 2.2.2.2"))).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let again = send(&app, from_peer("10.0.0.2", Some("1.1.1.1"))).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    // ... by the right-most untrusted hop, whatever the client prepended.
    let prepended = send(&app, from_peer("10.0.0.1", Some("7.7.7.7, 2.2.2.2"))).await;
    assert_eq!(prepended.status, StatusCode::TOO_MANY_REQUESTS);
    // The proxy's own requests count for the proxy.
    let direct = send(&app, from_peer("10.0.0.1", None)).await;
    assert_eq!(direct.status, StatusCode::NOT_FOUND);
}

/// A body of `len` bytes streamed in chunks, with no Content-Length.
fn chunked(len: usize) -> Body {
    const CHUNK: usize = 64 * 1024;
    let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
        let size = CHUNK.min(len - i * CHUNK);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size]))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_also_when_chunked() {
    let setup = Setup::new(ServerConfig::default());
    assert_eq!(setup.state.config.body_limit_bytes, 10 * MIB);
    let app = setup.test_router();
    let limit = 10 * MIB;

    // Exactly the limit, streamed: accepted (axum's own 2 MB default is lifted).
    let request = Request::post("/test/echo").body(chunked(limit)).unwrap();
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    let ok = send(&app, request).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, limit.to_string().as_bytes());

    // One byte over, streamed without Content-Length.
    let request = Request::post("/test/echo")
        .body(chunked(limit + 1))
        .unwrap();
    let over = send(&app, request).await;
    over.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    over.assert_security_headers();
    assert_eq!(over.json()["limit_bytes"], limit);

    // One byte over, declared: refused before the body is read.
    let request = Request::post("/test/echo")
        .header(header::CONTENT_LENGTH, limit + 1)
        .body(Body::from(vec![b'x'; limit + 1]))
        .unwrap();
    let declared = send(&app, request).await;
    declared.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    declared.assert_security_headers();
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_to_a_real_route_is_413() {
    let setup = Setup::new(ServerConfig::default());
    let token = setup.owner_token().await;
    let app = synap_server::app(setup.state.clone());
    let request = Request::post("/v1/entities")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(chunked(10 * MIB + 1))
        .unwrap();
    let answer = send(&app, request).await;
    answer.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    answer.assert_security_headers();
}

#[tokio::test]
async fn bare_errors_and_panics_are_problems_with_the_security_headers() {
    let setup = Setup::new(ServerConfig::default());
    let app = synap_server::app(setup.state.clone());

    let not_found = send(&app, get_request("/no/such/route")).await;
    not_found.assert_problem(StatusCode::NOT_FOUND, "not_found");
    not_found.assert_security_headers();

    // axum's method router answers 405 with an empty body.
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/health")
        .body(Body::empty())
        .unwrap();
    let wrong_method = send(&app, request).await;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    wrong_method.assert_security_headers();
    let allow = wrong_method.header("allow").expect("Allow is kept");
    assert!(allow.contains("GET"), "{allow}");

    // A panic in a handler: 500 `internal`, the message not leaked.
    let test_app = setup.test_router();
    let panicked = send(&test_app, get_request("/test/panic")).await;
    panicked.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    panicked.assert_security_headers();
    assert!(
        !String::from_utf8_lossy(&panicked.body).contains("secret internal detail"),
        "the panic message stays in the log"
    );
    // A bare status from a handler (the test router's fallback) gets a body too.
    let bare = send(&test_app, get_request("/nothing")).await;
    bare.assert_problem(StatusCode::NOT_FOUND, "not_found");
    bare.assert_security_headers();
}

#[tokio::test]
async fn hsts_only_in_production() {
    let development = Setup::new(ServerConfig::default());
    let answer = send(
        &synap_server::app(development.state.clone()),
        get_request("/health"),
    )
    .await;
    answer.assert_security_headers();

    let production = Setup::new(ServerConfig {
        environment: Environment::Production,
        ..ServerConfig::default()
    });
    let app = synap_server::app(production.state.clone());
    for path in ["/health", "/no/such/route"] {
        let answer = send(&app, get_request(path)).await;
        assert_eq!(
            answer.header("strict-transport-security"),
            Some("max-age=31536000; includeSubDomains"),
            "{path}"
        );
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    }
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/entities")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type, if-match",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let setup = Setup::new(ServerConfig {
        allowed_origins: Some(vec!["https://app.example.com".into()]),
        rate_limit_anonymous: limit(1, 900),
        ..ServerConfig::default()
    });
    let app = synap_server::app(setup.state.clone());

    let allowed = send(&app, preflight("https://app.example.com")).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .expect("methods");
    for method in ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = allowed
        .header("access-control-allow-headers")
        .expect("headers");
    for name in ["Content-Type", "Authorization", "If-Match", "Last-Event-ID"] {
        assert!(headers.contains(name), "{headers}");
    }
    allowed.assert_security_headers();

    let refused = send(&app, preflight("https://evil.example.net")).await;
    assert!(!refused.status.is_success(), "{}", refused.status);
    refused.assert_problem(StatusCode::FORBIDDEN, "origin_not_allowed");
    for (name, _) in refused.headers.iter() {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "no CORS header on a refused preflight: {name}"
        );
    }
    // The development defaults do not apply once origins are configured.
    let default_dev = send(&app, preflight("http://localhost:5173")).await;
    assert_eq!(default_dev.status, StatusCode::FORBIDDEN);

    // Actual requests: the allowed origin may read the answer (a 429 included,
    // and its rate-limit headers); another origin gets no CORS header.
    let request = |origin: &str| {
        Request::get("/no/such/route")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let _ = send(&app, request("https://app.example.com")).await;
    let limited = send(&app, request("https://app.example.com")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = limited
        .header("access-control-expose-headers")
        .expect("exposed headers");
    assert!(exposed.contains("Retry-After") && exposed.contains("RateLimit"));
    let other = send(&app, request("https://evil.example.net")).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert!(other.header("vary").is_some_and(|v| v.contains("Origin")));
}

#[tokio::test]
async fn the_development_default_origins_are_allowed() {
    let setup = Setup::new(ServerConfig::default());
    let app = synap_server::app(setup.state.clone());
    for origin in [
        "http://localhost:5173",
        "http://localhost:3000",
        "http://localhost:3001",
    ] {
        let answer = send(&app, preflight(origin)).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{origin}");
    }
    let production = Setup::new(ServerConfig {
        environment: Environment::Production,
        ..ServerConfig::default()
    });
    let answer = send(
        &synap_server::app(production.state.clone()),
        preflight("http://localhost:5173"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "production: none");
}

#[tokio::test]
async fn the_login_guard_locks_an_email_out_through_the_extractor() {
    let setup = Setup::new(ServerConfig {
        login_failures_max: 3,
        login_lockout: Duration::from_secs(600),
        ..ServerConfig::default()
    });
    let app = setup.test_router();
    let attempt = |email: &str| {
        Request::post(format!("/test/login/{email}"))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        let failed = send(&app, attempt("a@example.com")).await;
        failed.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let locked = send(&app, attempt("A@Example.com")).await;
    locked.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    locked.assert_security_headers();
    assert_eq!(locked.header("retry-after"), Some("600"));
    // Another account is not affected.
    let other = send(&app, attempt("b@example.com")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);

    setup.advance(Duration::from_secs(600));
    let after = send(&app, attempt("a@example.com")).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the lockout ended");
}
