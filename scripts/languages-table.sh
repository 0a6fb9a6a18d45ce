#!/usr/bin/env bash
# Writes the table of installed languages, versions and runtimes into
# docs/languages.md (between its `languages:begin` and `languages:end` markers),
# from `runbox languages --markdown`: run it after `scripts/install-languages.sh --all`.
#
#   scripts/languages-table.sh            uses `runbox` on PATH, else target/release/runbox
#   RUNBOX=/path/to/runbox scripts/languages-table.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runbox=${RUNBOX:-$(command -v runbox || echo "$root/target/release/runbox")}
doc="$root/docs/languages.md"
table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$runbox" languages --markdown > "$table"
awk -v table="$table" '
  /<!-- languages:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- languages:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.new"
mv "$doc.new" "$doc"
echo "updated $doc" >&2
