#!/usr/bin/env bash
# The userspace device mapper reads and writes a loop device's file directly, at the device's offset
# (one hop less per request; src/vdev/vdev.c loop_file): the bytes must be those the loop device
# shows, with its offset and size limit, buffered or in direct I/O mode; writes land in the file at
# the offset and never past the size limit; a write through the loop device is seen by the served
# device and the reverse; the loop device stays held while a table uses it (losetup -d is deferred
# until the table goes); a loop device over a FUSE file keeps being read through the loop device.
# Judged with cmp/dd on the files and Debian's losetup. Private mount namespace, own /dev/mapper.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
udm_private
dms() { "$PARTMAP" dmsetup "$@"; }
cd "$TMP" || exit 1
server_pid() { ns_servers '^partmap serve dm$' | head -1; }
holds() { # holds FILE: does the server have FILE open?
	local p
	p=$(server_pid)
	[ -n "$p" ] && ls -l "/proc/$p/fd" 2>/dev/null | grep -qF -- "-> $(readlink -f "$1")"
}

head -c 16M /dev/urandom >f.bin
cp f.bin orig.bin
# 1 MiB in, 8 MiB long
attach LA "$TMP/f.bin" -o 1048576 --sizelimit 8388608
echo "0 16384 linear $LA 0" | dms create lf; ok $? "linear over a loop device with an offset and a size limit"
holds f.bin; ok $? "the server reads the loop device's file itself"
is "$(blockdev --getsize64 /dev/mapper/lf)" 8388608 "the size is the loop device's"
cmp /dev/mapper/lf <(dd if=f.bin bs=1M skip=1 count=8 status=none); ok $? "reads the file from the offset"
# a write in the middle, one at the device's last sector, then the file
head -c 4096 /dev/urandom >w1
head -c 512 /dev/urandom >w2
dd if=w1 of=/dev/mapper/lf bs=512 seek=3001 oflag=direct conv=notrunc status=none; ok $? "write 4 KiB at sector 3001"
dd if=w2 of=/dev/mapper/lf bs=512 seek=16383 oflag=direct conv=notrunc status=none; ok $? "write the last sector"
dd if=w2 of=/dev/mapper/lf bs=512 seek=16384 oflag=direct conv=notrunc status=none 2>/dev/null
[ $? -ne 0 ]; ok $? "a write past the device's end fails"
sync
cmp <(dd if=f.bin bs=512 skip=$((2048 + 3001)) count=8 status=none) w1; ok $? "... the 4 KiB are in the file at offset + 3001 sectors"
cmp <(dd if=f.bin bs=512 skip=$((2048 + 16383)) count=1 status=none) w2; ok $? "... the last sector too"
cmp <(dd if=f.bin bs=1M count=1 status=none) <(dd if=orig.bin bs=1M count=1 status=none); ok $? "... the bytes before the offset are untouched"
cmp <(dd if=f.bin bs=1M skip=9 status=none) <(dd if=orig.bin bs=1M skip=9 status=none); ok $? "... the bytes past the size limit are untouched"
cmp /dev/mapper/lf "$LA"; ok $? "the served device and the loop device read the same"
# through the loop device (O_DIRECT: past its page cache, as the kernel's DM is), then the served one
head -c 65536 /dev/urandom >w3
dd if=w3 of="$LA" bs=4096 seek=100 oflag=direct conv=notrunc status=none
cmp <(dd if=/dev/mapper/lf bs=4096 skip=100 count=16 iflag=direct status=none) w3; ok $? "a write through the loop device is read through the served device"
head -c 65536 /dev/urandom >w4
dd if=w4 of=/dev/mapper/lf bs=4096 seek=200 oflag=direct conv=notrunc status=none
cmp <(dd if="$LA" bs=4096 skip=200 count=16 iflag=direct status=none) w4; ok $? "a write through the served device is read through the loop device"
# discard: the loop device punches holes in its file; so does the served device (a discard through
# any served device failed with EIO: the front end range-checked it against a size of 0)
cp f.bin before.bin
blkdiscard -o 4194304 -l 1048576 /dev/mapper/lf; ok $? "blkdiscard of 1 MiB of the served device"
cmp <(dd if=/dev/mapper/lf bs=1M skip=4 count=1 iflag=direct status=none) <(head -c 1M /dev/zero); ok $? "... it reads as zeros"
cmp <(dd if=f.bin bs=1M skip=5 count=1 status=none) <(head -c 1M /dev/zero); ok $? "... in the file at the offset"
cmp <(dd if=f.bin bs=1M skip=6 status=none) <(dd if=before.bin bs=1M skip=6 status=none); ok $? "... and nothing after it"
cmp <(dd if=f.bin bs=1M count=5 status=none) <(dd if=before.bin bs=1M count=5 status=none); ok $? "... nor before it"
# held: losetup -d is deferred while the table uses the device
losetup -d "$LA"
[ -e "/sys/block/${LA#/dev/}/loop/backing_file" ]; ok $? "losetup -d while a table uses it: the loop device stays bound"
cmp /dev/mapper/lf <(dd if=f.bin bs=1M skip=1 count=8 status=none); ok $? "... and the served device still reads the file"
dms remove lf; ok $? "remove"
sleep 0.2
[ ! -e "/sys/block/${LA#/dev/}/loop/backing_file" ]; ok $? "... then the loop device is released"

