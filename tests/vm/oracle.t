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
done_testing
