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
done_testing
