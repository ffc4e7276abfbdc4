//! Split trees (docs/DESIGN.md 2.5) on every backend against a plain recursive implementation written
//! straight from the definition: the same nodes, counts and feature sets exactly, and fits
//! within the docs/DESIGN.md tolerances.

mod common;

use aldfit::ald;
use aldfit::backend::SegmentStats;
use aldfit::head::Head;
use aldfit::synth;
use aldfit::tolerances;
use aldfit::tree::{self, ClassTree, Rule, Shape, SplitOptions};
use common::backends;

/// A value and its feature index.
type Pair = (f32, u32);

/// A node as the definition makes it.
struct Expected {
    path: String,
    depth: usize,
    /// Values ascending (ties in feature order) and their features.
    values: Vec<f32>,
    features: Vec<u32>,
    pivot: f64,
    stats: SegmentStats,
}

/// The definition: a node with at least `min_size` values (and above `max_depth`) is split at
/// its pivot into `+` (values ≥ pivot) and `−` (values < pivot) when both are nonempty; `chains`
/// follows only the side a node is on.
fn oracle(
    node: Vec<(f32, u32)>,
    path: String,
    depth: usize,
    o: &SplitOptions,
    out: &mut Vec<Expected>,
) {
    let values: Vec<f32> = node.iter().map(|p| p.0).collect();
    let (fit, baselines) = ald::fit_and_baselines_sorted(&values);
    let stats = SegmentStats {
        ks: ald::ks_sorted(&values, &fit.params),
        fit,
        baselines,
    };
    let pivot = match o.rule {
        Rule::Mean => stats.baselines.mean,
        Rule::Ald => stats.fit.params.loc,
        Rule::Zero => 0.0,
    };
    let at = out.len();
    out.push(Expected {
        path: path.clone(),
        depth,
        values,
        features: node.iter().map(|p| p.1).collect(),
        pivot: f64::NAN,
        stats,
    });
    if node.len() < o.min_size || depth >= o.depth_limit() || !pivot.is_finite() {
        return;
    }
    let (plus, minus): (Vec<Pair>, Vec<Pair>) = node.into_iter().partition(|p| p.0 as f64 >= pivot);
    if plus.is_empty() || minus.is_empty() {
        return;
    }
    out[at].pivot = pivot;
    let root = path == "root";
    let stem = if root { String::new() } else { path.clone() };
    let follow_plus = o.shape == Shape::Full || root || path.ends_with('+');
    let follow_minus = o.shape == Shape::Full || root || path.ends_with('-');
    if follow_plus {
        oracle(plus, format!("{stem}+"), depth + 1, o, out);
    }
    if follow_minus {
        oracle(minus, format!("{stem}-"), depth + 1, o, out);
    }
}

fn expected(row: &[f32], o: &SplitOptions) -> Vec<Expected> {
    let mut node: Vec<(f32, u32)> = row
        .iter()
        .enumerate()
        .map(|(i, &x)| (x, i as u32))
        .collect();
    node.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    oracle(node, "root".into(), 0, o, &mut out);
    out
}

fn compare(name: &str, class: usize, got: &ClassTree, want: &[Expected]) {
    let mut got_paths: Vec<&str> = got.nodes.iter().map(|n| n.path.as_str()).collect();
    let mut want_paths: Vec<&str> = want.iter().map(|n| n.path.as_str()).collect();
    got_paths.sort();
    want_paths.sort();
    assert_eq!(
        got_paths, want_paths,
        "{name}: class {class}: different nodes"
    );
    for w in want {
        let (i, n) = got
            .nodes
            .iter()
            .enumerate()
            .find(|(_, n)| n.path == w.path)
            .unwrap();
        let ctx = format!("{name}: class {class} node {}", w.path);
        assert_eq!(n.depth, w.depth, "{ctx}");
        assert_eq!(n.count(), w.features.len(), "{ctx}: count");
        let (mut a, mut b) = (got.features(i).to_vec(), w.features.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "{ctx}: feature set");
        assert_eq!(n.pivot.is_nan(), w.pivot.is_nan(), "{ctx}: split or not");
        if !w.pivot.is_nan() {
            assert!(
                (n.pivot - w.pivot).abs() <= 1e-5 * w.stats.baselines.std().max(1e-30),
                "{ctx}: pivot {} vs {}",
                n.pivot,
                w.pivot
            );
        }
        let mut m = Vec::new();
        tolerances::check_stats(&w.values, &n.stats, &w.stats, &mut m);
        let bad = tolerances::violations(&m);
        assert!(bad.is_empty(), "{ctx}: {}", bad[0]);
    }
}

