//! Many calls in flight: 10,000 calls of `erlang:node/0` as sequential
//! `erlang_call`, as `erlang_call_many`, and as `erlang_call_async` +
//! `erlang_await` in a `MATERIALIZED` CTE, side by side in the same run with
//! an Erlang node making the same 10,000 calls sequentially (`erpc:call`)
//! and pipelined (`erpc:send_request`, then `erpc:receive_response`); and a
//! 1 KB map echoed as argument and result, `erlang_call` against
//! `erpc:call`. Run: `cargo bench -p erlang_cnode_regress --bench many`
//! (the extension must be installed in the PostgreSQL on `PATH`:
//! `scripts/install`).
//!
//! Rounds alternate between the callers; each prints microseconds per call
//! for every round, and the fastest and median.

use std::process::Command;

use erlang_cnode_test_harness::{ErlNode, PgCluster};

const CALLS: u32 = 10_000;
const ROUNDS: usize = 5;

/// Microseconds per call of `timed` (SQL run `CALLS` times' worth inside a
/// `DO` block), after `setup`.
fn sql_round(cluster: &PgCluster, node: &ErlNode, setup: &str, timed: &str, calls: u32) -> f64 {
    let sql = format!(
        "SELECT erlang_connect('{n}', '{c}');\n\
         {setup}\n\
         SELECT count(erlang_call('{n}', 'erlang', 'node')) FROM generate_series(1, 100);\n\
         DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN\n\
           {timed}\n\
           RAISE NOTICE 'us_per_call=%', extract(epoch FROM clock_timestamp() - t0) * 1e6 / {calls};\n\
         END $$;\n",
        n = node.name,
        c = node.cookie,
    );
    let out = cluster.psql("postgres", &sql);
    let text = String::from_utf8_lossy(&out.stderr);
    number_after(&text, "us_per_call=").unwrap_or_else(|| panic!("no figure in: {text}"))
}

/// Microseconds per call of `body` (an Erlang fun body using `Target` and
/// `N`) on a fresh hidden node.
fn erlang_round(node: &ErlNode, setup: &str, body: &str, calls: u32) -> f64 {
    let code = format!(
        "Target = '{target}', N = {calls}, {setup} \
         Run = fun() -> {body} end, \
         _ = erpc:call(Target, erlang, node, []), \
         {{Us, _}} = timer:tc(Run), \
         io:format(\"us_per_call=~f~n\", [Us / N]), halt().",
        target = node.name,
    );
    let out = Command::new("erl")
        .args(["-sname", &format!("bench_many_{}", std::process::id())])
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
    number_after(&text, "us_per_call=").unwrap_or_else(|| {
        panic!(
            "no figure in: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
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
        "{name:<52} fastest {:>6.1} µs/call  median {:>6.1} µs/call  (rounds: {})",
        figures[0],
        median,
        shown.join(" ")
    );
    median
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` and `--list`: nothing to run
    }
    let cluster = PgCluster::start();
    let out = cluster.psql("postgres", "CREATE EXTENSION erlang_cnode;");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let target = ErlNode::start("bench_many_target", &[]);
    let n = &target.name;
    println!("{CALLS} calls of erlang:node/0 per round, {ROUNDS} rounds, the callers interleaved");
    let args_list = format!(
        "CREATE TEMP TABLE args AS SELECT jsonb_agg('[]'::jsonb) AS a FROM generate_series(1, {CALLS});"
    );
    let sequential = format!(
        "PERFORM count(erlang_call('{n}', 'erlang', 'node')) FROM generate_series(1, {CALLS});"
    );
    let many = format!(
        "PERFORM count(*) FROM erlang_call_many('{n}', 'erlang', 'node', (SELECT a FROM args));"
    );
    let async_cte = format!(
        "PERFORM count(erlang_await(id)) FROM (WITH sent AS MATERIALIZED (\
         SELECT i, erlang_call_async('{n}', 'erlang', 'node') AS id FROM generate_series(1, {CALLS}) i) \
         SELECT id FROM sent ORDER BY i) AS awaited;"
    );
    let native_sequential =
        "Loop = fun L(0) -> ok; L(K) -> erpc:call(Target, erlang, node, []), L(K - 1) end, Loop(N)";
    let native_pipelined =
        "Reqs = [erpc:send_request(Target, erlang, node, []) || _ <- lists:seq(1, N)], \
                            [erpc:receive_response(R) || R <- Reqs], ok";
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for _ in 0..ROUNDS {
        figures[0].push(sql_round(&cluster, &target, "", &sequential, CALLS));
        figures[1].push(sql_round(&cluster, &target, &args_list, &many, CALLS));
        figures[2].push(sql_round(&cluster, &target, "", &async_cte, CALLS));
        figures[3].push(erlang_round(&target, "", native_sequential, CALLS));
        figures[4].push(erlang_round(&target, "", native_pipelined, CALLS));
    }
    let seq = summary("erlang_call, sequential (PostgreSQL)", figures[0].clone());
    let many = summary("erlang_call_many (PostgreSQL)", figures[1].clone());
    let cte = summary(
        "erlang_call_async + erlang_await, CTE (PostgreSQL)",
        figures[2].clone(),
    );
    let native_seq = summary("erpc:call, sequential (Erlang)", figures[3].clone());
    let native_pipe = summary(
        "erpc:send_request/receive_response (Erlang)",
        figures[4].clone(),
    );
    println!(
        "erlang_call_many rate / sequential erlang_call rate: {:.1}x",
        seq / many
    );
    println!(
        "async + await rate / sequential erlang_call rate:    {:.1}x",
        seq / cte
    );
    println!(
        "erlang_call_many time / pipelined erpc time:          {:.2}x",
        many / native_pipe
    );
    println!(
        "sequential erlang_call time / sequential erpc time:   {:.2}x",
        seq / native_seq
    );

    // A 1 KB map (20 keys) as argument and result: erlang:hd([Map]).
    let entries: Vec<(String, String)> = (0..20)
        .map(|i| (format!("key_{i:02}"), format!("{:0>40}", i)))
        .collect();
    let json_map = entries
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let erl_map = entries
        .iter()
        .map(|(k, v)| format!("<<\"{k}\">> => <<\"{v}\">>"))
        .collect::<Vec<_>>()
        .join(", ");
    let echo_calls = 5_000;
    let sql_echo = format!(
        "PERFORM count(erlang_call('{n}', 'erlang', 'hd', '[[{{{json_map}}}]]')) FROM generate_series(1, {echo_calls});"
    );
    let erl_setup = format!("Map = #{{{erl_map}}},");
    let erl_echo = "Loop = fun L(0) -> ok; L(K) -> Map = erpc:call(Target, erlang, hd, [[Map]]), L(K - 1) end, Loop(N)";
    let (mut sql, mut erl) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        sql.push(sql_round(&cluster, &target, "", &sql_echo, echo_calls));
        erl.push(erlang_round(&target, &erl_setup, erl_echo, echo_calls));
    }
    println!("-- a 1 KB map (20 binary keys and values) echoed: {echo_calls} calls per round");
    let s = summary("erlang_call (PostgreSQL)", sql);
    let e = summary("erpc:call (Erlang)", erl);
    println!("ratio of medians: {:.2}x", s / e);
}
