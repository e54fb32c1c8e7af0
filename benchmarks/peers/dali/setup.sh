#!/usr/bin/env bash
# Set up NVIDIA DALI (CPU-only use) in its own virtual environment, so none of
# its dependencies touch the project's environment.
#
#   bash benchmarks/peers/dali/setup.sh          # creates ${DALI_VENV:-/opt/dali-venv}
#   DALI_VENV=/tmp/dv bash benchmarks/peers/dali/setup.sh
#
# Idempotent: if the venv already holds the pinned DALI and the CPU-only check
# pipeline runs, it exits 0 at once. Otherwise it (re)installs and checks.
# On failure it exits non-zero; the last line on stderr is
#   "dali setup: FAILED: <reason>"
# Environment knobs: DALI_VENV, PYTHON (interpreter for the venv, >= 3.10),
# DALI_PACKAGE (default nvidia-dali-cuda120), DALI_VERSION (default 2.4.0).
set -uo pipefail

DALI_VENV="${DALI_VENV:-/opt/dali-venv}"
PYTHON="${PYTHON:-python3}"
DALI_PACKAGE="${DALI_PACKAGE:-nvidia-dali-cuda120}"
DALI_VERSION="${DALI_VERSION:-2.4.0}"
VPY="$DALI_VENV/bin/python"
LOG="$DALI_VENV/setup-pip.log"

fail() { echo "dali setup: FAILED: $*" >&2; exit 1; }

# Tiny CPU-only pipeline: read a 32x24 JPEG with fn.readers.file, decode on the
# CPU, random-resized-crop, flip, CHW uint8 -- with device_id=None (no GPU).
check() {
    "$VPY" - "$DALI_VERSION" <<'PY'
import base64, os, sys, tempfile
want = sys.argv[1]
try:
    import numpy as np
    import nvidia.dali as dali
    from nvidia.dali import fn, types, pipeline_def
except Exception as e:  # noqa: BLE001
    print(f"cannot import nvidia.dali: {type(e).__name__}: {e}".replace("\n", " "))
    sys.exit(2)
if dali.__version__ != want:
    print(f"nvidia.dali is {dali.__version__}, want {want}")
    sys.exit(3)
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAYACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwC5cT9eay7ifrzRcT9eay7ifrzXy+XZdtoLhrhrbQLifrzV/RtL87bdXi/uuscZ/j9z7fz+nU0bS/O23V4v7rrHGf4/c+38/p12bifrzWmY5jyXwmEev2pdvJefd9PXbfiXiX2F8nyd+/tOa6d4xffu+my125e4n681f0bS/O23V4v7rrHGf4/c+38/p1KK6c4rzwmEj7F2cnZvra3Q9XjPH1snyemsE+V1ZcrfVKzbs+jdrX3ttZ6mzcT9eay7ifrzRRXk5dQhpofHcNYCjpof/9k="
)
try:
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i in range(4):
            p = os.path.join(d, f"{i}.jpg")
            with open(p, "wb") as f:
                f.write(JPEG)
            files.append(p)

        @pipeline_def(batch_size=4, num_threads=2, device_id=None, seed=0)
        def pipe():
            jpegs, _ = fn.readers.file(files=files, random_shuffle=True, name="r")
            imgs = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                                 random_area=[0.08, 1.0],
                                                 random_aspect_ratio=[3 / 4, 4 / 3])
            imgs = fn.resize(imgs, size=[16, 16])
            return fn.crop_mirror_normalize(imgs, dtype=types.UINT8, output_layout="CHW",
                                            mirror=fn.random.coin_flip(probability=0.5))

        p = pipe()
        p.build()
        for _ in range(2):
            (out,) = p.run()
            a = out.as_array()
        del p
except Exception as e:  # noqa: BLE001
    print(f"CPU-only pipeline (device_id=None) failed: {type(e).__name__}: {e}".replace("\n", " ")[:400])
    sys.exit(4)
if a.shape != (4, 3, 16, 16) or a.dtype != np.uint8:
    print(f"CPU-only pipeline gave {a.shape} {a.dtype}, want (4, 3, 16, 16) uint8")
    sys.exit(5)
print(f"ok: nvidia.dali {dali.__version__}, numpy {np.__version__}, CPU-only pipeline -> {a.shape} {a.dtype}")
PY
}

t0=$(date +%s)

if [ -x "$VPY" ] && msg=$(check 2>/dev/null); then
    echo "dali setup: already set up in $DALI_VENV ($msg)"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || fail "no Python interpreter '$PYTHON' (set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 16) else 1)' \
    || fail "$DALI_PACKAGE==$DALI_VERSION needs Python >=3.10,<3.16; '$PYTHON' is $("$PYTHON" -V 2>&1)"
[ "$(uname -m)" = x86_64 ] || [ "$(uname -m)" = aarch64 ] || fail "DALI wheels exist only for x86_64/aarch64 Linux, not $(uname -m)"

if [ ! -x "$VPY" ]; then
    echo "dali setup: creating venv $DALI_VENV" >&2
    "$PYTHON" -m venv "$DALI_VENV" || fail "cannot create venv at $DALI_VENV"
fi

echo "dali setup: installing $DALI_PACKAGE==$DALI_VERSION (+ numpy) into $DALI_VENV (~520 MB download, ~1.1 GB installed; log: $LOG)" >&2
# DALI's wheel pulls numpy, nvimgcodec (its CPU decoder is libjpeg-turbo) and a
# few small CUDA libraries (nvjpeg, nvcomp...) that stay unused without a GPU.
# No torch: the contender only needs numpy arrays.
if ! "$VPY" -m pip install --disable-pip-version-check --progress-bar off \
        "$DALI_PACKAGE==$DALI_VERSION" numpy >"$LOG" 2>&1; then
    reason=$(grep -E '^(ERROR|error):' "$LOG" | grep -v 'Ignored the following versions' | tail -1)
    fail "pip could not install $DALI_PACKAGE==$DALI_VERSION: ${reason:-see $LOG}"
fi

msg=$(check 2>>"$LOG") || fail "${msg:-check pipeline crashed, see $LOG}"
echo "dali setup: $msg; done in $(( $(date +%s) - t0 )) s"
