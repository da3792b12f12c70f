"""The webmail's JMAP mail methods (RFC 8621) against a real server:
Email/query, Email/get, Email/set, the /changes methods, Mailbox/set,
Thread/get, SearchSnippet/get, Identity, EmailSubmission, blobs (upload,
download, the sanitized view), push over EventSource, and that nobody
reaches another user's mail by guessing ids, nor changes anything without
the CSRF header and our own Origin.

One server for the module; most tests work in accounts of their own so
that what they count is theirs alone."""
import base64
import datetime
import email
import email.policy
import http.client
import imaplib
import json
import re
import time
import urllib.parse
import uuid
from types import SimpleNamespace

import pytest

from conftest import IMAP_BAD_LOG, PASSWORDS, Dijk, add_account
from test_jmap_api import ALICE, BOB, CORE, MAIL, Web, deliver

SUBMISSION = "urn:ietf:params:jmap:submission"
USING = (CORE, MAIL, SUBMISSION)


# --- clients -------------------------------------------------------------------

class Client(Web):
    """A logged-in webmail session of any account, with short forms of the
    calls the tests make."""

    def __init__(self, d, user, password):
        self.d = d
        self.user = user
        self.password = password
        status, h, body = self.raw("POST", "/api/login",
                                   {"username": user, "password": password})
        assert status == 200, body
        self.cookie = h["set-cookie"].split(";")[0]
        self.csrf = body["csrf"]
        status, _, self.session = self.raw("GET", "/jmap/session")
        assert status == 200, self.session
        self.account = self.session["primaryAccounts"][MAIL]

    def api(self, calls, using=USING):
        return super().api(calls, using)

    def call1(self, name, args=None):
        a = {"accountId": self.account}
        a.update(args or {})
        [(got, result, cid)] = self.api([[name, a, "c"]])
        assert cid == "c"
        return got, result

    def ok(self, name, args=None):
        got, result = self.call1(name, args)
        assert got == name, (name, result)
        return result

    def error(self, name, args=None):
        got, result = self.call1(name, args)
        assert got == "error", (name, result)
        return result["type"]

    # Shortcuts.
    def mailboxes(self):
        """Mailboxes by their full name ("Projects/2024")."""
        listed = self.ok("Mailbox/get", {"ids": None})["list"]
        by_id = {m["id"]: m for m in listed}

        def full(m):
            return m["name"] if m["parentId"] is None else full(by_id[m["parentId"]]) + "/" + m["name"]
        return {full(m): m for m in listed}

    def mbox(self, name):
        return self.mailboxes()[name]["id"]

    def role(self, role):
        return next(m["id"] for m in self.mailboxes().values() if m["role"] == role)

    def query(self, filter=None, **kw):
        args = dict(kw)
        if filter is not None:
            args["filter"] = filter
        return self.ok("Email/query", args)["ids"]

    def get(self, ids, properties=None, **kw):
        args = {"ids": list(ids)}
        if properties is not None:
            args["properties"] = properties
        args.update(kw)
        return self.ok("Email/get", args)["list"]

    def get1(self, email_id, properties=None, **kw):
        [e] = self.get([email_id], properties, **kw)
        return e

    def state(self):
        return self.ok("Email/get", {"ids": []})["state"]

    def set(self, **args):
        return self.ok("Email/set", args)

    def by_message_id(self):
        """Email ids by Message-ID, over every mailbox."""
        ids = self.query()
        out = {}
        for e in self.get(ids, ["messageId"]):
            for m in e["messageId"] or []:
                out[m] = e["id"]
        return out

    def wait_for(self, message_id, timeout=10):
        """The id of the Email with this Message-ID, once it is there."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.by_message_id().get(message_id)
            if found or time.monotonic() > deadline:
                assert found, f"{message_id} never arrived"
                return found
            time.sleep(0.05)

    def deliver(self, data):
        deliver(self.d, self.user, data)

    def imap(self):
        i = imaplib.IMAP4("127.0.0.1", self.d.imap_port, timeout=15)
        i.login(self.user, self.password)
        return i

    def append(self, mailbox, data, date, flags=""):
        i = self.imap()
        try:
            typ, got = i.append(mailbox, flags or None, date, data)
            assert typ == "OK", got
        finally:
            i.logout()

    def download(self, blob, name="file", type=None, account=None):
        path = f"/jmap/download/{account or self.account}/{blob}/{urllib.parse.quote(name)}"
        if type:
            path += "?type=" + urllib.parse.quote(type, safe="")
        return self.raw("GET", path)

    def upload(self, data, type="application/octet-stream", **kw):
        return self.raw("POST", f"/jmap/upload/{self.account}/", data,
                        headers={"Content-Type": type}, **kw)


def new_client(d):
    address, password = add_account(d)
    return Client(d, address, password)


def imap_messages(imap, mailbox):
    """{Message-ID: (uid, set of flags)} of a mailbox, over IMAP."""
    typ, data = imap.select(mailbox)
    assert typ == "OK", data
    if data[0] == b"0":
        return {}
    typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, header = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split())
        flags.discard("\\Recent")
        m = re.search(rb"<([^>]+)>", header)
        out[m.group(1).decode() if m else None] = (uid, flags)
    return out


def internal_date(text):
    return imaplib.Time2Internaldate(
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc))


def msg(headers, body, crlf=True):
    text = "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + body
    if crlf:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode("utf-8")


def uid_token():
    return uuid.uuid4().hex[:10]


# --- the server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = Dijk(tmp_path_factory.mktemp("jmapmail") / "data")
    d.start()
    yield d
    code = d.stop()
    logs = d.logs()
    assert code == 0, logs[-4000:]
    for bad in IMAP_BAD_LOG:
        assert bad not in logs, logs[-8000:]


# A read-only corpus for the queries: six messages with known dates,
# flags, threads and words, five in INBOX and one in Work.
PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"

CORPUS_DATES = {
    "q1": "2021-01-01T10:00:00Z", "q2": "2021-02-01T14:30:00Z",
    "q3": "2021-03-01T10:00:00Z", "q4": "2021-04-01T10:00:00Z",
    "q5": "2021-05-01T10:00:00Z", "q6": "2021-06-01T10:00:00Z",
}


def corpus_messages(me):
    pdf64 = base64.encodebytes(PDF).decode().replace("\n", "\r\n")
    return [
        ("q1", "INBOX", r"(\Seen)", msg([
            ("From", "Carol Example <carol@remote.test>"), ("To", f"Quentin <{me}>"),
            ("Subject", "Quarterly report"), ("Date", "Fri, 01 Jan 2021 11:00:00 +0100"),
            ("Message-ID", "<q1@remote.test>"), ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/mixed; boundary="b1"')],
            "--b1\nContent-Type: text/plain; charset=utf-8\n\nThe budget numbers are attached.\n"
            "--b1\nContent-Type: application/pdf; name=\"report.pdf\"\n"
            "Content-Disposition: attachment; filename=\"report.pdf\"\n"
            f"Content-Transfer-Encoding: base64\n\n{pdf64}--b1--\n")),
        ("q2", "INBOX", r"(\Flagged project-x)", msg([
            ("From", "dave@remote.test"), ("To", me), ("Subject", "Lunch plans"),
            ("Date", "Mon, 01 Feb 2021 09:30:00 -0500"), ("Message-ID", "<q2@remote.test>"),
            ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "quoted-printable")],
            "Let us meet at the caf=C3=A9 on Friday.\n")),
        ("q3", "INBOX", "", msg([
            ("From", "Carol Example <carol@remote.test>"), ("To", me),
            ("Subject", "Re: Quarterly report"), ("Date", "Mon, 01 Mar 2021 10:00:00 +0000"),
            ("Message-ID", "<q3@remote.test>"), ("In-Reply-To", "<q1@remote.test>"),
            ("References", "<q1@remote.test>")],
            "Numbers look fine to me.\n")),
        ("q4", "Work", r"(\Seen)", msg([
            ("From", "erin@remote.test"), ("To", me),
            ("Subject", "=?UTF-8?Q?=C3=9Cberweisung_erhalten?="),
            ("Date", "Thu, 01 Apr 2021 10:00:00 +0000"), ("Message-ID", "<q4@remote.test>"),
            ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8")],
            "Die ZAHLUNG ist angekommen, Ref xy.\n")),
        ("q5", "INBOX", r"(\Seen \Flagged Project-X)", msg([
            ("From", "dave@remote.test"), ("To", me), ("Subject", "Re: Lunch plans"),
            ("Date", "Sat, 01 May 2021 10:00:00 +0000"), ("Message-ID", "<q5@remote.test>"),
            ("In-Reply-To", "<q2@remote.test>"), ("References", "<q2@remote.test>")],
            "Friday works for me.\n")),
        ("q6", "INBOX", "", msg([
            ("From", "News <news@lists.test>"), ("To", "newsletter-list@lists.test"),
            ("Subject", "HTML newsletter"), ("Date", "Tue, 01 Jun 2021 10:00:00 +0000"),
            ("Message-ID", "<q6@remote.test>"), ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/alternative; boundary="alt"')],
            "--alt\nContent-Type: text/plain; charset=utf-8\n\nSpring issue, plain.\n"
            "--alt\nContent-Type: text/html; charset=utf-8\n\n<p>Spring issue, <b>rich</b>.</p>\n"
            "--alt--\n")),
    ]


@pytest.fixture(scope="module")
def corpus(srv):
    c = new_client(srv)
    i = c.imap()
    assert i.create("Work")[0] == "OK"
    raw = {}
    for name, mailbox, flags, data in corpus_messages(c.user):
        typ, got = i.append(mailbox, flags or None, internal_date(CORPUS_DATES[name]), data)
        assert typ == "OK", got
        raw[name] = data
    i.logout()
    k = SimpleNamespace()
    k.c = c
    ids = c.by_message_id()
    k.id = {n: ids[f"{n}@remote.test"] for n in CORPUS_DATES}
    k.name = {v: n for n, v in k.id.items()}
    k.raw = raw
    k.inbox = c.role("inbox")
    k.work = c.mbox("Work")
    return k


def names(k, ids):
    return [k.name.get(i, i) for i in ids]


# --- Email/query -------------------------------------------------------------------

def test_query_mailboxes(corpus):
    k, c = corpus, corpus.c
    assert names(k, c.query({"inMailbox": k.inbox},
                            sort=[{"property": "receivedAt", "isAscending": False}])) == \
        ["q6", "q5", "q3", "q2", "q1"]
    assert names(k, c.query({"inMailbox": k.work})) == ["q4"]
    assert names(k, c.query({"inMailboxOtherThan": [k.inbox]})) == ["q4"]
    assert c.query({"inMailboxOtherThan": [k.inbox, k.work]}) == []
    assert sorted(names(k, c.query({"inMailboxOtherThan": [k.work]}))) == \
        ["q1", "q2", "q3", "q5", "q6"]
    # A mailbox that does not exist holds nothing.
    assert c.query({"inMailbox": "m999999"}) == []
    assert c.query({"inMailbox": "nonsense"}) == []
    # No filter: everything.
    assert sorted(names(k, c.query())) == sorted(CORPUS_DATES)


def test_query_sort_by_received_at(corpus):
    k, c = corpus, corpus.c
    asc = names(k, c.query(sort=[{"property": "receivedAt", "isAscending": True}]))
    assert asc == ["q1", "q2", "q3", "q4", "q5", "q6"]
    desc = names(k, c.query(sort=[{"property": "receivedAt", "isAscending": False}]))
    assert desc == asc[::-1]
    # The dates are the IMAP internal dates given on APPEND.
    got = {k.name[e["id"]]: e["receivedAt"] for e in c.get(k.id.values(), ["receivedAt"])}
    assert got == CORPUS_DATES


@pytest.mark.parametrize("filter,expected", [
    ({"text": "quarterly report"}, {"q1", "q3"}),
    ({"text": "quarterly lunch"}, set()),              # every word must match
    ({"text": "  friday   works "}, {"q5"}),
    ({"text": "BUDGET"}, {"q1"}),                       # without case
    ({"text": "zahlung"}, {"q4"}),
    # Words shorter than 3 have no index: "text" looks for them in the
    # headers only, "body" in the body.
    ({"text": "xy"}, set()),
    ({"body": "xy"}, {"q4"}),
    ({"body": "XY"}, {"q4"}),
    ({"body": "xy zahlung"}, {"q4"}),
    ({"body": "xy budget"}, set()),
    # ("ol" of "Carol": the test user's random address is hex, no "o")
    ({"text": "ol"}, {"q1", "q3"}),
    ({"text": "überweisung"}, {"q4"}),                  # RFC 2047 subject
    ({"text": "ÜBERWEISUNG"}, {"q4"}),
    ({"text": "Üb"}, {"q4"}),                           # short and non-ASCII
    ({"text": "üB"}, {"q4"}),                           # ... without case
    ({"text": "é"}, set()),
    ({"body": "é"}, {"q2"}),
    ({"text": "café"}, {"q2"}),                         # QP body
    ({"text": "lists.test"}, {"q6"}),
    ({"from": "carol"}, {"q1", "q3"}),
    ({"from": "Carol Example"}, {"q1", "q3"}),
    ({"from": "friday"}, set()),
    ({"to": "newsletter-list"}, {"q6"}),
    ({"to": "carol"}, set()),
    ({"subject": "lunch"}, {"q2", "q5"}),
    ({"subject": "friday"}, set()),
    ({"body": "friday"}, {"q2", "q5"}),
    ({"body": "lunch"}, set()),
    ({"body": "spring issue"}, {"q6"}),
    ({"hasAttachment": True}, {"q1"}),
    ({"hasAttachment": False}, {"q2", "q3", "q4", "q5", "q6"}),
    ({"hasKeyword": "$seen"}, {"q1", "q4", "q5"}),
    ({"notKeyword": "$seen"}, {"q2", "q3", "q6"}),
    ({"hasKeyword": "$flagged"}, {"q2", "q5"}),
    ({"hasKeyword": "$FLAGGED"}, {"q2", "q5"}),
    ({"hasKeyword": "project-x"}, {"q2", "q5"}),
    ({"hasKeyword": "PROJECT-X"}, {"q2", "q5"}),
    ({"notKeyword": "project-x"}, {"q1", "q3", "q4", "q6"}),
    ({"hasKeyword": "project"}, set()),
    ({"hasKeyword": "$draft"}, set()),
    ({"hasKeyword": "$seen", "notKeyword": "$flagged"}, {"q1", "q4"}),
    ({"after": "2021-03-01T10:00:00Z"}, {"q3", "q4", "q5", "q6"}),   # same or after
    ({"before": "2021-03-01T10:00:00Z"}, {"q1", "q2"}),              # strictly before
    ({"after": "2021-02-01T00:00:00Z", "before": "2021-04-01T10:00:01Z"}, {"q2", "q3", "q4"}),
    ({"after": "2030-01-01T00:00:00Z"}, set()),
    ({"operator": "OR", "conditions": [{"from": "erin"}, {"hasAttachment": True}]}, {"q1", "q4"}),
    ({"operator": "AND", "conditions": [{"from": "carol"},
                                        {"operator": "NOT", "conditions": [{"hasKeyword": "$seen"}]}]},
     {"q3"}),
    ({"operator": "NOT", "conditions": [{"inMailbox": "INBOX-ID"}]}, {"q4"}),
    ({"operator": "NOT", "conditions": [{"from": "dave"}, {"from": "carol"}]}, {"q4", "q6"}),
    ({"operator": "OR", "conditions": [
        {"operator": "AND", "conditions": [{"from": "dave"}, {"hasKeyword": "$seen"}]},
        {"operator": "NOT", "conditions": [{"inMailboxOtherThan": ["WORK-ID"]}]}]},
     {"q5", "q4"}),
    ({"operator": "AND", "conditions": []}, {"q1", "q2", "q3", "q4", "q5", "q6"}),
    ({"operator": "OR", "conditions": []}, set()),
    ({"inMailbox": "INBOX-ID", "text": "friday", "hasKeyword": "$seen"}, {"q5"}),
])
def test_query_filters(corpus, filter, expected):
    k, c = corpus, corpus.c
    text = json.dumps(filter).replace("INBOX-ID", k.inbox).replace("WORK-ID", k.work)
    assert set(names(k, c.query(json.loads(text)))) == expected


def test_query_collapse_threads(corpus):
    k, c = corpus, corpus.c
    # The replies joined their threads (In-Reply-To), over IMAP APPEND too.
    got = {k.name[e["id"]]: e["threadId"] for e in c.get(k.id.values(), ["threadId"])}
    assert got["q1"] == got["q3"] and got["q2"] == got["q5"]
    assert len({got["q1"], got["q2"], got["q4"], got["q6"]}) == 4
    desc = [{"property": "receivedAt", "isAscending": False}]
    r = c.ok("Email/query", {"filter": {"inMailbox": k.inbox}, "sort": desc,
                             "collapseThreads": True, "calculateTotal": True})
    assert names(k, r["ids"]) == ["q6", "q5", "q3"]
    assert r["total"] == 3 and r["position"] == 0
    r = c.ok("Email/query", {"filter": {"inMailbox": k.inbox}, "sort": desc,
                             "collapseThreads": False, "calculateTotal": True})
    assert r["total"] == 5
    # The first of each thread in the order asked for.
    asc = [{"property": "receivedAt", "isAscending": True}]
    assert names(k, c.query({"inMailbox": k.inbox}, sort=asc, collapseThreads=True)) == \
        ["q1", "q2", "q6"]
    # Only the matching Emails count: the thread's newest is not in the result.
    assert names(k, c.query({"notKeyword": "$seen"}, sort=desc, collapseThreads=True)) == \
        ["q6", "q3", "q2"]
    # Paging over collapsed threads.
    r = c.ok("Email/query", {"filter": {"inMailbox": k.inbox}, "sort": desc,
                             "collapseThreads": True, "position": 1, "limit": 1})
    assert names(k, r["ids"]) == ["q5"] and r["position"] == 1


def test_query_position_limit_and_anchor(corpus):
    k, c = corpus, corpus.c
    base = {"filter": {"inMailbox": k.inbox},
            "sort": [{"property": "receivedAt", "isAscending": False}]}

    def q(**kw):
        args = dict(base)
        args.update(kw)
        r = c.ok("Email/query", args)
        return names(k, r["ids"]), r["position"]

    assert q() == (["q6", "q5", "q3", "q2", "q1"], 0)
    assert q(position=1, limit=2) == (["q5", "q3"], 1)
    assert q(position=4, limit=2) == (["q1"], 4)
    assert q(position=5)[0] == []
    assert q(position=50)[0] == []
    # A negative position counts from the end, and is clamped at 0.
    assert q(position=-2) == (["q2", "q1"], 3)
    assert q(position=-2, limit=1) == (["q2"], 3)
    assert q(position=-10, limit=2) == (["q6", "q5"], 0)
    # An anchor (position is then ignored).
    a = k.id["q3"]
    assert q(anchor=a, limit=2) == (["q3", "q2"], 2)
    assert q(anchor=a, anchorOffset=-1, limit=2) == (["q5", "q3"], 1)
    assert q(anchor=a, anchorOffset=1, limit=5) == (["q2", "q1"], 3)
    assert q(anchor=a, anchorOffset=-10, limit=2) == (["q6", "q5"], 0)
    assert q(anchor=a, anchorOffset=-2, position=4) == (["q6", "q5", "q3", "q2", "q1"], 0)
    assert q(anchor=k.id["q1"], anchorOffset=0) == (["q1"], 4)
    # calculateTotal.
    r = c.ok("Email/query", dict(base, limit=1, calculateTotal=True))
    assert r["total"] == 5 and len(r["ids"]) == 1
    assert "total" not in c.ok("Email/query", dict(base, limit=1))
    r = c.ok("Email/query", dict(base, position=-1, calculateTotal=True))
    assert r["total"] == 5 and names(k, r["ids"]) == ["q1"]
    # Not in the results, or not an Email at all.
    for anchor in (k.id["q4"], "e999999", "nonsense", "m1"):
        got, r = c.call1("Email/query", dict(base, anchor=anchor))
        assert (got, r["type"]) == ("error", "anchorNotFound"), anchor


@pytest.mark.parametrize("args,error", [
    ({"sort": [{"property": "subject"}]}, "unsupportedSort"),
    ({"sort": [{"property": "size", "isAscending": True}]}, "unsupportedSort"),
    ({"sort": [{"property": "receivedAt"}, {"property": "subject"}]}, "unsupportedSort"),
    ({"sort": [{"property": "receivedAt", "isAscending": "yes"}]}, "invalidArguments"),
    ({"filter": {"header": ["Subject", "x"]}}, "unsupportedFilter"),
    ({"filter": {"nonsense": 1}}, "unsupportedFilter"),
    ({"filter": {"operator": "XOR", "conditions": []}}, "unsupportedFilter"),
    ({"filter": {"operator": "AND", "conditions": [{"nope": "x"}]}}, "unsupportedFilter"),
    ({"filter": {"operator": "AND", "conditions": {}}}, "invalidArguments"),
    ({"filter": {"operator": "AND"}}, "invalidArguments"),
    ({"filter": {"operator": "AND", "conditions": [], "text": "x"}}, "invalidArguments"),
    ({"filter": "text"}, "invalidArguments"),
    ({"filter": [{"text": "x"}]}, "invalidArguments"),
    ({"filter": {"text": 3}}, "invalidArguments"),
    ({"filter": {"before": "yesterday"}}, "invalidArguments"),
    ({"filter": {"after": "2021-13-01T00:00:00Z"}}, "invalidArguments"),
    ({"filter": {"after": "2021-01-01T00:00:00"}}, "invalidArguments"),
    ({"filter": {"hasAttachment": "yes"}}, "invalidArguments"),
    ({"filter": {"hasKeyword": "two words"}}, "invalidArguments"),
    ({"filter": {"hasKeyword": ""}}, "invalidArguments"),
    ({"filter": {"inMailboxOtherThan": "m1"}}, "invalidArguments"),
    ({"position": "1"}, "invalidArguments"),
    ({"position": 1.5}, "invalidArguments"),
    ({"limit": -1}, "invalidArguments"),
    ({"limit": "10"}, "invalidArguments"),
    ({"anchor": 5}, "invalidArguments"),
    ({"anchorOffset": "1", "anchor": "e1"}, "invalidArguments"),
    ({"collapseThreads": "yes"}, "invalidArguments"),
    ({"calculateTotal": 1}, "invalidArguments"),
])
def test_query_errors(corpus, args, error):
    assert corpus.c.error("Email/query", args) == error


def test_query_limit_zero(corpus):
    # RFC 8620 5.5: limit is the most ids to give; 0 is a valid UnsignedInt
    # (a client that wants only the total asks for none).
    r = corpus.c.ok("Email/query", {"limit": 0, "calculateTotal": True})
    assert r["total"] == 6 and r["ids"] == []


def test_query_deep_filter_is_refused_not_crashing(corpus):
    f = {"text": "budget"}
    for _ in range(15):
        f = {"operator": "AND", "conditions": [f]}
    assert corpus.c.error("Email/query", {"filter": f}) == "invalidArguments"
    # A shallow one still works.
    f = {"text": "budget"}
    for _ in range(3):
        f = {"operator": "AND", "conditions": [f]}
    assert names(corpus, corpus.c.query(f)) == ["q1"]


# --- Email/get ---------------------------------------------------------------------

DEFAULT_PROPERTIES = {
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId",
    "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
    "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments"}
DEFAULT_BODY_PROPERTIES = {"partId", "blobId", "size", "name", "type", "charset",
                           "disposition", "cid", "language", "location"}


def test_email_get_default_properties(corpus):
    k, c = corpus, corpus.c
    e = c.get1(k.id["q1"])
    assert set(e) == DEFAULT_PROPERTIES
    assert e["id"] == k.id["q1"]
    assert re.fullmatch(r"G\d+", e["blobId"]) and re.fullmatch(r"t\d+", e["threadId"])
    assert e["mailboxIds"] == {k.inbox: True}
    assert e["keywords"] == {"$seen": True}
    assert e["size"] == len(k.raw["q1"])
    assert e["receivedAt"] == "2021-01-01T10:00:00Z"
    assert e["messageId"] == ["q1@remote.test"]
    assert e["inReplyTo"] is None and e["references"] is None
    assert e["from"] == [{"name": "Carol Example", "email": "carol@remote.test"}]
    assert e["to"] == [{"name": "Quentin", "email": c.user}]
    assert e["cc"] is None and e["bcc"] is None and e["replyTo"] is None and e["sender"] is None
    assert e["subject"] == "Quarterly report"
    assert e["sentAt"] == "2021-01-01T11:00:00+01:00"
    assert e["hasAttachment"] is True
    assert e["preview"].startswith("The budget numbers are attached.")
    assert e["bodyValues"] == {}
    [text] = e["textBody"]
    assert set(text) == DEFAULT_BODY_PROPERTIES
    assert text["type"] == "text/plain" and text["charset"] == "utf-8" and text["partId"] == "1"
    assert e["htmlBody"] == e["textBody"]
    [att] = e["attachments"]
    assert att["name"] == "report.pdf" and att["type"] == "application/pdf"
    assert att["disposition"] == "attachment" and att["size"] == len(PDF)
    assert att["partId"] == "2" and att["blobId"] == e["blobId"] + ".2"
    # The reply and its references; a negative offset.
    e = c.get1(k.id["q3"], ["inReplyTo", "references", "sentAt", "threadId"])
    assert e["inReplyTo"] == ["q1@remote.test"] and e["references"] == ["q1@remote.test"]
    assert e["sentAt"] == "2021-03-01T10:00:00+00:00"
    e = c.get1(k.id["q2"], ["sentAt", "keywords", "from"])
    assert e["sentAt"] == "2021-02-01T09:30:00-05:00"
    assert e["keywords"] == {"$flagged": True, "project-x": True}
    assert e["from"] == [{"name": None, "email": "dave@remote.test"}]
    e = c.get1(k.id["q5"], ["keywords"])
    assert e["keywords"] == {"$seen": True, "$flagged": True, "project-x": True}


def test_email_get_properties_and_body_properties(corpus):
    k, c = corpus, corpus.c
    assert c.get([k.id["q1"]], ["subject"]) == [{"id": k.id["q1"], "subject": "Quarterly report"}]
    assert c.get([k.id["q1"]], []) == [{"id": k.id["q1"]}]
    e = c.get1(k.id["q6"], ["textBody", "htmlBody", "attachments", "hasAttachment"],
               bodyProperties=["partId", "type"])
    assert e == {"id": k.id["q6"], "hasAttachment": False, "attachments": [],
                 "textBody": [{"partId": "1", "type": "text/plain"}],
                 "htmlBody": [{"partId": "2", "type": "text/html"}]}
    e = c.get1(k.id["q6"], ["bodyStructure"], bodyProperties=["partId", "type", "subParts"])
    assert e["bodyStructure"] == {"partId": None, "type": "multipart/alternative", "subParts": [
        {"partId": "1", "type": "text/plain"}, {"partId": "2", "type": "text/html"}]}
    assert c.error("Email/get", {"ids": [k.id["q1"]], "properties": ["nope"]}) == "invalidArguments"
    assert c.error("Email/get", {"ids": [k.id["q1"]], "bodyProperties": ["nope"]}) == \
        "invalidArguments"
    assert c.error("Email/get", {"ids": k.id["q1"]}) == "invalidArguments"
    assert c.error("Email/get", {"ids": [k.id["q1"]], "maxBodyValueBytes": 0}) == \
        "invalidArguments"
    assert c.error("Email/get", {"ids": [k.id["q1"]], "fetchTextBodyValues": "yes"}) == \
        "invalidArguments"


def test_email_get_not_found(corpus):
    k, c = corpus, corpus.c
    bad = ["e999999", "e0", "x", "", "E1", "e1x", "t1", "m1", "G1", "e-1",
           "e18446744073709551616", k.id["q1"] + " "]
    r = c.ok("Email/get", {"ids": [k.id["q2"]] + bad, "properties": ["subject"]})
    assert r["list"] == [{"id": k.id["q2"], "subject": "Lunch plans"}]
    assert r["notFound"] == bad
    r = c.ok("Email/get", {"ids": [], "properties": ["subject"]})
    assert r["list"] == [] and r["notFound"] == [] and r["state"]


MIXED = """From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@remote.test>
To: "Doe, Jane" <jane@remote.test>, =?ISO-8859-1?Q?Fran=E7ois?= <francois@remote.test>
Cc: team@remote.test
Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and =?UTF-8?B?4pyTIGRvbmU=?=
Date: Wed, 15 Mar 2023 08:05:09 +0530
Message-ID: <MIXED@remote.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Hello in plain text. This is the alternative version of the message,
and it goes on for a while so that truncation can be tested.
--inner
Content-Type: text/html; charset=utf-8

