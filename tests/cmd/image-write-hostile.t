#!/usr/bin/env bash
# Writing damaged or crafted images: a table entry, a refcount or a table offset that makes a write
# land on the image's own metadata (qcow2: the refcount table, an L2 table, the L1 table; VHD, VDI,
# VMDK, VHDX: the block table, the header, a grain directory, the metadata region) must fail with an
# I/O error or be refused at mount (read-only, saying why) and leave the structures as they were, as
# qemu refuses such qcow2 writes ("Preventing invalid write on metadata") and such VHDX images; a
# discard must not free or punch metadata either. Sound images with a
# persistent bitmap and with a refcount table that has to grow are still written, judged by
# qemu-img check and qemu-io. Writes go through `partmap fuse` (no loop device, no device mapper).
. "$(dirname "$0")/lib.sh"
private_ns
for c in qemu-img qemu-io python3; do
	command -v $c >/dev/null || { fail "$c missing (tests/install-deps.sh installs it)"; done_testing; exit; }
done
[ -c /dev/fuse ] || { fail "/dev/fuse missing"; done_testing; exit; }
cd "$TMP" || exit 1
mkdir -p m
defer '"$PARTMAP" fuse -u "$TMP/m" >/dev/null 2>&1'

# patch IMG WHAT: change one field of a qcow2 made by fresh() (clusters: 0 header, 1 refcount table,
# 2 refcount block, 3 L1 table, 4 L2 table, 5 the data of virtual cluster 0)
patch() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
path, what = sys.argv[1], sys.argv[2]
f = open(path, 'r+b')
h = f.read(104)
cs = 1 << struct.unpack('>I', h[20:24])[0]
l1 = struct.unpack('>Q', h[40:48])[0]
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
f.seek(l1); l1e = struct.unpack('>Q', f.read(8))[0]
l2 = l1e & 0x00fffffffffffe00
assert (cs, rt, rb, l1, l2) == (65536, cs, 2 * cs, 3 * cs, 4 * cs), (cs, rt, rb, l1, l2)
COPIED = 1 << 63
if what == 'entry-reftable':      # virtual cluster 0 "is" the refcount table
    f.seek(l2); f.write(struct.pack('>Q', COPIED | rt))
elif what == 'entry-l2':          # virtual cluster 0 "is" its own L2 table
    f.seek(l2); f.write(struct.pack('>Q', COPIED | l2))
elif what == 'refcount-l1':       # the L1 table's cluster counted free
    f.seek(rb + 2 * 3); f.write(struct.pack('>H', 0))
elif what == 'l2-at-reftable':    # the L1 entry puts the L2 table on the refcount table
    f.seek(l1); f.write(struct.pack('>Q', COPIED | rt))
elif what == 'entry-reserved':    # virtual cluster 0's entry with a reserved bit set
    f.seek(l2); f.write(struct.pack('>Q', COPIED | 5 * cs | 2))
elif what == 'entry-past':        # virtual cluster 1 at a cluster past the file's end
    f.seek(l2 + 8); f.write(struct.pack('>Q', COPIED | 64 * cs))
elif what == 'entry-dup':         # virtual clusters 0 and 1 at one cluster
    f.seek(l2 + 8); f.write(struct.pack('>Q', COPIED | 5 * cs))
elif what == 'refcount-data':     # the data cluster of virtual cluster 0 counted free
    f.seek(rb + 2 * 5); f.write(struct.pack('>H', 0))
else:
    sys.exit('unknown patch ' + what)
EOF
}
fresh() { # IMG: 16 MiB, 64 KiB clusters, virtual cluster 0 written
	rm -f "$1"
	qemu-img create -q -f qcow2 -o cluster_size=65536 "$1" 16M && qemu-io -c "write -P 0x11 0 64k" "$1" >/dev/null
}
mount_img() { "$PARTMAP" fuse "$1" m; }
umount_img() { "$PARTMAP" fuse -u m; }

