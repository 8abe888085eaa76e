//! A connected node: its channel, the calls under way on it, and every
//! request this node makes of a peer (calls with `erpc` semantics, casts,
//! sends, `gen_server` calls, pings), all in one place. Protocol layers
//! below it: [`crate::epmd`], [`crate::handshake`], [`crate::channel`]
//! (framing) and [`crate::message`] (control messages); the table of calls
//! under way is [`crate::pending`].

use std::net::TcpStream;
use std::time::{Duration, Instant};

use erlang_cnode_codec::{Pid, Reference, Term};

use crate::channel::Channel;
use crate::epmd;
use crate::handshake::{handshake, Peer};
use crate::io::{self, ConnectError};
use crate::message::{Control, Received};
use crate::name::NodeName;
use crate::outcome::{Class, Outcome};
use crate::pending::{CallId, Calls, Routed};
use crate::wait::{PollWait, Wait};
use crate::{Error, Result};

/// How long the rest of a frame may take once its first byte is in.
const IDLE_FRAME_GRACE: Duration = Duration::from_secs(1);

/// How long a best-effort send (a kill, a demonitor) may wait for room.
const BRIEF: Duration = Duration::from_millis(20);

/// This backend as a node: its name, incarnation and the identifiers it
/// hands out.
///
/// Erlang nodes run with either short names (`-sname`, host without dots)
/// or long names (`-name`, a dotted host or an IP address), and refuse a
/// peer whose name is of the other kind. A node made with
/// [`LocalNode::automatic`] therefore names itself per connection: with
/// the short host towards short-named nodes, and with the IP address of its
/// end of the connection towards long-named ones.
#[derive(Debug)]
pub struct LocalNode {
    alive: String,
    host: Host,
    creation: u32,
    refs: u64,
    /// A random word in every reference, so that references of another
    /// incarnation under the same name (and creation) never match ours.
    ref_salt: u32,
}

#[derive(Debug)]
enum Host {
    Fixed(String),
    Automatic { short: String },
}

impl LocalNode {
    /// A hidden node named `<prefix>_<pid>_<random>@<host>` with a random
    /// non-zero creation.
    pub fn new(prefix: &str, host: &str) -> Result<LocalNode> {
        Self::with_host(prefix, Host::Fixed(host.to_owned()))
    }

    /// A hidden node named `<prefix>_<pid>_<random>@<short_host>` towards
    /// short-named nodes and `…@<local IP address>` towards long-named ones.
    pub fn automatic(prefix: &str, short_host: &str) -> Result<LocalNode> {
        Self::with_host(
            prefix,
            Host::Automatic {
                short: short_host.to_owned(),
            },
        )
    }

    fn with_host(prefix: &str, host: Host) -> Result<LocalNode> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| Error::Protocol {
            node: prefix.to_owned(),
            what: format!("no randomness: {e}"),
        })?;
        let word = |i: usize| u32::from_be_bytes(random[i..i + 4].try_into().expect("4 bytes"));
        let (suffix, creation, ref_salt) = (word(0), word(4).max(1), word(8));
        let local = LocalNode {
            alive: format!("{prefix}_{}_{suffix:08x}", std::process::id()),
            host,
            creation,
            refs: 0,
            ref_salt,
        };
        NodeName::parse(&local.name())?;
        Ok(local)
    }

    /// The full node name (towards short-named nodes, if automatic).
    pub fn name(&self) -> String {
        match &self.host {
            Host::Fixed(host) | Host::Automatic { short: host } => {
                format!("{}@{host}", self.alive)
            }
        }
    }

    /// The name to introduce ourselves with to `peer`, over a connection
    /// whose local end is `local_ip`.
    fn name_towards(&self, peer: &NodeName, local_ip: std::net::IpAddr) -> Result<String> {
        let name = match &self.host {
            Host::Automatic { .. } if peer.is_long() => format!("{}@{local_ip}", self.alive),
            _ => self.name(),
        };
        NodeName::parse(&name)?;
        Ok(name)
    }

    /// The pid replies are addressed to, on the connection where this node
    /// is called `name`.
    pub fn pid(&self, name: &str) -> Term<'static> {
        Term::Pid(Box::new(Pid {
            node: name.to_owned().into(),
            id: 1,
            serial: 0,
            creation: self.creation,
        }))
    }

    /// A reference unique to this node incarnation, on the connection where
    /// this node is called `name`.
    pub fn make_ref(&mut self, name: &str) -> Term<'static> {
        Term::Reference(Box::new(self.new_reference(name)))
    }

    /// [`LocalNode::make_ref`], unwrapped: a counter in the first two words
    /// (what the table of calls keys them by), a salt in the third.
    pub(crate) fn new_reference(&mut self, name: &str) -> Reference<'static> {
        self.refs = self.refs.wrapping_add(1);
        Reference {
            node: name.to_owned().into(),
            creation: self.creation,
            id: vec![self.refs as u32, (self.refs >> 32) as u32, self.ref_salt],
        }
    }
}

