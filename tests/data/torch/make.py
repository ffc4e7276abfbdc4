"""Writes the PyTorch fixtures of tests/torch.rs with torch itself, and beside each tensor the
same matrix as .npy (written by numpy), which the loader's result must equal.

    python tests/data/torch/make.py      # torch 2.15, numpy 2.x; run from the repository root

Values are small integers over 64, exact in f16 and bf16, so every dtype compares exactly.
"""
import argparse
import collections
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def matrix(rows, cols, seed):
    i = np.arange(rows * cols, dtype=np.int64) + seed
    return (((i * 37) % 61) - 30).astype(np.float32).reshape(rows, cols) / 64


def save(obj, name, **kw):
    torch.save(obj, os.path.join(HERE, name), **kw)


def expect(name, array):
    np.save(os.path.join(HERE, name + ".npy"), np.ascontiguousarray(array, dtype=np.float32))


def main():
    w = matrix(5, 8, 0)
    b = matrix(1, 5, 1)[0]
    expect("fc", w)

    # The zip format (torch >= 1.6), f32, with a bias beside the weight.
    save(collections.OrderedDict([("fc.weight", torch.from_numpy(w)), ("fc.bias", torch.from_numpy(b))]), "zip_f32.pt")

    # Every float dtype torch stores.
    save(
        {
            "half.weight": torch.from_numpy(w).half(),
            "bf16.weight": torch.from_numpy(w).bfloat16(),
            "double.weight": torch.from_numpy(w).double(),
            "long.weight": torch.arange(40).reshape(5, 8),
        },
        "zip_dtypes.pt",
    )

    # A training checkpoint: the weights under state_dict, with DataParallel's module. prefix,
    # and other entries (numbers, strings) beside them.
    save({"epoch": 3, "arch": "toy", "state_dict": {"module.fc.weight": torch.from_numpy(w), "module.fc.bias": torch.from_numpy(b)}}, "nested.pth")

    # A transposed view (stride (1, rows)), as checkpoints converted from TF often hold.
    t = matrix(8, 5, 2)
    expect("transposed", t.T)
    save({"fc.weight": torch.from_numpy(t).t()}, "transposed.pt")

    # A view at an offset into a larger storage (rows 4..8 of a 10-row tensor).
    big = matrix(10, 8, 3)
    expect("offset", big[4:8])
    save({"fc.weight": torch.from_numpy(big)[4:8], "other": torch.from_numpy(big)}, "offset.pt")

    # A strided view that is no matrix layout (every other column): refused.
    save({"fc.weight": torch.from_numpy(big)[:, ::2]}, "strided.pt")

    # The legacy format (torch < 1.6, still that of many published .pth files).
    save(collections.OrderedDict([("conv.weight", torch.from_numpy(matrix(2, 3, 4)).reshape(2, 3, 1, 1)), ("fc.weight", torch.from_numpy(w)), ("fc.bias", torch.from_numpy(b)), ("half.weight", torch.from_numpy(w).half())]), "legacy.pth", _use_new_zipfile_serialization=False)

    # An object that is not a tensor: reading it would run code, so it is refused by name.
    save({"fc.weight": torch.from_numpy(w), "args": argparse.Namespace(lr=0.1)}, "namespace.pt")

    # A sharded checkpoint in Hugging Face's layout.
    shards = os.path.join(HERE, "sharded")
    os.makedirs(shards, exist_ok=True)
    torch.save({"embed.weight": torch.from_numpy(matrix(3, 8, 5))}, os.path.join(shards, "pytorch_model-00001-of-00002.bin"))
    torch.save({"classifier.weight": torch.from_numpy(w)}, os.path.join(shards, "pytorch_model-00002-of-00002.bin"))
    index = {
        "metadata": {"total_size": 4 * 8 * 8},
        "weight_map": {
            "embed.weight": "pytorch_model-00001-of-00002.bin",
            "classifier.weight": "pytorch_model-00002-of-00002.bin",
        },
    }
    with open(os.path.join(shards, "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f, indent=2)

    # Check what was written reads back in torch as intended.
    for name in ["zip_f32.pt", "zip_dtypes.pt", "nested.pth", "transposed.pt", "offset.pt", "legacy.pth"]:
        torch.load(os.path.join(HERE, name), weights_only=True)
    print("torch", torch.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
