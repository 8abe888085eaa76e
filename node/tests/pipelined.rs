//! Many calls in flight on one connection against a real `erl` node:
//! replies routed by reference whatever their order, stray messages among
//! them, and calls given up on killed on the node.

use std::time::{Duration, Instant};

use erlang_cnode_codec::Term;
use erlang_cnode_node::{Connection, LocalNode, NodeName, Outcome, PollWait};
use erlang_cnode_test_harness::{short_host, ErlNode};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(15)
}

fn open(node: &ErlNode) -> (LocalNode, Connection) {
    let local = LocalNode::new("pgpipe", &short_host()).unwrap();
    let name = NodeName::parse(&node.name).unwrap();
    let connection = Connection::open(&name, &local, &node.cookie, &mut PollWait, soon()).unwrap();
    (local, connection)
}

/// Starts `timer:tc(timer, sleep, [Ms])`: its result, `{Microseconds, ok}`,
/// tells which call it answers.
fn start(local: &mut LocalNode, c: &mut Connection, ms: i64) -> erlang_cnode_node::CallId {
    let args = vec![
        Term::atom("timer"),
        Term::atom("sleep"),
        Term::List(vec![Term::Int(ms)]),
    ];
    c.start_call(local, "timer", "tc", args, false, &mut PollWait, soon())
        .unwrap()
}

/// How long the call took on the node, in milliseconds.
fn millis(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Return(Term::Tuple(items)) => match items[0] {
            Term::Int(us) => us / 1000,
            _ => panic!("{items:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn process_count(local: &mut LocalNode, c: &mut Connection) -> i64 {
    let args = vec![Term::atom("process_count")];
    match c.call(local, "erlang", "system_info", args, &mut PollWait, soon()) {
        Ok(Outcome::Return(Term::Int(n))) => n,
        other => panic!("{other:?}"),
    }
}

#[test]
fn replies_are_routed_to_their_calls_in_any_order() {
    let node = ErlNode::start("pipe", &[]);
    let (mut local, mut c) = open(&node);
    let slow = start(&mut local, &mut c, 300);
    let middle = start(&mut local, &mut c, 150);
    let fast = start(&mut local, &mut c, 0);
    assert_eq!(c.calls_in_flight(), 3);
    // Read the first-sent last to arrive first: the others are kept.
    let first = c.finish_call(&slow, &mut PollWait, soon()).unwrap();
    assert!(c.call_done(&fast) && c.call_done(&middle));
    let third = c.finish_call(&fast, &mut PollWait, soon()).unwrap();
    let second = c.finish_call(&middle, &mut PollWait, soon()).unwrap();
    let (first, second, third) = (millis(first), millis(second), millis(third));
    assert!(
        first >= 300 && (150..300).contains(&second) && third < 150,
        "{first} {second} {third}"
    );
    assert_eq!(c.calls_in_flight(), 0);
}

#[test]
fn calls_given_up_on_are_killed_even_before_their_process_is_known() {
    let node = ErlNode::start("pipe_kill", &[]);
    let (mut local, mut c) = open(&node);
    let before = process_count(&mut local, &mut c);
    // Given up on at once, before the spawn reply can have arrived.
    let ids: Vec<_> = (0..50).map(|_| start(&mut local, &mut c, 60_000)).collect();
    for id in &ids {
        c.abandon_call(id);
    }
    assert_eq!(c.calls_in_flight(), 0);
    // Reading on (as the next request does) kills each as it shows up;
    // then the node has no more processes than before.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = process_count(&mut local, &mut c);
        if now <= before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{now} processes, {before} before"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Not a test: how long 10,000 pipelined calls take at this layer
/// (`cargo test -p erlang_cnode_node --test pipelined -- --ignored --nocapture`).
#[test]
#[ignore]
fn timing_of_ten_thousand_pipelined_calls() {
    let node = ErlNode::start("pipe_time", &[]);
    let (mut local, mut c) = open(&node);
    for round in 0..6 {
        // Monitored and linked calls in turn.
        let linked = round % 2 == 1;
        let started = Instant::now();
        let ids: Vec<_> = (0..10_000)
            .map(|_| {
                c.start_call(
                    &mut local,
                    "erlang",
                    "node",
                    vec![],
                    linked,
                    &mut PollWait,
                    soon(),
                )
                .unwrap()
            })
            .collect();
        let sent = started.elapsed();
        for id in &ids {
            c.finish_call(id, &mut PollWait, soon()).unwrap();
        }
        println!(
            "round {round} (linked: {linked}): sent in {sent:?}, all done in {:?} ({:.1} µs/call)",
            started.elapsed(),
            started.elapsed().as_micros() as f64 / 10_000.0
        );
    }
}
