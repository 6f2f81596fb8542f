#!/usr/bin/env bash
# tests/vm/mkinitramfs.sh: the VM's initramfs holds each tool it is asked for at its path on this
# machine, and the script leaves nothing behind in the temporary directory it works in.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${PARTMAP_BUILD:-$top/build}
if [ ! -f "$B/vm/kernel/version" ] || [ ! -x "$B/static/partmap" ]; then
	fail "VM kernel or static binary missing (make vm)"; done_testing; exit
fi
mkdir "$TMP/tmpdir"
TMPDIR=$TMP/tmpdir "$top/tests/vm/mkinitramfs.sh" "$B/vm/kernel" "$B/static/partmap" "$TMP/i.cpio.gz" \
	>"$TMP/out" 2>&1
ok $? "mkinitramfs.sh builds an initramfs"
sed 's/^/# /' "$TMP/out"
is "$(ls -A "$TMP/tmpdir")" "" "... and leaves nothing in TMPDIR"
zcat "$TMP/i.cpio.gz" | cpio -it --quiet 2>/dev/null | sed 's,^\./,,' >"$TMP/list"
# printf is a bash builtin as well as /usr/bin/printf: the file is what the list asks for
for t in printf dmsetup kpartx sfdisk; do
	p=$(type -P "$t")
	grep -qx "${p#/}" "$TMP/list"; ok $? "the initramfs has $p"
done
done_testing
