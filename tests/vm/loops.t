#!/usr/bin/env bash
# The loop devices partmap makes: with the loop module freshly loaded (its 8 free devices, nothing
# else), -a takes the free ones first, and -d removes the ones the kernel had to create for it: -a
# then -d leave /sys/block as it was. Also the image's whole-file loop (dm backend), -l (makes none),
# a device still held at -d (stays, detached when its holder closes it) and a container's /dev
# (partmap removes the nodes it made for removed devices).
. "$(dirname "$0")/lib.sh"
loopset() { ls /sys/block | grep '^loop' | sort -V | xargs; }
rmmod loop && modprobe loop; ok $? "loop module loaded afresh"
base=$(loopset)
is "$base" "loop0 loop1 loop2 loop3 loop4 loop5 loop6 loop7" "8 free loop devices, no others"

img=$TMP/p12.img
truncate -s 64M "$img"
args=(); for i in $(seq 1 12); do args+=(-n "$i:0:+2M"); done
sgdisk "${args[@]}" "$img" >/dev/null
defer release_image "$img"

"$PARTMAP" kpartx -l "$img" >"$TMP/out"; ok $? "-l exit 0"
is "$(head -1 "$TMP/out" | cut -d' ' -f1)" loop0p1 "-l: named after the free loop0"
is "$(loopset)" "$base" "-l makes no loop device"

# loop backend: the whole-file loop and 7 partitions on the 8 free devices, 5 devices made
"$PARTMAP" kpartx -a --backend=loop "$img" 2>"$TMP/err"; ok $? "loop backend: -a exit 0"
is "$(loopset)" "$base loop8 loop9 loop10 loop11 loop12" "loop backend: 5 devices made (loop8-12)"
is "$(losetup -a | wc -l)" 13 "loop backend: 13 bound"
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; ok $? "loop backend: -d exit 0"
is "$(cat "$TMP/err")" "" "loop backend: -d says nothing"
is "$(loopset)" "$base" "loop backend: -d removed the 5 made for partmap, kept the 8 that were there"
is "$(losetup -a | wc -l)" 0 "loop backend: nothing bound"
# -a by one process, -d by another: each device's tag says whether it was made for partmap
"$PARTMAP" kpartx -a --backend=loop "$img" && "$PARTMAP" kpartx -u --backend=loop "$img"
is "$(loopset)" "$base loop8 loop9 loop10 loop11 loop12" "loop backend: -u keeps the devices in place"
"$PARTMAP" kpartx -d "$img"
is "$(loopset)" "$base" "loop backend: -a, -u, -d: as it was"
# -u with a partition changed: its device (made for partmap) is detached and the new mapping takes a
# free one, maybe that very device: still made for partmap, removed by the -d after
cp "$img" "$TMP/p12b.img"
"$PARTMAP" kpartx -a --backend=loop "$img"
sgdisk -d 12 -n 12:0:+1M "$img" >/dev/null
"$PARTMAP" kpartx -u --backend=loop "$img"; ok $? "loop backend, partition 12 changed: -u exit 0"
is "$(blockdev --getsz /dev/mapper/loop0p12)" 2048 "loop backend, partition 12 changed: p12 remade (1 MiB)"
"$PARTMAP" kpartx -d "$img"
is "$(loopset)" "$base" "loop backend, -a, change, -u, -d: as it was"
mv "$TMP/p12b.img" "$img"

