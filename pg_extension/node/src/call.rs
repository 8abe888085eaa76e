//! Calling a function on the peer, with `erpc`'s semantics: the function
//! runs in a process spawned by `SPAWN_REQUEST`, monitored, and its result
//! or exception arrives as the monitor's exit reason, so a result, each
//! exception class and a vanished process are told apart exactly.

use std::time::Instant;

use erlang_cnode_codec::Term;

use crate::connection::control::{
    MONITOR_P_EXIT, PAYLOAD_EXIT2, PAYLOAD_MONITOR_P_EXIT, SPAWN_REPLY, SPAWN_REQUEST,
};
use crate::connection::{Connection, GroupLeader, LocalNode, Received};
use crate::wait::{PollWait, Wait};
use crate::{Error, Result};

/// The class of an Erlang exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `error:Reason`
    Error,
    /// `exit:Reason`
    Exit,
    /// `throw:Value`
    Throw,
}

impl Class {
    /// The class as Erlang writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Error => "error",
            Class::Exit => "exit",
            Class::Throw => "throw",
        }
    }
}

/// How a remote call ended, when the node answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function returned this value.
    Return(Term<'static>),
    /// The function raised. For `error`, `stack` is the stack trace. A
    /// process killed by a signal reports `exit` with `{signal, Reason}`, as
    /// `erpc` does.
    Exception {
        /// Its class.
        class: Class,
        /// Its reason (the thrown value for `throw`).
        reason: Term<'static>,
        /// The stack trace of an `error`.
        stack: Option<Term<'static>>,
    },
}

/// A call under way on one connection: the reference of its spawn request.
/// Any number may be in flight on a connection at once; each reply, spawn
/// reply and monitor signal is routed to its call by this reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallId(Term<'static>);

/// What is known of a call under way.
#[derive(Debug)]
pub(crate) struct PendingCall {
    /// The tag `erpc:execute_call/4` puts in its exit reason.
    result_tag: Term<'static>,
    /// The process running it, once the spawn reply is in.
    spawned: Option<Term<'static>>,
    /// How it ended, once it has: its outcome, or why it could not start.
    done: Option<std::result::Result<Outcome, String>>,
    /// Given up on (timed out, cancelled, discarded): its process is killed
    /// as soon as it is known, and the entry goes when the process is down.
    abandoned: bool,
}

