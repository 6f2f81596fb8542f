#!/usr/bin/env bash
# partmap fuse as an ordinary user (nobody): no root, no loop device. The partition files hold exactly
# the partitions of qemu-img's raw conversion; debugfs reads a known file from one; unmounting leaves
# nothing. Then the errors partmap fuse names.
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v fusermount3 >/dev/null && [ -c /dev/fuse ] ||
	{ fail "qemu-img, fusermount3 or /dev/fuse missing (make deps)"; done_testing; exit; }
chmod 755 "$TMP"
cd "$TMP" || exit 1
SETPRIV=$(command -v setpriv)
# FUSE lets only the user who mounted in (not even root): every look at the mount is made as nobody
as_nobody() { "$SETPRIV" --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"; }
defer 'for d in $TMP/m*; do fusermount3 -u -z "$d" 2>/dev/null; umount -l "$d" 2>/dev/null; done; pkill -9 -f "^partmap fuse .*$TMP"'

mkdir -p files && seq 1 50000 >files/numbers.txt
truncate -s 64M disk.raw
printf 'label: dos\n2048,20480,83\n22528,,5\n24576,32768,83\n' | sfdisk -q disk.raw
mkfs.ext4 -q -F -d files -E offset=$((24576 * 512)) disk.raw 16384k >/dev/null 2>&1
qemu-img convert -q -f raw -O qcow2 -c disk.raw disk.qcow2
chmod 644 disk.raw disk.qcow2

for img in disk.qcow2 disk.raw; do
	m=$TMP/m-${img#*.}
	mkdir -p "$m" && chown nobody "$m"
	as_nobody "$PARTMAP" fuse "$img" "$m" 2>err
	ok $? "$img as nobody: partmap fuse exit 0"
	is "$(as_nobody stat -c %U "$m/disk" 2>/dev/null)" nobody "$img: the files belong to the user"
	is "$(as_nobody ls "$m" | tr '\n' ' ')" "disk p1 p2 p5 " "$img: disk and one file per partition"
	as_nobody cmp -s "$m/disk" disk.raw; ok $? "$img: disk equals the raw disk"
	for p in 1:2048:20480 2:22528:2 5:24576:32768; do
		IFS=: read -r n start size <<<"$p"
		dd if=disk.raw bs=512 skip="$start" count="$size" status=none | as_nobody cmp -s - "$m/p$n"
		ok $? "$img: p$n holds exactly the partition's bytes"
	done
	is "$(as_nobody debugfs -R 'cat /numbers.txt' "$m/p5" 2>/dev/null | sha256sum)" "$(sha256sum <files/numbers.txt)" \
		"$img: debugfs reads a known file from the partition file, as nobody"
	as_nobody "$PARTMAP" fuse -u "$m"; ok $? "$img: partmap fuse -u exit 0"
	sleep 0.2
	is "$(grep -c " $m " /proc/mounts)" 0 "$img: unmounted"
	is "$(pgrep -f "^partmap fuse .*$m" | wc -l)" 0 "$img: the server has exited"
done
# writes: a raw image is writable by its owner through the partition file
cp disk.raw rw.raw && chown nobody rw.raw && mkdir -p m-rw && chown nobody m-rw
as_nobody "$PARTMAP" fuse rw.raw m-rw && printf 'through-p1' | as_nobody dd of=m-rw/p1 conv=notrunc status=none
as_nobody "$PARTMAP" fuse -u m-rw
is "$(dd if=rw.raw bs=512 skip=2048 count=1 status=none | head -c 10 | tr -d '\0')" through-p1 "raw: a write to p1 lands at the partition's offset"
# -f stays in the foreground until unmounted
mkdir -p m-fg && chown nobody m-fg
as_nobody "$PARTMAP" fuse -f disk.qcow2 m-fg 2>/dev/null & fg=$!
for _ in $(seq 50); do [ -e m-fg/disk ] && break; sleep 0.1; done
kill -0 $fg 2>/dev/null; ok $? "-f: the server is the process started"
as_nobody "$PARTMAP" fuse -u m-fg; wait $fg; ok $? "-f: exits 0 when unmounted"

# errors: each exits 1 with a message and mounts nothing
err() { as_nobody "$PARTMAP" fuse "$@" >/dev/null 2>err; echo $?; }
is "$(err disk.qcow2 "$TMP/nonexistent")" 1 "missing folder: exit 1"
grep -q "nonexistent: No such file" err; ok $? "missing folder: says so"
mkdir -p full && touch full/x && chmod 777 full
is "$(err disk.qcow2 full)" 1 "folder not empty: exit 1"
grep -q "not empty" err; ok $? "folder not empty: says so"
is "$(err missing.qcow2 m-qcow2)" 1 "missing image: exit 1"
grep -q "missing.qcow2: No such file" err; ok $? "missing image: says so"
truncate -s 64k bad.qcow2 && printf 'QFI\xfb\0\0\0\7' | dd of=bad.qcow2 conv=notrunc status=none && chmod 644 bad.qcow2
is "$(err bad.qcow2 m-qcow2)" 1 "unreadable image: exit 1"
grep -q "version 7" err; ok $? "unreadable image: names the reason"
is "$(PATH=/nonexistent as_nobody "$PARTMAP" fuse disk.qcow2 m-qcow2 >/dev/null 2>err; echo $?)" 1 "no fusermount3: exit 1"
grep -q "fusermount3 not found" err; ok $? "no fusermount3: names it and its package"
is "$(unshare -m bash -c 'mount -t tmpfs x /dev && setpriv --reuid=nobody --regid=nogroup --clear-groups "$0" fuse disk.qcow2 m-qcow2' "$PARTMAP" 2>err >/dev/null; echo $?)" 1 "no /dev/fuse: exit 1"
grep -q "/dev/fuse" err; ok $? "no /dev/fuse: says so"
is "$(grep -c "$TMP" /proc/mounts)" 0 "errors: nothing mounted"
done_testing
