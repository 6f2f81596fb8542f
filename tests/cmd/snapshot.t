#!/usr/bin/env bash
# kpartx -a --snapshot and partmap fuse --snapshot (qemu-nbd --snapshot): read-write mappings whose
# writes go to a temporary qcow2 overlay, thrown away at -d / unmount:
# - every format partmap reads (raw, qcow2, vmdk, vhd, vhdx, vdi): seeded writes through p1 read back,
#   mkfs and files on p2 mounted again, while mapped; the image's sha256 unchanged after -d (and
#   while mapped, qemu-img compare against a copy made before: equal);
# - nothing left: loop devices, mounts, servers, and no file in $TMPDIR (the overlay is unlinked once
#   open: the server holds it as "(deleted)"); also after kill -9 of the server;
# - locks: the image's lock bytes are those qemu-nbd --snapshot holds on it (measured here, through
#   a unix socket: no nbd module needed); qemu-img reads it meanwhile; qemu-io may not write a qcow2
#   (but a raw image, as with qemu-nbd); an image qemu-io writes is refused (exit 3, nothing mapped);
# - a chmod 0444 image whose ext4 needs a journal replay: a read-only mapping cannot mount it, a
#   --snapshot one can (the replay goes to the overlay), and the image still needs its replay after;
# - -a with and without --snapshot do not mix; -r --snapshot is refused; partmap fuse --snapshot.
. "$(dirname "$0")/lib.sh"
private_ns
for c in qemu-img qemu-io qemu-nbd mkfs.ext4 e2fsck dumpe2fs sfdisk; do
	command -v $c >/dev/null || { fail "$c missing (tests/install-deps.sh installs it)"; done_testing; exit; }
done
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1
mkdir -p tmpdir files mnt fmnt
export TMPDIR=$TMP/tmpdir

# what cleanup_served undoes, and the loop devices over this test's files, qemu-nbd's servers
cleanup_all() {
	local l
	cleanup_served
	for l in $(losetup -n -O NAME,BACK-FILE | awk -v t="$TMP/" 'index($2, t) == 1 {print $1}'); do losetup -d "$l"; done
	pkill -9 -f "qemu-nbd .*$TMP/" 2>/dev/null
}
defer cleanup_all
# wait (at most 5 s) for the servers of this test to end: -d unmounts lazily, the server then exits
servers_gone() { for _ in $(seq 100); do [ -z "$(served_servers)" ] && return 0; sleep 0.05; done; }
leftovers() {
	servers_gone
	served_leftovers
	{ losetup -n -O NAME,BACK-FILE | awk -v t="$TMP/" 'index($2, t) == 1 {print "loop " $1}'
	  grep "^/dev/" /proc/mounts | awk -v t="$TMP/" 'index($2, t) == 1 {print "mount " $2}'
	  ls -A tmpdir | sed 's/^/tmp /'; } 2>/dev/null
}
# the partition nodes -a -v made: "add map loopNpM ..."
node() { sed -n "s/^add map \(loop[0-9]*p$1\) .*/\/dev\/mapper\/\1/p" out; }
# the byte-range locks held on a file, as "100 201 203"
locks_on() { grep " [0-9a-f]*:[0-9a-f]*:$(stat -c %i "$1") " /proc/locks | awk '{print $(NF-1)}' | sort -n | paste -sd' '; }

head -c 4M /dev/urandom >pat.bin
head -c 3M /dev/urandom >files/random.bin
seq 1 100000 >files/numbers.txt
(cd files && sha256sum random.bin numbers.txt) >files.sha

# the disk: p1 (sectors 2048-22527) gets seeded writes, p2 (22528-) a file system
truncate -s 48M disk.raw
printf 'label: dos\n2048,20480\n22528,\n' | sfdisk -q disk.raw
dd if=/dev/urandom of=disk.raw bs=512 seek=2048 count=20480 conv=notrunc status=none

