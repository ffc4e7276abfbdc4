"""Writes the GGUF fixtures of tests/gguf.rs with llama.cpp's own Python package, and beside
them each tensor dequantised by that package (`gguf.quants.dequantize`) as .npy, which aldfit's
dequantisation must equal bit for bit.

    python tests/data/gguf/make.py      # gguf 0.19 (pip install gguf), numpy 2.x

Types gguf-py can quantise are quantised from a seeded matrix; for the K-quants, which it only
dequantises, the blocks are seeded random bytes with their f16 scales set to small finite values.
"""
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS, COLS = 6, 512
QUANTISED = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.BF16]
# Byte offsets of each K-quant block's f16 scales (ggml's block_q*_K layouts).
K_SCALES = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def raw_blocks(qtype, rng):
    elems, size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(ROWS * COLS // elems, size), dtype=np.uint8)
    for at in K_SCALES[qtype]:
        d = rng.uniform(0.001, 0.05, size=blocks.shape[0]).astype(np.float16)
        blocks[:, at : at + 2] = d.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(ROWS, -1)


def main():
    rng = np.random.default_rng(2026)
    weights = (rng.laplace(0.0, 0.05, size=(ROWS, COLS))).astype(np.float32)
    w = gguf.GGUFWriter(os.path.join(HERE, "types.gguf"), "llama")
    w.add_token_list([f"tok{i}" for i in range(ROWS - 1)])
    tensors = {"f32.weight": (weights, T.F32), "f16.weight": (weights.astype(np.float16), T.F16)}
    for qtype in QUANTISED:
        tensors[f"{qtype.name.lower()}.weight"] = (gguf.quants.quantize(weights, qtype), qtype)
    for qtype in K_SCALES:
        tensors[f"{qtype.name.lower()}.weight"] = (raw_blocks(qtype, rng), qtype)
    for name, (data, qtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=qtype)
        np.save(os.path.join(HERE, name.replace(".weight", ".npy")), gguf.quants.dequantize(data, qtype).astype(np.float32))
    # The head llama.cpp writes most often: output.weight in Q6_K.
    out = raw_blocks(T.Q6_K, rng)
    w.add_tensor("output.weight", out, raw_dtype=T.Q6_K)
    np.save(os.path.join(HERE, "output.npy"), gguf.quants.dequantize(out, T.Q6_K))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # A model with tied weights: no output.weight, the token embedding is the head.
    t = gguf.GGUFWriter(os.path.join(HERE, "tied.gguf"), "llama")
    t.add_token_list([f"tok{i}" for i in range(ROWS)])
    t.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(weights[:, :COLS], T.Q8_0)[:2], raw_dtype=T.Q8_0)
    t.add_tensor("token_embd.weight", gguf.quants.quantize(weights, T.Q8_0), raw_dtype=T.Q8_0)
    t.write_header_to_file()
    t.write_kv_data_to_file()
    t.write_tensors_to_file()
    t.close()

    # Read back with gguf-py's reader: shapes as llama.cpp lists them.
    for f in ["types.gguf", "tied.gguf"]:
        r = gguf.GGUFReader(os.path.join(HERE, f))
        print(f, [(t.name, t.tensor_type.name, list(t.shape)) for t in r.tensors])
    print("gguf", gguf.__version__ if hasattr(gguf, "__version__") else "?", "numpy", np.__version__)


if __name__ == "__main__":
    main()
