#!/usr/bin/env bash
# Benchmark of partmap dmsetup: boots the test VM (make vm first) and runs bench/dmsetup-vm.sh there:
# create and remove 500 linear devices with partmap dmsetup and with Debian's dmsetup; prints the ratio.
#   bench/dmsetup.sh [build]
set -euo pipefail
cd "$(dirname "$0")/.."
tests/vm/run1.sh dmsetup-vm.sh "${1:-build}" | sed -n 's/^## bench: //p'
