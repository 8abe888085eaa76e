//! The node that lives in this backend: its connections, created on first
//! use, and how each request gets its cookie, deadline and waits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use erlang_cnode_codec::Term;
use erlang_cnode_node::{CallId, LocalNode, NodeName, Nodes, Outcome, Target};
use pgrx::pg_sys;

use crate::error::{SqlError, SqlResult};
use crate::guc;
use crate::latch::LatchWait;
use crate::server::{CookieSource, Endpoint};

thread_local! {
    /// One node per role (`GetUserId()`), each with its own name and
    /// connections: a connection made as one role is never used by another
    /// (`SET ROLE`, `SECURITY DEFINER` functions, poolers).
    static NODES: RefCell<BTreeMap<u32, Nodes>> = const { RefCell::new(BTreeMap::new()) };
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

/// A node named after the settings, with no connections yet.
pub fn new_nodes() -> SqlResult<Nodes> {
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

/// Runs `f` on `role`'s node. If `f` is cut off by a PostgreSQL ERROR (a
/// cancel seen where the node layer could not report it), the connection
/// to `node` may hold half a frame, so it is dropped.
fn with_role<T>(
    role: pg_sys::Oid,
    node: Option<&NodeName>,
    f: impl FnOnce(&mut Nodes, usize) -> SqlResult<T>,
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
    register_exit_callback();
    NODES.with(|cell| {
        let mut all = cell.borrow_mut();
        let open: usize = all.values().map(Nodes::connection_count).sum();
        let nodes = match all.entry(role.to_u32()) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(new_nodes()?),
        };
        let guard = DropOnUnwind { nodes, node };
        f(&mut *guard.nodes, open)
    })
}

/// Refuses a new connection past `erlang_cnode.max_connections`.
fn check_room(nodes: &Nodes, node: &NodeName, open: usize) -> SqlResult<()> {
    let max = guc::max_connections();
    if !nodes.is_connected(node) && open >= max {
        return Err(SqlError::new(
            b"53300",
            format!("cannot connect to node {node}: this backend already holds {open} connections"),
        )
        .hint("erlang_disconnect(node) closes one; erlang_cnode.max_connections is the limit."));
    }
    Ok(())
}

/// Runs a request for `endpoint` on the calling role's node: its
/// connection to the node is (re)made with the cookie of the role's user
/// mapping, or the cookie file, and bounded by the endpoint's limits.
pub fn request<T>(
    endpoint: &Endpoint,
    f: impl FnOnce(&mut Nodes, &Target<'_>) -> erlang_cnode_node::Result<T>,
) -> SqlResult<T> {
    // Through a server, the cookie is always the one its mapping gives now
    // (a mapping's own, or the cookie file for a mapping without one): a
    // connection made with another is remade. A node named directly keeps
    // the cookie it was last connected with.
    let cookie = match (endpoint.cookie_source()?, &endpoint.server) {
        (CookieSource::Mapping(cookie), _) => Some(cookie),
        (CookieSource::File, Some(_)) => Some(cookie_file_for(
            &endpoint.node,
            Instant::now() + endpoint.connect_timeout(),
        )?),
        (CookieSource::File, None) => None,
    };
    let node = &endpoint.node;
    with_role(endpoint.role, Some(node), |nodes, open| {
        nodes.set_max_message_size(endpoint.max_message_size());
        if let Some(cookie) = &cookie {
            nodes.use_cookie(node, cookie);
        }
        check_room(nodes, node, open)?;
        let cookie = || match &cookie {
            Some(cookie) => Ok(cookie.clone()),
            None => cookie_file(),
        };
        let target = Target {
            node,
            cookie: &cookie,
        };
        f(nodes, &target).map_err(SqlError::from)
    })
}

/// Connects the calling role to `endpoint`'s node with `cookie`, replacing
/// any connection it had.
pub fn connect(endpoint: &Endpoint, cookie: &str, deadline: Instant) -> SqlResult<()> {
    let node = &endpoint.node;
    with_role(endpoint.role, Some(node), |nodes, open| {
        nodes.set_max_message_size(endpoint.max_message_size());
        check_room(nodes, node, open)?;
        nodes
            .connect(node, cookie, &mut waiter(), deadline)
            .map_err(SqlError::from)
    })
}

/// Drops the calling role's connection to `node`; whether there was one.
pub fn disconnect(endpoint: &Endpoint) -> SqlResult<bool> {
    with_role(endpoint.role, None, |nodes, _| {
        Ok(nodes.disconnect(&endpoint.node))
    })
}

/// The current role's connections (none before its first).
pub fn connections() -> Vec<erlang_cnode_node::ConnectionInfo> {
    let role = crate::server::current_role();
    NODES.with(|cell| {
        let mut all = cell.borrow_mut();
        let Some(nodes) = all.get_mut(&role.to_u32()) else {
            return Vec::new();
        };
        // A node killed since the last call is not listed.
        nodes.prune_closed(&mut waiter());
        nodes.connections()
    })
}

/// Drops every connection of every role and forgets the cookies seen
/// (`DISCARD ALL`); calls still under way are given up on first.
fn discard_all_connections() {
    abandon_all_calls();
    crate::requests::forget_all();
    NODES.with(|cell| cell.borrow_mut().clear());
    crate::log::forget_secrets();
    crate::error::forget_last_exception();
}

/// Gives up on every call under way on every connection: their processes
/// are killed on the nodes.
fn abandon_all_calls() {
    // Briefly, and on plain poll(2): a terminating backend's latch wait
    // would stop at once.
    let deadline = Instant::now() + Duration::from_millis(200);
    NODES.with(|cell| {
        if let Ok(mut all) = cell.try_borrow_mut() {
            for nodes in all.values_mut() {
                nodes.abandon_all_and_settle(&mut erlang_cnode_node::PollWait, deadline);
            }
        }
    });
}

/// Requests not awaited by the end of the session are given up on, as a
/// timeout would: their processes are killed on the nodes. Registered at
/// the first connection (a callback registered from `_PG_init` in the
/// postmaster would not reach backends).
fn register_exit_callback() {
    thread_local! {
        static REGISTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if REGISTERED.with(|r| r.replace(true)) {
        return;
    }
    // SAFETY: registers a plain function for the backend's exit.
    unsafe { pg_sys::before_shmem_exit(Some(session_ends), pg_sys::Datum::from(0usize)) };
}

unsafe extern "C-unwind" fn session_ends(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    // Nothing may unwind into C; the sends are best effort anyway.
    let _ = std::panic::catch_unwind(abandon_all_calls);
}

/// Waits (interruptibly) until fewer than `max` calls are in flight in this
/// backend, reading replies on the connections that hold them, whichever
/// role's they are.
fn make_room(endpoint: &Endpoint, max: usize, deadline: Instant) -> SqlResult<()> {
    let in_flight = || {
        NODES.with(|cell| {
            cell.borrow()
                .values()
                .map(Nodes::calls_in_flight)
                .sum::<usize>()
        })
    };
    if in_flight() < max {
        return Ok(());
    }
    let roles: Vec<u32> = NODES.with(|cell| cell.borrow().keys().copied().collect());
    for role in roles {
        if in_flight() < max {
            break;
        }
        let others = in_flight() - role_in_flight(role);
        with_role(pg_sys::Oid::from(role), None, |nodes, _| {
            nodes
                .wait_for_room(
                    &endpoint.node,
                    max.saturating_sub(others),
                    &mut waiter(),
                    deadline,
                )
                .map_err(SqlError::from)
        })?;
    }
    Ok(())
}

/// Sends a call for `endpoint` on the calling role's connection once fewer
/// than `erlang_cnode.max_in_flight` calls are in flight in this backend
/// (waiting for replies meanwhile, interruptibly): the call and the
/// connection's generation. A `linked` call ends on the node when the
/// connection does.
pub fn start_call(
    endpoint: &Endpoint,
    module: &str,
    function: &str,
    args: Vec<Term<'_>>,
    linked: bool,
    deadline: Instant,
) -> SqlResult<(CallId, u64)> {
    make_room(endpoint, guc::max_in_flight(), deadline)?;
    request(endpoint, |nodes, target| {
        nodes.start_call(
            target,
            module,
            function,
            args,
            linked,
            &mut waiter(),
            deadline,
        )
    })
}

/// Sends one call per argument list for `endpoint` on the calling role's
/// connection, at most `erlang_cnode.max_in_flight` in flight at once (see
/// [`Nodes::start_calls`]).
pub fn start_calls(
    endpoint: &Endpoint,
    module: &str,
    function: &str,
    arg_lists: Vec<Vec<Term<'_>>>,
    deadline: Instant,
) -> SqlResult<(Vec<CallId>, u64)> {
    let max = guc::max_in_flight();
    // Room for at least one: the calls in flight elsewhere are below max.
    make_room(endpoint, max, deadline)?;
    request(endpoint, |nodes, target| {
        nodes.start_calls(
            target,
            module,
            function,
            arg_lists,
            max,
            &mut waiter(),
            deadline,
        )
    })
}

/// Reads the outcomes of calls [`start_calls`] sent, in order, until the
/// first failure inclusive; the calls after it are killed.
pub fn finish_in_order(
    role: pg_sys::Oid,
    node: &NodeName,
    ids: &[CallId],
    generation: u64,
    deadline: Instant,
) -> SqlResult<Vec<erlang_cnode_node::Result<Outcome>>> {
    with_role(role, Some(node), |nodes, _| {
        Ok(nodes.finish_in_order(node, ids, generation, &mut waiter(), deadline))
    })
}

fn role_in_flight(role: u32) -> usize {
    NODES.with(|cell| cell.borrow().get(&role).map_or(0, Nodes::calls_in_flight))
}

/// Waits for the outcome of a call [`start_call`] sent as `role`.
pub fn finish_call(
    role: pg_sys::Oid,
    node: &NodeName,
    id: &CallId,
    generation: u64,
    deadline: Instant,
) -> SqlResult<Outcome> {
    with_role(role, Some(node), |nodes, _| {
        nodes
            .finish_call(node, id, generation, &mut waiter(), deadline)
            .map_err(SqlError::from)
    })
}

/// Waits until every call of `calls` (sent as `role`) has ended or
/// `deadline` passes, on all their connections at once.
pub fn wait_all(
    role: pg_sys::Oid,
    calls: &[(&NodeName, &CallId, u64)],
    deadline: Instant,
) -> SqlResult<()> {
    with_role(role, None, |nodes, _| {
        nodes
            .wait_all(calls, &mut waiter(), deadline)
            .map_err(SqlError::from)
    })
}

/// Gives up on a call [`start_call`] sent as `role` (its process is killed).
pub fn abandon_call(role: pg_sys::Oid, node: &NodeName, id: &CallId, generation: u64) {
    let _ = with_role(role, None, |nodes, _| {
        nodes.abandon_call(node, id, generation);
        Ok(())
    });
}

/// The cookie file, to connect to `node`; if it cannot be read and `node`
/// is not even there, that is the error (a mistyped name says so, not
/// that a cookie file is missing).
pub fn cookie_file_for(node: &NodeName, deadline: Instant) -> SqlResult<String> {
    cookie_file().or_else(|missing| {
        erlang_cnode_node::epmd::lookup(node, &mut waiter(), deadline).map_err(SqlError::from)?;
        Err(SqlError::from(missing))
    })
}

/// The cookie file of the server's OS user, as `erl` reads it.
pub fn cookie_file() -> erlang_cnode_node::Result<String> {
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

/// The backend's waiter.
pub fn waiter() -> LatchWait {
    LatchWait
}

unsafe extern "C-unwind" {
    /// PostgreSQL's own, declared here rather than through `pg_sys`, whose
    /// wrapper would turn its ERROR into a Rust panic.
    fn standard_ProcessUtility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

static mut PREVIOUS_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hook that drops every connection on `DISCARD ALL` (as a
/// pooler resets a session) and wakes the worker on `COMMIT PREPARED`.
/// From `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once, in the backend's only thread.
    unsafe {
        PREVIOUS_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// Not `pg_guard`ed: an ERROR in the statement leaves through this frame by
/// `longjmp` as it would through C, which is sound because nothing here
/// needs dropping; a guard would turn every utility statement's ERROR into
/// a Rust panic and back.
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid utility statement.
    let (discard_all, commit_prepared) = unsafe {
        let statement = (*pstmt).utilityStmt;
        let is = |tag| !statement.is_null() && (*statement).type_ == tag;
        (
            is(pg_sys::NodeTag::T_DiscardStmt)
                && (*statement.cast::<pg_sys::DiscardStmt>()).target
                    == pg_sys::DiscardMode::DISCARD_ALL,
            is(pg_sys::NodeTag::T_TransactionStmt)
                && (*statement.cast::<pg_sys::TransactionStmt>()).kind
                    == pg_sys::TransactionStmtKind::TRANS_STMT_COMMIT_PREPARED,
        )
    };
    // SAFETY: the next hook, or PostgreSQL's own, with the same arguments.
    unsafe {
        match PREVIOUS_PROCESS_UTILITY {
            Some(previous) => previous(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
    if discard_all {
        // Closing sockets cannot fail, but nothing may unwind into C.
        let _ = std::panic::catch_unwind(discard_all_connections);
    }
    if commit_prepared {
        // A prepared transaction may have queued messages: they are
        // committed now (whoever prepared it).
        crate::registry::wake_worker();
    }
}
