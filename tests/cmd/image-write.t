#!/usr/bin/env bash
# Writing qcow2 images through kpartx -a and the FUSE server, judged by qemu-img and fsck:
# - DOS and GPT disks (overlays over a raw base): seeded aligned and unaligned writes (512 B to 1 MiB)
#   through a partition node, mkfs and files on the other; -d; qemu-img check clean, qemu-img compare
#   equal to a raw copy given the same writes, the base unchanged, -a again reads it all back, fsck;
# - crashes: kill -9 of the server during writes, and kill -9 injected at the Nth pwrite64 / fdatasync
#   of the server (strace), N swept, on 512-byte clusters: never a corruption (qemu-img check exit
#   0 or 3, never 2), data fsync'd before the crash always there, -d leaves nothing; kill -9 during
#   random writes in fsync'd rounds: every fsync'd sector reads back (the write-back metadata cache);
# - qemu's locks both ways (qemu-io, qemu-img), exit status 3 and nothing mapped;
# - images refused for writing (corrupt, dirty, unknown autoclear bit) are mapped read-only, saying why;
# - fstrim through a mapping shrinks the qcow2;
# - partmap image check agrees with qemu-img check on clean, leaking and corrupt images; image create.
. "$(dirname "$0")/lib.sh"
private_ns
for c in qemu-img qemu-io strace mkfs.ext4 e2fsck sfdisk fstrim; do
	command -v $c >/dev/null || { fail "$c missing (tests/install-deps.sh installs it)"; done_testing; exit; }
done
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1

defer cleanup_served
qcheck() { qemu-img check "$1" >/dev/null 2>&1; echo $?; }
# processes holding FILE open (after -d: none, the server has closed it, qemu may take it at once)
holders() { find /proc/[0-9]*/fd -lname "$(realpath "$1")" 2>/dev/null | cut -d/ -f3 | sort -u; }

# seeded writes: COUNT writes of 512 B to 1 MiB, aligned and not, from pat.bin into DEV (a block
# device, from byte 0) and the same bytes into REF at byte REFOFF
head -c 2M /dev/urandom >pat.bin
seeded_writes() { # DEV SIZE REF REFOFF SEED COUNT
	local dev=$1 size=$2 ref=$3 refoff=$4 i len off src
	RANDOM=$5
	for ((i = 0; i < $6; i++)); do
		len=$(((RANDOM * 32768 + RANDOM) % 1048576 + 1))
		((len < 512)) && len=512
		off=$(((RANDOM * 32768 + RANDOM) % (size - len)))
		if ((RANDOM % 2)); then off=$((off / 512 * 512)); len=$((len / 512 * 512)); fi
		src=$((RANDOM % 1048576))
		dd if=pat.bin of="$dev" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
			skip=$src count=$len seek=$off status=none || return 1
		dd if=pat.bin of="$ref" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
			skip=$src count=$len seek=$((refoff + off)) status=none || return 1
	done
	sync
}

mkdir -p files mnt
head -c 3M /dev/urandom >files/random.bin
seq 1 100000 >files/numbers.txt
(cd files && sha256sum random.bin numbers.txt) >files.sha

