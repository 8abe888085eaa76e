//! The per-backend connection table against real `erl` nodes: statistics,
//! reconnecting after a restart, never re-sending a request that may have run.

use std::time::{Duration, Instant};

use erlang_cnode_codec::Term;
use erlang_cnode_node::{Error, LocalNode, NodeName, Nodes, Outcome, PollWait, Result, Target};
use erlang_cnode_test_harness::{short_host, ErlNode};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(15)
}

fn nodes() -> Nodes {
    Nodes::new(LocalNode::new("pgtest", &short_host()).unwrap())
}

fn name(node: &ErlNode) -> NodeName {
    NodeName::parse(&node.name).unwrap()
}

fn no_configured_cookie() -> Result<String> {
    panic!("the stored cookie should have been used")
}

#[test]
fn connections_are_listed_with_statistics_and_without_cookies() {
    let node = ErlNode::start("stats", &[]);
    let mut nodes = nodes();
    nodes
        .connect(&name(&node), &node.cookie, &mut PollWait, soon())
        .unwrap();
    let listed = nodes.connections();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].node.as_str(), listed[0].calls, listed[0].errors),
        (node.name.as_str(), 0, 0)
    );
    assert_eq!(listed[0].local_node, nodes.local_name());

    let ok = nodes
        .call(
            &Target {
                node: &name(&node),
                cookie: &no_configured_cookie,
            },
            "erlang",
            "node",
            vec![],
            &mut PollWait,
            soon(),
        )
        .unwrap();
    assert!(matches!(ok, Outcome::Return(_)));
    let raised = nodes.call(
        &Target {
            node: &name(&node),
            cookie: &no_configured_cookie,
        },
        "erlang",
        "error",
        vec![Term::atom("x")],
        &mut PollWait,
        soon(),
    );
    assert!(matches!(raised, Ok(Outcome::Exception { .. })));
    let listed = nodes.connections();
    assert_eq!((listed[0].calls, listed[0].errors), (2, 1));
    assert!(!format!("{nodes:?}").contains(&node.cookie));

    assert!(nodes.disconnect(&name(&node)));
    assert!(!nodes.disconnect(&name(&node)));
    assert!(nodes.connections().is_empty());
}

#[test]
fn the_first_request_connects_with_the_configured_cookie() {
    let node = ErlNode::start("lazy", &[]);
    let mut nodes = nodes();
    let cookie = node.cookie.clone();
    let configured = move || Ok(cookie.clone());
    let answer = nodes.call(
        &Target {
            node: &name(&node),
            cookie: &configured,
        },
        "lists",
        "sum",
        vec![Term::List(vec![Term::Int(2), Term::Int(3)])],
        &mut PollWait,
        soon(),
    );
    assert_eq!(answer.unwrap(), Outcome::Return(Term::Int(5)));
    assert_eq!(nodes.connections().len(), 1);
}

#[test]
fn a_restarted_node_is_reconnected_before_the_next_request() {
    let mut node = ErlNode::start("restart", &[]);
    let mut nodes = nodes();
    nodes
        .connect(&name(&node), &node.cookie, &mut PollWait, soon())
        .unwrap();
    let before = nodes.connections()[0].connected_since;
    node.restart();
    std::thread::sleep(Duration::from_millis(100));
    let answer = nodes
        .call(
            &Target {
                node: &name(&node),
                cookie: &no_configured_cookie,
            },
            "erlang",
            "node",
            vec![],
            &mut PollWait,
            soon(),
        )
        .unwrap();
    assert_eq!(answer, Outcome::Return(Term::atom(node.name.clone())));
    assert!(nodes.connections()[0].connected_since > before);
}

#[test]
fn a_request_cut_off_midway_is_reported_and_not_resent() {
    let node = ErlNode::start("midway", &[]);
    let node_name = name(&node);
    let mut nodes = nodes();
    nodes
        .connect(&node_name, &node.cookie, &mut PollWait, soon())
        .unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(node);
    });
    let err = nodes
        .call(
            &Target {
                node: &node_name,
                cookie: &no_configured_cookie,
            },
            "timer",
            "sleep",
            vec![Term::Int(10_000)],
            &mut PollWait,
            soon(),
        )
        .unwrap_err();
    killer.join().unwrap();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    // Dropped, not silently reconnected and re-sent.
    assert!(nodes.connections().is_empty());
}

#[test]
fn ping_answers_false_for_an_unknown_node() {
    let _epmd = ErlNode::start("keeper", &[]);
    let mut nodes = nodes();
    let missing =
        NodeName::parse(&format!("missing_{}@{}", std::process::id(), short_host())).unwrap();
    assert!(!nodes
        .ping(
            &Target {
                node: &missing,
                cookie: &|| Ok("c".into())
            },
            &mut PollWait,
            soon()
        )
        .unwrap());
}

