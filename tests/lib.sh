# lib.sh: what the shell tests of mtastsd serve share: fail, the tools check, a private
# directory removed at exit, starting servers and checking how they end (exit 0 on SIGTERM,
# no sanitizer report), helper processes killed at exit, free ports, the a.test + b.test
# configuration with an admin listener, the canonical policy bodies and their ids, a
# verified policy fetch, waiting for a log line and reading /metrics. Sourced by a bash
# script running with set -euo pipefail; only defines.
# shellcheck shell=bash

# fail MESSAGE...: the test fails with MESSAGE.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# need_tools TOOL...: fails unless every TOOL is in $PATH.
need_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
	done
}

# make_tmp NAME [SIGNAL]: tmp=${TMPDIR:-/tmp}/mtastsd-NAME.XXXXXX, removed at exit. At exit,
# every server that start_server started and that is still registered must, when the script
# is about to exit 0, still run, exit 0 on SIGTERM and leave no sanitizer report (else the
# script exits 1); after a failure or a skip it is sent SIGNAL (default TERM) and reaped.
# Helpers (kill_at_exit) get SIGTERM.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtastsd-$1.XXXXXX")
	server_pid=
	server_log=
	lib_servers=()
	lib_helpers=()
	lib_stop_signal=${2:-TERM}
	trap lib_cleanup EXIT
}

lib_cleanup() {
	local rc=$? entry pid
	for entry in "${lib_servers[@]}"; do
		if [ "$rc" = 0 ]; then
			end_server "${entry%%:*}" "${entry#*:}" || rc=1
		else
			kill -"$lib_stop_signal" "${entry%%:*}" 2>/dev/null || true
			wait "${entry%%:*}" 2>/dev/null || true
		fi
	done
	for pid in "${lib_helpers[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
	exit "$rc"
}

# kill_at_exit PID: a helper process (a DNS server) to be stopped at exit.
kill_at_exit() {
	lib_helpers+=("$1")
}

# start_server LOG COMMAND...: runs COMMAND (mtastsd serve, or a wrapper of it) in the
# background with stdout and stderr to LOG; server_pid and server_log are set to it, which
# wait_log and stop_server use; at exit it is checked like stop_server does.
start_server() {
	server_log=$1
	shift
	"$@" >"$server_log" 2>&1 &
	server_pid=$!
	lib_servers+=("$server_pid:$server_log")
}

