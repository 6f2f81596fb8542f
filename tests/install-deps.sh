#!/usr/bin/env bash
# The one list of the packages partmap needs, by purpose, and what installs them.
#   tests/install-deps.sh [--print|--check] [GROUP...]   groups: build demo test deb fresh hot (default: build test)
# Installs what is missing of the groups named, as root, with apt-get. Not root (or no apt-get, or
# --check) and something missing: one line naming the packages, exit 1. --print lists the packages.
#   make demo -> build demo; make deb -> build deb; make check -> build test;
#   tests/fresh/fresh.t (a fresh Debian 12 root) -> fresh; make hot-order -> build hot
set -euo pipefail

# group    package             present when (cmd:NAME a command, file:GLOB a file, pkg: the package)
table='
build      gcc                 cmd:cc
build      make                cmd:make
build      libc6-dev           file:/usr/lib/*-linux-gnu/libc.a
build      zlib1g-dev          file:/usr/include/zlib.h file:/usr/lib/*-linux-gnu/libz.a
build      libzstd-dev         file:/usr/include/zstd.h file:/usr/lib/*-linux-gnu/libzstd.a
build      libfuse3-dev        file:/usr/include/fuse3/fuse.h file:/usr/lib/*-linux-gnu/libfuse3.a
build      libssl-dev          file:/usr/include/openssl/evp.h file:/usr/lib/*-linux-gnu/libcrypto.a
demo       gzip                cmd:gunzip
demo       qemu-utils          cmd:qemu-img
demo       mount               cmd:mount
demo       util-linux          cmd:mountpoint
deb        dpkg-dev            cmd:dpkg-shlibdeps
fresh      mmdebstrap          cmd:mmdebstrap
fresh      zstd                cmd:zstd
hot        valgrind            cmd:valgrind
hot        linux-perf          cmd:perf
hot        gdisk               cmd:sgdisk
hot        fdisk               cmd:sfdisk
test       clang               cmd:clang
test       libclang-rt-dev     file:/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a
test       libcmocka-dev       file:/usr/include/cmocka.h
test       perl                cmd:prove cmd:perl
test       jq                  cmd:jq
test       python3             cmd:python3
test       strace              cmd:strace
test       hyperfine           cmd:hyperfine
test       time                file:/usr/bin/time
test       kpartx              cmd:kpartx
test       dmsetup             cmd:dmsetup
test       dmraid              cmd:dmraid
test       mdadm               cmd:mdadm
test       fdisk               cmd:sfdisk cmd:fdisk
test       gdisk               cmd:sgdisk
test       parted              cmd:parted
test       e2fsprogs           cmd:mkfs.ext4 cmd:debugfs cmd:e2fsck cmd:dumpe2fs
test       dosfstools          cmd:mkfs.vfat
test       mtools              cmd:mcopy
test       mount               cmd:losetup
test       util-linux          cmd:partx cmd:unshare cmd:setpriv cmd:fstrim cmd:blkid
test       bsdutils            cmd:script
test       qemu-system-x86     cmd:qemu-system-x86_64
test       qemu-utils          cmd:qemu-img cmd:qemu-io cmd:qemu-nbd
test       qemu-system-common  cmd:qemu-storage-daemon
test       fuse3               cmd:fusermount3
test       fio                 cmd:fio
test       udev                cmd:udevadm
test       cpio                cmd:cpio
test       kmod                cmd:depmod
test       bc                  cmd:bc
test       file                cmd:file
test       man-db              cmd:man
test       groff-base          cmd:groff
test       bash-completion     file:/usr/share/bash-completion/bash_completion
test       busybox-static      pkg:busybox-static
'

print=false install=true
case ${1:-} in
--print) print=true; shift ;;
--check) install=false; shift ;; # never install: say what is missing (plain make does this)
esac
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build test)
for g in "${groups[@]}"; do
	case $g in build | demo | test | deb | fresh | hot) ;; *) echo "install-deps.sh: unknown group '$g' (build demo test deb fresh hot)" >&2; exit 2 ;; esac
done

present() { # present PROBE
	local kind=${1%%:*} what=${1#*:} f
	case $kind in
	cmd) command -v "$what" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$what" >/dev/null 2>&1 ;;
	file)
		for f in $what; do [ -e "$f" ] && return 0; done
		return 1 ;;
	pkg) dpkg-query -W -f '${Status}' "$what" 2>/dev/null | grep -q ' installed$' ;;
	esac
}

pkgs=()
while read -r group pkg probes; do
	[ -n "$group" ] || continue
	[[ " ${groups[*]} " == *" $group "* ]] || continue
	if $print; then
		pkgs+=("$pkg")
		continue
	fi
	for probe in $probes; do
		present "$probe" || { pkgs+=("$pkg"); break; }
	done
done <<<"$table"
[ ${#pkgs[@]} -gt 0 ] || exit 0
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
if $print; then
	echo "${pkgs[*]}"
	exit 0
fi
if ! $install || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "partmap: missing packages (${groups[*]}): ${pkgs[*]}; as root: apt-get install ${pkgs[*]} (make demo, make deb and make check run it themselves as root)" >&2
	exit 1
fi
echo "installing (${groups[*]}): ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
