#!/usr/bin/env bash
# partmap dmsetup: splitname (compared with Debian's dmsetup, which needs no device mapper for it),
# ls --tree on the userspace device mapper (the text expected from lvm2's rules: libdm's dependency
# tree, the kernel listing a table's devices last-referenced first, lines cut at 80 columns when not
# on a terminal), and remove -f / remove_all -f of open devices (the table swapped for one that fails
# every I/O; on the userspace device mapper the device then goes at its last close). Runs in a
# private mount namespace with its own /dev/mapper and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
mkdir -p /run/partmap
mount -t tmpfs -o mode=755 partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
export PARTMAP_DM=auto LC_ALL=C
dms() { "$PARTMAP" dmsetup "$@"; }
# the loop devices of this test's served devices that are still attached: each noted with its
# diskseq, which a new attachment changes (other tests' servers, in their own namespaces, use the
# same paths and numbers and may take a loop device this test freed)
ours=()
note() { # note NAME...: the served devices' loop devices, as they are now
	local d l
	for d; do
		l=$(basename "$(readlink -f "/sys/dev/block/$(majmin "/dev/mapper/$d")")")
		ours+=("$l:$(cat "/sys/block/$l/diskseq")")
	done
}
served_loops() {
	local o n=0
	for o in "${ours[@]}"; do
		[ "$(cat "/sys/block/${o%%:*}/diskseq" 2>/dev/null)" = "${o#*:}" ] &&
			[ -n "$(cat "/sys/block/${o%%:*}/loop/backing_file" 2>/dev/null)" ] && n=$((n + 1))
	done
	echo $n
}
defer 'for p in $(servers); do kill -9 $p; done; "$PARTMAP" dmsetup remove_all; umount -l /run/partmap/dm/fs'
cd "$TMP" || exit 1

# ---- splitname: the same output and exit status as Debian's dmsetup ----
if [ -x /sbin/dmsetup ] || command -v dmsetup >/dev/null; then
	D=$(command -v dmsetup)
	while IFS= read -r args; do
		eval "set -- $args"
		want=$("$D" splitname "$@" 2>/dev/null; echo "[$?]")
		got=$(dms splitname "$@" 2>/dev/null; echo "[$?]")
		same "$got" "$want" "splitname $args: as Debian's dmsetup"
	done <<'EOF'
vg-lv
vg-lv-layer
vg--x-lv--y-_mlog
a
a-b-c-d
x-
a--
a---b
'a b-c d'
longvolumegroup-longlogicalvolume-layerxxxxx
vg-lv LVM
vg-lv lvm
vg-lv CRYPT -o subsystem,vg_name
vg-lv --noheadings
vg-lv --separator :
vg-lv --separator '' --noheadings
-c vg-lv
vg-lv -C -o lv_name,vg_name
vg-lv -o +subsystem
vg-lv -o splitname_all
vg-lv -o VG_NAME,lv_layer
vg-lv -o vg_name,,lv_name
vg-lv -o vg_name,
vg-lv -o ''
vg-lv -o foo
vg-lv -o vg
vg-lv -c --noheadings --separator '|'
''
a b c
EOF
else
	skip "splitname: no dmsetup here to compare with"
fi
dms splitname 2>err; is $? 1 "splitname without a name: exit 1"
grep -q "Incorrect number of arguments" err; ok $? "... says why"

if [ -e /sys/module/dm_mod ] || grep -q device-mapper /proc/misc; then
	done_testing
	echo "# SKIP the rest: this kernel has a device mapper (the userspace one is tested in tests/vm/)"
	exit 0
fi

# ---- ls --tree ----
is "$(dms ls --tree)" "No devices found" "ls --tree without devices"
truncate -s 8M a.img b.img
attach A a.img; attach B b.img
AM=$(majmin "$A") BM=$(majmin "$B")
{ echo "0 2048 linear $A 0" | dms create base-real &&
	echo "0 2048 linear $B 0" | dms create snap-cow &&
	dd if=/dev/zero of=/dev/mapper/snap-cow bs=4k count=1 oflag=direct status=none &&
	echo "0 2048 snapshot /dev/mapper/base-real /dev/mapper/snap-cow P 8" | dms create snap &&
	echo "0 2048 snapshot-origin /dev/mapper/base-real" | dms create base &&
	echo "0 4096 striped 2 8 $A 4096 $B 4096" | dms create stripe &&
	dms create --notable empty &&
	echo "0 100 zero" | dms create -r -u z-uuid z; } 2>err
