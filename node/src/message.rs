//! The control messages of the distribution protocol, one type each, named
//! as in OTP's `erl_dist_protocol` ("Protocol between Connected Nodes",
//! section "Control Messages"), and encoded and decoded here only. Code
//! above speaks [`Control`], never `Term::Tuple(vec![Term::Int(29), …])`.

use erlang_cnode_codec::Term;

/// Operation codes, as the protocol numbers them.
mod op {
    pub const SEND: i64 = 2;
    pub const REG_SEND: i64 = 6;
    pub const SEND_TT: i64 = 12;
    pub const REG_SEND_TT: i64 = 16;
    pub const MONITOR_P: i64 = 19;
    pub const DEMONITOR_P: i64 = 20;
    pub const MONITOR_P_EXIT: i64 = 21;
    pub const SEND_SENDER: i64 = 22;
    pub const SEND_SENDER_TT: i64 = 23;
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
        let tuple = |op: i64, items: &[&Term<'static>]| {
            let mut all = vec![Term::Int(op)];
            all.extend(items.iter().map(|t| (*t).clone()));
            Term::Tuple(all)
        };
        let unused = Term::atom("");
        match self {
            Control::Send { to } => tuple(op::SEND, &[&unused, to]),
            Control::RegSend { from, to } => tuple(op::REG_SEND, &[from, &unused, to]),
            Control::SendSender { from, to } => tuple(op::SEND_SENDER, &[from, to]),
            Control::MonitorP {
                from,
                to,
                reference,
            } => tuple(op::MONITOR_P, &[from, to, reference]),
            Control::DemonitorP {
                from,
                to,
                reference,
            } => tuple(op::DEMONITOR_P, &[from, to, reference]),
            Control::MonitorPExit {
                from,
                to,
                reference,
                reason,
            } => tuple(op::MONITOR_P_EXIT, &[from, to, reference, reason]),
            Control::PayloadMonitorPExit {
                from,
                to,
                reference,
            } => tuple(op::PAYLOAD_MONITOR_P_EXIT, &[from, to, reference]),
            Control::PayloadExit2 { from, to } => tuple(op::PAYLOAD_EXIT2, &[from, to]),
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
                tuple(
                    op::SPAWN_REQUEST,
                    &[request_id, from, group_leader, &mfa, &options],
                )
            }
            Control::SpawnReply {
                request_id,
                to,
                flags,
                result,
            } => tuple(op::SPAWN_REPLY, &[request_id, to, flags, result]),
            Control::Other(term) => term.clone(),
        }
    }

    /// Reads a control message; what is not one of the kinds above (or not
    /// of its shape) is [`Control::Other`].
    pub fn from_term(term: Term<'static>) -> Control {
        let Term::Tuple(items) = &term else {
            return Control::Other(term);
        };
        let item = |i: usize| items[i].clone();
        match items.as_slice() {
            [Term::Int(op::SEND), _, _] | [Term::Int(op::SEND_TT), _, _, _] => {
                Control::Send { to: item(2) }
            }
            [Term::Int(op::REG_SEND), _, _, _] | [Term::Int(op::REG_SEND_TT), _, _, _, _] => {
                Control::RegSend {
                    from: item(1),
                    to: item(3),
                }
            }
            [Term::Int(op::SEND_SENDER), _, _] | [Term::Int(op::SEND_SENDER_TT), _, _, _] => {
                Control::SendSender {
                    from: item(1),
                    to: item(2),
                }
            }
            [Term::Int(op::MONITOR_P), _, _, _] => Control::MonitorP {
                from: item(1),
                to: item(2),
                reference: item(3),
            },
            [Term::Int(op::DEMONITOR_P), _, _, _] => Control::DemonitorP {
                from: item(1),
                to: item(2),
                reference: item(3),
            },
            [Term::Int(op::MONITOR_P_EXIT), _, _, _, _] => Control::MonitorPExit {
                from: item(1),
                to: item(2),
                reference: item(3),
                reason: item(4),
            },
            [Term::Int(op::PAYLOAD_MONITOR_P_EXIT), _, _, _] => Control::PayloadMonitorPExit {
                from: item(1),
                to: item(2),
                reference: item(3),
            },
            [Term::Int(op::PAYLOAD_EXIT2), _, _] => Control::PayloadExit2 {
                from: item(1),
                to: item(2),
            },
            [Term::Int(op::SPAWN_REPLY), _, _, _, _] => Control::SpawnReply {
                request_id: item(1),
                to: item(2),
                flags: item(3),
                result: item(4),
            },
            _ => Control::Other(term),
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
#[derive(Debug)]
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
    }
}
