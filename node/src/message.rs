//! The control messages of the distribution protocol, one type each, named
//! as in OTP's `erl_dist_protocol` ("Protocol between Connected Nodes",
//! section "Control Messages"), and encoded and decoded here only. Code
//! above speaks [`Control`], never `Term::Tuple(vec![Term::Int(29), …])`.

use erlang_cnode_codec::Term;

/// Operation codes, as the protocol numbers them.
mod op {
    pub const SEND: i64 = 2;
    pub const EXIT: i64 = 3;
    pub const REG_SEND: i64 = 6;
    pub const SEND_TT: i64 = 12;
    pub const EXIT_TT: i64 = 13;
    pub const REG_SEND_TT: i64 = 16;
    pub const MONITOR_P: i64 = 19;
    pub const DEMONITOR_P: i64 = 20;
    pub const MONITOR_P_EXIT: i64 = 21;
    pub const SEND_SENDER: i64 = 22;
    pub const SEND_SENDER_TT: i64 = 23;
    pub const PAYLOAD_EXIT: i64 = 24;
    pub const PAYLOAD_EXIT_TT: i64 = 25;
    pub const PAYLOAD_EXIT2: i64 = 26;
    pub const PAYLOAD_MONITOR_P_EXIT: i64 = 28;
    pub const SPAWN_REQUEST: i64 = 29;
    pub const SPAWN_REPLY: i64 = 31;
}

/// One control message. Trace-token variants (`SEND_TT`, …) decode as their
/// plain kind; a kind this node does not use is kept as [`Control::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// `SEND`: `{2, Unused, ToPid}`, followed by the message.
    Send {
        /// The receiving process.
        to: Term<'static>,
    },
    /// `REG_SEND`: `{6, FromPid, Unused, ToName}`, followed by the message.
    RegSend {
        /// The sending process.
        from: Term<'static>,
        /// The registered name it goes to.
        to: Term<'static>,
    },
    /// `SEND_SENDER`: `{22, FromPid, ToPid}`, followed by the message.
    SendSender {
        /// The sending process.
        from: Term<'static>,
        /// The receiving process.
        to: Term<'static>,
    },
    /// `EXIT`: `{3, FromPid, ToPid, Reason}`: a linked process exited (the
    /// link is gone).
    Exit {
        /// The process that exited.
        from: Term<'static>,
        /// The process linked to it.
        to: Term<'static>,
        /// Why.
        reason: Term<'static>,
    },
    /// `PAYLOAD_EXIT`: `{24, FromPid, ToPid}`, followed by the reason: what
    /// replaces `EXIT` once `DFLAG_EXIT_PAYLOAD` is agreed.
    PayloadExit {
        /// The process that exited.
        from: Term<'static>,
        /// The process linked to it.
        to: Term<'static>,
    },
    /// `MONITOR_P`: `{19, FromPid, ToProc, Ref}`: monitor a process (by pid
    /// or registered name).
    MonitorP {
        /// The monitoring process.
        from: Term<'static>,
        /// The monitored process.
        to: Term<'static>,
        /// The monitor's reference.
        reference: Term<'static>,
    },
    /// `DEMONITOR_P`: `{20, FromPid, ToProc, Ref}`.
    DemonitorP {
        /// The monitoring process.
        from: Term<'static>,
        /// The monitored process.
        to: Term<'static>,
        /// The monitor's reference.
        reference: Term<'static>,
    },
    /// `MONITOR_P_EXIT`: `{21, FromProc, ToPid, Ref, Reason}`: a monitored
    /// process is down.
    MonitorPExit {
        /// The process that went down.
        from: Term<'static>,
        /// The monitoring process.
        to: Term<'static>,
        /// The monitor's reference.
        reference: Term<'static>,
        /// Why.
        reason: Term<'static>,
    },
    /// `PAYLOAD_MONITOR_P_EXIT`: `{28, FromProc, ToPid, Ref}`, followed by
    /// the reason.
    PayloadMonitorPExit {
        /// The process that went down.
        from: Term<'static>,
        /// The monitoring process.
        to: Term<'static>,
        /// The monitor's reference.
        reference: Term<'static>,
    },
    /// `PAYLOAD_EXIT2`: `{26, FromPid, ToPid}`, followed by the reason: an
    /// exit signal.
    PayloadExit2 {
        /// The sender of the signal.
        from: Term<'static>,
        /// Its target.
        to: Term<'static>,
    },
    /// `SPAWN_REQUEST`: `{29, ReqId, From, GroupLeader, {Module, Function,
    /// Arity}, OptList}`, followed by the argument list.
    SpawnRequest {
        /// The request's reference, which the reply carries.
        request_id: Term<'static>,
        /// The parent of the new process.
        from: Term<'static>,
        /// Its group leader.
        group_leader: Term<'static>,
        /// The module of the function it runs.
        module: &'static str,
        /// The function.
        function: &'static str,
        /// The function's arity.
        arity: usize,
        /// Spawn options (`monitor`, `link`, …).
        options: Vec<Term<'static>>,
    },
    /// `SPAWN_REPLY`: `{31, ReqId, To, Flags, Result}`: the new process's
    /// pid, or why it could not be spawned (an atom).
    SpawnReply {
        /// The request's reference.
        request_id: Term<'static>,
        /// The requesting process.
        to: Term<'static>,
        /// Flags (link, monitor) as set up.
        flags: Term<'static>,
        /// A pid, or the error.
        result: Term<'static>,
    },
    /// A control message of another kind, as it came.
    Other(Term<'static>),
}

