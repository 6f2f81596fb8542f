#!/usr/bin/env bash
# Runs every test through prove and ends with "N passed, N failed, N skipped".
#   tests/run-all.sh BUILD_DIR
set -uo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export PARTMAP="$top/$build/partmap" PARTMAP_BUILD="$top/$build" CMOCKA_MESSAGE_OUTPUT=TAP
export PATH=$PATH:/usr/sbin:/sbin

status=0
echo "== unit tests (cmocka) and the same under ASan+UBSan"
prove -v --exec '' "$build"/tests/test_* "$build"/asan/test_* 2>&1 | tee -a "$log" | grep -E '^(not ok|ok |Result|Files)|^#' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== command-level tests (TAP shell scripts)"
prove -v --exec bash tests/cmd/*.t 2>&1 | tee -a "$log" | grep -Ev '^ok ' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# a few minutes: asked for by PARTMAP_FRESH=1 (.ci/run sets it), or alone with make fresh-check
if [ -n "${PARTMAP_FRESH:-}" ]; then
	echo "== a fresh Debian 12: make demo, make install, make deb (tests/fresh)"
	prove -v --exec bash tests/fresh/*.t 2>&1 | tee -a "$log" | grep -Ev '^ok ' || true
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

passed=$(grep -Ec '^\s*ok [0-9]+' "$log" | head -1)
skipped=$(grep -Eic '^\s*ok [0-9]+.*# skip' "$log" | head -1)
failed=$(grep -Ec '^\s*not ok [0-9]+' "$log" | head -1)
passed=$((passed - skipped))
# a script that died or broke its plan counts as a failure even without a "not ok" line
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
