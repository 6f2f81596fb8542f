#!/usr/bin/env bash
# The binary: applet dispatch by name and first word, the static build, make install.
. "$(dirname "$0")/lib.sh"
B=$(dirname "$PARTMAP")
top=$(cd "$(dirname "$0")/../.." && pwd)

"$PARTMAP" kpartx --version >/dev/null; ok $? "partmap kpartx (first word)"
"$B/kpartx" --version | grep -q '^kpartx (partmap)'; ok $? "build/kpartx link (argv[0])"
"$PARTMAP" nosuch >/dev/null 2>&1; is $? 1 "unknown applet: exit 1"
"$PARTMAP" --help | grep -q kpartx; ok $? "partmap --help lists the applets"

if [ -x "$B/static/partmap" ]; then
	file "$B/static/partmap" 2>/dev/null | grep -q 'statically linked' || ! ldd "$B/static/partmap" >/dev/null 2>&1
	ok $? "static binary is statically linked"
	truncate -s 8M "$TMP/s.img"; sfdisk -q "$TMP/s.img" <<<'start=2048, size=4096' >/dev/null
	"$B/static/partmap" kpartx -l "$TMP/s.img" | grep -q ': 0 4096 '; ok $? "static binary lists partitions"
else
	fail "static binary not built (make static)"
fi
# make links build/partmap statically unless told LINK=dynamic (the dynamic loader cost -l more than
# its work did: bench/list.sh); a dynamic build needs libc, zlib, libzstd, libfuse3 and libcrypto only
make -n -C "$top" BUILD="$TMP/b" "$TMP/b/partmap" 2>/dev/null | grep -E -- "-o $TMP/b/partmap " | grep -q -- ' -static '
ok $? "make links build/partmap statically by default"
make -n -C "$top" BUILD="$TMP/b" LINK=dynamic "$TMP/b/partmap" 2>/dev/null | grep -E -- "-o $TMP/b/partmap " | grep -qv -- ' -static '
ok $? "make LINK=dynamic links it against the shared libraries"
if ldd "$PARTMAP" >/dev/null 2>&1; then
	libs=$(ldd "$PARTMAP" | awk '{print $1}' |
		grep -Ev '^(linux-vdso|/lib64/ld-linux|libc\.so|libz\.so|libzstd\.so|libfuse3\.so|libcrypto\.so)')
	is "$libs" "" "dynamic build: no runtime dependency beyond libc, zlib, libzstd, libfuse3, libcrypto"
else
	file "$PARTMAP" 2>/dev/null | grep -q 'statically linked'; ok $? "$PARTMAP is statically linked: no runtime dependency"
fi

make -s -C "$top" BUILD="$B" install DESTDIR="$TMP/root" PREFIX=/usr >/dev/null 2>&1; ok $? "make install with DESTDIR and PREFIX"
[ -x "$TMP/root/usr/sbin/partmap" ] && [ "$(readlink "$TMP/root/usr/sbin/kpartx")" = partmap ] && \
	[ -f "$TMP/root/usr/share/man/man8/partmap.8" ]
ok $? "installed: binary, kpartx link, man page"
man -l "$TMP/root/usr/share/man/man8/partmap.8" 2>/dev/null | grep -q "EXIT STATUS"; ok $? "man page renders and documents exit status"
for a in kpartx dmsetup losetup image fuse; do
	[ -f "$TMP/root/usr/share/man/man8/partmap-$a.8" ]; ok $? "installed: man page partmap-$a.8"
done
is "$(readlink "$TMP/root/usr/share/man/man8/kpartx.8")" partmap-kpartx.8 "installed: kpartx.8, beside the sbin/kpartx link"
[ -f "$TMP/root/usr/share/bash-completion/completions/partmap" ]; ok $? "installed: bash completion"
for n in kpartx dmsetup losetup; do
	is "$(readlink "$TMP/root/usr/lib/partmap/bin/$n")" /usr/sbin/partmap "installed: the drop-in link lib/partmap/bin/$n"
done
# the links work where they are installed: run through the staging root's link
ln -s "$TMP/root/usr/sbin/partmap" "$TMP/dmsetup"
"$TMP/dmsetup" --version | grep -q '^dmsetup (partmap)'; ok $? "called as dmsetup, it is the dmsetup applet"
# make install SBIN_LINKS= (as make deb does): nothing in sbin but partmap, no kpartx.8
make -s -C "$top" BUILD="$B" install DESTDIR="$TMP/root2" PREFIX=/usr SBIN_LINKS= >/dev/null 2>&1
is "$(ls "$TMP/root2/usr/sbin")" partmap "SBIN_LINKS=: only partmap in sbin"
[ ! -e "$TMP/root2/usr/share/man/man8/kpartx.8" ]; ok $? "SBIN_LINKS=: no kpartx.8"
done_testing
