//! What an import did and what it could not map, file by file.

use serde::Serialize;

/// One thing that could not be mapped (or was mapped with a loss), with the vault
/// path it concerns. Problems never abort an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    /// A stable kind: `not_utf8`, `unreadable`, `too_large`, `unsafe_path`,
    /// `bad_frontmatter`, `broken_link`, `ambiguous_link`, `invalid_value`,
    /// `attachment_pending`, `deleted_entity`, `rejected`.
    pub kind: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, kind: &'static str, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

/// The result of one import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Markdown files found.
    pub notes: u64,
    /// Entities created.
    pub created: u64,
    /// Entities changed (at least one event appended).
    pub updated: u64,
    /// Files whose entity already matched: nothing appended.
    pub unchanged: u64,
    /// Files that could not be imported at all (see `problems`).
    pub skipped: u64,
    /// Relations created by the import itself (links the store could not resolve
    /// while the target did not exist yet, and frontmatter `relations`).
    pub relations_created: u64,
    /// Files attached to notes (embedded files and frontmatter `attachments`).
    pub attachments_added: u64,
    /// Events appended in all.
    pub events: u64,
    pub problems: Vec<Problem>,
}
