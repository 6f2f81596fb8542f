#!/usr/bin/env bash
# Writing sparse images (VHD dynamic, VDI dynamic, VMDK monolithicSparse / twoGbMaxExtentSparse /
# a delta over a parent, VHDX dynamic) through kpartx -a, judged by qemu-img; then kill -9 of the
# server at every pwrite, and at every fdatasync, of a round of writes that ends in a flush (strace
# fault injection), each time judged by qemu-img check (vdi, vmdk, vhdx: on a copy qemu replayed the
# log of, when one was left) or qemu-img's reading of it (vpc, which qemu-img check does not know);
# after a flush that completed, every byte written before it must be there. ONLY_FMT=vhdx (a qemu-img
# format name) runs that format's rounds alone.
. "$(dirname "$0")/lib.sh"
private_ns
for c in qemu-img strace perl mkfs.ext4 fsck.ext4; do
	command -v $c >/dev/null || { fail "$c missing"; done_testing; exit; }
done
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1

defer cleanup_served

# pat.pl SEED COUNT SPAN FILE [MIRROR MIRROR_OFFSET] [disjoint]: COUNT writes of 512 B to 1 MiB (half
# of them sector-aligned, half not) at offsets in [0, SPAN) of FILE, each also at MIRROR_OFFSET + the
# same offset of MIRROR. disjoint: each write inside its own slice of SPAN (so that after a crash a
# sector holds either zeros or its one pattern). Errors are ignored (the server may be killed).
cat >pat.pl <<'PERL'
use strict; use warnings;
my ($seed, $count, $span, $file, $mirror, $moff, $disjoint) = @ARGV;
srand($seed);
open(my $f, '+<', $file) or die "$file: $!";
my $m; if ($mirror) { open($m, '+<', $mirror) or die "$mirror: $!"; }
my $slice = int($span / $count);
for my $i (0 .. $count - 1) {
	my $aligned = int(rand(2));
	my $len = 512 + int(rand(1 << 20));
	my ($base, $room) = $disjoint ? ($i * $slice, $slice) : (0, $span);
	$len = $room - 512 if $len > $room - 512;
	my $off = $base + int(rand($room - $len));
	if ($aligned) { $off -= $off % 512; $len -= $len % 512; }
	my $buf = join('', map { chr(($i * 7 + $_ + 1) % 256) x 512 } 0 .. int($len / 512));
	$buf = substr($buf, 0, $len);
	sysseek($f, $off, 0); syswrite($f, $buf);
	if ($m) { sysseek($m, $moff + $off, 0); syswrite($m, $buf) == $len or die "mirror: $!"; }
}
PERL

mkdir -p files
head -c 3M /dev/urandom >files/random.bin
seq 1 100000 >files/numbers.txt
(cd files && sha256sum random.bin numbers.txt) >files.sha

# the disks: p1 (sectors 2048-22527) gets the pattern, p2 (22528-55295) a file system
truncate -s 32M dos.raw
printf 'label: dos\n2048,20480,83\n22528,32768,83\n' | sfdisk -q dos.raw
truncate -s 32M gpt.raw
printf 'label: gpt\n2048,20480\n22528,32768\n' | sfdisk -q gpt.raw
P1=$((2048 * 512)) P1LEN=$((20480 * 512)) P2=$((22528 * 512)) P2LEN=$((32768 * 512))

check_fs() { # check_fs RAWFILE WHAT: fsck -n and the files of p2, read from a raw copy by the kernel
	local l
	l=$(losetup -f --show -r -o $P2 --sizelimit $P2LEN "$1") || { fail "$2: losetup"; return; }
	fsck.ext4 -n "$l" >/dev/null 2>&1; ok $? "$2: fsck -n of p2 clean"
	mkdir -p mnt
	if mount -o ro "$l" mnt; then
		(cd mnt && sha256sum -c --quiet ../files.sha); ok $? "$2: p2's files read back"
		umount mnt
	else
		fail "$2: mount p2"
	fi
	losetup -d "$l"
}

