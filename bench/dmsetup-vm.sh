#!/usr/bin/env bash
# Inside the test VM (see bench/dmsetup.sh): create and remove 500 linear devices, partmap dmsetup
# against Debian's dmsetup.
export DM_DISABLE_UDEV=1
N=${N:-500}
t=$(mktemp -d)
truncate -s 64M "$t/f"
L=$(losetup -f --show "$t/f")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
bench() { # bench DMSETUP...
	local s=$(date +%s%N)
	for i in $(seq 1 "$N"); do echo "0 8 linear $L $((i * 8))" | "$@" create "b$i" || return 1; done
	for i in $(seq 1 "$N"); do "$@" remove "b$i" || return 1; done
	ms "$s"
}
pm=$(bench "$PARTMAP" dmsetup)
dm=$(bench dmsetup)
echo "## bench: create+remove of $N linear devices: partmap ${pm} ms, Debian dmsetup ${dm} ms, ratio dmsetup/partmap $(awk -v a="$dm" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')x"
losetup -d "$L"
rm -rf "$t"
