#!/usr/bin/env bash
# make demo: list the partitions of the bundled sample image; as root, also map them, show a file
# from a partition's filesystem and unmap.
set -euo pipefail
partmap=$(readlink -f "$1")
sample=$(readlink -f "$2")
dir=$(dirname "$partmap")/demo
mkdir -p "$dir"
img=$dir/disk.img
gunzip -c "$sample" >"$img"
echo "\$ partmap kpartx -l $img"
"$partmap" kpartx -l "$img"
echo
echo "\$ partmap kpartx -l --json $img"
"$partmap" kpartx -l --json "$img"
if command -v qemu-img >/dev/null; then
	# the same disk as a compressed qcow2: listed directly, no conversion, no root
	qemu-img convert -f raw -O qcow2 -c "$img" "$dir/disk.qcow2"
	echo
	echo "\$ partmap image info $dir/disk.qcow2"
	"$partmap" image info "$dir/disk.qcow2"
	echo
	echo "\$ partmap kpartx -l $dir/disk.qcow2"
	"$partmap" kpartx -l "$dir/disk.qcow2"
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "(not root: mapping skipped)"
	exit 0
fi
mnt=$(mktemp -d)
cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	"$partmap" kpartx -d "$img" >/dev/null 2>&1 || true
	rmdir "$mnt"
}
trap cleanup EXIT
echo
echo "\$ partmap kpartx -a -v $img"
out=$("$partmap" kpartx -a -v "$img")
echo "$out"
p5=$(awk '/^add map .*p5 /{print $3}' <<<"$out")
echo
echo "\$ mount -o ro /dev/mapper/$p5 $mnt && cat $mnt/hello.txt"
mount -o ro "/dev/mapper/$p5" "$mnt"
cat "$mnt/hello.txt"
umount "$mnt"
echo
echo "\$ partmap kpartx -d -v $img"
"$partmap" kpartx -d -v "$img"
