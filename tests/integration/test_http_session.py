"""Webmail sessions: login through the auth process, the __Host- session
cookie, the CSRF value and the Origin check on every state change, logout
that ends the session on the server, timeouts, and what auth.db keeps of a
session (the SHA-256 of its token, never the token)."""
import base64
import hashlib
import http.client
import json
import sqlite3
import time

import pytest

from conftest import PASSWORDS, Dijk

ALICE = "alice@example.test"


def call(d, method, path, body=None, headers=None, origin=True, tls=False):
    h = {"Content-Type": "application/json"}
    if origin:
        h["Origin"] = f"http://127.0.0.1:{d.http_port}"
    h.update(headers or {})
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=15)
    try:
        data = json.dumps(body) if isinstance(body, dict) else body
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed
    finally:
        c.close()


def login(d, user=ALICE, password=None, **kw):
    return call(d, "POST", "/api/login",
                {"username": user, "password": password or PASSWORDS[user]}, **kw)


def session_cookie(headers):
    cookie = headers["set-cookie"]
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == "__Host-dijk_session"
    return value, [p.strip() for p in cookie.split(";")[1:]]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("session") / "data")
    d.start()
    yield d
    assert d.stop() == 0


def test_login_gives_a_host_cookie_and_a_csrf_value(web):
    status, h, body = login(web)
    assert status == 200, body
    token, attrs = session_cookie(h)
    assert len(token) == 43 and len(base64.urlsafe_b64decode(token + "=")) == 32
    assert "Path=/" in attrs and "Secure" in attrs and "HttpOnly" in attrs
    assert "SameSite=Strict" in attrs
    # A browser-session cookie: the server alone decides when it ends.
    assert not any(a.startswith(("Max-Age", "Expires")) for a in attrs)
    assert not any(a.startswith("Domain") for a in attrs)
    assert body["username"] == ALICE and len(body["csrf"]) == 43
    assert body["csrf"] != token
    # The session answers with the same CSRF value.
    status, _, again = call(web, "GET", "/api/session",
                            headers={"Cookie": f"__Host-dijk_session={token}"})
    assert status == 200 and again == body
    # Every login is a session of its own.
    _, h2, body2 = login(web)
    assert session_cookie(h2)[0] != token and body2["csrf"] != body["csrf"]


def test_wrong_logins_say_nothing_about_the_account(web):
    wrong = login(web, password="not-the-password")
    nobody = login(web, user="nobody@example.test", password="whatever-it-is")
    otherdomain = login(web, user="alice@other.test", password="whatever-it-is")
    for status, h, body in (wrong, nobody, otherdomain):
        assert status == 401 and "set-cookie" not in h
        assert body == {"error": "invalid credentials"}


@pytest.mark.parametrize("headers,origin", [
    ({}, False),
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "https://127.0.0.1"}, False),
    ({"Origin": "null"}, False),
    ({"Sec-Fetch-Site": "cross-site"}, True),
    ({"Sec-Fetch-Site": "same-site"}, True),
])
def test_login_from_another_origin_is_refused(web, headers, origin):
    status, h, _ = login(web, headers=headers, origin=origin)
    assert status == 403 and "set-cookie" not in h


@pytest.mark.parametrize("body", [
    "", "{", "[]", '{"username": "a"}', '{"username": 1, "password": "x"}',
    '{"username": "", "password": "x"}', '{"username": "a", "password": ""}',
    '{"username": "a", "username": "b", "password": "x"}',
    '{"username": "' + "a" * 400 + '", "password": "x"}',
    '{"username": "a", "password": "' + "p" * 9000 + '"}',
])
def test_malformed_logins_get_400(web, body):
    status, h, _ = call(web, "POST", "/api/login", body)
    assert status == 400 and "set-cookie" not in h


def test_methods(web):
    assert call(web, "GET", "/api/login")[0] == 405
    assert call(web, "GET", "/api/logout")[0] == 405
    assert call(web, "POST", "/api/session", {})[0] == 405


@pytest.mark.parametrize("cookie", [
    None, "", "__Host-dijk_session=", "__Host-dijk_session=abc",
    "__Host-dijk_session=" + "A" * 43,
    "__Host-dijk_session=" + base64.urlsafe_b64encode(b"\0" * 32).decode().rstrip("="),
    "dijk_session=" + "A" * 43,
])
def test_no_or_forged_session_is_401(web, cookie):
    headers = {"Cookie": cookie} if cookie is not None else {}
    assert call(web, "GET", "/api/session", headers=headers)[0] == 401


def test_logout_needs_csrf_and_origin_then_ends_the_session(web):
    status, h, body = login(web)
    token, _ = session_cookie(h)
    cookie = {"Cookie": f"__Host-dijk_session={token}"}
    # Without the CSRF header, with a wrong one, or from another origin.
    assert call(web, "POST", "/api/logout", {}, headers=cookie)[0] == 403
    assert call(web, "POST", "/api/logout", {},
                headers={**cookie, "X-Dijk-CSRF": "x" * 43})[0] == 403
    assert call(web, "POST", "/api/logout", {},
                headers={**cookie, "X-Dijk-CSRF": token})[0] == 403
    assert call(web, "POST", "/api/logout", {},
                headers={**cookie, "X-Dijk-CSRF": body["csrf"],
                         "Origin": "http://evil.example"})[0] == 403
    assert call(web, "POST", "/api/logout", {},
                headers={**cookie, "X-Dijk-CSRF": body["csrf"]},
                origin=False)[0] == 403
    # Still alive after all that.
    assert call(web, "GET", "/api/session", headers=cookie)[0] == 200
    status, h, _ = call(web, "POST", "/api/logout", {},
                        headers={**cookie, "X-Dijk-CSRF": body["csrf"]})
    assert status == 200
    value, attrs = session_cookie(h)
    assert value == "" and "Max-Age=0" in attrs
    # Ended on the server: the old cookie is worth nothing now.
    assert call(web, "GET", "/api/session", headers=cookie)[0] == 401
    assert call(web, "POST", "/api/logout", {},
                headers={**cookie, "X-Dijk-CSRF": body["csrf"]})[0] == 401