fn check_head(label: &str, values: &[f32], classes: usize, cols: usize) {
    let head = Head::from_f32(label, classes, cols, values).unwrap();
    let variants = [
        SplitOptions::default(),
        SplitOptions {
            rule: Rule::Ald,
            ..SplitOptions::default()
        },
        SplitOptions {
            rule: Rule::Zero,
            shape: Shape::Full,
            min_size: 50,
            max_depth: Some(3),
            ..SplitOptions::default()
        },
        SplitOptions {
            rule: Rule::Mean,
            shape: Shape::Full,
            min_size: 40,
            max_depth: Some(4),
            ..SplitOptions::default()
        },
    ];
    for o in &variants {
        let want: Vec<Vec<Expected>> = values.chunks(cols).map(|r| expected(r, o)).collect();
        for (name, mut b) in backends() {
            let trees = tree::split_head(&head, &[], b.as_mut(), o, &mut |_| {}).unwrap();
            assert_eq!(trees.len(), classes);
            for (k, t) in trees.iter().enumerate() {
                compare(&format!("{name} {label} {o:?}"), k, t, &want[k]);
            }
        }
    }
}

#[test]
fn trees_match_the_definition_on_synthetic_ald_rows() {
    let (values, _) = synth::ald_head(24, 700, 21);
    check_head("ald", &values, 24, 700);
}

#[test]
fn trees_match_the_definition_on_nasty_rows() {
    // Ties, constant and two-valued rows, zeros, heavy tails, one-sided rows, huge offsets.
    let rows = 2 * synth::NASTY_KINDS.len();
    let values = synth::nasty_head(rows, 300, 22);
    check_head("nasty", &values, rows, 300);
}

#[test]
fn trees_match_the_definition_on_the_bundled_head() {
    let (head, _) = Head::bundled().unwrap();
    let mut values = vec![0f32; 40 * head.features];
    for (r, row) in values.chunks_mut(head.features).enumerate() {
        head.read_rows(r * 25, row);
    }
    check_head("bundled", &values, 40, head.features);
}

#[test]
fn chains_follow_one_side_and_stop_below_the_minimum_size() {
    let (values, _) = synth::ald_head(1, 2000, 5);
    let head = Head::from_f32("one", 1, 2000, &values).unwrap();
    let mut b = aldfit::backend::create(aldfit::backend::BackendKind::Cpu).unwrap();
    let t = &tree::split_head(
        &head,
        &[],
        b.as_mut(),
        &SplitOptions::default(),
        &mut |_| {},
    )
    .unwrap()[0];
    for n in &t.nodes {
        // Past the root, every path is all `+` or all `-`.
        if n.path != "root" {
            assert!(n.path.chars().all(|c| c == '+') || n.path.chars().all(|c| c == '-'));
        }
        // Leaves are small or unsplittable; split nodes are big enough.
        if n.is_leaf() {
            assert!(n.pivot.is_nan());
        } else {
            assert!(n.count() >= 20 && n.pivot.is_finite());
        }
    }
    let plus = t.terminal(true).unwrap();
    let minus = t.terminal(false).unwrap();
    assert!(t.nodes[plus].count() < 20 && t.nodes[minus].count() < 20);
    // The + terminal holds the row's largest weights, the − terminal its most negative.
    let max_feature = (0..2000)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap() as u32;
    let min_feature = (0..2000)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap() as u32;
    assert!(t.features(plus).contains(&max_feature));
    assert!(t.features(minus).contains(&min_feature));
    // Own features partition the row: each feature in exactly one node's own set.
    let mut all: Vec<u32> = (0..t.nodes.len()).flat_map(|i| t.own_features(i)).collect();
    all.sort();
    assert_eq!(all, (0..2000).collect::<Vec<u32>>());
}

