#!/usr/bin/env bash
# Set up a virtual environment holding the released FFCV 1.0.2, used only as
# a black-box reader by tests/peers/ffcv102/run.sh. Idempotent: re-running it
# skips whatever is already in place.
#
#   bash tests/peers/ffcv102/setup.sh
#
# Environment:
#   FFCV102_VENV    where the venv goes (default /opt/ffcv102-venv, outside the repo)
#   FFCV102_PYTHON  interpreter used to create it (default python3; 3.11 tested)
#
# Needs root (apt-get) and network access to Debian's and PyPI's mirrors.
# torch comes from a local CPU wheel (PIP_FIND_LINKS, e.g. /opt/wheels); it is
# pinned everywhere so pip never resolves a (multi-GB, CUDA) torch from PyPI.
set -euo pipefail

VENV="${FFCV102_VENV:-/opt/ffcv102-venv}"
PY="${FFCV102_PYTHON:-python3}"
TORCH_VERSION="2.13.0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
START=$(date +%s)

log() { echo "[ffcv102-setup] $*"; }

# ---------------------------------------------------------------- system deps
# FFCV 1.0.2 builds a C extension at install time that links libturbojpeg and
# opencv4, found through pkg-config.
APT_PKGS=(libturbojpeg0-dev libopencv-dev pkg-config)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when they are absent or too stale to install from.
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 \
     || ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    log "apt-get update (package lists missing or stale)"
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
else
  log "apt packages already installed: ${APT_PKGS[*]}"
fi

# ---------------------------------------------------------------- venv
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

# Everything that could drag in another torch / numpy 2 / newer numba is pinned
# through this constraints file.
CONSTRAINTS="$VENV/ffcv102-constraints.txt"
cat > "$CONSTRAINTS" <<EOF
torch==${TORCH_VERSION}
numpy<2
numba==0.58.*
EOF

if "$VPY" -c "import ffcv, ffcv.loader, ffcv.reader, ffcv.writer" >/dev/null 2>&1 \
   && [ "$("$VPY" -c 'import importlib.metadata as m; print(m.version("ffcv"))' 2>/dev/null)" = "1.0.2" ]; then
  log "ffcv 1.0.2 already importable in $VENV; nothing to do"
  log "done in $(( $(date +%s) - START ))s"
  exit 0
fi

# pip/wheel/setuptools are needed in the venv because ffcv is built without
# build isolation (step 3). torch 2.13 itself requires setuptools>=77.
"${PIP[@]}" install -q --upgrade pip wheel setuptools

# 1. torch first, explicitly pinned, from the local CPU wheel only: --no-index
#    restricts pip to the find-links directory (PIP_FIND_LINKS=/opt/wheels), so
#    a missing local wheel is an error instead of a multi-GB CUDA download.
#    The second call only adds torch's small pure-Python deps from the index.
if ! "$VPY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('${TORCH_VERSION}') else 1)" 2>/dev/null; then
  log "installing torch==${TORCH_VERSION} (local CPU wheel via PIP_FIND_LINKS=${PIP_FIND_LINKS:-<pip config>})"
  if ! "${PIP[@]}" install --no-index --no-deps "torch==${TORCH_VERSION}"; then
    echo "[ffcv102-setup] ERROR: no local torch==${TORCH_VERSION} wheel found; set PIP_FIND_LINKS to a" \
         "directory holding a CPU wheel (refusing to download a CUDA torch from PyPI)" >&2
    exit 1
  fi
  "${PIP[@]}" install "torch==${TORCH_VERSION}" -c "$CONSTRAINTS"
fi

# 2. Runtime deps of ffcv 1.0.2, installed explicitly (ffcv itself goes in
#    with --no-deps). ffcv 1.0.2 declares: terminaltables, pytorch_pfn_extras,
#    fastargs, opencv-python, assertpy, tqdm, psutil, numba (no version pins).
#    Deviations, and why:
#      * numba pinned to 0.58.* and numpy to <2: ffcv 1.0.2 predates numpy 2;
#        unpinned, pip would take a numba/numpy pair it was never run with.
#      * opencv-python -> opencv-python-headless (same `cv2` module, no X11/GL
#        libraries needed on a headless box); <4.11 keeps it on numpy 1.x.
#      * pytorch_pfn_extras is skipped: nothing in ffcv.reader / loader /
#        writer / fields / transforms imports it (checked by importing every
#        ffcv submodule), and its own `torch` requirement is one more way for
#        pip to fetch a CUDA torch.
#      * Pillow is added: `import ffcv` loads PIL but 1.0.2 does not declare it.
#    torchvision: ffcv 1.0.2 does not import it in any module (checked by
#    importing every ffcv submodule without it installed), so it is not
#    installed; there is no CPU torchvision wheel here and the PyPI one would
#    pull a CUDA torch. The deprecated `sklearn` PyPI name (which now fails to
#    install on purpose) is not among 1.0.2's declared requirements.
RUNTIME_DEPS=(
  "numpy<2"
  "numba==0.58.*"
  "opencv-python-headless<4.11"
  "Pillow"
  "terminaltables"
  "tqdm"
  "psutil"
  "assertpy"
  "fastargs"
)
log "installing ffcv 1.0.2 runtime deps"
"${PIP[@]}" install -c "$CONSTRAINTS" "${RUNTIME_DEPS[@]}"

# 3. ffcv itself, built from the sdist with --no-deps (see above for why).
#    --no-build-isolation: the build runs in this venv, where numpy (pinned <2)
#    and setuptools are already present, instead of an isolated build env that
#    would fetch whatever numpy/setuptools PyPI has today. The C extension
#    links the apt-installed libturbojpeg and opencv4 via pkg-config.
log "building ffcv==1.0.2 (sdist, --no-deps, --no-build-isolation)"
"${PIP[@]}" install --no-deps --no-build-isolation -c "$CONSTRAINTS" "ffcv==1.0.2"

"$VPY" - <<'EOF'
import importlib.metadata as m
import ffcv, ffcv.reader, ffcv.loader, ffcv.writer, ffcv.fields, ffcv.fields.decoders, torch, numpy, numba
print("[ffcv102-setup] ffcv", m.version("ffcv"), "| torch", torch.__version__,
      "| numpy", numpy.__version__, "| numba", numba.__version__)
EOF
log "done in $(( $(date +%s) - START ))s"