<html><body><p>Hello in <b>HTML</b>.</p></body></html>
--inner--
--outer
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename*=UTF-8''%C3%BCbersicht%20%E2%82%AC.bin
Content-Transfer-Encoding: base64

AAECAwQFBgcICQ==
--outer--
"""

LATIN1 = """From: bob@remote.test
Subject: latin
Message-ID: <LATIN1@remote.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus K=F6ln, sch=F6ne Gr=FC=DFe.=20
Soft=
 break.
"""


@pytest.fixture(scope="module")
def reader(srv):
    c = new_client(srv)
    for text in (MIXED, LATIN1):
        c.deliver(text.replace("\n", "\r\n").encode())
    r = SimpleNamespace()
    r.c = c
    r.mixed = c.wait_for("MIXED@remote.test")
    r.latin1 = c.wait_for("LATIN1@remote.test")
    return r


def test_email_get_multipart_alternative_with_attachment(reader):
    c = reader.c
    e = c.get1(reader.mixed)
    assert [(p["partId"], p["type"]) for p in e["textBody"]] == [("1.1", "text/plain")]
    assert [(p["partId"], p["type"]) for p in e["htmlBody"]] == [("1.2", "text/html")]
    [att] = e["attachments"]
    assert att["partId"] == "2" and att["type"] == "application/octet-stream"
    assert att["name"] == "übersicht €.bin" and att["size"] == 10
    assert att["disposition"] == "attachment"
    assert e["hasAttachment"] is True
    assert e["bodyValues"] == {}
    # Encoded words, in the subject and in names.
    assert e["subject"] == "Café crème and ✓ done"
    assert e["from"] == [{"name": "Jürgen Müller", "email": "juergen@remote.test"}]
    assert e["to"] == [{"name": "Doe, Jane", "email": "jane@remote.test"},
                       {"name": "François", "email": "francois@remote.test"}]
    assert e["cc"] == [{"name": None, "email": "team@remote.test"}]
    assert e["sentAt"] == "2023-03-15T08:05:09+05:30"
    assert e["preview"].startswith("Hello in plain text. This is the alternative version")
    assert "\n" not in e["preview"] and "  " not in e["preview"]


def test_email_get_body_values(reader):
    c = reader.c
    e = c.get1(reader.mixed, ["bodyValues"], fetchTextBodyValues=True)
    assert set(e["bodyValues"]) == {"1.1"}
    v = e["bodyValues"]["1.1"]
    assert v["value"].startswith("Hello in plain text.") and "truncation can be tested" in v["value"]
    assert v["isTruncated"] is False and v["isEncodingProblem"] is False
    e = c.get1(reader.mixed, ["bodyValues"], fetchHTMLBodyValues=True)
    assert set(e["bodyValues"]) == {"1.2"}
    assert "<b>HTML</b>" in e["bodyValues"]["1.2"]["value"]
    e = c.get1(reader.mixed, ["bodyValues"], fetchHTMLBodyValues=True, fetchTextBodyValues=True)
    assert set(e["bodyValues"]) == {"1.1", "1.2"}
    e = c.get1(reader.mixed, ["bodyValues"], fetchAllBodyValues=True)
    assert set(e["bodyValues"]) == {"1.1", "1.2"}      # text parts only
    e = c.get1(reader.mixed, ["bodyValues"], fetchTextBodyValues=True, maxBodyValueBytes=10)
    v = e["bodyValues"]["1.1"]
    assert v["value"] == "Hello in p" and v["isTruncated"] is True
    e = c.get1(reader.mixed, ["bodyValues"], fetchTextBodyValues=True, maxBodyValueBytes=100000)
    assert e["bodyValues"]["1.1"]["isTruncated"] is False


def test_email_get_charset_conversion(reader):
    c = reader.c
    e = c.get1(reader.latin1, ["textBody", "bodyValues", "preview"], fetchTextBodyValues=True,
               bodyProperties=["partId", "charset", "type"])
    assert e["textBody"] == [{"partId": "1", "charset": "iso-8859-1", "type": "text/plain"}]
    v = e["bodyValues"]["1"]
    assert v["value"].replace("\r\n", "\n").startswith("Grüße aus Köln, schöne Grüße. \nSoft")
    assert "Soft break." in v["value"]
    assert v["isEncodingProblem"] is False and v["isTruncated"] is False
    assert e["preview"].startswith("Grüße aus Köln, schöne Grüße. Soft break.")
    # Truncation never splits a character.
    e = c.get1(reader.latin1, ["bodyValues"], fetchTextBodyValues=True, maxBodyValueBytes=3)
    v = e["bodyValues"]["1"]
    assert v["isTruncated"] is True and v["value"] == "Gr"


# --- Email/set ---------------------------------------------------------------------

def seed(c, count=1, mailbox=None, flags=""):
    """count new messages in c's account (IMAP APPEND), their Email ids."""
    ids = []
    for n in range(count):
        mid = f"{uid_token()}@remote.test"
        data = msg([("From", "sender@remote.test"), ("To", c.user),
                    ("Subject", f"seeded {n}"), ("Message-ID", f"<{mid}>")],
                   f"seeded body {n}\n")
        c.append(mailbox or "INBOX", data, internal_date(f"2022-0{1 + n % 9}-01T00:00:00Z"),
                 flags)
        ids.append(c.wait_for(mid))
    return ids


