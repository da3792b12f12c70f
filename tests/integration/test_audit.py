"""The access audit log (SECURITY.md requirement 23): logins, mailbox
opens, reads, moves, expunges and sends over IMAP, SMTP and the webmail,
and admin commands, land in DATA/audit.db, chained by MACs; `dijk audit
verify` finds an edited, removed or inserted row; retention drops whole
days behind a signed marker; /api/activity shows an account only its own
entries."""
import hashlib
import imaplib
import json
import smtplib
import sqlite3
import ssl
import time

import pytest

from conftest import PASSWORDS, Dijk, wait_until
from test_jmap_api import MAIL, Web, deliver

ALICE = "alice@example.test"
BOB = "bob@example.test"
SUBMISSION = "urn:ietf:params:jmap:submission"


def entries(d, *args):
    r = d.cli("audit", "--json", *args)
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def verify(d):
    r = d.cli("audit", "verify", check=False)
    return r.returncode, r.stdout.decode()


def wait_entry(d, predicate, what):
    found = []

    def check():
        found[:] = [e for e in entries(d) if predicate(e)]
        return found
    wait_until(check, 10, what=what)
    return found


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("audit") / "data")
    d.start()
    yield d
    assert d.stop() == 0


def test_admin_commands_are_logged_and_chain_verifies(srv):
    # The fixture's own `dijk domain add` and `user add` ran before start.
    got = entries(srv)
    actions = [(e["protocol"], e["action"], e["detail"]) for e in got]
    assert ("admin", "domain add", "example.test") in actions
    assert ("admin", "user add", ALICE) in actions
    alice_add = next(e for e in got if e["action"] == "user add" and e["user"] == ALICE)
    assert alice_add["account_id"] > 0
    code, out = verify(srv)
    assert code == 0 and "OK" in out, out