#[test]
fn thresholds_make_f32_comparisons_exact() {
    for p in [0.1f64, -0.1, 1.0, 0.0, -0.0, 1e-40, 3.4e38, f32::MAX as f64] {
        let t = tree::threshold(p);
        for x in [t, t.next_down(), t.next_up()] {
            assert_eq!(x >= t, x as f64 >= p, "pivot {p}, x {x}");
        }
    }
}

#[test]
fn a_rule_that_peels_one_value_per_level_stops_at_the_cap_and_says_so() {
    // Exponential (one-sided) rows: μ̂ sits next to the minimum, so the `ald` rule's `+` child
    // loses about one value per level.
    let mut r = common::rng(31);
    let cols = 3000;
    let values: Vec<f32> = (0..2 * cols)
        .map(|_| -(rand::Rng::random::<f64>(&mut r)).ln() as f32)
        .collect();
    let head = Head::from_f32("exp", 2, cols, &values).unwrap();
    let mut b = aldfit::backend::create(aldfit::backend::BackendKind::Cpu).unwrap();
    let ald = SplitOptions {
        rule: Rule::Ald,
        ..SplitOptions::default()
    };
    let trees = tree::split_head(&head, &[], b.as_mut(), &ald, &mut |_| {}).unwrap();
    assert_eq!(trees[0].depth(), tree::DEPTH_CAP);
    let digest = tree::TreeDigest::of(&trees, &ald);
    assert!(digest.capped > 0);
    assert!(tree::summary_md(&digest, &ald, None).contains("depth cap"));
    // An explicit, deeper limit is honoured, and the deep tree still renders.
    let deep = SplitOptions {
        max_depth: Some(300),
        ..ald
    };
    let trees = tree::split_head(&head, &[], b.as_mut(), &deep, &mut |_| {}).unwrap();
    assert!(trees[0].depth() > tree::DEPTH_CAP);
    assert_eq!(tree::TreeDigest::of(&trees, &deep).capped, 0);
    let mut json = Vec::new();
    tree::write_tree_json(&mut json, &trees, &[]).unwrap();
    assert!(json.len() > 1000);
}

/// The memory check's node bound (`memory::max_nodes`) holds for every tree actually grown, at
/// small and large --min-size, both shapes, every rule, shallow and deep: a bound that trees
/// exceed would let a run past the check and out of memory.
#[test]
fn trees_never_have_more_nodes_than_the_memory_bound() {
    let mut cpu = aldfit::backend::cpu::CpuBackend::new();
    let heads = [
        ("ald", synth::ald_head(12, 300, 5).0, 300),
        ("nasty", synth::nasty_head(24, 41, 6), 41),
    ];
    for (name, values, cols) in &heads {
        let head = Head::from_f32(name, values.len() / cols, *cols, values).unwrap();
        for rule in [Rule::Mean, Rule::Ald, Rule::Zero] {
            for shape in [Shape::Chains, Shape::Full] {
                for (min_size, max_depth) in [(1, None), (2, Some(1000)), (5, Some(3)), (20, None)]
                {
                    let o = SplitOptions {
                        rule,
                        shape,
                        min_size,
                        max_depth,
                        ..SplitOptions::default()
                    };
                    let bound = aldfit::memory::max_nodes(*cols, &o);
                    let trees = tree::split_head(&head, &[], &mut cpu, &o, &mut |_| {}).unwrap();
                    let most = trees.iter().map(|t| t.nodes.len()).max().unwrap();
                    assert!(most <= bound, "{name} {o:?}: {most} nodes > bound {bound}");
                }
            }
        }
    }
}
