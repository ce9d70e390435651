//! Settings: one typed struct, [`Settings`], whose `Default` is the only place a
//! default is written. Layers, later ones winning: defaults → the optional
//! `<data-dir>/synap.toml` → `SYNAP_*` environment → flags. Clap reads the last two
//! (`env =` on each flag) into [`Overrides`]; this module puts the file in between.

use crate::error::CliError;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use synap_server::ServerConfig;
use synap_server::config::{Environment, IpBlock, parse_byte_size, parse_rate_limit};
use synap_store::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectStoreConfig, S3Config, Secret};

/// The name of the settings file inside the data directory.
pub const SETTINGS_FILE: &str = "synap.toml";

/// Every setting the CLI uses, after layering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The data directory: the embedded database and the settings file live here.
    pub data_dir: PathBuf,
    /// The database. `None` means the embedded database inside the data directory
    /// (see [`Settings::database`]), so it follows `data_dir` wherever that is set.
    pub database_url: Option<DatabaseUrl>,
    /// The file name of the embedded database inside `data_dir`.
    pub database_file: &'static str,
    /// The server keys of the settings file (`synap serve`); the defaults are
    /// `ServerConfig::default()`, see [`Settings::server_config`].
    pub server: ServerFileSettings,
    /// The object store keys of the settings file; see [`Settings::object_store`].
    pub objects: ObjectFileSettings,
    /// The workflow and AI keys of the settings file; see [`Settings::workflows`].
    pub workflows: WorkflowFileSettings,
}

/// The workflow and AI keys of `synap.toml` (`ai_provider = "openai"`, …), kept for
/// [`Settings::workflows`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowFileSettings {
    pub workers: Option<String>,
    pub workflow_lease: Option<String>,
    pub workflow_retention: Option<String>,
    pub time_zone: Option<String>,
    pub ai_provider: Option<String>,
    pub ai_model: Option<String>,
    pub ai_base_url: Option<String>,
    pub ai_api_key: Option<Secret>,
    pub ai_timeout_ms: Option<String>,
    pub embedding_provider: Option<String>,
    pub embedding_model_dir: Option<String>,
    pub embedding_model: Option<String>,
    pub embedding_base_url: Option<String>,
    pub embedding_api_key: Option<Secret>,
    pub embedding_dimensions: Option<String>,
    pub embedding_timeout_ms: Option<String>,
}

/// Workers `synap serve` starts unless `SYNAP_WORKERS` says otherwise (`0`: none,
/// for deployments that run `synap worker` processes instead).
pub const SERVE_WORKERS_DEFAULT: usize = 1;

/// How long finished workflow runs (and their steps) are kept unless
/// `SYNAP_WORKFLOW_RETENTION` says otherwise.
pub const RETENTION_DEFAULT: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// How this process runs workflows.
#[derive(Debug, Clone)]
pub struct WorkflowSettings {
    pub workers: usize,
    /// How long a worker that stops answering keeps its runs.
    pub lease: std::time::Duration,
    /// How long finished runs are kept; `None`: for ever.
    pub retention: Option<std::time::Duration>,
    pub time_zone: jiff::tz::TimeZone,
    pub analyzer: synap_ai::AnalyzerConfig,
    /// The embedding model for semantic search (provider `none` by default).
    pub embedding: synap_ai::EmbeddingConfig,
    /// How webhook deliveries behave.
    pub webhooks: synap_flows::webhooks::WebhookConfig,
}

/// The object store keys of `synap.toml` (`object_store = "s3"`, `s3_bucket`, …),
/// kept for [`Settings::object_store`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFileSettings {
    pub object_store: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
    pub inline_body_limit: Option<String>,
}

/// The S3 region when none is configured.
pub const S3_REGION_DEFAULT: &str = "us-east-1";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./synap-data"),
            database_url: None,
            database_file: "synap.db",
            server: ServerFileSettings::default(),
            objects: ObjectFileSettings::default(),
            workflows: WorkflowFileSettings::default(),
        }
    }
}

