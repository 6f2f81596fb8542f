#!/usr/bin/env bash
# Requests one device of the userspace device mapper holds (suspended, or delayed by a delay target)
# do not hold up the server's other devices, as with the kernel's device mapper: with many of them
# queued (more than FUSE's default of 64 asynchronous requests, more than libfuse's threads), another
# device still reads and a new device can still be made; after resume everything held completes, and
# the threads started for the held requests end. Requests that do not block are answered by few
# threads (a thread woken for each request costs more than the request), but a large write's requests
# by two at once (their copies overlap). Runs in a private mount namespace with its own /dev/mapper
# and /run/partmap.
. "$(dirname "$0")/lib.sh"
private_ns "$@"
udm_private
dms() { "$PARTMAP" dmsetup "$@"; }
cd "$TMP" || exit 1
N=96 # readers held at once: more than the 64 requests and 16 threads of FUSE's and libfuse's defaults
head -c 16M /dev/urandom >a.bin
attach LA "$TMP/a.bin"
echo "0 16384 linear $LA 0" | dms create held; ok $? "create held (first 8 MiB)"
echo "0 16384 linear $LA 16384" | dms create other; ok $? "create other (second 8 MiB)"

# wait_done PID SECS: 0 once PID has ended, 1 if it still runs after SECS seconds (0: asked once)
wait_done() {
	local i
	for ((i = 0; ; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		[ "$i" -ge $(($2 * 20)) ] && return 1
		sleep 0.05
	done
}
# N readers of 4 KiB blocks of DEV, each writing r.I.done when done; their PIDs in rpids
readers() { # readers DEV
	local i
	rm -f r.*
	rpids=()
	for ((i = 0; i < N; i++)); do
		(dd if="$1" of=r.$i bs=4k skip=$i count=1 iflag=direct status=none && echo ok >>r.$i.done) &
		rpids+=($!)
	done
}
ndone() { ls r.*.done 2>/dev/null | wc -l; }
# the N readers' blocks as the file has them (both devices read map the file from its start)
readers_right() {
	local i
	for ((i = 0; i < N; i++)); do
		cmp -s r.$i <(dd if=a.bin bs=4k skip=$i count=1 status=none) || return 1
	done
}
threads() { awk '/^Threads:/ {print $2}' "/proc/$(servers | head -1)/status"; }

# ---- 16 reads at once of data in memory (the file was just written): few threads ----
fio --name=r --filename=/dev/mapper/other --rw=randread --bs=4k --iodepth=16 --ioengine=libaio --direct=1 \
	--runtime=2 --time_based --output-format=terse >fio.out 2>&1 &
f=$!
peak=0
while kill -0 $f 2>/dev/null; do
	t=$(threads)
	[ "${t:-0}" -gt $peak ] && peak=$t
	sleep 0.1
done
wait $f; ok $? "16 random reads at once for 2 s"
# libfuse's own loop ran 17 or more here: 16 threads waiting, each woken by a request
[ $peak -gt 0 ] && [ $peak -le 8 ]; ok $? "... answered by few server threads ($peak at most)"

# ---- a 2 MiB direct write: at least two requests at once (FUSE takes 1 MiB at most), each large; the
# thread that takes the first wakes another for the second (fpool.c) rather than taking it after ----
# bytes each server thread has read (rchar: its read()s of /dev/fuse), one "TID BYTES" line each
rchars() {
	local p t
	p=$(servers | head -1)
	for t in /proc/$p/task/*; do echo "${t##*/} $(awk '/^rchar:/ {print $2}' "$t/io" 2>/dev/null)"; done | sort
}
two=0
for i in 1 2 3 4 5; do
	sleep 0.3 # no request for a while: one thread reads, the others park
	rchars >rc.before
	dd if=/dev/urandom of=w.bin bs=2M count=1 status=none
	dd if=w.bin of=/dev/mapper/other bs=2M count=1 seek=1 oflag=direct status=none || break
	rchars >rc.after
	# threads that read 256 KiB or more of it
	n=$(join -a 2 -e 0 -o 0,1.2,2.2 rc.before rc.after | awk '$3 - $2 >= 262144' | wc -l)
	[ "$n" -ge 2 ] && two=$((two + 1))
	cmp -s w.bin <(dd if=a.bin bs=2M skip=5 count=1 status=none) || { two=-99; break; }
done
if [ "$(nproc)" -gt 1 ]; then
	[ $two -ge 3 ]; ok $? "a 2 MiB write's requests taken by two threads at once ($two of 5 writes; written right)"
else
	[ $two -ge 0 ]; ok $? "2 MiB writes written right"
	skip "two threads for a 2 MiB write's requests: one processor here, the server does not overlap them"
fi

# ---- the request buffers in huge pages (fpool.c): a large write's data lands in one where the kernel
# has transparent huge pages; one such buffer per processor at most (4), however many threads ----
hugekb() { awk '/^AnonHugePages:/ {print $2}' "/proc/$(servers | head -1)/smaps_rollup"; }
cpus=$(nproc)
hugemax=$((2048 * (cpus < 4 ? cpus : 4)))
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
if [ -n "$thp" ] && [ "${thp#*\[never\]}" = "$thp" ]; then
	h=$(hugekb)
	[ "${h:-0}" -ge 2048 ] && [ "$h" -le $hugemax ]; ok $? "large writes' data in huge pages (${h:-?} kB, at most $hugemax)"
else
	skip "request buffers in huge pages: this kernel has no transparent huge pages"
fi

# ---- a suspended device with N readers queued ----
dms suspend held; ok $? "suspend held"
readers /dev/mapper/held
sleep 1
is "$(ndone)" 0 "$N readers of held wait"
# (nothing here waits on what may be held up until held is resumed: a test that fails, not hangs)
dd if=/dev/mapper/other of=o.out bs=4k count=1 skip=7 iflag=direct status=none &
o=$!
wait_done $o 10; ok $? "other reads while held is suspended with $N requests queued"
cmp -s o.out <(dd if=a.bin bs=4k skip=$((2048 + 7)) count=1 status=none); ok $? "... the right block"
echo "0 2048 linear $LA 4096" | dms create third &
c=$!
wait_done $c 10; made=$?
ok $made "create third while held is suspended"
[ $made -eq 0 ] && cmp -s <(dd if=/dev/mapper/third bs=4k count=1 iflag=direct status=none) <(dd if=a.bin bs=512 skip=4096 count=8 status=none)
ok $? "... and it reads"
is "$(ndone)" 0 "held's readers still wait"
t=$(threads)
[ "$t" -gt $N ]; ok $? "a thread for each held request ($t)"
h=$(hugekb)
[ "${h:-0}" -le $hugemax ]; ok $? "... yet no more huge-page buffers than processors (${h:-?} kB, at most $hugemax)"
if ! wait_done $o 0 || [ $made -ne 0 ]; then
	# held up: a create stuck there holds the server's command lock, which resume needs
	fail "the server is held up: killed, the rest not run"
	for p in $(servers); do kill -9 "$p"; done
	done_testing
	exit
fi
dms resume held; ok $? "resume held"
wait $o $c
for p in "${rpids[@]}"; do wait "$p"; done
is "$(ndone)" $N "all $N readers of held done after resume"
readers_right; ok $? "... with the right blocks"
sleep 0.5
t=$(threads)
[ "$t" -le 24 ]; ok $? "the threads started for them ended ($t left)"

# ---- a delay target: N readers held 3 s each ----
dms remove held
echo "0 16384 delay $LA 0 3000" | dms create slow; ok $? "create slow (delay 3000 ms)"
readers /dev/mapper/slow
sleep 0.5
dd if=/dev/mapper/other of=o.out bs=4k count=1 skip=9 iflag=direct status=none &
o=$!
wait_done $o 10; ok $? "other reads while slow delays $N requests"
is "$(ndone)" 0 "... before any of them is done"
cmp -s o.out <(dd if=a.bin bs=4k skip=$((2048 + 9)) count=1 status=none); ok $? "... the right block"
wait $o
for p in "${rpids[@]}"; do wait "$p"; done
is "$(ndone)" $N "all $N readers of slow done"
readers_right; ok $? "... with the right blocks"

dms remove_all; ok $? "remove_all"
done_testing
