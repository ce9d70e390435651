//! `PostgresStore`: opening (migrations, partitions, the local owner, the feed
//! listener), and the trait implementations that run each operation on a pooled
//! connection — user-scoped operations in a transaction that sets the user for
//! row-level security.

use crate::pool::{Conn, Pool};
use crate::schema::Partitions;
use crate::{accounts, admin, feed, read, write};
use async_trait::async_trait;
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use synap_domain::StoredEvent;
use synap_domain::event::Source;
use synap_domain::ids::{ContentHash, EntityId, UserId};
use synap_store::{
    Accounts, AsOf, Clock, CommandOutcome, CommandRequest, Content, Direction, EntityFilter,
    EntityView, EventFilter, EventStore, FOREIGN_COMMIT_POLL, Graph, GraphRequest, Maintenance,
    NewSession, NewToken, NewUser, Page, PageRequest, Progress, ReadModel, RebuildReport,
    RelationView, Scope, SearchHit, SearchRequest, SessionRecord, Stats, StoreError, StoreResult,
    SystemClock, TagCount, TokenCredential, TokenInfo, UserSummary, VerifyReport,
};
use tokio::sync::watch;
use uuid::Uuid;

/// Connections per process by default: enough for the server's concurrency on a
/// small machine, far below PostgreSQL's default `max_connections` of 100 so
/// several processes fit.
pub const POOL_SIZE_DEFAULT: usize = 16;

/// How to open a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections in this process's pool.
    pub pool_size: usize,
    pub clock: Arc<dyn Clock>,
    /// `true` (default): opening an empty database creates the local owner, as
    /// the embedded store does. `false` for the target of `admin migrate`, whose
    /// owner arrives with the copied accounts.
    pub create_local_owner: bool,
    /// Where bodies over its inline threshold and attachments go. `None`: every
    /// body stays inline and attachments are refused.
    pub objects: Option<Arc<synap_store::objects::Objects>>,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            pool_size: POOL_SIZE_DEFAULT,
            clock: Arc::new(SystemClock),
            create_local_owner: true,
            objects: None,
        }
    }
}

/// The PostgreSQL store. Cheap to clone; clones share one pool and one listener.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Arc<Pool>,
    partitions: Arc<Partitions>,
    /// Bumped by the listener thread on every notification and by this process
    /// after each commit that appended events.
    wake: watch::Sender<u64>,
    /// Wakes readers in other processes after this process's commits.
    notifier: feed::Notifier,
    clock: Arc<dyn Clock>,
    /// Whether semantic search runs on pgvector (see `vectors::enable_pgvector`).
    pgvector: bool,
}

