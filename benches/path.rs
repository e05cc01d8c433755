//! Hot-path micro-benchmarks: URL path normalisation, plain and hostile.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tws::path::normalize;

fn paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    for (name, raw) in [
        ("plain", "/images/user_one.png"),
        ("deep", "/static/css/vendor/bootstrap/5.3/bootstrap.min.css"),
        ("encoded", "/files/caf%C3%A9%20menu/r%C3%A9sum%C3%A9.pdf"),
        ("dot segments", "/a/./b/../c//d/./e/../f"),
        ("traversal", "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
    ] {
        group.bench_function(name, |b| b.iter(|| normalize(black_box(raw))));
    }
    group.finish();
}

criterion_group!(benches, paths);
criterion_main!(benches);
