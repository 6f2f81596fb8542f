#!/usr/bin/env bash
# Unpacks Debian's current amd64 kernel (linux-image-amd64's dependency) into DIR without installing
# it: DIR/vmlinuz, DIR/lib/modules/<ver>/. Cached: does nothing when DIR/vmlinuz exists.
#   tests/vm/fetch-kernel.sh DIR
set -euo pipefail
dir=$1
[ -f "$dir/vmlinuz" ] && exit 0
mkdir -p "$dir/deb"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -q >/dev/null
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot find the kernel package" >&2; exit 1; }
(cd "$dir/deb" && apt-get download -q "$pkg" >/dev/null)
dpkg -x "$dir"/deb/*.deb "$dir/root"
ver=$(ls "$dir/root/lib/modules" | head -1)
cp "$dir/root/boot/vmlinuz-$ver" "$dir/vmlinuz"
mkdir -p "$dir/lib/modules"
rm -rf "$dir/lib/modules/$ver"
mv "$dir/root/lib/modules/$ver" "$dir/lib/modules/"
depmod -b "$dir" "$ver"
echo "$ver" >"$dir/version"
rm -rf "$dir/root" "$dir/deb"
