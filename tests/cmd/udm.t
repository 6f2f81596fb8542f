#!/usr/bin/env bash
# The device mapper in userspace (this machine's kernel has none): the walkthroughs of
# ../shared/seeds/001 and 002 run as written with `partmap dmsetup` on loop devices, each step
# checked by its effect on the bytes (computed from the table, read through the loop devices
# underneath, never through partmap), plus suspend, busy devices, a killed server and kpartx on a
# served device. Runs in a private mount namespace with its own /dev/mapper and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
mkdir -p /run/partmap
mount -t tmpfs -o mode=755 partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
export PARTMAP_DM=auto
dms() { "$PARTMAP" dmsetup "$@"; }
defer 'for p in $(servers); do kill -9 $p; done; "$PARTMAP" dmsetup remove_all; umount -l /run/partmap/dm/fs'
cd "$TMP" || exit 1

if [ -e /sys/module/dm_mod ] || grep -q device-mapper /proc/misc; then
	echo "1..0 # SKIP this kernel has a device mapper: the userspace one is tested in tests/vm/"
	exit 0
fi

# ---- the driver ----
v=$(dms version)
case $v in *"partmap userspace device mapper"*) pass "version: the userspace device mapper answers" ;; *) fail "version: $v" ;; esac
t=$(dms targets | awk '{print $1}' | sort | tr '\n' ' ')
case $t in *linear*striped*zero*) pass "targets: linear, striped, zero, error listed ($t)" ;; *) fail "targets: $t" ;; esac
is "$(dms ls)" "No devices found" "ls without a server"
is "$(servers)" "" "no server started by ls, version or targets"
out=$(PARTMAP_DM=kernel "$PARTMAP" dmsetup ls 2>&1); rc=$?
is "$rc" 1 "PARTMAP_DM=kernel refuses where the kernel has none"
case $out in *"PARTMAP_DM=kernel"*) pass "... and says why" ;; *) fail "... message: $out" ;; esac

# ---- seed 001: a 100 MB disk with a bad 9th sector ----
truncate -s 100M sdb1.img
head -c 1M /dev/urandom >r1 && dd if=r1 of=sdb1.img conv=notrunc status=none
attach SDB1 sdb1.img
printf '0 8 linear %s 0\n8 1 error\n9 204791 linear %s 9\n' "$SDB1" "$SDB1" | dms create bad_disk
ok $? "create bad_disk (table on stdin)"
[ -b /dev/mapper/bad_disk ]; ok $? "/dev/mapper/bad_disk is a block device"
blockdev --setra 0 /dev/mapper/bad_disk; ok $? "blockdev --setra 0"
is "$(blockdev --getsz /dev/mapper/bad_disk)" 204800 "blockdev --getsz: 204800 sectors"
dd if=/dev/mapper/bad_disk of=/dev/null bs=1k count=4 iflag=direct status=none; ok $? "dd of the first 4 KiB: fine"
dd if=/dev/mapper/bad_disk of=/dev/null bs=1k count=5 iflag=direct status=none 2>err
is "$?" 1 "dd of 5 KiB: fails at the 9th sector"
grep -q "Input/output error" err; ok $? "... with an I/O error"
cmp <(dd if=/dev/mapper/bad_disk bs=512 skip=9 count=2000 iflag=direct status=none) <(dd if=r1 bs=512 skip=9 count=2000 status=none)
ok $? "sectors after the bad one are the disk's"
is "$(dms table bad_disk)" "0 8 linear $(majmin "$SDB1") 0
8 1 error 
9 204791 linear $(majmin "$SDB1") 9" "table: devices as major:minor, error with its trailing space"
srv=$(servers)
[ -n "$srv" ]; ok $? "one server runs ($srv)"
dms remove bad_disk; ok $? "remove bad_disk"
[ ! -e /dev/mapper/bad_disk ]; ok $? "node removed"

# ---- seed 001: a fake 8 TB disk ----
printf '0 64 linear %s 0\n64 17179869120 zero\n' "$SDB1" | dms create fake_disk; ok $? "create fake_disk"
is "$(blockdev --getsize64 /dev/mapper/fake_disk)" 8796093022208 "8 TiB"
head -c 32768 /dev/urandom >r32
dd if=r32 of=/dev/mapper/fake_disk bs=32k oflag=direct status=none && cmp <(head -c 32768 sdb1.img) r32
ok $? "the first 32 KiB are written to the real device"
dd if=r32 of=/dev/mapper/fake_disk bs=32k seek=$((1 << 27)) oflag=direct status=none; ok $? "a write at 4 TiB succeeds"
is "$(dd if=/dev/mapper/fake_disk bs=32k skip=$((1 << 27)) count=1 iflag=direct status=none | tr -d '\0' | wc -c)" 0 "... and reads back as zeros (dropped)"

