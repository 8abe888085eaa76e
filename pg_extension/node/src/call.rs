//! Calling a function on the peer, with `erpc`'s semantics: the function
//! runs in a process spawned by `SPAWN_REQUEST`, monitored, and its result
//! or exception arrives as the monitor's exit reason, so a result, each
//! exception class and a vanished process are told apart exactly.

use std::time::Instant;

use erlang_cnode_codec::Term;

use crate::connection::control::{
    MONITOR_P_EXIT, PAYLOAD_EXIT2, PAYLOAD_MONITOR_P_EXIT, SPAWN_REPLY, SPAWN_REQUEST,
};
use crate::connection::{Connection, GroupLeader, LocalNode};
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

impl Connection {
    /// Calls `module:function(args…)` on the peer and waits for the outcome
    /// until `deadline`. What the function prints goes to the peer's own
    /// standard output (see [`Connection::group_leader`]). A call that times
    /// out or is interrupted has its process on the peer killed (where
    /// `erpc` would leave it running: a cancelled statement's work should
    /// stop); a result already on its way is recognised by its reference
    /// and dropped.
    pub fn call(
        &mut self,
        local: &mut LocalNode,
        module: &str,
        function: &str,
        args: Vec<Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Outcome> {
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

        let mut spawned = None;
        loop {
            let received = match self.recv(waiter, deadline) {
                Ok(received) => received,
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. })) => {
                    // Given up on: stop the function rather than leave it
                    // running (a cancelled statement's work should stop).
                    if let Some(pid) = spawned {
                        self.kill(local, pid);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let Term::Tuple(items) = &received.control else {
                continue;
            };
            let tag = match items.first() {
                Some(Term::Int(tag)) => *tag,
                _ => continue,
            };
            match (tag, items.as_slice()) {
                (SPAWN_REPLY, [_, id, _, _, result]) if *id == request_id => {
                    if matches!(result, Term::Pid(_)) {
                        spawned = Some(result.clone());
                    }
                    if matches!(result, Term::Atom(_)) {
                        return Err(Error::Protocol {
                            node: self.node_name().to_owned(),
                            what: format!(
                                "the node could not spawn the call: {}",
                                atom_text(result)
                            ),
                        });
                    }
                }
                (MONITOR_P_EXIT, [_, _, _, id, reason]) if *id == request_id => {
                    return Ok(outcome(reason.clone(), &result_tag));
                }
                (PAYLOAD_MONITOR_P_EXIT, [_, _, _, id]) if *id == request_id => {
                    let reason = received.message.unwrap_or_else(|| Term::atom("undefined"));
                    return Ok(outcome(reason, &result_tag));
                }
                _ => {}
            }
        }
    }

    /// Kills `pid` on the peer (an exit signal `kill`, `PAYLOAD_EXIT2`),
    /// best effort: a connection already out of step is left alone, and
    /// the send waits at most a moment for room.
    pub(crate) fn kill(&mut self, local: &LocalNode, pid: Term<'static>) {
        if self.is_broken() {
            return;
        }
        let control = Term::Tuple(vec![
            Term::Int(PAYLOAD_EXIT2),
            local.pid(&self.local_name),
            pid,
        ]);
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
