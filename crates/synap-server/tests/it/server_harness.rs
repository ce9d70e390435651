//! The harness of the account, operations, stream and shutdown tests: a store in a
//! temporary directory with a server state over it, in-process calls
//! (`oneshot`), the real server on a loopback port, and a minimal HTTP/1.1
//! client on a raw `TcpStream` (with chunked decoding and an SSE reader).

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synap_domain::{CreateEntity, EntityCommand, EntityId, EventMetadata, StoredEvent, UserId};
use synap_server::auth::{password, tokens};
use synap_server::{AppState, ServerConfig};
use synap_store::{
    Accounts, Clock, CommandRequest, EventFilter, ManualClock, NewToken, NewUser, Scope, Store,
    SystemClock, Target, UserSummary,
};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;
use uuid::Uuid;

/// The configuration of these tests: the defaults without rate limits.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        rate_limit_anonymous: None,
        rate_limit_user: None,
        ..ServerConfig::default()
    }
}

/// A store and a server state over it.
pub struct Harness {
    pub dir: TempDir,
    pub store: Arc<SqliteStore>,
    /// `Some` when the harness runs on a manual clock.
    pub clock: Option<Arc<ManualClock>>,
    pub state: AppState,
    /// `app(state)`, built once: the security layer keeps its counts inside.
    pub app: axum::Router,
    shutdown: Option<watch::Sender<bool>>,
}

impl Harness {
    /// On a manual clock (starting now), shared by the store and the server.
    pub async fn manual(config: ServerConfig) -> Harness {
        let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
        Harness::open(config, clock.clone(), Some(clock)).await
    }

    /// On the system clock (for the live server).
    pub async fn system(config: ServerConfig) -> Harness {
        Harness::open(config, Arc::new(SystemClock), None).await
    }

    /// On the system clock, with an object store in the temporary directory
    /// (bodies over 256 KiB and attachments).
    pub async fn with_objects(config: ServerConfig) -> Harness {
        let mut harness = Harness::open(config.clone(), Arc::new(SystemClock), None).await;
        let root = harness.dir.path().join("objects");
        let objects = tokio::task::spawn_blocking(move || {
            synap_store::objects::Objects::open(
                &synap_store::objects::ObjectStoreConfig::Fs { root },
                synap_store::objects::INLINE_BODY_BYTES_MAX_DEFAULT,
            )
        })
        .await
        .expect("open the object store")
        .expect("open the object store");
        let mut sqlite = SqliteConfig::new(harness.dir.path().join("objects.db"));
        sqlite.durable = false;
        sqlite.objects = Some(Arc::new(objects));
        let store = Arc::new(SqliteStore::open(sqlite).expect("open store"));
        let dyn_store: Arc<dyn Store> = store.clone();
        let (state, shutdown) =
            AppState::new(dyn_store, config, Arc::new(SystemClock), "sqlite", None);
        harness.store = store;
        harness.app = synap_server::app(state.clone());
        harness.state = state;
        harness.shutdown = Some(shutdown);
        harness
    }

