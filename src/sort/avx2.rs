//! The AVX2 path of [`super::sort_row`], for x86-64 CPUs without AVX-512 (most laptops and
//! desktops, AMD before Zen 4): the same quicksort as `avx512.rs`, on eight lanes.
//!
//! AVX2 has neither unsigned compares nor compressing stores, so the keys here are signed — a
//! float's bits with the magnitude of negatives flipped, whose i32 order is the floats' total
//! order — and a partition moves a register's keys below the pivot to its front through a table
//! of permutations indexed by the compare's mask, then stores the whole register at both ends
//! (the design of x86-simd-sort's AVX2 sort).

use std::arch::x86_64::*;

/// The i32 whose order is the f32's total order, from the float's bits; its own inverse.
#[inline(always)]
fn skey(b: u32) -> i32 {
    (b ^ (((b as i32) >> 31) as u32 & 0x7fff_ffff)) as i32
}

/// Permutations that move the lanes set in the index (an 8-bit mask) to the front, in order,
/// and the others after them, in order.
static FRONT: [[i32; 8]; 256] = {
    let mut t = [[0i32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut at, mut lane) = (0, 0);
        while lane < 8 {
            if m & (1 << lane) != 0 {
                t[m][at] = lane;
                at += 1;
            }
            lane += 1;
        }
        lane = 0;
        while lane < 8 {
            if m & (1 << lane) == 0 {
                t[m][at] = lane;
                at += 1;
            }
            lane += 1;
        }
        m += 1;
    }
    t
};

/// Lanes that keep the larger key at distance `d` within bitonic blocks of size `s` (as in
/// `avx512::max_lanes`, on eight lanes), as a blend immediate.
const fn max_lanes(d: usize, s: usize) -> i32 {
    let (mut m, mut i) = (0, 0);
    while i < 8 {
        if ((i & d) != 0) != ((i & s) != 0) {
            m |= 1 << i;
        }
        i += 1;
    }
    m
}

/// Lane i's partner i ^ D, D in {1, 2, 4}.
#[inline]
#[target_feature(enable = "avx2")]
fn partner<const D: usize>(v: __m256i) -> __m256i {
    match D {
        1 => _mm256_shuffle_epi32::<0b10_11_00_01>(v),
        2 => _mm256_shuffle_epi32::<0b01_00_11_10>(v),
        _ => _mm256_permute2x128_si256::<0x01>(v, v),
    }
}

/// One compare-exchange layer inside a register; `M` from [`max_lanes`].
#[inline]
#[target_feature(enable = "avx2")]
fn layer<const D: usize, const M: i32>(v: __m256i) -> __m256i {
    let p = partner::<D>(v);
    _mm256_blend_epi32::<M>(_mm256_min_epi32(v, p), _mm256_max_epi32(v, p))
}

/// A full bitonic sort of one register's eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn sort8(v: __m256i) -> __m256i {
    let v = layer::<1, { max_lanes(1, 2) }>(v);
    let v = layer::<2, { max_lanes(2, 4) }>(v);
    let v = layer::<1, { max_lanes(1, 4) }>(v);
    merge8(v)
}

/// Sorts a bitonic register ascending.
#[inline]
#[target_feature(enable = "avx2")]
fn merge8(v: __m256i) -> __m256i {
    let v = layer::<4, { max_lanes(4, 8) }>(v);
    let v = layer::<2, { max_lanes(2, 8) }>(v);
    layer::<1, { max_lanes(1, 8) }>(v)
}

/// The optimal 19-comparator network for 8 inputs, in 6 layers (proved in the parent's tests).
pub(super) const NET8: [&[(usize, usize)]; 6] = [
    &[(0, 2), (1, 3), (4, 6), (5, 7)],
    &[(0, 4), (1, 5), (2, 6), (3, 7)],
    &[(0, 1), (2, 3), (4, 5), (6, 7)],
    &[(2, 4), (3, 5)],
    &[(1, 4), (3, 6)],
    &[(1, 2), (3, 4), (5, 6)],
];