/// What clap found in flags and `SYNAP_*` variables (flags win over variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// `synap.toml`. Every key is optional; unknown keys are refused so a typo is seen.
/// `data_dir` is not a key: the file is found through it. The server keys are
/// named like their `SYNAP_*` variables (`rate_limit_user = "6000/15m"`); the
/// two lists are TOML arrays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub env: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allow_registration: Option<bool>,
    pub rate_limit_anonymous: Option<String>,
    pub rate_limit_user: Option<String>,
    pub body_limit: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub attachment_limit: Option<String>,
    pub object_store: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub inline_body_limit: Option<String>,
    pub workers: Option<u32>,
    pub workflow_lease: Option<String>,
    pub workflow_retention: Option<String>,
    pub time_zone: Option<String>,
    pub ai_provider: Option<String>,
    pub ai_model: Option<String>,
    pub ai_base_url: Option<String>,
    pub ai_api_key: Option<String>,
    pub ai_timeout_ms: Option<u64>,
    pub embedding_provider: Option<String>,
    pub embedding_model_dir: Option<String>,
    pub embedding_model: Option<String>,
    pub embedding_base_url: Option<String>,
    pub embedding_api_key: Option<String>,
    pub embedding_dimensions: Option<u32>,
    pub embedding_timeout_ms: Option<u64>,
}

/// The server keys of `synap.toml`, kept for [`Settings::server_config`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFileSettings {
    pub listen: Option<String>,
    pub env: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allow_registration: Option<bool>,
    pub rate_limit_anonymous: Option<String>,
    pub rate_limit_user: Option<String>,
    pub body_limit: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub attachment_limit: Option<String>,
}

/// What `synap serve` got from its flags, or from the variables clap reads for
/// them (`SYNAP_LISTEN`, `SYNAP_ENV`, `SYNAP_ALLOW_REGISTRATION`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeFlags {
    pub listen: Option<String>,
    pub env: Option<String>,
    pub allow_registration: Option<bool>,
}

/// `true`/`false` as people write them in variables and files.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// A comma list with blanks dropped (`a, b,` is `[a, b]`).
fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// `30s`, `2m`, `1h` or a bare number of seconds.
fn humantime_seconds(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3_600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}

/// The first of (variable, file key) that is set, with the name to blame.
fn layered(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    file: Option<String>,
    key: &'static str,
) -> Option<(String, String)> {
    match env(variable) {
        Some(value) => Some((value, variable.to_string())),
        None => file.map(|value| (value, format!("{SETTINGS_FILE} key {key}"))),
    }
}

fn invalid(source: &str, message: impl fmt::Display) -> CliError {
    CliError::usage(format!("{source}: {message}"))
}

/// A database URL. Its `Debug` hides credentials, which URLs of server databases carry.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                write!(f, "DatabaseUrl({scheme}://<redacted>)")
            }
            _ => write!(f, "DatabaseUrl({:?})", self.0),
        }
    }
}

/// The database a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded database in this file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL as given, credentials included).
    Postgres(String),
}

impl Database {
    /// The backend's name, as `/health` and the start-up line show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

impl Settings {
    /// Layers defaults, the settings file and the overrides.
    pub fn load(overrides: Overrides) -> Result<Settings, CliError> {
        let mut settings = Settings::default();
        if let Some(data_dir) = &overrides.data_dir {
            settings.data_dir.clone_from(data_dir);
        }
        let file = FileSettings::read(&settings.data_dir.join(SETTINGS_FILE))?;
        Ok(settings.with_file(file).with_overrides(overrides))
    }

