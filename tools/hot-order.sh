#!/usr/bin/env bash
# make hot-order: regenerate src/hot.ld, the linker script that lays out together the code and data
# that partmap's start-up, --version and kpartx -l touch (tools/hot-order.pl says why).
#   tools/hot-order.sh WORKDIR 'LINK COMMAND' 'LIBS' OBJECT... > src/hot.ld
# Runs the binary under valgrind (every address it touches) and perf (the page faults of a native
# run: what valgrind cannot show), links again with the script made, and repeats, so that what runs
# natively only is found too. Needs valgrind and perf (linux-perf); a developer's tool, not the build's.
set -euo pipefail
w=$1 link=$2 libs=$3
shift 3
for c in valgrind perf sgdisk sfdisk perl; do
	command -v $c >/dev/null || { echo "hot-order: $c is missing" >&2; exit 1; }
done
mkdir -p "$w"
# the images -l lists in bench/list.sh, smaller: GPT with 128 entries, DOS with logical partitions
truncate -s 0 "$w/gpt.img" "$w/dos.img"
truncate -s 1G "$w/gpt.img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+4M"); done
sgdisk "${args[@]}" "$w/gpt.img" >/dev/null
truncate -s 64M "$w/dos.img"
printf 'label: dos\n2048,8192,83\n,,5\n,4096,83\n,4096,83\n,4096,83\n,4096,83\n' | sfdisk -q "$w/dos.img"
runs=("--version" "kpartx -l $w/gpt.img" "kpartx -l $w/dos.img")
script=
for round in 0 1 2 3; do
	# shellcheck disable=SC2086 # the link command and libraries are word lists
	$link -o "$w/partmap" "$@" ${script:+-Wl,-T,$script} -Wl,-Map="$w/partmap.map" $libs 2>/dev/null
	traces=()
	for i in "${!runs[@]}"; do
		# shellcheck disable=SC2086
		valgrind -q --tool=lackey --trace-mem=yes --log-file="$w/lackey.$i" "$w/partmap" ${runs[$i]} >/dev/null 2>&1
		traces+=("$w/lackey.$i")
		# shellcheck disable=SC2086
		perf record -q -e page-faults -c 1 -d -o "$w/perf.data" "$w/partmap" ${runs[$i]} >/dev/null 2>&1
		perf script -i "$w/perf.data" -F addr 2>/dev/null >"$w/faults.$i"
		traces+=("$w/faults.$i")
	done
	perl "$(dirname "$0")/hot-order.pl" ${script:+--keep "$script"} "$w/partmap.map" "${traces[@]}" >"$w/hot.$round.ld"
	script=$w/hot.$round.ld
	echo "hot-order: round $round: $(grep -c '^		' "$script") input sections" >&2
done
cat "$script"
