//! The bootstrap's random numbers (docs/DESIGN.md 2.6): Philox4x32-10 (Salmon et al., SC 2011,
//! the generator of cuRAND and Random123) and the transforms from its u32 words to replicate
//! values. The same arithmetic is written in `shaders/philox.wgsl` and `kernels/philox.cuh`.
//!
//! Philox is counter based: the four words of value block `j` of replicate `b` of class `k` under
//! null model `m` are `philox(key = seed, counter = (j, b, k, m))`, with no state carried between
//! values, so every backend and every thread can produce any value alone, and the u32 streams are
//! bitwise the same everywhere. The transforms run in f32 (a GPU has no f64), in one fixed order
//! of operations; only `ln`, `cos` and `sin` may differ by an ulp or two between devices.

/// Philox's multipliers and Weyl key increments (Random123's `PHILOX_M4x32_*`, `PHILOX_W32_*`).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds.
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = M0 as u64 * c[0] as u64;
        let p1 = M1 as u64 * c[2] as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The key of a 64-bit seed: low word first.
pub fn key_of(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// [`philox4x32_10`] on eight counters at once, lane by lane, so that the compiler can keep
/// the eight products of each round in vector registers. Bitwise the same as eight calls.
#[inline(always)]
pub fn philox4x32_10_x8(ctr: [[u32; 8]; 4], key: [u32; 2]) -> [[u32; 8]; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let mut next = [[0u32; 8]; 4];
        for l in 0..8 {
            let p0 = M0 as u64 * c[0][l] as u64;
            let p1 = M1 as u64 * c[2][l] as u64;
            next[0][l] = (p1 >> 32) as u32 ^ c[1][l] ^ k[0];
            next[1][l] = p1 as u32;
            next[2][l] = (p0 >> 32) as u32 ^ c[3][l] ^ k[1];
            next[3][l] = p0 as u32;
        }
        c = next;
    }
    c
}

/// Which law a replicate row is drawn from, and the counter's fourth word for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NullModel {
    /// The class's fitted Gaussian (mean m, standard deviation σ).
    Gauss = 0,
    /// The class's fitted ALD (μ, s, κ).
    Ald = 1,
    /// The class's fitted Laplace (median, b): the ALD with κ = 1 and s = b, the LRT's null.
    Laplace = 2,
}

/// The second block of an ALD value (its second exponential) is drawn with this added to the
/// counter's fourth word.
pub const SECOND_BLOCK: u32 = 256;

/// One replicate row to generate: whose row it mimics and from which law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicateRow {
    pub class: u32,
    pub replicate: u32,
    pub model: NullModel,
    /// Gauss: (m, σ, unused); ALD and Laplace: (μ, s, κ).
    pub params: [f32; 3],
}

impl ReplicateRow {
    /// The size of the terms a value is computed from: `σ·r_max` for the Gaussian (a device's
    /// cosine is accurate to an ulp of 1, not of a cosine near 0, and Box–Muller's radius reaches
    /// `r_max = √(2 ln 2²⁵)`), `s(κ + 1/κ)` for the ALD (whose two exponential terms `sE₁/κ` and
    /// `sκE₂` cancel). Rounding errors are relative to it, not to the value.
    pub fn spread(&self) -> f64 {
        let [_, s, k] = self.params.map(f64::from);
        match self.model {
            NullModel::Gauss => s * (50.0 * std::f64::consts::LN_2).sqrt(),
            NullModel::Ald | NullModel::Laplace => s * (k + 1.0 / k),
        }
    }
}

