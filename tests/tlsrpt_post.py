#!/usr/bin/python3
"""tlsrpt_post.py: TLS reports for test-tlsrpt-http.sh, shaped and posted as senders do.

  split FIXTURE DOMAIN OUT     the fixture's policies of DOMAIN alone (a sender reports each
                               policy domain to that domain's own rua), its report-id
                               suffixed with the domain, as JSON into OUT; its dates moved
                               by whole days so that 2026-12-02 is the day before yesterday
                               (the server sums up the last 7 days of the clock)
  bad KIND OUT                 a report broken in one way: syntax, type, negative, date
  bomb OUT                     gzip of 64 MiB of zeros (about 64 KiB compressed)
  slow PORT CA HOST SECONDS    posts a valid head and trickles the body one byte a second;
                               exits 0 when the server closes the connection unanswered
                               within SECONDS, 1 otherwise
  chunked PORT CA HOST FILE    posts FILE (gzip) with Transfer-Encoding: chunked in chunks
                               of 100 bytes; prints the status
"""
import datetime
import gzip
import json
import socket
import ssl
import sys
import time


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def split(fixture, domain, out):
    doc = load(fixture)
    doc["policies"] = [p for p in doc["policies"]
                       if p["policy"]["policy-domain"].lower().rstrip(".") == domain]
    if not doc["policies"]:
        sys.exit(f"{fixture} has no policy of {domain}")
    doc["report-id"] = doc["report-id"] + "." + domain
    shift = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=2)
             - datetime.date(2026, 12, 2))
    for key in ("start-datetime", "end-datetime"):
        text = doc["date-range"][key]
        day = datetime.date.fromisoformat(text[:10]) + shift
        doc["date-range"][key] = day.isoformat() + text[10:]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f)


GOOD = {
    "organization-name": "Bad Example",
    "date-range": {"start-datetime": "2026-12-02T00:00:00Z",
                   "end-datetime": "2026-12-02T23:59:59Z"},
    "contact-info": "tlsrpt@bad.example",
    "report-id": "bad-1",
    "policies": [{
        "policy": {"policy-type": "sts", "policy-domain": "example.com",
                   "policy-string": ["version: STSv1", "mode: testing", "mx: mx1.example.com",
                                     "max_age: 86400"],
                   "mx-host": ["mx1.example.com"]},
        "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0},
    }],
}


def bad(kind, out):
    doc = json.loads(json.dumps(GOOD))
    text = None
    if kind == "syntax":
        text = json.dumps(doc)[:-3]
    elif kind == "type":
        doc["policies"][0]["summary"]["total-successful-session-count"] = "5"
    elif kind == "negative":
        doc["policies"][0]["summary"]["total-failure-session-count"] = -1
    elif kind == "date":
        doc["date-range"]["start-datetime"] = "yesterday"
    elif kind == "unknown":
        doc["policies"][0]["policy"]["policy-domain"] = "unknown.example"
    else:
        sys.exit(f"unknown kind {kind}")
    with open(out, "w", encoding="utf-8") as f:
        f.write(text if text is not None else json.dumps(doc))


def bomb(out):
    with gzip.open(out, "wb", compresslevel=9) as f:
        zeros = b"\0" * (1 << 20)
        for _ in range(64):
            f.write(zeros)


def connect(port, ca, host):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    return ctx.wrap_socket(raw, server_hostname=host)


def slow(port, ca, host, seconds):
    s = connect(port, ca, host)
    body = json.dumps(GOOD).encode()
    s.sendall((f"POST /tlsrpt HTTP/1.1\r\nHost: {host}\r\n"
               f"Content-Type: application/tlsrpt+json\r\nContent-Length: {len(body)}\r\n\r\n")
              .encode())
    start = time.monotonic()
    for i in range(len(body) - 1):  # never the last byte
        try:
            s.sendall(body[i:i + 1])
            s.settimeout(1)
            got = s.recv(4096)
            if got == b"":
                break
            print(f"answered while the body was incomplete: {got!r}")
            return 1
        except socket.timeout:
            pass
        except (ConnectionError, ssl.SSLError, OSError):
            break
        if time.monotonic() - start > float(seconds):
            print(f"still open after {seconds} s")
            return 1
    took = time.monotonic() - start
    print(f"closed after {took:.1f} s")
    return 0 if took <= float(seconds) else 1


def chunked(port, ca, host, path):
    with open(path, "rb") as f:
        body = f.read()
    s = connect(port, ca, host)
    head = (f"POST /tlsrpt HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/tlsrpt+gzip"
            "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                      for i in range(0, len(body), 100))
    s.sendall(head + chunks + b"0\r\n\r\n")
    answer = b""
    while True:
        got = s.recv(4096)
        if not got:
            break
        answer += got
    print(answer.split(b" ")[1].decode())
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "split":
        split(*args)
    elif cmd == "bad":
        bad(*args)
    elif cmd == "bomb":
        bomb(*args)
    elif cmd == "slow":
        return slow(*args)
    elif cmd == "chunked":
        return chunked(*args)
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
