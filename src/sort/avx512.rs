//! The AVX-512 path of [`super::sort_row`]: a quicksort on u32 keys (see the parent's notes).

use std::arch::x86_64::*;

use super::{key, value};

/// One compare-exchange layer of a bitonic network inside a register: lane i meets lane
/// i ^ d, and keeps the larger key where `max_lanes` has its bit.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn layer(v: __m512i, partner: __m512i, max_lanes: __mmask16) -> __m512i {
    let p = _mm512_permutexvar_epi32(partner, v);
    _mm512_mask_max_epu32(_mm512_min_epu32(v, p), max_lanes, v, p)
}

/// Partner indices `i ^ d` for the 16 lanes.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
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
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn sort16(mut v: __m512i) -> __m512i {
    for (d, s) in SORT16 {
        v = layer(v, partner(d as i32), max_lanes(d, s));
    }
    v
}

#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn store(s: &mut [u32], at: usize, v: __m512i) {
    let d = &mut s[at..at + 16];
    // SAFETY: `d` holds 16 u32 (checked by the slice above).
    unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) }
}

/// Keys back to floats in a register (the inverse of `key`, lane by lane).
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn values_of(k: __m512i) -> __m512i {
    let sign = _mm512_srai_epi32::<31>(_mm512_xor_si512(k, _mm512_set1_epi32(-1)));
    _mm512_xor_si512(k, _mm512_or_si512(sign, _mm512_set1_epi32(i32::MIN)))
}

