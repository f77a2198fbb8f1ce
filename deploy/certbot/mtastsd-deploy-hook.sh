#!/bin/bash
# mtastsd-deploy-hook.sh: install a renewed certificate into mtastsd's certs directory
# as CERTS/NAME/fullchain.pem + CERTS/NAME/privkey.pem, both files replaced at once.
#
# certbot (RENEWED_LINEAGE, the live/NAME directory, is set by certbot):
#   certbot certonly --dns-rfc2136 --dns-rfc2136-credentials /etc/letsencrypt/rfc2136.ini \
#     -d mta-sts.customer.example \
#     --deploy-hook /usr/local/sbin/mtastsd-deploy-hook.sh
# lego 4.x (LEGO_CERT_DOMAIN, LEGO_CERT_PATH, LEGO_CERT_KEY_PATH are set by lego):
#   lego --email hostmaster@provider.example --dns rfc2136 \
#     --domains mta-sts.customer.example run --run-hook /usr/local/sbin/mtastsd-deploy-hook.sh
#   (and "renew --renew-hook ..." from a timer)
# anything else:
#   mtastsd-deploy-hook.sh NAME FULLCHAIN PRIVKEY
#
# How the swap is atomic: the pair is written into a new hidden directory
# CERTS/.NAME.<time>/ (mtastsd skips names starting with "."), then the symlink
# CERTS/NAME is replaced by rename(2). mtastsd therefore sees either the old pair or the
# new pair, never one file of each (it would see a mismatched pair, log the domain as
# degraded and keep serving its old certificate until the pair is complete). cert_watch notices the change; set
# MTASTSD_RELOAD=yes to also run "systemctl reload mtastsd" (with cert_watch = 0).
#
# Environment:
#   MTASTSD_CERTS   certs directory (default /etc/mtastsd/certs, the config's "certs =")
#   MTASTSD_GROUP   group that may read the keys (default mtastsd); files are
#                   root:GROUP 0640 when run as root, else owned by the caller
#   MTASTSD_RELOAD  yes: systemctl reload mtastsd afterwards (default no)
set -euo pipefail

certs=${MTASTSD_CERTS:-/etc/mtastsd/certs}
group=${MTASTSD_GROUP:-mtastsd}
reload=${MTASTSD_RELOAD:-no}

die() {
	echo "mtastsd-deploy-hook: $*" >&2
	exit 1
}

if [[ $# -eq 3 ]]; then
	name=$1 fullchain=$2 privkey=$3
elif [[ $# -eq 0 && -n ${RENEWED_LINEAGE:-} ]]; then
	name=$(basename "$RENEWED_LINEAGE")
	fullchain=$RENEWED_LINEAGE/fullchain.pem
	privkey=$RENEWED_LINEAGE/privkey.pem
elif [[ $# -eq 0 && -n ${LEGO_CERT_PATH:-} && -n ${LEGO_CERT_KEY_PATH:-} ]]; then
	# lego's DOMAIN.crt is the full chain unless lego ran with --no-bundle
	name=${LEGO_CERT_DOMAIN:-$(basename "$LEGO_CERT_PATH" .crt)}
	fullchain=$LEGO_CERT_PATH
	privkey=$LEGO_CERT_KEY_PATH
else
	die "usage: $0 NAME FULLCHAIN PRIVKEY (or run from certbot --deploy-hook / lego --run-hook)"
fi

# A wildcard lineage name (*.example) would not make a good directory name.
name=${name//\*/_}
[[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "bad certificate name '$name'"
[[ -s $fullchain ]] || die "$fullchain: missing or empty"
[[ -s $privkey ]] || die "$privkey: missing or empty"
[[ -d $certs ]] || die "$certs: not a directory"

owner=()
if [[ $(id -u) -eq 0 ]]; then
	getent group "$group" >/dev/null || die "no group '$group' (MTASTSD_GROUP)"
	owner=(-o root -g "$group")
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ).$$
new=.$name.$stamp
tmp=$(mktemp -d "$certs/.$name.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

install -m 0640 "${owner[@]}" "$fullchain" "$tmp/fullchain.pem"
install -m 0640 "${owner[@]}" "$privkey" "$tmp/privkey.pem"
chmod 0750 "$tmp"
[[ ${#owner[@]} -eq 0 ]] || chown root:"$group" "$tmp"
mv -T "$tmp" "$certs/$new"
trap - EXIT

if [[ -e $certs/$name && ! -L $certs/$name ]]; then
	# first run over a plain directory or file: move it aside (hidden, so ignored)
	mv -T "$certs/$name" "$certs/.$name.old.$stamp"
fi
ln -s "$new" "$certs/.$name.link.$stamp"
mv -T "$certs/.$name.link.$stamp" "$certs/$name"

# Keep the previous pair (a rollback by hand is one ln -sfn), drop older ones.
# Only names this script makes for NAME: .NAME.<stamp> and .NAME.old.<stamp>.
pattern='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.*'
mapfile -t old < <(find "$certs" -mindepth 1 -maxdepth 1 \
	\( -name ".$name.$pattern" -o -name ".$name.old.$pattern" \) ! -name "$new" \
	-printf '%T@ %f\n' | sort -rn | tail -n +2 | cut -d' ' -f2-)
for o in "${old[@]}"; do
	rm -rf -- "${certs:?}/$o"
done

echo "mtastsd-deploy-hook: $certs/$name -> $new"
if [[ $reload == yes ]]; then
	systemctl reload mtastsd
fi
