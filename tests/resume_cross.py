#!/usr/bin/python3
"""resume_cross.py PORT CA HOST_A HOST_B 13|12: gets a session ticket from HOST_A (a full
request, so that the TLS 1.3 tickets arrive), then offers it twice: to HOST_A again and to
HOST_B. Prints whether each was resumed, the status line, and the certificate's names on the
HOST_B connection."""
import socket, ssl, sys
port = int(sys.argv[1]); ca = sys.argv[2]; a = sys.argv[3]; b = sys.argv[4]
ver = ssl.TLSVersion.TLSv1_3 if sys.argv[5] == "13" else ssl.TLSVersion.TLSv1_2
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.check_hostname = False   # the point is what the server does with the name
ctx.minimum_version = ctx.maximum_version = ver
def get(host, session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host, session=session)
    s.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d: break
        data += d
    sess, reused = s.session, s.session_reused
    cert = s.getpeercert()
    s.close()
    return sess, reused, data.split(b"\r\n")[0].decode(), cert
sess, _, st, _ = get(a)
_, reused_same, st_same, _ = get(a, sess)
_, reused_cross, st_cross, cert = get(b, sess)
san = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
print("same-name resumed=%s %s; cross-name resumed=%s %s cert=%s" % (reused_same, st_same, reused_cross, st_cross, san))
