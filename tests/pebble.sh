# pebble.sh: a private ACME CA for the shell tests: Debian's pebble (RFC 8555 test server)
# with pebble-challtestsrv as its DNS server, answering 127.0.0.1 for every name, so that
# pebble validates challenges against the server under test on loopback. Sourced after
# lib.sh (it uses tmp, fail, free_port, kill_at_exit, lib_running) by a bash script running
# with set -euo pipefail; only defines.
#
# Facts about pebble 2.4.0 (Debian 12) this relies on: it ships no certificates, so the
# API's certificate is made here; its root and intermediate are regenerated on every
# start (fetched from the management API after each one) and accounts live in memory
# only; PEBBLE_VA_NOSLEEP=1 removes the random 0-15 s sleep before each validation;
# PEBBLE_WFE_NONCEREJECT (default 5) is the percentage of good nonces refused with
# badNonce. pebble-challtestsrv with an empty -management listens on *:80, so it gets a
# port of its own.
# shellcheck shell=bash

# pebble_up TLS_PORT HTTP_PORT [NONCEREJECT]: starts pebble in $tmp/pebble (config, logs
# pebble.log and challtestsrv.log, root.pem, intermediate.pem). Its validation connects to
# 127.0.0.1:TLS_PORT (tls-alpn-01) and 127.0.0.1:HTTP_PORT (http-01); NONCEREJECT sets
# PEBBLE_WFE_NONCEREJECT (empty or absent: pebble's default of 5 %). Waits until /dir
# answers, then exports PEBBLE_DIR (the directory URL), PEBBLE_CA (the CA file that trusts
# pebble's API certificate), PEBBLE_ROOT (the file with pebble's current root), PEBBLE_PID
# PEBBLE_MGMT (the management API's base URL) and PEBBLE_DNS_MGMT (challtestsrv's
# management API: POST /add-a and /clear-a point a name elsewhere). Fails with pebble's log on error.
pebble_up() {
	local dir=${tmp:?make_tmp first}/pebble ports dns_port cts_port
	pebble_tls_port=$1
	pebble_http_port=$2
	pebble_nonce_reject=${3:-}
	mkdir -p "$dir"
	ports=$(pebble_free_ports 4 "$1" "$2") || fail "pebble: no free ports"
	read -r dns_port cts_port pebble_api_port pebble_mgmt_port <<<"$ports"
	pebble_make_certs "$dir"
	cat >"$dir/pebble.json" <<EOF_JSON
{
  "pebble": {
    "listenAddress": "127.0.0.1:$pebble_api_port",
    "managementListenAddress": "127.0.0.1:$pebble_mgmt_port",
    "certificate": "$dir/cert.pem",
    "privateKey": "$dir/key.pem",
    "httpPort": $pebble_http_port,
    "tlsPort": $pebble_tls_port,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF_JSON
	pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" -tlsalpn01 "" \
		-management "127.0.0.1:$cts_port" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
		>"$dir/challtestsrv.log" 2>&1 &
	kill_at_exit "$!"
	pebble_dns_pid=$!
	pebble_dns=127.0.0.1:$dns_port
	export PEBBLE_DIR=https://localhost:$pebble_api_port/dir
	export PEBBLE_CA=$dir/ca.pem
	export PEBBLE_ROOT=$dir/root.pem
	export PEBBLE_MGMT=https://localhost:$pebble_mgmt_port
	export PEBBLE_DNS_MGMT=http://127.0.0.1:$cts_port
	PEBBLE_PID=
	pebble_start
}

# pebble_down: stops pebble (SIGTERM, SIGKILL after 10 s) and reaps it; its DNS server
# keeps running. PEBBLE_PID is emptied. A test of "the CA is down at start" calls
# pebble_up, then pebble_down, and later pebble_restart.
pebble_down() {
	local deadline=$((SECONDS + 10)) keep=() pid
	[ -n "${PEBBLE_PID:-}" ] || return 0
	kill -TERM "$PEBBLE_PID" 2>/dev/null || true
	while lib_running "$PEBBLE_PID" && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.05
	done
	kill -KILL "$PEBBLE_PID" 2>/dev/null || true
	wait "$PEBBLE_PID" 2>/dev/null || true
	# Reaped: its pid may be reused, so it must not be signalled at exit.
	for pid in "${lib_helpers[@]}"; do
		[ "$pid" = "$PEBBLE_PID" ] || keep+=("$pid")
	done
	lib_helpers=("${keep[@]}")
	export PEBBLE_PID=
}

# pebble_restart: pebble_down if it runs, then starts it again with the same ports and
# config, which gives it a new root (root.pem is fetched again) and no accounts, orders or
# authorizations.
pebble_restart() {
	pebble_down
	pebble_start
}

# pebble_verify_chain CERT_PEM_FILE: 0 when the first certificate of the file verifies
# against $PEBBLE_ROOT with the file's other certificates as intermediates (openssl
# verify, purpose sslserver), else 1 with openssl's reason on stderr.
pebble_verify_chain() {
	local dir=$tmp/pebble untrusted=()
	awk -v leaf="$dir/verify-leaf.pem" -v rest="$dir/verify-rest.pem" '
		BEGIN { printf "" > leaf; printf "" > rest }
		/-----BEGIN CERTIFICATE-----/ { n++ }
		n == 1 { print > leaf }
		n > 1 { print > rest }
	' "$1" || return 1
	[ -s "$dir/verify-leaf.pem" ] || { echo "pebble_verify_chain: no certificate in $1" >&2; return 1; }
	if [ -s "$dir/verify-rest.pem" ]; then
		untrusted=(-untrusted "$dir/verify-rest.pem")
	fi
	if openssl verify -purpose sslserver -CAfile "$PEBBLE_ROOT" "${untrusted[@]}" \
		"$dir/verify-leaf.pem" >/dev/null; then
		return 0
	fi
	return 1
}

# pebble_free_ports N EXCLUDED...: N different TCP ports on 127.0.0.1, free a moment ago
# and none of EXCLUDED, on one line (one python3 start: free_port four times is slow).
pebble_free_ports() {
	python3 - "$@" <<'EOF_PY'
import socket, sys
n, excluded = int(sys.argv[1]), set(sys.argv[2:])
held, ports = [], []
while len(ports) < n:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
    if str(s.getsockname()[1]) not in excluded:
        ports.append(s.getsockname()[1])
print(*ports)
EOF_PY
}

# pebble_make_certs DIR: DIR/ca.pem, a throwaway CA (P-256), and DIR/cert.pem + key.pem, a
# certificate it issued for DNS:localhost and IP:127.0.0.1: pebble's API certificate.
pebble_make_certs() {
	local dir=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj /CN=pebble-test-ca \
		>"$dir/openssl.log" 2>&1 || fail "pebble CA: $(cat "$dir/openssl.log")"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/key.pem" -out "$dir/req.csr" -subj /CN=localhost \
		>"$dir/openssl.log" 2>&1 || fail "pebble key: $(cat "$dir/openssl.log")"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/ext.cnf"
	openssl x509 -req -in "$dir/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 3650 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" \
		>"$dir/openssl.log" 2>&1 || fail "pebble certificate: $(cat "$dir/openssl.log")"
}

# pebble_start: starts pebble from $tmp/pebble/pebble.json (log appended to pebble.log),
# waits up to 15 s for /dir, then fetches root.pem and intermediate.pem; sets PEBBLE_PID.
pebble_start() {
	local dir=$tmp/pebble deadline=$((SECONDS + 15)) env=(env -u PEBBLE_WFE_NONCEREJECT)
	if [ -n "$pebble_nonce_reject" ]; then
		env+=("PEBBLE_WFE_NONCEREJECT=$pebble_nonce_reject")
	fi
	echo "--- pebble_start $(date -u +%FT%TZ)" >>"$dir/pebble.log"
	"${env[@]}" PEBBLE_VA_NOSLEEP=1 pebble -config "$dir/pebble.json" -dnsserver "$pebble_dns" \
		>>"$dir/pebble.log" 2>&1 &
	export PEBBLE_PID=$!
	kill_at_exit "$PEBBLE_PID"
	until curl -sf --noproxy '*' --max-time 2 --cacert "$PEBBLE_CA" -o /dev/null "$PEBBLE_DIR"; do
		lib_running "$PEBBLE_PID" || fail "pebble exited: $(tail -n 20 "$dir/pebble.log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "pebble: no $PEBBLE_DIR in 15 s: $(tail -n 20 "$dir/pebble.log")"
		sleep 0.05
	done
	lib_running "$pebble_dns_pid" || fail "pebble-challtestsrv exited: $(tail -n 20 "$dir/challtestsrv.log")"
	pebble_fetch roots/0 "$PEBBLE_ROOT"
	pebble_fetch intermediates/0 "$dir/intermediate.pem"
}

# pebble_fetch PATH FILE: GET $PEBBLE_MGMT/PATH into FILE, which must be a PEM certificate.
pebble_fetch() {
	curl -sSf --noproxy '*' --max-time 10 --cacert "$PEBBLE_CA" -o "$2.new" "$PEBBLE_MGMT/$1" ||
		fail "pebble: GET $PEBBLE_MGMT/$1: $(tail -n 20 "$tmp/pebble/pebble.log")"
	openssl x509 -noout -in "$2.new" 2>/dev/null || fail "pebble: $PEBBLE_MGMT/$1 is no certificate"
	mv -f "$2.new" "$2"
}
