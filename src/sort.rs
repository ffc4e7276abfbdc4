//! Sorting one row of f32 ascending, for the CPU backend's per-class pass.
//!
//! The order is the floats' total order (−0 before +0), taken on their order-preserving u32
//! images, so the result is bitwise the same whichever path runs. On x86-64 CPUs with AVX-512 a
//! row is sorted by a vectorised merge sort: bitonic networks sort each 16-lane register, then
//! sorted runs are merged sixteen keys at a time (a bitonic merge of two registers, the next
//! register taken from the run with the smaller head, without branches). On rows of a few
//! thousand values, a radix sort's passes and histograms cost as much as the data, and this is
//! faster (measured side by side in `bench-results/2026-11-25-cpu-2core.md`). Elsewhere, and for
//! short rows, `radsort`.

/// Reusable buffers for [`sort_row`].
#[derive(Default)]
pub struct Scratch {
    a: Vec<u32>,
    b: Vec<u32>,
}

/// Rows shorter than this go to `radsort`: the vector path's fixed costs do not pay off.
const SIMD_MIN: usize = 64;

/// Sorts `row` ascending in the floats' total order.
pub fn sort_row(row: &mut [f32], scratch: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    if row.len() >= SIMD_MIN && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        unsafe { avx512::sort(row, scratch) };
        return;
    }
    let _ = scratch;
    radsort::sort(row);
}

/// The u32 whose unsigned order is the f32's total order.
#[inline(always)]
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    b ^ (((b as i32 >> 31) as u32) | 0x8000_0000)
}

