#!/bin/bash
# test-valgrind-serve.sh: mtastsd serve under valgrind through real fetches, the admin
# endpoints, a good and a broken SIGHUP reload and SIGTERM: exit 0, no error, no leak.
# usage: test-valgrind-serve.sh MTASTSD_BIN MAKE_CERTS_SH
# Exit 77 without valgrind, or for a sanitizer build (valgrind cannot run those).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2

if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP: valgrind not installed"
	exit 77
fi
if ldd "$bin" | grep -qE 'lib(a|ub|t|l)san'; then
	echo "SKIP: $bin is a sanitizer build; valgrind cannot run it"
	exit 77
fi
need_tools curl python3 sha256sum

# on a failure valgrind is killed outright: no leak report is wanted then
make_tmp valgrind KILL
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports
b_tlsrpt=mailto:tlsrpt@b.test

# admin_get PATH NEEDLE: the admin page answers 200 and contains NEEDLE.
admin_get() {
	local code
	code=$(curl -sS --noproxy '*' --max-time 30 -o "$tmp/page" -w '%{http_code}' \
		"http://127.0.0.1:$admin$1") || fail "GET $1"
	[ "$code" = 200 ] || fail "GET $1: $code"
	grep -qF -- "$2" "$tmp/page" || fail "GET $1: no '$2' in $(cat "$tmp/page")"
}

policy_body enforce 604800 mail.a.test >"$tmp/a.body"
policy_body testing 86400 mx.b.test >"$tmp/b.body"
policy_body testing 172800 mx.b.test >"$tmp/b2.body"
write_config 86400

start_server "$tmp/server.log" valgrind --leak-check=full --errors-for-leak-kinds=definite \
	--error-exitcode=99 --log-file="$tmp/valgrind.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 120

for _ in 1 2 3; do
	fetch a.test "$tmp/a.body"
	fetch b.test "$tmp/b.body"
done
code=$(curl -sS --noproxy '*' --max-time 30 --cacert "$tmp/certs/ca.crt" -o /dev/null -w '%{http_code}' \
	--resolve "mta-sts.a.test:$port:127.0.0.1" "https://mta-sts.a.test:$port/nope")
[ "$code" = 404 ] || fail "GET /nope: $code"
admin_get /metrics 'mtastsd_requests_total{domain="a.test",status="200"} 3'
admin_get /status '<h2>b.test</h2>'
admin_get '/records?format=json' '"domain": "a.test"'

# a changed policy, then a broken config: both reload paths run
from=$(log_size)
write_config 172800
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 60 "$from"
fetch b.test "$tmp/b2.body"
from=$(log_size)
write_config 172800 strict
line=$(grep -n '^mode = strict$' "$tmp/mtastsd.ini" | cut -d: -f1)
kill -HUP "$server_pid"
wait_log "mtastsd: reload failed" 60 "$from"
wait_log "$tmp/mtastsd.ini:$line: invalid mode \"strict\"" 5 "$from"
fetch b.test "$tmp/b2.body"
admin_get /metrics 'mtastsd_reloads_total{result="error"} 1'

# valgrind writes its leak report at exit: give it time
lib_stop_seconds=120
if ! end_server "$server_pid" "$server_log"; then
	[ "$server_status" != 99 ] || fail "valgrind found errors: $(cat "$tmp/valgrind.log")"
	fail "mtastsd under valgrind did not end cleanly (above)"
fi
grep -q 'ERROR SUMMARY: 0 errors' "$tmp/valgrind.log" ||
	fail "valgrind errors: $(cat "$tmp/valgrind.log")"
# The summary is there (valgrind ran to the end), and no block is definitely lost.
grep -q 'definitely lost: 0 bytes in 0 blocks' "$tmp/valgrind.log" ||
	grep -q 'All heap blocks were freed' "$tmp/valgrind.log" ||
	fail "no clean leak summary: $(cat "$tmp/valgrind.log")"
if grep -q 'are definitely lost' "$tmp/valgrind.log"; then
	fail "definitely lost: $(cat "$tmp/valgrind.log")"
fi
echo "valgrind: exit 0, no errors, nothing definitely lost"
