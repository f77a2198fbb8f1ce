#!/bin/bash
# test-tlsrpt-http.sh: TLS reports posted over real HTTPS to the real server (tlsrpt =
# self). SQLite in state_dir: reports shaped like large senders' (one per policy domain,
# gzip and JSON) are stored (201) and once only (200 for a duplicate); a report naming
# another tenant's domain or an unknown one (403), malformed JSON, a wrong type, a negative
# count, a bad date (400), a gzip bomb (400, quickly), an oversized body (413, declared or
# chunked), another media type (415), GET (405), a domain without tlsrpt = self (404), a
# slow body (cut at request_timeout) and a client over tlsrpt_rate_limit (429 with
# Retry-After) are refused, nothing of them stored; a full state_dir is a 503 with nothing
# half-stored, and the same report is stored once there is room. `records` prints the
# https address; `report`, /status (the last 7 days, the testing verdict) and /metrics
# agree with totals computed here from what was posted. PostgreSQL: two replicas writing
# to one throwaway cluster show one consistent summary; a stopped PostgreSQL is a 503 and
# the report is stored when it is back.
# usage: test-tlsrpt-http.sh MTASTSD_BIN MAKE_CERTS_SH SOURCE_ROOT PG_BINDIR
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "${MTASTSD_TLSRPT_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || fail "needs root: a tmpfs state_dir in a mount namespace"
	MTASTSD_TLSRPT_NS=1 exec unshare --mount -- "$0" "$@"
fi

bin=$1
make_certs=$2
fixtures=$3/tests/tlsrpt
pg_bin=$4
post_py=$(dirname "${BASH_SOURCE[0]}")/tlsrpt_post.py
need_tools curl certtool gzip setpriv

make_tmp tlsrpt-http
chmod 0755 "$tmp"
sh "$make_certs" -o "$tmp/certs" example.com example.net other.example >/dev/null
mkdir -m 0700 "$tmp/state"
pick_ports

py() {
	/usr/bin/python3 "$post_py" "$@" || fail "tlsrpt_post.py $*"
}

# config FILE STATE_DIR [KEY=VALUE...]: example.com and example.net in testing with tlsrpt =
# self, other.example in enforce without; the [server] keys added.
config() {
	local file=$1 state=$2 kv
	shift 2
	{
		echo "[server]"
		echo "listen = 127.0.0.1:$port"
		echo "admin_listen = 127.0.0.1:$admin"
		echo "state_dir = $state"
		echo "request_timeout = 3"
		for kv in "$@"; do
			echo "${kv%%=*} = ${kv#*=}"
		done
		for d in example.com example.net other.example; do
			echo
			echo "[domain $d]"
			if [ "$d" = other.example ]; then
				echo "mode = enforce"
			else
				echo "mode = testing"
				echo "tlsrpt = self"
				echo "tlsrpt = mailto:tlsrpt@$d"
			fi
			echo "mx = mx1.$d"
			echo "max_age = 604800"
			echo "cert = $tmp/certs/mta-sts.$d.crt"
			echo "key = $tmp/certs/mta-sts.$d.key"
		done
	} >"$file"
}

# post WANT DOMAIN TYPE FILE [PORT]: POST FILE as application/tlsrpt+TYPE to
# https://mta-sts.DOMAIN/tlsrpt; the status must be WANT (answer in $tmp/answer, headers
# in $tmp/headers).
post() {
	local want=$1 domain=$2 type=$3 file=$4 p=${5:-$port} got
	got=$(curl -sS --noproxy '*' --max-time 30 --cacert "$tmp/certs/ca.crt" \
		--resolve "mta-sts.$domain:$p:127.0.0.1" -X POST \
		-H "Content-Type: application/tlsrpt+$type" --data-binary "@$file" \
		-D "$tmp/headers" -o "$tmp/answer" -w '%{http_code}' \
		"https://mta-sts.$domain:$p/tlsrpt") || fail "POST $file to $domain: curl exit $?"
	[ "$got" = "$want" ] || fail "POST $file to $domain: $got, want $want: $(cat "$tmp/answer")"
}