/// The inverse of [`key`].
#[inline(always)]
fn value(k: u32) -> f32 {
    f32::from_bits(k ^ (((!k as i32 >> 31) as u32) | 0x8000_0000))
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{key, value, Scratch};

    /// One compare-exchange layer of a bitonic network inside a register: lane i meets lane
    /// i ^ d, and keeps the larger key where `max_lanes` has its bit.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn layer(v: __m512i, partner: __m512i, max_lanes: __mmask16) -> __m512i {
        let p = _mm512_permutexvar_epi32(partner, v);
        _mm512_mask_max_epu32(_mm512_min_epu32(v, p), max_lanes, v, p)
    }

    /// Partner indices `i ^ d` for the 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn partner(d: i32) -> __m512i {
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        _mm512_xor_si512(lanes, _mm512_set1_epi32(d))
    }

    /// Lanes that keep the larger key at distance d within bitonic blocks of size s: the
    /// upper lane of each pair in an ascending block, the lower one in a descending block
    /// (blocks alternate; with s = 16 every block ascends).
    const fn max_lanes(d: usize, s: usize) -> u16 {
        let mut m = 0u16;
        let mut i = 0;
        while i < 16 {
            if ((i & d) != 0) != ((i & s) != 0) {
                m |= 1 << i;
            }
            i += 1;
        }
        m
    }

    /// The layers of a full bitonic sort of 16 lanes, (d, s).
    const SORT16: [(usize, usize); 10] = [
        (1, 2),
        (2, 4),
        (1, 4),
        (4, 8),
        (2, 8),
        (1, 8),
        (8, 16),
        (4, 16),
        (2, 16),
        (1, 16),
    ];

    /// The layers that sort a bitonic register ascending, (d, 16).
    const MERGE16: [(usize, usize); 4] = [(8, 16), (4, 16), (2, 16), (1, 16)];

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sort16(mut v: __m512i) -> __m512i {
        for (d, s) in SORT16 {
            v = layer(v, partner(d as i32), max_lanes(d, s));
        }
        v
    }

    /// Two sorted registers into the 16 smallest and the 16 largest of their keys, each sorted.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn merge16(a: __m512i, b: __m512i) -> (__m512i, __m512i) {
        // a followed by b reversed is bitonic; one compare-exchange across the registers
        // splits it into two bitonic halves, every key of the first below every key of the
        // second; four layers sort each.
        let reverse = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let rb = _mm512_permutexvar_epi32(reverse, b);
        let (mut lo, mut hi) = (_mm512_min_epu32(a, rb), _mm512_max_epu32(a, rb));
        for (d, s) in MERGE16 {
            let (p, m) = (partner(d as i32), max_lanes(d, s));
            lo = layer(lo, p, m);
            hi = layer(hi, p, m);
        }
        (lo, hi)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load(s: &[u32], at: usize) -> __m512i {
        let v = &s[at..at + 16];
        // SAFETY: `v` holds 16 u32 (checked by the slice above).
        unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store(s: &mut [u32], at: usize, v: __m512i) {
        let d = &mut s[at..at + 16];
        // SAFETY: `d` holds 16 u32 (checked by the slice above).
        unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
    }

    /// Merges, for each of the K triples `(lo, mid, hi)`, the sorted runs `src[lo..mid]` and
    /// `src[mid..hi]` (lengths multiples of 16, both non-empty, every triple spanning as many
    /// keys) into `dst[lo..hi]`. Each step of a merge waits on the one before (the carried
    /// register), so K > 1 interleaved merges keep the vector units busy while one waits.
    #[target_feature(enable = "avx512f")]
    fn merge_runs<const K: usize>(src: &[u32], dst: &mut [u32], runs: [(usize, usize, usize); K]) {
        let (lo, mid, hi) = (runs.map(|r| r.0), runs.map(|r| r.1), runs.map(|r| r.2));
        let (mut i1, mut i2, mut out) = (lo.map(|l| l + 16), mid.map(|m| m + 16), lo);
        let (mut a, mut b) = (lo.map(|l| load(src, l)), mid.map(|m| load(src, m)));
        loop {
            let mut large = a;
            for k in 0..K {
                let (small, big) = merge16(a[k], b[k]);
                store(dst, out[k], small);
                out[k] += 16;
                large[k] = big;
            }
            if out[0] == hi[0] - 16 {
                for k in 0..K {
                    store(dst, out[k], large[k]);
                }
                return;
            }
            for k in 0..K {
                // The next register comes from the run whose next key is smaller (an exhausted
                // run never), chosen without a branch.
                let left = i1[k] < mid[k] && (i2[k] == hi[k] || src[i1[k]] <= src[i2[k]]);
                let at = if left { i1[k] } else { i2[k] };
                i1[k] += 16 * left as usize;
                i2[k] += 16 * !left as usize;
                a[k] = large[k];
                b[k] = load(src, at);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn sort(row: &mut [f32], s: &mut Scratch) {
        let n = row.len();
        let padded = n.next_multiple_of(16);
        // Keys, padded with the largest key, which sorts after every float's.
        s.a.clear();
        s.a.extend(row.iter().map(|&x| key(x)));
        s.a.resize(padded, u32::MAX);
        s.b.resize(padded, 0);
        for at in (0..padded).step_by(16) {
            let v = sort16(load(&s.a, at));
            store(&mut s.a, at, v);
        }
        let (mut src, mut dst) = (&mut s.a, &mut s.b);
        let mut width = 16;
        while width < padded {
            let mut lo = 0;
            while lo < padded {
                if lo + 4 * width <= padded {
                    let second = lo + 2 * width;
                    let runs = [
                        (lo, lo + width, second),
                        (second, second + width, lo + 4 * width),
                    ];
                    merge_runs(src, dst, runs);
                    lo += 4 * width;
                    continue;
                }
                let mid = (lo + width).min(padded);
                let hi = (lo + 2 * width).min(padded);
                if mid == hi {
                    dst[lo..hi].copy_from_slice(&src[lo..hi]);
                } else {
                    merge_runs(src, dst, [(lo, mid, hi)]);
                }
                lo = hi;
            }
            std::mem::swap(&mut src, &mut dst);
            width *= 2;
        }
        for (x, &k) in row.iter_mut().zip(src.iter()) {
            *x = value(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_orders_like_total_cmp_and_inverts() {
        let xs = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-40,
            -0.0,
            0.0,
            1e-40,
            2.0,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} {}", w[0], w[1]);
        }
        for &x in &xs {
            assert_eq!(value(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn sorts_like_total_cmp() {
        let mut s = Scratch::default();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [
            0usize, 1, 2, 15, 16, 17, 63, 64, 65, 100, 256, 1000, 2048, 4099,
        ] {
            for kind in 0..4 {
                let xs: Vec<f32> = (0..n)
                    .map(|i| match kind {
                        // Many ties, both zeros.
                        0 => [-1.0, -0.0, 0.0, 2.5][(next() % 4) as usize],
                        // Already sorted, and reversed.
                        1 => i as f32 - 7.0,
                        2 => -(i as f32),
                        // Anything finite or infinite, over the whole range of bit patterns.
                        _ => {
                            let x = f32::from_bits(next() as u32);
                            if x.is_nan() {
                                f32::INFINITY
                            } else {
                                x
                            }
                        }
                    })
                    .collect();
                let mut want = xs.clone();
                want.sort_by(f32::total_cmp);
                let mut got = xs.clone();
                sort_row(&mut got, &mut s);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "n {n}, kind {kind}");
            }
        }
    }
}
