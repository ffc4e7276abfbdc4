//! `aldfit compare`: the per-class analysis (and the calibrated verdict) of several heads on one
//! backend, side by side: `classes.csv` with a leading `model` column, `models.csv` with a row
//! per head, the study's Table 1 from data in `summary.md`, and a picture.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::json;

use crate::analysis::{self, Analysis};
use crate::bootstrap;
use crate::cli::{CompareArgs, HeadArgs};
use crate::commands::{self, Opened, Ui};
use crate::error::Result;
use crate::outset::OutputSet;
use crate::report::{self, InputInfo, Outputs};

/// The columns of `models.csv`, in order.
pub const MODEL_COLUMNS: [&str; 19] = [
    "model",
    "tensor",
    "classes",
    "features",
    "dtype",
    "ald_share",
    "gauss_share",
    "laplace_share",
    "median_kappa",
    "median_ks",
    "median_seed_r2_pos",
    "median_seed_r2_neg",
    "replicates",
    "not_gauss_share",
    "ald_adequate_share",
    "skewed_share",
    "file",
    "blake3",
    "seconds",
];

/// One analysed head.
pub struct Model {
    pub name: String,
    pub input: InputInfo,
    pub analysis: Analysis,
    pub seconds: f64,
}

/// Runs `compare`: every head opened first (a bad one fails before any work), then analysed in
/// turn on one backend, its rows of `classes.csv` written as it ends.
pub fn compare(args: &CompareArgs, ui: &mut dyn Ui) -> Result<Outputs> {
    let start = Instant::now();
    let mut opened = Vec::with_capacity(args.heads.len());
    for path in &args.heads {
        let head = HeadArgs {
            head: Some(path.clone()),
            tensor: None,
            transpose: false,
            labels: None,
        };
        opened.push(commands::open_head(&head, ui)?);
    }
    let names = names(&opened);
    let set = OutputSet::begin(&args.output.out)?;
    let mut backend = commands::open_backend(args.output.backend, ui)?;
    let mut csv = set.create("classes.csv")?;
    csv.write(|w| report::write_classes_header(w, true))?;
    let mut models = Vec::with_capacity(opened.len());
    for (o, name) in opened.into_iter().zip(names) {
        let t = Instant::now();
        // The file's hash in pieces as the analysis reads it, as in `fit`.
        let mut hasher = commands::Hasher::start(&o.head);
        let analysis = analyse(&o, &name, backend.as_mut(), args, &mut hasher, ui)?;
        csv.write(|w| report::write_classes_rows(w, &analysis, &o.labels, Some(&name)))?;
        let input = hasher.input(&o)?;
        models.push(Model {
            name,
            input,
            analysis,
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    csv.finish()?;
    let mut out = Outputs::new(set, summary_md(&models), run_json(args, &models));
    out.written.push("classes.csv".into());
    out.set
        .write_with("models.csv", |w| write_models_csv(w, &models))?;
    out.written.push("models.csv".into());
    let list: Vec<(String, &Analysis)> = models
        .iter()
        .map(|m| (m.name.clone(), &m.analysis))
        .collect();
    crate::plots::compare(&out.set.dir().join("plots"), &list)?;
    out.summary.push_str(&report::plot_links(&[(
        "the models side by side".into(),
        "compare".into(),
    )]));
    out.written.push("plots/".into());
    out.set_wall(start.elapsed().as_secs_f64());
    Ok(out)
}

/// One head's analysis and bootstrap, refused up front when it would not fit in memory.
fn analyse(
    o: &Opened,
    name: &str,
    backend: &mut dyn crate::backend::Backend,
    args: &CompareArgs,
    hasher: &mut commands::Hasher,
    ui: &mut dyn Ui,
) -> Result<Analysis> {
    let head = &o.head;
    let weights = head.classes * head.features;
    let boot = match args.boot.bootstrap {
        crate::cli::Replicates::Count(b) => b > 0,
        crate::cli::Replicates::Auto => {
            let device = bootstrap::Device::of(&backend.info());
            bootstrap::auto_replicates(weights, device) > 0
        }
    };
    commands::check_memory(head, backend, Some(false), boot, None)?;
    ui.note(&format!("{name}: analysing {} classes", head.classes));
    let opts = analysis::Options {
        skip_nonfinite: args.output.skip_nonfinite,
        pooled: false,
    };
    let classes = head.classes;
    let mut a = analysis::analyse(head, &o.labels, backend, &opts, &mut |done| {
        hasher.advance(done);
        ui.progress("fitting", done, classes)
    })?;
    ui.finish();
    commands::run_bootstrap(&mut a, backend, head.features, &args.boot, None, ui)?;
    Ok(a)
}

/// Each head's model name ([`commands::model_name`]); a name taken twice gets ` (2)`, ` (3)`…
fn names(opened: &[Opened]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(opened.len());
    for o in opened {
        let base = commands::model_name(o.arg.as_deref());
        let mut name = base.clone();
        let mut n = 1;
        while out.contains(&name) {
            n += 1;
            name = format!("{base} ({n})");
        }
        out.push(name);
    }
    out
}

/// What `models.csv` and the summary say of one model.
struct Row {
    aic: [f64; 4],
    kappa: f64,
    ks: f64,
    r2: (f64, f64),
    /// Shares of classes: q_boot_gauss < 0.05, q_boot_ks ≥ 0.05, p_lrt_laplace < 0.05.
    verdict: Option<(usize, [f64; 3])>,
}

fn row(m: &Model) -> Row {
    let cls = &m.analysis.classes;
    let wins = report::aic_wins(cls);
    let total = wins.iter().sum::<usize>().max(1) as f64;
    let median = |f: fn(&analysis::ClassResult) -> f64| {
        let v: Vec<f64> = cls.iter().map(f).collect();
        report::quantile(&v, 0.5)
    };
    let verdict = m.analysis.bootstrap.as_ref().map(|b| {
        let t = &b.observed;
        let lrt: Vec<f64> = cls.iter().map(|c| c.lrt_laplace().1).collect();
        (
            b.replicates,
            [
                bootstrap::share(&t.q_gauss, |q| q < 0.05),
                bootstrap::share(&t.q_ks, |q| q >= 0.05),
                bootstrap::share(&lrt, |p| p < 0.05),
            ],
        )
    });
    Row {
        aic: wins.map(|w| w as f64 / total),
        kappa: median(|c| c.stats.fit.params.kappa),
        ks: median(|c| c.stats.ks),
        r2: (median(|c| c.line_pos.r2), median(|c| c.line_neg.r2)),
        verdict,
    }
}

fn write_models_csv(w: &mut dyn std::io::Write, models: &[Model]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(MODEL_COLUMNS)?;
    let mut buf = ryu::Buffer::new();
    let mut num = |x: f64| report::float_into(&mut buf, x).to_owned();
    for m in models {
        let r = row(m);
        let i = &m.input;
        let (b, v) = r.verdict.unwrap_or((0, [f64::NAN; 3]));
        csv.write_record([
            m.name.clone(),
            i.tensor.clone(),
            i.classes.to_string(),
            i.features.to_string(),
            i.dtype.clone(),
            num(r.aic[0]),
            num(r.aic[1]),
            num(r.aic[2]),
            num(r.kappa),
            num(r.ks),
            num(r.r2.0),
            num(r.r2.1),
            b.to_string(),
            num(v[0]),
            num(v[1]),
            num(v[2]),
            i.file.clone(),
            i.blake3.clone(),
            num(m.seconds),
        ])?;
    }
    csv.flush()
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1} %", 100.0 * x)
    } else {
        "—".into()
    }
}

fn num4(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "—".into()
    }
}

