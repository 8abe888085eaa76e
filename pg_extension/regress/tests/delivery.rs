//! Delivery at commit against a cluster with the library preloaded (its
//! launcher and a worker for `postgres` running) and real `erl` receivers
//! (`regress_server:receiver/2` acknowledges like `ErlangCnode.Inbox`).
//! What a message became is polled from `erlang_outbox`, up to a deadline
//! that fails loudly; nothing here measures time.

use std::time::{Duration, Instant};

use erlang_cnode_regress::beam_dir;
use erlang_cnode_test_harness::{ErlNode, PgCluster};

/// `erl` arguments for a node with `regress_server` and receivers
/// `orders` (acknowledging) and `mute` (never acknowledging).
fn receiver_args() -> Vec<String> {
    vec![
        "-pa".into(),
        beam_dir().to_str().unwrap().into(),
        "-eval".into(),
        "ok = regress_server:start(), ok = regress_server:receiver(<<\"orders\">>, true), \
         ok = regress_server:receiver(<<\"mute\">>, false)"
            .into(),
    ]
}

fn receiver() -> ErlNode {
    let args = receiver_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ErlNode::start("receiver", &args)
}

const SETTINGS: &str = "shared_preload_libraries = 'erlang_cnode'
erlang_cnode.retry_delay = 100
erlang_cnode.retry_max_delay = 400
erlang_cnode.delivery_timeout = 1000
erlang_cnode.max_attempts = 1000
max_prepared_transactions = 4";

