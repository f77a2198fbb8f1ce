#!/bin/bash
# test-lazy.sh: lazy certificate loading (cert_cache = N > 0): with a cache of one
# certificate for two domains every other handshake evicts and reloads a pair, and each
# domain must still get its own verified certificate and body; eviction is observed (the
# evicted domain shows as not loaded on /status, and its next handshake reads its files
# again: a pair replaced meanwhile is served); a reload keeps serving; a missing
# certificate file degrades its domain alone (lazy mode checks that the files exist), check
# names its cert = line, and the file put back is picked up by cert_watch; a cache large
# enough for all preloads them after "ready" and then keeps them (a replaced pair is not
# read again).
# usage: test-lazy.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
for tool in curl gnutls-cli certtool python3 sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp lazy
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
# a second pair for mta-sts.a.test from the same CA (make-certs.sh keeps a CA that still
# verifies and makes the leaves missing there)
mkdir "$tmp/gen2"
cp "$tmp/certs/ca.crt" "$tmp/certs/ca.key" "$tmp/certs/intermediate.crt" \
	"$tmp/certs/intermediate.key" "$tmp/gen2/"
sh "$make_certs" -o "$tmp/gen2" a.test >/dev/null
pick_ports
policy_body enforce 604800 mail.a.test >"$tmp/a.body"
policy_body testing 86400 mx.b.test >"$tmp/b.body"

# with_cache N WATCH: the lib.sh configuration with cert_cache = N and cert_watch = WATCH in
# [server] (0 where a replaced pair must be read by a handshake only, not by cert_watch)
with_cache() {
	write_config 86400
	server_keys "cert_cache=$1" "cert_watch=$2"
	grep -q "^cert_cache = $1$" "$tmp/mtastsd.ini" || fail "cert_cache not written"
	grep -q "^cert_watch = $2$" "$tmp/mtastsd.ini" || fail "cert_watch not written"
}

# first_pem FILE: the first PEM certificate in FILE.
first_pem() {
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END CERTIFICATE-----/q}' "$1"
}

# served_leaf DOMAIN: the leaf certificate served for mta-sts.DOMAIN (verified, full
# handshake), in PEM.
served_leaf() {
	gnutls-cli --x509cafile "$tmp/certs/ca.crt" -p "$port" --sni-hostname "mta-sts.$1" \
		--verify-hostname "mta-sts.$1" --print-cert 127.0.0.1 </dev/null >"$tmp/cli.out" 2>&1 ||
		fail "gnutls-cli mta-sts.$1: $(cat "$tmp/cli.out")"
	first_pem "$tmp/cli.out"
}

# install_pair DIR: replaces a.test's key and certificate with DIR's (each renamed into
# place).
install_pair() {
	cp "$1/mta-sts.a.test.key" "$tmp/certs/a.key.new"
	mv -f "$tmp/certs/a.key.new" "$tmp/certs/mta-sts.a.test.key"
	cp "$1/mta-sts.a.test.crt" "$tmp/certs/a.crt.new"
	mv -f "$tmp/certs/a.crt.new" "$tmp/certs/mta-sts.a.test.crt"
}

# cert_status DOMAIN: what /status says of DOMAIN's certificate: "expires ..." while it is
# in memory, "loaded on the first handshake" when it is not.
cert_status() {
	curl -sS --noproxy '*' --max-time 30 "http://127.0.0.1:$admin/status" >"$tmp/status.html" ||
		fail "GET /status"
	sed -n "s|.*<h2>$1</h2>.*<dt>certificate</dt><dd[^>]*>\([^<]*\)</dd>.*|\1|p" "$tmp/status.html"
}

# expect_cert_status DOMAIN TEXT WHY: cert_status DOMAIN starts with TEXT, else fails with WHY.
expect_cert_status() {
	local got
	got=$(cert_status "$1")
	[[ $got == "$2"* ]] || fail "$1: $3 (/status says '$got'): $(cat "$tmp/status.html")"
}

