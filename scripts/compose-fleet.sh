#!/usr/bin/env bash
# Opt-in check of deploy/compose.yaml with podman-compose: builds the runbox image
# (from a binary already built, or from source with --from-source), a PostgreSQL
# image from the Debian 12 base (the CI machine cannot pull docker.io), brings the
# fleet up (PostgreSQL, one API node, two workers), sends submissions through the
# API node that the workers run, and takes everything down again.
#
#   scripts/compose-fleet.sh [--from-source]
#   RUNBOX_BINARY=path/to/runbox (default: $CARGO_TARGET_DIR or target, debug build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
project=runbox-fleet-check-$$
runbox_image=localhost/$project-runbox:latest
postgres_image=localhost/$project-postgres:latest
podman=(podman --runtime runc)
limits=(--ulimit nofile=16384:16384 --ulimit nproc=16384:16384)
base=$(bash "$repo/scripts/container-base.sh")
context=$(mktemp -d)
cleanup() {
  RUNBOX_IMAGE=$runbox_image POSTGRES_IMAGE=$postgres_image \
    podman-compose -p "$project" -f "$repo/deploy/compose.yaml" down -v >/dev/null 2>&1 || true
  # podman-compose 1.0 leaves its network behind.
  "${podman[@]}" network rm -f "${project}_default" >/dev/null 2>&1 || true
  "${podman[@]}" rmi -f "$runbox_image" "$postgres_image" >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT

if [ "${1:-}" = --from-source ]; then
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

# PostgreSQL 15 from Debian, taking the official image's POSTGRES_* variables.
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

export RUNBOX_IMAGE=$runbox_image POSTGRES_IMAGE=$postgres_image
compose=(podman-compose -p "$project" -f "$repo/deploy/compose.yaml")
# podman-compose 1.0 passes no --runtime: point podman at runc for this run.
export CONTAINERS_CONF=$context/containers.conf
printf '[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
"${compose[@]}" up -d >/dev/null 2>&1

url=http://127.0.0.1:2358
for _ in $(seq 120); do curl -fs "$url/readyz" >/dev/null && break; sleep 1; done
if ! curl -fsS "$url/readyz"; then
  "${podman[@]}" ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}} {{.Status}}'
  for service in postgres api worker-1 worker-2; do "${compose[@]}" logs "$service" 2>&1 | tail -15; done
  exit 1
fi
echo
# podman-compose prints its own lines on stdout too: keep the key's.
key=$("${compose[@]}" exec -T api runbox keys create --name fleet-check 2>/dev/null | grep -o 'rbx_[0-9a-f]*' | tail -1)
[ -n "$key" ] || { echo "no key was created" >&2; exit 1; }
for i in 1 2 3 4; do
  out=$(curl -fsS "$url/api/v1/submissions?wait=true" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -d "{\"language\": \"python\", \"source\": \"print($i * 7)\"}")
  case "$out" in
    *"\"stdout\":\"$((i * 7))\\n\""*) echo "submission $i: ran on a worker" ;;
    *) echo "submission $i failed: $out" >&2; "${compose[@]}" logs | tail -40; exit 1 ;;
  esac
done
for worker in worker-1 worker-2; do
  "${compose[@]}" exec -T "$worker" curl -fsS http://127.0.0.1:2359/ready >/dev/null \
    && echo "$worker: ready" || { echo "$worker: not ready" >&2; exit 1; }
done
echo "compose fleet: PostgreSQL, one API node and two workers ran submissions"
