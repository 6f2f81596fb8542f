#!/usr/bin/env bash
# A newcomer's first hour, on a fresh Debian 12: a minbase root made by mmdebstrap with only git,
# make and gcc (cached as a tarball in PARTMAP_FRESH_CACHE, default /var/cache/partmap-test, built
# when absent), the project cloned into it (HEAD, through a git bundle), then as a fresh user would:
# make demo without root (one line naming the packages, exit 1), make demo as root (installs, builds,
# lists and maps the sample), make install DESTDIR (man pages, completion), make deb, the package
# installed with apt-get beside Debian's kpartx and dmsetup (its dependencies pulled), partmap kpartx
# -l from it, dpkg -r leaving nothing. Runs in a private mount namespace; the chroot's /dev is the
# host's (loop devices) with a tmpfs on /dev/mapper. Not in the default make check (a few minutes):
# PARTMAP_FRESH=1 tests/run-all.sh runs it (.ci/run does), or make fresh-check.
. "$(dirname "$0")/../cmd/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${PARTMAP_FRESH_CACHE:-/var/cache/partmap-test}
tarball=$cache/bookworm-minbase-git-make-gcc.tar.zst
mirror=${PARTMAP_FRESH_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != --inner ]; then
	[ "$(id -u)" -eq 0 ] || { skip "the fresh-machine test runs as root (chroot, mounts)"; done_testing; exit 0; }
	"$top/tests/install-deps.sh" fresh >/dev/null || { fail "cannot install mmdebstrap and zstd"; done_testing; exit 0; }
	t0=$(date +%s)
	mkdir -p "$cache"
	(
		flock 9
		if [ ! -s "$tarball" ]; then
			# the format follows the name's extension; a private mount namespace keeps the mounts
			# mmdebstrap makes in the root it builds away from the host's
			part=$cache/partial-$$.tar.zst
			unshare -m --propagation private mmdebstrap --quiet --variant=minbase --include=git,make,gcc \
				bookworm "$part" "$mirror" && mv "$part" "$tarball"
			rm -f "$part"
		fi
	) 9>"$cache/.lock"
	[ -s "$tarball" ]; ok $? "a minimal Debian 12 root with git, make, gcc ($tarball, $(($(date +%s) - t0)) s)"
	[ -s "$tarball" ] || { done_testing; exit 0; }
	root=$TMP/root
	mkdir "$root"
	tar -C "$root" --zstd -xf "$tarball"
	ok $? "root unpacked"
	# the project as a clone would give it: HEAD of the tree under test
	[ -z "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
		diag "the work tree has uncommitted changes: this test clones HEAD, without them"
	git -C "$top" bundle create "$root/partmap.bundle" HEAD 2>/dev/null
	ok $? "git bundle of HEAD"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	# downloaded packages kept between runs, like the root itself
	mkdir -p "$cache/archives/partial"
	export PARTMAP_FRESH_START=$_tap_n
	# one run at a time per cache (they share apt's archive directory)
	flock "$cache/.run.lock" unshare -m --propagation private bash "$0" --inner "$root"
	_tap_n=$(cat "$root/.tap_n" 2>/dev/null || echo $((_tap_n + 1)))
	[ -s "$root/.tap_n" ] || fail "the chroot part ended early"
	grep -q 1 "$root/.tap_fail" 2>/dev/null && _tap_fail=1
	# nothing left: no loop device backed by a file in the root, no mount under it (the namespace is gone)
	left=$(losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v r="$root/" 'index($2, r) == 1')
	is "$left" "" "no loop device left on the root's files"
	grep -q " $root/" /proc/self/mountinfo
	ok $((!$?)) "no mount left under the root"
	diag "fresh-machine test: $(($(date +%s) - t0)) s in all"
	done_testing
	exit 0
fi

# ---- inside the private mount namespace ----
root=$2
_tap_n=$PARTMAP_FRESH_START
trap 'echo "$_tap_n" >"$root/.tap_n"; echo "$_tap_fail" >"$root/.tap_fail"; _run_cleanups' EXIT
# cleanups run last first: this one (every mount under the root) after the others
defer "grep -o ' $root/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l"
mount --bind /dev "$root/dev" && defer "umount -l '$root/dev'" &&
	mount -t tmpfs -o mode=755 fresh-mapper "$root/dev/mapper" 2>/dev/null ||
	{ mkdir -p "$root/dev/mapper" && mount -t tmpfs -o mode=755 fresh-mapper "$root/dev/mapper"; }
defer "umount -l '$root/dev/mapper'"
mount -t proc proc "$root/proc" && defer "umount -l '$root/proc'"
mount --bind /sys "$root/sys" && defer "umount -l '$root/sys'"
mount -t tmpfs tmpfs "$root/run" && defer "umount -l '$root/run'"
mount --bind "$cache/archives" "$root/var/cache/apt/archives" && defer "umount -l '$root/var/cache/apt/archives'"
m=0
for d in dev dev/mapper proc sys run var/cache/apt/archives; do mountpoint -q "$root/$d" || m=1; done
ok $m "chroot mounts: /dev (tmpfs /dev/mapper), /proc, /sys, /run, apt's archives"
# whatever happens: the demo's mappings and loop devices on the root's files go
defer "losetup -l -n -O NAME,BACK-FILE | awk -v r='$root/' 'index(\$2, r) == 1 {print \$1}' | xargs -r -n1 losetup -d"
defer "chroot '$root' /root/partmap/build/partmap kpartx -d /root/partmap/build/demo/disk.img"

in_root() { # in_root USER COMMAND: a login shell's environment, nothing of the host's
	local user=$1
	shift
	chroot "$root" /usr/sbin/runuser -u "$user" -- env -i HOME="$(chroot "$root" getent passwd "$user" | cut -d: -f6)" \
		USER="$user" LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c "$*"
}
step() { # step NAME: seconds since the last step, for the log
	local now
	now=$(date +%s)
	diag "$1: $((now - ${_step_t:-now})) s"
	_step_t=$now
}
_step_t=$(date +%s)

chroot "$root" useradd -m newcomer; ok $? "an ordinary user"
for c in git make gcc; do in_root root "command -v $c" >/dev/null; ok $? "$c present"; done
in_root root "! command -v qemu-img && ! test -e /usr/include/zstd.h" >/dev/null
ok $? "fresh: no qemu-img, no zstd.h"

# without root: one line naming the packages, exit non-zero, no compiler run
in_root newcomer "git clone -q /partmap.bundle ~/partmap" 2>/dev/null; ok $? "git clone (newcomer)"
out=$(in_root newcomer "cd ~/partmap && make" 2>&1); rc=$?
ok $((rc == 0)) "plain make with packages missing: exit non-zero ($rc)"
line=$(grep -E 'missing packages \(build\): .*libzstd-dev' <<<"$out")
is "$(grep -c . <<<"$line")" 1 "one line names the build packages, not a compiler error"
! grep -qE 'zstd\.h|No such file' <<<"$out"; ok $? "no compiler error"
out=$(in_root newcomer "cd ~/partmap && make demo" 2>&1); rc=$?
ok $((rc == 0)) "make demo without root and with packages missing: exit non-zero ($rc)"
line=$(grep -E 'missing packages' <<<"$out")
is "$(grep -c . <<<"$line")" 1 "one line names the missing packages"
for p in libzstd-dev libfuse3-dev libssl-dev zlib1g-dev qemu-utils; do
	grep -qw -- "$p" <<<"$line"; ok $? "it names $p"
done
! grep -qE 'zstd\.h|No such file|\bcc\b.*-c ' <<<"$out"; ok $? "nothing compiled"
if [ -n "$line" ]; then diag "$line"; else diag "$out"; fi
step "make demo, no root"

# as root: installs, builds, runs the demo (the mapping part included: loop devices exist here)
in_root root "git clone -q /partmap.bundle /root/partmap" 2>/dev/null; ok $? "git clone (root)"
out=$(in_root root "cd /root/partmap && make demo" 2>&1); rc=$?
is "$rc" 0 "make demo as root on the fresh root: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -30 <<<"$out")"
grep -q '^installing (build demo): ' <<<"$out"; ok $? "it installed the build and demo packages with apt-get"
grep -Eq '^loop[0-9]+p5 : 0 [0-9]+ /dev/loop[0-9]+ [0-9]+$' <<<"$out"; ok $? "the demo listed the sample's partitions"
grep -q 'qcow2' <<<"$out"; ok $? "the demo listed a qcow2"
grep -q "hello from the ext4 logical partition (p5)" <<<"$out"; ok $? "the demo mapped p5, mounted it and read the file"
grep -q '^del devmap : ' <<<"$out"; ok $? "the demo unmapped"
step "make demo, root"

# make install into a staging root: binary, drop-in links, man pages, completion
in_root root "cd /root/partmap && make -s install DESTDIR=/tmp/inst PREFIX=/usr" >/dev/null 2>&1
ok $? "make install DESTDIR=/tmp/inst PREFIX=/usr"
for f in usr/sbin/partmap usr/share/man/man8/partmap.8 usr/share/bash-completion/completions/partmap \
	usr/lib/partmap/bin/kpartx usr/lib/partmap/bin/dmsetup usr/lib/partmap/bin/losetup; do
	[ -e "$root/tmp/inst/$f" ] || [ -L "$root/tmp/inst/$f" ]; ok $? "installed: /$f"
done
for a in kpartx dmsetup losetup image fuse; do
	[ -s "$root/tmp/inst/usr/share/man/man8/partmap-$a.8" ]; ok $? "installed: man page partmap-$a.8"
done
step "make install"

# make deb: installs dpkg-dev itself, builds the package
out=$(in_root root "cd /root/partmap && make deb" 2>&1); rc=$?
is "$rc" 0 "make deb: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
grep -q '^installing (build deb): .*dpkg-dev' <<<"$out"; ok $? "make deb installed dpkg-dev itself"
deb=$(cd "$root/root/partmap" && ls build/partmap_*.deb 2>/dev/null | head -1)
[ -n "$deb" ]; ok $? "the package: $deb"
step "make deb"

# beside Debian's kpartx and dmsetup (and mount's losetup); apt-get pulls the package's dependencies
in_root root "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kpartx dmsetup" >/dev/null 2>&1
ok $? "Debian's kpartx and dmsetup installed"
in_root root "! dpkg -s fuse3" >/dev/null 2>&1; ok $? "fuse3 (a dependency of the package) not yet installed"
out=$(in_root root "cd /root/partmap && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ./$deb" 2>&1)
ok $? "apt-get install ./$deb beside them"
[ $? -eq 0 ] || diag "$(tail -10 <<<"$out")"
in_root root "dpkg -s fuse3 | grep -q '^Status: install ok installed'"; ok $? "its dependency fuse3 pulled"
in_root root "dpkg -S /sbin/kpartx /sbin/dmsetup /sbin/losetup" >"$TMP/owners" 2>&1
is "$(cut -d: -f1 "$TMP/owners" | sort | tr '\n' ' ')" "dmsetup kpartx mount " "kpartx, dmsetup, losetup still Debian's"
in_root root "! cmp -s \$(command -v kpartx) /usr/sbin/partmap && ! kpartx 2>&1 | grep -q partmap"
ok $? "kpartx on PATH is still Debian's"
dpkg_l=$(in_root root "dpkg -L partmap")
for f in /usr/sbin/partmap /usr/lib/partmap/bin/kpartx /usr/share/man/man8/partmap-kpartx.8.gz \
	/usr/share/bash-completion/completions/partmap; do
	grep -qx "$f" <<<"$dpkg_l"; ok $? "dpkg -L partmap: $f"
done
out=$(in_root root "partmap kpartx -l /root/partmap/build/demo/disk.img")
grep -Eq 'p5 : 0 [0-9]+ ' <<<"$out"; ok $? "partmap kpartx -l from the package"
[ -n "$out" ] || diag "got nothing"
out=$(in_root root "PATH=/usr/lib/partmap/bin:\$PATH; kpartx --version")
is "$out" "kpartx (partmap) $(sed -n 's/^VERSION := //p' "$top/Makefile")" "kpartx through /usr/lib/partmap/bin is partmap's"
step "the package installed"

in_root root "dpkg -r partmap" >/dev/null 2>&1; ok $? "dpkg -r partmap"
left=$(while read -r f; do
	[ "$f" = /. ] && continue
	if [ -d "$root$f" ] && [ ! -L "$root$f" ]; then
		# a directory stays only when another package owns it too
		in_root root "dpkg -S '$f'" >/dev/null 2>&1 || echo "$f"
	elif [ -e "$root$f" ] || [ -L "$root$f" ]; then
		echo "$f"
	fi
done <<<"$dpkg_l")
is "$left" "" "dpkg -r removed every file and directory the package installed"
in_root root "dpkg -s partmap" >/dev/null 2>&1; ok $((!$?)) "the package is gone (no conffiles left)"
[ -x "$root/sbin/kpartx" ] && [ -x "$root/sbin/dmsetup" ]; ok $? "Debian's kpartx and dmsetup untouched"
step "dpkg -r"
