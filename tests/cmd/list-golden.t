#!/usr/bin/env bash
# kpartx -l on images made during the run by sfdisk, sgdisk, fdisk and parted: golden output.
. "$(dirname "$0")/lib.sh"

norm() { sed -E 's/loop[0-9]+/loopN/g'; }
list() { "$PARTMAP" kpartx -l "$@" 2>"$TMP/err" | norm; }

# DOS with 3 primaries (one extended) and 8 logicals
mkimg "$TMP/dos.img" 200M <<'S'
label: dos
start=2048, size=20480, type=83, bootable
start=22528, size=10240, type=82
start=32768, type=5
start=34816, size=8192, type=83
start=45056, size=8192, type=83
start=55296, size=8192, type=7
start=65536, size=8192, type=83
start=75776, size=8192, type=c
start=86016, size=8192, type=83
start=96256, size=8192, type=83
start=106496, type=83
S
same "$(list "$TMP/dos.img")" "loopNp1 : 0 20480 /dev/loopN 2048
loopNp2 : 0 10240 /dev/loopN 22528
loopNp3 : 0 2 /dev/loopN 32768
loopNp5 : 0 8192 /dev/loopN 34816
loopNp6 : 0 8192 /dev/loopN 45056
loopNp7 : 0 8192 /dev/loopN 55296
loopNp8 : 0 8192 /dev/loopN 65536
loopNp9 : 0 8192 /dev/loopN 75776
loopNp10 : 0 8192 /dev/loopN 86016
loopNp11 : 0 8192 /dev/loopN 96256
loopNp12 : 0 303104 /dev/loopN 106496" "dos: primaries, the extended as 2 sectors, 8 logicals at absolute starts"
is "$(cat "$TMP/err")" "" "dos: nothing on stderr"

# GPT with only entries 3 and 100 used
rm -f "$TMP/gpt.img"; truncate -s 64M "$TMP/gpt.img"
sgdisk -n 3:2048:+4M -c 3:three -n 100:0:+8M -t 100:8200 "$TMP/gpt.img" >/dev/null
same "$(list "$TMP/gpt.img")" "loopNp3 : 0 8192 /dev/loopN 2048
loopNp100 : 0 16384 /dev/loopN 10240" "gpt: gaps in entry numbers (3 and 100)"
json=$("$PARTMAP" kpartx -l --json "$TMP/gpt.img")
is "$(jq -r '.partitions[] | "\(.number) \(.part_name // "") \(.type) \(.start_bytes) \(.size_bytes)"' <<<"$json")" \
"3 three 0fc63daf-8483-4772-8e79-3d69d8477de4 1048576 4194304
100  0657fd6d-a4ab-43c4-84e5-0933c84b4f4f 5242880 8388608" "gpt: --json gives numbers, names, type GUIDs, bytes"
is "$(jq -r '.table, .sector_size, (.partitions[0].uuid | test("^[0-9a-f-]{36}$"))' <<<"$json")" "gpt
512
true" "gpt: --json table type, sector size, unique GUID"

# parted labels
for l in bsd sun mac dvh atari; do
	rm -f "$TMP/$l.img"; truncate -s 64M "$TMP/$l.img"
	case $l in
	dvh) parted -s "$TMP/$l.img" mklabel dvh mkpart primary ext2 4MiB 9MiB mkpart primary ext2 9MiB 20MiB ;;
	mac|atari) parted -s "$TMP/$l.img" mklabel $l mkpart primary 4MiB 9MiB mkpart primary 9MiB 20MiB ;;
	*) parted -s "$TMP/$l.img" mklabel $l mkpart ext2 4MiB 9MiB mkpart ext2 9MiB 20MiB ;;
	esac
done 2>/dev/null
same "$(list "$TMP/bsd.img")" "loopNp1 : 0 10240 /dev/loopN 8192
loopNp2 : 0 22528 /dev/loopN 18432" "bsd (parted): label at byte 64"
same "$(list "$TMP/sun.img")" "loopNp1 : 0 10240 /dev/loopN 8192
loopNp2 : 0 22528 /dev/loopN 18432
loopNp3 : 0 131072 /dev/loopN 0" "sun (parted): slices 1, 2 and the whole-disk slice 3"
same "$(list "$TMP/mac.img")" "loopNp1 : 0 63 /dev/loopN 1
loopNp2 : 0 10240 /dev/loopN 8192
loopNp3 : 0 22528 /dev/loopN 18432
loopNp4 : 0 8128 /dev/loopN 64
loopNp5 : 0 90112 /dev/loopN 40960" "mac (parted): map, partitions and free space entries"
same "$(list "$TMP/dvh.img")" "loopNp1 : 0 10240 /dev/loopN 8192
loopNp2 : 0 22528 /dev/loopN 18432
loopNp9 : 0 4096 /dev/loopN 0
loopNp11 : 0 131072 /dev/loopN 0" "sgi dvh (parted): volume header 9 and whole volume 11"
same "$(list "$TMP/atari.img")" "loopNp1 : 0 10240 /dev/loopN 8192
loopNp2 : 0 22528 /dev/loopN 18432" "atari (parted)"

# 4096-byte sectors: DOS and GPT made by fdisk -b 4096, found without being told
rm -f "$TMP/dos4k.img"; truncate -s 64M "$TMP/dos4k.img"
printf 'n\np\n1\n\n+8M\nn\ne\n2\n\n\nn\n\n+4M\nn\n\n\nw\n' | fdisk -b 4096 "$TMP/dos4k.img" >/dev/null 2>&1
same "$(list "$TMP/dos4k.img")" "loopNp1 : 0 16384 /dev/loopN 2048
loopNp2 : 0 8 /dev/loopN 18432
loopNp5 : 0 8192 /dev/loopN 20480
loopNp6 : 0 100352 /dev/loopN 30720" "dos 4096: sector size guessed, extended shown as one logical sector"
is "$("$PARTMAP" kpartx -l --json "$TMP/dos4k.img" | jq .sector_size)" 4096 "dos 4096: --json says 4096"
rm -f "$TMP/gpt4k.img"; truncate -s 64M "$TMP/gpt4k.img"
printf 'g\nn\n3\n\n+8M\nn\n7\n\n+4M\nw\n' | fdisk -b 4096 "$TMP/gpt4k.img" >/dev/null 2>&1
same "$(list "$TMP/gpt4k.img")" "loopNp3 : 0 16384 /dev/loopN 2048
loopNp7 : 0 8192 /dev/loopN 18432" "gpt 4096: header found at byte 4096"
same "$(list --sector-size 512 "$TMP/gpt4k.img")" "" "gpt 4096 read with --sector-size 512: nothing"

done_testing
