//! Benchmark of the HTTP server (issue 3, "Benchmark"): printed figures, each route
//! next to the `/health` baseline measured in the same run — not a timed test.
//!
//! ```text
//! cargo bench -p synap-cli --bench http
//! SYNAP_BENCH_SCALE=quick cargo bench -p synap-cli --bench http   # ~15 s smoke run
//! SYNAP_BENCH_SECONDS=30 cargo bench -p synap-cli --bench http
//! ```
//!
//! The real `synap` binary runs as a child process (`synap serve --listen
//! 127.0.0.1:0`, rate limits off, a fresh data directory), so load and server are
//! separate processes. This process is the load generator: 32 keep-alive HTTP/1.1
//! connections (a minimal client over tokio's `TcpStream`), each sending its next
//! request as soon as the previous answer is read (closed loop), for a fixed time
//! per route after a short warm-up. Latencies are measured per request by the
//! client, from writing the request to reading the whole answer.
//!
//! Settings (environment):
//!
//! - `SYNAP_BENCH_SCALE`: `full` (default: 10 s per route, 10,000 seeded notes) or
//!   `quick` (2 s per route, 1,000 notes).
//! - `SYNAP_BENCH_SECONDS`: measured seconds per route (overrides the scale's).
//! - `SYNAP_BENCH_CONNECTIONS`: concurrent connections (default 32).
//! - `SYNAP_BENCH_CLIENT_THREADS`: load-generator threads (default 1, so the
//!   client takes as little CPU from the server as possible on a small machine).
//! - `SYNAP_BENCH_BINARY`: another `synap` binary to measure (an A/B of two
//!   builds in one sitting); default the one cargo built for this bench.
//! - `SYNAP_BENCH_DIR`: where the scratch data directory goes (default: the
//!   workspace's `target/tmp`, on the repository's disk). Removed afterwards.
//!
//! Routes, in this order:
//!
//! - `GET /health`: the baseline (the full middleware stack plus the database
//!   probe `/health` makes).
//! - `GET /no-such-route`: a 404 from the same stack without any database work (a
//!   second baseline, not in the issue).
//! - then 10,000 notes are seeded through the API (1,000 when quick);
//! - `GET /v1/entities/{id}`: random ids of the seeded notes.
//! - `GET /v1/search`: two words of the notes' vocabulary, `limit=20`.
//! - `POST /v1/entities`: 1 KiB Markdown notes, each one different.
//!
//! The server's memory comes from `/proc/<pid>/status`: `VmRSS`/`VmHWM` once ready
//! and idle, and `VmHWM` (the peak) after the load. CPU time of the server, the
//! client and the whole machine is read from `/proc` for each measured window, so a
//! route disturbed by other processes is flagged.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The binary under test, built by cargo for this bench.
const SYNAP: &str = env!("CARGO_BIN_EXE_synap");
/// Body size of a benchmark note (the issue's "1 KiB notes").
const NOTE_BYTES: usize = 1024;
/// Distinct words the notes are written with.
const VOCABULARY: usize = 2_000;
/// Hits asked of each search.
const SEARCH_LIMIT: u32 = 20;
/// Longest wait for one answer; a slower one counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the server to announce itself and become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a seeding run may take.
const SEED_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest response head or chunk-size line the client accepts.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest response body the client accepts.
const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

const MIB: f64 = 1024.0 * 1024.0;
/// Share of one CPU used by other processes above which a route's figures are
/// flagged as disturbed.
const OTHER_CPU_WARNING: f64 = 0.10;

