#!/usr/bin/env bash
# Rebuilds the playground's bundled assets (crates/server/assets/playground/)
# from web/ with the npm packages pinned in web/package-lock.json. The output is
# committed: cargo builds need neither npm nor the network. Run it after
# changing web/ and commit what it writes.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -q nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --silent
node build.mjs
