#!/bin/bash
# test-acme.sh: the built-in ACME client against a real ACME server (Debian's pebble, with
# its default 5% of rejected nonces), names resolved by the tests' own DNS server
# (pebble-challtestsrv): issuance by TLS-ALPN-01 on the policy port for 50 domains with
# chains verified against pebble's root; a restart orders nothing; a renewal under a
# client fetching throughout fails no request; pebble down at start (explicit certificates
# serve, the ACME domains are degraded with the CA's problem and back off, then are issued
# once pebble is up); HTTP-01 through acme_http_listen; two replicas sharing state_dir
# order each name once; one domain whose validation fails is degraded alone; a CA's ARI
# window moves a renewal forward; hostile CAs never crash or hang the server.
# usage: test-acme.sh MTASTSD MAKE_CERTS
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=pebble.sh
source "$(dirname "${BASH_SOURCE[0]}")/pebble.sh"

mtastsd=$1
make_certs=$2
for tool in curl openssl python3 pebble pebble-challtestsrv; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp acme

# metric ADMIN_PORT SERIES: the value of one /metrics series (empty when absent).
metric() {
	curl -sS --noproxy '*' --max-time 10 "http://127.0.0.1:$1/metrics" |
		awk -v k="$2" '$1 == k { print $2 }'
}

# wait_metric ADMIN_PORT SERIES VALUE SECONDS: polls until SERIES has VALUE.
wait_metric() {
	local deadline=$((SECONDS + $4)) v=
	while :; do
		v=$(metric "$1" "$2" || true)
		[ "$v" = "$3" ] && return 0
		lib_running "$server_pid" || fail "mtastsd exited: $(cat "$server_log")"
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "$2 is '$v' after $4 s, want $3: $(tail -n 30 "$server_log")"
		sleep 0.2
	done
}

# get PORT HOST: the policy of HOST over TLS verified against pebble's root (curl sends
# the SNI and checks the name); exit status of curl.
get() {
	curl -sS --noproxy '*' --max-time 10 --cacert "$PEBBLE_ROOT" -o /dev/null \
		--resolve "$2:$1:127.0.0.1" "https://$2:$1/.well-known/mta-sts.txt"
}

# write_acme_config FILE PORT ADMIN STATE_DIR N [EXTRA_SERVER_LINES]: d1.test .. dN.test,
# no certificates, ACME against pebble with intervals small enough for a test.
write_acme_config() {
	local file=$1 i
	{
		printf '[server]\nlisten = 127.0.0.1:%s\nadmin_listen = 127.0.0.1:%s\n' "$2" "$3"
		printf 'access_log = no\nthreads = 2\nstate_dir = %s\n' "$4"
		printf 'acme = %s\nacme_ca = %s\nacme_email = hostmaster@example.test\n' \
			"$PEBBLE_DIR" "$PEBBLE_CA"
		printf 'acme_order_interval = 0\nacme_retry_min = 1\nacme_retry_max = 2\n'
		printf 'acme_timeout = 10\nacme_order_timeout = 60\n'
		printf '%b' "${6:-}"
		for i in $(seq 1 "$5"); do
			printf '\n[domain d%s.test]\nmode = testing\nmx = mx.d%s.test\nmax_age = 86400\n' \
				"$i" "$i"
		done
	} >"$file"
}

pick_ports
http_port=$(free_port)
pebble_up "$port" "$http_port"

# 1. Fifty domains with no certificate files: each gets one by TLS-ALPN-01 on the policy
# port, and serves it with a chain that verifies against pebble's root.
write_acme_config "$tmp/a.ini" "$port" "$admin" "$tmp/state" 50
"$mtastsd" check -c "$tmp/a.ini" >"$tmp/check.out" 2>&1 ||
	fail "check refused a config whose certificates come from ACME: $(cat "$tmp/check.out")"
start_server "$tmp/a.log" "$mtastsd" serve -c "$tmp/a.ini"
wait_log 'mtastsd: ready' 10
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 50 120
for i in $(seq 1 50); do
	get "$port" "mta-sts.d$i.test" || fail "d$i.test does not serve a certificate pebble's root verifies"
