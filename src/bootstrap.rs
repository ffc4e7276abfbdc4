//! The parametric bootstrap (docs/DESIGN.md 2.6): every statistic beside its value when the
//! claim is false.
//!
//! For every class, replicate rows of the class's length are drawn from its fitted Gaussian and
//! from its fitted ALD, on the device that analyses them ([`Backend::summarise_generated`]), and
//! both models are refitted on each exactly as on the real row. Replicate `b` of every class under
//! one model makes replicate head `b`. Replicates `1..=B` are the null distributions:
//! `p_boot_gauss` compares `T = NLL_N − NLL_ALD` with its values under Gaussian rows, `p_boot_ks`
//! the KS distance with its values under ALD rows (parameters re-estimated on each, as in
//! Lilliefors' test).
//!
//! Replicate 0 of each model is a *witness head*: a head that is Gaussian (or ALD, or Laplace)
//! by construction, run through the very same tests against the same nulls. The verdict shows
//! what each head-level share reads on it, beside the real head's: a statistic that reads the
//! same on the Gaussian witness as on the real head does not tell the claim from noise. (Both `T`
//! and the KS distance are invariant under shifts and positive scalings of a row, so testing a
//! witness row against the real class's nulls is the same test as refitting first.)

use std::time::Instant;

use crate::ald;
use crate::analysis::ClassResult;
use crate::backend::{Backend, NullModel, ReplicateRow, RowSummary};
use crate::error::{Error, Result};
use crate::tree::{self, SplitOptions};

/// The default `--seed`: fixed, so that a run repeats; recorded in `run.json`.
pub const DEFAULT_SEED: u64 = 0x2205_1190_8a1d_f175;

/// The most replicates `--bootstrap` takes (p-values to 1e-5).
pub const MAX_REPLICATES: usize = 99_999;

/// How many replicates `--bootstrap auto` runs per class and model: the largest of these whose
/// replicate values fit the backend's budget (see [`auto_replicates`]).
pub const AUTO_LADDER: [usize; 4] = [999, 499, 199, 99];

/// Replicate values (rows × features, both models) that `auto` spends: on the CPU a few seconds
/// on two cores; on a GPU about a second of device time; on a software GPU (lavapipe: a CPU
/// running GPU code, far slower than the CPU backend) only small heads. The times behind these
/// budgets are in `bench-results/2026-12-01-cpu-2core-bootstrap-bench.md`.
pub const AUTO_BUDGET_HOST: f64 = 3.0e8;
pub const AUTO_BUDGET_GPU: f64 = 2.0e10;
pub const AUTO_BUDGET_SOFTWARE: f64 = 3.0e6;

/// Which budget `auto` spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Host,
    Gpu,
    SoftwareGpu,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Host => "CPU",
            Device::Gpu => "GPU",
            Device::SoftwareGpu => "software GPU adapter",
        }
    }

    pub fn of(info: &crate::backend::BackendInfo) -> Self {
        match (info.name.as_str(), info.software) {
            ("cpu", _) => Device::Host,
            (_, true) => Device::SoftwareGpu,
            _ => Device::Gpu,
        }
    }
}

/// The split trees' replicate heads per model under `auto`: fewer than B (each is a whole
/// split of the head).
pub const AUTO_TREE_REPLICATES: usize = 19;

