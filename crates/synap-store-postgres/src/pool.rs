//! Connections: a bounded pool of sync `postgres` clients used on blocking
//! threads, each with its own cache of prepared statements, and the per-connection
//! set-up (the `synap_app` role, so row-level security applies; time limits).

use crate::codec::sql_error;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synap_store::{StoreError, StoreResult};
use tokio::sync::Semaphore;

/// Most prepared statements kept per connection; the cache is cleared when full
/// (dynamic queries, such as searches, come in a bounded number of shapes).
pub const STATEMENT_CACHE_MAX: usize = 256;
/// A transaction left idle this long is ended by the server, so a stuck client
/// can never hold the feed's horizon back for longer.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The role the store works as (created by the migrations when the connecting
/// role may create roles). It is not a superuser and does not bypass row-level
/// security, so the policies apply to every query the store sends.
pub const APP_ROLE: &str = "synap_app";

/// One connection and its prepared statements.
pub struct Conn {
    pub client: Client,
    statements: HashMap<Box<str>, Statement>,
    /// True between `begin` and `commit`/`rollback`.
    in_transaction: bool,
    /// Where bodies over the inline threshold and attachments live; body reads
    /// on this connection resolve object-stored content through it.
    pub objects: Option<std::sync::Arc<synap_store::objects::Objects>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .field("in_transaction", &self.in_transaction)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Opens a connection and sets it up; `app_role` switches to [`APP_ROLE`].
    pub fn connect(url: &str, app_role: bool) -> StoreResult<Conn> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::InvalidInput(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("synap");
        }
        // The driver's message names the failure, never the password.
        let mut client = config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {}; SET TIME ZONE 'UTC'",
                IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
            ))
            .map_err(sql_error)?;
        if app_role {
            client
                .batch_execute(&format!("SET ROLE {APP_ROLE}"))
                .map_err(sql_error)?;
        }
        Ok(Conn {
            client,
            statements: HashMap::new(),
            in_transaction: false,
            objects: None,
        })
    }

    /// The prepared statement for `sql`, preparing it on first use.
    pub fn statement(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(sql_error)?;
        if self.statements.len() >= STATEMENT_CACHE_MAX {
            self.statements.clear();
        }
        self.statements.insert(sql.into(), statement.clone());
        Ok(statement)
    }

    pub fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(sql_error)
    }

    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Option<Row>> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(sql_error)
    }

    pub fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Row> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params).map_err(sql_error)
    }

    pub fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(sql_error)
    }

    /// Like [`Conn::execute`] but keeps the driver's error, for callers that turn
    /// particular errors (a uniqueness violation) into their own.
    pub fn execute_raw(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client.prepare(sql)?;
                if self.statements.len() >= STATEMENT_CACHE_MAX {
                    self.statements.clear();
                }
                self.statements.insert(sql.into(), statement.clone());
                statement
            }
        };
        self.client.execute(&statement, params)
    }

    /// Like [`Conn::query_one`] but keeps the driver's error, for callers that turn
    /// particular errors (a uniqueness violation) into their own.
    pub fn query_raw_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client.prepare(sql)?;
                if self.statements.len() >= STATEMENT_CACHE_MAX {
                    self.statements.clear();
                }
                self.statements.insert(sql.into(), statement.clone());
                statement
            }
        };
        self.client.query_one(&statement, params)
    }

    /// Starts a transaction (READ COMMITTED: every write locks what it depends on).
    pub fn begin(&mut self) -> StoreResult<()> {
        self.client.batch_execute("BEGIN").map_err(sql_error)?;
        self.in_transaction = true;
        Ok(())
    }

    /// Starts a transaction scoped to `user` (row-level security), in one round
    /// trip.
    pub fn begin_as(&mut self, user: &uuid::Uuid) -> StoreResult<()> {
        // A formatted UUID is hex and dashes only: safe to inline. `SET LOCAL` is
        // a utility statement: unlike `SELECT set_config(…)` it is not planned,
        // which saved about 8 µs per transaction.
        self.client
            .batch_execute(&format!("BEGIN; SET LOCAL synap.user_id = '{user}'"))
            .map_err(sql_error)?;
        self.in_transaction = true;
        Ok(())
    }

    /// Starts a read-only transaction that sees one snapshot throughout.
    pub fn begin_snapshot(&mut self) -> StoreResult<()> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(sql_error)?;
        self.in_transaction = true;
        Ok(())
    }

    pub fn commit(&mut self) -> StoreResult<()> {
        self.in_transaction = false;
        self.client.batch_execute("COMMIT").map_err(sql_error)
    }

    pub fn rollback(&mut self) -> StoreResult<()> {
        self.in_transaction = false;
        self.client.batch_execute("ROLLBACK").map_err(sql_error)
    }

    /// Runs `work` in a transaction scoped to `user` (or unscoped for `None`):
    /// commits on `Ok`, rolls back on `Err`.
    pub fn transaction<T>(
        &mut self,
        user: Option<&uuid::Uuid>,
        work: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match user {
            Some(user) => self.begin_as(user)?,
            None => self.begin()?,
        }
        let result = work(self);
        self.finish(result)
    }

    /// An unscoped transaction that commits without waiting for its WAL flush
    /// (`SET LOCAL synchronous_commit = off`, sent with `BEGIN` in one round
    /// trip): for writes that may be lost in a crash because they are done again
    /// (the workflow engine's bookkeeping; see `workflow::relax_commit`).
    pub fn relaxed_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.client
            .batch_execute("BEGIN; SET LOCAL synchronous_commit = off")
            .map_err(sql_error)?;
        self.in_transaction = true;
        let result = work(self);
        self.finish(result)
    }

    /// Commits on `Ok`, rolls back on `Err`.
    fn finish<T>(&mut self, result: StoreResult<T>) -> StoreResult<T> {
        match result {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.rollback();
                Err(error)
            }
        }
    }
}

/// A bounded pool of connections. Work runs on tokio's blocking threads.
pub struct Pool {
    url: String,
    app_role: bool,
    /// Handed to every connection (see [`Conn::objects`]).
    pub objects: Option<std::sync::Arc<synap_store::objects::Objects>>,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Drop for Pool {
    /// A `postgres::Client` closes its connection by blocking on its own runtime,
    /// which panics on a thread that drives async tasks — where the last handle to
    /// a store is usually dropped. Idle connections are closed on a plain thread.
    fn drop(&mut self) {
        let idle = match self.idle.get_mut() {
            Ok(idle) => std::mem::take(idle),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("synap-pool-close".into())
                .spawn(move || drop(idle));
        }
    }
}

impl Pool {
    pub fn new(url: String, app_role: bool, size: usize) -> Pool {
        Pool {
            url,
            app_role,
            objects: None,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether connections work as [`APP_ROLE`].
    pub fn app_role(&self) -> bool {
        self.app_role
    }

    /// Runs `work` with a pooled connection on a blocking thread. A connection
    /// that broke, or was left inside a transaction, is not reused.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match pool.idle.lock().map(|mut idle| idle.pop()) {
                Ok(Some(conn)) => conn,
                _ => {
                    let mut conn = Conn::connect(&pool.url, pool.app_role)?;
                    conn.objects = pool.objects.clone();
                    conn
                }
            };
            let result = work(&mut conn);
            if conn.in_transaction {
                let _ = conn.rollback();
            }
            if !conn.client.is_closed()
                && let Ok(mut idle) = pool.idle.lock()
            {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a database task failed: {e}")))?
    }
}
