//! The per-class analysis, written once over the [`Backend`] primitives.
//!
//! Rows go to the backend a chunk at a time: read (and convert) on the host, then one
//! [`Backend::summarise_rows`] per chunk, which loads and sorts the chunk once and computes every
//! statistic on segments of the sorted rows; only per-row results come back. Peak memory is the
//! chunk buffers plus the per-class results; the pooled joint fit, when it runs, adds 2 bytes per
//! nonzero weight (each row is bucketed as it is read, while it is in cache: see
//! `ald::JointPools`).

use std::time::Instant;

use rayon::prelude::*;

use crate::ald::{self, LogLikDiff, Model, StudyLine};
use crate::backend::{Backend, BackendInfo, SegmentStats};
use crate::error::{Error, Result};
use crate::head::Head;

#[derive(Clone, Debug)]
pub struct Options {
    /// Flag rows holding NaN/inf and skip them, instead of failing on the first.
    pub skip_nonfinite: bool,
    /// Compute the study's joint fit over all weights (one global sort of the weights).
    pub pooled: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            skip_nonfinite: false,
            pooled: true,
        }
    }
}

/// Everything reported for one class (one row of `classes.csv`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassResult {
    pub n: usize,
    pub zeros: usize,
    /// The row held NaN or inf and was skipped (`--skip-nonfinite`); its statistics are NaN.
    pub nonfinite: bool,
    pub stats: SegmentStats,
    pub line_pos: StudyLine,
    pub line_neg: StudyLine,
    /// Σd, Σd² of `ℓ_ALD − ℓ_N` at the fitted parameters (Vuong's test).
    pub loglik_diff: LogLikDiff,
}

impl ClassResult {
    /// From a backend's summary of the class's whole row.
    pub fn of_row(n: usize, row: &crate::backend::RowSummary) -> Self {
        ClassResult {
            n,
            zeros: (row.pos_start - row.neg_end) as usize,
            nonfinite: false,
            stats: row.stats,
            line_pos: row.line_pos,
            line_neg: row.line_neg,
            loglik_diff: row.loglik_diff,
        }
    }

    /// The likelihood ratio against the nested Laplace and its asymptotic χ²(1) p-value.
    pub fn lrt_laplace(&self) -> (f64, f64) {
        ald::lrt_laplace(self.stats.baselines.nll_laplace, self.stats.fit.nll)
    }

    /// Vuong's Z of ALD against Gaussian and its one-sided p-value.
    pub fn vuong_gauss(&self) -> (f64, f64) {
        self.loglik_diff.vuong()
    }

    /// `T = NLL_N − NLL_ALD`: how much better the ALD fits than the Gaussian (the bootstrap's
    /// statistic against the Gaussian).
    pub fn gauss_minus_ald(&self) -> f64 {
        self.stats.baselines.nll_gauss - self.stats.fit.nll
    }

    pub fn aic_best(&self) -> Option<Model> {
        let s = &self.stats;
        ald::aic_best(s.fit.nll, s.baselines.nll_gauss, s.baselines.nll_laplace)
    }

    fn skipped(n: usize, zeros: usize) -> Self {
        ClassResult {
            n,
            zeros,
            nonfinite: true,
            stats: SegmentStats {
                fit: ald::AldFit {
                    degenerate: false,
                    ..ald::AldFit::DEGENERATE
                },
                ks: f64::NAN,
                baselines: ald::Baselines::NAN,
            },
            line_pos: StudyLine::nan(0),
            line_neg: StudyLine::nan(0),
            loglik_diff: LogLikDiff::NAN,
        }
    }
}

/// Wall time of each stage, in the order they first ran.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings(pub Vec<(String, f64)>);

impl Timings {
    pub fn add(&mut self, stage: &str, since: Instant) {
        self.add_seconds(stage, since.elapsed().as_secs_f64());
    }

    pub fn add_seconds(&mut self, stage: &str, s: f64) {
        match self.0.iter_mut().find(|(n, _)| n == stage) {
            Some((_, t)) => *t += s,
            None => self.0.push((stage.to_owned(), s)),
        }
    }

    pub fn total(&self) -> f64 {
        self.0.iter().map(|(_, t)| t).sum()
    }
}

#[derive(Clone, Debug)]
pub struct Analysis {
    pub classes: Vec<ClassResult>,
    /// The study's joint fit: (positive weights pooled, negative weights pooled).
    pub pooled: Option<(StudyLine, StudyLine)>,
    pub backend: BackendInfo,
    pub chunks: usize,
    pub timings: Timings,
    /// The parametric bootstrap's p- and q-values, when it ran.
    pub bootstrap: Option<crate::bootstrap::Bootstrap>,
    /// The verdict built from it, or why there is none.
    pub verdict: std::result::Result<crate::verdict::Verdict, String>,
    /// With `--classes`: the tensor's class of each result (results are by row).
    pub ids: Option<std::sync::Arc<Vec<usize>>>,
}

