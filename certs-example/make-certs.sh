#!/bin/sh
# make-certs.sh: a throwaway root CA, an intermediate and mta-sts.<domain> leaf
# certificates for the examples and the tests (GnuTLS certtool). Never for production.
set -eu

usage() {
	cat <<EOF
usage: $0 [-o OUTDIR] [-t ecdsa|rsa] [-w DOMAIN]... [DOMAIN...]

Makes, once (existing files are kept while they still verify):
  OUTDIR/ca.crt, OUTDIR/ca.key                  root CA (trust this one)
  OUTDIR/intermediate.crt, intermediate.key     intermediate CA
and for every DOMAIN:
  OUTDIR/mta-sts.DOMAIN.crt   leaf for mta-sts.DOMAIN followed by the intermediate
  OUTDIR/mta-sts.DOMAIN.key   its private key (PKCS#8 PEM, mode 0600)
and for every -w DOMAIN:
  OUTDIR/wildcard.DOMAIN.crt, .key   the same with the SAN *.DOMAIN

  -o OUTDIR   output directory (default: out/ next to this script)
  -t TYPE     leaf key type: ecdsa (P-256, default) or rsa (2048 bits)
  -w DOMAIN   also make a wildcard certificate for *.DOMAIN (repeatable)
  -h, --help  this text

Default domains, when none is given: example.com example.net
EOF
}

die() {
	echo "$0: $*" >&2
	exit 1
}

script_dir=$(cd "$(dirname "$0")" && pwd)
outdir=$script_dir/out
keytype=ecdsa
wildcards=

domains=
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	-o)
		[ $# -ge 2 ] || die "-o needs a directory"
		outdir=$2
		shift 2
		;;
	-t)
		[ $# -ge 2 ] || die "-t needs ecdsa or rsa"
		keytype=$2
		shift 2
		;;
	-w)
		[ $# -ge 2 ] || die "-w needs a domain"
		wildcards="$wildcards $2"
		shift 2
		;;
	--)
		shift
		domains="$domains $*"
		break
		;;
	-*)
		usage >&2
		exit 2
		;;
	*)
		domains="$domains $1"
		shift
		;;
	esac
done

case $keytype in
ecdsa | rsa) ;;
*) die "unknown key type '$keytype' (ecdsa or rsa)" ;;
esac

if [ -z "$domains" ] && [ -z "$wildcards" ]; then
	domains="example.com example.net"
fi

# Domain names in LDH form only: they are used unquoted, in file names and in templates.
for d in $domains $wildcards; do
	case $d in
	'' | -* | .* | *. | *..* | *[!A-Za-z0-9.-]*) die "invalid domain '$d'" ;;
	esac
done

command -v certtool >/dev/null 2>&1 ||
	die "certtool not found (Debian package gnutls-bin)"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
umask 077
tmp=$(mktemp -d "$outdir/.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# genkey TYPE FILE: a new unencrypted PKCS#8 private key.
genkey() {
	gk_type=$1
	gk_out=$2
	case $gk_type in
	ecdsa) set -- --key-type=ecdsa --curve=secp256r1 ;;
	rsa) set -- --key-type=rsa --bits=2048 ;;
	esac
	certtool --generate-privkey "$@" --pkcs8 --password= --no-text \
		--outfile "$tmp/key.pem" </dev/null >/dev/null 2>&1 ||
		die "certtool could not generate a $gk_type key"
	chmod 600 "$tmp/key.pem"
	mv -f "$tmp/key.pem" "$gk_out"
}

# key_matches CERT KEY: true when KEY is the private key of the first certificate in CERT.
key_matches() {
	a=$(certtool --key-id --infile "$1" 2>/dev/null) || return 1
	b=$(certtool --key-id --load-privkey "$2" 2>/dev/null) || return 1
	[ -n "$a" ] && [ "$a" = "$b" ]
}

# verifies CERT: true when CERT (a chain) verifies against our root CA now.
verifies() {
	certtool --verify --load-ca-certificate "$outdir/ca.crt" \
		--infile "$1" >/dev/null 2>&1
}

