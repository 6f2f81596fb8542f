#!/usr/bin/env bash
# The device-mapper walkthroughs users learn from, run once with Debian's dmsetup and once with
# partmap dmsetup: every command's output and exit status must match (device numbers normalised),
# and each step must have the effect the walkthrough describes.
. "$(dirname "$0")/lib.sh"
export DM_DISABLE_UDEV=1
for i in 1 2 3; do truncate -s 8M "$TMP/store$i"; done
attach L1 "$TMP/store1"; attach L2 "$TMP/store2"; attach L3 "$TMP/store3"
S1=$(blockdev --getsz "$L1"); S2=$(blockdev --getsz "$L2")

# run: record a command's stdout and exit status in the transcript; its effects are checked apart
label() { sed "s|$PARTMAP ||g" <<<"$*"; }
run() { local out rc; out=$("$@" 2>/dev/null); rc=$?; printf '$ %s\n%s\n[%d]\n' "$(label "$*")" "$out" "$rc" >>"$T"; return $rc; }
pipe() { local out rc; out=$(bash -c "$1" 2>/dev/null); rc=$?; printf '$ %s\n%s\n[%d]\n' "$(label "$1")" "$out" "$rc" >>"$T"; return $rc; }
check() { ok "$1" "[$TOOL] $2"; }