# ---- seed 002: slicing and splicing ----
truncate -s 2M store1 store2 store3
head -c 2M /dev/urandom >store1; head -c 2M /dev/urandom >store2
attach L1 store1; attach L2 store2; attach L3 store3
SIZE1=$(blockdev --getsize "$L1")
echo 0 "$SIZE1" linear "$L1" 0 | dms create new; ok $? "create new (linear, all of loop1)"
cmp /dev/mapper/new store1; ok $? "new reads as loop1"
echo 0 $((SIZE1 / 2)) linear "$L1" 0 | dms create half; ok $? "create half"
is "$(blockdev --getsize /dev/mapper/half)" $((SIZE1 / 2)) "half has half the sectors"
REST1=$((SIZE1 - SIZE1 / 2))
echo 0 $REST1 linear "$L1" $((SIZE1 / 2)) >table1
echo $REST1 "$(blockdev --getsize "$L2")" linear "$L2" 0 >>table1
dms create onenahalf table1; ok $? "create onenahalf from a table file"
cmp /dev/mapper/onenahalf <(tail -c 1M store1; cat store2); ok $? "onenahalf = the second half of loop1, then loop2"
l1=$(majmin "$L1")
is "$(dms table new)" "0 $SIZE1 linear $l1 0" "table new names loop1 as major:minor"
n=$(dms ls | wc -l)
is "$n" 4 "ls: four devices"
dms remove half && dms remove onenahalf; ok $? "remove half, onenahalf"

# ---- striping (seed 001's strip, seed 002's tiger) ----
SIZE=$(( $(blockdev --getsize "$L1") + $(blockdev --getsize "$L2") ))
echo 0 $SIZE striped 2 16 "$L1" 0 "$L2" 0 | dms create tiger; ok $? "create tiger: striped 2 16"
head -c $((SIZE * 512)) /dev/urandom >rt
dd if=rt of=/dev/mapper/tiger bs=1M oflag=direct status=none; ok $? "write the whole of tiger"
bad=0
for ((c = 0; c < SIZE / 16; c++)); do
	dev=store$((c % 2 + 1)); row=$((c / 2))
	cmp -s <(dd if=rt bs=8k skip=$c count=1 status=none) <(dd if=$dev bs=8k skip=$row count=1 status=none) || bad=$((bad + 1))
done
is "$bad" 0 "every 16-sector chunk is on the stripe and row the table gives ($((SIZE / 16)) chunks)"
is "$(dms status tiger)" "0 $SIZE striped 2 $l1 $(majmin "$L2") 1 AA" "status of a striped device"
mke2fs -q -F /dev/mapper/tiger; ok $? "mke2fs on tiger"
mkdir -p mnt; mount /dev/mapper/tiger mnt; ok $? "mount it"
defer "umount -l $TMP/mnt"
head -c 1M rt >rf; cp rf mnt/file && sync; ok $? "copy a file onto it"
out=$(dms remove tiger 2>&1); rc=$?
is "$rc" 1 "remove of a mounted device fails"
case $out in *"Device or resource busy"*) pass "... Device or resource busy" ;; *) fail "... $out" ;; esac
# (another process probing block devices for a moment counts too, as with the kernel: read again)
for i in 1 2 3 4 5; do c=$(dms info tiger | awk '/Open count/ {print $3}'); [ "$c" = 1 ] && break; sleep 0.2; done
is "$c" 1 "info: open count 1 while mounted"
umount mnt && mount -o ro /dev/mapper/tiger mnt && cmp mnt/file rf; ok $? "the file reads back after a remount"
umount mnt
dms remove tiger; ok $? "remove tiger once unmounted"

# ---- a refused table leaves the live one ----
out=$(echo 0 8 striped 2 3 "$L1" 0 "$L2" 0 | dms load new 2>&1); rc=$?
is "$rc" 1 "load of a bad striped table fails"
case $out in *"striped: Target length not divisible by chunk size"*) pass "... with the kernel's words" ;; *) fail "... $out" ;; esac
is "$(dms info new | awk -F': *' '/Tables present/ {print $2}')" "LIVE" "... the live table kept, no inactive one"
cmp /dev/mapper/new store1; ok $? "... and still serving"

