//! One body per property, run on every backend this machine has (see common::backends), each
//! against the f64 reference in src/ald.rs under the docs/DESIGN.md section 4 contract.

mod common;

use aldfit::ald::{self, AldParams};
use aldfit::analysis::{self, Options};
use aldfit::backend::{
    Backend, BackendInfo, Benchmarked, ReplicateRow, Segment, SegmentStats, Side, SortedSegment,
};
use aldfit::head::Head;
use aldfit::synth;
use aldfit::tolerances::{self, Measurement};
use aldfit::validate;
use common::{backends, rng};
use rand::Rng;

fn assert_clean(backend: &str, what: &str, measured: &[Measurement]) {
    let bad = tolerances::violations(measured);
    assert!(
        bad.is_empty(),
        "{backend}: {what}: {}",
        bad.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
}

fn full_rows(rows: usize, cols: usize) -> Vec<Segment> {
    (0..rows).map(|r| Segment::new(r, 0, cols)).collect()
}

/// Every primitive against the reference, through the checks `aldfit validate` runs (one
/// harness): exact sorts with feature indices, exact partition points, fit, KS and baselines of
/// whole rows and of random sub-segments (separate and fused), the study's lines, Vuong's sums,
/// NLL + gradient at the fit, and split trees node for node against the CPU's, on rows built to
/// be nasty at widths on both sides of a GPU's workgroup tile.
#[test]
fn every_primitive_meets_the_contract_on_nasty_rows() {
    let sets: Vec<validate::Dataset> = [3usize, 17, 1280, 2049, 4099]
        .into_iter()
        .map(|cols| validate::nasty(2 * synth::NASTY_KINDS.len(), cols))
        .collect();
    for (name, mut b) in backends() {
        for set in &sets {
            let measured = validate::run(b.as_mut(), set).unwrap();
            for kernel in [
                "sort",
                "partition",
                "fit",
                "ks",
                "baselines",
                "study_line",
                "loglik",
            ] {
                assert!(
                    measured.iter().any(|m| m.kernel == kernel),
                    "{kernel} unchecked"
                );
            }
            assert_clean(&name, &set.name, &measured);
        }
    }
}

#[test]
fn upload_then_sort_is_load_sorted_and_keeps_the_upload() {
    let cols = 1000;
    let values = synth::nasty_head(8, cols, 12);
    let other = synth::nasty_head(8, cols, 13);
    for (name, mut b) in backends() {
        assert!(b.sort_uploaded(false).is_err(), "{name}: sorted nothing");
        b.load_sorted(&values, cols, true).unwrap();
        let want = b.read_sorted(&full_rows(8, cols)).unwrap();
        b.upload(&values, cols).unwrap();
        b.sort_uploaded(true).unwrap();
        assert_eq!(b.read_sorted(&full_rows(8, cols)).unwrap(), want, "{name}");
        // Sorting again starts from the unsorted upload, not from the sorted chunk.
        b.load_sorted(&other, cols, true).unwrap();
        b.upload(&values, cols).unwrap();
        b.sort_uploaded(true).unwrap();
        b.sort_uploaded(true).unwrap();
        assert_eq!(b.read_sorted(&full_rows(8, cols)).unwrap(), want, "{name}");
        let bw = b.copy_bandwidth(8 << 20).unwrap();
        assert!(
            bw.is_finite() && bw > 1e8,
            "{name}: copy bandwidth {bw} B/s"
        );
    }
}

/// Every backend says what its device holds; the GPUs' sort tile is what their sort uses.
#[test]
fn every_backend_reports_its_limits() {
    for (name, b) in backends() {
        let l = b.limits();
        assert_eq!(b.info().limits, l, "{name}");
        match name.as_str() {
            "cpu" => assert!(l.chunk_values.is_some_and(|v| v > 0), "{name}: {l:?}"),
            _ => {
                assert!(l.sort_tile.is_some_and(|t| t >= 256), "{name}: {l:?}");
                assert!(l.max_binding_bytes.is_some_and(|b| b > 0), "{name}: {l:?}");
            }
        }
    }
}

#[test]
fn design_counterexample_on_every_backend() {
    let xs = [6.1f32, -4.3, 5.9, -6.9, -3.5];
    for (name, mut b) in backends() {
        b.load_sorted(&xs, 5, false).unwrap();
        let fit = b.fit(&full_rows(1, 5)).unwrap()[0];
        assert_eq!(fit.params.loc, 5.9f32 as f64, "{name}");
    }
}

#[test]
fn nll_and_gradient_reduction_meet_the_contract() {
    let cols = 4096;
    let (values, truth) = synth::ald_head(16, cols, 3);
    let mut r = rng(3);
    // At the truth, and away from it where the gradient is large.
    let params: Vec<AldParams> = truth
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                *p
            } else {
                AldParams {
                    loc: p.loc + r.random_range(-0.05..0.05),
                    ..synth::random_params(&mut r)
                }
            }
        })
        .collect();
    for (name, mut b) in backends() {
        let got = b.nll_grad(&values, cols, &params).unwrap();
        // The same rows uploaded first (as benchmarks time it): the same sums, whatever the
        // order the device reduces them in.
        b.upload(&values, cols).unwrap();
        let uploaded = b.nll_grad_uploaded(&params).unwrap();
        for (i, (a, u)) in got.iter().zip(&uploaded).enumerate() {
            let mut v = Vec::new();
            let terms = tolerances::GradTerms::of(
                &ald::TailSums::of(&values[i * cols..(i + 1) * cols], params[i].loc),
                &params[i],
            );
            tolerances::check_nll_grad(u, a, &terms, &mut v);
            assert_clean(&name, &format!("uploaded row {i}"), &v);
        }
        assert!(
            b.nll_grad_uploaded(&params[1..]).is_err(),
            "{name}: row count not checked"
        );
        for (i, row) in values.chunks(cols).enumerate() {
            let mut v = Vec::new();
            let sums = ald::TailSums::of(row, params[i].loc);
            let terms = tolerances::GradTerms::of(&sums, &params[i]);
            tolerances::check_nll_grad(
                &got[i],
                &ald::NllGrad::from_sums(&sums, &params[i]),
                &terms,
                &mut v,
            );
            assert_clean(&name, &format!("row {i}"), &v);
        }
    }
}

