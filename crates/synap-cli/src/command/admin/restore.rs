//! `synap admin restore FILE`: unpacks a backup written by `synap admin backup`
//! ([`super::backup`]) into an empty data directory, then opens it (running any
//! newer migrations) and verifies it. Exits 1 if verify finds a difference.
//!
//! Nothing already stored is touched: a data directory that holds a database or
//! objects is refused. The archive is unpacked into a staging directory inside the
//! data directory and moved into place only once complete, so a damaged or
//! truncated backup leaves the directory as it was. Only the archive's known
//! entries are unpacked, and only to paths inside the data directory.

use super::backup::{DATABASE, FORMAT, MANIFEST, Manifest, OBJECTS_DIR};
use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::settings::{Database, Overrides, Settings};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use synap_store::{EventStore, VerifyReport};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// The largest manifest read (it is a few hundred bytes).
const MANIFEST_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup file to restore
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The JSON answer.
#[derive(Debug, Serialize)]
struct Restored {
    manifest: Manifest,
    verify: VerifyReport,
}

pub async fn run(global: &GlobalArgs, args: &Args) -> Result<(), CliError> {
    let settings = Settings::load(Overrides {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
    })?;
    let Database::Sqlite(database) = settings.database()? else {
        return Err(CliError::usage(
            "admin restore writes an embedded data directory; restore it there, then move it \
             up with `synap admin migrate --to postgres://…`",
        ));
    };
    let out = Output::new(global.json);
    let file = args.file.clone();
    let data_dir = settings.data_dir.clone();
    let target = database.clone();
    let manifest = tokio::task::spawn_blocking(move || unpack(&file, &data_dir, &target))
        .await
        .map_err(|e| CliError::error(format!("the restore stopped: {e}")))??;

    let store = SqliteStore::open(SqliteConfig::new(&database))?;
    let head = store.head_position().await?;
    if head != manifest.head_position {
        return Err(CliError::error(format!(
            "the restored log ends at position {head}, the backup's manifest says {}; the backup is damaged",
            manifest.head_position
        )));
    }
    let verify = super::verify_with_progress(&store).await?;
    let clean = verify.is_clean();
    let differences = verify.differences.len();
    if out.is_json() {
        out.document(&Restored { manifest, verify })?;
    } else {
        out.line(format!(
            "restored {} events (up to position {}) and {} object files from a backup of {}",
            manifest.events, manifest.head_position, manifest.object_files, manifest.created_at
        ))?;
        super::print_verify(&out, &verify)?;
    }
    if clean {
        Ok(())
    } else {
        Err(CliError::error(format!(
            "{differences} differences between the restored projections and the log; repair them with `synap admin rebuild`"
        )))
    }
}

/// Removes a directory tree when dropped unless disarmed.
struct RemoveTree(Option<PathBuf>);

impl Drop for RemoveTree {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn unpack(file: &Path, data_dir: &Path, database: &Path) -> Result<Manifest, CliError> {
    let objects = data_dir.join(OBJECTS_DIR);
    if database.exists() || dir_has_entries(&objects) {
        return Err(CliError::conflict(format!(
            "{} already holds an instance; restore into an empty data directory (--data-dir)",
            data_dir.display()
        )));
    }
    let archive_file = File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            CliError::not_found(format!("no backup file at {}", file.display()))
        }
        _ => CliError::error(format!("cannot read {}: {e}", file.display())),
    })?;
    let damaged = |why: String| {
        CliError::error(format!(
            "{} is not a usable Synap backup: {why}",
            file.display()
        ))
    };
    std::fs::create_dir_all(data_dir)
        .map_err(|e| CliError::error(format!("cannot create {}: {e}", data_dir.display())))?;
    let staging = data_dir.join(format!(".restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| CliError::error(format!("cannot create {}: {e}", staging.display())))?;
    let _staging_guard = RemoveTree(Some(staging.clone()));

    let mut archive = tar::Archive::new(BufReader::new(archive_file));
    let mut entries = archive.entries().map_err(|e| damaged(e.to_string()))?;
    let manifest: Manifest = {
        let mut first = entries
            .next()
            .ok_or_else(|| damaged("it is empty".into()))?
            .map_err(|e| damaged(e.to_string()))?;
        let path = first
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .into_owned();
        if path != Path::new(MANIFEST) {
            return Err(damaged(format!("it does not start with {MANIFEST}")));
        }
        let mut text = Vec::new();
        (&mut first)
            .take(MANIFEST_BYTES_MAX)
            .read_to_end(&mut text)
            .map_err(|e| damaged(e.to_string()))?;
        serde_json::from_slice(&text).map_err(|e| damaged(format!("its manifest: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(CliError::error(format!(
            "{} is a backup in format {}; this synap reads format {FORMAT} — use a matching version",
            file.display(),
            manifest.format
        )));
    }
    let mut database_seen = false;
    let mut object_files = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .into_owned();
        if !is_plain_relative(&path) {
            return Err(damaged(format!(
                "an entry has an unsafe path: {}",
                path.display()
            )));
        }
        let is_object = path.starts_with(OBJECTS_DIR) && path != Path::new(OBJECTS_DIR);
        if path == Path::new(DATABASE) {
            database_seen = true;
        } else if is_object {
            object_files += 1;
        } else {
            return Err(damaged(format!("an unexpected entry: {}", path.display())));
        }
        if !entry.header().entry_type().is_file() {
            return Err(damaged(format!("{} is not a regular file", path.display())));
        }
        let destination = staging.join(&path);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::error(format!("cannot create {}: {e}", parent.display())))?;
        }
        entry
            .unpack(&destination)
            .map_err(|e| damaged(format!("{}: {e}", path.display())))?;
    }
    if !database_seen {
        return Err(damaged(format!("it holds no {DATABASE}")));
    }
    if object_files != manifest.object_files {
        return Err(damaged(format!(
            "it holds {object_files} object files, its manifest says {}; it may be truncated",
            manifest.object_files
        )));
    }
    let staged_objects = staging.join(OBJECTS_DIR);
    if staged_objects.is_dir() {
        // An empty `objects` directory may exist; anything in it was refused above.
        let _ = std::fs::remove_dir(&objects);
        std::fs::rename(&staged_objects, &objects)
            .map_err(|e| CliError::error(format!("cannot move the objects into place: {e}")))?;
    }
    std::fs::rename(staging.join(DATABASE), database)
        .map_err(|e| CliError::error(format!("cannot move the database into place: {e}")))?;
    Ok(manifest)
}

/// A relative path of plain names only (no root, no `..`, no `.`).
fn is_plain_relative(path: &Path) -> bool {
    path.components().count() > 0 && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}
