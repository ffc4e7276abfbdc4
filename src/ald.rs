//! docs/DESIGN.md section 2, in f64: the reference every backend is tested against.
//!
//! Every formula of the project lives here once. Inputs are the f32 weights as stored (after
//! conversion), sums are carried in f64. Functions whose name ends in `_sorted` expect a segment
//! of a row sorted ascending: that is what every backend hands them (docs/DESIGN.md section 2.5, key
//! fact), so the CPU backend calls these functions directly and the GPU kernels implement them.

use rand::Rng;

use crate::logsum;

/// Parameters of the ALD in `scipy.stats.laplace_asymmetric`'s parametrisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AldParams {
    pub loc: f64,
    pub scale: f64,
    pub kappa: f64,
}

impl AldParams {
    pub const NAN: AldParams = AldParams {
        loc: f64::NAN,
        scale: f64::NAN,
        kappa: f64::NAN,
    };

    pub fn new(loc: f64, scale: f64, kappa: f64) -> Self {
        Self { loc, scale, kappa }
    }

    pub fn is_valid(&self) -> bool {
        self.loc.is_finite()
            && self.scale.is_finite()
            && self.kappa.is_finite()
            && self.scale > 0.0
            && self.kappa > 0.0
    }

    pub fn log_pdf(&self, x: f64) -> f64 {
        let z = (x - self.loc) / self.scale;
        let k = self.kappa;
        let norm = -(self.scale * (k + 1.0 / k)).ln();
        if z >= 0.0 {
            norm - k * z
        } else {
            norm + z / k
        }
    }

    pub fn pdf(&self, x: f64) -> f64 {
        self.log_pdf(x).exp()
    }

    pub fn cdf(&self, x: f64) -> f64 {
        Cdf::new(self).eval(x)
    }

    /// Inverse of [`cdf`](Self::cdf); `u` in (0, 1).
    pub fn ppf(&self, u: f64) -> f64 {
        let k2 = self.kappa * self.kappa;
        let split = k2 / (1.0 + k2);
        let z = if u < split {
            self.kappa * (u * (1.0 + k2) / k2).ln()
        } else {
            -((1.0 - u) * (1.0 + k2)).ln() / self.kappa
        };
        self.loc + self.scale * z
    }

    pub fn mean(&self) -> f64 {
        self.loc + self.scale * (1.0 / self.kappa - self.kappa)
    }

    /// Seeded samples by inversion: used for synthetic heads and parameter-recovery tests.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                // (0, 1) open interval: ln(0) would give an infinite weight.
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                self.ppf(u)
            })
            .collect()
    }
}

/// The CDF with its constants hoisted, for the KS loop.
#[derive(Clone, Copy, Debug)]
pub struct Cdf {
    loc: f64,
    k_over_s: f64,
    inv_ks: f64,
    upper: f64,
    lower: f64,
}

impl Cdf {
    pub fn new(p: &AldParams) -> Self {
        let k2 = p.kappa * p.kappa;
        Cdf {
            loc: p.loc,
            k_over_s: p.kappa / p.scale,
            inv_ks: 1.0 / (p.kappa * p.scale),
            upper: 1.0 / (1.0 + k2),
            lower: k2 / (1.0 + k2),
        }
    }

    #[inline]
    pub fn eval(&self, x: f64) -> f64 {
        let d = x - self.loc;
        if d >= 0.0 {
            1.0 - (-self.k_over_s * d).exp() * self.upper
        } else {
            self.lower * (d * self.inv_ks).exp()
        }
    }
}

/// The four sums of docs/DESIGN.md 2.1 at a location μ.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TailSums {
    pub n: usize,
    /// Σ (x − μ)+
    pub above: f64,
    /// Σ (μ − x)+
    pub below: f64,
    pub n_above: usize,
    pub n_below: usize,
}

impl TailSums {
    pub fn of(xs: &[f32], loc: f64) -> Self {
        // Branch-free: signs around μ are random, and adding +0.0 leaves a sum bitwise as is.
        let (mut above, mut below, mut n_above, mut n_below) = (0.0f64, 0.0f64, 0usize, 0usize);
        for &x in xs {
            let d = x as f64 - loc;
            above += d.max(0.0);
            below += (-d).max(0.0);
            n_above += (d > 0.0) as usize;
            n_below += (d < 0.0) as usize;
        }
        TailSums {
            n: xs.len(),
            above,
            below,
            n_above,
            n_below,
        }
    }
}

/// NLL and its gradient (docs/DESIGN.md 2.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NllGrad {
    pub nll: f64,
    pub d_loc: f64,
    pub d_scale: f64,
    pub d_kappa: f64,
}

impl NllGrad {
    pub const NAN: NllGrad = NllGrad {
        nll: f64::NAN,
        d_loc: f64::NAN,
        d_scale: f64::NAN,
        d_kappa: f64::NAN,
    };

    pub fn from_sums(t: &TailSums, p: &AldParams) -> Self {
        let (n, s, k) = (t.n as f64, p.scale, p.kappa);
        let (a, b) = (t.above, t.below);
        let weighted = k * a + b / k;
        NllGrad {
            nll: n * s.ln() + n * (k + 1.0 / k).ln() + weighted / s,
            d_loc: (t.n_below as f64 / k - k * t.n_above as f64) / s,
            d_scale: n / s - weighted / (s * s),
            d_kappa: n * (k * k - 1.0) / (k * (k * k + 1.0)) + (a - b / (k * k)) / s,
        }
    }
}

/// NLL and gradient of an unsorted sample at given parameters.
pub fn nll_grad(xs: &[f32], p: &AldParams) -> NllGrad {
    NllGrad::from_sums(&TailSums::of(xs, p.loc), p)
}

/// The closed-form maximiser at a fixed location (docs/DESIGN.md 2.2): (κ̂, ŝ, NLL).
pub fn profile(above: f64, below: f64, n: usize) -> (f64, f64, f64) {
    let n = n as f64;
    let (alpha, beta) = (above / n, below / n);
    let kappa = (beta / alpha).sqrt().sqrt();
    let root_sum = alpha.sqrt() + beta.sqrt();
    let scale = (alpha * beta).sqrt().sqrt() * root_sum;
    let nll = n * (2.0 * root_sum.ln() + 1.0);
    (kappa, scale, nll)
}

/// Result of the exact MLE on a sorted segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AldFit {
    pub params: AldParams,
    pub nll: f64,
    /// Position of μ̂ in the segment (the first of its ties); `None` when degenerate.
    pub index: Option<usize>,
    /// An end point beats every interior candidate: the sample looks one-sided.
    pub boundary: bool,
    /// No interior candidate exists (fewer than 3 distinct values).
    pub degenerate: bool,
}

impl AldFit {
    pub const DEGENERATE: AldFit = AldFit {
        params: AldParams::NAN,
        nll: f64::NAN,
        index: None,
        boundary: false,
        degenerate: true,
    };
}

/// Exact MLE over a sorted segment (docs/DESIGN.md 2.2): the argmin of √A_j + √B_j over every
/// interior order statistic.
///
/// The objective is not unimodal, so no local search may stand in for the scan. The scan is
/// pruned exactly, by blocks of `FIT_BLOCK` order statistics: A_j is non-increasing and B_j
/// non-decreasing in j, so on a block [a, b] every objective is at least √A_b + √B_a; a block
/// whose bound exceeds the best objective found (by more than rounding) cannot hold the minimum.
/// Sums are taken in f64 after shifting by the middle value, which keeps the cancellation in
/// A_j and B_j small.
pub fn fit_sorted(xs: &[f32]) -> AldFit {
    fit_and_baselines_sorted(xs).0
}

