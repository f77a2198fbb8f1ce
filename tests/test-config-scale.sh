#!/bin/bash
# test-config-scale: a provider configuration split over thousands of included files with
# shared [policy] sections prints the same records, so the same ids, as the same
# configuration written inline in one file; records selects domains and refuses a
# configuration that check rejects, printing nothing.
set -euo pipefail

mtastsd=$1
n=${2:-3000}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtastsd-config-scale.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/inline" "$tmp/split/conf.d/customers" "$tmp/certs"

server="[server]
certs = ../certs
"
# Three shared policies; customer i uses policy i % 3, every 7th has its own tlsrpt.
policies=(
	"mode = enforce
mx = *.mx.provider.example
mx = backup.provider.example
max_age = 604800
tlsrpt = mailto:tlsrpt@provider.example"
	"mode = testing
mx = *.mx.provider.example
max_age = 86400"
	"mode = none
mx = *.mx.provider.example
max_age = 86400"
)
{
	printf '%s' "$server"
	printf 'include = conf.d/*.ini\ninclude = conf.d/customers/*.ini\n'
} >"$tmp/split/main.ini"
for p in 0 1 2; do
	printf '[policy p%d]\n%s\n' "$p" "${policies[$p]}" >"$tmp/split/conf.d/policy-$p.ini"
done
printf '%s' "$server" >"$tmp/inline/main.ini"
for ((i = 0; i < n; i++)); do
	p=$((i % 3))
	own=
	if ((i % 7 == 0)); then
		own="tlsrpt = mailto:reports@customer$i.example"
	fi
	printf '[domain customer%d.example]\npolicy = p%d\n%s\n' "$i" "$p" "$own" \
		>"$tmp/split/conf.d/customers/customer$i.ini"
	body=${policies[$p]}
	if [ -n "$own" ]; then
		body=$(grep -v '^tlsrpt' <<<"$body")
		body+=$'\n'$own
	fi
	printf '[domain customer%d.example]\n%s\n' "$i" "$body"
done >>"$tmp/inline/main.ini"

"$mtastsd" records --no-certs --format json -c "$tmp/inline/main.ini" >"$tmp/inline.json" \
	2>"$tmp/inline.err" || fail "inline: records exited $?: $(head -5 "$tmp/inline.err")"
"$mtastsd" records --no-certs --format json -c "$tmp/split/main.ini" >"$tmp/split.json" \
	2>"$tmp/split.err" || fail "split: records exited $?: $(head -5 "$tmp/split.err")"
/usr/bin/python3 - "$tmp/inline.json" "$tmp/split.json" "$n" <<'PY' || fail "records differ"
import json, sys
inline, split = (json.load(open(f)) for f in sys.argv[1:3])
n = int(sys.argv[3])
assert len(inline) == n, len(inline)
# Sorted by domain: the include order (sorted file names) differs from the inline order.
key = lambda d: d["domain"]
inline.sort(key=key)
split.sort(key=key)
assert inline == split, "inline and split configurations print different records"
ids = {d["id"] for d in inline}
assert len(ids) == 3, ids   # three policies, three ids
with_rpt = sum(1 for i in range(n) if i % 3 == 0 or i % 7 == 0)
assert sum(1 for d in inline if len(d["records"]) == 2) == with_rpt, "tlsrpt records"
PY

# The zone form for two domains named on the command line, in that order.
"$mtastsd" records --no-certs -c "$tmp/split/main.ini" customer5.example CUSTOMER0.example. \
	>"$tmp/two.zone" 2>/dev/null || fail "records of two domains exited $?"
[ "$(grep -c '^_mta-sts\.' "$tmp/two.zone")" = 2 ] || fail "two domains: $(cat "$tmp/two.zone")"
head -2 "$tmp/two.zone" | grep -q '^_mta-sts\.customer5\.example\. ' ||
	fail "customer5 first: $(cat "$tmp/two.zone")"
grep -q '^_mta-sts\.customer0\.example\. ' "$tmp/two.zone" || fail "customer0 missing"
rc=0
"$mtastsd" records --no-certs -c "$tmp/split/main.ini" nobody.example >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown domain: exit $rc, want 2"

# One broken customer file: records prints nothing, exit 1, the error at its file:line.
printf '[domain broken.example]\npolicy = p9\n' >"$tmp/split/conf.d/customers/zz-broken.ini"
rc=0
"$mtastsd" records --no-certs -c "$tmp/split/main.ini" >"$tmp/broken.out" 2>"$tmp/broken.err" ||
	rc=$?
[ "$rc" = 1 ] || fail "broken configuration: records exit $rc, want 1"
[ ! -s "$tmp/broken.out" ] || fail "broken configuration: records printed $(head -2 "$tmp/broken.out")"
grep -qF "$tmp/split/conf.d/customers/zz-broken.ini:2: unknown policy \"p9\"" "$tmp/broken.err" ||
	fail "error not at the included file's line: $(cat "$tmp/broken.err")"
rc=0
"$mtastsd" check --no-certs -c "$tmp/split/main.ini" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "check of the broken configuration: exit $rc, want 1"
echo "$n domains: split and inline print the same records"
