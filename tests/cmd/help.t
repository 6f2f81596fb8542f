#!/usr/bin/env bash
# --help and --version of every applet, and its man page: every option the code parses is in both
# (read from the applet's getopt string and long-option table, so a new option without its help
# fails here); the pages render without a warning and have the sections of the tools' own pages.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^VERSION := //p' "$top/Makefile")
# the applets, from main.c's table: a new applet without its help, page or completion fails here
applets=$(sed -n 's/^[[:space:]]*{ "\([a-z]*\)", [a-z_]*, ".*/\1/p' "$top/src/cli/main.c")
[ -n "$applets" ]; ok $? "applets found in main.c: $(echo $applets)"

out=$("$PARTMAP" --version); is "$out" "partmap $version" "partmap --version"
out=$("$PARTMAP" --help); ok $? "partmap --help: exit 0"
for a in $applets; do
	grep -q "^  $a " <<<"$out"; ok $? "partmap --help names $a"
done

for a in $applets; do
	src=$top/src/cli/$a.c
	help=$("$PARTMAP" "$a" --help 2>&1); rc=$?
	is "$rc" 0 "partmap $a --help: exit 0"
	grep -qi 'exit status' <<<"$help"; ok $? "partmap $a --help states the exit status"
	out=$("$PARTMAP" "$a" --version 2>&1); rc=$?
	is "$rc/$out" "0/$a (partmap) $version" "partmap $a --version"
	man=$top/doc/partmap-$a.8
	[ -f "$man" ]; ok $? "doc/partmap-$a.8 exists"
	text=$(MANWIDTH=200 man --warnings -l "$man" 2>"$TMP/warn")
	is "$(cat "$TMP/warn")" "" "partmap-$a.8 renders without warnings"
	for sec in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -q "^$sec" <<<"$text"; ok $? "partmap-$a.8 has $sec"
	done
	grep -q '^DIFFERENCES FROM' <<<"$text"; ok $? "partmap-$a.8 states the differences from the tool it replaces"
	# the options the code parses: long ones from the option table, short ones from the getopt string
	longs=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*_argument.*/\1/p' "$src" | sort -u)
	shorts=$(grep -o 'getopt_long([^"]*"[^"]*"' "$src" | sed 's/.*"\(.*\)"/\1/' | tr -d '+:' | fold -w1 | sort -u)
	[ -n "$longs" ]; ok $? "$a: long options found in the source"
	missing_help= missing_man=
	for o in $longs; do
		grep -q -- "--$o" <<<"$help" || missing_help+=" --$o"
		grep -q -- "--$o" <<<"$text" || missing_man+=" --$o"
	done
	for o in $shorts; do
		grep -qE -- "-$o\b" <<<"$help" || missing_help+=" -$o"
		grep -qE -- "-$o\b" <<<"$text" || missing_man+=" -$o"
	done
	is "$missing_help" "" "partmap $a --help names every option it parses"
	is "$missing_man" "" "partmap-$a.8 names every option $a parses"
done
# the applets' subcommands: dmsetup's command table, image's info and raw
cmds=$(sed -n 's/^[[:space:]]*{ "\([a-z_]*\)", cmd_[a-z_]*, .*/\1/p' "$top/src/cli/dmsetup.c")
[ -n "$cmds" ]; ok $? "dmsetup: commands found in the source"
help=$("$PARTMAP" dmsetup --help) text=$(MANWIDTH=200 man -l "$top/doc/partmap-dmsetup.8" 2>/dev/null)
missing=
for c in $cmds; do
	grep -qw -- "$c" <<<"$help" || missing+=" help:$c"
	grep -qw -- "$c" <<<"$text" || missing+=" man:$c"
done
is "$missing" "" "dmsetup --help and partmap-dmsetup.8 name every command"
text=$(MANWIDTH=200 man --warnings -l "$top/doc/partmap.8" 2>"$TMP/warn")
is "$(cat "$TMP/warn")" "" "partmap.8 renders without warnings"
for a in $applets; do
	grep -q "partmap-$a(8)" <<<"$text"; ok $? "partmap.8 refers to partmap-$a(8)"
done
done_testing
