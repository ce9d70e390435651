//! Benchmarks of the embedded backend (issue 2, "Benchmark"): printed figures, each
//! next to a baseline measured in the same run — not timed tests.
//!
//! ```text
//! cargo bench -p synap-store-sqlite --bench store
//! SYNAP_BENCH_SCALE=quick cargo bench -p synap-store-sqlite --bench store   # ~1 minute smoke run
//! SYNAP_BENCH_ONLY=create,append cargo bench -p synap-store-sqlite --bench store
//! ```
//!
//! - `SYNAP_BENCH_SCALE`: `full` (default; the issue's sizes) or `quick` (small sizes).
//! - `SYNAP_BENCH_ONLY`: comma-separated sections: `create`, `read`, `state_at`,
//!   `rebuild`, `amplification`, `append`. Default: all.
//! - `SYNAP_BENCH_DIR`: where the scratch databases go (default: the workspace's
//!   `target/tmp`, on the repository's disk). Everything is removed afterwards,
//!   unless `SYNAP_BENCH_KEEP=1` (keeps the databases for inspection; the path is
//!   printed).
//!
//! The disk's fsync latency on a virtual machine varies by an order of magnitude
//! within an hour, so an fsync probe runs first and before every section, and
//! durable measurements that are compared with each other are interleaved (op by op
//! where possible, round by round otherwise) so both sides see the same disk.

use rusqlite::{Connection, OpenFlags, params};
use serde_json::Map;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use synap_domain::command::{Change, CreateEntity, EntityCommand, NewContent};
use synap_domain::entity::{ContentRef, DEFAULT_MEDIA_TYPE, EntityType};
use synap_domain::event::{
    ContentChanged, EntityCreated, EntityEvent, EventMetadata, EventPayload, FieldChange,
    MetadataChanged, TagsChanged,
};
use synap_domain::ids::{ContentHash, EntityId, UserId};
use synap_domain::text::{QueryTerm, derive_title, index_text, parse_query, preview, title_key};
use synap_store::{
    Accounts, AsOf, CommandRequest, EventStore, Maintenance, ReadModel, Scope, SearchRequest,
    Target,
};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

const SECTIONS: &[&str] = &[
    "create",
    "read",
    "state_at",
    "rebuild",
    "amplification",
    "append",
];
/// Concurrent writers in the group-commit measurement (the issue's figure).
const WRITERS: usize = 32;
/// Body size of a benchmark note (the issue's "1 KiB markdown").
const NOTE_BYTES: usize = 1024;
/// Events per generated stream in the direct-SQL logs.
const EVENTS_PER_STREAM: u64 = 10;
/// Streams interleaved with each other in the generated logs.
const STREAM_BLOCK: u64 = 1_000;

// ---------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Scale {
    name: &'static str,
    create_single: usize,
    create_per_writer: usize,
    create_rounds: usize,
    read_notes: usize,
    read_gets: usize,
    read_queries: usize,
    state_events: u64,
    state_samples: usize,
    rebuild_events: u64,
    amp_notes: usize,
    amp_edits: usize,
    append_levels: Vec<u64>,
    append_samples: usize,
}

impl Scale {
    fn full() -> Self {
        Scale {
            name: "full",
            create_single: 2_000,
            create_per_writer: 500,
            create_rounds: 3,
            read_notes: 100_000,
            read_gets: 10_000,
            read_queries: 300,
            state_events: 10_000,
            state_samples: 2_000,
            rebuild_events: 1_000_000,
            amp_notes: 10_000,
            amp_edits: 5,
            append_levels: vec![0, 1_000_000, 10_000_000],
            append_samples: 1_500,
        }
    }
    fn quick() -> Self {
        Scale {
            name: "quick",
            create_single: 200,
            create_per_writer: 50,
            create_rounds: 1,
            read_notes: 5_000,
            read_gets: 1_000,
            read_queries: 50,
            state_events: 1_000,
            state_samples: 300,
            rebuild_events: 50_000,
            amp_notes: 1_000,
            amp_edits: 5,
            append_levels: vec![0, 20_000, 200_000],
            append_samples: 150,
        }
    }
}

// ---------------------------------------------------------------------------------
// Small tools: randomness, latency statistics, formatting
// ---------------------------------------------------------------------------------

/// SplitMix64: deterministic, dependency-free.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Latency summary of a set of samples.
#[derive(Debug, Clone, Copy, Default)]
struct Lat {
    n: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    max: Duration,
}

fn lat(samples: &[Duration]) -> Lat {
    if samples.is_empty() {
        return Lat::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Lat {
        n,
        p50: rank(0.50),
        p99: rank(0.99),
        mean: sorted.iter().sum::<Duration>() / n as u32,
        max: sorted[n - 1],
    }
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m >= 100.0 {
        format!("{m:.0} ms")
    } else if m >= 10.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.3} ms")
    }
}

fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(n: f64) -> String {
    format!("{}/s", thousands(n))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn say(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}

// ---------------------------------------------------------------------------------
// The result table
// ---------------------------------------------------------------------------------

#[derive(Debug)]
struct Row {
    section: &'static str,
    measure: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        section: &'static str,
        measure: impl Into<String>,
        value: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        let row = Row {
            section,
            measure: measure.into(),
            value: value.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            target: target.into(),
            met,
        };
        say(format!(
            "  => {} | {} | {} | {} | {} | {}",
            row.measure,
            row.value,
            row.baseline,
            row.ratio,
            row.target,
            met_text(row.met)
        ));
        self.rows.push(row);
    }
    fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        say(format!("  note: {text}"));
        self.notes.push(text);
    }
    fn render(&self) -> String {
        let header = [
            "section",
            "measure",
            "value",
            "baseline (same run)",
            "ratio",
            "target",
            "met?",
        ];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.section.to_string(),
                    r.measure.clone(),
                    r.value.clone(),
                    r.baseline.clone(),
                    r.ratio.clone(),
                    r.target.clone(),
                    met_text(r.met).to_string(),
                ]
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &cells {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&header.map(String::from));
        out.push_str(&line(
            &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        for row in &cells {
            out.push_str(&line(row));
        }
        out
    }
}

fn met_text(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

fn ratio(value: f64, baseline: f64) -> String {
    if baseline == 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", value / baseline)
    }
}

// ---------------------------------------------------------------------------------
// The fsync probe and the machine
// ---------------------------------------------------------------------------------

/// Appends 4 KiB to a file and fdatasyncs it, `count` times (what a WAL commit does).
fn fsync_probe(dir: &Path, count: usize) -> Lat {
    let path = dir.join("fsync-probe.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .expect("create the fsync probe file");
    let block = vec![0x5a_u8; 4096];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&block).expect("write the probe file");
        let started = Instant::now();
        file.sync_data().expect("fdatasync the probe file");
        samples.push(started.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    lat(&samples)
}

fn probe_text(p: &Lat) -> String {
    format!(
        "fdatasync of a 4 KiB append: p50 {}, p99 {}, mean {}, max {} (n={})",
        ms(p.p50),
        ms(p.p99),
        ms(p.mean),
        ms(p.max),
        p.n
    )
}

/// CPU time counters, to tell how much of the machine other processes used while a
/// section ran (a busy neighbour on 2 vCPUs changes every CPU-bound figure).
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    at: Instant,
    /// Busy jiffies of all CPUs (user, nice, system, irq, softirq, steal).
    busy: u64,
    /// This process's user + system jiffies.
    own: u64,
}

impl CpuMark {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        let own_stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let own = own_stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                // After the state letter: ppid (field 4) onwards; some fields are -1.
                let fields: Vec<i64> = rest
                    .split_whitespace()
                    .skip(1)
                    .map(|f| f.parse().unwrap_or(0))
                    .collect();
                (fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0)).max(0)
                    as u64
            })
            .unwrap_or(0);
        CpuMark {
            at: Instant::now(),
            busy,
            own,
        }
    }

    /// (this process, other processes) as shares of all CPUs since `self`.
    fn share_since(&self) -> (f64, f64) {
        let now = CpuMark::now();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let capacity = now.at.duration_since(self.at).as_secs_f64() * 100.0 * cpus;
        if capacity <= 0.0 {
            return (0.0, 0.0);
        }
        let own = now.own.saturating_sub(self.own) as f64;
        let busy = now.busy.saturating_sub(self.busy) as f64;
        (own / capacity, (busy - own).max(0.0) / capacity)
    }
}

