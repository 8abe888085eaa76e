//! The calls under way on one connection, by the reference of their spawn
//! request: any number may be in flight at once, and each spawn reply and
//! monitor signal is routed to its call by that reference. No I/O here: the
//! connection reads, this table decides.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use erlang_cnode_codec::{Pid, Reference, Term};

use crate::message::{Control, Received};
use crate::outcome::{of_execute_call, Outcome};

/// A call under way on one connection: the reference of its spawn request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub(crate) Reference<'static>);

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
    /// Its spawn request's reference (the key is only part of it), also
    /// the tag `erpc:execute_call/4` puts in its exit reason.
    request_id: Reference<'static>,
    /// Whether its process is linked to us (and not monitored): its end
    /// comes as a link's exit signal, found by the process's pid.
    linked: bool,
    /// The process running it, once the spawn reply is in.
    spawned: Option<Pid<'static>>,
    /// How it ended, once it has.
    ended: Option<Ended>,
    /// Given up on (timed out, cancelled, discarded): its process is killed
    /// as soon as it is known, and the entry goes when the process is down.
    abandoned: bool,
}

/// What a received message meant to the table.
#[derive(Debug, PartialEq)]
pub(crate) enum Routed {
    /// It belongs to no call under way (a late or stray message): here it
    /// is back.
    NotOurs(Received),
    /// It was taken into the table.
    Taken,
    /// It was taken, and this process (of a call given up on) is to be
    /// killed.
    Kill(Term<'static>),
}

/// The table's key of a reference this node made ([`crate::LocalNode::make_ref`]:
/// a counter in its first two words); a reference of another shape is no
/// call's. The whole reference is compared too, once found.
fn key_of(reference: &Reference<'_>) -> Option<u64> {
    match reference.id.as_slice() {
        [low, high, _] => Some(u64::from(*low) | (u64::from(*high) << 32)),
        _ => None,
    }
}

/// The table's key of a process: its number and serial (the node and
/// incarnation are compared once found).
fn pid_key(pid: &Pid<'_>) -> (u32, u32) {
    (pid.id, pid.serial)
}

/// A hasher for the table's keys: counters and process numbers that no
/// one picks to collide (the whole reference or pid is compared once
/// found), so a multiply is enough where SipHash showed in profiles.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Keyed<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// The calls under way on one connection.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    by_request: Keyed<u64, PendingCall>,
    /// The linked calls whose process is known, by its pid.
    by_pid: Keyed<(u32, u32), u64>,
    /// How many are in flight (not ended, not given up on), kept as they
    /// change: asked before every call sent.
    running: usize,
}

impl Calls {
    /// Adds a call whose spawn request went out with `request_id` (a
    /// reference [`crate::LocalNode::make_ref`] made, also its result's
    /// tag); `linked` if its process is linked to us instead of monitored.
    pub(crate) fn add(&mut self, request_id: Reference<'static>, linked: bool) -> CallId {
        let key = key_of(&request_id).expect("a reference this node made");
        self.by_request.insert(
            key,
            PendingCall {
                request_id: request_id.clone(),
                linked,
                spawned: None,
                ended: None,
                abandoned: false,
            },
        );
        self.running += 1;
        CallId(request_id)
    }

    fn get(&self, id: &CallId) -> Option<&PendingCall> {
        let call = self.by_request.get(&key_of(&id.0)?)?;
        (call.request_id == id.0).then_some(call)
    }

    /// Takes call `key` out of the table.
    fn remove(&mut self, key: u64) -> Option<PendingCall> {
        let call = self.by_request.remove(&key)?;
        if let Some(pid) = &call.spawned {
            if call.linked {
                self.by_pid.remove(&pid_key(pid));
            }
        }
        Some(call)
    }

    /// Whether call `id` is in the table (sent, not yet read).
    pub(crate) fn contains(&self, id: &CallId) -> bool {
        self.get(id).is_some()
    }

