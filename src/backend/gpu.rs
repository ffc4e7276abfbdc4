//! The GPU host layer, written once for every GPU backend: what is resident on the device, the
//! checks before a kernel reads it, the packing of per-segment parameters, chunking, and the
//! host's f64 finish. A GPU backend implements [`Device`]: compiling its kernels, launching them
//! and reading their typed outputs (`abi`) back; [`GpuBackend`] turns any `Device` into a
//! [`Backend`].
//!
//! Everything here is exercised by the wgpu tests on any Vulkan adapter (lavapipe in CI), so
//! the CUDA backend's host logic is tested wherever wgpu is, GPU or not.

use super::{
    abi, check_lengths, check_loglik_inputs, check_rows, check_segments, check_whole_rows,
    no_chunk, nothing_uploaded, Backend, BackendInfo, Benchmarked, Limits, ReplicateRow, Segment,
    SegmentStats, Side, SortedSegment,
};
use crate::ald::{AldFit, AldParams, Baselines, LogLikDiff, NllGrad, StudyLine, TailSums};
use crate::error::{Error, Result};
use crate::philox;

/// Rows held on a device in buffers of the device's own type, with their shape.
pub struct Held<B> {
    pub buf: B,
    pub rows: usize,
    pub cols: usize,
}

/// A GPU: its kernels, launched on buffers it owns. Every method receives inputs the host layer
/// has checked: segments lie inside the chunk, per-segment inputs line up, nothing is empty
/// where the method says so.
pub trait Device {
    /// Unsorted rows on the device.
    type Rows;
    /// A sorted chunk on the device: values and, where asked for, each value's feature index.
    type Sorted;

    /// The backend's name and device, for `fit`'s report and `run.json`.
    fn info(&self, limits: Limits) -> BackendInfo;

    fn limits(&self) -> Limits;

    /// Rows of `cols` values one resident chunk may hold.
    fn max_chunk_rows(&self, cols: usize) -> usize;

    /// Rows of `cols` values that one NLL launch reads from host memory.
    fn nll_rows_per_launch(&self, cols: usize) -> usize;

    /// The largest |value| a row may have, at least and at most, for the kernels to be right;
    /// `None` where every finite f32 row is (f64 accumulation, no flush to zero).
    fn row_scales(&self) -> Option<(f32, f32)> {
        None
    }

    /// `rows` (whole rows of `cols`, possibly none) on the device.
    fn upload(&self, rows: &[f32], cols: usize) -> Result<Self::Rows>;

    /// The uploaded rows sorted into a new chunk; the upload stays as it was.
    fn sort(&self, rows: &Held<Self::Rows>, with_indices: bool) -> Result<Self::Sorted>;

    /// `rows` uploaded and sorted, keeping no unsorted copy where the device can avoid one.
    fn upload_sorted(&self, rows: &[f32], cols: usize, with_indices: bool) -> Result<Self::Sorted> {
        let held = Held {
            buf: self.upload(rows, cols)?,
            rows: rows.len() / cols,
            cols,
        };
        self.sort(&held, with_indices)
    }

    /// Replicate rows drawn on the device (docs/DESIGN.md 2.6): `reps.len()` rows of `cols`.
    fn generate(&self, reps: &[abi::Replicate], cols: usize, key: [u32; 2]) -> Result<Self::Rows>;

