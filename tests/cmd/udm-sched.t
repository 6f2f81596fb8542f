#!/usr/bin/env bash
# The userspace device mapper's server answers requests of tables that remap (linear) at the lowest
# real-time priority (SCHED_FIFO 1), as the kernel's DM does that work ahead of user tasks; requests of
# a table with a cipher (crypt, and a linear device over a crypt one) at normal priority, as dm-crypt's
# workers run; and, without CAP_SYS_NICE, every request at normal priority, answered as well. The
# threads' policies are read from ps (the kernel's view of each thread) while fio reads. Runs in a
# private mount namespace with its own /dev/mapper and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
udm_private
dms() { "$PARTMAP" dmsetup "$@"; }
cd "$TMP" || exit 1
head -c 8M /dev/urandom >a.bin
attach LA "$TMP/a.bin"
# two different halves: OpenSSL refuses an XTS key whose halves are equal
key=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "0 16384 crypt aes-xts-plain64 $key 0 $LA 0" | dms create sc; ok $? "create sc (crypt over the loop device)"
echo "0 8192 linear /dev/mapper/sc 0" | dms create sover; ok $? "create sover (linear over sc)"

# the scheduling classes of the server's threads seen while fio reads DEV for 2 s (ps: TS normal, FF
# SCHED_FIFO), each once, in $c; fio's exit code in $frc
seen() { # seen DEV
	local f s
	fio --name=r --filename="$1" --rw=randread --bs=4k --iodepth=16 --ioengine=libaio --direct=1 \
		--runtime=2 --time_based --output-format=terse >fio.out 2>&1 &
	f=$!
	s=
	while kill -0 $f 2>/dev/null; do
		s="$s $(ps -L -o cls= -p "$(servers | head -1)" 2>/dev/null | tr -d ' ' | tr '\n' ' ')"
		sleep 0.1
	done
	wait $f
	frc=$?
	c=$(echo $s | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')
}

seen /dev/mapper/sc
is "$frc" 0 "random reads of sc for 2 s"
is "$c" "TS" "... answered at normal priority (crypt: a cipher's work)"
seen /dev/mapper/sover
is "$frc" 0 "random reads of sover for 2 s"
is "$c" "TS" "... at normal priority too (a crypt device under it)"
echo "0 16384 linear $LA 0" | dms create lin; ok $? "create lin (linear over the loop device)"
seen /dev/mapper/lin
is "$frc" 0 "random reads of lin for 2 s"
case " $c " in *" FF "*) pass "... answered at real-time priority (seen: $c)" ;; *) fail "... answered at real-time priority (seen: $c)" ;; esac
cmp /dev/mapper/lin a.bin; ok $? "lin reads the file's bytes"
ps -o cls= -p "$(servers | head -1)" | grep -qx ' *TS'; ok $? "the server's main thread stays at normal priority"

# ---- without CAP_SYS_NICE: a new server, at normal priority, reading right ----
dms remove_all; ok $? "remove_all"
for ((i = 0; i < 300 && $(servers | wc -l) > 0; i++)); do sleep 0.05; done
for p in $(servers); do kill -9 "$p"; done # the server ends with its last device; not waited on longer
umount -l /run/partmap/dm/fs 2>/dev/null
echo "0 16384 linear $LA 0" | setpriv --bounding-set=-sys_nice "$PARTMAP" dmsetup create lin; ok $? "create lin with CAP_SYS_NICE dropped"
p=$(servers | head -1)
eff=$(awk '/^CapEff:/ {print $2}' "/proc/$p/status")
[ -n "$eff" ] && [ $((0x$eff >> 23 & 1)) -eq 0 ]; ok $? "... its server has no CAP_SYS_NICE (CapEff $eff)"
seen /dev/mapper/lin
is "$frc" 0 "random reads of lin for 2 s"
is "$c" "TS" "... answered at normal priority"
cmp /dev/mapper/lin a.bin; ok $? "lin reads the file's bytes"
dms remove_all; ok $? "remove_all"
done_testing
