//! `SqliteStore`: opening the database, the reader pool, and the trait
//! implementations that route writes to the writer thread and reads to the pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use synap_store::progress::{Report, forward, reporter};
use synap_store::{Clock, SystemClock};

/// How to open an embedded store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file (created with its directory if missing).
    pub path: PathBuf,
    /// `true` (default): every acknowledged commit is synced to disk
    /// (`synchronous=FULL`). `false`: `synchronous=NORMAL`, which can lose the last
    /// commits on power loss (never on a process crash).
    pub durable: bool,
    /// How long a writer waits for another process's write lock before failing
    /// with `StoreError::Busy`.
    pub busy_timeout: Duration,
    /// Read-only connections in the pool.
    pub read_connections: usize,
    pub clock: Arc<dyn Clock>,
    /// Where bodies over its inline threshold and attachments go. `None`: every
    /// body stays inline and attachments are refused.
    pub objects: Option<Arc<synap_store::objects::Objects>>,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            durable: true,
            busy_timeout: Duration::from_secs(10),
            read_connections: 4,
            clock: Arc::new(SystemClock),
            objects: None,
        }
    }
}

use crate::codec::{run_cached, sql_error};
use crate::writer::{self, Job};
use crate::{accounts, admin, read};
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Mutex;
use synap_domain::StoredEvent;
use synap_domain::event::Source;
use synap_domain::ids::{ContentHash, EntityId, UserId};
use synap_store::{
    Accounts, AsOf, CommandOutcome, CommandRequest, Content, Direction, EntityFilter, EntityView,
    EventFilter, EventStore, FOREIGN_COMMIT_POLL, Graph, GraphRequest, Maintenance, NewSession,
    NewToken, NewUser, Page, PageRequest, Progress, ReadModel, RebuildReport, RelationView, Scope,
    SearchHit, SearchRequest, SessionRecord, Stats, StoreError, StoreResult, TagCount,
    TokenCredential, TokenInfo, UserSummary, VerifyReport,
};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use uuid::Uuid;

/// The embedded store. Cheap to clone; all clones share one writer and one pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<u64>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    clock: Arc<dyn Clock>,
    objects: Option<Arc<synap_store::objects::Objects>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Prepared statements kept per connection; more than the write path and the