# ---- writes that would land on metadata: refused, the file unchanged ----
# (entry-reserved, entry-past: qemu refuses too; entry-dup, refcount-data: the two clusters of one
# 128 KiB write would lie at one place, the second's data over the first's)
for c in "entry-reftable 0 1" "entry-l2 0 1" "refcount-l1 1048576 1" "l2-at-reftable 0 1" "entry-reserved 0 1" \
	"entry-past 65536 1" "entry-dup 0 32" "refcount-data 0 32"; do
	read -r what at cnt <<<"$c"
	fresh h.qcow2 && patch h.qcow2 "$what" && cp h.qcow2 h.orig || { fail "$what: image not made"; continue; }
	mount_img h.qcow2 || { fail "$what: partmap fuse"; continue; }
	head -c $((cnt * 4096)) /dev/urandom >blk
	dd if=blk of=m/disk bs=$((cnt * 4096)) seek=$((at / 4096 / cnt)) count=1 oflag=direct conv=notrunc,fsync status=none 2>err
	ok $((! $?)) "$what: a write of $((cnt * 4)) KiB at $at fails ($(tr '\n' ' ' <err))"
	# a second write, to a cluster of its own, fails too: nothing more is written to a damaged image
	dd if=blk of=m/disk bs=4096 seek=$((8 << 8)) conv=notrunc,fsync status=none 2>/dev/null
	ok $((! $?)) "$what: a later write elsewhere fails too"
	umount_img
	cmp -s h.qcow2 h.orig
	ok $? "$what: the image file is unchanged"
done

# ---- a discard of a cluster that is metadata: refused, nothing freed or punched ----
fresh h.qcow2 && patch h.qcow2 entry-reftable && cp h.qcow2 h.orig
if mount_img h.qcow2; then
	fallocate -p -o 0 -l 65536 m/disk 2>err
	ok $((! $?)) "discard of a cluster that is the refcount table fails ($(tr '\n' ' ' <err))"
	umount_img
	cmp -s h.qcow2 h.orig
	ok $? "the discard left the image file unchanged"
else
	fail "partmap fuse (discard)"
fi
# the same discard on a sound image does free the cluster (the refusal above is not a discard that
# never works)
fresh h.qcow2
if mount_img h.qcow2; then
	fallocate -p -o 0 -l 65536 m/disk
	ok $? "discard of a sound cluster succeeds"
	umount_img
	qemu-img check h.qcow2 >/dev/null 2>&1
	is $? 0 "qemu-img check: clean after the discard"
	qemu-io -r -c "read -P 0 0 64k" h.qcow2 | grep -q "verification failed"
	ok $((! $?)) "qemu-io reads zeros where the discard was"
else
	fail "partmap fuse (sound discard)"
fi

# ---- the other formats: an entry that points at the format's own structures ----
# corrupt FMT IMG: prints "OFF LEN AT OLD": the structure the entry now points at, and where the
# field changed lies with its old bytes (hex)
corrupt() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
fmt, path = sys.argv[1], sys.argv[2]
f = open(path, 'r+b')
def rd(off, n): f.seek(off); return f.read(n)
def wr(off, b):
    old = rd(off, len(b)); f.seek(off); f.write(b); print(off, old.hex(), end=' ')