/// [`fit_sorted`] and [`baselines_sorted`] in one: the fit's pass over the segment also sums
/// the squares for the variance, and the mean absolute deviation from the median comes from its
/// prefix sums (on a sorted segment, Σ|x − m| is the upper half's sum minus the lower half's).
pub fn fit_and_baselines_sorted(xs: &[f32]) -> (AldFit, Baselines) {
    const FIT_BLOCK: usize = 16;
    let n = xs.len();
    if n < 3 || xs[0] >= xs[n - 1] {
        return (AldFit::DEGENERATE, baselines_sorted(xs));
    }
    let (lo, hi) = (xs[0], xs[n - 1]);
    let shift = xs[n / 2] as f64;
    let nf = n as f64;
    let blocks = n.div_ceil(FIT_BLOCK);
    // Prefix sums at block ends: ends[b] = Σ y over blocks 0..=b, y = x − shift.
    let mut ends = Vec::with_capacity(blocks);
    let (total, squares) = block_prefix_sums::<FIT_BLOCK>(xs, shift, &mut ends);
    let prefix_through = |j: usize| {
        let b = j / FIT_BLOCK;
        let before = if b == 0 { 0.0 } else { ends[b - 1] };
        before
            + xs[b * FIT_BLOCK..=j]
                .iter()
                .map(|&x| x as f64 - shift)
                .sum::<f64>()
    };

    let baselines = {
        let median = median_sorted(xs);
        let mean_y = total / nf;
        let var = (squares / nf - mean_y * mean_y).max(0.0);
        let h = n / 2;
        let lower = prefix_through(h - 1);
        let m = median - shift;
        let mad = (((total - lower) - (n - h) as f64 * m) + (h as f64 * m - lower)) / nf;
        Baselines {
            min: lo as f64,
            max: hi as f64,
            mean: shift + mean_y,
            var,
            median,
            mad,
            nll_gauss: gauss_nll(n, var),
            nll_laplace: laplace_nll(n, mad),
        }
    };

    let above_at = |j: usize, prefix: f64| {
        ((total - prefix) - (nf - 1.0 - j as f64) * (xs[j] as f64 - shift)).max(0.0)
    };
    let below_at =
        |j: usize, prefix: f64| ((j as f64 + 1.0) * (xs[j] as f64 - shift) - prefix).max(0.0);

    // Scans block b, keeping the smallest (objective, j) and the prefix sum at j.
    let scan = |b: usize, best: &mut (f64, usize, f64)| {
        let start = b * FIT_BLOCK;
        let mut prefix = if b == 0 { 0.0 } else { ends[b - 1] };
        for j in start..(start + FIT_BLOCK).min(n) {
            let x = xs[j];
            prefix += x as f64 - shift;
            // Only interior candidates, one per distinct value: ties share μ, hence the objective.
            if x == lo || x == hi || (j > 0 && xs[j - 1] == x) {
                continue;
            }
            let objective = above_at(j, prefix).sqrt() + below_at(j, prefix).sqrt();
            if objective < best.0 || (objective == best.0 && j < best.1) {
                *best = (objective, j, prefix);
            }
        }
    };
    let bound = |b: usize| {
        let (a, last) = (b * FIT_BLOCK, ((b + 1) * FIT_BLOCK).min(n) - 1);
        let prefix_a = if b == 0 { 0.0 } else { ends[b - 1] } + (xs[a] as f64 - shift);
        above_at(last, ends[b]).sqrt() + below_at(a, prefix_a).sqrt()
    };
    let bounds: Vec<f64> = (0..blocks).map(bound).collect();
    let mut best = (f64::INFINITY, usize::MAX, 0.0);
    let first = (0..blocks)
        .min_by(|&a, &b| bounds[a].total_cmp(&bounds[b]))
        .unwrap_or(0);
    scan(first, &mut best);
    for (b, &lower) in bounds.iter().enumerate() {
        // The margin covers rounding in the bound, so pruning never changes the result.
        if b != first && lower <= best.0 * (1.0 + 1e-9) {
            scan(b, &mut best);
        }
    }
    let (best, best_j, prefix) = best;
    if best_j == usize::MAX {
        return (AldFit::DEGENERATE, baselines);
    }

    // End points: μ = x(0) (B = 0) and μ = x(n-1) (A = 0).
    let first = lo as f64 - shift;
    let last = hi as f64 - shift;
    let end_objective = (total - nf * first)
        .max(0.0)
        .sqrt()
        .min((nf * last - total).max(0.0).sqrt());

    let (kappa, scale, nll) = profile(above_at(best_j, prefix), below_at(best_j, prefix), n);
    let fit = AldFit {
        params: AldParams {
            loc: xs[best_j] as f64,
            scale,
            kappa,
        },
        nll,
        index: Some(best_j),
        boundary: end_objective < best,
        degenerate: false,
    };
    (fit, baselines)
}

/// Kolmogorov–Smirnov distance between a sorted sample and an ALD (docs/DESIGN.md 2.3):
/// `D = max_j max((j+1)/n − F(x(j)), F(x(j)) − j/n)`.
///
/// Bitwise the same as [`ks_sorted_scan`], with most CDF evaluations skipped. F is evaluated at
/// the first value of each block of `KS_BLOCK`. As F is non-decreasing, every term of a block is
/// bounded by its ends' values, and a block whose bound cannot beat the maximum found so far is
/// skipped. Inside a block that may, F is convex left of μ and concave right of it, so at each
/// value it lies between the chord through the block's ends and the tangents at them (slopes
/// from F itself: F/(κs) on the left, κ(1 − F)/s on the right): F is only evaluated where that
/// bound still could beat the maximum. Skipped terms are provably not larger (with a margin far
/// above rounding), so the maximum is exact.
pub fn ks_sorted(xs: &[f32], p: &AldParams) -> f64 {
    const KS_BLOCK: usize = 16;
    /// Far above the rounding of F and of the bounds (a few 2⁻⁵³), far below any KS distance.
    const SLACK: f64 = 1e-12;
    let n = xs.len();
    if n < 4 * KS_BLOCK || !p.is_valid() {
        return ks_sorted_scan(xs, p);
    }
    let cdf = Cdf::new(p);
    let inv_n = 1.0 / n as f64;
    let term = |j: usize, f: f64| ((j + 1) as f64 * inv_n - f).max(f - j as f64 * inv_n);
    let blocks = n.div_ceil(KS_BLOCK);
    // F at each block's first value, then at the last value (the bound of the last block).
    let ends = |b: usize| (b * KS_BLOCK, ((b + 1) * KS_BLOCK).min(n));
    let at = |b: usize| xs[(b * KS_BLOCK).min(n - 1)];
    let f_at: Vec<f64> = (0..=blocks).map(|b| cdf.eval(at(b) as f64)).collect();
    let mut d = term(n - 1, f_at[blocks]);
    for (b, &f) in f_at[..blocks].iter().enumerate() {
        d = d.max(term(b * KS_BLOCK, f));
    }
    // Upper bound of the terms of block b: (j+1)/n ≤ end/n with F ≥ F(first), and
    // F ≤ F(next block's first) with j/n ≥ first/n.
    let bound = |b: usize| {
        let (lo, hi) = ends(b);
        (hi as f64 * inv_n - f_at[b]).max(f_at[b + 1] - lo as f64 * inv_n)
    };
    let eval_block = |b: usize, d: &mut f64| {
        let (lo, hi) = ends(b);
        let (xa, xb) = (at(b) as f64, at(b + 1) as f64);
        let (fa, fb) = (f_at[b], f_at[b + 1]);
        let convex = xb < cdf.loc;
        if !convex && xa < cdf.loc {
            // The block straddles μ: no shape to lean on.
            for (j, &x) in xs.iter().enumerate().take(hi).skip(lo + 1) {
                *d = d.max(term(j, cdf.eval(x as f64)));
            }
            return;
        }
        let (sa, sb) = if convex {
            (fa * cdf.inv_ks, fb * cdf.inv_ks)
        } else {
            ((1.0 - fa) * cdf.k_over_s, (1.0 - fb) * cdf.k_over_s)
        };
        let slope = if xb > xa { (fb - fa) / (xb - xa) } else { 0.0 };
        // Every value's bound first, without branches (so the loop vectorises), then F only
        // where the bound could still win.
        let mut most = [0.0f64; KS_BLOCK];
        let line = KsLine {
            xa,
            xb,
            fa,
            fb,
            sa,
            sb,
            slope,
            inv_n,
            convex,
        };
        line.bounds(&xs[lo..hi], lo, &mut most);
        for k in 1..hi - lo {
            if most[k] + SLACK > *d {
                *d = d.max(term(lo + k, cdf.eval(xs[lo + k] as f64)));
            }
        }
    };
    // The most promising block first raises the bar for the others.
    let mut first = 0;
    for b in 1..blocks {
        if bound(b) > bound(first) {
            first = b;
        }
    }
    eval_block(first, &mut d);
    for b in 0..blocks {
        if b != first && bound(b) > d {
            eval_block(b, &mut d);
        }
    }
    d
}

