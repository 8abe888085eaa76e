//! Sends, casts, gen_server calls and idle-connection checks against a real
//! `erl` node that runs a registered `inbox` process.

use std::time::{Duration, Instant};

use erlang_cnode_codec::{json, Term};
use erlang_cnode_node::{Class, Connection, Error, LocalNode, NodeName, Outcome, PollWait};
use erlang_cnode_test_harness::{short_host, ErlNode};

struct Session {
    node: ErlNode,
    local: LocalNode,
    connection: Connection,
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(15)
}

fn session() -> Session {
    let node = ErlNode::start("procs", &[]);
    let local = LocalNode::new("pgtest", &short_host()).unwrap();
    let name = NodeName::parse(&node.name).unwrap();
    let connection = Connection::open(&name, &local, &node.cookie, &mut PollWait, soon()).unwrap();
    Session {
        node,
        local,
        connection,
    }
}

impl Session {
    /// Registers an `inbox` on the node: a process that sleeps forever, so
    /// every message sent to it stays in its queue.
    fn with_inbox(mut self) -> Self {
        let sleeper = self.call(
            "erlang",
            "spawn",
            vec![
                Term::atom("timer"),
                Term::atom("sleep"),
                json::parse(r#"[{"$atom": "infinity"}]"#)
                    .unwrap()
                    .into_owned(),
            ],
        );
        assert_eq!(
            self.call("erlang", "register", vec![Term::atom("inbox"), sleeper]),
            Term::atom("true")
        );
        self
    }

    fn call(&mut self, m: &str, f: &str, args: Vec<Term<'static>>) -> Term<'static> {
        match self
            .connection
            .call(&mut self.local, m, f, args, &mut PollWait, soon())
            .unwrap()
        {
            Outcome::Return(value) => value,
            other => panic!("{m}:{f}: {other:?}"),
        }
    }

    /// The inbox's queued messages, as JSON.
    fn inbox(&mut self) -> String {
        let pid = self.call("erlang", "whereis", vec![Term::atom("inbox")]);
        let info = self.call("erlang", "process_info", vec![pid, Term::atom("messages")]);
        json::to_string(&info).unwrap()
    }

    /// Waits (bounded) until the inbox holds `expected`, failing loudly.
    fn inbox_becomes(&mut self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.inbox();
            if now == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "inbox is {now}, expected {expected}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn send_reaches_a_registered_process() {
    let mut s = session().with_inbox();
    let message = json::parse(r#"{"$tuple": [{"$atom": "hello"}, [1, 2]]}"#).unwrap();
    s.connection
        .send_to(&Term::atom("inbox"), &message, &mut PollWait, soon())
        .unwrap();
    s.inbox_becomes(r#"{"$tuple":[{"$atom":"messages"},[{"$tuple":[{"$atom":"hello"},[1,2]]}]]}"#);
}

#[test]
fn cast_really_runs_the_function() {
    let mut s = session().with_inbox();
    let args = vec![Term::atom("inbox"), Term::atom("from_cast")];
    s.connection
        .cast(&mut s.local, "erlang", "send", args, &mut PollWait, soon())
        .unwrap();
    s.inbox_becomes(r#"{"$tuple":[{"$atom":"messages"},[{"$atom":"from_cast"}]]}"#);
}

#[test]
fn gen_call_reaches_a_gen_server() {
    let mut s = session();
    // rex, the rpc server, is a gen_server on every node.
    let request = json::parse(r#"{"$tuple": [{"$atom": "call"}, {"$atom": "lists"}, {"$atom": "reverse"}, [[1, 2]], {"$atom": "user"}]}"#)
        .unwrap();
    let outcome = s
        .connection
        .gen_call(
            &mut s.local,
            &Term::atom("rex"),
            &request,
            &mut PollWait,
            soon(),
        )
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Return(json::parse("[2, 1]").unwrap().into_owned())
    );
}

#[test]
fn gen_call_to_an_unknown_server_fails_at_once() {
    let mut s = session();
    // A long deadline: waiting for it would surface as Timeout, not noproc.
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = s
        .connection
        .gen_call(
            &mut s.local,
            &Term::atom("no_such_server"),
            &Term::atom("hi"),
            &mut PollWait,
            deadline,
        )
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Exception {
            class: Class::Exit,
            reason: Term::atom("noproc"),
            stack: None
        }
    );
}

#[test]
fn an_idle_check_drops_strays_and_notices_a_closed_peer() {
    let mut s = session();
    // A stray: a call that times out, whose answer arrives later.
    let args = vec![Term::Int(100)];
    let late = s.connection.call(
        &mut s.local,
        "timer",
        "sleep",
        args,
        &mut PollWait,
        Instant::now() + Duration::from_millis(10),
    );
    assert!(matches!(late, Err(Error::Timeout { .. })));
    std::thread::sleep(Duration::from_millis(300));
    s.connection.check_idle(&mut PollWait, soon()).unwrap();
    // The stray was consumed: nothing is left to receive.
    let nothing = s
        .connection
        .recv(&mut PollWait, Instant::now() + Duration::from_millis(100));
    assert!(matches!(nothing, Err(Error::Timeout { .. })), "{nothing:?}");
    assert_eq!(
        s.call(
            "lists",
            "sum",
            vec![json::parse("[1, 2]").unwrap().into_owned()]
        ),
        Term::Int(3)
    );

    s.node.kill();
    std::thread::sleep(Duration::from_millis(200));
    let err = s.connection.check_idle(&mut PollWait, soon()).unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
}

/// A waiter that reports an interruption, as a cancelled query does.
struct Cancelled;

impl erlang_cnode_node::Wait for Cancelled {
    fn wait(
        &mut self,
        _: std::os::fd::RawFd,
        _: erlang_cnode_node::Interest,
        _: Instant,
    ) -> std::result::Result<bool, erlang_cnode_node::Interrupted> {
        Err(erlang_cnode_node::Interrupted)
    }
}

#[test]
fn a_cancel_is_seen_even_while_messages_keep_arriving() {
    let mut s = session();
    // Fifty messages to us are queued before the call's own reply.
    let me = s.local.pid(s.connection.local_name());
    for _ in 0..50 {
        s.connection
            .cast(
                &mut s.local,
                "erlang",
                "send",
                vec![me.clone(), Term::atom("noise")],
                &mut PollWait,
                soon(),
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let err = s
        .connection
        .call(
            &mut s.local,
            "erlang",
            "node",
            vec![],
            &mut Cancelled,
            soon(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err:?}");
    // And a deadline that has passed is a timeout, not a wait for the queue to drain.
    let mut s = session();
    let err = s
        .connection
        .call(
            &mut s.local,
            "erlang",
            "node",
            vec![],
            &mut PollWait,
            Instant::now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn a_frame_cut_off_midway_breaks_only_that_connection() {
    let mut s = session();
    s.connection.set_max_message_size(1000);
    let big = vec![json::parse(r#""x""#).unwrap().into_owned(), Term::Int(5000)];
    let err = s
        .connection
        .call(&mut s.local, "binary", "copy", big, &mut PollWait, soon())
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(s.connection.is_broken());
    // Nothing more is read from a stream that is out of step.
    let err = s
        .connection
        .call(
            &mut s.local,
            "erlang",
            "node",
            vec![],
            &mut PollWait,
            soon(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
}

#[test]
fn output_of_a_cast_never_waits_for_us() {
    let mut s = session();
    let count = |s: &mut Session| match s.call(
        "erlang",
        "system_info",
        vec![Term::atom("process_count")],
    ) {
        Term::Int(n) => n,
        other => panic!("{other:?}"),
    };
    let before = count(&mut s);
    let args = || {
        vec![
            json::parse(r#""cast output~n""#).unwrap().into_owned(),
            Term::List(vec![]),
        ]
    };
    for _ in 0..5 {
        s.connection
            .cast(&mut s.local, "io", "format", args(), &mut PollWait, soon())
            .unwrap();
    }
    // Their output goes to the node's own standard output: the processes
    // finish while we sit idle, reading nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = count(&mut s);
        if now <= before {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            Instant::now() < deadline,
            "{now} processes, {before} before the casts: casts stuck on output"
        );
    }
}
