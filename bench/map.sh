#!/usr/bin/env bash
# Benchmark of mapping a 128-partition GPT image and unmapping it again: partmap kpartx -a then -d
# per backend (part, loop), against losetup -P + partx -a / partx -d + losetup -d on the same image.
# Runs in a private mount namespace (its /dev/mapper is a tmpfs); needs root.
#   bench/map.sh [build/partmap]
set -euo pipefail
PARTMAP=$(readlink -f "${1:-build/partmap}")
RUNS=${RUNS:-10}
export PATH=$PATH:/usr/sbin:/sbin
if [ -z "${PARTMAP_IN_NS:-}" ]; then
	PARTMAP_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mkdir -p /dev/mapper
mount -t tmpfs bench-mapper /dev/mapper
t=$(mktemp -d)
img=$t/gpt128.img
cleanup() {
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>&1 || true
	for l in $(losetup -j "$img" -O NAME -n 2>/dev/null); do partx -d "$l" 2>/dev/null || true; losetup -d "$l" || true; done
	rm -rf "$t"
}
trap cleanup EXIT
truncate -s 1G "$img"
args=(); for i in $(seq 1 128); do args+=(-n "$i:0:+4M"); done
sgdisk "${args[@]}" "$img" >/dev/null

cat >"$t/util-linux.sh" <<S
l=\$(losetup -f --show -P "$img"); partx -a "\$l"; partx -d "\$l"; losetup -d "\$l"
S
hyperfine -N -w 2 -r "$RUNS" --export-json "$t/h.json" \
	"bash $t/util-linux.sh" \
	"bash -c '$PARTMAP kpartx -a --backend=part $img && $PARTMAP kpartx -d $img'" \
	"bash -c '$PARTMAP kpartx -a --backend=loop $img && $PARTMAP kpartx -d $img'" >/dev/null
read -r ul part loop < <(jq -r '[.results[].mean] | map(. * 1000) | @tsv' "$t/h.json")
printf '%-40s %10.1f ms\n' "losetup -P + partx -a / partx -d + losetup -d" "$ul" \
	"partmap -a/-d, part backend (BLKPG)" "$part" "partmap -a/-d, loop backend (128 loops)" "$loop"
printf 'ratio util-linux/partmap: part %.2fx, loop %.2fx (above 1: partmap faster)\n' \
	"$(echo "$ul / $part" | bc -l)" "$(echo "$ul / $loop" | bc -l)"
echo "(partmap also makes the 128 /dev/mapper links; util-linux makes none)"
