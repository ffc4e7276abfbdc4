//! Hostile inputs and faults, end to end through the binary: what a run leaves in `--out` when
//! it fails, is killed or meets another run; files and folders that are not what they seem.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aldfit::synth::write_safetensors;
use common::{aldfit, assert_fails, text};

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "aldfit failed: {}", text(&out.stderr));
}

/// Every path below `dir`, relative, sorted (folders end in `/`).
fn listing(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                into.insert(format!("{rel}/"));
                walk(root, &e.path(), into);
            } else {
                into.insert(rel);
            }
        }
    }
    let mut set = BTreeSet::new();
    walk(dir, dir, &mut set);
    set
}

/// Names in `dir` that belong to aldfit's staging, moved-aside or temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".aldfit-new-") || n.contains(".aldfit-old-") || n.contains(".tmp"))
        .collect()
}

/// A synthetic head of `classes` × `features` in `dir`.
fn head(dir: &Path, classes: usize, features: usize) -> PathBuf {
    let path = dir.join("head.safetensors");
    let values: Vec<f32> = (0..classes * features)
        .map(|i| ((i * 2654435761) % 1000) as f32 / 1000.0 - 0.4)
        .collect();
    write_safetensors(&path, "fc.weight", classes, features, &values).unwrap();
    path
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_new_run_replaces_the_whole_set_and_earlier_files_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 40, 64);
    let out = dir.path().join("out");
    let (h, o) = (h.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--backend",
        "cpu",
        "--quiet",
        "--bootstrap",
        "0",
        "--out",
        o,
    ];
    let mut fit = vec!["fit", h, "--plots", "--plot-classes", "1,2"];
    fit.extend(common);
    assert_ok(&aldfit(&fit));
    let first = listing(&out);
    assert!(first.contains("classes.csv") && first.contains("plots/class-1.png"));
    let mut split = vec!["split", h, "--tree-json"];
    split.extend(common);
    assert_ok(&aldfit(&split));
    let second = listing(&out);
    let want: BTreeSet<String> = [
        "leaves.csv",
        "run.json",
        "summary.md",
        "tree.csv",
        "tree.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(second, want, "the split's set and nothing of the fit's");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_failed_run_leaves_the_previous_set_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 30, 32);
    let out = dir.path().join("out");
    let (h, o) = (h.to_str().unwrap(), out.to_str().unwrap());
    assert_ok(&aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--bootstrap",
        "0",
        "--quiet",
        "--out",
        o,
    ]));
    let before = listing(&out);
    let summary = std::fs::read(out.join("summary.md")).unwrap();
    // Fails after the head is read: an unknown class to plot.
    let o2 = aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--out",
        o,
        "--plots",
        "--plot-classes",
        "999",
    ]);
    assert_fails(&o2, &["999"]);
    // Fails on the tensor: no such tensor.
    let o3 = aldfit(&["fit", h, "--backend", "cpu", "--out", o, "--tensor", "nope"]);
    assert_fails(&o3, &["nope"]);
    assert_eq!(listing(&out), before);
    assert_eq!(std::fs::read(out.join("summary.md")).unwrap(), summary);
    assert!(leftovers(dir.path()).is_empty());
    // An error before any result: --out is not even created.
    let fresh = dir.path().join("fresh");
    let o4 = aldfit(&[
        "fit",
        h,
        "--out",
        fresh.to_str().unwrap(),
        "--plot-classes",
        "1",
    ]);
    assert_fails(&o4, &["--plots"]);
    assert!(!fresh.exists());
}