impl Analysis {
    /// The tensor's class of result `k`.
    pub fn class_id(&self, k: usize) -> usize {
        self.ids.as_ref().map_or(k, |ids| ids[k])
    }
}

/// Analyses every class of `head`. `progress` is told how many rows are done after each chunk.
pub fn analyse(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &Options,
    progress: &mut dyn FnMut(usize),
) -> Result<Analysis> {
    let (classes, cols) = (head.classes, head.features);
    if cols > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "{cols} features per class is more than aldfit handles"
        )));
    }
    let chunk_rows = chunk_rows(backend, classes, cols);
    // The chunk buffer; a host backend may swap it for its previous one at each load.
    let mut buf: Vec<f32> = reserve(chunk_rows.saturating_mul(cols), "a chunk of rows")?;
    let mut results = reserve(classes, "the per-class results")?;
    let mut timings = Timings::default();
    let pools = opts.pooled.then(ald::JointPools::default);
    let mut chunks = 0;

    let mut first = 0;
    while first < classes {
        let count = chunk_rows.min(classes - first);
        buf.resize(count * cols, 0.0);

        let chunk = Chunk { first, count };
        let (rows, skipped) = summarise_chunk(
            head,
            labels,
            backend,
            opts,
            pools.as_ref(),
            chunk,
            &mut buf,
            &mut timings,
        )?;
        for row in rows {
            results.push(ClassResult::of_row(cols, &row));
        }

        for (r, zeros) in skipped {
            results[first + r] = ClassResult::skipped(cols, zeros);
        }
        first += count;
        chunks += 1;
        progress(first);
    }

    let pooled = pools.map(|pools| {
        let t = Instant::now();
        let lines = pools.lines();
        timings.add("pooled", t);
        lines
    });

    Ok(Analysis {
        classes: results,
        pooled,
        backend: backend.info(),
        chunks,
        timings,
        bootstrap: None,
        verdict: Err("the bootstrap did not run".into()),
        ids: head.ids().cloned(),
    })
}

/// A chunk's rows that held NaN or ±inf, skipped: (row within the chunk, how many exact zeros
/// it had).
type Skipped = Vec<(usize, usize)>;

/// Rows `first .. first + count` of the head: one chunk.
#[derive(Clone, Copy)]
struct Chunk {
    first: usize,
    count: usize,
}

/// One chunk's summaries and its skipped rows: read, checked and sorted in one pass from the file
/// where the rows are stored as f32 (and the joint fit does not need them read), else read into
/// `buf` (pooled as they are read) and then summarised.
#[allow(clippy::too_many_arguments)]
fn summarise_chunk(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &Options,
    pools: Option<&ald::JointPools>,
    chunk: Chunk,
    buf: &mut Vec<f32>,
    timings: &mut Timings,
) -> Result<(Vec<crate::backend::RowSummary>, Skipped)> {
    let t = Instant::now();
    let (first, count, cols) = (chunk.first, chunk.count, head.features);
    if let Some(src) = head.f32_rows(first, count).filter(|_| pools.is_none()) {
        // The rows as the file stores them: read, checked and sorted in one pass.
        let (rows, bad) = backend
            .summarise_rows_from(src, buf, cols)
            .map_err(|e| at_class(e, head, labels, first))?;
        let skipped = nonfinite_rows(head, labels, first, src, &bad, opts)?;
        timings.add("read+sort+fit+lines", t);
        return Ok((rows, skipped));
    }
    let skipped = read_chunk(head, labels, first, buf, opts.skip_nonfinite, pools)?;
    timings.add(if opts.pooled { "read+pool" } else { "read" }, t);
    let t = Instant::now();
    let rows = backend
        .summarise_rows(buf, cols)
        .map_err(|e| at_class(e, head, labels, first))?;
    timings.add("sort+fit+lines", t);
    Ok((rows, skipped))
}

/// An empty Vec with room for `n` items, or an error saying what could not be held: sizes here
/// come from the head's file.
pub(crate) fn reserve<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::Invalid(format!(
            "cannot allocate {} for {what}: not enough memory",
            crate::memory::human((n as u64).saturating_mul(std::mem::size_of::<T>() as u64))
        ))
    })?;
    Ok(v)
}

