//! The checkpointer thread: copies the write-ahead log back into the database
//! file, so the writer thread never does.
//!
//! SQLite's default is for the connection that commits to checkpoint whenever
//! the log passes 1,000 pages, inside its commit: the writer then also wrote the
//! pages again and waited for an fsync of the database file, while every caller
//! of its group waited too. Here, after each commit, the writer pokes this
//! thread, which runs a `PASSIVE` checkpoint on a connection of its own — at most
//! every [`CHECKPOINT_INTERVAL_MIN`] — without blocking the writer or the
//! readers.
//!
//! A passive checkpoint running beside a busy writer never quite catches up, and
//! the log only starts over from its beginning after one has. So the writer
//! still checkpoints itself, but only when the log has passed [`WAL_PAGES_MAX`]
//! pages (`wal_autocheckpoint`): by then this thread has copied nearly every
//! page, so the writer's checkpoint is short, and its next commit starts the
//! log again. The log's size is thereby bounded under any load.

use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};
use synap_store::{StoreError, StoreResult};

/// Shortest time between two checkpoints; commits in between are copied by the
/// next one.
pub const CHECKPOINT_INTERVAL_MIN: Duration = Duration::from_millis(100);
/// Log pages after which the writer checkpoints itself (its
/// `wal_autocheckpoint`), so that the log can start over: 4,096 pages of 4 KiB,
/// 16 MiB (SQLite's default is 1,000).
pub const WAL_PAGES_MAX: u32 = 4_096;

/// The writer's handle: asks for a checkpoint soon. Dropping it (the writer
/// stopped) makes the thread run a last checkpoint and end.
#[derive(Debug)]
pub struct CheckpointPoke(SyncSender<()>);

impl CheckpointPoke {
    /// Asks for a checkpoint; pokes while one is pending coalesce.
    pub fn poke(&self) {
        // Full: one is already pending. Disconnected: the thread has ended.
        let _ = self.0.try_send(());
    }
}

/// Starts the checkpointer for the database at `path`. Call after the writer's
/// connection has `wal_autocheckpoint` set to [`WAL_PAGES_MAX`].
pub fn start(path: &Path, busy_timeout: Duration) -> StoreResult<CheckpointPoke> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot open the database {} for checkpoints: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(busy_timeout)
        .map_err(crate::codec::sql_error)?;
    let (poke, pokes) = sync_channel(1);
    std::thread::Builder::new()
        .name("synap-sqlite-checkpointer".into())
        .spawn(move || run(&conn, &pokes))
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer thread: {e}")))?;
    Ok(CheckpointPoke(poke))
}

fn run(conn: &Connection, pokes: &Receiver<()>) {
    while pokes.recv().is_ok() {
        let started = Instant::now();
        // Busy or failed: the next poke tries again, and the log stays whole.
        let _ = checkpoint(conn);
        std::thread::sleep(CHECKPOINT_INTERVAL_MIN.saturating_sub(started.elapsed()));
    }
    let _ = checkpoint(conn);
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
