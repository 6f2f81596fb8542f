#!/usr/bin/env bash
# Inside the test VM: runs every tests/*.t (or those partmap.only= names) and prints their TAP, each behind a "## file" line.
cd /tests
export PARTMAP=/partmap/partmap PARTMAP_IN_VM=1
echo "## kernel $(uname -r), device-mapper $(dmsetup version 2>/dev/null | awk '/Driver/ {print $3}')"
only=$(sed -n 's/.*partmap\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
tests=(/tests/*.t)
# partmap.only=a.t,b.t: those files only, in that order (tests/vm/run1.sh a.t,b.t)
[ -n "$only" ] && { tests=(); IFS=, read -ra o <<<"$only"; for t in "${o[@]}"; do tests+=("/tests/$t"); done; }
for t in "${tests[@]}"; do
	echo "## $(basename "$t")"
	timeout 600 bash "$t" 2>&1
	rc=$?
	echo "## end $(basename "$t") rc=$rc"
done
echo "## all done"
