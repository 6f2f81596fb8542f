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
if [ "$(id -u)" -ne 0 ]; then
	echo "(not root: mapping skipped)"
	exit 0
fi
echo
echo "\$ partmap kpartx -a -v $img"
if ! "$partmap" kpartx -a -v "$img"; then
	echo "(mapping is not available in this build)"
	exit 0
fi