/// `--bootstrap auto`: the largest B of [`AUTO_LADDER`] whose `(2B + 3)` replicate heads of
/// `weights` values fit the device's budget; 0 when none does.
pub fn auto_replicates(weights: usize, device: Device) -> usize {
    let budget = match device {
        Device::Host => AUTO_BUDGET_HOST,
        Device::Gpu => AUTO_BUDGET_GPU,
        Device::SoftwareGpu => AUTO_BUDGET_SOFTWARE,
    };
    AUTO_LADDER
        .into_iter()
        .find(|&b| (2 * b + 3) as f64 * weights as f64 <= budget)
        .unwrap_or(0)
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Options {
    /// B: null replicates per class and model.
    pub replicates: usize,
    pub seed: u64,
    /// Replicate heads per model whose split trees are grown (with `split`).
    pub tree_replicates: usize,
    /// Grow split trees on replicate heads with these options.
    pub split: Option<SplitOptions>,
    /// With `--classes`: the tensor's class of each result. A replicate row's Philox counter
    /// holds its class in the tensor, so a class reads the same p-values whichever classes run
    /// beside it.
    #[serde(skip)]
    pub ids: Option<std::sync::Arc<Vec<usize>>>,
}

impl Options {
    /// The class number in result `k`'s replicate counters.
    fn counter_class(&self, k: usize) -> u32 {
        self.ids.as_ref().map_or(k, |ids| ids[k]) as u32
    }
}

/// What a head-level statistic reads on replicate heads: one value per replicate head.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NullValues {
    pub gauss: Vec<f64>,
    pub ald: Vec<f64>,
}

impl NullValues {
    fn push(&mut self, model: NullModel, v: f64) {
        match model {
            NullModel::Gauss => self.gauss.push(v),
            NullModel::Ald => self.ald.push(v),
            NullModel::Laplace => {}
        }
    }
}

/// A 95 % interval over replicate heads (2.5th and 97.5th percentiles) and their median.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn of(values: &[f64]) -> Self {
        let q = |p| crate::report::quantile(values, p);
        Interval {
            median: q(0.5),
            lo: q(0.025),
            hi: q(0.975),
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        x >= self.lo && x <= self.hi
    }
}

/// The per-class tests one head reads: p- and q-values against the class's nulls.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HeadTests {
    pub p_gauss: Vec<f64>,
    pub p_ks: Vec<f64>,
    pub q_gauss: Vec<f64>,
    pub q_ks: Vec<f64>,
    pub p_lrt: Vec<f64>,
    pub p_vuong: Vec<f64>,
    pub median_r2_pos: f64,
    pub median_r2_neg: f64,
}

/// Shares of a head's classes (with a finite value) meeting a condition.
pub fn share(values: &[f64], pred: impl Fn(f64) -> bool) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return f64::NAN;
    }
    finite.iter().filter(|&&v| pred(v)).count() as f64 / finite.len() as f64
}

impl HeadTests {
    pub fn share_reject_gauss(&self) -> f64 {
        share(&self.q_gauss, |q| q < 0.05)
    }
    pub fn share_ks_adequate(&self) -> f64 {
        share(&self.q_ks, |q| q >= 0.05)
    }
    pub fn share_lrt(&self) -> f64 {
        share(&self.p_lrt, |p| p < 0.05)
    }
    pub fn share_vuong(&self) -> f64 {
        share(&self.p_vuong, |p| p < 0.05)
    }
}

/// By depth of the split trees: the share of nodes the ALD wins by AIC, per replicate head.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TreeNull {
    pub replicates: usize,
    /// `[depth][replicate]` shares under Gaussian rows and under ALD rows (depth 0 unused).
    pub gauss: Vec<Vec<f64>>,
    pub ald: Vec<Vec<f64>>,
}

/// Everything the bootstrap found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bootstrap {
    pub replicates: usize,
    pub seed: u64,
    /// The real head's tests.
    pub observed: HeadTests,
    /// The witness heads' tests: replicate 0 of each model, against the same nulls.
    pub witness_gauss: HeadTests,
    pub witness_ald: HeadTests,
    pub witness_laplace: HeadTests,
    /// The median study-line R² of each replicate head (positive and negative parts).
    pub median_r2_pos: NullValues,
    pub median_r2_neg: NullValues,
    pub trees: Option<TreeNull>,
    /// Replicate values generated and analysed, and how long that took.
    pub values: u64,
    pub seconds: f64,
}

/// Replicate rows for timing the bootstrap: one per law in `params`, Gaussian and ALD rows
/// alternating, as a bootstrap chunk mixes them.
pub fn bench_rows(params: &[crate::ald::AldParams]) -> Vec<ReplicateRow> {
    params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let gauss = k % 2 == 0;
            ReplicateRow {
                class: k as u32,
                replicate: 1,
                model: if gauss {
                    NullModel::Gauss
                } else {
                    NullModel::Ald
                },
                params: if gauss {
                    [p.mean() as f32, p.scale as f32, 0.0]
                } else {
                    [p.loc as f32, p.scale as f32, p.kappa as f32]
                },
            }
        })
        .collect()
}

