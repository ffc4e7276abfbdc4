//! The f64 reference (src/ald.rs) against independent oracles: brute force, grid search,
//! finite differences, hand-computed values.

mod common;

use aldfit::ald::{self, AldParams, StudyLine, TailSums};
use common::{mixture_row, rng, sorted};
use rand::Rng;

/// NLL(μ) profiled over κ and s, straight from the definition (O(n) per μ).
fn profile_nll(xs: &[f32], mu: f64) -> f64 {
    let t = TailSums::of(xs, mu);
    if t.above <= 0.0 || t.below <= 0.0 {
        return f64::INFINITY;
    }
    ald::profile(t.above, t.below, xs.len()).2
}

/// The argmin over every interior order statistic, evaluated directly: O(n²).
fn brute_force_fit(xs: &[f32]) -> Option<(usize, f64)> {
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    let mut best: Option<(usize, f64)> = None;
    for (j, &x) in xs.iter().enumerate() {
        if x == lo || x == hi {
            continue;
        }
        let nll = profile_nll(xs, x as f64);
        if best.is_none_or(|(_, b)| nll < b) {
            best = Some((j, nll));
        }
    }
    best
}

#[test]
fn design_counterexample_optimum_at_5_9_where_local_search_stops_at_minus_4_3() {
    let xs = [-6.9f32, -4.3, -3.5, 5.9, 6.1];
    let fit = ald::fit_sorted(&xs);
    assert_eq!(fit.params.loc, 5.9f32 as f64);
    // −4.3 is a strict local minimum among the interior candidates, and worse than 5.9.
    let at = |m: f32| profile_nll(&xs, m as f64);
    assert!(at(-4.3) < at(-3.5), "−4.3 should be a local minimum");
    assert!(at(5.9) < at(-4.3), "5.9 should beat −4.3");
    assert!((fit.nll - at(5.9)).abs() < 1e-12);
}

#[test]
fn exact_fit_matches_brute_force_over_order_statistics() {
    let mut r = rng(1);
    for case in 0..300 {
        // Mostly short rows; every 25th long enough for many pruning blocks.
        let n = if case % 25 == 0 {
            3000
        } else {
            r.random_range(3..400)
        };
        let xs = if case % 2 == 0 {
            sorted(mixture_row(&mut r, n))
        } else {
            // Coarse values: many ties.
            sorted(
                (0..n)
                    .map(|_| (r.random_range(-8i32..9) as f32) * 0.25)
                    .collect(),
            )
        };
        let fit = ald::fit_sorted(&xs);
        match brute_force_fit(&xs) {
            None => assert!(fit.degenerate, "case {case}: expected degenerate"),
            Some((j, nll)) => {
                assert!(!fit.degenerate);
                assert!(
                    fit.nll <= nll + 1e-9 * nll.abs(),
                    "case {case}: fit {} worse than brute force {nll}",
                    fit.nll
                );
                // Same μ (first of its ties) unless two candidates tie to rounding.
                if (profile_nll(&xs, xs[j] as f64) - profile_nll(&xs, fit.params.loc)).abs()
                    > 1e-9 * nll.abs()
                {
                    panic!("case {case}: μ {} vs brute force {}", fit.params.loc, xs[j]);
                }
                assert_eq!(xs[fit.index.unwrap()] as f64, fit.params.loc);
                assert!(
                    fit.index.unwrap() == 0 || xs[fit.index.unwrap() - 1] < xs[fit.index.unwrap()]
                );
            }
        }
    }
}

#[test]
fn exact_fit_is_never_beaten_by_a_dense_grid_over_mu() {
    let mut r = rng(2);
    for case in 0..100 {
        let xs = sorted(mixture_row(&mut r, 300));
        let fit = ald::fit_sorted(&xs);
        let (lo, hi) = (xs[0] as f64, xs[xs.len() - 1] as f64);
        let grid_best = (0..=20_000)
            .map(|i| profile_nll(&xs, lo + (hi - lo) * i as f64 / 20_000.0))
            .fold(f64::INFINITY, f64::min);
        assert!(
            fit.nll <= grid_best + 1e-9 * grid_best.abs(),
            "case {case}: grid found {grid_best} < exact {}",
            fit.nll
        );
    }
}

