#!/usr/bin/env bash
# With Debian's systemd-udevd running and the dm rules from the dmsetup package and kpartx's rules:
# Debian's kpartx and partmap side by side on DOS (with logicals) and GPT images on loop devices.
# -a returns within seconds; /dev/mapper/<name> is udev's entry (a link to ../dm-N) with kpartx's
# mode and owner; udev makes the same /dev/disk links for partmap's maps as for kpartx's; no cookie
# or semaphore is left; -d removes maps, nodes and links; partmap dmsetup create/rename/remove; then
# udev running without the dm rules: one bounded wait, usable nodes with the parent's mode.
. "$(dirname "$0")/lib.sh"
unset DM_DISABLE_UDEV
start_udev() { # start_udev RULES...
	mkdir -p /etc/udev/rules.d /run/udev
	rm -f /etc/udev/rules.d/*.rules
	for r in "$@"; do cp "/tests/udev-rules/$r" /etc/udev/rules.d/; done
	/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1
	for _ in $(seq 100); do [ -e /run/udev/control ] && break; sleep 0.1; done
	udevadm trigger --action=add >/dev/null 2>&1
	udevadm settle --timeout=60
}
stop_udev() { udevadm control --exit >/dev/null 2>&1; for _ in $(seq 50); do [ -e /run/udev/control ] || break; sleep 0.1; done; rm -f /run/udev/control; }
defer stop_udev
all_rules=$(ls /tests/udev-rules)
# shellcheck disable=SC2086
start_udev $all_rules
[ -e /run/udev/control ]; ok $? "systemd-udevd runs with Debian's dm and kpartx rules"

cookies() { { dmsetup udevcookies 2>/dev/null | tail -n +2; ipcs -s 2>/dev/null | awk '$1 ~ /^0x0d4d/'; } | grep -c .; }
links_of() { # the /dev/disk links that point at a map, names with the map's name and minor cut out
	local dm=$1 name=$2
	find /dev/disk -type l 2>/dev/null | while read -r l; do
		[ "$(readlink -f "$l")" = "/dev/$dm" ] && echo "${l//$name/NAME}"
	done | sort
}
mkimg "$TMP/dos.img" 64M <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, type=5
start=12288, size=8192
start=22528, size=8192
S
rm -f "$TMP/gpt.img"; truncate -s 64M "$TMP/gpt.img"
sgdisk -n 1:0:+4M -n 2:0:+4M -n 3:0:+4M "$TMP/gpt.img" >/dev/null
for t in dos gpt; do
	img=$TMP/$t.img
	defer release_image "$img"
	attach L "$img"; n=${L#/dev/}
	udevadm settle --timeout=30
	declare -A seen=()
	for tool in kpartx partmap; do
		K=kpartx; [ $tool = partmap ] && K="$PARTMAP kpartx"
		s=$(date +%s)
		timeout 60 $K -a -v "$L" >"$TMP/out" 2>"$TMP/err"
		rc=$?
		took=$(( $(date +%s) - s ))
		is $rc 0 "$t [$tool]: -a exit 0"
		[ $took -le 15 ]; ok $? "$t [$tool]: -a returned within seconds ($took s)"
		udevadm settle --timeout=30
		grep -q "did not confirm" "$TMP/err"; [ $? -ne 0 ]; ok $? "$t [$tool]: udev confirmed (no fallback)"
		p1=/dev/mapper/${n}p1
		[ -L "$p1" ] && [ "$(readlink "$p1")" = "../$(basename "$(readlink -f "$p1")")" ]
		ok $? "$t [$tool]: $p1 is udev's link to ../dm-N"
		dm=$(basename "$(readlink -f "$p1")")
		seen[$tool]="$(stat -L -c '%a %U %G' "$p1")|$(links_of "$dm" "${n}p1")"
		[ "$(links_of "$dm" "${n}p1" | grep -c dm-name-)" -ge 1 ] && [ "$(links_of "$dm" "${n}p1" | grep -c dm-uuid-part1-)" -ge 1 ]
		ok $? "$t [$tool]: /dev/disk/by-id dm-name- and dm-uuid-part1- links"
		is "$(cookies)" 0 "$t [$tool]: no cookie or semaphore left"
		journal=$(find /run/udev -name '*.log' 2>/dev/null)
		$K -d "$L" >/dev/null 2>&1; ok $? "$t [$tool]: -d exit 0"
		udevadm settle --timeout=30
		is "$(ls /dev/mapper | grep -c "^${n}p")" 0 "$t [$tool]: -d removed the maps' entries"
		is "$(find /dev/disk -lname "*/$dm" 2>/dev/null | wc -l)" 0 "$t [$tool]: -d removed udev's links"
	done
	same "${seen[partmap]}" "${seen[kpartx]}" "$t: partmap's map has kpartx's mode, owner and the same /dev/disk links"
done

# one cookie and one wait for a whole run, as kpartx waits once (a wait per map made partmap slower
# than kpartx with udev: 0.77x for 32 partitions under TCG)
img=$TMP/gpt.img
attach L3 "$img"
udevadm settle --timeout=30
for a in -a -d; do
	# semop() is semtimedop() without a timeout: the waits are the calls with one
	strace -f -o "$TMP/sem.log" -e trace=semget,semtimedop "$PARTMAP" kpartx $a "$L3" >/dev/null 2>&1
	is "$? $(grep -c 'semget(' "$TMP/sem.log") $(grep 'semtimedop(' "$TMP/sem.log" | grep -c tv_sec)" "0 1 1" \
		"$a of 3 partitions with udev: one cookie, one wait"
	udevadm settle --timeout=30
done
is "$(ls /dev/mapper | grep -c "^${L3#/dev/}p")$(cookies)" "00" "after -a/-d under strace: no map, no cookie left"
# -u with udev in one batch: a partition gone from the table is removed, a new one added, the rest
# kept; udev's links follow
n3=${L3#/dev/}
"$PARTMAP" kpartx -a "$L3"; udevadm settle --timeout=30
keep=$(readlink "/dev/mapper/${n3}p1")
sgdisk -d 3 -n 4:0:+4M "$L3" >/dev/null 2>&1; blockdev --flushbufs "$L3"
"$PARTMAP" kpartx -u "$L3" 2>"$TMP/err"; rc=$?
udevadm settle --timeout=30
is "$rc $(ls /dev/mapper | grep "^${n3}p" | sort | xargs)" "0 ${n3}p1 ${n3}p2 ${n3}p4" "-u with udev: p3 removed, p4 added, p1 and p2 kept"
[ -L "/dev/mapper/${n3}p4" ] && [ "$(readlink "/dev/mapper/${n3}p1")" = "$keep" ]; ok $? "-u with udev: udev's links, p1 untouched"
grep -q "did not confirm" "$TMP/err"; [ $? -ne 0 ]; ok $? "-u with udev: confirmed by udev (no fallback)"
"$PARTMAP" kpartx -d "$L3"; udevadm settle --timeout=30
is "$(ls /dev/mapper | grep -c "^${n3}p")$(cookies)" "00" "-u then -d: no map, no cookie left"

# -d of an image whose loop device something else holds: both tools remove their maps and leave the
# loop device to the kernel's deferred detach (autoclear), released when the holder closes it
mkimg "$TMP/held.img" 32M <<'S'
label: dos
start=2048, size=8192, type=83
S
defer release_image "$TMP/held.img"
for tool in kpartx partmap; do
	K=kpartx; [ $tool = partmap ] && K="$PARTMAP kpartx"
	$K -a "$TMP/held.img" >/dev/null 2>&1
	udevadm settle --timeout=30
	hl=$(losetup -j "$TMP/held.img" -O NAME -n | head -1)
	exec 7<"$hl"
	$K -d "$TMP/held.img" >/dev/null 2>&1
	is $? 0 "held loop device [$tool]: -d exit 0"
	udevadm settle --timeout=30
	is "$(ls /dev/mapper | grep -c "^${hl#/dev/}p")" 0 "held loop device [$tool]: the maps are gone"
	is "$(cat /sys/block/${hl#/dev/}/loop/autoclear 2>/dev/null)" 1 "held loop device [$tool]: detach deferred (autoclear)"
	exec 7<&-
	for _ in $(seq 30); do [ -z "$(losetup -j "$TMP/held.img")" ] && break; sleep 0.1; done
	is "$(losetup -j "$TMP/held.img")" "" "held loop device [$tool]: released when the holder closed it"
done

# the loop backend with udev: udev probes each device after its detach (holding it open a moment);
# the devices made for partmap are removed all the same, without a warning and within seconds
loopset() { ls /sys/block | grep '^loop' | sort -V | xargs; }
img=$TMP/p12.img
truncate -s 64M "$img"
args=(); for i in $(seq 1 12); do args+=(-n "$i:0:+2M"); done
sgdisk "${args[@]}" "$img" >/dev/null
defer release_image "$img"
before=$(loopset)
"$PARTMAP" kpartx -a --backend=loop "$img"; ok $? "loop backend with udev: -a exit 0"
udevadm settle --timeout=30
made=$(( $(loopset | wc -w) - $(wc -w <<<"$before") ))
[ "$made" -gt 0 ]; ok $? "loop backend with udev: $made devices made for partmap"
s=$(date +%s)
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; ok $? "loop backend with udev: -d exit 0"
took=$(( $(date +%s) - s ))
[ $took -le 5 ]; ok $? "loop backend with udev: -d within seconds ($took s)"
is "$(cat "$TMP/err")" "" "loop backend with udev: -d says nothing"
udevadm settle --timeout=30
is "$(loopset)" "$before" "loop backend with udev: the loop devices as they were"
# the dm backend's own loop device for the image, made for partmap when none is free
held=()
truncate -s 1M "$TMP/hold.img"
for d in /sys/block/loop*; do [ -e "$d/loop/backing_file" ] || held+=("$(losetup -f --show "$TMP/hold.img")"); done
before=$(loopset)
"$PARTMAP" kpartx -a "$img"; ok $? "dm backend with udev, no free loop device: -a exit 0"
udevadm settle --timeout=30
is "$(( $(loopset | wc -w) - $(wc -w <<<"$before") ))" 1 "dm backend with udev: one loop device made for the image"
"$PARTMAP" kpartx -d "$img" 2>"$TMP/err"; ok $? "dm backend with udev: -d exit 0"
is "$(cat "$TMP/err")" "" "dm backend with udev: -d says nothing"
udevadm settle --timeout=30
is "$(loopset)" "$before" "dm backend with udev: the image's loop device removed"
for l in "${held[@]}"; do losetup -d "$l"; done

# partmap dmsetup with udev
echo "0 64 zero" | "$PARTMAP" dmsetup create udz; ok $? "dmsetup create with udev"
udevadm settle --timeout=30
[ -L /dev/mapper/udz ]; ok $? "dmsetup create: /dev/mapper/udz is udev's link"
"$PARTMAP" dmsetup rename udz udz2; ok $? "dmsetup rename with udev"
udevadm settle --timeout=30
[ -L /dev/mapper/udz2 ] && [ ! -e /dev/mapper/udz ]; ok $? "dmsetup rename: udev moved the link"
"$PARTMAP" dmsetup remove udz2; ok $? "dmsetup remove with udev"
udevadm settle --timeout=30
[ ! -e /dev/mapper/udz2 ]; ok $? "dmsetup remove: the entry is gone"
is "$(cookies)" 0 "dmsetup: no cookie or semaphore left"

# udev running but without the dm rules (nobody counts the cookies down): one bounded wait, then
# partmap makes usable nodes with the parent's mode
stop_udev
start_udev 50-udev-default.rules 60-block.rules
img=$TMP/dos.img
attach L2 "$img"; n=${L2#/dev/}
chmod 0640 "$L2"
s=$(date +%s)
PARTMAP_UDEV_TIMEOUT=3 "$PARTMAP" kpartx -a "$L2" 2>"$TMP/err"; rc=$?
took=$(( $(date +%s) - s ))
is $rc 0 "no dm rules: -a exit 0"
[ $took -ge 3 ] && [ $took -le 12 ]; ok $? "no dm rules: one bounded wait ($took s for 3 maps, PARTMAP_UDEV_TIMEOUT=3)"
grep -q "did not confirm" "$TMP/err"; ok $? "no dm rules: says it made the nodes itself"
is "$(stat -L -c '%F %a' /dev/mapper/${n}p5 2>&1)" "block special file 640" "no dm rules: usable nodes with the parent's mode"
is "$(cookies)" 0 "no dm rules: no cookie or semaphore left"
"$PARTMAP" kpartx -d "$L2"; ok $? "no dm rules: -d"
done_testing
