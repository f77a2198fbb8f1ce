"""mtastsd_records: reads and checks `mtastsd records --format json` for the publishers.

Shared by records-to-dnsendpoint.py and records-to-nsupdate.py, which import it from
their own directory. Python 3 standard library only.
"""

import json
import sys

TYPES = ("TXT", "CNAME")


class InputError(Exception):
    pass


def add_input_argument(parser):
    """The positional FILE argument of every publisher (default: stdin)."""
    parser.add_argument("file", nargs="?", default="-",
                        help="the JSON from `mtastsd records --format json` (default: stdin)")


def load_records(text, source, check_record=None):
    """Parses and checks the JSON array that `mtastsd records --format json` prints.

    check_record(where, record), when given, runs after the common checks of each
    record and raises InputError for what one publisher cannot write."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not JSON: {e}") from None
    if not isinstance(data, list):
        raise InputError(f"{source}: expected a JSON array of domains")
    for i, dom in enumerate(data):
        where = f"{source}: domain #{i + 1}"
        if not isinstance(dom, dict) or not isinstance(dom.get("domain"), str):
            raise InputError(f"{where}: expected an object with a \"domain\" string")
        where = f"{source}: {dom['domain']}"
        recs = dom.get("records")
        if not isinstance(recs, list):
            raise InputError(f"{where}: \"records\" must be an array")
        for r in recs:
            if not isinstance(r, dict):
                raise InputError(f"{where}: a record is not an object")
            for key, typ in (("name", str), ("type", str), ("ttl", int), ("value", str)):
                if not isinstance(r.get(key), typ) or isinstance(r.get(key), bool):
                    raise InputError(f"{where}: record field \"{key}\" missing or of the wrong type")
            if r["type"] not in TYPES:
                raise InputError(f"{where}: unsupported record type {r['type']!r}")
            if r["ttl"] < 0:
                raise InputError(f"{where}: negative ttl")
            if check_record is not None:
                check_record(where, r)
    return data


def read_records(path, check_record=None):
    """load_records() on the file at path, or on stdin when path is "-". Raises OSError
    or InputError."""
    if path == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        with open(path, encoding="utf-8") as f:
            text, source = f.read(), path
    return load_records(text, source, check_record)
