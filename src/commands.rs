//! What each command does, as library functions: `src/main.rs` parses the arguments
//! (`crate::cli`), calls one of these, saves what comes back with [`report::save`] and prints it.
//! Messages and progress go through [`Ui`], so that the library never writes to the terminal
//! itself.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::analysis::{self, Analysis, Options};
use crate::backend::{self, Backend, BackendKind};
use crate::bootstrap;
use crate::cli::{BootstrapArgs, FitArgs, HeadArgs, PlotArgs, Pooled, Replicates, SplitCommand};
use crate::error::{Error, Result};
use crate::head::{self, Head};
use crate::outset::OutputSet;
use crate::plots;
use crate::report::{self, InputInfo, Outputs};
use crate::tree::{self, SplitOptions, TreeDigest};

/// Where a command's messages and progress go.
pub trait Ui {
    /// One line for the user (on stderr in the CLI).
    fn note(&mut self, msg: &str);
    /// `done` of `total` units of the stage `stage` are finished.
    fn progress(&mut self, stage: &'static str, done: usize, total: usize);
    /// The current stage is over.
    fn finish(&mut self) {}
}

/// A head with its labels, and where the labels came from.
pub struct Opened {
    pub head: Head,
    /// By the tensor's class (all of them, also with `--classes`).
    pub labels: Vec<String>,
    pub labels_from: Option<String>,
    /// `--classes` as given, once the head is restricted to it.
    pub selected: Option<String>,
    /// HEAD as given (none: the bundled head).
    pub arg: Option<PathBuf>,
}

/// Opens the head and its labels; says which tensor was chosen and why.
pub fn open_head(args: &HeadArgs, ui: &mut dyn Ui) -> Result<Opened> {
    let (head, mut labels, mut labels_from) = match &args.head {
        None => {
            if args.tensor.is_some() || args.transpose {
                return Err(Error::Invalid(
                    "--tensor and --transpose need a HEAD file".into(),
                ));
            }
            let (h, l) = Head::bundled()?;
            let from = Some("assets/imagenet_classes.txt (bundled)".to_owned());
            (h, l, from)
        }
        Some(path) => (
            Head::open(path, args.tensor.as_deref(), args.transpose)?,
            Vec::new(),
            None,
        ),
    };
    if let Some((l, from)) = find_labels(args, &head)? {
        (labels, labels_from) = (l, Some(from));
    }
    ui.note(&format!(
        "{} tensor `{}` ({}): {} classes × {} features, {}{}",
        head.path.display(),
        head.tensor,
        head.choice.reason(),
        head.classes,
        head.features,
        head.dtype.name(),
        if head.transposed {
            ", read transposed"
        } else {
            ""
        }
    ));
    if let Some(hint) = head::orientation_hint(&head) {
        ui.note(&hint);
    }
    if let Some(from) = &labels_from {
        ui.note(&format!("labels from {from}"));
    }
    Ok(Opened {
        head,
        labels,
        labels_from,
        selected: None,
        arg: args.head.clone(),
    })
}

/// The labels of `head`: `--labels`, else a file beside HEAD, else the file's own vocabulary,
/// else a Hugging Face folder's; with where they came from.
fn find_labels(args: &HeadArgs, head: &Head) -> Result<Option<(Vec<String>, String)>> {
    let label_path = args
        .labels
        .clone()
        .or_else(|| args.head.as_deref().and_then(head::labels_beside));
    if let Some(p) = label_path {
        return match head::read_labels(&p, head.classes) {
            Ok(l) => Ok(Some((l, p.display().to_string()))),
            Err(e)
                if head.features != head.classes
                    && head::read_labels(&p, head.features).is_ok() =>
            {
                Err(Error::Invalid(format!(
                    "{e}; they are as many as the head's {} features: if the matrix is stored \
                     [features, classes], {} --transpose",
                    head.features,
                    if args.transpose { "drop" } else { "pass" }
                )))
            }
            Err(e) => Err(e),
        };
    }
    if let Some(tokens) = head
        .embedded_labels
        .as_ref()
        .filter(|t| t.len() <= head.classes)
    {
        // A GGUF vocabulary, by token id; rows past it (padding) stay unnamed.
        let mut labels = tokens.to_vec();
        labels.resize(head.classes, String::new());
        let from = format!("{} (tokenizer.ggml.tokens)", head.path.display());
        return Ok(Some((labels, from)));
    }
    if args.head.is_some() {
        if let Some((l, from)) = head::hf::labels_beside(&head.path, head.classes)? {
            return Ok(Some((l, from.display().to_string())));
        }
    }
    Ok(None)
}

/// Restricts the head to the classes `--classes` names, and says how many.
pub fn select_classes(mut opened: Opened, items: &[String], ui: &mut dyn Ui) -> Result<Opened> {
    if items.is_empty() {
        return Ok(opened);
    }
    let all = opened.head.classes;
    let ids = crate::select::classes(items, &opened.labels, all)?;
    ui.note(&format!("--classes: {} of {all} classes", ids.len()));
    opened.head = opened.head.select(ids)?;
    opened.selected = Some(items.join(","));
    Ok(opened)
}

/// Creates the backend asked for and says which it is; when `auto` ends on the CPU, also why it
/// passed over each GPU backend.
pub fn open_backend(kind: BackendKind, ui: &mut dyn Ui) -> Result<Box<dyn Backend>> {
    let mut passed_over = Vec::new();
    let backend = backend::create_noting(kind, &mut |why| passed_over.push(why))?;
    let info = backend.info();
    ui.note(&format!("backend {} on {}", info.name, info.device));
    if info.name == "cpu" {
        for why in &passed_over {
            ui.note(&format!("(auto) {why}"));
        }
    }
    Ok(backend)
}

/// The file's BLAKE3, hashed in pieces on the analysis' threads as it reads the file
/// ([`advance`](Self::advance) after each chunk of rows), the rest at the end: it never
/// competes with the analysis for a core (see `filehash.rs`).
pub(crate) struct Hasher {
    head: Head,
    pieces: crate::filehash::PieceHasher,
    /// Spent in `advance`.
    pub(crate) seconds: f64,
}

impl Hasher {
    pub(crate) fn start(head: &Head) -> Self {
        Hasher {
            head: head.clone(),
            pieces: Default::default(),
            seconds: 0.0,
        }
    }