# round FMT-ARGS WHAT BASE MAKE: make img.X from BASE.raw, write through kpartx -a, judge it
round() {
	local fmt=$1 what=$2 base=$3 img=$4 n
	cp $base.raw model.raw
	"$PARTMAP" kpartx -a -v "$img" >out 2>err
	ok $? "$what: -a exit 0"
	is "$(grep -c 'read-only' err)" 0 "$what: mapped read-write"
	n=$(sed -n 's/^add map \(loop[0-9]*\)p.*/\1/p' out | head -1)
	perl pat.pl 42 40 $P1LEN /dev/mapper/${n}p1 model.raw $P1 && sync
	ok $? "$what: seeded writes through p1"
	mkfs.ext4 -q -F -d files /dev/mapper/${n}p2 >/dev/null 2>&1
	ok $? "$what: mkfs.ext4 with files on p2"
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>err
	ok $? "$what: -d exit 0"
	if [ "$fmt" != vpc ]; then
		qemu-img check -q "$img"; ok $? "$what: qemu-img check clean"
	fi
	qemu-img convert -O raw "$img" got.raw
	ok $? "$what: qemu-img reads it all"
	check_fs got.raw "$what"
	# the model with p2 as qemu-img read it (mkfs is not repeatable): everything else must be equal
	dd if=got.raw of=model.raw bs=512 skip=22528 seek=22528 count=32768 conv=notrunc status=none
	qemu-img compare -q -f $fmt -F raw "$img" model.raw
	ok $? "$what: qemu-img compare equal to the raw model (table, p1's writes, zeros elsewhere)"
	# -a again: the kernel reads it all back through partmap
	"$PARTMAP" kpartx -a -v "$img" >out 2>err
	n=$(sed -n 's/^add map \(loop[0-9]*\)p.*/\1/p' out | head -1)
	cmp -s /dev/mapper/${n}p1 <(dd if=model.raw bs=512 skip=2048 count=20480 status=none)
	ok $? "$what: -a again: p1 reads back as written"
	mkdir -p mnt
	if mount -o ro /dev/mapper/${n}p2 mnt; then
		(cd mnt && sha256sum -c --quiet ../files.sha); ok $? "$what: -a again: p2's files read back"
		umount mnt
	else
		fail "$what: -a again: mount p2"
	fi
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>&1
}

variants=(
	"vpc|-O vpc|vhd dynamic|img.vhd"
	"vdi|-O vdi|vdi dynamic|img.vdi"
	"vmdk|-O vmdk|vmdk monolithicSparse|img.vmdk"
	"vmdk|-O vmdk -o subformat=twoGbMaxExtentSparse|vmdk twoGbMaxExtentSparse|img.vmdk"
	"vhdx|-O vhdx|vhdx dynamic|img.vhdx"
	"vhdx|-O vhdx -o block_size=1M|vhdx dynamic, 1 MiB blocks|img.vhdx"
)
for base in dos gpt; do
	for v in "${variants[@]}"; do
		IFS='|' read -r fmt args what img <<<"$v"
		[ -z "${ONLY_FMT:-}" ] || [ "$fmt" = "$ONLY_FMT" ] || continue
		rm -f img.* img-*
		# shellcheck disable=SC2086
		qemu-img convert -f raw $args $base.raw $img
		round $fmt "$base, $what" $base $img
	done
	# a delta VMDK over a parent: the parent's file is not changed
	[ -z "${ONLY_FMT:-}" ] || [ "$ONLY_FMT" = vmdk ] || continue
	rm -f img.* img-* parent.vmdk
	qemu-img convert -f raw -O vmdk $base.raw parent.vmdk
	qemu-img create -q -f vmdk -b parent.vmdk -F vmdk img.vmdk
	sum=$(sha256sum <parent.vmdk)
	round vmdk "$base, vmdk delta over a parent" $base img.vmdk
	is "$(sha256sum <parent.vmdk)" "$sum" "$base, vmdk delta: the parent's file unchanged"
done

# streamOptimized stays read-only, said on stderr, exit 0
if [ -z "${ONLY_FMT:-}" ] || [ "$ONLY_FMT" = vmdk ]; then
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized dos.raw so.vmdk
	sum=$(sha256sum <so.vmdk)
	"$PARTMAP" kpartx -a so.vmdk 2>err; ok $? "streamOptimized: -a exit 0"
	grep -q "read-only.*streamOptimized" err; ok $? "streamOptimized: says it is mapped read-only, and why"
	"$PARTMAP" kpartx -d so.vmdk
	is "$(sha256sum <so.vmdk)" "$sum" "streamOptimized: the file unchanged"
