#!/usr/bin/env bash
# Create (or reuse) .venv and install the project with the CPU build of torch.
#   bash scripts/setup-env.sh            # runtime only
#   bash scripts/setup-env.sh testing    # with the test extra (pytest, pytest-qt, napari[qt])
# Needs Python 3.10-3.12 (AFMReader -> pySPM 0.6.3 requires Python < 3.13).
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, as the exact CPU pin: a looser spec would download a CUDA build (several GB).
python -m pip install -q -c constraints.txt torch==2.13.0
if [ -n "$extra" ]; then
  python -m pip install -q -c constraints.txt -e ".[$extra]"
else
  python -m pip install -q -c constraints.txt -e .
fi
