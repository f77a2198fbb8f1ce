#!/usr/bin/env python3
# hostile_upstream: a provider policy host for the proxy tests that misbehaves on demand
"""A small HTTPS server on 127.0.0.1 for test_upstream (SPEC.md cases 31-37).

Its behaviour is switched at runtime through files in --dir, re-read on every
connection, so a test changes it without restarting anything:

  DIR/mode     one word (below); missing or empty means "ok"
  DIR/policy   the body served in mode ok
  DIR/alt      a different, valid body: what every hostile mode carries, so that a
               client that wrongly accepted the answer would serve it (detectable)

and reports through files it rewrites atomically:

  DIR/port     the TCP port, written once listening
  DIR/counts   "KEY N" lines: "connections" (TCP accepts), "handshakes" (completed TLS
               handshakes), "requests" (complete request heads) and "path:/P" per path

Modes (HTTP-level ones send "Connection: close" and close after the answer):
  ok           200 text/plain; charset=utf-8, DIR/policy
  redirect     302 to https://<Host>/elsewhere (which would serve alt with a 200)
  404, 500     that status, text/plain, alt as the body
  drip         200 text/plain with Content-Length, then alt one byte per second
  big-cl       200 text/plain, alt padded to 65 KiB + 1 KiB, with Content-Length
  big-chunked  the same body chunked (no Content-Length)
  big-close    the same body close-delimited (no Content-Length, no chunking)
  exact-64k    200 text/plain, alt padded to exactly 65536 bytes (the largest allowed)
  html         200 text/html; charset=utf-8, alt
  no-ct        200 without Content-Type, alt
  latin1       200 text/plain; charset=latin1, alt
  bad-maxage   200 text/plain, alt with "max_age: 99999999999"
  blank-line   200 text/plain, alt with a blank line after its first line
  wrong-name   TLS with --wrong-cert (a trusted CA, another name), then like ok with alt
  untrusted    TLS with --untrusted-cert (right name, unknown CA), then ok with alt
  tls10        TLS 1.0 only (OpenSSL @SECLEVEL=0), then ok with alt

--probe-tls10 PORT is a client: it exits 0 when a TLS 1.0 handshake with 127.0.0.1:PORT
completes (to prove the server really offers TLS 1.0), 1 otherwise.

--self-probe-tls10 (with --cert and --key) runs both ends here, on a port of its own: it
exits 0 when this Python's OpenSSL completes a TLS 1.0 handshake at all (the tests skip
when it cannot), 1 otherwise.
"""

import argparse
import os
import socket
import ssl
import sys
import threading
import time
import warnings

# TLS 1.0 is deprecated: offering it is the point of mode tls10.
warnings.filterwarnings("ignore", category=DeprecationWarning)

BIG = 65 * 1024 + 1024
MAX = 65536

lock = threading.Lock()
counts = {"connections": 0, "handshakes": 0, "requests": 0}


def write_atomic(path, data):
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def count(state_dir, key):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        lines = "".join("%s %d\n" % kv for kv in sorted(counts.items()))
        write_atomic(os.path.join(state_dir, "counts"), lines.encode())


def read_file(path, default=b""):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return default


def pad(body, total):
    """body followed by unknown (ignored) policy fields: exactly total bytes."""
    if not body.endswith(b"\n"):
        body += b"\n"
    out = [body]
    left = total - len(body)
    if left < 100:
        raise ValueError("body too long to pad")
    i = 0
    while left >= 200:
        line = b"pad%05d: " % i
        line += b"x" * (100 - len(line) - 1) + b"\n"
        out.append(line)
        left -= 100
        i += 1
    line = b"last: "
    line += b"x" * (left - len(line) - 1) + b"\n"
    out.append(line)
    data = b"".join(out)
    assert len(data) == total
    return data


