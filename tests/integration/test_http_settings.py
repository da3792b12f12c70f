"""The webmail's account endpoints: POST /api/password (checked and stored
by the auth process, which then ends the account's other sessions; IMAP and
SMTP AUTH use the new password at once) and /api/settings (the account's
choice of brand, which follows its owner to a new browser at login)."""
import hashlib
import http.client
import imaplib
import json
import smtplib
import sqlite3
import ssl
import time

import pytest

from conftest import Dijk, add_account

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
SESSION_COOKIE = "__Host-dijk_session"


class Browser:
    """One browser: its own cookie jar and the CSRF value of its session."""

    def __init__(self, d):
        self.d = d
        self.cookies = {}
        self.csrf = None
        self.last_token = None  # the last session cookie, kept past logout

    def request(self, method, path, body=None, headers=None, csrf=True,
                origin=True, cookies=True):
        """(status, headers, [Set-Cookie values], parsed body)."""
        h = {"Content-Type": "application/json"}
        if origin:
            h["Origin"] = f"http://127.0.0.1:{self.d.http_port}"
        if cookies and self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf and self.csrf:
            h["X-Dijk-CSRF"] = self.csrf
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=20)
        try:
            data = json.dumps(body) if isinstance(body, (dict, list)) else body
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            set_cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
            for cookie in set_cookies:
                name, value = cookie.split(";")[0].split("=", 1)
                if value == "" or "Max-Age=0" in cookie:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
                    if name == SESSION_COOKIE:
                        self.last_token = value
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw
            return r.status, {k.lower(): v for k, v in r.getheaders()}, set_cookies, parsed
        finally:
            c.close()

    def login(self, user, password):
        status, _, set_cookies, body = self.request(
            "POST", "/api/login", {"username": user, "password": password}, csrf=False)
        if status == 200:
            self.csrf = body["csrf"]
        return status, set_cookies, body

    def alive(self):
        return self.request("GET", "/api/session")[0]

    def change_password(self, old, new, **kw):
        status, h, _, body = self.request("POST", "/api/password", {"old": old, "new": new}, **kw)
        return status, body

    def settings(self):
        status, _, _, body = self.request("GET", "/api/settings")
        assert status == 200, body
        return body

    def jmap_account(self):
        status, _, _, s = self.request("GET", "/jmap/session")
        assert status == 200, s
        return s["primaryAccounts"][MAIL]

    def jmap(self, name, args):
        status, _, _, body = self.request("POST", "/jmap/api", {
            "using": [CORE, MAIL, SUBMISSION],
            "methodCalls": [[name, args, "c0"]]})
        assert status == 200, body
        [(got, result, _)] = body["methodResponses"]
        assert got == name, result
        return result


def logged_in(d, user, password):
    b = Browser(d)
    status, _, body = b.login(user, password)
    assert status == 200, body
    return b


