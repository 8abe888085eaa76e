//! Throwaway PostgreSQL clusters. The scripts in `bin/` are the one
//! implementation of starting and stopping a cluster; this module picks a
//! fresh directory and port, runs them, and talks to the server with `psql`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::unique;

/// Where the development scripts (`start-postgres`, `stop-postgres`, …) live.
/// Found from the running test's package directory upwards, so that a
/// build reused from another checkout still runs this checkout's scripts.
fn bin_dir() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    start
        .iter()
        .flat_map(|dir| dir.ancestors())
        .flat_map(|dir| [dir.join("bin"), dir.join("test_harness/bin")])
        .find(|bin| bin.join("start-postgres").is_file())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("bin"))
}

/// A port nobody listens on right now. The server listens on its unix socket
/// only, where the port just names the socket file, so a race with another
/// program taking the port in between does no harm.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0 finds a free port")
        .port()
}

/// Where clusters are made: `$ERLANG_CNODE_TEST_DIR` (`scripts/test` gives
/// each run its own, and removes it however the run ends), else `/var/tmp`.
fn base_dir() -> PathBuf {
    std::env::var_os("ERLANG_CNODE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// `name` as an SQL identifier, double-quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL cluster of its own in a unique directory under `/var/tmp`
/// (or `$ERLANG_CNODE_TEST_DIR`),
/// listening on a unix socket only, with trust authentication for the
/// superuser `postgres`. Dropping it stops the server and deletes the
/// directory.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    home: Option<String>,
}

impl PgCluster {
    /// Creates and starts a cluster with `bin/start-postgres`, which waits
    /// until the server accepts connections. Panics with the script's output
    /// (the server log's last lines among it) if it does not come up within
    /// 30 seconds.
    pub fn start() -> PgCluster {
        Self::start_with_env(&[])
    }

    /// Like [`PgCluster::start`], with extra environment variables for the
    /// server (e.g. `ERL_EPMD_PORT`, or `HOME`, where it looks for
    /// `~/.erlang.cookie`).
    pub fn start_with_env(vars: &[(&str, &str)]) -> PgCluster {
        let dir = base_dir().join(unique("erlang_cnode-pg"));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Built before starting, so that a failed start is cleaned up too.
        let cluster = PgCluster {
            dir,
            port: free_port(),
            home: vars
                .iter()
                .find(|(key, _)| *key == "HOME")
                .map(|(_, dir)| (*dir).to_owned()),
        };
        cluster.start_server(vars);
        cluster
    }

    /// Adds `settings` (lines of `postgresql.conf`) to the cluster's
    /// configuration; they take effect at the next start or reload.
    pub fn configure(&self, settings: &str) {
        let path = self.dir.join("data/postgresql.conf");
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        writeln!(conf, "{settings}").expect("postgresql.conf is writable");
    }

    /// Stops the server (`immediate`: as a crash does, with no shutdown
    /// checkpoint) and starts it again, waiting until it accepts
    /// connections.
    pub fn restart(&self, immediate: bool) {
        let mut stop = self.script("stop-postgres");
        if immediate {
            stop.arg("--immediate");
        }
        let out = stop.output().expect("bin/stop-postgres runs");
        assert!(
            out.status.success(),
            "stop-postgres failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.start_server(&[]);
    }

    fn start_server(&self, vars: &[(&str, &str)]) {
        // HOME is reset for the server by runuser: the script sets it.
        let out = self
            .script("start-postgres")
            .args(self.home.as_ref().map(|dir| format!("--home={dir}")))
            .envs(vars.iter().copied().filter(|(key, _)| *key != "HOME"))
            .output()
            .expect("bin/start-postgres runs");
        assert!(
            out.status.success(),
            "start-postgres --dir {} --port {} failed ({}):\n{}{}",
            self.dir.display(),
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// The port, which names the socket file in [`socket_dir`](Self::socket_dir).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's unix socket: `psql -h` takes it.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    /// The cluster directory: data in `data/`, the socket in `socket/`, the
    /// server log in `postgres.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `sql` through `psql` in database `db` as `postgres`, carrying on
    /// past errors (`ON_ERROR_STOP=0`, so the exit status stays 0 when a
    /// statement fails: look for `ERROR:` in stderr).
    pub fn psql(&self, db: &str, sql: &str) -> Output {
        self.psql_stdin(db, &[], sql)
    }

    /// Runs the SQL file at `path` in database `db` the way pg_regress does:
    /// the file on standard input, each statement echoed (`-a`), and stderr
    /// interleaved with stdout as on a terminal, all in the returned
    /// `stdout` (`stderr` is empty). `extra_args` go to `psql` as they are,
    /// for instance `["-v", "node=demo@host"]` to set a variable.
    pub fn psql_file(&self, db: &str, path: &Path, extra_args: &[&str]) -> Output {
        let input =
            File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let (mut reader, writer) = std::io::pipe().expect("a pipe for psql's output");
        let mut command = self.psql_command(db);
        command
            .arg("-a")
            .args(extra_args)
            .stdin(input)
            .stdout(writer.try_clone().expect("a pipe for psql's output"))
            .stderr(writer);
        let mut child = command
            .spawn()
            .expect("`psql` not found: run scripts/setup");
        // The command holds the pipe's writing end: close it, or the read
        // below never sees the end.
        drop(command);
        let mut stdout = Vec::new();
        reader
            .read_to_end(&mut stdout)
            .expect("psql's output reads");
        let status = child.wait().expect("psql's exit status");
        Output {
            status,
            stdout,
            stderr: Vec::new(),
        }
    }

    /// Creates database `name` (any name: it is quoted). Panics with psql's
    /// output if that fails.
    pub fn create_db(&self, name: &str) {
        let out = self.psql_stdin(
            "postgres",
            &["-v", "ON_ERROR_STOP=1"],
            &format!("CREATE DATABASE {};", quote_ident(name)),
        );
        assert!(
            out.status.success(),
            "CREATE DATABASE {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        let path = self.dir.join("postgres.log");
        let bytes =
            fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A script from `bin/` with this cluster's `--dir` and `--port`.
    fn script(&self, name: &str) -> Command {
        let mut command = Command::new(bin_dir().join(name));
        command
            .arg("--dir")
            .arg(&self.dir)
            .args(["--port", &self.port.to_string()])
            .stdin(Stdio::null());
        command
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut command = Command::new("psql");
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db]);
        command
    }

    fn psql_stdin(&self, db: &str, extra_args: &[&str], sql: &str) -> Output {
        let mut child = self
            .psql_command(db)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`psql` not found: run scripts/setup");
        let mut stdin = child.stdin.take().expect("psql's stdin is piped");
        // Written from another thread so that a long input cannot deadlock
        // against output psql is waiting to hand back.
        let sql = sql.to_owned();
        let writer = std::thread::spawn(move || {
            // psql stops reading if it fails to connect; its output says why.
            let _ = stdin.write_all(sql.as_bytes());
        });
        let out = child.wait_with_output().expect("psql's output");
        writer.join().expect("writing psql's input");
        out
    }
}

impl PgCluster {
    /// Stops the server and deletes the directory, as dropping does; for a
    /// cluster that is never dropped (one held in a `static`, stopped from
    /// an `atexit` handler). Doing it twice does no harm.
    pub fn stop(&self) {
        if !self.dir.exists() {
            return;
        }
        // No panics here: this may run while a failed test unwinds.
        match self.script("stop-postgres").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "stop-postgres --dir {} failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("bin/stop-postgres did not run: {e}"),
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
