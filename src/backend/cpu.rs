//! The CPU backend: rows sorted by a vectorised quicksort (or a radix sort, see `sort`), every
//! segment statistic straight from the f64 reference in `ald.rs`, segments in parallel on a
//! rayon pool.

use rayon::prelude::*;

use super::{
    check_lengths, check_rows, check_segments, check_whole_rows, Backend, BackendInfo, Benchmarked,
    ReplicateRow, RowSummary, Segment, SegmentStats, Side, SortedSegment,
};
use crate::ald::{self, AldFit, AldParams, Baselines, LogLikDiff, NllGrad, StudyLine};
use crate::error::Result;
use crate::philox;
use crate::sort;

/// About 16 MiB of f32 per chunk: enough rows to keep every core busy, and little enough memory
/// that a chunk next to the memory-mapped head does not show in the peak.
const CHUNK_VALUES: usize = 4 << 20;

#[derive(Default)]
pub struct CpuBackend {
    values: Vec<f32>,
    indices: Vec<u32>,
    cols: usize,
    rows: usize,
    /// The uploaded rows, unsorted, and their width.
    uploaded: Vec<f32>,
    uploaded_cols: usize,
}

impl CpuBackend {
    /// Runs on rayon's global pool, which the CLI sizes with `--threads`.
    pub fn new() -> Self {
        Self::default()
    }

    fn slice(&self, s: &Segment) -> &[f32] {
        let base = s.row as usize * self.cols;
        &self.values[base + s.lo as usize..base + s.hi as usize]
    }

    fn check(&self, segs: &[Segment]) -> Result<()> {
        check_segments(segs, self.rows, self.cols)
    }

    /// Runs `f` on every segment's sorted values, in parallel.
    fn map_segments<T: Send>(
        &self,
        segs: &[Segment],
        f: impl Fn(usize, &[f32]) -> T + Sync + Send,
    ) -> Result<Vec<T>> {
        self.check(segs)?;
        Ok(segs
            .par_iter()
            .enumerate()
            .with_min_len(4)
            .map(|(i, s)| f(i, self.slice(s)))
            .collect())
    }

    /// Makes `rows` the resident chunk (unsorted yet), handing the previous buffer back in it.
    fn take_chunk(&mut self, rows: &mut Vec<f32>, cols: usize) -> Result<()> {
        check_whole_rows(rows.len(), cols)?;
        self.cols = cols;
        self.rows = rows.len() / cols;
        std::mem::swap(&mut self.values, rows);
        self.indices.clear();
        Ok(())
    }

