//! Criterion benchmarks of the whole analysis, the split trees and each backend primitive, per
//! backend and shape, on seeded synthetic ALD heads of the shapes of real classifier heads. The
//! stages are `aldfit::bench::STAGES`, the list `aldfit bench` runs too.
//! Throughput is bytes of f32 input, so criterion reports GB/s; GPU work is synchronised inside
//! the timed loop; ids name the backend, its device and the shape.
//!
//! Shapes: `ALDFIT_BENCH_SHAPES=1000x2048,32000x4096` (default: every shape in [`MODELS`]).
//! The CPU takes shapes up to `ALDFIT_BENCH_HOST_MAX_MB` (default 128) and a software adapter
//! up to 32 MB: the largest heads would take the CPU tens of minutes under criterion's sampling.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aldfit::backend::{self, Backend, BackendKind};
use aldfit::bench::{Fixture, Scope, STAGES};

/// Classifier heads of real models: (classes, features, model).
const MODELS: [(usize, usize, &str); 9] = [
    (1000, 512, "ResNet-18"),
    (1000, 1280, "EfficientNet-Lite0"),
    (1000, 2048, "ResNet-50"),
    (6625, 120, "PP-OCRv4"),
    (21843, 1024, "ViT-L ImageNet-21k"),
    (30522, 768, "BERT"),
    (128256, 4096, "Llama-3-8B"),
    (151936, 3584, "Qwen2-7B"),
    (256000, 2304, "Gemma-2-2B"),
];

fn shapes() -> Vec<(usize, usize)> {
    match std::env::var("ALDFIT_BENCH_SHAPES") {
        Ok(list) => aldfit::bench::parse_shapes(&list).expect("ALDFIT_BENCH_SHAPES"),
        Err(_) => MODELS.iter().map(|&(c, f, _)| (c, f)).collect(),
    }
}

/// `CLASSESxFEATURES`, with the model whose head has that shape.
fn shape_id(classes: usize, features: usize) -> String {
    match MODELS.iter().find(|m| m.0 == classes && m.1 == features) {
        Some(m) => format!("{classes}x{features} ({})", m.2),
        None => format!("{classes}x{features}"),
    }
}

fn backends() -> Vec<Box<dyn Backend>> {
    [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
        .into_iter()
        .filter_map(|k| match backend::create(k) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("bench: skipping {k:?}: {e}");
                None
            }
        })
        .collect()
}

/// `backend/device` for benchmark ids.
fn id(b: &dyn Backend) -> String {
    let i = b.info();
    format!("{}/{}", i.name, i.device.replace('/', "_"))
}

fn bench(c: &mut Criterion) {
    let host_max: u64 = std::env::var("ALDFIT_BENCH_HOST_MAX_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
        << 20;
    for (classes, features) in shapes() {
        let shape = shape_id(classes, features);
        let bytes = (classes * features * 4) as u64;
        let mut made: Option<Fixture> = None;
        for mut b in backends() {
            let name = id(b.as_ref());
            let info = b.info();
            if info.software && bytes > 32 << 20 {
                eprintln!("bench: skipping {shape} on {name}: a software adapter would take hours");
                continue;
            }
            if info.name == "cpu" && bytes > host_max {
                eprintln!(
                    "bench: skipping {shape} on the CPU (over ALDFIT_BENCH_HOST_MAX_MB={})",
                    host_max >> 20
                );
                continue;
            }
            // One head per shape; the chunk is as large as this backend holds.
            let chunk_rows = b.max_chunk_rows(features);
            if made
                .as_ref()
                .is_none_or(|f| f.rows != chunk_rows.clamp(1, classes))
            {
                made = Some(Fixture::new(classes, features, chunk_rows).expect("head"));
            }
            let fx = made.as_ref().expect("made above");
            let cid = format!("{}x{features}", fx.rows);
            for (group_name, scope, group_bytes, what) in [
                ("analysis", Scope::Head, bytes, &shape),
                (
                    "primitives",
                    Scope::Chunk,
                    (fx.rows * features * 4) as u64,
                    &cid,
                ),
            ] {
                let mut group = c.benchmark_group(group_name);
                group.throughput(Throughput::Bytes(group_bytes));
                if scope == Scope::Head && bytes > 64 << 20 {
                    group
                        .sample_size(10)
                        .measurement_time(Duration::from_secs(20));
                }
                for stage in STAGES.iter().filter(|s| s.scope == scope) {
                    (stage.prepare)(b.as_mut(), fx).expect("prepare");
                    let bid = BenchmarkId::new(format!("{name}/{}", stage.name), what);
                    group.bench_function(bid, |bench| {
                        bench.iter(|| {
                            (stage.run)(b.as_mut(), fx).expect(stage.name);
                            b.synchronize().expect("sync")
                        })
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
