//! `synap admin backup FILE`: a consistent snapshot of an embedded instance — the
//! database and the object store directory — taken while the server runs, as one
//! tar file. `synap admin restore` ([`super::restore`]) reads it back.
//!
//! Order makes it consistent: the database is copied first, as of one moment
//! ([`synap_store_sqlite::backup::snapshot`]), then the object files. Objects are
//! content-addressed and written before the transaction that refers to them
//! commits, and never changed afterwards, so every object the snapshot refers to is
//! already on disk when the copy of the objects starts; objects written later are
//! unreferenced in the snapshot and harmless.
//!
//! The file is written beside its final name and renamed into place once complete
//! and synced, so an interrupted backup never leaves a truncated FILE behind.
//!
//! Layout of the archive (format [`FORMAT`]):
//! - [`MANIFEST`] — what the backup holds (JSON, first entry);
//! - [`DATABASE`] — the SQLite database;
//! - [`OBJECTS_DIR`]`/…` — the object store directory, relative paths kept.

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::settings::{Database, Overrides, Settings};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The archive format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The manifest's name inside the archive.
pub const MANIFEST: &str = "synap-backup.json";
/// The database's name inside the archive.
pub const DATABASE: &str = "synap.db";
/// The object store directory, inside the data directory and inside the archive.
pub const OBJECTS_DIR: &str = "objects";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup file to write (must not exist yet)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The first entry of every backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    /// The Synap version that wrote it.
    pub synap_version: String,
    pub created_at: jiff::Timestamp,
    /// The last position of the copied log.
    pub head_position: u64,
    pub events: u64,
    pub database_bytes: u64,
    pub object_files: u64,
    pub object_bytes: u64,
}

pub async fn run(global: &GlobalArgs, args: &Args) -> Result<(), CliError> {
    let settings = Settings::load(Overrides {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
    })?;
    let Database::Sqlite(database) = settings.database()? else {
        return Err(CliError::usage(
            "admin backup snapshots the embedded database; back PostgreSQL up with pg_dump or \
             pg_basebackup (and the object store with it)",
        ));
    };
    let out = Output::new(global.json);
    let objects = settings.data_dir.join(OBJECTS_DIR);
    let file = args.file.clone();
    let manifest = tokio::task::spawn_blocking(move || write_backup(&database, &objects, &file))
        .await
        .map_err(|e| CliError::error(format!("the backup stopped: {e}")))??;
    if out.is_json() {
        out.document(&manifest)?;
    } else {
        out.line(format!(
            "backed up {} events (up to position {}) and {} object files ({} bytes) to {}",
            manifest.events,
            manifest.head_position,
            manifest.object_files,
            manifest.object_bytes,
            args.file.display()
        ))?;
    }
    Ok(())
}

/// Removes a file when dropped unless disarmed: the temporary snapshot and a
/// half-written archive never outlive a failure.
struct Remove(Option<PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_backup(database: &Path, objects: &Path, file: &Path) -> Result<Manifest, CliError> {
    if !database.is_file() {
        return Err(CliError::not_found(format!(
            "no embedded database at {}; point --data-dir at the instance to back up",
            database.display()
        )));
    }
    if file.exists() {
        return Err(CliError::conflict(format!(
            "{} already exists; choose a new file name or remove it first",
            file.display()
        )));
    }
    let name = file
        .file_name()
        .ok_or_else(|| CliError::usage(format!("{} is not a file name", file.display())))?
        .to_string_lossy()
        .into_owned();
    let sibling =
        |suffix: &str| file.with_file_name(format!(".{name}.{}.{suffix}", std::process::id()));
    let snapshot_path = sibling("db");
    let partial_path = sibling("partial");
    let _snapshot_guard = Remove(Some(snapshot_path.clone()));
    let mut partial_guard = Remove(Some(partial_path.clone()));

    let snapshot = synap_store_sqlite::backup::snapshot(database, &snapshot_path)?;
    let object_files = list_files(objects)?;
    let object_bytes = object_files.iter().map(|(_, size)| size).sum();
    let manifest = Manifest {
        format: FORMAT,
        synap_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: jiff::Timestamp::now(),
        head_position: snapshot.head_position,
        events: snapshot.events,
        database_bytes: snapshot.bytes,
        object_files: object_files.len() as u64,
        object_bytes,
    };

    let io = |what: &str, e: std::io::Error| {
        CliError::error(format!("cannot write {} ({what}): {e}", file.display()))
    };
    let archive_file = File::create_new(&partial_path).map_err(|e| io("create", e))?;
    let mut archive = tar::Builder::new(BufWriter::new(archive_file));
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| CliError::error(e.to_string()))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(manifest.created_at.as_second().max(0) as u64);
    header.set_cksum();
    archive
        .append_data(&mut header, MANIFEST, manifest_json.as_slice())
        .map_err(|e| io("manifest", e))?;
    archive
        .append_path_with_name(&snapshot_path, DATABASE)
        .map_err(|e| io("database", e))?;
    for (relative, _) in &object_files {
        archive
            .append_path_with_name(
                objects.join(relative),
                Path::new(OBJECTS_DIR).join(relative),
            )
            .map_err(|e| io("objects", e))?;
    }
    let mut writer = archive.into_inner().map_err(|e| io("finish", e))?;
    writer.flush().map_err(|e| io("flush", e))?;
    let archive_file = writer
        .into_inner()
        .map_err(|e| io("flush", e.into_error()))?;
    archive_file.sync_all().map_err(|e| io("sync", e))?;
    drop(archive_file);
    std::fs::rename(&partial_path, file).map_err(|e| io("rename", e))?;
    partial_guard.0 = None;
    Ok(manifest)
}

/// Every regular file under `root` (relative path, size), in a stable order; an
/// absent directory holds none. Files still being written by the object store are
/// named with a `#` suffix until renamed into place, and are skipped.
fn list_files(root: &Path) -> Result<Vec<(PathBuf, u64)>, CliError> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && relative.as_os_str().is_empty() =>
            {
                return Ok(files);
            }
            Err(e) => {
                return Err(CliError::error(format!(
                    "cannot read {}: {e}",
                    dir.display()
                )));
            }
        };
        for entry in entries {
            let entry = entry
                .map_err(|e| CliError::error(format!("cannot read {}: {e}", dir.display())))?;
            let kind = entry
                .file_type()
                .map_err(|e| CliError::error(format!("cannot read {}: {e}", dir.display())))?;
            let path = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && !entry.file_name().to_string_lossy().contains('#') {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push((path, size));
            }
        }
    }
    files.sort();
    Ok(files)
}
