#!/usr/bin/env bash
# partmap fuse logs a failed read of the image (here a damaged zstd-compressed cluster of a qcow2),
# with its offset in the virtual disk, also for a partition file; with no syslog listening it goes to
# the kernel log, read back with dmesg. The failing offset is found with dd (O_DIRECT, 4 KiB requests).
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v sfdisk >/dev/null && [ -c /dev/fuse ] ||
	{ fail "qemu-img, sfdisk or /dev/fuse missing (make deps)"; done_testing; exit; }
[ "$(id -u)" -eq 0 ] || { fail "needs root (dmesg)"; done_testing; exit; }
if [ -e /dev/log ]; then skip "a syslog daemon listens: the messages go there, not to the kernel log"; done_testing; exit; fi
cd "$TMP" || exit 1

truncate -s 8M disk.raw
printf 'label: gpt\n2048,12288\n' | sfdisk -q disk.raw
for i in $(seq 1 20); do cat /usr/share/common-licenses/*; done | head -c 6M |
	dd of=disk.raw bs=1M seek=1 conv=notrunc status=none
qemu-img convert -q -c -o compression_type=zstd -f raw -O qcow2 disk.raw disk.qcow2
# garbage over the compressed data near the file's end (past the tables, which come first)
sz=$(stat -c %s disk.qcow2)
dd if=/dev/urandom of=disk.qcow2 bs=1 seek=$((sz - 200000)) count=150000 conv=notrunc status=none
mkdir m
"$PARTMAP" fuse -r disk.qcow2 "$TMP/m"; ok $? "partmap fuse -r: exit 0"
defer "umount -l '$TMP/m'"
pid=$(pgrep -f " fuse -r disk.qcow2 $TMP/m$" | head -1)

# the disk: dd stops at the first 4 KiB that fails; the log names that offset
n=$(dd if=m/disk of=/dev/null bs=4k iflag=direct 2>&1 | awk '/bytes/ {print $1}')
[ -n "$n" ] && [ "$n" -lt $((8 << 20)) ]; ok $? "reading the disk fails at $n (an I/O error, not its end)"
sleep 0.3
dmesg | grep -q "partmap-fuse\[$pid\]: $TMP/disk.qcow2: read of 4096 bytes at $n failed: Input/output error"
ok $? "the kernel log has the failed read of 4096 bytes at $n"

# the partition file: it fails at the same byte of the disk, logged as the disk's offset
pn=$(dd if=m/p1 of=/dev/null bs=4k iflag=direct 2>&1 | awk '/bytes/ {print $1}')
is "$pn" $((n - (1 << 20))) "reading p1 fails at the same byte of the disk"
sleep 0.3
c=$(dmesg | grep -c "partmap-fuse\[$pid\]: $TMP/disk.qcow2: read of 4096 bytes at $n failed")
is "$c" 2 "the partition's failed read is logged with its offset in the disk"
"$PARTMAP" fuse -u "$TMP/m"; ok $? "partmap fuse -u: exit 0"
done_testing
