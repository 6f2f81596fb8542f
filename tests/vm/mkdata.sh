#!/usr/bin/env bash
# Images for the kernel-oracle test in the VM, one per label type and case, made here with sfdisk,
# sgdisk, fdisk and parted (and a few written directly): DIR/<name>.img, "-4k" in the name for
# 4096-byte sectors.
#   tests/vm/mkdata.sh DIR
set -euo pipefail
d=$1
rm -rf "$d"; mkdir -p "$d"
export PATH=$PATH:/usr/sbin:/sbin
new() { rm -f "$d/$1.img"; truncate -s "$2" "$d/$1.img"; echo "$d/$1.img"; }
sf() { sfdisk -q --no-reread --no-tell-kernel "$1" >/dev/null; }

sf "$(new dos-logicals 16M)" <<'S'
label: dos
start=2048, size=4096, type=83
start=6144, type=f
start=8192, size=2048
start=12288, size=2048
start=16384, size=2048
start=20480, size=2048
start=24576, size=4096, type=82
S
sf "$(new dos-primaries-gap 16M)" <<'S'
label: dos
start=2048, size=4096
start=10240, size=4096, type=7
S
sfdisk -q --no-reread --no-tell-kernel --delete "$d/dos-primaries-gap.img" 1 >/dev/null
sf "$(new gpt-gaps 16M)" <<S
label: gpt
$d/gpt-gaps.img3 : start=2048, size=2048
$d/gpt-gaps.img7 : start=6144, size=4096
$d/gpt-gaps.img20 : start=12288, size=8192
S
img=$(new gpt-20 32M); args=(); for i in $(seq 1 20); do args+=(-n "$i:0:+1M"); done; sgdisk "${args[@]}" "$img" >/dev/null
for l in bsd sun mac dvh atari; do
	img=$(new "$l" 16M)
	case $l in
	dvh) parted -s "$img" mklabel dvh mkpart primary ext2 4MiB 6MiB mkpart primary ext2 6MiB 9MiB ;;
	mac|atari) parted -s "$img" mklabel $l mkpart primary 4MiB 6MiB mkpart primary 6MiB 9MiB ;;
	*) parted -s "$img" mklabel $l mkpart ext2 4MiB 6MiB mkpart ext2 6MiB 9MiB ;;
	esac 2>/dev/null
done
printf 'n\np\n1\n\n+4M\nn\ne\n2\n\n\nn\n\n+2M\nn\n\n+2M\nw\n' | fdisk -b 4096 "$(new dos-4k 16M)" >/dev/null 2>&1
printf 'g\nn\n2\n\n+4M\nn\n5\n\n+2M\nw\n' | fdisk -b 4096 "$(new gpt-4k 16M)" >/dev/null 2>&1

# DOS slots holding labels of their own: FreeBSD (0xa5) and Solaris (0xbf), written directly
img=$(new dos-nested 32M)
sf "$img" <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, size=16384, type=a5
start=34816, size=16384, type=bf
start=51200, type=5
start=53248, size=4096
S
perl -e '
	open(my $f, "+<", $ARGV[0]) or die;
	# BSD label in sector 1 of the slot at 10240: a, b inside it; c = the whole slot at offset 0, which
	# makes FreeBSD offsets relative to the slot
	my $l = pack("V", 0x82564557) . ("\0" x 134) . pack("v", 3) . pack("V V", 8192, 0);
	$l .= pack("V V V C C v", 2048, 16, 0, 7, 0, 0);
	$l .= pack("V V V C C v", 4096, 4096, 0, 1, 0, 0);
	$l .= pack("V V V C C v", 16384, 0, 0, 0, 0, 0);
	seek($f, (10240 + 1) * 512, 0); print $f $l;
	# Solaris VTOC in sector 1 of the slot at 34816: slices 0 and 4 (relative starts)
	my $v = ("\0" x 12) . pack("V V", 0x600DDEEE, 1) . ("\0" x 8) . pack("v v", 512, 8) . ("\0" x 40);
	my @s = ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0));
	my $slices = "";
	for my $i (0 .. 7) {
		my ($st, $sz) = $i == 0 ? (16, 4000) : $i == 4 ? (8192, 2048) : (0, 0);
		$slices .= pack("v v V V", 0, 0, $st, $sz);
	}
	seek($f, (34816 + 1) * 512, 0); print $f $v . $slices;
