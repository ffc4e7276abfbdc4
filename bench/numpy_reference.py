#!/usr/bin/env python3
"""The exact ALD fit of docs/DESIGN.md 2.2 done the numpy way (sort, cumsum, argmin, float64), timed
on the same seeded-shape heads as `cargo bench`, with numpy's row sort (`np.sort(w, axis=1)` on
the f32 rows, one thread) beside it, plus scipy's generic fit on a few rows. With
--full, also the whole per-class analysis aldfit computes (fit, KS, baselines, seed lines).

    python3 bench/numpy_reference.py [--shapes 1000x2048,32000x4096] [--full] [--check aldfit-out/classes.csv]

With --check, it also compares aldfit's classes.csv for the bundled head with numpy's exact fit
(NLL) and with scipy.stats.laplace_asymmetric.fit on a few classes.
"""
import argparse
import csv
import json
import struct
import time

import numpy as np


def exact_fit(w):
    """Vectorised exact MLE over rows of w (float64 maths): returns loc, scale, kappa, nll."""
    x = np.sort(w.astype(np.float64), axis=1)
    n = x.shape[1]
    c = np.cumsum(x, axis=1)
    j = np.arange(n)
    above = (c[:, -1:] - c) - (n - 1 - j) * x
    below = (j + 1) * x - c
    obj = np.sqrt(np.maximum(above, 0)) + np.sqrt(np.maximum(below, 0))
    interior = (above > 0) & (below > 0)
    obj = np.where(interior, obj, np.inf)
    best = np.argmin(obj, axis=1)
    rows = np.arange(x.shape[0])
    a = above[rows, best] / n
    b = below[rows, best] / n
    kappa = (b / a) ** 0.25
    scale = (a * b) ** 0.25 * (np.sqrt(a) + np.sqrt(b))
    nll = n * (2 * np.log(np.sqrt(a) + np.sqrt(b)) + 1)
    return x[rows, best], scale, kappa, nll


def full_analysis(w):
    """What `aldfit fit` computes per class, vectorised over rows in float64: the exact fit, KS at
    the fitted parameters, the Gaussian and Laplace baselines, and both seed lines."""
    x = np.sort(w.astype(np.float64), axis=1)
    rows, n = x.shape
    c = np.cumsum(x, axis=1)
    j = np.arange(n)
    above = (c[:, -1:] - c) - (n - 1 - j) * x
    below = (j + 1) * x - c
    obj = np.sqrt(np.maximum(above, 0)) + np.sqrt(np.maximum(below, 0))
    obj = np.where((above > 0) & (below > 0), obj, np.inf)
    best = np.argmin(obj, axis=1)
    r = np.arange(rows)
    a = above[r, best] / n
    b = below[r, best] / n
    kappa = (b / a) ** 0.25
    scale = (a * b) ** 0.25 * (np.sqrt(a) + np.sqrt(b))
    loc = x[r, best]
    # KS at the fitted ALD.
    k2 = (kappa * kappa)[:, None]
    d = x - loc[:, None]
    ks_ = (kappa / scale)[:, None]
    cdf = np.where(d >= 0, 1 - np.exp(-ks_ * np.maximum(d, 0)) / (1 + k2),
                   k2 / (1 + k2) * np.exp(np.minimum(d, 0) / (kappa * scale)[:, None]))
    ks = np.maximum((j + 1) / n - cdf, cdf - j / n).max(axis=1)
    # Baselines.
    var = x.var(axis=1)
    med = np.median(x, axis=1)
    mad = np.abs(x - med[:, None]).mean(axis=1)
    nll_gauss = n / 2 * (np.log(2 * np.pi * var) + 1)
    nll_laplace = n * (np.log(2 * mad) + 1)
    # The study's seed lines on each side: least squares of log |x| on rank / L, vectorised
    # with the side's values masked (the positive part is a suffix of each sorted row).
    lines = []
    for side in (x, -x[:, ::-1]):
        keep = side > 0
        L = keep.sum(axis=1, keepdims=True)
        u = np.where(keep, (j - (n - L)) / np.maximum(L, 1), 0.0)
        t = np.where(keep, np.log(np.where(keep, side, 1.0)), 0.0)
        su, st = u.sum(axis=1), t.sum(axis=1)
        suu, sut, stt = (u * u).sum(axis=1), (u * t).sum(axis=1), (t * t).sum(axis=1)
        Lf = L[:, 0].astype(np.float64)
        cov = sut - su * st / Lf
        var_u = suu - su * su / Lf
        var_t = stt - st * st / Lf
        slope = cov / var_u
        lines.append((slope, st / Lf - slope * su / Lf, cov * cov / (var_u * var_t)))
    return loc, scale, kappa, ks, nll_gauss, nll_laplace, lines


