//! Sorting one row of f32 ascending, for the CPU backend's per-class pass.
//!
//! The order is the floats' total order (−0 before +0), taken on their order-preserving u32
//! images, so the result is bitwise the same whichever path runs, and whatever the algorithm: equal
//! keys are equal floats, so no sort here needs to be stable.
//!
//! On x86-64 CPUs with AVX-512 a row is sorted by a vectorised quicksort (`sort/avx512.rs`), the
//! design of x86-simd-sort (numpy's `np.sort`) and Highway's vqsort: partitions sixteen keys at a
//! time by a compare and two compressing stores, down to pieces of at most 256 keys, which are
//! sorted in sixteen registers (a sorting network down the columns, bitonic merges of runs of
//! columns, then a transpose) and written back as floats. The first partition reads the source
//! row forward once and writes keys to the destination row (or, in place, makes them as it
//! reads); the rest work in place there, so a sort needs no memory beyond its row. CPUs with AVX2
//! but not AVX-512 run the same quicksort on eight lanes (`sort/avx2.rs`), compressing through a
//! table of permutations. Other CPUs, and short rows, use `radsort`.
//!
//! Only the first partition waits on memory; the `_ahead` entry points have the leaves fetch the
//! next row meanwhile, which callers walking a buffer row by row use. The paths are measured
//! against numpy's AVX-512 and AVX2 sorts in `bench-results/2026-12-02-cpu-sort-pairs.md`.

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
pub fn sort_row(row: &mut [f32]) {
    sort_from(None, row, Ahead::NONE);
}

/// Writes `src` sorted ascending (in the floats' total order) to `dst`, of the same length: the
/// vector paths read `src` once, in their first partition, so this costs no more than sorting
/// in place, and saves the caller a copy. Meanwhile it brings the rows that follow `src` and
/// `dst` in memory (the next row of each, in a row-major buffer) into cache: a sort's first
/// level waits on memory and the rest do not, so the next row's fetch hides behind this row's
/// work.
pub fn sort_row_into_ahead(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "sort_row_into_ahead: lengths differ");
    let ahead = Ahead::after(src, dst);
    sort_from(Some(src), dst, ahead);
}

/// As [`sort_row`], bringing the row that follows in memory into cache meanwhile.
pub fn sort_row_ahead(row: &mut [f32]) {
    let ahead = Ahead::after(row, row);
    sort_from(None, row, ahead);
}

/// The next rows to bring into cache, as a sort's leaves are written: each leaf fetches the
/// lines at its own offset in them, so the leaves, which tile the row, fetch each line once.
/// Only addresses: a prefetch never faults, whatever lies there.
#[derive(Clone, Copy)]
struct Ahead {
    /// The start of the row being sorted (where its keys live).
    row: usize,
    /// The next rows' starts: source and destination (0: none).
    src: usize,
    dst: usize,
}

impl Ahead {
    const NONE: Ahead = Ahead {
        row: 0,
        src: 0,
        dst: 0,
    };

    fn after(src: &[f32], dst: &[f32]) -> Ahead {
        Ahead {
            row: dst.as_ptr() as usize,
            src: src.as_ptr_range().end as usize,
            dst: dst.as_ptr_range().end as usize,
        }
    }

    /// Prefetches the lines of the next rows at `piece`'s offset in this one.
    #[inline]
    fn fetch(self, piece: &[u32]) {
        #[cfg(target_arch = "x86_64")]
        if self.src != 0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            let start = (piece.as_ptr() as usize - self.row) & !63;
            let end = piece.as_ptr_range().end as usize - self.row;
            for off in (start..end).step_by(64) {
                // SAFETY: a prefetch reads nothing the program sees and cannot fault.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T1>((self.src + off) as *const i8);
                    if self.dst != self.src {
                        _mm_prefetch::<_MM_HINT_T1>((self.dst + off) as *const i8);
                    }
                }
            }
        }
    }
}

