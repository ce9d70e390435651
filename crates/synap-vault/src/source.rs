//! Reading a vault: a directory tree or a ZIP of one, into [`VaultFile`]s with
//! normalised paths (`/` separators, Unicode NFC, relative to the vault root).
//!
//! Hidden files and folders (`.obsidian`, `.trash`, `.git`) are not part of the
//! notes and are skipped. Markdown files are read whole (each at most
//! [`NOTE_BYTES_MAX`]); other files may become attachments: from a directory they
//! are read only when a note embeds them ([`FileBytes::OnDisk`]), from a ZIP they
//! are read at once (an archive cannot be reopened later), up to
//! [`VAULT_FILE_BYTES_MAX`] each and [`VAULT_OTHER_BYTES_MAX`] in all. Every read
//! is bounded ([`VAULT_FILES_MAX`], [`VAULT_MARKDOWN_BYTES_MAX`]), ZIP entries
//! included, so a ZIP bomb stops early.

use crate::report::Problem;
use std::io::{Read, Seek};
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

/// Most files (of any kind) one vault may hold.
pub const VAULT_FILES_MAX: usize = 100_000;
/// Largest Markdown file, in bytes: the largest content body the domain accepts.
pub const NOTE_BYTES_MAX: u64 = synap_domain::limits::CONTENT_BYTES_MAX as u64;
/// Most bytes of Markdown read from one vault (after decompression).
pub const VAULT_MARKDOWN_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Largest other file (a future attachment): the default attachment limit.
pub const VAULT_FILE_BYTES_MAX: u64 = synap_store::attachments::ATTACHMENT_BYTES_MAX_DEFAULT;
/// Most bytes of other files read from one ZIP (after decompression).
pub const VAULT_OTHER_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// One file of a vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultFile {
    /// Relative path with `/` separators, NFC (`Projects/Été.md`).
    pub path: String,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A `.md` file and its bytes (not yet checked for UTF-8).
    Markdown(Vec<u8>),
    /// Any other file: its size and where its bytes are.
    Other { size: u64, bytes: FileBytes },
}

/// Where the bytes of a non-Markdown file are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileBytes {
    /// On disk (a directory vault), read when needed.
    OnDisk(std::path::PathBuf),
    /// Already read (a ZIP entry).
    InMemory(std::sync::Arc<Vec<u8>>),
    /// Too large to become an attachment (over [`VAULT_FILE_BYTES_MAX`]).
    TooLarge,
}

impl FileBytes {
    /// The bytes, read from disk if need be.
    pub async fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            FileBytes::OnDisk(path) => tokio::fs::read(path).await,
            FileBytes::InMemory(bytes) => Ok(bytes.as_ref().clone()),
            FileBytes::TooLarge => Err(std::io::Error::other(format!(
                "the file is over the attachment limit of {VAULT_FILE_BYTES_MAX} bytes"
            ))),
        }
    }
}

/// A whole vault as read, with what could not be read.
#[derive(Debug, Clone, Default)]
pub struct VaultSource {
    pub files: Vec<VaultFile>,
    pub problems: Vec<Problem>,
}

/// Why a vault could not be read at all (a single bad file is only a [`Problem`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a ZIP archive: {0}")]
    Zip(String),
    #[error("the vault has more than {VAULT_FILES_MAX} files; import it in parts")]
    TooManyFiles,
    #[error(
        "the vault has more than {} MiB of Markdown; import it in parts",
        VAULT_MARKDOWN_BYTES_MAX / 1024 / 1024
    )]
    TooLarge,
    #[error(
        "the archive holds more than {} MiB of other files (attachments); import it in parts",
        VAULT_OTHER_BYTES_MAX / 1024 / 1024
    )]
    TooManyFileBytes,
}

fn is_markdown(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("md"))
}

fn is_hidden(path: &str) -> bool {
    path.split('/').any(|part| part.starts_with('.'))
}

/// Normalises an archive or file-system path; `None` for a path that could leave
/// the vault (`..`, absolute) or is empty.
pub fn normalize_path(raw: &str) -> Option<String> {
    let raw = raw.replace('\\', "/");
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            part => parts.push(part.nfc().collect::<String>()),
        }
    }
    if parts.is_empty() || raw.starts_with('/') {
        return None;
    }
    Some(parts.join("/"))
}

impl VaultSource {
    /// A vault from in-memory files (tests, generated vaults).
    pub fn from_files(files: Vec<VaultFile>) -> Self {
        VaultSource {
            files,
            problems: Vec::new(),
        }
    }

