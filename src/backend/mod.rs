//! The backend primitives (docs/DESIGN.md section 3) and backend selection.
//!
//! A backend holds one chunk of rows at a time, sorted, on its device. Everything the analysis
//! and the split trees need is a computation on segments `(row, lo, hi)` of those sorted rows
//! (docs/DESIGN.md 2.5), so the trait is small: load and sort, partition points, the segment fit, KS,
//! baselines, the study line, readback of a segment, and the NLL + gradient of unsorted rows.
//! The pipeline above it (`crate::analysis`) is written once for every backend.

pub mod abi;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod gpu;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::ald::{AldFit, AldParams, Baselines, LogLikDiff, NllGrad, StudyLine};
use crate::error::{Error, Result};
pub use crate::philox::{NullModel, ReplicateRow};

/// A contiguous range `lo..hi` of sorted row `row` of the resident chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    pub row: u32,
    pub lo: u32,
    pub hi: u32,
}

impl Segment {
    pub fn new(row: usize, lo: usize, hi: usize) -> Self {
        Segment {
            row: row as u32,
            lo: lo as u32,
            hi: hi as u32,
        }
    }

    pub fn len(&self) -> usize {
        (self.hi - self.lo) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.hi <= self.lo
    }
}

/// Which side of zero a study line is fitted to (docs/DESIGN.md 2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The segment holds the positive values ascending: P as is.
    Positive,
    /// The segment holds the negative values ascending: N = −x is the segment reversed.
    Negative,
}

/// Fit, goodness of fit and baselines of one segment: what a row or a tree node reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentStats {
    pub fit: AldFit,
    pub ks: f64,
    pub baselines: Baselines,
}

/// What the per-class table needs of one whole row: its statistics and both study lines, and
/// where its negative values end and its positive values start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowSummary {
    pub stats: SegmentStats,
    pub neg_end: u32,
    pub pos_start: u32,
    pub line_pos: StudyLine,
    pub line_neg: StudyLine,
    /// Σd, Σd² of `ℓ_ALD − ℓ_N` at the row's fitted ALD and Gaussian (Vuong's test).
    pub loglik_diff: LogLikDiff,
}

/// A sorted segment read back: values ascending and, when the chunk was loaded with indices,
/// the feature index of each value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SortedSegment {
    pub values: Vec<f32>,
    pub indices: Vec<u32>,
}

/// What ran: shown by `fit` and recorded in `run.json` and benchmark ids.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackendInfo {
    pub name: String,
    pub device: String,
    /// A GPU API emulated on the CPU (e.g. Mesa lavapipe): correct, but no measure of a GPU.
    pub software: bool,
    /// What the device can hold and run (recorded in `run.json`).
    pub limits: Limits,
}

/// What a backend's device can hold and run, in one place (as cubecl's `HardwareProperties`):
/// the chunking and the kernels' launch shapes follow from it. `None` where a limit does not apply
/// (the CPU has no workgroups).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Device memory in bytes (free memory on CUDA; host memory is not asked for on the CPU).
    pub memory_bytes: Option<u64>,
    /// The largest buffer one kernel binding (or allocation) takes.
    pub max_binding_bytes: Option<u64>,
    /// Workgroup (shared) memory per workgroup or block.
    pub workgroup_memory_bytes: Option<u64>,
    /// Workgroups per grid dimension.
    pub max_workgroups_per_dim: Option<u64>,
    /// The longest row sorted in one workgroup's memory; longer rows are merged.
    pub sort_tile: Option<usize>,
    /// Values per chunk the backend aims for (the CPU: cache-sized chunks).
    pub chunk_values: Option<usize>,
}

/// The primitives every backend implements; see the module docs. The benchmarks' extra
/// entry points are the supertrait [`Benchmarked`].
pub trait Backend: Benchmarked {
    fn info(&self) -> BackendInfo;

    /// What the device can hold and run.
    fn limits(&self) -> Limits;

    /// How many rows of `cols` values one chunk may hold (device memory, binding limits).
    fn max_chunk_rows(&self, cols: usize) -> usize;

