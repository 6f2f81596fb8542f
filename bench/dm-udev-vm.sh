#!/usr/bin/env bash
# Inside the test VM (see bench/dm.sh udev): with Debian's systemd-udevd and its dm rules running,
# -a then -d (each followed by udevadm settle) of 32- and 128-partition GPT images on a loop device,
# partmap against Debian's kpartx, mean of RUNS runs.
unset DM_DISABLE_UDEV
RUNS32=${RUNS:-3} RUNS128=${RUNS:-1} # under TCG a 128-partition cycle with udev takes minutes
mkdir -p /etc/udev/rules.d /run/udev
cp /tests/udev-rules/*.rules /etc/udev/rules.d/
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1
for _ in $(seq 100); do [ -e /run/udev/control ] && break; sleep 0.1; done
udevadm trigger --action=add >/dev/null 2>&1; udevadm settle --timeout=60
t=$(mktemp -d)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for parts in 32 128; do
	RUNS=$RUNS32; [ $parts = 128 ] && RUNS=$RUNS128
	truncate -s 1G "$t/g$parts.img"
	args=(); for i in $(seq 1 $parts); do args+=(-n "$i:0:+4M"); done
	sgdisk "${args[@]}" "$t/g$parts.img" >/dev/null
	L=$(losetup -f --show "$t/g$parts.img"); udevadm settle --timeout=60
	run() { # mean ms of RUNS runs of CMD -a; settle; CMD -d; settle
		local s total=0
		for _ in $(seq 1 "$RUNS"); do
			s=$(date +%s%N)
			"$@" -a "$L" >/dev/null 2>&1; udevadm settle --timeout=120
			"$@" -d "$L" >/dev/null 2>&1; udevadm settle --timeout=120
			total=$((total + $(ms "$s")))
		done
		echo $((total / RUNS))
	}
	"$PARTMAP" kpartx -a "$L" >/dev/null 2>&1; udevadm settle; "$PARTMAP" kpartx -d "$L" >/dev/null 2>&1; udevadm settle
	pm=$(run "$PARTMAP" kpartx)
	kp=$(run kpartx)
	echo "## bench: udev, $parts-partition GPT: partmap ${pm} ms, Debian kpartx ${kp} ms, ratio kpartx/partmap $(awk -v a="$kp" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')x (mean of $RUNS runs of -a, settle, -d, settle)"
	losetup -d "$L"
done
udevadm control --exit
rm -rf "$t"
