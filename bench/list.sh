#!/usr/bin/env bash
# Benchmark of kpartx -l: partmap against Debian's kpartx -l and util-linux partx --show, side by side
# in one run, on the same images; prints median times (robust to the outliers of a shared machine)
# and their ratios, and the bytes each tool reads
# (counted under strace). The same hyperfine run also times a statically linked C program that does
# nothing: the floor of exec on the machine, against which partmap's time is given as pm/floor.
# Needs root for Debian kpartx (it attaches a loop device to list an image).
#   bench/list.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
RUNS=${RUNS:-30}
export PATH=$PATH:/usr/sbin:/sbin
for c in hyperfine jq strace kpartx partx sfdisk sgdisk cc /usr/bin/time; do
	command -v $c >/dev/null || { echo "bench/list.sh: $c is missing (make deps)" >&2; exit 1; }
done
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
# the floor: exec of a static program that returns at once (glibc's static start-up included)
printf 'int main(void) { return 0; }\n' >"$t/nop.c"
cc -O2 -static -o "$t/nop" "$t/nop.c"
# it runs just before and just after partmap in each hyperfine run (hyperfine runs one command's runs
# in a block, and the load of a shared machine drifts): the floor is the mean of the two medians
floor_pm_rest='[.results[].median * 1000] | [(.[0] + .[2]) / 2, .[1]] + .[3:] | @tsv'

# GPT with 128 entries
truncate -s 1G "$t/gpt128.img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+4M"); done
sgdisk "${args[@]}" "$t/gpt128.img" >/dev/null
# DOS with 60 logical partitions, the EBR chain written directly (libfdisk stops before 60)
truncate -s 1G "$t/dos60.img"
perl -e '
	open(my $f, "+<", $ARGV[0]) or die;
	sub entry { my ($sec, $slot, $type, $start, $size) = @_;
		seek($f, $sec * 512 + 446 + 16 * $slot, 0); print $f pack("C4 C C3 V V", 0,0,0,0, $type, 0,0,0, $start, $size);
		seek($f, $sec * 512 + 510, 0); print $f "\x55\xaa"; }
	entry(0, 0, 0x83, 2048, 8192);
	entry(0, 1, 0x05, 10240, 60 * 6144);
	for my $i (0 .. 59) { my $ebr = 10240 + $i * 6144;
		entry($ebr, 0, 0x83, 2048, 4096);
		entry($ebr, 1, 0x05, ($i + 1) * 6144, 6144) if $i < 59; }
' "$t/dos60.img"
[ "$("$PARTMAP" kpartx -l "$t/dos60.img" | wc -l)" -eq 62 ] || { echo "dos60 image is wrong" >&2; exit 1; }
# a 1 TiB sparse image with a GPT
truncate -s 1T "$t/sparse1t.img"
sgdisk -n 1:0:+100G -n 2:0:+500G -n 3:0:0 "$t/sparse1t.img" >/dev/null

