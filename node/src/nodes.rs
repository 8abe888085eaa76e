//! The connections one backend holds, one per node, with their statistics;
//! a connection the peer dropped while idle is re-established before a
//! request is sent, and a request that may have run is never sent twice.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use erlang_cnode_codec::Term;

use crate::connection::{Connection, LocalNode};
use crate::name::NodeName;
use crate::outcome::Outcome;
use crate::pending::CallId;
use crate::wait::Wait;
use crate::{Error, Result};

/// One live connection as `erlang_connections()` shows it. Never the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The remote node.
    pub node: String,
    /// This backend's node name.
    pub local_node: String,
    /// When the current connection was set up.
    pub connected_since: SystemTime,
    /// When it last carried a request.
    pub last_used: SystemTime,
    /// Requests sent on it.
    pub calls: u64,
    /// Requests that failed or raised.
    pub errors: u64,
}

struct Entry {
    connection: Connection,
    /// Which connection this is: a connection made anew (after a failure,
    /// a restart of the node) has another, so calls sent on the old one
    /// are known to be lost.
    generation: u64,
    cookie: String,
    connected_since: SystemTime,
    last_used: SystemTime,
    calls: u64,
    errors: u64,
}

/// Which node a request is for, and where its cookie comes from when a
/// connection must be made (the configured cookie, read only when needed).
pub struct Target<'a> {
    /// The node.
    pub node: &'a NodeName,
    /// Gives the cookie for a first connection.
    pub cookie: &'a dyn Fn() -> Result<String>,
}

/// This backend's node and its connections.
pub struct Nodes {
    local: LocalNode,
    entries: BTreeMap<String, Entry>,
    /// The cookie each node was last connected with, kept after its
    /// connection is lost so that reconnecting uses it again.
    cookies: BTreeMap<String, String>,
    max_message_size: usize,
    generations: u64,
    /// Whether connections keep delivery acknowledgements for a courier.
    keep_acks: bool,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries hold cookies: show only node names.
        f.debug_struct("Nodes")
            .field("local", &self.local.name())
            .field("nodes", &self.entries.keys())
            .finish()
    }
}

impl Nodes {
    /// A node with no connections yet.
    pub fn new(local: LocalNode) -> Nodes {
        Nodes {
            local,
            entries: BTreeMap::new(),
            cookies: BTreeMap::new(),
            max_message_size: 64 << 20,
            generations: 0,
            keep_acks: false,
        }
    }

    /// This backend's node name (towards short-named nodes; see
    /// [`LocalNode::automatic`]).
    pub fn local_name(&self) -> String {
        self.local.name()
    }

    /// Refuse incoming messages larger than `bytes` on every connection.
    pub fn set_max_message_size(&mut self, bytes: usize) {
        self.max_message_size = bytes;
        for entry in self.entries.values_mut() {
            entry.connection.set_max_message_size(bytes);
        }
    }

    /// Connects to `node` with `cookie`, replacing any connection it had.
    pub fn connect(
        &mut self,
        node: &NodeName,
        cookie: &str,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        // A connection that works is kept if the new one cannot be made.
        let known = self.cookies.contains_key(&node.to_string());
        let mut connection =
            Connection::open_replacing(node, &self.local, cookie, known, waiter, deadline)?;
        self.entries.remove(&node.to_string());
        connection.set_max_message_size(self.max_message_size);
        if self.keep_acks {
            connection.keep_acks();
        }
        let now = SystemTime::now();
        self.generations += 1;
        let entry = Entry {
            connection,
            generation: self.generations,
            cookie: cookie.to_owned(),
            connected_since: now,
            last_used: now,
            calls: 0,
            errors: 0,
        };
        self.entries.insert(node.to_string(), entry);
        self.cookies.insert(node.to_string(), cookie.to_owned());
        Ok(())
    }

    /// Drops the connection to `node` but keeps its cookie for the next
    /// request (for a connection that may hold half a frame).
    pub fn drop_connection(&mut self, node: &NodeName) {
        self.entries.remove(&node.to_string());
    }

    /// Drops the connection to `node` and forgets its cookie; whether there
    /// was a connection.
    pub fn disconnect(&mut self, node: &NodeName) -> bool {
        self.cookies.remove(&node.to_string());
        self.entries.remove(&node.to_string()).is_some()
    }