    /// Makes `rows` (row-major, `cols` per row) the uploaded input: unsorted, kept where the
    /// backend computes. Benchmarks time it apart from [`sort_uploaded`](Self::sort_uploaded), so
    /// that a GPU's kernels are not charged for the host-to-device copy.
    fn upload(&mut self, rows: &[f32], cols: usize) -> Result<()>;

    /// Replaces the resident chunk with the uploaded rows, each sorted ascending; the uploaded
    /// rows stay as they were. With `with_indices`, each value keeps its feature index (split
    /// trees need them).
    fn sort_uploaded(&mut self, with_indices: bool) -> Result<()>;

    /// Replaces the resident chunk with `rows`, each sorted ascending: `upload`, then
    /// `sort_uploaded`.
    fn load_sorted(&mut self, rows: &[f32], cols: usize, with_indices: bool) -> Result<()> {
        self.upload(rows, cols)?;
        self.sort_uploaded(with_indices)
    }

    /// [`load_sorted`](Self::load_sorted) for a caller that gives the chunk up: a host backend
    /// may keep `rows` itself and hand back another buffer (of any contents) in its place.
    fn load_sorted_owned(
        &mut self,
        rows: &mut Vec<f32>,
        cols: usize,
        with_indices: bool,
    ) -> Result<()> {
        self.load_sorted(rows, cols, with_indices)
    }