    async fn open(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        manual: Option<Arc<ManualClock>>,
    ) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sqlite = SqliteConfig::new(dir.path().join("synap.db"));
        sqlite.durable = false;
        sqlite.clock = clock.clone();
        let store = Arc::new(SqliteStore::open(sqlite).expect("open store"));
        let dyn_store: Arc<dyn Store> = store.clone();
        let (state, shutdown) = AppState::new(dyn_store, config, clock, "sqlite", None);
        Harness {
            dir,
            store,
            clock: manual,
            app: synap_server::app(state.clone()),
            state,
            shutdown: Some(shutdown),
        }
    }

    pub fn advance(&self, by: Duration) {
        let clock = self.clock.as_ref().expect("a manual clock");
        clock.advance(jiff::SignedDuration::try_from(by).expect("a small duration"));
    }

    /// Flips the shutdown flag (in-process tests).
    pub fn begin_shutdown(&self) {
        if let Some(tx) = &self.shutdown {
            tx.send_replace(true);
        }
    }

    /// One in-process request through `app(state)`.
    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .expect("a body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A user with a password.
    pub async fn user(&self, email: &str, secret: &str, role: &str) -> UserSummary {
        let password_hash = password::hash(secret.to_string()).await.expect("hash");
        self.store
            .create_user(NewUser {
                email: email.into(),
                role: role.into(),
                password_hash: Some(password_hash),
                display_name: None,
            })
            .await
            .expect("create user")
    }

    /// A user without a password.
    pub async fn plain_user(&self, email: &str) -> UserSummary {
        self.store
            .create_user(NewUser {
                email: email.into(),
                role: "member".into(),
                ..NewUser::default()
            })
            .await
            .expect("create user")
    }

    /// A token minted straight in the store.
    pub async fn token(&self, user: UserId, scopes: &[&str]) -> String {
        let (token, prefix) = tokens::mint_token();
        self.store
            .create_token(NewToken {
                id: Uuid::now_v7(),
                user_id: user,
                name: "test".into(),
                prefix,
                secret_hash: tokens::hash_secret(&token),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                expires_at: None,
            })
            .await
            .expect("create token");
        token
    }

    /// Appends a note for `user`.
    pub async fn note(&self, user: UserId, text: &str) {
        append_note(self.store.as_ref(), user, text).await;
    }

    /// Every event of `user`, oldest first.
    pub async fn events_of(&self, user: UserId) -> Vec<StoredEvent> {
        all_events(self.store.as_ref(), user).await
    }

    /// Serves on 127.0.0.1 (a free port) until [`Live::stop`].
    pub async fn serve(&mut self) -> Live {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = self.shutdown.take().expect("not served yet");
        let task = tokio::spawn(synap_server::serve(
            listener,
            self.state.clone(),
            shutdown,
            async move {
                let _ = stopped.await;
            },
        ));
        Live {
            addr,
            stop: Some(stop),
            task,
        }
    }
}

pub async fn append_note(store: &dyn Store, user: UserId, text: &str) {
    let request = CommandRequest::new(
        Scope::user(user),
        Target::Entity {
            id: EntityId::new_v7(),
            command: EntityCommand::Create(CreateEntity::note(text)),
        },
        EventMetadata::default(),
    );
    store.execute(request).await.expect("append");
}

pub async fn all_events(store: &dyn Store, user: UserId) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    loop {
        let filter = EventFilter {
            after: events.last().map_or(0, |e: &StoredEvent| e.position),
            limit: Some(500),
            ..EventFilter::default()
        };
        let page = store
            .read_events(&Scope::user(user), &filter)
            .await
            .expect("read");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// An in-process answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The value of the `synap_session` cookie this answer sets, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|line| line.strip_prefix("synap_session="))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
            .next_back()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
}

/// An in-process request.
pub fn request(method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Auth::Cookie(value) => {
            builder = builder.header(header::COOKIE, format!("synap_session={value}"));
        }
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("a request")
}

// ---------------------------------------------------------------------------------
// The real server
// ---------------------------------------------------------------------------------

/// The server running on a loopback port.
pub struct Live {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Live {
    /// Sends the shutdown signal.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops and waits for `serve` to return.
    pub async fn stop_and_wait(mut self, within: Duration) -> std::io::Result<()> {
        self.stop();
        tokio::time::timeout(within, self.task)
            .await
            .expect("serve returns in time")
            .expect("serve does not panic")
    }
}

/// A whole HTTP answer read from the wire.
#[derive(Debug)]
pub struct WireAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON")
    }
}

/// The request head for `method path` with `Connection: close`.
pub fn request_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: Option<usize>,
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// One request on a fresh connection; reads the answer to the end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> WireAnswer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = request_head(addr, method, path, headers, body.map(str::len));
    stream.write_all(head.as_bytes()).await.expect("write");
    if let Some(body) = body {
        stream.write_all(body.as_bytes()).await.expect("write body");
    }
    read_answer(&mut stream).await
}

