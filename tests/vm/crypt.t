#!/usr/bin/env bash
# The kernel's dm-crypt as the oracle for partmap's crypt target (src/target/crypt.c), in the test VM:
# - every vector of tests/unit/crypt_vectors.h (test_crypt.c holds the target to them) is what the
#   kernel leaves on the device for the same table (or, for "reverse" ones, reads from it);
# - the kernel refuses the tables test_crypt.c expects refused, with the same messages (dmesg);
# - `dmsetup table --showkeys` prints what the target's TABLE status prints, and sector_size sets the
#   logical block size.
. "$(dirname "$0")/lib.sh"
vec=$(dirname "$0")/crypt_vectors.h
[ -f "$vec" ] || { echo "Bail out! no crypt_vectors.h next to crypt.t"; exit 1; }
dm=pmcrypt$$
defer "dmsetup remove $dm"
K16=000102030405060708090A0b0c0d0e0f
k16=000102030405060708090a0b0c0d0e0f
K64=00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0f0e1d2c3b4a5968778695a4b3c2d1e0fffeeddccbbaa99887766554433221100

# the plaintext and ciphertext patterns of crypt_vectors.py
pattern() { # pattern pt|ct BYTES
	case $1 in
	pt) LC_ALL=C awk -v n="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%c", (i * 131 + int(i / 512) * 17 + 7) % 256 }' ;;
	ct) LC_ALL=C awk -v n="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%c", (i * 37 + 11 + int(i / 4096)) % 256 }' ;;
	esac
}

sed -n 's/^\t{ "\(.*\)", \([0-9]*\), \([0-9]*\), \([01]\), "\([0-9a-f]*\)" },$/\1|\2|\3|\4|\5/p' "$vec" >"$TMP/vectors"
[ -s "$TMP/vectors" ] || { echo "Bail out! no vectors read from $vec"; exit 1; }
f=$TMP/dev.img
while IFS='|' read -r table start sectors rev sha; do
	rm -f "$f"
	truncate -s $(((start + sectors + 8) * 512)) "$f"
	len=$((sectors * 512))
	attach l "$f" || { fail "losetup for $table"; continue; }
	t=${table/ 7:0 / $(cat "/sys/block/${l#/dev/}/dev") }
	got="the kernel refused the table"
	if [ "$rev" = 0 ]; then
		pattern pt "$len" >"$TMP/in"
		if dmsetup create "$dm" --table "$t"; then
			dd if="$TMP/in" of="/dev/mapper/$dm" bs=4096 conv=fsync status=none
			dmsetup remove "$dm"
			got=$(dd if="$f" bs=512 skip="$start" count="$sectors" status=none | sha256sum | cut -d' ' -f1)
		fi
	else
		pattern ct "$len" | dd of="$f" bs=512 seek="$start" conv=notrunc status=none
		if dmsetup create "$dm" --table "$t"; then
			got=$(dd if="/dev/mapper/$dm" bs=4096 status=none | sha256sum | cut -d' ' -f1)
			dmsetup remove "$dm"
		fi
	fi
	is "$got" "$sha" "dm-crypt's bytes: $table"
	losetup -d "$l"
done <"$TMP/vectors"

truncate -s 1M "$f"
attach l "$f" || { echo "Bail out! losetup"; exit 1; }
dev=$(cat "/sys/block/${l#/dev/}/dev")

