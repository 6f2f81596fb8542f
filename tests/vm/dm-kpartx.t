#!/usr/bin/env bash
# partmap kpartx over the device mapper, compared with Debian's kpartx in the same kernel.
. "$(dirname "$0")/lib.sh"
export DM_DISABLE_UDEV=1
state() { # names, uuids, tables of all maps, sorted
	dmsetup table 2>/dev/null | sort
	dmsetup info -c --noheadings -o name,uuid,attr 2>/dev/null | sort
}
nmaps() { dmsetup ls 2>/dev/null | grep -vc '^No devices'; }

mkimg "$TMP/dos.img" 64M <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, size=8192, type=82
start=18432, type=5
start=20480, size=8192
start=30720, size=8192
start=40960, size=16384
S
rm -f "$TMP/gpt.img"; truncate -s 64M "$TMP/gpt.img"
args=(); for i in $(seq 1 20); do args+=(-n "$i:0:+2M"); done; sgdisk "${args[@]}" "$TMP/gpt.img" >/dev/null

# Debian's kpartx finds an image's loop device only through udev's /dev/block links, which a system
# without udev lacks: both tools are compared on the same loop device.
for t in dos gpt; do
	img=$TMP/$t.img
	defer release_image "$img"
	attach L "$img"; n=${L#/dev/}
	kpartx -a -v "$L" >"$TMP/kv" 2>/dev/null; ok $? "$t: Debian kpartx -a"
	theirs=$(state)
	is "$(nmaps)" "$([ $t = dos ] && echo 6 || echo 20)" "$t: Debian kpartx made its maps"
	kpartx -d "$L" >/dev/null 2>&1
	is "$(nmaps)" 0 "$t: Debian kpartx -d removed them"
	"$PARTMAP" kpartx -a -v "$L" >"$TMP/pv" 2>"$TMP/err"; ok $? "$t: partmap kpartx -a"
	"$PARTMAP" kpartx -a -v "$L" 2>&1 >/dev/null | grep -q "backend dm"; ok $? "$t: partmap chose the device mapper"
	ours=$(state)
	same "$ours" "$theirs" "$t: identical dmsetup table, names, UUIDs and attributes"
	same "$(sort "$TMP/pv")" "$(sort "$TMP/kv")" "$t: identical -v add map lines"
	[ -b /dev/mapper/${n}p1 ] && [ "$(stat -c %t:%T /dev/mapper/${n}p1)" = "$(printf '%x:%x' $(dmsetup info -c --noheadings -o major,minor --separator ' ' ${n}p1))" ]
	ok $? "$t: no udev: partmap made /dev/mapper/${n}p1 with the map's number"
	# maps made by partmap removed by Debian kpartx -d, and the other way round
	kpartx -d "$L" >/dev/null 2>&1; ok $? "$t: Debian kpartx -d removes partmap's maps"
	is "$(nmaps)" 0 "$t: no maps left"
	kpartx -a "$L" >/dev/null 2>&1
	"$PARTMAP" kpartx -d -v "$L" >"$TMP/out" 2>&1; ok $? "$t: partmap kpartx -d removes Debian kpartx's maps"
	is "$(nmaps)" 0 "$t: no maps left"
	ls /dev/mapper | grep -qv control; ok $((! $?)) "$t: no nodes left in /dev/mapper"
	losetup -d "$L"
	# an image file: partmap attaches, maps, unmaps and detaches
	"$PARTMAP" kpartx -a "$img"; ok $? "$t image: partmap kpartx -a on the file"
	is "$(nmaps)" "$([ $t = dos ] && echo 6 || echo 20)" "$t image: all maps"
	"$PARTMAP" kpartx -d "$img"; ok $? "$t image: -d"
	is "$(nmaps) $(losetup -j "$img" | wc -l)" "0 0" "$t image: no maps, loop detached"
done

# data written through a map lands at the partition's offset in the image
img=$TMP/dos.img
"$PARTMAP" kpartx -a "$img"
n=$(losetup -j "$img" -O NAME -n | head -1); n=${n#/dev/}
head -c 1M /dev/urandom >"$TMP/pattern"
dd if="$TMP/pattern" of=/dev/mapper/${n}p5 bs=1M oflag=direct status=none; sync
cmp -s "$TMP/pattern" <(dd if="$img" bs=512 skip=20480 count=2048 status=none); ok $? "data written to ${n}p5 is in the image at sector 20480"
# -u after a table change: p6 deleted (the old p7 becomes p6), p1 shrunk
"$PARTMAP" kpartx -a "$img"
sfdisk -q --no-reread --no-tell-kernel --delete "$img" 6 >/dev/null
echo 'start=2048, size=4096, type=83' | sfdisk -q --no-reread --no-tell-kernel -N 1 "$img" >/dev/null 2>&1
"$PARTMAP" kpartx -u "$img"; ok $? "-u after a table change"
is "$(dmsetup ls | awk '{print $1}' | sort | tr '\n' ' ')" "${n}p1 ${n}p2 ${n}p3 ${n}p5 ${n}p6 " "-u: p7 removed"
is "$(dmsetup table ${n}p6 | awk '{print $2, $5}')" "16384 40960" "-u: p6 re-made where the old p7 was"
is "$(blockdev --getsz /dev/mapper/${n}p1)" 4096 "-u: p1 re-made with its new size"
# busy: a mounted map is named and left; all the others removed
mkfs.ext4 -q -F /dev/mapper/${n}p5 >/dev/null 2>&1; mkdir -p "$TMP/mnt"; mount /dev/mapper/${n}p5 "$TMP/mnt"
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; is $? 1 "-d with a mounted map: exit 1"
grep -q "${n}p5: in use" "$TMP/err"; ok $? "-d: names the busy map"
is "$(dmsetup ls | awk '{print $1}' | tr '\n' ' ')" "${n}p5 " "-d: all other maps removed"
umount "$TMP/mnt"; "$PARTMAP" kpartx -d "$img"; ok $? "-d after unmounting"
# -p changes the names: maps found by UUID are renamed
"$PARTMAP" kpartx -a "$img"; "$PARTMAP" kpartx -a -p _x "$img"
is "$(dmsetup ls | awk '{print $1}' | sort | tr '\n' ' ')" "${n}_x1 ${n}_x2 ${n}_x3 ${n}_x5 ${n}_x6 " "-a -p: existing maps renamed, none added"
[ -b /dev/mapper/${n}_x1 ] && [ ! -e /dev/mapper/${n}p1 ]; ok $? "-a -p: the nodes follow the names"
"$PARTMAP" kpartx -d "$img"
# a same-named map that is not ours is left alone (the image will get the first free loop device)
n=$(losetup -f); n=${n#/dev/}
dmsetup create ${n}p1 --table "0 8 zero"
"$PARTMAP" kpartx -a "$img" 2>"$TMP/err"; is $? 1 "a same-named foreign map: exit 1"
grep -q "not a partition of" "$TMP/err"; ok $? "a same-named foreign map: said so"
is "$(dmsetup table ${n}p1)" "0 8 zero " "a same-named foreign map: left untouched"
"$PARTMAP" kpartx -d "$img"
dmsetup remove ${n}p1

# the nodes partmap makes get the parent's mode and owner
attach P "$img"
chmod 0640 "$P"; chown 6:6 "$P"
"$PARTMAP" kpartx -a "$P"
is "$(stat -c '%a %u:%g' /dev/mapper/${P#/dev/}p1)" "640 6:6" "/dev/mapper nodes copy the parent's mode and owner"
"$PARTMAP" kpartx -d "$P"; losetup -d "$P"

# a udev that never answers (its control socket is there, nobody counts the cookies down): partmap
# waits no longer than the bound, once, then makes the nodes itself and says so; -n does not wait
# (/run/udev made here goes again: mdadm takes the directory for a running udev and then waits for
# nodes nobody makes, which broke every later mdadm --create in the VM run)
made_run_udev=; [ -d /run/udev ] || made_run_udev=1
mkdir -p /run/udev && : >/run/udev/control
sems_before=$(grep -c . /proc/sysvipc/sem)
s=$(date +%s)
env -u DM_DISABLE_UDEV PARTMAP_UDEV_TIMEOUT=2 "$PARTMAP" kpartx -a "$img" 2>"$TMP/err"; ok $? "udev silent: -a exit 0"
took=$(( $(date +%s) - s ))
[ "$took" -ge 2 ] && [ "$took" -lt 20 ]; ok $? "udev silent: one bounded wait, not one per map (${took} s)"
grep -q "udev did not confirm" "$TMP/err"; ok $? "udev silent: says it made the nodes itself"
n=$(losetup -j "$img" -O NAME -n | head -1); n=${n#/dev/}
[ -b /dev/mapper/${n}p1 ] && [ -b /dev/mapper/${n}p5 ]; ok $? "udev silent: the nodes are there"
is "$(grep -c . /proc/sysvipc/sem)" "$sems_before" "udev silent: no cookie semaphore left behind"
env -u DM_DISABLE_UDEV "$PARTMAP" kpartx -d "$img"
s=$(date +%s)
env -u DM_DISABLE_UDEV "$PARTMAP" kpartx -a -n "$img" 2>/dev/null; ok $? "udev silent, -n: exit 0"
[ $(( $(date +%s) - s )) -lt 10 ]; ok $? "udev silent, -n: no waiting"
[ ! -e /dev/mapper/${n}p1 ]; ok $? "udev silent, -n: nodes left to udev"
env -u DM_DISABLE_UDEV PARTMAP_UDEV_TIMEOUT=1 "$PARTMAP" kpartx -d "$img" 2>/dev/null; ok $? "udev silent: -d"
is "$(dmsetup ls)" "No devices found" "udev silent: all maps removed"
# a run killed while it waits for udev leaves its cookie semaphore: dmsetup udevcomplete_all clears it
env -u DM_DISABLE_UDEV PARTMAP_UDEV_TIMEOUT=60 "$PARTMAP" kpartx -a "$img" 2>/dev/null &
pid=$!
for _ in $(seq 1 100); do awk 'NR > 1 && int($1 / 65536) == 3405 { f = 1 } END { exit !f }' /proc/sysvipc/sem && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
cookies() { awk 'NR > 1 && int($1 / 65536) == 3405' /proc/sysvipc/sem | wc -l; }
is "$(cookies)" 1 "killed while waiting for udev: its cookie semaphore is left"
out=$("$PARTMAP" dmsetup udevcomplete_all); ok $? "dmsetup udevcomplete_all exit 0"
is "$out" "1 semaphores with keys prefixed by 0x0D4D (device-mapper cookies) destroyed." "udevcomplete_all says what it destroyed"
is "$(cookies)" 0 "udevcomplete_all: no cookie left"
rm -f /run/udev/control; [ -n "$made_run_udev" ] && rmdir /run/udev
"$PARTMAP" kpartx -d "$img"; is "$(dmsetup ls)" "No devices found" "the killed run's maps removed by -d"
# a map with no live table (a run killed between making a map and loading it: the run above leaves
# that now and then): partmap knows it by its UUID, -a loads it, -d removes it
"$PARTMAP" kpartx -a "$img"; n=$(losetup -j "$img" -O NAME -n | head -1); n=${n#/dev/}
p6size=$(blockdev --getsz /dev/mapper/${n}p6)
dmsetup remove ${n}p6 && dmsetup create ${n}p6 --notable -u "part6-devnode_$(cat /sys/block/$n/dev)_Wh5pYvM"
is "$(dmsetup table ${n}p6)" "" "a map with no table made by dmsetup --notable"
"$PARTMAP" kpartx -a "$img" 2>"$TMP/err"; ok $? "-a over a map with no table: exit 0" || sed 's/^/# /' "$TMP/err"
is "$(blockdev --getsz /dev/mapper/${n}p6 2>/dev/null)" "$p6size" "-a over a map with no table: loaded, the partition's size"
dmsetup remove ${n}p6 && dmsetup create ${n}p6 --notable -u "part6-devnode_$(cat /sys/block/$n/dev)_Wh5pYvM"
"$PARTMAP" kpartx -d "$img"; ok $? "-d with a map with no table: exit 0"
is "$(dmsetup ls)" "No devices found" "-d removes the map with no table too"

# -r: read-only maps
"$PARTMAP" kpartx -a -r "$img"
n=$(losetup -j "$img" -O NAME -n | head -1); n=${n#/dev/}
is "$(dmsetup info -c --noheadings -o attr ${n}p1)" "L--r" "-r: attributes L--r as kpartx's"
dd if=/dev/zero of=/dev/mapper/${n}p1 bs=512 count=1 oflag=direct status=none 2>/dev/null; ok $((! $?)) "-r: a write fails"
"$PARTMAP" kpartx -d "$img"

# a partitioned DM parent (standing in for an LVM volume): <name>1 names, part1-<uuid> UUIDs
attach base "$img"
dmsetup create vg0-guest --uuid LVM-partmaptest --table "0 $(blockdev --getsz "$base") linear $base 0"
kpartx -a /dev/mapper/vg0-guest; theirs=$(state | grep -v "^vg0-guest[: ]" )
kpartx -d /dev/mapper/vg0-guest
"$PARTMAP" kpartx -a /dev/mapper/vg0-guest; ours=$(state | grep -v "^vg0-guest[: ]")
same "$ours" "$theirs" "DM parent: same maps as Debian kpartx"
grep -q "^vg0-guest1:part1-LVM-partmaptest:" <<<"$ours"; ok $? "DM parent: vg0-guest1 with UUID part1-LVM-partmaptest"
"$PARTMAP" kpartx -d /dev/mapper/vg0-guest
is "$(dmsetup ls | awk '{print $1}')" "vg0-guest" "DM parent: -d leaves the parent alone"
# a disk that is not a loop device never gets BLKPG partitions (its own would pass for ours)
"$PARTMAP" kpartx -a --backend=part /dev/mapper/vg0-guest 2>"$TMP/err"; is $? 1 "not a loop device: --backend=part refused"
grep -q "cannot be used here" "$TMP/err"; ok $? "not a loop device: says why"
"$PARTMAP" kpartx -a --backend=loop /dev/mapper/vg0-guest; ok $? "not a loop device: --backend=loop maps it"
is "$(blockdev --getsz /dev/mapper/vg0-guest5 2>/dev/null)" 8192 "not a loop device: vg0-guest5 through a loop over the DM device"
"$PARTMAP" kpartx -d /dev/mapper/vg0-guest; ok $? "not a loop device: -d"
is "$(losetup -a | grep -c "$(basename "$base")" ) $(ls /dev/mapper | grep -c 'vg0-guest[0-9]')" "1 0" "not a loop device: its loops and links gone"
dmsetup remove vg0-guest

# a 4096-byte-sector image over the device mapper
rm -f "$TMP/4k.img"; truncate -s 64M "$TMP/4k.img"
printf 'n\np\n1\n\n+16M\nn\ne\n2\n\n\nn\n\n+16M\nw\n' | fdisk -b 4096 "$TMP/4k.img" >/dev/null 2>&1
defer release_image "$TMP/4k.img"
"$PARTMAP" kpartx -a -v "$TMP/4k.img" >"$TMP/out"; ok $? "4096: -a"
n=$(losetup -j "$TMP/4k.img" -O NAME -n | head -1); n=${n#/dev/}
is "$(blockdev --getss /dev/mapper/${n}p5) $(blockdev --getsz /dev/mapper/${n}p5)" "4096 32768" "4096: ${n}p5 has 4096-byte sectors and 16 MiB"
mkfs.ext4 -q -F /dev/mapper/${n}p5 >/dev/null 2>&1 && mount /dev/mapper/${n}p5 "$TMP/mnt" && umount "$TMP/mnt"; ok $? "4096: a filesystem on ${n}p5 mounts"
"$PARTMAP" kpartx -d "$TMP/4k.img"; ok $? "4096: -d"
# -d -f: kpartx's meaning: on a parent without a DM UUID, linear maps over it that no kpartx made
# (here one with an LVM- UUID, as an LVM volume on a loop device has) go too; without -f they stay
mkimg "$TMP/force.img" 32M <<'S'
label: dos
start=2048, size=8192, type=83
S
defer release_image "$TMP/force.img"
attach FL "$TMP/force.img"
for tool in partmap debian; do
	K=kpartx; [ $tool = partmap ] && K="$PARTMAP kpartx"
	$K -a "$FL" >/dev/null 2>&1
	dmsetup create lvlike -u LVM-forcetestvg-forcetestlv --table "0 1024 linear $FL 12288"
	dmsetup create striplike --table "0 1024 striped 2 8 $FL 20480 $FL 22528"
	$K -d "$FL" >/dev/null 2>&1
	is "$(dmsetup ls | awk '{print $1}' | grep -E '^(lvlike|striplike)$' | sort | tr '\n' ' ')" "lvlike striplike " \
		"[$tool] -d without -f leaves the LVM-like and the striped map"
	$K -a "$FL" >/dev/null 2>&1
	$K -d -f -v "$FL" >"$TMP/fout" 2>&1
	is "$(dmsetup ls | awk '{print $1}' | grep -E '^(lvlike|striplike|'"${FL#/dev/}"'p1)$' | tr '\n' ' ')" "striplike " \
		"[$tool] -d -f removes the partition and the LVM-like linear map, not the striped one"
	grep -q "del devmap : lvlike" "$TMP/fout"; ok $? "[$tool] -d -f -v names the LVM-like map"
	dmsetup remove striplike
done
done_testing
