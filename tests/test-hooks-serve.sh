#!/bin/bash
# test-hooks-serve.sh: on_change with the real server and a state_dir. The first start
# announces every domain; an unchanged restart announces nothing; a policy changed while
# the server was stopped is announced at the next start, alone; a reload announces the
# changed id; a hook that hangs is killed after on_change_timeout, retried, and never
# holds up a reload or a request.
# usage: test-hooks-serve.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
need_tools curl python3 sha256sum

make_tmp hooks
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports
mkdir "$tmp/state"
# shellcheck disable=SC2016 # $1 and $2 are the hook's, not ours
printf '#!/bin/sh\necho "$1 $2" >>"%s/hook.out"\nif [ -e "%s/hang" ]; then\n\tsleep 60\nfi\n' \
	"$tmp" "$tmp" >"$tmp/hook.sh"
chmod 0755 "$tmp/hook.sh"
: >"$tmp/hook.out"

# configure B_MAX_AGE: lib.sh's configuration with the hook and the state_dir.
configure() {
	write_config "$1"
	sed -i "s|^\[server\]$|[server]\nstate_dir = $tmp/state\non_change = $tmp/hook.sh\non_change_timeout = 2|" \
		"$tmp/mtastsd.ini"
	grep -q "^on_change = $tmp/hook.sh$" "$tmp/mtastsd.ini" || fail "on_change not written"
}

# wait_hook N LINE...: until the hook has run N times (one line each); then its output
# must be exactly the LINEs.
wait_hook() {
	local n=$1 deadline=$((SECONDS + 30))
	shift
	while [ "$(wc -l <"$tmp/hook.out")" -lt "$n" ]; do
		[ "$SECONDS" -lt "$deadline" ] || fail "the hook ran $(wc -l <"$tmp/hook.out") times, want $n"
		sleep 0.05
	done
	printf '%s\n' "$@" | diff -u - "$tmp/hook.out" || fail "hook runs differ (above)"
}

a1=$(policy_id enforce 604800 mail.a.test)
b1=$(policy_id testing 86400 mx.b.test)
b2=$(policy_id testing 172800 mx.b.test)
b3=$(policy_id testing 259200 mx.b.test)
b4=$(policy_id testing 345600 mx.b.test)

# 1. first start: every domain
configure 86400
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
wait_hook 2 "a.test $a1" "b.test $b1"

# 2. unchanged restart: nothing. The queue runs in order, so the reload's announcement
# coming out alone proves the start queued none.
stop_server
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
configure 172800
from=$(log_size)
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 30 "$from"
wait_hook 3 "a.test $a1" "b.test $b1" "b.test $b2"

# 3. changed while stopped: announced at the next start, alone
stop_server
configure 259200
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
wait_hook 4 "a.test $a1" "b.test $b1" "b.test $b2" "b.test $b3"

# 4. a hook that hangs: killed after on_change_timeout and retried; meanwhile reloads
# and requests go on
touch "$tmp/hang"
configure 345600
from=$(log_size)
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 30 "$from"
wait_log "on_change $tmp/hook.sh b.test $b4: " 30 "$from"
configure 86400
from=$(log_size)
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 10 "$from"
policy_body testing 86400 mx.b.test >"$tmp/b.body"
fetch b.test "$tmp/b.body"
rm "$tmp/hang"
wait_log "on_change $tmp/hook.sh b.test $b1: done after " 60 "$from"
stop_server
grep -q "^b.test $b1\$" "$tmp/state/announced" || fail "announced: $(cat "$tmp/state/announced")"
echo "ok: on_change at start, on reload, not again for an unchanged restart, hung hooks killed"