if fmt == 'vpc':      # block 0's table entry at the block table itself
    f.seek(0, 2); end = f.tell()
    dh = struct.unpack('>Q', rd(end - 512 + 16, 8))[0]
    bat = struct.unpack('>Q', rd(dh + 16, 8))[0]
    wr(bat, struct.pack('>I', bat // 512)); print(bat, 512)
elif fmt == 'vdi':    # the data area starting at the header
    wr(0x158, struct.pack('<I', 0)); print(0, 0x200)
elif fmt == 'vmdk':   # grain 0 in the redundant grain directory's sector
    h = rd(0, 512)
    rgd, gd = struct.unpack('<QQ', h[48:64])
    gt = struct.unpack('<I', rd(gd * 512, 4))[0]
    wr(gt * 512, struct.pack('<I', rgd)); print(rgd * 512, 512)
elif fmt == 'vhdx':   # block 0 "fully present" on the metadata region
    n = struct.unpack('<I', rd(196608 + 8, 4))[0]
    reg = {}
    for i in range(n):
        e = rd(196608 + 16 + 32 * i, 32)
        reg[e[:16].hex()] = struct.unpack('<QI', e[16:28])
    bat = reg['6677c22d23f600429d64115e9bfd4a08'][0]
    meta, mlen = reg['06a27c8b90479a4bb8fe575f050f886e']
    wr(bat, struct.pack('<Q', meta | 6)); print(meta, mlen)
EOF
}
for fmt in vpc vdi vmdk vhdx; do
	rm -f o.img
	qemu-img create -q -f $fmt o.img 16M && qemu-io -f $fmt -c "write -P 0x11 0 64k" o.img >/dev/null &&
		set -- $(corrupt $fmt o.img) && cp o.img o.orig || { fail "$fmt: image not made"; continue; }
	mount_img o.img 2>err || { fail "$fmt: partmap fuse ($(cat err))"; continue; }
	head -c 4096 /dev/urandom >blk
	dd if=blk of=m/disk bs=4096 conv=notrunc,fsync status=none 2>>err
	ok $((! $?)) "$fmt: a write to the block on the structure at $3 fails or is refused ($(tr '\n' ' ' <err))"
	umount_img
	cmp -s -i "$3:$3" -n "$4" o.img o.orig
	ok $? "$fmt: the structure at $3 ($4 bytes) is unchanged"
	# the damage undone, qemu-img check finds nothing else wrong, and qemu reads the data back
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' o.img "$1" "$2"
	qemu-img check -f $fmt o.img >/dev/null 2>&1
	chk=$?
	bad=$(qemu-io -r -f $fmt -c "read -P 0x11 0 64k" o.img 2>&1 | grep -c "verification failed\|error")
	# (qemu-img has no check for VHD: exit 63)
	ok $(((chk != 0 && chk != 63) || bad != 0)) "$fmt: with the entry put back, qemu-img check ($chk) is clean and qemu reads the data"
done

# ---- sound images still written ----
# a persistent bitmap, whose directory and table are metadata too: written (the bitmaps declared
# inconsistent first, as the spec has a program that does not keep them do: qemu then counts their
# clusters as leaks, exit 3), nothing allocated over them
rm -f s.qcow2
qemu-img create -q -f qcow2 -o cluster_size=65536 s.qcow2 64M && qemu-io -c "write -P 0x22 0 128k" s.qcow2 >/dev/null &&
	qemu-img bitmap --add s.qcow2 b0 && qemu-io -c "write -P 0x44 1M 64k" s.qcow2 >/dev/null
if mount_img s.qcow2; then
	dd if=/dev/zero bs=64k count=2 status=none | tr '\0' '\063' | dd of=m/disk bs=64k seek=32 conv=notrunc,fsync status=none
	ok $? "bitmap image: a write to new clusters succeeds"
	umount_img
	qemu-img check s.qcow2 >/dev/null 2>&1
	is $? 3 "bitmap image: qemu-img check finds leaks only (the bitmaps' clusters)"
	out=$(qemu-io -r -c "read -P 0x33 2M 128k" -c "read -P 0x22 0 128k" -c "read -P 0x44 1M 64k" s.qcow2 2>/dev/null)
	is "$(grep -c "verification failed" <<<"$out")" 0 "bitmap image: qemu-io reads the new data and the old"
else
	fail "partmap fuse (bitmap image)"
fi
# 512-byte clusters and 24 MiB written: new refcount blocks and a refcount table that grows (moves)
rm -f g.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 g.qcow2 32M
head -c 24M /dev/urandom >g.src
if mount_img g.qcow2; then
	dd if=g.src of=m/disk bs=1M conv=notrunc,fsync status=none
	ok $? "512-byte clusters: 24 MiB written"
	umount_img
	qemu-img check g.qcow2 >/dev/null 2>&1
	is $? 0 "512-byte clusters: qemu-img check clean"
	t=$(qemu-img info --output=json g.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["actual-size"] > 0)')
	qemu-img dd -f qcow2 -O raw if=g.qcow2 of=g.out bs=1M count=24 2>/dev/null
	cmp -s g.out g.src
	ok $? "512-byte clusters: qemu reads back what was written ($t)"
	off=$(python3 -c 'import struct; f=open("g.qcow2","rb"); f.seek(48); print(struct.unpack(">Q", f.read(8))[0])')
	ok $((off == 512)) "512-byte clusters: the refcount table moved (now at $off)"
else
	fail "partmap fuse (512-byte clusters)"
fi
done_testing
