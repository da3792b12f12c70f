"""The webmail in a real browser: Debian's Chromium driven by Playwright
(tests/browser/run.mjs). Screenshots are kept in build/test-artifacts."""
import json
import os
import subprocess
from pathlib import Path

from conftest import PASSWORDS

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
ARTIFACTS = Path(os.environ.get("DIJK_ARTIFACTS", ROOT / "build" / "test-artifacts"))


def browse(scenario, **args):
    env = dict(os.environ, DIJK_ARTIFACTS=str(ARTIFACTS))
    r = subprocess.run(["node", str(BROWSER / "run.mjs"), scenario, json.dumps(args)],
                       capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert r.returncode == 0, f"{scenario} failed:\n{r.stderr[-4000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # Nothing but our own server, and nothing the CSP had to stop.
    assert out["foreign"] == [], out["foreign"]
    assert out["cspViolations"] == [], out["cspViolations"]
    return out


def two_brands(d):
    d.cli("domain", "add", "south.test")
    d.cli("brand", "add", "north", "--display", "North Net Mail", "--color", "#1a6b3c",
          "--domain", "example.test")
    d.cli("brand", "add", "south", "--display", "Southbay Webmail", "--color", "#b4441c",
          "--domain", "south.test")


def test_brand_choice_is_remembered_across_browser_restarts(dijk_factory):
    d = dijk_factory("browserbrands", start=False)
    two_brands(d)
    d.start()
    out = browse("brand-choice", base=f"http://127.0.0.1:{d.http_port}",
                 pick="Southbay Webmail", other="North Net Mail")
    assert out["firstTitle"] == "Choose your webmail"
    assert out["choices"] == ["North Net Mail", "Southbay Webmail"]
    assert out["afterPick"] == "/b/south/"
    assert out["afterRestart"] == "/b/south/"
    assert out["brandAfterRestart"] == "Southbay Webmail"
    assert out["afterChange"] == "/b/north/"
    # Only the login pages' check for a session, which there is not.
    assert all("401" in e for e in out["consoleErrors"]), out["consoleErrors"]
    for path in out["screenshots"]:
        assert Path(path).stat().st_size > 1000


def test_login_shows_folders_and_logout_ends_the_session(dijk_factory):
    import smtplib
    d = dijk_factory("browserlogin")
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=15) as s:
        for i in range(3):
            s.sendmail("x@remote.test", ["alice@example.test"],
                       f"Subject: hello {i}\r\n\r\nbody\r\n".encode())
    out = browse("login-folders", base=f"http://127.0.0.1:{d.http_port}",
                 brandPath="/b/mail/", user="alice@example.test",
                 password=PASSWORDS["alice@example.test"])
    assert out["wrongPassword"] == "The email address or the password is wrong."
    assert out["user"] == "alice@example.test"
    names = [f["name"] for f in out["folders"]]
    assert names[:6] == ["Inbox", "Drafts", "Sent", "Archive", "Junk", "Trash"]
    assert out["folders"][0]["unread"] == "3"
    assert all(f["unread"] == "" for f in out["folders"][1:])
    [cookie] = out["cookies"]
    assert cookie == {"name": "__Host-dijk_session", "httpOnly": True,
                      "secure": True, "sameSite": "Strict"}
    assert out["reloadKeptSession"] and out["afterLogoutAppHidden"]
    # The 401 of the page's first session check is the only console error.
    assert all("401" in e for e in out["consoleErrors"]), out["consoleErrors"]