#[test]
fn a_folder_of_other_files_or_a_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 20, 32);
    let h = h.to_str().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let o = aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--out",
        mine.to_str().unwrap(),
    ]);
    assert_fails(&o, &["not an aldfit run", "mine"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(listing(&mine).len(), 1);
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let o = aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_fails(&o, &["not a folder"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_second_run_on_the_same_out_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 20, 32);
    let out = dir.path().join("out");
    // Hold the lock as a running aldfit would.
    let lock = std::fs::File::create(dir.path().join(".out.aldfit-lock")).unwrap();
    lock.try_lock().unwrap();
    let t = std::time::Instant::now();
    let o = aldfit(&[
        "fit",
        h.to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, &["another aldfit run is writing to", "out"]);
    assert!(t.elapsed() < Duration::from_secs(20), "it waited");
    assert!(!out.exists());
    drop(lock);
    let o = aldfit(&[
        "fit",
        h.to_str().unwrap(),
        "--backend",
        "cpu",
        "--bootstrap",
        "0",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
}

#[test]
fn leftovers_of_a_killed_run_are_cleared_or_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 20, 32);
    let h = h.to_str().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    assert_ok(&aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--bootstrap",
        "0",
        "--quiet",
        "--out",
        o,
    ]));
    let before = listing(&out);
    // A staging folder of a run killed while writing.
    let staging = dir.path().join(".out.aldfit-new-1-2");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("classes.csv"), "half").unwrap();
    // A run killed between its two renames: the previous set moved aside, --out absent.
    let aside = dir.path().join(".out.aldfit-old-1-2");
    std::fs::rename(&out, &aside).unwrap();
    // The next run on --out clears them (it takes the lock first; a run that fails before
    // claiming --out touches nothing).
    assert_ok(&aldfit(&[
        "fit",
        h,
        "--backend",
        "cpu",
        "--bootstrap",
        "0",
        "--quiet",
        "--out",
        o,
    ]));
    assert_eq!(listing(&out), before);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn files_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 20, 32);
    let out = dir.path().join("out");
    let synth = dir.path().join("s.safetensors");
    let script = format!(
        "umask 027 && '{bin}' fit '{h}' --backend cpu --bootstrap 0 --quiet --plots \
         --plot-classes 1 --out '{o}' && '{bin}' synth '{s}' --classes 4 --features 8",
        bin = env!("CARGO_BIN_EXE_aldfit"),
        h = h.display(),
        o = out.display(),
        s = synth.display()
    );
    let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_ok(&o);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for f in ["classes.csv", "summary.md", "run.json", "plots/class-1.png"] {
        assert_eq!(mode(&out.join(f)), 0o640, "{f}");
    }
    assert_eq!(mode(&out), 0o750);
    assert_eq!(mode(&out.join("plots")), 0o750);
    assert_eq!(mode(&synth), 0o640);
}

/// Starts a run, kills it with `signal` after `after`, and returns its exit status.
fn kill_run(args: &[&str], signal: &str, after: Duration) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    child.wait().unwrap()
}

#[test]
fn a_killed_run_leaves_one_whole_set() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 600, 512);
    let h = h.to_str().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let args = [
        "fit",
        h,
        "--backend",
        "cpu",
        "--bootstrap",
        "19",
        "--quiet",
        "--split",
        "--plots",
        "--out",
        o,
    ];
    assert_ok(&aldfit(&args));
    let whole = listing(&out);
    // Each run has its own seed, which both summary.md and run.json record: a set mixed from
    // two runs shows two seeds.
    let coherent = |out: &Path| {
        let seed = run_json(out)["bootstrap"]["seed"].as_u64().unwrap();
        let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(
            summary.contains(&format!("seed {seed}")),
            "summary.md of another run"
        );
        seed
    };
    coherent(&out);
    // Kill at a spread of moments: reading, fitting, splitting, bootstrapping, plotting,
    // writing, swapping. Each time --out must hold one whole set: the earlier one or the new.
    for (k, ms) in [5u64, 40, 120, 300, 600, 900, 1300, 2000]
        .into_iter()
        .enumerate()
    {
        let signal = if k % 2 == 0 { "-KILL" } else { "-INT" };
        let seed = (1000 + k).to_string();
        let mut with_seed = args.to_vec();
        with_seed.extend(["--seed", &seed]);
        let status = kill_run(&with_seed, signal, Duration::from_millis(ms));
        assert_eq!(listing(&out), whole, "after {signal} at {ms} ms");
        coherent(&out);
        if signal == "-INT" && !status.success() {
            assert_eq!(status.code(), Some(130), "SIGINT exits 130");
            assert!(
                leftovers(dir.path()).is_empty(),
                "SIGINT left {:?}",
                leftovers(dir.path())
            );
        }
    }
    // The next run clears what the SIGKILLs left.
    assert_ok(&aldfit(&args));
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(listing(&out), whole);
}

