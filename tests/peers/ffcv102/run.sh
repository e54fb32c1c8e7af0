#!/usr/bin/env bash
# Check that .beton files written by our writer (ffcv_format) load in the
# released FFCV 1.0.2. Manual check, not part of CI (see README.md).
#
#   bash tests/peers/ffcv102/run.sh [OUTDIR] [-- extra args for read_with_ffcv102.py]
#
# Environment:
#   FFCV102_VENV   FFCV 1.0.2 venv (default /opt/ffcv102-venv); created by setup.sh if missing
#   PYTHON         our interpreter, which must have numpy etc. for ffcv_format (default python3)
# OUTDIR defaults to a temporary directory, removed afterwards unless the check fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="${FFCV102_VENV:-/opt/ffcv102-venv}"
OUR_PY="${PYTHON:-python3}"

OUTDIR=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then OUTDIR="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
TMP=""
if [ -z "$OUTDIR" ]; then TMP="$(mktemp -d -t ffcv102-peer.XXXXXX)"; OUTDIR="$TMP"; fi

if ! "$VENV/bin/python" -c "import ffcv.loader" >/dev/null 2>&1; then
  echo "== FFCV 1.0.2 venv missing at $VENV: running setup.sh"
  FFCV102_VENV="$VENV" bash "$HERE/setup.sh"
fi

echo "== writing with ffcv_format ($("$OUR_PY" --version 2>&1)) into $OUTDIR"
t0=$(date +%s)
( cd "$ROOT" && PYTHONPATH="$ROOT/packages/ffcv-format/src${PYTHONPATH:+:$PYTHONPATH}" \
    "$OUR_PY" "$HERE/write_with_ffcv.py" "$OUTDIR" )
t1=$(date +%s)
echo "== reading with FFCV 1.0.2 ($VENV)"
rc=0
( cd "$OUTDIR" && "$VENV/bin/python" "$HERE/read_with_ffcv102.py" "$OUTDIR" "$@" ) || rc=$?
t2=$(date +%s)
echo "== write $((t1 - t0))s, read $((t2 - t1))s; exit $rc"
if [ -n "$TMP" ]; then
  if [ $rc -eq 0 ]; then rm -rf "$TMP"; else echo "files kept in $TMP"; fi
fi
exit $rc
