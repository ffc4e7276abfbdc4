//! The kernels' parameter and per-segment output structs, as the host hands them over and reads
//! them back: one `#[repr(C)]` definition each, with the f64 finish of each output beside it,
//! read and written by the WGSL kernels (`shaders/`) and the CUDA kernels (`kernels/common.cuh`) under the same
//! names. `tests/abi.rs` checks field by field that the shader and kernel declarations say what
//! these say, so a field moved in one place and not the other fails a test, not a GPU run.
//!
//! Each struct lists its fields in `FIELDS` (name, WGSL type) beside the definition, and
//! asserts at compile time that the list covers the struct's size.

use bytemuck::{Pod, Zeroable};

use super::SegmentStats;
use crate::ald::{self, AldFit, AldParams, Baselines, StudyLine, TailSums};

/// Invocations per workgroup of the WGSL segment kernels (`WG` in shaders/segments.wgsl) and
/// threads per block of the CUDA ones (`SEG_THREADS` in kernels/common.cuh).
pub const SEGMENT_THREADS: u32 = 256;

/// Invocations per workgroup of the drawing kernels (philox.wgsl's `draw_index`, generate.cu's
/// launch), one block of four values each.
pub const DRAW_THREADS: u32 = 256;

/// The CUDA row-sort tiles (kernels/sort_rows.cu's `ALDFIT_SORT_TILE` entry points): values per
/// tile and threads per block. The host picks the smallest tile that holds a row, or the largest
/// followed by merge passes. Narrow rows (a 6625 × 120 OCR head) get a 256-key tile: in the
/// 1024 one they would be 88 % padding.
pub const SORT_TILES: [(usize, u32); 5] = [
    (256, 128),
    (1024, 256),
    (2048, 256),
    (4096, 256),
    (8192, 512),
];

/// A segment `(row, lo, hi)` of the resident chunk (`Seg` in both languages).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Seg {
    pub row: u32,
    pub lo: u32,
    pub hi: u32,
    pub pad: u32,
}

impl Seg {
    pub const FIELDS: &'static [(&'static str, &'static str)] =
        &[("row", "u32"), ("lo", "u32"), ("hi", "u32"), ("pad", "u32")];

    pub fn len(&self) -> usize {
        self.hi.saturating_sub(self.lo) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.hi <= self.lo
    }
}

impl From<&super::Segment> for Seg {
    fn from(s: &super::Segment) -> Self {
        Seg {
            row: s.row,
            lo: s.lo,
            hi: s.hi,
            pad: 0,
        }
    }
}

/// The uniform of every WGSL segment kernel (`Params` in shaders/segments.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SegmentParams {
    /// Values per row of the resident chunk (or of the uploaded rows).
    pub cols: u32,
    /// Segments (or rows) in this dispatch.
    pub count: u32,
    /// Workgroups per row of the 2-D dispatch grid.
    pub groups_x: u32,
    /// The kernel's switch: strict partition, negative side, fit.wgsl's run-time 1.0 (as bits).
    pub flag: u32,
}

impl SegmentParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("count", "u32"),
        ("groups_x", "u32"),
        ("flag", "u32"),
    ];
}

/// The uniform of the workgroup-memory sort (`Params` in shaders/sort_rows.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SortParams {
    pub cols: u32,
    /// The next power of two ≥ cols, at most the tile.
    pub padded: u32,
    pub rows: u32,
    pub groups_x: u32,
}

impl SortParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("padded", "u32"),
        ("rows", "u32"),
        ("groups_x", "u32"),
    ];
}

/// The uniform of one step of the global-memory sort (`Params` in shaders/sort_wide.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct WideSortParams {
    pub cols: u32,
    pub padded: u32,
    pub rows: u32,
    pub groups_x: u32,
    /// The bitonic network's step (k, j).
    pub k: u32,
    pub j: u32,
    pub pad0: u32,
    pub pad1: u32,
}

impl WideSortParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("padded", "u32"),
        ("rows", "u32"),
        ("groups_x", "u32"),
        ("k", "u32"),
        ("j", "u32"),
        ("pad0", "u32"),
        ("pad1", "u32"),
    ];
}

/// The uniform of the drawing kernels (`Draw` in shaders/philox.wgsl): `blocks` invocations of
/// four values each over a grid `groups_x` workgroups wide.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Draw {
    pub cols: u32,
    pub blocks_per_row: u32,
    pub blocks: u32,
    pub groups_x: u32,
    /// The Philox key (the seed, low word first).
    pub key: [u32; 2],
    pub pad: [u32; 2],
}

