#!/usr/bin/env bash
# One call on a machine with an NVIDIA GPU and no Rust toolchain: prints the device, validates
# every GPU backend against the f64 CPU reference, runs `aldfit bench` (copy bandwidth, whole
# analysis, each primitive), the criterion benches and the PyTorch reference, writes
# bench-results/<date>-<gpu>.md (with the commit) and prints a short table last.
#
#   scripts/build-for-gpu.sh                 # on an x86-64 build machine: target/gpu-check/
#   scripts/gpu-check.sh [BIN_DIR]           # on the GPU machine, in the repository root
#
# Environment: ALDFIT_SHAPES (aldfit bench / torch shapes), ALDFIT_CRITERION_SHAPES (criterion;
# empty skips it), OUT (a folder that also receives the results).
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/gpu-check}"
shapes="${ALDFIT_SHAPES:-1000x1280,1000x2048,6625x120,32000x4096,128256x4096}"
criterion_shapes="${ALDFIT_CRITERION_SHAPES-1000x2048,128256x4096}"
log="$(mktemp -d)"

if ! command -v nvidia-smi >/dev/null; then
  echo "gpu-check: no nvidia-smi: this machine has no NVIDIA driver" >&2
  exit 1
fi
if [ ! -x "$bin/aldfit" ]; then
  echo "gpu-check: $bin/aldfit is missing: run scripts/build-for-gpu.sh on a build machine" >&2
  exit 1
fi
# NVRTC and the CUDA headers of the installed toolkit.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export ALDFIT_CACHE_DIR="$log/cache"
commit="$(head -c 12 "$bin/COMMIT" 2>/dev/null || git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
date="$(date -u +%Y-%m-%d)"
slug="$(echo "$gpu" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//;s/-$//')"
report="bench-results/$date-$slug.md"
mkdir -p bench-results

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv
nproc; free -g | head -2

echo "== validate: CUDA (and wgpu if it finds the GPU) against the f64 reference"
"$bin/aldfit" validate --backends cuda 2>&1 | tee "$log/validate-cuda.txt"
cuda_ok=${PIPESTATUS[0]}
"$bin/aldfit" validate --backends wgpu 2>&1 | tee "$log/validate-wgpu.txt"
wgpu_ok=${PIPESTATUS[0]}
backends=cpu,cuda
grep -q "validating wgpu on .*NVIDIA\|validating wgpu on .*H100\|validating wgpu on .*H200" "$log/validate-wgpu.txt" \
  && [ "$wgpu_ok" = 0 ] && backends=cpu,cuda,wgpu