/// The group leader for processes we spawn on the peer.
#[derive(Debug, Clone, PartialEq)]
enum GroupLeader {
    /// Not looked up yet.
    Unknown,
    /// Being looked up (by a call that uses our own pid meanwhile).
    Resolving,
    /// This pid.
    Known(Term<'static>),
}

/// An open distribution connection to one node.
#[derive(Debug)]
pub struct Connection {
    channel: Channel,
    local_name: String,
    /// Our pid on this connection (what spawned processes and exit signals
    /// name as their parent or sender).
    own_pid: Term<'static>,
    peer: Peer,
    group_leader: GroupLeader,
    calls: Calls,
    /// Acknowledgements of deliveries read while something else was
    /// waited for (see [`crate::delivery`]), kept for
    /// [`Connection::read_messages`].
    acks: std::collections::VecDeque<Received>,
    /// Whether acknowledgements are kept at all (only a courier's).
    keep_acks: bool,
    /// Whether reads let replies gather ([`Connection::gather_replies`]).
    gathering: bool,
}

/// The fewest bytes a call under way still sends (its spawn reply, or
/// the signal of its end, is longer), for [`Connection::gather_replies`].
const LEAST_PER_CALL: usize = 32;

/// The most bytes a read lets gather.
const GATHER_AT_MOST: usize = 32768;

/// The most acknowledgements kept unread on one connection.
const MAX_KEPT_ACKS: usize = 20_000;

impl Connection {
    /// Looks the node up in EPMD, connects and runs the handshake, all
    /// before `deadline`.
    pub fn open(
        node: &NodeName,
        local: &LocalNode,
        cookie: &str,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Connection> {
        Connection::open_replacing(node, local, cookie, true, waiter, deadline)
    }

    /// [`Connection::open`]; when the node says it still has a connection
    /// from this node, that one is replaced only if `replace` (this node
    /// connected to `node` under that name before: the old connection is
    /// ours and dead). Otherwise the name is an alias of a node this one is
    /// connected to under another name, and the live connection is left
    /// alone.
    pub fn open_replacing(
        node: &NodeName,
        local: &LocalNode,
        cookie: &str,
        replace: bool,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Connection> {
        let name = node.to_string();
        let addr = epmd::lookup(node, waiter, deadline)?;
        let mut stream: TcpStream =
            match io::connect(addr, waiter, deadline, &name, "connecting to") {
                Ok(stream) => stream,
                Err(ConnectError::Io(source)) => {
                    return Err(Error::ConnectFailed { node: name, source })
                }
                Err(ConnectError::Wait(e)) => return Err(e),
            };
        let local_ip = stream
            .local_addr()
            .map_err(|source| Error::ConnectFailed {
                node: name.clone(),
                source,
            })?
            .ip();
        let local_name = local.name_towards(node, local_ip)?;
        let peer = handshake(
            replace,
            &mut stream,
            &local_name,
            local.creation,
            cookie,
            &name,
            waiter,
            deadline,
        )?;
        if peer.name != name {
            return Err(Error::OtherName {
                asked: name,
                answered: peer.name,
            });
        }
        Ok(Connection {
            channel: Channel::new(stream, name),
            own_pid: local.pid(&local_name),
            local_name,
            peer,
            group_leader: GroupLeader::Unknown,
            calls: Calls::default(),
            gathering: false,
            acks: std::collections::VecDeque::new(),
            keep_acks: false,
        })
    }

    /// Refuse incoming messages larger than `bytes`.
    pub fn set_max_message_size(&mut self, bytes: usize) {
        self.channel.set_max_message_size(bytes);
    }

    /// The peer as it introduced itself.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The node's name as the caller gave it.
    pub fn node_name(&self) -> &str {
        self.channel.node()
    }

    /// What this node is called on this connection.
    pub fn local_name(&self) -> &str {
        &self.local_name
    }

    /// Keeps the frames of the requests sent from now on, to write them
    /// together (see [`Connection::uncork`]); any read sends them first.
    pub(crate) fn cork(&mut self) {
        self.channel.cork();
    }

    /// Writes the requests kept back since [`Connection::cork`].
    pub(crate) fn uncork(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.channel.uncork(waiter, deadline)
    }

    /// This node's pid on the connection: where replies to us are sent.
    pub fn own_pid(&self) -> Term<'static> {
        self.own_pid.clone()
    }

    /// Whether an earlier operation stopped in the middle of a frame, so
    /// that the connection can only be replaced.
    pub fn is_broken(&self) -> bool {
        self.channel.is_broken()
    }

    /// The socket, for waiting on several connections at once.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.channel.fd()
    }

