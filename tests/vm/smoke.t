#!/usr/bin/env bash
# The VM itself: a kernel with the device mapper, loop devices and partition scanning.
. "$(dirname "$0")/lib.sh"
dmsetup version >/dev/null 2>&1; ok $? "dmsetup talks to the kernel's device mapper"
[ -c /dev/mapper/control ]; ok $? "/dev/mapper/control exists"
truncate -s 8M "$TMP/s.img"; echo 'start=2048, size=4096' | sfdisk -q "$TMP/s.img" >/dev/null
attach l -P "$TMP/s.img"
sleep 0.2
[ -b "${l}p1" ]; ok $? "losetup -P makes the kernel's own partitions"
done_testing