/// Reads an answer to the end of the connection.
pub async fn read_answer(stream: &mut TcpStream) -> WireAnswer {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the answer arrives in time")
        .expect("read");
    parse_answer(&raw)
}

/// Parses a complete HTTP/1.1 answer (chunked or not).
pub fn parse_answer(raw: &[u8]) -> WireAnswer {
    let split = find(raw, b"\r\n\r\n").expect("a complete head");
    let (status, headers) = parse_head(&raw[..split]);
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut decoder = Chunked::default();
        decoder.feed(rest);
        decoder.decoded
    } else {
        rest.to_vec()
    };
    WireAnswer {
        status,
        headers,
        body,
    }
}

fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// An incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Debug, Default)]
pub struct Chunked {
    raw: Vec<u8>,
    pub decoded: Vec<u8>,
    /// The terminating zero-size chunk was seen.
    pub ended: bool,
}

impl Chunked {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        while !self.ended {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("a chunk size");
            let start = line_end + 2;
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.decoded
                .extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("the data is JSON")
    }
}

/// One block of an event stream: an event, or only comments and fields.
#[derive(Debug, Clone, Default)]
pub struct SseBlock {
    pub event: Option<SseEvent>,
    pub comments: Vec<String>,
    pub retry: Option<u64>,
}

/// A reader of `GET /v1/events/stream` on its own connection.
pub struct SseClient {
    stream: TcpStream,
    chunks: Chunked,
    /// Decoded bytes not yet parsed into blocks.
    text: Vec<u8>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body of a non-stream answer (an error), when `status` is not 200.
    pub error_body: Vec<u8>,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = request_head(addr, "GET", path, headers, None);
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(split) = find(&raw, b"\r\n\r\n") {
                break split;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("the head arrives in time")
                .expect("read");
            assert!(n > 0, "the connection closed before the head");
            raw.extend_from_slice(&buf[..n]);
        };
        let (status, headers) = parse_head(&raw[..split]);
        let mut client = SseClient {
            stream,
            chunks: Chunked::default(),
            text: Vec::new(),
            status,
            headers,
            error_body: Vec::new(),
        };
        let rest = raw[split + 4..].to_vec();
        if status != 200 {
            let mut body = rest;
            let _ =
                tokio::time::timeout(Duration::from_secs(5), client.stream.read_to_end(&mut body))
                    .await;
            client.error_body = parse_answer(&[&raw[..split + 4], &body[..]].concat()).body;
            return client;
        }
        client.chunks.feed(&rest);
        client
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next block, `None` when the stream ended; panics after `within`.
    pub async fn next_block(&mut self, within: Duration) -> Option<SseBlock> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.text.append(&mut self.chunks.decoded);
            if let Some(end) = find(&self.text, b"\n\n") {
                let block: Vec<u8> = self.text.drain(..end + 2).collect();
                return Some(parse_block(&String::from_utf8_lossy(&block)));
            }
            if self.chunks.ended {
                return None;
            }
            let mut buf = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("a stream block arrives in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.chunks.feed(&buf[..n]),
            }
        }
    }

    /// The next event (skipping comments and `retry:`), `None` when the stream ended.
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            let block = self.next_block(within).await?;
            if let Some(event) = block.event {
                return Some(event);
            }
        }
    }
}

fn parse_block(block: &str) -> SseBlock {
    let mut out = SseBlock::default();
    let mut event = SseEvent::default();
    let mut is_event = false;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            out.comments.push(comment.trim().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => {
                event.id = Some(value.to_string());
                is_event = true;
            }
            "event" => {
                event.event = Some(value.to_string());
                is_event = true;
            }
            "data" => {
                if !event.data.is_empty() {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                is_event = true;
            }
            "retry" => out.retry = value.parse().ok(),
            _ => {}
        }
    }
    if is_event {
        out.event = Some(event);
    }
    out
}

/// Waits until `condition` holds, polling; panics after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