    /// Per segment, the offset (absolute, within the row) of the first value `>= pivot`, or
    /// with `strict` the first value `> pivot`.
    fn partition_points(
        &mut self,
        segs: &[Segment],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>>;

    /// Exact MLE of each segment (docs/DESIGN.md 2.2).
    fn fit(&mut self, segs: &[Segment]) -> Result<Vec<AldFit>>;

    /// KS distance of each segment to the given parameters (docs/DESIGN.md 2.3).
    fn ks(&mut self, segs: &[Segment], params: &[AldParams]) -> Result<Vec<f64>>;

    /// Gaussian and Laplace fits of each segment (docs/DESIGN.md 2.3).
    fn baselines(&mut self, segs: &[Segment]) -> Result<Vec<Baselines>>;

    /// The study's line on each segment (docs/DESIGN.md 2.4); segments hold one sign only.
    fn study_line(&mut self, segs: &[Segment], side: Side) -> Result<Vec<StudyLine>>;

    /// Fit, KS and baselines together. Backends may fuse these; the default runs them in turn.
    fn segment_stats(&mut self, segs: &[Segment]) -> Result<Vec<SegmentStats>> {
        stats_in_turn(self, segs)
    }

    /// Loads and sorts a chunk of whole rows (as [`load_sorted_owned`](Self::load_sorted_owned))
    /// and summarises every row: the analysis of one chunk. A backend may fuse the steps (the
    /// CPU does each row start to finish while it is in cache).
    fn summarise_rows(&mut self, rows: &mut Vec<f32>, cols: usize) -> Result<Vec<RowSummary>> {
        let count = rows.len() / cols.max(1);
        self.load_sorted_owned(rows, cols, false)?;
        self.summarise_resident(count, cols)
    }

    /// [`summarise_rows`](Self::summarise_rows) of the rows of `src` (whole rows of `cols`),
    /// with the read pass's check: a row holding NaN or ±inf is zero-filled before it is
    /// summarised, as the analysis does on reading it, and its index is returned beside the
    /// summaries. `rows` is the chunk buffer (its contents are replaced). A host backend sorts
    /// straight from `src`, the mapped file, and so never copies the rows first.
    fn summarise_rows_from(
        &mut self,
        src: &[f32],
        rows: &mut Vec<f32>,
        cols: usize,
    ) -> Result<(Vec<RowSummary>, Vec<usize>)> {
        use rayon::prelude::*;
        check_whole_rows(src.len(), cols)?;
        sized(rows, src.len());
        // Copied and checked a row at a time on every core, as the read pass does.
        let bad: Vec<usize> = rows
            .par_chunks_mut(cols)
            .zip(src.par_chunks(cols))
            .enumerate()
            .filter_map(|(r, (row, from))| {
                row.copy_from_slice(from);
                (!all_finite(row)).then(|| {
                    row.fill(0.0);
                    r
                })
            })
            .collect();
        Ok((self.summarise_rows(rows, cols)?, bad))
    }

    /// Summarises every whole row of the resident chunk (`count` rows of `cols`): fit, KS and
    /// baselines, both study lines, and the log-likelihood differences at the fitted parameters.
    /// The default composes the primitives.
    fn summarise_resident(&mut self, count: usize, cols: usize) -> Result<Vec<RowSummary>> {
        let segs: Vec<Segment> = (0..count).map(|r| Segment::new(r, 0, cols)).collect();
        let zeros = vec![0f32; count];
        let neg_end = self.partition_points(&segs, &zeros, false)?;
        let pos_start = self.partition_points(&segs, &zeros, true)?;
        let stats = self.segment_stats(&segs)?;
        let (pos, neg) = sides(cols, &neg_end, &pos_start);
        let line_pos = self.study_line(&pos, Side::Positive)?;
        let line_neg = self.study_line(&neg, Side::Negative)?;
        let ald: Vec<AldParams> = stats.iter().map(|s| s.fit.params).collect();
        let gauss: Vec<(f64, f64)> = stats
            .iter()
            .map(|s| (s.baselines.mean, s.baselines.std()))
            .collect();
        let diffs = self.loglik_diff(&segs, &ald, &gauss)?;
        Ok((0..count)
            .map(|r| RowSummary {
                stats: stats[r],
                neg_end: neg_end[r],
                pos_start: pos_start[r],
                line_pos: line_pos[r],
                line_neg: line_neg[r],
                loglik_diff: diffs[r],
            })
            .collect())
    }

    /// Makes replicate rows (docs/DESIGN.md 2.6) the uploaded input, generated where the backend
    /// computes: row `i` holds `cols` values of `rows[i]`'s law, drawn by Philox4x32-10 keyed
    /// with `seed`. Nothing crosses from the host but the per-row parameters.
    fn generate(&mut self, rows: &[ReplicateRow], cols: usize, seed: u64) -> Result<()>;

    /// Generates replicate rows, sorts them and summarises each: the bootstrap's unit of work.
    /// The default composes [`generate`](Self::generate), [`sort_uploaded`](Self::sort_uploaded)
    /// and [`summarise_resident`](Self::summarise_resident).
    fn summarise_generated(
        &mut self,
        rows: &[ReplicateRow],
        cols: usize,
        seed: u64,
    ) -> Result<Vec<RowSummary>> {
        self.generate(rows, cols, seed)?;
        self.sort_uploaded(false)?;
        self.summarise_resident(rows.len(), cols)
    }

    /// Raw Philox4x32-10 blocks at `counters` under `key`, computed on the device: the stream
    /// every backend must reproduce bitwise (tests and `validate`).
    fn philox(&mut self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>>;

    /// Σd and Σd² of `d = ℓ_ALD(x) − ℓ_N(x)` over each segment, at the segment's ALD parameters
    /// and Gaussian `(mean, sd)` (docs/DESIGN.md 2.6).
    fn loglik_diff(
        &mut self,
        segs: &[Segment],
        ald: &[AldParams],
        gauss: &[(f64, f64)],
    ) -> Result<Vec<LogLikDiff>>;

    /// Reads segments of the sorted chunk back (tests, tree leaves): small results only.
    fn read_sorted(&mut self, segs: &[Segment]) -> Result<Vec<SortedSegment>>;

    /// Only the feature indices of segments of a chunk loaded with indices (empty without):
    /// what the split trees need, at half the transfer of [`read_sorted`](Self::read_sorted).
    fn read_indices(&mut self, segs: &[Segment]) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .read_sorted(segs)?
            .into_iter()
            .map(|s| s.indices)
            .collect())
    }

    /// NLL and gradient (docs/DESIGN.md 2.1) of each of `rows` (unsorted, `cols` per row) at the
    /// row's parameters. Independent of the resident chunk.
    fn nll_grad(&mut self, rows: &[f32], cols: usize, params: &[AldParams])
        -> Result<Vec<NllGrad>>;
}

