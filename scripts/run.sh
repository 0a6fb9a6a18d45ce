#!/usr/bin/env bash
# Runs runbox from this checkout: `scripts/run.sh` serves the HTTP API on the
# embedded default (SQLite in /var/lib/runbox, local workers, 127.0.0.1:2358);
# `scripts/run.sh ARGS...` runs any other runbox command instead
# (`scripts/run.sh doctor`, `scripts/run.sh run hello.py`). Run as root.
#
# Works from any directory, and keeps it: relative paths in ARGS are the
# caller's. The first call installs what runbox needs and the core languages and
# remembers it (a stamp in the target directory, redone when the install scripts
# or the catalog change); runbox is built (release) only when a source is newer
# than the binary.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
binary="$target/release/runbox"

# What the installs depend on: when none of it changed, they are not run again.
install_inputs() {
  cat "$repo/scripts/install-deps.sh" "$repo/scripts/install-languages.sh" "$repo"/languages/*.toml | sha256sum
}
stamp="$target/run-sh-installed"
want=$(install_inputs)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  bash "$repo/scripts/install-deps.sh"
  bash "$repo/scripts/install-languages.sh" --core
  mkdir -p "$target"
  echo "$want" >"$stamp"
fi

# Cargo decides what to rebuild; it is asked only when a source is newer than the binary.
if [ ! -x "$binary" ] || [ -n "$(find "$repo/Cargo.toml" "$repo/Cargo.lock" "$repo/crates" "$repo/languages" \
  -newer "$binary" -print -quit)" ]; then
  echo "scripts/run.sh: building runbox (release) ..." >&2
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p runbox
  # The binary may be fresh already (only tests changed): mark it checked.
  touch "$binary"
fi
if (($# == 0)); then set -- serve; fi
exec "$binary" "$@"
