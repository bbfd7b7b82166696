#!/usr/bin/env bash
# Create a virtual environment with genie-fewshot, its pinned dependencies and learn2learn.
#
# Usage: scripts/setup.sh [VENV_DIR] [EXTRAS]    (default: .venv, "dev,onnx")
# CPU machines get the pinned torch from constraints/ci.txt; on a GPU machine, install the
# torch build you want first and use EXTRAS=gpu,dev (onnxruntime-gpu instead of onnxruntime).
#
# Installs go through uv (pip's job with the same constraints and the machine's pip indexes,
# downloading and unpacking in parallel) when it can be had, else through pip; one resolve for
# torch, the project and learn2learn's runtime needs. learn2learn's C extensions compile in the
# background meanwhile (scripts/install_learn2learn.sh, its own build venv).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-"$here/.venv"}
extras=${2:-dev,onnx}
cons=(-c "$here/constraints/ci.txt")
python3 -m venv "$venv"
py="$venv/bin/python"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
if ! "$py" -c "import learn2learn" 2>/dev/null; then
  L2L_BUILD_ONLY=1 bash "$here/scripts/install_learn2learn.sh" "$py" "$wheels" \
    >"$wheels/build.log" 2>&1 &
  build=$!
fi
# the report's browser test (tests/bench/test_report.py) drives Debian's headless Chromium
# through selenium: installed beside the Python packages (about 2 minutes on a fresh machine)
if [[ ",$extras," == *",dev,"* ]] && ! { command -v chromium && command -v chromedriver; } \
    >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  ( t0=$(date +%s)
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium chromium-driver >/dev/null
    echo "setup: chromium + chromium-driver installed in $(( $(date +%s) - t0 )) s" ) \
    >"$wheels/apt.log" 2>&1 &
  apt=$!
fi
if [ -z "${GENIE_NO_UV:-}" ] && "$py" -m pip install -q "${cons[@]}" uv >/dev/null 2>&1; then
  # the machine's pip configuration (indexes, find-links, constraints) as uv options
  mapfile -t pipconf < <("$py" - <<'EOF'
import re, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
         "find-links": "--find-links", "constraint": "--constraint"}
seen = set()
for line in out.splitlines():
    m = re.match(r"^[^.]*\.([a-z-]+)='(.*)'$", line)
    if m and m.group(1) in flags:
        for value in m.group(2).split():
            if (m.group(1), value) not in seen:
                seen.add((m.group(1), value))
                print(flags[m.group(1)]); print(value)
EOF
)
  install() {
    "$venv/bin/uv" pip install -q --python "$py" --index-strategy unsafe-best-match \
      "${pipconf[@]}" "$@"
  }
else
  "$py" -m pip install -q --upgrade pip setuptools wheel
  install() { "$py" -m pip install -q "$@"; }
fi
# learn2learn's runtime needs only (not qpth/gsutil, which would replace numpy): see
# scripts/install_learn2learn.sh
install "${cons[@]}" torch torchvision -e "$here[$extras]" numpy scipy requests tqdm gym pillow
if [ -n "${build:-}" ]; then
  if ! wait "$build"; then
    cat "$wheels/build.log" >&2
    echo "setup: building learn2learn failed (log above)" >&2
    exit 1
  fi
  install --no-deps "$wheels"/learn2learn-0.2.0-*.whl
fi
if [ -n "${apt:-}" ]; then
  if wait "$apt"; then tail -1 "$wheels/apt.log"; else
    cat "$wheels/apt.log" >&2
    echo "setup: installing chromium failed (log above); the browser test will fail" >&2
  fi
fi
# Bytecode for everything installed and for the project: uv installs without it and a
# PYTHONDONTWRITEBYTECODE environment (CI's) never writes it, so every process would compile
# the ~6,000 modules a run imports from source again (10 s per process, measured:
# benchmarks/results/main_job_2026-12-02.json). 26 s once, on 2 cores.
t0=$(date +%s)
"$py" -m compileall -q -j 0 "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  "$here/genie_plugin" "$here/cli" >/dev/null 2>&1 || true  # a vendored py2 file fails: harmless
echo "setup: bytecode compiled in $(( $(date +%s) - t0 )) s"
# learn2learn imports gym, whose import prints a deprecation banner: check quietly
"$py" -c "import learn2learn, genie_plugin, genie_cli" 2>/dev/null \
  || "$py" -c "import learn2learn, genie_plugin, genie_cli"
"$py" -c "import genie_plugin; print('genie-fewshot', genie_plugin.__version__, 'ready in $venv')"