done
[ "$(metric "$admin" 'mtastsd_acme_orders_total{result="issued"}')" = 50 ] ||
	fail "want 50 orders issued: $(metric "$admin" 'mtastsd_acme_orders_total{result="issued"}')"
pebble_verify_chain "$tmp/state/acme/mta-sts.d7.test/cert.pem" ||
	fail "the stored chain of d7.test does not verify against pebble's root"
[ "$(stat -c %a "$tmp/state/acme/mta-sts.d7.test/cert.pem")" = 600 ] ||
	fail "the file holding a private key is not 0600"
[ "$(metric "$admin" 'mtastsd_handshakes_total{result="acme"}')" -ge 50 ] ||
	fail "no acme-tls/1 validation handshakes counted"

# A client offering acme-tls/1 for a name with no pending challenge gets no handshake,
# never the tenant's certificate.
if echo | openssl s_client -connect "127.0.0.1:$port" -servername mta-sts.d1.test \
	-alpn acme-tls/1 >"$tmp/alpn.out" 2>&1; then
	fail "an acme-tls/1 handshake without a challenge succeeded: $(cat "$tmp/alpn.out")"
fi
get "$port" mta-sts.d1.test || fail "d1.test stopped serving after a stray acme-tls/1 hello"

# 2. A restart orders nothing: every certificate is read back from state_dir.
stop_server
start_server "$tmp/a2.log" "$mtastsd" serve -c "$tmp/a.ini"
wait_log 'mtastsd: ready' 10
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 50 30
sleep 2
[ "$(metric "$admin" 'mtastsd_acme_orders_total{result="issued"}')" = 0 ] ||
	fail "a restart ordered certificates again: $(grep 'issued by' "$tmp/a2.log")"
get "$port" mta-sts.d50.test || fail "d50.test after the restart"
stop_server

echo "ok: issuance, restart"

# 3. Renewal: with acme_renew_before a few seconds short of pebble's lifetime, each
# certificate is due again seconds after it is issued. A client fetching throughout sees
# every request succeed while the certificates are replaced under it.
lifetime=$(openssl x509 -in "$tmp/state/acme/mta-sts.d1.test/cert.pem" -noout -startdate -enddate |
	sed 's/^[a-zA-Z]*=//' | { read -r a; read -r b; echo $(($(date -d "$b" +%s) - $(date -d "$a" +%s))); })
write_acme_config "$tmp/r.ini" "$port" "$admin" "$tmp/state-r" 2 \
	"acme_renew_before = $((lifetime - 4))\n"
start_server "$tmp/r.log" "$mtastsd" serve -c "$tmp/r.ini"
wait_log 'mtastsd: ready' 10
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 2 60
fetches=0
failed=0
deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
	for h in mta-sts.d1.test mta-sts.d2.test; do
		fetches=$((fetches + 1))
		get "$port" "$h" 2>>"$tmp/renew-errors" || failed=$((failed + 1))
	done
done
renewed=$(grep -c 'certificate renewed' "$tmp/r.log" || true)
[ "$failed" = 0 ] || fail "$failed of $fetches requests failed during renewals: $(cat "$tmp/renew-errors")"
[ "$renewed" -ge 2 ] || fail "want renewals within 15 s, saw $renewed: $(tail -n 20 "$tmp/r.log")"
stop_server
echo "ok: $renewed renewals, $fetches fetches, none failed"

# 4. The CA down at start: a domain with its own certificate serves at once; the ACME
# ones are degraded with the problem, back off (and say so), and are issued once the CA
# is up again.
pebble_down
"$make_certs" -o "$tmp/certs" own.test >/dev/null
write_acme_config "$tmp/d.ini" "$port" "$admin" "$tmp/state-d" 3
printf '\n[domain own.test]\nmode = enforce\nmx = mx.own.test\nmax_age = 86400\ncert = %s\nkey = %s\n' \
	"$tmp/certs/mta-sts.own.test.crt" "$tmp/certs/mta-sts.own.test.key" >>"$tmp/d.ini"
