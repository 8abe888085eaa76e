//! A connected node: framing, ticks and messages after the handshake
//! ("Protocol between Connected Nodes" in `erl_dist_protocol`).

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use erlang_cnode_codec::{etf, Pid, Reference, Term};

use crate::epmd;
use crate::handshake::{handshake, Peer};
use crate::io::{self, ConnectError};
use crate::name::NodeName;
use crate::wait::Wait;
use crate::{Error, Result};

/// How long the rest of a frame may take once its first byte is in.
const IDLE_FRAME_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// `PASS_THROUGH`: a message with no distribution header follows.
const PASS_THROUGH: u8 = 112;
/// Control message tags, named as in `erl_dist_protocol`.
#[allow(missing_docs)]
pub mod control {
    pub const SEND: i64 = 2;
    pub const REG_SEND: i64 = 6;
    pub const SEND_TT: i64 = 12;
    pub const REG_SEND_TT: i64 = 16;
    pub const SEND_SENDER: i64 = 22;
    pub const SEND_SENDER_TT: i64 = 23;
    pub const MONITOR_P: i64 = 19;
    pub const DEMONITOR_P: i64 = 20;
    pub const MONITOR_P_EXIT: i64 = 21;
    pub const PAYLOAD_MONITOR_P_EXIT: i64 = 28;
    pub const PAYLOAD_EXIT2: i64 = 26;
    pub const SPAWN_REQUEST: i64 = 29;
    pub const SPAWN_REPLY: i64 = 31;

    /// Whether a control message with this tag delivers a message to a pid.
    pub fn is_send(tag: i64) -> bool {
        matches!(tag, SEND | SEND_SENDER | SEND_TT | SEND_SENDER_TT)
    }
}

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
        self.refs = self.refs.wrapping_add(1);
        let id = vec![self.refs as u32, (self.refs >> 32) as u32, self.ref_salt];
        Term::Reference(Box::new(Reference {
            node: name.to_owned().into(),
            creation: self.creation,
            id,
        }))
    }
}

/// One message received: its control message and payload, if any.
#[derive(Debug)]
pub struct Received {
    /// The control message tuple.
    pub control: Term<'static>,
    /// The payload of a send.
    pub message: Option<Term<'static>>,
}

