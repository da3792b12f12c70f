"""Two-factor authentication, app passwords and the Sessions page, through
the webmail API with codes from oathtool, and IMAP/SMTP through imaplib and
smtplib: enrollment needs a good code, a login then needs the second step,
no code works twice, a recovery code works once, wrong codes lock, IMAP and
SMTP refuse the main password once TOTP is on and take app passwords until
they are revoked, and a revoked session's cookie gets 401."""
import base64
import http.client
import imaplib
import json
import smtplib
import sqlite3
import subprocess
import time

import pytest

from conftest import PASSWORDS, Dijk, imap_tls_context
from test_http_session import call, login, session_cookie

ALICE = "alice@example.test"
BOB = "bob@example.test"


def totp(secret, offset=0):
    """The code of secret at now + offset seconds, from oathtool."""
    args = ["oathtool", "--totp", "-b", secret]
    if offset:
        args.append("--now=@%d" % (int(time.time()) + offset))
    return subprocess.run(args, check=True, capture_output=True,
                          text=True).stdout.strip()


class Browser:
    """A signed-in session: its cookie and CSRF value."""

    def __init__(self, d, cookie, csrf):
        self.d, self.cookie, self.csrf = d, cookie, csrf

    def get(self, path):
        return call(self.d, "GET", path,
                    headers={"Cookie": "__Host-dijk_session=" + self.cookie})

    def post(self, path, body, headers=None):
        h = {"Cookie": "__Host-dijk_session=" + self.cookie,
             "X-Dijk-CSRF": self.csrf}
        h.update(headers or {})
        return call(self.d, "POST", path, body, headers=h)


def sign_in(d, user=ALICE, code=None, secret=None):
    status, h, body = login(d, user)
    assert status == 200, body
    if "ticket" in body:
        assert body["second_factor"] == "totp"
        assert "username" not in body and "set-cookie" not in h
        status, h, body = call(d, "POST", "/api/login/code",
                               {"ticket": body["ticket"],
                                "code": code or totp(secret)})
        assert status == 200, body
    cookie, _ = session_cookie(h)
    return Browser(d, cookie, body["csrf"])


def wait_next_step():
    """Sleeps into the next 30 s step, so a fresh code is a new one."""
    time.sleep(30 - time.time() % 30 + 0.5)


def imap_login(d, user, password):
    m = imaplib.IMAP4("127.0.0.1", d.imap_port)
    try:
        m.starttls(imap_tls_context())
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


def smtp_login(d, user, password):
    with smtplib.SMTP("127.0.0.1", d.submission_port, timeout=30) as s:
        s.starttls(context=imap_tls_context())
        try:
            s.login(user, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("twofa") / "data")
    d.start()
    yield d
    assert d.stop() == 0


def enroll(b, user):
    status, _, begun = b.post("/api/2fa/begin", {})
    assert status == 200, begun
    secret = begun["secret"]
    assert len(secret) == 32  # 160 bits in base32
    assert begun["uri"].startswith("otpauth://totp/")
    assert "secret=" + secret in begun["uri"]
    assert begun["qr"].startswith("data:image/svg+xml;base64,")
    # Not on before a good code: the password still opens IMAP.
    assert b.get("/api/2fa")[2]["totp"] is False
    assert imap_login(b.d, user, PASSWORDS[user])
    status, _, _ = b.post("/api/2fa/confirm", {"code": "000000"
                          if totp(secret) != "000000" else "111111"})
    assert status == 403
    used = totp(secret)
    status, _, done = b.post("/api/2fa/confirm", {"code": used})
    assert status == 200, done
    assert len(done["recovery"]) == 10
    assert len(set(done["recovery"])) == 10
    enroll.used = used
    return secret, done["recovery"]


