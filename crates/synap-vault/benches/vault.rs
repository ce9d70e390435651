//! Vault import and export at scale: generates a 10,000-note vault on disk (nested
//! folders, frontmatter, tags, 3 wikilinks per note, and every 10th note embedding a
//! 64 KiB file of its own, every 50th a shared one), imports it into a fresh SQLite
//! data directory with its object store (durable commits, the default), imports it
//! again (nothing changes), and exports it to a folder. Prints notes/s for each and
//! the bytes the object store holds per byte of (distinct) attachment.
//!
//! ```sh
//! cargo bench -p synap-vault --bench vault
//! SYNAP_BENCH_NOTES=2000 cargo bench -p synap-vault --bench vault   # smaller
//! ```
//!
//! Targets (issue 6): import ≥ 2,000 notes/s, export ≥ 5,000 notes/s, attachments
//! stored at ≤ 1.05 × their size.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use synap_store::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectStoreConfig, Objects};
use synap_store::{Scope, Store};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use synap_vault::{ExportOptions, ImportOptions, VaultSource, export_vault, import_vault};

const NOTES_DEFAULT: usize = 10_000;
const FOLDERS: usize = 100;
const LINKS_PER_NOTE: usize = 3;
const TAG_POOL: usize = 50;
/// Every this many notes embeds a file of its own …
const ATTACHMENT_EVERY: usize = 10;
/// … of this size;
const ATTACHMENT_BYTES: usize = 64 * 1024;
/// and every this many notes embeds the one shared file (stored once).
const SHARED_EVERY: usize = 50;
const WORDS: &[&str] = &[
    "graph", "note", "idea", "project", "meeting", "rust", "storage", "event", "search", "vault",
    "design", "review", "plan", "draft", "summary", "question", "answer", "link", "task", "week",
];

/// A small deterministic generator (xorshift), so every run writes the same vault.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the generator wrote.
struct Generated {
    markdown_bytes: u64,
    /// Bytes of distinct attachment files.
    attachment_bytes: u64,
    attachments: u64,
}

