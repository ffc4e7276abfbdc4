//! The `aldfit` command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use aldfit::analysis::{self, Analysis, Options};
use aldfit::backend::{self, BackendKind};
use aldfit::bootstrap;
use aldfit::head::{self, Head};
use aldfit::plots;
use aldfit::report::{self, InputInfo};
use aldfit::tree::{self, Rule, Shape, SplitOptions};

#[derive(Parser)]
#[command(
    name = "aldfit",
    version,
    about = "Fit the asymmetric Laplace distribution to every class of a classifier head, exactly",
    long_about = "Fit the asymmetric Laplace distribution (ALD) to every class row of a classifier \
                  head by exact maximum likelihood, test it against Gaussian and Laplace fits, and \
                  reproduce the least-squares fit of arXiv 2205.11908."
)]
struct Cli {
    /// Worker threads for the CPU work (default: every core).
    #[arg(long, global = true)]
    threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse every class of a head; writes classes.csv, summary.md and run.json.
    Fit(FitArgs),
    /// Split every class recursively into "for" (+) and "against" (-) parts (docs/DESIGN.md 2.5);
    /// writes tree.csv, leaves.csv, tree.json, summary.md and run.json.
    Split(SplitCommand),
    /// List a checkpoint's tensors and say which one `fit` would analyse.
    Inspect {
        /// A .safetensors file, a sharded *.safetensors.index.json (or its folder), or a .npy.
        head: PathBuf,
    },
    /// Check every backend's kernels against the f64 reference under the docs/DESIGN.md tolerances,
    /// on seeded heads built to be nasty and on HEAD (default: the bundled head).
    Validate {
        #[command(flatten)]
        head: HeadArgs,
        /// Backends to check, comma-separated (default: every one this machine has). A listed
        /// backend that is unavailable fails the run.
        #[arg(long, value_delimiter = ',')]
        backends: Option<Vec<BackendKind>>,
    },
    /// Time every backend on seeded synthetic heads: the whole analysis and each primitive on
    /// the device, in GB/s and as % of the floor (one read of the input at the copy bandwidth
    /// measured in the same run), with the sort's G keys/s and the speed-up over the CPU.
    Bench {
        /// Backends, comma-separated (default: every one this machine has). A listed backend
        /// that is unavailable fails the run.
        #[arg(long, value_delimiter = ',')]
        backends: Option<Vec<BackendKind>>,
        /// Head shapes as CLASSESxFEATURES, comma-separated.
        #[arg(long, default_value = "1000x1280,1000x2048,6625x120")]
        shapes: String,
        /// Timings per stage; the best is kept.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Print a JSON list of objects instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write a seeded synthetic head (rows drawn from known ALDs, Gaussians or Laplaces) as
    /// safetensors.
    Synth {
        /// Output file (.safetensors).
        out: PathBuf,
        #[arg(long, default_value_t = 1000)]
        classes: usize,
        #[arg(long, default_value_t = 2048)]
        features: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The law of every row: ALD (random μ, s, κ), Gaussian (pure noise) or Laplace.
        #[arg(long, value_enum, default_value_t = aldfit::synth::Law::Ald)]
        law: aldfit::synth::Law,
    },
}

#[derive(Args)]
struct HeadArgs {
    /// The checkpoint: .safetensors, a sharded *.safetensors.index.json (or its folder), or .npy.
    /// Without it, the bundled EfficientNet-Lite0 ImageNet head.
    head: Option<PathBuf>,
    /// The tensor to analyse (default: the classifier head, found by name or shape).
    #[arg(long)]
    tensor: Option<String>,
    /// The tensor is stored [features, classes] (e.g. a Paddle/TF dense kernel).
    #[arg(long)]
    transpose: bool,
    /// Class labels, one per line (default: HEAD's stem + .labels.txt when present).
    #[arg(long)]
    labels: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Pooled {
    Auto,
    On,
    Off,
}

/// Above this many weights `--pooled auto` skips the joint fit: it keeps 2 bytes per weight
/// (half the head again at the peak) and adds about 60 % to the run time.
const POOLED_AUTO_MAX: usize = 1 << 24;

/// How the split trees grow; the defaults are the study's own procedure.
#[derive(Args, Clone)]
struct SplitArgs {
    /// The pivot of a node: its mean (the study's), its fitted ALD location, or zero.
    #[arg(long, value_enum, default_value_t = Rule::Mean)]
    rule: Rule,
    /// chains (the study's: past the root, a + node makes only its + child, a - node only its
    /// - child) or full (both children of every split node).
    #[arg(long, value_enum, default_value_t = Shape::Chains)]
    shape: Shape,
    /// Nodes with at least this many values are split.
    #[arg(long, default_value_t = 20)]
    min_size: usize,
    /// Split no node at this depth or deeper (the root is depth 0). Default: no limit, as the
    /// study, but a safeguard stops at depth 48 (the summary says if any node reached it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=tree::MAX_DEPTH_LIMIT as u64))]
    max_depth: Option<u64>,
}

impl SplitArgs {
    fn options(&self, skip_nonfinite: bool) -> SplitOptions {
        SplitOptions {
            rule: self.rule,
            shape: self.shape,
            min_size: self.min_size,
            max_depth: self.max_depth.map(|d| d as usize),
            skip_nonfinite,
        }
    }
}

/// `--bootstrap`: how many replicates, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replicates {
    Auto,
    Count(usize),
}

impl std::str::FromStr for Replicates {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(Replicates::Auto);
        }
        match s.parse::<usize>() {
            Ok(b) if b <= bootstrap::MAX_REPLICATES => Ok(Replicates::Count(b)),
            _ => Err(format!(
                "expected `auto` or a number of replicates from 0 to {}",
                bootstrap::MAX_REPLICATES
            )),
        }
    }
}

