#!/usr/bin/env bash
# The qcow2 writer's write-back metadata cache under kill -9 (judged by qemu-img):
# random 4 KiB writes through a partition of a mapped qcow2 (kpartx -a), rounds of 32 writes each
# followed by fsync (which reaches the server as fsync: the cache written back in order), the server
# killed with SIGKILL in the middle of the run. On 512-byte clusters the L2 and refcount-block caches
# evict all the time (every write-back point is hit), on 64 KiB clusters everything stays dirty in
# memory between the fsyncs. After each kill: qemu-img check finds no corruption (exit 0 or 3: leaks
# allowed), and every sector written in a round whose fsync completed reads back with that round's
# contents or a later round's, never older ones, zeros or garbage (each sector carries its block and
# round number). A run that completed fewer than 3 rounds before the kill fails (not judged).
. "$(dirname "$0")/lib.sh"
private_ns
for c in qemu-img perl sfdisk; do
	command -v $c >/dev/null || { fail "$c missing (tests/install-deps.sh installs it)"; done_testing; exit; }
done
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1

cleanup_all() {
	local l
	for l in $(served_loops); do partx -d "$l"; losetup -d "$l"; done
	pkill -9 -f "partmap fuse .*$TMP" 2>/dev/null
	served_mounts | xargs -r -n1 umount -l
}
defer cleanup_all
leftovers() {
	{ served_loops; served_mounts | sed 's/^/mount /'
	  pgrep -af "partmap fuse .*$TMP" | sed 's/^/server /'; ls /dev/mapper; } 2>/dev/null
}

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

run=0
for v in "512|1.5" "512|4" "65536|1.5" "65536|4"; do
	IFS='|' read -r cs secs <<<"$v"
	run=$((run + 1))
	truncate -s 64M c$run.raw && printf 'label: dos\n2048,\n' | sfdisk -q c$run.raw
	qemu-img convert -O qcow2 -o cluster_size=$cs c$run.raw c$run.qcow2
	"$PARTMAP" kpartx -a -v c$run.qcow2 >out 2>err
	n=$(sed -n 's/^add map \(loop[0-9]*\)p1 .*/\1/p' out)
	[ -b "/dev/mapper/${n}p1" ]; ok $? "cs=$cs: mapped"
	: >log$run
	perl writer.pl /dev/mapper/${n}p1 $(((131072 - 2048) / 8)) $run log$run &
	wpid=$!
	sleep "$secs"
	pkill -9 -f "partmap fuse .*$TMP/c$run.qcow2"
	wait $wpid 2>/dev/null
	"$PARTMAP" kpartx -d c$run.qcow2 >/dev/null 2>&1
	is "$(leftovers)" "" "cs=$cs, kill after ${secs}s: nothing left"
	qemu-img check c$run.qcow2 >check.out 2>&1
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ]; ok $? "cs=$cs, kill after ${secs}s: qemu-img check finds no corruption (exit $rc)"
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || diag "$(head -20 check.out)"
	qemu-img convert -O raw c$run.qcow2 c$run.out
	dd if=c$run.out of=c$run.p1 bs=1M iflag=skip_bytes skip=$((2048 * 512)) status=none
	read -r rounds bad < <(perl check.pl c$run.p1 log$run)
	[ "$rounds" -ge 3 ]; ok $? "cs=$cs, kill after ${secs}s: $rounds rounds fsync'd before the kill (3 or more)"
	is "$bad" 0 "cs=$cs, kill after ${secs}s: every sector fsync'd reads back as written (or newer)"
	rm -f c$run.raw c$run.out c$run.p1
done
done_testing
