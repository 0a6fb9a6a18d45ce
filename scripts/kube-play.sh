#!/usr/bin/env bash
# Opt-in check of deploy/k8s with `podman kube play` (podman 4.3, Debian 12's):
# builds the runbox and PostgreSQL images (scripts/fleet-images.sh), plays a
# PostgreSQL pod, creates the Secret `runbox-database` the manifests read, plays
# the manifests kustomization.yaml lists, checks /healthz and /readyz of every
# API pod and /ready of every worker pod, runs the liveness probes as podman
# turned them into health checks, sends a Python and a C submission to the API
# pods that worker pods must run (the API nodes run `serve --workers 0`), and
# removes every pod, volume, secret, network and image it made.
#
#   scripts/kube-play.sh [--from-source]
#   RUNBOX_BINARY=path/to/runbox (default: $CARGO_TARGET_DIR or target, debug build)
#
# What podman 4.3's kube play does with the manifests:
# - plays Deployments (one pod per replica: NAME-pod-0, NAME-pod-1, ...), with
#   securityContext.privileged, env from a Secret, emptyDir volumes (anonymous
#   volumes), memory limits and requests;
# - turns livenessProbe into a health check (`curl -f http://localhost:PORT/PATH`,
#   a named port read as 0: the manifests give numbers); ignores startupProbe
#   and readinessProbe, which this script checks over HTTP instead;
# - skips the kinds it does not know (Service, PodDisruptionBudget) with an
#   info-level log line only: this script feeds it only Pod, Deployment,
#   PersistentVolumeClaim and ConfigMap documents, and names the others
#   (crates/cli/tests/deploy.rs checks them);
# - plays a `kind: Secret` but then cannot read it for secretKeyRef ("secret ...
#   is not valid JSON": 4.3 stores the whole object, reads a JSON map), so the
#   Secret is made with `podman secret create` in the JSON form it reads;
# - publishes every containerPort on all of the host's interfaces (hostPort =
#   containerPort), which Kubernetes never does: the second replica's port
#   clashes with the first's, and the API would be open on the host. The played
#   copy has no `ports` lists; the pods are reached at their own addresses, as
#   in a cluster;
# - has no --ulimit: the limits runc needs here come from a containers.conf.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
k8s=$repo/deploy/k8s
run=runbox-kube-check-$$
runbox_image=localhost/$run-runbox:latest
postgres_image=localhost/$run-postgres:latest
network=$run
postgres_pod=$run-postgres
# The name and key deploy/k8s reads the database URL from.
secret=runbox-database
work=$(mktemp -d)
podman=(podman --runtime runc)
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
EOF

started=$SECONDS
step() { printf '[%4ss] %s\n' $((SECONDS - started)) "$*"; }
fail() {
  echo "FAILED: $*" >&2
  "${podman[@]}" pod ps --filter "network=$network" --format '{{.Name}} {{.Status}}' >&2 || true
  for ctr in $(containers); do
    echo "--- $ctr" >&2
    "${podman[@]}" logs --tail 15 "$ctr" >&2 || true
  done
  exit 1
}

# Pods on this run's network (only this run uses it) and their containers.
pods() { "${podman[@]}" pod ps -q --no-trunc --filter "network=$network" 2>/dev/null || true; }
containers() {
  local pod
  for pod in $(pods); do
    "${podman[@]}" ps -a --filter "pod=$pod" --format '{{.Names}}'
  done
}

