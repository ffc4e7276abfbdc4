//! The precision contract of docs/DESIGN.md section 4: how far a backend's result may be from the f64
//! reference on the same input. Used by the tests and, for every backend, by validation.
//!
//! f32 backends may land on a neighbouring order statistic, so fits are compared through the
//! likelihood of the returned parameters, evaluated in f64 — never through indices.

use crate::ald::{self, AldFit, Baselines, LogLikDiff, NllGrad, StudyLine};
use crate::backend::SegmentStats;

pub const NLL_REL: f64 = 1e-6;
pub const PARAM_REL: f64 = 1e-2;
pub const REDUCTION_REL: f64 = 1e-5;
pub const KS_ABS: f64 = 1e-4;
pub const R2_ABS: f64 = 1e-4;
/// Generated replicate values against the CPU's, in units of `|value| + spread` of the row's law
/// (`ReplicateRow::spread`): a few f32 ulp. The devices' `log`, `cos` and `sin` differ from the
/// CPU's by an ulp or two of their results, which the transforms scale by up to ln 2²⁵ ≈ 17.
pub const GENERATED_REL: f64 = 16.0 * f32::EPSILON as f64;

/// One comparison: which kernel and quantity, how far from the reference, against which
/// tolerance. Every comparison is kept, so validation can report the worst deviation per kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub kernel: &'static str,
    pub what: &'static str,
    pub deviation: f64,
    pub tolerance: f64,
}

impl Measurement {
    /// NaN where the reference has a number (or the other way round) violates too.
    pub fn violated(&self) -> bool {
        self.deviation.is_nan() || self.deviation > self.tolerance
    }

    /// How much of the tolerance is used (∞ for NaN); 0 when exact.
    pub fn ratio(&self) -> f64 {
        if self.deviation.is_nan() {
            f64::INFINITY
        } else if self.deviation == 0.0 {
            0.0
        } else {
            self.deviation / self.tolerance
        }
    }
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} off by {:.3e} (tolerance {:.1e})",
            self.kernel, self.what, self.deviation, self.tolerance
        )
    }
}

/// The violations among `measurements`.
pub fn violations(measurements: &[Measurement]) -> Vec<&Measurement> {
    measurements.iter().filter(|m| m.violated()).collect()
}

fn check(
    out: &mut Vec<Measurement>,
    kernel: &'static str,
    what: &'static str,
    deviation: f64,
    tolerance: f64,
) {
    out.push(Measurement {
        kernel,
        what,
        deviation,
        tolerance,
    });
}

/// Deviation of `a` from `b`, 0 when both are NaN, NaN when only one is.
fn dev(a: f64, b: f64, scale: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0.0,
        (false, false) if a == b => 0.0,
        (false, false) => (a - b).abs() / scale,
        _ => f64::NAN,
    }
}

/// A fit of the sorted segment `xs` against the reference fit of the same values.
pub fn check_fit(xs: &[f32], got: &AldFit, want: &AldFit, out: &mut Vec<Measurement>) {
    if got.degenerate != want.degenerate {
        check(out, "fit", "degenerate flag", f64::NAN, 0.0);
        return;
    }
    if want.degenerate {
        return;
    }
    // The likelihood of the backend's parameters, in f64, may exceed the optimum only slightly.
    let nll = ald::nll_grad(xs, &got.params).nll;
    check(
        out,
        "fit",
        "NLL at the returned parameters",
        (nll - want.nll) / want.nll.abs().max(1e-300),
        NLL_REL,
    );
    check(
        out,
        "fit",
        "reported NLL",
        dev(got.nll, want.nll, want.nll.abs()),
        NLL_REL,
    );
    let (g, w) = (&got.params, &want.params);
    check(
        out,
        "fit",
        "kappa",
        dev(g.kappa, w.kappa, w.kappa),
        PARAM_REL,
    );
    check(
        out,
        "fit",
        "scale",
        dev(g.scale, w.scale, w.scale),
        PARAM_REL,
    );
    check(
        out,
        "fit",
        "loc (in units of scale)",
        dev(g.loc, w.loc, w.scale),
        PARAM_REL,
    );
}

