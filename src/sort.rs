//! Sorting one row of f32 ascending, for the CPU backend's per-class pass.
//!
//! The order is the floats' total order (−0 before +0), taken on their order-preserving u32
//! images, so the result is bitwise the same whichever path runs, and whatever the algorithm: equal
//! keys are equal floats, so no sort here needs to be stable.
//!
//! On x86-64 CPUs with AVX-512 a row is sorted by a vectorised quicksort (`sort/avx512.rs`), the
//! design of x86-simd-sort (numpy's `np.sort`) and Highway's vqsort: partitions sixteen keys at a
//! time by a compare and two compressing stores, down to pieces of at most 256 keys, which are
//! sorted in sixteen registers (a sorting network down the columns, a transpose, then bitonic
//! merges) and written out as floats. The first partition reads the row forward once and writes
//! keys to a scratch buffer; the rest work in place there. CPUs with AVX2 but not AVX-512 run the
//! same quicksort on eight lanes (`sort/avx2.rs`), compressing through a table of permutations.
//! Other CPUs, and short rows, use `radsort`. The paths are measured against numpy's AVX-512 and
//! AVX2 sorts in `bench-results/2026-12-02-cpu-quicksort.md`.

/// A buffer [`sort_row`] reuses from row to row: the keys below the first partition.
#[derive(Default)]
pub struct Scratch {
    keys: Vec<u32>,
}

/// Rows shorter than this go to `radsort`: the vector path's fixed costs do not pay off.
const SIMD_MIN: usize = 64;

/// The sort this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// 16 lanes: AVX-512F, with POPCNT and BMI2 for the partitions' counts and masks (every
    /// AVX-512 CPU has both).
    Avx512,
    /// 8 lanes: AVX2 and POPCNT (x86-64 CPUs since 2013).
    Avx2,
    /// `radsort`: any other CPU.
    Radsort,
}

/// The fastest [`Path`] this CPU has. `ALDFIT_CPU_SORT=avx2` or `=fallback` (radsort) caps it,
/// to measure the slower paths on the same machine.
pub fn path() -> Path {
    static PATH: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let cap = std::env::var("ALDFIT_CPU_SORT").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if cap != "fallback"
                && cap != "avx2"
                && has!("avx512f")
                && has!("popcnt")
                && has!("bmi2")
            {
                return Path::Avx512;
            }
            if cap != "fallback" && has!("avx2") && has!("popcnt") {
                return Path::Avx2;
            }
        }
        let _ = cap;
        Path::Radsort
    })
}

/// Sorts `row` ascending in the floats' total order.
pub fn sort_row(row: &mut [f32], scratch: &mut Scratch) {
    sort_from(None, row, scratch);
}

/// Writes `src` sorted ascending (in the floats' total order) to `dst`, of the same length:
/// the vector paths read `src` once, in their first partition, so this costs no more than
/// sorting in place, and saves the caller a copy.
pub fn sort_row_into(src: &[f32], dst: &mut [f32], scratch: &mut Scratch) {
    assert_eq!(src.len(), dst.len(), "sort_row_into: lengths differ");
    sort_from(Some(src), dst, scratch);
}

/// Sorts `src` (or, without it, `dst` itself) into `dst`.
fn sort_from(src: Option<&[f32]>, dst: &mut [f32], scratch: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    if dst.len() >= SIMD_MIN {
        let depth = max_depth(dst.len());
        let keys = &mut scratch.keys;
        match path() {
            // SAFETY: the CPU has AVX-512F, POPCNT and BMI2, checked by `path`.
            Path::Avx512 => unsafe { quicksort::<avx512::Avx512>(src, dst, keys, depth) },
            // SAFETY: the CPU has AVX2 and POPCNT, checked by `path`.
            Path::Avx2 => unsafe { quicksort::<avx2::Avx2>(src, dst, keys, depth) },
            Path::Radsort => {
                if let Some(src) = src {
                    dst.copy_from_slice(src);
                }
                radsort::sort(dst);
            }
        }
        return;
    }
    let _ = scratch;
    if let Some(src) = src {
        dst.copy_from_slice(src);
    }
    radsort::sort(dst);
}

