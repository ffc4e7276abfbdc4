//! Hugging Face folders and orientation: labels from config.json's id2label and tokenizer.json,
//! the token embedding of a tied language model as its head, and hints that a matrix is stored
//! [features, classes].

mod common;

use std::path::Path;

use aldfit::head::{self, Choice, Head};
use aldfit::synth::write_safetensors_bytes;
use common::{aldfit, assert_fails, text};
use safetensors::Dtype as St;

fn zeros(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((i % 7) as f32 / 8.0 - 0.3).to_le_bytes())
        .collect()
}

fn write(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, s)| zeros(s.iter().product()))
        .collect();
    let views: Vec<(&str, St, Vec<usize>, &[u8])> = tensors
        .iter()
        .zip(&data)
        .map(|((n, s), d)| (*n, St::F32, s.clone(), d.as_slice()))
        .collect();
    write_safetensors_bytes(path, &views).unwrap();
}

#[test]
fn a_tied_language_model_is_analysed_through_its_embedding_with_token_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No lm_head: the last 2-D tensor is a projection, the embedding is the head.
    write(
        &d.join("model.safetensors"),
        &[
            ("model.embed_tokens.weight", vec![12, 4]),
            ("model.layers.0.self_attn.q_proj.weight", vec![4, 4]),
        ],
    );
    // Ten tokens and one added token; the head is padded to 12 rows.
    let vocab: serde_json::Map<String, serde_json::Value> = (0..10)
        .map(|i| (format!("tok{i}"), serde_json::json!(i)))
        .collect();
    let tok = serde_json::json!({
        "model": {"type": "BPE", "vocab": vocab},
        "added_tokens": [{"id": 10, "content": "<|end|>"}],
    });
    std::fs::write(d.join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::write(
        d.join("config.json"),
        r#"{"tie_word_embeddings": true, "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}"#,
    )
    .unwrap();
    let h = Head::open(d, None, false).unwrap();
    assert_eq!(h.tensor, "model.embed_tokens.weight");
    assert_eq!(h.choice, Choice::Embedding);
    let (labels, from) = head::hf::labels_beside(&h.path, h.classes)
        .unwrap()
        .unwrap();
    assert!(from.ends_with("tokenizer.json"));
    assert_eq!(labels[3], "tok3");
    assert_eq!(labels[10], "<|end|>");
    assert_eq!(labels[11], "");
    let out = d.join("out");
    let run = aldfit(&[
        "fit",
        d.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let err = text(&run.stderr);
    assert!(
        err.contains("token embedding") && err.contains("labels from"),
        "{err}"
    );
    let csv = std::fs::read_to_string(out.join("classes.csv")).unwrap();
    assert!(csv.contains(",tok3,") && csv.contains("<|end|>"), "{csv}");
}

#[test]
fn a_classifiers_id2label_names_its_classes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("model.safetensors"),
        &[
            ("encoder.weight", vec![4, 4]),
            ("classifier.weight", vec![3, 4]),
        ],
    );
    std::fs::write(
        d.join("config.json"),
        r#"{"id2label": {"0": "cat", "2": "bird", "1": "dog"}}"#,
    )
    .unwrap();
    let h = Head::open(d, None, false).unwrap();
    let (labels, _) = head::hf::labels_beside(&h.path, h.classes)
        .unwrap()
        .unwrap();
    assert_eq!(labels, ["cat", "dog", "bird"]);
    // An id2label of another size is not this head's.
    assert!(head::hf::labels_beside(&h.path, 4).unwrap().is_none());
}

#[test]
fn a_matrix_stored_features_by_classes_is_pointed_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keras = d.join("keras.safetensors");
    write(
        &keras,
        &[("dense/kernel", vec![8, 3]), ("dense/bias", vec![3])],
    );
    let torchish = d.join("fc.safetensors");
    write(
        &torchish,
        &[("fc.weight", vec![8, 3]), ("fc.bias", vec![3])],
    );
    for (path, says) in [
        (&keras, "Keras/TensorFlow kernel"),
        (&torchish, "bias `fc.bias`"),
    ] {
        let h = Head::open(path, None, false).unwrap();
        let hint = head::orientation_hint(&h).expect("a hint");
        assert!(
            hint.contains(says) && hint.contains("pass --transpose"),
            "{hint}"
        );
        // Read transposed, the same checkpoint needs no hint.
        let t = Head::open(path, None, true).unwrap();
        assert_eq!(head::orientation_hint(&t), None, "{}", path.display());
    }
    // Labels as many as the features say so too.
    let labels = d.join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\n").unwrap();
    let out = d.join("out");
    assert_fails(
        &aldfit(&[
            "fit",
            torchish.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        &["3 labels", "8 classes", "pass --transpose"],
    );
    let ok = aldfit(&[
        "fit",
        torchish.to_str().unwrap(),
        "--transpose",
        "--labels",
        labels.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
}

#[test]
fn an_id2label_as_long_as_the_features_points_at_transpose() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("model.safetensors"),
        &[("classifier.weight", vec![4, 3])],
    );
    std::fs::write(
        d.join("config.json"),
        r#"{"id2label": {"0": "a", "1": "b", "2": "c"}}"#,
    )
    .unwrap();
    let h = Head::open(d, None, false).unwrap();
    let hint = head::orientation_hint(&h).expect("a hint");
    assert!(
        hint.contains("id2label") && hint.contains("pass --transpose"),
        "{hint}"
    );
}

#[test]
fn a_savedmodel_folder_is_named_with_its_conversion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saved_model.pb"), b"\x08\x01").unwrap();
    std::fs::create_dir(dir.path().join("variables")).unwrap();
    let e = Head::open(dir.path(), None, false).unwrap_err().to_string();
    assert!(
        e.contains("TensorFlow SavedModel") && e.contains("numpy.save"),
        "{e}"
    );
}
