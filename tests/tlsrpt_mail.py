#!/usr/bin/python3
"""tlsrpt_mail.py KIND FIXTURE...: prints an RFC 5322 message carrying a TLS report as a
sender's MTA would mail it (RFC 8460 5.3), or a broken one.

  gzip FILE      multipart/report with the JSON of FILE gzip'd, base64, application/tlsrpt+gzip
  json FILE      the same with application/tlsrpt+json, quoted-printable
  bare FILE      the message itself is the application/tlsrpt+gzip part
  foreign FILE   FILE with every policy-domain replaced by a domain served by nobody
  bomb           a gzip part inflating to 64 MiB of zeros
  none           a plain text message without a report
  garbage        bytes that are no message at all
"""
import gzip
import io
import json
import sys
from email import encoders
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText


def headers(m):
    m["From"] = "noreply-smtp-tls-reporting@sender.example"
    m["To"] = "tlsrpt@example.com"
    m["Subject"] = "Report Domain: example.com Submitter: sender.example Report-ID: <x@sender>"
    m["TLS-Report-Domain"] = "example.com"
    m["TLS-Report-Submitter"] = "sender.example"
    return m


def report_message(payload, subtype, cte):
    m = headers(MIMEMultipart("report", report_type="tlsrpt"))
    m.attach(MIMEText("This is an aggregate TLS report from sender.example\n"))
    part = MIMENonMultipart("application", subtype)
    part.set_payload(payload)
    if cte == "base64":
        encoders.encode_base64(part)
    else:
        encoders.encode_quopri(part)
    part.add_header("Content-Disposition", "attachment", filename="report.json.gz")
    m.attach(part)
    return m.as_bytes()


kind = sys.argv[1]
out = sys.stdout.buffer
if kind in ("gzip", "json", "bare", "foreign"):
    text = open(sys.argv[2], "rb").read()
    if kind == "foreign":
        doc = json.loads(text)
        for p in doc["policies"]:
            p["policy"]["policy-domain"] = "other-tenant.example"
        doc["report-id"] += "-foreign"
        text = json.dumps(doc).encode()
    if kind == "json":
        out.write(report_message(text, "tlsrpt+json", "qp"))
    elif kind == "bare":
        m = headers(MIMEApplication(gzip.compress(text), "tlsrpt+gzip"))
        out.write(m.as_bytes())
    else:
        out.write(report_message(gzip.compress(text), "tlsrpt+gzip", "base64"))
elif kind == "bomb":
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as z:
        chunk = b"\0" * (1 << 20)
        for _ in range(64):
            z.write(chunk)
    out.write(report_message(buf.getvalue(), "tlsrpt+gzip", "base64"))
elif kind == "none":
    out.write(headers(MIMEText("no report here\n")).as_bytes())
elif kind == "garbage":
    out.write(bytes(range(256)) * 8)
else:
    sys.exit("unknown kind " + kind)