#[cfg(target_arch = "x86_64")]
/// What a vector path gives the quicksort written once below: keys whose order is the floats'
/// total order, partitions, and leaves sorted in registers.
///
/// # Safety
/// The `unsafe` methods need the path's CPU features: only call them where [`path`] chose it.
trait Lanes {
    /// 32 bits, so that the scratch buffer of u32 holds them.
    type Key: Copy + Ord + bytemuck::Pod;
    /// Pieces at most this long are leaves.
    const SMALL: usize;
    /// A float's bits to its key, and back.
    fn key(bits: u32) -> Self::Key;
    fn bits(key: Self::Key) -> u32;
    /// The next key up, if any.
    fn above(key: Self::Key) -> Option<Self::Key>;
    /// The median of 16 of `xs` spread over it, at `(2i + 1)·n/32` (floats' bits where
    /// `floats`, else keys), made a key: the pivot of a partition. One of the sample, so that
    /// each level sets at least one key apart.
    unsafe fn pivot(xs: &[u32], floats: bool) -> Self::Key;
    /// Sorts `keys` (at most `SMALL`) into `out` as floats' bits.
    unsafe fn leaf(keys: &[Self::Key], out: &mut [u32]);
    /// Partitions `keys` in place, those below `pivot` first (more than `SMALL` of them);
    /// returns how many are below.
    unsafe fn partition(keys: &mut [Self::Key], pivot: Self::Key) -> usize;
    /// The first level: `row`'s floats (bits) below `pivot` to the front of `keys`, the others
    /// to its back, as keys; returns how many are below.
    unsafe fn partition_row(row: &[u32], keys: &mut [Self::Key], pivot: Self::Key) -> usize;
}

#[cfg(target_arch = "x86_64")]
/// Sorts `src` (or, without it, `dst`) into `dst` with path `L`: the first partition reads
/// the source forward once into `scratch` as keys, the rest work in place there, and the
/// leaves write the sorted floats to `dst`. The source is read whole before `dst` is written,
/// so the two may be one row.
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn quicksort<L: Lanes>(
    src: Option<&[f32]>,
    dst: &mut [f32],
    scratch: &mut Vec<u32>,
    depth: u32,
) {
    let n = dst.len();
    scratch.resize(n, 0);
    let keys: &mut [L::Key] = bytemuck::cast_slice_mut(&mut scratch[..n]);
    // SAFETY (each call below): the caller's promise.
    let split = {
        let bits: &[u32] = bytemuck::cast_slice(src.unwrap_or(dst));
        if n <= L::SMALL {
            for (k, &b) in keys.iter_mut().zip(bits.iter()) {
                *k = L::key(b);
            }
            None
        } else {
            let pivot = unsafe { L::pivot(bits, true) };
            Some((unsafe { L::partition_row(bits, keys, pivot) }, pivot))
        }
    };
    let out: &mut [u32] = bytemuck::cast_slice_mut(dst);
    match split {
        None => unsafe { L::leaf(keys, out) },
        Some((below, pivot)) => unsafe { descend::<L>(keys, out, below, pivot, depth) },
    }
}

#[cfg(target_arch = "x86_64")]
/// Sorts `keys` (in place, as scratch) into `out` as floats' bits: partitions down to leaves,
/// and after `depth` partitions (a run of bad pivots) the standard library's pattern-defeating
/// sort, so that any input takes O(n log n).
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn quick<L: Lanes>(keys: &mut [L::Key], out: &mut [u32], depth: u32) {
    // SAFETY (each call below): the caller's promise.
    if keys.len() <= L::SMALL {
        unsafe { L::leaf(keys, out) };
        return;
    }
    if depth == 0 {
        keys.sort_unstable();
        for (o, &k) in out.iter_mut().zip(keys.iter()) {
            *o = L::bits(k);
        }
        return;
    }
    let pivot = unsafe { L::pivot(bytemuck::cast_slice(keys), false) };
    let below = unsafe { L::partition(keys, pivot) };
    unsafe { descend::<L>(keys, out, below, pivot, depth - 1) };
}

