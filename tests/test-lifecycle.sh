#!/bin/bash
# test-lifecycle.sh: the journal in state_dir, with the real server. a.test goes from
# enforce to none: /status and records say until when senders may still hold the enforce
# policy (its max_age after it was replaced), and that date survives a restart; b.test
# taken out of the configuration while its policy may still be cached is a check warning
# with the date; once every max_age has passed, the records can go.
# usage: test-lifecycle.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
need_tools curl certtool python3 sha256sum

make_tmp lifecycle
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports

# config A_MODE A_MAX_AGE [no-b]: the lib.sh configuration with state_dir, a.test in
# A_MODE with A_MAX_AGE, and b.test (enforce, max_age 5) unless no-b.
config() {
	write_config 5 enforce
	server_keys state_dir=state
	/usr/bin/python3 - "$tmp/mtastsd.ini" "$1" "$2" "${3:-}" <<'PY'
import re, sys
path, mode, max_age, no_b = sys.argv[1:]
text = open(path).read()
a, b = text.split("[domain b.test]")
a = a.replace("mode = enforce", "mode = " + mode).replace("max_age = 604800", "max_age = " + max_age)
open(path, "w").write(a if no_b else a + "[domain b.test]" + b)
PY
}

# status DOMAIN: the /status page of DOMAIN.
status() {
	curl -sS --noproxy '*' --max-time 10 "http://127.0.0.1:$admin/status?domain=$1"
}

# until_of TEXT: the date in "hold an earlier policy until DATE:".
until_of() {
	sed -n 's/.*hold an earlier policy until \([0-9-]* [0-9:]* UTC\).*/\1/p' <<<"$1" | head -1
}

config enforce 3
mkdir -m 0700 "$tmp/state"
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "ready" 30
page=$(status a.test)
grep -q "mode enforce served since" <<<"$page" || fail "a.test lifecycle: $page"
[ -s "$tmp/state/journal" ] || fail "no journal in state_dir"

# enforce (max_age 3) -> none: senders may hold the enforce policy until 3 s after now.
before=$(date -u +%s)
config none 86400
from=$(log_size)
kill -HUP "$server_pid"
wait_log "reloaded" 30 "$from"
page=$(status a.test)
until1=$(until_of "$page")
[ -n "$until1" ] || fail "a.test in mode none: no date on /status: $page"
grep -q "mode none since" <<<"$page" || fail "a.test: $page"
grep -q "earlier policies" <<<"$page" || fail "a.test: no earlier policies: $page"
want=$(date -u -d "@$((before + 3))" '+%Y-%m-%d %H:%M UTC')
want2=$(date -u -d "@$(($(date -u +%s) + 3))" '+%Y-%m-%d %H:%M UTC')
[ "$until1" = "$want" ] || [ "$until1" = "$want2" ] ||
	fail "a.test: until $until1, want $want (enforce max_age 3 after the reload)"
"$bin" records --no-certs -c "$tmp/mtastsd.ini" a.test >"$tmp/records" 2>/dev/null ||
	fail "records exited $?"
grep -qF "; a.test: mode none since" "$tmp/records" || fail "records: $(cat "$tmp/records")"

# A restart keeps the journal: the same date.
stop_server
start_server "$tmp/server2.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "ready" 30
[ "$(until_of "$(status a.test)")" = "$until1" ] ||
	fail "after a restart: $(status a.test), want until $until1"

# Once the enforce max_age has passed: removable, on /status and in records.
sleep 4
grep -q "can be removed now" <<<"$(status a.test)" || fail "a.test not removable: $(status a.test)"
"$bin" records --no-certs -c "$tmp/mtastsd.ini" a.test >"$tmp/records" 2>/dev/null
grep -qF "can be removed now" "$tmp/records" || fail "records: $(cat "$tmp/records")"

# b.test (enforce, max_age 5) taken out: check warns while its policy may be cached.
config none 86400 no-b
from=$(log_size)
kill -HUP "$server_pid"
wait_log "reloaded" 30 "$from"
"$bin" check --no-certs -c "$tmp/mtastsd.ini" >"$tmp/check.out" 2>"$tmp/check.err" ||
	fail "check exited $?: $(cat "$tmp/check.err")"
grep -q "warning: b.test is no longer configured, but senders may hold its policy (id [0-9a-f]*, mode enforce) until" \
	"$tmp/check.err" || fail "check: $(cat "$tmp/check.err")"
sleep 6
"$bin" check --no-certs -c "$tmp/mtastsd.ini" >"$tmp/check.out" 2>"$tmp/check.err"
if grep -q "b.test is no longer configured" "$tmp/check.err"; then
	fail "check still warns after b.test's max_age: $(cat "$tmp/check.err")"
fi
echo "lifecycle: dates on /status, records and check, across a restart"
