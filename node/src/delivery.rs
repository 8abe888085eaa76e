//! Delivery of queued messages, and the wire protocol any process can
//! implement to receive them exactly once:
//!
//! - an acknowledged message goes out as
//!   `{'$erlang_cnode_delivery', Id, Message, AckTo}` to a registered name;
//!   it counts as delivered when `{'$erlang_cnode_ack', Id}` comes back to
//!   `AckTo`, and is sent again (same `Id`) until then;
//! - a bare message is the message itself, sent once;
//! - a cast runs `Module:Function(Args…)` and counts as delivered when it
//!   returned normally.
//!
//! A [`Courier`] keeps any number of parcels in flight on the connections
//! of one [`Nodes`], and settles each as its acknowledgement or result
//! comes, or its time runs out: a receiver that never answers holds up
//! nobody else. Parcels for one destination go out in the order they are
//! dispatched; acknowledged ones are pipelined, casts to one function run
//! one after another, so that they also run in that order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use erlang_cnode_codec::Term;

use crate::nodes::{Nodes, Target};
use crate::outcome::Outcome;
use crate::pending::CallId;
use crate::wait::Wait;
use crate::NodeName;

/// The tag of a delivery envelope.
pub const DELIVERY_TAG: &str = "$erlang_cnode_delivery";
/// The tag of an acknowledgement.
pub const ACK_TAG: &str = "$erlang_cnode_ack";

/// Who a message is for, on the node a parcel goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    /// A registered name.
    Name(String),
    /// A pid of the node.
    Pid(Term<'static>),
    /// A name in a registry, looked up with `module:whereis_name(name)`
    /// when the message goes (`global`, or the module of a `via` name).
    Registered {
        /// The registry module.
        module: String,
        /// The name in it.
        name: Term<'static>,
    },
}

/// What one queued message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parcel {
    /// `message` to `to`, in the acknowledged envelope; `destination`
    /// names where it goes (parcels to one destination keep their order).
    Acked {
        /// Who it is for.
        to: Recipient,
        /// Where it goes, as the outbox shows it.
        destination: String,
        /// The message.
        message: Term<'static>,
    },
    /// `message` to `to`, once.
    Bare {
        /// Who it is for.
        to: Recipient,
        /// Where it goes, as the outbox shows it.
        destination: String,
        /// The message.
        message: Term<'static>,
    },
    /// `module:function(args…)`.
    Cast {
        /// The module.
        module: String,
        /// The function.
        function: String,
        /// Its arguments.
        args: Vec<Term<'static>>,
    },
}

/// What became of one parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged, sent (bare), or returned normally (cast).
    Delivered,
    /// Tried and failed, with why; to be tried again later.
    Failed(String),
    /// Not tried: an earlier cast to its function failed, or an earlier
    /// acknowledged message to its destination could not be addressed.
    Held,
}

/// The acknowledgement `{'$erlang_cnode_ack', Id}` as an id, if it is one.
pub fn ack_id(message: &Term<'_>) -> Option<i64> {
    match message {
        Term::Tuple(items) => match items.as_slice() {
            [Term::Atom(tag), Term::Int(id)] if tag == ACK_TAG => Some(*id),
            _ => None,
        },
        _ => None,
    }
}

/// The envelope of an acknowledged message.
pub fn envelope<'a>(id: i64, message: Term<'a>, ack_to: Term<'a>) -> Term<'a> {
    Term::Tuple(vec![
        Term::atom(DELIVERY_TAG),
        Term::Int(id),
        message,
        ack_to,
    ])
}

/// What a parcel in flight waits for.
enum Awaiting {
    Ack,
    Call(CallId),
}

struct Flight {
    node: NodeName,
    /// Where it goes (a registered name, or `module:function`).
    destination: String,
    generation: u64,
    deadline: Instant,
    timeout: Duration,
    awaiting: Awaiting,
}

/// Whether a node can take parcels now (see [`Courier::reach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Connected with the cookie asked for.
    Ready,
    /// Connected with another cookie, with parcels in flight: later.
    Held,
    /// It could not be reached, with why.
    Failed(String),
}