# ---- DOS and GPT: an overlay over a raw base, 4 KiB clusters ----
for label in dos gpt; do
	truncate -s 96M $label.raw
	printf 'label: %s\n2048,40960\n43008,\n' $label | sfdisk -q $label.raw
	p2start=43008
	[ $label = gpt ] && p2end=$(( $(stat -c %s $label.raw) / 512 - 34 )) || p2end=$(( $(stat -c %s $label.raw) / 512 ))
	base_sum=$(sha256sum <$label.raw)
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b $label.raw -F raw ov-$label.qcow2
	cp $label.raw ref-$label.raw
	"$PARTMAP" kpartx -a -v ov-$label.qcow2 >out 2>err
	ok $? "$label: -a of a qcow2 overlay"
	is "$(grep -c read-only err)" 0 "$label: mapped read-write (no read-only notice)"
	n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
	seeded_writes /dev/mapper/${n}p1 $((40960 * 512)) ref-$label.raw $((2048 * 512)) 17 40
	ok $? "$label: 40 seeded writes through p1"
	mkfs.ext4 -q -F -d files /dev/mapper/${n}p2 >/dev/null 2>&1
	ok $? "$label: mkfs.ext4 -d files on p2"
	mount /dev/mapper/${n}p2 mnt && cp pat.bin mnt/ && seq 1 50000 >mnt/more.txt && umount mnt
	ok $? "$label: files copied into p2's file system"
	"$PARTMAP" kpartx -d ov-$label.qcow2
	ok $? "$label: -d"
	is "$(served_leftovers)" "" "$label: nothing left after -d"
	is "$(qcheck ov-$label.qcow2)" 0 "$label: qemu-img check: no errors, no leaks"
	is "$(sha256sum <$label.raw)" "$base_sum" "$label: the backing file is unchanged"
	# the raw copy: the same writes on p1; p2 as the overlay holds it (a file system made by mkfs)
	qemu-img convert -O raw ov-$label.qcow2 out-$label.raw
	dd if=out-$label.raw of=ref-$label.raw bs=512 skip=$p2start seek=$p2start conv=notrunc status=none
	qemu-img compare -q -f qcow2 -F raw ov-$label.qcow2 ref-$label.raw
	ok $? "$label: qemu-img compare: equal to a raw copy given the same writes"
	"$PARTMAP" kpartx -a -v ov-$label.qcow2 >out 2>err
	n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
	cmp -s /dev/mapper/${n}p1 <(dd if=ref-$label.raw bs=512 skip=2048 count=40960 status=none)
	ok $? "$label: -a again: p1 reads back what was written"
	e2fsck -n -f /dev/mapper/${n}p2 >/dev/null 2>&1
	ok $? "$label: fsck -n of p2 clean"
	mount -o ro /dev/mapper/${n}p2 mnt && (cd mnt && sha256sum -c --quiet ../files.sha && cmp -s pat.bin ../pat.bin)
	ok $? "$label: p2's files read back with their checksums"
	umount mnt 2>/dev/null
	"$PARTMAP" kpartx -d ov-$label.qcow2
	is "$(served_leftovers)" "" "$label: nothing left after the second -d"
	: "$p2end"
done

# a whole disk written, compared as a whole: a blank v3 image with extended L2 and one v2 image
for v in "el2|-o extended_l2=on,cluster_size=64k" "v2|-o compat=0.10,cluster_size=1k"; do
	IFS='|' read -r what opts <<<"$v"
	truncate -s 48M ref-$what.raw
	printf 'label: dos\n2048,\n' | sfdisk -q ref-$what.raw
	# shellcheck disable=SC2086
	qemu-img convert -O qcow2 $opts ref-$what.raw w-$what.qcow2
	"$PARTMAP" kpartx -a -v w-$what.qcow2 >out 2>err
	n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
	seeded_writes /dev/mapper/${n}p1 $(((98304 - 2048) * 512)) ref-$what.raw $((2048 * 512)) 23 30
	ok $? "$what: seeded writes through p1"
	"$PARTMAP" kpartx -d w-$what.qcow2
	is "$(holders w-$what.qcow2)" "" "$what: after -d no process holds the image"
	is "$(qcheck w-$what.qcow2)" 0 "$what: qemu-img check clean"
	qemu-img compare -q -f qcow2 -F raw w-$what.qcow2 ref-$what.raw
	ok $? "$what: qemu-img compare: equal to the raw copy"
done