    /// Whether call `id` has ended, so that [`Calls::take`] has it.
    pub(crate) fn has_ended(&self, id: &CallId) -> bool {
        self.get(id).is_some_and(|call| call.ended.is_some())
    }

    /// How call `id` ended, taken out of the table; `None` while it runs.
    pub(crate) fn take(&mut self, id: &CallId) -> Option<Ended> {
        if !self.has_ended(id) {
            return None;
        }
        self.remove(key_of(&id.0)?).and_then(|call| call.ended)
    }

    /// Gives up on call `id`: the process to kill now, if it is known (else
    /// it is killed when its spawn reply arrives).
    pub(crate) fn abandon(&mut self, id: &CallId) -> Option<Term<'static>> {
        let ended = self.get(id)?.ended.is_some();
        let key = key_of(&id.0)?;
        if ended {
            self.remove(key);
            return None;
        }
        let call = self.by_request.get_mut(&key)?;
        if !call.abandoned {
            call.abandoned = true;
            self.running -= 1;
        }
        call.spawned.clone().map(|pid| Term::Pid(Box::new(pid)))
    }

    /// Gives up on every call: the processes to kill now.
    pub(crate) fn abandon_all(&mut self) -> Vec<Term<'static>> {
        let ids: Vec<CallId> = self
            .by_request
            .values()
            .map(|call| CallId(call.request_id.clone()))
            .collect();
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

    /// The call a spawn reply, monitor signal or link exit signal is about:
    /// its key, if it is one of ours.
    fn key_for(&self, control: &Control) -> Option<u64> {
        let (reference, by_monitor) = match control {
            Control::SpawnReply {
                request_id: Term::Reference(r),
                ..
            } => (r, false),
            Control::MonitorPExit {
                reference: Term::Reference(r),
                ..
            }
            | Control::PayloadMonitorPExit {
                reference: Term::Reference(r),
                ..
            } => (r, true),
            Control::Exit {
                from: Term::Pid(p), ..
            }
            | Control::PayloadExit {
                from: Term::Pid(p), ..
            } => {
                let key = *self.by_pid.get(&pid_key(p))?;
                let call = self.by_request.get(&key)?;
                return (call.spawned.as_ref() == Some(&**p)).then_some(key);
            }
            _ => return None,
        };
        let key = key_of(reference)?;
        let call = self.by_request.get(&key)?;
        // A linked call's end comes by its link, a monitored one's by its
        // monitor.
        (**reference == call.request_id && !(by_monitor && call.linked)).then_some(key)
    }

    /// Takes a spawn reply, monitor signal or link exit signal for the call
    /// it belongs to; anything else is handed back.
    pub(crate) fn route(&mut self, received: Received) -> Routed {
        let Some(key) = self.key_for(&received.control) else {
            return Routed::NotOurs(received);
        };
        let call = self.by_request.get_mut(&key).expect("found above");
        let Received {
            control,
            payload,
            payload_too_deep,
        } = received;
        let reason = match control {
            Control::SpawnReply { result, .. } => {
                if let Term::Pid(pid) = result {
                    call.spawned = Some((*pid).clone());
                    if call.linked {
                        self.by_pid.insert(pid_key(&pid), key);
                    }
                    return match call.abandoned {
                        true => Routed::Kill(Term::Pid(pid)),
                        false => Routed::Taken,
                    };
                }
                if call.abandoned {
                    // Never started: nothing to wait for.
                    self.remove(key);
                    return Routed::Taken;
                }
                if call.ended.is_none() {
                    // The node could not spawn it (`system_limit`, …): an
                    // error of the call, as erpc raises it; the connection
                    // is sound.
                    self.running -= 1;
                    call.ended = Some(Ok(Outcome::Exception {
                        class: crate::outcome::Class::Error,
                        reason: Term::Tuple(vec![Term::atom("spawn"), result]),
                        stack: None,
                    }));
                }
                // Told twice: the first stands.
                return Routed::Taken;
            }
            Control::MonitorPExit { reason, .. } | Control::Exit { reason, .. } => Ok(reason),
            _ => match (payload, payload_too_deep) {
                (_, Some(limit)) => Err(Lost::TooDeep(limit)),
                (Some(reason), None) => Ok(reason),
                (None, None) => Ok(Term::atom("undefined")),
            },
        };
        if call.abandoned {
            // A call given up on is over once its process is down.
            self.remove(key);
        } else if call.ended.is_none() {
            self.running -= 1;
            call.ended = Some(reason.map(|r| of_execute_call(r, &call.request_id)));
        }
        Routed::Taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(id: u32) -> Term<'static> {
        Term::Pid(Box::new(Pid {
            node: "a@b".into(),
            id,
            serial: 0,
            creation: 1,
        }))
    }

    /// The reference of request `n`, as [`crate::LocalNode::make_ref`]
    /// lays it out.
    fn reference(n: u32) -> Reference<'static> {
        Reference {
            node: "us@b".into(),
            creation: 1,
            id: vec![n, 0, 7],
        }
    }

    fn request(n: u32) -> Term<'static> {
        Term::Reference(Box::new(reference(n)))
    }

    fn received(control: Control, payload: Option<Term<'static>>) -> Received {
        Received {
            control,
            payload,
            payload_too_deep: None,
        }
    }

    fn spawned(request_id: Term<'static>, pid: Term<'static>) -> Received {
        received(
            Control::SpawnReply {
                request_id,
                to: Term::atom("us"),
                flags: Term::Int(0),
                result: pid,
            },
            None,
        )
    }

    fn down(request: u32, reason: Term<'static>) -> Received {
        received(
            Control::MonitorPExit {
                from: pid(9),
                to: Term::atom("us"),
                reference: self::request(request),
                reason,
            },
            None,
        )
    }

    fn exited(from: Term<'static>, reason: Term<'static>) -> Received {
        received(
            Control::PayloadExit {
                from,
                to: Term::atom("us"),
            },
            Some(reason),
        )
    }

    /// What `erpc:execute_call/4` exits with when call `request` returns
    /// `value` (its result's tag is its request's reference).
    fn returned(request: u32, value: i64) -> Term<'static> {
        Term::Tuple(vec![
            self::request(request),
            Term::atom("return"),
            Term::Int(value),
        ])
    }

    #[test]
    fn replies_find_their_calls_in_any_order() {
        let mut calls = Calls::default();
        let a = calls.add(reference(1), false);
        let b = calls.add(reference(2), false);
        assert_eq!(calls.in_flight(), 2);
        assert_eq!(calls.route(down(2, returned(2, 2))), Routed::Taken);
        assert!(calls.take(&a).is_none());
        assert_eq!(calls.route(down(1, returned(1, 1))), Routed::Taken);
        assert_eq!(calls.take(&a), Some(Ok(Outcome::Return(Term::Int(1)))));
        assert_eq!(calls.in_flight(), 0);
        assert_eq!(calls.take(&b), Some(Ok(Outcome::Return(Term::Int(2)))));
        assert!(!calls.contains(&a) && calls.in_flight() == 0);
        // Late: no call of its own any more, and handed back.
        let late = down(1, returned(1, 1));
        assert_eq!(calls.route(late), Routed::NotOurs(down(1, returned(1, 1))));
    }

    #[test]
    fn a_reference_that_only_shares_the_key_is_not_the_call() {
        let mut calls = Calls::default();
        let id = calls.add(reference(1), false);
        let mut other = reference(1);
        other.node = "someone@else".into();
        let forged = Term::Reference(Box::new(other));
        let signal = received(
            Control::MonitorPExit {
                from: pid(9),
                to: Term::atom("us"),
                reference: forged,
                reason: returned(1, 1),
            },
            None,
        );
        assert!(matches!(calls.route(signal), Routed::NotOurs(_)));
        assert!(calls.contains(&id) && !calls.has_ended(&id));
    }

    #[test]
    fn a_linked_call_ends_by_its_exit_signal_not_by_a_monitor() {
        let mut calls = Calls::default();
        let id = calls.add(reference(1), true);
        // Before the spawn reply, no pid is known to be this call's.
        assert!(matches!(
            calls.route(exited(pid(3), returned(1, 5))),
            Routed::NotOurs(_)
        ));
        assert_eq!(calls.route(spawned(request(1), pid(3))), Routed::Taken);
        // A monitor signal is not how a linked call ends.
        assert!(matches!(
            calls.route(down(1, returned(1, 6))),
            Routed::NotOurs(_)
        ));
        // Another process's exit is not this call's.
        assert!(matches!(
            calls.route(exited(pid(4), returned(1, 7))),
            Routed::NotOurs(_)
        ));
        assert_eq!(calls.route(exited(pid(3), returned(1, 5))), Routed::Taken);
        assert_eq!(calls.in_flight(), 0);
        assert_eq!(calls.take(&id), Some(Ok(Outcome::Return(Term::Int(5)))));
        // Its pid is forgotten with it.
        assert!(calls.by_pid.is_empty());
        assert!(matches!(
            calls.route(exited(pid(3), returned(1, 5))),
            Routed::NotOurs(_)
        ));
    }

    #[test]
    fn a_call_given_up_on_is_killed_as_soon_as_its_process_is_known() {
        for linked in [false, true] {
            let mut calls = Calls::default();
            let early = calls.add(reference(1), linked);
            let late = calls.add(reference(2), linked);
            assert_eq!(calls.route(spawned(request(2), pid(2))), Routed::Taken);
            // Known: kill now. Unknown: kill when its spawn reply comes.
            assert_eq!(calls.abandon(&late), Some(pid(2)));
            assert_eq!(calls.abandon(&early), None);
            assert_eq!(calls.in_flight(), 0);
            assert_eq!(calls.awaiting_kill(), 1);
            assert_eq!(
                calls.route(spawned(request(1), pid(1))),
                Routed::Kill(pid(1))
            );
            // Their ends are taken, and then they are gone.
            let (first, second) = match linked {
                true => (
                    exited(pid(1), Term::atom("killed")),
                    exited(pid(2), Term::atom("killed")),
                ),
                false => (down(1, Term::atom("killed")), down(2, Term::atom("killed"))),
            };
            assert_eq!(calls.route(first), Routed::Taken);
            assert_eq!(calls.route(second), Routed::Taken);
            assert!(!calls.contains(&early) && !calls.contains(&late));
            assert!(calls.by_request.is_empty() && calls.by_pid.is_empty());
        }
    }

    #[test]
    fn a_spawn_that_failed_ends_the_call_as_an_error() {
        let mut calls = Calls::default();
        let id = calls.add(reference(1), true);
        calls.route(spawned(request(1), Term::atom("system_limit")));
        // A second report changes nothing, and the count stays right.
        calls.route(spawned(request(1), Term::atom("system_limit")));
        assert_eq!(calls.in_flight(), 0);
        assert!(matches!(
            calls.take(&id),
            Some(Ok(Outcome::Exception { reason: Term::Tuple(r), .. })) if r[1] == Term::atom("system_limit")
        ));
    }

    #[test]
    fn a_reason_too_deep_to_read_ends_its_own_call() {
        let mut calls = Calls::default();
        let id = calls.add(reference(1), false);
        let other = calls.add(reference(2), false);
        let down = Received {
            control: Control::PayloadMonitorPExit {
                from: pid(9),
                to: Term::atom("us"),
                reference: request(1),
            },
            payload: None,
            payload_too_deep: Some(1000),
        };
        assert_eq!(calls.route(down), Routed::Taken);
        assert_eq!(calls.take(&id), Some(Err(Lost::TooDeep(1000))));
        assert!(calls.take(&other).is_none());
        assert_eq!(calls.in_flight(), 1);
    }
}
