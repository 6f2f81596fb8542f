#!/usr/bin/env bash
# Builds the initramfs of the test VM: busybox, the static partmap, Debian's kpartx, dmsetup and the
# tools the tests use (with their shared libraries), the dm, loop, ext4 and crypto modules of the
# kernel unpacked by fetch-kernel.sh, the in-VM tests and their data.
#   tests/vm/mkinitramfs.sh KERNEL_DIR STATIC_PARTMAP OUT.cpio.gz
set -euo pipefail
kdir=$(readlink -f "$1"); partmap=$(readlink -f "$2"); out=$(readlink -m "$3")
top=$(cd "$(dirname "$0")/../.." && pwd)
ver=$(cat "$kdir/version")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
export PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$root"/{bin,bb,dev,proc,sys,tmp,run,etc,partmap,lib/modules/"$ver",usr/sbin}
ln -s usr/sbin "$root/sbin" # the udev rules call /sbin/dmsetup
cp "$(command -v busybox)" "$root/bb/busybox"
for a in $("$root/bb/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bb/$a"; done
ln -s /bb/busybox "$root/bin/sh"
cp "$partmap" "$root/partmap/partmap"
# mkraid writes BIOS RAID member images of all eleven formats (tests/unit/mkraid.c; `make unit` builds
# it; it links libc only): dmraid-formats.t
mk=$(dirname "$partmap")/../tests/mkraid
[ -x "$mk" ] && cp "$mk" "$root/partmap/mkraid"
ln -s partmap "$root/partmap/kpartx"; ln -s partmap "$root/partmap/dmsetup"; ln -s partmap "$root/partmap/losetup"

# real tools with their libraries, at their own paths
# (type -P: the program on PATH; `command -v` names a shell builtin such as printf by its bare name)
copy_bin() {
	local p b lib
	p=$(type -P "$1") || { echo "mkinitramfs: $1 not found" >&2; return 1; }
	b=$(readlink -f "$p")
	mkdir -p "$root$(dirname "$p")" "$root$(dirname "$b")"
	cp -n "$b" "$root$b" 2>/dev/null || true
	[ "$p" != "$b" ] && ln -sf "$b" "$root$p"
	for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -nL "$lib" "$root$lib" 2>/dev/null || true
	done
}
for t in bash kpartx dmsetup losetup sfdisk fdisk sgdisk partx blockdev mke2fs debugfs jq cmp od awk sed grep \
	sort tr cut head tail wc diff mktemp seq stat readlink truncate dd sleep timeout mount umount sync cat strace \
	ls mkdir rm cp ln env uname id printf find xargs basename dirname date chmod rmdir udevadm ipcs mdadm mdmon dmraid \
	sha256sum; do
	copy_bin "$t"
done
# Debian's systemd-udevd and the dm, kpartx and storage rules (tests/vm/udev.t starts it); rules and
# helpers where the rules look for them
copy_bin /lib/systemd/systemd-udevd
mkdir -p "$root/tests/udev-rules" "$root/lib/udev" "$root/usr/lib/udev" "$root/etc/udev"
for r in 50-udev-default.rules 55-dm.rules 56-dm-parts.rules 60-block.rules 60-persistent-storage.rules \
	60-persistent-storage-dm.rules 60-kpartx.rules 68-del-part-nodes.rules 95-dm-notify.rules; do
	cp "/lib/udev/rules.d/$r" "$root/tests/udev-rules/"
done
cp /lib/udev/kpartx_id "$root/lib/udev/"; cp /lib/udev/kpartx_id "$root/usr/lib/udev/"
[ -f /etc/udev/udev.conf ] && cp /etc/udev/udev.conf "$root/etc/udev/"
ln -sf mke2fs "$root/usr/sbin/mkfs.ext4" 2>/dev/null || ln -sf "$(readlink -f "$(command -v mke2fs)")" "$root/sbin/mkfs.ext4"
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
echo "root:x:0:0:root:/root:/bin/bash" >"$root/etc/passwd"
printf 'root:x:0:\ndisk:x:6:\n' >"$root/etc/group"

# modules (and what they need), loaded in dependency order by modprobe from modules.dep
mods="loop fuse dm-mod dm-zero dm-snapshot dm-crypt dm-mirror dm-delay dm-flakey ext4 crc32c_generic xts ecb essiv ctr
	virtio_pci virtio_scsi sd_mod md-mod raid0 raid1 raid10 raid456 dm-raid"
m=$kdir/lib/modules/$ver
for f in modules.dep modules.alias modules.symbols modules.builtin modules.order modules.builtin.modinfo modules.softdep modules.dep.bin modules.alias.bin modules.symbols.bin modules.builtin.bin; do
	[ -f "$m/$f" ] && cp "$m/$f" "$root/lib/modules/$ver/"
done
for mod in $mods; do
	line=$(grep -E "/${mod//-/[-_]}\.ko(\.[a-z]+)?:" "$m/modules.dep" | head -1) || { echo "mkinitramfs: module $mod not found" >&2; exit 1; }
	for f in ${line%%:*} ${line#*:}; do
		mkdir -p "$root/lib/modules/$ver/$(dirname "$f")"
		cp -n "$m/$f" "$root/lib/modules/$ver/$f"
	done
done
echo "$mods" >"$root/modules.list"

# the tests and their data
mkdir -p "$root/tests"
cp "$top"/tests/vm/*.t "$top/tests/vm/run-in-vm.sh" "$top/tests/cmd/lib.sh" "$top/tests/cmd/raid-cases.sh" "$top"/bench/*-vm.sh "$root/tests/"
cp "$top/tests/unit/crypt_vectors.h" "$root/tests/" # crypt.t: the vectors test_crypt.c checks
data=$(dirname "$out")/data
[ -d "$data" ] && cp -r "$data" "$root/tests/data"

cat >"$root/init" <<'INIT'
#!/bb/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/bb
/bb/mount -t proc proc /proc
/bb/mount -t sysfs sys /sys
/bb/mount -t devtmpfs dev /dev
/bb/mount -t tmpfs tmp /tmp
/bb/mount -t tmpfs run /run
/bb/ln -s /proc/self/fd /dev/fd
/bb/ln -s /bb/busybox /sbin/modprobe 2>/dev/null
for m in $(/bb/cat /modules.list); do /bb/modprobe "$m" || echo "init: cannot load $m"; done
export DM_DISABLE_UDEV=1 HOME=/root
/usr/bin/bash /tests/run-in-vm.sh >/dev/ttyS1 2>&1
/bb/sync
/bb/poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