# -d returns once the server has written and closed the image (it used to return before: qemu-img
# check then failed on the server's lock, now and then): the server's syncs slowed down by strace
truncate -s 32M rel.raw && printf 'label: dos\n2048,\n' | sfdisk -q rel.raw
qemu-img convert -O qcow2 -o cluster_size=1k rel.raw rel.qcow2
"$PARTMAP" kpartx -a -v rel.qcow2 >out 2>err
n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
dd if=pat.bin of=/dev/mapper/${n}p1 bs=64k count=24 status=none
spid=$(pgrep -f "partmap fuse .*rel.qcow2" | head -1)
strace -f -o /dev/null -p "$spid" -e trace=fsync,fdatasync -e inject=fsync,fdatasync:delay_enter=700000 2>/dev/null &
tracer=$!
sleep 1
"$PARTMAP" kpartx -d rel.qcow2
is "$(holders rel.qcow2)" "" "slow syncs: after -d no process holds the image"
is "$(qcheck rel.qcow2)" 0 "slow syncs: qemu-img check right after -d: clean, no lock in its way"
wait $tracer 2>/dev/null
is "$(served_leftovers)" "" "slow syncs: nothing left"

# ---- crashes ----
# kill -9 of the server during writes through a mapping; what was fsync'd before is there
truncate -s 64M crash.raw && printf 'label: dos\n2048,\n' | sfdisk -q crash.raw
qemu-img convert -O qcow2 -o cluster_size=4096 crash.raw crash.qcow2
"$PARTMAP" kpartx -a -v crash.qcow2 >out 2>err
n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
dd if=pat.bin of=/dev/mapper/${n}p1 bs=64k conv=fsync status=none
ok $? "kill -9: 2 MiB written and fsync'd"
(for i in $(seq 1 200); do dd if=/dev/urandom of=/dev/mapper/${n}p1 bs=64k count=16 seek=$((64 + RANDOM % 800)) conv=fsync status=none 2>/dev/null || exit; done) &
wpid=$!
sleep 1
pkill -9 -f "partmap fuse .*$TMP/crash.qcow2"
wait $wpid 2>/dev/null
"$PARTMAP" kpartx -d crash.qcow2 >/dev/null 2>&1
ok $? "kill -9: -d after the server was killed"
is "$(served_leftovers)" "" "kill -9: nothing left"
rc=$(qcheck crash.qcow2)
[ "$rc" = 0 ] || [ "$rc" = 3 ]; ok $? "kill -9: qemu-img check finds no corruption (exit $rc)"
qemu-img convert -O raw crash.qcow2 crash.out 2>/dev/null
cmp -s <(dd if=crash.out bs=512 skip=2048 count=4096 status=none) pat.bin
ok $? "kill -9: the data fsync'd before the kill is there"