' "$img"
# DOS slots holding UnixWare (0x63, label in sector 29 of the slot) and Minix (0x81) subpartitions
img=$(new dos-unixware-minix 32M)
sf "$img" <<'S'
label: dos
start=2048, size=16384, type=63
start=20480, size=16384, type=81
S
perl -e '
	open(my $f, "+<", $ARGV[0]) or die;
	# UnixWare: d_magic at 4, vtoc magic at 156, slices from 216 (slice 0 skipped); absolute sectors
	my $l = ("\0" x 4) . pack("V", 0xCA5E600D) . ("\0" x 148) . pack("V", 0x600DDEEE) . ("\0" x 56);
	$l .= pack("v v V V", 0, 0, 0, 0);
	$l .= pack("v v V V", 1, 0, 2048 + 64, 4096);
	$l .= pack("v v V V", 2, 0, 2048 + 8192, 2048);
	seek($f, (2048 + 29) * 512, 0); print $f $l;
	# Minix: a DOS-style table in the first sector of the slot, first entry 0x81; absolute starts
	my $t = "";
	$t .= pack("C C3 C C3 V V", 0, 0,0,0, 0x81, 0,0,0, 20480 + 64, 4096);
	$t .= pack("C C3 C C3 V V", 0, 0,0,0, 0x81, 0,0,0, 20480 + 8192, 4096);
	seek($f, 20480 * 512 + 0x1be, 0); print $f $t;
	seek($f, 20480 * 512 + 510, 0); print $f "\x55\xaa";
' "$img"
# BSD labels on a whole device, slices: a (used), b (empty), c (sized, fstype unused), d (used).
# bsd-osf-gaps: at byte 64 of sector 0, the kernel's osf reader (numbered by slot: 1, 3, 4).
# nokernel/bsd-sector1: at sector 1, which no kernel reader reads (kpartx and partx do: 1, 2).
mkdir -p "$d/nokernel"
for where in 64 512; do
	if [ $where = 64 ]; then img=$(new bsd-osf-gaps 16M); else img=$d/nokernel/bsd-sector1.img; rm -f "$img"; truncate -s 16M "$img"; fi
	perl -e '
		open(my $f, "+<", $ARGV[0]) or die;
		my $l = pack("V", 0x82564557) . ("\0" x 128) . pack("V", 0x82564557) . ("\0" x 2) . pack("v", 4) . ("\0" x 8);
		$l .= pack("V V V C C v", 4096, 2048, 0, 7, 0, 0);
		$l .= pack("V V V C C v", 0, 0, 0, 0, 0, 0);
		$l .= pack("V V V C C v", 2048, 8192, 0, 0, 0, 0);
		$l .= pack("V V V C C v", 4096, 12288, 0, 7, 0, 0);
		seek($f, $ARGV[1], 0); print $f $l;
	' "$img" $where
done
# a truncated image: the last partition runs past the end, one starts past it
img=$(new dos-truncated 32M)
sf "$img" <<'S'
label: dos
start=2048, size=8192
start=10240, size=40960
start=55296, size=4096
S
truncate -s 16M "$img"
# served images (tests/vm/serve-dm.t): a DOS disk with logicals and known data, as qcow2 and VMDK
mkdir -p "$d/serve"
s=$d/serve/disk.raw
truncate -s 32M "$s"
sf "$s" <<'S'
label: dos
start=2048, size=8192, type=83
start=10240, type=5
start=12288, size=16384, type=83
S
for mib in 1 6 12; do dd if=/dev/urandom of="$s" bs=1M seek=$mib count=1 conv=notrunc status=none; done
qemu-img convert -q -f raw -O qcow2 -c "$s" "$d/serve/disk.qcow2"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$s" "$d/serve/disk.vmdk"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$s" "$d/serve/fixed.vhd"
ls "$d" | wc -l