def test_keywords_patch_and_imap_flags(srv):
    c = new_client(srv)
    mid = f"{uid_token()}@remote.test"
    c.deliver(msg([("Subject", "flags"), ("Message-ID", f"<{mid}>")], "x\n"))
    eid = c.wait_for(mid)
    assert c.get1(eid, ["keywords"])["keywords"] == {}
    imap = c.imap()
    try:
        def flags():
            return imap_messages(imap, "INBOX")[mid][1]

        r = c.set(update={eid: {"keywords/$seen": True}})
        assert r["updated"] == {eid: None} and r["notUpdated"] == {}
        assert r["oldState"] != r["newState"]
        assert c.get1(eid, ["keywords"])["keywords"] == {"$seen": True}
        assert flags() == {r"\Seen"}
        c.set(update={eid: {"keywords/$flagged": True, "keywords/Custom_1": True}})
        assert c.get1(eid, ["keywords"])["keywords"] == \
            {"$seen": True, "$flagged": True, "custom_1": True}
        assert {f.lower() for f in flags()} == {r"\seen", r"\flagged", "custom_1"}
        c.set(update={eid: {"keywords/$seen": None}})
        assert c.get1(eid, ["keywords"])["keywords"] == {"$flagged": True, "custom_1": True}
        assert r"\Seen" not in flags()
        # The whole set at once.
        c.set(update={eid: {"keywords": {"$answered": True, "other": True}}})
        assert c.get1(eid, ["keywords"])["keywords"] == {"$answered": True, "other": True}
        assert {f.lower() for f in flags()} == {r"\answered", "other"}
        # IMAP's changes, seen by JMAP; \Deleted is not a keyword.
        imap.select("INBOX")
        uid = imap_messages(imap, "INBOX")[mid][0]
        assert imap.uid("STORE", str(uid), "+FLAGS", r"(\Seen \Deleted $Forwarded)")[0] == "OK"
        assert c.get1(eid, ["keywords"])["keywords"] == \
            {"$answered": True, "other": True, "$seen": True, "$forwarded": True}
        # A JMAP change keeps IMAP's \Deleted.
        c.set(update={eid: {"keywords/other": None}})
        assert {f.lower() for f in flags()} == {r"\answered", r"\seen", r"\deleted", "$forwarded"}
        # Invalid keywords change nothing.
        state = c.state()
        for patch in ({"keywords/two words": True}, {"keywords/$seen": False},
                      {"keywords": {"$seen": False}}, {"keywords": {"a(b": True}},
                      {"keywords": ["$seen"]}, {"keywords/": True}, {"size": 3},
                      {"subject": "new"}, {"keywords/" + "k" * 300: True}):
            r = c.set(update={eid: patch})
            assert r["updated"] == {} and \
                r["notUpdated"][eid]["type"] in ("invalidProperties", "invalidPatch"), patch
        assert c.state() == state
        assert {f.lower() for f in flags()} == {r"\answered", r"\seen", r"\deleted", "$forwarded"}
        r = c.set(update={"e999999": {"keywords/$seen": True}, "junk": {"keywords/$seen": True}})
        assert r["notUpdated"]["e999999"]["type"] == "notFound"
        assert r["notUpdated"]["junk"]["type"] == "notFound"
    finally:
        imap.logout()


