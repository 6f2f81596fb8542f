#!/usr/bin/env bash
# kpartx -a/-d on every image format through the FUSE server, without the device mapper (part and
# loop backends), in a private mount namespace: ext4 partitions mounted and files with known checksums
# read back; -d leaves nothing (server, mount, loop device, node); a write through a fixed VHD's
# mapping lands in the image, none reaches a sparse image; kill -9 of the server then -d; two -a at
# once; a container's /dev.
. "$(dirname "$0")/lib.sh"
private_ns
command -v qemu-img >/dev/null && [ -c /dev/fuse ] || { fail "qemu-img or /dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1

defer cleanup_served

# files with known checksums, in ext4 file systems inside the partitions
mkdir -p files
head -c 3M /dev/urandom >files/random.bin
seq 1 100000 >files/numbers.txt
(cd files && sha256sum random.bin numbers.txt) >files.sha
mkfs() { mkfs.ext4 -q -F -d files -E offset=$(($2 * 512)) "$1" $(($3 / 2))k >/dev/null 2>&1; } # IMG START SECTORS
truncate -s 64M dos.raw
printf 'label: dos\n2048,20480,83\n22528,,5\n24576,32768,83\n' | sfdisk -q dos.raw
mkfs dos.raw 2048 20480 && mkfs dos.raw 24576 32768
truncate -s 64M gpt.raw
printf 'label: gpt\n2048,20480\n22528,32768\n' | sfdisk -q gpt.raw
mkfs gpt.raw 2048 20480 && mkfs gpt.raw 22528 32768
ok $? "ext4 file systems made inside the partitions"

check_files() { # check_files DEV WHAT
	mkdir -p mnt
	if mount -o ro "$1" mnt 2>/dev/null; then
		(cd mnt && sha256sum -c --quiet ../files.sha)
		ok $? "$2: files read back with their checksums"
		umount mnt
	else
		fail "$2: mount $1"
	fi
}
cycle() { # cycle IMG WHAT PARTS...
	local img=$1 what=$2 n
	shift 2
	"$PARTMAP" kpartx -a -v "$img" >out 2>err
	ok $? "$what: -a exit 0"
	n=$(sed -n 's/^add map \(loop[0-9]*\)p.*/\1/p' out | head -1)
	same "$("$PARTMAP" kpartx -l "$img" 2>/dev/null | cut -d' ' -f1)" "$(sed -n 's/^add map \([^ ]*\) .*/\1/p' out)" \
		"$what: -l names what -a made"
	for p in "$@"; do check_files "/dev/mapper/${n}p$p" "$what p$p"; done
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>err
	ok $? "$what: -d exit 0"
	is "$(served_leftovers)" "" "$what: nothing left after -d"
}

variants=(
	"qcow2|-O qcow2|qcow2"
	"qcow2|-O qcow2 -c -o compression_type=zstd|qcow2 zstd-compressed"
	"vmdk|-O vmdk|vmdk sparse"
	"vmdk|-O vmdk -o subformat=twoGbMaxExtentSparse|vmdk split"
	"vmdk|-O vmdk -o subformat=streamOptimized|vmdk streamOptimized"
	"vhd|-O vpc|vhd dynamic"
	"vhd|-O vpc -o subformat=fixed,force_size=on|vhd fixed"
	"vhdx|-O vhdx|vhdx"
	"vdi|-O vdi|vdi"
)
for base in dos gpt; do
	parts="1 5"; [ $base = gpt ] && parts="1 2"
	for v in "${variants[@]}"; do
		IFS='|' read -r ext args what <<<"$v"
		rm -f img.* img-*
		# shellcheck disable=SC2086
		qemu-img convert -f raw $args $base.raw img.$ext
		# shellcheck disable=SC2086
		cycle img.$ext "$base, $what" $parts
	done
done
# a qcow2 over a backing chain (vmdk), the overlay holding a changed file system
qemu-img convert -q -f raw -O vmdk dos.raw base.vmdk
qemu-img create -q -f qcow2 -b base.vmdk -F vmdk top.qcow2
cycle top.qcow2 "dos, qcow2 over vmdk" 1 5

# writes: a fixed VHD's mapping is read-write and the bytes land in the image; an image partmap does
# not write (a streamOptimized VMDK) is mapped read-only (said once) and its file is not changed
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on dos.raw fixed.vhd
"$PARTMAP" kpartx -a fixed.vhd 2>err; ok $? "fixed vhd: -a"
is "$(cat err)" "" "fixed vhd: no read-only notice"
n=$(basename "$(served_loops | head -1)")
printf 'written-through-the-map' | dd of=/dev/mapper/${n}p1 bs=512 seek=7 conv=sync,fsync status=none
ok $? "fixed vhd: write to the partition"
"$PARTMAP" kpartx -d fixed.vhd; ok $? "fixed vhd: -d"
is "$(dd if=fixed.vhd bs=512 skip=$((2048 + 7)) count=1 status=none | head -c 23)" written-through-the-map \
	"fixed vhd: the write landed in the image at the partition's offset"
# (the sparse formats are written now, tests/cmd/image-write*.t; streamOptimized VMDK is not)
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized dos.raw ro.vmdk
sum=$(sha256sum <ro.vmdk)
"$PARTMAP" kpartx -a ro.vmdk 2>err; ok $? "streamOptimized vmdk: -a exit 0 although read-only"
is "$(grep -c 'mapped read-only' err)" 1 "streamOptimized vmdk: says once that it is mapped read-only"
n=$(basename "$(served_loops | head -1)")
dd if=/dev/zero of=/dev/mapper/${n}p1 bs=512 count=1 conv=fsync status=none 2>/dev/null
[ $? -ne 0 ]; ok $? "streamOptimized vmdk: a write to its mapping fails"
is "$(blockdev --getro /dev/mapper/${n}p1)" 1 "streamOptimized vmdk: the partition is read-only"
"$PARTMAP" kpartx -d ro.vmdk
is "$(sha256sum <ro.vmdk)" "$sum" "streamOptimized vmdk: the image file is unchanged"
qemu-img convert -q -f raw -O qcow2 dos.raw ro.qcow2

# kill -9 of the server, then -d; then -a again
"$PARTMAP" kpartx -a ro.qcow2 2>/dev/null
pkill -9 -f "^partmap fuse .*$TMP/ro.qcow2"
sleep 0.3
n=$(basename "$(served_loops | head -1)")
# 12 MiB into p5: never read before, so not in the page cache
timeout 20 dd if=/dev/mapper/${n}p5 of=/dev/null bs=4k skip=3072 count=1 iflag=direct status=none 2>/dev/null
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ]; ok $? "killed server: an uncached read of the mapping fails (I/O error), nothing hangs"
"$PARTMAP" kpartx -d -v ro.qcow2 >out 2>&1; ok $? "killed server: -d exit 0"
grep -q "loop deleted" out; ok $? "killed server: -d detached the loop device"
is "$(served_leftovers)" "" "killed server: nothing left"
cycle ro.qcow2 "after a killed server" 1 5

