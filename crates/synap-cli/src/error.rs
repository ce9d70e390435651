//! The CLI's one error type, its exit codes, and the one table ([`classify`]) that
//! turns every store and domain failure into an exit code and a one-line message
//! that says what to do next.
//!
//! Exit codes are a contract (`API.md`): 0 success, 1 error, 2 usage, 3 not found,
//! 4 conflict. Clap's own parse errors already exit 2.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use synap_domain::DomainError;
use synap_store::StoreError;

/// The process exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Usage = 2,
    NotFound = 3,
    Conflict = 4,
}

/// Why a command failed: the exit code and one line for standard error.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    /// Says what went wrong and what to do. Empty: exit silently (a closed pipe).
    pub message: String,
}

impl CliError {
    pub fn error(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Error,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::NotFound,
            message: message.into(),
        }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Conflict,
            message: message.into(),
        }
    }

    /// The reader of our output went away (`synap events | head`): stop quietly
    /// with success, as other Unix tools do, instead of reporting an error.
    pub fn closed_pipe() -> Self {
        CliError {
            exit: Exit::Success,
            message: String::new(),
        }
    }

    /// Writing to standard output failed.
    pub fn from_output(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::closed_pipe()
        } else {
            CliError::error(format!("cannot write the output: {error}"))
        }
    }

    /// Prints the message as one line on standard error and returns the exit code.
    pub fn report(&self) -> ExitCode {
        if !self.message.is_empty() {
            // One line, always: a backend message may carry line breaks.
            let line = self
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            // Nothing useful can be done if standard error is gone too.
            let _ = writeln!(std::io::stderr().lock(), "error: {line}");
        }
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        classify(error)
    }
}

impl From<DomainError> for CliError {
    fn from(error: DomainError) -> Self {
        classify(StoreError::Domain(error))
    }
}

/// The table: every store or domain failure → exit code and what to do.
pub fn classify(error: StoreError) -> CliError {
    match error {
        StoreError::Domain(error) => match error {
            DomainError::Validation { field, message } => {
                CliError::usage(format!("{field}: {message}"))
            }
            DomainError::EntityNotFound(id) => CliError::not_found(format!(
                "no entity {id}; `synap list` shows your entities (`--deleted` for deleted ones)"
            )),
            DomainError::RelationNotFound => CliError::not_found(
                "no such relation; `synap links ID` shows the links of an entity with their ids",
            ),
            DomainError::AlreadyExists(id) => CliError::conflict(format!(
                "entity {id} already exists; see it with `synap show {id}`"
            )),
            DomainError::EntityDeleted(id) => CliError::error(format!(
                "entity {id} is deleted; restore it with `synap restore {id}` before changing it"
            )),
            DomainError::NotATask(id) => CliError::error(format!(
                "entity {id} is not a task; make it one with `synap note edit {id} --type task`"
            )),
            DomainError::NoSuchVersion {
                id,
                version,
                current,
            } => CliError::not_found(format!(
                "entity {id} has no version {version}; its versions are 1 to {current} (see `synap history {id}`)"
            )),
            DomainError::DuplicateRelation { kind } => CliError::conflict(format!(
                "these entities are already linked with kind {kind}; see the link with `synap links SOURCE`"
            )),
        },
        StoreError::Conflict {
            aggregate_id,
            expected,
            current,
        } => CliError::conflict(format!(
            "{aggregate_id} changed: you expected version {expected} but the current version is {current}; \
             re-read it with `synap show {aggregate_id}`, then retry with --expect-version {current}"
        )),
        StoreError::InvalidInput(message) => CliError::usage(message),
        StoreError::Busy(message) => CliError::error(format!(
            "the database is busy ({message}); another synap process is writing, retry in a moment"
        )),
        StoreError::Unavailable(message) => CliError::error(format!(
            "the database cannot be reached ({message}); check that PostgreSQL is running and the --database-url is right"
        )),
        StoreError::Closed => {
            CliError::error("the store shut down before the command finished; run it again")
        }
        StoreError::Corrupt(message) => CliError::error(format!(
            "stored data is damaged: {message}; run `synap admin verify` and report this"
        )),
        StoreError::Backend(message) => CliError::error(format!(
            "storage failure: {message}; check that the data directory is writable and the disk is not full"
        )),
    }
}