#[test]
fn mixtures_have_several_local_minima_and_the_fit_finds_the_global_one() {
    // The premise of the full scan: count rows whose profile has more than one local minimum.
    let mut r = rng(3);
    let mut multi = 0;
    for _ in 0..100 {
        let xs = sorted(mixture_row(&mut r, 200));
        let nll: Vec<f64> = xs[1..xs.len() - 1]
            .iter()
            .map(|&x| profile_nll(&xs, x as f64))
            .collect();
        let minima = (1..nll.len() - 1)
            .filter(|&i| nll[i] < nll[i - 1] && nll[i] < nll[i + 1])
            .count();
        if minima > 1 {
            multi += 1;
        }
        let best = nll.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!((ald::fit_sorted(&xs).nll - best).abs() <= 1e-9 * best.abs());
    }
    assert!(
        multi >= 20,
        "only {multi} of 100 mixture rows had several local minima"
    );
}

#[test]
fn parameter_recovery_on_seeded_ald_rows() {
    // 200 rows × 4096 from known ALDs: median relative errors of κ and s of a few percent.
    let (values, truth) = aldfit::synth::ald_head(200, 4096, 7);
    let mut ek = Vec::new();
    let mut es = Vec::new();
    let mut em = Vec::new();
    for (row, p) in values.chunks(4096).zip(&truth) {
        let fit = ald::fit_sorted(&sorted(row.to_vec()));
        ek.push((fit.params.kappa / p.kappa - 1.0).abs());
        es.push((fit.params.scale / p.scale - 1.0).abs());
        em.push((fit.params.loc - p.loc).abs() / p.scale);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mk, ms, mm) = (med(&mut ek), med(&mut es), med(&mut em));
    assert!(mk < 0.02, "median relative error of κ {mk}");
    assert!(ms < 0.02, "median relative error of s {ms}");
    assert!(mm < 0.03, "median error of μ {mm} (in units of s)");
}

#[test]
fn gradient_matches_finite_differences_and_vanishes_at_the_fit() {
    let mut r = rng(4);
    for _ in 0..20 {
        let xs: Vec<f32> = AldParams::new(0.1, 0.7, 1.4)
            .sample(&mut r, 501)
            .iter()
            .map(|&x| x as f32)
            .collect();
        let p = AldParams::new(
            r.random_range(-0.3..0.3),
            r.random_range(0.3..1.5),
            r.random_range(0.5..2.0),
        );
        let g = ald::nll_grad(&xs, &p);
        // Direct sum of −log pdf: an independent evaluation of the NLL.
        let direct: f64 = xs.iter().map(|&x| -p.log_pdf(x as f64)).sum();
        assert!((g.nll - direct).abs() < 1e-10 * direct.abs());
        let h = 1e-6;
        let num = |f: &dyn Fn(f64) -> AldParams, v: f64| {
            (ald::nll_grad(&xs, &f(v + h)).nll - ald::nll_grad(&xs, &f(v - h)).nll) / (2.0 * h)
        };
        let ds = num(&|s| AldParams { scale: s, ..p }, p.scale);
        let dk = num(&|k| AldParams { kappa: k, ..p }, p.kappa);
        assert!(
            (g.d_scale - ds).abs() < 1e-5 * ds.abs().max(1.0),
            "{} vs {ds}",
            g.d_scale
        );
        assert!(
            (g.d_kappa - dk).abs() < 1e-5 * dk.abs().max(1.0),
            "{} vs {dk}",
            g.d_kappa
        );
        // μ away from every data point: the NLL is differentiable there.
        let dl = num(&|m| AldParams { loc: m, ..p }, p.loc);
        assert!(
            (g.d_loc - dl).abs() < 1e-4 * dl.abs().max(1.0),
            "{} vs {dl}",
            g.d_loc
        );
    }
    let xs = sorted(
        AldParams::new(0.0, 1.0, 0.8)
            .sample(&mut r, 1000)
            .iter()
            .map(|&x| x as f32)
            .collect(),
    );
    let fit = ald::fit_sorted(&xs);
    let g = ald::nll_grad(&xs, &fit.params);
    assert!(g.d_scale.abs() < 1e-8 && g.d_kappa.abs() < 1e-8, "{g:?}");
}

/// sup |F_n − F| by the definition: at each distinct value, the ECDF just below and at it.
fn brute_force_ks(xs: &[f32], p: &AldParams) -> f64 {
    let n = xs.len() as f64;
    let mut d: f64 = 0.0;
    for &v in xs {
        let below = xs.iter().filter(|&&x| x < v).count() as f64 / n;
        let at = xs.iter().filter(|&&x| x <= v).count() as f64 / n;
        let f = p.cdf(v as f64);
        d = d.max((f - below).abs()).max((at - f).abs());
    }
    d
}