    /// The analysis has read the head's first `rows` rows: hashes the file below them.
    pub(crate) fn advance(&mut self, rows: usize) {
        if let Some(end) = self.head.stored_end(rows) {
            let t = Instant::now();
            self.pieces.advance(self.head.file_bytes(), end);
            self.seconds += t.elapsed().as_secs_f64();
        }
    }

    pub(crate) fn input(self, opened: &Opened) -> Result<InputInfo> {
        let blake3 = self
            .pieces
            .finish(self.head.file_bytes())
            .to_hex()
            .to_string();
        let mut info = InputInfo::of(&opened.head, blake3, opened.labels_from.clone());
        info.selected = opened.selected.clone();
        Ok(info)
    }
}

/// `aldfit fit`: the per-class analysis, with split trees, the bootstrap and plots as asked.
pub fn fit(args: &FitArgs, ui: &mut dyn Ui) -> Result<Outputs> {
    let start = Instant::now();
    let opened = open_head(&args.run.head, ui)?;
    Ok(fit_opened(opened, args, ui, start)?.0)
}

/// `fit` on a head already opened (the Python module's arrays); also returns the analysis,
/// every class's numbers, which the module hands back as arrays.
pub fn fit_opened(
    opened: Opened,
    args: &FitArgs,
    ui: &mut dyn Ui,
    start: Instant,
) -> Result<(Outputs, Analysis)> {
    let opened = select_classes(opened, &args.run.classes, ui)?;
    let (head, labels) = (&opened.head, &opened.labels);
    let plotted = plot_choice(&args.plots, labels, head)?;
    let set = OutputSet::begin(&args.run.output.out)?;
    let mut backend = open_backend(args.run.output.backend, ui)?;
    let pooled = pooled_runs(args.pooled, head.classes * head.features, ui);
    let split = args
        .split
        .then(|| args.split_args.options(args.run.output.skip_nonfinite));
    let boot = bootstrap_runs(&args.boot, backend.as_ref(), head.classes * head.features);
    check_memory(head, backend.as_ref(), Some(pooled), boot, split.as_ref())?;
    let mut hasher = Hasher::start(head);
    let opts = Options {
        skip_nonfinite: args.run.output.skip_nonfinite,
        pooled,
    };
    let classes = head.classes;
    let mut analysis = analysis::analyse(head, labels, backend.as_mut(), &opts, &mut |done| {
        hasher.advance(done);
        ui.progress("fitting", done, classes)
    })?;
    ui.finish();
    analysis
        .timings
        .add_seconds("hash (read pass)", hasher.seconds);
    let trees = if let Some(split) = split {
        let t = Instant::now();
        let json = args.split_args.tree_json;
        let (files, digest) = grow_trees(&opened, backend.as_mut(), &split, &set, json, ui)?;
        analysis.timings.add("split", t);
        Some((digest, files, split))
    } else {
        None
    };
    let t = Instant::now();
    let split_ref = trees.as_ref().map(|(t, _, o)| (t, o));
    run_bootstrap(
        &mut analysis,
        backend.as_mut(),
        head.features,
        &args.boot,
        split_ref,
        ui,
    )?;
    analysis.timings.add("bootstrap", t);
    let t = Instant::now();
    let input = hasher.input(&opened)?;
    analysis.timings.add("hash (rest)", t);

    let options = fit_options(args, &analysis, pooled);
    let mut out = report::fit_outputs(set, &mut analysis, &input, labels, args.top, options)?;
    if let Some((trees, files, split)) = &trees {
        report::add_trees(&mut out, trees, files, split, analysis.bootstrap.as_ref());
    }
    if args.plots.plots {
        let t = Instant::now();
        let links = fit_plots(
            out.set.dir(),
            &args.plots,
            &plotted,
            &opened,
            &analysis,
            trees.as_ref().map(|(_, _, o)| o),
            backend.as_mut(),
        )?;
        out.summary.push_str(&report::plot_links(&links));
        out.written.push("plots/".into());
        analysis.timings.add("plots", t);
    }
    out.set_wall(start.elapsed().as_secs_f64());
    Ok((out, analysis))
}

/// Whether the pooled joint fit runs (`--pooled auto` skips it for big heads, and says so).
fn pooled_runs(pooled: Pooled, weights: usize, ui: &mut dyn Ui) -> bool {
    let max = crate::cli::POOLED_AUTO_MAX;
    match pooled {
        Pooled::On => true,
        Pooled::Off => false,
        Pooled::Auto if weights <= max => true,
        Pooled::Auto => {
            ui.note(&format!(
                "skipping the pooled joint fit ({weights} weights > {max}); pass --pooled on to \
                 run it"
            ));
            false
        }
    }
}

/// The options `run.json` records for `fit`.
fn fit_options(args: &FitArgs, analysis: &Analysis, pooled: bool) -> serde_json::Value {
    serde_json::json!({
        "backend": args.run.output.backend,
        "skip_nonfinite": args.run.output.skip_nonfinite,
        "pooled": args.pooled,
        "pooled_ran": pooled,
        "threads": rayon::current_num_threads(),
        "transpose": args.run.head.transpose,
        "tensor": args.run.head.tensor,
        "bootstrap": analysis.bootstrap.as_ref().map_or(0, |b| b.replicates),
        "seed": args.boot.seed,
    })
}

/// Refuses a run whose results (and trees) would not fit in memory, before any is allocated.
/// `analysis`: whether the per-class analysis runs, and with the pooled fit.
pub(crate) fn check_memory(
    head: &Head,
    backend: &dyn Backend,
    analysis: Option<bool>,
    boot: bool,
    split: Option<&SplitOptions>,
) -> Result<()> {
    let (classes, cols) = (head.classes, head.features);
    let chunk = analysis::chunk_rows(backend, classes, cols);
    let pooled = analysis == Some(true);
    let mut need = match analysis {
        Some(pooled) => crate::memory::analysis_bytes(classes, cols, chunk, pooled, boot),
        None => 0,
    };
    let mut advice = Vec::new();
    if pooled {
        advice.push("pass --pooled off");
    }
    if let Some(opts) = split {
        need = need.saturating_add(crate::memory::tree_bytes(classes, cols, chunk, opts));
        advice.push("raise --min-size, lower --max-depth or use --shape chains for smaller trees");
    }
    advice.push("or run on a machine with more memory");
    crate::memory::check(
        need,
        &format!("analysing {classes} classes × {cols} features"),
        &advice.join("; "),
    )
}

/// Grows every class's split tree, chunk by chunk, writing the tree files into `set` as each
/// chunk ends; returns the files written and the digest the summary and verdict need.
fn grow_trees(
    opened: &Opened,
    backend: &mut dyn Backend,
    split: &SplitOptions,
    set: &OutputSet,
    json: bool,
    ui: &mut dyn Ui,
) -> Result<(Vec<String>, TreeDigest)> {
    let (head, labels) = (&opened.head, &opened.labels);
    let classes = head.classes;
    let mut writer = tree::TreeWriter::new(set, split, json)?;
    tree::split_head_each(
        head,
        labels,
        backend,
        split,
        &mut |done| ui.progress("splitting", done, classes),
        &mut |trees| writer.add(&trees, labels),
    )?;
    ui.finish();
    writer.finish()
}

/// The plots of `fit`: the overview, each chosen class's fit and (with trees) its tree; returns
/// the summary's links (title, file stem).
fn fit_plots(
    out: &Path,
    args: &PlotArgs,
    given: &[usize],
    opened: &Opened,
    analysis: &Analysis,
    split: Option<&SplitOptions>,
    backend: &mut dyn Backend,
) -> Result<Vec<(String, String)>> {
    let (head, labels) = (&opened.head, &opened.labels);
    let picked = plots::pick_classes(analysis, given, args.plot_worst, args.plot_best);
    let dir = out.join("plots");
    let name = model_name(opened.arg.as_deref());
    let mut links = vec![("overview of the head".to_owned(), "overview".to_owned())];
    plots::overview(&dir, &name, analysis)?;
    let mut row = vec![0f32; head.features];
    let trees = match split {
        Some(opts) => tree::grow_classes(head, labels, backend, opts, &picked)?,
        None => Vec::new(),
    };
    for (i, &k) in picked.iter().enumerate() {
        head.read_rows(k, &mut row);
        let id = head.class_id(k);
        plots::class_fit(&dir, &name, id, labels, &row, &analysis.classes[k])?;
        links.push((report::class_title(id, labels), format!("class-{id}")));
        if let Some(tree) = trees.get(i) {
            plots::split_tree(&dir, &name, labels, tree)?;
            let title = format!("split tree of {}", report::class_title(id, labels));
            links.push((title, format!("tree-{id}")));
        }
    }
    Ok(links)
}

/// The model's name, for plot titles and `compare`'s tables: the checkpoint's file name without
/// its extensions, or for a folder, a sharded index or a generic file name (`model.safetensors`,
/// `pytorch_model.bin`), the folder's name.
pub fn model_name(arg: Option<&Path>) -> String {
    let Some(path) = arg else {
        return "EfficientNet-Lite0 (bundled)".into();
    };
    let folder = || {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let dir = if path.is_dir() {
            Some(abs.as_path())
        } else {
            abs.parent()
        };
        dir.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
    };
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = match file {
        _ if path.is_dir() => folder(),
        Some(f) if f.ends_with(".index.json") => folder(),
        Some(f) => {
            let stem = f.split('.').next().unwrap_or(&f).to_owned();
            let generic = [
                "model",
                "pytorch_model",
                "tf_model",
                "flax_model",
                "consolidated",
            ];
            if generic.contains(&stem.as_str()) || stem.starts_with("model-0") {
                folder().or(Some(stem))
            } else {
                Some(stem)
            }
        }
        None => None,
    };
    crate::text::short(&name.unwrap_or_else(|| path.display().to_string()), 60)
}

/// How many replicates `--bootstrap` asks for on this backend and head, or why none.
/// `classes × features × per_weight` bytes, or an error when the product is past what any
/// machine addresses.
fn weights_bytes(classes: usize, features: usize, per_weight: usize) -> Result<u64> {
    classes
        .checked_mul(features)
        .and_then(|n| n.checked_mul(per_weight))
        .filter(|&b| b <= isize::MAX as usize)
        .map(|b| b as u64)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{classes} × {features} weights is more than any machine can hold"
            ))
        })
}

