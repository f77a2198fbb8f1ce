#!/bin/bash
# test-status-chromium.sh: the admin /status page in headless Chromium, desktop and phone:
# every domain with its mode and id, the fetcher of a real policy fetch, no console errors;
# at the phone size (390x844) the layout itself: the page as served, with a measuring script
# appended, has every domain section and nothing wider than the viewport (no horizontal
# scrolling).
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
# phone: settled within a virtual 2 s, a window of 390x844 asked for, screenshot
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

# The layout at the phone size. Headless Chromium makes its window at least 500 px wide
# whatever --window-size says (the screenshot above is scaled to 390 px, the layout is not),
# so the page is laid out in an iframe of 390x844 instead. with_layout_probe IN OUT: the page
# IN with a script added before </body> that, once the page has loaded, measures it in its
# viewport and posts the result to the parent page as "key=value" lines: the viewport's
# width (innerWidth) and its width without a scroll bar (clientWidth), the document's and
# the body's scroll widths, the elements sticking out of the viewport (left of 0 or right of
# clientWidth) and the h2 of every domain section.
with_layout_probe() {
	python3 - "$1" "$2" <<'EOF'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
probe = """<script>
addEventListener("load", function () {
  var w = document.documentElement.clientWidth, out = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5))
      out.push(e.tagName.toLowerCase() + "[" + Math.round(r.left) + "," + Math.round(r.right) + "]");
  });
  var h2 = Array.prototype.map.call(document.querySelectorAll("section.domain > h2"),
                                    function (h) { return h.textContent; });
  parent.postMessage("\\ninnerWidth=" + window.innerWidth + "\\nclientWidth=" + w +
    "\\nscrollWidth=" + document.documentElement.scrollWidth +
    "\\nbodyScrollWidth=" + document.body.scrollWidth +
    "\\noutside=" + out.join(" ") +
    "\\nsections=" + h2.join(" ") + "\\n", "*");
});
</script>"""
if page.count("</body>") != 1:
    sys.exit("no single </body> in the page")
open(sys.argv[2], "w", encoding="utf-8").write(page.replace("</body>", probe + "</body>"))
EOF
}

# phone_layout PAGE NAME: PAGE with the probe, in an iframe of 390x844 of a page that writes
# what the probe posts into its DOM (<pre id="layout">), dumped by Chromium; prints the
# probe's key=value lines (none when it did not run).
phone_layout() {
	with_layout_probe "$1" "$tmp/$2.probe.html" || fail "cannot add the probe to $1"
	cat >"$tmp/$2.phone.html" <<EOF
<!DOCTYPE html><html><head><meta charset="utf-8"><title>phone</title>
<style>body{margin:0}iframe{border:0;display:block}</style></head><body>
<iframe src="$2.probe.html" width="390" height="844"></iframe>
<script>
addEventListener("message", function (e) {
  var pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = e.data;
  document.body.appendChild(pre);
});
</script>
</body></html>
EOF
	chromium_run "$tmp/$2.log" --virtual-time-budget=3000 \
		--dump-dom "file://$tmp/$2.phone.html" >"$tmp/$2.dom" ||
		fail "chromium (phone) $2: $(tail -5 "$tmp/$2.log")"
	sed -n '/<pre id="layout">/,/<\/pre>/p' "$tmp/$2.dom" | grep -E '^[a-zA-Z]+=' || true
}

# layout_value LINES KEY: the value of KEY in the probe's lines.
layout_value() {
	sed -n "s/^$2=//p" <<<"$1"
}

# The probe works on this Chromium: a page with a section wider than the phone is caught.
cat >"$tmp/wide.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>wide</title></head><body>
<section class="domain"><h2>wide.test</h2><div style="width:1000px">wide</div></section>
</body></html>
EOF
probe=$(phone_layout "$tmp/wide.html" wide)
[ "$(layout_value "$probe" innerWidth)" = 390 ] ||
	fail "the probe did not run at 390 px: '$probe' $(tail -5 "$tmp/wide.log")"
if ! [ "$(layout_value "$probe" scrollWidth)" -gt 390 ] || [ -z "$(layout_value "$probe" outside)" ]; then
	fail "an element of 1000 px is not seen as overflowing: $probe"
fi
[ "$(layout_value "$probe" sections)" = wide.test ] || fail "the probe does not list sections: $probe"

# The status page as served now, in the phone viewport.
curl -sS --noproxy '*' --max-time 30 -o "$tmp/status.html" "$url" || fail "GET $url"
layout=$(phone_layout "$tmp/status.html" phone-layout)
[ -n "$layout" ] || fail "the layout probe did not run on the status page: $(cat "$tmp/phone-layout.dom")"
[ "$(layout_value "$layout" innerWidth)" = 390 ] || fail "phone viewport is not 390 px wide: $layout"
width=$(layout_value "$layout" clientWidth)
[ "$width" -gt 300 ] || fail "phone viewport: $width px left beside the scroll bar: $layout"
for key in scrollWidth bodyScrollWidth; do
	[ "$(layout_value "$layout" "$key")" -le "$width" ] ||
		fail "the status page scrolls sideways at 390 px ($key): $layout"
done
[ -z "$(layout_value "$layout" outside)" ] ||
	fail "elements of the status page stick out of the 390 px viewport: $layout"
[ "$(layout_value "$layout" sections)" = "a.test b.test" ] ||
	fail "the status page at 390 px does not show a section per domain: $layout"
if [ -n "$(console_lines "$tmp/phone-layout.log")" ]; then
	fail "phone layout: console messages: $(console_lines "$tmp/phone-layout.log")"
fi

# the admin page loads did not disturb the server: it runs, and ends cleanly on SIGTERM
stop_server
printf '%s\n%s\n' "status page: both domains, ids and the fetcher shown; no console messages; in a 390x844 viewport a section per domain and no horizontal overflow:" "$layout"
