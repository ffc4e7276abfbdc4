//! Recursive split trees (docs/DESIGN.md 2.5): the study's hypothesis that every class splits into
//! "for" (`+`, values ≥ pivot) and "against" (`−`) parts, and those again, for every class at
//! once.
//!
//! Splits are by value, so on a sorted row every node is a contiguous range and a split is one
//! partition point. The trees therefore grow level by level on the backend: each level of every
//! class in the chunk is one batch of segments (`segment_stats` for the node statistics, then
//! `partition_points` at the pivots); only per-node numbers come back, and the feature indices
//! once per row at the end.

use std::io::Write;

use rayon::prelude::*;

use crate::ald::{self, Model};
use crate::analysis;
use crate::backend::{Backend, Segment, SegmentStats};
use crate::error::{Error, Result};
use crate::head::Head;

/// Where a node is split (docs/DESIGN.md 2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// The mean of the node (the study's).
    Mean,
    /// The node's fitted ALD location μ̂.
    Ald,
    /// Zero.
    Zero,
}

/// Which children a split node makes (docs/DESIGN.md 2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The study's: the root makes both children, then a `+` node only its `+` child and a `−`
    /// node only its `−` child.
    Chains,
    /// Every split node makes both children.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SplitOptions {
    pub rule: Rule,
    pub shape: Shape,
    /// A node with at least this many values is split; a smaller one is a leaf.
    pub min_size: usize,
    /// No node at this depth or deeper is split (the root has depth 0). `None`: the study's "no
    /// limit", with [`DEPTH_CAP`] as a safeguard.
    pub max_depth: Option<usize>,
    /// Flag and skip rows holding NaN or inf (their trees are empty) instead of failing.
    pub skip_nonfinite: bool,
}

/// How deep a tree grows when no depth is given. A split may peel off only a few values per
/// level (the `ald` rule does on one-sided nodes, whose μ̂ sits next to an end), and a row of n
/// values would then take n levels, each a round trip to the device; the study's mean rule
/// stays far above it. The summary counts the nodes stopped here.
pub const DEPTH_CAP: usize = 48;

/// The deepest `--max-depth` accepted: tree.json nests one level per depth.
pub const MAX_DEPTH_LIMIT: usize = 1000;

impl SplitOptions {
    /// The depth at which nodes stop splitting.
    pub fn depth_limit(&self) -> usize {
        self.max_depth.unwrap_or(DEPTH_CAP).min(MAX_DEPTH_LIMIT)
    }
}

impl Default for SplitOptions {
    /// The study's own procedure.
    fn default() -> Self {
        SplitOptions {
            rule: Rule::Mean,
            shape: Shape::Chains,
            min_size: 20,
            max_depth: None,
            skip_nonfinite: false,
        }
    }
}

/// One node of a class's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// `root`, then one character per level: `+`, `-`, `++`, `+-`, …
    pub path: String,
    pub depth: usize,
    /// The node's range of the sorted row.
    pub lo: usize,
    pub hi: usize,
    /// The pivot the node was split at; NaN for a leaf.
    pub pivot: f64,
    pub stats: SegmentStats,
    /// Children, as indices into the tree's nodes.
    pub plus: Option<usize>,
    pub minus: Option<usize>,
}

impl Node {
    pub fn count(&self) -> usize {
        self.hi - self.lo
    }

    pub fn aic_best(&self) -> Option<Model> {
        let s = &self.stats;
        ald::aic_best(s.fit.nll, s.baselines.nll_gauss, s.baselines.nll_laplace)
    }

    pub fn is_leaf(&self) -> bool {
        self.plus.is_none() && self.minus.is_none()
    }
}

/// A class's tree (`class`: the tensor's class, also with `--classes`): nodes level by level (parents before children, the root first), and the
/// feature indices of the sorted row, of which each node holds the range `lo..hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassTree {
    pub class: usize,
    pub nodes: Vec<Node>,
    pub order: Vec<u32>,
    /// The row held NaN or inf and was skipped: no nodes.
    pub nonfinite: bool,
}

