#!/usr/bin/env bash
# make deb: build/partmap_VERSION_ARCH.deb from `make install` into a staging root, with dpkg-deb.
#   pkg/mkdeb.sh BUILD_DIR VERSION
# Why dpkg-deb and not debhelper: the package is exactly what `make install PREFIX=/usr` installs (one
# install recipe, the one the tests check), so there is no debian/ directory to keep in step with the
# Makefile and nothing to install beyond dpkg-dev (for dpkg-shlibdeps, which gives the versioned
# library dependencies). Why links in /usr/lib/partmap/bin and not in /usr/sbin or alternatives:
# Debian's kpartx, dmsetup and mount packages own /sbin/kpartx, /sbin/dmsetup and /sbin/losetup
# (with merged /usr, the same files as /usr/sbin/...), update-alternatives can only switch names no
# package ships as a file, and a dpkg-divert would change what every script, udev rule and initramfs
# hook runs. The drop-in names are for users who ask for them: PATH=/usr/lib/partmap/bin:$PATH.
set -euo pipefail
build=${1:-build}
version=${2:?version}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
case $build in /*) ;; *) build=$top/$build ;; esac
arch=$(dpkg --print-architecture)
stage=$build/deb/root
out=$build/partmap_${version}_${arch}.deb
rm -rf "$build/deb"
mkdir -p "$stage/DEBIAN"
make -s --no-print-directory BUILD="$build" install DESTDIR="$stage" PREFIX=/usr SBIN_LINKS= >/dev/null
# Debian's layout: compressed man pages, a copyright file
gzip -9n "$stage"/usr/share/man/man8/*.8
install -D -m 0644 /dev/stdin "$stage/usr/share/doc/partmap/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: partmap

Files: *
License: GPL-2.0-or-later
 On Debian systems, the full text of the GNU General Public License version 2 can be found in
 /usr/share/common-licenses/GPL-2.
TXT

# runtime dependencies: the shared libraries the binary links (dpkg-shlibdeps reads their shlibs and
# symbols files; it wants a debian/control, so it runs in a scratch directory), and fuse3 for
# fusermount3 (`partmap fuse` as an ordinary user)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian"
printf 'Source: partmap\n\nPackage: partmap\nArchitecture: any\n' >"$scratch/debian/control"
# (none when it is linked statically, the default: then fuse3 alone)
if LC_ALL=C readelf -d "$stage/usr/sbin/partmap" 2>/dev/null | grep -q NEEDED; then
	shlibs=$(cd "$scratch" && dpkg-shlibdeps -O "$stage/usr/sbin/partmap" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
	[ -n "$shlibs" ] || { echo "mkdeb.sh: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }
	shlibs="$shlibs, "
else
	shlibs=""
fi
maint=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo 'partmap <partmap@localhost>')}
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<TXT
Package: partmap
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $size
Depends: ${shlibs}fuse3
Suggests: qemu-utils
Section: admin
Priority: optional
Description: partition mappings for disk images and block devices (kpartx, losetup, dmsetup)
 partmap is one binary with the applets kpartx, dmsetup, losetup, image and fuse. It lists and
 maps the partitions inside raw disk images, VM disk images (qcow2, VMDK, VHD, VHDX, VDI) and block
 devices, through the device mapper, kernel partitions on loop devices or one loop device per
 partition, and shows them as files through FUSE without root.
 .
 Run as partmap APPLET. The drop-in names kpartx, dmsetup and losetup are links in
 /usr/lib/partmap/bin: put that directory first on PATH to use them instead of Debian's tools,
 which this package leaves in place.
TXT
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
