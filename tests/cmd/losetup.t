#!/usr/bin/env bash
# partmap losetup against util-linux losetup on the same files: every listing format, attach options,
# the offset walkthrough (one partition by byte offset and size limit), 4096-byte sectors, a 1 TiB
# sparse file, bad input, and a container /dev.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
L() { "$PARTMAP" losetup "$@"; }

truncate -s 10M "$TMP/a.img"; truncate -s 20M "$TMP/b.img"
defer release_image "$TMP/a.img"; defer release_image "$TMP/b.img"
d1=$(L -f --show "$TMP/a.img"); ok $? "-f --show attaches and prints the device"
[[ $d1 =~ ^/dev/loop[0-9]+$ ]]; ok $? "--show prints /dev/loopN"
d2=$(L -f --show -o 1MiB --sizelimit 2MiB -r "$TMP/a.img")
d3=$(losetup -f --show -o 4096 --sizelimit 1048576 "$TMP/b.img")
d4=$(L -f --show -b 4096 --direct-io=on "$TMP/b.img")
is "$(cat /sys/block/${d2#/dev/}/loop/offset) $(cat /sys/block/${d2#/dev/}/loop/sizelimit) $(cat /sys/block/${d2#/dev/}/ro)" "1048576 2097152 1" "-o 1MiB --sizelimit 2MiB -r: offset, size limit, read-only"
is "$(cat /sys/block/${d4#/dev/}/queue/logical_block_size) $(cat /sys/block/${d4#/dev/}/loop/dio)" "4096 1" "-b 4096 --direct-io=on: sector size and direct I/O"
for a in "-a" "-l" "-l -n" "--list --output-all" "-l --output-all -n" "-J" "-l --output-all --json" "-l --raw" \
	"-l -O NAME,BACK-FILE" "-l -O NAME,MAJ:MIN,BACK-MAJ:MIN,BACK-INO,PARTSCAN" "-j $TMP/a.img" "-j $TMP/a.img -o 1048576" \
	"-j $TMP/b.img" "$d2" "$d3" "-l $d4"; do
	# shellcheck disable=SC2086
	same "$(L $a 2>&1)" "$(losetup $a 2>&1)" "losetup $a: same output as util-linux"
done
same "$(L)" "$(losetup)" "losetup (no arguments): same output as util-linux"
out=$(L -v -f "$TMP/a.img")
[[ $out =~ ^Loop\ device\ is\ (/dev/loop[0-9]+)$ ]] && losetup -j "$TMP/a.img" | grep -q "^${BASH_REMATCH[1]}:"
ok $? "-v -f prints 'Loop device is /dev/loopN' for the device it attached"
# -c: the file grew, the device follows
truncate -s 30M "$TMP/b.img"
L -c "$d4"; ok $? "-c exit 0"
is "$(blockdev --getsize64 "$d4")" 31457280 "-c: the device has the new size"
# detach several at once
L -d "$d1" "$d2" "$d3" "$d4"; ok $? "-d with several devices"
is "$(losetup -j "$TMP/a.img"; losetup -j "$TMP/b.img")" "$(losetup -j "$TMP/a.img" | grep -v "$d1\|$d2")$(losetup -j "$TMP/b.img" | grep -v "$d3\|$d4")" "-d: those four are detached"
release_image "$TMP/a.img"; release_image "$TMP/b.img"

# the offset walkthrough: mount one partition of an image by byte offset and size limit, read-only
for ss in 512 4096; do
	img=$TMP/disk$ss.img
	rm -f "$img"; truncate -s 64M "$img"
	if [ $ss = 512 ]; then
		printf 'start=2048, size=20480\nstart=22528, size=40960\n' | sfdisk -q "$img" >/dev/null
	else
		printf 'n\np\n1\n\n+10M\nn\np\n2\n\n+20M\nw\n' | fdisk -b 4096 "$img" >/dev/null 2>&1
	fi
	defer release_image "$img"
	read -r off size < <("$PARTMAP" kpartx -l --json "$img" | jq -r '.partitions[] | select(.number == 2) | "\(.start_bytes) \(.size_bytes)"')
	# put a filesystem with a file there first, through a writable loop of the same range
	w=$(L -f --show -o "$off" --sizelimit "$size" -b $ss "$img")
	mkfs.ext4 -q -F "$w" >/dev/null 2>&1 && mkdir -p "$TMP/mnt" && mount "$w" "$TMP/mnt" && echo "sector size $ss" >"$TMP/mnt/hello" && umount "$TMP/mnt"
	L -d "$w"
	dev=$(L -f --show -o "$off" --sizelimit "$size" -r -b $ss "$img"); ok $? "$ss: -f -o $off --sizelimit $size -r -b $ss"
	is "$(blockdev --getsize64 "$dev") $(blockdev --getro "$dev") $(blockdev --getss "$dev")" "$size 1 $ss" "$ss: the device is the partition: size, read-only, sector size"
	mount -o ro "$dev" "$TMP/mnt" && is "$(cat "$TMP/mnt/hello")" "sector size $ss" "$ss: mount ext4 read-only and read the file back"
	umount "$TMP/mnt"
	L -d "$dev"; ok $? "$ss: umount and detach"
	is "$(losetup -j "$img")" "" "$ss: nothing left attached"