def test_move_keeps_id_and_shows_over_imap(srv):
    c = new_client(srv)
    i = c.imap()
    i.create("Archive2")
    i.logout()
    eid, other = seed(c, 2)
    inbox, target = c.role("inbox"), c.mbox("Archive2")
    watcher = c.imap()
    try:
        before = imap_messages(watcher, "INBOX")   # keeps INBOX selected
        assert len(before) == 2
        st = watcher.status("Archive2", "(UIDNEXT MESSAGES)")[1][0].decode()
        uidnext = int(re.search(r"UIDNEXT (\d+)", st).group(1))
        mid = c.get1(eid, ["messageId"])["messageId"][0]
        r = c.set(update={eid: {"mailboxIds": {target: True}}})
        assert r["updated"] == {eid: None}, r
        e = c.get1(eid, ["mailboxIds", "keywords"])
        assert e["mailboxIds"] == {target: True}
        assert c.query({"inMailbox": inbox}) == [other]
        assert c.query({"inMailbox": target}) == [eid]
        # The selected INBOX learns of an expunge of that message.
        seq = sorted(uid for uid, _ in before.values()).index(before[mid][0]) + 1
        watcher.noop()
        assert watcher.response("EXPUNGE")[1] == [str(seq).encode()]
        # The target has it under the next UID.
        after = imap_messages(watcher, "Archive2")
        assert after == {mid: (uidnext, set())}
        assert mid not in imap_messages(watcher, "INBOX")
        # And back with the /mailboxIds/ pointer form.
        r = c.set(update={eid: {f"mailboxIds/{target}": None, f"mailboxIds/{inbox}": True}})
        assert r["updated"] == {eid: None}, r
        assert c.get1(eid, ["mailboxIds"])["mailboxIds"] == {inbox: True}
        assert mid in imap_messages(watcher, "INBOX")
        assert imap_messages(watcher, "Archive2") == {}
        # Two mailboxes, none, or one that does not exist: refused.
        state = c.state()
        for patch in ({"mailboxIds": {inbox: True, target: True}},
                      {f"mailboxIds/{target}": True},
                      {"mailboxIds": {}},
                      {f"mailboxIds/{inbox}": None},
                      {"mailboxIds": {"m999999": True}},
                      {"mailboxIds": {inbox: False}}):
            r = c.set(update={eid: patch})
            assert r["notUpdated"][eid]["type"] == "invalidProperties", (patch, r)
            assert "mailboxIds" in r["notUpdated"][eid].get("properties", ["mailboxIds"])
        assert c.state() == state
        assert c.get1(eid, ["mailboxIds"])["mailboxIds"] == {inbox: True}
    finally:
        watcher.logout()


def test_create_draft_with_attachment(srv):
    c = new_client(srv)
    data = bytes(range(256)) * 40 + b"\x00\r\n.\r\nend"
    status, h, up = c.upload(data, "application/pdf; name=x")
    assert status == 201, up
    assert up["accountId"] == c.account and up["type"] == "application/pdf"
    assert up["size"] == len(data) and re.fullmatch(r"U\d+", up["blobId"])
    drafts = c.role("drafts")
    r = c.set(create={"d1": {
        "mailboxIds": {drafts: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Ann Ämter", "email": c.user}],
        "to": [{"name": "Bob", "email": BOB}],
        "subject": "Draft with ünïcode and a file",
        "bodyValues": {"t": {"value": "Hello Bob,\nsee the file.\n"}},
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "attachments": [{"blobId": up["blobId"], "type": "application/pdf",
                         "name": "résumé.pdf", "disposition": "attachment"}],
    }})
    assert r["notCreated"] == {}, r
    made = r["created"]["d1"]
    eid = made["id"]
    assert re.fullmatch(r"e\d+", eid) and made["blobId"] == "G" + eid[1:]
    assert made["size"] > len(data)
    e = c.get1(eid, fetchTextBodyValues=True)
    assert e["mailboxIds"] == {drafts: True}
    assert e["keywords"] == {"$draft": True, "$seen": True}
    assert e["subject"] == "Draft with ünïcode and a file"
    assert e["from"] == [{"name": "Ann Ämter", "email": c.user}]
    assert e["to"] == [{"name": "Bob", "email": BOB}]
    assert e["bodyValues"][e["textBody"][0]["partId"]]["value"].replace("\r\n", "\n") == \
        "Hello Bob,\nsee the file.\n"
    [att] = e["attachments"]
    assert att["name"] == "résumé.pdf" and att["type"] == "application/pdf"
    assert att["size"] == len(data)
    assert e["hasAttachment"] is True
    assert e["size"] == made["size"] and e["threadId"] == made["threadId"]
    status, h, got = c.download(att["blobId"], "résumé.pdf")
    assert status == 200 and got == data
    # IMAP sees the same message in Drafts.
    imap = c.imap()
    try:
        typ, sel = imap.select("Drafts")
        assert sel == [b"1"]
        typ, fetched = imap.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[])")
        meta, raw = fetched[0]
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().lower().split()
        assert set(flags) - {"\\recent"} == {r"\draft", r"\seen"}
        assert int(re.search(rb"RFC822.SIZE (\d+)", meta).group(1)) == made["size"] == len(raw)
    finally:
        imap.logout()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(m["Subject"]) == "Draft with ünïcode and a file"
    assert m["From"].addresses[0].display_name == "Ann Ämter"
    parts = [p for p in m.walk() if p.get_filename()]
    assert [p.get_filename() for p in parts] == ["résumé.pdf"]
    assert parts[0].get_payload(decode=True) == data
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert m["Message-ID"] and m["Date"]
    # The whole message as a blob is what IMAP has.
    status, h, whole = c.download(made["blobId"], "draft.eml")
    assert status == 200 and whole == raw
    # A blob that is not there.
    r = c.set(create={"d2": {"mailboxIds": {drafts: True}, "from": [{"email": c.user}],
                             "attachments": [{"blobId": "U999999", "type": "text/plain"}]}})
    assert r["notCreated"]["d2"]["type"] == "blobNotFound"
    # A creation id usable later in the same request.
    r = c.api([
        ["Email/set", {"accountId": c.account, "create": {"n": {
            "mailboxIds": {drafts: True}, "from": [{"email": c.user}], "subject": "ref",
            "bodyValues": {"1": {"value": "x"}}, "textBody": [{"partId": "1"}]}}}, "a"],
        ["Email/get", {"accountId": c.account, "ids": ["#n"], "properties": ["subject"]}, "b"],
    ])
    new_id = r[0][1]["created"]["n"]["id"]
    assert r[1][1]["list"] == [{"id": new_id, "subject": "ref"}]


@pytest.fixture(scope="module")
def injector(srv):
    return new_client(srv)


@pytest.mark.parametrize("field,value", [
    ("subject", "Hi\r\nBcc: evil@remote.test"),
    ("subject", "Hi\nBcc: evil@remote.test"),
    ("subject", "Hi\rBcc: evil@remote.test"),
    ("subject", "Hi\x1b[31m"),
    ("from", [{"name": "Ann\r\nBcc: evil@remote.test", "email": "OWN"}]),
    ("from", [{"name": "Ann", "email": "OWN\r\nBcc: evil@remote.test"}]),
    ("to", [{"name": "Bob", "email": "bob@example.test>\r\nBcc: <evil@remote.test"}]),
    ("to", [{"name": "Bob", "email": "bob@example.test, evil@remote.test"}]),
    ("to", [{"name": "Bob", "email": "not an address"}]),
    ("cc", [{"name": "x\ny", "email": "bob@example.test"}]),
    ("replyTo", [{"email": "a@b\r\nX-Evil: 1"}]),
    ("messageId", ["abc@x>\r\nX-Evil: 1"]),
    ("inReplyTo", ["abc@x\r\nX-Evil: 1"]),
    ("references", ["abc@x>\nX-Evil: <1@x"]),
    ("attachments", [{"blobId": "UPLOAD", "type": "text/plain\r\nX-Evil: 1", "name": "a.txt"}]),
    ("attachments", [{"blobId": "UPLOAD", "type": "text/plain", "name": "a\r\nX-Evil: 1.txt"}]),
    ("attachments", [{"blobId": "UPLOAD", "type": "text/plain", "cid": "a>\r\nX-Evil: <b"}]),
])
def test_header_injection_refused(injector, field, value):
    c = injector
    status, _, up = c.upload(b"attached text\n", "text/plain")
    assert status == 201
    value = json.loads(json.dumps(value).replace("OWN", c.user).replace("UPLOAD", up["blobId"]))
    drafts = c.role("drafts")
    obj = {"mailboxIds": {drafts: True}, "from": [{"email": c.user}],
           "to": [{"email": BOB}], "subject": "s",
           "bodyValues": {"1": {"value": "body"}}, "textBody": [{"partId": "1"}]}
    obj[field] = value
    state = c.state()
    count = len(c.query())
    r = c.set(create={"x": obj})
    assert r["created"] == {}, r
    assert r["notCreated"]["x"]["type"] == "invalidProperties", r
    assert c.state() == state and len(c.query()) == count
    # Nothing reached the store, whatever IMAP asks.
    imap = c.imap()
    try:
        assert imap.select("Drafts")[1] == [str(count).encode()]
    finally:
        imap.logout()


def test_destroy_and_if_in_state(srv):
    c = new_client(srv)
    a, b, keep = seed(c, 3)
    mid = c.get1(a, ["messageId"])["messageId"][0]
    # ifInState that does not hold: nothing happens.
    state = c.state()
    got, r = c.call1("Email/set", {"ifInState": "1", "destroy": [a],
                                   "update": {b: {"keywords/$seen": True}}})
    assert (got, r["type"]) == ("error", "stateMismatch")
    got, r = c.call1("Email/set", {"ifInState": state + "0", "destroy": [a]})
    assert (got, r["type"]) == ("error", "stateMismatch")
    assert c.state() == state
    assert len(c.get([a, b], ["id"])) == 2 and c.get1(b, ["keywords"])["keywords"] == {}
    # One that holds.
    r = c.set(ifInState=state, destroy=[a, "e999999", "nonsense"])
    assert r["destroyed"] == [a] and r["oldState"] == state and r["newState"] != state
    assert set(r["notDestroyed"]) == {"e999999", "nonsense"}
    assert all(v["type"] == "notFound" for v in r["notDestroyed"].values())
    assert c.ok("Email/get", {"ids": [a]})["notFound"] == [a]
    assert a not in c.query()
    imap = c.imap()
    try:
        assert mid not in imap_messages(imap, "INBOX") and len(imap_messages(imap, "INBOX")) == 2
    finally:
        imap.logout()
    # Again: not found.
    r = c.set(destroy=[a])
    assert r["destroyed"] == [] and r["notDestroyed"][a]["type"] == "notFound"
    # The others are still there.
    assert sorted(c.query()) == sorted([b, keep])


# --- /changes ------------------------------------------------------------------------

def changes(c, method, since, **kw):
    return c.ok(method, dict(sinceState=since, **kw))