/// What bounds the KS terms of one block of [`ks_sorted`]: F at its first value `xa` and at the
/// next block's `xb` (`fa`, `fb`), F's slopes there (`sa`, `sb`) and its chord's `slope`;
/// `convex` where the block lies below μ (F convex), concave above.
struct KsLine {
    xa: f64,
    xb: f64,
    fa: f64,
    fb: f64,
    sa: f64,
    sb: f64,
    slope: f64,
    inv_n: f64,
    convex: bool,
}

impl KsLine {
    /// The bound of the term of each value of `block` (sorted values `at..` of the segment)
    /// into `most`: F lies between the chord and the tangents at the ends, so each term is at
    /// most the larger of `(j + 1)/n − low` and `high − j/n`. On AVX2, four values at a time
    /// (the same operations, so the same bits).
    fn bounds(&self, block: &[f32], at: usize, most: &mut [f64]) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked above.
            done = unsafe { self.bounds_avx2(block, at, most) };
        }
        for (k, m) in most.iter_mut().enumerate().take(block.len()).skip(done) {
            *m = self.bound(block[k], at + k);
        }
    }

    #[inline(always)]
    fn bound(&self, x: f32, j: usize) -> f64 {
        let gt_max = |a: f64, b: f64| if a > b { a } else { b };
        let lt_min = |a: f64, b: f64| if a < b { a } else { b };
        let (x, j) = (x as f64, j as f64);
        let chord = self.fa + self.slope * (x - self.xa);
        let (t1, t2) = (
            self.fa + self.sa * (x - self.xa),
            self.fb - self.sb * (self.xb - x),
        );
        let (low, high) = if self.convex {
            (gt_max(t1, t2), chord)
        } else {
            (chord, lt_min(t1, t2))
        };
        gt_max((j + 1.0) * self.inv_n - low, high - j * self.inv_n)
    }

    /// [`bound`](Self::bound) on the whole quads of `block`; returns how many values it did.
    /// `max_pd(a, b)` is `if a > b { a } else { b }` and `min_pd` its mirror, NaN included.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn bounds_avx2(&self, block: &[f32], at: usize, most: &mut [f64]) -> usize {
        use std::arch::x86_64::*;
        let c = _mm256_set1_pd;
        let (xa, xb, fa, fb) = (c(self.xa), c(self.xb), c(self.fa), c(self.fb));
        let (sa, sb, slope, inv_n) = (c(self.sa), c(self.sb), c(self.slope), c(self.inv_n));
        let steps = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let quads = block.len() / 4;
        for q in 0..quads {
            let k = 4 * q;
            let part: &[f32; 4] = block[k..k + 4].try_into().expect("four values");
            // SAFETY: `part` holds four f32.
            let x = _mm256_cvtps_pd(unsafe { _mm_loadu_ps(part.as_ptr()) });
            let j = _mm256_add_pd(c((at + k) as f64), steps);
            let dx = _mm256_sub_pd(x, xa);
            let chord = _mm256_add_pd(fa, _mm256_mul_pd(slope, dx));
            let t1 = _mm256_add_pd(fa, _mm256_mul_pd(sa, dx));
            let t2 = _mm256_sub_pd(fb, _mm256_mul_pd(sb, _mm256_sub_pd(xb, x)));
            let (low, high) = if self.convex {
                (_mm256_max_pd(t1, t2), chord)
            } else {
                (chord, _mm256_min_pd(t1, t2))
            };
            let up = _mm256_sub_pd(_mm256_mul_pd(_mm256_add_pd(j, c(1.0)), inv_n), low);
            let m = _mm256_max_pd(up, _mm256_sub_pd(high, _mm256_mul_pd(j, inv_n)));
            let out: &mut [f64; 4] = (&mut most[k..k + 4]).try_into().expect("four bounds");
            // SAFETY: `out` holds four f64.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), m) };
        }
        4 * quads
    }
}

/// KS distance by evaluating F at every value: the plain definition of [`ks_sorted`].
pub fn ks_sorted_scan(xs: &[f32], p: &AldParams) -> f64 {
    if xs.is_empty() || !p.is_valid() {
        return f64::NAN;
    }
    let cdf = Cdf::new(p);
    let inv_n = 1.0 / xs.len() as f64;
    let mut d: f64 = 0.0;
    for (j, &x) in xs.iter().enumerate() {
        let f = cdf.eval(x as f64);
        let j = j as f64;
        d = d.max((j + 1.0) * inv_n - f).max(f - j * inv_n);
    }
    d
}

/// The Gaussian and Laplace alternatives of docs/DESIGN.md 2.3 on a sorted segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baselines {
    /// The segment's smallest and largest values (exact: the ends of the sorted segment).
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population variance.
    pub var: f64,
    pub median: f64,
    /// Mean absolute deviation from the median: the Laplace MLE scale.
    pub mad: f64,
    pub nll_gauss: f64,
    pub nll_laplace: f64,
}

impl Baselines {
    pub const NAN: Baselines = Baselines {
        min: f64::NAN,
        max: f64::NAN,
        mean: f64::NAN,
        var: f64::NAN,
        median: f64::NAN,
        mad: f64::NAN,
        nll_gauss: f64::NAN,
        nll_laplace: f64::NAN,
    };

    pub fn std(&self) -> f64 {
        self.var.sqrt()
    }
}

pub fn median_sorted(xs: &[f32]) -> f64 {
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2] as f64
    } else {
        0.5 * (xs[n / 2 - 1] as f64 + xs[n / 2] as f64)
    }
}