/// A cluster of its own with the library preloaded, the extension in
/// `postgres`, and its worker running.
fn preloaded() -> PgCluster {
    let cluster = PgCluster::start();
    cluster.configure(SETTINGS);
    cluster.restart(false);
    sql(&cluster, "postgres", "CREATE EXTENSION erlang_cnode;");
    wait_for(&cluster, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'erlang_cnode worker' AND datname = 'postgres'", "1");
    cluster
}

/// Runs `script` in `db`, failing on any error; its output (unaligned,
/// tuples only).
fn sql(cluster: &PgCluster, db: &str, script: &str) -> String {
    let out = cluster.psql(
        db,
        &format!("\\pset format unaligned\n\\pset tuples_only on\n{script}"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{script}\n{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `script` in `db`, which must fail: its error output.
fn sql_error(cluster: &PgCluster, db: &str, script: &str) -> String {
    let out = cluster.psql(db, &format!("\\set VERBOSITY verbose\n{script}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("ERROR"), "{script} did not fail");
    stderr
}

/// Polls `query` until it gives `expected` (for 30 s at most).
fn wait_for(cluster: &PgCluster, db: &str, query: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = sql(cluster, db, query);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query} still gives {got:?}, not {expected:?}, after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server `name` for `node`, with its cookie for everyone.
fn server(cluster: &PgCluster, name: &str, node: &ErlNode) {
    sql(
        cluster,
        "postgres",
        &format!(
            "CREATE SERVER {name} FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node '{}');\n\
             CREATE USER MAPPING FOR PUBLIC SERVER {name} OPTIONS (cookie '{}');",
            node.name, node.cookie
        ),
    );
}

/// What receiver `name` on `server` got, as `regress_server:received/1`
/// gives it (JSON text).
fn received(cluster: &PgCluster, server: &str, name: &str) -> String {
    sql(
        cluster,
        "postgres",
        &format!(
            "SELECT erlang_call('{server}', 'regress_server', 'received', \
             jsonb_build_array(jsonb_build_object('$binary', translate(encode('{name}', 'base64'), E'\\n', ''))))"
        ),
    )
}

/// The messages a receiver got, in order: the `n` of each `{"n": N}`
/// delivered, or `bare:N` for a bare one.
fn received_numbers(cluster: &PgCluster, server: &str, name: &str) -> Vec<String> {
    let json = received(cluster, server, name);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| {
            let pairs = entry["$map"].as_array().expect("a map");
            let get = |key: &str| {
                pairs
                    .iter()
                    .find(|p| p[0]["$atom"] == key)
                    .map(|p| p[1].clone())
            };
            match (get("message"), get("bare")) {
                (Some(message), _) => message["n"].to_string(),
                (None, Some(bare)) => format!("bare:{}", bare["n"]),
                _ => panic!("unexpected entry {entry}"),
            }
        })
        .collect()
}

/// Waits until nothing for `server` is pending; none may be dead.
fn settle(cluster: &PgCluster, server: &str) {
    let pending = format!(
        "SELECT count(*) FROM erlang_outbox WHERE node = '{server}' AND state <> 'delivered'"
    );
    wait_for(cluster, "postgres", &pending, "0");
}

#[test]
fn only_what_commits_is_delivered_once_in_order() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "commits", &node);
    let send =
        |n: i32| format!("SELECT erlang_send_on_commit('commits', 'orders', '{{\"n\": {n}}}');");
    sql(
        &cluster,
        "postgres",
        &format!(
            "{one}\n\
             BEGIN; {two} ROLLBACK;\n\
             BEGIN; {three} SAVEPOINT s; {four} ROLLBACK TO s; {five} COMMIT;\n\
             BEGIN; {six} PREPARE TRANSACTION 'delivery_commit';\n\
             BEGIN; {seven} PREPARE TRANSACTION 'delivery_rollback';\n\
             ROLLBACK PREPARED 'delivery_rollback';\n\
             COMMIT PREPARED 'delivery_commit';\n\
             SELECT erlang_send_on_commit('commits', 'orders', '{{\"n\": 8}}', ack => false);\n",
            one = send(1),
            two = send(2),
            three = send(3),
            four = send(4),
            five = send(5),
            six = send(6),
            seven = send(7),
        ),
    );
    // An aborted transaction delivers nothing either.
    sql_error(
        &cluster,
        "postgres",
        &format!("BEGIN; {} SELECT 1/0; COMMIT;", send(9)),
    );
    settle(&cluster, "commits");
    assert_eq!(
        received_numbers(&cluster, "commits", "orders"),
        ["1", "3", "5", "6", "bare:8"]
    );
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT state, count(*) FROM erlang_outbox WHERE node = 'commits' GROUP BY 1"
        ),
        "delivered|5"
    );
}

#[test]
fn messages_are_delivered_in_commit_order_after_the_node_comes_back() {
    let cluster = preloaded();
    let mut node = receiver();
    server(&cluster, "ordered", &node);
    node.kill();
    // A transaction that queues 1 first but commits last: it waits for an
    // advisory lock that a prepared transaction holds.
    sql(
        &cluster,
        "postgres",
        "BEGIN; SELECT pg_advisory_xact_lock(4242); PREPARE TRANSACTION 'delivery_lock';",
    );
    let slow = std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            sql(
                &cluster,
                "postgres",
                "BEGIN; SELECT erlang_send_on_commit('ordered', 'orders', '{\"n\": 1}');\n\
                 SELECT pg_advisory_xact_lock(4242); COMMIT;",
            )
        });
        wait_for(
            &cluster,
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            "1",
        );
        sql(
            &cluster,
            "postgres",
            "SELECT erlang_send_on_commit('ordered', 'orders', '{\"n\": 2}');\n\
             BEGIN; SELECT erlang_send_on_commit('ordered', 'orders', '{\"n\": 3}');\n\
                    SELECT erlang_send_on_commit('ordered', 'orders', '{\"n\": 4}'); COMMIT;\n\
             COMMIT PREPARED 'delivery_lock';",
        );
        slow.join().expect("the slow transaction")
    });
    assert!(!slow.is_empty());
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('ordered', 'orders', '{\"n\": 5}');",
    );
    // The node is down: attempts fail and are retried with back-off.
    wait_for(
        &cluster,
        "postgres",
        "SELECT bool_or(attempts > 0 AND last_error LIKE '%EPMD%') FROM erlang_outbox WHERE node = 'ordered'",
        "t",
    );
    let args = receiver_args();
    node.restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    settle(&cluster, "ordered");
    assert_eq!(
        received_numbers(&cluster, "ordered", "orders"),
        ["2", "3", "4", "1", "5"]
    );
}

