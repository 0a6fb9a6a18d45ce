#!/usr/bin/env bash
# Installs the Debian packages runbox's build, tests and benchmarks need.
# Idempotent and quiet: packages already present are not touched.
set -euo pipefail

packages=(
  gcc libc6-dev        # attack programs of the test suite, static hello world of the benchmark
  bubblewrap           # the benchmark's baseline sandbox
  procps               # ps, used when a test fails to show what is left running
  curl jq              # the documentation's examples, run by crates/cli/tests/docs_examples.rs
  postgresql           # the PostgreSQL store's tests (their own cluster: scripts/postgres-test-cluster.sh)
  slirp4netns nftables # boxes with network (network.enabled), and their tests
  mmdebstrap           # Debian runtimes (`runbox runtimes add debian:SUITE`) and their tests
  docker-registry skopeo apache2-utils openssl # OCI runtime tests: loopback registries, pushes, htpasswd, token signing
  podman runc          # the container image's test (crates/cli/tests/container.rs): runc, as crun refuses hybrid cgroups
  podman-compose golang-github-containernetworking-plugin-dnsname # the fleet's compose file (scripts/compose-fleet.sh, opt-in): services find each other by name
  catatonit            # the pause image of podman's pods (scripts/kube-play.sh, opt-in)
  systemd              # systemd-analyze verify of deploy/systemd (crates/cli/tests/deploy.rs)
  valgrind             # analysis.memcheck (boxes run the host's /usr/bin/valgrind) and its tests
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    # The tests start a throwaway cluster of their own: the package is to create (and
    # so start) no system cluster.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/runbox-no-main-cluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null \
    && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    # The tests start registries of their own on loopback: the package's system
    # registry (every interface, port 5000) is not to keep running.
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (stable, edition 2024) with rustup first" >&2
  exit 1
fi
