#!/bin/bash
# test-readme: what the README shows is what the binary prints: every record line in its
# "Publishing the records" example is printed, verbatim, by `records` for the example
# configuration, and no id of that output is missing from the README.
set -euo pipefail

mtastsd=$1
readme=$2
config=$3

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

printed=$("$mtastsd" records --no-certs -c "$config" 2>/dev/null) ||
	fail "records -c $config exited $?"
shown=$(grep -E '^_(mta-sts|smtp\._tls)\.example\.(com|net)\. ' "$readme" || true)
[ -n "$shown" ] || fail "no record lines in $readme"
while IFS= read -r line; do
	grep -qxF -- "$line" <<<"$printed" || fail "README shows a record records does not print: $line"
done <<<"$shown"
while IFS= read -r line; do
	case $line in
	_mta-sts.*) grep -qxF -- "$line" <<<"$shown" || fail "README lacks: $line" ;;
	esac
done <<<"$printed"
echo "README records match $config"
