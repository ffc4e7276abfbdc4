//! The wgpu per-row sort against the CPU's, on whatever adapter this machine has (lavapipe in CI).
#![cfg(feature = "wgpu")]

mod common;

use aldfit::backend::wgpu::Gpu;
use aldfit::synth;

fn gpu() -> Option<Gpu> {
    match Gpu::new(true) {
        Ok(g) => {
            eprintln!("wgpu adapter: {}", g.describe());
            Some(g)
        }
        Err(e) if common::required("wgpu") => {
            panic!("a wgpu adapter is required (ALDFIT_REQUIRE_BACKENDS) but: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
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