walk() { # walk "DMSETUP COMMAND"
	local D=$1
	# "new", "half", "onenahalf"
	pipe "echo 0 $S1 linear $L1 0 | $D create new"
	[ -b /dev/mapper/new ] && [ "$(blockdev --getsz /dev/mapper/new)" = "$S1" ]; check $? "new: /dev/mapper/new has loop1's size"
	run $D table new; run $D ls; run $D info new; run $D status new
	run $D remove new
	[ ! -e /dev/mapper/new ]; check $? "remove new: node gone"
	pipe "echo 0 $((S1 / 2)) linear $L1 0 | $D create half"
	REST1=$((S1 - S1 / 2))
	printf '0 %s linear %s %s\n%s %s linear %s 0\n' $REST1 "$L1" $((S1 / 2)) $REST1 "$S2" "$L2" >"$TMP/table1"
	run $D create onenahalf "$TMP/table1"
	is "$(blockdev --getsz /dev/mapper/onenahalf)" $((REST1 + S2)) "[$TOOL] onenahalf: half of loop1 spliced to loop2"
	run $D table; run $D table half onenahalf; run $D ls; run $D info; run $D info -c
	run $D info -c -o name,attr,open,segments --noheadings --separator :; run $D deps onenahalf; run $D deps
	# every column-report variant, byte for byte
	run $D info -c --noheadings; run $D info -c -o name,uuid --noheadings; run $D info -c -o uuid,name
	run $D info -c --separator ,; run $D info -c --noheadings --separator ' | '; run $D info -c -o major,minor,name half
	run $D info -c -o events,open,segments,attr --noheadings
	run $D status
	run $D remove half; run $D remove onenahalf

	# striped over two loops, chunks of 16 and 128 sectors: a filesystem round trip
	for chunk in 16 128; do
		pipe "echo 0 $((S1 + S2)) striped 2 $chunk $L1 0 $L2 0 | $D create tiger"
		run $D table tiger
		mkfs.ext4 -q -F /dev/mapper/tiger >/dev/null 2>&1 && mkdir -p "$TMP/mnt" && mount /dev/mapper/tiger "$TMP/mnt" &&
			head -c 3M /dev/urandom >"$TMP/mnt/data" && cp "$TMP/mnt/data" "$TMP/data.ref" && umount "$TMP/mnt" &&
			mount /dev/mapper/tiger "$TMP/mnt" && cmp -s "$TMP/mnt/data" "$TMP/data.ref" && umount "$TMP/mnt"
		check $? "striped chunk $chunk: mkfs, mount, data round trip"
		run $D remove tiger
	done

	# bad_disk: linear, one error sector, linear
	printf '0 8 linear %s 0\n8 1 error\n9 %s linear %s 9\n' "$L1" $((S1 - 9)) "$L1" | run $D create bad_disk
	blockdev --setra 0 /dev/mapper/bad_disk
	is "$(blockdev --getsz /dev/mapper/bad_disk)" "$S1" "[$TOOL] bad_disk: size"
	dd if=/dev/mapper/bad_disk of=/dev/null bs=1k count=4 iflag=direct status=none 2>/dev/null; check $? "bad_disk: dd of 4 KiB succeeds"
	dd if=/dev/mapper/bad_disk of=/dev/null bs=1k count=5 iflag=direct status=none 2>/dev/null; check $((! $?)) "bad_disk: dd of 5 KiB fails"
	run $D table bad_disk; run $D remove bad_disk

	# fake_disk: 64 sectors linear, then 8 TiB of zero
	printf '0 64 linear %s 0\n64 17179869120 zero\n' "$L1" | run $D create fake_disk
	is "$(blockdev --getsize64 /dev/mapper/fake_disk)" 8796093022208 "[$TOOL] fake_disk: blockdev --getsize64 reports 8 TiB"
	run $D table fake_disk; run $D remove fake_disk

	# snapshots (every I/O under a timeout: a device left suspended would block it for ever)
	rd() { timeout 10 dd if="$1" bs=512 skip=20000 count=1 iflag=direct status=none 2>/dev/null | head -c "$2"; }
	wr() { printf '%s' "$2" | timeout 10 dd of="$1" bs=512 seek=20000 conv=notrunc oflag=direct status=none 2>/dev/null; }
	printf '0 %s linear %s 0\n%s %s linear %s 0\n' "$S1" "$L1" "$S1" "$S2" "$L2" >"$TMP/table2"
	run $D create base "$TMP/table2"
	wr /dev/mapper/base before
	pipe "$D table base | $D create basedup"
	# point A: base becomes a snapshot of basedup: writes are volatile, they land in the COW. Since
	# Linux 2.6.33 the snapshot whose COW is handed over (top) must be suspended before base resumes.
	dd if=/dev/zero of="$L3" bs=512 count=8 status=none
	run $D suspend base
	run $D info base
	pipe "echo 0 $(blockdev --getsz /dev/mapper/basedup) snapshot /dev/mapper/basedup $L3 p 8 | $D create top"
	pipe "$D table top | $D load base"
	run $D info base
	run $D suspend top
	run $D resume base
	wr /dev/mapper/base A-wrt
	is "$(rd /dev/mapper/base 5)" "A-wrt" "[$TOOL] point A: base reads what was written"
	is "$(rd /dev/mapper/basedup 6)" "before" "[$TOOL] point A: basedup does not see it"
	run $D status base
	# dismantling A loses the changes
	run $D suspend base
	pipe "$D table basedup | $D load base"
	run $D resume base
	run $D remove top
	is "$(rd /dev/mapper/base 6)" "before" "[$TOOL] point A undone: the volatile write is gone"
	# point B: the backup arrangement: base writes through snapshot-origin, top keeps the view of then
	dd if=/dev/zero of="$L3" bs=512 count=8 status=none
	run $D suspend base
	pipe "echo 0 $(blockdev --getsz /dev/mapper/basedup) snapshot /dev/mapper/basedup $L3 p 8 | $D create top"
	pipe "echo 0 $(blockdev --getsz /dev/mapper/basedup) snapshot-origin /dev/mapper/basedup | $D create origin"
	pipe "$D table origin | $D load base"
	run $D resume base
	wr /dev/mapper/base B-wrt.
	is "$(rd /dev/mapper/basedup 6)" "B-wrt." "[$TOOL] point B: writes to base reach the original device"
	is "$(rd /dev/mapper/top 6)" "before" "[$TOOL] point B: top still shows the snapshot"
	run $D table; run $D ls; run $D deps top; run $D status top
	# the dependency tree, drawn every way (loop devices as leaves, stacked devices once per user);
	# without the DM devices' numbers, which differ between the kernel's and partmap's devices and
	# so would shift every column after them
	pipe "LC_ALL=C $D ls --tree -o nodevice"; run $D ls --tree -o ascii,inverted,nodevice
	run $D ls --tree -o ascii,compact,nodevice; run $D ls --tree -o ascii,inverted,compact,nodevice
	run $D ls --tree -o ascii,active,open,rw,uuid,nodevice; run $D ls --tree -o ascii,nodevice
	run $D ls --tree -o bogus; pipe "LC_ALL=C.UTF-8 $D ls --tree -o nodevice"; run $D ls -o devname
	# tear-down in the documented order
	run $D suspend base; run $D remove top; run $D remove origin
	pipe "$D table basedup | $D load base"
	run $D resume base
	is "$(rd /dev/mapper/base 6)" "B-wrt." "[$TOOL] tear-down: base is the original device again, with the write"
	run $D remove base; run $D remove basedup

	# crypt: aes-cbc-plain (the walkthrough's aes-plain) and aes-xts-plain64
	for c in "aes-cbc-plain 0123456789abcdef0123456789abcdef" \
		"aes-xts-plain64 0123456789abcdef0123456789abcdef00112233445566778899aabbccddeeff"; do
		set -- $c
		pipe "echo 0 $S1 crypt $1 $2 0 $L1 0 | $D create mydata"
		run $D table mydata; run $D table --showkeys mydata
		mkfs.ext4 -q -F /dev/mapper/mydata >/dev/null 2>&1 && mount /dev/mapper/mydata "$TMP/mnt" &&
			echo "secret $1" >"$TMP/mnt/f" && umount "$TMP/mnt"
		check $? "crypt $1: mkfs, mount, write"
		run $D remove mydata
		! grep -qa "secret $1" "$L1"; check $? "crypt $1: the data on loop1 is not plain text"
		pipe "echo 0 $S1 crypt $1 $2 0 $L1 0 | $D create mydata"
		mount /dev/mapper/mydata "$TMP/mnt" && is "$(cat "$TMP/mnt/f")" "secret $1" "[$TOOL] crypt $1: recreated with the same key, read back"
		umount "$TMP/mnt"; run $D remove mydata
	done

	# --target: one target type's lines (table, status), the devices with one (ls)
	printf '0 8 error\n8 8 zero\n' | run $D create tgt1
	pipe "echo 0 8 zero | $D create tgt2"
	run $D create --notable tgt3
	run $D ls --target zero; run $D ls --target error; run $D ls --target nosuch
	run $D table --target zero; run $D status --target error; run $D table --target error tgt2
	run $D table --target zero tgt1 tgt2; run $D table --target=zero tgt1; run $D status --target zero tgt1 tgt3
	# a device without a table: one empty line (the bytes, which $(...) would not show)
	pipe "$D table tgt3 | od -An -c"; pipe "$D status tgt3 | od -An -c"; pipe "$D table | od -An -c"
	# -v: the info block before each device's lines
	run $D -v table; run $D -v status tgt1; run $D -v deps; run $D -v deps tgt1; run $D -v table --target zero
	pipe "$D -v table tgt3 | grep -v '^Major' | od -An -c"
	# more info -c fields (blkdevname unaligned: dm-N and loopN differ in width)
	run $D info -c -o name,read_ahead,tables_loaded,suspended,readonly tgt1 tgt2
	run $D info -c --noheadings -o name,devno,readahead,blkdevname tgt1 tgt2; run $D info -c --noheadings -o blkdevname tgt1
	run $D remove tgt1 tgt2 tgt3
	# -v: the info block after create, load, suspend, resume, clear (none after remove)
	pipe "echo 0 8 zero | $D -v create vv"; pipe "echo 0 16 zero | $D -v load vv"; run $D -v suspend vv
	run $D -v resume vv; pipe "echo 0 8 zero | $D load vv"; run $D -v clear vv; run $D -v remove vv
	# --readahead after create and resume: N sectors, +N at least N, none, auto (the kernel's);
	# kept across a table swap. --noopencount changes nothing
	pipe "echo 0 64 linear $L1 0 | $D create ra1 --readahead 512"; run $D info ra1
	pipe "echo 0 64 linear $L1 0 | $D create ra2 --readahead +1024"; run $D info ra2
	pipe "echo 0 64 linear $L1 0 | $D create ra3 --readahead none"; run $D info ra3
	pipe "echo 0 64 linear $L1 0 | $D create ra4 --readahead +8"; run $D info ra4
	run $D resume ra4 --readahead 1000; run $D info ra4
	pipe "echo 0 32 linear $L1 0 | $D load ra4"; run $D info -c --noheadings -o tables_loaded ra4
	run $D resume ra4; run $D info ra4
	run $D resume ra1 --readahead auto; run $D info ra1; run blockdev --getra /dev/mapper/ra1
	run $D --noopencount info ra1; run $D --noopencount ls
	run $D remove ra1 ra2 ra3 ra4
	# the read-ahead a table gives: twice its optimal I/O size (striped, raid: a row of chunks; others:
	# their devices'), 128 KiB at least; set again at each table swap
	pipe "echo 0 $((S1 + S2)) striped 2 128 $L1 0 $L2 0 | $D create rs1"; run $D info rs1
	pipe "echo 0 1000 linear /dev/mapper/rs1 0 | $D create rs2"; run $D info rs2
	run $D deps -o devname rs2; run $D deps -o blkdevname rs2; run $D deps -o devname rs1; run $D deps -o devno rs2
	pipe "echo 0 $((S1 + S2)) striped 2 16 $L1 0 $L2 0 | $D load rs1"; run $D resume rs1; run $D info rs1
	run $D remove rs2 rs1
	pipe "echo 0 $((2 * S1)) raid raid5_ls 1 256 3 - $L1 - $L2 - $L3 | $D create rr"; run $D info rr; run $D remove rr

	# errors: non-zero, nothing half-created
	pipe "echo 0 8 nosuchtarget | $D create bad1"
	pipe "printf '0 8 zero\n16 8 zero\n' | $D create bad2"
	run $D info nosuch; run $D remove nosuch; run $D table nosuch
	pipe "echo 0 8 zero | $D create busy"
	exec 9</dev/mapper/busy
	run $D remove busy
	exec 9<&-
	run $D remove busy
	run $D ls
	is "$(dmsetup ls)" "No devices found" "[$TOOL] errors: no device left behind"
	# misc commands
	pipe "echo 0 8 zero | $D create --notable -u test-uuid-1 misc" 2>/dev/null
	run $D create --notable -u test-uuid-1 misc
	run $D info misc
	pipe "echo 0 16 zero | $D load misc"
	run $D info -c --noheadings -o name,tables_loaded,suspended,readonly misc
	run $D info misc; run $D table --inactive misc; run $D resume misc; run $D info -c misc
	run $D rename misc misc2; run $D info misc2
	[ -b /dev/mapper/misc2 ] && [ ! -e /dev/mapper/misc ]; check $? "rename: the node follows"
	run $D rename misc2 --setuuid test-uuid-2; run $D info -c -o name,uuid misc2
	run $D suspend misc2; run $D info misc2; run $D info -c --noheadings -o tables_loaded,suspended misc2
	run $D resume misc2
	run $D clear misc2; run $D wait misc2 0
	run $D remove --retry misc2
	run $D remove_all; run $D ls
	run $D ls --tree -o nodevice
	# splitname needs no device
	run $D splitname vg--a-lv--b-_mlog; run $D splitname vg-lv CRYPT -o subsystem,vg_name; run $D splitname -c vg-lv --noheadings
}