#[test]
fn a_message_nobody_acknowledges_dies_and_can_be_retried() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "mute", &node);
    sql(
        &cluster,
        "postgres",
        "ALTER SYSTEM SET erlang_cnode.max_attempts = 3; SELECT pg_reload_conf();",
    );
    wait_for(&cluster, "postgres", "SHOW erlang_cnode.max_attempts", "3");
    let id = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('mute', 'mute', '{\"n\": 1}');",
    );
    wait_for(
        &cluster,
        "postgres",
        &format!("SELECT state, attempts FROM erlang_outbox WHERE id = {id}"),
        "dead|3",
    );
    let error = sql(
        &cluster,
        "postgres",
        &format!("SELECT last_error FROM erlang_outbox WHERE id = {id}"),
    );
    assert!(error.contains("no acknowledgement"), "{error}");
    // The receiver got it each time, unacknowledged.
    assert_eq!(received_numbers(&cluster, "mute", "mute"), ["1", "1", "1"]);
    // A dead message gives its key up, and can be retried.
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            &format!("SELECT erlang_outbox_retry({id}), erlang_outbox_retry(-1)")
        ),
        "t|f"
    );
    wait_for(
        &cluster,
        "postgres",
        &format!("SELECT state FROM erlang_outbox WHERE id = {id}"),
        "dead",
    );
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT erlang_outbox_purge('0 seconds')"
        ),
        "1"
    );
}

#[test]
fn a_cast_is_retried_until_it_returns() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "casts", &node);
    let flag = std::env::temp_dir().join(format!("erlang_cnode_cast_{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let id = sql(
        &cluster,
        "postgres",
        &format!(
            "SELECT erlang_cast_on_commit('casts', 'regress_server', 'fail_unless', \
             jsonb_build_array(jsonb_build_object('$binary', translate(encode('{}', 'base64'), E'\\n', '')), 1));",
            flag.display()
        ),
    );
    wait_for(
        &cluster,
        "postgres",
        &format!("SELECT attempts > 0 AND last_error LIKE '%not_yet%' FROM erlang_outbox WHERE id = {id}"),
        "t",
    );
    std::fs::write(&flag, b"").unwrap();
    sql(
        &cluster,
        "postgres",
        &format!("SELECT erlang_outbox_retry({id})"),
    );
    wait_for(
        &cluster,
        "postgres",
        &format!("SELECT state FROM erlang_outbox WHERE id = {id}"),
        "delivered",
    );
    let _ = std::fs::remove_file(&flag);
}

#[test]
fn a_key_is_enqueued_once_until_its_retention_ends() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "keys", &node);
    let ids = sql(
        &cluster,
        "postgres",
        "BEGIN;\n\
         SELECT erlang_send_on_commit('keys', 'orders', '{\"n\": 1}', key => 'order-1');\n\
         SELECT erlang_send_on_commit('keys', 'orders', '{\"n\": 2}', key => 'order-1');\n\
         COMMIT;",
    );
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids[0], ids[1]);
    settle(&cluster, "keys");
    // Delivered, within erlang_cnode.key_retention: the same id again.
    let again = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('keys', 'orders', '{\"n\": 3}', key => 'order-1');",
    );
    assert_eq!(again, ids[0]);
    // Past it: a new message.
    sql(
        &cluster,
        "postgres",
        "ALTER SYSTEM SET erlang_cnode.key_retention = 0; SELECT pg_reload_conf();",
    );
    wait_for(&cluster, "postgres", "SHOW erlang_cnode.key_retention", "0");
    let fresh = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('keys', 'orders', '{\"n\": 4}', key => 'order-1');",
    );
    assert_ne!(fresh, ids[0]);
    settle(&cluster, "keys");
    assert_eq!(received_numbers(&cluster, "keys", "orders"), ["1", "4"]);
    // Delivered messages past their retention are removed.
    wait_for(
        &cluster,
        "postgres",
        "SELECT count(*) FROM erlang_outbox WHERE node = 'keys'",
        "0",
    );
}