impl Draw {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("blocks_per_row", "u32"),
        ("blocks", "u32"),
        ("groups_x", "u32"),
        ("key", "vec2<u32>"),
        ("pad", "vec2<u32>"),
    ];
}

/// One replicate row to draw (`Replicate` in shaders/philox.wgsl and kernels/common.cuh; the
/// CUDA field `cls` is WGSL's `class_`, both avoiding the keyword).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Replicate {
    pub class: u32,
    pub replicate: u32,
    /// `philox::NullModel` as its counter word.
    pub model: u32,
    pub pad: u32,
    /// Gaussian (m, σ, –, –); ALD and Laplace (μ, s, κ, –).
    pub p: [f32; 4],
}

impl Replicate {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("class_", "u32"),
        ("replicate", "u32"),
        ("model", "u32"),
        ("pad", "u32"),
        ("p", "vec4<f32>"),
    ];
}

impl From<&crate::philox::ReplicateRow> for Replicate {
    fn from(r: &crate::philox::ReplicateRow) -> Self {
        Replicate {
            class: r.class,
            replicate: r.replicate,
            model: r.model as u32,
            pad: 0,
            p: [r.params[0], r.params[1], r.params[2], 0.0],
        }
    }
}

/// The law a KS kernel measures each segment against, `(μ, s, κ)` (`KsLaw` in kernels/common.cuh;
/// the WGSL kernel reads it in f32 as [`KsLawF32`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct KsLaw {
    pub mu: f64,
    pub s: f64,
    pub kappa: f64,
}

impl KsLaw {
    pub const FIELDS: &'static [(&'static str, &'static str)] =
        &[("mu", "f64"), ("s", "f64"), ("kappa", "f64")];

    /// The segment's law, or a harmless one where the fit is missing (its result is then masked
    /// by the GPU host layer, `backend::gpu`).
    pub fn of(p: &AldParams) -> Self {
        if p.is_valid() {
            KsLaw {
                mu: p.loc,
                s: p.scale,
                kappa: p.kappa,
            }
        } else {
            KsLaw {
                mu: 0.0,
                s: 1.0,
                kappa: 1.0,
            }
        }
    }
}

/// [`KsLaw`] as shaders/ks.wgsl reads it: F is evaluated in f32 (the contract allows 1e-4).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct KsLawF32 {
    pub mu: f32,
    pub s: f32,
    pub kappa: f32,
    pub pad: f32,
}

impl KsLawF32 {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("mu", "f32"),
        ("s", "f32"),
        ("kappa", "f32"),
        ("pad", "f32"),
    ];
}

impl From<&KsLaw> for KsLawF32 {
    fn from(l: &KsLaw) -> Self {
        KsLawF32 {
            mu: l.mu as f32,
            s: l.s as f32,
            kappa: l.kappa as f32,
            pad: 0.0,
        }
    }
}

/// What the log-likelihood-difference kernels take per segment (`LoglikLaw` in
/// kernels/common.cuh): the ALD's `μ`, `κ/s`, `1/(κs)` and the Gaussian's `m`, `1/σ`, so that
/// `v(x) = −κ/s·(x − μ)⁺ − (μ − x)⁺/(κs) + ((x − m)/σ)²/2` (docs/DESIGN.md 2.6).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoglikLaw {
    pub mu: f64,
    pub k_over_s: f64,
    pub inv_ks: f64,
    pub m: f64,
    pub inv_sd: f64,
}

impl LoglikLaw {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("mu", "f64"),
        ("k_over_s", "f64"),
        ("inv_ks", "f64"),
        ("m", "f64"),
        ("inv_sd", "f64"),
    ];

    /// The segment's two laws, or harmless ones where a fit is missing (its sums are then
    /// masked by the GPU host layer, `backend::gpu`).
    pub fn of(p: &AldParams, (m, sd): (f64, f64)) -> Self {
        if p.is_valid() && sd > 0.0 && m.is_finite() {
            LoglikLaw {
                mu: p.loc,
                k_over_s: p.kappa / p.scale,
                inv_ks: 1.0 / (p.kappa * p.scale),
                m,
                inv_sd: 1.0 / sd,
            }
        } else {
            LoglikLaw {
                mu: 0.0,
                k_over_s: 1.0,
                inv_ks: 1.0,
                m: 0.0,
                inv_sd: 1.0,
            }
        }
    }
}

