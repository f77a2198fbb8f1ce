#!/usr/bin/python3
"""smtp_mx.py: SMTP servers (Debian's aiosmtpd) standing in for MX hosts in the tests.

usage: smtp_mx.py SPEC...   with SPEC = ADDRESS:PORT:MODE[:CERT:KEY]
  MODE good        STARTTLS offered, TLS 1.2 and up, with CERT (leaf and chain) and KEY
  MODE nostarttls  no STARTTLS in the EHLO reply
  MODE tls10       STARTTLS, but TLS 1.0 only (and ciphers of SECLEVEL 0)
  MODE silent      accepts connections and never says a word

Prints "ready" on stdout once every server listens; runs until SIGTERM. Mail is refused.
"""
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class RefuseMail:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.7.1 this test MX accepts no mail"


def context(mode, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if mode == "tls10":
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def silent(address, port):
    listener = socket.create_server((address, port))
    held = []

    def accept():
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()


def main(specs):
    controllers = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (3, 5) or parts[2] not in ("good", "nostarttls", "tls10",
                                                         "silent"):
            sys.exit(f"smtp_mx.py: bad spec {spec!r}")
        address, port, mode = parts[0], int(parts[1]), parts[2]
        if mode == "silent":
            silent(address, port)
            continue
        tls = None if mode == "nostarttls" else context(mode, parts[3], parts[4])
        c = Controller(RefuseMail(), hostname=address, port=port, tls_context=tls,
                       require_starttls=False, server_hostname=f"mx-{mode}.test")
        c.start()
        controllers.append(c)
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    for c in controllers:
        c.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