#[test]
fn the_worker_shows_restarts_and_says_what_is_missing() {
    let cluster = preloaded();
    let worker = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'erlang_cnode worker' AND datname = 'postgres'";
    let first = sql(&cluster, "postgres", worker);
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'erlang_cnode launcher'"
        ),
        "1"
    );
    sql(
        &cluster,
        "postgres",
        &format!("SELECT pg_terminate_backend({first})"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = sql(&cluster, "postgres", worker);
        if !now.is_empty() && now != first {
            break;
        }
        assert!(Instant::now() < deadline, "no new worker after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A database without a worker: an error that says how to get one.
    cluster.create_db("unlisted");
    sql(&cluster, "unlisted", "CREATE EXTENSION erlang_cnode;");
    let error = sql_error(
        &cluster,
        "unlisted",
        "SELECT erlang_send_on_commit('x@y', 'orders', '1');",
    );
    assert!(error.contains("55000"), "{error}");
    assert!(error.contains("erlang_cnode.databases"), "{error}");
    // Listed and reloaded: it gets one.
    sql(
        &cluster,
        "postgres",
        "ALTER SYSTEM SET erlang_cnode.databases = 'postgres, unlisted'; SELECT pg_reload_conf();",
    );
    wait_for(
        &cluster,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'erlang_cnode worker' AND datname = 'unlisted'",
        "1",
    );
    // A restarted launcher starts no second worker for a database that
    // has one (a second one would give way, over and over).
    let launcher = sql(
        &cluster,
        "postgres",
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'erlang_cnode launcher'",
    );
    sql(
        &cluster,
        "postgres",
        &format!("SELECT pg_terminate_backend({launcher})"),
    );
    wait_for(
        &cluster,
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'erlang_cnode launcher' \
             AND pid <> {launcher}"
        ),
        "1",
    );
    std::thread::sleep(Duration::from_secs(2));
    let gave_way = cluster.log().matches("another worker serves").count();
    assert!(gave_way <= 2, "{gave_way} workers gave way");
    // Taken off the list, a database's worker stops.
    sql(
        &cluster,
        "postgres",
        "ALTER SYSTEM SET erlang_cnode.databases = 'postgres'; SELECT pg_reload_conf();",
    );
    wait_for(
        &cluster,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'erlang_cnode worker' AND datname = 'unlisted'",
        "0",
    );
    // Every setting of the worker is read again on a reload.
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT string_agg(DISTINCT context, ',') FROM pg_settings WHERE name IN \
             ('erlang_cnode.databases', 'erlang_cnode.key_retention', 'erlang_cnode.max_attempts', \
              'erlang_cnode.retry_delay', 'erlang_cnode.retry_max_delay', 'erlang_cnode.delivery_timeout')"
        ),
        "sighup"
    );
}

#[test]
fn pending_messages_survive_a_crash_of_postgres() {
    let cluster = preloaded();
    let mut node = receiver();
    server(&cluster, "durable", &node);
    node.kill();
    sql(
        &cluster,
        "postgres",
        "SELECT count(erlang_send_on_commit('durable', 'orders', jsonb_build_object('n', g))) \
         FROM generate_series(1, 200) g;",
    );
    cluster.restart(true);
    let args = receiver_args();
    node.restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    settle(&cluster, "durable");
    let expected: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    assert_eq!(received_numbers(&cluster, "durable", "orders"), expected);
}

