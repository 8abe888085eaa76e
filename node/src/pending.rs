//! The calls under way on one connection, by the reference of their spawn
//! request: any number may be in flight at once, and each spawn reply and
//! monitor signal is routed to its call by that reference. No I/O here: the
//! connection reads, this table decides.

use std::collections::BTreeMap;

use erlang_cnode_codec::Term;

use crate::message::{Control, Received};
use crate::outcome::{of_execute_call, Outcome};

/// A call under way on one connection: the reference of its spawn request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallId(pub(crate) Term<'static>);

/// How a call ended when the node gave no outcome of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lost {
    /// Its exit reason was nested deeper than this node reads (`limit`).
    TooDeep(usize),
}

/// How a call ended: its outcome, or why none could be read.
pub(crate) type Ended = std::result::Result<Outcome, Lost>;

#[derive(Debug)]
struct PendingCall {
    /// The tag `erpc:execute_call/4` puts in its exit reason.
    result_tag: Term<'static>,
    /// The process running it, once the spawn reply is in.
    spawned: Option<Term<'static>>,
    /// How it ended, once it has.
    ended: Option<Ended>,
    /// Given up on (timed out, cancelled, discarded): its process is killed
    /// as soon as it is known, and the entry goes when the process is down.
    abandoned: bool,
}

/// What a received message meant to the table.
#[derive(Debug, PartialEq)]
pub(crate) enum Routed {
    /// It belongs to no call under way (a late or stray message).
    NotOurs,
    /// It was taken into the table.
    Taken,
    /// It was taken, and this process (of a call given up on) is to be
    /// killed.
    Kill(Term<'static>),
}

/// The calls under way on one connection.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    by_request: BTreeMap<Term<'static>, PendingCall>,
    /// How many are in flight (not ended, not given up on), kept as they
    /// change: asked before every call sent.
    running: usize,
}

impl Calls {
    /// Adds a call whose spawn request went out with `request_id`.
    pub(crate) fn add(&mut self, request_id: Term<'static>, result_tag: Term<'static>) -> CallId {
        self.by_request.insert(
            request_id.clone(),
            PendingCall {
                result_tag,
                spawned: None,
                ended: None,
                abandoned: false,
            },
        );
        self.running += 1;
        CallId(request_id)
    }

    /// Whether call `id` is in the table (sent, not yet read).
    pub(crate) fn contains(&self, id: &CallId) -> bool {
        self.by_request.contains_key(&id.0)
    }

    /// Whether call `id` has ended, so that [`Calls::take`] has it.
    pub(crate) fn has_ended(&self, id: &CallId) -> bool {
        self.by_request
            .get(&id.0)
            .is_some_and(|call| call.ended.is_some())
    }

    /// How call `id` ended, taken out of the table; `None` while it runs.
    pub(crate) fn take(&mut self, id: &CallId) -> Option<Ended> {
        if !self.has_ended(id) {
            return None;
        }
        self.by_request.remove(&id.0).and_then(|call| call.ended)
    }