// ---------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Settings {
    scale: &'static str,
    seconds: f64,
    warmup: Duration,
    connections: usize,
    client_threads: usize,
    seed_notes: usize,
    dir: PathBuf,
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let quick = match var("SYNAP_BENCH_SCALE").as_deref() {
            None | Some("full") => false,
            Some("quick") => true,
            Some(other) => {
                return Err(format!("SYNAP_BENCH_SCALE: full or quick, not {other}").into());
            }
        };
        let number = |name: &str, default: f64| -> BenchResult<f64> {
            match var(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<f64>() {
                    Ok(value) if value > 0.0 && value <= 3_600.0 => Ok(value),
                    _ => Err(format!("{name}: a positive number up to 3600, not {text}").into()),
                },
            }
        };
        let seconds = number("SYNAP_BENCH_SECONDS", if quick { 2.0 } else { 10.0 })?;
        let connections = number("SYNAP_BENCH_CONNECTIONS", 32.0)? as usize;
        let client_threads = number("SYNAP_BENCH_CLIENT_THREADS", 1.0)? as usize;
        let dir = var("SYNAP_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        Ok(Settings {
            scale: if quick { "quick" } else { "full" },
            seconds,
            warmup: Duration::from_millis(if quick { 300 } else { 1_000 }),
            connections: connections.max(1),
            client_threads: client_threads.max(1),
            seed_notes: if quick { 1_000 } else { 10_000 },
            dir,
        })
    }
}

// ---------------------------------------------------------------------------------
// Latency histogram (log-linear, microseconds, under 1 % error)
// ---------------------------------------------------------------------------------