#[test]
fn a_connection_left_mid_frame_is_replaced_not_reused() {
    let node = ErlNode::start("midframe", &[]);
    let mut nodes = nodes();
    nodes.set_max_message_size(1000);
    nodes
        .connect(&name(&node), &node.cookie, &mut PollWait, soon())
        .unwrap();
    let target = Target {
        node: &name(&node),
        cookie: &no_configured_cookie,
    };
    let big = vec![Term::binary(b"x".to_vec()), Term::Int(5000)];
    let err = nodes
        .call(&target, "binary", "copy", big, &mut PollWait, soon())
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(nodes.connections().is_empty());
    // The next request connects afresh (with the configured cookie) and works.
    let cookie = node.cookie.clone();
    let configured = move || Ok(cookie.clone());
    let target = Target {
        node: &name(&node),
        cookie: &configured,
    };
    let answer = nodes
        .call(&target, "erlang", "node", vec![], &mut PollWait, soon())
        .unwrap();
    assert_eq!(answer, Outcome::Return(Term::atom(node.name.clone())));
}

#[test]
fn a_timeout_keeps_the_connection_and_drops_the_late_reply() {
    let node = ErlNode::start("late", &[]);
    let node_name = name(&node);
    let target = Target {
        node: &node_name,
        cookie: &no_configured_cookie,
    };
    let mut nodes = nodes();
    nodes
        .connect(&node_name, &node.cookie, &mut PollWait, soon())
        .unwrap();
    let since = nodes.connections()[0].connected_since;
    let err = nodes
        .call(
            &target,
            "timer",
            "sleep",
            vec![Term::Int(300)],
            &mut PollWait,
            Instant::now() + Duration::from_millis(50),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    std::thread::sleep(Duration::from_millis(400));
    // Same connection; the late `ok` of timer:sleep is not this answer.
    let answer = nodes
        .call(&target, "erlang", "node", vec![], &mut PollWait, soon())
        .unwrap();
    assert_eq!(answer, Outcome::Return(Term::atom(node.name.clone())));
    let listed = &nodes.connections()[0];
    assert_eq!(listed.connected_since, since);
    assert_eq!((listed.calls, listed.errors), (2, 1));
}

#[test]
fn a_lost_connection_is_remade_with_the_cookie_it_was_made_with() {
    let mut node = ErlNode::start("remember", &[]);
    let node_name = name(&node);
    let mut nodes = nodes();
    nodes
        .connect(&node_name, &node.cookie, &mut PollWait, soon())
        .unwrap();
    let target = Target {
        node: &node_name,
        cookie: &no_configured_cookie,
    };
    // A request fails with the connection: it is dropped from the table...
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        node.restart();
        node
    });
    let err = nodes
        .call(
            &target,
            "timer",
            "sleep",
            vec![Term::Int(10_000)],
            &mut PollWait,
            soon(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    assert!(nodes.connections().is_empty());
    let node = restarter.join().unwrap();
    // ...and the next one reconnects with the cookie erlang_connect gave,
    // not the configured one.
    let answer = nodes
        .call(&target, "erlang", "node", vec![], &mut PollWait, soon())
        .unwrap();
    assert_eq!(answer, Outcome::Return(Term::atom(node.name.clone())));
    // Disconnecting forgets the cookie.
    assert!(nodes.disconnect(&node_name));
    let forgot = nodes.call(
        &Target {
            node: &node_name,
            cookie: &|| {
                Err(Error::WrongCookie {
                    node: "asked".into(),
                })
            },
        },
        "erlang",
        "node",
        vec![],
        &mut PollWait,
        soon(),
    );
    assert!(matches!(forgot, Err(Error::WrongCookie { node }) if node == "asked"));
}

#[test]
fn a_remembered_cookie_the_node_rejects_is_forgotten() {
    let mut node = ErlNode::start("newcookie", &[]);
    let mut nodes = nodes();
    nodes
        .connect(&name(&node), &node.cookie, &mut PollWait, soon())
        .unwrap();
    // Redeployed with another cookie, which the configuration now gives.
    node.restart_with_cookie("the_new_cookie");
    let configured = || Ok("the_new_cookie".to_owned());
    let target = Target {
        node: &name(&node),
        cookie: &configured,
    };
    let call =
        |nodes: &mut Nodes| nodes.call(&target, "erlang", "node", vec![], &mut PollWait, soon());
    // The remembered cookie fails once, and is not tried again.
    assert!(matches!(call(&mut nodes), Err(Error::WrongCookie { .. })));
    assert!(matches!(call(&mut nodes), Ok(Outcome::Return(_))));
}
