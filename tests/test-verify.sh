#!/bin/bash
# test-verify.sh: mtastsd verify against a real world in private network and mount
# namespaces: dnsmasq answering every record, the real mtastsd serving the policy hosts
# (a second one serving other bytes for one of them), and SMTP servers with STARTTLS
# (Debian's aiosmtpd, smtp_mx.py) on their own loopback addresses as MX hosts, with
# certificates from a private CA: good, expired, wrong name, no STARTTLS, TLS 1.0 only.
# Every case is read back from --format json; exit codes 0, 1 and 2.
#
# usage: test-verify.sh MTASTSD_BIN MAKE_CERTS_SH
# Exit: 0 pass, 1 fail, 77 skip (a tool is missing or not root).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SKIP=77
me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)

if [ $# -ne 2 ]; then
	echo "usage: $me MTASTSD_BIN MAKE_CERTS_SH" >&2
	exit 2
fi
mtastsd=$(realpath "$1")
make_certs=$(realpath "$2")

# --- outside the namespaces: preconditions, then re-enter through unshare ----------------
if [ "${MTASTSD_VERIFY_INNER:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "$me: SKIP: needs root for unshare --net --mount" >&2
		exit $SKIP
	fi
	for tool in unshare ip dnsmasq certtool curl; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "$me: SKIP: $tool not found" >&2
			exit $SKIP
		fi
	done
	if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
		echo "$me: SKIP: python3-aiosmtpd not installed" >&2
		exit $SKIP
	fi
	MTASTSD_VERIFY_INNER=1 exec unshare --net --mount -- "$0" "$mtastsd" "$make_certs"
fi

# --- inside: private loopback and resolv.conf --------------------------------------------
make_tmp verify

pass() {
	echo "ok: $*"
}

logs() {
	local f
	for f in "$tmp"/*.log; do
		[ -f "$f" ] || continue
		printf '\n----- %s\n' "$f"
		cat "$f"
	done
}

ip link set lo up
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf

port=8443 # the policy hosts (mtastsd), on 127.0.0.1 and, the stale one, 127.0.0.2
smtp=2525 # every MX, each on its own address

# --- certificates: policy hosts by make-certs.sh, MX hosts signed by its intermediate ----
policy_domains=(good.test enf.test gone.test expired.test wrongname.test nostarttls.test
	tls10.test uncovered.test badid.test twotxt.test stale.test prov.test cust.test
	slow.test)
"$make_certs" -o "$tmp/certs" "${policy_domains[@]}" >/dev/null
ca=$tmp/certs/ca.crt

# mx_cert NAME TYPE [DNS_NAME...]: $tmp/certs/NAME.crt (leaf, intermediate) and NAME.key;
# TYPE valid or expired.
mx_cert() {
	local name=$1 type=$2 dns
	shift 2
	{
		echo "cn = $1"
		for dns in "$@"; do
			echo "dns_name = $dns"
		done
		echo "tls_www_server"
		echo "signing_key"
		echo "encryption_key"
		if [ "$type" = expired ]; then
			echo 'activation_date = "2020-01-01 00:00:00"'
			echo 'expiration_date = "2021-01-01 00:00:00"'
		else
			echo "expiration_days = 90"
		fi
	} >"$tmp/certs/$name.tmpl"
	certtool --generate-privkey --key-type rsa --bits 2048 --outfile "$tmp/certs/$name.key" 2>/dev/null
	certtool --generate-certificate --load-privkey "$tmp/certs/$name.key" \
		--load-ca-certificate "$tmp/certs/intermediate.crt" \
		--load-ca-privkey "$tmp/certs/intermediate.key" \
		--template "$tmp/certs/$name.tmpl" --outfile "$tmp/certs/$name.leaf" 2>/dev/null
	cat "$tmp/certs/$name.leaf" "$tmp/certs/intermediate.crt" >"$tmp/certs/$name.crt"
}
mx_cert good valid mx.good.test
mx_cert expired expired mx.expired.test
mx_cert wrongname valid mail.other.test '*.wrongname.test'
mx_cert nostarttls valid mx.nostarttls.test
mx_cert tls10 valid mx.tls10.test
mx_cert uncovered valid mx1.uncovered.test mx2.uncovered.test

# --- configuration: one domain per case ----------------------------------------------------
# domain NAME MODE MAX_AGE MX...: a [domain] section with its certificate.
domain() {
	local name=$1 mode=$2 max_age=$3 mx
	shift 3
	printf '\n[domain %s]\nmode = %s\n' "$name" "$mode"
	for mx in "$@"; do
		printf 'mx = %s\n' "$mx"
	done
	printf 'max_age = %s\ncert = certs/mta-sts.%s.crt\nkey = certs/mta-sts.%s.key\n' \
		"$max_age" "$name" "$name"
}
{
	printf '[server]\nlisten = 127.0.0.1:%s\nidle_timeout = 5\naccess_log = no\n' "$port"
	printf 'dns_server = 127.0.0.1\nupstream_port = %s\nupstream_ca = certs/ca.crt\n' "$port"
	domain good.test testing 604800 mx.good.test
	printf 'tlsrpt = mailto:tlsrpt@good.test\n'
	domain enf.test enforce 604800 mx.good.test
	domain gone.test none 86400 mx.good.test
	domain expired.test enforce 604800 mx.expired.test
	domain wrongname.test testing 604800 mx.deep.wrongname.test
	domain nostarttls.test testing 604800 mx.nostarttls.test
	domain tls10.test testing 604800 mx.tls10.test
	domain uncovered.test testing 604800 mx1.uncovered.test '*.spare.uncovered.test'
	domain badid.test enforce 604800 mx.good.test
	domain twotxt.test enforce 604800 mx.good.test
	domain stale.test testing 604800 mx.good.test
	domain prov.test testing 86400 mx.good.test
	domain slow.test enforce 604800 mx.slow.test
	printf '\n[domain cust.test]\nproxy = prov.test\n'
	printf 'cert = certs/mta-sts.cust.test.crt\nkey = certs/mta-sts.cust.test.key\n'
} >"$tmp/mtastsd.ini"
# The second server: stale.test with other bytes (max_age), as a forgotten replica would.
{
	printf '[server]\nlisten = 127.0.0.2:%s\naccess_log = no\n' "$port"
	domain stale.test testing 86400 mx.good.test
} >"$tmp/stale.ini"

"$mtastsd" check -c "$tmp/mtastsd.ini" >"$tmp/check.out" 2>&1 ||
	fail "check rejects the test configuration: $(cat "$tmp/check.out")"

# record_id DOMAIN: the id in the _mta-sts TXT line that `mtastsd records` prints.
record_id() {
	"$mtastsd" records -c "$tmp/mtastsd.ini" 2>/dev/null |
		sed -n "s/^_mta-sts\\.$1\\. [0-9][0-9]* IN TXT \"v=STSv1; id=\\([A-Za-z0-9]*\\)\"\$/\\1/p"
}

# --- DNS ----------------------------------------------------------------------------------
dns_args=()
for d in good enf gone expired wrongname nostarttls tls10 uncovered stale prov; do
	dns_args+=("--txt-record=_mta-sts.$d.test,v=STSv1; id=$(record_id "$d.test")")
done
# shellcheck disable=SC2054 # dnsmasq's arguments have commas
dns_args+=(
	"--txt-record=_mta-sts.badid.test,v=STSv1; id=0123456789abcdef"
	"--txt-record=_mta-sts.twotxt.test,v=STSv1; id=$(record_id twotxt.test)"
	"--txt-record=_mta-sts.twotxt.test,v=STSv1; id=other"
	--cname=_mta-sts.cust.test,_mta-sts.prov.test
	"--txt-record=_smtp._tls.good.test,v=TLSRPTv1; rua=mailto:tlsrpt@good.test"
	"--txt-record=_smtp._tls.expired.test,v=TLSRPTv1; rua=ftp://reports.expired.test"
	--host-record=mx.good.test,127.0.0.11
	--host-record=mx.expired.test,127.0.0.12
	--host-record=mx.deep.wrongname.test,127.0.0.13
	--host-record=mx.nostarttls.test,127.0.0.14
	--host-record=mx.slow.test,127.0.0.17
	--mx-host=slow.test,mx.slow.test,10
	"--txt-record=_mta-sts.slow.test,v=STSv1; id=$(record_id slow.test)"
	--host-record=mx.tls10.test,127.0.0.15
	--host-record=mx1.uncovered.test,127.0.0.16
	--host-record=mx2.uncovered.test,127.0.0.16
	--mx-host=uncovered.test,mx1.uncovered.test,10
	--mx-host=uncovered.test,mx2.uncovered.test,20
)
for d in good enf gone badid twotxt stale prov cust; do
	dns_args+=("--mx-host=$d.test,mx.good.test,10")
done
for d in expired nostarttls tls10; do
	dns_args+=("--mx-host=$d.test,mx.$d.test,10")
done
# shellcheck disable=SC2054
dns_args+=(--mx-host=wrongname.test,mx.deep.wrongname.test,10)
for d in "${policy_domains[@]}"; do
	dns_args+=("--address=/mta-sts.$d/127.0.0.1")
done
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--port=53 --listen-address=127.0.0.1 --bind-interfaces --user=root --group=root \
	--pid-file= --log-facility=- --local=/test/ "${dns_args[@]}" \
	--address=/mta-sts.stale.test/127.0.0.2 >"$tmp/dnsmasq.log" 2>&1 &
kill_at_exit $!
for ((i = 0; ; i++)); do
	if getent hosts mx.good.test >/dev/null 2>&1; then
		break
	fi
	[ "$i" -lt 100 ] || fail "dnsmasq does not answer$(logs)"
	sleep 0.1
done

# --- MX hosts and policy servers -----------------------------------------------------------
c=$tmp/certs
/usr/bin/python3 "$here/smtp_mx.py" \
	"127.0.0.11:$smtp:good:$c/good.crt:$c/good.key" \
	"127.0.0.12:$smtp:good:$c/expired.crt:$c/expired.key" \
	"127.0.0.13:$smtp:good:$c/wrongname.crt:$c/wrongname.key" \
	"127.0.0.14:$smtp:nostarttls" \
	"127.0.0.15:$smtp:tls10:$c/tls10.crt:$c/tls10.key" \
	"127.0.0.16:$smtp:good:$c/uncovered.crt:$c/uncovered.key" \
	"127.0.0.17:$smtp:silent" \
	>"$tmp/smtp.out" 2>"$tmp/smtp.log" &
kill_at_exit $!

start_server "$tmp/stale.log" "$mtastsd" serve -c "$tmp/stale.ini"
wait_log 'mtastsd: ready' 10
start_server "$tmp/server.log" "$mtastsd" serve -c "$tmp/mtastsd.ini"
wait_log 'mtastsd: ready' 10

# The proxied domain is served once the server has fetched prov.test's policy from itself.
for ((i = 0; ; i++)); do
	if curl -sf --noproxy '*' --max-time 5 --cacert "$ca" \
		--resolve "mta-sts.cust.test:$port:127.0.0.1" \
		"https://mta-sts.cust.test:$port/.well-known/mta-sts.txt" >/dev/null 2>&1; then
		break
	fi
	[ "$i" -lt 100 ] || fail "cust.test is never served$(logs)"
	sleep 0.1
done
for ((i = 0; ; i++)); do
	if grep -q ready "$tmp/smtp.out"; then
		break
	fi
	[ "$i" -lt 100 ] || fail "smtp_mx.py does not start$(logs)"
	sleep 0.1
done

# --- the whole run, as JSON ----------------------------------------------------------------
verify=("$mtastsd" verify -c "$tmp/mtastsd.ini" --ca-file "$ca" --https-port "$port"
	--smtp-port "$smtp" --timeout 10)
rc=0
start=$SECONDS
touch "$tmp/before"
"${verify[@]}" --format json >"$tmp/all.json" 2>"$tmp/all.err" || rc=$?
[ "$rc" = 1 ] || fail "verify of every domain exited $rc, want 1: $(cat "$tmp/all.err" "$tmp/all.json")$(logs)"
[ ! -s "$tmp/all.err" ] || fail "verify wrote to stderr: $(cat "$tmp/all.err")"
if sanitizer_report "$tmp/all.err"; then
	fail "sanitizer report from verify: $(cat "$tmp/all.err")"
fi
pass "verify of every domain: exit 1 in $((SECONDS - start)) s"
# Nothing but its own output was written (server and MX logs aside).
changed=$(find "$tmp" -newer "$tmp/before" -type f ! -name '*.log' ! -name all.json ! -name all.err)
[ -z "$changed" ] || fail "files written during verify: $changed"

# expect DOMAIN CHECK HOST STATUS [DETAIL_SUBSTRING]: the report has that check (HOST "-"
# for none) with that status, and its detail contains the substring.
expect() {
	local out
	if out=$(/usr/bin/python3 - "$tmp/all.json" "$@" 2>&1 <<'EOF'
import json, sys
path, domain, check, host, status = sys.argv[1:6]
needle = sys.argv[6] if len(sys.argv) > 6 else ""
doms = [d for d in json.load(open(path))["domains"] if d["domain"] == domain]
if len(doms) != 1:
    sys.exit(f"{len(doms)} entries for {domain}")
hits = [c for c in doms[0]["checks"]
        if c["check"] == check and (c["host"] or "-") == host]
if len(hits) != 1:
    sys.exit(f"{len(hits)} {check} {host} checks in {doms[0]['checks']}")
c = hits[0]
if c["status"] != status or needle not in c["detail"]:
    sys.exit(f"{check} {host}: {c['status']}: {c['detail']!r}, want {status} with {needle!r}")
EOF
	); then
		pass "$1 $2 $3: $4${5:+ ($5)}"
	else
		fail "$1: $out"
	fi
}

# expect_verdict DOMAIN OK VERDICT_PREFIX
expect_verdict() {
	local out
	if out=$(/usr/bin/python3 - "$tmp/all.json" "$@" 2>&1 <<'EOF'
import json, sys
path, domain, ok, prefix = sys.argv[1:5]
d = [d for d in json.load(open(path))["domains"] if d["domain"] == domain][0]
if str(d["ok"]).lower() != ok or not d["verdict"].startswith(prefix):
    sys.exit(f"ok={d['ok']} verdict={d['verdict']!r}, want ok={ok} and {prefix!r}")
EOF
	); then
		pass "$1: verdict '$3'"
	else
		fail "$1: $out"
	fi
}

# The good MX, every check of a testing domain, and the verdicts by mode.
for check in sts-txt policy-fetch mx-coverage tlsrpt-txt; do
	expect good.test "$check" - ok
done
expect good.test mx-tls mx.good.test ok "certificate trusted and valid for mx.good.test"
expect_verdict good.test true "ready for enforce"
expect_verdict enf.test true "ok"
expect enf.test tlsrpt-txt - warn "no TLS-RPT record"
expect_verdict gone.test true "policy served as none"

# MX certificates and STARTTLS.
expect expired.test mx-tls mx.expired.test fail "expired"
expect_verdict expired.test false "problems: mx-tls mx.expired.test"
expect expired.test tlsrpt-txt - fail "neither mailto: nor https:"
# The certificate names mail.other.test and *.wrongname.test: a wildcard covers one label.
expect wrongname.test mx-tls mx.deep.wrongname.test fail "does not name mx.deep.wrongname.test"
expect nostarttls.test mx-tls mx.nostarttls.test fail "STARTTLS is not offered"
expect_verdict nostarttls.test false "not ready for enforce: mx-tls mx.nostarttls.test"
expect tls10.test mx-tls mx.tls10.test fail "TLS1.0 negotiated, below 1.2"

# Coverage: an MX no pattern matches fails, a pattern no MX uses warns.
expect uncovered.test mx-coverage - fail "MX mx2.uncovered.test is not matched by any mx pattern: add \`mx = mx2.uncovered.test\`"
expect uncovered.test mx-coverage - fail "mx pattern *.spare.uncovered.test matches no MX host"
expect uncovered.test mx-tls mx1.uncovered.test ok
expect uncovered.test mx-tls mx2.uncovered.test ok
expect_verdict uncovered.test false "not ready for enforce: mx-coverage"

# The records and the policy host.
expect badid.test sts-txt - fail "id=0123456789abcdef is not the id of the policy this config serves ($(record_id badid.test))"
expect badid.test policy-fetch - ok
expect twotxt.test sts-txt - fail "2 v=STSv1 TXT records"
expect stale.test sts-txt - ok
expect stale.test policy-fetch - fail "serves other bytes"
expect_verdict stale.test false "not ready for enforce: policy-fetch"

# The proxied domain: its _mta-sts is a CNAME to the provider's, served bytes are the
# provider's policy.
expect cust.test sts-txt - ok "the id of prov.test's policy"
expect cust.test policy-fetch - ok
expect_verdict cust.test true "ready for enforce"

# --- one domain, text; exit 0 --------------------------------------------------------------
rc=0
"${verify[@]}" good.test >"$tmp/good.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "verify good.test exited $rc: $(cat "$tmp/good.txt")"
grep -qx '  verdict: ready for enforce' "$tmp/good.txt" || fail "text verdict: $(cat "$tmp/good.txt")"
grep -q '^  ok   mx-tls mx.good.test: ' "$tmp/good.txt" || fail "text mx-tls line: $(cat "$tmp/good.txt")"
[ "$(grep -c '^  \(ok\|warn\|fail\) ' "$tmp/good.txt")" = 5 ] || fail "want 5 check lines: $(cat "$tmp/good.txt")"
pass "verify good.test: exit 0, text says ready for enforce"

# An MX that never answers: --timeout bounds the whole run, and says so.
rc=0
start=$SECONDS
"$mtastsd" verify -c "$tmp/mtastsd.ini" --ca-file "$ca" --https-port "$port" \
	--smtp-port "$smtp" --timeout 3 --format json good.test slow.test >"$tmp/all.json" 2>&1 || rc=$?
took=$((SECONDS - start))
[ "$rc" = 1 ] || fail "verify slow.test exited $rc, want 1: $(cat "$tmp/all.json")"
[ "$took" -le 5 ] || fail "verify --timeout 3 took $took s"
expect slow.test mx-tls mx.slow.test fail "greeting: no answer in time"
expect_verdict good.test true "ready for enforce"
pass "--timeout 3 with a silent MX: done in $took s"

rc=0
"${verify[@]}" --format json expired.test tls10.test >"$tmp/two.json" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "verify expired.test tls10.test exited $rc, want 1"
[ "$(/usr/bin/python3 -c 'import json,sys; print(" ".join(d["domain"] for d in json.load(open(sys.argv[1]))["domains"]))' "$tmp/two.json")" = "expired.test tls10.test" ] ||
	fail "named domains: $(cat "$tmp/two.json")"
pass "verify of two named domains: exit 1, just those two"

# --- usage and configuration errors: exit 2 ------------------------------------------------
rc=0
"${verify[@]}" nosuch.test >/dev/null 2>"$tmp/err" || rc=$?
if [ "$rc" != 2 ] || ! grep -q 'nosuch.test is not a domain of this configuration' "$tmp/err"; then
	fail "unknown domain: exit $rc, $(cat "$tmp/err")"
fi
rc=0
"$mtastsd" verify -c "$tmp/mtastsd.ini" --smtp-port x >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "--smtp-port x: exit $rc"
printf '[server]\nlisten = 127.0.0.1:1\n\n[domain bad.test]\nmode = sometimes\n' >"$tmp/bad.ini"
rc=0
"$mtastsd" verify -c "$tmp/bad.ini" >/dev/null 2>"$tmp/err" || rc=$?
if [ "$rc" != 2 ] || ! grep -q "^$tmp/bad.ini:5: " "$tmp/err"; then
	fail "bad config: exit $rc, $(cat "$tmp/err")"
fi
pass "exit 2: unknown domain, bad option value, config error with FILE:LINE"

stop_server
echo "all verify checks passed"
