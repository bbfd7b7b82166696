#!/usr/bin/env bash
# Create a virtual environment with genie-fewshot, its pinned dependencies and learn2learn.
#
# Usage: scripts/setup.sh [VENV_DIR] [EXTRAS]    (default: .venv, "dev,onnx")
# CPU machines get the pinned torch from constraints/ci.txt; on a GPU machine, install the
# torch build you want first and use EXTRAS=gpu,dev (onnxruntime-gpu instead of onnxruntime).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-"$here/.venv"}
extras=${2:-dev,onnx}
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip setuptools wheel
# learn2learn's C extensions compile in the background (own build venv) while pip installs
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
if ! "$py" -c "import learn2learn" 2>/dev/null; then
  L2L_BUILD_ONLY=1 bash "$here/scripts/install_learn2learn.sh" "$py" "$wheels" \
    >"$wheels/build.log" 2>&1 &
  build=$!
fi
"$py" -m pip install -q -c "$here/constraints/ci.txt" torch torchvision
"$py" -m pip install -q -c "$here/constraints/ci.txt" -e "$here[$extras]"
if [ -n "${build:-}" ] && ! wait "$build"; then
  cat "$wheels/build.log" >&2
  echo "setup: building learn2learn failed (log above)" >&2
  exit 1
fi
bash "$here/scripts/install_learn2learn.sh" "$py" "$wheels"
"$py" -c "import genie_plugin, genie_cli; print('genie-fewshot', genie_plugin.__version__, 'ready in $venv')"