pause_images_before=$("${podman[@]}" images -q --filter reference=localhost/podman-pause)
cleanup() {
  local volumes=() ctr pod
  for ctr in $(containers); do
    volumes+=($("${podman[@]}" inspect --format \
      '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' "$ctr" 2>/dev/null || true))
  done
  [ -f "$work/played" ] && "${podman[@]}" kube down "$work/runbox.yaml" >/dev/null 2>&1
  [ -f "$work/postgres.yaml" ] && "${podman[@]}" kube down "$work/postgres.yaml" >/dev/null 2>&1
  for pod in $(pods); do "${podman[@]}" pod rm -f "$pod" >/dev/null 2>&1 || true; done
  for volume in "${volumes[@]}"; do
    "${podman[@]}" volume exists "$volume" && "${podman[@]}" volume rm -f "$volume" >/dev/null
  done
  [ -f "$work/secret-made" ] && "${podman[@]}" secret rm "$secret" >/dev/null
  "${podman[@]}" network exists "$network" && "${podman[@]}" network rm -f "$network" >/dev/null
  "${podman[@]}" rmi -f "$runbox_image" "$postgres_image" >/dev/null 2>&1 || true
  # kube play builds podman's pause image on its first pod: not kept if this run made it.
  if [ -z "$pause_images_before" ]; then
    for image in $("${podman[@]}" images -q --filter reference=localhost/podman-pause); do
      "${podman[@]}" rmi "$image" >/dev/null 2>&1 || true
    done
  fi
  local left=()
  for volume in "${volumes[@]}"; do "${podman[@]}" volume exists "$volume" && left+=("volume $volume"); done
  "${podman[@]}" network exists "$network" && left+=("network $network")
  [ -n "$(pods)" ] && left+=("pods")
  if ((${#left[@]})); then echo "left behind: ${left[*]}" >&2; else
    step "nothing left behind (pods, ${#volumes[@]} volumes, secret, network, images removed)"; fi
  rm -rf "$work"
}
trap cleanup EXIT

command -v catatonit >/dev/null || { echo "kube play's pods need catatonit: apt-get install catatonit" >&2; exit 1; }
if "${podman[@]}" secret inspect "$secret" >/dev/null 2>&1; then
  echo "a podman secret $secret exists already: not touching it" >&2
  exit 1
fi

# The documents kustomization.yaml lists that podman 4.3 plays, with the image
# this run built; the others are named.
resources=$(awk '/^resources:/ { r = 1; next } r && /^ *- / { print $2; next } /^[^ #]/ { r = 0 }' \
  "$k8s/kustomization.yaml")
[ -n "$resources" ] || { echo "no resources in $k8s/kustomization.yaml" >&2; exit 1; }
for file in $resources; do
  awk -v file="$file" -v image="$runbox_image" -v skipped="$work/skipped" '
    function flush() {
      if (kind ~ /^(Pod|Deployment|PersistentVolumeClaim|ConfigMap)$/) printf "---\n%s", doc
      else if (kind != "") printf "%s/%s (%s)\n", kind, name, file >>skipped
      doc = ""; kind = ""; name = ""; meta = 0
    }
    /^---[ \t]*$/ { flush(); next }
    # A container port list: not played (see above).
    skip && match($0, /^ */) && RLENGTH > skip { next }
    { skip = 0 }
    /^ +ports:[ \t]*$/ { match($0, /^ */); skip = RLENGTH; next }
    /^kind:/ { kind = $2 }
    /^metadata:/ { meta = 1 }
    meta && name == "" && /^  name:/ { name = $2 }
    { sub(/image: localhost\/runbox:latest$/, "image: " image); doc = doc $0 "\n" }
    END { flush() }' "$k8s/$file"
done >"$work/runbox.yaml"
deployments=$(awk '/^kind: Deployment/' "$work/runbox.yaml" | wc -l)
grep -q "image: $runbox_image" "$work/runbox.yaml" || { echo "the manifests do not run localhost/runbox:latest" >&2; exit 1; }
step "playing $deployments Deployments from: $(echo $resources)"
# The pods' names come from the manifests (NAME-pod-N): another's are not touched.
for name in $(awk '/^kind: Deployment/ { d = 1 } d && /^  name:/ { print $2; d = 0 }' "$work/runbox.yaml"); do
  if [ -n "$("${podman[@]}" pod ps -q --filter "name=^$name-pod-")" ]; then
    echo "pods $name-pod-* exist already: not touching them" >&2
    exit 1
  fi
done
step "not played (podman 4.3 skips these kinds): $(paste -sd, "$work/skipped" | sed 's/,/, /g')"

step "building $runbox_image and $postgres_image"
bash "$repo/scripts/fleet-images.sh" "$runbox_image" "$postgres_image" "$@"

"${podman[@]}" network create "$network" >/dev/null
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$work/postgres.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $postgres_pod}
spec:
  containers:
    - name: postgres
      image: $postgres_image
      env:
        - {name: POSTGRES_USER, value: runbox}
        - {name: POSTGRES_PASSWORD, value: "$password"}
        - {name: POSTGRES_DB, value: runbox}
      volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
  volumes:
    - {name: data, emptyDir: {}}
EOF
step "playing the PostgreSQL pod"
"${podman[@]}" kube play --network "$network" "$work/postgres.yaml" >/dev/null
postgres=$postgres_pod-postgres
psql=("${podman[@]}" exec "$postgres" psql -U runbox -d runbox -tAc)
for _ in $(seq 60); do "${psql[@]}" 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
"${psql[@]}" 'SELECT 1' >/dev/null || fail "PostgreSQL did not start"

# The pod's address on the run's network.
ip_of() {
  local infra
  infra=$("${podman[@]}" pod inspect --format '{{.InfraContainerID}}' "$1")
  "${podman[@]}" inspect --format "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "$infra"
}
database_url="postgres://runbox:$password@$(ip_of "$postgres_pod"):5432/runbox"
# A Kubernetes Secret's data in the form podman 4.3 reads for secretKeyRef.
printf '{"url": "%s"}' "$(printf %s "$database_url" | base64 -w0)" \
  | "${podman[@]}" secret create "$secret" - >/dev/null
touch "$work/secret-made"
step "PostgreSQL answers; secret $secret made"

step "podman kube play"
touch "$work/played"
"${podman[@]}" kube play --network "$network" "$work/runbox.yaml" >"$work/play.log" 2>&1 \
  || { cat "$work/play.log" >&2; fail "podman kube play refused the manifests"; }
api_pods=$("${podman[@]}" pod ps --filter "network=$network" --filter name=runbox-api --format '{{.Name}}' | sort)
worker_pods=$("${podman[@]}" pod ps --filter "network=$network" --filter name=runbox-worker --format '{{.Name}}' | sort)
step "pods: $(echo $api_pods $worker_pods)"
replicas() { awk '/^kind: Deployment/ { d = 1 } d && /^  replicas:/ { print $2; exit }' "$k8s/$1"; }
[ "$(echo "$api_pods" | wc -w)" = "$(replicas api.yaml)" ] || fail "API pods: $api_pods"
[ "$(echo "$worker_pods" | wc -w)" = "$(replicas worker.yaml)" ] || fail "worker pods: $worker_pods"

for pod in $api_pods; do
  url=http://$(ip_of "$pod"):2358
  for _ in $(seq 180); do curl -fs --max-time 5 "$url/readyz" >/dev/null && break; sleep 1; done
  ready=$(curl -fsS --max-time 10 "$url/readyz") || fail "$pod: /readyz"
  healthy=$(curl -fsS --max-time 10 "$url/healthz") || fail "$pod: /healthz"
  step "$pod: /healthz $healthy /readyz $ready"
done
for pod in $worker_pods; do
  url=http://$(ip_of "$pod"):2359
  for _ in $(seq 180); do curl -fs --max-time 5 "$url/ready" >/dev/null && break; sleep 1; done
  ready=$(curl -fsS --max-time 10 "$url/ready") || fail "$pod: /ready"
  step "$pod: /ready $ready"
done
# The liveness probes, as podman turned them into health checks.
for pod in $api_pods $worker_pods; do
  check=$("${podman[@]}" inspect --format '{{join .Config.Healthcheck.Test " "}}' "$pod-runbox")
  "${podman[@]}" healthcheck run "$pod-runbox" >/dev/null || fail "$pod: health check failed: $check"
  step "$pod: liveness probe healthy ($check)"
done

set -- $api_pods
key=$("${podman[@]}" exec "$1-runbox" runbox keys create --name kube-check --scope admin 2>/dev/null) \
  || fail "no key was created"
# Every node registers; the API nodes (`--workers 0`) with no job slots.
nodes=$(curl -fsS "http://$(ip_of "$1"):2358/api/v1/workers" -H "Authorization: Bearer $key")
step "nodes: $(jq -r '[.[] | "\(.host) (\(.concurrency) slots)"] | sort | join(", ")' <<<"$nodes")"
workers=$(jq -r '[.[] | select(.concurrency > 0) | .host] | sort | join(" ")' <<<"$nodes")
[ "$workers" = "$(echo $worker_pods)" ] || fail "the nodes that run jobs are not the worker pods: $workers"

# A submission through an API pod: prints which worker ran it.
submit() { # POD LANGUAGE SOURCE EXPECTED
  local body out id worker stdout
  body=$(jq -n --arg language "$2" --arg source "$3" '{language: $language, source: $source}')
  out=$(curl -fsS --max-time 120 "http://$(ip_of "$1"):2358/api/v1/submissions?wait=true&timeout=100" \
    -H "Authorization: Bearer $key" -H 'content-type: application/json' -d "$body") \
    || fail "$2 submission to $1"
  stdout=$(jq -r '.result.run.stdout' <<<"$out")
  [ "$(jq -r .state <<<"$out")" = done ] && [ "$stdout" = "$4" ] || fail "$2 through $1: $out"
  id=$(jq -r .id <<<"$out")
  worker=$("${psql[@]}" "SELECT worker_id FROM submissions WHERE id = '$id'")
  case "$worker" in
    runbox-worker-pod-*) step "$2 through $1: stdout $stdout, run by worker $worker" ;;
    *) fail "$2 submission $id was run by '$worker', not a worker pod" ;;
  esac
}
submit "$1" python 'print(6 * 7)' 42
submit "${2:-$1}" c $'#include <stdio.h>\nint main(void) { printf("%d\\n", 7 * 8); return 0; }' 56
step "deploy/k8s played by podman kube play: API pods and worker pods ran Python and C"
