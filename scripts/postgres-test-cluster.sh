#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the store tests: never the system's
# cluster, never a password, only 127.0.0.1.
#
#   eval "$(scripts/postgres-test-cluster.sh start)"   # starts it (or finds it running)
#   cargo test -p runbox-store                         # reads RUNBOX_TEST_POSTGRES_URL
#   scripts/postgres-test-cluster.sh stop              # stops it and removes its files
#
# `start` prints `export RUNBOX_TEST_POSTGRES_URL=...` on stdout (everything else
# goes to stderr) and writes the same line to $dir/env. Idempotent: a cluster that
# is running is reused. The cluster lives in a directory of its own per checkout
# (under /tmp, which the postgres user can reach wherever the checkout is), so two
# worktrees each get their own, on their own free port.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-deps.sh" >&2
  exit 1
fi
checkout=$(pwd -P)
dir=${RUNBOX_TEST_POSTGRES_DIR:-/tmp/runbox-postgres-test-$(printf '%s' "$checkout" | cksum | cut -d' ' -f1)}
data=$dir/data
env_file=$dir/env

# PostgreSQL refuses to run as root: as root, run it as the postgres user (from /,
# as the checkout may be in a directory that user cannot enter).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

running() {
  [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    # Nothing answers on it (bash's /dev/tcp connects or fails at once on loopback).
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "no free port found between 20000 and 60000" >&2
  exit 1
}

start() {
  if running && [ -f "$env_file" ]; then
    echo "test cluster already running in $dir" >&2
    cat "$env_file"
    return
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # Trust, but only over the cluster's own socket directory and 127.0.0.1.
    as_owner tee "$data/pg_hba.conf" >/dev/null <<'EOF'
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
  fi
  local port
  port=$(free_port)
  # Durability is of no use to a throwaway cluster: no fsync, no full pages.
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
     -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "SELECT 1 FROM pg_database WHERE datname = 'runbox_test'" | grep -q 1 ||
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres runbox_test
  echo "export RUNBOX_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/runbox_test" |
    as_owner tee "$env_file"
  echo "test cluster running in $dir on 127.0.0.1:$port" >&2
}

stop() {
  if running; then
    as_owner "$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
  fi
  rm -rf "$dir"
  echo "test cluster stopped" >&2
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  env) cat "$env_file" ;;
  *)
    echo "usage: $0 [start|stop|env]" >&2
    exit 2
    ;;
esac
