//! The `aldfit` binary end to end: outputs, their columns and round-tripping floats, and the
//! messages (never a panic, never a half-written output) for bad input.

mod common;

use std::path::{Path, PathBuf};

use aldfit::ald;
use aldfit::head::Head;
use aldfit::report::CLASS_COLUMNS;
use aldfit::synth::write_safetensors;
use common::{aldfit, assert_fails, text};
use sha2::Digest;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn fit_on_the_bundled_head_writes_round_tripping_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = aldfit(&[
        "fit",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (header, rows) = read_csv(&out.join("classes.csv"));
    let promised = "class,label,n,zeros,loc,scale,kappa,nll,boundary,degenerate,ks,nll_gauss,nll_laplace,aic_best,seed_slope_pos,seed_intercept_pos,seed_r2_pos,seed_slope_neg,seed_intercept_neg,seed_r2_neg";
    assert_eq!(header[..20].join(","), promised);
    assert_eq!(header, CLASS_COLUMNS);
    assert_eq!(rows.len(), 1000);

    // Every printed float parses back to exactly the reference value of that class.
    let (head, labels) = Head::bundled().unwrap();
    let values = head.to_f32();
    for k in [0usize, 1, 500, 870, 999] {
        let row = &rows[k];
        let mut xs = values[k * 1280..(k + 1) * 1280].to_vec();
        xs.sort_by(f32::total_cmp);
        let (fit, b) = ald::fit_and_baselines_sorted(&xs);
        let get = |name: &str| row[col(&header, name)].parse::<f64>().unwrap();
        assert_eq!(row[col(&header, "class")], k.to_string());
        assert_eq!(row[col(&header, "label")], labels[k]);
        assert_eq!(get("loc").to_bits(), fit.params.loc.to_bits());
        assert_eq!(get("scale").to_bits(), fit.params.scale.to_bits());
        assert_eq!(get("kappa").to_bits(), fit.params.kappa.to_bits());
        assert_eq!(get("nll").to_bits(), fit.nll.to_bits());
        assert_eq!(
            get("ks").to_bits(),
            ald::ks_sorted(&xs, &fit.params).to_bits()
        );
        assert_eq!(get("nll_gauss").to_bits(), b.nll_gauss.to_bits());
        let pos: Vec<f32> = xs.iter().copied().filter(|&x| x > 0.0).collect();
        assert_eq!(
            get("seed_r2_pos").to_bits(),
            ald::study_line_positive_sorted(&pos).r2.to_bits()
        );
        let best = ald::aic_best(fit.nll, b.nll_gauss, b.nll_laplace)
            .unwrap()
            .name();
        assert_eq!(row[col(&header, "aic_best")], best);
    }

    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    // The input's BLAKE3 is the file's, as b3sum gives it, in the summary and run.json.
    let file = std::fs::read(aldfit::head::BUNDLED_NAME).unwrap();
    let b3 = blake3::hash(&file).to_hex().to_string();
    assert!(summary.contains(&format!("blake3 `{b3}`")), "{summary}");
    assert!(summary.contains("1000 classes × 1280 features"));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["classes"], 1000);
    assert_eq!(run["backend"]["name"], "cpu");
    assert_eq!(run["input"]["blake3"], b3.as_str());
    let wins = &run["aic_wins"];
    let total: u64 = ["ald", "gauss", "laplace", "none"]
        .iter()
        .map(|m| wins[m].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1000);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn fit_on_the_ppocr_head_finds_its_labels_beside_it() {
    let Some(head) = common::shared_data("ppocrv4_rec_ch_ctc_head.safetensors") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Without -q: the notes on stderr say what was read.
    let o = aldfit(&[
        "fit",
        head.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (header, rows) = read_csv(&dir.path().join("classes.csv"));
    assert_eq!(rows.len(), 6625);
    assert_eq!(rows[0][col(&header, "label")], "<blank>");
    assert_eq!(rows[6624][col(&header, "label")], "<space>");
    assert!(text(&o.stderr).contains("6625 classes × 120 features"));
}

#[test]
fn inspect_lists_tensors_and_the_choice() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    aldfit::synth::write_safetensors_bytes(
        &p,
        &[
            (
                "features.0.weight",
                safetensors::Dtype::F32,
                vec![3, 3],
                &[0u8; 36],
            ),
            (
                "classifier.1.weight",
                safetensors::Dtype::F16,
                vec![4, 2],
                &[0u8; 16],
            ),
        ],
    )
    .unwrap();
    let o = aldfit(&["inspect", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(
        s.contains("features.0.weight") && s.contains("[4, 2]") && s.contains("F16"),
        "{s}"
    );
    assert!(
        s.contains("`fit` would analyse `classifier.1.weight`"),
        "{s}"
    );
    // Both hashes of the file, to check against a published sha256 or a b3sum.
    let bytes = std::fs::read(&p).unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let b3 = blake3::hash(&bytes).to_hex().to_string();
    assert!(s.contains(&format!("sha256 {sha}, blake3 {b3}")), "{s}");
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let o = out.to_str().unwrap();

    assert_fails(
        &aldfit(&[
            "fit",
            d.join("nope.safetensors").to_str().unwrap(),
            "--out",
            o,
        ]),
        &["nope.safetensors", "No such file"],
    );

    let (mut v, _) = aldfit::synth::ald_head(6, 40, 2);
    v[3 * 40 + 11] = f32::NAN;
    let bad = d.join("nan.safetensors");
    write_safetensors(&bad, "fc.weight", 6, 40, &v).unwrap();
    assert_fails(
        &aldfit(&["fit", bad.to_str().unwrap(), "--out", o]),
        &[
            "nan.safetensors",
            "`fc.weight`",
            "class 3",
            "feature 11",
            "--skip-nonfinite",
        ],
    );

    let labels = d.join("labels.txt");
    std::fs::write(&labels, "one\ntwo\n").unwrap();
    assert_fails(
        &aldfit(&[
            "fit",
            bad.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            o,
        ]),
        &["labels.txt", "2 labels", "6 classes"],
    );
    assert_fails(
        &aldfit(&[
            "fit",
            bad.to_str().unwrap(),
            "--tensor",
            "fc.bias",
            "--out",
            o,
        ]),
        &["no tensor named `fc.bias`"],
    );
    assert_fails(
        &aldfit(&["fit", "--tensor", "x", "--out", o]),
        &["need a HEAD"],
    );
    assert!(!out.exists(), "a failed run left output behind");

    // Flagged and skipped instead.
    let ok = aldfit(&[
        "fit",
        bad.to_str().unwrap(),
        "--skip-nonfinite",
        "--quiet",
        "--out",
        o,
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let (header, rows) = read_csv(&out.join("classes.csv"));
    let flags: Vec<&str> = rows
        .iter()
        .map(|r| r[col(&header, "nonfinite")].as_str())
        .collect();
    assert_eq!(flags, ["0", "0", "0", "1", "0", "0"]);
    assert_eq!(rows[3][col(&header, "kappa")], "NaN");
}

#[test]
fn synth_writes_a_head_that_fit_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.safetensors");
    let o = aldfit(&[
        "synth",
        p.to_str().unwrap(),
        "--classes",
        "30",
        "--features",
        "64",
        "--seed",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let h = Head::open(&p, None, false).unwrap();
    assert_eq!(
        (h.classes, h.features, h.tensor.as_str()),
        (30, 64, "fc.weight")
    );
    assert_eq!(h.to_f32(), aldfit::synth::ald_head(30, 64, 4).0);
}

/// `fit --backend wgpu` against `fit --backend cpu` on the real heads, column by column, under the
/// docs/DESIGN.md section 4 tolerances. Needs a wgpu adapter (lavapipe in CI).
#[test]
fn wgpu_and_cpu_fits_agree_on_the_real_heads() {
    let mut heads: Vec<Option<PathBuf>> = vec![None];
    if let Some(p) = common::shared_data("ppocrv4_rec_ch_ctc_head.safetensors") {
        heads.push(Some(p));
    }
    for head in heads {
        let dir = tempfile::tempdir().unwrap();
        let mut outs = Vec::new();
        for backend in ["cpu", "wgpu"] {
            let out = dir.path().join(backend);
            let mut args = vec![
                "fit",
                "--quiet",
                "--bootstrap",
                "0",
                "--backend",
                backend,
                "--out",
                out.to_str().unwrap(),
            ];
            if let Some(h) = &head {
                args.insert(1, h.to_str().unwrap());
            }
            let o = aldfit(&args);
            if !o.status.success() {
                let err = text(&o.stderr);
                if backend == "wgpu" && err.contains("not available") {
                    common::skip("wgpu", &err);
                    return;
                }
                panic!("{backend}: {err}");
            }
            outs.push(read_csv(&out.join("classes.csv")));
        }
        let ((header, cpu), (_, gpu)) = (&outs[0], &outs[1]);
        let get = |row: &Vec<String>, name: &str| row[col(header, name)].parse::<f64>().unwrap();
        for (k, (c, g)) in cpu.iter().zip(gpu).enumerate() {
            let what = format!("{head:?} class {k}");
            assert_eq!(
                c[col(header, "degenerate")],
                g[col(header, "degenerate")],
                "{what}"
            );
            if c[col(header, "degenerate")] == "1" {
                continue;
            }
            let rel = |name: &str| (get(g, name) - get(c, name)).abs() / get(c, name).abs();
            let abs = |name: &str| (get(g, name) - get(c, name)).abs();
            assert!(rel("nll") <= 1e-6, "{what}: nll {}", rel("nll"));
            assert!(
                rel("kappa") <= 1e-2 && rel("scale") <= 1e-2,
                "{what}: kappa/scale"
            );
            assert!(abs("loc") <= 1e-2 * get(c, "scale"), "{what}: loc");
            assert!(abs("ks") <= 1e-4, "{what}: ks {}", abs("ks"));
            for name in ["seed_r2_pos", "seed_r2_neg"] {
                let (a, b) = (get(c, name), get(g, name));
                assert!(common::close(a, b, 1e-4), "{what}: {name} {a} vs {b}");
            }
            for name in ["nll_gauss", "nll_laplace"] {
                assert!(rel(name) <= 1e-5, "{what}: {name} {}", rel(name));
            }
            // The LRT is twice a difference of those NLLs; Vuong's Z a ratio of sums.
            let lrt_tol = 2.0 * (1e-5 * get(c, "nll_laplace").abs() + 1e-6 * get(c, "nll").abs());
            assert!(abs("lrt_laplace") <= lrt_tol, "{what}: lrt_laplace");
            let z = get(c, "vuong_gauss");
            assert!(
                abs("vuong_gauss") <= 1e-3 * z.abs().max(1.0),
                "{what}: vuong_gauss {z} vs {}",
                get(g, "vuong_gauss")
            );
        }
    }
}

#[test]
fn validate_checks_every_kernel_and_fails_on_a_missing_backend() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.safetensors");
    assert!(aldfit(&[
        "synth",
        p.to_str().unwrap(),
        "--classes",
        "20",
        "--features",
        "33"
    ])
    .status
    .success());
    let o = aldfit(&["validate", p.to_str().unwrap(), "--backends", "cpu"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for kernel in [
        "philox",
        "generate",
        "sort",
        "partition",
        "fit",
        "ks",
        "baselines",
        "study_line",
        "loglik",
        "nll_grad",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("cpu") && l.split_whitespace().nth(1) == Some(kernel)),
            "{kernel}: {out}"
        );
    }
    assert!(out.contains("all kernels within the docs/DESIGN.md tolerances"));
    assert_fails(
        &aldfit(&["validate", p.to_str().unwrap(), "--backends", "cuda"]),
        &["cuda", "unavailable"],
    );
}

#[test]
fn split_writes_the_tree_files_with_the_promised_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = aldfit(&[
        "split",
        "--backend",
        "cpu",
        "--quiet",
        "--tree-json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (header, rows) = read_csv(&out.join("tree.csv"));
    let promised = "class,path,depth,count,pivot,min,max,loc,scale,kappa,nll,boundary,degenerate,ks,mean,std,aic_best";
    assert_eq!(header[..17].join(","), promised);
    // Every class has a root of 1280 values; children of a split node partition it (chains:
    // the root's two children do).
    let roots: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "root").collect();
    assert_eq!(roots.len(), 1000);
    for k in [0usize, 417, 999] {
        let count = |path: &str| {
            rows.iter()
                .find(|r| r[0] == k.to_string() && r[1] == path)
                .map(|r| r[3].parse::<usize>().unwrap())
        };
        assert_eq!(count("root"), Some(1280));
        assert_eq!(count("+").unwrap() + count("-").unwrap(), 1280);
        // The root's pivot is its mean (the study's rule).
        let root = rows
            .iter()
            .find(|r| r[0] == k.to_string() && r[1] == "root")
            .unwrap();
        assert_eq!(root[col(&header, "pivot")], root[col(&header, "mean")]);
    }
    // leaves.csv: the + terminal's features are the class's largest weights, strongest first.
    let (lh, leaves) = read_csv(&out.join("leaves.csv"));
    assert_eq!(leaves.len(), 1000);
    let (head, _) = Head::bundled().unwrap();
    let values = head.to_f32();
    let row = &values[..1280];
    let plus: Vec<usize> = leaves[0][col(&lh, "plus_features")]
        .split(' ')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        plus.len(),
        leaves[0][col(&lh, "plus_count")].parse::<usize>().unwrap()
    );
    assert!(plus.windows(2).all(|w| row[w[0]] >= row[w[1]]));
    let biggest = (0..1280)
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap();
    assert_eq!(plus[0], biggest);
    // tree.json: nested, one class a line between the brackets, and each class's own features
    // cover its row exactly once.
    let text_json = std::fs::read_to_string(out.join("tree.json")).unwrap();
    let lines: Vec<&str> = text_json.lines().collect();
    assert_eq!((lines.len(), lines[0], lines[1001]), (1002, "[", "]"));
    let line: serde_json::Value = serde_json::from_str(lines[4].trim_end_matches(',')).unwrap();
    assert_eq!(line["class"], 3);
    let json: serde_json::Value = serde_json::from_str(&text_json).unwrap();
    fn collect(node: &serde_json::Value, into: &mut Vec<u64>) {
        into.extend(
            node["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap()),
        );
        for c in node["children"].as_array().unwrap() {
            collect(c, into);
        }
    }
    let mut all = Vec::new();
    collect(&json[3]["root"], &mut all);
    all.sort();
    assert_eq!(all, (0..1280).collect::<Vec<u64>>());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("Do the parts follow an ALD again?"),
        "{summary}"
    );
}

#[test]
fn fit_with_split_adds_the_trees_and_bad_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = aldfit(&[
        "fit",
        "--backend",
        "cpu",
        "--quiet",
        "--split",
        "--rule",
        "ald",
        "--shape",
        "full",
        "--max-depth",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (header, rows) = read_csv(&out.join("tree.csv"));
    // Full trees of depth ≤ 2 at μ̂: root, +, -, and their four children.
    assert!(rows.iter().all(|r| r[2].parse::<usize>().unwrap() <= 2));
    assert_eq!(rows.iter().filter(|r| r[0] == "0").count(), 7);
    // Each split node's pivot is its fitted location.
    let root = rows.iter().find(|r| r[0] == "0" && r[1] == "root").unwrap();
    assert_eq!(root[col(&header, "pivot")], root[col(&header, "loc")]);
    for f in ["classes.csv", "summary.md", "run.json", "leaves.csv"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // tree.json is opt-in: it is as big as the trees.
    assert!(!out.join("tree.json").exists());
    let o = aldfit(&["split", "--rule", "median", "--out", out.to_str().unwrap()]);
    assert_fails(&o, &["median"]);
}

/// The verdict comes first in summary.md, run.json carries the same numbers, classes.csv the
/// p- and q-values; the same seed repeats the run bit for bit, and `--bootstrap 0` says there is
/// no verdict instead of printing one.
#[test]
fn fit_reports_the_verdict_with_p_values_that_the_seed_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> PathBuf {
        let out = dir.path().join(name);
        let mut args = vec![
            "fit",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = aldfit(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        out
    };
    let a = run("a", &["--bootstrap", "19", "--seed", "3"]);
    let summary = std::fs::read_to_string(a.join("summary.md")).unwrap();
    let first_section = summary.lines().find(|l| l.starts_with("## ")).unwrap();
    assert_eq!(first_section, "## Verdict");
    assert!(summary.contains("B = 19 replicates per class and model, seed 3"));
    let (header, rows) = read_csv(&a.join("classes.csv"));
    for name in ["p_boot_gauss", "p_boot_ks", "q_boot_gauss", "q_boot_ks"] {
        for r in &rows {
            let p: f64 = r[col(&header, name)].parse().unwrap();
            assert!(p > 0.0 && p <= 1.0, "{name} = {p}");
        }
    }
    // B = 19: p-values are multiples of 1/20.
    let p: f64 = rows[0][col(&header, "p_boot_gauss")].parse().unwrap();
    assert!(((p * 20.0).round() - p * 20.0).abs() < 1e-9, "{p}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"]["replicates"], 19);
    assert_eq!(json["options"]["seed"], 3);
    let claims = json["verdict"]["claims"].as_array().unwrap();
    assert!(claims.len() >= 6, "{claims:?}");
    // B = 19 cannot reach p < 0.05: the bootstrap's claims say so instead of reading as no.
    assert_eq!(claims[0]["outcome"], "untested", "{}", claims[0]);
    assert!(claims[0]["follows"]
        .as_str()
        .unwrap()
        .contains("--bootstrap 99"));
    for c in claims {
        assert!(summary.contains(c["follows"].as_str().unwrap()));
    }

    let again = run("b", &["--bootstrap", "19", "--seed", "3"]);
    assert_eq!(
        std::fs::read(a.join("classes.csv")).unwrap(),
        std::fs::read(again.join("classes.csv")).unwrap()
    );

    let off = run("off", &["--bootstrap", "0"]);
    let summary = std::fs::read_to_string(off.join("summary.md")).unwrap();
    assert!(summary.contains("No calibrated verdict"), "{summary}");
    let (header, rows) = read_csv(&off.join("classes.csv"));
    assert_eq!(rows[0][col(&header, "p_boot_gauss")], "NaN");
    assert_ne!(rows[0][col(&header, "p_lrt_laplace")], "NaN");

    let o = aldfit(&["fit", "--bootstrap", "many", "--out", off.to_str().unwrap()]);
    assert_fails(&o, &["--bootstrap", "auto"]);
}

/// Pure Gaussian noise (`synth --law gauss`) gets the verdict its rows deserve, from `fit` and
/// from `split` (with the split trees' by-depth shares beside their nulls).
#[test]
fn noise_is_not_read_as_support() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("noise.safetensors");
    let o = aldfit(&[
        "synth",
        p.to_str().unwrap(),
        "--law",
        "gauss",
        "--classes",
        "300",
        "--features",
        "256",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = dir.path().join("split");
    let o = aldfit(&[
        "split",
        p.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
        "--bootstrap",
        "39",
        "--bootstrap-trees",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let claims = json["verdict"]["claims"].as_array().unwrap();
    let first = &claims[0];
    assert_eq!(first["outcome"], "not supported", "{first}");
    let depth_claims: Vec<&serde_json::Value> = claims
        .iter()
        .filter(|c| {
            c["claim"]
                .as_str()
                .unwrap()
                .starts_with("the parts follow an ALD again")
        })
        .collect();
    assert!(!depth_claims.is_empty());
    for c in depth_claims {
        assert_ne!(c["outcome"], "supported", "{c}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("ALD under Gaussian rows"), "{summary}");
    assert_eq!(
        summary.lines().find(|l| l.starts_with("## ")),
        Some("## Verdict")
    );
}

/// A log that is not a terminal hears of long stages: a line with rows done of total, the rate
/// and the time left (every 5 s by default; every call here).
#[test]
fn progress_reaches_a_log_as_lines() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("long.safetensors");
    // 600 000 classes: three chunks of at most 2^18.
    let values: Vec<f32> = (0..600_000u64 * 2)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    aldfit::synth::write_safetensors(&head, "fc.weight", 600_000, 2, &values).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args([
            "fit",
            head.to_str().unwrap(),
            "--backend",
            "cpu",
            "--bootstrap",
            "0",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .env("ALDFIT_PROGRESS_EVERY", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("aldfit: fitting: "))
        .collect();
    assert!(!lines.is_empty(), "{err}");
    for l in lines {
        assert!(
            l.contains("/600000 rows (") && l.contains("rows/s") && l.contains("left"),
            "{l}"
        );
    }
}

/// The tree files stream out chunk by chunk (a CPU chunk holds at most 2^18 classes); what
/// streams out must be what one rendering of all the trees at once writes.
#[test]
fn streamed_tree_files_equal_the_whole_rendering_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (h, out) = (dir.path().join("h.safetensors"), dir.path().join("out"));
    let classes = aldfit::analysis::MAX_CHUNK_CLASSES + 37;
    let o = aldfit(&[
        "synth",
        h.to_str().unwrap(),
        "--classes",
        &classes.to_string(),
        "--features",
        "6",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = aldfit(&[
        "split",
        h.to_str().unwrap(),
        "--backend",
        "cpu",
        "--bootstrap",
        "0",
        "--min-size",
        "2",
        "--tree-json",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let head = Head::open(&h, None, false).unwrap();
    let opts = aldfit::tree::SplitOptions {
        min_size: 2,
        ..Default::default()
    };
    let mut cpu = aldfit::backend::cpu::CpuBackend::new();
    let trees = aldfit::tree::split_head(&head, &[], &mut cpu, &opts, &mut |_| {}).unwrap();
    assert!(trees.iter().map(|t| t.nodes.len()).sum::<usize>() > 2 * classes);
    let mut want = Vec::new();
    aldfit::tree::write_tree_csv(&mut want, &trees, &[]).unwrap();
    assert!(
        std::fs::read(out.join("tree.csv")).unwrap() == want,
        "tree.csv"
    );
    want.clear();
    aldfit::tree::write_leaves_csv(&mut want, &trees, &[]).unwrap();
    assert!(
        std::fs::read(out.join("leaves.csv")).unwrap() == want,
        "leaves.csv"
    );
    want.clear();
    aldfit::tree::write_tree_json(&mut want, &trees, &[]).unwrap();
    assert!(
        std::fs::read(out.join("tree.json")).unwrap() == want,
        "tree.json"
    );
}

/// `--classes` analyses a subset and reports it under the tensor's class numbers: each selected
/// class's row (bootstrap p-values included: the replicate counters hold the tensor's class)
/// equals the full run's, and so do its split tree and its leaves.
#[test]
fn classes_selects_a_subset_that_reads_as_in_the_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let (all, some) = (dir.path().join("all"), dir.path().join("some"));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["fit", "--backend", "cpu", "--split", "--bootstrap", "19"];
        args.extend([
            "--bootstrap-trees",
            "0",
            "--seed",
            "5",
            "-o",
            out.to_str().unwrap(),
        ]);
        args.extend(extra);
        let o = aldfit(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        o
    };
    run(&all, &[]);
    let o = run(&some, &["--classes", "998-999,goldfish,5-7", "--plots"]);
    assert!(text(&o.stderr).contains("--classes: 6 of 1000 classes"));
    let (h, full) = read_csv(&all.join("classes.csv"));
    let (h2, sub) = read_csv(&some.join("classes.csv"));
    assert_eq!(h, h2);
    let ids: Vec<&str> = sub.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["1", "5", "6", "7", "998", "999"]);
    assert_eq!(sub[0][1], "goldfish");
    for r in &sub {
        let k: usize = r[0].parse().unwrap();
        for (c, name) in h.iter().enumerate() {
            // q-values are adjusted over the classes analysed: they alone may differ.
            if !name.starts_with("q_") {
                assert_eq!(r[c], full[k][c], "class {k}, {name}");
            }
        }
    }
    for file in ["tree.csv", "leaves.csv"] {
        let (_, full) = read_csv(&all.join(file));
        let (_, sub) = read_csv(&some.join(file));
        let wanted: Vec<&Vec<String>> = full.iter().filter(|r| ids.contains(&&*r[0])).collect();
        assert_eq!(sub.iter().collect::<Vec<_>>(), wanted, "{file}");
    }
    let summary = std::fs::read_to_string(some.join("summary.md")).unwrap();
    assert!(
        summary.contains("analysed: 6 of the 1000 classes"),
        "{summary}"
    );
    assert!(some.join("plots/class-998.png").exists());
    let bad = aldfit(&[
        "fit",
        "--classes",
        "5",
        "--plots",
        "--plot-classes",
        "4",
        "-o",
        "x",
    ]);
    assert_fails(&bad, &["class 4 is not among --classes"]);
    assert_fails(
        &aldfit(&["fit", "--classes", "1000"]),
        &["class 1000 does not exist"],
    );
}

/// `-q` prints nothing but errors; without it, what the GPU probe's drivers print (Mesa's
/// XDG_RUNTIME_DIR complaint) stays off the screen of a run that ends on the CPU.
#[test]
fn quiet_prints_nothing_but_errors_and_driver_noise_stays_off_screen() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aldfit"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap()
    };
    let o = run(&["fit", "-q", "--bootstrap", "0", "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        (String::new(), String::new())
    );
    assert!(out.join("classes.csv").exists());
    let o = run(&["fit", "--bootstrap", "0", "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("aldfit: wrote") && !err.contains("XDG_RUNTIME_DIR"),
        "{err}"
    );
    let o = run(&[
        "fit",
        "missing.safetensors",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, &["missing.safetensors"]);
    assert_eq!(text(&o.stderr).lines().count(), 1, "{}", text(&o.stderr));
}

/// `compare` puts heads side by side: every model's rows of classes.csv equal what `fit` writes
/// for that head alone (led by the model's name), models.csv has the promised columns and reads
/// the same shares and medians, and a sharded folder is named by its folder, in the tables and
/// in the plot titles, never by a shard file.
#[test]
fn compare_puts_heads_side_by_side_as_fit_reads_each() {
    let dir = tempfile::tempdir().unwrap();
    let llama = dir.path().join("tiny-llama");
    std::fs::create_dir(&llama).unwrap();
    let (c, f) = (40, 64);
    let (v, _) = aldfit::synth::law_head(aldfit::synth::Law::Laplace, c, f, 3);
    let shard = llama.join("model-00002-of-00002.safetensors");
    write_safetensors(&shard, "lm_head.weight", c, f, &v).unwrap();
    write_safetensors(
        &llama.join("model-00001-of-00002.safetensors"),
        "x",
        2,
        2,
        &[0.0; 4],
    )
    .unwrap();
    std::fs::write(
        llama.join("model.safetensors.index.json"),
        r#"{"weight_map": {"x": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let noise = dir.path().join("noise.safetensors");
    let (n, _) = aldfit::synth::law_head(aldfit::synth::Law::Gauss, 30, 96, 4);
    write_safetensors(&noise, "fc.weight", 30, 96, &n).unwrap();
    let out = dir.path().join("cmp");
    let common = ["--backend", "cpu", "--bootstrap", "19", "--seed", "2", "-q"];
    let mut args = vec!["compare", noise.to_str().unwrap(), llama.to_str().unwrap()];
    args.extend(common);
    args.extend(["-o", out.to_str().unwrap()]);
    let o = aldfit(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (mh, models) = read_csv(&out.join("models.csv"));
    let promised = "model,tensor,classes,features,dtype,ald_share,gauss_share,laplace_share,\
                    median_kappa,median_ks,median_seed_r2_pos,median_seed_r2_neg";
    assert_eq!(mh[..12].join(","), promised);
    assert_eq!(models[0][..4], ["noise", "fc.weight", "30", "96"]);
    assert_eq!(models[1][..4], ["tiny-llama", "lm_head.weight", "40", "64"]);
    let (ch, rows) = read_csv(&out.join("classes.csv"));
    assert_eq!(ch[0], "model");
    for (model, head, classes) in [("noise", &noise, 30), ("tiny-llama", &llama, 40)] {
        let alone = dir.path().join(format!("fit-{model}"));
        let mut args = vec!["fit", head.to_str().unwrap(), "-o", alone.to_str().unwrap()];
        args.extend(common);
        assert!(aldfit(&args).status.success());
        let (fh, fit) = read_csv(&alone.join("classes.csv"));
        assert_eq!(ch[1..], fh[..]);
        let mine: Vec<&[String]> = rows
            .iter()
            .filter(|r| r[0] == model)
            .map(|r| &r[1..])
            .collect();
        assert_eq!(mine.len(), classes);
        for (a, b) in mine.iter().zip(&fit) {
            assert_eq!(*a, &b[..], "{model}");
        }
        // models.csv's shares and medians are those of the head's own rows.
        let m = models.iter().find(|m| m[0] == model).unwrap();
        let best = col(&fh, "aic_best");
        let ald = fit.iter().filter(|r| r[best] == "ald").count() as f64 / classes as f64;
        assert_eq!(m[col(&mh, "ald_share")].parse::<f64>().unwrap(), ald);
        let kappa: Vec<f64> = fit
            .iter()
            .map(|r| r[col(&fh, "kappa")].parse().unwrap())
            .collect();
        let want = aldfit::report::quantile(&kappa, 0.5);
        assert_eq!(m[col(&mh, "median_kappa")].parse::<f64>().unwrap(), want);
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("| tiny-llama | 40 × 64 f32 |"),
        "{summary}"
    );
    assert!(summary.contains("- tiny-llama: `"), "{summary}");
    assert!(out.join("plots/compare.png").exists());
    let svg = std::fs::read_to_string(out.join("plots/compare.svg")).unwrap();
    assert!(svg.contains("tiny-llama") && !svg.contains("model-00002"));
    // A missing head fails before anything is written.
    let bad = dir.path().join("bad");
    let o = aldfit(&[
        "compare",
        noise.to_str().unwrap(),
        "nope.safetensors",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_fails(&o, &["nope.safetensors"]);
    assert!(!bad.exists());
}
