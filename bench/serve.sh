#!/usr/bin/env bash
# Benchmark of serving images as block devices: a 1 GiB partition of a qcow2 (plain and zstd
# compressed) and a VMDK read through partmap's server + loop device (kpartx -a), through
# qemu-storage-daemon's FUSE export + a loop device, and through a loop device on the raw conversion;
# sequential (dd bs=1M) and 4 KiB random reads (fio, libaio, depth 16), side by side in one run.
# Ratios: partmap against qemu-storage-daemon, and against raw. Also the servers' peak memory
# (VmHWM), and `partmap fuse`'s partition file read sequentially against the same bytes of
# qemu-storage-daemon's file. Then cold and warm sequential reads: the page cache dropped
# (echo 3 > /proc/sys/vm/drop_caches) before each cold read, the same read again for the warm one,
# the plain qcow2's partition served by kpartx -a against a loop device on the raw conversion, REPS
# rounds taking turns; prints the median ratios. Needs root (loop devices, mounts, drop_caches); runs
# in a private mount namespace. The images live in SERVE_DIR (default /var/tmp: a disk; /dev/shm puts
# them in memory, so that the cold figures measure the serving, not the disk). PARTS=coldwarm runs only
# the cold/warm part.
#   bench/serve.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
SECS=${SECS:-8}
REPS=${REPS:-5}
PARTS=${PARTS:-table,coldwarm}
export PATH=$PATH:/usr/sbin:/sbin
for c in qemu-img qemu-storage-daemon fio sfdisk losetup; do
	command -v $c >/dev/null || { echo "bench/serve.sh: $c is missing (make deps)" >&2; exit 1; }
done
if [ -z "${PARTMAP_IN_NS:-}" ]; then
	PARTMAP_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mkdir -p /dev/mapper && mount -t tmpfs bench /dev/mapper
