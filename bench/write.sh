#!/usr/bin/env bash
# Benchmark of writing images through a mapped partition: a fresh 1 GiB qcow2 and a fresh VHDX (each
# a GPT disk, one partition), written through partmap's server + loop device (kpartx -a) and through
# qemu-storage-daemon's writable FUSE export of an identical image + a loop device (what a user runs
# without partmap). Sequential write (dd bs=1M oflag=direct, 256 MiB) and 4 KiB random write (fio,
# libaio, depth 16), side by side in one run; ratios partmap/qsd (goal >= 1.0x), and both servers'
# peak memory (VmHWM). Neither side skips a flush or uses lazy refcounts: qemu's defaults, partmap's
# crash-safe ordering. ROUNDS rounds (default 3) on fresh images, the two servers taking turns at going
# first, dirty pages written back before each measurement; medians printed (the writeback of the
# other side's image otherwise lands in whichever measurement comes second). Needs root; runs in a
# private mount namespace; images in WRITE_DIR (/var/tmp).
#   [FMTS="qcow2 vhdx"] [ROUNDS=3] bench/write.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
SECS=${SECS:-8}
MB=${MB:-256}
ROUNDS=${ROUNDS:-3}
export PATH=$PATH:/usr/sbin:/sbin
for c in qemu-img qemu-storage-daemon fio sfdisk losetup; do
	command -v $c >/dev/null || { echo "bench/write.sh: $c is missing (make deps)" >&2; exit 1; }
done
if [ -z "${PARTMAP_IN_NS:-}" ]; then
	PARTMAP_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mkdir -p /dev/mapper && mount -t tmpfs bench /dev/mapper
t=$(mktemp -d "${WRITE_DIR:-/var/tmp}/partmap-write.XXXXXX")
cleanup() {
	local l
	for l in $(losetup -n -O NAME,BACK-FILE | awk -v t="$t" 'index($2, t) == 1 { print $1 }'); do
		partx -d "$l" 2>/dev/null; losetup -d "$l" 2>/dev/null
	done
	pkill -f "qemu-storage-daemon.*$t" 2>/dev/null || true
	for f in "$t"/pm.*; do [ -e "$f" ] && "$PARTMAP" kpartx -d "$f" >/dev/null 2>&1; done
	umount -l "$t"/qsd.file 2>/dev/null || true
	rm -rf "$t"
}
trap cleanup EXIT

P1=2048 P1SZ=$(((1 << 21) - 4096)) # sectors: the partition, just under 1 GiB
truncate -s 1G "$t/disk.raw"
printf 'label: gpt\n%s,%s\n' $P1 $P1SZ | sfdisk -q "$t/disk.raw"
seq_write() { # MB/s of MB MiB written from the start of the device
	local s e
	s=$(date +%s.%N)
	dd if=/dev/zero of="$1" bs=1M count="$MB" oflag=direct conv=fsync status=none
	e=$(date +%s.%N)
	echo "$MB / ($e - $s)" | bc -l
}
rand_write() { # IOPS of 4 KiB random writes over the first MB MiB (fresh clusters and rewrites)
	fio --name=w --filename="$1" --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=16 \
		--runtime="$SECS" --time_based --size="${MB}M" --offset=$((MB))M --end_fsync=1 \
		--output-format=json 2>/dev/null | jq '.jobs[0].write.iops'
}
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

median() { sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
run_qsd() { # run_qsd FMT: one round's figures for qemu-storage-daemon, as "seq rand mem"
	local fmt=$1 qpid ql s r m
	# qemu-storage-daemon: the image as one FUSE file, a loop device at the partition
	: >"$t/qsd.file"
	qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$t/qsd.$fmt" \
		--blockdev driver="$fmt",node-name=fmt0,file=file0 \
		--export type=fuse,id=exp0,node-name=fmt0,mountpoint="$t/qsd.file",writable=on \
		--pidfile "$t/qsd.pid" --daemonize
	qpid=$(cat "$t/qsd.pid")
	ql=$(losetup -f --show -o $((P1 * 512)) --sizelimit $((P1SZ * 512)) "$t/qsd.file")
	sync; s=$(seq_write "$ql"); sync; r=$(rand_write "$ql")
	m=$(hwm "$qpid")
	losetup -d "$ql"; umount "$t/qsd.file"; kill "$qpid" 2>/dev/null || true
	echo "$s $r $m"
}
run_pm() { # run_pm FMT: the same for partmap (kpartx -a, the partition's node)
	local fmt=$1 ppid dev s r m
	"$PARTMAP" kpartx -a "$t/pm.$fmt" 2>/dev/null
	dev=$(readlink -f /dev/mapper/loop*p1 | head -1)
	ppid=$(pgrep -f "^partmap fuse .*pm.$fmt" | head -1)
	sync; s=$(seq_write "$dev"); sync; r=$(rand_write "$dev")
	m=$(hwm "$ppid")
	"$PARTMAP" kpartx -d "$t/pm.$fmt" >/dev/null
	echo "$s $r $m"
}

printf '%-6s %-8s %10s %10s %9s %9s %9s   (medians of %d rounds)\n' image tool "seq MB/s" "4k IOPS" "seq/qsd" "4k/qsd" \
	"peak KiB" "$ROUNDS"
for fmt in ${FMTS:-qcow2 vhdx}; do
	: >"$t/q.$fmt"; : >"$t/p.$fmt"
	for r in $(seq 1 "$ROUNDS"); do
		for who in qsd pm; do
			rm -f "$t/$who.$fmt"
			qemu-img convert -f raw -O "$fmt" "$t/disk.raw" "$t/$who.$fmt"
		done
		if [ $((r % 2)) -eq 1 ]; then
			run_qsd "$fmt" >>"$t/q.$fmt"; run_pm "$fmt" >>"$t/p.$fmt"
		else
			run_pm "$fmt" >>"$t/p.$fmt"; run_qsd "$fmt" >>"$t/q.$fmt"
		fi
		printf '%s round %d: qsd %s, partmap %s (seq MB/s, 4k IOPS, peak KiB)\n' "$fmt" "$r" \
			"$(tail -1 "$t/q.$fmt" | awk '{printf "%.0f %.0f %s", $1, $2, $3}')" \
			"$(tail -1 "$t/p.$fmt" | awk '{printf "%.0f %.0f %s", $1, $2, $3}')"
	done
	col() { awk '{print $'"$2"'}' "$1" | median; }
	q_seq=$(col "$t/q.$fmt" 1) q_rand=$(col "$t/q.$fmt" 2) q_mem=$(col "$t/q.$fmt" 3)
	p_seq=$(col "$t/p.$fmt" 1) p_rand=$(col "$t/p.$fmt" 2) p_mem=$(col "$t/p.$fmt" 3)
	printf '%-6s %-8s %10.0f %10.0f %9s %9s %9s\n' "$fmt" qsd "$q_seq" "$q_rand" "" "" "$q_mem"
	printf '%-6s %-8s %10.0f %10.0f %8.2fx %8.2fx %9s\n' "$fmt" partmap "$p_seq" "$p_rand" \
		"$(echo "$p_seq / $q_seq" | bc -l)" "$(echo "$p_rand / $q_rand" | bc -l)" "$p_mem"
	qemu-img check -q "$t/pm.$fmt" && echo "$fmt: partmap's image: qemu-img check clean" ||
		echo "$fmt: partmap's image: qemu-img check reports a problem"
done
