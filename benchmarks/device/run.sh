#!/usr/bin/env bash
# The device check (benchmarks/device/check.py) on a machine with an NVIDIA GPU and many
# cores, with a Python that has torch (a CUDA build) and this tree's packages installed
# (python3 scripts/setup.py --no-demo makes one). Results: $OUT/device.json and device.md.
#
#   bash benchmarks/device/run.sh [PYTHON]        # OUT=device-check by default
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${1:-python3}"
OUT="${OUT:-device-check}"
"$PYTHON" -c 'import torch, ffcv' || { echo "run.sh: $PYTHON needs torch and ffcv (python3 scripts/setup.py --no-demo)" >&2; exit 2; }
timeout 480 "$PYTHON" benchmarks/device/check.py --out "$OUT" "${@:2}"
