//! The node that lives in this backend: its connections, created on first
//! use, and how each request gets its cookie, deadline and waits.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use erlang_cnode_node::{LocalNode, NodeName, Nodes, Target};

use crate::error::{SqlError, SqlResult};
use crate::guc;
use crate::latch::LatchWait;

thread_local! {
    static NODES: RefCell<Option<Nodes>> = const { RefCell::new(None) };
}

/// This machine's host name up to the first dot, as `erl -sname` uses it.
fn short_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    match name.split('.').next() {
        Some(short) if !short.is_empty() => short.to_owned(),
        _ => "localhost".to_owned(),
    }
}

fn new_nodes() -> SqlResult<Nodes> {
    let prefix = guc::node_prefix();
    let local = match guc::node_host() {
        Some(host) => LocalNode::new(&prefix, &host),
        None => LocalNode::automatic(&prefix, &short_host()),
    };
    let local = local.map_err(|e| {
        SqlError::invalid(format!(
            "erlang_cnode.node_prefix or node_host gives no valid node name: {e}"
        ))
    })?;
    Ok(Nodes::new(local))
}

/// Runs `f` on this backend's node. If `f` is cut off by a PostgreSQL
/// ERROR (a cancel seen where the node layer could not report it), the
/// connection to `node` may hold half a frame, so it is dropped.
pub fn with_nodes<T>(
    node: Option<&NodeName>,
    f: impl FnOnce(&mut Nodes) -> erlang_cnode_node::Result<T>,
) -> SqlResult<T> {
    struct DropOnUnwind<'a> {
        nodes: &'a mut Nodes,
        node: Option<&'a NodeName>,
    }
    impl Drop for DropOnUnwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                if let Some(node) = self.node {
                    // Keep the cookie: the next request reconnects with it.
                    self.nodes.drop_connection(node);
                }
            }
        }
    }
    let outcome = NODES.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(new_nodes()?);
        }
        let nodes = slot.as_mut().expect("created above");
        nodes.set_max_message_size(guc::max_message_size());
        let guard = DropOnUnwind { nodes, node };
        Ok::<_, SqlError>(f(&mut *guard.nodes))
    })?;
    outcome.map_err(SqlError::from)
}

/// Whether this backend has a node yet (it is made on first connect).
pub fn local_name() -> Option<String> {
    NODES.with(|cell| cell.borrow().as_ref().map(|n| n.local_name()))
}

/// The cookie for a first connection: `erlang_cnode.cookie`, else the
/// cookie file of the server's OS user, as `erl` reads it.
pub fn configured_cookie() -> erlang_cnode_node::Result<String> {
    if let Some(cookie) = guc::cookie() {
        return Ok(cookie);
    }
    erlang_cnode_node::read_cookie_file(&cookie_path())
}

fn cookie_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| {
            // SAFETY: getpwuid returns a pointer to static storage or NULL.
            unsafe {
                let pw = libc::getpwuid(libc::geteuid());
                (!pw.is_null()).then(|| {
                    let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
                    PathBuf::from(std::ffi::OsStr::from_encoded_bytes_unchecked(
                        dir.to_bytes(),
                    ))
                })
            }
        })
        .unwrap_or_default();
    home.join(".erlang.cookie")
}

/// Parses a node name argument.
pub fn node_name(text: &str) -> SqlResult<NodeName> {
    NodeName::parse(text).map_err(SqlError::from)
}

/// A request's target with the configured cookie.
pub fn target(node: &NodeName) -> Target<'_> {
    Target {
        node,
        cookie: &configured_cookie,
    }
}

/// A request's timeout: `timeout_ms` if given (it must be positive), else
/// `default`.
pub fn timeout(timeout_ms: Option<i32>, default: Duration) -> SqlResult<Duration> {
    match timeout_ms {
        None => Ok(default),
        Some(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        Some(ms) => Err(SqlError::invalid(format!(
            "timeout_ms must be positive, not {ms}"
        ))),
    }
}

/// The deadline for a request: [`timeout`] from now.
pub fn deadline(timeout_ms: Option<i32>, default: Duration) -> SqlResult<Instant> {
    Ok(Instant::now() + timeout(timeout_ms, default)?)
}

/// The backend's waiter.
pub fn waiter() -> LatchWait {
    LatchWait
}
