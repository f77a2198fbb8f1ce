#!/bin/bash
# test-replicas.sh: two instances started from the same config, in different
# directories on different ports (as replicas of a fleet are), agree on every id: the
# same `records` output (zone and JSON), the same bytes served for every domain, and the
# same /records from their admin listeners.
# usage: test-replicas.sh MTASTSD MAKE_CERTS
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mtastsd=$1
make_certs=$2
for tool in curl certtool python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp replicas

"$make_certs" -o "$tmp/certs" a.test b.test c.test >/dev/null

# One config, written once; each replica gets a copy in its own directory with its
# own copy of the certificates (relative paths), differing only in the ports.
write_replica_config() { # DIR PORT ADMIN_PORT
	mkdir -p "$1"
	cp -r "$tmp/certs" "$1/certs"
	cat >"$1/mtastsd.ini" <<EOF
[server]
listen = 127.0.0.1:$2
admin_listen = 127.0.0.1:$3
access_log = no

[domain a.test]
mode = enforce
mx = mail.a.test
mx = *.backup.a.test
max_age = 604800
cert = certs/mta-sts.a.test.crt
key = certs/mta-sts.a.test.key
tlsrpt = mailto:tlsrpt@a.test

[domain b.test]
mode = testing
mx = mx1.b.test
max_age = 86400
cert = certs/mta-sts.b.test.crt
key = certs/mta-sts.b.test.key

[domain c.test]
mode = none
mx = mx.c.test
max_age = 86400
cert = certs/mta-sts.c.test.crt
key = certs/mta-sts.c.test.key
EOF
}

ports=()
for r in 1 2; do
	port=$(free_port)
	admin=$(free_port)
	ports+=("$port" "$admin")
	write_replica_config "$tmp/replica$r" "$port" "$admin"
done

# The records: a function of the served bytes only, not of paths, ports or time.
for fmt in zone json; do
	"$mtastsd" records -c "$tmp/replica1/mtastsd.ini" --format "$fmt" >"$tmp/r1.$fmt" 2>/dev/null
	"$mtastsd" records -c "$tmp/replica2/mtastsd.ini" --format "$fmt" >"$tmp/r2.$fmt" 2>/dev/null
	cmp -s "$tmp/r1.$fmt" "$tmp/r2.$fmt" || fail "records --format $fmt differ between replicas"
	[ -s "$tmp/r1.$fmt" ] || fail "records --format $fmt printed nothing"
done
grep -q '^_mta-sts\.a\.test\. 3600 IN TXT "v=STSv1; id=[0-9a-f]\{32\}"$' "$tmp/r1.zone" ||
	fail "no _mta-sts TXT for a.test in: $(cat "$tmp/r1.zone")"

# Both serving: every domain's body identical, and its id the one records printed. Each
# must end cleanly at exit (lib.sh).
for r in 1 2; do
	start_server "$tmp/replica$r.log" "$mtastsd" serve -c "$tmp/replica$r/mtastsd.ini"
	wait_log 'mtastsd: ready' 10
done

for d in a.test b.test c.test; do
	for r in 1 2; do
		port=${ports[$(((r - 1) * 2))]}
		curl -sS --fail --cacert "$tmp/certs/ca.crt" \
			--resolve "mta-sts.$d:$port:127.0.0.1" \
			"https://mta-sts.$d:$port/.well-known/mta-sts.txt" >"$tmp/$d.$r"
	done
	cmp -s "$tmp/$d.1" "$tmp/$d.2" || fail "$d: the replicas serve different bytes"
	id=$(sha256sum "$tmp/$d.1" | cut -c1-32)
	grep -q "^_mta-sts\.$d\. 3600 IN TXT \"v=STSv1; id=$id\"$" "$tmp/r1.zone" ||
		fail "$d: served bytes have id $id, which records does not print"
done

for r in 1 2; do
	curl -sS --fail "http://127.0.0.1:${ports[$(((r - 1) * 2 + 1))]}/records" >"$tmp/admin.$r"
done
cmp -s "$tmp/admin.1" "$tmp/admin.2" || fail "/records differ between replicas"
cmp -s "$tmp/admin.1" "$tmp/r1.zone" || fail "/records differs from mtastsd records"

echo "ok: two replicas agree on records and served bytes for 3 domains"
