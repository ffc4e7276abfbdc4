#!/usr/bin/env bash
# Builds every CUDA kernel with nvcc as a warning-free translation unit (-Werror all-warnings)
# and assembles its PTX with ptxas, for sm_90 (H100) by default. Needs nvcc and ptxas on PATH
# and the CUDA headers in ALDFIT_CUDA_INCLUDE (scripts/cuda-toolkit.sh sets both up).
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-sm_90}"
inc="${ALDFIT_CUDA_INCLUDE:-/usr/local/cuda/include}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for cu in kernels/*.cu; do
  name="$(basename "$cu" .cu)"
  nvcc -arch="$arch" -std=c++17 -Werror all-warnings -Ikernels -I"$inc" -isystem "$inc/cccl" \
    -ptx "$cu" -o "$out/$name.ptx"
  ptxas -arch="$arch" -Werror "$out/$name.ptx" -o "$out/$name.cubin"
  echo "kernels/$name.cu: nvcc and ptxas ($arch) clean"
done