pub fn gauss_nll(n: usize, var: f64) -> f64 {
    if var > 0.0 {
        n as f64 / 2.0 * ((2.0 * std::f64::consts::PI * var).ln() + 1.0)
    } else {
        f64::NAN
    }
}

pub fn laplace_nll(n: usize, mad: f64) -> f64 {
    if mad > 0.0 {
        n as f64 * ((2.0 * mad).ln() + 1.0)
    } else {
        f64::NAN
    }
}

pub fn baselines_sorted(xs: &[f32]) -> Baselines {
    let n = xs.len();
    if n == 0 {
        return Baselines::NAN;
    }
    // Shifting by the median keeps Σy² − (Σy)²/n from cancelling and gives Σ|y| directly.
    let median = median_sorted(xs);
    let (mut s1, mut s2, mut sabs) = (0.0f64, 0.0f64, 0.0f64);
    for &x in xs {
        let y = x as f64 - median;
        s1 += y;
        s2 += y * y;
        sabs += y.abs();
    }
    let nf = n as f64;
    let mean_y = s1 / nf;
    let var = (s2 / nf - mean_y * mean_y).max(0.0);
    let mad = sabs / nf;
    Baselines {
        min: xs[0] as f64,
        max: xs[n - 1] as f64,
        mean: median + mean_y,
        var,
        median,
        mad,
        nll_gauss: gauss_nll(n, var),
        nll_laplace: laplace_nll(n, mad),
    }
}

/// The three candidate models, compared by AIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    Ald,
    Gauss,
    Laplace,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Ald, Model::Gauss, Model::Laplace];

    pub fn name(self) -> &'static str {
        match self {
            Model::Ald => "ald",
            Model::Gauss => "gauss",
            Model::Laplace => "laplace",
        }
    }

    pub fn n_params(self) -> usize {
        match self {
            Model::Ald => 3,
            Model::Gauss | Model::Laplace => 2,
        }
    }
}

pub fn aic(model: Model, nll: f64) -> f64 {
    2.0 * model.n_params() as f64 + 2.0 * nll
}

/// The model with the smallest AIC among those with a finite NLL; ties go to the earlier of
/// ALD, Gaussian, Laplace.
pub fn aic_best(nll_ald: f64, nll_gauss: f64, nll_laplace: f64) -> Option<Model> {
    let mut best: Option<(Model, f64)> = None;
    for (model, nll) in Model::ALL
        .into_iter()
        .zip([nll_ald, nll_gauss, nll_laplace])
    {
        if !nll.is_finite() {
            continue;
        }
        let a = aic(model, nll);
        if best.is_none_or(|(_, b)| a < b) {
            best = Some((model, a));
        }
    }
    best.map(|(m, _)| m)
}

/// The study's least-squares line `ln v(i) ≈ a·i/L + b` (docs/DESIGN.md 2.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StudyLine {
    /// L, the number of values on this side.
    pub count: usize,
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

impl StudyLine {
    pub fn nan(count: usize) -> Self {
        StudyLine {
            count,
            slope: f64::NAN,
            intercept: f64::NAN,
            r2: f64::NAN,
        }
    }

    /// The study's derived `k = √(e^b / (a − e^b))`; NaN when a ≤ e^b.
    pub fn k(&self) -> f64 {
        let eb = self.intercept.exp();
        if self.slope > eb {
            (eb / (self.slope - eb)).sqrt()
        } else {
            f64::NAN
        }
    }

    /// λ = a·k.
    pub fn lambda(&self) -> f64 {
        self.slope * self.k()
    }

    /// mean = (1 − k²)/(λk).
    pub fn mean(&self) -> f64 {
        let k = self.k();
        (1.0 - k * k) / (self.lambda() * k)
    }

    /// Least squares from the logs of the values in ascending order of value. Lines need at
    /// least 3 points to have a residual; fewer give NaN.
    ///
    /// The logs are shifted by their first value so that Σd² − (Σd)²/L does not cancel, and the
    /// abscissa sums are the closed forms of Σi and Σi².
    pub fn from_logs<I: IntoIterator<Item = f64>>(logs: I) -> Self {
        let mut it = logs.into_iter();
        let Some(first) = it.next() else {
            return StudyLine::nan(0);
        };
        let (mut sd, mut sid, mut sdd) = (0.0f64, 0.0f64, 0.0f64);
        let mut count = 1usize;
        for (i, t) in it.enumerate() {
            let d = t - first;
            let i = (i + 1) as f64;
            sd += d;
            sid += i * d;
            sdd += d * d;
            count += 1;
        }
        Self::from_shifted_sums(count, first, sd, sid, sdd)
    }

    /// The line from shifted sums `Σd, Σi·d, Σd²` with `d = ln v(i) − shift`, i = 0…L−1.
    /// Backends that reduce on a device return these sums; the division happens here.
    pub fn from_shifted_sums(count: usize, shift: f64, sd: f64, sid: f64, sdd: f64) -> Self {
        if count < 3 {
            return StudyLine::nan(count);
        }
        let l = count as f64;
        let si = l * (l - 1.0) / 2.0;
        let var_i = l * (l * l - 1.0) / 12.0;
        let cov = sid - si * sd / l;
        let var_d = sdd - sd * sd / l;
        let slope_i = cov / var_i;
        // u = i/L, so the slope in u is L times the slope in i.
        let slope = slope_i * l;
        let mean_t = shift + sd / l;
        let mean_u = (l - 1.0) / (2.0 * l);
        let intercept = mean_t - slope * mean_u;
        let r2 = if var_d > 0.0 {
            (cov * cov / (var_i * var_d)).min(1.0)
        } else {
            f64::NAN
        };
        StudyLine {
            count,
            slope,
            intercept,
            r2,
        }
    }
}

/// Seed fit of the positive part P = {x > 0}, given its values sorted ascending.
pub fn study_line_positive_sorted(pos: &[f32]) -> StudyLine {
    study_line_of_magnitudes(pos, false)
}

/// Seed fit of the negative part N = {−x : x < 0}, given the negative values sorted ascending
/// (a prefix of a sorted row); N ascending is that prefix reversed.
pub fn study_line_negative_sorted(neg: &[f32]) -> StudyLine {
    study_line_of_magnitudes(neg, true)
}

/// The line of [`StudyLine::from_logs`] over `ln|x|`, `xs` taken in order or reversed (either
/// way ascending in magnitude), with the logs of [`logsum`]: the same to a few ulp as libm's,
/// at a fraction of the cost.
fn study_line_of_magnitudes(xs: &[f32], reversed: bool) -> StudyLine {
    let first = if reversed { xs.last() } else { xs.first() };
    let Some(&first) = first else {
        return StudyLine::nan(0);
    };
    let shift = logsum::ln_abs(first);
    // In magnitude order subnormals lead and infinities close: both take libm's log, the
    // normal values between them the table path.
    let subnormal = |x: &&f32| !x.is_normal() && x.is_finite();
    let infinite = |x: &&f32| !x.is_finite();
    let (small, normals, large) = if reversed {
        let hi = xs.len() - xs.iter().rev().take_while(subnormal).count();
        let lo = xs[..hi].iter().take_while(infinite).count();
        (&xs[hi..], &xs[lo..hi], &xs[..lo])
    } else {
        let lo = xs.iter().take_while(subnormal).count();
        let hi = xs.len() - xs[lo..].iter().rev().take_while(infinite).count();
        (&xs[..lo], &xs[lo..hi], &xs[hi..])
    };
    let [mut sd, mut sid, mut sdd] = logsum::log_sums(normals, reversed, shift, small.len());
    let mut plain = |part: &[f32], rank: usize| {
        for (i, &x) in part.iter().enumerate() {
            let i = if reversed { part.len() - 1 - i } else { i };
            let d = logsum::ln_abs(x) - shift;
            sd += d;
            sid += (rank + i) as f64 * d;
            sdd += d * d;
        }
    };
    plain(small, 0);
    plain(large, small.len() + normals.len());
    StudyLine::from_shifted_sums(xs.len(), shift, sd, sid, sdd)
}

