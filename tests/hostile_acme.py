#!/usr/bin/env python3
# hostile_acme: an ACME (RFC 8555) server for the ACME client tests that misbehaves on purpose
"""A small HTTPS server on 127.0.0.1 that looks like an ACME CA and breaks the rules.

usage: hostile_acme.py CERT KEY PORT MODE

It listens on 127.0.0.1:PORT with the certificate CERT (and its key KEY), prints
"ready" on stdout once it listens, and logs one line per request (and per refused
connection) on stderr. In the modes that have one, the directory (GET /dir) names
this server itself, with the Host the client sent:

  newNonce https://HOST/nonce   newAccount https://HOST/account
  newOrder https://HOST/order   revokeCert https://HOST/revoke   keyChange https://HOST/key-change

and HEAD or GET /nonce gives a fresh Replay-Nonce. MODE is one of:

  garbage    every answer (the directory too) is 200 with bytes that are not JSON,
             labelled application/json
  huge       /dir is 200 application/json, close-delimited (no Content-Length): a valid
             directory padded to 64 MiB, sent at about 3 MB/s; a client without a size
             cap is caught by its next request (a HEAD /nonce in the log)
  slow       after the request, the answer comes one byte every 5 s, forever
  wrongtype  wrong JSON types everywhere: in the directory newNonce is a number, the
             other members are not strings; /nonce has no Replay-Nonce; POST /account
             and /order answer 201 with no Location and "status" an object. (A client
             stops at newNonce; the other answers are there for tests that ask for them.)
  redirect   every request is answered 302 with Location http://HOST/PATH (plain HTTP
             to this TLS port: a client that follows shows as "not TLS" in the log)
  problem    the first POST to /account and the first to /order answer 400
             application/problem+json, type malformed, detail "hostile says no"; every
             other POST answers 400 badNonce, with a fresh Replay-Nonce each time
  reset      every connection is reset (RST) right after it is accepted
  ari        a CA with ARI (RFC 9773): the directory has renewalInfo, and GET
             /renewal-info/ID answers a suggested window that ended an hour ago (renew
             now); every POST answers 400 malformed "ari says no"
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("garbage", "huge", "slow", "wrongtype", "redirect", "problem", "reset", "ari")
HUGE = 64 * 1024 * 1024
GARBAGE = b"\x89PNG\r\n\x1a\n<html>not json {{{ \xff\xfe\x00 ]]]\n"

lock = threading.Lock()
posts = {}	# mode problem: POSTs seen per path


def log(fmt, *args):
    print("hostile_acme: " + fmt % args, file=sys.stderr, flush=True)


def nonce():
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def directory(base):
    return {
        "newNonce": base + "/nonce",
        "newAccount": base + "/account",
        "newOrder": base + "/order",
        "revokeCert": base + "/revoke",
        "keyChange": base + "/key-change",
        "meta": {"termsOfService": base + "/terms"},
    }


def problem(kind, detail):
    return {"type": "urn:ietf:params:acme:error:" + kind, "detail": detail}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "hostile_acme"

    def log_request(self, code="-", size="-"):
        pass	# every request line is logged when it arrives (dispatch)

    def log_message(self, fmt, *args):
        log("%s", fmt % args)

    def base(self):
        return "https://" + self.headers.get("Host", "localhost:%d" % self.server.server_port)

    def reply(self, status, ctype=None, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def stream_head(self, ctype):
        """A 200 head with no length: the body ends when the connection does."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def dispatch(self):
        log("%s %s", self.server.mode, self.requestline)
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        elif length:
            self.close_connection = True
        path = self.path.split("?", 1)[0]
        getattr(self, "mode_" + self.server.mode)(path)

    do_GET = do_HEAD = do_POST = dispatch

    def mode_garbage(self, path):
        self.reply(200, "application/json", GARBAGE)

    def mode_huge(self, path):
        if path != "/dir":
            self.reply(200, "application/json", directory(self.base()),
                       [("Replay-Nonce", nonce())])
            return
        head = json.dumps(directory(self.base()))[:-1].encode() + b', "pad": "'
        tail = b'"}'
        self.stream_head("application/json")
        self.wfile.write(head)
        left = HUGE - len(head) - len(tail)
        chunk = b"x" * 65536
        while left > 0:
            self.wfile.write(chunk[:left])
            left -= min(left, len(chunk))
            time.sleep(0.02)
        self.wfile.write(tail)

    def mode_slow(self, path):
        self.close_connection = True
        data = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\n\r\n{\"newNonce\": \"")
        i = 0
        while True:	# ends when the client hangs up (the write fails)
            self.wfile.write(data[i:i + 1] if i < len(data) else b"x")
            self.wfile.flush()
            i += 1
            time.sleep(5)

    def mode_wrongtype(self, path):
        if path == "/dir":
            self.reply(200, "application/json", {
                "newNonce": 12345, "newAccount": [self.base() + "/account"],
                "newOrder": {"url": self.base() + "/order"}, "revokeCert": True,
                "keyChange": None, "meta": "terms"})
        elif path == "/nonce":
            self.reply(200 if self.command == "HEAD" else 204)
        elif path == "/account":
            self.reply(201, "application/json", {"status": {"valid": True}, "orders": 7,
                       "contact": "mailto:x@example.test"})
        elif path == "/order":
            self.reply(201, "application/json", {
                "status": {"pending": 1}, "expires": 0, "identifiers": "example.test",
                "authorizations": self.base() + "/authz", "finalize": 42})
        else:
            self.reply(200, "application/json", {"status": [], "type": 1, "url": False})

    def mode_redirect(self, path):
        self.reply(302, "text/plain", b"see elsewhere\n",
                   [("Location", "http://%s%s" % (self.headers.get("Host", "localhost"),
                                                  self.path))])

    def mode_problem(self, path):
        if self.command != "POST":
            if path == "/dir":
                self.reply(200, "application/json", directory(self.base()))
            else:
                self.reply(200 if self.command == "HEAD" else 204, None, b"",
                           [("Replay-Nonce", nonce())])
            return
        with lock:
            posts[path] = posts.get(path, 0) + 1
            first = posts[path] == 1 and path in ("/account", "/order")
        if first:
            body = problem("malformed", "hostile says no")
        else:
            body = problem("badNonce", "hostile rejects every nonce")
        self.reply(400, "application/problem+json", body, [("Replay-Nonce", nonce())])


    def mode_ari(self, path):
        if path == "/dir":
            d = directory(self.base())
            d["renewalInfo"] = self.base() + "/renewal-info"
            self.reply(200, "application/json", d)
        elif path.startswith("/renewal-info/"):
            t = time.time() - 3600
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            self.reply(200, "application/json", {"suggestedWindow": {
                "start": time.strftime(fmt, time.gmtime(t - 60)),
                "end": time.strftime(fmt, time.gmtime(t))}}, [("Retry-After", "21600")])
        elif self.command != "POST":
            self.reply(200 if self.command == "HEAD" else 204, None, b"",
                       [("Replay-Nonce", nonce())])
        else:
            self.reply(400, "application/problem+json", problem("malformed", "ari says no"),
                       [("Replay-Nonce", nonce())])


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, mode, ctx):
        self.mode = mode
        self.ctx = ctx
        super().__init__(("127.0.0.1", port), Handler)

    def finish_request(self, request, client_address):
        """Runs in the connection's thread: the reset, or TLS, then HTTP."""
        if self.mode == "reset":
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            log("reset: connection from %s:%d", *client_address)
            request.close()
            return
        request.settimeout(30)
        try:
            first = request.recv(1, socket.MSG_PEEK)
            if first and first != b"\x16":
                log("%s: not TLS from %s:%d (a client followed http://?): %r", self.mode,
                    client_address[0], client_address[1], request.recv(200))
                return
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log("%s: no TLS with %s:%d: %s", self.mode, client_address[0], client_address[1], e)
            return
        if self.mode == "slow":
            conn.settimeout(None)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError) as e:
            log("%s: connection from %s:%d ended: %s", self.mode,
                client_address[0], client_address[1], e)
        finally:
            conn.close()


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in MODES:
        print("usage: hostile_acme.py CERT KEY PORT MODE (MODE: %s)" % " ".join(MODES),
              file=sys.stderr)
        return 2
    cert, key, port, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    server = Server(port, mode, ctx)
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
