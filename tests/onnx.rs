//! ONNX: models written by the onnx package itself (tests/data/onnx/make.py). The classifier is
//! found by walking back from the graph's output and read in the op's orientation; initializers,
//! Constant nodes, typed fields and external data all give numpy's matrix.

mod common;

use std::path::{Path, PathBuf};

use aldfit::head::{self, Choice, Head};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/onnx")
        .join(name)
}

#[test]
fn the_classifier_is_found_from_the_output_in_the_ops_orientation() {
    let want = Head::open(&fixture("head.npy"), None, false)
        .unwrap()
        .to_f32();
    for (file, tensor, transposed) in [
        ("gemm.onnx", "fc.weight", false),
        // PaddleOCR's MatMul on [features, classes]: no --transpose needed.
        ("matmul.onnx", "linear.w", true),
        ("typed.onnx", "fc.weight", false),
        ("external.onnx", "fc.weight", false),
    ] {
        let h = Head::open(&fixture(file), None, false).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(h.tensor, tensor, "{file}");
        assert_eq!(h.choice, Choice::Classifier, "{file}");
        assert_eq!(
            (h.classes, h.features, h.transposed),
            (5, 8, transposed),
            "{file}"
        );
        assert_eq!(h.to_f32(), want, "{file}");
    }
    // External data is read from the file beside the model.
    assert!(Head::open(&fixture("external.onnx"), None, false)
        .unwrap()
        .path
        .ends_with("external.weights"));
}

#[test]
fn typed_fields_of_every_float_type_read_as_numpy_wrote_them() {
    let want = Head::open(&fixture("head.npy"), None, false)
        .unwrap()
        .to_f32();
    for t in ["half.weight", "bf16.weight", "fc.weight"] {
        let h = Head::open(&fixture("typed.onnx"), Some(t), false).unwrap();
        assert_eq!(h.to_f32(), want, "{t}");
    }
    let listed = head::list_tensors(&fixture("typed.onnx")).unwrap();
    let names: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.name.as_str(), t.dtype.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("half.weight", "FLOAT16"),
            ("bf16.weight", "BFLOAT16"),
            ("fc.weight", "FLOAT")
        ]
    );
}

#[test]
fn external_data_outside_the_models_folder_is_refused_and_junk_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read(fixture("external.onnx")).unwrap();
    // The same model naming a file above its folder (same length, so the protobuf holds).
    let pos = model
        .windows(16)
        .position(|w| w == b"external.weights")
        .unwrap();
    let mut bytes = model.clone();
    bytes.splice(pos..pos + 16, b"../xternal.weigh".iter().copied());
    let p = dir.path().join("m.onnx");
    std::fs::write(&p, &bytes).unwrap();
    let e = Head::open(&p, None, false).unwrap_err().to_string();
    assert!(e.contains("outside its folder"), "{e}");

    for name in ["gemm.onnx", "typed.onnx"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let probe = dir.path().join(name);
        for len in 0..bytes.len() {
            for (at, byte) in [(len, None), (len, Some(0xffu8)), (len, Some(0x0a))] {
                let mut b = bytes.clone();
                match byte {
                    None => b.truncate(at),
                    Some(x) => b[at] = x,
                }
                std::fs::write(&probe, &b).unwrap();
                let r = std::panic::catch_unwind(|| {
                    let _ = Head::open(&probe, None, false).map(|h| h.to_f32());
                    let _ = head::list_tensors(&probe);
                });
                assert!(r.is_ok(), "{name}: panic at byte {at}");
            }
        }
    }
}

/// `inspect` says what `fit` would pick as `fit` picks it: through the graph, not by name.
#[test]
fn inspect_names_the_graphs_classifier() {
    let out = common::aldfit(&["inspect", fixture("matmul.onnx").to_str().unwrap()]);
    let text = common::text(&out.stdout);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert!(
        text.contains("linear.w") && text.contains("<- fit"),
        "{text}"
    );
    assert!(text.contains("last matrix product"), "{text}");
}