def synthetic(classes, features, seed=42):
    rng = np.random.default_rng(seed)
    loc = rng.uniform(-0.02, 0.02, (classes, 1))
    scale = rng.uniform(0.02, 0.08, (classes, 1))
    kappa = np.exp(rng.uniform(-np.log(2), np.log(2), (classes, 1)))
    u = rng.random((classes, features))
    k2 = kappa * kappa
    z = np.where(u < k2 / (1 + k2), kappa * np.log(u * (1 + k2) / k2), -np.log((1 - u) * (1 + k2)) / kappa)
    return (loc + scale * z).astype(np.float32)


def load_safetensors(path, name=None):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        name = name or next(k for k, v in header.items() if len(v["shape"]) == 2)
        info = header[name]
        start, end = info["data_offsets"]
        f.seek(8 + n + start)
        return np.frombuffer(f.read(end - start), dtype=np.float32).reshape(info["shape"])


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_in_place_sort(w, repeats):
    """ndarray.sort(axis=1) on a fresh copy, the copy outside the timer: numpy's sort alone,
    where np.sort also pays for copying its input."""
    best = float("inf")
    for _ in range(repeats):
        c = w.copy()
        t = time.perf_counter()
        c.sort(axis=1)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="1000x2048,32000x4096")
    ap.add_argument("--check", help="aldfit classes.csv of the bundled head to compare with")
    ap.add_argument("--full", action="store_true",
                    help="also time the whole per-class analysis aldfit computes, the numpy way")
    ap.add_argument("--head", default="assets/efficientnet_lite0_imagenet_fc.safetensors")
    args = ap.parse_args()
    for shape in args.shapes.split(","):
        classes, features = map(int, shape.split("x"))
        w = synthetic(classes, features)
        repeats = 3 if classes * features < 50_000_000 else 1
        t = best_time(lambda: np.sort(w, axis=1), 10 if repeats > 1 else 3)
        keys = w.size / t / 1e9
        print(f"numpy np.sort(axis=1) f32 {shape}: {t * 1e3:.1f} ms ({keys:.3f} G keys/s, one "
              f"thread: numpy sorts on one core; compare `aldfit bench --threads 1`'s sort row)")
        if classes > 1024:
            # aldfit's sort row times one resident chunk of 1024 rows: the same here, in cache
            # as much as the chunk is there.
            chunk = w[:1024]
            t = best_time(lambda: np.sort(chunk, axis=1), 10)
            print(f"numpy np.sort(axis=1) f32 1024 rows of {shape}: {t * 1e3:.2f} ms "
                  f"({chunk.size / t / 1e9:.3f} G keys/s)")
        else:
            chunk = w
        t = best_in_place_sort(chunk, 10)
        print(f"numpy in-place ndarray.sort(axis=1) f32 {chunk.shape[0]} rows of {shape}: "
              f"{t * 1e3:.2f} ms ({chunk.size / t / 1e9:.3f} G keys/s, the copy untimed)")
        t = best_time(lambda: exact_fit(w), repeats)
        gbps = w.nbytes / t / 1e9
        print(f"numpy exact fit {shape}: {t * 1e3:.1f} ms ({gbps:.2f} GB/s)")
        if args.full:
            t = best_time(lambda: full_analysis(w), repeats)
            print(f"numpy full per-class analysis (fit, KS, baselines, seed lines) {shape}: "
                  f"{t * 1e3:.1f} ms ({w.nbytes / t / 1e9:.2f} GB/s)")
    try:
        from scipy import stats
        w = synthetic(20, 2048)
        t = time.perf_counter()
        for row in w:
            stats.laplace_asymmetric.fit(row.astype(np.float64))
        per_1000 = (time.perf_counter() - t) / 20 * 1000
        print(f"scipy laplace_asymmetric.fit 2048 values: {per_1000:.1f} s per 1000 rows")
    except ImportError:
        print("scipy not installed: skipping its timing")
    if args.check:
        w = load_safetensors(args.head)
        loc, scale, kappa, nll = exact_fit(w)
        with open(args.check) as f:
            rows = list(csv.DictReader(f))
        ours = np.array([float(r["nll"]) for r in rows])
        print(f"max |NLL aldfit - NLL numpy| / |NLL|: {np.max(np.abs(ours - nll) / np.abs(nll)):.3e}")
        from scipy import stats
        worse = 0
        for k in range(0, len(rows), 100):
            x = w[k].astype(np.float64)
            kap, l, s = stats.laplace_asymmetric.fit(x)
            scipy_nll = -np.sum(stats.laplace_asymmetric.logpdf(x, kap, l, s))
            worse += ours[k] > scipy_nll + 1e-9 * abs(scipy_nll)
            print(f"class {k}: aldfit NLL {ours[k]:.6f}, scipy NLL {scipy_nll:.6f}, aldfit better by {scipy_nll - ours[k]:.3e}")
        print(f"classes where scipy's generic fit beat aldfit's exact fit: {worse}")


if __name__ == "__main__":
    main()
