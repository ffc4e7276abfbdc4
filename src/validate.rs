//! `aldfit validate`: every primitive of a backend against the f64 reference (src/ald.rs) under
//! the docs/DESIGN.md section 4 contract, on seeded heads built to be nasty and on a real head.

use rand::Rng;

use crate::ald::{self, AldParams};
use crate::backend::{Backend, Segment, SegmentStats, Side};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::synth;
use crate::tolerances::{self, GradTerms, Measurement};
use crate::tree;

/// A head to validate on.
pub struct Dataset {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
    /// Rows at the ends of f32's range: a backend must get them right or refuse them.
    pub extreme: bool,
}

/// `rows` nasty rows (every kind in turn) of `cols` values, seeded by the width.
pub fn nasty(rows: usize, cols: usize) -> Dataset {
    Dataset {
        name: format!("nasty {rows}×{cols}"),
        rows,
        cols,
        values: synth::nasty_head(rows, cols, cols as u64),
        extreme: false,
    }
}

/// Rows at the ends of f32's range ([`synth::EXTREME_KINDS`]).
pub fn extremes(rows: usize, cols: usize) -> Dataset {
    Dataset {
        name: format!("extremes {rows}×{cols}"),
        rows,
        cols,
        values: synth::extreme_head(rows, cols, cols as u64),
        extreme: true,
    }
}

/// The seeded synthetic heads: every nasty kind at several widths (including ones wider than a
/// GPU's workgroup memory), and many rows.
pub fn synthetic() -> Vec<Dataset> {
    let kinds = synth::NASTY_KINDS.len();
    let mut sets: Vec<Dataset> = [
        (3, 2 * kinds),
        (17, 2 * kinds),
        (1280, 2 * kinds),
        (4099, kinds),
        (65_536, kinds / 2),
    ]
    .into_iter()
    .map(|(cols, rows)| nasty(rows, cols))
    .collect();
    let (values, _) = synth::ald_head(5000, 64, 7);
    sets.push(Dataset {
        name: "ALD 5000×64".into(),
        rows: 5000,
        cols: 64,
        values,
        extreme: false,
    });
    sets.push(extremes(2 * synth::EXTREME_KINDS.len(), 257));
    sets
}

/// A real head as a dataset (rows converted to f32).
pub fn of_head(name: &str, head: &Head) -> Dataset {
    Dataset {
        name: name.to_owned(),
        rows: head.classes,
        cols: head.features,
        values: head.to_f32(),
        extreme: false,
    }
}

/// All comparisons of `backend` with the reference on one dataset, chunk by chunk.
pub fn run(backend: &mut dyn Backend, data: &Dataset) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let cols = data.cols;
    let chunk_rows = backend.max_chunk_rows(cols).clamp(1, data.rows.max(1));
    let mut rng = synth::row_rng(cols as u64, data.rows);
    for values in data.values.chunks(chunk_rows * cols) {
        let c = Chunk::new(values, cols);
        check_sort(backend, &c, &mut out)?;
        let (neg_end, pos_start) = check_partition(backend, &c, &mut out)?;
        check_segment_stats(backend, &c, &mut rng, &mut out)?;
        check_study_lines(backend, &c, &neg_end, &pos_start, &mut out)?;
        check_loglik(backend, &c, &mut out)?;
        check_nll_grad(backend, &c, &mut out)?;
        check_trees(backend, &c, &mut out)?;
    }
    Ok(out)
}

/// One chunk of a dataset, with its rows sorted by the reference (stable, with feature order).
struct Chunk<'a> {
    values: &'a [f32],
    cols: usize,
    rows: usize,
    sorted: Vec<Vec<f32>>,
    full: Vec<Segment>,
}

impl<'a> Chunk<'a> {
    fn new(values: &'a [f32], cols: usize) -> Self {
        let rows = values.len() / cols;
        let sorted = values
            .chunks(cols)
            .map(|r| {
                let mut v = r.to_vec();
                v.sort_by(f32::total_cmp);
                v
            })
            .collect();
        let full = (0..rows).map(|r| Segment::new(r, 0, cols)).collect();
        Chunk {
            values,
            cols,
            rows,
            sorted,
            full,
        }
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }
}

fn exact(kernel: &'static str, what: &'static str, wrong: usize, of: usize) -> Measurement {
    Measurement {
        kernel,
        what,
        deviation: wrong as f64 / of.max(1) as f64,
        tolerance: 0.0,
    }
}