start_server "$tmp/d.log" "$mtastsd" serve -c "$tmp/d.ini"
wait_log 'mtastsd: ready' 10
curl -sS --noproxy '*' --max-time 10 --cacert "$tmp/certs/ca.crt" -o /dev/null \
	--resolve "mta-sts.own.test:$port:127.0.0.1" "https://mta-sts.own.test:$port/.well-known/mta-sts.txt" ||
	fail "own.test does not serve while the CA is down"
wait_metric "$admin" 'mtastsd_certificate_degraded_domains{reason="acme_failed"}' 3 30
curl -sS --noproxy '*' "http://127.0.0.1:$admin/status" >"$tmp/status"
grep -q 'ACME order failed' "$tmp/status" || fail "/status does not show the ACME failure: $(cat "$tmp/status")"
grep -q 'next attempt at' "$tmp/d.log" || fail "no back-off in the log: $(cat "$tmp/d.log")"
grep -q '^retry_at [1-9]' "$tmp/state-d/acme/mta-sts.d1.test/status" ||
	fail "the back-off is not kept in state_dir: $(cat "$tmp/state-d/acme/mta-sts.d1.test/status")"
pebble_restart
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 4 60
for i in 1 2 3; do
	get "$port" "mta-sts.d$i.test" || fail "d$i.test not issued once the CA was up"
done
# The CA forgets every account when it restarts: the next order registers again.
pebble_restart
printf '\n[domain late.test]\nmode = testing\nmx = mx.late.test\nmax_age = 86400\n' >>"$tmp/d.ini"
kill -HUP "$server_pid"
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 5 60
get "$port" mta-sts.late.test || fail "late.test not issued after the CA forgot the account"
stop_server
echo "ok: CA down at start, account forgotten"

# 5. HTTP-01: the plain-HTTP listener answers the CA's token and nothing else.
write_acme_config "$tmp/h.ini" "$port" "$admin" "$tmp/state-h" 2 \
	"acme_challenge = http-01\nacme_http_listen = 127.0.0.1:$http_port\n"
start_server "$tmp/h.log" "$mtastsd" serve -c "$tmp/h.ini"
wait_log 'mtastsd: ready' 10
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 2 60
get "$port" mta-sts.d2.test || fail "d2.test not issued by HTTP-01"
for path in /.well-known/mta-sts.txt /.well-known/acme-challenge/nosuchtoken /; do
	code=$(curl -sS --noproxy '*' -o "$tmp/h.body" -w '%{http_code}' -H 'Host: mta-sts.d1.test' \
		"http://127.0.0.1:$http_port$path")
	[ "$code" = 404 ] || fail "acme_http_listen answered $path with $code, want 404"
	! grep -q STSv1 "$tmp/h.body" || fail "acme_http_listen served a policy"
done
[ "$(metric "$admin" 'mtastsd_handshakes_total{result="acme"}')" = 0 ] ||
	fail "HTTP-01 made acme-tls/1 handshakes"
stop_server
echo "ok: HTTP-01"

# 6. Two replicas sharing one state_dir order each name once. Only the first listens on
# the port pebble validates on: it answers the other's challenges from state_dir.
port2=$(free_port)
admin2=$(free_port)
write_acme_config "$tmp/s1.ini" "$port" "$admin" "$tmp/state-s" 10
write_acme_config "$tmp/s2.ini" "$port2" "$admin2" "$tmp/state-s" 10
start_server "$tmp/s1.log" "$mtastsd" serve -c "$tmp/s1.ini"
s1_pid=$server_pid
start_server "$tmp/s2.log" "$mtastsd" serve -c "$tmp/s2.ini"
s2_pid=$server_pid
wait_log 'mtastsd: ready' 10
wait_metric "$admin2" 'mtastsd_certificate_domains{state="ok"}' 10 90
server_pid=$s1_pid
server_log=$tmp/s1.log
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 10 60
issued1=$(metric "$admin" 'mtastsd_acme_orders_total{result="issued"}')
issued2=$(metric "$admin2" 'mtastsd_acme_orders_total{result="issued"}')
[ $((issued1 + issued2)) = 10 ] || fail "replicas issued $issued1 + $issued2 certificates for 10 names"
for i in $(seq 1 10); do
	get "$port" "mta-sts.d$i.test" || fail "replica 1 does not serve d$i.test"
	get "$port2" "mta-sts.d$i.test" || fail "replica 2 does not serve d$i.test"
