#!/usr/bin/env bash
# Write a CycloneDX SBOM (JSON) of an installed environment: every package with its version, licence and hashes.
# Usage: tools/sbom.sh [OUTPUT [PYTHON]]; defaults: sbom.json, and .venv/bin/python (this checkout's environment).
# The images make theirs the same way at build time (deploy/images/Dockerfile, /usr/share/doc/anpr/sbom.json).
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-sbom.json}
python=${2:-.venv/bin/python}
if [ ! -x .venv/bin/cyclonedx-py ]; then
  echo "tools/sbom.sh: cyclonedx-py is missing: run tools/setup.sh (it comes with the dev extra)" >&2
  exit 2
fi
.venv/bin/cyclonedx-py environment "$python" --output-format JSON --output-file "$output"
echo "wrote $output"