/// Uniform in (0, 1] from the top 24 bits: `((u >> 8) + 0.5)·2⁻²⁴`, rounded to f32 (ties to
/// even: the largest word gives exactly 1, whose log is 0, never an infinite value).
#[inline]
pub fn uniform(u: u32) -> f32 {
    // Through i32 (exact: 24 bits): x86 converts signed integers in vector registers.
    ((u >> 8) as i32 as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// `2π` in f32, as every backend writes it.
pub const TWO_PI: f32 = 6.283_185_5;

/// `ln x` for x in (0, 1] (what [`uniform`] gives), Cephes' `logf`: within an ulp or two of
/// the correctly rounded log, branch-free, so that arrays of it vectorise (libm's `logf` is a
/// call per value). The GPUs use their own `log`, within a few ulp of this.
#[inline(always)]
pub fn ln01(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m·2^e, m in [0.5, 1).
    let e = ((bits >> 23) as i32 - 126) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = if small { e - 1.0 } else { e };
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let mut y = 7.037_683_6e-2_f32;
    y = y * f - 1.151_461e-1;
    y = y * f + 1.167_699_9e-1;
    y = y * f - 1.242_014_1e-1;
    y = y * f + 1.424_932_3e-1;
    y = y * f - 1.666_805_8e-1;
    y = y * f + 2.000_071_5e-1;
    y = y * f - 2.499_999_4e-1;
    y = y * f + 3.333_333e-1;
    y = y * f * z;
    y += e * -2.121_944_4e-4;
    y += -0.5 * z;
    f + y + e * 0.693_359_4
}

/// `(sin θ, cos θ)` of θ in [0, 2π + ε] (what `TWO_PI·uniform` gives): Cody–Waite reduction by
/// π/2 in three parts, then Cephes' `sinf`/`cosf` polynomials on [−π/4, π/4]; branch-free.
#[inline(always)]
pub fn sin_cos(theta: f32) -> (f32, f32) {
    let k = (theta * std::f32::consts::FRAC_2_PI).round();
    let a = ((theta - k * 1.570_312_5) - k * 4.837_513e-4) - k * 7.549_79e-8;
    let z = a * a;
    let s = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * a + a;
    let c = ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    // θ = qπ/2 + a: sin θ = (s, c, −s, −c)[q], cos θ = (c, −s, −c, s)[q].
    let q = (k as i32) & 3;
    let (s, c) = if q & 1 == 1 { (c, s) } else { (s, c) };
    let sin = if q >= 2 { -s } else { s };
    let cos = if q == 1 || q == 2 { -c } else { c };
    (sin, cos)
}

/// Replicate values in batches of [`BATCH`] blocks: eight Philox blocks side by side, then each
/// transform over the whole batch, so that both vectorise.
const BATCH: usize = 8;

/// The values at positions `4j..4j+3` of a replicate row, for `j` in `j0..j0 + BATCH`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lanes indexed alike in several arrays: the vector shape
fn batch_values(
    row: &ReplicateRow,
    j0: u32,
    key: [u32; 2],
    philox_x8: impl Fn([[u32; BATCH]; 4], [u32; 2]) -> [[u32; BATCH]; 4],
) -> [f32; 4 * BATCH] {
    let m = row.model as u32;
    let ctr = |word3: u32| {
        let mut c = [[0u32; BATCH]; 4];
        for l in 0..BATCH {
            c[0][l] = j0.wrapping_add(l as u32);
            c[1][l] = row.replicate;
            c[2][l] = row.class;
            c[3][l] = word3;
        }
        c
    };
    let u = philox_x8(ctr(m), key);
    let [a, b, c] = row.params;
    // Computed word by word over the lanes (vectorises), then interleaved into positions.
    let mut words = [[0f32; BATCH]; 4];
    match row.model {
        NullModel::Gauss => {
            for pair in 0..2 {
                for l in 0..BATCH {
                    let r = (-2.0 * ln01(uniform(u[2 * pair][l]))).sqrt();
                    let (sin, cos) = sin_cos(TWO_PI * uniform(u[2 * pair + 1][l]));
                    words[2 * pair][l] = a + b * (r * cos);
                    words[2 * pair + 1][l] = a + b * (r * sin);
                }
            }
        }
        NullModel::Ald | NullModel::Laplace => {
            let v = philox_x8(ctr(m + SECOND_BLOCK), key);
            for i in 0..4 {
                for l in 0..BATCH {
                    words[i][l] = ald_value(a, b, c, uniform(u[i][l]), uniform(v[i][l]));
                }
            }
        }
    }
    let mut out = [0f32; 4 * BATCH];
    for l in 0..BATCH {
        for i in 0..4 {
            out[4 * l + i] = words[i][l];
        }
    }
    out
}

/// `μ + s(E₁/κ − κE₂)` with `E = −ln U`, in the order every backend evaluates it.
#[inline(always)]
pub fn ald_value(loc: f32, scale: f32, kappa: f32, u1: f32, u2: f32) -> f32 {
    let e1 = -ln01(u1);
    let e2 = -ln01(u2);
    loc + scale * (e1 / kappa - kappa * e2)
}

/// Fills `out` (one row) with the replicate row's values.
pub fn fill_row(row: &ReplicateRow, key: [u32; 2], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { fill_row_avx2(row, key, out) };
        return;
    }
    fill_row_portable(row, key, out);
}

/// [`fill_row`] compiled for AVX2: eight lanes per instruction instead of four. Bitwise the same
/// values: Rust never contracts a multiply and an add, whatever the target features.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_row_avx2(row: &ReplicateRow, key: [u32; 2], out: &mut [f32]) {
    fill_row_with(row, key, out, |c, k| unsafe {
        avx2::philox4x32_10_x8(c, k)
    });
}

fn fill_row_portable(row: &ReplicateRow, key: [u32; 2], out: &mut [f32]) {
    fill_row_with(row, key, out, philox4x32_10_x8);
}

