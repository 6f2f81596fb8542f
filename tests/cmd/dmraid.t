#!/usr/bin/env bash
# partmap dmraid on member images of isw (Intel IMSM) and ddf1 (SNIA DDF) sets made by mkraid (the
# test helper built from tests/unit/mkraid.c and raidsyn.c) from a virtual disk: -r, -s, -ay -t, -ay on raw and
# qcow2 members and on loop devices, the set's bytes against the virtual disk (cmp), a filesystem on
# a partition of the set (mounted, files read), degraded sets, and -an leaving nothing behind. No
# kernel device mapper here: partmap's userspace one serves the sets (PARTMAP_DM=user). Runs in a
# private mount namespace with its own /dev/mapper and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
B=${PARTMAP_BUILD:-$(dirname "$PARTMAP")}
GEN=$B/tests/mkraid
[ -x "$GEN" ] || { echo "Bail out! $GEN missing (make unit)"; exit 1; }
mkdir -p /run/partmap
mount -t tmpfs -o mode=755 partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
export PARTMAP_DM=user
dmr() { "$PARTMAP" dmraid "$@"; }
servers() { ns_servers; }
defer 'for p in $(servers); do kill -9 $p; done; "$PARTMAP" dmsetup remove_all; umount -l /run/partmap/dm/fs; for l in $(losetup -n -O NAME,BACK-FILE | awk -v t="$TMP" "index(\$2, t) == 1 {print \$1}"); do losetup -d $l; done'
defer 'grep " $TMP/mnt " /proc/mounts >/dev/null && umount -l $TMP/mnt'
cd "$TMP" || exit 1
mkdir mnt files

# nothing left: no maps, no loop devices on this test's files or on partmap's, no servers, no mounts
left() {
	local what=""
	[ -n "$(ls /dev/mapper)" ] && what+="maps: $(ls /dev/mapper | tr '\n' ' ') "
	[ -n "$(losetup -n -O BACK-FILE | grep -e "^$TMP")" ] && what+="loops: $(losetup -n -O NAME,BACK-FILE | grep "$TMP" | tr '\n' ' ') "
	[ -n "$(servers)" ] && sleep 1 && [ -n "$(servers)" ] && what+="servers: $(servers | tr '\n' ' ') "
	grep -q -e '^partmap[:-]dm' -e '^partmap:' /proc/mounts && what+="mounts: $(grep -e '^partmap-dm' -e '^partmap:' /proc/mounts | cut -d' ' -f1,2 | tr '\n' ' ') "
	echo "$what"
}

# the virtual disk: a DOS table, one partition with an ext4 filesystem holding two files
head -c 300000 /dev/urandom >files/random.bin
echo "hello from a BIOS RAID set" >files/hello.txt
truncate -s 15M part.ext4
mkfs.ext4 -q -F -d files part.ext4 >/dev/null 2>&1 || { echo "Bail out! mkfs.ext4 -d failed"; exit 1; }
truncate -s 16M virt
printf 'label: dos\n2048,,83\n' | sfdisk -q --no-reread --no-tell-kernel virt >/dev/null
dd if=part.ext4 of=virt bs=512 seek=2048 conv=notrunc status=none

# gen FMT LEVEL MEMBERS STRIP MEMBER_SECTORS PREFIX [NAME] -> sets $vs (the set's sectors): members of
# MEMBER_SECTORS + 64 sectors, data from sector 0, family 20261205 (isw), volume NAME (default Volume0)
gen() { vs=$("$GEN" -d virt "$1" "$2" "$3" "$4" $(($5 + 64)) "$5" 20261205 "$6" ${7:+"$7"}) || { fail "mkraid $*"; return 1; }; }

# check_set SET SECTORS MEMBER...: -ay, the bytes, the filesystem, -an
check_set() {
	local set=$1 sectors=$2 out rc
	shift 2
	out=$(dmr -ay "$@" 2>&1); rc=$?
	is "$rc" 0 "$set: -ay ($out)"
	case $out in *"RAID set \"$set\" was activated"*) pass "$set: activated" ;; *) fail "$set: $out" ;; esac
	local n=$((sectors < 32768 ? sectors : 32768))
	if cmp -n $((n * 512)) "/dev/mapper/$set" virt >/dev/null 2>&1 &&
		[ "$(blockdev --getsz "/dev/mapper/$set")" = "$sectors" ]; then
		pass "$set: the set's $sectors sectors are the virtual disk's"
	else
		fail "$set: bytes differ from the virtual disk"
	fi
	local p=${set}1
	case $set in *[0-9]) p=${set}p1 ;; esac
	if [ "$sectors" -ge 32768 ] && mount -o ro "/dev/mapper/$p" mnt 2>"$TMP/mount.err"; then
		cmp -s mnt/random.bin files/random.bin && cmp -s mnt/hello.txt files/hello.txt
		ok $? "$set: ext4 on $p mounts, its files are right"
		umount mnt
	elif [ "$sectors" -ge 32768 ]; then
		fail "$set: cannot mount /dev/mapper/$p: $(cat "$TMP/mount.err"; ls -l /dev/mapper; blockdev --getsz /dev/mapper/$p)"
	fi
	out=$(dmr -an "$@" 2>&1); rc=$?
	is "$rc" 0 "$set: -an ($out)"
	is "$(left)" "" "$set: -an leaves nothing"
}