t=$(mktemp -d "${SERVE_DIR:-/var/tmp}/partmap-serve.XXXXXX")
served() { # the folder partmap serves an image of ours in (named after its device and inode)
	stat -c "/run/partmap/image-%Hd:%Ld-%i/" "$1"
}
cleanup() {
	local ours="" f
	for f in $t/*.qcow2 $t/*.vmdk; do [ -e "$f" ] && ours="$ours $(served "$f")"; done
	# loop devices on our images and on their servers' files only: other runs' are left alone
	for l in $(losetup -n -O NAME,BACK-FILE | awk -v t="$t" -v ours="$ours" '
		{ n = split(ours, o, " "); for (i = 1; i <= n; i++) if (index($2, o[i]) == 1) { print $1; next } }
		index($2, t) == 1 { print $1 }'); do
		partx -d "$l" 2>/dev/null; losetup -d "$l" 2>/dev/null
	done
	pkill -f "qemu-storage-daemon.*$t" 2>/dev/null || true
	for f in $t/*.qcow2 $t/*.vmdk; do "$PARTMAP" kpartx -d "$f" >/dev/null 2>&1 || true; done
	umount -l "$t"/qsd.file 2>/dev/null || true
	rm -rf "$t"
}
trap cleanup EXIT

P1=2048 P1SZ=$((1 << 21)) # sectors: 1 GiB at 1 MiB
truncate -s 1100M "$t/disk.raw"
printf 'label: gpt\n%s,%s\n' $P1 $P1SZ | sfdisk -q "$t/disk.raw"
dd if=/dev/urandom of="$t/disk.raw" bs=1M seek=1 count=512 conv=notrunc status=none
for i in $(seq 1 200); do cat /usr/share/common-licenses/* 2>/dev/null; done | head -c 512M |
	dd of="$t/disk.raw" bs=1M seek=513 conv=notrunc status=none iflag=fullblock
qemu-img convert -f raw -O qcow2 "$t/disk.raw" "$t/plain.qcow2"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$t/disk.raw" "$t/zstd.qcow2"
qemu-img convert -f raw -O vmdk "$t/disk.raw" "$t/sparse.vmdk"

seq_read() { # MB/s of reading the whole 1 GiB device
	local s e
	s=$(date +%s.%N)
	dd if="$1" of=/dev/null bs=1M count=1024 iflag=direct status=none
	e=$(date +%s.%N)
	echo "1024 / ($e - $s)" | bc -l
}
rand_read() { # IOPS of 4 KiB random reads
	fio --name=r --filename="$1" --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=16 \
		--runtime="$SECS" --time_based --size=1G --output-format=json 2>/dev/null | jq '.jobs[0].read.iops'
}
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

if [[ ,$PARTS, == *,table,* ]]; then
# raw: a loop device at the partition's offset
raw_loop=$(losetup -r -f --show -o $((P1 * 512)) --sizelimit $((P1SZ * 512)) "$t/disk.raw")
raw_seq=$(seq_read "$raw_loop"); raw_rand=$(rand_read "$raw_loop")
losetup -d "$raw_loop"

printf '%-12s %-10s %10s %10s %10s %10s %8s %8s %9s\n' image tool "seq MB/s" "4k IOPS" "vs qsd" "vs qsd" "vs raw" "vs raw" "peak KiB"
printf '%-12s %-10s %10.0f %10.0f\n' raw loop "$raw_seq" "$raw_rand"
for img in plain.qcow2 zstd.qcow2 sparse.vmdk; do
	fmt=${img##*.}
	f=$t/$img
	# qemu-storage-daemon: the image as one FUSE file, a loop device at the partition
	: >"$t/qsd.file"
	qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$f",read-only=on \
		--blockdev driver="$fmt",node-name=fmt0,file=file0,read-only=on \
		--export type=fuse,id=exp0,node-name=fmt0,mountpoint="$t/qsd.file",writable=off \
		--pidfile "$t/qsd.pid" --daemonize
	qpid=$(cat "$t/qsd.pid")
	ql=$(losetup -r -f --show -o $((P1 * 512)) --sizelimit $((P1SZ * 512)) "$t/qsd.file")
	q_seq=$(seq_read "$ql"); q_rand=$(rand_read "$ql")
	q_mem=$(hwm "$qpid")
	# the same bytes read as a file (no loop device): against partmap fuse's partition file below
	s=$(date +%s.%N); dd if="$t/qsd.file" of=/dev/null bs=1M skip=1 count=1024 status=none; e=$(date +%s.%N)
	q_file=$(echo "1024 / ($e - $s)" | bc -l)
	losetup -d "$ql"; umount "$t/qsd.file"; kill "$qpid" 2>/dev/null || true
	# partmap: kpartx -a, the partition's node
	"$PARTMAP" kpartx -a "$f" 2>/dev/null
	dev=$(readlink -f /dev/mapper/loop*p1 | head -1)
	ppid=$(pgrep -f "^partmap fuse .*$f" | head -1)
	p_seq=$(seq_read "$dev"); p_rand=$(rand_read "$dev")
	p_mem=$(hwm "$ppid")
	"$PARTMAP" kpartx -d "$f" >/dev/null
	printf '%-12s %-10s %10.0f %10.0f %10s %10s %8s %8s %9s\n' "$img" qsd "$q_seq" "$q_rand" "" "" "" "" "$q_mem"
	printf '%-12s %-10s %10.0f %10.0f %9.2fx %9.2fx %7.2fx %7.2fx %9s\n' "$img" partmap "$p_seq" "$p_rand" \
		"$(echo "$p_seq / $q_seq" | bc -l)" "$(echo "$p_rand / $q_rand" | bc -l)" \
		"$(echo "$p_seq / $raw_seq" | bc -l)" "$(echo "$p_rand / $raw_rand" | bc -l)" "$p_mem"
	# partmap fuse: the partition file
	mkdir -p "$t/m"
	"$PARTMAP" fuse -r "$f" "$t/m" 2>/dev/null
	s=$(date +%s.%N); dd if="$t/m/p1" of=/dev/null bs=1M status=none; e=$(date +%s.%N)
	p_file=$(echo "1024 / ($e - $s)" | bc -l)
	"$PARTMAP" fuse -u "$t/m"
	printf '%-12s %-10s %10.0f MB/s as a file; qsd file %0.f MB/s (%.2fx)\n' "$img" "pm fuse" "$p_file" "$q_file" \
		"$(echo "$p_file / $q_file" | bc -l)"
done
fi

# cold and warm sequential reads, REPS rounds: raw loop, then the plain qcow2 served by kpartx -a
if [[ ,$PARTS, == *,coldwarm,* ]]; then
	drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
	: >"$t/cw"
	for r in $(seq 1 "$REPS"); do
		raw_loop=$(losetup -r -f --show -o $((P1 * 512)) --sizelimit $((P1SZ * 512)) "$t/disk.raw")
		drop; rc=$(seq_read "$raw_loop"); rw=$(seq_read "$raw_loop")
		losetup -d "$raw_loop"
		"$PARTMAP" kpartx -a "$t/plain.qcow2" 2>/dev/null
		dev=$(readlink -f /dev/mapper/loop*p1 | head -1)
		drop; pc=$(seq_read "$dev"); pw=$(seq_read "$dev")
		"$PARTMAP" kpartx -d "$t/plain.qcow2" >/dev/null
		echo "$rc $rw $pc $pw" >>"$t/cw"
		printf 'round %d: raw %.0f / %.0f MB/s, kpartx -a %.0f / %.0f MB/s (cold / warm)\n' "$r" "$rc" "$rw" "$pc" "$pw"
	done
	median() { sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
	col() { awk '{print '"$1"'}' "$t/cw" | median; }
	printf '\nsequential reads of plain.qcow2 p1 (dd bs=1M iflag=direct), medians of %d rounds:\n' "$REPS"
	printf '%-6s %12s %12s %12s\n' "" "raw loop" "kpartx -a" "ratio"
	printf '%-6s %8.0f MB/s %7.0f MB/s %11.2fx\n' cold "$(col '$1')" "$(col '$3')" "$(col '$3 / $1')"
	printf '%-6s %8.0f MB/s %7.0f MB/s %11.2fx\n' warm "$(col '$2')" "$(col '$4')" "$(col '$4 / $2')"
	echo "ratio: the median of each round's partmap / raw (target: cold >= 0.5; warm as before)"
fi