    /// How many connections are open (or were until a failure not yet
    /// noticed).
    pub fn connection_count(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is a connection to `node`.
    pub fn is_connected(&self, node: &NodeName) -> bool {
        self.entries.contains_key(&node.to_string())
    }

    /// Keeps delivery acknowledgements read while waiting for something
    /// else, on every connection from now on (for a
    /// [`crate::delivery::Courier`]); other nodes drop them as strays.
    pub fn keep_acks(&mut self) {
        self.keep_acks = true;
        for entry in self.entries.values_mut() {
            entry.connection.keep_acks();
        }
    }

    /// Whether `node` was last connected with a cookie other than `cookie`.
    pub fn cookie_differs(&self, node: &NodeName, cookie: &str) -> bool {
        self.cookies
            .get(&node.to_string())
            .is_some_and(|known| known != cookie)
    }

    /// Makes `cookie` the one to connect to `node` with. A connection made
    /// with another cookie is dropped (the next request connects afresh):
    /// the credentials it was made with are no longer the ones to use.
    pub fn use_cookie(&mut self, node: &NodeName, cookie: &str) {
        let key = node.to_string();
        if self.cookies.get(&key).map(String::as_str) != Some(cookie) {
            self.entries.remove(&key);
            self.cookies.insert(key, cookie.to_owned());
        }
    }

    /// Drops the connections whose peer has closed them (read without
    /// waiting: a node that died is noticed at once, not at its next use).
    pub fn prune_closed(&mut self, waiter: &mut dyn Wait) {
        // Only what has arrived is read; a frame that has begun gets a
        // moment to end.
        let grace = Instant::now() + std::time::Duration::from_millis(100);
        self.entries.retain(|_, entry| {
            if entry.connection.is_broken() {
                return false;
            }
            match entry.connection.check_idle(waiter, grace) {
                Ok(()) => true,
                // A cancel says nothing about the connection.
                Err(Error::Interrupted { .. }) => !entry.connection.is_broken(),
                Err(_) => false,
            }
        });
    }

    /// Every live connection, by node name.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.entries
            .iter()
            .map(|(node, e)| ConnectionInfo {
                node: node.clone(),
                local_node: e.connection.local_name().to_owned(),
                connected_since: e.connected_since,
                last_used: e.last_used,
                calls: e.calls,
                errors: e.errors,
            })
            .collect()
    }