# ---- isw RAID0, odd strip: -r, -s, -ay -t ----
gen isw raid0 2 24 16400 i0m
is "$vs" 32784 "mkraid: isw RAID0 of 2 x 16400 sectors, strip 24"
same "$(dmr -r i0m0.img i0m1.img)" 'i0m0.img: isw, "isw_cacgbcaf", GROUP, ok, 16462 sectors, data@ 0
i0m1.img: isw, "isw_cacgbcaf", GROUP, ok, 16462 sectors, data@ 0' "isw -r"
same "$(dmr -r -cc i0m1.img)" 'i0m1.img:isw:isw_cacgbcaf:GROUP:ok:16462:0' "isw -r -cc"
same "$(dmr -r -c format,raidname --separator=/ i0m1.img)" 'isw/isw_cacgbcaf' "isw -r -c FIELDS --separator"
same "$(dmr -s i0m0.img i0m1.img)" '*** Group superset isw_cacgbcaf
--> Subset
name   : isw_cacgbcaf_Volume0
size   : 32784
stride : 24
type   : stripe
status : ok
subsets: 0
devs   : 2
spares : 0' "isw -s"
same "$(dmr -s -c i0m0.img i0m1.img)" 'isw_cacgbcaf_Volume0' "isw -s -c"
same "$(dmr -ay -t i0m0.img i0m1.img)" 'isw_cacgbcaf_Volume0: 0 32784 striped 2 24 i0m0.img 0 i0m1.img 0' "isw -ay -t"
is "$(left)" "" "-ay -t changes nothing"
dmr -r --json i0m0.img | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"][0]; assert d["format"]=="isw" and d["type"]=="GROUP", d' 2>/dev/null
ok $? "-r --json"
dmr -s --json i0m0.img i0m1.img | python3 -c 'import json,sys; s=json.load(sys.stdin)["sets"][0]; assert s["name"]=="isw_cacgbcaf_Volume0" and s["size"]==32784 and s["type"]=="stripe", s' 2>/dev/null
ok $? "-s --json"
check_set isw_cacgbcaf_Volume0 32784 i0m0.img i0m1.img
mkdir dump && (cd dump && "$PARTMAP" dmraid -r -D ../i0m1.img >/dev/null)
# the MPB: one sector at N-2 (a single-sector MPB), dmraid's dump files
is "$(stat -c %s dump/dmraid.isw/i0m1.img.dat 2>&1) $(cat dump/dmraid.isw/i0m1.img.offset dump/dmraid.isw/i0m1.img.size 2>&1 | tr '\n' ' ')" \
	"512 $((16462 * 512)) 16464 " "-r -D: the metadata dumped as dmraid does"
cmp -s -i 0:$((16462 * 512)) -n 512 dump/dmraid.isw/i0m1.img.dat i0m1.img
ok $? "... the dump holds the disk's metadata sector"

# ---- -P, -p, --readonly ----
dmr -ay -P _ i0m0.img i0m1.img >/dev/null 2>&1
is "$(ls /dev/mapper | tr '\n' ' ')" "isw_cacgbcaf_Volume0 isw_cacgbcaf_Volume0_1 " "-P _: the partition named with it"
is "$("$PARTMAP" dmsetup info -c --noheadings -o uuid isw_cacgbcaf_Volume0_1 2>&1)" "part1-DMRAID-isw_cacgbcaf_Volume0" "... its DM UUID part1-DMRAID-<set>"
dmr -an i0m0.img i0m1.img >/dev/null 2>&1
dmr -ay -p --readonly i0m0.img i0m1.img >/dev/null 2>&1
is "$(ls /dev/mapper | tr '\n' ' ')" "isw_cacgbcaf_Volume0 " "-p: no partitions"
is "$(blockdev --getro /dev/mapper/isw_cacgbcaf_Volume0 2>&1)" 1 "--readonly: the set is read-only"
dd if=/dev/zero of=/dev/mapper/isw_cacgbcaf_Volume0 bs=4k count=1 conv=fsync status=none 2>/dev/null
is "$? $(cmp -n 4096 i0m0.img virt >/dev/null 2>&1; echo $?)" "1 0" "... a write fails, the member is unchanged"
dmr -an i0m0.img i0m1.img >/dev/null 2>&1
is "$(left)" "" "... -an leaves nothing"