/// Runs aldfit with a deadline: a hang fails the test instead of stalling the suite.
fn aldfit_within(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("aldfit {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn fifos_devices_and_folders_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = head(dir.path(), 20, 32);
    let fifo = dir.path().join("pipe.safetensors");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let f = fifo.to_str().unwrap();
    let r = aldfit_within(&["fit", f, "--backend", "cpu", "--out", o], 20);
    assert_fails(&r, &["pipe.safetensors", "FIFO", "regular file"]);
    let r = aldfit_within(&["inspect", "/dev/zero"], 20);
    assert_fails(&r, &["/dev/zero", "device"]);
    let h = h.to_str().unwrap();
    let r = aldfit_within(
        &["fit", h, "--backend", "cpu", "--labels", f, "--out", o],
        20,
    );
    assert_fails(&r, &["pipe.safetensors", "FIFO"]);
    // A folder named as a shard.
    std::fs::create_dir(dir.path().join("shard-dir.safetensors")).unwrap();
    let index = dir.path().join("model.safetensors.index.json");
    std::fs::write(
        &index,
        r#"{"weight_map": {"fc.weight": "shard-dir.safetensors"}}"#,
    )
    .unwrap();
    let r = aldfit_within(&["inspect", index.to_str().unwrap()], 20);
    assert_fails(&r, &["shard-dir.safetensors", "a folder"]);
    assert!(!out.exists());
}

#[test]
fn shards_outside_the_checkpoint_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("ckpt");
    std::fs::create_dir(&inner).unwrap();
    let outside = head(dir.path(), 20, 32);
    std::os::unix::fs::symlink(&outside, inner.join("link.safetensors")).unwrap();
    let index = inner.join("model.safetensors.index.json");
    for shard in [
        "../head.safetensors".to_owned(),
        outside.display().to_string(),
        "link.safetensors".to_owned(),
    ] {
        let body = serde_json::json!({"weight_map": {"fc.weight": shard}});
        std::fs::write(&index, body.to_string()).unwrap();
        for cmd in ["inspect", "fit"] {
            let mut args = vec![cmd, index.to_str().unwrap()];
            let out = dir.path().join("out");
            if cmd == "fit" {
                args.extend(["--backend", "cpu", "--out", out.to_str().unwrap()]);
            }
            let r = aldfit(&args);
            assert_fails(&r, &["lies outside its folder", &shard]);
        }
    }
}

#[test]
fn too_many_threads_is_an_error_not_a_hang() {
    let r = aldfit_within(&["validate", "nothing.npy", "--threads", "100000"], 20);
    assert_fails(&r, &["--threads 100000", "at most"]);
}

#[test]
fn an_input_that_shrinks_mid_run_ends_in_a_clean_error_or_a_correct_result() {
    let dir = tempfile::tempdir().unwrap();
    for (k, ms) in [30u64, 150, 400].into_iter().enumerate() {
        let h = head(dir.path(), 600, 512);
        let out = dir.path().join(format!("out{k}"));
        let args = [
            "fit",
            h.to_str().unwrap(),
            "--backend",
            "cpu",
            "--bootstrap",
            "19",
            "--split",
            "--plots",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        let child = Command::new(env!("CARGO_BIN_EXE_aldfit"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&h)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let r = child.wait_with_output().unwrap();
        let err = text(&r.stderr);
        match r.status.code() {
            Some(0) => assert!(out.join("run.json").exists()),
            Some(1) => {
                assert!(
                    err.contains("changed size") && err.contains("head.safetensors"),
                    "{err}"
                );
                assert!(!out.exists(), "a failed run wrote --out");
            }
            other => panic!("aldfit ended with {other:?} (a signal?): {err}"),
        }
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }
}

/// Names and labels come from files: escape sequences, bidi overrides and line breaks in them
/// must reach neither the terminal nor the Markdown, and a huge label is cut where it is shown.
/// The CSV keeps each label whole.
#[test]
fn names_and_labels_are_escaped_where_shown_and_kept_whole_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("head.safetensors");
    let (v, _) = aldfit::synth::ald_head(3, 64, 5);
    let evil = "fc\u{1b}[2J\u{202e}.weight";
    write_safetensors(&path, evil, 3, 64, &v).unwrap();
    let long = "x".repeat(1 << 20);
    let labels = d.join("labels.txt");
    std::fs::write(
        &labels,
        format!("\u{feff}tench\n\u{1b}]0;pwned\u{7}|cell|\n{long}\n\n"),
    )
    .unwrap();
    let out = d.join("out");
    let run = aldfit_within(
        &[
            "fit",
            path.to_str().unwrap(),
            "--tensor",
            evil,
            "--labels",
            labels.to_str().unwrap(),
            "--backend",
            "cpu",
            "--plots",
            "--plot-classes",
            "0,1,2",
            "--out",
            out.to_str().unwrap(),
        ],
        120,
    );
    assert_ok(&run);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for (what, s) in [
        ("stdout", text(&run.stdout)),
        ("stderr", text(&run.stderr)),
        ("summary.md", summary.clone()),
    ] {
        assert!(
            !s.contains('\u{1b}') && !s.contains('\u{7}'),
            "{what} holds a raw escape: {s:?}"
        );
        assert!(!s.contains('\u{202e}'), "{what} holds a bidi override");
        assert!(
            !s.contains(&long[..1000]),
            "{what} holds the whole 1 MB label"
        );
    }
    assert!(summary.contains(r"fc\u{1b}[2J\u{202e}.weight"), "{summary}");
    assert!(
        summary.contains(r"\u{1b}]0;pwned\u{7}\|cell\|"),
        "{summary}"
    );
    assert!(!summary.contains("\u{feff}"));
    let csv = std::fs::read_to_string(out.join("classes.csv")).unwrap();
    assert!(csv.contains("\u{1b}]0;pwned\u{7}|cell|") && csv.contains(&long));
    assert!(csv.contains(",tench,") || csv.contains("\ntench,") || csv.contains(",tench\n"));
}

/// `fit --backend wgpu` on a head with a row of subnormal scale fails naming the class, where
/// it used to exit 0 with KS 0.5; the CPU analyses the same head.
#[test]
fn a_backend_that_cannot_compute_a_row_refuses_it_by_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut v, _) = aldfit::synth::ald_head(6, 64, 3);
    for x in &mut v[4 * 64..5 * 64] {
        *x = (*x as f64 * 2f64.powi(-140)) as f32;
    }
    let path = d.join("tiny.safetensors");
    write_safetensors(&path, "fc.weight", 6, 64, &v).unwrap();
    let out = d.join("out");
    let (p, o) = (path.to_str().unwrap(), out.to_str().unwrap());
    assert_ok(&aldfit(&["fit", p, "--backend", "cpu", "--out", o]));
    let wgpu = aldfit(&["fit", p, "--backend", "wgpu", "--out", o]);
    if !wgpu.status.success() && text(&wgpu.stderr).contains("not available") {
        common::skip("wgpu", &text(&wgpu.stderr));
        return;
    }
    assert_fails(
        &wgpu,
        &[
            "tiny.safetensors",
            "`fc.weight`",
            "at class 4",
            "--backend cpu",
        ],
    );
    // The CPU run's set is still there, whole.
    assert_eq!(run_json(&out)["backend"]["name"], "cpu");
}

