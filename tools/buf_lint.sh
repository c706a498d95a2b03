#!/usr/bin/env bash
# Lint and format-check the gRPC contracts in protos/ with the buf CLI pinned in tools/buf/package-lock.json.
# Installs it from the npm registry on first use (needs Node.js and npm). Exits non-zero on any finding.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
buf_dir="${repo_root}/tools/buf"
buf="${buf_dir}/node_modules/.bin/buf"
wanted_version="$(sed -n 's/.*"@bufbuild\/buf": *"\([^"]*\)".*/\1/p' "${buf_dir}/package.json" | head -n 1)"

if [[ ! -x "${buf}" ]] || [[ "$("${buf}" --version 2>/dev/null)" != "${wanted_version}" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "buf_lint: npm is required to install the buf CLI (@bufbuild/buf ${wanted_version})" >&2
    exit 2
  fi
  npm ci --prefix "${buf_dir}" --no-audit --no-fund --loglevel=error >/dev/null
fi

cd "${repo_root}"
"${buf}" lint protos
"${buf}" format --diff --exit-code protos
echo "buf ${wanted_version}: protos/ lint and format clean"