def head(status, reason, headers):
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    lines += ["%s: %s" % h for h in headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def simple(conn, status, reason, ctype, body, extra=()):
    headers = list(extra)
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    headers.append(("Content-Length", str(len(body))))
    conn.sendall(head(status, reason, headers) + body)


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    return data.split(b"\r\n\r\n", 1)[0].decode("latin1")


TEXT = "text/plain; charset=utf-8"


def answer(conn, state_dir, mode, path, host):
    policy = read_file(os.path.join(state_dir, "policy"))
    alt = read_file(os.path.join(state_dir, "alt"))
    if path == "/elsewhere":
        simple(conn, 200, "OK", TEXT, alt)
    elif mode in ("ok",):
        simple(conn, 200, "OK", TEXT, policy)
    elif mode in ("wrong-name", "untrusted", "tls10"):
        simple(conn, 200, "OK", TEXT, alt)
    elif mode == "redirect":
        simple(conn, 302, "Found", TEXT, alt,
               [("Location", "https://%s/elsewhere" % host)])
    elif mode == "404":
        simple(conn, 404, "Not Found", TEXT, alt)
    elif mode == "500":
        simple(conn, 500, "Internal Server Error", TEXT, alt)
    elif mode == "drip":
        conn.sendall(head(200, "OK", [("Content-Type", TEXT),
                          ("Content-Length", str(len(alt)))]))
        for i in range(len(alt)):
            conn.sendall(alt[i:i + 1])
            time.sleep(1)
    elif mode == "big-cl":
        simple(conn, 200, "OK", TEXT, pad(alt, BIG))
    elif mode == "big-chunked":
        big = pad(alt, BIG)
        conn.sendall(head(200, "OK", [("Content-Type", TEXT),
                          ("Transfer-Encoding", "chunked")]))
        for i in range(0, len(big), 4096):
            piece = big[i:i + 4096]
            conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
    elif mode == "big-close":
        big = pad(alt, BIG)
        conn.sendall(head(200, "OK", [("Content-Type", TEXT)]))
        for i in range(0, len(big), 4096):
            conn.sendall(big[i:i + 4096])
    elif mode == "exact-64k":
        simple(conn, 200, "OK", TEXT, pad(alt, MAX))
    elif mode == "html":
        simple(conn, 200, "OK", "text/html; charset=utf-8", alt)
    elif mode == "no-ct":
        simple(conn, 200, "OK", None, alt)
    elif mode == "latin1":
        simple(conn, 200, "OK", "text/plain; charset=latin1", alt)
    elif mode == "bad-maxage":
        lines = [l for l in alt.split(b"\n") if not l.startswith(b"max_age:")]
        body = b"\n".join(l for l in lines if l) + b"\nmax_age: 99999999999\n"
        simple(conn, 200, "OK", TEXT, body)
    elif mode == "blank-line":
        first, rest = alt.split(b"\n", 1)
        simple(conn, 200, "OK", TEXT, first + b"\n\n" + rest)
    else:
        simple(conn, 500, "Unknown Mode", TEXT, b"unknown mode " + mode.encode() + b"\n")


def serve_one(raw, contexts, state_dir):
    mode = read_file(os.path.join(state_dir, "mode")).decode().strip() or "ok"
    ctx = contexts.get(mode, contexts["ok"])
    count(state_dir, "connections")
    conn = None
    try:
        raw.settimeout(10)
        conn = ctx.wrap_socket(raw, server_side=True)
        count(state_dir, "handshakes")
        h = read_head(conn)
        if h is None:
            return
        request = h.split("\r\n")
        parts = request[0].split(" ")
        if len(parts) != 3:
            return
        path = parts[1].split("?", 1)[0]
        host = "localhost"
        for line in request[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "host":
                host = value.strip()
        count(state_dir, "requests")
        count(state_dir, "path:" + path)
        answer(conn, state_dir, mode, path, host)
    except (OSError, ssl.SSLError, ValueError):
        pass	# the client gave up or refused us: that is the point of most modes
    finally:
        try:
            (conn or raw).close()
        except OSError:
            pass


def context(cert, key, tls10=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls10:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def probe_tls10(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s) as t:
                print(t.version())
                return 0 if t.version() == "TLSv1" else 1
    except (OSError, ssl.SSLError) as e:
        print("TLS 1.0 handshake failed: %s" % e, file=sys.stderr)
        return 1


def self_probe_tls10(cert, key):
    try:
        ctx = context(cert, key, tls10=True)
    except (ssl.SSLError, ValueError) as e:
        print("TLS 1.0 server context: %s" % e, file=sys.stderr)
        return 1
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def accept_one():
        raw, _ = ls.accept()
        try:
            with ctx.wrap_socket(raw, server_side=True) as t:
                t.recv(1)
        except (OSError, ssl.SSLError):
            pass

    threading.Thread(target=accept_one, daemon=True).start()
    try:
        return probe_tls10(ls.getsockname()[1])
    finally:
        ls.close()


def main():
    ap = argparse.ArgumentParser(description="hostile MTA-STS policy host for tests")
    ap.add_argument("--dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--wrong-cert")
    ap.add_argument("--wrong-key")
    ap.add_argument("--untrusted-cert")
    ap.add_argument("--untrusted-key")
    ap.add_argument("--probe-tls10", type=int, metavar="PORT")
    ap.add_argument("--self-probe-tls10", action="store_true")
    a = ap.parse_args()
    if a.probe_tls10:
        return probe_tls10(a.probe_tls10)
    if a.self_probe_tls10:
        if not (a.cert and a.key):
            ap.error("--self-probe-tls10 needs --cert and --key")
        return self_probe_tls10(a.cert, a.key)
    if not (a.dir and a.cert and a.key and a.wrong_cert and a.wrong_key and
        a.untrusted_cert and a.untrusted_key):
        ap.error("--dir and every certificate and key are required")

    contexts = {
        "ok": context(a.cert, a.key),
        "wrong-name": context(a.wrong_cert, a.wrong_key),
        "untrusted": context(a.untrusted_cert, a.untrusted_key),
    }
    try:
        contexts["tls10"] = context(a.cert, a.key, tls10=True)
    except (ssl.SSLError, ValueError) as e:
        print("hostile_upstream: TLS 1.0 unavailable here: %s" % e, file=sys.stderr)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    write_atomic(os.path.join(a.dir, "port"), b"%d\n" % ls.getsockname()[1])
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=serve_one, args=(raw, contexts, a.dir), daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
