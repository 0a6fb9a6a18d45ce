#!/usr/bin/env bash
# Installs the real client libraries the compatibility tests drive: the official
# Judge0 Python SDK (`judge0` on PyPI) into a venv, and `piston-client` and `ws`
# (for Piston's WebSocket) from npm, all under target/test-clients/ (or
# $RUNBOX_TEST_CLIENTS); and for the playground's browser test, Debian's
# `chromium` and `playwright-core` from npm (which drives it; no browser download).
# Idempotent; the tests fail loudly when a client is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${RUNBOX_TEST_CLIENTS:-$PWD/target/test-clients}
mkdir -p "$dir"

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -q python3 python3-venv >/dev/null
fi
if ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -q nodejs npm >/dev/null
fi

if [ ! -x "$dir/venv/bin/python" ] || ! "$dir/venv/bin/python" -c 'import judge0' 2>/dev/null; then
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q --disable-pip-version-check 'judge0==0.0.8'
fi

if ! command -v chromium >/dev/null; then
  apt-get update -qq && apt-get install -y -q --no-install-recommends chromium >/dev/null
fi

if [ ! -f "$dir/node/node_modules/piston-client/package.json" ] || [ ! -f "$dir/node/node_modules/ws/package.json" ] \
  || [ ! -f "$dir/node/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$dir/node"
  (cd "$dir/node" && { [ -f package.json ] || echo '{"private": true}' > package.json; } \
    && npm install --no-audit --no-fund --silent 'piston-client@1.0.2' 'ws@8' 'playwright-core@1.65.2')
fi
echo "test clients in $dir: $("$dir/venv/bin/python" -c 'import importlib.metadata as m; print("judge0", m.version("judge0"))'), piston-client $(node -p "require('$dir/node/node_modules/piston-client/package.json').version")"