done

# a 1 TiB sparse file, written near its end, stays small
truncate -s 1T "$TMP/big.img"
defer release_image "$TMP/big.img"
dev=$(L -f --show "$TMP/big.img")
is "$(blockdev --getsize64 "$dev")" 1099511627776 "1 TiB sparse file attached"
dd if=/dev/urandom of="$dev" bs=4096 count=16 seek=$(( (1 << 40) / 4096 - 100 )) oflag=direct status=none; ok $? "written near its end through the loop device"
L -d "$dev"
kb=$(du -k "$TMP/big.img" | cut -f1)
[ "$kb" -lt 1024 ]; ok $? "the file stays sparse ($kb KiB allocated)"

# the race for a free device: eight attaches at once all succeed, each on its own device
for i in 1 2 3 4 5 6 7 8; do truncate -s 1M "$TMP/r$i.img"; defer release_image "$TMP/r$i.img"; done
for i in 1 2 3 4 5 6 7 8; do L -f --show "$TMP/r$i.img" >"$TMP/r$i.out" 2>&1 & done
wait
devs=$(cat "$TMP"/r?.out | sort)
is "$(grep -c '^/dev/loop' <<<"$devs") $(sort -u <<<"$devs" | wc -l)" "8 8" "eight concurrent -f attaches: eight distinct devices"
for i in 1 2 3 4 5 6 7 8; do release_image "$TMP/r$i.img"; done

# bad input: a clear message, exit 1, nothing attached
before=$(losetup -a | wc -l)
bad() { # bad DESCRIPTION ARGS...
	local d=$1; shift
	L "$@" >"$TMP/out" 2>"$TMP/err"; is $? 1 "$d: exit 1"
	[ -s "$TMP/err" ]; ok $? "$d: says why ($(head -c 90 "$TMP/err"))"
}
truncate -s 1M "$TMP/small.img"; defer release_image "$TMP/small.img"
bad "missing file" -f --show "$TMP/nonexistent.img"
bad "a directory" -f --show "$TMP"
bad "offset past the end" -f --show -o 2MiB "$TMP/small.img"
bad "a size limit of less than a sector" -f --show --sizelimit 100 "$TMP/small.img"
bad "bad size suffix" -f --show -o 12XB "$TMP/small.img"
busy=$(L -f --show "$TMP/small.img"); defer "losetup -d $busy"
bad "a busy device" "$busy" "$TMP/small.img"
bad "detach of an unbound device" -d "$(losetup -f)"
L -d "$busy"
is "$(losetup -a | wc -l)" "$before" "bad input left nothing attached"

