#!/usr/bin/env bash
# The GPU check, in stages, for a machine with an NVIDIA GPU and no Rust toolchain. Build the
# binaries on an x86-64 machine first (scripts/build-for-gpu.sh -> target/gpu-check/) and send
# that folder along (the device tool's `carry`).
#
#   scripts/gpu-check.sh [BIN_DIR]        # in the repository root; BIN_DIR: target/gpu-check
#
# Every stage writes its files into $OUT (default: gpu-check-out/) the moment it ends, and a
# line to $OUT/stages.txt; a later stage's failure or timeout never loses an earlier one's.
#
#   stage 1  device, driver, toolkit (nvcc, NVRTC, CUB headers, and why), then `validate`
#            on CUDA, and on wgpu when CUDA runs (the NVIDIA adapter)     H100/H200: ~1-1.5 min
#            (the first NVRTC compile over CUB takes 20-40 s; later runs load the cache)
#   stage 2  `aldfit bench` on cpu and cuda: 1000x1280 and 32000x4096, every stage; 128256x4096,
#            the whole analysis only                                        H100/H200: ~1.5 min
#   stage 3  (opt-in) criterion on cuda, 1 s warm-up and 3 s per benchmark       ~3-4 min
#   stage 4  (opt-in) the PyTorch reference (bench/torch_reference.py), when torch imports
#                                                                                 ~1 min
# The default (stages 1-2) takes about 2.5-3 minutes; ALDFIT_STAGES=1,2,3,4 runs the others.
# Each stage has its own time limit (ALDFIT_STAGE_TIMEOUT, seconds, default 240).
#
# Environment: OUT (where the files go), ALDFIT_STAGES, ALDFIT_STAGE_TIMEOUT, ALDFIT_CUDA_ROOT
# (carried CUDA wheels: its lib/ joins LD_LIBRARY_PATH and its include/ holds the headers).
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/gpu-check}"
out="${OUT:-gpu-check-out}"
stages=",${ALDFIT_STAGES:-1,2},"
limit="${ALDFIT_STAGE_TIMEOUT:-240}"
mkdir -p "$out"
: > "$out/stages.txt"

# Records a stage's outcome as soon as it is known.
stage_done() { echo "stage $1: $2" | tee -a "$out/stages.txt"; }

if [ ! -x "$bin/aldfit" ]; then
  echo "gpu-check: $bin/aldfit is missing: run scripts/build-for-gpu.sh on a build machine" >&2
  stage_done 1 "FAIL (no aldfit binary in $bin)"
  exit 1
fi
# NVRTC: carried wheels first, then the installed toolkit.
for d in ${ALDFIT_CUDA_ROOT:+"$ALDFIT_CUDA_ROOT/lib"} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export ALDFIT_CACHE_DIR="${ALDFIT_CACHE_DIR:-$out/kernel-cache}"
commit="$(head -c 12 "$bin/COMMIT" 2>/dev/null || git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

# ---- stage 1: the device, the toolkit, validation
stage1() {
  {
    echo "commit: $(cat "$bin/COMMIT" 2>/dev/null || echo "$commit")"
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(nproc) cores; $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv
      echo "driver's CUDA: $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
    else
      echo "nvidia-smi: not found (no NVIDIA driver here)"
    fi
    if command -v nvcc >/dev/null; then nvcc --version | tail -2; else echo "nvcc: not on PATH"; fi
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  } > "$out/stage1-device.txt" 2>&1
  cat "$out/stage1-device.txt"
  timeout "$limit" "$bin/aldfit" validate --backends cuda > "$out/stage1-validate-cuda.txt" 2>&1
  local cuda=$?
  grep -E "cuda toolkit|validating|FAIL|error" "$out/stage1-validate-cuda.txt" | head -20
  if [ "$cuda" != 0 ]; then
    # The backend's own reason (not the toolkit line), else the run's error.
    why="$(grep -v 'cuda toolkit' "$out/stage1-validate-cuda.txt" | grep -m1 -E 'not available|FAIL|error' | sed 's/^aldfit: //')"
    echo "CUDA unavailable or failing: ${why:-see stage1-validate-cuda.txt}"
    echo "wgpu skipped: CUDA did not run, so there is no NVIDIA adapter to check" > "$out/stage1-validate-wgpu.txt"
    stage_done 1 "FAIL (validate cuda exited $cuda; see stage1-validate-cuda.txt)"
    return 1
  fi
  timeout "$limit" "$bin/aldfit" validate --backends wgpu > "$out/stage1-validate-wgpu.txt" 2>&1
  local wgpu=$?
  grep -E "validating|FAIL" "$out/stage1-validate-wgpu.txt" | head -5
  if [ "$wgpu" = 0 ] && grep -q "validating wgpu on .*\(NVIDIA\|H100\|H200\|RTX\|A100\)" "$out/stage1-validate-wgpu.txt"; then
    echo cpu,cuda,wgpu > "$out/backends.txt"
  else
    echo cpu,cuda > "$out/backends.txt"
  fi
  stage_done 1 "pass (cuda validated; wgpu $([ "$wgpu" = 0 ] && echo exit 0 || echo "exit $wgpu"))"
}