impl ClassTree {
    /// The feature indices of node `i`, in ascending order of value.
    pub fn features(&self, i: usize) -> &[u32] {
        let n = &self.nodes[i];
        &self.order[n.lo..n.hi]
    }

    /// The features of node `i` that are in none of its children (all of them for a leaf; in a
    /// chain, those of the side not followed).
    pub fn own_features(&self, i: usize) -> Vec<u32> {
        let n = &self.nodes[i];
        let inside = |j: usize| {
            [n.plus, n.minus]
                .iter()
                .flatten()
                .any(|&c| (self.nodes[c].lo..self.nodes[c].hi).contains(&j))
        };
        (n.lo..n.hi)
            .filter(|&j| !inside(j))
            .map(|j| self.order[j])
            .collect()
    }

    /// The deepest node on the all-`+` path from the root (`plus`), or the all-`−` path.
    pub fn terminal(&self, plus: bool) -> Option<usize> {
        let mut at = 0;
        if self.nodes.is_empty() {
            return None;
        }
        while let Some(next) = if plus {
            self.nodes[at].plus
        } else {
            self.nodes[at].minus
        } {
            at = next;
        }
        (at != 0).then_some(at)
    }

    pub fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }
}

/// The pivot of a node under `rule`; NaN when the rule has none (a degenerate node's μ̂).
pub fn pivot(rule: Rule, stats: &SegmentStats) -> f64 {
    match rule {
        Rule::Mean => stats.baselines.mean,
        Rule::Ald => stats.fit.params.loc,
        Rule::Zero => 0.0,
    }
}

/// The f32 threshold `t` such that, for every f32 `x`, `x >= t` exactly when `x >= pivot` in
/// f64: the `+` child of a sorted segment starts at the partition point of `t`.
pub fn threshold(pivot: f64) -> f32 {
    let t = pivot as f32;
    if (t as f64) < pivot {
        t.next_up()
    } else {
        t
    }
}

/// A node of the level being computed: where it goes, and which parent it hangs from.
struct Pending {
    row: usize,
    parent: Option<(usize, bool)>,
    path: String,
    lo: usize,
    hi: usize,
}

/// Grows the tree of every row of the backend's resident chunk, which must have been loaded
/// with indices; `first_class` numbers the rows. `skipped` rows get empty trees.
pub fn grow(
    backend: &mut dyn Backend,
    rows: usize,
    cols: usize,
    first_class: usize,
    skipped: &[usize],
    opts: &SplitOptions,
) -> Result<Vec<ClassTree>> {
    let mut trees = grow_levels(backend, rows, cols, first_class, skipped, opts)?;
    let whole: Vec<Segment> = (0..rows).map(|r| Segment::new(r, 0, cols)).collect();
    for (t, order) in trees.iter_mut().zip(backend.read_indices(&whole)?) {
        if !t.nonfinite {
            if order.len() != cols {
                return Err(Error::Invalid(
                    "the chunk was sorted without feature indices; load it with indices".into(),
                ));
            }
            t.order = order;
        }
    }
    Ok(trees)
}

/// The nodes of every row's tree, without the feature order (which needs no indices): what the
/// bootstrap's replicate heads need.
pub fn grow_nodes(
    backend: &mut dyn Backend,
    rows: usize,
    cols: usize,
    opts: &SplitOptions,
) -> Result<Vec<ClassTree>> {
    grow_levels(backend, rows, cols, 0, &[], opts)
}

