#!/usr/bin/env bash
# Rebuilds samples/disk.img.gz: an 8 MiB DOS-labelled image with a FAT primary partition and an ext4
# logical partition, each holding a small file. Needs sfdisk, mkfs.vfat, mcopy, mkfs.ext4; no root.
set -euo pipefail
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
img=$t/disk.img
truncate -s 8M "$img"
sfdisk -q "$img" >/dev/null <<'S'
label: dos
label-id: 0x7061726d
start=2048, size=4096, type=c
start=6144, type=5
start=8192, size=8192, type=83
S
truncate -s 2M "$t/fat"; mkfs.vfat -n SAMPLEFAT "$t/fat" >/dev/null
echo "hello from the FAT partition of partmap's sample image" >"$t/HELLO.TXT"
mcopy -i "$t/fat" "$t/HELLO.TXT" ::HELLO.TXT
dd if="$t/fat" of="$img" bs=512 seek=2048 conv=notrunc status=none
mkdir "$t/root"; echo "hello from the ext4 logical partition (p5) of partmap's sample image" >"$t/root/hello.txt"
truncate -s 4M "$t/ext"
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -L sample-ext4 -U 7061726d-6170-4000-8000-73616d706c65 \
	-E root_owner=0:0,hash_seed=7061726d-6170-4000-8000-73616d706c65 -d "$t/root" "$t/ext"
dd if="$t/ext" of="$img" bs=512 seek=8192 conv=notrunc status=none
gzip -9n <"$img" >disk.img.gz
ls -l disk.img.gz
