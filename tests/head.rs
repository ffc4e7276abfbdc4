//! Loading: round trips for every dtype and layout (files written here, in a temp folder), the
//! choice of the head tensor, and an error naming the file and tensor for every bad input.

mod common;

use std::path::Path;

use aldfit::head::{self, Choice, DType, Head};
use aldfit::synth::{ald_head, write_safetensors_bytes};
use safetensors::Dtype as St;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Values exactly representable in f16 and bf16 (small integers over a power of two), so
/// that every dtype must round-trip exactly.
fn representable(classes: usize, features: usize) -> Vec<f32> {
    (0..classes * features)
        .map(|i| ((i * 37 % 61) as f32 - 30.0) / 64.0)
        .collect()
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

fn err_of(path: &Path, tensor: Option<&str>) -> String {
    Head::open(path, tensor, false).unwrap_err().to_string()
}

#[test]
fn safetensors_every_dtype_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (7, 13);
    let v = representable(c, f);
    let f16: Vec<u8> = v
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    let bf16: Vec<u8> = v
        .iter()
        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
        .collect();
    for (dtype, bytes, want) in [
        (St::F32, f32_bytes(&v), DType::F32),
        (St::F16, f16, DType::F16),
        (St::BF16, bf16, DType::BF16),
    ] {
        let p = dir.path().join(format!("{dtype:?}.safetensors"));
        write_safetensors_bytes(&p, &[("classifier.weight", dtype, vec![c, f], &bytes)]).unwrap();
        let h = Head::open(&p, None, false).unwrap();
        assert_eq!(
            (h.classes, h.features, h.dtype, h.tensor.as_str()),
            (c, f, want, "classifier.weight")
        );
        assert_eq!(h.choice, Choice::KnownName);
        assert_eq!(h.to_f32(), v, "{dtype:?}");
    }
}

#[test]
fn transpose_flag_reads_heads_stored_features_by_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (9, 5);
    let v = representable(c, f);
    let p = dir.path().join("dense.safetensors");
    write_safetensors_bytes(
        &p,
        &[(
            "dense.kernel",
            St::F32,
            vec![f, c],
            &f32_bytes(&transpose(&v, c, f)),
        )],
    )
    .unwrap();
    let h = Head::open(&p, None, true).unwrap();
    assert_eq!((h.classes, h.features), (c, f));
    assert_eq!(h.to_f32(), v);
    // Chunked reads of a transposed head gather the right rows.
    let mut rows = vec![0f32; 3 * f];
    h.read_rows(4, &mut rows);
    assert_eq!(rows, v[4 * f..7 * f]);
}

#[test]
fn npy_every_dtype_and_order_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (6, 11);
    let v = representable(c, f);
    let t = transpose(&v, c, f);
    let enc = |descr: &str, vals: &[f32]| -> Vec<u8> {
        match descr {
            "<f4" => f32_bytes(vals),
            "<f8" => vals
                .iter()
                .flat_map(|&x| (x as f64).to_le_bytes())
                .collect(),
            _ => vals
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
        }
    };
    for descr in ["<f4", "<f8", "<f2"] {
        for fortran in [false, true] {
            let p = dir.path().join(format!("w{}{fortran}.npy", &descr[1..]));
            let data = if fortran {
                enc(descr, &t)
            } else {
                enc(descr, &v)
            };
            head::write_npy(&p, descr, &[c, f], fortran, &data).unwrap();
            let h = Head::open(&p, None, false).unwrap();
            assert_eq!(
                (h.classes, h.features, h.choice.clone()),
                (c, f, Choice::Array),
                "{descr} {fortran}"
            );
            assert_eq!(h.to_f32(), v, "{descr} fortran={fortran}");
            // --transpose swaps classes and features whatever the storage order.
            let ht = Head::open(&p, None, true).unwrap();
            assert_eq!((ht.classes, ht.features), (f, c));
            assert_eq!(ht.to_f32(), t, "{descr} fortran={fortran} transposed");
        }
    }
}