#[test]
fn roles_see_their_own_messages_and_no_payload() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "mine", &node);
    sql(
        &cluster,
        "postgres",
        "CREATE ROLE outbox_a; CREATE ROLE outbox_b;\n\
         GRANT USAGE ON FOREIGN SERVER mine TO outbox_a, outbox_b;\n\
         ALTER SERVER mine OPTIONS (ADD allow 'send:orders');\n\
         SET ROLE outbox_a; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 1}'); RESET ROLE;\n\
         SET ROLE outbox_b; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 2}'); RESET ROLE;",
    );
    let refused = sql_error(
        &cluster,
        "postgres",
        "SET ROLE outbox_a; SELECT erlang_send_on_commit('mine', 'audit', '1');",
    );
    assert!(refused.contains("42501"), "{refused}");
    let refused = sql_error(
        &cluster,
        "postgres",
        "SET ROLE outbox_a; SELECT * FROM erlang_outbox_queue;",
    );
    assert!(refused.contains("42501"), "{refused}");
    settle(&cluster, "mine");
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SET ROLE outbox_a; SELECT count(*) FROM erlang_outbox;"
        ),
        "1"
    );
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT count(*) FROM erlang_outbox WHERE node = 'mine';"
        ),
        "2"
    );
    // Keys belong to their role: the same key is two messages.
    let ids = sql(
        &cluster,
        "postgres",
        "SET ROLE outbox_a; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 3}', key => 'k'); RESET ROLE;\n\
         SET ROLE outbox_b; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 4}', key => 'k'); RESET ROLE;",
    );
    let ids: Vec<&str> = ids.lines().collect();
    assert_ne!(ids[0], ids[1]);
    settle(&cluster, "mine");
    // A role whose own mapping has a wrong cookie fails alone: the other
    // role's messages to the same node are delivered, with no error.
    sql(
        &cluster,
        "postgres",
        "CREATE USER MAPPING FOR outbox_b SERVER mine OPTIONS (cookie 'wrong');\n\
         SET ROLE outbox_b; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 5}'); RESET ROLE;\n\
         SET ROLE outbox_a; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 6}'); RESET ROLE;\n\
         SET ROLE outbox_b; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 7}'); RESET ROLE;\n\
         SET ROLE outbox_a; SELECT erlang_send_on_commit('mine', 'orders', '{\"n\": 8}'); RESET ROLE;",
    );
    wait_for(
        &cluster,
        "postgres",
        "SET ROLE outbox_a; SELECT count(*) FROM erlang_outbox WHERE state = 'delivered' AND last_error IS NULL",
        "4",
    );
    wait_for(
        &cluster,
        "postgres",
        "SET ROLE outbox_b; SELECT bool_and(state = 'pending' AND last_error LIKE '%cookie%') \
         FROM erlang_outbox WHERE key IS NULL AND state <> 'delivered'",
        "t",
    );
    assert_eq!(
        received_numbers(&cluster, "mine", "orders"),
        ["1", "2", "3", "4", "6", "8"]
    );
}

#[test]
fn nothing_of_the_callers_runs_as_the_queues_owner() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "paths", &node);
    // Objects that would stand in for the catalog's on a search path that
    // names the role's schema first: each raises if it ever runs.
    sql(
        &cluster,
        "postgres",
        "CREATE ROLE outbox_mallory;\n\
         GRANT USAGE ON FOREIGN SERVER paths TO outbox_mallory;\n\
         ALTER SERVER paths OPTIONS (ADD allow 'send:orders, erlang:abs/1');\n\
         CREATE SCHEMA evil AUTHORIZATION outbox_mallory;\n\
         SET ROLE outbox_mallory;\n\
         CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;\n\
         CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);\n\
         CREATE FUNCTION evil.int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;\n\
         CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8eq);\n\
         CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;\n\
         CREATE FUNCTION evil.jsonb_build_object(text, text, text, text, text, jsonb) \
             RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;\n\
         RESET ROLE;",
    );
    sql(
        &cluster,
        "postgres",
        "SET ROLE outbox_mallory; SET search_path = evil, pg_catalog, public;\n\
         SELECT public.erlang_send_on_commit('paths', 'orders', '{\"n\": 1}', key => 'k');\n\
         SELECT public.erlang_send_on_commit('paths', 'orders', '{\"n\": 2}', key => 'k');\n\
         SELECT public.erlang_cast_on_commit('paths', 'erlang', 'abs', '[-1]');\n\
         SELECT public.erlang_outbox_retry(1), public.erlang_outbox_purge('1 day');",
    );
    settle(&cluster, "paths");
    assert_eq!(received_numbers(&cluster, "paths", "orders"), ["1"]);
}