fn grow_levels(
    backend: &mut dyn Backend,
    rows: usize,
    cols: usize,
    first_class: usize,
    skipped: &[usize],
    opts: &SplitOptions,
) -> Result<Vec<ClassTree>> {
    let mut trees: Vec<ClassTree> = (0..rows)
        .map(|r| ClassTree {
            class: first_class + r,
            // Every tree has its root; a bare Vec would grow to four nodes at the first push,
            // and narrow rows (one node a class) would hold four times their nodes.
            nodes: Vec::with_capacity(1),
            order: Vec::new(),
            nonfinite: skipped.contains(&r),
        })
        .collect();
    let mut level: Vec<Pending> = (0..rows)
        .filter(|r| !skipped.contains(r))
        .map(|row| Pending {
            row,
            parent: None,
            path: "root".into(),
            lo: 0,
            hi: cols,
        })
        .collect();
    let mut depth = 0;
    while !level.is_empty() {
        let segs: Vec<Segment> = level
            .iter()
            .map(|p| Segment::new(p.row, p.lo, p.hi))
            .collect();
        let stats = backend.segment_stats(&segs)?;
        let ids = add_level(&mut trees, &level, &stats, depth);
        // Nodes big enough, shallow enough and with a pivot are split at it.
        let deeper = depth < opts.depth_limit();
        let candidates: Vec<(usize, f64)> = level
            .iter()
            .zip(&stats)
            .enumerate()
            .filter(|(_, (p, _))| deeper && p.hi - p.lo >= opts.min_size.max(1))
            .map(|(i, (_, st))| (i, pivot(opts.rule, st)))
            .filter(|(_, pv)| pv.is_finite())
            .collect();
        let split_segs: Vec<Segment> = candidates.iter().map(|&(i, _)| segs[i]).collect();
        let thresholds: Vec<f32> = candidates.iter().map(|&(_, pv)| threshold(pv)).collect();
        let points = backend.partition_points(&split_segs, &thresholds, false)?;
        let mut next = Vec::new();
        for (&(i, pv), k) in candidates.iter().zip(points) {
            let p = &level[i];
            let k = k as usize;
            // A pivot with every value on one side splits nothing: the node is a leaf.
            if k <= p.lo || k >= p.hi {
                continue;
            }
            trees[p.row].nodes[ids[i]].pivot = pv;
            next.extend(children(p, ids[i], k, opts.shape));
        }
        level = next;
        depth += 1;
    }
    Ok(trees)
}

/// Adds a level's nodes to their trees, linked to their parents; returns each node's index.
fn add_level(
    trees: &mut [ClassTree],
    level: &[Pending],
    stats: &[SegmentStats],
    depth: usize,
) -> Vec<usize> {
    level
        .iter()
        .zip(stats)
        .map(|(p, st)| {
            let t = &mut trees[p.row];
            let id = t.nodes.len();
            t.nodes.push(Node {
                path: p.path.clone(),
                depth,
                lo: p.lo,
                hi: p.hi,
                pivot: f64::NAN,
                stats: *st,
                plus: None,
                minus: None,
            });
            match p.parent {
                Some((parent, true)) => t.nodes[parent].plus = Some(id),
                Some((parent, false)) => t.nodes[parent].minus = Some(id),
                None => {}
            }
            id
        })
        .collect()
}

/// The children a node split at `k` makes under `shape` (docs/DESIGN.md 2.5).
fn children(p: &Pending, id: usize, k: usize, shape: Shape) -> Vec<Pending> {
    let (plus, minus) = match shape {
        Shape::Full => (true, true),
        Shape::Chains if p.path == "root" => (true, true),
        Shape::Chains => (p.path.ends_with('+'), p.path.ends_with('-')),
    };
    let stem = if p.path == "root" { "" } else { &p.path };
    let mut out = Vec::with_capacity(2);
    if plus {
        out.push(Pending {
            row: p.row,
            parent: Some((id, true)),
            path: format!("{stem}+"),
            lo: k,
            hi: p.hi,
        });
    }
    if minus {
        out.push(Pending {
            row: p.row,
            parent: Some((id, false)),
            path: format!("{stem}-"),
            lo: p.lo,
            hi: k,
        });
    }
    out
}