# Root CA: ten years, kept as long as its key matches.
if ! [ -s "$outdir/ca.crt" ] || ! [ -s "$outdir/ca.key" ] ||
	! key_matches "$outdir/ca.crt" "$outdir/ca.key"; then
	genkey ecdsa "$outdir/ca.key"
	cat >"$tmp/ca.tmpl" <<EOF
cn = "mtastsd example root CA"
organization = "mtastsd test certificates"
serial = $(date +%s)01
expiration_days = 3650
ca
path_len = 1
cert_signing_key
crl_signing_key
EOF
	certtool --generate-self-signed --load-privkey "$outdir/ca.key" \
		--template "$tmp/ca.tmpl" --no-text --outfile "$tmp/ca.crt" >/dev/null 2>&1 ||
		die "certtool could not make the root CA"
	mv -f "$tmp/ca.crt" "$outdir/ca.crt"
	chmod 644 "$outdir/ca.crt"
	echo "made $outdir/ca.crt"
fi

# Intermediate CA, signed by the root; remade when the root changed.
if ! [ -s "$outdir/intermediate.crt" ] || ! [ -s "$outdir/intermediate.key" ] ||
	! key_matches "$outdir/intermediate.crt" "$outdir/intermediate.key" ||
	! verifies "$outdir/intermediate.crt"; then
	genkey ecdsa "$outdir/intermediate.key"
	cat >"$tmp/int.tmpl" <<EOF
cn = "mtastsd example intermediate CA"
organization = "mtastsd test certificates"
serial = $(date +%s)02
expiration_days = 1825
ca
path_len = 0
cert_signing_key
crl_signing_key
EOF
	certtool --generate-certificate --load-privkey "$outdir/intermediate.key" \
		--load-ca-certificate "$outdir/ca.crt" --load-ca-privkey "$outdir/ca.key" \
		--template "$tmp/int.tmpl" --no-text --outfile "$tmp/int.crt" >/dev/null 2>&1 ||
		die "certtool could not make the intermediate CA"
	mv -f "$tmp/int.crt" "$outdir/intermediate.crt"
	chmod 644 "$outdir/intermediate.crt"
	echo "made $outdir/intermediate.crt"
fi

serial_n=0

# leaf BASENAME SAN: OUTDIR/BASENAME.crt (leaf + intermediate) and OUTDIR/BASENAME.key.
# Kept when it still verifies against the CA, its key matches and the key type is right.
leaf() {
	crt=$outdir/$1.crt
	key=$outdir/$1.key
	case $keytype in
	ecdsa) algo='Algorithm: EC' ;;
	rsa) algo='Algorithm: RSA' ;;
	esac
	if [ -s "$crt" ] && [ -s "$key" ] && verifies "$crt" && key_matches "$crt" "$key" &&
		certtool --certificate-info --infile "$crt" 2>/dev/null |
		grep -q "Subject Public Key $algo"; then
		return 0
	fi
	genkey "$keytype" "$tmp/leaf.key"
	serial_n=$((serial_n + 1))
	{
		echo "cn = \"$2\""
		echo "dns_name = \"$2\""
		echo "serial = $(date +%s)1$serial_n"
		echo "expiration_days = 365"
		echo "tls_www_server"
		echo "signing_key"
		if [ "$keytype" = rsa ]; then
			echo "encryption_key"
		fi
	} >"$tmp/leaf.tmpl"
	certtool --generate-certificate --load-privkey "$tmp/leaf.key" \
		--load-ca-certificate "$outdir/intermediate.crt" \
		--load-ca-privkey "$outdir/intermediate.key" \
		--template "$tmp/leaf.tmpl" --no-text --outfile "$tmp/leaf.crt" >/dev/null 2>&1 ||
		die "certtool could not make the certificate for $2"
	cat "$outdir/intermediate.crt" >>"$tmp/leaf.crt"
	chmod 644 "$tmp/leaf.crt"
	mv -f "$tmp/leaf.key" "$key"
	mv -f "$tmp/leaf.crt" "$crt"
	echo "made $crt ($keytype)"
}

for d in $domains; do
	leaf "mta-sts.$d" "mta-sts.$d"
done
for d in $wildcards; do
	leaf "wildcard.$d" "*.$d"
done