done
end_server "$s1_pid" "$tmp/s1.log" || fail "replica 1 did not end cleanly"
end_server "$s2_pid" "$tmp/s2.log" || fail "replica 2 did not end cleanly"
echo "ok: replicas ordered $issued1 + $issued2"

# 7. A domain whose validation fails (its name points where nothing answers) is degraded
# alone, with the CA's problem, and retried with a growing back-off; the others serve.
curl -sS --noproxy '*' --max-time 10 -o /dev/null -d \
	'{"host":"mta-sts.d2.test","addresses":["127.0.0.2"]}' "$PEBBLE_DNS_MGMT/add-a" ||
	fail "cannot point mta-sts.d2.test elsewhere"
write_acme_config "$tmp/v.ini" "$port" "$admin" "$tmp/state-v" 3
start_server "$tmp/v.log" "$mtastsd" serve -c "$tmp/v.ini"
wait_log 'mtastsd: ready' 10
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 2 60
wait_metric "$admin" 'mtastsd_certificate_degraded_domains{reason="acme_failed"}' 1 60
wait_log 'mta-sts.d2.test: ACME order failed (2 in a row)' 30
! grep -q 'mta-sts.d[13].test: ACME order failed' "$tmp/v.log" ||
	fail "a domain whose validation works failed too: $(grep 'order failed' "$tmp/v.log")"
grep -q 'mta-sts.d2.test: ACME order failed (1 in a row): urn:ietf:params:acme:error:' "$tmp/v.log" ||
	fail "the failure does not give the CA's problem: $(grep 'order failed' "$tmp/v.log")"
curl -sS --noproxy '*' "http://127.0.0.1:$admin/metrics" >"$tmp/v.metrics"
grep -q '^mtastsd_certificate_degraded{domain="d2.test",reason="acme_failed",serving="none"}' \
	"$tmp/v.metrics" || fail "d2.test is not named degraded in /metrics: $(grep degraded "$tmp/v.metrics")"
get "$port" mta-sts.d1.test || fail "d1.test does not serve beside the failing d2.test"
# The name is fixed: the next attempt of the back-off issues it.
curl -sS --noproxy '*' --max-time 10 -o /dev/null -d '{"host":"mta-sts.d2.test"}' \
	"$PEBBLE_DNS_MGMT/clear-a" || fail "cannot point mta-sts.d2.test back"
wait_metric "$admin" 'mtastsd_certificate_domains{state="ok"}' 3 60
get "$port" mta-sts.d2.test || fail "d2.test not issued once its name was fixed"
stop_server
echo "ok: one failing validation"

# 9 (a certificate of 7, under pebble's current root). ARI (RFC 9773): a CA whose
# renewalInfo says "renew now" for a certificate years from its end gets a renewal order
# at once (here refused), while the certificate in place keeps serving.
ari_port=$(free_port)
python3 "$(dirname "${BASH_SOURCE[0]}")/hostile_acme.py" "$tmp/pebble/cert.pem" \
	"$tmp/pebble/key.pem" "$ari_port" ari >"$tmp/ari.out" 2>"$tmp/ari.log" &
kill_at_exit "$!"
for _ in $(seq 1 100); do
	grep -q ready "$tmp/ari.out" && break
	sleep 0.05
