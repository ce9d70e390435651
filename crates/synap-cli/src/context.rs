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
use synap_store::objects::Objects;
use synap_store::{CommandOutcome, CommandRequest, EntityView, Scope, Store, Target, UserSummary};
use synap_store_postgres::{PostgresConfig, PostgresStore};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// The store, the acting user and the output of one invocation.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub user: UserSummary,
    pub out: Output,
    /// The largest attachment `synap attach` takes (`SYNAP_ATTACHMENT_LIMIT`).
    pub attachment_limit_bytes: u64,
    /// Whether `synap webhook add` accepts private targets
    /// (`SYNAP_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
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
        let objects = open_objects(&settings).await?;
        let store: Arc<dyn Store> = match settings.database()? {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(SqliteConfig {
                objects: Some(objects),
                ..SqliteConfig::new(path)
            })?),
            Database::Postgres(url) => Arc::new(
                PostgresStore::open(PostgresConfig {
                    objects: Some(objects),
                    ..PostgresConfig::new(url)
                })
                .await?,
            ),
        };
        let user = match &global.user {
            None => store.local_owner().await?,
            Some(email) => store.user_by_email(email).await?.ok_or_else(|| {
                CliError::not_found(format!(
                    "no user {email}; add one with `synap user add {email}`"
                ))
            })?,
        };
        let attachment_limit_bytes = settings
            .server_config(&crate::settings::ServeFlags::default(), &|name| {
                std::env::var(name).ok()
            })?
            .attachment_limit_bytes;
        let webhook_allow_private =
            crate::settings::webhook_config(&|name| std::env::var(name).ok())?.allow_private;
        Ok(Context {
            store,
            user,
            out: Output::new(global.json),
            attachment_limit_bytes,
            webhook_allow_private,
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

/// Opens the configured object store, checking that it answers (a wrong bucket,
/// endpoint or credentials is one line here, not a failure on the first upload).
pub async fn open_objects(settings: &Settings) -> Result<Arc<Objects>, CliError> {
    let (config, inline_bytes_max) = settings.object_store(&|name| std::env::var(name).ok())?;
    let opened = tokio::task::spawn_blocking(move || Objects::open(&config, inline_bytes_max))
        .await
        .map_err(|e| CliError::error(format!("opening the object store failed: {e}")))?;
    opened
        .map(Arc::new)
        .map_err(|e| CliError::error(e.to_string()))
}