/// Sort: an exact permutation, non-decreasing, each value with its feature index.
fn check_sort(b: &mut dyn Backend, c: &Chunk, out: &mut Vec<Measurement>) -> Result<()> {
    b.load_sorted(c.values, c.cols, true)?;
    let back = b.read_sorted(&c.full)?;
    let wrong =
        back.iter()
            .enumerate()
            .filter(|(r, seg)| {
                let row = c.row(*r);
                let mut seen = seg.indices.clone();
                seen.sort_unstable();
                !(seg.values.len() == c.cols
                    && seg.values.windows(2).all(|w| w[0] <= w[1])
                    && seg.indices.len() == c.cols
                    && seg.indices.iter().zip(&seg.values).all(|(&i, &x)| {
                        row.get(i as usize).map(|v| v.to_bits()) == Some(x.to_bits())
                    })
                    && seen.iter().enumerate().all(|(k, &i)| i as usize == k))
            })
            .count();
    let what = "rows not an exact sorted permutation (fraction)";
    out.push(exact("sort", what, wrong, c.rows));
    Ok(())
}

/// Partition points at zero (where the study's lines start): exact. Returns them.
fn check_partition(
    b: &mut dyn Backend,
    c: &Chunk,
    out: &mut Vec<Measurement>,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let zeros = vec![0f32; c.rows];
    let neg_end = b.partition_points(&c.full, &zeros, false)?;
    let pos_start = b.partition_points(&c.full, &zeros, true)?;
    let wrong: usize = (0..c.rows)
        .map(|r| {
            let x = &c.sorted[r];
            usize::from(neg_end[r] as usize != ald::partition_point_sorted(x, 0.0, false))
                + usize::from(pos_start[r] as usize != ald::partition_point_sorted(x, 0.0, true))
        })
        .sum();
    let what = "wrong partition points (fraction)";
    out.push(exact("partition", what, wrong, 2 * c.rows));
    Ok((neg_end, pos_start))
}

/// Fit, KS, baselines on whole rows and on random sub-segments (tree nodes), by the separate
/// primitives and by the fused one (one kernel on CUDA).
fn check_segment_stats(
    b: &mut dyn Backend,
    c: &Chunk,
    rng: &mut impl Rng,
    out: &mut Vec<Measurement>,
) -> Result<()> {
    let mut segs = c.full.clone();
    for _ in 0..c.rows.min(64) {
        let r = rng.random_range(0..c.rows);
        let lo = rng.random_range(0..c.cols);
        segs.push(Segment::new(r, lo, rng.random_range(lo..=c.cols)));
    }
    let fits = b.fit(&segs)?;
    let params: Vec<AldParams> = fits.iter().map(|f| f.params).collect();
    let ks = b.ks(&segs, &params)?;
    let base = b.baselines(&segs)?;
    let fused = b.segment_stats(&segs)?;
    for (i, s) in segs.iter().enumerate() {
        let x = &c.sorted[s.row as usize][s.lo as usize..s.hi as usize];
        let (fit, baselines) = ald::fit_and_baselines_sorted(x);
        let want = SegmentStats {
            fit,
            ks: ald::ks_sorted(x, &fit.params),
            baselines,
        };
        let got = SegmentStats {
            fit: fits[i],
            ks: ks[i],
            baselines: base[i],
        };
        tolerances::check_stats(x, &got, &want, out);
        tolerances::check_stats(x, &fused[i], &want, out);
    }
    Ok(())
}

/// The study's lines on each side of zero.
fn check_study_lines(
    b: &mut dyn Backend,
    c: &Chunk,
    neg_end: &[u32],
    pos_start: &[u32],
    out: &mut Vec<Measurement>,
) -> Result<()> {
    let (pos, neg) = crate::backend::sides(c.cols, neg_end, pos_start);
    let (sp, sn) = (
        b.study_line(&pos, Side::Positive)?,
        b.study_line(&neg, Side::Negative)?,
    );
    for (r, x) in c.sorted.iter().enumerate() {
        let p = ald::partition_point_sorted(x, 0.0, true);
        let n = ald::partition_point_sorted(x, 0.0, false);
        let want_pos = ald::study_line_positive_sorted(&x[p..]);
        tolerances::check_study_line(&sp[r], &want_pos, out);
        let want_neg = ald::study_line_negative_sorted(&x[..n]);
        tolerances::check_study_line(&sn[r], &want_neg, out);
    }
    Ok(())
}

