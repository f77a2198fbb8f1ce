#!/usr/bin/env python3
"""Turn `mtastsd records --format json` into an nsupdate(1) script.

For every domain, one update message: each record's name is cleared of TXT and
CNAME data (a _mta-sts name holds one or the other, and a domain may switch
between a static policy, TXT, and a delegated one, CNAME), then the record is
added; `send` ends the message. Run it with TSIG:

    mtastsd records -c /etc/mtastsd/mtastsd.ini --format json \\
        | records-to-nsupdate.py --server 192.0.2.53 \\
        | nsupdate -k /etc/mtastsd/ddns.key

Records the JSON does not contain are left alone (removing tlsrpt from a domain
does not delete its _smtp._tls record). Python 3 standard library only.
"""

import argparse
import os
import re
import sys

# The reader shared with the other publisher lives next to this script, wherever it is
# run from; no __pycache__ is left there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from mtastsd_records import InputError, add_input_argument, read_records  # noqa: E402

# nsupdate reads one command per line: a name, and a CNAME target, is one token
TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def check_record(where, r):
    """What nsupdate cannot take, beyond the common checks of mtastsd_records."""
    if not TOKEN.fullmatch(r["name"]):
        raise InputError(f"{where}: bad record name {r['name']!r}")
    if r["type"] == "CNAME" and not TOKEN.fullmatch(r["value"]):
        raise InputError(f"{where}: bad CNAME target {r['value']!r}")


def absolute(name):
    return name if name.endswith(".") else name + "."


def txt_rdata(value):
    """TXT rdata in master-file syntax: quoted character-strings of at most 255 bytes
    each (longer values are split, RFC 1035 3.3.14), with \\" and \\\\ escaped and
    bytes outside printable ASCII as \\DDD."""
    raw = value.encode("utf-8")
    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    out = []
    for chunk in chunks:
        s = []
        for b in chunk:
            if b in (0x22, 0x5C):
                s.append("\\" + chr(b))
            elif 0x20 <= b < 0x7F:
                s.append(chr(b))
            else:
                s.append(f"\\{b:03d}")
        out.append('"' + "".join(s) + '"')
    return " ".join(out)


def server_line(server):
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", server)
    if m is None:
        m = re.fullmatch(r"([^:\s\[\]]+)(?::(\d+))?", server)
    if m is None:
        raise InputError(f"--server: expected HOST, HOST:PORT or [IPv6]:PORT, not {server!r}")
    host, port = m.group(1), m.group(2)
    return f"server {host} {port}" if port else f"server {host}"


def render(data, server=None, zone=None):
    out = []
    if server:
        out.append(server_line(server))
    for dom in data:
        out.append(f"; {dom['domain']}")
        if not dom["records"]:
            out.append("; no records to publish")
            continue
        if zone:
            out.append(f"zone {absolute(zone)}")
        for r in dom["records"]:
            name = absolute(r["name"])
            other = "CNAME" if r["type"] == "TXT" else "TXT"
            out.append(f"update delete {name} {r['type']}")
            out.append(f"update delete {name} {other}")
            if r["type"] == "TXT":
                data_text = txt_rdata(r["value"])
            else:
                data_text = absolute(r["value"])
            out.append(f"update add {name} {r['ttl']} {r['type']} {data_text}")
        out.append("send")
    return "\n".join(out) + "\n" if out else ""


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Turn `mtastsd records --format json` into an nsupdate script "
        "(stdout): per domain, delete and re-add its records, then send.",
        epilog="Example: mtastsd records --format json | %(prog)s --server 192.0.2.53 "
        "| nsupdate -k ddns.key",
    )
    add_input_argument(p)
    p.add_argument("-s", "--server", help="primary server: HOST, HOST:PORT or [IPv6]:PORT "
                   "(default: nsupdate finds it from the zone's SOA)")
    p.add_argument("-z", "--zone", help="zone of every record (default: nsupdate finds each "
                   "domain's zone itself); only when all domains are in this one zone")
    args = p.parse_args(argv)

    try:
        data = read_records(args.file, check_record)
        script = render(data, args.server, args.zone)
    except (OSError, InputError) as e:
        print(f"records-to-nsupdate: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(script)
    return 0


if __name__ == "__main__":
    sys.exit(main())