#[test]
fn parameter_recovery_through_the_pipeline() {
    let (classes, cols) = (200, 4096);
    let (values, truth) = synth::ald_head(classes, cols, 21);
    let head = Head::from_f32("synthetic", classes, cols, &values).unwrap();
    for (name, mut b) in backends() {
        let a =
            analysis::analyse(&head, &[], b.as_mut(), &Options::default(), &mut |_| {}).unwrap();
        let mut ek: Vec<f64> = a
            .classes
            .iter()
            .zip(&truth)
            .map(|(c, p)| (c.stats.fit.params.kappa / p.kappa - 1.0).abs())
            .collect();
        let mut es: Vec<f64> = a
            .classes
            .iter()
            .zip(&truth)
            .map(|(c, p)| (c.stats.fit.params.scale / p.scale - 1.0).abs())
            .collect();
        ek.sort_by(f64::total_cmp);
        es.sort_by(f64::total_cmp);
        assert!(
            ek[classes / 2] < 0.02,
            "{name}: median relative error of κ {}",
            ek[classes / 2]
        );
        assert!(
            es[classes / 2] < 0.02,
            "{name}: median relative error of s {}",
            es[classes / 2]
        );
        // The ALD is the true model here: AIC should pick it for most rows.
        let ald_wins = a
            .classes
            .iter()
            .filter(|c| c.aic_best() == Some(ald::Model::Ald))
            .count();
        assert!(
            ald_wins > classes * 8 / 10,
            "{name}: ALD won only {ald_wins} of {classes}"
        );
    }
}

