#!/usr/bin/env bash
# Boots Debian's kernel under QEMU (TCG) with the static partmap, Debian's kpartx and dmsetup, and runs
# tests/vm/*.t there: the device-mapper backend, dmsetup, and the kernel as partition oracle. Their
# TAP comes back over a second serial port and is renumbered here.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${PARTMAP_BUILD:-$top/build}
vm=$B/vm
for f in "$vm/kernel/vmlinuz" "$vm/initramfs.cpio.gz"; do
	[ -f "$f" ] || { fail "VM not prepared: $f missing (make vm)"; done_testing; exit; }
done
command -v qemu-system-x86_64 >/dev/null || { fail "qemu-system-x86_64 missing"; done_testing; exit; }
start=$(date +%s)
"$top/tests/vm/boot.sh" "$B" "$TMP"
rc=$?
diag "VM ran for $(( $(date +%s) - start )) s (qemu exit $rc)"
file=""
declare -A count plan
while IFS= read -r line; do
	line=${line%$'\r'}
	case $line in
	"## end "*) ;;
	"## all done") done=1 ;;
	"## kernel "*) diag "${line#\#\# }" ;;
	"## "*) file=${line#\#\# }; count[$file]=0 ;;
	"ok "*|"not ok "*)
		count[$file]=$((count[$file] + 1))
		desc=$(sed -E 's/^(not )?ok [0-9]+ ?-? ?//' <<<"$line")
		case $line in
		"ok "*"# SKIP"*) skip "[vm $file] ${desc#*# SKIP }" ;;
		"ok "*) pass "[vm $file] $desc" ;;
		*) fail "[vm $file] $desc" ;;
		esac ;;
	1..*) plan[$file]=${line#1..} ;;
	"#"*) echo "$line" ;;
	*) [ -n "$line" ] && echo "# [vm $file] $line" ;;
	esac
done <"$TMP/tap"
for f in "${!count[@]}"; do
	[ "${plan[$f]:-x}" = "${count[$f]}" ]; ok $? "[vm $f] ran to its plan (${count[$f]} of ${plan[$f]:-?})"
done
[ "${done:-0}" = 1 ]; ok $? "the VM ran every test and powered off"
[ "${done:-0}" = 1 ] || tail -30 "$TMP/console" | sed 's/^/# console: /'
done_testing
