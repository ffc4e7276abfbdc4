//! TFLite: models written by TensorFlow's converter (tests/data/tflite/make.py) from one Keras
//! model, f32, f16 (dequantised at run time) and int8 per-channel weights: the head is the last
//! FULLY_CONNECTED's weight, [classes, features], as TFLite itself computes with it.

mod common;

use std::path::{Path, PathBuf};

use aldfit::head::{self, Choice, Head};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tflite")
        .join(name)
}

fn npy(name: &str) -> Vec<f32> {
    Head::open(&fixture(name), None, false).unwrap().to_f32()
}

#[test]
fn the_last_fully_connected_weight_is_the_head_in_every_precision() {
    let exact = npy("head.npy");
    for (file, want) in [
        ("f32.tflite", exact.clone()),
        // The values are multiples of 1/64, exact in f16.
        ("f16.tflite", exact.clone()),
        // TFLite's own dequantisation: (q − zero point)·scale per class.
        ("int8.tflite", npy("int8.npy")),
    ] {
        let h = Head::open(&fixture(file), None, false).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(h.choice, Choice::Classifier, "{file}");
        assert_eq!((h.classes, h.features), (12, 128), "{file}");
        assert_eq!(h.to_f32(), want, "{file}");
    }
    // int8 is close to the float weights: within half a step of each class's scale.
    let q = npy("int8.npy");
    let worst = q
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 0.5 * 30.0 / 64.0 / 127.0 + 1e-6, "{worst}");
}

#[test]
fn tensors_are_listed_and_junk_never_panics() {
    let t = head::list_tensors(&fixture("int8.tflite")).unwrap();
    assert!(
        t.iter().any(|t| t.dtype == "INT8" && t.shape == [12, 128]),
        "{:?}",
        t.iter()
            .map(|t| (&t.name, &t.dtype, &t.shape))
            .collect::<Vec<_>>()
    );
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("int8.tflite")).unwrap();
    let probe = dir.path().join("probe.tflite");
    for at in (0..bytes.len()).step_by(5) {
        for b in [Some(0u8), Some(0xff), None] {
            let mut v = bytes.clone();
            match b {
                Some(x) => v[at] = x,
                None => v.truncate(at.max(8)),
            }
            std::fs::write(&probe, &v).unwrap();
            let r = std::panic::catch_unwind(|| {
                let _ = Head::open(&probe, None, false).map(|h| h.to_f32());
                let _ = head::list_tensors(&probe);
            });
            assert!(r.is_ok(), "panic at byte {at}");
        }
    }
}