/// What only the benchmarks need of a backend: waiting for the device, a streaming reduction of
/// uploaded rows, and the copy bandwidth that is their floor.
pub trait Benchmarked {
    /// Waits until the device has finished all submitted work (benchmarks time inside this).
    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }

    /// [`Backend::nll_grad`] of the uploaded rows, where they are: a pure streaming
    /// reduction, whose speed benchmarks compare with [`copy_bandwidth`](Self::copy_bandwidth).
    fn nll_grad_uploaded(&mut self, params: &[AldParams]) -> Result<Vec<NllGrad>>;

    /// Bytes per second of a copy of `bytes` bytes within the backend's memory, read and write
    /// both counted (as CUDA's bandwidthTest does). One read of an input of `n` bytes cannot take
    /// less than `n / copy_bandwidth`: the floor that benchmarks report against.
    fn copy_bandwidth(&mut self, bytes: usize) -> Result<f64>;
}

/// The best of `runs` timings of `f`, in seconds.
pub fn best_time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..runs.max(1) {
        let t = std::time::Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Backends a user may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A real GPU if one is usable, else the CPU.
    Auto,
    Cpu,
    Wgpu,
    Cuda,
}

/// Creates the backend asked for. `auto` takes a real GPU (CUDA, else a wgpu adapter that is not
/// a CPU) and otherwise the CPU; a software adapter such as lavapipe is used only when `wgpu` is
/// asked for by name.
pub fn create(kind: BackendKind) -> Result<Box<dyn Backend>> {
    create_noting(kind, &mut |_| {})
}

/// [`create`], telling `note` why `auto` passed over each GPU backend it did not take.
pub fn create_noting(kind: BackendKind, note: &mut dyn FnMut(String)) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(cpu::CpuBackend::new())),
        BackendKind::Auto => {
            #[cfg(feature = "cuda")]
            match cuda::CudaBackend::new() {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => note(e.to_string()),
            }
            #[cfg(feature = "wgpu")]
            match without_driver_noise(|| wgpu::WgpuBackend::new(false)).0 {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => note(e.to_string()),
            }
            Ok(Box::new(cpu::CpuBackend::new()))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => match without_driver_noise(|| wgpu::WgpuBackend::new(true)) {
            (Ok(b), _) => Ok(Box::new(b)),
            // What the drivers said may explain the failure: it is kept then.
            (Err(Error::BackendUnavailable { backend, reason }), said) if !said.is_empty() => {
                Err(Error::BackendUnavailable {
                    backend,
                    reason: format!("{reason} (the drivers said: {})", said.trim()),
                })
            }
            (Err(e), _) => Err(e),
        },
        #[cfg(not(feature = "wgpu"))]
        BackendKind::Wgpu => Err(Error::BackendUnavailable {
            backend: "wgpu".into(),
            reason: "this build has no wgpu backend (rebuild with the `wgpu` feature)".into(),
        }),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Box::new(cuda::CudaBackend::new()?)),
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda => Err(Error::BackendUnavailable {
            backend: "cuda".into(),
            reason: "this build has no CUDA backend (rebuild with the `cuda` feature)".into(),
        }),
    }
}

/// Runs `probe` with the process's stderr sent to a temporary file, and returns what was written
/// there: Vulkan and GL drivers print to fd 2 while adapters are listed (Mesa's
/// "XDG_RUNTIME_DIR is invalid or not set"), which a CPU-only user should not see.
#[cfg(feature = "wgpu")]
fn without_driver_noise<T>(probe: impl FnOnce() -> T) -> (T, String) {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let Ok(mut sink) = tempfile::tempfile() else {
        return (probe(), String::new());
    };
    // SAFETY: dup/dup2 on fd 2 and a file this function owns; fd 2 is restored before return.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 || unsafe { libc::dup2(sink.as_raw_fd(), 2) } < 0 {
        if saved >= 0 {
            unsafe { libc::close(saved) };
        }
        return (probe(), String::new());
    }
    let out = probe();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let mut said = String::new();
    let _ = sink.rewind();
    let _ = sink.take(4096).read_to_string(&mut said);
    (out, said)
}