# post_after_503 WANT DOMAIN TYPE FILE [PORT]: post, answered 503 for up to 10 s (the store
# failed a moment ago: reports are answered 503 at once for 5 s), then WANT.
post_after_503() {
	local deadline=$((SECONDS + 10))
	while ! (post "$@") 2>/dev/null; do
		grep -q "unavailable" "$tmp/answer" || post "$@"
		[ "$SECONDS" -lt "$deadline" ] || post "$@"
		sleep 0.5
	done
}

metric() {
	curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:${2:-$admin}/metrics" |
		sed -n "s/^$1 //p"
}

# status DOMAIN [ADMIN_PORT]: the /status page of DOMAIN.
status() {
	curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:${2:-$admin}/status?domain=$1"
}

# The reports, one per policy domain as senders send them.
for f in google microsoft other; do
	py split "$fixtures/$f.json" example.com "$tmp/$f.com.json"
	py split "$fixtures/$f.json" example.net "$tmp/$f.net.json"
	gzip -kn "$tmp/$f.com.json" "$tmp/$f.net.json"
done

config "$tmp/mtastsd.ini" "$tmp/state"
"$bin" records -c "$tmp/mtastsd.ini" >"$tmp/records"
grep -qF '_smtp._tls.example.com. 86400 IN TXT "v=TLSRPTv1; rua=https://mta-sts.example.com/tlsrpt,mailto:tlsrpt@example.com"' \
	"$tmp/records" || fail "records: $(cat "$tmp/records")"
if grep -q '_smtp._tls.other.example' "$tmp/records"; then
	fail "a TLS-RPT record for other.example, which has no tlsrpt"
fi
start_server "$tmp/server.log" "$bin" serve -c "$tmp/mtastsd.ini"
wait_log "ready" 30

# --- stored, once ----------------------------------------------------------------------
post 201 example.com gzip "$tmp/google.com.json.gz"
post 201 example.com json "$tmp/microsoft.com.json"
post 201 example.net gzip "$tmp/google.net.json.gz"
post 201 example.net json "$tmp/microsoft.net.json"
post 201 example.net gzip "$tmp/other.net.json.gz"
post 200 example.com gzip "$tmp/google.com.json.gz"
grep -q "already stored" "$tmp/answer" || fail "duplicate: $(cat "$tmp/answer")"
post 200 example.com json "$tmp/google.com.json" # the same report, another encoding

# --- refused, nothing stored -------------------------------------------------------------
# the whole Google report names example.net too: not example.com's to post
"/usr/bin/python3" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["report-id"]+=".whole"; print(json.dumps(d))' \
	"$fixtures/google.json" >"$tmp/whole.json"
post 403 example.com json "$tmp/whole.json"
grep -q "example.net is not example.com" "$tmp/answer" || fail "foreign: $(cat "$tmp/answer")"
post 403 example.net json "$tmp/other.com.json" # example.com's report at example.net
py bad unknown "$tmp/unknown.json"
post 403 example.com json "$tmp/unknown.json"
for kind in syntax type negative date; do
	py bad "$kind" "$tmp/$kind.json"
	post 400 example.com json "$tmp/$kind.json"
done
py bomb "$tmp/bomb.gz"
start=$SECONDS
post 400 example.com gzip "$tmp/bomb.gz"
[ $((SECONDS - start)) -le 5 ] || fail "the gzip bomb took $((SECONDS - start)) s"
head -c $((1024 * 1024 + 1)) /dev/urandom >"$tmp/huge.gz"
post 413 example.com gzip "$tmp/huge.gz"
# the same, chunked: no length declared, the cap holds as the body comes in
got=$(/usr/bin/python3 "$post_py" chunked "$port" "$tmp/certs/ca.crt" mta-sts.example.com "$tmp/huge.gz") ||
	fail "chunked post"
[ "$got" = 413 ] || fail "chunked oversized body: $got, want 413"
got=$(/usr/bin/python3 "$post_py" chunked "$port" "$tmp/certs/ca.crt" mta-sts.example.com "$tmp/other.com.json.gz") ||
	fail "chunked post"
