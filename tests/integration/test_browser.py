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
    assert r.returncode == 0, f"{scenario} failed:\n{r.stderr[-8000:]}"
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


# ---- The webmail at work ----

ALICE, BOB = "alice@example.test", "bob@example.test"
LUNCH = "Lunch on Friday?"


def deliver(d, sender, rcpt, subject, body, message_id=None):
    import smtplib
    headers = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
    if message_id:
        headers += f"Message-ID: {message_id}\r\n"
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=15) as s:
        s.sendmail(sender.split("<")[-1].rstrip(">"), [rcpt],
                   (headers + "\r\n" + body).encode())


def webmail_args(d, **more):
    return dict(base=f"http://127.0.0.1:{d.http_port}", brandPath="/b/mail/",
                alice=ALICE, alicePassword=PASSWORDS[ALICE],
                bob=BOB, bobPassword=PASSWORDS[BOB], subject=LUNCH, **more)


def only_session_check_errors(out):
    # The page's first look for a session answers 401 before signing in.
    assert all("401" in e for e in out["consoleErrors"]), out["consoleErrors"]


def test_read_reply_send_attach_search_move_delete(dijk_factory):
    d = dijk_factory("browserflow")
    deliver(d, "Bob Builder <bob@example.test>", ALICE, LUNCH,
            "Shall we meet at noon?\r\nMenu: https://food.example/menu.\r\n",
            message_id="<lunch@example.test>")
    attachment = "quarter,revenue\r\nQ1,12\r\nQ2,15 \u00e9\u00fc\r\n"
    out = browse("mail-flow", **webmail_args(d, replyMark="[reply-mark]",
                                              attachment=attachment, searchWord="noon"))
    only_session_check_errors(out)
    assert LUNCH in out["aliceInbox"]
    # Read: text stays text, links are links that leave nothing behind.
    assert out["subjectShown"] == LUNCH
    assert "Shall we meet at noon?" in out["readText"]
    assert out["links"] == [{"href": "https://food.example/menu", "rel": "noopener noreferrer",
                             "target": "_blank"}]
    # Reply: to the sender, threaded, draft saved on the way.
    assert out["replyTo"] == "Bob Builder <bob@example.test>"
    assert out["replySubject"] == "Re: " + LUNCH
    assert out["draftSaved"] and out["bobGotReply"]
    replies = [m for m in d.all_messages(BOB) if b"[reply-mark]" in m]
    assert len(replies) == 1
    assert b"In-Reply-To: <lunch@example.test>" in replies[0]
    # The attachment arrives, and downloads as it was.
    assert "Quarterly report" in out["bobInbox"]
    assert out["attachmentName"] == "report.txt"
    assert out["downloadName"] == "report.txt"
    assert out["downloaded"] == attachment
    headers = out["downloadHeaders"]
    assert headers["status"] == 200
    assert headers["disposition"].startswith("attachment"), headers
    assert headers["nosniff"] == "nosniff"
    # Sent keeps both; no draft is left behind.
    assert len(d.messages(ALICE, "Sent")) == 2
    assert d.messages(ALICE, "Drafts") == []
    # Search found the question and the answer, with the word marked.
    assert LUNCH in out["searchResults"] and "Re: " + LUNCH in out["searchResults"]
    assert out["searchMarks"] and all(m.lower() == "noon" for m in out["searchMarks"])
    # Move, delete to Trash, delete forever.
    assert LUNCH in out["archive"]
    assert LUNCH in out["trash"]
    assert LUNCH not in out["trashAfter"]
    assert d.messages(ALICE, "Trash") == [] and d.messages(ALICE, "Archive") == []
    assert out["signedOut"]
    for name in ("inbox.png", "reading.png", "compose.png", "arrived.png", "search.png"):
        assert (ARTIFACTS / name).stat().st_size > 1000


def lunch_and_minutes(dijk_factory, name):
    """A server whose alice has two messages that both say "noon"."""
    d = dijk_factory(name)
    deliver(d, "Bob Builder <bob@example.test>", ALICE, LUNCH, "Shall we meet at noon?\r\n")
    deliver(d, "Carol <carol@remote.test>", ALICE, "Minutes", "Notes from the noon call.\r\n")
    return d


def test_conversation_opened_while_the_list_loads_stays_open(dijk_factory):
    d = lunch_and_minutes(dijk_factory, "browserrace")
    out = browse("open-while-loading", **webmail_args(d, searchWord="noon"))
    only_session_check_errors(out)
    # The click came while the inbox's list was held back, after the search.
    assert out["held"] >= 1
    assert out["titleWhileHeld"].startswith("\u201c")
    assert out["title"] == "Inbox"
    assert out["readerAfterList"] == LUNCH
    assert out["moveShown"]


def test_click_counts_when_the_page_redraws_under_the_mouse(dijk_factory):
    d = lunch_and_minutes(dijk_factory, "browserredraw")
    out = browse("click-during-redraw", **webmail_args(d, other="Minutes"))
    only_session_check_errors(out)
    assert out["rowOpened"] == "Minutes"
    assert out["folderOpened"]


def test_keyboard_and_phone(dijk_factory):
    d = dijk_factory("browserkeys")
    for i, subject in enumerate(["First note", "Second note", LUNCH]):
        deliver(d, f"Sender {i} <s{i}@remote.test>", ALICE, subject, f"text {i}\r\n")
    out = browse("keyboard-phone", **webmail_args(d))
    only_session_check_errors(out)
    assert out["roles"] == {"list": "listbox", "option": "option"}
    assert [out["afterJ"], out["afterJJ"], out["afterJJK"]] == [LUNCH, "Second note", LUNCH]
    assert out["focusOnList"] == "message-list"
    assert out["opened"] == LUNCH
    assert out["flagged"] and out["markedUnread"]
    assert out["searchFocused"] == "search"
    assert out["composeOpen"]
    assert out["focusRing"] != "none"
    assert out["phoneListVisible"] and not out["phoneReaderVisible"]
    assert not out["phoneOpenListVisible"]
    assert out["phoneComposeAlone"]
    flagged = d.cli("mail", "list", ALICE, "--mailbox", "INBOX").stdout
    assert flagged  # the store still answers after the session
    for name in ("phone.png", "phone-reading.png", "phone-folders.png", "phone-compose.png"):
        assert (ARTIFACTS / name).stat().st_size > 1000


def test_settings_name_and_signature(dijk_factory):
    d = dijk_factory("browsersettings")
    out = browse("settings", **webmail_args(d))
    # Besides the first session check, the one refusal the scenario asks
    # for: the wrong current password (403).
    errors = [e for e in out["consoleErrors"] if "401" not in e]
    assert len(errors) == 1 and "403" in errors[0], errors
    assert out["wrongOldPassword"] == "The current password is wrong."
    assert out["from"] == "Alice Liddell <alice@example.test>"
    assert out["body"].endswith("\n-- \nAlice, from the webmail")
