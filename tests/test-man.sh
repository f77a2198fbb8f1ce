#!/bin/bash
# test-man.sh: the manual pages under doc/.
#   - groff -man -ww and man --warnings find nothing to say about mtastsd(8) and
#     mtastsd.ini(5);
#   - mtastsd.ini(5) documents every key of the configuration's key tables
#     (server/config*.c) and include; mtastsd(8) every command of the usage text and
#     every long option of server/*.c, and the version the binary reports;
#   - meson install puts the binary in bindir and the pages in mandir's man8 and man5.
# usage: test-man.sh SOURCE_ROOT BUILD_ROOT MTASTSD
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$1
build=$2
mtastsd=$3
for tool in groff man meson python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
make_tmp man
pages=("$root/doc/mtastsd.8" "$root/doc/mtastsd.ini.5")

for page in "${pages[@]}"; do
	out=$(groff -man -ww -z "$page" 2>&1) || fail "groff -man -ww -z $page: $out"
	[ -z "$out" ] || fail "groff -man -ww warns about $page: $out"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 MANPAGER=cat man --warnings -l "$page" 2>&1 >"$tmp/rendered") ||
		fail "man --warnings -l $page: $out"
	[ -z "$out" ] || fail "man --warnings warns about $page: $out"
	[ -s "$tmp/rendered" ] || fail "man -l $page rendered nothing"
done
echo "ok - groff -man -ww and man --warnings: no warning"

# Every key of the tables: {"name", KEY_... in [server], [DK_...] = {"name", ... in [domain].
keys=$(sed -nE 's/^[[:space:]]*\{"([a-z_]+)", *KEY_.*/\1/p; s/^[[:space:]]*\[DK_[A-Z_]+\] = \{"([a-z_]+)".*/\1/p' \
	"$root"/server/config*.c | sort -u)
[ "$(echo "$keys" | wc -l)" -gt 40 ] || fail "found only these keys in server/config*.c: $keys"
missing=()
for key in $keys include; do
	grep -qE "^\.BI ${key//_/\\_} \" = " "$root/doc/mtastsd.ini.5" || missing+=("$key")
done
[ "${#missing[@]}" = 0 ] || fail "mtastsd.ini(5) does not document: ${missing[*]}"
for section in '\[server\]' '\[domain NAME\]' '\[policy NAME\]' INCLUDE; do
	grep -qE "^\.SH $section\$" "$root/doc/mtastsd.ini.5" || fail "mtastsd.ini(5) has no section $section"
done
echo "ok - mtastsd.ini(5) documents all $(echo "$keys" | wc -l) keys and include"

# Commands: the "  NAME    " lines of the usage text, and verify.
commands=$(sed -nE 's/^[[:space:]]*"  ([a-z]+) +(-c|\[).*/\1/p' "$root/server/main.c" | sort -u)
[ -n "$commands" ] || fail "no command found in server/main.c's usage text"
for cmd in $commands verify; do
	grep -qx "\.B $cmd" "$root/doc/mtastsd.8" || fail "mtastsd(8) has no synopsis of $cmd"
done
grep -ohE '\{"[a-z-]+", *(no|required|optional)_argument' "$root"/server/*.c |
	sed -E 's/\{"([a-z-]+)".*/\1/' | sort -u >"$tmp/options"
[ "$(wc -l <"$tmp/options")" -ge 5 ] || fail "long options found in server/*.c: $(cat "$tmp/options")"
while read -r opt; do
	grep -qF -- "\\-\\-${opt//-/\\-}" "$root/doc/mtastsd.8" || fail "mtastsd(8) does not mention --$opt"
done <"$tmp/options"
version=$("$mtastsd" --version)
grep -q "^\.TH MTASTSD 8 [0-9-]* \"$version\"" "$root/doc/mtastsd.8" ||
	fail "mtastsd(8) is not for $version: $(grep '^\.TH' "$root/doc/mtastsd.8")"
grep -q "^\.TH MTASTSD.INI 5 [0-9-]* \"$version\"" "$root/doc/mtastsd.ini.5" ||
	fail "mtastsd.ini(5) is not for $version: $(grep '^\.TH' "$root/doc/mtastsd.ini.5")"
for section in SIGNALS ENVIRONMENT FILES "EXIT STATUS"; do
	grep -qx "\.SH \"*$section\"*" "$root/doc/mtastsd.8" || fail "mtastsd(8) has no section $section"
done
echo "ok - mtastsd(8): commands $(echo "$commands" | tr '\n' ' ')verify, every long option, $version"

# meson install into a scratch root.
meson install -C "$build" --no-rebuild --destdir "$tmp/dest" >"$tmp/install.log" 2>&1 ||
	fail "meson install: $(cat "$tmp/install.log")"
read -r prefix bindir mandir < <(python3 - "$build/meson-info/intro-buildoptions.json" <<'PY'
import json, sys
o = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))}
print(o["prefix"], o["bindir"], o["mandir"])
PY
)
for f in "$bindir/mtastsd" "$mandir/man8/mtastsd.8" "$mandir/man5/mtastsd.ini.5"; do
	[ -f "$tmp/dest$prefix/$f" ] || fail "meson install did not install $prefix/$f: $(cat "$tmp/install.log")"
done
[ -x "$tmp/dest$prefix/$bindir/mtastsd" ] || fail "$prefix/$bindir/mtastsd is not executable"
cmp -s "$tmp/dest$prefix/$mandir/man5/mtastsd.ini.5" "$root/doc/mtastsd.ini.5" ||
	fail "the installed mtastsd.ini.5 differs from doc/"
echo "ok - meson install: $prefix/$bindir/mtastsd, $prefix/$mandir/man8/mtastsd.8, $prefix/$mandir/man5/mtastsd.ini.5"