# ---- every format ----
for fmt in raw qcow2 vmdk vhd vhdx vdi; do
	img=d-$fmt.$fmt
	if [ $fmt = raw ]; then cp disk.raw $img; else qemu-img convert -O "$([ $fmt = vhd ] && echo vpc || echo $fmt)" disk.raw $img; fi
	sum=$(sha256sum <$img)
	cp $img before-$img
	"$PARTMAP" kpartx -a -v --snapshot $img >out 2>err
	ok $? "$fmt: -a --snapshot"
	is "$(grep -c read-only err)" 0 "$fmt: mapped read-write"
	p1=$(node 1) p2=$(node 2)
	spid=$(pgrep -f "partmap fuse --snapshot $TMP/$img ")
	ls -l /proc/$spid/fd 2>/dev/null | grep -q "$TMPDIR/partmap-snapshot\.[^ ]* (deleted)"
	ok $? "$fmt: the server holds its overlay, unlinked, in \$TMPDIR"
	is "$(ls -A tmpdir)" "" "$fmt: no file in \$TMPDIR while mapped"
	# seeded writes through p1: 24 of 512 B to 256 KiB, aligned and not
	cp <(dd if=disk.raw bs=512 skip=2048 count=20480 status=none) ref-p1
	RANDOM=7
	for ((i = 0; i < 24; i++)); do
		len=$(((RANDOM * 32768 + RANDOM) % 262144 + 512)) off=$(((RANDOM * 32768 + RANDOM) % (20480 * 512 - 262656)))
		((RANDOM % 2)) && off=$((off / 512 * 512)) len=$((len / 512 * 512))
		src=$((RANDOM % 1048576))
		for dst in "$p1" ref-p1; do
			dd if=pat.bin of="$dst" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
				skip=$src count=$len seek=$off status=none
		done
	done
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cmp -s "$p1" ref-p1
	ok $? "$fmt: p1 reads back 24 seeded writes"
	mkfs.ext4 -q -F -d files "$p2" >/dev/null 2>&1 && mount "$p2" mnt && cp pat.bin mnt/ && umount mnt
	ok $? "$fmt: mkfs.ext4 on p2, files copied in"
	mount -o ro "$p2" mnt && (cd mnt && sha256sum -c --quiet ../files.sha && cmp -s pat.bin ../pat.bin)
	ok $? "$fmt: p2 mounted again: the files read back"
	umount mnt 2>/dev/null
	e2fsck -n -f "$p2" >/dev/null 2>&1
	ok $? "$fmt: fsck -n of p2 clean"
	qemu-img compare -q before-$img $img
	ok $? "$fmt: qemu-img reads the image while mapped: equal to the copy made before"
	"$PARTMAP" kpartx -d -v $img >out 2>err
	ok $? "$fmt: -d"
	is "$(leftovers)" "" "$fmt: nothing left after -d (loop devices, mounts, servers, temporary files)"
	is "$(sha256sum <$img)" "$sum" "$fmt: the image is byte-identical"
	rm -f before-$img ref-p1
done

# ---- locks, judged against qemu-nbd --snapshot ----
for fmt in raw qcow2 vhd; do
	img=d-$fmt.$fmt
	qemu-nbd --snapshot -f "$([ $fmt = vhd ] && echo vpc || echo $fmt)" -k "$TMP/nbd.sock" "$TMP/$img" 2>/dev/null &
	npid=$!
	for _ in $(seq 100); do [ -S nbd.sock ] && break; sleep 0.05; done
	want=$(locks_on $img)
	kill $npid; wait $npid 2>/dev/null
	"$PARTMAP" kpartx -a -v --snapshot $img >out 2>err
	got=$(locks_on $img)
	[ -n "$want" ]; ok $? "$fmt: qemu-nbd --snapshot locks bytes $want"
	is "$got" "$want" "$fmt: kpartx -a --snapshot holds the same lock bytes"
	qemu-img info $img >/dev/null 2>&1
	ok $? "$fmt: qemu-img info (no -U) opens the image meanwhile"
	qemu-io -c 'read 0 512' -r $img >/dev/null 2>&1
	ok $? "$fmt: qemu-io -r reads it meanwhile"
	cp $img w-$img
	qemu-io -c 'write 0 512' $img >qout 2>&1
	rc=$?
	if [ $fmt = raw ]; then
		is $rc 0 "raw: qemu-io may write it meanwhile (qemu-nbd --snapshot shares a raw image's write)"
		cp w-$img $img
	else
		[ $rc -ne 0 ] && grep -q 'lock' qout; ok $? "$fmt: qemu-io may not write it meanwhile (lock)"
	fi
	rm -f w-$img
	"$PARTMAP" kpartx -d $img
