#!/usr/bin/env bash
# The userspace device mapper per mount namespace: a server killed in one namespace is cleaned up by
# the next dmsetup there, and that cleanup leaves alone the devices another namespace's server serves
# (the same /run/partmap/dm paths in both: it used to detach every loop device on such a path).
. "$(dirname "$0")/lib.sh"
export PARTMAP_DM=user
if [ -e /sys/module/dm_mod ] || grep -q device-mapper /proc/misc; then
	echo "1..0 # SKIP this kernel has a device mapper: the userspace one is tested in tests/vm/"
	exit 0
fi
cd "$TMP" || exit 1
head -c 8M /dev/urandom >a.bin; head -c 8M /dev/urandom >b.bin
attach LA "$TMP/a.bin"; attach LB "$TMP/b.bin"
# namespace A: a device, kept while B's server dies and B cleans up; A's process reads it at the end
mkfifo go done
unshare -m --propagation private bash -c '
	P=$1; mkdir -p /dev/mapper /run/partmap
	mount -t tmpfs a /dev/mapper; mount -t tmpfs a /run/partmap
	echo "0 16384 linear $2 0" | "$P" dmsetup create nsa || exit 1
	echo created >"$3/done"; read -r _ <"$3/go"
	cmp /dev/mapper/nsa "$3/a.bin" && echo same >"$3/done" || echo differ >"$3/done"
	"$P" dmsetup remove nsa' _ "$PARTMAP" "$LA" "$TMP" &
apid=$!
is "$(cat done)" created "namespace A: a served device"
# namespace B: a device, its server killed, then any dmsetup cleans up the dead server's devices
out=$(unshare -m --propagation private bash -c '
	P=$1; mkdir -p /dev/mapper /run/partmap
	mount -t tmpfs b /dev/mapper; mount -t tmpfs b /run/partmap
	echo "0 16384 linear $2 0" | "$P" dmsetup create nsb || exit 1
	fs=$(stat -c %d /run/partmap/dm/fs)
	ns=$(readlink /proc/self/ns/mnt)
	for p in $(pgrep -xf "partmap serve dm"); do
		[ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$ns" ] && kill -9 "$p"
	done
	sleep 0.5
	"$P" dmsetup ls
	# loop devices on the dead server'"'"'s files (BACK-MAJ:MIN is its mount'"'"'s device)
	losetup -n -O BACK-MAJ:MIN | awk -v d="$((fs >> 8 & 0xfff)):$((fs & 0xff | fs >> 12 & 0xfff00))" "\$1 == d" | wc -l' _ "$PARTMAP" "$LB")
is "$out" $'No devices found\n0' "namespace B: after its server was killed, ls cleans up its loop devices and finds nothing"
echo go >go
is "$(cat done)" same "namespace A: its device still reads its bytes after B's cleanup"
wait $apid
done_testing