/// The per-class laws the replicates are drawn from, or `None` for a class without a fit.
fn laws(c: &ClassResult) -> Option<[[f32; 3]; 3]> {
    let p = c.stats.fit.params;
    let b = &c.stats.baselines;
    let usable = !c.nonfinite
        && !c.stats.fit.degenerate
        && p.is_valid()
        && b.var > 0.0
        && b.mad > 0.0
        && c.stats.ks.is_finite();
    usable.then(|| {
        [
            [b.mean as f32, b.std() as f32, 0.0],
            [p.loc as f32, p.scale as f32, p.kappa as f32],
            [b.median as f32, b.mad as f32, 1.0],
        ]
    })
}

/// One replicate head: which law, which replicate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Job {
    model: NullModel,
    replicate: u32,
}

/// Per class, the counts of null replicates at least as extreme as a head's statistic.
struct Exceed {
    t: Vec<f64>,
    d: Vec<f64>,
    gauss: Vec<u32>,
    ks: Vec<u32>,
}

impl Exceed {
    /// Counts against a head's statistics: `T` and the KS distance of each of its rows (NaN
    /// where a class has no row).
    fn of(rows: &[Option<ClassResult>]) -> Self {
        let get = |f: &dyn Fn(&ClassResult) -> f64| -> Vec<f64> {
            rows.iter()
                .map(|r| r.as_ref().map_or(f64::NAN, f))
                .collect()
        };
        Exceed::new(get(&ClassResult::gauss_minus_ald), get(&|c| c.stats.ks))
    }

    fn new(t: Vec<f64>, d: Vec<f64>) -> Self {
        let n = t.len();
        Exceed {
            t,
            d,
            gauss: vec![0; n],
            ks: vec![0; n],
        }
    }

    fn count(&mut self, k: usize, model: NullModel, row: &RowSummary) {
        match model {
            NullModel::Gauss => {
                let t = row.stats.baselines.nll_gauss - row.stats.fit.nll;
                // NaN (a degenerate replicate) counts as at least as extreme: conservative.
                self.gauss[k] += u32::from(t.is_nan() || t >= self.t[k]);
            }
            NullModel::Ald => {
                let d = row.stats.ks;
                self.ks[k] += u32::from(d.is_nan() || d >= self.d[k]);
            }
            NullModel::Laplace => {}
        }
    }