/// Sorts the columns of `$v` (lane c of each register) down the registers by `$net`.
macro_rules! sort_columns {
    ($v:ident, $net:expr) => {{
        for layer in $net {
            for &(i, j) in layer {
                let (x, y) = ($v[i], $v[j]);
                $v[i] = _mm256_min_epi32(x, y);
                $v[j] = _mm256_max_epi32(x, y);
            }
        }
    }};
}

/// Transposes the 8 × 8 matrix of keys in the 8 registers of `$v` from `$at`.
macro_rules! transpose8 {
    ($v:ident, $at:expr) => {{
        let o: usize = $at;
        let mut w = [_mm256_setzero_si256(); 8];
        w.copy_from_slice(&$v[o..o + 8]);
        let u = transpose_in_lanes!(
            w,
            8,
            _mm256_unpacklo_epi32,
            _mm256_unpackhi_epi32,
            _mm256_unpacklo_epi64,
            _mm256_unpackhi_epi64
        );
        unroll16!(m, {
            if m < 4 {
                $v[o + m] = _mm256_permute2x128_si256::<0x20>(u[m], u[4 + m]);
                $v[o + 4 + m] = _mm256_permute2x128_si256::<0x31>(u[m], u[4 + m]);
            }
        });
    }};
}

/// Lane i's mirror within blocks of `B` lanes, i ^ (B − 1), B in {2, 4, 8}.
#[inline]
#[target_feature(enable = "avx2")]
fn mirror<const B: usize>(v: __m256i) -> __m256i {
    match B {
        2 => _mm256_shuffle_epi32::<0b10_11_00_01>(v),
        4 => _mm256_shuffle_epi32::<0b00_01_10_11>(v),
        _ => _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)),
    }
}

/// Merges sorted runs of `$b`/2 columns pairwise into runs of `$b`, in the column domain, as
/// `avx512`'s `merge_columns` (which explains it): the first layer pairs each element with its
/// mirror in the run, log₂`$b` − 1 half-cleaners pair lanes in a register, and the last
/// log₂R pair registers (R = `$r`).
macro_rules! merge_columns {
    ($v:ident, $r:expr, $b:literal) => {{
        let r: usize = $r;
        unroll16!(i, {
            if i < r / 2 {
                let (a, b) = ($v[i], mirror::<$b>($v[r - 1 - i]));
                let (lo, hi) = (_mm256_min_epi32(a, b), _mm256_max_epi32(a, b));
                $v[i] = _mm256_blend_epi32::<{ max_lanes($b / 2, 8) }>(lo, hi);
                $v[r - 1 - i] =
                    mirror::<$b>(_mm256_blend_epi32::<{ max_lanes($b / 2, 8) }>(hi, lo));
            }
        });
        if $b >= 8 {
            unroll16!(q, {
                if q < r {
                    $v[q] = layer::<2, { max_lanes(2, 8) }>($v[q]);
                }
            });
        }
        if $b >= 4 {
            unroll16!(q, {
                if q < r {
                    $v[q] = layer::<1, { max_lanes(1, 8) }>($v[q]);
                }
            });
        }
        cross_half_cleaners!($v, r, r, _mm256_min_epi32, _mm256_max_epi32);
    }};
}

/// Merges sorted blocks of `$m` registers of `$v` (`$r` of them) pairwise into sorted blocks of
/// 2·`$m`: a half-cleaner against the right block reversed, half-cleaners across registers,
/// then the three inside each (as `avx512`'s `merge_blocks`).
macro_rules! merge_blocks {
    ($v:ident, $r:expr, $m:expr) => {{
        let (r, m): (usize, usize) = ($r, $m);
        let reverse = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
        unroll16!(p, {
            if p < r / 2 {
                let (base, i) = ((p / m) * 2 * m, p % m);
                let (a, b) = (base + i, base + 2 * m - 1 - i);
                let (x, y) = ($v[a], _mm256_permutevar8x32_epi32($v[b], reverse));
                $v[a] = _mm256_min_epi32(x, y);
                $v[b] = _mm256_max_epi32(x, y);
            }
        });
        cross_half_cleaners!($v, r, m, _mm256_min_epi32, _mm256_max_epi32);
        unroll16!(q, {
            if q < r {
                $v[q] = merge8($v[q]);
            }
        });
    }};
}