fn aldfit_with_memory(limit: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aldfit"))
        .args(args)
        .env("ALDFIT_MEMORY_LIMIT", limit)
        .output()
        .unwrap()
}

/// A run whose results or trees would not fit is refused before it starts, naming the options
/// that shrink it, and leaves no `--out`; oversized synthetic heads and benchmark shapes are
/// refused instead of aborting on allocation. The same runs go ahead when the memory is there.
#[test]
fn runs_that_would_not_fit_in_memory_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = head(d, 400, 256);
    let (p, out) = (path.to_str().unwrap(), d.join("out"));
    let o = out.to_str().unwrap();
    let fit = ["fit", p, "--backend", "cpu", "--pooled", "on", "--out", o];
    assert_fails(
        &aldfit_with_memory("64K", &fit),
        &[
            "400 classes × 256 features needs about",
            "64 KB is available",
            "--pooled off",
        ],
    );
    let split = [
        "split",
        p,
        "--backend",
        "cpu",
        "--shape",
        "full",
        "--min-size",
        "2",
        "--out",
        o,
    ];
    assert_fails(
        &aldfit_with_memory("2M", &split),
        &["needs about", "--min-size", "--max-depth", "--shape chains"],
    );
    assert!(!out.exists(), "a refused run made {}", out.display());
    assert_ok(&aldfit_with_memory("1G", &fit));
    assert_ok(&aldfit_with_memory("1G", &split));

    let huge = d.join("huge.safetensors");
    for (classes, says) in [
        ("1099511627776", "needs about 8.0 PB"),
        ("18446744073709551615", "more than any machine can hold"),
    ] {
        let args = [
            "synth",
            "--classes",
            classes,
            "--features",
            "2048",
            huge.to_str().unwrap(),
        ];
        assert_fails(&aldfit(&args), &[classes, says]);
    }
    assert!(!huge.exists());
    assert_fails(
        &aldfit(&["bench", "--shapes", "1000000x100000", "--backends", "cpu"]),
        &["1000000 × 100000", "needs about", "--shapes"],
    );
}

