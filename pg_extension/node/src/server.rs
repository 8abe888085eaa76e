//! Talking to processes on the peer: sends, casts and `gen_server` calls.

use std::time::Instant;

use erlang_cnode_codec::Term;

use crate::call::{Class, Outcome};
use crate::connection::control::{
    self, DEMONITOR_P, MONITOR_P, MONITOR_P_EXIT, PAYLOAD_MONITOR_P_EXIT,
};
use crate::connection::{Connection, LocalNode};
use crate::wait::Wait;
use crate::{Error, Result};

impl Connection {
    /// Sends `message` to `to`: a registered name (an atom) or a pid.
    pub fn send_to(
        &mut self,
        local: &LocalNode,
        to: &Term<'_>,
        message: &Term<'_>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let control = match to {
            Term::Atom(_) => Term::Tuple(vec![
                Term::Int(control::REG_SEND),
                local.pid(&self.local_name),
                Term::atom(""),
                to.clone(),
            ]),
            Term::Pid(_) => Term::Tuple(vec![Term::Int(control::SEND), Term::atom(""), to.clone()]),
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
        let args = vec![
            Term::atom(module.to_owned()),
            Term::atom(function.to_owned()),
            Term::List(args),
        ];
        self.group_leader(local, waiter, deadline)?;
        // The spawn reply comes later and is dropped as a stray.
        let request_id = local.make_ref(&self.local_name);
        self.spawn_request(
            local,
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
        let pid = local.pid(&self.local_name);
        let monitor = local.make_ref(&self.local_name);
        let monitor_p = Term::Tuple(vec![
            Term::Int(MONITOR_P),
            pid.clone(),
            server.clone(),
            monitor.clone(),
        ]);
        self.send(&monitor_p, None, waiter, deadline)?;
        let request = Term::Tuple(vec![
            Term::atom("$gen_call"),
            Term::Tuple(vec![pid.clone(), monitor.clone()]),
            request.clone(),
        ]);
        self.send_to(local, server, &request, waiter, deadline)?;

        loop {
            let received = match self.recv(waiter, deadline) {
                Ok(received) => received,
                Err(e @ (Error::Timeout { .. } | Error::Interrupted { .. }))
                    if !self.is_broken() =>
                {
                    // Take the monitor off the server (best effort, briefly:
                    // the socket almost always has room).
                    let demonitor =
                        Term::Tuple(vec![Term::Int(DEMONITOR_P), pid, server.clone(), monitor]);
                    let brief = Instant::now() + std::time::Duration::from_millis(20);
                    let _ = self.send(&demonitor, None, &mut crate::wait::PollWait, brief);
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let Term::Tuple(control) = &received.control else {
                continue;
            };
            match (control.first(), control.as_slice(), &received.message) {
                // {Ref, Reply} to our pid.
                (Some(Term::Int(tag)), _, Some(Term::Tuple(reply)))
                    if control::is_send(*tag) && reply.len() == 2 && reply[0] == monitor =>
                {
                    let demonitor =
                        Term::Tuple(vec![Term::Int(DEMONITOR_P), pid, server.clone(), monitor]);
                    // The reply stands even if this fails; a failed send
                    // marks the connection broken for the next request.
                    let _ = self.send(&demonitor, None, waiter, deadline);
                    return Ok(Outcome::Return(reply[1].clone()));
                }
                (Some(Term::Int(MONITOR_P_EXIT)), [_, _, _, r, reason], _) if *r == monitor => {
                    return Ok(Outcome::Exception {
                        class: Class::Exit,
                        reason: reason.clone(),
                        stack: None,
                    });
                }
                (Some(Term::Int(PAYLOAD_MONITOR_P_EXIT)), [_, _, _, r], Some(reason))
                    if *r == monitor =>
                {
                    return Ok(Outcome::Exception {
                        class: Class::Exit,
                        reason: reason.clone(),
                        stack: None,
                    });
                }
                // Replies to calls under way meanwhile are kept for them.
                _ => {
                    self.route(&received);
                }
            }
        }
    }
}
