//! What every command runs with: the opened store, the acting user, and the
//! output. Opening means layering the settings, picking the backend from the
//! database URL (the only place the binary names a backend) and resolving
//! `--user` (default: the local owner).

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::settings::{Database, Overrides, Settings};
use std::sync::Arc;
use synap_domain::{EntityId, EventMetadata, Source};
use synap_store::{CommandOutcome, CommandRequest, EntityView, Scope, Store, Target, UserSummary};
use synap_store_postgres::{PostgresConfig, PostgresStore};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// The store, the acting user and the output of one invocation.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub user: UserSummary,
    pub out: Output,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("user", &self.user)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Layers the settings, opens the store and resolves the acting user.
    pub async fn open(global: &GlobalArgs) -> Result<Context, CliError> {
        let settings = Settings::load(Overrides {
            data_dir: global.data_dir.clone(),
            database_url: global.database_url.clone(),
        })?;
        let store: Arc<dyn Store> = match settings.database()? {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(SqliteConfig::new(path))?),
            Database::Postgres(url) => {
                Arc::new(PostgresStore::open(PostgresConfig::new(url)).await?)
            }
        };
        let user = match &global.user {
            None => store.local_owner().await?,
            Some(email) => store.user_by_email(email).await?.ok_or_else(|| {
                CliError::not_found(format!(
                    "no user {email}; add one with `synap user add {email}`"
                ))
            })?,
        };
        Ok(Context {
            store,
            user,
            out: Output::new(global.json),
        })
    }

    /// The acting user's scope.
    pub fn scope(&self) -> Scope {
        Scope::user(self.user.id)
    }

    /// Provenance of the events this invocation writes.
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            source: Source::Cli,
            actor: Some(self.user.id.to_string()),
            ..Default::default()
        }
    }

    /// Runs one command as the acting user.
    pub async fn execute(&self, target: Target) -> Result<CommandOutcome, CliError> {
        self.execute_expecting(target, None).await
    }

    /// Runs one command that must find its aggregate at `expected_version`.
    pub async fn execute_expecting(
        &self,
        target: Target,
        expected_version: Option<u64>,
    ) -> Result<CommandOutcome, CliError> {
        let request =
            CommandRequest::new(self.scope(), target, self.metadata()).expecting(expected_version);
        Ok(self.store.execute(request).await?)
    }

    /// The current state of an entity (deleted ones included), or "not found".
    pub async fn entity(&self, id: EntityId) -> Result<EntityView, CliError> {
        match self.store.entity(&self.scope(), id).await? {
            Some(view) => Ok(view),
            None => Err(synap_domain::DomainError::EntityNotFound(id).into()),
        }
    }
}