/// Index of the first value `>= pivot` in a sorted slice (with `strict`, the first `> pivot`).
pub fn partition_point_sorted(xs: &[f32], pivot: f32, strict: bool) -> usize {
    if strict {
        xs.partition_point(|&x| x <= pivot)
    } else {
        xs.partition_point(|&x| x < pivot)
    }
}

/// The study's joint fit over a whole matrix (docs/DESIGN.md 2.4): every positive weight pooled, and
/// every negative one.
pub fn study_line_pooled(values: impl IntoIterator<Item = f32>) -> (StudyLine, StudyLine) {
    let values: Vec<f32> = values.into_iter().collect();
    let pools = JointPools::default();
    pools.extend(&values);
    pools.lines()
}

/// Bits of an f32 that pick its bucket in [`JointPools`]: the sign, the exponent and 7 mantissa
/// bits. A bucket then holds one sign and 1/128th of one binade, so its values share every bit
/// but the low 16, and their logs exceed the bucket's lowest by less than 2⁻⁷.
const POOL_SHIFT: u32 = 16;
const POOL_BUCKETS: usize = 1 << (32 - POOL_SHIFT);
/// The first bucket of negative values (sign bit set).
const POOL_NEGATIVE: usize = POOL_BUCKETS / 2;
/// Values per page of a bucket's list in a [`PoolArena`]: 512 bytes, so the pages left part
/// full (one per active bucket and thread) cost a few MB at most.
const POOL_PAGE: usize = 256;
const NO_PAGE: u32 = u32::MAX;

/// Both pools of the joint fit: every nonzero weight, kept as the low 16 bits of its f32 bit
/// pattern in the list of its bucket (the top 16 bits). Positive and negative patterns each
/// order like the magnitudes: the order the study's line needs on both sides (N = {−x},
/// ascending).
///
/// Rows are added as they are read, from any thread, while they are still in that core's
/// cache: each thread appends to its own arena, so nothing waits and no pass over the head
/// is spent on bucketing. The order is made at the end, per bucket and in parallel, by small
/// cache-resident sorts that feed the least-squares sums directly; which thread holds which
/// value changes nothing (the sums are over each bucket's sorted values).
pub struct JointPools {
    /// One arena per rayon worker, and one more for callers outside the pool.
    arenas: Vec<std::sync::Mutex<Option<PoolArena>>>,
}

impl Default for JointPools {
    fn default() -> Self {
        JointPools {
            arenas: (0..=rayon::current_num_threads())
                .map(|_| std::sync::Mutex::new(None))
                .collect(),
        }
    }
}

/// One thread's buckets: each a list of pages, linked from its last page backwards.
struct PoolArena {
    pages: Vec<[u16; POOL_PAGE]>,
    /// The page before each page in its bucket's list.
    prev: Vec<u32>,
    /// Each bucket's last page and how many values that page holds (one cache line for both).
    tail: Box<[Tail; POOL_BUCKETS]>,
    /// One bit per bucket that holds values.
    active: Vec<u64>,
}

#[derive(Clone, Copy)]
struct Tail {
    page: u32,
    fill: u32,
}

impl PoolArena {
    fn new() -> Self {
        PoolArena {
            pages: Vec::new(),
            prev: Vec::new(),
            // Built on the heap: the table is 512 KiB, too much for a worker's stack.
            tail: vec![
                Tail {
                    page: NO_PAGE,
                    fill: POOL_PAGE as u32,
                };
                POOL_BUCKETS
            ]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("the table has POOL_BUCKETS entries")),
            active: vec![0; POOL_BUCKETS / 64],
        }
    }

    /// Appends the nonzero values (±0 are in neither pool).
    fn extend(&mut self, values: &[f32]) {
        let (tails, pages) = (&mut *self.tail, &mut self.pages);
        for &x in values {
            let bits = x.to_bits();
            if bits & 0x7fff_ffff == 0 {
                continue;
            }
            // In bounds by type: the index has 16 bits, the table 2¹⁶ entries.
            let b = (bits >> POOL_SHIFT) as usize;
            let tail = &mut tails[b];
            if tail.fill as usize == POOL_PAGE {
                if tail.page == NO_PAGE {
                    self.active[b / 64] |= 1 << (b % 64);
                }
                Self::new_page(tail, pages, &mut self.prev);
            }
            pages[tail.page as usize][tail.fill as usize % POOL_PAGE] = bits as u16;
            tail.fill += 1;
        }
    }

    #[cold]
    fn new_page(tail: &mut Tail, pages: &mut Vec<[u16; POOL_PAGE]>, prev: &mut Vec<u32>) {
        prev.push(tail.page);
        tail.page = pages.len() as u32;
        tail.fill = 0;
        pages.push([0; POOL_PAGE]);
    }

    /// Bucket `b`'s pages, last first, each with how many values it holds.
    fn pages(&self, b: usize) -> impl Iterator<Item = &[u16]> {
        let tail = self.tail[b];
        let mut page = tail.page;
        let mut fill = tail.fill as usize;
        std::iter::from_fn(move || {
            if page == NO_PAGE {
                return None;
            }
            let values = &self.pages[page as usize][..fill];
            page = self.prev[page as usize];
            fill = POOL_PAGE;
            Some(values)
        })
    }
}

impl JointPools {
    /// Adds weights (zeros are counted out). Safe to call from many threads at once.
    pub fn extend(&self, values: &[f32]) {
        let slot = rayon::current_thread_index()
            .map_or(self.arenas.len() - 1, |i| i.min(self.arenas.len() - 2));
        // Each worker has its own slot, so the lock is uncontended but for callers outside
        // the pool, which share the last.
        let mut arena = self.arenas[slot]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        arena.get_or_insert_with(PoolArena::new).extend(values);
    }

    fn arenas(&mut self) -> Vec<&PoolArena> {
        self.arenas
            .iter_mut()
            .filter_map(|m| {
                m.get_mut()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .as_ref()
            })
            .collect()
    }