/// Baselines of a segment of `n` values. The NLLs are compared in units of max(|NLL|, n): an
/// NLL is n·(log of a scale + constant), which passes through zero for some scales, and there
/// a relative error of the scale moves the NLL by n times it, not by a multiple of the NLL.
pub fn check_baselines(got: &Baselines, want: &Baselines, n: usize, out: &mut Vec<Measurement>) {
    let std = want.std().max(1e-300);
    let per_value = |nll: f64| nll.abs().max(n as f64);
    let pairs: [(&'static str, f64, f64, f64); 6] = [
        ("mean (in units of std)", got.mean, want.mean, std),
        ("variance", got.var, want.var, want.var),
        ("median (in units of std)", got.median, want.median, std),
        ("mean absolute deviation", got.mad, want.mad, want.mad),
        (
            "Gaussian NLL",
            got.nll_gauss,
            want.nll_gauss,
            per_value(want.nll_gauss),
        ),
        (
            "Laplace NLL",
            got.nll_laplace,
            want.nll_laplace,
            per_value(want.nll_laplace),
        ),
    ];
    for (what, g, w, scale) in pairs {
        check(out, "baselines", what, dev(g, w, scale), REDUCTION_REL);
    }
    // The ends of a sorted segment: exact on every backend.
    check(
        out,
        "baselines",
        "minimum",
        dev(got.min, want.min, 1.0),
        0.0,
    );
    check(
        out,
        "baselines",
        "maximum",
        dev(got.max, want.max, 1.0),
        0.0,
    );
}

/// Fit, KS and baselines of one segment. KS is compared at the backend's own parameters
/// (re-evaluated in f64), since a neighbouring μ̂ legitimately moves it.
pub fn check_stats(
    xs: &[f32],
    got: &SegmentStats,
    want: &SegmentStats,
    out: &mut Vec<Measurement>,
) {
    check_fit(xs, &got.fit, &want.fit, out);
    let ks_ref = ald::ks_sorted(xs, &got.fit.params);
    check(out, "ks", "KS", dev(got.ks, ks_ref, 1.0), KS_ABS);
    check_baselines(&got.baselines, &want.baselines, xs.len(), out);
}

pub fn check_study_line(got: &StudyLine, want: &StudyLine, out: &mut Vec<Measurement>) {
    if got.count != want.count {
        check(out, "study_line", "line count", f64::NAN, 0.0);
    }
    check(out, "study_line", "R²", dev(got.r2, want.r2, 1.0), R2_ABS);
    check(
        out,
        "study_line",
        "slope",
        dev(got.slope, want.slope, want.slope.abs().max(1.0)),
        R2_ABS,
    );
    check(
        out,
        "study_line",
        "intercept",
        dev(got.intercept, want.intercept, want.intercept.abs().max(1.0)),
        R2_ABS,
    );
}

/// NLL and gradient from a backend's reductions. Each gradient component is a difference of
/// terms that cancel near the optimum, so its error is measured against the size of those terms
/// (the reductions themselves), not against the near-zero result.
pub fn check_nll_grad(
    got: &NllGrad,
    want: &NllGrad,
    terms: &GradTerms,
    out: &mut Vec<Measurement>,
) {
    let scale = want.nll.abs().max(1.0);
    check(
        out,
        "nll_grad",
        "NLL reduction",
        dev(got.nll, want.nll, scale),
        REDUCTION_REL,
    );
    let g = |w: f64, t: f64| w.abs().max(t).max(f64::MIN_POSITIVE);
    check(
        out,
        "nll_grad",
        "dNLL/dloc",
        dev(got.d_loc, want.d_loc, g(want.d_loc, terms.loc)),
        REDUCTION_REL,
    );
    check(
        out,
        "nll_grad",
        "dNLL/dscale",
        dev(got.d_scale, want.d_scale, g(want.d_scale, terms.scale)),
        REDUCTION_REL,
    );
    check(
        out,
        "nll_grad",
        "dNLL/dkappa",
        dev(got.d_kappa, want.d_kappa, g(want.d_kappa, terms.kappa)),
        REDUCTION_REL,
    );
}

/// The magnitudes of the terms each gradient component of docs/DESIGN.md 2.1 is a difference of.
#[derive(Clone, Copy, Debug)]
pub struct GradTerms {
    pub loc: f64,
    pub scale: f64,
    pub kappa: f64,
}

impl GradTerms {
    pub fn of(t: &crate::ald::TailSums, p: &crate::ald::AldParams) -> Self {
        let (n, s, k) = (t.n as f64, p.scale, p.kappa);
        GradTerms {
            loc: (t.n_below as f64 / k).max(k * t.n_above as f64) / s,
            scale: (n / s).max((k * t.above + t.below / k) / (s * s)),
            kappa: (n * (k * k - 1.0) / (k * (k * k + 1.0)))
                .abs()
                .max((t.above + t.below / (k * k)) / s),
        }
    }
}

/// Vuong's sums of a segment against the reference. Σd is measured in units of √(n·Σd²), the
/// size of the terms it sums (by Cauchy–Schwarz, at least Σ|d|); Σd² relative to itself.
pub fn check_loglik(got: &LogLikDiff, want: &LogLikDiff, out: &mut Vec<Measurement>) {
    let terms = (want.n as f64 * want.sum_sq).sqrt();
    check(
        out,
        "loglik",
        "Σ(ℓ_ALD − ℓ_N)",
        dev(got.sum, want.sum, terms),
        REDUCTION_REL,
    );
    check(
        out,
        "loglik",
        "Σ(ℓ_ALD − ℓ_N)²",
        dev(got.sum_sq, want.sum_sq, want.sum_sq),
        REDUCTION_REL,
    );
}

/// A generated replicate row (sorted) against the CPU's (sorted): the largest deviation in
/// units of `|value| + spread`.
pub fn check_generated(got: &[f32], want: &[f32], scale: f64, out: &mut Vec<Measurement>) {
    let worst = if got.len() != want.len() {
        f64::NAN
    } else {
        got.iter()
            .zip(want)
            .map(|(&g, &w)| dev(g as f64, w as f64, (w as f64).abs() + scale))
            .fold(0.0, f64::max)
    };
    check(out, "generate", "replicate values", worst, GENERATED_REL);
}