#[test]
fn a_transaction_that_finds_a_key_taken_holds_nothing_up() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "held", &node);
    let first = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('held', 'orders', '{\"n\": 1}', key => 'k');",
    );
    // A transaction that asks for the same key stays open (prepared).
    let again = sql(
        &cluster,
        "postgres",
        "BEGIN; SELECT erlang_send_on_commit('held', 'orders', '{\"n\": 2}', key => 'k');\n\
         PREPARE TRANSACTION 'delivery_held';",
    );
    assert_eq!(again.lines().next(), Some(first.as_str()));
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('held', 'orders', '{\"n\": 3}');",
    );
    settle(&cluster, "held");
    sql(&cluster, "postgres", "ROLLBACK PREPARED 'delivery_held';");
    assert_eq!(received_numbers(&cluster, "held", "orders"), ["1", "3"]);
}

#[test]
fn messages_go_to_pids_and_global_names() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "targets", &node);
    let pid = sql(
        &cluster,
        "postgres",
        "SELECT erlang_call('targets', 'erlang', 'whereis', '[{\"$atom\": \"orders\"}]');",
    );
    sql(
        &cluster,
        "postgres",
        &format!(
            "SELECT erlang_call('targets', 'global', 'register_name', \
             jsonb_build_array('{{\"$atom\": \"orders_everywhere\"}}'::jsonb, '{pid}'::jsonb));"
        ),
    );
    sql(
        &cluster,
        "postgres",
        &format!(
            "SELECT erlang_send_on_commit('targets', '{pid}'::jsonb, '{{\"n\": 1}}');\n\
             SELECT erlang_send_on_commit('targets', \
                '{{\"$tuple\": [{{\"$atom\": \"global\"}}, {{\"$atom\": \"orders_everywhere\"}}]}}'::jsonb, \
                '{{\"n\": 2}}');\n\
             SELECT erlang_send_on_commit('targets', \
                '{{\"$tuple\": [{{\"$atom\": \"via\"}}, {{\"$atom\": \"global\"}}, {{\"$atom\": \"orders_everywhere\"}}]}}'::jsonb, \
                '{{\"n\": 3}}', ack => false);"
        ),
    );
    settle(&cluster, "targets");
    assert_eq!(
        received_numbers(&cluster, "targets", "orders"),
        ["1", "2", "bare:3"]
    );
    // A global name nobody holds: retried, with why.
    let id = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('targets', \
            '{\"$tuple\": [{\"$atom\": \"global\"}, {\"$atom\": \"nobody_here\"}]}'::jsonb, '1');",
    );
    wait_for(
        &cluster,
        "postgres",
        &format!(
            "SELECT attempts > 0 AND last_error LIKE 'no process is registered as nobody_here%' \
             FROM erlang_outbox WHERE id = {id}"
        ),
        "t",
    );
    // A pid of another node is refused when queued.
    let refused = sql_error(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('targets', \
            '{\"$pid\": {\"node\": \"elsewhere@host\", \"id\": 1, \"serial\": 0, \"creation\": 1}}'::jsonb, '1');",
    );
    assert!(refused.contains("22023"), "{refused}");
}