    fn with_file(mut self, file: FileSettings) -> Self {
        if let Some(url) = file.database_url {
            self.database_url = Some(DatabaseUrl(url));
        }
        self.server = ServerFileSettings {
            listen: file.listen,
            env: file.env,
            allowed_origins: file.allowed_origins,
            allow_registration: file.allow_registration,
            rate_limit_anonymous: file.rate_limit_anonymous,
            rate_limit_user: file.rate_limit_user,
            body_limit: file.body_limit,
            trusted_proxies: file.trusted_proxies,
            attachment_limit: file.attachment_limit,
        };
        self.objects = ObjectFileSettings {
            object_store: file.object_store,
            s3_bucket: file.s3_bucket,
            s3_endpoint: file.s3_endpoint,
            s3_region: file.s3_region,
            s3_access_key_id: file.s3_access_key_id,
            s3_secret_access_key: file.s3_secret_access_key.map(Secret),
            inline_body_limit: file.inline_body_limit,
        };
        self.workflows = WorkflowFileSettings {
            workers: file.workers.map(|n| n.to_string()),
            workflow_lease: file.workflow_lease,
            workflow_retention: file.workflow_retention,
            time_zone: file.time_zone,
            ai_provider: file.ai_provider,
            ai_model: file.ai_model,
            ai_base_url: file.ai_base_url,
            ai_api_key: file.ai_api_key.map(Secret),
            ai_timeout_ms: file.ai_timeout_ms.map(|ms| ms.to_string()),
            embedding_provider: file.embedding_provider,
            embedding_model_dir: file.embedding_model_dir,
            embedding_model: file.embedding_model,
            embedding_base_url: file.embedding_base_url,
            embedding_api_key: file.embedding_api_key.map(Secret),
            embedding_dimensions: file.embedding_dimensions.map(|n| n.to_string()),
            embedding_timeout_ms: file.embedding_timeout_ms.map(|ms| ms.to_string()),
        };
        self
    }

    fn with_overrides(mut self, overrides: Overrides) -> Self {
        if let Some(data_dir) = overrides.data_dir {
            self.data_dir = data_dir;
        }
        if let Some(url) = overrides.database_url {
            self.database_url = Some(DatabaseUrl(url));
        }
        self
    }

    /// The server's configuration: `ServerConfig::default()` → the settings file →
    /// `SYNAP_*` variables (looked up with `env`) → `flags`. A value that does not
    /// parse is a usage error naming where it came from.
    pub fn server_config(
        &self,
        flags: &ServeFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, CliError> {
        let mut config = ServerConfig::default();
        let file = self.server.clone();

        let listen = match &flags.listen {
            Some(value) => Some((value.clone(), "--listen / SYNAP_LISTEN".to_string())),
            None => file
                .listen
                .map(|value| (value, format!("{SETTINGS_FILE} key listen"))),
        };
        if let Some((value, source)) = listen {
            config.listen = value.trim().parse().map_err(|_| {
                invalid(
                    &source,
                    format!("{value:?} is not an address like 127.0.0.1:3000"),
                )
            })?;
        }

        let environment = match &flags.env {
            Some(value) => Some((value.clone(), "--env / SYNAP_ENV".to_string())),
            None => file
                .env
                .map(|value| (value, format!("{SETTINGS_FILE} key env"))),
        };
        if let Some((value, source)) = environment {
            config.environment = value
                .parse::<Environment>()
                .map_err(|e| invalid(&source, e))?;
        }

        if let Some(allow) = flags.allow_registration.or(file.allow_registration) {
            config.allow_registration = allow;
        }

        let origins = match env("SYNAP_ALLOWED_ORIGINS") {
            Some(value) => Some(comma_list(&value)),
            None => file.allowed_origins,
        };
        if let Some(origins) = origins {
            config.allowed_origins = Some(origins);
        }

        if let Some((value, source)) = layered(
            env,
            "SYNAP_RATE_LIMIT_ANONYMOUS",
            file.rate_limit_anonymous,
            "rate_limit_anonymous",
        ) {
            config.rate_limit_anonymous =
                parse_rate_limit(&value).map_err(|e| invalid(&source, e))?;
        }
        if let Some((value, source)) = layered(
            env,
            "SYNAP_RATE_LIMIT_USER",
            file.rate_limit_user,
            "rate_limit_user",
        ) {
            config.rate_limit_user = parse_rate_limit(&value).map_err(|e| invalid(&source, e))?;
        }
        if let Some((value, source)) =
            layered(env, "SYNAP_BODY_LIMIT", file.body_limit, "body_limit")
        {
            config.body_limit_bytes = parse_byte_size(&value).map_err(|e| invalid(&source, e))?;
        }
        if let Some((value, source)) = layered(
            env,
            "SYNAP_ATTACHMENT_LIMIT",
            file.attachment_limit,
            "attachment_limit",
        ) {
            config.attachment_limit_bytes =
                parse_byte_size(&value).map_err(|e| invalid(&source, e))? as u64;
        }

        let proxies = match env("SYNAP_TRUSTED_PROXIES") {
            Some(value) => Some((comma_list(&value), "SYNAP_TRUSTED_PROXIES".to_string())),
            None => file
                .trusted_proxies
                .map(|list| (list, format!("{SETTINGS_FILE} key trusted_proxies"))),
        };
        if let Some((list, source)) = proxies {
            config.trusted_proxies = list
                .iter()
                .map(|item| item.parse::<IpBlock>())
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(&source, e))?;
        }
        Ok(config)
    }

