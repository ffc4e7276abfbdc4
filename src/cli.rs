//! The command line's arguments (clap), grouped under help headings. What each command does is in
//! `crate::commands`; `src/main.rs` only parses and dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::BackendKind;
use crate::bootstrap;
use crate::tree::{self, Rule, Shape, SplitOptions};

#[derive(Parser)]
#[command(
    name = "aldfit",
    version,
    about = "Fit the asymmetric Laplace distribution to every class of a classifier head, exactly",
    long_about = "Fit the asymmetric Laplace distribution (ALD) to every class row of a classifier \
                  head by exact maximum likelihood, test it against Gaussian and Laplace fits, and \
                  reproduce the least-squares fit of arXiv 2205.11908."
)]
pub struct Cli {
    /// Print nothing but errors: no summary, notes or progress (the files are written as
    /// always; `inspect`, `validate` and `bench` still print what they were asked for).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

const FIT_EXAMPLES: &str = "Examples:
  aldfit fit                                  the bundled EfficientNet-Lite0 head, verdict first
  aldfit fit model.safetensors --split        every class's split tree too
  aldfit fit head.npy --bootstrap 999 --seed 7 --backend cuda
  aldfit fit model.safetensors --plots --plot-classes 0,tench
  aldfit fit llama/ --classes 0-999 -o first-thousand    a subset, by index, range or label
  aldfit fit head.npy -q && cat aldfit-out/summary.md   nothing on the terminal but errors";

const SPLIT_EXAMPLES: &str = "Examples:
  aldfit split                                 the study's trees (mean pivot, chains) for the bundled head
  aldfit split model.safetensors --rule ald --shape full --max-depth 4
  aldfit split llama/ --classes 100-199 --tree-json --plots --plot-classes 150";

#[derive(Subcommand)]
pub enum Command {
    /// Analyse every class of a head; writes classes.csv, summary.md and run.json.
    #[command(after_help = FIT_EXAMPLES)]
    Fit(FitArgs),
    /// Split every class recursively into "for" (+) and "against" (-) parts (docs/DESIGN.md 2.5);
    /// writes tree.csv, leaves.csv, summary.md and run.json (and tree.json with --tree-json).
    #[command(after_help = SPLIT_EXAMPLES)]
    Split(SplitCommand),
    /// Analyse several heads on one backend and put them side by side: classes.csv (with a
    /// leading model column), models.csv (a row per head), summary.md and plots/compare.png.
    #[command(after_help = "Examples:
  aldfit compare a.safetensors b.safetensors llama/ -o side-by-side
  aldfit compare *.safetensors --bootstrap 0      every head, without the verdicts")]
    Compare(CompareArgs),
    /// List a checkpoint's tensors and say which one `fit` would analyse.
    Inspect {
        /// A checkpoint, as `fit` reads it (safetensors, PyTorch, GGUF, ONNX, TFLite, .npy, or a
        /// folder holding one).
        head: PathBuf,
    },
    /// Check every backend's kernels against the f64 reference under the docs/DESIGN.md tolerances,
    /// on seeded heads built to be nasty and on HEAD (default: the bundled head).
    Validate {
        #[command(flatten)]
        head: HeadArgs,
        /// Backends to check, comma-separated (default: every one this machine has). A listed
        /// backend that is unavailable fails the run.
        #[arg(long, value_delimiter = ',', value_parser = named_backend())]
        backends: Option<Vec<BackendKind>>,
        #[command(flatten)]
        threads: Threads,
    },
    /// Time every backend on seeded synthetic heads: the whole analysis and each primitive on
    /// the device, in GB/s and as % of the floor (one read of the input at the copy bandwidth
    /// measured in the same run), with the sort's G keys/s and the speed-up over the CPU.
    Bench {
        /// Backends, comma-separated (default: every one this machine has). A listed backend
        /// that is unavailable fails the run.
        #[arg(long, value_delimiter = ',', value_parser = named_backend())]
        backends: Option<Vec<BackendKind>>,
        #[command(flatten)]
        threads: Threads,
        /// Head shapes as CLASSESxFEATURES, comma-separated.
        #[arg(long, default_value = "1000x1280,1000x2048,6625x120")]
        shapes: String,
        /// Timings per stage; the best is kept.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Only these stages, comma-separated (e.g. `analysis,sort`; default: every one).
        #[arg(long, value_delimiter = ',')]
        stages: Option<Vec<String>>,
        /// Print a JSON list of objects instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write a seeded synthetic head (rows drawn from known ALDs, Gaussians or Laplaces) as
    /// safetensors: test data with a known answer, and heads of any size for benchmarks.
    #[command(after_help = "Examples:
  aldfit synth noise.safetensors --law gauss --classes 1000 --features 1280 --seed 1
  aldfit synth llama.safetensors --classes 128256 --features 4096 --dtype bf16")]
    Synth {
        /// Output file (.safetensors), written whole or not at all.
        out: PathBuf,
        /// Rows of the head (classes).
        #[arg(long, default_value_t = 1000)]
        classes: usize,
        /// Values per row (features).
        #[arg(long, default_value_t = 2048)]
        features: usize,
        /// Seed of the rows and of each row's law; the same seed writes the same file.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The law of every row: ALD (random μ, s, κ), Gaussian (pure noise) or Laplace.
        #[arg(long, value_enum, default_value_t = crate::synth::Law::Ald)]
        law: crate::synth::Law,
        /// How the values are stored (drawn in f32, then rounded to nearest even).
        #[arg(long, value_enum, default_value_t = crate::synth::StoreAs::F32)]
        dtype: crate::synth::StoreAs,
        #[command(flatten)]
        threads: Threads,
    },
}

/// `--threads`, on the commands that compute.
#[derive(Args, Clone, Copy)]
pub struct Threads {
    /// Worker threads for the CPU work (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A backend by name: `auto` means nothing to a command that checks or times each one.
fn named_backend() -> impl clap::builder::TypedValueParser<Value = BackendKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["cpu", "wgpu", "cuda"]).map(|s| {
        <BackendKind as clap::ValueEnum>::from_str(&s, true).expect("one of the values above")
    })
}

#[derive(Args)]
#[command(next_help_heading = "Input")]
pub struct HeadArgs {
    /// The checkpoint: safetensors (a file, a sharded *.index.json or its folder), PyTorch
    /// .pt/.pth/.bin, GGUF, ONNX, TFLite or .npy, told by its bytes. Without it, the bundled
    /// EfficientNet-Lite0 ImageNet head.
    pub head: Option<PathBuf>,
    /// The tensor to analyse (default: the classifier head, found by name or shape).
    #[arg(long)]
    pub tensor: Option<String>,
    /// The tensor is stored [features, classes] (e.g. a Paddle/TF dense kernel).
    #[arg(long)]
    pub transpose: bool,
    /// Class labels, one per line (default: HEAD's stem + .labels.txt when present).
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooled {
    Auto,
    On,
    Off,
}

/// Above this many weights `--pooled auto` skips the joint fit: it keeps 2 bytes per weight
/// (half the head again at the peak) and adds about 60 % to the run time.
pub const POOLED_AUTO_MAX: usize = 1 << 24;

/// How the split trees grow; the defaults are the study's own procedure.
#[derive(Args, Clone)]
#[command(next_help_heading = "Split trees")]
pub struct SplitArgs {
    /// The pivot of a node: its mean (the study's), its fitted ALD location, or zero.
    #[arg(long, value_enum, default_value_t = Rule::Mean)]
    pub rule: Rule,
    /// chains (the study's: past the root, a + node makes only its + child, a - node only its
    /// - child) or full (both children of every split node).
    #[arg(long, value_enum, default_value_t = Shape::Chains)]
    pub shape: Shape,
    /// Nodes with at least this many values are split.
    #[arg(long, default_value_t = 20)]
    pub min_size: usize,
    /// Split no node at this depth or deeper (the root is depth 0). Default: no limit, as the
    /// study, but a safeguard stops at depth 48 (the summary says if any node reached it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=tree::MAX_DEPTH_LIMIT as u64))]
    pub max_depth: Option<u64>,
    /// Also write tree.json: every class's nested tree, one class a line (as big as the trees:
    /// gigabytes for an LLM head).
    #[arg(long)]
    pub tree_json: bool,
}

impl SplitArgs {
    pub fn options(&self, skip_nonfinite: bool) -> SplitOptions {
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
pub enum Replicates {
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
#[command(next_help_heading = "Calibration (bootstrap and verdict)")]
pub struct BootstrapArgs {
    /// Replicates per class and null model (B): `auto` picks the largest of 999, 499, 199, 99
    /// the backend can afford for this head (on the CPU: heads of up to ~1.5 M weights, such as
    /// the bundled one) and says which; 0 turns the bootstrap and the verdict off.
    #[arg(long, default_value = "auto")]
    pub bootstrap: Replicates,
    /// Seed of the replicate rows (Philox4x32-10 key); the same seed gives the same p-values.
    #[arg(long, default_value_t = bootstrap::DEFAULT_SEED)]
    pub seed: u64,
    /// With split trees: replicate heads per model whose trees are grown (default: 19, at most B).
    #[arg(long)]
    pub bootstrap_trees: Option<usize>,
}

/// Pictures, written as PNG and SVG into OUT/plots/ and linked from summary.md.
#[derive(Args, Clone)]
#[command(next_help_heading = "Plots")]
pub struct PlotArgs {
    /// Draw the plots: per-class fits, an overview of the head and (with split trees) the trees.
    #[arg(long)]
    pub plots: bool,
    /// Classes to draw, by index or label, comma-separated (default: the best and worst by KS).
    #[arg(long, value_delimiter = ',')]
    pub plot_classes: Vec<String>,
    /// How many of the worst-fitting classes (largest KS) to draw when no classes are given.
    #[arg(long, default_value_t = 3)]
    pub plot_worst: usize,
    /// How many of the best-fitting classes (smallest KS) to draw when no classes are given.
    #[arg(long, default_value_t = 3)]
    pub plot_best: usize,
}

/// What every analysing command takes: the head, where the results go, where to compute.
const OUTPUT: &str = "Output and device";

/// Where the results go, where they are computed, and what to do with rows that hold NaN or
/// inf: what every analysing command takes.
#[derive(Args)]
pub struct OutputArgs {
    /// Output folder.
    #[arg(long, short, default_value = "aldfit-out", help_heading = OUTPUT)]
    pub out: PathBuf,
    /// Where to compute: auto takes a real GPU when one is usable, else the CPU.
    #[arg(long, value_enum, default_value_t = BackendKind::Auto, help_heading = OUTPUT)]
    pub backend: BackendKind,
    #[command(flatten, next_help_heading = OUTPUT)]
    pub threads: Threads,
    /// Flag and skip rows holding NaN or inf (statistics NaN, trees empty) instead of stopping
    /// at the first.
    #[arg(long, help_heading = "Input")]
    pub skip_nonfinite: bool,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub head: HeadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Analyse only these classes: indices, ranges A-B (both ends included) or labels,
    /// comma-separated (e.g. `0-99,tench,512`). Outputs keep the tensor's class numbers.
    #[arg(long, value_delimiter = ',', help_heading = "Input")]
    pub classes: Vec<String>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The checkpoints (files or folders, as `fit` reads them), two or more. Each is named by
    /// its file's stem, or its folder for a folder, a sharded index or `model.safetensors`.
    #[arg(required = true, num_args = 2..)]
    pub heads: Vec<PathBuf>,
    /// Opened once for every head.
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub boot: BootstrapArgs,
}

#[derive(Args)]
pub struct SplitCommand {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub boot: BootstrapArgs,
    #[command(flatten)]
    pub plots: PlotArgs,
}

#[derive(Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The study's joint fit over all weights pooled. It orders every weight once more and
    /// keeps 2 bytes per weight: `auto` runs it for heads of up to 16 Mi weights.
    #[arg(long, value_enum, default_value_t = Pooled::Auto, help_heading = "Analysis")]
    pub pooled: Pooled,
    /// How many best and worst classes the summary lists.
    #[arg(long, default_value_t = 10, help_heading = "Analysis")]
    pub top: usize,
    /// Also grow every class's split tree (as `aldfit split`, with the options below).
    #[arg(long, help_heading = "Split trees")]
    pub split: bool,
    #[command(flatten)]
    pub plots: PlotArgs,
    #[command(flatten)]
    pub split_args: SplitArgs,
    #[command(flatten)]
    pub boot: BootstrapArgs,
}
