#!/usr/bin/env bash
# Differential test of kpartx -l on a generated corpus of DOS and GPT images: partmap must agree line
# for line with Debian's kpartx -l (its logical-partition lines converted from its /dev/dm-N relative
# form to the parent and absolute start that -a maps), and with partx --show on number, start, size.
. "$(dirname "$0")/lib.sh"
N=${LIST_DIFF_IMAGES:-24}
RANDOM=4242

# kpartx prints logicals as "<name> : 0 <size> /dev/dm-K <start relative to the container>", where the
# container is the K-th slot (0-based). Convert to absolute starts on the parent.
kpartx_abs() {
	awk '{ name[NR]=$1; size[NR]=$4; dev[NR]=$5; start[NR]=$6; n=NR
	       if ($5 !~ /^\/dev\/dm-/) { num=$1; sub(/.*[^0-9]/, "", num); s[num]=$6; parent=$5 } }
	     END { for (i = 1; i <= n; i++) {
	             if (dev[i] ~ /^\/dev\/dm-/) { k=dev[i]; sub(/.*dm-/, "", k); print name[i], ":", 0, size[i], parent, start[i] + s[k+1] }
	             else print name[i], ":", 0, size[i], dev[i], start[i] } }'
}

gen_dos() { # random primaries, an extended partition with random logicals and gaps
	local pos=2048 nprim=$((RANDOM % 3 + 1)) nlog=$((RANDOM % 25)) i
	echo "label: dos"
	for ((i = 0; i < nprim; i++)); do
		local sz=$(((RANDOM % 64 + 1) * 2048))
		echo "start=$pos, size=$sz, type=83"
		pos=$((pos + sz + (RANDOM % 3) * 2048))
	done
	if [ "$nlog" -gt 0 ]; then
		local ext=5
		[ $((RANDOM % 2)) -eq 0 ] && ext=f
		echo "start=$pos, type=$ext"
		for ((i = 0; i < nlog; i++)); do
			local sz=$(((RANDOM % 16 + 1) * 2048))
			pos=$((pos + 2048 + (RANDOM % 2) * 2048))
			echo "start=$pos, size=$sz, type=83"
			pos=$((pos + sz))
		done
	fi
}

gen_gpt() { # random entry numbers with gaps
	local img=$1 pos=2048 n=$((RANDOM % 30 + 1)) num=0 i
	echo "label: gpt"
	for ((i = 0; i < n; i++)); do
		num=$((num + 1 + (RANDOM % 4 == 0 ? RANDOM % 5 : 0)))
		[ "$num" -gt 128 ] && break
		local sz=$(((RANDOM % 16 + 1) * 2048))
		echo "$img$num : start=$pos, size=$sz"
		pos=$((pos + sz + (RANDOM % 2) * 2048))
	done
}

agree_kpartx=0 agree_partx=0
for ((t = 0; t < N; t++)); do
	img=$TMP/c$t.img
	rm -f "$img"; truncate -s 1G "$img"
	if [ $((t % 2)) -eq 0 ]; then gen_dos >"$TMP/script"; else gen_gpt "$img" >"$TMP/script"; fi
	if ! sfdisk -q --no-reread --no-tell-kernel "$img" <"$TMP/script" >/dev/null 2>"$TMP/sfdisk.err"; then
		fail "image $t: sfdisk could not make it"; sed 's/^/# /' "$TMP/sfdisk.err"; continue
	fi
	ours=$("$PARTMAP" kpartx -l "$img" | sed -E 's/loop[0-9]+/loopN/g')
	theirs=$(kpartx -l "$img" 2>/dev/null | kpartx_abs | sed -E 's/loop[0-9]+/loopN/g')
	same "$ours" "$theirs" "image $t ($(head -1 "$TMP/script" | cut -d' ' -f2), $(($(wc -l <"$TMP/script") - 1)) lines): agrees with kpartx -l"
	# partx: number, start, size; the extended partition is the one place the kernel (2 sectors) and
	# partx (the whole container) differ
	ours_px=$("$PARTMAP" kpartx -l --json "$img" | jq -r '.partitions[] | select(.kind != "extended") | "\(.number) \(.start) \(.size)"')
	theirs_px=$(partx --show -g -o NR,START,SECTORS,TYPE "$img" | awk '$4 != "0x5" && $4 != "0xf" { print $1, $2, $3 }')
	same "$ours_px" "$theirs_px" "image $t: agrees with partx --show on number, start, size"
done
done_testing
