//! The files a run writes: `classes.csv`, `summary.md`, `run.json`. Each is rendered in memory
//! first and then written to a temporary file in the output folder and renamed, so a failed or
//! interrupted run never leaves a half-written file.

use std::fmt::Write as _;

use serde_json::json;

use crate::ald::{Model, StudyLine};
use crate::analysis::{Analysis, ClassResult};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::outset::OutputSet;

/// The columns of `classes.csv`, in order. The first twenty are the interface promised to users.
pub const CLASS_COLUMNS: [&str; CLASS_COLUMNS_LEN] = [
    "class",
    "label",
    "n",
    "zeros",
    "loc",
    "scale",
    "kappa",
    "nll",
    "boundary",
    "degenerate",
    "ks",
    "nll_gauss",
    "nll_laplace",
    "aic_best",
    "seed_slope_pos",
    "seed_intercept_pos",
    "seed_r2_pos",
    "seed_slope_neg",
    "seed_intercept_neg",
    "seed_r2_neg",
    "nonfinite",
    "mean",
    "std",
    "median",
    "mad",
    "seed_n_pos",
    "seed_n_neg",
    "seed_k_pos",
    "seed_lambda_pos",
    "seed_mean_pos",
    "seed_k_neg",
    "seed_lambda_neg",
    "seed_mean_neg",
    "lrt_laplace",
    "p_lrt_laplace",
    "vuong_gauss",
    "p_vuong_gauss",
    "p_boot_gauss",
    "p_boot_ks",
    "q_boot_gauss",
    "q_boot_ks",
];

const CLASS_COLUMNS_LEN: usize = 41;