/// The calibrated tests (docs/DESIGN.md 2.6): replicate rows from every class's fitted Gaussian and
/// ALD, generated and analysed on the backend.
#[derive(Args, Clone)]
struct BootstrapArgs {
    /// Replicates per class and null model (B): `auto` picks the largest of 999, 499, 199, 99
    /// the backend can afford for this head (on the CPU: heads of up to ~1.5 M weights, such as
    /// the bundled one) and says which; 0 turns the bootstrap and the verdict off.
    #[arg(long, default_value = "auto")]
    bootstrap: Replicates,
    /// Seed of the replicate rows (Philox4x32-10 key); the same seed gives the same p-values.
    #[arg(long, default_value_t = bootstrap::DEFAULT_SEED)]
    seed: u64,
    /// With split trees: replicate heads per model whose trees are grown (default: 19, at most B).
    #[arg(long)]
    bootstrap_trees: Option<usize>,
}

/// Pictures, written as PNG and SVG into OUT/plots/ and linked from summary.md.
#[derive(Args, Clone)]
struct PlotArgs {
    /// Draw the plots: per-class fits, an overview of the head and (with split trees) the trees.
    #[arg(long)]
    plots: bool,
    /// Classes to draw, by index or label, comma-separated (default: the best and worst by KS).
    #[arg(long, value_delimiter = ',')]
    plot_classes: Vec<String>,
    /// How many of the worst-fitting classes (largest KS) to draw when no classes are given.
    #[arg(long, default_value_t = 3)]
    plot_worst: usize,
    /// How many of the best-fitting classes (smallest KS) to draw when no classes are given.
    #[arg(long, default_value_t = 3)]
    plot_best: usize,
}

/// What every analysing command takes: the head, where the results go, where to compute.
#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    head: HeadArgs,
    /// Output folder.
    #[arg(long, default_value = "aldfit-out")]
    out: PathBuf,
    /// Where to compute: auto takes a real GPU when one is usable, else the CPU.
    #[arg(long, value_enum, default_value_t = BackendKind::Auto)]
    backend: BackendKind,
    /// Flag and skip rows holding NaN or inf (statistics NaN, trees empty) instead of stopping
    /// at the first.
    #[arg(long)]
    skip_nonfinite: bool,
}