# what the kernel answers is checked: EAGAIN retried (udev holding the device), the old calls when
# LOOP_CONFIGURE is refused, a configure that did nothing is caught (faults injected with strace)
st() { # st INJECT-SPEC ARGS...: partmap losetup under strace, ioctls logged to $TMP/st.log
	local spec=$1; shift
	strace -o "$TMP/st.log" -e trace=ioctl -e "inject=ioctl:$spec" "$PARTMAP" losetup "$@"
}
d=$(st error=EAGAIN:when=2..3 -f --show -o 4096 --sizelimit 1MiB "$TMP/small.img" 2>"$TMP/err")
is "$? $(grep -c 'LOOP_CONFIGURE.*EAGAIN' "$TMP/st.log")" "0 2" "EAGAIN twice from LOOP_CONFIGURE: tried again, exit 0"
is "$(losetup -n -O OFFSET,SIZELIMIT "$d" 2>&1 | xargs)" "4096 1048576" "after EAGAIN: offset and size limit set"
L -d "$d"
d=$(st error=EINVAL:when=2 -f --show -o 4096 --sizelimit 1MiB "$TMP/small.img" 2>"$TMP/err")
is "$? $(grep -c 'LOOP_SET_FD\|LOOP_SET_STATUS64' "$TMP/st.log")" "0 2" "LOOP_CONFIGURE refused: LOOP_SET_FD + LOOP_SET_STATUS64"
is "$(losetup -n -O OFFSET,SIZELIMIT "$d" 2>&1 | xargs)" "4096 1048576" "the old calls: offset and size limit set"
L -d "$d"
st retval=0:when=2 -f --show "$TMP/small.img" >"$TMP/out" 2>"$TMP/err"
is "$? $(wc -c <"$TMP/out")" "1 0" "LOOP_CONFIGURE that did nothing: exit 1, no device printed"
grep -q "not set the device up as asked" "$TMP/err"; ok $? "... and says so ($(head -c 100 "$TMP/err"))"
st error=EAGAIN:when=2+ -f --show "$TMP/small.img" >"$TMP/out" 2>"$TMP/err"
is "$? $(grep -c 'LOOP_CONFIGURE' "$TMP/st.log")" "1 40" "EAGAIN for ever: a bounded 40 tries, then exit 1"
# the free device removed by another process between LOOP_CTL_GET_FREE and its open (ENXIO, as
# partmap's own -d now removes devices): another free one is taken (exit 1 before)
d=$(strace -o "$TMP/dry.log" -e trace=openat "$PARTMAP" losetup -f --show "$TMP/small.img")
L -d "$d"
k=$(grep '^openat' "$TMP/dry.log" | grep -n '"/dev/loop[0-9]' | head -1 | cut -d: -f1)
d=$(strace -o "$TMP/st.log" -e trace=openat -e "inject=openat:error=ENXIO:when=${k:-1}" "$PARTMAP" losetup -f --show "$TMP/small.img" 2>"$TMP/err")
is "$? $(grep -c '"/dev/loop[0-9]*".*ENXIO' "$TMP/st.log")" "0 1" "free device gone before its open (ENXIO): another try, exit 0"
[ -n "$d" ] && L -d "$d"
is "$(losetup -j "$TMP/small.img")" "" "fault injection left nothing attached"
# a kernel that ignores lo_sizelimit in LOOP_CONFIGURE (5.8 to 5.10), played by a preloaded ioctl()
# that drops it: partmap sees the device larger than asked and sets the limit again
cat >"$TMP/nolimit.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/loop.h>
#include <stdarg.h>
int ioctl(int fd, unsigned long req, ...)
{
	static int (*real)(int, unsigned long, void *);
	va_list ap;
	void *arg;
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
	if (req == LOOP_CONFIGURE)
		((struct loop_config *)arg)->info.lo_sizelimit = 0;
	return real(fd, req, arg);
}
C
cc -shared -fPIC -o "$TMP/nolimit.so" "$TMP/nolimit.c" -ldl
d=$(LD_PRELOAD=$TMP/nolimit.so "$PARTMAP" losetup -f --show -o 4096 --sizelimit 512KiB "$TMP/small.img")
is "$? $(cat /sys/block/${d#/dev/}/loop/sizelimit 2>&1) $(blockdev --getsize64 "$d")" "0 524288 524288" \
	"a kernel that drops the size limit: partmap sets it again (device of 512 KiB, not the whole file)"
L -d "$d"
mkfifo "$TMP/fifo"
timeout 5 "$PARTMAP" losetup -r -f --show "$TMP/fifo" >/dev/null 2>"$TMP/err"
is $? 1 "a FIFO with -r: exit 1 at once, no hang on the open"

# a container's /dev: no loop-control gives 'no free device'; nodes that are missing are made
(
	nodes=()
	for n in null zero loop-control; do nodes+=("$n $(stat -c '%t %T' /dev/$n)"); done
	mount -t tmpfs ctr /dev
	for e in "${nodes[@]}"; do read -r n a b <<<"$e"; mknod /dev/$n c $((16#$a)) $((16#$b)); done
	mv /dev/loop-control /dev/loop-control.off
	"$PARTMAP" losetup -f --show "$TMP/small.img" >/dev/null 2>"$TMP/err"; echo "nofree $? $(wc -c <"$TMP/err")"
	mv /dev/loop-control.off /dev/loop-control
	d=$("$PARTMAP" losetup -f --show "$TMP/small.img"); echo "made $? $([ -b "$d" ] && echo node)"
	rm -f "$d"
	"$PARTMAP" losetup -a | grep -c "^$d (lost): "
	"$PARTMAP" losetup -d "$d"; echo "detach $?"
) >"$TMP/ctr" 2>&1
grep -q "^nofree 1 [1-9]" "$TMP/ctr"; ok $? "container without loop-control: exit 1 with a message"
grep -q "^made 0 node" "$TMP/ctr"; ok $? "container: the new loop device's node is made from sysfs"
grep -qx 1 "$TMP/ctr"; ok $? "container: a bound device without a node is listed as (lost)"
grep -q "^detach 0" "$TMP/ctr"; ok $? "container: -d makes the node again to detach"
is "$(losetup -j "$TMP/small.img")" "" "container: nothing left attached"
done_testing