/// Lanes `0..n` (n ≤ 8) as a mask register of AVX2's masked loads and stores.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_below(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
}

/// Sorts the keys of `buf` (at most 8·R) in registers and writes them back as floats' bits.
#[inline]
#[target_feature(enable = "avx2")]
fn sort_small<const R: usize>(buf: &mut [i32]) {
    let n = buf.len();
    debug_assert!(n <= 8 * R);
    let mut v = [_mm256_set1_epi32(i32::MAX); R];
    for (r, reg) in v.iter_mut().enumerate() {
        let at = 8 * r;
        if at < n {
            // SAFETY: only lanes below n - at are read, and they lie inside `buf`.
            *reg = unsafe {
                if n - at >= 8 {
                    _mm256_loadu_si256(buf.as_ptr().add(at).cast())
                } else {
                    let mask = lanes_below(n - at);
                    let x = _mm256_maskload_epi32(buf.as_ptr().add(at), mask);
                    _mm256_blendv_epi8(*reg, x, mask)
                }
            };
        }
    }
    if R == 16 {
        // The columns sorted and merged in the column domain; then each half of the
        // registers transposed, so that column c's two halves are registers c and 8 + c.
        let mut w = [_mm256_setzero_si256(); 16];
        w.copy_from_slice(&v[..16]);
        sort_columns!(w, super::avx512::GREEN16);
        merge_columns!(w, 16, 2);
        merge_columns!(w, 16, 4);
        merge_columns!(w, 16, 8);
        transpose8!(w, 0);
        transpose8!(w, 8);
        unroll16!(q, {
            v[q] = w[(q % 2) * 8 + q / 2];
        });
    } else if R == 8 {
        let mut w = [_mm256_setzero_si256(); 8];
        w.copy_from_slice(&v[..8]);
        sort_columns!(w, NET8);
        merge_columns!(w, 8, 2);
        merge_columns!(w, 8, 4);
        merge_columns!(w, 8, 8);
        transpose8!(w, 0);
        v[..8].copy_from_slice(&w);
    } else {
        // Each register sorted, then bitonic merges of ever larger blocks.
        unroll16!(q, {
            if q < R {
                v[q] = sort8(v[q]);
            }
        });
        if R > 1 {
            merge_blocks!(v, R, 1);
        }
        if R > 2 {
            merge_blocks!(v, R, 2);
        }
    }
    for (r, reg) in v.iter().enumerate() {
        let at = 8 * r;
        if at < n {
            let bits = keys_if::<true>(*reg);
            // SAFETY: only lanes below n - at are written, and they lie inside `buf`.
            unsafe {
                let to: *mut i32 = buf.as_mut_ptr().add(at);
                if n - at >= 8 {
                    _mm256_storeu_si256(to.cast(), bits)
                } else {
                    _mm256_maskstore_epi32(to, lanes_below(n - at), bits)
                }
            };
        }
    }
}

/// Keys at most this many are sorted in registers.
const SMALL: usize = 128;

#[target_feature(enable = "avx2")]
fn sort_leaf(buf: &mut [i32]) {
    match buf.len().div_ceil(8) {
        0 => {}
        1 => sort_small::<1>(buf),
        2 => sort_small::<2>(buf),
        3 | 4 => sort_small::<4>(buf),
        5..=8 => sort_small::<8>(buf),
        _ => sort_small::<16>(buf),
    }
}

