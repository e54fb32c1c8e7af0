#!/usr/bin/env bash
# Run FFCV 1.0.2's own test suite (the tests/ folder of its PyPI sdist) against this
# project's `ffcv` package, installed from this tree into a fresh virtual environment, and
# print one line per test file. Manual check, not part of CI (see README.md).
#
#   bash tests/peers/ffcv102/run_suite.sh                   # against this project
#   bash tests/peers/ffcv102/run_suite.sh --ffcv102         # the same suite against FFCV 1.0.2 itself
#   bash tests/peers/ffcv102/run_suite.sh -- -k rrc -x      # extra pytest arguments
#
# Environment:
#   SUITE_VENV     the venv for this project (default: a new one under a temp dir, removed after)
#   FFCV102_VENV   FFCV 1.0.2's venv for --ffcv102 (default /opt/ffcv102-venv; made by setup.sh)
#   PYTHON         the interpreter the venv is made with (default python3)
#   PIP_FIND_LINKS a folder with the CPU build of torch 2.13.0 when the index's torch would be a
#                  CUDA build (as on the project's machines); never lets pip pick a CUDA torch here
#
# What it runs: every test of the suite except those that need a GPU (test_cuda_nonblocking.py,
# the GPU normalisation test, and the traversal tests that start an NCCL process group with
# several processes); they are listed as "not run". The suite's tests that download CIFAR-10
# (test_image_pipeline.py::test_cifar_subset, test_augmentations.py) get a generated stand-in
# instead (standins/torchvision, used only when torchvision does not import), which also
# stands in for the torchvision transforms test_augmentations.py applies (torch.nn.Module
# objects in a pipeline).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
TARGET=ours
if [ "${1:-}" = "--ffcv102" ]; then TARGET=ffcv102; shift; fi
[ "${1:-}" = "--" ] && shift

WORK="$(mktemp -d -t ffcv102-suite.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
log() { echo "[ffcv102-suite] $*" >&2; }

# ---------------------------------------------------------------- the suite, from the sdist
log "taking FFCV 1.0.2's tests from its PyPI sdist"
"$PY" "$HERE/fetch_sdist.py" "$WORK/sdist" >/dev/null
SUITE="$WORK/sdist/ffcv-1.0.2/tests"
[ -d "$SUITE" ] || { log "no tests/ folder in the sdist"; exit 1; }

# ---------------------------------------------------------------- the environment
if [ "$TARGET" = ffcv102 ]; then
  VENV="${FFCV102_VENV:-/opt/ffcv102-venv}"
  [ -x "$VENV/bin/python" ] || FFCV102_VENV="$VENV" bash "$HERE/setup.sh" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$VENV/ffcv102-constraints.txt" \
    pytest webdataset >&2
else
  VENV="${SUITE_VENV:-$WORK/venv}"
  bash "$HERE/ours_venv.sh" "$VENV" pytest assertpy tqdm psutil webdataset pillow 2>&1 \
    | { grep -v "^WARNING: Location" || true; } >&2
fi
VPY="$VENV/bin/python"
"$VPY" - <<'EOF' >&2
import importlib.metadata as m
print("[ffcv102-suite] ffcv", m.version("ffcv"), "| torch", m.version("torch"), "| numpy", m.version("numpy"))
EOF

STANDINS=""
if ! "$VPY" -c "import torchvision" 2>/dev/null; then STANDINS="$HERE/standins"; fi

# ---------------------------------------------------------------- run
NEEDS_GPU=(
  "test_cuda_nonblocking.py"
  "test_image_normalization.py::test_gpu_normalization"
  "test_traversal_orders.py::test_traversal_sequential_2" "test_traversal_orders.py::test_traversal_sequential_3"
  "test_traversal_orders.py::test_traversal_sequential_4" "test_traversal_orders.py::test_traversal_random_2"
  "test_traversal_orders.py::test_traversal_random_3" "test_traversal_orders.py::test_traversal_random_4"
  "test_traversal_orders.py::test_traversal_sequential_distributed_with_indices"
  "test_traversal_orders.py::test_traversal_random_distributed_with_indices"
)
DESELECT=()
for t in "${NEEDS_GPU[@]}"; do DESELECT+=(--deselect "$t"); done

log "running the suite against $TARGET (a few minutes)"
rc=0
( cd "$SUITE" && PYTHONPATH="${STANDINS}" timeout 3600 "$VPY" -m pytest -q -p no:cacheprovider \
    --rootdir=. -o addopts="" --junitxml="$WORK/report.xml" "${DESELECT[@]}" "$@" >"$WORK/pytest.log" 2>&1 ) || rc=$?

"$VPY" "$HERE/summarize_suite.py" "$WORK/report.xml" "$TARGET" "${NEEDS_GPU[@]}" || true
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
  log "pytest ended with status $rc; its output:"; tail -50 "$WORK/pytest.log" >&2
fi
if [ $rc -eq 1 ]; then
  grep -E "^(FAILED|ERROR) " "$WORK/pytest.log" >&2 || true
fi
exit $rc
