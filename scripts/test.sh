#!/usr/bin/env bash
# Set up everything and run the whole test suite (the README's test command).
# As root on Debian/Ubuntu it installs Xvfb and Mesa (napari's canvas needs OpenGL;
# QT_QPA_PLATFORM=offscreen is not enough), then .venv with the test extra, then pytest
# (pytest-xvfb starts a virtual display). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libdbus-1-3 \
      libfontconfig1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
      libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 \
      >/dev/null
  else
    echo "warning: Xvfb not found; the napari (GUI) tests need it (apt-get install xvfb)" >&2
  fi
fi
bash scripts/setup-env.sh testing
. .venv/bin/activate
python -m pytest "$@"
