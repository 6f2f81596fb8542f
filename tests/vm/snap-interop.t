#!/usr/bin/env bash
# The kernel's dm-snapshot as the oracle for partmap's snapshot target (src/target/snapshot.c): a
# persistent COW store written by partmap's userspace device mapper (PARTMAP_DM=user) is loaded by the
# kernel's dm-snapshot with the same table and reads the same bytes with the same status, and a store
# the kernel wrote (and went on writing) is read by partmap the same way.
. "$(dirname "$0")/lib.sh"
export DM_DISABLE_UDEV=1
pm() { PARTMAP_DM=user "$PARTMAP" dmsetup "$@"; }
truncate -s 64M "$TMP/origin.img"; truncate -s 16M "$TMP/cow.img"
head -c 64M /dev/urandom >"$TMP/origin.img"
attach L0 "$TMP/origin.img"; attach L1 "$TMP/cow.img"
S=$(blockdev --getsz "$L0")
defer 'PARTMAP_DM=user "$PARTMAP" dmsetup remove_all; dmsetup remove_all'
dd if=/dev/zero of="$L1" bs=4096 count=1 conv=notrunc,fsync status=none # a fresh COW

# A: partmap writes the store, the kernel reads it
echo "0 $S snapshot $L0 $L1 P 8" | pm create snap; ok $? "partmap: create snapshot (P 8) on a fresh COW"
echo "0 $S snapshot-origin $L0" | pm create orig; ok $? "partmap: create snapshot-origin"
dd if=/dev/urandom of=/dev/mapper/orig bs=4096 seek=100 count=300 oflag=direct status=none; ok $? "partmap: 300 origin writes (copies over several metadata areas)"
dd if=/dev/urandom of=/dev/mapper/snap bs=512 seek=7 count=3 oflag=direct status=none; ok $? "partmap: a partial-chunk write to the snapshot"
pst=$(pm status snap | cut -d' ' -f4-)
cat /dev/mapper/snap >"$TMP/snap.p"
pm remove orig && pm remove snap; ok $? "partmap: removed"
echo "0 $S snapshot $L0 $L1 P 8" | dmsetup create ksnap; ok $? "kernel: loads partmap's store"
is "$(dmsetup status ksnap | cut -d' ' -f4-)" "$pst" "kernel: the same status (allocated/total metadata)"
cmp -s /dev/mapper/ksnap "$TMP/snap.p"; ok $? "kernel: the snapshot reads the same bytes"
dmsetup remove ksnap

# B: the kernel goes on writing the store, partmap reads it
echo "0 $S snapshot $L0 $L1 P 8" | dmsetup create ksnap && echo "0 $S snapshot-origin $L0" | dmsetup create korig
ok $? "kernel: snapshot and origin over the same store"
dd if=/dev/urandom of=/dev/mapper/korig bs=4096 seek=2000 count=300 oflag=direct status=none
dd if=/dev/urandom of=/dev/mapper/ksnap bs=512 seek=99 count=1 oflag=direct status=none
kst=$(dmsetup status ksnap | cut -d' ' -f4-)
cat /dev/mapper/ksnap >"$TMP/snap.k"
dmsetup remove korig && dmsetup remove ksnap; ok $? "kernel: removed"
echo "0 $S snapshot $L0 $L1 P 8" | pm create snap; ok $? "partmap: loads the kernel's store"
is "$(pm status snap | cut -d' ' -f4-)" "$kst" "partmap: the same status"
cmp -s /dev/mapper/snap "$TMP/snap.k"; ok $? "partmap: the snapshot reads the same bytes"
# a table with another chunk size on an existing store: the header's wins, for both
pm remove snap
echo "0 $S snapshot $L0 $L1 P 16" | pm create snap
echo "0 $S snapshot $L0 $L1 P 16" | dmsetup create ksnap2 2>/dev/null || true
pt=$(pm table snap | cut -d' ' -f4-)
kt=$(dmsetup table ksnap2 2>/dev/null | cut -d' ' -f4-)
[ -n "$kt" ] && is "$pt" "$kt" "chunk 16 on a chunk-8 store: the same table shown (the header's chunk)" ||
	is "${pt#* * }" "P 8" "chunk 16 on a chunk-8 store: the header's chunk"
dmsetup remove ksnap2 >/dev/null 2>&1
pm remove snap
done_testing
