//! The harness: a temporary data directory and helpers that run `synap` in it.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
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

/// Spawns a `synap serve` command (stdout piped) and reads its announcement;
/// answers the process, the address it listens on and the announcement line.
/// Later output is drained so the server never blocks on a full pipe.
pub fn spawn_server(mut command: Command) -> (Child, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("synap serve starts");
    let stdout = child.stdout.take().expect("a stdout pipe");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("an announcement").expect("UTF-8");
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("an address in {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    (child, address, first)
}

/// One HTTP/1.1 request with a bearer token and a JSON body; answers the status
/// and the parsed JSON body (`null` when it is not JSON).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A running `synap serve` with a token of the local owner; killed on drop.
pub struct Server {
    child: Child,
    pub address: String,
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(synap: &Synap, env: &[(&str, &str)]) -> Server {
        let token = synap
            .ok(&["token", "create", "--name", "test"])
            .trim()
            .to_string();
        let mut command = synap.command();
        command
            .env("SYNAP_TIME_ZONE", "UTC")
            .env("SYNAP_RATE_LIMIT_USER", "off")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let (child, address, _) = spawn_server(command);
        Server {
            child,
            address,
            token,
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http(&self.address, method, path, &self.token, body)
    }

    pub fn text(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("read");
        raw
    }

    /// Captures `text`; answers (entity id, run id).
    pub fn capture(&self, text: &str) -> (String, String) {
        let (status, answer) = self.call("POST", "/v1/capture", Some(json!({ "text": text })));
        assert_eq!(status, 202, "{answer}");
        (
            answer["entity_id"].as_str().unwrap().to_string(),
            answer["run_id"].as_str().expect("a run id").to_string(),
        )
    }

    /// Polls the run until it has finished.
    pub fn finished_run(&self, run_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, run) = self.call("GET", &format!("/v1/workflows/runs/{run_id}"), None);
            assert_eq!(status, 200, "{run}");
            if ["succeeded", "failed", "cancelled"].contains(&run["status"].as_str().unwrap()) {
                return run;
            }
            assert!(Instant::now() < deadline, "the run did not finish: {run}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn entity(&self, id: &str) -> Value {
        let (status, entity) = self.call("GET", &format!("/v1/entities/{id}"), None);
        assert_eq!(status, 200, "{entity}");
        entity
    }
}