#[test]
fn ks_matches_brute_force_with_and_without_ties() {
    let mut r = rng(5);
    for case in 0..50 {
        let n = r.random_range(5..300);
        let xs = if case % 2 == 0 {
            sorted(mixture_row(&mut r, n))
        } else {
            sorted(
                (0..n)
                    .map(|_| r.random_range(-5i32..6) as f32 * 0.5)
                    .collect(),
            )
        };
        let p = AldParams::new(
            r.random_range(-1.0..1.0),
            r.random_range(0.2..2.0),
            r.random_range(0.4..2.5),
        );
        let (a, b) = (ald::ks_sorted(&xs, &p), brute_force_ks(&xs, &p));
        assert!((a - b).abs() < 1e-12, "case {case}: {a} vs {b}");
    }
}

#[test]
fn baselines_match_their_definitions() {
    let xs = [-2.0f32, -1.0, 0.5, 3.0];
    let b = ald::baselines_sorted(&xs);
    let mean = 0.5f64 / 4.0;
    let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / 4.0;
    assert!((b.mean - mean).abs() < 1e-15);
    assert!((b.var - var).abs() < 1e-14);
    assert_eq!(b.median, -0.25);
    let mad = (1.75 + 0.75 + 0.75 + 3.25) / 4.0;
    assert!((b.mad - mad).abs() < 1e-15);
    let g = 2.0 * (2.0 * std::f64::consts::PI * var).ln() + 2.0;
    assert!((b.nll_gauss - g).abs() < 1e-13);
    assert!((b.nll_laplace - 4.0 * ((2.0 * mad).ln() + 1.0)).abs() < 1e-13);
    // Constant rows have no Gaussian or Laplace fit either.
    let c = ald::baselines_sorted(&[1.0; 8]);
    assert!(c.nll_gauss.is_nan() && c.nll_laplace.is_nan());
}

#[test]
fn seed_line_on_a_hand_computed_example() {
    // t = ln P = [0, 1, 3] at u = [0, 1/3, 2/3]: a = 9/2, b = −1/6, R² = 27/28.
    let pos = [1.0f32, std::f32::consts::E, 3f32.exp()];
    let l = ald::study_line_positive_sorted(&pos);
    assert_eq!(l.count, 3);
    assert!((l.slope - 4.5).abs() < 1e-6, "{l:?}");
    assert!((l.intercept + 1.0 / 6.0).abs() < 1e-6, "{l:?}");
    assert!((l.r2 - 27.0 / 28.0).abs() < 1e-6, "{l:?}");
    // The negative part is N = −x ascending: the same line from the mirrored prefix.
    let neg = [-(3f32.exp()), -std::f32::consts::E, -1.0];
    let m = ald::study_line_negative_sorted(&neg);
    assert!((m.slope - l.slope).abs() < 1e-12 && (m.r2 - l.r2).abs() < 1e-12);
    // Fewer than 3 values: no line.
    assert!(ald::study_line_positive_sorted(&[1.0, 2.0]).r2.is_nan());
}

#[test]
fn seed_line_matches_textbook_least_squares() {
    let mut r = rng(6);
    let pos = sorted((0..777).map(|_| r.random_range(1e-4f32..0.3)).collect());
    let l = ald::study_line_positive_sorted(&pos);
    let n = pos.len() as f64;
    let (u, t): (Vec<f64>, Vec<f64>) = pos
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as f64 / n, (x as f64).ln()))
        .unzip();
    let (mu, mt) = (u.iter().sum::<f64>() / n, t.iter().sum::<f64>() / n);
    let sxy: f64 = u.iter().zip(&t).map(|(a, b)| (a - mu) * (b - mt)).sum();
    let sxx: f64 = u.iter().map(|a| (a - mu).powi(2)).sum();
    let a = sxy / sxx;
    let b = mt - a * mu;
    let ss_res: f64 = u.iter().zip(&t).map(|(x, y)| (y - a * x - b).powi(2)).sum();
    let ss_tot: f64 = t.iter().map(|y| (y - mt).powi(2)).sum();
    assert!((l.slope - a).abs() < 1e-9 * a.abs());
    assert!((l.intercept - b).abs() < 1e-9 * b.abs().max(1.0));
    assert!((l.r2 - (1.0 - ss_res / ss_tot)).abs() < 1e-10);
}

