#!/bin/bash
# test-acme-harness.sh: the ACME test harness works, before any test relies on it:
# pebble.sh starts pebble (directory with newAccount, newNonce, newOrder; its root is a CA;
# the nonce rejection rate set), pebble_verify_chain accepts a chain issued under pebble's
# intermediate and refuses it once a restart changed the root, pebble_down and
# pebble_restart stop and bring back the CA; hostile_acme.py answers /dir with non-JSON
# (garbage), a 302 to http:// (redirect), malformed then badNonce (problem), and resets
# connections (reset). mtastsd itself is not run.
# usage: test-acme-harness.sh MTASTSD MAKE_CERTS (both unused)
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=pebble.sh
source "$here/pebble.sh"

for tool in pebble pebble-challtestsrv openssl curl python3 awk; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp acme-harness

# --- pebble
pebble_up "$(free_port)" "$(free_port)" 0
curl -sSf --noproxy '*' --max-time 10 --cacert "$PEBBLE_CA" -o "$tmp/dir.json" "$PEBBLE_DIR" ||
	fail "GET $PEBBLE_DIR"
python3 - "$tmp/dir.json" <<'EOF' || fail "directory: $(cat "$tmp/dir.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("newAccount", "newNonce", "newOrder"):
    assert isinstance(d.get(k), str) and d[k].startswith("https://localhost:"), k
EOF
openssl x509 -in "$PEBBLE_ROOT" -noout -text | grep -q 'CA:TRUE' || fail "root.pem is not a CA"
grep -q 'Configured to reject 0% of good nonces' "$tmp/pebble/pebble.log" ||
	fail "NONCEREJECT 0 not applied: $(cat "$tmp/pebble/pebble.log")"
echo "ok: pebble serves $PEBBLE_DIR, root $(openssl x509 -in "$PEBBLE_ROOT" -noout -subject)"

# A leaf signed with pebble's intermediate key (management API), as an order would give:
# leaf + intermediate verifies against the root, the leaf alone does not.
curl -sSf --noproxy '*' --max-time 10 --cacert "$PEBBLE_CA" -o "$tmp/int.key" \
	"$PEBBLE_MGMT/intermediate-keys/0" || fail "GET intermediate key"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
	-out "$tmp/leaf.csr" -subj /CN=example.test 2>"$tmp/openssl.log" || fail "$(cat "$tmp/openssl.log")"
printf 'subjectAltName=DNS:example.test\nextendedKeyUsage=serverAuth\n' >"$tmp/leaf.cnf"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/pebble/intermediate.pem" -CAkey "$tmp/int.key" \
	-CAcreateserial -days 1 -extfile "$tmp/leaf.cnf" -out "$tmp/leaf.pem" 2>"$tmp/openssl.log" ||
	fail "$(cat "$tmp/openssl.log")"
cat "$tmp/leaf.pem" "$tmp/pebble/intermediate.pem" >"$tmp/chain.pem"
pebble_verify_chain "$tmp/chain.pem" || fail "leaf + intermediate does not verify"
! pebble_verify_chain "$tmp/leaf.pem" 2>/dev/null || fail "a leaf without its intermediate verifies"
echo "ok: pebble_verify_chain"

# --- restart: a new root, under which the old chain no longer verifies
old_root=$(openssl x509 -in "$PEBBLE_ROOT" -noout -fingerprint -sha256)
old_pid=$PEBBLE_PID
pebble_restart
new_root=$(openssl x509 -in "$PEBBLE_ROOT" -noout -fingerprint -sha256)
[ "$old_root" != "$new_root" ] || fail "pebble_restart kept the root: $new_root"
[ "$PEBBLE_PID" != "$old_pid" ] || fail "pebble_restart kept pid $old_pid"
! pebble_verify_chain "$tmp/chain.pem" 2>/dev/null || fail "the old chain verifies under the new root"
echo "ok: pebble_restart gives a new root"

# --- down, then up again (a CA that is down when the client starts)
pebble_down
[ -z "$PEBBLE_PID" ] || fail "PEBBLE_PID after pebble_down: $PEBBLE_PID"
! curl -s --noproxy '*' --max-time 5 --cacert "$PEBBLE_CA" -o /dev/null "$PEBBLE_DIR" ||
	fail "$PEBBLE_DIR answers after pebble_down"
pebble_restart
curl -sSf --noproxy '*' --max-time 10 --cacert "$PEBBLE_CA" -o /dev/null "$PEBBLE_DIR" ||
	fail "$PEBBLE_DIR after pebble_down + pebble_restart"
[ "$(grep -c 'Configured to reject 0% of good nonces' "$tmp/pebble/pebble.log")" = 3 ] ||
	fail "the restarts did not keep NONCEREJECT 0: $(cat "$tmp/pebble/pebble.log")"
echo "ok: pebble_down, pebble_restart"

# --- hostile_acme.py, with pebble's API certificate (trusted by PEBBLE_CA)

# hostile MODE: starts hostile_acme.py in MODE on a free port (hport), logs in
# $tmp/hostile-MODE.{out,log}; waits up to 10 s for "ready".
hostile() {
	local deadline=$((SECONDS + 10)) pid
	hport=$(free_port)
	python3 "$here/hostile_acme.py" "$tmp/pebble/cert.pem" "$tmp/pebble/key.pem" "$hport" "$1" \
		>"$tmp/hostile-$1.out" 2>"$tmp/hostile-$1.log" &
	pid=$!
	kill_at_exit "$pid"
	until grep -qx ready "$tmp/hostile-$1.out"; do
		lib_running "$pid" || fail "hostile_acme.py $1 exited: $(cat "$tmp/hostile-$1.log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "hostile_acme.py $1 not ready"
		sleep 0.05
	done
}

# hget ARGS... URL: curl of a hostile server, trusting PEBBLE_CA, answer in $tmp/h.out.
hget() {
	curl -sS --noproxy '*' --max-time 10 --cacert "$PEBBLE_CA" -o "$tmp/h.out" "$@"
}

hostile garbage
[ "$(hget -w '%{http_code}' "https://localhost:$hport/dir")" = 200 ] || fail "garbage: /dir not 200"
! python3 -c 'import json, sys; json.load(open(sys.argv[1], "rb"))' "$tmp/h.out" 2>/dev/null ||
	fail "garbage: /dir is JSON: $(cat -A "$tmp/h.out")"
grep -q 'GET /dir' "$tmp/hostile-garbage.log" || fail "garbage: no request logged"
echo "ok: hostile garbage"

hostile redirect
got=$(hget -w '%{http_code} %{redirect_url}' "https://localhost:$hport/dir")
[ "$got" = "302 http://localhost:$hport/dir" ] || fail "redirect: $got"
echo "ok: hostile redirect"

hostile problem
hget "https://localhost:$hport/dir"
grep -q "\"newAccount\": \"https://localhost:$hport/account\"" "$tmp/h.out" ||
	fail "problem: directory $(cat "$tmp/h.out")"
for want in malformed badNonce badNonce; do
	hget -D "$tmp/h.head" -X POST -H 'Content-Type: application/jose+json' -d '{}' \
		"https://localhost:$hport/account"
	grep -q "urn:ietf:params:acme:error:$want" "$tmp/h.out" || fail "problem: want $want: $(cat "$tmp/h.out")"
	grep -qi '^replay-nonce: ' "$tmp/h.head" || fail "problem: no Replay-Nonce"
done
echo "ok: hostile problem"

hostile reset
! hget "https://localhost:$hport/dir" 2>/dev/null || fail "reset: /dir answered"
echo "ok: hostile reset"