/// Vuong's sums at the reference fit and Gaussian of each whole row.
fn check_loglik(b: &mut dyn Backend, c: &Chunk, out: &mut Vec<Measurement>) -> Result<()> {
    let (ald_at, gauss_at): (Vec<AldParams>, Vec<(f64, f64)>) = c
        .sorted
        .iter()
        .map(|x| {
            let (f, b) = ald::fit_and_baselines_sorted(x);
            (f.params, (b.mean, b.std()))
        })
        .unzip();
    let got = b.loglik_diff(&c.full, &ald_at, &gauss_at)?;
    for (r, x) in c.sorted.iter().enumerate() {
        let want = ald::loglik_diff(x, &ald_at[r], gauss_at[r].0, gauss_at[r].1);
        tolerances::check_loglik(&got[r], &want, out);
    }
    Ok(())
}

/// NLL + gradient on the unsorted rows, at the reference fit (or a fixed law when none).
fn check_nll_grad(b: &mut dyn Backend, c: &Chunk, out: &mut Vec<Measurement>) -> Result<()> {
    let at: Vec<AldParams> = c
        .sorted
        .iter()
        .map(|x| {
            let f = ald::fit_sorted(x).params;
            if f.is_valid() {
                f
            } else {
                AldParams::new(0.0, 1.0, 1.0)
            }
        })
        .collect();
    let got = b.nll_grad(c.values, c.cols, &at)?;
    for (r, row) in c.values.chunks(c.cols).enumerate() {
        let sums = ald::TailSums::of(row, at[r].loc);
        let want = ald::NllGrad::from_sums(&sums, &at[r]);
        tolerances::check_nll_grad(&got[r], &want, &GradTerms::of(&sums, &at[r]), out);
    }
    Ok(())
}

/// Split trees (docs/DESIGN.md 2.5): the same nodes, counts and feature sets as the CPU's,
/// exactly, under the study's rule and under the ALD rule.
fn check_trees(b: &mut dyn Backend, c: &Chunk, out: &mut Vec<Measurement>) -> Result<()> {
    b.load_sorted(c.values, c.cols, true)?;
    let mut cpu = crate::backend::cpu::CpuBackend::new();
    cpu.load_sorted(c.values, c.cols, true)?;
    for rule in [tree::Rule::Mean, tree::Rule::Ald] {
        let opts = tree::SplitOptions {
            rule,
            ..tree::SplitOptions::default()
        };
        let got = tree::grow(b, c.rows, c.cols, 0, &[], &opts)?;
        let want = tree::grow(&mut cpu, c.rows, c.cols, 0, &[], &opts)?;
        let (mut nodes, mut wrong) = (0usize, 0usize);
        for (g, w) in got.iter().zip(&want) {
            nodes += w.nodes.len();
            for (i, n) in w.nodes.iter().enumerate() {
                let same = g
                    .nodes
                    .iter()
                    .position(|m| m.path == n.path)
                    .is_some_and(|j| {
                        let (mut a, mut b) = (g.features(j).to_vec(), w.features(i).to_vec());
                        a.sort_unstable();
                        b.sort_unstable();
                        a == b
                    });
                wrong += usize::from(!same);
            }
            wrong += g.nodes.len().saturating_sub(w.nodes.len());
        }
        let what = match rule {
            tree::Rule::Mean => "nodes unlike the CPU's, mean rule (fraction)",
            _ => "nodes unlike the CPU's, ALD rule (fraction)",
        };
        out.push(exact("tree", what, wrong, nodes));
    }
    Ok(())
}

/// The bootstrap's generator on a backend against the CPU: the Philox stream bitwise (Random123's
/// known answers and 4096 scattered counters), and replicate rows of every null model at several
/// widths within [`tolerances::GENERATED_REL`].
pub fn run_generator(backend: &mut dyn Backend) -> Result<Vec<Measurement>> {
    let mut rng = synth::row_rng(0x9e37, 0);
    let mut out = philox_stream(backend, &mut rng)?;
    out.extend(replicate_rows(backend, &mut rng)?);
    Ok(out)
}

/// The Philox stream bitwise: Random123's known answers and 4096 scattered counters.
fn philox_stream(backend: &mut dyn Backend, rng: &mut impl Rng) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let kat: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0; 4],
            [0; 2],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    let mut wrong = 0usize;
    for (ctr, key, want) in kat {
        wrong += (backend.philox(key, &[ctr])? != vec![want]) as usize;
    }
    out.push(Measurement {
        kernel: "philox",
        what: "Random123 known answers missed",
        deviation: wrong as f64,
        tolerance: 0.0,
    });
    let key = [rng.random(), rng.random()];
    let counters: Vec<[u32; 4]> = (0..4096).map(|_| rng.random()).collect();
    let got = backend.philox(key, &counters)?;
    let wrong = counters
        .iter()
        .zip(&got)
        .filter(|(c, g)| crate::philox::philox4x32_10(**c, key) != **g)
        .count();
    out.push(Measurement {
        kernel: "philox",
        what: "blocks unlike the CPU's (fraction)",
        deviation: wrong as f64 / counters.len() as f64,
        tolerance: 0.0,
    });
    Ok(out)
}

