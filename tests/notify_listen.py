#!/usr/bin/python3
"""notify_listen.py: a service manager's notification socket, for test-systemd.sh.

    notify_listen.py SOCKET OUT PORT CA_FILE

Binds an AF_UNIX datagram socket at SOCKET (a path, or @NAME in the abstract namespace)
and appends one line to OUT per datagram: "pid PID: FIELD|FIELD|..." with the sender's pid
from SCM_CREDENTIALS and the newline-separated assignments joined by "|". Right after the
first datagram carrying READY=1 it fetches https://mta-sts.a.test:PORT/.well-known/mta-sts.txt
(SNI and Host mta-sts.a.test, verified against CA_FILE) and appends
"fetch after READY: STATUS" or "fetch after READY: failed: ERROR". Runs until killed.
"""
import socket
import ssl
import struct
import sys


def fetch(port, ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="mta-sts.a.test") as tls:
                tls.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
                            b"Host: mta-sts.a.test\r\nConnection: close\r\n\r\n")
                head = tls.recv(4096).split(b"\r\n", 1)[0]
                return head.decode("ascii", "replace")
    except (OSError, ssl.SSLError) as e:
        return f"failed: {e}"


def main():
    path, out, port, ca_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind("\0" + path[1:] if path.startswith("@") else path)
    ready_seen = False
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while True:
            data, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(12))
            pid = "?"
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = str(struct.unpack("iii", cdata[:12])[0])
            fields = data.decode("utf-8", "replace").split("\n")
            f.write(f"pid {pid}: {'|'.join(fields)}\n")
            if "READY=1" in fields and not ready_seen:
                ready_seen = True
                f.write(f"fetch after READY: {fetch(port, ca_file)}\n")


if __name__ == "__main__":
    main()
