//! Criterion benchmarks of the whole analysis, the split trees and each backend primitive, per
//! backend and shape, on seeded synthetic ALD heads of the shapes of real classifier heads.
//! Throughput is bytes of f32 input, so criterion reports GB/s; GPU work is synchronised inside
//! the timed loop; ids name the backend, its device and the shape.
//!
//! Shapes: `ALDFIT_BENCH_SHAPES=1000x2048,32000x4096` (default: every shape in [`MODELS`]).
//! The CPU takes shapes up to `ALDFIT_BENCH_HOST_MAX_MB` (default 128) and a software adapter
//! up to 32 MB: the largest heads would take the CPU tens of minutes under criterion's sampling.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aldfit::ald::AldParams;
use aldfit::analysis::{self, Options};
use aldfit::backend::{self, Backend, BackendKind, Segment, Side};
use aldfit::head::Head;
use aldfit::synth;

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
        let mut made = None;
        let big = bytes > 64 << 20;

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
            let (values, truth) =
                &*made.get_or_insert_with(|| synth::ald_head(classes, features, 42));
            let head = Head::from_f32(&shape, classes, features, values).expect("synthetic head");
            let mut group = c.benchmark_group("analysis");
            group.throughput(Throughput::Bytes(bytes));
            if big {
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(20));
            }
            // The study's split trees of every class (docs/DESIGN.md 2.5), level by level.
            group.bench_function(BenchmarkId::new(format!("{name}/split"), &shape), |bench| {
                bench.iter(|| {
                    aldfit::tree::split_head(
                        &head,
                        &[],
                        b.as_mut(),
                        &aldfit::tree::SplitOptions::default(),
                        &mut |_| {},
                    )
                    .expect("split")
                })
            });
            for (variant, pooled) in [("full", true), ("no-pooled", false)] {
                let opts = Options {
                    pooled,
                    ..Options::default()
                };
                group.bench_function(
                    BenchmarkId::new(format!("{name}/{variant}"), &shape),
                    |bench| {
                        bench.iter(|| {
                            analysis::analyse(&head, &[], b.as_mut(), &opts, &mut |_| {})
                                .expect("analysis")
                        })
                    },
                );
            }
            group.finish();

            // Primitives on one chunk as large as the backend takes.
            let rows = b.max_chunk_rows(features).min(classes);
            let chunk = &values[..rows * features];
            let chunk_bytes = (rows * features * 4) as u64;
            let segs: Vec<Segment> = (0..rows).map(|r| Segment::new(r, 0, features)).collect();
            let mut group = c.benchmark_group("primitives");
            group.throughput(Throughput::Bytes(chunk_bytes));
            let cid = format!("{rows}x{features}");
            // The host-to-device copy and sort together, then the sort alone of rows already
            // uploaded (what a GPU's kernels cost).
            group.bench_function(
                BenchmarkId::new(format!("{name}/upload+sort"), &cid),
                |bench| {
                    bench.iter(|| {
                        b.load_sorted(chunk, features, false).expect("sort");
                        b.synchronize().expect("sync")
                    })
                },
            );
            b.upload(chunk, features).expect("upload");
            group.bench_function(BenchmarkId::new(format!("{name}/sort"), &cid), |bench| {
                bench.iter(|| {
                    b.sort_uploaded(false).expect("sort");
                    b.synchronize().expect("sync")
                })
            });
            group.bench_function(
                BenchmarkId::new(format!("{name}/sort-with-indices"), &cid),
                |bench| {
                    bench.iter(|| {
                        b.sort_uploaded(true).expect("sort");
                        b.synchronize().expect("sync")
                    })
                },
            );
            // One level of the split trees: every row's root described, then split at its mean.
            b.sort_uploaded(true).expect("sort");
            group.bench_function(
                BenchmarkId::new(format!("{name}/split-level"), &cid),
                |bench| {
                    bench.iter(|| {
                        let stats = b.segment_stats(&segs).expect("segment_stats");
                        let pivots: Vec<f32> = stats
                            .iter()
                            .map(|s| aldfit::tree::threshold(s.baselines.mean))
                            .collect();
                        b.partition_points(&segs, &pivots, false)
                            .expect("partition")
                    })
                },
            );
            b.sort_uploaded(false).expect("sort");
            group.bench_function(BenchmarkId::new(format!("{name}/fit"), &cid), |bench| {
                bench.iter(|| b.fit(&segs).expect("fit"))
            });
            let params: Vec<AldParams> = truth[..rows].to_vec();
            group.bench_function(BenchmarkId::new(format!("{name}/ks"), &cid), |bench| {
                bench.iter(|| b.ks(&segs, &params).expect("ks"))
            });
            group.bench_function(
                BenchmarkId::new(format!("{name}/baselines"), &cid),
                |bench| bench.iter(|| b.baselines(&segs).expect("baselines")),
            );
            group.bench_function(
                BenchmarkId::new(format!("{name}/segment_stats"), &cid),
                |bench| bench.iter(|| b.segment_stats(&segs).expect("segment_stats")),
            );
            // The bootstrap's unit of work: replicate rows drawn on the device, then drawn, sorted
            // and summarised (Gaussian and ALD rows mixed).
            let reps = aldfit::bootstrap::bench_rows(&params);
            group.bench_function(
                BenchmarkId::new(format!("{name}/generate"), &cid),
                |bench| {
                    bench.iter(|| {
                        b.generate(&reps, features, 7).expect("generate");
                        b.synchronize().expect("sync")
                    })
                },
            );
            group.bench_function(
                BenchmarkId::new(format!("{name}/bootstrap"), &cid),
                |bench| {
                    bench.iter(|| {
                        b.summarise_generated(&reps, features, 7)
                            .expect("bootstrap");
                        b.synchronize().expect("sync")
                    })
                },
            );
            // Back to the head's own rows for the primitives below.
            b.load_sorted(chunk, features, false).expect("sort");
            // Both seed lines of every row, on the row's negative prefix and positive suffix.
            let zeros = vec![0f32; rows];
            let neg_end = b.partition_points(&segs, &zeros, false).expect("partition");
            let pos_start = b.partition_points(&segs, &zeros, true).expect("partition");
            let (pos, neg) = backend::sides(features, &neg_end, &pos_start);
            group.bench_function(BenchmarkId::new(format!("{name}/seed"), &cid), |bench| {
                bench.iter(|| {
                    b.study_line(&pos, Side::Positive).expect("study_line");
                    b.study_line(&neg, Side::Negative).expect("study_line")
                })
            });
            group.bench_function(
                BenchmarkId::new(format!("{name}/nll-grad"), &cid),
                |bench| bench.iter(|| b.nll_grad_uploaded(&params).expect("nll_grad")),
            );
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