fi

# ---- crashes: kill -9 of the server at the Nth pwrite of a round of writes ----
# crash FMT IMG N: serve IMG under strace (SIGKILL at pwrite number N), write 6 disjoint patterns
# to the disk file, let it die; then judge. Prints nothing; returns the checks' failures.
srv_pid= sc=pwrite64 # the system call at whose Nth call the server is killed
serve_traced() { # serve_traced IMG [N]: N empty, no strace
	mkdir -p srv
	if [ -n "${2:-}" ]; then
		strace -f -o /dev/null -e trace=$sc -e inject=$sc:signal=SIGKILL:when=$2 \
			"$PARTMAP" fuse -f "$1" srv 2>/dev/null &
	else
		"$PARTMAP" fuse -f "$1" srv &
	fi
	srv_pid=$!
	for _ in $(seq 100); do [ -e srv/disk ] && break; sleep 0.05; done
}
stop_srv() { # the server (strace's child) ended by unmounting, strace then exits
	umount srv 2>/dev/null || umount -l srv 2>/dev/null
	wait $srv_pid 2>/dev/null
}
kill_srv() { # kill -9 of the server when the injected one did not come (N past the round)
	local p
	p=$(pgrep -P $srv_pid) && kill -9 $p
	wait $srv_pid 2>/dev/null
	true
	umount -l srv 2>/dev/null
}
crash_round() { # crash_round FMT IMG N: 0 when the image after the kill is sound
	local fmt=$1 img=$2 n=$3 rc judge=$2 synced=
	serve_traced "$img" "$n"
	perl pat.pl 7 6 $((8 << 20)) srv/disk '' 0 1 2>/dev/null && sync srv/disk 2>/dev/null && synced=1
	kill_srv 2>/dev/null
	if [ "$fmt" = vhdx ]; then
		# a log left to replay: qemu replays it (on a copy: partmap replays the image itself below)
		judge=q.vhdx
		cp "$img" $judge && { qemu-img check -q -r all $judge >/dev/null 2>&1; true; }
	fi
	if [ "$fmt" != vpc ]; then
		qemu-img check -q "$judge" >/dev/null 2>&1; rc=$?
		[ $rc -eq 0 ] || [ $rc -eq 3 ] || { diag "$fmt N=$n: qemu-img check exit $rc"; return 1; }
	fi
	qemu-img convert -O raw "$judge" after.raw 2>/dev/null || { diag "$fmt N=$n: qemu-img cannot read it"; return 1; }
	# every sector: zeros (not written, or the write lost) or the pattern written there
	cp zero.raw full.raw && perl pat.pl 7 6 $((8 << 20)) full.raw '' 0 1
	perl -e 'open(A,"<",$ARGV[0]); open(B,"<",$ARGV[1]); my ($a,$b,$s)=("","",0); my $z="\0" x 512;
		while (read(A,$a,512)) { read(B,$b,512); exit 1 if $a ne $z && $a ne $b; $s++ } exit 0' after.raw full.raw ||
		{ diag "$fmt N=$n: a sector holds neither zeros nor what was written there"; return 1; }
	# a flush that completed: everything written before it is there
	[ -z "$synced" ] || cmp -s -n "$(stat -c %s full.raw)" after.raw full.raw || { diag "$fmt N=$n: data lost though its flush completed"; return 1; }
	# and partmap writes on: the whole round again, then exactly the pattern
	serve_traced "$img"
	perl pat.pl 7 6 $((8 << 20)) srv/disk '' 0 1 && sync srv/disk
	stop_srv
	qemu-img compare -q -f $fmt -F raw "$img" full.raw >/dev/null 2>&1 || { diag "$fmt N=$n: not equal after writing again"; return 1; }
	if [ "$fmt" != vpc ]; then
		qemu-img check -q "$img" >/dev/null 2>&1; rc=$?
		[ $rc -eq 0 ] || [ $rc -eq 3 ] || { diag "$fmt N=$n: qemu-img check exit $rc after writing again"; return 1; }
	fi
	return 0
}
truncate -s 16M zero.raw && mkdir -p srv
# sweep FMT ARGS: the server killed at its Nth $sc in a round of writes, N spread over the round
sweep() {
	local fmt=$1 args=$2 total bad=0 step n
	# how many of them a round makes
	rm -f c.* c-*; qemu-img convert -f raw $args zero.raw c.$fmt
	strace -f -c -o count.txt -e trace=$sc "$PARTMAP" fuse -f c.$fmt srv 2>/dev/null & srv_pid=$!
	for _ in $(seq 100); do [ -e srv/disk ] && break; sleep 0.05; done
	perl pat.pl 7 6 $((8 << 20)) srv/disk '' 0 1 && sync srv/disk
	stop_srv
	total=$(awk -v sc=$sc '$NF == sc {print $4}' count.txt)
	if [ $sc != pwrite64 ] && [ "${total:-0}" -eq 0 ]; then
		diag "$fmt $args: a round makes no $sc: no $sc sweep"; return
	fi
	[ "${total:-0}" -gt 0 ]; ok $? "$fmt $args: a round of writes makes ${total:-0} ${sc}s"
	# every call when there are few; else about 40 of them, spread evenly
	step=$(( (${total:-0} + 39) / 40 ))
	for n in $(seq 1 $step "${total:-0}"); do
		rm -f c.* c-*; qemu-img convert -f raw $args zero.raw c.$fmt
		crash_round $fmt c.$fmt $n || bad=$((bad + 1))
	done
	[ "${total:-0}" -gt 0 ] && [ $bad -eq 0 ]
	ok $? "$fmt $args: kill -9 at every ${step}th of the ${total:-0} ${sc}s: the image sound each time ($bad not)"
}
for v in "vpc|-O vpc" "vdi|-O vdi" "vmdk|-O vmdk" "vmdk|-O vmdk -o subformat=twoGbMaxExtentSparse" \
	"vhdx|-O vhdx -o block_size=1M"; do
	IFS='|' read -r fmt args <<<"$v"
	[ -z "${ONLY_FMT:-}" ] || [ "$fmt" = "$ONLY_FMT" ] || continue
	sc=pwrite64 sweep "$fmt" "$args"
	# the syncs too (the VHDX log's ordering rests on them)
	sc=fdatasync sweep "$fmt" "$args"