/// Labels and index files are read whole, so one of absurd size is refused before it is read.
#[test]
fn oversized_text_inputs_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = head(dir.path(), 4, 16);
    let labels = dir.path().join("labels.txt");
    let f = std::fs::File::create(&labels).unwrap();
    f.set_len(2 << 30).unwrap(); // sparse: no disk used
    let out = dir.path().join("out");
    assert_fails(
        &aldfit(&[
            "fit",
            path.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        &["labels.txt", "2.0 GB", "more than"],
    );
}

/// One random corruption of `bytes`: bytes overwritten (half the time inside the first 256,
/// where the header is), zeroed, cut short, or grown by junk.
fn corrupt(bytes: &[u8], rng: &mut impl rand::Rng) -> (Vec<u8>, String) {
    let mut b = bytes.to_vec();
    let n = b.len();
    let at = if rng.random::<bool>() {
        rng.random_range(0..256.min(n))
    } else {
        rng.random_range(0..n)
    };
    let len = rng.random_range(1..=16usize).min(n - at);
    match rng.random_range(0..4) {
        0 => {
            b[at..at + len].iter_mut().for_each(|x| *x = rng.random());
            (b, format!("{len} random bytes at {at}"))
        }
        1 => {
            b[at..at + len].fill(0);
            (b, format!("{len} zero bytes at {at}"))
        }
        2 => {
            b.truncate(at);
            (b, format!("cut at {at}"))
        }
        _ => {
            b.extend((0..len).map(|_| rng.random::<u8>()));
            (b, format!("{len} junk bytes appended"))
        }
    }
}

/// Real heads corrupted at random offsets and lengths (seeded): every run ends in a clean
/// one-line error naming the file, with no `--out`, or succeeds with numbers that are the
/// reference fit of the rows the file now holds.
#[test]
fn random_corruptions_of_real_files_end_in_a_clean_error_or_a_correct_result() {
    use rand::SeedableRng;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundled = std::fs::read(root.join(aldfit::head::BUNDLED_NAME)).unwrap();
    let (head, _) = aldfit::head::Head::bundled().unwrap();
    let values: Vec<u8> = head.to_f32().iter().flat_map(|v| v.to_le_bytes()).collect();
    let npy = d.join("real.npy");
    aldfit::head::write_npy(&npy, "<f4", &[head.classes, head.features], false, &values).unwrap();
    let mut files = vec![
        ("safetensors", bundled),
        ("npy", std::fs::read(&npy).unwrap()),
    ];
    if let Some(p) = common::shared_data("ppocrv4_rec_ch_ctc_head.safetensors") {
        files.push(("safetensors", std::fs::read(p).unwrap()));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let (mut failed, mut passed) = (0, 0);
    for (i, (ext, bytes)) in files.iter().enumerate() {
        for j in 0..30 {
            let (b, how) = corrupt(bytes, &mut rng);
            let path = d.join(format!("case-{i}-{j}.{ext}"));
            std::fs::write(&path, &b).unwrap();
            let out = d.join(format!("out-{i}-{j}"));
            let args = [
                "fit",
                path.to_str().unwrap(),
                "--backend",
                "cpu",
                "--bootstrap",
                "0",
                "--out",
                out.to_str().unwrap(),
            ];
            let run = aldfit_within(&args, 120);
            let err = text(&run.stderr);
            assert!(!err.contains("panicked"), "{how}: {err}");
            match run.status.code() {
                Some(0) => {
                    passed += 1;
                    check_fit_of_file(&path, &out, &how);
                }
                Some(1) => {
                    failed += 1;
                    let last = err.lines().last().unwrap_or("");
                    assert!(
                        last.starts_with("aldfit: error: ")
                            && last.contains(path.file_name().unwrap().to_str().unwrap()),
                        "{how}: {err}"
                    );
                    assert!(!out.exists(), "{how}: a failed run left {}", out.display());
                }
                other => panic!("{how}: exit {other:?}: {err}"),
            }
        }
    }
    // Both ends are reached: corruptions that are refused and ones that only change weights.
    assert!(
        failed > 10 && passed > 10,
        "{failed} refused, {passed} analysed"
    );
}

/// The run's `classes.csv` has one row per class of the file as aldfit reads it, and sampled
/// classes carry the reference fit of their rows.
fn check_fit_of_file(path: &Path, out: &Path, how: &str) {
    let head = aldfit::head::Head::open(path, None, false).unwrap();
    let mut r = csv::Reader::from_path(out.join("classes.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), head.classes, "{how}");
    let mut row = vec![0f32; head.features];
    for k in [0, head.classes / 2, head.classes - 1] {
        head.read_rows(k, &mut row);
        row.sort_by(f32::total_cmp);
        let want = aldfit::ald::fit_sorted(&row).params;
        for (name, w) in [
            ("loc", want.loc),
            ("scale", want.scale),
            ("kappa", want.kappa),
        ] {
            let got: f64 = rows[k][col(name)].parse().unwrap();
            assert!(
                (got - w).abs() <= 1e-12 * w.abs().max(1e-300) || (got.is_nan() && w.is_nan()),
                "{how}: class {k} {name} {got} vs reference {w}"
            );
        }
    }
}