# ---- stage 2: aldfit bench on quick shapes, and the LLM-sized head's whole analysis
stage2() {
  local backends ok=0
  backends="$(cat "$out/backends.txt" 2>/dev/null || echo cpu,cuda)"
  timeout "$limit" "$bin/aldfit" bench --backends "$backends" --shapes 1000x1280,32000x4096 \
    --json > "$out/stage2-bench.json" 2> "$out/stage2-bench.err" || ok=$?
  timeout "$limit" "$bin/aldfit" bench --backends "$backends" --shapes 128256x4096 \
    --stages analysis --runs 2 --json > "$out/stage2-bench-llm.json" 2>> "$out/stage2-bench.err" || ok=$?
  python3 - "$out/stage2-bench.json" "$out/stage2-bench-llm.json" > "$out/stage2-bench.md" <<'PY'
import json, sys
rows = []
for p in sys.argv[1:]:
    try:
        rows += json.load(open(p))
    except Exception:
        pass
print("| backend | device | shape | stage | rows | time | GB/s | % of floor | G keys/s | vs CPU |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    t = r["seconds"]
    time_s = f"{t*1e3:.3f} ms" if t < 1 else f"{t:.3f} s"
    k = f'{r["gkeys_per_s"]:.2f}' if r.get("gkeys_per_s") else ""
    x = f'{r["speedup_vs_cpu"]:.1f}×' if r.get("speedup_vs_cpu") else ""
    print(f'| {r["backend"]} | {r["device"]} | {r["shape"]} | {r["stage"]} | {r["rows"]} | {time_s} | {r["gb_per_s"]:.1f} | {r["pct_of_floor"]:.1f}% | {k} | {x} |')
PY
  cat "$out/stage2-bench.md"
  stage_done 2 "$([ "$ok" = 0 ] && echo pass || echo "FAIL (exit $ok; see stage2-bench.err)")"
  [ "$ok" = 0 ]
}

# ---- stage 3 (opt-in): criterion, short
stage3() {
  if [ ! -x "$bin/analysis-bench" ]; then
    stage_done 3 "skipped (no $bin/analysis-bench)"
    return 0
  fi
  ALDFIT_BENCH_SHAPES="${ALDFIT_CRITERION_SHAPES:-1000x2048,32000x4096}" timeout "$limit" \
    "$bin/analysis-bench" --bench cuda --warm-up-time 1 --measurement-time 3 2>&1 \
    | grep -E "^(analysis|primitives)/|time:|thrpt:" > "$out/stage3-criterion.txt"
  local ok=${PIPESTATUS[0]}
  cat "$out/stage3-criterion.txt"
  stage_done 3 "$([ "$ok" = 0 ] && echo pass || echo "FAIL (exit $ok)")"
}

# ---- stage 4 (opt-in): the PyTorch reference
stage4() {
  if ! python3 -c "import torch" 2>/dev/null; then
    stage_done 4 "skipped (torch does not import)"
    return 0
  fi
  timeout "$limit" python3 bench/torch_reference.py --shapes 1000x2048,32000x4096,128256x4096 \
    --json > "$out/stage4-torch.json" 2> "$out/stage4-torch.err"
  local ok=$?
  cat "$out/stage4-torch.err"
  stage_done 4 "$([ "$ok" = 0 ] && echo pass || echo "FAIL (exit $ok)")"
}

status=0
for s in 1 2 3 4; do
  case "$stages" in *",$s,"*) ;; *) continue ;; esac
  echo "== stage $s"
  if ! "stage$s"; then
    status=1
    # Without a working CUDA backend the later stages would only time the CPU.
    [ "$s" = 1 ] && break
  fi
done
echo "== done (commit $commit): $(tr '\n' ';' < "$out/stages.txt")"
exit $status