T=$TMP/debian.txt; TOOL=debian; walk dmsetup
T=$TMP/partmap.txt; TOOL=partmap; walk "$PARTMAP dmsetup"
norm() { sed -E 's/\bdm-[0-9]+\b/dm-N/g; s/\b254([:, ]+)[0-9]+/254\1N/g; s/^(Event number: +)[0-9]+/\1N/; s/^(\S+ +254 +)[0-9]+/\1N/; s/\| 254 \| [0-9]+ \|/| 254 | N |/g'; }
same "$(norm <"$TMP/partmap.txt")" "$(norm <"$TMP/debian.txt")" "every output and exit status as Debian's dmsetup ($(grep -c '^\$' "$TMP/debian.txt") commands)"
# the same walk with the device mapper in userspace (the kernel's left alone): its devices are loop
# devices, numbered after the test's own three; compared once those numbers read as the kernel's
export PARTMAP_DM=user
T=$TMP/user.txt; TOOL=user; walk "$PARTMAP dmsetup"
unset PARTMAP_DM
lmax=0; for l in "$L1" "$L2" "$L3"; do m=$(( 0x$(stat -c %T "$l") )); [ $m -gt $lmax ] && lmax=$m; done
served=$(seq -s '|' $((lmax + 1)) 255)
norm_user() {
	# the columns of info -c first (a right-aligned "  7" is as wide as "254"), then every other place
	sed -E "s/^(\S+ +)  7( +)[0-9]+ /\1254\2N /; s/^  7( +)[0-9]+ /254\1N /; s/\| 7 \| [0-9]+ \|/| 254 | N |/g;
		s/^(Major, minor: +)7, /\1254, /; s/\b7([:, ]+)($served)\b/254\1N/g; s/\bloop($served)\b/dm-N/g" | norm
}
same "$(norm_user <"$TMP/user.txt")" "$(norm <"$TMP/debian.txt")" "PARTMAP_DM=user: every output and exit status as Debian's dmsetup with the kernel's"
left=""; for p in /proc/[0-9]*; do case $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) in "partmap serve dm "*) left+="${p#/proc/} " ;; esac; done
is "$left" "" "PARTMAP_DM=user: no server left after the walk"
# numbers are read strictly: a bad sector or event number is refused (Debian's dmsetup reads
# "wait num 5q" as event 5; partmap refuses it)
echo 0 64 zero | "$PARTMAP" dmsetup create num
for a in "message num 12x hi" "message num -- -1 hi" "wait num 5q" "wait num -- -3"; do
	"$PARTMAP" dmsetup $a >/dev/null 2>"$TMP/err"; is $? 1 "dmsetup $a: exit 1"
	grep -q "invalid" "$TMP/err"; ok $? "dmsetup $a: says why ($(head -c 60 "$TMP/err"))"