#[test]
fn seed_lines_take_exact_logs_of_every_magnitude() {
    // The seed lines' logs come from a table and a series (`logsum`), not libm: against libm's
    // logs on magnitudes over 40 octaves, with subnormals (libm's path) leading in magnitude
    // order, and every length so that each lane and the padded tail are exercised.
    let mut r = rng(9);
    let mut mags: Vec<f32> = (0..3000)
        .map(|i| {
            if i % 250 == 0 {
                f32::from_bits(r.random_range(1..0x007f_ffff))
            } else {
                r.random_range(1.0f32..2.0) * 2f32.powi(r.random_range(-30..10))
            }
        })
        .collect();
    mags.sort_by(f32::total_cmp);
    for n in [3usize, 4, 5, 6, 7, 8, 61, 3000] {
        let pos = &mags[mags.len() - n..];
        let neg: Vec<f32> = pos.iter().rev().map(|&x| -x).collect();
        let want = StudyLine::from_logs(pos.iter().map(|&x| (x as f64).ln()));
        for got in [
            ald::study_line_positive_sorted(pos),
            ald::study_line_negative_sorted(&neg),
        ] {
            assert_eq!(got.count, n);
            assert!(
                (got.slope - want.slope).abs() <= 1e-12 * want.slope.abs().max(1.0)
                    && (got.intercept - want.intercept).abs()
                        <= 1e-12 * want.intercept.abs().max(1.0)
                    && (got.r2 - want.r2).abs() <= 1e-12,
                "n {n}: {got:?} vs {want:?}"
            );
        }
    }
    // All subnormal: libm's path only.
    let tiny: Vec<f32> = (1..50u32).map(|i| f32::from_bits(i * 1001)).collect();
    let want = StudyLine::from_logs(tiny.iter().map(|&x| (x as f64).ln()));
    let got = ald::study_line_positive_sorted(&tiny);
    assert!((got.slope - want.slope).abs() <= 1e-12 * want.slope.abs());
}

