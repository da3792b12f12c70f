"""SMTP reception with Python's smtplib: MX delivery, submission with
STARTTLS and implicit TLS, AUTH, the store's contents afterwards."""

import smtplib
import ssl

from conftest import PASSWORDS


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_mx_delivers_to_local_user(dijk):
    body = b"Subject: hello\r\nFrom: x@remote.test\r\n\r\nfirst message\r\n"
    with smtplib.SMTP("127.0.0.1", dijk.smtp_port) as s:
        code, caps = s.ehlo("client.remote.test")
        assert code == 250
        for ext in (b"PIPELINING", b"SIZE 52428800", b"8BITMIME", b"SMTPUTF8",
                    b"ENHANCEDSTATUSCODES", b"STARTTLS", b"CHUNKING"):
            assert ext in caps.split(b"\n")
        assert b"AUTH" not in caps  # never AUTH on the MX port
        refused = s.sendmail("x@remote.test", ["alice@example.test"], body)
        assert refused == {}
    rows = dijk.messages("alice@example.test")
    assert len(rows) == 1
    stored = dijk.message("alice@example.test", rows[0][0])
    assert stored.startswith(b"Received: from client.remote.test ([127.0.0.1])")
    assert stored.endswith(body)
    assert dijk.messages("bob@example.test") == []


def test_submission_starttls_auth_and_queue(dijk):
    with smtplib.SMTP("127.0.0.1", dijk.submission_port) as s:
        s.starttls(context=tls_context())
        s.login("alice@example.test", PASSWORDS["alice@example.test"])
        refused = s.sendmail(
            "alice@example.test",
            ["bob@example.test", "carol@remote.test"],
            b"Subject: both\r\n\r\nlocal and remote\r\n",
        )
        assert refused == {}
    assert len(dijk.messages("bob@example.test")) == 1
    queued = dijk.queue()
    assert len(queued) == 1 and "carol@remote.test" in queued[0]


def test_submissions_implicit_tls(dijk):
    with smtplib.SMTP_SSL("127.0.0.1", dijk.submissions_port, context=tls_context()) as s:
        s.login("bob@example.test", PASSWORDS["bob@example.test"])
        s.sendmail("bob@example.test", ["alice@example.test"], b"Subject: tls\r\n\r\nx\r\n")
    assert len(dijk.messages("alice@example.test")) == 1