fn machine(dir: &Path) -> Vec<String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("unknown".to_string(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map_or(String::new(), |l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        });
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    // The mount holding the scratch directory: longest matching mount point.
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = read("/proc/mounts");
    let disk = mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (device, point, fs) = (parts.next()?, parts.next()?, parts.next()?);
            canonical
                .starts_with(point)
                .then(|| (point.len(), format!("{device} ({fs}, mounted on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or("unknown".to_string(), |(_, d)| d);
    let rotational = disk
        .split_whitespace()
        .next()
        .and_then(|dev| dev.strip_prefix("/dev/"))
        .map(|dev| {
            read(&format!("/sys/block/{dev}/queue/rotational"))
                .trim()
                .to_string()
        })
        .filter(|r| !r.is_empty())
        .map_or(String::new(), |r| format!(", rotational={r}"));
    vec![
        format!(
            "date: {}",
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
        ),
        format!("cpu: {cpus} x {cpu}"),
        format!("memory: {memory}"),
        format!("os: {os}, kernel {kernel}"),
        format!("disk: {disk}{rotational}"),
        format!("scratch dir: {}", canonical.display()),
        format!("sqlite: {} (bundled)", rusqlite::version()),
    ]
}

// ---------------------------------------------------------------------------------
// Synthetic notes
// ---------------------------------------------------------------------------------

/// Syllables of the generated vocabulary. No `c`, `q`, `w`, `x`, `y`: those letters
/// start the marker words, so no vocabulary word shares a prefix with a marker.
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ba", "de", "fu", "go", "hi", "ju", "pe", "zo",
];
const VOCABULARY: usize = 20_000;
/// Fraction of notes containing each marker word of a class.
const COMMON_SHARE: f64 = 0.10;
const MEDIUM_SHARE: f64 = 0.01;
const RARE_SHARE: f64 = 0.0001;

fn syllable_word(mut n: usize, syllables: usize) -> String {
    let mut word = String::new();
    for _ in 0..syllables {
        word.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    word
}

#[derive(Debug)]
struct Corpus {
    vocabulary: Vec<String>,
    /// Marker words in 10 %, 1 % and 0.01 % of the notes: searches of known selectivity.
    common: Vec<String>,
    medium: Vec<String>,
    rare: Vec<String>,
    tags: Vec<String>,
}

impl Corpus {
    fn new() -> Self {
        let vocabulary = (0..VOCABULARY)
            .map(|i| {
                if i < 4096 {
                    syllable_word(i, 3)
                } else {
                    syllable_word(i, 4)
                }
            })
            .collect();
        let markers = |letter: char, count: usize| -> Vec<String> {
            (0..count)
                .map(|j| format!("{letter}{}", syllable_word(j * 37 + 11, 3)))
                .collect()
        };
        Corpus {
            vocabulary,
            common: markers('q', 4),
            medium: markers('x', 8),
            rare: markers('y', 16),
            tags: (0..50)
                .map(|i| format!("topic-{}", syllable_word(i, 2)))
                .collect(),
        }
    }

    /// A word drawn with a Zipf-like (log-uniform) distribution over the vocabulary.
    fn word(&self, rng: &mut Rng) -> &str {
        let index = (VOCABULARY as f64).powf(rng.unit()) as usize;
        &self.vocabulary[index.saturating_sub(1).min(VOCABULARY - 1)]
    }

    /// A 1 KiB markdown note with a heading, paragraphs, a list and some emphasis,
    /// and two tags.
    fn note(&self, rng: &mut Rng, serial: usize) -> (String, Vec<String>) {
        let mut body = String::with_capacity(NOTE_BYTES + 128);
        let _ = write!(
            body,
            "# Note {serial} {} {} {}\n\n",
            self.word(rng),
            self.word(rng),
            self.word(rng)
        );
        let mut markers: Vec<&str> = Vec::new();
        for (words, share) in [
            (&self.common, COMMON_SHARE),
            (&self.medium, MEDIUM_SHARE),
            (&self.rare, RARE_SHARE),
        ] {
            for word in words {
                if rng.chance(share) {
                    markers.push(word);
                }
            }
        }
        let mut paragraph = 0;
        while body.len() < NOTE_BYTES {
            match rng.below(5) {
                0 if paragraph > 0 => {
                    for _ in 0..3 {
                        let _ = writeln!(
                            body,
                            "- {} {} {}",
                            self.word(rng),
                            self.word(rng),
                            self.word(rng)
                        );
                    }
                    body.push('\n');
                }
                _ => {
                    let sentences = 2 + rng.below(3);
                    for s in 0..sentences {
                        let words = 6 + rng.below(8);
                        for w in 0..words {
                            if w > 0 {
                                body.push(' ');
                            }
                            if paragraph == 0 && s == 0 && w == 2 {
                                for marker in &markers {
                                    body.push_str(marker);
                                    body.push(' ');
                                }
                            }
                            if rng.below(20) == 0 {
                                let _ = write!(body, "**{}**", self.word(rng));
                            } else {
                                body.push_str(self.word(rng));
                            }
                        }
                        body.push_str(". ");
                    }
                    body.push_str("\n\n");
                }
            }
            paragraph += 1;
        }
        body.truncate(NOTE_BYTES); // ASCII only, so any byte is a character boundary
        let first = rng.below(self.tags.len());
        let second = (first + 1 + rng.below(self.tags.len() - 1)) % self.tags.len();
        (
            body,
            vec![self.tags[first].clone(), self.tags[second].clone()],
        )
    }

    /// Edit `edit` of a body: the last ~160 bytes rewritten (the title line kept).
    fn edit(&self, rng: &mut Rng, body: &str, edit: usize) -> String {
        let keep = body
            .len()
            .saturating_sub(160)
            .max(body.find('\n').unwrap_or(0) + 1);
        let mut out = body[..keep].to_string();
        let _ = write!(out, " Edit {edit}:");
        while out.len() < body.len() {
            out.push(' ');
            out.push_str(self.word(rng));
        }
        out.truncate(body.len().max(keep + 16));
        out
    }
}

fn create_request(scope: Scope, id: EntityId, body: String, tags: Vec<String>) -> CommandRequest {
    let command = EntityCommand::Create(CreateEntity {
        tags,
        ..CreateEntity::note(body)
    });
    CommandRequest::new(
        scope,
        Target::Entity { id, command },
        EventMetadata::default(),
    )
}

fn change_request(scope: Scope, id: EntityId, change: Change) -> CommandRequest {
    CommandRequest::new(
        scope,
        Target::Entity {
            id,
            command: EntityCommand::Change(vec![change]),
        },
        EventMetadata::default(),
    )
}

// ---------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------

fn open_store(path: &Path, durable: bool) -> SqliteStore {
    let mut config = SqliteConfig::new(path);
    config.durable = durable;
    SqliteStore::open(config).expect("open the store")
}

async fn owner_scope(store: &SqliteStore) -> Scope {
    Scope::user(store.local_owner().await.expect("local owner").id)
}

/// Creates a database with the store's schema and local owner, closes it again and
/// returns the owner.
async fn schema_only(path: &Path) -> UserId {
    let store = open_store(path, true);
    let owner = store.local_owner().await.expect("local owner").id;
    drop(store);
    owner
}

/// A plain connection with the store's write pragmas (`synchronous` as given).
fn raw_connection(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open a plain connection");
    conn.busy_timeout(Duration::from_secs(60))
        .expect("busy timeout");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = OFF; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;"
    ))
    .expect("pragmas");
    conn
}

/// A plain read connection with the store's read-pool pragmas.
fn raw_reader(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("open a plain reader");
    conn.busy_timeout(Duration::from_secs(60))
        .expect("busy timeout");
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16384;")
        .expect("pragmas");
    conn
}

/// Transactions committed to a WAL database so far: the wal-index header's change
/// counter (`iChange`, bytes 8..12 of the `-shm` file, native byte order), which
/// SQLite increments on every commit. Differences give the group-commit batch size.
fn wal_commits(db: &Path) -> Option<u32> {
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let bytes = std::fs::read(PathBuf::from(shm)).ok()?;
    Some(u32::from_ne_bytes(bytes.get(8..12)?.try_into().ok()?))
}

/// Frames (pages) in the WAL right now: the wal-index header's `mxFrame` (bytes
/// 16..20 of the `-shm` file). Its growth across one commit is the number of pages
/// that commit wrote; it drops to 0 when a checkpoint restarts the WAL.
fn wal_frames(db: &Path) -> Option<u32> {
    use std::io::Read as _;
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let mut header = [0u8; 20];
    std::fs::File::open(PathBuf::from(shm))
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    Some(u32::from_ne_bytes(header[16..20].try_into().ok()?))
}

fn file_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut file = db.as_os_str().to_owned();
            file.push(suffix);
            std::fs::metadata(PathBuf::from(file)).ok().map(|m| m.len())
        })
        .sum()
}

fn keep_files() -> bool {
    std::env::var_os("SYNAP_BENCH_KEEP").is_some_and(|v| v != "0")
}