/// Whether the bootstrap will run (as [`resolve_replicates`] decides, without its note).
fn bootstrap_runs(args: &BootstrapArgs, backend: &dyn Backend, weights: usize) -> bool {
    match args.bootstrap {
        Replicates::Count(b) => b > 0,
        Replicates::Auto => {
            bootstrap::auto_replicates(weights, bootstrap::Device::of(&backend.info())) > 0
        }
    }
}

fn resolve_replicates(
    args: &BootstrapArgs,
    backend: &dyn Backend,
    weights: usize,
    ui: &mut dyn Ui,
) -> std::result::Result<usize, String> {
    let device = bootstrap::Device::of(&backend.info());
    match args.bootstrap {
        Replicates::Count(0) => Err("the bootstrap was turned off (`--bootstrap 0`)".into()),
        Replicates::Count(b) => Ok(b),
        Replicates::Auto => match bootstrap::auto_replicates(weights, device) {
            0 => {
                ui.note(&format!(
                    "bootstrap off: {weights} weights are more than `--bootstrap auto` spends on \
                     the {} (pass --bootstrap 99 to run it anyway)",
                    device.name()
                ));
                Err(format!(
                    "`--bootstrap auto` skipped it for a head of {weights} weights on this backend"
                ))
            }
            b => Ok(b),
        },
    }
}