done
# an image qemu writes: refused, nothing mapped
sleep 5 | qemu-io d-qcow2.qcow2 >/dev/null 2>&1 &
qpid=$!
sleep 0.5
"$PARTMAP" kpartx -a --snapshot d-qcow2.qcow2 >out 2>err
is $? 3 "an image qemu-io writes: -a --snapshot exits 3"
grep -q 'in use' err; ok $? "the message says the image is in use"
is "$(leftovers)" "" "nothing mapped"
kill $qpid 2>/dev/null; wait $qpid 2>/dev/null

# ---- with and without --snapshot do not mix ----
"$PARTMAP" kpartx -a -v --snapshot d-raw.raw >out 2>err
"$PARTMAP" kpartx -a d-raw.raw >out2 2>err
[ $? -eq 1 ] && grep -q 'with --snapshot' err; ok $? "raw: -a of an image mapped --snapshot is refused"
"$PARTMAP" kpartx -a -v --snapshot d-raw.raw >out2 2>err
ok $? "raw: -a --snapshot again: done (nothing new)"
"$PARTMAP" kpartx -u d-raw.raw >out2 2>err
ok $? "raw: -u (without --snapshot) of the --snapshot mapping: exit 0"
pgrep -f "partmap fuse --snapshot $TMP/d-raw.raw " >/dev/null && grep -q ' fuse.partmap ' /proc/mounts
ok $? "raw: still served --snapshot after -u"
"$PARTMAP" kpartx -l d-raw.raw >list
grep -q "^$(basename "$(node 1)") " list; ok $? "raw: -l names the --snapshot mapping's devices"
"$PARTMAP" kpartx -d d-raw.raw
is "$(leftovers)" "" "raw: -d (without --snapshot) undoes the --snapshot mapping"
"$PARTMAP" kpartx -a d-raw.raw
"$PARTMAP" kpartx -a --snapshot d-raw.raw >out 2>err
[ $? -eq 1 ] && grep -q 'without --snapshot' err; ok $? "raw: -a --snapshot of an image mapped plainly is refused"
"$PARTMAP" kpartx -d d-raw.raw
"$PARTMAP" kpartx -a d-qcow2.qcow2
"$PARTMAP" kpartx -a --snapshot d-qcow2.qcow2 >out 2>err
[ $? -eq 1 ] && grep -q 'without --snapshot' err; ok $? "qcow2: -a --snapshot of an image mapped plainly is refused"
"$PARTMAP" kpartx -u --snapshot d-qcow2.qcow2 >out 2>err
[ $? -eq 1 ] && grep -q 'without --snapshot' err; ok $? "qcow2: -u --snapshot of an image mapped plainly is refused"
"$PARTMAP" kpartx -d d-qcow2.qcow2
"$PARTMAP" kpartx -a -r --snapshot d-qcow2.qcow2 >out 2>err
[ $? -eq 1 ] && grep -q 'give one' err; ok $? "-r --snapshot is refused"
attach dev d-raw.raw
"$PARTMAP" kpartx -a --snapshot "$dev" >out 2>err
[ $? -eq 1 ] && grep -q 'not block devices' err; ok $? "--snapshot of a block device is refused"
losetup -d "$dev"
is "$(leftovers)" "" "nothing left"