/// Splits every class of `head`, chunk by chunk, handing each chunk's trees to `each` as soon as
/// they are grown: what a run holds is one chunk's trees, whatever the head's size.
/// `progress` is told how many rows are done.
pub fn split_head_each(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &SplitOptions,
    progress: &mut dyn FnMut(usize),
    each: &mut dyn FnMut(Vec<ClassTree>) -> Result<()>,
) -> Result<()> {
    let (classes, cols) = (head.classes, head.features);
    let chunk_rows = analysis::chunk_rows(backend, classes, cols);
    let mut buf: Vec<f32> = analysis::reserve(chunk_rows.saturating_mul(cols), "a chunk of rows")?;
    let mut first = 0;
    while first < classes {
        let count = chunk_rows.min(classes - first);
        buf.resize(count * cols, 0.0);
        each(grow_read(head, labels, backend, opts, first, &mut buf)?)?;
        first += count;
        progress(first);
    }
    Ok(())
}

/// Reads the rows of `head` from `first` into `buf` (whole rows), sorts them on the backend with
/// their feature indices and grows their trees, each numbered by its class in the tensor.
fn grow_read(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &SplitOptions,
    first: usize,
    buf: &mut [f32],
) -> Result<Vec<ClassTree>> {
    let cols = head.features;
    let skipped: Vec<usize> =
        analysis::read_chunk(head, labels, first, buf, opts.skip_nonfinite, None)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
    backend
        .load_sorted(buf, cols, true)
        .map_err(|e| analysis::at_class(e, head, labels, first))?;
    let mut trees = grow(backend, buf.len() / cols, cols, first, &skipped, opts)?;
    for t in &mut trees {
        t.class = head.class_id(t.class);
    }
    Ok(trees)
}