done
mkdir -p "$tmp/state-ari/acme"
cp -a "$tmp/state-v/acme/mta-sts.d1.test" "$tmp/state-ari/acme/"
rm -f "$tmp/state-ari/acme/mta-sts.d1.test/status"
write_acme_config "$tmp/ari.ini" "$port" "$admin" "$tmp/state-ari" 1
sed -i "s|^acme = .*|acme = https://localhost:$ari_port/dir|" "$tmp/ari.ini"
start_server "$tmp/ari-server.log" "$mtastsd" serve -c "$tmp/ari.ini"
wait_log 'mtastsd: ready' 10
wait_log 'mta-sts.d1.test: ACME order failed (1 in a row): urn:ietf:params:acme:error:malformed' 30
grep -q 'GET /renewal-info/[A-Za-z0-9_-]*\.[A-Za-z0-9_-]* ' "$tmp/ari.log" ||
	fail "no ARI lookup: $(cat "$tmp/ari.log")"
aki=$(openssl x509 -in "$tmp/state-v/acme/mta-sts.d1.test/cert.pem" -noout -ext authorityKeyIdentifier |
	sed -n 's/^ *\(keyid:\)\{0,1\}\([0-9A-F:]\{20,\}\)$/\2/p' | tr -d ':')
want=$(python3 -c 'import base64, sys
print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b"=").decode())' "$aki")
grep -q "GET /renewal-info/$want\." "$tmp/ari.log" ||
	fail "the ARI id does not start with the AKI $want: $(grep renewal-info "$tmp/ari.log")"
get "$port" mta-sts.d1.test || fail "d1.test stopped serving while its renewal failed"
stop_server
echo "ok: ARI"

# 8. A hostile or broken CA never crashes or hangs the server: every ACME domain is
# degraded with a problem, the others serve, /healthz stays 200, SIGTERM ends it.
"$make_certs" -o "$tmp/certs" own.test >/dev/null
for mode in garbage huge slow wrongtype redirect problem reset; do
	hport=$(free_port)
	python3 "$(dirname "${BASH_SOURCE[0]}")/hostile_acme.py" "$tmp/pebble/cert.pem" \
		"$tmp/pebble/key.pem" "$hport" "$mode" >"$tmp/hostile.out" 2>"$tmp/hostile-$mode.log" &
	hpid=$!
	kill_at_exit "$hpid"
	for _ in $(seq 1 100); do
		grep -q ready "$tmp/hostile.out" && break
		sleep 0.05
	done
	write_acme_config "$tmp/x.ini" "$port" "$admin" "$tmp/state-x-$mode" 2
	sed -i -e "s|^acme = .*|acme = https://localhost:$hport/dir|" \
		-e 's|^acme_timeout = .*|acme_timeout = 3|' \
		-e 's|^acme_order_timeout = .*|acme_order_timeout = 8|' "$tmp/x.ini"
	printf '\n[domain own.test]\nmode = enforce\nmx = mx.own.test\nmax_age = 86400\ncert = %s\nkey = %s\n' \
		"$tmp/certs/mta-sts.own.test.crt" "$tmp/certs/mta-sts.own.test.key" >>"$tmp/x.ini"
	start_server "$tmp/x-$mode.log" "$mtastsd" serve -c "$tmp/x.ini"
	wait_log 'mtastsd: ready' 10
	wait_metric "$admin" 'mtastsd_certificate_degraded_domains{reason="acme_failed"}' 2 30
	[ "$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/healthz")" = 200 ] ||
		fail "/healthz is not 200 with a $mode CA"
	curl -sS --noproxy '*' --max-time 10 --cacert "$tmp/certs/ca.crt" -o /dev/null \
		--resolve "mta-sts.own.test:$port:127.0.0.1" \
		"https://mta-sts.own.test:$port/.well-known/mta-sts.txt" ||
		fail "own.test does not serve with a $mode CA"
	lib_stop_seconds=10 stop_server
	kill "$hpid" 2>/dev/null || true
	wait "$hpid" 2>/dev/null || true
	echo "ok: hostile CA ($mode): $(grep -m1 -o 'ACME order failed.*' "$tmp/x-$mode.log" | cut -c1-150)"
done