#[cfg(target_arch = "x86_64")]
/// Sorts on, once `keys` are partitioned at `pivot` with `below` of them below it.
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn descend<L: Lanes>(
    keys: &mut [L::Key],
    out: &mut [u32],
    below: usize,
    pivot: L::Key,
    depth: u32,
) {
    // SAFETY (each call below): the caller's promise.
    if below > 0 {
        let (k_lo, k_hi) = keys.split_at_mut(below);
        let (o_lo, o_hi) = out.split_at_mut(below);
        unsafe { quick::<L>(k_lo, o_lo, depth) };
        unsafe { quick::<L>(k_hi, o_hi, depth) };
        return;
    }
    // The pivot is the smallest key: its copies are final (all of them, if it is the largest
    // key too), and the keys above it are sorted on. The pivot is one of the keys, so each
    // level sets at least one apart.
    let equal = match L::above(pivot) {
        Some(next) => unsafe { L::partition(keys, next) },
        None => keys.len(),
    };
    out[..equal].fill(L::bits(pivot));
    unsafe { quick::<L>(&mut keys[equal..], &mut out[equal..], depth) };
}

#[cfg(target_arch = "x86_64")]
/// Partition levels before a piece is handed to `sort_unstable` (O(n log n) whatever the
/// input): twice the levels of perfect halving, and some.
fn max_depth(n: usize) -> u32 {
    2 * (usize::BITS - n.leading_zeros()) + 8
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

/// The body once per index 0..16, each time with `$i` a constant, so that arrays of
/// registers indexed by it stay in registers.
macro_rules! unroll16 {
    ($i:ident, $body:block) => {
        unroll16!(@ $i, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $i:ident, $body:block, $($n:literal)*) => {
        $( { let $i: usize = $n; $body } )*
    };
}

/// The first two steps of a transpose of `$rows` registers (a multiple of 4) in 4 × 4 blocks:
/// interleaved pairs of 32-bit lanes, then of 64-bit lanes (`$lo32`/`$hi32`, `$lo64`/`$hi64`
/// being the path's unpack instructions). In the result `b`, register 4k + m holds, in its
/// 128-bit lane l, column 4l + m of registers 4k..4k + 4.
macro_rules! transpose_in_lanes {
    ($v:ident, $rows:expr, $lo32:path, $hi32:path, $lo64:path, $hi64:path) => {{
        let rows: usize = $rows;
        let mut a = $v;
        unroll16!(k, {
            if k < rows / 2 {
                a[2 * k] = $lo32($v[2 * k], $v[2 * k + 1]);
                a[2 * k + 1] = $hi32($v[2 * k], $v[2 * k + 1]);
            }
        });
        let mut b = a;
        unroll16!(k, {
            if k < rows / 4 {
                b[4 * k] = $lo64(a[4 * k], a[4 * k + 2]);
                b[4 * k + 1] = $hi64(a[4 * k], a[4 * k + 2]);
                b[4 * k + 2] = $lo64(a[4 * k + 1], a[4 * k + 3]);
                b[4 * k + 3] = $hi64(a[4 * k + 1], a[4 * k + 3]);
            }
        });
        b
    }};
}

/// Half-cleaners across registers: for each distance d of 8, 4, 2, 1 below `$upto`, register
/// `a` meets `a + d` within blocks of 2d of the `$r` registers of `$v`, keeping the smaller
/// key (`$min`) in `a` and the larger (`$max`) in `a + d`, lane by lane.
macro_rules! cross_half_cleaners {
    ($v:ident, $r:expr, $upto:expr, $min:path, $max:path) => {{
        let (r, upto): (usize, usize) = ($r, $upto);
        for t in 0..4 {
            let d = 8 >> t;
            if d < upto {
                unroll16!(p, {
                    if p < r / 2 {
                        let a = (p / d) * 2 * d + p % d;
                        let (x, y) = ($v[a], $v[a + d]);
                        $v[a] = $min(x, y);
                        $v[a + d] = $max(x, y);
                    }
                });
            }
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

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

    /// Whether a comparator network over `n` wires sorts every input. By the 0-1 principle it
    /// does iff it sorts every input of zeros and ones: 2ⁿ cases.
    fn network_sorts(n: usize, layers: &[&[(usize, usize)]]) -> bool {
        (0u32..1 << n).all(|bits| {
            let mut v: Vec<u32> = (0..n).map(|i| (bits >> i) & 1).collect();
            for layer in layers {
                for &(i, j) in *layer {
                    let (x, y) = (v[i], v[j]);
                    v[i] = x.min(y);
                    v[j] = x.max(y);
                }
            }
            v.windows(2).all(|w| w[0] <= w[1])
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn column_networks_sort_every_input() {
        assert!(network_sorts(16, &avx512::GREEN16));
        assert!(network_sorts(8, &avx2::NET8));
        // And the check can fail: without its last comparator Green's network does not sort.
        let mut short = avx512::GREEN16;
        short[9] = &[(6, 7)];
        assert!(!network_sorts(16, &short));
    }

    type VectorSort = unsafe fn(Option<&[f32]>, &mut [f32], &mut Vec<u32>, u32);

    /// The vector sorts this CPU can run, by name; a printed note for each it cannot.
    fn vector_sorts() -> Vec<(&'static str, VectorSort)> {
        let mut out: Vec<(&'static str, VectorSort)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("popcnt") && has!("bmi2") {
                out.push(("avx512", quicksort::<avx512::Avx512>));
            } else {
                eprintln!("skipped: this CPU has no AVX-512F/POPCNT/BMI2");
            }
            if has!("avx2") && has!("popcnt") {
                out.push(("avx2", quicksort::<avx2::Avx2>));
            } else {
                eprintln!("skipped: this CPU has no AVX2/POPCNT");
            }
        }
        out
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Rows that only the partitions' special cases sort: few distinct values (the pivot is the
    /// smallest key, so its copies are set apart), one value repeated (NaN's all-ones key
    /// included), and, with no partition levels allowed, the fallback.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn quicksort_handles_ties_extremes_and_its_fallback() {
        let nan = f32::from_bits(0x7fff_ffff);
        for n in [257usize, 300, 1000, 4096, 5003] {
            let rows: Vec<Vec<f32>> = vec![
                (0..n).map(|i| [3.0, -1.0, 3.0, 0.5][i % 4]).collect(),
                (0..n)
                    .map(|i| if i % 97 == 0 { -2.0 } else { 7.0 })
                    .collect(),
                vec![nan; n],
                (0..n).map(|i| if i % 3 == 0 { nan } else { 1.0 }).collect(),
                (0..n).map(|i| ((i * 7919) % n) as f32 - 100.0).collect(),
            ];
            for (kind, xs) in rows.iter().enumerate() {
                let mut want = xs.clone();
                want.sort_by(f32::total_cmp);
                for (name, sort) in vector_sorts() {
                    for depth in [max_depth(n), 1, 0] {
                        let mut got = xs.clone();
                        // SAFETY: `vector_sorts` lists only what the CPU can run.
                        unsafe { sort(None, &mut got, &mut Vec::new(), depth) };
                        let at = format!("{name}, n {n}, kind {kind}, depth {depth}");
                        assert_eq!(bits(&got), bits(&want), "{at}");
                    }
                }
            }
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
            0usize, 1, 2, 15, 16, 17, 63, 64, 65, 100, 128, 129, 200, 256, 257, 1000, 2048, 4099,
            20000,
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
                assert_eq!(bits(&got), bits(&want), "n {n}, kind {kind}");
                // Out of place, over a row of other contents; the source stays as it was.
                let mut into = vec![f32::NAN; n];
                sort_row_into(&xs, &mut into, &mut s);
                assert_eq!(bits(&into), bits(&want), "into, n {n}, kind {kind}");
                for (name, sort) in vector_sorts() {
                    let mut got = xs.clone();
                    // SAFETY: `vector_sorts` lists only what the CPU can run.
                    unsafe { sort(None, &mut got, &mut s.keys, max_depth(n)) };
                    assert_eq!(bits(&got), bits(&want), "{name}, n {n}, kind {kind}");
                    let src = xs.clone();
                    let mut into = vec![-1.0; n];
                    // SAFETY: as above.
                    unsafe { sort(Some(&src), &mut into, &mut s.keys, max_depth(n)) };
                    assert_eq!(bits(&into), bits(&want), "{name} into, n {n}, kind {kind}");
                    assert_eq!(bits(&src), bits(&xs), "{name}: the source was written");
                }
            }
        }
    }
}