/// Every class's tree, held together: for tests and small heads (a run streams them with
/// [`split_head_each`]).
pub fn split_head(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &SplitOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ClassTree>> {
    let mut trees = analysis::reserve(head.classes, "the split trees")?;
    split_head_each(head, labels, backend, opts, progress, &mut |t| {
        trees.extend(t);
        Ok(())
    })?;
    Ok(trees)
}

/// The trees of a few classes (by row of `head`), grown again as [`split_head_each`] grew them:
/// the plots need whole trees, which a run does not keep.
pub fn grow_classes(
    head: &Head,
    labels: &[String],
    backend: &mut dyn Backend,
    opts: &SplitOptions,
    rows: &[usize],
) -> Result<Vec<ClassTree>> {
    let cols = head.features;
    let mut out = Vec::with_capacity(rows.len());
    let mut buf = vec![0f32; cols];
    for &k in rows {
        out.extend(grow_read(head, labels, backend, opts, k, &mut buf)?);
    }
    Ok(out)
}

/// What the summary, the verdict and the plot choice need of a head's trees, gathered as the
/// trees stream past: a few numbers a class, not the trees.
#[derive(Clone, Debug, Default)]
pub struct TreeDigest {
    /// Per class, in order: its tree's depth and node count (no nodes: a skipped row).
    pub depth: Vec<u32>,
    pub nodes: Vec<u32>,
    /// Per class: the root's KS distance (NaN without a tree).
    pub root_ks: Vec<f64>,
    /// By depth: the nodes the ALD, the Gaussian and the Laplace win by AIC, and undecided.
    pub wins: Vec<[usize; 4]>,
    /// Nodes left unsplit only because of the implicit [`DEPTH_CAP`].
    pub capped: usize,
}

impl TreeDigest {
    pub fn of(trees: &[ClassTree], opts: &SplitOptions) -> Self {
        let mut d = TreeDigest::default();
        for t in trees {
            d.add(t, opts);
        }
        d
    }

    pub fn add(&mut self, t: &ClassTree, opts: &SplitOptions) {
        self.depth.push(t.depth() as u32);
        self.nodes.push(t.nodes.len() as u32);
        self.root_ks
            .push(t.nodes.first().map_or(f64::NAN, |n| n.stats.ks));
        for n in &t.nodes {
            if self.wins.len() <= n.depth {
                self.wins.resize(n.depth + 1, [0; 4]);
            }
            self.wins[n.depth][match n.aic_best() {
                Some(Model::Ald) => 0,
                Some(Model::Gauss) => 1,
                Some(Model::Laplace) => 2,
                None => 3,
            }] += 1;
            if opts.max_depth.is_none() && n.depth == DEPTH_CAP && n.count() >= opts.min_size.max(1)
            {
                self.capped += 1;
            }
        }
    }

    /// All nodes of all trees.
    pub fn total_nodes(&self) -> usize {
        self.nodes.iter().map(|&n| n as usize).sum()
    }

    /// The ALD's AIC wins among the nodes at each depth (1..): (wins, nodes); depth 0 is (0, 0).
    pub fn ald_wins_by_depth(&self) -> Vec<(usize, usize)> {
        self.wins
            .iter()
            .enumerate()
            .map(|(d, w)| {
                if d == 0 {
                    (0, 0)
                } else {
                    (w[0], w.iter().sum())
                }
            })
            .collect()
    }
}

/// The split trees' files, written as chunks of trees arrive: `tree.csv`, `leaves.csv` and,
/// when asked for, `tree.json` (a JSON array with one class a line, so that it streams too).
pub struct TreeWriter {
    tree_csv: crate::outset::StagedFile,
    leaves_csv: crate::outset::StagedFile,
    tree_json: Option<crate::outset::StagedFile>,
    written: usize,
    opts: SplitOptions,
    digest: TreeDigest,
}

impl TreeWriter {
    /// Opens the files in `set` and writes their headers.
    pub fn new(set: &crate::outset::OutputSet, opts: &SplitOptions, json: bool) -> Result<Self> {
        let mut tree_csv = set.create("tree.csv")?;
        tree_csv.write(|w| write_tree_header(w))?;
        let mut leaves_csv = set.create("leaves.csv")?;
        leaves_csv.write(|w| write_leaves_header(w))?;
        let tree_json = match json {
            true => {
                let mut f = set.create("tree.json")?;
                f.write(|w| w.write_all(b"["))?;
                Some(f)
            }
            false => None,
        };
        Ok(TreeWriter {
            tree_csv,
            leaves_csv,
            tree_json,
            written: 0,
            opts: *opts,
            digest: TreeDigest::default(),
        })
    }

    /// Writes a chunk's trees (classes in order) and adds them to the digest.
    pub fn add(&mut self, trees: &[ClassTree], labels: &[String]) -> Result<()> {
        self.tree_csv.write(|w| write_tree_rows(w, trees, labels))?;
        self.leaves_csv
            .write(|w| write_leaves_rows(w, trees, labels))?;
        if let Some(f) = &mut self.tree_json {
            let first = self.written == 0;
            f.write(|w| write_tree_json_lines(w, trees, labels, first))?;
        }
        for t in trees {
            self.digest.add(t, &self.opts);
        }
        self.written += trees.len();
        Ok(())
    }

    /// Ends and syncs the files; returns the names written and the digest.
    pub fn finish(self) -> Result<(Vec<String>, TreeDigest)> {
        let mut names = vec!["tree.csv".to_owned(), "leaves.csv".to_owned()];
        self.tree_csv.finish()?;
        self.leaves_csv.finish()?;
        if let Some(mut f) = self.tree_json {
            f.write(|w| w.write_all(b"\n]\n"))?;
            f.finish()?;
            names.push("tree.json".into());
        }
        Ok((names, self.digest))
    }
}

/// The columns of `tree.csv`, in order (the list, then the class label).
pub const TREE_COLUMNS: [&str; 18] = [
    "class",
    "path",
    "depth",
    "count",
    "pivot",
    "min",
    "max",
    "loc",
    "scale",
    "kappa",
    "nll",
    "boundary",
    "degenerate",
    "ks",
    "mean",
    "std",
    "aic_best",
    "label",
];

fn num(buf: &mut ryu::Buffer, x: f64) -> String {
    crate::report::float_into(buf, x).to_owned()
}

use crate::report::flag;

fn node_fields(buf: &mut ryu::Buffer, n: &Node) -> [String; 14] {
    let (f, b) = (&n.stats.fit, &n.stats.baselines);
    [
        n.count().to_string(),
        num(buf, n.pivot),
        num(buf, b.min),
        num(buf, b.max),
        num(buf, f.params.loc),
        num(buf, f.params.scale),
        num(buf, f.params.kappa),
        num(buf, f.nll),
        flag(f.boundary).into(),
        flag(f.degenerate).into(),
        num(buf, n.stats.ks),
        num(buf, b.mean),
        num(buf, b.std()),
        n.aic_best().map_or("NaN", Model::name).into(),
    ]
}

/// `tree.csv`'s header line.
pub fn write_tree_header(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "{}", TREE_COLUMNS.join(","))
}