    /// The object store these settings select, and the inline body threshold:
    /// `{data_dir}/objects` unless `SYNAP_OBJECT_STORE` (or the file's
    /// `object_store`) says `s3`, which needs a bucket and credentials.
    pub fn object_store(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(ObjectStoreConfig, usize), CliError> {
        let file = self.objects.clone();
        let inline = match layered(
            env,
            "SYNAP_INLINE_BODY_LIMIT",
            file.inline_body_limit,
            "inline_body_limit",
        ) {
            Some((value, source)) => parse_byte_size(&value).map_err(|e| invalid(&source, e))?,
            None => INLINE_BODY_BYTES_MAX_DEFAULT,
        };
        let kind = layered(env, "SYNAP_OBJECT_STORE", file.object_store, "object_store");
        let config = match kind
            .as_ref()
            .map(|(v, s)| (v.trim().to_ascii_lowercase(), s))
        {
            None => ObjectStoreConfig::in_data_dir(&self.data_dir),
            Some((kind, _)) if kind == "fs" => ObjectStoreConfig::in_data_dir(&self.data_dir),
            Some((kind, _)) if kind == "s3" => {
                let required = |variable: &'static str,
                                value: Option<String>,
                                key: &'static str| {
                    layered(env, variable, value, key)
                        .map(|(value, _)| value)
                        .filter(|value| !value.trim().is_empty())
                        .ok_or_else(|| {
                            CliError::usage(format!(
                                "SYNAP_OBJECT_STORE=s3 needs {variable} (or `{key}` in {SETTINGS_FILE})"
                            ))
                        })
                };
                ObjectStoreConfig::S3(S3Config {
                    bucket: required("SYNAP_S3_BUCKET", file.s3_bucket, "s3_bucket")?,
                    endpoint: layered(env, "SYNAP_S3_ENDPOINT", file.s3_endpoint, "s3_endpoint")
                        .map(|(value, _)| value),
                    region: layered(env, "SYNAP_S3_REGION", file.s3_region, "s3_region")
                        .map_or_else(|| S3_REGION_DEFAULT.to_string(), |(value, _)| value),
                    access_key_id: required(
                        "SYNAP_S3_ACCESS_KEY_ID",
                        file.s3_access_key_id,
                        "s3_access_key_id",
                    )?,
                    secret_access_key: Secret(required(
                        "SYNAP_S3_SECRET_ACCESS_KEY",
                        file.s3_secret_access_key.map(|s| s.0),
                        "s3_secret_access_key",
                    )?),
                })
            }
            Some((other, source)) => {
                return Err(invalid(source, format!("{other:?} is not fs or s3")));
            }
        };
        Ok((config, inline))
    }

