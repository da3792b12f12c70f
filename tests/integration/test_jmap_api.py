"""The webmail's JMAP API: the session resource, request-level problems,
method-level errors, result references, Mailbox/get with JMAP's counts
(conversations included), and that no request reaches another user's
account however it names it."""
import http.client
import imaplib
import json
import smtplib

import pytest

from conftest import PASSWORDS, Dijk

ALICE, BOB = "alice@example.test", "bob@example.test"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


class Web:
    """A logged-in browser, as far as the server can tell."""

    def __init__(self, d, user=ALICE):
        self.d = d
        status, h, body = self.raw("POST", "/api/login",
                                   {"username": user, "password": PASSWORDS[user]})
        assert status == 200, body
        self.cookie = h["set-cookie"].split(";")[0]
        self.csrf = body["csrf"]
        status, _, self.session = self.raw("GET", "/jmap/session")
        assert status == 200
        self.account = self.session["primaryAccounts"][MAIL]

    def raw(self, method, path, body=None, headers=None, csrf=True):
        h = {"Content-Type": "application/json",
             "Origin": f"http://127.0.0.1:{self.d.http_port}"}
        if getattr(self, "cookie", None):
            h["Cookie"] = self.cookie
        if csrf and getattr(self, "csrf", None):
            h["X-Dijk-CSRF"] = self.csrf
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=20)
        try:
            data = json.dumps(body) if isinstance(body, (dict, list)) else body
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw
            return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed
        finally:
            c.close()

    def api(self, calls, using=(CORE, MAIL)):
        status, _, body = self.raw("POST", "/jmap/api",
                                   {"using": list(using), "methodCalls": calls})
        assert status == 200, body
        return body["methodResponses"]

    def call(self, name, args):
        [(got, result, cid)] = self.api([[name, args, "c0"]])
        assert cid == "c0"
        return got, result


def deliver(d, to, data):
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=15) as s:
        s.sendmail("someone@remote.test", [to], data)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("jmap") / "data")
    d.start()
    yield d
    assert d.stop() == 0


@pytest.fixture(scope="module")
def alice(server):
    return Web(server)


def test_well_known_and_session_resource(server, alice):
    status, h, _ = alice.raw("GET", "/.well-known/jmap")
    assert status == 301 and h["location"] == "/jmap/session"
    s = alice.session
    assert set(s["capabilities"]) == {CORE, MAIL, "urn:ietf:params:jmap:submission"}
    core = s["capabilities"][CORE]
    assert core["maxCallsInRequest"] == 64 and core["maxObjectsInGet"] == 500
    assert s["username"] == ALICE and s["apiUrl"] == "/jmap/api"
    assert list(s["accounts"]) == [alice.account]
    acc = s["accounts"][alice.account]
    assert acc["name"] == ALICE and acc["isPersonal"] is True and acc["isReadOnly"] is False
    assert MAIL in acc["accountCapabilities"]
    assert "{blobId}" in s["downloadUrl"] and "{accountId}" in s["uploadUrl"]
    # Without a session: nothing.
    c = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    c.request("GET", "/jmap/session")
    assert c.getresponse().status == 401
    c.close()


def test_api_needs_session_csrf_and_origin(server, alice):
    req = {"using": [CORE], "methodCalls": [["Core/echo", {"x": 1}, "e"]]}
    assert alice.raw("POST", "/jmap/api", req)[0] == 200
    assert alice.raw("POST", "/jmap/api", req, csrf=False)[0] == 403
    assert alice.raw("POST", "/jmap/api", req,
                     headers={"Origin": "http://evil.example"})[0] == 403
    assert alice.raw("POST", "/jmap/api", req, headers={"Cookie": ""})[0] == 401
    assert alice.raw("GET", "/jmap/api")[0] == 405


def test_core_echo(alice):
    args = {"hello": True, "high": 7, "list": [1, "a", None], "o": {"k": "ü"}}
    assert alice.call("Core/echo", args) == ("Core/echo", args)


