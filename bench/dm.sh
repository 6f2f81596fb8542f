#!/usr/bin/env bash
# Benchmark of the device-mapper backend: boots the test VM (make vm first) and runs bench/dm-vm.sh
# there: -a and -d of a 128-partition GPT image, partmap against Debian's kpartx, with the ratio and
# the DM ioctls partmap issues per partition (the floor is three: create, load, resume).
# With "udev" first: the same with Debian's systemd-udevd and dm rules running (bench/dm-udev-vm.sh),
# 32- and 128-partition GPTs.
#   bench/dm.sh [udev] [build]
set -euo pipefail
cd "$(dirname "$0")/.."
script=dm-vm.sh
if [ "${1:-}" = udev ]; then script=dm-udev-vm.sh; shift; fi
tests/vm/run1.sh "$script" "${1:-build}" | sed -n 's/^## bench: //p'