    /// The workflow settings: workers per process (`SYNAP_WORKERS`, default
    /// [`SERVE_WORKERS_DEFAULT`]), their lease (`SYNAP_WORKFLOW_LEASE`, default 30 s),
    /// how long finished runs are kept (`SYNAP_WORKFLOW_RETENTION`, default 30 days,
    /// `0` for ever), the time zone captured dates resolve in
    /// (`SYNAP_TIME_ZONE`, an IANA name; default the system's, else UTC), and the
    /// analyzer of `capture.enrich` (`SYNAP_AI_PROVIDER` local|anthropic|openai,
    /// `SYNAP_AI_MODEL`, `SYNAP_AI_BASE_URL`, `SYNAP_AI_API_KEY`,
    /// `SYNAP_AI_TIMEOUT_MS`), and the embedding model of semantic search
    /// (`SYNAP_EMBEDDING_PROVIDER` none|local|openai, `SYNAP_EMBEDDING_MODEL_DIR`,
    /// `SYNAP_EMBEDDING_MODEL`, `SYNAP_EMBEDDING_BASE_URL`,
    /// `SYNAP_EMBEDDING_API_KEY`, `SYNAP_EMBEDDING_DIMENSIONS`,
    /// `SYNAP_EMBEDDING_TIMEOUT_MS`). The providers check what they need when built.
    pub fn workflows(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<WorkflowSettings, CliError> {
        let file = self.workflows.clone();
        let workers = match layered(env, "SYNAP_WORKERS", file.workers, "workers") {
            Some((value, source)) => match value.trim().parse::<usize>() {
                Ok(n) if n <= synap_workflow::engine::WORKERS_MAX => n,
                _ => {
                    return Err(invalid(
                        &source,
                        format!(
                            "{value:?} is not a number of workers from 0 to {}",
                            synap_workflow::engine::WORKERS_MAX
                        ),
                    ));
                }
            },
            None => SERVE_WORKERS_DEFAULT,
        };
        let lease = match layered(
            env,
            "SYNAP_WORKFLOW_LEASE",
            file.workflow_lease,
            "workflow_lease",
        ) {
            Some((value, source)) => {
                let lease = humantime_seconds(&value)
                    .filter(|lease| !lease.is_zero() && *lease <= synap_store::workflow::LEASE_MAX);
                lease.ok_or_else(|| {
                    invalid(
                        &source,
                        format!(
                            "{value:?} is not a lease like 30s or 2m (at most {} s)",
                            synap_store::workflow::LEASE_MAX.as_secs()
                        ),
                    )
                })?
            }
            None => synap_workflow::engine::LEASE_DEFAULT,
        };
        let retention = match layered(
            env,
            "SYNAP_WORKFLOW_RETENTION",
            file.workflow_retention,
            "workflow_retention",
        ) {
            Some((value, source)) => match humantime_seconds(&value) {
                Some(keep) if keep.is_zero() => None,
                Some(keep) => Some(keep),
                None => {
                    return Err(invalid(
                        &source,
                        format!(
                            "{value:?} is not a retention like 30d or 12h (0 keeps runs for ever)"
                        ),
                    ));
                }
            },
            None => Some(RETENTION_DEFAULT),
        };
        let time_zone = match layered(env, "SYNAP_TIME_ZONE", file.time_zone, "time_zone") {
            Some((name, source)) => jiff::tz::TimeZone::get(name.trim()).map_err(|e| {
                invalid(
                    &source,
                    format!("{name:?} is not a time zone name like Europe/Berlin: {e}"),
                )
            })?,
            None => jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        };
        let mut analyzer = synap_ai::AnalyzerConfig::default();
        if let Some((value, source)) =
            layered(env, "SYNAP_AI_PROVIDER", file.ai_provider, "ai_provider")
        {
            analyzer.provider = value.parse().map_err(|e: String| invalid(&source, e))?;
        }
        analyzer.model = layered(env, "SYNAP_AI_MODEL", file.ai_model, "ai_model").map(|(v, _)| v);
        analyzer.base_url =
            layered(env, "SYNAP_AI_BASE_URL", file.ai_base_url, "ai_base_url").map(|(v, _)| v);
        analyzer.api_key = layered(
            env,
            "SYNAP_AI_API_KEY",
            file.ai_api_key.map(|s| s.0),
            "ai_api_key",
        )
        .map(|(v, _)| synap_ai::ApiKey::new(v));
        if let Some((value, source)) = layered(
            env,
            "SYNAP_AI_TIMEOUT_MS",
            file.ai_timeout_ms,
            "ai_timeout_ms",
        ) {
            analyzer.timeout_ms = value.trim().parse().map_err(|_| {
                invalid(
                    &source,
                    format!("{value:?} is not a number of milliseconds"),
                )
            })?;
        }
        let embedding = embedding_config(env, &self.workflows)?;
        let webhooks = webhook_config(env)?;
        Ok(WorkflowSettings {
            workers,
            lease,
            retention,
            time_zone,
            analyzer,
            embedding,
            webhooks,
        })
    }

    /// The database these settings select.
    pub fn database(&self) -> Result<Database, CliError> {
        match &self.database_url {
            Some(url) => parse_database_url(&url.0),
            None => Ok(Database::Sqlite(self.data_dir.join(self.database_file))),
        }
    }
}

/// The webhook delivery variables: `SYNAP_WEBHOOK_ALLOW_PRIVATE` (deliver to
/// loopback and private addresses too; default off), `SYNAP_WEBHOOK_TIMEOUT_MS`
/// and `SYNAP_WEBHOOK_DISABLE_AFTER` (failed attempts in a row that disable a
/// subscription).
pub fn webhook_config(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<synap_flows::webhooks::WebhookConfig, CliError> {
    let mut config = synap_flows::webhooks::WebhookConfig::default();
    if let Some(value) = env("SYNAP_WEBHOOK_ALLOW_PRIVATE") {
        config.allow_private =
            parse_bool(&value).map_err(|e| invalid("SYNAP_WEBHOOK_ALLOW_PRIVATE", e))?;
    }
    if let Some(value) = env("SYNAP_WEBHOOK_TIMEOUT_MS") {
        let ms: u64 = value
            .trim()
            .parse()
            .ok()
            .filter(|ms| (1..=600_000).contains(ms))
            .ok_or_else(|| {
                invalid(
                    "SYNAP_WEBHOOK_TIMEOUT_MS",
                    format!("{value:?} is not a number of milliseconds from 1 to 600000"),
                )
            })?;
        config.timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(value) = env("SYNAP_WEBHOOK_DISABLE_AFTER") {
        config.disable_after = value
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                invalid(
                    "SYNAP_WEBHOOK_DISABLE_AFTER",
                    format!("{value:?} is not a number of failed attempts from 1 to 10000"),
                )
            })?;
    }
    Ok(config)
}

/// The embedding keys of [`Settings::workflows`].
fn embedding_config(
    env: &dyn Fn(&str) -> Option<String>,
    file: &WorkflowFileSettings,
) -> Result<synap_ai::EmbeddingConfig, CliError> {
    let file = file.clone();
    let mut config = synap_ai::EmbeddingConfig::default();
    if let Some((value, source)) = layered(
        env,
        "SYNAP_EMBEDDING_PROVIDER",
        file.embedding_provider,
        "embedding_provider",
    ) {
        config.provider = value.parse().map_err(|e: String| invalid(&source, e))?;
    }
    config.model_dir = layered(
        env,
        "SYNAP_EMBEDDING_MODEL_DIR",
        file.embedding_model_dir,
        "embedding_model_dir",
    )
    .map(|(v, _)| PathBuf::from(v));
    config.model = layered(
        env,
        "SYNAP_EMBEDDING_MODEL",
        file.embedding_model,
        "embedding_model",
    )
    .map(|(v, _)| v);
    config.base_url = layered(
        env,
        "SYNAP_EMBEDDING_BASE_URL",
        file.embedding_base_url,
        "embedding_base_url",
    )
    .map(|(v, _)| v);
    config.api_key = layered(
        env,
        "SYNAP_EMBEDDING_API_KEY",
        file.embedding_api_key.map(|s| s.0),
        "embedding_api_key",
    )
    .map(|(v, _)| synap_ai::ApiKey::new(v));
    if let Some((value, source)) = layered(
        env,
        "SYNAP_EMBEDDING_DIMENSIONS",
        file.embedding_dimensions,
        "embedding_dimensions",
    ) {
        config.dimensions = Some(value.trim().parse().map_err(|_| {
            invalid(
                &source,
                format!("{value:?} is not a vector length like 1536"),
            )
        })?);
    }
    if let Some((value, source)) = layered(
        env,
        "SYNAP_EMBEDDING_TIMEOUT_MS",
        file.embedding_timeout_ms,
        "embedding_timeout_ms",
    ) {
        config.timeout_ms = value.trim().parse().map_err(|_| {
            invalid(
                &source,
                format!("{value:?} is not a number of milliseconds"),
            )
        })?;
    }
    Ok(config)
}

impl FileSettings {
    /// Reads the settings file; a missing file is an empty one.
    pub fn read(path: &Path) -> Result<FileSettings, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileSettings::default());
            }
            Err(error) => {
                return Err(CliError::error(format!(
                    "cannot read {}: {error}",
                    path.display()
                )));
            }
        };
        toml::from_str(&text).map_err(|error| {
            let reason = error.message().to_string();
            CliError::error(format!(
                "{} is not valid: {reason}; fix or remove it",
                path.display()
            ))
        })
    }
}

