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
	# one file at most 20 min (dmraid-formats.t: 42 cases of member images written to the disks, under
	# TCG; 10 min were not enough on a loaded machine)
	timeout 1200 bash "$t" 2>&1
	rc=$?
	echo "## end $(basename "$t") rc=$rc"
done
echo "## all done"
