#!/usr/bin/env bash
# Installs what runbox needs, builds it, and runs it: `scripts/run.sh [ARGS...]`
# (default: `doctor`, which checks this host and runs a first box). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --quiet -p runbox
if (($# == 0)); then set -- doctor; fi
exec target/release/runbox "$@"