#[test]
fn sharded_checkpoint_through_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (10, 4);
    let v = representable(c, f);
    let emb = representable(3, 4);
    write_safetensors_bytes(
        &dir.path().join("model-00001-of-00002.safetensors"),
        &[
            ("model.embed.weight", St::F32, vec![3, 4], &f32_bytes(&emb)),
            ("model.norm", St::F32, vec![4], &f32_bytes(&emb[..4])),
        ],
    )
    .unwrap();
    write_safetensors_bytes(
        &dir.path().join("model-00002-of-00002.safetensors"),
        &[("lm_head.weight", St::F32, vec![c, f], &f32_bytes(&v))],
    )
    .unwrap();
    let index = r#"{"metadata": {"total_size": 0}, "weight_map": {
        "model.embed.weight": "model-00001-of-00002.safetensors",
        "model.norm": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}"#;
    let idx = dir.path().join("model.safetensors.index.json");
    std::fs::write(&idx, index).unwrap();
    for path in [idx.as_path(), dir.path()] {
        let h = Head::open(path, None, false).unwrap();
        assert_eq!(
            (h.tensor.as_str(), h.classes, h.choice.clone()),
            ("lm_head.weight", c, Choice::KnownName)
        );
        assert!(h.path.ends_with("model-00002-of-00002.safetensors"));
        assert_eq!(h.to_f32(), v);
    }
    let h = Head::open(&idx, Some("model.embed.weight"), false).unwrap();
    assert_eq!(h.to_f32(), emb);
    assert_eq!(head::list_tensors(&idx).unwrap().len(), 3);
    let e = err_of(&idx, Some("nope"));
    assert!(
        e.contains("no tensor named `nope`") && e.contains("lm_head.weight"),
        "{e}"
    );
}

#[test]
fn head_choice_prefers_known_names_then_the_only_or_last_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let m = f32_bytes(&representable(4, 4));
    let p = dir.path().join("a.safetensors");
    write_safetensors_bytes(
        &p,
        &[
            ("backbone.conv", St::F32, vec![4, 4], &m),
            ("model.head.fc.weight", St::F32, vec![4, 4], &m),
            ("z.bias", St::F32, vec![16], &m),
        ],
    )
    .unwrap();
    let h = Head::open(&p, None, false).unwrap();
    assert_eq!(
        (h.tensor.as_str(), h.choice),
        ("model.head.fc.weight", Choice::KnownName)
    );
    let p = dir.path().join("b.safetensors");
    write_safetensors_bytes(
        &p,
        &[
            ("weight", St::F32, vec![4, 4], &m),
            ("bias", St::F32, vec![16], &m),
        ],
    )
    .unwrap();
    assert_eq!(
        Head::open(&p, None, false).unwrap().choice,
        Choice::OnlyMatrix
    );
    let p = dir.path().join("c.safetensors");
    write_safetensors_bytes(
        &p,
        &[
            ("x1", St::F32, vec![2, 8], &m),
            ("x2", St::F32, vec![8, 2], &m),
        ],
    )
    .unwrap();
    let h = Head::open(&p, None, false).unwrap();
    let last = head::list_tensors(&p)
        .unwrap()
        .into_iter()
        .rfind(|t| t.shape.len() == 2)
        .unwrap()
        .name;
    assert_eq!((h.tensor, h.choice), (last, Choice::LastMatrix));
}

#[test]
fn bundled_head_is_the_efficientnet_imagenet_head() {
    let (h, labels) = Head::bundled().unwrap();
    assert_eq!((h.classes, h.features, h.dtype), (1000, 1280, DType::F32));
    assert_eq!(labels.len(), 1000);
    assert_eq!(labels[870], "tricycle");
    // The sha256 that shared/data/README.md gives for this file.
    assert!(h.file_sha256().starts_with("70f7b045") && h.file_sha256().ends_with("abfa5"));
}

