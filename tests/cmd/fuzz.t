#!/usr/bin/env bash
# A short libFuzzer run of every reader's target on the seed corpus (longer campaigns: see README).
. "$(dirname "$0")/lib.sh"
B=${PARTMAP_BUILD:-$(dirname "$PARTMAP")}
SECS=${FUZZ_SECONDS:-8}
if [ ! -x "$B/fuzz/mkseeds" ]; then
	fail "fuzz targets not built (make fuzz)"; done_testing; exit
fi
"$B/fuzz/mkseeds" "$TMP/seeds"
for f in "$B"/fuzz/fuzz_*; do
	t=${f##*/fuzz_}
	mkdir -p "$TMP/corpus/$t" "$TMP/art"
	seeds=("$TMP/seeds/$t")
	[ -d "$TMP/seeds/$t" ] || seeds=()
	"$f" -max_total_time="$SECS" -max_len=65537 -artifact_prefix="$TMP/art/" -print_final_stats=1 \
		"$TMP/corpus/$t" "${seeds[@]}" >"$TMP/log" 2>&1
	rc=$?
	runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TMP/log" | grep -o '[0-9]*$')
	ok $rc "fuzz $t: ${runs:-?} runs in ${SECS}s without a crash"
	[ $rc -eq 0 ] || { tail -30 "$TMP/log" | sed 's/^/# /'; ls "$TMP/art" | sed 's/^/# artifact: /'; }
done
done_testing
