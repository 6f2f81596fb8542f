#!/usr/bin/env bash
# The kernel as the oracle: for each image of the corpus, the partitions `losetup -P` makes (number,
# start, size from sysfs) must be what `partmap kpartx -l` lists.
. "$(dirname "$0")/lib.sh"
for img in /tests/data/*.img; do
	name=$(basename "$img" .img)
	bs=512; case $name in *-4k) bs=4096 ;; esac
	attach l -P -b "$bs" "$img" || { fail "$name: losetup -P"; continue; }
	n=${l#/dev/}
	kernel=$(for p in /sys/block/$n/${n}p*; do
		[ -d "$p" ] && echo "$(cat "$p/partition") $(cat "$p/start") $(cat "$p/size")"
	done | sort -n)
	ours=$("$PARTMAP" kpartx -l --json "$l" 2>/dev/null | jq -r '.partitions[] | "\(.number) \(.start) \(.size)"' | sort -n)
	same "$ours" "$kernel" "$name: partmap -l lists what the kernel makes ($(wc -l <<<"$kernel") partitions)"
	losetup -d "$l"
done
# a BSD label at sector 1 of a bare disk: the kernel has no reader for it (no partitions); partmap
# lists it as kpartx and partx (libblkid) do
img=/tests/data/nokernel/bsd-sector1.img
attach l -P "$img"
n=${l#/dev/}
is "$(ls -d /sys/block/$n/${n}p* 2>/dev/null | wc -l)" 0 "bsd-sector1: the kernel makes no partitions"
same "$("$PARTMAP" kpartx -l --json "$l" | jq -r '.partitions[] | "\(.number) \(.start) \(.size)"')" \
	"$(partx --show -g -o NR,START,SECTORS "$l" | awk '{print $1, $2, $3}')" "bsd-sector1: partmap lists what partx lists (1 and 2)"
losetup -d "$l"
done_testing
