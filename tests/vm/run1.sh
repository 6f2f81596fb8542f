#!/usr/bin/env bash
# Developer helper: boot the VM and run one in-VM test file, TAP on stdout.
#   tests/vm/run1.sh dm-kpartx.t [build]
set -euo pipefail
b=${2:-build}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
timeout 900 qemu-system-x86_64 -nographic -no-reboot -m 2048 -smp 2 -cpu max -kernel "$b/vm/kernel/vmlinuz" \
	-initrd "$b/vm/initramfs.cpio.gz" -append "console=ttyS0 quiet loglevel=3 panic=-1 partmap.only=$1" \
	-serial file:"$t/console" -serial file:"$t/tap" -monitor none -display none >/dev/null 2>&1 || true
cat "$t/tap"