    /// A connection to `node` that is known to be open: an existing one that
    /// is still alive, one re-established with its cookie if the peer
    /// dropped it while idle (or an earlier request lost it), or a new one
    /// with `cookie` (asked for only when this node never had a connection,
    /// so a configured cookie is read only when needed).
    fn ready(
        &mut self,
        target: &Target<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<&mut Entry> {
        let (node, key) = (target.node, target.node.to_string());
        let reconnect_with = match self.entries.get_mut(&key) {
            Some(entry) if entry.connection.is_broken() => Some(entry.cookie.clone()),
            Some(entry) => match entry.connection.check_idle(waiter, deadline) {
                Ok(()) => None,
                // The wait was interrupted: stop. The connection is kept
                // unless that left half a frame behind.
                Err(e @ Error::Interrupted { .. }) => {
                    if entry.connection.is_broken() {
                        self.entries.remove(&key);
                    }
                    return Err(e);
                }
                // Anything else (the peer closed it, a stale oversized or
                // malformed reply, a stale frame cut off by the deadline)
                // concerns an earlier request, not this one, which has not
                // been sent: connect afresh.
                Err(_) => Some(entry.cookie.clone()),
            },
            None => match self.cookies.get(&key) {
                Some(cookie) => Some(cookie.clone()),
                // Is the node there at all? Asked before the cookie is
                // looked for, so a mistyped name says so (not that a
                // cookie file is missing).
                None => match (target.cookie)() {
                    Ok(cookie) => Some(cookie),
                    // Is the node there at all? A mistyped name says so,
                    // rather than that a cookie file is missing.
                    Err(e) => {
                        crate::epmd::lookup(node, waiter, deadline)?;
                        return Err(e);
                    }
                },
            },
        };
        if let Some(cookie) = reconnect_with {
            if let Err(e) = self.connect(node, &cookie, waiter, deadline) {
                // The connection this replaced (if any) is dead: gone.
                self.entries.remove(&key);
                if matches!(e, Error::WrongCookie { .. }) {
                    // The node has another cookie now (it restarted with
                    // one): the next request asks for the configured one
                    // instead of trying this one forever.
                    self.cookies.remove(&key);
                    self.entries.remove(&key);
                }
                return Err(e);
            }
        }
        Ok(self.entries.get_mut(&key).expect("connected above"))
    }

    /// Runs one request on a ready connection, keeping statistics. A request
    /// that timed out or was interrupted between frames leaves the
    /// connection usable (a late reply is recognised and dropped). Any other
    /// failure, or one in the middle of a frame, drops the connection: the
    /// next request connects afresh, and this one is never re-sent.
    pub(crate) fn request<T>(
        &mut self,
        target: &Target<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
        run: impl FnOnce(&mut Connection, &mut LocalNode, &mut dyn Wait) -> Result<T>,
        failed: impl Fn(&T) -> bool,
    ) -> Result<T> {
        self.ready(target, waiter, deadline)?;
        let key = target.node.to_string();
        let entry = self.entries.get_mut(&key).expect("ready");
        entry.calls += 1;
        entry.last_used = SystemTime::now();
        let result = run(&mut entry.connection, &mut self.local, waiter);
        self.settle(&key, result, failed)
    }

    /// Counts how a request on `key`'s connection went, and drops the
    /// connection after any failure that may have left it out of step:
    /// everything but a timeout or a cancel between frames, and a term that
    /// could not be sent, or read, whole. The request is never re-sent.
    fn settle<T>(
        &mut self,
        key: &str,
        result: Result<T>,
        failed: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let Some(entry) = self.entries.get_mut(key) else {
            return result;
        };
        match &result {
            Ok(value) if failed(value) => entry.errors += 1,
            Ok(_) => {}
            Err(e) => {
                entry.errors += 1;
                let keep = matches!(
                    e,
                    Error::Timeout { .. }
                        | Error::Interrupted { .. }
                        | Error::Unencodable { .. }
                        | Error::TooDeep { .. }
                ) && !entry.connection.is_broken();
                if !keep {
                    self.entries.remove(key);
                }
            }
        }
        result
    }

    /// `module:function(args…)` on `node` (see [`Connection::call`]).
    pub fn call(
        &mut self,
        target: &Target<'_>,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        self.request(
            target,
            waiter,
            deadline,
            |c, local, w| c.call(local, module, function, args, w, deadline),
            |o| matches!(o, Outcome::Exception { .. }),
        )
    }

    /// Sends a call of `module:function(args…)` to `node` and returns at
    /// once (see [`Connection::start_call`]): the call and the generation
    /// of the connection it went out on, for [`Nodes::finish_call`].
    #[allow(clippy::too_many_arguments)]
    pub fn start_call(
        &mut self,
        target: &Target<'_>,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        linked: bool,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<(CallId, u64)> {
        let id = self.request(
            target,
            waiter,
            deadline,
            |c, local, w| c.start_call(local, module, function, args, linked, w, deadline),
            |_| false,
        )?;
        let generation = self.entries[&target.node.to_string()].generation;
        Ok((id, generation))
    }

