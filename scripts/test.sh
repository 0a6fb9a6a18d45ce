#!/usr/bin/env bash
# Installs the test dependencies (the core languages among them) and runs every
# check: formatting, clippy, all tests (as root: boxes need namespaces and
# cgroups), then a leak check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The conformance suite fails when a core language is missing; others are tested
# when installed (scripts/install-languages.sh --all installs them all).
bash scripts/install-languages.sh --core
# The Judge0 SDK and piston-client that the compatibility tests drive.
bash scripts/install-test-clients.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The PostgreSQL store's tests need a server: a private, throwaway one.
eval "$(bash scripts/postgres-test-cluster.sh start)"
trap 'bash scripts/postgres-test-cluster.sh stop' EXIT
cargo test --workspace
cat target/tmp/conformance-summary.txt

# Nothing of any box may be left behind on the host. Test binaries keep one shared
# sandbox in a static that is never dropped; starting runbox sweeps the cgroups of
# supervisors that are gone (as after a crash), so run it once, then look.
target/debug/runbox doctor >/dev/null
# Only below this process's own cgroups: that is where runbox creates boxes (other
# sessions' cgroups on a shared host are not ours to judge).
own_cgroups() {
  while IFS=: read -r _ controllers path; do
    if [ -z "$controllers" ]; then
      for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
        [ -f "$root/cgroup.controllers" ] && echo "$root$path" && break
      done
    else
      for controller in ${controllers//,/ }; do
        controller=${controller#name=}
        [ -d "/sys/fs/cgroup/$controller" ] && echo "/sys/fs/cgroup/$controller$path"
      done
    fi
  done < /proc/self/cgroup | sort -u
}
# The lasting slots of one-shot commands (crates/sandbox/src/lasting.rs) are kept
# between commands on purpose, as isolate keeps its box ids: they are a leak only
# when a process still lives in one.
busy_slots=$(own_cgroups | while read -r root; do find "$root" -maxdepth 6 -path '*/runbox-lasting/*' -name cgroup.procs 2>/dev/null; done | sort -u | while read -r procs; do
  # cgroup files report a size of 0: read them.
  if [ -n "$(cat "$procs" 2>/dev/null)" ]; then echo "${procs%/cgroup.procs}"; fi
done)
if [ -n "$busy_slots" ]; then
  echo "processes left behind in lasting box slots:" >&2
  echo "$busy_slots" >&2
  exit 1
fi
leaks=$(own_cgroups | while read -r root; do find "$root" -maxdepth 6 -type d -name 'runbox-*' ! -name runbox-supervisor ! -name runbox-lasting 2>/dev/null; done | sort -u | while read -r dir; do
  pid=${dir##*/runbox-}; pid=${pid#doctor-}; pid=${pid%%-*}
  [ -d "/proc/$pid" ] || echo "$dir"
done)
if [ -n "$leaks" ]; then
  echo "cgroups left behind by finished runbox processes:" >&2
  echo "$leaks" >&2
  exit 1
fi
if grep -q ' /run/runbox/root ' /proc/self/mountinfo; then
  echo "a box root is still mounted on the host" >&2
  exit 1
fi
if grep -q ' /run/runbox/volumes/' /proc/self/mountinfo; then
  echo "a work volume is still mounted on the host:" >&2
  grep ' /run/runbox/volumes/' /proc/self/mountinfo >&2
  exit 1
fi
echo "leak check: no cgroup, mount, work volume or box process left behind"