/// The group leader for processes we spawn on the peer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GroupLeader {
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
    stream: TcpStream,
    node: String,
    pub(crate) local_name: String,
    peer: Peer,
    input: io::ReadBuffer,
    pub(crate) group_leader: GroupLeader,
    max_message_size: usize,
    /// An operation stopped in the middle of a frame: the stream is out of
    /// step and the connection must not be used again.
    broken: bool,
    /// Our pid on this connection (what spawned processes and exit signals
    /// name as their parent or sender).
    pub(crate) own_pid: Term<'static>,
    /// Calls under way, by the reference of their spawn request.
    pub(crate) pending: std::collections::BTreeMap<Term<'static>, crate::call::PendingCall>,
}

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
        let name = node.to_string();
        let addr = epmd::lookup(node, waiter, deadline)?;
        let mut stream = match io::connect(addr, waiter, deadline, &name, "connecting to") {
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
            &mut stream,
            &local_name,
            local.creation,
            cookie,
            &name,
            waiter,
            deadline,
        )?;
        Ok(Connection {
            stream,
            node: name,
            own_pid: local.pid(&local_name),
            local_name,
            peer,
            input: io::ReadBuffer::new(),
            group_leader: GroupLeader::Unknown,
            max_message_size: 64 << 20,
            broken: false,
            pending: std::collections::BTreeMap::new(),
        })
    }

    /// Refuse incoming messages larger than `bytes`.
    pub fn set_max_message_size(&mut self, bytes: usize) {
        self.max_message_size = bytes;
    }

    /// The peer as it introduced itself.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The node's name as the caller gave it.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// What this node is called on this connection.
    pub fn local_name(&self) -> &str {
        &self.local_name
    }

    /// Whether an earlier operation stopped in the middle of a frame, so
    /// that the connection can only be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::ConnectionLost {
                node: self.node.clone(),
                reason: "an earlier operation was cut off in the middle of a frame".into(),
            });
        }
        Ok(())
    }

    /// Writes one whole frame; a failure part-way breaks the connection.
    fn write_frame(
        &mut self,
        frame: &[u8],
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.usable()?;
        self.broken = true;
        io::write_all(
            &mut self.stream,
            frame,
            waiter,
            deadline,
            &self.node,
            "sending to",
        )?;
        self.broken = false;
        Ok(())
    }

    /// Sends a control message and optional payload.
    pub fn send(
        &mut self,
        control: &Term<'_>,
        message: Option<&Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let encode_error = |e: erlang_cnode_codec::Error| Error::Protocol {
            node: self.node.clone(),
            what: e.to_string(),
        };
        let mut frame = vec![0, 0, 0, 0, PASS_THROUGH];
        etf::encode_into(control, &mut frame).map_err(encode_error)?;
        if let Some(message) = message {
            etf::encode_into(message, &mut frame).map_err(encode_error)?;
        }
        let len = u32::try_from(frame.len() - 4).map_err(|_| Error::TooLarge {
            node: self.node.clone(),
            size: frame.len(),
            limit: u32::MAX as usize,
        })?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.write_frame(&frame, waiter, deadline)
    }

    /// Sends a tick (an empty frame), which keeps the peer from dropping an
    /// idle connection.
    pub fn tick(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.write_frame(&[0, 0, 0, 0], waiter, deadline)
    }

    /// Receives the next message for the caller. Ticks are answered and
    /// output requests from processes whose group leader we are are
    /// acknowledged on the way. The deadline and the waiter's interruption
    /// are checked before every frame, even when frames keep arriving.
    pub fn recv(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<Received> {
        loop {
            if let Some(received) = self.next_frame(waiter, deadline)? {
                return Ok(received);
            }
        }
    }

    /// Waits until a frame starts arriving, consuming nothing.
    fn await_frame(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                node: self.node.clone(),
                during: "waiting for",
            });
        }
        // Let the host see a cancel even while data keeps arriving.
        if waiter.check(self.stream.as_raw_fd()).is_err() {
            return Err(Error::Interrupted {
                node: self.node.clone(),
            });
        }
        self.input
            .fill(&self.stream, 1, waiter, deadline, &self.node, "waiting for")
    }

    /// Reads one frame: `None` for a tick or an output request, each
    /// answered at once. Once a frame has started, a failure to read all of
    /// it breaks the connection.
    fn next_frame(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<Option<Received>> {
        self.usable()?;
        self.await_frame(waiter, deadline)?;
        self.broken = true;
        self.input
            .fill(&self.stream, 4, waiter, deadline, &self.node, "waiting for")?;
        let head = &self.input.available()[..4];
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
        if len > self.max_message_size {
            return Err(Error::TooLarge {
                node: self.node.clone(),
                size: len,
                limit: self.max_message_size,
            });
        }
        self.input.fill(
            &self.stream,
            4 + len,
            waiter,
            deadline,
            &self.node,
            "waiting for",
        )?;
        self.broken = false;
        if len == 0 {
            self.input.consume(4);
            self.tick(waiter, deadline)?;
            return Ok(None);
        }
        let parsed = self.parse(&self.input.available()[4..4 + len]);
        self.input.consume(4 + len);
        let received = parsed?;
        if self.answer_io_request(&received, waiter, deadline)? {
            return Ok(None);
        }
        Ok(Some(received))
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
        let (Term::Tuple(control), Some(Term::Tuple(items))) =
            (&received.control, &received.message)
        else {
            return Ok(false);
        };
        if !matches!(control.first(), Some(Term::Int(tag)) if control::is_send(*tag)) {
            return Ok(false);
        }
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
        let control = Term::Tuple(vec![Term::Int(control::SEND), Term::atom(""), from.clone()]);
        let reply = Term::Tuple(vec![Term::atom("io_reply"), reply_as.clone(), answer]);
        self.send(&control, Some(&reply), waiter, deadline)?;
        Ok(true)
    }

    /// Checks, without waiting, that the peer has not closed the connection
    /// while it sat idle, answering pending ticks and output requests and
    /// dropping stray messages (late replies to calls that timed out, even
    /// ones that do not decode). Call it before sending a request: a
    /// connection the peer dropped (for instance after `net_ticktime`
    /// without ticks) is reported as `ConnectionLost` before anything was
    /// sent. It drains for at most a second (and never past `deadline`), however much
    /// keeps arriving.
    pub fn check_idle(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.usable()?;
        let deadline = deadline.min(Instant::now() + IDLE_FRAME_GRACE);
        loop {
            if self.input.available().is_empty() {
                match self.input.read_once(&self.stream, 1, &self.node) {
                    Ok(None) => return Ok(()),
                    Ok(Some(_)) => {}
                    Err(Error::ConnectionLost { node, reason }) => {
                        return Err(Error::ConnectionLost {
                            node,
                            reason: format!("{reason} while idle"),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
            match self.next_frame(waiter, deadline) {
                // Replies to calls under way are kept for them; anything
                // else (late replies, stray messages) is dropped.
                Ok(Some(received)) => {
                    self.route(&received);
                }
                Ok(None) | Err(Error::Protocol { .. }) => {}
                // Out of time between frames: the connection is sound.
                Err(Error::Timeout { .. }) if !self.broken => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads, without waiting for more, every message that has already
    /// arrived, routing replies to their calls (for a call whose deadline
    /// has passed while its reply sat unread).
    pub(crate) fn drain_ready(&mut self, waiter: &mut dyn Wait) -> Result<()> {
        self.check_idle(waiter, Instant::now() + IDLE_FRAME_GRACE)
    }

    fn parse(&self, body: &[u8]) -> Result<Received> {
        let protocol = |what: String| Error::Protocol {
            node: self.node.clone(),
            what,
        };
        if body[0] != PASS_THROUGH {
            return Err(protocol(format!(
                "unexpected message type {} (no distribution header was agreed)",
                body[0]
            )));
        }
        let mut decoder = etf::Decoder::new(&body[1..]);
        let control = decoder
            .next_term()
            .map_err(|e| protocol(format!("control message: {e}")))?
            .into_owned();
        let message = if decoder.remaining().is_empty() {
            None
        } else {
            Some(
                decoder
                    .next_term()
                    .map_err(|e| protocol(format!("message: {e}")))?
                    .into_owned(),
            )
        };
        decoder.finish().map_err(|e| protocol(e.to_string()))?;
        Ok(Received { control, message })
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
        Ok(outcome == crate::call::Outcome::Return(Term::atom("yes")))
    }
}