mkdir "$tmp/certs-first"
cp "$tmp/certs/mta-sts.a.test.crt" "$tmp/certs/mta-sts.a.test.key" "$tmp/certs-first/"
first_pem "$tmp/certs/mta-sts.a.test.crt" >"$tmp/a1.pem"
first_pem "$tmp/gen2/mta-sts.a.test.crt" >"$tmp/a2.pem"
cmp -s "$tmp/a1.pem" "$tmp/a2.pem" && fail "test bug: the second a.test leaf is the first"

with_cache 1 0
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30

for _ in 1 2 3; do
	fetch a.test "$tmp/a.body"
	fetch b.test "$tmp/b.body"
done

# Eviction, seen from outside: a.test's certificate is in memory after its handshake ...
fetch a.test "$tmp/a.body"
served_leaf a.test >"$tmp/served.pem"
cmp -s "$tmp/a1.pem" "$tmp/served.pem" || fail "a.test: not its certificate: $(cat "$tmp/cli.out")"
expect_cert_status a.test "expires " "certificate not in memory after its handshake"
# ... and b.test's handshake takes the only place: a.test's is no longer in memory ...
fetch b.test "$tmp/b.body"
expect_cert_status a.test "loaded on the first handshake" \
	"certificate still in memory after b.test's handshake with a cache of 1"
expect_cert_status b.test "expires " "certificate not in memory after its handshake"
# ... so a.test's next handshake reads its files again: a pair replaced meanwhile is the one
# served (nothing else reloads: cert_watch = 0, no signal)
install_pair "$tmp/gen2"
served_leaf a.test >"$tmp/served.pem"
cmp -s "$tmp/a2.pem" "$tmp/served.pem" ||
	fail "a.test was not loaded again after its eviction (the replaced pair is not served)"
fetch a.test "$tmp/a.body"
grep -q 'preloaded' "$tmp/server.log" && fail "preloaded with a cache smaller than the set"
grep -q 'reloading' "$tmp/server.log" && fail "a reload happened: $(cat "$tmp/server.log")"

# The same with cert_watch = 1, for the file put back below.
stop_server
with_cache 1 1
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"

# A reload keeps serving both (certificates loaded again or taken over).
from=$(log_size)
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 30 "$from"
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"

# A missing file degrades its domain alone (the reload goes through), check names its line,
# and putting the file back (cert_watch) brings the domain back without a signal.
line=$(grep -n '^cert = certs/mta-sts.b.test.crt$' "$tmp/mtastsd.ini" | cut -d: -f1)
mv "$tmp/certs/mta-sts.b.test.crt" "$tmp/certs/moved.crt"
from=$(log_size)
kill -HUP "$server_pid"
wait_log "mtastsd: reloaded" 30 "$from"
wait_log "b.test: certificate degraded (missing): $tmp/certs/mta-sts.b.test.crt" 5 "$from"
fetch a.test "$tmp/a.body"
"$bin" check -c "$tmp/mtastsd.ini" >"$tmp/check.out" 2>&1 && fail "check passed with a missing file"
grep -q "^$tmp/mtastsd.ini:$line: $tmp/certs/mta-sts.b.test.crt: " "$tmp/check.out" ||
	fail "check does not name line $line: $(cat "$tmp/check.out")"
from=$(log_size)
mv "$tmp/certs/moved.crt" "$tmp/certs/mta-sts.b.test.crt"
wait_log "b.test: certificate recovered" 30 "$from"
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"

# Room for every certificate: they are loaded in the background after start, and then
# kept: a pair replaced afterwards is not read again (so that what the eviction check above
# saw was an eviction).
stop_server
with_cache 10 0
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
wait_log "preloaded 2 certificates" 30
served_leaf a.test >"$tmp/served.pem"
cmp -s "$tmp/a2.pem" "$tmp/served.pem" || fail "a.test: not the preloaded certificate"
install_pair "$tmp/certs-first"
fetch b.test "$tmp/b.body"
served_leaf a.test >"$tmp/served.pem"
cmp -s "$tmp/a2.pem" "$tmp/served.pem" ||
	fail "a.test's certificate was read again with room for every certificate"
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"
grep -q 'cannot load' "$tmp/server.log" && fail "a certificate failed to load: $(cat "$tmp/server.log")"
echo "ok: lazy loading with eviction (seen on /status and by a reread pair), reload, missing file and preload"