    fn cpu_name() -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "cpu".into(),
            software: false,
            // The sort's path is named: it sets the CPU's speed (see `sort.rs`).
            device: format!(
                "{} ({}, {} sort)",
                Self::cpu_name(),
                match rayon::current_num_threads() {
                    1 => "1 thread".to_owned(),
                    t => format!("{t} threads"),
                },
                match sort::path() {
                    sort::Path::Avx512 => "AVX-512",
                    sort::Path::Avx2 => "AVX2",
                    sort::Path::Radsort => "radsort",
                }
            ),
            limits: self.limits(),
        }
    }

    fn limits(&self) -> super::Limits {
        super::Limits {
            chunk_values: Some(CHUNK_VALUES),
            ..Default::default()
        }
    }

    fn max_chunk_rows(&self, cols: usize) -> usize {
        (CHUNK_VALUES / cols.max(1)).max(1)
    }

    fn upload(&mut self, rows: &[f32], cols: usize) -> Result<()> {
        check_whole_rows(rows.len(), cols)?;
        self.uploaded.clear();
        self.uploaded.extend_from_slice(rows);
        self.uploaded_cols = cols;
        Ok(())
    }

    fn sort_uploaded(&mut self, with_indices: bool) -> Result<()> {
        if self.uploaded_cols == 0 {
            return Err(super::nothing_uploaded());
        }
        let cols = self.uploaded_cols;
        if with_indices {
            let mut owned = std::mem::take(&mut self.values);
            owned.clear();
            owned.extend_from_slice(&self.uploaded);
            return self.load_sorted_owned(&mut owned, cols, true);
        }
        // Sorted from the uploaded rows straight into the resident buffer: the sort reads its
        // source once anyway, so no copy comes first. The buffer's old contents are overwritten.
        let mut values = std::mem::take(&mut self.values);
        super::sized(&mut values, self.uploaded.len());
        values
            .par_chunks_mut(cols)
            .zip(self.uploaded.par_chunks(cols))
            .for_each(|(dst, src)| sort::sort_row_into_ahead(src, dst));
        self.take_chunk(&mut values, cols)
    }

    /// Takes the caller's buffer instead of copying it: the chunk is sorted where it was read.
    fn load_sorted_owned(
        &mut self,
        rows: &mut Vec<f32>,
        cols: usize,
        with_indices: bool,
    ) -> Result<()> {
        self.take_chunk(rows, cols)?;
        let (values, indices) = (&mut self.values, &mut self.indices);
        if with_indices {
            indices.resize(values.len(), 0);
            values
                .par_chunks_mut(cols)
                .zip(indices.par_chunks_mut(cols))
                .for_each_init(Vec::new, |pairs: &mut Vec<(f32, u32)>, (v, ix)| {
                    pairs.clear();
                    pairs.extend(v.iter().enumerate().map(|(i, &x)| (x, i as u32)));
                    radsort::sort_by_key(pairs, |p| p.0);
                    for ((dv, di), &(x, i)) in v.iter_mut().zip(ix.iter_mut()).zip(pairs.iter()) {
                        *dv = x;
                        *di = i;
                    }
                });
        } else {
            values.par_chunks_mut(cols).for_each(sort::sort_row_ahead);
        }
        Ok(())
    }

    fn partition_points(
        &mut self,
        segs: &[Segment],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>> {
        check_lengths("partition_points", segs.len(), pivots.len())?;
        self.map_segments(segs, |i, xs| {
            segs[i].lo + ald::partition_point_sorted(xs, pivots[i], strict) as u32
        })
    }

    fn fit(&mut self, segs: &[Segment]) -> Result<Vec<AldFit>> {
        self.map_segments(segs, |_, xs| ald::fit_sorted(xs))
    }

    fn ks(&mut self, segs: &[Segment], params: &[AldParams]) -> Result<Vec<f64>> {
        check_lengths("ks", segs.len(), params.len())?;
        self.map_segments(segs, |i, xs| ald::ks_sorted(xs, &params[i]))
    }

    fn baselines(&mut self, segs: &[Segment]) -> Result<Vec<Baselines>> {
        self.map_segments(segs, |_, xs| ald::baselines_sorted(xs))
    }

    fn study_line(&mut self, segs: &[Segment], side: Side) -> Result<Vec<StudyLine>> {
        self.map_segments(segs, |_, xs| match side {
            Side::Positive => ald::study_line_positive_sorted(xs),
            Side::Negative => ald::study_line_negative_sorted(xs),
        })
    }

    /// Fused: each segment is read once from memory and stays in cache for all three statistics.
    fn segment_stats(&mut self, segs: &[Segment]) -> Result<Vec<SegmentStats>> {
        self.map_segments(segs, |_, xs| {
            let (fit, baselines) = ald::fit_and_baselines_sorted(xs);
            SegmentStats {
                ks: ald::ks_sorted(xs, &fit.params),
                baselines,
                fit,
            }
        })
    }

    /// Fused: each row is sorted, fitted and given its study lines by one thread while it is in
    /// that core's cache, instead of one pass over the whole chunk per primitive.
    fn summarise_rows(&mut self, rows: &mut Vec<f32>, cols: usize) -> Result<Vec<RowSummary>> {
        self.take_chunk(rows, cols)?;
        Ok(self
            .values
            .par_chunks_mut(cols)
            .map(|row| {
                sort::sort_row_ahead(row);
                summarise_sorted_row(row)
            })
            .collect())
    }

    /// Fused with the read pass: each row is sorted from the mapped file into the chunk and
    /// summarised in one go; a non-finite value sorts to an end of the row (the total order puts
    /// NaN and ±inf past every finite value), so the check costs two reads.
    fn summarise_rows_from(
        &mut self,
        src: &[f32],
        rows: &mut Vec<f32>,
        cols: usize,
    ) -> Result<(Vec<RowSummary>, Vec<usize>)> {
        check_whole_rows(src.len(), cols)?;
        super::sized(rows, src.len());
        self.take_chunk(rows, cols)?;
        let done: Vec<(RowSummary, bool)> = self
            .values
            .par_chunks_mut(cols)
            .zip(src.par_chunks(cols))
            .map(|(row, from)| {
                sort::sort_row_into_ahead(from, row);
                let finite = row.first().is_none_or(|x| x.is_finite())
                    && row.last().is_none_or(|x| x.is_finite());
                if !finite {
                    row.fill(0.0);
                }
                (summarise_sorted_row(row), !finite)
            })
            .collect();
        let bad = done
            .iter()
            .enumerate()
            .filter(|(_, d)| d.1)
            .map(|(r, _)| r)
            .collect();
        Ok((done.into_iter().map(|d| d.0).collect(), bad))
    }

    fn summarise_resident(&mut self, count: usize, cols: usize) -> Result<Vec<RowSummary>> {
        if count > 0 {
            check_segments(&[Segment::new(count - 1, 0, cols)], self.rows, self.cols)?;
        }
        Ok(self.values[..count * cols]
            .par_chunks(cols)
            .map(summarise_sorted_row)
            .collect())
    }

    fn generate(&mut self, rows: &[ReplicateRow], cols: usize, seed: u64) -> Result<()> {
        check_whole_rows(cols, cols)?;
        let key = philox::key_of(seed);
        self.uploaded.resize(rows.len() * cols, 0.0);
        self.uploaded
            .par_chunks_mut(cols)
            .zip(rows.par_iter())
            .for_each(|(out, r)| philox::fill_row(r, key, out));
        self.uploaded_cols = cols;
        Ok(())
    }

    /// Fused: each replicate row is generated, sorted and summarised by one thread in its cache;
    /// the rows are never stored together.
    fn summarise_generated(
        &mut self,
        rows: &[ReplicateRow],
        cols: usize,
        seed: u64,
    ) -> Result<Vec<RowSummary>> {
        check_whole_rows(cols, cols)?;
        let key = philox::key_of(seed);
        Ok(rows
            .par_iter()
            .map_init(
                || vec![0f32; cols],
                |row, r| {
                    philox::fill_row(r, key, row);
                    sort::sort_row(row);
                    summarise_sorted_row(row)
                },
            )
            .collect())
    }

    fn philox(&mut self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>> {
        Ok(counters
            .par_iter()
            .map(|&c| philox::philox4x32_10(c, key))
            .collect())
    }

    fn loglik_diff(
        &mut self,
        segs: &[Segment],
        ald: &[AldParams],
        gauss: &[(f64, f64)],
    ) -> Result<Vec<LogLikDiff>> {
        super::check_loglik_inputs(segs, ald, gauss)?;
        self.map_segments(segs, |i, xs| {
            ald::loglik_diff(xs, &ald[i], gauss[i].0, gauss[i].1)
        })
    }

    fn read_sorted(&mut self, segs: &[Segment]) -> Result<Vec<SortedSegment>> {
        self.check(segs)?;
        Ok(segs
            .iter()
            .map(|s| {
                let base = s.row as usize * self.cols;
                let range = base + s.lo as usize..base + s.hi as usize;
                SortedSegment {
                    values: self.values[range.clone()].to_vec(),
                    indices: self
                        .indices
                        .get(range)
                        .map(<[u32]>::to_vec)
                        .unwrap_or_default(),
                }
            })
            .collect())
    }

    fn nll_grad(
        &mut self,
        rows: &[f32],
        cols: usize,
        params: &[AldParams],
    ) -> Result<Vec<NllGrad>> {
        check_rows(rows, cols, params.len())?;
        Ok(rows
            .par_chunks(cols)
            .zip(params.par_iter())
            .map(|(xs, p)| ald::nll_grad(xs, p))
            .collect())
    }
}

impl Benchmarked for CpuBackend {
    fn nll_grad_uploaded(&mut self, params: &[AldParams]) -> Result<Vec<NllGrad>> {
        let rows = std::mem::take(&mut self.uploaded);
        let result = self.nll_grad(&rows, self.uploaded_cols, params);
        self.uploaded = rows;
        result
    }

    fn copy_bandwidth(&mut self, bytes: usize) -> Result<f64> {
        // Every core copies its share, as every core reads its rows in the analysis.
        let src = vec![1u8; bytes.max(1 << 20)];
        let mut dst = vec![0u8; src.len()];
        let part = src.len().div_ceil(rayon::current_num_threads().max(1) * 4);
        let t = super::best_time(5, || {
            dst.par_chunks_mut(part)
                .zip(src.par_chunks(part))
                .for_each(|(d, s)| d.copy_from_slice(s));
            Ok(())
        })?;
        std::hint::black_box(&dst);
        Ok(2.0 * src.len() as f64 / t)
    }
}

/// Every statistic of one sorted row (what [`Backend::summarise_resident`] composes from the
/// primitives), straight from the reference.
fn summarise_sorted_row(row: &[f32]) -> RowSummary {
    let neg_end = ald::partition_point_sorted(row, 0.0, false);
    let pos_start = ald::partition_point_sorted(row, 0.0, true);
    let (fit, baselines) = ald::fit_and_baselines_sorted(row);
    RowSummary {
        stats: SegmentStats {
            ks: ald::ks_sorted(row, &fit.params),
            baselines,
            fit,
        },
        neg_end: neg_end as u32,
        pos_start: pos_start as u32,
        line_pos: ald::study_line_positive_sorted(&row[pos_start..]),
        line_neg: ald::study_line_negative_sorted(&row[..neg_end]),
        loglik_diff: ald::loglik_diff(row, &fit.params, baselines.mean, baselines.std()),
    }
}
