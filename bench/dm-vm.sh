#!/usr/bin/env bash
# Inside the test VM (see bench/dm.sh): -a then -d of a 128-partition GPT image on a loop device,
# partmap against Debian's kpartx, and the DM ioctls partmap issues per partition.
export DM_DISABLE_UDEV=1
RUNS=${RUNS:-5}
t=$(mktemp -d)
truncate -s 1G "$t/g.img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+4M"); done
sgdisk "${args[@]}" "$t/g.img" >/dev/null
L=$(losetup -f --show "$t/g.img")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
run() { # run LABEL CMD... : mean of RUNS runs of CMD -a; CMD -d
	local s total=0
	for _ in $(seq 1 "$RUNS"); do
		s=$(date +%s%N); "$@" -a "$L" >/dev/null 2>&1; "$@" -d "$L" >/dev/null 2>&1
		total=$((total + $(ms "$s")))
	done
	echo $((total / RUNS))
}
"$PARTMAP" kpartx -a "$L" >/dev/null 2>&1; "$PARTMAP" kpartx -d "$L" >/dev/null 2>&1 # warm up
pm=$(run "$PARTMAP" kpartx)
kp=$(run kpartx)
strace -f -e trace=ioctl -o "$t/a.trace" "$PARTMAP" kpartx -a "$L" >/dev/null 2>&1
strace -f -e trace=ioctl -o "$t/d.trace" "$PARTMAP" kpartx -d "$L" >/dev/null 2>&1
na=$(grep -c 'DM_' "$t/a.trace"); nd=$(grep -c 'DM_' "$t/d.trace")
ca=$(grep -cE 'DM_(DEV_CREATE|TABLE_LOAD|DEV_SUSPEND)' "$t/a.trace")
echo "## bench: 128-partition GPT on $L, mean of $RUNS runs of -a then -d"
echo "## bench: partmap ${pm} ms, Debian kpartx ${kp} ms, ratio kpartx/partmap $(awk -v a="$kp" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')x"
echo "## bench: partmap DM ioctls: -a $na ($(awk -v n="$na" 'BEGIN { printf "%.2f", n / 128 }') per partition; create+load+resume $ca = $(awk -v n="$ca" 'BEGIN { printf "%.2f", n / 128 }') per partition), -d $nd ($(awk -v n="$nd" 'BEGIN { printf "%.2f", n / 128 }') per partition)"
losetup -d "$L"
rm -rf "$t"
