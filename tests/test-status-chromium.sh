#!/bin/bash
# test-status-chromium.sh: the admin /status page in headless Chromium, desktop and phone:
# every domain with its mode and id, the fetcher of a real policy fetch, no console errors.
# usage: test-status-chromium.sh MTASTSD_BIN MAKE_CERTS_SH   (exit 77 without chromium)
set -euo pipefail

bin=$1
make_certs=$2

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if ! command -v chromium >/dev/null 2>&1; then
	echo "SKIP: chromium not installed (Debian package chromium)"
	exit 77
fi
for tool in curl python3 sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtastsd-chromium.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_log NEEDLE SECONDS: polls the server log until NEEDLE appears or the server exits.
wait_log() {
	local deadline=$((SECONDS + $2))
	while ! grep -qF -- "$1" "$tmp/server.log"; do
		kill -0 "$server_pid" 2>/dev/null || fail "mtastsd exited: $(cat "$tmp/server.log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "no '$1' in the log: $(cat "$tmp/server.log")"
		sleep 0.05
	done
}

# id FILE: the policy id computed independently (first 32 hex digits of its SHA-256).
id() {
	sha256sum <"$1" | cut -c1-32
}

sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
port=$(free_port)
admin=$(free_port)
while [ "$admin" = "$port" ]; do
	admin=$(free_port)
done
cat >"$tmp/mtastsd.ini" <<EOF
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
mode = testing
mx = mx.b.test
max_age = 86400
cert = certs/mta-sts.b.test.crt
key = certs/mta-sts.b.test.key
EOF
printf 'version: STSv1\r\nmode: enforce\r\nmx: mail.a.test\r\nmax_age: 604800\r\n' >"$tmp/a.body"
printf 'version: STSv1\r\nmode: testing\r\nmx: mx.b.test\r\nmax_age: 86400\r\n' >"$tmp/b.body"
id_a=$(id "$tmp/a.body")
id_b=$(id "$tmp/b.body")

"$bin" serve -c "$tmp/mtastsd.ini" >"$tmp/server.log" 2>&1 &
server_pid=$!
wait_log "mtastsd: ready" 15

# a real fetch first, so that the page has a fetcher row
curl -sS --noproxy '*' --max-time 10 --cacert "$tmp/certs/ca.crt" -o "$tmp/a.got" \
	--resolve "mta-sts.a.test:$port:127.0.0.1" "https://mta-sts.a.test:$port/.well-known/mta-sts.txt"
cmp -s "$tmp/a.body" "$tmp/a.got" || fail "policy of a.test: $(cat -A "$tmp/a.got")"

# chromium_run LOG ARGS...: headless Chromium with a throwaway profile; stdout is the DOM.
chromium_run() {
	local log=$1 profile
	shift
	profile=$(mktemp -d "$tmp/profile.XXXXXX")
	timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" 2>"$log"
}

# console_lines LOG: what the page logged to its console (INFO:CONSOLE(N)] or :CONSOLE:N]).
console_lines() {
	grep -E 'CONSOLE[(:][0-9]+' "$1" || true
}

# The detector works on this Chromium: a page with a console error is caught.
chromium_run "$tmp/probe.log" --dump-dom \
	'data:text/html,<title>probe</title><script>console.error("probe-error-1234")</script>' \
	>"$tmp/probe.html" || fail "chromium could not load a data: URL: $(tail -5 "$tmp/probe.log")"
console_lines "$tmp/probe.log" | grep -q 'probe-error-1234' ||
	fail "a console error is not visible in Chromium's log: $(cat "$tmp/probe.log")"

url="http://127.0.0.1:$admin/status"

# desktop
chromium_run "$tmp/desktop.log" --dump-dom "$url" >"$tmp/desktop.html" ||
	fail "chromium --dump-dom $url: $(tail -5 "$tmp/desktop.log")"
# phone: layout settled within a virtual 2 s, 390x844 viewport, screenshot
chromium_run "$tmp/phone.log" --virtual-time-budget=2000 --window-size=390,844 \
	--screenshot="$tmp/phone.png" --dump-dom "$url" >"$tmp/phone.html" ||
	fail "chromium (phone) $url: $(tail -5 "$tmp/phone.log")"

for view in desktop phone; do
	dom=$tmp/$view.html
	grep -q '<title>mtastsd status</title>' "$dom" || fail "$view: not the status page: $(cat "$dom")"
	for d in "a.test enforce $id_a" "b.test testing $id_b"; do
		read -r domain mode want <<<"$d"
		grep -qF "<h2>$domain</h2>" "$dom" || fail "$view: $domain missing"
		grep -qF "<dt>mode</dt><dd>$mode</dd><dt>id</dt><dd><code>$want</code>" "$dom" ||
			fail "$view: $domain without mode $mode and id $want: $(cat "$dom")"
	done
	grep -qF "127.0.0.1 TLS 1.3 <code>$id_a</code>" "$dom" ||
		fail "$view: the fetch of a.test is not listed: $(cat "$dom")"
	if [ -n "$(console_lines "$tmp/$view.log")" ]; then
		fail "$view: console messages: $(console_lines "$tmp/$view.log")"
	fi
done

# The screenshot is a PNG of the phone viewport (IHDR width and height, big-endian).
[ -s "$tmp/phone.png" ] || fail "no screenshot"
size=$(python3 - "$tmp/phone.png" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read(24)
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
print("%dx%d" % struct.unpack(">II", data[16:24]))
EOF
)
[ "$size" = "390x844" ] || fail "screenshot is $size, want 390x844"

# the admin page loads did not disturb the server
kill -0 "$server_pid" 2>/dev/null || fail "mtastsd died: $(cat "$tmp/server.log")"
echo "status page: both domains, ids and the fetcher shown; no console messages; phone 390x844"