@pytest.mark.parametrize("body,kind,limit", [
    ("{", "notJSON", None),
    ('{"using": [], "methodCalls": []', "notJSON", None),
    ('{"a": 1, "a": 2}', "notJSON", None),
    ("[]", "notRequest", None),
    ('{"using": "x", "methodCalls": []}', "notRequest", None),
    ('{"using": [], "methodCalls": [["Core/echo", {}]]}', "notRequest", None),
    ('{"using": [], "methodCalls": [["Core/echo", [], "x"]]}', "notRequest", None),
    ('{"using": ["urn:example:nope"], "methodCalls": []}', "unknownCapability", None),
    (json.dumps({"using": [CORE], "methodCalls": [["Core/echo", {}, str(i)] for i in range(65)]}),
     "limit", "maxCallsInRequest"),
])
def test_request_level_problems(alice, body, kind, limit):
    status, h, p = alice.raw("POST", "/jmap/api", body)
    assert status == 400
    assert p["type"] == "urn:ietf:params:jmap:error:" + kind
    assert p["status"] == 400 and p["detail"]
    assert p.get("limit") == limit


def test_request_size_limit(alice):
    limit = alice.session["capabilities"][CORE]["maxSizeRequest"]
    assert limit == 2000000
    pad = " " * (limit - 60)
    body = '{"using": [], "methodCalls": []' + pad + "}"
    assert len(body) <= limit
    assert alice.raw("POST", "/jmap/api", body)[0] == 200
    status, _, p = alice.raw("POST", "/jmap/api", body + " " * (limit + 1 - len(body)))
    assert status == 400 and p["limit"] == "maxSizeRequest"


def test_method_level_errors(alice):
    r = alice.api([
        ["Nothing/here", {}, "a"],
        ["Mailbox/get", {"accountId": alice.account}, "b"],
        ["Core/echo", {"#x": {"resultOf": "nope", "name": "Core/echo", "path": "/x"}}, "c"],
        ["Core/echo", {"x": 1, "#x": {"resultOf": "b", "name": "Mailbox/get", "path": "/list"}}, "d"],
        ["Mailbox/get", {"accountId": alice.account, "properties": ["nope"]}, "e"],
        ["Mailbox/get", {"accountId": alice.account, "ids": "m1"}, "f"],
    ])
    assert r[0] == ["error", {"type": "unknownMethod"}, "a"]
    assert r[1][0] == "Mailbox/get"
    assert r[2][0] == "error" and r[2][1]["type"] == "invalidResultReference"
    assert r[3][0] == "error" and r[3][1]["type"] == "invalidArguments"
    assert r[4][0] == "error" and r[4][1]["type"] == "invalidArguments"
    assert r[5][0] == "error" and r[5][1]["type"] == "invalidArguments"
    # A method of a capability the request does not use.
    r = alice.api([["Mailbox/get", {"accountId": alice.account}, "x"]], using=[CORE])
    assert r[0][0] == "error" and r[0][1]["type"] == "unknownMethod"


