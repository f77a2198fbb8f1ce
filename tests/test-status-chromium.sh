#!/bin/bash
# test-status-chromium.sh: the admin /status page in headless Chromium, desktop and phone:
# every domain with its mode and id, the fetcher of a real policy fetch, no console errors.
# usage: test-status-chromium.sh MTASTSD_BIN MAKE_CERTS_SH   (exit 77 without chromium)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2

if ! command -v chromium >/dev/null 2>&1; then
	echo "SKIP: chromium not installed (Debian package chromium)"
	exit 77
fi
need_tools curl python3 sha256sum

make_tmp chromium
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports
write_config 86400
policy_body enforce 604800 mail.a.test >"$tmp/a.body"
id_a=$(policy_id enforce 604800 mail.a.test)
id_b=$(policy_id testing 86400 mx.b.test)

start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 15

# a real fetch first, so that the page has a fetcher row
fetch a.test "$tmp/a.body"

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

# the admin page loads did not disturb the server: it runs, and ends cleanly on SIGTERM
stop_server
echo "status page: both domains, ids and the fetcher shown; no console messages; phone 390x844"