/// Delegates to a backend but caps the chunk size, to drive the pipeline through many chunks.
/// It does not forward `summarise_rows`, so it also runs the trait's default composition of the
/// primitives, which must give exactly what a backend's fused version gives.
struct SmallChunks<'a>(&'a mut dyn Backend, usize);

impl Backend for SmallChunks<'_> {
    fn info(&self) -> BackendInfo {
        self.0.info()
    }
    fn limits(&self) -> aldfit::backend::Limits {
        self.0.limits()
    }
    fn max_chunk_rows(&self, cols: usize) -> usize {
        self.0.max_chunk_rows(cols).min(self.1)
    }
    fn upload(&mut self, rows: &[f32], cols: usize) -> aldfit::Result<()> {
        self.0.upload(rows, cols)
    }
    fn sort_uploaded(&mut self, ix: bool) -> aldfit::Result<()> {
        self.0.sort_uploaded(ix)
    }
    fn load_sorted(&mut self, rows: &[f32], cols: usize, ix: bool) -> aldfit::Result<()> {
        self.0.load_sorted(rows, cols, ix)
    }
    fn load_sorted_owned(
        &mut self,
        rows: &mut Vec<f32>,
        cols: usize,
        ix: bool,
    ) -> aldfit::Result<()> {
        self.0.load_sorted_owned(rows, cols, ix)
    }
    fn partition_points(
        &mut self,
        s: &[Segment],
        p: &[f32],
        strict: bool,
    ) -> aldfit::Result<Vec<u32>> {
        self.0.partition_points(s, p, strict)
    }
    fn fit(&mut self, s: &[Segment]) -> aldfit::Result<Vec<ald::AldFit>> {
        self.0.fit(s)
    }
    fn ks(&mut self, s: &[Segment], p: &[AldParams]) -> aldfit::Result<Vec<f64>> {
        self.0.ks(s, p)
    }
    fn baselines(&mut self, s: &[Segment]) -> aldfit::Result<Vec<ald::Baselines>> {
        self.0.baselines(s)
    }
    fn study_line(&mut self, s: &[Segment], side: Side) -> aldfit::Result<Vec<ald::StudyLine>> {
        self.0.study_line(s, side)
    }
    fn segment_stats(&mut self, s: &[Segment]) -> aldfit::Result<Vec<SegmentStats>> {
        self.0.segment_stats(s)
    }
    fn read_sorted(&mut self, s: &[Segment]) -> aldfit::Result<Vec<SortedSegment>> {
        self.0.read_sorted(s)
    }
    fn nll_grad(
        &mut self,
        r: &[f32],
        c: usize,
        p: &[AldParams],
    ) -> aldfit::Result<Vec<ald::NllGrad>> {
        self.0.nll_grad(r, c, p)
    }
    fn generate(&mut self, rows: &[ReplicateRow], cols: usize, seed: u64) -> aldfit::Result<()> {
        self.0.generate(rows, cols, seed)
    }
    fn philox(&mut self, key: [u32; 2], c: &[[u32; 4]]) -> aldfit::Result<Vec<[u32; 4]>> {
        self.0.philox(key, c)
    }
    fn loglik_diff(
        &mut self,
        s: &[Segment],
        a: &[AldParams],
        g: &[(f64, f64)],
    ) -> aldfit::Result<Vec<ald::LogLikDiff>> {
        self.0.loglik_diff(s, a, g)
    }
}

impl Benchmarked for SmallChunks<'_> {
    fn synchronize(&mut self) -> aldfit::Result<()> {
        self.0.synchronize()
    }
    fn nll_grad_uploaded(&mut self, p: &[AldParams]) -> aldfit::Result<Vec<ald::NllGrad>> {
        self.0.nll_grad_uploaded(p)
    }

    fn copy_bandwidth(&mut self, bytes: usize) -> aldfit::Result<f64> {
        self.0.copy_bandwidth(bytes)
    }
}

