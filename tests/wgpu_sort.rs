//! The wgpu per-row sort against the CPU's, on whatever adapter this machine has (lavapipe in CI).
#![cfg(feature = "wgpu")]

mod common;

use aldfit::backend::wgpu::Gpu;
use aldfit::synth;

fn gpu() -> Option<Gpu> {
    match Gpu::new(true) {
        Ok(g) => {
            eprintln!("wgpu adapter: {}", g.adapter_name());
            Some(g)
        }
        Err(e) => {
            common::skip("wgpu", &e.to_string());
            None
        }
    }
}

#[test]
fn sort_rows_equals_the_cpu_stable_sort_with_indices() {
    let Some(gpu) = gpu() else { return };
    for cols in [1usize, 2, 3, 17, 256, 1000, 1280, gpu.max_sort_width()] {
        let rows = synth::NASTY_KINDS.len() + 3;
        let mut values = synth::nasty_head(rows, cols, cols as u64);
        // Negative zero beside positive zero, and extremes.
        values[0] = -0.0;
        if values.len() > 3 {
            values[1] = 0.0;
            values[2] = f32::MAX;
            values[3] = -f32::MIN_POSITIVE;
        }
        let (sorted, indices) = gpu.sort_rows(&values, cols).unwrap();
        for r in 0..rows {
            let row = &values[r * cols..(r + 1) * cols];
            let mut want: Vec<(f32, u32)> = row.iter().copied().zip(0u32..).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (j, &(x, i)) in want.iter().enumerate() {
                let k = r * cols + j;
                assert_eq!(
                    (sorted[k].to_bits(), indices[k]),
                    (x.to_bits(), i),
                    "{cols} cols, row {r}, position {j}"
                );
            }
        }
    }
}

#[test]
fn rows_wider_than_workgroup_memory_take_the_multi_pass_sort() {
    let Some(gpu) = gpu() else { return };
    for cols in [gpu.max_sort_width() + 1, 5000, 65_536] {
        let rows = if cols > 10_000 { 2 } else { 5 };
        let values = synth::nasty_head(rows, cols, cols as u64);
        let (sorted, indices) = gpu.sort_rows(&values, cols).unwrap();
        for r in 0..rows {
            let row = &values[r * cols..(r + 1) * cols];
            let mut want: Vec<(f32, u32)> = row.iter().copied().zip(0u32..).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let got: Vec<(u32, u32)> = (0..cols)
                .map(|j| (sorted[r * cols + j].to_bits(), indices[r * cols + j]))
                .collect();
            let want: Vec<(u32, u32)> = want.iter().map(|&(x, i)| (x.to_bits(), i)).collect();
            assert!(got == want, "{cols} cols, row {r}");
        }
    }
}