/// [`LoglikLaw`] as shaders/loglik.wgsl reads it: the locations as f32 pairs `(hi, lo)` whose
/// sum keeps the f64's precision, so that `x − μ` is exact before the f32 products.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoglikLawF32 {
    pub mu: [f32; 2],
    pub k_over_s: f32,
    pub inv_ks: f32,
    pub m: [f32; 2],
    pub inv_sd: f32,
    pub pad: f32,
}

impl LoglikLawF32 {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("mu", "vec2<f32>"),
        ("k_over_s", "f32"),
        ("inv_ks", "f32"),
        ("m", "vec2<f32>"),
        ("inv_sd", "f32"),
        ("pad", "f32"),
    ];
}

impl From<&LoglikLaw> for LoglikLawF32 {
    fn from(l: &LoglikLaw) -> Self {
        LoglikLawF32 {
            mu: split_f64(l.mu),
            k_over_s: l.k_over_s as f32,
            inv_ks: l.inv_ks as f32,
            m: split_f64(l.m),
            inv_sd: l.inv_sd as f32,
            pad: 0.0,
        }
    }
}

/// An f64 as an f32 pair `(hi, lo)` whose sum keeps the f64's precision.
pub fn split_f64(x: f64) -> [f32; 2] {
    let hi = x as f32;
    [hi, (x - hi as f64) as f32]
}

/// What kernels/segment_stats.cu hands back per segment, in f64; the host finishes κ̂, ŝ and the
/// NLLs from it (docs/DESIGN.md 2.2, 2.3).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SegmentStatsOut {
    /// The winning order statistic j*, or −1 where no interior candidate exists.
    pub j: f64,
    /// A* = Σ (x − x(j*))⁺ and B* = Σ (x(j*) − x)⁺.
    pub a: f64,
    pub b: f64,
    pub objective: f64,
    /// 1 where an end point beats every interior candidate.
    pub boundary: f64,
    /// x(j*).
    pub loc: f64,
    pub mean: f64,
    pub var: f64,
    pub median: f64,
    /// Mean |x − median|.
    pub mad: f64,
    /// KS at the fitted parameters (NaN when not asked for).
    pub ks: f64,
    pub n: f64,
    pub min: f64,
    pub max: f64,
}

impl SegmentStatsOut {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("j", "f64"),
        ("a", "f64"),
        ("b", "f64"),
        ("objective", "f64"),
        ("boundary", "f64"),
        ("loc", "f64"),
        ("mean", "f64"),
        ("var", "f64"),
        ("median", "f64"),
        ("mad", "f64"),
        ("ks", "f64"),
        ("n", "f64"),
        ("min", "f64"),
        ("max", "f64"),
    ];

    pub fn fit(&self) -> AldFit {
        if self.j < 0.0 {
            return AldFit::DEGENERATE;
        }
        let (kappa, scale, nll) = ald::profile(self.a, self.b, self.n as usize);
        AldFit {
            params: AldParams {
                loc: self.loc,
                scale,
                kappa,
            },
            nll,
            index: Some(self.j as usize),
            boundary: self.boundary == 1.0,
            degenerate: false,
        }
    }

    pub fn baselines(&self) -> Baselines {
        let n = self.n as usize;
        if n == 0 {
            return Baselines::NAN;
        }
        Baselines {
            min: self.min,
            max: self.max,
            mean: self.mean,
            var: self.var,
            median: self.median,
            mad: self.mad,
            nll_gauss: ald::gauss_nll(n, self.var),
            nll_laplace: ald::laplace_nll(n, self.mad),
        }
    }

    /// Fit, KS and baselines; KS is NaN where there is no fit.
    pub fn stats(&self) -> SegmentStats {
        let fit = self.fit();
        SegmentStats {
            ks: if fit.params.is_valid() {
                self.ks
            } else {
                f64::NAN
            },
            baselines: self.baselines(),
            fit,
        }
    }
}

/// What shaders/fit.wgsl hands back per segment. A* and B* are double-f32 pairs in units of
/// `unit` = 2^e (docs/DESIGN.md 4); the host adds the halves and finishes in f64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FitOut {
    /// j*, or `u32::MAX` where no interior candidate exists.
    pub j: u32,
    pub a_hi: f32,
    pub b_hi: f32,
    pub objective: f32,
    /// 1 where an end point beats every interior candidate.
    pub boundary: f32,
    pub unit: f32,
    /// x(j*).
    pub loc: f32,
    pub n: f32,
    pub a_lo: f32,
    pub b_lo: f32,
}

