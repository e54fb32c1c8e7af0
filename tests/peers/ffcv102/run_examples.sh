#!/usr/bin/env bash
# Run FFCV 1.0.2's own examples (from its PyPI sdist) against this project's `ffcv` on the
# CPU. Manual check, not part of CI (see README.md).
#
#   bash tests/peers/ffcv102/run_examples.sh
#
# The examples run as FFCV 1.0.2 ships them, except for what names the device, and the size
# of the data (all changes are the sed expressions below, printed as they are applied):
#   - both: 'cuda:0' -> 'cpu', `.cuda()` removed;
#   - CIFAR: float16 inputs -> float32 (half precision needs the GPU's autocast), trained for
#     one epoch (`--training.epochs 1 --training.lr_peak_epoch 0` on the command line) on the
#     generated CIFAR-10 stand-in (standins/torchvision; nothing is downloaded) cut to
#     STANDIN_CIFAR10_SIZE images per split (default 5000);
#   - linear regression: N, D = 1000000, 10000 (40 GB) -> 20000, 100.
# Environment: SUITE_VENV (reuse a venv made by ours_venv.sh), STANDIN_CIFAR10_SIZE.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
export STANDIN_CIFAR10_SIZE="${STANDIN_CIFAR10_SIZE:-5000}"
WORK="$(mktemp -d -t ffcv102-examples.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
log() { echo "[ffcv102-examples] $*" >&2; }

"$PY" "$HERE/fetch_sdist.py" "$WORK/sdist" >/dev/null
EXAMPLES="$WORK/sdist/ffcv-1.0.2/examples"
VENV="${SUITE_VENV:-$WORK/venv}"
bash "$HERE/ours_venv.sh" "$VENV" fastargs terminaltables pyyaml tqdm pillow 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
VPY="$VENV/bin/python"
export PYTHONPATH="$HERE/standins"
cd "$WORK"

edit() {   # edit FILE SED-EXPRESSION...: apply and print each change
  local file="$1"; shift
  for expression in "$@"; do
    log "  $(basename "$file"): sed '$expression'"
    sed -i "$expression" "$file"
  done
}

log "CIFAR-10 example (examples/cifar): write_datasets.py then train_cifar.py, one epoch"
cp -r "$EXAMPLES/cifar" cifar
edit cifar/train_cifar.py "s/cuda:0/cpu/g" "s/\.cuda()//g" "s/Convert(ch.float16)/Convert(ch.float32)/"
( cd cifar && "$VPY" write_datasets.py --data.train_dataset "$WORK/cifar_train.beton" \
      --data.val_dataset "$WORK/cifar_test.beton" \
  && time "$VPY" train_cifar.py --config-file default_config.yaml --data.train_dataset "$WORK/cifar_train.beton" \
      --data.val_dataset "$WORK/cifar_test.beton" --training.epochs 1 --training.lr_peak_epoch 0 \
      --training.num_workers 2 )

log "linear regression example (examples/docs_examples/linear_regression.py)"
cp "$EXAMPLES/docs_examples/linear_regression.py" linear_regression.py
edit linear_regression.py "s/^N, D = 1000000, 10000/N, D = 20000, 100/" "s/cuda:0/cpu/g" "s/\.cuda()//g" \
  "s|/tmp/linreg_data|$WORK/linreg_data|g"
time "$VPY" linear_regression.py
log "both examples ran"
