#!/usr/bin/env bash
# Bash completion (completion/partmap) with bash-completion's own helpers, as an interactive shell
# loads it: applet names, options, option values, files, loop devices, /dev/mapper names, dirs.
. "$(dirname "$0")/lib.sh"
private_ns "$@"   # a tmpfs on /dev/mapper: names to complete that are the test's own
top=$(cd "$(dirname "$0")/../.." && pwd)
comp_file=$top/completion/partmap
bc=/usr/share/bash-completion/bash_completion
[ -f "$bc" ] || { fail "bash-completion missing (make deps)"; done_testing; exit; }

comp() { # comp WORD... : what completing the last word offers, one per line, sorted
	# COMP_WORDS as bash splits the line: "--backend=x" is three words, --backend = x, with no
	# blanks between them in COMP_LINE
	bash -c '
		source "$1" 2>/dev/null; source "$2"; shift 2
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE=$1
		for ((i = 1; i < $#; i++)); do
			if [[ ${COMP_WORDS[i]} == = || ${COMP_WORDS[i - 1]} == = ]]; then COMP_LINE+=${COMP_WORDS[i]}
			else COMP_LINE+=" ${COMP_WORDS[i]}"; fi
		done
		COMP_POINT=${#COMP_LINE}
		_partmap; printf "%s\n" "${COMPREPLY[@]}"' _ "$bc" "$comp_file" "$@" | sort
}
has() { grep -qxF -- "$2" <<<"$1"; }

[ ! -e "${PARTMAP_NS_PARENT_TMP:-/nonexistent}" ]; ok $? "private_ns left no temporary directory behind"
bash -c "source $bc; source $comp_file; complete -p partmap" | grep -q -- '-F _partmap partmap$'
ok $? "registered for partmap"
is "$(comp partmap '' | tr '\n' ' ')" "--help --version dmraid dmsetup fuse image kpartx losetup " "partmap: the applets"
is "$(comp partmap lo)" "losetup" "partmap lo: losetup"
is "$(comp partmap --v)" "--version" "partmap --v: --version"

is "$(comp partmap kpartx --js)" "--json" "kpartx --js: --json"
has "$(comp partmap kpartx -t '')" unixware; ok $? "kpartx -t: the table types"
is "$(comp partmap kpartx --format q)" "qcow2" "kpartx --format q: qcow2"
is "$(comp partmap kpartx --backend = '' | tr '\n' ' ')" "dm loop part " "kpartx --backend=: dm part loop"
touch "$TMP/disk.img" "$TMP/other.qcow2"
mkdir "$TMP/dir"
is "$(comp partmap kpartx "$TMP/di" | tr '\n' ' ')" "$TMP/dir $TMP/disk.img " "kpartx: image files"
truncate -s 1M "$TMP/l.img"
attach L "$TMP/l.img"
has "$(comp partmap kpartx /dev/loop)" "$L"; ok $? "kpartx /dev/loop: block devices ($L)"
has "$(comp partmap losetup -d /dev/lo)" "$L"; ok $? "losetup -d: loop devices"
is "$(comp partmap losetup --sizel)" "--sizelimit" "losetup --sizel: --sizelimit"
is "$(comp partmap losetup -O NAME,OFF)" "NAME,OFFSET" "losetup -O NAME,OFF: a second column"
is "$(comp partmap losetup --direct-io = '' | tr '\n' ' ')" "off on " "losetup --direct-io=: on off"
has "$(comp partmap losetup -f --show "$TMP/o")" "$TMP/other.qcow2"; ok $? "losetup -f --show: the file"

is "$(comp partmap dmsetup re | tr '\n' ' ')" "reload remove remove_all rename resume " "dmsetup re: the commands"
touch /dev/mapper/vg0-root /dev/mapper/vg0-swap
is "$(comp partmap dmsetup table '' | tr '\n' ' ')" "vg0-root vg0-swap " "dmsetup table: the names in /dev/mapper (not control)"
is "$(comp partmap dmsetup -f remove vg0-s)" "vg0-swap" "dmsetup -f remove: a name after an option"
is "$(comp partmap dmsetup info -c -o name,at)" "name,attr" "dmsetup info -o: the fields"
is "$(comp partmap dmsetup ls --tree -o ascii,inv)" "ascii,inverted" "dmsetup ls --tree -o: the tree options"
is "$(comp partmap dmsetup splitname -o vg_name,lv_)" "$(printf 'vg_name,lv_layer\nvg_name,lv_name')" "dmsetup splitname -o: its fields"
is "$(comp partmap dmsetup spl)" "splitname" "dmsetup spl: splitname"

is "$(comp partmap image '' | tr '\n' ' ')" "--help --version check convert create info raw " "image: its commands"
is "$(comp partmap image convert -O '' | tr '\n' ' ')" "qcow2 raw " "image convert -O: the formats written"
has "$(comp partmap image convert -)" "-p"; ok $? "image convert: -p offered"
is "$(comp partmap image info --f)" "--format" "image info --f: --format"
is "$(comp partmap image info "$TMP/oth")" "$TMP/other.qcow2" "image info: the image file"

is "$(comp partmap fuse "$TMP/disk.img" "$TMP/" | tr '\n' ' ')" "$TMP/dir " "fuse IMAGE DIR: directories only"
is "$(comp partmap fuse -u "$TMP/" | tr '\n' ' ')" "$TMP/dir " "fuse -u: directories"
is "$(comp partmap fuse --vers)" "--version" "fuse --vers: --version"

# every applet and every long option the code parses is offered
applets=$(sed -n 's/^[[:space:]]*{ "\([a-z]*\)", [a-z_]*, ".*/\1/p' "$top/src/cli/main.c")
[ -n "$applets" ]; ok $? "applets found in main.c"
for a in $applets; do
	has "$(comp partmap '')" "$a"; ok $? "partmap: offers $a"
	missing=
	for o in $(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*_argument.*/\1/p' "$top/src/cli/$a.c"); do
		sub=()
		[ "$a" = image ] && sub=(info) # image's options follow its command
		has "$(comp partmap "$a" "${sub[@]}" --)" "--$o" || missing+=" --$o"
	done
	is "$missing" "" "$a: every long option is offered"
done
done_testing