/// Runs the bootstrap (when `--bootstrap` asks for it) and builds the verdict into `analysis`.
pub(crate) fn run_bootstrap(
    analysis: &mut Analysis,
    backend: &mut dyn Backend,
    cols: usize,
    args: &BootstrapArgs,
    trees: Option<(&TreeDigest, &SplitOptions)>,
    ui: &mut dyn Ui,
) -> Result<()> {
    let b = match resolve_replicates(args, backend, analysis.classes.len() * cols, ui) {
        Ok(b) => b,
        Err(why) => {
            analysis.verdict = Err(why);
            return Ok(());
        }
    };
    let tree_replicates = args
        .bootstrap_trees
        .unwrap_or(bootstrap::AUTO_TREE_REPLICATES)
        .min(b);
    ui.note(&format!(
        "bootstrap: B = {b} replicates per class and model{}, seed {}{}",
        if args.bootstrap == Replicates::Auto {
            " (auto)"
        } else {
            ""
        },
        args.seed,
        match trees {
            Some(_) => format!("; split trees on {tree_replicates} replicate heads per model"),
            None => String::new(),
        }
    ));
    let opts = bootstrap::Options {
        replicates: b,
        seed: args.seed,
        tree_replicates,
        split: trees.map(|(_, o)| *o),
        ids: analysis.ids.clone(),
    };
    let boot = bootstrap::run(
        backend,
        &analysis.classes,
        cols,
        &opts,
        &mut |done, total| ui.progress("bootstrap", done, total),
    )?;
    ui.finish();
    analysis.verdict = Ok(crate::verdict::build(&boot, trees.map(|(t, _)| t)));
    analysis.bootstrap = Some(boot);
    Ok(())
}

