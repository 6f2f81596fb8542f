#!/usr/bin/env bash
# make deb: the package installs beside Debian's kpartx, dmsetup and mount (losetup) without a file
# conflict, its dependencies are what the binary links plus fuse3, it runs, and dpkg -r removes every
# file it installed. Installs on this machine (root), and only when no partmap package is there.
. "$(dirname "$0")/lib.sh"
B=$(dirname "$PARTMAP")
top=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^VERSION := //p' "$top/Makefile")
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ "$(id -u)" -eq 0 ] || { skip "installing a package needs root"; done_testing; exit 0; }
if dpkg-query -W -f '${Status}' partmap 2>/dev/null | grep -q ' installed$'; then
	skip "a partmap package is installed here already: not touching it"
	done_testing
	exit 0
fi
for p in kpartx dmsetup mount; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q ' installed$'; ok $? "Debian's $p is installed"
done

make -s --no-print-directory -C "$top" BUILD="$B" deb >"$TMP/out" 2>"$TMP/err"; rc=$?
is "$rc" 0 "make deb"
[ -s "$TMP/err" ] && diag "$(cat "$TMP/err")"
deb=$(tail -1 "$TMP/out")
is "$deb" "$B/partmap_${version}_$(dpkg --print-architecture).deb" "make deb names the package file"
[ -f "$deb" ] || { done_testing; exit 0; }

ctl=$(dpkg-deb -f "$deb")
is "$(dpkg-deb -f "$deb" Package Version | tr '\n' ' ')" "Package: partmap Version: $version " "control: package and version"
depends=$(dpkg-deb -f "$deb" Depends)
# a static binary (the default) needs no shared library: fuse3 alone; a dynamic one its libraries too
if LC_ALL=C readelf -d "$B/partmap" | grep -q NEEDED; then
	for lib in libc6 libfuse3-3 libzstd1 zlib1g fuse3; do
		grep -qE "(^|, )$lib( |,|$)" <<<"$depends"; ok $? "depends on $lib"
	done
else
	is "$depends" "fuse3" "a static binary: depends on fuse3 alone"
fi
[ -n "$ctl" ] || diag "no control"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/sbin/partmap /usr/lib/partmap/bin/kpartx /usr/lib/partmap/bin/dmsetup /usr/lib/partmap/bin/losetup \
	/usr/share/man/man8/partmap.8.gz /usr/share/man/man8/partmap-kpartx.8.gz /usr/share/man/man8/partmap-fuse.8.gz \
	/usr/share/bash-completion/completions/partmap /usr/share/doc/partmap/copyright; do
	grep -qx -- "$f" <<<"$contents"; ok $? "in the package: $f"
done
# nothing any of Debian's packages installed here owns (a file conflict); with merged /usr,
# /sbin/kpartx is /usr/sbin/kpartx, so each file is asked for under both spellings (one dpkg -S)
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|')
mapfile -t paths < <(printf '%s\n' $files; printf '%s\n' $files | sed -n 's|^/usr/|/|p')
is "$(dpkg -S "${paths[@]}" 2>/dev/null)" "" "no file of the package belongs to an installed package"
is "$(grep -v '^/usr/' <<<"$contents" | grep -vx '/')" "" "every file under /usr"

dirs="/usr/sbin /usr/lib /usr/share/man/man8 /usr/share/bash-completion/completions /usr/share/doc /etc"
before=$(find $dirs -maxdepth 1 2>/dev/null | sort)
dpkg -i "$deb" >"$TMP/out" 2>&1; rc=$?
is "$rc" 0 "dpkg -i beside Debian's kpartx, dmsetup and mount"
[ "$rc" -eq 0 ] || diag "$(cat "$TMP/out")"
defer "dpkg -r partmap"
listed=$(dpkg -L partmap)
for f in /usr/sbin/partmap /usr/lib/partmap/bin/kpartx /usr/share/man/man8/partmap-dmsetup.8.gz; do
	grep -qx "$f" <<<"$listed"; ok $? "dpkg -L partmap: $f"
done
is "$(dpkg -S /sbin/kpartx /sbin/dmsetup /sbin/losetup | cut -d: -f1 | tr '\n' ' ')" "kpartx dmsetup mount " \
	"kpartx, dmsetup, losetup still belong to Debian's packages"
truncate -s 8M "$TMP/d.img"
sfdisk -q "$TMP/d.img" <<<$'start=2048, size=4096\nstart=8192, size=4096' >/dev/null
want=$("$PARTMAP" kpartx -l "$TMP/d.img")
is "$(/usr/sbin/partmap kpartx -l "$TMP/d.img")" "$want" "the installed partmap kpartx -l"
is "$(PATH=/usr/lib/partmap/bin:$PATH kpartx -l "$TMP/d.img")" "$want" "kpartx -l through /usr/lib/partmap/bin first on PATH"
is "$(PATH=/usr/lib/partmap/bin:$PATH losetup --version)" "losetup (partmap) $version" "losetup through the drop-in directory"
[ "$(command -v kpartx)" != /usr/lib/partmap/bin/kpartx ] && ! kpartx 2>&1 | grep -q partmap
ok $? "without it on PATH, kpartx is Debian's"
is "$(man -w partmap-kpartx 2>/dev/null)" /usr/share/man/man8/partmap-kpartx.8.gz "man partmap-kpartx finds the installed page"
man --warnings partmap-losetup 2>"$TMP/warn" | grep -q 'EXIT STATUS'; ok $? "man partmap-losetup renders"
is "$(cat "$TMP/warn")" "" "without warnings"

dpkg -r partmap >/dev/null 2>&1; ok $? "dpkg -r partmap"
left=$(while read -r f; do
	[ "$f" != /. ] && { [ -e "$f" ] || [ -L "$f" ]; } && echo "$f"
done <<<"$listed")
# what is still there may only be a directory another package owns too
mapfile -t left <<<"$left"
owned=$(dpkg -S "${left[@]}" 2>/dev/null | sed 's/.*: //' | sort -u)
stray=$(for f in "${left[@]}"; do [ -d "$f" ] && [ ! -L "$f" ] && grep -qx -- "$f" <<<"$owned" || echo "$f"; done)
is "$stray" "" "dpkg -r removed every file and directory it installed"
dpkg-query -W -f '${Status}' partmap 2>/dev/null | grep -q 'installed\|config'; ok $((!$?)) "no trace in dpkg's database (no conffiles)"
after=$(find $dirs -maxdepth 1 2>/dev/null | sort)
is "$(comm -3 <(echo "$before") <(echo "$after"))" "" "the directories it installs into as they were before dpkg -i"
done_testing
