"""No cleartext authentication (SECURITY.md 11), seen from a plain socket.

Every test client connects from 127.0.0.1, and loopback may log in without
TLS by default (a local webmail or script); auth.cleartext_loopback = no
treats loopback like any other address, which is what a remote client
meets: no AUTH in EHLO before STARTTLS on 587 and 530 for AUTH; IMAP 143
announces LOGINDISABLED and answers LOGIN and AUTHENTICATE with
NO [PRIVACYREQUIRED]; port 25 never offers or takes AUTH, before or after
STARTTLS. After STARTTLS the same login works."""
import base64
import smtplib
import ssl

import pytest

from conftest import PASSWORDS, RawImap, RawSmtp, imap_tls_context

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Dijk
    d = Dijk(tmp_path_factory.mktemp("cleartext") / "data",
             {"auth.cleartext_loopback": "no"}).start()
    yield d
    assert d.stop() == 0


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def plain_auth():
    return base64.b64encode(f"\0{ALICE}\0{PASSWORDS[ALICE]}".encode()).decode()


def test_submission_offers_no_auth_before_starttls(server):
    with RawSmtp(server.submission_port) as s:
        ehlo = s.ehlo()
        assert not any(l.startswith("250-AUTH") or l.startswith("250 AUTH") for l in ehlo), ehlo
        assert any("STARTTLS" in l for l in ehlo), ehlo
        reply = s.cmd(f"AUTH PLAIN {plain_auth()}")
        assert reply[-1].startswith("530 5.7.0"), reply


def test_submission_auth_after_starttls(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=15) as s:
        s.ehlo()
        assert not s.has_extn("auth")
        s.starttls(context=tls_context())
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login(ALICE, PASSWORDS[ALICE])[0] == 235


def test_mx_port_never_takes_auth(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=15) as s:
        s.ehlo()
        assert not s.has_extn("auth")
        code, _ = s.docmd("AUTH", f"PLAIN {plain_auth()}")
        assert code == 503
        s.starttls(context=tls_context())
        s.ehlo()
        assert not s.has_extn("auth")
        code, _ = s.docmd("AUTH", f"PLAIN {plain_auth()}")
        assert code == 503


def test_imap_says_logindisabled_and_refuses_login_before_starttls(server):
    imap = RawImap(server.imap_port)
    try:
        untagged, tagged = imap.cmd("CAPABILITY")
        caps = " ".join(untagged)
        assert "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps, caps
        _, tagged = imap.cmd(f'LOGIN {ALICE} "{PASSWORDS[ALICE]}"')
        assert tagged.startswith("NO [PRIVACYREQUIRED]"), tagged
        _, tagged = imap.cmd(f"AUTHENTICATE PLAIN {plain_auth()}")
        assert tagged.startswith("NO [PRIVACYREQUIRED]"), tagged
    finally:
        imap.close()


def test_imap_login_after_starttls(server):
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        assert "LOGINDISABLED" in m.capabilities
        m.starttls(ssl_context=imap_tls_context())
        assert "LOGINDISABLED" not in m.capabilities
        assert m.login(ALICE, PASSWORDS[ALICE])[0] == "OK"
    finally:
        m.logout()
