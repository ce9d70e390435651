//! The `/v1` data routes (entities, relations, graph, tags, search, capture,
//! events), in process: `synap_server::app(state)` on a SQLite store in a temp
//! dir, driven with `tower::ServiceExt::oneshot`. One module per area, plus the
//! isolation matrix and the bad-input matrix.

mod bad_input;
mod capture;
mod entities;
mod events;
mod isolation;
mod relations;
mod search;
mod suggestions;
mod webhooks;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use synap_server::auth::tokens::{hash_secret, mint_token};
use synap_server::{AppState, ServerConfig};
use synap_store::{Clock, ManualClock, NewToken, NewUser, Store};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

/// A server on a fresh database, with a clock that moves only when told to.
pub struct TestApp {
    pub app: Router,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    _dir: TempDir,
}

/// A user with a token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub token: String,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let dir = tempfile::tempdir().expect("a temp dir");
        let clock = Arc::new(ManualClock::new(
            "2025-01-01T00:00:00Z".parse().expect("a time"),
        ));
        let mut config = SqliteConfig::new(dir.path().join("synap.db"));
        config.durable = false;
        config.clock = clock.clone();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(config).expect("open the store"));
        let server = ServerConfig {
            rate_limit_anonymous: None,
            rate_limit_user: None,
            ..ServerConfig::default()
        };
        let (state, _shutdown) =
            AppState::new(store.clone(), server, clock.clone(), "sqlite", None);
        TestApp {
            app: synap_server::app(state),
            store,
            clock,
            _dir: dir,
        }
    }

    /// A new member with a token of these scopes.
    pub async fn user_with(&self, email: &str, scopes: &[&str]) -> User {
        let user = match self.store.user_by_email(email).await.expect("look up") {
            Some(user) => user,
            None => self
                .store
                .create_user(NewUser {
                    email: email.into(),
                    role: "member".into(),
                    password_hash: None,
                    display_name: None,
                })
                .await
                .expect("create a user"),
        };
        let (token, prefix) = mint_token();
        self.store
            .create_token(NewToken {
                id: Uuid::now_v7(),
                user_id: user.id,
                name: "test".into(),
                prefix,
                secret_hash: hash_secret(&token),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                expires_at: None,
            })
            .await
            .expect("create a token");
        User {
            id: user.id.0,
            token,
        }
    }

    /// A new member with a read+write token.
    pub async fn user(&self, email: &str) -> User {
        self.user_with(email, &["read", "write"]).await
    }

    /// Moves the clock forward by whole seconds.
    pub fn tick(&self, seconds: i64) {
        self.clock.advance(jiff::SignedDuration::from_secs(seconds));
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        user: Option<&User>,
        body: Option<Value>,
    ) -> Reply {
        self.send_with(method, uri, user, body, &[]).await
    }

    pub async fn send_with(
        &self,
        method: Method,
        uri: &str,
        user: Option<&User>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = body.map(|b| serde_json::to_vec(&b).expect("json"));
        self.send_raw(method, uri, user, body, Some("application/json"), headers)
            .await
    }

    /// Sends raw bytes as the body, with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        user: Option<&User>,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(user) = user {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", user.token));
        }
        if let (Some(_), Some(content_type)) = (&body, content_type) {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("a request");
        let response = self.app.clone().oneshot(request).await.expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        Reply {
            status,
            headers,
            body: bytes.to_vec(),
        }
    }

    pub async fn get(&self, uri: &str, user: &User) -> Reply {
        self.send(Method::GET, uri, Some(user), None).await
    }

    pub async fn post(&self, uri: &str, user: &User, body: Value) -> Reply {
        self.send(Method::POST, uri, Some(user), Some(body)).await
    }

    pub async fn patch(&self, uri: &str, user: &User, body: Value) -> Reply {
        self.send(Method::PATCH, uri, Some(user), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, user: &User) -> Reply {
        self.send(Method::DELETE, uri, Some(user), None).await
    }

    /// Creates an entity and returns its JSON (asserting 201).
    pub async fn create(&self, user: &User, body: Value) -> Value {
        let reply = self.post("/v1/entities", user, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()
    }

    /// Creates a note with this content and returns its id.
    pub async fn note(&self, user: &User, content: &str) -> String {
        let entity = self
            .create(
                user,
                serde_json::json!({"type": "note", "content": content}),
            )
            .await;
        entity["id"].as_str().expect("an id").to_string()
    }

    /// The number of events in the whole log (all users).
    pub async fn head(&self) -> u64 {
        self.store.head_position().await.expect("head")
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts a problem+json answer with this status and code; returns the body.
    #[track_caller]
    pub fn problem(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status.as_u16(), "{body}");
        body
    }
}