/// The summary: the models side by side (the study's Table 1, from data, with what the
/// bootstrap says), then each model's claims beside the others'.
pub fn summary_md(models: &[Model]) -> String {
    let mut s = String::from("# aldfit compare\n\n");
    if let Some(m) = models.first() {
        let b = &m.analysis.backend;
        let _ = writeln!(
            s,
            "{} models on {} ({}); aldfit {}.\n",
            models.len(),
            b.name,
            b.device,
            env!("CARGO_PKG_VERSION")
        );
    }
    s.push_str(
        "## The models side by side\n\nPer model, over its classes: which law wins by AIC, the \
         medians of the fitted κ, of the KS distance to the fitted ALD and of the study's seed \
         R², and, with the bootstrap, the share of classes whose rows are not Gaussian \
         (`q_boot_gauss` < 0.05), whose fitted ALD is adequate (`q_boot_ks` ≥ 0.05) and that are \
         skewed (the LRT rejects κ = 1, `p_lrt_laplace` < 0.05). A share reads against its \
         calibration: on pure noise the first two are near 0 %, on ALD rows near 0 % and 100 %.\n\n",
    );
    s.push_str(
        "| model | classes × features | ALD wins | Gaussian wins | Laplace wins | median κ | \
         median KS | median seed R² + | median seed R² − | B | not Gaussian | ALD adequate | \
         skewed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in models {
        let r = row(m);
        let (b, v) = r.verdict.unwrap_or((0, [f64::NAN; 3]));
        let _ = writeln!(
            s,
            "| {} | {} × {} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            crate::text::markdown(&m.name, 60),
            m.input.classes,
            m.input.features,
            m.input.dtype,
            pct(r.aic[0]),
            pct(r.aic[1]),
            pct(r.aic[2]),
            num4(r.kappa),
            num4(r.ks),
            num4(r.r2.0),
            num4(r.r2.1),
            if b > 0 { b.to_string() } else { "off".into() },
            pct(v[0]),
            pct(v[1]),
            pct(v[2]),
        );
    }
    s.push_str(&claims_md(models));
    s.push_str("\n## The heads\n\n");
    for m in models {
        let i = &m.input;
        let _ = writeln!(
            s,
            "- {}: `{}`, tensor `{}` ({}), blake3 `{}`{}; {:.2} s",
            crate::text::markdown(&m.name, 60),
            crate::text::markdown(&i.file, 200),
            crate::text::markdown(&i.tensor, 200),
            i.choice,
            i.blake3,
            i.labels
                .as_ref()
                .map(|l| format!(", labels from `{}`", crate::text::markdown(l, 200)))
                .unwrap_or_default(),
            m.seconds
        );
    }
    s
}