/// How long a parcel may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To connect to its node, if there is no connection.
    pub connect: Duration,
    /// For its acknowledgement (counted from the last acknowledgement
    /// from its destination, if later: a receiver that handles one
    /// message at a time and keeps going is not timed out) or its result.
    pub delivery: Duration,
}

/// A cast waiting for the one before it to the same function.
struct Queued {
    id: i64,
    module: String,
    function: String,
    args: Vec<Term<'static>>,
    cookie: String,
    timeout: Duration,
}

/// Parcels in flight on the connections of one node.
pub struct Courier {
    nodes: Nodes,
    flights: BTreeMap<i64, Flight>,
    /// Per node and function: the cast running, and those waiting for it.
    casts: BTreeMap<(String, String), (Option<i64>, VecDeque<Queued>)>,
    settled: Vec<(i64, Fate)>,
    /// Nodes (with the cookie tried) that could not be reached since the
    /// last [`Courier::collect`], with why: the parcels after the first
    /// for such a node fail at once instead of each trying to connect.
    unreachable: BTreeMap<(String, u64), String>,
    /// When each destination (node and name) last acknowledged a parcel.
    progress: BTreeMap<(String, String), Instant>,
    /// Names looked up since the last collect: (node, module, name) to
    /// pid (module `erlang` for a locally registered name).
    resolved: BTreeMap<(String, String, String), Term<'static>>,
    /// Destinations (node, destination) whose name could not be looked
    /// up since the last collect: the parcels after the first for one are
    /// held back, not tried, so that none overtakes it.
    blocked: BTreeSet<(String, String)>,
    /// Nodes that did not answer a name look-up in time since the last
    /// collect, with why.
    unresponsive: BTreeMap<String, String>,
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("nodes", &self.nodes)
            .field("in_flight", &self.flights.len())
            .finish()
    }
}

impl Courier {
    /// A courier delivering through `nodes`.
    pub fn new(mut nodes: Nodes) -> Courier {
        nodes.keep_acks();
        Courier {
            nodes,
            flights: BTreeMap::new(),
            casts: BTreeMap::new(),
            settled: Vec::new(),
            unreachable: BTreeMap::new(),
            progress: BTreeMap::new(),
            resolved: BTreeMap::new(),
            blocked: BTreeSet::new(),
            unresponsive: BTreeMap::new(),
        }
    }

    /// The node and its connections.
    pub fn nodes(&mut self) -> &mut Nodes {
        &mut self.nodes
    }

    /// The ids of the parcels dispatched and not yet settled.
    pub fn in_flight(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.flights.keys().copied().collect();
        for (_, waiting) in self.casts.values() {
            ids.extend(waiting.iter().map(|q| q.id));
        }
        ids
    }

    /// Makes sure `target`'s node is connected with `target`'s cookie
    /// (connecting within `connect`), as [`Courier::dispatch`] does first:
    /// held if the connection was made with another cookie and has parcels
    /// in flight; failed (and every later reach for the node and cookie
    /// until the next collect) if it cannot be made.
    pub fn reach(
        &mut self,
        target: &Target<'_>,
        connect: Duration,
        waiter: &mut dyn Wait,
    ) -> Reach {
        match (target.cookie)() {
            Ok(cookie) => self.reach_with(target, &cookie, connect, waiter),
            Err(e) => Reach::Failed(e.to_string()),
        }
    }

    /// [`Courier::reach`] with the target's cookie, read already.
    fn reach_with(
        &mut self,
        target: &Target<'_>,
        cookie: &str,
        connect: Duration,
        waiter: &mut dyn Wait,
    ) -> Reach {
        let node = target.node;
        let reach = (node.to_string(), fingerprint(cookie));
        if let Some(why) = self.unreachable.get(&reach) {
            return Reach::Failed(why.clone());
        }
        if self.nodes.cookie_differs(node, cookie) {
            if self.busy(node) {
                return Reach::Held;
            }
            self.nodes.use_cookie(node, cookie);
        }
        match self.nodes.ensure(target, waiter, Instant::now() + connect) {
            Ok(()) => Reach::Ready,
            Err(e) => {
                self.unreachable.insert(reach, e.to_string());
                Reach::Failed(e.to_string())
            }
        }
    }

