# TAP helpers for the command-level tests. Source it; set PARTMAP (the binary) beforehand or get
# build/partmap. Each test cleans up what it makes through the cleanup stack (a trap runs it).
set -u
PARTMAP=${PARTMAP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/partmap}
export PATH=$PATH:/usr/sbin:/sbin
_tap_n=0
_tap_fail=0
_cleanups=()
TMP=$(mktemp -d /tmp/partmap-test.XXXXXX)

plan() { echo "1..$1"; }
ok() { # ok COND-EXIT-CODE DESCRIPTION
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $_tap_n - $2"; else echo "not ok $_tap_n - $2"; _tap_fail=1; fi
}
pass() { ok 0 "$1"; }
fail() { ok 1 "$1"; }
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP $1"; }
diag() { printf '# %s\n' "$@"; }
is() { # is GOT EXPECTED DESCRIPTION
	if [ "$1" == "$2" ]; then pass "$3"; else
		fail "$3"; diag "got:" "$1" "expected:" "$2"
	fi
}
# compare two multi-line texts, show a diff when they differ
same() { # same GOT EXPECTED DESCRIPTION
	if [ "$1" == "$2" ]; then pass "$3"; else
		fail "$3"; diff <(printf '%s\n' "$2") <(printf '%s\n' "$1") | sed 's/^/# /'
	fi
}
defer() { _cleanups+=("$*"); }
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}" >/dev/null 2>&1 || true; done
	rm -rf "$TMP"
}
trap _run_cleanups EXIT
# A command that does not exist is a broken test, not a passing one: a misspelt helper in $(...)
# gives "" and would pass an `is "$(...)" ""`. Noted (subshells included), failed at done_testing.
command_not_found_handle() {
	printf '%s\n' "$1" >>"$TMP/.missing-commands"
	printf '%s: command not found\n' "$1" >&2
	return 127
}
done_testing() {
	if [ -s "$TMP/.missing-commands" ]; then
		fail "every command the test ran exists"
		diag "not found: $(sort -u "$TMP/.missing-commands" | tr '\n' ' ')"
	fi
	echo "1..$_tap_n"
}

# attach a loop device that this test owns; detached on exit. Sets the variable named VAR (not run in a
# subshell, so that the cleanup is registered in the test's own shell).
attach() { # attach VAR FILE [losetup options]
	local _av=$1 _ad
	shift
	_ad=$(losetup -f --show "$@") || return 1
	defer "losetup -d $_ad"
	printf -v "$_av" "%s" "$_ad"
}

# make a 512-byte-sector DOS image with sfdisk from a script on stdin
mkimg() { # mkimg FILE SIZE  (sfdisk script on stdin)
	rm -f "$1"
	truncate -s "$2" "$1"
	sfdisk -q --no-reread --no-tell-kernel "$1" >/dev/null
}

# The test run again (once) in a private mount namespace. exec drops the EXIT trap: this shell's
# (still empty) TMP goes now; the new one has its own, and PARTMAP_NS_PARENT_TMP names the old.
ns_reexec() {
	if [ -z "${PARTMAP_IN_NS:-}" ]; then
		rmdir "$TMP"
		PARTMAP_IN_NS=1 PARTMAP_NS_PARENT_TMP=$TMP exec unshare -m --propagation private bash "$0" "$@"
	fi
}
# Re-run this script in a private mount namespace with its own tmpfs on /dev/mapper, so that nothing
# it maps shows up (or is left) in the host's /dev/mapper.
private_ns() {
	ns_reexec "$@"
	mkdir -p /dev/mapper
	mount -t tmpfs -o mode=755 partmap-test /dev/mapper || { echo "Bail out! cannot mount a tmpfs on /dev/mapper"; exit 1; }
}

# A test of the userspace device mapper, in its private namespace (after private_ns): skipped where
# the kernel has a device mapper; a tmpfs on /run/partmap (this namespace's server, socket and mount
# apart from any other's); PARTMAP_DM=user; at exit, this namespace's servers killed, what is left
# removed, the server's mount unmounted.
udm_private() {
	if [ -e /sys/module/dm_mod ] || grep -q device-mapper /proc/misc; then
		echo "1..0 # SKIP this kernel has a device mapper: the userspace one is tested in tests/vm/"
		exit 0
	fi
	mkdir -p /run/partmap
	mount -t tmpfs -o mode=755 partmap-test /run/partmap || { echo "Bail out! cannot mount a tmpfs on /run/partmap"; exit 1; }
	export PARTMAP_DM=user
	defer 'for p in $(servers); do kill -9 $p; done; "$PARTMAP" dmsetup remove_all; umount -l /run/partmap/dm/fs'
}