# two -a at once: one server, one loop device, one set of maps
"$PARTMAP" kpartx -a ro.qcow2 2>/dev/null & "$PARTMAP" kpartx -a ro.qcow2 2>/dev/null & wait
is "$(served_loops | wc -l)" 1 "two -a at once: one loop device"
is "$(served_mounts | wc -l)" 1 "two -a at once: one server"
is "$(ls /dev/mapper | wc -l)" 3 "two -a at once: one set of maps"
"$PARTMAP" kpartx -d ro.qcow2; is "$(served_leftovers)" "" "two -a at once: -d leaves nothing"

# -d of an image that is not mapped; a server that cannot start (image gone between)
"$PARTMAP" kpartx -d ro.qcow2; ok $? "-d of an unmapped image: exit 0"
echo garbage >bad.qcow2; printf 'QFI\xfb\0\0\0\3' | dd of=bad.qcow2 conv=notrunc status=none
"$PARTMAP" kpartx -a bad.qcow2 2>err; is $? 1 "-a of a damaged qcow2: exit 1"
is "$(served_leftovers)" "" "-a of a damaged qcow2: nothing left"

# a container's /dev: a tmpfs with null, zero, fuse, loop-control and the loop nodes
nodes=()
for d in null zero random urandom fuse loop-control /dev/loop[0-9]*; do
	d=${d#/dev/}
	if [ -b "/dev/$d" ]; then nodes+=("$d b $(stat -c '%t %T %a' "/dev/$d")")
	elif [ -c "/dev/$d" ]; then nodes+=("$d c $(stat -c '%t %T %a' "/dev/$d")"); fi
done
PARTMAP=$PARTMAP unshare -m --propagation private bash -c '
	mount -t tmpfs -o mode=755 container-dev /dev || exit 9
	for e in "$@"; do read -r name t maj min mode <<<"$e"; mknod -m "$mode" "/dev/$name" "$t" $((16#$maj)) $((16#$min)); done
	"$PARTMAP" kpartx -a -v ro.qcow2 >out 2>/dev/null || exit 1
	n=$(sed -n "s/^add map \(loop[0-9]*\)p5 .*/\1/p" out)
	mkdir -p mnt && mount -o ro /dev/mapper/${n}p5 mnt || exit 2
	(cd mnt && sha256sum -c --quiet ../files.sha) || exit 3
	umount mnt
	"$PARTMAP" kpartx -d ro.qcow2 || exit 4
	[ -z "$(ls /dev/mapper)" ] || exit 5
' bash "${nodes[@]}"
is $? 0 "container /dev: -a, mount, files, -d on a qcow2"
is "$(served_leftovers)" "" "container /dev: nothing left"
done_testing