def test_email_mailbox_thread_changes(srv):
    c = new_client(srv)
    inbox = c.role("inbox")
    i = c.imap()
    i.create("Other")
    i.logout()
    other = c.mbox("Other")
    s0 = c.state()
    for method in ("Email/changes", "Mailbox/changes", "Thread/changes"):
        r = changes(c, method, s0)
        assert (r["created"], r["updated"], r["destroyed"], r["hasMoreChanges"]) == \
            ([], [], [], False), method
        assert r["oldState"] == s0 and r["newState"] == s0
    # SMTP delivery: a new Email, a new thread, the inbox's counts changed.
    c.deliver(msg([("Subject", "one"), ("Message-ID", "<ch1@remote.test>")], "one\n"))
    e1 = c.wait_for("ch1@remote.test")
    t1 = c.get1(e1, ["threadId"])["threadId"]
    r = changes(c, "Email/changes", s0)
    assert (r["created"], r["updated"], r["destroyed"]) == ([e1], [], [])
    s1 = r["newState"]
    assert s1 == c.state() and int(s1) > int(s0)
    r = changes(c, "Thread/changes", s0)
    assert (r["created"], r["updated"], r["destroyed"]) == ([t1], [], [])
    r = changes(c, "Mailbox/changes", s0)
    assert r["created"] == [] and r["updated"] == [inbox] and r["destroyed"] == []
    # A reply: the thread is updated, not created.
    c.deliver(msg([("Subject", "Re: one"), ("Message-ID", "<ch2@remote.test>"),
                   ("In-Reply-To", "<ch1@remote.test>")], "two\n"))
    e2 = c.wait_for("ch2@remote.test")
    assert c.get1(e2, ["threadId"])["threadId"] == t1
    r = changes(c, "Email/changes", s1)
    assert (r["created"], r["updated"], r["destroyed"]) == ([e2], [], [])
    r = changes(c, "Thread/changes", s1)
    assert (r["created"], r["updated"], r["destroyed"]) == ([], [t1], [])
    s2 = r["newState"]
    # IMAP STORE: the Email is updated.
    imap = c.imap()
    try:
        uid1 = imap_messages(imap, "INBOX")["ch1@remote.test"][0]
        imap.uid("STORE", str(uid1), "+FLAGS", r"(\Flagged)")
        r = changes(c, "Email/changes", s2)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [e1], [])
        r = changes(c, "Mailbox/changes", s2)
        assert r["updated"] == [inbox]
        assert changes(c, "Thread/changes", s2)["updated"] == []
        s3 = r["newState"]
        # A JMAP move: the Email is updated, both mailboxes too.
        c.set(update={e2: {"mailboxIds": {other: True}}})
        r = changes(c, "Email/changes", s3)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [e2], [])
        r = changes(c, "Mailbox/changes", s3)
        assert sorted(r["updated"]) == sorted([inbox, other]) and r["created"] == []
        s4 = r["newState"]
        # IMAP EXPUNGE: destroyed; the thread keeps one Email, so it is updated.
        imap.select("INBOX")
        imap.uid("STORE", str(uid1), "+FLAGS", r"(\Deleted)")
        assert imap.expunge()[0] == "OK"
        r = changes(c, "Email/changes", s4)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [e1]), r
        r = changes(c, "Thread/changes", s4)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [t1], []), r
        s5 = r["newState"]
        # The last one goes: the thread is destroyed.
        c.set(destroy=[e2])
        r = changes(c, "Thread/changes", s5)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [t1]), r
        r = changes(c, "Email/changes", s5)
        assert r["destroyed"] == [e2]
        # Created and gone since s0: not reported at all.
        r = changes(c, "Email/changes", s0)
        assert r["created"] == [] and r["destroyed"] == [] and r["updated"] == []
        # Mailboxes made, renamed and removed.
        s6 = c.state()
        made = c.ok("Mailbox/set", {"create": {"n": {"name": "Brand new"}}})["created"]["n"]["id"]
        r = changes(c, "Mailbox/changes", s6)
        assert (r["created"], r["updated"], r["destroyed"]) == ([made], [], [])
        assert r["updatedProperties"] is None
        s7 = r["newState"]
        assert imap.rename('"Brand new"', "Renamed")[0] == "OK"
        r = changes(c, "Mailbox/changes", s7)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [made], [])
        s8 = r["newState"]
        assert imap.delete("Renamed")[0] == "OK"
        r = changes(c, "Mailbox/changes", s8)
        assert (r["created"], r["updated"], r["destroyed"]) == ([], [], [made])
    finally:
        imap.logout()


def test_changes_max_changes_and_bad_states(srv):
    c = new_client(srv)
    s0 = c.state()
    for n in range(5):
        c.deliver(msg([("Subject", f"m{n}"), ("Message-ID", f"<mc{n}@remote.test>")], "x\n"))
    want = [c.wait_for(f"mc{n}@remote.test") for n in range(5)]
    seen, since, rounds = [], s0, 0
    while True:
        r = changes(c, "Email/changes", since, maxChanges=2)
        rounds += 1
        assert len(r["created"]) + len(r["updated"]) + len(r["destroyed"]) <= 2, r
        assert r["oldState"] == since
        seen += r["created"]
        if not r["hasMoreChanges"]:
            break
        assert r["newState"] != since and len(r["created"]) > 0
        since = r["newState"]
        assert rounds < 10
    assert sorted(seen) == sorted(want) and rounds == 3
    assert r["newState"] == c.state()
    # Threads too.
    r = changes(c, "Thread/changes", s0, maxChanges=1)
    assert len(r["created"]) == 1 and r["hasMoreChanges"] is True
    # States the server never gave.
    future = str(int(c.state()) + 1000)
    for method in ("Email/changes", "Mailbox/changes", "Thread/changes"):
        for bad in (future, "garbage", "", "-1", "1.5", "99999999999999999999999", " 1"):
            assert c.error(method, {"sinceState": bad}) == "cannotCalculateChanges", (method, bad)
        assert c.error(method, {}) == "invalidArguments"
        assert c.error(method, {"sinceState": 5}) == "invalidArguments"
        assert c.error(method, {"sinceState": s0, "maxChanges": 0}) == "invalidArguments"
        assert c.error(method, {"sinceState": s0, "maxChanges": "2"}) == "invalidArguments"


# --- Mailbox/set ---------------------------------------------------------------------

def imap_list(imap, command="LIST"):
    typ, data = getattr(imap, command.lower())()
    assert typ == "OK"
    out = set()
    for line in data:
        if line is None:
            continue
        m = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        name = m.group(2).decode()
        out.add(name.strip('"'))
    return out


def test_mailbox_set(srv):
    c = new_client(srv)
    imap = c.imap()
    try:
        r = c.ok("Mailbox/set", {"create": {
            "p": {"name": "Projects"},
            "c": {"name": "2025 ü", "parentId": "#p", "isSubscribed": False}}})
        assert r["notCreated"] == {}, r
        p, ch = r["created"]["p"]["id"], r["created"]["c"]["id"]
        boxes = c.mailboxes()
        assert boxes["Projects"]["id"] == p and boxes["Projects/2025 ü"]["id"] == ch
        assert boxes["Projects/2025 ü"]["parentId"] == p
        assert boxes["Projects"]["isSubscribed"] is True
        assert boxes["Projects/2025 ü"]["isSubscribed"] is False
        assert boxes["Projects"]["role"] is None and boxes["Projects"]["myRights"]["mayDelete"]
        listed = imap_list(imap)
        assert "Projects" in listed and "Projects/2025 &APw-" in listed
        subscribed = imap_list(imap, "LSUB")
        assert "Projects" in subscribed and "Projects/2025 &APw-" not in subscribed
        # Subscribe.
        r = c.ok("Mailbox/set", {"update": {ch: {"isSubscribed": True}}})
        assert r["updated"] == {ch: None}
        assert "Projects/2025 &APw-" in imap_list(imap, "LSUB")
        assert c.mailboxes()["Projects/2025 ü"]["isSubscribed"] is True
        r = c.ok("Mailbox/set", {"update": {p: {"isSubscribed": False}}})
        assert "Projects" not in imap_list(imap, "LSUB")
        # Rename: the child follows, ids stay.
        r = c.ok("Mailbox/set", {"update": {p: {"name": "Clients"}}})
        assert r["updated"] == {p: None}, r
        boxes = c.mailboxes()
        assert boxes["Clients"]["id"] == p and boxes["Clients/2025 ü"]["id"] == ch
        listed = imap_list(imap)
        assert {"Clients", "Clients/2025 &APw-"} <= listed and "Projects" not in listed
        # Move the child to the top.
        r = c.ok("Mailbox/set", {"update": {ch: {"parentId": None}}})
        assert r["updated"] == {ch: None}, r
        assert c.mailboxes()["2025 ü"]["parentId"] is None
        r = c.ok("Mailbox/set", {"update": {ch: {"parentId": p}}})
        assert c.mailboxes()["Clients/2025 ü"]["id"] == ch
        # Refused.
        inbox, sent, trash = c.role("inbox"), c.role("sent"), c.role("trash")
        r = c.ok("Mailbox/set", {
            "create": {"a": {"name": "a/b"}, "b": {"name": ""}, "c": {"name": "Clients"},
                       "d": {"name": "x", "parentId": "m999999"}, "e": {},
                       "f": {"name": "x\ny"}, "g": {"name": "x", "role": "inbox"}},
            "update": {inbox: {"name": "Inbox2"}, sent: {"name": "Sent2"},
                       p: {"parentId": ch}, "m999999": {"name": "z"},
                       ch: {"name": "a/b"}, trash: {"parentId": p}},
            "destroy": [inbox, sent, trash, "m999999"]})
        assert r["created"] == {} and r["updated"] == {} and r["destroyed"] == []
        nc = {k: v["type"] for k, v in r["notCreated"].items()}
        assert nc == {k: "invalidProperties" for k in "abcdefg"}, nc
        nu = {k: v["type"] for k, v in r["notUpdated"].items()}
        assert nu[inbox] == "forbidden" and nu[sent] == "forbidden" and nu[trash] == "forbidden"
        assert nu[p] == "invalidProperties" and nu["m999999"] == "notFound"
        assert nu[ch] == "invalidProperties"
        nd = {k: v["type"] for k, v in r["notDestroyed"].items()}
        assert nd == {inbox: "forbidden", sent: "forbidden", trash: "forbidden",
                      "m999999": "notFound"}, nd
        assert {"INBOX", "Sent", "Trash", "Clients", "Clients/2025 &APw-"} <= imap_list(imap)
        # A mailbox with a child stays.
        r = c.ok("Mailbox/set", {"destroy": [p]})
        assert r["notDestroyed"][p]["type"] == "mailboxHasChild"
        # A mailbox with mail: only when asked to remove it.
        c.append('"Clients/2025 &APw-"', msg([("Subject", "in box"), ("Message-ID", "<inbox@x>")],
                                          "x\n"), internal_date("2022-01-01T00:00:00Z"))
        eid = c.wait_for("inbox@x")
        r = c.ok("Mailbox/set", {"destroy": [ch]})
        assert r["notDestroyed"][ch]["type"] == "mailboxHasEmail" and r["destroyed"] == []
        assert c.get1(eid, ["mailboxIds"])["mailboxIds"] == {ch: True}
        r = c.ok("Mailbox/set", {"destroy": [ch], "onDestroyRemoveEmails": True})
        assert r["destroyed"] == [ch], r
        assert c.ok("Email/get", {"ids": [eid]})["notFound"] == [eid]
        assert "Clients/2025 &APw-" not in imap_list(imap)
        assert "Clients/2025 &APw-" not in imap_list(imap, "LSUB")
        r = c.ok("Mailbox/set", {"destroy": [p]})
        assert r["destroyed"] == [p]
        assert "Clients" not in imap_list(imap) and "Clients" not in c.mailboxes()
        # ifInState.
        got, r = c.call1("Mailbox/set", {"ifInState": "1", "create": {"x": {"name": "X"}}})
        assert (got, r["type"]) == ("error", "stateMismatch")
        assert "X" not in c.mailboxes()
    finally:
        imap.logout()


# --- Thread/get and SearchSnippet/get ----------------------------------------------------

def test_thread_get(corpus):
    k, c = corpus, corpus.c
    t = c.get1(k.id["q3"], ["threadId"])["threadId"]
    r = c.ok("Thread/get", {"ids": [t, "t999999", "junk", "e1"]})
    assert r["list"] == [{"id": t, "emailIds": [k.id["q1"], k.id["q3"]]}]
    assert r["notFound"] == ["t999999", "junk", "e1"] and r["state"]
    t6 = c.get1(k.id["q6"], ["threadId"])["threadId"]
    assert c.ok("Thread/get", {"ids": [t6]})["list"] == [{"id": t6, "emailIds": [k.id["q6"]]}]
    assert c.error("Thread/get", {"ids": "t1"}) == "invalidArguments"


def test_search_snippets(corpus):
    k, c = corpus, corpus.c
    r = c.ok("SearchSnippet/get", {"filter": {"text": "budget"},
                                   "emailIds": [k.id["q1"], k.id["q2"], "e999999"]})
    by = {s["emailId"]: s for s in r["list"]}
    assert r["notFound"] == ["e999999"]
    assert by[k.id["q1"]]["subject"] is None
    assert "<mark>budget</mark> numbers" in by[k.id["q1"]]["preview"]
    assert by[k.id["q2"]]["subject"] is None and by[k.id["q2"]]["preview"] is None
    r = c.ok("SearchSnippet/get", {"filter": {"operator": "AND", "conditions": [
        {"subject": "QUARTERLY"}, {"body": "fine"}]}, "emailIds": [k.id["q3"]]})
    [s] = r["list"]
    assert s["subject"] == "Re: <mark>Quarterly</mark> report"
    assert "look <mark>fine</mark> to me" in s["preview"]
    # Words under NOT are not marked.
    r = c.ok("SearchSnippet/get", {"filter": {"operator": "NOT", "conditions": [
        {"text": "numbers"}]}, "emailIds": [k.id["q3"]]})
    assert r["list"][0]["preview"] is None or "<mark>" not in r["list"][0]["preview"]
    assert c.error("SearchSnippet/get", {"filter": {"text": "x"}, "emailIds": "e1"}) == \
        "invalidArguments"


