#!/usr/bin/env bash
# Opt-in check of deploy/compose.yaml with podman-compose: builds the runbox image
# (from a binary already built, or from source with --from-source) and a PostgreSQL
# image from the Debian 12 base (scripts/fleet-images.sh: the CI machine cannot
# pull docker.io), brings the fleet up (PostgreSQL, one API node, two workers),
# sends submissions through the API node that the workers run, and takes
# everything down again.
#
#   scripts/compose-fleet.sh [--from-source]
#   RUNBOX_BINARY=path/to/runbox (default: $CARGO_TARGET_DIR or target, debug build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
project=runbox-fleet-check-$$
runbox_image=localhost/$project-runbox:latest
postgres_image=localhost/$project-postgres:latest
podman=(podman --runtime runc)
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

bash "$repo/scripts/fleet-images.sh" "$runbox_image" "$postgres_image" "$@"

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
