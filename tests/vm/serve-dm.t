#!/usr/bin/env bash
# Images that are not raw over the device mapper: kpartx -a on a compressed qcow2, a streamOptimized
# VMDK and a fixed VHD starts the FUSE server (fuse.ko), attaches a loop device to its disk file and
# makes linear maps over it; the maps read the partitions' bytes; Debian's kpartx -d on that loop
# device removes partmap's maps as it does for raw images, and partmap's -d then leaves nothing.
. "$(dirname "$0")/lib.sh"
export DM_DISABLE_UDEV=1
d=/tests/data/serve
nmaps() { dmsetup ls 2>/dev/null | grep -vc '^No devices'; }
leftovers() { { losetup -n -O NAME,BACK-FILE | awk '$2 ~ "^/run/partmap/"'; grep ' fuse.partmap ' /proc/mounts;
	dmsetup ls 2>/dev/null | grep -v '^No devices'; } 2>/dev/null; }
defer 'for l in $(losetup -n -O NAME,BACK-FILE | awk "\$2 ~ \"^/run/partmap/\" {print \$1}"); do dmsetup remove_all; losetup -d $l; done'
for img in disk.qcow2 disk.vmdk fixed.vhd; do
	cp "$d/$img" "$TMP/$img"
	f=$TMP/$img
	"$PARTMAP" kpartx -a -v "$f" >"$TMP/out" 2>"$TMP/err"
	ok $? "$img: -a exit 0"
	grep -q "backend dm" "$TMP/err"; ok $? "$img: mapped over the device mapper"
	l=$(losetup -n -O NAME,BACK-FILE | awk '$2 ~ "^/run/partmap/" {print $1}' | head -1)
	n=${l#/dev/}
	is "$(nmaps)" 3 "$img: three maps (p1, the extended p2, p5)"
	is "$(dmsetup table ${n}p5 | cut -d' ' -f1-3,5)" "0 16384 linear 12288" "$img: p5 is linear over the served loop device at 12288"
	read -r maj min <<<"$(stat -L -c '%t %T' "$l")"
	is "$(dmsetup info -c --noheadings -o uuid ${n}p5)" "part5-devnode_$((16#$maj)):$((16#$min))_Wh5pYvM" \
		"$img: kpartx's UUID for a parent without one"
	cmp -s /dev/mapper/${n}p5 <(dd if=$d/disk.raw bs=512 skip=12288 count=16384 status=none)
	ok $? "$img: /dev/mapper/${n}p5 reads the partition's bytes"
	if [ $img = fixed.vhd ]; then
		printf 'vm-write' | dd of=/dev/mapper/${n}p1 conv=notrunc,fsync status=none
		ok $? "$img: a write through the map"
	fi
	kpartx -d "$l" >/dev/null 2>&1
	is "$(nmaps)" 0 "$img: Debian's kpartx -d on the loop device removed partmap's maps"
	"$PARTMAP" kpartx -d -v "$f" >"$TMP/out" 2>&1
	ok $? "$img: partmap -d exit 0"
	is "$(leftovers)" "" "$img: nothing left (loop device, mount, maps)"
	if [ $img = fixed.vhd ]; then
		is "$(dd if=$f bs=512 skip=2048 count=1 status=none | head -c 8)" vm-write "$img: the write landed in the image"
	fi
done
done_testing