# Undo everything on an image of this test: unmount what is mounted from it, remove its mappings, and
# detach every loop device backed by it (they can only be this test's: the image is in $TMP).
release_image() { # release_image IMG
	local img=$1 l
	grep -E "^/dev/(mapper/|loop)" /proc/mounts | awk '{print $2}' | while read -r mp; do
		case $mp in "$TMP"/*) umount -l "$mp" ;; esac
	done
	"$PARTMAP" kpartx -d "$img" >/dev/null 2>&1
	for l in $(losetup -j "$img" -O NAME -n 2>/dev/null); do
		partx -d "$l" >/dev/null 2>&1
		losetup -d "$l" 2>/dev/null
	done
}

# loop devices backed by an image
loops_of() { losetup -j "$1" -O NAME -n 2>/dev/null | sort; }

# what serves this test's image files (kpartx -a of a non-raw image, or of any with --snapshot: a
# partmap FUSE mount on /run/partmap/image-DEV-INO, a loop device on its disk); other tests serve
# theirs meanwhile, and are left alone
_served_pat() {
	local f
	for f in "$TMP"/*; do [ -f "$f" ] && stat -c 'image-%Hd:%Ld-%i/|image-%Hd:%Ld-%i$' "$f"; done | paste -sd'|'
}
served_loops() {
	local pat
	pat=$(_served_pat)
	[ -n "$pat" ] || return 0
	losetup -n -O NAME,BACK-FILE 2>/dev/null | awk -v p="$pat" '$2 ~ "^/run/partmap/" && $2 ~ p {print $1}'
}
# partmap FUSE mounts of this test: on a folder in $TMP, or serving one of its image files
served_mounts() {
	local pat
	pat=$(_served_pat)
	awk '$3 == "fuse.partmap" {print $2}' /proc/mounts |
		awk -v t="$TMP/" -v p="$pat" 'index($1, t) == 1 || (p != "" && $1 ~ "^/run/partmap/" && $1 ~ p)'
}
# partmap's image servers of this test (`partmap fuse ...`: started by kpartx -a as "partmap fuse", by
# a test as "$PARTMAP fuse", argv[0] then the full path): those serving a file named by a path in
# $TMP (kpartx's daemons), and those this test's shell started (-f in the foreground: a relative
# path, and libfuse makes its working directory /)
served_servers() {
	local p q
	for p in $(pgrep -f '(^|/)partmap fuse '); do
		case "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" in
		*"$TMP/"*) echo "$p"; continue ;;
		esac
		q=$p
		while [ -n "$q" ] && [ "$q" -gt 1 ] && [ "$q" != $$ ]; do
			q=$(awk '/^PPid:/ {print $2}' "/proc/$q/status" 2>/dev/null)
		done
		[ "$q" = $$ ] && echo "$p"
	done
}
# Undo all that this test's served images left (the exit trap; after a failed check): unmount what
# is mounted in $TMP from a mapping or loop device, detach the served loop devices, kill the servers,
# unmount their FUSE mounts
cleanup_served() {
	local l
	grep -E '^/dev/(mapper/|loop)' /proc/mounts | awk '{print $2}' | grep "^$TMP/" | xargs -r umount -l
	for l in $(served_loops); do partx -d "$l"; losetup -d "$l"; done
	served_servers | xargs -r kill -9
	served_mounts | xargs -r -n1 umount -l
}
# what served images may have left: loop devices, mounts, servers (one line each), /dev/mapper entries
served_leftovers() {
	{ served_loops; served_mounts | sed 's/^/mount /'; served_servers | sed 's/^/server /'; ls /dev/mapper; } 2>/dev/null
}

# partmap's servers (the userspace DM's `partmap serve dm`, image servers `partmap fuse ...`; or those
# whose command line matches the pattern given) running in this test's mount namespace: other tests'
# servers elsewhere are not ours to count or kill
ns_servers() {
	local p ns
	ns=$(readlink /proc/self/ns/mnt)
	for p in $(pgrep -f "${1:-^partmap (serve|fuse)}"); do
		[ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$ns" ] && echo "$p"
	done
}
# the userspace device mapper's servers of this mount namespace
servers() { ns_servers '^partmap serve dm$'; }
# a block device node's number as major:minor
majmin() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }
