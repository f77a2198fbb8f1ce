#!/usr/bin/env python3
"""Turn `mtastsd records --format json` into external-dns DNSEndpoint objects.

One DNSEndpoint per domain, named mtastsd-<domain>, holding that domain's
_mta-sts (TXT or CNAME) and _smtp._tls (TXT) records, printed as YAML for
`kubectl apply -f -`. external-dns then writes them to the DNS provider.

    mtastsd records -c /etc/mtastsd/mtastsd.ini --format json \\
        | records-to-dnsendpoint.py --namespace mtastsd | kubectl apply -f -

    # or from a running replica's admin listener:
    curl -s http://mtastsd-admin.mtastsd:9090/records?format=json \\
        | records-to-dnsendpoint.py --namespace mtastsd | kubectl apply -f -

external-dns must run with the CRD source and manage TXT and CNAME records:
    --source=crd --crd-source-apiversion=externaldns.k8s.io/v1alpha1
    --crd-source-kind=DNSEndpoint
    --managed-record-types=TXT --managed-record-types=CNAME
    --txt-prefix=extdns-%{record_type}.   (ownership records away from _mta-sts)

Python 3 standard library only; the YAML is written by hand (every string is a
JSON string, which YAML reads as a double-quoted scalar).
"""

import argparse
import hashlib
import json
import os
import re
import sys

# The reader shared with the other publisher lives next to this script, wherever it is
# run from; no __pycache__ is left there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from mtastsd_records import InputError, add_input_argument, read_records  # noqa: E402

API_VERSION = "externaldns.k8s.io/v1alpha1"
KIND = "DNSEndpoint"
MANAGED_BY = "mtastsd-records"


def q(s):
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(s, ensure_ascii=True)


def object_name(prefix, domain):
    """A valid metadata.name (DNS-1123 subdomain, at most 253 characters)."""
    name = re.sub(r"[^a-z0-9.-]", "-", (prefix + domain).lower()).strip(".-")
    if len(name) > 253:
        digest = hashlib.sha256(domain.encode()).hexdigest()[:16]
        name = name[: 253 - 17].rstrip(".-") + "-" + digest
    return name


def render(data, namespace=None, prefix="mtastsd-"):
    out = []
    for dom in data:
        out.append("---")
        out.append(f"apiVersion: {API_VERSION}")
        out.append(f"kind: {KIND}")
        out.append("metadata:")
        out.append(f"  name: {q(object_name(prefix, dom['domain']))}")
        if namespace:
            out.append(f"  namespace: {q(namespace)}")
        out.append("  labels:")
        out.append(f"    app.kubernetes.io/managed-by: {q(MANAGED_BY)}")
        out.append("  annotations:")
        out.append(f"    mtastsd/domain: {q(dom['domain'])}")
        if dom.get("id") is not None:
            out.append(f"    mtastsd/id: {q(str(dom['id']))}")
        out.append("spec:")
        if not dom["records"]:
            # an empty list, so that applying it removes records published before
            out.append("  endpoints: []")
            continue
        out.append("  endpoints:")
        for r in dom["records"]:
            target = r["value"]
            if r["type"] == "CNAME":
                target = target.rstrip(".")
            out.append(f"    - dnsName: {q(r['name'].rstrip('.'))}")
            out.append(f"      recordType: {q(r['type'])}")
            out.append(f"      recordTTL: {r['ttl']}")
            out.append("      targets:")
            out.append(f"        - {q(target)}")
    return "\n".join(out) + "\n" if out else ""


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Turn `mtastsd records --format json` into external-dns DNSEndpoint "
        "objects (YAML on stdout), one per domain.",
        epilog="Example: mtastsd records --format json | %(prog)s -n mtastsd | kubectl apply -f -",
    )
    add_input_argument(p)
    p.add_argument("-n", "--namespace", help="metadata.namespace of every object (default: none)")
    p.add_argument("--name-prefix", default="mtastsd-",
                   help="prefix of every object name, followed by the domain (default: %(default)s)")
    args = p.parse_args(argv)

    try:
        data = read_records(args.file)
    except (OSError, InputError) as e:
        print(f"records-to-dnsendpoint: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(render(data, args.namespace, args.name_prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
