#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with everything the suite and its checks need.
# Idempotent and quiet; used by tools/demo and tools/test, so a fresh machine needs only Python 3.11+.
# Versions come from the lock requirements/dev.txt (hash-checked); VENV=<dir> builds another environment.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
stamp=$venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/dev.txt -nt "$stamp" ]; then
  "${pip[@]}" install --upgrade pip
  # onnxruntime-gpu and onnxruntime install the same module: an environment made before the extras split holds the
  # GPU build, which the CPU build of the lock must replace, not overlay.
  if "$venv/bin/python" -m pip show --quiet onnxruntime-gpu >/dev/null 2>&1; then
    "${pip[@]}" uninstall --yes onnxruntime-gpu onnxruntime
  fi
  # Exactly the locked versions first (every platform's pins are in the file; markers pick this machine's) ...
  "${pip[@]}" install --require-hashes --no-deps -r requirements/dev.txt
  # ... then the project itself; a requirement added to pyproject.toml but not yet locked still installs here,
  # and the check below says the lock needs refreshing.
  "${pip[@]}" install --no-build-isolation -e '.[dev]'
  if ! "$venv/bin/python" tools/lock.py --check; then
    echo "tools/setup.sh: installed, but requirements/ does not match pyproject.toml (see above)" >&2
  fi
  touch "$stamp"
fi
# The CRD models that tests/deploy/test_render.py validates custom resources with (skipped without node, outside CI).
# npm ci writes node_modules/.package-lock.json, so an absent or older copy means a missing or stale install.
crd_models=tests/deploy/crd_models
if command -v npm >/dev/null && [ "$crd_models/package-lock.json" -nt "$crd_models/node_modules/.package-lock.json" ]; then
  npm ci --silent --no-audit --no-fund --prefix "$crd_models"
fi
# Prometheus and promtool (Debian's package): the alert-rule unit tests and the live monitoring test run the real
# ones (tests/observability; skipped without them, failed under CI=true).
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q prometheus >/dev/null 2>&1 ||
    { "${sudo[@]}" apt-get update -q >/dev/null 2>&1 && "${sudo[@]}" apt-get install -y -q prometheus >/dev/null 2>&1; } ||
    echo "tools/setup.sh: could not install Debian's prometheus package; tests/observability needs it" >&2
fi
