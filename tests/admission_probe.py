#!/usr/bin/python3
"""admission_probe.py MODE PORT CA [ARGS]: the connection admission of mtastsd, probed with
real TLS connections from chosen loopback addresses. Prints one line of facts per MODE and
exits 0, or prints what went wrong and exits 1.

  deadline PORT CA SECONDS     a request head trickled one byte every 0.3 s is cut off about
                               SECONDS after the connection started, not kept alive by bytes
  per_ip PORT CA N             N connections from 127.0.0.1 are taken, the next is refused,
                               one from 127.0.0.2 still is
  slowloris PORT CA N          N connections from N addresses trickle their heads; a fresh
                               client still gets the policy, in under a second
  crowd PORT CA N              N connections from two addresses owing their heads, all
                               reopened before each fetch (so none is a second old, as
                               when attackers reconnect as fast as they are shed); a fresh
                               client from a third address still gets the policy, in under
                               a second
  idle PORT CA N               N keep-alive connections idle after a request; a fresh client
                               gets the policy, and one idle connection was closed for it
  admin PORT N                 N slow plain-HTTP connections from 127.0.0.1 to the admin
                               listener; /healthz from 127.0.0.2 answers 200 in under a second
"""
import socket
import ssl
import sys
import time

HOST = "mta-sts.a.test"
REQ = ("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST).encode()


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def tls(port, ca, src="127.0.0.1", timeout=5):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.bind((src, 0))
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, server_hostname=HOST)


def closed(s, wait=0.0):
    """True when the server closed s (EOF or reset), waiting up to wait seconds."""
    s.settimeout(max(wait, 0.01))
    try:
        return s.recv(1) == b""
    except (ConnectionError, ssl.SSLError, OSError) as e:
        return not isinstance(e, socket.timeout)


def fetch(port, ca, src="127.0.0.1"):
    """One policy fetch on a fresh connection: (status line, seconds)."""
    t0 = time.monotonic()
    s = tls(port, ca, src)
    s.sendall(REQ.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    return data.split(b"\r\n")[0].decode(), time.monotonic() - t0


def deadline(port, ca, seconds):
    s = tls(port, ca)
    t0 = time.monotonic()
    for i in range(200):
        try:
            s.sendall(REQ[i % (len(REQ) - 4):i % (len(REQ) - 4) + 1])
        except (ConnectionError, ssl.SSLError, OSError):
            break
        if closed(s, 0.3):
            break
    took = time.monotonic() - t0
    if not closed(s, 0.5):
        fail("still open after %.1f s of trickling" % took)
    if took < seconds - 0.5 or took > seconds + 2.5:
        fail("closed after %.1f s, want about %s" % (took, seconds))
    print("deadline: closed after %.1f s of trickling" % took)


def per_ip(port, ca, n):
    held = [tls(port, ca) for _ in range(n)]
    for s in held:
        if closed(s):
            fail("one of the first %d connections was closed" % n)
    try:
        extra = tls(port, ca)
        if not closed(extra, 1.0):
            fail("connection %d from one address was taken" % (n + 1))
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    status, _ = fetch(port, ca, "127.0.0.2")
    if "200" not in status:
        fail("another address: %s" % status)
    print("per_ip: %d taken, the next refused, another address served" % n)


def slowloris(port, ca, n):
    held = []
    for i in range(n):
        s = tls(port, ca, "127.0.1.%d" % (i + 1))
        s.sendall(REQ[:5])
        held.append(s)
    time.sleep(1.2)  # older than a second: the slowest may be shed for a new client
    worst = 0.0
    for _ in range(5):
        status, took = fetch(port, ca, "127.0.2.1")
        if "200" not in status:
            fail("a fresh client under slowloris: %r" % status)
        worst = max(worst, took)
        for s in held:  # the attackers keep trickling
            try:
                s.sendall(b"x")
            except (ConnectionError, ssl.SSLError, OSError):
                pass
    if worst >= 1.0:
        fail("a fresh client took %.2f s" % worst)
    print("slowloris: fresh clients served in at most %.3f s" % worst)


def crowd(port, ca, n):
    held = []
    worst = 0.0
    for _ in range(5):
        for s in held:
            s.close()
        time.sleep(0.3)  # the server sees them closed
        held = []
        for i in range(n):
            s = tls(port, ca, "127.0.4.%d" % (i % 2 + 1))
            s.sendall(REQ[:5])
            held.append(s)
        status, took = fetch(port, ca, "127.0.2.1")
        if "200" not in status:
            fail("a fresh client among young attackers: %r" % status)
        worst = max(worst, took)
    if worst >= 1.0:
        fail("a fresh client took %.2f s" % worst)
    print("crowd: fresh clients served in at most %.3f s" % worst)


def idle(port, ca, n):
    held = []
    for i in range(n):
        s = tls(port, ca, "127.0.3.%d" % (i + 1))
        s.sendall(REQ)
        data = b""
        while b"max_age:" not in data or not data.endswith(b"\r\n"):
            data += s.recv(4096)  # headers and body come as two TLS records
        held.append(s)
    status, took = fetch(port, ca, "127.0.4.1")
    if "200" not in status:
        fail("a fresh client with the table full of idle ones: %r" % status)
    time.sleep(0.3)
    gone = sum(1 for s in held if closed(s, 0.05))
    if gone < 1:
        fail("no idle connection was closed for the new one (%s)" % took)
    print("idle: fresh client served in %.3f s, %d idle closed" % (took, gone))


def admin(port, n):
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /hea")
        held.append(s)
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(5)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = s.recv(4096)
    took = time.monotonic() - t0
    if not data.startswith(b"HTTP/1.1 200"):
        fail("/healthz: %r" % data[:40])
    if took >= 1.0:
        fail("/healthz took %.2f s" % took)
    print("admin: /healthz in %.3f s with %d slow connections open" % (took, n))


mode = sys.argv[1]
if mode == "admin":
    admin(int(sys.argv[2]), int(sys.argv[3]))
else:
    {"deadline": deadline, "per_ip": per_ip, "slowloris": slowloris, "crowd": crowd,
     "idle": idle}[mode](
        int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
