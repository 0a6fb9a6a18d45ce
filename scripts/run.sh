#!/usr/bin/env bash
# Installs what runbox needs (and the core languages), builds it, and runs it:
# `scripts/run.sh` serves the HTTP API on the embedded default (SQLite in
# /var/lib/runbox, local workers, 127.0.0.1:2358); `scripts/run.sh ARGS...` runs
# any other runbox command instead (`scripts/run.sh doctor`, `scripts/run.sh run hello.py`).
# Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-languages.sh --core
cargo build --release --quiet -p runbox
if (($# == 0)); then set -- serve; fi
exec target/release/runbox "$@"