#[test]
fn bad_files_are_errors_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (v, _) = ald_head(4, 8, 0);

    let e = err_of(&d.join("missing.safetensors"), None);
    assert!(
        e.contains("missing.safetensors") && e.contains("No such file"),
        "{e}"
    );

    let empty = d.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(err_of(&empty, None).contains("empty"));

    let garbage = d.join("garbage.bin");
    std::fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
    let e = err_of(&garbage, None);
    assert!(
        e.contains("garbage.bin")
            && e.contains("is not a checkpoint aldfit reads")
            && e.contains("*.pt/*.pth/*.bin"),
        "{e}"
    );

    let good = d.join("good.safetensors");
    write_safetensors_bytes(
        &good,
        &[
            ("fc.weight", St::F32, vec![4, 8], &f32_bytes(&v)),
            ("fc.bias", St::F32, vec![4], &f32_bytes(&v[..4])),
        ],
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let trunc = d.join("trunc.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() - 10]).unwrap();
    let e = err_of(&trunc, None);
    assert!(
        e.contains("trunc.safetensors") && e.contains("truncated"),
        "{e}"
    );

    let e = err_of(&good, Some("fc.bias"));
    assert!(e.contains("fc.bias") && e.contains("rank 1"), "{e}");
    let e = err_of(&good, Some("nope"));
    assert!(
        e.contains("no tensor named `nope`") && e.contains("fc.weight"),
        "{e}"
    );

    let r3 = d.join("rank3.safetensors");
    write_safetensors_bytes(
        &r3,
        &[("conv.weight", St::F32, vec![2, 2, 8], &f32_bytes(&v))],
    )
    .unwrap();
    let e = err_of(&r3, None);
    assert!(
        e.contains("no 2-D tensor") && e.contains("conv.weight"),
        "{e}"
    );
    let e = err_of(&r3, Some("conv.weight"));
    assert!(e.contains("rank 3"), "{e}");

    let ints = d.join("ints.safetensors");
    write_safetensors_bytes(&ints, &[("fc.weight", St::I64, vec![2, 2], &[0u8; 32])]).unwrap();
    let e = err_of(&ints, None);
    assert!(
        e.contains("fc.weight") && e.contains("I64") && e.contains("supported"),
        "{e}"
    );

    let npy = d.join("trunc.npy");
    head::write_npy(&npy, "<f4", &[4, 8], false, &f32_bytes(&v)[..100]).unwrap();
    let e = err_of(&npy, None);
    assert!(e.contains("trunc.npy") && e.contains("truncated"), "{e}");

    let npy_int = d.join("int.npy");
    head::write_npy(&npy_int, "<i4", &[4, 8], false, &[0u8; 128]).unwrap();
    let e = err_of(&npy_int, None);
    assert!(e.contains("<i4") && e.contains("supported"), "{e}");

    let npy_be = d.join("big.npy");
    head::write_npy(&npy_be, ">f4", &[4, 8], false, &[0u8; 128]).unwrap();
    assert!(err_of(&npy_be, None).contains(">f4"));

    let zero = d.join("zero.npy");
    head::write_npy(&zero, "<f4", &[0, 8], false, &[]).unwrap();
    let e = err_of(&zero, None);
    assert!(e.contains("empty") && e.contains("no classes"), "{e}");

    let labels = d.join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\n").unwrap();
    let e = head::read_labels(&labels, 4).unwrap_err().to_string();
    assert!(
        e.contains("labels.txt") && e.contains("3 labels") && e.contains("4 classes"),
        "{e}"
    );
    assert_eq!(head::read_labels(&labels, 3).unwrap(), ["a", "b", "c"]);
}

#[test]
fn truncated_or_corrupted_files_never_panic() {
    // Every prefix of a valid file, and single-byte corruptions of its header, must give an
    // error (or, for a harmless corruption, a head) — never a panic.
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = ald_head(3, 5, 1);
    let st = dir.path().join("ok.safetensors");
    write_safetensors_bytes(&st, &[("fc.weight", St::F32, vec![3, 5], &f32_bytes(&v))]).unwrap();
    let npy = dir.path().join("ok.npy");
    head::write_npy(&npy, "<f4", &[3, 5], false, &f32_bytes(&v)).unwrap();
    for (name, path) in [("st", &st), ("npy", &npy)] {
        let bytes = std::fs::read(path).unwrap();
        let probe = dir.path().join(format!(
            "probe-{name}.{}",
            if name == "st" { "safetensors" } else { "npy" }
        ));
        let try_bytes = |b: &[u8]| {
            std::fs::write(&probe, b).unwrap();
            let opened =
                std::panic::catch_unwind(|| Head::open(&probe, None, false).map(|h| h.to_f32()));
            assert!(opened.is_ok(), "{name}: panic on {} bytes", b.len());
            let listed = std::panic::catch_unwind(|| head::list_tensors(&probe).map(|t| t.len()));
            assert!(
                listed.is_ok(),
                "{name}: list_tensors panicked on {} bytes",
                b.len()
            );
        };
        for len in 0..bytes.len() {
            try_bytes(&bytes[..len]);
        }
        let header_end = bytes.len() - 60;
        for at in 0..header_end {
            for byte in [0u8, b'}', b'[', b'9', b',', b'\'', b')', 0xff] {
                let mut b = bytes.clone();
                b[at] = byte;
                try_bytes(&b);
            }
        }
    }
}

/// .npy headers as numpy writes and reads them (tests/data/npy, written by numpy itself with
/// make.py there): every file numpy reads is read here with the same values, and every file
/// numpy refuses is refused, naming the file.
#[test]
fn npy_headers_are_read_and_refused_as_numpy_does() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/npy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".npy") {
            continue;
        }
        seen += 1;
        let opened = aldfit::head::Head::open(&path, None, false);
        if name.starts_with("ok-") {
            let head = opened.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((head.classes, head.features), (3, 4), "{name}");
            let mut row = vec![0f32; 4];
            for k in 0..3 {
                head.read_rows(k, &mut row);
                let want: Vec<f32> = (0..4).map(|j| (4 * k + j) as f32).collect();
                assert_eq!(row, want, "{name} row {k}");
            }
        } else {
            let err = opened
                .err()
                .unwrap_or_else(|| panic!("{name} was read"))
                .to_string();
            assert!(err.contains(&name), "{name}: {err}");
            assert!(err.contains(".npy header"), "{name}: {err}");
        }
    }
    assert_eq!(seen, 11, "fixtures missing");
}