impl Connection {
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
        let id = self.start_call(local, module, function, args, waiter, deadline)?;
        self.finish_call(&id, waiter, deadline)
    }

    /// Sends a call of `module:function(args…)` (a `SPAWN_REQUEST` of
    /// `erpc:execute_call/4` under a monitor) and returns at once; its
    /// outcome is read by [`Connection::finish_call`]. What the function
    /// prints goes to the peer's own standard output (see
    /// [`Connection::group_leader`]).
    pub fn start_call(
        &mut self,
        local: &mut LocalNode,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<CallId> {
        self.group_leader(local, waiter, deadline)?;
        let request_id = local.make_ref(&self.local_name);
        let result_tag = local.make_ref(&self.local_name);
        let args = vec![
            result_tag.clone(),
            Term::atom(module.to_owned()),
            Term::atom(function.to_owned()),
            Term::List(args),
        ];
        let monitor = vec![Term::atom("monitor")];
        self.spawn_request(
            local,
            request_id.clone(),
            "execute_call",
            args,
            monitor,
            waiter,
            deadline,
        )?;
        self.pending.insert(
            request_id.clone(),
            PendingCall {
                result_tag,
                spawned: None,
                done: None,
                abandoned: false,
            },
        );
        Ok(CallId(request_id))
    }

    /// Waits until `deadline` for the outcome of call `id`, routing every
    /// other reply that arrives meanwhile to its own call. A call that times
    /// out or is interrupted has its process on the peer killed (where
    /// `erpc` would leave it running: a cancelled statement's work should
    /// stop); a result already on its way is recognised by its reference
    /// and dropped.
    pub fn finish_call(
        &mut self,
        id: &CallId,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
        loop {
            match self.pending.get(&id.0) {
                None => {
                    return Err(Error::Protocol {
                        node: self.node_name().to_owned(),
                        what: "no such call under way on this connection".into(),
                    })
                }
                Some(PendingCall { done: Some(_), .. }) => {
                    let call = self.pending.remove(&id.0).expect("found above");
                    return match call.done.expect("done") {
                        Ok(outcome) => Ok(outcome),
                        Err(what) => Err(Error::Protocol {
                            node: self.node_name().to_owned(),
                            what,
                        }),
                    };
                }
                Some(_) => {}
            }
            match self.recv(waiter, deadline) {
                Ok(received) => {
                    self.route(&received);
                }
                Err(e @ Error::Timeout { .. }) if !self.is_broken() => {
                    // What arrived in time is read before giving up (a
                    // caller collecting several calls one after another
                    // reaches this one only after the deadline).
                    if self.drain_ready(waiter).is_ok() && self.call_done(id) {
                        continue;
                    }
                    self.abandon_call(id);
                    return Err(e);
                }
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. })) => {
                    // Given up on: stop the function rather than leave it
                    // running (a cancelled statement's work should stop).
                    self.abandon_call(id);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives up on call `id`: its process is killed now if it is known,
    /// else as soon as its spawn reply arrives. Unknown ids are ignored.
    pub fn abandon_call(&mut self, id: &CallId) {
        let Some(call) = self.pending.get_mut(&id.0) else {
            return;
        };
        if call.done.is_some() {
            self.pending.remove(&id.0);
            return;
        }
        call.abandoned = true;
        if let Some(pid) = call.spawned.clone() {
            self.kill(pid);
        }
    }

    /// Gives up on every call under way (the session ends, or its
    /// connections are discarded).
    pub fn abandon_all_calls(&mut self) {
        let ids: Vec<CallId> = self.pending.keys().cloned().map(CallId).collect();
        for id in &ids {
            self.abandon_call(id);
        }
    }

    /// How many calls are in flight: sent, not yet ended, not given up on.
    pub fn calls_in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|call| call.done.is_none() && !call.abandoned)
            .count()
    }

    /// Whether call `id` has ended (its outcome can be read at once).
    pub fn call_done(&self, id: &CallId) -> bool {
        self.pending
            .get(&id.0)
            .is_some_and(|call| call.done.is_some())
    }

    /// Receives one message (waiting until `deadline`) and routes it to the
    /// call it belongs to, if any; for waiting until there is room for
    /// more calls.
    pub fn wait_for_any(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        let received = self.recv(waiter, deadline)?;
        self.route(&received);
        Ok(())
    }

    /// Routes a spawn reply or monitor signal to the call it belongs to;
    /// whether it belonged to one. Anything else (late replies to calls
    /// already read, stray messages) is left to the caller.
    pub(crate) fn route(&mut self, received: &Received) -> bool {
        let Term::Tuple(items) = &received.control else {
            return false;
        };
        let (tag, id) = match items.as_slice() {
            [Term::Int(SPAWN_REPLY), id, ..] => (SPAWN_REPLY, id),
            [Term::Int(MONITOR_P_EXIT), _, _, id, _] => (MONITOR_P_EXIT, id),
            [Term::Int(PAYLOAD_MONITOR_P_EXIT), _, _, id] => (PAYLOAD_MONITOR_P_EXIT, id),
            _ => return false,
        };
        let Some(call) = self.pending.get_mut(id) else {
            return false;
        };
        let (mut kill, mut remove) = (None, false);
        match (tag, items.as_slice()) {
            (SPAWN_REPLY, [_, _, _, _, result]) => {
                if matches!(result, Term::Pid(_)) {
                    call.spawned = Some(result.clone());
                    if call.abandoned {
                        kill = Some(result.clone());
                    }
                } else if call.abandoned {
                    remove = true;
                } else {
                    call.done = Some(Err(format!(
                        "the node could not spawn the call: {}",
                        atom_text(result)
                    )));
                }
            }
            (MONITOR_P_EXIT, [_, _, _, _, reason]) => {
                if call.abandoned {
                    remove = true;
                } else {
                    call.done = Some(Ok(outcome(reason.clone(), &call.result_tag)));
                }
            }
            (PAYLOAD_MONITOR_P_EXIT, _) => {
                if call.abandoned {
                    remove = true;
                } else {
                    let reason = received
                        .message
                        .clone()
                        .unwrap_or_else(|| Term::atom("undefined"));
                    call.done = Some(Ok(outcome(reason, &call.result_tag)));
                }
            }
            _ => return false,
        }
        if remove {
            self.pending.remove(id);
        }
        if let Some(pid) = kill {
            self.kill(pid);
        }
        true
    }

    /// Kills `pid` on the peer (an exit signal `kill`, `PAYLOAD_EXIT2`),
    /// best effort: a connection already out of step is left alone, and
    /// the send waits at most a moment for room.
    pub(crate) fn kill(&mut self, pid: Term<'static>) {
        if self.is_broken() {
            return;
        }
        let control = Term::Tuple(vec![Term::Int(PAYLOAD_EXIT2), self.own_pid.clone(), pid]);
        let brief = Instant::now() + std::time::Duration::from_millis(20);
        let _ = self.send(&control, Some(&Term::atom("kill")), &mut PollWait, brief);
    }

    /// The group leader of the processes our calls and casts spawn: the
    /// peer's `user` process, looked up once per connection, so that what
    /// they print goes to the peer's standard output and never waits on
    /// this node (which reads only while it runs a request). Our own pid if
    /// the peer has no `user`; output requests to us are acknowledged.
    pub(crate) fn group_leader(
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
            Ok(_) => GroupLeader::Known(local.pid(&self.local_name)),
            Err(e) => {
                self.group_leader = GroupLeader::Unknown;
                return Err(e);
            }
        };
        Ok(())
    }

    /// Sends a `SPAWN_REQUEST` that runs `erpc:<function>(args…)` with our
    /// pid as parent and the group leader above.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn spawn_request(
        &mut self,
        local: &LocalNode,
        request_id: Term<'static>,
        function: &'static str,
        args: Vec<Term<'_>>,
        options: Vec<Term<'static>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let pid = local.pid(&self.local_name);
        let group_leader = match &self.group_leader {
            GroupLeader::Known(leader) => leader.clone(),
            _ => pid.clone(),
        };
        let arity = args.len() as i64;
        let control = Term::Tuple(vec![
            Term::Int(SPAWN_REQUEST),
            request_id,
            pid,
            group_leader,
            Term::Tuple(vec![
                Term::atom("erpc"),
                Term::atom(function),
                Term::Int(arity),
            ]),
            Term::List(options),
        ]);
        self.send(&control, Some(&Term::List(args)), waiter, deadline)
    }
}