/// A name nobody holds yet (a receiver still starting): the first message
/// fails and is retried, the ones after it are not tried before it; once
/// the name is held, all arrive in order.
#[test]
fn messages_wait_in_order_for_a_name_nobody_holds_yet() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "later", &node);
    sql(
        &cluster,
        "postgres",
        "SELECT count(erlang_send_on_commit('later', 'not_yet', jsonb_build_object('n', g))) \
         FROM generate_series(1, 5) g;",
    );
    wait_for(
        &cluster,
        "postgres",
        "SELECT bool_or(attempts > 0 AND last_error LIKE 'no process is registered as not_yet on node %') \
         FROM erlang_outbox WHERE node = 'later'",
        "t",
    );
    // Only the first was tried; nothing went anywhere.
    assert_eq!(
        sql(
            &cluster,
            "postgres",
            "SELECT string_agg(format('%s:%s', state, attempts > 0), ',' ORDER BY id) \
             FROM erlang_outbox WHERE node = 'later'"
        ),
        "pending:t,pending:f,pending:f,pending:f,pending:f"
    );
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_call('later', 'regress_server', 'receiver', \
         '[{\"$binary\": \"bm90X3lldA==\"}, true]');",
    );
    settle(&cluster, "later");
    assert_eq!(
        received_numbers(&cluster, "later", "not_yet"),
        ["1", "2", "3", "4", "5"]
    );
}

/// A bare message to a name nobody holds is not held back or retried (it
/// counts as delivered before it goes): it is lost, and the ones after it
/// go out as usual once the name is held.
#[test]
fn bare_messages_to_a_name_nobody_holds_are_not_held_back() {
    let cluster = preloaded();
    let node = receiver();
    server(&cluster, "bare_later", &node);
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('bare_later', 'not_yet_bare', '{\"n\": 1}', ack => false);",
    );
    settle(&cluster, "bare_later");
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_call('bare_later', 'regress_server', 'receiver', \
         '[{\"$binary\": \"bm90X3lldF9iYXJl\"}, true]');",
    );
    sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('bare_later', 'not_yet_bare', '{\"n\": 2}', ack => false);",
    );
    settle(&cluster, "bare_later");
    let deadline = Instant::now() + Duration::from_secs(30);
    while received_numbers(&cluster, "bare_later", "not_yet_bare").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the second bare message never came"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        received_numbers(&cluster, "bare_later", "not_yet_bare"),
        ["bare:2"]
    );
}

/// A bare message goes only once it is marked delivered: while another
/// transaction holds its row (a retry, a purge), it is not sent, and it
/// is sent once after, not once per attempt to mark it.
#[test]
fn a_bare_message_whose_row_is_held_is_sent_once_after() {
    let cluster = preloaded();
    let mut node = receiver();
    server(&cluster, "held_row", &node);
    // Queued while the node is down, so that its row is held before the
    // worker can reach the node.
    node.kill();
    let id = sql(
        &cluster,
        "postgres",
        "SELECT erlang_send_on_commit('held_row', 'orders', '{\"n\": 1}', ack => false);",
    );
    std::thread::scope(|scope| {
        let locker = scope.spawn(|| {
            sql(
                &cluster,
                "postgres",
                &format!(
                    "BEGIN;\n\
                     SELECT id FROM erlang_outbox_queue WHERE id = {id} FOR UPDATE;\n\
                     SELECT pg_sleep(4);\n\
                     COMMIT;"
                ),
            )
        });
        wait_for(
            &cluster,
            "postgres",
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE a.query LIKE '%pg_sleep(4)%' AND l.locktype = 'transactionid'",
            "1",
        );
        let args = receiver_args();
        node.restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
        locker.join().unwrap();
    });
    settle(&cluster, "held_row");
    let deadline = Instant::now() + Duration::from_secs(30);
    while received_numbers(&cluster, "held_row", "orders").is_empty() {
        assert!(Instant::now() < deadline, "the bare message never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give a second copy time to show up, if one were on its way.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received_numbers(&cluster, "held_row", "orders"), ["bare:1"]);
}
