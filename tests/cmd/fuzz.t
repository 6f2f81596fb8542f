#!/usr/bin/env bash
# A short libFuzzer run of every reader's target on the seed corpus (longer campaigns: see README).
. "$(dirname "$0")/lib.sh"
B=${PARTMAP_BUILD:-$(dirname "$PARTMAP")}
SECS=${FUZZ_SECONDS:-8}
if [ ! -x "$B/fuzz/mkseeds" ]; then
	fail "fuzz targets not built (make fuzz)"; done_testing; exit
fi
"$B/fuzz/mkseeds" "$TMP/seeds"
# seeds for the image formats: a small disk with a DOS table in each format and option qemu-img has
if command -v qemu-img >/dev/null; then
	truncate -s 1M "$TMP/disk.raw"
	printf 'label: dos\n64,512,83\n600,,5\n640,100,83\n' | sfdisk -q "$TMP/disk.raw"
	head -c 4096 /dev/urandom | dd of="$TMP/disk.raw" bs=4096 seek=20 conv=notrunc status=none
	mkdir -p "$TMP/seeds/img_"{qcow2,vmdk,vhd,vhdx,vdi}
	n=0
	for v in "qcow2 -o cluster_size=512" "qcow2 -o cluster_size=4k,compat=0.10" "qcow2 -c -o cluster_size=4k" \
		"qcow2 -c -o cluster_size=16k,extended_l2=on,compression_type=zstd" "vmdk" "vmdk -o subformat=streamOptimized" \
		"vpc" "vpc -o subformat=fixed" "vhdx" "vdi" "vdi -o static=on"; do
		set -- $v
		n=$((n + 1))
		d=img_$1
		[ "$1" = vpc ] && d=img_vhd
		qemu-img convert -q -f raw -O "$@" "$TMP/disk.raw" "$TMP/seeds/$d/seed$n" 2>/dev/null
	done
fi
# seeds for the device-mapper table text
mkdir -p "$TMP/seeds/dmtable"
printf '0 2048 linear 7:0 2048\n2048 100 zero\n' >"$TMP/seeds/dmtable/lz"
printf '# c\n\n0 8 crypt aes-xts-plain64 0011223344556677 0 7:1 0\n' >"$TMP/seeds/dmtable/crypt"
printf '0 16 striped 2 8 /dev/null 0 7:2 0\n16 0 error\n' >"$TMP/seeds/dmtable/bad"
for f in "$B"/fuzz/fuzz_*; do
	t=${f##*/fuzz_}
	mkdir -p "$TMP/corpus/$t" "$TMP/art"
	seeds=("$TMP/seeds/$t")
	[ -d "$TMP/seeds/$t" ] || seeds=()
	max=65537
	case $t in img_vhdx) max=$((5 << 20)) ;; img_*) max=$((256 << 10)) ;; esac
	"$f" -max_total_time="$SECS" -max_len=$max -artifact_prefix="$TMP/art/" -print_final_stats=1 \
		"$TMP/corpus/$t" "${seeds[@]}" >"$TMP/log" 2>&1
	rc=$?
	runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TMP/log" | grep -o '[0-9]*$')
	ok $rc "fuzz $t: ${runs:-?} runs in ${SECS}s without a crash"
	[ $rc -eq 0 ] || { tail -30 "$TMP/log" | sed 's/^/# /'; ls "$TMP/art" | sed 's/^/# artifact: /'; }
done
done_testing
