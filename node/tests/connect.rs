//! Against real `erl` nodes started by the test harness: connecting,
//! pinging, and each way a connection can fail.

use std::time::{Duration, Instant};

use erlang_cnode_node::{
    Connection, Error, Interest, Interrupted, LocalNode, NodeName, PollWait, Wait,
};
use erlang_cnode_test_harness::{short_host, ErlNode};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(15)
}

fn local() -> LocalNode {
    LocalNode::new("pgtest", &short_host()).unwrap()
}

fn open(node: &ErlNode, cookie: &str, local: &LocalNode) -> erlang_cnode_node::Result<Connection> {
    Connection::open(
        &NodeName::parse(&node.name).unwrap(),
        local,
        cookie,
        &mut PollWait,
        soon(),
    )
}

#[test]
fn connects_and_pings_a_live_node() {
    let node = ErlNode::start("target", &[]);
    let mut local = local();
    let mut connection = open(&node, &node.cookie, &local).unwrap();
    assert_eq!(connection.peer().name, node.name);
    assert!(connection.ping(&mut local, &mut PollWait, soon()).unwrap());
    // And again on the same connection.
    assert!(connection.ping(&mut local, &mut PollWait, soon()).unwrap());
}

#[test]
fn a_wrong_cookie_is_named_as_such_and_never_shown() {
    let node = ErlNode::start("target", &[]);
    let err = open(&node, "not-the-cookie", &local()).unwrap_err();
    assert!(
        matches!(&err, Error::WrongCookie { node: named } if *named == node.name),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("not-the-cookie") && !shown.contains(&node.cookie),
        "{shown}"
    );
}

#[test]
fn an_unregistered_node_is_reported_by_epmd() {
    // EPMD runs (a node starts it), but knows no such name.
    let _running = ErlNode::start("epmd_keeper", &[]);
    let name = NodeName::parse(&format!(
        "nosuchnode_{}@{}",
        std::process::id(),
        short_host()
    ))
    .unwrap();
    let err = Connection::open(&name, &local(), "c", &mut PollWait, soon()).unwrap_err();
    assert!(matches!(err, Error::NotRegistered { .. }), "{err:?}");
}

#[test]
fn an_unknown_host_is_reported_before_any_connection() {
    let name = NodeName::parse("a@no-such-host.invalid").unwrap();
    let err = Connection::open(&name, &local(), "c", &mut PollWait, soon()).unwrap_err();
    assert!(matches!(err, Error::UnknownHost { .. }), "{err:?}");
}

#[test]
fn a_node_that_dies_loses_the_connection() {
    let mut node = ErlNode::start("target", &[]);
    let mut local = local();
    let mut connection = open(&node, &node.cookie, &local).unwrap();
    node.kill();
    let err = connection
        .ping(&mut local, &mut PollWait, soon())
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
}

#[test]
fn waiting_past_the_deadline_times_out() {
    let node = ErlNode::start("target", &[]);
    let local = local();
    let mut connection = open(&node, &node.cookie, &local).unwrap();
    // Nothing was asked, so nothing comes back.
    let err = connection
        .recv(&mut PollWait, Instant::now() + Duration::from_millis(200))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                during: "waiting for",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A waiter that reports an interruption, as a cancelled query does.
struct Cancelled;

impl Wait for Cancelled {
    fn wait(
        &mut self,
        _: std::os::fd::RawFd,
        _: Interest,
        _: Instant,
    ) -> Result<bool, Interrupted> {
        Err(Interrupted)
    }
}

#[test]
fn an_interrupted_wait_stops_the_operation() {
    let node = ErlNode::start("target", &[]);
    let local = local();
    let mut connection = open(&node, &node.cookie, &local).unwrap();
    let err = connection.recv(&mut Cancelled, soon()).unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err:?}");
}

#[test]
fn an_automatic_name_matches_short_and_long_named_nodes() {
    let short = ErlNode::start("short_target", &[]);
    let long = ErlNode::start_long("long_target", &[]);
    let mut local = LocalNode::automatic("pgtest", &short_host()).unwrap();
    for node in [&short, &long] {
        let mut connection = open(node, &node.cookie, &local).unwrap();
        assert!(connection.ping(&mut local, &mut PollWait, soon()).unwrap());
        let host = connection
            .local_name()
            .split_once('@')
            .unwrap()
            .1
            .to_owned();
        let target = NodeName::parse(&node.name).unwrap();
        assert_eq!(host.contains('.'), target.is_long(), "{host} for {target}");
    }
}