done
"$PARTMAP" dmsetup message num 0 "$(head -c 5000 /dev/zero | tr '\0' x)" 2>"$TMP/err"; is $? 1 "a message over 4 KiB: exit 1"
grep -q "longer than" "$TMP/err"; ok $? "a message over 4 KiB: says why"
"$PARTMAP" dmsetup remove num
# mixing the tools
echo 0 64 zero | dmsetup create mixa
"$PARTMAP" dmsetup table mixa | dmsetup create mixb; ok $? "partmap table | Debian create"
dmsetup table mixb | "$PARTMAP" dmsetup create mixc; ok $? "Debian table | partmap create"
same "$("$PARTMAP" dmsetup table mixc)" "$(dmsetup table mixa)" "the round trip reproduces the map"
"$PARTMAP" dmsetup remove mixa mixb mixc; ok $? "partmap removes several"
is "$("$PARTMAP" dmsetup targets | awk '{print $1}' | sort | tr '\n' ' ')" "$(dmsetup targets | awk '{print $1}' | sort | tr '\n' ' ')" "targets: same list"
same "$("$PARTMAP" dmsetup targets)" "$(dmsetup targets)" "targets: same format"
is "$("$PARTMAP" dmsetup version | sed -n 2p)" "$(dmsetup version | sed -n 2p)" "version: same driver line"
# mknodes puts back a missing node and removes one for a device that is gone
echo 0 8 zero | "$PARTMAP" dmsetup create mk1
rm /dev/mapper/mk1; mknod /dev/mapper/stale b 254 250
"$PARTMAP" dmsetup mknodes; ok $? "mknodes exit 0"
[ -b /dev/mapper/mk1 ]; ok $? "mknodes: the missing node is back"
"$PARTMAP" dmsetup remove mk1; rm -f /dev/mapper/stale
# one node that cannot be made does not stop the others (mknodes stopped at the first failure)
echo 0 8 zero | "$PARTMAP" dmsetup create mka; echo 0 8 zero | "$PARTMAP" dmsetup create mkb
rm /dev/mapper/mka /dev/mapper/mkb; mkdir /dev/mapper/mka
"$PARTMAP" dmsetup mknodes >/dev/null 2>&1; is $? 1 "mknodes with one node in the way: exit 1"
[ -b /dev/mapper/mkb ]; ok $? "mknodes with one node in the way: the other node is made"
rmdir /dev/mapper/mka; "$PARTMAP" dmsetup remove mka mkb