/// `aldfit split`: every class's split tree; with the bootstrap, the per-class analysis first
/// (the laws to draw from) and the verdict.
pub fn split(args: &SplitCommand, ui: &mut dyn Ui) -> Result<Outputs> {
    let start = Instant::now();
    let opened = open_head(&args.run.head, ui)?;
    let opened = select_classes(opened, &args.run.classes, ui)?;
    let (head, labels) = (&opened.head, &opened.labels);
    let plotted = plot_choice(&args.plots, labels, head)?;
    let set = OutputSet::begin(&args.run.output.out)?;
    let mut backend = open_backend(args.run.output.backend, ui)?;
    let info = backend.info();
    let opts = args.split.options(args.run.output.skip_nonfinite);
    let boot = bootstrap_runs(&args.boot, backend.as_ref(), head.classes * head.features);
    // The per-class analysis runs here only for the bootstrap.
    check_memory(
        head,
        backend.as_ref(),
        boot.then_some(false),
        boot,
        Some(&opts),
    )?;
    let hasher = Hasher::start(head);
    let t = Instant::now();
    let (files, trees) = grow_trees(
        &opened,
        backend.as_mut(),
        &opts,
        &set,
        args.split.tree_json,
        ui,
    )?;
    let split_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let analysis = split_verdict(args, &opened, backend.as_mut(), (&trees, &opts), ui)?;
    let bootstrap_s = t.elapsed().as_secs_f64();
    let input = hasher.input(&opened)?;

    let mut out = report::split_outputs(
        set,
        &report::SplitRun {
            input: &input,
            backend: &info,
            trees: &trees,
            files: &files,
            opts: &opts,
            analysis: analysis.as_ref().ok(),
            off: analysis.as_ref().err().map(String::as_str),
            seed: args.boot.seed,
            split_s,
            bootstrap_s,
        },
    )?;
    if args.plots.plots {
        let links = split_plots(
            out.set.dir(),
            &args.plots,
            plotted,
            &opened,
            (&trees, &opts),
            backend.as_mut(),
        )?;
        out.summary.push_str(&report::plot_links(&links));
        out.written.push("plots/".into());
    }
    out.set_wall(start.elapsed().as_secs_f64());
    Ok(out)
}

