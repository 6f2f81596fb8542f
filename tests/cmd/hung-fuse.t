#!/usr/bin/env bash
# A FUSE server that is alive but does not answer (SIGSTOPped) must not hang partmap: the kernel's
# LOOP_GET_STATUS64 stats a loop device's backing file, and for a file on such a mount whose
# attributes are not cached (the userspace device mapper's files: never cached) it waits for the
# server. losetup -a, kpartx -l of another image and dmsetup ls (whose cleanup of a dead server walks
# the loop devices) finish, the unanswering device shown from sysfs, and left alone. Runs in a private
# mount namespace with its own /dev/mapper and /run/partmap. Also: another namespace that hides a copy
# of this one's server mount under a tmpfs leaves its device alone.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
udm_private
cd "$TMP" || exit 1
srv=
defer '[ -n "$srv" ] && kill -CONT $srv'

head -c 8M /dev/urandom >a.bin
attach LA "$TMP/a.bin"
echo "0 16384 linear $LA 0" | "$PARTMAP" dmsetup create hung
ok $? "a userspace DM device (its file on the server's FUSE mount, a loop device over it)"
srv=$(servers)
# its loop device: /dev/mapper/hung is the loop device itself
mm=$(majmin /dev/mapper/hung)
hl=/dev/$(basename "$(readlink -f "/sys/dev/block/$mm")")
case $hl in /dev/loop[0-9]*) pass "the device is $hl" ;; *) fail "the device's loop: $hl" ;; esac
back=$(cat "/sys/block/${hl#/dev/}/loop/backing_file")
mine() { grep -E "^($hl|$LA): "; } # the lines of this test's loop devices
before=$(losetup -a | mine)
is "$(echo "$before" | wc -l)" 2 "util-linux losetup -a lists both loop devices while the server answers"
same "$("$PARTMAP" losetup -a | mine)" "$before" "partmap losetup -a: the same lines while the server answers"

# another image, for kpartx -l
truncate -s 16M other.img
printf 'label: dos\n2048,4096,83\n8192,,83\n' | sfdisk -q other.img

# another namespace (its own /run/partmap, without this one's mount in it) with a dead server: its
# next dmsetup cleans up, walking the loop devices (set up before the stop, run after it)
mkfifo go res
timeout 60 unshare -m --propagation private bash -c '
	P=$1; umount -R /run/partmap; mount -t tmpfs b /dev/mapper; mount -t tmpfs b /run/partmap
	echo "0 16384 linear $2 0" | "$P" dmsetup create other || { echo "create failed" >"$3/res"; exit 1; }
	ns=$(readlink /proc/self/ns/mnt)
	for p in $(pgrep -xf "partmap serve dm"); do
		[ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$ns" ] && kill -9 "$p"
	done
	echo "ready $(basename "$(readlink -f /sys/dev/block/$(stat -L -c "%Hr:%Lr" /dev/mapper/other))")" >"$3/res"
	read -r _ <"$3/go"
	out=$(timeout 20 "$P" dmsetup ls 2>&1); echo "$?:$out" >"$3/res"' _ "$PARTMAP" "$LA" "$TMP" &
bpid=$!
defer "kill $bpid"
read -r r bl < <(timeout 30 cat res)
is "$r" ready "another namespace: a device ($bl), its server killed"

kill -STOP "$srv"
ok $? "the server stopped (SIGSTOP)"
start=$SECONDS
out=$(timeout 20 "$PARTMAP" losetup -a); rc=$?
is "$rc" 0 "losetup -a finishes ($((SECONDS - start)) s) with the server stopped"
same "$(echo "$out" | mine)" "$(echo "$before" | sed "s|^$hl: .*|$hl: []: ($back)|")" \
	"... the stopped server's device as util-linux shows one it cannot ask ([]: and the path), the other as before"
out=$(timeout 20 "$PARTMAP" losetup -l -n -O NAME,BACK-FILE,OFFSET "$hl"); rc=$?
is "$rc:$(echo $out)" "0:$hl $back 0" "losetup -l of that device: name, backing file and offset from sysfs"
start=$SECONDS
out=$(timeout 20 "$PARTMAP" kpartx -l other.img); rc=$?
is "$rc" 0 "kpartx -l of another image finishes ($((SECONDS - start)) s)"
is "$(echo "$out" | awk '{print $4, $6}')" $'4096 2048\n24576 8192' "... and lists its two partitions (size, start)"
# a table over that loop device in yet another namespace (its own DM server; this one's mounts hidden
# under a tmpfs, not unmounted: umount would stat the stopped server's mount): the server asks the
# loop device's status (to read its file directly), in a process of its own that does not answer
# and is killed after 2 s; created all the same, and no zombie left in that long-lived server
start=$SECONDS
out=$(timeout 30 unshare -m --propagation private bash -c '
	mount -t tmpfs c /dev/mapper; mount -t tmpfs c /run/partmap
	echo "0 16384 linear $2 0" | "$1" dmsetup create -r over || exit 1
	sleep 0.5
	ns=$(readlink /proc/self/ns/mnt)
	for p in $(pgrep -xf "partmap serve dm"); do
		[ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$ns" ] && echo "zombies $(ps -o stat= --ppid "$p" | grep -c Z)"
	done
	"$1" dmsetup remove over' _ "$PARTMAP" "$hl" 2>&1); rc=$?
is "$rc" 0 "another namespace: a table over the stopped server's loop device is made and removed ($((SECONDS - start)) s)"
is "$out" "zombies 0" "... its DM server, which asked the loop device's status, has no zombie child"
start=$SECONDS
timeout 5 bash -c 'echo go >go'
out=$(timeout 30 cat res)
is "${out%%:*}" 0 "dmsetup ls in the other namespace finishes ($((SECONDS - start)) s)"
is "${out#*:}" "No devices found" "... cleans up its dead server's device and finds none"
wait $bpid
case $(cat "/sys/block/$bl/loop/backing_file" 2>/dev/null) in
/1 | /run/partmap/dm/fs/*) fail "... its loop device $bl is still bound"; losetup -d "/dev/$bl" ;;
*) pass "... its loop device $bl detached" ;;
esac
[ -e "/sys/block/${hl#/dev/}/loop/backing_file" ]; ok $? "... and leaves the stopped server's loop device bound"
diag "util-linux: $(timeout 5 losetup -a >/dev/null 2>&1; echo "losetup -a exit $? (124: timed out) with the server stopped")"

kill -CONT "$srv"
ok $? "the server continues (SIGCONT)"
cmp /dev/mapper/hung a.bin; ok $? "the device reads its bytes again"
same "$("$PARTMAP" losetup -a | mine)" "$before" "losetup -a: as before"
# a namespace made from this one (a copy of the server's mount in it) that hides the copy under a
# tmpfs on /run/partmap: no server of its own, and this one's device is not its to clean up
out=$(timeout 30 unshare -m --propagation private bash -c '
	mount -t tmpfs c /dev/mapper; mount -t tmpfs c /run/partmap; "$1" dmsetup ls' _ "$PARTMAP" 2>&1)
is "$out" "No devices found" "another namespace hiding this one's server mount: dmsetup ls finds no device"
[ -e "/sys/block/${hl#/dev/}/loop/backing_file" ] && cmp /dev/mapper/hung a.bin
ok $? "... and leaves this one's device bound: it reads its bytes"
"$PARTMAP" dmsetup remove hung; ok $? "remove"
srv=
done_testing
