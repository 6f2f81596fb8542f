#!/usr/bin/env bash
# Bad input to kpartx -l: clear messages and the documented exit codes, never a crash.
. "$(dirname "$0")/lib.sh"

run() { "$PARTMAP" kpartx "$@" >"$TMP/out" 2>"$TMP/err"; echo $?; }

is "$(run -l "$TMP/missing.img")" 1 "missing file: exit 1"
grep -q "No such file" "$TMP/err"; ok $? "missing file: says so"
is "$(run -l "$TMP")" 1 "directory: exit 1"
grep -q "directory" "$TMP/err"; ok $? "directory: says so"
is "$(run -l /dev/null)" 1 "character device: exit 1"
is "$(run -x "$TMP")" 1 "unknown option: exit 1"
grep -q "^usage" "$TMP/out"; ok $? "unknown option: usage on stdout (as kpartx)"
is "$(run -l)" 1 "no device: exit 1"
is "$(run -l -t nonsense /dev/null)" 1 "unknown -t type: exit 1"
is "$(run -l --sector-size 1000 /dev/null)" 1 "bad --sector-size: exit 1"
is "$(run --version)" 0 "--version: exit 0"
grep -q partmap "$TMP/out"; ok $? "--version names partmap"
is "$(run --help)" 0 "--help: exit 0"
grep -q "exit status" "$TMP/out"; ok $? "--help documents the exit status"

: >"$TMP/empty.img"
is "$(run -l "$TMP/empty.img")" 0 "zero-length file: exit 0"
is "$(cat "$TMP/out")" "" "zero-length file: lists nothing"
head -c 511 /dev/zero >"$TMP/511.img"
is "$(run -l "$TMP/511.img")" 0 "511-byte file: exit 0"
truncate -s 10M "$TMP/blank.img"
is "$(run -l "$TMP/blank.img")" 0 "no partition table: exit 0"
is "$(cat "$TMP/out" "$TMP/err")" "" "no partition table: silent without -v"
run -l -v "$TMP/blank.img" >/dev/null
grep -q "no partition table found" "$TMP/err"; ok $? "no partition table: -v says so on stderr"

# a GPT with both headers damaged: exit 2 and the reason
truncate -s 16M "$TMP/gpt.img"
sgdisk -n 1:2048:+1M "$TMP/gpt.img" >/dev/null
printf 'XXXX' | dd of="$TMP/gpt.img" bs=1 seek=$((512 + 24)) conv=notrunc status=none
printf 'XXXX' | dd of="$TMP/gpt.img" bs=1 seek=$((16 * 1024 * 1024 - 512 + 24)) conv=notrunc status=none
is "$(run -l "$TMP/gpt.img")" 2 "GPT with both headers damaged: exit 2"
grep -q "GPT damaged: primary header: header CRC mismatch" "$TMP/err"; ok $? "damaged GPT: says why"
is "$(run -l --json "$TMP/gpt.img")" 2 "damaged GPT with --json: exit 2"
# only the primary damaged: the backup is used, with a warning
sgdisk -Z "$TMP/gpt.img" >/dev/null 2>&1; sgdisk -n 1:2048:+1M "$TMP/gpt.img" >/dev/null
printf 'XXXX' | dd of="$TMP/gpt.img" bs=1 seek=$((512 + 24)) conv=notrunc status=none
is "$(run -l "$TMP/gpt.img")" 0 "GPT with a damaged primary: exit 0"
grep -q "using the backup" "$TMP/err"; ok $? "damaged primary: warns that the backup is used"
grep -Eq ": 0 2048 [^ ]+ 2048$" "$TMP/out"; ok $? "damaged primary: partition listed from the backup"

# a table that reaches past the end of a truncated image: cut to the end, with a warning
mkimg "$TMP/trunc.img" 64M <<'S'
label: dos
start=2048, size=40960
start=43008, size=65536
start=110592, size=8192
S
truncate -s 40M "$TMP/trunc.img"
is "$(run -l "$TMP/trunc.img")" 0 "truncated image: exit 0"
is "$(awk '{print $4, $6}' "$TMP/out")" "40960 2048
38912 43008" "truncated image: p2 cut to the end, p3 (starting past it) dropped"
grep -q "truncated to 38912" "$TMP/err" && grep -q "dropped" "$TMP/err"; ok $? "truncated image: warnings say what was cut and dropped"