# more than 64 devices and more than 16 fields in the column report (a fixed 64x16 table dropped
# the rest)
for i in $(seq -w 1 70); do echo "0 8 zero" | "$PARTMAP" dmsetup create many$i; done
is "$("$PARTMAP" dmsetup info -c --noheadings -o name | grep -c '^many')" 70 "info -c: all 70 devices listed"
same "$("$PARTMAP" dmsetup info -c | sed 's/ [0-9]* *[0-9]* / M m /')" "$(dmsetup info -c | sed 's/ [0-9]* *[0-9]* / M m /')" \
	"info -c with 70 devices: as Debian's dmsetup"
f=name,major,minor,attr,open,segments,events,uuid
same "$("$PARTMAP" dmsetup info -c -o $f,$f,name,uuid many01)" "$(dmsetup info -c -o $f,$f,name,uuid many01)" \
	"info -c with 18 fields: as Debian's dmsetup"
"$PARTMAP" dmsetup remove $(seq -f 'many%02g' 1 70)

# options after the device name work as before it (lvm2's dmsetup takes them anywhere)
echo "0 64 zero" >"$TMP/zt"
for D in dmsetup "$PARTMAP dmsetup"; do
	w=${D%% *}; w=${w##*/}
	$D create tx --table "0 1000 linear $L1 0"; ok $? "[$w] create NAME --table: exit 0"
	is "$($D table tx | cut -d' ' -f1-3)" "0 1000 linear" "[$w] create NAME --table: the table given after the name"
	$D create tz -u OPTORDER-UUID "$TMP/zt"; ok $? "[$w] create NAME -u UUID FILE: exit 0"
	is "$($D info -c --noheadings -o uuid tz)" OPTORDER-UUID "[$w] create NAME -u UUID FILE: the UUID"
	$D create ty "$TMP/zt" -r; ok $? "[$w] create NAME FILE -r: exit 0"
	is "$($D info -c --noheadings -o attr ty)" "L--r" "[$w] create NAME FILE -r: read-only"
	exec 7</dev/mapper/tz
	$D remove tz -f >/dev/null 2>&1
	is "$($D table tz 2>/dev/null | cut -d' ' -f3)" error "[$w] remove NAME -f: -f applied (an open device gets the error table)"
	exec 7<&-
	$D remove tz tx ty; ok $? "[$w] remove after the option-order checks"
done
"$PARTMAP" dmsetup -j 12x -m 3 info >/dev/null 2>&1; is $? 1 "-j with garbage: exit 1"
PARTMAP_UDEV_TIMEOUT=9x "$PARTMAP" dmsetup ls >/dev/null 2>&1; is $? 1 "PARTMAP_UDEV_TIMEOUT garbage: exit 1"
done_testing