/// Shortest text that parses back to the same f64 (`NaN`, `inf` for the special values).
pub(crate) fn float_into(buf: &mut ryu::Buffer, x: f64) -> &str {
    if x.is_finite() {
        buf.format_finite(x)
    } else if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// A `classes.csv` field, rendered without an allocation where possible.
enum Field {
    Text(String),
    Static(&'static str),
    Flag(bool),
    Float(f64),
}

pub(crate) fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Where the analysed head came from, for the summary and `run.json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InputInfo {
    pub file: String,
    pub tensor: String,
    pub choice: String,
    pub classes: usize,
    pub features: usize,
    pub dtype: String,
    pub transposed: bool,
    /// BLAKE3 of the file holding the tensor (`b3sum`; `aldfit inspect` also prints its sha256).
    pub blake3: String,
    pub labels: Option<String>,
    /// The classes the tensor holds; more than `classes` when `--classes` chose some.
    pub tensor_classes: usize,
    /// `--classes` as given, when it was.
    pub selected: Option<String>,
}

impl InputInfo {
    pub fn of(head: &Head, blake3: String, labels: Option<String>) -> Self {
        InputInfo {
            file: head.path.display().to_string(),
            tensor: head.tensor.clone(),
            choice: head.choice.reason().to_owned(),
            classes: head.classes,
            features: head.features,
            dtype: head.dtype.name().to_owned(),
            transposed: head.transposed,
            blake3,
            labels,
            tensor_classes: head.tensor_classes(),
            selected: None,
        }
    }
}

/// Writes `classes.csv`: blocks of rows are formatted in parallel, a group of blocks at a time,
/// and written in order, so that only one group is ever held.
pub fn write_classes_csv(
    w: &mut dyn std::io::Write,
    analysis: &Analysis,
    labels: &[String],
) -> std::io::Result<()> {
    write_classes_header(w, false)?;
    write_classes_rows(w, analysis, labels, None)
}

/// `classes.csv`'s header; `model`: with `compare`'s leading `model` column.
pub fn write_classes_header(w: &mut dyn std::io::Write, model: bool) -> std::io::Result<()> {
    if model {
        w.write_all(b"model,")?;
    }
    writeln!(w, "{}", CLASS_COLUMNS.join(","))
}

/// `classes.csv`'s rows of `analysis`, each led by `model` when given.
pub fn write_classes_rows(
    w: &mut dyn std::io::Write,
    analysis: &Analysis,
    labels: &[String],
    model: Option<&str>,
) -> std::io::Result<()> {
    use rayon::prelude::*;
    const BLOCK: usize = 128;
    const GROUP: usize = 64 * BLOCK;
    let boot = analysis.bootstrap.as_ref();
    for (g, group) in analysis.classes.chunks(GROUP).enumerate() {
        let blocks: Vec<Vec<u8>> = group
            .par_chunks(BLOCK)
            .enumerate()
            .map(|(i, cls)| {
                let first = g * GROUP + i * BLOCK;
                csv_block(cls, first, (analysis, labels, model), boot)
            })
            .collect::<Result<_>>()
            .map_err(std::io::Error::other)?;
        for b in blocks {
            w.write_all(&b)?;
        }
    }
    Ok(())
}

fn csv_block(
    classes: &[ClassResult],
    first: usize,
    (analysis, labels, model): (&Analysis, &[String], Option<&str>),
    boot: Option<&crate::bootstrap::Bootstrap>,
) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Invalid(format!("cannot render classes.csv: {e}"));
    let mut num = ryu::Buffer::new();
    for (k, c) in classes.iter().enumerate() {
        let k = first + k;
        if let Some(m) = model {
            w.write_field(m).map_err(csv_err)?;
        }
        let fields = class_fields((k, analysis.class_id(k)), c, labels, boot);
        for field in &fields {
            let bytes: &[u8] = match field {
                Field::Text(s) => s.as_bytes(),
                Field::Static(s) => s.as_bytes(),
                Field::Flag(b) => flag(*b).as_bytes(),
                Field::Float(x) => float_into(&mut num, *x).as_bytes(),
            };
            w.write_field(bytes).map_err(csv_err)?;
        }
        w.write_record(std::iter::empty::<&[u8]>())
            .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Invalid(format!("cannot render classes.csv: {e}")))
}

/// One `classes.csv` column's values, typed: what the Python module hands back as arrays.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Flag(Vec<bool>),
    Text(Vec<String>),
}

/// The columns of `classes.csv` that hold counts.
const INT_COLUMNS: [&str; 5] = ["class", "n", "zeros", "seed_n_pos", "seed_n_neg"];

/// `classes.csv` as columns, from the same fields the file is written from (so the numbers are
/// the file's to the last bit).
pub fn class_columns(analysis: &Analysis, labels: &[String]) -> Vec<(&'static str, Column)> {
    let boot = analysis.bootstrap.as_ref();
    let n = analysis.classes.len();
    let mut cols: Vec<(&'static str, Column)> = Vec::with_capacity(CLASS_COLUMNS_LEN);
    for (k, c) in analysis.classes.iter().enumerate() {
        let fields = class_fields((k, analysis.class_id(k)), c, labels, boot);
        for (j, field) in fields.into_iter().enumerate() {
            let name = CLASS_COLUMNS[j];
            if cols.len() <= j {
                cols.push((
                    name,
                    match &field {
                        Field::Float(_) => Column::Float(Vec::with_capacity(n)),
                        Field::Flag(_) => Column::Flag(Vec::with_capacity(n)),
                        Field::Text(_) if INT_COLUMNS.contains(&name) => {
                            Column::Int(Vec::with_capacity(n))
                        }
                        _ => Column::Text(Vec::with_capacity(n)),
                    },
                ));
            }
            match (&mut cols[j].1, field) {
                (Column::Float(v), Field::Float(x)) => v.push(x),
                (Column::Flag(v), Field::Flag(b)) => v.push(b),
                (Column::Int(v), Field::Text(t)) => v.push(t.parse().unwrap_or(-1)),
                (Column::Text(v), Field::Text(t)) => v.push(t),
                (Column::Text(v), Field::Static(t)) => v.push(t.to_owned()),
                _ => unreachable!("a column's fields are of one kind"),
            }
        }
    }
    cols
}

/// One class's `classes.csv` fields, in the order of [`CLASS_COLUMNS`]; `k` is its result's
/// index, `id` its class in the tensor.
fn class_fields(
    (k, id): (usize, usize),
    c: &ClassResult,
    labels: &[String],
    boot: Option<&crate::bootstrap::Bootstrap>,
) -> [Field; CLASS_COLUMNS_LEN] {
    let (f, b) = (&c.stats.fit, &c.stats.baselines);
    let (sp, sn) = (&c.line_pos, &c.line_neg);
    let text = |s: String| Field::Text(s);
    let (lrt, p_lrt) = c.lrt_laplace();
    let (vuong, p_vuong) = c.vuong_gauss();
    let boot_of = |v: fn(&crate::bootstrap::HeadTests) -> &Vec<f64>| {
        boot.and_then(|b| v(&b.observed).get(k).copied())
            .unwrap_or(f64::NAN)
    };
    [
        text(id.to_string()),
        text(labels.get(id).cloned().unwrap_or_default()),
        text(c.n.to_string()),
        text(c.zeros.to_string()),
        Field::Float(f.params.loc),
        Field::Float(f.params.scale),
        Field::Float(f.params.kappa),
        Field::Float(f.nll),
        Field::Flag(f.boundary),
        Field::Flag(f.degenerate),
        Field::Float(c.stats.ks),
        Field::Float(b.nll_gauss),
        Field::Float(b.nll_laplace),
        Field::Static(c.aic_best().map_or("NaN", Model::name)),
        Field::Float(sp.slope),
        Field::Float(sp.intercept),
        Field::Float(sp.r2),
        Field::Float(sn.slope),
        Field::Float(sn.intercept),
        Field::Float(sn.r2),
        Field::Flag(c.nonfinite),
        Field::Float(b.mean),
        Field::Float(b.std()),
        Field::Float(b.median),
        Field::Float(b.mad),
        text(sp.count.to_string()),
        text(sn.count.to_string()),
        Field::Float(sp.k()),
        Field::Float(sp.lambda()),
        Field::Float(sp.mean()),
        Field::Float(sn.k()),
        Field::Float(sn.lambda()),
        Field::Float(sn.mean()),
        Field::Float(lrt),
        Field::Float(p_lrt),
        Field::Float(vuong),
        Field::Float(p_vuong),
        Field::Float(boot_of(|t| &t.p_gauss)),
        Field::Float(boot_of(|t| &t.p_ks)),
        Field::Float(boot_of(|t| &t.q_gauss)),
        Field::Float(boot_of(|t| &t.q_ks)),
    ]
}

/// Linear-interpolated quantile (numpy's default) of the finite values; NaN when there are none.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < v.len() {
        v[i] + frac * (v[i + 1] - v[i])
    } else {
        v[i]
    }
}

fn fmt4(x: f64) -> String {
    if x.is_finite() {
        if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
            format!("{x:.4e}")
        } else {
            format!("{x:.4}")
        }
    } else {
        "NaN".into()
    }
}

/// Counts of AIC winners, in the order ALD, Gaussian, Laplace, then "none".
pub fn aic_wins(classes: &[ClassResult]) -> [usize; 4] {
    let mut wins = [0usize; 4];
    for c in classes {
        match c.aic_best() {
            Some(Model::Ald) => wins[0] += 1,
            Some(Model::Gauss) => wins[1] += 1,
            Some(Model::Laplace) => wins[2] += 1,
            None => wins[3] += 1,
        }
    }
    wins
}

/// Class indices of fitted rows, best ALD fit (smallest KS) first.
pub fn ranked_by_ks(classes: &[ClassResult]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..classes.len())
        .filter(|&k| classes[k].stats.ks.is_finite())
        .collect();
    idx.sort_by(|&a, &b| {
        classes[a]
            .stats
            .ks
            .total_cmp(&classes[b].stats.ks)
            .then(a.cmp(&b))
    });
    idx
}

fn flagged(classes: &[ClassResult], pred: impl Fn(&ClassResult) -> bool) -> Vec<usize> {
    (0..classes.len()).filter(|&k| pred(&classes[k])).collect()
}

/// Labels are cut in tables; the CSV files keep them whole.
fn label_of(labels: &[String], k: usize) -> String {
    labels
        .get(k)
        .map(|l| crate::text::markdown(l, 60))
        .unwrap_or_default()
}

/// The human summary, also printed by `fit`.
pub fn summary_md(analysis: &Analysis, input: &InputInfo, labels: &[String], top: usize) -> String {
    let mut s = summary_header(analysis, input);
    match &analysis.verdict {
        Ok(v) => s.push_str(&crate::verdict::markdown(v)),
        Err(why) => s.push_str(&crate::verdict::markdown_off(why)),
    }
    let cls = &analysis.classes;
    summary_aic_wins(&mut s, cls);
    summary_overall(&mut s, cls);
    summary_joint_fit(&mut s, analysis.pooled.as_ref());
    let ranked = ranked_by_ks(cls);
    let best = "Classes that fit the ALD best (smallest KS)";
    let names = (analysis, labels);
    summary_ranked(&mut s, best, names, &mut ranked.iter().take(top));
    let worst = "Classes that fit the ALD worst (largest KS)";
    summary_ranked(&mut s, worst, names, &mut ranked.iter().rev().take(top));
    summary_flags(&mut s, names);
    let _ = writeln!(s, "\n## Time\n");
    let _ = writeln!(s, "| stage | seconds |\n|---|---:|");
    for (stage, t) in &analysis.timings.0 {
        let _ = writeln!(s, "| {stage} | {t:.4} |");
    }
    let _ = writeln!(s, "| total | {:.4} |", analysis.timings.total());
    s
}

/// The title and what was analysed, where and by which version.
fn summary_header(analysis: &Analysis, input: &InputInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# aldfit summary\n");
    let transposed = if input.transposed {
        ", read transposed"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "- head: `{}`, tensor `{}` ({}){transposed}",
        crate::text::markdown(&input.file, 200),
        crate::text::markdown(&input.tensor, 200),
        input.choice
    );
    let _ = writeln!(
        s,
        "- shape: {} classes × {} features, {}; blake3 `{}`",
        input.tensor_classes, input.features, input.dtype, input.blake3
    );
    if let Some(list) = &input.selected {
        let _ = writeln!(
            s,
            "- analysed: {} of the {} classes (`--classes {}`)",
            input.classes,
            input.tensor_classes,
            crate::text::markdown(list, 200)
        );
    }
    if let Some(l) = &input.labels {
        let _ = writeln!(s, "- labels: `{}`", crate::text::markdown(l, 200));
    }
    let b = &analysis.backend;
    let chunks = analysis.chunks;
    let plural = if chunks == 1 { "" } else { "s" };
    let _ = writeln!(
        s,
        "- backend: {} on {} ({chunks} chunk{plural})",
        b.name, b.device
    );
    let _ = writeln!(s, "- aldfit {}\n", env!("CARGO_PKG_VERSION"));
    s
}

fn summary_aic_wins(s: &mut String, cls: &[ClassResult]) {
    let wins = aic_wins(cls);
    let pct = |k: usize| 100.0 * k as f64 / cls.len().max(1) as f64;
    let _ = writeln!(s, "## Which model fits each class best (AIC)\n");
    let _ = writeln!(s, "| model | classes | share |\n|---|---:|---:|");
    let names = [
        "ALD (3 params)",
        "Gaussian (2)",
        "Laplace (2)",
        "none (degenerate or skipped)",
    ];
    for (name, k) in names.iter().zip(wins) {
        if k > 0 || !name.starts_with("none") {
            let _ = writeln!(s, "| {name} | {k} | {:.1} % |", pct(k));
        }
    }
}

fn summary_overall(s: &mut String, cls: &[ClassResult]) {
    let col = |f: &dyn Fn(&ClassResult) -> f64| -> Vec<f64> { cls.iter().map(f).collect() };
    let rows: [(&str, Vec<f64>); 6] = [
        ("κ (kappa)", col(&|c| c.stats.fit.params.kappa)),
        ("scale s", col(&|c| c.stats.fit.params.scale)),
        ("KS distance", col(&|c| c.stats.ks)),
        ("AIC(ALD) − best other AIC", col(&|c| aic_margin(c))),
        ("seed R² (positive part)", col(&|c| c.line_pos.r2)),
        ("seed R² (negative part)", col(&|c| c.line_neg.r2)),
    ];
    let _ = writeln!(s, "\n## Over all classes\n");
    let _ = writeln!(
        s,
        "| statistic | median | 5th pct | 95th pct |\n|---|---:|---:|---:|"
    );
    for (name, v) in &rows {
        let q = |p| fmt4(quantile(v, p));
        let _ = writeln!(s, "| {name} | {} | {} | {} |", q(0.5), q(0.05), q(0.95));
    }
}

fn summary_joint_fit(s: &mut String, pooled: Option<&(StudyLine, StudyLine)>) {
    let Some((p, q)) = pooled else {
        let _ = writeln!(
            s,
            "\n(The study's joint fit over all weights pooled was not run; `--pooled on` runs it.)"
        );
        return;
    };
    let _ = writeln!(
        s,
        "\n## The study's joint fit (all weights pooled, docs/DESIGN.md 2.4)\n"
    );
    let _ = writeln!(
        s,
        "| part | values | slope a | intercept b | R² | k | λ | mean |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, l) in [("positive", p), ("negative", q)] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            l.count,
            fmt4(l.slope),
            fmt4(l.intercept),
            fmt4(l.r2),
            fmt4(l.k()),
            fmt4(l.lambda()),
            fmt4(l.mean())
        );
    }
}

fn summary_ranked(
    s: &mut String,
    title: &str,
    (analysis, labels): (&Analysis, &[String]),
    ks: &mut dyn Iterator<Item = &usize>,
) {
    let cls = &analysis.classes;
    let _ = writeln!(s, "\n## {title}\n");
    let _ = writeln!(
        s,
        "| class | label | KS | κ | loc | scale | AIC best |\n|---:|---|---:|---:|---:|---:|---|"
    );
    for &k in ks {
        let c = &cls[k];
        let p = c.stats.fit.params;
        let id = analysis.class_id(k);
        let _ = writeln!(
            s,
            "| {id} | {} | {} | {} | {} | {} | {} |",
            label_of(labels, id),
            fmt4(c.stats.ks),
            fmt4(p.kappa),
            fmt4(p.loc),
            fmt4(p.scale),
            c.aic_best().map_or("none", Model::name)
        );
    }
}

fn summary_flags(s: &mut String, (analysis, labels): (&Analysis, &[String])) {
    let cls = &analysis.classes;
    let _ = writeln!(s, "\n## Flagged rows\n");
    let flags = [
        (
            "boundary (an end point beats every interior μ: one-sided)",
            flagged(cls, |c| c.stats.fit.boundary),
        ),
        (
            "degenerate (fewer than 3 distinct values)",
            flagged(cls, |c| c.stats.fit.degenerate),
        ),
        ("non-finite (skipped)", flagged(cls, |c| c.nonfinite)),
        ("with exact zeros", flagged(cls, |c| c.zeros > 0)),
    ];
    for (name, ks) in &flags {
        let list: Vec<String> = ks
            .iter()
            .take(10)
            .map(|&k| analysis.class_id(k))
            .map(|k| match labels.get(k) {
                Some(_) => {
                    let label = crate::text::markdown(&labels[k], 40);
                    format!("{k} ({label})")
                }
                None => k.to_string(),
            })
            .collect();
        let more = if ks.len() > 10 { ", …" } else { "" };
        let shown = if ks.is_empty() {
            String::new()
        } else {
            format!(" — {}{more}", list.join(", "))
        };
        let _ = writeln!(s, "- {name}: {}{shown}", ks.len());
    }
}

/// How far the ALD is from winning: AIC(ALD) minus the better of the two alternatives.
pub fn aic_margin(c: &ClassResult) -> f64 {
    let b = &c.stats.baselines;
    let other = crate::ald::aic(Model::Gauss, b.nll_gauss)
        .min(crate::ald::aic(Model::Laplace, b.nll_laplace));
    crate::ald::aic(Model::Ald, c.stats.fit.nll) - other
}

fn line_json(l: &StudyLine) -> serde_json::Value {
    let num = |x: f64| {
        if x.is_finite() {
            json!(x)
        } else {
            serde_json::Value::Null
        }
    };
    json!({
        "count": l.count, "slope": num(l.slope), "intercept": num(l.intercept), "r2": num(l.r2),
        "k": num(l.k()), "lambda": num(l.lambda()), "mean": num(l.mean()),
    })
}

/// The machine-readable record of a run.
pub fn run_json(
    analysis: &Analysis,
    input: &InputInfo,
    options: serde_json::Value,
) -> serde_json::Value {
    let cls = &analysis.classes;
    let wins = aic_wins(cls);
    let count = |p: &dyn Fn(&ClassResult) -> bool| cls.iter().filter(|c| p(c)).count();
    let timings: serde_json::Map<String, serde_json::Value> = analysis
        .timings
        .0
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "aldfit_version": env!("CARGO_PKG_VERSION"),
        "backend": analysis.backend,
        "chunks": analysis.chunks,
        "options": options,
        "input": input,
        "timings_s": timings,
        "classes": cls.len(),
        "aic_wins": { "ald": wins[0], "gauss": wins[1], "laplace": wins[2], "none": wins[3] },
        "flags": {
            "boundary": count(&|c| c.stats.fit.boundary),
            "degenerate": count(&|c| c.stats.fit.degenerate),
            "nonfinite": count(&|c| c.nonfinite),
            "with_zeros": count(&|c| c.zeros > 0),
        },
        "verdict": match &analysis.verdict {
            Ok(v) => json!(v),
            Err(why) => json!({ "off": why }),
        },
        "bootstrap": analysis.bootstrap.as_ref().map(|b| json!({
            "replicates": b.replicates,
            "seed": b.seed,
            "values": b.values,
            "seconds": b.seconds,
            "values_per_second": b.values as f64 / b.seconds.max(1e-9),
        })),
        "pooled_seed": analysis.pooled.as_ref().map(|(p, n)| json!({"positive": line_json(p), "negative": line_json(n)})),
    })
}

/// What a command produced: files rendered in memory, the summary and the run record, saved
/// together by [`save`] (the one writer) into the run's [`OutputSet`], which already holds the
/// plots drawn during the run.
#[derive(Debug)]
pub struct Outputs {
    pub set: OutputSet,
    pub summary: String,
    pub run: serde_json::Value,
    /// The names to report as written (plots included).
    pub written: Vec<String>,
}

impl Outputs {
    pub fn new(set: OutputSet, summary: String, run: serde_json::Value) -> Self {
        Outputs {
            set,
            summary,
            run,
            written: Vec::new(),
        }
    }

    /// Writes `name` into the set now, as `fill` renders it (see [`OutputSet::write_with`]).
    fn add(
        &mut self,
        name: &str,
        fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<()> {
        self.set.write_with(name, fill)?;
        self.written.push(name.to_owned());
        Ok(())
    }

    /// Records the whole run's wall time in `run.json`.
    pub fn set_wall(&mut self, seconds: f64) {
        self.run["wall_s"] = json!(seconds);
    }

    /// `dir/{a,b,…}`: what [`save`] writes and the plots beside it.
    pub fn listing(&self) -> String {
        let mut names = self.written.clone();
        names.extend(["summary.md".to_owned(), "run.json".to_owned()]);
        format!("{}/{{{}}}", self.set.target().display(), names.join(","))
    }
}

/// Writes every output of a command into its set and swaps the set in as `--out`; returns the
/// listing of what was written.
pub fn save(out: Outputs) -> Result<String> {
    let listing = out.listing();
    let run = serde_json::to_string_pretty(&out.run)
        .map_err(|e| Error::Invalid(format!("cannot render run.json: {e}")))?;
    out.set.write("summary.md", out.summary.as_bytes())?;
    out.set.write("run.json", run.as_bytes())?;
    out.set.commit()?;
    Ok(listing)
}

/// `fit`'s outputs: `classes.csv`, the summary and the run record.
pub fn fit_outputs(
    set: OutputSet,
    analysis: &mut Analysis,
    input: &InputInfo,
    labels: &[String],
    top: usize,
    options: serde_json::Value,
) -> Result<Outputs> {
    let t = std::time::Instant::now();
    let mut out = Outputs::new(set, String::new(), serde_json::Value::Null);
    out.add("classes.csv", |w| write_classes_csv(w, analysis, labels))?;
    analysis.timings.add("report", t);
    out.summary = summary_md(analysis, input, labels, top);
    out.run = run_json(analysis, input, options);
    Ok(out)
}

/// Adds the split trees to a command's outputs: their files (written as they were grown, by
/// [`crate::tree::TreeWriter`]), their summary section (with the bootstrap's by-depth nulls when
/// it ran) and their options in `run.json`.
pub fn add_trees(
    out: &mut Outputs,
    trees: &crate::tree::TreeDigest,
    files: &[String],
    opts: &crate::tree::SplitOptions,
    boot: Option<&crate::bootstrap::Bootstrap>,
) {
    out.summary.push('\n');
    out.summary.push_str(&crate::tree::summary_md(
        trees,
        opts,
        boot.and_then(|b| b.trees.as_ref()),
    ));
    out.run["split"] = json!(opts);
    out.run["nodes"] = json!(trees.total_nodes());
    out.written.extend(files.iter().cloned());
}

/// What `split` ran, for its outputs.
pub struct SplitRun<'a> {
    pub input: &'a InputInfo,
    pub backend: &'a crate::backend::BackendInfo,
    pub trees: &'a crate::tree::TreeDigest,
    /// The tree files written.
    pub files: &'a [String],
    pub opts: &'a crate::tree::SplitOptions,
    /// The per-class analysis with the bootstrap and verdict, when the bootstrap ran.
    pub analysis: Option<&'a Analysis>,
    /// Why there is no verdict, when it did not.
    pub off: Option<&'a str>,
    pub seed: u64,
    pub split_s: f64,
    pub bootstrap_s: f64,
}

/// `split`'s outputs: the tree files, a summary (verdict first) and the run record.
pub fn split_outputs(set: OutputSet, r: &SplitRun<'_>) -> Result<Outputs> {
    let input = r.input;
    let mut summary = format!(
        "# aldfit split\n\n- head: `{}`, tensor `{}` ({}); {} classes × {} features, {}; blake3 `{}`\n- backend: {} on {}\n- aldfit {}; split in {:.3} s\n\n",
        crate::text::markdown(&input.file, 200),
        crate::text::markdown(&input.tensor, 200),
        input.choice,
        input.classes,
        input.features,
        input.dtype,
        input.blake3,
        r.backend.name,
        r.backend.device,
        env!("CARGO_PKG_VERSION"),
        r.split_s
    );
    let verdict = r.analysis.and_then(|a| a.verdict.as_ref().ok());
    match (verdict, r.analysis.and_then(|a| a.verdict.as_ref().err())) {
        (Some(v), _) => summary.push_str(&crate::verdict::markdown(v)),
        (None, why) => summary.push_str(&crate::verdict::markdown_off(
            why.map(String::as_str)
                .or(r.off)
                .unwrap_or("the bootstrap did not run"),
        )),
    }
    let run = json!({
        "aldfit_version": env!("CARGO_PKG_VERSION"),
        "backend": r.backend,
        "input": input,
        "timings_s": { "split": r.split_s, "analysis+bootstrap": r.bootstrap_s },
        "seed": r.seed,
        "verdict": match verdict {
            Some(v) => json!(v),
            None => json!({ "off": r.off }),
        },
    });
    let mut out = Outputs::new(set, summary, run);
    add_trees(
        &mut out,
        r.trees,
        r.files,
        r.opts,
        r.analysis.and_then(|a| a.bootstrap.as_ref()),
    );
    Ok(out)
}

/// "class k (label)", the label made printable and cut: titles are shown, never parsed.
pub fn class_title(k: usize, labels: &[String]) -> String {
    match labels.get(k) {
        Some(l) if !l.is_empty() => format!("class {k} ({})", crate::text::short(l, 60)),
        _ => format!("class {k}"),
    }
}

/// The summary's section linking the plots (PNG shown, SVG beside it).
pub fn plot_links(links: &[(String, String)]) -> String {
    let mut s = String::from("\n## Plots\n\n");
    for (what, stem) in links {
        s.push_str(&format!(
            "### {what}\n\n![{what}](plots/{stem}.png)\n\n([SVG](plots/{stem}.svg))\n\n"
        ));
    }
    s
}