/// `v`'s valid keys (lanes below `valid`) split at `p`: those below it stored at `*l` (which
/// moves up), the others ending at `*r` (which moves down). With `whole`, both stores write all
/// eight lanes, so eight slots must be free from `*l` up and eight below `*r`; otherwise only
/// the keys themselves are written.
///
/// # Safety
/// The slots written must lie in the allocation of `at` and hold nothing still to be read.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn split(
    at: *mut i32,
    v: __m256i,
    valid: usize,
    p: __m256i,
    l: &mut usize,
    r: &mut usize,
    whole: bool,
) {
    let all = (1u32 << valid) - 1;
    let lt = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(p, v))) as u32 & all;
    let (below, above) = (lt.count_ones() as usize, (all & !lt).count_ones() as usize);
    // SAFETY: FRONT has 256 rows of 8 lanes; `lt` < 256.
    let perm = unsafe { _mm256_loadu_si256(FRONT[lt as usize].as_ptr().cast()) };
    let w = _mm256_permutevar8x32_epi32(v, perm);
    // SAFETY: the caller's promise; masked-off lanes are neither read nor written.
    unsafe {
        if whole {
            _mm256_storeu_si256(at.add(*l).cast(), w);
            _mm256_storeu_si256(at.add(*r - 8).cast(), w);
        } else {
            _mm256_maskstore_epi32(at.add(*l), lanes_below(below), w);
            // Lanes below..below + above hold the keys above the pivot; they end at *r.
            let high = _mm256_andnot_si256(lanes_below(below), lanes_below(below + above));
            _mm256_maskstore_epi32(at.wrapping_add(*r).wrapping_sub(below + above), high, w);
        }
    }
    *l += below;
    *r -= above;
}

/// Registers read at a time from one end by [`partition`] (see `avx512::UNROLL`).
const UNROLL: usize = 4;

/// Partitions `keys` in place: those below `pivot` first; returns how many (with `FLOATS`, of
/// floats' bits made keys as they are read, as `avx512::partition`). The scheme of
/// `avx512::partition`: 4 registers held back at each end free 64 slots, and each round reads
/// 32 keys from the end with fewer free slots, so both ends always have the eight free slots a
/// whole-register store needs. Needs at least 64 keys.
#[target_feature(enable = "avx2,popcnt")]
fn partition<const FLOATS: bool>(keys: &mut [i32], pivot: i32) -> usize {
    const W: usize = 8 * UNROLL;
    let n = keys.len();
    assert!(n >= 2 * W);
    let p = _mm256_set1_epi32(pivot);
    let at = keys.as_mut_ptr();
    // SAFETY: loads read inside [0, n); stores go to free slots inside [0, n) (see above).
    unsafe {
        let read = |i: usize| keys_if::<FLOATS>(_mm256_loadu_si256(at.add(i).cast::<__m256i>()));
        let held: [__m256i; 2 * UNROLL] = std::array::from_fn(|k| {
            if k < UNROLL {
                read(8 * k)
            } else {
                read(n - W + 8 * (k - UNROLL))
            }
        });
        let (mut rl, mut rr) = (W, n - W);
        let (mut l, mut r) = (0, n);
        while rr - rl >= W {
            let from = if rl - l <= r - rr {
                rl += W;
                rl - W
            } else {
                rr -= W;
                rr
            };
            let vs: [__m256i; UNROLL] = std::array::from_fn(|k| read(from + 8 * k));
            for v in vs {
                split(at, v, 8, p, &mut l, &mut r, true);
            }
        }
        // The rest (under W keys) read at once, then split with what was held back: every
        // free slot is now one gap, filled exactly, so the stores write only the keys.
        let count = |k: usize| (rr - rl).saturating_sub(8 * k).min(8);
        let rest: [__m256i; UNROLL] = std::array::from_fn(|k| {
            // Past the keys only where no lane is read: `wrapping_add` points there without UB.
            keys_if::<FLOATS>(_mm256_maskload_epi32(
                at.wrapping_add(rl + 8 * k).cast_const(),
                lanes_below(count(k)),
            ))
        });
        for (k, v) in rest.into_iter().enumerate() {
            split(at, v, count(k), p, &mut l, &mut r, false);
        }
        for v in held {
            split(at, v, 8, p, &mut l, &mut r, false);
        }
        debug_assert_eq!(l, r);
        l
    }
}