impl FitOut {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("j", "u32"),
        ("a_hi", "f32"),
        ("b_hi", "f32"),
        ("objective", "f32"),
        ("boundary", "f32"),
        ("unit", "f32"),
        ("loc", "f32"),
        ("n", "f32"),
        ("a_lo", "f32"),
        ("b_lo", "f32"),
    ];

    pub fn fit(&self) -> AldFit {
        if self.j == u32::MAX {
            return AldFit::DEGENERATE;
        }
        let r = self.unit as f64;
        let a = self.a_hi as f64 + self.a_lo as f64;
        let b = self.b_hi as f64 + self.b_lo as f64;
        let (kappa, scale, nll) = ald::profile(a * r, b * r, self.n as usize);
        AldFit {
            params: AldParams {
                loc: self.loc as f64,
                scale,
                kappa,
            },
            nll,
            index: Some(self.j as usize),
            boundary: self.boundary == 1.0,
            degenerate: false,
        }
    }
}

/// What shaders/baselines.wgsl hands back per segment: sums of `z = (x − mid)/range`, the median
/// in z units being 0 or halfway to `mid_below`; the host finishes in f64 (docs/DESIGN.md 2.3).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BaselineSums {
    pub sum_z: f32,
    pub sum_zz: f32,
    /// Σ |z − median_z|.
    pub sum_abs_dev: f32,
    pub range: f32,
    /// The middle value x(n/2), and its lower neighbour for even n.
    pub mid: f32,
    pub mid_below: f32,
    pub n: f32,
    pub min: f32,
    pub max: f32,
    pub pad: f32,
}

impl BaselineSums {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("sum_z", "f32"),
        ("sum_zz", "f32"),
        ("sum_abs_dev", "f32"),
        ("range", "f32"),
        ("mid", "f32"),
        ("mid_below", "f32"),
        ("n", "f32"),
        ("min", "f32"),
        ("max", "f32"),
        ("pad", "f32"),
    ];

    pub fn baselines(&self) -> Baselines {
        let n = self.n as usize;
        if n == 0 {
            return Baselines::NAN;
        }
        let (nf, r, shift) = (n as f64, self.range as f64, self.mid as f64);
        let mean_z = self.sum_z as f64 / nf;
        let var = ((self.sum_zz as f64 / nf - mean_z * mean_z) * r * r).max(0.0);
        let mad = self.sum_abs_dev as f64 / nf * r;
        let median = if n % 2 == 1 {
            shift
        } else {
            0.5 * (shift + self.mid_below as f64)
        };
        Baselines {
            min: self.min as f64,
            max: self.max as f64,
            mean: shift + mean_z * r,
            var,
            median,
            mad,
            nll_gauss: ald::gauss_nll(n, var),
            nll_laplace: ald::laplace_nll(n, mad),
        }
    }
}

/// The study line's sums of `d = t − t₀` over a segment (`LineSums` in kernels/common.cuh): Σd,
/// Σi·d, Σd² and the shift t₀ (docs/DESIGN.md 2.4).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LineSums {
    pub sum_d: f64,
    pub sum_id: f64,
    pub sum_dd: f64,
    pub t0: f64,
}

impl LineSums {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("sum_d", "f64"),
        ("sum_id", "f64"),
        ("sum_dd", "f64"),
        ("t0", "f64"),
    ];

    pub fn line(&self, len: usize) -> StudyLine {
        StudyLine::from_shifted_sums(len, self.t0, self.sum_d, self.sum_id, self.sum_dd)
    }
}

/// [`LineSums`] as shaders/study_line.wgsl hands them back: in f32, with `Σ(i − c)·d` about the
/// segment's centre `c = (len − 1)/2` in place of Σi·d, which would cancel in f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LineSumsF32 {
    pub sum_d: f32,
    pub sum_cd: f32,
    pub sum_dd: f32,
    pub t0: f32,
}

