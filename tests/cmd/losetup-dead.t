#!/usr/bin/env bash
# partmap losetup against util-linux losetup on a loop device whose backing file the kernel can no
# longer stat: a file of the userspace DM's server killed with -9 (the status ioctl fails). util-linux
# prints the backing file's device and inode empty (JSON null); partmap printed [0000]:0 and 0:0.
# (Not compared: the table form, whose column widths for such an empty column differ still.)
. "$(dirname "$0")/lib.sh"
private_ns "$@"
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
if [ -e /sys/module/dm_mod ] || grep -q device-mapper /proc/misc; then
	echo "1..0 # SKIP this kernel has a device mapper (the userspace one's server is the FUSE server here)"
	exit 0
fi
mkdir -p /run/partmap
mount -t tmpfs partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
export PARTMAP_DM=user
cd "$TMP" || exit 1
truncate -s 8M b.img
attach L "$TMP/b.img"
# a served device: a loop device on the userspace DM server's FUSE file (attributes never cached)
echo "0 8192 linear $L 0" | "$PARTMAP" dmsetup create dead; ok $? "a served device"
# ours: on this namespace's server's mount (other tests' servers have the same paths)
fs=$(stat -c %d /run/partmap/dm/fs)
dev=$(losetup -n -O NAME,BACK-MAJ:MIN | awk -v d="$((fs >> 8 & 0xfff)):$((fs & 0xff | fs >> 12 & 0xfff00))" '$2 == d {print $1}' | head -1)
[ -n "$dev" ]; ok $? "its loop device ($dev)"
defer '"$PARTMAP" dmsetup remove_all >/dev/null 2>&1; umount -l /run/partmap/dm/fs 2>/dev/null'
for p in $(servers); do kill -9 "$p"; done
# the kernel answers the status ioctl from the dead connection with an error a moment later
for _ in $(seq 50); do losetup -l -n -O BACK-INO "$dev" | grep -q '[0-9]' || break; sleep 0.1; done
! losetup -l -n -O BACK-INO "$dev" | grep -q '[0-9]'; ok $? "util-linux: the backing file's inode is not known any more"
for a in "$dev" "-l -J -O NAME,BACK-FILE,BACK-INO,BACK-MAJ:MIN $dev" \
	"-l --raw -O NAME,BACK-INO,BACK-MAJ:MIN $dev"; do
	# shellcheck disable=SC2086
	same "$("$PARTMAP" losetup $a 2>&1)" "$(losetup $a 2>&1)" "losetup $a: same output as util-linux"
done
done_testing
