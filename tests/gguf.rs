//! GGUF: fixtures written by llama.cpp's own Python package (tests/data/gguf/make.py); every
//! type aldfit reads dequantises to that package's values bit for bit; the head and the labels
//! are found as llama.cpp's models lay them out; no panic on any prefix or corruption.

mod common;

use std::path::{Path, PathBuf};

use aldfit::head::{self, Choice, Head};
use common::{aldfit, text};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gguf")
        .join(name)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_type_dequantises_to_llama_cpps_values_bit_for_bit() {
    let types = [
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k",
        "q5_k", "q6_k",
    ];
    for t in types {
        let h = Head::open(&fixture("types.gguf"), Some(&format!("{t}.weight")), false)
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        // GGUF lists [512, 6] fastest first: the head is 6 rows of 512.
        assert_eq!((h.classes, h.features), (6, 512), "{t}");
        let want = Head::open(&fixture(&format!("{t}.npy")), None, false)
            .unwrap()
            .to_f32();
        let got = h.to_f32();
        let wrong = bits(&got)
            .iter()
            .zip(bits(&want))
            .filter(|(a, b)| **a != *b)
            .count();
        assert_eq!(wrong, 0, "{t}: {wrong} of {} values differ", want.len());
    }
}

#[test]
fn the_head_is_output_else_the_tied_embedding_and_the_tokens_name_it() {
    let h = Head::open(&fixture("types.gguf"), None, false).unwrap();
    assert_eq!(
        (h.tensor.as_str(), h.choice.clone()),
        ("output.weight", Choice::KnownName)
    );
    assert_eq!(h.dtype.name(), "Q6_K");
    let tokens = h.embedded_labels.as_ref().expect("the vocabulary");
    assert_eq!(tokens.len(), 5);
    let tied = Head::open(&fixture("tied.gguf"), None, false).unwrap();
    assert_eq!(tied.tensor, "token_embd.weight");
    assert_eq!(tied.choice, Choice::Embedding);
    let listed = head::list_tensors(&fixture("tied.gguf")).unwrap();
    assert_eq!(listed[0].shape, [2, 512]);
    assert_eq!(listed[1].dtype, "Q8_0");

    // End to end: the tokens label the classes; the padded row past them has none.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = fixture("types.gguf");
    let run = aldfit(&[
        "fit",
        p.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("tokenizer.ggml.tokens"));
    let csv = std::fs::read_to_string(out.join("classes.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(
        rows[3].starts_with("3,tok3,") && rows[5].starts_with("5,,"),
        "{csv}"
    );
}

#[test]
fn a_quantised_head_cannot_be_read_transposed() {
    let e = Head::open(&fixture("types.gguf"), Some("q4_k.weight"), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("q4_k.weight") && e.contains("transposed"), "{e}");
}

#[test]
fn truncated_or_corrupted_gguf_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("tied.gguf")).unwrap();
    let probe = dir.path().join("probe.gguf");
    let try_bytes = |b: &[u8]| {
        std::fs::write(&probe, b).unwrap();
        let r = std::panic::catch_unwind(|| {
            let _ = Head::open(&probe, None, false).map(|h| h.to_f32());
            let _ = head::list_tensors(&probe);
        });
        assert!(r.is_ok(), "panic on {} bytes", b.len());
    };
    for len in 0..bytes.len().min(1200) {
        try_bytes(&bytes[..len]);
    }
    for at in 0..bytes.len().min(1200) {
        for byte in [0u8, 0xff, 0x7f, 9] {
            let mut b = bytes.clone();
            b[at] = byte;
            try_bytes(&b);
        }
    }
}
