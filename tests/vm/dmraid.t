#!/usr/bin/env bash
# BIOS RAID metadata written by mdadm (Intel IMSM with IMSM_NO_PLATFORM=1, and SNIA DDF) on the VM's
# SCSI disks with serial numbers (tests/vm/boot.sh), read by Debian's dmraid and by partmap dmraid
# side by side: the same -r, -s and -ay -t output, and the same bytes through /dev/mapper as md gave,
# with the kernel's device mapper and with partmap's userspace one.
. "$(dirname "$0")/lib.sh"
# MDADM_NO_UDEV: mdadm takes an existing /run/udev for a running udev and leaves the nodes to it
export DM_DISABLE_UDEV=1 IMSM_NO_PLATFORM=1 MDADM_NO_UDEV=1
disks=()
for d in /sys/block/sd?; do disks+=("/dev/${d##*/}"); done
is "${#disks[@]}" 6 "six SCSI disks with serials" || { done_testing; exit; }
mkdir -p /run/mdadm /dev/md
pmr() { "$PARTMAP" dmraid "$@"; }
stop_all() { dmraid -an >/dev/null 2>&1; "$PARTMAP" dmraid -an >/dev/null 2>&1; PARTMAP_DM=user "$PARTMAP" dmraid -an >/dev/null 2>&1
	mdadm -Ss >/dev/null 2>&1; dmsetup remove_all >/dev/null 2>&1; }
defer stop_all
# every disk's metadata erased: mdadm's own for IMSM and DDF, the first MiB and the last 4 (where the
# other formats' metadata of dmraid-formats.t lies: Promise's reaches 3087 sectors before the end)
wipe() { for d in "${disks[@]}"; do mdadm --zero-superblock "$d" >/dev/null 2>&1
	dd if=/dev/zero of="$d" bs=1M count=1 status=none; dd if=/dev/zero of="$d" bs=1M seek=156 count=4 status=none; done; }
head -c 48M /dev/urandom >"$TMP/pat"

# compare: Debian's dmraid and partmap's, the same options; stdout and exit status
same() { # DESCRIPTION ARGS...
	local what=$1; shift
	local a b ra rb
	a=$(dmraid "$@" 2>&1); ra=$?
	b=$(pmr "$@" 2>&1); rb=$?
	is "$b" "$a" "$what: partmap dmraid $* prints what dmraid prints"
	is "$rb" "$ra" "$what: the same exit status ($ra)"
}
# the set's bytes through dmraid's map, partmap's (kernel DM) and partmap's (userspace DM), against md's
bytes() { # DESCRIPTION SET SUM LEN
	local what=$1 set=$2 sum=$3 len=$4
	# Debian's dmraid, for the record only (its RAID5 table does not load on this kernel)
	dmraid -ay >/dev/null 2>&1
	[ "$(head -c "$len" /dev/mapper/"$set" 2>/dev/null | sha256sum)" = "$sum" ] && diag "$what: dmraid's own map reads md's bytes" ||
		diag "$what: dmraid's own map does not read md's bytes"
	dmraid -an >/dev/null 2>&1
	if [[ $what == *raid5* ]]; then
		# the kernel's dm-raid refuses the `raid` table Debian's dmraid builds for RAID5 (dmraid's
		# own -ay fails the same way): said, not counted; the userspace DM's raid target below is
		pmr -ay >/dev/null 2>&1 && [ "$(head -c "$len" /dev/mapper/"$set" 2>/dev/null | sha256sum)" = "$sum" ] &&
			diag "$what: the kernel's dm-raid took dmraid's RAID5 table" ||
			diag "$what: the kernel's dm-raid refuses dmraid's RAID5 table, as for dmraid"
	else
		pmr -ay >/dev/null 2>&1; ok $? "$what: partmap dmraid -ay (kernel DM)"
		is "$(head -c "$len" /dev/mapper/"$set" 2>/dev/null | sha256sum)" "$sum" "$what: partmap's map reads md's bytes"
	fi
	pmr -an >/dev/null 2>&1; ok $? "$what: partmap dmraid -an"
	PARTMAP_DM=user "$PARTMAP" dmraid -ay >/dev/null 2>&1; ok $? "$what: partmap dmraid -ay (userspace DM)"
	is "$(head -c "$len" /dev/mapper/"$set" 2>/dev/null | sha256sum)" "$sum" "$what: the userspace map reads md's bytes"
	PARTMAP_DM=user "$PARTMAP" dmraid -an >/dev/null 2>&1; ok $? "$what: partmap dmraid -an (userspace DM)"
	is "$(ls /dev/mapper | grep -v control)" "" "$what: nothing left mapped"
}

# one case: a container of N disks in METADATA, one volume of LEVEL on all of them, written through md
# with a pattern; md stopped; then the comparisons
case_md() { # METADATA LEVEL N CHUNKOPT
	local meta=$1 lvl=$2 n=$3 chunk=$4 what="$1 raid$2 ($3 disks)" mem len sum set
	mem=("${disks[@]:0:$n}")
	stop_all; wipe
	mdadm -CR /dev/md/c0 -e "$meta" -n "$n" "${mem[@]}" >"$TMP/md.out" 2>&1
	ok $? "$what: mdadm creates the container" || sed 's/^/# /' "$TMP/md.out"
	# shellcheck disable=SC2086
	mdadm -CR /dev/md/v0 -l "$lvl" -n "$n" $chunk -z 20M --assume-clean /dev/md/c0 >"$TMP/md.out" 2>&1 ||
		diag "$what: mdadm exited $? ($(tr '\n' ' ' <"$TMP/md.out"))"
	if ! [ -b /dev/md/v0 ]; then
		fail "$what: mdadm made the volume"
		sed 's/^/# /' "$TMP/md.out"; stop_all; return
	fi
	len=$(blockdev --getsize64 /dev/md/v0)
	dd if="$TMP/pat" of=/dev/md/v0 bs=1M oflag=direct status=none 2>/dev/null
	sum=$(head -c "$len" /dev/md/v0 | sha256sum)
	mdadm -Ss >/dev/null 2>&1; rm -f /dev/md/c0 /dev/md/v0
	for o in -r -s; do dmraid $o 2>&1 | sed "s/^/# dmraid $o: /"; done
	dmraid -ay -t 2>&1 | sed 's/^/# dmraid -ay -t: /'
	same "$what" -r
	same "$what" -s
	same "$what" -s -s
	same "$what" -ay -t
	same "$what" -r -c
	same "$what" -s -c
	# Debian's dmraid prints "*ERR*" for each line of -r -cc and -s -ccc here; partmap prints the
	# fields its man page describes: said, not counted
	for o in "-r -cc" "-s -ccc"; do
		# shellcheck disable=SC2086
		diag "$what: dmraid $o: $(dmraid $o 2>&1 | head -1); partmap: $(pmr $o 2>&1 | head -1)"
	done
	same "$what" -b
	set=$(dmraid -s -c 2>/dev/null | grep -v '^isw_[a-z]*$\|^\.' | tail -1)
	if [ -z "$set" ] || [ "$len" -lt 1048576 ]; then
		fail "$what: dmraid names no set (or md's volume is empty)"; return
	fi
	bytes "$what" "$set" "$sum" "$len"
}

case_md imsm 0 2 "-c 64"
case_md imsm 1 2 ""
case_md imsm 5 3 "-c 64"
case_md imsm 10 4 "-c 64"
case_md ddf 0 3 "-c 64"
case_md ddf 1 2 ""
case_md ddf 5 3 "-c 64"
done_testing