#[test]
fn chunked_runs_equal_a_single_chunk() {
    let (classes, cols) = (101, 333);
    let values = synth::nasty_head(classes, cols, 99);
    let head = Head::from_f32("nasty", classes, cols, &values).unwrap();
    for (name, mut b) in backends() {
        let whole =
            analysis::analyse(&head, &[], b.as_mut(), &Options::default(), &mut |_| {}).unwrap();
        let mut chunks_seen = Vec::new();
        let mut small = SmallChunks(b.as_mut(), 7);
        let split = analysis::analyse(&head, &[], &mut small, &Options::default(), &mut |d| {
            chunks_seen.push(d)
        })
        .unwrap();
        assert_eq!(split.chunks, 15, "{name}");
        assert_eq!(chunks_seen.last(), Some(&classes));
        for (k, (a, b)) in whole.classes.iter().zip(&split.classes).enumerate() {
            // Bitwise equal, NaNs included: chunking must not change a single result.
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name}: class {k}");
        }
        assert_eq!(format!("{:?}", whole.pooled), format!("{:?}", split.pooled));
    }
}

#[test]
fn nonfinite_rows_fail_with_the_class_or_are_flagged_and_skipped() {
    let (classes, cols) = (12, 50);
    let (mut values, _) = synth::ald_head(classes, cols, 1);
    values[5 * cols + 7] = f32::NAN;
    values[9 * cols + 3] = f32::INFINITY;
    let head = Head::from_f32("bad", classes, cols, &values).unwrap();
    let labels: Vec<String> = (0..classes).map(|k| format!("label{k}")).collect();
    for (name, mut b) in backends() {
        let err = analysis::analyse(&head, &labels, b.as_mut(), &Options::default(), &mut |_| {})
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("class 5 (label5)")
                && msg.contains("feature 7")
                && msg.contains("--skip-nonfinite"),
            "{name}: {msg}"
        );
        let opts = Options {
            skip_nonfinite: true,
            ..Options::default()
        };
        let a = analysis::analyse(&head, &labels, b.as_mut(), &opts, &mut |_| {}).unwrap();
        for k in 0..classes {
            let skipped = k == 5 || k == 9;
            assert_eq!(a.classes[k].nonfinite, skipped, "{name}: class {k}");
            assert_eq!(
                a.classes[k].stats.fit.params.kappa.is_nan(),
                skipped,
                "{name}: class {k}"
            );
        }
        // The pooled fit leaves the skipped rows out.
        let kept: Vec<f32> = values
            .chunks(cols)
            .enumerate()
            .filter(|(k, _)| *k != 5 && *k != 9)
            .flat_map(|(_, r)| r.to_vec())
            .collect();
        let (p, n) = ald::study_line_pooled(kept);
        assert_eq!(a.pooled.unwrap().0.count, p.count);
        assert_eq!(a.pooled.unwrap().1.count, n.count);
    }
}

#[test]
fn degenerate_rows_are_flagged_never_a_crash() {
    let cols = 64;
    let mut values = vec![0f32; 4 * cols];
    values[cols..2 * cols].fill(3.5); // constant
    for (i, v) in values[2 * cols..3 * cols].iter_mut().enumerate() {
        *v = if i % 2 == 0 { -1.0 } else { 1.0 }; // two values
    }
    for (i, v) in values[3 * cols..].iter_mut().enumerate() {
        *v = (i % 3) as f32; // three values: fittable
    }
    let head = Head::from_f32("degenerate", 4, cols, &values).unwrap();
    for (name, mut b) in backends() {
        let a =
            analysis::analyse(&head, &[], b.as_mut(), &Options::default(), &mut |_| {}).unwrap();
        for k in 0..3 {
            let c = &a.classes[k];
            assert!(c.stats.fit.degenerate, "{name}: class {k}");
            assert!(
                c.stats.fit.params.loc.is_nan() && c.stats.ks.is_nan(),
                "{name}: class {k}"
            );
        }
        assert!(!a.classes[3].stats.fit.degenerate, "{name}");
        assert_eq!(a.classes[0].zeros, cols);
        assert_eq!(a.classes[3].zeros, 22);
    }
}

