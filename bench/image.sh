#!/usr/bin/env bash
# Benchmark of the image layer: `partmap image raw` against `qemu-img convert -O raw` on the same
# images, side by side in one run (ratio = qemu-img time / partmap time), and the bytes `kpartx -l`
# reads from each image (counted under strace), against the size of the metadata that holds the table.
#   bench/image.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
RUNS=${RUNS:-3}
export PATH=$PATH:/usr/sbin:/sbin
for c in hyperfine strace qemu-img sfdisk; do
	command -v $c >/dev/null || { echo "bench/image.sh: $c is missing (make deps)" >&2; exit 1; }
done
t=$(mktemp -d /var/tmp/partmap-bench.XXXXXX)
trap 'rm -rf "$t"' EXIT

# 1 GiB disk, GPT, 256 MiB of random data and 256 MiB of compressible data (text), the rest empty
truncate -s 1G "$t/disk.raw"
printf 'label: gpt\n2048,1048576\n1050624,\n' | sfdisk -q "$t/disk.raw"
dd if=/dev/urandom of="$t/disk.raw" bs=1M seek=1 count=256 conv=notrunc status=none
for i in $(seq 1 64); do cat /usr/share/common-licenses/* 2>/dev/null; done | head -c 256M |
	dd of="$t/disk.raw" bs=1M seek=520 conv=notrunc status=none iflag=fullblock
qemu-img convert -f raw -O qcow2 "$t/disk.raw" "$t/plain.qcow2"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$t/disk.raw" "$t/zstd.qcow2"
qemu-img convert -f raw -O qcow2 -c "$t/disk.raw" "$t/deflate.qcow2"
qemu-img convert -f raw -O vmdk "$t/disk.raw" "$t/sparse.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$t/disk.raw" "$t/stream.vmdk"
qemu-img convert -f raw -O vhdx "$t/disk.raw" "$t/dynamic.vhdx"
qemu-img convert -f raw -O vpc "$t/disk.raw" "$t/dynamic.vhd"
qemu-img convert -f raw -O vdi "$t/disk.raw" "$t/dynamic.vdi"

printf '%-16s %12s %12s %8s %14s\n' image partmap qemu-img ratio "-l bytes read"
for img in plain.qcow2 zstd.qcow2 deflate.qcow2 sparse.vmdk stream.vmdk dynamic.vhdx dynamic.vhd dynamic.vdi; do
	f=$t/$img
	fmt=${img##*.}
	[ "$fmt" = vhd ] && fmt=vpc
	hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$t/h.json" \
		--prepare "rm -f $t/out.raw" "$PARTMAP image raw $f $t/out.raw" \
		--prepare "rm -f $t/out.raw" "qemu-img convert -f $fmt -O raw $f $t/out.raw" >/dev/null 2>&1
	pm=$(jq '.results[0].mean' "$t/h.json")
	qi=$(jq '.results[1].mean' "$t/h.json")
	# the bytes -l reads from the image file (the descriptors strace -y shows with its name)
	bytes=$(strace -y -e trace=pread64,read "$PARTMAP" kpartx -l "$f" 2>&1 >/dev/null |
		grep -F "<$f>" | sed -n 's/.*= \([0-9]*\)$/\1/p' | paste -sd+ | bc)
	printf '%-16s %10.3f s %10.3f s %7.2fx %14s\n' "$img" "$pm" "$qi" "$(echo "$qi / $pm" | bc -l)" "$bytes"
done
"$PARTMAP" image raw "$t/plain.qcow2" "$t/out.raw"
cmp -s "$t/out.raw" "$t/disk.raw" || { echo "bench/image.sh: conversion differs from the source" >&2; exit 1; }