/// Lanes `0..n` of a mask (n ≤ 16).
#[inline]
fn first(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Green's 60-comparator network for 16 inputs, in its 10 layers (tested exhaustively by
/// the 0-1 principle below).
pub(super) const GREEN16: [&[(usize, usize)]; 10] = [
    &[
        (0, 13),
        (1, 12),
        (2, 15),
        (3, 14),
        (4, 8),
        (5, 6),
        (7, 11),
        (9, 10),
    ],
    &[
        (0, 5),
        (1, 7),
        (2, 9),
        (3, 4),
        (6, 13),
        (8, 14),
        (10, 15),
        (11, 12),
    ],
    &[
        (0, 1),
        (2, 3),
        (4, 5),
        (6, 8),
        (7, 9),
        (10, 11),
        (12, 13),
        (14, 15),
    ],
    &[
        (0, 2),
        (1, 3),
        (4, 10),
        (5, 11),
        (6, 7),
        (8, 9),
        (12, 14),
        (13, 15),
    ],
    &[(1, 2), (3, 12), (4, 6), (5, 7), (8, 10), (9, 11), (13, 14)],
    &[(1, 4), (2, 6), (5, 8), (7, 10), (9, 13), (11, 14)],
    &[(2, 4), (3, 6), (9, 12), (11, 13)],
    &[(3, 5), (6, 8), (7, 9), (10, 12)],
    &[(3, 4), (5, 6), (7, 8), (9, 10), (11, 12)],
    &[(6, 7), (8, 9)],
];

/// Sorts the columns of `$v` (lane c of each register) down the registers by `$net`: minima
/// and maxima only, no shuffles.
macro_rules! sort_columns {
    ($v:ident, $net:expr) => {{
        for layer in $net {
            for &(i, j) in layer {
                let (x, y) = ($v[i], $v[j]);
                $v[i] = _mm512_min_epu32(x, y);
                $v[j] = _mm512_max_epu32(x, y);
            }
        }
    }};
}

/// [`transpose_in_lanes`] on this path's registers.
macro_rules! in_lanes {
    ($v:ident, $rows:expr) => {
        transpose_in_lanes!(
            $v,
            $rows,
            _mm512_unpacklo_epi32,
            _mm512_unpackhi_epi32,
            _mm512_unpacklo_epi64,
            _mm512_unpackhi_epi64
        )
    };
}

/// Transposes the 16 × 16 matrix of keys in `$v`: register c then holds lane c of every
/// register, in order.
macro_rules! transpose16 {
    ($v:ident) => {{
        let b = in_lanes!($v, 16);
        unroll16!(m, {
            if m < 4 {
                let (b0, b1, b2, b3) = (b[m], b[4 + m], b[8 + m], b[12 + m]);
                let c0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(b0, b1);
                let c1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(b0, b1);
                let c2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(b2, b3);
                let c3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(b2, b3);
                $v[m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(c0, c2);
                $v[4 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(c0, c2);
                $v[8 + m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(c1, c3);
                $v[12 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(c1, c3);
            }
        });
    }};
}

/// Transposes the 8 × 16 matrix of keys in `$v[..8]` into 16 × 8, two rows to a register:
/// register j then holds lane 2j of the 8 registers, then lane 2j + 1.
macro_rules! transpose8 {
    ($v:ident) => {{
        let b = in_lanes!($v, 8);
        // Columns m and m + 1 of 128-bit lane l go to register 2l + m/2.
        unroll16!(m, {
            if m == 0 || m == 2 {
                let c0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(b[m], b[4 + m]);
                let c1 = _mm512_shuffle_i32x4::<0b01_00_01_00>(b[m + 1], b[5 + m]);
                let c2 = _mm512_shuffle_i32x4::<0b11_10_11_10>(b[m], b[4 + m]);
                let c3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(b[m + 1], b[5 + m]);
                $v[m / 2] = _mm512_shuffle_i32x4::<0b10_00_10_00>(c0, c1);
                $v[2 + m / 2] = _mm512_shuffle_i32x4::<0b11_01_11_01>(c0, c1);
                $v[4 + m / 2] = _mm512_shuffle_i32x4::<0b10_00_10_00>(c2, c3);
                $v[6 + m / 2] = _mm512_shuffle_i32x4::<0b11_01_11_01>(c2, c3);
            }
        });
    }};
}

/// The shuffles of one stage of [`merge_columns`] for a pair of registers A = register i and
/// B = register R − 1 − i, which that stage's in-register layers only ever pair with each other.
/// The pair is held as two registers X and Y of 32 slots (X's lanes, then Y's); each layer
/// gathers the lower key of each of its 16 compare-exchanges into X and the upper one into Y
/// with two two-source permutes (`lo`, `hi`: slot indices), then takes their minimum and
/// maximum: four operations per two registers, where a permute, a minimum and a masked maximum
/// per register take six. `a` and `b` put the keys back in lane order at the end.
struct PairStage {
    lo: [[i32; 16]; 4],
    hi: [[i32; 16]; 4],
    a: [i32; 16],
    b: [i32; 16],
}

/// [`PairStage`] for merging runs of 2^(k−1) columns into runs of 2^k (k in 1..=4): k layers.
/// Element e < 16 is lane e of A, e ≥ 16 lane e − 16 of B.
const fn pair_stage(k: usize) -> PairStage {
    let block = 1usize << k;
    let mut st = PairStage {
        lo: [[0; 16]; 4],
        hi: [[0; 16]; 4],
        a: [0; 16],
        b: [0; 16],
    };
    let mut slot = [0usize; 32];
    let mut e = 0;
    while e < 32 {
        slot[e] = e;
        e += 1;
    }
    let mut l = 0;
    while l < k {
        let mut next = [0usize; 32];
        let (mut t, mut e) = (0, 0);
        while e < 32 {
            let (reg, c) = (e / 16, e % 16);
            // The first layer meets each lane with its mirror image in the run, in the other
            // register; the rest are half-cleaners inside each register, at distance d. The
            // element in the lower column of the run, or the lower half of the block, is lower.
            let (partner, lower) = if l == 0 {
                ((1 - reg) * 16 + (c ^ (block - 1)), c & (block / 2) == 0)
            } else {
                let d = block >> (l + 1);
                (reg * 16 + (c ^ d), c & d == 0)
            };
            if lower {
                st.lo[l][t] = slot[e] as i32;
                st.hi[l][t] = slot[partner] as i32;
                next[e] = t;
                next[partner] = 16 + t;
                t += 1;
            }
            e += 1;
        }
        slot = next;
        l += 1;
    }
    let mut c = 0;
    while c < 16 {
        st.a[c] = slot[c] as i32;
        st.b[c] = slot[16 + c] as i32;
        c += 1;
    }
    st
}

/// The four stages' shuffles.
static PAIR_STAGES: [PairStage; 4] = [pair_stage(1), pair_stage(2), pair_stage(3), pair_stage(4)];

/// A table of [`PairStage`] as a register.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn lanes(t: &[i32; 16]) -> __m512i {
    // SAFETY: `t` holds 16 i32.
    unsafe { _mm512_loadu_si512(t.as_ptr().cast()) }
}

/// Merges sorted runs of 2^(k−1) columns pairwise into runs of 2^k, in the column domain:
/// lane c of register i holds element i of column c, and a run reads its columns in turn, so
/// element i of its column j is the run's element j·R + i (R = `$r` registers). A bitonic
/// merge then needs shuffles only where it pairs elements of different columns (the first
/// layer, which pairs each element with its mirror image, and k − 1 half-cleaners, both done
/// on pairs of registers by [`PairStage`]); the last log₂R half-cleaners pair elements of one
/// column, in two registers: a minimum and a maximum.
macro_rules! merge_columns {
    ($v:ident, $r:expr, $k:expr) => {{
        let (r, k): (usize, usize) = ($r, $k);
        let st = &PAIR_STAGES[k - 1];
        unroll16!(i, {
            if i < r / 2 {
                let (mut x, mut y) = ($v[i], $v[r - 1 - i]);
                for l in 0..k {
                    let lo = _mm512_permutex2var_epi32(x, lanes(&st.lo[l]), y);
                    let hi = _mm512_permutex2var_epi32(x, lanes(&st.hi[l]), y);
                    (x, y) = (_mm512_min_epu32(lo, hi), _mm512_max_epu32(lo, hi));
                }
                $v[i] = _mm512_permutex2var_epi32(x, lanes(&st.a), y);
                $v[r - 1 - i] = _mm512_permutex2var_epi32(x, lanes(&st.b), y);
            }
        });
        cross_half_cleaners!($v, r, r, _mm512_min_epu32, _mm512_max_epu32);
    }};
}

/// Merges sorted blocks of `$m` registers of `$v` (`$r` of them) pairwise into sorted
/// blocks of 2·`$m`. A macro, not a function, so that the registers never leave registers.
macro_rules! merge_blocks {
    ($v:ident, $r:expr, $m:expr) => {{
        let (r, m): (usize, usize) = ($r, $m);
        let reverse = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        // The right block reversed makes each pair of blocks bitonic; one half-cleaner
        // splits it into a lower and an upper bitonic half. Register i of the left block
        // meets register 2m−1−i reversed.
        unroll16!(p, {
            if p < r / 2 {
                let (base, i) = ((p / m) * 2 * m, p % m);
                let (a, b) = (base + i, base + 2 * m - 1 - i);
                let (x, y) = ($v[a], _mm512_permutexvar_epi32(reverse, $v[b]));
                $v[a] = _mm512_min_epu32(x, y);
                $v[b] = _mm512_max_epu32(x, y);
            }
        });
        // Half-cleaners across registers, then the four inside each.
        cross_half_cleaners!($v, r, m, _mm512_min_epu32, _mm512_max_epu32);
        unroll16!(q, {
            if q < r {
                for (d, s) in MERGE16 {
                    $v[q] = layer($v[q], partner(d as i32), max_lanes(d, s));
                }
            }
        });
    }};
}

/// Sorts the keys of `buf` (at most 16·R) in registers and writes them back as floats' bits.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn sort_small<const R: usize>(buf: &mut [u32]) {
    let n = buf.len();
    debug_assert!(n <= 16 * R);
    let mut v = [_mm512_set1_epi32(-1); R];
    for (r, reg) in v.iter_mut().enumerate() {
        let at = 16 * r;
        if at < n {
            // SAFETY: only lanes below n - at are read, and they lie inside `buf`.
            *reg = unsafe {
                _mm512_mask_loadu_epi32(*reg, first((n - at).min(16)), buf.as_ptr().add(at).cast())
            };
        }
    }
    if R == 16 {
        // The columns sorted, merged in the column domain, then transposed.
        let mut w = [_mm512_setzero_si512(); 16];
        w[..].copy_from_slice(&v[..16]);
        sort_columns!(w, GREEN16);
        merge_columns!(w, 16, 1);
        merge_columns!(w, 16, 2);
        merge_columns!(w, 16, 3);
        merge_columns!(w, 16, 4);
        transpose16!(w);
        v[..16].copy_from_slice(&w);
    } else if R == 8 {
        let mut w = [_mm512_setzero_si512(); 8];
        w[..].copy_from_slice(&v[..8]);
        sort_columns!(w, super::avx2::NET8);
        merge_columns!(w, 8, 1);
        merge_columns!(w, 8, 2);
        merge_columns!(w, 8, 3);
        merge_columns!(w, 8, 4);
        transpose8!(w);
        v[..8].copy_from_slice(&w);
    } else {
        // Each register sorted, then bitonic merges of ever larger blocks.
        unroll16!(q, {
            if q < R {
                v[q] = sort16(v[q]);
            }
        });
    }
    if R > 1 && R < 8 {
        merge_blocks!(v, R, 1);
    }
    if R > 2 && R < 8 {
        merge_blocks!(v, R, 2);
    }
    for (r, reg) in v.iter().enumerate() {
        let at = 16 * r;
        if at < n {
            // SAFETY: only lanes below n - at are written, and they lie inside `buf`.
            unsafe {
                _mm512_mask_storeu_epi32(
                    buf.as_mut_ptr().add(at).cast(),
                    first((n - at).min(16)),
                    values_of(*reg),
                )
            };
        }
    }
}

/// Keys at most this many are sorted in registers.
const SMALL: usize = 256;

#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn sort_leaf(buf: &mut [u32]) {
    match buf.len().div_ceil(16) {
        0 => {}
        1 => sort_small::<1>(buf),
        2 => sort_small::<2>(buf),
        3 | 4 => sort_small::<4>(buf),
        5..=8 => sort_small::<8>(buf),
        _ => sort_small::<16>(buf),
    }
}

/// `v`'s keys below `pivot` stored at `*l` (which moves up), the others before `*r` (which
/// moves down); only the lanes of `valid` count.
///
/// # Safety
/// `[*l, *l + below)` and `[*r - above, *r)` must lie inside the allocation of `at` and hold
/// nothing still to be read.
///
/// With `WHOLE`, the keys below go out in a whole register, whose lanes past them land on
/// free slots that later stores fill: `[*l, *l + 16)` must then be free. That saves the mask
/// register a masked store needs, and so an operation on the port every compress is bound to.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
unsafe fn split<const WHOLE: bool>(
    at: *mut u32,
    v: __m512i,
    valid: __mmask16,
    p: __m512i,
    l: &mut usize,
    r: &mut usize,
) {
    let lt = _mm512_mask_cmplt_epu32_mask(valid, v, p);
    // `valid & !lt` in a mask register: written plainly, LLVM makes it a second compare, on
    // the port the compresses need.
    let ge: __mmask16;
    // SAFETY: a mask-register operation on registers the asm names; no memory.
    unsafe {
        std::arch::asm!(
            "kandnw {ge}, {lt}, {valid}",
            ge = out(kreg) ge,
            lt = in(kreg) lt,
            valid = in(kreg) valid,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    let (below, above) = (lt.count_ones() as usize, ge.count_ones() as usize);
    *r -= above;
    // SAFETY: the caller's promise, and masked-off lanes are not written.
    unsafe {
        let (lo, hi) = (
            _mm512_maskz_compress_epi32(lt, v),
            _mm512_maskz_compress_epi32(ge, v),
        );
        if WHOLE {
            _mm512_storeu_si512(at.add(*l).cast(), lo);
        } else {
            _mm512_mask_storeu_epi32(at.add(*l).cast(), first(below), lo);
        }
        _mm512_mask_storeu_epi32(at.add(*r).cast(), first(above), hi);
    }
    *l += below;
}

/// Float bits to keys in a register, as `key` does lane by lane.
#[inline]
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn keys_of(bits: __m512i) -> __m512i {
    let sign = _mm512_srai_epi32::<31>(bits);
    _mm512_xor_si512(bits, _mm512_or_si512(sign, _mm512_set1_epi32(i32::MIN)))
}

/// Registers read at a time from one end by [`partition`]: the choice of end waits on the
/// counts of the last round, so it is made once per `UNROLL` registers.
const UNROLL: usize = 4;

/// Partitions `keys` in place: those below `pivot` first; returns how many. With `FLOATS`
/// they are floats' bits, made keys as they are read (the first level of an in-place sort).
///
/// In place, so that the levels below the first stay in one buffer in cache (the design of
/// x86-simd-sort): the first
/// and last `UNROLL` registers are held back, which frees 32·UNROLL slots, and each next
/// 16·UNROLL keys are read from the end with fewer free slots, so what is written on either
/// side never overwrites what is still to be read. Needs at least 32·UNROLL keys.
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn partition<const FLOATS: bool>(keys: &mut [u32], pivot: u32) -> usize {
    const W: usize = 16 * UNROLL;
    let n = keys.len();
    assert!(n >= 2 * W);
    let p = _mm512_set1_epi32(pivot as i32);
    let at = keys.as_mut_ptr();
    let all = first(16);
    // SAFETY: loads read 16 keys (or the `valid` lanes) inside [0, n); stores go to free
    // slots (see above), inside [0, n) as well.
    unsafe {
        // `wrapping_add`: the tail's empty registers point past the keys, reading no lane.
        let read = |i: usize, valid: __mmask16| {
            let v = _mm512_maskz_loadu_epi32(valid, at.wrapping_add(i).cast());
            if FLOATS {
                keys_of(v)
            } else {
                v
            }
        };
        let held: [__m512i; 2 * UNROLL] = std::array::from_fn(|k| {
            if k < UNROLL {
                read(16 * k, all)
            } else {
                read(n - W + 16 * (k - UNROLL), all)
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
            let vs: [__m512i; UNROLL] = std::array::from_fn(|k| read(from + 16 * k, all));
            // Each side had at least 16·UNROLL free slots before these reads, and each
            // register takes at most 16 of them: whole stores on the left are safe.
            for v in vs {
                split::<true>(at, v, all, p, &mut l, &mut r);
            }
        }
        // What is left (under 16·UNROLL keys) read at once, then split with what was held
        // back: every free slot is now one gap.
        let valid = |k: usize| first((rr - rl).saturating_sub(16 * k).min(16));
        let rest: [__m512i; UNROLL] = std::array::from_fn(|k| read(rl + 16 * k, valid(k)));
        for (k, v) in rest.into_iter().enumerate() {
            split::<false>(at, v, valid(k), p, &mut l, &mut r);
        }
        for v in held {
            split::<false>(at, v, all, p, &mut l, &mut r);
        }
        debug_assert_eq!(l, r);
        l
    }
}

/// The median of 16 of `xs` spread over it, as `Lanes::pivot`, built in a register: 16 scalar
/// stores read back as one vector stall the load on store forwarding, and a
/// gather is slower still on CPUs with the gather-data-sampling fix.
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn pivot(xs: &[u32], floats: bool) -> u32 {
    let n = xs.len();
    let x = |i: usize| xs[(2 * i + 1) * n / 32] as i32;
    let v = _mm512_setr_epi32(
        x(0),
        x(1),
        x(2),
        x(3),
        x(4),
        x(5),
        x(6),
        x(7),
        x(8),
        x(9),
        x(10),
        x(11),
        x(12),
        x(13),
        x(14),
        x(15),
    );
    let v = if floats { keys_of(v) } else { v };
    let mut out = [0u32; 16];
    store(&mut out, 0, sort16(v));
    out[8]
}

/// Moves the floats of `row` below `pivot` (a key) to the front of `keys` and the others to
/// its back, as keys; returns how many went to the front. The first level: one pass that
/// reads the row forward, as it streams in from memory, and makes its keys on the way.
#[target_feature(enable = "avx512f,popcnt,bmi2")]
fn partition_row(row: &[u32], keys: &mut [u32], pivot: u32) -> usize {
    let n = row.len();
    assert_eq!(keys.len(), n);
    let p = _mm512_set1_epi32(pivot as i32);
    let (mut l, mut r) = (0usize, n);
    let whole = n / 16 * 16;
    for at in (0..whole).step_by(16) {
        // SAFETY: 16 keys lie inside `row` from `at`; the keys written go below `l + below`
        // and from `r - above`, which stay apart as every key is written once; `[l, r)` holds
        // the n − at ≥ 16 keys still to be written, so the whole store on the left is safe.
        unsafe {
            let v = keys_of(_mm512_loadu_si512(row.as_ptr().add(at).cast()));
            split::<true>(keys.as_mut_ptr(), v, first(16), p, &mut l, &mut r);
        }
    }
    if whole < n {
        let valid = first(n - whole);
        // SAFETY: as above, with only the `valid` lanes read and written.
        unsafe {
            let v = keys_of(_mm512_maskz_loadu_epi32(
                valid,
                row.as_ptr().add(whole).cast(),
            ));
            split::<false>(keys.as_mut_ptr(), v, valid, p, &mut l, &mut r);
        }
    }
    debug_assert_eq!(l, r);
    l
}

/// The 16-lane path of the quicksort in `sort.rs`.
pub(super) struct Avx512;

// SAFETY (every method): `sort::path` runs this path only where the CPU has AVX-512F, POPCNT
// and BMI2, the features the functions called need.
impl super::Lanes for Avx512 {
    type Key = u32;
    const SMALL: usize = SMALL;

    fn key(bits: u32) -> u32 {
        key(f32::from_bits(bits))
    }

    fn bits(key: u32) -> u32 {
        value(key).to_bits()
    }

    fn above(key: u32) -> Option<u32> {
        key.checked_add(1)
    }

    unsafe fn pivot(xs: &[u32], floats: bool) -> u32 {
        unsafe { pivot(xs, floats) }
    }

    unsafe fn leaf(buf: &mut [u32]) {
        unsafe { sort_leaf(buf) }
    }

    unsafe fn partition(keys: &mut [u32], pivot: u32, floats: bool) -> usize {
        if floats {
            unsafe { partition::<true>(keys, pivot) }
        } else {
            unsafe { partition::<false>(keys, pivot) }
        }
    }

    unsafe fn partition_row(row: &[u32], keys: &mut [u32], pivot: u32) -> usize {
        unsafe { partition_row(row, keys, pivot) }
    }
}