    /// Whether parcels are in flight (or casts wait) on `node`.
    fn busy(&self, node: &NodeName) -> bool {
        self.flights.values().any(|f| f.node == *node)
            || self.casts.keys().any(|(n, _)| *n == node.to_string())
    }

    /// Sends parcel `id` to `target` (or queues a cast behind the one
    /// running for its function); its fate comes from [`Courier::collect`].
    /// False if it was held back, not tried: the connection to its node
    /// was made with another cookie (another role's user mapping) and
    /// still has parcels in flight; it is for a later dispatch.
    pub fn dispatch(
        &mut self,
        target: &Target<'_>,
        id: i64,
        parcel: Parcel,
        timeouts: Timeouts,
        waiter: &mut dyn Wait,
    ) -> bool {
        let node = target.node.clone();
        let cookie = match (target.cookie)() {
            Ok(cookie) => cookie,
            Err(e) => {
                self.settled.push((id, Fate::Failed(e.to_string())));
                return true;
            }
        };
        let reach = (node.to_string(), fingerprint(&cookie));
        match self.reach_with(target, &cookie, timeouts.connect, waiter) {
            Reach::Ready => {}
            Reach::Held => return false,
            Reach::Failed(why) => {
                self.settled.push((id, Fate::Failed(why)));
                return true;
            }
        }
        let deadline = Instant::now() + timeouts.delivery;
        // A name is looked up within the connect timeout: a node that is
        // connected but does not answer holds up the other nodes'
        // deliveries no longer than one that cannot be reached.
        let lookup_by = deadline.min(Instant::now() + timeouts.connect);
        match parcel {
            Parcel::Acked {
                to,
                destination,
                message,
            } => {
                let Some(to) =
                    self.address_or_hold(target, id, to, &destination, waiter, lookup_by)
                else {
                    return true;
                };
                let sent = self.nodes.request(
                    target,
                    waiter,
                    deadline,
                    |c, _, w| {
                        let wrapped = envelope(id, message, c.own_pid());
                        c.send_to(&to, &wrapped, w, deadline)
                    },
                    |_| false,
                );
                match sent {
                    Ok(()) => {
                        let generation = self.nodes.generation_of(&node).unwrap_or(0);
                        self.flights.insert(
                            id,
                            Flight {
                                node,
                                destination,
                                generation,
                                deadline,
                                timeout: timeouts.delivery,
                                awaiting: Awaiting::Ack,
                            },
                        );
                    }
                    Err(e) => self.unreachable(reach, id, e.to_string()),
                }
            }
            Parcel::Bare { to, message, .. } => {
                // Recorded as delivered already (at most once): sent to a
                // local name as it is, never held back.
                let to = match self.address(target, to, false, waiter, lookup_by) {
                    Ok(to) => to,
                    Err(why) => {
                        self.settled.push((id, Fate::Failed(why)));
                        return true;
                    }
                };
                let sent = self.nodes.send(target, &to, &message, waiter, deadline);
                match sent {
                    Ok(()) => self.settled.push((id, Fate::Delivered)),
                    Err(e) => self.unreachable(reach, id, e.to_string()),
                }
            }
            Parcel::Cast {
                module,
                function,
                args,
            } => {
                let key = (node.to_string(), format!("{module}:{function}"));
                let queued = Queued {
                    id,
                    module,
                    function,
                    args,
                    cookie,
                    timeout: timeouts.delivery,
                };
                let slot = self.casts.entry(key.clone()).or_default();
                slot.1.push_back(queued);
                if slot.0.is_none() {
                    self.start_next_cast(&node, &key, waiter);
                }
            }
        }
        true
    }