/// `split`'s verdict: with the bootstrap, the per-class analysis (the laws replicate rows are
/// drawn from) and the bootstrap with the trees' nulls; else why there is none.
fn split_verdict(
    args: &SplitCommand,
    opened: &Opened,
    backend: &mut dyn Backend,
    trees: (&TreeDigest, &SplitOptions),
    ui: &mut dyn Ui,
) -> Result<std::result::Result<Analysis, String>> {
    let head = &opened.head;
    let weights = head.classes * head.features;
    if let Err(why) = resolve_replicates(&args.boot, backend, weights, ui) {
        return Ok(Err(why));
    }
    let plain = Options {
        skip_nonfinite: args.run.output.skip_nonfinite,
        pooled: false,
    };
    let mut a = analysis::analyse(head, &opened.labels, backend, &plain, &mut |_| {})?;
    run_bootstrap(&mut a, backend, head.features, &args.boot, Some(trees), ui)?;
    Ok(Ok(a))
}

/// The classes `--plot-classes` names, checked before any work is done: an unknown class, or
/// `--plot-classes` without `--plots`, is an error at once.
/// Returns the rows of `head` to draw.
fn plot_choice(args: &PlotArgs, labels: &[String], head: &Head) -> Result<Vec<usize>> {
    if !args.plots && !args.plot_classes.is_empty() {
        return Err(Error::Invalid(
            "--plot-classes draws nothing without --plots; add --plots".into(),
        ));
    }
    let ids = plots::resolve_classes(&args.plot_classes, labels, head.tensor_classes())?;
    let Some(selected) = head.ids() else {
        return Ok(ids);
    };
    ids.into_iter()
        .map(|id| {
            selected.binary_search(&id).map_err(|_| {
                Error::Invalid(format!(
                    "--plot-classes: class {id} is not among --classes; add it there"
                ))
            })
        })
        .collect()
}