def test_imap_session_is_logged(srv):
    deliver(srv, ALICE, b"Subject: one\r\n\r\nfirst\r\n")
    deliver(srv, ALICE, b"Subject: two\r\n\r\nsecond\r\n")
    wait_until(lambda: len(srv.messages(ALICE)) >= 2, 10, what="delivery")
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=20)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(ALICE, "not-the-password")
    finally:
        m.shutdown()
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=20)
    m.xatom("ID", '("name" "audit-test-client" "version" "1.0")')
    m.login(ALICE, PASSWORDS[ALICE])
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1:*", "(UID BODY[])")
    assert typ == "OK"
    # Flags alone are routine sync: no entry.
    m.uid("FETCH", "1:*", "(FLAGS)")
    typ, _ = m.uid("MOVE", "1", "Archive")
    assert typ == "OK"
    m.uid("STORE", "2", "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.create("Old")
    m.rename("Old", "Older")
    m.delete("Older")
    m.logout()

    def imap(action):
        return wait_entry(srv, lambda e: e["protocol"] == "imap" and e["action"] == action
                          and e["user"] == ALICE, f"imap {action}")
    failed = imap("login failed")
    assert failed[-1]["remote"] == "127.0.0.1"
    login = imap("login")[-1]
    assert login["account_id"] > 0
    client = imap("client")[-1]
    assert "audit-test-client" in client["detail"]
    select = imap("select")[-1]
    assert select["detail"] == "INBOX"
    fetch = imap("fetch")
    assert len(fetch) == 1, fetch  # the FLAGS fetch made none
    assert "INBOX:" in fetch[0]["detail"] and "2 messages" in fetch[0]["detail"], fetch
    assert fetch[0]["session"] == select["session"] != ""
    move = imap("move")[-1]
    assert "INBOX to Archive" in move["detail"] and "UID 1" in move["detail"], move
    expunge = imap("expunge")[-1]
    assert "UID 2" in expunge["detail"], expunge
    assert imap("rename mailbox")[-1]["detail"] == "Old to Older"
    assert imap("delete mailbox")[-1]["detail"] == "Older"
    code, out = verify(srv)
    assert code == 0, out


def test_smtp_submission_is_logged(srv):
    with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=20) as s:
        s.login(ALICE, PASSWORDS[ALICE])
        s.sendmail(ALICE, [BOB, "far@remote.test"],
                   f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: hi\r\n\r\nhello\r\n")
    sends = wait_entry(srv, lambda e: e["protocol"] == "smtp" and e["action"] == "send",
                       "smtp send")
    d = sends[-1]["detail"]
    assert f"from {ALICE}" in d and "2 recipients" in d and "far@remote.test" in d, d
    assert sends[-1]["user"] == ALICE
    smtp_logins = [e for e in entries(srv) if e["protocol"] == "smtp" and e["action"] == "login"]
    assert smtp_logins


def session_id(web):
    token = web.cookie.split("=", 1)[1]
    pad = "=" * (-len(token) % 4)
    import base64
    raw = base64.urlsafe_b64decode(token + pad)
    return hashlib.sha256(raw).digest()[:8].hex()


def test_webmail_actions_and_activity_page(srv):
    deliver(srv, ALICE, b"Subject: web\r\n\r\nread me\r\n")
    web = Web(srv, ALICE)
    sid = session_id(web)
    acct = web.account

    def api(calls):
        status, _, body = web.raw("POST", "/jmap/api", {
            "using": ["urn:ietf:params:jmap:core", MAIL, SUBMISSION],
            "methodCalls": calls})
        assert status == 200, body
        return body["methodResponses"]

    boxes = api([["Mailbox/get", {"accountId": acct, "ids": None}, "0"]])[0][1]["list"]
    inbox = next(b["id"] for b in boxes if b["role"] == "inbox")
    trash = next(b["id"] for b in boxes if b["role"] == "trash")
    for _ in range(3):  # polling the list: one entry, not three
        ids = api([["Email/query", {"accountId": acct, "filter": {"inMailbox": inbox}}, "0"]])[0][1]["ids"]
    api([["Email/get", {"accountId": acct, "ids": ids[:1], "properties": ["id", "subject"]}, "0"]])
    api([["Email/get", {"accountId": acct, "ids": ids[:1], "fetchTextBodyValues": True,
                        "properties": ["id", "bodyValues", "textBody"]}, "0"]])
    api([["Email/set", {"accountId": acct, "update": {ids[0]: {"mailboxIds": {trash: True}}}}, "0"]])
    api([["Email/set", {"accountId": acct, "destroy": [ids[0]]}, "0"]])
    drafts = next(b["id"] for b in boxes if b["role"] == "drafts")
    sent = api([
        ["Email/set", {"accountId": acct, "create": {"d": {
            "mailboxIds": {drafts: True}, "from": [{"email": ALICE}],
            "to": [{"email": BOB}], "subject": "from the web",
            "bodyValues": {"1": {"value": "hello\n"}},
            "textBody": [{"partId": "1", "type": "text/plain"}],
            "keywords": {"$draft": True}}}}, "0"],
        ["EmailSubmission/set", {"accountId": acct, "create": {
            "k": {"identityId": "i" + acct[1:], "emailId": "#d"}}}, "1"]])
    draft_id = sent[0][1]["created"]["d"]["id"]
    assert "k" in sent[1][1]["created"], sent

    def web_entries(action):
        return wait_entry(srv, lambda e: e["protocol"] == "web" and e["action"] == action
                          and e["session"] == sid, f"web {action}")
    login = web_entries("login")[-1]
    assert login["user"] == ALICE
    views = web_entries("view mailbox")
    assert len(views) == 1 and views[0]["detail"] == "INBOX", views
    reads = web_entries("read")
    assert len(reads) == 1 and ids[0] in reads[0]["detail"], reads
    assert ids[0] in web_entries("move")[-1]["detail"]
    assert ids[0] in web_entries("delete")[-1]["detail"]
    send = web_entries("send")[-1]
    assert send["detail"] == f"1 message: {draft_id}", send

    # The Activity page: alice's own entries, newest first, hers marked.
    status, _, page = web.raw("GET", "/api/activity?limit=500")
    assert status == 200, page
    got = page["entries"]
    assert page["session"] == sid
    assert "next" not in page  # all of alice's entries fit one page
    assert [e["id"] for e in got] == sorted((e["id"] for e in got), reverse=True)
    mine = {e["id"] for e in entries(srv, "--user", ALICE)}
    assert {e["id"] for e in got} <= mine
    assert any(e["action"] == "login" and e["protocol"] == "imap" for e in got)
    assert any(e["current"] and e["action"] == "read" for e in got)
    assert not any(e["current"] for e in got if e["protocol"] == "imap")
    # Paging: before= continues where a page ended.
    status, _, first = web.raw("GET", "/api/activity?limit=2")
    assert status == 200 and len(first["entries"]) == 2 and first["next"]
    status, _, second = web.raw("GET", f"/api/activity?limit=2&before={first['next']}")
    assert second["entries"][0]["id"] < first["entries"][-1]["id"]

    # Bob never sees alice's entries.
    bob = Web(srv, BOB)
    status, _, bobs = bob.raw("GET", "/api/activity?limit=100")
    assert status == 200
    bob_ids = {e["id"] for e in entries(srv) if e["account_id"] and e["user"] == BOB}
    assert bobs["entries"] and {e["id"] for e in bobs["entries"]} <= bob_ids
    assert not ({e["id"] for e in bobs["entries"]} & mine)
    # Without a session: nothing.
    web_anon = Web.__new__(Web)
    web_anon.d = srv
    status, _, _ = web_anon.raw("GET", "/api/activity")
    assert status == 401

    # Logout is an entry of the session too.
    status, _, _ = web.raw("POST", "/api/logout")
    assert status in (200, 204)
    web_entries("logout")
    code, out = verify(srv)
    assert code == 0, out


def test_no_interface_alters_the_log(srv):
    web = Web(srv, ALICE)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, _, _ = web.raw(method, "/api/activity", {"id": 1})
        assert status in (404, 405, 501), (method, status)


def test_verify_finds_edits_deletions_and_insertions(tmp_path):
    d = Dijk(tmp_path / "data")
    for n in range(4):
        d.cli("domain", "add", f"d{n}.test")
    code, out = verify(d)
    assert code == 0, out
    count = int(out.split(":")[1].split()[0])
    db = d.data / "audit.db"

    def edit(sql, *args):
        c = sqlite3.connect(db)
        c.execute(sql, args)
        c.commit()
        c.close()

    rows = entries(d)
    target = rows[3]["id"]
    edit("UPDATE audit SET remote = '10.0.0.1' WHERE id = ?", target)
    code, out = verify(d)
    assert code == 1 and f"entry {target}:" in out, out
    edit("UPDATE audit SET remote = ? WHERE id = ?", rows[3]["remote"], target)
    assert verify(d)[0] == 0

    # A removed row in the middle.
    c = sqlite3.connect(db)
    saved = c.execute("SELECT * FROM audit WHERE id = ?", (target,)).fetchone()
    c.close()
    edit("DELETE FROM audit WHERE id = ?", target)
    code, out = verify(d)
    assert code == 1 and f"entry {target + 1}:" in out and "missing" in out, out
    edit("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?)", *saved)
    assert verify(d)[0] == 0

    # An inserted row (a made-up entry at the end, or its MAC copied).
    last = rows[-1]
    edit("INSERT INTO audit SELECT id + 1, time, account_id, user, protocol, remote,"
         " session, 'user del', detail, mac FROM audit WHERE id = ?", last["id"])
    code, out = verify(d)
    assert code == 1 and f"entry {last['id'] + 1}:" in out, out
    edit("DELETE FROM audit WHERE id = ?", last["id"] + 1)
    code, out = verify(d)
    assert code == 0 and f"{count} entries" in out, out


def test_retention_drop_is_signed(tmp_path):
    d = Dijk(tmp_path / "data")
    d.cli("domain", "add", "old.test")
    before = entries(d)
    assert len(before) >= 4
    # Whole days before tomorrow: everything so far.
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    r = d.cli("audit", "prune", "--before", tomorrow)
    assert f"dropped {len(before)} entries" in r.stdout.decode()
    d.cli("domain", "add", "new.test")
    d.cli("domain", "add", "newer.test")
    after = entries(d)
    assert after[0]["action"] == "retention", after
    assert f"dropped ids 1-{len(before)}" in after[0]["detail"]
    code, out = verify(d)
    assert code == 0 and "3 entries" in out, out
    # The default keeps audit.retention_days (180): nothing more goes.
    assert "dropped 0 entries" in d.cli("audit", "prune").stdout.decode()
    assert verify(d)[0] == 0
    # One more row removed from the start is caught.
    c = sqlite3.connect(d.data / "audit.db")
    c.execute("DELETE FROM audit WHERE id = ?", (after[0]["id"],))
    c.commit()
    c.close()
    code, out = verify(d)
    assert code == 1 and f"entry {after[1]['id']}:" in out, out


def test_cli_filters(srv):
    alice = entries(srv, "--user", ALICE)
    assert alice and all(e["user"] == ALICE for e in alice)
    assert entries(srv, "--since", "2000-01-01")
    assert entries(srv, "--since", "1h")
    future = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    assert entries(srv, "--since", future) == []
    assert entries(srv, "--user", ALICE.upper()) == alice
    table = srv.cli("audit", "--user", ALICE).stdout.decode().splitlines()
    assert table[0].split()[:2] == ["ID", "TIME"]
    assert len(table) == len(alice) + 1
    r = srv.cli("audit", "--since", "yesterday-ish", check=False)
    assert r.returncode == 2


def test_expired_session_is_logged(dijk_factory):
    d = dijk_factory("expiry", {"http.session_idle": "5"})
    web = Web(d, ALICE)
    sid = session_id(web)
    time.sleep(6.5)
    status, _, _ = web.raw("GET", "/api/activity")
    assert status == 401
    [ended] = wait_entry(d, lambda e: e["action"] == "session expired", "session expired")
    assert ended["session"] == sid and ended["protocol"] == "web"
    alice_id = next(e["account_id"] for e in entries(d) if e["action"] == "user add"
                    and e["user"] == ALICE)
    assert ended["account_id"] == alice_id
    assert verify(d)[0] == 0


def mac(key, prev, row):
    """The entry's MAC as docs/security.md describes it: HMAC-SHA256 over the
    previous MAC, then id, time and account as 64-bit big-endian numbers,
    then each text field with its length as a 64-bit big-endian number."""
    import hmac
    import struct
    (id_, when, account, user, protocol, remote, session, action, detail) = row
    data = prev + struct.pack(">QqQ", id_, when, account)
    for text in (user, protocol, remote, session, action, detail):
        b = text.encode()
        data += struct.pack(">Q", len(b)) + b
    return hmac.new(key, data, hashlib.sha256).digest()


def test_auth_process_drops_old_days_at_start(dijk_factory):
    d = dijk_factory("retention", {"audit.retention_days": "2"}, start=False)
    # Ten days pass for the entries made so far: re-dated and re-chained
    # with the key, as only its holder can.
    key = (d.data / "audit.key").read_bytes()
    db = sqlite3.connect(d.data / "audit.db")
    rows = db.execute("SELECT id, time, account_id, user, protocol, remote, session,"
                      " action, detail, mac FROM audit ORDER BY id").fetchall()
    prev = new_prev = bytes(32)
    for row in rows:
        assert mac(key, prev, row[:9]) == row[9]  # the format is the documented one
        prev = row[9]
        old = (row[0], row[1] - 10 * 86400) + row[2:9]
        new_prev = mac(key, new_prev, old)
        db.execute("UPDATE audit SET time = ?, mac = ? WHERE id = ?",
                   (old[1], new_prev, row[0]))
    db.commit()
    db.close()
    assert verify(d)[0] == 0
    d.cli("domain", "add", "today.test")
    d.start()
    [marker] = wait_entry(d, lambda e: e["action"] == "retention", "retention marker")
    assert f"dropped ids 1-{len(rows)}" in marker["detail"], marker
    left = entries(d)
    assert [e["action"] for e in left] == ["domain add", "retention"], left
    code, out = verify(d)
    assert code == 0 and "2 entries" in out, out
    db = sqlite3.connect(d.data / "audit.db")
    db.execute("DELETE FROM audit WHERE id = ?", (left[0]["id"],))
    db.commit()
    db.close()
    code, out = verify(d)
    assert code == 1 and f"entry {marker['id']}:" in out, out