/// `skey` lane by lane, where `FLOATS` (it is its own inverse: floats' bits to keys and back).
#[inline]
#[target_feature(enable = "avx2")]
fn keys_if<const FLOATS: bool>(v: __m256i) -> __m256i {
    if FLOATS {
        let magnitude = _mm256_set1_epi32(0x7fff_ffff);
        _mm256_xor_si256(v, _mm256_and_si256(_mm256_srai_epi32::<31>(v), magnitude))
    } else {
        v
    }
}

/// The first level: the floats of `row` below `pivot` (a key) to the front of `keys`, the
/// others to its back, as keys, reading the row forward once; returns how many went to the front.
#[target_feature(enable = "avx2,popcnt")]
fn partition_row(row: &[u32], keys: &mut [i32], pivot: i32) -> usize {
    let n = row.len();
    assert_eq!(keys.len(), n);
    let p = _mm256_set1_epi32(pivot);
    let (mut l, mut r) = (0usize, n);
    for at in (0..n).step_by(8) {
        let count = (n - at).min(8);
        // SAFETY: the lanes read lie in `row`. The gap [l, r) holds n - at slots: whole stores
        // while it holds 16 or more keep the two ends' writes apart; the last ones write only
        // their keys.
        unsafe {
            let from: *const i32 = row.as_ptr().add(at).cast();
            let bits = if count == 8 {
                _mm256_loadu_si256(from.cast())
            } else {
                _mm256_maskload_epi32(from, lanes_below(count))
            };
            let v = keys_if::<true>(bits);
            split(keys.as_mut_ptr(), v, count, p, &mut l, &mut r, n - at >= 16);
        }
    }
    debug_assert_eq!(l, r);
    l
}

/// The median of 16 of `xs` spread over it, as `Lanes::pivot`, built in registers (16 scalar
/// stores read back as vectors would stall the loads on store forwarding).
#[target_feature(enable = "avx2")]
fn pivot(xs: &[u32], floats: bool) -> i32 {
    let n = xs.len();
    let x = |i: usize| {
        let b = xs[(2 * i + 1) * n / 32];
        if floats {
            skey(b)
        } else {
            b as i32
        }
    };
    let a = _mm256_setr_epi32(x(0), x(1), x(2), x(3), x(4), x(5), x(6), x(7));
    let b = _mm256_setr_epi32(x(8), x(9), x(10), x(11), x(12), x(13), x(14), x(15));
    median_of(a, b)
}

/// The median of the 16 keys of two registers.
#[inline]
#[target_feature(enable = "avx2")]
fn median_of(a: __m256i, b: __m256i) -> i32 {
    let reverse = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    let (a, b) = (sort8(a), _mm256_permutevar8x32_epi32(sort8(b), reverse));
    // The upper half of the 16, sorted: its first lane is the 9th smallest.
    let high = merge8(_mm256_max_epi32(a, b));
    _mm256_cvtsi256_si32(high)
}

/// The 8-lane path of the quicksort in `sort.rs`.
pub(super) struct Avx2;

// SAFETY (every method): `sort::path` runs this path only where the CPU has AVX2 and POPCNT, the
// features the functions called need.
impl super::Lanes for Avx2 {
    type Key = i32;
    const SMALL: usize = SMALL;

    fn key(bits: u32) -> i32 {
        skey(bits)
    }

    fn bits(key: i32) -> u32 {
        skey(key as u32) as u32
    }

    fn above(key: i32) -> Option<i32> {
        key.checked_add(1)
    }

    unsafe fn leaf(buf: &mut [u32]) {
        unsafe { sort_leaf(bytemuck::cast_slice_mut(buf)) }
    }

    unsafe fn partition(keys: &mut [u32], pivot: i32, floats: bool) -> usize {
        let keys = bytemuck::cast_slice_mut(keys);
        if floats {
            unsafe { partition::<true>(keys, pivot) }
        } else {
            unsafe { partition::<false>(keys, pivot) }
        }
    }

    unsafe fn pivot(xs: &[u32], floats: bool) -> i32 {
        unsafe { pivot(xs, floats) }
    }

    unsafe fn partition_row(row: &[u32], keys: &mut [u32], pivot: i32) -> usize {
        unsafe { partition_row(row, bytemuck::cast_slice_mut(keys), pivot) }
    }
}
