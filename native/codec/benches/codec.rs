//! Codec throughput on the three shapes of `BENCHMARKS.md`: a 1 KB map of
//! strings, a 100 KB list of tuples and a 1 MB binary. Each is measured as
//! ETF → JSON text and JSON text → ETF, beside serde_json parsing and printing
//! the same JSON text (throughput counts bytes of that JSON text).
//!
//! Run: `cargo bench -p erlang_cnode_codec --bench codec`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use erlang_cnode_codec::{etf, json};
use std::hint::black_box;

#[path = "common/shapes.rs"]
mod shapes;

fn bench(c: &mut Criterion) {
    for (name, term) in shapes::all() {
        let bytes = etf::encode(&term).unwrap();
        let text = json::to_string(&term).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(text.len() as u64));
        eprintln!(
            "{name}: {} bytes ETF, {} bytes JSON",
            bytes.len(),
            text.len()
        );
        group.bench_function(BenchmarkId::new("etf_to_json", name), |b| {
            b.iter(|| erlang_cnode_codec::etf_to_json(black_box(&bytes)).unwrap())
        });
        group.bench_function(BenchmarkId::new("json_to_etf", name), |b| {
            b.iter(|| etf::encode(&json::parse(black_box(&text)).unwrap()).unwrap())
        });
        group.bench_function(BenchmarkId::new("serde_json_parse", name), |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap())
        });
        group.bench_function(BenchmarkId::new("serde_json_print", name), |b| {
            b.iter(|| serde_json::to_string(black_box(&value)).unwrap())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