/// `sqlite://PATH` (or `sqlite:PATH`) selects that file; `postgres://…` (or
/// `postgresql://…`) selects a PostgreSQL database.
pub fn parse_database_url(url: &str) -> Result<Database, CliError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(CliError::usage(
                "the database URL sqlite:// names no file; use sqlite://PATH",
            ));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    // Only the scheme is echoed: the rest of a URL can hold a password.
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    Err(CliError::usage(format!(
        "unsupported database URL scheme {scheme:?}; use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    #[test]
    fn workflow_retention_defaults_to_30_days_and_0_keeps_runs_for_ever() {
        let retention = |value: Option<&'static str>| {
            let env = move |name: &str| {
                (name == "SYNAP_WORKFLOW_RETENTION")
                    .then_some(value)
                    .flatten()
            };
            Settings::default()
                .workflows(&|name| env(name).map(str::to_string))
                .map(|settings| settings.retention)
        };
        assert_eq!(retention(None).ok(), Some(Some(RETENTION_DEFAULT)));
        assert_eq!(
            RETENTION_DEFAULT,
            std::time::Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(retention(Some("0")).ok(), Some(None));
        assert_eq!(
            retention(Some("7d")).ok(),
            Some(Some(std::time::Duration::from_secs(7 * 24 * 3600)))
        );
        let bad = retention(Some("a month")).expect_err("not a duration");
        assert_eq!(bad.exit, Exit::Usage);
        assert!(
            bad.message.starts_with("SYNAP_WORKFLOW_RETENTION: ") && bad.message.contains("30d"),
            "{}",
            bad.message
        );
    }

    #[test]
    fn the_default_database_follows_the_data_dir() {
        let settings = Settings::default();
        assert_eq!(
            settings.database().ok(),
            Some(Database::Sqlite(PathBuf::from("./synap-data/synap.db")))
        );
        let moved = Settings::default().with_overrides(Overrides {
            data_dir: Some(PathBuf::from("/tmp/x")),
            database_url: None,
        });
        assert_eq!(
            moved.database().ok(),
            Some(Database::Sqlite(PathBuf::from("/tmp/x/synap.db")))
        );
    }

    #[test]
    fn overrides_win_over_the_file_which_wins_over_defaults() {
        let file = FileSettings {
            database_url: Some("sqlite:///from/file.db".into()),
            ..FileSettings::default()
        };
        let from_file = Settings::default().with_file(file.clone());
        assert_eq!(
            from_file.database().ok(),
            Some(Database::Sqlite(PathBuf::from("/from/file.db")))
        );
        let overridden = Settings::default()
            .with_file(file)
            .with_overrides(Overrides {
                data_dir: None,
                database_url: Some("sqlite://flag.db".into()),
            });
        assert_eq!(
            overridden.database().ok(),
            Some(Database::Sqlite(PathBuf::from("flag.db")))
        );
    }

    #[test]
    fn postgres_urls_select_postgres_and_unknown_schemes_are_usage_errors() {
        assert_eq!(
            parse_database_url("postgres://u:secret@host/db").ok(),
            Some(Database::Postgres("postgres://u:secret@host/db".into()))
        );
        assert_eq!(
            parse_database_url("postgresql://host/db")
                .map(|d| d.kind())
                .ok(),
            Some("postgres")
        );
        let error = parse_database_url("mysql://u:secret@x")
            .err()
            .map(|e| (e.exit, e.message));
        let (exit, message) = error.unwrap_or((Exit::Success, String::new()));
        assert_eq!(exit, Exit::Usage);
        assert!(!message.contains("secret"));
    }

    #[test]
    fn debug_hides_credentials() {
        let url = DatabaseUrl("postgres://u:secret@host/db".into());
        assert!(!format!("{url:?}").contains("secret"));
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_server_defaults_are_the_server_crates() {
        let config = Settings::default()
            .server_config(&ServeFlags::default(), &no_env)
            .expect("the defaults are valid");
        let defaults = ServerConfig::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.environment, Environment::Development);
        assert!(!config.allow_registration);
        assert_eq!(config.rate_limit_anonymous, defaults.rate_limit_anonymous);
        assert_eq!(config.body_limit_bytes, 10 * 1024 * 1024);
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(config.allowed_origins, None);
    }

    #[test]
    fn server_settings_layer_file_then_environment_then_flags() {
        let file = FileSettings {
            listen: Some("127.0.0.1:4000".into()),
            env: Some("production".into()),
            allowed_origins: Some(vec!["https://from.file".into()]),
            allow_registration: Some(true),
            rate_limit_anonymous: Some("10/1m".into()),
            rate_limit_user: Some("off".into()),
            body_limit: Some("1MiB".into()),
            trusted_proxies: Some(vec!["10.0.0.0/8".into()]),
            ..FileSettings::default()
        };
        let settings = Settings::default().with_file(file);
        let from_file = settings
            .server_config(&ServeFlags::default(), &no_env)
            .expect("the file is valid");
        assert_eq!(from_file.listen.port(), 4000);
        assert!(from_file.is_production());
        assert!(from_file.allow_registration);
        assert_eq!(from_file.cors_origins(), ["https://from.file"]);
        assert_eq!(from_file.rate_limit_user, None);
        assert_eq!(from_file.body_limit_bytes, 1024 * 1024);
        assert_eq!(from_file.trusted_proxies.len(), 1);

        let env = |name: &str| match name {
            "SYNAP_ALLOWED_ORIGINS" => Some("https://a.example, https://b.example,".to_string()),
            "SYNAP_RATE_LIMIT_USER" => Some("50/1h".to_string()),
            "SYNAP_BODY_LIMIT" => Some("2048".to_string()),
            "SYNAP_TRUSTED_PROXIES" => Some("".to_string()),
            _ => None,
        };
        let flags = ServeFlags {
            listen: Some("127.0.0.1:0".into()),
            env: Some("development".into()),
            allow_registration: Some(false),
        };
        let layered = settings
            .server_config(&flags, &env)
            .expect("the layers are valid");
        assert_eq!(layered.listen.port(), 0);
        assert!(!layered.is_production());
        assert!(!layered.allow_registration);
        assert_eq!(
            layered.cors_origins(),
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(
            layered.rate_limit_user.map(|l| l.requests),
            Some(50),
            "the variable beats the file"
        );
        assert_eq!(layered.rate_limit_anonymous.map(|l| l.requests), Some(10));
        assert_eq!(layered.body_limit_bytes, 2048);
        assert!(layered.trusted_proxies.is_empty());
    }

    #[test]
    fn bad_server_values_are_usage_errors_naming_their_source() {
        let env = |name: &str| (name == "SYNAP_RATE_LIMIT_USER").then(|| "lots".to_string());
        let error = Settings::default()
            .server_config(&ServeFlags::default(), &env)
            .err()
            .map(|e| (e.exit, e.message));
        let (exit, message) = error.unwrap_or((Exit::Success, String::new()));
        assert_eq!(exit, Exit::Usage);
        assert!(message.starts_with("SYNAP_RATE_LIMIT_USER: "), "{message}");

        let flags = ServeFlags {
            listen: Some("nowhere".into()),
            ..ServeFlags::default()
        };
        let message = Settings::default()
            .server_config(&flags, &no_env)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(message.contains("--listen"), "{message}");
        assert_eq!(parse_bool("on"), Ok(true));
        assert!(parse_bool("maybe").is_err());
    }
}