# the refusals test_crypt.c expects that are the kernel's (not those of what only OpenSSL lacks)
refuse() { # refuse TABLE MESSAGE
	local msg
	dmesg -c >/dev/null 2>&1
	if dmsetup create "$dm" --table "$1" 2>/dev/null; then
		dmsetup remove "$dm"
		fail "the kernel refuses: $1"
		return
	fi
	dmsetup remove "$dm" >/dev/null 2>&1
	msg=$(dmesg | sed -n 's/.*: crypt: \(.*\)$/\1/p' | tail -1 | sed 's/ (-[A-Z0-9]*)$//')
	is "$msg" "$2" "the kernel's message for: $1"
}
refuse "0 8 crypt aes $K16 0 $dev" "Not enough arguments"
refuse "0 8 crypt aes :x:logon:a 0 $dev 0" "Cannot parse key size"
refuse "0 8 crypt aes $K16 0 $dev 0 2 allow_discards" "Invalid number of feature args"
refuse "0 8 crypt aes $K16 0 $dev 0 9 a b c d e f g h i" "Invalid number of feature args"
refuse "0 8 crypt aes $K16 0 $dev 0 1 bogus" "Invalid feature arguments"
refuse "0 8 crypt aes $K16 0 $dev 0 1 sector_size:1024x" "Invalid feature arguments"
refuse "0 8 crypt aes $K16 0 $dev 0 1 sector_size:1000" "Invalid feature value for sector_size"
refuse "0 8 crypt aes $K16 0 $dev 0 1 sector_size:8192" "Invalid feature value for sector_size"
refuse "0 9 crypt aes $K16 0 $dev 0 1 sector_size:4096" "Device size is not multiple of sector_size feature"
# an area that does not start on a sector_size boundary: refused by the table check (dm-table.c,
# "start=3 not aligned to h/w logical block size"), as partmap's crypt refuses it
dmsetup create "$dm" --table "0 8 crypt aes $K16 0 $dev 3 1 sector_size:4096" >/dev/null 2>&1
is "$?" 1 "the kernel refuses a crypt area not on a sector_size boundary"
dmsetup remove "$dm" >/dev/null 2>&1
refuse "0 8 crypt aes $K16 0 $dev 0 1 integrity:0:none" "Invalid integrity arguments"
refuse "0 8 crypt aes $K16 0 $dev 0 1 integrity:16:foo" "Unknown integrity profile"
refuse "0 8 crypt aes $K16 0 $dev 0 1 integrity:16:aead" "Bad cipher specification"
refuse "0 8 crypt cbc(aes)-plain $K16 0 $dev 0" "Bad cipher specification"
refuse "0 8 crypt aes:3-cbc-plain $K16 0 $dev 0" "Bad cipher key count specification"
refuse "0 8 crypt aes:0-cbc-plain $K16 0 $dev 0" "Bad cipher key count specification"
refuse "0 8 crypt aes-cbc $K16 0 $dev 0" "IV mechanism required"
refuse "0 8 crypt aes-cbc-essiv $K16 0 $dev 0" "Digest algorithm missing for ESSIV mode"
refuse "0 8 crypt capi:cbc(aes)-essiv $K16 0 $dev 0" "Digest algorithm missing for ESSIV mode"
refuse "0 8 crypt aes-ecb-essiv:sha256 $K16 0 $dev 0" "Error allocating crypto tfm"
refuse "0 8 crypt aes-cbc-essiv:sha512 $K16 0 $dev 0" "Error allocating crypto tfm"
refuse "0 8 crypt aes-cbc-essiv:nosuch $K16 0 $dev 0" "Error allocating crypto tfm"
refuse "0 8 crypt capi:cbc(aes $K16 0 $dev 0" "Error allocating crypto tfm"
refuse "0 8 crypt aes-cbc-bogus $K16 0 $dev 0" "Invalid IV mode"
refuse "0 8 crypt aes-cbc-plain-x $K16 0 $dev 0" "Invalid IV mode"
refuse "0 8 crypt aes-cbc-plain 000102030405060708090a0b0c0d0e 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes-cbc-plain 000102030405060708090a0b0c0d0eXY 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes-cbc-plain - 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes-cbc-plain 0 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes-cbc-essiv:sha1 $K16 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes-xts-plain64 $K16 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt cipher_null-ecb $K16 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes:2-cbc-plain $K16 0 $dev 0" "Error decoding and setting key"
refuse "0 8 crypt aes $K16 x $dev 0" "Invalid iv_offset sector"
refuse "0 8 crypt aes $K16 -1 $dev 0" "Invalid iv_offset sector"
refuse "0 8 crypt aes $K16 4 $dev 0 1 sector_size:4096" "Invalid iv_offset sector"
refuse "0 8 crypt aes $K16 0 240:240 0" "Device lookup failed"
refuse "0 8 crypt aes $K16 0 $dev x" "Invalid device sector"

# the table text (test_crypt.c's test_status and test_accepted)
table_is() { # table_is TABLE PRINTED
	if dmsetup create "$dm" --table "$1"; then
		is "$(dmsetup table --showkeys "$dm")" "$2" "dmsetup table: $1"
		dmsetup remove "$dm"
	else
		fail "the kernel takes: $1"
	fi
}
table_is "0 8 crypt aes-cbc-essiv:sha256 $K16 5 $dev 3" "0 8 crypt aes-cbc-essiv:sha256 $k16 5 $dev 3"
table_is "0 8 crypt aes ${K16}f 0 $dev 0" "0 8 crypt aes $k16 0 $dev 0"
table_is "0 16 crypt aes-plain $K16 8 $dev 0 7 no_write_workqueue iv_large_sectors No_Read_Workqueue sector_size:4096 submit_from_crypt_cpus same_cpu_crypt allow_discards" \
	"0 16 crypt aes-plain $k16 8 $dev 0 7 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue sector_size:4096 iv_large_sectors"
table_is "0 16 crypt capi:xts(aes)-plain64 $K64 0 $dev 0 2 iv_large_sectors sector_size:512" \
	"0 16 crypt capi:xts(aes)-plain64 $K64 0 $dev 0 1 iv_large_sectors"
table_is "0 16 crypt cipher_null-ecb - 0 $dev 0" "0 16 crypt cipher_null-ecb - 0 $dev 0"
table_is "0 8 crypt aes-ecb-bogus $K16 0 $dev 0" "0 8 crypt aes-ecb-bogus $k16 0 $dev 0"
table_is "0 8 crypt aes-cbc-plain:x $K16 0 $dev 0" "0 8 crypt aes-cbc-plain:x $k16 0 $dev 0"
table_is "0 8 crypt aes $K16 0 $dev 0 1 allow_discards extra" "0 8 crypt aes $k16 0 $dev 0 1 allow_discards"
table_is "0 8 crypt aes:1-cbc-plain $K16 0 $dev 0" "0 8 crypt aes:1-cbc-plain $k16 0 $dev 0"
table_is "0 8 crypt aes-xts-plain64 $(printf '0%.0s' $(seq 128)) 0 $dev 0" \
	"0 8 crypt aes-xts-plain64 $(printf '0%.0s' $(seq 128)) 0 $dev 0"
if dmsetup create "$dm" --table "0 32 crypt aes-xts-plain64 $K64 0 $dev 0 1 sector_size:4096"; then
	is "$(blockdev --getss "/dev/mapper/$dm")" 4096 "sector_size:4096 makes 4096-byte logical blocks"
	dmsetup remove "$dm"
else
	fail "the kernel takes sector_size:4096"
fi
done_testing
