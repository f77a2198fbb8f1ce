#!/bin/bash
# e2e-mta-sts-query.sh: end to end with a real sender. Debian's postfix-mta-sts-resolver
# (mta-sts-query) resolves _mta-sts TXT records from dnsmasq and fetches the policies from
# mtastsd on 127.0.0.1:443, all inside private network and mount namespaces.
#
# usage: e2e-mta-sts-query.sh MTASTSD_BIN MAKE_CERTS_SH
# Exit: 0 pass, 1 fail, 77 skip (a tool is missing or not root).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SKIP=77
me=$(basename "$0")

if [ $# -ne 2 ]; then
	echo "usage: $me MTASTSD_BIN MAKE_CERTS_SH" >&2
	exit 2
fi
mtastsd=$(realpath "$1")
make_certs=$(realpath "$2")

# --- outside the namespaces: preconditions, then re-enter through unshare ----------------
if [ "${MTASTSD_E2E_INNER:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "$me: SKIP: needs root for unshare --net --mount and port 443" >&2
		exit $SKIP
	fi
	for tool in unshare ip dnsmasq mta-sts-query certtool getent sha256sum; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "$me: SKIP: $tool not found" >&2
			exit $SKIP
		fi
	done
	[ -x "$mtastsd" ] || {
		echo "$me: $mtastsd is not executable" >&2
		exit 1
	}
	MTASTSD_E2E_INNER=1 exec unshare --net --mount -- "$0" "$mtastsd" "$make_certs"
fi

# --- inside: private loopback, resolv.conf and hosts -----------------------------------
make_tmp e2e

pass() {
	echo "ok: $*"
}

# logs: the server's and dnsmasq's logs, for failure messages.
logs() {
	local f
	for f in "$tmp/server.log" "$tmp/dnsmasq.log"; do
		[ -f "$f" ] || continue
		printf '\n----- %s\n' "$f"
		cat "$f"
	done
}

ip link set lo up
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"$tmp/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$tmp/hosts"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf
mount --bind "$tmp/hosts" /etc/hosts

# --- certificates and configuration -----------------------------------------------------
"$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
ca=$tmp/certs/ca.crt

# write_e2e_config MODE_A MX_A...: $tmp/mtastsd.ini, replaced at once; a.test's mode and mx
# list vary, b.test is fixed.
write_e2e_config() {
	local mode_a=$1
	shift
	{
		printf '[server]\nlisten = 127.0.0.1:443\nidle_timeout = 5\n\n'
		printf '[domain a.test]\nmode = %s\n' "$mode_a"
		printf 'mx = %s\n' "$@"
		printf 'max_age = 604800\ncert = certs/mta-sts.a.test.crt\n'
		printf 'key = certs/mta-sts.a.test.key\ntlsrpt = mailto:tlsrpt@a.test\n\n'
		printf '[domain b.test]\nmode = testing\nmx = mx1.b.test\nmx = mx2.b.test\n'
		printf 'max_age = 86400\ncert = certs/mta-sts.b.test.crt\n'
		printf 'key = certs/mta-sts.b.test.key\ntlsrpt = mailto:tlsrpt@b.test\n'
	} >"$tmp/mtastsd.ini.new"
	mv -f "$tmp/mtastsd.ini.new" "$tmp/mtastsd.ini"
}

# record_id DOMAIN: the id in the _mta-sts TXT line that `mtastsd records` prints.
record_id() {
	"$mtastsd" records -c "$tmp/mtastsd.ini" |
		sed -n "s/^_mta-sts\\.$1\\. [0-9][0-9]* IN TXT \"v=STSv1; id=\\([A-Za-z0-9]*\\)\"\$/\\1/p"
}

dns_pid=
# start_dns TXT_A TXT_B: (re)starts dnsmasq with the _mta-sts records and A records for
# mta-sts.{a,b,c}.test (c.test has a TXT record but no configured domain in mtastsd).
start_dns() {
	local i
	if [ -n "$dns_pid" ]; then
		kill -TERM "$dns_pid"
		wait "$dns_pid" 2>/dev/null || true
	fi
	dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--port=53 --listen-address=127.0.0.1 --bind-interfaces --user=root --local=/test/ \
		--pid-file= --log-queries --log-facility=- \
		--txt-record="_mta-sts.a.test,v=STSv1; id=$1" \
		--txt-record="_mta-sts.b.test,v=STSv1; id=$2" \
		--txt-record="_mta-sts.c.test,v=STSv1; id=$2" \
		--address=/mta-sts.a.test/127.0.0.1 \
		--address=/mta-sts.b.test/127.0.0.1 \
		--address=/mta-sts.c.test/127.0.0.1 \
		>>"$tmp/dnsmasq.log" 2>&1 &
	dns_pid=$!
	kill_at_exit "$dns_pid"
	for ((i = 0; i < 100; i++)); do
		if getent hosts mta-sts.a.test >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "dnsmasq does not answer on 127.0.0.1:53$(logs)"
}

# expect_valid DOMAIN ID MODE MAX_AGE MX...: mta-sts-query fetched and accepted the policy.
# Success prints (result, (id, policy dict)); the dict is built in parse order with
# 'mx' first (postfix_mta_sts_resolver.utils.parse_mta_sts_policy) and max_age an int.
expect_valid() {
	local domain=$1 id=$2 mode=$3 max_age=$4 mx_list="" mx out want
	shift 4
	for mx in "$@"; do
		mx_list+="${mx_list:+, }'$mx'"
	done
	want="(<STSFetchResult.VALID: 1>, ('$id', {'mx': [$mx_list], 'version': 'STSv1', 'mode': '$mode', 'max_age': $max_age}))"
	out=$(SSL_CERT_FILE=$ca timeout 20 mta-sts-query -v error "$domain" 2>&1) || true
	if [ "$out" = "$want" ]; then
		pass "mta-sts-query $domain: $mode policy with id $id accepted"
	else
		fail "mta-sts-query $domain"$'\n'"  want: $want"$'\n'"  got:  $out$(logs)"
	fi
}

# expect_fetch_error WHAT DOMAIN [env...]: the sender's fetch failed.
expect_fetch_error() {
	local what=$1 domain=$2 out want='(<STSFetchResult.FETCH_ERROR: 2>, None)'
	shift 2
	out=$(env "$@" timeout 20 mta-sts-query -v error "$domain" 2>&1) || true
	if [ "$out" = "$want" ]; then
		pass "mta-sts-query $domain: $what"
	else
		fail "mta-sts-query $domain ($what)"$'\n'"  want: $want"$'\n'"  got:  $out$(logs)"
	fi
}

a_mx=(mail.a.test '*.backup.a.test')
write_e2e_config enforce "${a_mx[@]}"
"$mtastsd" check -c "$tmp/mtastsd.ini" >"$tmp/check.out" 2>&1 ||
	fail "mtastsd check rejects the e2e configuration: $(cat "$tmp/check.out")"
if sanitizer_report "$tmp/check.out"; then
	fail "sanitizer report from mtastsd check: $(cat "$tmp/check.out")"
fi

id_a=$(policy_id enforce 604800 "${a_mx[@]}")
id_b=$(policy_id testing 86400 mx1.b.test mx2.b.test)
[ "$(record_id a.test)" = "$id_a" ] || fail "records id for a.test: '$(record_id a.test)' != sha256 prefix $id_a"
[ "$(record_id b.test)" = "$id_b" ] || fail "records id for b.test: '$(record_id b.test)' != sha256 prefix $id_b"

# --- run: dnsmasq, mtastsd, then the sender ---------------------------------------------
start_dns "$id_a" "$id_b"
start_server "$tmp/server.log" "$mtastsd" serve -c "$tmp/mtastsd.ini"
wait_log 'mtastsd: ready' 10

expect_valid a.test "$id_a" enforce 604800 "${a_mx[@]}"
expect_valid b.test "$id_b" testing 86400 mx1.b.test mx2.b.test

# Negative: c.test has a TXT record and an address, but mtastsd has no certificate for it,
# so the handshake is refused and the sender must see a fetch error.
expect_fetch_error "unconfigured domain refused" c.test SSL_CERT_FILE="$ca"
# Negative: the certificate must really be verified: without our CA the fetch fails.
expect_fetch_error "untrusted CA refused" a.test -u SSL_CERT_FILE -u SSL_CERT_DIR

# --- change a.test's policy, reload, publish the new id: the sender gets the new body ---
a_mx2=(mail.a.test mail2.a.test '*.backup.a.test')
write_e2e_config testing "${a_mx2[@]}"
id_a2=$(policy_id testing 604800 "${a_mx2[@]}")
[ "$id_a2" != "$id_a" ] || fail "test bug: the changed policy has the same id"
[ "$(record_id a.test)" = "$id_a2" ] || fail "records id for a.test after the change: '$(record_id a.test)' != $id_a2"
from=$(log_size)
kill -HUP "$server_pid"
wait_log "_mta-sts.a.test. 3600 IN TXT \"v=STSv1; id=$id_a2\"" 10 "$from"
start_dns "$id_a2" "$id_b"
expect_valid a.test "$id_a2" testing 604800 "${a_mx2[@]}"
expect_valid b.test "$id_b" testing 86400 mx1.b.test mx2.b.test

# --- SIGTERM: exit 0, and in sanitizer builds no report even if every answer was right ---
stop_server
echo "all e2e checks passed"
