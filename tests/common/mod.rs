//! Shared test helpers: the backends to run every property on, and seeded data.
#![allow(dead_code)]

use aldfit::ald::AldParams;
use aldfit::backend::{self, Backend, BackendKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Every backend this build and machine can run, by name. A backend listed in
/// `ALDFIT_REQUIRE_BACKENDS` (comma-separated) that cannot be created fails the test instead of
/// being skipped; otherwise a missing one is skipped with a printed reason.
/// Whether `ALDFIT_REQUIRE_BACKENDS` (comma-separated) lists `name`.
pub fn required(name: &str) -> bool {
    std::env::var("ALDFIT_REQUIRE_BACKENDS")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim().eq_ignore_ascii_case(name))
}

/// Skips what needs `what` (a backend, `nvrtc`, or `data` for the real heads beside the checkout)
/// because of `reason`: a failure when `ALDFIT_REQUIRE_BACKENDS` lists `what`, otherwise a printed
/// reason, recorded for the closing line of `cargo test` (tests/zz_skipped.rs).
pub fn skip(what: &str, reason: &str) {
    if required(what) {
        panic!("{what} is required (ALDFIT_REQUIRE_BACKENDS) but unavailable: {reason}");
    }
    eprintln!("skipping {what}: {reason}");
    use std::io::Write;
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(SKIP_LOG);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let reason = reason.replace(['\t', '\n'], " ");
        let _ = writeln!(f, "{what}\t{reason}");
    }
}

/// Where skipped tests leave their reasons for tests/zz_skipped.rs.
pub const SKIP_LOG: &str = "aldfit-skipped.tsv";

/// A real head from `../shared/data` (beside the checkout in CI), or `None` with the skip
/// recorded.
pub fn shared_data(name: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        skip("data", &format!("{} is not here", p.display()));
        None
    }
}

pub fn backends() -> Vec<(String, Box<dyn Backend>)> {
    let mut out: Vec<(String, Box<dyn Backend>)> = Vec::new();
    let mut add = |name: &str, made: aldfit::Result<Box<dyn Backend>>| match made {
        Ok(b) => out.push((name.to_owned(), b)),
        Err(e) => skip(name, &e.to_string()),
    };
    add("cpu", backend::create(BackendKind::Cpu));
    // Asked for by name, wgpu takes any adapter, software ones (lavapipe) included.
    add("wgpu", backend::create(BackendKind::Wgpu));
    add("cuda", backend::create(BackendKind::Cuda));
    out
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A row drawn from a mixture of two ALDs far apart: several local minima of the objective.
pub fn mixture_row(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let a = AldParams::new(
        rng.random_range(-2.0..-0.5),
        rng.random_range(0.1..0.5),
        rng.random_range(0.5..2.0),
    );
    let b = AldParams::new(
        rng.random_range(0.5..2.0),
        rng.random_range(0.1..0.5),
        rng.random_range(0.5..2.0),
    );
    let w: f64 = rng.random_range(0.2..0.8);
    (0..n)
        .map(|_| {
            let p = if rng.random::<f64>() < w { &a } else { &b };
            p.sample(rng, 1)[0] as f32
        })
        .collect()
}

pub fn sorted(mut v: Vec<f32>) -> Vec<f32> {
    v.sort_by(f32::total_cmp);
    v
}

/// `|a − b| <= tol` treating two NaNs as equal.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol
}

/// Runs the `aldfit` binary of this build.
pub fn aldfit(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(args)
        .output()
        .expect("run aldfit")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The run failed, no panic reached the user, and stderr says each of `needles`.
pub fn assert_fails(out: &std::process::Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "a panic reached the user: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}