    /// How many values are pooled (zeros are in neither pool).
    pub fn len(&mut self) -> usize {
        self.arenas()
            .iter()
            .map(|a| {
                a.pages.len() * POOL_PAGE
                    - a.tail
                        .iter()
                        .map(|t| POOL_PAGE - t.fill as usize)
                        .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// (positive line, negative line), each over its values in ascending order of magnitude.
    pub fn lines(mut self) -> (StudyLine, StudyLine) {
        use rayon::prelude::*;
        let arenas = self.arenas();
        // The buckets that hold values, in order.
        let mut active = vec![0u64; POOL_BUCKETS / 64];
        for arena in &arenas {
            for (w, &a) in active.iter_mut().zip(&arena.active) {
                *w |= a;
            }
        }
        let buckets: Vec<usize> = (0..POOL_BUCKETS)
            .filter(|&b| active[b / 64] >> (b % 64) & 1 == 1)
            .collect();
        // Each bucket sorted and summed on its own, in parallel: its count and its sums about
        // its own lowest value with ranks from 0, which do not depend on the other buckets.
        let parts: Vec<BucketSums> = buckets
            .par_iter()
            .map_init(Vec::new, |values: &mut Vec<u16>, &b| {
                values.clear();
                for arena in &arenas {
                    arena.pages(b).for_each(|p| values.extend_from_slice(p));
                }
                bucket_sums(b, values)
            })
            .collect();
        // Then, in bucket order (the same result whatever the thread count and however the
        // values were spread over the arenas), each bucket's ranks start where the ones below
        // end, and its sums move to a common shift.
        let line = |side: std::ops::Range<usize>| {
            let parts: Vec<&BucketSums> = buckets
                .iter()
                .zip(&parts)
                .filter(|(b, _)| side.contains(b))
                .map(|(_, p)| p)
                .collect();
            let count: usize = parts.iter().map(|p| p.count).sum();
            // The shift: the lowest log of the median's bucket, as `StudyLine::from_logs` shifts
            // by its first value, so that the sums of squares do not cancel.
            let mut below = 0;
            let mut shift = 0.0;
            for p in &parts {
                shift = p.shift;
                if below + p.count > count / 2 {
                    break;
                }
                below += p.count;
            }
            let (mut sd, mut sid, mut sdd) = (0.0f64, 0.0f64, 0.0f64);
            let mut first = 0usize;
            for p in &parts {
                let (m, delta) = (p.count as f64, p.shift - shift);
                let [sg, skg, sgg] = p.sums;
                // Σ(t − c) and Σ(first + k)(t − c) and Σ(t − c)², from the sums of g = t − c_b.
                let d = sg + m * delta;
                sid += first as f64 * d + (skg + delta * (m * (m - 1.0) / 2.0));
                sd += d;
                sdd += sgg + 2.0 * delta * sg + m * delta * delta;
                first += p.count;
            }
            StudyLine::from_shifted_sums(count, shift, sd, sid, sdd)
        };
        (line(0..POOL_NEGATIVE), line(POOL_NEGATIVE..POOL_BUCKETS))
    }
}

/// One bucket of the joint fit: how many values, the log it is summed about, and
/// `[Σg, Σk·g, Σg²]` with `g = ln|v| − shift` and k = 0, 1, … its values' ranks within it.
struct BucketSums {
    count: usize,
    shift: f64,
    sums: [f64; 3],
}

/// Sorts a bucket's low bits and sums it. A normal bucket is summed about the log of its
/// lowest value, each log that plus a series (see [`logsum`]): bitwise the log the per-class
/// study lines take of that value. Subnormal and non-finite buckets take libm's log, about 0.
fn bucket_sums(b: usize, sorted: &mut [u16]) -> BucketSums {
    if sorted.len() > 64 {
        radsort::sort(sorted);
    } else {
        sorted.sort_unstable();
    }
    let high = (b as u32) << POOL_SHIFT;
    let exponent = (high >> 23) & 0xff;
    if exponent == 0 || exponent == 0xff {
        let (mut sd, mut sid, mut sdd) = (0.0f64, 0.0f64, 0.0f64);
        for (k, &lo) in sorted.iter().enumerate() {
            let d = logsum::ln_abs(f32::from_bits(high | lo as u32));
            sd += d;
            sid += k as f64 * d;
            sdd += d * d;
        }
        return BucketSums {
            count: sorted.len(),
            shift: 0.0,
            sums: [sd, sid, sdd],
        };
    }
    BucketSums {
        count: sorted.len(),
        shift: logsum::bucket_base(high, 0.0),
        sums: logsum::bucket_log_sums(sorted, 0.0, logsum::bucket_inv(high), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KS bounds are the same bits with and without AVX2, on both shapes of F and on NaN.
    #[test]
    fn ks_bounds_equal_the_scalar_bounds_bitwise() {
        let block: Vec<f32> = (0..15).map(|i| -3.0 + 0.37 * i as f32).collect();
        for convex in [true, false] {
            let line = KsLine {
                xa: -3.0,
                xb: 2.6,
                fa: 0.01,
                fb: if convex { 0.4 } else { f64::NAN },
                sa: 0.02,
                sb: 0.3,
                slope: 0.07,
                inv_n: 1.0 / 4096.0,
                convex,
            };
            let mut got = [0.0f64; 16];
            line.bounds(&block, 100, &mut got);
            for (k, &g) in got.iter().enumerate().take(block.len()) {
                assert_eq!(
                    g.to_bits(),
                    line.bound(block[k], 100 + k).to_bits(),
                    "{convex} {k}"
                );
            }
        }
    }

    /// The fit's block sums are the same bits with and without AVX2, a short last block
    /// included; and a changed order would show.
    #[test]
    fn block_prefix_sums_equal_the_scalar_sums_bitwise() {
        let xs: Vec<f32> = (0..4103)
            .map(|i| ((i * 7919) % 4099) as f32 * 1e-3 - 2.0)
            .collect();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let fast = block_prefix_sums::<16>(&xs, 0.125, &mut got);
        let slow = block_prefix_sums_scalar(xs.chunks(16), 0.125, &mut want, (0.0, 0.0));
        assert_eq!(
            (fast.0.to_bits(), fast.1.to_bits()),
            (slow.0.to_bits(), slow.1.to_bits())
        );
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(got.len(), 4103usize.div_ceil(16));
        let mut other = Vec::new();
        let reordered = block_prefix_sums_scalar(xs.chunks(8), 0.125, &mut other, (0.0, 0.0));
        assert_ne!(reordered.1.to_bits(), slow.1.to_bits());
    }

    /// The AVX2 lanes of Vuong's sums equal the scalar lanes bit for bit, values on both sides
    /// of μ and on it (where `t = 0` takes the upper slope) included; and a changed operation
    /// order would show.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn loglik_lanes_avx2_equal_the_scalar_lanes_bitwise() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let xs: Vec<f32> = (0..4099)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 50 == 0 {
                    0.25
                } else {
                    (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                }
            })
            .collect();
        let k = [0.25, 0.01, 1.0 / 0.577, -1.3 / 0.4, 1.0 / (1.3 * 0.4)];
        let zero = ([0.0; 4], [0.0; 4]);
        let scalar = loglik_lanes(xs[..4096].iter(), k, zero);
        // SAFETY: the CPU has AVX2, checked above.
        let vector = unsafe { loglik_lanes_avx2(xs.chunks_exact(4), k) };
        let bits = |a: [f64; 4]| a.map(f64::to_bits);
        assert_eq!(bits(vector.0), bits(scalar.0));
        assert_eq!(bits(vector.1), bits(scalar.1));
        // Summed in another order (lanes swapped in the input), the sums differ in their bits.
        let swapped: Vec<f32> = xs
            .chunks_exact(4)
            .flat_map(|q| [q[1], q[0], q[2], q[3]])
            .collect();
        let other = loglik_lanes(swapped.iter(), k, zero);
        assert_ne!(bits(other.0), bits(scalar.0));
    }

    #[test]
    fn design_counterexample_has_optimum_at_5_9() {
        let xs = [-6.9f32, -4.3, -3.5, 5.9, 6.1];
        let fit = fit_sorted(&xs);
        assert_eq!(fit.index, Some(3));
        assert_eq!(fit.params.loc, 5.9f32 as f64);
        assert!(!fit.degenerate);
    }

    #[test]
    fn closed_form_hand_computed() {
        // [0, 1, 3] at μ = 1: A = 2, B = 1, n = 3 → κ = (1/2)^(1/4), s = (2/9)^(1/4)(√(2/3) + √(1/3)).
        let fit = fit_sorted(&[0.0, 1.0, 3.0]);
        assert_eq!(fit.params.loc, 1.0);
        let k = 0.5f64.powf(0.25);
        let s = (2.0f64 / 9.0).powf(0.25) * ((2.0f64 / 3.0).sqrt() + (1.0f64 / 3.0).sqrt());
        assert!((fit.params.kappa - k).abs() < 1e-15);
        assert!((fit.params.scale - s).abs() < 1e-15);
        let direct = nll_grad(&[0.0, 1.0, 3.0], &fit.params);
        assert!((direct.nll - fit.nll).abs() < 1e-12);
        assert!(direct.d_scale.abs() < 1e-12 && direct.d_kappa.abs() < 1e-12);
    }

    #[test]
    fn degenerate_rows() {
        assert!(fit_sorted(&[]).degenerate);
        assert!(fit_sorted(&[1.0, 1.0, 1.0, 1.0]).degenerate);
        assert!(fit_sorted(&[0.0, 0.0, 2.0, 2.0]).degenerate);
        assert!(fit_sorted(&[1.0, 2.0]).degenerate);
        assert!(!fit_sorted(&[0.0, 1.0, 2.0]).degenerate);
        assert!(ks_sorted(&[1.0, 1.0], &AldParams::NAN).is_nan());
    }

    #[test]
    fn cdf_ppf_inverse_and_mean() {
        let p = AldParams::new(0.3, 1.7, 0.6);
        for u in [1e-9, 0.01, 0.2, 0.5, 0.7, 0.99] {
            assert!((p.cdf(p.ppf(u)) - u).abs() < 1e-12);
        }
        // The CDF is continuous at μ with value κ²/(1+κ²).
        let k2 = 0.36;
        assert!((p.cdf(0.3) - (1.0 - 1.0 / (1.0 + k2))).abs() < 1e-15);
        assert!((p.cdf(0.3 - 1e-12) - k2 / (1.0 + k2)).abs() < 1e-9);
        assert!((p.mean() - (0.3 + 1.7 * (1.0 / 0.6 - 0.6))).abs() < 1e-15);
    }

    #[test]
    fn aic_choice() {
        assert_eq!(aic_best(10.0, 10.0, 10.0), Some(Model::Gauss));
        assert_eq!(aic_best(8.9, 10.0, 11.0), Some(Model::Ald));
        assert_eq!(aic_best(f64::NAN, f64::NAN, 1.0), Some(Model::Laplace));
        assert_eq!(aic_best(f64::NAN, f64::NAN, f64::NAN), None);
    }

    #[test]
    fn seed_derived_nan_when_slope_small() {
        let line = StudyLine {
            count: 10,
            slope: 0.5,
            intercept: 0.0,
            r2: 1.0,
        };
        assert!(line.k().is_nan() && line.mean().is_nan());
        let line = StudyLine {
            count: 10,
            slope: 3.0,
            intercept: 0.0,
            r2: 1.0,
        };
        let k = (1.0f64 / 2.0).sqrt();
        assert!((line.k() - k).abs() < 1e-15);
        assert!((line.lambda() - 3.0 * k).abs() < 1e-15);
        assert!((line.mean() - (1.0 - k * k) / (3.0 * k * k)).abs() < 1e-15);
    }
}

// ---------------------------------------------------------------------------------------------
// docs/DESIGN.md 2.6: calibrated tests.

/// Log-density of the Gaussian N(m, σ²) at x.
pub fn gauss_log_pdf(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    -0.5 * (2.0 * std::f64::consts::PI * sd * sd).ln() - 0.5 * z * z
}

/// Log-density of the Laplace law with location `median` and scale `b` at x (the baseline of
/// docs/DESIGN.md 2.3, whose MLE is the median and the mean absolute deviation).
pub fn laplace_log_pdf(x: f64, median: f64, b: f64) -> f64 {
    -(2.0 * b).ln() - (x - median).abs() / b
}

/// Σd and Σd² of the per-value log-density differences `d = ℓ_ALD(x) − ℓ_N(x)` (docs/DESIGN.md 2.6),
/// the one more pass over a row that Vuong's test needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogLikDiff {
    pub n: usize,
    pub sum: f64,
    pub sum_sq: f64,
}

impl LogLikDiff {
    pub const NAN: LogLikDiff = LogLikDiff {
        n: 0,
        sum: f64::NAN,
        sum_sq: f64::NAN,
    };

