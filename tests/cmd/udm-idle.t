#!/usr/bin/env bash
# The userspace device mapper's server exits once it has no device and no client (5 s idle): after
# remove, remove -f of an open device, remove_all, a deferred removal, a client killed in the middle
# of a request, and a live client that stops between two requests (its idle connection must not keep
# the server); and a deferred removal of a device another table uses (the kernel's behaviour: marked
# DEFERRED REMOVE, removed with the last table that uses it). Runs in a private mount namespace with
# its own /dev/mapper and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
udm_private
command -v strace >/dev/null || { fail "strace missing (tests/install-deps.sh installs it)"; done_testing; exit; }
dms() { "$PARTMAP" dmsetup "$@"; }
cd "$TMP" || exit 1
head -c 8M /dev/urandom >a.bin
attach LA "$TMP/a.bin"
mk() { echo "0 16384 linear $LA 0" | dms create "$1"; }

# the server of this namespace gone within 10 s of wall-clock time (it waits 5 s idle)
server_gone() { # server_gone WHAT
	local t0=${EPOCHREALTIME/./} now i
	while :; do
		now=${EPOCHREALTIME/./}
		[ -z "$(servers)" ] && { pass "$1: the server exits ($(((now - t0) / 1000)) ms)"; return; }
		[ $((now - t0)) -ge 10000000 ] && break
		sleep 0.25
	done
	fail "$1: the server still runs after 10 s ($(servers))"
	for i in $(servers); do kill -9 "$i"; done
	dms remove_all >/dev/null 2>&1
}

mk v1 && [ -n "$(servers)" ]; ok $? "create: a server runs"
dms remove v1; ok $? "remove"
server_gone "remove"

mk v2
sleep 60 </dev/mapper/v2 & h=$!
sleep 0.2
dms remove -f v2 >/dev/null 2>&1
kill $h; wait $h 2>/dev/null
dms remove v2 >/dev/null 2>&1 # if -f left it (the kernel's -f leaves an open device, with an error table)
is "$(dms ls)" "No devices found" "remove -f of an open device, then its opener exits: no device"
server_gone "remove -f of an open device"

mk v3 && mk v4 && dms remove_all; ok $? "remove_all of two devices"
server_gone "remove_all"

mk v5
sleep 60 </dev/mapper/v5 & h=$!
sleep 0.2
dms remove --deferred v5; ok $? "remove --deferred of an open device"
kill $h; wait $h 2>/dev/null
server_gone "deferred removal, its opener exits"

# killed at its third read: the answer to the remove (the first request asks for the device's status)
mk v6
strace -f -o /dev/null -e trace=recvfrom -e inject=recvfrom:signal=SIGKILL:when=3 "$PARTMAP" dmsetup remove v6 2>/dev/null
is "$?" 137 "a client killed while it reads the answer to its remove"
is "$(dms ls)" "No devices found" "... the removal was done"
server_gone "client killed in the middle of a request"

# a client that stops for 20 s between its two requests (before its third send: the remove), while
# another one removes the last device: its open, idle connection must not keep the server
mk v7
strace -f -o /dev/null -e trace=sendto -e inject=sendto:delay_enter=20000000:when=3 "$PARTMAP" dmsetup remove v7 >/dev/null 2>err & c=$!
sleep 1
dms remove v7; ok $? "another client removes the device while the first one waits between its requests"
server_gone "a client idle between two requests"
wait $c; is "$?" 1 "... that client, continuing, finds no such device"

# a deferred removal of a device another table uses
mk base
echo "0 16384 linear /dev/mapper/base 0" | dms create top; ok $? "top over base"
dms remove base 2>err; is "$?" 1 "remove of base, used by top: refused"
grep -q "busy" err; ok $? "... busy ($(cat err))"
dms remove --deferred base; ok $? "remove --deferred of base: accepted"
is "$(dms info base | grep '^State:')" "State:             ACTIVE (DEFERRED REMOVE)" "info base: ACTIVE (DEFERRED REMOVE)"
is "$(dms ls | cut -f1 | sort | tr '\n' ' ')" "base top " "both are still there"
cmp /dev/mapper/top a.bin; ok $? "top still reads base's bytes"
dms remove top; ok $? "remove top"
is "$(dms ls)" "No devices found" "base went with top"
[ ! -e /dev/mapper/base ]; ok $? "its node too"
server_gone "deferred removal of a device used by another"
done_testing
