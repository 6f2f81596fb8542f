#!/usr/bin/env bash
# partmap fuse run by root raises its mount's read-ahead to 4 MiB at the first open (the kernel gives a
# FUSE mount 128 KiB), so that a loop device on a served file reads it in requests of max_read (256 KiB)
# instead of 128 KiB ones: the kernel's sysfs shows the value, strace the server's reads of the image.
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v strace >/dev/null && [ -c /dev/fuse ] ||
	{ fail "qemu-img, strace or /dev/fuse missing (make deps)"; done_testing; exit; }
[ "$(id -u)" -eq 0 ] || { fail "needs root (sysfs, loop devices)"; done_testing; exit; }
cd "$TMP" || exit 1

truncate -s 64M disk.raw
printf 'label: gpt\n2048,98304\n' | sfdisk -q disk.raw
dd if=/dev/urandom of=disk.raw bs=1M seek=1 count=48 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 disk.raw disk.qcow2
mkdir m
"$PARTMAP" fuse -r disk.qcow2 "$TMP/m"
ok $? "partmap fuse -r: exit 0"
defer "umount -l '$TMP/m'"
mm=$(awk -v m="$TMP/m" '$5 == m {print $3}' /proc/self/mountinfo)
[ -n "$mm" ] && [ -e "/sys/class/bdi/$mm/read_ahead_kb" ]; ok $? "the mount's bdi in sysfs ($mm)"
diag "read-ahead before the first open: $(cat "/sys/class/bdi/$mm/read_ahead_kb") KiB"
head -c 512 m/disk >/dev/null
is "$(cat "/sys/class/bdi/$mm/read_ahead_kb")" 4096 "after the first open: read-ahead 4096 KiB"

# a loop device on p1, read sequentially (its pages not cached yet: a fresh mount): the server reads
# the image in 256 KiB pieces, the data is the partition's
attach lo m/p1 -r
pid=$(pgrep -f " fuse -r disk.qcow2 $TMP/m$" | head -1)
strace -f -qq -e trace=pread64 -p "$pid" -o st.txt & sp=$!
defer "kill $sp"
sleep 0.5
dd if="$lo" bs=1M count=32 iflag=direct status=none | cmp -s - <(dd if=disk.raw bs=1M skip=1 count=32 status=none)
ok $? "loop device on p1 reads the partition's bytes"
sleep 0.2
kill "$sp"; wait "$sp" 2>/dev/null
big=$(grep -oE 'pread64\([0-9]+, .*, [0-9]+, [0-9]+\) = [0-9]+' st.txt | awk '{print $NF}' | sort -n | tail -1)
is "$big" 262144 "the server reads the image in 256 KiB requests (largest pread)"
grep -q 'max_read=262144' <(awk -v m="$TMP/m" '$2 == m' /proc/mounts); ok $? "mounted with max_read=262144"
losetup -d "$lo"
"$PARTMAP" fuse -u "$TMP/m"; ok $? "partmap fuse -u: exit 0"
done_testing