/// Every claim of the verdicts, a row each, with each model's observed value and outcome.
fn claims_md(models: &[Model]) -> String {
    let verdicts: Vec<Option<&crate::verdict::Verdict>> = models
        .iter()
        .map(|m| m.analysis.verdict.as_ref().ok())
        .collect();
    let mut claims: Vec<(&str, bool)> = Vec::new();
    for c in verdicts.iter().flatten().flat_map(|v| &v.claims) {
        if !claims.iter().any(|(k, _)| *k == c.claim) {
            claims.push((&c.claim, c.percent));
        }
    }
    if claims.is_empty() {
        return "\nNo verdicts: the bootstrap did not run (pass `--bootstrap 99`).\n".into();
    }
    let mut s = String::from(
        "\n## The claims, model by model\n\nEach model's observed value and the outcome its own \
         nulls give (see a single model's `aldfit fit` summary for the nulls).\n\n| claim |",
    );
    for m in models {
        let _ = write!(s, " {} |", crate::text::markdown(&m.name, 30));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(models.len()));
    s.push('\n');
    for (claim, percent) in claims {
        let _ = write!(s, "| {claim} |");
        for v in &verdicts {
            let cell = v
                .and_then(|v| v.claims.iter().find(|c| c.claim == claim))
                .map(|c| format!("{} ({})", c.observed.render(percent), c.outcome))
                .unwrap_or_else(|| "—".into());
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

fn run_json(args: &CompareArgs, models: &[Model]) -> serde_json::Value {
    let per: Vec<serde_json::Value> = models
        .iter()
        .map(|m| {
            let mut run = report::run_json(&m.analysis, &m.input, json!(null));
            run["model"] = json!(m.name);
            run["seconds"] = json!(m.seconds);
            run
        })
        .collect();
    json!({
        "aldfit_version": env!("CARGO_PKG_VERSION"),
        "command": "compare",
        "backend": models.first().map(|m| json!(m.analysis.backend)),
        "options": {
            "backend": args.output.backend,
            "skip_nonfinite": args.output.skip_nonfinite,
            "seed": args.boot.seed,
            "threads": rayon::current_num_threads(),
        },
        "models": per,
    })
}