#[test]
fn pooled_seed_fit_sorts_every_weight_of_the_matrix() {
    let mut r = rng(8);
    // Many buckets and parts: magnitudes over 30 octaves, exact zeros, repeated values.
    let values: Vec<f32> = (0..200_000)
        .map(|i| {
            if i % 97 == 0 {
                if i % 2 == 0 {
                    0.0
                } else {
                    -0.0
                }
            } else if i % 101 == 0 {
                // Subnormals, which take the plain log.
                f32::from_bits(r.random_range(1..0x007f_ffff)) * if i % 2 == 0 { 1.0 } else { -1.0 }
            } else if i % 89 == 0 {
                -0.125
            } else {
                r.random_range(-1.0f32..1.0) * 2f32.powi(r.random_range(-20..10))
            }
        })
        .collect();
    let (p, n) = ald::study_line_pooled(values.iter().copied());
    let pos = sorted(values.iter().copied().filter(|&x| x > 0.0).collect());
    let neg = sorted(values.iter().copied().filter(|&x| x < 0.0).collect());
    let want_p = StudyLine::from_logs(pos.iter().map(|&x| (x as f64).ln()));
    let want_n = StudyLine::from_logs(neg.iter().rev().map(|&x| (-(x as f64)).ln()));
    assert_eq!(
        p.count + n.count,
        200_000 - values.iter().filter(|&&x| x == 0.0).count()
    );
    // Pooled row by row from many threads at once (as the analysis feeds it while reading),
    // in another order: bitwise the same.
    let mut pools = ald::JointPools::default();
    {
        use rayon::prelude::*;
        values.par_rchunks(1_001).for_each(|row| pools.extend(row));
    }
    assert_eq!(pools.len(), p.count + n.count);
    assert_eq!(pools.lines(), (p, n));
    // Same order, sums taken in another order (blocks, another shift): rounding only.
    for (a, b) in [(p, want_p), (n, want_n)] {
        assert!(
            (a.slope - b.slope).abs() < 1e-11 * b.slope.abs() && (a.r2 - b.r2).abs() < 1e-11,
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn boundary_flag_on_one_sided_samples() {
    // Exponential data: the supremum sits at the minimum (B = 0), not at an interior point.
    let mut r = rng(9);
    let xs = sorted(
        (0..2000)
            .map(|_| -(r.random::<f64>().max(1e-300)).ln() as f32)
            .collect(),
    );
    assert!(ald::fit_sorted(&xs).boundary);
    // A two-sided ALD sample is not flagged.
    let ys = sorted(
        AldParams::new(0.0, 1.0, 1.0)
            .sample(&mut r, 2000)
            .iter()
            .map(|&x| x as f32)
            .collect(),
    );
    assert!(!ald::fit_sorted(&ys).boundary);
}

#[test]
fn pdf_integrates_to_one_and_cdf_is_its_integral() {
    let p = AldParams::new(-0.2, 0.6, 1.7);
    let (a, b, steps) = (-30.0, 30.0, 600_000);
    let h = (b - a) / steps as f64;
    let mut integral = 0.0;
    for i in 0..steps {
        let x = a + (i as f64 + 0.5) * h;
        integral += p.pdf(x) * h;
        if i % 100_000 == 0 {
            assert!((integral - p.cdf(x + 0.5 * h)).abs() < 1e-6);
        }
    }
    assert!((integral - 1.0).abs() < 1e-6);
}

#[test]
fn pruned_ks_equals_the_full_scan_bitwise() {
    let mut r = rng(10);
    for case in 0..400 {
        let n = r.random_range(100..3000);
        let xs = match case % 4 {
            0 => sorted(mixture_row(&mut r, n)),
            1 => sorted(
                (0..n)
                    .map(|_| r.random_range(-6i32..7) as f32 * 0.3)
                    .collect(),
            ),
            _ => sorted(
                AldParams::new(0.0, 0.05, 0.8)
                    .sample(&mut r, n)
                    .iter()
                    .map(|&x| x as f32)
                    .collect(),
            ),
        };
        // Fitted parameters (small D) and arbitrary ones (large D).
        let fitted = ald::fit_sorted(&xs).params;
        let other = AldParams::new(
            r.random_range(-1.0..1.0),
            r.random_range(0.01..2.0),
            r.random_range(0.3..3.0),
        );
        for p in [fitted, other] {
            assert_eq!(
                ald::ks_sorted(&xs, &p).to_bits(),
                ald::ks_sorted_scan(&xs, &p).to_bits(),
                "case {case}"
            );
        }
    }
}

#[test]
fn fused_baselines_equal_the_direct_ones() {
    let mut r = rng(12);
    for case in 0..300 {
        let n = r.random_range(3..2000);
        let xs = if case % 2 == 0 {
            sorted(mixture_row(&mut r, n))
        } else {
            sorted(
                (0..n)
                    .map(|_| r.random_range(-4i32..5) as f32 * 0.5 + 100.0)
                    .collect(),
            )
        };
        let (fit, fused) = ald::fit_and_baselines_sorted(&xs);
        let direct = ald::baselines_sorted(&xs);
        assert_eq!(fit, ald::fit_sorted(&xs));
        assert_eq!(fused.median, direct.median);
        for (a, b) in [
            (fused.mean, direct.mean),
            (fused.var, direct.var),
            (fused.mad, direct.mad),
            (fused.nll_gauss, direct.nll_gauss),
            (fused.nll_laplace, direct.nll_laplace),
        ] {
            assert!(
                common::close(a, b, 1e-10 * b.abs().max(1e-12)),
                "case {case}: {a} vs {b}"
            );
        }
    }
}

/// The baselines' densities (drawn in the class plots) agree with their NLLs: at the fitted
/// parameters, Σ −log pdf is `gauss_nll`/`laplace_nll`, and each density integrates to one.
#[test]
fn baseline_densities_match_their_nlls_and_integrate_to_one() {
    let xs: Vec<f64> = sorted(mixture_row(&mut rng(41), 501))
        .iter()
        .map(|&x| x as f64)
        .collect();
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let b = ald::baselines_sorted(&xs32);
    let n = xs.len();
    let laplace: f64 = xs
        .iter()
        .map(|&x| -ald::laplace_log_pdf(x, b.median, b.mad))
        .sum();
    let gauss: f64 = xs
        .iter()
        .map(|&x| -ald::gauss_log_pdf(x, b.mean, b.std()))
        .sum();
    assert!((laplace - ald::laplace_nll(n, b.mad)).abs() < 1e-9 * laplace.abs());
    assert!((gauss - ald::gauss_nll(n, b.var)).abs() < 1e-9 * gauss.abs());
    for (pdf, centre, scale) in [
        (
            &(|x: f64| ald::laplace_log_pdf(x, 0.3, 0.7).exp()) as &dyn Fn(f64) -> f64,
            0.3,
            0.7,
        ),
        (&|x: f64| ald::gauss_log_pdf(x, -1.0, 2.0).exp(), -1.0, 2.0),
    ] {
        let (lo, h) = (centre - 40.0 * scale, 1e-3 * scale);
        let steps = (80.0 * scale / h) as usize;
        let mass: f64 = (0..steps).map(|i| pdf(lo + (i as f64 + 0.5) * h) * h).sum();
        assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    }
    assert_eq!(ald::laplace_log_pdf(0.3, 0.3, 0.7), -(1.4f64).ln());
}
