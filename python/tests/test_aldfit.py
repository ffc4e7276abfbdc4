"""The Python module against the CLI: `aldfit.fit(array)` must give the CLI's numbers to the last
bit on the CPU, on the bundled head and on the PP-OCRv4 head, and fail with the CLI's messages.

The CLI binary is `$ALDFIT_BIN`, else `target/release/aldfit` of this checkout (CI builds it).
"""

import csv
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

import aldfit

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "assets" / "efficientnet_lite0_imagenet_fc.safetensors"
IMAGENET_LABELS = ROOT / "assets" / "imagenet_classes.txt"
PPOCR = ROOT.parent / "shared" / "data" / "ppocrv4_rec_ch_ctc_head.safetensors"
REQUIRED = os.environ.get("ALDFIT_REQUIRE_BACKENDS", "").split(",")


def cli():
    path = os.environ.get("ALDFIT_BIN") or str(ROOT / "target" / "release" / "aldfit")
    if not os.path.exists(path):
        pytest.skip(f"no aldfit binary at {path} (cargo build --release, or set ALDFIT_BIN)")
    return path


def run_cli(args, out):
    done = subprocess.run([cli(), "fit", *args, "-q", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(out / "classes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def same_bits(got, text):
    """`got` (a float from the module) is the number the CLI printed, bit for bit."""
    want = float(text)
    if math.isnan(want):
        return math.isnan(got)
    return np.float64(got).tobytes() == np.float64(want).tobytes()


def check_against_cli(result, header, rows):
    assert list(result.classes) == header
    assert len(result) == len(rows)
    for j, name in enumerate(header):
        got = result.classes[name]
        for k, row in enumerate(rows):
            if isinstance(got, list):
                assert got[k] == row[j], (name, k)
            elif got.dtype == np.bool_:
                assert int(got[k]) == int(row[j]), (name, k)
            elif got.dtype == np.int64:
                assert got[k] == int(row[j]), (name, k)
            else:
                assert same_bits(got[k], row[j]), (name, k, got[k], row[j])


def test_the_bundled_head_reads_as_the_cli_to_the_last_bit(tmp_path):
    weights, labels = aldfit.load(BUNDLED)
    assert weights.shape == (1000, 1280) and weights.dtype == np.float32
    names = IMAGENET_LABELS.read_text(encoding="utf-8").splitlines()
    result = aldfit.fit(weights, names, backend="cpu", bootstrap=19, seed=7, progress=False)
    header, rows = run_cli(["--backend", "cpu", "--bootstrap", "19", "--seed", "7"], tmp_path)
    check_against_cli(result, header, rows)
    assert result.classes["label"][0] == "tench"
    claims = result.verdict["claims"]
    assert claims[0]["claim"].startswith("each class follows an ALD rather than a Gaussian")
    assert result.info["backend"] == "cpu"
    assert "## Verdict" in result._repr_markdown_()
    assert "<table>" in result._repr_html_()


def test_the_ppocr_head_reads_as_the_cli_with_a_split(tmp_path):
    if not PPOCR.exists():
        if "data" in REQUIRED:
            pytest.fail(f"{PPOCR} is missing and ALDFIT_REQUIRE_BACKENDS lists data")
        pytest.skip(f"{PPOCR} is not here")
    weights, labels = aldfit.load(PPOCR)
    assert len(labels) == weights.shape[0] == 6625
    opts = dict(backend="cpu", bootstrap=0, split=True, rule="ald", progress=False)
    result = aldfit.fit(weights, labels, **opts)
    header, rows = run_cli([str(PPOCR), "--backend", "cpu", "--bootstrap", "0", "--split", "--rule", "ald"], tmp_path)
    check_against_cli(result, header, rows)
    assert result.verdict == {"off": "the bootstrap was turned off (`--bootstrap 0`)"}
    with open(tmp_path / "tree.csv", newline="", encoding="utf-8") as f:
        tree = list(csv.reader(f))
    assert len(result.tree["class"]) == len(tree) - 1
    assert same_bits(result.tree["kappa"][5], tree[6][tree[0].index("kappa")])


def test_layouts_and_dtypes_are_read_in_place_and_alike():
    weights, _ = aldfit.load(BUNDLED)
    w = weights[:64]
    base = aldfit.fit(w, backend="cpu", bootstrap=0, progress=False).classes
    # float64 holds every float32 exactly, and Fortran order is the same matrix.
    for variant in [w.astype(np.float64), np.asfortranarray(w), w[:, ::-1][:, ::-1]]:
        got = aldfit.fit(variant, backend="cpu", bootstrap=0, progress=False).classes
        for name in ["loc", "scale", "kappa", "nll", "ks", "seed_r2_pos"]:
            assert np.array_equal(got[name], base[name], equal_nan=True), name
    half = aldfit.fit(w.astype(np.float16), backend="cpu", bootstrap=0, progress=False)
    assert len(half) == 64


def test_a_torch_tensor_is_taken_as_it_is():
    torch = pytest.importorskip("torch")
    weights, _ = aldfit.load(BUNDLED)
    t = torch.from_numpy(weights[:32].copy())
    a = aldfit.fit(t, backend="cpu", bootstrap=0, progress=False).classes
    b = aldfit.fit(weights[:32], backend="cpu", bootstrap=0, progress=False).classes
    assert np.array_equal(a["kappa"], b["kappa"])


def test_bad_input_raises_the_cli_messages():
    with pytest.raises(ValueError, match="2-D"):
        aldfit.fit(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        aldfit.fit(np.zeros((0, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="floats"):
        aldfit.fit(np.ones((3, 5), dtype=np.int64), backend="cpu")
    bad = np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32)
    bad[2, 7] = np.nan
    with pytest.raises(ValueError, match="class 2"):
        aldfit.fit(bad, backend="cpu", bootstrap=0, progress=False)
    ok = aldfit.fit(bad, backend="cpu", bootstrap=0, skip_nonfinite=True, progress=False)
    assert ok.classes["nonfinite"].tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="rule"):
        aldfit.fit(bad, backend="cpu", split=True, rule="median", progress=False)
    with pytest.raises(ValueError, match="labels"):
        aldfit.fit(bad, ["a"], backend="cpu", progress=False)
    with pytest.raises(FileNotFoundError):
        aldfit.load("no-such-model.safetensors")


def test_backends_and_validate():
    found = {b["name"]: b for b in aldfit.backends()}
    assert found["cpu"]["available"]
    report = aldfit.validate(["cpu"])
    assert report["ok"] and "cpu" in report["table"]
    missing = [b["name"] for b in aldfit.backends() if not b["available"]]
    for name in missing:
        with pytest.raises(RuntimeError, match="unavailable"):
            aldfit.validate([name])
    with pytest.raises(ValueError, match="unknown backend"):
        aldfit.validate(["auto"])
