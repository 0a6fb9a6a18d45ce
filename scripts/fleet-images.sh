#!/usr/bin/env bash
# Builds the two images the opt-in fleet checks run (scripts/compose-fleet.sh,
# scripts/kube-play.sh) without a registry: runbox from deploy/Containerfile
# (from a binary already built, or from source with --from-source) and
# PostgreSQL 15 from the Debian 12 base of scripts/container-base.sh, taking
# the official postgres image's POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB.
#
#   scripts/fleet-images.sh RUNBOX_IMAGE POSTGRES_IMAGE [--from-source]
#   RUNBOX_BINARY=path/to/runbox (default: $CARGO_TARGET_DIR or target, debug build)
#
# The caller removes the two images when it is done with them.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 RUNBOX_IMAGE POSTGRES_IMAGE [--from-source]" >&2; exit 2; }
runbox_image=$1
postgres_image=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
podman=(podman --runtime runc)
# Explicit limits: podman's defaults may exceed what the host lets runc set.
limits=(--ulimit nofile=16384:16384 --ulimit nproc=16384:16384)
base=$(bash "$repo/scripts/container-base.sh")
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

if [ "${3:-}" = --from-source ]; then
  "${podman[@]}" build --quiet --format docker "${limits[@]}" --build-arg "DEBIAN_IMAGE=$base" \
    -f "$repo/deploy/Containerfile" -t "$runbox_image" "$repo" >/dev/null
else
  binary=${RUNBOX_BINARY:-$target/debug/runbox}
  [ -x "$binary" ] || (cd "$repo" && cargo build -q -p runbox)
  mkdir -p "$context/scripts"
  cp -r "$repo/languages" "$context/"
  cp "$repo/scripts/install-languages.sh" "$context/scripts/"
  cp "$binary" "$context/runbox"
  "${podman[@]}" build --quiet --format docker "${limits[@]}" --build-arg "DEBIAN_IMAGE=$base" \
    --target prebuilt -f "$repo/deploy/Containerfile" -t "$runbox_image" "$context" >/dev/null
fi

mkdir -p "$context/postgres"
cat >"$context/postgres/entrypoint.sh" <<'ENTRY'
#!/bin/sh
set -eu
data=/var/lib/postgresql/data
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$data/PG_VERSION" ]; then
  chown postgres "$data"
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pw
  su postgres -c "$bin/initdb -D $data -U $POSTGRES_USER --pwfile=/tmp/pw --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  rm /tmp/pw
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  su postgres -c "$bin/pg_ctl -D $data -o '-c listen_addresses=' -w start" >/dev/null
  su postgres -c "psql -q -U $POSTGRES_USER -d postgres -c 'CREATE DATABASE $POSTGRES_DB'" </dev/null
  su postgres -c "$bin/pg_ctl -D $data -w stop" >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" -c listen_addresses='*'
ENTRY
cat >"$context/postgres/Containerfile" <<EOF
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /entrypoint.sh
RUN chmod 755 /entrypoint.sh && mkdir -p /var/lib/postgresql/data /var/run/postgresql && chown postgres /var/lib/postgresql/data /var/run/postgresql
ENTRYPOINT ["/entrypoint.sh"]
EOF
"${podman[@]}" build --quiet "${limits[@]}" -t "$postgres_image" "$context/postgres" >/dev/null