def test_auth_db_keeps_only_the_hash(web):
    status, h, _ = login(web, user="bob@example.test",
                         headers={"User-Agent": "Test\x01Browser/1.0"})
    token, _ = session_cookie(h)
    raw = base64.urlsafe_b64decode(token + "=")
    db = sqlite3.connect(f"file:{web.data / 'auth.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT hash, user_agent, remote FROM web_session").fetchall()
    finally:
        db.close()
    assert (hashlib.sha256(raw).digest(), "Test?Browser/1.0", "127.0.0.1") \
        in [(bytes(r[0]), r[1], r[2]) for r in rows]
    for path in web.data.glob("auth.db*"):
        data = path.read_bytes()
        assert raw not in data and token.encode() not in data, path


def test_sessions_end_when_idle_and_at_their_lifetime(dijk_factory):
    """Two sessions on one clock: one left alone ends after the idle time,
    one used every second still ends at its lifetime."""
    d = dijk_factory("timeouts", {"http.session_idle": "5",
                                  "http.session_lifetime": "11"})
    cookies = []
    for _ in range(2):
        _, h, _ = login(d)
        token, attrs = session_cookie(h)
        cookies.append({"Cookie": f"__Host-dijk_session={token}"})
    idle, busy = cookies
    began = time.monotonic()
    assert call(d, "GET", "/api/session", headers=idle)[0] == 200
    idle_checked = False
    while time.monotonic() - began < 9.5:
        assert call(d, "GET", "/api/session", headers=busy)[0] == 200
        if not idle_checked and time.monotonic() - began > 7:
            assert call(d, "GET", "/api/session", headers=idle)[0] == 401
            idle_checked = True
        time.sleep(0.5)
    assert idle_checked
    time.sleep(max(0.0, 12.5 - (time.monotonic() - began)))
    assert call(d, "GET", "/api/session", headers=busy)[0] == 401


def test_sessions_of_a_deleted_user_end(dijk_factory):
    d = dijk_factory("deleted")
    _, h, _ = login(d, user="bob@example.test")
    token, _ = session_cookie(h)
    cookie = {"Cookie": f"__Host-dijk_session={token}"}
    assert call(d, "GET", "/api/session", headers=cookie)[0] == 200
    d.cli("user", "del", "bob@example.test")
    assert call(d, "GET", "/api/session", headers=cookie)[0] == 401


def test_auth_process_down_is_503_not_401(dijk_factory):
    """A session check the auth process cannot answer is a temporary
    failure (503), not a logout: the session works again afterwards."""
    import os
    import signal
    import threading
    from conftest import wait_until
    d = dijk_factory("authdown", {"workers": "1"})
    _, h, _ = login(d)
    token, _ = session_cookie(h)
    cookie = {"Cookie": f"__Host-dijk_session={token}"}
    (auth,) = d.children("auth")
    os.kill(auth, signal.SIGSTOP)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        status=call(d, "GET", "/api/session", headers=cookie)[0]))
    t.start()
    time.sleep(0.5)
    os.kill(auth, signal.SIGKILL)
    t.join(15)
    assert result.get("status") == 503
    wait_until(lambda: d.children("auth") and d.children("auth") != [auth], 10,
               what="a new auth process")
    wait_until(lambda: call(d, "GET", "/api/session", headers=cookie)[0] == 200, 10,
               what="the session to work again")


def test_a_session_holds_only_at_the_host_it_was_made_at(web):
    """SECURITY.md 22: a session cookie of one brand's host is refused on
    another brand's host served by the same dijk; it still holds at its
    own host (the refusal does not end it), and the port does not count."""
    brand_a = f"webmail.north.test:{web.http_port}"
    brand_b = f"webmail.south.test:{web.http_port}"
    status, h, body = login(web, headers={"Host": brand_a,
                                           "Origin": f"http://{brand_a}"})
    assert status == 200, body
    token, _ = session_cookie(h)
    cookie = {"Cookie": f"__Host-dijk_session={token}"}
    status, _, _ = call(web, "GET", "/api/session", headers={**cookie, "Host": brand_b})
    assert status == 401
    status, _, _ = call(web, "POST", "/jmap/api", {"using": [], "methodCalls": []},
                        headers={**cookie, "Host": brand_b, "Origin": f"http://{brand_b}",
                                 "X-Dijk-CSRF": body["csrf"]})
    assert status == 401
    for host in (brand_a, "WEBMAIL.North.test", "webmail.north.test:1"):
        status, _, again = call(web, "GET", "/api/session", headers={**cookie, "Host": host})
        assert status == 200 and again["username"] == ALICE, host
    assert "refused at webmail.south.test" in web.logs()
