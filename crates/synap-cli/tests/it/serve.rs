//! `synap serve`: starts on a free port, announces where it listens and the local
//! owner's status, answers `/health`, and exits 0 on SIGTERM.

use crate::support::Synap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Reads stdout lines until the announcement; returns the address and the lines.
fn announcement(child: &mut Child) -> (String, Vec<String>) {
    let stdout = child.stdout.take().expect("a stdout pipe");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let line = lines.next().expect("a line").expect("UTF-8");
        seen.push(line);
    }
    let address = seen[0]
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("an address in {:?}", seen[0]))
        .to_string();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (address, seen)
}

fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn wait_for_exit(child: &mut Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().expect("an exit code, not a signal");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("synap serve did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn serve_answers_health_and_exits_0_on_sigterm() {
    let synap = Synap::new();
    let data_dir = synap.path("fresh");
    let mut child = synap
        .bare_command()
        .args(["--data-dir"])
        .arg(&data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("synap serve starts");
    let (address, lines) = announcement(&mut child);
    assert!(
        lines[0].contains("listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(lines[1].contains("owner@localhost"), "{lines:?}");
    assert!(lines[1].contains("synap token create"), "{lines:?}");
    assert!(
        data_dir.join("synap.db").exists(),
        "the data dir is created"
    );

    let (status, body) = get(&address, "/health");
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    assert!(body.contains("\"backend\":\"sqlite\""), "{body}");
    let (status, _) = get(&address, "/ready");
    assert_eq!(status, 200);

    terminate(&child);
    assert_eq!(wait_for_exit(&mut child, Duration::from_secs(20)), 0);
    assert!(TcpStream::connect(&address).is_err());
}

#[test]
fn serve_takes_its_settings_from_flags_and_the_environment() {
    let synap = Synap::new();
    let mut child = synap
        .command()
        .env("SYNAP_RATE_LIMIT_USER", "off")
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-registration"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("synap serve starts");
    let (address, _) = announcement(&mut child);
    let (_, body) = get(&address, "/health");
    assert!(body.contains("\"mode\":\"multi-user\""), "{body}");
    terminate(&child);
    assert_eq!(wait_for_exit(&mut child, Duration::from_secs(20)), 0);

    // A bad value is a usage error naming its source.
    let run = synap
        .command()
        .env("SYNAP_BODY_LIMIT", "huge")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("synap runs");
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("SYNAP_BODY_LIMIT"), "{stderr}");
}