#[derive(Args)]
struct SplitCommand {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    split: SplitArgs,
    #[command(flatten)]
    boot: BootstrapArgs,
    #[command(flatten)]
    plots: PlotArgs,
    /// Do not print the summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct FitArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The study's joint fit over all weights pooled. It orders every weight once more and
    /// keeps 2 bytes per weight: `auto` runs it for heads of up to 16 Mi weights.
    #[arg(long, value_enum, default_value_t = Pooled::Auto)]
    pooled: Pooled,
    /// How many best and worst classes the summary lists.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Also grow every class's split tree (as `aldfit split`, with the options below).
    #[arg(long)]
    split: bool,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    split_args: SplitArgs,
    #[command(flatten)]
    boot: BootstrapArgs,
    /// Do not print the summary.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aldfit: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(t) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    match cli.command {
        Command::Fit(args) => fit(args),
        Command::Split(args) => split(args),
        Command::Inspect { head } => inspect(&head),
        Command::Validate { head, backends } => validate(&head, backends),
        Command::Bench {
            backends,
            shapes,
            runs,
            json,
        } => bench(backends, &shapes, runs, json),
        Command::Synth {
            out,
            classes,
            features,
            seed,
            law,
        } => synth(&out, classes, features, seed, law),
    }
}

/// Opens the head and its labels; prints which tensor was chosen and why.
fn open_head(args: &HeadArgs) -> Result<(Head, Vec<String>, Option<String>)> {
    let (head, mut labels, mut labels_from) = match &args.head {
        None => {
            if args.tensor.is_some() || args.transpose {
                anyhow::bail!("--tensor and --transpose need a HEAD file");
            }
            let (h, l) = Head::bundled()?;
            (
                h,
                l,
                Some("assets/imagenet_classes.txt (bundled)".to_owned()),
            )
        }
        Some(path) => (
            Head::open(path, args.tensor.as_deref(), args.transpose)?,
            Vec::new(),
            None,
        ),
    };
    let label_path = args
        .labels
        .clone()
        .or_else(|| args.head.as_deref().and_then(head::labels_beside));
    if let Some(p) = label_path {
        labels = head::read_labels(&p, head.classes)?;
        labels_from = Some(p.display().to_string());
    }
    eprintln!(
        "aldfit: {} tensor `{}` ({}): {} classes × {} features, {}{}",
        head.path.display(),
        head.tensor,
        head.choice.describe(),
        head.classes,
        head.features,
        head.dtype.name(),
        if head.transposed {
            ", read transposed"
        } else {
            ""
        }
    );
    Ok((head, labels, labels_from))
}

