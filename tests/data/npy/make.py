"""Writes the .npy fixtures of tests/head.rs with numpy itself, and checks that numpy reads each
`ok-*` file and refuses each `bad-*` file. Run from this folder: python3 make.py (numpy 2.x).
Every array holds arange(12) reshaped to (3, 4) in the file's dtype."""
import io
import numpy as np
from numpy.lib import format as npf

a = np.arange(12).reshape(3, 4)


def write(name, arr, version, fortran=False):
    arr = np.asfortranarray(arr) if fortran else np.ascontiguousarray(arr)
    buf = io.BytesIO()
    npf.write_array(buf, arr, version=version)
    open(name, "wb").write(buf.getvalue())
    return buf.getvalue()


write("ok-v1-f32.npy", a.astype("<f4"), (1, 0))
write("ok-v1-f32-fortran.npy", a.astype("<f4"), (1, 0), fortran=True)
write("ok-v2-f64.npy", a.astype("<f8"), (2, 0))
write("ok-v3-f16.npy", a.astype("<f2"), (3, 0))
raw = write("base.npy", a.astype("<f4"), (1, 0))
header_len = int.from_bytes(raw[8:10], "little")
header = raw[10 : 10 + header_len].decode("latin1")
body = raw[10 + header_len :]


def with_header(name, text):
    text = text.rstrip("\n")
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    open(name, "wb").write(raw[:8] + len(text).to_bytes(2, "little") + text.encode("latin1") + body)


with_header("ok-v1-double-quotes.npy", header.replace("'", '"'))
with_header("ok-v1-reordered.npy", "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}")
with_header("bad-extra-key.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'note': \"'shape': (5, 64)\"}")
with_header("bad-quoted-fortran.npy", "{'descr': '<f4', 'fortran_order': 'True', 'shape': (3, 4)}")
with_header("bad-shape-in-string.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': '(3, 4)'}")
with_header("bad-not-a-dict.npy", "['descr', '<f4']")
with_header("bad-missing-shape.npy", "{'descr': '<f4', 'fortran_order': False}")
import os
os.remove("base.npy")

for f in sorted(os.listdir(".")):
    if not f.endswith(".npy"):
        continue
    try:
        v = np.load(f)
        ok = v.shape == (3, 4) and (v == a).all()
    except Exception:
        ok = False
    assert ok == f.startswith("ok-"), f
    print(f, "read" if ok else "refused", "by numpy", np.__version__)
