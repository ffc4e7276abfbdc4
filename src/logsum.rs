//! The logarithms of the study lines (docs/DESIGN.md 2.4): `ln|x|` of f32 weights and the sums
//! `Σd, Σi·d, Σd²` of `d = ln|x| − shift` over values in rank order.
//!
//! The study lines take a log of every weight, twice over with the joint fit, so this is the
//! analysis' hottest arithmetic. An f32 has only 7 mantissa bits above its low 16, so
//! `ln|x| = e·ln 2 + ln(1 + j/128) + log1p(r)` with a 128-entry table and `r < 2⁻⁷`, a series
//! of eight terms: no libm call and no branch. The sums run four lanes wide; on x86-64 with AVX2
//! and FMA the lanes are one vector register each. The scalar and vector paths do the same IEEE
//! operations in the same order in every lane (the series in fused multiply-adds on both), so
//! results are bitwise the same on every machine.

use std::sync::LazyLock;

/// ln 2 split so that `e · LN2_HI` is exact for every f32 exponent e (fdlibm's constants:
/// the high part has its low 21 bits clear).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Taylor coefficients of `ln(1 + r)`, r¹ to r⁸: for 0 ≤ r < 2⁻⁷ the remainder is below r·2⁻⁵⁹.
const LOG1P: [f64; 8] = [
    1.0,
    -1.0 / 2.0,
    1.0 / 3.0,
    -1.0 / 4.0,
    1.0 / 5.0,
    -1.0 / 6.0,
    1.0 / 7.0,
    -1.0 / 8.0,
];

/// `ln(1 + j/128)` and `1 / (2²³ + j·2¹⁶)` for the top 7 mantissa bits j.
struct LnTable {
    mant: [f64; 128],
    inv: [f64; 128],
}

static TABLE: LazyLock<LnTable> = LazyLock::new(|| {
    let mut t = LnTable {
        mant: [0.0; 128],
        inv: [0.0; 128],
    };
    for j in 0..128 {
        t.mant[j] = (1.0 + j as f64 / 128.0).ln();
        t.inv[j] = 1.0 / (8_388_608.0 + (j << 16) as f64);
    }
    t
});

/// ln(1 + r) for 0 ≤ r < 2⁻⁷: Horner's rule in fused multiply-adds, the vector path's
/// operations. Built where FMA is enabled (see [`with_fma`]) each is one instruction; elsewhere
/// it is libm's exact `fma`, slower but bitwise the same.
#[inline(always)]
fn log1p_small(r: f64) -> f64 {
    let mut p = LOG1P[7];
    for &c in LOG1P[..7].iter().rev() {
        p = p.mul_add(r, c);
    }
    p * r
}

/// Whether this CPU runs the vector path (AVX2 and FMA, x86-64 only).
#[inline]
fn vector_path() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `ln|x| − shift` by the table and series, for the bit pattern of a normal f32 (sign ignored).
/// |x| = 2^e·(1 + j/128)·(1 + r), j the top 7 mantissa bits, r = (low 16 bits)/(2²³ + j·2¹⁶).
#[inline(always)]
fn shifted_log(bits: u32, shift: f64, t: &LnTable) -> f64 {
    let j = ((bits >> 16) & 0x7f) as usize;
    let ef = (((bits >> 23) & 0xff) as i32 - 127) as f64;
    let r = (bits & 0xffff) as f64 * t.inv[j];
    let base = ef * LN2_HI + ((t.mant[j] + ef * LN2_LO) - shift);
    base + log1p_small(r)
}

/// ln|x| of a nonzero f32, within 4·2⁻⁵²·max(1, |ln x|) of the exact value: a few ulp, except
/// just below |x| = 1, where the table's terms cancel and the error is that of a value of
/// magnitude 1 (the study lines only use differences of logs). Subnormals and non-finite values
/// take libm's log.
pub fn ln_abs(x: f32) -> f64 {
    if !x.is_normal() {
        return (x.abs() as f64).ln();
    }
    #[cfg(target_arch = "x86_64")]
    if vector_path() {
        // SAFETY: the CPU has FMA, checked just above.
        return unsafe { avx2::shifted_log_fma(x.to_bits(), 0.0) };
    }
    shifted_log(x.to_bits(), 0.0, &TABLE)
}