/// Removes a section's databases (unless `SYNAP_BENCH_KEEP` is set).
fn remove_section(dir: &Path) {
    if keep_files() {
        say(format!("  kept {}", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

fn metadata_json() -> String {
    serde_json::to_string(&EventMetadata::default()).expect("metadata json")
}

fn payload_json(payload: &EventPayload) -> String {
    serde_json::to_string(&payload.data()).expect("payload json")
}

/// The rows the store writes for one note creation, computed ahead of time so that
/// the plain-SQL baseline measures the database work only.
#[derive(Debug)]
struct PlainNote {
    entity_id: Uuid,
    event_id: Uuid,
    content: ContentRef,
    body: String,
    title: String,
    preview: String,
    event_data: String,
    index_title: String,
    index_body: String,
    tags: Vec<(String, String)>,
}

impl PlainNote {
    fn new(body: &str, tags: &[String]) -> Self {
        let content = NewContent::markdown(body).content_ref();
        let title = derive_title(body);
        let payload = EventPayload::Entity(EntityEvent::Created(EntityCreated {
            entity_type: EntityType::Note,
            title: title.clone(),
            content: Some(content.clone()),
            tags: tags.to_vec(),
            task: None,
            metadata: Map::new(),
        }));
        let event_id = Uuid::now_v7();
        PlainNote {
            entity_id: Uuid::now_v7(),
            event_id,
            content,
            body: body.to_string(),
            preview: preview(body),
            event_data: payload_json(&payload),
            index_title: index_text(&title),
            index_body: index_text(body),
            title,
            tags: tags
                .iter()
                .map(|t| (synap_domain::tags::tag_key(t), t.clone()))
                .collect(),
        }
    }
}

/// Inserts the rows of `notes` — content, event, entity, tags, FTS row, idempotency
/// record — in one durable transaction, with prepared statements.
fn plain_commit(
    conn: &Connection,
    user: UserId,
    metadata: &str,
    notes: &[PlainNote],
) -> rusqlite::Result<()> {
    let user = user.as_bytes();
    let now = now_micros();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for note in notes {
        conn.prepare_cached(
            "INSERT INTO contents (user_id, hash, size, media_type, storage, body, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'db', ?5, ?6) ON CONFLICT (user_id, hash) DO NOTHING",
        )?
        .execute(params![
            user,
            note.content.hash.as_bytes(),
            note.content.size as i64,
            note.content.media_type,
            note.body,
            now
        ])?;
        conn.prepare_cached(
            "INSERT INTO events (id, aggregate_type, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at) \
             VALUES (?1, 'entity', ?2, 1, 'entity.created', 1, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![note.event_id.as_bytes(), note.entity_id.as_bytes(), user, note.event_data, metadata, now])?;
        conn.prepare_cached(
            "INSERT INTO entities (id, user_id, type, title, title_key, preview, content_hash, content_size, \
             media_type, metadata, version, created_at, updated_at, deleted_at) \
             VALUES (?1, ?2, 'note', ?3, ?4, ?5, ?6, ?7, ?8, '{}', 1, ?9, ?9, NULL)",
        )?
        .execute(params![
            note.entity_id.as_bytes(),
            user,
            note.title,
            title_key(&note.title),
            note.preview,
            note.content.hash.as_bytes(),
            note.content.size as i64,
            note.content.media_type,
            now
        ])?;
        let rowid = conn.last_insert_rowid();
        for (key, name) in &note.tags {
            // No RETURNING: a statement with RETURNING opens a statement journal,
            // which makes FTS5 flush its pending terms as a new segment mid-transaction.
            conn.prepare_cached(
                "INSERT INTO tags (user_id, key, name, count) VALUES (?1, ?2, ?3, 1) \
                 ON CONFLICT (user_id, key) DO UPDATE SET count = count + 1",
            )?
            .execute(params![user, key, name])?;
            let tag_rowid: i64 = conn
                .prepare_cached("SELECT rowid FROM tags WHERE user_id = ?1 AND key = ?2")?
                .query_row(params![user, key], |r| r.get(0))?;
            conn.prepare_cached(
                "INSERT INTO entity_tags (entity_rowid, tag_rowid) VALUES (?1, ?2)",
            )?
            .execute(params![rowid, tag_rowid])?;
        }
        conn.prepare_cached("INSERT INTO search (rowid, title, body) VALUES (?1, ?2, ?3)")?
            .execute(params![rowid, note.index_title, note.index_body])?;
        conn.prepare_cached(
            "INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, event_count) VALUES (?1, ?2, ?3, 1, 1)",
        )?
        .execute(params![note.event_id.as_bytes(), user, note.entity_id.as_bytes()])?;
    }
    conn.execute_batch("COMMIT")
}

/// Appends events straight into the log with a prepared statement.
struct LogWriter<'c> {
    conn: &'c Connection,
    user: UserId,
    metadata: String,
    rows: u64,
}

impl LogWriter<'_> {
    fn append(
        &mut self,
        aggregate_id: Uuid,
        version: u64,
        payload: &EventPayload,
        recorded_at: i64,
    ) {
        self.conn
            .prepare_cached(
                "INSERT INTO events (id, aggregate_type, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    Uuid::now_v7().as_bytes(),
                    payload.aggregate_type().as_str(),
                    aggregate_id.as_bytes(),
                    version as i64,
                    payload.event_type(),
                    payload.schema_version(),
                    self.user.as_bytes(),
                    payload_json(payload),
                    self.metadata,
                    recorded_at
                ])
            })
            .expect("insert an event");
        self.rows += 1;
        if self.rows.is_multiple_of(100_000) {
            self.conn
                .execute_batch("COMMIT; BEGIN")
                .expect("commit a fill transaction");
        }
    }
}

fn fill_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open for filling");
    conn.busy_timeout(Duration::from_secs(60))
        .expect("busy timeout");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576; \
         PRAGMA temp_store = MEMORY; BEGIN",
    )
    .expect("fill pragmas");
    conn
}

/// Fills the log with `events` valid events of title-only notes: streams of one
/// `entity.created` and nine `entity.title_changed`, interleaved in blocks of
/// 1,000 streams. Returns the stream ids.
fn fill_title_log(path: &Path, user: UserId, events: u64) -> Vec<Uuid> {
    let conn = fill_connection(path);
    let mut log = LogWriter {
        conn: &conn,
        user,
        metadata: metadata_json(),
        rows: 0,
    };
    let streams = events / EVENTS_PER_STREAM;
    let mut ids = Vec::with_capacity(streams as usize);
    let mut at = now_micros() - events as i64 * 1_000;
    let mut start = 0;
    while start < streams {
        let block: Vec<Uuid> = (0..STREAM_BLOCK.min(streams - start))
            .map(|_| Uuid::now_v7())
            .collect();
        for version in 1..=EVENTS_PER_STREAM {
            for (k, id) in block.iter().enumerate() {
                let serial = start + k as u64;
                let payload = if version == 1 {
                    EventPayload::Entity(EntityEvent::Created(EntityCreated {
                        entity_type: EntityType::Note,
                        title: format!("Stream {serial} title 1"),
                        content: None,
                        tags: Vec::new(),
                        task: None,
                        metadata: Map::new(),
                    }))
                } else {
                    EventPayload::Entity(EntityEvent::TitleChanged(FieldChange {
                        old: format!("Stream {serial} title {}", version - 1),
                        new: format!("Stream {serial} title {version}"),
                    }))
                };
                at += 1_000;
                log.append(*id, version, &payload, at);
            }
        }
        ids.extend(block);
        start += STREAM_BLOCK;
        if start % (streams / 10).max(STREAM_BLOCK) < STREAM_BLOCK {
            say(format!(
                "    filled {} of {} events",
                thousands(log.rows as f64),
                thousands(events as f64)
            ));
        }
    }
    conn.execute_batch("COMMIT").expect("commit the fill");
    ids
}

/// Fills the log with `events` valid events of notes with content (bodies in the
/// content store), ten per note: created (content, two tags), three title changes,
/// three content changes (the last back to an earlier body), a tag added, a tag
/// removed and a metadata change. Interleaved in blocks of 1,000 notes.
fn fill_content_log(path: &Path, user: UserId, corpus: &Corpus, events: u64) -> u64 {
    let conn = fill_connection(path);
    let mut log = LogWriter {
        conn: &conn,
        user,
        metadata: metadata_json(),
        rows: 0,
    };
    let mut rng = Rng::new(0x5eed);
    let streams = events / EVENTS_PER_STREAM;
    let mut at = now_micros() - events as i64 * 1_000;
    let mut content_rows = 0u64;
    let mut start = 0;
    while start < streams {
        let n = STREAM_BLOCK.min(streams - start) as usize;
        let mut block = Vec::with_capacity(n);
        for k in 0..n {
            let serial = start as usize + k;
            let (body0, tags) = corpus.note(&mut rng, serial);
            let body1 = corpus.edit(&mut rng, &body0, 1);
            let body2 = corpus.edit(&mut rng, &body1, 2);
            let refs: Vec<ContentRef> = [&body0, &body1, &body2]
                .iter()
                .map(|b| ContentRef {
                    hash: ContentHash::of(b.as_bytes()),
                    size: b.len() as u64,
                    media_type: DEFAULT_MEDIA_TYPE.to_string(),
                })
                .collect();
            for (body, content) in [&body0, &body1, &body2].iter().zip(&refs) {
                conn.prepare_cached(
                    "INSERT INTO contents (user_id, hash, size, media_type, storage, body, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'db', ?5, ?6) ON CONFLICT (user_id, hash) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        user.as_bytes(),
                        content.hash.as_bytes(),
                        content.size as i64,
                        content.media_type,
                        body,
                        at
                    ])
                })
                .expect("insert content");
                content_rows += 1;
            }
            block.push((Uuid::now_v7(), serial, tags, refs));
        }
        for version in 1..=EVENTS_PER_STREAM {
            for (id, serial, tags, refs) in &block {
                let title = |k: u64| format!("Note {serial} revision {k}");
                let content_change = |old: &ContentRef, new: &ContentRef| {
                    EntityEvent::ContentChanged(ContentChanged {
                        old_hash: Some(old.hash),
                        new_hash: Some(new.hash),
                        size: new.size,
                        media_type: None,
                    })
                };
                let title_change = |old: u64| {
                    EntityEvent::TitleChanged(FieldChange {
                        old: title(old),
                        new: title(version),
                    })
                };
                let event = match version {
                    1 => EntityEvent::Created(EntityCreated {
                        entity_type: EntityType::Note,
                        title: title(0),
                        content: Some(refs[0].clone()),
                        tags: tags.clone(),
                        task: None,
                        metadata: Map::new(),
                    }),
                    2 => title_change(0),
                    3 => content_change(&refs[0], &refs[1]),
                    4 => {
                        let extra = corpus
                            .tags
                            .iter()
                            .find(|t| !tags.contains(t))
                            .cloned()
                            .unwrap_or_default();
                        EntityEvent::TagsAdded(TagsChanged { tags: vec![extra] })
                    }
                    5 => title_change(2),
                    6 => {
                        let mut set = Map::new();
                        set.insert("serial".into(), serde_json::json!(serial));
                        EntityEvent::MetadataChanged(MetadataChanged {
                            set,
                            unset: Vec::new(),
                        })
                    }
                    7 => content_change(&refs[1], &refs[2]),
                    8 => EntityEvent::TagsRemoved(TagsChanged {
                        tags: vec![tags[0].clone()],
                    }),
                    9 => title_change(5),
                    _ => content_change(&refs[2], &refs[1]),
                };
                at += 1_000;
                log.append(*id, version, &EventPayload::Entity(event), at);
            }
        }
        start += STREAM_BLOCK;
        if start % (streams / 10).max(STREAM_BLOCK) < STREAM_BLOCK {
            say(format!(
                "    filled {} of {} events",
                thousands(log.rows as f64),
                thousands(events as f64)
            ));
        }
    }
    conn.execute_batch("COMMIT").expect("commit the fill");
    content_rows
}