done

# ---- VHDX: a log partmap left (killed before the BAT's in-place write, the 7th pwrite of a first
# write into a new block: session headers 2, data, the log's data sector, a header naming the log,
# the log's header sector, BAT) ----
if [ -z "${ONLY_FMT:-}" ] || [ "$ONLY_FMT" = vhdx ]; then
	rm -f c.vhdx q.vhdx && qemu-img convert -f raw -O vhdx -o block_size=1M zero.raw c.vhdx
	head -c 4096 /dev/urandom >blk
	serve_traced c.vhdx 7
	dd if=blk of=srv/disk bs=4k seek=300 conv=notrunc,fsync status=none 2>/dev/null
	kill_srv 2>/dev/null
	sum=$(sha256sum <c.vhdx)
	qemu-io -r -c 'read 0 512' c.vhdx 2>&1 | grep -q 'log that needs to be replayed'
	ok $? "vhdx log left by a kill: qemu refuses it read-only (needs replay)"
	"$PARTMAP" image raw c.vhdx pm.raw; ok $? "vhdx log left: partmap reads it (replayed in memory)"
	is "$(sha256sum <c.vhdx)" "$sum" "vhdx log left: the read-only look leaves the file unchanged"
	cmp -s blk <(dd if=pm.raw bs=4k skip=300 count=1 status=none); ok $? "vhdx log left: the logged write is read"
	cp c.vhdx q.vhdx && { qemu-img check -q -r all q.vhdx >/dev/null 2>&1; true; }
	qemu-img check -q q.vhdx; ok $? "vhdx log left: qemu replays it, then check clean"
	qemu-img compare -q -f vhdx -F raw q.vhdx pm.raw; ok $? "vhdx log left: qemu's replay reads as partmap's"
	serve_traced c.vhdx && stop_srv
	qemu-img check -q c.vhdx; ok $? "vhdx log left: partmap opened read-write replays it in the file, check clean"
	qemu-img compare -q c.vhdx q.vhdx; ok $? "vhdx log left: partmap's replay equal to qemu's"
fi

done_testing