/// `ln` of the magnitude of the lowest value of the bucket whose bit patterns share `high`
/// (their top 16 bits) and have a normal exponent, minus `shift`: the `base` of
/// [`bucket_log_sums`]. Bitwise what [`shifted_log`] gives that value.
pub fn bucket_base(high: u32, shift: f64) -> f64 {
    // Low bits 0: the series adds exactly nothing, so no multiply-add is involved.
    shifted_log(high & 0x7fff_0000, shift, &TABLE)
}

/// `1 / (2²³ + j·2¹⁶)` for the bucket of `high` (its top 16 bits): the factor that turns a
/// value's low 16 bits into the series' argument.
pub fn bucket_inv(high: u32) -> f64 {
    TABLE.inv[((high >> 16) & 0x7f) as usize]
}

/// `[Σd, Σi·d, Σd²]`, four lanes, combined as `(l0 + l1) + (l2 + l3)`.
#[derive(Clone, Copy, Default)]
struct Lanes {
    sd: [f64; 4],
    sid: [f64; 4],
    sdd: [f64; 4],
}

impl Lanes {
    #[inline(always)]
    fn add(&mut self, k: usize, rank: f64, d: f64) {
        self.sd[k] += d;
        self.sid[k] += rank * d;
        self.sdd[k] += d * d;
    }

    fn total(&self) -> [f64; 3] {
        let t = |a: [f64; 4]| (a[0] + a[1]) + (a[2] + a[3]);
        [t(self.sd), t(self.sid), t(self.sdd)]
    }
}

/// `[Σd, Σi·d, Σd²]` with `d = ln|x| − shift` over `xs` taken in order, or reversed, and
/// i = rank, rank + 1, … Every value must be normal (`f32::is_normal`).
pub fn log_sums(xs: &[f32], reversed: bool, shift: f64, rank: usize) -> [f64; 3] {
    debug_assert!(xs.iter().all(|x| x.is_normal()));
    #[cfg(target_arch = "x86_64")]
    if vector_path() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { avx2::log_sums(xs, reversed, shift, rank) };
    }
    let t: &LnTable = &TABLE;
    let mut lanes = Lanes::default();
    let n = xs.len();
    let at = |i: usize| if reversed { xs[n - 1 - i] } else { xs[i] };
    for i in 0..n {
        let d = shifted_log(at(i).to_bits(), shift, t);
        lanes.add(i % 4, (rank + i) as f64, d);
    }
    lanes.total()
}

