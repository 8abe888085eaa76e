//! What a call costs: sequential `erlang_call`s inside one statement
//! (`generate_series`), side by side in the same run with an Erlang node
//! doing `erpc:call` to the same target; and how long a cancel takes to
//! stop a call. Run: `cargo bench -p erlang_cnode_regress --bench call`
//! (the extension must be installed: `cargo pgrx install --release`).
//!
//! Rounds alternate between the two callers; each prints microseconds per
//! call for every round, and the fastest and median.

use std::process::Command;

use erlang_cnode_test_harness::{ErlNode, PgCluster};

const CALLS: u32 = 10_000;
const ROUNDS: usize = 7;

fn sql_round(cluster: &PgCluster, node: &ErlNode, function: &str, args: &str) -> f64 {
    let sql = format!(
        "SELECT erlang_connect('{n}', '{c}');\n\
         SELECT count(erlang_call('{n}', 'erlang', '{function}', '{args}')) FROM generate_series(1, 100);\n\
         DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN\n\
           PERFORM count(erlang_call('{n}', 'erlang', '{function}', '{args}')) FROM generate_series(1, {CALLS});\n\
           RAISE NOTICE 'us_per_call=%', extract(epoch FROM clock_timestamp() - t0) * 1e6 / {CALLS};\n\
         END $$;\n",
        n = node.name,
        c = node.cookie,
    );
    let out = cluster.psql("postgres", &sql);
    let text = String::from_utf8_lossy(&out.stderr);
    number_after(&text, "us_per_call=").unwrap_or_else(|| panic!("no figure in: {text}"))
}

fn erlang_round(node: &ErlNode, function: &str, args: &str) -> f64 {
    let code = format!(
        "Target = '{target}', Args = {args}, \
         Loop = fun L(0) -> ok; L(N) -> erpc:call(Target, erlang, {function}, Args), L(N - 1) end, \
         Loop(100), {{Us, ok}} = timer:tc(fun() -> Loop({CALLS}) end), \
         io:format(\"us_per_call=~f~n\", [Us / {CALLS}]), halt().",
        target = node.name,
    );
    let out = Command::new("erl")
        .args(["-sname", &format!("bench_caller_{}", std::process::id())])
        .args([
            "-setcookie",
            &node.cookie,
            "-hidden",
            "-noshell",
            "-noinput",
        ])
        .args(["-eval", &code])
        .output()
        .expect("erl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    number_after(&text, "us_per_call=").unwrap_or_else(|| panic!("no figure in: {text}"))
}

fn number_after(text: &str, marker: &str) -> Option<f64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn summary(name: &str, mut figures: Vec<f64>) -> f64 {
    let shown: Vec<String> = figures.iter().map(|f| format!("{f:.1}")).collect();
    figures.sort_by(f64::total_cmp);
    let median = figures[figures.len() / 2];
    println!(
        "{name:<42} fastest {:>6.1} µs/call  median {:>6.1} µs/call  (rounds: {})",
        figures[0],
        median,
        shown.join(" ")
    );
    median
}

/// `\timing` of a call stopped by a 100 ms statement_timeout, less 100 ms.
fn cancel_latency(cluster: &PgCluster, node: &ErlNode) -> Vec<f64> {
    let mut sql = format!(
        "SELECT erlang_connect('{}', '{}');\nSET statement_timeout = 100;\n\\timing on\n",
        node.name, node.cookie
    );
    for _ in 0..20 {
        sql.push_str(&format!(
            "SELECT erlang_call('{}', 'timer', 'sleep', '[10000]');\n",
            node.name
        ));
    }
    let out = cluster.psql("postgres", &sql);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| line.strip_prefix("Time: "))
        .filter_map(|t| number_after(t, ""))
        .map(|ms| ms - 100.0)
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` and `--list`: nothing to run
    }
    let cluster = PgCluster::start();
    let out = cluster.psql("postgres", "CREATE EXTENSION erlang_cnode;");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let target = ErlNode::start("bench_target", &[]);
    println!("{CALLS} sequential calls per round, {ROUNDS} rounds, the two callers interleaved");
    let kilobyte = "x".repeat(1000);
    let cases = [
        (
            "erlang:abs(-1)",
            "abs",
            "[-1]".to_owned(),
            "[-1]".to_owned(),
        ),
        (
            "erlang:byte_size(<<1000 bytes>>)",
            "byte_size",
            format!("[\"{kilobyte}\"]"),
            format!("[<<\"{kilobyte}\">>]"),
        ),
    ];
    for (label, function, json, erl) in cases {
        let (mut sql, mut erlang) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            sql.push(sql_round(&cluster, &target, function, &json));
            erlang.push(erlang_round(&target, function, &erl));
        }
        println!("-- {label}");
        let s = summary("erlang_call in one statement (PostgreSQL)", sql);
        let e = summary("erpc:call from an Erlang node", erlang);
        println!("ratio of medians: {:.2}x", s / e);
    }
    let mut latencies = cancel_latency(&cluster, &target);
    latencies.sort_by(f64::total_cmp);
    println!(
        "statement_timeout = 100 ms on a 10 s call: stopped {:.1} ms (median) / {:.1} ms (worst) after the timeout, {} tries",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    );
}
