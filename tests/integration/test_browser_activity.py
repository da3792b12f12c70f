"""The webmail's Activity page (tests/browser/run.mjs "activity"): after an
IMAP login from this test, Chromium signs in, opens Activity and finds that
login, from where it came, and its own session marked."""
import imaplib
from pathlib import Path

from conftest import PASSWORDS
from test_browser import browse

ALICE = "alice@example.test"


def test_activity_page_shows_own_imap_login(dijk_factory):
    d = dijk_factory("browseractivity")
    m = imaplib.IMAP4("127.0.0.1", d.imap_port, timeout=20)
    m.login(ALICE, PASSWORDS[ALICE])
    m.select("INBOX")
    m.logout()
    out = browse("activity", base=f"http://127.0.0.1:{d.http_port}", brandPath="/b/mail/",
                 user=ALICE, password=PASSWORDS[ALICE])
    assert out["title"] == "Activity"
    rows = out["rows"]
    imap_login = [r for r in rows if r["protocol"] == "imap" and r["action"] == "login"]
    assert imap_login and imap_login[0]["what"] == "Signed in", rows
    assert imap_login[0]["from"] == "127.0.0.1" and not imap_login[0]["current"]
    assert any(r["action"] == "select" for r in rows), rows
    web_login = [r for r in rows if r["protocol"] == "web" and r["action"] == "login"]
    assert web_login and web_login[0]["current"] and web_login[0]["mark"] == "this session", rows
    # Only alice's: bob's admin entry never shows.
    assert all(r["protocol"] != "admin" or "alice" not in r["what"] for r in rows)
    assert out["more"] is False  # every entry fit one page
    assert out["backView"] == "list"
    # Only the login page's check for a session, which there is not yet.
    assert all("401" in e for e in out["consoleErrors"]), out["consoleErrors"]
    for path in out["screenshots"]:
        assert Path(path).stat().st_size > 1000
