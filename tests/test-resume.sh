#!/bin/bash
# test-resume.sh: resumed TLS sessions (TLS 1.3 and 1.2 tickets) are served like full
# ones: gnutls-cli --resume reconnects with the session of its first connection, and the
# request on the resumed connection gets the tenant's policy (200, exact body), not 421;
# the resumption is counted in /metrics; a ticket of one tenant never resumes a session
# under another tenant's name.
# usage: test-resume.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
for tool in gnutls-cli curl python3 sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp resume
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports
write_config 86400
policy_body enforce 604800 mail.a.test >"$tmp/a.body"
policy_body testing 86400 mx.b.test >"$tmp/b.body"

start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30

# resumed_get DOMAIN PRIORITY: the HTTP answer on the resumed connection of gnutls-cli.
resumed_get() {
	printf 'GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.%s\r\nConnection: close\r\n\r\n' "$1" |
		timeout 30 gnutls-cli --resume --x509cafile "$tmp/certs/ca.crt" --priority "$2" \
			-p "$port" --sni-hostname "mta-sts.$1" --verify-hostname "mta-sts.$1" \
			127.0.0.1 >"$tmp/out" 2>&1 || true
	grep -q 'This is a resumed session' "$tmp/out" ||
		fail "$1 ($2): the session was not resumed: $(cat "$tmp/out")"
}

resumed=0
for prio in 'NORMAL:-VERS-ALL:+VERS-TLS1.3' 'NORMAL:-VERS-ALL:+VERS-TLS1.2'; do
	for d in a.test b.test; do
		resumed_get "$d" "$prio"
		resumed=$((resumed + 1))
		grep -q '^HTTP/1.1 200 OK' "$tmp/out" ||
			fail "$d ($prio): resumed request not answered 200: $(cat "$tmp/out")"
		# the body: what follows the empty line of the HTTP answer, exactly
		python3 - "$tmp/out" "$tmp/${d%.test}.body" <<'EOF' || fail "$d ($prio): wrong body: $(cat "$tmp/out")"
import sys
out = open(sys.argv[1], 'rb').read()
want = open(sys.argv[2], 'rb').read()
head, sep, rest = out.partition(b'\r\n\r\n')
sys.exit(0 if sep and rest.startswith(want) else 1)
EOF
	done
done

# A ticket of a.test offered with the SNI of b.test is not resumed (RFC 6066 3): a full
# handshake with b.test's certificate; offered to a.test it still is.
for v in 13 12; do
	out=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/resume_cross.py" "$port" \
		"$tmp/certs/ca.crt" mta-sts.a.test mta-sts.b.test "$v") || fail "resume_cross.py $v"
	[ "$out" = "same-name resumed=True HTTP/1.1 200 OK; cross-name resumed=False HTTP/1.1 200 OK cert=['mta-sts.b.test']" ] ||
		fail "TLS 1.$((v - 10)): a ticket across names: $out"
done

got=$(curl -sS --noproxy '*' "http://127.0.0.1:$admin/metrics" |
	sed -n 's/^mtastsd_handshakes_total{result="resumed"} //p')
[ "${got:-0}" -ge "$resumed" ] || fail "resumed handshakes counted: ${got:-none}, want >= $resumed"
echo "ok: $resumed resumed sessions served (TLS 1.3 and 1.2)"
