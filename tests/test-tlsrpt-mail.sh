#!/bin/bash
# test-tlsrpt-mail.sh: TLS reports by mail into the store, and `report` on them, with the
# real binary: three reports shaped like large senders' (gzip and base64, JSON and
# quoted-printable, a message that is the report itself) are stored (exit 0); the same
# report again is stored once (0); a report for another tenant's domain, a gzip bomb, a
# message without a report and garbage are refused (65); an unavailable store is a
# temporary failure (75), nothing stored. Then `report --format json` gives the totals
# computed here from the fixtures, and the text form names the failing MX; reports past
# tlsrpt_retention_days are deleted.
# usage: test-tlsrpt-mail.sh MTASTSD_BIN SOURCE_ROOT
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$1
fixtures=$2/tests/tlsrpt
mail=$(dirname "${BASH_SOURCE[0]}")/tlsrpt_mail.py

make_tmp tlsrpt-mail
mkdir -m 0700 "$tmp/state" "$tmp/certs"
cat >"$tmp/mtastsd.ini" <<EOF_INI
[server]
certs = certs
state_dir = state

[domain example.com]
mode = testing
mx = mx1.example.com
mx = mx2.example.com
max_age = 86400

[domain example.net]
mode = testing
mx = *.mail.example.net
max_age = 86400
EOF_INI

# ingest WANT KIND [FIXTURE] [CONFIG]: mails one message to tlsrpt-ingest, wants exit WANT.
ingest() {
	local want=$1 kind=$2 fixture=${3:+$fixtures/$3} config=${4:-$tmp/mtastsd.ini} rc=0
	/usr/bin/python3 "$mail" "$kind" ${fixture:+"$fixture"} >"$tmp/msg" || fail "tlsrpt_mail.py $kind"
	"$bin" tlsrpt-ingest -c "$config" <"$tmp/msg" 2>"$tmp/ingest.err" || rc=$?
	[ "$rc" = "$want" ] || fail "$kind ${3:-}: exit $rc, want $want: $(cat "$tmp/ingest.err")"
}

ingest 0 gzip google.json
ingest 0 json microsoft.json
ingest 0 bare other.json
ingest 0 gzip google.json
grep -q "duplicate" "$tmp/ingest.err" || fail "the duplicate was not said: $(cat "$tmp/ingest.err")"
ingest 65 foreign google.json
grep -q "other-tenant.example" "$tmp/ingest.err" || fail "foreign: $(cat "$tmp/ingest.err")"
ingest 65 bomb
ingest 65 none
ingest 65 garbage
sed 's|^state_dir = state$|state_dir = state\ntlsrpt_store = postgresql:///x?host=/nonexistent\&connect_timeout=1|' \
	"$tmp/mtastsd.ini" >"$tmp/down.ini"
grep -q '^tlsrpt_store = postgresql' "$tmp/down.ini" || fail "tlsrpt_store not written"
ingest 75 gzip microsoft.json "$tmp/down.ini"

"$bin" report -c "$tmp/mtastsd.ini" --days 3650 --format json >"$tmp/report.json" ||
	fail "report exited $?"
/usr/bin/python3 - "$tmp/report.json" "$fixtures" <<'PY' || fail "report totals differ: $(cat "$tmp/report.json")"
import json, os, sys
got = {d["domain"]: d for d in json.load(open(sys.argv[1]))["domains"]}
want = {}
for name in ("google.json", "microsoft.json", "other.json"):
    doc = json.load(open(os.path.join(sys.argv[2], name)))
    for p in doc["policies"]:
        dom = p["policy"]["policy-domain"].lower().rstrip(".")
        w = want.setdefault(dom, {"success": 0, "failure": 0, "by_result": {}, "orgs": set(),
                                  "reports": set()})
        w["success"] += p["summary"]["total-successful-session-count"]
        w["failure"] += p["summary"]["total-failure-session-count"]
        w["orgs"].add(doc["organization-name"])
        w["reports"].add(doc["report-id"])
        for f in p.get("failure-details", []):
            r = f["result-type"]
            w["by_result"][r] = w["by_result"].get(r, 0) + f["failed-session-count"]
assert set(got) == {"example.com", "example.net"}, got.keys()
for dom, w in want.items():
    g = got[dom]
    assert g["success"] == w["success"], (dom, g["success"], w["success"])
    assert g["failure"] == w["failure"], (dom, g["failure"], w["failure"])
    assert g["reports"] == len(w["reports"]), (dom, g["reports"], len(w["reports"]))
    assert sorted(g["organizations"]) == sorted(w["orgs"]), (dom, g["organizations"])
    for r, n in w["by_result"].items():
        assert g["by_result"].get(r) == n, (dom, r, g["by_result"], n)
    assert sum(d["success"] for d in g["days"]) == w["success"], (dom, g["days"])
PY
"$bin" report -c "$tmp/mtastsd.ini" example.com --days 3650 >"$tmp/report.txt" ||
	fail "report (text) exited $?"
grep -q "^example.com: [0-9]* reports from [0-9]* organisations" "$tmp/report.txt" ||
	fail "text report: $(cat "$tmp/report.txt")"
grep -q "most failures: " "$tmp/report.txt" || fail "no failure named: $(cat "$tmp/report.txt")"
rc=0
"$bin" report -c "$tmp/mtastsd.ini" nobody.example >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "report of an unknown domain: exit $rc, want 2"
# Retention: with tlsrpt_retention_days = 1, reports that ended days ago go as soon as a
# report is stored (the fixtures end on 2026-12-02).
rm -rf "$tmp/state" && mkdir -m 0700 "$tmp/state"
sed 's|^state_dir = state$|state_dir = state\ntlsrpt_retention_days = 1|' "$tmp/mtastsd.ini" >"$tmp/short.ini"
ingest 0 gzip google.json "$tmp/short.ini"
"$bin" report -c "$tmp/short.ini" --days 3650 --format json >"$tmp/short.json" || fail "report exited $?"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["domains"]; sys.exit(0 if all(x["reports"] == 0 for x in d) else 1)' \
	"$tmp/short.json" || fail "retention: reports older than a day kept: $(cat "$tmp/short.json")"
echo "tlsrpt by mail: stored once each, hostile ones refused, summaries match the fixtures"
