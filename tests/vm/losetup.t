#!/usr/bin/env bash
# partmap losetup where every loop device belongs to the test: -d with several devices, -D, -P.
. "$(dirname "$0")/lib.sh"
L() { "$PARTMAP" losetup "$@"; }
truncate -s 16M "$TMP/a.img"
printf 'start=2048, size=4096\nstart=6144, size=4096\n' | sfdisk -q "$TMP/a.img" >/dev/null
devs=()
for i in 1 2 3 4; do devs+=("$(L -f --show "$TMP/a.img")"); done
is "$(losetup -a | wc -l)" 4 "four devices attached"
same "$(L -a)" "$(losetup -a)" "-a: same as util-linux"
L -d "${devs[0]}" "${devs[1]}"; ok $? "-d with two devices"
is "$(losetup -a | wc -l)" 2 "-d: two left"
L -D; ok $? "-D"
is "$(losetup -a | wc -l)" 0 "-D: none left"
p=$(L -f --show -P "$TMP/a.img")
[ -b "${p}p1" ] && [ -b "${p}p2" ]; ok $? "-P: the kernel's partitions of the device"
is "$(cat /sys/block/${p#/dev/}/loop/partscan)" 1 "-P: partscan flag set"
L -d "$p"
is "$(losetup -a | wc -l)" 0 "nothing left"

# the loop driver loaded with max_part=7: a device's minor is 8 x its index, so the index comes from
# sysfs, not from the minor (a node under another name, MAJ:MIN in listings)
rmmod loop; ok $? "loop module unloaded (nothing holds it)"
modprobe loop max_part=7; ok $? "loop module loaded with max_part=7"
is "$(cat /sys/module/loop/parameters/max_part)" 7 "max_part is 7"
d0=$(L -f --show "$TMP/a.img"); d1=$(L -f --show "$TMP/a.img")
is "$d0 $d1 $(cat /sys/block/loop1/dev)" "/dev/loop0 /dev/loop1 7:8" "two devices, loop1 is 7:8"
same "$(L -l -O NAME,MAJ:MIN,BACK-FILE)" "$(losetup -l -O NAME,MAJ:MIN,BACK-FILE)" "-l MAJ:MIN: same as util-linux"
mknod "$TMP/other" b 7 8
is "$(L -l -n -O NAME "$TMP/other")" "/dev/loop1" "a node named otherwise (7:8) is loop1"
L -d "$TMP/other"; ok $? "-d through that node"
is "$(losetup -a | cut -d: -f1 | xargs)" "/dev/loop0" "-d detached loop1, not loop8"
mknod "$TMP/part" b 7 9
L -d "$TMP/part" 2>"$TMP/err"; is $? 1 "-d of a loop partition's node: exit 1"
L -d "$d0"; rm -f "$TMP/other" "$TMP/part"; losetup -D
rmmod loop && modprobe loop; ok $? "loop module back to its defaults"
is "$(cat /sys/module/loop/parameters/max_part)" 0 "max_part is 0 again"
done_testing