#[inline(always)]
fn fill_row_with(
    row: &ReplicateRow,
    key: [u32; 2],
    out: &mut [f32],
    philox_x8: impl Fn([[u32; BATCH]; 4], [u32; 2]) -> [[u32; BATCH]; 4] + Copy,
) {
    for (i, chunk) in out.chunks_mut(4 * BATCH).enumerate() {
        let v = batch_values(row, (i * BATCH) as u32, key, philox_x8);
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Philox on eight lanes with AVX2's 32 × 32 → 64-bit multiplies (the compiler does not find
/// them itself): even lanes directly, odd lanes shifted down.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn mulhilo(m: __m256i, x: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(m, x);
        let odd = _mm256_mul_epu32(m, _mm256_srli_epi64(x, 32));
        let hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b1010_1010);
        (hi, _mm256_mullo_epi32(m, x))
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn philox4x32_10_x8(ctr: [[u32; 8]; 4], key: [u32; 2]) -> [[u32; 8]; 4] {
        let load = |w: &[u32; 8]| _mm256_loadu_si256(w.as_ptr().cast());
        let (mut c0, mut c1, mut c2, mut c3) =
            (load(&ctr[0]), load(&ctr[1]), load(&ctr[2]), load(&ctr[3]));
        let m0 = _mm256_set1_epi32(super::M0 as i32);
        let m1 = _mm256_set1_epi32(super::M1 as i32);
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k = [k[0].wrapping_add(super::W0), k[1].wrapping_add(super::W1)];
            }
            let (hi0, lo0) = mulhilo(m0, c0);
            let (hi1, lo1) = mulhilo(m1, c2);
            let k0 = _mm256_set1_epi32(k[0] as i32);
            let k1 = _mm256_set1_epi32(k[1] as i32);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
            c1 = lo1;
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
            c3 = lo0;
        }
        let mut out = [[0u32; 8]; 4];
        for (o, v) in out.iter_mut().zip([c0, c1, c2, c3]) {
            _mm256_storeu_si256(o.as_mut_ptr().cast(), v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the rows and the portable one agree bitwise.
    #[test]
    fn rows_are_the_same_with_and_without_avx2() {
        for model in [NullModel::Gauss, NullModel::Ald, NullModel::Laplace] {
            let r = ReplicateRow {
                class: 17,
                replicate: 3,
                model,
                params: [-0.01, 0.05, 0.7],
            };
            let (mut a, mut b) = (vec![0f32; 1001], vec![0f32; 1001]);
            fill_row(&r, key_of(42), &mut a);
            fill_row_portable(&r, key_of(42), &mut b);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
            // A value depends on its position only: a shorter row is a prefix.
            let mut short = vec![0f32; 13];
            fill_row(&r, key_of(42), &mut short);
            assert_eq!(&a[..13], &short[..]);
        }
    }

    /// Random123's kat_vectors for philox4x32 with 10 rounds.
    #[test]
    fn known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    /// The branch-free transcendentals against libm over every uniform they can be given.
    #[test]
    fn ln_and_sin_cos_are_within_two_ulp_of_libm() {
        let ulp = |x: f32| (x.abs().max(f32::MIN_POSITIVE)).to_bits();
        let mut worst_ln = 0i64;
        let (mut worst_sin, mut worst_cos) = (0f64, 0f64);
        for top in (0u32..1 << 24).step_by(7) {
            let u = uniform(top << 8);
            let (a, b) = (ln01(u), u.ln());
            worst_ln = worst_ln.max((ulp(a) as i64 - ulp(b) as i64).abs());
            let t = TWO_PI * u;
            let (s, c) = sin_cos(t);
            let (rs, rc) = ((t as f64).sin(), (t as f64).cos());
            worst_sin = worst_sin.max((s as f64 - rs).abs());
            worst_cos = worst_cos.max((c as f64 - rc).abs());
        }
        assert!(worst_ln <= 2, "ln01 is {worst_ln} ulp from libm");
        // Absolute error against the f64 sine and cosine of the same f32 angle.
        assert!(
            worst_sin < 2.0 * f32::EPSILON as f64,
            "sin off by {worst_sin:e}"
        );
        assert!(
            worst_cos < 2.0 * f32::EPSILON as f64,
            "cos off by {worst_cos:e}"
        );
        assert_eq!(ln01(1.0), 0.0);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn eight_lanes_are_eight_calls() {
        let mut c = [[0u32; 8]; 4];
        for l in 0..8 {
            c[0][l] = l as u32 * 977;
            c[1][l] = u32::MAX - l as u32;
            c[2][l] = 3 << l;
            c[3][l] = 0x1234_5678 ^ l as u32;
        }
        let key = [0xdead_beef, 0x0bad_f00d];
        let x8 = philox4x32_10_x8(c, key);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present.
            assert_eq!(unsafe { avx2::philox4x32_10_x8(c, key) }, x8);
        }
        for l in 0..8 {
            let one = philox4x32_10([c[0][l], c[1][l], c[2][l], c[3][l]], key);
            assert_eq!(one, [x8[0][l], x8[1][l], x8[2][l], x8[3][l]]);
        }
    }

    #[test]
    fn uniform_is_in_the_half_open_unit_interval() {
        assert!(uniform(0) > 0.0);
        assert_eq!(uniform(0), 0.5 / 16_777_216.0);
        assert!(uniform(u32::MAX) <= 1.0);
        assert_eq!(uniform(255), uniform(0), "only the top 24 bits count");
    }
}