[ "$got" = 201 ] || fail "chunked valid report: $got, want 201"
got=$(curl -sS --noproxy '*' --max-time 10 --cacert "$tmp/certs/ca.crt" \
	--resolve "mta-sts.example.com:$port:127.0.0.1" -X POST -H "Content-Type: application/json" \
	--data-binary "@$tmp/google.com.json" -o /dev/null -w '%{http_code}' "https://mta-sts.example.com:$port/tlsrpt")
[ "$got" = 415 ] || fail "application/json: $got, want 415"
got=$(curl -sS --noproxy '*' --max-time 10 --cacert "$tmp/certs/ca.crt" \
	--resolve "mta-sts.example.com:$port:127.0.0.1" -D "$tmp/headers" -o /dev/null -w '%{http_code}' \
	"https://mta-sts.example.com:$port/tlsrpt")
[ "$got" = 405 ] || fail "GET /tlsrpt: $got, want 405"
grep -qi '^Allow: POST' "$tmp/headers" || fail "405 without Allow: POST: $(cat "$tmp/headers")"
post 404 other.example json "$tmp/google.com.json"
start=$SECONDS
/usr/bin/python3 "$post_py" slow "$port" "$tmp/certs/ca.crt" mta-sts.example.com 8 >"$tmp/slow.out" ||
	fail "slow body: $(cat "$tmp/slow.out")"
[ $((SECONDS - start)) -ge 2 ] || fail "slow body cut before request_timeout: $(cat "$tmp/slow.out")"
# policy fetches go on meanwhile, and after
policy_body testing 604800 mx1.example.com >"$tmp/want.policy"
fetch example.com "$tmp/want.policy"

# --- what was stored, summed up ------------------------------------------------------------
# the totals of what was stored (201), computed here from the posted files
stored=("$tmp/google.com.json" "$tmp/microsoft.com.json" "$tmp/other.com.json"
	"$tmp/google.net.json" "$tmp/microsoft.net.json" "$tmp/other.net.json")
check_report() { # check_report CONFIG
	"$bin" report -c "$1" --days 7 --format json >"$tmp/report.json" || fail "report exited $?"
	/usr/bin/python3 - "$tmp/report.json" "${stored[@]}" <<'PY' || fail "report totals differ: $(cat "$tmp/report.json")"
import json, sys
got = {d["domain"]: d for d in json.load(open(sys.argv[1]))["domains"]}
want = {}
for path in sys.argv[2:]:
    doc = json.load(open(path))
    for p in doc["policies"]:
        dom = p["policy"]["policy-domain"].lower().rstrip(".")
        w = want.setdefault(dom, {"success": 0, "failure": 0, "by_result": {}, "by_mx": {},
                                  "orgs": set(), "reports": 0})
        w["success"] += p["summary"]["total-successful-session-count"]
        w["failure"] += p["summary"]["total-failure-session-count"]
        w["orgs"].add(doc["organization-name"])
        w["reports"] += 1
        for f in p.get("failure-details", []):
            r, mx = f["result-type"], f.get("receiving-mx-hostname", "").lower().rstrip(".")
            w["by_result"][r] = w["by_result"].get(r, 0) + f["failed-session-count"]
            w["by_mx"][mx] = w["by_mx"].get(mx, 0) + f["failed-session-count"]
for dom, w in want.items():
    g = got[dom]
    assert (g["success"], g["failure"], g["reports"]) == (w["success"], w["failure"], w["reports"]), (dom, g, w)
    assert sorted(g["organizations"]) == sorted(w["orgs"]), (dom, g["organizations"])
    assert g["by_result"] == w["by_result"], (dom, g["by_result"], w["by_result"])
    for mx, n in w["by_mx"].items():
        if mx:
            assert g["by_mx"].get(mx) == n, (dom, mx, g["by_mx"], n)
assert got["other.example"]["reports"] == 0, got["other.example"]
PY
}
check_report "$tmp/mtastsd.ini"

# /status: the glance is read again a few seconds after a report is stored
deadline=$((SECONDS + 15))
until status example.com | grep -q '3 reports from 3 organisations over 2 days'; do
	[ "$SECONDS" -lt "$deadline" ] || fail "/status of example.com: $(status example.com)"
	sleep 0.5