/// queries use, so none is parsed twice.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Keeps one query plan per prepared statement. Without it SQLite re-prepares a
/// cached statement whenever its bound values might favour another plan — measured
/// at 9 % of the writer's CPU (`stream_version`, snapshot and history lookups) with
/// the same plan every time (BENCHMARKS.md).
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn configure(conn: &Connection, config: &SqliteConfig) -> rusqlite::Result<()> {
    conn.busy_timeout(config.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    stable_plans(conn)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; \
         PRAGMA journal_size_limit = 67108864;",
        if config.durable { "FULL" } else { "NORMAL" }
    ))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `config.path`, migrates it, makes
    /// sure the local owner exists, and starts the writer thread. Must be called
    /// from within a Tokio runtime.
    pub fn open(config: SqliteConfig) -> StoreResult<Self> {
        crate::vec_extension::register();
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut conn = Connection::open(&config.path).map_err(|e| {
            StoreError::Backend(format!(
                "cannot open the database {}: {e}",
                config.path.display()
            ))
        })?;
        configure(&conn, &config).map_err(sql_error)?;
        crate::schema::migrate(&mut conn).map_err(sql_error)?;
        accounts::ensure_local_owner(&mut conn, config.clock.now())?;

        let mut readers = Vec::with_capacity(config.read_connections.max(1));
        for _ in 0..config.read_connections.max(1) {
            let reader = Connection::open_with_flags(
                &config.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(sql_error)?;
            reader
                .busy_timeout(config.busy_timeout)
                .map_err(sql_error)?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
            stable_plans(&reader).map_err(sql_error)?;
            reader
                .execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16384;")
                .map_err(sql_error)?;
            readers.push(reader);
        }

        // Checkpoints run on a thread of their own (see `checkpointer`).
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {}",
            crate::checkpointer::WAL_PAGES_MAX
        ))
        .map_err(sql_error)?;
        let checkpoints = crate::checkpointer::start(&config.path, config.busy_timeout)?;

        let head_position = read::head_position(&conn)?;
        let (head_tx, head_rx) = watch::channel(head_position);
        let (jobs_tx, jobs_rx) = mpsc::channel(writer::WRITE_QUEUE_MAX);
        let clock = config.clock.clone();
        let objects = config.objects.clone();
        std::thread::Builder::new()
            .name("synap-sqlite-writer".into())
            .spawn(move || writer::run(conn, jobs_rx, head_tx, clock, objects, checkpoints))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;

        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: config.path.clone(),
                jobs: jobs_tx,
                head: head_rx,
                reader_permits: Semaphore::new(readers.len()),
                readers: Mutex::new(readers),
                clock: config.clock.clone(),
                objects: config.objects.clone(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on a pooled read connection, inside one read transaction (a
    /// consistent snapshot), on a blocking thread.
    pub(crate) async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self.reader_permit().await?;
        let conn = self.take_reader()?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = in_read_transaction(&conn, work);
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a read task failed: {e}")))?;
        self.give_back_reader(conn);
        result
    }

    /// Runs `work` like [`read`](Self::read) — a pooled read connection, one read
    /// transaction — but on the calling thread, for reads by key that take a few
    /// microseconds: handing them to a blocking thread and back cost more than
    /// the read itself (in a profile of `GET /v1/entities/{id}`, 43 % of the
    /// server's CPU went to the wake-ups and context switches). A WAL-mode reader
    /// never waits for the writer. Anything that scans stays on
    /// [`read`](Self::read).
    pub(crate) async fn read_by_key<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        let _permit = self.reader_permit().await?;
        let conn = self.take_reader()?;
        let result = in_read_transaction(&conn, work);
        self.give_back_reader(conn);
        result
    }

    /// Waits for one of the read connections to be free.
    async fn reader_permit(&self) -> StoreResult<tokio::sync::SemaphorePermit<'_>> {
        self.inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Takes a read connection out of the pool (hold a [`reader_permit`](Self::reader_permit)).
    fn take_reader(&self) -> StoreResult<Connection> {
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or(StoreError::Closed)
    }

    fn give_back_reader(&self, conn: Connection) {
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    /// The store's clock (the workflow tables use it too).
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Runs `work` alone on the write connection.
    pub(crate) async fn exclusive<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Exclusive(Box::new(move |conn| {
            let _ = reply.send(work(conn));
        }));
        self.inner
            .jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs `work` inside one read transaction: every query it makes sees the same
/// snapshot.
fn in_read_transaction<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    run_cached(conn, "BEGIN").map_err(sql_error)?;
    let result = work(conn);
    let _ = run_cached(conn, "COMMIT");
    result
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn execute(&self, request: CommandRequest) -> StoreResult<CommandOutcome> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Command {
                request: Box::new(request),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (user, filter) = (scope.user_id, filter.clone());
        self.read(move |conn| read::read_events(conn, &user, &filter))
            .await
    }

    async fn head_position(&self) -> StoreResult<u64> {
        self.read_by_key(read::head_position).await
    }

    fn objects(&self) -> Option<Arc<synap_store::objects::Objects>> {
        self.inner.objects.clone()
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut head = self.inner.head.clone();
        loop {
            let known = *head.borrow_and_update();
            if known > after {
                return Ok(known);
            }
            // Commits by other processes do not signal us: look at the file.
            let on_disk = self.head_position().await?;
            if on_disk > after {
                return Ok(on_disk);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(known.max(on_disk));
            }
            let pause = FOREIGN_COMMIT_POLL.min(deadline - now);
            tokio::select! {
                changed = head.changed() => { if changed.is_err() { return Err(StoreError::Closed); } }
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[async_trait]
impl ReadModel for SqliteStore {
    async fn entity(&self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityView>> {
        let user = scope.user_id;
        self.read_by_key(move |conn| read::entity(conn, &user, id))
            .await
    }

    async fn entity_at(
        &self,
        scope: &Scope,
        id: EntityId,
        as_of: AsOf,
    ) -> StoreResult<Option<EntityView>> {
        let user = scope.user_id;
        let objects = self.inner.objects.clone();
        self.read(move |conn| read::entity_at(conn, objects.as_deref(), &user, id, as_of))
            .await
    }

    async fn content(&self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<Content>> {
        let user = scope.user_id;
        let objects = self.inner.objects.clone();
        self.read(move |conn| read::content(conn, objects.as_deref(), &user, hash))
            .await
    }

    async fn history(
        &self,
        scope: &Scope,
        id: EntityId,
        page: &PageRequest,
    ) -> StoreResult<Page<StoredEvent>> {
        let (user, page) = (scope.user_id, page.clone());
        self.read(move |conn| read::history(conn, &user, id, &page))
            .await
    }

    async fn list_entities(
        &self,
        scope: &Scope,
        filter: &EntityFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EntityView>> {
        let (user, filter, page) = (scope.user_id, filter.clone(), page.clone());
        self.read(move |conn| read::list_entities(conn, &user, &filter, &page))
            .await
    }

    async fn relations(
        &self,
        scope: &Scope,
        id: EntityId,
        direction: Direction,
    ) -> StoreResult<Vec<RelationView>> {
        let user = scope.user_id;
        self.read(move |conn| read::relations(conn, &user, id, direction))
            .await
    }

    async fn graph(&self, scope: &Scope, request: &GraphRequest) -> StoreResult<Graph> {
        let (user, request) = (scope.user_id, request.clone());
        self.read(move |conn| read::graph(conn, &user, &request))
            .await
    }

    async fn tags(&self, scope: &Scope) -> StoreResult<Vec<TagCount>> {
        let user = scope.user_id;
        self.read(move |conn| read::tags(conn, &user)).await
    }

    async fn search(&self, scope: &Scope, request: &SearchRequest) -> StoreResult<Vec<SearchHit>> {
        let (user, request) = (scope.user_id, request.clone());
        let objects = self.inner.objects.clone();
        self.read(move |conn| read::search(conn, objects.as_deref(), &user, &request))
            .await
    }
}

#[async_trait]
impl Maintenance for SqliteStore {
    async fn verify(&self, progress: Progress<'_>) -> StoreResult<VerifyReport> {
        let live = self.inner.path.clone();
        let objects = self.inner.objects.clone();
        relay_progress(progress, move |report| {
            let scratch = scratch_path(&live);
            let result = admin::verify(&live, &scratch, objects.as_deref(), &report);
            let _ = std::fs::remove_file(&scratch);
            result
        })
        .await
    }

    async fn rebuild(&self, progress: Progress<'_>) -> StoreResult<RebuildReport> {
        // The writer runs the rebuild, so no command interleaves with it.
        let (report, reports) = reporter();
        let objects = self.inner.objects.clone();
        let rebuild = self.exclusive(move |conn| admin::rebuild(conn, objects.as_deref(), &report));
        forward(progress, reports, rebuild).await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        let path = self.inner.path.clone();
        self.read(move |conn| {
            let count = |sql: &str| -> StoreResult<u64> {
                conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(sql_error)
            };
            let events = count("SELECT count(*) FROM events")?;
            let entities = count("SELECT count(*) FROM entities")?;
            let relations = count("SELECT count(*) FROM relations")?;
            let users = count("SELECT count(*) FROM users")?;
            let content_versions = count("SELECT count(*) FROM contents")?;
            let content_bytes = count("SELECT coalesce(sum(size), 0) FROM contents")?;
            let bytes_on_disk = ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    std::fs::metadata(file).ok().map(|m| m.len())
                })
                .sum::<u64>();
            let amplification = if content_bytes == 0 {
                0.0
            } else {
                bytes_on_disk as f64 / content_bytes as f64
            };
            Ok(Stats {
                events,
                entities,
                relations,
                users,
                content_versions,
                content_bytes,
                bytes_on_disk,
                amplification,
            })
        })
        .await
    }
}

/// Runs blocking `work` on a blocking thread while relaying its progress reports
/// to the caller's callback on this task.
async fn relay_progress<T, F>(progress: Progress<'_>, work: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(Report) -> StoreResult<T> + Send + 'static,
{
    let (report, reports) = reporter();
    let task = async move {
        tokio::task::spawn_blocking(move || work(report))
            .await
            .map_err(|e| StoreError::Backend(format!("a maintenance task failed: {e}")))?
    };
    forward(progress, reports, task).await
}

fn scratch_path(live: &Path) -> PathBuf {
    let mut name = live
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".verify-{}", uuid::Uuid::now_v7().simple()));
    live.with_file_name(name)
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn local_owner(&self) -> StoreResult<UserSummary> {
        self.read_by_key(accounts::local_owner).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserSummary>> {
        self.read_by_key(move |conn| accounts::user(conn, id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserSummary>> {
        let email = email.to_string();
        self.read_by_key(move |conn| accounts::user_by_email(conn, &email))
            .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<UserSummary> {
        let now = self.inner.clock.now();
        self.exclusive(move |conn| accounts::create_user(conn, &user, now, Source::Api))
            .await
    }

    async fn password_hash(&self, user: UserId) -> StoreResult<Option<String>> {
        self.read_by_key(move |conn| accounts::password_hash(conn, user))
            .await
    }

    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_string();
        self.exclusive(move |conn| accounts::set_password_hash(conn, user, &hash))
            .await
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<TokenInfo> {
        let now = self.inner.clock.now();
        self.exclusive(move |conn| accounts::create_token(conn, &token, now))
            .await
    }

    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        self.read(move |conn| accounts::list_tokens(conn, user))
            .await
    }

    async fn revoke_token(&self, user: UserId, token_id: Uuid) -> StoreResult<bool> {
        let now = self.inner.clock.now();
        self.exclusive(move |conn| accounts::revoke_token(conn, user, token_id, now))
            .await
    }

    async fn token_by_prefix(&self, prefix: &str) -> StoreResult<Option<TokenCredential>> {
        let prefix = prefix.to_string();
        self.read_by_key(move |conn| accounts::token_by_prefix(conn, &prefix))
            .await
    }

    async fn touch_token(&self, token_id: Uuid, at: Timestamp) -> StoreResult<()> {
        self.exclusive(move |conn| accounts::touch_token(conn, token_id, at))
            .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        let now = self.inner.clock.now();
        self.exclusive(move |conn| accounts::create_session(conn, &session, now))
            .await
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let id_hash = id_hash.to_string();
        self.read_by_key(move |conn| accounts::session(conn, &id_hash))
            .await
    }

    async fn extend_session(
        &self,
        id_hash: &str,
        expires_at: Timestamp,
        seen_at: Timestamp,
    ) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.exclusive(move |conn| accounts::extend_session(conn, &id_hash, expires_at, seen_at))
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.exclusive(move |conn| accounts::delete_session(conn, &id_hash))
            .await
    }
}