# a DOS chain that loops: stops, warns
mkimg "$TMP/loop.img" 16M <<'S'
label: dos
start=2048, type=5
start=4096, size=1024
start=8192, size=1024
S
# make the second EBR (at 6144+...) link back to the first: find EBR 2 from EBR 1's link entry
ebr1=2048
link=$(od -An -tu4 -j $((ebr1 * 512 + 0x1ce + 8)) -N4 "$TMP/loop.img" | tr -d ' ')
ebr2=$((2048 + link))
printf '\x00\x00\x00\x00' | dd of="$TMP/loop.img" bs=1 seek=$((ebr2 * 512 + 0x1ce + 8)) conv=notrunc status=none
printf '\x05' | dd of="$TMP/loop.img" bs=1 seek=$((ebr2 * 512 + 0x1ce + 4)) conv=notrunc status=none
printf '\x00\x08\x00\x00' | dd of="$TMP/loop.img" bs=1 seek=$((ebr2 * 512 + 0x1ce + 12)) conv=notrunc status=none
is "$(timeout 10 "$PARTMAP" kpartx -l "$TMP/loop.img" 2>"$TMP/err" | wc -l)" 3 "looping EBR chain: finishes, lists extended + 2 logicals"
grep -q "loops back" "$TMP/err"; ok $? "looping EBR chain: warns"

# PARTMAP_UDEV_TIMEOUT: whole seconds or nothing (it was atoi()*1000: garbage waited 0 s, large
# values overflowed)
for v in abc -5 12x 99999999999999999999 3601; do
	PARTMAP_UDEV_TIMEOUT=$v "$PARTMAP" kpartx -a "$TMP/blank.img" >/dev/null 2>"$TMP/err"
	is $? 1 "PARTMAP_UDEV_TIMEOUT=$v: exit 1"
	grep -q "PARTMAP_UDEV_TIMEOUT='$v': not a whole number of seconds" "$TMP/err"; ok $? "PARTMAP_UDEV_TIMEOUT=$v: says why"
done
is "$(losetup -j "$TMP/blank.img" | wc -l)" 0 "PARTMAP_UDEV_TIMEOUT garbage: nothing attached"
PARTMAP_UDEV_TIMEOUT=x "$PARTMAP" dmsetup ls >/dev/null 2>"$TMP/err"; is $? 1 "dmsetup: PARTMAP_UDEV_TIMEOUT garbage: exit 1"
grep -q "not a whole number of seconds" "$TMP/err"; ok $? "dmsetup: PARTMAP_UDEV_TIMEOUT garbage: says why"
"$PARTMAP" dmsetup -j 7q -m 1 info >/dev/null 2>"$TMP/err"; is $? 1 "dmsetup -j garbage: exit 1"
grep -q "Invalid major number: 7q" "$TMP/err"; ok $? "dmsetup -j garbage: says why"
# a command is looked up before the device mapper is opened (this host has none)
"$PARTMAP" dmsetup frobnicate >/dev/null 2>"$TMP/err"; is $? 1 "dmsetup frobnicate: exit 1"
grep -q "unknown command 'frobnicate'" "$TMP/err" && ! grep -q "device-mapper driver" "$TMP/err"
ok $? "dmsetup frobnicate: 'unknown command', not a device-mapper failure"
for v in "" abc 12x "-- -1" 4294967296; do
	"$PARTMAP" dmsetup udevcomplete $v >/dev/null 2>"$TMP/err"; is $? 1 "dmsetup udevcomplete '$v': exit 1"
	grep -q "needs a cookie\|unknown option" "$TMP/err"; ok $? "dmsetup udevcomplete '$v': says why"
done
"$PARTMAP" dmsetup udevcomplete 0x0D4D1234 2>"$TMP/err"; is "$? $(wc -c <"$TMP/err")" "0 0" "dmsetup udevcomplete of a cookie nobody holds: exit 0, no device mapper needed"
done_testing