    /// The constant part `c` of every `d = c + v(x)`: `−ln(s(κ + 1/κ)) + ½ln(2πσ²)`.
    /// Devices sum only `v(x)` (no logarithms per value) and the host adds `c` back.
    pub fn constant(ald: &AldParams, sd: f64) -> f64 {
        let k = ald.kappa;
        -(ald.scale * (k + 1.0 / k)).ln() + 0.5 * (2.0 * std::f64::consts::PI * sd * sd).ln()
    }

    /// From the device's `Σv`, `Σv²`: `Σd = nc + Σv`, `Σd² = nc² + 2cΣv + Σv²`.
    pub fn from_variable_sums(n: usize, c: f64, sv: f64, svv: f64) -> Self {
        let nf = n as f64;
        LogLikDiff {
            n,
            sum: nf * c + sv,
            sum_sq: nf * c * c + 2.0 * c * sv + svv,
        }
    }

    /// Vuong's statistic `Z = Σd / (√n·ω)`, `ω² = mean(d²) − mean(d)²`, and its one-sided p
    /// for "the ALD fits better" (`1 − Φ(Z)`). NaN when ω is 0 or the sums are not finite.
    pub fn vuong(&self) -> (f64, f64) {
        let nf = self.n as f64;
        let mean = self.sum / nf;
        let omega2 = self.sum_sq / nf - mean * mean;
        if omega2.is_nan() || omega2 <= 0.0 || omega2.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        let z = self.sum / (nf.sqrt() * omega2.sqrt());
        (z, normal_sf(z))
    }
}

/// [`LogLikDiff`] of a segment at the ALD's and the Gaussian's parameters, in f64.
pub fn loglik_diff(xs: &[f32], ald: &AldParams, mean: f64, sd: f64) -> LogLikDiff {
    if xs.is_empty() || !ald.is_valid() || sd.is_nan() || sd <= 0.0 || !mean.is_finite() {
        return LogLikDiff::NAN;
    }
    let c = LogLikDiff::constant(ald, sd);
    // v(x) = d(x) − c, the ALD's exponent plus the Gaussian's square, with the divisions hoisted
    // and branch-free: this pass runs on every replicate row of the bootstrap.
    let k = [
        ald.loc,
        mean,
        1.0 / sd,
        -ald.kappa / ald.scale,
        1.0 / (ald.kappa * ald.scale),
    ];
    // Four lanes, combined as (l0 + l1) + (l2 + l3), so that the additions do not wait on each
    // other (one chain of f64 additions made this pass as slow as the row's sort). Value i goes
    // to lane i mod 4; with AVX2 the four lanes are one register (the same operations in the
    // same order, so the same bits).
    let mut quads = xs.chunks_exact(4);
    let rest = quads.remainder();
    let mut sums = ([0.0f64; 4], [0.0f64; 4]);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked above.
        sums = unsafe { loglik_lanes_avx2(quads.by_ref(), k) };
    }
    let (sv, svv) = loglik_lanes(quads.flatten().chain(rest), k, sums);
    let total = |a: [f64; 4]| (a[0] + a[1]) + (a[2] + a[3]);
    LogLikDiff::from_variable_sums(xs.len(), c, total(sv), total(svv))
}

