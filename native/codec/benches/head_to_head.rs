//! Our codec against serde_json, interleaved: each round times one run of
//! every contender back to back and keeps each one's fastest run, so load on
//! a shared machine hits all of them alike. Prints MB/s of JSON text.
//!
//! Run: `cargo bench -p erlang_cnode_codec --bench head_to_head`

use std::hint::black_box;
use std::time::{Duration, Instant};

use erlang_cnode_codec::{etf, etf_to_json, json};

#[path = "common/shapes.rs"]
mod shapes;

const ROUNDS: usize = 400;

fn fastest(best: &mut Duration, run: impl FnOnce()) {
    let start = Instant::now();
    run();
    *best = (*best).min(start.elapsed());
}

fn main() {
    println!("| input | ETF → JSON | JSON → ETF | serde_json parse | serde_json print |");
    println!("|---|---|---|---|---|");
    for (name, term) in shapes::all() {
        let bytes = etf::encode(&term).unwrap();
        let text = json::to_string(&term).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Small inputs are timed in batches so the clock's resolution does not matter.
        let batch = (64 * 1024 / text.len()).max(1);
        let mut best = [Duration::MAX; 4];
        for _ in 0..ROUNDS {
            fastest(&mut best[0], || {
                (0..batch).for_each(|_| drop(black_box(etf_to_json(black_box(&bytes)).unwrap())))
            });
            fastest(&mut best[1], || {
                (0..batch).for_each(|_| {
                    drop(black_box(
                        etf::encode(&json::parse(black_box(&text)).unwrap()).unwrap(),
                    ))
                })
            });
            fastest(&mut best[2], || {
                (0..batch).for_each(|_| {
                    drop(black_box(
                        serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap(),
                    ))
                })
            });
            fastest(&mut best[3], || {
                (0..batch).for_each(|_| {
                    drop(black_box(serde_json::to_string(black_box(&value)).unwrap()))
                })
            });
        }
        let mb_s = |d: Duration| (text.len() * batch) as f64 / d.as_secs_f64() / 1e6;
        println!(
            "| {name} | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s |",
            mb_s(best[0]),
            mb_s(best[1]),
            mb_s(best[2]),
            mb_s(best[3])
        );
    }
}
