#!/usr/bin/env bash
# Prints the name of a Debian 12 base image for deploy/Containerfile
# (DEBIAN_IMAGE=...), making it first with mmdebstrap when podman does not have
# it: for hosts that cannot pull docker.io/library/debian (as the CI machine).
# The image is kept as a cache (about 180 MB): podman rmi localhost/runbox-debian:bookworm
set -euo pipefail
image=localhost/runbox-debian:bookworm
if ! podman image exists "$image"; then
  echo "building $image with mmdebstrap" >&2
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm - \
    | podman import --quiet --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
fi
echo "$image"