/// Runs the double-f32 helpers (shaders/df.wgsl) on the device on pairs (a, b) and checks each
/// against exact f64 arithmetic: these carry the fit kernel's precision.
#[test]
fn double_f32_operations_are_exact_on_the_device() {
    use rand::{Rng, SeedableRng};
    let Some(gpu) = gpu() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let n = 4096;
    let mut input = Vec::with_capacity(2 * n);
    for i in 0..n {
        let a: f32 = rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-10..10));
        // Nearly cancelling pairs, and unrelated ones.
        let b: f32 = if i % 2 == 0 {
            -a * (1.0 + rng.random_range(-1e-4f32..1e-4))
        } else {
            rng.random_range(-3.0f32..3.0)
        };
        input.push(a);
        input.push(b);
    }
    let body = r#"
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> probe: vec4<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    ONE = bitcast<f32>(probe.x);
    let i = gid.x;
    if (i >= probe.y) { return; }
    let a = input[2u * i];
    let b = input[2u * i + 1u];
    let s = two_sum(a, b);
    let p = two_prod(a, b);
    let r = df_sqrt(vec2<f32>(abs(a), 0.0));
    let m = df_mul(vec2<f32>(a, 0.0), f32(i));
    out[8u * i] = s.x; out[8u * i + 1u] = s.y;
    out[8u * i + 2u] = p.x; out[8u * i + 3u] = p.y;
    out[8u * i + 4u] = r.x; out[8u * i + 5u] = r.y;
    out[8u * i + 6u] = m.x; out[8u * i + 7u] = m.y;
}
"#;
    let out = gpu.probe(body, &input, n, 8).unwrap();
    let mut worst_sqrt: f64 = 0.0;
    for i in 0..n {
        let (a, b) = (input[2 * i] as f64, input[2 * i + 1] as f64);
        let o = &out[8 * i..8 * i + 8];
        assert_eq!(
            o[0] as f64 + o[1] as f64,
            a + b,
            "two_sum({a}, {b}) = {:?}",
            &o[..2]
        );
        assert_eq!(
            o[2] as f64 + o[3] as f64,
            a * b,
            "two_prod({a}, {b}) = {:?}",
            &o[2..4]
        );
        assert_eq!(
            o[6] as f64 + o[7] as f64,
            a * i as f64,
            "df_mul({a}, {i}) = {:?}",
            &o[6..8]
        );
        if a != 0.0 {
            let exact = a.abs().sqrt();
            worst_sqrt = worst_sqrt.max(((o[4] as f64 + o[5] as f64) - exact).abs() / exact);
        }
    }
    assert!(worst_sqrt < 1e-12, "df_sqrt relative error {worst_sqrt}");
}

/// A device that binds only 64 KiB per buffer: the pipeline must cut the heads into many chunks
/// (and the wide sort its scratch) and still give exactly the results of one chunk.
#[test]
fn small_binding_limits_force_many_chunks_with_the_same_results() {
    use aldfit::analysis::{self, Options};
    use aldfit::backend::wgpu::WgpuBackend;
    use aldfit::backend::Backend;
    use aldfit::head::Head;
    if gpu().is_none() {
        return;
    }
    for (classes, cols) in [(101usize, 333usize), (9, 5000)] {
        let values = synth::nasty_head(classes, cols, 3);
        let head = Head::from_f32("nasty", classes, cols, &values).unwrap();
        let mut whole = WgpuBackend::new(true).unwrap();
        let mut small = WgpuBackend::new(true).unwrap();
        small.device_mut().cap_binding_size(64 << 10);
        assert!(small.max_chunk_rows(cols) < classes);
        let a =
            analysis::analyse(&head, &[], &mut whole, &Options::default(), &mut |_| {}).unwrap();
        let b =
            analysis::analyse(&head, &[], &mut small, &Options::default(), &mut |_| {}).unwrap();
        assert!(
            b.chunks > 1 && a.chunks == 1,
            "{} and {} chunks",
            a.chunks,
            b.chunks
        );
        for (k, (x, y)) in a.classes.iter().zip(&b.classes).enumerate() {
            assert_eq!(
                format!("{x:?}"),
                format!("{y:?}"),
                "{classes}×{cols}: class {k}"
            );
        }
    }
}

#[test]
fn a_device_error_comes_back_as_an_error_not_a_panic() {
    let Some(gpu) = gpu() else { return };
    // WGSL that does not compile: wgpu's default would panic in its error handler.
    let r = gpu.probe("this is not WGSL", &[1.0], 1, 1);
    let e = r.expect_err("an invalid kernel ran").to_string();
    assert!(e.contains("device reported an error"), "{e}");
    // The device stays usable for the next call.
    let ok = gpu.probe(
        "@group(0) @binding(0) var<storage, read> input: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> out: array<f32>;\n\
         @group(0) @binding(2) var<uniform> p: vec4<u32>;\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {\n\
           if (id.x < p.y) { out[id.x] = input[id.x] * 2.0; } }",
        &[1.5],
        1,
        1,
    );
    assert_eq!(ok.unwrap(), vec![3.0]);
}
