//! Remote calls against a real `erl` node: results, each exception class,
//! output, timeouts and stray late replies.

use std::time::{Duration, Instant};

use erlang_cnode_codec::{json, Term};
use erlang_cnode_node::{Class, Connection, Error, LocalNode, NodeName, Outcome, PollWait};
use erlang_cnode_test_harness::{short_host, ErlNode};

struct Session {
    _node: ErlNode,
    local: LocalNode,
    connection: Connection,
}

fn session() -> Session {
    let node = ErlNode::start("calls", &[]);
    let local = LocalNode::new("pgtest", &short_host()).unwrap();
    let name = NodeName::parse(&node.name).unwrap();
    let connection = Connection::open(&name, &local, &node.cookie, &mut PollWait, soon()).unwrap();
    Session {
        _node: node,
        local,
        connection,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(15)
}

impl Session {
    fn call_within(
        &mut self,
        m: &str,
        f: &str,
        args: &str,
        within: Duration,
    ) -> erlang_cnode_node::Result<Outcome> {
        let Term::List(args) = json::parse(args).unwrap().into_owned() else {
            panic!("args must be a JSON array")
        };
        self.connection.call(
            &mut self.local,
            m,
            f,
            args,
            &mut PollWait,
            Instant::now() + within,
        )
    }

    fn call(&mut self, m: &str, f: &str, args: &str) -> Outcome {
        self.call_within(m, f, args, Duration::from_secs(15))
            .unwrap()
    }
}

fn returned(outcome: Outcome) -> String {
    match outcome {
        Outcome::Return(value) => json::to_string(&value).unwrap(),
        other => panic!("expected a return, got {other:?}"),
    }
}

#[test]
fn calls_return_values() {
    let mut s = session();
    assert_eq!(
        returned(s.call("lists", "reverse", "[[1, 2, 3]]")),
        "[3,2,1]"
    );
    assert_eq!(
        returned(s.call("erlang", "list_to_binary", "[[104, 105]]")),
        r#""hi""#
    );
    assert_eq!(
        returned(s.call("erlang", "node", "[]")),
        json::to_string(&Term::atom(s._node.name.clone())).unwrap()
    );
    // A term that needs tags both ways comes back identical.
    let tuple = r#"{"$tuple":[{"$atom":"ok"},1.5,[1,{"$tail":2}],{"$map":[[{"$atom":"k"},"v"]]}]}"#;
    assert_eq!(
        returned(s.call("erlang", "hd", &format!("[[{tuple}]]"))),
        tuple
    );
}

#[test]
fn each_exception_class_comes_back_as_such() {
    let mut s = session();
    match s.call("nosuchmodule", "f", "[]") {
        Outcome::Exception {
            class: Class::Error,
            reason,
            stack: Some(stack),
        } => {
            assert_eq!(reason, Term::atom("undef"));
            assert!(json::to_string(&stack).unwrap().contains("nosuchmodule"));
        }
        other => panic!("{other:?}"),
    }
    match s.call("erlang", "atom_to_list", "[1]") {
        Outcome::Exception {
            class: Class::Error,
            reason,
            ..
        } => assert_eq!(reason, Term::atom("badarg")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.call("erlang", "throw", r#"[{"$atom": "oops"}]"#),
        Outcome::Exception {
            class: Class::Throw,
            reason: Term::atom("oops"),
            stack: None
        }
    );
    assert_eq!(
        s.call("erlang", "exit", r#"[{"$atom": "bye"}]"#),
        Outcome::Exception {
            class: Class::Exit,
            reason: Term::atom("bye"),
            stack: None
        }
    );
}

#[test]
fn functions_that_print_do_not_hang() {
    let mut s = session();
    assert_eq!(
        returned(s.call("io", "format", r#"["hello ~p~n", [42]]"#)),
        r#"{"$atom":"ok"}"#
    );
}

#[test]
fn a_timed_out_call_leaves_no_stray_reply_for_the_next() {
    let mut s = session();
    let err = s
        .call_within("timer", "sleep", "[400]", Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    // The sleeper's result arrives while this call waits; it must be dropped.
    assert_eq!(
        returned(s.call("timer", "sleep", "[600]")),
        r#"{"$atom":"ok"}"#
    );
    assert_eq!(returned(s.call("lists", "sum", "[[1, 2]]")), "3");
}

#[test]
fn a_killed_process_reports_the_signal() {
    let mut s = session();
    // erl_eval:expr of the abstract form of `exit(self(), kill)`.
    let atom = |a: &str| format!(r#"{{"$tuple":[{{"$atom":"atom"}},1,{{"$atom":"{a}"}}]}}"#);
    let call = |f: &str, args: &str| {
        format!(
            r#"{{"$tuple":[{{"$atom":"call"}},1,{},[{args}]]}}"#,
            atom(f)
        )
    };
    let expr = call("exit", &format!("{},{}", call("self", ""), atom("kill")));
    match s.call("erl_eval", "expr", &format!("[{expr}, []]")) {
        Outcome::Exception {
            class: Class::Exit,
            reason,
            stack: None,
        } => {
            assert_eq!(
                reason,
                Term::Tuple(vec![Term::atom("signal"), Term::atom("killed")])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_call_given_up_on_has_its_process_killed() {
    let mut s = session();
    let count = |s: &mut Session| match s.call_within(
        "erlang",
        "system_info",
        r#"[{"$atom": "process_count"}]"#,
        Duration::from_secs(10),
    ) {
        Ok(Outcome::Return(Term::Int(n))) => n,
        other => panic!("{other:?}"),
    };
    let before = count(&mut s);
    let late = s.call_within("timer", "sleep", "[60000]", Duration::from_millis(200));
    assert!(matches!(late, Err(Error::Timeout { .. })), "{late:?}");
    // The sleeping process is gone (not left to run for a minute).
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&mut s) > before {
        assert!(
            Instant::now() < deadline,
            "the timed-out call's process still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