def test_search_snippet_escapes_html(srv):
    c = new_client(srv)
    c.deliver(msg([("Subject", "<script>alert(1)</script> invoice & <b>due</b>"),
                   ("Message-ID", "<snip@remote.test>")],
                  "Pay the invoice <img src=x onerror=alert(2)> \"now\" 'please'.\n"))
    eid = c.wait_for("snip@remote.test")
    assert c.query({"text": "invoice"}) == [eid]
    [s] = c.ok("SearchSnippet/get", {"filter": {"text": "invoice"}, "emailIds": [eid]})["list"]
    assert s["subject"] == ("&lt;script&gt;alert(1)&lt;/script&gt; <mark>invoice</mark> &amp; "
                            "&lt;b&gt;due&lt;/b&gt;")
    assert "<script" not in s["subject"] and "<b>" not in s["subject"]
    assert "<mark>invoice</mark> &lt;img src=x onerror=alert(2)&gt;" in s["preview"]
    assert "<img" not in s["preview"]
    assert "&quot;now&quot;" in s["preview"] or "&#34;now&#34;" in s["preview"]
    # A term that is itself markup is escaped inside the mark.
    [s] = c.ok("SearchSnippet/get", {"filter": {"text": "<script>"}, "emailIds": [eid]})["list"]
    assert "<mark>&lt;script&gt;</mark>" in s["subject"] and "<script>" not in s["subject"]


# --- Identity ------------------------------------------------------------------------------

def test_identity_get_set(srv):
    c = new_client(srv)
    r = c.ok("Identity/get", {})
    [ident] = r["list"]
    assert ident["email"] == c.user and ident["mayDelete"] is False
    assert ident["name"] == "" and ident["textSignature"] == ""
    iid = ident["id"]
    assert c.ok("Identity/get", {"ids": [iid, "i999"]})["notFound"] == ["i999"]
    r = c.ok("Identity/set", {"update": {iid: {"name": "Ann Ämter",
                                              "textSignature": "-- \nAnn\n\tExample Ltd"}}})
    assert r["updated"] == {iid: None} and r["notUpdated"] == {}
    got = c.ok("Identity/get", {"ids": [iid], "properties": ["name", "textSignature"]})["list"]
    assert got == [{"id": iid, "name": "Ann Ämter", "textSignature": "-- \nAnn\n\tExample Ltd"}]
    for patch in ({"name": "Ann\r\nBcc: evil@remote.test"}, {"name": "Ann\nX"},
                  {"name": "bell\x07"}, {"textSignature": "esc\x1b[2J"},
                  {"textSignature": "del\x7f"}, {"name": 5}, {"email": "evil@remote.test"},
                  {"name": "x" * 9000}, {"textSignature": "cr\r\nlf"}):
        r = c.ok("Identity/set", {"update": {iid: patch}})
        assert r["updated"] == {} and r["notUpdated"][iid]["type"] == "invalidProperties", patch
    got = c.ok("Identity/get", {})["list"][0]
    assert (got["name"], got["textSignature"], got["email"]) == \
        ("Ann Ämter", "-- \nAnn\n\tExample Ltd", c.user)
    r = c.ok("Identity/set", {"create": {"n": {"email": c.user}}, "destroy": [iid],
                              "update": {"i999": {"name": "x"}}})
    assert r["notCreated"]["n"]["type"] == "forbidden"
    assert r["notDestroyed"][iid]["type"] == "forbidden"
    assert r["notUpdated"]["i999"]["type"] == "notFound"
    # Identity needs the submission capability.
    [(got_name, res, _)] = c.api([["Identity/get", {"accountId": c.account}, "x"]],
                                 using=(CORE, MAIL))
    assert (got_name, res["type"]) == ("error", "unknownMethod")


# --- EmailSubmission -------------------------------------------------------------------------

def compose(c, to=(), bcc=(), cc=(), subject="s", from_=None, mailbox=None, draft=True):
    obj = {"mailboxIds": {mailbox or c.role("drafts"): True},
           "from": [{"name": "Sender", "email": from_ or c.user}],
           "to": [{"email": a} for a in to],
           "subject": subject,
           "bodyValues": {"1": {"value": f"Body of {subject}\n"}},
           "textBody": [{"partId": "1", "type": "text/plain"}]}
    if bcc:
        obj["bcc"] = [{"email": a} for a in bcc]
    if cc:
        obj["cc"] = [{"email": a} for a in cc]
    if draft:
        obj["keywords"] = {"$draft": True, "$seen": True}
    return obj


def test_submission_local_with_bcc_and_on_success(srv):
    s, r1, r2 = new_client(srv), new_client(srv), new_client(srv)
    drafts, sent = s.role("drafts"), s.role("sent")
    subject = "Sent " + uid_token()
    resp = s.api([
        ["Email/set", {"accountId": s.account, "create": {
            "d": compose(s, to=[r1.user], bcc=[r2.user], subject=subject)}}, "0"],
        ["EmailSubmission/set", {
            "accountId": s.account,
            "create": {"k": {"identityId": f"i{s.account[1:]}", "emailId": "#d"}},
            "onSuccessUpdateEmail": {"#k": {f"mailboxIds/{drafts}": None,
                                            f"mailboxIds/{sent}": True,
                                            "keywords/$draft": None}}}, "1"],
    ])
    assert [x[0] for x in resp] == ["Email/set", "EmailSubmission/set", "Email/set"], resp
    assert [x[2] for x in resp] == ["0", "1", "1"]
    eid = resp[0][1]["created"]["d"]["id"]
    sub = resp[1][1]
    assert sub["notCreated"] == {}, sub
    assert sub["created"]["k"]["undoStatus"] == "final" and sub["created"]["k"]["id"]
    assert resp[2][1]["updated"] == {eid: None}, resp[2]
    # The sender's copy is in Sent, without $draft, and keeps its Bcc.
    e = s.get1(eid, ["mailboxIds", "keywords", "bcc"])
    assert e["mailboxIds"] == {sent: True} and e["keywords"] == {"$seen": True}
    assert e["bcc"] == [{"name": None, "email": r2.user}]
    status, _, mine = s.download("G" + eid[1:], "m.eml")
    assert status == 200 and re.search(rb"(?im)^Bcc:.*" + re.escape(r2.user.encode()), mine)
    assert s.query({"inMailbox": drafts}) == []
    # Both recipients have it, in INBOX, with no Bcc field at all.
    for rc in (r1, r2):
        deadline = time.monotonic() + 10
        while not rc.query({"subject": subject}) and time.monotonic() < deadline:
            time.sleep(0.05)
        [got] = rc.query({"subject": subject})
        e = rc.get1(got, ["mailboxIds", "subject", "from", "to", "bcc", "keywords"])
        assert e["mailboxIds"] == {rc.role("inbox"): True} and e["subject"] == subject
        assert e["from"] == [{"name": "Sender", "email": s.user}]
        assert e["to"] == [{"name": None, "email": r1.user}]
        assert e["bcc"] is None and e["keywords"] == {}
        status, _, raw = rc.download("G" + got[1:], "m.eml")
        assert status == 200 and not re.search(rb"(?im)^bcc:", raw), raw[:600]
        if rc is r1:
            assert r2.user.encode() not in raw
        imap = rc.imap()
        try:
            typ, data = imap.select("INBOX")
            assert data == [b"1"]
            typ, data = imap.fetch("1", "(BODY.PEEK[HEADER])")
            header = data[0][1]
            assert subject.encode() in header and not re.search(rb"(?im)^bcc:", header)
        finally:
            imap.logout()


def test_submission_refusals_and_remote_queue(srv):
    s, other = new_client(srv), new_client(srv)
    iid = f"i{s.account[1:]}"

    def submit(obj, **extra):
        resp = s.api([
            ["Email/set", {"accountId": s.account, "create": {"d": obj}}, "0"],
            ["EmailSubmission/set", dict({"accountId": s.account, "create": {
                "k": {"identityId": iid, "emailId": "#d"}}}, **extra), "1"]])
        assert resp[0][1]["notCreated"] == {}, resp[0]
        return resp[0][1]["created"]["d"]["id"], resp[1][1]

    before = other.state()
    # Another user's address as From.
    _, r = submit(compose(s, to=[other.user], from_=other.user))
    assert r["created"] == {} and r["notCreated"]["k"]["type"] == "forbiddenFrom"
    _, r = submit(compose(s, to=[other.user], from_="postmaster@example.test"))
    assert r["notCreated"]["k"]["type"] == "forbiddenFrom"
    # An unknown local recipient: nothing goes to anyone.
    _, r = submit(compose(s, to=[other.user, "nobody-here@example.test"]))
    assert r["notCreated"]["k"]["type"] == "invalidRecipients"
    assert r["notCreated"]["k"]["invalidRecipients"] == ["nobody-here@example.test"]
    # No recipient.
    _, r = submit(compose(s, to=[]))
    assert r["notCreated"]["k"]["type"] == "noRecipients"
    # Wrong identity or Email.
    r = s.ok("EmailSubmission/set", {"create": {
        "a": {"identityId": "i999999", "emailId": "e1"},
        "b": {"identityId": iid, "emailId": "e999999"},
        "c": {"identityId": iid, "emailId": "junk"}}})
    assert r["notCreated"]["a"]["type"] == "invalidProperties"
    assert r["notCreated"]["b"]["type"] == "notFound"
    assert r["notCreated"]["c"]["type"] == "invalidProperties"
    assert other.state() == before and other.query() == []
    assert s.query({"inMailbox": s.role("sent")}) == []
    # Without the submission capability.
    [(name, res, _)] = s.api([["EmailSubmission/set", {"accountId": s.account,
                                                       "create": {}}, "x"]], using=(CORE, MAIL))
    assert (name, res["type"]) == ("error", "unknownMethod")
    # A remote recipient is queued, with the account as the sender.
    # Compared by queue id: a line's attempt fields change as the queue
    # tries the older messages.
    queued = {line.split()[0] for line in srv.queue()}
    rcpt = f"carol-{uid_token()}@remote.test"
    _, r = submit(compose(s, to=[rcpt]))
    assert r["notCreated"] == {} and list(r["created"]) == ["k"], r
    new = [line for line in srv.queue() if line.split()[0] not in queued]
    assert len(new) == 1, new
    fields = new[0].split()
    assert fields[1] == f"<{s.user}>" and rcpt in new[0]


# --- blobs -------------------------------------------------------------------------------

HTML_MAIL = """From: news@remote.test
To: {to}
Subject: html view
Message-ID: <VIEW@remote.test>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

plain version
--alt
Content-Type: text/html; charset=utf-8

<html><head><script>window.pwned=1</script><base href="https://evil.remote.test/">
<meta http-equiv="refresh" content="0;url=https://evil.remote.test/"></head>
<body onload="alert(1)"><p onclick="alert(2)">Hello <b>reader</b></p>
<img src="https://tracker.remote.test/pixel.png" alt="remote">
<img src="cid:logo@remote.test" alt="logo">
<a href="javascript:alert(3)">js link</a> <a href="https://ok.remote.test/">ok link</a>
<form action="https://evil.remote.test/"><input name="p"></form>
<iframe src="https://evil.remote.test/"></iframe>
<div style="background:url(https://evil.remote.test/bg.png);color:red">styled</div>
</body></html>
--alt--
--rel
Content-Type: image/png
Content-ID: <logo@remote.test>
Content-Transfer-Encoding: base64

{png}
--rel
Content-Type: text/html; charset=utf-8; name="page.html"
Content-Disposition: attachment; filename*=UTF-8''p%C3%A4ge%20%3C1%3E.html
Content-Transfer-Encoding: quoted-printable

<script>alert(4)</script>attached page
--rel--
"""

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture(scope="module")
def viewer(srv):
    c = new_client(srv)
    text = HTML_MAIL.format(to=c.user, png=base64.b64encode(PNG).decode())
    c.deliver(text.replace("\n", "\r\n").encode())
    v = SimpleNamespace()
    v.c = c
    v.eid = c.wait_for("VIEW@remote.test")
    v.email = c.get1(v.eid)
    return v


def test_upload(srv):
    c = new_client(srv)
    status, h, r = c.upload(b"hello", "Text/Plain; charset=utf-8")
    assert status == 201 and r["type"] == "text/plain" and r["size"] == 5
    status, h, r2 = c.upload(b"", "application/json")
    assert status == 201 and r2["size"] == 0 and r2["blobId"] != r["blobId"]
    status, h, r3 = c.upload(b"x", "text/<script>")
    assert status == 201 and r3["type"] == "application/octet-stream"
    # Into the account it came from only.
    for path in ("/jmap/upload/a999999/", "/jmap/upload/", "/jmap/upload/a1x/"):
        status, _, body = c.raw("POST", path, b"x", headers={"Content-Type": "text/plain"})
        assert status == 404, (path, status, body)
    status, h, got = c.download(r["blobId"], "hello.txt")
    assert status == 200 and got == b"hello"
    assert h["content-type"].startswith("text/plain")
    # Above the limit of the session resource.
    limit = c.session["capabilities"][CORE]["maxSizeUpload"]
    assert limit == 50 * 1024 * 1024
    status, _, body = c.upload(b"\0" * (limit + 1))
    assert status == 413, (status, body)