fn fit(args: FitArgs) -> Result<()> {
    let start = Instant::now();
    let (head, labels, labels_from) = open_head(&args.run.head)?;
    let mut backend = open_backend(args.run.backend)?;

    let bar = progress_bar(head.classes, "fitting");
    let pooled = match args.pooled {
        Pooled::On => true,
        Pooled::Off => false,
        Pooled::Auto => head.classes * head.features <= POOLED_AUTO_MAX,
    };
    if !pooled && args.pooled == Pooled::Auto {
        eprintln!(
            "aldfit: skipping the pooled joint fit ({} weights > {POOLED_AUTO_MAX}); pass --pooled on to run it",
            head.classes * head.features
        );
    }
    // The file hash reads the whole file once: let it run beside the analysis.
    let hasher = std::thread::spawn({
        let head = head.clone();
        move || head.file_sha256()
    });
    let opts = Options {
        skip_nonfinite: args.run.skip_nonfinite,
        pooled,
    };
    let mut analysis = analysis::analyse(&head, &labels, backend.as_mut(), &opts, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();

    let trees = if args.split {
        let t = Instant::now();
        let opts = args.split_args.options(args.run.skip_nonfinite);
        let bar = progress_bar(head.classes, "splitting");
        let trees = tree::split_head(&head, &labels, backend.as_mut(), &opts, &mut |done| {
            bar.set_position(done as u64)
        })?;
        bar.finish_and_clear();
        analysis.timings.add("split", t);
        Some((trees, opts))
    } else {
        None
    };

    let t = Instant::now();
    run_bootstrap(
        &mut analysis,
        backend.as_mut(),
        head.features,
        &args.boot,
        trees.as_ref().map(|(t, o)| (&t[..], o)),
    )?;
    analysis.timings.add("bootstrap", t);

    let t = Instant::now();
    let sha256 = hasher
        .join()
        .map_err(|_| anyhow::anyhow!("hashing the head file failed"))?;
    let input = InputInfo::of(&head, sha256, labels_from);
    analysis.timings.add("hash (wait)", t);

    let t = Instant::now();
    let csv = report::classes_csv(&analysis, &labels)?;
    let options = serde_json::json!({
        "backend": args.run.backend,
        "skip_nonfinite": args.run.skip_nonfinite,
        "pooled": args.pooled,
        "pooled_ran": opts.pooled,
        "threads": rayon::current_num_threads(),
        "transpose": args.run.head.transpose,
        "tensor": args.run.head.tensor,
        "bootstrap": analysis.bootstrap.as_ref().map_or(0, |b| b.replicates),
        "seed": args.boot.seed,
    });
    analysis.timings.add("report", t);
    let mut summary = report::summary_md(&analysis, &input, &labels, args.top);
    let mut run = report::run_json(&analysis, &input, options);
    run["wall_s"] = serde_json::json!(start.elapsed().as_secs_f64());

    report::ensure_dir(&args.run.out)?;
    let mut written = "classes.csv,summary.md,run.json".to_owned();
    if let Some((trees, opts)) = &trees {
        summary.push('\n');
        let null = analysis.bootstrap.as_ref().and_then(|b| b.trees.as_ref());
        summary.push_str(&tree::summary_md(trees, opts, null));
        run["split"] = serde_json::json!(opts);
        write_trees(&args.run.out, trees, &labels)?;
        written.push_str(",tree.csv,leaves.csv,tree.json");
    }
    if args.plots.plots {
        let t = Instant::now();
        let given = plots::resolve_classes(&args.plots.plot_classes, &labels, head.classes)?;
        let picked = plots::pick_classes(
            &analysis,
            &given,
            args.plots.plot_worst,
            args.plots.plot_best,
        );
        let dir = args.run.out.join("plots");
        let name = head_name(&head);
        let mut links = vec![("overview of the head".to_owned(), "overview".to_owned())];
        plots::overview(&dir, &name, &analysis)?;
        let mut row = vec![0f32; head.features];
        for &k in &picked {
            head.read_rows(k, &mut row);
            plots::class_fit(&dir, &name, k, &labels, &row, &analysis.classes[k])?;
            links.push((class_title(k, &labels), format!("class-{k}")));
            if let Some((trees, _)) = &trees {
                plots::split_tree(&dir, &name, &labels, &trees[k])?;
                links.push((
                    format!("split tree of {}", class_title(k, &labels)),
                    format!("tree-{k}"),
                ));
            }
        }
        summary.push_str(&plot_links(&links));
        written.push_str(",plots/");
        analysis.timings.add("plots", t);
    }
    report::write_atomic(&args.run.out, "classes.csv", &csv)?;
    report::write_atomic(&args.run.out, "summary.md", summary.as_bytes())?;
    report::write_atomic(
        &args.run.out,
        "run.json",
        serde_json::to_string_pretty(&run)?.as_bytes(),
    )?;
    if !args.quiet {
        println!("{summary}");
    }
    eprintln!(
        "aldfit: wrote {}/{{{written}}} in {:.3} s",
        args.run.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How many replicates `--bootstrap` asks for on this backend and head, or why none.
fn resolve_replicates(
    args: &BootstrapArgs,
    backend: &dyn backend::Backend,
    weights: usize,
) -> std::result::Result<usize, String> {
    let device = bootstrap::Device::of(&backend.info());
    match args.bootstrap {
        Replicates::Count(0) => Err("the bootstrap was turned off (`--bootstrap 0`)".into()),
        Replicates::Count(b) => Ok(b),
        Replicates::Auto => match bootstrap::auto_replicates(weights, device) {
            0 => {
                eprintln!(
                    "aldfit: bootstrap off: {weights} weights are more than `--bootstrap auto` \
                     spends on the {} (pass --bootstrap 99 to run it anyway)",
                    match device {
                        bootstrap::Device::Host => "CPU",
                        bootstrap::Device::Gpu => "GPU",
                        bootstrap::Device::SoftwareGpu => "software GPU adapter",
                    }
                );
                Err(format!(
                    "`--bootstrap auto` skipped it for a head of {weights} weights on this backend"
                ))
            }
            b => Ok(b),
        },
    }
}

/// Runs the bootstrap (when `--bootstrap` asks for it) and builds the verdict into `analysis`.
fn run_bootstrap(
    analysis: &mut Analysis,
    backend: &mut dyn backend::Backend,
    cols: usize,
    args: &BootstrapArgs,
    trees: Option<(&[tree::ClassTree], &SplitOptions)>,
) -> Result<()> {
    let b = match resolve_replicates(args, backend, analysis.classes.len() * cols) {
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
    eprintln!(
        "aldfit: bootstrap: B = {b} replicates per class and model{}, seed {}{}",
        if args.bootstrap == Replicates::Auto {
            " (auto)"
        } else {
            ""
        },
        args.seed,
        if trees.is_some() {
            format!("; split trees on {tree_replicates} replicate heads per model")
        } else {
            String::new()
        }
    );
    let opts = bootstrap::Options {
        replicates: b,
        seed: args.seed,
        tree_replicates,
        split: trees.map(|(_, o)| *o),
    };
    let bar = progress_bar(0, "bootstrap");
    let boot = bootstrap::run(
        backend,
        &analysis.classes,
        cols,
        &opts,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64)
        },
    )?;
    bar.finish_and_clear();
    analysis.verdict = Ok(aldfit::verdict::build(&boot, trees.map(|(t, _)| t)));
    analysis.bootstrap = Some(boot);
    Ok(())
}

/// The head's file name, for plot titles.
fn head_name(head: &Head) -> String {
    head.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| head.path.display().to_string())
}

fn class_title(k: usize, labels: &[String]) -> String {
    match labels.get(k) {
        Some(l) if !l.is_empty() => format!("class {k} ({l})"),
        _ => format!("class {k}"),
    }
}

/// The summary's section linking the plots (PNG shown, SVG beside it).
fn plot_links(links: &[(String, String)]) -> String {
    let mut s = String::from("\n## Plots\n\n");
    for (what, stem) in links {
        s.push_str(&format!(
            "### {what}\n\n![{what}](plots/{stem}.png)\n\n([SVG](plots/{stem}.svg))\n\n"
        ));
    }
    s
}

/// Creates the backend asked for and says which it is; when `auto` ends on the CPU, also why it
/// passed over each GPU backend.
fn open_backend(kind: BackendKind) -> Result<Box<dyn backend::Backend>> {
    let mut passed_over = Vec::new();
    let backend = backend::create_noting(kind, &mut |why| passed_over.push(why))?;
    let info = backend.info();
    eprintln!("aldfit: backend {} on {}", info.name, info.device);
    if info.name == "cpu" {
        for why in &passed_over {
            eprintln!("aldfit: (auto) {why}");
        }
    }
    Ok(backend)
}

fn progress_bar(len: usize, msg: &'static str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} rows ({eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

fn write_trees(out: &Path, trees: &[tree::ClassTree], labels: &[String]) -> Result<()> {
    report::write_atomic(out, "tree.csv", &tree::tree_csv(trees, labels)?)?;
    report::write_atomic(out, "leaves.csv", &tree::leaves_csv(trees, labels)?)?;
    let mut json = Vec::new();
    tree::write_tree_json(&mut json, trees, labels)?;
    report::write_atomic(out, "tree.json", &json)?;
    Ok(())
}

fn split(args: SplitCommand) -> Result<()> {
    let start = Instant::now();
    let (head, labels, labels_from) = open_head(&args.run.head)?;
    let mut backend = open_backend(args.run.backend)?;
    let info = backend.info();
    let hasher = std::thread::spawn({
        let head = head.clone();
        move || head.file_sha256()
    });
    let opts = args.split.options(args.run.skip_nonfinite);
    let bar = progress_bar(head.classes, "splitting");
    let t = Instant::now();
    let trees = tree::split_head(&head, &labels, backend.as_mut(), &opts, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let split_s = t.elapsed().as_secs_f64();

    // The verdict needs every class's fitted laws: the per-class analysis, then the bootstrap.
    let t = Instant::now();
    let weights = head.classes * head.features;
    let verdict = match resolve_replicates(&args.boot, backend.as_ref(), weights) {
        Err(why) => Err(why),
        Ok(_) => {
            let opts_a = Options {
                skip_nonfinite: args.run.skip_nonfinite,
                pooled: false,
            };
            let mut analysis =
                analysis::analyse(&head, &labels, backend.as_mut(), &opts_a, &mut |_| {})?;
            run_bootstrap(
                &mut analysis,
                backend.as_mut(),
                head.features,
                &args.boot,
                Some((&trees, &opts)),
            )?;
            analysis.verdict.map(|v| (v, analysis.bootstrap))
        }
    };
    let bootstrap_s = t.elapsed().as_secs_f64();
    let sha256 = hasher
        .join()
        .map_err(|_| anyhow::anyhow!("hashing the head file failed"))?;
    let input = InputInfo::of(&head, sha256, labels_from);

    let mut summary = format!(
        "# aldfit split\n\n- head: `{}`, tensor `{}` ({}); {} classes × {} features, {}; sha256 `{}`\n- backend: {} on {}\n- aldfit {}; split in {:.3} s\n\n",
        input.file,
        input.tensor,
        input.choice,
        input.classes,
        input.features,
        input.dtype,
        input.sha256,
        info.name,
        info.device,
        env!("CARGO_PKG_VERSION"),
        split_s
    );
    match &verdict {
        Ok((v, _)) => summary.push_str(&aldfit::verdict::markdown(v)),
        Err(why) => summary.push_str(&aldfit::verdict::markdown_off(why)),
    }
    let null = verdict
        .as_ref()
        .ok()
        .and_then(|(_, b)| b.as_ref())
        .and_then(|b| b.trees.as_ref());
    summary.push_str(&tree::summary_md(&trees, &opts, null));
    report::ensure_dir(&args.run.out)?;
    if args.plots.plots {
        let given = plots::resolve_classes(&args.plots.plot_classes, &labels, head.classes)?;
        let picked = if given.is_empty() {
            // The best and worst roots by KS, as `fit` picks its classes.
            let mut ranked: Vec<usize> = (0..trees.len())
                .filter(|&k| {
                    trees[k]
                        .nodes
                        .first()
                        .is_some_and(|n| n.stats.ks.is_finite())
                })
                .collect();
            ranked.sort_by(|&a, &b| {
                trees[a].nodes[0]
                    .stats
                    .ks
                    .total_cmp(&trees[b].nodes[0].stats.ks)
            });
            let mut p: Vec<usize> = ranked.iter().take(args.plots.plot_best).copied().collect();
            for &k in ranked.iter().rev().take(args.plots.plot_worst) {
                if !p.contains(&k) {
                    p.push(k);
                }
            }
            p
        } else {
            given
        };
        let dir = args.run.out.join("plots");
        let name = head_name(&head);
        let mut links = Vec::new();
        for &k in &picked {
            plots::split_tree(&dir, &name, &labels, &trees[k])?;
            links.push((
                format!("split tree of {}", class_title(k, &labels)),
                format!("tree-{k}"),
            ));
        }
        summary.push_str(&plot_links(&links));
    }
    let run = serde_json::json!({
        "aldfit_version": env!("CARGO_PKG_VERSION"),
        "backend": info,
        "input": input,
        "split": opts,
        "timings_s": { "split": split_s, "analysis+bootstrap": bootstrap_s },
        "seed": args.boot.seed,
        "verdict": match &verdict {
            Ok((v, _)) => serde_json::json!(v),
            Err(why) => serde_json::json!({ "off": why }),
        },
        "nodes": trees.iter().map(|t| t.nodes.len()).sum::<usize>(),
        "wall_s": start.elapsed().as_secs_f64(),
    });
    write_trees(&args.run.out, &trees, &labels)?;
    report::write_atomic(&args.run.out, "summary.md", summary.as_bytes())?;
    report::write_atomic(
        &args.run.out,
        "run.json",
        serde_json::to_string_pretty(&run)?.as_bytes(),
    )?;
    if !args.quiet {
        println!("{summary}");
    }
    eprintln!(
        "aldfit: wrote {}/{{tree.csv,leaves.csv,tree.json,summary.md,run.json}} in {:.3} s",
        args.run.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn validate(head_args: &HeadArgs, backends: Option<Vec<BackendKind>>) -> Result<()> {
    let (head, _, _) = open_head(head_args)?;
    let mut datasets = aldfit::validate::synthetic();
    datasets.push(aldfit::validate::of_head(
        &head.path.display().to_string(),
        &head,
    ));
    let required = backends.is_some();
    let kinds =
        backends.unwrap_or_else(|| vec![BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]);
    let mut failed = false;
    let mut unavailable = Vec::new();
    println!(
        "{:<6} {:<10} {:>13} {:>10} {:>9}  worst quantity (dataset)",
        "backend", "kernel", "worst dev", "tolerance", "violated"
    );
    for kind in kinds {
        let mut backend = match backend::create(kind) {
            Ok(b) => b,
            Err(e) if required => {
                eprintln!("aldfit: {e}");
                unavailable.push(format!("{kind:?}").to_lowercase());
                continue;
            }
            Err(e) => {
                eprintln!("aldfit: skipping: {e}");
                continue;
            }
        };
        let info = backend.info();
        eprintln!("aldfit: validating {} on {}", info.name, info.device);
        let mut all: Vec<(String, aldfit::contract::Measurement)> = Vec::new();
        for m in aldfit::validate::run_generator(backend.as_mut())? {
            all.push(("bootstrap generator".to_owned(), m));
        }
        for data in &datasets {
            for m in aldfit::validate::run(backend.as_mut(), data)? {
                all.push((data.name.clone(), m));
            }
        }
        let measured: Vec<_> = all.iter().map(|(_, m)| m.clone()).collect();
        for (kernel, worst, violated, count) in aldfit::validate::summarise(&measured) {
            let dataset = all
                .iter()
                .find(|(_, m)| *m == worst)
                .map(|(d, _)| d.as_str())
                .unwrap_or("");
            failed |= violated > 0;
            println!(
                "{:<6} {:<10} {:>13.3e} {:>10.1e} {:>4}/{:<5} {} ({dataset}){}",
                info.name,
                kernel,
                worst.deviation,
                worst.tolerance,
                violated,
                count,
                worst.what,
                if violated > 0 { "  FAIL" } else { "" }
            );
        }
    }
    if !unavailable.is_empty() {
        anyhow::bail!(
            "validation failed: asked-for backend(s) {} unavailable",
            unavailable.join(", ")
        );
    }
    if failed {
        anyhow::bail!("validation failed: see the lines marked FAIL above");
    }
    println!("all kernels within the docs/DESIGN.md tolerances");
    Ok(())
}

fn bench(backends: Option<Vec<BackendKind>>, shapes: &str, runs: usize, json: bool) -> Result<()> {
    let shapes = aldfit::bench::parse_shapes(shapes)?;
    let required = backends.is_some();
    let kinds =
        backends.unwrap_or_else(|| vec![BackendKind::Cpu, BackendKind::Cuda, BackendKind::Wgpu]);
    let mut timings = Vec::new();
    for kind in kinds {
        let mut b = match backend::create(kind) {
            Ok(b) => b,
            Err(e) if required => return Err(e.into()),
            Err(e) => {
                eprintln!("aldfit: skipping: {e}");
                continue;
            }
        };
        timings.extend(aldfit::bench::run(b.as_mut(), &shapes, runs, &mut |m| {
            eprintln!("aldfit: {m}")
        })?);
    }
    aldfit::bench::add_speedups(&mut timings);
    if json {
        println!("{}", serde_json::to_string_pretty(&timings)?);
    } else {
        print!("{}", aldfit::bench::table(&timings));
    }
    Ok(())
}

fn inspect(path: &Path) -> Result<()> {
    let tensors = head::list_tensors(path)?;
    let choice = head::default_choice(&tensors);
    println!("{:<50} {:>20} {:>8}  file", "tensor", "shape", "dtype");
    for t in &tensors {
        let mark = match &choice {
            Some((n, _)) if *n == t.name => "  <- fit",
            _ => "",
        };
        println!(
            "{:<50} {:>20} {:>8}  {}{mark}",
            t.name,
            format!("{:?}", t.shape),
            t.dtype,
            t.file.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    match choice {
        Some((name, why)) => println!("\n`fit` would analyse `{name}`: {}", why.describe()),
        None => println!("\nno 2-D tensor: `fit` has nothing to analyse here"),
    }
    Ok(())
}

fn synth(
    out: &Path,
    classes: usize,
    features: usize,
    seed: u64,
    law: aldfit::synth::Law,
) -> Result<()> {
    if classes == 0 || features == 0 {
        anyhow::bail!("--classes and --features must be positive");
    }
    let (values, _) = aldfit::synth::law_head(law, classes, features, seed);
    aldfit::synth::write_safetensors(out, "fc.weight", classes, features, &values)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "aldfit: wrote {} ({classes} × {features} f32, {law:?} rows, seed {seed})",
        out.display()
    );
    Ok(())
}