/// Sorts `src` (or, without it, `dst` itself) into `dst`.
fn sort_from(src: Option<&[f32]>, dst: &mut [f32], ahead: Ahead) {
    #[cfg(target_arch = "x86_64")]
    if dst.len() >= SIMD_MIN {
        let depth = max_depth(dst.len());
        match path() {
            // SAFETY: the CPU has AVX-512F, POPCNT and BMI2, checked by `path`.
            Path::Avx512 => unsafe { quicksort::<avx512::Avx512>(src, dst, depth, ahead) },
            // SAFETY: the CPU has AVX2 and POPCNT, checked by `path`.
            Path::Avx2 => unsafe { quicksort::<avx2::Avx2>(src, dst, depth, ahead) },
            Path::Radsort => {
                if let Some(src) = src {
                    dst.copy_from_slice(src);
                }
                radsort::sort(dst);
            }
        }
        return;
    }
    if let Some(src) = src {
        dst.copy_from_slice(src);
    }
    radsort::sort(dst);
}

#[cfg(target_arch = "x86_64")]
/// What a vector path gives the quicksort written once below: keys whose order is the floats'
/// total order, partitions, and leaves sorted in registers. The keys live in the row being
/// sorted, as u32, and each leaf turns its piece back into floats' bits where it lies.
///
/// # Safety
/// The `unsafe` methods need the path's CPU features: only call them where [`path`] chose it.
trait Lanes {
    /// 32 bits, so that the row holds them in place of its floats.
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
    /// Sorts the keys of `buf` (at most `SMALL`) and writes them back as floats' bits.
    unsafe fn leaf(buf: &mut [u32]);
    /// Partitions `keys` in place, those below `pivot` first (more than `SMALL` of them);
    /// returns how many are below. With `floats` they are read as floats' bits and left as
    /// keys: the first level of an in-place sort.
    unsafe fn partition(keys: &mut [u32], pivot: Self::Key, floats: bool) -> usize;
    /// The first level out of place: `row`'s floats (bits) below `pivot` to the front of
    /// `keys`, the others to its back, as keys; returns how many are below.
    unsafe fn partition_row(row: &[u32], keys: &mut [u32], pivot: Self::Key) -> usize;
}

#[cfg(target_arch = "x86_64")]
/// Sorts `src` (or, without it, `dst`) into `dst` with path `L`. The first partition reads the
/// source forward once and writes keys to `dst` (or makes them in place as it reads), the rest
/// work in place there, and each leaf leaves sorted floats where its keys were: one buffer the
/// size of the row, so that a 4096-key row's levels stay in L1 with its source.
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn quicksort<L: Lanes>(src: Option<&[f32]>, dst: &mut [f32], depth: u32, ahead: Ahead) {
    let n = dst.len();
    if let (Some(src), true) = (src, n <= L::SMALL) {
        dst.copy_from_slice(src);
    }
    let buf: &mut [u32] = bytemuck::cast_slice_mut(dst);
    // SAFETY (each call below): the caller's promise.
    if n <= L::SMALL {
        for b in buf.iter_mut() {
            *b = bytemuck::cast(L::key(*b));
        }
        unsafe { L::leaf(buf) };
        return;
    }
    let below = match src {
        Some(src) => {
            let row: &[u32] = bytemuck::cast_slice(src);
            let pivot = unsafe { L::pivot(row, true) };
            (unsafe { L::partition_row(row, buf, pivot) }, pivot)
        }
        None => {
            let pivot = unsafe { L::pivot(buf, true) };
            (unsafe { L::partition(buf, pivot, true) }, pivot)
        }
    };
    unsafe { descend::<L>(buf, below.0, below.1, depth, ahead) };
}

#[cfg(target_arch = "x86_64")]
/// Sorts the keys of `buf` in place into floats' bits: partitions (at `pivot`, where the caller
/// chose it) down to leaves, and after `depth` partitions (a run of bad pivots) the standard
/// library's pattern-defeating sort, so that any input takes O(n log n).
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn quick<L: Lanes>(buf: &mut [u32], pivot: Option<L::Key>, depth: u32, ahead: Ahead) {
    // SAFETY (each call below): the caller's promise.
    if buf.len() <= L::SMALL {
        ahead.fetch(buf);
        unsafe { L::leaf(buf) };
        return;
    }
    if depth == 0 {
        let keys: &mut [L::Key] = bytemuck::cast_slice_mut(buf);
        keys.sort_unstable();
        for b in buf.iter_mut() {
            *b = L::bits(bytemuck::cast(*b));
        }
        return;
    }
    let pivot = pivot.unwrap_or_else(|| unsafe { L::pivot(buf, false) });
    let below = unsafe { L::partition(buf, pivot, false) };
    unsafe { descend::<L>(buf, below, pivot, depth - 1, ahead) };
}