    /// [`Courier::address`] for acknowledged parcel `id`, going to
    /// `destination`, with its local name looked up: none if it was
    /// settled instead, failed (the name is not registered) or held back
    /// (an earlier parcel for the destination failed so since the last
    /// collect: it must not be overtaken). Looking up `deadline` at most.
    fn address_or_hold(
        &mut self,
        target: &Target<'_>,
        id: i64,
        to: Recipient,
        destination: &str,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Option<Term<'static>> {
        let key = (target.node.to_string(), destination.to_owned());
        if self.blocked.contains(&key) {
            self.settled.push((id, Fate::Held));
            return None;
        }
        match self.address(target, to, true, waiter, deadline) {
            Ok(to) => Some(to),
            Err(why) => {
                self.blocked.insert(key);
                self.settled.push((id, Fate::Failed(why)));
                None
            }
        }
    }

    /// The address a message for `to` is sent to: a pid as it is, a name
    /// in a registry looked up on the node now (each name once until the
    /// next collect). With `local`, a locally registered name is looked up
    /// too, not sent to as it is: a message to a name nobody holds yet (a
    /// node still starting) is dropped without a word, and those after it,
    /// sent once it is held, would overtake it. A node that does not answer
    /// a look-up in time answers no other until the next collect: the
    /// parcels after it fail at once instead of each waiting.
    fn address(
        &mut self,
        target: &Target<'_>,
        to: Recipient,
        local: bool,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Term<'static>, String> {
        let (module, function, name) = match to {
            Recipient::Name(name) if !local => return Ok(Term::atom(name)),
            Recipient::Name(name) => ("erlang".to_owned(), "whereis", Term::atom(name)),
            Recipient::Pid(pid) => return Ok(pid),
            Recipient::Registered { module, name } => (module, "whereis_name", name),
        };
        let key = (
            target.node.to_string(),
            module.clone(),
            erlang_cnode_codec::text::to_erlang_text(&name, 1024),
        );
        if let Some(pid) = self.resolved.get(&key) {
            return Ok(pid.clone());
        }
        if let Some(why) = self.unresponsive.get(&key.0) {
            return Err(why.clone());
        }
        let found = self
            .nodes
            .call(target, &module, function, vec![name], waiter, deadline);
        match found {
            Ok(Outcome::Return(pid @ Term::Pid(_))) => {
                self.resolved.insert(key, pid.clone());
                Ok(pid)
            }
            Ok(Outcome::Return(_)) if function == "whereis" => Err(format!(
                "no process is registered as {} on node {}",
                key.2, target.node
            )),
            Ok(Outcome::Return(_)) => Err(format!(
                "no process is registered as {} in {module} on node {}",
                key.2, target.node
            )),
            Ok(outcome) => Err(describe(&outcome)),
            Err(e) => {
                if matches!(e, crate::Error::Timeout { .. }) {
                    self.unresponsive.insert(key.0, e.to_string());
                }
                Err(e.to_string())
            }
        }
    }

    /// Parcel `id` failed because `node` could not be reached (or its
    /// connection failed): so do the others for it until the next collect.
    fn unreachable(&mut self, reach: (String, u64), id: i64, why: String) {
        self.unreachable.insert(reach, why.clone());
        self.settled.push((id, Fate::Failed(why)));
    }

    /// Starts the next cast waiting for `key`'s function, if any.
    fn start_next_cast(&mut self, node: &NodeName, key: &(String, String), waiter: &mut dyn Wait) {
        let Some(slot) = self.casts.get_mut(key) else {
            return;
        };
        let Some(next) = slot.1.pop_front() else {
            self.casts.remove(key);
            return;
        };
        let cookie = next.cookie.clone();
        let cookie = move || Ok(cookie.clone());
        let target = Target {
            node,
            cookie: &cookie,
        };
        let deadline = Instant::now() + next.timeout;
        let started = self.nodes.start_call(
            &target,
            &next.module,
            &next.function,
            next.args,
            false,
            waiter,
            deadline,
        );
        match started {
            Ok((call, generation)) => {
                self.flights.insert(
                    next.id,
                    Flight {
                        node: node.clone(),
                        destination: key.1.clone(),
                        generation,
                        deadline,
                        timeout: next.timeout,
                        awaiting: Awaiting::Call(call),
                    },
                );
                if let Some(slot) = self.casts.get_mut(key) {
                    slot.0 = Some(next.id);
                }
            }
            Err(e) => {
                // This one failed: those after it wait for its retry.
                self.settled.push((next.id, Fate::Failed(e.to_string())));
                self.hold_casts(key);
            }
        }
    }