def test_no_request_reaches_another_account(server, alice):
    bob = Web(server, BOB)
    assert bob.account != alice.account
    guesses = [bob.account, "a0", "a1", "a2", "a3", "a" + "9" * 30, "", None, 2,
               alice.account + " ", alice.account.upper()]
    for guess in guesses:
        if guess == alice.account:
            continue
        args = {} if guess is None else {"accountId": guess}
        got, result = alice.call("Mailbox/get", args)
        assert (got, result) == ("error", {"type": "accountNotFound"}), guess
    # Ids of bob's mailboxes are just not found in alice's account (ids
    # name mailboxes of the session's account only).
    _, bobs = bob.call("Mailbox/get", {"accountId": bob.account})
    _, mine = alice.call("Mailbox/get", {"accountId": alice.account,
                                         "ids": [m["id"] for m in bobs["list"]]})
    assert all(m["name"] in {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
               for m in mine["list"])


def test_mailbox_get_roles_and_hierarchy(server, alice):
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    imap.login(ALICE, PASSWORDS[ALICE])
    imap.create("Projects/2024")
    imap.logout()
    got, r = alice.call("Mailbox/get", {"accountId": alice.account, "ids": None})
    assert got == "Mailbox/get" and r["accountId"] == alice.account
    by_name = {m["name"]: m for m in r["list"]}
    assert {n: by_name[n]["role"] for n in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive")} == {
        "INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash",
        "Junk": "junk", "Archive": "archive"}
    assert by_name["INBOX"]["sortOrder"] < by_name["Sent"]["sortOrder"] < by_name["Projects"]["sortOrder"]
    assert by_name["2024"]["parentId"] == by_name["Projects"]["id"]
    assert by_name["Projects"]["parentId"] is None and by_name["Projects"]["role"] is None
    assert by_name["INBOX"]["myRights"]["mayDelete"] is False
    assert by_name["Projects"]["myRights"]["mayRename"] is True
    assert by_name["INBOX"]["isSubscribed"] is True
    # ids and properties.
    inbox = by_name["INBOX"]["id"]
    _, r = alice.call("Mailbox/get", {"accountId": alice.account, "ids": [inbox, "m999999", "x"],
                                      "properties": ["name", "unreadEmails"]})
    assert r["list"] == [{"id": inbox, "name": "INBOX",
                          "unreadEmails": by_name["INBOX"]["unreadEmails"]}]
    assert r["notFound"] == ["m999999", "x"]


def test_mailbox_counts_follow_conversations(server):
    d = server
    w = Web(d, BOB)
    deliver(d, BOB, b"Message-ID: <t1@remote.test>\r\nSubject: plan\r\n\r\nfirst\r\n")
    deliver(d, BOB, b"Message-ID: <t2@remote.test>\r\nIn-Reply-To: <t1@remote.test>\r\n"
                    b"References: <t1@remote.test>\r\nSubject: Re: plan\r\n\r\nreply\r\n")
    deliver(d, BOB, b"Message-ID: <u1@remote.test>\r\nSubject: other\r\n\r\nelse\r\n")
    _, r = w.call("Mailbox/get", {"accountId": w.account})
    inbox = next(m for m in r["list"] if m["role"] == "inbox")
    assert (inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"],
            inbox["unreadThreads"]) == (3, 3, 2, 2)
    state = r["state"]
    imap = imaplib.IMAP4("127.0.0.1", d.imap_port)
    imap.login(BOB, PASSWORDS[BOB])
    imap.select("INBOX")
    imap.store("1:2", "+FLAGS", "(\\Seen)")
    imap.logout()
    _, r = w.call("Mailbox/get", {"accountId": w.account})
    inbox = next(m for m in r["list"] if m["role"] == "inbox")
    assert (inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"],
            inbox["unreadThreads"]) == (3, 1, 2, 1)
    assert r["state"] != state
    # A later reply that names only the thread's first message joins it.
    deliver(d, BOB, b"Message-ID: <t3@remote.test>\r\nReferences: <t1@remote.test>\r\n"
                    b"Subject: Re: plan\r\n\r\nlater\r\n")
    _, r = w.call("Mailbox/get", {"accountId": w.account})
    inbox = next(m for m in r["list"] if m["role"] == "inbox")
    assert (inbox["totalEmails"], inbox["unreadThreads"], inbox["totalThreads"]) == (4, 2, 2)


def test_result_references_between_calls(alice):
    r = alice.api([
        ["Mailbox/get", {"accountId": alice.account, "properties": ["name"]}, "m"],
        ["Core/echo", {"#ids": {"resultOf": "m", "name": "Mailbox/get", "path": "/list/*/id"}}, "e"],
    ])
    ids = [m["id"] for m in r[0][1]["list"]]
    assert r[1] == ["Core/echo", {"ids": ids}, "e"]