/// A safetensors file from a hand-written header and `data` bytes.
fn raw_safetensors(path: &Path, header: &str, data: usize) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    std::fs::write(path, bytes).unwrap();
}

/// Headers that the safetensors crate refuses with its own error names (`TensorInvalidInfo`,
/// `ValidationOverflow`, a duplicate read as a gap) get a sentence naming the file and tensor.
#[test]
fn safetensors_header_faults_name_the_tensor_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.safetensors");
    let entry = |name: &str, shape: &str, a: usize, b: usize| {
        format!("\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[{a},{b}]}}")
    };
    let cases: Vec<(String, usize, Vec<&str>)> = vec![
        (
            format!(
                "{{{},{}}}",
                entry("fc.weight", "[2,2]", 0, 16),
                entry("fc.weight", "[2,2]", 16, 32)
            ),
            32,
            vec!["`fc.weight`", "named twice"],
        ),
        (
            format!(
                "{{{}}}",
                entry("fc.weight", "[4611686018427387904,4]", 0, 16)
            ),
            16,
            vec!["`fc.weight`", "larger than the whole file"],
        ),
        (
            format!("{{{}}}", entry("fc.weight", "[2,2]", 0, 12)),
            12,
            vec!["`fc.weight`", "16 bytes", "[0, 12]"],
        ),
        (
            format!(
                "{{{},{}}}",
                entry("a", "[2,2]", 0, 16),
                entry("b", "[2,2]", 8, 24)
            ),
            24,
            vec!["`b`", "overlaps tensor `a`"],
        ),
        (
            format!(
                "{{{},{}}}",
                entry("a", "[2,2]", 0, 16),
                entry("b", "[2,2]", 20, 36)
            ),
            36,
            vec!["`b`", "gap"],
        ),
        (
            r#"{"fc.weight":{"dtype":"F99","shape":[2,2],"data_offsets":[0,16]}}"#.into(),
            16,
            vec!["`fc.weight`", "unknown dtype \"F99\""],
        ),
        (
            r#"{"fc.weight":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}}"#.into(),
            16,
            vec!["`fc.weight`", "not {dtype, shape, data_offsets}"],
        ),
        (
            format!("{{{}}}", entry("fc.weight", "[2,2]", 0, 16)),
            20,
            vec!["take 16 bytes but 20 follow", "longer than its header says"],
        ),
        (
            "{\"fc.weight\": [".into(),
            16,
            vec!["not the JSON safetensors writes"],
        ),
    ];
    for (header, data, needles) in cases {
        raw_safetensors(&path, &header, data);
        for e in [
            err_of(&path, None),
            head::list_tensors(&path).unwrap_err().to_string(),
        ] {
            assert!(e.starts_with(&path.display().to_string()), "{header}: {e}");
            for n in &needles {
                assert!(e.contains(n), "{header}: lacks {n:?}: {e}");
            }
            for leak in [
                "TensorInvalidInfo",
                "ValidationOverflow",
                "Error(",
                "Custom {",
                "Os {",
            ] {
                assert!(!e.contains(leak), "{header}: library name {leak}: {e}");
            }
        }
    }
    let mut bytes = (u64::MAX).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes).unwrap();
    assert!(err_of(&path, None).contains("100 MB"));

    // The header entries are kept as the file orders them, so a valid file still reads.
    raw_safetensors(
        &path,
        &format!(
            r#"{{"__metadata__":{{"format":"pt"}},{},{}}}"#,
            entry("b", "[1,4]", 16, 32),
            entry("a", "[1,4]", 0, 16)
        ),
        32,
    );
    let h = Head::open(&path, None, false).unwrap();
    assert_eq!((h.tensor.as_str(), h.classes, h.features), ("b", 1, 4));
}

#[test]
fn labels_drop_a_byte_order_mark_and_trailing_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels.txt");
    std::fs::write(&p, "\u{feff}tench\r\ngoldfish\r\n\r\n\n").unwrap();
    assert_eq!(head::read_labels(&p, 2).unwrap(), ["tench", "goldfish"]);
    // A blank label inside the list, or one the head asks for, is still a label.
    assert_eq!(head::read_labels(&p, 3).unwrap(), ["tench", "goldfish", ""]);
    std::fs::write(&p, "a\n\nc\n").unwrap();
    assert_eq!(head::read_labels(&p, 3).unwrap(), ["a", "", "c"]);
    let e = head::read_labels(&p, 2).unwrap_err().to_string();
    assert!(e.contains("3 labels") && e.contains("2 classes"), "{e}");
}