#[cfg(target_arch = "x86_64")]
/// The pivot [`quick`] will partition `buf` at, if it partitions it.
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn pivot_of<L: Lanes>(buf: &[u32], depth: u32) -> Option<L::Key> {
    // SAFETY: the caller's promise.
    (buf.len() > L::SMALL && depth > 0).then(|| unsafe { L::pivot(buf, false) })
}

#[cfg(target_arch = "x86_64")]
/// Sorts on, once the keys of `buf` are partitioned at `pivot` with `below` of them below it.
/// Both halves' pivots are chosen before either half is sorted: each is a chain of dependent
/// shuffles, and the second then runs beside the first instead of after the first half's
/// whole subtree.
///
/// # Safety
/// The CPU has `L`'s features.
unsafe fn descend<L: Lanes>(
    buf: &mut [u32],
    below: usize,
    pivot: L::Key,
    depth: u32,
    ahead: Ahead,
) {
    // SAFETY (each call below): the caller's promise.
    if below > 0 {
        let (lo, hi) = buf.split_at_mut(below);
        let pivots = unsafe { (pivot_of::<L>(lo, depth), pivot_of::<L>(hi, depth)) };
        unsafe { quick::<L>(lo, pivots.0, depth, ahead) };
        unsafe { quick::<L>(hi, pivots.1, depth, ahead) };
        return;
    }
    // The pivot is the smallest key: its copies are final (all of them, if it is the largest
    // key too), and the keys above it are sorted on. The pivot is one of the keys, so each
    // level sets at least one apart.
    let equal = match L::above(pivot) {
        Some(next) => unsafe { L::partition(buf, next, false) },
        None => buf.len(),
    };
    buf[..equal].fill(L::bits(pivot));
    unsafe { quick::<L>(&mut buf[equal..], None, depth, ahead) };
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

    type VectorSort = unsafe fn(Option<&[f32]>, &mut [f32], u32, Ahead);

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
                        unsafe { sort(None, &mut got, depth, Ahead::NONE) };
                        let at = format!("{name}, n {n}, kind {kind}, depth {depth}");
                        assert_eq!(bits(&got), bits(&want), "{at}");
                    }
                }
            }
        }
    }

    #[test]
    fn sorts_like_total_cmp() {
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
                sort_row(&mut got);
                assert_eq!(bits(&got), bits(&want), "n {n}, kind {kind}");
                // Out of place, over a row of other contents; the source stays as it was. The
                // next rows fetched meanwhile lie past the ends of the allocations here, where a
                // prefetch must not fault either.
                let mut into = vec![f32::NAN; n];
                sort_row_into_ahead(&xs, &mut into);
                assert_eq!(bits(&into), bits(&want), "into, n {n}, kind {kind}");
                let mut got = xs.clone();
                sort_row_ahead(&mut got);
                assert_eq!(bits(&got), bits(&want), "ahead, n {n}, kind {kind}");
                for (name, sort) in vector_sorts() {
                    let mut got = xs.clone();
                    // SAFETY: `vector_sorts` lists only what the CPU can run.
                    unsafe { sort(None, &mut got, max_depth(n), Ahead::NONE) };
                    assert_eq!(bits(&got), bits(&want), "{name}, n {n}, kind {kind}");
                    let src = xs.clone();
                    let mut into = vec![-1.0; n];
                    // SAFETY: as above.
                    unsafe { sort(Some(&src), &mut into, max_depth(n), Ahead::NONE) };
                    assert_eq!(bits(&into), bits(&want), "{name} into, n {n}, kind {kind}");
                    assert_eq!(bits(&src), bits(&xs), "{name}: the source was written");
                }
            }
        }
    }
}