/// The most classes one chunk holds, whatever the backend could take: each chunk's per-class
/// summaries (~224 bytes a class) are held at once, which for narrow rows would otherwise cost
/// far more than the rows (a 2 000 000 × 2 head in one chunk: 448 MB of summaries for 16 MB of
/// weights). 2^18 keeps heads of up to 256 000 classes in one chunk.
pub const MAX_CHUNK_CLASSES: usize = 1 << 18;

/// Classes per chunk of a head of `classes` × `cols` on `backend`.
pub(crate) fn chunk_rows(backend: &dyn Backend, classes: usize, cols: usize) -> usize {
    backend
        .max_chunk_rows(cols)
        .min(MAX_CHUNK_CLASSES)
        .clamp(1, classes.max(1))
}

/// A backend's refusal of row `row` of the chunk starting at class `first`, said of the class:
/// the user knows classes, not chunks.
pub(crate) fn at_class(e: Error, head: &Head, labels: &[String], first: usize) -> Error {
    match e {
        Error::Magnitude {
            backend,
            row,
            max_abs,
            lo,
            hi,
        } => {
            let class = head.class_id(first + row);
            let label = labels
                .get(class)
                .map(|l| format!(" ({})", crate::text::short(l, 60)))
                .unwrap_or_default();
            Error::Tensor {
                path: head.path.clone(),
                tensor: head.tensor.clone(),
                msg: format!(
                    "at class {class}{label}: {}",
                    crate::error::magnitude_msg(&backend, max_abs, lo, hi)
                ),
            }
        }
        other => other,
    }
}

/// The error for a non-finite `value` at `feature` of row `row` of `head`.
fn nonfinite(head: &Head, labels: &[String], row: usize, feature: usize, value: f32) -> Error {
    let class = head.class_id(row);
    Error::NonFinite {
        path: head.path.clone(),
        tensor: head.tensor.clone(),
        class,
        label: labels
            .get(class)
            .map(|l| format!(" ({l})"))
            .unwrap_or_default(),
        feature,
        value,
    }
}

/// For the rows of `src` (rows `first..` of `head`) that held a non-finite value, `bad`: the
/// error naming the first such value, or with `skip_nonfinite` what [`read_chunk`] reports of
/// them ([`Skipped`]).
fn nonfinite_rows(
    head: &Head,
    labels: &[String],
    first: usize,
    src: &[f32],
    bad: &[usize],
    opts: &Options,
) -> Result<Skipped> {
    let row = |r: usize| &src[r * head.features..(r + 1) * head.features];
    if let (Some(&r), false) = (bad.first(), opts.skip_nonfinite) {
        let f = row(r).iter().position(|x| !x.is_finite()).unwrap_or(0);
        return Err(nonfinite(head, labels, first + r, f, row(r)[f]));
    }
    Ok(bad
        .iter()
        .map(|&r| (r, row(r).iter().filter(|&&x| x == 0.0).count()))
        .collect())
}

/// Reads rows `first..` of `head` into `rows` (whole rows of `head.features`), adding every
/// row with only finite values to `pools` as it is read. A row holding NaN or inf is an error
/// naming its class, or with `skip_nonfinite` is zero-filled and reported ([`Skipped`]).
pub(crate) fn read_chunk(
    head: &Head,
    labels: &[String],
    first: usize,
    rows: &mut [f32],
    skip_nonfinite: bool,
    pools: Option<&ald::JointPools>,
) -> Result<Skipped> {
    let cols = head.features;
    // Each row is read, checked and pooled in one go, while it is in this core's cache.
    let bad: Vec<(usize, usize, f32)> = rows
        .par_chunks_mut(cols)
        .enumerate()
        .filter_map(|(r, row)| {
            head.read_rows(first + r, row);
            // The position only where the (vectorised) test fails.
            let first_bad = if crate::backend::all_finite(row) {
                None
            } else {
                row.iter().position(|x| !x.is_finite())
            };
            match first_bad {
                Some(f) => Some((r, f, row[f])),
                None => {
                    if let Some(pools) = pools {
                        pools.extend(row);
                    }
                    None
                }
            }
        })
        .collect();
    if let (Some(&(r, feature, value)), false) = (bad.first(), skip_nonfinite) {
        return Err(nonfinite(head, labels, first + r, feature, value));
    }
    let mut skipped = Vec::with_capacity(bad.len());
    for &(r, _, _) in &bad {
        let row = &mut rows[r * cols..(r + 1) * cols];
        skipped.push((r, row.iter().filter(|&&x| x == 0.0).count()));
        row.fill(0.0);
    }
    Ok(skipped)
}