# lib_running PID: true while PID runs (an exited child that is not reaped yet is a zombie).
lib_running() {
	[ -e "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# sanitizer_report FILE: true when FILE has an ASan, LSan or UBSan report.
sanitizer_report() {
	grep -qE 'Sanitizer|runtime error:' "$1"
}

# end_server PID LOG: the server must still run; SIGTERM, then it must exit 0 within
# ${lib_stop_seconds:-30} s (else SIGKILL) with no sanitizer report in LOG. 0 when it did,
# else 1 after saying why on stderr. server_status is set to its exit status; it is no
# longer checked at exit.
end_server() {
	local pid=$1 log=$2 deadline=$((SECONDS + ${lib_stop_seconds:-30})) entry keep=() ok=0
	for entry in "${lib_servers[@]}"; do
		[ "$entry" = "$pid:$log" ] || keep+=("$entry")
	done
	lib_servers=("${keep[@]}")
	if [ "$pid" = "$server_pid" ]; then
		server_pid=
	fi
	if ! lib_running "$pid"; then
		echo "FAIL: mtastsd (pid $pid) exited during the test: $(cat "$log")" >&2
		ok=1
	fi
	kill -TERM "$pid" 2>/dev/null || true
	while lib_running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.05
	done
	if lib_running "$pid"; then
		echo "FAIL: mtastsd (pid $pid) still running ${lib_stop_seconds:-30} s after SIGTERM" >&2
		kill -KILL "$pid" 2>/dev/null || true
		ok=1
	fi
	server_status=0
	wait "$pid" || server_status=$?
	if [ "$ok" = 0 ] && [ "$server_status" != 0 ]; then
		echo "FAIL: mtastsd exited $server_status after SIGTERM, want 0: $(cat "$log")" >&2
		ok=1
	fi
	if sanitizer_report "$log"; then
		echo "FAIL: sanitizer report in the log of mtastsd: $(cat "$log")" >&2
		ok=1
	fi
	return "$ok"
}

# stop_server: end_server for server_pid and server_log; the test fails unless it ended
# cleanly.
stop_server() {
	end_server "$server_pid" "$server_log" || fail "mtastsd did not end cleanly (above)"
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pick_ports: port and admin, two different free ports.
pick_ports() {
	port=$(free_port)
	admin=$(free_port)
	while [ "$admin" = "$port" ]; do
		admin=$(free_port)
	done
}

# write_config B_MAX_AGE [B_MODE]: $tmp/mtastsd.ini, replaced at once: a.test (enforce) and
# b.test (B_MODE, default testing; tlsrpt = $b_tlsrpt when that is set) with certificates in
# $tmp/certs, served on 127.0.0.1:$port, the admin listener on 127.0.0.1:$admin.
write_config() {
	{
		cat <<EOF_INI
[server]
listen = 127.0.0.1:$port
admin_listen = 127.0.0.1:$admin
threads = 2

[domain a.test]
mode = enforce
mx = mail.a.test
max_age = 604800
cert = certs/mta-sts.a.test.crt
key = certs/mta-sts.a.test.key

[domain b.test]
mode = ${2:-testing}
mx = mx.b.test
max_age = $1
cert = certs/mta-sts.b.test.crt
key = certs/mta-sts.b.test.key
EOF_INI
		if [ -n "${b_tlsrpt:-}" ]; then
			echo "tlsrpt = $b_tlsrpt"
		fi
	} >"$tmp/mtastsd.ini.new"
	mv -f "$tmp/mtastsd.ini.new" "$tmp/mtastsd.ini"
}

# server_keys KEY=VALUE...: adds these lines to [server] of $tmp/mtastsd.ini (as written by
# write_config), in place.
server_keys() {
	local kv
	for kv in "$@"; do
		sed -i "s|^\[server\]$|[server]\n${kv%%=*} = ${kv#*=}|" "$tmp/mtastsd.ini"
		grep -qxF "${kv%%=*} = ${kv#*=}" "$tmp/mtastsd.ini" || fail "$kv not written"
	done
}

# policy_body MODE MAX_AGE MX...: the canonical body the server must serve for that policy.
policy_body() {
	local mode=$1 max_age=$2 mx
	shift 2
	printf 'version: STSv1\r\nmode: %s\r\n' "$mode"
	for mx in "$@"; do
		printf 'mx: %s\r\n' "$mx"
	done
	printf 'max_age: %s\r\n' "$max_age"
}

# policy_id MODE MAX_AGE MX...: its id, computed independently of mtastsd (the first 32
# hex digits of the body's SHA-256).
policy_id() {
	policy_body "$@" | sha256sum | cut -c1-32
}

# fetch DOMAIN BODY_FILE: GET https://mta-sts.DOMAIN:$port/.well-known/mta-sts.txt over
# TLS verified against $tmp/certs/ca.crt must give exactly the bytes of BODY_FILE.
fetch() {
	curl -sS --noproxy '*' --max-time 30 --cacert "$tmp/certs/ca.crt" -o "$tmp/got" \
		--resolve "mta-sts.$1:$port:127.0.0.1" "https://mta-sts.$1:$port/.well-known/mta-sts.txt" ||
		fail "fetch of $1"
	cmp -s "$2" "$tmp/got" || fail "policy of $1: $(cat -A "$tmp/got")"
}

# wait_log NEEDLE SECONDS [FROM]: polls server_log (from byte FROM on) until NEEDLE appears;
# fails when the server (server_pid) exits first or after SECONDS.
wait_log() {
	local deadline=$((SECONDS + $2)) from=${3:-0}
	while ! grep -qF -- "$1" <(tail -c +"$((from + 1))" "$server_log"); do
		lib_running "$server_pid" || fail "mtastsd exited: $(cat "$server_log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "no '$1' in the log: $(cat "$server_log")"
		sleep 0.05
	done
}

# log_size: the size of server_log in bytes (a FROM for wait_log).
log_size() {
	stat -c %s "$server_log"
}
