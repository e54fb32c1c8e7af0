#!/usr/bin/env bash
# Make (or reuse) a virtual environment holding this project's five packages, installed from
# this tree as a user installs them, plus EXTRA packages:
#
#   bash tests/peers/ffcv102/ours_venv.sh VENV [EXTRA ...]
#
# torch 2.13.0 comes first: the local CPU build when PIP_FIND_LINKS has one (the project's
# machines), else the package index's; it is pinned for every later step so that no
# resolver swaps it for another build. Used by run_suite.sh and run_examples.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="$1"; shift
PY="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
log() { echo "[ours-venv] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "making a fresh venv at $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
CONSTRAINTS="$VENV/torch-constraint.txt"
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
if ! "${PIP[@]}" --no-index --no-deps "torch==${TORCH_VERSION}" 2>/dev/null; then
  log "no local torch ${TORCH_VERSION} wheel: taking it from the package index"
fi
"${PIP[@]}" -c "$CONSTRAINTS" "torch==${TORCH_VERSION}"
log "installing the five packages from $ROOT/packages"
"${PIP[@]}" -c "$CONSTRAINTS" "$ROOT/packages/ffcv-format" "$ROOT/packages/ffcv-ops" \
  "$ROOT/packages/ffcv-loader" "$ROOT/packages/ffcv-convert" "$ROOT/packages/ffcv" "$@"
