#!/usr/bin/env bash
# The same flow where /dev is a container's tmpfs snapshot (the kernel's new nodes never appear there:
# partmap makes them from sysfs numbers and removes them on -d), and on a 4096-byte-sector image.
. "$(dirname "$0")/lib.sh"
ns_reexec "$@"
# (it used to re-exec itself without removing the first shell's TMP: an empty directory left each run)
[ -n "$PARTMAP_NS_PARENT_TMP" ] && [ ! -e "$PARTMAP_NS_PARENT_TMP" ]; ok $? "the re-exec left no temporary directory behind"
# a /dev like a container's: a tmpfs holding a few nodes, copied by number from the real one
nodes=()
for n in null zero random urandom tty loop-control /dev/loop[0-9]*; do
	n=${n#/dev/}
	if [ -b "/dev/$n" ]; then nodes+=("$n b $(stat -c '%t %T %a' "/dev/$n")")
	elif [ -c "/dev/$n" ]; then nodes+=("$n c $(stat -c '%t %T %a' "/dev/$n")"); fi
done
mount -t tmpfs -o mode=755 container-dev /dev || { echo "Bail out! cannot mount a tmpfs on /dev"; exit 1; }
for e in "${nodes[@]}"; do
	read -r name t maj min mode <<<"$e"
	mknod -m "$mode" "/dev/$name" "$t" $((16#$maj)) $((16#$min))
done
[ -c /dev/null ] && [ -c /dev/loop-control ] && [ ! -e /dev/mapper ]; ok $? "container /dev: a tmpfs with null, zero, random, urandom, tty, loop-control, loop nodes, no /dev/mapper"

img=$TMP/c.img
mkimg "$img" 64M <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, type=5
start=12288, size=16384, type=83
S
defer release_image "$img"
nodes_before=$(ls /dev | sort)
chmod 0664 /dev/loop[0-9]*  # a mode the umask below would cut: the nodes made must still copy it
(umask 077; "$PARTMAP" kpartx -a -v "$img" >"$TMP/out" 2>&1); ok $? "container: -a exit 0 (umask 077)"
loop=$(loops_of "$img" | head -1); n=${loop#/dev/}
is "$(grep -c '^add map' "$TMP/out")" 3 "container: three maps"
[ -b /dev/mapper/${n}p5 ] && [ "$(blockdev --getsz /dev/mapper/${n}p5)" = 16384 ]; ok $? "container: /dev/mapper/${n}p5 is a block device of the right size"
real=$(readlink -f /dev/mapper/${n}p5)
[ -b "$real" ]; ok $? "container: partmap made the node $real itself"
is "$(stat -c %a "$real")" "$(stat -c %a "$loop")" "container: the node has its parent's mode whatever the umask (mknod obeys it)"
mkfs.ext4 -q -F /dev/mapper/${n}p5 >/dev/null 2>&1 && mkdir -p "$TMP/mnt" && mount /dev/mapper/${n}p5 "$TMP/mnt" &&
	echo container >"$TMP/mnt/f" && umount "$TMP/mnt"
ok $? "container: mkfs, mount, write, unmount"
"$PARTMAP" kpartx -d "$img"; ok $? "container: -d exit 0"
is "$(ls /dev | grep -vx mapper | sort)" "$nodes_before" "container: the nodes partmap made are gone again (only /dev/mapper stays)"
is "$(loops_of "$img")" "" "container: no loop device left"
dd if="$img" of="$TMP/p5" bs=512 skip=12288 count=16384 status=none
is "$(debugfs -R 'cat /f' "$TMP/p5" 2>/dev/null)" container "container: the file is in the image"
"$PARTMAP" kpartx -a --backend=loop "$img" >/dev/null 2>&1; ok $? "container: -a with the loop backend"
[ "$(blockdev --getsz /dev/mapper/${n}p5 2>/dev/null)" = 16384 ]; ok $? "container, loop backend: ${n}p5 has the right size"
"$PARTMAP" kpartx -d "$img"; ok $? "container, loop backend: -d"
is "$(loops_of "$img")" "" "container, loop backend: no loop device left"

# part backend, -r, and the partition's node cannot be made (a read-only /dev): -a fails and leaves no
# kernel partition behind (it used to stay, writable, half-made)
img2=$TMP/ro.img
cp "$img" "$img2"
defer release_image "$img2"
rl=$("$PARTMAP" losetup -f --show "$img2"); rn=${rl#/dev/}
defer "losetup -d $rl"
mount -o remount,ro /dev
"$PARTMAP" kpartx -a -r --backend=part "$rl" >/dev/null 2>&1; rc=$?
mount -o remount,rw /dev
is $rc 1 "-r, node not makeable: -a exit 1"
is "$(ls /sys/block/$rn | grep -c "^${rn}p")" 0 "-r, node not makeable: no kernel partition left behind"
"$PARTMAP" kpartx -d "$rl" >/dev/null 2>&1

# 4096-byte sectors: the image's loop device gets block size 4096 and a filesystem on a partition mounts
img=$TMP/4k.img
rm -f "$img"; truncate -s 64M "$img"
printf 'n\np\n1\n\n+16M\nn\ne\n2\n\n\nn\n\n+16M\nw\n' | fdisk -b 4096 "$img" >/dev/null 2>&1
defer release_image "$img"
for backend in part loop; do
	"$PARTMAP" kpartx -a --backend=$backend "$img"; ok $? "4096 $backend: -a"
	loop=$(loops_of "$img" | head -1); n=${loop#/dev/}
	is "$(cat /sys/block/$n/queue/logical_block_size)" 4096 "4096 $backend: the image's loop device has 4096-byte sectors"
	is "$(blockdev --getss /dev/mapper/${n}p5) $(blockdev --getsz /dev/mapper/${n}p5)" "4096 32768" "4096 $backend: ${n}p5 has 4096-byte sectors and 16 MiB"
	mkfs.ext4 -q -F -b 4096 /dev/mapper/${n}p5 >/dev/null 2>&1 && mount /dev/mapper/${n}p5 "$TMP/mnt" && umount "$TMP/mnt"
	ok $? "4096 $backend: a filesystem on ${n}p5 mounts"
	"$PARTMAP" kpartx -d "$img"; ok $? "4096 $backend: -d"
done
is "$(loops_of "$img")" "" "4096: no loop device left"
done_testing