    /// p- and q-values; NaN where the head's statistic is NaN.
    fn tests(&self, b: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let p = |stat: &[f64], counts: &[u32]| -> Vec<f64> {
            stat.iter()
                .zip(counts)
                .map(|(s, &c)| {
                    if s.is_finite() {
                        ald::bootstrap_p(c, b as u32)
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let pg = p(&self.t, &self.gauss);
        let pk = p(&self.d, &self.ks);
        let (qg, qk) = (ald::bh_qvalues(&pg), ald::bh_qvalues(&pk));
        (pg, pk, qg, qk)
    }
}

fn median_finite(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    crate::report::quantile(&v, 0.5)
}

/// Every replicate head to draw, in order: the witnesses first (their statistics must be known
/// before the nulls stream past), then replicates `1..=b` of both null models.
fn jobs(b: usize) -> Vec<Job> {
    let witnesses = [NullModel::Gauss, NullModel::Ald, NullModel::Laplace].map(|model| Job {
        model,
        replicate: 0,
    });
    let nulls = (1..=b as u32).flat_map(|replicate| {
        [NullModel::Gauss, NullModel::Ald].map(|model| Job { model, replicate })
    });
    witnesses.into_iter().chain(nulls).collect()
}

/// What the replicate rows add up to as they stream past.
struct Tally {
    /// The real head's exceedance counts.
    observed: Exceed,
    /// The witness heads' rows (Gaussian, ALD, Laplace), then their exceedance counts.
    witness_rows: Vec<Vec<Option<ClassResult>>>,
    witness: Vec<Exceed>,
    /// Median study-line R² of each replicate head (positive, negative), and the head in progress.
    r2: (NullValues, NullValues),
    head_r2: (Vec<f64>, Vec<f64>),
}

impl Tally {
    fn new(classes: &[ClassResult]) -> Self {
        let real: Vec<Option<ClassResult>> = classes.iter().copied().map(Some).collect();
        Tally {
            observed: Exceed::of(&real),
            witness_rows: vec![vec![None; classes.len()]; 3],
            witness: Vec::new(),
            r2: Default::default(),
            head_r2: Default::default(),
        }
    }

    /// One replicate row of class `k` of `job`'s head; `closes` when it is the head's last.
    fn record(&mut self, job: Job, k: usize, closes: bool, row: &RowSummary, cols: usize) {
        if job.replicate == 0 {
            self.witness_rows[job.model as usize][k] = Some(ClassResult::of_row(cols, row));
            return;
        }
        if self.witness.is_empty() {
            self.witness = self.witness_rows.iter().map(|r| Exceed::of(r)).collect();
        }
        self.observed.count(k, job.model, row);
        for w in &mut self.witness {
            w.count(k, job.model, row);
        }
        self.head_r2.0.push(row.line_pos.r2);
        self.head_r2.1.push(row.line_neg.r2);
        if closes {
            self.r2
                .0
                .push(job.model, median_finite(self.head_r2.0.drain(..)));
            self.r2
                .1
                .push(job.model, median_finite(self.head_r2.1.drain(..)));
        }
    }
}

/// A head's tests: bootstrap p- and q-values from its exceedance counts, the asymptotic ones and
/// its median study-line R² from its rows.
fn head_tests(ex: &Exceed, b: usize, rows: &[Option<ClassResult>]) -> HeadTests {
    let (p_gauss, p_ks, q_gauss, q_ks) = ex.tests(b);
    let get = |f: &dyn Fn(&ClassResult) -> f64| -> Vec<f64> {
        rows.iter()
            .map(|r| r.as_ref().map_or(f64::NAN, f))
            .collect()
    };
    HeadTests {
        p_gauss,
        p_ks,
        q_gauss,
        q_ks,
        p_lrt: get(&|c| c.lrt_laplace().1),
        p_vuong: get(&|c| c.vuong_gauss().1),
        median_r2_pos: median_finite(get(&|c| c.line_pos.r2).into_iter()),
        median_r2_neg: median_finite(get(&|c| c.line_neg.r2).into_iter()),
    }
}

/// Draws and summarises every replicate row of `jobs` × `fitted` classes, chunk by chunk, into
/// `tally`; returns how many values were drawn.
fn stream(
    backend: &mut dyn Backend,
    jobs: &[Job],
    fitted: &[(usize, [[f32; 3]; 3])],
    cols: usize,
    opts: &Options,
    tally: &mut Tally,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<u64> {
    let total_rows = jobs.len() * fitted.len();
    let chunk = backend.max_chunk_rows(cols).clamp(1, total_rows.max(1));
    let at = |i: usize| (jobs[i / fitted.len()], fitted[i % fitted.len()]);
    let (mut done, mut values) = (0usize, 0u64);
    while done < total_rows {
        let range = done..done + chunk.min(total_rows - done);
        let specs: Vec<ReplicateRow> = range
            .clone()
            .map(|i| {
                let (job, (k, laws)) = at(i);
                ReplicateRow {
                    class: opts.counter_class(k),
                    replicate: job.replicate,
                    model: job.model,
                    params: laws[job.model as usize],
                }
            })
            .collect();
        let rows = backend.summarise_generated(&specs, cols, opts.seed)?;
        values += (specs.len() * cols) as u64;
        for (i, row) in range.clone().zip(&rows) {
            let (job, (k, _)) = at(i);
            tally.record(job, k, (i + 1) % fitted.len() == 0, row, cols);
        }
        done = range.end;
        progress(done, total_rows);
    }
    Ok(values)
}

/// Runs the bootstrap for the classes of an analysed head of `cols` features.
/// `progress(done, total)` is told replicate rows.
pub fn run(
    backend: &mut dyn Backend,
    classes: &[ClassResult],
    cols: usize,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Bootstrap> {
    let start = Instant::now();
    let b = opts.replicates;
    if b == 0 || b > MAX_REPLICATES {
        return Err(Error::Invalid(format!(
            "the bootstrap takes 1 to {MAX_REPLICATES} replicates, not {b}"
        )));
    }
    let fitted: Vec<(usize, [[f32; 3]; 3])> = classes
        .iter()
        .enumerate()
        .filter_map(|(k, c)| laws(c).map(|l| (k, l)))
        .collect();
    let mut tally = Tally::new(classes);
    let mut values = stream(backend, &jobs(b), &fitted, cols, opts, &mut tally, progress)?;

    let observed = head_tests(
        &tally.observed,
        b,
        &classes.iter().copied().map(Some).collect::<Vec<_>>(),
    );
    // Without a single fitted class no witness row was drawn: every test is NaN.
    let mut witnesses = tally
        .witness
        .iter()
        .zip(&tally.witness_rows)
        .map(|(ex, rows)| head_tests(ex, b, rows));
    let mut next = || witnesses.next().unwrap_or_default();
    let (witness_gauss, witness_ald, witness_laplace) = (next(), next(), next());
    let trees = match (&opts.split, opts.tree_replicates) {
        (Some(split), t) if t > 0 => {
            let count = t.min(b);
            Some(null_trees(
                backend,
                &fitted,
                cols,
                split,
                count,
                opts,
                &mut values,
            )?)
        }
        _ => None,
    };
    Ok(Bootstrap {
        replicates: b,
        seed: opts.seed,
        observed,
        witness_gauss,
        witness_ald,
        witness_laplace,
        median_r2_pos: tally.r2.0,
        median_r2_neg: tally.r2.1,
        trees,
        values,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Split trees of replicate heads `1..=count` under each model: the by-depth ALD-win shares.
/// The rows are drawn again (the same counters give the same rows): the trees need them resident
/// and sorted, which the stream of [`run`] never keeps, and drawing costs less than holding
/// `count` replicate heads.
fn null_trees(
    backend: &mut dyn Backend,
    fitted: &[(usize, [[f32; 3]; 3])],
    cols: usize,
    split: &SplitOptions,
    count: usize,
    opts: &Options,
    values: &mut u64,
) -> Result<TreeNull> {
    let mut out = TreeNull {
        replicates: count,
        ..TreeNull::default()
    };
    if fitted.is_empty() {
        return Ok(out);
    }
    let chunk = backend.max_chunk_rows(cols).clamp(1, fitted.len());
    for model in [NullModel::Gauss, NullModel::Ald] {
        let mut shares: Vec<Vec<f64>> = Vec::new();
        for r in 1..=count as u32 {
            let mut digest = tree::TreeDigest::default();
            for part in fitted.chunks(chunk) {
                let specs: Vec<ReplicateRow> = part
                    .iter()
                    .map(|&(k, laws)| ReplicateRow {
                        class: opts.counter_class(k),
                        replicate: r,
                        model,
                        params: laws[model as usize],
                    })
                    .collect();
                backend.generate(&specs, cols, opts.seed)?;
                backend.sort_uploaded(false)?;
                *values += (specs.len() * cols) as u64;
                for t in tree::grow_nodes(backend, specs.len(), cols, split)? {
                    digest.add(&t, split);
                }
            }
            for (d, (wins, nodes)) in digest.ald_wins_by_depth().into_iter().enumerate().skip(1) {
                if shares.len() <= d {
                    shares.resize(d + 1, Vec::new());
                }
                shares[d].push(wins as f64 / nodes.max(1) as f64);
            }
        }
        match model {
            NullModel::Gauss => out.gauss = shares,
            _ => out.ald = shares,
        }
    }
    Ok(out)
}