# ---- load + resume swaps the table; suspend holds readers ----
echo 0 "$SIZE1" linear "$L2" 0 | dms load new; ok $? "load a new table"
is "$(dms info new | awk -F': *' '/Tables present/ {print $2}')" "LIVE & INACTIVE" "Tables present: LIVE & INACTIVE"
cmp /dev/mapper/new store1; ok $? "the live table serves until resume"
dms suspend new; ok $? "suspend"
is "$(dms info new | awk -F': *' '/State/ {print $2}')" "SUSPENDED" "State: SUSPENDED"
( dd if=/dev/mapper/new of=read.out bs=4k count=1 iflag=direct status=none; echo done >read.done ) &
rd=$!
sleep 1
[ ! -e read.done ]; ok $? "a reader waits while suspended"
dms resume new; ok $? "resume"
wait $rd
[ -e read.done ] && cmp read.out <(head -c 4096 store2); ok $? "the reader got the new table's data after resume"
is "$(dms info new | awk -F': *' '/Tables present/ {print $2}')" "LIVE" "Tables present: LIVE"

# ---- suspend freezes a mounted filesystem first (lockfs): its dirty data reaches the device ----
mkfs.ext4 -q -F /dev/mapper/new && mount /dev/mapper/new mnt; ok $? "mkfs and mount on new"
marker="partmap-lockfs-$RANDOM$RANDOM"
printf '%s' "$marker" >mnt/f
dms suspend new; ok $? "suspend with a mounted filesystem"
grep -qa "$marker" store2; ok $? "the file written just before is on the device (the filesystem was frozen)"
dms resume new; ok $? "resume"
echo more >>mnt/f; ok $? "the filesystem takes writes again (thawed)"
umount mnt

# ---- rename, deps, deferred removal ----
dms rename new renamed; ok $? "rename"
[ -b /dev/mapper/renamed ] && [ ! -e /dev/mapper/new ]; ok $? "the node follows the name"
is "$(dms deps renamed | sed 's/^ //')" "1 dependencies	: ($(majmin "$L2" | sed 's/:/, /'))" "deps"
exec 7</dev/mapper/renamed
dms remove --deferred renamed; ok $? "remove --deferred of an open device"
case $(dms info renamed) in *"DEFERRED REMOVE"*) pass "info: DEFERRED REMOVE" ;; *) fail "info: no DEFERRED REMOVE" ;; esac
exec 7<&-
for i in $(seq 50); do dms info renamed >/dev/null 2>&1 || break; sleep 0.1; done
dms info renamed >/dev/null 2>&1; is "$?" 1 "gone once its last opener closed it"

# ---- kpartx on a served device ----
echo 0 "$(blockdev --getsize "$L3")" linear "$L3" 0 | dms create disk0; ok $? "create disk0 over loop3"
printf 'label: dos\n2048,1024,83\n3072,,83\n' | sfdisk -q /dev/mapper/disk0 >/dev/null 2>&1
is "$("$PARTMAP" kpartx -l /dev/mapper/disk0 | awk '{print $1}' | tr '\n' ' ')" "disk0p1 disk0p2 " "kpartx -l names disk0's partitions as kpartx does"
"$PARTMAP" kpartx -a /dev/mapper/disk0 >/dev/null 2>&1; ok $? "kpartx -a /dev/mapper/disk0"
is "$(blockdev --getsz /dev/mapper/disk0p1 2>/dev/null)" 1024 "disk0p1 has 1024 sectors"
head -c 4096 /dev/urandom >r4
dd if=r4 of=/dev/mapper/disk0p2 bs=4k oflag=direct status=none && cmp r4 <(dd if=store3 bs=512 skip=3072 count=8 status=none)
ok $? "a write to disk0p2 lands at sector 3072 of loop3"
"$PARTMAP" kpartx -d /dev/mapper/disk0 >/dev/null 2>&1; ok $? "kpartx -d"
[ ! -e /dev/mapper/disk0p1 ]; ok $? "partitions gone"

# ---- a killed server: remove leaves nothing ----
srv=$(servers)
kill -9 $srv; sleep 0.5
dms remove disk0 >/dev/null 2>&1
dms remove_all >/dev/null 2>&1
is "$(servers)" "" "no server left"
! grep -q " /run/partmap/dm/fs " /proc/mounts; ok $? "no mount left"
! losetup -a | grep -q /run/partmap/dm; ok $? "no loop device on its files left"
is "$(ls /dev/mapper | grep -v '^control$' | tr '\n' ' ')" "" "no node left in /dev/mapper"
is "$(dms ls)" "No devices found" "ls: nothing"

# ---- the server goes with its last device ----
echo 0 8 zero | dms create z; ok $? "create z"
dms remove z; ok $? "remove z"
sleep 0.5
is "$(servers)" "" "the server exited with its last device"
done_testing