# direct I/O mode: the file read and written with O_DIRECT
cp orig.bin g.bin
attach LB "$TMP/g.bin" --direct-io=on -o 2097152
is "$(cat "/sys/block/${LB#/dev/}/loop/dio")" 1 "a loop device in direct I/O mode"
echo "0 $(blockdev --getsz "$LB") linear $LB 0" | dms create lg; ok $? "linear over it"
holds g.bin; ok $? "the server reads its file itself"
cmp /dev/mapper/lg <(dd if=g.bin bs=1M skip=2 status=none); ok $? "reads the file from the offset"
dd if=w1 of=/dev/mapper/lg bs=512 seek=77 oflag=direct conv=notrunc status=none
dd if=w1 of=/dev/mapper/lg bs=512 seek=1000 conv=notrunc,fsync status=none
cmp <(dd if=g.bin bs=512 skip=$((4096 + 77)) count=8 status=none) w1; ok $? "an unaligned direct write lands at the offset"
cmp <(dd if=g.bin bs=512 skip=$((4096 + 1000)) count=8 status=none) w1; ok $? "a buffered write, fsync'd, too"
cmp /dev/mapper/lg "$LB"; ok $? "the served device and the loop device read the same"
dms remove lg

# a loop device over a FUSE file (an image partmap serves): read through the loop device
mkdir -p mnt
"$PARTMAP" fuse -r orig.bin mnt 2>err; ok $? "partmap fuse -r over a raw file"
defer "umount -l $TMP/mnt 2>/dev/null"
attach LC "$TMP/mnt/disk" -r
echo "0 $(blockdev --getsz "$LC") linear $LC 0" | dms create -r lc; ok $? "linear over a loop device on the FUSE file"
holds mnt/disk; is "$?" 1 "the server does not open the FUSE file itself"
cmp /dev/mapper/lc orig.bin; ok $? "it reads the bytes"
dms remove lc
# its server stopped (SIGSTOP), the file's attributes in the kernel's cache (the image server lets
# them be cached): a table over that loop device must not hang on the file. The status is asked in
# a process of its own, killed after 2 s: it must leave no zombie in the long-lived DM server.
fsrv=$(ns_servers 'partmap fuse -r orig\.bin mnt' | head -1)
stat mnt/disk >/dev/null
kill -STOP "$fsrv"; ok $? "the image's server stopped (SIGSTOP)"
defer "kill -CONT $fsrv"
start=$SECONDS
echo "0 $(blockdev --getsz "$LC") linear $LC 0" | timeout 30 "$PARTMAP" dmsetup create -r lh; rc=$?
is "$rc" 0 "a table over a loop device whose FUSE server is stopped: created ($((SECONDS - start)) s)"
sleep 0.5
dsrv=$(server_pid)
is "$(ps -o stat= --ppid "$dsrv" | grep -c Z)" 0 "... the DM server has no zombie child"
kill -CONT "$fsrv"
cmp /dev/mapper/lh orig.bin; ok $? "... its server continued, the device reads the bytes"
# the read-only tables' loop devices: read-only while the tables are there (BLKROSET), not after (the
# flag stays with the device number: the next user of that loop device got a read-only device)
rol=$(basename "$(readlink -f "/sys/dev/block/$(majmin /dev/mapper/lh)")")
is "$(cat "/sys/block/$rol/ro")" 1 "a read-only table's device is read-only ($rol)"
dms remove lh
is "$(cat "/sys/block/$rol/ro")" 0 "... removed, its loop device $rol is not left read-only"
losetup -d "$LC"
umount mnt
done_testing
