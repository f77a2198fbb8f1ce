#!/bin/bash
# test-testssl.sh: testssl.sh (Debian's) against the real server on the example
# configuration: protocols, cipher suites, forward secrecy, server defaults and every
# vulnerability check. Fails on any finding of MEDIUM severity or worse, and unless SSLv2,
# SSLv3, TLS 1.0 and 1.1 are all "not offered" and TLS 1.2 and 1.3 offered. Findings on the
# throwaway certificates themselves (an untrusted test CA without CRL or OCSP, no CAA
# record) are not the server's and are left out.
# usage: test-testssl.sh MTASTSD_BIN MAKE_CERTS_SH SOURCE_ROOT
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
root=$3
need_tools testssl openssl

make_tmp testssl
mkdir -p "$tmp/config"
sh "$make_certs" -o "$tmp/certs-example/out" >/dev/null
port=$(free_port)
sed "s/^listen = 127.0.0.1:8443$/listen = 127.0.0.1:$port/" "$root/config/example.ini" \
	>"$tmp/config/example.ini"
grep -q "^listen = 127.0.0.1:$port$" "$tmp/config/example.ini" || fail "listen not rewritten"
start_server "$tmp/server.log" "$bin" serve -c "$tmp/config/example.ini"
wait_log "ready" 30

testssl --quiet --color 0 --warnings off --ip 127.0.0.1 --jsonfile "$tmp/testssl.json" \
	-p -s -f -U -S "mta-sts.example.com:$port" >"$tmp/testssl.txt" 2>&1 ||
	[ -s "$tmp/testssl.json" ] || fail "testssl did not run: $(tail -20 "$tmp/testssl.txt")"
/usr/bin/python3 - "$tmp/testssl.json" <<'PY' || fail "testssl findings (above); full output: $(cat "$tmp/testssl.txt")"
import json, sys
findings = json.load(open(sys.argv[1]))
by_id = {f["id"]: f for f in findings}
bad = [f for f in findings
       if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")
       and not f["id"].startswith(("cert_", "DNS_"))]
for f in bad:
    print("%s %s: %s" % (f["severity"], f["id"], f["finding"]))
for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
    if proto not in by_id or "not offered" not in by_id[proto]["finding"]:
        print("%s: %s" % (proto, by_id.get(proto, {}).get("finding", "not tested")))
        bad.append(proto)
for proto in ("TLS1_2", "TLS1_3"):
    if proto not in by_id or not by_id[proto]["finding"].startswith("offered"):
        print("%s: %s" % (proto, by_id.get(proto, {}).get("finding", "not tested")))
        bad.append(proto)
checked = sum(1 for f in findings if f["severity"] == "OK")
if checked < 20:
    print("only %d checks passed: testssl did not test much" % checked)
    bad.append("coverage")
sys.exit(1 if bad else 0)
PY
echo "testssl: no finding of MEDIUM or worse, TLS 1.2 and 1.3 only"