def test_totp_login_app_passwords_and_sessions(web):
    earlier = sign_in(web)
    b = sign_in(web)
    secret, recovery = enroll(b, ALICE)
    # Turning TOTP on ends the account's other sessions, not this one.
    assert earlier.get("/api/session")[0] == 401
    assert b.get("/api/session")[0] == 200
    st = b.get("/api/2fa")[2]
    assert st == {"totp": True, "recovery_left": 10}
    # The secret is stored sealed, not in the clear nor as base32.
    db = sqlite3.connect(web.data / "auth.db")
    box = db.execute("SELECT box FROM totp").fetchone()[0]
    db.close()
    raw = base64.b32decode(secret)
    assert raw not in box and secret.encode() not in box
    assert (web.data / "auth.key").stat().st_mode & 0o777 == 0o600

    # The password alone no longer makes a session.
    status, h, body = login(web)
    assert status == 200 and "ticket" in body and "set-cookie" not in h
    # A wrong password is refused as before, with no ticket.
    status, _, wrong = login(web, password="not the password")
    assert status == 401 and "ticket" not in wrong
    status, _, unknown = login(web, user="nobody@example.test",
                               password="whatever")
    assert (status, unknown) == (401, wrong)
    # A good code but a made-up ticket: refused.
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": "A" * 43, "code": totp(secret)})
    assert status == 401

    # The second step with the code used at enrollment: a replay (the
    # very digits, so a step that passed meanwhile changes nothing).
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": body["ticket"], "code": enroll.used})
    assert status == 401
    # The ticket was used up by that attempt.
    wait_next_step()
    code = totp(secret)
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": body["ticket"], "code": code})
    assert status == 401
    b2 = sign_in(web, code=code)
    assert b2.get("/api/session")[0] == 200
    # The same code a second time, on a fresh ticket: refused.
    status, _, t = login(web)
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": t["ticket"], "code": code})
    assert status == 401

    # A recovery code works once.
    b3 = sign_in(web, code=recovery[0].upper())
    assert b3.get("/api/2fa")[2]["recovery_left"] == 9
    status, _, t = login(web)
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": t["ticket"], "code": recovery[0]})
    assert status == 401

    # IMAP and SMTP: the main password no longer works ...
    assert not imap_login(web, ALICE, PASSWORDS[ALICE])
    assert not smtp_login(web, ALICE, PASSWORDS[ALICE])
    # ... an app password does.
    # Only with the account's password again: a session cookie alone makes
    # no new way in.
    status, _, _ = b.post("/api/app-passwords", {"name": "Thunderbird"})
    assert status == 403
    status, _, _ = b.post("/api/app-passwords", {"name": "Thunderbird",
                                                 "password": "wrong-password-1"})
    assert status == 403
    assert b.get("/api/app-passwords")[2]["app_passwords"] == []
    status, _, app = b.post("/api/app-passwords", {"name": "Thunderbird",
                                                   "password": PASSWORDS[ALICE]})
    assert status == 200, app
    assert len(app["password"]) == 19 and app["name"] == "Thunderbird"
    assert imap_login(web, ALICE, app["password"])
    assert smtp_login(web, ALICE, app["password"])
    # Never for the webmail.
    status, _, _ = login(web, password=app["password"])
    assert status == 401
    listed = b.get("/api/app-passwords")[2]["app_passwords"]
    assert [a["name"] for a in listed] == ["Thunderbird"]
    assert listed[0]["last_used"] > 0 and "password" not in listed[0]
    # Stored as an Argon2id hash.
    db = sqlite3.connect(web.data / "auth.db")
    phc = db.execute("SELECT phc FROM app_password").fetchone()[0]
    db.close()
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert app["password"] not in phc
    # Revoked: refused.
    status, _, _ = b.post("/api/app-passwords/revoke", {"id": app["id"]})
    assert status == 200
    assert b.get("/api/app-passwords")[2]["app_passwords"] == []
    assert not imap_login(web, ALICE, app["password"])
    assert not smtp_login(web, ALICE, app["password"])
    status, _, _ = b.post("/api/app-passwords/revoke", {"id": app["id"]})
    assert status == 404

    # Sessions: b, b2, b3 are listed; b revokes b2.
    sessions = b.get("/api/sessions")[2]["sessions"]
    assert len(sessions) == 3
    assert sum(s["current"] for s in sessions) == 1
    current = [s for s in sessions if s["current"]][0]
    assert len(current["id"]) == 16 and current["remote"] == "127.0.0.1"
    others = [s for s in b2.get("/api/sessions")[2]["sessions"]
              if s["current"]]
    victim = others[0]["id"]
    assert victim != current["id"]
    # Without the CSRF header, or from another origin: refused.
    status, _, _ = call(web, "POST", "/api/sessions/revoke", {"id": victim},
                        headers={"Cookie": "__Host-dijk_session=" + b.cookie})
    assert status == 403
    status, _, _ = b.post("/api/sessions/revoke", {"id": victim},
                          headers={"Origin": "https://evil.test"})
    assert status == 403
    assert b2.get("/api/session")[0] == 200
    status, _, _ = b.post("/api/sessions/revoke", {"id": victim})
    assert status == 200
    assert b2.get("/api/session")[0] == 401
    assert b.get("/api/session")[0] == 200
    assert len(b.get("/api/sessions")[2]["sessions"]) == 2

    # Another account cannot revoke alice's session by its id.
    bob = sign_in(web, user=BOB)
    status, _, _ = bob.post("/api/sessions/revoke", {"id": current["id"]})
    assert status == 404
    assert b.get("/api/session")[0] == 200

    # Turning TOTP off needs the password and a code.
    wait_next_step()
    status, _, _ = b.post("/api/2fa/disable",
                          {"password": "wrong", "code": totp(secret)})
    assert status == 403
    status, _, _ = b.post("/api/2fa/disable",
                          {"password": PASSWORDS[ALICE], "code": totp(secret)})
    assert status == 200
    assert b.get("/api/2fa")[2] == {"totp": False, "recovery_left": 0}
    assert imap_login(web, ALICE, PASSWORDS[ALICE])
    status, h, body = login(web)
    assert status == 200 and "ticket" not in body and "set-cookie" in h