impl LineSumsF32 {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("sum_d", "f32"),
        ("sum_cd", "f32"),
        ("sum_dd", "f32"),
        ("t0", "f32"),
    ];

    pub fn line(&self, len: usize) -> StudyLine {
        let centre = (len as f64 - 1.0) / 2.0;
        let sum_id = self.sum_cd as f64 + centre * self.sum_d as f64;
        StudyLine::from_shifted_sums(
            len,
            self.t0 as f64,
            self.sum_d as f64,
            sum_id,
            self.sum_dd as f64,
        )
    }
}

/// Σv and Σv² of a segment (`LoglikSums` in kernels/common.cuh; shaders/loglik.wgsl hands back
/// the same in f32 as [`LoglikSumsF32`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoglikSums {
    pub sum_v: f64,
    pub sum_vv: f64,
}

impl LoglikSums {
    pub const FIELDS: &'static [(&'static str, &'static str)] =
        &[("sum_v", "f64"), ("sum_vv", "f64")];
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoglikSumsF32 {
    pub sum_v: f32,
    pub sum_vv: f32,
}

impl LoglikSumsF32 {
    pub const FIELDS: &'static [(&'static str, &'static str)] =
        &[("sum_v", "f32"), ("sum_vv", "f32")];
}

impl From<&LoglikSumsF32> for LoglikSums {
    fn from(s: &LoglikSumsF32) -> Self {
        LoglikSums {
            sum_v: s.sum_v as f64,
            sum_vv: s.sum_vv as f64,
        }
    }
}

/// The NLL kernels' tail sums of one row about its μ (`TailSumsOut` in kernels/common.cuh,
/// [`TailSumsF32`] in shaders/nll_grad.wgsl); the host finishes `NllGrad::from_sums`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TailSumsOut {
    pub above: f64,
    pub below: f64,
    pub n_above: f64,
    pub n_below: f64,
}

impl TailSumsOut {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("above", "f64"),
        ("below", "f64"),
        ("n_above", "f64"),
        ("n_below", "f64"),
    ];

    pub fn sums(&self, cols: usize) -> TailSums {
        TailSums {
            n: cols,
            above: self.above,
            below: self.below,
            n_above: self.n_above as usize,
            n_below: self.n_below as usize,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TailSumsF32 {
    pub above: f32,
    pub below: f32,
    pub n_above: f32,
    pub n_below: f32,
}

impl TailSumsF32 {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("above", "f32"),
        ("below", "f32"),
        ("n_above", "f32"),
        ("n_below", "f32"),
    ];

    pub fn sums(&self, cols: usize) -> TailSums {
        TailSums {
            n: cols,
            above: self.above as f64,
            below: self.below as f64,
            n_above: self.n_above as usize,
            n_below: self.n_below as usize,
        }
    }
}

/// Bytes a WGSL type of `FIELDS` takes.
pub fn wgsl_size(ty: &str) -> usize {
    match ty {
        "u32" | "f32" => 4,
        "vec2<u32>" | "vec2<f32>" | "f64" => 8,
        "vec4<u32>" | "vec4<f32>" => 16,
        other => panic!("no size for {other}"),
    }
}

const _: () = {
    // Every FIELDS list covers its struct (checked again by tests/abi.rs with the sizes).
    assert!(std::mem::size_of::<Seg>() == 16);
    assert!(std::mem::size_of::<SegmentParams>() == 16);
    assert!(std::mem::size_of::<SortParams>() == 16);
    assert!(std::mem::size_of::<WideSortParams>() == 32);
    assert!(std::mem::size_of::<Draw>() == 32);
    assert!(std::mem::size_of::<Replicate>() == 32);
    assert!(std::mem::size_of::<KsLaw>() == 24);
    assert!(std::mem::size_of::<KsLawF32>() == 16);
    assert!(std::mem::size_of::<LoglikLaw>() == 40);
    assert!(std::mem::size_of::<LoglikLawF32>() == 32);
    assert!(std::mem::size_of::<SegmentStatsOut>() == 112);
    assert!(std::mem::size_of::<FitOut>() == 40);
    assert!(std::mem::size_of::<BaselineSums>() == 40);
    assert!(std::mem::size_of::<LineSums>() == 32);
    assert!(std::mem::size_of::<LineSumsF32>() == 16);
    assert!(std::mem::size_of::<LoglikSums>() == 16);
    assert!(std::mem::size_of::<LoglikSumsF32>() == 8);
    assert!(std::mem::size_of::<TailSumsOut>() == 32);
    assert!(std::mem::size_of::<TailSumsF32>() == 16);
};