/// Fit, then KS at the fitted parameters, then baselines: [`Backend::segment_stats`] unfused.
pub(crate) fn stats_in_turn<B: Backend + ?Sized>(
    b: &mut B,
    segs: &[Segment],
) -> Result<Vec<SegmentStats>> {
    let fits = b.fit(segs)?;
    let params: Vec<AldParams> = fits.iter().map(|f| f.params).collect();
    let ks = b.ks(segs, &params)?;
    let baselines = b.baselines(segs)?;
    Ok(fits
        .into_iter()
        .zip(ks)
        .zip(baselines)
        .map(|((fit, ks), baselines)| SegmentStats { fit, ks, baselines })
        .collect())
}

/// The segments each study line is fitted to (docs/DESIGN.md 2.4): per whole row of `cols`, the
/// positive suffix `pos_start..cols` and the negative prefix `0..neg_end`.
pub fn sides(cols: usize, neg_end: &[u32], pos_start: &[u32]) -> (Vec<Segment>, Vec<Segment>) {
    let pos = pos_start
        .iter()
        .enumerate()
        .map(|(r, &p)| Segment::new(r, p as usize, cols))
        .collect();
    let neg = neg_end
        .iter()
        .enumerate()
        .map(|(r, &e)| Segment::new(r, 0, e as usize))
        .collect();
    (pos, neg)
}

/// Checks that `rows` holds one row of `cols` values per parameter set.
pub(crate) fn check_rows(rows: &[f32], cols: usize, count: usize) -> Result<()> {
    if cols == 0 || rows.len() != cols * count {
        return Err(Error::Invalid(format!(
            "{} values are not {count} rows of {cols}",
            rows.len()
        )));
    }
    Ok(())
}

/// Checks that every segment lies inside a resident chunk of `rows` × `cols`.
pub(crate) fn check_segments(segs: &[Segment], rows: usize, cols: usize) -> Result<()> {
    match segs
        .iter()
        .find(|s| s.row as usize >= rows || s.lo > s.hi || s.hi as usize > cols)
    {
        Some(s) => Err(Error::Invalid(format!(
            "segment {s:?} is outside the resident chunk of {rows} rows × {cols} values"
        ))),
        None => Ok(()),
    }
}

/// Whether every value of `row` is finite: a test that vectorises (no early exit, which would
/// make it one value at a time), for the read pass over every weight.
pub(crate) fn all_finite(row: &[f32]) -> bool {
    row.chunks(64)
        .all(|c| c.iter().fold(true, |all, x| all & x.is_finite()))
}

/// `buf` made `n` long for contents about to be overwritten: a buffer already that long (the
/// chunk after the first) is not filled again.
pub(crate) fn sized(buf: &mut Vec<f32>, n: usize) {
    if buf.len() != n {
        buf.clear();
        buf.resize(n, 0.0);
    }
}

/// Checks that `len` values make whole rows of `cols`.
pub(crate) fn check_whole_rows(len: usize, cols: usize) -> Result<()> {
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(Error::Invalid(format!(
            "{len} values are not whole rows of {cols}"
        )));
    }
    Ok(())
}

/// The error of a primitive that needs uploaded rows when none are.
pub(crate) fn nothing_uploaded() -> Error {
    Error::Invalid("nothing is uploaded: call upload first".into())
}

/// The error of a primitive that needs a resident (sorted) chunk when none is.
pub(crate) fn no_chunk() -> Error {
    Error::Invalid("no chunk is loaded: call load_sorted first".into())
}

/// Checks the inputs of [`Backend::loglik_diff`]: one ALD and one Gaussian per segment.
pub(crate) fn check_loglik_inputs(
    segs: &[Segment],
    ald: &[AldParams],
    gauss: &[(f64, f64)],
) -> Result<()> {
    check_lengths("loglik_diff", segs.len(), ald.len())?;
    check_lengths("loglik_diff", segs.len(), gauss.len())
}

/// Checks that per-segment inputs line up before a backend indexes with them.
pub(crate) fn check_lengths(what: &str, segs: usize, other: usize) -> Result<()> {
    if segs != other {
        return Err(Error::Invalid(format!(
            "{what}: {segs} segments but {other} per-segment inputs"
        )));
    }
    Ok(())
}
