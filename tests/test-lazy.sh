#!/bin/bash
# test-lazy.sh: lazy certificate loading (cert_cache = N > 0): with a cache of one
# certificate for two domains every other handshake evicts and reloads a pair, and each
# domain must still get its own verified certificate and body; a reload keeps serving;
# a missing certificate file degrades its domain alone (lazy mode checks that the files
# exist), check names its cert = line, and the file put back is picked up by cert_watch;
# a cache large enough for all preloads them after "ready".
# usage: test-lazy.sh MTASTSD_BIN MAKE_CERTS_SH
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
make_certs=$2
for tool in curl python3 sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done

make_tmp lazy
sh "$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
pick_ports
policy_body enforce 604800 mail.a.test >"$tmp/a.body"
policy_body testing 86400 mx.b.test >"$tmp/b.body"

# with_cache N: the lib.sh configuration with cert_cache = N in [server]
with_cache() {
	write_config 86400
	sed -i "s/^\[server\]$/[server]\ncert_cache = $1\ncert_watch = 1/" "$tmp/mtastsd.ini"
	grep -q "^cert_cache = $1$" "$tmp/mtastsd.ini" || fail "cert_cache not written"
}

with_cache 1
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30

for _ in 1 2 3; do
	fetch a.test "$tmp/a.body"
	fetch b.test "$tmp/b.body"
done
grep -q 'preloaded' "$tmp/server.log" && fail "preloaded with a cache smaller than the set"

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

# Room for every certificate: they are loaded in the background after start.
stop_server
with_cache 10
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "mtastsd: ready" 30
wait_log "preloaded 2 certificates" 30
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"
grep -q 'cannot load' "$tmp/server.log" && fail "a certificate failed to load: $(cat "$tmp/server.log")"
echo "ok: lazy loading with eviction, reload, missing file and preload"
