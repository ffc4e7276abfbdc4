"""aldfit: the asymmetric Laplace distribution fitted exactly to every class of a classifier head,
tested against Gaussian and Laplace alternatives, with calibrated verdicts.

    >>> import aldfit
    >>> weights, labels = aldfit.load("model.safetensors")   # any checkpoint the CLI reads
    >>> result = aldfit.fit(weights, labels)                 # numpy, torch (CPU), anything array-like
    >>> result.verdict                                       # or just `result` in a notebook

The analysis is the `aldfit fit` command's own code (Rust), run with the GIL released: the same
options (``aldfit.fit(w, rule="ald", split=True, classes="0-99")`` is ``aldfit fit --rule ald
--split --classes 0-99``), the same numbers to the last bit, the same summary.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _aldfit

__version__ = _aldfit.__version__
__all__ = ["fit", "load", "validate", "backends", "Result"]

# Options the module sets itself: the array is the head, and the outputs are handed back.
_RESERVED = {"out", "o", "quiet", "q", "head", "tensor", "transpose", "labels", "threads"}


def _as_array(weights: Any) -> np.ndarray:
    """A numpy view of `weights` where one exists (numpy arrays, CPU torch tensors, anything with
    ``__array__`` or ``__dlpack__``); a copy only where the layout or dtype needs one."""
    mod = type(weights).__module__ or ""
    if mod.startswith("torch"):
        t = weights.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()  # numpy has no bfloat16
        return np.asarray(t)
    if isinstance(weights, np.ndarray) or hasattr(weights, "__array__"):
        return np.asarray(weights)
    if hasattr(weights, "__dlpack__"):
        return np.from_dlpack(weights)
    return np.asarray(weights)


def _argv(backend: str, bootstrap: Any, seed: Optional[int], split: bool, options: dict) -> list:
    argv = ["--quiet", "--backend", str(backend), "--bootstrap", str(bootstrap)]
    if seed is not None:
        argv += ["--seed", str(int(seed))]
    if split:
        argv.append("--split")
    for key, value in options.items():
        if key in _RESERVED:
            raise ValueError(f"aldfit.fit sets `{key}` itself; leave it out")
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def _progress() -> Optional[Callable[[str, int, int], None]]:
    """A tqdm bar per stage when tqdm is installed (the CLI's progress, in a notebook)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bars: dict = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="rows", leave=False)
        bar.total = total
        bar.n = done
        bar.refresh()

    update.close = lambda: [b.close() for b in bars.values()]  # type: ignore[attr-defined]
    return update


def _read_csv(path: str) -> dict:
    """A CSV file as columns: numbers as float arrays, the rest as lists of text."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out = {}
    for j, name in enumerate(header):
        values = [r[j] for r in body]
        try:
            out[name] = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError:
            out[name] = values
    return out


class Result:
    """What `aldfit.fit` found.

    - ``classes``: every column of ``classes.csv``, as numpy arrays (labels and ``aic_best`` as
      lists of text);
    - ``verdict``: the calibrated verdict (a dict: every claim with its observed value, both
      nulls and its outcome), or ``{"off": why}`` when the bootstrap did not run;
    - ``tree``: with ``split=True``, every node of every class's split tree (``tree.csv``'s
      columns);
    - ``info``: backend, device, the input, the options, the time of each stage, the notes;
    - ``summary``: the Markdown summary the CLI prints.
    """

    def __init__(self, raw: dict, tree: Optional[dict], out: Optional[str]):
        self.classes: dict = raw["classes"]
        run = json.loads(raw["run"])
        self.verdict: dict = run.get("verdict") or {}
        self.tree: Optional[dict] = tree
        self.summary: str = raw["summary"]
        self.info: dict = {
            "backend": run.get("backend", {}).get("name"),
            "device": run.get("backend", {}).get("device"),
            "input": run.get("input"),
            "options": run.get("options"),
            "timings_s": run.get("timings_s"),
            "wall_s": run.get("wall_s"),
            "notes": list(raw["notes"]),
            "out": out,
            "run": run,
        }

    def __len__(self) -> int:
        return len(self.classes["class"])

    def to_pandas(self):
        """``classes`` as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Result.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame(self.classes)

    def __repr__(self) -> str:
        claims = self.verdict.get("claims") or []
        said = "; ".join(f"{c['claim']}: {c['outcome']}" for c in claims[:2])
        return (
            f"<aldfit.Result: {len(self)} classes on {self.info['backend']} "
            f"({self.info['device']}){'; ' + said if said else ''}>"
        )

    def _repr_markdown_(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return _markdown_html(self.summary)


def _markdown_html(text: str) -> str:
    """The summary's Markdown (headings, tables, lists, paragraphs) as HTML for notebooks."""
    out, table, items = [], [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip() and not line.startswith("!["):
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def fit(
    weights: Any,
    labels: Optional[Sequence[str]] = None,
    backend: str = "auto",
    bootstrap: Any = "auto",
    seed: Optional[int] = None,
    split: bool = False,
    *,
    out: Optional[os.PathLike] = None,
    progress: bool = True,
    **options: Any,
) -> Result:
    """Fits the ALD to every class (row) of `weights` [classes, features] and tests it.

    `weights`: any 2-D float array (numpy float32/float16/float64 in C or Fortran order is read
    in place; a torch tensor or anything with ``__array__``/``__dlpack__`` through numpy).
    `labels`: one per class. `backend`: "auto", "cpu", "wgpu" or "cuda". `bootstrap`: "auto" or
    the number of replicates B (0: no verdict). `seed`: the replicates' seed. `split`: grow every
    class's split tree. `out`: also keep the CLI's files (classes.csv, summary.md, run.json, …)
    in this folder. Every other option of ``aldfit fit`` is a keyword, with ``_`` for ``-``:
    ``skip_nonfinite=True``, ``classes="0-99"``, ``rule="ald"``, ``min_size=5``, ``pooled="off"``,
    ``plots=True`` (with `out`), …

    Errors are ``ValueError`` (bad arrays and options, NaN without ``skip_nonfinite=True``),
    ``RuntimeError`` (a backend that cannot run), with the CLI's one-line messages.
    """
    array = _as_array(weights)
    if array.ndim != 2:
        raise ValueError(f"weights must be a 2-D array [classes, features], not {array.ndim}-D")
    if array.size == 0:
        raise ValueError(f"weights is empty (shape {array.shape}): there are no classes to analyse")
    if not array.flags.c_contiguous and not array.flags.f_contiguous:
        array = np.ascontiguousarray(array)
    if labels is not None:
        labels = [str(label) for label in labels]
    argv = _argv(backend, bootstrap, seed, split, options)
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="aldfit-")
        target = os.path.join(tmp, "out")
    else:
        target = os.fspath(out)
    bar = _progress() if progress else None
    try:
        raw = _aldfit.fit(array, labels, argv, target, bar)
        tree = _read_csv(os.path.join(target, "tree.csv")) if split else None
    finally:
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return Result(raw, tree, None if out is None else target)


def load(path: os.PathLike, tensor: Optional[str] = None, transpose: bool = False):
    """The head of any checkpoint the CLI reads (safetensors, PyTorch, GGUF, ONNX, TFLite, npy,
    a Hugging Face folder), as a float32 array [classes, features], and its labels (a list, empty
    when the checkpoint has none beside it)."""
    return _aldfit.load(os.fspath(path), tensor, transpose)


def validate(backends: Optional[Sequence[str]] = None) -> dict:
    """Checks every backend (or those named) against the f64 reference, as ``aldfit validate``:
    returns ``{"ok": bool, "table": str, "notes": [...]}``; a named backend that is unavailable
    raises ``RuntimeError``."""
    table, ok, notes = _aldfit.validate(None if backends is None else list(backends))
    return {"ok": ok, "table": table, "notes": notes}


def backends() -> list:
    """Each backend, whether it can run here, and its device (or why not)."""
    return [
        {"name": name, "available": ok, "device" if ok else "reason": what}
        for name, ok, what in _aldfit.backends()
    ]