done
status example.com >"$tmp/status.com"
grep -q 'not ready for enforce: 29 failed sessions reported, mostly certificate-expired at mx2.example.com' \
	"$tmp/status.com" || fail "example.com verdict: $(cat "$tmp/status.com")"
grep -q 'https://mta-sts.example.com/tlsrpt' "$tmp/status.com" || fail "no report address on /status"
# day by day: Google's and Microsoft's day, then the third report's
grep -q '[0-9-]*: 2124 ok, 20 failed</span>; <span class="bad">[0-9-]*: 200 ok, 9 failed' \
	"$tmp/status.com" || fail "example.com by day: $(cat "$tmp/status.com")"
status example.net >"$tmp/status.net"
grep -q 'not ready for enforce: 1 failed sessions reported, mostly tlsa-invalid at mx.example.net' \
	"$tmp/status.net" || fail "example.net verdict: $(cat "$tmp/status.net")"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="stored"}')" = 6 ] || fail "stored posts: $(metric 'mtastsd_tlsrpt_posts_total{outcome="stored"}')"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="duplicate"}')" = 2 ] || fail "duplicate posts"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="foreign"}')" = 3 ] || fail "foreign posts"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="invalid"}')" = 5 ] || fail "invalid posts"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="too_large"}')" = 2 ] || fail "too large posts"
[ "$(metric 'mtastsd_tlsrpt_posts_total{outcome="media_type"}')" = 1 ] || fail "media type posts"
[ "$(metric 'mtastsd_tlsrpt_sessions_total{result="certificate-expired"}')" = 12 ] ||
	fail "certificate-expired sessions: $(metric 'mtastsd_tlsrpt_sessions_total{result="certificate-expired"}')"
[ "$(metric 'mtastsd_tlsrpt_domains{state="failing"}')" = 2 ] || fail "failing domains"
series=$(curl -sS --noproxy '*' "http://127.0.0.1:$admin/metrics" | grep -c '^mtastsd_tlsrpt')
[ "$series" -le 30 ] || fail "$series tlsrpt series: not bounded"

# --- rate limit: a reload with tlsrpt_rate_limit = 2 -------------------------------------
config "$tmp/mtastsd.ini" "$tmp/state" tlsrpt_rate_limit=2
from=$(log_size)
kill -HUP "$server_pid"
wait_log "reloaded" 10 "$from"
post 200 example.com gzip "$tmp/google.com.json.gz"
post 200 example.com gzip "$tmp/google.com.json.gz"
post 429 example.com gzip "$tmp/google.com.json.gz"
grep -qi '^Retry-After: [1-9]' "$tmp/headers" || fail "429 without Retry-After: $(cat "$tmp/headers")"
stop_server

# --- a full state_dir: 503, nothing half-stored; stored once there is room ------------------
mkdir "$tmp/full"
mount -t tmpfs -o size=4m tmpfs "$tmp/full"
mkdir -m 0700 "$tmp/full/state"
config "$tmp/full.ini" "$tmp/full/state"
start_server "$tmp/full.log" "$bin" serve -c "$tmp/full.ini"
wait_log "ready" 30
post 201 example.com json "$tmp/microsoft.com.json"
# a report with many failure details, then the disk filled up
/usr/bin/python3 - "$tmp/google.com.json" "$tmp/big.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["report-id"] += ".big"
p = doc["policies"][0]
p["failure-details"] = [{"result-type": "validation-failure", "sending-mta-ip": f"198.51.{i // 256}.{i % 256}",
                         "receiving-mx-hostname": "mx1.example.com", "failed-session-count": 1}
                        for i in range(3000)]
p["summary"]["total-failure-session-count"] = 3000
json.dump(doc, open(sys.argv[2], "w"))
PY
dd if=/dev/zero of="$tmp/full/filler" bs=4k 2>/dev/null || true
post 503 example.com json "$tmp/big.json"
grep -qi '^Retry-After: ' "$tmp/headers" || fail "503 without Retry-After"
rm -f "$tmp/full/filler"
post_after_503 201 example.com json "$tmp/big.json"
post 200 example.com json "$tmp/big.json"
"$bin" report -c "$tmp/full.ini" example.com --days 7 --format json >"$tmp/full.json"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["domains"][0]; sys.exit(0 if (d["reports"], d["by_result"].get("validation-failure")) == (2, 3000) else 1)' \
	"$tmp/full.json" || fail "after the full disk: $(cat "$tmp/full.json")"