# ---- qcow2 members ----
if command -v qemu-img >/dev/null; then
	for i in 0 1; do qemu-img convert -q -f raw -O qcow2 "i0m$i.img" "i0q$i.qcow2"; done
	check_set isw_cacgbcaf_Volume0 32784 i0q0.qcow2 i0q1.qcow2
	out=$(PARTMAP_DM=kernel "$PARTMAP" dmraid -ay i0q0.qcow2 i0q1.qcow2 2>&1); rc=$?
	is "$rc:$(left)" "1:" "no device mapper to use: exit 1, nothing left behind ($out)"
	# one raw, one qcow2
	check_set isw_cacgbcaf_Volume0 32784 i0m0.img i0q1.qcow2
else
	fail "qemu-img not installed (tests/install-deps.sh test)"
fi

# ---- members that are loop devices the test made: used, left attached by -an ----
attach L0 i0m0.img
attach L1 i0m1.img
same "$(dmr -ay -t "$L1" "$L0")" "isw_cacgbcaf_Volume0: 0 32784 striped 2 24 $L1 0 $L0 0" \
	"loop devices without serial numbers: placed in the order given"
same "$(dmr -r | grep -e "^$L0:" -e "^$L1:" | sort)" "$(printf '%s: isw, "isw_cacgbcaf", GROUP, ok, 16462 sectors, data@ 0\n' "$L0" "$L1" | sort)" \
	"the scan without arguments finds loop devices"
same "$(dmr -b "$L0")" "$(printf '%s: %12u total, "N/A"' "$L0" 16464)" "-b: a loop device, no serial number"
# -ay -t with the files, now that loop devices hold them: the tables name those (what -ay maps)
same "$(dmr -ay -t i0m0.img i0m1.img)" "isw_cacgbcaf_Volume0: 0 32784 striped 2 24 $L0 0 $L1 0" \
	"-ay -t with member files held by loop devices: the tables name the loop devices"
dmr -ay "$L0" "$L1" >/dev/null 2>&1
cmp -n $((32768 * 512)) /dev/mapper/isw_cacgbcaf_Volume0 virt >/dev/null 2>&1
ok $? "set on loop devices: the right bytes"
same "$(dmr -ay "$L0" "$L1" 2>&1)" 'RAID set "isw_cacgbcaf_Volume0" already active
RAID set "isw_cacgbcaf_Volume0p1" already active' "-ay again: already active"
dmr -an "$L0" "$L1" >/dev/null 2>&1
same "$(dmr -an "$L0" "$L1" 2>&1)" 'RAID set "isw_cacgbcaf_Volume0" is not active' "-an again: not active"
is "$(ls /dev/mapper) $(losetup -n -O NAME -j i0m0.img)" " $L0" "-an removes the maps, keeps loop devices it did not make"
losetup -d "$L0" "$L1"

# ---- an isw spare disk (its own one-disk metadata, marked spare): dmraid's spare set ----
"$GEN" isw spare 1 0 20000 0 1234 isp >/dev/null || fail "mkraid isw spare"
same "$(dmr -r isp0.img)" 'isp0.img: isw, "isw_bcde", spare, ok, 19998 sectors, data@ 0' "isw spare -r"
same "$(dmr -s isp0.img)" '*** Group superset isw_bcde
--> Subset
name   : isw_bcde_isp0.img
size   : 19998
stride : 0
type   : spare
status : ok
subsets: 0
devs   : 0
spares : 1' "isw spare -s: a spare set named after the disk (its path as it is), its size up to the metadata"
same "$(dmr -s -cc isp0.img)" 'isw_bcde_isp0.img:19998:0:spare:ok:0:0:1' "isw spare -s -cc"
out=$(dmr -ay isp0.img 2>&1); rc=$?
same "$rc:$out:$(left)" '0:ERROR: spare set "isw_bcde_isp0.img" cannot be activated
ERROR: no mapping possible for RAID set isw_bcde_isp0.img:' "isw spare -ay: not mapped, as dmraid says; nothing left"
# beside a RAID1 it does not change the set
gen isw raid1 2 0 19936 i1s
same "$(dmr -s -c i1s0.img isp0.img i1s1.img)" 'isw_cacgbcaf_Volume0
isw_bcde_isp0.img' "isw spare beside a RAID1: both sets"
same "$(dmr -ay -t i1s0.img isp0.img i1s1.img 2>/dev/null)" 'isw_cacgbcaf_Volume0: 0 19936 mirror core 2 64 nosync 2 i1s0.img 0 i1s1.img 0 1 handle_errors' \
	"isw spare beside a RAID1: -ay -t, the mirror's table"