    /// Sends one call of `module:function` per argument list, all on one
    /// connection, keeping fewer than `max_in_flight` calls in flight on
    /// this node's connections (reading replies meanwhile): the calls, in
    /// order, and the generation of their connection. If one cannot be
    /// sent, those sent before it are given up on. Their processes are
    /// linked to this node, so that none outlives the connection.
    #[allow(clippy::too_many_arguments)]
    pub fn start_calls(
        &mut self,
        target: &Target<'_>,
        module: &str,
        function: &str,
        arg_lists: Vec<Vec<Term<'_>>>,
        max_in_flight: usize,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<(Vec<CallId>, u64)> {
        // Calls in flight elsewhere (the caller made room for them first);
        // this connection's own are counted as they change.
        let others = self.calls_in_flight()
            - self
                .entries
                .get(&target.node.to_string())
                .map_or(0, |e| e.connection.calls_in_flight());
        let ids = self.request(
            target,
            waiter,
            deadline,
            |c, local, w| {
                let mut ids = Vec::with_capacity(arg_lists.len());
                // The requests go out in a few large writes, not one
                // system call each; the replies read meanwhile are read
                // a few at a time.
                c.cork();
                c.gather_replies(true);
                let sent = (|| {
                    for args in arg_lists {
                        while others + c.calls_in_flight() >= max_in_flight.max(1)
                            && c.calls_in_flight() > 0
                        {
                            c.wait_for_any(w, deadline)?;
                        }
                        ids.push(c.start_call(local, module, function, args, true, w, deadline)?);
                    }
                    Ok(())
                })();
                // Whatever was kept back goes now, also after a failure
                // (the calls before it are given up on below, by frames
                // that must follow theirs).
                let sent = sent.and(c.uncork(w, deadline));
                c.gather_replies(false);
                if let Err(e) = sent {
                    for id in &ids {
                        c.abandon_call(id);
                    }
                    return Err(e);
                }
                Ok(ids)
            },
            |_| false,
        )?;
        let generation = self.entries[&target.node.to_string()].generation;
        Ok((ids, generation))
    }

    /// Reads the outcomes of calls [`Nodes::start_calls`] sent, in order,
    /// until the first that failed (an error, or an exception) inclusive;
    /// the calls after it are given up on (killed on the node).
    pub fn finish_in_order(
        &mut self,
        node: &NodeName,
        ids: &[CallId],
        generation: u64,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Vec<Result<Outcome>> {
        let mut outcomes = Vec::with_capacity(ids.len());
        let gather = |nodes: &mut Nodes, on: bool| {
            if let Some(entry) = nodes
                .entries
                .get_mut(&node.to_string())
                .filter(|e| e.generation == generation)
            {
                entry.connection.gather_replies(on);
            }
        };
        gather(self, true);
        for (i, id) in ids.iter().enumerate() {
            let outcome = self.finish_call(node, id, generation, waiter, deadline);
            let failed = !matches!(outcome, Ok(Outcome::Return(_)));
            outcomes.push(outcome);
            if failed {
                for later in &ids[i + 1..] {
                    self.abandon_call(node, later, generation);
                }
                break;
            }
        }
        gather(self, false);
        outcomes
    }

    /// Waits until `deadline` for the outcome of a call [`Nodes::start_call`]
    /// sent. A call whose connection has been lost or made anew since is
    /// `ConnectionLost`: it may or may not have run, and is not re-sent.
    pub fn finish_call(
        &mut self,
        node: &NodeName,
        id: &CallId,
        generation: u64,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        let key = node.to_string();
        let Some(entry) = self
            .entries
            .get_mut(&key)
            .filter(|e| e.generation == generation)
        else {
            return Err(Error::ConnectionLost {
                node: key,
                reason: "the connection the call went out on was lost".into(),
            });
        };
        let result = entry.connection.finish_call(id, waiter, deadline);
        self.settle(&key, result, |o| matches!(o, Outcome::Exception { .. }))
    }

    /// Waits until every call of `calls` (node, call, generation) has
    /// ended, or `deadline` passes, reading from whichever of their
    /// connections has data: one wait on all their sockets at once, so
    /// every connection's replies and ticks are dealt with as they come. A
    /// connection that fails meanwhile is dropped (its calls then report
    /// it). Their outcomes are read afterwards with [`Nodes::finish_call`].
    pub fn wait_all(
        &mut self,
        calls: &[(&NodeName, &CallId, u64)],
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        loop {
            let mut waiting: Vec<String> = Vec::new();
            for (node, id, generation) in calls {
                let key = node.to_string();
                let running = self.entries.get(&key).is_some_and(|e| {
                    e.generation == *generation
                        && !e.connection.call_done(id)
                        && e.connection.calls_in_flight() > 0
                });
                if running && !waiting.contains(&key) {
                    waiting.push(key);
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            // Frames already read into a buffer make no socket readable.
            let buffered = waiting
                .iter()
                .position(|k| self.entries[k].connection.has_buffered_input());
            let ready = match buffered {
                Some(ready) => ready,
                None => {
                    let fds: Vec<_> = waiting
                        .iter()
                        .map(|k| {
                            let entry = self.entries.get_mut(k).expect("listed above");
                            entry.connection.fd_to_wait_on()
                        })
                        .collect();
                    match waiter.wait_any(&fds, deadline) {
                        Ok(Some(ready)) => ready.min(waiting.len() - 1),
                        Ok(None) => return Ok(()),
                        Err(_) => {
                            return Err(Error::Interrupted {
                                node: waiting[0].clone(),
                            })
                        }
                    }
                }
            };
            let key = &waiting[ready];
            let entry = self.entries.get_mut(key).expect("listed above");
            match entry.connection.read_ready(waiter, deadline) {
                Ok(()) => {}
                // Out of time between frames: the connection is sound.
                Err(Error::Timeout { .. }) if !entry.connection.is_broken() => {}
                Err(e @ Error::Interrupted { .. }) => {
                    if entry.connection.is_broken() {
                        self.entries.remove(key);
                    }
                    return Err(e);
                }
                Err(_) => {
                    self.entries.remove(key);
                }
            }
        }
    }

    /// Gives up on a call (its process is killed on the node); nothing if
    /// its connection is gone.
    pub fn abandon_call(&mut self, node: &NodeName, id: &CallId, generation: u64) {
        if let Some(entry) = self
            .entries
            .get_mut(&node.to_string())
            .filter(|e| e.generation == generation)
        {
            entry.connection.abandon_call(id);
        }
    }

    /// Gives up on every call under way on every connection.
    pub fn abandon_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.connection.abandon_all_calls();
        }
    }

    /// Gives up on every call under way, and reads on (until `deadline` at
    /// the latest) while some of them wait for the spawn reply that names
    /// their process, so that each is killed before its connection goes
    /// (when the session ends, or its connections are discarded).
    pub fn abandon_all_and_settle(&mut self, waiter: &mut dyn Wait, deadline: Instant) {
        self.abandon_all();
        for entry in self.entries.values_mut() {
            while entry.connection.calls_awaiting_kill() > 0 && Instant::now() < deadline {
                if entry.connection.wait_for_any(waiter, deadline).is_err() {
                    break;
                }
            }
        }
    }

    /// Calls in flight on all connections.
    pub fn calls_in_flight(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.connection.calls_in_flight())
            .sum()
    }

    /// Waits until fewer than `max` calls are in flight, reading replies
    /// (on `node`'s connection first) as they come. A connection that fails
    /// meanwhile is dropped, and its calls with it.
    pub fn wait_for_room(
        &mut self,
        node: &NodeName,
        max: usize,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        while self.calls_in_flight() >= max.max(1) {
            let key = node.to_string();
            let busy = if self
                .entries
                .get(&key)
                .is_some_and(|e| e.connection.calls_in_flight() > 0)
            {
                key
            } else {
                match self
                    .entries
                    .iter()
                    .find(|(_, e)| e.connection.calls_in_flight() > 0)
                {
                    Some((busy, _)) => busy.clone(),
                    None => return Ok(()),
                }
            };
            let entry = self.entries.get_mut(&busy).expect("found above");
            // Room for one is waited for with the replies let gather: the
            // calls after it find room too, without a read each.
            entry.connection.gather_replies(true);
            let waited = entry.connection.wait_for_any(waiter, deadline);
            entry.connection.gather_replies(false);
            match waited {
                Ok(()) => {}
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. }))
                    if !entry.connection.is_broken() =>
                {
                    return Err(e)
                }
                Err(Error::Timeout { .. } | Error::Interrupted { .. }) => {
                    self.entries.remove(&busy);
                    return Err(Error::Interrupted { node: busy });
                }
                Err(_) => {
                    self.entries.remove(&busy);
                }
            }
        }
        Ok(())
    }

    /// `gen_server:call` on `node` (see [`Connection::gen_call`]).
    pub fn gen_call(
        &mut self,
        target: &Target<'_>,
        server: &Term<'_>,
        request: &Term<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        self.request(
            target,
            waiter,
            deadline,
            |c, local, w| c.gen_call(local, server, request, w, deadline),
            |o| matches!(o, Outcome::Exception { .. }),
        )
    }

    /// Sends `message` to a registered name or pid on `node`.
    pub fn send(
        &mut self,
        target: &Target<'_>,
        to: &Term<'_>,
        message: &Term<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.request(
            target,
            waiter,
            deadline,
            |c, _, w| c.send_to(to, message, w, deadline),
            |_| false,
        )
    }

    /// Runs `module:function(args…)` on `node` without waiting.
    pub fn cast(
        &mut self,
        target: &Target<'_>,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.request(
            target,
            waiter,
            deadline,
            |c, local, w| c.cast(local, module, function, args, w, deadline),
            |_| false,
        )
    }

    /// Makes sure there is an open connection to `node` (connecting if
    /// needed), without sending anything.
    pub fn ensure(
        &mut self,
        target: &Target<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.request(target, waiter, deadline, |_, _, _| Ok(()), |_| false)
    }

    /// The nodes this node has a connection to.
    pub fn connected(&self) -> Vec<NodeName> {
        self.entries
            .keys()
            .filter_map(|key| NodeName::parse(key).ok())
            .collect()
    }

    /// The generation of the connection to `node`, if there is one.
    pub fn generation_of(&self, node: &NodeName) -> Option<u64> {
        self.entries.get(&node.to_string()).map(|e| e.generation)
    }

    /// Whether the connection to `node` of `generation` is still there.
    pub fn is_live(&self, node: &NodeName, generation: u64) -> bool {
        self.generation_of(node) == Some(generation)
    }

    /// Whether call `id` on `node`'s connection has ended.
    pub fn call_ended(&self, node: &NodeName, id: &CallId) -> bool {
        self.entries
            .get(&node.to_string())
            .is_some_and(|e| e.connection.call_done(id))
    }

    /// Waits until one of `nodes`' connections has data, or `until`
    /// passes, or the waiter wakes early; then reads what every ready one
    /// has: the messages that are not replies to calls, with their node.
    /// A connection that fails is dropped (its requests then see it gone).
    pub fn read_any(
        &mut self,
        nodes: &[NodeName],
        waiter: &mut dyn Wait,
        until: Instant,
    ) -> Vec<(NodeName, crate::Received)> {
        let live: Vec<&NodeName> = nodes
            .iter()
            .filter(|n| self.entries.contains_key(&n.to_string()))
            .collect();
        let mut ready: Vec<usize> = live
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                let c = &self.entries[&n.to_string()].connection;
                c.has_buffered_input() || c.has_kept_acks()
            })
            .map(|(i, _)| i)
            .collect();
        if ready.is_empty() && !live.is_empty() {
            let fds: Vec<_> = live
                .iter()
                .map(|n| {
                    let entry = self.entries.get_mut(&n.to_string()).expect("live");
                    entry.connection.fd_to_wait_on()
                })
                .collect();
            match waiter.wait_any(&fds, until) {
                Ok(Some(_)) => ready = (0..live.len()).collect(),
                Ok(None) | Err(_) => return Vec::new(),
            }
        }
        let mut messages = Vec::new();
        for i in ready {
            let node = live[i].clone();
            let key = node.to_string();
            let entry = self.entries.get_mut(&key).expect("listed above");
            let grace = Instant::now() + std::time::Duration::from_secs(1);
            match entry.connection.read_messages(waiter, grace) {
                Ok(received) => messages.extend(received.into_iter().map(|r| (node.clone(), r))),
                Err(Error::Timeout { .. } | Error::Interrupted { .. })
                    if !entry.connection.is_broken() => {}
                Err(_) => {
                    self.entries.remove(&key);
                }
            }
        }
        messages
    }

    /// Pings `node`: `Ok(false)` when it cannot be reached or refuses us.
    pub fn ping(
        &mut self,
        target: &Target<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<bool> {
        let pinged = self.request(
            target,
            waiter,
            deadline,
            |c, local, w| c.ping(local, w, deadline),
            |ok| !ok,
        );
        match pinged {
            Ok(answer) => Ok(answer),
            Err(Error::Interrupted { node }) => Err(Error::Interrupted { node }),
            Err(_) => Ok(false),
        }
    }
}