/// `tree.csv`'s rows of `trees`: a row per node, classes in order, each tree level by level.
/// Blocks of trees are rendered in parallel, a group at a time, and written in order.
pub fn write_tree_rows(
    w: &mut dyn Write,
    trees: &[ClassTree],
    labels: &[String],
) -> std::io::Result<()> {
    let render = |trees: &[ClassTree]| -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| Error::Invalid(format!("cannot render tree.csv: {e}"));
        let mut buf = ryu::Buffer::new();
        for t in trees {
            let label = labels.get(t.class).map(String::as_str).unwrap_or("");
            for n in &t.nodes {
                let mut rec = vec![t.class.to_string(), n.path.clone(), n.depth.to_string()];
                rec.extend(node_fields(&mut buf, n));
                rec.push(label.to_owned());
                w.write_record(&rec).map_err(err)?;
            }
        }
        w.into_inner()
            .map_err(|e| Error::Invalid(format!("cannot render tree.csv: {e}")))
    };
    // Blocks of about 4096 nodes (trees range from one node to thousands), 64 blocks at a time:
    // what is held is bounded by nodes, not classes.
    let mut blocks = Vec::new();
    let (mut start, mut nodes) = (0, 0);
    for (i, t) in trees.iter().enumerate() {
        nodes += t.nodes.len();
        if nodes >= 4096 || i + 1 == trees.len() {
            blocks.push(start..i + 1);
            (start, nodes) = (i + 1, 0);
        }
    }
    for group in blocks.chunks(64) {
        let rendered: Vec<Vec<u8>> = group
            .par_iter()
            .map(|r| render(&trees[r.clone()]))
            .collect::<Result<_>>()
            .map_err(std::io::Error::other)?;
        for b in rendered {
            w.write_all(&b)?;
        }
    }
    Ok(())
}

/// The whole `tree.csv` of `trees`.
pub fn write_tree_csv(
    w: &mut dyn Write,
    trees: &[ClassTree],
    labels: &[String],
) -> std::io::Result<()> {
    write_tree_header(w)?;
    write_tree_rows(w, trees, labels)
}

fn joined(ix: &[u32]) -> String {
    ix.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// The columns of `leaves.csv`.
pub const LEAVES_COLUMNS: [&str; 8] = [
    "class",
    "label",
    "plus_path",
    "plus_count",
    "plus_features",
    "minus_path",
    "minus_count",
    "minus_features",
];

/// `leaves.csv`'s header line.
pub fn write_leaves_header(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "{}", LEAVES_COLUMNS.join(","))
}

/// `leaves.csv`: per class, the terminal node of the all-`+` path (the features that speak
/// most for the class) and of the all-`−` path (most against it), with their feature indices,
/// space-separated, strongest first (largest weight first for `+`, most negative for `−`).
pub fn write_leaves_rows(
    out: &mut dyn Write,
    trees: &[ClassTree],
    labels: &[String],
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let err = std::io::Error::from;
    for t in trees {
        let side = |plus: bool| match t.terminal(plus) {
            Some(i) => {
                let mut f = t.features(i).to_vec();
                if plus {
                    f.reverse();
                }
                (
                    t.nodes[i].path.clone(),
                    t.nodes[i].count().to_string(),
                    joined(&f),
                )
            }
            None => (String::new(), "0".into(), String::new()),
        };
        let (pp, pc, pf) = side(true);
        let (mp, mc, mf) = side(false);
        w.write_record([
            t.class.to_string(),
            labels.get(t.class).cloned().unwrap_or_default(),
            pp,
            pc,
            pf,
            mp,
            mc,
            mf,
        ])
        .map_err(err)?;
    }
    w.flush()
}