# ---- isw RAID1, RAID10; ddf1 RAID0, RAID1, RAID10, linear ----
gen isw raid1 2 0 32768 i1m
check_set isw_cacgbcaf_Volume0 32768 i1m0.img i1m1.img
gen isw raid01 4 64 16384 iam Ten
same "$(dmr -ay -t iam0.img iam1.img iam2.img iam3.img)" "isw_cacgbcaf_Ten-0: 0 16384 mirror core 2 64 nosync 2 iam0.img 0 iam1.img 0 1 handle_errors
isw_cacgbcaf_Ten-1: 0 16384 mirror core 2 64 nosync 2 iam2.img 0 iam3.img 0 1 handle_errors
isw_cacgbcaf_Ten: 0 32768 striped 2 64 /dev/mapper/isw_cacgbcaf_Ten-0 0 /dev/mapper/isw_cacgbcaf_Ten-1 0" "isw RAID10 -ay -t: stacked"
check_set isw_cacgbcaf_Ten 32768 iam0.img iam1.img iam2.img iam3.img
gen ddf1 raid0 3 64 11000 d0m Stripes
# the synthesised members as util-linux's libblkid sees them (an independent reader)
is "$(blkid -p -s TYPE -s VERSION -o export i0m0.img | grep -v DEVNAME | sort | tr '\n' ' ')" "TYPE=isw_raid_member VERSION=1.3.00 " "blkid: isw member"
is "$(blkid -p -s TYPE -s VERSION -o export d0m1.img | grep -v DEVNAME | sort | tr '\n' ' ')" "TYPE=ddf_raid_member VERSION=02.00.00 " "blkid: ddf member"
same "$(dmr -r d0m2.img)" 'd0m2.img: ddf1, ".ddf1_disks", GROUP, ok, 11064 sectors, data@ 0' "ddf1 -r"
check_set ddf1_Stripes 32832 d0m2.img d0m0.img d0m1.img
gen ddf1 raid1 2 0 32768 d1m Mirror
check_set ddf1_Mirror 32768 d1m0.img d1m1.img
gen ddf1 raid01 4 128 16384 dam R10
check_set ddf1_R10 32768 dam0.img dam1.img dam2.img dam3.img
gen ddf1 span 2 0 16384 dlm Span
check_set ddf1_Span 32768 dlm0.img dlm1.img

# ---- degraded ----
out=$(dmr -ay i1m1.img 2>&1); rc=$?
is "$rc" 0 "RAID1 with a member missing: activated ($out)"
case $out in *'wrong # of devices in RAID set "isw_cacgbcaf_Volume0" [1/2]'*) pass "... dmraid's message" ;; *) fail "... message: $out" ;; esac
cmp -n $((32768 * 512)) /dev/mapper/isw_cacgbcaf_Volume0 virt >/dev/null 2>&1
ok $? "... reads right"
dmr -an i1m1.img >/dev/null 2>&1
is "$(left)" "" "... -an leaves nothing"
out=$(dmr -ay d0m0.img d0m2.img 2>&1); rc=$?
is "$rc" 1 "RAID0 with a member missing: refused"
case $out in *'RAID set "ddf1_Stripes": member 2 of 3 is missing'*) pass "... naming the set and the missing member" ;; *) fail "... message: $out" ;; esac
is "$(left)" "" "... nothing mapped"
out=$(dmr -s d0m0.img d0m2.img 2>/dev/null); rc=$?
is "$rc:$out" "1:no raid sets" "... and -s does not list it (dmraid removed it)"
# a member whose checksum is wrong is not used, and -v says why
cp i1m0.img bad.img
printf 'X' | dd of=bad.img bs=1 seek=$((32830 * 512 + 0xE0)) conv=notrunc status=none
out=$(dmr -r -v bad.img 2>&1); rc=$?
case $rc:$out in 1:*"bad.img: isw: checksum"*"no raid disks"*) pass "a bad checksum: not used, -v says why" ;; *) fail "bad checksum: $rc: $out" ;; esac
gen ddf1 raid5 3 32 8192 d5m Par
same "$(dmr -ay -t d5m2.img d5m0.img 2>/dev/null)" "ddf1_Par: 0 16384 raid raid5_ls 6 32 sync rebuild 1 region_size 64 3 - d5m0.img - - - d5m2.img" \
	"RAID5 with a member missing: Debian's dmraid's raid table, rebuilding it"