# partmap and the floor taking turns, TURNS times: the median of each turn's ratio. Steadier than
# hyperfine's blocks, between which the load of a shared machine drifts (each exec timed from perl's
# fork to its wait: the same overhead on both sides)
TURNS=${TURNS:-200}
turns() { # turns CMD... : partmap's time over the floor's, the median of TURNS turns
	perl -MTime::HiRes=time -e '
		my ($n, $nop, @pm) = @ARGV;
		open(STDOUT, ">", "/dev/null"); open(STDERR, ">", "/dev/null");
		sub run { my $t = time; system { $_[0] } @_; return time - $t }
		my @r;
		for my $i (1 .. $n) {
			# which goes first alternates
			my ($a, $b) = $i % 2 ? (run($nop), run(@pm)) : reverse(run(@pm), run($nop));
			push @r, $b / $a;
		}
		@r = sort { $a <=> $b } @r;
		open(my $o, ">&", 3); printf $o "%.2f\n", $r[$#r / 2];
	' "$TURNS" "$t/nop" "$@" 3>&1
}
# page faults (minor) of one run: the most of what -l costs over the floor on VMs, 12-30 us each here.
# /usr/bin/time counts the child's faults before exec too: the column is partmap's over the floor's
faults() { /usr/bin/time -f %R "$@" 2>&1 >/dev/null | tail -1; }
printf '%-14s %12s %12s %12s %12s %10s %10s %9s %10s %16s %12s\n' image partmap kpartx partx floor "kpartx/pm" "partx/pm" \
	"pm/floor" "in turns" "bytes pm/kp/px" "faults +fl"
for img in gpt128 dos60 sparse1t; do
	f=$t/$img.img
	hyperfine -N -w 3 -r "$RUNS" --export-json "$t/h.json" \
		"$t/nop" "$PARTMAP kpartx -l $f" "$t/nop again" "kpartx -l $f" "partx --show $f" >/dev/null 2>&1
	read -r nop pm kp px < <(jq -r "$floor_pm_rest" "$t/h.json")
	# bytes read from the image or a loop device over it, by following the fds opened on them
	bytes() {
		strace -e trace=openat,open,close,read,pread64 -o "$t/st" "$@" >/dev/null 2>&1 || true
		awk -v f="$f" '
			/^(openat|open)\(/ { split($0, q, "\""); split($0, r, "= "); if ((q[2] == f || q[2] ~ /^\/dev\/loop[0-9]+$/) && r[2] ~ /^[0-9]+/) fds[r[2] + 0] = 1; next }
			/^close\(/ { sub(/^close\(/, ""); delete fds[$0 + 0]; next }
			/^(read|pread64)\(/ { x = $0; sub(/^[a-z0-9]+\(/, "", x); fd = x + 0; split($0, r, "= "); if (fd in fds) s += r[2] }
			END { print s + 0 }' "$t/st"
	}
	bpm=$(bytes "$PARTMAP" kpartx -l "$f")
	bkp=$(bytes kpartx -l "$f")
	bpx=$(bytes partx --show "$f")
	printf '%-14s %10.2fms %10.2fms %10.2fms %10.2fms %9.1fx %9.1fx %8.2fx %9.2fx %16s %12s\n' "$img" "$pm" "$kp" "$px" "$nop" \
		"$(echo "$kp / $pm" | bc -l)" "$(echo "$px / $pm" | bc -l)" "$(echo "$pm / $nop" | bc -l)" \
		"$(turns "$PARTMAP" kpartx -l "$f")" "$bpm/$bkp/$bpx" \
		"+$(($(faults "$PARTMAP" kpartx -l "$f") - $(faults "$t/nop")))"
done
echo "ratios: how many times longer the other tool takes than partmap (target: kpartx/pm >= 10, partx/pm >= 1);"
echo "pm/floor: partmap's time over the do-nothing static program's (target: <= 1.5): from hyperfine's medians,"
echo "  and in turns: the median of $TURNS turns' ratios, the two taking turns (steadier under drifting load)"
echo "bytes: read from the image (or the loop device kpartx attaches to it) by partmap / kpartx / partx"

# -l with 200 more unbound loop devices present (the loop backend's runs once left them behind):
# partmap looks for the image's loop device among them, one syscall per device
added=$(perl -e 'open(my $c, "+<", "/dev/loop-control") or exit; my @a;
	for my $i (1000 .. 1199) { push @a, $i if ioctl($c, 0x4C80, $i) }
	print "@a"')
trap 'perl -e '"'"'open(my $c, "+<", "/dev/loop-control"); ioctl($c, 0x4C81, $_ + 0) for @ARGV'"'"' $added; rm -rf "$t"' EXIT
f=$t/gpt128.img
hyperfine -N -w 3 -r "$RUNS" --export-json "$t/h.json" "$t/nop" "$PARTMAP kpartx -l $f" "$t/nop again" \
	"partx --show $f" >/dev/null 2>&1
read -r nop pm px < <(jq -r "$floor_pm_rest" "$t/h.json")
printf '%-14s %10.2fms %10s %10.2fms %10.2fms %9s %9.1fx %8.2fx %9.2fx   (%d loop devices present)\n' "gpt128+200lo" "$pm" "-" \
	"$px" "$nop" "-" "$(echo "$px / $pm" | bc -l)" "$(echo "$pm / $nop" | bc -l)" "$(turns "$PARTMAP" kpartx -l "$f")" \
	"$(ls /sys/block | grep -c '^loop')"