/// The plots of `split`: the chosen classes' trees (by default the best and worst roots by KS).
fn split_plots(
    out: &Path,
    args: &PlotArgs,
    given: Vec<usize>,
    opened: &Opened,
    (trees, opts): (&TreeDigest, &SplitOptions),
    backend: &mut dyn Backend,
) -> Result<Vec<(String, String)>> {
    let (head, labels) = (&opened.head, &opened.labels);
    let picked = if given.is_empty() {
        let ks = |k: usize| trees.root_ks[k];
        let mut ranked: Vec<usize> = (0..trees.root_ks.len())
            .filter(|&k| ks(k).is_finite())
            .collect();
        ranked.sort_by(|&a, &b| ks(a).total_cmp(&ks(b)));
        let mut p: Vec<usize> = ranked.iter().take(args.plot_best).copied().collect();
        for &k in ranked.iter().rev().take(args.plot_worst) {
            if !p.contains(&k) {
                p.push(k);
            }
        }
        p
    } else {
        given
    };
    let dir = out.join("plots");
    let name = model_name(opened.arg.as_deref());
    let mut links = Vec::new();
    for tree in tree::grow_classes(head, labels, backend, opts, &picked)? {
        plots::split_tree(&dir, &name, labels, &tree)?;
        let k = tree.class;
        let title = format!("split tree of {}", report::class_title(k, labels));
        links.push((title, format!("tree-{k}")));
    }
    Ok(links)
}

/// `aldfit validate`: every backend's kernels against the reference. Returns the table and
/// whether everything held; a backend that was asked for and is missing is an error.
pub fn validate(
    head_args: &HeadArgs,
    backends: Option<&[BackendKind]>,
    ui: &mut dyn Ui,
) -> Result<(String, bool)> {
    let opened = open_head(head_args, ui)?;
    let mut datasets = crate::validate::synthetic();
    let name = opened.head.path.display().to_string();
    datasets.push(crate::validate::of_head(&name, &opened.head));
    let required = backends.is_some();
    let kinds = backends.map_or_else(
        || vec![BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda],
        <[_]>::to_vec,
    );
    let mut table = crate::validate::table_header();
    let (mut ok, mut unavailable) = (true, Vec::new());
    for kind in kinds {
        #[cfg(feature = "cuda")]
        if kind == BackendKind::Cuda {
            ui.note(&format!(
                "cuda toolkit: {}",
                crate::backend::cuda::toolkit_report()
            ));
        }
        let mut backend = match backend::create(kind) {
            Ok(b) => b,
            Err(e) if required => {
                ui.note(&e.to_string());
                unavailable.push(format!("{kind:?}").to_lowercase());
                continue;
            }
            Err(e) => {
                ui.note(&format!("skipping: {e}"));
                continue;
            }
        };
        let info = backend.info();
        ui.note(&format!("validating {} on {}", info.name, info.device));
        let (rows, held) = crate::validate::backend_table(backend.as_mut(), &datasets)?;
        table.push_str(&rows);
        ok &= held;
    }
    if !unavailable.is_empty() {
        return Err(Error::Invalid(format!(
            "validation failed: asked-for backend(s) {} unavailable",
            unavailable.join(", ")
        )));
    }
    Ok((table, ok))
}

/// `aldfit bench`: every backend on seeded heads of the given shapes; the table or JSON.
pub fn bench(
    backends: Option<&[BackendKind]>,
    (shapes, stages): (&str, Option<&[String]>),
    runs: usize,
    json: bool,
    ui: &mut dyn Ui,
) -> Result<String> {
    let shapes = crate::bench::parse_shapes(shapes)?;
    if let Some(names) = stages {
        crate::bench::check_stages(names)?;
    }
    for &(c, f) in &shapes {
        // The head, a chunk of it and the backend's copy, and per-class results.
        let need = weights_bytes(c, f, 12)?.saturating_add(c as u64 * 512);
        crate::memory::check(
            need,
            &format!("benchmarking a {c} × {f} head"),
            "ask for smaller --shapes",
        )?;
    }
    let kinds = backends.map_or_else(
        || vec![BackendKind::Cpu, BackendKind::Cuda, BackendKind::Wgpu],
        <[_]>::to_vec,
    );
    let mut timings = Vec::new();
    for kind in kinds {
        let mut b = match backend::create(kind) {
            Ok(b) => b,
            Err(e) if backends.is_some() => return Err(e),
            Err(e) => {
                ui.note(&format!("skipping: {e}"));
                continue;
            }
        };
        let mut say = |m: &str| ui.note(m);
        timings.extend(crate::bench::run(
            b.as_mut(),
            &shapes,
            runs,
            stages,
            &mut say,
        )?);
    }
    crate::bench::add_speedups(&mut timings);
    if json {
        serde_json::to_string_pretty(&timings)
            .map_err(|e| Error::Invalid(format!("cannot render the timings: {e}")))
    } else {
        Ok(crate::bench::table(&timings))
    }
}