/// Rows at the ends of f32's range (subnormal scale, largest |value| 3e38): a backend gets
/// them right under the contract, or refuses them naming the row; it never answers wrong. The
/// CPU (f64) must get them right.
#[test]
fn extreme_rows_are_right_or_refused() {
    let set = validate::extremes(2 * synth::EXTREME_KINDS.len(), 257);
    for (name, mut b) in backends() {
        match validate::run(b.as_mut(), &set) {
            Ok(measured) => {
                assert!(
                    measured.iter().any(|m| m.kernel == "fit"),
                    "{name}: fit unchecked"
                );
                assert_clean(&name, &set.name, &measured);
            }
            Err(e @ aldfit::Error::Magnitude { .. }) => {
                assert_ne!(name, "cpu", "the f64 reference backend refused: {e}");
                let msg = e.to_string();
                assert!(
                    msg.starts_with("row 0:") && msg.contains("--backend cpu"),
                    "{msg}"
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
        // Rows of ordinary scale are still taken after a refusal.
        let ok = validate::nasty(synth::NASTY_KINDS.len(), 33);
        assert_clean(&name, &ok.name, &validate::run(b.as_mut(), &ok).unwrap());
    }
}

/// Without the joint fit an f32 head is read, checked and sorted in one pass from the file
/// (`Backend::summarise_rows_from`); with it, through the chunk buffer. Both give the same
/// classes bit for bit, and the same errors and skipped rows, whichever end of the rows' order
/// the non-finite value sorts to (a NaN with its sign bit set sorts first, one without last).
#[test]
fn the_fused_read_pass_equals_the_read_then_sort_pass() {
    let (classes, cols) = (40, 300);
    let (clean, _) = synth::ald_head(classes, cols, 3);
    let negative_nan = f32::from_bits(0xffc0_0000);
    let mut bad = clean.clone();
    bad[3 * cols + 11] = negative_nan;
    bad[17 * cols + 250] = f32::NEG_INFINITY;
    bad[30 * cols] = f32::NAN;
    for (values, skip, flagged) in [
        (&clean, false, vec![]),
        (&bad, true, vec![3, 17, 30]),
        (&bad, false, vec![]),
    ] {
        let head = Head::from_f32("h", classes, cols, values).unwrap();
        for (name, mut b) in backends() {
            let run = |b: &mut dyn aldfit::backend::Backend, pooled: bool| {
                let opts = Options {
                    skip_nonfinite: skip,
                    pooled,
                };
                analysis::analyse(&head, &[], b, &opts, &mut |_| {})
            };
            let (fused, read) = (run(b.as_mut(), false), run(b.as_mut(), true));
            match (fused, read) {
                (Ok(f), Ok(r)) => {
                    // The fused pass ran (it times itself under its own name).
                    let timed =
                        |a: &analysis::Analysis, n: &str| a.timings.0.iter().any(|t| t.0 == n);
                    assert!(
                        timed(&f, "read+sort+fit+lines") && timed(&r, "read+pool"),
                        "{name}"
                    );
                    for (k, (x, y)) in f.classes.iter().zip(&r.classes).enumerate() {
                        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{name}: class {k}");
                    }
                    let skipped: Vec<usize> =
                        (0..classes).filter(|&k| f.classes[k].nonfinite).collect();
                    assert_eq!(skipped, flagged, "{name}");
                }
                (Err(f), Err(r)) => {
                    assert_eq!(f.to_string(), r.to_string(), "{name}");
                    assert!(
                        f.to_string().contains("class 3") && f.to_string().contains("feature 11"),
                        "{f}"
                    );
                }
                (f, r) => panic!("{name}: fused {:?} against read {:?}", f.err(), r.err()),
            }
        }
    }
}