/// The whole `leaves.csv` of `trees`.
pub fn write_leaves_csv(
    out: &mut dyn Write,
    trees: &[ClassTree],
    labels: &[String],
) -> std::io::Result<()> {
    write_leaves_header(out)?;
    write_leaves_rows(out, trees, labels)
}

/// `tree.json`'s lines of `trees`: per class, the nested tree, one class a line, each line
/// after a `,` unless it is the file's `first`. Each node lists its `features` in none of its
/// children, so a node's whole set is its own and its descendants'.
pub fn write_tree_json_lines(
    w: &mut dyn Write,
    trees: &[ClassTree],
    labels: &[String],
    first: bool,
) -> std::io::Result<()> {
    /// A node as tree.json nests it; non-finite numbers become null.
    #[derive(serde::Serialize)]
    struct NodeJson<'a> {
        path: &'a str,
        depth: usize,
        count: usize,
        pivot: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        loc: Option<f64>,
        scale: Option<f64>,
        kappa: Option<f64>,
        nll: Option<f64>,
        boundary: bool,
        degenerate: bool,
        ks: Option<f64>,
        mean: Option<f64>,
        std: Option<f64>,
        aic_best: Option<&'static str>,
        features: Vec<u32>,
        children: Vec<NodeJson<'a>>,
    }
    #[derive(serde::Serialize)]
    struct ClassJson<'a> {
        class: usize,
        label: Option<&'a String>,
        nonfinite: bool,
        root: Option<NodeJson<'a>>,
    }
    fn node(t: &ClassTree, i: usize) -> NodeJson<'_> {
        let n = &t.nodes[i];
        let (f, b) = (&n.stats.fit, &n.stats.baselines);
        let x = |v: f64| v.is_finite().then_some(v);
        NodeJson {
            path: &n.path,
            depth: n.depth,
            count: n.count(),
            pivot: x(n.pivot),
            min: x(b.min),
            max: x(b.max),
            loc: x(f.params.loc),
            scale: x(f.params.scale),
            kappa: x(f.params.kappa),
            nll: x(f.nll),
            boundary: f.boundary,
            degenerate: f.degenerate,
            ks: x(n.stats.ks),
            mean: x(b.mean),
            std: x(b.std()),
            aic_best: n.aic_best().map(Model::name),
            features: t.own_features(i),
            children: [n.plus, n.minus]
                .iter()
                .flatten()
                .map(|&c| node(t, c))
                .collect(),
        }
    }
    for (k, t) in trees.iter().enumerate() {
        let class = ClassJson {
            class: t.class,
            label: labels.get(t.class),
            nonfinite: t.nonfinite,
            root: (!t.nodes.is_empty()).then(|| node(t, 0)),
        };
        w.write_all(if first && k == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *w, &class).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// The whole `tree.json` of `trees`.
pub fn write_tree_json(w: &mut dyn Write, trees: &[ClassTree], labels: &[String]) -> Result<()> {
    let io = |e: std::io::Error| Error::Invalid(format!("cannot write tree.json: {e}"));
    w.write_all(b"[").map_err(io)?;
    write_tree_json_lines(w, trees, labels, true).map_err(io)?;
    w.write_all(b"\n]\n").map_err(io)
}

/// The summary's section on the trees: depths, sizes, and the recursive hypothesis tested: how
/// often a node below the root is itself best fitted by the ALD (AIC), by depth.
pub fn summary_md(
    digest: &TreeDigest,
    opts: &SplitOptions,
    null: Option<&crate::bootstrap::TreeNull>,
) -> String {
    let grown: Vec<usize> = (0..digest.nodes.len())
        .filter(|&k| digest.nodes[k] > 0)
        .collect();
    let depths: Vec<f64> = grown.iter().map(|&k| digest.depth[k] as f64).collect();
    let sizes: Vec<f64> = grown.iter().map(|&k| digest.nodes[k] as f64).collect();
    let mut s = String::new();
    s.push_str("## Split trees (docs/DESIGN.md 2.5)\n\n");
    let capped = digest.capped;
    if capped > 0 {
        s.push_str(&format!(
            "**{capped} nodes reached the default depth cap of {DEPTH_CAP} and were not split \
             further**: this rule peels off few values per level here; pass --max-depth to go \
             deeper.\n\n"
        ));
    }
    s.push_str(&format!(
        "Rule `{}`, shape `{}`, min size {}, max depth {}: {} classes, {} nodes.\n\n",
        serde_json::to_value(opts.rule)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        serde_json::to_value(opts.shape)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        opts.min_size,
        opts.max_depth
            .map_or(format!("none (cap {DEPTH_CAP})"), |d| d.to_string()),
        grown.len(),
        sizes.iter().sum::<f64>(),
    ));
    s.push_str(&sizes_md(&depths, &sizes));
    s.push_str(&by_depth_md(&digest.wins, null));
    s
}

/// Depth and node count per class: median, 5 %, 95 %, max.
fn sizes_md(depths: &[f64], sizes: &[f64]) -> String {
    let mut s = String::new();
    let q = |v: &[f64], p: f64| crate::report::quantile(v, p);
    s.push_str("| per class | median | 5% | 95% | max |\n|---|---:|---:|---:|---:|\n");
    for (what, v) in [("depth", depths), ("nodes", sizes)] {
        s.push_str(&format!(
            "| {what} | {} | {} | {} | {} |\n",
            q(v, 0.5),
            q(v, 0.05),
            q(v, 0.95),
            v.iter().copied().fold(0.0, f64::max)
        ));
    }
    s
}

/// Which model wins the nodes at each depth below the root, and with the bootstrap, the ALD's
/// share beside its nulls.
fn by_depth_md(wins_by_depth: &[[usize; 4]], null: Option<&crate::bootstrap::TreeNull>) -> String {
    let mut s = String::new();
    s.push_str(
        "\nDo the parts follow an ALD again? Nodes below the root by depth, and which model \
         fits each best by AIC",
    );
    if null.is_some() {
        s.push_str(
            "; beside the ALD's share (with its 95 % binomial interval), the share it gets on \
             replicate heads of Gaussian rows and of ALD rows (median [95 % interval] over \
             replicate heads). One-sided parts favour a skewed law whatever the rows: only a share \
             above the Gaussian rows' interval says anything.",
        );
    }
    s.push_str(":\n\n| depth | nodes | ALD | Gaussian | Laplace | undecided |");
    if null.is_some() {
        s.push_str(" ALD [95 %] | ALD under Gaussian rows | ALD under ALD rows |");
    }
    s.push_str("\n|---:|---:|---:|---:|---:|---:|");
    if null.is_some() {
        s.push_str("---:|---:|---:|");
    }
    s.push('\n');
    let pct1 = |x: f64| {
        if x.is_finite() {
            format!("{:.1}%", 100.0 * x)
        } else {
            "—".into()
        }
    };
    let iv = |i: crate::bootstrap::Interval| {
        format!("{} [{}, {}]", pct1(i.median), pct1(i.lo), pct1(i.hi))
    };
    for (d, &wins) in wins_by_depth.iter().enumerate().skip(1) {
        let total: usize = wins.iter().sum();
        let pct = |k: usize| format!("{:.1}%", 100.0 * wins[k] as f64 / total.max(1) as f64);
        s.push_str(&format!(
            "| {d} | {total} | {} | {} | {} | {} |",
            pct(0),
            pct(1),
            pct(2),
            pct(3)
        ));
        if let Some(null) = null {
            let of = |v: &Vec<Vec<f64>>| {
                crate::bootstrap::Interval::of(v.get(d).map_or(&[][..], |x| &x[..]))
            };
            s.push_str(&format!(
                " {} | {} | {} |",
                iv(crate::verdict::wilson(wins[0], total)),
                iv(of(&null.gauss)),
                iv(of(&null.ald))
            ));
        }
        s.push('\n');
    }
    s
}
