#!/usr/bin/env bash
# Installs the Debian packages of runbox's languages, as the catalog
# (languages/*.toml) lists them.
#
#   scripts/install-languages.sh --core         the languages CI needs (core = true)
#   scripts/install-languages.sh --all          every language of the catalog
#   scripts/install-languages.sh python go ...  these languages (ids or aliases)
#   scripts/install-languages.sh --list         print the packages, install nothing
#
# Idempotent and quiet: packages already installed are skipped, and apt runs only
# when something is missing.
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
for arg in "$@"; do
  case "$arg" in
    --core) for f in "$catalog"/*.toml; do [ "$(toml_value "$f" core)" = true ] && files+=("$f"); done ;;
    --all) files+=("$catalog"/*.toml) ;;
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
for f in "${files[@]}"; do
  read -r -a pkgs <<<"$(toml_value "$f" packages)"
  packages+=("${pkgs[@]}")
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
if $list_only; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
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
