#!/usr/bin/env bash
# partmap dmraid on the eleven formats (tests/cmd/raid-cases.sh): member images written by mkraid
# (tests/unit/mkraid.c, raidsyn.c, from the metadata facts) carrying a known virtual disk laid out by
# the level; -ay serves the set (userspace DM here), its bytes equal the virtual disk's (cmp), -an
# leaves nothing; an isw spare disk is a spare set that -ay leaves unmapped. blkid judges the metadata
# layouts in tests/cmd/raidfmt.t; Debian's dmraid judges the same cases in tests/vm/dmraid-formats.t.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/raid-cases.sh" || { echo "Bail out! raid-cases.sh missing"; exit 1; }
private_ns "$@"
B=${PARTMAP_BUILD:-$(dirname "$PARTMAP")}
MK=$B/tests/mkraid
[ -x "$MK" ] || { fail "mkraid not built (make unit)"; done_testing; exit; }
mkdir -p /run/partmap
mount -t tmpfs -o mode=755 partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
export PARTMAP_DM=user
servers() { ns_servers; }
defer 'for p in $(servers); do kill -9 $p; done; "$PARTMAP" dmsetup remove_all; umount -l /run/partmap/dm/fs; for l in $(losetup -n -O NAME,BACK-FILE | awk -v t="$TMP" "index(\$2, t) == 1 {print \$1}"); do losetup -d $l; done'
cd "$TMP" || exit 1
head -c 48M /dev/urandom >src.bin

# FORMAT LEVEL DISKS: members of 40960 sectors, 16384-sector segments, 64-sector chunks
for c in "${RAID_CASES[@]}"; do
	read -r fmt lvl n <<<"$c"
	rm -f m*.img
	sz=$("$MK" -d src.bin "$fmt" "$lvl" "$n" 64 40960 16384 305419896 m 2>&1)
	if ! [[ $sz =~ ^[0-9]+$ ]]; then fail "$fmt $lvl: mkraid: $sz"; continue; fi
	if [ "$lvl" = spare ]; then
		set=$("$PARTMAP" dmraid -s -c m*.img 2>/dev/null)
		[[ $set =~ ^isw_[a-j]+_m0\.img$ ]] # the path as it is, as Debian's dmraid names it
		ok $? "$fmt $lvl: -s -c names the spare set after the disk ($set)"
		out=$("$PARTMAP" dmraid -ay m*.img 2>&1); rc=$?
		is "$rc:$(ls /dev/mapper; losetup -n -O BACK-FILE | grep "^$TMP")" "0:" "$fmt $lvl: -ay maps nothing ($out)"
		continue
	fi
	# the set: the first one -s -c names that is no group (isw_<family>, .ddf1_disks) nor a subset
	set=$("$PARTMAP" dmraid -s -c m*.img 2>/dev/null | grep -v -e '^\.' -e '^isw_[a-z]*$' -e '-[0-9]*$' | head -1)
	out=$("$PARTMAP" dmraid -ay m*.img 2>&1); rc=$?
	is "$rc" 0 "$fmt $lvl ($n disks): -ay of set $set ($out)"
	# hpt37x keeps its metadata at sector 9 of the first disk, inside the set (the gap after an MBR)
	skip9=()
	[ $fmt = hpt37x ] && skip9=(-i 5120:5120) && sz9=$((sz * 512 - 5120)) || sz9=$((sz * 512))
	[ -b "/dev/mapper/$set" ] && cmp -s -n 4608 "/dev/mapper/$set" src.bin &&
		cmp -s "${skip9[@]}" -n $sz9 "/dev/mapper/$set" src.bin
	ok $? "$fmt $lvl: the set's $sz sectors are the virtual disk's"
	is "$(blockdev --getsz "/dev/mapper/$set" 2>/dev/null)" "$sz" "$fmt $lvl: the set's size"
	"$PARTMAP" dmraid -an m*.img >/dev/null 2>&1
	ok $? "$fmt $lvl: -an"
	# the loop devices go once the server has closed them (autoclear): a moment after -an
	for _ in $(seq 50); do [ -z "$(losetup -n -O BACK-FILE | grep "^$TMP")" ] && break; sleep 0.1; done
	is "$(ls /dev/mapper; losetup -n -O BACK-FILE | grep "^$TMP")" "" "$fmt $lvl: nothing left"
done
done_testing