# the image's own loop device, made for partmap when none is free (dm backend): -d removes it too
held=()
truncate -s 1M "$TMP/hold.img"
for i in $(seq 0 7); do held+=("$(losetup -f --show "$TMP/hold.img")"); done
is "$(losetup -a | wc -l)" 8 "the 8 free devices bound by the test"
is "$("$PARTMAP" kpartx -l "$img" | head -1 | cut -d' ' -f1)" loop8p1 "-l, none free: named after the loop8 the kernel would make"
is "$(loopset)" "$base" "-l, none free: makes no loop device"
"$PARTMAP" kpartx -a "$img" 2>"$TMP/err"; ok $? "dm backend: -a exit 0"
is "$(loopset)" "$base loop8" "dm backend: the image's loop device made (loop8)"
"$PARTMAP" kpartx -d "$img"; ok $? "dm backend: -d exit 0"
is "$(loopset)" "$base" "dm backend: loop8 removed"
# the part backend opens the image's loop device for BLKPG: that descriptor must not defer the
# detach (it did: the device then stayed)
"$PARTMAP" kpartx -a --backend=part "$img"; ok $? "part backend: -a exit 0"
is "$(loopset)" "$base loop8" "part backend: the image's loop device made (loop8)"
"$PARTMAP" kpartx -d "$img"; ok $? "part backend: -d exit 0"
is "$(loopset)" "$base" "part backend: loop8 removed"
# the kernel refusing the removal a while (EBUSY: udev or blkid still has the device open): tried
# again, 25 ms apart, at most 40 times; then a warning, and -d still succeeds (strace injects EBUSY
# into the run's last ioctl calls, the removal's, found by a run without it)
"$PARTMAP" kpartx -a "$img"
strace -o "$TMP/dry" -e trace=ioctl "$PARTMAP" kpartx -d "$img"
k=$(grep -c '^ioctl' "$TMP/dry")
grep -q LOOP_CTL_REMOVE "$TMP/dry" && [ "$(grep '^ioctl' "$TMP/dry" | tail -1 | grep -c LOOP_CTL_REMOVE)" = 1 ]
ok $? "EBUSY: the removal is the run's last ioctl (number $k)"
"$PARTMAP" kpartx -a "$img"
strace -o "$TMP/log" -e trace=ioctl -e inject=ioctl:error=EBUSY:when=$k..$((k + 1)) "$PARTMAP" kpartx -d "$img" 2>"$TMP/err"
ok $? "EBUSY twice: -d exit 0"
is "$(grep -c LOOP_CTL_REMOVE "$TMP/log")" 3 "EBUSY twice: removed at the third try"
is "$(loopset)" "$base" "EBUSY twice: the device is gone"
is "$(grep -v '^strace' "$TMP/err")" "" "EBUSY twice: no warning"
"$PARTMAP" kpartx -a "$img"
strace -o "$TMP/log" -e trace=ioctl -e inject=ioctl:error=EBUSY:when=$k+ "$PARTMAP" kpartx -d "$img" 2>"$TMP/err"
ok $? "EBUSY for ever: -d exit 0 all the same"
is "$(grep -c LOOP_CTL_REMOVE "$TMP/log")" 40 "EBUSY for ever: 40 tries"
grep -q "loop8: warning: cannot remove the loop device made for partmap" "$TMP/err"; ok $? "EBUSY for ever: a warning names the device"
is "$(loopset)" "$base loop8" "EBUSY for ever: the device stays, free"
for l in "${held[@]}"; do losetup -d "$l"; done
rmmod loop && modprobe loop && [ "$(loopset)" = "$base" ]; ok $? "loop module reloaded: the 8 devices again"

# a device made for partmap that another process still holds at -d: detached when that one closes
# it, and left (free) rather than waited for
"$PARTMAP" kpartx -a --backend=loop "$img"
exec 8</dev/loop12
s=$(date +%s)
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; ok $? "held device: -d exit 0"
[ $(( $(date +%s) - s )) -le 1 ]; ok $? "held device: -d does not wait for it"
is "$(loopset)" "$base loop12" "held device: the other 4 removed, loop12 stays"
exec 8<&-
for _ in $(seq 20); do [ -e /sys/block/loop12/loop/backing_file ] || break; sleep 0.1; done
[ ! -e /sys/block/loop12/loop/backing_file ]; ok $? "held device: detached when its holder closed it"
"$PARTMAP" kpartx -a --backend=loop "$img" && "$PARTMAP" kpartx -d "$img"
is "$(loopset)" "$base loop12" "held device: a free device now, used and kept as the others"
rmmod loop && modprobe loop; ok $? "loop module reloaded"

# a container's /dev (a tmpfs with a few nodes copied): partmap makes the nodes of the devices it
# takes, and removes those of the devices it removes
unshare -m bash -c '
	set -e
	nodes=()
	for n in null zero loop-control /dev/loop[0-9]*; do
		n=${n#/dev/}
		if [ -b "/dev/$n" ]; then nodes+=("$n b $(stat -c "%t %T %a" "/dev/$n")")
		else nodes+=("$n c $(stat -c "%t %T %a" "/dev/$n")"); fi
	done
	mount -t tmpfs -o mode=755 cdev /dev
	for e in "${nodes[@]}"; do read -r name t maj min mode <<<"$e"; mknod -m "$mode" "/dev/$name" $t $((16#$maj)) $((16#$min)); done
	mkdir /dev/mapper
	ls /dev >'"$TMP"'/dev.before
	"$PARTMAP" kpartx -a --backend=loop "'"$img"'"
	ls /dev >'"$TMP"'/dev.during
	"$PARTMAP" kpartx -d "'"$img"'"
	ls /dev >'"$TMP"'/dev.after
'
ok $? "container /dev: -a and -d exit 0"
grep -qx loop12 "$TMP/dev.during"; ok $? "container /dev: partmap made /dev/loop12 for the device it made"
same "$(cat "$TMP/dev.after")" "$(cat "$TMP/dev.before")" "container /dev: the nodes of removed devices are gone again"
is "$(loopset)" "$base" "container /dev: the devices made are removed"
done_testing