    /// Gives up on call `id`: the process to kill now, if it is known (else
    /// it is killed when its spawn reply arrives).
    pub(crate) fn abandon(&mut self, id: &CallId) -> Option<Term<'static>> {
        let call = self.by_request.get_mut(&id.0)?;
        if call.ended.is_some() {
            self.by_request.remove(&id.0);
            return None;
        }
        if !call.abandoned {
            call.abandoned = true;
            self.running -= 1;
        }
        call.spawned.clone()
    }

    /// Gives up on every call: the processes to kill now.
    pub(crate) fn abandon_all(&mut self) -> Vec<Term<'static>> {
        let ids: Vec<CallId> = self.by_request.keys().cloned().map(CallId).collect();
        ids.iter().filter_map(|id| self.abandon(id)).collect()
    }

    /// Calls given up on whose process is not known yet (so not killed).
    pub(crate) fn awaiting_kill(&self) -> usize {
        self.by_request
            .values()
            .filter(|call| call.abandoned && call.spawned.is_none())
            .count()
    }

    /// Calls sent, not ended and not given up on.
    pub(crate) fn in_flight(&self) -> usize {
        self.running
    }

    /// Takes a spawn reply or monitor signal for the call it belongs to.
    pub(crate) fn route(&mut self, received: &Received) -> Routed {
        let request_id = match &received.control {
            Control::SpawnReply { request_id, .. } => request_id,
            Control::MonitorPExit { reference, .. }
            | Control::PayloadMonitorPExit { reference, .. } => reference,
            _ => return Routed::NotOurs,
        };
        let Some(call) = self.by_request.get_mut(request_id) else {
            return Routed::NotOurs;
        };
        let down = match &received.control {
            Control::SpawnReply { result, .. } => {
                if matches!(result, Term::Pid(_)) {
                    call.spawned = Some(result.clone());
                    return match call.abandoned {
                        true => Routed::Kill(result.clone()),
                        false => Routed::Taken,
                    };
                }
                if !call.abandoned {
                    if call.ended.is_some() {
                        // Told twice: the first stands.
                        return Routed::Taken;
                    }
                    // The node could not spawn it (`system_limit`, …): an
                    // error of the call, as erpc raises it; the connection
                    // is sound.
                    self.running -= 1;
                    call.ended = Some(Ok(Outcome::Exception {
                        class: crate::outcome::Class::Error,
                        reason: Term::Tuple(vec![Term::atom("spawn"), result.clone()]),
                        stack: None,
                    }));
                    return Routed::Taken;
                }
                None
            }
            Control::MonitorPExit { reason, .. } => Some(Ok(reason.clone())),
            _ => Some(match (&received.payload, received.payload_too_deep) {
                (_, Some(limit)) => Err(Lost::TooDeep(limit)),
                (Some(reason), None) => Ok(reason.clone()),
                (None, None) => Ok(Term::atom("undefined")),
            }),
        };
        match down {
            Some(reason) if !call.abandoned => {
                if call.ended.is_none() {
                    self.running -= 1;
                    call.ended = Some(reason.map(|r| of_execute_call(r, &call.result_tag)));
                }
            }
            // A call given up on is over once its process is down (or
            // never started).
            _ => {
                self.by_request.remove(request_id);
            }
        }
        Routed::Taken
    }
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

    fn received(control: Control, payload: Option<Term<'static>>) -> Received {
        Received {
            control,
            payload,
            payload_too_deep: None,
        }
    }

    fn spawned(request: &str, pid: Term<'static>) -> Received {
        received(
            Control::SpawnReply {
                request_id: Term::atom(request.to_owned()),
                to: Term::atom("us"),
                flags: Term::Int(0),
                result: pid,
            },
            None,
        )
    }

    fn down(request: &str, reason: Term<'static>) -> Received {
        received(
            Control::MonitorPExit {
                from: pid(9),
                to: Term::atom("us"),
                reference: Term::atom(request.to_owned()),
                reason,
            },
            None,
        )
    }

    fn returned(tag: &str, value: i64) -> Term<'static> {
        Term::Tuple(vec![
            Term::atom(tag.to_owned()),
            Term::atom("return"),
            Term::Int(value),
        ])
    }

    #[test]
    fn replies_find_their_calls_in_any_order() {
        let mut calls = Calls::default();
        let a = calls.add(Term::atom("a"), Term::atom("ta"));
        let b = calls.add(Term::atom("b"), Term::atom("tb"));
        assert_eq!(calls.in_flight(), 2);
        assert_eq!(calls.route(&down("b", returned("tb", 2))), Routed::Taken);
        assert!(calls.take(&a).is_none());
        assert_eq!(calls.route(&down("a", returned("ta", 1))), Routed::Taken);
        assert_eq!(calls.take(&a), Some(Ok(Outcome::Return(Term::Int(1)))));
        assert_eq!(calls.in_flight(), 0);
        assert_eq!(calls.take(&b), Some(Ok(Outcome::Return(Term::Int(2)))));
        assert!(!calls.contains(&a) && calls.in_flight() == 0);
        // Late: no call of its own any more.
        assert_eq!(calls.route(&down("a", returned("ta", 1))), Routed::NotOurs);
    }

    #[test]
    fn a_call_given_up_on_is_killed_as_soon_as_its_process_is_known() {
        let mut calls = Calls::default();
        let early = calls.add(Term::atom("early"), Term::atom("t1"));
        let late = calls.add(Term::atom("late"), Term::atom("t2"));
        assert_eq!(calls.route(&spawned("late", pid(2))), Routed::Taken);
        // Known: kill now. Unknown: kill when its spawn reply comes.
        assert_eq!(calls.abandon(&late), Some(pid(2)));
        assert_eq!(calls.abandon(&early), None);
        assert_eq!(calls.in_flight(), 0);
        assert_eq!(calls.route(&spawned("early", pid(1))), Routed::Kill(pid(1)));
        // Their ends are taken, and then they are gone.
        assert_eq!(
            calls.route(&down("early", Term::atom("killed"))),
            Routed::Taken
        );
        assert_eq!(
            calls.route(&down("late", Term::atom("killed"))),
            Routed::Taken
        );
        assert!(!calls.contains(&early) && !calls.contains(&late));
    }

    #[test]
    fn a_spawn_that_failed_ends_the_call_as_an_error() {
        let mut calls = Calls::default();
        let id = calls.add(Term::atom("r"), Term::atom("t"));
        calls.route(&spawned("r", Term::atom("system_limit")));
        // A second report changes nothing, and the count stays right.
        calls.route(&spawned("r", Term::atom("system_limit")));
        assert_eq!(calls.in_flight(), 0);
        assert!(matches!(
            calls.take(&id),
            Some(Ok(Outcome::Exception { reason: Term::Tuple(r), .. })) if r[1] == Term::atom("system_limit")
        ));
    }

    #[test]
    fn a_reason_too_deep_to_read_ends_its_own_call() {
        let mut calls = Calls::default();
        let id = calls.add(Term::atom("r"), Term::atom("t"));
        let other = calls.add(Term::atom("o"), Term::atom("t2"));
        let down = Received {
            control: Control::PayloadMonitorPExit {
                from: pid(9),
                to: Term::atom("us"),
                reference: Term::atom("r"),
            },
            payload: None,
            payload_too_deep: Some(1000),
        };
        assert_eq!(calls.route(&down), Routed::Taken);
        assert_eq!(calls.take(&id), Some(Err(Lost::TooDeep(1000))));
        assert!(calls.take(&other).is_none());
        assert_eq!(calls.in_flight(), 1);
    }
}
