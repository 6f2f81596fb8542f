#!/usr/bin/env bash
# Boots the test VM once: Debian's kernel under QEMU (TCG) with the initramfs of mkinitramfs.sh, and
# six blank 160 MiB SCSI disks with serial numbers PMRAID0..PMRAID5 (sda..sdf in the VM: dmraid maps
# only disks that report a serial; mdadm writes IMSM and DDF metadata on them). The in-VM TAP goes to
# OUT/tap, the console to OUT/console; the disks live in OUT too. Exit status: qemu's.
#   tests/vm/boot.sh BUILD OUT [ONLY.t]
set -u
b=$1 out=$2 only=${3:-}
disks=()
for i in 0 1 2 3 4 5; do
	truncate -s 160M "$out/disk$i.raw"
	disks+=(-drive "file=$out/disk$i.raw,format=raw,if=none,id=d$i,cache=unsafe"
		-device "scsi-hd,drive=d$i,bus=scsi0.0,serial=PMRAID$i")
done
timeout 3000 qemu-system-x86_64 -nographic -no-reboot -m 2048 -smp 2 -cpu max \
	-kernel "$b/vm/kernel/vmlinuz" -initrd "$b/vm/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1${only:+ partmap.only=$only}" \
	-device virtio-scsi-pci,id=scsi0 "${disks[@]}" \
	-serial file:"$out/console" -serial file:"$out/tap" -monitor none -display none >/dev/null 2>&1
rc=$?
rm -f "$out"/disk?.raw
exit $rc