/// [`log_sums`] over one bucket of the joint fit: values that share their top 16 bits, given as
/// their low 16 bits in ascending order; `base` and `inv` from [`bucket_base`] and
/// [`bucket_inv`]. The exponent must be normal.
pub fn bucket_log_sums(lows: &[u16], base: f64, inv: f64, rank: usize) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if vector_path() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { avx2::bucket_log_sums(lows, base, inv, rank) };
    }
    let mut lanes = Lanes::default();
    for (i, &lo) in lows.iter().enumerate() {
        let d = base + log1p_small(lo as f64 * inv);
        lanes.add(i % 4, (rank + i) as f64, d);
    }
    lanes.total()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The same lanes as the scalar loops, one `__m256d` each, built with AVX2 and FMA.
    use std::arch::x86_64::*;

    use super::{shifted_log, Lanes, LnTable, LN2_HI, LN2_LO, LOG1P, TABLE};

    /// [`shifted_log`] with the multiply-adds as instructions.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn shifted_log_fma(bits: u32, shift: f64) -> f64 {
        shifted_log(bits, shift, &TABLE)
    }

    struct Acc {
        sd: __m256d,
        sid: __m256d,
        sdd: __m256d,
        rank: __m256d,
    }

    impl Acc {
        #[target_feature(enable = "avx2,fma")]
        fn new(rank: usize) -> Self {
            let r = rank as f64;
            Acc {
                sd: _mm256_setzero_pd(),
                sid: _mm256_setzero_pd(),
                sdd: _mm256_setzero_pd(),
                rank: _mm256_setr_pd(r, r + 1.0, r + 2.0, r + 3.0),
            }
        }

        /// Adds `d` in every lane (a lane whose d is +0 is left bitwise as it was).
        #[target_feature(enable = "avx2,fma")]
        fn add(&mut self, d: __m256d) {
            self.sd = _mm256_add_pd(self.sd, d);
            self.sid = _mm256_add_pd(self.sid, _mm256_mul_pd(self.rank, d));
            self.sdd = _mm256_add_pd(self.sdd, _mm256_mul_pd(d, d));
            self.rank = _mm256_add_pd(self.rank, _mm256_set1_pd(4.0));
        }

        #[target_feature(enable = "avx2,fma")]
        fn total(&self) -> [f64; 3] {
            use crate::ald::lanes4;
            let l = Lanes {
                sd: lanes4(self.sd),
                sid: lanes4(self.sid),
                sdd: lanes4(self.sdd),
            };
            l.total()
        }
    }

    /// Zero in the lanes at and after `live`: the padding of a last, short quad.
    #[target_feature(enable = "avx2,fma")]
    fn keep(d: __m256d, live: usize) -> __m256d {
        let lane = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let mask = _mm256_cmp_pd::<_CMP_LT_OQ>(lane, _mm256_set1_pd(live as f64));
        _mm256_and_pd(d, mask)
    }

    /// `log1p_small` on four lanes: the same fused Horner steps.
    #[target_feature(enable = "avx2,fma")]
    fn log1p_small(r: __m256d) -> __m256d {
        let mut p = _mm256_set1_pd(LOG1P[7]);
        for &c in LOG1P[..7].iter().rev() {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
        }
        _mm256_mul_pd(p, r)
    }

    /// `shifted_log` on four bit patterns.
    #[target_feature(enable = "avx2,fma")]
    fn shifted_log4(bits: __m128i, shift: __m256d, t: &LnTable) -> __m256d {
        let j = _mm_and_si128(_mm_srli_epi32::<16>(bits), _mm_set1_epi32(0x7f));
        let e = _mm_sub_epi32(
            _mm_and_si128(_mm_srli_epi32::<23>(bits), _mm_set1_epi32(0xff)),
            _mm_set1_epi32(127),
        );
        let ef = _mm256_cvtepi32_pd(e);
        let lo = _mm256_cvtepi32_pd(_mm_and_si128(bits, _mm_set1_epi32(0xffff)));
        // SAFETY: every index is below 128, the tables' length.
        let (mant, inv) = unsafe {
            (
                _mm256_i32gather_pd::<8>(t.mant.as_ptr(), j),
                _mm256_i32gather_pd::<8>(t.inv.as_ptr(), j),
            )
        };
        let r = _mm256_mul_pd(lo, inv);
        let high = _mm256_mul_pd(ef, _mm256_set1_pd(LN2_HI));
        let low = _mm256_add_pd(mant, _mm256_mul_pd(ef, _mm256_set1_pd(LN2_LO)));
        let base = _mm256_add_pd(high, _mm256_sub_pd(low, shift));
        _mm256_add_pd(base, log1p_small(r))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn log_sums(xs: &[f32], reversed: bool, shift: f64, rank: usize) -> [f64; 3] {
        let t: &LnTable = &TABLE;
        let n = xs.len();
        let s = _mm256_set1_pd(shift);
        let mut acc = Acc::new(rank);
        let bits_at = |i: usize| {
            let x = if reversed { xs[n - 1 - i] } else { xs[i] };
            x.to_bits() as i32
        };
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: both loads read the 4 values of positions i..i + 4, inside `xs`.
            let bits = unsafe {
                if reversed {
                    let v = _mm_loadu_si128(xs.as_ptr().add(n - i - 4).cast());
                    _mm_shuffle_epi32::<0b00_01_10_11>(v)
                } else {
                    _mm_loadu_si128(xs.as_ptr().add(i).cast())
                }
            };
            acc.add(shifted_log4(bits, s, t));
            i += 4;
        }
        if i < n {
            // The last 1–3 values, padded with 1.0 (a normal value) whose lanes add nothing.
            let one = 1.0f32.to_bits() as i32;
            let lane = |k: usize| if i + k < n { bits_at(i + k) } else { one };
            let bits = _mm_setr_epi32(lane(0), lane(1), lane(2), lane(3));
            acc.add(keep(shifted_log4(bits, s, t), n - i));
        }
        acc.total()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn bucket_log_sums(lows: &[u16], base: f64, inv: f64, rank: usize) -> [f64; 3] {
        let n = lows.len();
        let (b, v) = (_mm256_set1_pd(base), _mm256_set1_pd(inv));
        let mut acc = Acc::new(rank);
        let d4 = |lo: __m128i| {
            let r = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_cvtepu16_epi32(lo)), v);
            _mm256_add_pd(b, log1p_small(r))
        };
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: reads the 4 values (8 bytes) at i, inside `lows`.
            let lo = unsafe { _mm_loadl_epi64(lows.as_ptr().add(i).cast()) };
            acc.add(d4(lo));
            i += 4;
        }
        if i < n {
            let lane = |k: usize| lows.get(i + k).copied().unwrap_or(0) as i16;
            let lo = _mm_setr_epi16(lane(0), lane(1), lane(2), lane(3), 0, 0, 0, 0);
            acc.add(keep(d4(lo), n - i));
        }
        acc.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_sums(xs: &[f32], reversed: bool, shift: f64, rank: usize) -> [f64; 3] {
        let mut lanes = Lanes::default();
        let n = xs.len();
        for i in 0..n {
            let x = if reversed { xs[n - 1 - i] } else { xs[i] };
            lanes.add(
                i % 4,
                (rank + i) as f64,
                shifted_log(x.to_bits(), shift, &TABLE),
            );
        }
        lanes.total()
    }

    #[test]
    fn ln_abs_is_the_log() {
        // Every top-16-bit pattern of normal values, at several low parts, both signs.
        // Errors in units of 2⁻⁵²·max(1, |ln x|): every use subtracts a shift, so what counts is
        // the absolute error, which near |x| = 1 is that of a value of magnitude 1.
        let mut worst = 0.0f64;
        for high in (0x0080u32..0x7f80).step_by(3) {
            for lo in [0u32, 1, 2, 977, 32_768, 65_534, 65_535] {
                for sign in [0, 0x8000_0000] {
                    let x = f32::from_bits(sign | high << 16 | lo);
                    let want = (x.abs() as f64).ln();
                    let err = (ln_abs(x) - want).abs();
                    if want == 0.0 {
                        assert_eq!(err, 0.0, "ln|{x}|");
                    } else {
                        worst = worst.max(err / (want.abs().max(1.0) * f64::EPSILON));
                    }
                }
            }
        }
        assert!(worst < 4.0, "worst error {worst} ulp");
        assert_eq!(ln_abs(1.0), 0.0);
        assert_eq!(
            ln_abs(f32::MIN_POSITIVE / 4.0),
            ((f32::MIN_POSITIVE / 4.0) as f64).ln()
        );
        assert_eq!(ln_abs(-f32::INFINITY), f64::INFINITY);
    }

    #[test]
    fn vector_path_is_bitwise_the_scalar_one() {
        let xs: Vec<f32> = (0..1003)
            .map(|i| ((i as f32 * 0.618_034).fract() + 0.01) * 2f32.powi(i % 13 - 6))
            .collect();
        for n in [0, 1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 1003] {
            for reversed in [false, true] {
                for rank in [0, 17] {
                    let got = log_sums(&xs[..n], reversed, -0.75, rank);
                    let want = scalar_sums(&xs[..n], reversed, -0.75, rank);
                    assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "n {n}");
                }
            }
        }
        let lows: Vec<u16> = (0..1001u32).map(|i| (i * 65 % 65_536) as u16).collect();
        let high = 0x3c12_0000u32;
        let (base, inv) = (bucket_base(high, 0.5), bucket_inv(high));
        for n in [0, 3, 4, 9, 1001] {
            let got = bucket_log_sums(&lows[..n], base, inv, 5);
            let vals: Vec<f32> = lows[..n]
                .iter()
                .map(|&lo| f32::from_bits(high | lo as u32))
                .collect();
            let want = scalar_sums(&vals, false, 0.5, 5);
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "bucket n {n}"
            );
        }
    }
}
