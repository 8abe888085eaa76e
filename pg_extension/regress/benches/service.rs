//! What a typed service call costs: `erlang_service_call` of `demo.add`
//! against `erlang_call` of `erlang:abs/1` on the same Elixir node (the
//! one `test_harness/bin/setup-elixir` runs), both sequential inside one
//! statement, interleaved over rounds. Run: `cargo bench -p
//! erlang_cnode_regress --bench service` (the extension must be installed
//! in the PostgreSQL on `PATH`: `scripts/install`; the Elixir app is built
//! by `mix compile` on the node's first start).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use erlang_cnode_test_harness::{short_host, PgCluster};

const CALLS: u32 = 5_000;
const ROUNDS: usize = 5;

fn round(cluster: &PgCluster, node: &str, cookie: &str, call: &str) -> f64 {
    let sql = format!(
        "SELECT erlang_connect('{node}', '{cookie}');\n\
         SELECT count({call}) FROM generate_series(1, 100);\n\
         DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN\n\
           PERFORM count({call}) FROM generate_series(1, {CALLS});\n\
           RAISE NOTICE 'us_per_call=%', extract(epoch FROM clock_timestamp() - t0) * 1e6 / {CALLS};\n\
         END $$;\n"
    );
    let out = cluster.psql("postgres", &sql);
    let text = String::from_utf8_lossy(&out.stderr);
    let marker = "us_per_call=";
    let rest = &text[text.find(marker).unwrap_or_else(|| panic!("{text}")) + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().expect("a number")
}

fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let cluster = PgCluster::start();
    let out = cluster.psql("postgres", "CREATE EXTENSION erlang_cnode;");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let alive = format!("bench_service_{}", std::process::id());
    let cookie = format!("bench_cookie_{}", std::process::id());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut elixir = Command::new(root.join("test_harness/bin/setup-elixir"))
        .args(["--name", &alive, "--cookie", &cookie])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("setup-elixir runs");
    let mut lines = BufReader::new(elixir.stdout.take().expect("piped")).lines();
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("the node said something")
            .expect("text");
        if line.contains("is up") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no node");
    }
    let node = format!("{alive}@{}", short_host());
    let service = format!("erlang_service_call('{node}', 'demo', 'add', '{{\"a\": 1, \"b\": 2}}')");
    let abs = format!("erlang_call('{node}', 'erlang', 'abs', '[-1]')");
    let (mut s, mut a) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        s.push(round(&cluster, &node, &cookie, &service));
        a.push(round(&cluster, &node, &cookie, &abs));
    }
    let _ = elixir.kill();
    let _ = elixir.wait();
    println!("{CALLS} sequential calls per round, {ROUNDS} rounds, interleaved");
    println!(
        "erlang_service_call demo.add   median {:>6.1} µs/call  (rounds: {s:.1?})",
        median(s.clone())
    );
    println!(
        "erlang_call erlang:abs/1       median {:>6.1} µs/call  (rounds: {a:.1?})",
        median(a.clone())
    );
    println!("ratio of medians: {:.2}x", median(s) / median(a));
}