    /// Raw Philox4x32-10 blocks (non-empty `counters`).
    fn philox(&self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>>;

    /// Per segment, the first offset `>= pivot` (`> pivot` with `strict`).
    fn partition(
        &self,
        chunk: &Held<Self::Sorted>,
        segs: &[abi::Seg],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>>;

    fn fit(&self, chunk: &Held<Self::Sorted>, segs: &[abi::Seg]) -> Result<Vec<AldFit>>;

    fn baselines(&self, chunk: &Held<Self::Sorted>, segs: &[abi::Seg]) -> Result<Vec<Baselines>>;

    /// Fit, KS at the fitted law and baselines in one launch, where the device has that kernel;
    /// `None` composes them from [`fit`](Self::fit), [`ks`](Self::ks) and
    /// [`baselines`](Self::baselines).
    fn fused_stats(
        &self,
        _chunk: &Held<Self::Sorted>,
        _segs: &[abi::Seg],
    ) -> Option<Result<Vec<SegmentStats>>> {
        None
    }

    /// KS distance of each segment to its law (unmasked: the host masks missing fits).
    fn ks(
        &self,
        chunk: &Held<Self::Sorted>,
        segs: &[abi::Seg],
        laws: &[abi::KsLaw],
    ) -> Result<Vec<f64>>;

    fn study_line(
        &self,
        chunk: &Held<Self::Sorted>,
        segs: &[abi::Seg],
        side: Side,
    ) -> Result<Vec<StudyLine>>;

    /// Σv, Σv² per segment (unmasked: the host finishes and masks).
    fn loglik(
        &self,
        chunk: &Held<Self::Sorted>,
        segs: &[abi::Seg],
        laws: &[abi::LoglikLaw],
    ) -> Result<Vec<abi::LoglikSums>>;

    /// Tail sums of each row of `rows` about its location (one location per row).
    fn tail_sums(&self, rows: &Self::Rows, cols: usize, locs: &[f64]) -> Result<Vec<TailSums>>;

    /// Segments of the chunk read back: values (when `values`) and indices (when kept).
    fn read(
        &self,
        chunk: &Held<Self::Sorted>,
        segs: &[Segment],
        values: bool,
    ) -> Result<Vec<SortedSegment>>;

    fn synchronize(&self) -> Result<()>;

    fn copy_bandwidth(&self, bytes: usize) -> Result<f64>;
}

/// Any [`Device`] as a [`Backend`]: the state, checks, packing and chunking of every GPU.
pub struct GpuBackend<D: Device> {
    device: D,
    /// The uploaded (unsorted) rows and the resident sorted chunk. A field is set to `None`
    /// before its replacement is allocated, so that old and new never coexist on the device.
    uploaded: Option<Held<D::Rows>>,
    resident: Option<Held<D::Sorted>>,
}

impl<D: Device> GpuBackend<D> {
    pub fn with_device(device: D) -> Self {
        GpuBackend {
            device,
            uploaded: None,
            resident: None,
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The uploaded rows, or the error that says to upload first.
    fn uploaded(&self) -> Result<&Held<D::Rows>> {
        self.uploaded.as_ref().ok_or_else(nothing_uploaded)
    }

    /// The resident chunk, once every segment is checked to lie inside it.
    fn resident(&self, segs: &[Segment]) -> Result<&Held<D::Sorted>> {
        let r = self.resident.as_ref().ok_or_else(no_chunk)?;
        check_segments(segs, r.rows, r.cols)?;
        Ok(r)
    }

    /// Runs `launch` on the resident chunk and the segments as the kernels read them, once the
    /// segments are checked; no launch for no segments (an empty binding is invalid).
    fn on_segments<T>(
        &self,
        segs: &[Segment],
        launch: impl FnOnce(&D, &Held<D::Sorted>, &[abi::Seg]) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let r = self.resident(segs)?;
        if segs.is_empty() {
            return Ok(Vec::new());
        }
        let words: Vec<abi::Seg> = segs.iter().map(abi::Seg::from).collect();
        launch(&self.device, r, &words)
    }

    /// NLL and gradient of rows on the device, one location per row, finished on the host.
    fn nll_grad_of(&self, rows: &D::Rows, cols: usize, ps: &[AldParams]) -> Result<Vec<NllGrad>> {
        let locs: Vec<f64> = ps.iter().map(|p| p.loc).collect();
        let sums = self.device.tail_sums(rows, cols, &locs)?;
        Ok(sums
            .iter()
            .zip(ps)
            .map(|(s, p)| NllGrad::from_sums(s, p))
            .collect())
    }
}

impl<D: Device> GpuBackend<D> {
    /// Refuses the first row whose scale the device cannot compute on (see
    /// [`Device::row_scales`]), rather than return its numbers wrong. All-zero rows are fine.
    fn check_scales(&self, rows: &[f32], cols: usize) -> Result<()> {
        use rayon::prelude::*;
        let Some((lo, hi)) = self.device.row_scales() else {
            return Ok(());
        };
        let bad = rows.par_chunks(cols.max(1)).position_first(|row| {
            let m = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            m != 0.0 && !(lo..=hi).contains(&m)
        });
        match bad {
            None => Ok(()),
            Some(row) => Err(Error::Magnitude {
                backend: self.info().name,
                row,
                max_abs: rows[row * cols..(row + 1) * cols]
                    .iter()
                    .fold(0f32, |m, x| m.max(x.abs())),
                lo,
                hi,
            }),
        }
    }
}

/// Checks a row width the kernels index with u32 offsets (two buffers' worth of one row).
fn check_cols(cols: usize) -> Result<()> {
    if cols > u32::MAX as usize / 2 {
        return Err(Error::Invalid(format!("{cols} values per row is too many")));
    }
    Ok(())
}

impl<D: Device> Backend for GpuBackend<D> {
    fn info(&self) -> BackendInfo {
        self.device.info(self.device.limits())
    }

    fn limits(&self) -> Limits {
        self.device.limits()
    }

    fn max_chunk_rows(&self, cols: usize) -> usize {
        self.device.max_chunk_rows(cols)
    }

    fn upload(&mut self, rows: &[f32], cols: usize) -> Result<()> {
        check_whole_rows(rows.len(), cols)?;
        check_cols(cols)?;
        self.check_scales(rows, cols)?;
        self.uploaded = None;
        self.uploaded = Some(Held {
            buf: self.device.upload(rows, cols)?,
            rows: rows.len() / cols,
            cols,
        });
        Ok(())
    }

    fn sort_uploaded(&mut self, with_indices: bool) -> Result<()> {
        let up = self.uploaded.as_ref().ok_or_else(nothing_uploaded)?;
        self.resident = None;
        let buf = self.device.sort(up, with_indices)?;
        self.resident = Some(Held {
            buf,
            rows: up.rows,
            cols: up.cols,
        });
        Ok(())
    }

    /// Sorts as it uploads: the analysis keeps no unsorted copy.
    fn load_sorted(&mut self, rows: &[f32], cols: usize, with_indices: bool) -> Result<()> {
        check_whole_rows(rows.len(), cols)?;
        check_cols(cols)?;
        self.check_scales(rows, cols)?;
        self.uploaded = None;
        self.resident = None;
        self.resident = Some(Held {
            buf: self.device.upload_sorted(rows, cols, with_indices)?,
            rows: rows.len() / cols,
            cols,
        });
        Ok(())
    }

    fn partition_points(
        &mut self,
        segs: &[Segment],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>> {
        check_lengths("partition_points", segs.len(), pivots.len())?;
        self.on_segments(segs, |d, r, s| d.partition(r, s, pivots, strict))
    }

    fn fit(&mut self, segs: &[Segment]) -> Result<Vec<AldFit>> {
        self.on_segments(segs, |d, r, s| d.fit(r, s))
    }

    fn ks(&mut self, segs: &[Segment], params: &[AldParams]) -> Result<Vec<f64>> {
        check_lengths("ks", segs.len(), params.len())?;
        let laws: Vec<abi::KsLaw> = params.iter().map(abi::KsLaw::of).collect();
        let d = self.on_segments(segs, |d, r, s| d.ks(r, s, &laws))?;
        Ok(ks_finish(d, params, segs))
    }

    fn baselines(&mut self, segs: &[Segment]) -> Result<Vec<Baselines>> {
        self.on_segments(segs, |d, r, s| d.baselines(r, s))
    }

    fn segment_stats(&mut self, segs: &[Segment]) -> Result<Vec<SegmentStats>> {
        let r = self.resident(segs)?;
        if segs.is_empty() {
            return Ok(Vec::new());
        }
        let words: Vec<abi::Seg> = segs.iter().map(abi::Seg::from).collect();
        if let Some(stats) = self.device.fused_stats(r, &words) {
            return stats;
        }
        super::stats_in_turn(self, segs)
    }

    fn study_line(&mut self, segs: &[Segment], side: Side) -> Result<Vec<StudyLine>> {
        self.on_segments(segs, |d, r, s| d.study_line(r, s, side))
    }

    fn read_sorted(&mut self, segs: &[Segment]) -> Result<Vec<SortedSegment>> {
        let r = self.resident(segs)?;
        self.device.read(r, segs, true)
    }

    fn read_indices(&mut self, segs: &[Segment]) -> Result<Vec<Vec<u32>>> {
        let r = self.resident(segs)?;
        Ok(self
            .device
            .read(r, segs, false)?
            .into_iter()
            .map(|s| s.indices)
            .collect())
    }

    fn nll_grad(
        &mut self,
        rows: &[f32],
        cols: usize,
        params: &[AldParams],
    ) -> Result<Vec<NllGrad>> {
        check_rows(rows, cols, params.len())?;
        check_cols(cols)?;
        self.check_scales(rows, cols)?;
        let per_launch = self.device.nll_rows_per_launch(cols).max(1);
        let mut result = Vec::with_capacity(params.len());
        for (chunk, ps) in rows
            .chunks(per_launch * cols)
            .zip(params.chunks(per_launch))
        {
            let buf = self.device.upload(chunk, cols)?;
            result.extend(self.nll_grad_of(&buf, cols, ps)?);
        }
        Ok(result)
    }

    fn generate(&mut self, rows: &[ReplicateRow], cols: usize, seed: u64) -> Result<()> {
        check_whole_rows(cols, cols)?;
        check_cols(cols)?;
        if rows.len().saturating_mul(cols.div_ceil(4)) > u32::MAX as usize {
            return Err(Error::Invalid(format!(
                "{} replicate rows of {cols} are more than one launch draws",
                rows.len()
            )));
        }
        self.uploaded = None;
        let reps: Vec<abi::Replicate> = rows.iter().map(abi::Replicate::from).collect();
        self.uploaded = Some(Held {
            buf: self.device.generate(&reps, cols, philox::key_of(seed))?,
            rows: rows.len(),
            cols,
        });
        Ok(())
    }

    fn philox(&mut self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        self.device.philox(key, counters)
    }

    fn loglik_diff(
        &mut self,
        segs: &[Segment],
        ald: &[AldParams],
        gauss: &[(f64, f64)],
    ) -> Result<Vec<LogLikDiff>> {
        check_loglik_inputs(segs, ald, gauss)?;
        let laws: Vec<abi::LoglikLaw> = ald
            .iter()
            .zip(gauss)
            .map(|(p, &g)| abi::LoglikLaw::of(p, g))
            .collect();
        let sums = self.on_segments(segs, |d, r, s| d.loglik(r, s, &laws))?;
        Ok(loglik_finish(segs, ald, gauss, |i| {
            (sums[i].sum_v, sums[i].sum_vv)
        }))
    }
}

impl<D: Device> Benchmarked for GpuBackend<D> {
    fn synchronize(&mut self) -> Result<()> {
        self.device.synchronize()
    }

    fn nll_grad_uploaded(&mut self, params: &[AldParams]) -> Result<Vec<NllGrad>> {
        let up = self.uploaded()?;
        check_lengths("nll_grad_uploaded", up.rows, params.len())?;
        if params.is_empty() {
            return Ok(Vec::new());
        }
        self.nll_grad_of(&up.buf, up.cols, params)
    }

    fn copy_bandwidth(&mut self, bytes: usize) -> Result<f64> {
        self.device.copy_bandwidth(bytes)
    }
}

/// A device's KS distances, NaN where the law or the segment was empty.
fn ks_finish(d: impl IntoIterator<Item = f64>, params: &[AldParams], segs: &[Segment]) -> Vec<f64> {
    d.into_iter()
        .zip(params.iter().zip(segs))
        .map(|(d, (p, s))| {
            if p.is_valid() && !s.is_empty() {
                d
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// The device's `Σv`, `Σv²` per segment (from `sums(i)`) as [`LogLikDiff`]s; NaN where a fit is
/// missing or the segment is empty.
fn loglik_finish(
    segs: &[Segment],
    ald: &[AldParams],
    gauss: &[(f64, f64)],
    sums: impl Fn(usize) -> (f64, f64),
) -> Vec<LogLikDiff> {
    (0..segs.len())
        .map(|i| {
            let (p, (m, sd)) = (&ald[i], gauss[i]);
            if segs[i].is_empty() || !p.is_valid() || sd.is_nan() || sd <= 0.0 || !m.is_finite() {
                return LogLikDiff::NAN;
            }
            let (sv, svv) = sums(i);
            LogLikDiff::from_variable_sums(segs[i].len(), LogLikDiff::constant(p, sd), sv, svv)
        })
        .collect()
}

/// Segments closer than this many values (64 KB of u32 or f32) come back in one copy: reading
/// the gap costs about what another copy's latency would.
pub const READ_GAP: usize = 16 * 1024;

/// Where a segment's values lie in the spans [`read_spans`] copies back: the span, and the
/// segment's first value's position in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanPlace {
    pub span: usize,
    pub at: usize,
}

/// The ranges of a chunk (flat offsets, `row · cols + lo`) to copy back so that every non-empty
/// segment lies inside one of them, and where each segment lies.
///
/// A split level reads back every segment of a chunk: 128k rows make 128k segments or more, and
/// one blocking copy each costs the copy's latency (microseconds) 128k times. Segments are joined
/// in offset order wherever the gap between them is at most `gap` values, so whole rows, and
/// the parts of rows a level keeps, come back in one copy; a gap wider than that (a few dozen
/// KB, which a copy would read in about its own latency) starts a new span, so a sparse read
/// never reads the whole chunk.
pub fn read_spans(
    segs: &[Segment],
    cols: usize,
    gap: usize,
) -> (Vec<std::ops::Range<usize>>, Vec<SpanPlace>) {
    let start = |s: &Segment| s.row as usize * cols + s.lo as usize;
    let mut order: Vec<usize> = (0..segs.len()).filter(|&i| !segs[i].is_empty()).collect();
    order.sort_by_key(|&i| start(&segs[i]));
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let mut places = vec![SpanPlace { span: 0, at: 0 }; segs.len()];
    for i in order {
        let (lo, hi) = (start(&segs[i]), start(&segs[i]) + segs[i].len());
        match spans.last_mut() {
            Some(last) if lo <= last.end + gap => last.end = last.end.max(hi),
            _ => spans.push(lo..hi),
        }
        let span = spans.len() - 1;
        places[i] = SpanPlace {
            span,
            at: lo - spans[span].start,
        };
    }
    (spans, places)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every segment's values, read through the planned spans of a chunk whose value at each
    /// flat offset is that offset, must be exactly its own range.
    fn check(segs: &[Segment], cols: usize, gap: usize) -> usize {
        let (spans, places) = read_spans(segs, cols, gap);
        for w in spans.windows(2) {
            assert!(
                w[0].end + gap < w[1].start,
                "spans {w:?} should have been joined"
            );
        }
        for (s, p) in segs.iter().zip(&places) {
            if s.is_empty() {
                continue;
            }
            let span: Vec<usize> = spans[p.span].clone().collect();
            let got = &span[p.at..p.at + s.len()];
            let lo = s.row as usize * cols + s.lo as usize;
            assert_eq!(got, (lo..lo + s.len()).collect::<Vec<_>>(), "segment {s:?}");
        }
        spans.len()
    }

    #[test]
    fn whole_rows_come_back_in_one_span() {
        let segs: Vec<Segment> = (0..1000).map(|r| Segment::new(r, 0, 64)).collect();
        assert_eq!(check(&segs, 64, 16), 1);
        let (spans, _) = read_spans(&segs, 64, 16);
        assert_eq!(spans, vec![0..64_000]);
    }

    #[test]
    fn split_levels_out_of_order_and_overlapping_segments_are_placed() {
        // The parts a split level keeps: two per row, in reverse row order, one empty, one
        // repeated and one inside another.
        let mut segs = Vec::new();
        for r in (0..50).rev() {
            segs.push(Segment::new(r, 0, 10 + r % 7));
            segs.push(Segment::new(r, 20 + r % 5, 40));
        }
        segs.push(Segment::new(3, 5, 5));
        segs.push(Segment::new(7, 0, 12));
        segs.push(Segment::new(7, 2, 4));
        assert_eq!(check(&segs, 40, 16), 1);
    }

    #[test]
    fn wide_gaps_start_new_spans() {
        let segs = [
            Segment::new(0, 0, 8),
            Segment::new(100, 0, 8),
            Segment::new(100, 10, 12),
        ];
        // Row 100 starts 100 · 1000 values after row 0: far beyond the gap.
        assert_eq!(check(&segs, 1000, 4096), 2);
        assert_eq!(check(&segs, 1000, 0), 3);
        assert_eq!(check(&[], 1000, 0), 0);
    }
}
