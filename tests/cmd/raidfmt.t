#!/usr/bin/env bash
# The BIOS RAID members of all eleven formats partmap's tests synthesise (tests/unit/raidsyn.c, written to files by
# build/tests/mkraid) are recognised by an independent reader: util-linux's blkid names each member's
# format, at every level and member position the unit tests use, and at every place Promise metadata
# may sit. This judges the layouts the reader tests are built on.
. "$(dirname "$0")/lib.sh"

MKRAID=${PARTMAP_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/tests/mkraid
command -v blkid >/dev/null || { echo "Bail out! blkid (util-linux) is needed"; exit 1; }
[ -x "$MKRAID" ] || { echo "Bail out! $MKRAID missing (make unit)"; exit 1; }

# blkid's name for each format, and the version blkid reads where it reads one
declare -A TYPE=(
	[asr]=adaptec_raid_member [hpt37x]=hpt37x_raid_member [hpt45x]=hpt45x_raid_member
	[jmicron]=jmicron_raid_member [lsi]=lsi_mega_raid_member [nvidia]=nvidia_raid_member
	[pdc]=promise_fasttrack_raid_member [sil]=silicon_medley_raid_member [via]=via_raid_member
	[isw]=isw_raid_member [ddf1]=ddf_raid_member
)
declare -A VERSION=([asr]=8 [jmicron]=0.1 [nvidia]=100 [sil]=2.0 [via]=1 [ddf1]=02.00.00)
# the levels each format's synthesiser writes (as the unit tests use them)
declare -A LEVELS=(
	[asr]="raid0 raid1 raid10 spare" [hpt37x]="span raid0 raid1 raid10 raid01 spare"
	[hpt45x]="span raid0 raid1 raid10 spare" [jmicron]="span raid0 raid1 raid01"
	[lsi]="raid0 raid1 raid10" [nvidia]="span raid0 raid1 raid10 raid5" [pdc]="span raid0 raid1 raid10"
	[sil]="span raid0 raid1 raid10 raid5 spare" [via]="span raid0 raid1 raid10"
	[isw]="raid0 raid1 raid01 raid5 spare" [ddf1]="span raid0 raid1 raid01 raid5"
)

check() { # check FORMAT LABEL IMAGE...
	local fmt=$1 label=$2 img out bad=0
	shift 2
	for img in "$@"; do
		out=$(blkid -p -o udev "$img")
		grep -qx "ID_FS_TYPE=${TYPE[$fmt]}" <<<"$out" || { bad=1; diag "$img:" "$out"; }
		if [ -n "${VERSION[$fmt]:-}" ]; then
			grep -qx "ID_FS_VERSION=${VERSION[$fmt]}" <<<"$out" || { bad=1; diag "$img:" "$out"; }
		fi
	done
	ok $bad "$fmt $label: blkid -p names all $# members ${TYPE[$fmt]}"
}

for fmt in asr hpt37x hpt45x jmicron lsi nvidia pdc sil via isw ddf1; do
	for level in ${LEVELS[$fmt]}; do
		case $level in raid1) n=2 ;; raid10 | raid01) n=4 ;; spare) n=1 ;; *) n=3 ;; esac
		[ "$fmt" = lsi ] && [ "$level" = raid0 ] && n=2
		rm -f "$TMP"/m*.img
		"$MKRAID" "$fmt" "$level" "$n" 16 8192 4096 0x12345678 "$TMP/m" || { fail "$fmt $level: mkraid"; continue; }
		check "$fmt" "$level" "$TMP"/m*.img
	done
done

# members that hold the set's data too (mkraid -d: random bytes laid out as RAID0) are members still
head -c $((4 << 20)) /dev/urandom >"$TMP/src"
for fmt in asr hpt37x hpt45x jmicron lsi nvidia pdc sil via isw ddf1; do
	rm -f "$TMP"/m*.img
	size=$("$MKRAID" -d "$TMP/src" "$fmt" raid0 2 16 8192 4096 0x12345678 "$TMP/m") || { fail "$fmt -d: mkraid"; continue; }
	[ "$size" -gt 0 ] || diag "$fmt: set size $size"
	check "$fmt" "raid0 with data ($size sectors)" "$TMP"/m*.img
done

# Promise: every sector before the end where dmraid looks (and blkid too)
imgs=()
for s in 63 255 256 16 399 591 675 735 911 974 991 951 3087; do
	"$MKRAID" "pdc:$s" raid0 1 16 8192 4096 7 "$TMP/pdc$s-" || fail "pdc at N-$s: mkraid"
	imgs+=("$TMP/pdc$s-0.img")
done
check pdc "metadata at each probe place" "${imgs[@]}"

# blkid checks the checksums of these two: one changed byte and it no longer sees a member, so its
# acceptance above confirms raidsyn's sums (SiI: -Σu16 at 0x13E; VIA: Σu8 at byte 50)
for fmt in sil via; do
	"$MKRAID" "$fmt" raid1 2 16 8192 4096 5 "$TMP/c$fmt-"
	printf '\x5a' | dd of="$TMP/c$fmt-0.img" bs=1 seek=$(((8192 - 1) * 512 + 0x20)) conv=notrunc status=none
	is "$(blkid -p -o udev "$TMP/c$fmt-0.img")" "" "$fmt: a member with a wrong checksum is no member to blkid"
	out=$(blkid -p -o udev "$TMP/c$fmt-1.img")
	grep -qx "ID_FS_TYPE=${TYPE[$fmt]}" <<<"$out"; ok $? "$fmt: its untouched twin still is"
done

# and a blank disk is no member of any
truncate -s 4M "$TMP/blank.img"
out=$(blkid -p -o udev "$TMP/blank.img")
is "$out" "" "a blank disk: blkid finds nothing (the checks above can fail)"

done_testing
