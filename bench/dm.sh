#!/usr/bin/env bash
# Benchmark of the device-mapper backend: boots the test VM (make vm first) and runs bench/dm-vm.sh
# there: -a and -d of a 128-partition GPT image, partmap against Debian's kpartx, with the ratio and
# the DM ioctls partmap issues per partition (the floor is three: create, load, resume).
#   bench/dm.sh [build]
set -euo pipefail
cd "$(dirname "$0")/.."
tests/vm/run1.sh dm-vm.sh "${1:-build}" | sed -n 's/^## bench: //p'
