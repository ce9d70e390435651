//! `synap admin migrate --to postgres://…`: moving up from the embedded store.
//! Copies this instance — the event log, content bodies, accounts (password and
//! token hashes included) and idempotency records — into an empty PostgreSQL
//! database, rebuilds the projections there and verifies them. Exits 1 if verify
//! finds a difference.
//!
//! It opens both databases itself rather than through the [`Context`]: it needs
//! the embedded store as such (the copy reads it page by page through
//! `synap_store::transfer::Export`), it must not create an empty embedded
//! database where none exists, and the target must be opened without creating
//! a local owner (the owner arrives with the copied accounts). The source should
//! not be written meanwhile (stop `synap serve`): the log is copied up to where it
//! stood when the copy began.
//!
//! [`Context`]: crate::context::Context

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::settings::{Database, Overrides, Settings, parse_database_url};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::sync::Mutex;
use synap_store::VerifyReport;
use synap_store::transfer::{CopyReport, Stage, copy};
use synap_store_postgres::{PostgresConfig, PostgresStore};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The empty PostgreSQL database to copy into: postgres://USER:PASSWORD@HOST:PORT/DATABASE
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// The JSON answer: what was copied and what verify found.
#[derive(Debug, Serialize)]
struct Migrated {
    copied: CopyReport,
    verify: VerifyReport,
}

/// A progress bar on standard error, hidden when that is not a terminal.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub async fn run(global: &GlobalArgs, args: &Args) -> Result<(), CliError> {
    let settings = Settings::load(Overrides {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
    })?;
    let Database::Sqlite(source_path) = settings.database()? else {
        return Err(CliError::usage(
            "admin migrate copies the embedded database; the current database is already PostgreSQL",
        ));
    };
    let Database::Postgres(target_url) = parse_database_url(&args.to)? else {
        return Err(CliError::usage(
            "--to must name a PostgreSQL database: postgres://USER@HOST/DATABASE",
        ));
    };
    if !source_path.is_file() {
        return Err(CliError::not_found(format!(
            "no embedded database at {}; point --data-dir at the instance to migrate",
            source_path.display()
        )));
    }
    let source = SqliteStore::open(SqliteConfig::new(&source_path))?;
    let target = PostgresStore::open(PostgresConfig {
        create_local_owner: false,
        ..PostgresConfig::new(target_url)
    })
    .await?;
    let out = Output::new(global.json);

    let bar = progress_bar();
    let stage = Mutex::new(None);
    let progress = |now: Stage, done: u64, total: u64| {
        if let Ok(mut stage) = stage.lock()
            && *stage != Some(now)
        {
            *stage = Some(now);
            bar.reset();
            bar.set_message(now.describe());
        }
        bar.set_length(total);
        bar.set_position(done);
    };
    let copied = copy(&source, &target, &progress).await;
    bar.finish_and_clear();
    let copied = copied?;

    let verify = super::verify_with_progress(&target).await?;

    let clean = verify.is_clean();
    let differences = verify.differences.len();
    if out.is_json() {
        out.document(&Migrated { copied, verify })?;
    } else {
        out.line(format!(
            "copied {} events, {} contents and {} users ({} tokens, {} sessions, {} idempotency records) in {:.2} s",
            copied.events,
            copied.contents,
            copied.users,
            copied.tokens,
            copied.sessions,
            copied.outcomes,
            copied.seconds
        ))?;
        out.line(format!(
            "rebuilt {} entities and {} relations from {} events",
            copied.rebuild.entities, copied.rebuild.relations, copied.rebuild.events
        ))?;
        super::print_verify(&out, &verify)?;
    }
    if clean {
        Ok(())
    } else {
        Err(CliError::error(format!(
            "{differences} differences between the migrated projections and the log; \
             run `synap --database-url URL admin rebuild` on the target and verify again"
        )))
    }
}
