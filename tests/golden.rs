//! Refactoring guard rails (issue 13): the bundled head's `classes.csv` and the PP-OCR head's
//! `tree.csv`, on the CPU, stay byte-identical column by column while the code around the kernels
//! is reshaped. This is a regression guard, not a correctness test: whether those numbers are
//! right is asserted against the f64 reference by the other tests. Each column is kept as the
//! sha256 of its cells (`tests/golden/*.json`); a change that is meant to move a column is
//! re-recorded with `ALDFIT_BLESS=1 cargo test --test golden`, and says so in its commit.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn aldfit(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(args)
        .output()
        .expect("run aldfit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Per column of a CSV file, the sha256 of its cells joined by newlines.
fn column_hashes(path: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let mut hashers: Vec<Sha256> = header.iter().map(|_| Sha256::new()).collect();
    for rec in r.records() {
        for (h, cell) in hashers.iter_mut().zip(rec.unwrap().iter()) {
            h.update(cell.as_bytes());
            h.update(b"\n");
        }
    }
    header
        .into_iter()
        .zip(hashers)
        .map(|(c, h)| {
            let digest = h.finalize();
            (c, digest.iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}

fn check(name: &str, csv: &Path) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let got = column_hashes(csv);
    if std::env::var_os("ALDFIT_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        eprintln!("recorded {}", golden.display());
        return;
    }
    let want: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    let moved: Vec<&String> = want
        .iter()
        .filter(|(c, h)| got.get(*c) != Some(h))
        .map(|(c, _)| c)
        .collect();
    assert!(
        moved.is_empty(),
        "{name}: columns no longer byte-identical: {moved:?} (re-record with ALDFIT_BLESS=1 \
         only if the change is meant to move them)"
    );
}

#[test]
fn the_bundled_heads_classes_csv_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    aldfit(&[
        "fit",
        "--backend",
        "cpu",
        "--quiet",
        "--bootstrap",
        "19",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    check("bundled-classes", &out.join("classes.csv"));
}

#[test]
fn the_ppocr_heads_tree_csv_is_unchanged() {
    let Some(head) = common::shared_data("ppocrv4_rec_ch_ctc_head.safetensors") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    aldfit(&[
        "split",
        head.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
        "--bootstrap",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    check("ppocr-tree", &out.join("tree.csv"));
}
