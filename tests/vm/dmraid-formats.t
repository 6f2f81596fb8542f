#!/usr/bin/env bash
# Debian's dmraid as the judge of partmap's eleven BIOS RAID formats, and of the member images mkraid
# synthesises for them (tests/unit/mkraid.c, raidsyn.c): members written onto the VM's SCSI disks
# (which report serial numbers, so dmraid scans them; isw members carry those serials, as dmraid -b
# reports them); the same `-r`, `-s` and `-ay -t` output from both tools, and the set's bytes through
# dmraid's own map and through partmap's equal to the virtual disk mkraid laid out (hpt37x's metadata
# sector inside the set left out). RAID5: the kernel's dm-raid refuses the `raid` table Debian's
# dmraid builds (tests/vm/dmraid.t): dmraid's own map is said, not counted, and partmap's is read
# through its userspace device mapper. An isw spare disk: the outputs only (nothing to map).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/raid-cases.sh" || { echo "Bail out! raid-cases.sh missing"; exit 1; }
export DM_DISABLE_UDEV=1
MK=/partmap/mkraid
[ -x $MK ] || { fail "mkraid missing from the initramfs (make unit before make vm)"; done_testing; exit; }
disks=()
for d in /sys/block/sd?; do disks+=("/dev/${d##*/}"); done
is "${#disks[@]}" 6 "six SCSI disks with serials" || { done_testing; exit; }
N=$(blockdev --getsz "${disks[0]}")
# the disks' serial numbers as dmraid reads them (isw members name their disks by serial)
serials=""
for d in "${disks[@]}"; do
	serials+=${serials:+,}$(dmraid -b 2>/dev/null | awk -v d="$d:" '$1 == d { s = $NF; gsub(/"/, "", s); print s }')
done
diag "serial numbers: $serials"
defer 'dmraid -an >/dev/null 2>&1; "$PARTMAP" dmraid -an >/dev/null 2>&1; PARTMAP_DM=user "$PARTMAP" dmraid -an >/dev/null 2>&1; dmsetup remove_all >/dev/null 2>&1'
head -c 48M /dev/urandom >"$TMP/src"
wipe() { for d in "${disks[@]}"; do dd if=/dev/zero of="$d" bs=1M count=1 status=none
	dd if=/dev/zero of="$d" bs=1M seek=$((N / 2048 - 4)) count=4 status=none; done; }
# cmp the set against the virtual disk: SET SECTORS FORMAT
same_bytes() { # the set's first bytes: as far as the virtual disk (48 MiB) reaches
	local skip=() n=$(($2 * 512))
	((n > 48 << 20)) && n=$((48 << 20))
	[ "$3" = hpt37x ] && skip=(-i 5120:5120) && n=$((n - 5120))
	cmp -s -n 4608 "/dev/mapper/$1" "$TMP/src" && cmp -s "${skip[@]}" -n $n "/dev/mapper/$1" "$TMP/src"
}
put_members() { # the case's member images onto the disks
	for ((i = 0; i < n; i++)); do
		dd if="$TMP/m$i.img" of="${disks[$i]}" bs=1M conv=sparse,notrunc status=none
	done
	sync; echo 3 >/proc/sys/vm/drop_caches
}
for c in "${RAID_CASES[@]}"; do
	read -r fmt lvl n <<<"$c"
	what="$fmt $lvl ($n disks)"
	wipe
	rm -f "$TMP"/m*.img
	sz=$(cd "$TMP" && $MK -d src -s "$serials" "$fmt" "$lvl" "$n" 64 "$N" 16384 305419896 m 2>&1)
	if ! [[ $sz =~ ^[0-9]+$ ]]; then fail "$what: mkraid: $sz"; continue; fi
	put_members
	# where partmap differs from dmraid on purpose (README, "dmraid"): said, not counted
	case "$fmt $lvl" in
	"sil raid10") known="dmraid takes the whole array's size for each stripe of a SiI RAID10 (partmap: the array's half)" ;;
	"lsi raid10") known="dmraid expects 4 members in each stripe of an LSI RAID10 and maps them as /dev/zero" ;;
	"ddf1 raid01") known="dmraid ignores DDF secondary levels (a RAID10 as mdadm writes it); partmap maps them" ;;
	*) known="" ;;
	esac
	for o in "-r" "-s" "-ay -t"; do
		# shellcheck disable=SC2086
		a=$(dmraid $o 2>&1); b=$("$PARTMAP" dmraid $o 2>&1)
		if [ -n "$known" ] && [ "$b" != "$a" ]; then diag "$what: $o differs: $known"; continue; fi
		is "$b" "$a" "$what: partmap dmraid $o prints what dmraid prints"
	done
	[ "$lvl" = spare ] && continue # nothing to map
	# the set: the first one -s -c names that is no group (isw_<family>, .ddf1_disks) nor a subset
	set=$(dmraid -s -c 2>/dev/null | grep -v -e '^\.' -e '^isw_[a-z]*$' -e '-[0-9]*$' | head -1)
	dmraid -ay >/dev/null 2>&1
	if [ -n "$set" ] && same_bytes "$set" "$sz" "$fmt"; then pass "$what: dmraid's map of $set reads mkraid's virtual disk"
	elif [ -n "$known" ]; then diag "$what: dmraid's map differs: $known"
	elif [ "$lvl" = raid5 ]; then diag "$what: dmraid's map of '$set' does not read it (the kernel's dm-raid and dmraid's raid table)"
	else fail "$what: dmraid's map of '$set' does not read mkraid's virtual disk (mkraid's layout or dmraid's reading differ)"; fi
	dmraid -an >/dev/null 2>&1
	# where dmraid reads the set wrongly its map may have written the disks (a mirror it made of the
	# wrong legs resyncs one over the other: a DDF RAID10 did): the members written again
	[ -n "$known" ] && put_members
	dm=kernel
	[ "$lvl" = raid5 ] && dm=user
	PARTMAP_DM=$dm "$PARTMAP" dmraid -ay >"$TMP/ay" 2>&1
	if [ -n "$set" ] && same_bytes "$set" "$sz" "$fmt"; then pass "$what: partmap's map of $set ($dm DM) reads it too"
	else
		fail "$what: partmap's map of '$set' ($dm DM) does not read it"
		sed 's/^/# partmap dmraid -ay: /' "$TMP/ay"; dmraid -s -c 2>&1 | sed 's/^/# dmraid -s -c: /'
		PARTMAP_DM=$dm "$PARTMAP" dmsetup table 2>&1 | sed 's/^/# table: /'
		PARTMAP_DM=$dm "$PARTMAP" dmsetup info -c -o name,major,minor 2>&1 | sed 's/^/# info: /'
		ls -l /dev/mapper | sed 's/^/# node: /'
	fi
	PARTMAP_DM=$dm "$PARTMAP" dmraid -an >/dev/null 2>&1
	dmsetup remove_all >/dev/null 2>&1
done
wipe # the disks left blank for the next test
done_testing