# ---- kill -9 of a --snapshot server ----
"$PARTMAP" kpartx -a -v --snapshot d-vdi.vdi >out 2>err
sum=$(sha256sum <d-vdi.vdi)
dd if=pat.bin of="$(node 1)" bs=64k count=8 conv=fsync status=none
pkill -9 -f "partmap fuse --snapshot $TMP/d-vdi.vdi "
servers_gone
is "$(ls -A tmpdir)" "" "kill -9: the overlay went with the server"
"$PARTMAP" kpartx -d d-vdi.vdi >/dev/null 2>&1
ok $? "kill -9: -d"
is "$(leftovers)" "" "kill -9: nothing left"
is "$(sha256sum <d-vdi.vdi)" "$sum" "kill -9: the image is byte-identical"

# ---- a write-protected image whose ext4 needs a journal replay ----
# the file system is copied while mounted, after a sync: its superblock says needs_recovery
truncate -s 32M fs.img
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 fs.img
attach fsl fs.img
mount "$fsl" mnt && cp files/random.bin files/numbers.txt mnt/ && sync && cp fs.img fs-crash.img && umount mnt
ok $? "an ext4 copied while mounted"
losetup -d "$fsl"
dumpe2fs -h fs-crash.img 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'
ok $? "its superblock says needs_recovery"
truncate -s 40M jr.raw
printf 'label: dos\n2048,\n' | sfdisk -q jr.raw
dd if=fs-crash.img of=jr.raw bs=512 seek=2048 conv=notrunc status=none
qemu-img convert -O qcow2 jr.raw jr.qcow2
for img in jr.raw jr.qcow2; do
	chmod 0444 $img
	sum=$(sha256sum <$img)
	"$PARTMAP" kpartx -a -r -v $img >out 2>err
	mount -o ro "$(node 1)" mnt 2>/dev/null
	[ $? -ne 0 ]; ok $? "$img: mapped -r, the file system cannot be mounted (its journal needs a replay)"
	umount mnt 2>/dev/null
	"$PARTMAP" kpartx -d $img
	"$PARTMAP" kpartx -a -v --snapshot $img >out 2>err
	ok $? "$img: -a --snapshot of the chmod 0444 image"
	mount "$(node 1)" mnt && (cd mnt && sha256sum -c --quiet ../files.sha)
	ok $? "$img: mounted: the journal replayed, the files there"
	umount mnt 2>/dev/null
	e2fsck -n -f "$(node 1)" >/dev/null 2>&1
	ok $? "$img: fsck -n clean after the replay"
	"$PARTMAP" kpartx -d $img
	is "$(leftovers)" "" "$img: nothing left after -d"
	is "$(sha256sum <$img)" "$sum" "$img: the image is byte-identical"
	qemu-img convert -O raw $img jr.out
	dd if=jr.out of=jr.fs bs=512 skip=2048 status=none
	dumpe2fs -h jr.fs 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'
	ok $? "$img: its file system still needs its replay"
	rm -f jr.out jr.fs
done

# ---- partmap fuse --snapshot ----
sum=$(sha256sum <d-vhdx.vhdx)
"$PARTMAP" fuse --snapshot d-vhdx.vhdx fmnt
ok $? "fuse --snapshot"
head -c 1M pat.bin | dd of=fmnt/p1 bs=64k conv=notrunc,fsync status=none
ok $? "fuse --snapshot: 1 MiB written to p1"
cmp -s <(head -c 1M fmnt/p1) <(head -c 1M pat.bin)
ok $? "fuse --snapshot: p1 reads it back"
"$PARTMAP" fuse -u fmnt
ok $? "fuse -u"
is "$(leftovers)" "" "fuse --snapshot: nothing left after unmount"
is "$(sha256sum <d-vhdx.vhdx)" "$sum" "fuse --snapshot: the image is byte-identical"
"$PARTMAP" fuse -r --snapshot d-vhdx.vhdx fmnt 2>err
is $? 1 "fuse -r --snapshot: refused"
"$PARTMAP" fuse --snapshot missing.qcow2 fmnt 2>err
[ $? -eq 1 ] && grep -q 'missing.qcow2' err; ok $? "fuse --snapshot of a missing image: exit 1, naming it"
is "$(ls -A tmpdir)" "" "no temporary file left by the failures"
done_testing
