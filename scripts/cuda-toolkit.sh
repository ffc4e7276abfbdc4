#!/usr/bin/env bash
# Installs the pinned CUDA 13.0 compiler wheels (NVRTC, CCCL headers, nvcc, ptxas) into a folder
# and prints the environment that points aldfit and nvcc at them. CUDA 13.0 is the version of
# the H100 driver aldfit is checked on: a newer NVRTC emits PTX that driver rejects.
#
#   eval "$(scripts/cuda-toolkit.sh [DIR])"     # DIR defaults to ~/.cache/aldfit/cu13
set -euo pipefail
dir="${1:-${HOME}/.cache/aldfit/cu13}"
if [ ! -x "$dir/nvidia/cu13/bin/nvcc" ] || [ ! -e "$dir/nvidia/cu13/lib/libnvrtc.so.13" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$dir" \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 >&2
fi
cu="$dir/nvidia/cu13"
echo "export ALDFIT_CUDA_ROOT='$cu'"
echo "export LD_LIBRARY_PATH='$cu/lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
echo "export ALDFIT_CUDA_INCLUDE='$cu/include'"
echo "export PATH='$cu/bin':\"\$PATH\""