/// Sub-buckets per power of two above the exact range.
const SUB_BUCKETS: u64 = 64;
/// Values below this are counted exactly.
const EXACT_BELOW: u64 = 2 * SUB_BUCKETS;
/// Powers of two covered (up to 2^40 µs, far beyond any timeout).
const OCTAVES: u64 = 40;

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; (EXACT_BELOW + OCTAVES * SUB_BUCKETS) as usize],
            total: 0,
            max_us: 0,
        }
    }

    fn index(us: u64) -> usize {
        if us < EXACT_BELOW {
            return us as usize;
        }
        let msb = u64::from(63 - us.leading_zeros()); // ≥ 7
        let top = us >> (msb - 6); // 64..=127
        let index = EXACT_BELOW + (msb - 7) * SUB_BUCKETS + (top - SUB_BUCKETS);
        (index as usize).min((EXACT_BELOW + OCTAVES * SUB_BUCKETS) as usize - 1)
    }

    /// The middle of bucket `index`, in microseconds.
    fn value(index: usize) -> f64 {
        let index = index as u64;
        if index < EXACT_BELOW {
            return index as f64;
        }
        let octave = (index - EXACT_BELOW) / SUB_BUCKETS;
        let top = (index - EXACT_BELOW) % SUB_BUCKETS + SUB_BUCKETS;
        let shift = octave + 1;
        let low = top << shift;
        let high = ((top + 1) << shift) - 1;
        (low + high) as f64 / 2.0
    }

    fn record(&mut self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[Self::index(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q` quantile (0..=1) in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::value(index).min(self.max_us as f64) / 1_000.0;
            }
        }
        self.max_us as f64 / 1_000.0
    }
}

// ---------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client
// ---------------------------------------------------------------------------------

#[derive(Debug)]
struct Answer {
    status: u16,
    /// The `Location` header, when asked for.
    location: Option<String>,
    /// The body, when asked for.
    body: Option<Vec<u8>>,
    /// The server said `Connection: close`.
    close: bool,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl Connection {
    async fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        })
    }

    /// Reads more bytes into the buffer; fails at end of stream.
    async fn fill(&mut self) -> std::io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        let read = self.stream.read(&mut self.buf[self.end..]).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.end += read;
        Ok(())
    }

    /// Reads up to and including the next `\r\n` (or `\r\n\r\n` when `head`),
    /// returning the line or head without the terminator.
    async fn read_until(&mut self, head: bool) -> std::io::Result<Vec<u8>> {
        let terminator: &[u8] = if head { b"\r\n\r\n" } else { b"\r\n" };
        // Bytes already searched without finding the terminator.
        let mut searched: usize = 0;
        loop {
            let window = &self.buf[self.start..self.end];
            let from = searched.saturating_sub(terminator.len() - 1);
            if let Some(at) = window[from..]
                .windows(terminator.len())
                .position(|w| w == terminator)
                .map(|p| p + from)
            {
                let line = window[..at].to_vec();
                self.start += at + terminator.len();
                return Ok(line);
            }
            searched = window.len();
            if searched > HEAD_BYTES_MAX {
                return Err(invalid("the response head is too large"));
            }
            self.fill().await?;
        }
    }

    /// Reads exactly `len` body bytes, keeping them when `keep`.
    async fn read_exact_body(
        &mut self,
        len: usize,
        keep: Option<&mut Vec<u8>>,
    ) -> std::io::Result<()> {
        if len > BODY_BYTES_MAX {
            return Err(invalid("the response body is too large"));
        }
        let mut keep = keep;
        let mut left = len;
        while left > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let take = left.min(self.end - self.start);
            if let Some(keep) = keep.as_deref_mut() {
                keep.extend_from_slice(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            left -= take;
        }
        Ok(())
    }

    /// Sends `request` (complete bytes) and reads the whole answer.
    async fn round_trip(
        &mut self,
        request: &[u8],
        want_location: bool,
        want_body: bool,
    ) -> std::io::Result<Answer> {
        self.stream.write_all(request).await?;
        let head = self.read_until(true).await?;
        let head = std::str::from_utf8(&head).map_err(|_| invalid("a non-UTF-8 response head"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| invalid("a response without a status"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        let mut location = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid("a bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if want_location && name.eq_ignore_ascii_case("location") {
                location = Some(value.to_string());
            }
        }
        let mut body = want_body.then(Vec::new);
        if chunked {
            loop {
                let line = self.read_until(false).await?;
                let size = std::str::from_utf8(&line)
                    .ok()
                    .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                    .ok_or_else(|| invalid("a bad chunk size"))?;
                if size == 0 {
                    // Trailers (none expected) end with an empty line.
                    while !self.read_until(false).await?.is_empty() {}
                    break;
                }
                self.read_exact_body(size, body.as_mut()).await?;
                if !self.read_until(false).await?.is_empty() {
                    return Err(invalid("a chunk without its CRLF"));
                }
            }
        } else if let Some(length) = length {
            self.read_exact_body(length, body.as_mut()).await?;
        } else if status != 204 && status != 304 {
            return Err(invalid("a response without a length (not supported)"));
        }
        Ok(Answer {
            status,
            location,
            body,
            close,
        })
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

// ---------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------

/// xorshift64*: small, fast, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `VOCABULARY` distinct six-letter words (three consonant-vowel syllables), so a
/// word is never the prefix of another.
fn vocabulary() -> Vec<String> {
    const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let syllables = CONSONANTS.len() * VOWELS.len();
    (0..VOCABULARY)
        .map(|i| {
            // Spread the indices over the whole syllable space.
            let n = i * 7_919 % (syllables * syllables * syllables);
            let mut word = String::with_capacity(6);
            for s in [
                n / (syllables * syllables),
                n / syllables % syllables,
                n % syllables,
            ] {
                word.push(CONSONANTS[s / VOWELS.len()] as char);
                word.push(VOWELS[s % VOWELS.len()] as char);
            }
            word
        })
        .collect()
}

/// The JSON body of a new 1 KiB note, different for every `serial`.
fn note_body(words: &[String], serial: u64, rng: &mut Rng) -> Vec<u8> {
    let mut content = format!("# Note {serial}\n\n");
    while content.len() < NOTE_BYTES {
        content.push_str(&words[rng.below(words.len())]);
        content.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    content.truncate(NOTE_BYTES);
    serde_json::to_vec(&serde_json::json!({
        "type": "note",
        "content": content,
        "tags": ["bench"],
    }))
    .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------

/// The server child process; killed on drop if still running.
#[derive(Debug)]
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it is still running after
    /// `SHUTDOWN_TIMEOUT`. Returns how it ended.
    fn stop(&mut self) -> BenchResult<String> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(describe_exit(status, "after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        Ok(describe_exit(status, "killed: still running after SIGTERM"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn describe_exit(status: ExitStatus, how: &str) -> String {
    match status.code() {
        Some(code) => format!("exit {code} {how}"),
        None => format!("ended by a signal ({how})"),
    }
}

/// A command on the real binary with a clean `SYNAP_*` environment.
fn synap(data_dir: &Path) -> Command {
    let binary = std::env::var_os("SYNAP_BENCH_BINARY").unwrap_or_else(|| SYNAP.into());
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SYNAP_") {
            command.env_remove(name);
        }
    }
    command.arg("--data-dir").arg(data_dir);
    command
}

fn mint_token(data_dir: &Path) -> BenchResult<String> {
    let output = synap(data_dir)
        .args(["token", "create", "--name", "http-bench"])
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "synap token create failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let token = String::from_utf8(output.stdout)?.trim().to_string();
    if !token.starts_with("syn_") {
        return Err(format!("synap token create printed {token:?}, not a token").into());
    }
    Ok(token)
}

/// Starts `synap serve` on a free loopback port with rate limits off and waits
/// for its announcement.
fn start_server(data_dir: &Path) -> BenchResult<Server> {
    let mut child = synap(data_dir)
        .args(["--json", "serve", "--listen", "127.0.0.1:0"])
        .env("SYNAP_RATE_LIMIT_ANONYMOUS", "off")
        .env("SYNAP_RATE_LIMIT_USER", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout of the server")?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    // Reads the announcement, then drains the pipe until the server exits.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let mut server = Server {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let line = lines_rx
        .recv_timeout(STARTUP_TIMEOUT)
        .map_err(|_| "the server did not announce where it listens")?;
    let announced: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| format!("the server's announcement {line:?} is not JSON: {e}"))?;
    let url = announced["listening"]
        .as_str()
        .ok_or_else(|| format!("no `listening` in the announcement {line:?}"))?;
    server.address = url
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("the announced address {url:?}: {e}"))?;
    Ok(server)
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
fn memory(pid: u32) -> BenchResult<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> BenchResult<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status").into())
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: &str, ticks_per_second: f64) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / ticks_per_second)
}

/// Machine-wide CPU ticks from `/proc/stat`: (busy, idle, iowait), all CPUs summed.
fn machine_ticks() -> (u64, u64, u64) {
    let Some(line) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
    else {
        return (0, 0, 0);
    };
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    (busy, at(3), at(4))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    /// An unknown path: the whole middleware stack, no handler, no database (a
    /// second baseline, to show what `/health`'s database probe costs).
    Unknown,
    Create,
    Get,
    Search,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Health => "GET /health",
            Route::Unknown => "GET /no-such-route 404",
            Route::Create => "POST /v1/entities",
            Route::Get => "GET /v1/entities/{id}",
            Route::Search => "GET /v1/search",
        }
    }
}

/// What every connection of a run shares.
#[derive(Debug)]
struct Load {
    address: SocketAddr,
    host: String,
    token: String,
    ids: Vec<String>,
    queries: Vec<String>,
    words: Vec<String>,
    /// Serial numbers of created notes, so every note is different.
    serial: AtomicU64,
}

impl Load {
    fn request(&self, route: Route, rng: &mut Rng, out: &mut Vec<u8>) {
        out.clear();
        let (method, path) = match route {
            Route::Health => ("GET", "/health".to_string()),
            Route::Unknown => ("GET", "/no-such-route".to_string()),
            Route::Create => ("POST", "/v1/entities".to_string()),
            Route::Get => (
                "GET",
                format!("/v1/entities/{}", self.ids[rng.below(self.ids.len())]),
            ),
            Route::Search => (
                "GET",
                format!(
                    "/v1/search?q={}&limit={SEARCH_LIMIT}",
                    self.queries[rng.below(self.queries.len())]
                ),
            ),
        };
        let _ = write!(
            Bytes(out),
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
            self.host
        );
        if !matches!(route, Route::Health | Route::Unknown) {
            let _ = write!(Bytes(out), "Authorization: Bearer {}\r\n", self.token);
        }
        if route == Route::Create {
            let serial = self.serial.fetch_add(1, Ordering::Relaxed);
            let body = note_body(&self.words, serial, rng);
            let _ = write!(
                Bytes(out),
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            out.extend_from_slice(&body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// One connection's results.
#[derive(Debug)]
struct Tally {
    latencies: Histogram,
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
    locations: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            latencies: Histogram::new(),
            ok: 0,
            failed: 0,
            first_failure: None,
            locations: Vec::new(),
        }
    }
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(why);
    }
}

/// What one connection does: requests until `end` (or `quota` answers), recording
/// those that start after `measure_from`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    route: Route,
    measure_from: Instant,
    end: Instant,
    quota: Option<u64>,
    keep_locations: bool,
}

async fn connection(load: Arc<Load>, plan: Plan, seed: u64) -> Tally {
    let mut tally = Tally::new();
    let mut rng = Rng::new(seed);
    let mut request = Vec::with_capacity(4 * 1024);
    let mut conn = None;
    let expected = match plan.route {
        Route::Create => 201,
        Route::Unknown => 404,
        _ => 200,
    };
    let mut sent = 0u64;
    while Instant::now() < plan.end && plan.quota.is_none_or(|q| sent < q) {
        let stream = match conn.as_mut() {
            Some(stream) => stream,
            None => match Connection::open(load.address).await {
                Ok(stream) => conn.insert(stream),
                Err(error) => {
                    tally.fail(format!("connect: {error}"));
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        load.request(plan.route, &mut rng, &mut request);
        sent += 1;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            stream.round_trip(&request, plan.keep_locations, false),
        )
        .await;
        let elapsed = started.elapsed();
        let measured = started >= plan.measure_from;
        match answer {
            Ok(Ok(answer)) => {
                if measured {
                    tally.latencies.record(elapsed);
                    if answer.status == expected {
                        tally.ok += 1;
                    } else {
                        tally.fail(format!("status {}", answer.status));
                    }
                }
                if let Some(location) = answer.location
                    && answer.status == expected
                {
                    tally.locations.push(location);
                }
                if answer.close {
                    conn = None;
                }
            }
            Ok(Err(error)) => {
                tally.fail(format!("{error}"));
                conn = None;
            }
            Err(_) => {
                tally.fail(format!("no answer within {REQUEST_TIMEOUT:?}"));
                conn = None;
            }
        }
    }
    tally
}

/// The figures of one route.
#[derive(Debug)]
struct Measured {
    route: Route,
    requests: u64,
    failed: u64,
    first_failure: Option<String>,
    seconds: f64,
    latencies: Histogram,
    server_cpu: Duration,
    client_cpu: Duration,
    /// CPU time of the whole machine (all processes, all CPUs).
    machine_cpu: Duration,
    /// Share of the machine's CPU time that was idle, and waiting for I/O.
    idle_share: f64,
    iowait_share: f64,
    rss_after: u64,
    hwm_after: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Runs `connections` connections with `plan`; returns the merged tally and the
/// measured wall time (from `plan.measure_from` until the last answer).
async fn run_connections(
    load: &Arc<Load>,
    connections: usize,
    plan: Plan,
    seed: u64,
) -> (Tally, f64) {
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let plan = Plan {
                quota: plan.quota.map(|q| {
                    q / connections as u64 + u64::from((i as u64) < q % connections as u64)
                }),
                ..plan
            };
            tokio::spawn(connection(load.clone(), plan, seed * 1_000 + i as u64 + 1))
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        match task.await {
            Ok(tally) => {
                total.latencies.merge(&tally.latencies);
                total.ok += tally.ok;
                total.failed += tally.failed;
                if total.first_failure.is_none() {
                    total.first_failure = tally.first_failure;
                }
                total.locations.extend(tally.locations);
            }
            Err(error) => total.fail(format!("a connection task failed: {error}")),
        }
    }
    let seconds = plan.measure_from.elapsed().as_secs_f64();
    (total, seconds)
}

async fn measure(
    load: &Arc<Load>,
    settings: &Settings,
    server_pid: u32,
    route: Route,
    ticks: f64,
) -> BenchResult<Measured> {
    let server = server_pid.to_string();
    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let plan = Plan {
        route,
        measure_from,
        end: measure_from + Duration::from_secs_f64(settings.seconds),
        quota: None,
        keep_locations: false,
    };
    // CPU is counted over the measured window only: sampled when the warm-up ends.
    let sampler = tokio::spawn({
        let server = server.clone();
        async move {
            tokio::time::sleep_until(measure_from.into()).await;
            (
                cpu_time(&server, ticks),
                cpu_time("self", ticks),
                machine_ticks(),
            )
        }
    });
    let (tally, seconds) =
        run_connections(load, settings.connections, plan, route as u64 + 7).await;
    let (server_before, client_before, machine_before) = sampler.await.unwrap_or_default();
    let server_cpu = cpu_time(&server, ticks).saturating_sub(server_before);
    let client_cpu = cpu_time("self", ticks).saturating_sub(client_before);
    let machine_after = machine_ticks();
    let busy = machine_after.0.saturating_sub(machine_before.0);
    let idle = machine_after.1.saturating_sub(machine_before.1);
    let iowait = machine_after.2.saturating_sub(machine_before.2);
    let all = (busy + idle + iowait).max(1) as f64;
    let (rss_after, hwm_after) = memory(server_pid)?;
    Ok(Measured {
        route,
        requests: tally.ok,
        failed: tally.failed,
        first_failure: tally.first_failure,
        seconds,
        latencies: tally.latencies,
        server_cpu,
        client_cpu,
        machine_cpu: Duration::from_secs_f64(busy as f64 / ticks),
        idle_share: idle as f64 / all,
        iowait_share: iowait as f64 / all,
        rss_after,
        hwm_after,
    })
}

/// Creates `count` notes through the API; returns their ids and the rate.
async fn seed(
    load: &Arc<Load>,
    connections: usize,
    count: usize,
) -> BenchResult<(Vec<String>, f64)> {
    let now = Instant::now();
    let plan = Plan {
        route: Route::Create,
        measure_from: now,
        end: now + SEED_TIMEOUT,
        quota: Some(count as u64),
        keep_locations: true,
    };
    let (tally, seconds) = run_connections(load, connections, plan, 99).await;
    if tally.failed > 0 || tally.locations.len() != count {
        return Err(format!(
            "seeding created {} of {count} notes ({} failures; first: {})",
            tally.locations.len(),
            tally.failed,
            tally.first_failure.unwrap_or_default()
        )
        .into());
    }
    let ids = tally
        .locations
        .iter()
        .map(|l| l.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    Ok((ids, count as f64 / seconds))
}

/// Waits until `GET /ready` answers 200.
async fn wait_ready(address: SocketAddr, host: &str) -> BenchResult<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let request = format!("GET /ready HTTP/1.1\r\nHost: {host}\r\n\r\n");
    loop {
        if let Ok(mut conn) = Connection::open(address).await
            && let Ok(Ok(answer)) = tokio::time::timeout(
                REQUEST_TIMEOUT,
                conn.round_trip(request.as_bytes(), false, false),
            )
            .await
            && answer.status == 200
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("the server was not ready within {STARTUP_TIMEOUT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Mean hits per search over a sample of the queries (to show what a search returns).
async fn hits_per_search(load: &Arc<Load>) -> BenchResult<f64> {
    let mut conn = Connection::open(load.address).await?;
    let mut rng = Rng::new(5);
    let mut request = Vec::new();
    let (mut hits, samples) = (0usize, 50);
    for _ in 0..samples {
        load.request(Route::Search, &mut rng, &mut request);
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, conn.round_trip(&request, false, true))
            .await
            .map_err(|_| "a sample search timed out")??;
        if answer.status != 200 {
            return Err(format!("a sample search answered {}", answer.status).into());
        }
        let body: serde_json::Value = serde_json::from_slice(&answer.body.unwrap_or_default())?;
        hits += body["items"].as_array().map_or(0, Vec::len);
    }
    Ok(hits as f64 / samples as f64)
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(
            || "? GiB".to_string(),
            |kib| format!("{:.1} GiB", kib / MIB),
        );
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model}), {memory} RAM")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "NO" }
}

/// The target of a route and whether it is met.
fn target(m: &Measured) -> (&'static str, Option<bool>) {
    match m.route {
        Route::Health => ("(baseline)", None),
        Route::Unknown => ("(no database)", None),
        Route::Create => (
            ">= 8,000/s, p99 < 25 ms",
            Some(m.rate() >= 8_000.0 && m.latencies.quantile_ms(0.99) < 25.0),
        ),
        Route::Get | Route::Search => (">= 30,000/s", Some(m.rate() >= 30_000.0)),
    }
}

fn report(settings: &Settings, results: &[Measured], idle: (u64, u64), peak: u64) -> bool {
    let health = results
        .iter()
        .find(|m| m.route == Route::Health)
        .map_or(f64::NAN, Measured::rate);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<22} {:>10} {:>9} {:>9} {:>9} {:>9}  {:<25} {:<5}",
        "route", "req/s", "p50 ms", "p99 ms", "max ms", "/health", "target", "met?"
    );
    let mut all_met = true;
    for m in results {
        let (goal, met) = target(m);
        all_met &= met.unwrap_or(true);
        let _ = writeln!(
            out,
            "{:<22} {:>10.0} {:>9.2} {:>9.2} {:>9.1} {:>9.2}  {:<25} {:<5}",
            m.route.label(),
            m.rate(),
            m.latencies.quantile_ms(0.50),
            m.latencies.quantile_ms(0.99),
            m.latencies.max_us as f64 / 1_000.0,
            m.rate() / health,
            goal,
            met.map_or("-", yes),
        );
    }
    let idle_met = idle.1 < 30 * 1024 * 1024;
    let peak_met = peak < 200 * 1024 * 1024;
    all_met &= idle_met && peak_met;
    let _ = writeln!(
        out,
        "\nserver memory: idle VmRSS {} (peak so far, VmHWM {}): target < 30 MiB: {}",
        mib(idle.0),
        mib(idle.1),
        yes(idle_met)
    );
    let _ = writeln!(
        out,
        "               under load, peak VmHWM {}: target < 200 MiB: {}",
        mib(peak),
        yes(peak_met)
    );
    let _ = writeln!(
        out,
        "\n{:<22} {:>10} {:>8} {:>11} {:>11} {:>11} {:>9} {:>14} {:>12} {:>12}",
        "route",
        "answers",
        "errors",
        "server CPU",
        "client CPU",
        "other CPU",
        "idle+io",
        "server µs/req",
        "RSS after",
        "VmHWM after"
    );
    for m in results {
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>8} {:>10.0}% {:>10.0}% {:>10.0}% {:>4.0}%+{:>2.0}% {:>14.0} {:>12} {:>12}",
            m.route.label(),
            m.requests,
            m.failed,
            100.0 * m.server_cpu.as_secs_f64() / m.seconds,
            100.0 * m.client_cpu.as_secs_f64() / m.seconds,
            100.0
                * m.machine_cpu
                    .saturating_sub(m.server_cpu + m.client_cpu)
                    .as_secs_f64()
                / m.seconds,
            100.0 * m.idle_share,
            100.0 * m.iowait_share,
            m.server_cpu.as_secs_f64() * 1e6 / m.requests.max(1) as f64,
            mib(m.rss_after),
            mib(m.hwm_after),
        );
        if let Some(why) = &m.first_failure {
            let _ = writeln!(out, "    first error: {why}");
        }
        let other = m
            .machine_cpu
            .saturating_sub(m.server_cpu + m.client_cpu)
            .as_secs_f64()
            / m.seconds;
        if other > OTHER_CPU_WARNING {
            let _ = writeln!(
                out,
                "    warning: other processes used {:.0}% of a CPU meanwhile: this route's figures are low",
                100.0 * other
            );
        }
    }
    let _ = writeln!(
        out,
        "\n(CPU: percent of one CPU over the measured window, `other`: the rest of the machine; idle+io: share of all CPUs idle and waiting for I/O; {} connections, {} client thread(s), {:.0} s per route after a {:.1} s warm-up; scale {})",
        settings.connections,
        settings.client_threads,
        settings.seconds,
        settings.warmup.as_secs_f64(),
        settings.scale,
    );
    print!("{out}");
    all_met
}

// ---------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    match run() {
        Ok(_) => {}
        Err(error) => {
            eprintln!("http bench failed: {error}");
            std::process::exit(1);
        }
    }
}

fn run() -> BenchResult<bool> {
    let settings = Settings::from_env()?;
    println!("HTTP server benchmark: synap serve (child process) ← this process, loopback");
    println!(
        "date: {}",
        jiff::Timestamp::now().round(jiff::Unit::Second)?
    );
    println!("machine: {}", machine());
    std::fs::create_dir_all(&settings.dir)?;
    // Dropped last: the server (declared after) is stopped before the files go.
    let scratch = tempfile::Builder::new()
        .prefix("synap-http-bench-")
        .tempdir_in(&settings.dir)?;
    let data_dir = scratch.path().join("data");
    let token = mint_token(&data_dir)?;
    let mut server = start_server(&data_dir)?;
    let pid = server.pid();
    println!(
        "server: pid {pid}, http://{}, data in {}",
        server.address,
        data_dir.display()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()?;
    let ticks = clock_ticks();
    let outcome = runtime.block_on(async {
        let host = server.address.to_string();
        wait_ready(server.address, &host).await?;
        // Let start-up work settle before reading the idle figures.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = memory(pid)?;
        println!("idle: VmRSS {}, VmHWM {}", mib(idle.0), mib(idle.1));

        let words = vocabulary();
        let mut rng = Rng::new(42);
        let queries = (0..1_000)
            .map(|_| {
                format!(
                    "{}%20{}",
                    words[rng.below(words.len())],
                    words[rng.below(words.len())]
                )
            })
            .collect();
        let mut load = Arc::new(Load {
            address: server.address,
            host,
            token,
            ids: Vec::new(),
            queries,
            words,
            serial: AtomicU64::new(0),
        });

        let mut results = Vec::new();
        let run_route = |route: Route| {
            println!("measuring {} …", route.label());
            route
        };
        for route in [Route::Health, Route::Unknown] {
            results.push(measure(&load, &settings, pid, run_route(route), ticks).await?);
        }

        println!(
            "seeding {} notes of 1 KiB through POST /v1/entities …",
            settings.seed_notes
        );
        let (ids, seed_rate) = seed(&load, settings.connections, settings.seed_notes).await?;
        println!("seeded at {seed_rate:.0} notes/s");
        Arc::get_mut(&mut load)
            .ok_or("the load is still shared")?
            .ids = ids;
        let hits = hits_per_search(&load).await?;
        println!("a search (two words, limit {SEARCH_LIMIT}) returns {hits:.1} hits on average");

        for route in [Route::Get, Route::Search, Route::Create] {
            results.push(measure(&load, &settings, pid, run_route(route), ticks).await?);
        }
        let (_, peak) = memory(pid)?;
        BenchResult::Ok(report(&settings, &results, idle, peak))
    });
    drop(runtime);
    let stopped = server.stop();
    match &stopped {
        Ok(how) => println!("server stopped: {how}"),
        Err(error) => eprintln!("could not stop the server: {error}"),
    }
    drop(server);
    drop(scratch);
    let all_met = outcome?;
    println!("all targets met: {}", yes(all_met));
    Ok(all_met)
}
