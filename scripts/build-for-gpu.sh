#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a GPU machine that has no Rust toolchain: the release
# binary and the criterion bench executable, stripped, with the commit they were built from, in
# target/gpu-check/ (send that folder along, e.g. as the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gpu-check
mkdir -p "$out"
cargo build --release --locked
cp target/release/aldfit "$out/aldfit"
bench="$(cargo bench --locked --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "analysis" and m.get("executable"):
        print(m["executable"])' | tail -1)"
cp "$bench" "$out/analysis-bench"
strip "$out/aldfit" "$out/analysis-bench" 2>/dev/null || true
git rev-parse HEAD > "$out/COMMIT"
git diff --quiet || echo "(with uncommitted changes)" >> "$out/COMMIT"
du -sh "$out"/*