    /// Reads a directory tree. Symbolic links are not followed.
    pub fn read_dir(root: &Path) -> Result<Self, SourceError> {
        let mut source = VaultSource::default();
        let mut markdown_bytes = 0u64;
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let Some(name) = relative.to_str().and_then(normalize_path) else {
                    source.problems.push(Problem::new(
                        relative.to_string_lossy(),
                        "unsafe_path",
                        "the file name is not valid Unicode; rename it",
                    ));
                    continue;
                };
                if is_hidden(&name) {
                    continue;
                }
                let file_type = entry.file_type()?;
                if file_type.is_dir() {
                    pending.push(path);
                    continue;
                }
                if !file_type.is_file() {
                    continue;
                }
                if source.files.len() >= VAULT_FILES_MAX {
                    return Err(SourceError::TooManyFiles);
                }
                let size = entry.metadata()?.len();
                if !is_markdown(&name) {
                    let bytes = if size > VAULT_FILE_BYTES_MAX {
                        FileBytes::TooLarge
                    } else {
                        FileBytes::OnDisk(path.clone())
                    };
                    source.files.push(VaultFile {
                        path: name,
                        kind: FileKind::Other { size, bytes },
                    });
                    continue;
                }
                if size > NOTE_BYTES_MAX {
                    source.problems.push(too_large(&name, size));
                    continue;
                }
                markdown_bytes += size;
                if markdown_bytes > VAULT_MARKDOWN_BYTES_MAX {
                    return Err(SourceError::TooLarge);
                }
                match std::fs::read(&path) {
                    Ok(bytes) => source.files.push(VaultFile {
                        path: name,
                        kind: FileKind::Markdown(bytes),
                    }),
                    Err(error) => source.problems.push(Problem::new(
                        name,
                        "unreadable",
                        format!("the file cannot be read: {error}"),
                    )),
                }
            }
        }
        source.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(source)
    }

    /// Reads a ZIP archive. A single folder that holds everything (the way "compress
    /// this folder" makes archives) is the vault root.
    pub fn read_zip<R: Read + Seek>(reader: R) -> Result<Self, SourceError> {
        let mut archive =
            zip::ZipArchive::new(reader).map_err(|e| SourceError::Zip(e.to_string()))?;
        if archive.len() > VAULT_FILES_MAX {
            return Err(SourceError::TooManyFiles);
        }
        let mut source = VaultSource::default();
        let mut markdown_bytes = 0u64;
        let mut other_bytes = 0u64;
        for index in 0..archive.len() {
            let mut entry = match archive.by_index(index) {
                Ok(entry) => entry,
                Err(error) => {
                    source.problems.push(Problem::new(
                        format!("#{index}"),
                        "unreadable",
                        format!("the archive entry cannot be read: {error}"),
                    ));
                    continue;
                }
            };
            if entry.is_dir() {
                continue;
            }
            let Ok(raw_name) = entry.name().map(|name| name.to_string()) else {
                source.problems.push(Problem::new(
                    format!("#{index}"),
                    "unsafe_path",
                    "the archive entry's name cannot be read; skipped",
                ));
                continue;
            };
            let Some(name) = normalize_path(&raw_name) else {
                source.problems.push(Problem::new(
                    raw_name,
                    "unsafe_path",
                    "the path leaves the vault (.. or absolute); skipped",
                ));
                continue;
            };
            if is_hidden(&name) {
                continue;
            }
            let size = entry.size();
            if !is_markdown(&name) {
                let bytes = if size > VAULT_FILE_BYTES_MAX {
                    FileBytes::TooLarge
                } else {
                    // The declared size can lie: read at most one byte more than allowed.
                    let mut bytes = Vec::with_capacity(size as usize);
                    match (&mut entry)
                        .take(VAULT_FILE_BYTES_MAX + 1)
                        .read_to_end(&mut bytes)
                    {
                        Ok(n) if n as u64 > VAULT_FILE_BYTES_MAX => FileBytes::TooLarge,
                        Ok(n) => {
                            other_bytes += n as u64;
                            if other_bytes > VAULT_OTHER_BYTES_MAX {
                                return Err(SourceError::TooManyFileBytes);
                            }
                            FileBytes::InMemory(std::sync::Arc::new(bytes))
                        }
                        Err(error) => {
                            source.problems.push(Problem::new(
                                name,
                                "unreadable",
                                format!("the archive entry cannot be read: {error}"),
                            ));
                            continue;
                        }
                    }
                };
                source.files.push(VaultFile {
                    path: name,
                    kind: FileKind::Other { size, bytes },
                });
                continue;
            }
            if size > NOTE_BYTES_MAX {
                source.problems.push(too_large(&name, size));
                continue;
            }
            // The declared size can lie: read at most one byte more than allowed.
            let mut bytes = Vec::with_capacity(size as usize);
            let read = (&mut entry)
                .take(NOTE_BYTES_MAX + 1)
                .read_to_end(&mut bytes);
            match read {
                Ok(n) if n as u64 > NOTE_BYTES_MAX => {
                    source.problems.push(too_large(&name, n as u64));
                    continue;
                }
                Ok(n) => {
                    markdown_bytes += n as u64;
                    if markdown_bytes > VAULT_MARKDOWN_BYTES_MAX {
                        return Err(SourceError::TooLarge);
                    }
                    source.files.push(VaultFile {
                        path: name,
                        kind: FileKind::Markdown(bytes),
                    });
                }
                Err(error) => source.problems.push(Problem::new(
                    name,
                    "unreadable",
                    format!("the archive entry cannot be read: {error}"),
                )),
            }
        }
        source.strip_common_root();
        source.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(source)
    }

    fn strip_common_root(&mut self) {
        let Some(first) = self.files.first() else {
            return;
        };
        let Some((root, _)) = first.path.split_once('/') else {
            return;
        };
        let prefix = format!("{root}/");
        if self.files.iter().all(|f| f.path.starts_with(&prefix)) {
            for file in &mut self.files {
                file.path = file.path[prefix.len()..].to_string();
            }
            for problem in self.problems.iter_mut().filter(|p| p.kind != "unsafe_path") {
                if let Some(rest) = problem.path.strip_prefix(&prefix) {
                    problem.path = rest.to_string();
                }
            }
        }
    }
}

fn too_large(path: &str, size: u64) -> Problem {
    Problem::new(
        path,
        "too_large",
        format!("the file has {size} bytes; a note holds at most {NOTE_BYTES_MAX} bytes (10 MiB)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_nfc_and_inside_the_vault() {
        assert_eq!(normalize_path("a\\b/./c.md").as_deref(), Some("a/b/c.md"));
        assert_eq!(normalize_path("../x.md"), None);
        assert_eq!(normalize_path("/etc/passwd"), None);
        // "é" as e + combining acute becomes one code point.
        assert_eq!(
            normalize_path("Cafe\u{301}.md").as_deref(),
            Some("Caf\u{e9}.md")
        );
    }
}