fn progress_printer(label: &'static str) -> impl Fn(u64, u64) + Send + Sync {
    let last = AtomicU64::new(u64::MAX);
    move |done, total| {
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if last.swap(tenth, Ordering::Relaxed) != tenth && tenth > 0 {
            say(format!(
                "    {label}: {} of {} events",
                thousands(done as f64),
                thousands(total as f64)
            ));
        }
    }
}

// ---------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------

#[derive(Debug)]
struct Bench {
    dir: PathBuf,
    scale: Scale,
    table: Table,
    corpus: Corpus,
    probes: Vec<(String, Lat)>,
    /// Per section: seconds, this process's and other processes' share of all CPUs.
    cpu: Vec<(String, f64, f64, f64)>,
}

impl Bench {
    fn probe(&mut self, label: &str) {
        let p = fsync_probe(&self.dir, 32);
        say(format!("  fsync probe ({label}): {}", probe_text(&p)));
        self.probes.push((label.to_string(), p));
    }
    fn section_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("create a section directory");
        dir
    }
}

/// Creates `notes` through the store with `tasks` concurrent writers; returns the
/// ids and the elapsed time.
async fn create_concurrently(
    store: &SqliteStore,
    scope: Scope,
    notes: Vec<(String, Vec<String>)>,
    tasks: usize,
) -> (Vec<EntityId>, Duration) {
    let ids: Vec<EntityId> = (0..notes.len()).map(|_| EntityId::new_v7()).collect();
    let mut shares: Vec<Vec<(EntityId, String, Vec<String>)>> =
        (0..tasks).map(|_| Vec::new()).collect();
    for (i, ((body, tags), id)) in notes.into_iter().zip(&ids).enumerate() {
        shares[i % tasks].push((*id, body, tags));
    }
    let started = Instant::now();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = store.clone();
            tokio::spawn(async move {
                for (id, body, tags) in share {
                    store
                        .execute(create_request(scope, id, body, tags))
                        .await
                        .expect("create a note");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("writer task");
    }
    (ids, started.elapsed())
}

/// Runs `requests` through the store with `tasks` concurrent writers.
async fn execute_concurrently(
    store: &SqliteStore,
    requests: Vec<CommandRequest>,
    tasks: usize,
) -> Duration {
    let mut shares: Vec<Vec<CommandRequest>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, request) in requests.into_iter().enumerate() {
        shares[i % tasks].push(request);
    }
    let started = Instant::now();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = store.clone();
            tokio::spawn(async move {
                for request in share {
                    store.execute(request).await.expect("execute a command");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("writer task");
    }
    started.elapsed()
}

#[derive(Debug)]
struct ManyRound {
    store_rate: f64,
    batch: f64,
    plain_rate: f64,
    plain32_rate: f64,
    nosync_rate: f64,
    nosync_batch: f64,
    plain_nosync_rate: f64,
}

/// Creates `notes` through a fresh store with 32 concurrent writers; returns the
/// rate and the mean number of commands per commit.
async fn store_many(
    path: &Path,
    durable: bool,
    warmup: Vec<(String, Vec<String>)>,
    notes: Vec<(String, Vec<String>)>,
) -> (f64, f64) {
    let total = notes.len();
    let store = open_store(path, durable);
    let scope = owner_scope(&store).await;
    create_concurrently(&store, scope, warmup, WRITERS).await;
    let before = wal_commits(path).unwrap_or(0);
    let (_, elapsed) = create_concurrently(&store, scope, notes, WRITERS).await;
    let commits = wal_commits(path).unwrap_or(0).wrapping_sub(before).max(1);
    drop(store);
    (
        total as f64 / elapsed.as_secs_f64(),
        total as f64 / f64::from(commits),
    )
}

/// Inserts the rows of `notes` by plain SQL into a fresh database in transactions
/// of `size`; returns the rate.
async fn plain_many(
    path: &Path,
    synchronous: &str,
    size: usize,
    notes: &[PlainNote],
    metadata: &str,
) -> f64 {
    let user = schema_only(path).await;
    let conn = raw_connection(path, synchronous);
    let started = Instant::now();
    for chunk in notes.chunks(size) {
        plain_commit(&conn, user, metadata, chunk).expect("plain insert");
    }
    notes.len() as f64 / started.elapsed().as_secs_f64()
}

async fn bench_create(b: &mut Bench) {
    let dir = b.section_dir("create");
    let scale = b.scale.clone();
    let metadata = metadata_json();
    let mut rng = Rng::new(1);

    // One writer: a store creation and a plain-SQL transaction of the same rows,
    // alternately, so both see the same disk.
    let store_path = dir.join("one-store.db");
    let plain_path = dir.join("one-plain.db");
    let store = open_store(&store_path, true);
    let scope = owner_scope(&store).await;
    let plain_user = schema_only(&plain_path).await;
    let plain = raw_connection(&plain_path, "FULL");
    let warm = 20;
    let n = scale.create_single;
    let notes: Vec<(String, Vec<String>)> =
        (0..n + warm).map(|i| b.corpus.note(&mut rng, i)).collect();
    let plain_notes: Vec<PlainNote> = notes
        .iter()
        .map(|(body, tags)| PlainNote::new(body, tags))
        .collect();
    say(format!(
        "  one writer: {n} durable creations, alternating store / plain SQL"
    ));
    let (mut store_times, mut plain_times) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut commits_before = 0;
    for (i, ((body, tags), plain_note)) in notes.into_iter().zip(&plain_notes).enumerate() {
        if i == warm {
            commits_before = wal_commits(&store_path).unwrap_or(0);
        }
        let request = create_request(scope, EntityId::new_v7(), body, tags);
        let started = Instant::now();
        store.execute(request).await.expect("create");
        let store_time = started.elapsed();
        let started = Instant::now();
        plain_commit(
            &plain,
            plain_user,
            &metadata,
            std::slice::from_ref(plain_note),
        )
        .expect("plain insert");
        let plain_time = started.elapsed();
        if i >= warm {
            store_times.push(store_time);
            plain_times.push(plain_time);
        }
    }
    let single_commits = wal_commits(&store_path)
        .unwrap_or(0)
        .wrapping_sub(commits_before);
    drop(store);
    drop(plain);
    let store_rate = n as f64 / store_times.iter().sum::<Duration>().as_secs_f64();
    let plain_rate = n as f64 / plain_times.iter().sum::<Duration>().as_secs_f64();
    let (store_lat, plain_lat) = (lat(&store_times), lat(&plain_times));
    b.table.add(
        "create",
        "note creations/s, 1 writer, durable (1 per tx)",
        rate(store_rate),
        format!("{} plain SQL", rate(plain_rate)),
        ratio(store_rate, plain_rate),
        ">= 0.5x baseline",
        Some(store_rate >= 0.5 * plain_rate),
    );
    b.table.add(
        "create",
        "  latency per creation, 1 writer, p50 / p99",
        format!("{} / {}", ms(store_lat.p50), ms(store_lat.p99)),
        format!("{} / {}", ms(plain_lat.p50), ms(plain_lat.p99)),
        ratio(store_lat.p50.as_secs_f64(), plain_lat.p50.as_secs_f64()),
        "-",
        None,
    );
    b.table.note(format!(
        "create, 1 writer: {} creations in {} WAL commits (the commit counter the 32-writer batch size is measured with)",
        n, single_commits
    ));

    // 32 writers: rounds on fresh databases of
    // - the store, durable, and plain SQL (synchronous=FULL) in transactions of the
    //   measured mean group size, and of 32;
    // - the store not durable (synchronous=NORMAL: no fsync per commit) and plain SQL
    //   (NORMAL) in transactions of its group size: the CPU ceiling of each.
    let per = scale.create_per_writer;
    let total = per * WRITERS;
    let mut runs: Vec<ManyRound> = Vec::new();
    for round in 0..scale.create_rounds {
        b.probe(&format!("create, 32 writers, round {}", round + 1));
        let notes: Vec<(String, Vec<String>)> = (0..total)
            .map(|i| b.corpus.note(&mut rng, 100_000 + round * total + i))
            .collect();
        let plain_notes: Vec<PlainNote> = notes
            .iter()
            .map(|(body, tags)| PlainNote::new(body, tags))
            .collect();
        let warmup: Vec<(String, Vec<String>)> =
            (0..WRITERS).map(|i| b.corpus.note(&mut rng, i)).collect();

        let (store_rate, batch) = store_many(
            &dir.join(format!("many-{round}-store.db")),
            true,
            warmup.clone(),
            notes.clone(),
        )
        .await;
        let batch_rows = (batch.round() as usize).max(1);
        let plain_rate = plain_many(
            &dir.join(format!("many-{round}-plain-batch.db")),
            "FULL",
            batch_rows,
            &plain_notes,
            &metadata,
        )
        .await;
        let plain32_rate = plain_many(
            &dir.join(format!("many-{round}-plain-32.db")),
            "FULL",
            WRITERS,
            &plain_notes,
            &metadata,
        )
        .await;
        let (nosync_rate, nosync_batch) = store_many(
            &dir.join(format!("many-{round}-store-normal.db")),
            false,
            warmup,
            notes,
        )
        .await;
        let nosync_rows = (nosync_batch.round() as usize).max(1);
        let plain_nosync_rate = plain_many(
            &dir.join(format!("many-{round}-plain-normal.db")),
            "NORMAL",
            nosync_rows,
            &plain_notes,
            &metadata,
        )
        .await;
        say(format!(
            "  round {}: durable: store {} (mean group {:.1}), plain SQL {} in tx of {}, {} in tx of 32; \
             synchronous=NORMAL: store {} (mean group {:.1}), plain SQL {} in tx of {}",
            round + 1,
            rate(store_rate),
            batch,
            rate(plain_rate),
            batch_rows,
            rate(plain32_rate),
            rate(nosync_rate),
            nosync_batch,
            rate(plain_nosync_rate),
            nosync_rows,
        ));
        runs.push(ManyRound {
            store_rate,
            batch,
            plain_rate,
            plain32_rate,
            nosync_rate,
            nosync_batch,
            plain_nosync_rate,
        });
    }
    let pick = |f: fn(&ManyRound) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let (store_rate, plain_rate, plain32_rate, batch) = (
        pick(|r| r.store_rate),
        pick(|r| r.plain_rate),
        pick(|r| r.plain32_rate),
        pick(|r| r.batch),
    );
    let (nosync_rate, nosync_batch, plain_nosync_rate) = (
        pick(|r| r.nosync_rate),
        pick(|r| r.nosync_batch),
        pick(|r| r.plain_nosync_rate),
    );
    b.table.add(
        "create",
        format!("note creations/s, {WRITERS} writers, durable"),
        rate(store_rate),
        "-",
        "-",
        ">= 10,000/s",
        Some(store_rate >= 10_000.0),
    );
    b.table.add(
        "create",
        format!("  vs plain SQL in tx of the mean group size ({batch:.1})"),
        rate(store_rate),
        format!("{} plain SQL", rate(plain_rate)),
        ratio(store_rate, plain_rate),
        ">= 0.5x baseline",
        Some(store_rate >= 0.5 * plain_rate),
    );
    b.table.add(
        "create",
        "  vs plain SQL in tx of 32",
        rate(store_rate),
        format!("{} plain SQL", rate(plain32_rate)),
        ratio(store_rate, plain32_rate),
        "-",
        None,
    );
    b.table.add(
        "create",
        format!(
            "  CPU ceiling: synchronous=NORMAL, {WRITERS} writers (mean group {nosync_batch:.1})"
        ),
        rate(nosync_rate),
        format!("{} plain SQL, NORMAL", rate(plain_nosync_rate)),
        ratio(nosync_rate, plain_nosync_rate),
        "-",
        None,
    );
    let list = |f: fn(&ManyRound) -> f64| {
        runs.iter()
            .map(|r| thousands(f(r)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    b.table.note(format!(
        "create, {WRITERS} writers: {} round(s) of {} creations, fresh databases each; medians shown. Per round: store {}/s \
         (mean group {}), plain(group) {}/s, plain(32) {}/s; NORMAL: store {}/s (mean group {}), plain {}/s",
        scale.create_rounds,
        thousands(total as f64),
        list(|r| r.store_rate),
        runs.iter().map(|r| format!("{:.1}", r.batch)).collect::<Vec<_>>().join(" / "),
        list(|r| r.plain_rate),
        list(|r| r.plain32_rate),
        list(|r| r.nosync_rate),
        runs.iter().map(|r| format!("{:.1}", r.nosync_batch)).collect::<Vec<_>>().join(" / "),
        list(|r| r.plain_nosync_rate),
    ));
    remove_section(&dir);
}

/// The FTS5 expression the store builds for parsed query terms (as in `read.rs`).
fn fts_expression(terms: &[QueryTerm]) -> String {
    terms
        .iter()
        .map(|term| match term {
            QueryTerm::Prefix(word) => format!("\"{word}\"*"),
            QueryTerm::Phrase(words) => format!("\"{}\"", words.join(" ")),
            QueryTerm::Cjk(chars) if chars.len() == 1 => format!("\"{}\"*", chars[0]),
            QueryTerm::Cjk(chars) => {
                let bigrams: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
                format!("\"{}\"", bigrams.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes the `i`-th query of a search class.
type QueryOf<'a> = Box<dyn Fn(usize, &mut Rng) -> String + 'a>;

fn plain_get(conn: &Connection, user: UserId, id: EntityId) -> usize {
    let mut bytes = 0;
    let mut statement = conn
        .prepare_cached(
            "SELECT rowid, id, user_id, type, title, content_hash, content_size, media_type, metadata, version, \
             created_at, updated_at, deleted_at, preview FROM entities WHERE id = ?1 AND user_id = ?2",
        )
        .expect("prepare");
    let (rowid, title, preview): (i64, String, String) = statement
        .query_row(params![id.as_bytes(), user.as_bytes()], |r| {
            Ok((r.get(0)?, r.get(4)?, r.get(13)?))
        })
        .expect("entity row");
    bytes += title.len() + preview.len();
    let mut tags = conn
        .prepare_cached("SELECT t.name FROM entity_tags et JOIN tags t ON t.rowid = et.tag_rowid WHERE et.entity_rowid = ?1")
        .expect("prepare");
    for name in tags
        .query_map([rowid], |r| r.get::<_, String>(0))
        .expect("tags")
    {
        bytes += name.expect("tag").len();
    }
    let mut task = conn
        .prepare_cached("SELECT status FROM task_details WHERE entity_rowid = ?1")
        .expect("prepare");
    bytes += task.exists([rowid]).map(usize::from).expect("task");
    bytes
}

fn plain_search(conn: &Connection, user: UserId, query: &str) -> usize {
    let expression = fts_expression(&parse_query(query));
    let mut statement = conn
        .prepare_cached(
            "SELECT e.rowid, e.id, e.title, bm25(search, 10.0, 1.0) AS rank FROM search JOIN entities e ON e.rowid = search.rowid \
             WHERE search MATCH ?1 AND e.user_id = ?2 AND e.deleted_at IS NULL ORDER BY rank LIMIT 50",
        )
        .expect("prepare");
    let rows = statement
        .query_map(params![expression, user.as_bytes()], |r| {
            r.get::<_, String>(2)
        })
        .expect("search");
    rows.map(|r| r.expect("row").len()).sum()
}

async fn bench_read(b: &mut Bench) {
    let dir = b.section_dir("read");
    let scale = b.scale.clone();
    let path = dir.join("read.db");
    let mut rng = Rng::new(2);

    let store = open_store(&path, false);
    let scope = owner_scope(&store).await;
    let n = scale.read_notes;
    say(format!(
        "  filling {} notes through the store (64 concurrent writers, synchronous=NORMAL)",
        thousands(n as f64)
    ));
    let mut ids = Vec::with_capacity(n);
    let mut fill_time = Duration::ZERO;
    for chunk_start in (0..n).step_by(20_000) {
        let notes: Vec<(String, Vec<String>)> = (chunk_start..(chunk_start + 20_000).min(n))
            .map(|i| b.corpus.note(&mut rng, i))
            .collect();
        let (chunk_ids, elapsed) = create_concurrently(&store, scope, notes, 64).await;
        ids.extend(chunk_ids);
        fill_time += elapsed;
        say(format!("    {} notes", thousands(ids.len() as f64)));
    }
    drop(store);
    b.table.note(format!(
        "read: filled {} notes through the store at {} (not durable, 64 writers); {} on disk",
        thousands(n as f64),
        rate(n as f64 / fill_time.as_secs_f64()),
        mib(file_bytes(&path))
    ));
    b.probe("read");
    let store = open_store(&path, true);
    let plain = raw_reader(&path);
    let user = scope.user_id;

    // get-by-id, alternating store and plain SQL.
    let (mut store_times, mut plain_times) = (Vec::new(), Vec::new());
    for i in 0..scale.read_gets + 100 {
        let id = ids[rng.below(ids.len())];
        let started = Instant::now();
        let found = store.entity(&scope, id).await.expect("get");
        let store_time = started.elapsed();
        assert!(found.is_some(), "entity {id} is missing");
        let started = Instant::now();
        std::hint::black_box(plain_get(&plain, user, id));
        let plain_time = started.elapsed();
        if i >= 100 {
            store_times.push(store_time);
            plain_times.push(plain_time);
        }
    }
    let (s, p) = (lat(&store_times), lat(&plain_times));
    b.table.add(
        "read",
        format!("get by id at {} notes, p50 / p99", thousands(n as f64)),
        format!("{} / {}", ms(s.p50), ms(s.p99)),
        format!("{} / {} plain SQL", ms(p.p50), ms(p.p99)),
        ratio(s.p99.as_secs_f64(), p.p99.as_secs_f64()),
        "-",
        None,
    );

    // Full-text search by query class.
    let corpus = &b.corpus;
    let classes: Vec<(&str, QueryOf<'_>)> = vec![
        (
            "rare word (~0.01 % of notes)",
            Box::new(|i, _| corpus.rare[i % corpus.rare.len()].clone()),
        ),
        (
            "1 % word",
            Box::new(|i, _| corpus.medium[i % corpus.medium.len()].clone()),
        ),
        (
            "10 % word",
            Box::new(|i, _| corpus.common[i % corpus.common.len()].clone()),
        ),
        (
            "two words (10 % AND 1 %)",
            Box::new(|i, _| {
                format!(
                    "{} {}",
                    corpus.common[i % corpus.common.len()],
                    corpus.medium[i % corpus.medium.len()]
                )
            }),
        ),
        (
            "vocabulary word (Zipf draw)",
            Box::new(|_, rng| corpus.word(rng).to_string()),
        ),
        (
            "2-letter prefix (matches most notes)",
            Box::new(|i, _| SYLLABLES[i % SYLLABLES.len()].to_string()),
        ),
    ];
    // The slowest class gets fewer queries, so the section stays within minutes.
    let queries_of = |label: &str| {
        if label.starts_with("2-letter") {
            (scale.read_queries / 4).max(40)
        } else {
            scale.read_queries
        }
    };
    let (mut all_store, mut all_plain) = (Vec::new(), Vec::new());
    for (label, query_of) in &classes {
        let (mut store_times, mut plain_times, mut matches) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..queries_of(label) + 10 {
            let query = query_of(i, &mut rng);
            if i < 4 {
                let expression = fts_expression(&parse_query(&query));
                let count: i64 = plain
                    .query_row(
                        "SELECT count(*) FROM search WHERE search MATCH ?1",
                        [expression],
                        |r| r.get(0),
                    )
                    .expect("count matches");
                matches.push(count as f64);
            }
            let request = SearchRequest {
                query: query.clone(),
                ..Default::default()
            };
            let started = Instant::now();
            let hits = store.search(&scope, &request).await.expect("search");
            let store_time = started.elapsed();
            std::hint::black_box(hits.len());
            let started = Instant::now();
            std::hint::black_box(plain_search(&plain, user, &query));
            let plain_time = started.elapsed();
            if i >= 10 {
                store_times.push(store_time);
                plain_times.push(plain_time);
            }
        }
        let (s, p) = (lat(&store_times), lat(&plain_times));
        let mean_matches = matches.iter().sum::<f64>() / matches.len().max(1) as f64;
        b.table.add(
            "read",
            format!(
                "search p50 / p99: {label}, ~{} matches",
                thousands(mean_matches)
            ),
            format!("{} / {}", ms(s.p50), ms(s.p99)),
            format!("{} / {} plain FTS", ms(p.p50), ms(p.p99)),
            ratio(s.p99.as_secs_f64(), p.p99.as_secs_f64()),
            "p99 < 10 ms",
            Some(s.p99 < Duration::from_millis(10)),
        );
        all_store.extend(store_times);
        all_plain.extend(plain_times);
    }
    let (s, p) = (lat(&all_store), lat(&all_plain));
    b.table.add(
        "read",
        format!(
            "search p50 / p99, all {} classes mixed, at {} notes",
            classes.len(),
            thousands(n as f64)
        ),
        format!("{} / {}", ms(s.p50), ms(s.p99)),
        format!("{} / {} plain FTS", ms(p.p50), ms(p.p99)),
        ratio(s.p99.as_secs_f64(), p.p99.as_secs_f64()),
        "p99 < 10 ms",
        Some(s.p99 < Duration::from_millis(10)),
    );
    drop(store);
    drop(plain);
    remove_section(&dir);
}

fn plain_state_at(conn: &Connection, user: UserId, id: EntityId, version: u64) -> usize {
    let snapshot: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT version, state FROM snapshots WHERE aggregate_id = ?1 AND version <= ?2 AND schema_version = 1 \
             ORDER BY version DESC LIMIT 1",
        )
        .expect("prepare")
        .query_row(params![id.as_bytes(), version as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok();
    let from = snapshot.as_ref().map_or(0, |(v, _)| *v);
    let mut bytes = snapshot.map_or(0, |(_, s)| s.len());
    let mut statement = conn
        .prepare_cached(
            "SELECT position, id, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at \
             FROM events WHERE aggregate_id = ?1 AND user_id = ?2 AND version > ?3 AND version <= ?4 ORDER BY version",
        )
        .expect("prepare");
    let rows = statement
        .query_map(
            params![id.as_bytes(), user.as_bytes(), from, version as i64],
            |r| Ok(r.get::<_, String>(7)?.len() + r.get::<_, String>(8)?.len()),
        )
        .expect("events");
    for row in rows {
        bytes += row.expect("row");
    }
    bytes
}

async fn bench_state_at(b: &mut Bench) {
    let dir = b.section_dir("state_at");
    let scale = b.scale.clone();
    let path = dir.join("state.db");
    let mut rng = Rng::new(3);
    let events = scale.state_events;

    let store = open_store(&path, false);
    let scope = owner_scope(&store).await;
    let (body, tags) = b.corpus.note(&mut rng, 0);
    let (ids, _) = create_concurrently(&store, scope, vec![(body, tags)], 1).await;
    let id = ids[0];
    let requests: Vec<CommandRequest> = (2..=events)
        .map(|v| change_request(scope, id, Change::Title(format!("Title change {v}"))))
        .collect();
    say(format!(
        "  {} title changes of one entity through the store",
        thousands(requests.len() as f64)
    ));
    let fill = execute_concurrently(&store, requests, WRITERS).await;
    let version = store
        .entity(&scope, id)
        .await
        .expect("get")
        .expect("entity")
        .version;
    assert_eq!(version, events, "the entity should have {events} versions");
    drop(store);
    b.table.note(format!(
        "state_at: one entity with {} events (title changes through the store, {} concurrent writers, {})",
        thousands(events as f64),
        WRITERS,
        rate((events - 1) as f64 / fill.as_secs_f64())
    ));
    b.probe("state_at");
    let store = open_store(&path, true);
    let plain = raw_reader(&path);
    let (mut store_times, mut plain_times) = (Vec::new(), Vec::new());
    for i in 0..scale.state_samples + 50 {
        let v = 1 + rng.below(events as usize) as u64;
        let started = Instant::now();
        let state = store
            .entity_at(&scope, id, AsOf::Version(v))
            .await
            .expect("entity at");
        let store_time = started.elapsed();
        assert_eq!(state.map(|s| s.version), Some(v));
        let started = Instant::now();
        std::hint::black_box(plain_state_at(&plain, scope.user_id, id, v));
        let plain_time = started.elapsed();
        if i >= 50 {
            store_times.push(store_time);
            plain_times.push(plain_time);
        }
    }
    let (s, p) = (lat(&store_times), lat(&plain_times));
    b.table.add(
        "state_at",
        format!(
            "state at a random version, {} events, p50 / p99",
            thousands(events as f64)
        ),
        format!("{} / {}", ms(s.p50), ms(s.p99)),
        format!("{} / {} plain SQL rows", ms(p.p50), ms(p.p99)),
        ratio(s.p99.as_secs_f64(), p.p99.as_secs_f64()),
        "< 5 ms",
        Some(s.p99 < Duration::from_millis(5)),
    );

    // Snapshots are a cache: without them every read folds from version 1.
    let writer = raw_connection(&path, "FULL");
    let dropped = writer
        .execute("DELETE FROM snapshots", [])
        .expect("drop snapshots");
    drop(writer);
    let mut cold = Vec::new();
    for _ in 0..(scale.state_samples / 10).max(20) {
        let v = 1 + rng.below(events as usize) as u64;
        let started = Instant::now();
        store
            .entity_at(&scope, id, AsOf::Version(v))
            .await
            .expect("entity at");
        cold.push(started.elapsed());
    }
    let c = lat(&cold);
    b.table.add(
        "state_at",
        format!("  same without snapshots ({dropped} deleted; fold from version 1)"),
        format!("{} / {}", ms(c.p50), ms(c.p99)),
        format!("{} / {} with snapshots", ms(s.p50), ms(s.p99)),
        ratio(c.p99.as_secs_f64(), s.p99.as_secs_f64()),
        "-",
        None,
    );
    drop(store);
    drop(plain);
    remove_section(&dir);
}

async fn bench_rebuild(b: &mut Bench) {
    let dir = b.section_dir("rebuild");
    let events = b.scale.rebuild_events;
    let path = dir.join("rebuild.db");
    let owner = schema_only(&path).await;
    say(format!(
        "  generating a log of {} events by direct SQL",
        thousands(events as f64)
    ));
    let started = Instant::now();
    let content_rows = fill_content_log(&path, owner, &b.corpus, events);
    b.table.note(format!(
        "rebuild: log of {} events ({} notes x 10: created with 1 KiB content and 2 tags, 3 title, 3 content, \
         2 tag and 1 metadata changes) and {} content rows, generated in {:.1} s; {} on disk",
        thousands(events as f64),
        thousands((events / EVENTS_PER_STREAM) as f64),
        thousands(content_rows as f64),
        started.elapsed().as_secs_f64(),
        mib(file_bytes(&path))
    ));
    b.probe("rebuild");

    // Baseline: read the whole log in the order rebuild reads it, without decoding.
    let plain = raw_reader(&path);
    let started = Instant::now();
    let mut scanned = 0u64;
    let mut bytes = 0usize;
    {
        let mut statement = plain
            .prepare(
                "SELECT position, id, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at, \
                 aggregate_type FROM events ORDER BY aggregate_id, version",
            )
            .expect("prepare the scan");
        let mut rows = statement.query([]).expect("scan");
        while let Some(row) = rows.next().expect("row") {
            for column in [1, 2, 4, 6, 7, 8, 10] {
                bytes += row
                    .get_ref(column)
                    .expect("column")
                    .as_bytes()
                    .map_or(0, <[u8]>::len);
            }
            scanned += 1;
        }
    }
    std::hint::black_box(bytes);
    let scan_rate = scanned as f64 / started.elapsed().as_secs_f64();
    drop(plain);

    let store = open_store(&path, true);
    say("  first rebuild (builds the projections of a log that never had them)");
    let first = store
        .rebuild(&progress_printer("first rebuild"))
        .await
        .expect("rebuild");
    say("  second rebuild (drops and rebuilds, like `synap admin rebuild`)");
    let started = Instant::now();
    let report = store
        .rebuild(&progress_printer("rebuild"))
        .await
        .expect("rebuild");
    let wall = started.elapsed().as_secs_f64();
    let rebuild_rate = report.events as f64 / wall;
    b.table.add(
        "rebuild",
        format!(
            "projection rebuild, {} events",
            thousands(report.events as f64)
        ),
        format!("{} ({:.1} s)", rate(rebuild_rate), wall),
        format!("{} plain log scan", rate(scan_rate)),
        ratio(rebuild_rate, scan_rate),
        ">= 200,000 events/s",
        Some(rebuild_rate >= 200_000.0),
    );
    b.table.add(
        "rebuild",
        "  first build (no projections to drop)",
        format!(
            "{} ({:.1} s)",
            rate(first.events as f64 / first.seconds),
            first.seconds
        ),
        "-",
        "-",
        "-",
        None,
    );
    say("  verify (rebuild off to the side and compare)");
    let started = Instant::now();
    let verify = store
        .verify(&progress_printer("verify"))
        .await
        .expect("verify");
    let verify_time = started.elapsed().as_secs_f64();
    b.table.add(
        "rebuild",
        format!(
            "  admin verify of the same log ({})",
            if verify.is_clean() {
                "clean".to_string()
            } else {
                format!("{} differences", verify.differences.len())
            }
        ),
        format!(
            "{} ({:.1} s)",
            rate(verify.events_checked as f64 / verify_time),
            verify_time
        ),
        "-",
        "-",
        "clean",
        Some(verify.is_clean()),
    );
    for difference in verify.differences.iter().take(5) {
        b.table.note(format!("verify difference: {difference}"));
    }
    b.table.note(format!(
        "rebuild: {} entities, {} relations; store-reported {:.1} s",
        thousands(report.entities as f64),
        report.relations,
        report.seconds
    ));
    drop(store);
    remove_section(&dir);
}

async fn bench_amplification(b: &mut Bench) {
    let dir = b.section_dir("amplification");
    let scale = b.scale.clone();
    let path = dir.join("amplification.db");
    let mut rng = Rng::new(4);
    let store = open_store(&path, false);
    let scope = owner_scope(&store).await;
    let notes: Vec<(String, Vec<String>)> = (0..scale.amp_notes)
        .map(|i| b.corpus.note(&mut rng, i))
        .collect();
    let mut bodies: Vec<String> = notes.iter().map(|(body, _)| body.clone()).collect();
    say(format!(
        "  {} notes, then {} content edits of each, through the store",
        thousands(scale.amp_notes as f64),
        scale.amp_edits
    ));
    let (ids, _) = create_concurrently(&store, scope, notes, WRITERS).await;
    for edit in 1..=scale.amp_edits {
        let requests: Vec<CommandRequest> = ids
            .iter()
            .zip(bodies.iter_mut())
            .map(|(id, body)| {
                *body = b.corpus.edit(&mut rng, body, edit);
                change_request(
                    scope,
                    *id,
                    Change::Content(Some(NewContent::markdown(body.clone()))),
                )
            })
            .collect();
        execute_concurrently(&store, requests, WRITERS).await;
    }
    let before = store.stats().await.expect("stats");
    let conn = raw_connection(&path, "FULL");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let stats = store.stats().await.expect("stats");
    b.table.add(
        "amplification",
        format!(
            "storage amplification, {} notes x {} edits (after checkpoint)",
            thousands(scale.amp_notes as f64),
            scale.amp_edits
        ),
        format!(
            "{:.2} ({} / {})",
            stats.amplification,
            mib(stats.bytes_on_disk),
            mib(stats.content_bytes)
        ),
        "-",
        "-",
        "<= 2.0",
        Some(stats.amplification <= 2.0),
    );
    b.table.add(
        "amplification",
        "  same, before the WAL checkpoint (as `admin stats` would show)",
        format!(
            "{:.2} ({})",
            before.amplification,
            mib(before.bytes_on_disk)
        ),
        "-",
        "-",
        "-",
        None,
    );

    // Baseline: the same distinct bodies alone in a plain table.
    let plain_path = dir.join("bodies.db");
    {
        let plain = Connection::open(&plain_path).expect("open");
        plain
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE bodies (rowid INTEGER PRIMARY KEY, hash BLOB NOT NULL, body TEXT NOT NULL);")
            .expect("schema");
        plain
            .execute("ATTACH DATABASE ?1 AS store", [path.to_string_lossy()])
            .expect("attach");
        plain
            .execute_batch("INSERT INTO bodies (hash, body) SELECT hash, body FROM store.contents; DETACH DATABASE store;")
            .expect("copy bodies");
        plain
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
    let plain_amp = file_bytes(&plain_path) as f64 / stats.content_bytes.max(1) as f64;
    b.table.add(
        "amplification",
        "  vs the distinct bodies alone in a plain table",
        format!("{:.2}", stats.amplification),
        format!("{plain_amp:.2} plain table"),
        ratio(stats.amplification, plain_amp),
        "-",
        None,
    );

    // Where the bytes are.
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size");
    let free_pages: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .expect("freelist");
    let mut breakdown = Vec::new();
    {
        let mut statement = conn
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            .expect("dbstat");
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .expect("dbstat rows");
        for row in rows {
            let (name, size) = row.expect("row");
            if size as u64 * 200 >= stats.bytes_on_disk {
                breakdown.push(format!("{name} {}", mib(size as u64)));
            }
        }
    }
    b.table.note(format!(
        "amplification: {} events, {} content versions; pages by table/index (>= 0.5 %): {}; free pages {}",
        thousands(stats.events as f64),
        thousands(stats.content_versions as f64),
        breakdown.join(", "),
        mib((free_pages * page_size) as u64)
    ));
    drop(conn);
    drop(store);
    remove_section(&dir);
}

#[derive(Debug)]
struct Level {
    events: u64,
    store: SqliteStore,
    scope: Scope,
    /// Streams of the generated log (title-change targets), empty at level 0.
    filled: Vec<Uuid>,
    created: Vec<EntityId>,
    path: PathBuf,
    create_times: Vec<Duration>,
    change_times: Vec<Duration>,
    /// WAL pages written per commit (commits that did not restart the WAL).
    create_pages: Vec<u32>,
    change_pages: Vec<u32>,
    /// Whether each measured commit also ran a WAL checkpoint (SQLite runs the
    /// automatic checkpoint inside the commit that crosses 1,000 WAL pages).
    create_checkpoints: Vec<bool>,
    change_checkpoints: Vec<bool>,
}

/// Frames copied back into the database by checkpoints so far (`nBackfill`, bytes
/// 96..100 of the `-shm` file); it grows during a checkpoint and drops to 0 when
/// the WAL restarts.
fn wal_backfill(db: &Path) -> Option<u32> {
    use std::io::Read as _;
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let mut header = [0u8; 100];
    std::fs::File::open(PathBuf::from(shm))
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    Some(u32::from_ne_bytes(header[96..100].try_into().ok()?))
}

fn checkpointed(before: Option<u32>, after: Option<u32>) -> bool {
    matches!((before, after), (Some(before), Some(after)) if after > before)
}

/// Latencies of the commits that did not run a checkpoint, and of those that did.
fn split_by_checkpoint(times: &[Duration], checkpoints: &[bool]) -> (Vec<Duration>, Vec<Duration>) {
    let (mut plain, mut with) = (Vec::new(), Vec::new());
    for (time, checkpoint) in times.iter().zip(checkpoints) {
        if *checkpoint {
            with.push(*time)
        } else {
            plain.push(*time)
        }
    }
    (plain, with)
}

/// Pages one commit added to the WAL, unless a checkpoint restarted it meanwhile.
fn pages_between(before: Option<u32>, after: Option<u32>) -> Option<u32> {
    match (before, after) {
        (Some(before), Some(after)) if after > before => Some(after - before),
        _ => None,
    }
}

async fn bench_append(b: &mut Bench) {
    let dir = b.section_dir("append");
    let scale = b.scale.clone();
    let mut rng = Rng::new(5);
    let mut levels = Vec::new();
    for &events in &scale.append_levels {
        let path = dir.join(format!("append-{events}.db"));
        let owner = schema_only(&path).await;
        let mut filled = Vec::new();
        if events > 0 {
            say(format!(
                "  filling a log with {} events by direct SQL",
                thousands(events as f64)
            ));
            let started = Instant::now();
            filled = fill_title_log(&path, owner, events);
            let fill_time = started.elapsed().as_secs_f64();
            let store = open_store(&path, true);
            let report = store
                .rebuild(&progress_printer("rebuild"))
                .await
                .expect("rebuild");
            b.table.note(format!(
                "append: {} events filled in {:.1} s ({}); projections built by rebuild in {:.1} s ({}; title-only notes); {} on disk",
                thousands(events as f64),
                fill_time,
                rate(events as f64 / fill_time),
                report.seconds,
                rate(report.events as f64 / report.seconds),
                mib(file_bytes(&path))
            ));
            drop(store);
        }
        let store = open_store(&path, true);
        let scope = owner_scope(&store).await;
        levels.push(Level {
            events,
            store,
            scope,
            filled,
            created: Vec::new(),
            path,
            create_times: Vec::new(),
            change_times: Vec::new(),
            create_pages: Vec::new(),
            change_pages: Vec::new(),
            create_checkpoints: Vec::new(),
            change_checkpoints: Vec::new(),
        });
    }
    b.probe("append");
    say(format!(
        "  {} durable creations and {} durable title changes per level, round-robin over the levels",
        scale.append_samples, scale.append_samples
    ));
    let warm = 20;
    for i in 0..scale.append_samples + warm {
        let count = levels.len();
        for k in 0..count {
            let level = &mut levels[(i + k) % count];
            let (body, tags) = b.corpus.note(&mut rng, i);
            let id = EntityId::new_v7();
            let request = create_request(level.scope, id, body, tags);
            let frames = wal_frames(&level.path);
            let backfill = wal_backfill(&level.path);
            let started = Instant::now();
            level.store.execute(request).await.expect("create");
            if i >= warm {
                level.create_times.push(started.elapsed());
                level
                    .create_checkpoints
                    .push(checkpointed(backfill, wal_backfill(&level.path)));
                level
                    .create_pages
                    .extend(pages_between(frames, wal_frames(&level.path)));
            }
            level.created.push(id);
        }
        for k in 0..count {
            let level = &mut levels[(i + k) % count];
            let target = if level.filled.is_empty() {
                level.created[rng.below(level.created.len())]
            } else {
                EntityId(level.filled[rng.below(level.filled.len())])
            };
            let request =
                change_request(level.scope, target, Change::Title(format!("Renamed {i}")));
            let frames = wal_frames(&level.path);
            let backfill = wal_backfill(&level.path);
            let started = Instant::now();
            level.store.execute(request).await.expect("title change");
            if i >= warm {
                level.change_times.push(started.elapsed());
                level
                    .change_checkpoints
                    .push(checkpointed(backfill, wal_backfill(&level.path)));
                level
                    .change_pages
                    .extend(pages_between(frames, wal_frames(&level.path)));
            }
        }
    }
    let base_create = lat(&levels[0].create_times);
    let base_change = lat(&levels[0].change_times);
    let last = levels.last().map_or(0, |l| l.events);
    for (label, pick, base) in [
        ("create a 1 KiB note", true, base_create),
        ("title change of a random entity", false, base_change),
    ] {
        for level in &levels {
            let l = lat(if pick {
                &level.create_times
            } else {
                &level.change_times
            });
            let name = format!(
                "append latency p50 / p99, {label}, {} events in log",
                thousands(level.events as f64)
            );
            if level.events == 0 {
                b.table.add(
                    "append",
                    name,
                    format!("{} / {}", ms(l.p50), ms(l.p99)),
                    "-",
                    "-",
                    "-",
                    None,
                );
                continue;
            }
            let r50 = l.p50.as_secs_f64() / base.p50.as_secs_f64();
            let r99 = l.p99.as_secs_f64() / base.p99.as_secs_f64();
            let targeted = level.events == last;
            b.table.add(
                "append",
                name,
                format!("{} / {}", ms(l.p50), ms(l.p99)),
                format!("{} / {} at 0", ms(base.p50), ms(base.p99)),
                format!("{r50:.2}x / {r99:.2}x"),
                if targeted { "p50 <= 1.2x at 0" } else { "-" },
                targeted.then_some(r50 <= 1.2),
            );
        }
    }
    // Without the commits that also ran the automatic checkpoint.
    for (label, pick) in [("create", true), ("title change", false)] {
        let split = |level: &Level| {
            if pick {
                split_by_checkpoint(&level.create_times, &level.create_checkpoints)
            } else {
                split_by_checkpoint(&level.change_times, &level.change_checkpoints)
            }
        };
        let (base_plain, _) = split(&levels[0]);
        let base = lat(&base_plain);
        for level in &levels {
            let (plain, with) = split(level);
            let (l, c) = (lat(&plain), lat(&with));
            b.table.add(
                "append",
                format!(
                    "  {label}, {} events, commits without a checkpoint ({} of {} had one, mean {})",
                    thousands(level.events as f64),
                    with.len(),
                    plain.len() + with.len(),
                    ms(c.mean)
                ),
                format!("{} / {}", ms(l.p50), ms(l.p99)),
                if level.events == 0 { "-".to_string() } else { format!("{} / {} at 0", ms(base.p50), ms(base.p99)) },
                if level.events == 0 {
                    "-".to_string()
                } else {
                    format!(
                        "{:.2}x / {:.2}x",
                        l.p50.as_secs_f64() / base.p50.as_secs_f64(),
                        l.p99.as_secs_f64() / base.p99.as_secs_f64()
                    )
                },
                "-",
                None,
            );
        }
    }
    let mean = |pages: &[u32]| {
        pages.iter().map(|&p| f64::from(p)).sum::<f64>() / pages.len().max(1) as f64
    };
    b.table.note(format!(
        "append: WAL pages (4 KiB) written per commit, create / title change: {}",
        levels
            .iter()
            .map(|l| format!(
                "{} events {:.1} / {:.1}",
                thousands(l.events as f64),
                mean(&l.create_pages),
                mean(&l.change_pages)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    drop(levels);
    remove_section(&dir);
}

// ---------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------

fn main() {
    let scale = match std::env::var("SYNAP_BENCH_SCALE").as_deref() {
        Ok("quick") => Scale::quick(),
        Ok("full") | Err(_) => Scale::full(),
        Ok(other) => {
            eprintln!("SYNAP_BENCH_SCALE={other:?} is not a scale; use full or quick");
            std::process::exit(2);
        }
    };
    let only: Vec<String> = match std::env::var("SYNAP_BENCH_ONLY") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => SECTIONS.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(unknown) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        eprintln!(
            "SYNAP_BENCH_ONLY names {unknown:?}, which is not a section; use some of {}",
            SECTIONS.join(",")
        );
        std::process::exit(2);
    }
    let base = std::env::var_os("SYNAP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).expect("create the scratch directory");
    let scratch = tempfile::Builder::new()
        .prefix("synap-bench-")
        .tempdir_in(&base)
        .expect("create a scratch directory");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut bench = Bench {
        dir: scratch.path().to_path_buf(),
        scale: scale.clone(),
        table: Table::default(),
        corpus: Corpus::new(),
        probes: Vec::new(),
        cpu: Vec::new(),
    };
    let header = machine(&bench.dir);
    say(format!(
        "synap-store-sqlite benchmark, scale {}, sections {}",
        scale.name,
        only.join(",")
    ));
    for line in &header {
        say(format!("  {line}"));
    }
    let first = fsync_probe(&bench.dir, 200);
    say(format!("  fsync probe (start): {}", probe_text(&first)));
    bench.probes.push(("start".into(), first));

    let started = Instant::now();
    runtime.block_on(async {
        for section in SECTIONS {
            if !only.iter().any(|s| s == section) {
                continue;
            }
            say(format!("\n[{section}]"));
            bench.probe(section);
            let section_started = Instant::now();
            let cpu_before = CpuMark::now();
            match *section {
                "create" => bench_create(&mut bench).await,
                "read" => bench_read(&mut bench).await,
                "state_at" => bench_state_at(&mut bench).await,
                "rebuild" => bench_rebuild(&mut bench).await,
                "amplification" => bench_amplification(&mut bench).await,
                "append" => bench_append(&mut bench).await,
                _ => unreachable!("checked above"),
            }
            let cpu = cpu_before.share_since();
            say(format!(
                "  ({section} took {:.1} s; this process used {:.0} % of the machine's CPU, other processes {:.0} %)",
                section_started.elapsed().as_secs_f64(),
                cpu.0 * 100.0,
                cpu.1 * 100.0
            ));
            bench.cpu.push((section.to_string(), section_started.elapsed().as_secs_f64(), cpu.0, cpu.1));
        }
    });
    bench.probe("end");
    drop(runtime);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## synap-store-sqlite benchmark (scale {}, {:.0} s)\n",
        scale.name,
        started.elapsed().as_secs_f64()
    );
    for line in &header {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(
        out,
        "\nfsync probes (4 KiB append + fdatasync, same disk as the databases):\n"
    );
    for (label, p) in &bench.probes {
        let _ = writeln!(
            out,
            "- {label}: p50 {}, p99 {}, mean {}, max {} (n={})",
            ms(p.p50),
            ms(p.p99),
            ms(p.mean),
            ms(p.max),
            p.n
        );
    }
    let _ = writeln!(
        out,
        "\nCPU use per section (share of all {} CPUs; other processes compete with the single writer thread):\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (section, seconds, own, other) in &bench.cpu {
        let _ = writeln!(
            out,
            "- {section}: {seconds:.0} s, this process {:.0} %, other processes {:.0} %",
            own * 100.0,
            other * 100.0
        );
    }
    let _ = writeln!(out);
    out.push_str(&bench.table.render());
    if !bench.table.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n");
        for note in &bench.table.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    println!("{out}");
    if keep_files() {
        say(format!(
            "kept the databases in {}",
            scratch.keep().display()
        ));
    } else {
        drop(scratch);
    }
}