echo "== aldfit bench ($backends; $shapes)"
"$bin/aldfit" bench --backends "$backends" --shapes "$shapes" --json > "$log/bench.json" 2> "$log/bench.err"
bench_ok=$?
tail -3 "$log/bench.err"
python3 - "$log/bench.json" > "$log/bench.txt" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else []
print(f"| backend | device | shape | stage | rows | time | GB/s | % of floor | G keys/s | vs CPU |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    t = r["seconds"]
    time_s = f"{t*1e3:.3f} ms" if t < 1 else f"{t:.3f} s"
    k = f'{r["gkeys_per_s"]:.2f}' if r.get("gkeys_per_s") else ""
    x = f'{r["speedup_vs_cpu"]:.1f}×' if r.get("speedup_vs_cpu") else ""
    print(f'| {r["backend"]} | {r["device"]} | {r["shape"]} | {r["stage"]} | {r["rows"]} | {time_s} | {r["gb_per_s"]:.1f} | {r["pct_of_floor"]:.1f}% | {k} | {x} |')
PY
cat "$log/bench.txt"

echo "== PyTorch reference (torch.sort + cumsum + argmin)"
python3 bench/torch_reference.py --shapes "$shapes" --json > "$log/torch.json" 2> "$log/torch.err"
torch_ok=$?
cat "$log/torch.err"

if [ -n "$criterion_shapes" ] && [ -x "$bin/analysis-bench" ]; then
  echo "== criterion (cuda; $criterion_shapes)"
  ALDFIT_BENCH_SHAPES="$criterion_shapes" "$bin/analysis-bench" --bench cuda 2>&1 \
    | grep -E "^(analysis|primitives)/|time:|thrpt:" | tee "$log/criterion.txt"
fi

{
  echo "# GPU check: $gpu, $date"
  echo
  echo "- commit: \`$(cat "$bin/COMMIT" 2>/dev/null || echo "$commit")\`"
  echo "- device: $gpu, driver $driver; host $(nproc) cores"
  echo "- produced by \`scripts/gpu-check.sh\` (binaries from \`scripts/build-for-gpu.sh\`)"
  echo
  echo "## Validation against the f64 CPU reference (docs/DESIGN.md section 4 tolerances)"
  echo
  echo '```'
  cat "$log/validate-cuda.txt"
  echo
  cat "$log/validate-wgpu.txt"
  echo '```'
  echo
  echo "## aldfit bench"
  echo
  echo "\`analysis\` is the whole per-class analysis from host memory (host-to-device copy included);"
  echo "\`analysis+joint\` adds the study's joint fit (a global sort of every weight, on the host);"
  echo "the primitives run on one chunk already on the device. % of floor: one read of the input at"
  echo "the copy bandwidth measured in the same run."
  echo
  cat "$log/bench.txt"
  echo
  echo "## PyTorch reference"
  echo
  echo '```'
  cat "$log/torch.json" "$log/torch.err"
  echo '```'
  if [ -f "$log/criterion.txt" ]; then
    echo
    echo "## criterion"
    echo
    echo '```'
    cat "$log/criterion.txt"
    echo '```'
  fi
} > "$report"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/bench-results"
  cp "$report" "$OUT/bench-results/"
  cp "$log"/*.json "$log"/*.txt "$OUT/" 2>/dev/null || true
fi

echo
echo "== summary ($gpu, commit $commit) -> $report"
python3 - "$log/bench.json" "$log/torch.json" <<'PY'
import json, sys
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return []
bench, torch = load(sys.argv[1]), {t["shape"]: t for t in load(sys.argv[2])}
def get(shape, backend, stage):
    return next((r for r in bench if r["shape"] == shape and r["backend"] == backend and r["stage"] == stage), None)
print(f'{"shape":>12} {"cpu analysis":>13} {"cuda analysis":>14} {"cuda sort+stats+line":>20} {"torch fit":>10} {"vs torch":>9} {"nll_grad %floor":>16}')
for shape in dict.fromkeys(r["shape"] for r in bench):
    cpu, cuda = get(shape, "cpu", "analysis"), get(shape, "cuda", "analysis")
    parts = [get(shape, "cuda", s) for s in ("sort", "segment_stats", "study_line")]
    resident = sum(p["seconds"] for p in parts) if all(parts) else None
    nll = get(shape, "cuda", "nll_grad")
    t = torch.get(shape)
    ms = lambda s: "%.2f ms" % (s * 1e3) if s is not None else "-"
    ratio = "%.1fx" % (t["resident_seconds"] / resident) if t and resident else "-"
    floor = "%.0f%%" % nll["pct_of_floor"] if nll else "-"
    cpu_s = cpu["seconds"] if cpu else None
    cuda_s = cuda["seconds"] if cuda else None
    torch_s = t["resident_seconds"] if t else None
    print(f"{shape:>12} {ms(cpu_s):>13} {ms(cuda_s):>14} {ms(resident):>20} {ms(torch_s):>10} {ratio:>9} {floor:>16}")
PY
echo "validate cuda: $([ "$cuda_ok" = 0 ] && echo pass || echo FAIL), wgpu: $([ "$wgpu_ok" = 0 ] && echo pass || echo "fail/unavailable"), bench: $([ "$bench_ok" = 0 ] && echo ok || echo FAIL), torch: $([ "$torch_ok" = 0 ] && echo ok || echo unavailable)"
[ "$cuda_ok" = 0 ] && [ "$bench_ok" = 0 ]
