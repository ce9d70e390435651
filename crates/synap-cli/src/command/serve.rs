//! `synap serve [--listen ADDR] [--env ENV] [--allow-registration]`: the HTTP API
//! on the opened store (the embedded database by default; its directory is
//! created on first start). Prints where it listens and whether the local owner
//! has a token yet, then serves until SIGTERM or SIGINT (Ctrl-C) and shuts down
//! gracefully: event streams end, in-flight requests finish (for at most the
//! grace period), exit 0.
//!
//! The other server settings come from `synap.toml` and `SYNAP_*` variables
//! (`API.md`, "Configuration"; see `Settings::server_config`).

use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::settings::{self, Overrides, ServeFlags, Settings};
use crate::signals::Signals;
use crate::workers::{self, Workers};
use serde::Serialize;
use std::sync::Arc;
use synap_server::AppState;
use synap_store::SystemClock;
use tokio::net::TcpListener;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:3000]
    #[arg(long, env = "SYNAP_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// development or production (HSTS, Secure cookies, no default CORS origins)
    /// [default: development]
    #[arg(long = "env", env = "SYNAP_ENV", value_name = "ENV")]
    pub environment: Option<String>,
    /// Let anyone create an account with POST /v1/auth/register
    #[arg(
        long,
        env = "SYNAP_ALLOW_REGISTRATION",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = settings::parse_bool,
    )]
    pub allow_registration: Option<bool>,
}

/// The `--json` announcement.
#[derive(Debug, Serialize)]
struct Listening<'a> {
    listening: String,
    version: &'static str,
    database: &'static str,
    local_owner: &'a str,
    local_owner_tokens: usize,
}

pub async fn run(context: &Context, global: &GlobalArgs, args: Args) -> Result<(), CliError> {
    let settings = Settings::load(Overrides {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
    })?;
    let flags = ServeFlags {
        listen: args.listen,
        env: args.environment,
        allow_registration: args.allow_registration,
    };
    let mut config = settings.server_config(&flags, &|name| std::env::var(name).ok())?;
    let database = settings.database()?.kind();
    let flows = settings.workflows(&|name| std::env::var(name).ok())?;
    let clock = Arc::new(SystemClock);
    // Built before listening, so a bad AI setting stops the start with one line.
    config.webhook_allow_private = flows.webhooks.allow_private;
    let prepared = workers::flows(context.store.clone(), clock.clone(), &flows)?;

    // Install the handlers before announcing, so a signal sent right after the
    // announcement is a graceful shutdown, never the default "terminate now".
    let signals = Signals::install()?;
    let listener = TcpListener::bind(config.listen).await.map_err(|error| {
        CliError::error(format!(
            "cannot listen on {}: {error}; choose another address with --listen",
            config.listen
        ))
    })?;
    let address = listener
        .local_addr()
        .map_err(|error| CliError::error(format!("cannot read the listening address: {error}")))?;

    let owner = context.store.local_owner().await?;
    let now = jiff::Timestamp::now();
    let live_tokens = context
        .store
        .list_tokens(owner.id)
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|at| at > now))
        .count();
    if context.out.is_json() {
        context.out.json_line(&Listening {
            listening: format!("http://{address}"),
            version: env!("CARGO_PKG_VERSION"),
            database,
            local_owner: &owner.email,
            local_owner_tokens: live_tokens,
        })?;
    } else {
        context.out.line(format!(
            "synap {} listening on http://{address} ({database})",
            env!("CARGO_PKG_VERSION")
        ))?;
        let status = match live_tokens {
            0 => format!(
                "local owner {}: no API token yet; create one with `synap token create`",
                owner.email
            ),
            n => format!(
                "local owner {}: {n} active API token{}; `synap token create` makes another",
                owner.email,
                if n == 1 { "" } else { "s" }
            ),
        };
        context.out.line(status)?;
    }

    let (state, shutdown_tx) = AppState::new(
        context.store.clone(),
        config,
        clock.clone(),
        database,
        prepared.embedder.clone(),
    );
    // SYNAP_WORKERS=0: the workflows run in `synap worker` processes instead.
    let running = (flows.workers > 0).then(|| {
        Workers::start(
            context.store.clone(),
            clock,
            prepared,
            &flows,
            flows.workers,
            state.metrics.clone(),
        )
    });
    let served = synap_server::serve(listener, state, shutdown_tx, signals.received()).await;
    // The workers stop after the last request: a capture answered during the
    // drain still has its run, which a worker here or elsewhere will execute.
    if let Some(running) = running {
        running.stop().await;
    }
    served.map_err(|error| CliError::error(format!("the server failed: {error}")))?;
    // Nothing to flush: the store acknowledges a command only after committing it,
    // so every answered write is already durable. The store's writer thread ends
    // when the last handle to the store is dropped.
    if !context.out.is_json() {
        context.out.line("synap stopped")?;
    }
    Ok(())
}
