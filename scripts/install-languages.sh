#!/usr/bin/env bash
# Installs the Debian packages of runbox's languages, as the catalog
# (languages/*.toml) lists them.
#
#   scripts/install-languages.sh --core         the languages CI needs (core = true)
#   scripts/install-languages.sh --all          every language of the catalog, in
#                                               every version: the host's packages,
#                                               then each runtime (Debian suites)
#   scripts/install-languages.sh python go ...  these languages (ids or aliases)
#   scripts/install-languages.sh --runtime debian-trixie
#                                               one runtime, with the packages of
#                                               every catalog entry that runs in it
#   scripts/install-languages.sh --list         print the packages, install nothing
#
# Idempotent and quiet: packages already installed are skipped, and apt runs only
# when something is missing. A runtime (`runtime = "debian-SUITE"` in an entry) is
# built with `runbox runtimes add debian:SUITE` (the runbox binary is built when
# none is found) and built again when its package list changed.
set -euo pipefail
catalog="$(cd "$(dirname "$0")/.." && pwd)/languages"

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 2; }

# The value of a one-line TOML key `key = "x"` or `key = ["a", "b"]`, as words.
toml_value() { # file key
  sed -n "s/^$2[[:space:]]*=[[:space:]]*//p" "$1" | head -n1 | tr -d '[]",' | xargs
}

# The catalog file of a language id or alias.
file_of() { # name
  local name=$1 file
  for file in "$catalog"/*.toml; do
    if [ "$(toml_value "$file" id)" = "$name" ] || [[ " $(toml_value "$file" aliases) " == *" $name "* ]]; then
      echo "$file"; return 0
    fi
  done
  return 1
}

[ $# -gt 0 ] || usage
list_only=false
files=()
runtimes=()
want_runtime=""
for arg in "$@"; do
  if [ -n "$want_runtime" ]; then runtimes+=("$arg"); want_runtime=""; continue; fi
  case "$arg" in
    --core) for f in "$catalog"/*.toml; do [ "$(toml_value "$f" core)" = true ] && [ -z "$(toml_value "$f" runtime)" ] && files+=("$f"); done ;;
    --all)
      for f in "$catalog"/*.toml; do
        r=$(toml_value "$f" runtime)
        if [ -z "$r" ]; then files+=("$f"); else runtimes+=("$r"); fi
      done ;;
    --runtime) want_runtime=yes ;;
    --list) list_only=true ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $arg" >&2; usage ;;
    *) if ! f=$(file_of "$arg"); then
         echo "unknown language '$arg': the ids are: $(for f in "$catalog"/*.toml; do toml_value "$f" id; done | xargs)" >&2
         exit 2
       fi
       files+=("$f") ;;
  esac
done

packages=()
for f in "${files[@]+"${files[@]}"}"; do
  read -r -a pkgs <<<"$(toml_value "$f" packages)"
  packages+=("${pkgs[@]}")
done
mapfile -t packages < <(printf '%s\n' "${packages[@]+"${packages[@]}"}" | sed '/^$/d' | sort -u)
mapfile -t runtimes < <(printf '%s\n' "${runtimes[@]+"${runtimes[@]}"}" | sed '/^$/d' | sort -u)

# The packages of every entry that runs in runtime $1, comma-separated.
# In byte order (LC_ALL=C), as Python's sorted() orders the runtime's own list below:
# in another locale `g++` and `gcc` could swap and a runtime be rebuilt for nothing.
runtime_packages() { # runtime
  for f in "$catalog"/*.toml; do
    if [ "$(toml_value "$f" runtime)" = "$1" ]; then toml_value "$f" packages | tr ' ' '\n'; fi
  done | LC_ALL=C sort -u | paste -sd, -
}

if $list_only; then
  ((${#packages[@]})) && printf '%s\n' "${packages[@]}"
  for r in "${runtimes[@]+"${runtimes[@]}"}"; do echo "$r: $(runtime_packages "$r")"; done
  exit 0
fi

# Builds (or rebuilds, when its packages changed) every runtime asked for.
install_runtimes() {
  ((${#runtimes[@]})) || return 0
  local root runbox
  root="$(cd "$(dirname "$0")/.." && pwd)"
  runbox=$(command -v runbox || true)
  for candidate in "$root/target/release/runbox" "$root/target/debug/runbox"; do
    [ -z "$runbox" ] && [ -x "$candidate" ] && runbox=$candidate
  done
  if [ -z "$runbox" ]; then
    echo "building runbox to build the runtimes" >&2
    (cd "$root" && cargo build --release -q -p runbox)
    runbox="$root/target/release/runbox"
  fi
  bash "$root/scripts/install-deps.sh"
  for r in "${runtimes[@]}"; do
    # debian-SUITE, or debian-SUITE-PART for a part of a suite kept apart (Swift's
    # toolchain: debian-trixie-swift).
    local suite=${r#debian-} want have
    suite=${suite%%-*}
    if [ "${r#debian-}" = "$r" ] || [ -z "$suite" ]; then
      echo "runtime $r: only Debian runtimes (debian-SUITE) are built by this script; add others with runbox runtimes add" >&2
      continue
    fi
    want=$(runtime_packages "$r")
    # A runtime stored before files kept their own modification times
    # (store_format 2, STORE_FORMAT in crates/engine/src/runtime/store.rs) is
    # built again: a shared file could carry another suite's time and make Guile
    # or Racket recompile their libraries.
    have=$("$runbox" runtimes list --json 2>/dev/null | python3 -c "
import json, sys
for m in json.load(sys.stdin):
    if m['name'] == '$r':
        packages = ','.join(sorted(m['source'].get('packages', [])))
        print(packages if m.get('store_format', 0) >= 2 else 'stale:' + packages)
" || true)
    if [ "$have" = "$want" ]; then
      continue
    fi
    if [ -n "$have" ]; then
      "$runbox" runtimes remove "$r"
    fi
    echo "building runtime $r (debian:$suite) with $want" >&2
    "$runbox" runtimes add "debian:$suite" --name "$r" --packages "$want"
  done
}

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  install_runtimes
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "installing packages needs root: sudo $0 $*" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
install_runtimes