fn generate(root: &Path, notes: usize) -> Generated {
    let mut rng = Rng(0x5eed_cafe);
    let mut bytes = 0u64;
    let mut attachment_bytes = 0u64;
    let mut attachments = 0u64;
    std::fs::create_dir_all(root).expect("create the vault");
    let shared: Vec<u8> = (0..ATTACHMENT_BYTES).map(|_| rng.next() as u8).collect();
    std::fs::write(root.join("shared.bin"), &shared).expect("write the shared file");
    attachment_bytes += shared.len() as u64;
    for i in 0..notes {
        let folder = format!("Area {:02}/Topic {:02}", i % 10, (i / 10) % (FOLDERS / 10));
        let mut text = String::with_capacity(1400);
        text.push_str(&format!(
            "---\ntags: [tag{}, tag{}]\ncreated: 2024-{:02}-{:02}\nstatus: draft\n---\n# Note {i}\n\n",
            rng.below(TAG_POOL),
            rng.below(TAG_POOL),
            1 + i % 12,
            1 + i % 28,
        ));
        for paragraph in 0..4 {
            for _ in 0..35 {
                text.push_str(WORDS[rng.below(WORDS.len())]);
                text.push(' ');
            }
            if paragraph == 1 && i > 0 {
                for _ in 0..LINKS_PER_NOTE {
                    text.push_str(&format!("[[Note {}]] ", rng.below(i.max(1))));
                }
            }
            text.push_str("#inline\n\n");
        }
        let dir = root.join(&folder);
        std::fs::create_dir_all(&dir).expect("create a folder");
        if i % ATTACHMENT_EVERY == 0 {
            let own: Vec<u8> = (0..ATTACHMENT_BYTES).map(|_| rng.next() as u8).collect();
            std::fs::write(dir.join(format!("file {i}.bin")), &own).expect("write a file");
            text.push_str(&format!("![[file {i}.bin]]\n"));
            attachment_bytes += own.len() as u64;
            attachments += 1;
        }
        if i % SHARED_EVERY == 0 {
            text.push_str("![[shared.bin]]\n");
            attachments += 1;
        }
        std::fs::write(dir.join(format!("Note {i}.md")), &text).expect("write a note");
        bytes += text.len() as u64;
    }
    Generated {
        markdown_bytes: bytes,
        attachment_bytes,
        attachments,
    }
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let notes: usize = std::env::var("SYNAP_BENCH_NOTES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(NOTES_DEFAULT);
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let vault = scratch.path().join("vault");
    eprintln!("generating {notes} notes…");
    let generated = generate(&vault, notes);
    let bytes = generated.markdown_bytes;

    let objects_dir = scratch.path().join("data/objects");
    let objects_config = ObjectStoreConfig::Fs {
        root: objects_dir.clone(),
    };
    // Opening checks the store answers, which blocks: not on the runtime's threads.
    let objects = tokio::task::spawn_blocking(move || {
        Objects::open(&objects_config, INLINE_BODY_BYTES_MAX_DEFAULT)
    })
    .await
    .expect("open the object store")
    .expect("open the object store");
    let store = SqliteStore::open(SqliteConfig {
        objects: Some(Arc::new(objects)),
        ..SqliteConfig::new(scratch.path().join("data/synap.db"))
    })
    .expect("open a SQLite store");
    let store: Arc<dyn Store> = Arc::new(store);
    let scope = Scope::user(store.local_owner().await.expect("the owner").id);

    let load_before = load();
    let started = Instant::now();
    let source = VaultSource::read_dir(&vault).expect("read the vault");
    let report = import_vault(store.clone(), scope, source, ImportOptions::default())
        .await
        .expect("import");
    let import_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        report.created as usize,
        notes,
        "{:?}",
        report.problems.first()
    );

    let started = Instant::now();
    let source = VaultSource::read_dir(&vault).expect("read the vault");
    let again = import_vault(store.clone(), scope, source, ImportOptions::default())
        .await
        .expect("import again");
    let again_seconds = started.elapsed().as_secs_f64();
    assert_eq!(again.events, 0);
    assert_eq!(report.attachments_added, generated.attachments);
    let stored_bytes = disk_bytes(&objects_dir);

    let started = Instant::now();
    let exported = export_vault(store.clone(), scope, ExportOptions::default())
        .await
        .expect("export");
    exported
        .write_dir(&scratch.path().join("export"))
        .expect("write the export");
    let export_seconds = started.elapsed().as_secs_f64();
    assert_eq!(exported.entities as usize, notes);
    let load_after = load();

    println!(
        "vault benchmark: {notes} notes, {:.1} MiB of Markdown, {} relations exported ({} made by the import's link pass)",
        bytes as f64 / 1_048_576.0,
        exported.relations,
        report.relations_created
    );
    println!("load average before / after: {load_before} / {load_after} (2 vCPUs, shared)");
    println!("| step | seconds | notes/s | target |");
    println!("|---|---|---|---|");
    println!(
        "| import (read folder, parse, {} events, durable SQLite) | {import_seconds:.2} | {:.0} | ≥ 2,000 |",
        report.events,
        notes as f64 / import_seconds
    );
    println!(
        "| import again (nothing changes, 0 events) | {again_seconds:.2} | {:.0} | – |",
        notes as f64 / again_seconds
    );
    println!(
        "| export (read, render, write folder) | {export_seconds:.2} | {:.0} | ≥ 5,000 |",
        notes as f64 / export_seconds
    );
    println!(
        "attachments: {} embedded, {:.1} MiB distinct; object store holds {:.1} MiB = {:.3} bytes per attachment byte (target ≤ 1.05)",
        generated.attachments,
        generated.attachment_bytes as f64 / 1_048_576.0,
        stored_bytes as f64 / 1_048_576.0,
        stored_bytes as f64 / generated.attachment_bytes as f64
    );
}