def test_download_attachment_part(viewer):
    c, e = viewer.c, viewer.email
    [att] = e["attachments"][-1:]
    assert att["name"] == "päge <1>.html" and att["type"] == "text/html"
    status, h, body = c.download(att["blobId"], att["name"], type="text/html")
    assert status == 200
    assert body == b"<script>alert(4)</script>attached page"
    cd = h["content-disposition"]
    assert cd.startswith("attachment;"), cd
    assert "filename*=UTF-8''p%C3%A4ge%20%3C1%3E.html" in cd, cd
    assert 'filename="p__ge <1>.html"' in cd, cd
    assert h["x-content-type-options"] == "nosniff"
    csp = h["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    # A type asked for that could be dangerous is still an attachment.
    status, h, _ = c.download(att["blobId"], "x.svg", type="image/svg+xml")
    assert status == 200 and h["content-disposition"].startswith("attachment")
    assert "sandbox" in h["content-security-policy"]
    # A type that is not a type falls back.
    status, h, _ = c.download(att["blobId"], "x", type="text/html\r\nX-Evil: 1")
    assert status == 200 and "x-evil" not in h
    # The image part, byte for byte.
    [img] = [p for p in e["attachments"] if p["type"] == "image/png"]
    assert img["cid"] == "logo@remote.test" and img["size"] == len(PNG)
    status, h, body = c.download(img["blobId"], "logo.png", type="image/png")
    assert status == 200 and body == PNG and h["content-type"] == "image/png"


def test_download_whole_message(viewer):
    c = viewer.c
    status, h, body = c.download(viewer.email["blobId"], "message.eml", type="message/rfc822")
    assert status == 200 and len(body) == viewer.email["size"]
    assert b"Message-ID: <VIEW@remote.test>" in body and body.startswith(b"Received: ")
    assert h["content-disposition"].startswith("attachment;")
    assert h["x-content-type-options"] == "nosniff"
    # Not there: 404, and never another account's.
    for blob in ("G999999", "G999999.1", viewer.email["blobId"] + ".9", "U999999", "X1", "G",
                 viewer.email["blobId"] + ".1.1.1.1"):
        assert c.download(blob, "x")[0] == 404, blob
    assert c.download(viewer.email["blobId"], "x", account="a999999")[0] == 404
    assert c.raw("GET", f"/jmap/download/{c.account}/{viewer.email['blobId']}")[0] == 404


def test_view_sanitized(viewer):
    c, e = viewer.c, viewer.email
    [html] = [p for p in e["htmlBody"] if p["type"] == "text/html"]
    path = f"/jmap/view/{c.account}/{viewer.eid}/{html['partId']}"
    status, h, body = c.raw("GET", path)
    assert status == 200, body
    assert h["content-type"].startswith("text/html")
    text = body.decode()
    assert "Hello <b>reader</b>" in text and "ok link" in text
    low = text.lower()
    for bad in ("<script", "pwned", "onload", "onclick", "alert(", "javascript:", "<base",
                "http-equiv", "<form", "<iframe", "evil.remote.test", "tracker.remote.test"):
        assert bad not in low, bad
    # The cid: image comes from the message, as data:.
    b64 = base64.b64encode(PNG).decode()
    assert f'src="data:image/png;base64,{b64}"' in text
    assert "cid:" not in low
    csp = h["content-security-policy"]
    assert "script-src" not in csp and "sandbox" in csp and "default-src 'none'" in csp
    assert "allow-scripts" not in csp and "allow-same-origin" not in csp
    assert "http:" not in csp and "https:" not in csp
    assert h["x-content-type-options"] == "nosniff"
    # Remote images only when asked, and then by the browser.
    status, h, body = c.raw("GET", path + "?images=1")
    assert status == 200
    text = body.decode()
    assert "https://tracker.remote.test/pixel.png" in text
    assert "<script" not in text.lower() and "evil.remote.test" not in text
    csp = h["content-security-policy"]
    assert "script-src" not in csp and "sandbox" in csp and "https:" in csp
    # Only text/html parts of the account's own Emails.
    [plain] = e["textBody"]
    assert plain["type"] == "text/plain"
    for bad in (f"/jmap/view/{c.account}/{viewer.eid}/{plain['partId']}",
                f"/jmap/view/{c.account}/{viewer.eid}/9",
                f"/jmap/view/{c.account}/{viewer.eid}/",
                f"/jmap/view/{c.account}/e999999/{html['partId']}",
                f"/jmap/view/{c.account}/junk/{html['partId']}",
                f"/jmap/view/a999999/{viewer.eid}/{html['partId']}",
                f"/jmap/view/{c.account}/{viewer.eid}"):
        status, h, body = c.raw("GET", bad)
        assert status == 404, (bad, status)
    # The attached HTML page is a part too, and is sanitized as well if viewed.
    att = e["attachments"][-1]
    status, h, body = c.raw("GET", f"/jmap/view/{c.account}/{viewer.eid}/{att['partId']}")
    assert status == 200 and b"attached page" in body and b"<script" not in body.lower()
    assert "script-src" not in h["content-security-policy"]


# --- other users -----------------------------------------------------------------------

def test_cross_user_guessing_ids(srv):
    alice = Client(srv, ALICE, PASSWORDS[ALICE])
    bob = Client(srv, BOB, PASSWORDS[BOB])
    assert alice.account != bob.account
    # Alice has mail, mailboxes of her own and an upload; bob has none.
    imap = alice.imap()
    for n in range(4):
        imap.create(f"Secret{n}")
    imap.logout()
    mids = [f"secret{n}-{uid_token()}@remote.test" for n in range(3)]
    for n, mid in enumerate(mids):
        alice.deliver(msg([("Subject", f"secret {n}"), ("Message-ID", f"<{mid}>")],
                          f"classified {n}\n"))
    ids = [alice.wait_for(mid) for mid in mids]
    status, _, up = alice.upload(b"alice's upload", "text/plain")
    assert status == 201
    html_mid = f"h{uid_token()}@remote.test"
    alice.deliver(msg([("Subject", "html"), ("Message-ID", f"<{html_mid}>"),
                       ("Content-Type", "text/html")], "<p>secret html</p>\n"))
    ids.append(alice.wait_for(html_mid))
    assert bob.query() == []
    a_state = alice.state()
    a_boxes = alice.mailboxes()
    a_emails = alice.get(ids)
    b_own = {m["id"] for m in bob.ok("Mailbox/get", {"ids": None})["list"]}
    alice_only = sorted({m["id"] for m in a_boxes.values()} - b_own)
    assert alice_only, "alice needs mailbox ids that bob does not have"

    guesses = [f"e{n}" for n in range(1, 61)]
    threads = [f"t{n}" for n in range(1, 61)]
    r = bob.ok("Email/get", {"ids": guesses, "properties": ["subject"]})
    assert r["list"] == [] and r["notFound"] == guesses
    assert bob.ok("Thread/get", {"ids": threads})["list"] == []
    r = bob.ok("SearchSnippet/get", {"filter": {"text": "secret"}, "emailIds": guesses})
    assert r["list"] == [] and r["notFound"] == guesses
    for f in ({"text": "secret"}, {"text": "classified"}, None,
              {"inMailbox": alice_only[0]}, {"operator": "NOT", "conditions": [{"text": "zzz"}]}):
        assert bob.query(f) == [], f
    r = bob.ok("Email/changes", {"sinceState": "0"})
    assert r["created"] == [] and r["updated"] == [] and r["destroyed"] == []
    r = bob.ok("Email/set", {
        "update": {g: {"keywords/$flagged": True, "mailboxIds": {bob.role("trash"): True}}
                   for g in guesses},
        "destroy": guesses})
    assert r["updated"] == {} and r["destroyed"] == []
    assert set(r["notUpdated"]) == set(guesses) and set(r["notDestroyed"]) == set(guesses)
    assert all(v["type"] == "notFound" for v in r["notUpdated"].values())
    assert all(v["type"] == "notFound" for v in r["notDestroyed"].values())
    # Mailbox ids name bob's own mailboxes only: alice's others are unknown.
    r = bob.ok("Mailbox/get", {"ids": [f"m{n}" for n in range(1, 61)]})
    assert {m["id"] for m in r["list"]} == b_own
    assert {m["name"] for m in r["list"]} == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    r = bob.ok("Mailbox/get", {"ids": alice_only})
    assert r["list"] == [] and r["notFound"] == alice_only
    r = bob.ok("Mailbox/set", {"update": {m: {"name": "Pwned"} for m in alice_only},
                               "destroy": alice_only})
    assert r["updated"] == {} and r["destroyed"] == []
    assert all(v["type"] == "notFound" for v in r["notUpdated"].values())
    assert all(v["type"] == "notFound" for v in r["notDestroyed"].values())
    r = bob.ok("Email/query", {"filter": {"inMailbox": alice_only[0]}})
    assert r["ids"] == []
    # Alice's Emails as attachments, her upload, her blobs.
    r = bob.ok("Email/set", {"create": {
        "a": dict(compose(bob, to=[BOB]), attachments=[{"blobId": up["blobId"], "type": "text/plain"}]),
        "b": dict(compose(bob, to=[BOB]), attachments=[{"blobId": "G1", "type": "text/plain"}]),
        "c": dict(compose(bob, to=[BOB]), attachments=[{"blobId": "G1.1", "type": "text/plain"}]),
        "d": compose(bob, to=[BOB], mailbox=alice_only[0])}})
    assert r["created"] == {}
    assert {k: v["type"] for k, v in r["notCreated"].items()} == \
        {"a": "blobNotFound", "b": "blobNotFound", "c": "blobNotFound", "d": "invalidProperties"}
    r = bob.ok("EmailSubmission/set", {"create": {
        str(n): {"identityId": f"i{bob.account[1:]}", "emailId": g}
        for n, g in enumerate(guesses[:10])}})
    assert r["created"] == {} and all(v["type"] == "notFound" for v in r["notCreated"].values())
    r = bob.ok("EmailSubmission/set", {"create": {
        "x": {"identityId": f"i{alice.account[1:]}", "emailId": ids[0]}}})
    assert r["notCreated"]["x"]["type"] == "invalidProperties"
    r = bob.ok("Identity/set", {"update": {f"i{alice.account[1:]}": {"name": "Pwned"}}})
    assert r["notUpdated"][f"i{alice.account[1:]}"]["type"] == "notFound"
    assert bob.ok("Identity/get", {"ids": [f"i{alice.account[1:]}"]})["list"] == []
    for acct in (bob.account, alice.account):
        for blob in ["G1", "G2", "G1.1", "G3.1", "G4", up["blobId"], "U1", "U2"]:
            status, _, body = bob.download(blob, "x", account=acct)
            assert status == 404, (acct, blob)
        for eid in guesses[:10]:
            for part in ("1", "2", "1.2"):
                status, _, _ = bob.raw("GET", f"/jmap/view/{acct}/{eid}/{part}")
                assert status == 404, (acct, eid, part)
    # Naming alice's account: accountNotFound, whatever the method.
    calls = [
        ("Mailbox/get", {}), ("Mailbox/changes", {"sinceState": "0"}),
        ("Mailbox/set", {"destroy": alice_only}),
        ("Email/get", {"ids": ids}), ("Email/query", {}), ("Email/changes", {"sinceState": "0"}),
        ("Email/set", {"destroy": ids}), ("Thread/get", {"ids": ["t1"]}),
        ("Thread/changes", {"sinceState": "0"}),
        ("SearchSnippet/get", {"emailIds": ids, "filter": {"text": "secret"}}),
        ("Identity/get", {}), ("Identity/set", {"update": {f"i{alice.account[1:]}": {"name": "x"}}}),
        ("EmailSubmission/set", {"create": {"x": {"identityId": f"i{alice.account[1:]}",
                                                  "emailId": ids[0]}}}),
    ]
    resp = bob.api([[m, dict(a, accountId=alice.account), str(n)]
                    for n, (m, a) in enumerate(calls)])
    assert [(x[0], x[1]) for x in resp] == [("error", {"type": "accountNotFound"})] * len(calls)
    status, _, _ = bob.raw("POST", f"/jmap/upload/{alice.account}/", b"x",
                           headers={"Content-Type": "text/plain"})
    assert status == 404
    status, _, _ = bob.download(up["blobId"], "x", account=alice.account)
    assert status == 404
    # Alice's mail is as it was.
    assert alice.state() == a_state
    assert alice.mailboxes() == a_boxes
    assert alice.get(ids) == a_emails
    status, _, body = alice.download(up["blobId"], "x")
    assert status == 200 and body == b"alice's upload"
    assert bob.query() == [] and bob.mailboxes().keys() == \
        {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


# --- CSRF and Origin ------------------------------------------------------------------------

def test_state_changes_need_csrf_and_origin(srv):
    c, other = new_client(srv), new_client(srv)
    [eid] = seed(c, 1)
    state = c.state()
    req = {"using": [CORE, MAIL], "methodCalls": [
        ["Email/set", {"accountId": c.account, "update": {eid: {"keywords/$flagged": True}}}, "a"],
        ["Mailbox/set", {"accountId": c.account, "create": {"m": {"name": "Csrf"}}}, "b"]]}
    bad_headers = [
        ({}, False),                                              # no CSRF header
        ({"X-Dijk-CSRF": ""}, False),
        ({"X-Dijk-CSRF": c.csrf[:-1]}, False),
        ({"X-Dijk-CSRF": c.csrf + "x"}, False),
        ({"X-Dijk-CSRF": other.csrf}, False),                     # another session's
        ({"Origin": "http://evil.example"}, True),
        ({"Origin": f"http://127.0.0.1:{srv.http_port}.evil.example"}, True),
        ({"Origin": f"https://127.0.0.1:{srv.http_port}"}, True),
        ({"Origin": "null"}, True),
        ({"Sec-Fetch-Site": "cross-site"}, True),
    ]
    for headers, with_csrf in bad_headers:
        status, _, body = c.raw("POST", "/jmap/api", req, headers=headers, csrf=with_csrf)
        assert status == 403, (headers, status, body)
        status, _, body = c.raw("POST", f"/jmap/upload/{c.account}/", b"data",
                                headers=dict(headers, **{"Content-Type": "text/plain"}),
                                csrf=with_csrf)
        assert status == 403, (headers, status, body)
    assert c.state() == state
    assert c.get1(eid, ["keywords"])["keywords"] == {}
    assert "Csrf" not in c.mailboxes()
    # The same request, properly made, works.
    status, _, body = c.raw("POST", "/jmap/api", req)
    assert status == 200 and body["methodResponses"][0][1]["updated"] == {eid: None}
    assert c.get1(eid, ["keywords"])["keywords"] == {"$flagged": True}


# --- push ---------------------------------------------------------------------------------

class EventStream:
    def __init__(self, client, query):
        self.conn = http.client.HTTPConnection("127.0.0.1", client.d.http_port, timeout=10)
        self.conn.request("GET", "/jmap/eventsource?" + query, headers={"Cookie": client.cookie})
        self.resp = self.conn.getresponse()
        self.buf = b""

    def event(self, timeout=10):
        """The next event as (type, data), or None at the end of the stream."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buf:
            assert time.monotonic() < deadline, f"no event; have {self.buf!r}"
            chunk = self.resp.read1(65536)
            if not chunk:
                assert self.buf.strip() == b"", self.buf
                return None
            self.buf += chunk
        block, self.buf = self.buf.split(b"\n\n", 1)
        kind, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = kind or value
            elif field == "data":
                data.append(value)
        if kind is None and not data:
            return self.event(max(0.1, deadline - time.monotonic()))
        return kind or "message", json.loads("\n".join(data)) if data else None

    def close(self):
        self.conn.close()


def test_eventsource_state_after_delivery(srv):
    c, other = new_client(srv), new_client(srv)
    stream = EventStream(c, "types=*&closeafter=state&ping=0")
    watch = EventStream(other, "types=*&closeafter=no&ping=0")
    try:
        assert stream.resp.status == 200
        assert stream.resp.getheader("Content-Type").startswith("text/event-stream")
        assert stream.resp.getheader("Cache-Control") == "no-store"
        before = c.state()
        first = stream.event()
        assert first[0] == "state" and first[1]["@type"] == "StateChange"
        assert first[1]["changed"][c.account]["Email"] == before
        initial_other = watch.event()
        assert list(initial_other[1]["changed"]) == [other.account]
        t0 = time.monotonic()
        c.deliver(msg([("Subject", "push"), ("Message-ID", "<push@remote.test>")], "x\n"))
        after = c.state()
        assert int(after) > int(before)
        kind, data = stream.event(timeout=5)
        assert time.monotonic() - t0 < 5
        assert kind == "state" and list(data["changed"]) == [c.account]
        changed = data["changed"][c.account]
        assert changed["Email"] == c.state() and changed["Mailbox"] == changed["Email"]
        assert c.wait_for("push@remote.test")
        # closeafter=state: that was the last.
        assert stream.event(timeout=5) is None
        # The other account heard nothing of it; its own change it hears.
        other.deliver(msg([("Subject", "own"), ("Message-ID", "<own@remote.test>")], "x\n"))
        kind, data = watch.event(timeout=5)
        assert kind == "state" and list(data["changed"]) == [other.account]
        assert data["changed"][other.account]["Email"] == other.state()
    finally:
        stream.close()
        watch.close()
    # No session, no stream.
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
    conn.request("GET", "/jmap/eventsource?types=*&closeafter=no&ping=0")
    assert conn.getresponse().status == 401
    conn.close()


def test_nul_in_strings_is_refused(srv):
    """A NUL cannot reach a header or a setting: the request is not JSON
    the server takes (RFC 8620 3.6.1 notJSON), and nothing changes."""
    c = new_client(srv)
    state = c.state()
    drafts = c.role("drafts")
    obj = {"mailboxIds": {drafts: True}, "from": [{"email": c.user}], "subject": "Hi\x00there"}
    status, _, body = c.raw("POST", "/jmap/api", {"using": [CORE, MAIL], "methodCalls": [
        ["Email/set", {"accountId": c.account, "create": {"x": obj}}, "a"]]})
    assert status == 400 and body["type"].endswith(":notJSON"), body
    status, _, body = c.raw("POST", "/jmap/api", {"using": list(USING), "methodCalls": [
        ["Identity/set", {"accountId": c.account,
                          "update": {f"i{c.account[1:]}": {"name": "nul\x00"}}}, "a"]]})
    assert status == 400 and body["type"].endswith(":notJSON"), body
    assert c.state() == state and c.query() == []
    assert c.ok("Identity/get", {})["list"][0]["name"] == ""


@pytest.mark.parametrize("text", ['"', '""', 'a"b', '" OR "', "*", "budget*", "NEAR(budget numbers)",
                                  "{body}: budget", "body:budget", "%", "_", "\\", "'", "y%",
                                  "%dget", "b_dget", "bud%et", "^budget", "budget)", "(", "-budget",
                                  "AND", "NOT budget"])
def test_query_text_is_literal(corpus, text):
    """Search words are matched as they are: no FTS5 syntax, no LIKE
    wildcards, and no error whatever they hold."""
    assert corpus.c.query({"text": text}) == [], text


def test_query_text_words_are_and_ed_literally(corpus):
    # "NOT" and "AND" are words like any other: they match nothing here.
    assert corpus.c.query({"text": "budget NOT"}) == []
    assert names(corpus, corpus.c.query({"text": "budget numbers"})) == ["q1"]


def test_unknown_methods(corpus):
    c = corpus.c
    for name in ("Email/copy", "Email/import", "Email/parse", "Mailbox/query",
                 "Mailbox/queryChanges", "Email/queryChanges", "Thread/set",
                 "SearchSnippet/set", "EmailSubmission/get", "EmailSubmission/query",
                 "VacationResponse/get", "Blob/copy", "Identity/changes", "email/get"):
        got, r = c.call1(name, {})
        assert (got, r) == ("error", {"type": "unknownMethod"}), name


def test_search_snippet_non_ascii_without_case(corpus):
    """The query found q4 for "überweisung" (its subject says
    "Überweisung"): the snippet marks it the same way."""
    k, c = corpus, corpus.c
    assert names(k, c.query({"text": "überweisung"})) == ["q4"]
    [s] = c.ok("SearchSnippet/get", {"filter": {"text": "überweisung"},
                                     "emailIds": [k.id["q4"]]})["list"]
    assert s["subject"] == "<mark>Überweisung</mark> erhalten"


def test_changes_max_changes_never_exceeded(srv):
    """RFC 8620 5.2: the server MUST NOT return more ids than maxChanges,
    even when one IMAP STORE changed several Emails at once; it goes to an
    intermediate state, or answers cannotCalculateChanges."""
    c = new_client(srv)
    seed(c, 3)
    since = c.state()
    imap = c.imap()
    try:
        imap.select("INBOX")
        assert imap.store("1:3", "+FLAGS", r"(\Flagged)")[0] == "OK"
    finally:
        imap.logout()
    got, r = c.call1("Email/changes", {"sinceState": since, "maxChanges": 2})
    if got == "error":
        assert r["type"] == "cannotCalculateChanges"
        return
    assert len(r["created"]) + len(r["updated"]) + len(r["destroyed"]) <= 2, r
    assert r["hasMoreChanges"] is True


def test_mailbox_counts_follow_jmap_changes(srv):
    c = new_client(srv)
    i = c.imap()
    i.create("Target")
    i.logout()
    a, b = seed(c, 2)
    inbox, target = c.role("inbox"), c.mbox("Target")

    def counts(mid):
        m = c.ok("Mailbox/get", {"ids": [mid]})["list"][0]
        return m["totalEmails"], m["unreadEmails"], m["totalThreads"], m["unreadThreads"]

    assert counts(inbox) == (2, 2, 2, 2) and counts(target) == (0, 0, 0, 0)
    c.set(update={a: {"keywords/$seen": True}})
    assert counts(inbox) == (2, 1, 2, 1)
    c.set(update={b: {"mailboxIds": {target: True}}})
    assert counts(inbox) == (1, 0, 1, 0) and counts(target) == (1, 1, 1, 1)
    c.set(destroy=[a])
    assert counts(inbox) == (0, 0, 0, 0)


def test_create_in_a_mailbox_made_in_the_same_request(srv):
    c = new_client(srv)
    r = c.api([
        ["Mailbox/set", {"accountId": c.account, "create": {"box": {"name": "Fresh"}}}, "a"],
        ["Email/set", {"accountId": c.account, "create": {"e": {
            "mailboxIds": {"#box": True}, "from": [{"email": c.user}], "subject": "in fresh",
            "bodyValues": {"1": {"value": "x"}}, "textBody": [{"partId": "1"}]}}}, "b"],
        ["Email/query", {"accountId": c.account, "filter": {"inMailbox": "#box"}}, "c"],
    ])
    box = r[0][1]["created"]["box"]["id"]
    assert r[1][1]["notCreated"] == {}, r[1]
    eid = r[1][1]["created"]["e"]["id"]
    assert c.get1(eid, ["mailboxIds"])["mailboxIds"] == {box: True}
    assert r[2][1]["ids"] == [eid]


def test_submission_on_success_destroy(srv):
    s = new_client(srv)
    resp = s.api([
        ["Email/set", {"accountId": s.account, "create": {
            "d": compose(s, to=[f"far-{uid_token()}@remote.test"], subject="gone")}}, "0"],
        ["EmailSubmission/set", {"accountId": s.account, "create": {
            "k": {"identityId": f"i{s.account[1:]}", "emailId": "#d"}},
            "onSuccessDestroyEmail": ["#k"]}, "1"]])
    eid = resp[0][1]["created"]["d"]["id"]
    assert resp[1][1]["created"]["k"]["undoStatus"] == "final"
    assert resp[2][0] == "Email/set" and resp[2][1]["destroyed"] == [eid], resp
    assert s.ok("Email/get", {"ids": [eid]})["notFound"] == [eid]


def test_eventsource_bad_ping(srv):
    c = new_client(srv)
    for query in ("types=*&closeafter=no&ping=abc", "types=*&closeafter=no&ping=-1",
                  "types=*&closeafter=no&ping=99999"):
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
        conn.request("GET", "/jmap/eventsource?" + query, headers={"Cookie": c.cookie})
        assert conn.getresponse().status == 400, query
        conn.close()


def test_create_with_sent_at(srv):
    """sentAt is settable on create (RFC 8621 4.1.2.x): the Date header
    says it, with its offset, rather than the time of saving."""
    c = new_client(srv)
    r = c.set(create={"d": {
        "mailboxIds": {c.role("drafts"): True}, "from": [{"email": c.user}],
        "subject": "dated", "sentAt": "2020-01-02T03:04:05+02:00",
        "bodyValues": {"1": {"value": "x"}}, "textBody": [{"partId": "1"}]}})
    assert r["notCreated"] == {}, r
    eid = r["created"]["d"]["id"]
    assert c.get1(eid, ["sentAt"])["sentAt"] == "2020-01-02T03:04:05+02:00"
