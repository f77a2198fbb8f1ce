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

work=$(mktemp -d /tmp/mtastsd-replicas.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

"$make_certs" -o "$work/certs" a.test b.test c.test >/dev/null

# One config, written once; each replica gets a copy in its own directory with its
# own copy of the certificates (relative paths), differing only in the ports.
write_config() { # DIR PORT ADMIN_PORT
	mkdir -p "$1"
	cp -r "$work/certs" "$1/certs"
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
	write_config "$work/replica$r" "$port" "$admin"
done

# The records: a function of the served bytes only, not of paths, ports or time.
for fmt in zone json; do
	"$mtastsd" records -c "$work/replica1/mtastsd.ini" --format "$fmt" >"$work/r1.$fmt" 2>/dev/null
	"$mtastsd" records -c "$work/replica2/mtastsd.ini" --format "$fmt" >"$work/r2.$fmt" 2>/dev/null
	cmp -s "$work/r1.$fmt" "$work/r2.$fmt" || fail "records --format $fmt differ between replicas"
	[ -s "$work/r1.$fmt" ] || fail "records --format $fmt printed nothing"
done
grep -q '^_mta-sts\.a\.test\. 3600 IN TXT "v=STSv1; id=[0-9a-f]\{32\}"$' "$work/r1.zone" ||
	fail "no _mta-sts TXT for a.test in: $(cat "$work/r1.zone")"

# Both serving: every domain's body identical, and its id the one records printed.
for r in 1 2; do
	"$mtastsd" serve -c "$work/replica$r/mtastsd.ini" 2>"$work/replica$r.log" &
	pids+=("$!")
done
for r in 1 2; do
	for _ in $(seq 100); do
		grep -q 'mtastsd: ready' "$work/replica$r.log" && break
		sleep 0.1
	done
	grep -q 'mtastsd: ready' "$work/replica$r.log" || fail "replica $r did not start: $(cat "$work/replica$r.log")"
done

for d in a.test b.test c.test; do
	for r in 1 2; do
		port=${ports[$(((r - 1) * 2))]}
		curl -sS --fail --cacert "$work/certs/ca.crt" \
			--resolve "mta-sts.$d:$port:127.0.0.1" \
			"https://mta-sts.$d:$port/.well-known/mta-sts.txt" >"$work/$d.$r"
	done
	cmp -s "$work/$d.1" "$work/$d.2" || fail "$d: the replicas serve different bytes"
	id=$(sha256sum "$work/$d.1" | cut -c1-32)
	grep -q "^_mta-sts\.$d\. 3600 IN TXT \"v=STSv1; id=$id\"$" "$work/r1.zone" ||
		fail "$d: served bytes have id $id, which records does not print"
done

for r in 1 2; do
	curl -sS --fail "http://127.0.0.1:${ports[$(((r - 1) * 2 + 1))]}/records" >"$work/admin.$r"
done
cmp -s "$work/admin.1" "$work/admin.2" || fail "/records differ between replicas"
cmp -s "$work/admin.1" "$work/r1.zone" || fail "/records differs from mtastsd records"

echo "ok: two replicas agree on records and served bytes for 3 domains"
