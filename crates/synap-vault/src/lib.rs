//! Markdown vaults in and out of Synap.
//!
//! A *vault* is a folder (or a ZIP of one) of `.md` files in the style of Obsidian
//! or Logseq: YAML frontmatter, inline `#tags`, `[[wikilinks]]`, embedded files.
//!
//! - [`source`] reads a vault from a directory or a ZIP into [`source::VaultFile`]s
//!   (bounded; hidden folders such as `.obsidian` skipped).
//! - [`note`] parses one file into a [`note::VaultNote`] (pure), with
//!   [`frontmatter`], [`dates`] and [`markdown`] (tags, links and embeds outside code).
//! - [`resolve`] finds the note a link names (path, file name, title, alias).
//! - [`import`] turns a vault into commands through the store traits, idempotently.
//! - [`render`] and [`export`] write entities back as a vault, now or as of a moment.
//!
//! How vault files map to entities (the contract of import and export):
//!
//! - An entity remembers where it came from in two metadata keys: `folder` (the
//!   vault folder, `a/b`; absent at the root) and `vault_path` (`a/b/Note.md`).
//!   Export writes each entity back to its `vault_path` (or to `folder` + a safe
//!   file name from the title), so a round trip keeps paths.
//! - A re-import finds an entity by the frontmatter `id` (what export writes), else
//!   by `vault_path`. A file that moved in the vault without an `id` is a new note.
//! - Resolved wikilinks are stored as `[[<entity id>#heading|label]]`, so the
//!   store's own wikilink rule keeps exactly the right `mentions` relations even
//!   when two notes share a title; export writes them back as vault paths.

pub mod dates;
pub mod export;
pub mod frontmatter;
pub mod import;
pub mod markdown;
pub mod note;
pub mod render;
pub mod report;
pub mod resolve;
pub mod source;

pub use export::{ExportOptions, ExportedVault, export_vault};
pub use import::{ImportOptions, import_vault};
pub use report::{ImportReport, Problem};
pub use source::{VaultFile, VaultSource};