impl PostgresStore {
    /// Connects, migrates the database, creates the current partitions, makes sure
    /// the local owner exists (unless `create_local_owner` is off) and starts the
    /// feed listener. Must be called from
    /// within a Tokio runtime.
    pub async fn open(config: PostgresConfig) -> StoreResult<Self> {
        let url = config.url.clone();
        let now = config.clock.now();
        let partitions = Arc::new(Partitions::default());
        let setup_partitions = Arc::clone(&partitions);
        let create_local_owner = config.create_local_owner;
        let (app_role, pgvector) =
            tokio::task::spawn_blocking(move || -> StoreResult<(bool, bool)> {
                let mut conn = Conn::connect(&url, false)?;
                let mut app_role = crate::schema::migrate(&mut conn);
                // Two processes creating the first tables at once: one waits, retries.
                for _ in 0..3 {
                    if !matches!(app_role, Err(StoreError::Busy(_))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    app_role = crate::schema::migrate(&mut conn);
                }
                let app_role = app_role?;
                setup_partitions.ensure(&mut conn, now)?;
                setup_partitions.ensure(&mut conn, Timestamp::now())?;
                if create_local_owner {
                    accounts::ensure_local_owner(&mut conn, now)?;
                }
                let pgvector = crate::vectors::enable_pgvector(&mut conn)?;
                Ok((app_role, pgvector))
            })
            .await
            .map_err(|e| StoreError::Backend(format!("opening the store failed: {e}")))??;
        let mut pool = Pool::new(config.url.clone(), app_role, config.pool_size);
        pool.objects = config.objects.clone();
        let pool = Arc::new(pool);
        let (wake, _) = watch::channel(0u64);
        let listener_wake = wake.clone();
        let listener_url = config.url.clone();
        std::thread::Builder::new()
            .name("synap-pg-listener".into())
            .spawn(move || feed::listen(listener_url, listener_wake))
            .map_err(|e| StoreError::Backend(format!("cannot start the listener thread: {e}")))?;
        let notifier = feed::Notifier::start(config.url.clone())?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                partitions,
                wake,
                notifier,
                clock: config.clock,
                pgvector,
            }),
        })
    }

    /// Runs `work` in a transaction scoped to `user` (row-level security).
    async fn scoped<T, F>(&self, user: UserId, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        self.inner
            .pool
            .run(move |conn| conn.transaction(Some(&user.0), work))
            .await
    }

    /// Runs `work` on a connection with no user set (system work: accounts
    /// lookups, maintenance). `work` manages its own transactions.
    async fn system<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        self.inner.pool.run(work).await
    }

    /// Whether vectors are stored and compared with pgvector (the server has it).
    pub fn pgvector(&self) -> bool {
        self.inner.pgvector
    }

    /// The store's clock (the workflow tables use it too).
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Runs `work` in a transaction scoped to `user` (the workflow tables).
    pub(crate) async fn scoped_work<T, F>(&self, user: UserId, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        self.scoped(user, work).await
    }

    /// Runs `work` on a connection with no user set (the workflow engine's
    /// system work); `work` manages its own transactions.
    pub(crate) async fn system_work<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        self.system(work).await
    }

    /// The pool (for maintenance work in this crate).
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.inner.pool
    }

    pub(crate) fn partitions(&self) -> &Arc<Partitions> {
        &self.inner.partitions
    }

    /// Wakes feed readers: this process's at once, other processes' through
    /// `NOTIFY`.
    pub(crate) fn wake(&self) {
        self.inner.wake.send_modify(|n| *n += 1);
        self.inner.notifier.poke();
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn execute(&self, request: CommandRequest) -> StoreResult<CommandOutcome> {
        let now = self.inner.clock.now();
        let partitions = Arc::clone(&self.inner.partitions);
        let outcome = self
            .system(move |conn| {
                partitions.ensure(conn, now)?;
                write::execute(conn, &request, now)
            })
            .await?;
        if !outcome.replayed && !outcome.events.is_empty() {
            self.wake();
        }
        Ok(outcome)
    }

    async fn read_events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (user, filter) = (scope.user_id, filter.clone());
        self.scoped(user, move |conn| feed::read_events(conn, &user, &filter))
            .await
    }

    async fn head_position(&self) -> StoreResult<u64> {
        self.system(feed::head_position).await
    }

    fn objects(&self) -> Option<Arc<synap_store::objects::Objects>> {
        self.pool().objects.clone()
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut wake = self.inner.wake.subscribe();
        loop {
            wake.borrow_and_update();
            let head = self.head_position().await?;
            if head > after {
                return Ok(head);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(head);
            }
            // Notifications wake us at once; the poll covers a lost listener
            // connection and events waiting for an older transaction to close.
            let pause = FOREIGN_COMMIT_POLL.min(deadline - now);
            tokio::select! {
                changed = wake.changed() => { if changed.is_err() { return Err(StoreError::Closed); } }
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[async_trait]
impl ReadModel for PostgresStore {
    async fn entity(&self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityView>> {
        let user = scope.user_id;
        self.scoped(user, move |conn| read::entity(conn, &user, id))
            .await
    }

    async fn entity_at(
        &self,
        scope: &Scope,
        id: EntityId,
        as_of: AsOf,
    ) -> StoreResult<Option<EntityView>> {
        let user = scope.user_id;
        self.scoped(user, move |conn| read::entity_at(conn, &user, id, as_of))
            .await
    }

    async fn content(&self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<Content>> {
        let user = scope.user_id;
        self.scoped(user, move |conn| read::content(conn, &user, hash))
            .await
    }

    async fn history(
        &self,
        scope: &Scope,
        id: EntityId,
        page: &PageRequest,
    ) -> StoreResult<Page<StoredEvent>> {
        let (user, page) = (scope.user_id, page.clone());
        self.scoped(user, move |conn| read::history(conn, &user, id, &page))
            .await
    }

    async fn list_entities(
        &self,
        scope: &Scope,
        filter: &EntityFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EntityView>> {
        let (user, filter, page) = (scope.user_id, filter.clone(), page.clone());
        self.scoped(user, move |conn| {
            read::list_entities(conn, &user, &filter, &page)
        })
        .await
    }

    async fn relations(
        &self,
        scope: &Scope,
        id: EntityId,
        direction: Direction,
    ) -> StoreResult<Vec<RelationView>> {
        let user = scope.user_id;
        self.scoped(user, move |conn| {
            read::relations(conn, &user, id, direction)
        })
        .await
    }

    async fn graph(&self, scope: &Scope, request: &GraphRequest) -> StoreResult<Graph> {
        let (user, request) = (scope.user_id, request.clone());
        self.scoped(user, move |conn| read::graph(conn, &user, &request))
            .await
    }

    async fn tags(&self, scope: &Scope) -> StoreResult<Vec<TagCount>> {
        let user = scope.user_id;
        self.scoped(user, move |conn| read::tags(conn, &user)).await
    }

    async fn search(&self, scope: &Scope, request: &SearchRequest) -> StoreResult<Vec<SearchHit>> {
        let (user, request) = (scope.user_id, request.clone());
        self.scoped(user, move |conn| read::search(conn, &user, &request))
            .await
    }
}

#[async_trait]
impl Maintenance for PostgresStore {
    async fn verify(&self, progress: Progress<'_>) -> StoreResult<VerifyReport> {
        admin::verify(self, progress).await
    }

    async fn rebuild(&self, progress: Progress<'_>) -> StoreResult<RebuildReport> {
        admin::rebuild(self, progress).await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        self.system(admin::stats).await
    }
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn local_owner(&self) -> StoreResult<UserSummary> {
        self.system(accounts::local_owner).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserSummary>> {
        self.system(move |conn| accounts::user(conn, id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserSummary>> {
        let email = email.to_string();
        self.system(move |conn| accounts::user_by_email(conn, &email))
            .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<UserSummary> {
        let now = self.inner.clock.now();
        let partitions = Arc::clone(&self.inner.partitions);
        let created = self
            .system(move |conn| {
                partitions.ensure(conn, now)?;
                accounts::create_user(conn, &user, now, Source::Api)
            })
            .await?;
        self.wake();
        Ok(created)
    }

    async fn password_hash(&self, user: UserId) -> StoreResult<Option<String>> {
        self.system(move |conn| accounts::password_hash(conn, user))
            .await
    }

    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_string();
        self.system(move |conn| accounts::set_password_hash(conn, user, &hash))
            .await
    }

    async fn create_token(&self, token: NewToken) -> StoreResult<TokenInfo> {
        let now = self.inner.clock.now();
        let partitions = Arc::clone(&self.inner.partitions);
        let created = self
            .system(move |conn| {
                partitions.ensure(conn, now)?;
                accounts::create_token(conn, &token, now)
            })
            .await?;
        self.wake();
        Ok(created)
    }

    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>> {
        self.system(move |conn| accounts::list_tokens(conn, user))
            .await
    }

    async fn revoke_token(&self, user: UserId, token_id: Uuid) -> StoreResult<bool> {
        let now = self.inner.clock.now();
        let partitions = Arc::clone(&self.inner.partitions);
        let revoked = self
            .system(move |conn| {
                partitions.ensure(conn, now)?;
                accounts::revoke_token(conn, user, token_id, now)
            })
            .await?;
        self.wake();
        Ok(revoked)
    }

    async fn token_by_prefix(&self, prefix: &str) -> StoreResult<Option<TokenCredential>> {
        let prefix = prefix.to_string();
        self.system(move |conn| accounts::token_by_prefix(conn, &prefix))
            .await
    }

    async fn touch_token(&self, token_id: Uuid, at: Timestamp) -> StoreResult<()> {
        self.system(move |conn| accounts::touch_token(conn, token_id, at))
            .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        let now = self.inner.clock.now();
        self.system(move |conn| accounts::create_session(conn, &session, now))
            .await
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let id_hash = id_hash.to_string();
        self.system(move |conn| accounts::session(conn, &id_hash))
            .await
    }

    async fn extend_session(
        &self,
        id_hash: &str,
        expires_at: Timestamp,
        seen_at: Timestamp,
    ) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.system(move |conn| accounts::extend_session(conn, &id_hash, expires_at, seen_at))
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.system(move |conn| accounts::delete_session(conn, &id_hash))
            .await
    }
}
