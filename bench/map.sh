#!/usr/bin/env bash
# Benchmark of mapping a 128-partition GPT image and unmapping it again: partmap kpartx -a then -d
# per backend (part, loop), against losetup -P + partx -a / partx -d + losetup -d on the same image.
# The loop backend twice: as the machine is (each run has the kernel make the loop devices no free
# one is there for, and -d removes them again), and with 129 free loop devices made by this script
# beforehand (taken and kept: none made, none removed). Runs in a private mount namespace (its
# /dev/mapper is a tmpfs); needs root.
#   bench/map.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
RUNS=${RUNS:-10}
export PATH=$PATH:/usr/sbin:/sbin
if [ -z "${PARTMAP_IN_NS:-}" ]; then
	PARTMAP_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mkdir -p /dev/mapper
mount -t tmpfs bench-mapper /dev/mapper
t=$(mktemp -d)
img=$t/gpt128.img
spare=() # the free loop devices this script made (LOOP_CTL_ADD), removed at the end
cleanup() {
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>&1 || true
	for l in $(losetup -j "$img" -O NAME -n 2>/dev/null); do partx -d "$l" 2>/dev/null || true; losetup -d "$l" || true; done
	[ ${#spare[@]} -eq 0 ] || perl -e 'open(my $c, "+<", "/dev/loop-control") or exit; ioctl($c, 0x4C81, $_ + 0) for @ARGV' "${spare[@]}"
	rm -rf "$t"
}
free_loops() { local n=0 d; for d in /sys/block/loop*; do [ -d "$d" ] && [ ! -e "$d/loop/backing_file" ] && n=$((n + 1)); done; echo $n; }
trap cleanup EXIT
truncate -s 1G "$img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+4M"); done
sgdisk "${args[@]}" "$img" >/dev/null

cat >"$t/util-linux.sh" <<S
l=\$(losetup -f --show -P "$img"); partx -a "\$l"; partx -d "\$l"; losetup -d "\$l"
S
free=$(free_loops)
hyperfine -N -w 2 -r "$RUNS" --export-json "$t/h.json" \
	"bash $t/util-linux.sh" \
	"bash -c '$PARTMAP kpartx -a --backend=part $img && $PARTMAP kpartx -d $img'" \
	"bash -c '$PARTMAP kpartx -a --backend=loop $img && $PARTMAP kpartx -d $img'" >/dev/null
read -r ul part loop < <(jq -r '[.results[].mean] | map(. * 1000) | @tsv' "$t/h.json")
# how many loop devices one loop-backend run had the kernel make (and removed again), counted outside
# the timing, in the state the timed runs left
nloops() { ls /sys/block | grep -c '^loop' || true; }
n0=$(nloops); "$PARTMAP" kpartx -a --backend=loop "$img"; made=$(( $(nloops) - n0 )); "$PARTMAP" kpartx -d "$img"
# 129 free devices (the image's own and one a partition), at numbers nobody uses
read -r -a spare < <(perl -e 'open(my $c, "+<", "/dev/loop-control") or exit; my @a;
	for (my $i = 100000; @a < 129 && $i < 101000; $i++) { push @a, $i if -e "/sys/block/loop$i" ? 0 : ioctl($c, 0x4C80, $i) }
	print "@a\n"')
hyperfine -N -w 2 -r "$RUNS" --export-json "$t/h2.json" \
	"bash $t/util-linux.sh" \
	"bash -c '$PARTMAP kpartx -a --backend=loop $img && $PARTMAP kpartx -d $img'" >/dev/null
read -r ul2 loop2 < <(jq -r '[.results[].mean] | map(. * 1000) | @tsv' "$t/h2.json")
printf '%-58s %8.1f ms\n' "losetup -P + partx -a / partx -d + losetup -d" "$ul" \
	"partmap -a/-d, part backend (BLKPG)" "$part" \
	"partmap -a/-d, loop backend, $made loop devices made/removed" "$loop"
printf 'ratio util-linux/partmap: part %.2fx, loop %.2fx (above 1: partmap faster)\n' \
	"$(echo "$ul / $part" | bc -l)" "$(echo "$ul / $loop" | bc -l)"
printf '%-58s %8.1f ms\n' "losetup -P + partx -a / partx -d + losetup -d" "$ul2" \
	"partmap -a/-d, loop backend, ${#spare[@]} free devices there" "$loop2"
printf 'ratio util-linux/partmap: loop %.2fx with free devices to take\n' "$(echo "$ul2 / $loop2" | bc -l)"
echo "($free free loop devices at the start; partmap also makes the 128 /dev/mapper links; util-linux makes none)"