    /// Gives back, not tried, the casts waiting behind one that failed.
    fn hold_casts(&mut self, key: &(String, String)) {
        if let Some((_, waiting)) = self.casts.remove(key) {
            self.settled
                .extend(waiting.into_iter().map(|q| (q.id, Fate::Held)));
        }
    }

    /// Waits until something arrives for a parcel in flight, a deadline
    /// passes, the waiter wakes (its latch), or `until`; then reads what
    /// came: the parcels settled since the last call, each once.
    pub fn collect(&mut self, waiter: &mut dyn Wait, until: Instant) -> Vec<(i64, Fate)> {
        self.unreachable.clear();
        self.resolved.clear();
        self.blocked.clear();
        self.unresponsive.clear();
        if self.settled.is_empty() && !self.flights.is_empty() {
            let first_deadline = self.flights.values().map(|f| f.deadline).min();
            let until = first_deadline.map_or(until, |d| d.min(until));
            let nodes: Vec<NodeName> = {
                let mut nodes: Vec<NodeName> =
                    self.flights.values().map(|f| f.node.clone()).collect();
                nodes.sort_by_key(|n| n.to_string());
                nodes.dedup_by_key(|n| n.to_string());
                nodes
            };
            for (node, received) in self.nodes.read_any(&nodes, waiter, until) {
                self.take_message(&node, &received);
            }
        }
        self.settle_calls(waiter);
        self.expire(waiter);
        std::mem::take(&mut self.settled)
    }

    /// With nothing in flight: waits on every open connection (answering
    /// the peers' ticks, so connections stay up while idle) until `until`,
    /// or the waiter wakes early. Whether there was a connection to wait on.
    pub fn idle(&mut self, waiter: &mut dyn Wait, until: Instant) -> bool {
        let nodes = self.nodes.connected();
        if nodes.is_empty() {
            return false;
        }
        for (node, received) in self.nodes.read_any(&nodes, waiter, until) {
            self.take_message(&node, &received);
        }
        true
    }

    /// An acknowledgement for a parcel in flight on `node` settles it.
    fn take_message(&mut self, node: &NodeName, received: &crate::Received) {
        if !received.control.is_send() {
            return;
        }
        let Some(id) = received.payload.as_ref().and_then(ack_id) else {
            return;
        };
        let ours = self
            .flights
            .get(&id)
            .is_some_and(|f| matches!(f.awaiting, Awaiting::Ack) && f.node == *node);
        if let Some(flight) = self.flights.remove(&id).filter(|_| ours) {
            self.progress
                .insert((node.to_string(), flight.destination), Instant::now());
            self.settled.push((id, Fate::Delivered));
        }
    }

