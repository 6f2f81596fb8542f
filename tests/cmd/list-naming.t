#!/usr/bin/env bash
# Map names and the device column of kpartx -l: block devices, attached images, no loop-control.
. "$(dirname "$0")/lib.sh"

mkimg "$TMP/disk.img" 32M <<'S'
label: dos
start=2048, size=8192
start=10240, type=5
start=12288, size=4096
S

# a block device as given: names after it, device as given, parent device for logicals
attach dev "$TMP/disk.img" || { fail "attach"; done_testing; exit; }
n=${dev#/dev/}
same "$("$PARTMAP" kpartx -l "$dev")" "${n}p1 : 0 8192 $dev 2048
${n}p2 : 0 2 $dev 10240
${n}p5 : 0 4096 $dev 12288" "block device: <name>p<N>, logicals on the parent at absolute starts"
same "$("$PARTMAP" kpartx -l -p _part "$dev" | cut -d' ' -f1 | tr '\n' ' ')" "${n}_part1 ${n}_part2 ${n}_part5 " "-p sets the delimiter"
same "$("$PARTMAP" kpartx -l -p '' "$dev" | cut -d' ' -f1 | tr '\n' ' ')" "${n}1 ${n}2 ${n}5 " "-p '' gives no delimiter"
# the image file itself, already attached: named after that loop device, no new loop
before=$(losetup -a | wc -l)
same "$("$PARTMAP" kpartx -l "$TMP/disk.img" | head -1)" "${n}p1 : 0 8192 $dev 2048" "attached image: named after its loop device"
is "$(losetup -a | wc -l)" "$before" "-l attaches no loop device"

# a symlink to the block device: the base is the link's own name (as kpartx: path as given)
ln -s "$dev" "$TMP/guestdisk"
same "$("$PARTMAP" kpartx -l "$TMP/guestdisk" | head -1)" "guestdisk1 : 0 8192 $TMP/guestdisk 2048" "symlink: named after the path as given, no delimiter after a letter"

# an image not attached: the index LOOP_CTL_GET_FREE gives, as kpartx and -a use
cp "$TMP/disk.img" "$TMP/other.img"
free=$(losetup -f)
same "$("$PARTMAP" kpartx -l "$TMP/other.img" | head -1)" "${free#/dev/}p1 : 0 8192 $free 2048" "free image: named after the next free loop device"
is "$(losetup -a | wc -l)" "$before" "free image: -l attaches nothing"
# the bound loop devices are all smaller than this image: none can hold it whole, and no child
# process is made to ask their status (its fork cost -l more than all its work)
mkimg "$TMP/big.img" 64M <<'S'
label: dos
start=2048, size=8192
S
same "$("$PARTMAP" kpartx -l "$TMP/big.img" | head -1)" "${free#/dev/}p1 : 0 8192 $free 2048" "larger image: named after the next free loop device"
strace -f -e trace=clone,clone3,fork,vfork -o "$TMP/forks" "$PARTMAP" kpartx -l "$TMP/big.img" >/dev/null
is "$(grep -c 'clone\|fork' "$TMP/forks")" 0 "larger image: no child process asks the smaller loop devices' status"

# without access to loop-control (not root): named after the file, device = its absolute path
if command -v setpriv >/dev/null; then
	chmod 755 "$TMP"; chmod 644 "$TMP/other.img"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$PARTMAP" kpartx -l "$TMP/other.img" 2>&1)
	same "$(head -1 <<<"$out")" "other.img1 : 0 8192 $TMP/other.img 2048" "non-root: names after the file, no root needed"
else
	skip "setpriv not available"
fi

# a 4096-byte loop device: BLKSSZGET decides
attach dev4 -b 4096 "$TMP/disk.img"
same "$("$PARTMAP" kpartx -l "$dev4" 2>"$TMP/err")" "${dev4#/dev/}p1 : 0 49152 $dev4 16384" \
	"4096-byte loop device: the table read in 4096-byte sectors (BLKSSZGET), p1 cut at the end, the rest dropped"
grep -q "dropped" "$TMP/err"; ok $? "4096-byte loop device: warns about what lies past the end"
# --json uuid: the kernel's PARTUUID of DOS partitions (disk signature - number), as partx shows it;
# none for labels nested in a DOS slot (the kernel gives them none either)
mkimg "$TMP/sig.img" 32M <<'S'
label: dos
label-id: 0x5eed1e55
start=2048, size=8192
start=10240, type=5
start=12288, size=4096
start=18432, size=4096
S
same "$("$PARTMAP" kpartx -l --json "$TMP/sig.img" | jq -r '.partitions[] | "\(.number) \(.uuid)"')" \
	"$(partx --show -g -o NR,UUID "$TMP/sig.img" | awk '{print $1, $2}')" "--json uuid of DOS partitions equals partx's PARTUUID"
is "$("$PARTMAP" kpartx -l --json "$TMP/sig.img" | jq -r '.partitions[2].uuid')" 5eed1e55-05 "--json uuid of p5: 5eed1e55-05"
# -l costs at most one syscall per loop device present (it was two per unbound one): 100 more
# unbound devices made here (LOOP_CTL_ADD), removed at the end
added=$(perl -e 'open(my $c, "+<", "/dev/loop-control") or exit; my @a;
	for my $i (700 .. 799) { push @a, $i if ioctl($c, 0x4C80, $i) }  # LOOP_CTL_ADD
	print "@a"')
defer "perl -e 'open(my \$c, \"+<\", \"/dev/loop-control\"); ioctl(\$c, 0x4C81, \$_ + 0) for @ARGV' $added"
nloops=$(ls /sys/block | grep -c '^loop')
calls=$(strace -c -e trace=openat,open,access,stat,newfstatat,readlink "$PARTMAP" kpartx -l "$TMP/sig.img" 2>&1 >/dev/null |
	awk '$NF == "total" {print $(NF-2)}')
[ -n "$added" ] && [ "$calls" -le 60 ]
ok $? "-l with $nloops loop devices: $calls file syscalls (/proc/partitions names the ones to look at; none per free device)"
# the image itself is opened once: type, size, table and format all come from that descriptor
is "$(strace -e trace=openat,open "$PARTMAP" kpartx -l "$TMP/sig.img" 2>&1 >/dev/null | grep -c "\"$TMP/sig.img\"")" 1 "-l opens the image once"
done_testing
