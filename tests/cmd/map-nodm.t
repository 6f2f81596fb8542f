#!/usr/bin/env bash
# kpartx -a/-d/-u without the device mapper, for both backends (part: BLKPG partitions on the image's
# loop device; loop: one loop device per partition): sizes, a filesystem round trip checked through
# the image itself, idempotence, -u, busy mappings, -r, and -d after kill -9 in the middle of -a.
. "$(dirname "$0")/lib.sh"
private_ns "$@"

mk4() { # image with 2 primaries and 2 logicals
	mkimg "$1" 64M <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, size=8192, type=83
start=18432, type=5
start=20480, size=16384, type=83
start=38912, size=16384, type=83
S
}
mapper_count() { find /dev/mapper -mindepth 1 -maxdepth 1 ! -name control | wc -l; }

for backend in part loop; do
	img=$TMP/$backend.img
	mk4 "$img"
	defer release_image "$img"
	out=$("$PARTMAP" kpartx -a -v --backend=$backend "$img"); rc=$?
	is "$rc" 0 "$backend: -a exit 0"
	loop=$(loops_of "$img" | head -1); n=${loop#/dev/}
	is "$(grep -c '^add map' <<<"$out")" 5 "$backend: -a -v prints 5 add map lines (p1 p2 p3 p5 p6)"
	grep -Eq "^add map ${n}p5 \([0-9]+:[0-9]+\): 0 16384 linear 7:[0-9]+ 20480$" <<<"$out"; ok $? "$backend: add map line in kpartx's format, logical at its absolute start"
	sizes=""
	for p in 1 2 3 5 6; do sizes+="$(blockdev --getsz /dev/mapper/${n}p$p 2>&1) "; done
	is "$sizes" "8192 8192 2 16384 16384 " "$backend: /dev/mapper nodes have the partitions' sizes"

	# a filesystem on a logical partition, a file written, then read back from the image itself
	mkfs.ext4 -q -F /dev/mapper/${n}p5 >/dev/null 2>&1; ok $? "$backend: mkfs.ext4 on ${n}p5"
	mkdir -p "$TMP/mnt"
	mount /dev/mapper/${n}p5 "$TMP/mnt" && echo "partmap $backend round trip" >"$TMP/mnt/hello" && umount "$TMP/mnt"
	ok $? "$backend: mount, write a file, unmount"

	# idempotent: -a again makes nothing new
	before_loops=$(loops_of "$img"); before_maps=$(ls /dev/mapper)
	"$PARTMAP" kpartx -a "$img" >/dev/null # no --backend: it stays with the one in use
	is "$(loops_of "$img")" "$before_loops" "$backend: -a twice attaches no more loop devices"
	is "$(ls /dev/mapper)" "$before_maps" "$backend: -a twice makes no more maps"

	# -r on an existing mapping set is not needed; -d removes everything, detaches the loop
	out=$("$PARTMAP" kpartx -d -v "$img" 2>&1); rc=$?
	is "$rc" 0 "$backend: -d exit 0"
	is "$(grep -c '^del devmap' <<<"$out")" 5 "$backend: -d -v prints 5 del devmap lines"
	grep -q "^loop deleted : $loop" <<<"$out"; ok $? "$backend: -d -v says the loop device was detached"
	is "$(loops_of "$img")" "" "$backend: no loop device left on the image"
	is "$(mapper_count)" 0 "$backend: /dev/mapper empty again"
	ls /dev/${n}p* >/dev/null 2>&1; is $? 2 "$backend: no partition nodes left"
	dd if="$img" of="$TMP/p5" bs=512 skip=20480 count=16384 status=none
	is "$(debugfs -R 'cat /hello' "$TMP/p5" 2>/dev/null)" "partmap $backend round trip" "$backend: the file is in the image at the partition's offset"
done

# -u: table changed on disk; a mounted mapping is not changed and is named
img=$TMP/u.img
mk4 "$img"
defer release_image "$img"
"$PARTMAP" kpartx -a "$img"
loop=$(loops_of "$img" | head -1); n=${loop#/dev/}
sfdisk -q --no-reread --no-tell-kernel --delete "$img" 2 >/dev/null
echo 'start=57344, size=4096, type=83' | sfdisk -q --no-reread --no-tell-kernel --append "$img" >/dev/null 2>&1
"$PARTMAP" kpartx -u "$img"; is $? 0 "-u after a table change: exit 0"
is "$(ls /dev/mapper | tr '\n' ' ')" "${n}p1 ${n}p3 ${n}p5 ${n}p6 ${n}p7 " "-u: p2 removed, logical p7 added"
is "$(blockdev --getsz /dev/mapper/${n}p7)" 4096 "-u: the new p7 has its size"
echo 'start=2048, size=4096, type=83' | sfdisk -q --no-reread --no-tell-kernel -N 1 "$img" >/dev/null 2>&1
"$PARTMAP" kpartx -u "$img"; is $? 0 "-u after p1 shrank: exit 0"
is "$(blockdev --getsz /dev/mapper/${n}p1)" 4096 "-u: the changed p1 is re-made with its new size"
mkfs.ext4 -q -F /dev/mapper/${n}p1 >/dev/null 2>&1; mount /dev/mapper/${n}p1 "$TMP/mnt"
echo 'start=2048, size=6144, type=83' | sfdisk -q --no-reread --no-tell-kernel -N 1 "$img" >/dev/null 2>&1
"$PARTMAP" kpartx -u "$img" 2>"$TMP/err"; is $? 1 "-u with a mounted partition that changed: exit 1"
grep -q "${n}p1: in use" "$TMP/err"; ok $? "-u: names the busy mapping"
is "$(blockdev --getsz /dev/mapper/${n}p1)" 4096 "-u: the busy mapping is left as it was"
# -d with a busy mapping: removes the others, names the busy one, keeps the loop
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; is $? 1 "-d with a mounted partition: exit 1"
grep -q "${n}p1: in use" "$TMP/err"; ok $? "-d: names the busy mapping"
is "$(ls /dev/mapper | tr '\n' ' ')" "${n}p1 " "-d: every other mapping removed"
umount "$TMP/mnt"
"$PARTMAP" kpartx -d "$img"; is $? 0 "-d after unmounting: exit 0"
is "$(loops_of "$img")" "" "-d after unmounting: loop detached"

# -r: read-only all the way down
img=$TMP/ro.img
mk4 "$img"
defer release_image "$img"
for backend in part loop; do
	"$PARTMAP" kpartx -a -r --backend=$backend "$img"
	n=$(loops_of "$img" | head -1); n=${n#/dev/}
	is "$(blockdev --getro /dev/mapper/${n}p1)" 1 "$backend -r: the mapping is read-only"
	dd if=/dev/zero of=/dev/mapper/${n}p1 bs=512 count=1 oflag=direct status=none 2>/dev/null; ok $((! $?)) "$backend -r: a write fails"
	"$PARTMAP" kpartx -d "$img"
done

# kill -9 in the middle of -a (128 partitions, loop backend), then -d leaves nothing behind
img=$TMP/big.img
rm -f "$img"; truncate -s 1G "$img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+1M"); done
sgdisk "${args[@]}" "$img" >/dev/null
defer release_image "$img"
# each /dev/mapper link delayed 20 ms under strace, so that the kill lands half way however fast -a is
strace -f -o /dev/null -e trace=symlink -e inject=symlink:delay_enter=20000 \
	"$PARTMAP" kpartx -a --backend=loop "$img" &
spid=$!
for _ in $(seq 1 500); do [ "$(mapper_count)" -ge 10 ] && break; sleep 0.01; done
pid=$(pgrep -P $spid | head -1)
kill -9 "$pid"; wait $spid 2>/dev/null
made=$(mapper_count)
[ "$made" -ge 10 ] && [ "$made" -lt 128 ]; ok $? "kill -9 during -a: stopped half way ($made of 128 mapped)"
# a link half-made by a killed run (symlink made, not yet renamed into place)
sleep 0 & dead=$!; wait $dead
ln -s /dev/loop0p1 "/dev/mapper/.loop0p1.partmap-$dead"
"$PARTMAP" kpartx -d "$img"; is $? 0 "-d after kill -9: exit 0"
is "$(loops_of "$img")" "" "-d after kill -9: no loop device left"
is "$(mapper_count)" 0 "-d after kill -9: /dev/mapper empty"

# two -a at once on one image: one loop device, one set of mappings
img=$TMP/race.img
mk4 "$img"
defer release_image "$img"
"$PARTMAP" kpartx -a "$img" & p1=$!
"$PARTMAP" kpartx -a "$img" & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
is "$r1 $r2" "0 0" "two -a at once: both succeed"
is "$(loops_of "$img" | wc -l)" 1 "two -a at once: one loop device"
is "$(mapper_count)" 5 "two -a at once: one set of mappings"
"$PARTMAP" kpartx -d "$img"

# 300 partitions: the kernel takes BLKPG numbers up to 255 only (-a mapped 255 and failed the rest
# with "Invalid argument"): partmap chooses per-partition loop devices for such a table
img=$TMP/p300.img
rm -f "$img"; truncate -s 1G "$img"
args=(); for i in $(seq 1 300); do args+=(-n "$i:0:+1M"); done
sgdisk -o -a 1 --resize-table=304 "${args[@]}" "$img" >/dev/null
defer release_image "$img"
start300=$("$PARTMAP" kpartx -l "$img" | awk '$1 ~ /p300$/ {print $6}')
printf 'partition-300' | dd of="$img" bs=512 seek="$start300" conv=notrunc status=none
loopset() { ls /sys/block | grep '^loop' | sort -V | xargs; }
set_before=$(loopset)
free_before=0
for d in /sys/block/loop*; do [ -d "$d" ] && [ ! -e "$d/loop/backing_file" ] && free_before=$((free_before + 1)); done
"$PARTMAP" kpartx -a -v "$img" >"$TMP/out" 2>"$TMP/err"; ok $? "300 partitions: -a exit 0"
made=$(( $(loopset | wc -w) - $(wc -w <<<"$set_before") ))
want=$(( free_before >= 301 ? 0 : 301 - free_before ))
is "$made" "$want" "300 partitions: 301 loop devices, the $free_before free ones first, $want made"
grep -q "backend loop" "$TMP/err"; ok $? "300 partitions: the loop backend chosen"
is "$(grep -c '^add map' "$TMP/out")" 300 "300 partitions: 300 maps"
n=$(loops_of "$img" | head -1); n=${n#/dev/}
is "$(head -c 13 /dev/mapper/${n}p300)" partition-300 "300 partitions: p300 reads its own bytes"
"$PARTMAP" kpartx -a --backend=part "$img" 2>"$TMP/err"; is $? 1 "300 partitions: --backend=part refused"
grep -q "above 255" "$TMP/err"; ok $? "300 partitions: --backend=part says why"
"$PARTMAP" kpartx -d "$img"; ok $? "300 partitions: -d exit 0"
is "$(mapper_count)" 0 "300 partitions: -d removed every mapping"
is "$(losetup -a | grep -c "$img")" 0 "300 partitions: no loop device left"
is "$(loopset)" "$set_before" "300 partitions: -d removed the $made loop devices made for partmap, kept the others"
# -d while something else holds the image's loop device (an open fd, or the user's own map on it):
# the mappings go, and the loop device is detached by the kernel when its last user closes it
# (LOOP_CLR_FD's deferred detach, as kpartx -d does); -d used to refuse with "busy", exit 1
img=$TMP/held.img
mk4 "$img"
defer release_image "$img"
"$PARTMAP" kpartx -a "$img"
l=$(loops_of "$img" | head -1)
exec 7<"$l"
"$PARTMAP" kpartx -d -v "$img" >"$TMP/out" 2>&1; ok $? "held loop device: -d exit 0"
is "$(mapper_count)" 0 "held loop device: the mappings are gone"
is "$(cat /sys/block/${l#/dev/}/loop/autoclear 2>/dev/null)" 1 "held loop device: detach deferred (autoclear)"
grep -q "loop deleted : $l" "$TMP/out"; ok $? "held loop device: says 'loop deleted' as kpartx does"
exec 7<&-
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(loops_of "$img")" ] && break; sleep 0.1; done
is "$(loops_of "$img")" "" "held loop device: released when the holder closed it"
# the parent is opened once and its type read from that descriptor: a FIFO or a directory is refused
# at once (the open does not block on the FIFO)
mkfifo "$TMP/fifo"
timeout 10 "$PARTMAP" kpartx -a "$TMP/fifo" 2>"$TMP/err"; is $? 1 "-a on a FIFO: exit 1, no hang"
grep -q "not a disk image or block device" "$TMP/err"; ok $? "-a on a FIFO: says why"
timeout 10 "$PARTMAP" kpartx -d "$TMP" 2>"$TMP/err"; is $? 1 "-d on a directory: exit 1"

# free loop devices cost nothing: -a and -d look for the image's devices among those with a size
# (/proc/partitions), not through a lookup per device (100 free ones made here, removed at the end)
added=$(perl -e 'open(my $c, "+<", "/dev/loop-control") or exit; my @a;
	for my $i (700 .. 799) { push @a, $i if ioctl($c, 0x4C80, $i) }  # LOOP_CTL_ADD
	print "@a"')
defer "perl -e 'open(my \$c, \"+<\", \"/dev/loop-control\"); ioctl(\$c, 0x4C81, \$_ + 0) for @ARGV' $added"
img=$TMP/free.img
mk4 "$img"
defer release_image "$img"
for a in "-a --backend=loop" -d; do
	calls=$(strace -f -c -e trace=openat,open,access,stat,newfstatat,readlink "$PARTMAP" kpartx $a "$img" 2>&1 >/dev/null |
		awk '$NF == "total" {print $(NF-2)}')
	[ -n "$added" ] && [ "${calls:-999}" -le 100 ]
	ok $? "kpartx $a (5 partitions) with 100 free loop devices: $calls file syscalls (at most 100; 450 before)"
done
is "$(loops_of "$img")$(mapper_count)" "0" "free loop devices: -d left nothing"
is "$(ls -d /sys/block/loop7[0-9][0-9] 2>/dev/null | wc -l)" 100 "free loop devices that were there before -a: all kept by -d"

# the file probed is the file mapped: an image replaced between the probe and the mapping is refused
# (strace holds the mapping's open for a second while another image is renamed over the path)
swap=$TMP/swap.img; other=$TMP/other.img
rm -f "$swap" "$other"; truncate -s 64M "$swap" "$other"
printf 'start=2048, size=4096\n' | sfdisk -q "$swap"
printf 'start=2048, size=4096\nstart=6144, size=4096\n' | sfdisk -q "$other"
defer release_image "$swap"
strace -f -o "$TMP/open.log" -e trace=openat "$PARTMAP" kpartx -a "$swap" >/dev/null
"$PARTMAP" kpartx -d "$swap" >/dev/null
k=$(grep -n "openat(AT_FDCWD, \"$swap\", O_RDWR" "$TMP/open.log" | head -1 | cut -d: -f1)
[ -n "$k" ]; ok $? "the mapping's open of the image found in a dry run (openat number $k)"
(sleep 0.4; mv "$other" "$swap") &
strace -f -o /dev/null -e "inject=openat:delay_enter=1500000:when=${k:-1}" "$PARTMAP" kpartx -a "$swap" >"$TMP/out" 2>"$TMP/err"
is $? 1 "image replaced during -a: exit 1"
grep -q "replaced while it was being opened" "$TMP/err"; ok $? "image replaced during -a: says so ($(head -c 80 "$TMP/err"))"
is "$(loops_of "$swap")$(mapper_count)" "0" "image replaced during -a: nothing mapped"
wait
done_testing
