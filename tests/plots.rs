//! Pictures: the files exist, are valid PNG and SVG images of the promised size, are linked from
//! the summary, and degenerate classes draw without crashing.

use std::path::Path;
use std::process::Command;

use aldfit::analysis::{self, Options};
use aldfit::backend::{self, BackendKind};
use aldfit::head::Head;
use aldfit::plots;
use aldfit::tree::{self, SplitOptions};

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

fn check_svg(path: &Path, size: (u32, u32)) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains("<svg"), "{} is not an SVG", path.display());
    assert!(
        s.contains(&format!("width=\"{}\"", size.0))
            && s.contains(&format!("height=\"{}\"", size.1)),
        "{}: wrong size",
        path.display()
    );
    assert!(
        s.trim_end().ends_with("</svg>"),
        "{} is truncated",
        path.display()
    );
}

fn check_pair(dir: &Path, stem: &str, size: (u32, u32)) {
    assert_eq!(
        png_size(&dir.join(format!("{stem}.png"))),
        size,
        "{stem}.png"
    );
    check_svg(&dir.join(format!("{stem}.svg")), size);
}

#[test]
fn fit_with_plots_draws_and_links_every_picture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(["fit", "--backend", "cpu", "--quiet", "--split", "--plots"])
        .args([
            "--plot-classes",
            "870,goldfish",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plots_dir = out.join("plots");
    check_pair(&plots_dir, "overview", plots::OVERVIEW_SIZE);
    for k in [870, 1] {
        check_pair(&plots_dir, &format!("class-{k}"), plots::CLASS_SIZE);
        check_pair(&plots_dir, &format!("tree-{k}"), plots::TREE_SIZE);
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Plots"));
    for link in summary
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
    {
        if link.starts_with("plots/") {
            assert!(
                out.join(link).exists(),
                "summary links a missing file: {link}"
            );
        }
    }
    assert!(summary.contains("class 1 (goldfish)"));
    // No temporary files left beside the pictures.
    for e in std::fs::read_dir(&plots_dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "left behind: {name}");
    }
    // By default: the best and worst classes by KS.
    let out2 = dir.path().join("out2");
    let o = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args([
            "fit",
            "--backend",
            "cpu",
            "--quiet",
            "--plots",
            "--plot-worst",
            "1",
        ])
        .args(["--plot-best", "1", "--out", out2.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pngs = std::fs::read_dir(out2.join("plots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs, 3, "overview + best + worst");
    // A class that does not exist is an error that says so.
    let o = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args([
            "fit",
            "--backend",
            "cpu",
            "--quiet",
            "--plots",
            "--plot-classes",
            "zebra crossing",
        ])
        .args(["--out", out2.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("zebra crossing") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn degenerate_and_one_sided_classes_plot_without_crashing() {
    let cols = 64;
    let mut values = vec![0f32; 5 * cols];
    values[cols..2 * cols].fill(3.5); // constant
    for (i, v) in values[2 * cols..3 * cols].iter_mut().enumerate() {
        *v = if i % 2 == 0 { -1.0 } else { 1.0 }; // two values
    }
    for (i, v) in values[3 * cols..4 * cols].iter_mut().enumerate() {
        *v = 1e-3 * (i + 1) as f32; // positive only
    }
    for (i, v) in values[4 * cols..].iter_mut().enumerate() {
        *v = 1e30 + i as f32 * 1e24; // huge offset
    }
    let head = Head::from_f32("degenerate", 5, cols, &values).unwrap();
    let mut b = backend::create(BackendKind::Cpu).unwrap();
    let a = analysis::analyse(&head, &[], b.as_mut(), &Options::default(), &mut |_| {}).unwrap();
    let trees = tree::split_head(
        &head,
        &[],
        b.as_mut(),
        &SplitOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for k in 0..5 {
        let row = &values[k * cols..(k + 1) * cols];
        plots::class_fit(dir.path(), "degenerate", k, &[], row, &a.classes[k]).unwrap();
        plots::split_tree(dir.path(), "degenerate", &[], &trees[k]).unwrap();
        check_pair(dir.path(), &format!("class-{k}"), plots::CLASS_SIZE);
        check_pair(dir.path(), &format!("tree-{k}"), plots::TREE_SIZE);
    }
    plots::overview(dir.path(), "degenerate", &a).unwrap();
    check_pair(dir.path(), "overview", plots::OVERVIEW_SIZE);
}

#[test]
fn classes_resolve_by_index_or_label() {
    let labels: Vec<String> = ["tench", "goldfish", "Great White Shark"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let items: Vec<String> = ["2", "goldfish", "great white shark"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        plots::resolve_classes(&items, &labels, 3).unwrap(),
        vec![2, 1, 2]
    );
    let e = plots::resolve_classes(&["3".into()], &labels, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("class 3 does not exist"), "{e}");
}