fn atom_text(term: &Term<'_>) -> String {
    match term {
        Term::Atom(a) => a.to_string(),
        other => format!("{other:?}"),
    }
}

/// Reads `erpc:execute_call/4`'s exit reason: `{Tag, return, V}`,
/// `{Tag, throw, V}`, `{Tag, exit, R}`, `{Tag, error, R, Stack}`; anything
/// else means the process died of a signal.
fn outcome(reason: Term<'static>, tag: &Term<'static>) -> Outcome {
    if let Term::Tuple(items) = &reason {
        match items.as_slice() {
            [t, Term::Atom(kind), value] if t == tag && kind == "return" => {
                return Outcome::Return(value.clone())
            }
            [t, Term::Atom(kind), value] if t == tag && kind == "throw" => {
                return Outcome::Exception {
                    class: Class::Throw,
                    reason: value.clone(),
                    stack: None,
                };
            }
            [t, Term::Atom(kind), value] if t == tag && kind == "exit" => {
                return Outcome::Exception {
                    class: Class::Exit,
                    reason: value.clone(),
                    stack: None,
                };
            }
            [t, Term::Atom(kind), value, stack] if t == tag && kind == "error" => {
                return Outcome::Exception {
                    class: Class::Error,
                    reason: value.clone(),
                    stack: Some(stack.clone()),
                };
            }
            _ => {}
        }
    }
    Outcome::Exception {
        class: Class::Exit,
        reason: Term::Tuple(vec![Term::atom("signal"), reason]),
        stack: None,
    }
}
