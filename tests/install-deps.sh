#!/usr/bin/env bash
# Installs what the build and the tests need, when it is missing (as root, with apt-get).
set -euo pipefail
# command -> Debian package
declare -A need=(
	[cc]=gcc [make]=make [clang]=clang [prove]=perl [jq]=jq [strace]=strace [hyperfine]=hyperfine
	[kpartx]=kpartx [dmsetup]=dmsetup [sfdisk]=fdisk [fdisk]=fdisk [sgdisk]=gdisk [parted]=parted
	[mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs [mkfs.vfat]=dosfstools [mcopy]=mtools [losetup]=mount
	[partx]=util-linux [unshare]=util-linux [setpriv]=util-linux [fstrim]=util-linux [e2fsck]=e2fsprogs
	[qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [qemu-io]=qemu-utils [fusermount3]=fuse3 [fio]=fio
	[qemu-storage-daemon]=qemu-system-common [udevadm]=udev [cpio]=cpio [depmod]=kmod [perl]=perl [bc]=bc
)
pkgs=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${need[$cmd]}")
done
# libraries and files rather than commands
[ -f /usr/include/cmocka.h ] || pkgs+=(libcmocka-dev)
[ -f /usr/include/zlib.h ] && [ -f /usr/lib/x86_64-linux-gnu/libz.a ] || pkgs+=(zlib1g-dev)
[ -f /usr/include/fuse3/fuse.h ] && [ -f /usr/lib/x86_64-linux-gnu/libfuse3.a ] || pkgs+=(libfuse3-dev)
[ -f /usr/include/zstd.h ] && [ -f /usr/lib/x86_64-linux-gnu/libzstd.a ] || pkgs+=(libzstd-dev)
[ -f /usr/include/openssl/evp.h ] && [ -f /usr/lib/x86_64-linux-gnu/libcrypto.a ] || pkgs+=(libssl-dev)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || pkgs+=(libclang-rt-dev)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || pkgs+=(libc6-dev)
dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
if [ ${#pkgs[@]} -eq 0 ]; then
	exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
	echo "missing test dependencies: ${pkgs[*]} (run make check as root to install them)" >&2
	exit 1
fi
echo "installing: ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