impl Control {
    /// The control message as the tuple the protocol sends.
    pub fn to_term(&self) -> Term<'static> {
        self.with_parts(|op, items| match op {
            Some(op) => {
                let mut all = vec![Term::Int(op)];
                all.extend(items.iter().map(|t| (*t).clone()));
                Term::Tuple(all)
            }
            None => items[0].clone(),
        })
    }

    /// Appends the control message as [`Control::to_term`] gives it, with
    /// the version byte, encoding its parts where they are (no pid or
    /// reference is copied to be sent).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> erlang_cnode_codec::Result<()> {
        use erlang_cnode_codec::etf::{encode_body_into, tag};
        self.with_parts(|op, items| {
            out.push(tag::VERSION);
            if let Some(op) = op {
                // Every operation code and size fits a small tuple and a
                // small integer.
                out.extend_from_slice(&[
                    tag::SMALL_TUPLE_EXT,
                    items.len() as u8 + 1,
                    tag::SMALL_INTEGER_EXT,
                    op as u8,
                ]);
            }
            items
                .iter()
                .try_for_each(|item| encode_body_into(item, out))
        })
    }

    /// Calls `f` with the operation code and the items after it, as the
    /// protocol lays them out (`None` and the term itself for
    /// [`Control::Other`]).
    fn with_parts<R>(&self, f: impl FnOnce(Option<i64>, &[&Term<'static>]) -> R) -> R {
        let unused = Term::atom("");
        match self {
            Control::Send { to } => f(Some(op::SEND), &[&unused, to]),
            Control::RegSend { from, to } => f(Some(op::REG_SEND), &[from, &unused, to]),
            Control::SendSender { from, to } => f(Some(op::SEND_SENDER), &[from, to]),
            Control::Exit { from, to, reason } => f(Some(op::EXIT), &[from, to, reason]),
            Control::PayloadExit { from, to } => f(Some(op::PAYLOAD_EXIT), &[from, to]),
            Control::MonitorP {
                from,
                to,
                reference,
            } => f(Some(op::MONITOR_P), &[from, to, reference]),
            Control::DemonitorP {
                from,
                to,
                reference,
            } => f(Some(op::DEMONITOR_P), &[from, to, reference]),
            Control::MonitorPExit {
                from,
                to,
                reference,
                reason,
            } => f(Some(op::MONITOR_P_EXIT), &[from, to, reference, reason]),
            Control::PayloadMonitorPExit {
                from,
                to,
                reference,
            } => f(Some(op::PAYLOAD_MONITOR_P_EXIT), &[from, to, reference]),
            Control::PayloadExit2 { from, to } => f(Some(op::PAYLOAD_EXIT2), &[from, to]),
            Control::SpawnRequest {
                request_id,
                from,
                group_leader,
                module,
                function,
                arity,
                options,
            } => {
                let mfa = Term::Tuple(vec![
                    Term::atom(*module),
                    Term::atom(*function),
                    Term::Int(*arity as i64),
                ]);
                let options = Term::List(options.clone());
                f(
                    Some(op::SPAWN_REQUEST),
                    &[request_id, from, group_leader, &mfa, &options],
                )
            }
            Control::SpawnReply {
                request_id,
                to,
                flags,
                result,
            } => f(Some(op::SPAWN_REPLY), &[request_id, to, flags, result]),
            Control::Other(term) => f(None, &[term]),
        }
    }

    /// Reads a control message; what is not one of the kinds above (or not
    /// of its shape) is [`Control::Other`].
    pub fn from_term(term: Term<'static>) -> Control {
        let Term::Tuple(items) = term else {
            return Control::Other(term);
        };
        let op = match items.first() {
            Some(Term::Int(op)) => *op,
            _ => return Control::Other(Term::Tuple(items)),
        };
        // The kinds this node reads, by operation and size; the items are
        // moved out, not copied (an exit reason can be a call's result).
        let kind = match (op, items.len()) {
            (op::SEND, 3) | (op::SEND_TT, 4) => op::SEND,
            (op::EXIT, 4) | (op::EXIT_TT, 5) => op::EXIT,
            (op::REG_SEND, 4) | (op::REG_SEND_TT, 5) => op::REG_SEND,
            (op::SEND_SENDER, 3) | (op::SEND_SENDER_TT, 4) => op::SEND_SENDER,
            (op::PAYLOAD_EXIT, 3) | (op::PAYLOAD_EXIT_TT, 4) => op::PAYLOAD_EXIT,
            (op::MONITOR_P, 4)
            | (op::DEMONITOR_P, 4)
            | (op::MONITOR_P_EXIT, 5)
            | (op::PAYLOAD_MONITOR_P_EXIT, 4)
            | (op::PAYLOAD_EXIT2, 3)
            | (op::SPAWN_REPLY, 5) => op,
            _ => return Control::Other(Term::Tuple(items)),
        };
        let mut rest = items.into_iter().skip(1);
        let mut item = || rest.next().expect("counted above");
        match kind {
            op::SEND => {
                let _unused = item();
                Control::Send { to: item() }
            }
            op::EXIT => Control::Exit {
                from: item(),
                to: item(),
                // EXIT_TT: {13, FromPid, ToPid, TraceToken, Reason}.
                reason: match op {
                    op::EXIT_TT => {
                        let _token = item();
                        item()
                    }
                    _ => item(),
                },
            },
            op::REG_SEND => {
                let from = item();
                let _unused = item();
                Control::RegSend { from, to: item() }
            }
            op::SEND_SENDER => Control::SendSender {
                from: item(),
                to: item(),
            },
            op::PAYLOAD_EXIT => Control::PayloadExit {
                from: item(),
                to: item(),
            },
            op::MONITOR_P => Control::MonitorP {
                from: item(),
                to: item(),
                reference: item(),
            },
            op::DEMONITOR_P => Control::DemonitorP {
                from: item(),
                to: item(),
                reference: item(),
            },
            op::MONITOR_P_EXIT => Control::MonitorPExit {
                from: item(),
                to: item(),
                reference: item(),
                reason: item(),
            },
            op::PAYLOAD_MONITOR_P_EXIT => Control::PayloadMonitorPExit {
                from: item(),
                to: item(),
                reference: item(),
            },
            op::PAYLOAD_EXIT2 => Control::PayloadExit2 {
                from: item(),
                to: item(),
            },
            _ => Control::SpawnReply {
                request_id: item(),
                to: item(),
                flags: item(),
                result: item(),
            },
        }
    }

    /// Whether it delivers a message to a process (one of the sends).
    pub fn is_send(&self) -> bool {
        matches!(
            self,
            Control::Send { .. } | Control::RegSend { .. } | Control::SendSender { .. }
        )
    }
}

/// One message received: its control message and what follows it (a sent
/// message, an exit reason, spawn arguments), if anything.
#[derive(Debug, PartialEq)]
pub struct Received {
    /// The control message.
    pub control: Control,
    /// What follows it.
    pub payload: Option<Term<'static>>,
    /// Set (to the limit) when what followed was nested too deeply to read:
    /// the control message still says whose it was.
    pub payload_too_deep: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(id: u32) -> Term<'static> {
        Term::Pid(Box::new(erlang_cnode_codec::Pid {
            node: "a@b".into(),
            id,
            serial: 0,
            creation: 1,
        }))
    }

    #[test]
    fn every_kind_comes_back_as_it_went() {
        let reference = Term::atom("ref");
        for control in [
            Control::Send { to: pid(1) },
            Control::RegSend {
                from: pid(1),
                to: Term::atom("name"),
            },
            Control::SendSender {
                from: pid(1),
                to: pid(2),
            },
            Control::Exit {
                from: pid(2),
                to: pid(1),
                reason: Term::atom("killed"),
            },
            Control::PayloadExit {
                from: pid(2),
                to: pid(1),
            },
            Control::MonitorP {
                from: pid(1),
                to: Term::atom("srv"),
                reference: reference.clone(),
            },
            Control::DemonitorP {
                from: pid(1),
                to: pid(2),
                reference: reference.clone(),
            },
            Control::MonitorPExit {
                from: pid(2),
                to: pid(1),
                reference: reference.clone(),
                reason: Term::atom("noproc"),
            },
            Control::PayloadMonitorPExit {
                from: pid(2),
                to: pid(1),
                reference: reference.clone(),
            },
            Control::PayloadExit2 {
                from: pid(1),
                to: pid(2),
            },
            Control::SpawnReply {
                request_id: reference.clone(),
                to: pid(1),
                flags: Term::Int(2),
                result: pid(3),
            },
            Control::Other(Term::Tuple(vec![Term::Int(99)])),
        ] {
            assert_eq!(Control::from_term(control.to_term()), control);
            // Encoded in place, it is the same bytes as its term.
            let mut bytes = Vec::new();
            control.encode_into(&mut bytes).unwrap();
            assert_eq!(
                bytes,
                erlang_cnode_codec::etf::encode(&control.to_term()).unwrap()
            );
        }
    }

    #[test]
    fn a_spawn_request_is_laid_out_as_the_protocol_says() {
        let request = Control::SpawnRequest {
            request_id: Term::atom("req"),
            from: pid(1),
            group_leader: pid(2),
            module: "erpc",
            function: "execute_call",
            arity: 4,
            options: vec![Term::atom("monitor")],
        };
        assert_eq!(
            request.to_term(),
            Term::Tuple(vec![
                Term::Int(29),
                Term::atom("req"),
                pid(1),
                pid(2),
                Term::Tuple(vec![
                    Term::atom("erpc"),
                    Term::atom("execute_call"),
                    Term::Int(4)
                ]),
                Term::List(vec![Term::atom("monitor")]),
            ])
        );
        let mut bytes = Vec::new();
        request.encode_into(&mut bytes).unwrap();
        assert_eq!(
            bytes,
            erlang_cnode_codec::etf::encode(&request.to_term()).unwrap()
        );
    }

    #[test]
    fn trace_token_variants_read_as_their_plain_kind() {
        let token = Term::atom("token");
        let send_tt = Term::Tuple(vec![Term::Int(12), Term::atom(""), pid(1), token.clone()]);
        assert_eq!(Control::from_term(send_tt), Control::Send { to: pid(1) });
        let reg_tt = Term::Tuple(vec![
            Term::Int(16),
            pid(1),
            Term::atom(""),
            Term::atom("n"),
            token,
        ]);
        assert!(Control::from_term(reg_tt).is_send());
        let exit_tt = Term::Tuple(vec![
            Term::Int(13),
            pid(2),
            pid(1),
            Term::atom("token"),
            Term::atom("killed"),
        ]);
        assert_eq!(
            Control::from_term(exit_tt),
            Control::Exit {
                from: pid(2),
                to: pid(1),
                reason: Term::atom("killed")
            }
        );
        let payload_exit_tt = Term::Tuple(vec![Term::Int(25), pid(2), pid(1), Term::atom("t")]);
        assert_eq!(
            Control::from_term(payload_exit_tt),
            Control::PayloadExit {
                from: pid(2),
                to: pid(1)
            }
        );
    }
}
