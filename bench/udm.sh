#!/usr/bin/env bash
# Benchmark of the device mapper in userspace: sequential read and write (dd bs=1M, O_DIRECT, 256 MiB,
# caches dropped first) and 4 KiB random read (fio, libaio, depth 16) through a served linear device
# over a loop device, against the loop device itself; a served striped device over two loop devices
# against the same; and, when the crypt target is there, aes-xts-plain64 against served linear.
# Side by side in one run, ROUNDS rounds (default 3) with the two sides taking turns at going first;
# the medians of the rounds' figures and ratios printed (goal: >= 0.5x; single runs on a shared
# machine differ by up to 2x), and the server's peak memory (VmHWM).
# Needs root; runs in a private mount namespace with its own /dev/mapper and /run/partmap.
#   [ROUNDS=3] bench/udm.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
SECS=${SECS:-6}
MB=${MB:-256}
ROUNDS=${ROUNDS:-3}
export PATH=$PATH:/usr/sbin:/sbin PARTMAP_DM=user
command -v fio >/dev/null || { echo "bench/udm.sh: fio is missing (make deps)" >&2; exit 1; }
if [ -z "${PARTMAP_IN_NS:-}" ]; then
	PARTMAP_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mkdir -p /dev/mapper /run/partmap
mount -t tmpfs bench /dev/mapper
mount -t tmpfs bench /run/partmap
t=$(mktemp -d /var/tmp/partmap-udm.XXXXXX)
loops=()
cleanup() {
	"$PARTMAP" dmsetup remove_all >/dev/null 2>&1 || true
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$t"
}
trap cleanup EXIT
dms() { "$PARTMAP" dmsetup "$@"; }
for i in 1 2; do
	truncate -s $((MB * 2 + 64))M "$t/b$i"
	dd if=/dev/urandom of="$t/b$i" bs=1M count=$((MB + 32)) conv=notrunc status=none
	loops+=("$(losetup -f --show "$t/b$i")")
done
L1=${loops[0]} L2=${loops[1]}
S=$(blockdev --getsz "$L1")

# dd's rate in MB/s, whatever unit it chose
rate() { awk '/copied/ { v = $(NF-1); u = $NF; if (u == "GB/s") v *= 1000; else if (u == "kB/s") v /= 1000; printf "%.0f", v }'; }
seqread() { sync; echo 3 >/proc/sys/vm/drop_caches; dd if="$1" of=/dev/null bs=1M count=$MB iflag=direct 2>&1 | rate; }
seqwrite() { dd if=/dev/zero of="$1" bs=1M count=$MB oflag=direct 2>&1 | rate; }
randread() {
	fio --name=r --filename="$1" --rw=randread --bs=4k --iodepth=16 --ioengine=libaio --direct=1 --size=${MB}M \
		--time_based --runtime=$SECS --output-format=terse --terse-version=3 2>/dev/null | awk -F';' '{print $8}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
median() { sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
row() { # row NAME DEV BASE-DEV: ROUNDS rounds, the medians
	local r1 r0 w1 w0 q1 q0 i
	: >"$t/row"
	for i in $(seq 1 "$ROUNDS"); do
		if [ $((i % 2)) -eq 1 ]; then
			r0=$(seqread "$3"); r1=$(seqread "$2"); w0=$(seqwrite "$3"); w1=$(seqwrite "$2")
			q0=$(randread "$3"); q1=$(randread "$2")
		else
			r1=$(seqread "$2"); r0=$(seqread "$3"); w1=$(seqwrite "$2"); w0=$(seqwrite "$3")
			q1=$(randread "$2"); q0=$(randread "$3")
		fi
		echo "$r1 $r0 $w1 $w0 $q1 $q0" >>"$t/row"
	done
	col() { awk '{print '"$1"'}' "$t/row" | median; }
	printf '%-28s seq read %6.0f vs %6.0f (%.2fx)  seq write %6.0f vs %6.0f (%.2fx)  4k randread %7.0f vs %7.0f IOPS (%.2fx)\n' \
		"$1" "$(col '$1')" "$(col '$2')" "$(col '$1 / $2')" "$(col '$3')" "$(col '$4')" "$(col '$3 / $4')" \
		"$(col '$5')" "$(col '$6')" "$(col '$5 / $6')"
}

echo "0 $S linear $L1 0" | dms create blin
echo "0 $((S * 2 / 256 * 256)) striped 2 128 $L1 0 $L2 0" | dms create bstr
echo "units: MB/s (dd) and IOPS (fio); served device vs the reference, ${MB} MiB, caches dropped; medians of $ROUNDS rounds (ratios: the median of each round's)"
row "linear over loop vs loop" /dev/mapper/blin "$L1"
dms remove blin
# a reference for striping: the two loop devices read one after the other at the same total size
row "striped 2x128 vs loop" /dev/mapper/bstr "$L1"
dms remove bstr
if dms targets | grep -q '^crypt'; then
	echo "0 $S linear $L1 0" | dms create blin
	echo "0 $S crypt aes-xts-plain64 $(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n') 0 $L2 0" | dms create bcrypt
	row "crypt aes-xts vs served linear" /dev/mapper/bcrypt /dev/mapper/blin
fi
pid=$(pgrep -f "partmap serve dm" | head -1)
[ -n "$pid" ] && echo "server peak memory (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
