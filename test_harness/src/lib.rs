//! Throwaway Erlang nodes and PostgreSQL clusters for tests.
//!
//! Each [`ErlNode`] gets a unique name and a random cookie, is waited for
//! until it has run its start-up code and EPMD knows it (or the start fails
//! loudly), and is killed when dropped. Each [`PgCluster`] gets its own
//! directory and port, is started by the `start-postgres` script in `bin/`
//! (the one implementation, shared with developers), and is stopped and
//! deleted when dropped.
#![warn(missing_docs)]

mod fake_node;
mod postgres;

pub use fake_node::FakeNode;
pub use postgres::PgCluster;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The host of long-named nodes: an address every machine has.
const LONG_HOST: &str = "127.0.0.1";

/// How long a node may take to start before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `erl` node, killed on drop.
#[derive(Debug)]
pub struct ErlNode {
    /// Full node name, `name@host`.
    pub name: String,
    /// The short part of the name, before `@`.
    pub alive: String,
    /// The node's cookie (random per node).
    pub cookie: String,
    long_host: Option<&'static str>,
    child: Child,
}

/// Something unique enough per test run: process id, a counter and the clock.
pub(crate) fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// This machine's short host name, as `erl -sname` uses it.
pub fn short_host() -> String {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .expect("`hostname -s` runs");
    String::from_utf8(out.stdout)
        .expect("host name is UTF-8")
        .trim()
        .to_owned()
}

impl ErlNode {
    /// Starts `erl -sname <unique> -setcookie <random>` with `extra` arguments
    /// and waits until every `-eval` in `extra` has run and EPMD lists the
    /// node. Panics with the reason if it does not come up within 30 seconds.
    pub fn start(prefix: &str, extra: &[&str]) -> ErlNode {
        Self::start_as(unique(prefix), unique("cookie"), None, extra)
    }

    /// Like [`ErlNode::start`], but with a long name (`erl -name
    /// <unique>@127.0.0.1`), as clusters using fully qualified names run.
    pub fn start_long(prefix: &str, extra: &[&str]) -> ErlNode {
        Self::start_as(unique(prefix), unique("cookie"), Some(LONG_HOST), extra)
    }

    /// Kills the node and starts it again under the same name and cookie,
    /// as an operator restarting a service would.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// [`ErlNode::restart`] with another cookie (as a node redeployed with
    /// a new one).
    pub fn restart_with_cookie(&mut self, cookie: &str) {
        self.kill();
        let fresh = Self::start_as(self.alive.clone(), cookie.to_owned(), self.long_host, &[]);
        *self = fresh;
    }

    /// [`ErlNode::restart`], running `extra` (as [`ErlNode::start`] takes
    /// them) in the new node.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        let fresh = Self::start_as(
            self.alive.clone(),
            self.cookie.clone(),
            self.long_host,
            extra,
        );
        // The old process is already reaped; dropping it again is harmless.
        *self = fresh;
    }

    fn start_as(
        alive: String,
        cookie: String,
        long_host: Option<&'static str>,
        extra: &[&str],
    ) -> ErlNode {
        // A last -eval marks the node ready: -eval expressions run in order,
        // after the node has registered with EPMD.
        let ready = std::env::temp_dir().join(format!("{alive}.ready"));
        let mark_ready = format!("ok = file:write_file(\"{}\", <<>>)", ready.display());
        let (flag, name) = match long_host {
            Some(host) => ("-name", format!("{alive}@{host}")),
            None => ("-sname", format!("{alive}@{}", short_host())),
        };
        // +Bd: no break handler, so an interrupt (Ctrl-C on the test run)
        // ends the node instead of leaving it waiting at the BREAK menu.
        let child = Command::new("erl")
            .args([
                flag,
                &name,
                "-setcookie",
                &cookie,
                "-noshell",
                "-noinput",
                "+Bd",
            ])
            .args(extra)
            .args(["-eval", &mark_ready])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("`erl` not found: install Erlang/OTP (scripts/setup does)");
        let mut node = ErlNode {
            name,
            alive,
            cookie,
            long_host,
            child,
        };
        node.wait_ready(&ready);
        let _ = std::fs::remove_file(&ready);
        node
    }

    fn wait_ready(&mut self, ready: &std::path::Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("erl node {} exited during start-up: {status}", self.name);
            }
            if ready.exists() && epmd_names().iter().any(|n| n == &self.alive) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "erl node {} not ready and registered with EPMD after {START_TIMEOUT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the node now (as a crash would) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ErlNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Names EPMD on localhost knows (empty if EPMD is not running).
pub fn epmd_names() -> Vec<String> {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", 4369)) else {
        return Vec::new();
    };
    // NAMES_REQ: length 1, tag 110.
    if stream.write_all(&[0, 1, 110]).is_err() {
        return Vec::new();
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    // EPMDPortNo (4 bytes), then lines "name <alive> at port <port>\n".
    let text = String::from_utf8_lossy(reply.get(4..).unwrap_or_default()).into_owned();
    text.lines()
        .filter_map(|line| {
            line.strip_prefix("name ")?
                .split(' ')
                .next()
                .map(str::to_owned)
        })
        .collect()
}