    /// Settles the casts that ended, and those whose connection is gone.
    fn settle_calls(&mut self, waiter: &mut dyn Wait) {
        let ended: Vec<i64> = self
            .flights
            .iter()
            .filter(|(_, f)| match &f.awaiting {
                Awaiting::Call(call) => {
                    !self.nodes.is_live(&f.node, f.generation)
                        || self.nodes.call_ended(&f.node, call)
                }
                Awaiting::Ack => !self.nodes.is_live(&f.node, f.generation),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let flight = self.flights.remove(&id).expect("listed above");
            let fate = match &flight.awaiting {
                Awaiting::Ack => Fate::Failed(format!(
                    "the connection to node {} was lost before the acknowledgement",
                    flight.node
                )),
                Awaiting::Call(call) => {
                    let outcome = self.nodes.finish_call(
                        &flight.node,
                        call,
                        flight.generation,
                        waiter,
                        Instant::now(),
                    );
                    match outcome {
                        Ok(Outcome::Return(_)) => Fate::Delivered,
                        Ok(outcome) => Fate::Failed(describe(&outcome)),
                        Err(e) => Fate::Failed(e.to_string()),
                    }
                }
            };
            self.after_cast(&flight, id, fate, waiter);
        }
    }

    /// Records a parcel's fate; for a cast, starts the next one to its
    /// function, or holds them all back if this one failed.
    fn after_cast(&mut self, flight: &Flight, id: i64, fate: Fate, waiter: &mut dyn Wait) {
        let is_cast = matches!(flight.awaiting, Awaiting::Call(_));
        let failed = fate != Fate::Delivered;
        self.settled.push((id, fate));
        if !is_cast {
            return;
        }
        let key = self
            .casts
            .iter()
            .find(|(_, (running, _))| *running == Some(id))
            .map(|(key, _)| key.clone());
        let Some(key) = key else { return };
        if let Some(slot) = self.casts.get_mut(&key) {
            slot.0 = None;
        }
        if failed {
            self.hold_casts(&key);
        } else {
            self.start_next_cast(&flight.node, &key, waiter);
        }
    }

    /// Fails the parcels whose time is up (a cast's process is killed).
    fn expire(&mut self, waiter: &mut dyn Wait) {
        let now = Instant::now();
        let late: Vec<i64> = self
            .flights
            .iter()
            .filter(|(_, f)| {
                let progress = match f.awaiting {
                    Awaiting::Ack => self
                        .progress
                        .get(&(f.node.to_string(), f.destination.clone()))
                        .map(|t| *t + f.timeout),
                    Awaiting::Call(_) => None,
                };
                f.deadline.max(progress.unwrap_or(f.deadline)) <= now
            })
            .map(|(id, _)| *id)
            .collect();
        if self.flights.is_empty() {
            self.progress.clear();
        }
        for id in late {
            let flight = self.flights.remove(&id).expect("listed above");
            let why = match &flight.awaiting {
                Awaiting::Ack => format!(
                    "no acknowledgement from node {} in time (erlang_cnode.delivery_timeout)",
                    flight.node
                ),
                Awaiting::Call(call) => {
                    self.nodes
                        .abandon_call(&flight.node, call, flight.generation);
                    format!(
                        "the cast did not return in time on node {} (erlang_cnode.delivery_timeout)",
                        flight.node
                    )
                }
            };
            self.after_cast(&flight, id, Fate::Failed(why), waiter);
        }
    }
}

/// A cookie's fingerprint, to tell connections apart without keeping the
/// cookie twice.
fn fingerprint(cookie: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cookie.hash(&mut hasher);
    hasher.finish()
}

/// An exception as the outbox shows it: `class: reason`.
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Return(_) => "returned".into(),
        Outcome::Exception { class, reason, .. } => {
            let reason = erlang_cnode_codec::text::to_erlang_text(reason, 4096);
            format!("{}: {reason}", class.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_is_a_two_tuple_with_the_tag_and_an_integer() {
        let ack = Term::Tuple(vec![Term::atom(ACK_TAG), Term::Int(7)]);
        assert_eq!(ack_id(&ack), Some(7));
        let other = Term::Tuple(vec![Term::atom("ack"), Term::Int(7)]);
        assert_eq!(ack_id(&other), None);
        let long = Term::Tuple(vec![Term::atom(ACK_TAG), Term::Int(7), Term::Int(8)]);
        assert_eq!(ack_id(&long), None);
    }

    #[test]
    fn the_envelope_carries_tag_id_message_and_reply_address() {
        let wrapped = envelope(42, Term::atom("hi"), Term::atom("me"));
        assert_eq!(
            wrapped,
            Term::Tuple(vec![
                Term::atom(DELIVERY_TAG),
                Term::Int(42),
                Term::atom("hi"),
                Term::atom("me")
            ])
        );
    }
}
