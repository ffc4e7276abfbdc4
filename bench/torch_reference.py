#!/usr/bin/env python3
"""The exact ALD fit of docs/DESIGN.md 2.2 done the PyTorch way on a GPU (torch.sort, cumsum, argmin,
float64 maths), timed on synthetic heads of the shapes `aldfit bench` uses: the side-by-side
reference for the CUDA backend. scripts/gpu-check.sh runs it in the same call.

    python3 bench/torch_reference.py [--shapes 1000x2048,128256x4096] [--runs 3] [--json]

Two times per shape: `resident` (the head already on the GPU: sort + fit) and `from_host`
(the host-to-device copy included), each the best of the runs, synchronised.
"""
import argparse
import json
import sys
import time


def exact_fit(torch, w):
    """Vectorised exact MLE over rows of w (float32 sort, float64 maths): loc, scale, kappa, nll."""
    x32, _ = torch.sort(w, dim=1)
    x = x32.double()
    n = x.shape[1]
    c = torch.cumsum(x, dim=1)
    j = torch.arange(n, device=w.device, dtype=torch.float64)
    above = (c[:, -1:] - c) - (n - 1 - j) * x
    below = (j + 1) * x - c
    obj = torch.sqrt(above.clamp_min(0)) + torch.sqrt(below.clamp_min(0))
    obj = torch.where((above > 0) & (below > 0), obj, torch.full_like(obj, float("inf")))
    best = torch.argmin(obj, dim=1, keepdim=True)
    a = above.gather(1, best) / n
    b = below.gather(1, best) / n
    kappa = (b / a) ** 0.25
    scale = (a * b) ** 0.25 * (a.sqrt() + b.sqrt())
    nll = n * (2 * torch.log(a.sqrt() + b.sqrt()) + 1)
    return x.gather(1, best), scale, kappa, nll


def synthetic(torch, classes, features, seed=42):
    """Rows drawn from ALDs with random parameters, as aldfit's synthetic heads (not bitwise)."""
    g = torch.Generator().manual_seed(seed)
    loc = (torch.rand(classes, 1, generator=g) - 0.5) * 0.04
    scale = 0.02 + torch.rand(classes, 1, generator=g) * 0.06
    kappa = torch.exp((torch.rand(classes, 1, generator=g) * 2 - 1) * 0.6931)
    u = torch.rand(classes, features, generator=g).clamp(1e-12, 1 - 1e-12)
    k2 = kappa * kappa
    z = torch.where(
        u < k2 / (1 + k2),
        kappa * torch.log(u * (1 + k2) / k2),
        -torch.log((1 - u) * (1 + k2)) / kappa,
    )
    return (loc + scale * z).float()


def best_time(torch, fn, runs):
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="1000x1280,1000x2048,6625x120,32000x4096,128256x4096")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_reference: PyTorch is not installed; nothing to compare with", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("torch_reference: PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0)
    out = []
    for shape in args.shapes.split(","):
        classes, features = map(int, shape.lower().split("x"))
        host = synthetic(torch, classes, features)
        w = host.cuda()
        resident = best_time(torch, lambda: exact_fit(torch, w), args.runs)
        from_host = best_time(torch, lambda: exact_fit(torch, host.cuda()), args.runs)
        del w
        torch.cuda.empty_cache()
        bytes_ = classes * features * 4
        out.append({
            "backend": "torch",
            "device": device,
            "torch": torch.__version__,
            "shape": shape,
            "resident_seconds": resident,
            "from_host_seconds": from_host,
            "gb_per_s": bytes_ / resident / 1e9,
        })
        if not args.json:
            print(f"torch exact fit {shape} on {device}: {resident * 1e3:.2f} ms resident, "
                  f"{from_host * 1e3:.2f} ms from host ({bytes_ / resident / 1e9:.1f} GB/s)")
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