# kill -9 injected at the Nth pwrite64 / fdatasync of the server, 512-byte clusters (refcount blocks,
# L2 tables and the refcount table grow all the time, the metadata cache evicts all the time): each
# step of an allocation and of a write-back is hit. The image
# is an overlay over a raw base of random bytes and the second write is unaligned, so clusters are
# filled from the base around the new bytes. After each kill: qemu-img check finds no corruption;
# every byte of the disk reads either as before (the base) or as written (never zeros or garbage: a
# table entry that reached the file before its data would show so; tried with that order swapped);
# the first write, fsync'd before the second began, is all there.
head -c 8M /dev/urandom >sbase.raw
sbase_sum=$(sha256sum <sbase.raw)
head -c 1M pat.bin >A.bin
tail -c 1M pat.bin >B.bin
cp sbase.raw snew.raw
dd if=A.bin of=snew.raw conv=notrunc status=none
dd if=B.bin of=snew.raw bs=4k oflag=seek_bytes seek=$((2 * 1048576 + 100)) conv=notrunc status=none
# sectors of OUT holding a byte that is neither BEFORE's nor AFTER's (bytes, not whole sectors: an
# unaligned sector is rightly half from one application write and half from the next, not yet made)
torn_sectors() { # OUT BEFORE AFTER
	perl -e 'open my $o, "<", $ARGV[0] or die; open my $b, "<", $ARGV[1] or die; open my $n, "<", $ARGV[2] or die;
		my $bad = 0; while (read($o, my $x, 512)) { read($b, my $y, 512); read($n, my $z, 512);
		next if $x eq $y || $x eq $z; (my $m1 = $x ^ $y) =~ tr/\x01-\xff/\x01/; (my $m2 = $x ^ $z) =~ tr/\x01-\xff/\x01/;
		$bad++ if ($m1 & $m2) =~ tr/\x01// } print $bad' "$@"
}
sweep() { # SYSCALL N...
	local sc=$1 n bad=0 lost=0 torn=0 runs=0 rc t
	shift
	for n in "$@"; do
		rm -f s.qcow2 s.out; mkdir -p sm
		qemu-img create -q -f qcow2 -o cluster_size=512 -b sbase.raw -F raw s.qcow2
		strace -f -o /dev/null -e trace=$sc -e inject=$sc:signal=SIGKILL:when=$n "$PARTMAP" fuse -f s.qcow2 sm 2>/dev/null &
		local spid=$!
		for _ in $(seq 50); do grep -q " $TMP/sm " /proc/mounts && break; sleep 0.05; done
		local a_ok=1
		dd if=A.bin of=sm/disk bs=64k conv=notrunc,fsync status=none 2>/dev/null || a_ok=0
		[ $a_ok = 1 ] && dd if=B.bin of=sm/disk bs=4k oflag=seek_bytes seek=$((2 * 1048576 + 100)) \
			conv=notrunc,fsync status=none 2>/dev/null
		umount -l sm 2>/dev/null; wait $spid 2>/dev/null
		rc=$(qcheck s.qcow2)
		runs=$((runs + 1))
		if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then bad=$((bad + 1)); diag "$sc when=$n: qemu-img check exit $rc"; fi
		qemu-img convert -U -O raw s.qcow2 s.out 2>/dev/null
		t=$(torn_sectors s.out sbase.raw snew.raw)
		if [ "$t" != 0 ]; then torn=$((torn + 1)); diag "$sc when=$n: $t sectors neither before nor written"; fi
		if [ $a_ok = 1 ] && ! cmp -s <(head -c 1M s.out) A.bin; then
			lost=$((lost + 1)); diag "$sc when=$n: fsync'd data lost"
		fi
	done
	is "$bad" 0 "$sc sweep ($runs kills): qemu-img check never finds a corruption"
	is "$torn" 0 "$sc sweep ($runs kills): every byte reads as before or as written"
	is "$lost" 0 "$sc sweep ($runs kills): data fsync'd before the kill always there"
}
# (with the write-back metadata cache a run makes about 830 pwrite64 and 150 fdatasync: the kills
# land on data writes, on refcount blocks and L2 tables written back at eviction and at the guest's
# fsync, and on the syncs between them and those of the fsync itself)
sweep pwrite64 $(seq 1 30) $(seq 33 5 400) $(seq 411 13 900)
sweep fdatasync $(seq 1 40) $(seq 43 4 170)
is "$(sha256sum <sbase.raw)" "$sbase_sum" "sweeps: the base is unchanged"
is "$(served_leftovers)" "" "sweeps: nothing left"

# The write-back metadata cache under kill -9: random 4 KiB writes through a partition, rounds of 32
# writes each followed by fsync (which reaches the server as fsync: the cache written back in order),
# the server killed with SIGKILL mid-run. On 512-byte clusters the L2 and refcount-block caches evict
# all the time, on 64 KiB clusters everything stays dirty in memory between the fsyncs. After each
# kill: qemu-img check finds no corruption (leaks allowed), and every sector written in a round whose
# fsync completed reads back with that round's contents or a later round's, never older ones, zeros
# or garbage (each sector carries its block and round number). A run that completed fewer than 3
# rounds before the kill fails (not judged).
# writer: rounds of 32 random 4 KiB blocks of DEV (NBLK of them), then fsync; after each fsync that
# succeeded, the round's blocks appended to LOG. Each 512-byte sector: "r<round> b<block> " repeated.
cat >writer.pl <<'EOF'
use strict; use Fcntl; use IO::Handle;
my ($dev, $nblk, $seed, $log) = @ARGV;
srand($seed);
sysopen(my $d, $dev, O_RDWR) or die "$dev: $!";
open(my $l, '>>', $log) or die; $l->autoflush(1);
for (my $r = 1; ; $r++) {
	my @b;
	for (1 .. 32) {
		my $x = int(rand($nblk));
		push @b, $x;
		my $tag = sprintf("r%07d b%07d ", $r, $x);
		my $sec = substr($tag x 30, 0, 512);
		sysseek($d, $x * 4096, 0) or exit 0;
		(syswrite($d, $sec x 8) // -1) == 4096 or exit 0;
	}
	$d->sync or exit 0;
	print $l "$r @b\n";
}
EOF
# checker: OUT (the partition's bytes) against LOG: prints "ROUNDS BAD" (BAD: sectors of blocks written
# in completed rounds that hold something else than that round's or a later round's data of the block)
cat >check.pl <<'EOF'
use strict;
my ($out, $log) = @ARGV;
my (%want, $rounds);
open(my $l, '<', $log) or die;
while (<$l>) { my ($r, @b) = split; $want{$_} = $r for @b; $rounds = $r; }
open(my $o, '<', $out) or die;
my $bad = 0;
for my $b (keys %want) {
	for my $s (0 .. 7) {
		seek($o, $b * 4096 + $s * 512, 0); read($o, my $x, 512);
		my ($r, $xb) = $x =~ /^r(\d{7}) b(\d{7}) / ? ($1, $2) : (-1, -1);
		my $ok = $xb == $b && $r >= $want{$b} && $x eq substr(sprintf("r%07d b%07d ", $r, $b) x 30, 0, 512);
		$bad++ unless $ok;
	}
}
print $rounds // 0, " $bad\n";
EOF

wrun=0
for v in "512|1.5" "512|4" "65536|1.5" "65536|4"; do
	IFS='|' read -r cs secs <<<"$v"
	wrun=$((wrun + 1))
	truncate -s 64M c$wrun.raw && printf 'label: dos\n2048,\n' | sfdisk -q c$wrun.raw
	qemu-img convert -O qcow2 -o cluster_size=$cs c$wrun.raw c$wrun.qcow2
	"$PARTMAP" kpartx -a -v c$wrun.qcow2 >out 2>err
	n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
	[ -b "/dev/mapper/${n}p1" ]; ok $? "cache kill -9, cs=$cs: mapped"
	: >log$wrun
	perl writer.pl /dev/mapper/${n}p1 $(((131072 - 2048) / 8)) $wrun log$wrun &
	wpid=$!
	sleep "$secs"
	pkill -9 -f "partmap fuse .*$TMP/c$wrun.qcow2"
	wait $wpid 2>/dev/null
	"$PARTMAP" kpartx -d c$wrun.qcow2 >/dev/null 2>&1
	is "$(served_leftovers)" "" "cache kill -9 after ${secs}s, cs=$cs: nothing left"
	qemu-img check c$wrun.qcow2 >check.out 2>&1
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ]; ok $? "cache kill -9 after ${secs}s, cs=$cs: qemu-img check finds no corruption (exit $rc)"
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || diag "$(head -20 check.out)"
	qemu-img convert -O raw c$wrun.qcow2 c$wrun.out
	dd if=c$wrun.out of=c$wrun.p1 bs=1M iflag=skip_bytes skip=$((2048 * 512)) status=none
	read -r rounds bad < <(perl check.pl c$wrun.p1 log$wrun)
	[ "$rounds" -ge 3 ]; ok $? "cache kill -9 after ${secs}s, cs=$cs: $rounds rounds fsync'd before the kill (3 or more)"
	is "$bad" 0 "cache kill -9 after ${secs}s, cs=$cs: every sector fsync'd reads back as written (or newer)"
	rm -f c$wrun.raw c$wrun.out c$wrun.p1
done

# ---- qemu's locks, both ways ----
truncate -s 64M lk.raw && printf 'label: dos\n2048,\n' | sfdisk -q lk.raw && qemu-img convert -O qcow2 lk.raw lk.qcow2
"$PARTMAP" kpartx -a -v lk.qcow2 >out 2>err; ok $? "locks: -a"
qemu-io -c 'write 0 4k' lk.qcow2 >out 2>&1
[ $? -ne 0 ] && grep -q 'Failed to get "write" lock' out; ok $? "locks: qemu-io refuses to write an image partmap writes"
qemu-img check lk.qcow2 >out 2>&1
[ $? -ne 0 ] && grep -q 'lock' out; ok $? "locks: qemu-img (without -U) refuses it too"
"$PARTMAP" kpartx -d lk.qcow2
sleep 5 | qemu-io lk.qcow2 >/dev/null 2>&1 &
qpid=$!
sleep 0.5
"$PARTMAP" kpartx -a lk.qcow2 >out 2>err
is $? 3 "locks: -a of an image qemu-io writes: exit status 3"
grep -q 'in use' err; ok $? "locks: the message says the image is in use"
is "$(served_leftovers)" "" "locks: nothing mapped"
"$PARTMAP" fuse lk.qcow2 mnt 2>err
is $? 3 "locks: partmap fuse: exit status 3"
kill $qpid 2>/dev/null; wait $qpid 2>/dev/null
"$PARTMAP" kpartx -a lk.qcow2 2>err; ok $? "locks: -a once qemu-io is gone"
"$PARTMAP" kpartx -d lk.qcow2

# ---- images refused for writing: mapped read-only, saying why ----
setbits() { # IMG OFFSET BYTE
	printf "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
for v in "corrupt|79|02|corrupt" "dirty|79|01|dirty" "autoclear|95|80|autoclear"; do
	IFS='|' read -r what off byte word <<<"$v"
	cp lk.qcow2 r-$what.qcow2
	[ $what = dirty ] && setbits r-$what.qcow2 87 01 # lazy refcounts (compatible bit 0) with it
	setbits r-$what.qcow2 "$off" "$byte"
	sum=$(sha256sum <r-$what.qcow2)
	"$PARTMAP" kpartx -a r-$what.qcow2 >/dev/null 2>err
	ok $? "$what: -a maps it"
	grep -q "read-only.*$word" err; ok $? "$what: mapped read-only, saying why ($(head -1 err))"
	"$PARTMAP" kpartx -d r-$what.qcow2
	is "$(sha256sum <r-$what.qcow2)" "$sum" "$what: the image is unchanged"
done

# ---- fstrim through a mapping frees clusters ----
truncate -s 128M t.raw && printf 'label: gpt\n2048,\n' | sfdisk -q t.raw && qemu-img convert -O qcow2 t.raw t.qcow2
"$PARTMAP" kpartx -a -v t.qcow2 >out 2>err
n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
mkfs.ext4 -q -F /dev/mapper/${n}p1 >/dev/null 2>&1 && mount /dev/mapper/${n}p1 mnt &&
	head -c 60M /dev/urandom >mnt/big && sync
ok $? "fstrim: a 60 MiB file written in ext4 through the mapping"
before=$(du -k t.qcow2 | cut -f1)
rm mnt/big && sync && fstrim mnt
ok $? "fstrim: fstrim succeeds"
umount mnt
"$PARTMAP" kpartx -d t.qcow2
after=$(du -k t.qcow2 | cut -f1)
[ "$after" -lt $((before - 40000)) ]; ok $? "fstrim: the qcow2 shrank ($before KiB -> $after KiB)"
is "$(qcheck t.qcow2)" 0 "fstrim: qemu-img check clean"

# ---- image check against qemu-img check: clean, leaking, corrupt (tables edited here) ----
be8() { echo $((16#$(od -An -t x1 -j "$2" -N 8 "$1" | tr -d ' \n'))); }
mkc() { rm -f "$1"; qemu-img create -q -f qcow2 -o cluster_size=4k "$1" 16M; qemu-io -c 'write -P 5 0 64k' -c 'write -P 6 1m 8k' "$1" >/dev/null; }
mkc clean.qcow2
mkc leak.qcow2 # two L2 entries cleared: their clusters leak
l2=$(( $(be8 leak.qcow2 "$(be8 leak.qcow2 40)") & 0x00fffffffffffe00 ))
dd if=/dev/zero of=leak.qcow2 bs=1 seek=$l2 count=16 conv=notrunc status=none
mkc corrupt.qcow2 # the refcount of a data cluster cleared
l2=$(( $(be8 corrupt.qcow2 "$(be8 corrupt.qcow2 40)") & 0x00fffffffffffe00 ))
host=$(( $(be8 corrupt.qcow2 $l2) & 0x00fffffffffffe00 ))
rb=$(( $(be8 corrupt.qcow2 "$(be8 corrupt.qcow2 48)") & ~511 ))
dd if=/dev/zero of=corrupt.qcow2 bs=1 seek=$((rb + host / 4096 * 2)) count=2 conv=notrunc status=none
for c in clean leak corrupt; do
	qemu-img check $c.qcow2 >q.out 2>&1; q=$?
	"$PARTMAP" image check $c.qcow2 >p.out 2>&1; p=$?
	is "$p" "$q" "image check $c: exit status as qemu-img check's ($q)"
	is "$(grep -o '^[0-9]* \(errors\|leaked clusters\) were found' p.out)" \
		"$(grep -o '^[0-9]* \(errors\|leaked clusters\) were found' q.out)" "image check $c: the same counts"
done
"$PARTMAP" image check -r leaks leak.qcow2 >/dev/null; is $? 0 "image check -r leaks: exit 0 (repaired)"
is "$(qcheck leak.qcow2)" 0 "image check -r leaks: qemu-img check finds it clean"
"$PARTMAP" image check -r leaks corrupt.qcow2 >/dev/null; is $? 2 "image check -r leaks of a corrupt image: exit 2"

# ---- image create ----
head -c 8M /dev/urandom >cbase.raw
"$PARTMAP" image create -f qcow2 -b cbase.raw -F raw cov.qcow2; ok $? "image create: an overlay"
is "$(qcheck cov.qcow2)" 0 "image create: qemu-img check clean"
qemu-img compare -q cov.qcow2 cbase.raw; ok $? "image create: the overlay reads as its base (qemu-img compare)"
is "$(qemu-img info --output=json cov.qcow2 | grep -o '"backing-filename-format": "[a-z]*"')" \
	'"backing-filename-format": "raw"' "image create: the backing format recorded"
"$PARTMAP" image create -f qcow2 -o cluster_size=4k blank.qcow2 100M; ok $? "image create: a blank image"
is "$(qemu-img info --output=json blank.qcow2 | grep -o '"virtual-size": [0-9]*')" '"virtual-size": 104857600' \
	"image create: its virtual size"
qemu-io -c 'write -P 9 0 1M' blank.qcow2 >/dev/null && is "$(qcheck blank.qcow2)" 0 "image create: qemu writes it, check clean"
"$PARTMAP" image create -f qcow2 ov2.qcow2 -b blank.qcow2 && qemu-io -c 'read -P 9 0 1M' ov2.qcow2 >/dev/null
ok $? "image create: an overlay over a qcow2 (format detected) reads its base's data"

done_testing
