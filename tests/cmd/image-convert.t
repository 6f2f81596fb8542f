#!/usr/bin/env bash
# partmap image convert -O qcow2 (and -O raw) from every format partmap reads, judged by qemu-img:
# compare equal to the source, check clean (no leaks), and sparse: qemu-img map shows data only where
# a cluster holds a non-zero byte (zeros written in the source, allocated there, are not allocated).
# -p prints qemu-img's progress lines on a terminal (script(1)) and nothing when not on one, for
# convert and for image raw.
. "$(dirname "$0")/lib.sh"
for c in qemu-img qemu-io script; do
	command -v $c >/dev/null || { fail "$c missing (tests/install-deps.sh installs it)"; done_testing; exit; }
done
cd "$TMP" || exit 1

# bytes qemu-img map calls data
data_bytes() { qemu-img map --output=json "$1" | perl -ne '$s += $1 if /"length": (\d+).*"data": true/; END { print $s + 0 }'; }

# the source: 64 MiB; data in a few places (one run unaligned), zeros written over 4 MiB, the rest never
# written; as raw, then converted by qemu-img into every other format
qemu-img create -q -f qcow2 src.qcow2 64M
qemu-io -c 'write -P 0x11 1M 3M' -c 'write -P 0 8M 4M' -c 'write -P 0x22 20M 64k' \
	-c 'write -P 0x33 33554500 5000' -c 'write -P 0x44 63M 1M' src.qcow2 >/dev/null
qemu-img convert -O raw src.qcow2 src.raw
for f in vmdk vpc vhdx vdi; do qemu-img convert -O $f src.raw src.$f; done
qemu-img convert -c -O qcow2 src.raw src-z.qcow2
qemu-img create -q -f qcow2 -b src.raw -F raw src-ov.qcow2
qemu-io -c 'write -P 0x55 40M 1M' -c 'write -P 0 63M 512k' src-ov.qcow2 >/dev/null

# the bytes of the clusters of FILE (a raw file) that hold a non-zero byte
nonzero_bytes() { # FILE CLUSTER-SIZE
	perl -e 'my $c = $ARGV[1]; $c =~ s/k$//i and $c *= 1024; $c =~ s/M$//i and $c *= 1048576;
		open my $f, "<", $ARGV[0] or die; my $n = 0; while (my $r = read($f, my $b, $c)) { $n += $r if $b =~ /[^\0]/ }
		print $n' "$@"
}
for src in src.raw src.qcow2 src-z.qcow2 src-ov.qcow2 src.vmdk src.vpc src.vhdx src.vdi; do
	qemu-img convert -O raw $src flat-$src
done

for src in src.raw src.qcow2 src-z.qcow2 src-ov.qcow2 src.vmdk src.vpc src.vhdx src.vdi; do
	for cs in 64k 512 2M; do
		out=out-$src-$cs.qcow2
		"$PARTMAP" image convert -O qcow2 -o cluster_size=$cs $src $out 2>err
		ok $? "$src -> qcow2 ($cs clusters): exit 0"
		qemu-img compare -q $src $out
		ok $? "$src -> qcow2 ($cs): qemu-img compare: identical"
		qemu-img check -q $out >/dev/null 2>&1
		ok $? "$src -> qcow2 ($cs): qemu-img check: no errors, no leaks"
		want=$(nonzero_bytes flat-$src $cs)
		got=$(data_bytes $out)
		is "$got" "$want" "$src -> qcow2 ($cs): sparse: data clusters only where a byte is not zero ($want bytes)"
		rm -f $out
	done
done

# -O raw, and a size that is not a multiple of 512 (qcow2 rounds it up; the rest reads as zeros)
"$PARTMAP" image convert -O raw src.vhdx out.raw && cmp -s out.raw src.raw
ok $? "vhdx -> raw: the same bytes"
head -c 1000000 src.raw >odd.raw
"$PARTMAP" image convert -O qcow2 odd.raw odd.qcow2
ok $? "a 1000000-byte raw file -> qcow2"
qemu-img compare -q odd.raw odd.qcow2
ok $? "odd size: qemu-img compare: identical (the rounded-up end reads as zeros)"
"$PARTMAP" image convert -O vdi src.raw x.vdi 2>err
[ $? -eq 1 ] && grep -q 'qcow2 and raw' err; ok $? "-O vdi: refused, saying what is written"
"$PARTMAP" image convert -O qcow2 src.qcow2 src.qcow2 2>err
[ $? -eq 1 ] && grep -q 'itself' err && qemu-img compare -q src.qcow2 src.raw; ok $? "onto its own input: refused, the input intact"

# ---- -p: qemu-img's progress lines on a terminal, none elsewhere ----
script -qec "'$PARTMAP' image convert -p -O qcow2 src.vmdk p.qcow2" /dev/null >tty.out
ok $? "convert -p under script(1): exit 0"
tr '\r' '\n' <tty.out | grep -q '^    (0\.00/100%)$' && tr '\r' '\n' <tty.out | grep -q '^    (100\.00/100%)$'
ok $? "convert -p on a terminal: (0.00/100%) ... (100.00/100%) lines"
n=$(tr '\r' '\n' <tty.out | grep -c '^    ([0-9.]*/100%)$')
[ "$n" -ge 3 ]; ok $? "convert -p: progress lines in between ($n in all)"
script -qec "qemu-img convert -p -O qcow2 src.vmdk q.qcow2" /dev/null >qtty.out
is "$(tr '\r' '\n' <tty.out | sed -n 1p | od -c | head -1)" "$(tr '\r' '\n' <qtty.out | sed -n 1p | od -c | head -1)" \
	"convert -p: the first line as qemu-img prints it"
qemu-img compare -q src.vmdk p.qcow2
ok $? "convert -p: the output identical"
"$PARTMAP" image convert -p -O qcow2 src.vmdk p2.qcow2 >notty.out 2>&1
is "$(wc -c <notty.out)" 0 "convert -p not on a terminal: no output"
script -qec "'$PARTMAP' image raw -p src.vhdx p.raw" /dev/null >tty.out
tr '\r' '\n' <tty.out | grep -q '^    (100\.00/100%)$' && cmp -s p.raw src.raw
ok $? "raw -p on a terminal: progress lines, the same bytes"
"$PARTMAP" image raw -p src.vhdx p2.raw >notty.out 2>&1
is "$(wc -c <notty.out)" 0 "raw -p not on a terminal: no output"
done_testing
