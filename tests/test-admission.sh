#!/bin/bash
# test-admission.sh: connection admission with the real server and real TLS clients from
# many loopback addresses: a request head trickled byte by byte is cut off at
# request_timeout; one address gets max_connections_per_ip connections, not one more; at
# max_connections, slow connections (slowloris) and idle keep-alive ones make room for
# fresh clients, which get their policy in under a second (also when the attackers'
# connections are all young: the address holding the most gives way); slow clients on the admin
# listener do not make /healthz time out; /metrics and the log say what was shed and why.
# usage: test-admission.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
probe=$(dirname "${BASH_SOURCE[0]}")/admission_probe.py
need_tools curl certtool

make_tmp admission
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports

# serve_with KEY=VALUE...: the lib.sh configuration with these [server] keys, served.
serve_with() {
	write_config 86400
	server_keys "$@"
	start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
	wait_log "ready" 30
}

metric() {
	curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$admin/metrics" |
		sed -n "s/^mtastsd_connections_shed_total{listener=\"$1\",reason=\"$2\"} //p"
}

run_probe() {
	/usr/bin/python3 "$probe" "$@" || fail "admission_probe.py $*"
}

serve_with request_timeout=2 max_connections_per_ip=5 max_connections=20 idle_timeout=30
run_probe deadline "$port" "$tmp/certs/ca.crt" 2
[ "$(metric https deadline)" -ge 1 ] || fail "deadline not counted: $(metric https deadline)"
run_probe per_ip "$port" "$tmp/certs/ca.crt" 5
[ "$(metric https per_ip)" -ge 1 ] || fail "per_ip not counted"
run_probe slowloris "$port" "$tmp/certs/ca.crt" 20
[ "$(metric https slow)" -ge 1 ] || fail "slow connections shed for new ones not counted"
wait_log "connections shed or refused" 15
run_probe admin "$admin" 64
stop_server

# idle keep-alive connections make room (request_timeout long, so only shedding helps)
serve_with request_timeout=60 max_connections=20 idle_timeout=60
run_probe idle "$port" "$tmp/certs/ca.crt" 20
[ "$(metric https idle)" -ge 1 ] || fail "idle connections shed not counted"
# attackers that reconnect at once keep every connection young: the address holding the
# most connections gives way to a fresh client
run_probe crowd "$port" "$tmp/certs/ca.crt" 20
echo "admission: deadline, per-address limit, slowloris, idle shedding, young attackers," \
	"admin listener"