def test_wrong_codes_lock(web):
    b = sign_in(web, user=BOB)
    secret, _ = enroll(b, BOB)
    # A ticket is bound to the address it was given to: from another,
    # even a code that would hold now (the next step's) is refused.
    status, _, t = login(web, user=BOB)
    c = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=15,
                                   source_address=("127.0.0.2", 0))
    c.request("POST", "/api/login/code",
              body=json.dumps({"ticket": t["ticket"],
                               "code": totp(secret, 30)}),
              headers={"Content-Type": "application/json",
                       "Origin": f"http://127.0.0.1:{web.http_port}"})
    assert c.getresponse().status == 401
    c.close()
    good = totp(secret, 60)  # a step outside the window: wrong now
    for i in range(5):
        status, _, t = login(web, user=BOB)
        status, _, _ = call(web, "POST", "/api/login/code",
                            {"ticket": t["ticket"], "code": good})
        assert status == 401
    # Locked: even the right code is refused.
    wait_next_step()
    status, _, t = login(web, user=BOB)
    status, _, _ = call(web, "POST", "/api/login/code",
                        {"ticket": t["ticket"], "code": totp(secret)})
    assert status == 401
    status, _, _ = b.post("/api/2fa/confirm", {"code": totp(secret)})
    assert status == 400  # on already
    status, _, _ = b.post("/api/2fa/disable",
                          {"password": PASSWORDS[BOB], "code": totp(secret)})
    assert status == 429


def test_endpoints_need_a_session(web):
    for path in ("/api/security", "/api/2fa", "/api/sessions",
                 "/api/app-passwords"):
        assert call(web, "GET", path)[0] == 401
    for path in ("/api/2fa/begin", "/api/app-passwords",
                 "/api/sessions/revoke"):
        assert call(web, "POST", path, {})[0] == 401