/// `aldfit inspect`: a checkpoint's tensors, and which one `fit` would analyse.
pub fn inspect(path: &Path) -> Result<String> {
    let tensors = head::list_tensors(path)?;
    // What `fit` would do, as it does it (an ONNX or TFLite graph walk, GGUF's names), and why
    // it could not, if it could not.
    let opened = Head::open(path, None, false);
    let choice = match &opened {
        Ok(h) => Some((h.tensor.clone(), h.choice.clone())),
        Err(_) => head::default_choice(&tensors),
    };
    let mut s = format!("{:<50} {:>20} {:>8}  file\n", "tensor", "shape", "dtype");
    for t in &tensors {
        let mark = match &choice {
            Some((n, _)) if *n == t.name => "  <- fit",
            _ => "",
        };
        s.push_str(&format!(
            "{:<50} {:>20} {:>8}  {}{mark}\n",
            crate::text::printable(&t.name),
            format!("{:?}", t.shape),
            crate::text::printable(&t.dtype),
            crate::text::printable(&t.file.file_name().unwrap_or_default().to_string_lossy())
        ));
    }
    match (choice, &opened) {
        (Some((name, why)), Ok(h)) => {
            s.push_str(&format!(
                "\n`fit` would analyse `{}`: {}\n",
                crate::text::printable(&name),
                why.reason()
            ));
            if let Some(hint) = head::orientation_hint(h) {
                s.push_str(&format!("{}\n", crate::text::printable(&hint)));
            }
            // Runs record the BLAKE3; the sha256 is what checksums are usually published as.
            s.push_str(&format!(
                "{}: sha256 {}, blake3 {}\n",
                crate::text::printable(&h.path.display().to_string()),
                h.file_sha256(),
                h.file_blake3()
            ));
        }
        (Some((name, _)), Err(e)) => s.push_str(&format!(
            "\n`fit` would pick `{}` but cannot read it: {}\n",
            crate::text::printable(&name),
            crate::text::printable(&e.to_string())
        )),
        (None, _) => s.push_str("\nno 2-D tensor: `fit` has nothing to analyse here\n"),
    }
    Ok(s)
}

/// `aldfit synth`: a seeded synthetic head written as safetensors.
pub fn synth(
    out: &Path,
    classes: usize,
    features: usize,
    seed: u64,
    law: crate::synth::Law,
    dtype: crate::synth::StoreAs,
    ui: &mut dyn Ui,
) -> Result<()> {
    if classes == 0 || features == 0 {
        return Err(Error::Invalid(
            "--classes and --features must be positive".into(),
        ));
    }
    // The values are drawn in memory (f32), with each class's law beside them, then encoded.
    // f32 is written from the drawn values themselves; f16 and bf16 are encoded beside them.
    let stored = match dtype {
        crate::synth::StoreAs::F32 => 0,
        _ => 2,
    };
    let need = weights_bytes(classes, features, 4 + stored)?.saturating_add(classes as u64 * 24);
    crate::memory::check(
        need,
        &format!("a synthetic head of {classes} × {features}"),
        "ask for fewer --classes or --features",
    )?;
    let (values, _) = crate::synth::law_head(law, classes, features, seed);
    let written = match dtype {
        crate::synth::StoreAs::F32 => {
            crate::synth::write_safetensors(out, "fc.weight", classes, features, &values)
        }
        _ => {
            let (bytes, st) = dtype.encode(values);
            let shape = vec![classes, features];
            crate::synth::write_safetensors_bytes(out, &[("fc.weight", st, shape, &bytes)])
        }
    };
    written.map_err(|err| Error::Write {
        path: PathBuf::from(out),
        err,
    })?;
    ui.note(&format!(
        "wrote {} ({classes} × {features} {}, {law:?} rows, seed {seed})",
        out.display(),
        dtype.name()
    ));
    Ok(())
}
