//! The harness: a temporary data directory and helpers that run `synap` in it.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

/// One isolated Synap instance: a data directory that disappears after the test.
pub struct Synap {
    /// Removed when the instance is dropped; `None` for [`Synap::at`].
    _owned: Option<TempDir>,
    path: PathBuf,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Synap {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Synap {
            path: dir.path().to_path_buf(),
            _owned: Some(dir),
        }
    }

    /// Another handle on an instance's data directory (for a second thread).
    pub fn at(data_dir: &Path) -> Self {
        Synap {
            _owned: None,
            path: data_dir.to_path_buf(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The binary with a clean environment: no `SYNAP_*` from the host, UTC.
    pub fn bare_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_synap"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SYNAP_") {
                command.env_remove(key);
            }
        }
        command
            .env("TZ", "UTC")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        command
    }

    /// The binary pointed at this instance's data directory.
    pub fn command(&self) -> Command {
        let mut command = self.bare_command();
        command.arg("--data-dir").arg(self.data_dir());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.command().args(args).output().expect("synap runs"))
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("synap starts");
        child
            .stdin
            .take()
            .expect("a stdin pipe")
            .write_all(stdin.as_bytes())
            .expect("stdin is written");
        finish(child.wait_with_output().expect("synap runs"))
    }

    /// Runs a command that must succeed; returns its standard output, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).success()
    }

    /// Runs a command with `--json` that must succeed; returns the parsed document.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Runs a command that must fail with `code`; returns its one-line message.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        self.run(args).failure(code)
    }

    /// Adds a note and returns its id.
    pub fn add_note(&self, text: &str, extra: &[&str]) -> String {
        let mut args = vec!["note", "add", text];
        args.extend_from_slice(extra);
        let id = self.ok(&args);
        assert_eq!(id.len(), 36, "note add prints just the id: {id:?}");
        id
    }
}

impl Run {
    pub fn success(self) -> String {
        assert_eq!(
            self.code, 0,
            "expected success; stderr: {}; stdout: {}",
            self.stderr, self.stdout
        );
        self.stdout.trim_end().to_string()
    }

    /// Checks the exit code and that standard error is exactly one `error: …` line.
    pub fn failure(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stderr: {}; stdout: {}",
            self.stderr, self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got: {:?}", self.stderr);
        assert!(
            lines[0].starts_with("error: "),
            "an error line: {:?}",
            lines[0]
        );
        assert!(
            !self.stderr.contains("panicked"),
            "no panic: {}",
            self.stderr
        );
        lines[0].trim_start_matches("error: ").to_string()
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `items` of a listing document.
pub fn items(document: &Value) -> &Vec<Value> {
    document["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page with items: {document}"))
}

/// The ids in a listing document, in order.
pub fn ids(document: &Value) -> Vec<String> {
    items(document)
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default().to_string())
        .collect()
}
