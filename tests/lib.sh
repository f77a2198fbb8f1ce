# lib.sh: what the shell tests of mtastsd serve share: fail, the tools check, a private
# directory removed at exit after the server is stopped, free ports, the a.test + b.test
# configuration with an admin listener, the canonical policy bodies and their ids, a
# verified policy fetch and waiting for a log line. Sourced by a bash script running with
# set -euo pipefail (test-status-chromium.sh, test-valgrind-serve.sh); only defines.
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

# make_tmp NAME [SIGNAL]: tmp=${TMPDIR:-/tmp}/mtastsd-NAME.XXXXXX, removed at exit after the
# server started into server_pid (if still set) is sent SIGNAL (default TERM) and reaped.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtastsd-$1.XXXXXX")
	server_pid=
	lib_stop_signal=${2:-TERM}
	trap lib_cleanup EXIT
}

lib_cleanup() {
	if [ -n "$server_pid" ]; then
		kill -"$lib_stop_signal" "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
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

# wait_log NEEDLE SECONDS [FROM]: polls $tmp/server.log (from byte FROM on) until NEEDLE
# appears; fails when the server (server_pid) exits first or after SECONDS.
wait_log() {
	local deadline=$((SECONDS + $2)) from=${3:-0}
	while ! grep -qF -- "$1" <(tail -c +"$((from + 1))" "$tmp/server.log"); do
		kill -0 "$server_pid" 2>/dev/null || fail "mtastsd exited: $(cat "$tmp/server.log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "no '$1' in the log: $(cat "$tmp/server.log")"
		sleep 0.05
	done
}

# log_size: the size of $tmp/server.log in bytes (a FROM for wait_log).
log_size() {
	stat -c %s "$tmp/server.log"
}