# ---- RAID5: partmap's userspace raid target (dm-raid's table) ----
gen isw raid5 3 32 16384 i5m Par
check_set isw_cacgbcaf_Par 32768 i5m0.img i5m1.img i5m2.img
check_set ddf1_Par 16384 d5m0.img d5m1.img d5m2.img
# the members of the ddf1 RAID5 of 3 x 8192 sectors, row by row: data XOR data XOR parity is zero
parity_ok() {
	python3 - "$@" <<'PY'
import sys
m = [open(f, 'rb').read(8192 * 512) for f in sys.argv[1:]]
x = bytes(a ^ b ^ c for a, b, c in zip(*m))
sys.exit(0 if x.count(0) == len(x) else 1)
PY
}
parity_ok d5m0.img d5m1.img d5m2.img
ok $? "mkraid's RAID5 members: parity consistent"
head -c 1048576 /dev/urandom >blk1
out=$(dmr -ay d5m0.img d5m1.img d5m2.img 2>&1)
err=$(dd if=blk1 of=/dev/mapper/ddf1_Par bs=1M seek=1 conv=fsync status=none 2>&1)
ok $? "RAID5: 1 MiB written through the set"
[ -z "$err" ] || diag "-ay: $out" "dd: $err" "$(ls -l /dev/mapper)" "$("$PARTMAP" dmsetup info -c 2>&1)"
dmr -an d5m0.img d5m1.img d5m2.img >/dev/null 2>&1
parity_ok d5m0.img d5m1.img d5m2.img
ok $? "... the members' parity is still consistent (checked outside partmap)"
for miss in 0 1 2; do
	set -- d5m0.img d5m1.img d5m2.img
	args=()
	for i in 0 1 2; do [ $i = $miss ] || args+=("d5m$i.img"); done
	out=$(dmr -ay "${args[@]}" 2>&1); rc=$?
	is "$rc" 0 "RAID5 without member $miss: activated"
	cmp -n 1048576 -i 0:1048576 blk1 /dev/mapper/ddf1_Par >/dev/null 2>&1
	ok $? "... the written block reads right (parity)"
	cmp -n 1048576 virt /dev/mapper/ddf1_Par >/dev/null 2>&1
	ok $? "... the first MiB too"
	dmr -an "${args[@]}" >/dev/null 2>&1
done
head -c 65536 /dev/urandom >blk2
dmr -ay d5m0.img d5m2.img >/dev/null 2>&1
dd if=blk2 of=/dev/mapper/ddf1_Par bs=64K seek=40 conv=fsync status=none
dmr -an d5m0.img d5m2.img >/dev/null 2>&1
dmr -ay d5m0.img d5m2.img >/dev/null 2>&1
cmp -n 65536 -i 0:$((40 * 65536)) blk2 /dev/mapper/ddf1_Par >/dev/null 2>&1
ok $? "RAID5 degraded: a write reads back after -an and -ay"
dmr -an d5m0.img d5m2.img >/dev/null 2>&1
is "$(left)" "" "RAID5: nothing left"

# ---- by the name dmraid; -l ----
ln -s "$PARTMAP" dmraid
same "$(./dmraid -l | grep -e '^ddf1 ' -e '^isw ' -e '^dos ')" 'ddf1    : SNIA DDF1 (0,1,4,5,linear)
isw     : Intel Software RAID (0,1,5,01)
dos     : DOS partitions on SW RAIDs' "called dmraid: -l as Debian's dmraid prints these formats"

# ---- no raid disks ----
out=$(dmr -r virt 2>&1); rc=$?
is "$rc:$out" "1:no raid disks" "a disk without RAID metadata: no raid disks, exit 1"
out=$(dmr -s -f ddf1 i0m0.img 2>&1); rc=$?
is "$rc:$out" '1:no raid disks with format: "ddf1"' "-f: only the formats named"
is "$(left)" "" "nothing left at the end"
done_testing
