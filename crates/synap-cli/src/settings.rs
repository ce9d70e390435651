//! Settings: one typed struct, [`Settings`], whose `Default` is the only place a
//! default is written. Layers, later ones winning: defaults → the optional
//! `<data-dir>/synap.toml` → `SYNAP_*` environment → flags. Clap reads the last two
//! (`env =` on each flag) into [`Overrides`]; this module puts the file in between.

use crate::error::CliError;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of the settings file inside the data directory.
pub const SETTINGS_FILE: &str = "synap.toml";

/// Every setting the CLI uses, after layering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The data directory: the embedded database and the settings file live here.
    pub data_dir: PathBuf,
    /// The database. `None` means the embedded database inside the data directory
    /// (see [`Settings::database`]), so it follows `data_dir` wherever that is set.
    pub database_url: Option<DatabaseUrl>,
    /// The file name of the embedded database inside `data_dir`.
    pub database_file: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./synap-data"),
            database_url: None,
            database_file: "synap.db",
        }
    }
}

/// What clap found in flags and `SYNAP_*` variables (flags win over variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// `synap.toml`. Every key is optional; unknown keys are refused so a typo is seen.
/// `data_dir` is not a key: the file is found through it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
}

/// A database URL. Its `Debug` hides credentials, which URLs of server databases carry.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                write!(f, "DatabaseUrl({scheme}://<redacted>)")
            }
            _ => write!(f, "DatabaseUrl({:?})", self.0),
        }
    }
}

/// The database a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded database in this file.
    Sqlite(PathBuf),
}

impl Settings {
    /// Layers defaults, the settings file and the overrides.
    pub fn load(overrides: Overrides) -> Result<Settings, CliError> {
        let mut settings = Settings::default();
        if let Some(data_dir) = &overrides.data_dir {
            settings.data_dir.clone_from(data_dir);
        }
        let file = FileSettings::read(&settings.data_dir.join(SETTINGS_FILE))?;
        Ok(settings.with_file(file).with_overrides(overrides))
    }

    fn with_file(mut self, file: FileSettings) -> Self {
        if let Some(url) = file.database_url {
            self.database_url = Some(DatabaseUrl(url));
        }
        self
    }

    fn with_overrides(mut self, overrides: Overrides) -> Self {
        if let Some(data_dir) = overrides.data_dir {
            self.data_dir = data_dir;
        }
        if let Some(url) = overrides.database_url {
            self.database_url = Some(DatabaseUrl(url));
        }
        self
    }

    /// The database these settings select.
    pub fn database(&self) -> Result<Database, CliError> {
        match &self.database_url {
            Some(url) => parse_database_url(&url.0),
            None => Ok(Database::Sqlite(self.data_dir.join(self.database_file))),
        }
    }
}

impl FileSettings {
    /// Reads the settings file; a missing file is an empty one.
    pub fn read(path: &Path) -> Result<FileSettings, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileSettings::default());
            }
            Err(error) => {
                return Err(CliError::error(format!(
                    "cannot read {}: {error}",
                    path.display()
                )));
            }
        };
        toml::from_str(&text).map_err(|error| {
            let reason = error.message().to_string();
            CliError::error(format!(
                "{} is not valid: {reason}; fix or remove it",
                path.display()
            ))
        })
    }
}

/// `sqlite://PATH` (or `sqlite:PATH`) selects that file; `postgres://…` is refused
/// until the PostgreSQL backend lands.
pub fn parse_database_url(url: &str) -> Result<Database, CliError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(CliError::usage(
                "the database URL sqlite:// names no file; use sqlite://PATH",
            ));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(CliError::error(
            "PostgreSQL is not available in this build yet; use sqlite://PATH or leave --database-url unset",
        ));
    }
    // Only the scheme is echoed: the rest of a URL can hold a password.
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    Err(CliError::usage(format!(
        "unsupported database URL scheme {scheme:?}; use sqlite://PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    #[test]
    fn the_default_database_follows_the_data_dir() {
        let settings = Settings::default();
        assert_eq!(
            settings.database().ok(),
            Some(Database::Sqlite(PathBuf::from("./synap-data/synap.db")))
        );
        let moved = Settings::default().with_overrides(Overrides {
            data_dir: Some(PathBuf::from("/tmp/x")),
            database_url: None,
        });
        assert_eq!(
            moved.database().ok(),
            Some(Database::Sqlite(PathBuf::from("/tmp/x/synap.db")))
        );
    }

    #[test]
    fn overrides_win_over_the_file_which_wins_over_defaults() {
        let file = FileSettings {
            database_url: Some("sqlite:///from/file.db".into()),
        };
        let from_file = Settings::default().with_file(file.clone());
        assert_eq!(
            from_file.database().ok(),
            Some(Database::Sqlite(PathBuf::from("/from/file.db")))
        );
        let overridden = Settings::default()
            .with_file(file)
            .with_overrides(Overrides {
                data_dir: None,
                database_url: Some("sqlite://flag.db".into()),
            });
        assert_eq!(
            overridden.database().ok(),
            Some(Database::Sqlite(PathBuf::from("flag.db")))
        );
    }

    #[test]
    fn postgres_is_refused_with_an_error_and_unknown_schemes_as_usage() {
        let error = parse_database_url("postgres://u:secret@host/db")
            .err()
            .map(|e| (e.exit, e.message));
        let (exit, message) = error.unwrap_or((Exit::Success, String::new()));
        assert_eq!(exit, Exit::Error);
        assert!(message.contains("PostgreSQL is not available"));
        assert!(!message.contains("secret"));
        let error = parse_database_url("mysql://x").err().map(|e| e.exit);
        assert_eq!(error, Some(Exit::Usage));
    }

    #[test]
    fn debug_hides_credentials() {
        let url = DatabaseUrl("postgres://u:secret@host/db".into());
        assert!(!format!("{url:?}").contains("secret"));
    }
}