def brand_cookies(set_cookies):
    return [c for c in set_cookies if c.startswith("dijk_brand=")]


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def imap_login_ok(d, user, password):
    m = imaplib.IMAP4("127.0.0.1", d.imap_port, timeout=20)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def smtp_login_ok(d, user, password):
    with smtplib.SMTP("127.0.0.1", d.submission_port, timeout=20) as s:
        s.starttls(context=tls_context())
        try:
            s.login(user, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


def web_login_ok(d, user, password):
    return Browser(d).login(user, password)[0] == 200


def read_db(path, sql, *args):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def stored_hash(d, user):
    """The PHC string auth.db keeps for user."""
    [(account,)] = read_db(d.data / "meta.db", "SELECT id FROM user WHERE address = ?", user)
    [(phc,)] = read_db(d.data / "auth.db", "SELECT phc FROM password WHERE account_id = ?",
                       account)
    return phc


def auth_db_bytes(d):
    return b"".join(p.read_bytes() for p in sorted(d.data.glob("auth.db*")))


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One server with two brands: north (example.test) and south."""
    d = Dijk(tmp_path_factory.mktemp("settings") / "data")
    d.cli("domain", "add", "south.test")
    d.cli("brand", "add", "north", "--display", "North Net", "--color", "#1a6b3c",
          "--domain", "example.test")
    d.cli("brand", "add", "south", "--display", "Southbay", "--color", "#b4441c",
          "--domain", "south.test")
    d.start()
    yield d
    assert d.stop() == 0
    for bad in ("panic", "ERROR: AddressSanitizer", "runtime error:"):
        assert bad not in d.logs(), d.logs()[-4000:]


# --- POST /api/password -------------------------------------------------------------------

def test_password_change_works_everywhere_and_ends_other_sessions(web):
    user, old = add_account(web)
    new = "a new password, " + hashlib.sha256(old.encode()).hexdigest()[:12]
    hashes_before = stored_hash(web, user)
    here = logged_in(web, user, old)
    elsewhere = logged_in(web, user, old)
    bystander = logged_in(web, "bob@example.test", "bob-password-22")
    assert here.alive() == 200 and elsewhere.alive() == 200

    status, body = here.change_password(old, new)
    assert status == 204 and body is None

    # This session goes on; the other one of the account is over, at once;
    # another account's session is untouched.
    assert here.alive() == 200
    assert elsewhere.alive() == 401
    assert bystander.alive() == 200
    # The new password holds on every protocol (the successes first: a
    # failure count must not get in their way).
    assert web_login_ok(web, user, new)
    assert imap_login_ok(web, user, new)
    assert smtp_login_ok(web, user, new)
    # The old one nowhere.
    assert not web_login_ok(web, user, old)
    assert not imap_login_ok(web, user, old)
    assert not smtp_login_ok(web, user, old)
    # auth.db has a new Argon2id hash and never the plaintext.
    hashes_after = stored_hash(web, user)
    assert hashes_after != hashes_before
    assert hashes_after.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    data = auth_db_bytes(web)
    assert new.encode() not in data and old.encode() not in data
    # Nor did any process log it.
    assert new not in web.logs() and old not in web.logs()
    assert f"web password change ok for {user}" in web.logs()


def test_wrong_old_password_is_403_and_changes_nothing(web):
    user, old = add_account(web)
    here = logged_in(web, user, old)
    elsewhere = logged_in(web, user, old)
    hashes_before = stored_hash(web, user)
    status, body = here.change_password("not-" + old, "a-different-password-1")
    assert status == 403 and body == {"error": "wrong password"}
    # An old password longer than any password can be is just as wrong.
    status, body = here.change_password("x" * 1025, "a-different-password-1")
    assert status == 403 and body == {"error": "wrong password"}
    assert stored_hash(web, user) == hashes_before
    assert here.alive() == 200 and elsewhere.alive() == 200
    assert web_login_ok(web, user, old)
    assert not web_login_ok(web, user, "a-different-password-1")


@pytest.mark.parametrize("new,why", [
    ("123456789", "too short"),
    ("", "too short"),
    ("p" * 1025, "too long"),
    # JSON can carry a NUL, which no IMAP or SMTP client could send.
    ("ten bytes\x00", ""),
])
def test_bad_new_password_is_400(web, new, why):
    user, old = add_account(web)
    here = logged_in(web, user, old)
    hashes_before = stored_hash(web, user)
    status, body = here.change_password(old, new)
    assert status == 400 and why in body["error"], body
    assert stored_hash(web, user) == hashes_before
    assert here.alive() == 200 and web_login_ok(web, user, old)


def test_new_password_equal_to_the_old_is_400(web):
    user, old = add_account(web)
    here = logged_in(web, user, old)
    elsewhere = logged_in(web, user, old)
    hashes_before = stored_hash(web, user)
    status, body = here.change_password(old, old)
    assert status == 400 and body == {"error": "the new password must differ from the old one"}
    assert stored_hash(web, user) == hashes_before
    # Refused: the other sessions stay too.
    assert elsewhere.alive() == 200


def test_password_length_bounds(web):
    """10 bytes is the shortest new password and 1024 the longest."""
    user, old = add_account(web)
    here = logged_in(web, user, old)
    assert here.change_password(old, "0123456789") == (204, None)
    assert web_login_ok(web, user, "0123456789")
    longest = "Ü" * 512  # 1024 bytes of UTF-8
    assert here.change_password("0123456789", longest) == (204, None)
    assert web_login_ok(web, user, longest)
    assert not web_login_ok(web, user, "0123456789")
    assert here.change_password(longest, "Ü" * 512 + "x")[0] == 400


@pytest.mark.parametrize("body", [
    "", "{", "[]", "null", '{"old": "x"}', '{"new": "long enough new"}',
    '{"old": 1, "new": "long enough new"}', '{"old": "x", "new": null}',
    '{"old": "x", "new": "long enough new", "other": 1}',
    '{"old": "x", "old": "y", "new": "long enough new"}',
    '{"old": "x", "new": "' + "n" * 20000 + '"}',
])
def test_malformed_password_bodies_are_400(web, body):
    user, old = add_account(web)
    here = logged_in(web, user, old)
    hashes_before = stored_hash(web, user)
    status, _, _, reply = here.request("POST", "/api/password", body)
    assert status == 400, reply
    assert stored_hash(web, user) == hashes_before
    assert here.alive() == 200


def test_password_change_needs_session_csrf_and_origin(web):
    user, old = add_account(web)
    here = logged_in(web, user, old)
    other = logged_in(web, "bob@example.test", "bob-password-22")
    hashes_before = stored_hash(web, user)
    new = "never-stored-password"
    assert here.change_password(old, new, csrf=False)[0] == 403
    assert here.change_password(old, new, headers={"X-Dijk-CSRF": "x" * 43})[0] == 403
    assert here.change_password(old, new, headers={"X-Dijk-CSRF": other.csrf})[0] == 403
    assert here.change_password(old, new, headers={"Origin": "http://evil.example"})[0] == 403
    assert here.change_password(old, new, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert here.change_password(old, new, origin=False)[0] == 403
    assert here.change_password(old, new, cookies=False)[0] == 401
    assert here.change_password(old, new, cookies=False, csrf=False)[0] == 401
    forged = {"Cookie": f"{SESSION_COOKIE}={'A' * 43}"}
    assert here.change_password(old, new, cookies=False, headers=forged)[0] == 401
    assert here.request("GET", "/api/password")[0] == 405
    assert stored_hash(web, user) == hashes_before
    assert web_login_ok(web, user, old) and not web_login_ok(web, user, new)
    # After logout the old cookie, replayed with its CSRF value, cannot
    # change anything either.
    token = here.last_token
    assert here.request("POST", "/api/logout", {})[0] == 200
    assert SESSION_COOKIE not in here.cookies
    status, _, _, _ = Browser(web).request(
        "POST", "/api/password", {"old": old, "new": new},
        headers={"Cookie": f"{SESSION_COOKIE}={token}", "X-Dijk-CSRF": here.csrf})
    assert status == 401
    assert stored_hash(web, user) == hashes_before


# --- /api/settings ------------------------------------------------------------------------

BRANDS = [{"name": "north", "display": "North Net"}, {"name": "south", "display": "Southbay"}]


def test_settings_brand_round_trip_and_cookie(web):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    assert b.settings() == {"brand": None, "name": "", "brands": BRANDS}
    status, _, set_cookies, body = b.request("POST", "/api/settings", {"brand": "south"})
    assert status == 200, body
    assert body == {"brand": "south", "name": "", "brands": BRANDS}
    # The same cookie as /choose/south sets.
    [cookie] = brand_cookies(set_cookies)
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == "dijk_brand=south"
    assert "Max-Age=31536000" in parts and "Path=/" in parts
    assert "HttpOnly" in parts and "SameSite=Lax" in parts
    chosen = Browser(web).request("GET", "/choose/south")[2]
    assert brand_cookies(chosen) == [cookie]
    assert b.settings()["brand"] == "south"
    # And the portal now sends this browser straight to it.
    status, h, _, _ = b.request("GET", "/")
    assert status == 302 and h["location"] == "/b/south/"
    # Another choice replaces it.
    status, _, set_cookies, body = b.request("POST", "/api/settings", {"brand": "north"})
    assert status == 200 and body["brand"] == "north"
    assert [c.split(";")[0] for c in brand_cookies(set_cookies)] == ["dijk_brand=north"]
    assert b.settings()["brand"] == "north"


def test_settings_show_the_display_name(web):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    [ident] = b.jmap("Identity/get", {"accountId": b.jmap_account()})["list"]
    r = b.jmap("Identity/set", {"accountId": b.jmap_account(),
                                "update": {ident["id"]: {"name": "Ann Ämter"}}})
    assert r["updated"] == {ident["id"]: None}, r
    assert b.settings()["name"] == "Ann Ämter"


@pytest.mark.parametrize("body", [
    {"brand": "nowhere"}, {"brand": ""}, {"brand": "north\u0000"}, {"brand": "../north"},
    {"brand": "NORTH"}, {"brand": 1}, {"brand": ["north"]}, {}, {"brand": "north", "x": 1},
    "", "{", "[]", '{"brand": "north", "brand": "south"}',
])
def test_unknown_brand_or_bad_body_is_400(web, body):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    assert b.request("POST", "/api/settings", {"brand": "south"})[0] == 200
    status, _, set_cookies, reply = b.request("POST", "/api/settings", body)
    assert status == 400, reply
    assert brand_cookies(set_cookies) == []
    assert b.settings()["brand"] == "south"


def test_unknown_brand_says_so(web):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    status, _, _, reply = b.request("POST", "/api/settings", {"brand": "nowhere"})
    assert status == 400 and reply == {"error": "unknown brand"}


def test_settings_need_session_csrf_and_origin(web):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    other = logged_in(web, "bob@example.test", "bob-password-22")
    post = ("POST", "/api/settings", {"brand": "south"})
    for kw, code in (({"csrf": False}, 403),
                     ({"headers": {"X-Dijk-CSRF": other.csrf}}, 403),
                     ({"headers": {"Origin": "http://evil.example"}}, 403),
                     ({"origin": False}, 403),
                     ({"cookies": False}, 401)):
        status, _, set_cookies, _ = b.request(*post, **kw)
        assert status == code, kw
        assert brand_cookies(set_cookies) == []
    assert b.request("GET", "/api/settings", cookies=False)[0] == 401
    assert b.request("PUT", "/api/settings", {})[0] == 405
    assert b.settings()["brand"] is None
    # Reading needs no CSRF value.
    assert b.request("GET", "/api/settings", csrf=False, origin=False)[0] == 200


def test_login_from_a_new_browser_gets_the_brand(web):
    user, password = add_account(web)
    first = logged_in(web, user, password)
    assert first.request("POST", "/api/settings", {"brand": "south"})[0] == 200
    # A new browser, no cookie at all.
    fresh = Browser(web)
    status, _, _, page = fresh.request("GET", "/")
    assert status == 200 and b"Choose your webmail" in page  # no choice yet
    assert "dijk_brand" not in fresh.cookies
    status, set_cookies, body = fresh.login(user, password)
    assert status == 200
    assert body["brand"] == "south" and body["username"] == user and len(body["csrf"]) == 43
    [cookie] = brand_cookies(set_cookies)
    assert cookie.split(";")[0] == "dijk_brand=south" and "Max-Age=31536000" in cookie
    assert fresh.cookies["dijk_brand"] == "south"
    status, h, _, _ = fresh.request("GET", "/")
    assert status == 302 and h["location"] == "/b/south/"
    # The session cookie came too, and works.
    assert fresh.alive() == 200


def test_login_without_a_choice_sets_no_brand(web):
    user, password = add_account(web)
    b = Browser(web)
    status, set_cookies, body = b.login(user, password)
    assert status == 200 and "brand" not in body
    assert brand_cookies(set_cookies) == []
    assert [c.split("=")[0] for c in set_cookies] == [SESSION_COOKIE]


def test_each_account_has_its_own_choice(web):
    ann, ann_pw = add_account(web)
    ben, ben_pw = add_account(web)
    a = logged_in(web, ann, ann_pw)
    b = logged_in(web, ben, ben_pw)
    assert a.request("POST", "/api/settings", {"brand": "north"})[0] == 200
    assert b.settings()["brand"] is None
    assert b.request("POST", "/api/settings", {"brand": "south"})[0] == 200
    assert a.settings()["brand"] == "north" and b.settings()["brand"] == "south"
    assert Browser(web).login(ann, ann_pw)[2]["brand"] == "north"
    assert Browser(web).login(ben, ben_pw)[2]["brand"] == "south"


def test_forgetting_the_choice(web):
    user, password = add_account(web)
    b = logged_in(web, user, password)
    assert b.request("POST", "/api/settings", {"brand": "north"})[0] == 200
    status, _, set_cookies, body = b.request("POST", "/api/settings", {"brand": None})
    assert status == 200 and body["brand"] is None
    assert brand_cookies(set_cookies) == []
    assert b.settings()["brand"] is None
    status, set_cookies, body = Browser(web).login(user, password)
    assert status == 200 and "brand" not in body and brand_cookies(set_cookies) == []


def test_a_removed_brand_is_no_choice(dijk_factory):
    d = dijk_factory("removed", start=False)
    d.cli("domain", "add", "south.test")
    d.cli("brand", "add", "north", "--display", "North", "--color", "#1a6b3c",
          "--domain", "example.test")
    d.cli("brand", "add", "south", "--display", "South", "--color", "#b4441c",
          "--domain", "south.test")
    d.start()
    user, password = add_account(d)
    b = logged_in(d, user, password)
    assert b.request("POST", "/api/settings", {"brand": "south"})[0] == 200
    d.cli("brand", "del", "south")
    time.sleep(2.5)  # the workers' brand cache
    assert b.settings()["brand"] is None
    status, set_cookies, body = Browser(d).login(user, password)
    assert status == 200 and "brand" not in body and brand_cookies(set_cookies) == []