end_server "$server_pid" "$server_log" || fail "the full-disk server did not end cleanly"
umount "$tmp/full"

# --- PostgreSQL: two replicas, one summary; stopped, a 503 ----------------------------------
pgdir=$tmp/pg
mkdir -m 0755 "$pgdir"
chown nobody "$pgdir"
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}
as_nobody "$pg_bin/initdb" -D "$pgdir/data" -A trust -U postgres >"$tmp/initdb.log" 2>&1 ||
	fail "initdb: $(cat "$tmp/initdb.log")"
pg_ctl() {
	as_nobody "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/pg.log" -w \
		-o "-k $pgdir -c listen_addresses=''" "$@" >/dev/null || fail "pg_ctl $*: $(cat "$pgdir/pg.log")"
}
pg_ctl start
trap 'rc=$?; as_nobody "$pg_bin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true; (exit $rc); lib_cleanup' EXIT
uri="postgresql://postgres@/postgres?host=$pgdir"
mkdir -m 0700 "$tmp/r1" "$tmp/r2"
port1=$port
admin1=$admin
config "$tmp/r1.ini" "$tmp/r1" "tlsrpt_store=$uri"
start_server "$tmp/r1.log" "$bin" serve -c "$tmp/r1.ini"
r1_pid=$server_pid
wait_log "ready" 30
pick_ports
config "$tmp/r2.ini" "$tmp/r2" "tlsrpt_store=$uri"
start_server "$tmp/r2.log" "$bin" serve -c "$tmp/r2.ini"
r2_pid=$server_pid
wait_log "ready" 30
post 201 example.com gzip "$tmp/google.com.json.gz" "$port1"
post 201 example.com json "$tmp/microsoft.com.json" "$port"
post 200 example.com gzip "$tmp/google.com.json.gz" "$port" # the other replica had it
post 201 example.net gzip "$tmp/google.net.json.gz" "$port"
post 201 example.net json "$tmp/microsoft.net.json" "$port1"
post 201 example.net gzip "$tmp/other.net.json.gz" "$port1"
pg_ctl stop -m fast
post 503 example.com json "$tmp/other.com.json" "$port"
grep -q "unavailable" "$tmp/answer" || fail "stopped PostgreSQL: $(cat "$tmp/answer")"
grep -qi '^Retry-After: ' "$tmp/headers" || fail "503 without Retry-After"
# failed a moment ago: answered at once, no worker waits on the database again
start_ns=$(date +%s%N)
post 503 example.com json "$tmp/other.com.json" "$port"
[ $(($(date +%s%N) - start_ns)) -lt 1000000000 ] || fail "the second 503 took over a second"
pg_ctl start
post 201 example.com json "$tmp/other.com.json" "$port1"
post_after_503 200 example.com json "$tmp/other.com.json" "$port"
check_report "$tmp/r1.ini"
cp "$tmp/report.json" "$tmp/report1.json"
check_report "$tmp/r2.ini"
cmp -s "$tmp/report.json" "$tmp/report1.json" || fail "the replicas' summaries differ"
deadline=$((SECONDS + 15))
until status example.com "$admin" | grep -q '3 reports from 3 organisations over 2 days' &&
	status example.com "$admin1" | grep -q '3 reports from 3 organisations over 2 days'; do
	[ "$SECONDS" -lt "$deadline" ] || fail "replica /status: $(status example.com "$admin") $(status example.com "$admin1")"
	sleep 0.5
done
end_server "$r2_pid" "$tmp/r2.log" || fail "replica 2 did not end cleanly"
end_server "$r1_pid" "$tmp/r1.log" || fail "replica 1 did not end cleanly"
pg_ctl stop -m fast
echo "tlsrpt over HTTPS: stored once each, hostile posts refused, store failures answered 503, summaries and replicas agree"