/// Replicate rows of every null model at several widths against the CPU's.
fn replicate_rows(backend: &mut dyn Backend, rng: &mut impl Rng) -> Result<Vec<Measurement>> {
    use crate::philox::{NullModel, ReplicateRow};
    let mut out = Vec::new();
    let mut cpu = crate::backend::cpu::CpuBackend::new();
    for cols in [3usize, 17, 1280, 4099] {
        let rows: Vec<ReplicateRow> = (0..48u32)
            .map(|k| {
                let model = [NullModel::Gauss, NullModel::Ald, NullModel::Laplace][k as usize % 3];
                let p = synth::random_params(rng);
                ReplicateRow {
                    class: k * 7919,
                    replicate: k / 3,
                    model,
                    params: match model {
                        NullModel::Gauss => [p.loc as f32, p.scale as f32, 0.0],
                        NullModel::Ald => [p.loc as f32, p.scale as f32, p.kappa as f32],
                        NullModel::Laplace => [p.loc as f32, p.scale as f32, 1.0],
                    },
                }
            })
            .collect();
        let seed = rng.random();
        let whole: Vec<Segment> = (0..rows.len()).map(|r| Segment::new(r, 0, cols)).collect();
        let sorted = |b: &mut dyn Backend| -> Result<Vec<Vec<f32>>> {
            b.generate(&rows, cols, seed)?;
            b.sort_uploaded(false)?;
            Ok(b.read_sorted(&whole)?
                .into_iter()
                .map(|s| s.values)
                .collect())
        };
        let (got, want) = (sorted(backend)?, sorted(&mut cpu)?);
        for ((g, w), r) in got.iter().zip(&want).zip(&rows) {
            tolerances::check_generated(g, w, r.spread(), &mut out);
        }
    }
    Ok(out)
}

/// The header of `aldfit validate`'s table.
pub fn table_header() -> String {
    format!(
        "{:<6} {:<13} {:>13} {:>10} {:>9}  worst quantity (dataset)\n",
        "backend", "kernel", "worst dev", "tolerance", "violated"
    )
}

/// Every check of one backend (the generator, then each dataset): the table's rows, worst
/// deviation per kernel, and whether every check held.
pub fn backend_table(backend: &mut dyn Backend, datasets: &[Dataset]) -> Result<(String, bool)> {
    let name = backend.info().name;
    let mut all: Vec<(String, Measurement)> = run_generator(backend)?
        .into_iter()
        .map(|m| ("bootstrap generator".to_owned(), m))
        .collect();
    let mut refused = String::new();
    for data in datasets {
        match run(backend, data) {
            Ok(measured) => all.extend(measured.into_iter().map(|m| (data.name.clone(), m))),
            Err(e @ Error::Magnitude { .. }) if data.extreme => {
                refused.push_str(&format!(
                    "{name:<6} {:<13} {:>13} {:>10} {:>10} refused, as it must: {e} ({})\n",
                    "extremes", "-", "-", "-", data.name
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let measured: Vec<Measurement> = all.iter().map(|(_, m)| m.clone()).collect();
    let (mut rows, mut held) = (refused, true);
    for (kernel, worst, violated, count) in summarise(&measured) {
        let dataset = all
            .iter()
            .find(|(_, m)| *m == worst)
            .map_or("", |(d, _)| d.as_str());
        held &= violated == 0;
        rows.push_str(&format!(
            "{:<6} {:<13} {:>13.3e} {:>10.1e} {:>4}/{:<5} {} ({dataset}){}\n",
            name,
            kernel,
            worst.deviation,
            worst.tolerance,
            violated,
            count,
            worst.what,
            if violated > 0 { "  FAIL" } else { "" }
        ));
    }
    Ok((rows, held))
}

/// The worst measurement (by share of its tolerance) and the number of violations, per kernel,
/// in the order kernels first appear.
pub fn summarise(measured: &[Measurement]) -> Vec<(&'static str, Measurement, usize, usize)> {
    let mut rows: Vec<(&'static str, Measurement, usize, usize)> = Vec::new();
    for m in measured {
        match rows.iter_mut().find(|r| r.0 == m.kernel) {
            Some(r) => {
                if m.ratio() > r.1.ratio() {
                    r.1 = m.clone();
                }
                r.2 += m.violated() as usize;
                r.3 += 1;
            }
            None => rows.push((m.kernel, m.clone(), m.violated() as usize, 1)),
        }
    }
    rows
}