    /// The socket, for a wait on several connections at once: readable as
    /// soon as anything arrives (whatever [`Connection::gather_replies`]
    /// left set, say by an operation cut short).
    pub(crate) fn fd_to_wait_on(&mut self) -> std::os::fd::RawFd {
        self.gather_replies(false);
        self.channel.fd()
    }

    /// Sends a control message and what follows it.
    pub fn send(
        &mut self,
        control: &Control,
        payload: Option<&Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.channel.send(control, payload, waiter, deadline)
    }

    /// Sends `control` without waiting for room more than a moment, and
    /// not at all on a connection already out of step: for what is best
    /// effort (a kill, a demonitor).
    fn send_briefly(&mut self, control: &Control, payload: Option<&Term<'_>>) {
        if !self.is_broken() {
            let brief = Instant::now() + BRIEF;
            let _ = self.channel.send(control, payload, &mut PollWait, brief);
        }
    }

    /// Receives the next message that is not a reply to a call under way:
    /// replies are kept for their calls, ticks are answered and output
    /// requests from processes whose group leader we are are acknowledged
    /// on the way.
    pub fn recv(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<Received> {
        loop {
            if let Some(received) = self.next_message(waiter, deadline)? {
                return Ok(received);
            }
        }
    }

    /// While `on`, reads let the replies of the calls under way gather
    /// (as many bytes as they surely still send, up to 32 KB, for a moment
    /// at most) instead of taking each frame as it comes: for a caller
    /// reading many replies, fewer system calls and wake-ups on both
    /// sides. Off, the socket is as before.
    pub(crate) fn gather_replies(&mut self, on: bool) {
        self.gathering = on;
        if !on {
            self.channel.gather(1);
        }
    }

    /// Reads one frame: `None` if it needed no one's attention (a tick, an
    /// output request, a reply to a call under way), each dealt with at
    /// once.
    fn next_message(
        &mut self,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Option<Received>> {
        // A power of two, so that the socket is told again only now and
        // then as the calls end; 1 (each frame as it comes) when not
        // gathering, whatever was left set before.
        let surely = match self.gathering {
            true => (self.calls.in_flight() * LEAST_PER_CALL).min(GATHER_AT_MOST),
            false => 0,
        };
        self.channel.gather(match surely {
            0 => 1,
            n => 1 << n.ilog2(),
        });
        let Some(received) = self.channel.next(waiter, deadline)? else {
            // A tick, answered.
            self.channel.tick(waiter, deadline)?;
            return Ok(None);
        };
        let received = match self.calls.route(received) {
            Routed::Taken => return Ok(None),
            Routed::Kill(pid) => {
                self.kill(pid);
                return Ok(None);
            }
            Routed::NotOurs(received) => received,
        };
        if self.answer_io_request(&received, waiter, deadline)? {
            return Ok(None);
        }
        Ok(self.keep_if_ack(received))
    }

    /// Acknowledges `{io_request, From, ReplyAs, Request}` sent to us as a
    /// group leader, so that a function that prints does not wait forever;
    /// whether `received` was one.
    fn answer_io_request(
        &mut self,
        received: &Received,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<bool> {
        let (true, Some(Term::Tuple(items))) = (received.control.is_send(), &received.payload)
        else {
            return Ok(false);
        };
        let [Term::Atom(tag), from @ Term::Pid(_), reply_as, request] = items.as_slice() else {
            return Ok(false);
        };
        if tag != "io_request" {
            return Ok(false);
        }
        let is_output = matches!(request, Term::Tuple(r) if matches!(r.first(), Some(Term::Atom(a)) if a == "put_chars"));
        let answer = if is_output {
            Term::atom("ok")
        } else {
            Term::Tuple(vec![Term::atom("error"), Term::atom("enotsup")])
        };
        let reply = Term::Tuple(vec![Term::atom("io_reply"), reply_as.clone(), answer]);
        self.send(
            &Control::Send { to: from.clone() },
            Some(&reply),
            waiter,
            deadline,
        )?;
        Ok(true)
    }

    /// Checks, without waiting, that the peer has not closed the connection
    /// while it sat idle, answering pending ticks and output requests,
    /// keeping replies for the calls under way and dropping stray messages
    /// (late replies to calls given up on, even ones that do not decode).
    /// Call it before sending a request: a connection the peer dropped (for
    /// instance after `net_ticktime` without ticks) is reported as
    /// `ConnectionLost` before anything was sent. It reads for at most a
    /// second (and never past `deadline`), however much keeps arriving.
    pub fn check_idle(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        let deadline = deadline.min(Instant::now() + IDLE_FRAME_GRACE);
        loop {
            match self.channel.poll_input() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(Error::ConnectionLost { node, reason }) => {
                    return Err(Error::ConnectionLost {
                        node,
                        reason: format!("{reason} while idle"),
                    })
                }
                Err(e) => return Err(e),
            }
            match self.next_message(waiter, deadline) {
                Ok(_) | Err(Error::Protocol { .. } | Error::TooDeep { .. }) => {}
                // Out of time between frames: the connection is sound.
                Err(Error::Timeout { .. }) if !self.is_broken() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls `module:function(args…)` on the peer and waits for the outcome
    /// until `deadline`: [`Connection::start_call`], then
    /// [`Connection::finish_call`].
    pub fn call(
        &mut self,
        local: &mut LocalNode,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        let id = self.start_call(local, module, function, args, false, waiter, deadline)?;
        self.finish_call(&id, waiter, deadline)
    }

    /// Sends a call of `module:function(args…)` (a `SPAWN_REQUEST` of
    /// `erpc:execute_call/4` under a monitor, or a link) and returns at once; its
    /// outcome is read by [`Connection::finish_call`]. Any number may be in
    /// flight. What the function prints goes to the peer's own standard
    /// output (see [`Connection::group_leader`]).
    ///
    /// A `linked` call's process is linked to this node instead of
    /// monitored, so that the peer ends it when the connection goes (for a
    /// call that may outlive what reads its replies: a request not awaited
    /// by the end of the session). Its outcome then comes in the link's
    /// exit signal, as it would in the monitor's: one signal either way.
    #[allow(clippy::too_many_arguments)]
    pub fn start_call(
        &mut self,
        local: &mut LocalNode,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        linked: bool,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<CallId> {
        self.group_leader(local, waiter, deadline)?;
        let request_id = local.new_reference(&self.local_name);
        // The request's reference is also the tag of its result: unique,
        // and one reference fewer to make and send.
        let result_tag = Term::Reference(Box::new(request_id.clone()));
        let args = vec![
            result_tag.clone(),
            Term::atom(module),
            Term::atom(function),
            Term::List(args),
        ];
        let options = vec![Term::atom(if linked { "link" } else { "monitor" })];
        self.spawn_request(result_tag, "execute_call", args, options, waiter, deadline)?;
        Ok(self.calls.add(request_id, linked))
    }

    /// Waits until `deadline` for the outcome of call `id`, keeping every
    /// other reply that arrives meanwhile for its own call. A call that
    /// times out or is interrupted has its process on the peer killed
    /// (where `erpc` would leave it running: a cancelled statement's work
    /// should stop); a result already on its way is recognised by its
    /// reference and dropped.
    pub fn finish_call(
        &mut self,
        id: &CallId,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        loop {
            if !self.calls.contains(id) {
                return Err(Error::Protocol {
                    node: self.node_name().to_owned(),
                    what: "no such call under way on this connection".into(),
                });
            }
            if let Some(ended) = self.calls.take(id) {
                return ended.map_err(|lost| match lost {
                    crate::pending::Lost::TooDeep(limit) => Error::TooDeep {
                        node: self.node_name().to_owned(),
                        limit,
                    },
                });
            }
            match self.next_message(waiter, deadline) {
                // Stray messages are dropped.
                Ok(_) => {}
                Err(e @ Error::Timeout { .. }) if !self.is_broken() => {
                    // What arrived in time is read before giving up (a
                    // caller collecting several calls one after another
                    // reaches this one only after the deadline).
                    if self.drain_ready(waiter).is_ok() && self.calls.has_ended(id) {
                        continue;
                    }
                    self.abandon_call(id);
                    return Err(e);
                }
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. })) => {
                    self.abandon_call(id);
                    return Err(e);
                }
                // A message too deep to tell whose it was: not this
                // call's to answer for; the connection goes on.
                Err(Error::TooDeep { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether bytes already read wait to be taken as frames.
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.channel.has_buffered_input()
    }

    /// Reads every message that has arrived, keeping replies for their
    /// calls; a frame that has started is read to its end, until
    /// `deadline` (for a driver woken by this connection's socket).
    pub(crate) fn read_ready(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        while self.channel.poll_input()? {
            self.next_message(waiter, deadline)?;
        }
        Ok(())
    }

    /// Keeps a delivery's acknowledgement, whatever was being waited for
    /// when it came; gives back any other message.
    fn keep_if_ack(&mut self, received: Received) -> Option<Received> {
        let is_ack = self.keep_acks
            && received.control.is_send()
            && received
                .payload
                .as_ref()
                .and_then(crate::delivery::ack_id)
                .is_some();
        if !is_ack {
            return Some(received);
        }
        if self.acks.len() >= MAX_KEPT_ACKS {
            self.acks.pop_front();
        }
        self.acks.push_back(received);
        None
    }

    /// Keeps delivery acknowledgements from now on, whatever is waited for
    /// when they come (see [`crate::delivery`]).
    pub fn keep_acks(&mut self) {
        self.keep_acks = true;
    }

    /// Whether acknowledgements read earlier wait to be taken.
    pub(crate) fn has_kept_acks(&self) -> bool {
        !self.acks.is_empty()
    }

    /// Reads every message that has arrived (a frame that has started is
    /// read to its end, until `deadline`), keeping replies for their calls
    /// and answering ticks and output requests: the others, in order.
    pub fn read_messages(
        &mut self,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Vec<Received>> {
        let mut messages: Vec<Received> = self.acks.drain(..).collect();
        while self.channel.poll_input()? {
            if let Some(received) = self.next_message(waiter, deadline)? {
                messages.push(received);
            }
        }
        Ok(messages)
    }

    /// Reads, without waiting for more, every message that has already
    /// arrived, keeping replies for their calls.
    pub(crate) fn drain_ready(&mut self, waiter: &mut dyn Wait) -> Result<()> {
        self.check_idle(waiter, Instant::now() + IDLE_FRAME_GRACE)
    }

    /// Gives up on call `id`: its process is killed now if it is known,
    /// else as soon as its spawn reply arrives. Unknown ids are ignored.
    pub fn abandon_call(&mut self, id: &CallId) {
        if let Some(pid) = self.calls.abandon(id) {
            self.kill(pid);
        }
    }

    /// Gives up on every call under way (the session ends, or its
    /// connections are discarded).
    pub fn abandon_all_calls(&mut self) {
        for pid in self.calls.abandon_all() {
            self.kill(pid);
        }
    }

    /// How many calls given up on still wait for their spawn reply, so that
    /// their process can be killed.
    pub fn calls_awaiting_kill(&self) -> usize {
        self.calls.awaiting_kill()
    }

    /// How many calls are in flight: sent, not yet ended, not given up on.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.in_flight()
    }

    /// Whether call `id` has ended (its outcome can be read at once).
    pub fn call_done(&self, id: &CallId) -> bool {
        self.calls.has_ended(id)
    }

    /// Reads one frame (waiting until `deadline`) and deals with it, keeping
    /// a reply for its call; for waiting until calls end.
    pub fn wait_for_any(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.next_message(waiter, deadline).map(drop)
    }

    /// Kills `pid` on the peer (an exit signal `kill`, `PAYLOAD_EXIT2`),
    /// best effort.
    fn kill(&mut self, pid: Term<'static>) {
        let exit = Control::PayloadExit2 {
            from: self.own_pid.clone(),
            to: pid,
        };
        self.send_briefly(&exit, Some(&Term::atom("kill")));
    }

    /// The group leader of the processes our calls and casts spawn: the
    /// peer's `user` process, looked up once per connection, so that what
    /// they print goes to the peer's standard output and never waits on
    /// this node (which reads only while it runs a request). Our own pid if
    /// the peer has no `user`; output requests to us are acknowledged.
    fn group_leader(
        &mut self,
        local: &mut LocalNode,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        if self.group_leader != GroupLeader::Unknown {
            return Ok(());
        }
        self.group_leader = GroupLeader::Resolving;
        let found = self.call(
            local,
            "erlang",
            "whereis",
            vec![Term::atom("user")],
            waiter,
            deadline,
        );
        self.group_leader = match found {
            Ok(Outcome::Return(pid @ Term::Pid(_))) => GroupLeader::Known(pid),
            Ok(_) => GroupLeader::Known(self.own_pid.clone()),
            Err(e) => {
                self.group_leader = GroupLeader::Unknown;
                return Err(e);
            }
        };
        Ok(())
    }

    /// Sends a `SPAWN_REQUEST` that runs `erpc:<function>(args…)` with our
    /// pid as parent and the group leader above.
    fn spawn_request(
        &mut self,
        request_id: Term<'static>,
        function: &'static str,
        args: Vec<Term<'_>>,
        options: Vec<Term<'static>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let group_leader = match &self.group_leader {
            GroupLeader::Known(leader) => leader.clone(),
            _ => self.own_pid.clone(),
        };
        let request = Control::SpawnRequest {
            request_id,
            from: self.own_pid.clone(),
            group_leader,
            module: "erpc",
            function,
            arity: args.len(),
            options,
        };
        self.send(&request, Some(&Term::List(args)), waiter, deadline)
    }

    /// Sends `message` to `to`: a registered name (an atom) or a pid.
    pub fn send_to(
        &mut self,
        to: &Term<'_>,
        message: &Term<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let control = match to {
            Term::Atom(name) => Control::RegSend {
                from: self.own_pid.clone(),
                to: Term::atom(name.to_string()),
            },
            Term::Pid(_) => Control::Send {
                to: to.clone().into_owned(),
            },
            _ => return Err(self.bad_destination()),
        };
        self.send(&control, Some(message), waiter, deadline)
    }

    fn bad_destination(&self) -> Error {
        Error::Protocol {
            node: self.node_name().to_owned(),
            what: "a destination must be a registered name or a pid".into(),
        }
    }

    /// Runs `module:function(args…)` on the peer without waiting for it
    /// (`erpc:cast/4`): the function really runs, in a process of its own.
    pub fn cast(
        &mut self,
        local: &mut LocalNode,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let args = vec![Term::atom(module), Term::atom(function), Term::List(args)];
        self.group_leader(local, waiter, deadline)?;
        // The spawn reply comes later and is dropped as a stray.
        let request_id = local.make_ref(&self.local_name);
        self.spawn_request(
            request_id,
            "execute_cast",
            args,
            Vec::new(),
            waiter,
            deadline,
        )
    }

    /// `gen_server:call/3` semantics: the server is monitored first, so an
    /// unknown or dead server ends the call at once with the monitor's
    /// reason (`noproc`, or why it died) as an `exit`, rather than after
    /// the deadline.
    pub fn gen_call(
        &mut self,
        local: &mut LocalNode,
        server: &Term<'_>,
        request: &Term<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        if !matches!(server, Term::Atom(_) | Term::Pid(_)) {
            return Err(self.bad_destination());
        }
        let server = server.clone().into_owned();
        let monitor = local.make_ref(&self.local_name);
        let monitor_p = Control::MonitorP {
            from: self.own_pid.clone(),
            to: server.clone(),
            reference: monitor.clone(),
        };
        self.send(&monitor_p, None, waiter, deadline)?;
        let request = Term::Tuple(vec![
            Term::atom("$gen_call"),
            Term::Tuple(vec![self.own_pid.clone(), monitor.clone()]),
            request.clone(),
        ]);
        self.send_to(&server, &request, waiter, deadline)?;
        let demonitor = Control::DemonitorP {
            from: self.own_pid.clone(),
            to: server,
            reference: monitor.clone(),
        };
        loop {
            let received = match self.recv(waiter, deadline) {
                Ok(received) => received,
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. })) => {
                    // Take the monitor off the server (best effort).
                    self.send_briefly(&demonitor, None);
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            match (&received.control, &received.payload) {
                // {Ref, Reply} to our pid.
                (control, Some(Term::Tuple(reply)))
                    if control.is_send() && reply.len() == 2 && reply[0] == monitor =>
                {
                    // The reply stands even if this fails; a failed send
                    // marks the connection broken for the next request.
                    let _ = self.send(&demonitor, None, waiter, deadline);
                    return Ok(Outcome::Return(reply[1].clone()));
                }
                (
                    Control::MonitorPExit {
                        reference, reason, ..
                    },
                    _,
                ) if *reference == monitor => {
                    return Ok(Outcome::Exception {
                        class: Class::Exit,
                        reason: reason.clone(),
                        stack: None,
                    });
                }
                (Control::PayloadMonitorPExit { reference, .. }, Some(reason))
                    if *reference == monitor =>
                {
                    return Ok(Outcome::Exception {
                        class: Class::Exit,
                        reason: reason.clone(),
                        stack: None,
                    });
                }
                _ => {}
            }
        }
    }

    /// Asks the peer's `net_kernel` whether it accepts this node, as
    /// `net_adm:ping/1` does: a `gen_server` call of `{is_auth, Node}`;
    /// `true` on `yes`.
    pub fn ping(
        &mut self,
        local: &mut LocalNode,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<bool> {
        let request = Term::Tuple(vec![
            Term::atom("is_auth"),
            Term::atom(self.local_name.clone()),
        ]);
        let outcome =
            self.gen_call(local, &Term::atom("net_kernel"), &request, waiter, deadline)?;
        Ok(outcome == Outcome::Return(Term::atom("yes")))
    }
}