/// The sums of `y = x − shift` over `xs` in blocks of `B` (a multiple of 4): the running `Σy` at
/// each block's end pushed to `ends`, and `(Σy, Σy²)`. Four lanes per block (value i of a quad
/// in lane i), added as (l0 + l1) + (l2 + l3), so that the additions do not wait on each other;
/// with AVX2 the lanes are one register, the same operations in the same order.
fn block_prefix_sums<const B: usize>(xs: &[f32], shift: f64, ends: &mut Vec<f64>) -> (f64, f64) {
    let (mut run, mut squares) = (0.0, 0.0);
    let mut blocks = xs.chunks_exact(B);
    let rest = blocks.remainder();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked above.
        (run, squares) = unsafe { block_prefix_sums_avx2::<B>(blocks.by_ref(), shift, ends) };
    }
    let blocks = blocks.chain([rest]).filter(|b| !b.is_empty());
    block_prefix_sums_scalar(blocks, shift, ends, (run, squares))
}

/// [`block_prefix_sums`] one value at a time, on from the sums `(run, squares)`.
fn block_prefix_sums_scalar<'a>(
    blocks: impl Iterator<Item = &'a [f32]>,
    shift: f64,
    ends: &mut Vec<f64>,
    (mut run, mut squares): (f64, f64),
) -> (f64, f64) {
    for block in blocks {
        let (mut s1, mut s2) = ([0.0f64; 4], [0.0f64; 4]);
        for (i, &x) in block.iter().enumerate() {
            let y = x as f64 - shift;
            s1[i % 4] += y;
            s2[i % 4] += y * y;
        }
        run += (s1[0] + s1[1]) + (s1[2] + s1[3]);
        squares += (s2[0] + s2[1]) + (s2[2] + s2[3]);
        ends.push(run);
    }
    (run, squares)
}

/// [`block_prefix_sums`] over whole blocks, the four lanes in one AVX2 register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_prefix_sums_avx2<'a, const B: usize>(
    blocks: impl Iterator<Item = &'a [f32]>,
    shift: f64,
    ends: &mut Vec<f64>,
) -> (f64, f64) {
    use std::arch::x86_64::*;
    let (mut run, mut squares) = (0.0, 0.0);
    let c = _mm256_set1_pd(shift);
    for block in blocks {
        let (mut s1, mut s2) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for q in block.chunks_exact(4) {
            let q: &[f32; 4] = q.try_into().expect("chunks of four");
            // SAFETY: `q` holds four f32, the 16 bytes read.
            let y = _mm256_sub_pd(_mm256_cvtps_pd(unsafe { _mm_loadu_ps(q.as_ptr()) }), c);
            s1 = _mm256_add_pd(s1, y);
            s2 = _mm256_add_pd(s2, _mm256_mul_pd(y, y));
        }
        let (a, b) = (lanes4(s1), lanes4(s2));
        run += (a[0] + a[1]) + (a[2] + a[3]);
        squares += (b[0] + b[1]) + (b[2] + b[3]);
        ends.push(run);
    }
    (run, squares)
}

/// [`loglik_diff`]'s `v(x)`: `t·a + (½z)·z`, `t = x − μ`, `z = (x − mean)/σ`, `a = −κ/s` where
/// `t ≥ 0` and `1/(κs)` elsewhere; `k` is `[μ, mean, 1/σ, −κ/s, 1/(κs)]`.
#[inline(always)]
fn loglik_v(x: f32, k: [f64; 5]) -> f64 {
    let [loc, mean, inv_sd, above, below] = k;
    let x = x as f64;
    let t = x - loc;
    let z = (x - mean) * inv_sd;
    t * if t >= 0.0 { above } else { below } + 0.5 * z * z
}

/// [`loglik_diff`]'s lane sums `(Σv, Σv²)` over `values` (value i in lane i mod 4), on from
/// `sums`.
fn loglik_lanes<'a>(
    values: impl Iterator<Item = &'a f32>,
    k: [f64; 5],
    (mut sv, mut svv): ([f64; 4], [f64; 4]),
) -> ([f64; 4], [f64; 4]) {
    for (i, &x) in values.enumerate() {
        let v = loglik_v(x, k);
        sv[i % 4] += v;
        svv[i % 4] += v * v;
    }
    (sv, svv)
}

/// [`loglik_lanes`] in one AVX2 register: per lane [`loglik_v`]'s operations in its order (no
/// fused multiply-adds), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn loglik_lanes_avx2<'a>(
    quads: impl Iterator<Item = &'a [f32]>,
    k: [f64; 5],
) -> ([f64; 4], [f64; 4]) {
    use std::arch::x86_64::*;
    let [loc, mean, inv_sd, above, below] = k.map(|c| _mm256_set1_pd(c));
    let half = _mm256_set1_pd(0.5);
    let (mut sv, mut svv) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for q in quads {
        let q: &[f32; 4] = q.try_into().expect("chunks of four");
        // SAFETY: `q` holds four f32, the 16 bytes read.
        let x = _mm256_cvtps_pd(unsafe { _mm_loadu_ps(q.as_ptr()) });
        let t = _mm256_sub_pd(x, loc);
        let z = _mm256_mul_pd(_mm256_sub_pd(x, mean), inv_sd);
        let a = _mm256_blendv_pd(
            below,
            above,
            _mm256_cmp_pd::<_CMP_GE_OQ>(t, _mm256_setzero_pd()),
        );
        let v = _mm256_add_pd(
            _mm256_mul_pd(t, a),
            _mm256_mul_pd(_mm256_mul_pd(half, z), z),
        );
        sv = _mm256_add_pd(sv, v);
        svv = _mm256_add_pd(svv, _mm256_mul_pd(v, v));
    }
    (lanes4(sv), lanes4(svv))
}

/// The four lanes of an AVX2 register of f64, in order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn lanes4(v: std::arch::x86_64::__m256d) -> [f64; 4] {
    bytemuck::cast(v)
}

/// The upper tail of the standard normal, `1 − Φ(z)`.
pub fn normal_sf(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().sf(z)
}

/// The likelihood ratio against the nested Laplace (κ = 1; docs/DESIGN.md 2.6):
/// `Λ = 2(NLL_laplace − NLL_ALD)` (clamped at 0: the ALD nests the Laplace, so only rounding makes
/// it negative) and `p = 1 − F_χ²(1)(Λ)`.
pub fn lrt_laplace(nll_laplace: f64, nll_ald: f64) -> (f64, f64) {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let stat = (2.0 * (nll_laplace - nll_ald)).max(0.0);
    if !stat.is_finite() || !nll_ald.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    let chi2 = ChiSquared::new(1.0).expect("one degree of freedom is a valid χ²");
    (stat, chi2.sf(stat))
}

/// The bootstrap's p-value `(1 + #{T*_b ≥ T}) / (B + 1)`.
pub fn bootstrap_p(exceed: u32, replicates: u32) -> f64 {
    (1.0 + exceed as f64) / (replicates as f64 + 1.0)
}

/// Benjamini–Hochberg q-values over the finite p-values (NaN stays NaN, and is not counted).
pub fn bh_qvalues(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len() as f64;
    let mut q = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0));
        q[i] = running;
    }
    q
}