ok $? "a stack: base and snap over base-real and snap-cow, stripe over both loops, empty, z" || diag "$(cat err)"
R=$(majmin /dev/mapper/base-real) C=$(majmin /dev/mapper/snap-cow) S=$(majmin /dev/mapper/snap)
O=$(majmin /dev/mapper/base) T=$(majmin /dev/mapper/stripe) E=$(majmin /dev/mapper/empty) Z=$(majmin /dev/mapper/z)
# the kernel lists a table's devices last-referenced first: snap's (cow, real), stripe's (B, A)
same "$(dms ls --tree)" "base ($O)
 \`-base-real ($R)
    \`- ($AM)
empty ($E)
snap ($S)
 |-snap-cow ($C)
 |  \`- ($BM)
 \`-base-real ($R)
    \`- ($AM)
stripe ($T)
 |- ($BM)
 \`- ($AM)
z ($Z)" "ls --tree: ascii lines in the C locale, devices under what uses them, loops by number"
same "$(dms ls --tree -o ascii)" "$(dms ls --tree)" "-o ascii: the same"
same "$(dms ls --tree -o ascii,inverted)" " ($AM)
 |-base-real ($R)
 |  |-base ($O)
 |  \`-snap ($S)
 \`-stripe ($T)
empty ($E)
 ($BM)
 |-snap-cow ($C)
 |  \`-snap ($S)
 \`-stripe ($T)
z ($Z)" "-o inverted: from the devices at the bottom up, in the order they were found"
same "$(dms ls --tree -o asc,inv)" "$(dms ls --tree -o ascii,inverted)" "options may be cut short (lvm2 compares prefixes)"
l1="snap ($S)" l2="stripe ($T)"
same "$(dms ls --tree -o ascii,compact)" "base ($O)---base-real ($R)--- ($AM)
empty ($E)
$l1-+-snap-cow ($C)--- ($BM)
$(printf '%*s' $((${#l1} + 1)) '')\`-base-real ($R)--- ($AM)
$l2-+- ($BM)
$(printf '%*s' $((${#l2} + 1)) '')\`- ($AM)
z ($Z)" "-o compact: one line per path"
same "$(dms ls --tree -o ascii,nodevice)" "base
 \`-base-real
empty
snap
 |-snap-cow
 \`-base-real
stripe
z" "-o nodevice: names only, the loops left out"
same "$(dms ls --tree -o ascii,blkdevname,nodevice)" "base <$(basename "$(readlink -f /sys/dev/block/$O)")>
 \`-base-real <$(basename "$(readlink -f /sys/dev/block/$R)")>
    \`- <${A#/dev/}>
empty <$(basename "$(readlink -f /sys/dev/block/$E)")>
snap <$(basename "$(readlink -f /sys/dev/block/$S)")>
 |-snap-cow <$(basename "$(readlink -f /sys/dev/block/$C)")>
 |  \`- <${B#/dev/}>
 \`-base-real <$(basename "$(readlink -f /sys/dev/block/$R)")>
    \`- <${A#/dev/}>
stripe <$(basename "$(readlink -f /sys/dev/block/$T)")>
 |- <${B#/dev/}>
 \`- <${A#/dev/}>
z <$(basename "$(readlink -f /sys/dev/block/$Z)")>" "-o blkdevname: the kernel's names of the block devices"
dms suspend stripe
same "$(dms ls --tree -o ascii,active,open,rw,uuid,nodevice)" "base [ACTIVE, RW, 0, ]
 \`-base-real [ACTIVE, RW, 2, ]
empty [ACTIVE, RW, 0, ]
snap [ACTIVE, RW, 0, ]
 |-snap-cow [ACTIVE, RW, 1, ]
 \`-base-real [ACTIVE, RW, 2, ]
stripe [SUSPENDED, RW, 0, ]
z [ACTIVE, RO, 0, z-uuid]" "-o active,open,rw,uuid: state, open count (a device's users count), read-only, uuid"
dms resume stripe
# UTF-8 lines where the locale says UTF-8
if locale -a 2>/dev/null | grep -qix 'c.utf-\?8'; then
	same "$(LC_ALL=C.UTF-8 "$PARTMAP" dmsetup ls --tree -o nodevice)" "base
 └─base-real
empty
snap
 ├─snap-cow
 └─base-real
stripe
z" "a UTF-8 locale: box-drawing lines"
	same "$(LC_ALL=C.UTF-8 "$PARTMAP" dmsetup ls --tree -o ascii,nodevice)" "$(dms ls --tree -o ascii,nodevice)" "... -o ascii: ascii all the same"
else
	skip "no C.UTF-8 locale here"
	skip "no C.UTF-8 locale here"
fi
dms ls --tree -o bogus >out 2>err; is $? 1 "-o bogus: exit 1"
is "$(cat err)" "Tree options not recognised: bogus." "... lvm2's words"
is "$(cat out)" "" "... nothing on stdout"
# lines are cut at 80 columns when stdout is not a terminal: 79 characters and "..."
long=$(printf 'l%.0s' $(seq 90))
{ echo "0 8 zero" | dms create "$long" && echo "0 8 zero" | dms create m80; } 2>err
ok $? "two devices with long names" || diag "$(cat err)"
L=$(majmin "/dev/mapper/$long") M=$(majmin /dev/mapper/m80)
n80=$(printf 'm%.0s' $(seq $((80 - ${#M} - 3))))
dms rename m80 "$n80"
full="$long ($L)"
dms ls --tree >out 2>err
is "$(grep '^l' out)" "${full:0:79}..." "a line over 80 columns: cut to 79 and '...'" || diag "$(cat out err)"
is "$(dms ls --tree -o notrunc | grep '^l')" "$full" "-o notrunc: whole"
line80="$n80 ($M)"
is "${#line80}:$(dms ls --tree | grep '^m')" "80:$line80" "a line of exactly 80 columns: whole"
dms remove --retry "$long" "$n80"
# ls -o
is "$(dms ls -o devname | grep '^z')" "z	(z)" "ls -o devname: the device's name"
is "$(dms ls -o blkdevname | grep '^z')" "z	($(basename "$(readlink -f /sys/dev/block/$Z)"))" "ls -o blkdevname: its block device's"
is "$(dms ls -o devno | grep '^z')" "z	($Z)" "ls -o devno: its number"
dms ls -o bogus 2>err; is $? 1 "ls -o bogus: exit 1"
is "$(cat err)" "Option not recognised: bogus." "... lvm2's words"
for d in base snap stripe snap-cow base-real empty z; do dms remove --retry $d || fail "remove $d"; done
is "$(dms ls)" "No devices found" "the stack removed"

# ---- remove -f of an open device ----
mkfifo go
echo "0 4096 linear $A 0" | dms create held 2>err; ok $? "create held" || diag "$(cat err)"
note held
head -c 1M /dev/urandom >r1 && dd if=r1 of=/dev/mapper/held bs=1M oflag=direct status=none 2>err
ok $? "1 MiB written to held" || diag "$(cat err)"
( exec 3</dev/mapper/held; read -r _ <go ) & holder=$!
for i in $(seq 150); do [ -e /proc/$holder/fd/3 ] && break; sleep 0.1; done
cmp -n 1048576 /proc/$holder/fd/3 r1; ok $? "the holder's descriptor reads the data"
dms remove held 2>err; is $? 1 "remove of the open device: exit 1"
grep -q "Device or resource busy" err; ok $? "... EBUSY"
dms remove -f held; ok $? "remove -f of the open device: exit 0"
[ ! -e /dev/mapper/held ]; ok $? "... its node is gone"
is "$(dms table held)" "0 4096 error " "... its table fails every I/O"
dd if=/proc/$holder/fd/3 of=/dev/null bs=4k count=1 iflag=direct status=none 2>err
is $? 1 "... a read through the holder's descriptor fails"
grep -q "Input/output error" err; ok $? "... with an I/O error"
grep -q "DEFERRED REMOVE" <(dms info held); ok $? "... info: removed at the last close"
is "$(served_loops)" 1 "... its loop device stays while it is held"
echo >go; wait $holder
for i in $(seq 150); do [ "$(dms ls)" = "No devices found" ] && break; sleep 0.1; done
is "$(dms ls)" "No devices found" "the holder gone: the device is gone"
for i in $(seq 150); do [ "$(served_loops)" = 0 ] && [ -z "$(servers)" ] && break; sleep 0.1; done
is "$(served_loops)" 0 "... no loop device left on the server's files"
is "$(servers)" "" "... no server left"
grep -q " /run/partmap/dm/fs " /proc/self/mountinfo; is $? 1 "... no mount left"

# a mounted filesystem: remove -f, its I/O fails, the umount lets the device go
echo "0 16384 linear $A 0" | dms create fs && mkfs.ext4 -q -F /dev/mapper/fs >/dev/null 2>&1 && mkdir -p mnt &&
	mount /dev/mapper/fs mnt
ok $? "a filesystem mounted from a served device"
note fs
defer "umount -l $TMP/mnt"
dms remove -f fs; ok $? "remove -f of the mounted device: exit 0"
dd if=/dev/urandom of=mnt/new bs=64k count=4 conv=fsync status=none 2>/dev/null; is $? 1 "... a write through the filesystem fails"
umount mnt
for i in $(seq 150); do [ "$(dms ls)" = "No devices found" ] && [ -z "$(servers)" ] && break; sleep 0.1; done
is "$(dms ls)" "No devices found" "umounted: the device is gone" ||
	diag "$(dms info fs)" "$(losetup -l -n -O NAME,BACK-FILE)" "ours: ${ours[*]}"
is "$(servers)" "" "... and the server"
is "$(served_loops)" 0 "... and its loop device"

# resume --noflush --nolockfs: the swap made without freezing the mounted filesystem
echo "0 16384 linear $A 0" | dms create fs2 && mount /dev/mapper/fs2 mnt && echo "0 16384 linear $A 0" | dms load fs2
dms resume --noflush --nolockfs fs2; ok $? "resume --noflush --nolockfs of a mounted device: exit 0"
is "$(dms info -c -o attr --noheadings fs2)" "L--w" "... the new table live, nothing inactive, not suspended"
umount mnt && dms remove --retry fs2; ok $? "... unmounted and removed"

# remove -f of a closed device: an ordinary removal
echo "0 8 zero" | dms create closed && dms remove -f closed; ok $? "remove -f of a closed device"
is "$(dms ls)" "No devices found" "... gone"

# ---- remove --deferred of a device another device's table uses: it goes with the last such table ----
{ echo "0 2048 linear $A 0" | dms create dlow && echo "0 2048 linear /dev/mapper/dlow 0" | dms create dtop; } 2>err
ok $? "dtop over dlow" || diag "$(cat err)"
note dlow
dms remove --deferred dlow; ok $? "remove --deferred dlow (used by dtop's table): exit 0"
grep -q "DEFERRED REMOVE" <(dms info dlow); ok $? "... info: removal deferred"
is "$(served_loops)" 1 "... its block device stays while dtop's table uses it"
dd if=/dev/mapper/dtop of=/dev/null bs=4k count=1 iflag=direct status=none; ok $? "... dtop still reads through it"
dms remove dtop; ok $? "remove dtop"
is "$(dms ls)" "No devices found" "... dlow went with it" ||
	diag "$(dms info dlow)" "$(l=$(basename "$(readlink -f /sys/dev/block/$(majmin /dev/mapper/dlow))"); fuser -v /dev/$l 2>&1; ls /sys/block/$l/holders; cat /sys/block/$l/loop/autoclear)"
[ ! -e /dev/mapper/dlow ]; ok $? "... and its node"
is "$(served_loops)" 0 "... and its loop device"

# ---- remove_all -f: closed devices go, an open stack is errored and goes at its last close ----
{ echo "0 2048 linear $A 0" | dms create low && echo "0 2048 linear /dev/mapper/low 0" | dms create top &&
	echo "0 2048 linear $B 0" | dms create other; } 2>err
ok $? "top over low, and other" || diag "$(cat err)"
note low top other
( exec 3</dev/mapper/top; read -r _ <go ) & holder=$!
for i in $(seq 150); do [ -e /proc/$holder/fd/3 ] && break; sleep 0.1; done
dms remove_all; ok $? "remove_all: exit 0"
is "$(dms ls | cut -f1 | tr '\n' ' ')" "low top " "... the open stack stays"
dms remove_all -f; ok $? "remove_all -f: exit 0"
is "$(dms table top 2>/dev/null)" "0 2048 error " "... top fails every I/O"
[ ! -e /dev/mapper/top ] && [ ! -e /dev/mapper/low ]; ok $? "... the nodes are gone"
is "$(dms ls | cut -f1 | tr '\n' ' ')" "top " "... only the open one is left, until its last close"
echo >go; wait $holder
for i in $(seq 150); do [ "$(dms ls)" = "No devices found" ] && [ -z "$(servers)" ] && break; sleep 0.1; done
is "$(dms ls)" "No devices found" "the holder gone: nothing left"
is "$(served_loops)" 0 "... no loop device"
is "$(servers)" "" "... no server"

# ---- --target: one target type's lines (table, status), the devices with one (ls) ----
# the text lvm2's dmsetup prints (the VM's dmsetup.t compares it with Debian's on the kernel)
dms ls --target zero >out; is "$?:$(cat out)" "0:No devices found" "ls --target with no device: No devices found"
{ printf '0 8 error\n8 8 zero\n' | dms create tg1 && echo "0 8 zero" | dms create tg2 && dms create --notable tg3; } 2>err
ok $? "tg1 (error, zero), tg2 (zero), tg3 (no table)" || diag "$(cat err)"
note tg1 tg2 tg3
n1=$(majmin /dev/mapper/tg1 | tr : ,); n2=$(majmin /dev/mapper/tg2 | tr : ,)
is "$(dms ls --target zero)" "tg1	(${n1/,/, })
tg2	(${n2/,/, })" "ls --target zero: both, numbers as \"(major, minor)\""
is "$(dms ls --target error)" "tg1	(${n1/,/, })" "ls --target error: tg1 only"
dms ls --target nosuch >out; is "$?:$(od -An -c out)" "0:" "ls --target of a type no device has: nothing, exit 0"
is "$(dms table --target zero)" "tg1: 8 8 zero 
tg2: 0 8 zero " "table --target zero: those lines, named"
is "$(dms status --target error)" "tg1: 0 8 error " "status --target error"
dms table --target error tg2 >out; is "$?:$(od -An -c out)" "0:" "table --target of a type the device lacks: nothing, exit 0"
is "$(dms table --target=zero tg1)" "8 8 zero " "--target=TYPE, one device: no name"
is "$(dms table --target zero tg1 tg3)" "tg1: 8 8 zero " "a device without a table prints nothing with --target"
dms table tg3 >out; is "$(od -An -c out | tr -s ' ')" " \n" "table of a device without a table: one empty line"
is "$(dms table | grep -c '^tg3: $')" 1 "... and \"tg3: \" among all devices"
# -v: lvm2's info block before a device's lines (tests/vm/dmsetup.t compares the bytes with Debian's)
is "$(dms -v table tg2 | sed -n '1p;$p')" "Name:              tg2
0 8 zero " "-v table: the info block, then the table"
is "$(dms -v table tg1 tg2 | grep -c '^$')" 4 "-v table of two devices: each info block ends in a blank line, each device's lines too"
dms -v table tg1 tg2 | grep -q '^tg' ; is $? 1 "... and no name prefixes"
is "$(dms -v deps tg2 | tail -1)" "0 dependencies	:" "-v deps: the info block, then the deps"
is "$(dms -v table --target error | sed -n '1p;/error/p')" "Name:              tg1
0 8 error " "-v table --target: only devices with such a target get a block"
dms remove tg1 tg2 tg3; ok $? "remove tg1 tg2 tg3"
is "$(dms -v create tg4 --notable | sed -n '1,2p;/^Tables/p')" "Name:              tg4
State:             ACTIVE
Tables present:    None" "-v create: the new device's info block"
is "$(dms -v suspend tg4 | sed -n 2p)" "State:             SUSPENDED" "-v suspend: the info block after"
is "$(dms -v resume tg4 | sed -n 2p)" "State:             ACTIVE" "-v resume: the info block after"
is "$(echo '0 8 zero' | dms -v load tg4 | grep '^Tables')" "Tables present:    INACTIVE" "-v load: the info block after"
is "$(dms -v remove tg4 | od -An -c)" "" "-v remove: nothing"

# ---- read-ahead: the kernel's at each table swap (twice the optimal I/O size, 128 KiB at least),
# --readahead after create and resume (tests/vm/dmsetup.t compares both with the kernel's) ----
ra() { blockdev --getra "/dev/mapper/$1"; }
{ echo "0 4096 striped 2 128 $A 0 $B 0" | dms create ra1 && echo "0 1000 linear /dev/mapper/ra1 0" | dms create ra2 &&
	echo "0 1000 linear $A 0" | dms create ra3; } 2>err; ok $? "ra1 (striped 2x64 KiB), ra2 (linear over it), ra3 (linear)" || diag "$(cat err)"
note ra1 ra2 ra3
is "$(ra ra1) $(ra ra2) $(ra ra3)" "512 512 256" "read-ahead: 2 x 128 KiB for striped and what is over it, else 128 KiB"
is "$(dms info ra1 | grep '^Read Ahead')" "Read Ahead:        512" "... as info shows it"
dms resume ra3 --readahead 2048 && is "$(ra ra3)" 2048 "resume --readahead N: N sectors"
dms suspend ra3 && dms resume ra3 && is "$(ra ra3)" 2048 "... kept by a resume without a new table"
echo "0 1000 linear $A 0" | dms load ra3 && dms resume ra3 && is "$(ra ra3)" 256 "... set again by a table swap"
echo "0 4096 striped 2 16 $A 0 $B 0" | dms load ra1 && dms resume ra1 && is "$(ra ra1)" 256 "a swap to smaller chunks: 128 KiB"
dms resume ra3 --readahead +1024 && is "$(ra ra3)" 1024 "--readahead +N: raised to N"
dms resume ra3 --readahead +8 && is "$(ra ra3)" 1024 "... never lowered"
dms resume ra3 --readahead none && is "$(ra ra3)" 0 "--readahead none: 0"
echo "0 1000 linear $A 0" | dms create ra4 --readahead 4096 && is "$(ra ra4)" 4096 "create --readahead N"
note ra4
dms create ra5 --readahead 77x --notable 2>err; is $? 1 "--readahead 77x: refused"
grep -q "Invalid read ahead value" err; ok $? "... saying why"
# ---- deps -o, and more info -c fields (tests/vm/dmsetup.t compares them with Debian's) ----
la=$(basename "$(readlink -f "/sys/dev/block/$(majmin "$A")")")
l1=$(basename "$(readlink -f "/sys/dev/block/$(majmin /dev/mapper/ra1)")")
is "$(dms deps -o devname ra2)" "1 dependencies	: (ra1)" "deps -o devname: a served device by its name"
is "$(dms deps -o blkdevname ra2)" "1 dependencies	: ($l1)" "deps -o blkdevname: its block device's kernel name"
is "$(dms deps -o devname ra3)" "1 dependencies	: ($la)" "deps -o devname: a plain block device by its kernel name"
dms deps -o bogus ra3 2>err; is $? 1 "deps -o bogus: exit 1"
is "$(dms info -c --noheadings -o name,devno,read_ahead,blkdevname,tables_loaded,suspended,readonly ra1)" \
	"ra1:$(majmin /dev/mapper/ra1):256:$l1:Live:Active:Writeable" "info -c: devno, read_ahead, blkdevname, tables_loaded, suspended, readonly"
echo "0 1000 zero" | dms load ra3 && dms suspend ra3 &&
	is "$(dms info -c --noheadings -o tables_loaded,suspended,readahead ra3)" "Both:Suspended:0" "... Both, Suspended; readahead as read_ahead" &&
	dms resume ra3
dms remove ra2 ra1 ra3 ra4; ok $? "remove ra1-ra4"
done_testing
