#!/usr/bin/env bash
# Developer helper: boot the VM and run one in-VM test file, TAP on stdout.
#   tests/vm/run1.sh dm-kpartx.t[,other.t...] [build]
set -euo pipefail
b=${2:-build}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
"$(dirname "$0")/boot.sh" "$b" "$t" "$1" || true
cat "$t/tap"
